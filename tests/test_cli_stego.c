/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `s2s bio` and `s2s stego` command forms, run as a user would ($S2S_TOOL):
 * exit codes, the one-line outputs, the one-line errors on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "s2s/bio.h"
#include "s2s/image.h"

#define REF_KEY "c87e982c082cadfe9d877f97d7c4835936134ca1b4e00fde3a4f8bb76e2de0ed"

static char workdir[1024];
static char out_buf[8192], err_buf[8192];

static void
slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = 0;
	if (!f)
		return;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
}

static unsigned
count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Run "$S2S_TOOL args" in workdir; capture stdout/stderr; exit status. */
static int
run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run(const char *fmt, ...)
{
	char args[4096], cmd[16384], o[1100], e[1100];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(o, sizeof(o), "%s/stdout", workdir);
	snprintf(e, sizeof(e), "%s/stderr", workdir);
	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s >'%s' 2>'%s'", workdir,
		 tests_env("S2S_TOOL", "s2s"), args, o, e);
	st = system(cmd);
	slurp(o, out_buf, sizeof(out_buf));
	slurp(e, err_buf, sizeof(err_buf));
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* A failure: non-zero, nothing on stdout, one "s2s CMD: ..." line. */
static void
expect_fail(int status, int want, const char *cmd)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "s2s %s: ", cmd);
	ck_assert_int_eq(status, want);
	ck_assert_str_eq(out_buf, "");
	ck_assert_uint_eq(count_lines(err_buf), 1);
	ck_assert_msg(!strncmp(err_buf, prefix, strlen(prefix)), "stderr: %s",
		      err_buf);
}

static void
setup(void)
{
	snprintf(workdir, sizeof(workdir), "%s/cli_stego_XXXXXX",
		 tests_env("S2S_BUILDDIR", "/tmp"));
	ck_assert_ptr_nonnull(mkdtemp(workdir));
}

static void
teardown(void)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_help)
{
	static const char *const forms[] = {
		"bio --help", "bio features --help", "bio siggen --help",
		"stego --help", "stego embed --help", "stego extract --help",
		"stego psnr --help", "stego analyze --help", "bench stego --help",
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		ck_assert_int_eq(run("%s", forms[i]), 0);
		ck_assert_uint_gt(strlen(out_buf), 10);
		ck_assert_str_eq(err_buf, "");
	}
	ck_assert_int_eq(run("stego"), 2);
	ck_assert_int_eq(run("bio"), 2);
	expect_fail(run("stego frobnicate"), 2, "stego");
	expect_fail(run("bio frobnicate"), 2, "bio");
}
END_TEST

START_TEST(test_bio)
{
	struct s2s_image a, b;
	uint16_t rv[S2S_RV_LEN];
	uint8_t want[2 * S2S_RV_LEN], got[2 * S2S_RV_LEN + 1];
	struct stat st;
	char path[4200];
	FILE *f;

	ck_assert_int_eq(run("bio siggen --user 1 --sample 0 --out a.png"), 0);
	ck_assert_str_eq(out_buf, "out=a.png width=560 height=220\n");
	ck_assert_int_eq(run("bio siggen --user 2 --sample 0 --out b.pgm"), 0);
	ck_assert_int_eq(run("bio features a.png b.pgm --out rv.bin"), 0);
	ck_assert_str_eq(out_buf, "rv=rv.bin values=3060 bytes=6120\n");
	snprintf(path, sizeof(path), "%s/rv.bin", workdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 077, 0);    /* Rv is secret */
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(got, 1, sizeof(got), f), 2 * S2S_RV_LEN);
	fclose(f);
	ck_assert_int_eq(s2s_bio_siggen(1, 0, &a), S2S_OK);
	ck_assert_int_eq(s2s_bio_siggen(2, 0, &b), S2S_OK);
	ck_assert_int_eq(s2s_bio_features(&a, &b, rv), S2S_OK);
	s2s_bio_rv_serialize(rv, want);
	ck_assert_mem_eq(got, want, sizeof(want));
	s2s_image_free(&a);
	s2s_image_free(&b);
	/* Commutative through the tool too. */
	ck_assert_int_eq(run("bio features b.pgm a.png --out rv2.bin"), 0);
	ck_assert_int_eq(run("stego psnr a.png a.png"), 0);

	/* Errors. */
	expect_fail(run("bio features a.png --out rv.bin"), 2, "bio");
	expect_fail(run("bio features a.png missing.png --out x.bin"), 1, "bio");
	expect_fail(run("bio siggen --user x --sample 0 --out s.png"), 2, "bio");
	expect_fail(run("bio siggen --user 1 --out s.png"), 2, "bio");
	ck_assert_int_eq(s2s_image_alloc(&a, 50, 50, 255), S2S_OK);
	snprintf(path, sizeof(path), "%s/blank.png", workdir);
	ck_assert_int_eq(s2s_image_write_file(&a, path, 1), S2S_OK);
	s2s_image_free(&a);
	expect_fail(run("bio features a.png blank.png --out x.bin"), 1, "bio");
	ck_assert_ptr_nonnull(strstr(err_buf, "ink"));
}
END_TEST

