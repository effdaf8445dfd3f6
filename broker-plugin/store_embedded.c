/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_embedded.c - the default store backend (store.h): SQLite (WAL)
 * for the registry, codes, wishes, pairs and sessions; the segment log
 * (seglog.h) in "<store>-log" for the packages and the chain advances.
 *
 * The gate's commit (accept) is one record appended to the log with one
 * write(): the package and the sealed chain of its direction after it.
 * SQLite keeps each session's chains at their start; at load the newest
 * chain in the log for the same session wins (its seal binds pair, dir,
 * T and next_seq, so it cannot be swapped).  Durability: a record is in
 * the kernel when accept returns (kill -9 loses nothing acknowledged),
 * on disk at the next group commit (plugin_opt_store_sync_ms); SQLite
 * commits are in the WAL before they return (synchronous=NORMAL).
 *
 * Secrets are sealed (seal.c) with an ad naming their row; public data
 * (device public keys, packages as sent on the wire) is stored in clear.
 * 64-bit values (T, seq) are stored as the signed bit pattern.
 *
 * Checkpoints: the broker's connection never checkpoints (an fsync inside
 * a REGISTER); a small thread with its own connection runs PASSIVE
 * checkpoints every second (TRUNCATE once the WAL is fully copied back, so
 * the file shrinks) and incremental vacuum when pages are free.  That
 * connection reads the database once when it opens: a connection that
 * never read it has not opened the WAL, and its checkpoints do nothing
 * (the bug of issue 10, class 4).
 *
 * Open enrolment: a device registered without a code is "pending" until
 * it is paired; pending devices older than plugin_opt_enroll_expiry are
 * deleted (with their signature image and wishes) by the retention pass,
 * and at most plugin_opt_enroll_pending_max may exist at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"
#include "seglog.h"
#include "s2s/bio.h"
#include "s2s/secmem.h"

#define SCHEMA_VERSION 3

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS devices("
	" id TEXT PRIMARY KEY, pub BLOB NOT NULL, hs BLOB,"
	" revoked INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
	" pending INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS enrol_codes("
	" id TEXT PRIMARY KEY, code_hash BLOB NOT NULL,"
	" created INTEGER NOT NULL, expires INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS pair_requests("
	" requester TEXT NOT NULL, peer TEXT NOT NULL,"
	" profile INTEGER NOT NULL, req_id INTEGER NOT NULL,"
	" created INTEGER NOT NULL, PRIMARY KEY(requester, peer));"
	"CREATE TABLE IF NOT EXISTS pairs("
	" pair TEXT PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL,"
	" profile INTEGER NOT NULL, secret BLOB NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS sessions("
	" pair TEXT PRIMARY KEY, session INTEGER NOT NULL,"
	" sds INTEGER NOT NULL, secret BLOB NOT NULL,"
	" established INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 3,"
	" neg BLOB);"
	"CREATE TABLE IF NOT EXISTS brokers("
	" id TEXT PRIMARY KEY, info TEXT NOT NULL, updated INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS chains("
	" pair TEXT NOT NULL, dir INTEGER NOT NULL, session INTEGER NOT NULL,"
	" next_seq INTEGER NOT NULL, key BLOB NOT NULL,"
	" PRIMARY KEY(pair, dir));"
;

/* After the tables (and after the v1 -> v2 column is there). */
static const char indexes[] =
	"CREATE INDEX IF NOT EXISTS devices_pending ON devices(created)"
	" WHERE pending = 1;"
	"CREATE INDEX IF NOT EXISTS pair_requests_created ON"
	" pair_requests(created);"
	;

/* Prepared statements, by index into cs->stmt. */
enum {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_DEV_GET, S_DEV_PUT, S_CODE_DEL, S_DEV_LIST, S_DEV_COUNT,
	S_CODE_GET, S_CODE_PUT,
	S_REQ_PUT, S_REQ_GET,
	S_PENDING_COUNT,
	S_COUNT
};

static const char *const sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_DEV_GET] = "SELECT pub, revoked, created, hs FROM devices "
		      "WHERE id = ?1",
	[S_DEV_PUT] = "INSERT OR REPLACE INTO devices(id, pub, hs, revoked,"
		      " created, pending) VALUES(?1, ?2, ?3, 0, ?4, ?5)",
	[S_CODE_DEL] = "DELETE FROM enrol_codes WHERE id = ?1",
	[S_DEV_LIST] = "SELECT id, pub, revoked, created FROM devices "
		       "ORDER BY id",
	[S_DEV_COUNT] = "SELECT count(*) FROM devices WHERE revoked = 0",
	[S_CODE_GET] = "SELECT code_hash, expires FROM enrol_codes "
		       "WHERE id = ?1",
	[S_CODE_PUT] = "INSERT OR REPLACE INTO enrol_codes(id, code_hash, "
		       "created, expires) VALUES(?1, ?2, ?3, ?4)",
	[S_REQ_PUT] = "INSERT OR REPLACE INTO pair_requests(requester, peer,"
		      " profile, req_id, created) VALUES(?1, ?2, ?3, ?4, ?5)",
	[S_REQ_GET] = "SELECT profile, req_id FROM pair_requests "
		      "WHERE requester = ?1 AND peer = ?2",
	[S_PENDING_COUNT] = "SELECT count(*) FROM devices WHERE pending = 1",
};

struct ckpt;

/* The backend's state, in cs->store. */
struct emb {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	struct ckpt *ckpt;
	struct seglog *log;
	char *log_dir;
	char *wal_path;
};

#define E(cs) ((struct emb *)(cs)->store)

