/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_admin.c - the admin API request parser the broker plugin runs on
 * $CONTROL/s2s/v1 payloads: s2s_admin_parse, then the reply built for it
 * as the plugin would (an error entry or an empty data object per
 * command) and printed.
 *
 * Input: the MQTT payload (not NUL-terminated).  Invariants: every string
 * field of a parsed command is NUL-terminated within its buffer; at most
 * S2S_ADMIN_MAX_COMMANDS commands; a well-formed command survives
 * s2s_admin_request -> s2s_admin_parse with the same fields; the reply
 * prints as JSON that parses again.
 */
#include "fuzz_common.h"
#include "admin.h"

static void
cleanup(void)
{
	s2s_crypto_shutdown();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	atexit(cleanup);
	return 0;
}

#define TERMINATED(f) FUZZ_CHECK(memchr((f), '\0', sizeof(f)) != NULL)

/* Rebuild a well-formed command as a request and parse it back. */
static void
round_trip(const struct s2s_admin_cmd *c)
{
	struct s2s_admin_req r2;
	char err[128];
	char *txt;

	bool id = c->kind == S2S_ADMIN_GET_DEVICE ||
		  c->kind == S2S_ADMIN_REMOVE_DEVICE ||
		  c->kind == S2S_ADMIN_ADD_ENROLMENT_CODE;
	bool pair = c->kind == S2S_ADMIN_REMOVE_PAIR ||
		    c->kind == S2S_ADMIN_END_SESSION;

	/* The fields the command takes, as parsed (possibly empty). */
	if (c->kind == S2S_ADMIN_UNPAIR) {
		/* id and peer; the parsed pair is "<min>~<max>" of both. */
		const char *tilde = strchr(c->pair, '~');
		char peer[S2S_ADMIN_ID_MAX + 1];

		FUZZ_CHECK(tilde != NULL);
		if ((size_t)(tilde - c->pair) == strlen(c->id) &&
		    !strncmp(c->pair, c->id, strlen(c->id)))
			snprintf(peer, sizeof(peer), "%s", tilde + 1);
		else
			snprintf(peer, sizeof(peer), "%.*s",
				 (int)(tilde - c->pair), c->pair);
		txt = s2s_admin_request_unpair(c->id, peer);
	} else {
		txt = s2s_admin_request(c->name, id ? c->id : NULL,
					pair ? c->pair : NULL,
					c->code[0] ? c->code : NULL,
					c->validity);
	}
	FUZZ_CHECK(txt != NULL);
	FUZZ_CHECK(s2s_admin_parse(txt, strlen(txt), &r2, err, sizeof(err)) ==
		   S2S_OK);
	free(txt);
	FUZZ_CHECK(r2.count == 1);
	FUZZ_CHECK(r2.cmds[0].kind == c->kind);
	FUZZ_CHECK(r2.cmds[0].error[0] == '\0');
	FUZZ_CHECK(strcmp(r2.cmds[0].name, c->name) == 0);
	FUZZ_CHECK(strcmp(r2.cmds[0].id, c->id) == 0);
	FUZZ_CHECK(strcmp(r2.cmds[0].pair, c->pair) == 0);
	FUZZ_CHECK(strcmp(r2.cmds[0].code, c->code) == 0);
	FUZZ_CHECK(r2.cmds[0].validity == c->validity);
	s2s_admin_req_free(&r2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s2s_admin_req req;
	struct s2s_json *reply, *again;
	char err[128];
	char *txt;
	size_t txt_len = 0;
	enum s2s_err e;

	memset(err, 0, sizeof(err));
	e = s2s_admin_parse(data, size, &req, err, sizeof(err));
	TERMINATED(err);
	if (e != S2S_OK) {
		FUZZ_CHECK(e == S2S_ERR_FORMAT || e == S2S_ERR_NOMEM);
		s2s_admin_req_free(&req);
		return 0;
	}
	FUZZ_CHECK(req.count <= S2S_ADMIN_MAX_COMMANDS);
	reply = s2s_admin_reply_new();
	FUZZ_CHECK(reply != NULL);
	for (size_t i = 0; i < req.count; i++) {
		const struct s2s_admin_cmd *c = &req.cmds[i];
		struct s2s_json *d;

		TERMINATED(c->name);
		TERMINATED(c->id);
		TERMINATED(c->pair);
		TERMINATED(c->code);
		TERMINATED(c->correlation);
		TERMINATED(c->error);
		FUZZ_CHECK((c->kind == S2S_ADMIN_UNKNOWN) ==
			   (s2s_admin_name(c->kind) == NULL));
		if (c->error[0]) {
			(void)s2s_admin_reply_add(reply, c, c->error);
			continue;
		}
		FUZZ_CHECK(c->kind != S2S_ADMIN_UNKNOWN);
		FUZZ_CHECK(strcmp(s2s_admin_name(c->kind), c->name) == 0);
		d = s2s_admin_reply_add(reply, c, NULL);
		FUZZ_CHECK(d != NULL);
		if (c->id[0])
			s2s_json_add_string(d, "id", c->id);
		if (c->pair[0])
			s2s_json_add_string(d, "pair", c->pair);
		round_trip(c);
	}
	txt = s2s_json_print(reply, &txt_len);
	FUZZ_CHECK(txt != NULL && strlen(txt) == txt_len);
	again = s2s_json_parse(txt, txt_len);
	FUZZ_CHECK(again != NULL);
	s2s_json_free(again);
	free(txt);
	s2s_json_free(reply);
	s2s_admin_req_free(&req);
	return 0;
}
