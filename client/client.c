/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * client.c - libs2s-client: lifecycle, connection, the blocking calls of
 * s2s/client.h, the queue of callbacks, and the housekeeping thread that
 * runs timeouts and self-recovery (which may block, so it cannot run on
 * the network thread).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client_private.h"
#include "s2s/secmem.h"

#ifndef S2S_VERSION
#define S2S_VERSION "0.0.0"
#endif

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned live_clients;

S2S_EXPORT const char *
s2s_client_version(void)
{
	return S2S_VERSION;
}

static void
seterr(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

int64_t
client__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/*
 * Wait on c->cond (lock held) until the deadline; false when it passed or
 * the client is being destroyed (so the housekeeping thread, which may be
 * in a blocking call, lets go quickly).
 */
static bool
wait_until(struct s2s_client *c, const struct timespec *ts)
{
	if (c->stopping)
		return false;
	return pthread_cond_timedwait(&c->cond, &c->lock, ts) != ETIMEDOUT &&
	       !c->stopping;
}

uint64_t
client__new_req_id(void)
{
	uint64_t id = 0;

	while (!id)
		if (s2s_random(&id, sizeof(id)))
			id = (uint64_t)client__now_ms() ^ 0x5a5a5a5a5a5aULL;
	return id;
}

struct request *
client__req_add(struct s2s_client *c, uint64_t id, int type)
{
	for (int i = 0; i < REQ_MAX; i++) {
		if (!c->reqs[i].id) {
			memset(&c->reqs[i], 0, sizeof(c->reqs[i]));
			c->reqs[i].id = id;
			c->reqs[i].type = type;
			return &c->reqs[i];
		}
	}
	return NULL;
}

struct request *
client__req_find(struct s2s_client *c, uint64_t id)
{
	if (!id)
		return NULL;
	for (int i = 0; i < REQ_MAX; i++)
		if (c->reqs[i].id == id)
			return &c->reqs[i];
	return NULL;
}

static void
req_done(struct request *r)
{
	memset(r, 0, sizeof(*r));
}

struct pair *
client__find_pair(struct s2s_client *c, const char *peer)
{
	for (size_t i = 0; i < c->npairs; i++)
		if (!strcmp(c->pairs[i]->st.peer, peer))
			return c->pairs[i];
	return NULL;
}

struct pair *
client__add_pair(struct s2s_client *c, const char *peer)
{
	struct pair *p = client__find_pair(c, peer);

	if (p)
		return p;
	if (!s2s_id_valid(peer) || !strcmp(peer, c->cfg.id))
		return NULL;
	if (c->npairs == c->cap_pairs) {
		size_t cap = c->cap_pairs ? 2 * c->cap_pairs : 4;
		struct pair **np = realloc(c->pairs, cap * sizeof(*np));

		if (!np)
			return NULL;
		c->pairs = np;
		c->cap_pairs = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->st.peer, sizeof(p->st.peer), "%s", peer);
	if (s2s_pair_id(c->cfg.id, peer, p->st.pair_id)) {
		free(p);
		return NULL;
	}
	c->pairs[c->npairs++] = p;
	return p;
}

static void
pair_free(struct pair *p)
{
	message__clear_stash(p, true);
	free(p->resend);
	s2s_package_cache_clear(&p->rx_cache);
	if (p->tx_cache) {
		s2s_package_cache_clear(p->tx_cache);
		free(p->tx_cache);
	}
	s2s_memzero(p, sizeof(*p));
	free(p);
}

void
client__pair_topic(const struct s2s_client *c, const struct pair *p,
		   const char *sender, char *out, size_t len)
{
	snprintf(out, len, "%s/pair/%s/%s", c->cfg.topic_root, p->st.pair_id,
		 sender);
}

static void note_event_only(struct s2s_client *c, enum s2s_event ev,
			    const char *peer, const char *detail);

/*
 * Write the snapshot (st, v[0..n)) of generation gen unless a newer one
 * is on disk already.  Any thread; takes save_lock.
 */
static enum s2s_err
save_gen(struct s2s_client *c, const struct s2s_state *st,
	 const struct s2s_state_pair **v, size_t n, uint64_t gen)
{
	enum s2s_err e = S2S_OK;

	pthread_mutex_lock(&c->save_lock);
	if (gen > c->saved_gen) {
		e = s2s_state_save(c->cfg.state_dir, st, v, n,
				   c->cfg.state_fsync);
		if (!e) {
			c->saved_gen = gen;
			/* Every journal record is behind this file now. */
			if (gen > c->jgen_max)
				c->jslot = 0;
		}
	}
	pthread_mutex_unlock(&c->save_lock);
	return e;
}

static void
state_head(const struct s2s_client *c, struct s2s_state *st)
{
	memset(st, 0, sizeof(*st));
	st->registered = c->registered;
	snprintf(st->cs_id, sizeof(st->cs_id), "%s", c->cs_id);
	memcpy(st->cs_pub, c->cs_pub, sizeof(st->cs_pub));
}

static void
persist_failed(struct s2s_client *c)
{
	client__log(c, S2S_LOG_ERROR, "cannot write the state file in %s: %s",
		    c->cfg.state_dir, strerror(errno));
	note_event_only(c, S2S_EVENT_DISCONNECTED, NULL,
			"cannot write the state file");
}

/* c->lock held: write the state now (durably when state_fsync). */
void
client__persist(struct s2s_client *c)
{
	struct s2s_state st;
	const struct s2s_state_pair **v = NULL;

	state_head(c, &st);
	if (c->npairs) {
		v = calloc(c->npairs, sizeof(*v));
		if (!v)
			return;
		for (size_t i = 0; i < c->npairs; i++)
			v[i] = &c->pairs[i]->st;
	}
	c->persist_due = false;
	if (save_gen(c, &st, v, c->npairs, ++c->state_gen))
		persist_failed(c);
	free(v);
}

/*
 * c->lock held: the state changed in a way that may reach the disk a
 * little later (at most S2S_PERSIST_DELAY_MS; the housekeeping thread
 * writes it, outside c->lock, or the next client__persist or destroy
 * does).  Only for a receive chain moving forward: if the process dies
 * first, the state on disk has the receive chain a few packages back, so
 * the next run fetches those packages from the CS again and verifies them
 * again (a message may be delivered twice, none is lost).  The send
 * chain is never deferred: a package leaves only once its chain position
 * is on disk (s2s_client_send), or a restart could reuse it.
 */
void
client__persist_soon(struct s2s_client *c)
{
	if (c->persist_due)
		return;
	c->persist_due = true;
	c->persist_at = client__now_ms() + S2S_PERSIST_DELAY_MS;
	pthread_cond_broadcast(&c->cond);   /* the keeper shortens its nap */
}

/*
 * c->lock held on entry and on return, let go while writing: write a
 * snapshot of the state now (durably when state_fsync), so that the
 * network thread is not held up by the disk.  The caller looks its
 * pointers up again afterwards.  false if the write failed (logged).
 */
bool
client__persist_unlocked(struct s2s_client *c)
{
	struct s2s_state st;
	struct s2s_state_pair *cp = NULL;
	const struct s2s_state_pair **v = NULL;
	size_t n = c->npairs;
	uint64_t gen;
	enum s2s_err e;

	if (n && (!(cp = calloc(n, sizeof(*cp))) ||
		  !(v = calloc(n, sizeof(*v))))) {
		free(cp);
		client__persist(c);     /* no memory for a copy: write now */
		return true;
	}
	state_head(c, &st);
	for (size_t i = 0; i < n; i++) {
		cp[i] = c->pairs[i]->st;
		v[i] = &cp[i];
	}
	gen = ++c->state_gen;
	c->persist_due = false;
	pthread_mutex_unlock(&c->lock);
	e = save_gen(c, &st, v, n, gen);
	if (cp)
		s2s_memzero(cp, n * sizeof(*cp));
	free(cp);
	free(v);
	pthread_mutex_lock(&c->lock);
	if (e)
		persist_failed(c);
	return !e;
}

/*
 * c->lock held on entry and on return, let go while writing: make the send
 * chain tx of peer durable (fsynced with state_fsync) with one record of
 * the journal (state.h), or with a full write when the journal is not
 * there or has no free slot.  The caller looks its pointers up again
 * afterwards.
 *
 * rollback (the package never left, the chain goes back one position):
 * every record this run wrote for peer is overwritten with one saying so,
 * under a new counter, and the whole state is written too, so that no
 * record is ahead of the file (what lets a full write free every slot).
 */
void
client__persist_tx(struct s2s_client *c, const char *peer,
		   const struct s2s_chain *tx, bool rollback)
{
	struct s2s_chain copy = *tx;
	uint64_t gen = ++c->state_gen;
	enum s2s_err e = S2S_ERR_STATE;

	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&c->save_lock);
	if (c->txlog_fd >= 0 && rollback) {
		uint64_t k = ++c->jcounter;

		e = S2S_OK;
		for (unsigned i = 0; i < S2S_TXLOG_SLOTS; i++)
			if (!strcmp(c->jpeer[i], peer) &&
			    s2s_txlog_write(c->txlog_fd, i, k, peer, &copy,
					    c->cfg.state_fsync))
				e = S2S_ERR_IO;
	} else if (c->txlog_fd >= 0 && c->jslot < S2S_TXLOG_SLOTS) {
		e = s2s_txlog_write(c->txlog_fd, c->jslot, c->jcounter + 1,
				    peer, &copy, c->cfg.state_fsync);
		/* A failed write may still have landed: never reuse its
		 * slot or counter. */
		snprintf(c->jpeer[c->jslot], sizeof(c->jpeer[0]), "%s", peer);
		c->jcounter++;
		c->jslot++;
		if (gen > c->jgen_max)
			c->jgen_max = gen;
	}
	pthread_mutex_unlock(&c->save_lock);
	S2S_WIPE(copy);
	pthread_mutex_lock(&c->lock);
	if (e || rollback)
		(void)client__persist_unlocked(c);
}

