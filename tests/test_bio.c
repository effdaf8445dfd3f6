/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "s2s/bio.h"
#include "s2s/crypto.h"
#include "s2s/error.h"

#define CANVAS (S2S_BIO_CANVAS_H * S2S_BIO_CANVAS_W)

static void
hex32(const uint8_t h[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Rv of siggen(ua, sa) and siggen(ub, sb). */
static void
fx_pair(uint32_t ua, uint32_t sa, uint32_t ub, uint32_t sb, uint16_t *rv)
{
	struct s2s_image a, b;

	ck_assert_int_eq(s2s_bio_siggen(ua, sa, &a), S2S_OK);
	ck_assert_int_eq(s2s_bio_siggen(ub, sb, &b), S2S_OK);
	ck_assert_int_eq(s2s_bio_features(&a, &b, rv), S2S_OK);
	s2s_image_free(&a);
	s2s_image_free(&b);
}

static double
chi2_dist(const uint16_t *a, const uint16_t *b)
{
	double s = 0;

	for (int i = 0; i < S2S_RV_LEN; i++) {
		double x = a[i], y = b[i];

		if (x + y > 0)
			s += (x - y) * (x - y) / (x + y);
	}
	return s;
}

/* A6 vector: centre 240, corner 255 through clamping. */
START_TEST(test_lbp_vector)
{
	static const uint8_t img[9] = { 10, 20, 30, 40, 50, 60, 70, 80, 90 };
	static const uint8_t want[9] = { 255, 246, 246, 248, 240, 240,
					 248, 208, 208 };
	uint8_t codes[9];

	s2s_bio_lbp(img, 3, 3, codes);
	ck_assert_mem_eq(codes, want, 9);
}
END_TEST

/* Flat image: every neighbour >= centre, code 255; bit k is neighbour k. */
START_TEST(test_lbp_bits)
{
	uint8_t img[9], codes[9];
	static const int order[8] = { 0, 1, 2, 3, 5, 6, 7, 8 };

	memset(img, 7, sizeof(img));
	s2s_bio_lbp(img, 3, 3, codes);
	for (int i = 0; i < 9; i++)
		ck_assert_uint_eq(codes[i], 255);
	/* Lower neighbour k alone: the centre's code loses exactly bit k. */
	for (int k = 0; k < 8; k++) {
		memset(img, 7, sizeof(img));
		img[order[k]] = 6;
		s2s_bio_lbp(img, 3, 3, codes);
		ck_assert_uint_eq(codes[4], 255u & ~(1u << k));
	}
}
END_TEST

/* Reference Otsu in long double: between-class variance, first maximum. */
static int
otsu_ref(const uint8_t *px, size_t n)
{
	long double hist[256] = { 0 }, mt = 0, w0 = 0, m0 = 0, best = -1;
	int t = -1;

	for (size_t i = 0; i < n; i++)
		hist[px[i]] += 1;
	for (int v = 0; v < 256; v++)
		mt += v * hist[v];
	for (int k = 0; k < 256; k++) {
		long double w1, var;

		w0 += hist[k];
		m0 += k * hist[k];
		w1 = (long double)n - w0;
		if (w0 == 0 || w1 == 0)
			continue;
		var = (m0 * n - w0 * mt) * (m0 * n - w0 * mt) / (w0 * w1);
		if (var > best * (1 + 1e-15L)) {
			best = var;
			t = k;
		}
	}
	return t;
}

START_TEST(test_otsu_known)
{
	uint8_t px[1000];
	uint8_t t;

	/* Two levels: every k in [50, 200) splits the same way; first wins. */
	memset(px, 200, sizeof(px));
	memset(px, 50, 100);
	ck_assert_int_eq(s2s_bio_otsu(px, sizeof(px), &t), S2S_OK);
	ck_assert_uint_eq(t, 50);
	/* 0 x10, 100 x10, 255 x980: the dark pair is ink. */
	memset(px, 255, sizeof(px));
	memset(px, 0, 10);
	memset(px + 10, 100, 10);
	ck_assert_int_eq(s2s_bio_otsu(px, sizeof(px), &t), S2S_OK);
	ck_assert_uint_eq(t, 100);
	/* Uniform: no threshold. */
	memset(px, 9, sizeof(px));
	ck_assert_int_eq(s2s_bio_otsu(px, sizeof(px), &t), S2S_ERR_NO_INK);
	/* Random histograms agree with the floating-point formulation. */
	srand(7);
	for (int r = 0; r < 200; r++) {
		size_t n = 1 + (size_t)(rand() % 1000);

		for (size_t i = 0; i < n; i++)
			px[i] = (uint8_t)(rand() % (r % 3 ? 256 : 7) * (r % 3 ? 1 : 37));
		if (otsu_ref(px, n) < 0) {
			ck_assert_int_eq(s2s_bio_otsu(px, n, &t), S2S_ERR_NO_INK);
			continue;
		}
		ck_assert_int_eq(s2s_bio_otsu(px, n, &t), S2S_OK);
		ck_assert_int_eq(t, otsu_ref(px, n));
	}
}
END_TEST

/* One ink pixel: crop 1x1 -> 180x180 square of its value, centred. */
START_TEST(test_normalize_geometry)
{
	struct s2s_image img;
	uint8_t *canvas = malloc(CANVAS);

	ck_assert_ptr_nonnull(canvas);
	ck_assert_int_eq(s2s_image_alloc(&img, 9, 7, 250), S2S_OK);
	img.pixels[3 * 9 + 4] = 30;
	ck_assert_int_eq(s2s_bio_normalize(&img, canvas), S2S_OK);
	for (int y = 0; y < S2S_BIO_CANVAS_H; y++)
		for (int x = 0; x < S2S_BIO_CANVAS_W; x++)
			ck_assert_uint_eq(canvas[y * S2S_BIO_CANVAS_W + x],
					  x >= 130 && x < 310 ? 30 : 255);
	/* Two ink pixels side by side (0 and 0) and paper: crop 1x2 ->
	 * 360x180 at x0 = 40. */
	img.pixels[3 * 9 + 5] = 0;
	img.pixels[3 * 9 + 4] = 0;
	ck_assert_int_eq(s2s_bio_normalize(&img, canvas), S2S_OK);
	for (int y = 0; y < S2S_BIO_CANVAS_H; y++)
		for (int x = 0; x < S2S_BIO_CANVAS_W; x++)
			ck_assert_uint_eq(canvas[y * S2S_BIO_CANVAS_W + x],
					  x >= 40 && x < 400 ? 0 : 255);
	/* Ink 0 and 100 with paper 250: Otsu puts both in the ink; the
	 * area resampling keeps the halves exact. */
	img.pixels[3 * 9 + 5] = 100;
	ck_assert_int_eq(s2s_bio_normalize(&img, canvas), S2S_OK);
	ck_assert_uint_eq(canvas[90 * S2S_BIO_CANVAS_W + 40], 0);
	ck_assert_uint_eq(canvas[90 * S2S_BIO_CANVAS_W + 219], 0);
	ck_assert_uint_eq(canvas[90 * S2S_BIO_CANVAS_W + 220], 100);
	ck_assert_uint_eq(canvas[90 * S2S_BIO_CANVAS_W + 399], 100);
	s2s_image_free(&img);
	free(canvas);
}
END_TEST

START_TEST(test_commutative)
{
	uint16_t *ab = malloc(2 * S2S_RV_LEN * sizeof(*ab));
	struct s2s_image a, b;

	ck_assert_ptr_nonnull(ab);
	for (uint32_t u = 10; u < 13; u++) {
		ck_assert_int_eq(s2s_bio_siggen(u, 0, &a), S2S_OK);
		ck_assert_int_eq(s2s_bio_siggen(u + 100, 3, &b), S2S_OK);
		ck_assert_int_eq(s2s_bio_features(&a, &b, ab), S2S_OK);
		ck_assert_int_eq(s2s_bio_features(&b, &a, ab + S2S_RV_LEN), S2S_OK);
		ck_assert_mem_eq(ab, ab + S2S_RV_LEN, S2S_RV_LEN * sizeof(*ab));
		s2s_image_free(&a);
		s2s_image_free(&b);
	}
	free(ab);
}
END_TEST

/*
 * Same two writers, new samples: close but never equal.  Different
 * writers: farther, for every pair, and twice as far on average.
 */
START_TEST(test_same_vs_different)
{
	enum { PAIRS = 4 };
	uint16_t (*rv)[S2S_RV_LEN] = malloc(2 * PAIRS * sizeof(*rv));
	double same[PAIRS], same_sum = 0, diff_sum = 0;
	int diff_n = 0;

	ck_assert_ptr_nonnull(rv);
	for (int p = 0; p < PAIRS; p++) {
		fx_pair(2 * p + 1, 0, 2 * p + 2, 0, rv[2 * p]);
		fx_pair(2 * p + 1, 1, 2 * p + 2, 1, rv[2 * p + 1]);
		ck_assert(memcmp(rv[2 * p], rv[2 * p + 1], sizeof(rv[0])));
		same[p] = chi2_dist(rv[2 * p], rv[2 * p + 1]);
		ck_assert(same[p] > 0);
		same_sum += same[p];
	}
	for (int p = 0; p < PAIRS; p++) {
		for (int q = 0; q < PAIRS; q++) {
			double d;

			if (p == q)
				continue;
			d = chi2_dist(rv[2 * p], rv[2 * q]);
			ck_assert_msg(same[p] < d, "pair %d: same %.0f >= diff %.0f",
				      p, same[p], d);
			diff_sum += d;
			diff_n++;
		}
	}
	ck_assert_msg(diff_sum / diff_n > 1.5 * same_sum / PAIRS,
		      "mean diff %.0f vs mean same %.0f", diff_sum / diff_n,
		      same_sum / PAIRS);
	free(rv);
}
END_TEST

START_TEST(test_errors)
{
	struct s2s_image img, sig;
	uint16_t rv[S2S_RV_LEN];

	ck_assert_int_eq(s2s_bio_siggen(1, 0, &sig), S2S_OK);
	/* Blank paper, white or black: no ink. */
	ck_assert_int_eq(s2s_image_alloc(&img, 300, 100, 255), S2S_OK);
	ck_assert_int_eq(s2s_bio_features(&sig, &img, rv), S2S_ERR_NO_INK);
	ck_assert_int_eq(s2s_bio_features(&img, &sig, rv), S2S_ERR_NO_INK);
	memset(img.pixels, 0, 300 * 100);
	ck_assert_int_eq(s2s_bio_features(&img, &sig, rv), S2S_ERR_NO_INK);
	s2s_image_free(&img);
	/* 2^18 pixels is the limit. */
	ck_assert_int_eq(s2s_image_alloc(&img, 513, 512, 255), S2S_OK);
	img.pixels[1000] = 0;
	ck_assert_int_eq(s2s_bio_features(&sig, &img, rv), S2S_ERR_TOO_BIG);
	s2s_image_free(&img);
	ck_assert_int_eq(s2s_image_alloc(&img, 512, 512, 255), S2S_OK);
	img.pixels[1000] = 0;
	ck_assert_int_eq(s2s_bio_features(&sig, &img, rv), S2S_OK);
	s2s_image_free(&img);
	ck_assert_int_eq(s2s_bio_features(NULL, &sig, rv), S2S_ERR_INVAL);
	s2s_image_free(&sig);
}
END_TEST

/* Block layout: a flat canvas has code 255 everywhere, so Rv is zero;
 * per-block totals of kept codes never exceed 20000. */
START_TEST(test_block_counts)
{
	uint16_t rv[S2S_RV_LEN];
	uint8_t ser[2 * S2S_RV_LEN];

	fx_pair(21, 0, 22, 0, rv);
	for (int b = 0; b < 12; b++) {
		unsigned sum = 0;

		for (int c = 0; c < 255; c++)
			sum += rv[255 * b + c];
		ck_assert_uint_le(sum, 20000);
	}
	s2s_bio_rv_serialize(rv, ser);
	for (int i = 0; i < S2S_RV_LEN; i++)
		ck_assert_uint_eq((unsigned)ser[2 * i] << 8 | ser[2 * i + 1], rv[i]);
}
END_TEST

/*
 * Golden hashes pin the generator and Fx together (the generator uses
 * libm's sin/cos/log; a different libm could move a pixel: if only these
 * two fail, compare with tests/vectors/fx_ref.py first).
 */
START_TEST(test_golden)
{
	struct s2s_image a;
	uint16_t rv[S2S_RV_LEN];
	uint8_t ser[2 * S2S_RV_LEN], h[32];
	char hex[65];

	ck_assert_int_eq(s2s_bio_siggen(1, 0, &a), S2S_OK);
	ck_assert_uint_eq(a.width, 560);
	ck_assert_uint_eq(a.height, 220);
	s2s_sha256(a.pixels, (size_t)a.width * a.height, h);
	hex32(h, hex);
	ck_assert_str_eq(hex, "4cfbe74d1fbf4f829295d0985b3dc67ea806affb3e5d49b26a900579326376f8");
	s2s_image_free(&a);

	fx_pair(1, 0, 2, 0, rv);
	s2s_bio_rv_serialize(rv, ser);
	s2s_sha256(ser, sizeof(ser), h);
	hex32(h, hex);
	ck_assert_str_eq(hex, "c1aeeb6cbbfbf9ddd38244b6daf08c677e7c0d7999bfd1dd6923314365c6a5f7");
}
END_TEST

/* The generator is deterministic and writers differ. */
START_TEST(test_siggen)
{
	struct s2s_image a, b, c;
	size_t n, ink = 0;

	ck_assert_int_eq(s2s_bio_siggen(5, 2, &a), S2S_OK);
	ck_assert_int_eq(s2s_bio_siggen(5, 2, &b), S2S_OK);
	ck_assert_int_eq(s2s_bio_siggen(5, 3, &c), S2S_OK);
	n = (size_t)a.width * a.height;
	ck_assert_mem_eq(a.pixels, b.pixels, n);
	ck_assert(memcmp(a.pixels, c.pixels, n));
	/* Dark ink on light paper, a few percent of the page. */
	for (size_t i = 0; i < n; i++)
		ink += a.pixels[i] < 160;
	ck_assert_uint_gt(ink, n / 200);
	ck_assert_uint_lt(ink, n / 5);
	ck_assert_uint_le((uint64_t)a.width * a.height, S2S_BIO_MAX_PIXELS);
	s2s_image_free(&a);
	s2s_image_free(&b);
	s2s_image_free(&c);
	ck_assert_int_eq(s2s_bio_siggen(0, 0, NULL), S2S_ERR_INVAL);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("bio");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lbp_vector);
	tcase_add_test(tc, test_lbp_bits);
	tcase_add_test(tc, test_otsu_known);
	tcase_add_test(tc, test_normalize_geometry);
	tcase_add_test(tc, test_commutative);
	tcase_add_test(tc, test_same_vs_different);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_block_counts);
	tcase_add_test(tc, test_golden);
	tcase_add_test(tc, test_siggen);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
