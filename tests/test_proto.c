/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of core/proto.c: every control message round-trips, and every
 * flipped or missing byte gives a clean error. */
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"

static struct s2s_key *cs_key, *sd_key, *other_key;

static void
keys_setup(void)
{
	ck_assert_int_eq(s2s_key_generate(&cs_key), S2S_OK);
	ck_assert_int_eq(s2s_key_generate(&sd_key), S2S_OK);
	ck_assert_int_eq(s2s_key_generate(&other_key), S2S_OK);
}

static void
keys_teardown(void)
{
	s2s_key_destroy(cs_key);
	s2s_key_destroy(sd_key);
	s2s_key_destroy(other_key);
	cs_key = sd_key = other_key = NULL;
}

static const uint8_t hs_bytes[] = "\x89PNG pretend signature image bytes";
static const uint8_t code_bytes[] = "enrol-1234";

/* Build a fully populated message of type t (i is a variant index). */
static void
make_msg(struct s2s_msg *m, enum s2s_msg_type t)
{
	s2s_msg_init(m, t, 0x0102030405060708ull);
	strcpy(m->id, "alice");
	strcpy(m->id_cs, "cs");
	strcpy(m->id_self, "alice");
	strcpy(m->id_peer, "bob");
	strcpy(m->id_sds, "alice");
	strcpy(m->id_sdr, "bob");
	strcpy(m->peer, "bob");
	strcpy(m->sender, "alice");
	strcpy(m->pair, "alice~bob");
	strcpy(m->reason, "shk mismatch");
	m->code = S2S_ERR_AUTH;
	m->about = S2S_MSG_NEG_SDS;
	m->session = 0xdeadbeefcafef00dull;
	m->role = S2S_ROLE_SDR;
	m->profile = S2S_PROFILE_HARDENED;
	m->accept = 1;
	m->from_seq = 3;
	m->to_seq = 9;
	for (int i = 0; i < S2S_MSG_NONCE_LEN; i++)
		m->nonce[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < S2S_SKCS_LEN; i++) {
		m->skcs[i] = (uint8_t)(i * 3 + 1);
		m->blob[i] = (uint8_t)(i * 5 + 2);
	}
	m->sk_len = 24;
	for (int i = 0; i < m->sk_len; i++)
		m->sk[i] = (uint8_t)(0x40 + i);
	m->shk_len = 32;
	for (int i = 0; i < m->shk_len; i++)
		m->shk[i] = (uint8_t)(0x80 + i);
	s2s_key_public(cs_key, m->pub);
	m->code_bytes = code_bytes;
	m->code_len = sizeof(code_bytes) - 1;
	m->hs = hs_bytes;
	m->hs_len = sizeof(hs_bytes) - 1;
}

/* Who encrypts to whom and who signs, per type. */
static void
keys_for(enum s2s_msg_type t, const struct s2s_key **to,
	 const struct s2s_key **signer, const struct s2s_key **priv)
{
	bool to_cs = t == S2S_MSG_REGISTER || t == S2S_MSG_NEG_SDS ||
		     t == S2S_MSG_NEG_SDR;

	*to = to_cs ? cs_key : sd_key;
	*priv = to_cs ? cs_key : sd_key;
	*signer = t == S2S_MSG_REGISTER ? sd_key : NULL;
}

static const enum s2s_msg_type all_types[] = {
	S2S_MSG_REGISTER, S2S_MSG_PAIR, S2S_MSG_SESSION, S2S_MSG_NEG_SDS,
	S2S_MSG_NEG_SDR, S2S_MSG_FETCH, S2S_MSG_END, S2S_MSG_REGISTERED,
	S2S_MSG_PAIRED, S2S_MSG_NEG_KEYS, S2S_MSG_NEG_FWD, S2S_MSG_NEG_DONE,
	S2S_MSG_FETCHED, S2S_MSG_ENDED, S2S_MSG_REJECT,
};
#define N_TYPES ((int)(sizeof(all_types) / sizeof(all_types[0])))

