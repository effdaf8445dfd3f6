/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "s2s/error.h"
#include "s2s/image.h"
#include "worst_png.h"

/* ---- Helpers: CRC, chunk surgery, a libpng writer for odd layouts ------- */

static uint32_t
crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
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

/* Recompute the CRC of the chunk starting at off. */
static void
fix_crc(uint8_t *buf, size_t off)
{
	uint32_t len = get32(buf + off);

	put32(buf + off + 8 + len, crc32_of(buf + off + 4, 4 + len));
}

/* Offset of the first chunk of the given type, or 0. */
static size_t
find_chunk(const uint8_t *buf, size_t len, const char *type)
{
	for (size_t off = 8; off + 12 <= len; off += 12 + get32(buf + off))
		if (!memcmp(buf + off + 4, type, 4))
			return off;
	return 0;
}

/* Insert a chunk right after IHDR (offset 33); returns a new buffer. */
static uint8_t *
insert_chunk(const uint8_t *buf, size_t len, const char *type,
	     const uint8_t *body, uint32_t blen, size_t *out_len)
{
	uint8_t *out = malloc(len + 12 + blen);

	ck_assert_ptr_nonnull(out);
	memcpy(out, buf, 33);
	put32(out + 33, blen);
	memcpy(out + 37, type, 4);
	if (blen)
		memcpy(out + 41, body, blen);
	fix_crc(out, 33);
	memcpy(out + 45 + blen, buf + 33, len - 33);
	*out_len = len + 12 + blen;
	return out;
}

struct mem {
	uint8_t *buf;
	size_t len;
};

static void
mem_write(png_structp png, png_bytep p, size_t n)
{
	struct mem *m = png_get_io_ptr(png);

	m->buf = realloc(m->buf, m->len + n);
	ck_assert_ptr_nonnull(m->buf);
	memcpy(m->buf + m->len, p, n);
	m->len += n;
}

static void
mem_flush(png_structp png)
{
	(void)png;
}

/*
 * Write a PNG of any layout with libpng.  rows: h rows of packed samples
 * exactly as PNG stores them (big-endian 16-bit, packed low depths).
 */
static struct mem
write_png(uint32_t w, uint32_t h, int depth, int ctype, int interlace,
	  const uint8_t *data, size_t rowbytes, const png_color *pal, int npal)
{
	struct mem m = { 0 };
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
						  NULL, NULL);
	png_infop info = png_create_info_struct(png);
	png_bytep *rows = malloc(h * sizeof(*rows));

	ck_assert_ptr_nonnull(rows);
	ck_assert(!setjmp(png_jmpbuf(png)));
	png_set_write_fn(png, &m, mem_write, mem_flush);
	png_set_IHDR(png, info, w, h, depth, ctype, interlace,
		     PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
	if (pal)
		png_set_PLTE(png, info, pal, npal);
	png_write_info(png, info);
	for (uint32_t y = 0; y < h; y++)
		rows[y] = (png_bytep)(data + y * rowbytes);
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	return m;
}

static void
random_image(struct s2s_image *img, uint32_t w, uint32_t h, unsigned seed)
{
	ck_assert_int_eq(s2s_image_alloc(img, w, h, 0), S2S_OK);
	srand(seed);
	for (size_t i = 0; i < (size_t)w * h; i++)
		img->pixels[i] = (uint8_t)(i % 7 ? rand() : (int)(i / 3));
}

/* ---- Tests ---------------------------------------------------------------- */

START_TEST(test_png_roundtrip)
{
	struct s2s_image img, back;

	random_image(&img, 37, 23, 1);
	for (int level = 0; level <= 9; level++) {
		uint8_t *buf;
		size_t len, off;

		ck_assert_int_eq(s2s_image_encode_png(&img, level, &buf, &len),
				 S2S_OK);
		/* Gray, depth 8, only IHDR, IDAT(s) and IEND. */
		ck_assert_uint_eq(buf[24], 8);
		ck_assert_uint_eq(buf[25], 0);
		for (off = 8; off + 12 <= len; off += 12 + get32(buf + off))
			ck_assert(!memcmp(buf + off + 4, "IHDR", 4) ||
				  !memcmp(buf + off + 4, "IDAT", 4) ||
				  !memcmp(buf + off + 4, "IEND", 4));
		ck_assert_uint_eq(off, len);
		ck_assert_int_eq(s2s_image_decode(buf, len, NULL, &back), S2S_OK);
		ck_assert_uint_eq(back.width, 37);
		ck_assert_uint_eq(back.height, 23);
		ck_assert_mem_eq(back.pixels, img.pixels, 37 * 23);
		s2s_image_free(&back);
		free(buf);
	}
	ck_assert_int_eq(s2s_image_encode_png(&img, 10, NULL, NULL), S2S_ERR_INVAL);
	s2s_image_free(&img);
	s2s_image_free(&img);   /* zeroed: no-op */
}
END_TEST

