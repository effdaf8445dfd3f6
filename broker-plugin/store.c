/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.c - backend selection and dispatch for the store interface
 * (store.h).  Nothing here touches a database.
 */
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

/* ---- what other brokers did (shared stores), applied from TICK ------------ */

static void
forget_pair(struct s2s_cs *cs, struct cs_pair *p)
{
	cs_pair_unlink(cs, p);
	cs_pair_free(p);
	cs->stats_dirty = true;
}

static void
on_event(void *arg, enum cs_store_event ev, const char *id)
{
	struct s2s_cs *cs = arg;
	struct cs_pair *p, *next;
	struct cs_device_rec rec;

	switch (ev) {
	case CS_STORE_EV_REVOKED:
		/* The store already dropped its pairs: forget them here. */
		for (p = cs->pairs; p; p = next) {
			next = p->next;
			if (cs_pair_member(p, id) >= 0)
				forget_pair(cs, p);
		}
		cs_log(MOSQ_LOG_NOTICE, "device '%s' revoked on another "
		       "broker: disconnected here", id);
		mosquitto_kick_client_by_clientid(id, false);
		break;
	case CS_STORE_EV_PAIR_DELETED:
		p = cs_pair_find(cs, id);
		if (p)
			forget_pair(cs, p);
		break;
	case CS_STORE_EV_PAIRED:
	case CS_STORE_EV_SESSION:
	case CS_STORE_EV_SESSION_ENDED:
		/* The stored pair and session are newer than ours. */
		if (cs_store_pair_load(cs, id) == S2S_OK)
			cs->stats_dirty = true;
		break;
	case CS_STORE_EV_RESYNC:
		/* Revocations may have been missed: check who is here. */
		for (struct cs_conn *c = cs->conns; c; c = c->next) {
			if (c->kind == CS_CONN_DEVICE &&
			    cs_store_device_get(cs, c->id, &rec, NULL, NULL) ==
			    S2S_OK && rec.revoked)
				mosquitto_kick_client_by_clientid(c->id, false);
		}
		break;
	}
}

int
cs_store_tick(struct s2s_cs *cs)
{
	return cs_store_poll_events(cs, on_event, cs);
}

bool
cs_store_is_pg(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 ||
	       strncmp(s, "postgres://", 11) == 0 ||
	       (strchr(s, '=') != NULL && (strstr(s, "dbname=") != NULL ||
					   strstr(s, "host=") != NULL ||
					   strstr(s, "service=") != NULL));
}

const char *
cs_store_display(const char *s, char *buf, size_t n)
{
	const char *at, *pw;

	snprintf(buf, n, "%s", s);
	if (!cs_store_is_pg(s))
		return buf;
	/* postgresql://user:PASSWORD@host/... */
	pw = strstr(s, "://");
	if (pw) {
		pw += 3;
		at = strchr(pw, '@');
		if (at && memchr(pw, ':', (size_t)(at - pw)) &&
		    (!strchr(pw, '/') || at < strchr(pw, '/'))) {
			const char *c = memchr(pw, ':', (size_t)(at - pw));

			snprintf(buf, n, "%.*s:***%s", (int)(c - s), s, at);
		}
		return buf;
	}
	/* conninfo: password=... (up to the next space) */
	pw = strstr(s, "password");
	if (pw) {
		const char *end = strchr(pw, ' ');

		snprintf(buf, n, "%.*spassword=***%s", (int)(pw - s), s,
			 end ? end : "");
	}
	return buf;
}