/* Housekeeping thread, c->lock held: the deferred write, if due. */
static void
persist_deferred(struct s2s_client *c)
{
	if (c->persist_due && client__now_ms() >= c->persist_at)
		(void)client__persist_unlocked(c);
}

/* ---- Notes: callbacks made after the lock is released ------------------- */

static void
run_note(struct s2s_client *c, struct note *n)
{
	switch (n->kind) {
	case NOTE_MESSAGE:
		n->info.sender = n->peer;
		n->info.receiver = c->cfg.id;
		if (c->on_message)
			c->on_message(c->on_message_ud, &n->info, n->msg,
				      n->len);
		break;
	case NOTE_REJECT:
		n->rej.peer = n->peer;
		n->rej.reason = n->detail;
		if (c->on_reject)
			c->on_reject(c->on_reject_ud, &n->rej);
		break;
	case NOTE_SENT:
		if (c->on_sent) {
			struct s2s_sent_result r;

			memset(&r, 0, sizeof(r));
			r.peer = n->peer;
			r.session = n->info.session;
			r.seq = n->info.seq;
			r.err = n->rej.err;
			r.mqtt_reason = (int)n->len;
			c->on_sent(c->on_sent_ud, &r);
		}
		break;
	case NOTE_LOG:
		if (c->on_log)
			c->on_log(c->on_log_ud, n->ev == 1 ? S2S_LOG_ERROR :
				  n->ev == 2 ? S2S_LOG_INFO : S2S_LOG_DEBUG,
				  n->detail);
		break;
	case NOTE_EVENT:
		if (c->on_event)
			c->on_event(c->on_event_ud, n->ev,
				    n->peer[0] ? n->peer : NULL,
				    n->detail[0] ? n->detail : NULL);
		break;
	case NOTE_PUBLISH:
		if (n->topic)
			s2s_transport_publish(c->tr, n->topic, n->msg, n->len,
					      0);
		pthread_mutex_lock(&c->lock);
		c->ctl_sent++;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		break;
	case NOTE_SUBSCRIBE:
		if (n->topic)
			s2s_transport_subscribe(c->tr, n->topic, 0);
		break;
	}
	free(n->topic);
	if (n->msg) {
		s2s_memzero(n->msg, n->len);
		free(n->msg);
	}
	free(n);
}

static struct note *
note_new(struct s2s_client *c, int kind)
{
	struct note *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = kind;
	if (c->notes_tail)
		c->notes_tail->next = n;
	else
		c->notes = n;
	c->notes_tail = n;
	return n;
}

void
client__log(struct s2s_client *c, enum s2s_log_level level, const char *fmt,
	    ...)
{
	struct note *n;
	va_list ap;

	if (!c->on_log || (int)level > c->log_level)
		return;
	n = note_new(c, NOTE_LOG);
	if (!n)
		return;
	n->ev = (enum s2s_event)level;
	va_start(ap, fmt);
	vsnprintf(n->detail, sizeof(n->detail), fmt, ap);
	va_end(ap);
}

void
client__note_sent(struct s2s_client *c, const char *peer, uint64_t session,
		  uint64_t seq, int err, int reason)
{
	struct note *n;

	client__log(c, err ? S2S_LOG_ERROR : S2S_LOG_DEBUG,
		    "package %llu to %s: %s", (unsigned long long)seq, peer,
		    err ? s2s_strerror(err) : "accepted by the CS");
	if (!c->on_sent)
		return;
	n = note_new(c, NOTE_SENT);
	if (!n)
		return;
	snprintf(n->peer, sizeof(n->peer), "%s", peer);
	n->info.session = session;
	n->info.seq = seq;
	n->rej.err = err;
	n->len = (size_t)(reason > 0 ? reason : 0);
}

static const char *
event_text(enum s2s_event ev)
{
	switch (ev) {
	case S2S_EVENT_CONNECTED: return "connected";
	case S2S_EVENT_DISCONNECTED: return "disconnected";
	case S2S_EVENT_PAIRED: return "paired with";
	case S2S_EVENT_SESSION_UP: return "session up with";
	case S2S_EVENT_SESSION_DOWN: return "session ended with";
	case S2S_EVENT_RECOVERING: return "recovering the session with";
	case S2S_EVENT_REGISTERED: return "registered with";
	case S2S_EVENT_DENIED: return "refused by the broker";
	}
	return "event";
}

static void
note_event_only(struct s2s_client *c, enum s2s_event ev, const char *peer,
		const char *detail)
{
	struct note *n;

	if (!c->on_event)
		return;
	n = note_new(c, NOTE_EVENT);
	if (!n)
		return;
	n->ev = ev;
	snprintf(n->peer, sizeof(n->peer), "%s", peer ? peer : "");
	snprintf(n->detail, sizeof(n->detail), "%s", detail ? detail : "");
}

void
client__note_event(struct s2s_client *c, enum s2s_event ev, const char *peer,
		   const char *detail)
{
	/* The broker of the connection, not the first of the list: a
	 * device that failed over names the one it is on. */
	const char *broker = c->tr ? s2s_transport_broker(c->tr)
				   : c->cfg.broker;

	if (ev == S2S_EVENT_CONNECTED)
		client__log(c, S2S_LOG_INFO, "%s to %s",
			    detail ? detail : "connected", broker);
	else if (ev == S2S_EVENT_DISCONNECTED)
		client__log(c, S2S_LOG_INFO, "disconnected from %s (%s); "
			    "reconnecting", broker,
			    detail ? detail : "connection lost");
	else
		client__log(c, ev == S2S_EVENT_DENIED ? S2S_LOG_ERROR
						      : S2S_LOG_INFO,
			    "%s%s%s%s%s", event_text(ev), peer ? " " : "",
			    peer ? peer : "", detail && *detail ? ": " : "",
			    detail ? detail : "");
	note_event_only(c, ev, peer, detail);
}

void
client__note_reject(struct s2s_client *c, const char *peer, uint64_t session,
		    uint64_t seq, int err, bool outgoing, const char *reason)
{
	struct note *n;

	if (!c->on_reject)
		return;
	n = note_new(c, NOTE_REJECT);
	if (!n)
		return;
	snprintf(n->peer, sizeof(n->peer), "%s", peer ? peer : "");
	snprintf(n->detail, sizeof(n->detail), "%s",
		 reason ? reason : s2s_strerror(err));
	n->rej.session = session;
	n->rej.seq = seq;
	n->rej.err = err;
	n->rej.outgoing = outgoing;
}

/* The client whose notes this thread is running, if any. */
static _Thread_local struct s2s_client *draining;

