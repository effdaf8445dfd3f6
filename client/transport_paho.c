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
 *
 * Paho 1.3.11 notices a new TCP connection only when its receive thread's
 * poll() returns: it sends CONNECT once a poll that already included the
 * new socket wakes up, and with nothing to read that poll lasts 1 s (plus
 * a 100 ms nap).  s2s_transport_reconnect() therefore keeps the old
 * connection while the new one starts and "pokes" through it: one
 * re-SUBSCRIBE of a topic it holds at a time, the next sent from the
 * SUBACK callback, until the new connection's CONNACK.  Each SUBACK wakes
 * the poll, so the new socket is seen within a round trip or two instead
 * of a second (2.1 s -> a few ms for the token connection after
 * registration).  The new connection (same client id) takes the session
 * over; the old handle is muted (struct link) and destroyed.
 *
 * Two handles of one client id share Paho's file persistence folder
 * (<persist_dir>/<client id>-<server URI>), and Paho removes that folder
 * when a handle is destroyed (rmdir in pstclose, if it is empty).  The
 * old handle's destroy would pull the folder from under the live one:
 * every write to it then fails ("Error persisting command"), and a CONNACK
 * without a session (a new broker of a cluster) is answered with a
 * DISCONNECT because Paho cannot clear the missing folder -- the device
 * went from broker to broker for seconds after a failover.  pin_persist()
 * keeps an empty subfolder in it, which Paho never lists (it keeps
 * regular files only) and which makes that rmdir fail.
 */
#include <MQTTAsync.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

#define PASSWORD_MAX 256
#define MAX_BUFFERED 10000

/* One answer a blocking call waits for. */
struct waiter {
	struct s2s_transport *t;
	struct link *link;              /* a connect's: the link it is for */
	bool done;
	enum s2s_err rc;
	int reason;
	bool session_present;
	struct waiter *next;            /* in t->orphans */
};

/*
 * One Paho handle: the context of its connection callbacks.  Only the
 * live one speaks to the upper layer about connections; messages are
 * passed on from any (a retired one may still deliver before the broker
 * closes it; the client drops duplicates).
 */
struct link {
	struct s2s_transport *t;
	MQTTAsync h;
	bool live;                      /* t->lock */
	struct link *next;              /* in t->retired */
};

/* The context of one publish: who to tell when the broker answers. */
struct pubctx {
	struct s2s_transport *t;
	uint64_t tag;
	struct pubctx *prev, *next;
};

struct s2s_transport {
	MQTTAsync h;                    /* the live link's handle (t->lock
					 * for writes; see cur_h()) */
	struct link *link;              /* live */
	struct link *next_link;         /* being connected by reconnect() */
	struct link *retired;           /* freed at destroy */
	struct s2s_transport_opts o;
	struct s2s_transport_cbs cb;
	char *uri, *id, *user, *persist, *ca, *cert, *key;
	char **uris;                    /* failover list (nuris > 1) */
	size_t nuris;
	size_t cur;                     /* the one last connected to */
	bool lost;                      /* it dropped us (not a reconnect) */
	char **rot;                     /* uris from the one after cur */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool connected;
	bool ever_connected;
	unsigned pending;               /* publishes not answered */
	struct pubctx *pubs;            /* their contexts */
	struct waiter *orphans;         /* given up on; freed at destroy */
	char last_error[256];           /* Paho's words on the last failed
					 * connect ("" if none) */

	/* Poking the old connection during reconnect() (t->lock). */
	bool poking;
	unsigned pokes;
	MQTTAsync poke_h;
	char *poke_topic;

