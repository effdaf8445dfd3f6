/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transport_paho.c - transport.h on Eclipse Paho MQTTAsync (paho-mqtt3as,
 * the TLS-capable build), MQTT 5.  The only file of the project that
 * includes a Paho header; Paho return and reason codes become enum s2s_err
 * here and nowhere else.
 *
 * Paho facts this file relies on (dependencies.md section 2): MQTT 5 needs
 * createWithOptions and the *_initializer5 structs; callbacks run on one
 * Paho thread and may run before the call that caused them returns, so
 * every piece of state they touch is set up first; messageArrived frees
 * the message and the topic and returns 1.  Paho's own automatic
 * reconnect is off: it would reuse the first token and keep retrying a
 * refused connect; the client library reconnects instead (client.c,
 * housekeeping thread), each time with a fresh token.
 */
#include <MQTTAsync.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "transport.h"

#define PASSWORD_MAX 256
#define MAX_BUFFERED 10000

/* One answer a blocking call waits for. */
struct waiter {
	struct s2s_transport *t;
	bool done;
	enum s2s_err rc;
	int reason;
	bool session_present;
	struct waiter *next;            /* in t->orphans */
};

/* The context of one publish: who to tell when the broker answers. */
struct pubctx {
	struct s2s_transport *t;
	uint64_t tag;
	struct pubctx *prev, *next;
};

struct s2s_transport {
	MQTTAsync h;
	struct s2s_transport_opts o;
	struct s2s_transport_cbs cb;
	char *uri, *id, *user, *persist, *ca, *cert, *key;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected;
	bool ever_connected;
	unsigned pending;               /* publishes not answered */
	struct pubctx *pubs;            /* their contexts */
	struct waiter *orphans;         /* given up on; freed at destroy */
	char last_error[256];           /* Paho's words on the last failed
					 * connect ("" if none) */
};

static void
deadline_after(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait (lock held) until w->done or the deadline; false on timeout. */
static bool
wait_done(struct s2s_transport *t, struct waiter *w, int timeout_ms)
{
	struct timespec ts;

	deadline_after(&ts, timeout_ms);
	while (!w->done)
		if (pthread_cond_timedwait(&t->cond, &t->lock, &ts) == ETIMEDOUT)
			return w->done;
	return true;
}

static struct waiter *
waiter_new(struct s2s_transport *t)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (w) {
		w->t = t;
		w->rc = S2S_ERR_TIMEOUT;
	}
	return w;
}

/* Lock held.  Paho may still call back with w, so keep it until destroy. */
static void
waiter_orphan(struct s2s_transport *t, struct waiter *w)
{
	w->next = t->orphans;
	t->orphans = w;
}

/* ---- Callbacks (Paho's thread) ------------------------------------------ */

static void
on_connected(void *ctx, char *cause)
{
	struct s2s_transport *t = ctx;
	bool reconnect = cause && !strcmp(cause, "automatic reconnect");

	pthread_mutex_lock(&t->lock);
	t->connected = true;
	t->ever_connected = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (t->cb.connected)
		t->cb.connected(t->cb.ctx, reconnect, false);
}

static void
on_lost(void *ctx, char *cause)
{
	struct s2s_transport *t = ctx;

	pthread_mutex_lock(&t->lock);
	t->connected = false;
	pthread_mutex_unlock(&t->lock);
	if (t->cb.lost)
		t->cb.lost(t->cb.ctx, cause ? cause : "connection lost");
}

static void
on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
	(void)props;
	(void)rc;
	on_lost(ctx, "disconnected by the broker");
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct s2s_transport *t = ctx;
	char buf[512];
	char *name = topic;

	/* topic_len is the length when the topic holds a NUL, else 0 or
	 * strlen(topic); copy it so the upper layers see a C string. */
	if (topic_len > 0) {
		size_t n = (size_t)topic_len;

		name = n < sizeof(buf) ? buf : malloc(n + 1);
		if (name) {
			memcpy(name, topic, n);
			name[n] = '\0';
			if (strlen(name) != n) {  /* embedded NUL: not ours */
				if (name != buf)
					free(name);
				name = NULL;
			}
		}
	}
	if (name && t->cb.message)
		t->cb.message(t->cb.ctx, name, m->payload,
			      m->payloadlen > 0 ? (size_t)m->payloadlen : 0);
	if (name && name != buf && name != topic)
		free(name);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
conn_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct waiter *w = ctx;
	struct s2s_transport *t = w->t;

	pthread_mutex_lock(&t->lock);
	w->rc = S2S_OK;
	w->session_present = r ? r->alt.connect.sessionPresent : false;
	w->done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static enum s2s_err
