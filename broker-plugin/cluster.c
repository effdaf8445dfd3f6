/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cluster.c - several brokers, one system (issue 13, docs/CLUSTER.md).
 *
 * Every broker runs this plugin against one store (PostgreSQL), which is
 * the truth for pairs, sessions and chains; cs->pairs is a cache of it
 * (cs.c reads the store again where brokers can disagree, gate.c when its
 * chain is behind).  What is left here:
 *
 *   routing   Mosquitto's own bridges carry packages and control messages
 *             between brokers.  Broker X has, for every peer Y, a bridge
 *             (opened by X, `s2s cluster-config` writes it) that publishes
 *             what X's plugin routes to Y (ROOT/route/Y/pair/... and
 *             .../inbox/...: for devices connected to Y, from the presence
 *             table) to Y as ROOT/bridge/X/pair/... and
 *             ROOT/bridge/X/inbox/....  On Y the
 *             bridge is an ordinary client: it authenticates here as user
 *             "s2s-bridge-X" with the bridges' password, only it may write
 *             ROOT/bridge/X/..., and what it writes is handed straight to
 *             the device it is for if that device is connected to Y
 *             (mosquitto_broker_publish to one client id): it never reaches
 *             Y's own subscriptions, so Y's bridges never forward it again
 *             (no loops) and a device gets each message from one broker
 *             only (no duplicates).  A package on the bridge was verified
 *             by the gate of X; Y trusts it because of who sent it.
 *   events    revocations, removed pairs and changed sessions reach the
 *             other brokers through the shared store (its writes notify;
 *             store.c, cs_store_tick, applies them): they kick the device
 *             and read stale caches again.
 *   view      each broker writes its counters and connected devices into
 *             the store every few seconds (cs_store_broker_put); the admin
 *             API and $SYS/broker/s2s/cluster/... sum them.
 *
 * Threading: the broker's main thread only, like every callback.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "json.h"
#include "plugin.h"
#include "s2s/secmem.h"

#define BRIDGE_USER_PREFIX CS_BRIDGE_USER_PREFIX
#define BROKER_ROW_MS 2000
#define BROKER_ALIVE_S 10
#define CONNECTED_MAX 2000      /* device ids listed per broker row */

enum s2s_err
cs_cluster_init(struct s2s_cs *cs, char *err, size_t n)
{
	char buf[512];
	ssize_t r;
	int fd;

	if (!cs->opt.bridge_secret)
		return S2S_OK;
	fd = open(cs->opt.bridge_secret, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, n, "plugin_opt_bridge_secret %s: cannot read",
			 cs->opt.bridge_secret);
		return S2S_ERR_CONFIG;
	}
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r < 0)
		r = 0;
	buf[r] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16) {
		S2S_WIPE(buf);
		snprintf(err, n, "plugin_opt_bridge_secret %s: the password "
			 "must be one line of at least 16 characters",
			 cs->opt.bridge_secret);
		return S2S_ERR_CONFIG;
	}
	cs->bridge_pw = strdup(buf);
	S2S_WIPE(buf);
	if (!cs->bridge_pw) {
		snprintf(err, n, "out of memory");
		return S2S_ERR_NOMEM;
	}
	return S2S_OK;
}

/* Is id one of the comma-separated names in list? */
static bool
listed(const char *list, const char *id)
{
	size_t n = strlen(id);

	for (const char *s = list; s && *s;) {
		size_t l = strcspn(s, ",");

		if (l == n && memcmp(s, id, n) == 0)
			return true;
		s += l;
		if (*s == ',')
			s++;
	}
	return false;
}