static sqlite3_stmt *
st(struct s2s_cs *cs, int i)
{
	sqlite3_stmt *s = E(cs)->stmt[i];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static enum s2s_err
db_err(struct s2s_cs *cs, const char *what)
{
	cs_log(MOSQ_LOG_ERR, "store: %s: %s", what, sqlite3_errmsg(E(cs)->db));
	return S2S_ERR_STORE;
}

static enum s2s_err
step_done(struct s2s_cs *cs, sqlite3_stmt *s, const char *what)
{
	int r = sqlite3_step(s);

	sqlite3_reset(s);
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		return db_err(cs, what);
	return S2S_OK;
}

static enum s2s_err
begin(struct s2s_cs *cs)
{
	return step_done(cs, st(cs, S_BEGIN), "begin");
}

static enum s2s_err
commit(struct s2s_cs *cs)
{
	return step_done(cs, st(cs, S_COMMIT), "commit");
}

static void
rollback(struct s2s_cs *cs)
{
	if (!sqlite3_get_autocommit(E(cs)->db))
		(void)step_done(cs, st(cs, S_ROLLBACK), "rollback");
}

/* Run ad-hoc SQL with up to three text parameters. */
static enum s2s_err
exec3(struct s2s_cs *cs, const char *q, const char *a, const char *b,
      const char *c)
{
	sqlite3_stmt *s;
	int r;

	if (sqlite3_prepare_v2(E(cs)->db, q, -1, &s, NULL) != SQLITE_OK)
		return db_err(cs, q);
	if (a)
		sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
	if (c)
		sqlite3_bind_text(s, 3, c, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	sqlite3_finalize(s);
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		return db_err(cs, q);
	return S2S_OK;
}

static long
count1(sqlite3_stmt *s)
{
	long n = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

/* ---- the checkpoint thread -------------------------------------------- */

#define CKPT_PAGES 1000
#define VACUUM_FREE_PAGES 256

struct ckpt {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, kick;
	sqlite3 *db;
	uint64_t runs, truncated;   /* for the tests */
};

static void
ckpt_once(struct ckpt *k)
{
	int log = -1, done = -1;
	sqlite3_stmt *s;
	long free_pages = 0;

	if (sqlite3_wal_checkpoint_v2(k->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
				      &log, &done) == SQLITE_OK) {
		k->runs++;
		/* Everything copied back: shrink the WAL file to nothing. */
		if (log > 0 && done == log &&
		    sqlite3_wal_checkpoint_v2(k->db, NULL,
					      SQLITE_CHECKPOINT_TRUNCATE, NULL,
					      NULL) == SQLITE_OK)
			k->truncated++;
	}
	if (sqlite3_prepare_v2(k->db, "PRAGMA freelist_count", -1, &s,
			       NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			free_pages = (long)sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	if (free_pages >= VACUUM_FREE_PAGES)
		(void)sqlite3_exec(k->db, "PRAGMA incremental_vacuum", NULL,
				   NULL, NULL);
}

static void *
ckpt_main(void *arg)
{
	struct ckpt *k = arg;
	struct timespec ts;

	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		if (!k->kick) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			(void)pthread_cond_timedwait(&k->cond, &k->lock, &ts);
		}
		if (k->stop)
			break;
		k->kick = false;
		pthread_mutex_unlock(&k->lock);
		ckpt_once(k);
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct ckpt *k = arg;

	(void)db;
	(void)name;
	if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&k->lock);
		k->kick = true;
		pthread_cond_signal(&k->cond);
		pthread_mutex_unlock(&k->lock);
	}
	return SQLITE_OK;
}

static void
ckpt_stop(struct s2s_cs *cs)
{
	struct ckpt *k = E(cs)->ckpt;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	ckpt_once(k);
	sqlite3_close(k->db);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	if (E(cs)->db)
		sqlite3_wal_hook(E(cs)->db, NULL, NULL);
	free(k);
	E(cs)->ckpt = NULL;
}

static enum s2s_err
ckpt_start(struct s2s_cs *cs)
{
	struct ckpt *k = calloc(1, sizeof(*k));
	char *msg = NULL;

	if (!k)
		return S2S_ERR_NOMEM;
	if (sqlite3_open_v2(cs->opt.store, &k->db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		cs_log(MOSQ_LOG_ERR, "store: checkpoint connection: %s",
		       k->db ? sqlite3_errmsg(k->db) : "out of memory");
		sqlite3_close(k->db);
		free(k);
		return S2S_ERR_STORE;
	}
	sqlite3_busy_timeout(k->db, 1000);
	/*
	 * Read the database once: only then does this connection see that it
	 * is in WAL mode and open the WAL; until it has, every checkpoint it
	 * runs is a silent no-op.
	 */
	if (sqlite3_exec(k->db, "PRAGMA journal_size_limit=1048576;"
			 "SELECT count(*) FROM sqlite_master;", NULL, NULL,
			 &msg) != SQLITE_OK) {
		cs_log(MOSQ_LOG_ERR, "store: checkpoint connection: %s",
		       msg ? msg : "read");
		sqlite3_free(msg);
		sqlite3_close(k->db);
		free(k);
		return S2S_ERR_STORE;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	if (pthread_create(&k->thread, NULL, ckpt_main, k) != 0) {
		sqlite3_close(k->db);
		pthread_cond_destroy(&k->cond);
		pthread_mutex_destroy(&k->lock);
		free(k);
		return S2S_ERR_STORE;
	}
	E(cs)->ckpt = k;
	sqlite3_wal_hook(E(cs)->db, wal_hook, k);
	return S2S_OK;
}

/* ---- the log ------------------------------------------------------------ */

static void
log_say(bool error, const char *msg)
{
	cs_log(error ? MOSQ_LOG_ERR : MOSQ_LOG_NOTICE, "%s", msg);
}

static bool
table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt *s;
	bool yes = false;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE "
			       "type = 'table' AND name = ?1", -1, &s,
			       NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	yes = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return yes;
}

static bool
column_exists(sqlite3 *db, const char *table, const char *col)
{
	sqlite3_stmt *s;
	bool yes = false;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) "
			       "WHERE name = ?2", -1, &s, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, col, -1, SQLITE_STATIC);
	yes = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return yes;
}

/*
 * Schema 1 kept packages in SQLite: copy them into the log (their chains
 * are current in the chains table), drop the table, and turn on
 * incremental vacuum (a one-time VACUUM) so that the space comes back.
 */
static enum s2s_err
migrate_v1(struct s2s_cs *cs)
{
	struct emb *e = E(cs);
	sqlite3_stmt *s;
	long n = 0;
	int r;
	enum s2s_err rc = S2S_OK;

	if (table_exists(e->db, "packages")) {
		if (sqlite3_prepare_v2(e->db, "SELECT p.pair, p.sender, "
				       "p.session, p.seq, p.ts, p.data, "
				       "CASE WHEN p.sender = q.a THEN 0 ELSE 1 "
				       "END FROM packages p JOIN pairs q ON "
				       "q.pair = p.pair ORDER BY p.id", -1, &s,
				       NULL) != SQLITE_OK)
			return db_err(cs, "migrate packages");
		while (rc == S2S_OK && (r = sqlite3_step(s)) == SQLITE_ROW) {
			struct seglog_rec rec;

			memset(&rec, 0, sizeof(rec));
			rec.type = SEGLOG_PKG;
			rec.flags = SEGLOG_F_RELOC;
			rec.dir = (uint8_t)sqlite3_column_int(s, 6);
			snprintf(rec.pair, sizeof(rec.pair), "%s",
				 (const char *)sqlite3_column_text(s, 0));
			snprintf(rec.sender, sizeof(rec.sender), "%s",
				 (const char *)sqlite3_column_text(s, 1));
			rec.session = (uint64_t)sqlite3_column_int64(s, 2);
			rec.seq = (uint64_t)sqlite3_column_int64(s, 3);
			rec.ts = sqlite3_column_int64(s, 4);
			rec.pkg = sqlite3_column_blob(s, 5);
			rec.pkg_len = (size_t)sqlite3_column_bytes(s, 5);
			rc = seglog_append(e->log, &rec);
			n++;
		}
		sqlite3_finalize(s);
		if (rc != S2S_OK)
			return rc;
		seglog_housekeep(e->log);
		if (sqlite3_exec(e->db, "DROP TABLE packages", NULL, NULL,
				 NULL) != SQLITE_OK)
			return db_err(cs, "migrate: drop packages");
		cs_log(MOSQ_LOG_NOTICE, "store: %ld packages moved from the "
		       "database into the log %s", n, e->log_dir);
	}
	if (sqlite3_exec(e->db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;",
			 NULL, NULL, NULL) != SQLITE_OK)
		return db_err(cs, "migrate: vacuum");
	return S2S_OK;
}

static enum s2s_err
emb_open(struct s2s_cs *cs)
{
	struct seglog_opts lo;
	struct emb *e;
	sqlite3_stmt *s;
	int version = 0;
	char *msg = NULL;
	bool fresh;
	enum s2s_err rc;

	e = calloc(1, sizeof(*e));
	if (!e)
		return S2S_ERR_NOMEM;
	cs->store = e;
	e->log_dir = malloc(strlen(cs->opt.store) + 8);
	e->wal_path = malloc(strlen(cs->opt.store) + 8);
	if (!e->log_dir || !e->wal_path)
		return S2S_ERR_NOMEM;
	sprintf(e->log_dir, "%s-log", cs->opt.store);
	sprintf(e->wal_path, "%s-wal", cs->opt.store);
	if (sqlite3_open_v2(cs->opt.store, &e->db, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		cs_log(MOSQ_LOG_ERR, "store %s: %s", cs->opt.store,
		       e->db ? sqlite3_errmsg(e->db) : "out of memory");
		return S2S_ERR_STORE;
	}
	sqlite3_busy_timeout(e->db, 2000);
	fresh = !table_exists(e->db, "schema_version");
	/* auto_vacuum takes effect only before the first table exists. */
	if ((fresh && sqlite3_exec(e->db, "PRAGMA auto_vacuum=INCREMENTAL;",
				   NULL, NULL, &msg) != SQLITE_OK) ||
	    sqlite3_exec(e->db, "PRAGMA journal_mode=WAL;"
			 "PRAGMA synchronous=NORMAL;"
			 "PRAGMA journal_size_limit=1048576;"
			 "PRAGMA foreign_keys=ON;", NULL, NULL, &msg) !=
	    SQLITE_OK ||
	    sqlite3_exec(e->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		cs_log(MOSQ_LOG_ERR, "store %s: %s", cs->opt.store,
		       msg ? msg : "schema");
		sqlite3_free(msg);
		return S2S_ERR_STORE;
	}
	if (sqlite3_prepare_v2(e->db, "SELECT max(version) FROM "
			       "schema_version", -1, &s, NULL) != SQLITE_OK)
		return db_err(cs, "schema_version");
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > SCHEMA_VERSION) {
		cs_log(MOSQ_LOG_ERR, "store %s: schema version %d is newer "
		       "than this plugin's (%d)", cs->opt.store, version,
		       SCHEMA_VERSION);
		return S2S_ERR_VERSION;
	}
	if (version == 1 &&
	    sqlite3_exec(e->db, "ALTER TABLE devices ADD COLUMN pending "
			 "INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return db_err(cs, "migrate devices");
	/* v3: sessions keep their negotiation state (cluster). */
	if (version >= 1 && version < 3 &&
	    !column_exists(e->db, "sessions", "state") &&
	    sqlite3_exec(e->db, "ALTER TABLE sessions ADD COLUMN state "
			 "INTEGER NOT NULL DEFAULT 3; ALTER TABLE sessions "
			 "ADD COLUMN neg BLOB;", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(cs, "migrate sessions");
	if (sqlite3_exec(e->db, indexes, NULL, NULL, &msg) != SQLITE_OK) {
		cs_log(MOSQ_LOG_ERR, "store %s: %s", cs->opt.store,
		       msg ? msg : "indexes");
		sqlite3_free(msg);
		return S2S_ERR_STORE;
	}
	memset(&lo, 0, sizeof(lo));
	lo.dir = e->log_dir;
	lo.segment_bytes = cs->opt.store_segment;
	lo.sync_ms = cs->opt.store_sync_ms;
	lo.keep_per_pair = cs->opt.retention_packages;
	lo.keep_age = cs->opt.retention_age;
	lo.log = log_say;
	rc = seglog_open(&lo, &e->log);
	if (rc != S2S_OK)
		return S2S_ERR_STORE;
	if (version == 1) {
		rc = migrate_v1(cs);
		if (rc != S2S_OK)
			return rc;
	}
	if (version < SCHEMA_VERSION &&
	    sqlite3_exec(e->db, version == 0 ?
			 "INSERT INTO schema_version VALUES(3)" :
			 "UPDATE schema_version SET version = 3", NULL, NULL,
			 NULL) != SQLITE_OK)
		return db_err(cs, "schema_version");
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(e->db, sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &e->stmt[i],
				       NULL) != SQLITE_OK)
			return db_err(cs, sql[i]);
	}
	return ckpt_start(cs);
}

static void
emb_close(struct s2s_cs *cs)
{
	struct emb *e = E(cs);

	if (!e)
		return;
	ckpt_stop(cs);
	seglog_close(e->log);
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(e->stmt[i]);
	if (e->db)
		sqlite3_close(e->db);
	free(e->log_dir);
	free(e->wal_path);
	free(e);
	cs->store = NULL;
}

/* ---- devices ----------------------------------------------------------- */

static void
ad_make(char *buf, size_t n, const char *kind, const char *a, const char *b)
{
	snprintf(buf, n, "%s:%s:%s", kind, a, b ? b : "");
}

static enum s2s_err
emb_device_get(struct s2s_cs *cs, const char *id,
		    struct cs_device_rec *rec, uint8_t **hs, size_t *hs_len)
{
	sqlite3_stmt *s = st(cs, S_DEV_GET);
	enum s2s_err rc = S2S_OK;
	char ad[128];
	int r;

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	r = sqlite3_step(s);
	if (r == SQLITE_DONE) {
		rc = S2S_ERR_NOT_FOUND;
		goto out;
	}
	if (r != SQLITE_ROW) {
		rc = db_err(cs, "device get");
		goto out;
	}
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->id, sizeof(rec->id), "%s", id);
	if (sqlite3_column_bytes(s, 0) != S2S_P256_PUB_LEN) {
		rc = S2S_ERR_STORE;
		goto out;
	}
	memcpy(rec->pub, sqlite3_column_blob(s, 0), S2S_P256_PUB_LEN);
	rec->revoked = sqlite3_column_int(s, 1) != 0;
	rec->created = sqlite3_column_int64(s, 2);
	if (hs) {
		*hs = NULL;
		*hs_len = 0;
		if (sqlite3_column_type(s, 3) != SQLITE_BLOB) {
			rc = S2S_ERR_NOT_FOUND;
			goto out;
		}
		ad_make(ad, sizeof(ad), "dev", id, NULL);
		rc = cs_unseal(cs, ad, sqlite3_column_blob(s, 3),
			       (size_t)sqlite3_column_bytes(s, 3), hs, hs_len);
	}
out:
	sqlite3_reset(s);
	return rc;
}

static enum s2s_err
emb_device_put(struct s2s_cs *cs, const char *id,
		    const uint8_t pub[S2S_P256_PUB_LEN], const uint8_t *hs,
		    size_t hs_len, bool consume_code)
{
	sqlite3_stmt *s;
	uint8_t *sealed = NULL;
	size_t sealed_len;
	char ad[128];
	enum s2s_err rc;

	/* Open enrolment: a bounded number of unpaired registrations. */
	if (!consume_code && count1(st(cs, S_PENDING_COUNT)) >=
	    (long)cs->opt.enroll_pending_max) {
		cs_log(MOSQ_LOG_WARNING, "store: %llu open enrolments are "
		       "pending (plugin_opt_enroll_pending_max); '%s' refused",
		       (unsigned long long)cs->opt.enroll_pending_max, id);
		return S2S_ERR_TOO_BIG;
	}
	ad_make(ad, sizeof(ad), "dev", id, NULL);
	rc = cs_seal(cs, ad, hs, hs_len, &sealed, &sealed_len);
	if (rc != S2S_OK)
		return rc;
	rc = begin(cs);
	if (rc != S2S_OK)
		goto out;
	s = st(cs, S_DEV_PUT);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, pub, S2S_P256_PUB_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, cs_now_s());
	sqlite3_bind_int(s, 5, consume_code ? 0 : 1);
	rc = step_done(cs, s, "device put");
	if (rc == S2S_OK && consume_code) {
		s = st(cs, S_CODE_DEL);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		rc = step_done(cs, s, "code consume");
	}
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
out:
	free(sealed);
	return rc;
}

static enum s2s_err
emb_device_revoke(struct s2s_cs *cs, const char *id)
{
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	rc = exec3(cs, "UPDATE devices SET revoked = 1, hs = NULL "
		   "WHERE id = ?1", id, NULL, NULL);
	if (rc == S2S_OK)
		rc = exec3(cs, "DELETE FROM pair_requests WHERE requester = ?1"
			   " OR peer = ?1", id, NULL, NULL);
	if (rc == S2S_OK)
		rc = exec3(cs, "DELETE FROM enrol_codes WHERE id = ?1", id,
			   NULL, NULL);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

static enum s2s_err
emb_device_list(struct s2s_cs *cs,
		     void (*cb)(void *arg, const struct cs_device_rec *r),
		     void *arg)
{
	sqlite3_stmt *s = st(cs, S_DEV_LIST);
	struct cs_device_rec rec;
	int r;

	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.id, sizeof(rec.id), "%s",
			 (const char *)sqlite3_column_text(s, 0));
		if (sqlite3_column_bytes(s, 1) == S2S_P256_PUB_LEN)
			memcpy(rec.pub, sqlite3_column_blob(s, 1),
			       S2S_P256_PUB_LEN);
		rec.revoked = sqlite3_column_int(s, 2) != 0;
		rec.created = sqlite3_column_int64(s, 3);
		cb(arg, &rec);
	}
	sqlite3_reset(s);
	return r == SQLITE_DONE ? S2S_OK : db_err(cs, "device list");
}

static long
emb_device_count(struct s2s_cs *cs)
{
	return count1(st(cs, S_DEV_COUNT));
}

/* ---- enrolment codes -------------------------------------------------- */

static void
code_hash(const char *id, const uint8_t *code, size_t len,
	  uint8_t out[S2S_SHA256_LEN])
{
	static const char label[] = "s2s/v1/enrol";
	struct s2s_iov v[3] = {
		{ label, sizeof(label) }, { id, strlen(id) + 1 }, { code, len },
	};

	s2s_sha256v(v, 3, out);
}

static enum s2s_err
emb_code_add(struct s2s_cs *cs, const char *id, const uint8_t *code,
		  size_t len, int64_t expires)
{
	sqlite3_stmt *s = st(cs, S_CODE_PUT);
	uint8_t h[S2S_SHA256_LEN];

	code_hash(id, code, len, h);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, h, sizeof(h), SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, cs_now_s());
	sqlite3_bind_int64(s, 4, expires);
	return step_done(cs, s, "code add");
}

