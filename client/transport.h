/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * transport.h - the MQTT transport of the client library (private).
 *
 * transport_paho.c implements it on Eclipse Paho MQTTAsync (paho-mqtt3as,
 * MQTT 5) and is the only file of the project that includes a Paho header.
 * The rest of the library sees topics and byte strings.
 *
 * Threads: the callbacks run on Paho's network thread, possibly before the
 * call that caused them returns.  The blocking calls (connect, subscribe
 * with a timeout, publish_wait) must not be made from a callback.
 */
#ifndef S2S_CLIENT_TRANSPORT_H
#define S2S_CLIENT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

struct s2s_transport;

struct s2s_transport_opts {
	const char *uri;            /* tcp://host:port, ssl://... */
	const char *client_id;
	const char *username;       /* NULL: the client id */
	const char *persist_dir;    /* Paho's store of in-flight messages;
				     * NULL: memory only */
	int keepalive;              /* seconds */
	uint32_t session_expiry;    /* seconds */
	const char *tls_ca_file;    /* NULLs: defaults */
	const char *tls_cert_file;
	const char *tls_key_file;
	bool tls_verify;
	/* Failover: every broker URI, uris[0] == uri (nuris 0 or 1: uri
	 * only); each connect tries them in order. */
	const char *const *uris;
	size_t nuris;
};

struct s2s_transport_cbs {
	void *ctx;
	/*
	 * The password of the next CONNECT (called on the thread that calls
	 * s2s_transport_connect).  Write a NUL-terminated string; an empty
	 * one means no password and no user name.
	 */
	void (*password)(void *ctx, char *out, size_t out_len);
	/* Connected (first time or again); session_present from CONNACK. */
	void (*connected)(void *ctx, bool reconnect, bool session_present);
	/* Connection lost; reconnecting is the caller's job. */
	void (*lost)(void *ctx, const char *cause);
	/* A PUBLISH arrived. */
	void (*message)(void *ctx, const char *topic, const uint8_t *payload,
			size_t len);
	/*
	 * The broker answered a publish made with a non-zero tag: rc is
	 * S2S_OK or S2S_ERR_REJECTED (reason code >= 0x80) or S2S_ERR_MQTT;
	 * reason is the MQTT reason code.
	 */
	void (*published)(void *ctx, uint64_t tag, enum s2s_err rc,
			  int reason);
};

enum s2s_err s2s_transport_create(const struct s2s_transport_opts *o,
				  const struct s2s_transport_cbs *cbs,
				  struct s2s_transport **out);

/*
 * Connect and wait for CONNACK up to timeout_ms.  S2S_ERR_DENIED for
 * "not authorised" / "bad user name or password", S2S_ERR_TIMEOUT,
 * S2S_ERR_MQTT.  clean: start a new MQTT session (clean start).
 */
enum s2s_err s2s_transport_connect(struct s2s_transport *t, bool clean,
				   int timeout_ms);

bool s2s_transport_connected(const struct s2s_transport *t);

/*
 * Replace the live connection by a new one (the password callback is
 * asked again), keeping the old one until the broker has answered the
 * new CONNECT: Paho 1.3.11 notices a new connection only when its poll
 * wakes, so the old connection re-SUBSCRIBEs poke_topic (a topic it
 * holds; nothing retained is resent) from each SUBACK callback until
 * then.  The new connection takes the session over (same client id).
 * S2S_ERR_STATE when that cannot be done (not connected, publishes in
 * flight): disconnect and connect instead.  On failure the old connection
 * stays as it was.  Not from a callback.
 */
enum s2s_err s2s_transport_reconnect(struct s2s_transport *t,
				     const char *poke_topic, int timeout_ms);

/*
 * Subscribe with QoS 1 and no-local.  timeout_ms > 0 waits for SUBACK
 * (S2S_ERR_DENIED if refused); 0 returns at once.
 */
enum s2s_err s2s_transport_subscribe(struct s2s_transport *t,
				     const char *topic, int timeout_ms);

/*
 * Publish with QoS 1, not retained.  tag != 0 asks for the published()
 * callback.  Buffered while disconnected.
 */
enum s2s_err s2s_transport_publish(struct s2s_transport *t, const char *topic,
				   const uint8_t *payload, size_t len,
				   uint64_t tag);

/* Number of publishes not answered by the broker yet. */
unsigned s2s_transport_pending(struct s2s_transport *t);

/* Disconnect, waiting up to timeout_ms for in-flight messages. */
void s2s_transport_disconnect(struct s2s_transport *t, int timeout_ms);

/* NULL is a no-op.  Not from a callback. */
void s2s_transport_destroy(struct s2s_transport *t);

/* Paho's text for the last failed connect ("" if it gave none). */
void s2s_transport_last_error(struct s2s_transport *t, char *buf, size_t len);

/*
 * The broker URI of the live connection, or of the last one when none is
 * live (after a loss: the one that was lost); the first of the list
 * before any.  Owned by t, valid until s2s_transport_destroy.  Takes t's
 * lock: not with it held.
 */
const char *s2s_transport_broker(struct s2s_transport *t);

/* The Paho library version, for logs. */
const char *s2s_transport_version(void);

#endif /* S2S_CLIENT_TRANSPORT_H */