int
cs_cluster_bridge_auth(struct s2s_cs *cs, const char *username,
		       const char *password, char broker[CS_ID_BUF])
{
	const char *b;
	size_t pl;
	bool ok;

	if (!cs->opt.bridge_users || !cs->bridge_pw ||
	    strncmp(username, BRIDGE_USER_PREFIX,
		    strlen(BRIDGE_USER_PREFIX)) != 0)
		return 0;
	b = username + strlen(BRIDGE_USER_PREFIX);
	if (!s2s_id_valid(b) || !listed(cs->opt.bridge_users, b) ||
	    strcmp(b, cs->opt.broker_id) == 0)
		return 0;
	pl = strlen(cs->bridge_pw);
	ok = password && strlen(password) == pl &&
	     s2s_ct_equal(password, cs->bridge_pw, pl);
	if (!ok)
		return -1;
	snprintf(broker, CS_ID_BUF, "%s", b);
	return 1;
}

/* This broker's row: {"accepted":..,"connected":[ids],...}. */
static void
broker_row(struct s2s_cs *cs, int64_t now_s)
{
	struct s2s_json *o = s2s_json_new_object(), *a;
	uint64_t rejected = 0;
	char *text;
	size_t len = 0;
	long listed_n = 0;

	if (!o)
		return;
	for (int i = 0; i < S2S_ERR_COUNT; i++)
		rejected += cs->stats.rejected[i];
	s2s_json_add_int(o, "accepted", (int64_t)cs->stats.accepted);
	s2s_json_add_int(o, "rejected", (int64_t)rejected);
	s2s_json_add_int(o, "registered", (int64_t)cs->stats.registered);
	s2s_json_add_int(o, "negotiated", (int64_t)cs->stats.negotiated);
	s2s_json_add_int(o, "bridged_in", (int64_t)cs->stats.bridged_in);
	s2s_json_add_int(o, "bridged_delivered",
			 (int64_t)cs->stats.bridged_delivered);
	s2s_json_add_int(o, "devices_connected",
			 cs_conn_count(cs, CS_CONN_DEVICE));
	s2s_json_add_int(o, "bridges_connected",
			 cs_conn_count(cs, CS_CONN_BRIDGE));
	a = s2s_json_add_array(o, "connected");
	for (struct cs_conn *c = cs->conns; c && listed_n < CONNECTED_MAX;
	     c = c->next) {
		if (c->kind == CS_CONN_DEVICE) {
			s2s_json_push_string(a, c->id);
			listed_n++;
		}
	}
	text = s2s_json_print(o, &len);
	s2s_json_free(o);
	if (!text)
		return;
	if (cs_store_broker_put(cs, cs->opt.broker_id, text, now_s) != S2S_OK)
		cs_log(MOSQ_LOG_WARNING, "cluster: cannot write this broker's "
		       "row");
	free(text);
}

void
cs_cluster_tick(struct s2s_cs *cs, int64_t now_ms)
{
	if (now_ms < cs->next_cluster_ms)
		return;
	cs->next_cluster_ms = now_ms + BROKER_ROW_MS;
	broker_row(cs, cs_now_s());
	cs->stats_dirty = true;     /* the cluster leaves of $SYS */
}

void
cs_cluster_deliver(struct s2s_cs *cs, const struct cs_topic *t,
		   const uint8_t *buf, size_t len)
{
	char topic[512], a[CS_ID_BUF], b[CS_ID_BUF];
	const char *to;
	int r;

	cs->stats.bridged_in++;
	if (t->inner == CS_T_PAIR) {
		if (!cs_pair_split(t->pair, a, b))
			return;
		if (strcmp(t->id, a) == 0)
			to = b;
		else if (strcmp(t->id, b) == 0)
			to = a;
		else
			return;
		r = snprintf(topic, sizeof(topic), "%s/pair/%s/%s",
			     cs->opt.topic_root, t->pair, t->id);
	} else {
		to = t->id;
		r = snprintf(topic, sizeof(topic), "%s/inbox/%s",
			     cs->opt.topic_root, t->id);
	}
	/* Only to a device connected here: elsewhere its own broker has it
	 * (every broker gets the message), and a device that is offline
	 * fetches what it missed when it connects. */
	if (r < 0 || (size_t)r >= sizeof(topic) || len > INT32_MAX ||
	    !cs_device_here(cs, to))
		return;
	if (mosquitto_broker_publish_copy(to, topic, (int)len, buf, 1, false,
					  NULL) == MOSQ_ERR_SUCCESS) {
		cs->stats.bridged_delivered++;
		cs->stats_dirty = true;
	}
}

