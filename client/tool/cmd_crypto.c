/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd_crypto.c - `s2s crypto` (one primitive of the paper profile at a
 * time, for reproducing the paper and cross-checking other
 * implementations) and `s2s keygen`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s2s/crypto.h"
#include "s2s/scheme.h"
#include "s2s/secmem.h"
#include "tool.h"

/* ---- option parsing ------------------------------------------------------ */

/* One "--name VALUE" option; value stays NULL until given. */
struct opt {
	const char *name;
	const char *value;
};

/*
 * Fill opts from argv[1..].  Returns 0, or EXIT_USAGE after printing the
 * error: an unknown option, a missing value, a repeated option.
 */
static int
parse_opts(const char *cmd, int argc, char **argv, struct opt *opts,
	   size_t n)
{
	for (int i = 1; i < argc; i++) {
		struct opt *o = NULL;

		for (size_t k = 0; k < n; k++)
			if (!strcmp(argv[i], opts[k].name))
				o = &opts[k];
		if (!o)
			return tool_fail(EXIT_USAGE, cmd,
					 "unknown option '%s' (try --help)",
					 argv[i]);
		if (i + 1 >= argc)
			return tool_fail(EXIT_USAGE, cmd, "%s needs a value",
					 argv[i]);
		if (o->value)
			return tool_fail(EXIT_USAGE, cmd, "%s given twice",
					 argv[i]);
		o->value = argv[++i];
	}
	for (size_t k = 0; k < n; k++)
		if (!opts[k].value)
			return tool_fail(EXIT_USAGE, cmd, "missing %s (try --help)",
					 opts[k].name);
	return 0;
}

/* A hex option of min..max bytes into a malloc()ed buffer. */
static int
hex_opt(const char *cmd, const struct opt *o, size_t min, size_t max,
	uint8_t **out, size_t *len)
{
	if (!hex_decode(o->value, out, len))
		return tool_fail(EXIT_USAGE, cmd,
				 "%s: not an even-length hex string", o->name);
	if (*len < min || *len > max) {
		free(*out);
		*out = NULL;
		if (min == max)
			return tool_fail(EXIT_USAGE, cmd,
					 "%s must be exactly %zu bytes (%zu hex digits), got %zu",
					 o->name, min, 2 * min, *len);
		return tool_fail(EXIT_USAGE, cmd,
				 "%s must be %zu..%zu bytes, got %zu", o->name,
				 min, max, *len);
	}
	return 0;
}

static void
free_secret(uint8_t *p, size_t n)
{
	if (p) {
		s2s_memzero(p, n);
		free(p);
	}
}

static int
rt_opt(const char *cmd, const struct opt *o, uint32_t *rt)
{
	uint64_t v;

	if (!parse_u64(o->value, UINT32_MAX, &v))
		return tool_fail(EXIT_USAGE, cmd,
				 "%s: need a decimal integer 0..4294967295",
				 o->name);
	*rt = (uint32_t)v;
	return 0;
}

/* ---- s2s crypto -------------------------------------------------------- */

static void
crypto_usage(FILE *f)
{
	fprintf(f,
		"usage: s2s crypto macless --msg-hex H --skcs-hex H --sk-hex H --shk-hex H --rt N\n"
		"       s2s crypto ratchet --sk-hex H --skcs-hex H --rt N\n"
		"       s2s crypto skcs --r-hex H\n\n"
		"Run one primitive of the paper profile (SCHEME.md, normative).\n"
		"  macless  MACLESS = sum of the bytes of SHA-1(msg||skcs||sk||shk||be32(rt)),\n"
		"           printed in decimal (0..5100)\n"
		"  ratchet  next Sk = rotr(xor_cycle(sk, skcs), rt mod 8*len(sk)), in hex\n"
		"  skcs     SkCS^T = 2^r mod lp (RFC 7919 ffdhe2048), 512 hex digits\n\n"
		"H is hex (even length, any case); skcs is exactly 256 bytes, sk\n"
		"1..%d bytes, shk 1..%d bytes, msg 0..65536 bytes, r 1..256 bytes;\n"
		"N is a decimal 32-bit integer.\n",
		S2S_SK_MAX, S2S_SHK_MAX);
}

static int
crypto_macless(int argc, char **argv)
{
	const char *cmd = "crypto macless";
	struct opt o[] = { { "--msg-hex", NULL }, { "--skcs-hex", NULL },
			   { "--sk-hex", NULL }, { "--shk-hex", NULL },
			   { "--rt", NULL } };
	uint8_t *msg = NULL, *skcs = NULL, *sk = NULL, *shk = NULL;
	size_t nm = 0, nc = 0, nk = 0, ns = 0;
	uint32_t rt = 0;
	int st;

	if (tool_wants_help(argc, argv)) {
		crypto_usage(stdout);
		return 0;
	}
	st = parse_opts(cmd, argc, argv, o, 5);
	if (st == 0)
		st = rt_opt(cmd, &o[4], &rt);
	if (st == 0)
		st = hex_opt(cmd, &o[0], 0, 65536, &msg, &nm);
	if (st == 0)
		st = hex_opt(cmd, &o[1], S2S_SKCS_LEN, S2S_SKCS_LEN, &skcs, &nc);
	if (st == 0)
		st = hex_opt(cmd, &o[2], 1, S2S_SK_MAX, &sk, &nk);
	if (st == 0)
		st = hex_opt(cmd, &o[3], 1, S2S_SHK_MAX, &shk, &ns);
	if (st == 0)
		printf("%u\n", (unsigned)s2s_macless(msg, nm, skcs, sk, nk, shk,
						     ns, rt));
	free(msg);
	free_secret(skcs, nc);
	free_secret(sk, nk);
	free_secret(shk, ns);
	return st;
}

