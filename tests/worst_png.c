/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worst_png.h"

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "worst_png: out of memory\n");
		abort();
	}
	return p;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Append a chunk to out at *pos. */
static void
chunk(uint8_t *out, size_t *pos, const char *type, const uint8_t *body,
      size_t n)
{
	uint8_t *c = out + *pos;

	put32(c, (uint32_t)n);
	memcpy(c + 4, type, 4);
	if (n)
		memcpy(c + 8, body, n);
	put32(c + 8 + n, (uint32_t)libdeflate_crc32(0, c + 4, 4 + n));
	*pos += 12 + n;
}

static uint8_t *
zlib(const uint8_t *in, size_t n, int level, size_t *out_len)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
	size_t cap, got;
	uint8_t *out;

	if (!c)
		abort();
	cap = libdeflate_zlib_compress_bound(c, n);
	out = xmalloc(cap);
	got = libdeflate_zlib_compress(c, in, n, out, cap);
	libdeflate_free_compressor(c);
	if (!got)
		abort();
	*out_len = got;
	return out;
}

/* The body of one compressed ancillary chunk. */
static uint8_t *
anc_body(const char *type, size_t inflated, size_t *n)
{
	uint8_t *zeros = calloc(1, inflated ? inflated : 1), *z, *b;
	size_t zl, h;
	static const uint8_t ztxt[] = "Comment\0\0";          /* kw, method */
	static const uint8_t itxt[] = "Comment\0\1\0\0\0";     /* kw, flag,
								 method, lang,
								 translated */
	static const uint8_t iccp[] = "icc\0\0";
	const uint8_t *hd;

	if (!zeros)
		abort();
	z = zlib(zeros, inflated, 12, &zl);
	free(zeros);
	if (!strcmp(type, "iTXt")) {
		hd = itxt;
		h = sizeof(itxt) - 1;
	} else if (!strcmp(type, "iCCP")) {
		hd = iccp;
		h = sizeof(iccp) - 1;
	} else {
		hd = ztxt;
		h = sizeof(ztxt) - 1;
	}
	b = xmalloc(h + zl);
	memcpy(b, hd, h);
	memcpy(b + h, z, zl);
	free(z);
	*n = h + zl;
	return b;
}

size_t
wp_raw_len(const struct wp_spec *s)
{
	unsigned ch = s->ctype == 2 ? 3 : s->ctype == 4 ? 2 :
		      s->ctype == 6 ? 4 : 1;
	size_t rb = ((size_t)s->width * ch * s->depth + 7) / 8;

	return (size_t)s->height * (1 + rb);
}

uint8_t *
wp_png(const struct wp_spec *s, size_t *len)
{
	size_t raw_len = wp_raw_len(s), rb = raw_len / s->height - 1;
	uint8_t *raw = xmalloc(raw_len), *z, *out, ihdr[13];
	size_t zl, pos = 8, step, cap;
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n',
					0x1a, '\n' };

	for (uint32_t y = 0; y < s->height; y++) {
		uint8_t *r = raw + (size_t)y * (rb + 1);

		r[0] = s->filter;
		if (s->data)
			memcpy(r + 1, s->data + (size_t)y * rb, rb);
		else
			memset(r + 1, s->fill, rb);
	}
	z = zlib(raw, raw_len, s->zlevel, &zl);
	free(raw);
	step = s->idat_size ? s->idat_size : (zl ? zl : 1);
	cap = 8 + 25 + 12 + zl + 12 * (zl / step + 2);
	out = xmalloc(cap);
	memcpy(out, sig, 8);
	put32(ihdr, s->width);
	put32(ihdr + 4, s->height);
	ihdr[8] = s->depth;
	ihdr[9] = s->ctype;
	ihdr[10] = 0;
	ihdr[11] = 0;
	ihdr[12] = s->interlace;
	chunk(out, &pos, "IHDR", ihdr, 13);
	for (size_t off = 0; off < zl; off += step)
		chunk(out, &pos, "IDAT", z + off, zl - off < step ? zl - off
							     : step);
	chunk(out, &pos, "IEND", NULL, 0);
	free(z);
	*len = pos;
	if (s->n_anc) {
		uint8_t *r = wp_add_ancillary(out, pos, s->n_anc, s->anc_type,
					      s->anc_inflated, s->max_len, len);

		free(out);
		return r;
	}
	return out;
}

uint8_t *
wp_add_ancillary(const uint8_t *png, size_t len, unsigned n,
		 const char *type, size_t inflated, size_t max_len,
		 size_t *out_len)
{
	size_t bl, pos = 33;
	uint8_t *body = anc_body(type, inflated, &bl);
	uint8_t *out = xmalloc(len + (size_t)n * (12 + bl));

	memcpy(out, png, 33);
	for (unsigned i = 0; i < n; i++) {
		if (max_len && pos + 12 + bl + (len - 33) > max_len)
			break;
		chunk(out, &pos, type, body, bl);
	}
	memcpy(out + pos, png + 33, len - 33);
	*out_len = pos + len - 33;
	free(body);
	return out;
}

uint8_t *
wp_resplit_idat(const uint8_t *png, size_t len, size_t idat_size,
		size_t *out_len)
{
	uint8_t *data = xmalloc(len), *out;
	size_t dl = 0, pos, first = 0, end = 0, off;

	/* Gather the IDAT bodies; remember where they start and end. */
	for (off = 8; off + 12 <= len; off += 12 + get32(png + off)) {
		uint32_t n = get32(png + off);

		if (!memcmp(png + off + 4, "IDAT", 4)) {
			if (!first)
				first = off;
			memcpy(data + dl, png + off + 8, n);
			dl += n;
			end = off + 12 + n;
		}
	}
	out = xmalloc(first + 12 * (dl / idat_size + 2) + dl + (len - end));
	memcpy(out, png, first);
	pos = first;
	for (off = 0; off < dl; off += idat_size)
		chunk(out, &pos, "IDAT", data + off,
		      dl - off < idat_size ? dl - off : idat_size);
	memcpy(out + pos, png + end, len - end);
	*out_len = pos + len - end;
	free(data);
	return out;
}
