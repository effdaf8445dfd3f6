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
 *   a second backend (PostgreSQL, plugin_opt_store postgresql://...) fills
 *     in the same table (issue 13); cs_store_open() refuses URIs it has
 *     no backend for.
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
};

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
};

extern const struct cs_store_ops cs_store_embedded;

/*
 * Pick the backend for plugin_opt_store, open (create) it and its schema
 * (migrating older ones).  S2S_ERR_STORE with a log; S2S_ERR_CONFIG for
 * a URI no backend serves.
 */
enum s2s_err cs_store_open(struct s2s_cs *cs);
/* Flush and close (background threads stopped).  Safe when not open. */
void cs_store_close(struct s2s_cs *cs);

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
 * completes both members' enrolment. */
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

#endif /* S2S_BROKER_STORE_H */
