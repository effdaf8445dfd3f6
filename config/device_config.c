/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * device_config.c - the device configuration file (device_config.h) with
 * cJSON: parse, walk every member once (so an unknown key is caught),
 * copy into the typed struct, drop the tree.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "device_config.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"

#define CONFIG_MAX_BYTES (1u << 20)

static void
seterr(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* Parsing context: the error buffer and the folder for relative paths. */
struct ctx {
	const char *base;
	char *err;
	size_t err_len;
};

static char *
join_path(const char *base, const char *p)
{
	size_t n;
	char *out;

	if (p[0] == '/' || !base || !*base || !strcmp(base, "."))
		return strdup(p);
	n = strlen(base) + 1 + strlen(p) + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", base, p);
	return out;
}

static enum s2s_err
get_string(struct ctx *x, const cJSON *item, const char *name, bool is_path,
	   char **out)
{
	if (!cJSON_IsString(item) || !item->valuestring) {
		seterr(x->err, x->err_len, "%s: expected a string", name);
		return S2S_ERR_CONFIG;
	}
	if (!*item->valuestring) {
		seterr(x->err, x->err_len, "%s: must not be empty", name);
		return S2S_ERR_CONFIG;
	}
	free(*out);
	*out = is_path ? join_path(x->base, item->valuestring)
		       : strdup(item->valuestring);
	return *out ? S2S_OK : S2S_ERR_NOMEM;
}

static enum s2s_err
get_int(struct ctx *x, const cJSON *item, const char *name, long min,
	long max, long *out)
{
	double v;

	if (!cJSON_IsNumber(item)) {
		seterr(x->err, x->err_len, "%s: expected an integer", name);
		return S2S_ERR_CONFIG;
	}
	v = item->valuedouble;
	/* Range first: casting an out-of-range double to long is undefined. */
	if (!(v >= (double)min && v <= (double)max)) {
		seterr(x->err, x->err_len, "%s: %g is out of range %ld..%ld",
		       name, v, min, max);
		return S2S_ERR_CONFIG;
	}
	if (v != (double)(long)v) {
		seterr(x->err, x->err_len, "%s: expected an integer", name);
		return S2S_ERR_CONFIG;
	}
	*out = (long)v;
	return S2S_OK;
}

static enum s2s_err
get_bool(struct ctx *x, const cJSON *item, const char *name, bool *out)
{
	if (!cJSON_IsBool(item)) {
		seterr(x->err, x->err_len, "%s: expected true or false", name);
		return S2S_ERR_CONFIG;
	}
	*out = cJSON_IsTrue(item);
	return S2S_OK;
}

/* A positive number of seconds, stored as milliseconds. */
static enum s2s_err
get_seconds(struct ctx *x, const cJSON *item, const char *name, int *ms)
{
	double v;

	if (!cJSON_IsNumber(item)) {
		seterr(x->err, x->err_len, "%s: expected a number of seconds",
		       name);
		return S2S_ERR_CONFIG;
	}
	v = item->valuedouble;
	if (!(v > 0) || v > 86400) {
		seterr(x->err, x->err_len,
		       "%s: must be more than 0 and at most 86400 seconds",
		       name);
		return S2S_ERR_CONFIG;
	}
	*ms = (int)(v * 1000.0 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return S2S_OK;
}

static enum s2s_err
parse_tls(struct ctx *x, const cJSON *obj, struct s2s_device_config *c)
{
	const cJSON *it;
	enum s2s_err e = S2S_OK;

	if (!cJSON_IsObject(obj)) {
		seterr(x->err, x->err_len, "tls: expected an object");
		return S2S_ERR_CONFIG;
	}
	cJSON_ArrayForEach(it, obj) {
		const char *k = it->string;

		if (!strcmp(k, "ca_file"))
			e = get_string(x, it, "tls.ca_file", true,
				       &c->tls_ca_file);
		else if (!strcmp(k, "cert_file"))
			e = get_string(x, it, "tls.cert_file", true,
				       &c->tls_cert_file);
		else if (!strcmp(k, "key_file"))
			e = get_string(x, it, "tls.key_file", true,
				       &c->tls_key_file);
		else if (!strcmp(k, "verify"))
			e = get_bool(x, it, "tls.verify", &c->tls_verify);
		else {
			seterr(x->err, x->err_len, "tls.%s: unknown key", k);
			e = S2S_ERR_CONFIG;
		}
		if (e)
			return e;
	}
	if (!c->tls_cert_file != !c->tls_key_file) {
		seterr(x->err, x->err_len,
		       "tls: cert_file and key_file go together");
		return S2S_ERR_CONFIG;
	}
	return S2S_OK;
}

static enum s2s_err
parse_timeouts(struct ctx *x, const cJSON *obj, struct s2s_device_config *c)
{
	static const struct {
		const char *key;
		size_t off;
	} tab[] = {
		{ "connect", offsetof(struct s2s_device_config, timeout_connect) },
		{ "register", offsetof(struct s2s_device_config, timeout_register) },
		{ "pair", offsetof(struct s2s_device_config, timeout_pair) },
		{ "session", offsetof(struct s2s_device_config, timeout_session) },
		{ "fetch", offsetof(struct s2s_device_config, timeout_fetch) },
	};
	const cJSON *it;

	if (!cJSON_IsObject(obj)) {
		seterr(x->err, x->err_len, "timeouts: expected an object");
		return S2S_ERR_CONFIG;
	}
	cJSON_ArrayForEach(it, obj) {
		size_t i;
		char name[64];
		enum s2s_err e;

		for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
			if (!strcmp(it->string, tab[i].key))
				break;
		if (i == sizeof(tab) / sizeof(tab[0])) {
			seterr(x->err, x->err_len, "timeouts.%s: unknown key",
			       it->string);
			return S2S_ERR_CONFIG;
		}
		snprintf(name, sizeof(name), "timeouts.%s", tab[i].key);
		e = get_seconds(x, it, name, (int *)((char *)c + tab[i].off));
		if (e)
			return e;
	}
	return S2S_OK;
}

static bool
broker_uri_ok(const char *u)
{
	static const char *const schemes[] = {
		"tcp://", "ssl://", "mqtt://", "mqtts://", "ws://", "wss://",
	};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (!strncmp(u, schemes[i], strlen(schemes[i])) &&
		    u[strlen(schemes[i])])
			return true;
	return false;
}

static void
set_defaults(struct s2s_device_config *c)
{
	memset(c, 0, sizeof(*c));
	c->png_level = 0;     /* S2S_PNG_LEVEL_DEFAULT */
	c->keepalive = 30;
	c->session_expiry = 86400;
	c->token_ttl = 120;
	c->state_fsync = true;
	c->fetch_on_connect = true;
	c->tls_verify = true;
	c->timeout_connect = 10000;
	c->timeout_register = 15000;
	c->timeout_pair = 30000;
	c->timeout_session = 30000;
	c->timeout_fetch = 10000;
}

static enum s2s_err
parse_member(struct ctx *x, const cJSON *it, struct s2s_device_config *c)
{
	const char *k = it->string;
	long v;
	enum s2s_err e;
	char *s = NULL;

	if (!strcmp(k, "broker") && cJSON_IsArray(it)) {
		/* Several brokers of one cluster (docs/CLUSTER.md). */
		int n = cJSON_GetArraySize(it);
		const cJSON *u;

		if (n < 1 || n > S2S_DEVICE_BROKERS_MAX) {
			seterr(x->err, x->err_len, "broker: expected 1..%d "
			       "URIs", S2S_DEVICE_BROKERS_MAX);
			return S2S_ERR_CONFIG;
		}
		for (size_t i = 0; i < c->nbrokers; i++)
			free(c->brokers[i]);
		free(c->brokers);
		c->nbrokers = 0;
		c->brokers = calloc((size_t)n, sizeof(*c->brokers));
		if (!c->brokers)
			return S2S_ERR_NOMEM;
		cJSON_ArrayForEach(u, it) {
			char *bu = NULL;

			e = get_string(x, u, "broker[]", false, &bu);
			if (!e && !broker_uri_ok(bu)) {
				seterr(x->err, x->err_len, "broker: '%s' is "
				       "not an MQTT URI (tcp://host:port, "
				       "ssl://host:port, ...)", bu);
				e = S2S_ERR_CONFIG;
			}
			if (e) {
				free(bu);
				return e;
			}
			c->brokers[c->nbrokers++] = bu;
		}
		free(c->broker);
		c->broker = strdup(c->brokers[0]);
		return c->broker ? S2S_OK : S2S_ERR_NOMEM;
	}
	if (!strcmp(k, "broker")) {
		e = get_string(x, it, k, false, &c->broker);
		if (!e && !broker_uri_ok(c->broker)) {
			seterr(x->err, x->err_len,
			       "broker: '%s' is not an MQTT URI "
			       "(tcp://host:port, ssl://host:port, ...)",
			       c->broker);
			e = S2S_ERR_CONFIG;
		}
		return e;
	}
	if (!strcmp(k, "id")) {
		e = get_string(x, it, k, false, &c->id);
		if (!e && !s2s_id_valid(c->id)) {
			seterr(x->err, x->err_len,
			       "id: '%s' is not a device id "
			       "(1..64 of A-Z a-z 0-9 _ . -)", c->id);
			e = S2S_ERR_CONFIG;
		}
		return e;
	}
	if (!strcmp(k, "key"))
		return get_string(x, it, k, true, &c->key_file);
	if (!strcmp(k, "cs_key"))
		return get_string(x, it, k, true, &c->cs_key_file);
	if (!strcmp(k, "signature"))
		return get_string(x, it, k, true, &c->signature_file);
	if (!strcmp(k, "state_dir"))
		return get_string(x, it, k, true, &c->state_dir);
	if (!strcmp(k, "covers")) {
		if (cJSON_IsString(it) && it->valuestring &&
		    !strcmp(it->valuestring, S2S_COVERS_BUILTIN))
			return get_string(x, it, k, false, &c->covers);
		return get_string(x, it, k, true, &c->covers);
	}
	if (!strcmp(k, "profile")) {
		e = get_string(x, it, k, false, &s);
		if (e)
			return e;
		if (!strcmp(s, "default"))
			c->profile = 0;
		else if (!strcmp(s, "paper"))
			c->profile = 1;
		else if (!strcmp(s, "hardened"))
			c->profile = 2;
		else {
			seterr(x->err, x->err_len,
			       "profile: '%s' is not one of default, paper, "
			       "hardened", s);
			e = S2S_ERR_CONFIG;
		}
		free(s);
		return e;
	}
	if (!strcmp(k, "png_level")) {
		e = get_int(x, it, k, 0, 9, &v);
		if (!e)
			c->png_level = (int)v;
		return e;
	}
	if (!strcmp(k, "topic_root")) {
		e = get_string(x, it, k, false, &c->topic_root);
		if (!e && strpbrk(c->topic_root, "+#")) {
			seterr(x->err, x->err_len,
			       "topic_root: must not contain '+' or '#'");
			e = S2S_ERR_CONFIG;
		}
		return e;
	}
	if (!strcmp(k, "enrolment_code"))
		return get_string(x, it, k, false, &c->enrolment_code);
	if (!strcmp(k, "keepalive")) {
		e = get_int(x, it, k, 5, 3600, &v);
		if (!e)
			c->keepalive = (int)v;
		return e;
	}
	if (!strcmp(k, "session_expiry"))
		return get_int(x, it, k, 0, 4294967295L, &c->session_expiry);
	if (!strcmp(k, "token_ttl"))
		return get_int(x, it, k, 60, 86400, &c->token_ttl);
	if (!strcmp(k, "state_fsync"))
		return get_bool(x, it, k, &c->state_fsync);
	if (!strcmp(k, "fetch_on_connect"))
		return get_bool(x, it, k, &c->fetch_on_connect);
	if (!strcmp(k, "tls"))
		return parse_tls(x, it, c);
	if (!strcmp(k, "timeouts"))
		return parse_timeouts(x, it, c);
	seterr(x->err, x->err_len, "%s: unknown key", k);
	return S2S_ERR_CONFIG;
}

static bool
duplicate_key(const cJSON *obj, const cJSON *it)
{
	for (const cJSON *p = obj->child; p && p != it; p = p->next)
		if (!strcmp(p->string, it->string))
			return true;
	return false;
}

enum s2s_err
s2s_device_config_parse(const char *json, size_t len, const char *base_dir,
			struct s2s_device_config *cfg, char *err,
			size_t err_len)
{
	struct ctx x = { base_dir, err, err_len };
	cJSON *root;
	const cJSON *it;
	enum s2s_err e = S2S_OK;
	static const char *const required[] = {
		"id", "key", "cs_key", "state_dir",
	};

	set_defaults(cfg);
	root = cJSON_ParseWithLength(json, len);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		long off = at && at >= json && at <= json + len ?
			   (long)(at - json) : -1;

		seterr(err, err_len, "not valid JSON (near byte %ld)", off);
		s2s_device_config_free(cfg);
		return S2S_ERR_CONFIG;
	}
	if (!cJSON_IsObject(root)) {
		seterr(err, err_len, "expected a JSON object at the top");
		e = S2S_ERR_CONFIG;
		goto out;
	}
	cJSON_ArrayForEach(it, root) {
		if (duplicate_key(root, it)) {
			seterr(err, err_len, "%s: duplicate key", it->string);
			e = S2S_ERR_CONFIG;
			goto out;
		}
		e = parse_member(&x, it, cfg);
		if (e)
			goto out;
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (!cJSON_GetObjectItemCaseSensitive(root, required[i])) {
			seterr(err, err_len, "%s: missing (required)",
			       required[i]);
			e = S2S_ERR_CONFIG;
			goto out;
		}
	}
	if (!cfg->broker && !(cfg->broker = strdup("tcp://127.0.0.1:1883")))
		e = S2S_ERR_NOMEM;
	if (!e && !cfg->brokers) {
		cfg->brokers = calloc(1, sizeof(*cfg->brokers));
		if (cfg->brokers && (cfg->brokers[0] = strdup(cfg->broker)))
			cfg->nbrokers = 1;
		else
			e = S2S_ERR_NOMEM;
	}
	if (!e && !cfg->topic_root && !(cfg->topic_root = strdup("s2s")))
		e = S2S_ERR_NOMEM;
out:
	cJSON_Delete(root);
	if (e) {
		if (e == S2S_ERR_NOMEM)
			seterr(err, err_len, "out of memory");
		s2s_device_config_free(cfg);
	}
	return e;
}

/*
 * Comments in the file (C++ style to the end of the line, and C style) become
 * spaces, outside strings, so that the example configuration can explain
 * itself and error offsets still point into the file as written.
 */
static void
blank_comments(char *p, size_t n)
{
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (p[i] == '\\' && i + 1 < n)
				i++;
			else if (p[i] == '"')
				in_str = false;
		} else if (p[i] == '"') {
			in_str = true;
		} else if (p[i] == '/' && i + 1 < n && p[i + 1] == '/') {
			while (i < n && p[i] != '\n')
				p[i++] = ' ';
		} else if (p[i] == '/' && i + 1 < n && p[i + 1] == '*') {
			p[i++] = ' ';
			p[i++] = ' ';
			while (i < n && !(p[i] == '*' && i + 1 < n &&
					  p[i + 1] == '/')) {
				if (p[i] != '\n')
					p[i] = ' ';
				i++;
			}
			if (i < n)
				p[i++] = ' ';
			if (i < n)
				p[i] = ' ';
		}
	}
}

