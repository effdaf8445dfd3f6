/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image.c - 8-bit grayscale images: PNG read by our own bounded decoder
 * and written by our own encoder (both on libdeflate), the gate's row view
 * of a stego PNG and level-0 patching, binary PGM by hand, MSE/PSNR.
 *
 * No colour management anywhere: libpng's simplified API applied gAMA/sRGB
 * and rewrote every pixel of a stego image (signal-processing.md 5.5).
 * The conversions are lossless layout changes (palette to RGB, 1/2/4-bit
 * gray scaled to 8 bits, 16 to 8 bits by keeping the high byte) and the
 * exact RGB-to-gray of image.h.  libpng's low-level reader (the previous
 * decoder) stays as the reference the tests compare with.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <libdeflate.h>
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
	out->max_raw = in ? in->max_raw : 0;
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

/* ---- PNG reading: our own bounded decoder -------------------------------- */

/*
 * Why not libpng for reading: libpng inflates every compressed ancillary
 * chunk (zTXt, iTXt, iCCP) it meets, each up to the chunk malloc limit, so
 * a few hundred of them cost the broker about a second (issue 10).  This
 * decoder never reads an ancillary chunk's body (not even its CRC: libpng
 * only warns about those), checks the CRC of every critical chunk, knows
 * the exact size of the pixel data from IHDR before it inflates a byte,
 * and inflates with libdeflate into a buffer of exactly that size, so a
 * stream that says more stops there.  Every step is linear in the input
 * or in the pixel data, both bounded by the limits.
 *
 * Stricter than libpng where libpng only warns: PLTE in a gray image, a
 * non-empty IEND, bytes after IEND, data after the end of the zlib stream,
 * a bad Adler-32.  What this decoder accepts, libpng accepts with the same
 * pixels (tests/test_image.c checks that on mutated files).
 */

#define PNG_MAX_CHUNKS 4096u
/* Stored-block pieces the zero-copy path follows before inflating instead. */
#define PNG_MAX_PIECES 512u

static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
				    '\n' };

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* One IDAT body: where it sits in the file. */
struct png_seg {
	const uint8_t *p;
	size_t len;
};

/* What the chunk walk learnt. */
struct png_scan {
	uint32_t width, height;
	uint8_t depth, ctype, interlace, channels;
	unsigned bits;             /* bits per pixel */
	uint16_t npal;             /* palette entries (ctype 3) */
	uint8_t pal[256 * 3];
	struct png_seg *segs;      /* IDAT bodies, in order */
	size_t nsegs;
	size_t idat_len;           /* sum of IDAT body lengths */
	uint64_t raw_len;          /* filtered scanline bytes, all passes */
};

static void
work_add(struct s2s_image_work *w, size_t *field, size_t v)
{
	if (w)
		*field += v;
}

#define WORK(w, f, v) work_add((w), (w) ? &(w)->f : NULL, (v))

static bool
chunk_type_ok(const uint8_t *t)
{
	for (int i = 0; i < 4; i++)
		if (!((t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= 'a' && t[i] <= 'z')))
			return false;
	return true;
}

static bool
ihdr_ok(unsigned depth, unsigned ctype, unsigned *channels)
{
	switch (ctype) {
	case 0:
		*channels = 1;
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 ||
		       depth == 16;
	case 3:
		*channels = 1;
		return depth == 1 || depth == 2 || depth == 4 || depth == 8;
	case 2:
		*channels = 3;
		return depth == 8 || depth == 16;
	case 4:
		*channels = 2;
		return depth == 8 || depth == 16;
	case 6:
		*channels = 4;
		return depth == 8 || depth == 16;
	default:
		return false;
	}
}

static const uint8_t adam7[7][4] = {    /* x0, y0, dx, dy */
	{ 0, 0, 8, 8 }, { 4, 0, 8, 8 }, { 0, 4, 4, 8 }, { 2, 0, 4, 4 },
	{ 0, 2, 2, 4 }, { 1, 0, 2, 2 }, { 0, 1, 1, 2 },
};

static uint64_t
pass_rowbytes(uint64_t pw, unsigned bits)
{
	return (pw * bits + 7) / 8;
}

/* Width and height of pass k (0..6), or of the image if not interlaced. */
static void
pass_dims(const struct png_scan *s, int k, uint32_t *pw, uint32_t *ph)
{
	if (!s->interlace) {
		*pw = s->width;
		*ph = s->height;
		return;
	}
	*pw = s->width > adam7[k][0] ?
	      (s->width - adam7[k][0] + adam7[k][2] - 1) / adam7[k][2] : 0;
	*ph = s->height > adam7[k][1] ?
	      (s->height - adam7[k][1] + adam7[k][3] - 1) / adam7[k][3] : 0;
}

/*
 * Walk the chunks: signature, IHDR first (limits checked here, before
 * anything else is read), PLTE, consecutive IDATs, IEND last and at the
 * very end.  Critical chunks have their CRC checked; ancillary chunks are
 * skipped by their length alone.  s->segs is malloc()ed on success.
 */
static enum s2s_err
png_scan(const uint8_t *buf, size_t len, const struct s2s_image_limits *lim,
	 struct png_scan *s, struct s2s_image_work *work)
{
	size_t pos = 8, nchunks = 0, cap = 0;
	bool have_plte = false, idat_done = false, iend = false;
	enum s2s_err err = S2S_ERR_IMAGE;
	unsigned channels = 0;

