/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_stego.c - stego extraction: decode an image, then
 * s2s_stego_extract with a fixed key.
 *
 * Input: byte 0 chooses the payload length n = 1 + (byte % 32), byte 1 a
 * payload pattern, the rest is the image file (PNG or PGM).
 * Invariants checked, when the image decodes and can carry n bytes:
 *  - the one-shot extract and a precomputed selection give the same bytes;
 *  - embedding a payload into a copy and extracting it gives the payload
 *    back, with `changes` coefficients changed, each moving exactly one
 *    pixel by one (at most 2n: the saturation fallback), or fails with
 *    S2S_ERR_COVER leaving the copy untouched.
 */
#include "fuzz_common.h"
#include "s2s/stego.h"

#define MAX_N 32

static uint8_t key[S2S_STEGO_KEY_LEN];

static const struct s2s_image_limits limits = {
	.max_width = 1024,
	.max_height = 1024,
	.max_pixels = 256u * 256u,
	.max_bytes = 256u * 1024u,
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
	fuzz_stego_key(key);
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_image img, copy;
	struct s2s_stego_sel *sel = NULL;
	uint8_t out1[MAX_N], out2[MAX_N], payload[MAX_N], back[MAX_N];
	size_t n, npix, diff = 0;
	unsigned changes = 0;
	enum s2s_err err;

	if (size < 2)
		return 0;
	n = 1 + data[0] % MAX_N;
	for (size_t i = 0; i < MAX_N; i++)
		payload[i] = (uint8_t)(data[1] * (i + 1) + i);
	if (s2s_image_decode(data + 2, size - 2, &limits, &img) != S2S_OK)
		return 0;

	err = s2s_stego_extract(&img, key, out1, n);
	if (n > s2s_stego_capacity(img.width, img.height)) {
		FUZZ_CHECK(err == S2S_ERR_COVER);
		goto out;
	}
	FUZZ_CHECK(err == S2S_OK);
	FUZZ_CHECK(s2s_stego_sel_create(key, img.width, img.height, n, &sel) ==
		   S2S_OK);
	FUZZ_CHECK(s2s_stego_extract_sel(sel, &img, out2, n) == S2S_OK);
	FUZZ_CHECK(memcmp(out1, out2, n) == 0);

	npix = (size_t)img.width * img.height;
	FUZZ_CHECK(s2s_image_alloc(&copy, img.width, img.height, 0) == S2S_OK);
	memcpy(copy.pixels, img.pixels, npix);
	err = s2s_stego_embed_sel(sel, &copy, payload, n, &changes);
	if (err == S2S_OK) {
		FUZZ_CHECK(s2s_stego_extract(&copy, key, back, n) == S2S_OK);
		FUZZ_CHECK(memcmp(back, payload, n) == 0);
		for (size_t i = 0; i < npix; i++) {
			int d = (int)copy.pixels[i] - (int)img.pixels[i];

			FUZZ_CHECK(d >= -1 && d <= 1);
			diff += d != 0;
		}
		FUZZ_CHECK(diff == changes);
		FUZZ_CHECK(changes <= 2 * n);
	} else {
		FUZZ_CHECK(err == S2S_ERR_COVER);
		FUZZ_CHECK(memcmp(copy.pixels, img.pixels, npix) == 0);
	}
	s2s_image_free(&copy);
	s2s_stego_sel_destroy(sel);
out:
	s2s_image_free(&img);
	return 0;
}
