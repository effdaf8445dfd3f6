/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * admin.c - parsing and building the JSON of the admin API (admin.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "s2s/proto.h"
#include "s2s/secmem.h"

static const struct {
	enum s2s_admin_kind kind;
	const char *name;
	bool id, pair;
} commands[] = {
	{ S2S_ADMIN_LIST_DEVICES, "listDevices", false, false },
	{ S2S_ADMIN_GET_DEVICE, "getDevice", true, false },
	{ S2S_ADMIN_REMOVE_DEVICE, "removeDevice", true, false },
	{ S2S_ADMIN_ADD_ENROLMENT_CODE, "addEnrolmentCode", true, false },
	{ S2S_ADMIN_LIST_PAIRS, "listPairs", false, false },
	{ S2S_ADMIN_REMOVE_PAIR, "removePair", false, true },
	{ S2S_ADMIN_LIST_SESSIONS, "listSessions", false, false },
	{ S2S_ADMIN_END_SESSION, "endSession", false, true },
	{ S2S_ADMIN_GET_STATISTICS, "getStatistics", false, false },
	{ S2S_ADMIN_UNPAIR, "unpair", true, false },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const char *
s2s_admin_name(enum s2s_admin_kind k)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].kind == k)
			return commands[i].name;
	return NULL;
}

static void
parse_one(const struct s2s_json *o, struct s2s_admin_cmd *c)
{
	size_t i;
	int64_t v;

	c->validity = -1;
	snprintf(c->name, sizeof(c->name), "?");
	if (!s2s_json_is_object(o)) {
		snprintf(c->error, sizeof(c->error), "command is not an object");
		return;
	}
	if (s2s_json_get_string(o, "correlationData", true, NULL,
				c->correlation, sizeof(c->correlation), NULL,
				0) == S2S_OK && s2s_json_get(o, "correlationData"))
		c->has_correlation = true;
	if (s2s_json_get_string(o, "command", false, NULL, c->name,
				sizeof(c->name), c->error, sizeof(c->error)) !=
	    S2S_OK) {
		snprintf(c->name, sizeof(c->name), "?");
		return;
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, c->name) == 0)
			break;
	if (i == NCOMMANDS) {
		snprintf(c->error, sizeof(c->error), "unknown command");
		return;
	}
	c->kind = commands[i].kind;
	if (commands[i].id) {
		if (s2s_json_get_string(o, "id", false, NULL, c->id,
					sizeof(c->id), c->error,
					sizeof(c->error)) != S2S_OK)
			return;
		if (!s2s_id_valid(c->id)) {
			snprintf(c->error, sizeof(c->error),
				 "id: not a device id (1-64 of A-Z a-z 0-9 _ . -)");
			return;
		}
	}
	if (commands[i].pair) {
		if (s2s_json_get_string(o, "pair", false, NULL, c->pair,
					sizeof(c->pair), c->error,
					sizeof(c->error)) != S2S_OK)
			return;
		if (!s2s_pair_id_valid(c->pair)) {
			snprintf(c->error, sizeof(c->error),
				 "pair: not a pair id (\"<id>~<id>\", sorted)");
			return;
		}
	}
	if (c->kind == S2S_ADMIN_UNPAIR) {
		char peer[S2S_ADMIN_ID_MAX + 1];

		if (s2s_json_get_string(o, "peer", false, NULL, peer,
					sizeof(peer), c->error,
					sizeof(c->error)) != S2S_OK)
			return;
		if (!s2s_id_valid(peer) || !strcmp(peer, c->id)) {
			snprintf(c->error, sizeof(c->error),
				 "peer: not another device id");
			return;
		}
		if (s2s_pair_id(c->id, peer, c->pair) != S2S_OK) {
			snprintf(c->error, sizeof(c->error), "peer: bad id");
			return;
		}
	}
	if (c->kind == S2S_ADMIN_ADD_ENROLMENT_CODE) {
		if (s2s_json_get_string(o, "code", true, "", c->code,
					sizeof(c->code), c->error,
					sizeof(c->error)) != S2S_OK)
			return;
		if (s2s_json_get_int(o, "validity", true, -1, 0,
				     10ll * 365 * 86400, &v, c->error,
				     sizeof(c->error)) != S2S_OK)
			return;
		c->validity = v;
	}
}

