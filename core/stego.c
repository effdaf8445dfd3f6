/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stego.c - integer-Haar HH-band matrix embedding, byte-exact per
 * signal-processing.md section 5.
 *
 * The S-transform works on each 2x2 block independently, so the HH
 * coefficient of block (i, j) depends only on pixels rows 2i..2i+1,
 * columns 2j..2j+1.  Nothing here transforms the whole image: extraction
 * reads the parity of the selected HH coefficients and embedding inverts
 * only the blocks it changes.  Note HH = (p00 - p01) - (p10 - p11), so its
 * parity is the parity of the block's pixel sum; hh_parity() uses that
 * identity (checked against the lifting code in the tests).
 *
 * The costly part is the selection: a Fisher-Yates shuffle of all
 * (w/2)(h/2) HH positions driven by SHA-256 (512 compressions for 128x128).
 * Every entry of pi[0..255n) may be moved by any later swap, so the whole
 * shuffle must run; the session API (struct s2s_stego_sel) runs it once per
 * key and cover size and keeps only the first 255n positions.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/crypto.h"
#include "s2s/secmem.h"
#include "s2s/stego.h"

#define LABEL "HH-SELECT"
#define LABEL_LEN 9

struct s2s_stego_sel {
	uint32_t width, height;
	size_t groups;          /* payload bytes this selection serves */
	uint32_t hw;            /* HH columns: width / 2 */
	int shift;              /* log2(hw) if hw is a power of two, else -1 */
	uint32_t *idx;          /* HH index of each selected block */
};

/* Pixel offset of the top-left pixel of HH block idx. */
static inline uint32_t
blk_off(const struct s2s_stego_sel *sel, uint32_t idx)
{
	uint32_t row, col;

	if (sel->shift >= 0) {
		row = idx >> sel->shift;
		col = idx & (sel->hw - 1);
	} else {
		row = idx / sel->hw;
		col = idx % sel->hw;
	}
	return 2 * row * sel->width + 2 * col;
}

size_t
s2s_stego_capacity(uint32_t width, uint32_t height)
{
	return (size_t)(width / 2) * (height / 2) / S2S_STEGO_GROUP;
}

/* ---- Transform ------------------------------------------------------------ */

/* floor(h / 2) without right-shifting a negative value. */
static int
fl2(int h)
{
	return (h - (h & 1)) / 2;
}

void
s2s_stego_haar_fwd(const uint8_t blk[4], int coef[4])
{
	int hr0 = blk[0] - blk[1], lr0 = blk[1] + fl2(hr0);
	int hr1 = blk[2] - blk[3], lr1 = blk[3] + fl2(hr1);
	int lh = lr0 - lr1, hh = hr0 - hr1;

	coef[0] = lr1 + fl2(lh);    /* LL */
	coef[1] = hr1 + fl2(hh);    /* HL */
	coef[2] = lh;               /* LH */
	coef[3] = hh;               /* HH */
}

void
s2s_stego_haar_inv(const int coef[4], int blk[4])
{
	int lr1 = coef[0] - fl2(coef[2]), lr0 = lr1 + coef[2];
	int hr1 = coef[1] - fl2(coef[3]), hr0 = hr1 + coef[3];

	blk[1] = lr0 - fl2(hr0);
	blk[0] = blk[1] + hr0;
	blk[3] = lr1 - fl2(hr1);
	blk[2] = blk[3] + hr1;
}

/* ---- Keyed selection (5.3) -------------------------------------------------- */

struct drbg {
	const uint8_t *key;
	uint32_t counter;
	uint8_t block[S2S_SHA256_LEN];
	unsigned used;          /* bytes of block consumed */
};

