/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bio.c - Fx: two signature images -> Rv, byte-exact per
 * signal-processing.md section 3 (steps A1-A9).
 *
 * Everything is integer arithmetic so that two implementations (this one
 * and tests/vectors/fx_ref.py) agree bit for bit.  The canvases, the LBP
 * code image and every intermediate derived from a signature are wiped
 * before being freed: together with the stored templates they determine Rv.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/bio.h"
#include "s2s/secmem.h"

#define HC S2S_BIO_CANVAS_H
#define WC S2S_BIO_CANVAS_W
#define CANVAS_SIZE ((size_t)HC * WC)

#define BLOCKS_R 3
#define BLOCKS_C 4
#define BLOCK_H 100
#define BLOCK_W 200
#define STRIDE_R 40
#define STRIDE_C 80
#define BINS 255

/*
 * A2: integer Otsu.  Score(k) = (N s_k - n_k S_T)^2 / (n_k (N - n_k)),
 * compared as fractions by cross-multiplication.  With N <= 2^18 the
 * numerator is below 2^88 and the denominator below 2^36, so both products
 * stay below 2^124 in unsigned __int128.  The first maximum wins (strict >).
 * Returns false if there is no valid k (a uniform image).
 */
static bool
otsu(const uint8_t *px, size_t n, unsigned *t)
{
	uint64_t hist[256] = { 0 };
	uint64_t st = 0, nk = 0, sk = 0;
	unsigned __int128 best_num = 0, best_den = 1;
	bool found = false;

	for (size_t i = 0; i < n; i++)
		hist[px[i]]++;
	for (unsigned v = 0; v < 256; v++)
		st += (uint64_t)v * hist[v];
	for (unsigned k = 0; k < 256; k++) {
		int64_t diff;
		uint64_t mag;
		unsigned __int128 num, den;

		nk += hist[k];
		sk += (uint64_t)k * hist[k];
		if (nk == 0 || nk == n)
			continue;
		diff = (int64_t)(n * sk) - (int64_t)(nk * st);
		mag = diff < 0 ? (uint64_t)-diff : (uint64_t)diff;
		num = (unsigned __int128)mag * mag;
		den = (unsigned __int128)nk * (n - nk);
		if (!found || num * best_den > best_num * den) {
			best_num = num;
			best_den = den;
			*t = k;
			found = true;
		}
	}
	return found;
}

/*
 * Exact area weights of one axis (A4): output cell o spans
 * [o n_in, (o+1) n_in), source pixel i spans [i n_out, (i+1) n_out); the
 * weight is their overlap, and an output's weights sum to n_in.
 * axis_span() gives the range of i with a non-zero overlap.
 */
struct axis_w {
	uint32_t first;   /* first source index overlapping this output */
	uint32_t count;   /* number of overlapping sources */
};

static uint32_t
overlap(uint64_t o, uint64_t i, uint64_t n_in, uint64_t n_out)
{
	uint64_t lo = o * n_in > i * n_out ? o * n_in : i * n_out;
	uint64_t hi = (o + 1) * n_in < (i + 1) * n_out ? (o + 1) * n_in
							: (i + 1) * n_out;

	return hi > lo ? (uint32_t)(hi - lo) : 0;
}

static void
axis_span(uint32_t o, uint32_t n_in, uint32_t n_out, struct axis_w *aw)
{
	uint64_t lo = (uint64_t)o * n_in, hi = (uint64_t)(o + 1) * n_in;
	uint32_t first = (uint32_t)(lo / n_out);
	uint32_t last = (uint32_t)((hi + n_out - 1) / n_out);  /* exclusive */

	aw->first = first;
	aw->count = last - first;
}

/*
 * A4: resample the cleaned crop (cw x ch, row stride `stride`) to ow x oh
 * and paste it centred on the white canvas.  Horizontal pass keeps exact
 * sums (scale cw), vertical pass adds scale ch, one rounding at the end.
 */
