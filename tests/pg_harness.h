/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pg_harness.h - a private PostgreSQL server for a test (Debian's
 * PostgreSQL 15): initdb into a fresh temporary folder, start it on a free
 * 127.0.0.1 port (TCP, so that a broker that dropped to user "mosquitto"
 * reaches it too) and on a unix socket inside that folder, stop it fast
 * or immediately (a crash), start it again on the same data, destroy it.
 * Every wait is bounded.
 *
 * initdb and postgres refuse to run as root: when the tests run as root
 * the folder (mode 0700) is given to user "postgres" and the binaries run
 * under `runuser -u postgres --`.  Authentication is "trust" for the test
 * user s2s, on loopback only.
 *
 * Environment:
 *   S2S_PG_BIN      folder of initdb/pg_ctl (default: the newest of
 *                   /usr/lib/postgresql/<N>/bin, then PATH)
 *   S2S_KEEP_TMP=1  keep the folder (for debugging)
 *
 * Typical use (a test program: one server, one database per test):
 *
 *   struct pgh_server *pg;
 *   int r = pgh_start(&pg);
 *   if (r == PGH_SKIP) return 77;          // no PostgreSQL binaries
 *   ck_assert_int_eq(r, 0);
 *   char uri[256];
 *   ck_assert_int_eq(pgh_create_db(pg, "t1", uri, sizeof(uri)), 0);
 *   ... plugin_opt_store = uri ...
 *   pgh_stop(pg, true); pgh_restart(pg);   // crash and recover
 *   pgh_destroy(pg);
 *
 * Not thread-safe.  Links libpq (pgh_create_db, pgh_sql).
 */
#ifndef S2S_TESTS_PG_HARNESS_H
#define S2S_TESTS_PG_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#define PGH_SKIP 77

struct pgh_server;

/* true if initdb and pg_ctl are there (else tests exit 77). */
bool pgh_available(void);

/*
 * initdb + start.  0 when the server accepts connections, PGH_SKIP when
 * the binaries are missing, -1 on failure (the server log is printed).
 * *out is set whenever memory allowed (destroy it).
 */
int pgh_start(struct pgh_server **out);

int pgh_port(const struct pgh_server *s);
const char *pgh_dir(const struct pgh_server *s);
/* "postgresql://s2s@127.0.0.1:<port>/<db>" for database db. */
void pgh_uri(const struct pgh_server *s, const char *db, char *buf, size_t n);

/* CREATE DATABASE db (dropped first if it exists); its URI into uri. */
int pgh_create_db(struct pgh_server *s, const char *db, char *uri, size_t n);
/* Run SQL on database db (no results); 0 or -1 (the error is printed). */
int pgh_sql(struct pgh_server *s, const char *db, const char *sql);
/* The first column of the first row of a query, as a long (-1: error). */
long pgh_sql_long(struct pgh_server *s, const char *db, const char *sql);

/* pg_ctl stop: -m immediate (a crash: no checkpoint) or -m fast. */
int pgh_stop(struct pgh_server *s, bool immediate);
/* Start again on the same data, folder and port. */
int pgh_restart(struct pgh_server *s);
bool pgh_running(struct pgh_server *s);

/* Stop (immediate) if running and remove the folder. */
void pgh_destroy(struct pgh_server *s);

#endif