	/* The broker's TCP endpoint, for set_nodelay(). */
	int port;                       /* 0: unknown (no TCP_NODELAY) */
	bool have_addr;                 /* host is an IP literal: */
	struct sockaddr_storage addr;   /* ... that address */
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

static bool
uri_is_tls(const char *uri)
{
	return !strncmp(uri, "ssl://", 6) || !strncmp(uri, "mqtts://", 8) ||
	       !strncmp(uri, "wss://", 6);
}

/* The handle of the live connection. */
static MQTTAsync
cur_h(struct s2s_transport *t)
{
	MQTTAsync h;

	pthread_mutex_lock(&t->lock);
	h = t->h;
	pthread_mutex_unlock(&t->lock);
	return h;
}

/*
 * Lock held.  The link reconnect() is bringing up got its CONNACK: it
 * becomes the live one before any of its callbacks reach the upper layer
 * (which then subscribes through t->h).
 */
static void
promote(struct s2s_transport *t, struct link *l)
{
	if (t->next_link != l)
		return;
	t->link->live = false;
	t->link->next = t->retired;
	t->retired = t->link;
	t->link = l;
	t->h = l->h;
	l->live = true;
	t->next_link = NULL;
	t->poking = false;
}

/* ---- TCP_NODELAY ---------------------------------------------------------- */

/*
 * Paho 1.3.11 leaves Nagle's algorithm on and does not expose its socket.
 * The scheme's exchanges are request / answer (six messages in a
 * negotiation; PUBACK then the next request): with Nagle, a packet written
 * while the previous one is unacknowledged waits for the broker's delayed
 * ACK, 40 ms on Linux.  So after every CONNACK this process's TCP sockets
 * whose peer is the broker's endpoint get TCP_NODELAY (the one Paho just
 * opened among them; any other connection to the same broker port is an
 * MQTT connection too, for which the option is as right).  Setting it
 * changes no data, only when segments leave.
 */

static void
parse_endpoint(struct s2s_transport *t)
{
	const char *u = strstr(t->uri, "://"), *h, *e;
	char host[256];
	size_t n;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;

	if (!u || !strncmp(t->uri, "ws", 2))   /* websockets: leave alone */
		return;
	h = u + 3;
	if (*h == '[') {                /* [IPv6]:port */
		e = strchr(h, ']');
		if (!e)
			return;
		h++;
		n = (size_t)(e - h);
		e++;
	} else {
		e = h + strcspn(h, ":/");
		n = (size_t)(e - h);
	}
	if (n == 0 || n >= sizeof(host))
		return;
	memcpy(host, h, n);
	host[n] = '\0';
	if (*e == ':')
		t->port = atoi(e + 1);
	else
		t->port = uri_is_tls(t->uri) ? 8883 : 1883;
	if (t->port <= 0 || t->port > 65535) {
		t->port = 0;
		return;
	}
	memset(&t->addr, 0, sizeof(t->addr));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		t->have_addr = true;
	} else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		t->have_addr = true;
	}
}

static bool
peer_is_broker(const struct s2s_transport *t, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const struct sockaddr_in *p4 = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *p6 = (const struct sockaddr_in6 *)&ss;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)&t->addr;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)&t->addr;
	int proto = 0;
	socklen_t pl = sizeof(proto);

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) ||
	    proto != IPPROTO_TCP || getpeername(fd, (struct sockaddr *)&ss,
						&sl))
		return false;
	if (ss.ss_family == AF_INET)
		return ntohs(p4->sin_port) == t->port &&
		       (!t->have_addr || (t->addr.ss_family == AF_INET &&
			p4->sin_addr.s_addr == b4->sin_addr.s_addr));
	if (ss.ss_family == AF_INET6)
		return ntohs(p6->sin6_port) == t->port &&
		       (!t->have_addr || (t->addr.ss_family == AF_INET6 &&
			!memcmp(&p6->sin6_addr, &b6->sin6_addr,
				sizeof(b6->sin6_addr))));
	return false;
}

static void
set_nodelay(const struct s2s_transport *t)
{
	DIR *d;
	struct dirent *e;
	int one = 1;

	if (!t->port || !(d = opendir("/proc/self/fd")))
		return;
	while ((e = readdir(d))) {
		struct stat st;
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end || end == e->d_name || fd < 0 || fd == dirfd(d) ||
		    fstat((int)fd, &st) || !S_ISSOCK(st.st_mode) ||
		    !peer_is_broker(t, (int)fd))
			continue;
		(void)setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	}
	closedir(d);
}