/*
 * Make the queued calls, in order, with no lock of ours held: Paho holds
 * its own lock while it calls us back, so a thread that waited here for a
 * lock held by a thread inside Paho would deadlock.  One thread drains at
 * a time (c->drain, taken with trylock only): the others leave their
 * notes to it, and it looks again after letting go, so nothing is left
 * behind.  Hence user callbacks of one client never run concurrently.
 */
void
client__flush_notes(struct s2s_client *c)
{
	struct s2s_client *outer = draining;
	struct note *n;
	bool more;

	do {
		if (pthread_mutex_trylock(&c->drain))
			return;     /* the drainer will see our notes */
		draining = c;
		for (;;) {
			pthread_mutex_lock(&c->lock);
			n = c->notes;
			if (n) {
				c->notes = n->next;
				if (!c->notes)
					c->notes_tail = NULL;
			}
			pthread_mutex_unlock(&c->lock);
			if (!n)
				break;
			run_note(c, n);
		}
		draining = outer;
		pthread_mutex_unlock(&c->drain);
		pthread_mutex_lock(&c->lock);
		more = c->notes != NULL;
		pthread_mutex_unlock(&c->lock);
	} while (more);
}

bool
client__ctl_pending(const struct s2s_client *c, uint64_t n)
{
	return c->ctl_sent < n && draining != c;
}

bool
client__in_callback(struct s2s_client *c, const char *fn)
{
	if (!draining)
		return false;
	pthread_mutex_lock(&c->lock);
	snprintf(c->last_reason, sizeof(c->last_reason), "%s() called from "
		 "a callback: blocking calls wait for the thread that runs "
		 "the callbacks; call it from an application thread", fn);
	pthread_mutex_unlock(&c->lock);
	return true;
}

bool
client__wait_ctl_sent(struct s2s_client *c, uint64_t n, int timeout_ms)
{
	struct timespec ts;

	if (!client__ctl_pending(c, n))
		return true;
	deadline_after(&ts, timeout_ms);
	do {
		pthread_mutex_unlock(&c->lock);
		client__flush_notes(c);
		pthread_mutex_lock(&c->lock);
	} while (c->ctl_sent < n && wait_until(c, &ts));
	return c->ctl_sent >= n;
}

/* ---- Transport callbacks (network thread) -------------------------------- */

static void
tr_password(void *ctx, char *out, size_t len)
{
	struct s2s_client *c = ctx;
	char tok[S2S_TOKEN_MAX];
	uint64_t exp = (uint64_t)time(NULL) + (uint64_t)c->cfg.token_ttl;

	out[0] = '\0';
	/*
	 * Protocol v2: a fresh single-use token for every CONNECT (the CS
	 * accepts each once), so reconnects call this again.  Not registered
	 * (or registering a new key): with an enrolment code, an enrolment
	 * login that proves it without sending it; without one, anonymous
	 * (or, if the broker refuses that, an enrolment login without code).
	 */
	tok[0] = '\0';
	if (c->use_token) {
		if (s2s_token_make(c->key, c->cfg.id, exp, tok) != S2S_OK)
			tok[0] = '\0';
	} else if (c->cfg.enrolment_code || c->enrol_empty) {
		const char *code = c->cfg.enrolment_code;

		if (s2s_enrol_token_make(c->cfg.id, (const uint8_t *)code,
					 code ? strlen(code) : 0, exp,
					 tok) != S2S_OK)
			tok[0] = '\0';
	}
	snprintf(out, len, "%s", tok);
	s2s_memzero(tok, sizeof(tok));
}

static void
subscribe_all(struct s2s_client *c)
{
	char topic[TOPIC_MAX];

	pthread_mutex_lock(&c->lock);
	client__subscribe(c, c->topic_inbox);
	for (size_t i = 0; i < c->npairs; i++) {
		struct pair *p = c->pairs[i];

		if (p->st.status != S2S_PAIR_DONE)
			continue;
		client__pair_topic(c, p, p->st.peer, topic, sizeof(topic));
		client__subscribe(c, topic);
	}
	pthread_mutex_unlock(&c->lock);
}

static void
tr_connected(void *ctx, bool reconnect, bool session_present)
{
	struct s2s_client *c = ctx;

	(void)session_present;
	subscribe_all(c);
	pthread_mutex_lock(&c->lock);
	reconnect = c->ever_connected;
	c->connected = true;
	c->ever_connected = true;
	c->retry_ms = 1000;
	if (c->use_token && c->cfg.fetch_on_connect) {
		/* Catch up on what the broker could not keep for us. */
		for (size_t i = 0; i < c->npairs; i++) {
			struct pair *p = c->pairs[i];

			if (p->st.established && !p->fetch_req)
				control__fetch(c, p, p->st.rx.next_seq,
					       p->st.rx.next_seq +
					       S2S_MSG_FETCH_MAX - 1, true);
		}
	}
	client__note_event(c, S2S_EVENT_CONNECTED, NULL,
			   reconnect ? "reconnected" : "connected");
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
}

static void
tr_lost(void *ctx, const char *cause)
{
	struct s2s_client *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->connected = false;
	/* Several brokers (a cluster): another one is most likely up, try
	 * at once; later failures back off as usual. */
	c->next_retry = client__now_ms() +
			(c->cfg.nbrokers > 1 ? 0 : c->retry_ms);
	client__note_event(c, S2S_EVENT_DISCONNECTED, NULL, cause);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
}

static void
tr_message(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
	struct s2s_client *c = ctx;
	size_t rl = strlen(c->cfg.topic_root);

	if (!strcmp(topic, c->topic_inbox)) {
		control__inbox(c, payload, len);
	} else if (!strncmp(topic, c->cfg.topic_root, rl) &&
		   !strncmp(topic + rl, "/pair/", 6)) {
		/* ROOT/pair/<pair>/<sender> */
		const char *sender = strrchr(topic, '/') + 1;

		message__receive(c, sender, payload, len, FROM_NET);
	}
	client__flush_notes(c);
}

static void
tr_published(void *ctx, uint64_t tag, enum s2s_err rc, int reason)
{
	struct s2s_client *c = ctx;

	message__published(c, tag, rc, reason);
	client__flush_notes(c);
}

/* ---- Housekeeping thread --------------------------------------------------- */

static enum s2s_err
recover_session(struct s2s_client *c, const char *peer, uint64_t broken)
{
	uint64_t now = 0;

	/*
	 * A session that is still established here but known broken must be
	 * replaced: ensure_session() would find it and do nothing.  One the
	 * peer (or an earlier try) negotiated since is fine as it is.
	 */
	if (broken && s2s_client_has_session(c, peer, &now) && now == broken &&
	    s2s_client_paired(c, peer))
		return s2s_client_session(c, peer, -1);
	return s2s_client_ensure_session(c, peer, -1);
}