static void
encode_type(enum s2s_msg_type t, uint8_t **buf, size_t *len)
{
	const struct s2s_key *to, *signer, *priv;
	struct s2s_msg m;
	uint8_t *pk = NULL;
	size_t pk_len = 0;
	uint16_t count = 0;

	keys_for(t, &to, &signer, &priv);
	make_msg(&m, t);
	if (t == S2S_MSG_FETCHED) {
		ck_assert_int_eq(s2s_msg_fetched_append(&pk, &pk_len, &count,
				 (const uint8_t *)"first", 5), S2S_OK);
		ck_assert_int_eq(s2s_msg_fetched_append(&pk, &pk_len, &count,
				 (const uint8_t *)"", 0), S2S_OK);
		ck_assert_int_eq(s2s_msg_fetched_append(&pk, &pk_len, &count,
				 (const uint8_t *)"third!", 6), S2S_OK);
		m.packages = pk;
		m.packages_len = pk_len;
		m.count = count;
	}
	ck_assert_int_eq(s2s_msg_encode(&m, to, signer, buf, len), S2S_OK);
	free(pk);
}

START_TEST(test_roundtrip)
{
	enum s2s_msg_type t = all_types[_i];
	const struct s2s_key *to, *signer, *priv;
	struct s2s_msg want, got;
	uint8_t *buf;
	size_t len;
	enum s2s_msg_type peek_type;
	uint64_t req;

	keys_for(t, &to, &signer, &priv);
	encode_type(t, &buf, &len);
	ck_assert_int_eq(s2s_msg_peek(buf, len, &peek_type, &req), S2S_OK);
	ck_assert_int_eq(peek_type, t);
	ck_assert_uint_eq(req, 0x0102030405060708ull);
	ck_assert_int_eq(s2s_msg_decode(buf, len, priv, 0, &got), S2S_OK);
	make_msg(&want, t);
	ck_assert_int_eq(got.type, t);
	ck_assert_uint_eq(got.req_id, want.req_id);

	switch (t) {
	case S2S_MSG_REGISTER: {
		uint8_t sd_pub[S2S_P256_PUB_LEN];

		s2s_key_public(sd_key, sd_pub);
		ck_assert_mem_eq(got.pub, sd_pub, sizeof(sd_pub));
		ck_assert_str_eq(got.id, "alice");
		ck_assert_uint_eq(got.code_len, want.code_len);
		ck_assert_mem_eq(got.code_bytes, code_bytes, want.code_len);
		ck_assert_uint_eq(got.hs_len, want.hs_len);
		ck_assert_mem_eq(got.hs, hs_bytes, want.hs_len);
		break;
	}
	case S2S_MSG_REGISTERED:
		ck_assert_str_eq(got.id_cs, "cs");
		ck_assert_mem_eq(got.pub, want.pub, S2S_P256_PUB_LEN);
		break;
	case S2S_MSG_PAIR:
		ck_assert_str_eq(got.peer, "bob");
		ck_assert_uint_eq(got.profile, S2S_PROFILE_HARDENED);
		break;
	case S2S_MSG_PAIRED:
		ck_assert_uint_eq(got.status, 0);
		ck_assert_str_eq(got.pair, "alice~bob");
		ck_assert_str_eq(got.peer, "bob");
		ck_assert_uint_eq(got.shk_len, 32);
		ck_assert_mem_eq(got.shk, want.shk, 32);
		break;
	case S2S_MSG_SESSION:
	case S2S_MSG_END:
		ck_assert_str_eq(got.peer, "bob");
		break;
	case S2S_MSG_ENDED:
		ck_assert_str_eq(got.peer, "bob");
		ck_assert_uint_eq(got.session, want.session);
		break;
	case S2S_MSG_NEG_KEYS:
		ck_assert_uint_eq(got.step, 1);
		ck_assert_uint_eq(got.session, want.session);
		ck_assert_mem_eq(got.nonce, want.nonce, S2S_MSG_NONCE_LEN);
		ck_assert_uint_eq(got.role, S2S_ROLE_SDR);
		ck_assert_uint_eq(got.profile, S2S_PROFILE_HARDENED);
		ck_assert_str_eq(got.id_cs, "cs");
		ck_assert_str_eq(got.id_self, "alice");
		ck_assert_str_eq(got.id_peer, "bob");
		ck_assert_mem_eq(got.skcs, want.skcs, S2S_SKCS_LEN);
		ck_assert_uint_eq(got.sk_len, 24);
		ck_assert_mem_eq(got.sk, want.sk, 24);
		break;
	case S2S_MSG_NEG_SDS:
	case S2S_MSG_NEG_FWD:
	case S2S_MSG_NEG_SDR:
	case S2S_MSG_NEG_DONE:
		ck_assert_uint_eq(got.session, want.session);
		ck_assert_mem_eq(got.nonce, want.nonce, S2S_MSG_NONCE_LEN);
		ck_assert_mem_eq(got.blob, want.blob, S2S_SKCS_LEN);
		ck_assert_str_eq(got.id_cs, "cs");
		ck_assert_str_eq(got.id_sds, "alice");
		ck_assert_str_eq(got.id_sdr, "bob");
		ck_assert_mem_eq(got.shk, want.shk, 32);
		if (t == S2S_MSG_NEG_SDR)
			ck_assert_uint_eq(got.accept, 1);
		break;
	case S2S_MSG_FETCH:
		ck_assert_str_eq(got.peer, "bob");
		ck_assert_str_eq(got.sender, "alice");
		ck_assert_uint_eq(got.session, want.session);
		ck_assert_uint_eq(got.from_seq, 3);
		ck_assert_uint_eq(got.to_seq, 9);
		break;
	case S2S_MSG_FETCHED: {
		const uint8_t *pkg;
		size_t off = 0, pkg_len;

		ck_assert_uint_eq(got.count, 3);
		ck_assert_int_eq(s2s_msg_fetched_next(&got, &off, &pkg, &pkg_len), S2S_OK);
		ck_assert_uint_eq(pkg_len, 5);
		ck_assert_mem_eq(pkg, "first", 5);
		ck_assert_int_eq(s2s_msg_fetched_next(&got, &off, &pkg, &pkg_len), S2S_OK);
		ck_assert_uint_eq(pkg_len, 0);
		ck_assert_int_eq(s2s_msg_fetched_next(&got, &off, &pkg, &pkg_len), S2S_OK);
		ck_assert_mem_eq(pkg, "third!", 6);
		ck_assert_int_eq(s2s_msg_fetched_next(&got, &off, &pkg, &pkg_len),
				 S2S_ERR_NOT_FOUND);
		break;
	}
	case S2S_MSG_REJECT:
		ck_assert_uint_eq(got.about, S2S_MSG_NEG_SDS);
		ck_assert_int_eq(got.code, S2S_ERR_AUTH);
		ck_assert_uint_eq(got.session, want.session);
		ck_assert_str_eq(got.reason, "shk mismatch");
		break;
	}
	s2s_msg_clear(&got);
	s2s_msg_clear(&want);
	/* A cleared message holds no secret. */
	for (size_t i = 0; i < sizeof(got.shk); i++)
		ck_assert_uint_eq(got.shk[i], 0);
	free(buf);
}
END_TEST

