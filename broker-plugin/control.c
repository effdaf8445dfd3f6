/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c - the admin API on $CONTROL/s2s/v1, in the style of the
 * dynamic-security plugin: {"commands":[...]} in, {"responses":[...]} out
 * on $CONTROL/s2s/v1/response.  The JSON is parsed and built by config/
 * (admin.h); this file only executes commands.  Only the client that
 * authenticated with the admin token reaches here (auth.c, acl.c), and
 * only it may read the response topic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "admin.h"
#include "plugin.h"
#include "s2s/secmem.h"

#define DEFAULT_CODE_VALIDITY 86400

static const char *
state_name(enum cs_sess_state s)
{
	switch (s) {
	case CS_SESS_KEYS_SENT:
		return "keys_sent";
	case CS_SESS_FWD_SENT:
		return "forwarded";
	case CS_SESS_ESTABLISHED:
		return "established";
	}
	return "unknown";
}

static bool
device_connected(struct s2s_cs *cs, const char *id)
{
	return cs_device_here(cs, id) || cs_cluster_connected(cs, id);
}

static void
put_device(struct s2s_cs *cs, struct s2s_json *o,
	   const struct cs_device_rec *r)
{
	s2s_json_add_string(o, "id", r->id);
	s2s_json_add_bool(o, "revoked", r->revoked);
	s2s_json_add_int(o, "created", r->created);
	s2s_json_add_bool(o, "connected", device_connected(cs, r->id));
}

struct list_ctx {
	struct s2s_cs *cs;
	struct s2s_json *arr;
};

static void
list_one(void *arg, const struct cs_device_rec *r)
{
	struct list_ctx *c = arg;

	put_device(c->cs, s2s_json_push_object(c->arr), r);
}

static void
put_session(struct s2s_json *o, const struct cs_pair *p)
{
	const struct cs_session *x = p->sess;
	struct s2s_json *n;

	s2s_json_add_string(o, "pair", p->id);
	s2s_json_add_u64_string(o, "session", x->t);
	s2s_json_add_string(o, "state", state_name(x->state));
	s2s_json_add_string(o, "sds", p->m[x->sds]);
	if (x->state == CS_SESS_ESTABLISHED) {
		n = s2s_json_add_object(o, "next_seq");
		s2s_json_add_u64_string(n, p->m[0], x->chain[0].next_seq);
		s2s_json_add_u64_string(n, p->m[1], x->chain[1].next_seq);
	}
}

static void
put_pair(struct s2s_cs *cs, struct s2s_json *o, const struct cs_pair *p)
{
	struct s2s_json *m;

	s2s_json_add_string(o, "pair", p->id);
	m = s2s_json_add_array(o, "members");
	s2s_json_push_string(m, p->m[0]);
	s2s_json_push_string(m, p->m[1]);
	s2s_json_add_string(o, "profile", s2s_profile_name(p->profile));
	s2s_json_add_int(o, "created", p->created);
	s2s_json_add_int(o, "packages", cs_store_package_count(cs, p->id));
	if (p->sess)
		put_session(s2s_json_add_object(o, "session"), p);
}

static void
put_stats(struct s2s_cs *cs, struct s2s_json *d)
{
	const struct cs_stats *s = &cs->stats;
	struct s2s_json *pk, *rj;
	uint64_t total = 0;

	s2s_json_add_int(d, "devices", cs_store_device_count(cs));
	s2s_json_add_int(d, "devicesConnected",
			 cs_conn_count(cs, CS_CONN_DEVICE));
	s2s_json_add_int(d, "pairs", cs_pair_count(cs));
	s2s_json_add_int(d, "sessions", cs_session_count(cs, true));
	s2s_json_add_int(d, "sessionsPending", cs_session_count(cs, false) -
			 cs_session_count(cs, true));
	pk = s2s_json_add_object(d, "packages");
	s2s_json_add_u64_string(pk, "accepted", s->accepted);
	rj = s2s_json_add_object(pk, "rejected");
	for (int i = 0; i < S2S_ERR_COUNT; i++) {
		total += s->rejected[i];
		if (s->rejected[i])
			s2s_json_add_u64_string(rj, i ? s2s_errname(-i) :
						"other", s->rejected[i]);
	}
	s2s_json_add_u64_string(pk, "rejectedTotal", total);
	s2s_json_add_u64_string(d, "registrations", s->registered);
	s2s_json_add_u64_string(d, "registrationsRejected",
				s->register_rejected);
	s2s_json_add_u64_string(d, "negotiations", s->negotiated);
	s2s_json_add_u64_string(d, "negotiationsRejected",
				s->negotiation_rejected);
	s2s_json_add_u64_string(d, "controlRejected", s->control_rejected);
	cs_cluster_stats(cs, s2s_json_add_object(d, "cluster"));
}