static void *
keeper_main(void *arg)
{
	struct s2s_client *c = arg;
	struct timespec ts;

	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		char peer[S2S_MSG_ID_MAX + 1] = "";
		uint64_t broken = 0;

		deadline_after(&ts, c->persist_due ?
			       (int)(c->persist_at > client__now_ms() ?
				     c->persist_at - client__now_ms() : 0) :
			       200);
		wait_until(c, &ts);
		if (c->stopping)
			break;
		persist_deferred(c);
		if (c->stopping)
			break;
		message__tick(c);
		if (c->want_connected && !c->connected &&
		    client__now_ms() >= c->next_retry) {
			/* Reconnect, with a fresh token.  Paho is asked
			 * without c->lock: its thread holds Paho's lock while
			 * it calls us back (tr_connected takes c->lock). */
			enum s2s_err e = S2S_OK;
			bool up;

			pthread_mutex_unlock(&c->lock);
			up = s2s_transport_connected(c->tr);
			if (!up)
				e = s2s_transport_connect(c->tr, false,
							  c->cfg.timeout_connect);
			pthread_mutex_lock(&c->lock);
			if (!up) {
				if (e == S2S_ERR_DENIED && c->use_token &&
				    !c->connected) {
					/* Revoked (or the key was replaced):
					 * retrying cannot help.  Say so once
					 * and stop. */
					c->want_connected = false;
					c->denied = true;
					snprintf(c->last_reason,
						 sizeof(c->last_reason),
						 "%s refused this device's "
						 "credentials on reconnect "
						 "(revoked by the "
						 "administrator?): not "
						 "reconnecting",
						 c->cfg.broker);
					client__note_event(c, S2S_EVENT_DENIED,
							   NULL,
							   c->last_reason);
					pthread_cond_broadcast(&c->cond);
				} else if (e && !c->connected) {
					c->retry_ms = c->retry_ms < 8000 ?
						      2 * c->retry_ms : 16000;
					c->next_retry = client__now_ms() +
							c->retry_ms;
				}
				continue;
			}
			if (c->stopping)
				break;
		}
		for (size_t i = 0; i < c->npairs; i++) {
			struct pair *p = c->pairs[i];

			if (p->need_recover &&
			    client__now_ms() >= p->recover_after &&
			    p->neg == NEG_NONE && c->connected) {
				p->need_recover = false;
				p->recover_after = client__now_ms() +
						   c->cfg.timeout_session;
				broken = p->broken_session;
				snprintf(peer, sizeof(peer), "%s", p->st.peer);
				break;
			}
		}
		if (peer[0]) {
			enum s2s_err e;

			client__note_event(c, S2S_EVENT_RECOVERING, peer,
					   "negotiating a new session");
			pthread_mutex_unlock(&c->lock);
			client__flush_notes(c);
			e = recover_session(c, peer, broken);
			pthread_mutex_lock(&c->lock);
			if (e) {
				struct pair *p = client__find_pair(c, peer);

				if (p)
					p->need_recover = true;
			} else {
				struct pair *p = client__find_pair(c, peer);

				if (p && p->broken_session == broken)
					p->broken_session = 0;
			}
		}
		pthread_mutex_unlock(&c->lock);
		client__flush_notes(c);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- Lifecycle --------------------------------------------------------------- */

static enum s2s_err
make_dir(const char *path, char *err, size_t err_len)
{
	struct stat sb;

	if (!stat(path, &sb)) {
		if (!S_ISDIR(sb.st_mode)) {
			seterr(err, err_len, "state_dir: %s is not a folder",
			       path);
			return S2S_ERR_CONFIG;
		}
		return S2S_OK;
	}
	if (mkdir(path, 0700)) {
		seterr(err, err_len, "state_dir: cannot create %s: %s", path,
		       strerror(errno));
		return S2S_ERR_IO;
	}
	return S2S_OK;
}

static enum s2s_err
load_state(struct s2s_client *c, char *err, size_t err_len)
{
	struct s2s_state st;
	enum s2s_err e = s2s_state_load(c->cfg.state_dir, &st, err, err_len);

	if (e == S2S_ERR_NOT_FOUND)
		return S2S_OK;  /* a new device, or one that lost its state */
	if (e)
		return e;
	c->registered = st.registered;
	snprintf(c->cs_id, sizeof(c->cs_id), "%s", st.cs_id);
	for (size_t i = 0; i < st.npairs && !e; i++) {
		struct pair *p = client__add_pair(c, st.pairs[i].peer);

		if (!p)
			e = S2S_ERR_NOMEM;
		else
			p->st = st.pairs[i];
	}
	s2s_state_clear(&st);
	return e;
}

S2S_EXPORT enum s2s_err
s2s_client_create(const char *config_path, struct s2s_client **out,
		  char *err, size_t err_len)
{
	struct s2s_client *c;
	struct s2s_transport_opts to;
	struct s2s_transport_cbs tc;
	char persist[4096];
	char sub[512];
	enum s2s_err e;

	if (out)
		*out = NULL;
	if (!config_path || !out) {
		seterr(err, err_len, "no configuration file given");
		return S2S_ERR_INVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return S2S_ERR_NOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->save_lock, NULL);
	c->txlog_fd = -1;
	pthread_mutex_init(&c->drain, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->retry_ms = 1000;
	c->lock_fd = -1;

	/* A device multiplies each point a few times per negotiation: no
	 * 3-4 ms fixed-point tables in the middle of a step (s2s/crypto.h). */
	s2s_crypto_fixed_point_cache(false);
	e = s2s_device_config_load(config_path, &c->cfg, err, err_len);
	if (e)
		goto fail;
	e = s2s_key_load_private(c->cfg.key_file, &c->key);
	if (e) {
		/* The file's own errno names a missing or unreadable file
		 * better than the loader's input/output error. */
		int en = e == S2S_ERR_IO && access(c->cfg.key_file, R_OK) ?
			 errno : 0;

		seterr(err, err_len, "key: %s: %s%s", c->cfg.key_file,
		       en ? strerror(en) : s2s_strerror(e),
		       e == S2S_ERR_PERM ? " (chmod 600 it)" :
		       en == ENOENT ? " (make one: s2s keygen --out NAME "
				      "writes NAME.key and NAME.pub)" : "");
		goto fail;
	}
	e = s2s_key_load_public(c->cfg.cs_key_file, &c->cs_key);
	if (e) {
		int en = e == S2S_ERR_IO && access(c->cfg.cs_key_file, R_OK) ?
			 errno : 0;

		seterr(err, err_len, "cs_key: %s: %s%s", c->cfg.cs_key_file,
		       en ? strerror(en) : s2s_strerror(e),
		       en == ENOENT ? " (the CS's cs.pub, from the folder of "
				      "plugin_opt_cs_key)" : "");
		goto fail;
	}
	s2s_key_public(c->cs_key, c->cs_pub);
	e = covers__load(c->cfg.covers, &c->covers, &c->ncovers, sub,
			 sizeof(sub));
	if (e) {
		seterr(err, err_len, "%s", sub);
		goto fail;
	}
	e = make_dir(c->cfg.state_dir, err, err_len);
	if (e)
		goto fail;
	c->lock_fd = local__lock(c->cfg.state_dir, err, err_len);
	if (c->lock_fd < 0) {
		e = c->lock_fd == -2 ? S2S_ERR_STATE : S2S_ERR_IO;
		goto fail;
	}
	e = s2s_state_owner(c->cfg.state_dir, c->cfg.id, true, err, err_len);
	if (e)
		goto fail;
	e = load_state(c, err, err_len);
	if (e)
		goto fail;
	/*
	 * The send-chain journal: without it, every send writes the whole
	 * state.  Full until the first full write (its records, applied by
	 * load_state, may be ahead of the state file).
	 */
	if (s2s_txlog_open(c->cfg.state_dir, &c->txlog_fd, &c->jcounter))
		client__log(c, S2S_LOG_ERROR, "cannot open the send journal "
			    "in %s (%s): every send writes the whole state",
			    c->cfg.state_dir, strerror(errno));
	c->jslot = S2S_TXLOG_SLOTS;
	e = local__spool_load(c, err, err_len);
	if (e)
		goto fail;
	c->spool_ok = true;

	snprintf(c->topic_inbox, TOPIC_MAX, "%s/inbox/%s", c->cfg.topic_root,
		 c->cfg.id);
	snprintf(c->topic_req, TOPIC_MAX, "%s/req/%s", c->cfg.topic_root,
		 c->cfg.id);
	snprintf(c->topic_register, TOPIC_MAX, "%s/cs/register",
		 c->cfg.topic_root);

	snprintf(persist, sizeof(persist), "%s/mqtt", c->cfg.state_dir);
	memset(&to, 0, sizeof(to));
	to.uri = c->cfg.broker;
	to.uris = (const char *const *)c->cfg.brokers;
	to.nuris = c->cfg.nbrokers;
	to.client_id = c->cfg.id;
	to.persist_dir = persist;
	to.keepalive = c->cfg.keepalive;
	to.session_expiry = (uint32_t)c->cfg.session_expiry;
	to.tls_ca_file = c->cfg.tls_ca_file;
	to.tls_cert_file = c->cfg.tls_cert_file;
	to.tls_key_file = c->cfg.tls_key_file;
	to.tls_verify = c->cfg.tls_verify;
	memset(&tc, 0, sizeof(tc));
	tc.ctx = c;
	tc.password = tr_password;
	tc.connected = tr_connected;
	tc.lost = tr_lost;
	tc.message = tr_message;
	tc.published = tr_published;
	e = s2s_transport_create(&to, &tc, &c->tr);
	if (e) {
		seterr(err, err_len, "broker: cannot use '%s': %s",
		       c->cfg.broker, s2s_strerror(e));
		goto fail;
	}
	if (pthread_create(&c->keeper, NULL, keeper_main, c)) {
		e = S2S_ERR_NOMEM;
		goto fail;
	}
	c->keeper_running = true;
	pthread_mutex_lock(&live_lock);
	live_clients++;
	pthread_mutex_unlock(&live_lock);
	*out = c;
	return S2S_OK;
fail:
	s2s_client_destroy(c);
	return e;
}

S2S_EXPORT void
s2s_client_destroy(struct s2s_client *c)
{
	bool last = false;

	if (!c)
		return;
	if (c->keeper_running) {
		pthread_mutex_lock(&c->lock);
		c->stopping = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->keeper, NULL);
		pthread_mutex_lock(&live_lock);
		last = --live_clients == 0;
		pthread_mutex_unlock(&live_lock);
	}
	if (c->tr) {
		s2s_transport_disconnect(c->tr, 2000);
		s2s_transport_destroy(c->tr);
	}
	/* Nothing calls back any more.  Messages nobody took stay for the
	 * next client of this state (local.c). */
	if (c->spool_ok)
		(void)local__spool_save(c);
	/* After the spool: a receive chain on disk never runs ahead of the
	 * messages kept for the next run. */
	if (c->persist_due) {
		pthread_mutex_lock(&c->lock);
		client__persist(c);
		pthread_mutex_unlock(&c->lock);
	}
	while (c->notes) {
		struct note *n = c->notes;

		c->notes = n->next;
		free(n->topic);
		if (n->msg) {
			s2s_memzero(n->msg, n->len);
			free(n->msg);
		}
		free(n);
	}
	while (c->rq_head) {
		struct queued *q = c->rq_head;

		c->rq_head = q->next;
		s2s_received_free(q->r);
		free(q);
	}
	while (c->sendings) {
		struct sending *s = c->sendings;

		c->sendings = s->next;
		free(s);
	}
	for (size_t i = 0; i < c->npairs; i++)
		pair_free(c->pairs[i]);
	free(c->pairs);
	covers__free(c->covers, c->ncovers);
	s2s_key_destroy(c->key);
	s2s_key_destroy(c->cs_key);
	s2s_device_config_free(&c->cfg);
	if (c->txlog_fd >= 0)
		close(c->txlog_fd);
	local__unlock(c->lock_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->save_lock);
	pthread_mutex_destroy(&c->drain);
	pthread_cond_destroy(&c->cond);
	s2s_memzero(c, sizeof(*c));
	free(c);
	if (last)
		s2s_crypto_shutdown();
}

S2S_EXPORT const char *
s2s_client_id(const struct s2s_client *c)
{
	return c->cfg.id;
}

S2S_EXPORT void
s2s_client_on_message(struct s2s_client *c, s2s_message_cb *cb, void *ud)
{
	pthread_mutex_lock(&c->lock);
	c->on_message = cb;
	c->on_message_ud = ud;
	/* Messages queued for s2s_client_receive() (kept from an earlier
	 * run, local.c) go to the callback instead, before any new one. */
	while (cb && c->rq_head) {
		struct queued *q = c->rq_head;
		struct note *n = note_new(c, NOTE_MESSAGE);

		if (!n)
			break;
		c->rq_head = q->next;
		if (!c->rq_head)
			c->rq_tail = NULL;
		n->info = q->r->info;
		snprintf(n->peer, sizeof(n->peer), "%.*s",
			 (int)sizeof(n->peer) - 1, q->r->sender_buf);
		n->msg = q->r->msg;
		n->len = q->r->len;
		q->r->msg = NULL;
		s2s_received_free(q->r);
		free(q);
	}
	pthread_mutex_unlock(&c->lock);
}

S2S_EXPORT void
s2s_client_on_reject(struct s2s_client *c, s2s_reject_cb *cb, void *ud)
{
	pthread_mutex_lock(&c->lock);
	c->on_reject = cb;
	c->on_reject_ud = ud;
	pthread_mutex_unlock(&c->lock);
}

S2S_EXPORT void
s2s_client_on_event(struct s2s_client *c, s2s_event_cb *cb, void *ud)
{
	pthread_mutex_lock(&c->lock);
	c->on_event = cb;
	c->on_event_ud = ud;
	pthread_mutex_unlock(&c->lock);
}

S2S_EXPORT void
s2s_client_on_sent(struct s2s_client *c, s2s_sent_cb *cb, void *ud)
{
	pthread_mutex_lock(&c->lock);
	c->on_sent = cb;
	c->on_sent_ud = ud;
	pthread_mutex_unlock(&c->lock);
}

S2S_EXPORT void
s2s_client_on_log(struct s2s_client *c, s2s_log_cb *cb, void *ud,
		  enum s2s_log_level max_level)
{
	pthread_mutex_lock(&c->lock);
	c->on_log = cb;
	c->on_log_ud = ud;
	c->log_level = (int)max_level;
	pthread_mutex_unlock(&c->lock);
}

S2S_EXPORT void
s2s_free(void *p)
{
	free(p);
}

/* ---- Status ------------------------------------------------------------------ */

S2S_EXPORT size_t
s2s_client_peer_count(const struct s2s_client *c)
{
	struct s2s_client *m = (struct s2s_client *)c;
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->npairs;
	pthread_mutex_unlock(&m->lock);
	return n;
}

S2S_EXPORT enum s2s_err
s2s_client_peer_status(const struct s2s_client *c, size_t i,
		       struct s2s_peer_status *out)
{
	struct s2s_client *m = (struct s2s_client *)c;
	const struct pair *p;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&m->lock);
	if (i >= m->npairs) {
		pthread_mutex_unlock(&m->lock);
		return S2S_ERR_NOT_FOUND;
	}
	p = m->pairs[i];
	snprintf(out->peer, sizeof(out->peer), "%s", p->st.peer);
	snprintf(out->pair_id, sizeof(out->pair_id), "%s", p->st.pair_id);
	out->pair = p->st.status == S2S_PAIR_DONE ? 2 :
		    p->st.status == S2S_PAIR_PENDING ? 1 : 0;
	out->profile = p->st.profile;
	out->established = p->st.established;
	out->negotiating = p->neg != NEG_NONE;
	if (p->st.established) {
		out->session = p->st.session;
		out->role = p->st.role;
		out->send_next = p->st.tx.next_seq;
		out->recv_next = p->st.rx.next_seq;
	}
	pthread_mutex_unlock(&m->lock);
	return S2S_OK;
}

