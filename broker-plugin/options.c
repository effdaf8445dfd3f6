/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * options.c - plugin_opt_* from mosquitto.conf into struct cs_options.
 *
 * Every option is documented with its default in docs/OPERATIONS.md.  A bad
 * value (or an unknown key: options bind to our plugin line, so an unknown
 * one is a typo) stops the broker at start with a message naming it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "plugin.h"

#define DEFAULT_STORE "/var/lib/mosquitto/s2s.db"
#define DEFAULT_CS_KEY "/var/lib/mosquitto/s2s-cs.key"

static enum s2s_err
fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return S2S_ERR_CONFIG;
}

static bool
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool
parse_bool(const char *s, bool *out, const char *yes, const char *no)
{
	if (strcmp(s, yes) == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, no) == 0) {
		*out = false;
		return true;
	}
	return false;
}

/* A topic root: one or more plain levels, no wildcards, no leading '$'. */
static bool
root_valid(const char *r)
{
	size_t n = strlen(r);

	if (n == 0 || n > 128 || r[0] == '/' || r[n - 1] == '/' || r[0] == '$')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (r[i] == '+' || r[i] == '#' || (unsigned char)r[i] < 0x21 ||
		    (unsigned char)r[i] > 0x7e)
			return false;
		if (r[i] == '/' && r[i + 1] == '/')
			return false;
	}
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a > b && strcmp(s + a - b, suffix) == 0;
}

/* "any", or non-empty user names separated by single commas. */
static bool
readers_valid(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || v[0] == ',' || v[n - 1] == ',' || strstr(v, ",,"))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			return false;
	return true;
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