/* Cutting a message anywhere gives an error, never a crash. */
START_TEST(test_truncate_everywhere)
{
	enum s2s_msg_type t = all_types[_i];
	const struct s2s_key *to, *signer, *priv;
	struct s2s_msg got;
	uint8_t *buf;
	size_t len;

	keys_for(t, &to, &signer, &priv);
	encode_type(t, &buf, &len);
	for (size_t n = 0; n < len; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, buf, n);
		ck_assert_msg(s2s_msg_decode(copy, n, priv, 0, &got) != S2S_OK,
			      "%s truncated to %zu bytes was accepted",
			      s2s_msg_type_name(t), n);
		s2s_msg_clear(&got);
		free(copy);
	}
	/* One byte too many is refused as well. */
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	ck_assert_int_ne(s2s_msg_decode(buf, len + 1, priv, 0, &got), S2S_OK);
	s2s_msg_clear(&got);
	free(buf);
}
END_TEST

/*
 * Flipping any bit after the header of a message with a sealed or signed
 * part is detected: sealed parts carry a MAC, REGISTER a signature over
 * everything, and PAIRED repeats its clear fields inside the sealed part.
 */
START_TEST(test_flip_sealed)
{
	static const enum s2s_msg_type sealed[] = {
		S2S_MSG_REGISTER, S2S_MSG_NEG_KEYS, S2S_MSG_NEG_SDS,
		S2S_MSG_NEG_FWD, S2S_MSG_NEG_SDR, S2S_MSG_NEG_DONE,
		S2S_MSG_PAIRED,
	};
	enum s2s_msg_type t = sealed[_i];
	const struct s2s_key *to, *signer, *priv;
	struct s2s_msg got;
	uint8_t *buf;
	size_t len;

	keys_for(t, &to, &signer, &priv);
	encode_type(t, &buf, &len);
	for (size_t i = S2S_MSG_HDR_LEN; i < len; i++) {
		enum s2s_err err;

		buf[i] ^= 0x01;
		err = s2s_msg_decode(buf, len, priv, 0, &got);
		ck_assert_msg(err != S2S_OK, "%s: byte %zu flipped, accepted",
			      s2s_msg_type_name(t), i);
		s2s_msg_clear(&got);
		buf[i] ^= 0x01;
	}
	free(buf);
}
END_TEST

