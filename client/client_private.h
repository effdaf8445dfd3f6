/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * client_private.h - the insides of struct s2s_client, shared by the files
 * of the client library.  Sections follow the files:
 *   client.c     lifecycle, connection, blocking calls, housekeeping
 *   control.c    the inbox: registration, pairing, negotiation, fetch,
 *                reject (the device side of docs/PROTOCOL.md)
 *   message.c    phase 3: sealing and sending, receiving, gaps, dedupe
 *   covers.c     the stego covers
 *   state.c      the state file (state.h)
 *
 * Locking: c->lock protects everything below it in struct s2s_client and
 * every struct pair.  It is never held while calling the application or
 * Paho (Paho calls back with its own lock held, and the callbacks take
 * c->lock): work for either is queued as a note and run by
 * client__flush_notes() once c->lock is released.  c->cond is broadcast
 * on every change a blocking call may wait for.  c->send_lock serialises
 * senders so that a package can be sealed outside c->lock.
 */
#ifndef S2S_CLIENT_PRIVATE_H
#define S2S_CLIENT_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "device_config.h"
#include "diag.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/package.h"
#include "s2s/proto.h"
#include "s2s/scheme.h"
#include "state.h"
#include "transport.h"

#define TOPIC_MAX 512
#define STASH_MAX 256           /* out-of-order packages kept per pair */
#define FUTURE_MAX 32           /* packages of a session still negotiating */
#define REQ_MAX 16
/* A deferred state write (receive chains) waits at most this long. */
#define S2S_PERSIST_DELAY_MS 20

enum neg_state {
	NEG_NONE = 0,
	NEG_WAIT_KEYS,      /* SDS: SESSION sent, waiting for step 1 */
	NEG_WAIT_DONE,      /* SDS: step 2 sent, waiting for step 5 */
	NEG_WAIT_FWD,       /* SDR: step 1 received, waiting for step 3 */
};

/* A package kept until its turn (gap) or its session (negotiating). */
struct stashed {
	uint64_t session, seq;
	uint8_t *buf;
	size_t len;
	bool fetched;
	struct stashed *next;
};

struct pair {
	struct s2s_state_pair st;   /* the persistent part */
	uint64_t pair_req;          /* latest PAIR request id */
	int pair_err;               /* the CS's REJECT of it (S2S_ERR_*) */

	/* Negotiation in progress (not persisted). */
	enum neg_state neg;
	uint64_t neg_req;           /* our SESSION request id */
	uint64_t neg_T;
	uint8_t neg_nonce[S2S_MSG_NONCE_LEN];
	uint8_t neg_role, neg_profile;
	uint8_t neg_skcs[S2S_SKCS_LEN];     /* secret */
	uint8_t neg_sk[S2S_SK_MAX];         /* secret */
	uint8_t neg_sk_len;
	int neg_result;             /* 1 running; S2S_OK; an error */
	int64_t neg_started;

	/*
	 * Per-chain caches of the core (s2s_package_open_cached /
	 * _seal_cached: the stego selection, the pre-encoded covers), so
	 * that a package costs only its own work.  rx_cache: c->lock.
	 * tx_cache: owned by the one s2s_client_send() sealing (taken out
	 * under c->lock, sealed with under send_lock, put back or freed), so
	 * a pair forgotten meanwhile frees nothing in use.  Both hold a copy
	 * of the stego key: wiped and freed with the pair (pair_free).
	 */
	struct s2s_package_cache rx_cache;
	struct s2s_package_cache *tx_cache;

	/* Receiving. */
	struct stashed *stash;      /* sorted by seq, this session */
	unsigned nstash;
	struct stashed *future;     /* for neg_T */
	unsigned nfuture;
	uint64_t fetch_req;         /* outstanding FETCH, 0 if none */
	uint64_t fetch_from, fetch_to;
	bool fetch_catchup;         /* a reconnect catch-up, not a gap */
	int64_t fetch_sent;

