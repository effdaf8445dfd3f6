/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c - the device side of phases 1 and 2 (docs/PROTOCOL.md):
 * everything that arrives on ROOT/inbox/<id> and the requests that go to
 * ROOT/req/<id>.  Runs on the network thread with c->lock held.
 *
 * Negotiation, as the device sees it:
 *
 *   SDS: SESSION ->  NEG_KEYS (1) -> check, NEG_SDS (2) ->  NEG_DONE (5)
 *        -> check -> established
 *   SDR:             NEG_KEYS (1) -> wait      NEG_FWD (3) -> check,
 *        NEG_SDR (4) -> established
 *
 * "check" means: the step number (the codec), T of this negotiation, the
 * nonce the CS drew for this device in step 1, the three ids, Shk, and
 * that the blob carries SkCS^T under this session's Sk -- all secret
 * comparisons in constant time.  A message that fails is not answered
 * (except step 3, which is refused explicitly) and ends the negotiation
 * on this side.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_private.h"
#include "s2s/secmem.h"

static void
neg_wipe(struct pair *p)
{
	s2s_memzero(p->neg_skcs, sizeof(p->neg_skcs));
	s2s_memzero(p->neg_sk, sizeof(p->neg_sk));
	p->neg_sk_len = 0;
}

static void
neg_fail(struct s2s_client *c, struct pair *p, int err, const char *why)
{
	bool was = p->neg != NEG_NONE;

	p->neg = NEG_NONE;
	p->neg_result = err;
	neg_wipe(p);
	/* A long reason is cut to fit (the precision tells gcc so). */
	snprintf(c->last_reason, sizeof(c->last_reason), "%.*s",
		 (int)(sizeof(c->last_reason) - 1), why);
	if (was)
		client__note_event(c, S2S_EVENT_SESSION_DOWN, p->st.peer, why);
	pthread_cond_broadcast(&c->cond);
}

enum s2s_err
control__pair_request(struct s2s_client *c, struct pair *p, int profile)
{
	struct s2s_msg m;
	enum s2s_err e;

	s2s_msg_init(&m, S2S_MSG_PAIR, client__new_req_id());
	snprintf(m.peer, sizeof(m.peer), "%s", p->st.peer);
	m.profile = (uint8_t)profile;
	p->pair_req = m.req_id;
	e = client__send_ctl(c, c->topic_req, &m);
	s2s_msg_clear(&m);
	return e;
}

enum s2s_err
control__session_request(struct s2s_client *c, struct pair *p)
{
	struct s2s_msg m;
	enum s2s_err e;

	s2s_msg_init(&m, S2S_MSG_SESSION, client__new_req_id());
	snprintf(m.peer, sizeof(m.peer), "%s", p->st.peer);
	p->neg_req = m.req_id;
	p->neg = NEG_WAIT_KEYS;
	p->neg_T = 0;
	p->neg_result = 1;
	p->neg_started = client__now_ms();
	e = client__send_ctl(c, c->topic_req, &m);
	if (e) {
		p->neg = NEG_NONE;
		p->neg_result = e;
	}
	s2s_msg_clear(&m);
	return e;
}

enum s2s_err
control__fetch(struct s2s_client *c, struct pair *p, uint64_t from,
	       uint64_t to, bool catchup)
{
	struct s2s_msg m;
	enum s2s_err e;

	if (to - from >= S2S_MSG_FETCH_MAX)
		to = from + S2S_MSG_FETCH_MAX - 1;
	s2s_msg_init(&m, S2S_MSG_FETCH, client__new_req_id());
	snprintf(m.peer, sizeof(m.peer), "%s", p->st.peer);
	snprintf(m.sender, sizeof(m.sender), "%s", p->st.peer);
	m.session = p->st.session;
	m.from_seq = from;
	m.to_seq = to;
	m.has_ack = true;               /* v1.1: paced replies */
	m.ack = c->fetch_ack;
	p->fetch_req = m.req_id;
	p->fetch_from = from;
	p->fetch_to = to;
	p->fetch_catchup = catchup;
	p->fetch_sent = client__now_ms();
	e = client__send_ctl(c, c->topic_req, &m);
	if (e)
		p->fetch_req = 0;
	s2s_msg_clear(&m);
	return e;
}