S2S_EXPORT enum s2s_err
s2s_client_forget_peer(struct s2s_client *c, const char *peer)
{
	struct pair *p;
	bool had_session;
	size_t i;

	if (!peer || !s2s_id_valid(peer))
		return S2S_ERR_INVAL;
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (!p) {
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_NOT_FOUND;
	}
	had_session = p->st.established || p->neg != NEG_NONE;
	pthread_mutex_unlock(&c->lock);
	/* Tell the CS first (nothing waits for it). */
	if (had_session && s2s_transport_connected(c->tr))
		(void)s2s_client_end_session(c, peer);
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	for (i = 0; p && i < c->npairs; i++)
		if (c->pairs[i] == p)
			break;
	if (p && i < c->npairs) {
		c->pairs[i] = c->pairs[--c->npairs];
		client__note_event(c, S2S_EVENT_SESSION_DOWN, peer,
				   "forgotten on this device");
		pair_free(p);
		client__persist(c);
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
	return S2S_OK;
}

/* ---- Connection ------------------------------------------------------------ */

/* The one convention (client.h): > 0 that long, < 0 the configured
 * timeout, 0 no waiting (callers handle 0 before they wait). */
static int
pick_timeout(int given, int configured)
{
	return given < 0 ? configured : given;
}

S2S_EXPORT enum s2s_err
s2s_client_connect(struct s2s_client *c, int timeout_ms)
{
	enum s2s_err e;

	if (timeout_ms != 0 && client__in_callback(c, "s2s_client_connect"))
		return S2S_ERR_STATE;
	timeout_ms = pick_timeout(timeout_ms, c->cfg.timeout_connect);
	if (s2s_transport_connected(c->tr))
		return S2S_OK;
	if (!timeout_ms) {
		/* Connect in the background (housekeeping thread);
		 * S2S_EVENT_CONNECTED tells when. */
		pthread_mutex_lock(&c->lock);
		c->use_token = c->registered;
		c->want_connected = true;
		c->denied = false;
		c->next_retry = 0;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_TIMEOUT;
	}
	/* A registered device (as far as it remembers) uses a token; a new
	 * one connects anonymously to register.  If that guess is wrong
	 * (state lost; revoked and re-enrolled), try the other way. */
	c->use_token = c->registered;
	c->enrol_empty = false;
	e = s2s_transport_connect(c->tr, false, timeout_ms);
	if (e == S2S_ERR_DENIED) {
		c->use_token = !c->use_token;
		e = s2s_transport_connect(c->tr, false, timeout_ms);
		if (e == S2S_ERR_DENIED && !c->cfg.enrolment_code) {
			/* Anonymous refused (allow_anonymous false): an
			 * enrolment login without code (open enrolment). */
			c->use_token = false;
			c->enrol_empty = true;
			e = s2s_transport_connect(c->tr, false, timeout_ms);
		}
		if (e == S2S_ERR_DENIED) {
			c->use_token = true;
			c->enrol_empty = false;
		}
		else if (!e && !c->use_token) {
			/* The token was refused: say so (health checks and
			 * applications learn it here, not at a later call). */
			pthread_mutex_lock(&c->lock);
			snprintf(c->last_reason, sizeof(c->last_reason),
				 "%s refused this device's token (revoked, or "
				 "registered with another key?): connected "
				 "without one, to register again",
				 c->cfg.broker);
			client__note_event(c, S2S_EVENT_DENIED, NULL,
					   c->last_reason);
			pthread_mutex_unlock(&c->lock);
			client__flush_notes(c);
		}
	}
	if (e) {
		char paho[256], why[S2S_MSG_REASON_MAX + 1];

		s2s_transport_last_error(c->tr, paho, sizeof(paho));
		diagnose__connect(&c->cfg, e, paho, why, sizeof(why));
		pthread_mutex_lock(&c->lock);
		snprintf(c->last_reason, sizeof(c->last_reason), "%s", why);
		pthread_mutex_unlock(&c->lock);
		return e;
	}
	pthread_mutex_lock(&c->lock);
	c->want_connected = true;
	c->denied = false;
	pthread_mutex_unlock(&c->lock);
	/* The inbox must be in place before the first request. */
	return s2s_transport_subscribe(c->tr, c->topic_inbox, timeout_ms);
}

S2S_EXPORT bool
s2s_client_connected(const struct s2s_client *c)
{
	return s2s_transport_connected(c->tr);
}

S2S_EXPORT void
s2s_client_close(struct s2s_client *c, int timeout_ms)
{
	if (timeout_ms < 0)
		timeout_ms = 2000;      /* as s2s_client_destroy() */
	pthread_mutex_lock(&c->lock);
	c->want_connected = false;
	pthread_mutex_unlock(&c->lock);
	s2s_transport_disconnect(c->tr, timeout_ms);
	pthread_mutex_lock(&c->lock);
	c->connected = false;
	pthread_mutex_unlock(&c->lock);
}

static enum s2s_err
ensure_connected(struct s2s_client *c)
{
	bool denied;

	if (s2s_transport_connected(c->tr))
		return S2S_OK;
	pthread_mutex_lock(&c->lock);
	denied = c->denied;
	pthread_mutex_unlock(&c->lock);
	if (denied)
		return S2S_ERR_DENIED;  /* last_reason says why */
	if (c->ever_connected) {
		/* Paho reconnects on its own; give it the connect timeout. */
		struct timespec ts;

		deadline_after(&ts, c->cfg.timeout_connect);
		pthread_mutex_lock(&c->lock);
		while (!c->connected && wait_until(c, &ts))
			;
		pthread_mutex_unlock(&c->lock);
		if (s2s_transport_connected(c->tr))
			return S2S_OK;
	}
	return s2s_client_connect(c, -1);
}

enum s2s_err
client__send_ctl(struct s2s_client *c, const char *topic,
		 const struct s2s_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct note *n;
	enum s2s_err e;

	e = s2s_msg_encode(m, c->cs_key, c->key, &buf, &len);
	if (e)
		return e;
	n = note_new(c, NOTE_PUBLISH);
	if (!n || !(n->topic = strdup(topic))) {
		free(buf);
		return S2S_ERR_NOMEM;
	}
	n->msg = buf;
	n->len = len;
	c->ctl_queued++;
	return S2S_OK;
}

void
client__subscribe(struct s2s_client *c, const char *topic)
{
	struct note *n = note_new(c, NOTE_SUBSCRIBE);

	if (n)
		n->topic = strdup(topic);
}

/* Check a peer argument; sets last_reason. */
static enum s2s_err
check_peer(struct s2s_client *c, const char *peer)
{
	const char *why = NULL;

	if (!peer || !s2s_id_valid(peer))
		why = "invalid peer id (1..64 of A-Z a-z 0-9 _ . -)";
	else if (!strcmp(peer, c->cfg.id))
		why = "the peer is this device itself: a device cannot pair "
		      "with or send to its own id";
	if (!why)
		return S2S_OK;
	pthread_mutex_lock(&c->lock);
	snprintf(c->last_reason, sizeof(c->last_reason), "%s", why);
	pthread_mutex_unlock(&c->lock);
	return S2S_ERR_INVAL;
}

/*
 * Lock held: wait on c->cond until ts, but wake every 5 s to make an INFO
 * log line "waiting for <what> (N s)" (s2s_client_on_log), so a user
 * sees what a long wait is for.  false when ts passed (or stopping).
 */
static bool
wait_logged(struct s2s_client *c, const struct timespec *ts, int64_t start,
	    int64_t *next_log, const char *what)
{
	struct timespec now;
	int64_t t = client__now_ms();

	if (t >= *next_log) {
		client__log(c, S2S_LOG_INFO, "waiting for %s (%lld s)", what,
			    (long long)((t - start) / 1000));
		*next_log = t + 5000;
		pthread_mutex_unlock(&c->lock);
		client__flush_notes(c);
		pthread_mutex_lock(&c->lock);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec > ts->tv_sec ||
	    (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec))
		return false;
	{
		struct timespec slice;
		int64_t left = *next_log - client__now_ms();

		deadline_after(&slice, left > 0 ? (int)left : 1);
		if (slice.tv_sec > ts->tv_sec ||
		    (slice.tv_sec == ts->tv_sec && slice.tv_nsec > ts->tv_nsec))
			slice = *ts;
		if (c->stopping)
			return false;
		pthread_cond_timedwait(&c->cond, &c->lock, &slice);
		return !c->stopping;
	}
}

/* Lock held: let the queued network calls go out, then take it again. */
static void
relock_flushed(struct s2s_client *c)
{
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
	pthread_mutex_lock(&c->lock);
}

/* ---- Phase 1 ---------------------------------------------------------------- */

static enum s2s_err
read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f)
		return S2S_ERR_IO;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) || n > 16L * 1024 * 1024) {
		fclose(f);
		return S2S_ERR_IO;
	}
	*out = malloc(n ? (size_t)n : 1);
	if (!*out) {
		fclose(f);
		return S2S_ERR_NOMEM;
	}
	if (fread(*out, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(*out);
		return S2S_ERR_IO;
	}
	fclose(f);
	*len = (size_t)n;
	return S2S_OK;
}