enum s2s_err
cs_options_parse(struct cs_options *o, const struct mosquitto_opt *opts,
		 int count, char *err, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->store = strdup(DEFAULT_STORE);
	o->cs_key = strdup(DEFAULT_CS_KEY);
	o->topic_root = strdup("s2s");
	snprintf(o->cs_id, sizeof(o->cs_id), "cs");
	snprintf(o->admin_user, sizeof(o->admin_user), "s2s-admin");
	o->profile = S2S_PROFILE_HARDENED;
	o->enroll_open = false;
	o->foreign = CS_FOREIGN_ALLOW;
	o->negotiation_timeout = 30;
	o->token_max_age = 600;
	o->retention_packages = 10000;
	o->retention_age = 0;
	o->max_package = 512u * 1024u;
	o->max_signature = 128u * 1024u;
	o->stats_interval = 10;
	o->store_segment = 64u << 20;
	o->store_sync_ms = 50;
	o->enroll_expiry = 86400;
	o->enroll_pending_max = 1000;
	o->fetch_reply_bytes = 1u << 20;
	o->fetch_client_bytes = 4u << 20;
	if (!o->store || !o->cs_key || !o->topic_root)
		return fail(err, n, "out of memory");

	for (int i = 0; i < count; i++) {
		const char *k = opts[i].key, *v = opts[i].value;
		uint64_t u;
		char **str = NULL;

		if (!k)
			continue;
		if (!v)
			v = "";
		if (strcmp(k, "store") == 0) {
			if (!*v)
				return fail(err, n, "plugin_opt_store: empty path");
			str = &o->store;
		} else if (strcmp(k, "cs_key") == 0) {
			if (!ends_with(v, ".key"))
				return fail(err, n, "plugin_opt_cs_key '%s': the "
					    "path must end in \".key\"", v);
			str = &o->cs_key;
		} else if (strcmp(k, "admin_key") == 0) {
			if (!*v)
				return fail(err, n,
					    "plugin_opt_admin_key: empty path");
			str = &o->admin_key;
		} else if (strcmp(k, "topic_root") == 0) {
			if (!root_valid(v))
				return fail(err, n, "plugin_opt_topic_root '%s': "
					    "not a plain topic (no wildcards, "
					    "no leading '$' or '/')", v);
			str = &o->topic_root;
		} else if (strcmp(k, "cs_id") == 0) {
			if (!s2s_id_valid(v))
				return fail(err, n, "plugin_opt_cs_id '%s': 1..64 "
					    "characters of [A-Za-z0-9_.-]", v);
			snprintf(o->cs_id, sizeof(o->cs_id), "%s", v);
		} else if (strcmp(k, "admin_user") == 0) {
			if (!s2s_id_valid(v))
				return fail(err, n, "plugin_opt_admin_user '%s': "
					    "1..64 characters of "
					    "[A-Za-z0-9_.-]", v);
			snprintf(o->admin_user, sizeof(o->admin_user), "%s", v);
		} else if (strcmp(k, "profile") == 0) {
			if (s2s_profile_parse(v, &o->profile) != S2S_OK)
				return fail(err, n, "plugin_opt_profile '%s': "
					    "expected hardened or paper", v);
		} else if (strcmp(k, "enrollment") == 0 ||
			   strcmp(k, "enrolment") == 0) {
			if (!parse_bool(v, &o->enroll_open, "open", "code"))
				return fail(err, n, "plugin_opt_%s '%s': "
					    "expected open or code", k, v);
		} else if (strcmp(k, "foreign_topics") == 0) {
			bool allow;

			if (!parse_bool(v, &allow, "allow", "deny"))
				return fail(err, n, "plugin_opt_foreign_topics "
					    "'%s': expected allow or deny", v);
			o->foreign = allow ? CS_FOREIGN_ALLOW : CS_FOREIGN_DENY;
		} else if (strcmp(k, "feed") == 0) {
			if (!parse_bool(v, &o->feed, "on", "off"))
				return fail(err, n, "plugin_opt_feed '%s': "
					    "expected on or off", v);
		} else if (strcmp(k, "feed_readers") == 0) {
			if (!readers_valid(v))
				return fail(err, n, "plugin_opt_feed_readers "
					    "'%s': expected any, or user names"
					    " separated by commas (no spaces)",
					    v);
			str = &o->feed_readers;
		} else if (strcmp(k, "reserved_users") == 0) {
			if (!readers_valid(v) || strcmp(v, "any") == 0)
				return fail(err, n, "plugin_opt_reserved_users "
					    "'%s': expected user names separated"
					    " by commas (no spaces)", v);
			str = &o->reserved_users;
		} else if (strcmp(k, "reserved_users_file") == 0) {
			if (!*v)
				return fail(err, n, "plugin_opt_reserved_users_"
					    "file: empty path");
			str = &o->reserved_users_file;
		} else if (strcmp(k, "negotiation_timeout") == 0) {
			if (!parse_u64(v, 1, 3600, &u))
				return fail(err, n, "plugin_opt_negotiation_timeout"
					    " '%s': expected 1..3600 seconds", v);
			o->negotiation_timeout = (unsigned)u;
		} else if (strcmp(k, "token_max_age") == 0) {
			if (!parse_u64(v, 1, 31u * 86400u, &u))
				return fail(err, n, "plugin_opt_token_max_age '%s':"
					    " expected 1..2678400 seconds", v);
			o->token_max_age = u;
		} else if (strcmp(k, "retention_packages") == 0) {
			if (!parse_u64(v, 0, INT64_MAX, &u))
				return fail(err, n, "plugin_opt_retention_packages"
					    " '%s': expected a count (0 = keep "
					    "all)", v);
			o->retention_packages = u;
		} else if (strcmp(k, "retention_age") == 0) {
			if (!parse_u64(v, 0, 100ull * 365 * 86400, &u))
				return fail(err, n, "plugin_opt_retention_age '%s':"
					    " expected seconds (0 = keep all)",
					    v);
			o->retention_age = u;
		} else if (strcmp(k, "max_package") == 0) {
			if (!parse_u64(v, 64, 64u * 1024u * 1024u, &u))
				return fail(err, n, "plugin_opt_max_package '%s': "
					    "expected 64..67108864 bytes", v);
			o->max_package = (size_t)u;
		} else if (strcmp(k, "max_signature") == 0) {
			if (!parse_u64(v, 64, 16u * 1024u * 1024u, &u))
				return fail(err, n, "plugin_opt_max_signature '%s':"
					    " expected 64..16777216 bytes", v);
			o->max_signature = (size_t)u;
		} else if (strcmp(k, "stats_interval") == 0) {
			if (!parse_u64(v, 1, 86400, &u))
				return fail(err, n, "plugin_opt_stats_interval "
					    "'%s': expected 1..86400 seconds", v);
			o->stats_interval = (unsigned)u;
		} else if (strcmp(k, "store_segment_size") == 0) {
			if (!parse_u64(v, 65536, 1ull << 30, &u))
				return fail(err, n, "plugin_opt_store_segment_size"
					    " '%s': expected 65536..1073741824 "
					    "bytes", v);
			o->store_segment = u;
		} else if (strcmp(k, "store_sync_ms") == 0) {
			if (!parse_u64(v, 0, 10000, &u))
				return fail(err, n, "plugin_opt_store_sync_ms "
					    "'%s': expected 0..10000 ms", v);
			o->store_sync_ms = (unsigned)u;
		} else if (strcmp(k, "enroll_expiry") == 0) {
			if (!parse_u64(v, 0, 365ull * 86400, &u))
				return fail(err, n, "plugin_opt_enroll_expiry "
					    "'%s': expected seconds (0 = never)",
					    v);
			o->enroll_expiry = u;
		} else if (strcmp(k, "enroll_pending_max") == 0) {
			if (!parse_u64(v, 1, 100000000, &u))
				return fail(err, n, "plugin_opt_enroll_pending_max"
					    " '%s': expected 1..100000000", v);
			o->enroll_pending_max = u;
		} else if (strcmp(k, "fetch_reply_bytes") == 0) {
			if (!parse_u64(v, 1024, 1u << 30, &u))
				return fail(err, n, "plugin_opt_fetch_reply_bytes"
					    " '%s': expected 1024..1073741824 "
					    "bytes", v);
			o->fetch_reply_bytes = (size_t)u;
		} else if (strcmp(k, "fetch_client_bytes") == 0) {
			if (!parse_u64(v, 1024, 1u << 30, &u))
				return fail(err, n, "plugin_opt_fetch_client_bytes"
					    " '%s': expected 1024..1073741824 "
					    "bytes", v);
			o->fetch_client_bytes = (size_t)u;
		} else {
			return fail(err, n, "plugin_opt_%s: unknown option", k);
		}
		if (str) {
			free(*str);
			*str = dup_or_null(v);
			if (!*str)
				return fail(err, n, "out of memory");
		}
	}
	if (strcmp(o->admin_user, o->cs_id) == 0)
		return fail(err, n, "plugin_opt_admin_user '%s': must differ "
			    "from plugin_opt_cs_id", o->admin_user);
	return S2S_OK;
}

void
cs_options_free(struct cs_options *o)
{
	free(o->store);
	free(o->cs_key);
	free(o->admin_key);
	free(o->feed_readers);
	free(o->reserved_users);
	free(o->reserved_users_file);
	free(o->topic_root);
	memset(o, 0, sizeof(*o));
}