static enum s2s_err
emb_code_check(struct s2s_cs *cs, const char *id, const uint8_t *code,
		    size_t len, int64_t now)
{
	sqlite3_stmt *s = st(cs, S_CODE_GET);
	uint8_t h[S2S_SHA256_LEN];
	enum s2s_err rc = S2S_ERR_DENIED;

	if (len == 0)
		return S2S_ERR_DENIED;
	code_hash(id, code, len, h);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_column_bytes(s, 0) == S2S_SHA256_LEN &&
	    (sqlite3_column_int64(s, 1) == 0 ||
	     sqlite3_column_int64(s, 1) >= now) &&
	    s2s_ct_equal(h, sqlite3_column_blob(s, 0), S2S_SHA256_LEN))
		rc = S2S_OK;
	sqlite3_reset(s);
	return rc;
}

/* ---- pairing wishes --------------------------------------------------- */

static enum s2s_err
emb_pairreq_put(struct s2s_cs *cs, const char *requester,
		     const char *peer, int profile, uint64_t req_id)
{
	sqlite3_stmt *s = st(cs, S_REQ_PUT);

	sqlite3_bind_text(s, 1, requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, profile);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)req_id);
	sqlite3_bind_int64(s, 5, cs_now_s());
	return step_done(cs, s, "pair request");
}