S2S_EXPORT enum s2s_err
s2s_client_register(struct s2s_client *c, int timeout_ms)
{
	struct s2s_msg m;
	struct request *r;
	struct timespec ts;
	uint8_t *hs = NULL;
	size_t hs_len = 0;
	uint64_t id;
	enum s2s_err e;
	bool was_anon;

	if (timeout_ms != 0 &&
	    client__in_callback(c, "s2s_client_register"))
		return S2S_ERR_STATE;
	timeout_ms = pick_timeout(timeout_ms, c->cfg.timeout_register);
	if (!c->cfg.signature_file) {
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "no \"signature\" image in the configuration");
		return S2S_ERR_CONFIG;
	}
	e = read_file(c->cfg.signature_file, &hs, &hs_len);
	if (e) {
		pthread_mutex_lock(&c->lock);
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "signature: cannot read %s: %s",
			 c->cfg.signature_file, strerror(errno));
		pthread_mutex_unlock(&c->lock);
		return e;
	}
	{
		/* Refuse here what the CS would refuse after the upload. */
		struct s2s_image img;
		enum s2s_err ie = s2s_image_decode(hs, hs_len, NULL, &img);

		if (ie) {
			pthread_mutex_lock(&c->lock);
			snprintf(c->last_reason, sizeof(c->last_reason),
				 "signature: %s is not a PNG or PGM image "
				 "(%s)", c->cfg.signature_file,
				 s2s_strerror(ie));
			pthread_mutex_unlock(&c->lock);
			free(hs);
			return S2S_ERR_IMAGE;
		}
		s2s_image_free(&img);
	}
	e = ensure_connected(c);
	if (e)
		goto out;
	was_anon = !c->use_token;

	id = client__new_req_id();
	s2s_msg_init(&m, S2S_MSG_REGISTER, id);
	s2s_key_public(c->key, m.pub);
	snprintf(m.id, sizeof(m.id), "%s", c->cfg.id);
	if (c->cfg.enrolment_code && c->cfg.enrolment_code[0]) {
		m.code_bytes = (const uint8_t *)c->cfg.enrolment_code;
		m.code_len = strlen(c->cfg.enrolment_code);
	}
	m.hs = hs;
	m.hs_len = hs_len;

	pthread_mutex_lock(&c->lock);
	r = client__req_add(c, id, S2S_MSG_REGISTERED);
	if (!r) {
		pthread_mutex_unlock(&c->lock);
		e = S2S_ERR_STATE;
		goto out;
	}
	e = client__send_ctl(c, c->topic_register, &m);
	m.hs = NULL;
	m.code_bytes = NULL;
	s2s_msg_clear(&m);
	if (e) {
		req_done(r);
		pthread_mutex_unlock(&c->lock);
		goto out;
	}
	relock_flushed(c);
	deadline_after(&ts, timeout_ms);
	while (timeout_ms && !r->done && wait_until(c, &ts))
		;
	e = r->done ? r->err : S2S_ERR_TIMEOUT;
	req_done(r);
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);

	if (!e && was_anon) {
		/* Registered: from now on, connect with a token.  The
		 * anonymous connection stays until the token one is up (see
		 * s2s_transport_reconnect: milliseconds instead of Paho's
		 * 1 s poll); if that cannot be done, close and connect. */
		int to = pick_timeout(-1, c->cfg.timeout_connect);

		c->use_token = true;
		e = s2s_transport_reconnect(c->tr, c->topic_inbox, to);
		if (!e) {
			e = s2s_transport_subscribe(c->tr, c->topic_inbox, to);
		} else {
			s2s_client_close(c, 1000);
			e = s2s_client_connect(c, -1);
		}
	}
