/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_image.c - the PNG/PGM reader: s2s_image_decode with limits.
 *
 * Input: one image file (PNG or binary PGM, told by its magic).
 * Invariants checked on a decoded image:
 *  - it is within the limits and every pixel is readable (ASan);
 *  - the limits are checked from the header: the same bytes with a pixel
 *    limit one below the image's size give S2S_ERR_TOO_BIG;
 *  - our PNG writer round-trips it: encode (level 0) and decode again
 *    give the same pixels;
 *  - the gate's reader (s2s_image_png_gray_rows) accepts exactly the
 *    8-bit gray non-interlaced PNGs the decoder accepts, with the same
 *    pixels, and the work counters stay within the bounds IHDR sets.
 * Errors must be one of the documented ones.
 */
#include "fuzz_common.h"

static const struct s2s_image_limits limits = {
	.max_width = 2048,
	.max_height = 2048,
	.max_pixels = 512u * 512u,
	.max_bytes = 1u << 20,
};

static void
cleanup(void)
{
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_image img, again, small;
	struct s2s_image_limits tight = limits;
	uint8_t *png = NULL;
	size_t png_len = 0, n;
	unsigned sum = 0;
	enum s2s_err err;

	struct s2s_image_rows rows = { 0 };
	struct s2s_image_work w = { 0 };
	enum s2s_err er;
	bool gray8 = size >= 29 && data[24] == 8 && data[25] == 0 &&
		     data[28] == 0 && data[0] == 0x89;

	err = s2s_image_decode_work(data, size, &limits, &img, &w);
	FUZZ_CHECK(w.chunks <= 4096);
	FUZZ_CHECK(w.inflated <= 4 * limits.max_pixels + limits.max_height);
	er = s2s_image_png_gray_rows(data, size, &limits, &rows, NULL);
	if (er == S2S_OK) {
		FUZZ_CHECK(err == S2S_OK && gray8);
		FUZZ_CHECK(rows.width == img.width && rows.height == img.height);
		for (uint32_t y = 0; y < rows.height; y++)
			FUZZ_CHECK(memcmp(rows.rows[y], img.pixels +
					  (size_t)y * img.width,
					  img.width) == 0);
	} else if (err == S2S_OK && gray8) {
		FUZZ_CHECK(0);      /* the decoder took it, the gate did not */
	}
	s2s_image_rows_free(&rows);
	if (err != S2S_OK) {
		FUZZ_CHECK(err == S2S_ERR_IMAGE || err == S2S_ERR_TRUNCATED ||
			   err == S2S_ERR_TOO_BIG || err == S2S_ERR_NOMEM);
		FUZZ_CHECK(img.pixels == NULL && img.width == 0 &&
			   img.height == 0);
		return 0;
	}
	FUZZ_CHECK(img.pixels && img.width > 0 && img.height > 0);
	FUZZ_CHECK(img.width <= limits.max_width &&
		   img.height <= limits.max_height);
	n = (size_t)img.width * img.height;
	FUZZ_CHECK(n <= limits.max_pixels);
	for (size_t i = 0; i < n; i++)
		sum += img.pixels[i];
	(void)sum;

	/* Checked from the header: one pixel less is refused. */
	tight.max_pixels = n - 1 ? n - 1 : 1;
	if (n > 1) {
		err = s2s_image_decode(data, size, &tight, &small);
		FUZZ_CHECK(err == S2S_ERR_TOO_BIG);
		FUZZ_CHECK(small.pixels == NULL);
	}

	FUZZ_CHECK(s2s_image_encode_png(&img, 0, &png, &png_len) == S2S_OK);
	FUZZ_CHECK(s2s_image_decode(png, png_len, &limits, &again) == S2S_OK);
	FUZZ_CHECK(again.width == img.width && again.height == img.height);
	FUZZ_CHECK(memcmp(again.pixels, img.pixels, n) == 0);
	free(png);
	s2s_image_free(&again);
	s2s_image_free(&img);
	return 0;
}