START_TEST(test_wrong_key)
{
	struct s2s_msg got;
	uint8_t *buf;
	size_t len;

	encode_type(S2S_MSG_NEG_KEYS, &buf, &len);
	ck_assert_int_eq(s2s_msg_decode(buf, len, other_key, 0, &got), S2S_ERR_AUTH);
	s2s_msg_clear(&got);
	ck_assert_int_eq(s2s_msg_decode(buf, len, NULL, 0, &got), S2S_ERR_INVAL);
	s2s_msg_clear(&got);
	free(buf);

	encode_type(S2S_MSG_REGISTER, &buf, &len);
	ck_assert_int_eq(s2s_msg_decode(buf, len, other_key, 0, &got), S2S_ERR_AUTH);
	s2s_msg_clear(&got);
	/* The signature image limit. */
	ck_assert_int_eq(s2s_msg_decode(buf, len, cs_key, 4, &got), S2S_ERR_TOO_BIG);
	s2s_msg_clear(&got);
	free(buf);
}
END_TEST

/* A step cannot be reflected as another step: the sealed step byte. */
START_TEST(test_reflection)
{
	struct s2s_msg got;
	uint8_t *buf;
	size_t len;

	/* NEG_FWD (step 3, for SDR) relabelled NEG_DONE (step 5). */
	encode_type(S2S_MSG_NEG_FWD, &buf, &len);
	buf[5] = S2S_MSG_NEG_DONE;
	ck_assert_int_eq(s2s_msg_decode(buf, len, sd_key, 0, &got), S2S_ERR_FORMAT);
	s2s_msg_clear(&got);
	free(buf);
	/* NEG_SDS (step 2) relabelled NEG_SDR (step 4). */
	encode_type(S2S_MSG_NEG_SDS, &buf, &len);
	buf[5] = S2S_MSG_NEG_SDR;
	ck_assert_int_ne(s2s_msg_decode(buf, len, cs_key, 0, &got), S2S_OK);
	s2s_msg_clear(&got);
	free(buf);
}
END_TEST

START_TEST(test_header_errors)
{
	uint8_t hdr[S2S_MSG_HDR_LEN] = { 'S', '2', 'S', 'C', 1, S2S_MSG_PAIR };
	enum s2s_msg_type t;

	ck_assert_int_eq(s2s_msg_peek(hdr, sizeof(hdr), &t, NULL), S2S_OK);
	ck_assert_int_eq(s2s_msg_peek(hdr, 15, &t, NULL), S2S_ERR_TRUNCATED);
	hdr[4] = 2;
	ck_assert_int_eq(s2s_msg_peek(hdr, sizeof(hdr), &t, NULL), S2S_ERR_VERSION);
	hdr[4] = 1;
	hdr[6] = 1;
	ck_assert_int_eq(s2s_msg_peek(hdr, sizeof(hdr), &t, NULL), S2S_ERR_FORMAT);
	hdr[6] = 0;
	hdr[5] = 0x42;
	ck_assert_int_eq(s2s_msg_peek(hdr, sizeof(hdr), &t, NULL), S2S_ERR_FORMAT);
	hdr[5] = S2S_MSG_PAIR;
	hdr[0] = 'X';
	ck_assert_int_eq(s2s_msg_peek(hdr, sizeof(hdr), &t, NULL), S2S_ERR_FORMAT);
}
END_TEST

