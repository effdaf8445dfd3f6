/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s/image.h - 8-bit grayscale images and their files (PNG and PGM).
 *
 * PNG goes through libpng's low-level API with no gamma or colour
 * management: ancillary chunks (gAMA, sRGB, iCCP, cHRM) never change a
 * pixel.  Conversions are exact and documented: RGB(A) to gray as
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

/* Read and decode a file (PNG or PGM). */
enum s2s_err s2s_image_read_file(const char *path,
				 const struct s2s_image_limits *limits,
				 struct s2s_image *out);

/*
 * Encode as PNG into a malloc()ed buffer (*out, *out_len; free() it).
 * level is the zlib level 0..9; filters are "none" at levels 0-1 and
 * all filters above.
 */
enum s2s_err s2s_image_encode_png(const struct s2s_image *img, int level,
				  uint8_t **out, size_t *out_len);

/* Write a PNG (level as above) or, if path ends in ".pgm", a P5 PGM. */
enum s2s_err s2s_image_write_file(const struct s2s_image *img,
				  const char *path, int level);

/* Default PNG level for stego images on the wire (fast, small enough). */
#define S2S_PNG_LEVEL_DEFAULT 1

/* Mean squared error and PSNR (peak 255) of two equal-sized images. */
enum s2s_err s2s_image_psnr(const struct s2s_image *a,
			    const struct s2s_image *b, double *mse,
			    double *psnr);

#ifdef __cplusplus
}
#endif

#endif /* S2S_IMAGE_H */
