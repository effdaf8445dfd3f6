/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gate.c - the CS gate of phase 3 (SCHEME.md, "Phase 3"): every package
 * published on ROOT/pair/<pair>/<sender> is parsed, attributed, verified
 * against the CS copy of its direction's chain and stored, with the
 * advanced chain, in one transaction, before the broker routes it.
 *
 * Anything else is dropped (the caller returns MOSQ_ERR_ACL_DENIED, which
 * the broker treats as a silent drop: the publisher stays connected), is
 * counted by reason (s2s_errname), and changes no state: the package is
 * opened against a copy of the chain, and the copy replaces the chain only
 * after the store transaction committed.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"
#include "s2s/secmem.h"

static bool
field_is(const char *s, size_t n, const char *want)
{
	return strlen(want) == n && memcmp(s, want, n) == 0;
}

static enum s2s_err
reject(struct s2s_cs *cs, const char *client_id, const struct cs_topic *t,
       enum s2s_err rc)
{
	cs_stats_reject(cs, rc);
	cs_log(MOSQ_LOG_DEBUG, "gate: dropped package of '%s' on pair '%s': "
	       "%s", client_id ? client_id : "", t->pair, s2s_errname(rc));
	return rc;
}

/*
 * Is this broker's copy of the pair's session behind the store?  Several
 * brokers share one store (issue 13): a device that moved here after its
 * broker died sends packages on a chain another broker advanced, or in a
 * session negotiated elsewhere.  The store is read again only for a
 * session this broker does not know, or for a sequence number ahead of
 * the cached chain by at most plugin_opt_cluster_window: a device cannot
 * make the broker read the store for numbers far off, and a package at
 * or behind the chain is a replay that needs no read.
 */
static bool
behind(struct s2s_cs *cs, const struct cs_pair *p, int dir,
       const struct s2s_package *pkg)
{
	const struct cs_session *x = p->sess;
	uint64_t next;

	if (!x || x->state != CS_SESS_ESTABLISHED || pkg->session != x->t)
		return true;
	next = x->chain[dir].next_seq;
	return pkg->seq > next && pkg->seq - next <= cs->opt.cluster_window;
}

/* Read the chain (same session) or the whole session from the store. */
static void
catch_up(struct s2s_cs *cs, struct cs_pair *p, int dir,
	 const struct s2s_package *pkg)
{
	struct cs_session *x = p->sess;
	struct s2s_chain c;

	if (x && x->state == CS_SESS_ESTABLISHED && pkg->session == x->t &&
	    cs_store_shared(cs) && cs->store_ops->chain_load) {
		memset(&c, 0, sizeof(c));
		if (cs_store_chain_load(cs, p, dir, &c) == S2S_OK &&
		    c.next_seq > x->chain[dir].next_seq) {
			s2s_chain_wipe(&x->chain[dir]);
			x->chain[dir] = c;
		}
		s2s_chain_wipe(&c);
		return;
	}
	cs_session_refresh(cs, p);
}

enum s2s_err
cs_gate(struct s2s_cs *cs, const char *client_id, const struct cs_topic *t,
	const uint8_t *buf, size_t len)
{
	struct s2s_package pkg;
	struct s2s_chain next;
	struct cs_pair *p;
	int dir;
	enum s2s_err rc;

	if (len > cs->opt.max_package)
		return reject(cs, client_id, t, S2S_ERR_TOO_BIG);
	rc = s2s_package_parse(buf, len, &cs->limits, &pkg);
	if (rc != S2S_OK)
		return reject(cs, client_id, t, rc);
	/* Sender: the authenticated client, the topic and the envelope. */
	if (!client_id || strcmp(client_id, t->id) != 0 ||
	    !field_is(pkg.sender, pkg.sender_len, client_id))
		return reject(cs, client_id, t, S2S_ERR_DENIED);
	p = cs_pair_get(cs, t->pair, client_id);
	if (!p || (dir = cs_pair_member(p, client_id)) < 0)
		return reject(cs, client_id, t, S2S_ERR_DENIED);
	if (!field_is(pkg.receiver, pkg.receiver_len, p->m[1 - dir]))
		return reject(cs, client_id, t, S2S_ERR_INCONSISTENT);
	if (behind(cs, p, dir, &pkg))
		catch_up(cs, p, dir, &pkg);
	if (!p->sess || p->sess->state != CS_SESS_ESTABLISHED ||
	    pkg.session != p->sess->t)
		return reject(cs, client_id, t, S2S_ERR_SESSION);

	next = p->sess->chain[dir];
	rc = s2s_package_open_cached(&next, &p->sess->cache[dir], &pkg,
				     &cs->limits, NULL);
	if (rc == S2S_OK)
		rc = cs_store_accept(cs, p, dir, &next, buf, len);
	if (rc != S2S_OK) {
		s2s_chain_wipe(&next);
		/* Another broker advanced this chain: follow the store. */
		if (rc == S2S_ERR_REPLAY || rc == S2S_ERR_SESSION)
			cs_session_refresh(cs, p);
		return reject(cs, client_id, t, rc);
	}
	p->sess->chain[dir] = next;
	s2s_chain_wipe(&next);
	p->accepted++;
	cs->stats.accepted++;
	cs->stats_dirty = true;
	if (cs->opt.feed)
		cs_feed_accepted(cs, p, &pkg);
	return S2S_OK;
}

