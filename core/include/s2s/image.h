/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/image.h - 8-bit grayscale images and their files (PNG and PGM).
 *
 * PNG is read by our own bounded decoder (libdeflate inflates, nothing
 * else is allocated beyond the pixel data) and written by our own encoder
 * (libdeflate, one IDAT).  No gamma or colour management: ancillary
 * chunks (gAMA, sRGB, iCCP, cHRM, zTXt, ...) are skipped unread and never
 * change a pixel or cost more than a length check.  The work of a decode
 * is bounded before it starts: IHDR gives the exact size of the pixel
 * data, checked against the limits, and inflating stops there.
 * Conversions are exact and documented: RGB(A) to gray as
 * Y = (299 R + 587 G + 114 B + 500) / 1000, alpha ignored, 16-bit samples
 * as v >> 8, palettes expanded, bit depths below 8 scaled to 0..255.
 * Written PNGs are colour type 0, depth 8, with no ancillary chunks.
 *
 * Thread-safe (no shared state).
 */
#ifndef S2S_IMAGE_H
#define S2S_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A grayscale image: width * height bytes, row-major, no padding.  The
 * pixels are owned by the struct and released by s2s_image_free().
 */
struct s2s_image {
	uint32_t width;
	uint32_t height;
	uint8_t *pixels;
};

/* Limits applied while decoding; zero fields take the defaults below. */
struct s2s_image_limits {
	uint32_t max_width;   /* default 4096 */
	uint32_t max_height;  /* default 4096 */
	size_t max_pixels;    /* default 4096 * 4096 */
	size_t max_bytes;     /* encoded size, default 16 MiB */
	/*
	 * PNG scanline bytes (samples and filter bytes, every pass), the
	 * measure of a decode's work; default 4 * max_pixels + height, so a
	 * 16-bit RGBA or RGB image may have half or two thirds of
	 * max_pixels.  Checked from IHDR, before anything is inflated.
	 */
	size_t max_raw;
};

/* Allocate a width x height image filled with value. */
enum s2s_err s2s_image_alloc(struct s2s_image *img, uint32_t width,
			     uint32_t height, uint8_t value);

/* Release the pixels and zero the struct.  A zeroed struct is a no-op. */
void s2s_image_free(struct s2s_image *img);

/*
 * Decode a PNG or binary PGM (P5, maxval <= 65535) from memory; the format
 * is told by its magic bytes.  S2S_ERR_IMAGE for a corrupt or unsupported
 * file, S2S_ERR_TRUNCATED for one cut short, S2S_ERR_TOO_BIG beyond limits
 * (checked from the header, before any pixel memory is allocated).
 * limits may be NULL.
 */
enum s2s_err s2s_image_decode(const uint8_t *buf, size_t len,
			      const struct s2s_image_limits *limits,
			      struct s2s_image *out);

/*
 * The work one decode did, for tests and benchmarks that bound it without
 * a clock.  Counters are added to (zero the struct first).
 */
struct s2s_image_work {
	size_t chunks;       /* PNG chunks walked (at most 4096) */
	size_t ancillary;    /* ancillary chunks skipped, body unread */
	size_t crc_bytes;    /* bytes run through CRC-32 (critical chunks) */
	size_t inflated;     /* bytes inflated (IHDR's exact scanline size) */
	size_t stored;       /* bytes read in place from stored blocks */
	size_t unfiltered;   /* bytes run through a PNG filter */
};

/* s2s_image_decode, adding the work done to *work (may be NULL). */
enum s2s_err s2s_image_decode_work(const uint8_t *buf, size_t len,
				   const struct s2s_image_limits *limits,
				   struct s2s_image *out,
				   struct s2s_image_work *work);

/*
 * The previous decoder, libpng's low-level API, kept as the reference the
 * tests compare with.  Not bounded (libpng inflates compressed ancillary
 * chunks): never use it on untrusted input in the broker.
 */
enum s2s_err s2s_image_decode_libpng(const uint8_t *buf, size_t len,
				     const struct s2s_image_limits *limits,
				     struct s2s_image *out);

