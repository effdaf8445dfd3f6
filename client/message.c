/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * message.c - phase 3 on the device: seal and send; receive, dedupe by
 * sequence number, verify on the receiving chain, recover gaps from the CS
 * store and replay the ratchet in order.
 *
 * Receiving rules, for a package on ROOT/pair/<pair>/<peer>:
 *   - it must parse, name peer as sender (= the topic) and this device as
 *     receiver, belong to a complete pair and to the current session;
 *   - seq below the chain's next_seq: a duplicate (QoS 1 redelivery or a
 *     replay), refused;
 *   - seq above it: kept aside (at most STASH_MAX) and the missing range
 *     is fetched from the CS; the fetched packages are verified in order,
 *     then the kept ones.  A gap the CS cannot fill is unrecoverable: the
 *     kept packages are refused (S2S_ERR_GAP) and a new session is
 *     negotiated;
 *   - seq equal: verified on a copy of the chain, which replaces the chain
 *     only if the tag is right, so a refused package leaves it untouched.
 * Every refusal goes to the reject callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_private.h"
#include "s2s/package.h"
#include "s2s/secmem.h"

static uint32_t
elapsed_us(const struct timespec *a)
{
	struct timespec b;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &b);
	us = (int64_t)(b.tv_sec - a->tv_sec) * 1000000 +
	     (b.tv_nsec - a->tv_nsec) / 1000;
	return us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* ---- Stash ------------------------------------------------------------------- */

static void
stashed_free(struct stashed *s)
{
	free(s->buf);
	free(s);
}

/* Insert sorted by seq; a second copy of a seq is dropped.  false if full. */
static bool
stash_put(struct stashed **head, unsigned *n, unsigned max, uint64_t session,
	  uint64_t seq, const uint8_t *buf, size_t len, bool fetched)
{
	struct stashed **pp = head, *s;

	while (*pp && (*pp)->seq < seq)
		pp = &(*pp)->next;
	if (*pp && (*pp)->seq == seq && (*pp)->session == session)
		return true;
	if (*n >= max)
		return false;
	s = calloc(1, sizeof(*s));
	if (!s)
		return false;
	s->buf = malloc(len ? len : 1);
	if (!s->buf) {
		free(s);
		return false;
	}
	memcpy(s->buf, buf, len);
	s->len = len;
	s->session = session;
	s->seq = seq;
	s->fetched = fetched;
	s->next = *pp;
	*pp = s;
	(*n)++;
	return true;
}

void
message__clear_stash(struct pair *p, bool future_too)
{
	while (p->stash) {
		struct stashed *s = p->stash;

		p->stash = s->next;
		stashed_free(s);
	}
	p->nstash = 0;
	if (!future_too)
		return;
	while (p->future) {
		struct stashed *s = p->future;

		p->future = s->next;
		stashed_free(s);
	}
	p->nfuture = 0;
}

/* ---- Receive ------------------------------------------------------------------ */

static void
deliver(struct s2s_client *c, struct pair *p, const struct s2s_package *pk,
	bool fetched, uint32_t us)
{
	struct s2s_message_info info;

	memset(&info, 0, sizeof(info));
	info.session = pk->session;
	info.seq = pk->seq;
	info.profile = pk->profile;
	info.fetched = fetched;
	info.verify_us = us;
	if (c->on_message) {
		struct note *n = calloc(1, sizeof(*n));

		if (!n)
			return;
		n->kind = NOTE_MESSAGE;
		n->info = info;
		snprintf(n->peer, sizeof(n->peer), "%s", p->st.peer);
		n->msg = malloc(pk->msg_len ? pk->msg_len : 1);
		if (!n->msg) {
			free(n);
			return;
		}
		memcpy(n->msg, pk->msg, pk->msg_len);
		n->len = pk->msg_len;
		if (c->notes_tail)
			c->notes_tail->next = n;
		else
			c->notes = n;
		c->notes_tail = n;
	} else {
		struct queued *q = calloc(1, sizeof(*q));
		struct s2s_received *r = calloc(1, sizeof(*r));

		if (!q || !r || !(r->msg = malloc(pk->msg_len ? pk->msg_len
							      : 1))) {
			free(q);
			free(r);
			return;
		}
		memcpy(r->msg, pk->msg, pk->msg_len);
		r->len = pk->msg_len;
		r->info = info;
		snprintf(r->sender_buf, sizeof(r->sender_buf), "%s",
			 p->st.peer);
		r->info.sender = r->sender_buf;
		r->info.receiver = c->cfg.id;
		q->r = r;
		if (c->rq_tail)
			c->rq_tail->next = q;
		else
			c->rq_head = q;
		c->rq_tail = q;
		pthread_cond_broadcast(&c->cond);
	}
}

