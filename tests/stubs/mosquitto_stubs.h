/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mosquitto_stubs.h - hand-written stand-ins for the broker functions the
 * plugin calls (they live in /usr/sbin/mosquitto), so that the plugin's
 * handlers can be unit-tested in a plain process.
 *
 * A test creates fake clients with stub_client_new(), drives the
 * handlers (cs_on_* or the cs_* functions directly), and inspects what the
 * plugin published (stub_pub_*), kicked and logged.  Single-threaded.
 */
#ifndef S2S_TESTS_MOSQUITTO_STUBS_H
#define S2S_TESTS_MOSQUITTO_STUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mosquitto;

/* A fake client with this id (NULL: not yet authenticated) and username. */
struct mosquitto *stub_client_new(const char *id, const char *username);
void stub_client_free(struct mosquitto *c);

/* One message published by the plugin. */
struct stub_pub {
	char *clientid;         /* NULL for topic routing */
	char *topic;
	uint8_t *payload;
	size_t len;
	int qos;
	bool retain;
};

size_t stub_pub_count(void);
const struct stub_pub *stub_pub_at(size_t i);
/* The last message published on topic since the last reset, or NULL. */
const struct stub_pub *stub_pub_last(const char *topic);
/* Number of messages on topic; pop the oldest one on topic (copy out). */
size_t stub_pub_count_topic(const char *topic);
bool stub_pub_take(const char *topic, struct stub_pub *out);
void stub_pub_free(struct stub_pub *p);
void stub_pub_reset(void);

/* Client ids kicked with mosquitto_kick_client_by_clientid. */
size_t stub_kick_count(void);
const char *stub_kick_at(size_t i);

/* Last log line containing needle, or NULL; all lines are kept. */
const char *stub_log_find(const char *needle);
void stub_log_reset(void);
/* Print log lines to stderr as they come (S2S_STUB_LOG=1 also does). */
void stub_log_echo(bool on);

#endif