/* ---- Callbacks (Paho's thread) ------------------------------------------ */

static void
on_connected(void *ctx, char *cause)
{
	struct link *l = ctx;
	struct s2s_transport *t = l->t;
	bool reconnect = cause && !strcmp(cause, "automatic reconnect");

	set_nodelay(t);
	pthread_mutex_lock(&t->lock);
	promote(t, l);
	if (!l->live) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
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
	struct link *l = ctx;
	struct s2s_transport *t = l->t;

	pthread_mutex_lock(&t->lock);
	if (!l->live ||                 /* retired, or not promoted yet */
	    (t->poking && l->h == t->poke_h)) {
		/* The old connection of reconnect(): the broker ends it
		 * when the new one takes its client id over, and Paho may
		 * tell us before the new CONNACK. */
		pthread_mutex_unlock(&t->lock);
		return;
	}
	t->connected = false;
	t->lost = true;
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
	struct s2s_transport *t = ((struct link *)ctx)->t;
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
	if (w->link)
		promote(t, w->link);
	w->rc = S2S_OK;
	w->session_present = r ? r->alt.connect.sessionPresent : false;
	for (size_t i = 0; r && r->alt.connect.serverURI && i < t->nuris; i++)
		if (strcmp(t->uris[i], r->alt.connect.serverURI) == 0)
			t->cur = i;
	t->lost = false;
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

/* A Paho handle for t, its callbacks on a new link. */
static enum s2s_err
link_new(struct s2s_transport *t, struct link **out)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	struct link *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l)
		return S2S_ERR_NOMEM;
	l->t = t;
	co.sendWhileDisconnected = 1;
	co.maxBufferedMessages = MAX_BUFFERED;
	co.allowDisconnectedSendAtAnyTime = 1;
	co.restoreMessages = 1;
	rc = MQTTAsync_createWithOptions(&l->h, t->uri, t->id,
		t->persist ? MQTTCLIENT_PERSISTENCE_DEFAULT
			   : MQTTCLIENT_PERSISTENCE_NONE,
		t->persist, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		free(l);
		return rc == MQTTASYNC_BAD_PROTOCOL ? S2S_ERR_CONFIG
						    : S2S_ERR_MQTT;
	}
	if (MQTTAsync_setCallbacks(l->h, l, on_lost, on_message, NULL) ||
	    MQTTAsync_setConnected(l->h, l, on_connected) ||
	    MQTTAsync_setDisconnected(l->h, l, on_disconnected)) {
		MQTTAsync_destroy(&l->h);
		free(l);
		return S2S_ERR_MQTT;
	}
	*out = l;
	return S2S_OK;
}

/*
 * Paho's persistence folders of this client id (<id>-<server URI>, made
 * by MQTTAsync_createWithOptions) get a subfolder that Paho ignores, so
 * destroying one handle never removes the folder another one uses (see
 * the top of this file).
 */
static void
pin_persist(const struct s2s_transport *t)
{
	DIR *d;
	struct dirent *e;
	size_t n = strlen(t->id);

	if (!t->persist || !(d = opendir(t->persist)))
		return;
	while ((e = readdir(d))) {
		char path[4096];
		int k;

		if (strncmp(e->d_name, t->id, n) || e->d_name[n] != '-')
			continue;
		k = snprintf(path, sizeof(path), "%s/%s/.s2s-keep", t->persist,
			     e->d_name);
		if (k > 0 && (size_t)k < sizeof(path))
			(void)mkdir(path, 0700);  /* EEXIST: pinned already */
	}
	closedir(d);
}