static enum s2s_err
emb_pairreq_get(struct s2s_cs *cs, const char *requester,
		     const char *peer, int *profile, uint64_t *req_id)
{
	sqlite3_stmt *s = st(cs, S_REQ_GET);
	enum s2s_err rc = S2S_ERR_NOT_FOUND;

	sqlite3_bind_text(s, 1, requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, peer, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*profile = sqlite3_column_int(s, 0);
		*req_id = (uint64_t)sqlite3_column_int64(s, 1);
		rc = S2S_OK;
	}
	sqlite3_reset(s);
	return rc;
}

/* ---- pairs ------------------------------------------------------------ */

#define PAIR_SECRET_LEN (1 + S2S_SHK_MAX + 2 * S2S_RV_LEN)

static enum s2s_err
emb_pair_put(struct s2s_cs *cs, const struct cs_pair *p,
		  const uint16_t rv[S2S_RV_LEN])
{
	uint8_t secret[PAIR_SECRET_LEN], *sealed = NULL;
	size_t sealed_len;
	sqlite3_stmt *s = NULL;
	char ad[192];
	enum s2s_err rc;

	memset(secret, 0, sizeof(secret));
	secret[0] = p->shk_len;
	memcpy(secret + 1, p->shk, p->shk_len);
	s2s_bio_rv_serialize(rv, secret + 1 + S2S_SHK_MAX);
	ad_make(ad, sizeof(ad), "pair", p->id, NULL);
	rc = cs_seal(cs, ad, secret, sizeof(secret), &sealed, &sealed_len);
	S2S_WIPE(secret);
	if (rc != S2S_OK)
		return rc;
	rc = begin(cs);
	if (rc != S2S_OK)
		goto out;
	if (sqlite3_prepare_v2(E(cs)->db, "INSERT OR IGNORE INTO pairs(pair, "
			       "a, b, profile, secret, created) "
			       "VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1, &s,
			       NULL) != SQLITE_OK) {
		rc = db_err(cs, "pair put");
		goto fail;
	}
	sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, p->m[0], -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, p->m[1], -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, (int)p->profile);
	sqlite3_bind_blob(s, 5, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, p->created);
	rc = step_done(cs, s, "pair put");
	if (rc == S2S_OK && sqlite3_changes(E(cs)->db) == 0)
		rc = S2S_ERR_REPLAY;    /* the pair exists: keep it */
	if (rc == S2S_OK)
		rc = exec3(cs, "DELETE FROM pair_requests WHERE (requester = ?1"
			   " AND peer = ?2) OR (requester = ?2 AND peer = ?1)",
			   p->m[0], p->m[1], NULL);
	if (rc == S2S_OK)
		rc = exec3(cs, "UPDATE devices SET pending = 0 WHERE "
			   "pending = 1 AND id IN (?1, ?2)", p->m[0], p->m[1],
			   NULL);
	if (rc == S2S_OK)
		rc = commit(cs);