void
control__drop_session(struct s2s_client *c, struct pair *p, const char *why)
{
	if (!p->st.established)
		return;
	s2s_chain_wipe(&p->st.tx);
	s2s_chain_wipe(&p->st.rx);
	p->st.established = false;
	p->st.session = 0;
	p->fetch_req = 0;
	message__clear_stash(p, false);
	client__persist(c);
	client__note_event(c, S2S_EVENT_SESSION_DOWN, p->st.peer, why);
	pthread_cond_broadcast(&c->cond);
}

/* ---- Phase 1 replies --------------------------------------------------------- */

static void
on_registered(struct s2s_client *c, const struct s2s_msg *m)
{
	struct request *r = client__req_find(c, m->req_id);

	if (memcmp(m->pub, c->cs_pub, sizeof(c->cs_pub))) {
		/* Not the CS this device trusts: refuse the answer. */
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "the server answered with a key that is not the "
			 "pinned CS key");
		if (r && r->type == S2S_MSG_REGISTERED) {
			r->err = S2S_ERR_AUTH;
			r->done = true;
		}
		return;
	}
	c->registered = true;
	snprintf(c->cs_id, sizeof(c->cs_id), "%s", m->id_cs);
	client__persist(c);
	client__note_event(c, S2S_EVENT_REGISTERED, NULL, c->cs_id);
	if (r && r->type == S2S_MSG_REGISTERED) {
		r->err = S2S_OK;
		r->done = true;
	}
}

static void
on_paired(struct s2s_client *c, const struct s2s_msg *m)
{
	struct pair *p = client__add_pair(c, m->peer);
	char expect[2 * S2S_MSG_ID_MAX + 2];
	char topic[TOPIC_MAX];

	if (!p)
		return;
	if (m->status == 1) {
		if (p->st.status == S2S_PAIR_NONE) {
			p->st.status = S2S_PAIR_PENDING;
			client__persist(c);
		}
		return;
	}
	if (s2s_pair_id(c->cfg.id, m->peer, expect) ||
	    strcmp(expect, m->pair) || !m->shk_len ||
	    (m->profile != S2S_PROFILE_PAPER &&
	     m->profile != S2S_PROFILE_HARDENED)) {
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "PAIRED for %s is inconsistent", m->peer);
		return;
	}
	if (p->st.status == S2S_PAIR_DONE &&
	    (p->st.shk_len != m->shk_len ||
	     !s2s_ct_equal(p->st.shk, m->shk, m->shk_len)))
		control__drop_session(c, p, "the pair was made again");
	memcpy(p->st.shk, m->shk, m->shk_len);
	p->st.shk_len = m->shk_len;
	p->st.profile = m->profile;
	if (p->st.status != S2S_PAIR_DONE) {
		p->st.status = S2S_PAIR_DONE;
		client__note_event(c, S2S_EVENT_PAIRED, p->st.peer,
				   s2s_profile_name(m->profile));
	}
	client__persist(c);
	client__pair_topic(c, p, p->st.peer, topic, sizeof(topic));
	client__subscribe(c, topic);
	pthread_cond_broadcast(&c->cond);
}

/* ---- Phase 2 ---------------------------------------------------------------- */

/* xor_cycle(blob, sk) == skcs, in constant time. */
static bool
blob_ok(const uint8_t blob[S2S_SKCS_LEN], const uint8_t *sk, size_t sk_len,
	const uint8_t skcs[S2S_SKCS_LEN])
{
	uint8_t t[S2S_SKCS_LEN];
	bool ok;

	s2s_xor_cycle(t, blob, S2S_SKCS_LEN, sk, sk_len);
	ok = s2s_ct_equal(t, skcs, S2S_SKCS_LEN);
	s2s_memzero(t, sizeof(t));
	return ok;
}

static bool
cs_id_ok(const struct s2s_client *c, const char *id_cs)
{
	return !c->cs_id[0] || !strcmp(c->cs_id, id_cs);
}

