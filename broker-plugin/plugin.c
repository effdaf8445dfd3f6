/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * plugin.c - mosquitto_s2s.so: the three entry points, the state, and the
 * event handlers that translate Mosquitto events into calls of cs.c,
 * gate.c, auth.c, acl.c, control.c and stats.c.
 *
 * Startup (mosquitto_plugin_init, after the broker dropped to its run
 * user): parse options, load or create the CS key, the admin key and the
 * store key, open the store, load pairs and sessions, register callbacks.
 * Any failure is logged with the option or file at fault and returned as
 * non-zero, which stops the broker.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "plugin.h"
#include "s2s/secmem.h"

#define S2S_PLUGIN_EXPORT __attribute__((visibility("default")))

S2S_PLUGIN_EXPORT int mosquitto_plugin_version(int count, const int *versions);
S2S_PLUGIN_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *id,
					    void **userdata,
					    struct mosquitto_opt *opts,
					    int count);
S2S_PLUGIN_EXPORT int mosquitto_plugin_cleanup(void *userdata,
					       struct mosquitto_opt *opts,
					       int count);

/* ---- utilities ---------------------------------------------------------- */

void
cs_log(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	mosquitto_log_printf(level, "s2s: %s", buf);
}

int64_t
cs_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t
cs_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* "<cs_key without .key><suffix>" */
static bool
beside(const struct s2s_cs *cs, const char *suffix, char *buf, size_t n)
{
	size_t kl = strlen(cs->opt.cs_key) - 4;    /* ends in ".key" */
	int r = snprintf(buf, n, "%.*s%s", (int)kl, cs->opt.cs_key, suffix);

	return r > 0 && (size_t)r < n;
}

static enum s2s_err
load_keys(struct s2s_cs *cs, char *err, size_t n)
{
	char base[4096], path[4096];
	struct s2s_key *k = NULL;
	uint8_t pub[S2S_P256_PUB_LEN];
	enum s2s_err rc;

	if (!beside(cs, "", base, sizeof(base)))
		goto toolong;
	/* The CS key: load, or create on first start. */
	if (file_exists(cs->opt.cs_key)) {
		rc = s2s_key_load_private(cs->opt.cs_key, &cs->cs_key);
		if (rc != S2S_OK) {
			snprintf(err, n, "plugin_opt_cs_key %s: %s%s",
				 cs->opt.cs_key, s2s_strerror(rc),
				 rc == S2S_ERR_PERM ? " (chmod 600)" : "");
			return S2S_ERR_CONFIG;
		}
	} else {
		rc = s2s_key_generate(&cs->cs_key);
		if (rc == S2S_OK)
			rc = s2s_key_save(cs->cs_key, base);
		if (rc != S2S_OK) {
			snprintf(err, n, "plugin_opt_cs_key %s: cannot create "
				 "(%s); is the directory writable by the broker"
				 " user?", cs->opt.cs_key, s2s_strerror(rc));
			return S2S_ERR_CONFIG;
		}
		cs_log(MOSQ_LOG_NOTICE, "created CS key %s (public key %s.pub)",
		       cs->opt.cs_key, base);
	}
	/* The admin public key. */
	if (cs->opt.admin_key) {
		rc = s2s_key_load_public(cs->opt.admin_key, &cs->admin_key);
		if (rc != S2S_OK) {
			snprintf(err, n, "plugin_opt_admin_key %s: %s",
				 cs->opt.admin_key, s2s_strerror(rc));
			return S2S_ERR_CONFIG;
		}
	} else {
		if (!beside(cs, ".admin.pub", path, sizeof(path)))
			goto toolong;
		if (file_exists(path)) {
			rc = s2s_key_load_public(path, &cs->admin_key);
		} else {
			if (!beside(cs, ".admin", base, sizeof(base)))
				goto toolong;
			rc = s2s_key_generate(&k);
			if (rc == S2S_OK)
				rc = s2s_key_save(k, base);
			if (rc == S2S_OK) {
				s2s_key_public(k, pub);
				rc = s2s_key_from_public(pub, &cs->admin_key);
				cs_log(MOSQ_LOG_NOTICE, "created admin key %s.key"
				       " (for s2s ctl) and %s.pub", base, base);
			}
			s2s_key_destroy(k);
		}
		if (rc != S2S_OK) {
			snprintf(err, n, "admin key %s: %s (set "
				 "plugin_opt_admin_key)", path,
				 s2s_strerror(rc));
			return S2S_ERR_CONFIG;
		}
	}
	/* The store key. */
	if (!beside(cs, ".store.key", path, sizeof(path)))
		goto toolong;
	rc = cs_store_key_load(path, cs->store_key);
	if (rc == S2S_OK)
		rc = cs_seal_init(cs);
	if (rc != S2S_OK) {
		snprintf(err, n, "store key %s (beside plugin_opt_cs_key): %s",
			 path, s2s_strerror(rc));
		return S2S_ERR_CONFIG;
	}
	return S2S_OK;
toolong:
	snprintf(err, n, "plugin_opt_cs_key: path too long");
	return S2S_ERR_CONFIG;
}

