/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_cli_crypto.c - the built `s2s` tool (path in S2S_TOOL): `s2s crypto
 * macless|ratchet|skcs` against the Python vector tables, `s2s keygen`,
 * and the error contract (one line on stderr, exit 2 for usage errors).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "s2s/crypto.h"
#include "vectors/scheme_vectors.h"
#include "vectors/vec_util.h"

#define OUT_MAX 65536

struct run {
	int status;   /* exit status, or -1 if killed */
	char out[OUT_MAX];
	char err[OUT_MAX];
};

/* Run S2S_TOOL with args (NULL-terminated) and collect both streams. */
static void
run_tool(struct run *r, const char *const *args)
{
	const char *tool = getenv("S2S_TOOL");
	char *argv[32];
	int po[2], pe[2], st;
	size_t no = 0, ne = 0, argc = 0;
	pid_t pid;

	ck_assert_msg(tool && *tool, "S2S_TOOL is not set");
	argv[argc++] = (char *)tool;
	for (; *args; args++) {
		ck_assert_uint_lt(argc, 31);
		argv[argc++] = (char *)*args;
	}
	argv[argc] = NULL;
	ck_assert_int_eq(pipe(po), 0);
	ck_assert_int_eq(pipe(pe), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		execv(tool, argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	for (int open_fds = 2; open_fds > 0;) {
		struct pollfd p[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };

		ck_assert_int_ge(poll(p, 2, 30000), 1);
		for (int k = 0; k < 2; k++) {
			char *buf = k ? r->err : r->out;
			size_t *n = k ? &ne : &no;
			ssize_t got;

			if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP)))
				continue;
			got = read(p[k].fd, buf + *n, OUT_MAX - 1 - *n);
			if (got <= 0) {
				close(k ? pe[0] : po[0]);
				if (k)
					pe[0] = -1;
				else
					po[0] = -1;
				open_fds--;
				continue;
			}
			*n += (size_t)got;
		}
	}
	r->out[no] = '\0';
	r->err[ne] = '\0';
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A usage error: exit 2, nothing on stdout, one line on stderr naming what. */
static void
expect_usage_error(const char *const *args, const char *needle)
{
	static struct run r;

	run_tool(&r, args);
	ck_assert_int_eq(r.status, 2);
	ck_assert_str_eq(r.out, "");
	ck_assert_uint_eq(count_lines(r.err), 1);
	ck_assert_msg(strncmp(r.err, "s2s ", 4) == 0, "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, needle) != NULL, "'%s' not in: %s", needle,
		      r.err);
}