connack_error(int reason, int code)
{
	/* v5 reason codes 0x86 bad user name or password, 0x87 not
	 * authorised, 0x8a banned; v3 codes 4 and 5 the same. */
	if (reason == 0x86 || reason == 0x87 || reason == 0x8a ||
	    code == 0x86 || code == 0x87 || code == 0x8a ||
	    code == 4 || code == 5)
		return S2S_ERR_DENIED;
	return S2S_ERR_MQTT;
}

static void
conn_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct waiter *w = ctx;
	struct s2s_transport *t = w->t;

	if (getenv("S2S_DEBUG"))
		fprintf(stderr, "s2s transport: connect failed: reason %d "
			"code %d %s\n", r ? (int)r->reasonCode : -1,
			r ? r->code : 0, r && r->message ? r->message : "");
	pthread_mutex_lock(&t->lock);
	snprintf(t->last_error, sizeof(t->last_error), "%s",
		 r && r->message ? r->message : "");
	if (!t->last_error[0] && r && r->reasonCode)
		snprintf(t->last_error, sizeof(t->last_error), "%s",
			 MQTTReasonCode_toString(r->reasonCode));
	w->reason = r ? (int)r->reasonCode : 0;
	w->rc = connack_error(w->reason, r ? r->code : 0);
	w->done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
sub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct waiter *w = ctx;
	struct s2s_transport *t = w->t;

	pthread_mutex_lock(&t->lock);
	w->reason = r ? (int)r->reasonCode : 0;
	w->rc = w->reason >= 0x80 ? S2S_ERR_DENIED : S2S_OK;
	w->done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
sub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct waiter *w = ctx;
	struct s2s_transport *t = w->t;

	pthread_mutex_lock(&t->lock);
	w->reason = r ? (int)r->reasonCode : 0;
	w->rc = w->reason >= 0x80 ? S2S_ERR_DENIED : S2S_ERR_MQTT;
	w->done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
pub_answer(struct pubctx *p, enum s2s_err rc, int reason)
{
	struct s2s_transport *t = p->t;
	uint64_t tag = p->tag;

	pthread_mutex_lock(&t->lock);
	if (p->prev)
		p->prev->next = p->next;
	else
		t->pubs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	if (t->pending)
		t->pending--;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	free(p);
	if (tag && t->cb.published)
		t->cb.published(t->cb.ctx, tag, rc, reason);
}

static void
pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	int reason = r ? (int)r->reasonCode : 0;

	pub_answer(ctx, reason >= 0x80 ? S2S_ERR_REJECTED : S2S_OK, reason);
}

static void
pub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	int reason = r ? (int)r->reasonCode : 0;

	pub_answer(ctx, reason >= 0x80 ? S2S_ERR_REJECTED : S2S_ERR_MQTT,
		   reason);
}

/* ---- API ------------------------------------------------------------------ */

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static bool
uri_is_tls(const char *uri)
{
	return !strncmp(uri, "ssl://", 6) || !strncmp(uri, "mqtts://", 8) ||
	       !strncmp(uri, "wss://", 6);
}

enum s2s_err
s2s_transport_create(const struct s2s_transport_opts *o,
		     const struct s2s_transport_cbs *cbs,
		     struct s2s_transport **out)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	struct s2s_transport *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return S2S_ERR_NOMEM;
	t->uri = strdup(o->uri);
	t->id = strdup(o->client_id);
	t->user = strdup(o->username ? o->username : o->client_id);
	t->persist = dup_or_null(o->persist_dir);
	t->ca = dup_or_null(o->tls_ca_file);
	t->cert = dup_or_null(o->tls_cert_file);
	t->key = dup_or_null(o->tls_key_file);
	if (!t->uri || !t->id || !t->user || (o->persist_dir && !t->persist) ||
	    (o->tls_ca_file && !t->ca) || (o->tls_cert_file && !t->cert) ||
	    (o->tls_key_file && !t->key)) {
		s2s_transport_destroy(t);
		return S2S_ERR_NOMEM;
	}
	t->o = *o;
	t->cb = *cbs;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);

	if (t->persist)
		mkdir(t->persist, 0700);
	co.sendWhileDisconnected = 1;
	co.maxBufferedMessages = MAX_BUFFERED;
	co.allowDisconnectedSendAtAnyTime = 1;
	co.restoreMessages = 1;
	rc = MQTTAsync_createWithOptions(&t->h, t->uri, t->id,
		t->persist ? MQTTCLIENT_PERSISTENCE_DEFAULT
			   : MQTTCLIENT_PERSISTENCE_NONE,
		t->persist, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		t->h = NULL;
		s2s_transport_destroy(t);
		return rc == MQTTASYNC_BAD_PROTOCOL ? S2S_ERR_CONFIG
						    : S2S_ERR_MQTT;
	}
	if (MQTTAsync_setCallbacks(t->h, t, on_lost, on_message, NULL) ||
	    MQTTAsync_setConnected(t->h, t, on_connected) ||
	    MQTTAsync_setDisconnected(t->h, t, on_disconnected)) {
		s2s_transport_destroy(t);
		return S2S_ERR_MQTT;
	}
	*out = t;
	return S2S_OK;
}

