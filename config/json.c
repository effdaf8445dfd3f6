/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json.c - the typed layer over cJSON declared in json.h.
 *
 * A failed allocation while building is remembered in a "broken" marker
 * child so that s2s_json_print() can refuse the whole tree instead of
 * printing a document with a silently missing member.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"

#define J(x) ((cJSON *)(x))
#define CJ(x) ((const cJSON *)(x))
#define BROKEN_KEY "\x01broken"

static enum s2s_err say(char *err, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum s2s_err
say(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (err && n) {
		va_start(ap, fmt);
		vsnprintf(err, n, fmt, ap);
		va_end(ap);
	}
	return S2S_ERR_CONFIG;
}

struct s2s_json *
s2s_json_parse(const void *buf, size_t len)
{
	if (!buf)
		return NULL;
	return (struct s2s_json *)cJSON_ParseWithLength(buf, len);
}

void
s2s_json_free(struct s2s_json *j)
{
	cJSON_Delete(J(j));
}

bool
s2s_json_is_object(const struct s2s_json *j)
{
	return j && cJSON_IsObject(CJ(j));
}

bool
s2s_json_is_array(const struct s2s_json *j)
{
	return j && cJSON_IsArray(CJ(j));
}

size_t
s2s_json_array_size(const struct s2s_json *a)
{
	int n = s2s_json_is_array(a) ? cJSON_GetArraySize(CJ(a)) : 0;

	return n > 0 ? (size_t)n : 0;
}

const char *
s2s_json_string_value(const struct s2s_json *j)
{
	return cJSON_IsString(CJ(j)) ? CJ(j)->valuestring : NULL;
}

const struct s2s_json *
s2s_json_array_at(const struct s2s_json *a, size_t i)
{
	if (!s2s_json_is_array(a) || i > INT32_MAX)
		return NULL;
	return (const struct s2s_json *)cJSON_GetArrayItem(CJ(a), (int)i);
}

const struct s2s_json *
s2s_json_get(const struct s2s_json *obj, const char *key)
{
	if (!s2s_json_is_object(obj))
		return NULL;
	return (const struct s2s_json *)
	       cJSON_GetObjectItemCaseSensitive(CJ(obj), key);
}

enum s2s_err
s2s_json_get_string(const struct s2s_json *obj, const char *key,
		    bool optional, const char *def, char *out, size_t out_len,
		    char *err, size_t err_len)
{
	const cJSON *v = CJ(s2s_json_get(obj, key));
	const char *s;

	if (!v) {
		if (!optional)
			return say(err, err_len, "%s: missing", key);
		s = def ? def : "";
	} else if (!cJSON_IsString(v)) {
		return say(err, err_len, "%s: expected a string", key);
	} else {
		s = v->valuestring;
	}
	if (strlen(s) >= out_len) {
		say(err, err_len, "%s: longer than %zu characters", key,
		    out_len - 1);
		return S2S_ERR_TOO_BIG;
	}
	memcpy(out, s, strlen(s) + 1);
	return S2S_OK;
}

enum s2s_err
s2s_json_get_int(const struct s2s_json *obj, const char *key, bool optional,
		 int64_t def, int64_t min, int64_t max, int64_t *out,
		 char *err, size_t err_len)
{
	const cJSON *v = CJ(s2s_json_get(obj, key));
	double d;

	if (!v) {
		if (!optional)
			return say(err, err_len, "%s: missing", key);
		*out = def;
		return S2S_OK;
	}
	if (!cJSON_IsNumber(v))
		return say(err, err_len, "%s: expected an integer", key);
	d = v->valuedouble;
	/*
	 * Range first (NaN fails every comparison): casting a double outside
	 * int64_t is undefined.  2^63 is exact as a double; INT64_MAX is not.
	 */
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
	    d != (double)(int64_t)d || (int64_t)d < min || (int64_t)d > max)
		return say(err, err_len, "%s: expected an integer in %" PRId64
			   "..%" PRId64, key, min, max);
	*out = (int64_t)d;
	return S2S_OK;
}

