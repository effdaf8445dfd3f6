/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image.c - 8-bit grayscale images: PNG through libpng's low-level API,
 * binary PGM by hand, MSE/PSNR.
 *
 * Why the low-level API: the simplified API (png_image_finish_read) applies
 * gAMA/sRGB colour management, which rewrote every pixel of a stego image
 * (signal-processing.md 5.5) and destroyed the payload.  Here the only
 * transforms asked of libpng are lossless layout changes (palette to RGB,
 * 1/2/4-bit gray to 8 bits, 16 to 8 bits by keeping the high byte); the
 * RGB-to-gray conversion is ours and exact.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "s2s/image.h"

#define DEF_MAX_SIDE 4096u
#define DEF_MAX_PIXELS ((size_t)4096 * 4096)
#define DEF_MAX_BYTES ((size_t)16 << 20)
/* Ancillary chunks (iCCP, zTXt, ...) may not make libpng allocate more. */
#define CHUNK_MALLOC_MAX ((png_alloc_size_t)1 << 20)

enum s2s_err
s2s_image_alloc(struct s2s_image *img, uint32_t width, uint32_t height,
		uint8_t value)
{
	size_t n;

	if (!img || !width || !height)
		return S2S_ERR_INVAL;
	if ((size_t)width > SIZE_MAX / height)
		return S2S_ERR_TOO_BIG;
	n = (size_t)width * height;
	img->pixels = malloc(n);
	if (!img->pixels)
		return S2S_ERR_NOMEM;
	memset(img->pixels, value, n);
	img->width = width;
	img->height = height;
	return S2S_OK;
}

void
s2s_image_free(struct s2s_image *img)
{
	if (!img)
		return;
	free(img->pixels);
	memset(img, 0, sizeof(*img));
}

static void
get_limits(const struct s2s_image_limits *in, struct s2s_image_limits *out)
{
	out->max_width = in && in->max_width ? in->max_width : DEF_MAX_SIDE;
	out->max_height = in && in->max_height ? in->max_height : DEF_MAX_SIDE;
	out->max_pixels = in && in->max_pixels ? in->max_pixels : DEF_MAX_PIXELS;
	out->max_bytes = in && in->max_bytes ? in->max_bytes : DEF_MAX_BYTES;
}

static bool
within(const struct s2s_image_limits *lim, uint64_t w, uint64_t h)
{
	return w <= lim->max_width && h <= lim->max_height &&
	       w * h <= lim->max_pixels;
}