/* ---- routing: to the receiver's broker only ----------------------------------- */

/*
 * A cluster whose store knows where devices are: packages and control
 * messages for a device connected to another broker are published, by
 * this plugin only, on ROOT/route/<that broker>/...; only this broker's
 * bridge to that broker subscribes there (cluster_conf.c), and it hands
 * them over as ROOT/bridge/<this broker>/... (cs_cluster_deliver there).
 * Nothing else reaches the bridges: one copy per message, to one broker.
 */
static bool
routing(const struct s2s_cs *cs)
{
	return cs->opt.bridge_users && cs->bridge_pw && cs_store_routes(cs);
}

void
cs_cluster_start(struct s2s_cs *cs)
{
	/* After a crash: this broker's devices are gone. */
	if (routing(cs) &&
	    cs_store_presence_clear(cs, NULL, cs->opt.broker_id) != S2S_OK)
		cs_log(MOSQ_LOG_WARNING, "cluster: cannot clear this broker's "
		       "devices from the routing table");
}

void
cs_cluster_device_up(struct s2s_cs *cs, const char *id)
{
	if (routing(cs) &&
	    cs_store_presence_set(cs, id, cs->opt.broker_id, cs_now_s()) !=
	    S2S_OK)
		cs_log(MOSQ_LOG_WARNING, "cluster: cannot note device '%s' "
		       "in the routing table: messages from other brokers "
		       "reach it by FETCH only", id);
}

void
cs_cluster_device_down(struct s2s_cs *cs, const char *id)
{
	if (routing(cs) && id && !cs_device_here(cs, id))
		(void)cs_store_presence_clear(cs, id, cs->opt.broker_id);
}

void
cs_cluster_route(struct s2s_cs *cs, const char *to, const char *sub,
		 const uint8_t *buf, size_t len)
{
	char broker[CS_ID_BUF], topic[512];
	int r;

	if (!routing(cs) || !to || cs_device_here(cs, to) ||
	    len > INT32_MAX ||
	    cs_store_presence_get(cs, to, broker, sizeof(broker)) != S2S_OK ||
	    strcmp(broker, cs->opt.broker_id) == 0 ||
	    !listed(cs->opt.bridge_users, broker))
		return;     /* here, nowhere (it fetches), or not a peer */
	r = snprintf(topic, sizeof(topic), "%s/route/%s/%s",
		     cs->opt.topic_root, broker, sub);
	if (r < 0 || (size_t)r >= sizeof(topic))
		return;
	if (mosquitto_broker_publish_copy(NULL, topic, (int)len, buf, 1, false,
					  NULL) == MOSQ_ERR_SUCCESS)
		cs->stats.routed++;
}

void
cs_cluster_sync(struct s2s_cs *cs)
{
	if (!cs_store_shared(cs))
		return;     /* one broker: the cache is the store */
	cs_pair_free_all(cs);
	if (cs_store_load(cs) != S2S_OK)
		cs_log(MOSQ_LOG_WARNING, "cluster: cannot read the pairs "
		       "again");
}

struct view {
	struct s2s_json *arr;
	int64_t now;
	int64_t brokers, alive, accepted, rejected, connected, delivered;
};

static int64_t
num(const struct s2s_json *j, const char *key)
{
	int64_t v = 0;
	char err[8];

	(void)s2s_json_get_int(j, key, true, 0, 0, INT64_MAX, &v, err,
			       sizeof(err));
	return v;
}