START_TEST(test_stego)
{
	const char *cover = tests_src_path("core/covers/camera128.png");
	char cov[4200];

	snprintf(cov, sizeof(cov), "%s", cover);
	/* The reference vector of signal-processing.md 5.4. */
	ck_assert_int_eq(run("stego embed --cover '%s' --payload-hex deadbeef01234567 "
			     "--key-hex " REF_KEY " --out s.png", cov), 0);
	ck_assert_str_eq(out_buf, "changes=8 psnr=81.244\n");
	ck_assert_int_eq(run("stego extract --in s.png --key-hex " REF_KEY
			     " --bytes 8"), 0);
	ck_assert_str_eq(out_buf, "deadbeef01234567\n");
	ck_assert_int_eq(run("stego extract --in s.png --key-hex " REF_KEY
			     " --bytes 4"), 0);
	ck_assert_str_eq(out_buf, "deadbeef\n");
	ck_assert_int_eq(run("stego psnr '%s' s.png", cov), 0);
	ck_assert_str_eq(out_buf, "mse=0.000488 psnr=81.244\n");
	ck_assert_int_eq(run("stego psnr s.png s.png"), 0);
	ck_assert_str_eq(out_buf, "mse=0.000000 psnr=inf\n");
	ck_assert_int_eq(run("stego analyze '%s' s.png", cov), 0);
	ck_assert_uint_eq(count_lines(out_buf), 2);
	ck_assert_ptr_nonnull(strstr(out_buf, "chi2="));
	ck_assert_ptr_nonnull(strstr(out_buf, "chi2_p="));
	ck_assert_ptr_nonnull(strstr(out_buf, "rs="));
	ck_assert_ptr_nonnull(strstr(out_buf, "spa="));
	/* Hardened payload, PGM output, level 0. */
	ck_assert_int_eq(run("stego embed --cover '%s' --payload-hex "
			     "00112233445566778899aabbccddeeff --key-hex " REF_KEY
			     " --out h.pgm --level 0", cov), 0);
	ck_assert_int_eq(run("stego extract --in h.pgm --key-hex " REF_KEY
			     " --bytes 16"), 0);
	ck_assert_str_eq(out_buf, "00112233445566778899aabbccddeeff\n");

	/* Errors: usage (2) and runtime (1). */
	expect_fail(run("stego embed --cover '%s' --payload-hex dead --key-hex 00 "
			"--out x.png", cov), 2, "stego");
	expect_fail(run("stego embed --cover '%s' --payload-hex zz --key-hex " REF_KEY
			" --out x.png", cov), 2, "stego");
	expect_fail(run("stego embed --cover '%s' --key-hex " REF_KEY " --out x.png",
			cov), 2, "stego");
	expect_fail(run("stego embed --cover '%s' --payload-hex "
			"00112233445566778899aabbccddeeff00 --key-hex " REF_KEY
			" --out x.png", cov), 1, "stego");
	snprintf(cov, sizeof(cov), "%s/x.png", workdir);
	ck_assert_int_ne(access(cov, F_OK), 0);
	snprintf(cov, sizeof(cov), "%s", cover);
	expect_fail(run("stego embed --cover nope.png --payload-hex 00 --key-hex "
			REF_KEY " --out x.png"), 1, "stego");
	expect_fail(run("stego extract --in s.png --key-hex " REF_KEY
			" --bytes 17"), 1, "stego");
	expect_fail(run("stego extract --in s.png --key-hex " REF_KEY
			" --bytes 0"), 2, "stego");
	expect_fail(run("stego extract --in s.png --bytes 8"), 2, "stego");
	expect_fail(run("stego psnr s.png"), 2, "stego");
	expect_fail(run("stego analyze"), 2, "stego");
	expect_fail(run("stego analyze nope.png"), 1, "stego");
	ck_assert_int_eq(run("bio siggen --user 3 --sample 0 --out big.png"), 0);
	expect_fail(run("stego psnr s.png big.png"), 1, "stego");
}
END_TEST

START_TEST(test_bench)
{
	char cmd[4300];

	if (getenv("S2S_UNDER_VALGRIND"))
		return;   /* minutes under valgrind; the tool is covered above */
	snprintf(cmd, sizeof(cmd), "bench stego --covers '%s'",
		 tests_src_path("core/covers"));
	ck_assert_int_eq(run("%s", cmd), 0);
	ck_assert_ptr_nonnull(strstr(out_buf, "stego embed 8 B (session sel)"));
	ck_assert_ptr_nonnull(strstr(out_buf, "PNG encode 128x128 level 9"));
	ck_assert_ptr_nonnull(strstr(out_buf, "camera128"));
	ck_assert_str_eq(err_buf, "");
	expect_fail(run("bench stego --covers /nonexistent"), 1, "bench");
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("cli_stego");
	TCase *tc = tcase_create("tool");

	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_bio);
	tcase_add_test(tc, test_stego);
	tcase_add_test(tc, test_bench);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