static uint8_t
rgb_to_y(unsigned r, unsigned g, unsigned b)
{
	return (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
}

/* ---- PNG reading --------------------------------------------------------- */

/*
 * Everything the decoder changes after setjmp() lives here, in the caller's
 * frame, so a longjmp() cannot leave it in a clobbered register.
 */
struct png_rd {
	const uint8_t *buf;
	size_t len, pos;
	bool truncated;          /* the reader ran off the end of buf */
	enum s2s_err err;        /* set before jumping out for our own reasons */
	struct s2s_image_limits lim;
	uint8_t *data;           /* decoded rows (1..4 bytes per pixel) */
	png_bytep *rows;
	struct s2s_image *out;
};

static void
png_rd_error(png_structp png, png_const_charp msg)
{
	(void)msg;
	png_longjmp(png, 1);
}

static void
png_rd_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void
png_rd_read(png_structp png, png_bytep dst, size_t n)
{
	struct png_rd *rd = png_get_io_ptr(png);

	if (n > rd->len - rd->pos) {
		rd->truncated = true;
		png_error(png, "truncated");
	}
	memcpy(dst, rd->buf + rd->pos, n);
	rd->pos += n;
}

/* The body that may longjmp: only touches rd and the libpng structs. */
static void
png_decode_body(png_structp png, png_infop info, struct png_rd *rd)
{
	png_uint_32 w, h;
	int depth, ctype, ch;
	size_t rowbytes, n;

	png_set_read_fn(png, rd, png_rd_read);
	png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
	png_set_chunk_malloc_max(png, CHUNK_MALLOC_MAX);
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
	if (!within(&rd->lim, w, h)) {
		rd->err = S2S_ERR_TOO_BIG;
		png_longjmp(png, 1);
	}
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	if (depth == 16)
		png_set_strip_16(png);            /* keeps the high byte: v >> 8 */
	(void)png_set_interlace_handling(png);
	png_read_update_info(png, info);
	ch = png_get_channels(png, info);
	rowbytes = png_get_rowbytes(png, info);
	if (ch < 1 || ch > 4 || rowbytes != (size_t)w * (size_t)ch) {
		rd->err = S2S_ERR_IMAGE;
		png_longjmp(png, 1);
	}
	rd->data = malloc(rowbytes * h);
	rd->rows = malloc(sizeof(*rd->rows) * h);
	if (!rd->data || !rd->rows) {
		rd->err = S2S_ERR_NOMEM;
		png_longjmp(png, 1);
	}
	for (png_uint_32 y = 0; y < h; y++)
		rd->rows[y] = rd->data + (size_t)y * rowbytes;
	png_read_image(png, rd->rows);
	png_read_end(png, NULL);

	/* Gray (with or without alpha) keeps channel 0; RGB(A) uses Y. */
	n = (size_t)w * h;
	if (ch == 1) {
		rd->out->pixels = rd->data;
		rd->data = NULL;
	} else {
		rd->out->pixels = malloc(n);
		if (!rd->out->pixels) {
			rd->err = S2S_ERR_NOMEM;
			png_longjmp(png, 1);
		}
		for (size_t i = 0; i < n; i++) {
			const uint8_t *p = rd->data + i * (size_t)ch;

			rd->out->pixels[i] = ch < 3 ? p[0]
						    : rgb_to_y(p[0], p[1], p[2]);
		}
	}
	rd->out->width = w;
	rd->out->height = h;
}

/* The setjmp() frame: no local of this function changes after it. */
static enum s2s_err
png_decode_run(png_structp png, png_infop info, struct png_rd *rd)
{
	if (setjmp(png_jmpbuf(png)))
		return rd->err ? rd->err
		       : rd->truncated ? S2S_ERR_TRUNCATED : S2S_ERR_IMAGE;
	png_decode_body(png, info, rd);
	return S2S_OK;
}

static enum s2s_err
png_decode(const uint8_t *buf, size_t len,
	   const struct s2s_image_limits *lim, struct s2s_image *out)
{
	struct png_rd rd = { .buf = buf, .len = len, .lim = *lim, .out = out };
	png_structp png;
	png_infop info = NULL;
	enum s2s_err err = S2S_OK;

	/*
	 * Refuse huge dimensions from the IHDR bytes before libpng sees them
	 * (libpng itself rejects widths above 2^31 - 1 as corrupt).
	 */
	if (len >= 24 && !memcmp(buf + 12, "IHDR", 4)) {
		uint64_t w = (uint64_t)buf[16] << 24 | (uint64_t)buf[17] << 16 |
			     (uint64_t)buf[18] << 8 | buf[19];
		uint64_t h = (uint64_t)buf[20] << 24 | (uint64_t)buf[21] << 16 |
			     (uint64_t)buf[22] << 8 | buf[23];

		if (!within(lim, w, h))
			return S2S_ERR_TOO_BIG;
	}
	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_rd_error,
				     png_rd_warning);
	if (!png)
		return S2S_ERR_NOMEM;
	info = png_create_info_struct(png);
	if (!info) {
		err = S2S_ERR_NOMEM;
		goto out_png;
	}
	if ((err = png_decode_run(png, info, &rd))) {
		free(out->pixels);
		memset(out, 0, sizeof(*out));
	}
	free(rd.rows);
	free(rd.data);
out_png:
	png_destroy_read_struct(&png, info ? &info : NULL, NULL);
	return err;
}

/* ---- PGM ------------------------------------------------------------------ */

/*
 * One header field of a P5 file: skip whitespace and '#' comments, read a
 * decimal number.  S2S_ERR_TRUNCATED if the buffer ends first.
 */
static enum s2s_err
pgm_field(const uint8_t *buf, size_t len, size_t *pos, uint32_t *val)
{
	size_t p = *pos;
	uint64_t v = 0;
	size_t digits = 0;

	for (;;) {
		if (p >= len)
			return S2S_ERR_TRUNCATED;
		if (buf[p] == '#') {
			while (p < len && buf[p] != '\n')
				p++;
		} else if (buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\n' ||
			   buf[p] == '\r' || buf[p] == '\v' || buf[p] == '\f') {
			p++;
		} else {
			break;
		}
	}
	while (p < len && buf[p] >= '0' && buf[p] <= '9') {
		v = v * 10 + (uint64_t)(buf[p++] - '0');
		if (v > UINT32_MAX)
			return S2S_ERR_TOO_BIG;
		digits++;
	}
	if (p >= len)
		return S2S_ERR_TRUNCATED;
	if (!digits)
		return S2S_ERR_IMAGE;
	*val = (uint32_t)v;
	*pos = p;
	return S2S_OK;
}