/* gAMA, sRGB, iCCP, cHRM never change a pixel. */
START_TEST(test_ancillary_chunks)
{
	static const uint8_t gama[4] = { 0, 0, 0xb1, 0x8f };   /* 45455 */
	static const uint8_t srgb[1] = { 0 };
	static const uint8_t chrm[32] = { 0, 0, 0x7a, 0x26, 0, 0, 0x80, 0x84 };
	/* iCCP: name, method 0, a zlib stream (stored block) of junk. */
	static const uint8_t iccp[] = { 'x', 0, 0, 0x78, 0x01, 0x01, 4, 0,
					0xfb, 0xff, 'j', 'u', 'n', 'k',
					0x04, 0x1e, 0x01, 0xb5 };
	struct {
		const char *type;
		const uint8_t *body;
		uint32_t len;
	} chunks[4] = {
		{ "gAMA", gama, 4 }, { "sRGB", srgb, 1 },
		{ "cHRM", chrm, 32 }, { "iCCP", iccp, sizeof(iccp) },
	};
	struct s2s_image img, back;
	uint8_t *buf, *cur;
	size_t len, cur_len;

	random_image(&img, 64, 64, 2);
	ck_assert_int_eq(s2s_image_encode_png(&img, 6, &buf, &len), S2S_OK);
	cur = buf;
	cur_len = len;
	for (int k = 0; k < 4; k++) {
		size_t one_len, next_len;
		uint8_t *one = insert_chunk(buf, len, chunks[k].type,
					    chunks[k].body, chunks[k].len,
					    &one_len);
		uint8_t *next = insert_chunk(cur, cur_len, chunks[k].type,
					     chunks[k].body, chunks[k].len,
					     &next_len);

		ck_assert_int_eq(s2s_image_decode(one, one_len, NULL, &back),
				 S2S_OK);
		ck_assert_mem_eq(back.pixels, img.pixels, 64 * 64);
		s2s_image_free(&back);
		free(one);
		if (cur != buf)
			free(cur);
		cur = next;
		cur_len = next_len;
	}
	/* All four together. */
	ck_assert_int_eq(s2s_image_decode(cur, cur_len, NULL, &back), S2S_OK);
	ck_assert_mem_eq(back.pixels, img.pixels, 64 * 64);
	s2s_image_free(&back);
	free(cur);
	free(buf);
	s2s_image_free(&img);
}
END_TEST

static uint8_t
y_of(unsigned r, unsigned g, unsigned b)
{
	return (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
}

/* RGB, RGBA, 16-bit gray and RGB, gray+alpha, interlaced. */
START_TEST(test_conversions)
{
	enum { W = 19, H = 11 };
	uint8_t rgb[W * H * 3], rgba[W * H * 4], g16[W * H * 2],
		rgb16[W * H * 6], ga[W * H * 2], gray[W * H];
	struct s2s_image img;
	struct mem m;

	srand(3);
	for (int i = 0; i < W * H; i++) {
		for (int c = 0; c < 3; c++)
			rgb[3 * i + c] = (uint8_t)rand();
		/* Include the extremes and exact .5 cases. */
		if (i < 8) {
			rgb[3 * i] = (uint8_t)(i & 1 ? 255 : 0);
			rgb[3 * i + 1] = (uint8_t)(i & 2 ? 255 : 0);
			rgb[3 * i + 2] = (uint8_t)(i & 4 ? 255 : 0);
		}
		memcpy(rgba + 4 * i, rgb + 3 * i, 3);
		rgba[4 * i + 3] = (uint8_t)rand();
		g16[2 * i] = (uint8_t)rand();
		g16[2 * i + 1] = (uint8_t)rand();
		for (int c = 0; c < 6; c++)
			rgb16[6 * i + c] = (uint8_t)rand();
		ga[2 * i] = (uint8_t)rand();
		ga[2 * i + 1] = (uint8_t)rand();
		gray[i] = (uint8_t)rand();
	}
	m = write_png(W, H, 8, PNG_COLOR_TYPE_RGB, 0, rgb, W * 3, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int i = 0; i < W * H; i++)
		ck_assert_uint_eq(img.pixels[i],
				  y_of(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]));
	ck_assert_uint_eq(img.pixels[7], 255);   /* white stays white */
	ck_assert_uint_eq(img.pixels[1], 76);    /* (76245 + 500) / 1000 */
	s2s_image_free(&img);
	free(m.buf);

	m = write_png(W, H, 8, PNG_COLOR_TYPE_RGBA, 0, rgba, W * 4, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int i = 0; i < W * H; i++)
		ck_assert_uint_eq(img.pixels[i],
				  y_of(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]));
	s2s_image_free(&img);
	free(m.buf);

	m = write_png(W, H, 16, PNG_COLOR_TYPE_GRAY, 0, g16, W * 2, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int i = 0; i < W * H; i++)
		ck_assert_uint_eq(img.pixels[i], g16[2 * i]);   /* v >> 8 */
	s2s_image_free(&img);
	free(m.buf);

	m = write_png(W, H, 16, PNG_COLOR_TYPE_RGB, 0, rgb16, W * 6, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int i = 0; i < W * H; i++)
		ck_assert_uint_eq(img.pixels[i], y_of(rgb16[6 * i], rgb16[6 * i + 2],
						      rgb16[6 * i + 4]));
	s2s_image_free(&img);
	free(m.buf);

	m = write_png(W, H, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, ga, W * 2, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int i = 0; i < W * H; i++)
		ck_assert_uint_eq(img.pixels[i], ga[2 * i]);    /* alpha ignored */
	s2s_image_free(&img);
	free(m.buf);

	m = write_png(W, H, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, gray, W,
		      NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	ck_assert_mem_eq(img.pixels, gray, W * H);
	s2s_image_free(&img);
	free(m.buf);
}
END_TEST