enum s2s_err
cs_create(const struct mosquitto_opt *opts, int count, struct s2s_cs **out,
	  char *err, size_t n)
{
	struct s2s_cs *cs = calloc(1, sizeof(*cs));
	enum s2s_err rc;

	*out = NULL;
	if (!cs) {
		snprintf(err, n, "out of memory");
		return S2S_ERR_NOMEM;
	}
	rc = cs_options_parse(&cs->opt, opts, count, err, n);
	if (rc == S2S_OK)
		rc = load_keys(cs, err, n);
	if (rc == S2S_OK)
		rc = cs_cluster_init(cs, err, n);
	if (rc == S2S_OK) {
		char shown[512];

		rc = cs_store_open(cs);
		if (rc == S2S_OK)
			cs_cluster_start(cs);
		if (rc != S2S_OK)
			snprintf(err, n, "plugin_opt_store %s: cannot open (%s);"
				 " %s", cs_store_display(cs->opt.store, shown,
							 sizeof(shown)),
				 s2s_strerror(rc), cs_store_is_pg(cs->opt.store)
				 ? "is the PostgreSQL server reachable (see "
				 "the log)?" : "is the directory writable by "
				 "the broker user?");
	}
	if (rc == S2S_OK) {
		char shown[512];

		rc = cs_tokens_open(cs);
		if (rc != S2S_OK)
			snprintf(err, n, "plugin_opt_store %s: cannot create "
				 "the used_tokens table (%s)",
				 cs_store_display(cs->opt.store, shown,
						  sizeof(shown)),
				 s2s_strerror(rc));
	}
	if (rc == S2S_OK) {
		char shown[512];

		rc = cs_store_load(cs);
		if (rc != S2S_OK)
			snprintf(err, n, "plugin_opt_store %s: cannot load (%s)",
				 cs_store_display(cs->opt.store, shown,
						  sizeof(shown)),
				 s2s_strerror(rc));
	}
	if (rc != S2S_OK) {
		cs_destroy(cs);
		return rc;
	}
	cs->limits.max_msg = cs->opt.max_package;
	cs->limits.max_image = cs->opt.max_package;
	cs->limits.image.max_width = 4096;
	cs->limits.image.max_height = 4096;
	/* The core's default, 1024 x 1024 (a cover that size carries 1 KB).
	 * 4096 x 4096 let a 16 KB PNG bomb hold the single-threaded broker
	 * for 0.4-0.5 s (decode + stego selection of 16 Mi pixels); at this
	 * limit it costs tens of ms (tests/test_attacks.c, issue 7). */
	cs->limits.image.max_pixels = S2S_PACKAGE_DEFAULT_MAX_PIXELS;
	cs->limits.image.max_bytes = cs->opt.max_package;
	*out = cs;
	return S2S_OK;
}

void
cs_destroy(struct s2s_cs *cs)
{
	if (!cs)
		return;
	cs_pair_free_all(cs);
	cs_conn_free_all(cs);
	cs_fetch_free_all(cs);
	cs_store_close(cs);
	if (cs->bridge_pw) {
		s2s_memzero(cs->bridge_pw, strlen(cs->bridge_pw));
		free(cs->bridge_pw);
	}
	s2s_key_destroy(cs->cs_key);
	s2s_key_destroy(cs->admin_key);
	s2s_aead_free(cs->seal_aead);
	cs_options_free(&cs->opt);
	s2s_memzero(cs, sizeof(*cs));
	free(cs);
}

/* ---- event handlers -------------------------------------------------------- */