	memset(s, 0, sizeof(*s));
	if (len < 8 || memcmp(buf, png_sig, 8))
		return len < 8 && !memcmp(buf, png_sig, len) ?
		       S2S_ERR_TRUNCATED : S2S_ERR_IMAGE;
	while (!iend) {
		const uint8_t *c = buf + pos, *t;
		uint32_t clen;

		if (len - pos < 12) {
			err = S2S_ERR_TRUNCATED;
			goto fail;
		}
		clen = be32(c);
		t = c + 4;
		if (clen > 0x7fffffffu || !chunk_type_ok(t))
			goto fail;
		if (clen > len - pos - 12) {
			err = S2S_ERR_TRUNCATED;
			goto fail;
		}
		if (++nchunks > PNG_MAX_CHUNKS) {
			err = S2S_ERR_TOO_BIG;
			goto fail;
		}
		WORK(work, chunks, 1);
		if (nchunks == 1 && memcmp(t, "IHDR", 4))
			goto fail;
		if (!(t[0] & 0x20)) {      /* critical: CRC checked */
			uint32_t crc = (uint32_t)libdeflate_crc32(0, t,
								  4 + clen);

			WORK(work, crc_bytes, 4 + (size_t)clen);
			if (crc != be32(c + 8 + clen))
				goto fail;
		}
		if (!memcmp(t, "IHDR", 4)) {
			const uint8_t *d = c + 8;
			uint64_t raw = 0;

			if (nchunks != 1 || clen != 13)
				goto fail;
			s->width = be32(d);
			s->height = be32(d + 4);
			s->depth = d[8];
			s->ctype = d[9];
			s->interlace = d[12];
			if (s->width && s->height &&
			    !within(lim, s->width, s->height)) {
				err = S2S_ERR_TOO_BIG;
				goto fail;
			}
			if (!s->width || !s->height || s->width > 0x7fffffffu ||
			    s->height > 0x7fffffffu ||
			    !ihdr_ok(s->depth, s->ctype, &channels) ||
			    d[10] != 0 || d[11] != 0 || d[12] > 1)
				goto fail;
			s->channels = (uint8_t)channels;
			s->bits = s->depth * channels;
			for (int k = 0; k < (s->interlace ? 7 : 1); k++) {
				uint32_t pw, ph;

				pass_dims(s, k, &pw, &ph);
				if (pw && ph)
					raw += (uint64_t)ph *
					       (1 + pass_rowbytes(pw, s->bits));
			}
			/* The work bound: inflating and unfiltering are
			 * linear in these bytes (default: 4 per pixel). */
			if (raw > SIZE_MAX / 2 ||
			    raw > (lim->max_raw ? (uint64_t)lim->max_raw :
				   4 * (uint64_t)lim->max_pixels +
				   s->height)) {
				err = S2S_ERR_TOO_BIG;
				goto fail;
			}
			s->raw_len = raw;
		} else if (!memcmp(t, "PLTE", 4)) {
			if (s->ctype == 0 || s->ctype == 4 || have_plte ||
			    s->nsegs || !clen || clen % 3 || clen > 768)
				goto fail;
			/* Entries beyond 2^depth are never indexed; libpng
			 * keeps them too. */
			memcpy(s->pal, c + 8, clen);
			s->npal = (uint16_t)(clen / 3);
			have_plte = true;
		} else if (!memcmp(t, "IDAT", 4)) {
			if (idat_done || (s->ctype == 3 && !have_plte))
				goto fail;
			if (s->nsegs == cap) {
				size_t ncap = cap ? 2 * cap : 8;
				struct png_seg *ns = realloc(s->segs,
							     ncap * sizeof(*ns));

				if (!ns) {
					err = S2S_ERR_NOMEM;
					goto fail;
				}
				s->segs = ns;
				cap = ncap;
			}
			s->segs[s->nsegs].p = c + 8;
			s->segs[s->nsegs].len = clen;
			s->nsegs++;
			s->idat_len += clen;
		} else if (!memcmp(t, "IEND", 4)) {
			if (clen != 0)
				goto fail;
			iend = true;
		} else if (!(t[0] & 0x20)) {
			goto fail;                 /* unknown critical chunk */
		} else {
			WORK(work, ancillary, 1);
		}
		if (s->nsegs && memcmp(t, "IDAT", 4))
			idat_done = true;
		pos += 12 + (size_t)clen;
	}
	if (!s->nsegs || pos != len)
		goto fail;
	return S2S_OK;
fail:
	free(s->segs);
	s->segs = NULL;
	return err;
}

/* ---- Inflating -------------------------------------------------------------- */

/*
 * Inflate the IDAT stream into raw (exactly s->raw_len bytes).  The zlib
 * stream must end exactly at the end of the last IDAT; libdeflate checks
 * the zlib header and the Adler-32.  tmp (may be NULL) is scratch of at
 * least s->idat_len bytes for joining several IDATs.
 */
static enum s2s_err
png_inflate(const struct png_scan *s, uint8_t *raw, uint8_t *tmp,
	    struct s2s_image_work *work)
{
	struct libdeflate_decompressor *d;
	const uint8_t *in = s->segs[0].p;
	uint8_t *joined = NULL;
	size_t used = 0;
	enum libdeflate_result r;