/* Palettes (8 and 2 bits) and low-depth gray are expanded. */
START_TEST(test_palette_lowdepth)
{
	enum { W = 13, H = 5 };
	png_color pal[4] = { { 0, 0, 0 }, { 255, 0, 0 }, { 10, 200, 30 },
			     { 255, 255, 255 } };
	uint8_t idx8[W * H], idx2[H * 4], g1[H * 2], g4[H * 7];
	struct s2s_image img;
	struct mem m;

	for (int i = 0; i < W * H; i++)
		idx8[i] = (uint8_t)(i % 4);
	m = write_png(W, H, 8, PNG_COLOR_TYPE_PALETTE, 0, idx8, W, pal, 4);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int i = 0; i < W * H; i++) {
		const png_color *c = &pal[i % 4];

		ck_assert_uint_eq(img.pixels[i], y_of(c->red, c->green, c->blue));
	}
	s2s_image_free(&img);
	free(m.buf);

	/* 2-bit palette: 4 pixels per byte, MSB first; row = 4 bytes. */
	for (int y = 0; y < H; y++)
		for (int b = 0; b < 4; b++)
			idx2[y * 4 + b] = (uint8_t)(0x1b + y);   /* 00 01 10 11 (+y) */
	m = write_png(W, H, 2, PNG_COLOR_TYPE_PALETTE, 0, idx2, 4, pal, 4);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int y = 0; y < H; y++) {
		for (int x = 0; x < W; x++) {
			int v = (idx2[y * 4 + x / 4] >> (6 - 2 * (x % 4))) & 3;

			ck_assert_uint_eq(img.pixels[y * W + x],
					  y_of(pal[v].red, pal[v].green, pal[v].blue));
		}
	}
	s2s_image_free(&img);
	free(m.buf);

	/* 1-bit gray: 0 / 255.  4-bit gray: v * 17. */
	for (int i = 0; i < H * 2; i++)
		g1[i] = (uint8_t)(0xa5 ^ i);
	m = write_png(W, H, 1, PNG_COLOR_TYPE_GRAY, 0, g1, 2, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			ck_assert_uint_eq(img.pixels[y * W + x],
					  (g1[y * 2 + x / 8] >> (7 - x % 8)) & 1 ? 255 : 0);
	s2s_image_free(&img);
	free(m.buf);
	for (int i = 0; i < H * 7; i++)
		g4[i] = (uint8_t)(i * 29);
	m = write_png(W, H, 4, PNG_COLOR_TYPE_GRAY, 0, g4, 7, NULL, 0);
	ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &img), S2S_OK);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			ck_assert_uint_eq(img.pixels[y * W + x],
					  17 * ((g4[y * 7 + x / 2] >> (x % 2 ? 0 : 4)) & 15));
	s2s_image_free(&img);
	free(m.buf);
}
END_TEST

/* Every proper prefix is refused cleanly as truncated. */
START_TEST(test_truncated)
{
	struct s2s_image img, back;
	uint8_t *buf;
	size_t len;
	char pgm[64 + 24 * 17];
	int hl;

	random_image(&img, 24, 17, 4);
	ck_assert_int_eq(s2s_image_encode_png(&img, 1, &buf, &len), S2S_OK);
	for (size_t cut = 0; cut < len; cut++) {
		enum s2s_err err = s2s_image_decode(buf, cut, NULL, &back);

		ck_assert_msg(err == S2S_ERR_TRUNCATED, "cut %zu: %s", cut,
			      s2s_errname(err));
		ck_assert_ptr_null(back.pixels);
	}
	free(buf);

	hl = snprintf(pgm, 64, "P5\n# comment\n24 17\n255\n");
	memcpy(pgm + hl, img.pixels, 24 * 17);
	ck_assert_int_eq(s2s_image_decode((uint8_t *)pgm, (size_t)hl + 24 * 17,
					  NULL, &back), S2S_OK);
	ck_assert_mem_eq(back.pixels, img.pixels, 24 * 17);
	s2s_image_free(&back);
	for (size_t cut = 1; cut < (size_t)hl + 24 * 17; cut++) {
		enum s2s_err err = s2s_image_decode((uint8_t *)pgm, cut, NULL,
						    &back);

		ck_assert_msg(err == S2S_ERR_TRUNCATED, "pgm cut %zu: %s", cut,
			      s2s_errname(err));
	}
	s2s_image_free(&img);
}
END_TEST