out:
	free(hs);
	return e;
}

S2S_EXPORT enum s2s_err
s2s_client_set_enrolment_code(struct s2s_client *c, const char *code)
{
	char *dup = code ? strdup(code) : NULL;

	if (code && !dup)
		return S2S_ERR_NOMEM;
	pthread_mutex_lock(&c->lock);
	if (c->cfg.enrolment_code) {
		s2s_memzero(c->cfg.enrolment_code,
			    strlen(c->cfg.enrolment_code));
		free(c->cfg.enrolment_code);
	}
	c->cfg.enrolment_code = dup;
	pthread_mutex_unlock(&c->lock);
	return S2S_OK;
}

S2S_EXPORT bool
s2s_client_registered(const struct s2s_client *c)
{
	return c->registered;
}

/*
 * Wait up to a second (less if the deadline ts comes first), c->lock held;
 * false when the deadline passed or the client is stopping.
 */
static bool
retry_pause(struct s2s_client *c, const struct timespec *ts)
{
	struct timespec slice, now;

	deadline_after(&slice, 1000);
	if (slice.tv_sec > ts->tv_sec ||
	    (slice.tv_sec == ts->tv_sec && slice.tv_nsec > ts->tv_nsec))
		slice = *ts;
	while (!c->stopping &&
	       pthread_cond_timedwait(&c->cond, &c->lock, &slice) == 0)
		;
	clock_gettime(CLOCK_REALTIME, &now);
	return !c->stopping &&
	       (now.tv_sec < ts->tv_sec ||
		(now.tv_sec == ts->tv_sec && now.tv_nsec < ts->tv_nsec));
}

S2S_EXPORT enum s2s_err
s2s_client_pair(struct s2s_client *c, const char *peer, int profile,
		int timeout_ms)
{
	struct pair *p;
	struct timespec ts;
	enum s2s_err e;
	char what[S2S_MSG_REASON_MAX + 1];
	int64_t start = client__now_ms(), next_log = start + 2000;

	if (timeout_ms != 0 && client__in_callback(c, "s2s_client_pair"))
		return S2S_ERR_STATE;
	if (check_peer(c, peer))
		return S2S_ERR_INVAL;
	if (profile < 0 || profile > 2)
		return S2S_ERR_PROFILE;
	if (!profile)
		profile = c->cfg.profile;
	if (timeout_ms < 0)
		timeout_ms = c->cfg.timeout_pair;
	e = ensure_connected(c);
	if (e)
		return e;
	pthread_mutex_lock(&c->lock);
	p = client__add_pair(c, peer);
	if (!p) {
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_NOMEM;
	}
	e = control__pair_request(c, p, profile);
	if (e || !timeout_ms) {
		e = e ? e : p->st.status == S2S_PAIR_DONE ? S2S_OK
							   : S2S_ERR_TIMEOUT;
		pthread_mutex_unlock(&c->lock);
		client__flush_notes(c);
		return e;
	}
	relock_flushed(c);
	deadline_after(&ts, timeout_ms);
	snprintf(what, sizeof(what), "%s to pair with %s (%s must run "
		 "`s2s pair %s` or pair from its application)", peer,
		 c->cfg.id, peer, c->cfg.id);
	while (p->st.status != S2S_PAIR_DONE &&
	       wait_logged(c, &ts, start, &next_log, what)) {
		if (p->pair_req != 0)
			continue;
		/* Rejected.  A peer that has not registered yet may do so
		 * while we wait: ask again every second until the timeout. */
		if (p->pair_err != S2S_ERR_NOT_FOUND)
			break;
		snprintf(what, sizeof(what), "%s to register with the CS "
			 "(then to pair with %s)", peer, c->cfg.id);
		if (!retry_pause(c, &ts))
			break;
		if (control__pair_request(c, p, profile) != S2S_OK)
			break;
	}
	if (p->st.status == S2S_PAIR_DONE)
		e = S2S_OK;
	else if (p->pair_req == 0)
		e = S2S_ERR_REJECTED;
	else {
		e = S2S_ERR_TIMEOUT;
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "%s has not asked to pair with %s yet (the request "
			 "stays: it completes when %s asks)", peer, c->cfg.id,
			 peer);
	}
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
	return e;
}

S2S_EXPORT bool
s2s_client_paired(const struct s2s_client *c, const char *peer)
{
	struct s2s_client *m = (struct s2s_client *)c;
	struct pair *p;
	bool r;

	pthread_mutex_lock(&m->lock);
	p = client__find_pair(m, peer);
	r = p && p->st.status == S2S_PAIR_DONE;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- Phase 2 ---------------------------------------------------------------- */

S2S_EXPORT enum s2s_err
s2s_client_session(struct s2s_client *c, const char *peer, int timeout_ms)
{
	struct pair *p;
	struct timespec ts;
	enum s2s_err e;
	char what[S2S_MSG_REASON_MAX + 1];
	int64_t start = client__now_ms(), next_log = start + 2000;

	if (timeout_ms != 0 && client__in_callback(c, "s2s_client_session"))
		return S2S_ERR_STATE;
	if (check_peer(c, peer))
		return S2S_ERR_INVAL;
	timeout_ms = pick_timeout(timeout_ms, c->cfg.timeout_session);
	e = ensure_connected(c);
	if (e)
		return e;
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (!p || p->st.status != S2S_PAIR_DONE) {
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "%s is not paired with %s%s", c->cfg.id, peer,
			 p ? " yet (waiting for the peer to pair)"
			   : " (pair first: `s2s pair`)");
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_STATE;
	}
	e = control__session_request(c, p);
	if (e) {
		pthread_mutex_unlock(&c->lock);
		return e;
	}
	relock_flushed(c);
	if (!timeout_ms) {
		/* Negotiating on; S2S_EVENT_SESSION_UP tells the end. */
		e = p->neg_result == 1 ? S2S_ERR_TIMEOUT : p->neg_result;
		pthread_mutex_unlock(&c->lock);
		client__flush_notes(c);
		return e;
	}
	deadline_after(&ts, timeout_ms);
	snprintf(what, sizeof(what), "%s to come online and answer the "
		 "session request", peer);
	while (p->neg_result == 1 &&
	       wait_logged(c, &ts, start, &next_log, what))
		;
	if (p->neg_result == 1) {
		snprintf(c->last_reason, sizeof(c->last_reason),
			 "%s did not answer in %d s: is a device process of %s "
			 "running (and paired with %s)?", peer,
			 timeout_ms / 1000, peer, c->cfg.id);
		/* Give up: a late step 1 or 5 is ignored from now on. */
		p->neg = NEG_NONE;
		p->neg_result = S2S_ERR_TIMEOUT;
		s2s_memzero(p->neg_skcs, sizeof(p->neg_skcs));
		s2s_memzero(p->neg_sk, sizeof(p->neg_sk));
	}
	e = p->neg_result;
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
	return e;
}