static void
stop_retrying(struct s2s_transport *t)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;

	d.timeout = 0;
	MQTTAsync_disconnect(t->h, &d);
}

enum s2s_err
s2s_transport_connect(struct s2s_transport *t, bool clean, int timeout_ms)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p;
	struct waiter *w;
	char pw[PASSWORD_MAX];
	enum s2s_err e;
	int rc;

	pthread_mutex_lock(&t->lock);
	if (t->connected) {
		pthread_mutex_unlock(&t->lock);
		return S2S_OK;
	}
	pthread_mutex_unlock(&t->lock);

	w = waiter_new(t);
	if (!w)
		return S2S_ERR_NOMEM;
	pw[0] = '\0';
	if (t->cb.password)
		t->cb.password(t->cb.ctx, pw, sizeof(pw));

	p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
	p.value.integer4 = t->o.session_expiry;
	MQTTProperties_add(&props, &p);

	co.keepAliveInterval = t->o.keepalive;
	co.cleanstart = clean ? 1 : 0;
	co.connectProperties = &props;
	if (pw[0]) {
		co.username = t->user;
		co.binarypwd.data = pw;
		co.binarypwd.len = (int)strlen(pw);
	}
	/* Reconnecting is the caller's job (a fresh token each time, and
	 * a refused first connect must not be retried behind its back). */
	co.automaticReconnect = 0;
	co.connectTimeout = timeout_ms > 1000 ? (timeout_ms + 999) / 1000 : 1;
	co.onSuccess5 = conn_ok;
	co.onFailure5 = conn_fail;
	co.context = w;
	if (uri_is_tls(t->uri) || t->ca || t->cert) {
		ssl.trustStore = t->ca;
		ssl.keyStore = t->cert;
		ssl.privateKey = t->key;
		ssl.enableServerCertAuth = t->o.tls_verify ? 1 : 0;
		ssl.verify = t->o.tls_verify ? 1 : 0;
		co.ssl = &ssl;
	}

	/* Never call Paho with t->lock held: its thread holds Paho's own
	 * lock when it calls back, and the callbacks take t->lock. */
	rc = MQTTAsync_connect(t->h, &co);
	pthread_mutex_lock(&t->lock);
	if (rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_unlock(&t->lock);
		free(w);
		e = S2S_ERR_MQTT;
		goto out;
	}
	if (!wait_done(t, w, timeout_ms)) {
		waiter_orphan(t, w);
		pthread_mutex_unlock(&t->lock);
		stop_retrying(t);
		e = S2S_ERR_TIMEOUT;
		goto out;
	}
	e = w->rc;
	pthread_mutex_unlock(&t->lock);
	free(w);
	/* Paho would keep retrying a refused first connect on its own; the
	 * caller decides what to do instead. */
	if (e)
		stop_retrying(t);
out:
	memset(pw, 0, sizeof(pw));
	MQTTProperties_free(&props);
	return e;
}

bool
s2s_transport_connected(const struct s2s_transport *t)
{
	return MQTTAsync_isConnected(t->h) != 0;
}

enum s2s_err
s2s_transport_subscribe(struct s2s_transport *t, const char *topic,
			int timeout_ms)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct waiter *w;
	enum s2s_err e;
	int rc;

	ro.subscribeOptions.noLocal = 1;
	if (timeout_ms <= 0) {
		rc = MQTTAsync_subscribe(t->h, topic, 1, &ro);
		return rc == MQTTASYNC_SUCCESS ? S2S_OK : S2S_ERR_MQTT;
	}
	w = waiter_new(t);
	if (!w)
		return S2S_ERR_NOMEM;
	ro.onSuccess5 = sub_ok;
	ro.onFailure5 = sub_fail;
	ro.context = w;
	rc = MQTTAsync_subscribe(t->h, topic, 1, &ro);
	pthread_mutex_lock(&t->lock);
	if (rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_unlock(&t->lock);
		free(w);
		return S2S_ERR_MQTT;
	}
	if (!wait_done(t, w, timeout_ms)) {
		waiter_orphan(t, w);
		pthread_mutex_unlock(&t->lock);
		return S2S_ERR_TIMEOUT;
	}
	e = w->rc;
	pthread_mutex_unlock(&t->lock);
	free(w);
	return e;
}