enum s2s_err
cs_store_open(struct s2s_cs *cs)
{
	const char *s = cs->opt.store;

	if (cs_store_is_pg(s)) {
#ifdef S2S_HAVE_PG
		cs->store_ops = &cs_store_pg;
		return cs->store_ops->open(cs);
#else
		cs_log(MOSQ_LOG_ERR, "store: this build has no PostgreSQL "
		       "backend (libpq was not found at build time)");
		return S2S_ERR_CONFIG;
#endif
	}
	if (strstr(s, "://") != NULL) {
		cs_log(MOSQ_LOG_ERR, "store '%s': no backend for this URI in "
		       "this build (the embedded store takes a file path)", s);
		return S2S_ERR_CONFIG;
	}
	cs->store_ops = &cs_store_embedded;
	return cs->store_ops->open(cs);
}

void
cs_store_close(struct s2s_cs *cs)
{
	if (cs->store_ops)
		cs->store_ops->close(cs);
	cs->store_ops = NULL;
}

#define OPS(cs) ((cs)->store_ops)

bool
cs_store_shared(const struct s2s_cs *cs)
{
	return cs->store_ops && cs->store_ops->shared;
}

int
cs_store_poll_events(struct s2s_cs *cs, cs_store_event_cb cb, void *arg)
{
	if (!OPS(cs) || !OPS(cs)->poll_events)
		return 0;
	return OPS(cs)->poll_events(cs, cb, arg);
}

enum s2s_err
cs_store_pair_load(struct s2s_cs *cs, const char *pair)
{
	if (!OPS(cs)->pair_load)
		return S2S_ERR_STATE;
	return OPS(cs)->pair_load(cs, pair);
}

enum s2s_err
cs_store_chain_load(struct s2s_cs *cs, const struct cs_pair *p, int dir,
		    struct s2s_chain *out)
{
	if (!OPS(cs)->chain_load)
		return S2S_ERR_STATE;
	return OPS(cs)->chain_load(cs, p, dir, out);
}

enum s2s_err
cs_store_device_get(struct s2s_cs *cs, const char *id,
		    struct cs_device_rec *rec, uint8_t **hs, size_t *hs_len)
{
	return OPS(cs)->device_get(cs, id, rec, hs, hs_len);
}

enum s2s_err
cs_store_device_put(struct s2s_cs *cs, const char *id,
		    const uint8_t pub[S2S_P256_PUB_LEN], const uint8_t *hs,
		    size_t hs_len, bool consume_code)
{
	return OPS(cs)->device_put(cs, id, pub, hs, hs_len, consume_code);
}

enum s2s_err
cs_store_device_revoke(struct s2s_cs *cs, const char *id)
{
	return OPS(cs)->device_revoke(cs, id);
}

enum s2s_err
cs_store_device_list(struct s2s_cs *cs,
		     void (*cb)(void *arg, const struct cs_device_rec *r),
		     void *arg)
{
	return OPS(cs)->device_list(cs, cb, arg);
}

long
cs_store_device_count(struct s2s_cs *cs)
{
	return OPS(cs)->device_count(cs);
}

enum s2s_err
cs_store_code_add(struct s2s_cs *cs, const char *id, const uint8_t *code,
		  size_t len, int64_t expires)
{
	return OPS(cs)->code_add(cs, id, code, len, expires);
}

enum s2s_err
cs_store_code_check(struct s2s_cs *cs, const char *id, const uint8_t *code,
		    size_t len, int64_t now)
{
	return OPS(cs)->code_check(cs, id, code, len, now);
}

enum s2s_err
cs_store_pairreq_put(struct s2s_cs *cs, const char *requester,
		     const char *peer, int profile, uint64_t req_id)
{
	return OPS(cs)->pairreq_put(cs, requester, peer, profile, req_id);
}

enum s2s_err
cs_store_pairreq_get(struct s2s_cs *cs, const char *requester,
		     const char *peer, int *profile, uint64_t *req_id)
{
	return OPS(cs)->pairreq_get(cs, requester, peer, profile, req_id);
}

enum s2s_err
cs_store_pair_put(struct s2s_cs *cs, const struct cs_pair *p,
		  const uint16_t rv[S2S_RV_LEN])
{
	return OPS(cs)->pair_put(cs, p, rv);
}

