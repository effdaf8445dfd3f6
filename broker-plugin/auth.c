/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.c - connect authentication (docs/PROTOCOL.md, "Connect
 * authentication") and the table of authenticated connections.
 *
 * The table is keyed by the broker's client pointer: an entry is written
 * at every CONNECT (BASIC_AUTH runs for every client once a plugin
 * registers it) and removed at DISCONNECT, so a reused pointer never
 * inherits a stale identity.  Clients without an entry are "other":
 * enrolling devices and foreign MQTT clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "plugin.h"
#include "s2s/secmem.h"

static struct cs_conn *
conn_find(struct s2s_cs *cs, const struct mosquitto *client,
	  struct cs_conn ***link)
{
	struct cs_conn **pp;

	for (pp = &cs->conns; *pp; pp = &(*pp)->next) {
		if ((*pp)->client == client) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

void
cs_conn_forget(struct s2s_cs *cs, const struct mosquitto *client)
{
	struct cs_conn **pp, *c;

	c = conn_find(cs, client, &pp);
	if (c) {
		*pp = c->next;
		free(c);
	}
}

void
cs_conn_free_all(struct s2s_cs *cs)
{
	while (cs->conns) {
		struct cs_conn *c = cs->conns;

		cs->conns = c->next;
		free(c);
	}
}

enum cs_conn_kind
cs_conn_kind(struct s2s_cs *cs, const struct mosquitto *client)
{
	struct cs_conn *c = conn_find(cs, client, NULL);

	return c ? c->kind : CS_CONN_OTHER;
}

const char *
cs_conn_id(struct s2s_cs *cs, const struct mosquitto *client)
{
	struct cs_conn *c = conn_find(cs, client, NULL);

	return c ? c->id : NULL;
}

bool
cs_device_here(struct s2s_cs *cs, const char *id)
{
	for (struct cs_conn *c = cs->conns; c; c = c->next)
		if (c->kind == CS_CONN_DEVICE && strcmp(c->id, id) == 0)
			return true;
	return false;
}

enum cs_conn_kind
cs_conn_kind_read(struct s2s_cs *cs, const struct mosquitto *client,
		  const char *client_id, const char *username)
{
	struct cs_device_rec rec;
	enum cs_conn_kind kind = cs_conn_kind(cs, client);

	if (kind != CS_CONN_OTHER)
		return kind;
	/*
	 * Not in the table: an offline persistent session of a device (its
	 * entry went with its DISCONNECT) still receives what is queued for
	 * it.  Only a device can have username == client id == a registered
	 * id: BASIC_AUTH demands a token for that combination.
	 */
	if (client_id && username && strcmp(client_id, username) == 0 &&
	    s2s_id_valid(client_id) &&
	    cs_store_device_get(cs, client_id, &rec, NULL, NULL) == S2S_OK &&
	    !rec.revoked)
		return CS_CONN_DEVICE;
	return CS_CONN_OTHER;
}

long
cs_conn_count(struct s2s_cs *cs, enum cs_conn_kind kind)
{
	long n = 0;

	for (struct cs_conn *c = cs->conns; c; c = c->next)
		n += c->kind == kind;
	return n;
}

static int
remember(struct s2s_cs *cs, const struct mosquitto *client,
	 enum cs_conn_kind kind, const char *id)
{
	struct cs_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return MOSQ_ERR_NOMEM;
	c->client = client;
	c->kind = kind;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->next = cs->conns;
	cs->conns = c;
	return MOSQ_ERR_SUCCESS;
}

/*
 * A protocol v2 token for (user, client_id) signed by pub (device) or by
 * key (admin), fresh, and never used before: it is recorded as used here,
 * so the same bytes can authenticate one CONNECT only.
 */
static enum s2s_err
check_token(struct s2s_cs *cs, const uint8_t pub[S2S_P256_PUB_LEN],
	    const struct s2s_key *key, const char *user,
	    const char *client_id, const char *password)
{
	uint8_t nonce[S2S_TOKEN_NONCE_LEN];
	struct s2s_key *k = NULL;
	uint64_t exp = 0;
	enum s2s_err rc;

	if (!password || !client_id)
		return S2S_ERR_AUTH;
	if (!key) {
		rc = s2s_key_from_public(pub, &k);
		if (rc != S2S_OK)
			return rc;
		/* A device's key: no table on the broker's thread. */
		s2s_key_no_table(k);
		key = k;
	}
	rc = s2s_token_verify(key, user, client_id, password,
			      strlen(password), (uint64_t)cs_now_s(),
			      cs->opt.token_max_age, nonce, &exp);
	s2s_key_destroy(k);
	if (rc == S2S_OK)
		rc = cs_token_use(cs, user, nonce, exp);
	return rc;
}

static const char *
token_why(enum s2s_err rc)
{
	switch (rc) {
	case S2S_ERR_VERSION:
		return "protocol v1 token (\"s2s1:\"): this CS speaks connect "
		       "protocol v2, upgrade the device library / s2s tool";
	case S2S_ERR_REPLAY:
		return "token already used (replayed)";
	case S2S_ERR_TIMEOUT:
		return "token expired or too long-lived (check the clock, "
		       "token_max_age)";
	case S2S_ERR_FORMAT:
		return "password is not an s2s connect token";
	default:
		return s2s_strerror(rc);
	}
}

static int
refuse(const char *client_id, const char *why)
{
	cs_log(MOSQ_LOG_NOTICE, "refused connection of client '%s': %s",
	       client_id ? client_id : "(none)", why);
	return MOSQ_ERR_AUTH;
}

/*
 * The store cannot answer (PostgreSQL down or restarting): not a refusal
 * of these credentials.  Mosquitto closes the connection without a
 * CONNACK for any code but MOSQ_ERR_AUTH, so the device sees a failed
 * connect and tries again later (or another broker); a CONNACK "not
 * authorised" would read as a revocation and stop it for good.
 */
static int
unavailable(const char *client_id)
{
	cs_log(MOSQ_LOG_WARNING, "connection of client '%s' closed without "
	       "an answer: store error (the client will try again)",
	       client_id ? client_id : "(none)");
	return MOSQ_ERR_UNKNOWN;
}

/*
 * The device id is taken over by a new authenticated connection: its old
 * connection is no longer the device (Mosquitto checks the old
 * connection's will after this, while it is still connected).
 */
static void
supersede(struct s2s_cs *cs, const struct mosquitto *client, const char *id)
{
	for (struct cs_conn *c = cs->conns; c; c = c->next)
		if (c->client != client && c->kind == CS_CONN_DEVICE &&
		    strcmp(c->id, id) == 0)
			c->kind = CS_CONN_OTHER;
}

static bool
is_token(const char *pw)
{
	return pw && (strncmp(pw, "s2s2:", 5) == 0 ||
		      s2s_token_is_v1(pw, strlen(pw)));
}

/*
 * An enrolment login "s2s2e:..." (username = client id = id): a new key
 * for a known id, a revoked id coming back, or any id under `enrollment
 * code`, proven with the id's enrolment code; an unknown id under open
 * enrolment needs no code.  Accepted as an enrolling client (kind other).
 */
static int
enrol_login(struct s2s_cs *cs, const char *id, bool known,
	    const char *password)
{
	uint8_t hash[S2S_SHA256_LEN], nonce[S2S_TOKEN_NONCE_LEN];
	uint64_t exp = 0;
	bool have;
	enum s2s_err rc;

	if (cs_name_reserved(cs, id))
		return refuse(id, "enrolment refused");
	rc = cs_enrol_code_hash_get(cs, id, cs_now_s(), hash);
	if (rc != S2S_OK && rc != S2S_ERR_NOT_FOUND)
		return unavailable(id);
	have = rc == S2S_OK;
	if (!have && (known || !cs->opt.enroll_open))
		return refuse(id, "enrolment refused");
	rc = s2s_enrol_token_verify(id, have ? hash : NULL, password,
				    strlen(password), (uint64_t)cs_now_s(),
				    cs->opt.token_max_age, nonce, &exp);
	s2s_memzero(hash, sizeof(hash));
	if (rc == S2S_OK)
		rc = cs_token_use(cs, id, nonce, exp);
	else if (!have && rc == S2S_ERR_AUTH)
		/* Open enrolment of an unknown id: any code (or none) will
		 * do, as for an anonymous CONNECT; well-formed and fresh. */
		rc = S2S_OK;
	if (rc == S2S_ERR_STORE)
		return unavailable(id);
	if (rc != S2S_OK)
		return refuse(id, rc == S2S_ERR_AUTH ? "enrolment refused" :
			      token_why(rc));
	cs_log(MOSQ_LOG_INFO, "enrolment login of '%s'", id);
	return MOSQ_ERR_SUCCESS;
}

int
cs_auth_check(struct s2s_cs *cs, const struct mosquitto *client,
	      const char *client_id, const char *username,
	      const char *password)
{
	struct cs_device_rec rec;
	enum s2s_err rc;
	bool cid_device = false, cid_valid;

	cs_conn_forget(cs, client);
	cid_valid = client_id && s2s_id_valid(client_id);

	if (cid_valid) {
		rc = cs_store_device_get(cs, client_id, &rec, NULL, NULL);
		if (rc == S2S_OK)
			cid_device = true;
		else if (rc != S2S_ERR_NOT_FOUND)
			return unavailable(client_id);
	}

	if (username && !cid_device) {
		char broker[CS_ID_BUF];
		int b = cs_cluster_bridge_auth(cs, username, password, broker);

		if (b < 0)
			return refuse(client_id, "bad bridge password");
		if (b > 0) {
			if (remember(cs, client, CS_CONN_BRIDGE, broker) != 0)
				return MOSQ_ERR_NOMEM;
			cs_log(MOSQ_LOG_NOTICE, "bridge of broker '%s' "
			       "connected as client '%s'", broker,
			       client_id ? client_id : "");
			return MOSQ_ERR_SUCCESS;
		}
	}

	if (username && strcmp(username, cs->opt.admin_user) == 0) {
		if (cid_device)
			return refuse(client_id, "admin login with a device "
				      "client id");
		rc = check_token(cs, NULL, cs->admin_key, cs->opt.admin_user,
				 client_id, password);
		if (rc == S2S_ERR_STORE)
			return unavailable(client_id);
		if (rc != S2S_OK)
			return refuse(client_id, token_why(rc));
		if (remember(cs, client, CS_CONN_ADMIN, username) != 0)
			return MOSQ_ERR_NOMEM;
		cs_log(MOSQ_LOG_INFO, "admin connected as client '%s'",
		       client_id ? client_id : "");
		return MOSQ_ERR_SUCCESS;
	}

	/* Enrolment login (protocol v2): user name = client id = the id. */
	if (password && s2s_enrol_token_is(password, strlen(password))) {
		if (!cid_valid || !username || strcmp(username, client_id))
			return refuse(client_id, "enrolment login: user name "
				      "and client id must both be the id");
		int mrc = enrol_login(cs, client_id, cid_device, password);

		if (mrc == MOSQ_ERR_SUCCESS)    /* it takes the id over */
			supersede(cs, client, client_id);
		return mrc;
	}

	if (cid_device) {
		/* Every refusal below reads alike on the wire (CONNACK not
		 * authorised); only the log tells why. */
		if (!username || strcmp(username, client_id) != 0)
			return refuse(client_id, "client id of a registered "
				      "device without its token");
		if (rec.revoked)
			return refuse(client_id, "device revoked");
		rc = check_token(cs, rec.pub, NULL, client_id, client_id,
				 password);
		if (rc == S2S_ERR_STORE)
			return unavailable(client_id);
		if (rc != S2S_OK)
			return refuse(client_id, token_why(rc));
		supersede(cs, client, client_id);
		if (remember(cs, client, CS_CONN_DEVICE, client_id) != 0)
			return MOSQ_ERR_NOMEM;
		cs_cluster_device_up(cs, client_id);
		return MOSQ_ERR_SUCCESS;
	}

	/* A token for a device under another client id, or for an unknown
	 * id: never a device, never deferred to a password file. */
	if (is_token(password))
		return refuse(client_id, "device token with a client id that "
			      "is not that registered device");

	/* Enrolling or foreign client, or a password-file user (who may even
	 * share a name with a device: it is never that device; the
	 * password file, allow_anonymous and other plugins decide). */
	return MOSQ_ERR_PLUGIN_DEFER;
}
