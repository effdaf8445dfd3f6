/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "check_main.h"
#include "s2s/error.h"
#include "s2s/secmem.h"

START_TEST(test_memzero)
{
	unsigned char buf[64];

	memset(buf, 0xa5, sizeof(buf));
	s2s_memzero(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0);
	s2s_memzero(NULL, 0);
}
END_TEST

START_TEST(test_ct_equal)
{
	unsigned char a[33], b[33];

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (unsigned char)(i * 7);
	ck_assert(s2s_ct_equal(a, b, sizeof(a)));
	ck_assert(s2s_ct_equal(a, b, 0));
	/* Any single differing bit anywhere is caught. */
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (unsigned char)(1u << bit);
			ck_assert(!s2s_ct_equal(a, b, sizeof(a)));
			b[i] ^= (unsigned char)(1u << bit);
		}
	}
}
END_TEST

START_TEST(test_strerror)
{
	/* Every code has a distinct name and a text. */
	for (int e = 0; e > -S2S_ERR_COUNT; e--) {
		ck_assert_str_ne(s2s_errname(e), "unknown");
		ck_assert_str_ne(s2s_strerror(e), "unknown error");
		for (int f = e - 1; f > -S2S_ERR_COUNT; f--)
			ck_assert_str_ne(s2s_errname(e), s2s_errname(f));
	}
	ck_assert_str_eq(s2s_strerror(S2S_ERR_AUTH), "verification failed");
	ck_assert_str_eq(s2s_errname(S2S_ERR_REPLAY), "replay");
	ck_assert_str_eq(s2s_strerror(1), "unknown error");
	ck_assert_str_eq(s2s_strerror(-1000), "unknown error");
	ck_assert_str_eq(s2s_errname(-S2S_ERR_COUNT), "unknown");
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("secmem");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_memzero);
	tcase_add_test(tc, test_ct_equal);
	tcase_add_test(tc, test_strerror);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