/* Verify pk (seq == next_seq) on a copy of the chain; commit on success. */
static enum s2s_err
open_one(struct s2s_client *c, struct pair *p, const struct s2s_package *pk,
	 bool fetched)
{
	struct s2s_chain tmp = p->st.rx;
	struct timespec t0;
	enum s2s_err e;
	uint32_t us;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	e = s2s_package_open_cached(&tmp, &p->rx_cache, pk, NULL, NULL);
	us = elapsed_us(&t0);
	if (e) {
		char why[128];

		snprintf(why, sizeof(why), "package %llu refused: %s",
			 (unsigned long long)pk->seq, s2s_strerror(e));
		client__note_reject(c, p->st.peer, pk->session, pk->seq, e,
				    false, why);
		S2S_WIPE(tmp);
		return e;
	}
	p->st.rx = tmp;
	S2S_WIPE(tmp);
	/* A receive chain may reach the disk a little later (client.c). */
	client__persist_soon(c);
	deliver(c, p, pk, fetched, us);
	return S2S_OK;
}

static void request_gap(struct s2s_client *c, struct pair *p);

/* Run the kept packages whose turn has come. */
static void
drain(struct s2s_client *c, struct pair *p)
{
	while (p->stash && p->stash->seq <= p->st.rx.next_seq) {
		struct stashed *s = p->stash;
		struct s2s_package pk;

		p->stash = s->next;
		p->nstash--;
		if (s->seq == p->st.rx.next_seq &&
		    s->session == p->st.session &&
		    !s2s_package_parse(s->buf, s->len, NULL, &pk))
			open_one(c, p, &pk, s->fetched);
		stashed_free(s);
	}
	request_gap(c, p);
}

/* A gap before the first kept package: fetch it (one request at a time). */
static void
request_gap(struct s2s_client *c, struct pair *p)
{
	if (!p->stash || p->fetch_req || !p->st.established)
		return;
	if (p->stash->seq > p->st.rx.next_seq)
		control__fetch(c, p, p->st.rx.next_seq, p->stash->seq - 1,
			       false);
}

/* The gap cannot be filled: refuse what was kept, negotiate anew. */
static void
gap_unrecoverable(struct s2s_client *c, struct pair *p)
{
	while (p->stash) {
		struct stashed *s = p->stash;
		char why[128];

		snprintf(why, sizeof(why),
			 "package %llu: packages before it are lost and the "
			 "CS does not have them", (unsigned long long)s->seq);
		client__note_reject(c, p->st.peer, s->session, s->seq,
				    S2S_ERR_GAP, false, why);
		p->stash = s->next;
		stashed_free(s);
	}
	p->nstash = 0;
	p->need_recover = true;
	p->recover_after = 0;
	if (p->st.established)
		p->broken_session = p->st.session;
	pthread_cond_broadcast(&c->cond);
}

static bool
same_id(const char *a, size_t alen, const char *b)
{
	return strlen(b) == alen && !memcmp(a, b, alen);
}

