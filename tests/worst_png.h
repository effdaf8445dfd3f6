/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * worst_png.h - crafted PNGs for the bounded-work tests and `make bench`
 * (issue 10, class 3): many compressed ancillary chunks, many tiny IDATs,
 * deflate bombs whose scanlines all need the slowest filter, and the like.
 * Written with libdeflate, independent of the codec under test.
 */
#ifndef S2S_WORST_PNG_H
#define S2S_WORST_PNG_H

#include <stddef.h>
#include <stdint.h>

struct wp_spec {
	uint32_t width, height;
	uint8_t depth, ctype, interlace;
	/* Scanline bytes without filter bytes (NULL: every byte is fill). */
	const uint8_t *data;
	uint8_t fill;
	uint8_t filter;          /* filter byte of every row, 0..4 */
	int zlevel;              /* libdeflate level 0..12 */
	size_t idat_size;        /* IDAT body size, 0: one IDAT */
	/* n_anc ancillary chunks of anc_type right after IHDR, each a zlib
	 * stream of anc_inflated zero bytes ("zTXt", "iTXt", "iCCP"), until
	 * the file would exceed max_len (0: no cap). */
	unsigned n_anc;
	const char *anc_type;
	size_t anc_inflated;
	size_t max_len;
};

/* malloc()ed PNG (free() it); aborts on allocation failure. */
uint8_t *wp_png(const struct wp_spec *s, size_t *len);

/* A copy of png with n ancillary chunks (as above) inserted after IHDR,
 * stopping before the result would exceed max_len (0: no cap). */
uint8_t *wp_add_ancillary(const uint8_t *png, size_t len, unsigned n,
			  const char *type, size_t inflated, size_t max_len,
			  size_t *out_len);

/* A copy of png with its IDAT data re-split into chunks of idat_size. */
uint8_t *wp_resplit_idat(const uint8_t *png, size_t len, size_t idat_size,
			 size_t *out_len);

/* Scanline bytes (filter byte included) of an image per spec. */
size_t wp_raw_len(const struct wp_spec *s);

#endif