enum s2s_err
s2s_json_get_bool(const struct s2s_json *obj, const char *key, bool optional,
		  bool def, bool *out, char *err, size_t err_len)
{
	const cJSON *v = CJ(s2s_json_get(obj, key));

	if (!v) {
		if (!optional)
			return say(err, err_len, "%s: missing", key);
		*out = def;
		return S2S_OK;
	}
	if (!cJSON_IsBool(v))
		return say(err, err_len, "%s: expected true or false", key);
	*out = cJSON_IsTrue(v);
	return S2S_OK;
}

/* ---- writing ------------------------------------------------------------ */

struct s2s_json *
s2s_json_new_object(void)
{
	return (struct s2s_json *)cJSON_CreateObject();
}

struct s2s_json *
s2s_json_new_array(void)
{
	return (struct s2s_json *)cJSON_CreateArray();
}

static void
mark_broken(cJSON *parent)
{
	if (parent && !cJSON_GetObjectItemCaseSensitive(parent, BROKEN_KEY))
		cJSON_AddItemToObject(parent, BROKEN_KEY, cJSON_CreateNull());
}

static void
attach(struct s2s_json *obj, const char *key, cJSON *item)
{
	if (!obj)
		return;
	if (!item) {
		mark_broken(J(obj));
		return;
	}
	if (cJSON_IsArray(J(obj))) {
		if (!cJSON_AddItemToArray(J(obj), item)) {
			cJSON_Delete(item);
			mark_broken(J(obj));
		}
	} else if (!cJSON_AddItemToObject(J(obj), key, item)) {
		cJSON_Delete(item);
		mark_broken(J(obj));
	}
}

struct s2s_json *
s2s_json_add_object(struct s2s_json *obj, const char *key)
{
	cJSON *c;

	if (!obj)
		return NULL;
	c = cJSON_CreateObject();
	attach(obj, key, c);
	return (struct s2s_json *)c;
}

struct s2s_json *
s2s_json_add_array(struct s2s_json *obj, const char *key)
{
	cJSON *c;

	if (!obj)
		return NULL;
	c = cJSON_CreateArray();
	attach(obj, key, c);
	return (struct s2s_json *)c;
}

void
s2s_json_add_string(struct s2s_json *obj, const char *key, const char *val)
{
	if (obj)
		attach(obj, key, cJSON_CreateString(val ? val : ""));
}

void
s2s_json_add_int(struct s2s_json *obj, const char *key, int64_t v)
{
	if (!obj)
		return;
	if (v > ((int64_t)1 << 53) || v < -((int64_t)1 << 53)) {
		char buf[24];

		snprintf(buf, sizeof(buf), "%" PRId64, v);
		attach(obj, key, cJSON_CreateString(buf));
		return;
	}
	attach(obj, key, cJSON_CreateNumber((double)v));
}

void
s2s_json_add_u64_string(struct s2s_json *obj, const char *key, uint64_t v)
{
	char buf[24];

	if (!obj)
		return;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	attach(obj, key, cJSON_CreateString(buf));
}

void
s2s_json_add_bool(struct s2s_json *obj, const char *key, bool v)
{
	if (obj)
		attach(obj, key, cJSON_CreateBool(v));
}

struct s2s_json *
s2s_json_push_object(struct s2s_json *arr)
{
	return s2s_json_add_object(arr, NULL);
}

void
s2s_json_push_string(struct s2s_json *arr, const char *val)
{
	s2s_json_add_string(arr, NULL, val);
}

static bool
tree_broken(const cJSON *j)
{
	for (const cJSON *c = j ? j->child : NULL; c; c = c->next) {
		if (c->string && strcmp(c->string, BROKEN_KEY) == 0)
			return true;
		if (tree_broken(c))
			return true;
	}
	return false;
}

char *
s2s_json_print(const struct s2s_json *j, size_t *len)
{
	char *s;

	if (!j || tree_broken(CJ(j)))
		return NULL;
	s = cJSON_PrintUnformatted(CJ(j));
	if (s && len)
		*len = strlen(s);
	return s;
}