static void
view_one(void *arg, const char *broker, const char *info, int64_t updated)
{
	struct view *v = arg;
	struct s2s_json *j = s2s_json_parse(info, strlen(info)), *o;
	bool alive = v->now - updated <= BROKER_ALIVE_S;

	v->brokers++;
	v->alive += alive;
	o = v->arr ? s2s_json_push_object(v->arr) : NULL;
	if (o) {
		s2s_json_add_string(o, "id", broker);
		s2s_json_add_bool(o, "alive", alive);
		s2s_json_add_int(o, "updated", updated);
	}
	if (!j)
		return;
	if (o) {
		s2s_json_add_int(o, "accepted", num(j, "accepted"));
		s2s_json_add_int(o, "rejected", num(j, "rejected"));
		s2s_json_add_int(o, "devices_connected",
				 num(j, "devices_connected"));
		s2s_json_add_int(o, "bridged_delivered",
				 num(j, "bridged_delivered"));
	}
	v->accepted += num(j, "accepted");
	v->rejected += num(j, "rejected");
	v->delivered += num(j, "bridged_delivered");
	if (alive)
		v->connected += num(j, "devices_connected");
	s2s_json_free(j);
}

void
cs_cluster_stats(struct s2s_cs *cs, struct s2s_json *o)
{
	struct view v;
	struct s2s_json *t;

	memset(&v, 0, sizeof(v));
	v.now = cs_now_s();
	broker_row(cs, v.now);      /* this broker's row is current */
	s2s_json_add_string(o, "broker", cs->opt.broker_id);
	v.arr = s2s_json_add_array(o, "brokers");
	(void)cs_store_broker_list(cs, view_one, &v);
	t = s2s_json_add_object(o, "total");
	s2s_json_add_int(t, "brokers", v.brokers);
	s2s_json_add_int(t, "alive", v.alive);
	s2s_json_add_int(t, "accepted", v.accepted);
	s2s_json_add_int(t, "rejected", v.rejected);
	s2s_json_add_int(t, "devices_connected", v.connected);
	s2s_json_add_int(t, "bridged_delivered", v.delivered);
}

/* $SYS/broker/s2s/cluster/...: the sums over the brokers' rows. */
void
cs_cluster_sys(struct s2s_cs *cs, void (*pub)(const char *leaf,
					      long long v))
{
	struct view v;

	memset(&v, 0, sizeof(v));
	v.now = cs_now_s();
	if (cs_store_broker_list(cs, view_one, &v) != S2S_OK)
		return;
	pub("cluster/brokers", v.brokers);
	pub("cluster/brokers/alive", v.alive);
	pub("cluster/packages/accepted", v.accepted);
	pub("cluster/packages/rejected", v.rejected);
	pub("cluster/devices/connected", v.connected);
}

struct find_conn {
	const char *id;
	const char *self;
	int64_t now;
	bool found;
};

static void
find_one(void *arg, const char *broker, const char *info, int64_t updated)
{
	struct find_conn *f = arg;
	struct s2s_json *j;
	const struct s2s_json *a;

	if (f->found || strcmp(broker, f->self) == 0 ||
	    f->now - updated > BROKER_ALIVE_S)
		return;
	j = s2s_json_parse(info, strlen(info));
	a = j ? s2s_json_get(j, "connected") : NULL;
	for (size_t i = 0; a && i < s2s_json_array_size(a); i++) {
		const char *id = s2s_json_string_value(s2s_json_array_at(a, i));

		if (id && strcmp(id, f->id) == 0)
			f->found = true;
	}
	s2s_json_free(j);
}

bool
cs_cluster_connected(struct s2s_cs *cs, const char *id)
{
	struct find_conn f = { id, cs->opt.broker_id, cs_now_s(), false };

	if (!cs_store_shared(cs))
		return false;
	(void)cs_store_broker_list(cs, find_one, &f);
	return f.found;
}