static enum s2s_err check_tls_files(struct s2s_device_config *c,
				    const char *path, char *err,
				    size_t err_len);

enum s2s_err
s2s_device_config_load(const char *path, struct s2s_device_config *cfg,
		       char *err, size_t err_len)
{
	FILE *f;
	char *buf = NULL, *dir = NULL, *slash;
	size_t n = 0, cap = 0;
	enum s2s_err e;
	char sub[512];

	set_defaults(cfg);
	f = fopen(path, "rb");
	if (!f) {
		seterr(err, err_len, "%s: cannot read: %s", path,
		       strerror(errno));
		return S2S_ERR_IO;
	}
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			if (cap >= CONFIG_MAX_BYTES) {
				fclose(f);
				free(buf);
				seterr(err, err_len, "%s: larger than 1 MiB",
				       path);
				return S2S_ERR_CONFIG;
			}
			cap = cap ? 2 * cap : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				fclose(f);
				free(buf);
				return S2S_ERR_NOMEM;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fclose(f);
		free(buf);
		seterr(err, err_len, "%s: read error", path);
		return S2S_ERR_IO;
	}
	fclose(f);

	dir = strdup(path);
	if (!dir) {
		free(buf);
		return S2S_ERR_NOMEM;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strcpy(dir, ".");

	blank_comments(buf, n);
	e = s2s_device_config_parse(buf, n, dir, cfg, sub, sizeof(sub));
	if (e)
		seterr(err, err_len, "%s: %s", path, sub);
	else
		e = check_tls_files(cfg, path, err, err_len);
	/* The file may hold an enrolment code. */
	s2s_memzero(buf, n);
	free(buf);
	free(dir);
	return e;
}

