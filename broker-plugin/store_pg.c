/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_pg.c - the PostgreSQL store backend (store.h): every record in one
 * database that several brokers (CS instances) share (issue 13).
 *
 * plugin_opt_store is a libpq URI ("postgresql://user@host:port/db") or
 * conninfo ("host=... dbname=..."); the plugin adds, unless the URI says
 * otherwise, connect_timeout=3, TCP keepalives, tcp_user_timeout and
 * synchronous_commit=on, and sets statement_timeout and lock_timeout on
 * every connection.
 *
 * Records and seals are those of the embedded backend (store_embedded.c):
 * the same sealed layouts with the same ads ("dev:<id>:", "pair:<pair>:",
 * "sess:<pair>:<T>", "chain:<pair>:<dir>:<T>:<next_seq>"), so a record is
 * bound to its row and cannot be swapped between rows or brokers.
 * Packages are public and stored as received (bytea, no compression: PNGs
 * are compressed already).
 *
 * The gate's commit (accept) is ONE statement, so one round trip and one
 * transaction: a data-modifying CTE updates the chain row only if it is
 * still at the expected next_seq (compare-and-set under the row lock) and
 * inserts the package only if that update happened.  Two brokers racing
 * on one chain: the second waits for the first's row lock, re-checks the
 * condition, finds the chain moved and inserts nothing.  It returns after
 * the commit (synchronous_commit=on: on the server's disk), so nothing the
 * gate let through is lost by a broker crash or a database crash.
 *
 * Every call runs on the broker thread through exec() below: the query is
 * sent asynchronously and waited for with poll() until a deadline
 * (CS_STORE_PG_TIMEOUT_MS), so a server that stops answering cannot hold
 * the broker.  A lost connection marks the backend down: every call then
 * fails at once with S2S_ERR_STORE (counted by the callers) and a
 * non-blocking reconnection (PQconnectStartParams / PQconnectPoll) is
 * driven from poll_events (TICK) and from the next calls, with back-off.
 *
 * Schema: versioned (schema_version) and migrated at open inside one
 * transaction that holds an advisory lock, so brokers starting together
 * migrate once.  Version 1: registry, codes, wishes, pairs, sessions,
 * chains, packages.  Version 2: what the cluster adds (token stamps,
 * indexes by member and by pair for packages).
 *
 * Events for other brokers: the writes that matter NOTIFY channel
 * s2s_events in their transaction ("r:<id>" revoked, "p:<pair>" paired,
 * "d:<pair>" pair deleted, "s:<pair>" session, "e:<pair>" session ended);
 * every connection LISTENs and poll_events reports the notifications of
 * the other connections.
 *
 * Secrets: sealed before they leave this process; decrypted buffers are
 * wiped.  Nothing here logs a secret or a package body.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"
#include "s2s/bio.h"
#include "s2s/secmem.h"

#define PG_SCHEMA_VERSION 4
/* pg_advisory_xact_lock key of the migration ("s2sM"). */
#define PG_MIGRATE_LOCK "1932685901"
#define PG_CHANNEL "s2s_events"
/* Reconnection back-off, and how often "still down" is logged. */
#define PG_RETRY_MIN_MS 200
#define PG_RETRY_MAX_MS 5000
#define PG_CONNECT_MS 3000
#define PG_NAG_MS 10000

/* ---- schema -------------------------------------------------------------- */

static const char *const migrations[PG_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE devices("
	" id text PRIMARY KEY, pub bytea NOT NULL, hs bytea,"
	" revoked boolean NOT NULL DEFAULT false, created bigint NOT NULL,"
	" pending boolean NOT NULL DEFAULT false);"
	"CREATE INDEX devices_pending ON devices(created) WHERE pending;"
	"CREATE TABLE enrol_codes("
	" id text PRIMARY KEY, code_hash bytea NOT NULL,"
	" created bigint NOT NULL, expires bigint NOT NULL);"
	"CREATE TABLE pair_requests("
	" requester text NOT NULL, peer text NOT NULL, profile integer NOT NULL,"
	" req_id bigint NOT NULL, created bigint NOT NULL,"
	" PRIMARY KEY(requester, peer));"
	"CREATE INDEX pair_requests_created ON pair_requests(created);"
	"CREATE TABLE pairs("
	" pair text PRIMARY KEY, a text NOT NULL, b text NOT NULL,"
	" profile integer NOT NULL, secret bytea NOT NULL,"
	" created bigint NOT NULL);"
	"CREATE TABLE sessions("
	" pair text PRIMARY KEY, session bigint NOT NULL, sds integer NOT NULL,"
	" secret bytea NOT NULL, established bigint NOT NULL);"
	"CREATE TABLE chains("
	" pair text NOT NULL, dir integer NOT NULL, session bigint NOT NULL,"
	" next_seq bigint NOT NULL, key bytea NOT NULL,"
	" PRIMARY KEY(pair, dir));"
	"CREATE TABLE packages("
	" id bigserial PRIMARY KEY, pair text NOT NULL, sender text NOT NULL,"
	" session bigint NOT NULL, seq bigint NOT NULL, ts bigint NOT NULL,"
	" data bytea NOT NULL, UNIQUE(pair, sender, session, seq));"
	"ALTER TABLE packages ALTER COLUMN data SET STORAGE EXTERNAL;"
	"CREATE INDEX packages_ts ON packages(ts);",
	/* 1 -> 2: what several brokers need */
	"CREATE TABLE used_tokens(\"user\" text NOT NULL, nonce bytea NOT NULL,"
	" exp bigint NOT NULL, PRIMARY KEY(\"user\", nonce));"
	"CREATE INDEX used_tokens_exp ON used_tokens(exp);"
	"CREATE INDEX pairs_a ON pairs(a);"
	"CREATE INDEX pairs_b ON pairs(b);"
	"CREATE INDEX packages_pair ON packages(pair, id);",
	/* 2 -> 3: negotiation state in the store (steps may reach any
	 * broker), the brokers' rows (cluster view) */
	"ALTER TABLE sessions ADD COLUMN state integer NOT NULL DEFAULT 3;"
	"ALTER TABLE sessions ADD COLUMN neg bytea;"
	"CREATE TABLE brokers(id text PRIMARY KEY, info text NOT NULL,"
	" updated bigint NOT NULL);",
	/* 3 -> 4: which broker each connected device is on (routing
	 * between brokers, cluster.c) */
	"CREATE TABLE presence(id text PRIMARY KEY, broker text NOT NULL,"
	" updated bigint NOT NULL);"
	"CREATE INDEX presence_broker ON presence(broker);",
};

/* ---- prepared statements ------------------------------------------------- */

enum {
	P_DEV_GET, P_DEV_PUT, P_CODE_DEL, P_DEV_LIST, P_DEV_COUNT,
	P_PENDING_COUNT, P_CODE_GET, P_CODE_PUT, P_REQ_PUT, P_REQ_GET,
	P_ACCEPT, P_CHAIN_GET, P_PKG_SAME, P_FETCH, P_PKG_COUNT, P_TOKEN_USE,
	P_COUNT
};

static const char *const sql[P_COUNT] = {
	[P_DEV_GET] = "SELECT pub, revoked, created, hs FROM devices "
		      "WHERE id = $1",
	[P_DEV_PUT] = "INSERT INTO devices(id, pub, hs, revoked, created, "
		      "pending) VALUES($1, $2, $3, false, $4, $5) ON CONFLICT"
		      " (id) DO UPDATE SET pub = EXCLUDED.pub, hs = EXCLUDED.hs,"
		      " revoked = false, created = EXCLUDED.created, "
		      "pending = EXCLUDED.pending",
	[P_CODE_DEL] = "DELETE FROM enrol_codes WHERE id = $1",
	[P_DEV_LIST] = "SELECT id, pub, revoked, created FROM devices "
		       "ORDER BY id",
	[P_DEV_COUNT] = "SELECT count(*) FROM devices WHERE NOT revoked",
	[P_PENDING_COUNT] = "SELECT count(*) FROM devices WHERE pending",
	[P_CODE_GET] = "SELECT code_hash, expires FROM enrol_codes "
		       "WHERE id = $1",
	[P_CODE_PUT] = "INSERT INTO enrol_codes(id, code_hash, created, "
		       "expires) VALUES($1, $2, $3, $4) ON CONFLICT (id) DO "
		       "UPDATE SET code_hash = EXCLUDED.code_hash, created = "
		       "EXCLUDED.created, expires = EXCLUDED.expires",
	[P_REQ_PUT] = "INSERT INTO pair_requests(requester, peer, profile, "
		      "req_id, created) VALUES($1, $2, $3, $4, $5) ON CONFLICT"
		      " (requester, peer) DO UPDATE SET profile = "
		      "EXCLUDED.profile, req_id = EXCLUDED.req_id, created = "
		      "EXCLUDED.created",
	[P_REQ_GET] = "SELECT profile, req_id FROM pair_requests "
		      "WHERE requester = $1 AND peer = $2",
	/*
	 * $1 pair, $2 dir, $3 T, $4 the expected (stored) next_seq, $5 the
	 * advanced next_seq, $6 its sealed key, $7 sender, $8 seq of the
	 * package, $9 ts, $10 the package.
	 */
	[P_ACCEPT] = "WITH c AS (UPDATE chains SET next_seq = $5, key = $6 "
		     "WHERE pair = $1 AND dir = $2 AND session = $3 AND "
		     "next_seq = $4 RETURNING 1) INSERT INTO packages(pair, "
		     "sender, session, seq, ts, data) SELECT $1, $7, $3, $8, "
		     "$9, $10 FROM c",
	[P_CHAIN_GET] = "SELECT session, next_seq, key FROM chains "
			"WHERE pair = $1 AND dir = $2",
	[P_PKG_SAME] = "SELECT data = $5 FROM packages WHERE pair = $1 AND "
		       "sender = $2 AND session = $3 AND seq = $4",
	[P_FETCH] = "SELECT seq, data FROM packages WHERE pair = $1 AND "
		    "sender = $2 AND session = $3 AND seq BETWEEN $4 AND $5 "
		    "ORDER BY seq LIMIT $6",
	[P_PKG_COUNT] = "SELECT count(*) FROM packages WHERE pair = $1",
	/* a single-use token: a second use inserts nothing (REPLAY) */
	[P_TOKEN_USE] = "INSERT INTO used_tokens(\"user\", nonce, exp) "
			"VALUES($1, $2, $3) ON CONFLICT DO NOTHING",
};

/* ---- state --------------------------------------------------------------- */

struct pgs {
	PGconn *conn;
	bool up;                    /* connected, session set up */
	bool connecting;            /* PQconnectStartParams in flight */
	PostgresPollingStatusType polling;
	int64_t connect_deadline;   /* monotonic ms */
	int64_t next_try;           /* monotonic ms */
	int64_t retry_ms;
	int64_t down_since;         /* monotonic ms, 0 when up */
	int64_t next_nag;
	bool resync;                /* report CS_STORE_EV_RESYNC */
	int backend_pid;            /* our server process: skip own NOTIFYs */
	uint64_t outages, refused, refused_at_down;
	char *conninfo;
};

#define G(cs) ((struct pgs *)(cs)->store)

/* ---- parameters and results ---------------------------------------------- */

#define PRM_MAX 12

struct prm {
	const char *v[PRM_MAX];
	int len[PRM_MAX];
	int fmt[PRM_MAX];
	char num[PRM_MAX][24];
	int n;
};

static void
p_text(struct prm *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void
p_i64(struct prm *p, int64_t v)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
	p_text(p, p->num[p->n]);
}

/* 64-bit unsigned values (T, seq) as the signed bit pattern. */
static void
p_u64(struct prm *p, uint64_t v)
{
	p_i64(p, (int64_t)v);
}

static void
p_bool(struct prm *p, bool v)
{
	p_text(p, v ? "t" : "f");
}

static void
p_bin(struct prm *p, const void *b, size_t n)
{
	p->v[p->n] = n ? b : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n] = 1;
	p->n++;
}

/* Results are binary: integers big-endian, bool one byte, text raw. */
static int64_t
r_i64(const PGresult *r, int row, int col)
{
	const unsigned char *b = (const unsigned char *)PQgetvalue(r, row,
								   col);
	int n = PQgetlength(r, row, col);
	uint64_t v = 0;

	if (n != 2 && n != 4 && n != 8)
		return 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | b[i];
	if (n == 4)
		return (int32_t)(uint32_t)v;
	if (n == 2)
		return (int16_t)(uint16_t)v;
	return (int64_t)v;
}

static bool
r_bool(const PGresult *r, int row, int col)
{
	return PQgetlength(r, row, col) == 1 && PQgetvalue(r, row, col)[0];
}

static const uint8_t *
r_bin(const PGresult *r, int row, int col, size_t *len)
{
	*len = (size_t)PQgetlength(r, row, col);
	return (const uint8_t *)PQgetvalue(r, row, col);
}

/* ---- the connection -------------------------------------------------------- */

static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* libpq's message without its trailing newline. */
static void
pq_msg(PGconn *c, char *buf, size_t n)
{
	size_t l;

	snprintf(buf, n, "%s", c ? PQerrorMessage(c) : "out of memory");
	l = strlen(buf);
	while (l > 0 && (buf[l - 1] == '\n' || buf[l - 1] == ' '))
		buf[--l] = '\0';
	for (char *s = buf; *s; s++)
		if (*s == '\n')
			*s = ' ';
}

/* Defaults first: a keyword the URI / conninfo sets wins over them. */
static const char *const conn_keys[] = {
	"connect_timeout", "application_name", "keepalives",
	"keepalives_idle", "keepalives_interval", "keepalives_count",
	"tcp_user_timeout", "options", "dbname", NULL,
};

static void
conn_values(const char *conninfo, const char *vals[])
{
	vals[0] = "3";
	vals[1] = "s2s-mqtt";
	vals[2] = "1";
	vals[3] = "5";
	vals[4] = "2";
	vals[5] = "3";
	vals[6] = "5000";
	vals[7] = "-c synchronous_commit=on";
	vals[8] = conninfo;
	vals[9] = NULL;
}

static void
go_down(struct s2s_cs *cs, const char *why)
{
	struct pgs *g = G(cs);

	if (g->conn)
		PQfinish(g->conn);
	g->conn = NULL;
	g->connecting = false;
	if (g->up || !g->down_since) {
		g->outages++;
		g->down_since = cs_mono_ms();
		g->refused_at_down = g->refused;
		g->next_nag = g->down_since + PG_NAG_MS;
		g->retry_ms = PG_RETRY_MIN_MS;
		g->next_try = g->down_since;
		cs_log(MOSQ_LOG_ERR, "store: PostgreSQL connection lost (%s); "
		       "the gate refuses packages (counted as 'store') until it"
		       " is back; reconnecting", why);
	}
	g->up = false;
}

static PGresult *exec_raw(struct s2s_cs *cs, const char *name,
			  const char *q, const struct prm *p, int fmt);

/* After connecting: session settings, LISTEN, prepared statements (only
 * once the schema is there). */
static enum s2s_err
session_setup(struct s2s_cs *cs, bool prepare)
{
	struct pgs *g = G(cs);
	char q[160];
	PGresult *r;

	PQsetNoticeProcessor(g->conn, quiet, NULL);
	g->up = true;
	snprintf(q, sizeof(q), "SET statement_timeout = %d; SET lock_timeout"
		 " = %d; LISTEN " PG_CHANNEL, CS_STORE_PG_TIMEOUT_MS - 1000,
		 CS_STORE_PG_TIMEOUT_MS / 2);
	r = exec_raw(cs, NULL, q, NULL, 0);
	if (!r)
		return S2S_ERR_STORE;
	PQclear(r);
	g->backend_pid = PQbackendPID(g->conn);
	for (int i = 0; prepare && i < P_COUNT; i++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", i);
		r = PQprepare(g->conn, name, sql[i], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			char m[256];

			pq_msg(g->conn, m, sizeof(m));
			cs_log(MOSQ_LOG_ERR, "store: prepare %s: %s", sql[i],
			       m);
			PQclear(r);
			if (PQstatus(g->conn) == CONNECTION_BAD)
				go_down(cs, m);
			return S2S_ERR_STORE;
		}
		PQclear(r);
	}
	return S2S_OK;
}

static void
connect_failed(struct s2s_cs *cs, const char *why)
{
	struct pgs *g = G(cs);
	int64_t now = cs_mono_ms();

	if (g->conn)
		PQfinish(g->conn);
	g->conn = NULL;
	g->connecting = false;
	g->next_try = now + g->retry_ms;
	g->retry_ms = g->retry_ms * 2 > PG_RETRY_MAX_MS ? PG_RETRY_MAX_MS :
		      g->retry_ms * 2;
	if (now >= g->next_nag) {
		cs_log(MOSQ_LOG_WARNING, "store: PostgreSQL still unreachable "
		       "after %lld s (%s); %llu calls refused",
		       (long long)((now - g->down_since) / 1000), why,
		       (unsigned long long)(g->refused - g->refused_at_down));
		g->next_nag = now + PG_NAG_MS;
	}
}

/*
 * Drive a reconnection without blocking: start one when due, advance it
 * as far as the socket allows.  Called while down.
 */
static void
drive(struct s2s_cs *cs)
{
	struct pgs *g = G(cs);
	int64_t now = cs_mono_ms();
	char m[256];

	if (g->up)
		return;
	if (!g->connecting) {
		const char *vals[10];

		if (now < g->next_try)
			return;
		conn_values(g->conninfo, vals);
		g->conn = PQconnectStartParams(conn_keys, vals, 1);
		if (!g->conn || PQstatus(g->conn) == CONNECTION_BAD) {
			pq_msg(g->conn, m, sizeof(m));
			connect_failed(cs, m);
			return;
		}
		g->connecting = true;
		g->polling = PGRES_POLLING_WRITING;
		g->connect_deadline = now + PG_CONNECT_MS;
	}
	for (int i = 0; i < 32; i++) {
		struct pollfd pf = { .fd = PQsocket(g->conn), .events =
			g->polling == PGRES_POLLING_READING ? POLLIN : POLLOUT };

		if (pf.fd < 0 || poll(&pf, 1, 0) == 0) {
			if (cs_mono_ms() > g->connect_deadline)
				connect_failed(cs, "connect timed out");
			return;
		}
		g->polling = PQconnectPoll(g->conn);
		if (g->polling == PGRES_POLLING_FAILED) {
			pq_msg(g->conn, m, sizeof(m));
			connect_failed(cs, m);
			return;
		}
		if (g->polling == PGRES_POLLING_OK)
			break;
	}
	if (g->polling != PGRES_POLLING_OK)
		return;
	g->connecting = false;
	if (session_setup(cs, true) != S2S_OK) {
		g->up = false;
		connect_failed(cs, "session setup failed");
		return;
	}
	cs_log(MOSQ_LOG_NOTICE, "store: PostgreSQL connection back after "
	       "%.1f s (%llu calls refused meanwhile)",
	       (double)(cs_mono_ms() - g->down_since) / 1000.0,
	       (unsigned long long)(g->refused - g->refused_at_down));
	g->down_since = 0;
	g->retry_ms = PG_RETRY_MIN_MS;
	g->resync = true;
}

/* Up, or refuse the call at once (S2S_ERR_STORE, counted). */
static bool
ready(struct s2s_cs *cs)
{
	struct pgs *g = G(cs);

	if (!g->up)
		drive(cs);
	if (g->up)
		return true;
	g->refused++;
	return false;
}

/*
 * Send one command (prepared statement name, or the text q) and wait for
 * its result until the deadline; NULL on error (logged; a lost connection
 * or a server that does not answer in time marks the backend down).
 * fmt: result format (1 binary).
 */
static PGresult *
exec_raw(struct s2s_cs *cs, const char *name, const char *q,
	 const struct prm *p, int fmt)
{
	struct pgs *g = G(cs);
	PGresult *res = NULL, *r;
	int64_t deadline = cs_mono_ms() + CS_STORE_PG_TIMEOUT_MS;
	int n = p ? p->n : 0, ok;
	char m[256];

	if (!g->up || !g->conn)
		return NULL;
	if (name)
		ok = PQsendQueryPrepared(g->conn, name, n, p ? p->v : NULL,
					 p ? p->len : NULL, p ? p->fmt : NULL,
					 fmt);
	else if (p)
		ok = PQsendQueryParams(g->conn, q, n, NULL, p->v, p->len,
				       p->fmt, fmt);
	else
		ok = PQsendQuery(g->conn, q);
	if (!ok)
		goto fail;
	for (;;) {
		while (PQisBusy(g->conn)) {
			struct pollfd pf = { .fd = PQsocket(g->conn),
					     .events = POLLIN };
			int64_t left = deadline - cs_mono_ms();
			int pr;

			if (left <= 0) {
				char e[64];
				PGcancel *c = PQgetCancel(g->conn);

				if (c) {
					(void)PQcancel(c, e, sizeof(e));
					PQfreeCancel(c);
				}
				PQclear(res);
				go_down(cs, "the server did not answer within "
					"the store timeout");
				return NULL;
			}
			pr = poll(&pf, 1, (int)left);
			if (pr < 0 && errno != EINTR)
				goto fail;
			if (pr > 0 && !PQconsumeInput(g->conn))
				goto fail;
		}
		r = PQgetResult(g->conn);
		if (!r)
			break;
		if (!res) {
			res = r;
		} else if (PQresultStatus(r) == PGRES_FATAL_ERROR &&
			   PQresultStatus(res) != PGRES_FATAL_ERROR) {
			/* A multi-statement string: keep the first error. */
			PQclear(res);
			res = r;
		} else {
			PQclear(r);
		}
	}
	if (res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
		    PQresultStatus(res) == PGRES_TUPLES_OK))
		return res;
	if (res) {
		const char *e = PQresultErrorMessage(res);

		snprintf(m, sizeof(m), "%s", e ? e : "");
		PQclear(res);
		if (PQstatus(g->conn) == CONNECTION_BAD) {
			pq_msg(g->conn, m, sizeof(m));
			go_down(cs, m);
			return NULL;
		}
		{
			size_t l = strlen(m);

			while (l > 0 && m[l - 1] == '\n')
				m[--l] = '\0';
		}
		cs_log(MOSQ_LOG_ERR, "store: %s: %s", name ? sql[atoi(name + 1)]
		       : q, m);
		return NULL;
	}
fail:
	PQclear(res);
	pq_msg(g->conn, m, sizeof(m));
	if (PQstatus(g->conn) == CONNECTION_BAD || !res)
		go_down(cs, m);
	else
		cs_log(MOSQ_LOG_ERR, "store: %s", m);
	return NULL;
}