START_TEST(test_cli_macless)
{
	const struct macless_vec *v = &macless_vectors[_i];
	const char *args[] = { "crypto", "macless", "--msg-hex", v->msg,
			       "--skcs-hex", v->skcs, "--sk-hex", v->sk,
			       "--shk-hex", v->shk, "--rt", NULL, NULL };
	static struct run r;
	char rt[16], want[16];

	if (strlen(v->msg) > 2 * 65536)
		return;
	snprintf(rt, sizeof(rt), "%u", (unsigned)v->rt);
	args[11] = rt;
	snprintf(want, sizeof(want), "%u\n", (unsigned)v->value);
	run_tool(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, want);
	ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(test_cli_ratchet)
{
	const struct ratchet_paper_vec *v = &ratchet_paper_vectors[_i];
	const char *args[] = { "crypto", "ratchet", "--sk-hex", v->sk_in,
			       "--skcs-hex", v->skcs, "--rt", NULL, NULL };
	static struct run r;
	char rt[16], want[200];

	snprintf(rt, sizeof(rt), "%u", (unsigned)v->rt);
	args[7] = rt;
	snprintf(want, sizeof(want), "%s\n", v->sk_out);
	run_tool(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, want);
	ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(test_cli_skcs)
{
	const struct skcs_vec *v = &skcs_vectors[_i];
	const char *args[] = { "crypto", "skcs", "--r-hex", v->r, NULL };
	static struct run r;
	static char want[600];

	snprintf(want, sizeof(want), "%s\n", v->skcs);
	run_tool(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(strlen(r.out), 513);
	ck_assert_str_eq(r.out, want);
}
END_TEST

/* Upper-case hex is accepted; output stays lower-case. */
START_TEST(test_cli_upper_hex)
{
	const struct skcs_vec *v = &skcs_vectors[8];
	static struct run r;
	char upper[600], want[600];
	const char *args[] = { "crypto", "skcs", "--r-hex", upper, NULL };

	snprintf(upper, sizeof(upper), "%s", v->r);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	snprintf(want, sizeof(want), "%s\n", v->skcs);
	run_tool(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, want);
}
END_TEST

START_TEST(test_cli_errors)
{
	const struct macless_vec *v = &macless_vectors[1];
	char short_skcs[600];

	snprintf(short_skcs, sizeof(short_skcs), "%s", v->skcs);
	short_skcs[510] = '\0';   /* 255 bytes */
	{
		const char *a[] = { "crypto", "macless", "--msg-hex", "abc",
				    "--skcs-hex", v->skcs, "--sk-hex", v->sk,
				    "--shk-hex", v->shk, "--rt", "1", NULL };
		expect_usage_error(a, "--msg-hex");
	}
	{
		const char *a[] = { "crypto", "macless", "--msg-hex", "zz",
				    "--skcs-hex", v->skcs, "--sk-hex", v->sk,
				    "--shk-hex", v->shk, "--rt", "1", NULL };
		expect_usage_error(a, "hex");
	}
	{
		const char *a[] = { "crypto", "macless", "--msg-hex", "00",
				    "--skcs-hex", short_skcs, "--sk-hex", v->sk,
				    "--shk-hex", v->shk, "--rt", "1", NULL };
		expect_usage_error(a, "exactly 256 bytes");
	}
	{
		const char *a[] = { "crypto", "macless", "--msg-hex", "00",
				    "--skcs-hex", v->skcs, "--sk-hex", v->sk,
				    "--rt", "1", NULL };
		expect_usage_error(a, "missing --shk-hex");
	}
	{
		const char *a[] = { "crypto", "macless", "--msg-hex", "00",
				    "--skcs-hex", v->skcs, "--sk-hex", v->sk,
				    "--shk-hex", v->shk, "--rt", "4294967296",
				    NULL };
		expect_usage_error(a, "--rt");
	}
	{
		const char *a[] = { "crypto", "macless", "--msg-hex", "00",
				    "--skcs-hex", v->skcs, "--sk-hex", v->sk,
				    "--shk-hex", v->shk, "--rt", "-1", NULL };
		expect_usage_error(a, "--rt");
	}
	{
		const char *a[] = { "crypto", "ratchet", "--sk-hex", "0011",
				    "--skcs-hex", short_skcs, "--rt", "3", NULL };
		expect_usage_error(a, "exactly 256 bytes");
	}
	{
		const char *a[] = { "crypto", "ratchet", "--sk-hex", "",
				    "--skcs-hex", v->skcs, "--rt", "3", NULL };
		expect_usage_error(a, "--sk-hex");
	}
	{
		const char *a[] = { "crypto", "ratchet", "--sk-hex", "00",
				    "--skcs-hex", v->skcs, "--rt", NULL };
		expect_usage_error(a, "needs a value");
	}
	{
		const char *a[] = { "crypto", "skcs", "--r-hex", "", NULL };
		expect_usage_error(a, "--r-hex");
	}
	{
		const char *a[] = { "crypto", "skcs", "--r-hex", "01", "--r-hex",
				    "02", NULL };
		expect_usage_error(a, "twice");
	}
	{
		const char *a[] = { "crypto", "skcs", "--bogus", "01", NULL };
		expect_usage_error(a, "unknown option");
	}
	{
		const char *a[] = { "crypto", "frobnicate", NULL };
		expect_usage_error(a, "unknown primitive");
	}
	{
		const char *a[] = { "keygen", NULL };
		expect_usage_error(a, "--out");
	}
}
END_TEST

START_TEST(test_cli_help)
{
	static const char *const cmds[][3] = {
		{ "crypto", "--help", NULL },
		{ "crypto", "macless", "--help" },
		{ "crypto", "ratchet", "--help" },
		{ "crypto", "skcs", "--help" },
		{ "keygen", "--help", NULL },
	};
	static struct run r;

	for (size_t i = 0; i < VEC_COUNT(cmds); i++) {
		const char *a[4] = { cmds[i][0], cmds[i][1], cmds[i][2], NULL };

		run_tool(&r, a);
		ck_assert_int_eq(r.status, 0);
		ck_assert(strstr(r.out, "usage: s2s") != NULL);
		ck_assert_str_eq(r.err, "");
	}
}
END_TEST

START_TEST(test_cli_keygen)
{
	char dir[256], base[300], key[320], pub[320], want[700];
	static struct run r;
	struct s2s_key *k, *p;
	struct stat st;
	uint8_t a[65], b[65];
	const char *args[] = { "keygen", "--out", base, NULL };
	const char *force[] = { "keygen", "--out", base, "--force", NULL };

	snprintf(dir, sizeof(dir), "%s/s2s-test-cli-XXXXXX",
		 tests_env("TMPDIR", "/tmp"));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/node", dir);
	snprintf(key, sizeof(key), "%s.key", base);
	snprintf(pub, sizeof(pub), "%s.pub", base);
	snprintf(want, sizeof(want), "%s %s\n", key, pub);

	run_tool(&r, args);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, want);
	ck_assert_int_eq(stat(key, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(pub, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
	ck_assert_int_eq(s2s_key_load_private(key, &k), S2S_OK);
	ck_assert_int_eq(s2s_key_load_public(pub, &p), S2S_OK);
	s2s_key_public(k, a);
	s2s_key_public(p, b);
	ck_assert_mem_eq(a, b, 65);
	s2s_key_destroy(p);

	/* an existing key is kept... */
	run_tool(&r, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(count_lines(r.err), 1);
	ck_assert(strstr(r.err, "exists") != NULL);
	ck_assert_int_eq(s2s_key_load_public(pub, &p), S2S_OK);
	s2s_key_public(p, b);
	ck_assert_mem_eq(a, b, 65);
	s2s_key_destroy(p);
	/* ...unless forced */
	run_tool(&r, force);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(s2s_key_load_public(pub, &p), S2S_OK);
	s2s_key_public(p, b);
	ck_assert(memcmp(a, b, 65) != 0);
	s2s_key_destroy(p);
	s2s_key_destroy(k);

	/* a directory that does not exist: runtime failure, exit 1 */
	snprintf(base, sizeof(base), "%s/no/such/dir/node", dir);
	run_tool(&r, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	ck_assert_uint_eq(count_lines(r.err), 1);

	unlink(key);
	snprintf(base, sizeof(base), "%s/node", dir);
	snprintf(key, sizeof(key), "%s.key", base);
	unlink(key);
	unlink(pub);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("cli_crypto");
	TCase *tc = tcase_create("tool");

	tcase_add_loop_test(tc, test_cli_macless, 0, VEC_COUNT(macless_vectors));
	tcase_add_loop_test(tc, test_cli_ratchet, 0,
			    VEC_COUNT(ratchet_paper_vectors));
	tcase_add_loop_test(tc, test_cli_skcs, 0, VEC_COUNT(skcs_vectors));
	tcase_add_test(tc, test_cli_upper_hex);
	tcase_add_test(tc, test_cli_errors);
	tcase_add_test(tc, test_cli_help);
	tcase_add_test(tc, test_cli_keygen);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