/* Printable ASCII without space: a code a person can type. */
static bool
code_valid(const char *c)
{
	size_t n = strlen(c);

	if (n < 8 || n > S2S_ADMIN_CODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (c[i] < 0x21 || c[i] > 0x7e)
			return false;
	return true;
}

static enum s2s_err
random_code(char out[S2S_ADMIN_CODE_MAX + 1])
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	uint8_t r[16];
	enum s2s_err rc = s2s_random(r, sizeof(r));

	if (rc != S2S_OK)
		return rc;
	for (size_t i = 0; i < sizeof(r); i++)
		out[i] = alphabet[r[i] & 31];
	out[sizeof(r)] = '\0';
	S2S_WIPE(r);
	return S2S_OK;
}

static void
remove_device(struct s2s_cs *cs, const char *id)
{
	struct cs_pair *p = cs->pairs, *next;

	for (; p; p = next) {
		next = p->next;
		if (cs_pair_member(p, id) >= 0)
			cs_pair_remove(cs, p);
	}
	(void)cs_store_device_revoke(cs, id);
	/* Only a connected client: Mosquitto 2.0 (up to 2.0.22, fixed by its
	 * PR 3341) adds a context that is already disconnected, kept for its
	 * session expiry, to the expiry list a second time when kicked, and
	 * later crashes in session_expiry__remove() (seen here: a revoked
	 * device that registers again).  A disconnected one is refused at its
	 * next CONNECT anyway. */
	if (device_connected(cs, id))
		mosquitto_kick_client_by_clientid(id, false);
	cs->stats_dirty = true;
	cs_log(MOSQ_LOG_NOTICE, "device '%s' revoked by the admin", id);
}