/* A prepared statement, binary results. */
static PGresult *
xp(struct s2s_cs *cs, int stmt, const struct prm *p)
{
	char name[8];

	snprintf(name, sizeof(name), "s%d", stmt);
	return exec_raw(cs, name, NULL, p, 1);
}

/* Ad-hoc SQL with parameters, binary results. */
static PGresult *
xq(struct s2s_cs *cs, const char *q, const struct prm *p)
{
	static const struct prm none;

	return exec_raw(cs, NULL, q, p ? p : &none, 1);
}

/* Run, expect no rows; S2S_OK or S2S_ERR_STORE. */
static enum s2s_err
run(PGresult *r)
{
	if (!r)
		return S2S_ERR_STORE;
	PQclear(r);
	return S2S_OK;
}

static long
count_of(PGresult *r)
{
	long n = -1;

	if (r && PQntuples(r) == 1)
		n = (long)r_i64(r, 0, 0);
	PQclear(r);
	return n;
}

static enum s2s_err
begin(struct s2s_cs *cs)
{
	if (!ready(cs))
		return S2S_ERR_STORE;
	return run(exec_raw(cs, NULL, "BEGIN", NULL, 0));
}

static enum s2s_err
commit(struct s2s_cs *cs)
{
	return run(exec_raw(cs, NULL, "COMMIT", NULL, 0));
}