/*
 * The TLS files must be readable now, not at the first connect (where
 * Paho would only say "TLS connect failure").
 */
static enum s2s_err
check_tls_files(struct s2s_device_config *c, const char *path, char *err,
		size_t err_len)
{
	const char *const names[] = { "tls.ca_file", "tls.cert_file",
				      "tls.key_file" };
	const char *const files[] = { c->tls_ca_file, c->tls_cert_file,
				      c->tls_key_file };

	for (size_t i = 0; i < 3; i++) {
		FILE *f;

		if (!files[i])
			continue;
		f = fopen(files[i], "r");
		if (!f) {
			seterr(err, err_len, "%s: %s: cannot read %s: %s", path,
			       names[i], files[i], strerror(errno));
			s2s_device_config_free(c);
			return S2S_ERR_CONFIG;
		}
		fclose(f);
	}
	return S2S_OK;
}

void
s2s_device_config_free(struct s2s_device_config *c)
{
	if (!c)
		return;
	free(c->broker);
	for (size_t i = 0; i < c->nbrokers; i++)
		free(c->brokers[i]);
	free(c->brokers);
	free(c->id);
	free(c->key_file);
	free(c->cs_key_file);
	free(c->signature_file);
	free(c->state_dir);
	free(c->covers);
	free(c->topic_root);
	if (c->enrolment_code) {
		s2s_memzero(c->enrolment_code, strlen(c->enrolment_code));
		free(c->enrolment_code);
	}
	free(c->tls_ca_file);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	memset(c, 0, sizeof(*c));
}
