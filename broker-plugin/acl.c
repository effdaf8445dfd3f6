/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * acl.c - who may publish, subscribe to and receive what
 * (docs/PROTOCOL.md, "Topics"; docs/OPERATIONS.md, "Access
 * control").
 *
 * Every decision is explicit SUCCESS or ACL_DENIED: once an ACL callback
 * is registered, a DEFER from every plugin means deny, and a plain broker
 * allows everything, so "allow" for foreign topics must be said out loud.
 * Wildcard subscriptions that could reach protected topics through a
 * wildcard level (e.g. "#") are allowed with foreign_topics allow: the
 * READ check at delivery still filters every protected message.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "plugin.h"

#define ALLOW MOSQ_ERR_SUCCESS
#define DENY MOSQ_ERR_ACL_DENIED

static int
foreign(struct s2s_cs *cs)
{
	return cs->opt.foreign == CS_FOREIGN_ALLOW ? ALLOW : DENY;
}

static bool
same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static bool
is_member(struct s2s_cs *cs, enum cs_conn_kind kind, const char *client_id,
	  const char *pair)
{
	struct cs_pair *p;

	if (kind != CS_CONN_DEVICE || !client_id)
		return false;
	p = cs_pair_get(cs, pair, client_id);
	return p && cs_pair_member(p, client_id) >= 0;
}

/* READ (payload known) or SUBSCRIBE (payload NULL) of a topic name. */
static int
decide_read(struct s2s_cs *cs, enum cs_conn_kind kind, const char *client_id,
	    const struct cs_topic *t, int access, const void *payload,
	    size_t len)
{
	enum s2s_msg_type type;
	uint64_t req;

	switch (t->kind) {
	case CS_T_FOREIGN:
		return foreign(cs);
	case CS_T_INBOX:
		if (!same(client_id, t->id) || kind == CS_CONN_ADMIN)
			return DENY;
		if (kind == CS_CONN_DEVICE || access == MOSQ_ACL_SUBSCRIBE)
			return ALLOW;
		/* An enrolling client reads only the answer to REGISTER. */
		if (payload && s2s_msg_peek(payload, len, &type, &req) ==
		    S2S_OK && (type == S2S_MSG_REGISTERED ||
			       type == S2S_MSG_REJECT))
			return ALLOW;
		return DENY;
	case CS_T_PAIR:
	case CS_T_VERIFIED:
		return is_member(cs, kind, client_id, t->pair) ? ALLOW : DENY;
	case CS_T_CONTROL_RESP:
		return kind == CS_CONN_ADMIN ? ALLOW : DENY;
	case CS_T_SYS:
		return ALLOW;
	default:
		return DENY;
	}
}

static int
decide_write(struct s2s_cs *cs, enum cs_conn_kind kind,
	     const char *client_id, const struct cs_topic *t,
	     const char *bridge)
{
	switch (t->kind) {
	case CS_T_BRIDGE:
		/* Only a peer broker's authenticated bridge, in its own name. */
		return kind == CS_CONN_BRIDGE && same(bridge, t->broker) ?
		       ALLOW : DENY;
	case CS_T_FOREIGN:
		return foreign(cs);
	case CS_T_REGISTER:
		return kind != CS_CONN_ADMIN && client_id ? ALLOW : DENY;
	case CS_T_REQ:
		return kind == CS_CONN_DEVICE && same(client_id, t->id) ?
		       ALLOW : DENY;
	case CS_T_PAIR:
		return same(client_id, t->id) &&
		       is_member(cs, kind, client_id, t->pair) ? ALLOW : DENY;
	case CS_T_CONTROL:
		return kind == CS_CONN_ADMIN ? ALLOW : DENY;
	default:
		/* Inboxes, the feed, $SYS and the rest of ROOT: the CS only. */
		return DENY;
	}
}

/* Strip "$share/<group>/" from a subscription filter. */
static const char *
unshare(const char *f)
{
	const char *s;

	if (strncmp(f, "$share/", 7) != 0)
		return f;
	s = strchr(f + 7, '/');
	return s ? s + 1 : f;
}

/*
 * Could filter f match a topic under the protected prefix p (a plain
 * topic of one or more levels)?  Level by level: '+' and equal levels go
 * on, '#' matches anything below.
 */
static bool
reaches(const char *f, const char *p)
{
	for (;;) {
		size_t fl = strcspn(f, "/"), pl = strcspn(p, "/");

		if (fl == 1 && f[0] == '#')
			return true;
		if (!(fl == 1 && f[0] == '+') &&
		    (fl != pl || memcmp(f, p, fl) != 0))
			return false;
		f += fl;
		p += pl;
		if (*p == '\0')
			return true;    /* everything below p is reachable */
		if (*f == '\0')
			return false;
		f++;
		p++;
	}
}

static int
decide_subscribe(struct s2s_cs *cs, enum cs_conn_kind kind,
		 const char *client_id, const char *filter)
{
	struct cs_topic t;
	const char *root = cs->opt.topic_root;
	size_t rl = strlen(root);
	char buf[512];
	size_t n;

	filter = unshare(filter);
	if (!strpbrk(filter, "+#")) {
		cs_topic_parse(root, filter, &t);
		return decide_read(cs, kind, client_id, &t,
				   MOSQ_ACL_SUBSCRIBE, NULL, 0);
	}
	if (strncmp(filter, CS_SYS_PREFIX, strlen(CS_SYS_PREFIX)) == 0)
		return ALLOW;
	if (strncmp(filter, "$CONTROL/", 9) == 0 &&
	    reaches(filter, "$CONTROL/s2s"))
		return DENY;
	if (strncmp(filter, root, rl) == 0 &&
	    (filter[rl] == '/' || filter[rl] == '\0')) {
		/* Literal ROOT: only ROOT/pair/<own pair>/+ or /#. */
		n = strlen(filter);
		if (n >= sizeof(buf) || n < rl + 8)
			return DENY;
		memcpy(buf, filter, n + 1);
		if (strcmp(buf + n - 2, "/+") != 0 &&
		    strcmp(buf + n - 2, "/#") != 0)
			return DENY;
		buf[n - 2] = '\0';
		if (strpbrk(buf, "+#") || strncmp(buf + rl, "/pair/", 6) != 0)
			return DENY;
		return is_member(cs, kind, client_id, buf + rl + 6) ?
		       ALLOW : DENY;
	}
	/* Other filters: plain MQTT, protected messages are READ-checked. */
	return foreign(cs);
}

int
cs_acl_decide_bridge(struct s2s_cs *cs, enum cs_conn_kind kind,
		     const char *client_id, const char *bridge, int access,
		     const char *topic, const void *payload, size_t len)
{
	struct cs_topic t;

	if (!topic)
		return DENY;
	switch (access) {
	case MOSQ_ACL_UNSUBSCRIBE:
		return ALLOW;
	case MOSQ_ACL_SUBSCRIBE:
		return decide_subscribe(cs, kind, client_id, topic);
	case MOSQ_ACL_WRITE:
		cs_topic_parse(cs->opt.topic_root, topic, &t);
		return decide_write(cs, kind, client_id, &t, bridge);
	case MOSQ_ACL_READ:
		cs_topic_parse(cs->opt.topic_root, topic, &t);
		return decide_read(cs, kind, client_id, &t, access, payload,
				   len);
	default:
		return DENY;
	}
}

int
cs_acl_decide(struct s2s_cs *cs, enum cs_conn_kind kind,
	      const char *client_id, int access, const char *topic,
	      const void *payload, size_t len)
{
	return cs_acl_decide_bridge(cs, kind, client_id, NULL, access, topic,
				    payload, len);
}