static uint32_t
drbg_word(struct drbg *d)
{
	uint32_t w;

	if (d->used == S2S_SHA256_LEN) {
		uint8_t ctr[4] = { (uint8_t)(d->counter >> 24),
				   (uint8_t)(d->counter >> 16),
				   (uint8_t)(d->counter >> 8),
				   (uint8_t)d->counter };
		struct s2s_iov v[3] = {
			{ d->key, 32 }, { LABEL, LABEL_LEN }, { ctr, 4 },
		};

		s2s_sha256v(v, 3, d->block);
		d->counter++;
		d->used = 0;
	}
	w = (uint32_t)d->block[d->used] << 24 |
	    (uint32_t)d->block[d->used + 1] << 16 |
	    (uint32_t)d->block[d->used + 2] << 8 | d->block[d->used + 3];
	d->used += 4;
	return w;
}

/* uniform(m): reject w >= 2^32 - (2^32 mod m), return w mod m. */
static uint32_t
uniform(struct drbg *d, uint32_t m)
{
	uint32_t lim = (uint32_t)(0x100000000ull - 0x100000000ull % m);
	uint32_t w;

	do
		w = drbg_word(d);
	while (lim && w >= lim);   /* lim == 0 means 2^32: nothing rejected */
	return w % m;
}

