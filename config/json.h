/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * json.h - a small typed layer over cJSON, so that no file outside config/
 * includes <cjson/cJSON.h> ("exactly one place reads JSON").
 *
 * Reading: s2s_json_parse() a buffer, then typed getters that take an
 * "optional" flag and a default, check the type and range, and say which
 * key failed (err/err_len may be NULL).  Keys are matched case-sensitively
 * (cJSON_GetObjectItem is not); a duplicate key reads the first one.
 *
 * Writing: build objects and arrays with the s2s_json_add_* / _push_*
 * calls, then s2s_json_print() into a malloc()ed string (free() it).  Every
 * adder accepts a NULL container (no-op) so call chains need no checks;
 * s2s_json_print() reports an allocation failure anywhere in the tree.
 * 64-bit values that may exceed 2^53 go out as strings (cJSON stores
 * numbers as doubles).
 *
 * Not thread-safe per tree; separate trees may be used from separate
 * threads.
 */
#ifndef S2S_CONFIG_JSON_H
#define S2S_CONFIG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s2s/error.h"

struct s2s_json;    /* a cJSON node, opaque */

/* Parse len bytes (no NUL needed); NULL if not JSON or out of memory. */
struct s2s_json *s2s_json_parse(const void *buf, size_t len);
void s2s_json_free(struct s2s_json *j);

bool s2s_json_is_object(const struct s2s_json *j);
bool s2s_json_is_array(const struct s2s_json *j);
size_t s2s_json_array_size(const struct s2s_json *a);
const struct s2s_json *s2s_json_array_at(const struct s2s_json *a,
					 size_t i);
/* The text of a string node (valid while the tree lives), or NULL. */
const char *s2s_json_string_value(const struct s2s_json *j);
/* The member key of obj, or NULL. */
const struct s2s_json *s2s_json_get(const struct s2s_json *obj,
				    const char *key);

/*
 * Typed getters.  Absent key: S2S_OK with the default if optional,
 * S2S_ERR_CONFIG ("<key>: missing") otherwise.  Wrong type or range:
 * S2S_ERR_CONFIG ("<key>: expected ...").  Strings longer than out_len-1:
 * S2S_ERR_TOO_BIG.
 */
enum s2s_err s2s_json_get_string(const struct s2s_json *obj, const char *key,
				 bool optional, const char *def, char *out,
				 size_t out_len, char *err, size_t err_len);
enum s2s_err s2s_json_get_int(const struct s2s_json *obj, const char *key,
			      bool optional, int64_t def, int64_t min,
			      int64_t max, int64_t *out, char *err,
			      size_t err_len);
enum s2s_err s2s_json_get_bool(const struct s2s_json *obj, const char *key,
			       bool optional, bool def, bool *out, char *err,
			       size_t err_len);

/* Writing. */
struct s2s_json *s2s_json_new_object(void);
struct s2s_json *s2s_json_new_array(void);
struct s2s_json *s2s_json_add_object(struct s2s_json *obj, const char *key);
struct s2s_json *s2s_json_add_array(struct s2s_json *obj, const char *key);
void s2s_json_add_string(struct s2s_json *obj, const char *key,
			 const char *val);
/* As a number when |v| <= 2^53, else as a decimal string. */
void s2s_json_add_int(struct s2s_json *obj, const char *key, int64_t v);
/* Always as a decimal string (session numbers, 64-bit counters). */
void s2s_json_add_u64_string(struct s2s_json *obj, const char *key,
			     uint64_t v);
void s2s_json_add_bool(struct s2s_json *obj, const char *key, bool v);
struct s2s_json *s2s_json_push_object(struct s2s_json *arr);
void s2s_json_push_string(struct s2s_json *arr, const char *val);

/* Unformatted text, malloc()ed; NULL if any allocation in the tree failed. */
char *s2s_json_print(const struct s2s_json *j, size_t *len);

#endif /* S2S_CONFIG_JSON_H */