/* Bad CRCs, a broken zlib stream, junk: S2S_ERR_IMAGE. */
START_TEST(test_corrupt)
{
	struct s2s_image img, back;
	uint8_t *buf, *bad;
	size_t len, ihdr = 8, idat;
	static const uint8_t junk[16] = "not an image....";

	random_image(&img, 32, 32, 5);
	ck_assert_int_eq(s2s_image_encode_png(&img, 6, &buf, &len), S2S_OK);
	idat = find_chunk(buf, len, "IDAT");
	ck_assert_uint_gt(idat, 0);
	bad = malloc(len);
	ck_assert_ptr_nonnull(bad);

	memcpy(bad, buf, len);
	bad[ihdr + 8 + 13] ^= 1;                   /* IHDR CRC */
	ck_assert_int_eq(s2s_image_decode(bad, len, NULL, &back), S2S_ERR_IMAGE);
	memcpy(bad, buf, len);
	bad[idat + 8 + get32(buf + idat) + 1] ^= 0x40;   /* IDAT CRC */
	ck_assert_int_eq(s2s_image_decode(bad, len, NULL, &back), S2S_ERR_IMAGE);
	memcpy(bad, buf, len);
	bad[idat + 8] = 0x00;                      /* zlib header, CRC fixed */
	fix_crc(bad, idat);
	ck_assert_int_eq(s2s_image_decode(bad, len, NULL, &back), S2S_ERR_IMAGE);
	memcpy(bad, buf, len);
	memset(bad + idat + 10, 0xff, 8);          /* deflate data */
	fix_crc(bad, idat);
	ck_assert_int_eq(s2s_image_decode(bad, len, NULL, &back), S2S_ERR_IMAGE);
	memcpy(bad, buf, len);
	bad[ihdr + 8 + 8] = 3;                     /* depth 3: invalid */
	fix_crc(bad, ihdr);
	ck_assert_int_eq(s2s_image_decode(bad, len, NULL, &back), S2S_ERR_IMAGE);
	ck_assert_int_eq(s2s_image_decode(junk, sizeof(junk), NULL, &back),
			 S2S_ERR_IMAGE);
	ck_assert_ptr_null(back.pixels);
	ck_assert_int_eq(s2s_image_decode((const uint8_t *)"P5\n2 2\n0\nabcd", 13,
					  NULL, &back), S2S_ERR_IMAGE);
	ck_assert_int_eq(s2s_image_decode((const uint8_t *)"P5\n2 2\n9\n\x0a\x01\x02\x03",
					  13, NULL, &back), S2S_ERR_IMAGE);
	ck_assert_int_eq(s2s_image_decode((const uint8_t *)"P5\n0 2\n255\nab", 13,
					  NULL, &back), S2S_ERR_IMAGE);
	free(bad);
	free(buf);
	s2s_image_free(&img);
}
END_TEST

/* Dimensions are refused from the header, before any pixel allocation. */
START_TEST(test_too_big)
{
	struct s2s_image img, back;
	struct s2s_image_limits small = { .max_width = 16, .max_height = 16 };
	struct s2s_image_limits bytes = { .max_bytes = 100 };
	uint8_t *buf;
	size_t len;
	static const uint32_t dims[][2] = {
		{ 100000, 100000 }, { 4097, 1 }, { 1, 4097 }, { 0x80000001u, 2 },
		{ 0xffffffffu, 0xffffffffu },
	};

	random_image(&img, 32, 32, 6);
	ck_assert_int_eq(s2s_image_encode_png(&img, 1, &buf, &len), S2S_OK);
	for (size_t k = 0; k < sizeof(dims) / sizeof(dims[0]); k++) {
		uint8_t hdr[33];

		memcpy(hdr, buf, 33);
		put32(hdr + 16, dims[k][0]);
		put32(hdr + 20, dims[k][1]);
		fix_crc(hdr, 8);
		/* Header alone (no IDAT): still TOO_BIG, not TRUNCATED. */
		ck_assert_int_eq(s2s_image_decode(hdr, 33, NULL, &back),
				 S2S_ERR_TOO_BIG);
		ck_assert_ptr_null(back.pixels);
	}
	ck_assert_int_eq(s2s_image_decode(buf, len, &small, &back), S2S_ERR_TOO_BIG);
	ck_assert_int_eq(s2s_image_decode(buf, len, &bytes, &back), S2S_ERR_TOO_BIG);
	ck_assert_int_eq(s2s_image_decode((const uint8_t *)"P5\n100000 100000\n255\n",
					  21, NULL, &back), S2S_ERR_TOO_BIG);
	ck_assert_int_eq(s2s_image_decode((const uint8_t *)"P5\n99999999999 1\n255\n",
					  21, NULL, &back), S2S_ERR_TOO_BIG);
	free(buf);
	s2s_image_free(&img);
}
END_TEST