START_TEST(test_ids)
{
	char pair[2 * S2S_MSG_ID_MAX + 2];
	char long_id[S2S_MSG_ID_MAX + 2];

	ck_assert(s2s_id_valid("alice"));
	ck_assert(s2s_id_valid("dev-01.site_A"));
	ck_assert(!s2s_id_valid(""));
	ck_assert(!s2s_id_valid("a/b"));
	ck_assert(!s2s_id_valid("a+b"));
	ck_assert(!s2s_id_valid("a#"));
	ck_assert(!s2s_id_valid("a~b"));
	ck_assert(!s2s_id_valid("a b"));
	memset(long_id, 'x', S2S_MSG_ID_MAX);
	long_id[S2S_MSG_ID_MAX] = '\0';
	ck_assert(s2s_id_valid(long_id));
	long_id[S2S_MSG_ID_MAX] = 'x';
	long_id[S2S_MSG_ID_MAX + 1] = '\0';
	ck_assert(!s2s_id_valid(long_id));

	ck_assert_int_eq(s2s_pair_id("bob", "alice", pair), S2S_OK);
	ck_assert_str_eq(pair, "alice~bob");
	ck_assert_int_eq(s2s_pair_id("alice", "bob", pair), S2S_OK);
	ck_assert_str_eq(pair, "alice~bob");
	ck_assert_int_eq(s2s_pair_id("alice", "alice", pair), S2S_ERR_INVAL);
	ck_assert_int_eq(s2s_pair_id("alice", "b/ob", pair), S2S_ERR_INVAL);
}
END_TEST