S2S_EXPORT enum s2s_err
s2s_client_wait_session(struct s2s_client *c, const char *peer,
			int timeout_ms)
{
	struct pair *p;
	struct timespec ts;
	bool up;

	if (timeout_ms != 0 &&
	    client__in_callback(c, "s2s_client_wait_session"))
		return S2S_ERR_STATE;
	deadline_after(&ts, timeout_ms > 0 ? timeout_ms : 0);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		p = client__find_pair(c, peer);
		up = p && p->st.established && p->neg == NEG_NONE;
		if (up || c->stopping)
			break;
		if (timeout_ms < 0)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (!wait_until(c, &ts))
			break;
	}
	p = client__find_pair(c, peer);
	up = p && p->st.established && p->neg == NEG_NONE;
	pthread_mutex_unlock(&c->lock);
	return up ? S2S_OK : S2S_ERR_TIMEOUT;
}

S2S_EXPORT bool
s2s_client_has_session(const struct s2s_client *c, const char *peer,
		       uint64_t *session)
{
	struct s2s_client *m = (struct s2s_client *)c;
	struct pair *p;
	bool r;

	pthread_mutex_lock(&m->lock);
	p = client__find_pair(m, peer);
	r = p && p->st.established;
	if (r && session)
		*session = p->st.session;
	pthread_mutex_unlock(&m->lock);
	return r;
}

S2S_EXPORT enum s2s_err
s2s_client_ensure_session(struct s2s_client *c, const char *peer,
			  int timeout_ms)
{
	enum s2s_err e;

	if (client__in_callback(c, "s2s_client_ensure_session"))
		return S2S_ERR_STATE;
	if (check_peer(c, peer))
		return S2S_ERR_INVAL;
	if (s2s_client_has_session(c, peer, NULL))
		return S2S_OK;
	e = ensure_connected(c);
	if (e)
		return e;
	if (!c->use_token) {
		e = s2s_client_register(c, -1);
		if (e)
			return e;
	}
	if (!s2s_client_paired(c, peer)) {
		e = s2s_client_pair(c, peer, 0, timeout_ms);
		if (e)
			return e;
	}
	/* The peer may have started one meanwhile. */
	if (s2s_client_wait_session(c, peer, 0) == S2S_OK)
		return S2S_OK;
	return s2s_client_session(c, peer, timeout_ms);
}

S2S_EXPORT enum s2s_err
s2s_client_end_session(struct s2s_client *c, const char *peer)
{
	struct s2s_msg m;
	enum s2s_err e;

	if (!peer || !s2s_id_valid(peer))
		return S2S_ERR_INVAL;
	s2s_msg_init(&m, S2S_MSG_END, client__new_req_id());
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	pthread_mutex_lock(&c->lock);
	e = client__send_ctl(c, c->topic_req, &m);
	pthread_mutex_unlock(&c->lock);
	s2s_msg_clear(&m);
	client__flush_notes(c);
	return e;
}

/* ---- Phase 3 helpers ------------------------------------------------------- */

S2S_EXPORT enum s2s_err
s2s_client_flush(struct s2s_client *c, int timeout_ms)
{
	int64_t end = timeout_ms < 0 ? INT64_MAX
				     : client__now_ms() + timeout_ms;
	struct timespec ts = { 0, 5 * 1000000L };

	if (timeout_ms != 0 && client__in_callback(c, "s2s_client_flush"))
		return S2S_ERR_STATE;
	while (s2s_transport_pending(c->tr)) {
		if (client__now_ms() >= end)
			return S2S_ERR_TIMEOUT;
		nanosleep(&ts, NULL);
	}
	return S2S_OK;
}

S2S_EXPORT enum s2s_err
s2s_client_receive(struct s2s_client *c, int timeout_ms,
		   struct s2s_received **out)
{
	struct timespec ts;
	struct queued *q;
	bool want;

	*out = NULL;
	if (timeout_ms != 0 && client__in_callback(c, "s2s_client_receive"))
		return S2S_ERR_STATE;
	pthread_mutex_lock(&c->lock);
	want = c->want_connected || c->rq_head;
	if (c->denied && !c->rq_head) {
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_DENIED;
	}
	pthread_mutex_unlock(&c->lock);
	if (!want) {
		/* Never connected (or closed): connect, as promised. */
		enum s2s_err e = s2s_client_connect(c, -1);

		if (e)
			return e;
	}
	deadline_after(&ts, timeout_ms > 0 ? timeout_ms : 0);
	pthread_mutex_lock(&c->lock);
	while (!c->rq_head) {
		if (timeout_ms < 0)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (!wait_until(c, &ts))
			break;
	}
	q = c->rq_head;
	if (q) {
		c->rq_head = q->next;
		if (!c->rq_head)
			c->rq_tail = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (!q)
		return S2S_ERR_TIMEOUT;
	*out = q->r;
	free(q);
	return S2S_OK;
}

S2S_EXPORT void
s2s_received_free(struct s2s_received *r)
{
	if (!r)
		return;
	if (r->msg) {
		s2s_memzero(r->msg, r->len);
		free(r->msg);
	}
	free(r);
}

S2S_EXPORT enum s2s_err
s2s_client_fetch(struct s2s_client *c, const char *peer, uint64_t from_seq,
		 uint64_t to_seq, int timeout_ms, unsigned *delivered)
{
	struct pair *p;
	struct request *r;
	struct timespec ts;
	enum s2s_err e;

	if (timeout_ms != 0 && client__in_callback(c, "s2s_client_fetch"))
		return S2S_ERR_STATE;
	if (delivered)
		*delivered = 0;
	if (!peer || !from_seq)
		return S2S_ERR_INVAL;
	if (!to_seq)
		to_seq = from_seq + S2S_MSG_FETCH_MAX - 1;
	if (to_seq < from_seq)
		return S2S_ERR_INVAL;
	timeout_ms = pick_timeout(timeout_ms, c->cfg.timeout_fetch);
	e = ensure_connected(c);
	if (e)
		return e;
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (!p || !p->st.established) {
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_SESSION;
	}
	e = control__fetch(c, p, from_seq, to_seq, true);
	if (e) {
		pthread_mutex_unlock(&c->lock);
		return e;
	}
	r = client__req_add(c, p->fetch_req, S2S_MSG_FETCHED);
	if (!r) {
		pthread_mutex_unlock(&c->lock);
		client__flush_notes(c);
		return S2S_ERR_STATE;
	}
	relock_flushed(c);
	deadline_after(&ts, timeout_ms);
	while (timeout_ms && !r->done && wait_until(c, &ts))
		;
	e = r->done ? r->err : S2S_ERR_TIMEOUT;
	if (delivered)
		*delivered = r->delivered;
	req_done(r);
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
	return e;
}

S2S_EXPORT enum s2s_err
s2s_client_seq(const struct s2s_client *c, const char *peer,
	       uint64_t *send_next, uint64_t *recv_next)
{
	struct s2s_client *m = (struct s2s_client *)c;
	struct pair *p;
	enum s2s_err e = S2S_ERR_SESSION;

	pthread_mutex_lock(&m->lock);
	p = client__find_pair(m, peer);
	if (p && p->st.established) {
		if (send_next)
			*send_next = p->st.tx.next_seq;
		if (recv_next)
			*recv_next = p->st.rx.next_seq;
		e = S2S_OK;
	}
	pthread_mutex_unlock(&m->lock);
	return e;
}

S2S_EXPORT void
s2s_client_last_reason(const struct s2s_client *c, char *buf, size_t len)
{
	struct s2s_client *m = (struct s2s_client *)c;

	if (!len)
		return;
	pthread_mutex_lock(&m->lock);
	snprintf(buf, len, "%s", m->last_reason);
	pthread_mutex_unlock(&m->lock);
}