enum s2s_err
s2s_stego_perm(const uint8_t key[32], uint32_t count, uint32_t *perm)
{
	struct drbg d = { .key = key, .used = S2S_SHA256_LEN };

	if (!key || !perm || !count)
		return S2S_ERR_INVAL;
	for (uint32_t i = 0; i < count; i++)
		perm[i] = i;
	for (uint32_t i = count - 1; i >= 1; i--) {
		uint32_t j = uniform(&d, i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	S2S_WIPE(d.block);
	return S2S_OK;
}

enum s2s_err
s2s_stego_sel_create(const uint8_t key[32], uint32_t width, uint32_t height,
		     size_t n, struct s2s_stego_sel **out)
{
	struct s2s_stego_sel *sel;
	uint32_t *perm, hw = width / 2, count;
	enum s2s_err err;

	if (!key || !out)
		return S2S_ERR_INVAL;
	*out = NULL;
	if (!n || n > s2s_stego_capacity(width, height))
		return S2S_ERR_COVER;
	if ((uint64_t)hw * (height / 2) > UINT32_MAX)
		return S2S_ERR_TOO_BIG;
	count = hw * (height / 2);
	perm = malloc((size_t)count * sizeof(*perm));
	sel = calloc(1, sizeof(*sel));
	if (!perm || !sel) {
		err = S2S_ERR_NOMEM;
		goto out;
	}
	sel->idx = malloc(n * S2S_STEGO_GROUP * sizeof(*sel->idx));
	if (!sel->idx) {
		err = S2S_ERR_NOMEM;
		goto out;
	}
	if ((err = s2s_stego_perm(key, count, perm)))
		goto out;
	for (size_t k = 0; k < n * S2S_STEGO_GROUP; k++)
		sel->idx[k] = perm[k];
	sel->hw = hw;
	sel->shift = -1;
	for (int b = 0; b < 32; b++)
		if (hw == 1u << b)
			sel->shift = b;
	sel->width = width;
	sel->height = height;
	sel->groups = n;
	*out = sel;
	sel = NULL;
out:
	if (perm)
		s2s_memzero(perm, (size_t)count * sizeof(*perm));
	free(perm);
	s2s_stego_sel_destroy(sel);
	return err;
}

void
s2s_stego_sel_destroy(struct s2s_stego_sel *sel)
{
	if (!sel)
		return;
	if (sel->idx)
		s2s_memzero(sel->idx,
			    sel->groups * S2S_STEGO_GROUP * sizeof(*sel->idx));
	free(sel->idx);
	s2s_memzero(sel, sizeof(*sel));
	free(sel);
}

/* ---- Embedding and extraction (5.4) ---------------------------------------- */

/* Parity of the block sum = parity of HH; two 16-bit loads per block. */
static unsigned
hh_parity(const uint8_t *p, uint32_t w)
{
	uint16_t a, b;

	memcpy(&a, p, 2);
	memcpy(&b, p + w, 2);
	a ^= b;
	return (unsigned)(a ^ (a >> 8)) & 1;
}

static unsigned
syndrome(const uint8_t *px, const struct s2s_stego_sel *sel,
	 const uint32_t *idx)
{
	unsigned s0 = 0, s1 = 0, s2 = 0, s3 = 0, e;
	uint32_t w = sel->width;

	/* Four independent accumulators: the loads, not the XORs, bound it. */
	for (e = 1; e + 3 <= S2S_STEGO_GROUP; e += 4) {
		s0 ^= e & (0u - hh_parity(px + blk_off(sel, idx[e - 1]), w));
		s1 ^= (e + 1) & (0u - hh_parity(px + blk_off(sel, idx[e]), w));
		s2 ^= (e + 2) &
		      (0u - hh_parity(px + blk_off(sel, idx[e + 1]), w));
		s3 ^= (e + 3) &
		      (0u - hh_parity(px + blk_off(sel, idx[e + 2]), w));
	}
	for (; e <= S2S_STEGO_GROUP; e++)
		s0 ^= e & (0u - hh_parity(px + blk_off(sel, idx[e - 1]), w));
	return s0 ^ s1 ^ s2 ^ s3;
}

/* A planned change: one pixel gets a new value (s2s_stego_change). */
#define change s2s_image_change

/*
 * Try HH += dir on the block at off; on success store the single pixel it
 * moves (it stays in 0..255) into *c.
 */
static bool
try_flip(const uint8_t *px, uint32_t w, uint32_t off, int dir,
	 struct change *c)
{
	static const uint32_t idx[4] = { 0, 1, 0, 1 };
	uint8_t blk[4] = { px[off], px[off + 1], px[off + w], px[off + w + 1] };
	int coef[4], out[4];

	s2s_stego_haar_fwd(blk, coef);
	coef[3] += dir;
	s2s_stego_haar_inv(coef, out);
	for (int k = 0; k < 4; k++) {
		if (out[k] == blk[k])
			continue;
		if (out[k] < 0 || out[k] > 255)
			return false;
		c->pos = off + idx[k] + (k >= 2 ? w : 0);
		c->val = (uint8_t)out[k];
		return true;
	}
	return false;   /* not reached: an HH step always moves one pixel */
}

/* +1 first (reference mode), then -1. */
static bool
flip(const uint8_t *px, uint32_t w, uint32_t off, struct change *c)
{
	return try_flip(px, w, off, +1, c) || try_flip(px, w, off, -1, c);
}

/*
 * Plan the changes that make group `off` carry byte m: none, one, or two
 * (fallback i ^ j = d, i < j, first i in ascending order).  Returns the
 * number of changes, or -1 if the group cannot carry m.
 */
static int
plan_group_syn(const uint8_t *px, const struct s2s_stego_sel *sel,
	       const uint32_t *idx, unsigned syn, uint8_t m,
	       struct change c[2])
{
	unsigned d = syn ^ m;
	uint32_t w = sel->width;

	if (!d)
		return 0;
	if (flip(px, w, blk_off(sel, idx[d - 1]), &c[0]))
		return 1;
	for (unsigned i = 1; i < S2S_STEGO_GROUP; i++) {
		unsigned j = i ^ d;

		if (j <= i)
			continue;
		if (flip(px, w, blk_off(sel, idx[i - 1]), &c[0]) &&
		    flip(px, w, blk_off(sel, idx[j - 1]), &c[1]))
			return 2;
	}
	return -1;
}

static int
plan_group(const uint8_t *px, const struct s2s_stego_sel *sel,
	   const uint32_t *idx, uint8_t m, struct change c[2])
{
	return plan_group_syn(px, sel, idx, syndrome(px, sel, idx), m, c);
}

enum s2s_err
s2s_stego_embed_sel(const struct s2s_stego_sel *sel, struct s2s_image *img,
		    const uint8_t *payload, size_t n, unsigned *changes)
{
	struct change small[2 * 16], *plan = small;
	size_t count = 0;
	enum s2s_err err = S2S_OK;

	if (changes)
		*changes = 0;
	if (!sel || !img || !img->pixels || (!payload && n))
		return S2S_ERR_INVAL;
	if (img->width != sel->width || img->height != sel->height)
		return S2S_ERR_INVAL;
	if (n > sel->groups)
		return S2S_ERR_COVER;
	if (2 * n > sizeof(small) / sizeof(small[0])) {
		plan = malloc(2 * n * sizeof(*plan));
		if (!plan)
			return S2S_ERR_NOMEM;
	}
	/*
	 * Plan every group first and write only if all succeed, so a cover
	 * that cannot carry the payload is left untouched.  Groups never
	 * share a block, so the plans are independent.
	 */
	for (size_t g = 0; g < n; g++) {
		int k = plan_group(img->pixels, sel,
				   sel->idx + g * S2S_STEGO_GROUP, payload[g],
				   plan + count);

		if (k < 0) {
			err = S2S_ERR_COVER;
			goto out;
		}
		count += (size_t)k;
	}
	for (size_t i = 0; i < count; i++)
		img->pixels[plan[i].pos] = plan[i].val;
	if (changes)
		*changes = (unsigned)count;
out:
	if (plan != small)
		free(plan);
	return err;
}

enum s2s_err
s2s_stego_extract_sel(const struct s2s_stego_sel *sel,
		      const struct s2s_image *img, uint8_t *payload, size_t n)
{
	if (!sel || !img || !img->pixels || (!payload && n))
		return S2S_ERR_INVAL;
	if (img->width != sel->width || img->height != sel->height)
		return S2S_ERR_INVAL;
	if (n > sel->groups)
		return S2S_ERR_COVER;
	for (size_t g = 0; g < n; g++)
		payload[g] = (uint8_t)syndrome(img->pixels, sel,
					       sel->idx + g * S2S_STEGO_GROUP);
	return S2S_OK;
}

enum s2s_err
s2s_stego_embed(struct s2s_image *img, const uint8_t key[32],
		const uint8_t *payload, size_t n, unsigned *changes)
{
	struct s2s_stego_sel *sel;
	enum s2s_err err;

	if (changes)
		*changes = 0;
	if (!img || !img->pixels || !key || (!payload && n))
		return S2S_ERR_INVAL;
	if (!n)
		return S2S_OK;
	if ((err = s2s_stego_sel_create(key, img->width, img->height, n, &sel)))
		return err;
	err = s2s_stego_embed_sel(sel, img, payload, n, changes);
	s2s_stego_sel_destroy(sel);
	return err;
}

enum s2s_err
s2s_stego_extract(const struct s2s_image *img, const uint8_t key[32],
		  uint8_t *payload, size_t n)
{
	struct s2s_stego_sel *sel;
	enum s2s_err err;

	if (!img || !img->pixels || !key || (!payload && n))
		return S2S_ERR_INVAL;
	if (!n)
		return S2S_OK;
	if ((err = s2s_stego_sel_create(key, img->width, img->height, n, &sel)))
		return err;
	err = s2s_stego_extract_sel(sel, img, payload, n);
	s2s_stego_sel_destroy(sel);
	return err;
}

/* ---- Parity maps ------------------------------------------------------------ */

void
s2s_stego_parity_map(const uint8_t *const *rows, uint32_t width,
		     uint32_t height, uint8_t *map)
{
	uint32_t hw = width / 2;

	for (uint32_t i = 0; i < height / 2; i++) {
		const uint8_t *a = rows[2 * i], *b = rows[2 * i + 1];
		uint8_t *m = map + (size_t)i * hw;
		uint32_t j = 0;

		/* Four blocks per 64-bit word: XOR the two rows, fold each
		 * byte pair, keep bit 0 of each pair (byte order does not
		 * matter for a parity, only which pair a bit belongs to). */
		for (; j + 4 <= hw; j += 4) {
			uint64_t x, y;

			memcpy(&x, a + 2 * j, 8);
			memcpy(&y, b + 2 * j, 8);
			x ^= y;
			x ^= x >> 8;
			x &= 0x0001000100010001ull;
			/* Pair k's bit lands in memory byte 2k (little-
			 * endian) or 2k + 1 (big-endian); the other is 0. */
			{
				uint8_t t[8];

				memcpy(t, &x, 8);
				m[j] = t[0] | t[1];
				m[j + 1] = t[2] | t[3];
				m[j + 2] = t[4] | t[5];
				m[j + 3] = t[6] | t[7];
			}
		}
		for (; j < hw; j++)
			m[j] = (uint8_t)((a[2 * j] ^ a[2 * j + 1] ^ b[2 * j] ^
					  b[2 * j + 1]) & 1);
	}
}

static unsigned
syndrome_map(const uint8_t *map, const uint32_t *idx)
{
	unsigned s0 = 0, s1 = 0, s2 = 0, s3 = 0, e;

	for (e = 1; e + 3 <= S2S_STEGO_GROUP; e += 4) {
		s0 ^= e & (0u - map[idx[e - 1]]);
		s1 ^= (e + 1) & (0u - map[idx[e]]);
		s2 ^= (e + 2) & (0u - map[idx[e + 1]]);
		s3 ^= (e + 3) & (0u - map[idx[e + 2]]);
	}
	for (; e <= S2S_STEGO_GROUP; e++)
		s0 ^= e & (0u - map[idx[e - 1]]);
	return s0 ^ s1 ^ s2 ^ s3;
}

enum s2s_err
s2s_stego_extract_map(const struct s2s_stego_sel *sel, const uint8_t *map,
		      uint8_t *payload, size_t n)
{
	if (!sel || !map || (!payload && n))
		return S2S_ERR_INVAL;
	if (n > sel->groups)
		return S2S_ERR_COVER;
	for (size_t g = 0; g < n; g++)
		payload[g] = (uint8_t)syndrome_map(map,
						   sel->idx + g * S2S_STEGO_GROUP);
	return S2S_OK;
}

/* Plan with syndromes from map (syn NULL) or given (syn). */
static enum s2s_err
plan(const struct s2s_stego_sel *sel, const struct s2s_image *img,
     const uint8_t *map, const uint8_t *syn, const uint8_t *payload,
     size_t n, struct s2s_image_change *out, size_t *count)
{
	size_t k = 0;

	if (count)
		*count = 0;
	if (!sel || !img || !img->pixels || (!map && !syn) || !out ||
	    !count || (!payload && n))
		return S2S_ERR_INVAL;
	if (img->width != sel->width || img->height != sel->height)
		return S2S_ERR_INVAL;
	if (n > sel->groups)
		return S2S_ERR_COVER;
	for (size_t g = 0; g < n; g++) {
		const size_t at = g * S2S_STEGO_GROUP;
		unsigned sy = syn ? syn[g] : syndrome_map(map, sel->idx + at);
		int r = plan_group_syn(img->pixels, sel, sel->idx + at, sy,
				       payload[g], out + k);

		if (r < 0)
			return S2S_ERR_COVER;
		k += (size_t)r;
	}
	*count = k;
	return S2S_OK;
}

enum s2s_err
s2s_stego_plan_map(const struct s2s_stego_sel *sel,
		   const struct s2s_image *img, const uint8_t *map,
		   const uint8_t *payload, size_t n,
		   struct s2s_image_change *out, size_t *count)
{
	return plan(sel, img, map, NULL, payload, n, out, count);
}

enum s2s_err
s2s_stego_plan_syn(const struct s2s_stego_sel *sel,
		   const struct s2s_image *img, const uint8_t *syn,
		   const uint8_t *payload, size_t n,
		   struct s2s_image_change *out, size_t *count)
{
	return plan(sel, img, NULL, syn, payload, n, out, count);
}