enum s2s_err
s2s_transport_publish(struct s2s_transport *t, const char *topic,
		      const uint8_t *payload, size_t len, uint64_t tag)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	struct pubctx *p;
	int rc;

	if (len > 256u * 1024u * 1024u)
		return S2S_ERR_TOO_BIG;
	p = calloc(1, sizeof(*p));
	if (!p)
		return S2S_ERR_NOMEM;
	p->t = t;
	p->tag = tag;
	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	m.qos = 1;
	m.retained = 0;
	ro.onSuccess5 = pub_ok;
	ro.onFailure5 = pub_fail;
	ro.context = p;

	/* Link first: the answer may arrive before sendMessage returns. */
	pthread_mutex_lock(&t->lock);
	p->next = t->pubs;
	if (t->pubs)
		t->pubs->prev = p;
	t->pubs = p;
	t->pending++;
	pthread_mutex_unlock(&t->lock);

	rc = MQTTAsync_sendMessage(t->h, topic, &m, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&t->lock);
		if (p->prev)
			p->prev->next = p->next;
		else
			t->pubs = p->next;
		if (p->next)
			p->next->prev = p->prev;
		t->pending--;
		pthread_mutex_unlock(&t->lock);
		free(p);
		return rc == MQTTASYNC_MAX_BUFFERED_MESSAGES ? S2S_ERR_TOO_BIG
							      : S2S_ERR_MQTT;
	}
	return S2S_OK;
}

unsigned
s2s_transport_pending(struct s2s_transport *t)
{
	unsigned n;

	pthread_mutex_lock(&t->lock);
	n = t->pending;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void
disc_done(void *ctx, MQTTAsync_successData5 *r)
{
	struct waiter *w = ctx;
	struct s2s_transport *t = w->t;

	(void)r;
	pthread_mutex_lock(&t->lock);
	w->rc = S2S_OK;
	w->done = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
disc_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	disc_done(ctx, NULL);
}

void
s2s_transport_disconnect(struct s2s_transport *t, int timeout_ms)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
	struct waiter *w;
	int rc;

	if (!t || !t->h)
		return;
	w = waiter_new(t);
	if (!w)
		return;
	d.timeout = timeout_ms > 0 ? timeout_ms : 0;
	d.onSuccess5 = disc_done;
	d.onFailure5 = disc_fail;
	d.context = w;
	rc = MQTTAsync_disconnect(t->h, &d);
	pthread_mutex_lock(&t->lock);
	if (rc == MQTTASYNC_SUCCESS) {
		/* Paho's disconnect is asynchronous: wait for its answer. */
		if (!wait_done(t, w, (timeout_ms > 0 ? timeout_ms : 0) + 1000)) {
			waiter_orphan(t, w);
			w = NULL;
		}
	}
	t->connected = false;
	pthread_mutex_unlock(&t->lock);
	free(w);
}

void
s2s_transport_destroy(struct s2s_transport *t)
{
	struct pubctx *p, *n;

	if (!t)
		return;
	if (t->h) {
		if (MQTTAsync_isConnected(t->h))
			s2s_transport_disconnect(t, 1000);
		MQTTAsync_destroy(&t->h);
	}
	/* Contexts of publishes the broker never answered. */
	for (p = t->pubs; p; p = n) {
		n = p->next;
		free(p);
	}
	while (t->orphans) {
		struct waiter *w = t->orphans;

		t->orphans = w->next;
		free(w);
	}
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t->uri);
	free(t->id);
	free(t->user);
	free(t->persist);
	free(t->ca);
	free(t->cert);
	free(t->key);
	free(t);
}

void
s2s_transport_last_error(struct s2s_transport *t, char *buf, size_t len)
{
	if (!len)
		return;
	pthread_mutex_lock(&t->lock);
	snprintf(buf, len, "%s", t->last_error);
	pthread_mutex_unlock(&t->lock);
}

const char *
s2s_transport_version(void)
{
	MQTTAsync_nameValue *v = MQTTAsync_getVersionInfo();

	for (; v && v->name; v++)
		if (!strcmp(v->name, "Version"))
			return v->value;
	return "unknown";
}