enum s2s_err
s2s_transport_create(const struct s2s_transport_opts *o,
		     const struct s2s_transport_cbs *cbs,
		     struct s2s_transport **out)
{
	struct s2s_transport *t;
	enum s2s_err e;

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
	if (o->nuris > 1) {
		t->uris = calloc(o->nuris, sizeof(*t->uris));
		t->rot = calloc(o->nuris, sizeof(*t->rot));
		if (!t->uris || !t->rot) {
			s2s_transport_destroy(t);
			return S2S_ERR_NOMEM;
		}
		for (t->nuris = 0; t->nuris < o->nuris; t->nuris++) {
			t->uris[t->nuris] = strdup(o->uris[t->nuris]);
			if (!t->uris[t->nuris]) {
				s2s_transport_destroy(t);
				return S2S_ERR_NOMEM;
			}
		}
	}
	t->o = *o;
	t->o.uris = NULL;       /* the caller's; t->uris are ours */
	t->cb = *cbs;
	parse_endpoint(t);
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);

	if (t->persist)
		mkdir(t->persist, 0700);
	e = link_new(t, &t->link);
	if (e) {
		s2s_transport_destroy(t);
		return e;
	}
	t->link->live = true;
	t->h = t->link->h;
	pin_persist(t);
	*out = t;
	return S2S_OK;
}

static void
stop_retrying(MQTTAsync h)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;

	d.timeout = 0;
	MQTTAsync_disconnect(h, &d);
}

/* ---- Poking (reconnect) -------------------------------------------------- */

#define POKES_MAX 200           /* then Paho's own 1 s poll takes over */

static void poke_next(struct s2s_transport *t);

static void
poke_answered(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	poke_next(ctx);
}

static void
poke_failed(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	poke_next(ctx);
}

/*
 * One more re-SUBSCRIBE on the old connection, unless the new one is up
 * (promote() stopped the poking) or the budget is spent.  From the
 * SUBACK callback (Paho's thread) or the reconnecting thread; never with
 * t->lock held while calling Paho.
 */
static void
poke_next(struct s2s_transport *t)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync h = NULL;
	const char *topic = NULL;
	bool go;

	pthread_mutex_lock(&t->lock);
	go = t->poking && t->pokes < POKES_MAX;
	if (go) {
		t->pokes++;
		h = t->poke_h;
		topic = t->poke_topic;  /* replaced only while not poking */
	}
	pthread_mutex_unlock(&t->lock);
	if (!go)
		return;
	ro.subscribeOptions.noLocal = 1;
	ro.subscribeOptions.retainHandling = 2;         /* nothing resent */
	ro.onSuccess5 = poke_answered;
	ro.onFailure5 = poke_failed;
	ro.context = t;
	if (MQTTAsync_subscribe(h, topic, 1, &ro) != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&t->lock);
		t->poking = false;
		pthread_mutex_unlock(&t->lock);
	}
}

/* Paho checks its connect timeouts every 3 s (MQTTAsync_checkTimeouts). */
#define PAHO_TIMEOUT_GRACE_MS 5000

/*
 * Start connecting l to uri (NULL: the one it was created with; the
 * password from the callback), and wait for the answer up to timeout_ms;
 * with poke, poke_next() runs once Paho has the CONNECT command.
 */