static enum s2s_err
receive_locked(struct s2s_client *c, const char *peer, const uint8_t *buf,
	       size_t len, enum origin from)
{
	struct s2s_package pk;
	struct pair *p;
	enum s2s_err e;
	char why[192];

	e = s2s_package_parse(buf, len, NULL, &pk);
	if (e) {
		if (from != FROM_FETCH)
			client__note_reject(c, peer, 0, 0, e, false,
					    "malformed package");
		return e;
	}
	if (!same_id(pk.sender, pk.sender_len, peer) ||
	    !same_id(pk.receiver, pk.receiver_len, c->cfg.id)) {
		if (from != FROM_FETCH)
			client__note_reject(c, peer, pk.session, pk.seq,
					    S2S_ERR_INCONSISTENT, false,
					    "sender or receiver does not match "
					    "the topic");
		return S2S_ERR_INCONSISTENT;
	}
	p = client__find_pair(c, peer);
	if (!p || p->st.status != S2S_PAIR_DONE) {
		snprintf(why, sizeof(why), "not paired with %s", peer);
		client__note_reject(c, peer, pk.session, pk.seq,
				    S2S_ERR_SESSION, false, why);
		if (from == FROM_NET && (p = client__add_pair(c, peer)) &&
		    !p->need_recover && client__now_ms() >= p->recover_after) {
			p->need_recover = true;
			pthread_cond_broadcast(&c->cond);
		}
		return S2S_ERR_SESSION;
	}
	if (!p->st.established || pk.session != p->st.session) {
		if (from != FROM_INJECT && p->neg != NEG_NONE &&
		    p->neg_T == pk.session) {
			/* Its session is being negotiated: keep it. */
			stash_put(&p->future, &p->nfuture, FUTURE_MAX,
				  pk.session, pk.seq, buf, len,
				  from == FROM_FETCH);
			return S2S_OK;
		}
		if (from == FROM_FETCH)
			return S2S_ERR_SESSION;
		snprintf(why, sizeof(why), "package %llu of %s session",
			 (unsigned long long)pk.seq,
			 p->st.established ? "another" : "an unknown");
		client__note_reject(c, peer, pk.session, pk.seq,
				    S2S_ERR_SESSION, false, why);
		if (from == FROM_NET && !p->st.established &&
		    p->neg == NEG_NONE && !p->need_recover &&
		    client__now_ms() >= p->recover_after) {
			/* We lost the session the peer still uses. */
			p->need_recover = true;
			pthread_cond_broadcast(&c->cond);
		}
		return S2S_ERR_SESSION;
	}
	if (pk.seq < p->st.rx.next_seq) {
		if (from == FROM_FETCH)
			return S2S_ERR_REPLAY;
		snprintf(why, sizeof(why),
			 "package %llu is a duplicate (next expected %llu)",
			 (unsigned long long)pk.seq,
			 (unsigned long long)p->st.rx.next_seq);
		client__note_reject(c, peer, pk.session, pk.seq,
				    S2S_ERR_REPLAY, false, why);
		return S2S_ERR_REPLAY;
	}
	if (pk.seq > p->st.rx.next_seq) {
		if (from == FROM_INJECT) {
			client__note_reject(c, peer, pk.session, pk.seq,
					    S2S_ERR_GAP, false,
					    "ahead of the chain");
			return S2S_ERR_GAP;
		}
		if (!stash_put(&p->stash, &p->nstash, STASH_MAX, pk.session,
			       pk.seq, buf, len, from == FROM_FETCH)) {
			client__note_reject(c, peer, pk.session, pk.seq,
					    S2S_ERR_TOO_BIG, false,
					    "too many packages out of order");
			return S2S_ERR_TOO_BIG;
		}
		request_gap(c, p);
		return S2S_ERR_GAP;
	}
	e = open_one(c, p, &pk, from == FROM_FETCH);
	if (!e)
		drain(c, p);
	return e;
}

enum s2s_err
message__receive(struct s2s_client *c, const char *peer, const uint8_t *buf,
		 size_t len, enum origin from)
{
	enum s2s_err e;

	pthread_mutex_lock(&c->lock);
	e = receive_locked(c, peer, buf, len, from);
	pthread_mutex_unlock(&c->lock);
	return e;
}

unsigned
message__fetched(struct s2s_client *c, struct pair *p,
		 const struct s2s_msg *m)
{
	uint64_t before = p->st.rx.next_seq;
	bool catchup = p->fetch_catchup;
	const uint8_t *pkg;
	size_t off = 0, plen;

	p->fetch_req = 0;
	if (p->st.established &&
	    (!m->session || m->session == p->st.session)) {
		while (!s2s_msg_fetched_next(m, &off, &pkg, &plen))
			receive_locked(c, p->st.peer, pkg, plen, FROM_FETCH);
	}
	drain(c, p);
	if (p->stash && !p->fetch_req && p->stash->seq > p->st.rx.next_seq) {
		/* Still a hole: try again only if this answer helped. */
		if (p->st.rx.next_seq > before)
			request_gap(c, p);
		else if (!catchup || m->count == 0)
			gap_unrecoverable(c, p);
	} else if (catchup && !p->stash && !p->fetch_req && m->count > 0 &&
		   p->st.rx.next_seq > before && p->st.established) {
		/* The CS paces its replies (a byte budget each): catching up
		 * goes on until an answer brings nothing new. */
		(void)control__fetch(c, p, p->st.rx.next_seq,
				     p->st.rx.next_seq + S2S_MSG_FETCH_MAX - 1,
				     true);
	}
	return (unsigned)(p->st.rx.next_seq - before);
}