	if (s->nsegs > 1) {
		size_t at = 0;

		joined = tmp ? tmp : malloc(s->idat_len ? s->idat_len : 1);
		if (!joined)
			return S2S_ERR_NOMEM;
		for (size_t i = 0; i < s->nsegs; i++) {
			memcpy(joined + at, s->segs[i].p, s->segs[i].len);
			at += s->segs[i].len;
		}
		in = joined;
	}
	d = libdeflate_alloc_decompressor();
	if (!d) {
		if (joined != tmp)
			free(joined);
		return S2S_ERR_NOMEM;
	}
	r = libdeflate_zlib_decompress_ex(d, in, s->idat_len, raw,
					  (size_t)s->raw_len, &used, NULL);
	libdeflate_free_decompressor(d);
	if (joined != tmp)
		free(joined);
	WORK(work, inflated, (size_t)s->raw_len);
	if (r != LIBDEFLATE_SUCCESS || used != s->idat_len)
		return S2S_ERR_IMAGE;
	return S2S_OK;
}

/* ---- Filters -------------------------------------------------------------- */

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/*
 * Paeth predictor, branch-free: the select compiles to conditional moves,
 * so random data costs no mispredictions and rows with several bytes per
 * pixel run their independent chains in parallel.  Same result as the
 * PNG specification's: a if pa <= pb and pa <= pc, else b if pb <= pc,
 * else c, with pa = |b - c|, pb = |a - c|, pc = |a + b - 2c|.
 */
static ALWAYS_INLINE unsigned
paeth(int a, int b, int c)
{
	int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
	int t = pb <= pc ? b : c, tp = pb <= pc ? pb : pc;

	return (unsigned)(pa <= tp ? a : t);
}

/*
 * Paeth on a row whose first pixel is done, bpp a constant after inlining:
 * the left and upper-left bytes ride in registers instead of being loaded
 * back from the row just written (a store-to-load wait on every byte of
 * the dependency chain), and the bpp chains run side by side.
 */
static ALWAYS_INLINE void
paeth_row(uint8_t *row, const uint8_t *prev, size_t n, const size_t bpp)
{
	int a[8], c[8];

	for (size_t k = 0; k < bpp; k++) {
		a[k] = row[k];
		c[k] = prev[k];
	}
	for (size_t i = bpp; i < n; i += bpp) {
		for (size_t k = 0; k < bpp; k++) {
			int b = prev[i + k];

			a[k] = (uint8_t)(row[i + k] + paeth(a[k], b, c[k]));
			row[i + k] = (uint8_t)a[k];
			c[k] = b;
		}
	}
}

/*
 * Undo the filter of one row in place: row has n bytes, prev the previous
 * unfiltered row of the same pass (NULL for the first), bpp the filter's
 * byte distance.  S2S_ERR_IMAGE for an unknown filter type.
 */
static enum s2s_err
unfilter_row(unsigned f, uint8_t *row, const uint8_t *prev, size_t n,
	     size_t bpp)
{
	size_t i;

	switch (f) {
	case 0:
		return S2S_OK;
	case 1:
		for (i = bpp; i < n; i++)
			row[i] = (uint8_t)(row[i] + row[i - bpp]);
		return S2S_OK;
	case 2:
		if (prev)
			for (i = 0; i < n; i++)
				row[i] = (uint8_t)(row[i] + prev[i]);
		return S2S_OK;
	case 3:
		for (i = 0; i < n; i++) {
			unsigned a = i >= bpp ? row[i - bpp] : 0;
			unsigned b = prev ? prev[i] : 0;

			row[i] = (uint8_t)(row[i] + ((a + b) >> 1));
		}
		return S2S_OK;
	case 4:
		if (!prev) {        /* Paeth on the first row is Sub */
			for (i = bpp; i < n; i++)
				row[i] = (uint8_t)(row[i] + row[i - bpp]);
			return S2S_OK;
		}
		for (i = 0; i < bpp && i < n; i++)
			row[i] = (uint8_t)(row[i] + prev[i]);
		if (n % bpp == 0) {
			switch (bpp) {
			case 1:
				paeth_row(row, prev, n, 1);
				return S2S_OK;
			case 2:
				paeth_row(row, prev, n, 2);
				return S2S_OK;
			case 3:
				paeth_row(row, prev, n, 3);
				return S2S_OK;
			case 4:
				paeth_row(row, prev, n, 4);
				return S2S_OK;
			case 6:
				paeth_row(row, prev, n, 6);
				return S2S_OK;
			case 8:
				paeth_row(row, prev, n, 8);
				return S2S_OK;
			default:
				break;
			}
		}
		for (; i < n; i++)
			row[i] = (uint8_t)(row[i] + paeth(row[i - bpp], prev[i],
							  prev[i - bpp]));
		return S2S_OK;
	default:
		return S2S_ERR_IMAGE;
	}
}

/* ---- Full decode into gray8 -------------------------------------------------- */

static unsigned
sample(const uint8_t *row, uint64_t i, unsigned depth)
{
	switch (depth) {
	case 8:
		return row[i];
	case 16:
		return row[2 * i];            /* high byte: v >> 8 */
	default: {
		uint64_t bit = i * depth;
		unsigned shift = 8 - depth - (unsigned)(bit & 7);

		return (unsigned)(row[bit >> 3] >> shift) & ((1u << depth) - 1);
	}
	}
}

