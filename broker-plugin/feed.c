/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * feed.c - the verified feed (plugin_opt_feed on): every package the gate
 * accepted is also published, as one JSON object, on ROOT/verified/<pair>,
 * so that dashboards and rule engines consume verified data with any MQTT
 * client, without our library (docs/INTEGRATION.md, "The verified feed").
 *
 *   {"pair":"alice~bob","from":"alice","to":"bob","session":"<T>",
 *    "seq":"<n>","ts":1732570000,"profile":"hardened",
 *    "encoding":"utf8","msg":"..."}
 *
 * session and seq are 64-bit, so they are decimal strings (cJSON keeps
 * numbers as doubles, exact only up to 2^53); ts (unix seconds of the
 * acceptance) is a plain integer.  msg is the message as text when it is
 * valid UTF-8 without NUL bytes ("encoding":"utf8"), otherwise its base64
 * ("encoding":"base64", RFC 4648 with padding).
 *
 * Who may read it (docs/OPERATIONS.md, "The verified feed"): the two
 * members of the pair and admin clients always; and clients whose MQTT
 * user name is listed in plugin_opt_feed_readers (authenticate them with
 * Mosquitto's password_file), or every client with "any".  Nobody but the
 * CS publishes there (acl.c).
 *
 * Published at QoS 1, not retained, after the store commit, from the
 * broker's main thread (inside MOSQ_EVT_MESSAGE, where publishing is
 * allowed); the broker routes it at the start of its next loop, after the
 * package itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "json.h"
#include "plugin.h"

/* Valid UTF-8 (RFC 3629: no overlongs, no surrogates) and no NUL byte. */
static bool
utf8_text(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp, min;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* RFC 4648 base64 with padding, NUL-terminated, malloc()ed. */
static char *
base64(const uint8_t *s, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out, *o;
	size_t i;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((n + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
			     s[i + 2];

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

char *
cs_feed_json(const struct cs_pair *p, const struct s2s_package *pkg,
	     int64_t ts, size_t *len)
{
	struct s2s_json *o = s2s_json_new_object();
	char from[CS_ID_BUF], to[CS_ID_BUF], *txt = NULL, *b64 = NULL;
	const char *prof = s2s_profile_name(pkg->profile);

	if (!o || pkg->sender_len >= sizeof(from) ||
	    pkg->receiver_len >= sizeof(to))
		goto out;
	memcpy(from, pkg->sender, pkg->sender_len);
	from[pkg->sender_len] = '\0';
	memcpy(to, pkg->receiver, pkg->receiver_len);
	to[pkg->receiver_len] = '\0';
	s2s_json_add_string(o, "pair", p->id);
	s2s_json_add_string(o, "from", from);
	s2s_json_add_string(o, "to", to);
	s2s_json_add_u64_string(o, "session", pkg->session);
	s2s_json_add_u64_string(o, "seq", pkg->seq);
	s2s_json_add_int(o, "ts", ts);
	s2s_json_add_string(o, "profile", prof ? prof : "unknown");
	if (utf8_text(pkg->msg, pkg->msg_len)) {
		/* Copy: the message in the package is not NUL-terminated. */
		char *m = malloc(pkg->msg_len + 1);

		if (!m)
			goto out;
		memcpy(m, pkg->msg, pkg->msg_len);
		m[pkg->msg_len] = '\0';
		s2s_json_add_string(o, "encoding", "utf8");
		s2s_json_add_string(o, "msg", m);
		free(m);
	} else {
		b64 = base64(pkg->msg, pkg->msg_len);
		if (!b64)
			goto out;
		s2s_json_add_string(o, "encoding", "base64");
		s2s_json_add_string(o, "msg", b64);
	}
	txt = s2s_json_print(o, len);
out:
	free(b64);
	s2s_json_free(o);
	return txt;
}

void
cs_feed_accepted(struct s2s_cs *cs, const struct cs_pair *p,
		 const struct s2s_package *pkg)
{
	char topic[512];
	size_t len = 0;
	char *json;
	int r;

	r = snprintf(topic, sizeof(topic), "%s/verified/%s",
		     cs->opt.topic_root, p->id);
	if (r < 0 || (size_t)r >= sizeof(topic))
		return;
	json = cs_feed_json(p, pkg, cs_now_s(), &len);
	if (!json) {
		cs_log(MOSQ_LOG_WARNING, "feed: out of memory, record of pair "
		       "'%s' seq %llu not published", p->id,
		       (unsigned long long)pkg->seq);
		return;
	}
	/* On success the broker owns (and frees) the payload. */
	if (mosquitto_broker_publish(NULL, topic, (int)len, json, 1, false,
				     NULL) != MOSQ_ERR_SUCCESS) {
		cs_log(MOSQ_LOG_WARNING, "feed: cannot publish on %s", topic);
		free(json);
	}
}

/* Is name in the comma-separated list (no spaces)? */
static bool
listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (list && *list) {
		size_t l = strcspn(list, ",");

		if (l == n && memcmp(list, name, n) == 0)
			return true;
		list += l;
		if (*list == ',')
			list++;
	}
	return false;
}

bool
cs_feed_reader(const struct s2s_cs *cs, enum cs_conn_kind kind,
	       const char *username)
{
	if (!cs->opt.feed)
		return false;
	if (kind == CS_CONN_ADMIN)
		return true;
	if (!cs->opt.feed_readers)
		return false;
	if (strcmp(cs->opt.feed_readers, "any") == 0)
		return true;
	return username && listed(cs->opt.feed_readers, username);
}

bool
cs_feed_acl(struct s2s_cs *cs, enum cs_conn_kind kind, const char *username,
	    int access, const char *topic)
{
	const char *root = cs->opt.topic_root;
	size_t rl = strlen(root);
	struct cs_topic t;

	if (!topic || (access != MOSQ_ACL_READ &&
		       access != MOSQ_ACL_SUBSCRIBE) ||
	    !cs_feed_reader(cs, kind, username))
		return false;
	if (strncmp(topic, root, rl) != 0 ||
	    strncmp(topic + rl, "/verified/", 10) != 0)
		return false;
	/* The whole feed: ROOT/verified/+ or ROOT/verified/#. */
	if (access == MOSQ_ACL_SUBSCRIBE &&
	    (strcmp(topic + rl + 10, "+") == 0 ||
	     strcmp(topic + rl + 10, "#") == 0))
		return true;
	if (strpbrk(topic, "+#"))
		return false;
	cs_topic_parse(root, topic, &t);
	return t.kind == CS_T_VERIFIED;
}
