/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mosquitto_stubs.c - the broker API the plugin uses, faked for unit tests
 * (see mosquitto_stubs.h).  Never linked into the plugin.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "mosquitto_stubs.h"

struct mosquitto {
	char *id;
	char *username;
};

static struct stub_pub *pubs;
static size_t npubs, cap_pubs;
static char **kicks;
static size_t nkicks;
static char **logs;
static size_t nlogs;
static bool echo;

static char *
xstrdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		abort();
	return d;
}

struct mosquitto *
stub_client_new(const char *id, const char *username)
{
	struct mosquitto *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->id = xstrdup(id);
	c->username = xstrdup(username);
	return c;
}

void
stub_client_free(struct mosquitto *c)
{
	if (!c)
		return;
	free(c->id);
	free(c->username);
	free(c);
}

const char *
mosquitto_client_id(const struct mosquitto *client)
{
	return client ? client->id : NULL;
}

const char *
mosquitto_client_username(const struct mosquitto *client)
{
	return client ? client->username : NULL;
}

/* The stub clients speak MQTT 5 (the QoS 2 resend rule applies). */
int
mosquitto_client_protocol_version(const struct mosquitto *client)
{
	(void)client;
	return 5;
}

int
mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
			    MOSQ_FUNC_generic_callback cb_func,
			    const void *event_data, void *userdata)
{
	(void)identifier;
	(void)event;
	(void)event_data;
	(void)userdata;
	return cb_func ? MOSQ_ERR_SUCCESS : MOSQ_ERR_INVAL;
}

int
mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
			      MOSQ_FUNC_generic_callback cb_func,
			      const void *event_data)
{
	(void)identifier;
	(void)event;
	(void)cb_func;
	(void)event_data;
	return MOSQ_ERR_SUCCESS;
}

void
mosquitto_log_printf(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	(void)level;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	logs = realloc(logs, (nlogs + 1) * sizeof(*logs));
	if (!logs)
		abort();
	logs[nlogs++] = xstrdup(buf);
	if (echo || getenv("S2S_STUB_LOG"))
		fprintf(stderr, "[log] %s\n", buf);
}

int
mosquitto_broker_publish_copy(const char *clientid, const char *topic,
			      int payloadlen, const void *payload, int qos,
			      bool retain, mosquitto_property *properties)
{
	struct stub_pub *p;

	(void)properties;
	if (!topic || payloadlen < 0 || (payloadlen > 0 && !payload))
		return MOSQ_ERR_INVAL;
	if (npubs == cap_pubs) {
		cap_pubs = cap_pubs ? 2 * cap_pubs : 16;
		pubs = realloc(pubs, cap_pubs * sizeof(*pubs));
		if (!pubs)
			abort();
	}
	p = &pubs[npubs++];
	p->clientid = xstrdup(clientid);
	p->topic = xstrdup(topic);
	p->len = (size_t)payloadlen;
	p->payload = malloc(p->len + 1);
	if (!p->payload)
		abort();
	if (p->len)
		memcpy(p->payload, payload, p->len);
	p->payload[p->len] = 0;
	p->qos = qos;
	p->retain = retain;
	return MOSQ_ERR_SUCCESS;
}

int
mosquitto_broker_publish(const char *clientid, const char *topic,
			 int payloadlen, void *payload, int qos, bool retain,
			 mosquitto_property *properties)
{
	int rc = mosquitto_broker_publish_copy(clientid, topic, payloadlen,
					       payload, qos, retain,
					       properties);

	if (rc == MOSQ_ERR_SUCCESS)
		free(payload);
	return rc;
}

int
mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
	(void)with_will;
	kicks = realloc(kicks, (nkicks + 1) * sizeof(*kicks));
	if (!kicks)
		abort();
	kicks[nkicks++] = xstrdup(clientid);
	return MOSQ_ERR_SUCCESS;
}

size_t
stub_pub_count(void)
{
	return npubs;
}

const struct stub_pub *
stub_pub_at(size_t i)
{
	return i < npubs ? &pubs[i] : NULL;
}

const struct stub_pub *
stub_pub_last(const char *topic)
{
	for (size_t i = npubs; i-- > 0;)
		if (strcmp(pubs[i].topic, topic) == 0)
			return &pubs[i];
	return NULL;
}

size_t
stub_pub_count_topic(const char *topic)
{
	size_t n = 0;

	for (size_t i = 0; i < npubs; i++)
		n += strcmp(pubs[i].topic, topic) == 0;
	return n;
}

bool
stub_pub_take(const char *topic, struct stub_pub *out)
{
	for (size_t i = 0; i < npubs; i++) {
		if (strcmp(pubs[i].topic, topic) != 0)
			continue;
		*out = pubs[i];
		memmove(&pubs[i], &pubs[i + 1], (npubs - i - 1) *
			sizeof(*pubs));
		npubs--;
		return true;
	}
	return false;
}

void
stub_pub_free(struct stub_pub *p)
{
	free(p->clientid);
	free(p->topic);
	free(p->payload);
	memset(p, 0, sizeof(*p));
}

void
stub_pub_reset(void)
{
	for (size_t i = 0; i < npubs; i++)
		stub_pub_free(&pubs[i]);
	free(pubs);
	pubs = NULL;
	npubs = cap_pubs = 0;
	for (size_t i = 0; i < nkicks; i++)
		free(kicks[i]);
	free(kicks);
	kicks = NULL;
	nkicks = 0;
}

size_t
stub_kick_count(void)
{
	return nkicks;
}

const char *
stub_kick_at(size_t i)
{
	return i < nkicks ? kicks[i] : NULL;
}

const char *
stub_log_find(const char *needle)
{
	for (size_t i = nlogs; i-- > 0;)
		if (strstr(logs[i], needle))
			return logs[i];
	return NULL;
}

void
stub_log_reset(void)
{
	for (size_t i = 0; i < nlogs; i++)
		free(logs[i]);
	free(logs);
	logs = NULL;
	nlogs = 0;
}

void
stub_log_echo(bool on)
{
	echo = on;
}
