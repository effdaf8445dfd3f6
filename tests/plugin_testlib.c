/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_testlib.h"
#include "s2s/bio.h"
#include "s2s/package.h"
#include "s2s/secmem.h"

static void
die(const char *what, enum s2s_err rc)
{
	fprintf(stderr, "testlib: %s: %s\n", what, s2s_strerror(rc));
	abort();
}

void
td_init(struct td_dev *d, const char *id, uint32_t user)
{
	struct s2s_image img = { 0 };
	enum s2s_err rc;
	char path[4096];
	const char *src = getenv("S2S_SRCDIR");

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	rc = s2s_key_generate(&d->key);
	if (rc != S2S_OK)
		die("keygen", rc);
	rc = s2s_bio_siggen(user, 0, &img);
	if (rc != S2S_OK)
		die("siggen", rc);
	rc = s2s_image_encode_png(&img, 6, &d->hs, &d->hs_len);
	if (rc != S2S_OK)
		die("png", rc);
	s2s_image_free(&img);
	snprintf(path, sizeof(path), "%s/core/covers/camera128.png",
		 src && *src ? src : ".");
	if (s2s_image_read_file(path, NULL, &d->cover) != S2S_OK) {
		rc = s2s_image_alloc(&d->cover, 128, 128, 128);
		if (rc != S2S_OK)
			die("cover", rc);
		for (uint32_t i = 0; i < 128u * 128u; i++)
			d->cover.pixels[i] = (uint8_t)(40 + (i * 7919u) % 170u);
	}
}

void
td_free(struct td_dev *d)
{
	s2s_key_destroy(d->key);
	free(d->hs);
	s2s_image_free(&d->cover);
	s2s_chain_wipe(&d->tx);
	s2s_chain_wipe(&d->rx);
	s2s_memzero(d, sizeof(*d));
}

enum s2s_err
td_register_raw(struct td_dev *d, const struct s2s_key *cs, const char *id,
		const char *code, const uint8_t *hs, size_t hs_len,
		uint64_t req, uint8_t **out, size_t *len)
{
	struct s2s_msg m;
	enum s2s_err rc;

	s2s_msg_init(&m, S2S_MSG_REGISTER, req);
	s2s_key_public(d->key, m.pub);
	snprintf(m.id, sizeof(m.id), "%s", id);
	m.code_bytes = (const uint8_t *)(code ? code : "");
	m.code_len = code ? strlen(code) : 0;
	m.hs = hs;
	m.hs_len = hs_len;
	rc = s2s_msg_encode(&m, cs, d->key, out, len);
	m.code_bytes = NULL;
	m.hs = NULL;
	s2s_msg_clear(&m);
	return rc;
}

enum s2s_err
td_register(struct td_dev *d, const struct s2s_key *cs, const char *code,
	    uint64_t req, uint8_t **out, size_t *len)
{
	return td_register_raw(d, cs, d->id, code, d->hs, d->hs_len, req, out,
			       len);
}

static enum s2s_err
simple(enum s2s_msg_type type, const char *peer, int profile, uint64_t req,
       uint8_t **out, size_t *len)
{
	struct s2s_msg m;
	enum s2s_err rc;

	s2s_msg_init(&m, type, req);
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	m.profile = (uint8_t)profile;
	rc = s2s_msg_encode(&m, NULL, NULL, out, len);
	s2s_msg_clear(&m);
	return rc;
}

enum s2s_err
td_pair(struct td_dev *d, const char *peer, int profile, uint64_t req,
	uint8_t **out, size_t *len)
{
	(void)d;
	return simple(S2S_MSG_PAIR, peer, profile, req, out, len);
}

enum s2s_err
td_session(struct td_dev *d, const char *peer, uint64_t req, uint8_t **out,
	   size_t *len)
{
	(void)d;
	return simple(S2S_MSG_SESSION, peer, 0, req, out, len);
}

enum s2s_err
td_end(struct td_dev *d, const char *peer, uint64_t req, uint8_t **out,
       size_t *len)
{
	(void)d;
	return simple(S2S_MSG_END, peer, 0, req, out, len);
}

enum s2s_err
td_fetch(struct td_dev *d, const char *peer, const char *sender, uint64_t t,
	 uint64_t from, uint64_t to, uint64_t req, uint8_t **out, size_t *len)
{
	struct s2s_msg m;
	enum s2s_err rc;

	(void)d;
	s2s_msg_init(&m, S2S_MSG_FETCH, req);
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	snprintf(m.sender, sizeof(m.sender), "%s", sender);
	m.session = t;
	m.from_seq = from;
	m.to_seq = to;
	rc = s2s_msg_encode(&m, NULL, NULL, out, len);
	s2s_msg_clear(&m);
	return rc;
}

enum s2s_err
td_decode(struct td_dev *d, const uint8_t *buf, size_t len,
	  struct s2s_msg *m)
{
	return s2s_msg_decode(buf, len, d->key, 0, m);
}

