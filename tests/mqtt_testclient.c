/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "mqtt_testclient.h"

#define MAX_ACKS 64

struct tc {
	struct mosquitto *m;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int connack;            /* -2 until CONNACK */
	bool connected;
	bool gone;              /* disconnected after connecting */
	struct { int mid, code; } acks[MAX_ACKS];
	size_t nacks;
	struct tc_msg *q;
	size_t nq, capq;
	int version;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void
lib_init(void)
{
	mosquitto_lib_init();
}

static void
deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void
on_connect(struct mosquitto *m, void *obj, int rc, int flags,
	   const mosquitto_property *props)
{
	struct tc *c = obj;

	(void)flags;
	(void)props;
	pthread_mutex_lock(&c->lock);
	c->connack = rc;
	c->connected = rc == 0;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (rc != 0)
		mosquitto_disconnect(m);    /* no automatic reconnect */
}

static void
on_disconnect(struct mosquitto *m, void *obj, int rc,
	      const mosquitto_property *props)
{
	struct tc *c = obj;

	(void)m;
	(void)rc;
	(void)props;
	pthread_mutex_lock(&c->lock);
	if (c->connected)
		c->gone = true;
	c->connected = false;
	if (c->connack == -2)
		c->connack = -1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void
ack(struct tc *c, int mid, int code)
{
	pthread_mutex_lock(&c->lock);
	if (c->nacks < MAX_ACKS) {
		c->acks[c->nacks].mid = mid;
		c->acks[c->nacks].code = code;
		c->nacks++;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void
on_publish(struct mosquitto *m, void *obj, int mid, int reason,
	   const mosquitto_property *props)
{
	(void)m;
	(void)props;
	ack(obj, mid, reason);
}

static void
on_subscribe(struct mosquitto *m, void *obj, int mid, int qos_count,
	     const int *granted, const mosquitto_property *props)
{
	(void)m;
	(void)props;
	ack(obj, mid, qos_count > 0 ? granted[0] : 128);
}

static void
on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
	   const mosquitto_property *props)
{
	struct tc *c = obj;
	struct tc_msg *t;

	(void)m;
	(void)props;
	pthread_mutex_lock(&c->lock);
	if (c->nq == c->capq) {
		size_t cap = c->capq ? 2 * c->capq : 16;
		struct tc_msg *q = realloc(c->q, cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&c->lock);
			return;
		}
		c->q = q;
		c->capq = cap;
	}
	t = &c->q[c->nq];
	t->topic = strdup(msg->topic);
	t->payload = malloc((size_t)msg->payloadlen + 1);
	if (t->topic && t->payload) {
		memcpy(t->payload, msg->payload, (size_t)msg->payloadlen);
		t->payload[msg->payloadlen] = 0;
		t->len = (size_t)msg->payloadlen;
		t->qos = msg->qos;
		t->retain = msg->retain;
		c->nq++;
	} else {
		free(t->topic);
		free(t->payload);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int
tc_connect(struct tc **out, int port, const char *id, const char *user,
	   const char *password, int version)
{
	return tc_connect_will(out, port, id, user, password, version, NULL,
			       NULL, 0, false);
}

int
tc_connect_will(struct tc **out, int port, const char *id, const char *user,
		const char *password, int version, const char *will_topic,
		const void *will, size_t will_len, bool persistent)
{
	struct tc *c = calloc(1, sizeof(*c));
	mosquitto_property *props = NULL;
	struct timespec ts;
	int rc;

	*out = NULL;
	if (!c)
		return -1;
	pthread_once(&lib_once, lib_init);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->connack = -2;
	c->version = version;
	c->m = mosquitto_new(id, !persistent, c);
	if (!c->m)
		goto fail;
	if (will_topic && mosquitto_will_set(c->m, will_topic, (int)will_len,
					     will, 1, false) !=
	    MOSQ_ERR_SUCCESS)
		goto fail;
	mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION,
			     version == 5 ? MQTT_PROTOCOL_V5 :
			     MQTT_PROTOCOL_V311);
	/* As a device should: no Nagle delay behind the broker's delayed
	 * ACK (40 ms stalls on request/answer exchanges). */
	mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_connect_v5_callback_set(c->m, on_connect);
	mosquitto_disconnect_v5_callback_set(c->m, on_disconnect);
	mosquitto_publish_v5_callback_set(c->m, on_publish);
	mosquitto_subscribe_v5_callback_set(c->m, on_subscribe);
	mosquitto_message_v5_callback_set(c->m, on_message);
	if (user && mosquitto_username_pw_set(c->m, user, password) !=
	    MOSQ_ERR_SUCCESS)
		goto fail;
	if (persistent && version == 5)
		mosquitto_property_add_int32(&props,
					     MQTT_PROP_SESSION_EXPIRY_INTERVAL,
					     3600);
	rc = mosquitto_connect_bind_v5(c->m, "127.0.0.1", port, 30, NULL,
				       props);
	mosquitto_property_free_all(&props);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	if (mosquitto_loop_start(c->m) != MOSQ_ERR_SUCCESS)
		goto fail;
	deadline_in(&ts, TC_TIMEOUT_MS);
	pthread_mutex_lock(&c->lock);
	while (c->connack == -2 &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
		;
	rc = c->connack == -2 ? -1 : c->connack;
	pthread_mutex_unlock(&c->lock);
	if (rc == 0) {
		*out = c;
		return 0;
	}
	tc_close(c);
	return rc;
fail:
	tc_close(c);
	return -1;
}

static int
wait_ack(struct tc *c, int mid)
{
	struct timespec ts;
	int code = -1;

	deadline_in(&ts, TC_TIMEOUT_MS);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (size_t i = 0; i < c->nacks; i++) {
			if (c->acks[i].mid == mid) {
				code = c->acks[i].code;
				c->acks[i] = c->acks[--c->nacks];
				goto out;
			}
		}
		if (!c->connected && c->gone)
			break;
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return code;
}

int
tc_subscribe(struct tc *c, const char *filter, int qos)
{
	int mid;

	if (mosquitto_subscribe_v5(c->m, &mid, filter, qos, 0, NULL) !=
	    MOSQ_ERR_SUCCESS)
		return -1;
	return wait_ack(c, mid);
}

int
tc_publish(struct tc *c, const char *topic, const void *payload, size_t len,
	   int qos, bool retain)
{
	int mid;

	int code;

	if (mosquitto_publish_v5(c->m, &mid, topic, (int)len, payload, qos,
				 retain, NULL) != MOSQ_ERR_SUCCESS)
		return -1;
	code = wait_ack(c, mid);
	/* 16 "no matching subscribers" is a success too. */
	return code == MQTT_RC_NO_MATCHING_SUBSCRIBERS ? 0 : code;
}

static bool
matches(const char *filter, const char *topic)
{
	bool r = false;

	if (!filter)
		return true;
	return mosquitto_topic_matches_sub(filter, topic, &r) ==
	       MOSQ_ERR_SUCCESS && r;
}

bool
tc_wait(struct tc *c, const char *filter, int timeout_ms, struct tc_msg *out)
{
	struct timespec ts;
	bool found = false;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (size_t i = 0; i < c->nq; i++) {
			if (matches(filter, c->q[i].topic)) {
				*out = c->q[i];
				memmove(&c->q[i], &c->q[i + 1],
					(c->nq - i - 1) * sizeof(*c->q));
				c->nq--;
				found = true;
				goto out;
			}
		}
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) ==
		    ETIMEDOUT)
			break;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return found;
}

size_t
tc_pending(struct tc *c, const char *filter)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nq; i++)
		n += matches(filter, c->q[i].topic);
	pthread_mutex_unlock(&c->lock);
	return n;
}