START_TEST(test_pgm)
{
	struct s2s_image img, back;
	uint8_t p16[64];
	const char *dir = tests_env("S2S_BUILDDIR", "/tmp");
	char path[4096];

	/* 16-bit: v >> 8. */
	memcpy(p16, "P5 2 2 65535\n", 13);
	memcpy(p16 + 13, "\x12\x34\xff\xff\x00\xff\x80\x00", 8);
	ck_assert_int_eq(s2s_image_decode(p16, 21, NULL, &back), S2S_OK);
	ck_assert_uint_eq(back.pixels[0], 0x12);
	ck_assert_uint_eq(back.pixels[1], 0xff);
	ck_assert_uint_eq(back.pixels[2], 0x00);
	ck_assert_uint_eq(back.pixels[3], 0x80);
	s2s_image_free(&back);
	/* maxval 15: rescaled with rounding. */
	memcpy(p16, "P5 4 1 15\n\x00\x01\x08\x0f", 14);
	ck_assert_int_eq(s2s_image_decode(p16, 14, NULL, &back), S2S_OK);
	ck_assert_uint_eq(back.pixels[0], 0);
	ck_assert_uint_eq(back.pixels[1], 17);
	ck_assert_uint_eq(back.pixels[2], 136);
	ck_assert_uint_eq(back.pixels[3], 255);
	s2s_image_free(&back);

	/* File round trips: PGM and PNG by extension. */
	random_image(&img, 41, 7, 7);
	snprintf(path, sizeof(path), "%s/test_image_%d.pgm", dir, (int)getpid());
	ck_assert_int_eq(s2s_image_write_file(&img, path, 0), S2S_OK);
	ck_assert_int_eq(s2s_image_read_file(path, NULL, &back), S2S_OK);
	ck_assert_mem_eq(back.pixels, img.pixels, 41 * 7);
	s2s_image_free(&back);
	unlink(path);
	snprintf(path, sizeof(path), "%s/test_image_%d.png", dir, (int)getpid());
	ck_assert_int_eq(s2s_image_write_file(&img, path, 9), S2S_OK);
	ck_assert_int_eq(s2s_image_read_file(path, NULL, &back), S2S_OK);
	ck_assert_mem_eq(back.pixels, img.pixels, 41 * 7);
	s2s_image_free(&back);
	unlink(path);
	ck_assert_int_eq(s2s_image_read_file(path, NULL, &back), S2S_ERR_IO);
	s2s_image_free(&img);
}
END_TEST

START_TEST(test_psnr)
{
	struct s2s_image a, b;
	double mse, psnr;

	ck_assert_int_eq(s2s_image_alloc(&a, 128, 128, 100), S2S_OK);
	ck_assert_int_eq(s2s_image_alloc(&b, 128, 128, 100), S2S_OK);
	ck_assert_int_eq(s2s_image_psnr(&a, &b, &mse, &psnr), S2S_OK);
	ck_assert(mse == 0 && isinf(psnr));
	for (int i = 0; i < 8; i++)
		b.pixels[i * 1000] = 101;
	ck_assert_int_eq(s2s_image_psnr(&a, &b, &mse, &psnr), S2S_OK);
	ck_assert(fabs(mse - 8.0 / 16384) < 1e-15);
	ck_assert(fabs(psnr - 10 * log10(65025.0 * 16384 / 8)) < 1e-9);
	ck_assert(fabs(psnr - 81.244) < 1e-3);   /* 90.28 - 10 log10(8) */
	b.pixels[0] = 110;   /* SSE 100 + 7 */
	ck_assert_int_eq(s2s_image_psnr(&a, &b, &mse, &psnr), S2S_OK);
	ck_assert(fabs(mse - 107.0 / 16384) < 1e-15);
	s2s_image_free(&b);
	ck_assert_int_eq(s2s_image_alloc(&b, 128, 127, 100), S2S_OK);
	ck_assert_int_eq(s2s_image_psnr(&a, &b, &mse, &psnr), S2S_ERR_INVAL);
	s2s_image_free(&a);
	s2s_image_free(&b);
	ck_assert_int_eq(s2s_image_alloc(&a, 0, 5, 0), S2S_ERR_INVAL);
}
END_TEST

/* ---- Bounded work (issue 10, class 3) -------------------------------------- */

/* Package-like limits: what the broker allows for a stego image. */
static const struct s2s_image_limits pkg_lim = {
	.max_pixels = 512 * 512, .max_bytes = 256 * 1024,
};

static void
expect_pixels(const uint8_t *png, size_t len, const struct s2s_image *want,
	      struct s2s_image_work *w)
{
	struct s2s_image back;

	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(s2s_image_decode_work(png, len, &pkg_lim, &back, w),
			 S2S_OK);
	ck_assert_uint_eq(back.width, want->width);
	ck_assert_uint_eq(back.height, want->height);
	ck_assert(!memcmp(back.pixels, want->pixels,
			  (size_t)want->width * want->height));
	s2s_image_free(&back);
}