static enum s2s_err
fit(const uint8_t *crop, size_t stride, uint32_t cw, uint32_t ch,
    uint8_t *canvas)
{
	uint32_t ow, oh, x0, y0;
	uint64_t *tmp, d = (uint64_t)cw * ch;
	size_t tmp_n;

	if ((uint64_t)ch * WC <= (uint64_t)cw * HC) {
		ow = WC;
		oh = (uint32_t)(((uint64_t)ch * WC + cw / 2) / cw);
		if (!oh)
			oh = 1;
	} else {
		oh = HC;
		ow = (uint32_t)(((uint64_t)cw * HC + ch / 2) / ch);
		if (!ow)
			ow = 1;
	}
	tmp_n = (size_t)ch * ow;
	tmp = malloc(tmp_n * sizeof(*tmp));
	if (!tmp)
		return S2S_ERR_NOMEM;
	for (uint32_t y = 0; y < ch; y++) {
		const uint8_t *row = crop + (size_t)y * stride;

		for (uint32_t ox = 0; ox < ow; ox++) {
			struct axis_w aw;
			uint64_t s = 0;

			axis_span(ox, cw, ow, &aw);
			for (uint32_t k = 0; k < aw.count; k++) {
				uint32_t i = aw.first + k;

				s += (uint64_t)overlap(ox, i, cw, ow) * row[i];
			}
			tmp[(size_t)y * ow + ox] = s;
		}
	}
	memset(canvas, 255, CANVAS_SIZE);
	y0 = (HC - oh) / 2;
	x0 = (WC - ow) / 2;
	for (uint32_t oy = 0; oy < oh; oy++) {
		struct axis_w aw;

		axis_span(oy, ch, oh, &aw);
		for (uint32_t ox = 0; ox < ow; ox++) {
			uint64_t s = 0;

			for (uint32_t k = 0; k < aw.count; k++) {
				uint32_t j = aw.first + k;

				s += (uint64_t)overlap(oy, j, ch, oh) *
				     tmp[(size_t)j * ow + ox];
			}
			canvas[(size_t)(y0 + oy) * WC + x0 + ox] =
				(uint8_t)((s + d / 2) / d);
		}
	}
	s2s_memzero(tmp, tmp_n * sizeof(*tmp));
	free(tmp);
	return S2S_OK;
}

enum s2s_err
s2s_bio_otsu(const uint8_t *px, size_t n, uint8_t *t)
{
	unsigned k;

	if (!px || !n || !t)
		return S2S_ERR_INVAL;
	if ((uint64_t)n > S2S_BIO_MAX_PIXELS)
		return S2S_ERR_TOO_BIG;
	if (!otsu(px, n, &k))
		return S2S_ERR_NO_INK;
	*t = (uint8_t)k;
	return S2S_OK;
}

enum s2s_err
s2s_bio_normalize(const struct s2s_image *sig,
		  uint8_t canvas[S2S_BIO_CANVAS_H * S2S_BIO_CANVAS_W])
{
	uint32_t w, h, x_lo, x_hi = 0, y_lo, y_hi = 0, cw, ch;
	size_t n;
	unsigned t;
	uint8_t *crop;
	enum s2s_err err;

	if (!sig || !sig->pixels || !sig->width || !sig->height || !canvas)
		return S2S_ERR_INVAL;
	w = sig->width;
	h = sig->height;
	n = (size_t)w * h;
	if ((uint64_t)w * h > S2S_BIO_MAX_PIXELS)
		return S2S_ERR_TOO_BIG;
	if (!otsu(sig->pixels, n, &t))
		return S2S_ERR_NO_INK;

	/* A3: bounding box of the ink (pixels <= t), inclusive. */
	x_lo = w;
	y_lo = h;
	for (uint32_t y = 0; y < h; y++) {
		const uint8_t *row = sig->pixels + (size_t)y * w;

		for (uint32_t x = 0; x < w; x++) {
			if (row[x] > t)
				continue;
			if (x < x_lo)
				x_lo = x;
			if (x > x_hi)
				x_hi = x;
			if (y < y_lo)
				y_lo = y;
			y_hi = y;
		}
	}
	if (x_lo == w)
		return S2S_ERR_NO_INK;
	cw = x_hi - x_lo + 1;
	ch = y_hi - y_lo + 1;
	crop = malloc((size_t)cw * ch);
	if (!crop)
		return S2S_ERR_NOMEM;
	for (uint32_t y = 0; y < ch; y++) {
		const uint8_t *src = sig->pixels + (size_t)(y_lo + y) * w + x_lo;
		uint8_t *dst = crop + (size_t)y * cw;

		for (uint32_t x = 0; x < cw; x++)
			dst[x] = src[x] > t ? 255 : src[x];
	}
	err = fit(crop, cw, cw, ch, canvas);
	s2s_memzero(crop, (size_t)cw * ch);
	free(crop);
	return err;
}

