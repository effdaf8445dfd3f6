/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto.c - the control-message codec (docs/PROTOCOL.md).
 *
 * Fields are written and read with s2s/bytes.h, so each message body is a
 * straight list of fields with one error check at the end.  Inner
 * (encrypted) parts are built in their own buffer, sealed, and wiped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/bytes.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"

#define DEFAULT_MAX_HS (1u << 20)
#define STEP_BLOB_LEN S2S_SKCS_LEN

/* ---- Reading helpers specific to these messages ---------------------- */

static void
r_id(struct s2s_rbuf *r, char out[S2S_MSG_ID_MAX + 1])
{
	s2s_rbuf_str8(r, out, S2S_MSG_ID_MAX + 1);
	if (!r->err && !s2s_id_valid(out))
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
}

/* A str8 key of 1..max bytes. */
static void
r_key8(struct s2s_rbuf *r, uint8_t *out, uint8_t *out_len, size_t max)
{
	uint8_t n = s2s_rbuf_u8(r);
	const uint8_t *p = s2s_rbuf_take(r, n);

	if (!p)
		return;
	if (n == 0 || n > max) {
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		return;
	}
	memcpy(out, p, n);
	*out_len = n;
}

/* ---- Identities ---------------------------------------------------------- */

bool
s2s_id_valid_len(const char *id, size_t len)
{
	if (len == 0 || len > S2S_MSG_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

bool
s2s_id_valid(const char *id)
{
	size_t n = 0;

	while (n <= S2S_MSG_ID_MAX && id[n])
		n++;
	return s2s_id_valid_len(id, n);
}

enum s2s_err
s2s_pair_id(const char *a, const char *b, char out[2 * S2S_MSG_ID_MAX + 2])
{
	int c;

	if (!s2s_id_valid(a) || !s2s_id_valid(b))
		return S2S_ERR_INVAL;
	c = strcmp(a, b);
	if (c == 0)
		return S2S_ERR_INVAL;
	snprintf(out, 2 * S2S_MSG_ID_MAX + 2, "%s~%s", c < 0 ? a : b,
		 c < 0 ? b : a);
	return S2S_OK;
}

bool
s2s_pair_id_valid(const char *pair)
{
	char a[S2S_MSG_ID_MAX + 1], b[S2S_MSG_ID_MAX + 1];
	const char *sep = strchr(pair, '~');
	size_t la;

	if (!sep)
		return false;
	la = (size_t)(sep - pair);
	if (la == 0 || la > S2S_MSG_ID_MAX || strlen(sep + 1) > S2S_MSG_ID_MAX)
		return false;
	memcpy(a, pair, la);
	a[la] = '\0';
	strcpy(b, sep + 1);
	return s2s_id_valid(a) && s2s_id_valid(b) && strcmp(a, b) < 0;
}

static bool
reason_valid(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* ---- Messages ------------------------------------------------------------ */

const char *
s2s_msg_type_name(int type)
{
	switch (type) {
	case S2S_MSG_REGISTER: return "REGISTER";
	case S2S_MSG_PAIR: return "PAIR";
	case S2S_MSG_SESSION: return "SESSION";
	case S2S_MSG_NEG_SDS: return "NEG_SDS";
	case S2S_MSG_NEG_SDR: return "NEG_SDR";
	case S2S_MSG_FETCH: return "FETCH";
	case S2S_MSG_END: return "END";
	case S2S_MSG_REGISTERED: return "REGISTERED";
	case S2S_MSG_PAIRED: return "PAIRED";
	case S2S_MSG_NEG_KEYS: return "NEG_KEYS";
	case S2S_MSG_NEG_FWD: return "NEG_FWD";
	case S2S_MSG_NEG_DONE: return "NEG_DONE";
	case S2S_MSG_FETCHED: return "FETCHED";
	case S2S_MSG_ENDED: return "ENDED";
	case S2S_MSG_REJECT: return "REJECT";
	}
	return "UNKNOWN";
}

static bool
type_known(int type)
{
	return strcmp(s2s_msg_type_name(type), "UNKNOWN") != 0;
}

/* The step number carried inside each negotiation message. */
static uint8_t
type_step(enum s2s_msg_type t)
{
	switch (t) {
	case S2S_MSG_NEG_KEYS: return 1;
	case S2S_MSG_NEG_SDS: return 2;
	case S2S_MSG_NEG_FWD: return 3;
	case S2S_MSG_NEG_SDR: return 4;
	case S2S_MSG_NEG_DONE: return 5;
	default: return 0;
	}
}

void
s2s_msg_init(struct s2s_msg *m, enum s2s_msg_type type, uint64_t req_id)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->req_id = req_id;
	m->step = type_step(type);
}

void
s2s_msg_clear(struct s2s_msg *m)
{
	if (m->owned) {
		s2s_memzero(m->owned, m->owned_len);
		free(m->owned);
	}
	s2s_memzero(m, sizeof(*m));
}

enum s2s_err
s2s_msg_peek(const uint8_t *buf, size_t len, enum s2s_msg_type *type,
	     uint64_t *req_id)
{
	if (len < S2S_MSG_HDR_LEN)
		return S2S_ERR_TRUNCATED;
	if (memcmp(buf, S2S_MSG_MAGIC, 4))
		return S2S_ERR_FORMAT;
	if (buf[4] != S2S_MSG_VERSION)
		return S2S_ERR_VERSION;
	if (buf[6] || buf[7] || !type_known(buf[5]))
		return S2S_ERR_FORMAT;
	if (type)
		*type = (enum s2s_msg_type)buf[5];
	if (req_id) {
		uint64_t v = 0;

		for (int i = 8; i < 16; i++)
			v = v << 8 | buf[i];
		*req_id = v;
	}
	return S2S_OK;
}

/* ---- Encoding ------------------------------------------------------------ */

/* The inner (to-be-encrypted) part of the negotiation steps. */
static void
enc_step_inner(struct s2s_wbuf *w, const struct s2s_msg *m)
{
	uint8_t step = type_step(m->type);

	s2s_wbuf_u8(w, step);
	s2s_wbuf_be(w, m->session, 8);
	s2s_wbuf_put(w, m->nonce, S2S_MSG_NONCE_LEN);
	if (m->type == S2S_MSG_NEG_KEYS) {
		s2s_wbuf_u8(w, m->role);
		s2s_wbuf_u8(w, m->profile);
		s2s_wbuf_str8(w, m->id_cs);
		s2s_wbuf_str8(w, m->id_self);
		s2s_wbuf_str8(w, m->id_peer);
		s2s_wbuf_bytes16(w, m->skcs, S2S_SKCS_LEN);
		s2s_wbuf_bytes8(w, m->sk, m->sk_len);
		return;
	}
	if (m->type == S2S_MSG_NEG_SDR)
		s2s_wbuf_u8(w, m->accept);
	s2s_wbuf_put(w, m->blob, STEP_BLOB_LEN);
	s2s_wbuf_str8(w, m->id_cs);
	s2s_wbuf_str8(w, m->id_sds);
	s2s_wbuf_str8(w, m->id_sdr);
	s2s_wbuf_bytes8(w, m->shk, m->shk_len);
}

/* Seal inner for `to` and append it: as bytes32, or raw to the end. */
static void
w_sealed(struct s2s_wbuf *w, struct s2s_wbuf *inner, const struct s2s_key *to,
	 bool length_prefixed)
{
	size_t ct_len = 0;
	size_t need;

	if (!w->err && inner->err)
		w->err = inner->err;
	if (w->err)
		return;
	if (!to) {
		w->err = S2S_ERR_INVAL;
		return;
	}
	need = s2s_ecies_sealed_len(inner->len);
	if (length_prefixed)
		s2s_wbuf_be(w, need, 4);
	s2s_wbuf_reserve(w, need);
	if (w->err)
		return;
	w->err = s2s_ecies_seal(to, inner->p ? inner->p : (const uint8_t *)"",
				inner->len, w->p + w->len, &ct_len);
	if (!w->err && ct_len != need)
		w->err = S2S_ERR_CRYPTO;
	if (!w->err)
		w->len += ct_len;
}

static bool
ids_valid_for_encode(const struct s2s_msg *m)
{
	switch (m->type) {
	case S2S_MSG_REGISTER:
		return s2s_id_valid(m->id);
	case S2S_MSG_REGISTERED:
		return s2s_id_valid(m->id_cs);
	case S2S_MSG_PAIR:
	case S2S_MSG_SESSION:
	case S2S_MSG_END:
	case S2S_MSG_ENDED:
		return s2s_id_valid(m->peer);
	case S2S_MSG_PAIRED:
		return s2s_id_valid(m->peer) && s2s_pair_id_valid(m->pair);
	case S2S_MSG_FETCH:
		return s2s_id_valid(m->peer) && s2s_id_valid(m->sender);
	case S2S_MSG_NEG_KEYS:
		return s2s_id_valid(m->id_cs) && s2s_id_valid(m->id_self) &&
		       s2s_id_valid(m->id_peer);
	case S2S_MSG_NEG_SDS:
	case S2S_MSG_NEG_FWD:
	case S2S_MSG_NEG_SDR:
	case S2S_MSG_NEG_DONE:
		return s2s_id_valid(m->id_cs) && s2s_id_valid(m->id_sds) &&
		       s2s_id_valid(m->id_sdr);
	case S2S_MSG_REJECT:
		return reason_valid(m->reason);
	case S2S_MSG_FETCHED:
		return true;
	}
	return false;
}

enum s2s_err
s2s_msg_encode(const struct s2s_msg *m, const struct s2s_key *to,
	       const struct s2s_key *signer, uint8_t **out, size_t *out_len)
{
	struct s2s_wbuf w = { 0 }, in = { 0 };
	uint8_t sig[S2S_P256_SIG_LEN];
	uint8_t pub[S2S_P256_PUB_LEN];
	enum s2s_err err;

	if (!type_known(m->type) || !ids_valid_for_encode(m))
		return S2S_ERR_INVAL;

	s2s_wbuf_put(&w, S2S_MSG_MAGIC, 4);
	s2s_wbuf_u8(&w, S2S_MSG_VERSION);
	s2s_wbuf_u8(&w, (uint8_t)m->type);
	s2s_wbuf_be(&w, 0, 2);
	s2s_wbuf_be(&w, m->req_id, 8);

	switch (m->type) {
	case S2S_MSG_REGISTER:
		if (!signer || !s2s_key_has_private(signer)) {
			err = S2S_ERR_INVAL;
			goto out_wipe;
		}
		s2s_key_public(signer, pub);
		s2s_wbuf_put(&w, pub, sizeof(pub));
		s2s_wbuf_str8(&in, m->id);
		s2s_wbuf_bytes16(&in, m->code_bytes, m->code_len);
		s2s_wbuf_bytes32(&in, m->hs, m->hs_len);
		w_sealed(&w, &in, to, true);
		if (w.err)
			break;
		w.err = s2s_ecdsa_sign(signer, w.p, w.len, sig);
		s2s_wbuf_put(&w, sig, sizeof(sig));
		break;
	case S2S_MSG_REGISTERED:
		s2s_wbuf_str8(&w, m->id_cs);
		s2s_wbuf_put(&w, m->pub, S2S_P256_PUB_LEN);
		break;
	case S2S_MSG_PAIR:
		s2s_wbuf_str8(&w, m->peer);
		s2s_wbuf_u8(&w, m->profile);
		break;
	case S2S_MSG_PAIRED:
		s2s_wbuf_u8(&w, m->status);
		s2s_wbuf_str8(&w, m->pair);
		s2s_wbuf_str8(&w, m->peer);
		s2s_wbuf_u8(&w, m->profile);
		if (m->status != 0) {
			s2s_wbuf_be(&w, 0, 4);
			break;
		}
		s2s_wbuf_str8(&in, m->pair);
		s2s_wbuf_str8(&in, m->peer);
		s2s_wbuf_u8(&in, m->profile);
		s2s_wbuf_bytes8(&in, m->shk, m->shk_len);
		w_sealed(&w, &in, to, true);
		break;
	case S2S_MSG_SESSION:
	case S2S_MSG_END:
		s2s_wbuf_str8(&w, m->peer);
		break;
	case S2S_MSG_ENDED:
		s2s_wbuf_str8(&w, m->peer);
		s2s_wbuf_be(&w, m->session, 8);
		break;
	case S2S_MSG_NEG_KEYS:
	case S2S_MSG_NEG_SDS:
	case S2S_MSG_NEG_FWD:
	case S2S_MSG_NEG_SDR:
	case S2S_MSG_NEG_DONE:
		enc_step_inner(&in, m);
		w_sealed(&w, &in, to, false);
		break;
	case S2S_MSG_FETCH:
		s2s_wbuf_str8(&w, m->peer);
		s2s_wbuf_str8(&w, m->sender);
		s2s_wbuf_be(&w, m->session, 8);
		s2s_wbuf_be(&w, m->from_seq, 8);
		s2s_wbuf_be(&w, m->to_seq, 8);
		if (m->has_ack)
			s2s_wbuf_be(&w, m->ack, 8);
		break;
	case S2S_MSG_FETCHED:
		s2s_wbuf_be(&w, m->session, 8);
		s2s_wbuf_be(&w, m->count, 2);
		s2s_wbuf_put(&w, m->packages, m->packages_len);
		if (m->has_ack)
			s2s_wbuf_be(&w, m->ack, 8);
		break;
	case S2S_MSG_REJECT:
		s2s_wbuf_u8(&w, m->about);
		s2s_wbuf_be(&w, (uint64_t)(m->code < 0 ? -m->code : m->code), 2);
		s2s_wbuf_be(&w, m->session, 8);
		s2s_wbuf_str8(&w, m->reason);
		break;
	}
	err = w.err;
	if (!err) {
		*out = w.p;
		*out_len = w.len;
		w.p = NULL;
	}
out_wipe:
	s2s_wbuf_wipe(&in);
	s2s_wbuf_wipe(&w);
	S2S_WIPE(sig);
	return err;
}

/* ---- Decoding ------------------------------------------------------------ */

/*
 * Decrypt n bytes at ct with priv into m->owned (replacing nothing: each
 * message has at most one sealed part).
 */
static enum s2s_err
open_sealed(struct s2s_msg *m, const struct s2s_key *priv, const uint8_t *ct,
	    size_t n, struct s2s_rbuf *inner)
{
	enum s2s_err err;
	size_t pt_len = 0;

	if (!priv)
		return S2S_ERR_INVAL;
	m->owned = malloc(n ? n : 1);
	if (!m->owned)
		return S2S_ERR_NOMEM;
	m->owned_len = n;
	err = s2s_ecies_open(priv, ct, n, m->owned, &pt_len);
	if (err)
		return err;
	inner->p = m->owned;
	inner->len = pt_len;
	inner->off = 0;
	inner->err = S2S_OK;
	return S2S_OK;
}

static void
dec_step_inner(struct s2s_rbuf *r, struct s2s_msg *m)
{
	uint8_t step = s2s_rbuf_u8(r);
	size_t n;

	m->step = step;
	if (!r->err && step != type_step(m->type))
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
	m->session = s2s_rbuf_be(r, 8);
	s2s_rbuf_fixed(r, m->nonce, S2S_MSG_NONCE_LEN);
	if (m->type == S2S_MSG_NEG_KEYS) {
		const uint8_t *skcs;

		m->role = s2s_rbuf_u8(r);
		m->profile = s2s_rbuf_u8(r);
		r_id(r, m->id_cs);
		r_id(r, m->id_self);
		r_id(r, m->id_peer);
		skcs = s2s_rbuf_bytes(r, 2, &n);
		if (skcs && n != S2S_SKCS_LEN)
			s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		else if (skcs)
			memcpy(m->skcs, skcs, S2S_SKCS_LEN);
		r_key8(r, m->sk, &m->sk_len, S2S_SK_MAX);
		if (!r->err && m->role != S2S_ROLE_SDS && m->role != S2S_ROLE_SDR)
			s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		if (!r->err && !s2s_profile_name((enum s2s_profile)m->profile))
			s2s_rbuf_fail(r, S2S_ERR_PROFILE);
	} else {
		if (m->type == S2S_MSG_NEG_SDR) {
			m->accept = s2s_rbuf_u8(r);
			if (!r->err && m->accept > 1)
				s2s_rbuf_fail(r, S2S_ERR_FORMAT);
		}
		s2s_rbuf_fixed(r, m->blob, STEP_BLOB_LEN);
		r_id(r, m->id_cs);
		r_id(r, m->id_sds);
		r_id(r, m->id_sdr);
		r_key8(r, m->shk, &m->shk_len, S2S_SHK_MAX);
	}
	if (!r->err && m->session == 0)
		s2s_rbuf_fail(r, S2S_ERR_FORMAT);
	s2s_rbuf_end(r);
}

static enum s2s_err
dec_register(struct s2s_rbuf *r, struct s2s_msg *m, const struct s2s_key *priv,
	     size_t max_hs)
{
	struct s2s_key *sd = NULL;
	struct s2s_rbuf in = { 0 };
	const uint8_t *ct, *sig;
	size_t ct_len, signed_len;
	enum s2s_err err;

	s2s_rbuf_fixed(r, m->pub, S2S_P256_PUB_LEN);
	ct = s2s_rbuf_bytes(r, 4, &ct_len);
	signed_len = r->off;
	sig = s2s_rbuf_take(r, S2S_P256_SIG_LEN);
	s2s_rbuf_end(r);
	if (r->err)
		return r->err;
	/* Proof of possession first: it is cheaper to refuse than decrypt. */
	err = s2s_key_from_public(m->pub, &sd);
	if (err)
		return err == S2S_ERR_NOMEM ? err : S2S_ERR_FORMAT;
	err = s2s_ecdsa_verify(sd, r->p, signed_len, sig);
	s2s_key_destroy(sd);
	if (err)
		return S2S_ERR_AUTH;
	err = open_sealed(m, priv, ct, ct_len, &in);
	if (err)
		return err;
	r_id(&in, m->id);
	m->code_bytes = s2s_rbuf_bytes(&in, 2, &m->code_len);
	m->hs = s2s_rbuf_bytes(&in, 4, &m->hs_len);
	s2s_rbuf_end(&in);
	if (in.err)
		return in.err;
	if (m->hs_len > (max_hs ? max_hs : DEFAULT_MAX_HS))
		return S2S_ERR_TOO_BIG;
	return S2S_OK;
}

static enum s2s_err
dec_paired(struct s2s_rbuf *r, struct s2s_msg *m, const struct s2s_key *priv)
{
	struct s2s_rbuf in = { 0 };
	char pair[sizeof(m->pair)], peer[sizeof(m->peer)];
	const uint8_t *ct;
	size_t ct_len;
	uint8_t profile;
	enum s2s_err err;

	m->status = s2s_rbuf_u8(r);
	s2s_rbuf_str8(r, m->pair, sizeof(m->pair));
	r_id(r, m->peer);
	m->profile = s2s_rbuf_u8(r);
	ct = s2s_rbuf_bytes(r, 4, &ct_len);
	s2s_rbuf_end(r);
	if (r->err)
		return r->err;
	if (!s2s_pair_id_valid(m->pair) || m->status > 1)
		return S2S_ERR_FORMAT;
	if (m->status == 1)
		return ct_len ? S2S_ERR_FORMAT : S2S_OK;
	err = open_sealed(m, priv, ct, ct_len, &in);
	if (err)
		return err;
	s2s_rbuf_str8(&in, pair, sizeof(pair));
	r_id(&in, peer);
	profile = s2s_rbuf_u8(&in);
	r_key8(&in, m->shk, &m->shk_len, S2S_SHK_MAX);
	s2s_rbuf_end(&in);
	if (in.err)
		return in.err;
	/* The clear fields must repeat what the CS sealed. */
	if (strcmp(pair, m->pair) || strcmp(peer, m->peer) ||
	    profile != m->profile)
		return S2S_ERR_AUTH;
	if (!s2s_profile_name((enum s2s_profile)m->profile))
		return S2S_ERR_PROFILE;
	return S2S_OK;
}

static enum s2s_err
dec_fetched(struct s2s_rbuf *r, struct s2s_msg *m)
{
	size_t off = 0, n = 0;
	const uint8_t *pkg;
	size_t pkg_len;
	enum s2s_err err;

	m->session = s2s_rbuf_be(r, 8);
	m->count = (uint16_t)s2s_rbuf_be(r, 2);
	if (r->err)
		return r->err;
	if (m->count > S2S_MSG_FETCH_MAX)
		return S2S_ERR_TOO_BIG;
	m->owned_len = r->len - r->off;
	m->owned = malloc(m->owned_len ? m->owned_len : 1);
	if (!m->owned)
		return S2S_ERR_NOMEM;
	memcpy(m->owned, r->p + r->off, m->owned_len);
	m->packages = m->owned;
	m->packages_len = m->owned_len;
	/* count packages, then (v1.1) an 8-byte ack, then nothing */
	while (n < m->count &&
	       (err = s2s_msg_fetched_next(m, &off, &pkg, &pkg_len)) == S2S_OK)
		n++;
	if (n != m->count)
		return S2S_ERR_FORMAT;
	if (m->packages_len - off == 8) {
		struct s2s_rbuf t = { m->packages + off, 8, 0, S2S_OK };

		m->ack = s2s_rbuf_be(&t, 8);
		m->has_ack = true;
		m->packages_len = off;
	}
	return off == m->packages_len ? S2S_OK : S2S_ERR_FORMAT;
}

enum s2s_err
s2s_msg_decode(const uint8_t *buf, size_t len, const struct s2s_key *priv,
	       size_t max_hs, struct s2s_msg *m)
{
	struct s2s_rbuf r = { buf, len, S2S_MSG_HDR_LEN, S2S_OK };
	struct s2s_rbuf in = { 0 };
	enum s2s_msg_type type;
	uint64_t req_id;
	enum s2s_err err;

	memset(m, 0, sizeof(*m));
	err = s2s_msg_peek(buf, len, &type, &req_id);
	if (err)
		return err;
	m->type = type;
	m->req_id = req_id;

	switch (type) {
	case S2S_MSG_REGISTER:
		return dec_register(&r, m, priv, max_hs);
	case S2S_MSG_PAIRED:
		return dec_paired(&r, m, priv);
	case S2S_MSG_FETCHED:
		return dec_fetched(&r, m);
	case S2S_MSG_REGISTERED:
		r_id(&r, m->id_cs);
		s2s_rbuf_fixed(&r, m->pub, S2S_P256_PUB_LEN);
		break;
	case S2S_MSG_PAIR:
		r_id(&r, m->peer);
		m->profile = s2s_rbuf_u8(&r);
		if (!r.err && m->profile &&
		    !s2s_profile_name((enum s2s_profile)m->profile))
			s2s_rbuf_fail(&r, S2S_ERR_PROFILE);
		break;
	case S2S_MSG_SESSION:
	case S2S_MSG_END:
		r_id(&r, m->peer);
		break;
	case S2S_MSG_ENDED:
		r_id(&r, m->peer);
		m->session = s2s_rbuf_be(&r, 8);
		break;
	case S2S_MSG_FETCH:
		r_id(&r, m->peer);
		r_id(&r, m->sender);
		m->session = s2s_rbuf_be(&r, 8);
		m->from_seq = s2s_rbuf_be(&r, 8);
		m->to_seq = s2s_rbuf_be(&r, 8);
		if (!r.err && (m->from_seq == 0 || m->to_seq < m->from_seq))
			s2s_rbuf_fail(&r, S2S_ERR_FORMAT);
		if (!r.err && r.len - r.off == 8) {     /* v1.1: ack */
			m->ack = s2s_rbuf_be(&r, 8);
			m->has_ack = true;
		}
		break;
	case S2S_MSG_REJECT:
		m->about = s2s_rbuf_u8(&r);
		m->code = -(int)s2s_rbuf_be(&r, 2);
		m->session = s2s_rbuf_be(&r, 8);
		s2s_rbuf_str8(&r, m->reason, sizeof(m->reason));
		if (!r.err && !reason_valid(m->reason))
			s2s_rbuf_fail(&r, S2S_ERR_FORMAT);
		break;
	case S2S_MSG_NEG_KEYS:
	case S2S_MSG_NEG_SDS:
	case S2S_MSG_NEG_FWD:
	case S2S_MSG_NEG_SDR:
	case S2S_MSG_NEG_DONE:
		err = open_sealed(m, priv, buf + r.off, len - r.off, &in);
		if (err)
			return err;
		dec_step_inner(&in, m);
		/* The plaintext was copied into m; drop it now. */
		s2s_memzero(m->owned, m->owned_len);
		free(m->owned);
		m->owned = NULL;
		m->owned_len = 0;
		return in.err;
	}
	s2s_rbuf_end(&r);
	return r.err;
}

/* ---- FETCHED payload ------------------------------------------------------ */

enum s2s_err
s2s_msg_fetched_append(uint8_t **buf, size_t *len, uint16_t *count,
		       const uint8_t *pkg, size_t pkg_len)
{
	uint8_t *nb;

	if (*count >= S2S_MSG_FETCH_MAX)
		return S2S_ERR_TOO_BIG;
	if (pkg_len > 0xffffffffu || *len > SIZE_MAX - 4 - pkg_len)
		return S2S_ERR_TOO_BIG;
	/* Packages are not secret (they travel in clear): realloc is fine. */
	nb = realloc(*buf, *len + 4 + pkg_len);
	if (!nb)
		return S2S_ERR_NOMEM;
	for (int i = 0; i < 4; i++)
		nb[*len + (size_t)i] = (uint8_t)(pkg_len >> (24 - 8 * i));
	memcpy(nb + *len + 4, pkg, pkg_len);
	*buf = nb;
	*len += 4 + pkg_len;
	(*count)++;
	return S2S_OK;
}

enum s2s_err
s2s_msg_fetched_next(const struct s2s_msg *m, size_t *off,
		     const uint8_t **pkg, size_t *pkg_len)
{
	struct s2s_rbuf r = { m->packages, m->packages_len, *off, S2S_OK };

	if (*off == m->packages_len)
		return S2S_ERR_NOT_FOUND;
	*pkg = s2s_rbuf_bytes(&r, 4, pkg_len);
	if (r.err)
		return S2S_ERR_FORMAT;
	*off = r.off;
	return S2S_OK;
}

/* ---- Connect tokens (protocol v2) ------------------------------------------ */

#define TOKEN_PREFIX "s2s2:"
#define TOKEN_PREFIX_V1 "s2s1:"
#define TOKEN_LABEL "s2s-connect-v2"
#define TOKEN_SIGNED_MAX (sizeof(TOKEN_LABEL) + 2 * (S2S_MSG_ID_MAX + 1) + \
			  8 + S2S_TOKEN_NONCE_LEN)

/* "s2s-connect-v2" 0x00 user 0x00 client_id 0x00 be64(exp) nonce */
static enum s2s_err
token_signed_bytes(const char *user, const char *client_id, uint64_t exp,
		   const uint8_t nonce[S2S_TOKEN_NONCE_LEN], uint8_t *buf,
		   size_t *n)
{
	size_t lab = sizeof(TOKEN_LABEL), ul, cl, off;

	if (!user || !client_id || !s2s_id_valid(user) ||
	    !s2s_id_valid(client_id))
		return S2S_ERR_INVAL;
	ul = strlen(user);
	cl = strlen(client_id);
	memcpy(buf, TOKEN_LABEL, lab);          /* includes the 0x00 */
	off = lab;
	memcpy(buf + off, user, ul + 1);
	off += ul + 1;
	memcpy(buf + off, client_id, cl + 1);
	off += cl + 1;
	for (int i = 0; i < 8; i++)
		buf[off++] = (uint8_t)(exp >> (56 - 8 * i));
	memcpy(buf + off, nonce, S2S_TOKEN_NONCE_LEN);
	*n = off + S2S_TOKEN_NONCE_LEN;
	return S2S_OK;
}

static size_t
put_hex(char *out, size_t room, const uint8_t *b, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	if (room < 2 * n + 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = '\0';
	return 2 * n;
}

enum s2s_err
s2s_token_make_for(const struct s2s_key *priv, const char *user,
		   const char *client_id, uint64_t exp, char out[S2S_TOKEN_MAX])
{
	uint8_t msg[TOKEN_SIGNED_MAX];
	uint8_t nonce[S2S_TOKEN_NONCE_LEN];
	uint8_t sig[S2S_P256_SIG_LEN];
	size_t n, off;
	enum s2s_err err;

	out[0] = '\0';
	err = s2s_random(nonce, sizeof(nonce));
	if (err)
		return err;
	err = token_signed_bytes(user, client_id, exp, nonce, msg, &n);
	if (err)
		return err;
	err = s2s_ecdsa_sign(priv, msg, n, sig);
	if (err)
		return err;
	off = (size_t)snprintf(out, S2S_TOKEN_MAX, TOKEN_PREFIX "%" PRIu64 ":",
			       exp);
	off += put_hex(out + off, S2S_TOKEN_MAX - off, nonce, sizeof(nonce));
	out[off++] = ':';
	put_hex(out + off, S2S_TOKEN_MAX - off, sig, sizeof(sig));
	return S2S_OK;
}

enum s2s_err
s2s_token_make(const struct s2s_key *priv, const char *id, uint64_t exp,
	       char out[S2S_TOKEN_MAX])
{
	return s2s_token_make_for(priv, id, id, exp, out);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* n bytes from 2n lowercase hex digits; false on any other character. */
static bool
get_hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		int hi = hexval(s[2 * k]), lo = hexval(s[2 * k + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[k] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool
s2s_token_is_v1(const char *token, size_t token_len)
{
	const size_t plen = sizeof(TOKEN_PREFIX_V1) - 1;

	return token && token_len >= plen &&
	       memcmp(token, TOKEN_PREFIX_V1, plen) == 0;
}

enum s2s_err
s2s_token_verify(const struct s2s_key *pub, const char *user,
		 const char *client_id, const char *token, size_t token_len,
		 uint64_t now, uint64_t max_age,
		 uint8_t nonce[S2S_TOKEN_NONCE_LEN], uint64_t *exp_out)
{
	uint8_t msg[TOKEN_SIGNED_MAX];
	uint8_t sig[S2S_P256_SIG_LEN];
	uint8_t nn[S2S_TOKEN_NONCE_LEN];
	const size_t plen = sizeof(TOKEN_PREFIX) - 1;
	const size_t tail = 2 * S2S_TOKEN_NONCE_LEN + 1 + 2 * S2S_P256_SIG_LEN;
	uint64_t exp = 0;
	size_t i = plen, n, digits = 0;
	enum s2s_err err;

	if (s2s_token_is_v1(token, token_len))
		return S2S_ERR_VERSION;
	if (!token || token_len < plen || memcmp(token, TOKEN_PREFIX, plen))
		return S2S_ERR_FORMAT;
	/* One spelling per token: no leading zeros. */
	if (i + 1 < token_len && token[i] == '0' && token[i + 1] != ':')
		return S2S_ERR_FORMAT;
	for (; i < token_len && token[i] >= '0' && token[i] <= '9'; i++) {
		if (++digits > 19)
			return S2S_ERR_FORMAT;
		exp = exp * 10 + (uint64_t)(token[i] - '0');
	}
	if (digits == 0 || i >= token_len || token[i] != ':' ||
	    token_len - i - 1 != tail)
		return S2S_ERR_FORMAT;
	i++;
	if (!get_hex(token + i, nn, sizeof(nn)) ||
	    token[i + 2 * S2S_TOKEN_NONCE_LEN] != ':' ||
	    !get_hex(token + i + 2 * S2S_TOKEN_NONCE_LEN + 1, sig, sizeof(sig)))
		return S2S_ERR_FORMAT;
	err = token_signed_bytes(user, client_id, exp, nn, msg, &n);
	if (err)
		return S2S_ERR_FORMAT;
	if (exp < now || exp - now > max_age)
		return S2S_ERR_TIMEOUT;
	if (s2s_ecdsa_verify(pub, msg, n, sig))
		return S2S_ERR_AUTH;
	if (nonce)
		memcpy(nonce, nn, sizeof(nn));
	if (exp_out)
		*exp_out = exp;
	return S2S_OK;
}

enum s2s_err
s2s_token_check(const struct s2s_key *pub, const char *id, const char *token,
		size_t token_len, uint64_t now, uint64_t max_age)
{
	return s2s_token_verify(pub, id, id, token, token_len, now, max_age,
				NULL, NULL);
}

/* ---- Enrolment logins (protocol v2) ------------------------------------ */

#define ENROL_PREFIX "s2s2e:"
#define ENROL_LABEL "s2s-enrol-v2"

void
s2s_enrol_code_hash(const char *id, const uint8_t *code, size_t len,
		    uint8_t out[S2S_SHA256_LEN])
{
	static const char label[] = "s2s/v1/enrol";
	struct s2s_iov v[3] = {
		{ label, sizeof(label) }, { id, strlen(id) + 1 }, { code, len },
	};

	s2s_sha256v(v, 3, out);
}

static enum s2s_err
enrol_mac(const char *id, const uint8_t hash[S2S_SHA256_LEN], uint64_t exp,
	  const uint8_t nonce[S2S_TOKEN_NONCE_LEN], uint8_t mac[S2S_SHA256_LEN])
{
	uint8_t be[8];
	struct s2s_iov v[4] = {
		{ ENROL_LABEL, sizeof(ENROL_LABEL) }, { id, strlen(id) + 1 },
		{ be, sizeof(be) }, { nonce, S2S_TOKEN_NONCE_LEN },
	};

	if (!s2s_id_valid(id))
		return S2S_ERR_INVAL;
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(exp >> (56 - 8 * i));
	return s2s_hmac_sha256v(hash, S2S_SHA256_LEN, v, 4, mac);
}

enum s2s_err
s2s_enrol_token_make(const char *id, const uint8_t *code, size_t code_len,
		     uint64_t exp, char out[S2S_TOKEN_MAX])
{
	uint8_t hash[S2S_SHA256_LEN], mac[S2S_SHA256_LEN];
	uint8_t nonce[S2S_TOKEN_NONCE_LEN];
	size_t off;
	enum s2s_err err;

	out[0] = '\0';
	if (!id || !s2s_id_valid(id) || (!code && code_len))
		return S2S_ERR_INVAL;
	err = s2s_random(nonce, sizeof(nonce));
	if (err)
		return err;
	s2s_enrol_code_hash(id, code, code_len, hash);
	err = enrol_mac(id, hash, exp, nonce, mac);
	s2s_memzero(hash, sizeof(hash));
	if (err)
		return err;
	off = (size_t)snprintf(out, S2S_TOKEN_MAX, ENROL_PREFIX "%" PRIu64 ":",
			       exp);
	off += put_hex(out + off, S2S_TOKEN_MAX - off, nonce, sizeof(nonce));
	out[off++] = ':';
	put_hex(out + off, S2S_TOKEN_MAX - off, mac, sizeof(mac));
	return S2S_OK;
}

bool
s2s_enrol_token_is(const char *token, size_t token_len)
{
	const size_t plen = sizeof(ENROL_PREFIX) - 1;

	return token && token_len >= plen &&
	       memcmp(token, ENROL_PREFIX, plen) == 0;
}

enum s2s_err
s2s_enrol_token_verify(const char *id, const uint8_t hash[S2S_SHA256_LEN],
		       const char *token, size_t token_len, uint64_t now,
		       uint64_t max_age, uint8_t nonce[S2S_TOKEN_NONCE_LEN],
		       uint64_t *exp_out)
{
	uint8_t mac[S2S_SHA256_LEN], want[S2S_SHA256_LEN];
	uint8_t nn[S2S_TOKEN_NONCE_LEN];
	const size_t plen = sizeof(ENROL_PREFIX) - 1;
	const size_t tail = 2 * S2S_TOKEN_NONCE_LEN + 1 + 2 * S2S_SHA256_LEN;
	uint64_t exp = 0;
	size_t i = plen, digits = 0;
	enum s2s_err err;

	if (!s2s_enrol_token_is(token, token_len))
		return S2S_ERR_FORMAT;
	if (i + 1 < token_len && token[i] == '0' && token[i + 1] != ':')
		return S2S_ERR_FORMAT;
	for (; i < token_len && token[i] >= '0' && token[i] <= '9'; i++) {
		if (++digits > 19)
			return S2S_ERR_FORMAT;
		exp = exp * 10 + (uint64_t)(token[i] - '0');
	}
	if (digits == 0 || i >= token_len || token[i] != ':' ||
	    token_len - i - 1 != tail)
		return S2S_ERR_FORMAT;
	i++;
	if (!get_hex(token + i, nn, sizeof(nn)) ||
	    token[i + 2 * S2S_TOKEN_NONCE_LEN] != ':' ||
	    !get_hex(token + i + 2 * S2S_TOKEN_NONCE_LEN + 1, mac, sizeof(mac)))
		return S2S_ERR_FORMAT;
	if (exp < now || exp - now > max_age)
		return S2S_ERR_TIMEOUT;
	if (!hash)
		return S2S_ERR_AUTH;
	err = enrol_mac(id, hash, exp, nn, want);
	if (err)
		return S2S_ERR_FORMAT;
	err = s2s_ct_equal(mac, want, sizeof(mac)) ? S2S_OK : S2S_ERR_AUTH;
	s2s_memzero(want, sizeof(want));
	if (err)
		return err;
	if (nonce)
		memcpy(nonce, nn, sizeof(nn));
	if (exp_out)
		*exp_out = exp;
	return S2S_OK;
}