START_TEST(test_worst_ancillary)
{
	static const char *types[] = { "zTXt", "iTXt", "iCCP" };
	struct s2s_image img;
	struct s2s_image_work w;
	uint8_t *png, *bad;
	size_t len, blen, raw = 128 * 129;

	random_image(&img, 128, 128, 11);
	ck_assert_int_eq(s2s_image_encode_png(&img, 1, &png, &len), S2S_OK);
	for (size_t t = 0; t < 3; t++) {
		/* Each chunk inflates to 1 MiB; as many as fit in 256 KiB. */
		bad = wp_add_ancillary(png, len, 4000, types[t], 1 << 20,
				       256 * 1024, &blen);
		expect_pixels(bad, blen, &img, &w);
		ck_assert_uint_gt(w.ancillary, 200);
		ck_assert_uint_ge(w.chunks, w.ancillary + 3);  /* IHDR IDAT IEND */
		ck_assert_uint_le(w.chunks, w.ancillary + 5);
		/* Only the pixel data was inflated, and only once. */
		ck_assert_uint_eq(w.inflated, raw);
		ck_assert_uint_le(w.crc_bytes, len);
		free(bad);
	}
	free(png);
	s2s_image_free(&img);
}
END_TEST

START_TEST(test_worst_tiny_idat)
{
	struct s2s_image img, back;
	struct s2s_image_work w;
	uint8_t *png, *split;
	size_t len, slen;

	random_image(&img, 128, 128, 12);
	ck_assert_int_eq(s2s_image_encode_png(&img, 0, &png, &len), S2S_OK);
	/* 16.6 KB in 5-byte IDATs: 3 330 chunks, under the 4 096 cap. */
	split = wp_resplit_idat(png, len, 5, &slen);
	expect_pixels(split, slen, &img, &w);
	ck_assert_uint_gt(w.chunks, 3000);
	ck_assert_uint_le(w.chunks, 4096);
	free(split);
	/* 1-byte IDATs: over the cap, refused after 4 097 chunks. */
	split = wp_resplit_idat(png, len, 1, &slen);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(s2s_image_decode_work(split, slen, &pkg_lim, &back,
					       &w), S2S_ERR_TOO_BIG);
	ck_assert_ptr_null(back.pixels);
	ck_assert_uint_le(w.chunks, 4096);
	ck_assert_uint_eq(w.inflated, 0);
	free(split);
	free(png);
	s2s_image_free(&img);
}
END_TEST

START_TEST(test_worst_bomb)
{
	/* The largest package image, every row Paeth: a few KB of zlib. */
	struct wp_spec sp = { .width = 512, .height = 512, .depth = 8,
			      .ctype = 0, .filter = 4, .fill = 1,
			      .zlevel = 12 };
	struct s2s_image back;
	struct s2s_image_work w = { 0 };
	uint8_t *png;
	size_t len, raw = wp_raw_len(&sp);

	png = wp_png(&sp, &len);
	ck_assert_uint_lt(len, 4096);
	ck_assert_int_eq(s2s_image_decode_work(png, len, &pkg_lim, &back, &w),
			 S2S_OK);
	ck_assert_uint_eq(w.inflated, raw);
	ck_assert_uint_eq(w.unfiltered, raw - 512);
	s2s_image_free(&back);
	free(png);

	/* The stream holds one row more than IHDR says: stops at the size. */
	sp.height = 513;
	png = wp_png(&sp, &len);
	png[20 + 3] = 0;              /* IHDR height 513 -> 512 */
	png[20 + 2] = 2;
	{
		uint32_t c = crc32_of(png + 12, 17);

		put32(png + 29, c);
	}
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(s2s_image_decode_work(png, len, &pkg_lim, &back, &w),
			 S2S_ERR_IMAGE);
	ck_assert_uint_le(w.inflated, raw);
	ck_assert_uint_eq(w.unfiltered, 0);
	free(png);

	/* A signature-sized bomb: 512 x 512 RGBA 16-bit is 8 bytes per
	 * pixel, over the default work bound (4 per pixel): refused from
	 * IHDR, nothing inflated.  RGBA 8-bit fits and decodes. */
	sp = (struct wp_spec){ .width = 512, .height = 512, .depth = 16,
			       .ctype = 6, .filter = 4, .fill = 7,
			       .zlevel = 12 };
	png = wp_png(&sp, &len);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(s2s_image_decode_work(png, len, &pkg_lim, &back, &w),
			 S2S_ERR_TOO_BIG);
	ck_assert_uint_eq(w.inflated, 0);
	free(png);
	sp.depth = 8;
	png = wp_png(&sp, &len);
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(s2s_image_decode_work(png, len, &pkg_lim, &back, &w),
			 S2S_OK);
	ck_assert_uint_eq(w.inflated, wp_raw_len(&sp));
	ck_assert_uint_le(w.inflated, 4 * pkg_lim.max_pixels + 512);
	ck_assert_uint_eq(back.width, 512);
	s2s_image_free(&back);
	free(png);
}
END_TEST

/* Re-fix the CRC of the chunk holding byte i (so flips reach the codec). */
static void
fix_crc_at(uint8_t *buf, size_t len, size_t i)
{
	for (size_t off = 8; off + 12 <= len; off += 12 + get32(buf + off)) {
		uint32_t n = get32(buf + off);

		if (n > len - off - 12)
			return;
		if (i >= off + 4 && i < off + 8 + n) {
			fix_crc(buf, off);
			return;
		}
	}
}