static enum s2s_err
connect_one(struct s2s_transport *t, struct link *l, const char *uri,
	    bool clean, int timeout_ms, bool poke)
{
	char *one[1] = { (char *)uri };
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p;
	struct waiter *w;
	char pw[PASSWORD_MAX];
	enum s2s_err e;
	int rc, wait_ms = timeout_ms;

	w = waiter_new(t);
	if (!w)
		return S2S_ERR_NOMEM;
	w->link = l;
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
	if (uri) {
		co.serverURIs = one;
		co.serverURIcount = 1;
		/*
		 * One broker of several: Paho's own connect timeout (whole
		 * seconds) ends its attempt before we stop waiting, so that
		 * the handle is idle when the next broker is tried.  A
		 * CONNECT given to a handle still connecting is swallowed
		 * (its callbacks replace the pending ones, nothing is
		 * dialled) and MQTTAsync_disconnect does not stop a connect
		 * in progress: a broker that took the TCP connection and
		 * never answered kept the device from every other one.
		 */
		co.connectTimeout = timeout_ms >= 2000 ? timeout_ms / 1000 : 1;
		wait_ms = (co.connectTimeout * 1000 > timeout_ms ?
			   co.connectTimeout * 1000 : timeout_ms) +
			  PAHO_TIMEOUT_GRACE_MS;
	}
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
	rc = MQTTAsync_connect(l->h, &co);
	if (rc == MQTTASYNC_SUCCESS && poke)
		poke_next(t);
	pthread_mutex_lock(&t->lock);
	if (rc != MQTTASYNC_SUCCESS) {
		t->poking = false;
		pthread_mutex_unlock(&t->lock);
		free(w);
		e = S2S_ERR_MQTT;
		goto out;
	}
	if (!wait_done(t, w, wait_ms)) {
		t->poking = false;
		if (t->next_link == l)  /* a late CONNACK must not promote */
			t->next_link = NULL;
		waiter_orphan(t, w);
		pthread_mutex_unlock(&t->lock);
		stop_retrying(l->h);
		e = S2S_ERR_TIMEOUT;
		goto out;
	}
	t->poking = false;
	e = w->rc;
	pthread_mutex_unlock(&t->lock);
	free(w);
	/* Paho would keep retrying a refused first connect on its own; the
	 * caller decides what to do instead. */
	if (e)
		stop_retrying(l->h);
out:
	memset(pw, 0, sizeof(pw));
	MQTTProperties_free(&props);
	return e;
}

/*
 * Connect l.  A cluster (several URIs): one broker after the other, from
 * the one we had, or after a lost connection from the next one (ours is
 * most likely down), each with its own share of timeout_ms and a fresh
 * token.  Not Paho's serverURIs list: Paho sends the same password to
 * each broker in turn, and the brokers share the used tokens, so the
 * second broker refused a token the first had taken before failing
 * (CONNACK "not authorised", read as a revocation).  S2S_ERR_DENIED only
 * if every broker that answered refused.  A broker that never answers
 * costs its share plus up to PAHO_TIMEOUT_GRACE_MS (connect_one).
 */
static enum s2s_err
connect_link(struct s2s_transport *t, struct link *l, bool clean,
	     int timeout_ms, bool poke)
{
	struct timespec t0, t1;
	enum s2s_err e = S2S_ERR_MQTT;
	bool denied = false, other = false;
	size_t first;

	if (t->nuris <= 1)
		return connect_one(t, l, NULL, clean, timeout_ms, poke);
	pthread_mutex_lock(&t->lock);
	first = t->cur + (t->lost ? 1 : 0);
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < t->nuris; i++)
		t->rot[i] = t->uris[(first + i) % t->nuris];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < t->nuris; i++) {
		long spent, left;
		int share;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		spent = (t1.tv_sec - t0.tv_sec) * 1000L +
			(t1.tv_nsec - t0.tv_nsec) / 1000000L;
		left = timeout_ms - spent;
		if (left < 1000)
			left = 1000;    /* each broker gets a chance */
		share = (int)(left / (long)(t->nuris - i));
		if (share < 1000)
			share = 1000;
		if (i > 0) {
			/* the next one: a new link would not poke */
			pthread_mutex_lock(&t->lock);
			if (poke && t->next_link == NULL)
				t->next_link = l;
			t->poking = poke;
			t->pokes = 0;
			pthread_mutex_unlock(&t->lock);
		}
		e = connect_one(t, l, t->rot[i], clean, share, poke);
		if (e == S2S_OK || e == S2S_ERR_NOMEM)
			return e;
		if (e == S2S_ERR_DENIED)
			denied = true;
		else
			other = true;
	}
	return denied && !other ? S2S_ERR_DENIED : e == S2S_ERR_DENIED ?
	       S2S_ERR_MQTT : e;
}