START_TEST(test_encode_refuses_bad_fields)
{
	struct s2s_msg m;
	uint8_t *buf = NULL;
	size_t len;

	make_msg(&m, S2S_MSG_SESSION);
	strcpy(m.peer, "not/valid");
	ck_assert_int_eq(s2s_msg_encode(&m, NULL, NULL, &buf, &len), S2S_ERR_INVAL);
	make_msg(&m, S2S_MSG_REGISTER);
	ck_assert_int_eq(s2s_msg_encode(&m, cs_key, NULL, &buf, &len), S2S_ERR_INVAL);
	make_msg(&m, S2S_MSG_NEG_KEYS);
	ck_assert_int_eq(s2s_msg_encode(&m, NULL, NULL, &buf, &len), S2S_ERR_INVAL);
	ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(test_token)
{
	char tok[S2S_TOKEN_MAX];
	const uint64_t now = 1800000000ull;

	ck_assert_int_eq(s2s_token_make(sd_key, "alice", now + 300, tok), S2S_OK);
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", tok, strlen(tok), now, 3600), S2S_OK);
	/* Expired, and too far in the future. */
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", tok, strlen(tok), now + 301, 3600),
			 S2S_ERR_TIMEOUT);
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", tok, strlen(tok), now, 60),
			 S2S_ERR_TIMEOUT);
	/* Another id, another key. */
	ck_assert_int_eq(s2s_token_check(sd_key, "alicf", tok, strlen(tok), now, 3600),
			 S2S_ERR_AUTH);
	ck_assert_int_eq(s2s_token_check(other_key, "alice", tok, strlen(tok), now, 3600),
			 S2S_ERR_AUTH);
	/* Fresh nonce per token; bound to the client id (admin form). */
	{
		char t2[S2S_TOKEN_MAX];
		uint8_t n1[S2S_TOKEN_NONCE_LEN], n2[S2S_TOKEN_NONCE_LEN];
		uint64_t exp = 0;

		ck_assert_int_eq(s2s_token_make(sd_key, "alice", now + 300, t2), S2S_OK);
		ck_assert_str_ne(t2, tok);
		ck_assert_int_eq(s2s_token_verify(sd_key, "alice", "alice", tok, strlen(tok),
						  now, 3600, n1, &exp), S2S_OK);
		ck_assert_uint_eq(exp, now + 300);
		ck_assert_int_eq(s2s_token_verify(sd_key, "alice", "alice", t2, strlen(t2),
						  now, 3600, n2, NULL), S2S_OK);
		ck_assert(memcmp(n1, n2, sizeof(n1)) != 0);
		ck_assert_int_eq(s2s_token_make_for(sd_key, "s2s-admin", "ctl-1", now + 300,
						    t2), S2S_OK);
		ck_assert_int_eq(s2s_token_verify(sd_key, "s2s-admin", "ctl-1", t2,
						  strlen(t2), now, 3600, NULL, NULL), S2S_OK);
		ck_assert_int_eq(s2s_token_verify(sd_key, "s2s-admin", "ctl-2", t2,
						  strlen(t2), now, 3600, NULL, NULL), S2S_ERR_AUTH);
		ck_assert_int_eq(s2s_token_verify(sd_key, "ctl-1", "s2s-admin", t2,
						  strlen(t2), now, 3600, NULL, NULL), S2S_ERR_AUTH);
		/* The nonce is signed too. */
		t2[strlen(t2) - 130] ^= 1;
		ck_assert_int_ne(s2s_token_verify(sd_key, "s2s-admin", "ctl-1", t2,
						  strlen(t2), now, 3600, NULL, NULL), S2S_OK);
	}
	/* Every signature digit matters. */
	for (size_t i = strlen(tok) - 128; i < strlen(tok); i++) {
		char saved = tok[i];

		tok[i] = saved == '0' ? '1' : '0';
		ck_assert_int_eq(s2s_token_check(sd_key, "alice", tok, strlen(tok), now, 3600),
				 S2S_ERR_AUTH);
		tok[i] = saved;
	}
	/* A changed expiry breaks the signature. */
	ck_assert_int_eq(s2s_token_make(sd_key, "alice", now + 300, tok), S2S_OK);
	tok[5] = tok[5] == '1' ? '2' : '1';
	ck_assert_int_ne(s2s_token_check(sd_key, "alice", tok, strlen(tok), 0, UINT64_MAX),
			 S2S_OK);
	/* One spelling per token: a leading zero in the expiry is refused. */
	{
		char padded[S2S_TOKEN_MAX + 1];

		ck_assert_int_eq(s2s_token_make(sd_key, "alice", now + 300, tok), S2S_OK);
		snprintf(padded, sizeof(padded), "s2s2:0%s", tok + 5);
		ck_assert_int_eq(s2s_token_check(sd_key, "alice", padded, strlen(padded),
						 now, 3600), S2S_ERR_FORMAT);
	}
	/* Not a token at all. */
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", "hunter2", 7, now, 3600),
			 S2S_ERR_FORMAT);
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", "s2s2::", 6, now, 3600),
			 S2S_ERR_FORMAT);
	/* A protocol v1 token is told apart (the CS refuses it by name). */
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", "s2s1::", 6, now, 3600),
			 S2S_ERR_VERSION);
	ck_assert(s2s_token_is_v1("s2s1:1:ab", 9));
	ck_assert(!s2s_token_is_v1(tok, strlen(tok)));
	ck_assert_int_eq(s2s_token_check(sd_key, "alice", tok, strlen(tok) - 1, now, 3600),
			 S2S_ERR_FORMAT);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codec");

	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_roundtrip, 0, N_TYPES);
	tcase_add_loop_test(tc, test_truncate_everywhere, 0, N_TYPES);
	tcase_add_loop_test(tc, test_flip_sealed, 0, 7);
	tcase_add_test(tc, test_wrong_key);
	tcase_add_test(tc, test_reflection);
	tcase_add_test(tc, test_header_errors);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_encode_refuses_bad_fields);
	tcase_add_test(tc, test_token);
	suite_add_tcase(s, tc);
	return s;
}

S2S_CHECK_MAIN(make_suite)
