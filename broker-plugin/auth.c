/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * auth.c - connect authentication (docs/PROTOCOL-control.md, "Connect
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

static enum s2s_err
check_token(struct s2s_cs *cs, const uint8_t pub[S2S_P256_PUB_LEN],
	    const struct s2s_key *key, const char *id, const char *password)
{
	struct s2s_key *k = NULL;
	enum s2s_err rc;

	if (!password)
		return S2S_ERR_AUTH;
	if (!key) {
		rc = s2s_key_from_public(pub, &k);
		if (rc != S2S_OK)
			return rc;
		key = k;
	}
	rc = s2s_token_check(key, id, password, strlen(password),
			     (uint64_t)cs_now_s(), cs->opt.token_max_age);
	s2s_key_destroy(k);
	return rc;
}

static int
refuse(const char *client_id, const char *why)
{
	cs_log(MOSQ_LOG_NOTICE, "refused connection of client '%s': %s",
	       client_id ? client_id : "(none)", why);
	return MOSQ_ERR_AUTH;
}

int
cs_auth_check(struct s2s_cs *cs, const struct mosquitto *client,
	      const char *client_id, const char *username,
	      const char *password)
{
	struct cs_device_rec rec;
	enum s2s_err rc;
	bool cid_device = false;

	cs_conn_forget(cs, client);

	if (client_id && s2s_id_valid(client_id)) {
		rc = cs_store_device_get(cs, client_id, &rec, NULL, NULL);
		if (rc == S2S_OK)
			cid_device = true;
		else if (rc != S2S_ERR_NOT_FOUND)
			return refuse(client_id, "store error");
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
				 password);
		if (rc != S2S_OK)
			return refuse(client_id, s2s_strerror(rc));
		if (remember(cs, client, CS_CONN_ADMIN, username) != 0)
			return MOSQ_ERR_NOMEM;
		cs_log(MOSQ_LOG_INFO, "admin connected as client '%s'",
		       client_id ? client_id : "");
		return MOSQ_ERR_SUCCESS;
	}

	if (cid_device) {
		if (rec.revoked)
			return refuse(client_id, "device revoked");
		if (!username || strcmp(username, client_id) != 0)
			return refuse(client_id, "username must equal the "
				      "device id");
		rc = check_token(cs, rec.pub, NULL, client_id, password);
		if (rc != S2S_OK)
			return refuse(client_id, rc == S2S_ERR_TIMEOUT ?
				      "token expired or too long-lived" :
				      s2s_strerror(rc));
		if (remember(cs, client, CS_CONN_DEVICE, client_id) != 0)
			return MOSQ_ERR_NOMEM;
		return MOSQ_ERR_SUCCESS;
	}

	/* A registered device's name used under another client id. */
	if (username && s2s_id_valid(username) &&
	    cs_store_device_get(cs, username, &rec, NULL, NULL) == S2S_OK)
		return refuse(client_id, "device username with another "
			      "client id");

	/* Enrolling or foreign client: allow_anonymous and others decide. */
	return MOSQ_ERR_PLUGIN_DEFER;
}