enum s2s_err
s2s_admin_parse(const void *buf, size_t len, struct s2s_admin_req *out,
		char *err, size_t err_len)
{
	struct s2s_json *root;
	const struct s2s_json *arr;
	size_t n;

	memset(out, 0, sizeof(*out));
	root = s2s_json_parse(buf, len);
	arr = s2s_json_get(root, "commands");
	if (!root || !s2s_json_is_object(root) || !s2s_json_is_array(arr)) {
		snprintf(err, err_len, "expected {\"commands\":[...]}");
		s2s_json_free(root);
		return S2S_ERR_FORMAT;
	}
	n = s2s_json_array_size(arr);
	if (n > S2S_ADMIN_MAX_COMMANDS) {
		snprintf(err, err_len, "more than %d commands",
			 S2S_ADMIN_MAX_COMMANDS);
		s2s_json_free(root);
		return S2S_ERR_FORMAT;
	}
	out->cmds = calloc(n ? n : 1, sizeof(*out->cmds));
	if (!out->cmds) {
		s2s_json_free(root);
		snprintf(err, err_len, "out of memory");
		return S2S_ERR_NOMEM;
	}
	out->count = n;
	for (size_t i = 0; i < n; i++)
		parse_one(s2s_json_array_at(arr, i), &out->cmds[i]);
	s2s_json_free(root);
	return S2S_OK;
}

void
s2s_admin_req_free(struct s2s_admin_req *r)
{
	if (r->cmds)
		s2s_memzero(r->cmds, r->count * sizeof(*r->cmds));
	free(r->cmds);
	memset(r, 0, sizeof(*r));
}

char *
s2s_admin_request_unpair(const char *id, const char *peer)
{
	struct s2s_json *root = s2s_json_new_object();
	struct s2s_json *arr = s2s_json_add_array(root, "commands");
	struct s2s_json *c = s2s_json_push_object(arr);
	char *s;

	s2s_json_add_string(c, "command", "unpair");
	s2s_json_add_string(c, "id", id ? id : "");
	s2s_json_add_string(c, "peer", peer ? peer : "");
	s = s2s_json_print(root, NULL);
	s2s_json_free(root);
	return s;
}

char *
s2s_admin_request(const char *command, const char *id, const char *pair,
		  const char *code, int64_t validity)
{
	struct s2s_json *root = s2s_json_new_object();
	struct s2s_json *arr = s2s_json_add_array(root, "commands");
	struct s2s_json *c = s2s_json_push_object(arr);
	char *s;

	s2s_json_add_string(c, "command", command);
	if (id)
		s2s_json_add_string(c, "id", id);
	if (pair)
		s2s_json_add_string(c, "pair", pair);
	if (code)
		s2s_json_add_string(c, "code", code);
	if (validity >= 0)
		s2s_json_add_int(c, "validity", validity);
	s = s2s_json_print(root, NULL);
	s2s_json_free(root);
	return s;
}

struct s2s_json *
s2s_admin_reply_new(void)
{
	struct s2s_json *r = s2s_json_new_object();

	if (r && !s2s_json_add_array(r, "responses")) {
		s2s_json_free(r);
		return NULL;
	}
	return r;
}

struct s2s_json *
s2s_admin_reply_add(struct s2s_json *reply, const struct s2s_admin_cmd *cmd,
		    const char *error)
{
	struct s2s_json *arr, *o;

	arr = (struct s2s_json *)s2s_json_get(reply, "responses");
	o = s2s_json_push_object(arr);
	s2s_json_add_string(o, "command", cmd->name);
	if (cmd->has_correlation)
		s2s_json_add_string(o, "correlationData", cmd->correlation);
	if (error) {
		s2s_json_add_string(o, "error", error);
		return NULL;
	}
	return s2s_json_add_object(o, "data");
}
