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
 * only the 2x2 blocks it changes; it never transforms the whole image.
 * Thread-safe (no shared state).
 *
 * Covers: any 8-bit grayscale image (PNG or PGM through s2s/image.h;
 * the defaults are the PNGs in core/covers/, see PROVENANCE.md there).
 * The HH band has (w/2) x (h/2) coefficients, HH index = (w/2) row + col; with an odd
 * width or height the last column or row is never touched.  A 128x128
 * cover carries 16 bytes: the paper payload (MACLESS || R^T, 8 bytes) and
 * the hardened one (12-byte tag || R^T, 16 bytes) both fit.  The stego
 * image must travel losslessly (PNG, no colour management).
 *
 * Cost and the session API.  The keyed selection is a Fisher-Yates shuffle
 * of all (w/2)(h/2) HH positions driven by SHA-256 (about 512 compressions
 * for 128x128, ~100 us), and every swap can still move the first 255 n
 * entries, so it cannot be cut short.  Since the selection key is per
 * session and the cover size fixed, s2s_stego_sel_create() runs the shuffle
 * once and keeps the first 255 n block positions; embedding and extracting
 * with it then cost a few microseconds (parities of 255 n blocks).
 * s2s_stego_embed()/s2s_stego_extract() are the one-shot forms: they build
 * and destroy a selection (heap, wiped) on each call.
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
 * The one-level S-transform of one 2x2 block by lifting (5.2).  blk is
 * {p00, p01, p10, p11} (row-major), coef is {LL, HL, LH, HH}.  The inverse
 * may return values outside 0..255 when coef was edited.  For tests and
 * tools: [[100,103],[98,101]] -> LL 100, HL -3, LH 2, HH 0.
 */
void s2s_stego_haar_fwd(const uint8_t blk[4], int coef[4]);
void s2s_stego_haar_inv(const int coef[4], int blk[4]);

/*
 * The keyed permutation pi of 0..count-1 (5.3): Fisher-Yates from the top,
 * j = uniform(i + 1) from the counter stream SHA-256(key || "HH-SELECT" ||
 * be32(ctr)) read as big-endian 32-bit words with rejection.  perm has
 * count entries.  S2S_ERR_INVAL for count 0 or NULL arguments.
 */
enum s2s_err s2s_stego_perm(const uint8_t key[32], uint32_t count,
			    uint32_t *perm);

/*
 * A precomputed selection: the first 255 n positions of pi for one key and
 * one cover size, ready for n-byte embedding/extraction.  Heap-allocated,
 * immutable after creation (may be shared by threads), wiped and freed by
 * s2s_stego_sel_destroy() (NULL is a no-op).  S2S_ERR_COVER if n is 0 or
 * more than the capacity of a width x height cover.  The key is not kept.
 */
struct s2s_stego_sel;

enum s2s_err s2s_stego_sel_create(const uint8_t key[32], uint32_t width,
				  uint32_t height, size_t n,
				  struct s2s_stego_sel **out);
void s2s_stego_sel_destroy(struct s2s_stego_sel *sel);

/*
 * s2s_stego_embed / s2s_stego_extract with a precomputed selection; n may
 * be less than the n the selection was made for (its first n groups are
 * used, exactly as the one-shot forms would).  S2S_ERR_INVAL if img is not
 * the selection's size.  No allocation for n <= 16.
 */
enum s2s_err s2s_stego_embed_sel(const struct s2s_stego_sel *sel,
				 struct s2s_image *img,
				 const uint8_t *payload, size_t n,
				 unsigned *changes);
enum s2s_err s2s_stego_extract_sel(const struct s2s_stego_sel *sel,
				   const struct s2s_image *img,
				   uint8_t *payload, size_t n);

/*
 * Parity maps: the HH parity of every 2x2 block, one byte (0 or 1) per HH
 * index, (w/2) * (h/2) bytes.  Computing it is one sequential pass over
 * the pixels; a syndrome is then 255 byte lookups.  rows[y] points at
 * row y (width bytes), so the pixels need not be one buffer (the rows of
 * a stored PNG are read where they lie, s2s_image_png_gray_rows).
 */
void s2s_stego_parity_map(const uint8_t *const *rows, uint32_t width,
			  uint32_t height, uint8_t *map);