void
message__session_up(struct s2s_client *c, struct pair *p)
{
	struct stashed *list = p->future;

	p->future = NULL;
	p->nfuture = 0;
	while (list) {
		struct stashed *s = list;

		list = s->next;
		if (s->session == p->st.session)
			receive_locked(c, p->st.peer, s->buf, s->len,
				       s->fetched ? FROM_FETCH : FROM_NET);
		stashed_free(s);
	}
}

void
message__tick(struct s2s_client *c)
{
	int64_t now = client__now_ms();

	for (size_t i = 0; i < c->npairs; i++) {
		struct pair *p = c->pairs[i];

		if (p->fetch_req &&
		    now - p->fetch_sent > c->cfg.timeout_fetch) {
			bool catchup = p->fetch_catchup;

			p->fetch_req = 0;
			if (!catchup && p->stash)
				gap_unrecoverable(c, p);
			else
				request_gap(c, p);
		}
		if (p->neg == NEG_WAIT_FWD &&
		    now - p->neg_started > c->cfg.timeout_session) {
			p->neg = NEG_NONE;
			p->neg_result = S2S_ERR_TIMEOUT;
			s2s_memzero(p->neg_skcs, sizeof(p->neg_skcs));
			s2s_memzero(p->neg_sk, sizeof(p->neg_sk));
		}
		if (p->neg == NEG_NONE && p->future) {
			struct stashed *s;

			while ((s = p->future)) {
				p->future = s->next;
				stashed_free(s);
			}
			p->nfuture = 0;
		}
	}
}

/* ---- Send -------------------------------------------------------------------- */

static struct sending *
sending_take(struct s2s_client *c, uint64_t tag)
{
	for (struct sending **pp = &c->sendings; *pp; pp = &(*pp)->next) {
		if ((*pp)->tag == tag) {
			struct sending *s = *pp;

			*pp = s->next;
			s->next = NULL;
			return s;
		}
	}
	return NULL;
}

static struct sending *
sending_add(struct s2s_client *c, const char *peer, uint64_t session,
	    uint64_t seq, bool raw, bool waited)
{
	struct sending *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->tag = ++c->next_tag;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->session = session;
	s->seq = seq;
	s->raw = raw;
	s->waited = waited;
	s->next = c->sendings;
	c->sendings = s;
	return s;
}

void
message__published(struct s2s_client *c, uint64_t tag, enum s2s_err rc,
		   int reason)
{
	struct sending *s;

	pthread_mutex_lock(&c->lock);
	s = sending_take(c, tag);
	if (!s) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (!s->raw)
		client__note_sent(c, s->peer, s->session, s->seq, rc, reason);
	if (rc) {
		char why[128];

		snprintf(why, sizeof(why),
			 "package %llu refused by the CS (MQTT reason 0x%02x)",
			 (unsigned long long)s->seq, (unsigned)reason);
		client__note_reject(c, s->peer, s->session, s->seq,
				    S2S_ERR_REJECTED, true, why);
		if (!s->raw && rc == S2S_ERR_REJECTED) {
			/* The CS's chain and ours disagree: start over. */
			struct pair *p = client__find_pair(c, s->peer);

			if (p && p->st.established &&
			    p->st.session == s->session) {
				p->need_recover = true;
				p->recover_after = 0;
				p->broken_session = s->session;
				pthread_cond_broadcast(&c->cond);
			}
		}
	}
	if (s->waited) {
		s->done = true;
		s->rc = rc;
		/* Back on the list for the waiter to find and free. */
		s->next = c->sendings;
		c->sendings = s;
		pthread_cond_broadcast(&c->cond);
	} else {
		free(s);
	}
	pthread_mutex_unlock(&c->lock);
}

/* Lock held: wait for s to be answered, then free it. */
static enum s2s_err
wait_sending(struct s2s_client *c, struct sending *s, int timeout_ms)
{
	struct timespec ts;
	enum s2s_err e;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!s->done)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts))
			break;
	if (!s->done) {
		s->waited = false;  /* the answer frees it later */
		return S2S_ERR_TIMEOUT;
	}
	e = (enum s2s_err)s->rc;
	sending_take(c, s->tag);
	free(s);
	return e;
}

/*
 * c->lock and c->send_lock held: publish p->resend (same session only)
 * and wait for the answer.  Accepted: the new broker stored it; refused:
 * the dead broker had stored it (a replay now) -- either way the chain in
 * the store goes on from it.  Sent as "raw": a refusal here does not
 * mark the session broken.  Returns with c->lock held (p may have
 * changed: look it up again).
 */