static void
rollback(struct s2s_cs *cs)
{
	if (G(cs)->up && G(cs)->conn &&
	    PQtransactionStatus(G(cs)->conn) != PQTRANS_IDLE)
		PQclear(exec_raw(cs, NULL, "ROLLBACK", NULL, 0));
}

/* NOTIFY the other brokers (delivered when the transaction commits). */
static enum s2s_err
notify(struct s2s_cs *cs, char kind, const char *id)
{
	struct prm p = { .n = 0 };
	char payload[CS_PAIR_BUF + 4];

	snprintf(payload, sizeof(payload), "%c:%s", kind, id);
	p_text(&p, payload);
	return run(xq(cs, "SELECT pg_notify('" PG_CHANNEL "', $1)", &p));
}

/* ---- open, migrate, close ---------------------------------------------------- */

static enum s2s_err
migrate(struct s2s_cs *cs, int target)
{
	PGresult *r;
	int version = 0;
	enum s2s_err rc;

	rc = begin(cs);
	if (rc != S2S_OK)
		return rc;
	/* One broker at a time; the others find the work done. */
	r = exec_raw(cs, NULL, "SELECT pg_advisory_xact_lock("
		     PG_MIGRATE_LOCK ")", NULL, 0);
	rc = run(r);
	if (rc == S2S_OK)
		rc = run(exec_raw(cs, NULL, "CREATE TABLE IF NOT EXISTS "
				  "schema_version(version integer NOT NULL)",
				  NULL, 0));
	if (rc == S2S_OK) {
		r = xq(cs, "SELECT coalesce(max(version), 0) FROM "
		       "schema_version", NULL);
		if (r && PQntuples(r) == 1)
			version = (int)r_i64(r, 0, 0);
		else
			rc = S2S_ERR_STORE;
		PQclear(r);
	}
	if (rc == S2S_OK && version > PG_SCHEMA_VERSION) {
		cs_log(MOSQ_LOG_ERR, "store: PostgreSQL schema version %d is "
		       "newer than this plugin's (%d)", version,
		       PG_SCHEMA_VERSION);
		rc = S2S_ERR_VERSION;
	}
	for (int v = version; rc == S2S_OK && v < target; v++) {
		rc = run(exec_raw(cs, NULL, migrations[v], NULL, 0));
		if (rc == S2S_OK)
			cs_log(MOSQ_LOG_NOTICE, "store: PostgreSQL schema "
			       "migrated from version %d to %d", v, v + 1);
	}
	if (rc == S2S_OK && version < target) {
		struct prm p = { .n = 0 };

		p_i64(&p, target);
		rc = run(exec_raw(cs, NULL, "DELETE FROM schema_version", NULL,
				  0));
		if (rc == S2S_OK)
			rc = run(xq(cs, "INSERT INTO schema_version VALUES($1)",
				    &p));
	}
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

/* Connect (blocking, bounded by connect_timeout) and set the session up. */
static enum s2s_err
first_connect(struct s2s_cs *cs)
{
	struct pgs *g = G(cs);
	const char *vals[10];
	char m[256];

	conn_values(g->conninfo, vals);
	g->conn = PQconnectdbParams(conn_keys, vals, 1);
	if (!g->conn || PQstatus(g->conn) != CONNECTION_OK) {
		pq_msg(g->conn, m, sizeof(m));
		cs_log(MOSQ_LOG_ERR, "store: cannot connect to PostgreSQL: %s",
		       m);
		if (g->conn)
			PQfinish(g->conn);
		g->conn = NULL;
		return S2S_ERR_STORE;
	}
	return session_setup(cs, false);
}

static enum s2s_err
pg_open(struct s2s_cs *cs)
{
	struct pgs *g = calloc(1, sizeof(*g));
	enum s2s_err rc;

	if (!g)
		return S2S_ERR_NOMEM;
	cs->store = g;
	g->retry_ms = PG_RETRY_MIN_MS;
	g->conninfo = strdup(cs->opt.store);
	if (!g->conninfo)
		return S2S_ERR_NOMEM;
	rc = first_connect(cs);
	if (rc == S2S_OK)
		rc = migrate(cs, PG_SCHEMA_VERSION);
	if (rc == S2S_OK)
		rc = session_setup(cs, true);
	if (rc == S2S_OK)
		cs_log(MOSQ_LOG_NOTICE, "store: PostgreSQL %d, schema version "
		       "%d (server process %d)",
		       PQserverVersion(g->conn) / 10000, PG_SCHEMA_VERSION,
		       g->backend_pid);
	return rc;
}

static void
pg_close(struct s2s_cs *cs)
{
	struct pgs *g = G(cs);

	if (!g)
		return;
	if (g->conn)
		PQfinish(g->conn);
	if (g->conninfo) {
		s2s_memzero(g->conninfo, strlen(g->conninfo));
		free(g->conninfo);
	}
	free(g);
	cs->store = NULL;
}

enum s2s_err
cs_store_pg_migrate(const char *conninfo, int version)
{
	struct s2s_cs cs;
	struct pgs *g;
	enum s2s_err rc;

	if (version < 1 || version > PG_SCHEMA_VERSION)
		return S2S_ERR_INVAL;
	memset(&cs, 0, sizeof(cs));
	g = calloc(1, sizeof(*g));
	if (!g)
		return S2S_ERR_NOMEM;
	cs.store = g;
	g->conninfo = strdup(conninfo);
	rc = g->conninfo ? first_connect(&cs) : S2S_ERR_NOMEM;
	if (rc == S2S_OK)
		rc = migrate(&cs, version);
	pg_close(&cs);
	return rc;
}

/* ---- devices ------------------------------------------------------------- */

static void
ad_make(char *buf, size_t n, const char *kind, const char *a, const char *b)
{
	snprintf(buf, n, "%s:%s:%s", kind, a, b ? b : "");
}

static enum s2s_err
pg_device_get(struct s2s_cs *cs, const char *id, struct cs_device_rec *rec,
	      uint8_t **hs, size_t *hs_len)
{
	struct prm p = { .n = 0 };
	PGresult *r;
	enum s2s_err rc = S2S_OK;
	const uint8_t *b;
	size_t n;
	char ad[128];

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&p, id);
	r = xp(cs, P_DEV_GET, &p);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) == 0) {
		rc = S2S_ERR_NOT_FOUND;
		goto out;
	}
	memset(rec, 0, sizeof(*rec));
	snprintf(rec->id, sizeof(rec->id), "%s", id);
	b = r_bin(r, 0, 0, &n);
	if (n != S2S_P256_PUB_LEN) {
		rc = S2S_ERR_STORE;
		goto out;
	}
	memcpy(rec->pub, b, S2S_P256_PUB_LEN);
	rec->revoked = r_bool(r, 0, 1);
	rec->created = r_i64(r, 0, 2);
	if (hs) {
		*hs = NULL;
		*hs_len = 0;
		if (PQgetisnull(r, 0, 3)) {
			rc = S2S_ERR_NOT_FOUND;
			goto out;
		}
		b = r_bin(r, 0, 3, &n);
		ad_make(ad, sizeof(ad), "dev", id, NULL);
		rc = cs_unseal(cs, ad, b, n, hs, hs_len);
	}