/*
 * Where both accept, the pixels are the same.  Ours may accept a mutated
 * deflate stream zlib refuses: libdeflate is lenient on a few invalid
 * Huffman codes (e.g. unused codewords of incomplete codes); counted, and
 * rare.  Ours is stricter elsewhere (PLTE in gray, bytes after IEND, ...).
 */
static void
cross_check(const uint8_t *png, size_t len, size_t *both, size_t *stricter,
	    size_t *lenient)
{
	struct s2s_image a, b;
	enum s2s_err ea = s2s_image_decode(png, len, NULL, &a);
	enum s2s_err eb = s2s_image_decode_libpng(png, len, NULL, &b);

	if (ea == S2S_OK && eb == S2S_OK) {
		ck_assert_uint_eq(a.width, b.width);
		ck_assert_uint_eq(a.height, b.height);
		ck_assert(!memcmp(a.pixels, b.pixels,
				  (size_t)a.width * a.height));
		(*both)++;
	} else if (eb == S2S_OK) {
		(*stricter)++;
	} else if (ea == S2S_OK) {
		(*lenient)++;
	}
	s2s_image_free(&a);
	s2s_image_free(&b);
}

START_TEST(test_libpng_agrees)
{
	uint8_t data[24 * 8 * 20];     /* 20 rows of up to 8 bytes a pixel */
	png_color pal[16];
	struct s2s_image img;
	struct mem m[9];
	size_t both = 0, stricter = 0, lenient = 0, tries = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 37 + (i >> 3));
	for (int i = 0; i < 16; i++)
		pal[i] = (png_color){ (png_byte)(i * 16), (png_byte)(255 - i),
				      (png_byte)(i * 7) };
	random_image(&img, 24, 20, 13);
	m[0] = write_png(24, 20, 8, PNG_COLOR_TYPE_GRAY, 0, img.pixels, 24,
			 NULL, 0);
	m[1] = write_png(24, 20, 16, PNG_COLOR_TYPE_RGB, 1, data, 24 * 6,
			 NULL, 0);
	m[2] = write_png(24, 20, 4, PNG_COLOR_TYPE_PALETTE, 1, data, 12, pal,
			 16);
	m[3] = write_png(24, 20, 2, PNG_COLOR_TYPE_GRAY, 0, data, 6, NULL, 0);
	m[4] = write_png(24, 20, 8, PNG_COLOR_TYPE_RGB_ALPHA, 0, data, 24 * 4,
			 NULL, 0);
	ck_assert_int_eq(s2s_image_encode_png(&img, 0, &m[5].buf, &m[5].len),
			 S2S_OK);
	/* Every filter distance: 2 (gray+alpha), 3 (RGB), 8 (RGBA 16). */
	m[6] = write_png(24, 20, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, data, 48,
			 NULL, 0);
	m[7] = write_png(24, 20, 8, PNG_COLOR_TYPE_RGB, 0, data, 72, NULL, 0);
	m[8] = write_png(24, 20, 16, PNG_COLOR_TYPE_RGB_ALPHA, 0, data, 192,
			 NULL, 0);
	for (int k = 0; k < 9; k++) {
		uint8_t *mut = malloc(m[k].len);

		ck_assert_ptr_nonnull(mut);
		cross_check(m[k].buf, m[k].len, &both, &stricter, &lenient);
		ck_assert_uint_ge(both, (size_t)k + 1);
		/* Every byte, three ways; every truncation. */
		for (size_t i = 0; i < m[k].len; i++) {
			static const uint8_t x[] = { 0x01, 0x80, 0xff };

			for (int v = 0; v < 3; v++) {
				memcpy(mut, m[k].buf, m[k].len);
				mut[i] ^= x[v];
				cross_check(mut, m[k].len, &both, &stricter,
					    &lenient);
				fix_crc_at(mut, m[k].len, i);
				cross_check(mut, m[k].len, &both, &stricter,
					    &lenient);
				tries += 2;
			}
			cross_check(m[k].buf, i, &both, &stricter, &lenient);
		}
		free(mut);
		free(m[k].buf);
	}
	/* Every filter at every byte distance (1, 2, 3, 4, 6, 8) on random
	 * bytes, through our worst_png writer: same pixels as libpng. */
	{
		static const uint8_t fmt[][2] = {   /* ctype, depth */
			{ 0, 8 }, { 4, 8 }, { 2, 8 }, { 6, 8 }, { 2, 16 },
			{ 6, 16 }, { 0, 4 }, { 4, 16 },
		};
		uint8_t *rnd = malloc(64 * 8 * 33);

		ck_assert_ptr_nonnull(rnd);
		srand(77);
		for (size_t i = 0; i < 64 * 8 * 33; i++)
			rnd[i] = (uint8_t)rand();
		for (size_t f = 0; f < sizeof(fmt) / sizeof(fmt[0]); f++) {
			for (uint8_t filt = 0; filt <= 4; filt++) {
				struct wp_spec sp = { .width = 64, .height = 33,
						      .ctype = fmt[f][0],
						      .depth = fmt[f][1],
						      .data = rnd,
						      .filter = filt,
						      .zlevel = 6 };
				size_t n, before = both;
				uint8_t *png = wp_png(&sp, &n);

				cross_check(png, n, &both, &stricter,
					    &lenient);
				ck_assert_uint_eq(both, before + 1);
				free(png);
			}
		}
		free(rnd);
	}
	fprintf(stderr, "libpng agreement over %zu mutations: %zu accepted by "
		"both (same pixels), %zu only by libpng, %zu only by ours\n",
		tries, both, stricter, lenient);
	ck_assert_uint_gt(both, 50);
	ck_assert_uint_lt(lenient * 100, tries);
	s2s_image_free(&img);
}
END_TEST

