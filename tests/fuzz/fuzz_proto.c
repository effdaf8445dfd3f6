/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_proto.c - the control-message decoder: s2s_msg_decode with the
 * fixed CS private key (every sealed part in the corpus is sealed to it).
 *
 * Input: one control message as received.  Invariants checked:
 *  - decode agrees with s2s_msg_peek on the header;
 *  - a decoded FETCHED iterates to exactly `count` packages;
 *  - for the types without a sealed part (and PAIRED pending), encoding
 *    the decoded message gives the input bytes back: the codec accepts
 *    one encoding per message.
 * The sealed parts cannot be reached by mutation (ECIES is
 * authenticated); fuzz_proto_sealed seals fuzzer bytes to reach them.
 */
#include "fuzz_common.h"
#include "s2s/proto.h"

static struct s2s_key *cs_key;

static void
cleanup(void)
{
	s2s_key_destroy(cs_key);
	cs_key = NULL;
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cs_key = fuzz_load_key(fuzz_cs_key_pem());
	atexit(cleanup);
	return 0;
}

static bool
has_sealed_part(const struct s2s_msg *m)
{
	switch (m->type) {
	case S2S_MSG_REGISTER:
	case S2S_MSG_NEG_KEYS:
	case S2S_MSG_NEG_SDS:
	case S2S_MSG_NEG_FWD:
	case S2S_MSG_NEG_SDR:
	case S2S_MSG_NEG_DONE:
		return true;
	case S2S_MSG_PAIRED:
		return m->status == 0;
	default:
		return false;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_msg m;
	enum s2s_msg_type type;
	uint64_t req_id;
	enum s2s_err err, perr;
	uint8_t *enc = NULL;
	size_t enc_len = 0;

	perr = s2s_msg_peek(data, size, &type, &req_id);
	err = s2s_msg_decode(data, size, cs_key, 64u * 1024u, &m);
	if (perr != S2S_OK) {
		FUZZ_CHECK(err == perr);
		goto out;
	}
	FUZZ_CHECK(m.type == type && m.req_id == req_id);
	if (err != S2S_OK)
		goto out;

	if (m.type == S2S_MSG_FETCHED) {
		size_t off = 0, n = 0, pkg_len;
		const uint8_t *pkg;

		while (s2s_msg_fetched_next(&m, &off, &pkg, &pkg_len) ==
		       S2S_OK) {
			FUZZ_CHECK(pkg >= m.packages &&
				   pkg_len <= m.packages_len &&
				   (size_t)(pkg - m.packages) <=
				   m.packages_len - pkg_len);
			n++;
		}
		FUZZ_CHECK(n == m.count);
	}
	if (!has_sealed_part(&m)) {
		FUZZ_CHECK(s2s_msg_encode(&m, NULL, NULL, &enc, &enc_len) ==
			   S2S_OK);
		FUZZ_CHECK(enc_len == size && memcmp(enc, data, size) == 0);
		free(enc);
	}
out:
	s2s_msg_clear(&m);
	return 0;
}