out:
	PQclear(r);
	return rc;
}

static enum s2s_err
pg_device_put(struct s2s_cs *cs, const char *id,
	      const uint8_t pub[S2S_P256_PUB_LEN], const uint8_t *hs,
	      size_t hs_len, bool consume_code)
{
	struct prm p = { .n = 0 };
	uint8_t *sealed = NULL;
	size_t sealed_len;
	char ad[128];
	enum s2s_err rc;

	if (!ready(cs))
		return S2S_ERR_STORE;
	/* Open enrolment: a bounded number of unpaired registrations (a
	 * soft cap across brokers: two may pass it by one each at once). */
	if (!consume_code) {
		long n = count_of(xp(cs, P_PENDING_COUNT, NULL));

		if (n < 0)
			return S2S_ERR_STORE;
		if (n >= (long)cs->opt.enroll_pending_max) {
			cs_log(MOSQ_LOG_WARNING, "store: %llu open enrolments "
			       "are pending (plugin_opt_enroll_pending_max); "
			       "'%s' refused",
			       (unsigned long long)cs->opt.enroll_pending_max,
			       id);
			return S2S_ERR_TOO_BIG;
		}
	}
	ad_make(ad, sizeof(ad), "dev", id, NULL);
	rc = cs_seal(cs, ad, hs, hs_len, &sealed, &sealed_len);
	if (rc != S2S_OK)
		return rc;
	rc = begin(cs);
	if (rc != S2S_OK)
		goto out;
	p_text(&p, id);
	p_bin(&p, pub, S2S_P256_PUB_LEN);
	p_bin(&p, sealed, sealed_len);
	p_i64(&p, cs_now_s());
	p_bool(&p, !consume_code);
	rc = run(xp(cs, P_DEV_PUT, &p));
	if (rc == S2S_OK && consume_code) {
		struct prm q = { .n = 0 };

		p_text(&q, id);
		rc = run(xp(cs, P_CODE_DEL, &q));
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
pg_device_revoke(struct s2s_cs *cs, const char *id)
{
	struct prm p = { .n = 0 };
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	p_text(&p, id);
	rc = run(xq(cs, "UPDATE devices SET revoked = true, hs = NULL WHERE "
		    "id = $1", &p));
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM pair_requests WHERE requester = $1"
			    " OR peer = $1", &p));
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM enrol_codes WHERE id = $1", &p));
	if (rc == S2S_OK)
		rc = notify(cs, 'r', id);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

static enum s2s_err
pg_device_list(struct s2s_cs *cs,
	       void (*cb)(void *arg, const struct cs_device_rec *r), void *arg)
{
	struct cs_device_rec rec;
	PGresult *r;

	if (!ready(cs))
		return S2S_ERR_STORE;
	r = xp(cs, P_DEV_LIST, NULL);
	if (!r)
		return S2S_ERR_STORE;
	for (int i = 0; i < PQntuples(r); i++) {
		const uint8_t *b;
		size_t n;

		memset(&rec, 0, sizeof(rec));
		snprintf(rec.id, sizeof(rec.id), "%s", PQgetvalue(r, i, 0));
		b = r_bin(r, i, 1, &n);
		if (n == S2S_P256_PUB_LEN)
			memcpy(rec.pub, b, S2S_P256_PUB_LEN);
		rec.revoked = r_bool(r, i, 2);
		rec.created = r_i64(r, i, 3);
		cb(arg, &rec);
	}
	PQclear(r);
	return S2S_OK;
}

static long
pg_device_count(struct s2s_cs *cs)
{
	if (!ready(cs))
		return -1;
	return count_of(xp(cs, P_DEV_COUNT, NULL));
}

/* ---- enrolment codes -------------------------------------------------------- */

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
pg_code_add(struct s2s_cs *cs, const char *id, const uint8_t *code,
	    size_t len, int64_t expires)
{
	struct prm p = { .n = 0 };
	uint8_t h[S2S_SHA256_LEN];

	if (!ready(cs))
		return S2S_ERR_STORE;
	code_hash(id, code, len, h);
	p_text(&p, id);
	p_bin(&p, h, sizeof(h));
	p_i64(&p, cs_now_s());
	p_i64(&p, expires);
	return run(xp(cs, P_CODE_PUT, &p));
}

static enum s2s_err
pg_code_check(struct s2s_cs *cs, const char *id, const uint8_t *code,
	      size_t len, int64_t now)
{
	struct prm p = { .n = 0 };
	uint8_t h[S2S_SHA256_LEN];
	enum s2s_err rc = S2S_ERR_DENIED;
	PGresult *r;

	if (len == 0)
		return S2S_ERR_DENIED;
	if (!ready(cs))
		return S2S_ERR_STORE;
	code_hash(id, code, len, h);
	p_text(&p, id);
	r = xp(cs, P_CODE_GET, &p);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) == 1) {
		size_t n;
		const uint8_t *b = r_bin(r, 0, 0, &n);
		int64_t exp = r_i64(r, 0, 1);

		if (n == S2S_SHA256_LEN && (exp == 0 || exp >= now) &&
		    s2s_ct_equal(h, b, S2S_SHA256_LEN))
			rc = S2S_OK;
	}
	PQclear(r);
	return rc;
}

/* ---- pairing wishes ------------------------------------------------------------ */

static enum s2s_err
pg_pairreq_put(struct s2s_cs *cs, const char *requester, const char *peer,
	       int profile, uint64_t req_id)
{
	struct prm p = { .n = 0 };

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&p, requester);
	p_text(&p, peer);
	p_i64(&p, profile);
	p_u64(&p, req_id);
	p_i64(&p, cs_now_s());
	return run(xp(cs, P_REQ_PUT, &p));
}

static enum s2s_err
pg_pairreq_get(struct s2s_cs *cs, const char *requester, const char *peer,
	       int *profile, uint64_t *req_id)
{
	struct prm p = { .n = 0 };
	enum s2s_err rc = S2S_ERR_NOT_FOUND;
	PGresult *r;

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&p, requester);
	p_text(&p, peer);
	r = xp(cs, P_REQ_GET, &p);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) == 1) {
		*profile = (int)r_i64(r, 0, 0);
		*req_id = (uint64_t)r_i64(r, 0, 1);
		rc = S2S_OK;
	}
	PQclear(r);
	return rc;
}

/* ---- pairs ------------------------------------------------------------------ */

#define PAIR_SECRET_LEN (1 + S2S_SHK_MAX + 2 * S2S_RV_LEN)
#define SESS_SECRET_LEN (S2S_SKCS_LEN + 1 + S2S_SK_MAX)