int
cs_on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct s2s_cs *cs = userdata;

	(void)event;
	return cs_auth_check(cs, ed->client, mosquitto_client_id(ed->client),
			     ed->username, ed->password);
}

/* FNV-1a, 64 bit. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* Topic hash; payload: length, first and last 32 bytes (O(1)). */
static void
mark_of(const char *topic, const void *payload, size_t len, uint64_t *th,
	uint64_t *fp)
{
	const uint64_t basis = 0xcbf29ce484222325ull;
	size_t k = len < 32 ? len : 32;

	*th = fnv(basis, topic, strlen(topic));
	*fp = basis;
	if (payload && len) {
		*fp = fnv(*fp, payload, k);
		*fp = fnv(*fp, (const uint8_t *)payload + len - k, k);
	}
}

static bool
under_root(struct s2s_cs *cs, const char *topic)
{
	size_t rl = strlen(cs->opt.topic_root);

	return strncmp(topic, cs->opt.topic_root, rl) == 0 &&
	       (topic[rl] == '/' || topic[rl] == '\0');
}

int
cs_on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct s2s_cs *cs = userdata;
	const char *id = mosquitto_client_id(ed->client);
	const char *user = mosquitto_client_username(ed->client);
	enum cs_conn_kind kind;
	uint64_t th, fp;
	int rc;

	(void)event;
	if (!ed->topic)
		return MOSQ_ERR_ACL_DENIED;
	/*
	 * Wills (SECURITY.md, "Wills"): Mosquitto runs no MOSQ_EVT_MESSAGE
	 * for a will, only this WRITE check and then a READ check per
	 * subscriber.  A will of a dropped or revoked client is WRITE-checked
	 * after DISCONNECT removed it from the table (refused); on takeover
	 * the old connection was superseded at the new one's BASIC_AUTH
	 * (refused); at shutdown the WRITE may pass, but it is marked here,
	 * only MOSQ_EVT_MESSAGE clears the mark, and a READ of the marked
	 * message is refused below.  Nothing under ROOT is retained.
	 */
	if (ed->access == MOSQ_ACL_READ && cs->wmark.set &&
	    cs->wmark.len == ed->payloadlen) {
		mark_of(ed->topic, ed->payload, ed->payloadlen, &th, &fp);
		if (th == cs->wmark.topic && fp == cs->wmark.fp) {
			cs->wills_refused++;
			cs_log(MOSQ_LOG_NOTICE, "will on '%s' not delivered "
			       "to '%s': it did not pass the gate", ed->topic,
			       id ? id : "");
			return MOSQ_ERR_ACL_DENIED;
		}
	}
	if (ed->access == MOSQ_ACL_WRITE && ed->retain &&
	    (under_root(cs, ed->topic) ||
	     strncmp(ed->topic, "$CONTROL/", 9) == 0))
		return MOSQ_ERR_ACL_DENIED;

	if (ed->access == MOSQ_ACL_READ)
		kind = cs_conn_kind_read(cs, ed->client, id, user);
	else
		kind = cs_conn_kind(cs, ed->client);
	/* Feed readers beyond the pair's members (feed.c): a user name in
	 * the feed_readers list counts for password users only, never for a
	 * device that registered that name. */
	if (cs_feed_acl(cs, kind, kind == CS_CONN_DEVICE ? NULL : user,
			ed->access, ed->topic))
		return MOSQ_ERR_SUCCESS;
	rc = cs_acl_decide_bridge(cs, kind, id,
				  kind == CS_CONN_BRIDGE ?
				  cs_conn_id(cs, ed->client) : NULL,
				  ed->access, ed->topic, ed->payload,
				  ed->payloadlen);
	if (rc == MOSQ_ERR_SUCCESS && ed->access == MOSQ_ACL_READ &&
	    under_root(cs, ed->topic)) {
		struct cs_topic t;

		/* A QoS 2 package is routed at its PUBREL: no resend now,
		 * and no second routing of a copy under another id. */
		cs_topic_parse(cs->opt.topic_root, ed->topic, &t);
		if (t.kind == CS_T_PAIR &&
		    !cs_gate_route(cs, &t, ed->client, ed->payload,
				   ed->payloadlen))
			rc = MOSQ_ERR_ACL_DENIED;
	}
	if (rc == MOSQ_ERR_SUCCESS && ed->access == MOSQ_ACL_WRITE &&
	    under_root(cs, ed->topic)) {
		mark_of(ed->topic, ed->payload, ed->payloadlen, &th, &fp);
		cs->wmark.set = true;
		cs->wmark.len = ed->payloadlen;
		cs->wmark.topic = th;
		cs->wmark.fp = fp;
	}
	return rc;
}

