/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check_main.h - the main() every Check suite program shares.
 *
 * A test file defines `static Suite *make_suite(void)` and then writes
 * S2S_CHECK_MAIN(make_suite).  The program honours CK_FORK, CK_VERBOSITY
 * and CK_RUN_CASE like any Check runner, and exits non-zero on failure.
 * Paths: S2S_SRCDIR (source tree) and S2S_BUILDDIR (build tree) come from
 * the environment meson sets; tests_path() joins them.
 */
#ifndef S2S_CHECK_MAIN_H
#define S2S_CHECK_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "s2s/crypto.h"

static inline const char *
tests_env(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

/* "<S2S_SRCDIR>/<rel>" in a static buffer (tests are single-threaded). */
static inline const char *
tests_src_path(const char *rel)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/%s", tests_env("S2S_SRCDIR", "."), rel);
	return buf;
}

#define S2S_CHECK_MAIN(make)                                            \
	int main(void)                                                  \
	{                                                               \
		SRunner *sr = srunner_create(make());                   \
		int failed;                                             \
		srunner_run_all(sr, CK_ENV);                            \
		failed = srunner_ntests_failed(sr);                     \
		srunner_free(sr);                                       \
		s2s_crypto_shutdown();                                  \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;            \
	}

#endif /* S2S_CHECK_MAIN_H */