static enum s2s_err
pg_pair_put(struct s2s_cs *cs, const struct cs_pair *p,
	    const uint16_t rv[S2S_RV_LEN])
{
	uint8_t secret[PAIR_SECRET_LEN], *sealed = NULL;
	size_t sealed_len;
	struct prm q = { .n = 0 }, m = { .n = 0 };
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
	p_text(&q, p->id);
	p_text(&q, p->m[0]);
	p_text(&q, p->m[1]);
	p_i64(&q, (int64_t)p->profile);
	p_bin(&q, sealed, sealed_len);
	p_i64(&q, p->created);
	/* Insert if absent: two brokers that pair the same two devices at
	 * the same moment must not both win (the Shk each sends differs). */
	{
		PGresult *r = xq(cs, "INSERT INTO pairs(pair, a, b, profile, "
				 "secret, created) VALUES($1, $2, $3, $4, $5, "
				 "$6) ON CONFLICT (pair) DO NOTHING RETURNING "
				 "pair", &q);

		if (!r)
			rc = S2S_ERR_STORE;
		else if (PQntuples(r) == 0)
			rc = S2S_ERR_REPLAY;
		PQclear(r);
	}
	p_text(&m, p->m[0]);
	p_text(&m, p->m[1]);
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM pair_requests WHERE (requester = "
			    "$1 AND peer = $2) OR (requester = $2 AND peer = "
			    "$1)", &m));
	if (rc == S2S_OK)
		rc = run(xq(cs, "UPDATE devices SET pending = false WHERE "
			    "pending AND id IN ($1, $2)", &m));
	if (rc == S2S_OK)
		rc = notify(cs, 'p', p->id);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
out:
	free(sealed);
	return rc;
}

/* The unsealed pair secret of a pairs.secret value (wipe and free). */
static enum s2s_err
pair_secret_open(struct s2s_cs *cs, const char *pair, const uint8_t *b,
		 size_t n, uint8_t **out)
{
	size_t len = 0;
	char ad[192];
	enum s2s_err rc;

	ad_make(ad, sizeof(ad), "pair", pair, NULL);
	rc = cs_unseal(cs, ad, b, n, out, &len);
	if (rc == S2S_OK && len != PAIR_SECRET_LEN) {
		s2s_memzero(*out, len);
		free(*out);
		*out = NULL;
		rc = S2S_ERR_STORE;
	}
	return rc;
}

static enum s2s_err
pg_pair_rv(struct s2s_cs *cs, const char *pair, uint16_t rv[S2S_RV_LEN])
{
	struct prm p = { .n = 0 };
	uint8_t *sec = NULL;
	const uint8_t *b;
	size_t n;
	PGresult *r;
	enum s2s_err rc = S2S_ERR_NOT_FOUND;

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&p, pair);
	r = xq(cs, "SELECT secret FROM pairs WHERE pair = $1", &p);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) == 1) {
		b = r_bin(r, 0, 0, &n);
		rc = pair_secret_open(cs, pair, b, n, &sec);
	}
	PQclear(r);
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
pg_pair_delete(struct s2s_cs *cs, const char *pair)
{
	struct prm p = { .n = 0 };
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	p_text(&p, pair);
	rc = run(xq(cs, "DELETE FROM pairs WHERE pair = $1", &p));
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM sessions WHERE pair = $1", &p));
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM chains WHERE pair = $1", &p));
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM packages WHERE pair = $1", &p));
	if (rc == S2S_OK)
		rc = notify(cs, 'd', pair);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

/* ---- sessions and chains ------------------------------------------------------- */

/* Put a sealed chain key (row value) into ch (next_seq already set). */
static enum s2s_err
chain_open(struct s2s_cs *cs, const char *pair, int dir,
	   struct s2s_chain *ch, const uint8_t *b, size_t n)
{
	uint8_t *k = NULL;
	size_t kl = 0;
	char ad[256];
	enum s2s_err rc;

	cs_chain_ad(ad, sizeof(ad), pair, dir, ch->session, ch->next_seq);
	rc = cs_unseal(cs, ad, b, n, &k, &kl);
	if (rc == S2S_OK && (kl != CS_CHAIN_SECRET_LEN || k[0] > S2S_SK_MAX))
		rc = S2S_ERR_STORE;
	if (rc == S2S_OK) {
		ch->sk_len = k[0];
		memcpy(ch->sk, k + 1, k[0]);
	}
	if (k) {
		s2s_memzero(k, kl);
		free(k);
	}
	return rc;
}

static enum s2s_err
pg_session_put(struct s2s_cs *cs, const struct cs_pair *p)
{
	const struct cs_session *x = p->sess;
	uint8_t sec[SESS_SECRET_LEN], *sealed = NULL, *ck[2] = { NULL, NULL };
	size_t sealed_len, ck_len[2];
	struct prm q = { .n = 0 };
	char ad[256];
	enum s2s_err rc;

	if (!ready(cs))
		return S2S_ERR_STORE;
	memset(sec, 0, sizeof(sec));
	memcpy(sec, x->skcs, S2S_SKCS_LEN);
	sec[S2S_SKCS_LEN] = x->sk_len;
	memcpy(sec + S2S_SKCS_LEN + 1, x->sk, x->sk_len);
	cs_sess_ad(ad, sizeof(ad), p->id, x->t);
	rc = cs_seal(cs, ad, sec, sizeof(sec), &sealed, &sealed_len);
	S2S_WIPE(sec);
	for (int d = 0; rc == S2S_OK && d < 2; d++)
		rc = cs_chain_seal(cs, p->id, d, &x->chain[d], &ck[d], &ck_len[d]);
	if (rc != S2S_OK)
		goto out;
	rc = begin(cs);
	if (rc != S2S_OK)
		goto out;
	p_text(&q, p->id);
	p_u64(&q, x->t);
	p_i64(&q, x->sds);
	p_bin(&q, sealed, sealed_len);
	p_i64(&q, cs_now_s());
	rc = run(xq(cs, "INSERT INTO sessions(pair, session, sds, secret, "
		    "established) VALUES($1, $2, $3, $4, $5) ON CONFLICT "
		    "(pair) DO UPDATE SET session = EXCLUDED.session, sds = "
		    "EXCLUDED.sds, secret = EXCLUDED.secret, established = "
		    "EXCLUDED.established, state = 3, neg = NULL", &q));
	for (int d = 0; rc == S2S_OK && d < 2; d++) {
		struct prm c = { .n = 0 };

		p_text(&c, p->id);
		p_i64(&c, d);
		p_u64(&c, x->t);
		p_u64(&c, x->chain[d].next_seq);
		p_bin(&c, ck[d], ck_len[d]);
		rc = run(xq(cs, "INSERT INTO chains(pair, dir, session, "
			    "next_seq, key) VALUES($1, $2, $3, $4, $5) ON "
			    "CONFLICT (pair, dir) DO UPDATE SET session = "
			    "EXCLUDED.session, next_seq = EXCLUDED.next_seq, "
			    "key = EXCLUDED.key", &c));
	}
	if (rc == S2S_OK)
		rc = notify(cs, 's', p->id);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
out:
	free(sealed);
	free(ck[0]);
	free(ck[1]);
	return rc;
}

static enum s2s_err
pg_session_delete(struct s2s_cs *cs, const char *pair)
{
	struct prm p = { .n = 0 };
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	p_text(&p, pair);
	rc = run(xq(cs, "DELETE FROM sessions WHERE pair = $1", &p));
	if (rc == S2S_OK)
		rc = run(xq(cs, "DELETE FROM chains WHERE pair = $1", &p));
	if (rc == S2S_OK)
		rc = notify(cs, 'e', pair);
	if (rc == S2S_OK)
		rc = commit(cs);
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

/*
 * Why did the compare-and-set of accept not happen?  Another broker
 * advanced the chain (REPLAY, unless it stored these very bytes: then
 * this is a retry and it is done), or the session changed (SESSION).
 */
static enum s2s_err
accept_lost(struct s2s_cs *cs, const struct cs_pair *p, int dir,
	    uint64_t t, uint64_t expect, uint64_t seq, const uint8_t *pkg,
	    size_t pkg_len)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	enum s2s_err rc;
	uint64_t stored_t, stored_next;

	p_text(&q, p->id);
	p_i64(&q, dir);
	r = xp(cs, P_CHAIN_GET, &q);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return S2S_ERR_SESSION;
	}
	stored_t = (uint64_t)r_i64(r, 0, 0);
	stored_next = (uint64_t)r_i64(r, 0, 1);
	PQclear(r);
	if (stored_t != t)
		return S2S_ERR_SESSION;
	if (stored_next <= expect) {
		cs_log(MOSQ_LOG_ERR, "store: chain %s/%d is at %llu, behind "
		       "this broker's %llu", p->id, dir,
		       (unsigned long long)stored_next,
		       (unsigned long long)expect);
		return S2S_ERR_STORE;
	}
	q.n = 0;
	p_text(&q, p->id);
	p_text(&q, p->m[dir]);
	p_u64(&q, t);
	p_u64(&q, seq);
	p_bin(&q, pkg, pkg_len);
	r = xp(cs, P_PKG_SAME, &q);
	if (!r)
		return S2S_ERR_STORE;
	rc = PQntuples(r) == 1 && r_bool(r, 0, 0) ? S2S_OK : S2S_ERR_REPLAY;
	PQclear(r);
	return rc;
}

