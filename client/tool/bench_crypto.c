/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_crypto.c - `s2s bench crypto`: median microseconds of every
 * primitive the scheme uses, to compare with the paper's Table 6 and the
 * wolfSSL probe figures in the design notes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "s2s/crypto.h"
#include "s2s/scheme.h"
#include "s2s/secmem.h"
#include "tool.h"

/* Everything one measurement may need, prepared once. */
/*
 * A receiver never sees the same ephemeral point twice, and wolfCrypt's
 * fixed-point cache (15 points per thread) makes a repeated one about 4x
 * cheaper: "fresh" rows open RING different ciphertexts in turn, more
 * than the cache holds, as a negotiation does.
 */
#define RING 64

struct ctx {
	uint8_t msg[1024];
	uint8_t hdr[24];
	uint8_t key32[32];
	uint8_t skcs[S2S_SKCS_LEN];
	uint8_t sk[S2S_SK_MAX];
	uint8_t shk[S2S_SHK_MAX];
	uint8_t out[S2S_SKCS_LEN];
	uint8_t ct[2048];
	size_t ct_len[2];   /* sealed 64 B, sealed 1 KiB */
	uint8_t ct64[256];
	uint8_t ring[RING][256];   /* 64 B sealed by as many ephemeral keys */
	size_t ring_len[RING];
	unsigned ring_i;
	uint8_t sig[S2S_P256_SIG_LEN];
	uint8_t pt[2048];
	struct s2s_key *key;
	struct s2s_chain chain;     /* hardened, for the chain's tag */
	struct s2s_tag_ctx *tag;    /* its per-session tag context */
	uint32_t rt;
	volatile uint32_t sink;
};

static int
b_sha1(void *p)
{
	struct ctx *c = p;
	struct s2s_iov v = { c->msg, 64 };

	s2s_sha1v(&v, 1, c->out);
	return 0;
}

static int
b_sha256(void *p)
{
	struct ctx *c = p;

	s2s_sha256(c->msg, 64, c->out);
	return 0;
}

static int
b_hmac(void *p)
{
	struct ctx *c = p;
	struct s2s_iov v = { c->msg, 64 };

	return s2s_hmac_sha256v(c->key32, 32, &v, 1, c->out);
}

static int
b_hkdf(void *p)
{
	struct ctx *c = p;

	return s2s_hkdf_sha256(c->key32, 32, NULL, 0, (const uint8_t *)"info",
			       4, c->out, 32);
}

static int
b_macless(void *p)
{
	struct ctx *c = p;

	c->sink = s2s_macless(c->msg, 64, c->skcs, c->sk, 32, c->shk, 32,
			      c->rt++);
	return 0;
}

static int
b_tag_hardened(void *p)
{
	struct ctx *c = p;

	return s2s_tag_hardened(c->hdr, sizeof(c->hdr), c->msg, 64, c->skcs,
				c->sk, 32, c->shk, 32, c->rt++, c->out);
}

/* The tag as the gate and the devices compute it: from the chain with the
 * per-session context (HKDF-extract with SkCS^T absorbed, made once). */
static int
b_tag_chain(void *p)
{
	struct ctx *c = p;

	return s2s_chain_tag_ctx(&c->chain, c->tag, c->hdr, sizeof(c->hdr),
				 c->msg, 64, c->rt++, c->out);
}

static int
b_ratchet_paper(void *p)
{
	struct ctx *c = p;

	s2s_ratchet_paper(c->sk, 32, c->skcs, c->rt++);
	return 0;
}

static int
b_ratchet_hardened(void *p)
{
	struct ctx *c = p;

	return s2s_ratchet_hardened(c->sk, c->rt++);
}

static int
b_skcs(void *p)
{
	struct ctx *c = p;

	return s2s_skcs_generate(c->out);
}

static int
b_keygen(void *p)
{
	struct s2s_key *k;

	(void)p;
	if (s2s_key_generate(&k))
		return 1;
	s2s_key_destroy(k);
	return 0;
}

static int
seal(struct ctx *c, size_t n)
{
	size_t len;

	return s2s_ecies_seal(c->key, c->msg, n, c->ct, &len);
}

static int
open_ct(struct ctx *c, const uint8_t *ct, size_t ct_len)
{
	size_t len;

	return s2s_ecies_open(c->key, ct, ct_len, c->pt, &len);
}

static int b_seal64(void *p) { return seal(p, 64); }
static int b_seal1k(void *p) { return seal(p, 1024); }

static int
b_open64(void *p)
{
	struct ctx *c = p;

	return open_ct(c, c->ct64, c->ct_len[0]);
}

static int
b_open1k(void *p)
{
	struct ctx *c = p;

	return open_ct(c, c->ct, c->ct_len[1]);
}

static int
b_open_fresh(void *p)
{
	struct ctx *c = p;
	unsigned i = c->ring_i++ % RING;

	return open_ct(c, c->ring[i], c->ring_len[i]);
}

/* The device library's mode (s2s_client_create): no fixed-point cache. */
static int
b_seal_nocache(void *p)
{
	int rc;

	s2s_crypto_fixed_point_cache(false);
	rc = seal(p, 64);
	s2s_crypto_fixed_point_cache(true);
	return rc;
}