/*
 * Rows of an 8-bit gray, non-interlaced PNG (the stego images on the
 * wire), for verifiers that only read pixels.  rows[y] points at width
 * bytes: into buf itself where the PNG stores them uncompressed and
 * unfiltered (level 0), else into scratch owned by the struct.  Same
 * checks and verdicts as s2s_image_decode (critical CRCs, zlib header,
 * stored LEN/NLEN, exact length, Adler-32); any other colour type, depth
 * or interlacing is S2S_ERR_IMAGE.  The struct keeps its scratch between
 * calls (zero it first, release with s2s_image_rows_free); rows stay
 * valid until the next call or buf changes.  Not thread-safe per struct.
 */
struct s2s_image_rows {
	uint32_t width;
	uint32_t height;
	const uint8_t *const *rows;
	/* private */
	const uint8_t **rows_buf_;
	size_t rows_cap_;
	uint8_t *scratch_;
	size_t scratch_cap_;
};

enum s2s_err s2s_image_png_gray_rows(const uint8_t *buf, size_t len,
				     const struct s2s_image_limits *limits,
				     struct s2s_image_rows *out,
				     struct s2s_image_work *work);
void s2s_image_rows_free(struct s2s_image_rows *r);

/* One pixel change: pixel pos (y * width + x) takes the value val. */
struct s2s_image_change {
	uint32_t pos;
	uint8_t val;
};

/*
 * A pre-encoded level-0 PNG of an image, and the map of where each pixel
 * sits in it, so a sender that changes a few pixels of a fixed cover
 * writes the PNG by copying it and patching those bytes, the Adler-32 and
 * the CRCs of the IDAT chunks it touched, instead of encoding the whole
 * image.  The result is byte for byte what s2s_image_encode_png(level 0)
 * writes for the changed image.  Immutable after creation (may be shared
 * by threads); s2s_image_patch_destroy(NULL) is a no-op.
 */
struct s2s_image_patch;

enum s2s_err s2s_image_patch_create(const struct s2s_image *img,
				    struct s2s_image_patch **out);
void s2s_image_patch_destroy(struct s2s_image_patch *p);
/* Length of the PNG the patch writes. */
size_t s2s_image_patch_len(const struct s2s_image_patch *p);
/*
 * Write the PNG of the image with changes ch[0..n) applied (later ones
 * win) to dst (s2s_image_patch_len bytes).  S2S_ERR_INVAL for a position
 * outside the image.
 */
enum s2s_err s2s_image_patch_write(const struct s2s_image_patch *p,
				   const struct s2s_image_change *ch,
				   size_t n, uint8_t *dst);

/* Read and decode a file (PNG or PGM). */
enum s2s_err s2s_image_read_file(const char *path,
				 const struct s2s_image_limits *limits,
				 struct s2s_image *out);

/*
 * Encode as PNG into a malloc()ed buffer (*out, *out_len; free() it).
 * level is the deflate level 0..9 (0: stored blocks); filters are "none"
 * at levels 0-1, above per row the one with the smallest sum of
 * |signed byte|.
 */
enum s2s_err s2s_image_encode_png(const struct s2s_image *img, int level,
				  uint8_t **out, size_t *out_len);

/* Write a PNG (level as above) or, if path ends in ".pgm", a P5 PGM. */
enum s2s_err s2s_image_write_file(const struct s2s_image *img,
				  const char *path, int level);

/*
 * Default PNG level for stego images on the wire: 0 (stored).  The gate
 * then reads the pixels in place and a caching sender patches a
 * pre-encoded cover: a few microseconds at both ends for 43 % more bytes
 * than level 1 (docs/OPERATIONS.md, "PNG level").
 */
#define S2S_PNG_LEVEL_DEFAULT 0

/* Mean squared error and PSNR (peak 255) of two equal-sized images. */
enum s2s_err s2s_image_psnr(const struct s2s_image *a,
			    const struct s2s_image *b, double *mse,
			    double *psnr);

#ifdef __cplusplus
}
#endif

#endif /* S2S_IMAGE_H */