	/*
	 * Packages of the current session go out only once control message
	 * number send_after (c->ctl_queued when it was established: for the
	 * responder, its step 4) has been handed to the transport, so that
	 * the CS has the session before its first package (client.c,
	 * client__wait_ctl_sent).
	 */
	uint64_t send_after;

	/*
	 * A package that left but was never answered: the broker died with
	 * it (issue 13).  The next send puts it out again first, so that
	 * whichever broker the device reaches stores it (or refuses it as
	 * one it already has) and the chain in the store has no hole.
	 */
	uint8_t *resend;
	size_t resend_len;
	uint64_t resend_session, resend_seq;

	/* Recovery (lost state, unrecoverable gap). */
	bool need_recover;
	int64_t recover_after;
	/*
	 * A session known to be broken although still established here
	 * (the CS refused our packages, or a gap cannot be filled): recovery
	 * must replace it, not keep it.  0 = none.
	 */
	uint64_t broken_session;
};

/* A request waiting for its reply by request id. */
struct request {
	uint64_t id;
	int type;                   /* the reply type expected */
	bool done;
	int err;
	char peer[S2S_MSG_ID_MAX + 1];
	unsigned delivered;         /* FETCH: new messages */
};

/* A sent package waiting for the broker's answer. */
struct sending {
	uint64_t tag;
	char peer[S2S_MSG_ID_MAX + 1];
	uint64_t session, seq;
	bool raw;                   /* publish_raw: no chain behind it */
	bool waited;                /* someone waits for done */
	bool done;
	int rc;
	struct sending *next;
};

/* A verified message for s2s_client_receive(). */
struct queued {
	struct s2s_received *r;
	struct queued *next;
};

/* A callback to make once c->lock is released. */
struct note {
	int kind;                   /* NOTE_* */
	struct s2s_message_info info;
	struct s2s_reject_info rej;
	enum s2s_event ev;
	char peer[S2S_MSG_ID_MAX + 1];
	char peer2[S2S_MSG_ID_MAX + 1];
	char detail[160];
	char *topic;                /* PUBLISH, SUBSCRIBE */
	uint8_t *msg;
	size_t len;
	struct note *next;
};

/* NOTE_PUBLISH / NOTE_SUBSCRIBE: network calls queued under c->lock and
 * made after it is released (Paho calls back with its own lock held, and
 * the callbacks take c->lock: never call Paho with c->lock held). */
enum { NOTE_MESSAGE = 1, NOTE_REJECT, NOTE_EVENT, NOTE_PUBLISH,
       NOTE_SUBSCRIBE, NOTE_SENT, NOTE_LOG };

struct s2s_client {
	struct s2s_device_config cfg;
	struct s2s_key *key;            /* device key pair */
	struct s2s_key *cs_key;         /* pinned CS public key */
	uint8_t cs_pub[S2S_P256_PUB_LEN];
	struct s2s_image *covers;
	size_t ncovers;
	struct s2s_transport *tr;
	char topic_inbox[TOPIC_MAX];
	char topic_req[TOPIC_MAX];
	char topic_register[TOPIC_MAX];

	s2s_message_cb *on_message;
	void *on_message_ud;
	s2s_reject_cb *on_reject;
	void *on_reject_ud;
	s2s_event_cb *on_event;
	void *on_event_ud;
	s2s_sent_cb *on_sent;
	void *on_sent_ud;
	s2s_log_cb *on_log;
	void *on_log_ud;
	int log_level;                  /* lines above it are not made */

	pthread_mutex_t send_lock;
	pthread_mutex_t drain;          /* who runs the notes (trylock) */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool registered;
	char cs_id[S2S_MSG_ID_MAX + 1];
	bool use_token;                 /* connect with a token */
	/* Not with a token: an enrolment login even without a code (open
	 * enrolment on a broker with allow_anonymous false). */
	bool enrol_empty;
	bool connected;
	bool ever_connected;
	bool want_connected;            /* reconnect when the link drops */
	bool denied;                    /* a reconnect was refused (revoked?):
					 * no more until s2s_client_connect */
	int64_t next_retry;
	int retry_ms;
	struct pair **pairs;
	size_t npairs, cap_pairs;
	struct request reqs[REQ_MAX];
	struct sending *sendings;
	uint64_t next_tag;
	size_t next_cover;
	struct queued *rq_head, *rq_tail;
	char last_reason[S2S_MSG_REASON_MAX + 1];
	struct note *notes, *notes_tail;    /* to deliver after unlock */
	/* Control messages queued (client__send_ctl) and handed to the
	 * transport (run_note), in order: the queue is FIFO. */
	uint64_t ctl_queued, ctl_sent;
	/* ack of the newest FETCHED read (FETCH pacing, v1.1); 0: none */
	uint64_t fetch_ack;