static int
b_open_nocache(void *p)
{
	int rc;

	s2s_crypto_fixed_point_cache(false);
	rc = b_open_fresh(p);
	s2s_crypto_fixed_point_cache(true);
	return rc;
}

static int
b_sign(void *p)
{
	struct ctx *c = p;

	return s2s_ecdsa_sign(c->key, c->msg, 64, c->sig);
}

static int
b_verify(void *p)
{
	struct ctx *c = p;

	return s2s_ecdsa_verify(c->key, c->msg, 64, c->sig);
}

struct bench {
	const char *name;
	int (*fn)(void *);
	int batch;
};

static const struct bench benches[] = {
	{ "SHA-1 (64 B)", b_sha1, 2000 },
	{ "SHA-256 (64 B)", b_sha256, 2000 },
	{ "HMAC-SHA-256 (32 B key, 64 B)", b_hmac, 1000 },
	{ "HKDF-SHA-256 (32 B out)", b_hkdf, 1000 },
	{ "MACLESS paper tag (64 B msg)", b_macless, 1000 },
	{ "hardened tag (HKDF+HMAC, 64 B msg)", b_tag_hardened, 500 },
	{ "hardened tag, from a chain (64 B msg)", b_tag_chain, 500 },
	{ "paper ratchet (32 B Sk)", b_ratchet_paper, 5000 },
	{ "hardened ratchet", b_ratchet_hardened, 1000 },
	{ "SkCS generate (2048-bit, 256-bit exp)", b_skcs, 5 },
	{ "P-256 keygen", b_keygen, 20 },
	{ "ECIES seal 64 B (incl. ephemeral key)", b_seal64, 10 },
	{ "ECIES open 64 B", b_open64, 10 },
	{ "ECIES open 64 B, fresh sender key each", b_open_fresh, 10 },
	{ "ECIES seal 1 KiB", b_seal1k, 10 },
	{ "ECIES open 1 KiB", b_open1k, 10 },
	{ "ECDSA P-256 sign", b_sign, 10 },
	{ "ECDSA P-256 verify", b_verify, 10 },
	{ "ECIES seal 64 B, no fixed-point cache", b_seal_nocache, 10 },
	{ "ECIES open 64 B, fresh, no fixed-point cache", b_open_nocache,
	  10 },
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s bench crypto [--samples N]\n\n"
		"Median microseconds per call of each primitive (N samples, default\n"
		"31, each a batch of calls).\n");
}

int
bench_crypto(int argc, char **argv)
{
	struct ctx *c;
	uint64_t samples = 31;
	int status = 0;

	if (tool_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
			if (!parse_u64(argv[++i], 100000, &samples) || !samples)
				return tool_fail(EXIT_USAGE, "bench crypto",
						 "--samples: need 1..100000");
		} else {
			return tool_fail(EXIT_USAGE, "bench crypto",
					 "unknown option '%s'", argv[i]);
		}
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return tool_fail(1, "bench crypto", "out of memory");
	if (s2s_random(c->msg, sizeof(c->msg)) ||
	    s2s_random(c->key32, sizeof(c->key32)) ||
	    s2s_random(c->sk, sizeof(c->sk)) ||
	    s2s_random(c->shk, sizeof(c->shk)) ||
	    s2s_skcs_generate(c->skcs) || s2s_key_generate(&c->key) ||
	    s2s_chain_init(&c->chain, S2S_PROFILE_HARDENED, 1, c->skcs, c->sk,
			   32, c->shk, 32) || !(c->tag = s2s_tag_ctx_new()) ||
	    s2s_ecies_seal(c->key, c->msg, 64, c->ct64, &c->ct_len[0]) ||
	    s2s_ecies_seal(c->key, c->msg, 1024, c->ct, &c->ct_len[1]) ||
	    s2s_ecdsa_sign(c->key, c->msg, 64, c->sig)) {
		status = tool_fail(1, "bench crypto", "setup failed");
		goto out_free;
	}
	for (int i = 0; i < RING; i++)
		if (s2s_ecies_seal(c->key, c->msg, 64, c->ring[i],
				   &c->ring_len[i]))
			break;
	if (!c->ring_len[RING - 1]) {
		status = tool_fail(1, "bench crypto", "setup failed");
		goto out_free;
	}
	printf("%-40s %15s  (median of %d samples; %s)\n", "primitive",
	       "us/call", (int)samples, s2s_crypto_backend_version());
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		const struct bench *b = &benches[i];
		double us;

		/* the 1 KiB open needs the 1 KiB ciphertext back after seal1k */
		if (b->fn == b_open1k &&
		    s2s_ecies_seal(c->key, c->msg, 1024, c->ct, &c->ct_len[1])) {
			status = tool_fail(1, "bench crypto", "setup failed");
			break;
		}
		us = bench_median_us(b->fn, c, (int)samples, b->batch);
		if (us < 0) {
			status = tool_fail(1, "bench crypto", "%s failed",
					   b->name);
			break;
		}
		bench_row(b->name, us, NULL);
	}
out_free:
	s2s_key_destroy(c->key);
	s2s_tag_ctx_free(c->tag);
	s2s_chain_wipe(&c->chain);
	s2s_memzero(c, sizeof(*c));
	free(c);
	return status;
}