static enum s2s_err
pg_accept(struct s2s_cs *cs, const struct cs_pair *p, int dir,
	  const struct s2s_chain *advanced, const uint8_t *pkg,
	  size_t pkg_len)
{
	struct prm q = { .n = 0 };
	uint8_t *ck = NULL;
	size_t ck_len = 0;
	uint64_t expect, seq;
	PGresult *r;
	enum s2s_err rc;

	if (advanced->next_seq < 2 || !p->sess)
		return S2S_ERR_INVAL;
	if (!ready(cs))
		return S2S_ERR_STORE;
	expect = p->sess->chain[dir].next_seq;
	seq = advanced->next_seq - 1;
	rc = cs_chain_seal(cs, p->id, dir, advanced, &ck, &ck_len);
	if (rc != S2S_OK)
		return rc;
	p_text(&q, p->id);
	p_i64(&q, dir);
	p_u64(&q, advanced->session);
	p_u64(&q, expect);
	p_u64(&q, advanced->next_seq);
	p_bin(&q, ck, ck_len);
	p_text(&q, p->m[dir]);
	p_u64(&q, seq);
	p_i64(&q, cs_now_s());
	p_bin(&q, pkg, pkg_len);
	r = xp(cs, P_ACCEPT, &q);
	free(ck);       /* sealed: not a secret */
	if (!r)
		return S2S_ERR_STORE;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? S2S_OK : S2S_ERR_REPLAY;
	PQclear(r);
	if (rc != S2S_OK)
		rc = accept_lost(cs, p, dir, advanced->session, expect, seq,
				 pkg, pkg_len);
	return rc;
}

static enum s2s_err
pg_fetch(struct s2s_cs *cs, const char *pair, const char *sender,
	 uint64_t session, uint64_t from, uint64_t to, unsigned max,
	 size_t max_bytes, cs_fetch_cb cb, void *arg)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	size_t bytes = 0;
	enum s2s_err rc = S2S_OK;

	if (!ready(cs))
		return S2S_ERR_STORE;
	if (from > to || max == 0)
		return S2S_OK;
	/* seq values above INT64_MAX cannot be stored (bit pattern). */
	if (to > (uint64_t)INT64_MAX)
		to = (uint64_t)INT64_MAX;
	if (from > to)
		return S2S_OK;
	p_text(&q, pair);
	p_text(&q, sender);
	p_u64(&q, session);
	p_u64(&q, from);
	p_u64(&q, to);
	p_i64(&q, (int64_t)max);
	r = xp(cs, P_FETCH, &q);
	if (!r)
		return S2S_ERR_STORE;
	for (int i = 0; rc == S2S_OK && i < PQntuples(r); i++) {
		size_t n;
		const uint8_t *b = r_bin(r, i, 1, &n);

		if (i > 0 && bytes + n > max_bytes)
			break;
		bytes += n;
		rc = cb(arg, (uint64_t)r_i64(r, i, 0), b, n);
	}
	PQclear(r);
	return rc == S2S_OK ? S2S_OK : rc;
}

static long
pg_package_count(struct s2s_cs *cs, const char *pair)
{
	struct prm q = { .n = 0 };

	if (!ready(cs))
		return -1;
	p_text(&q, pair);
	return count_of(xp(cs, P_PKG_COUNT, &q));
}

static long
changed(PGresult *r)
{
	long n = r ? atol(PQcmdTuples(r)) : 0;

	PQclear(r);
	return n;
}

/* Open enrolments never paired within enroll_expiry, and old wishes. */
static void
expire_enrolments(struct s2s_cs *cs, int64_t now)
{
	struct prm q = { .n = 0 };
	long n;

	if (!cs->opt.enroll_expiry)
		return;
	p_i64(&q, now - (int64_t)cs->opt.enroll_expiry);
	if (begin(cs) != S2S_OK)
		return;
	if (run(xq(cs, "DELETE FROM pair_requests WHERE created < $1 OR "
		   "requester IN (SELECT id FROM devices WHERE pending AND "
		   "created < $1) OR peer IN (SELECT id FROM devices WHERE "
		   "pending AND created < $1)", &q)) == S2S_OK) {
		PGresult *r = xq(cs, "DELETE FROM devices WHERE pending AND "
				 "created < $1", &q);

		if (r) {
			n = changed(r);
			if (run(xq(cs, "DELETE FROM enrol_codes WHERE expires >"
				   " 0 AND expires < $1", &q)) == S2S_OK &&
			    commit(cs) == S2S_OK) {
				if (n > 0)
					cs_log(MOSQ_LOG_NOTICE, "store: %ld "
					       "open enrolments expired "
					       "unpaired", n);
				return;
			}
		}
	}
	rollback(cs);
}

static long
pg_retention(struct s2s_cs *cs, int64_t now)
{
	long n = 0;

	if (!ready(cs))
		return 0;
	expire_enrolments(cs, now);
	if (cs->opt.retention_age) {
		struct prm q = { .n = 0 };

		p_i64(&q, now - (int64_t)cs->opt.retention_age);
		n += changed(xq(cs, "DELETE FROM packages WHERE ts < $1", &q));
	}
	if (cs->opt.retention_packages) {
		struct prm q = { .n = 0 };

		p_i64(&q, (int64_t)cs->opt.retention_packages);
		n += changed(xq(cs, "DELETE FROM packages d USING (SELECT id "
				"FROM (SELECT id, row_number() OVER (PARTITION "
				"BY pair ORDER BY id DESC) AS rn FROM packages)"
				" x WHERE rn > $1) o WHERE d.id = o.id", &q));
	}
	return n;
}

static void
pg_usage(struct s2s_cs *cs, struct cs_store_usage *u)
{
	struct pgs *g = G(cs);
	PGresult *r;

	u->down = !g->up;
	u->outages = g->outages;
	u->refused = g->refused;
	if (!ready(cs)) {
		u->down = true;
		return;
	}
	r = xq(cs, "SELECT pg_database_size(current_database()), "
	       "(SELECT count(*) FROM packages), (SELECT coalesce(sum("
	       "octet_length(data)), 0)::bigint FROM packages), (SELECT "
	       "count(*) FROM devices WHERE pending)", NULL);
	if (r && PQntuples(r) == 1) {
		u->db_bytes = (uint64_t)r_i64(r, 0, 0);
		u->live_packages = (uint64_t)r_i64(r, 0, 1);
		u->live_bytes = (uint64_t)r_i64(r, 0, 2);
		u->pending_enrolments = (uint64_t)r_i64(r, 0, 3);
	}
	PQclear(r);
}

/* ---- loading ---------------------------------------------------------------- */

/* Build one pair from a row (pair, a, b, profile, created, secret). */
static enum s2s_err
pair_from_row(struct s2s_cs *cs, PGresult *r, int i)
{
	const char *a = PQgetvalue(r, i, 1), *b = PQgetvalue(r, i, 2);
	struct cs_pair *p;
	uint8_t *sec = NULL;
	const uint8_t *v;
	size_t n;
	enum s2s_err rc;

	p = cs_pair_new(cs, a, b);
	if (!p)
		return S2S_ERR_NOMEM;
	p->profile = (enum s2s_profile)r_i64(r, i, 3);
	p->created = r_i64(r, i, 4);
	v = r_bin(r, i, 5, &n);
	rc = pair_secret_open(cs, p->id, v, n, &sec);
	if (rc == S2S_OK && sec[0] > S2S_SHK_MAX)
		rc = S2S_ERR_STORE;
	if (rc == S2S_OK) {
		p->shk_len = sec[0];
		memcpy(p->shk, sec + 1, p->shk_len);
	}
	if (sec) {
		s2s_memzero(sec, PAIR_SECRET_LEN);
		free(sec);
	}
	if (rc != S2S_OK) {
		cs_log(MOSQ_LOG_ERR, "store: pair %s cannot be loaded (%s)",
		       p->id, s2s_strerror(rc));
		cs_pair_unlink(cs, p);
		cs_pair_free(p);
	}
	return rc;
}

/*
 * The session of row i of (pair, session, sds, secret, next0, key0,
 * next1, key1) into its pair.
 */
static void
neg_ad(char *buf, size_t n, const char *pair, uint64_t t)
{
	snprintf(buf, n, "neg:%s:%llu", pair, (unsigned long long)t);
}

/*
 * The session of row i of (pair, session, sds, secret, next0, key0,
 * next1, key1, state, neg) of pair p, in any state, into *out.
 */
