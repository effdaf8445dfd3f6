/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_proto_sealed.c - the parsers of the sealed (ECIES) parts of the
 * control messages, which mutation of whole messages cannot reach.
 *
 * Input:
 *   byte 0      the message type: REGISTER, PAIRED, NEG_KEYS, NEG_SDS,
 *               NEG_FWD, NEG_SDR, NEG_DONE (byte % 7)
 *   PAIRED:     byte 1 = L, then L bytes of clear fields (status, pair,
 *               peer, profile as on the wire), then the inner plaintext
 *   others:     the inner plaintext
 * The target seals the plaintext to the fixed CS key with s2s_ecies_seal,
 * frames it as the type requires (REGISTER: the fixed device key and an
 * ECDSA signature over the message), and runs s2s_msg_decode.  The
 * ephemeral key is random, the decoder's view of the input is not.
 * Invariant: a message that decodes is re-encoded by s2s_msg_encode and
 * decodes again to the same fields.
 */
#include "fuzz_common.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"

#define MAX_INNER (64u * 1024u)
#define REQ_ID UINT64_C(0x0102030405060708)

static struct s2s_key *cs_key, *dev_key;

static const enum s2s_msg_type types[] = {
	S2S_MSG_REGISTER, S2S_MSG_PAIRED, S2S_MSG_NEG_KEYS, S2S_MSG_NEG_SDS,
	S2S_MSG_NEG_FWD, S2S_MSG_NEG_SDR, S2S_MSG_NEG_DONE,
};

static void
cleanup(void)
{
	s2s_key_destroy(cs_key);
	s2s_key_destroy(dev_key);
	cs_key = dev_key = NULL;
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cs_key = fuzz_load_key(fuzz_cs_key_pem());
	dev_key = fuzz_load_key(fuzz_dev_key_pem());
	atexit(cleanup);
	return 0;
}

static void
put_be32(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Build the message around the sealed plaintext; NULL if sealing fails. */
static uint8_t *
frame(enum s2s_msg_type type, const uint8_t *clear, size_t clear_len,
      const uint8_t *pt, size_t pt_len, size_t *out_len)
{
	size_t ct_len = s2s_ecies_sealed_len(pt_len), len = 0, got = 0;
	uint8_t *buf = malloc(S2S_MSG_HDR_LEN + S2S_P256_PUB_LEN + clear_len +
			      4 + ct_len + S2S_P256_SIG_LEN);

	FUZZ_CHECK(buf != NULL);
	memcpy(buf, S2S_MSG_MAGIC, 4);
	buf[4] = S2S_MSG_VERSION;
	buf[5] = (uint8_t)type;
	buf[6] = buf[7] = 0;
	for (int i = 0; i < 8; i++)
		buf[8 + i] = (uint8_t)(REQ_ID >> (56 - 8 * i));
	len = S2S_MSG_HDR_LEN;
	if (type == S2S_MSG_REGISTER) {
		s2s_key_public(dev_key, buf + len);
		len += S2S_P256_PUB_LEN;
	}
	if (clear_len) {
		memcpy(buf + len, clear, clear_len);
		len += clear_len;
	}
	if (type == S2S_MSG_REGISTER || type == S2S_MSG_PAIRED) {
		put_be32(buf + len, ct_len);
		len += 4;
	}
	if (s2s_ecies_seal(cs_key, pt_len ? pt : (const uint8_t *)"", pt_len,
			   buf + len, &got) != S2S_OK) {
		free(buf);
		return NULL;
	}
	FUZZ_CHECK(got == ct_len);
	len += ct_len;
	if (type == S2S_MSG_REGISTER) {
		FUZZ_CHECK(s2s_ecdsa_sign(dev_key, buf, len, buf + len) ==
			   S2S_OK);
		len += S2S_P256_SIG_LEN;
	}
	*out_len = len;
	return buf;
}

/* m with the pointers masked, for comparing two decodes. */
static void
masked(const struct s2s_msg *m, struct s2s_msg *out)
{
	memcpy(out, m, sizeof(*out));     /* padding too */
	out->code_bytes = out->hs = out->packages = NULL;
	out->owned = NULL;
	out->owned_len = 0;
}

static bool
same_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_msg m, m2, x1, x2;
	enum s2s_msg_type type;
	const uint8_t *clear = NULL;
	size_t clear_len = 0, len = 0, enc_len = 0;
	uint8_t *buf, *enc = NULL;
	enum s2s_err err;

	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	data++;
	size--;
	if (type == S2S_MSG_PAIRED) {
		if (size < 1 || data[0] > size - 1)
			return 0;
		clear_len = data[0];
		clear = data + 1;
		data += 1 + clear_len;
		size -= 1 + clear_len;
	}
	if (size > MAX_INNER)
		return 0;

	buf = frame(type, clear, clear_len, data, size, &len);
	if (!buf)
		return 0;
	err = s2s_msg_decode(buf, len, cs_key, 16u * 1024u, &m);
	free(buf);
	if (err == S2S_OK) {
		FUZZ_CHECK(m.type == type && m.req_id == REQ_ID);
		FUZZ_CHECK(s2s_msg_encode(&m, cs_key, dev_key, &enc,
					  &enc_len) == S2S_OK);
		FUZZ_CHECK(s2s_msg_decode(enc, enc_len, cs_key, 16u * 1024u,
					  &m2) == S2S_OK);
		free(enc);
		masked(&m, &x1);
		masked(&m2, &x2);
		FUZZ_CHECK(memcmp(&x1, &x2, sizeof(x1)) == 0);
		FUZZ_CHECK(same_bytes(m.code_bytes, m.code_len, m2.code_bytes,
				      m2.code_len));
		FUZZ_CHECK(same_bytes(m.hs, m.hs_len, m2.hs, m2.hs_len));
		s2s_msg_clear(&m2);
		s2s_memzero(&x1, sizeof(x1));
		s2s_memzero(&x2, sizeof(x2));
	}
	s2s_msg_clear(&m);
	return 0;
}