START_TEST(test_gray_rows)
{
	struct s2s_image img, back;
	struct s2s_image_rows rows = { 0 };
	struct s2s_image_work w;
	uint8_t *png, *split;
	size_t len, slen;

	random_image(&img, 128, 96, 14);
	for (int level = 0; level <= 9; level += 3) {
		ck_assert_int_eq(s2s_image_encode_png(&img, level, &png, &len),
				 S2S_OK);
		for (size_t step = 0; step <= 7; step += 7) {
			split = step ? wp_resplit_idat(png, len, 1000 + step,
						       &slen) : png;
			if (!step)
				slen = len;
			memset(&w, 0, sizeof(w));
			ck_assert_int_eq(s2s_image_png_gray_rows(split, slen,
								 NULL, &rows,
								 &w), S2S_OK);
			ck_assert_uint_eq(rows.width, 128);
			ck_assert_uint_eq(rows.height, 96);
			for (uint32_t y = 0; y < 96; y++)
				ck_assert(!memcmp(rows.rows[y],
						  img.pixels + y * 128, 128));
			/* Level 0: read in place, nothing inflated. */
			if (level == 0) {
				ck_assert_uint_eq(w.inflated, 0);
				ck_assert_uint_eq(w.stored, 96 * 129);
			} else {
				/* zlib may store random data uncompressed */
				ck_assert(w.inflated == 96 * 129 ||
					  w.stored == 96 * 129);
			}
			if (step)
				free(split);
		}
		free(png);
	}
	/* Not 8-bit gray: refused (the wire carries gray only). */
	{
		struct mem m = write_png(8, 8, 8, PNG_COLOR_TYPE_RGB, 0,
					 img.pixels, 24, NULL, 0);

		ck_assert_int_eq(s2s_image_png_gray_rows(m.buf, m.len, NULL,
							 &rows, NULL),
				 S2S_ERR_IMAGE);
		ck_assert_int_eq(s2s_image_decode(m.buf, m.len, NULL, &back),
				 S2S_OK);
		s2s_image_free(&back);
		free(m.buf);
	}
	s2s_image_rows_free(&rows);
	s2s_image_free(&img);
}
END_TEST

START_TEST(test_patch)
{
	struct s2s_image img, changed;
	struct s2s_image_patch *p;
	struct s2s_image_change ch[40];
	uint8_t *want, *got;
	size_t wlen;

	for (uint32_t side = 16; side <= 300; side += 142) {
		random_image(&img, side, side, side);
		ck_assert_int_eq(s2s_image_patch_create(&img, &p), S2S_OK);
		ck_assert_int_eq(s2s_image_alloc(&changed, side, side, 0),
				 S2S_OK);
		srand(side);
		for (int round = 0; round < 20; round++) {
			memcpy(changed.pixels, img.pixels, (size_t)side * side);
			for (int i = 0; i < 40; i++) {
				ch[i].pos = (uint32_t)rand() % (side * side);
				ch[i].val = (uint8_t)(round == 0 ? 255 : rand());
				changed.pixels[ch[i].pos] = ch[i].val;
			}
			ck_assert_int_eq(s2s_image_encode_png(&changed, 0, &want,
							      &wlen), S2S_OK);
			ck_assert_uint_eq(s2s_image_patch_len(p), wlen);
			got = malloc(wlen);
			ck_assert_ptr_nonnull(got);
			ck_assert_int_eq(s2s_image_patch_write(p, ch, 40, got),
					 S2S_OK);
			ck_assert(!memcmp(got, want, wlen));
			free(got);
			free(want);
		}
		ch[0].pos = side * side;
		got = malloc(s2s_image_patch_len(p));
		ck_assert_int_eq(s2s_image_patch_write(p, ch, 1, got),
				 S2S_ERR_INVAL);
		free(got);
		s2s_image_patch_destroy(p);
		s2s_image_free(&changed);
		s2s_image_free(&img);
	}
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_png_roundtrip);
	tcase_add_test(tc, test_ancillary_chunks);
	tcase_add_test(tc, test_conversions);
	tcase_add_test(tc, test_palette_lowdepth);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_pgm);
	tcase_add_test(tc, test_psnr);
	tcase_add_test(tc, test_worst_ancillary);
	tcase_add_test(tc, test_worst_tiny_idat);
	tcase_add_test(tc, test_worst_bomb);
	tcase_add_test(tc, test_libpng_agrees);
	tcase_add_test(tc, test_gray_rows);
	tcase_add_test(tc, test_patch);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