void
s2s_bio_lbp(const uint8_t *img, uint32_t w, uint32_t h, uint8_t *codes)
{
	static const int dy[8] = { -1, -1, -1, 0, 0, 1, 1, 1 };
	static const int dx[8] = { -1, 0, 1, -1, 1, -1, 0, 1 };

	for (uint32_t y = 0; y < h; y++) {
		for (uint32_t x = 0; x < w; x++) {
			uint8_t c = img[(size_t)y * w + x];
			unsigned code = 0;

			for (int k = 0; k < 8; k++) {
				int64_t ny = (int64_t)y + dy[k];
				int64_t nx = (int64_t)x + dx[k];

				/* Clamp-to-edge neighbours (A6). */
				ny = ny < 0 ? 0 : ny >= h ? h - 1 : ny;
				nx = nx < 0 ? 0 : nx >= w ? w - 1 : nx;
				if (img[(size_t)ny * w + (size_t)nx] >= c)
					code |= 1u << k;
			}
			codes[(size_t)y * w + x] = (uint8_t)code;
		}
	}
}

enum s2s_err
s2s_bio_features(const struct s2s_image *a, const struct s2s_image *b,
		 uint16_t rv[S2S_RV_LEN])
{
	uint8_t *ca, *cb;
	enum s2s_err err;

	if (!a || !b || !rv)
		return S2S_ERR_INVAL;
	ca = malloc(CANVAS_SIZE);
	cb = malloc(CANVAS_SIZE);
	if (!ca || !cb) {
		err = S2S_ERR_NOMEM;
		goto out;
	}
	if ((err = s2s_bio_normalize(a, ca)) ||
	    (err = s2s_bio_normalize(b, cb)))
		goto out_wipe;

	/* A5: union of the ink = pixel-wise minimum (commutative). */
	for (size_t i = 0; i < CANVAS_SIZE; i++)
		if (cb[i] < ca[i])
			ca[i] = cb[i];
	/* A6: the LBP codes go into cb, which is no longer needed. */
	s2s_bio_lbp(ca, WC, HC, cb);

	/* A7-A8: 12 blocks x 255 bins, code 255 discarded. */
	memset(rv, 0, S2S_RV_LEN * sizeof(*rv));
	for (unsigned r = 0; r < BLOCKS_R; r++) {
		for (unsigned c = 0; c < BLOCKS_C; c++) {
			uint16_t *hist = rv + BINS * (BLOCKS_C * r + c);

			for (unsigned y = STRIDE_R * r;
			     y < STRIDE_R * r + BLOCK_H; y++) {
				const uint8_t *row = cb + (size_t)y * WC;

				for (unsigned x = STRIDE_C * c;
				     x < STRIDE_C * c + BLOCK_W; x++)
					if (row[x] != 255)
						hist[row[x]]++;
			}
		}
	}
out_wipe:
	s2s_memzero(ca, CANVAS_SIZE);
	s2s_memzero(cb, CANVAS_SIZE);
out:
	free(ca);
	free(cb);
	return err;
}

void
s2s_bio_rv_serialize(const uint16_t rv[S2S_RV_LEN],
		     uint8_t out[2 * S2S_RV_LEN])
{
	for (size_t i = 0; i < S2S_RV_LEN; i++) {
		out[2 * i] = (uint8_t)(rv[i] >> 8);
		out[2 * i + 1] = (uint8_t)rv[i];
	}
}