fail:
	if (rc != S2S_OK)
		rollback(cs);
out:
	sqlite3_finalize(s);
	free(sealed);
	return rc;
}

static enum s2s_err
pair_secret(struct s2s_cs *cs, const char *pair, uint8_t **out)
{
	sqlite3_stmt *s;
	size_t len = 0;
	char ad[192];
	enum s2s_err rc = S2S_ERR_NOT_FOUND;

	*out = NULL;
	if (sqlite3_prepare_v2(E(cs)->db, "SELECT secret FROM pairs WHERE "
			       "pair = ?1", -1, &s, NULL) != SQLITE_OK)
		return db_err(cs, "pair secret");
	sqlite3_bind_text(s, 1, pair, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		ad_make(ad, sizeof(ad), "pair", pair, NULL);
		rc = cs_unseal(cs, ad, sqlite3_column_blob(s, 0),
			       (size_t)sqlite3_column_bytes(s, 0), out, &len);
		if (rc == S2S_OK && len != PAIR_SECRET_LEN) {
			s2s_memzero(*out, len);
			free(*out);
			*out = NULL;
			rc = S2S_ERR_STORE;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

static enum s2s_err
emb_pair_rv(struct s2s_cs *cs, const char *pair,
		 uint16_t rv[S2S_RV_LEN])
{
	uint8_t *sec;
	const uint8_t *b;
	enum s2s_err rc = pair_secret(cs, pair, &sec);

	if (rc != S2S_OK)
		return rc;
	b = sec + 1 + S2S_SHK_MAX;
	for (size_t i = 0; i < S2S_RV_LEN; i++)
		rv[i] = (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
	s2s_memzero(sec, PAIR_SECRET_LEN);
	free(sec);
	return S2S_OK;
}

static enum s2s_err
emb_pair_delete(struct s2s_cs *cs, const char *pair)
{
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	rc = exec3(cs, "DELETE FROM pairs WHERE pair = ?1", pair, NULL, NULL);
	if (rc == S2S_OK)
		rc = exec3(cs, "DELETE FROM sessions WHERE pair = ?1", pair,
			   NULL, NULL);
	if (rc == S2S_OK)
		rc = exec3(cs, "DELETE FROM chains WHERE pair = ?1", pair,
			   NULL, NULL);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK) {
		rollback(cs);
		return rc;
	}
	/* After the commit: a crash in between leaves packages of a pair
	 * that is gone, which nothing can fetch and retention frees. */
	return seglog_drop_pair(E(cs)->log, pair);
}

/* ---- sessions and chains ----------------------------------------------- */


static void
neg_ad(char *buf, size_t n, const char *pair, uint64_t t)
{
	snprintf(buf, n, "neg:%s:%llu", pair, (unsigned long long)t);
}

/* Write session x of p (any state) inside the caller's transaction. */
static enum s2s_err
sess_write(struct s2s_cs *cs, const struct cs_pair *p,
	   const struct cs_session *x)
{
	uint8_t sec[CS_SESS_SECRET_LEN], neg[CS_SESS_NEG_LEN];
	uint8_t *sealed = NULL, *nsealed = NULL, *ck[2] = { NULL, NULL };
	size_t sealed_len, nsealed_len = 0, ck_len[2];
	bool est = x->state == CS_SESS_ESTABLISHED;
	sqlite3_stmt *s = NULL;
	char ad[256];
	enum s2s_err rc;

	cs_session_secret_pack(x, sec);
	cs_sess_ad(ad, sizeof(ad), p->id, x->t);
	rc = cs_seal(cs, ad, sec, sizeof(sec), &sealed, &sealed_len);
	S2S_WIPE(sec);
	if (rc == S2S_OK && !est) {
		cs_session_neg_pack(x, neg);
		neg_ad(ad, sizeof(ad), p->id, x->t);
		rc = cs_seal(cs, ad, neg, sizeof(neg), &nsealed, &nsealed_len);
		S2S_WIPE(neg);
	}
	for (int d = 0; rc == S2S_OK && est && d < 2; d++)
		rc = cs_chain_seal(cs, p->id, d, &x->chain[d], &ck[d], &ck_len[d]);
	if (rc != S2S_OK)
		goto out;
	rc = exec3(cs, "DELETE FROM chains WHERE pair = ?1", p->id, NULL,
		   NULL);
	if (rc != S2S_OK)
		goto out;
	if (sqlite3_prepare_v2(E(cs)->db, "INSERT OR REPLACE INTO sessions(pair,"
			       " session, sds, secret, established, state, neg)"
			       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &s,
			       NULL) != SQLITE_OK) {
		rc = db_err(cs, "session put");
		goto out;
	}
	sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)x->t);
	sqlite3_bind_int(s, 3, x->sds);
	sqlite3_bind_blob(s, 4, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, cs_now_s());
	sqlite3_bind_int(s, 6, (int)x->state);
	if (nsealed)
		sqlite3_bind_blob(s, 7, nsealed, (int)nsealed_len,
				  SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 7);
	rc = step_done(cs, s, "session put");
	sqlite3_finalize(s);
	s = NULL;
	if (rc != S2S_OK || !est)
		goto out;
	if (sqlite3_prepare_v2(E(cs)->db, "INSERT INTO chains(pair, dir, "
			       "session, next_seq, key) VALUES(?1, ?2, ?3, "
			       "?4, ?5)", -1, &s, NULL) != SQLITE_OK) {
		rc = db_err(cs, "chain put");
		goto out;
	}
	for (int d = 0; rc == S2S_OK && d < 2; d++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, d);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)x->t);
		sqlite3_bind_int64(s, 4, (sqlite3_int64)x->chain[d].next_seq);
		sqlite3_bind_blob(s, 5, ck[d], (int)ck_len[d], SQLITE_STATIC);
		rc = step_done(cs, s, "chain put");
	}
out:
	sqlite3_finalize(s);
	free(sealed);
	free(nsealed);
	free(ck[0]);
	free(ck[1]);
	return rc;
}