enum s2s_err
s2s_transport_connect(struct s2s_transport *t, bool clean, int timeout_ms)
{
	struct link *l;

	pthread_mutex_lock(&t->lock);
	if (t->connected) {
		pthread_mutex_unlock(&t->lock);
		return S2S_OK;
	}
	l = t->link;
	pthread_mutex_unlock(&t->lock);
	return connect_link(t, l, clean, timeout_ms, false);
}

enum s2s_err
s2s_transport_reconnect(struct s2s_transport *t, const char *poke_topic,
			int timeout_ms)
{
	struct link *l = NULL, *old;
	char *topic;
	enum s2s_err e;
	bool ok;

	pthread_mutex_lock(&t->lock);
	old = t->link;
	ok = t->connected && !t->pending && !t->next_link && poke_topic;
	pthread_mutex_unlock(&t->lock);
	/* Paho is never called with t->lock held (see connect_link). */
	if (!ok || !MQTTAsync_isConnected(old->h))
		return S2S_ERR_STATE;

	e = link_new(t, &l);
	if (e)
		return e;
	topic = strdup(poke_topic);
	if (!topic) {
		MQTTAsync_destroy(&l->h);
		free(l);
		return S2S_ERR_NOMEM;
	}
	pthread_mutex_lock(&t->lock);
	free(t->poke_topic);
	t->poke_topic = topic;
	t->next_link = l;
	t->poke_h = old->h;
	t->pokes = 0;
	t->poking = true;
	pthread_mutex_unlock(&t->lock);

	e = connect_link(t, l, false, timeout_ms, true);

	pthread_mutex_lock(&t->lock);
	t->poking = false;
	t->poke_h = NULL;
	if (!e)
		promote(t, l);          /* if no callback did yet */
	if (t->link != l) {             /* failed: keep the old one */
		if (!e)
			e = S2S_ERR_MQTT;
		if (t->next_link == l)
			t->next_link = NULL;
		l->next = t->retired;
		t->retired = l;
	}
	pthread_mutex_unlock(&t->lock);
	/* The old connection (taken over by now) or the failed new one:
	 * its handle goes; the link stays muted until destroy. */
	if (!e) {
		MQTTAsync_destroy(&old->h);
		if (getenv("S2S_DEBUG"))
			fprintf(stderr, "s2s transport: reconnected after "
				"%u pokes\n", t->pokes);
	} else {
		MQTTAsync_destroy(&l->h);
	}
	return e;
}

bool
s2s_transport_connected(const struct s2s_transport *t)
{
	return MQTTAsync_isConnected(cur_h((struct s2s_transport *)t)) != 0;
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
		rc = MQTTAsync_subscribe(cur_h(t), topic, 1, &ro);
		return rc == MQTTASYNC_SUCCESS ? S2S_OK : S2S_ERR_MQTT;
	}
	w = waiter_new(t);
	if (!w)
		return S2S_ERR_NOMEM;
	ro.onSuccess5 = sub_ok;
	ro.onFailure5 = sub_fail;
	ro.context = w;
	rc = MQTTAsync_subscribe(cur_h(t), topic, 1, &ro);
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

	rc = MQTTAsync_sendMessage(cur_h(t), topic, &m, &ro);
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
	rc = MQTTAsync_disconnect(cur_h(t), &d);
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
	free(t->link);                  /* its handle was t->h */
	while (t->retired) {            /* handles destroyed by reconnect() */
		struct link *l = t->retired;

		t->retired = l->next;
		if (l->h)
			MQTTAsync_destroy(&l->h);
		free(l);
	}
	free(t->poke_topic);
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
	for (size_t i = 0; i < t->nuris; i++)
		free(t->uris[i]);
	free(t->uris);
	free(t->rot);
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
s2s_transport_broker(struct s2s_transport *t)
{
	const char *u;

	if (t->nuris <= 1)
		return t->uri;
	pthread_mutex_lock(&t->lock);
	u = t->uris[t->cur];
	pthread_mutex_unlock(&t->lock);
	return u;
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