/* ---- QoS 2 exactly once --------------------------------------------------- */

struct same_arg {
	const uint8_t *buf;
	size_t len;
	bool same;
};

static enum s2s_err
same_cb(void *arg, uint64_t seq, const uint8_t *pkg, size_t len)
{
	struct same_arg *a = arg;

	(void)seq;
	a->same = len == a->len && memcmp(pkg, a->buf, len) == 0;
	return S2S_OK;
}

/*
 * Mosquitto 2.0.11 runs MOSQ_EVT_MESSAGE for a QoS 2 PUBLISH resent with
 * DUP after PUBREC *before* it looks the message id up in the sender's
 * incoming queue.  Refusing the resend (the chain has moved: a replay)
 * made the broker answer PUBREC "not authorised" and the original, waiting
 * for PUBREL, was never routed.  A resend that is byte for byte the last
 * package this sender had accepted at QoS 2, not yet routed, passes
 * without touching the chain: the broker finds the original by its message
 * id and drops the copy (or, if the sender's session was lost with the
 * original, routes this copy instead: still once).  Anything else goes
 * through the gate (a replay is refused there).  Cost on the normal path:
 * three assignments; the store is read only for a candidate resend.
 */
enum s2s_err
cs_gate_qos(struct s2s_cs *cs, const char *client_id,
	    const struct cs_topic *t, const uint8_t *buf, size_t len, int qos,
	    bool *copy)
{
	struct cs_pair *p = cs_pair_find(cs, t->pair);
	struct cs_session *s = p ? p->sess : NULL;
	int dir = p && client_id ? cs_pair_member(p, client_id) : -1;
	enum s2s_err rc;

	if (copy)
		*copy = false;
	if (qos == 2 && s && dir >= 0 && s->state == CS_SESS_ESTABLISHED &&
	    s->q2_open[dir] && s->q2_len[dir] == len && client_id &&
	    strcmp(client_id, t->id) == 0) {
		struct same_arg a = { buf, len, false };

		if (cs_store_fetch(cs, p->id, client_id, s->t, s->q2_seq[dir],
				   s->q2_seq[dir], 1, len, same_cb, &a) == S2S_OK &&
		    a.same) {
			cs_log(MOSQ_LOG_DEBUG, "gate: QoS 2 resend of '%s' seq "
			       "%llu passed to the broker's duplicate check",
			       client_id, (unsigned long long)s->q2_seq[dir]);
			if (copy)
				*copy = true;
			return S2S_OK;
		}
	}
	rc = cs_gate(cs, client_id, t, buf, len);
	if (rc == S2S_OK && (p = cs_pair_find(cs, t->pair)) && p->sess &&
	    (dir = cs_pair_member(p, client_id)) >= 0) {
		s = p->sess;
		s->q2_open[dir] = qos == 2;
		s->q2_routed[dir] = false;
		s->q2_nto[dir] = 0;
		s->q2_seq[dir] = s->chain[dir].next_seq - 1;
		s->q2_len[dir] = len;
	}
	return rc;
}

bool
cs_gate_route(struct s2s_cs *cs, const struct cs_topic *t, const void *reader,
	      const uint8_t *buf, size_t len)
{
	struct cs_pair *p = cs_pair_find(cs, t->pair);
	int dir = p ? cs_pair_member(p, t->id) : -1;
	struct cs_session *s = dir >= 0 ? p->sess : NULL;
	struct s2s_package pkg;

	if (!s || (!s->q2_open[dir] && !s->q2_routed[dir]) ||
	    s->q2_len[dir] != len ||
	    s2s_package_parse(buf, len, &cs->limits, &pkg) != S2S_OK ||
	    pkg.session != s->t || pkg.seq != s->q2_seq[dir])
		return true;
	if (s->q2_open[dir]) {
		/* Its first routing (the PUBREL): no resend passes now. */
		s->q2_open[dir] = false;
		s->q2_routed[dir] = true;
		s->q2_nto[dir] = 0;
	} else {
		for (unsigned k = 0; k < s->q2_nto[dir]; k++) {
			if (s->q2_to[dir][k] != reader)
				continue;
			cs_stats_reject(cs, S2S_ERR_REPLAY);
			cs_log(MOSQ_LOG_NOTICE, "gate: QoS 2 package seq %llu of "
			       "'%s' not routed again (a copy under another "
			       "message id)", (unsigned long long)pkg.seq,
			       t->id);
			return false;
		}
	}
	if (s->q2_nto[dir] < CS_Q2_READERS)
		s->q2_to[dir][s->q2_nto[dir]++] = reader;
	return true;
}