/* A package the gate let through, for a receiver on another broker. */
static void
route_package(struct s2s_cs *cs, const struct cs_topic *t, const void *buf,
	      size_t len)
{
	char a[CS_ID_BUF], b[CS_ID_BUF], sub[400];
	int r;

	if (!cs_pair_split(t->pair, a, b))
		return;
	r = snprintf(sub, sizeof(sub), "pair/%s/%s", t->pair, t->id);
	if (r > 0 && (size_t)r < sizeof(sub))
		cs_cluster_route(cs, strcmp(t->id, a) == 0 ? b : a, sub, buf,
				 len);
}

int
cs_on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct s2s_cs *cs = userdata;
	const char *cid = mosquitto_client_id(ed->client);
	struct cs_topic t;
	bool copy = false;

	(void)event;
	cs->wmark.set = false;      /* a PUBLISH, not a will */
	if (!ed->topic)
		return MOSQ_ERR_SUCCESS;
	cs_topic_parse(cs->opt.topic_root, ed->topic, &t);
	switch (t.kind) {
	case CS_T_REGISTER:
		ed->retain = false;
		cs_on_register(cs, cid, ed->payload, ed->payloadlen);
		return MOSQ_ERR_SUCCESS;
	case CS_T_REQ:
		ed->retain = false;
		if (cid && strcmp(cid, t.id) == 0 &&
		    cs_conn_kind(cs, ed->client) == CS_CONN_DEVICE)
			cs_on_request(cs, t.id, ed->payload, ed->payloadlen);
		return MOSQ_ERR_SUCCESS;
	case CS_T_PAIR:
		ed->retain = false;
		if (cs_conn_kind(cs, ed->client) != CS_CONN_DEVICE) {
			cs_stats_reject(cs, S2S_ERR_DENIED);
			return MOSQ_ERR_ACL_DENIED;
		}
		/*
		 * Only MQTT 5 needs the QoS 2 resend rule (SECURITY.md, "QoS
		 * 2"): a refused resend ends its flow there (PUBREC >= 0x80),
		 * so the original would never be released.  In 3.1.1 a
		 * PUBREC carries no reason: a refused resend leaves the
		 * original to its PUBREL, and copies under other message ids
		 * are refused as replays.
		 */
		if (cs_gate_qos(cs, cid, &t, ed->payload, ed->payloadlen,
				ed->qos == 2 && mosquitto_client_protocol_version(
					ed->client) != 5 ? 1 : ed->qos, &copy) !=
		    S2S_OK)
			return MOSQ_ERR_ACL_DENIED;
		/* A QoS 2 copy of the last package went to the receiver's
		 * broker with the original already (it is routed here at
		 * its PUBLISH, not at its PUBREL). */
		if (!copy)
			route_package(cs, &t, ed->payload, ed->payloadlen);
		return MOSQ_ERR_SUCCESS;
	case CS_T_BRIDGE:
		/* Verified by the gate of the sender's broker: trusted only
		 * from that broker's authenticated bridge (acl.c, again). */
		ed->retain = false;
		if (cs_conn_kind(cs, ed->client) == CS_CONN_BRIDGE &&
		    strcmp(cs_conn_id(cs, ed->client), t.broker) == 0)
			cs_cluster_deliver(cs, &t, ed->payload, ed->payloadlen);
		else
			cs_stats_reject(cs, S2S_ERR_DENIED);
		return MOSQ_ERR_ACL_DENIED;     /* delivered; route no further */
	case CS_T_FOREIGN:
		return MOSQ_ERR_SUCCESS;
	default:
		/* The ACL let nothing else under ROOT through. */
		return MOSQ_ERR_ACL_DENIED;
	}
}

int
cs_on_control(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct s2s_cs *cs = userdata;

	(void)event;
	/* Always SUCCESS: an error would disconnect the admin client. */
	if (cs_conn_kind(cs, ed->client) != CS_CONN_ADMIN)
		return MOSQ_ERR_SUCCESS;
	cs_control(cs, mosquitto_client_id(ed->client), ed->payload,
		   ed->payloadlen);
	return MOSQ_ERR_SUCCESS;
}

