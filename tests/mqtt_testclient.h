/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mqtt_testclient.h - a small synchronous MQTT client for integration
 * tests, on libmosquitto's client API (linked into test programs only,
 * never into the plugin).  Every call waits for its acknowledgement with
 * a bounded timeout; received messages queue until tc_wait() takes them.
 */
#ifndef S2S_TESTS_MQTT_TESTCLIENT_H
#define S2S_TESTS_MQTT_TESTCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tc;

struct tc_msg {
	char *topic;
	uint8_t *payload;
	size_t len;
	int qos;
	bool retain;
};

#define TC_TIMEOUT_MS 20000  /* a bound for a loaded machine, not a speed */

/*
 * Connect (MQTT v5 if version == 5, else 3.1.1), clean start.  Returns the
 * CONNACK code (0 accepted; v5 135 / v3 5 not authorised) or -1 on a
 * timeout or socket error.  *out is set only on 0.
 */
int tc_connect(struct tc **out, int port, const char *id, const char *user,
	       const char *password, int version);
/*
 * As tc_connect, with a will (QoS 1, not retained; will_topic may be NULL)
 * and, if persistent, clean start off (the broker keeps the session and
 * queues QoS 1 messages while the client is away).
 */
int tc_connect_will(struct tc **out, int port, const char *id,
		    const char *user, const char *password, int version,
		    const char *will_topic, const void *will, size_t will_len,
		    bool persistent);
/* Disconnect so that the broker publishes the will (v5 reason 4). */
void tc_drop_with_will(struct tc *c);
/* Granted QoS (0..2), 128+ if refused, -1 on timeout. */
int tc_subscribe(struct tc *c, const char *filter, int qos);
/*
 * Publish and wait for the acknowledgement: the v5 PUBACK reason code for
 * QoS 1 (0 accepted, also for 16 "no matching subscribers"; 135 not
 * authorised), 0 for QoS 0 once sent, -1 on
 * timeout or when the connection was lost.
 */
int tc_publish(struct tc *c, const char *topic, const void *payload,
	       size_t len, int qos, bool retain);
/* Take the oldest message matching filter (NULL: any) within timeout_ms. */
bool tc_wait(struct tc *c, const char *filter, int timeout_ms,
	     struct tc_msg *out);
size_t tc_pending(struct tc *c, const char *filter);
void tc_msg_free(struct tc_msg *m);
bool tc_connected(struct tc *c);
/* Wait until the broker closes the connection. */
bool tc_wait_disconnect(struct tc *c, int timeout_ms);
void tc_close(struct tc *c);

#endif