	int lock_fd;                    /* <state_dir>/lock (local.c) */
	bool spool_ok;                  /* the unread spool was read: write
					 * it back at destroy */

	pthread_t keeper;               /* housekeeping thread */
	bool keeper_running;
	bool stopping;

	/*
	 * State file writes (client__persist, client__persist_soon).  Every
	 * snapshot of the state gets a generation (state_gen, c->lock); the
	 * writes are serialised by save_lock, which also guards saved_gen,
	 * the generation on disk: a snapshot older than it is never written,
	 * so a deferred write cannot put an older chain position over a
	 * newer one.  Lock order: c->lock, then save_lock.
	 */
	pthread_mutex_t save_lock;
	uint64_t state_gen;             /* c->lock */
	uint64_t saved_gen;             /* save_lock */
	bool persist_due;               /* c->lock: a deferred write waits */
	int64_t persist_at;             /* c->lock: ... due at this time */
	/*
	 * The send-chain journal (state.h, client__persist_tx), save_lock:
	 * its file (-1: none, every write is a full one), the next slot (a
	 * slot is used again only after a full write newer than every
	 * record: then jslot goes back to 0), the last counter, the newest
	 * record's generation.
	 */
	int txlog_fd;
	unsigned jslot;
	uint64_t jcounter;
	uint64_t jgen_max;
	char jpeer[S2S_TXLOG_SLOTS][S2S_MSG_ID_MAX + 1];  /* this run's
					 * record in each slot ("": none) */
};

/* ---- client.c ------------------------------------------------------------- */

int64_t client__now_ms(void);
struct pair *client__find_pair(struct s2s_client *c, const char *peer);
struct pair *client__add_pair(struct s2s_client *c, const char *peer);
/* Lock held. */
void client__persist(struct s2s_client *c);
void client__persist_soon(struct s2s_client *c);
bool client__persist_unlocked(struct s2s_client *c);
void client__persist_tx(struct s2s_client *c, const char *peer,
			const struct s2s_chain *tx, bool rollback);
void client__note_event(struct s2s_client *c, enum s2s_event ev,
			const char *peer, const char *detail);
