/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * admin.c - s2s_admin_call(): one request/response of the CS admin API
 * over $CONTROL/s2s/v1, as the admin user with an admin token.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"
#include "transport.h"

#define ADMIN_TOPIC "$CONTROL/s2s/v1"
#define ADMIN_RESPONSE "$CONTROL/s2s/v1/response"

struct call {
	struct s2s_key *key;
	const char *user;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *reply;
};

static void
password(void *ctx, char *out, size_t len)
{
	struct call *k = ctx;
	char tok[S2S_TOKEN_MAX];

	out[0] = '\0';
	if (s2s_token_make(k->key, k->user, (uint64_t)time(NULL) + 300,
			   tok) == S2S_OK)
		snprintf(out, len, "%s", tok);
	s2s_memzero(tok, sizeof(tok));
}

static void
message(void *ctx, const char *topic, const uint8_t *p, size_t n)
{
	struct call *k = ctx;

	if (strcmp(topic, ADMIN_RESPONSE))
		return;
	pthread_mutex_lock(&k->lock);
	if (!k->reply) {
		k->reply = malloc(n + 1);
		if (k->reply) {
			memcpy(k->reply, p, n);
			k->reply[n] = '\0';
		}
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
}

S2S_EXPORT enum s2s_err
s2s_admin_call(const char *broker, const char *admin_key_file,
	       const char *admin_user, const char *ca_file,
	       const char *request, int timeout_ms, char **response)
{
	struct s2s_transport_opts o;
	struct s2s_transport_cbs cb;
	struct s2s_transport *t = NULL;
	struct call k;
	struct timespec ts;
	char id[40];
	uint8_t rnd[8];
	enum s2s_err e;

	*response = NULL;
	if (!broker || !admin_key_file || !request)
		return S2S_ERR_INVAL;
	if (!timeout_ms)
		return S2S_ERR_INVAL;   /* the call needs the answer */
	if (timeout_ms < 0)
		timeout_ms = 10000;
	memset(&k, 0, sizeof(k));
	k.user = admin_user ? admin_user : "s2s-admin";
	e = s2s_key_load_private(admin_key_file, &k.key);
	if (e)
		return e;
	pthread_mutex_init(&k.lock, NULL);
	pthread_cond_init(&k.cond, NULL);
	s2s_random(rnd, sizeof(rnd));
	/* A client id no device can have ('~' is outside the id alphabet
	 * only in pair ids; use a prefix the CS never registers). */
	snprintf(id, sizeof(id), "s2s-ctl-%02x%02x%02x%02x%02x%02x%02x%02x",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
		 rnd[7]);
	memset(&o, 0, sizeof(o));
	o.uri = broker;
	o.client_id = id;
	o.username = k.user;
	o.keepalive = 30;
	o.tls_ca_file = ca_file;
	o.tls_verify = true;
	memset(&cb, 0, sizeof(cb));
	cb.ctx = &k;
	cb.password = password;
	cb.message = message;
	e = s2s_transport_create(&o, &cb, &t);
	if (!e)
		e = s2s_transport_connect(t, true, timeout_ms);
	if (!e)
		e = s2s_transport_subscribe(t, ADMIN_RESPONSE, timeout_ms);
	if (!e)
		e = s2s_transport_publish(t, ADMIN_TOPIC,
					  (const uint8_t *)request,
					  strlen(request), 0);
	if (!e) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&k.lock);
		while (!k.reply)
			if (pthread_cond_timedwait(&k.cond, &k.lock, &ts) ==
			    ETIMEDOUT)
				break;
		*response = k.reply;
		k.reply = NULL;
		pthread_mutex_unlock(&k.lock);
		if (!*response)
			e = S2S_ERR_TIMEOUT;
	}
	s2s_transport_destroy(t);
	free(k.reply);
	s2s_key_destroy(k.key);
	pthread_mutex_destroy(&k.lock);
	pthread_cond_destroy(&k.cond);
	return e;
}