static uint8_t
gray_of(const struct png_scan *s, const uint8_t *row, uint64_t x)
{
	unsigned ch = s->channels, v;

	switch (s->ctype) {
	case 0:
		v = sample(row, x, s->depth);
		switch (s->depth) {
		case 1:
			return (uint8_t)(v * 255);
		case 2:
			return (uint8_t)(v * 85);
		case 4:
			return (uint8_t)(v * 17);
		default:
			return (uint8_t)v;
		}
	case 3:
		v = sample(row, x, s->depth);
		if (v >= s->npal)
			return 0;     /* libpng: missing entries are black */
		return rgb_to_y(s->pal[3 * v], s->pal[3 * v + 1],
				s->pal[3 * v + 2]);
	case 4:
		return (uint8_t)sample(row, x * ch, s->depth);
	default:            /* 2 and 6 */
		return rgb_to_y(sample(row, x * ch, s->depth),
				sample(row, x * ch + 1, s->depth),
				sample(row, x * ch + 2, s->depth));
	}
}

/* gray_of() for a whole row of 8- or 16-bit samples, without a switch
 * per sample. */
static void
row_to_gray(const struct png_scan *s, const uint8_t *row, uint8_t *dst,
	    uint32_t w)
{
	size_t step = (size_t)s->channels * (s->depth / 8);
	size_t cs = s->depth / 8;      /* the high byte comes first */

	if (s->channels < 3) {
		for (uint32_t i = 0; i < w; i++)
			dst[i] = row[i * step];
		return;
	}
	for (uint32_t i = 0; i < w; i++) {
		const uint8_t *p = row + i * step;

		dst[i] = rgb_to_y(p[0], p[cs], p[2 * cs]);
	}
}

/* Unfilter every pass of raw in place and write gray8 pixels to px. */
static enum s2s_err
png_reconstruct(const struct png_scan *s, uint8_t *raw, uint8_t *px,
		struct s2s_image_work *work)
{
	size_t bpp = s->bits >= 8 ? s->bits / 8 : 1;
	uint8_t *at = raw;

	for (int k = 0; k < (s->interlace ? 7 : 1); k++) {
		uint32_t pw, ph, x0 = 0, y0 = 0, dx = 1, dy = 1;
		size_t rb;
		const uint8_t *prev = NULL;

		pass_dims(s, k, &pw, &ph);
		if (!pw || !ph)
			continue;
		if (s->interlace) {
			x0 = adam7[k][0];
			y0 = adam7[k][1];
			dx = adam7[k][2];
			dy = adam7[k][3];
		}
		rb = (size_t)pass_rowbytes(pw, s->bits);
		for (uint32_t j = 0; j < ph; j++) {
			uint8_t *row = at + 1;
			uint8_t *dst = px + ((size_t)y0 + (size_t)j * dy) *
				       s->width;

			if (unfilter_row(at[0], row, prev, rb, bpp))
				return S2S_ERR_IMAGE;
			WORK(work, unfiltered, rb);
			if (s->ctype == 0 && s->depth == 8 && !s->interlace)
				memcpy(dst, row, pw);
			else if (!s->interlace && s->depth >= 8 &&
				 s->ctype != 3)
				row_to_gray(s, row, dst, pw);
			else
				for (uint32_t i = 0; i < pw; i++)
					dst[x0 + (size_t)i * dx] =
						gray_of(s, row, i);
			prev = row;
			at += 1 + rb;
		}
	}
	return S2S_OK;
}

static enum s2s_err
png_decode(const uint8_t *buf, size_t len,
	   const struct s2s_image_limits *lim, struct s2s_image *out,
	   struct s2s_image_work *work)
{
	struct png_scan s;
	uint8_t *raw = NULL;
	enum s2s_err err;

	if ((err = png_scan(buf, len, lim, &s, work)))
		return err;
	raw = malloc((size_t)s.raw_len);
	out->pixels = malloc((size_t)s.width * s.height);
	if (!raw || !out->pixels) {
		err = S2S_ERR_NOMEM;
		goto out;
	}
	if ((err = png_inflate(&s, raw, NULL, work)) ||
	    (err = png_reconstruct(&s, raw, out->pixels, work)))
		goto out;
	out->width = s.width;
	out->height = s.height;
out:
	if (err) {
		free(out->pixels);
		memset(out, 0, sizeof(*out));
	}
	free(raw);
	free(s.segs);
	return err;
}

/* ---- Rows of an 8-bit gray PNG, zero-copy where the stream allows ------ */

/* A run of stored bytes: raw offset `at` is file bytes p[0..len). */
struct png_piece {
	const uint8_t *p;
	size_t at, len;
};

/* A byte cursor over the IDAT segments. */
struct seg_cur {
	const struct png_scan *s;
	size_t seg, off;
};

/* Copy n bytes (dst may be NULL: skip); false if the stream ends first. */
static bool
cur_take(struct seg_cur *c, uint8_t *dst, size_t n,
	 struct png_piece *pieces, size_t *npieces, size_t at)
{
	while (n) {
		size_t avail, k;

		if (c->seg >= c->s->nsegs)
			return false;
		avail = c->s->segs[c->seg].len - c->off;
		if (!avail) {
			c->seg++;
			c->off = 0;
			continue;
		}
		k = avail < n ? avail : n;
		if (dst) {
			memcpy(dst, c->s->segs[c->seg].p + c->off, k);
			dst += k;
		} else if (pieces) {
			if (*npieces == PNG_MAX_PIECES)
				return false;
			pieces[*npieces].p = c->s->segs[c->seg].p + c->off;
			pieces[*npieces].at = at;
			pieces[*npieces].len = k;
			(*npieces)++;
			at += k;
		}
		c->off += k;
		n -= k;
	}
	return true;
}