static void
resend_pending(struct s2s_client *c, struct pair *p, const char *peer,
	       char *topic, size_t topic_len)
{
	uint8_t *rp = p->resend;
	size_t rl = p->resend_len;
	struct sending *rs = NULL;
	enum s2s_err e;

	p->resend = NULL;
	if (p->resend_session == p->st.session) {
		rs = sending_add(c, peer, p->resend_session, p->resend_seq,
				 true, true);
		client__pair_topic(c, p, c->cfg.id, topic, topic_len);
	}
	if (!rs) {
		free(rp);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	e = s2s_transport_publish(c->tr, topic, rp, rl, rs->tag);
	pthread_mutex_lock(&c->lock);
	if (e)
		free(sending_take(c, rs->tag));
	else
		(void)wait_sending(c, rs, c->cfg.timeout_fetch);
	free(rp);
}

S2S_EXPORT enum s2s_err
s2s_client_send(struct s2s_client *c, const char *peer, const uint8_t *msg,
		size_t len, unsigned flags, struct s2s_sent_info *info)
{
	struct s2s_chain ch, old;
	struct s2s_package_cache *cache;
	struct pair *p;
	struct sending *s;
	struct timespec t0;
	uint8_t *pkg = NULL;
	size_t pkg_len = 0;
	char topic[TOPIC_MAX];
	uint64_t session;
	size_t idx;
	uint32_t us;
	enum s2s_err e;

	if (info)
		memset(info, 0, sizeof(*info));
	if (!peer || (!msg && len))
		return S2S_ERR_INVAL;
	if ((flags & S2S_SEND_WAIT_ACK) &&
	    client__in_callback(c, "s2s_client_send(S2S_SEND_WAIT_ACK)"))
		return S2S_ERR_STATE;
	if (!c->ever_connected) {
		e = s2s_client_connect(c, -1);
		if (e)
			return e;
	}
	for (int tries = 0;; tries++) {
		bool ready = true;

		/*
		 * A responder's session is up as soon as its step 4 is
		 * queued: let that go out first, or the CS, which does not
		 * have the session yet, refuses the package (and then all
		 * the following ones).  Wait without send_lock: a callback
		 * of ours that sends may be ahead of the step in the queue.
		 */
		pthread_mutex_lock(&c->lock);
		p = client__find_pair(c, peer);
		if (p && p->st.established)
			ready = client__wait_ctl_sent(c, p->send_after,
						      c->cfg.timeout_session);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_lock(&c->send_lock);
		pthread_mutex_lock(&c->lock);
		p = client__find_pair(c, peer);
		if (!p || !p->st.established) {
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_unlock(&c->send_lock);
			return S2S_ERR_SESSION;
		}
		/* A new session meanwhile: wait for it too (a timeout
		 * sends anyway, as it would have before). */
		if (!ready || tries >= 3 ||
		    !client__ctl_pending(c, p->send_after))
			break;
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&c->send_lock);
	}
	if (p->resend) {
		/* The package the last broker died with goes first. */
		resend_pending(c, p, peer, topic, sizeof(topic));
		p = client__find_pair(c, peer);
		if (!p || !p->st.established) {
			pthread_mutex_unlock(&c->lock);
			pthread_mutex_unlock(&c->send_lock);
			return S2S_ERR_SESSION;
		}
	}
	ch = p->st.tx;
	old = p->st.tx;
	session = p->st.session;
	idx = c->next_cover++ % c->ncovers;
	cache = p->tx_cache;
	p->tx_cache = NULL;
	pthread_mutex_unlock(&c->lock);
	if (!cache)
		cache = calloc(1, sizeof(*cache));   /* NULL: seal uncached */

	/* Seal outside the lock: the network thread keeps receiving. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	e = s2s_package_seal_cached(&ch, cache, c->cfg.id, peer, msg, len,
				    &c->covers[idx], c->cfg.png_level, &pkg,
				    &pkg_len, NULL);
	us = elapsed_us(&t0);
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (cache && p && !p->tx_cache) {
		p->tx_cache = cache;
	} else if (cache) {
		/* Forgotten meanwhile (or another cache came back first). */
		s2s_package_cache_clear(cache);
		free(cache);
	}
	pthread_mutex_unlock(&c->lock);
	if (e)
		goto out;
	if (flags & S2S_SEND_SEAL_ONLY) {
		/* The chain copy is dropped: nothing advanced. */
		if (info) {
			info->session = session;
			info->seq = old.next_seq;
			info->seal_us = us;
			info->package_len = pkg_len;
			info->cover_index = (int)idx;
			info->package = pkg;
			pkg = NULL;
		}
		goto out;
	}

	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (!p || !p->st.established || p->st.session != session ||
	    p->st.tx.next_seq != old.next_seq) {
		pthread_mutex_unlock(&c->lock);
		e = S2S_ERR_SESSION;
		goto out;
	}
	/*
	 * Remember the new chain position before the package leaves, on
	 * disk (fsynced with state_fsync): a restart must never reuse it.
	 * Written without c->lock held, so that what arrives meanwhile is
	 * not held up by the disk; send_lock keeps other sends out.
	 */
	p->st.tx = ch;
	client__persist_tx(c, peer, &ch, false);
	p = client__find_pair(c, peer);
	if (!p || !p->st.established || p->st.session != session ||
	    p->st.tx.next_seq != ch.next_seq) {
		/* Forgotten or replaced while the state was written. */
		pthread_mutex_unlock(&c->lock);
		e = S2S_ERR_SESSION;
		goto out;
	}
	s = sending_add(c, peer, session, old.next_seq, false,
			(flags & S2S_SEND_WAIT_ACK) != 0);
	client__pair_topic(c, p, c->cfg.id, topic, sizeof(topic));
	pthread_mutex_unlock(&c->lock);

	e = s ? s2s_transport_publish(c->tr, topic, pkg, pkg_len, s->tag)
	      : S2S_ERR_NOMEM;
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (e) {
		if (s)
			free(sending_take(c, s->tag));
		if (p && p->st.established && p->st.session == session &&
		    p->st.tx.next_seq == ch.next_seq) {
			p->st.tx = old;   /* the package never left */
			client__persist_tx(c, peer, &old, true);
		}
	} else if (flags & S2S_SEND_WAIT_ACK) {
		e = wait_sending(c, s, c->cfg.timeout_fetch);
		p = client__find_pair(c, peer);   /* c->lock was let go */
		if (e == S2S_ERR_MQTT && p && p->st.established &&
		    p->st.session == session) {
			/* Left, never answered: the broker went down. */
			free(p->resend);
			p->resend = malloc(pkg_len);
			if (p->resend) {
				memcpy(p->resend, pkg, pkg_len);
				p->resend_len = pkg_len;
				p->resend_session = session;
				p->resend_seq = old.next_seq;
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	if (info) {
		info->session = session;
		info->seq = old.next_seq;
		info->seal_us = us;
		info->package_len = pkg_len;
		info->cover_index = (int)idx;
		if (flags & S2S_SEND_KEEP_PACKAGE) {
			info->package = pkg;
			pkg = NULL;
		}
	}
out:
	S2S_WIPE(ch);
	S2S_WIPE(old);
	free(pkg);
	pthread_mutex_unlock(&c->send_lock);
	client__flush_notes(c);
	return e;
}

enum s2s_err
s2s_client_publish_raw(struct s2s_client *c, const char *peer,
		       const uint8_t *pkg, size_t len, int timeout_ms)
{
	struct pair *p;
	struct sending *s;
	char topic[TOPIC_MAX];
	enum s2s_err e;

	if (!peer || !pkg)
		return S2S_ERR_INVAL;
	if (timeout_ms < 0)
		timeout_ms = c->cfg.timeout_fetch;
	pthread_mutex_lock(&c->lock);
	p = client__find_pair(c, peer);
	if (!p || p->st.status != S2S_PAIR_DONE) {
		pthread_mutex_unlock(&c->lock);
		return S2S_ERR_STATE;
	}
	client__pair_topic(c, p, c->cfg.id, topic, sizeof(topic));
	s = sending_add(c, peer, 0, 0, true, true);
	pthread_mutex_unlock(&c->lock);
	if (!s)
		return S2S_ERR_NOMEM;
	e = s2s_transport_publish(c->tr, topic, pkg, len, s->tag);
	pthread_mutex_lock(&c->lock);
	if (e)
		free(sending_take(c, s->tag));
	else
		e = wait_sending(c, s, timeout_ms);
	pthread_mutex_unlock(&c->lock);
	client__flush_notes(c);
	return e;
}

enum s2s_err
s2s_client_inject(struct s2s_client *c, const char *peer, const uint8_t *pkg,
		  size_t len)
{
	enum s2s_err e;

	if (!peer || !pkg)
		return S2S_ERR_INVAL;
	e = message__receive(c, peer, pkg, len, FROM_INJECT);
	client__flush_notes(c);
	return e;
}