/* Lock held: a log line (s2s_client_on_log), made after unlock. */
void client__log(struct s2s_client *c, enum s2s_log_level level,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Lock held: the broker answered package seq of peer (on_sent). */
void client__note_sent(struct s2s_client *c, const char *peer,
		       uint64_t session, uint64_t seq, int err, int reason);
void client__note_reject(struct s2s_client *c, const char *peer,
			 uint64_t session, uint64_t seq, int err,
			 bool outgoing, const char *reason);
/* Make the queued callbacks; lock NOT held. */
void client__flush_notes(struct s2s_client *c);
/*
 * Lock held: wait (at most timeout_ms) until the control messages up to
 * number n have been handed to the transport, flushing the queue; the
 * lock is released meanwhile.  Returns at once in the thread that drains
 * the queue (a callback of ours), which cannot wait for itself.
 */
bool client__wait_ctl_sent(struct s2s_client *c, uint64_t n, int timeout_ms);
/*
 * Lock NOT held: true (and last_reason says why) when this thread is
 * running one of our callbacks, where a blocking call must not wait.
 */
bool client__in_callback(struct s2s_client *c, const char *fn);
/* Lock held: control messages up to number n are not yet handed to the
 * transport, and this thread may wait for them. */
bool client__ctl_pending(const struct s2s_client *c, uint64_t n);
/*
 * Lock held: encode a control message and queue it for publishing when
 * the lock is released (client__flush_notes).
 */
enum s2s_err client__send_ctl(struct s2s_client *c, const char *topic,
			      const struct s2s_msg *m);
/* Lock held: queue a subscription (QoS 1, no-local). */
void client__subscribe(struct s2s_client *c, const char *topic);
uint64_t client__new_req_id(void);
struct request *client__req_add(struct s2s_client *c, uint64_t id, int type);
struct request *client__req_find(struct s2s_client *c, uint64_t id);
void client__pair_topic(const struct s2s_client *c, const struct pair *p,
			const char *sender, char *out, size_t len);

/* ---- control.c ------------------------------------------------------------ */

/* An inbox message (network thread; takes the lock). */
void control__inbox(struct s2s_client *c, const uint8_t *buf, size_t len);
/* Lock held: send FETCH for [from, to] of peer's direction. */
enum s2s_err control__fetch(struct s2s_client *c, struct pair *p,
			    uint64_t from, uint64_t to, bool catchup);
/* Lock held: send SESSION for p. */
enum s2s_err control__session_request(struct s2s_client *c, struct pair *p);
/* Lock held: send PAIR. */
enum s2s_err control__pair_request(struct s2s_client *c, struct pair *p,
				   int profile);
/* Lock held: drop p's session (wipe chains, clear stash). */
void control__drop_session(struct s2s_client *c, struct pair *p,
			   const char *why);

/* ---- message.c ------------------------------------------------------------ */

enum origin { FROM_NET, FROM_FETCH, FROM_INJECT };

/*
 * A package for this device from peer (network thread, or the caller of
 * s2s_client_inject).  Takes the lock.  Returns the verdict.
 */
enum s2s_err message__receive(struct s2s_client *c, const char *peer,
			      const uint8_t *buf, size_t len,
			      enum origin from);
/* Lock held: process p's FETCHED packages (then drain the stash). */
unsigned message__fetched(struct s2s_client *c, struct pair *p,
			  const struct s2s_msg *m);
/* Lock held: the session of p is up; run its stashed future packages. */
void message__session_up(struct s2s_client *c, struct pair *p);
/* Lock held: free stash and future lists. */
void message__clear_stash(struct pair *p, bool future_too);
/* The broker answered a publish (network thread). */
void message__published(struct s2s_client *c, uint64_t tag, enum s2s_err rc,
			int reason);
/* Lock held: fetch timeouts etc. (housekeeping). */
void message__tick(struct s2s_client *c);

/* ---- diagnose.c ----------------------------------------------------------- */

/* One line on a failed connect: the URI and what is wrong (probes the
 * host and port itself).  paho: the transport's words, may be "". */
void diagnose__connect(const struct s2s_device_config *cfg, enum s2s_err e,
		       const char *paho, char *out, size_t len);

/* ---- local.c -------------------------------------------------------------- */

/*
 * Take <state_dir>/lock (flock, not blocking).  Returns the open file
 * (keep it until local__unlock), -2 when another process holds it (err
 * names it), -1 on another failure (err says which).
 */
int local__lock(const char *state_dir, char *err, size_t err_len);
void local__unlock(int fd);
/* Queue the messages of <state_dir>/unread on c->rq (at create). */
enum s2s_err local__spool_load(struct s2s_client *c, char *err,
			       size_t err_len);
/* Write c->rq to <state_dir>/unread, or remove it when empty (destroy). */
enum s2s_err local__spool_save(struct s2s_client *c);

/* ---- covers.c ------------------------------------------------------------- */

/* Load the configured covers (folder, "builtin", or the default). */
enum s2s_err covers__load(const char *spec, struct s2s_image **out,
			  size_t *n, char *err, size_t err_len);
/* The embedded synthetic 128x128 cover. */
enum s2s_err covers__builtin(struct s2s_image *out);
void covers__free(struct s2s_image *v, size_t n);

#endif /* S2S_CLIENT_PRIVATE_H */
