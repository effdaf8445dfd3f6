/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/stego.h - "double-stegging": hiding the tag and R^T in the HH band of
 * a one-level integer Haar transform of a grayscale cover
 * (../shared/design/signal-processing.md section 5, normative).
 *
 * One payload byte per group of 255 HH coefficients by Hamming(255,8)
 * matrix embedding; groups come from a keyed Fisher-Yates permutation of
 * the HH positions.  Byte k of the payload is carried by group k, so
 * stage 1 (the tag) occupies the first groups and stage 2 (R^T) the next
 * ones.  At most one coefficient changes per byte (two in the saturation
 * fallback), and each change moves exactly one pixel by one.
 *
 * Extraction needs only the stego image and the key.  Embedding touches
 * only the 2x2 blocks it changes.  Thread-safe; no allocation on the
 * embed/extract path beyond a permutation table on the stack of callers
 * that use s2s_stego_perm.
 */
#ifndef S2S_STEGO_H
#define S2S_STEGO_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"
#include "s2s/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_STEGO_GROUP 255

/* Payload bytes a width x height cover can carry: (w/2)*(h/2) / 255. */
size_t s2s_stego_capacity(uint32_t width, uint32_t height);

/*
 * Embed n payload bytes into img in place with the 32-byte selection key.
 * *changes (may be NULL) receives the number of coefficients changed.
 * S2S_ERR_COVER if the cover cannot carry the payload (too small, or
 * saturated where neither the +1/-1 choice nor the two-flip fallback
 * works); img is then unchanged.
 */
enum s2s_err s2s_stego_embed(struct s2s_image *img, const uint8_t key[32],
			     const uint8_t *payload, size_t n,
			     unsigned *changes);

/* Extract n payload bytes from img with the key. */
enum s2s_err s2s_stego_extract(const struct s2s_image *img,
			       const uint8_t key[32], uint8_t *payload,
			       size_t n);

/* ---- Steganalysis (section 7) ------------------------------------------ */

struct s2s_stego_analysis {
	double chi2;       /* Westfeld-Pfitzmann statistic */
	double chi2_p;     /* its p-value (near 1: pairs equalised) */
	double rs;         /* RS estimate of the LSB-replacement rate */
	double spa;        /* sample-pair estimate */
};

enum s2s_err s2s_stego_analyze(const struct s2s_image *img,
			       struct s2s_stego_analysis *out);

#ifdef __cplusplus
}
#endif

#endif /* S2S_STEGO_H */