static int
crypto_ratchet(int argc, char **argv)
{
	const char *cmd = "crypto ratchet";
	struct opt o[] = { { "--sk-hex", NULL }, { "--skcs-hex", NULL },
			   { "--rt", NULL } };
	uint8_t *sk = NULL, *skcs = NULL;
	size_t nk = 0, nc = 0;
	uint32_t rt = 0;
	int st;

	if (tool_wants_help(argc, argv)) {
		crypto_usage(stdout);
		return 0;
	}
	st = parse_opts(cmd, argc, argv, o, 3);
	if (st == 0)
		st = rt_opt(cmd, &o[2], &rt);
	if (st == 0)
		st = hex_opt(cmd, &o[0], 1, S2S_SK_MAX, &sk, &nk);
	if (st == 0)
		st = hex_opt(cmd, &o[1], S2S_SKCS_LEN, S2S_SKCS_LEN, &skcs, &nc);
	if (st == 0) {
		s2s_ratchet_paper(sk, nk, skcs, rt);
		hex_print(sk, nk);
	}
	free_secret(sk, nk);
	free_secret(skcs, nc);
	return st;
}

static int
crypto_skcs(int argc, char **argv)
{
	const char *cmd = "crypto skcs";
	struct opt o[] = { { "--r-hex", NULL } };
	uint8_t *r = NULL, out[S2S_SKCS_LEN];
	size_t nr = 0;
	enum s2s_err err;
	int st;

	if (tool_wants_help(argc, argv)) {
		crypto_usage(stdout);
		return 0;
	}
	st = parse_opts(cmd, argc, argv, o, 1);
	if (st == 0)
		st = hex_opt(cmd, &o[0], 1, S2S_FFDHE2048_LEN, &r, &nr);
	if (st == 0) {
		err = s2s_skcs_compute(r, nr, out);
		if (err)
			st = tool_fail(1, cmd, "%s", s2s_strerror(err));
		else
			hex_print(out, sizeof(out));
	}
	free_secret(r, nr);
	S2S_WIPE(out);
	return st;
}

int
cmd_crypto(int argc, char **argv)
{
	if (argc < 2) {
		crypto_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		crypto_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "macless"))
		return crypto_macless(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ratchet"))
		return crypto_ratchet(argc - 1, argv + 1);
	if (!strcmp(argv[1], "skcs"))
		return crypto_skcs(argc - 1, argv + 1);
	return tool_fail(EXIT_USAGE, "crypto",
			 "unknown primitive '%s' (macless, ratchet, skcs)",
			 argv[1]);
}

/* ---- s2s keygen -------------------------------------------------------- */

static void
keygen_usage(FILE *f)
{
	fprintf(f,
		"usage: s2s keygen --out PATH [--force]\n\n"
		"Create a P-256 key pair: PATH.key (PEM \"EC PRIVATE KEY\", mode 0600)\n"
		"and PATH.pub (PEM \"PUBLIC KEY\", mode 0644), both readable by OpenSSL.\n"
		"An existing PATH.key is kept unless --force is given.  Prints the two\n"
		"paths written.\n");
}

int
cmd_keygen(int argc, char **argv)
{
	const char *out = NULL;
	bool force = false;
	struct s2s_key *k;
	enum s2s_err err;
	char *keyfile;
	size_t n;

	if (tool_wants_help(argc, argv)) {
		keygen_usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force")) {
			force = true;
		} else if (!strcmp(argv[i], "--out")) {
			if (i + 1 >= argc)
				return tool_fail(EXIT_USAGE, "keygen",
						 "--out needs a value");
			out = argv[++i];
		} else {
			return tool_fail(EXIT_USAGE, "keygen",
					 "unknown option '%s' (try --help)",
					 argv[i]);
		}
	}
	if (!out || !*out)
		return tool_fail(EXIT_USAGE, "keygen", "missing --out PATH");

	n = strlen(out) + sizeof(".key");
	keyfile = malloc(n);
	if (!keyfile)
		return tool_fail(1, "keygen", "%s", s2s_strerror(S2S_ERR_NOMEM));
	snprintf(keyfile, n, "%s.key", out);
	if (!force && access(keyfile, F_OK) == 0) {
		tool_fail(1, "keygen", "%s exists (use --force to replace it)",
			  keyfile);
		free(keyfile);
		return 1;
	}
	free(keyfile);

	err = s2s_key_generate(&k);
	if (err == S2S_OK) {
		err = s2s_key_save(k, out);
		s2s_key_destroy(k);
	}
	if (err)
		return tool_fail(1, "keygen", "cannot write %s.key/.pub: %s",
				 out, s2s_strerror(err));
	printf("%s.key %s.pub\n", out, out);
	return 0;
}