int
cs_on_tick(int event, void *event_data, void *userdata)
{
	struct s2s_cs *cs = userdata;
	int64_t now = cs_mono_ms();

	(void)event;
	(void)event_data;
	cs_tick(cs, now);
	cs_cluster_tick(cs, now);
	(void)cs_store_tick(cs);        /* other brokers (shared store) */
	if (now >= cs->next_retention_ms) {
		long n = cs_store_retention(cs, cs_now_s());

		if (n > 0)
			cs_log(MOSQ_LOG_DEBUG, "retention: %ld packages "
			       "deleted", n);
		(void)cs_tokens_prune(cs, cs_now_s());
		cs->next_retention_ms = now + 10000;
	}
	cs_stats_tick(cs, now, false);
	return MOSQ_ERR_SUCCESS;
}

int
cs_on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct s2s_cs *cs = userdata;
	const char *id = mosquitto_client_id(ed->client);
	bool device = cs_conn_kind(cs, ed->client) == CS_CONN_DEVICE;

	(void)event;
	cs_fetch_forget(cs, id);
	cs_conn_forget(cs, ed->client);
	if (device)
		cs_cluster_device_down(cs, id);
	return MOSQ_ERR_SUCCESS;
}

/* ---- entry points ------------------------------------------------------------- */

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
	const char *data;
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, cs_on_basic_auth, NULL },
	{ MOSQ_EVT_ACL_CHECK, cs_on_acl_check, NULL },
	{ MOSQ_EVT_MESSAGE, cs_on_message, NULL },
	{ MOSQ_EVT_CONTROL, cs_on_control, CS_CONTROL_TOPIC },
	{ MOSQ_EVT_TICK, cs_on_tick, NULL },
	{ MOSQ_EVT_DISCONNECT, cs_on_disconnect, NULL },
};

#define NCALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

int
mosquitto_plugin_version(int count, const int *versions)
{
	for (int i = 0; i < count; i++)
		if (versions[i] == 5)
			return 5;
	return -1;
}

int
mosquitto_plugin_init(mosquitto_plugin_id_t *id, void **userdata,
		      struct mosquitto_opt *opts, int count)
{
	struct s2s_cs *cs;
	char err[512] = "";
	size_t i;

	if (cs_create(opts, count, &cs, err, sizeof(err)) != S2S_OK) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "s2s: %s", err);
		return MOSQ_ERR_INVAL;
	}
	cs->pid = id;
	for (i = 0; i < NCALLBACKS; i++) {
		if (mosquitto_callback_register(id, callbacks[i].event,
						callbacks[i].cb,
						callbacks[i].data, cs) !=
		    MOSQ_ERR_SUCCESS) {
			mosquitto_log_printf(MOSQ_LOG_ERR, "s2s: cannot "
					     "register callback %d",
					     callbacks[i].event);
			while (i-- > 0)
				mosquitto_callback_unregister(
					id, callbacks[i].event,
					callbacks[i].cb, callbacks[i].data);
			cs_destroy(cs);
			return MOSQ_ERR_UNKNOWN;
		}
	}
	*userdata = cs;
	cs_stats_tick(cs, cs_mono_ms(), true);
	cs_log(MOSQ_LOG_NOTICE, "cloud server '%s' ready: root '%s', "
	       "profile %s, enrolment %s, foreign topics %s, %ld pairs, "
	       "%ld sessions", cs->opt.cs_id, cs->opt.topic_root,
	       s2s_profile_name(cs->opt.profile),
	       cs->opt.enroll_open ? "open" : "code",
	       cs->opt.foreign == CS_FOREIGN_ALLOW ? "allow" : "deny",
	       cs_pair_count(cs), cs_session_count(cs, true));
	return MOSQ_ERR_SUCCESS;
}

int
mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts,
			 int count)
{
	struct s2s_cs *cs = userdata;

	(void)opts;
	(void)count;
	if (!cs)
		return MOSQ_ERR_SUCCESS;
	for (size_t i = 0; i < NCALLBACKS; i++)
		mosquitto_callback_unregister(cs->pid, callbacks[i].event,
					      callbacks[i].cb,
					      callbacks[i].data);
	cs_destroy(cs);
	s2s_crypto_shutdown();
	return MOSQ_ERR_SUCCESS;
}