enum s2s_err
cs_store_pair_rv(struct s2s_cs *cs, const char *pair, uint16_t rv[S2S_RV_LEN])
{
	return OPS(cs)->pair_rv(cs, pair, rv);
}

enum s2s_err
cs_store_pair_delete(struct s2s_cs *cs, const char *pair)
{
	return OPS(cs)->pair_delete(cs, pair);
}

enum s2s_err
cs_store_load(struct s2s_cs *cs)
{
	return OPS(cs)->load(cs);
}

enum s2s_err
cs_store_session_put(struct s2s_cs *cs, const struct cs_pair *p)
{
	return OPS(cs)->session_put(cs, p);
}

enum s2s_err
cs_store_session_delete(struct s2s_cs *cs, const char *pair)
{
	return OPS(cs)->session_delete(cs, pair);
}

enum s2s_err
cs_store_accept(struct s2s_cs *cs, const struct cs_pair *p, int dir,
		const struct s2s_chain *advanced, const uint8_t *pkg,
		size_t pkg_len)
{
	return OPS(cs)->accept(cs, p, dir, advanced, pkg, pkg_len);
}

enum s2s_err
cs_store_fetch(struct s2s_cs *cs, const char *pair, const char *sender,
	       uint64_t session, uint64_t from, uint64_t to, unsigned max,
	       size_t max_bytes, cs_fetch_cb cb, void *arg)
{
	return OPS(cs)->fetch(cs, pair, sender, session, from, to, max,
			      max_bytes, cb, arg);
}

long
cs_store_retention(struct s2s_cs *cs, int64_t now)
{
	return OPS(cs)->retention(cs, now);
}

long
cs_store_package_count(struct s2s_cs *cs, const char *pair)
{
	return OPS(cs)->package_count(cs, pair);
}

void
cs_store_usage(struct s2s_cs *cs, struct cs_store_usage *u)
{
	memset(u, 0, sizeof(*u));
	OPS(cs)->usage(cs, u);
}

/* ---- single-use tokens (declared in plugin.h) ----------------------------- */

enum s2s_err
cs_tokens_open(struct s2s_cs *cs)
{
	return OPS(cs)->tokens_open(cs);
}

enum s2s_err
cs_token_use(struct s2s_cs *cs, const char *user,
	     const uint8_t nonce[S2S_TOKEN_NONCE_LEN], uint64_t exp)
{
	return OPS(cs)->token_use(cs, user, nonce, exp);
}

long
cs_tokens_prune(struct s2s_cs *cs, int64_t now)
{
	return OPS(cs)->tokens_prune(cs, now);
}

long
cs_tokens_count(struct s2s_cs *cs)
{
	return OPS(cs)->tokens_count(cs);
}

enum s2s_err
cs_enrol_code_hash_get(struct s2s_cs *cs, const char *id, int64_t now,
		       uint8_t hash[S2S_SHA256_LEN])
{
	return OPS(cs)->code_hash_get(cs, id, now, hash);
}

/* ---- cluster ---------------------------------------------------------------
 * A backend without an entry (NULL) behaves as a cluster of one. */

enum s2s_err
cs_store_session_get(struct s2s_cs *cs, const struct cs_pair *p,
		     struct cs_session **out)
{
	*out = NULL;
	if (!OPS(cs)->session_get)
		return S2S_ERR_NOT_FOUND;
	return OPS(cs)->session_get(cs, p, out);
}

enum s2s_err
cs_store_session_cas(struct s2s_cs *cs, const struct cs_pair *p,
		     const struct cs_session *x, uint64_t expect_t,
		     int expect_state)
{
	if (OPS(cs)->session_cas)
		return OPS(cs)->session_cas(cs, p, x, expect_t, expect_state);
	/* One broker: memory is the truth, only established ones stored. */
	if (!x)
		return OPS(cs)->session_delete(cs, p->id);
	if (x->state == CS_SESS_ESTABLISHED)
		return OPS(cs)->session_put(cs, p);
	return S2S_OK;
}