static bool
shk_ok(const struct pair *p, const struct s2s_msg *m)
{
	return p->st.shk_len && m->shk_len == p->st.shk_len &&
	       s2s_ct_equal(m->shk, p->st.shk, p->st.shk_len);
}

/* Fill the common fields of steps 2 and 4 (our blob, ids, Shk). */
static void
fill_step(const struct s2s_client *c, const struct pair *p, bool sds,
	  struct s2s_msg *m)
{
	m->session = p->neg_T;
	memcpy(m->nonce, p->neg_nonce, sizeof(m->nonce));
	s2s_xor_cycle(m->blob, p->neg_skcs, S2S_SKCS_LEN, p->neg_sk,
		      p->neg_sk_len);
	snprintf(m->id_cs, sizeof(m->id_cs), "%s", c->cs_id);
	snprintf(m->id_sds, sizeof(m->id_sds), "%s",
		 sds ? c->cfg.id : p->st.peer);
	snprintf(m->id_sdr, sizeof(m->id_sdr), "%s",
		 sds ? p->st.peer : c->cfg.id);
	memcpy(m->shk, p->st.shk, p->st.shk_len);
	m->shk_len = p->st.shk_len;
}

static void
establish(struct s2s_client *c, struct pair *p)
{
	enum s2s_err e;

	if (p->st.established) {
		s2s_chain_wipe(&p->st.tx);
		s2s_chain_wipe(&p->st.rx);
		message__clear_stash(p, false);
	}
	e = s2s_chain_init(&p->st.tx, (enum s2s_profile)p->neg_profile,
			   p->neg_T, p->neg_skcs, p->neg_sk, p->neg_sk_len,
			   p->st.shk, p->st.shk_len);
	if (!e)
		e = s2s_chain_init(&p->st.rx,
				   (enum s2s_profile)p->neg_profile, p->neg_T,
				   p->neg_skcs, p->neg_sk, p->neg_sk_len,
				   p->st.shk, p->st.shk_len);
	if (e) {
		p->st.established = false;
		neg_fail(c, p, e, "the session keys are unusable");
		client__persist(c);
		return;
	}
	p->st.established = true;
	p->st.session = p->neg_T;
	p->st.role = p->neg_role;
	/* The responder's step 4 is only queued: no package before it. */
	p->send_after = c->ctl_queued;
	p->fetch_req = 0;
	p->neg = NEG_NONE;
	p->neg_result = S2S_OK;
	p->need_recover = false;
	neg_wipe(p);
	client__persist(c);
	client__note_event(c, S2S_EVENT_SESSION_UP, p->st.peer,
			   p->st.role == S2S_ROLE_SDS ? "initiator"
						       : "responder");
	message__session_up(c, p);
	pthread_cond_broadcast(&c->cond);
}

static void
on_neg_keys(struct s2s_client *c, const struct s2s_msg *m)
{
	struct pair *p = client__find_pair(c, m->id_peer);
	struct s2s_msg out;

	if (strcmp(m->id_self, c->cfg.id) || !cs_id_ok(c, m->id_cs))
		return;
	if (!p || p->st.status != S2S_PAIR_DONE) {
		/* The CS knows a pair this device forgot: pair again. */
		p = client__add_pair(c, m->id_peer);
		if (p) {
			p->need_recover = true;
			pthread_cond_broadcast(&c->cond);
		}
		return;
	}
	if ((m->role != S2S_ROLE_SDS && m->role != S2S_ROLE_SDR) ||
	    (m->profile != S2S_PROFILE_PAPER &&
	     m->profile != S2S_PROFILE_HARDENED) ||
	    (p->st.profile && m->profile != p->st.profile) || !m->sk_len ||
	    !m->session)
		return;
	if (p->neg != NEG_NONE && p->neg_T == m->session)
		return;   /* a QoS 1 duplicate */
	if (p->st.established && p->st.session == m->session)
		return;

	p->neg_T = m->session;
	memcpy(p->neg_nonce, m->nonce, sizeof(p->neg_nonce));
	p->neg_role = m->role;
	p->neg_profile = m->profile;
	memcpy(p->neg_skcs, m->skcs, S2S_SKCS_LEN);
	memcpy(p->neg_sk, m->sk, m->sk_len);
	p->neg_sk_len = m->sk_len;
	p->neg_result = 1;
	p->neg_started = client__now_ms();
	if (!c->cs_id[0])
		snprintf(c->cs_id, sizeof(c->cs_id), "%s", m->id_cs);

	if (m->role == S2S_ROLE_SDR) {
		p->neg = NEG_WAIT_FWD;
		return;
	}
	/* Step 2: prove to the CS that we hold Sk and Shk. */
	s2s_msg_init(&out, S2S_MSG_NEG_SDS, client__new_req_id());
	out.step = 2;
	fill_step(c, p, true, &out);
	p->neg = NEG_WAIT_DONE;
	if (client__send_ctl(c, c->topic_req, &out))
		neg_fail(c, p, S2S_ERR_MQTT, "cannot send step 2");
	s2s_msg_clear(&out);
}