static enum s2s_err
pgm_decode(const uint8_t *buf, size_t len,
	   const struct s2s_image_limits *lim, struct s2s_image *out)
{
	size_t pos = 2, n, bps;
	uint32_t w, h, maxval;
	enum s2s_err err;

	if ((err = pgm_field(buf, len, &pos, &w)) ||
	    (err = pgm_field(buf, len, &pos, &h)))
		return err == S2S_ERR_TOO_BIG ? S2S_ERR_TOO_BIG : err;
	if (!w || !h)
		return S2S_ERR_IMAGE;
	if (!within(lim, w, h))
		return S2S_ERR_TOO_BIG;
	if ((err = pgm_field(buf, len, &pos, &maxval)))
		return err == S2S_ERR_TOO_BIG ? S2S_ERR_IMAGE : err;
	if (!maxval || maxval > 65535)
		return S2S_ERR_IMAGE;
	/* Exactly one whitespace byte ends the header. */
	if (buf[pos] != ' ' && buf[pos] != '\t' && buf[pos] != '\n' &&
	    buf[pos] != '\r')
		return S2S_ERR_IMAGE;
	pos++;
	n = (size_t)w * h;
	bps = maxval > 255 ? 2 : 1;
	if (len - pos < n * bps)
		return S2S_ERR_TRUNCATED;
	out->pixels = malloc(n);
	if (!out->pixels)
		return S2S_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t v = bps == 2 ? (uint32_t)buf[pos + 2 * i] << 8 |
					buf[pos + 2 * i + 1]
				      : buf[pos + i];

		if (v > maxval) {
			s2s_image_free(out);
			return S2S_ERR_IMAGE;
		}
		/* 255 and 65535 are the exact A1 rules; others are rescaled. */
		if (maxval == 65535)
			v >>= 8;
		else if (maxval != 255)
			v = (v * 255 + maxval / 2) / maxval;
		out->pixels[i] = (uint8_t)v;
	}
	out->width = w;
	out->height = h;
	return S2S_OK;
}

enum s2s_err
s2s_image_decode(const uint8_t *buf, size_t len,
		 const struct s2s_image_limits *limits, struct s2s_image *out)
{
	static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G',
					    '\r', '\n', 0x1a, '\n' };
	struct s2s_image_limits lim;

	if (!out || (!buf && len))
		return S2S_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	get_limits(limits, &lim);
	if (len > lim.max_bytes)
		return S2S_ERR_TOO_BIG;
	if (!len)
		return S2S_ERR_TRUNCATED;
	if (len >= 2 && buf[0] == 'P' && buf[1] == '5')
		return pgm_decode(buf, len, &lim, out);
	if (len == 1 && buf[0] == 'P')
		return S2S_ERR_TRUNCATED;
	if (len >= 8 && !memcmp(buf, png_sig, 8))
		return png_decode(buf, len, &lim, out);
	/* A prefix of a PNG signature is a truncated PNG. */
	if (len < 8 && !memcmp(buf, png_sig, len))
		return S2S_ERR_TRUNCATED;
	return S2S_ERR_IMAGE;
}

enum s2s_err
s2s_image_read_file(const char *path, const struct s2s_image_limits *limits,
		    struct s2s_image *out)
{
	struct s2s_image_limits lim;
	struct stat st;
	uint8_t *buf = NULL;
	size_t len;
	FILE *f;
	enum s2s_err err;

	if (!path || !out)
		return S2S_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	get_limits(limits, &lim);
	f = fopen(path, "rb");
	if (!f)
		return S2S_ERR_IO;
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		err = S2S_ERR_IO;
		goto out_file;
	}
	if ((uint64_t)st.st_size > lim.max_bytes) {
		err = S2S_ERR_TOO_BIG;
		goto out_file;
	}
	len = (size_t)st.st_size;
	buf = malloc(len ? len : 1);
	if (!buf) {
		err = S2S_ERR_NOMEM;
		goto out_file;
	}
	if (fread(buf, 1, len, f) != len) {
		err = S2S_ERR_IO;
		goto out_buf;
	}
	err = s2s_image_decode(buf, len, &lim, out);
out_buf:
	free(buf);
out_file:
	fclose(f);
	return err;
}

/* ---- PNG writing ---------------------------------------------------------- */

struct png_wr {
	uint8_t *buf;
	size_t len, cap;
	bool nomem;
};

