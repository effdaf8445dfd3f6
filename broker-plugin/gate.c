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
