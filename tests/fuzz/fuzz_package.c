/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_package.c - the CS gate's path on a published package:
 * s2s_package_parse, then s2s_package_open against a fixed chain.
 *
 * Input: one package as it arrives on the wire.  Invariants checked:
 *  - parse is zero-copy and encode is its inverse: re-encoding the parsed
 *    fields gives the input bytes back;
 *  - open, open_cached (fresh cache) and the reference open_full (whole
 *    decode) agree on the result, R^T and the chain state, and a failed
 *    open leaves the chain untouched;
 *  - an accepted package advances the chain by exactly one.
 * The fixed chain (fuzz_common.h) is at seq 1 of session FUZZ_SESSION.
 * When the package names another session or seq, it is opened a second
 * time against the same keys with session and seq aligned to it, so that
 * every parsed package reaches the image decoder and the stego extractor.
 */
#include "fuzz_common.h"
#include "s2s/package.h"

static struct s2s_chain chains[3];  /* by profile: [1] paper, [2] hardened */

static const struct s2s_package_limits limits = {
	.max_msg = 64u * 1024u,
	.max_image = 64u * 1024u,
	.image = { .max_width = 1024, .max_height = 1024,
		   .max_pixels = 256u * 256u, .max_bytes = 64u * 1024u },
};

static void
cleanup(void)
{
	for (size_t i = 0; i < 3; i++)
		s2s_chain_wipe(&chains[i]);
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_chain(&chains[S2S_PROFILE_PAPER], S2S_PROFILE_PAPER);
	fuzz_chain(&chains[S2S_PROFILE_HARDENED], S2S_PROFILE_HARDENED);
	atexit(cleanup);
	return 0;
}

/* Open p on copies of base both ways; check they agree; return the error. */
static enum s2s_err
open_both(const struct s2s_chain *base, const struct s2s_package *p)
{
	struct s2s_chain a = *base, b = *base, f = *base;
	struct s2s_package_cache cache = { 0 };
	uint32_t rt_a = 0, rt_b = 0, rt_f = 0;
	enum s2s_err ea, eb, ef;

	ea = s2s_package_open(&a, p, &limits, &rt_a);
	eb = s2s_package_open_cached(&b, &cache, p, &limits, &rt_b);
	ef = s2s_package_open_full(&f, &cache, p, &limits, &rt_f);
	s2s_package_cache_clear(&cache);
	FUZZ_CHECK(ea == eb);
	FUZZ_CHECK(ea == ef);
	FUZZ_CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	FUZZ_CHECK(memcmp(&a, &f, sizeof(a)) == 0);
	FUZZ_CHECK(rt_a == rt_f);
	if (ea == S2S_OK) {
		FUZZ_CHECK(rt_a == rt_b);
		FUZZ_CHECK(a.next_seq == base->next_seq + 1);
	} else {
		FUZZ_CHECK(memcmp(&a, base, sizeof(a)) == 0);
	}
	s2s_chain_wipe(&a);
	s2s_chain_wipe(&b);
	s2s_chain_wipe(&f);
	return ea;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_package p;
	struct s2s_chain aligned;
	uint8_t *enc = NULL;
	size_t enc_len = 0;
	enum s2s_err err;

	memset(&p, 0, sizeof(p));
	if (s2s_package_parse(data, size, &limits, &p) != S2S_OK)
		return 0;

	/* Zero-copy and exact: every field points into data. */
	FUZZ_CHECK(p.header == data);
	FUZZ_CHECK(p.header_len + p.msg_len + p.image_len == size);
	FUZZ_CHECK(p.msg == data + p.header_len);
	FUZZ_CHECK(p.image == data + p.header_len + p.msg_len);
	FUZZ_CHECK(p.profile == S2S_PROFILE_PAPER ||
		   p.profile == S2S_PROFILE_HARDENED);
	FUZZ_CHECK(s2s_package_encode(&p, &enc, &enc_len) == S2S_OK);
	FUZZ_CHECK(enc_len == size && memcmp(enc, data, size) == 0);
	free(enc);

	err = open_both(&chains[p.profile], &p);
	if (err == S2S_ERR_SESSION || err == S2S_ERR_REPLAY ||
	    err == S2S_ERR_GAP) {
		aligned = chains[p.profile];
		aligned.session = p.session;
		aligned.next_seq = p.seq;
		(void)open_both(&aligned, &p);
		s2s_chain_wipe(&aligned);
	}
	return 0;
}