static bool
cur_at_end(struct seg_cur *c)
{
	while (c->seg < c->s->nsegs && c->off == c->s->segs[c->seg].len) {
		c->seg++;
		c->off = 0;
	}
	return c->seg >= c->s->nsegs;
}

/*
 * Follow a zlib stream made only of stored blocks (PNG level 0) and list
 * where its bytes sit in the file.  Returns 1 if it is such a stream and
 * well-formed (header, LEN/NLEN, exact length, Adler-32, nothing after),
 * 0 if it is not (a compressed block, too many pieces: inflate instead,
 * which then gives the verdict), -1 if it is malformed in a way inflating
 * would reject too.
 */
static int
png_stored_pieces(const struct png_scan *s, struct png_piece *pieces,
		  size_t *npieces, struct s2s_image_work *work)
{
	struct seg_cur c = { .s = s };
	uint8_t hdr[5], zh[2], ad[4];
	size_t at = 0, first;
	uint32_t adler = 1;
	bool final = false;

	*npieces = 0;
	if (!cur_take(&c, zh, 2, NULL, NULL, 0))
		return 0;
	if ((zh[0] & 0x0f) != 8 || (zh[0] >> 4) > 7 || (zh[1] & 0x20) ||
	    ((unsigned)zh[0] << 8 | zh[1]) % 31)
		return 0;
	while (!final) {
		uint32_t blen;

		if (!cur_take(&c, hdr, 1, NULL, NULL, 0))
			return 0;
		if ((hdr[0] >> 1 & 3) != 0)
			return 0;          /* a compressed block */
		final = hdr[0] & 1;
		if (!cur_take(&c, hdr + 1, 4, NULL, NULL, 0))
			return 0;
		blen = (uint32_t)hdr[1] | (uint32_t)hdr[2] << 8;
		if ((blen ^ ((uint32_t)hdr[3] | (uint32_t)hdr[4] << 8)) !=
		    0xffff)
			return -1;
		if (blen > s->raw_len - at)
			return -1;         /* more data than the image has */
		first = *npieces;
		if (!cur_take(&c, NULL, blen, pieces, npieces, at))
			return *npieces == PNG_MAX_PIECES ? 0 : -1;
		for (size_t i = first; i < *npieces; i++)
			adler = libdeflate_adler32(adler, pieces[i].p,
						   pieces[i].len);
		WORK(work, stored, blen);
		at += blen;
	}
	if (at != s->raw_len || !cur_take(&c, ad, 4, NULL, NULL, 0) ||
	    be32(ad) != adler || !cur_at_end(&c))
		return -1;
	return 1;
}

/*
 * Level 0: true if every row has filter None (the filter byte is the
 * first raw byte of the row, inside the piece that holds its offset);
 * *split receives how many rows straddle two pieces.
 */
static bool
png_stored_direct(const struct png_piece *pc, uint32_t height, size_t stride,
		  size_t *split)
{
	size_t p = 0;

	*split = 0;
	for (uint32_t y = 0; y < height; y++) {
		size_t a = (size_t)y * stride;

		while (pc[p].at + pc[p].len <= a)
			p++;
		if (pc[p].p[a - pc[p].at] != 0)
			return false;
		if (a + stride > pc[p].at + pc[p].len)
			(*split)++;
	}
	return true;
}

static enum s2s_err
rows_reserve(struct s2s_image_rows *r, size_t nrows, size_t scratch)
{
	if (nrows > r->rows_cap_) {
		const uint8_t **nr = realloc(r->rows_buf_, nrows * sizeof(*nr));

		if (!nr)
			return S2S_ERR_NOMEM;
		r->rows_buf_ = nr;
		r->rows_cap_ = nrows;
	}
	if (scratch > r->scratch_cap_) {
		uint8_t *ns = malloc(scratch);

		if (!ns)
			return S2S_ERR_NOMEM;
		free(r->scratch_);
		r->scratch_ = ns;
		r->scratch_cap_ = scratch;
	}
	return S2S_OK;
}

void
s2s_image_rows_free(struct s2s_image_rows *r)
{
	if (!r)
		return;
	free(r->rows_buf_);
	free(r->scratch_);
	memset(r, 0, sizeof(*r));
}

enum s2s_err
s2s_image_png_gray_rows(const uint8_t *buf, size_t len,
			const struct s2s_image_limits *limits,
			struct s2s_image_rows *out,
			struct s2s_image_work *work)
{
	struct png_piece pieces[PNG_MAX_PIECES];
	struct s2s_image_limits lim;
	struct png_scan s;
	size_t np = 0, stride, p = 0, split = 0;
	uint8_t *raw = NULL;
	bool direct;
	enum s2s_err err;
	int st;