static void
on_neg_fwd(struct s2s_client *c, const struct s2s_msg *m)
{
	struct pair *p = client__find_pair(c, m->id_sds);
	struct s2s_msg out;
	bool ok;

	if (!p || p->neg != NEG_WAIT_FWD || m->session != p->neg_T)
		return;
	ok = s2s_ct_equal(m->nonce, p->neg_nonce, sizeof(p->neg_nonce));
	ok &= !strcmp(m->id_sdr, c->cfg.id);
	ok &= cs_id_ok(c, m->id_cs);
	ok &= shk_ok(p, m);
	ok &= blob_ok(m->blob, p->neg_sk, p->neg_sk_len, p->neg_skcs);

	/* Step 4: accept (with our own proof) or refuse. */
	s2s_msg_init(&out, S2S_MSG_NEG_SDR, client__new_req_id());
	out.step = 4;
	fill_step(c, p, false, &out);
	out.accept = ok ? 1 : 0;
	if (!ok)
		s2s_memzero(out.blob, sizeof(out.blob));
	if (client__send_ctl(c, c->topic_req, &out)) {
		s2s_msg_clear(&out);
		neg_fail(c, p, S2S_ERR_MQTT, "cannot send step 4");
		return;
	}
	s2s_msg_clear(&out);
	if (!ok) {
		neg_fail(c, p, S2S_ERR_AUTH,
			 "step 3 failed its check; session refused");
		return;
	}
	establish(c, p);
}

static void
on_neg_done(struct s2s_client *c, const struct s2s_msg *m)
{
	struct pair *p = client__find_pair(c, m->id_sdr);
	bool ok;

	if (!p || p->neg != NEG_WAIT_DONE || m->session != p->neg_T)
		return;
	ok = s2s_ct_equal(m->nonce, p->neg_nonce, sizeof(p->neg_nonce));
	ok &= !strcmp(m->id_sds, c->cfg.id);
	ok &= cs_id_ok(c, m->id_cs);
	ok &= shk_ok(p, m);
	ok &= blob_ok(m->blob, p->neg_sk, p->neg_sk_len, p->neg_skcs);
	if (!ok) {
		neg_fail(c, p, S2S_ERR_AUTH, "step 5 failed its check");
		return;
	}
	establish(c, p);
}

static void
on_ended(struct s2s_client *c, const struct s2s_msg *m)
{
	struct pair *p = client__find_pair(c, m->peer);

	if (!p)
		return;
	if (p->neg != NEG_NONE && p->neg_T && p->neg_T == m->session)
		neg_fail(c, p, S2S_ERR_SESSION, "the CS ended the session");
	if (p->st.established && p->st.session == m->session)
		control__drop_session(c, p, "ended by the CS");
}

/* ---- Fetch and reject -------------------------------------------------------- */

static struct pair *
pair_by_fetch(struct s2s_client *c, uint64_t req)
{
	for (size_t i = 0; req && i < c->npairs; i++)
		if (c->pairs[i]->fetch_req == req)
			return c->pairs[i];
	return NULL;
}

