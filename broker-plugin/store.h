/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.h - the CS store: the one narrow interface behind which a backend
 * keeps the registry, enrolment codes, pairing wishes, pairs, sessions,
 * chains and packages.  Included by plugin.h; the rest of the plugin
 * calls only the cs_store_* functions below, which dispatch through the
 * ops table of the backend chosen by plugin_opt_store.
 *
 * Backends:
 *   embedded (default; plugin_opt_store is a file path, store_embedded.c):
 *     SQLite (WAL) for everything but packages and chain advances, which
 *     go to an append-only segment log (seglog.h) in the folder
 *     "<store>-log" next to the database.  Zero configuration.
 *   postgresql (plugin_opt_store "postgresql://..." or "postgres://..." or
 *     a libpq conninfo such as "host=... dbname=...", store_pg.c; built
 *     when libpq is found): every record in one PostgreSQL database that
 *     several brokers share (issue 13, docs/CLUSTER.md "Store:
 *     PostgreSQL").  cs_store_open() refuses URIs it has no backend for.
 *
 * Threading: every cs_store_* function is called on the broker's main
 * thread only (Mosquitto calls every plugin callback there) and returns
 * when the operation is done (synchronous); a backend may run its own
 * threads (the embedded one runs a checkpoint thread and the log's
 * housekeeping thread) but never calls back into the plugin from them.
 *
 * Durability ("durable" = survives kill -9 of the broker):
 *   - accept: when it returns S2S_OK the package and the advanced chain
 *     are durable (embedded: one write() into the log; on stable storage
 *     at the next group commit, plugin_opt_store_sync_ms).  The gate lets
 *     the package through only after that.
 *   - every other write (device, code, wish, pair, session, revoke,
 *     delete): durable when it returns S2S_OK (embedded: a committed
 *     SQLite WAL transaction, synchronous=NORMAL).
 *   - retention, expiry and the freeing of disk run in the background;
 *     cs_store_retention() applies the policy now and returns what became
 *     dead (disk follows within seconds).
 *   After a crash, cs_store_load() returns every pair with its current
 *   session and both chains exactly as after the last accepted package.
 *
 * Ownership: strings and buffers passed in are the caller's and are not
 * kept.  Secrets (Rv, Shk, Sk, chain keys) are sealed at rest (seal.c)
 * with an ad naming their record; buffers the store hands out that hold
 * secrets are said so below and must be wiped by the caller.  Packages
 * are public (they travel in clear) and are stored as received.
 *
 * Errors: S2S_ERR_STORE (logged by the backend), S2S_ERR_NOT_FOUND,
 * S2S_ERR_NOMEM, S2S_ERR_DENIED where said.
 *
 * Shared stores (ops->shared, PostgreSQL): several brokers (CS instances)
 * use one store at once.  What the cluster relies on:
 *   - accept is a compare-and-set on the chain: it succeeds only if the
 *     stored chain of (pair, dir) is in session advanced->session at
 *     p->sess->chain[dir].next_seq (the chain the package was opened
 *     against).  Another broker that got there first makes it fail with
 *     S2S_ERR_REPLAY (stored chain ahead) or S2S_ERR_SESSION (session
 *     replaced or ended), nothing written.  Accepting the same bytes at
 *     the same seq again succeeds without a second copy (a retry after a
 *     lost reply is harmless).
 *   - every write commits before it returns, so another broker sees it at
 *     its next read; cs_store_pair_load() / cs_store_chain_load() read
 *     one pair or one chain fresh (the in-memory copy may be behind).
 *   - cs_store_poll_events() (from TICK) reports what other brokers did:
 *     revoked devices (kick them), removed pairs, sessions established
 *     or ended elsewhere.
 *   - the store may be unreachable for a while (a PostgreSQL restart):
 *     every call then fails at once with S2S_ERR_STORE (the gate counts
 *     it under "store") instead of waiting, no call blocks the broker
 *     thread longer than CS_STORE_PG_TIMEOUT_MS, and the backend
 *     reconnects by itself (driven from cs_store_poll_events and from
 *     the next call).  After a reconnection CS_STORE_EV_RESYNC says that
 *     events may have been missed.
 */
#ifndef S2S_BROKER_STORE_H
#define S2S_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/crypto.h"
#include "s2s/error.h"
#include "s2s/proto.h"
#include "s2s/scheme.h"

struct s2s_cs;
struct cs_pair;

struct cs_device_rec {
	char id[S2S_MSG_ID_MAX + 1];
	uint8_t pub[S2S_P256_PUB_LEN];
	bool revoked;
	int64_t created;
};

/* What the store holds on disk (for $SYS, the admin API, the bench). */
struct cs_store_usage {
	uint64_t db_bytes;          /* database files (embedded: db + WAL) */
	uint64_t log_bytes;         /* package log files */
	uint64_t log_segments;
	uint64_t live_packages;     /* packages a FETCH can still return */
	uint64_t live_bytes;
	uint64_t pending_enrolments;    /* open enrolments not yet paired */
	/* shared stores: the connection to the database server */
	bool down;                  /* unreachable now */
	uint64_t outages;           /* connections lost since start */
	uint64_t refused;           /* calls refused while it was down */
};

/* What another broker did to a shared store (cs_store_poll_events). */
enum cs_store_event {
	CS_STORE_EV_REVOKED = 1,    /* id: a device was revoked: kick it */
	CS_STORE_EV_PAIRED,         /* id: a pair was created */
	CS_STORE_EV_PAIR_DELETED,   /* id: a pair was removed */
	CS_STORE_EV_SESSION,        /* id: a pair's session was established */
	CS_STORE_EV_SESSION_ENDED,  /* id: a pair's session ended */
	CS_STORE_EV_RESYNC,         /* id "": events may have been lost
				     * (reconnected): re-read what matters */
};
typedef void (*cs_store_event_cb)(void *arg, enum cs_store_event ev,
				  const char *id);

struct cs_session;
/* One broker row (cs_store_broker_list); strings valid during the call. */
typedef void (*cs_broker_cb)(void *arg, const char *broker,
			     const char *info, int64_t updated);

/* Per-call packages callback of fetch: return non-OK to stop. */
typedef enum s2s_err (*cs_fetch_cb)(void *arg, uint64_t seq,
				    const uint8_t *pkg, size_t len);

/*
 * The backend.  Each entry has the contract of the cs_store_* function of
 * the same name below; state lives in cs->store (the backend's own).
 */
struct cs_store_ops {
	const char *name;
	enum s2s_err (*open)(struct s2s_cs *cs);
	void (*close)(struct s2s_cs *cs);
	enum s2s_err (*device_get)(struct s2s_cs *cs, const char *id,
				   struct cs_device_rec *rec, uint8_t **hs,
				   size_t *hs_len);
	enum s2s_err (*device_put)(struct s2s_cs *cs, const char *id,
				   const uint8_t pub[S2S_P256_PUB_LEN],
				   const uint8_t *hs, size_t hs_len,
				   bool consume_code);
	enum s2s_err (*device_revoke)(struct s2s_cs *cs, const char *id);
	enum s2s_err (*device_list)(struct s2s_cs *cs,
				    void (*cb)(void *arg,
					       const struct cs_device_rec *r),
				    void *arg);
	long (*device_count)(struct s2s_cs *cs);
	enum s2s_err (*code_add)(struct s2s_cs *cs, const char *id,
				 const uint8_t *code, size_t len,
				 int64_t expires);
	enum s2s_err (*code_check)(struct s2s_cs *cs, const char *id,
				   const uint8_t *code, size_t len,
				   int64_t now);
	enum s2s_err (*pairreq_put)(struct s2s_cs *cs, const char *requester,
				    const char *peer, int profile,
				    uint64_t req_id);
	enum s2s_err (*pairreq_get)(struct s2s_cs *cs, const char *requester,
				    const char *peer, int *profile,
				    uint64_t *req_id);
	enum s2s_err (*pair_put)(struct s2s_cs *cs, const struct cs_pair *p,
				 const uint16_t rv[S2S_RV_LEN]);
	enum s2s_err (*pair_rv)(struct s2s_cs *cs, const char *pair,
				uint16_t rv[S2S_RV_LEN]);
	enum s2s_err (*pair_delete)(struct s2s_cs *cs, const char *pair);
	enum s2s_err (*load)(struct s2s_cs *cs);
	enum s2s_err (*session_put)(struct s2s_cs *cs, const struct cs_pair *p);
	enum s2s_err (*session_delete)(struct s2s_cs *cs, const char *pair);
	enum s2s_err (*accept)(struct s2s_cs *cs, const struct cs_pair *p,
			       int dir, const struct s2s_chain *advanced,
			       const uint8_t *pkg, size_t pkg_len);
	enum s2s_err (*fetch)(struct s2s_cs *cs, const char *pair,
			      const char *sender, uint64_t session,
			      uint64_t from, uint64_t to, unsigned max,
			      size_t max_bytes, cs_fetch_cb cb, void *arg);
	long (*retention)(struct s2s_cs *cs, int64_t now);
	long (*package_count)(struct s2s_cs *cs, const char *pair);
	void (*usage)(struct s2s_cs *cs, struct cs_store_usage *u);
	/* single-use connect tokens and enrolment logins (plugin.h) */
	enum s2s_err (*tokens_open)(struct s2s_cs *cs);
	enum s2s_err (*token_use)(struct s2s_cs *cs, const char *user,
				  const uint8_t *nonce, uint64_t exp);
	long (*tokens_prune)(struct s2s_cs *cs, int64_t now);
	long (*tokens_count)(struct s2s_cs *cs);
	enum s2s_err (*code_hash_get)(struct s2s_cs *cs, const char *id,
				      int64_t now,
				      uint8_t hash[S2S_SHA256_LEN]);
	/* ---- shared stores (NULL in a backend that serves one broker) ---- */
	bool shared;
	int (*poll_events)(struct s2s_cs *cs, cs_store_event_cb cb, void *arg);
	enum s2s_err (*pair_load)(struct s2s_cs *cs, const char *pair);
	enum s2s_err (*chain_load)(struct s2s_cs *cs, const struct cs_pair *p,
				   int dir, struct s2s_chain *out);
	/* ---- cluster (cluster.c); see "Cluster" below ---- */
	enum s2s_err (*session_get)(struct s2s_cs *cs, const struct cs_pair *p,
				    struct cs_session **out);
	enum s2s_err (*session_cas)(struct s2s_cs *cs, const struct cs_pair *p,
				    const struct cs_session *x,
				    uint64_t expect_t, int expect_state);
	enum s2s_err (*broker_put)(struct s2s_cs *cs, const char *broker,
				   const char *info, int64_t now);
	enum s2s_err (*broker_list)(struct s2s_cs *cs, cs_broker_cb cb,
				    void *arg);
	/* ---- routing (cluster.c): which broker a device is on ---- */
	enum s2s_err (*presence_set)(struct s2s_cs *cs, const char *id,
				     const char *broker, int64_t now);
	enum s2s_err (*presence_clear)(struct s2s_cs *cs, const char *id,
				       const char *broker);
	enum s2s_err (*presence_get)(struct s2s_cs *cs, const char *id,
				     char *broker, size_t n);
};

extern const struct cs_store_ops cs_store_embedded;
#ifdef S2S_HAVE_PG
extern const struct cs_store_ops cs_store_pg;
#endif

/* The longest a PostgreSQL call may hold the broker thread. */
#define CS_STORE_PG_TIMEOUT_MS 5000

/*
 * Pick the backend for plugin_opt_store, open (create) it and its schema
 * (migrating older ones).  S2S_ERR_STORE with a log; S2S_ERR_CONFIG for
 * a URI no backend serves.
 */
enum s2s_err cs_store_open(struct s2s_cs *cs);
/* Flush and close (background threads stopped).  Safe when not open. */
void cs_store_close(struct s2s_cs *cs);
/* Several brokers may use this store at once (PostgreSQL). */
bool cs_store_shared(const struct s2s_cs *cs);
/* Is plugin_opt_store a PostgreSQL URI or conninfo? */
bool cs_store_is_pg(const char *store);
/* plugin_opt_store for messages: a password in it becomes "***". */
const char *cs_store_display(const char *store, char *buf, size_t n);

/* ---- registry ----------------------------------------------------------- */

/* S2S_ERR_NOT_FOUND if id is unknown.  hs may be NULL (not wanted);
 * *hs (the signature image) is a secret: wipe and free it. */
enum s2s_err cs_store_device_get(struct s2s_cs *cs, const char *id,
				 struct cs_device_rec *rec, uint8_t **hs,
				 size_t *hs_len);
/*
 * Insert or replace a device (clears revoked) and, in the same
 * transaction, consume its enrolment code if consume_code.  Without a code
 * (open enrolment) the device counts as a pending enrolment until it is
 * paired; pending enrolments expire after plugin_opt_enroll_expiry and
 * are capped by plugin_opt_enroll_pending_max (S2S_ERR_TOO_BIG: quota
 * reached, nothing stored).
 */
enum s2s_err cs_store_device_put(struct s2s_cs *cs, const char *id,
				 const uint8_t pub[S2S_P256_PUB_LEN],
				 const uint8_t *hs, size_t hs_len,
				 bool consume_code);
/* Revoke: keep the id as revoked, drop its signature, pairs, requests. */
enum s2s_err cs_store_device_revoke(struct s2s_cs *cs, const char *id);
enum s2s_err cs_store_device_list(struct s2s_cs *cs,
				  void (*cb)(void *arg,
					     const struct cs_device_rec *r),
				  void *arg);
long cs_store_device_count(struct s2s_cs *cs);

/* One-time enrolment codes, stored as SHA-256 of the code. */
enum s2s_err cs_store_code_add(struct s2s_cs *cs, const char *id,
			       const uint8_t *code, size_t len,
			       int64_t expires);
/* S2S_OK if a valid unexpired code for id matches; S2S_ERR_DENIED else. */
enum s2s_err cs_store_code_check(struct s2s_cs *cs, const char *id,
				 const uint8_t *code, size_t len, int64_t now);

/* Pairing wishes (expire with plugin_opt_enroll_expiry). */
enum s2s_err cs_store_pairreq_put(struct s2s_cs *cs, const char *requester,
				  const char *peer, int profile,
				  uint64_t req_id);
enum s2s_err cs_store_pairreq_get(struct s2s_cs *cs, const char *requester,
				  const char *peer, int *profile,
				  uint64_t *req_id);

/* ---- pairs, sessions, chains ----------------------------------------------- */

/* Persist a new pair with its Rv and Shk (sealed); drops the wishes and
 * completes both members' enrolment.  Insert if absent: S2S_ERR_REPLAY
 * (nothing written) when the pair exists (another broker paired the two
 * devices first; read it with cs_store_pair_load). */
enum s2s_err cs_store_pair_put(struct s2s_cs *cs, const struct cs_pair *p,
			       const uint16_t rv[S2S_RV_LEN]);
/* Rv of a pair (a secret: the caller wipes it). */
enum s2s_err cs_store_pair_rv(struct s2s_cs *cs, const char *pair,
			      uint16_t rv[S2S_RV_LEN]);
/* The pair, its session, chains and packages. */
enum s2s_err cs_store_pair_delete(struct s2s_cs *cs, const char *pair);
/* Load every pair and its established session (chains as after the last
 * accepted package) into cs->pairs. */
enum s2s_err cs_store_load(struct s2s_cs *cs);

/* Persist an established session with both chains at their start. */
enum s2s_err cs_store_session_put(struct s2s_cs *cs, const struct cs_pair *p);
enum s2s_err cs_store_session_delete(struct s2s_cs *cs, const char *pair);

/* ---- packages -------------------------------------------------------------- */

/*
 * The gate's commit: the package and the advanced chain of its direction
 * (dir 0: sender = member a), atomically: after a crash either both or
 * neither are there.  Called for every accepted package on the broker
 * thread: the embedded backend does one write() (a few microseconds).
 */
enum s2s_err cs_store_accept(struct s2s_cs *cs, const struct cs_pair *p,
			     int dir, const struct s2s_chain *advanced,
			     const uint8_t *pkg, size_t pkg_len);
/*
 * Stored packages of (pair, sender, T) with from <= seq <= to, in order:
 * at most max packages and max_bytes of packages (the first one always),
 * so that one reply has a bounded size.  cb must not call the store.
 */
enum s2s_err cs_store_fetch(struct s2s_cs *cs, const char *pair,
			    const char *sender, uint64_t session,
			    uint64_t from, uint64_t to, unsigned max,
			    size_t max_bytes, cs_fetch_cb cb, void *arg);
/*
 * Apply the retention policy (plugin_opt_retention_packages per pair,
 * plugin_opt_retention_age) and the enrolment expiry now; returns the
 * number of packages that became dead.
 */
long cs_store_retention(struct s2s_cs *cs, int64_t now);
long cs_store_package_count(struct s2s_cs *cs, const char *pair);
void cs_store_usage(struct s2s_cs *cs, struct cs_store_usage *u);

/* ---- shared stores (see "Shared stores" above) ------------------------------ */

/*
 * Report what other brokers did since the last call (cb once per event,
 * on the calling thread; cb may call the store) and drive a pending
 * reconnection.  Called from TICK; never blocks for long.  Returns the
 * number of events (0 for a backend that is not shared).
 */
int cs_store_poll_events(struct s2s_cs *cs, cs_store_event_cb cb, void *arg);
/*
 * From TICK: poll the events and apply them to this broker's memory
 * (store.c): a device revoked elsewhere is kicked and its pairs forgotten,
 * a removed pair forgotten, a pair paired or a session established or
 * ended elsewhere read fresh (cs_store_pair_load); after a reconnection
 * the connected devices are checked for revocation.
 */
int cs_store_tick(struct s2s_cs *cs);
/*
 * Read one pair fresh from the store into cs->pairs: replaces the
 * in-memory pair of that id (pointers to it become invalid; its pending
 * negotiation is dropped) or adds it.  S2S_ERR_NOT_FOUND: the store has no
 * such pair any more (the in-memory one is removed, without notice to the
 * members).  S2S_ERR_STATE for a backend that is not shared.
 */
enum s2s_err cs_store_pair_load(struct s2s_cs *cs, const char *pair);
/*
 * The stored chain of p's established session in direction dir: out is
 * p->sess->chain[dir] with next_seq and the chain key as stored.
 * S2S_ERR_SESSION if the store's session of the pair is not p->sess->t.
 * out holds secrets: s2s_chain_wipe() it.  S2S_ERR_STATE if not shared.
 */
enum s2s_err cs_store_chain_load(struct s2s_cs *cs, const struct cs_pair *p,
				 int dir, struct s2s_chain *out);

/* ---- cluster (issue 13, docs/CLUSTER.md) -------------------------------------
 *
 * Several brokers may run the plugin against one shared store; the store
 * is then the source of truth for pairs, sessions and chains, and each
 * broker's cs->pairs is a cache of it (cs_store_pair_load and
 * cs_store_chain_load above, and the two calls below).  The embedded
 * store is a cluster of one: the same calls, one writer.
 *
 * Sessions in the store carry their negotiation state: state is an enum
 * cs_sess_state (1 keys sent, 2 forwarded, 3 established).  The row holds
 *   secret: sealed, ad "sess:<pair>:<T>", the bytes of
 *           cs_session_secret_pack() (SkCS^T | sk_len | Sk), as today;
 *   neg:    pending states only (NULL when established): sealed, ad
 *           "neg:<pair>:<T>", the bytes of cs_session_neg_pack() (both
 *           nonces, the SDS blob, the SDS request id, the deadline);
 *   sds, and for established sessions the two chain rows (as today).
 * store.c has the pack/unpack helpers so that every backend stores the
 * same bytes.
 */

/*
 * The stored current session of p in whatever state (a new malloc()ed
 * struct cs_session, free it with cs_session_free(): it holds secrets),
 * established ones with both chains as after the last package accepted
 * by any broker.  S2S_ERR_NOT_FOUND (and *out NULL) when p has none.
 */
enum s2s_err cs_store_session_get(struct s2s_cs *cs, const struct cs_pair *p,
				  struct cs_session **out);
/*
 * Compare-and-set of p's session in one transaction (row lock): if the
 * stored session is (expect_t, expect_state) -- or expect_t is 0: any
 * session or none -- replace it with x (any state; established: both
 * chains at x's positions), or delete it (and its chains) if x is NULL.
 * S2S_ERR_STATE when the stored session is something else (another
 * broker got there first): nothing changed.  A shared store tells the
 * other brokers (CS_STORE_EV_SESSION / _SESSION_ENDED).  Packages of an older
 * session stay fetchable as today.
 */
enum s2s_err cs_store_session_cas(struct s2s_cs *cs, const struct cs_pair *p,
				  const struct cs_session *x,
				  uint64_t expect_t, int expect_state);
/*
 * This broker's row in the cluster table: info is a JSON object (its
 * counters, connected devices), updated = now (unix seconds); called
 * every few seconds from TICK.  broker_list calls cb for every row,
 * ordered by broker.
 */
enum s2s_err cs_store_broker_put(struct s2s_cs *cs, const char *broker,
				 const char *info, int64_t now);
enum s2s_err cs_store_broker_list(struct s2s_cs *cs, cs_broker_cb cb,
				  void *arg);
/*
 * Routing between brokers (cluster.c): the broker a device is connected
 * to.  set: id is on broker now (upsert, committed before the device's
 * CONNACK); clear: id left broker (only if it is still listed there; id
 * NULL: every device of broker, at start); get: the broker of id, or
 * S2S_ERR_NOT_FOUND (connected nowhere, or a store without routing).
 */
enum s2s_err cs_store_presence_set(struct s2s_cs *cs, const char *id,
				   const char *broker, int64_t now);
enum s2s_err cs_store_presence_clear(struct s2s_cs *cs, const char *id,
				     const char *broker);
enum s2s_err cs_store_presence_get(struct s2s_cs *cs, const char *id,
				   char *broker, size_t n);
bool cs_store_routes(const struct s2s_cs *cs);

/* ---- helpers for backends (store.c) ---------------------------------------- */

#define CS_SESS_SECRET_LEN (S2S_SKCS_LEN + 1 + S2S_SK_MAX)
#define CS_SESS_NEG_LEN (2 * S2S_MSG_NONCE_LEN + S2S_SKCS_LEN + 8 + 8)

/* x's SkCS^T | sk_len | Sk (a secret: wipe buf). */
void cs_session_secret_pack(const struct cs_session *x,
			    uint8_t buf[CS_SESS_SECRET_LEN]);
/* false: malformed (sk_len out of range). */
bool cs_session_secret_unpack(struct cs_session *x,
			      const uint8_t buf[CS_SESS_SECRET_LEN]);
/* nonce[0] | nonce[1] | blob_sds | sds_req_id (LE) | deadline, unix ms
 * (LE) (a secret: wipe buf). */
void cs_session_neg_pack(const struct cs_session *x,
			 uint8_t buf[CS_SESS_NEG_LEN]);
void cs_session_neg_unpack(struct cs_session *x,
			   const uint8_t buf[CS_SESS_NEG_LEN]);
/* Wipe and free a session (NULL: no-op). */
void cs_session_free(struct cs_session *x);

#ifdef S2S_HAVE_PG
/*
 * Tests: create or migrate the PostgreSQL schema at conninfo to exactly
 * version (1 .. the current one) and return; nothing else is opened.
 */
enum s2s_err cs_store_pg_migrate(const char *conninfo, int version);
#endif

#endif /* S2S_BROKER_STORE_H */
