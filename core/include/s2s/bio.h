/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/bio.h - the bio-shared vector Rv from two handwritten signatures
 * (../shared/design/signal-processing.md section 3, normative), and a
 * seeded generator of synthetic signatures for tests and the demo.
 *
 * Fx: integer Otsu threshold, crop to the ink and clean the paper to white,
 * exact area resampling onto a 180x440 canvas, union by pixel-wise minimum,
 * basic 8-neighbour LBP, 12 blocks (3x4, 60 % overlap) of 255 bins: 3060
 * counts.  Fx(A, B) == Fx(B, A) byte for byte.  Rv is a deterministic
 * function of the two image files, not a fuzzy biometric.
 *
 * Rv is secret: callers wipe it after use.  Thread-safe.
 */
#ifndef S2S_BIO_H
#define S2S_BIO_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"
#include "s2s/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_BIO_CANVAS_H 180
#define S2S_BIO_CANVAS_W 440
#define S2S_RV_LEN 3060            /* LBP histogram counts in Rv */
#define S2S_BIO_MAX_PIXELS 262144  /* input cap that keeps Otsu exact */

/*
 * Normalise one signature onto the 180x440 canvas (steps A2-A4).
 * S2S_ERR_NO_INK for a blank image, S2S_ERR_TOO_BIG above
 * S2S_BIO_MAX_PIXELS.
 */
enum s2s_err s2s_bio_normalize(const struct s2s_image *sig,
			       uint8_t canvas[S2S_BIO_CANVAS_H *
					      S2S_BIO_CANVAS_W]);

/*
 * The integer Otsu threshold of n pixels (step A2): ink is <= *t.
 * S2S_ERR_NO_INK if the pixels are all equal (no split exists).
 */
enum s2s_err s2s_bio_otsu(const uint8_t *px, size_t n, uint8_t *t);

/*
 * Rv = Fx(a, b): 3060 LBP counts (each <= 20000).  Errors as
 * s2s_bio_normalize; rv is untouched on failure.  The intermediate
 * canvases are wiped.
 */
enum s2s_err s2s_bio_features(const struct s2s_image *a,
			      const struct s2s_image *b,
			      uint16_t rv[S2S_RV_LEN]);

/* Rv as 3060 big-endian uint16 (6120 bytes), its canonical form. */
void s2s_bio_rv_serialize(const uint16_t rv[S2S_RV_LEN],
			  uint8_t out[2 * S2S_RV_LEN]);

/*
 * LBP codes of a w x h image (step A6, neighbours clamped), for tests and
 * tools.  codes has w*h entries.
 */
void s2s_bio_lbp(const uint8_t *img, uint32_t w, uint32_t h, uint8_t *codes);

/*
 * A synthetic handwritten signature: user seeds the writer's style (name,
 * slant, pen, ink), sample the per-signature variation.  Deterministic for
 * (user, sample).  The image is allocated into out.
 */
enum s2s_err s2s_bio_siggen(uint32_t user, uint32_t sample,
			    struct s2s_image *out);

#ifdef __cplusplus
}
#endif

#endif /* S2S_BIO_H */