static enum s2s_err
emb_session_put(struct s2s_cs *cs, const struct cs_pair *p)
{
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	rc = sess_write(cs, p, p->sess);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

static enum s2s_err sess_read(struct s2s_cs *cs, const struct cs_pair *p,
			      struct cs_session **out);

static enum s2s_err
emb_session_get(struct s2s_cs *cs, const struct cs_pair *p,
		struct cs_session **out)
{
	return sess_read(cs, p, out);
}

static enum s2s_err
emb_session_cas(struct s2s_cs *cs, const struct cs_pair *p,
		const struct cs_session *x, uint64_t expect_t,
		int expect_state)
{
	sqlite3_stmt *s = NULL;
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	if (expect_t != 0) {
		bool same = false;

		if (sqlite3_prepare_v2(E(cs)->db, "SELECT session, state FROM "
				       "sessions WHERE pair = ?1", -1, &s,
				       NULL) != SQLITE_OK) {
			rc = db_err(cs, "session cas");
			goto fail;
		}
		sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			same = (uint64_t)sqlite3_column_int64(s, 0) ==
			       expect_t && sqlite3_column_int(s, 1) ==
			       expect_state;
		sqlite3_finalize(s);
		if (!same) {
			rc = S2S_ERR_STATE;
			goto fail;
		}
	}
	if (x) {
		rc = sess_write(cs, p, x);
	} else {
		rc = exec3(cs, "DELETE FROM sessions WHERE pair = ?1", p->id,
			   NULL, NULL);
		if (rc == S2S_OK)
			rc = exec3(cs, "DELETE FROM chains WHERE pair = ?1",
				   p->id, NULL, NULL);
	}
	if (rc == S2S_OK)
		rc = commit(cs);
fail:
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

static enum s2s_err
emb_broker_put(struct s2s_cs *cs, const char *broker, const char *info,
	       int64_t now)
{
	sqlite3_stmt *s;
	enum s2s_err rc;

	if (sqlite3_prepare_v2(E(cs)->db, "INSERT OR REPLACE INTO brokers(id, "
			       "info, updated) VALUES(?1, ?2, ?3)", -1, &s,
			       NULL) != SQLITE_OK)
		return db_err(cs, "broker put");
	sqlite3_bind_text(s, 1, broker, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, info, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	rc = step_done(cs, s, "broker put");
	sqlite3_finalize(s);
	return rc;
}

static enum s2s_err
emb_broker_list(struct s2s_cs *cs, cs_broker_cb cb, void *arg)
{
	sqlite3_stmt *s;
	int r;

	if (sqlite3_prepare_v2(E(cs)->db, "SELECT id, info, updated FROM "
			       "brokers ORDER BY id", -1, &s, NULL) !=
	    SQLITE_OK)
		return db_err(cs, "broker list");
	while ((r = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, (const char *)sqlite3_column_text(s, 0),
		   (const char *)sqlite3_column_text(s, 1),
		   sqlite3_column_int64(s, 2));
	sqlite3_finalize(s);
	return r == SQLITE_DONE ? S2S_OK : db_err(cs, "broker list");
}

static enum s2s_err
emb_session_delete(struct s2s_cs *cs, const char *pair)
{
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	rc = exec3(cs, "DELETE FROM sessions WHERE pair = ?1", pair, NULL,
		   NULL);
	if (rc == S2S_OK)
		rc = exec3(cs, "DELETE FROM chains WHERE pair = ?1", pair, NULL,
			   NULL);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

static enum s2s_err
emb_accept(struct s2s_cs *cs, const struct cs_pair *p, int dir,
	   const struct s2s_chain *advanced, const uint8_t *pkg,
	   size_t pkg_len)
{
	struct seglog_rec r;
	uint8_t *ck = NULL;
	size_t ck_len = 0;
	enum s2s_err rc;

	if (advanced->next_seq < 2)
		return S2S_ERR_INVAL;
	rc = cs_chain_seal(cs, p->id, dir, advanced, &ck, &ck_len);
	if (rc != S2S_OK)
		return rc;
	r.type = SEGLOG_PKG;
	r.flags = 0;
	r.dir = (uint8_t)dir;
	r.ts = cs_now_s();
	r.session = advanced->session;
	r.seq = advanced->next_seq - 1;
	memcpy(r.pair, p->id, strlen(p->id) + 1);
	memcpy(r.sender, p->m[dir], strlen(p->m[dir]) + 1);
	r.chain = ck;
	r.chain_len = ck_len;
	r.pkg = pkg;
	r.pkg_len = pkg_len;
	rc = seglog_append(E(cs)->log, &r);
	free(ck);       /* sealed: not a secret */
	return rc;
}

static enum s2s_err
emb_fetch(struct s2s_cs *cs, const char *pair, const char *sender,
	  uint64_t session, uint64_t from, uint64_t to, unsigned max,
	  size_t max_bytes, cs_fetch_cb cb, void *arg)
{
	return seglog_fetch(E(cs)->log, pair, sender, session, from, to, max,
			    max_bytes, cb, arg);
}

static long
emb_package_count(struct s2s_cs *cs, const char *pair)
{
	return seglog_count(E(cs)->log, pair);
}

/* Does query (one text parameter) return a row? */
static bool
exists(struct s2s_cs *cs, const char *q, const char *a)
{
	sqlite3_stmt *s;
	bool yes = false;

	if (sqlite3_prepare_v2(E(cs)->db, q, -1, &s, NULL) != SQLITE_OK)
		return true;            /* let the transaction report it */
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	yes = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return yes;
}

/* Open enrolments never paired within enroll_expiry, and old wishes. */
static void
expire_enrolments(struct s2s_cs *cs, int64_t now)
{
	char cut[32];
	long n = 0;

	if (!cs->opt.enroll_expiry)
		return;
	snprintf(cut, sizeof(cut), "%lld",
		 (long long)(now - (int64_t)cs->opt.enroll_expiry));
	/* Usually nothing is due: look before taking the write lock. */
	if (!exists(cs, "SELECT 1 FROM devices WHERE pending = 1 AND created"
		    " < CAST(?1 AS INTEGER) LIMIT 1", cut) &&
	    !exists(cs, "SELECT 1 FROM pair_requests WHERE created < "
		    "CAST(?1 AS INTEGER) LIMIT 1", cut) &&
	    !exists(cs, "SELECT 1 FROM enrol_codes WHERE expires > 0 AND "
		    "expires < CAST(?1 AS INTEGER) LIMIT 1", cut))
		return;
	if (begin(cs) != S2S_OK)
		return;
	if (exec3(cs, "DELETE FROM pair_requests WHERE created < CAST(?1 AS "
		  "INTEGER) OR requester IN (SELECT id FROM devices WHERE "
		  "pending = 1 AND created < CAST(?1 AS INTEGER)) OR peer IN "
		  "(SELECT id FROM devices WHERE pending = 1 AND created < "
		  "CAST(?1 AS INTEGER))", cut, NULL, NULL) == S2S_OK &&
	    exec3(cs, "DELETE FROM devices WHERE pending = 1 AND created < "
		  "CAST(?1 AS INTEGER)", cut, NULL, NULL) == S2S_OK) {
		n = sqlite3_changes(E(cs)->db);
		if (exec3(cs, "DELETE FROM enrol_codes WHERE expires > 0 AND "
			  "expires < CAST(?1 AS INTEGER)", cut, NULL, NULL) ==
		    S2S_OK && commit(cs) == S2S_OK) {
			if (n > 0)
				cs_log(MOSQ_LOG_NOTICE, "store: %ld open "
				       "enrolments expired unpaired", n);
			return;
		}
	}
	rollback(cs);
}

static long
emb_retention(struct s2s_cs *cs, int64_t now)
{
	expire_enrolments(cs, now);
	return seglog_retain(E(cs)->log, now);
}

static uint64_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static void
emb_usage(struct s2s_cs *cs, struct cs_store_usage *u)
{
	struct seglog_usage lu;

	seglog_usage(E(cs)->log, &lu);
	u->db_bytes = file_size(cs->opt.store) + file_size(E(cs)->wal_path);
	u->log_bytes = lu.bytes;
	u->log_segments = lu.segments;
	u->live_packages = lu.live_packages;
	u->live_bytes = lu.live_bytes;
	u->pending_enrolments = (uint64_t)count1(st(cs, S_PENDING_COUNT));
}

/* ---- loading at start --------------------------------------------------- */

static enum s2s_err
sess_read(struct s2s_cs *cs, const struct cs_pair *p, struct cs_session **out)
{
	sqlite3_stmt *s = NULL, *c = NULL;
	struct cs_session *x = NULL;
	uint8_t *sec = NULL;
	size_t len = 0;
	char ad[256];
	enum s2s_err rc = S2S_OK;
	int found = 0;

	if (sqlite3_prepare_v2(E(cs)->db, "SELECT session, sds, secret, state, "
			       "neg FROM sessions WHERE pair = ?1", -1, &s, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(E(cs)->db, "SELECT next_seq, key FROM chains "
			       "WHERE pair = ?1 AND dir = ?2 AND session = ?3",
			       -1, &c, NULL) != SQLITE_OK) {
		rc = db_err(cs, "session load");
		goto out;
	}
	*out = NULL;
	sqlite3_bind_text(s, 1, p->id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW) {
		rc = S2S_ERR_NOT_FOUND;
		goto out;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		rc = S2S_ERR_NOMEM;
		goto out;
	}
	x->t = (uint64_t)sqlite3_column_int64(s, 0);
	x->sds = sqlite3_column_int(s, 1) ? 1 : 0;
	x->state = (enum cs_sess_state)sqlite3_column_int(s, 3);
	if (x->state < CS_SESS_KEYS_SENT || x->state > CS_SESS_ESTABLISHED) {
		rc = S2S_ERR_STORE;
		goto out;
	}
	cs_sess_ad(ad, sizeof(ad), p->id, x->t);
	rc = cs_unseal(cs, ad, sqlite3_column_blob(s, 2),
		       (size_t)sqlite3_column_bytes(s, 2), &sec, &len);
	if (rc != S2S_OK || len != CS_SESS_SECRET_LEN ||
	    !cs_session_secret_unpack(x, sec)) {
		rc = rc != S2S_OK ? rc : S2S_ERR_STORE;
		goto out;
	}
	if (x->state != CS_SESS_ESTABLISHED) {
		uint8_t *ng = NULL;
		size_t nl = 0;

		neg_ad(ad, sizeof(ad), p->id, x->t);
		rc = cs_unseal(cs, ad, sqlite3_column_blob(s, 4),
			       (size_t)sqlite3_column_bytes(s, 4), &ng, &nl);
		if (rc == S2S_OK && nl == CS_SESS_NEG_LEN)
			cs_session_neg_unpack(x, ng);
		else if (rc == S2S_OK)
			rc = S2S_ERR_STORE;
		if (ng) {
			s2s_memzero(ng, nl);
			free(ng);
		}
		if (rc == S2S_OK)
			found = 1;
		goto out;
	}
	for (int d = 0; d < 2; d++) {
		struct s2s_chain *ch = &x->chain[d];
		uint8_t *k = NULL, lchain[SEGLOG_CHAIN_MAX];
		size_t kl = 0, lchain_len = 0;
		uint64_t lseq = 0;

		rc = s2s_chain_init(ch, p->profile, x->t, x->skcs, x->sk,
				    x->sk_len, p->shk, p->shk_len);
		if (rc != S2S_OK)
			goto out;
		sqlite3_reset(c);
		sqlite3_bind_text(c, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(c, 2, d);
		sqlite3_bind_int64(c, 3, (sqlite3_int64)x->t);
		if (sqlite3_step(c) != SQLITE_ROW) {
			rc = S2S_ERR_STORE;
			goto out;
		}
		ch->next_seq = (uint64_t)sqlite3_column_int64(c, 0);
		/* The log has the chain after the last accepted package. */
		if (seglog_chain(E(cs)->log, p->id, d, x->t, &lseq, lchain,
				 &lchain_len) && lseq + 1 > ch->next_seq) {
			ch->next_seq = lseq + 1;
			cs_chain_ad(ad, sizeof(ad), p->id, d, x->t, ch->next_seq);
			rc = cs_unseal(cs, ad, lchain, lchain_len, &k, &kl);
		} else {
			cs_chain_ad(ad, sizeof(ad), p->id, d, x->t, ch->next_seq);
			rc = cs_unseal(cs, ad, sqlite3_column_blob(c, 1),
				       (size_t)sqlite3_column_bytes(c, 1), &k,
				       &kl);
		}
		if (rc == S2S_OK && (kl != CS_CHAIN_SECRET_LEN ||
				     k[0] > S2S_SK_MAX))
			rc = S2S_ERR_STORE;
		if (rc == S2S_OK) {
			ch->sk_len = k[0];
			memcpy(ch->sk, k + 1, k[0]);
		}
		if (k) {
			s2s_memzero(k, kl);
			free(k);
		}
		if (rc != S2S_OK)
			goto out;
	}
	found = 1;
out:
	if (sec) {
		s2s_memzero(sec, len);
		free(sec);
	}
	sqlite3_finalize(s);
	sqlite3_finalize(c);
	if (found) {
		*out = x;
	} else if (x) {
		s2s_memzero(x, sizeof(*x));
		free(x);
	}
	if (rc != S2S_OK && rc != S2S_ERR_NOT_FOUND)
		cs_log(MOSQ_LOG_ERR, "store: session of pair %s cannot be "
		       "loaded (%s); it is dropped", p->id, s2s_strerror(rc));
	return rc;
}

static enum s2s_err
load_session(struct s2s_cs *cs, struct cs_pair *p)
{
	struct cs_session *x = NULL;
	enum s2s_err rc = sess_read(cs, p, &x);

	if (rc == S2S_OK)
		p->sess = x;
	return rc == S2S_ERR_NOT_FOUND ? S2S_OK : rc;
}

/* Every pair (only NULL) or one; *out: the last one loaded. */
static enum s2s_err
load_pairs(struct s2s_cs *cs, const char *only, struct cs_pair **out)
{
	sqlite3_stmt *s;
	enum s2s_err rc = S2S_OK;
	int r;

	if (out)
		*out = NULL;
	if (sqlite3_prepare_v2(E(cs)->db, only ?
			       "SELECT pair, a, b, profile, created "
			       "FROM pairs WHERE pair = ?1" :
			       "SELECT pair, a, b, profile, created "
			       "FROM pairs", -1, &s, NULL) != SQLITE_OK)
		return db_err(cs, "pair load");
	if (only)
		sqlite3_bind_text(s, 1, only, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(s, 1);
		const char *b = (const char *)sqlite3_column_text(s, 2);
		struct cs_pair *p = cs_pair_new(cs, a, b);
		uint8_t *sec = NULL;

		if (!p) {
			rc = S2S_ERR_NOMEM;
			break;
		}
		p->profile = (enum s2s_profile)sqlite3_column_int(s, 3);
		p->created = sqlite3_column_int64(s, 4);
		rc = pair_secret(cs, p->id, &sec);
		if (rc != S2S_OK || sec[0] > S2S_SHK_MAX) {
			cs_log(MOSQ_LOG_ERR, "store: pair %s cannot be "
			       "loaded (%s)", p->id, s2s_strerror(rc));
			if (sec) {
				s2s_memzero(sec, PAIR_SECRET_LEN);
				free(sec);
			}
			rc = rc != S2S_OK ? rc : S2S_ERR_STORE;
			break;
		}
		p->shk_len = sec[0];
		memcpy(p->shk, sec + 1, p->shk_len);
		s2s_memzero(sec, PAIR_SECRET_LEN);
		free(sec);
		(void)load_session(cs, p);
		if (out)
			*out = p;
	}
	if (rc == S2S_OK && r != SQLITE_DONE)
		rc = db_err(cs, "pair load");
	sqlite3_finalize(s);
	return rc;
}

/* ---- single-use connect tokens (protocol v2) -------------------------- */

/*
 * used_tokens(user, nonce, exp): the token nonces the CS accepted, each kept
 * until its token expires, so a restart forgets none of them.  Used only at
 * CONNECT, never on the gate's path.
 */
static enum s2s_err
emb_tokens_open(struct s2s_cs *cs)
{
	char *msg = NULL;

	if (sqlite3_exec(E(cs)->db, "CREATE TABLE IF NOT EXISTS used_tokens("
			 " user TEXT NOT NULL, nonce BLOB NOT NULL,"
			 " exp INTEGER NOT NULL, PRIMARY KEY(user, nonce))"
			 " WITHOUT ROWID;"
			 "CREATE INDEX IF NOT EXISTS used_tokens_exp ON "
			 " used_tokens(exp);", NULL, NULL, &msg) != SQLITE_OK) {
		cs_log(MOSQ_LOG_ERR, "store %s: used_tokens: %s",
		       cs->opt.store, msg ? msg : "?");
		sqlite3_free(msg);
		return S2S_ERR_STORE;
	}
	return S2S_OK;
}

static enum s2s_err
emb_token_use(struct s2s_cs *cs, const char *user,
	     const uint8_t nonce[S2S_TOKEN_NONCE_LEN], uint64_t exp)
{
	sqlite3_stmt *s = NULL;
	enum s2s_err rc = S2S_ERR_STORE;
	int r;

	if (sqlite3_prepare_v2(E(cs)->db, "INSERT INTO used_tokens(user, nonce, "
			       "exp) VALUES(?1, ?2, ?3)", -1, &s, NULL) !=
	    SQLITE_OK)
		goto out;
	sqlite3_bind_text(s, 1, user, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, nonce, S2S_TOKEN_NONCE_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)exp);
	r = sqlite3_step(s);
	if (r == SQLITE_DONE)
		rc = S2S_OK;
	else if ((r & 0xff) == SQLITE_CONSTRAINT)
		rc = S2S_ERR_REPLAY;
out:
	if (rc == S2S_ERR_STORE)
		cs_log(MOSQ_LOG_ERR, "store: used_tokens: %s",
		       sqlite3_errmsg(E(cs)->db));
	sqlite3_finalize(s);
	return rc;
}

static long
emb_tokens_prune(struct s2s_cs *cs, int64_t now)
{
	sqlite3_stmt *s = NULL;
	long n = -1;

	if (sqlite3_prepare_v2(E(cs)->db, "DELETE FROM used_tokens WHERE exp < ?1",
			       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, now);
		if (sqlite3_step(s) == SQLITE_DONE)
			n = sqlite3_changes(E(cs)->db);
	}
	sqlite3_finalize(s);
	return n;
}

static long
emb_tokens_count(struct s2s_cs *cs)
{
	sqlite3_stmt *s = NULL;
	long n = -1;

	if (sqlite3_prepare_v2(E(cs)->db, "SELECT count(*) FROM used_tokens", -1,
			       &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static enum s2s_err
emb_code_hash_get(struct s2s_cs *cs, const char *id, int64_t now,
		       uint8_t hash[S2S_SHA256_LEN])
{
	sqlite3_stmt *s = NULL;
	enum s2s_err rc = S2S_ERR_NOT_FOUND;

	if (sqlite3_prepare_v2(E(cs)->db, "SELECT code_hash, expires FROM "
			       "enrol_codes WHERE id = ?1", -1, &s, NULL) !=
	    SQLITE_OK) {
		sqlite3_finalize(s);
		return S2S_ERR_STORE;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_column_bytes(s, 0) == S2S_SHA256_LEN &&
	    (sqlite3_column_int64(s, 1) == 0 ||
	     sqlite3_column_int64(s, 1) >= now)) {
		memcpy(hash, sqlite3_column_blob(s, 0), S2S_SHA256_LEN);
		rc = S2S_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

static enum s2s_err
emb_load(struct s2s_cs *cs)
{
	return load_pairs(cs, NULL, NULL);
}

const struct cs_store_ops cs_store_embedded = {
	.name = "embedded",
	.open = emb_open,
	.close = emb_close,
	.device_get = emb_device_get,
	.device_put = emb_device_put,
	.device_revoke = emb_device_revoke,
	.device_list = emb_device_list,
	.device_count = emb_device_count,
	.code_add = emb_code_add,
	.code_check = emb_code_check,
	.pairreq_put = emb_pairreq_put,
	.pairreq_get = emb_pairreq_get,
	.pair_put = emb_pair_put,
	.pair_rv = emb_pair_rv,
	.pair_delete = emb_pair_delete,
	.load = emb_load,
	.session_put = emb_session_put,
	.session_delete = emb_session_delete,
	.accept = emb_accept,
	.fetch = emb_fetch,
	.retention = emb_retention,
	.package_count = emb_package_count,
	.usage = emb_usage,
	.tokens_open = emb_tokens_open,
	.token_use = emb_token_use,
	.tokens_prune = emb_tokens_prune,
	.tokens_count = emb_tokens_count,
	.code_hash_get = emb_code_hash_get,
	.session_get = emb_session_get,
	.session_cas = emb_session_cas,
	.broker_put = emb_broker_put,
	.broker_list = emb_broker_list,
};