/* s2s_stego_extract_sel from a parity map of the selection's size. */
enum s2s_err s2s_stego_extract_map(const struct s2s_stego_sel *sel,
				   const uint8_t *map, uint8_t *payload,
				   size_t n);

/*
 * s2s_stego_plan_map with the cover's syndromes already known (syn[k] =
 * byte k that s2s_stego_extract_map gives for the cover), for senders that
 * keep them with a fixed cover: planning then reads only the blocks it
 * changes.
 */
enum s2s_err s2s_stego_plan_syn(const struct s2s_stego_sel *sel,
				const struct s2s_image *img,
				const uint8_t *syn, const uint8_t *payload,
				size_t n, struct s2s_image_change *plan,
				size_t *count);

/*
 * Plan s2s_stego_embed_sel without writing: img is the cover and map its
 * parity map.  plan (s2s/image.h) has room for 2n changes; *count receives how many were
 * planned.  Applying them to img gives exactly what s2s_stego_embed_sel
 * would (the same reference-mode choices).  For senders that patch a
 * pre-encoded cover instead of encoding the stego image.
 */
enum s2s_err s2s_stego_plan_map(const struct s2s_stego_sel *sel,
				const struct s2s_image *img,
				const uint8_t *map, const uint8_t *payload,
				size_t n, struct s2s_image_change *plan,
				size_t *count);

/*
 * Embed n payload bytes into img in place with the 32-byte selection key.
 * *changes (may be NULL) receives the number of coefficients changed.
 * S2S_ERR_COVER if the cover cannot carry the payload (too small, or
 * saturated where neither the +1/-1 choice nor the two-flip fallback
 * works); img is then unchanged.
 *
 * Reference mode: for each group with d = syndrome ^ byte != 0, element d
 * is changed by +1 if its one affected pixel stays in 0..255, else by -1;
 * if neither is possible, the first pair i < j (i ascending) with i ^ j = d
 * whose elements can both be changed is used.  Every change moves exactly
 * one pixel by one, so at most n (fallback: 2n) pixels differ.
 */
enum s2s_err s2s_stego_embed(struct s2s_image *img, const uint8_t key[32],
			     const uint8_t *payload, size_t n,
			     unsigned *changes);

/*
 * Extract n payload bytes from img with the key: byte k is the Hamming
 * syndrome of group k.  Any image of sufficient size "extracts" something;
 * authenticity is the tag's job, not this function's.
 */
enum s2s_err s2s_stego_extract(const struct s2s_image *img,
			       const uint8_t key[32], uint8_t *payload,
			       size_t n);

/* ---- Steganalysis (section 7) ------------------------------------------ */

/*
 * Pixel-domain detectors of LSB replacement, for measuring that the
 * stego images are not detectable (they target LSB replacement; our +-1
 * HH changes are LSB-matching-like and tiny).
 *
 * chi2: sum over value pairs (2k, 2k+1) with expected count e > 4 of
 * (h[2k] - e)^2 / e, dof = categories - 1; chi2_p = Q(dof/2, chi2/2), the
 * upper regularised incomplete gamma (0 when dof < 1).
 * rs: Fridrich-Goljan-Du, groups of 4 horizontally adjacent pixels, mask
 * [0 1 1 0]; the estimated fraction of pixels carrying a replaced LSB.
 * spa: Dumitrescu-Wu-Wang on horizontally adjacent pairs, smaller root of
 * 2K b^2 + 2(2X - P) b + (Y - X) = 0 (about half the replacement rate).
 * Both estimates are noisy on natural covers (about -0.1..0.15 on 128x128).
 */
struct s2s_stego_analysis {
	double chi2;       /* Westfeld-Pfitzmann statistic */
	double chi2_p;     /* its p-value (near 1: pairs equalised) */
	double rs;         /* RS estimate of the LSB-replacement rate */
	double spa;        /* sample-pair estimate */
};

/* S2S_ERR_INVAL for images narrower than 4 pixels. */
enum s2s_err s2s_stego_analyze(const struct s2s_image *img,
			       struct s2s_stego_analysis *out);

/* Upper regularised incomplete gamma Q(a, x), a > 0, x >= 0 (for tests). */
double s2s_stego_gamma_q(double a, double x);

#ifdef __cplusplus
}
#endif

#endif /* S2S_STEGO_H */