static void
run(struct s2s_cs *cs, struct s2s_json *reply, struct s2s_admin_cmd *c)
{
	struct cs_device_rec rec;
	struct cs_pair *p;
	struct s2s_json *d, *a;
	struct list_ctx lc;
	int64_t expires;
	enum s2s_err rc;

	if (c->error[0]) {
		(void)s2s_admin_reply_add(reply, c, c->error);
		return;
	}
	switch (c->kind) {
	case S2S_ADMIN_LIST_DEVICES:
		d = s2s_admin_reply_add(reply, c, NULL);
		lc.cs = cs;
		lc.arr = s2s_json_add_array(d, "devices");
		(void)cs_store_device_list(cs, list_one, &lc);
		return;
	case S2S_ADMIN_GET_DEVICE:
		if (cs_store_device_get(cs, c->id, &rec, NULL, NULL) != S2S_OK) {
			(void)s2s_admin_reply_add(reply, c, "device not found");
			return;
		}
		d = s2s_json_add_object(s2s_admin_reply_add(reply, c, NULL),
					"device");
		put_device(cs, d, &rec);
		a = s2s_json_add_array(d, "pairs");
		for (p = cs->pairs; p; p = p->next)
			if (cs_pair_member(p, c->id) >= 0)
				s2s_json_push_string(a, p->id);
		return;
	case S2S_ADMIN_REMOVE_DEVICE:
		if (cs_store_device_get(cs, c->id, &rec, NULL, NULL) != S2S_OK) {
			(void)s2s_admin_reply_add(reply, c, "device not found");
			return;
		}
		remove_device(cs, c->id);
		(void)s2s_admin_reply_add(reply, c, NULL);
		return;
	case S2S_ADMIN_ADD_ENROLMENT_CODE:
		if (!s2s_id_valid(c->id)) {
			(void)s2s_admin_reply_add(reply, c, "invalid device id");
			return;
		}
		if (c->code[0] == '\0') {
			if (random_code(c->code) != S2S_OK) {
				(void)s2s_admin_reply_add(reply, c,
							  "random failed");
				return;
			}
		} else if (!code_valid(c->code)) {
			(void)s2s_admin_reply_add(reply, c, "code: 8..128 "
						  "printable characters");
			return;
		}
		if (c->validity < 0)
			c->validity = DEFAULT_CODE_VALIDITY;
		expires = c->validity ? cs_now_s() + c->validity : 0;
		rc = cs_store_code_add(cs, c->id, (const uint8_t *)c->code,
				       strlen(c->code), expires);
		if (rc != S2S_OK) {
			(void)s2s_admin_reply_add(reply, c, s2s_strerror(rc));
			return;
		}
		d = s2s_admin_reply_add(reply, c, NULL);
		s2s_json_add_string(d, "id", c->id);
		s2s_json_add_string(d, "code", c->code);
		s2s_json_add_int(d, "expires", expires);
		cs_log(MOSQ_LOG_NOTICE, "enrolment code issued for '%s'", c->id);
		return;
	case S2S_ADMIN_LIST_PAIRS:
		a = s2s_json_add_array(s2s_admin_reply_add(reply, c, NULL),
				       "pairs");
		for (p = cs->pairs; p; p = p->next)
			put_pair(cs, s2s_json_push_object(a), p);
		return;
	case S2S_ADMIN_REMOVE_PAIR:
		p = cs_pair_find(cs, c->pair);
		if (!p) {
			(void)s2s_admin_reply_add(reply, c, "pair not found");
			return;
		}
		cs_pair_remove(cs, p);
		cs_log(MOSQ_LOG_NOTICE, "pair '%s' removed by the admin",
		       c->pair);
		(void)s2s_admin_reply_add(reply, c, NULL);
		return;
	case S2S_ADMIN_UNPAIR:      /* removePair, the pair named by members */
		p = cs_pair_find(cs, c->pair);
		if (!p) {
			(void)s2s_admin_reply_add(reply, c, "pair not found");
			return;
		}
		cs_pair_remove(cs, p);
		cs_log(MOSQ_LOG_NOTICE, "pair '%s' removed by the admin",
		       c->pair);
		s2s_json_add_string(s2s_admin_reply_add(reply, c, NULL), "pair",
				    c->pair);
		return;
	case S2S_ADMIN_LIST_SESSIONS:
		a = s2s_json_add_array(s2s_admin_reply_add(reply, c, NULL),
				       "sessions");
		for (p = cs->pairs; p; p = p->next)
			if (p->sess)
				put_session(s2s_json_push_object(a), p);
		return;
	case S2S_ADMIN_END_SESSION:
		p = cs_pair_find(cs, c->pair);
		if (!p || !p->sess) {
			(void)s2s_admin_reply_add(reply, c, "no such session");
			return;
		}
		cs_session_end(cs, p, true, "ended by the admin");
		(void)s2s_admin_reply_add(reply, c, NULL);
		return;
	case S2S_ADMIN_GET_STATISTICS:
		put_stats(cs, s2s_admin_reply_add(reply, c, NULL));
		return;
	case S2S_ADMIN_UNKNOWN:
		break;
	}
	(void)s2s_admin_reply_add(reply, c, "unknown command");
}

static void
publish(struct s2s_json *reply)
{
	size_t len = 0;
	char *text = s2s_json_print(reply, &len);

	if (!text) {
		static const char oom[] = "{\"responses\":[{\"command\":\"?\","
					  "\"error\":\"out of memory\"}]}";

		mosquitto_broker_publish_copy(NULL, CS_CONTROL_RESPONSE,
					      (int)strlen(oom), oom, 1, false,
					      NULL);
		return;
	}
	mosquitto_broker_publish_copy(NULL, CS_CONTROL_RESPONSE, (int)len,
				      text, 1, false, NULL);
	s2s_memzero(text, len);     /* may hold a fresh enrolment code */
	free(text);
}

void
cs_control(struct s2s_cs *cs, const char *client_id, const uint8_t *buf,
	   size_t len)
{
	struct s2s_admin_req req;
	struct s2s_json *reply = s2s_admin_reply_new();
	struct s2s_admin_cmd bad;
	char err[128] = "";

	if (!reply)
		return;
	if (s2s_admin_parse(buf, len, &req, err, sizeof(err)) != S2S_OK) {
		memset(&bad, 0, sizeof(bad));
		snprintf(bad.name, sizeof(bad.name), "?");
		(void)s2s_admin_reply_add(reply, &bad, err);
		cs_log(MOSQ_LOG_NOTICE, "admin '%s': %s",
		       client_id ? client_id : "", err);
	} else {
		cs_cluster_sync(cs);    /* answer for the whole cluster */
		for (size_t i = 0; i < req.count; i++)
			run(cs, reply, &req.cmds[i]);
	}
	s2s_admin_req_free(&req);
	publish(reply);
	s2s_json_free(reply);
}
