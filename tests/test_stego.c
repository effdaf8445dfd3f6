/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "s2s/crypto.h"
#include "s2s/error.h"
#include "s2s/image.h"
#include "s2s/stego.h"

static const char *const covers[] = {
	"camera128", "astronaut128", "brick128", "grass128", "gravel128",
	"coffee128",
};
#define NCOVERS (sizeof(covers) / sizeof(covers[0]))

static const uint8_t ref_payload[8] = { 0xde, 0xad, 0xbe, 0xef,
					0x01, 0x23, 0x45, 0x67 };

static void
load_cover(const char *name, struct s2s_image *img)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "core/covers/%s.png", name);
	ck_assert_int_eq(s2s_image_read_file(tests_src_path(rel), NULL, img),
			 S2S_OK);
}

static void
ref_key(uint8_t key[32])
{
	static const char k[] = "anchors-signal test key";

	s2s_sha256(k, strlen(k), key);
}

static void
test_key(unsigned i, const char *tag, uint8_t out[32])
{
	uint8_t buf[64];
	int n = snprintf((char *)buf, sizeof(buf), "%s-%u", tag, i);

	s2s_sha256(buf, (size_t)n, out);
}

static void
hex32(const uint8_t h[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void
copy_image(const struct s2s_image *src, struct s2s_image *dst)
{
	ck_assert_int_eq(s2s_image_alloc(dst, src->width, src->height, 0), S2S_OK);
	memcpy(dst->pixels, src->pixels, (size_t)src->width * src->height);
}

/* Pixels that differ, all by exactly one. */
static unsigned
count_unit_changes(const struct s2s_image *a, const struct s2s_image *b)
{
	size_t n = (size_t)a->width * a->height;
	unsigned changed = 0;

	int worst = 0;

	/* Plain loop, one assertion: Check records every assertion. */
	for (size_t i = 0; i < n; i++) {
		int d = abs((int)a->pixels[i] - (int)b->pixels[i]);

		worst = d > worst ? d : worst;
		changed += (unsigned)d;
	}
	ck_assert_int_le(worst, 1);
	return changed;
}

/* 5.2 vector and the two neighbours of HH. */
START_TEST(test_haar_vector)
{
	static const uint8_t blk[4] = { 100, 103, 98, 101 };
	int coef[4], out[4];

	s2s_stego_haar_fwd(blk, coef);
	ck_assert_int_eq(coef[0], 100);
	ck_assert_int_eq(coef[1], -3);
	ck_assert_int_eq(coef[2], 2);
	ck_assert_int_eq(coef[3], 0);
	coef[3] = 1;
	s2s_stego_haar_inv(coef, out);
	ck_assert_int_eq(out[0], 100);
	ck_assert_int_eq(out[1], 102);
	ck_assert_int_eq(out[2], 98);
	ck_assert_int_eq(out[3], 101);
	coef[3] = -1;
	s2s_stego_haar_inv(coef, out);
	ck_assert_int_eq(out[0], 100);
	ck_assert_int_eq(out[1], 103);
	ck_assert_int_eq(out[2], 98);
	ck_assert_int_eq(out[3], 100);
}
END_TEST

/*
 * Lifting is a bijection; L stays in 0..255; HH parity is the parity of
 * the block sum; HH +-1 moves exactly one pixel by one, +1 and -1 moving
 * different pixels.
 */
START_TEST(test_haar_properties)
{
	int bad = -1;

	srand(11);
	for (int r = 0; r < 300000 && bad < 0; r++) {
		uint8_t blk[4];
		int coef[4], out[4], sum = 0, hit[2] = { -1, -1 };

		for (int k = 0; k < 4; k++) {
			blk[k] = (uint8_t)(r < 256 ? (k & 1 ? r : 255 - r) : rand());
			sum += blk[k];
		}
		s2s_stego_haar_fwd(blk, coef);
		if (coef[0] < 0 || coef[0] > 255 || (coef[3] & 1) != (sum & 1))
			bad = r;
		s2s_stego_haar_inv(coef, out);
		for (int k = 0; k < 4; k++)
			if (out[k] != blk[k])
				bad = r;
		for (int dir = 0; dir < 2; dir++) {
			int c2[4] = { coef[0], coef[1], coef[2],
				      coef[3] + (dir ? -1 : 1) };
			int moved = 0;

			s2s_stego_haar_inv(c2, out);
			for (int k = 0; k < 4; k++) {
				if (out[k] == blk[k])
					continue;
				if (abs(out[k] - blk[k]) != 1)
					bad = r;
				hit[dir] = k;
				moved++;
			}
			if (moved != 1)
				bad = r;
		}
		if (hit[0] == hit[1])
			bad = r;
	}
	ck_assert_msg(bad < 0, "block %d", bad);
}
END_TEST

START_TEST(test_perm_vector)
{
	static const uint32_t want[16] = { 2267, 493, 634, 2683, 1348, 3095,
					   1340, 2035, 1492, 158, 3671, 2163,
					   3439, 2204, 1955, 809 };
	uint8_t key[32];
	char hex[65];
	uint32_t *perm = malloc(4096 * sizeof(*perm));
	uint8_t *seen = calloc(4096, 1);

	ck_assert_ptr_nonnull(perm);
	ck_assert_ptr_nonnull(seen);
	ref_key(key);
	hex32(key, hex);
	ck_assert_str_eq(hex, "c87e982c082cadfe9d877f97d7c4835936134ca1b4e00fde3a4f8bb76e2de0ed");
	ck_assert_int_eq(s2s_stego_perm(key, 4096, perm), S2S_OK);
	ck_assert_mem_eq(perm, want, sizeof(want));
	for (int i = 0; i < 4096; i++) {
		ck_assert_uint_lt(perm[i], 4096);
		ck_assert(!seen[perm[i]]);
		seen[perm[i]] = 1;
	}
	/* Degenerate sizes. */
	ck_assert_int_eq(s2s_stego_perm(key, 1, perm), S2S_OK);
	ck_assert_uint_eq(perm[0], 0);
	ck_assert_int_eq(s2s_stego_perm(key, 0, perm), S2S_ERR_INVAL);
	free(perm);
	free(seen);
}
END_TEST

/* camera128 raw hash, its syndromes, and the reference stego image. */
START_TEST(test_camera_vectors)
{
	static const uint8_t syn_want[8] = { 217, 17, 37, 38, 191, 29, 56, 49 };
	struct s2s_image cover, st;
	uint8_t key[32], h[32], syn[8];
	unsigned changes;
	double mse, psnr;
	char hex[65];

	load_cover("camera128", &cover);
	ck_assert_uint_eq(cover.width, 128);
	ck_assert_uint_eq(cover.height, 128);
	s2s_sha256(cover.pixels, 16384, h);
	hex32(h, hex);
	ck_assert_str_eq(hex, "973c1f05a356373b9a38190c15b77c036d06571d6cfb70648c9168e6f435da6d");
	ref_key(key);
	ck_assert_int_eq(s2s_stego_extract(&cover, key, syn, 8), S2S_OK);
	ck_assert_mem_eq(syn, syn_want, 8);

	copy_image(&cover, &st);
	ck_assert_int_eq(s2s_stego_embed(&st, key, ref_payload, 8, &changes),
			 S2S_OK);
	ck_assert_uint_eq(changes, 8);
	ck_assert_uint_eq(count_unit_changes(&cover, &st), 8);
	ck_assert_int_eq(s2s_image_psnr(&cover, &st, &mse, &psnr), S2S_OK);
	ck_assert(fabs(psnr - 81.244) < 0.001);
	s2s_sha256(st.pixels, 16384, h);
	hex32(h, hex);
	ck_assert_str_eq(hex, "28f59a0515004f27af3c8bb4eba51ce8896429b459be3ac510ac3ffd41d2510e");
	ck_assert_int_eq(s2s_stego_extract(&st, key, syn, 8), S2S_OK);
	ck_assert_mem_eq(syn, ref_payload, 8);
	s2s_image_free(&cover);
	s2s_image_free(&st);
}
END_TEST

/* Every cover, many keys, paper (8 B) and hardened (16 B) payloads. */
START_TEST(test_roundtrip_covers)
{
	unsigned keys = getenv("S2S_UNDER_VALGRIND") ? 6 : 40, fallbacks = 0;

	for (size_t c = 0; c < NCOVERS; c++) {
		struct s2s_image cover, st;

		load_cover(covers[c], &cover);
		ck_assert_uint_eq(s2s_stego_capacity(cover.width, cover.height), 16);
		copy_image(&cover, &st);
		for (unsigned i = 0; i < keys; i++) {
			for (size_t n = 8; n <= 16; n += 8) {
				uint8_t key[32], payload[32], back[16];
				unsigned changes;

				test_key(i, "key", key);
				test_key(i + 1000 * (unsigned)n, "payload", payload);
				memcpy(st.pixels, cover.pixels, 16384);
				ck_assert_int_eq(s2s_stego_embed(&st, key, payload,
								 n, &changes),
						 S2S_OK);
				/* Rarely a saturated spot needs the fallback. */
				ck_assert_uint_le(changes, 2 * n);
				fallbacks += changes > n;
				ck_assert_uint_eq(count_unit_changes(&cover, &st),
						  changes);
				ck_assert_int_eq(s2s_stego_extract(&st, key, back, n),
						 S2S_OK);
				ck_assert_mem_eq(back, payload, n);
				/* A shorter read gives the prefix. */
				ck_assert_int_eq(s2s_stego_extract(&st, key, back, 3),
						 S2S_OK);
				ck_assert_mem_eq(back, payload, 3);
				/* Another key reads something else. */
				key[0] ^= 1;
				ck_assert_int_eq(s2s_stego_extract(&st, key, back, n),
						 S2S_OK);
				ck_assert(memcmp(back, payload, n));
			}
		}
		s2s_image_free(&cover);
		s2s_image_free(&st);
	}
	ck_assert_uint_le(fallbacks, NCOVERS * keys / 20);
}
END_TEST

/*
 * Binary (0/255) and heavily saturated covers: the +-1 choice and the
 * two-flip fallback still carry every payload exactly.
 */
START_TEST(test_saturated_fallback)
{
	struct s2s_image cover, bin, st;
	unsigned fallbacks = 0, keys = getenv("S2S_UNDER_VALGRIND") ? 8 : 40;

	load_cover("camera128", &cover);
	copy_image(&cover, &bin);
	copy_image(&cover, &st);
	for (int mode = 0; mode < 2; mode++) {
		for (size_t i = 0; i < 16384; i++) {
			uint8_t v = cover.pixels[i];

			/* 0: threshold; 1: clip to 0..255 after x3 contrast. */
			bin.pixels[i] = mode == 0 ? (v >= 128 ? 255 : 0)
				: (uint8_t)(3 * (int)v - 256 < 0 ? 0
					    : 3 * (int)v - 256 > 255 ? 255
					    : 3 * v - 256);
		}
		for (unsigned k = 0; k < keys; k++) {
			uint8_t key[32], payload[32], back[16];
			unsigned changes;
			size_t n = k % 2 ? 16 : 8;
			enum s2s_err err;

			test_key(k, "sat-key", key);
			test_key(k, "sat-payload", payload);
			memcpy(st.pixels, bin.pixels, 16384);
			err = s2s_stego_embed(&st, key, payload, n, &changes);
			ck_assert_int_eq(err, S2S_OK);
			ck_assert_uint_le(changes, 2 * n);
			fallbacks += changes > n;
			ck_assert_uint_eq(count_unit_changes(&bin, &st), changes);
			ck_assert_int_eq(s2s_stego_extract(&st, key, back, n), S2S_OK);
			ck_assert_mem_eq(back, payload, n);
		}
	}
	ck_assert_uint_gt(fallbacks, 0);
	s2s_image_free(&cover);
	s2s_image_free(&bin);
	s2s_image_free(&st);
}
END_TEST

/*
 * The parity-map forms give exactly what the pixel forms give: extraction
 * from rows (in any layout), and planned changes applied to the cover
 * equal s2s_stego_embed_sel, on natural and saturated covers (fallback).
 */
START_TEST(test_map_forms)
{
	struct s2s_image cover, st, sat;
	const struct s2s_image *cv[2] = { &cover, &sat };
	unsigned keys = getenv("S2S_UNDER_VALGRIND") ? 4 : 24;
	const uint8_t *rows[128];
	uint8_t *map = malloc(64 * 64);

	ck_assert_ptr_nonnull(map);
	load_cover("camera128", &cover);
	copy_image(&cover, &sat);
	for (size_t i = 0; i < 16384; i++)
		sat.pixels[i] = cover.pixels[i] >= 128 ? 255 : 0;
	for (int c = 0; c < 2; c++) {
		for (unsigned k = 0; k < keys; k++) {
			struct s2s_stego_sel *sel;
			struct s2s_image_change plan[32];
			uint8_t key[32], payload[32], syn[16], syn2[16],
				back[16];
			size_t n = k % 2 ? 16 : 8, count = 0, count2 = 0;
			unsigned changes;

			test_key(k, "map-key", key);
			test_key(k, "map-payload", payload);
			ck_assert_int_eq(s2s_stego_sel_create(key, 128, 128, n,
							      &sel), S2S_OK);
			for (int y = 0; y < 128; y++)
				rows[y] = cv[c]->pixels + 128 * y;
			s2s_stego_parity_map(rows, 128, 128, map);
			ck_assert_int_eq(s2s_stego_extract_map(sel, map, syn, n),
					 S2S_OK);
			ck_assert_int_eq(s2s_stego_extract_sel(sel, cv[c],
							       syn2, n),
					 S2S_OK);
			ck_assert_mem_eq(syn, syn2, n);
			ck_assert_int_eq(s2s_stego_plan_map(sel, cv[c], map,
							    payload, n, plan,
							    &count), S2S_OK);
			{
				struct s2s_image_change plan2[32];

				ck_assert_int_eq(s2s_stego_plan_syn(sel, cv[c],
								    syn,
								    payload, n,
								    plan2,
								    &count2),
						 S2S_OK);
				ck_assert_uint_eq(count, count2);
				for (size_t i = 0; i < count; i++) {
					ck_assert_uint_eq(plan[i].pos,
							  plan2[i].pos);
					ck_assert_uint_eq(plan[i].val,
							  plan2[i].val);
				}
			}
			copy_image(cv[c], &st);
			for (size_t i = 0; i < count; i++)
				st.pixels[plan[i].pos] = plan[i].val;
			{
				struct s2s_image ref;

				copy_image(cv[c], &ref);
				ck_assert_int_eq(s2s_stego_embed_sel(sel, &ref,
								     payload, n,
								     &changes),
						 S2S_OK);
				ck_assert_uint_eq(changes, count);
				ck_assert(!memcmp(ref.pixels, st.pixels,
						  16384));
				s2s_image_free(&ref);
			}
			/* From rows of another layout (reversed rows in a
			 * padded buffer): the same payload. */
			{
				uint8_t *pad = malloc(128 * 131);

				ck_assert_ptr_nonnull(pad);
				for (int y = 0; y < 128; y++) {
					memcpy(pad + (127 - y) * 131 + 3,
					       st.pixels + 128 * y, 128);
					rows[y] = pad + (127 - y) * 131 + 3;
				}
				s2s_stego_parity_map(rows, 128, 128, map);
				ck_assert_int_eq(s2s_stego_extract_map(sel, map,
								       back, n),
						 S2S_OK);
				ck_assert_mem_eq(back, payload, n);
				free(pad);
			}
			s2s_image_free(&st);
			s2s_stego_sel_destroy(sel);
		}
	}
	free(map);
	s2s_image_free(&cover);
	s2s_image_free(&sat);
}
END_TEST

/* All-white: nothing can move; refused and left untouched. */
START_TEST(test_unusable_cover)
{
	struct s2s_image white, st, small;
	uint8_t key[32], payload[17];
	unsigned changes = 99;

	ref_key(key);
	memset(payload, 0x5a, sizeof(payload));
	ck_assert_int_eq(s2s_image_alloc(&white, 128, 128, 255), S2S_OK);
	copy_image(&white, &st);
	ck_assert_int_eq(s2s_stego_embed(&st, key, ref_payload, 8, &changes),
			 S2S_ERR_COVER);
	ck_assert_uint_eq(changes, 0);
	ck_assert_mem_eq(st.pixels, white.pixels, 16384);
	/* A payload matching the syndromes needs no change at all. */
	ck_assert_int_eq(s2s_stego_extract(&white, key, payload, 8), S2S_OK);
	ck_assert_int_eq(s2s_stego_embed(&st, key, payload, 8, &changes), S2S_OK);
	ck_assert_uint_eq(changes, 0);
	s2s_image_free(&white);
	s2s_image_free(&st);

	/* Too long for the cover: refused, untouched. */
	load_cover("camera128", &white);
	copy_image(&white, &st);
	memset(payload, 0x5a, sizeof(payload));
	ck_assert_int_eq(s2s_stego_embed(&st, key, payload, 17, &changes),
			 S2S_ERR_COVER);
	ck_assert_mem_eq(st.pixels, white.pixels, 16384);
	ck_assert_int_eq(s2s_stego_extract(&st, key, payload, 17), S2S_ERR_COVER);
	ck_assert_int_eq(s2s_stego_embed(&st, key, payload, 0, &changes), S2S_OK);
	ck_assert_int_eq(s2s_stego_embed(NULL, key, payload, 8, &changes),
			 S2S_ERR_INVAL);
	s2s_image_free(&white);
	s2s_image_free(&st);

	/* Capacity is general: odd sizes drop the last row/column. */
	ck_assert_uint_eq(s2s_stego_capacity(129, 129), 16);
	ck_assert_uint_eq(s2s_stego_capacity(30, 34), 1);
	ck_assert_uint_eq(s2s_stego_capacity(30, 32), 0);
	ck_assert_uint_eq(s2s_stego_capacity(256, 256), 64);
	ck_assert_int_eq(s2s_image_alloc(&small, 31, 35, 0), S2S_OK);
	for (size_t i = 0; i < 31 * 35; i++)
		small.pixels[i] = (uint8_t)(i * 37 + (i >> 3));
	copy_image(&small, &st);
	ck_assert_int_eq(s2s_stego_embed(&st, key, ref_payload, 1, &changes),
			 S2S_OK);
	for (size_t y = 0; y < 35; y++)   /* last column never touched */
		ck_assert_uint_eq(st.pixels[y * 31 + 30], small.pixels[y * 31 + 30]);
	for (size_t x = 0; x < 31; x++)   /* nor the last row */
		ck_assert_uint_eq(st.pixels[34 * 31 + x], small.pixels[34 * 31 + x]);
	ck_assert_int_eq(s2s_stego_extract(&st, key, payload, 1), S2S_OK);
	ck_assert_uint_eq(payload[0], ref_payload[0]);
	s2s_image_free(&small);
	s2s_image_free(&st);
}
END_TEST

/* A larger cover carries more; the stego PNG survives the codec. */
START_TEST(test_png_roundtrip)
{
	struct s2s_image cover, st, back;
	uint8_t key[32], payload[64], out[64];
	static const int levels[3] = { 0, 1, 9 };

	load_cover("astronaut128", &cover);
	for (int l = 0; l < 3; l++) {
		uint8_t *buf;
		size_t len;

		copy_image(&cover, &st);
		test_key((unsigned)l, "png", key);
		test_key((unsigned)l, "png-payload", payload);
		ck_assert_int_eq(s2s_stego_embed(&st, key, payload, 16, NULL),
				 S2S_OK);
		ck_assert_int_eq(s2s_image_encode_png(&st, levels[l], &buf, &len),
				 S2S_OK);
		ck_assert_int_eq(s2s_image_decode(buf, len, NULL, &back), S2S_OK);
		ck_assert_int_eq(s2s_stego_extract(&back, key, out, 16), S2S_OK);
		ck_assert_mem_eq(out, payload, 16);
		free(buf);
		s2s_image_free(&back);
		s2s_image_free(&st);
	}
	/* 256x256 (2x2 nearest upscale): 64 bytes. */
	ck_assert_int_eq(s2s_image_alloc(&st, 256, 256, 0), S2S_OK);
	for (int y = 0; y < 256; y++)
		for (int x = 0; x < 256; x++)
			st.pixels[y * 256 + x] = cover.pixels[(y / 2) * 128 + x / 2];
	test_key(9, "png-payload", payload);
	test_key(10, "png-payload", payload + 32);
	ck_assert_int_eq(s2s_stego_embed(&st, key, payload, 64, NULL), S2S_OK);
	ck_assert_int_eq(s2s_stego_extract(&st, key, out, 64), S2S_OK);
	ck_assert_mem_eq(out, payload, 64);
	s2s_image_free(&st);
	s2s_image_free(&cover);
}
END_TEST

/* The session selection gives exactly the one-shot results. */
START_TEST(test_selection_api)
{
	struct s2s_image cover, a, b;
	struct s2s_stego_sel *sel;
	uint8_t key[32], payload[32], out[16];
	unsigned ca, cb;

	load_cover("coffee128", &cover);
	copy_image(&cover, &a);
	copy_image(&cover, &b);
	ref_key(key);
	ck_assert_int_eq(s2s_stego_sel_create(key, 128, 128, 16, &sel), S2S_OK);
	for (unsigned i = 0; i < 20; i++) {
		size_t n = 1 + i % 16;

		test_key(i, "sel", payload);
		memcpy(a.pixels, cover.pixels, 16384);
		memcpy(b.pixels, cover.pixels, 16384);
		ck_assert_int_eq(s2s_stego_embed(&a, key, payload, n, &ca), S2S_OK);
		ck_assert_int_eq(s2s_stego_embed_sel(sel, &b, payload, n, &cb),
				 S2S_OK);
		ck_assert_uint_eq(ca, cb);
		ck_assert_mem_eq(a.pixels, b.pixels, 16384);
		ck_assert_int_eq(s2s_stego_extract_sel(sel, &b, out, n), S2S_OK);
		ck_assert_mem_eq(out, payload, n);
	}
	ck_assert_int_eq(s2s_stego_extract_sel(sel, &b, out, 17), S2S_ERR_COVER);
	s2s_stego_sel_destroy(sel);
	/* Wrong size and over-capacity selections. */
	ck_assert_int_eq(s2s_stego_sel_create(key, 128, 128, 17, &sel),
			 S2S_ERR_COVER);
	ck_assert_ptr_null(sel);
	ck_assert_int_eq(s2s_stego_sel_create(key, 64, 64, 4, &sel), S2S_OK);
	ck_assert_int_eq(s2s_stego_embed_sel(sel, &a, payload, 4, NULL),
			 S2S_ERR_INVAL);
	s2s_stego_sel_destroy(sel);
	s2s_stego_sel_destroy(NULL);
	s2s_image_free(&cover);
	s2s_image_free(&a);
	s2s_image_free(&b);
}
END_TEST

START_TEST(test_gamma_q)
{
	ck_assert(fabs(s2s_stego_gamma_q(1, 2) - exp(-2)) < 1e-12);
	ck_assert(fabs(s2s_stego_gamma_q(5, 3) - 0.8152632445237722) < 1e-12);
	ck_assert(fabs(s2s_stego_gamma_q(0.5, 2) - erfc(sqrt(2))) < 1e-12);
	ck_assert(fabs(s2s_stego_gamma_q(50, 60) - 0.08440668) < 1e-6);
	ck_assert(s2s_stego_gamma_q(3, 0) == 1.0);
	ck_assert(isnan(s2s_stego_gamma_q(0, 1)));
}
END_TEST

/*
 * The detectors see 50 % LSB replacement on camera128; our stego moves
 * them by far less than the cover-to-cover noise.
 */
START_TEST(test_steganalysis)
{
	struct s2s_image cover, st;
	struct s2s_stego_analysis c, s;
	uint8_t key[32], payload[32];

	load_cover("camera128", &cover);
	ck_assert_int_eq(s2s_stego_analyze(&cover, &c), S2S_OK);
	ck_assert(fabs(c.rs) < 0.1);
	ck_assert(fabs(c.spa) < 0.05);
	ck_assert(c.chi2_p < 0.5);
	copy_image(&cover, &st);
	for (unsigned k = 0; k < 10; k++) {
		size_t n = k % 2 ? 16 : 8;

		test_key(k, "sa-key", key);
		test_key(k, "sa-payload", payload);
		memcpy(st.pixels, cover.pixels, 16384);
		ck_assert_int_eq(s2s_stego_embed(&st, key, payload, n, NULL), S2S_OK);
		ck_assert_int_eq(s2s_stego_analyze(&st, &s), S2S_OK);
		ck_assert(fabs(s.rs - c.rs) < 0.02);
		ck_assert(fabs(s.spa - c.spa) < 0.01);
		ck_assert(fabs(s.chi2_p - c.chi2_p) < 0.05);
		ck_assert(fabs(s.rs) < 0.1);
	}
	/* 50 % LSB replacement (a deterministic bit stream). */
	for (size_t i = 0; i < 16384; i++) {
		if (i % 256 == 0)
			test_key((unsigned)(i / 256), "lsb", key);
		if (key[(i % 256) / 8] >> (i % 8) & 1)
			st.pixels[i] = (uint8_t)((cover.pixels[i] & ~1u) |
						 ((key[31 - (i % 256) / 8] >> (i % 8)) & 1));
		else
			st.pixels[i] = cover.pixels[i];
	}
	ck_assert_int_eq(s2s_stego_analyze(&st, &s), S2S_OK);
	ck_assert_msg(s.rs > 0.3, "rs %f", s.rs);
	ck_assert_msg(s.spa > 0.15, "spa %f", s.spa);
	ck_assert_msg(s.chi2_p > 0.5, "chi2_p %f", s.chi2_p);
	ck_assert_int_eq(s2s_stego_analyze(NULL, &s), S2S_ERR_INVAL);
	s2s_image_free(&cover);
	s2s_image_free(&st);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("stego");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_haar_vector);
	tcase_add_test(tc, test_haar_properties);
	tcase_add_test(tc, test_perm_vector);
	tcase_add_test(tc, test_camera_vectors);
	tcase_add_test(tc, test_roundtrip_covers);
	tcase_add_test(tc, test_saturated_fallback);
	tcase_add_test(tc, test_unusable_cover);
	tcase_add_test(tc, test_png_roundtrip);
	tcase_add_test(tc, test_selection_api);
	tcase_add_test(tc, test_map_forms);
	tcase_add_test(tc, test_gamma_q);
	tcase_add_test(tc, test_steganalysis);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