	if (!out || (!buf && len))
		return S2S_ERR_INVAL;
	out->width = out->height = 0;
	out->rows = NULL;
	get_limits(limits, &lim);
	if (len > lim.max_bytes)
		return S2S_ERR_TOO_BIG;
	if ((err = png_scan(buf, len, &lim, &s, work)))
		return err;
	if (s.ctype != 0 || s.depth != 8 || s.interlace) {
		err = S2S_ERR_IMAGE;
		goto out;
	}
	stride = (size_t)s.width + 1;
	st = png_stored_pieces(&s, pieces, &np, work);
	if (st < 0) {
		err = S2S_ERR_IMAGE;
		goto out;
	}
	if (st > 0 && png_stored_direct(pieces, s.height, stride, &split)) {
		/*
		 * Level 0, filter None everywhere: rows are read in place; a
		 * row split across pieces (IDAT or stored-block boundaries)
		 * is gathered into the scratch.
		 */
		size_t k = 0;

		if ((err = rows_reserve(out, s.height, split * stride)))
			goto out;
		for (uint32_t y = 0; y < s.height; y++) {
			size_t a = (size_t)y * stride;

			while (pieces[p].at + pieces[p].len <= a)
				p++;
			if (a + stride <= pieces[p].at + pieces[p].len) {
				out->rows_buf_[y] = pieces[p].p +
						    (a - pieces[p].at) + 1;
				continue;
			}
			raw = out->scratch_ + k++ * stride;
			for (size_t q = p, done = 0; done < stride; q++) {
				size_t o = a + done - pieces[q].at;
				size_t n = pieces[q].len - o;

				if (n > stride - done)
					n = stride - done;
				memcpy(raw + done, pieces[q].p + o, n);
				done += n;
			}
			out->rows_buf_[y] = raw + 1;
		}
		direct = true;
	} else {
		/* Everything through the scratch: the raw scanlines, and
		 * room to join the IDATs for inflating. */
		if ((err = rows_reserve(out, s.height, (size_t)s.raw_len +
					(s.nsegs > 1 ? s.idat_len : 0))))
			goto out;
		raw = out->scratch_;
		if (st > 0) {
			for (size_t i = 0; i < np; i++)
				memcpy(raw + pieces[i].at, pieces[i].p,
				       pieces[i].len);
		} else if ((err = png_inflate(&s, raw, s.nsegs > 1 ?
					      raw + s.raw_len : NULL,
					      work))) {
			goto out;
		}
		direct = false;
	}
	if (!direct) {
		const uint8_t *prev = NULL;

		for (uint32_t y = 0; y < s.height; y++) {
			uint8_t *row = raw + (size_t)y * stride;

			if (unfilter_row(row[0], row + 1, prev, s.width, 1)) {
				err = S2S_ERR_IMAGE;
				goto out;
			}
			if (row[0])
				WORK(work, unfiltered, s.width);
			out->rows_buf_[y] = row + 1;
			prev = row + 1;
		}
	}
	out->width = s.width;
	out->height = s.height;
	out->rows = out->rows_buf_;
out:
	free(s.segs);
	return err;
}

/* ---- PNG reading through libpng: the reference ----------------------------- */

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
png_decode_libpng(const uint8_t *buf, size_t len,
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

static enum s2s_err
image_decode(const uint8_t *buf, size_t len,
	     const struct s2s_image_limits *limits, struct s2s_image *out,
	     struct s2s_image_work *work, bool libpng)
{
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
		return libpng ? png_decode_libpng(buf, len, &lim, out)
			      : png_decode(buf, len, &lim, out, work);
	/* A prefix of a PNG signature is a truncated PNG. */
	if (len < 8 && !memcmp(buf, png_sig, len))
		return S2S_ERR_TRUNCATED;
	return S2S_ERR_IMAGE;
}

enum s2s_err
s2s_image_decode(const uint8_t *buf, size_t len,
		 const struct s2s_image_limits *limits, struct s2s_image *out)
{
	return image_decode(buf, len, limits, out, NULL, false);
}

enum s2s_err
s2s_image_decode_work(const uint8_t *buf, size_t len,
		      const struct s2s_image_limits *limits,
		      struct s2s_image *out, struct s2s_image_work *work)
{
	return image_decode(buf, len, limits, out, work, false);
}

enum s2s_err
s2s_image_decode_libpng(const uint8_t *buf, size_t len,
			const struct s2s_image_limits *limits,
			struct s2s_image *out)
{
	return image_decode(buf, len, limits, out, NULL, true);
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

/*
 * Our own writer on libdeflate (zlib's deflate at level 1 cost ~180 us for
 * a 128x128 cover, libdeflate ~25 us, with smaller output).  Colour type
 * 0, depth 8, no ancillary chunks, one IDAT.  Filters: None at levels 0-1;
 * above, per row the filter with the smallest sum of |signed byte| (the
 * usual heuristic, libpng's too).
 */

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Append a chunk (body already at c + 8) of n bytes: length, type, CRC. */
static size_t
chunk_close(uint8_t *c, const char *type, size_t n)
{
	put_be32(c, (uint32_t)n);
	memcpy(c + 4, type, 4);
	put_be32(c + 8 + n, (uint32_t)libdeflate_crc32(0, c + 4, 4 + n));
	return 12 + n;
}

/* Filter row (w bytes, prev NULL for the first) with type f into dst. */
static void
filter_row(unsigned f, const uint8_t *row, const uint8_t *prev, uint32_t w,
	   uint8_t *dst)
{
	for (uint32_t i = 0; i < w; i++) {
		int a = i ? row[i - 1] : 0, b = prev ? prev[i] : 0;
		int c = prev && i ? prev[i - 1] : 0, pred;

		switch (f) {
		case 1:
			pred = a;
			break;
		case 2:
			pred = b;
			break;
		case 3:
			pred = (a + b) >> 1;
			break;
		case 4:
			pred = (int)paeth(a, b, c);
			break;
		default:
			pred = 0;
		}
		dst[i] = (uint8_t)(row[i] - pred);
	}
}

static uint64_t
row_cost(const uint8_t *f, uint32_t w)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < w; i++)
		sum += f[i] < 128 ? f[i] : 256u - f[i];
	return sum;
}