void
tc_msg_free(struct tc_msg *m)
{
	free(m->topic);
	free(m->payload);
	memset(m, 0, sizeof(*m));
}

void
tc_drop_with_will(struct tc *c)
{
	/* v5 DISCONNECT reason 4: "disconnect with will message" */
	mosquitto_disconnect_v5(c->m, 4, NULL);
	(void)tc_wait_disconnect(c, TC_TIMEOUT_MS);
}

bool
tc_connected(struct tc *c)
{
	bool r;

	pthread_mutex_lock(&c->lock);
	r = c->connected;
	pthread_mutex_unlock(&c->lock);
	return r;
}

bool
tc_wait_disconnect(struct tc *c, int timeout_ms)
{
	struct timespec ts;
	bool gone;

	deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&c->lock);
	while (c->connected &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &ts) != ETIMEDOUT)
		;
	gone = !c->connected;
	pthread_mutex_unlock(&c->lock);
	return gone;
}

void
tc_close(struct tc *c)
{
	if (!c)
		return;
	if (c->m) {
		mosquitto_disconnect(c->m);
		mosquitto_loop_stop(c->m, false);
		mosquitto_destroy(c->m);
	}
	for (size_t i = 0; i < c->nq; i++)
		tc_msg_free(&c->q[i]);
	free(c->q);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