enum s2s_err
cs_store_broker_put(struct s2s_cs *cs, const char *broker, const char *info,
		    int64_t now)
{
	return OPS(cs)->broker_put ? OPS(cs)->broker_put(cs, broker, info, now)
				   : S2S_OK;
}

enum s2s_err
cs_store_broker_list(struct s2s_cs *cs, cs_broker_cb cb, void *arg)
{
	return OPS(cs)->broker_list ? OPS(cs)->broker_list(cs, cb, arg) :
	       S2S_OK;
}

enum s2s_err
cs_store_presence_set(struct s2s_cs *cs, const char *id, const char *broker,
		      int64_t now)
{
	return OPS(cs)->presence_set ?
	       OPS(cs)->presence_set(cs, id, broker, now) : S2S_OK;
}

enum s2s_err
cs_store_presence_clear(struct s2s_cs *cs, const char *id, const char *broker)
{
	return OPS(cs)->presence_clear ?
	       OPS(cs)->presence_clear(cs, id, broker) : S2S_OK;
}

enum s2s_err
cs_store_presence_get(struct s2s_cs *cs, const char *id, char *broker,
		      size_t n)
{
	return OPS(cs)->presence_get ?
	       OPS(cs)->presence_get(cs, id, broker, n) : S2S_ERR_NOT_FOUND;
}

bool
cs_store_routes(const struct s2s_cs *cs)
{
	return OPS(cs)->presence_get != NULL;
}

/* ---- helpers for backends ------------------------------------------------ */

static void
put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

void
cs_session_secret_pack(const struct cs_session *x,
		       uint8_t buf[CS_SESS_SECRET_LEN])
{
	memset(buf, 0, CS_SESS_SECRET_LEN);
	memcpy(buf, x->skcs, S2S_SKCS_LEN);
	buf[S2S_SKCS_LEN] = x->sk_len;
	memcpy(buf + S2S_SKCS_LEN + 1, x->sk, x->sk_len);
}

bool
cs_session_secret_unpack(struct cs_session *x,
			 const uint8_t buf[CS_SESS_SECRET_LEN])
{
	if (buf[S2S_SKCS_LEN] > S2S_SK_MAX)
		return false;
	memcpy(x->skcs, buf, S2S_SKCS_LEN);
	x->sk_len = buf[S2S_SKCS_LEN];
	memcpy(x->sk, buf + S2S_SKCS_LEN + 1, x->sk_len);
	return true;
}

void
cs_session_neg_pack(const struct cs_session *x, uint8_t buf[CS_SESS_NEG_LEN])
{
	uint8_t *b = buf;
	int64_t wall = cs_now_s() * 1000 + (x->deadline_ms - cs_mono_ms());

	memcpy(b, x->nonce, 2 * S2S_MSG_NONCE_LEN);
	b += 2 * S2S_MSG_NONCE_LEN;
	memcpy(b, x->blob_sds, S2S_SKCS_LEN);
	b += S2S_SKCS_LEN;
	put64(b, x->sds_req_id);
	put64(b + 8, (uint64_t)wall);
}

void
cs_session_neg_unpack(struct cs_session *x,
		      const uint8_t buf[CS_SESS_NEG_LEN])
{
	const uint8_t *b = buf;
	int64_t wall;

	memcpy(x->nonce, b, 2 * S2S_MSG_NONCE_LEN);
	b += 2 * S2S_MSG_NONCE_LEN;
	memcpy(x->blob_sds, b, S2S_SKCS_LEN);
	b += S2S_SKCS_LEN;
	x->sds_req_id = get64(b);
	wall = (int64_t)get64(b + 8);
	x->deadline_ms = cs_mono_ms() + (wall - cs_now_s() * 1000);
}