enum s2s_err
s2s_image_encode_png(const struct s2s_image *img, int level, uint8_t **out,
		     size_t *out_len)
{
	struct libdeflate_compressor *z;
	uint8_t *raw = NULL, *buf = NULL, *trial = NULL;
	size_t stride, raw_len, bound, zl, pos = 8;
	enum s2s_err err = S2S_OK;

	if (!img || !img->pixels || !img->width || !img->height || !out ||
	    !out_len || level < 0 || level > 9)
		return S2S_ERR_INVAL;
	if (img->width > 0x7fffffffu || img->height > 0x7fffffffu ||
	    (size_t)img->width + 1 > SIZE_MAX / img->height)
		return S2S_ERR_TOO_BIG;
	stride = (size_t)img->width + 1;
	raw_len = stride * img->height;
	z = libdeflate_alloc_compressor(level);
	if (!z)
		return S2S_ERR_NOMEM;
	raw = malloc(raw_len);
	trial = level > 1 ? malloc(img->width) : NULL;
	bound = libdeflate_zlib_compress_bound(z, raw_len);
	if (bound > SIZE_MAX - 8 - 25 - 24)
		err = S2S_ERR_TOO_BIG;
	else if (!(buf = malloc(8 + 25 + 12 + bound + 12)))
		err = S2S_ERR_NOMEM;
	if (err || !raw || (level > 1 && !trial)) {
		err = err ? err : S2S_ERR_NOMEM;
		goto out;
	}
	for (uint32_t y = 0; y < img->height; y++) {
		const uint8_t *row = img->pixels + (size_t)y * img->width;
		const uint8_t *prev = y ? row - img->width : NULL;
		uint8_t *dst = raw + (size_t)y * stride;
		uint64_t best = UINT64_MAX;

		dst[0] = 0;
		memcpy(dst + 1, row, img->width);
		if (level <= 1)
			continue;
		best = row_cost(dst + 1, img->width);
		for (unsigned f = 1; f <= 4; f++) {
			uint64_t cost;

			filter_row(f, row, prev, img->width, trial);
			cost = row_cost(trial, img->width);
			if (cost < best) {
				best = cost;
				dst[0] = (uint8_t)f;
				memcpy(dst + 1, trial, img->width);
			}
		}
	}
	memcpy(buf, png_sig, 8);
	put_be32(buf + pos + 8, img->width);
	put_be32(buf + pos + 12, img->height);
	buf[pos + 16] = 8;      /* depth */
	buf[pos + 17] = 0;      /* gray */
	buf[pos + 18] = 0;
	buf[pos + 19] = 0;
	buf[pos + 20] = 0;      /* not interlaced */
	pos += chunk_close(buf + pos, "IHDR", 13);
	zl = libdeflate_zlib_compress(z, raw, raw_len, buf + pos + 8, bound);
	if (!zl || zl > 0x7fffffffu) {
		err = S2S_ERR_TOO_BIG;
		goto out;
	}
	pos += chunk_close(buf + pos, "IDAT", zl);
	pos += chunk_close(buf + pos, "IEND", 0);
	*out = buf;
	*out_len = pos;
	buf = NULL;
out:
	libdeflate_free_compressor(z);
	free(raw);
	free(trial);
	free(buf);
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

/* ---- Patching a pre-encoded level-0 PNG ------------------------------------- */

struct patch_piece {
	size_t file;        /* file offset of raw byte `at` */
	size_t at, len;
	uint32_t chunk;     /* index into chunks */
};

struct s2s_image_patch {
	uint8_t *png;
	size_t len;
	uint32_t width, height;
	size_t raw_len;
	struct patch_piece *pieces;
	size_t npieces;
	size_t *chunks;     /* file offset of each IDAT chunk (its length) */
	size_t nchunks;
	size_t adler[4];    /* file offsets of the Adler-32 bytes */
	uint32_t adler_chunk[4];
};

void
s2s_image_patch_destroy(struct s2s_image_patch *p)
{
	if (!p)
		return;
	free(p->png);
	free(p->pieces);
	free(p->chunks);
	free(p);
}

size_t
s2s_image_patch_len(const struct s2s_image_patch *p)
{
	return p ? p->len : 0;
}

static uint32_t
seg_of(const struct png_scan *s, const uint8_t *q)
{
	for (size_t i = 0; i < s->nsegs; i++)
		if (q >= s->segs[i].p && q < s->segs[i].p + s->segs[i].len)
			return (uint32_t)i;
	return 0;
}

enum s2s_err
s2s_image_patch_create(const struct s2s_image *img,
		       struct s2s_image_patch **out)
{
	struct png_piece pieces[PNG_MAX_PIECES];
	struct s2s_image_limits lim = { .max_width = 0x7fffffff,
					.max_height = 0x7fffffff,
					.max_pixels = SIZE_MAX,
					.max_bytes = SIZE_MAX,
					.max_raw = SIZE_MAX };
	struct s2s_image_patch *p;
	struct png_scan s = { 0 };
	size_t np = 0;
	enum s2s_err err;

	if (!img || !out)
		return S2S_ERR_INVAL;
	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return S2S_ERR_NOMEM;
	if ((err = s2s_image_encode_png(img, 0, &p->png, &p->len)))
		goto fail;
	if ((err = png_scan(p->png, p->len, &lim, &s, NULL)))
		goto fail;
	if (png_stored_pieces(&s, pieces, &np, NULL) != 1) {
		err = S2S_ERR_IMAGE;   /* libpng wrote more blocks than we follow */
		goto fail;
	}
	p->pieces = malloc(np * sizeof(*p->pieces));
	p->chunks = malloc(s.nsegs * sizeof(*p->chunks));
	if (!p->pieces || !p->chunks) {
		err = S2S_ERR_NOMEM;
		goto fail;
	}
	for (size_t i = 0; i < np; i++) {
		p->pieces[i].file = (size_t)(pieces[i].p - p->png);
		p->pieces[i].at = pieces[i].at;
		p->pieces[i].len = pieces[i].len;
		p->pieces[i].chunk = seg_of(&s, pieces[i].p);
	}
	p->npieces = np;
	for (size_t i = 0; i < s.nsegs; i++)
		p->chunks[i] = (size_t)(s.segs[i].p - 8 - p->png);
	p->nchunks = s.nsegs;
	/* The Adler-32 is the last 4 bytes of the IDAT data. */
	{
		size_t seg = s.nsegs, left = 0;

		for (int k = 3; k >= 0; k--) {
			while (!left) {
				seg--;
				left = s.segs[seg].len;
			}
			left--;
			p->adler[k] = (size_t)(s.segs[seg].p + left - p->png);
			p->adler_chunk[k] = (uint32_t)seg;
		}
	}
	p->width = img->width;
	p->height = img->height;
	p->raw_len = (size_t)s.raw_len;
	free(s.segs);
	*out = p;
	return S2S_OK;
fail:
	free(s.segs);
	s2s_image_patch_destroy(p);
	return err;
}

#define ADLER_MOD 65521u

enum s2s_err
s2s_image_patch_write(const struct s2s_image_patch *p,
		      const struct s2s_image_change *ch, size_t n,
		      uint8_t *dst)
{
	uint8_t touched[64] = { 0 };
	bool all = p && p->nchunks > sizeof(touched);
	uint32_t a, b, adler;

	if (!p || !dst || (!ch && n))
		return S2S_ERR_INVAL;
	for (size_t i = 0; i < n; i++)
		if (ch[i].pos / p->width >= p->height)
			return S2S_ERR_INVAL;
	memcpy(dst, p->png, p->len);
	adler = (uint32_t)dst[p->adler[0]] << 24 |
		(uint32_t)dst[p->adler[1]] << 16 |
		(uint32_t)dst[p->adler[2]] << 8 | dst[p->adler[3]];
	a = adler & 0xffff;
	b = adler >> 16;
	for (size_t i = 0; i < n; i++) {
		uint32_t y = ch[i].pos / p->width, x = ch[i].pos % p->width;
		size_t at = (size_t)y * ((size_t)p->width + 1) + 1 + x;
		size_t lo = 0, hi = p->npieces, f;
		int old, delta;
		uint32_t w;

		while (hi - lo > 1) {       /* last piece with .at <= at */
			size_t mid = (lo + hi) / 2;

			if (p->pieces[mid].at <= at)
				lo = mid;
			else
				hi = mid;
		}
		f = p->pieces[lo].file + (at - p->pieces[lo].at);
		old = dst[f];
		delta = (int)ch[i].val - old;
		if (!delta)
			continue;
		dst[f] = ch[i].val;
		if (!all)
			touched[p->pieces[lo].chunk] = 1;
		/* A = 1 + sum d_i, B = n + sum (n - i) d_i, both mod 65521. */
		w = (uint32_t)((p->raw_len - at) % ADLER_MOD);
		if (delta > 0) {
			a = (a + (uint32_t)delta) % ADLER_MOD;
			b = (uint32_t)((b + (uint64_t)w * (uint32_t)delta) %
				       ADLER_MOD);
		} else {
			uint32_t d = (uint32_t)-delta;

			a = (a + ADLER_MOD - d) % ADLER_MOD;
			b = (uint32_t)((b + (uint64_t)w * (ADLER_MOD - d)) %
				       ADLER_MOD);
		}
	}
	adler = b << 16 | a;
	for (int k = 0; k < 4; k++) {
		dst[p->adler[k]] = (uint8_t)(adler >> (24 - 8 * k));
		if (!all)
			touched[p->adler_chunk[k]] = 1;
	}
	for (size_t c = 0; c < p->nchunks; c++) {
		size_t off = p->chunks[c];
		uint32_t clen, crc;

		if (!all && !touched[c])
			continue;
		clen = be32(dst + off);
		crc = (uint32_t)libdeflate_crc32(0, dst + off + 4, 4 + clen);
		dst[off + 8 + clen] = (uint8_t)(crc >> 24);
		dst[off + 9 + clen] = (uint8_t)(crc >> 16);
		dst[off + 10 + clen] = (uint8_t)(crc >> 8);
		dst[off + 11 + clen] = (uint8_t)crc;
	}
	return S2S_OK;
}