static void
on_fetched(struct s2s_client *c, const struct s2s_msg *m)
{
	struct pair *p = pair_by_fetch(c, m->req_id);
	struct request *r = client__req_find(c, m->req_id);
	unsigned n = 0;

	if (m->has_ack)
		c->fetch_ack = m->ack;
	if (p) {
		n = message__fetched(c, p, m);
	}
	if (r && r->type == S2S_MSG_FETCHED) {
		r->delivered = n;
		r->err = p ? S2S_OK : S2S_ERR_STATE;
		r->done = true;
	}
	pthread_cond_broadcast(&c->cond);
}

static void
on_reject(struct s2s_client *c, const struct s2s_msg *m)
{
	struct request *r = client__req_find(c, m->req_id);
	int code = m->code < 0 && m->code > -S2S_ERR_COUNT ? m->code
							    : S2S_ERR_REJECTED;
	char why[S2S_MSG_REASON_MAX + 64];

	snprintf(why, sizeof(why), "refused by the CS (%s): %s",
		 s2s_errname(code), m->reason);
	snprintf(c->last_reason, sizeof(c->last_reason), "%s",
		 m->reason[0] ? m->reason : s2s_strerror(code));
	if (r && r->type != S2S_MSG_FETCHED) {
		r->err = code;
		r->done = true;
	}
	for (size_t i = 0; i < c->npairs; i++) {
		struct pair *p = c->pairs[i];

		if (m->about == S2S_MSG_PAIR && p->pair_req == m->req_id) {
			p->pair_req = 0;
			p->pair_err = code;
		} else if ((m->about == S2S_MSG_SESSION ||
			    m->about == S2S_MSG_NEG_SDS ||
			    m->about == S2S_MSG_NEG_SDR) &&
			   p->neg != NEG_NONE &&
			   ((m->req_id && p->neg_req == m->req_id) ||
			    (m->session && p->neg_T == m->session))) {
			neg_fail(c, p, code, why);
		} else if (m->about == S2S_MSG_FETCH &&
			   p->fetch_req == m->req_id) {
			struct s2s_msg empty;

			s2s_msg_init(&empty, S2S_MSG_FETCHED, m->req_id);
			message__fetched(c, p, &empty);
			if (r) {
				r->err = code;
				r->done = true;
			}
		}
	}
	pthread_cond_broadcast(&c->cond);
}

void
control__inbox(struct s2s_client *c, const uint8_t *buf, size_t len)
{
	struct s2s_msg m;
	enum s2s_msg_type type;
	uint64_t rid;
	enum s2s_err e;

	if (s2s_msg_peek(buf, len, &type, &rid))
		return;
	e = s2s_msg_decode(buf, len, c->key, 0, &m);
	pthread_mutex_lock(&c->lock);
	if (e) {
		struct request *r = client__req_find(c, rid);

		snprintf(c->last_reason, sizeof(c->last_reason),
			 "undecodable %s from the CS: %s",
			 s2s_msg_type_name(type), s2s_strerror(e));
		if (r) {
			r->err = e;
			r->done = true;
			pthread_cond_broadcast(&c->cond);
		}
		goto out;
	}
	switch (m.type) {
	case S2S_MSG_REGISTERED:
		on_registered(c, &m);
		break;
	case S2S_MSG_PAIRED:
		on_paired(c, &m);
		break;
	case S2S_MSG_NEG_KEYS:
		on_neg_keys(c, &m);
		break;
	case S2S_MSG_NEG_FWD:
		on_neg_fwd(c, &m);
		break;
	case S2S_MSG_NEG_DONE:
		on_neg_done(c, &m);
		break;
	case S2S_MSG_FETCHED:
		on_fetched(c, &m);
		break;
	case S2S_MSG_ENDED:
		on_ended(c, &m);
		break;
	case S2S_MSG_REJECT:
		on_reject(c, &m);
		break;
	default:
		break;  /* requests never come to a device */
	}
	pthread_cond_broadcast(&c->cond);
out:
	pthread_mutex_unlock(&c->lock);
	s2s_msg_clear(&m);
}
