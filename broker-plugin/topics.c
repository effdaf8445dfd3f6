/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * topics.c - the topic tree of docs/PROTOCOL.md, "Topics".
 */
#include <stdio.h>
#include <string.h>

#include "plugin.h"

/* Copy the n bytes at s into out[CS_ID_BUF] if they are a valid id. */
static bool
take_id(const char *s, size_t n, char out[CS_ID_BUF])
{
	if (n == 0 || n > S2S_MSG_ID_MAX)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return s2s_id_valid(out);
}

bool
cs_pair_split(const char *pair, char a[CS_ID_BUF], char b[CS_ID_BUF])
{
	const char *t = strchr(pair, '~');

	if (!t || !take_id(pair, (size_t)(t - pair), a) ||
	    !take_id(t + 1, strlen(t + 1), b))
		return false;
	return strcmp(a, b) < 0;
}

static bool
take_pair(const char *s, size_t n, char out[CS_PAIR_BUF])
{
	char a[CS_ID_BUF], b[CS_ID_BUF];

	if (n == 0 || n >= CS_PAIR_BUF)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return cs_pair_split(out, a, b);
}

void
cs_topic_parse(const char *root, const char *topic, struct cs_topic *t)
{
	size_t rl = strlen(root);
	const char *rest, *slash;

	memset(t, 0, sizeof(*t));
	if (strncmp(topic, "$CONTROL/s2s/", 13) == 0 ||
	    strcmp(topic, "$CONTROL/s2s") == 0) {
		if (strcmp(topic, CS_CONTROL_TOPIC) == 0)
			t->kind = CS_T_CONTROL;
		else if (strcmp(topic, CS_CONTROL_RESPONSE) == 0)
			t->kind = CS_T_CONTROL_RESP;
		else
			t->kind = CS_T_CONTROL_OTHER;
		return;
	}
	if (strncmp(topic, CS_SYS_PREFIX, strlen(CS_SYS_PREFIX)) == 0 ||
	    strcmp(topic, "$SYS/broker/s2s") == 0) {
		t->kind = CS_T_SYS;
		return;
	}
	if (strncmp(topic, root, rl) != 0 ||
	    (topic[rl] != '/' && topic[rl] != '\0')) {
		t->kind = CS_T_FOREIGN;
		return;
	}
	t->kind = CS_T_ROOT_OTHER;
	if (topic[rl] == '\0')
		return;
	rest = topic + rl + 1;
	if (strncmp(rest, "bridge/", 7) == 0) {
		/* ROOT/bridge/<broker>/pair/<pair>/<sender> or .../inbox/<id> */
		rest += 7;
		slash = strchr(rest, '/');
		if (!slash || !take_id(rest, (size_t)(slash - rest), t->broker))
			goto other;
		rest = slash + 1;
		if (strncmp(rest, "inbox/", 6) == 0 &&
		    take_id(rest + 6, strlen(rest + 6), t->id)) {
			t->inner = CS_T_INBOX;
			t->kind = CS_T_BRIDGE;
		} else if (strncmp(rest, "pair/", 5) == 0) {
			rest += 5;
			slash = strchr(rest, '/');
			if (slash && take_pair(rest, (size_t)(slash - rest),
					       t->pair) &&
			    take_id(slash + 1, strlen(slash + 1), t->id)) {
				t->inner = CS_T_PAIR;
				t->kind = CS_T_BRIDGE;
			}
		}
		goto other;
	}
	if (strcmp(rest, "cs/register") == 0) {
		t->kind = CS_T_REGISTER;
	} else if (strncmp(rest, "req/", 4) == 0) {
		if (take_id(rest + 4, strlen(rest + 4), t->id))
			t->kind = CS_T_REQ;
	} else if (strncmp(rest, "inbox/", 6) == 0) {
		if (take_id(rest + 6, strlen(rest + 6), t->id))
			t->kind = CS_T_INBOX;
	} else if (strncmp(rest, "verified/", 9) == 0) {
		if (take_pair(rest + 9, strlen(rest + 9), t->pair))
			t->kind = CS_T_VERIFIED;
	} else if (strncmp(rest, "pair/", 5) == 0) {
		rest += 5;
		slash = strchr(rest, '/');
		if (slash && take_pair(rest, (size_t)(slash - rest), t->pair) &&
		    take_id(slash + 1, strlen(slash + 1), t->id))
			t->kind = CS_T_PAIR;
	}
other:
	if (t->kind == CS_T_ROOT_OTHER) {
		memset(t->id, 0, sizeof(t->id));
		memset(t->pair, 0, sizeof(t->pair));
		memset(t->broker, 0, sizeof(t->broker));
	}
}

bool
cs_topic_inbox(const char *root, const char *id, char *buf, size_t n)
{
	int r = snprintf(buf, n, "%s/inbox/%s", root, id);

	return r > 0 && (size_t)r < n;
}
