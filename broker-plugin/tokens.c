/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tokens.c - single-use connect tokens (protocol v2): the table of token
 * nonces the CS has accepted, each kept until its token expires, in the
 * store's database so a restart forgets none of them.
 *
 * Deliberately apart from store.c (packages, chains, registry): one small
 * table and three calls, used only at CONNECT (never on the gate's path):
 *
 *   used_tokens(user TEXT, nonce BLOB, exp INTEGER,
 *               PRIMARY KEY(user, nonce)) WITHOUT ROWID
 *
 * Only tokens whose signature (or enrolment MAC) verified are recorded, so
 * the table is bounded by the tokens the key holders minted within
 * token_max_age; cs_tokens_prune() drops expired rows (from TICK).
 */
#include <string.h>

#include <sqlite3.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

enum s2s_err
cs_tokens_open(struct s2s_cs *cs)
{
	char *msg = NULL;

	if (sqlite3_exec(cs->db, "CREATE TABLE IF NOT EXISTS used_tokens("
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

enum s2s_err
cs_token_use(struct s2s_cs *cs, const char *user,
	     const uint8_t nonce[S2S_TOKEN_NONCE_LEN], uint64_t exp)
{
	sqlite3_stmt *s = NULL;
	enum s2s_err rc = S2S_ERR_STORE;
	int r;

	if (sqlite3_prepare_v2(cs->db, "INSERT INTO used_tokens(user, nonce, "
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
		       sqlite3_errmsg(cs->db));
	sqlite3_finalize(s);
	return rc;
}

long
cs_tokens_prune(struct s2s_cs *cs, int64_t now)
{
	sqlite3_stmt *s = NULL;
	long n = -1;

	if (sqlite3_prepare_v2(cs->db, "DELETE FROM used_tokens WHERE exp < ?1",
			       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, now);
		if (sqlite3_step(s) == SQLITE_DONE)
			n = sqlite3_changes(cs->db);
	}
	sqlite3_finalize(s);
	return n;
}

long
cs_tokens_count(struct s2s_cs *cs)
{
	sqlite3_stmt *s = NULL;
	long n = -1;

	if (sqlite3_prepare_v2(cs->db, "SELECT count(*) FROM used_tokens", -1,
			       &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

enum s2s_err
cs_enrol_code_hash_get(struct s2s_cs *cs, const char *id, int64_t now,
		       uint8_t hash[S2S_SHA256_LEN])
{
	sqlite3_stmt *s = NULL;
	enum s2s_err rc = S2S_ERR_NOT_FOUND;

	if (sqlite3_prepare_v2(cs->db, "SELECT code_hash, expires FROM "
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