void
td_take_paired(struct td_dev *d, const struct s2s_msg *m)
{
	snprintf(d->peer, sizeof(d->peer), "%s", m->peer);
	snprintf(d->pair, sizeof(d->pair), "%s", m->pair);
	memcpy(d->shk, m->shk, m->shk_len);
	d->shk_len = m->shk_len;
	d->profile = m->profile;
}

void
td_take_keys(struct td_dev *d, const struct s2s_msg *m)
{
	d->t = m->session;
	d->role = m->role;
	memcpy(d->nonce, m->nonce, sizeof(d->nonce));
	memcpy(d->skcs, m->skcs, sizeof(d->skcs));
	memcpy(d->sk, m->sk, m->sk_len);
	d->sk_len = m->sk_len;
	d->profile = m->profile;
	snprintf(d->id_cs, sizeof(d->id_cs), "%s", m->id_cs);
}

static enum s2s_err
neg(struct td_dev *d, const struct s2s_key *cs, enum s2s_msg_type type,
    bool accept, enum td_tamper t, uint64_t req, uint8_t **out, size_t *len)
{
	struct s2s_msg m;
	bool sds = type == S2S_MSG_NEG_SDS;
	enum s2s_err rc;

	s2s_msg_init(&m, type, req);
	m.step = sds ? 2 : 4;
	m.session = d->t;
	memcpy(m.nonce, d->nonce, sizeof(m.nonce));
	s2s_xor_cycle(m.blob, d->skcs, S2S_SKCS_LEN, d->sk, d->sk_len);
	snprintf(m.id_cs, sizeof(m.id_cs), "%s", d->id_cs);
	/* id_sds/id_sdr: who asked is SDS. */
	if ((d->role == S2S_ROLE_SDS) != (t == TD_SWAP_IDS)) {
		snprintf(m.id_sds, sizeof(m.id_sds), "%s", d->id);
		snprintf(m.id_sdr, sizeof(m.id_sdr), "%s", d->peer);
	} else {
		snprintf(m.id_sds, sizeof(m.id_sds), "%s", d->peer);
		snprintf(m.id_sdr, sizeof(m.id_sdr), "%s", d->id);
	}
	memcpy(m.shk, d->shk, d->shk_len);
	m.shk_len = d->shk_len;
	m.accept = accept;
	if (t == TD_BAD_SHK)
		m.shk[0] ^= 1;
	if (t == TD_BAD_BLOB)
		m.blob[17] ^= 4;
	if (t == TD_BAD_NONCE)
		m.nonce[3] ^= 8;
	rc = s2s_msg_encode(&m, cs, NULL, out, len);
	s2s_msg_clear(&m);
	return rc;
}

enum s2s_err
td_neg_sds(struct td_dev *d, const struct s2s_key *cs, enum td_tamper t,
	   uint64_t req, uint8_t **out, size_t *len)
{
	return neg(d, cs, S2S_MSG_NEG_SDS, true, t, req, out, len);
}

enum s2s_err
td_neg_sdr(struct td_dev *d, const struct s2s_key *cs, bool accept,
	   enum td_tamper t, uint64_t req, uint8_t **out, size_t *len)
{
	return neg(d, cs, S2S_MSG_NEG_SDR, accept, t, req, out, len);
}

bool
td_check_step(const struct td_dev *d, const struct s2s_msg *m,
	      const uint8_t *peer_sk, size_t peer_sk_len)
{
	uint8_t x[S2S_SKCS_LEN];
	bool ok;

	s2s_xor_cycle(x, m->blob, S2S_SKCS_LEN, peer_sk, peer_sk_len);
	ok = m->session == d->t &&
	     s2s_ct_equal(m->nonce, d->nonce, sizeof(d->nonce)) &&
	     s2s_ct_equal(x, d->skcs, S2S_SKCS_LEN) &&
	     m->shk_len == d->shk_len &&
	     s2s_ct_equal(m->shk, d->shk, d->shk_len);
	return ok;
}

void
td_chains(struct td_dev *d)
{
	enum s2s_err rc;

	rc = s2s_chain_init(&d->tx, (enum s2s_profile)d->profile, d->t,
			    d->skcs, d->sk, d->sk_len, d->shk, d->shk_len);
	if (rc == S2S_OK)
		rc = s2s_chain_init(&d->rx, (enum s2s_profile)d->profile,
				    d->t, d->skcs, d->sk, d->sk_len, d->shk,
				    d->shk_len);
	if (rc != S2S_OK)
		die("chain init", rc);
}

enum s2s_err
td_seal(struct td_dev *d, const char *msg, uint8_t **out, size_t *len)
{
	return s2s_package_seal(&d->tx, d->id, d->peer, (const uint8_t *)msg,
				strlen(msg), &d->cover, 1, out, len, NULL);
}

void
td_pair_topic(const struct td_dev *d, const char *root, char *buf, size_t n)
{
	snprintf(buf, n, "%s/pair/%s/%s", root, d->pair, d->id);
}