static enum s2s_err
session_parse(struct s2s_cs *cs, const struct cs_pair *p, PGresult *r, int i,
	      struct cs_session **out)
{
	struct cs_session *x;
	uint8_t *sec = NULL;
	const uint8_t *v;
	size_t n, len = 0;
	char ad[256];
	enum s2s_err rc;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return S2S_ERR_NOMEM;
	x->t = (uint64_t)r_i64(r, i, 1);
	x->sds = r_i64(r, i, 2) ? 1 : 0;
	x->state = (enum cs_sess_state)r_i64(r, i, 8);
	rc = x->state >= CS_SESS_KEYS_SENT &&
	     x->state <= CS_SESS_ESTABLISHED ? S2S_OK : S2S_ERR_STORE;
	cs_sess_ad(ad, sizeof(ad), p->id, x->t);
	v = r_bin(r, i, 3, &n);
	if (rc == S2S_OK)
		rc = cs_unseal(cs, ad, v, n, &sec, &len);
	if (rc == S2S_OK && (len != CS_SESS_SECRET_LEN ||
			     !cs_session_secret_unpack(x, sec)))
		rc = S2S_ERR_STORE;
	if (sec) {
		s2s_memzero(sec, len);
		free(sec);
		sec = NULL;
	}
	if (rc == S2S_OK && x->state != CS_SESS_ESTABLISHED) {
		/* a negotiation in progress: its nonces, blob, deadline */
		neg_ad(ad, sizeof(ad), p->id, x->t);
		v = r_bin(r, i, 9, &n);
		rc = PQgetisnull(r, i, 9) ? S2S_ERR_STORE :
		     cs_unseal(cs, ad, v, n, &sec, &len);
		if (rc == S2S_OK && len == CS_SESS_NEG_LEN)
			cs_session_neg_unpack(x, sec);
		else if (rc == S2S_OK)
			rc = S2S_ERR_STORE;
		if (sec) {
			s2s_memzero(sec, len);
			free(sec);
		}
		goto done;
	}
	for (int d = 0; rc == S2S_OK && d < 2; d++) {
		struct s2s_chain *ch = &x->chain[d];

		if (PQgetisnull(r, i, 4 + 2 * d)) {
			rc = S2S_ERR_STORE;
			break;
		}
		rc = s2s_chain_init(ch, p->profile, x->t, x->skcs, x->sk,
				    x->sk_len, p->shk, p->shk_len);
		if (rc != S2S_OK)
			break;
		ch->next_seq = (uint64_t)r_i64(r, i, 4 + 2 * d);
		v = r_bin(r, i, 5 + 2 * d, &n);
		rc = chain_open(cs, p->id, d, ch, v, n);
	}
done:
	if (rc != S2S_OK) {
		cs_session_free(x);
		cs_log(MOSQ_LOG_ERR, "store: session of pair %s cannot be "
		       "loaded (%s); it is dropped", p->id, s2s_strerror(rc));
		return rc;
	}
	*out = x;
	return S2S_OK;
}

/* The session of row i into its pair (cs->pairs). */
static enum s2s_err
session_from_row(struct s2s_cs *cs, PGresult *r, int i)
{
	struct cs_pair *p = cs_pair_find(cs, PQgetvalue(r, i, 0));
	struct cs_session *x = NULL;
	enum s2s_err rc;

	if (!p)
		return S2S_OK;          /* its pair did not load */
	rc = session_parse(cs, p, r, i, &x);
	if (rc == S2S_ERR_NOMEM)
		return rc;
	if (rc == S2S_OK) {
		cs_session_free(p->sess);
		p->sess = x;
	}
	return S2S_OK;
}

static const char q_pairs[] =
	"SELECT pair, a, b, profile, created, secret FROM pairs "
	"WHERE $1::text IS NULL OR pair = $1 ORDER BY pair";
static const char q_sessions[] =
	"SELECT s.pair, s.session, s.sds, s.secret, c0.next_seq, c0.key, "
	"c1.next_seq, c1.key, s.state, s.neg FROM sessions s "
	"LEFT JOIN chains c0 ON c0.pair = s.pair AND c0.dir = 0 AND "
	"c0.session = s.session "
	"LEFT JOIN chains c1 ON c1.pair = s.pair AND c1.dir = 1 AND "
	"c1.session = s.session WHERE $1::text IS NULL OR s.pair = $1";

/* Pairs (all, or only one) and their sessions into cs->pairs. */
static enum s2s_err
load_pairs(struct s2s_cs *cs, const char *only, bool *found)
{
	struct prm q = { .n = 0 };
	PGresult *pr = NULL, *sr = NULL;
	enum s2s_err rc = S2S_OK;

	*found = false;
	if (!ready(cs))
		return S2S_ERR_STORE;
	if (only)
		p_text(&q, only);
	else
		p_text(&q, NULL);
	/* One snapshot for both reads. */
	if (begin(cs) != S2S_OK)
		return S2S_ERR_STORE;
	if (run(exec_raw(cs, NULL, "SET TRANSACTION ISOLATION LEVEL "
			 "REPEATABLE READ, READ ONLY", NULL, 0)) != S2S_OK ||
	    !(pr = xq(cs, q_pairs, &q)) || !(sr = xq(cs, q_sessions, &q)) ||
	    commit(cs) != S2S_OK) {
		rollback(cs);
		PQclear(pr);
		PQclear(sr);
		return S2S_ERR_STORE;
	}
	*found = PQntuples(pr) > 0;
	if (only) {
		struct cs_pair *old = cs_pair_find(cs, only);

		if (old) {
			cs_pair_unlink(cs, old);
			cs_pair_free(old);
		}
	}
	for (int i = 0; rc == S2S_OK && i < PQntuples(pr); i++) {
		rc = pair_from_row(cs, pr, i);
		if (rc == S2S_ERR_NOMEM)
			break;
		if (!only)
			rc = S2S_OK;    /* a bad pair is logged and skipped */
	}
	for (int i = 0; rc == S2S_OK && i < PQntuples(sr); i++)
		rc = session_from_row(cs, sr, i);
	PQclear(pr);
	PQclear(sr);
	return rc;
}

static enum s2s_err
pg_load(struct s2s_cs *cs)
{
	bool found;

	return load_pairs(cs, NULL, &found);
}

static enum s2s_err
pg_pair_load(struct s2s_cs *cs, const char *pair)
{
	bool found;
	enum s2s_err rc = load_pairs(cs, pair, &found);

	if (rc == S2S_OK && !found)
		rc = S2S_ERR_NOT_FOUND;
	return rc;
}

static enum s2s_err
pg_chain_load(struct s2s_cs *cs, const struct cs_pair *p, int dir,
	      struct s2s_chain *out)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	const uint8_t *v;
	size_t n;
	enum s2s_err rc;

	if (!p->sess || dir < 0 || dir > 1)
		return S2S_ERR_SESSION;
	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, p->id);
	p_i64(&q, dir);
	r = xp(cs, P_CHAIN_GET, &q);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) != 1 || (uint64_t)r_i64(r, 0, 0) != p->sess->t) {
		PQclear(r);
		return S2S_ERR_SESSION;
	}
	*out = p->sess->chain[dir];
	out->next_seq = (uint64_t)r_i64(r, 0, 1);
	v = r_bin(r, 0, 2, &n);
	rc = chain_open(cs, p->id, dir, out, v, n);
	PQclear(r);
	if (rc != S2S_OK)
		s2s_chain_wipe(out);
	return rc;
}

/* ---- single-use tokens (plugin.h: cs_token_use) ---------------------------
 * used_tokens is made by the schema (migration 1 -> 2): shared by every
 * broker of a cluster, so a token used on one is refused on the others. */

static enum s2s_err
pg_tokens_open(struct s2s_cs *cs)
{
	if (!ready(cs))
		return S2S_ERR_STORE;
	return run(xq(cs, "SELECT 1 FROM used_tokens LIMIT 0", NULL));
}

static enum s2s_err
pg_token_use(struct s2s_cs *cs, const char *user, const uint8_t *nonce,
	     uint64_t exp)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	enum s2s_err rc;

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, user);
	p_bin(&q, nonce, S2S_TOKEN_NONCE_LEN);
	p_i64(&q, exp > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)exp);
	r = xp(cs, P_TOKEN_USE, &q);
	if (!r)
		return S2S_ERR_STORE;
	rc = strcmp(PQcmdTuples(r), "1") == 0 ? S2S_OK : S2S_ERR_REPLAY;
	PQclear(r);
	return rc;
}

static long
pg_tokens_prune(struct s2s_cs *cs, int64_t now)
{
	struct prm q = { .n = 0 };
	PGresult *r;

	if (!ready(cs))
		return -1;
	p_i64(&q, now);
	r = xq(cs, "DELETE FROM used_tokens WHERE exp < $1", &q);
	return r ? changed(r) : -1;
}

static long
pg_tokens_count(struct s2s_cs *cs)
{
	if (!ready(cs))
		return -1;
	return count_of(xq(cs, "SELECT count(*) FROM used_tokens", NULL));
}

/* The stored hash of id's unexpired code (code_hash() above). */
static enum s2s_err
pg_code_hash_get(struct s2s_cs *cs, const char *id, int64_t now,
		 uint8_t hash[S2S_SHA256_LEN])
{
	struct prm p = { .n = 0 };
	enum s2s_err rc = S2S_ERR_NOT_FOUND;
	PGresult *r;

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&p, id);
	r = xp(cs, P_CODE_GET, &p);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) == 1) {
		size_t n;
		const uint8_t *b = r_bin(r, 0, 0, &n);
		int64_t exp = r_i64(r, 0, 1);

		if (n == S2S_SHA256_LEN && (exp == 0 || exp >= now)) {
			memcpy(hash, b, S2S_SHA256_LEN);
			rc = S2S_OK;
		}
	}
	PQclear(r);
	return rc;
}

/* ---- events --------------------------------------------------------------- */

static int
pg_poll_events(struct s2s_cs *cs, cs_store_event_cb cb, void *arg)
{
	struct pgs *g = G(cs);
	PGnotify *n;
	int count = 0;

	if (!g->up) {
		drive(cs);
		if (!g->up)
			return 0;
	}
	if (g->resync) {
		g->resync = false;
		if (cb)
			cb(arg, CS_STORE_EV_RESYNC, "");
		count++;
	}
	if (!PQconsumeInput(g->conn)) {
		char m[256];

		pq_msg(g->conn, m, sizeof(m));
		go_down(cs, m);
		return count;
	}
	while ((n = PQnotifies(g->conn)) != NULL) {
		const char *s = n->extra;
		enum cs_store_event ev = 0;

		if (n->be_pid != g->backend_pid && s && s[0] && s[1] == ':') {
			switch (s[0]) {
			case 'r': ev = CS_STORE_EV_REVOKED; break;
			case 'p': ev = CS_STORE_EV_PAIRED; break;
			case 'd': ev = CS_STORE_EV_PAIR_DELETED; break;
			case 's': ev = CS_STORE_EV_SESSION; break;
			case 'e': ev = CS_STORE_EV_SESSION_ENDED; break;
			default: break;
			}
		}
		if (ev && (s2s_id_valid(s + 2) || s2s_pair_id_valid(s + 2))) {
			count++;
			if (cb)
				cb(arg, ev, s + 2);
		}
		PQfreemem(n);
	}
	return count;
}