static void
png_wr_write(png_structp png, png_bytep src, size_t n)
{
	struct png_wr *wr = png_get_io_ptr(png);

	if (n > wr->cap - wr->len) {
		size_t cap = wr->cap ? wr->cap : 4096;
		uint8_t *nb;

		while (cap - wr->len < n) {
			if (cap > SIZE_MAX / 2) {
				wr->nomem = true;
				png_error(png, "too big");
			}
			cap *= 2;
		}
		nb = realloc(wr->buf, cap);
		if (!nb) {
			wr->nomem = true;
			png_error(png, "out of memory");
		}
		wr->buf = nb;
		wr->cap = cap;
	}
	memcpy(wr->buf + wr->len, src, n);
	wr->len += n;
}

static void
png_wr_flush(png_structp png)
{
	(void)png;
}

static void
png_encode_body(png_structp png, png_infop info, const struct s2s_image *img,
		int level, struct png_wr *wr)
{
	png_set_write_fn(png, wr, png_wr_write, png_wr_flush);
	png_set_compression_level(png, level);
	png_set_filter(png, PNG_FILTER_TYPE_BASE,
		       level <= 1 ? PNG_FILTER_NONE : PNG_ALL_FILTERS);
	png_set_IHDR(png, info, img->width, img->height, 8,
		     PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
	png_write_info(png, info);
	for (uint32_t y = 0; y < img->height; y++)
		png_write_row(png, img->pixels + (size_t)y * img->width);
	png_write_end(png, NULL);
}

static enum s2s_err
png_encode_run(png_structp png, png_infop info, const struct s2s_image *img,
	       int level, struct png_wr *wr)
{
	if (setjmp(png_jmpbuf(png)))
		return wr->nomem ? S2S_ERR_NOMEM : S2S_ERR_IMAGE;
	png_encode_body(png, info, img, level, wr);
	return S2S_OK;
}

enum s2s_err
s2s_image_encode_png(const struct s2s_image *img, int level, uint8_t **out,
		     size_t *out_len)
{
	struct png_wr wr = { 0 };
	png_structp png;
	png_infop info = NULL;
	enum s2s_err err = S2S_OK;

	if (!img || !img->pixels || !img->width || !img->height || !out ||
	    !out_len || level < 0 || level > 9)
		return S2S_ERR_INVAL;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
				      png_rd_error, png_rd_warning);
	if (!png)
		return S2S_ERR_NOMEM;
	info = png_create_info_struct(png);
	if (!info) {
		err = S2S_ERR_NOMEM;
		goto out_png;
	}
	if ((err = png_encode_run(png, info, img, level, &wr))) {
		free(wr.buf);
		goto out_png;
	}
	*out = wr.buf;
	*out_len = wr.len;
out_png:
	png_destroy_write_struct(&png, info ? &info : NULL);
	return err;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

enum s2s_err
s2s_image_write_file(const struct s2s_image *img, const char *path, int level)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char hdr[48];
	int hlen = 0;
	enum s2s_err err;
	FILE *f;

	if (!img || !img->pixels || !path)
		return S2S_ERR_INVAL;
	if (ends_with(path, ".pgm")) {
		hlen = snprintf(hdr, sizeof(hdr), "P5\n%u %u\n255\n",
				(unsigned)img->width, (unsigned)img->height);
		buf = img->pixels;
		len = (size_t)img->width * img->height;
	} else if ((err = s2s_image_encode_png(img, level, &buf, &len))) {
		return err;
	}
	err = S2S_OK;
	f = fopen(path, "wb");
	if (!f) {
		err = S2S_ERR_IO;
		goto out_buf;
	}
	if ((hlen && fwrite(hdr, 1, (size_t)hlen, f) != (size_t)hlen) ||
	    fwrite(buf, 1, len, f) != len)
		err = S2S_ERR_IO;
	if (fclose(f) && !err)
		err = S2S_ERR_IO;
out_buf:
	if (!hlen)
		free(buf);
	return err;
}

enum s2s_err
s2s_image_psnr(const struct s2s_image *a, const struct s2s_image *b,
	       double *mse, double *psnr)
{
	uint64_t sse = 0;
	size_t n;
	double m;

	if (!a || !b || !a->pixels || !b->pixels)
		return S2S_ERR_INVAL;
	if (a->width != b->width || a->height != b->height)
		return S2S_ERR_INVAL;
	n = (size_t)a->width * a->height;
	for (size_t i = 0; i < n; i++) {
		int d = (int)a->pixels[i] - (int)b->pixels[i];

		sse += (uint64_t)(d * d);
	}
	m = (double)sse / (double)n;
	if (mse)
		*mse = m;
	if (psnr)
		*psnr = sse ? 10.0 * log10(255.0 * 255.0 / m) : INFINITY;
	return S2S_OK;
}