/* ---- cluster: sessions in any state, brokers' rows ------------------------ */

static enum s2s_err
pg_session_get(struct s2s_cs *cs, const struct cs_pair *p,
	       struct cs_session **out)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	enum s2s_err rc;

	*out = NULL;
	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, p->id);
	r = xq(cs, q_sessions, &q);
	if (!r)
		return S2S_ERR_STORE;
	rc = PQntuples(r) == 1 ? session_parse(cs, p, r, 0, out) :
	     S2S_ERR_NOT_FOUND;
	PQclear(r);
	return rc;
}

/* Write x (any state) of p inside the caller's transaction. */
static enum s2s_err
session_write(struct s2s_cs *cs, const struct cs_pair *p,
	      const struct cs_session *x)
{
	uint8_t sec[CS_SESS_SECRET_LEN], neg[CS_SESS_NEG_LEN];
	uint8_t *sealed = NULL, *nsealed = NULL, *ck[2] = { NULL, NULL };
	size_t sealed_len = 0, nsealed_len = 0, ck_len[2] = { 0, 0 };
	bool est = x->state == CS_SESS_ESTABLISHED;
	struct prm q = { .n = 0 };
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
	p_text(&q, p->id);
	p_u64(&q, x->t);
	p_i64(&q, x->sds);
	p_bin(&q, sealed, sealed_len);
	p_i64(&q, cs_now_s());
	p_i64(&q, (int64_t)x->state);
	if (nsealed)
		p_bin(&q, nsealed, nsealed_len);
	else
		p_text(&q, NULL);
	rc = run(xq(cs, "INSERT INTO sessions(pair, session, sds, secret, "
		    "established, state, neg) VALUES($1, $2, $3, $4, $5, $6, "
		    "$7) ON CONFLICT (pair) DO UPDATE SET session = "
		    "EXCLUDED.session, sds = EXCLUDED.sds, secret = "
		    "EXCLUDED.secret, established = EXCLUDED.established, "
		    "state = EXCLUDED.state, neg = EXCLUDED.neg", &q));
	for (int d = 0; rc == S2S_OK && est && d < 2; d++) {
		struct prm c = { .n = 0 };

		p_text(&c, p->id);
		p_i64(&c, d);
		p_u64(&c, x->t);
		p_u64(&c, x->chain[d].next_seq);
		p_bin(&c, ck[d], ck_len[d]);
		rc = run(xq(cs, "INSERT INTO chains(pair, dir, session, "
			    "next_seq, key) VALUES($1, $2, $3, $4, $5) ON "
			    "CONFLICT (pair, dir) DO UPDATE SET session = "
			    "EXCLUDED.session, next_seq = EXCLUDED.next_seq, "
			    "key = EXCLUDED.key", &c));
	}
out:
	free(sealed);
	free(nsealed);
	free(ck[0]);
	free(ck[1]);
	return rc;
}

static enum s2s_err
pg_session_cas(struct s2s_cs *cs, const struct cs_pair *p,
	       const struct cs_session *x, uint64_t expect_t,
	       int expect_state)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	enum s2s_err rc = begin(cs);

	if (rc != S2S_OK)
		return rc;
	p_text(&q, p->id);
	/* The row lock orders brokers racing on one session. */
	r = xq(cs, "SELECT session, state FROM sessions WHERE pair = $1 "
	       "FOR UPDATE", &q);
	if (!r) {
		rc = S2S_ERR_STORE;
		goto fail;
	}
	if (expect_t != 0 &&
	    (PQntuples(r) != 1 || (uint64_t)r_i64(r, 0, 0) != expect_t ||
	     r_i64(r, 0, 1) != expect_state))
		rc = S2S_ERR_STATE;
	PQclear(r);
	if (rc != S2S_OK)
		goto fail;
	if (x) {
		rc = session_write(cs, p, x);
		if (rc == S2S_OK)
			rc = notify(cs, 's', p->id);
	} else {
		rc = run(xq(cs, "DELETE FROM sessions WHERE pair = $1", &q));
		if (rc == S2S_OK)
			rc = run(xq(cs, "DELETE FROM chains WHERE pair = $1",
				    &q));
		if (rc == S2S_OK)
			rc = notify(cs, 'e', p->id);
	}
	if (rc == S2S_OK)
		rc = commit(cs);
fail:
	if (rc != S2S_OK)
		rollback(cs);
	return rc;
}

static enum s2s_err
pg_broker_put(struct s2s_cs *cs, const char *broker, const char *info,
	      int64_t now)
{
	struct prm q = { .n = 0 };

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, broker);
	p_text(&q, info);
	p_i64(&q, now);
	return run(xq(cs, "INSERT INTO brokers(id, info, updated) VALUES($1, "
		      "$2, $3) ON CONFLICT (id) DO UPDATE SET info = "
		      "EXCLUDED.info, updated = EXCLUDED.updated", &q));
}

static enum s2s_err
pg_broker_list(struct s2s_cs *cs, cs_broker_cb cb, void *arg)
{
	PGresult *r;
	char *id, *info;

	if (!ready(cs))
		return S2S_ERR_STORE;
	r = xq(cs, "SELECT id, info, updated FROM brokers ORDER BY id", NULL);
	if (!r)
		return S2S_ERR_STORE;
	for (int i = 0; i < PQntuples(r); i++) {
		/* binary results: text is raw, not NUL-terminated */
		id = strndup(PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
		info = strndup(PQgetvalue(r, i, 1),
			       (size_t)PQgetlength(r, i, 1));
		if (id && info)
			cb(arg, id, info, r_i64(r, i, 2));
		free(id);
		free(info);
	}
	PQclear(r);
	return S2S_OK;
}

static enum s2s_err
pg_presence_set(struct s2s_cs *cs, const char *id, const char *broker,
		int64_t now)
{
	struct prm q = { .n = 0 };

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, id);
	p_text(&q, broker);
	p_i64(&q, now);
	return run(xq(cs, "INSERT INTO presence(id, broker, updated) VALUES("
		      "$1, $2, $3) ON CONFLICT (id) DO UPDATE SET broker = "
		      "EXCLUDED.broker, updated = EXCLUDED.updated", &q));
}

static enum s2s_err
pg_presence_clear(struct s2s_cs *cs, const char *id, const char *broker)
{
	struct prm q = { .n = 0 };

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, broker);
	if (!id)
		return run(xq(cs, "DELETE FROM presence WHERE broker = $1",
			      &q));
	p_text(&q, id);
	return run(xq(cs, "DELETE FROM presence WHERE broker = $1 AND "
		      "id = $2", &q));
}

static enum s2s_err
pg_presence_get(struct s2s_cs *cs, const char *id, char *broker, size_t n)
{
	struct prm q = { .n = 0 };
	PGresult *r;
	enum s2s_err rc = S2S_ERR_NOT_FOUND;

	if (!ready(cs))
		return S2S_ERR_STORE;
	p_text(&q, id);
	r = xq(cs, "SELECT broker FROM presence WHERE id = $1", &q);
	if (!r)
		return S2S_ERR_STORE;
	if (PQntuples(r) == 1) {
		/* binary results: text is raw, not NUL-terminated */
		size_t len = (size_t)PQgetlength(r, 0, 0);

		if (len < n) {
			memcpy(broker, PQgetvalue(r, 0, 0), len);
			broker[len] = '\0';
			rc = S2S_OK;
		}
	}
	PQclear(r);
	return rc;
}

const struct cs_store_ops cs_store_pg = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.device_get = pg_device_get,
	.device_put = pg_device_put,
	.device_revoke = pg_device_revoke,
	.device_list = pg_device_list,
	.device_count = pg_device_count,
	.code_add = pg_code_add,
	.code_check = pg_code_check,
	.pairreq_put = pg_pairreq_put,
	.pairreq_get = pg_pairreq_get,
	.pair_put = pg_pair_put,
	.pair_rv = pg_pair_rv,
	.pair_delete = pg_pair_delete,
	.load = pg_load,
	.session_put = pg_session_put,
	.session_delete = pg_session_delete,
	.accept = pg_accept,
	.fetch = pg_fetch,
	.retention = pg_retention,
	.package_count = pg_package_count,
	.usage = pg_usage,
	.shared = true,
	.poll_events = pg_poll_events,
	.pair_load = pg_pair_load,
	.chain_load = pg_chain_load,
	.tokens_open = pg_tokens_open,
	.token_use = pg_token_use,
	.tokens_prune = pg_tokens_prune,
	.tokens_count = pg_tokens_count,
	.code_hash_get = pg_code_hash_get,
	.session_get = pg_session_get,
	.session_cas = pg_session_cas,
	.broker_put = pg_broker_put,
	.broker_list = pg_broker_list,
	.presence_set = pg_presence_set,
	.presence_clear = pg_presence_clear,
	.presence_get = pg_presence_get,
};
