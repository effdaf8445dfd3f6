/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * admin.h - the admin API of the cloud server ($CONTROL/s2s/v1), as typed
 * C: requests parsed from JSON, replies built into JSON.  The broker plugin
 * (broker-plugin/control.c) executes the commands; `s2s ctl` builds them.
 *
 * Request:  {"commands":[{"command":"listDevices"},
 *                         {"command":"getDevice","id":"alice"}, ...]}
 * Reply:    {"responses":[{"command":"listDevices","data":{...}},
 *                         {"command":"getDevice","error":"..."}, ...]}
 * on $CONTROL/s2s/v1/response.  A command may carry "correlationData"
 * (a string, echoed).  Commands and their fields:
 *
 *   listDevices                      -> {"devices":[{id, revoked, created}]}
 *   getDevice        id              -> {"device":{id, revoked, created,
 *                                        connected, pairs:[...]}}
 *   removeDevice     id              revokes, ends its pairs, disconnects it
 *   addEnrolmentCode id [code] [validity]  -> {"id","code","expires"};
 *                                     code: 8..128 printable characters,
 *                                     drawn at random when absent;
 *                                     validity: seconds (default 86400,
 *                                     0 = no expiry)
 *   listPairs                        -> {"pairs":[{pair, members, profile,
 *                                        session, packages}]}
 *   removePair       pair            ends its session, deletes it and its
 *                                     stored packages
 *   unpair           id peer         the same, naming the pair by its two
 *                                     device ids -> {"pair"}
 *   listSessions                     -> {"sessions":[{pair, session (string),
 *                                        state, sds, next_seq:{...}}]}
 *   endSession       pair            ENDED to both members
 *   getStatistics                    -> {devices, pairs, sessions,
 *                                        packages:{accepted, rejected:{..}},
 *                                        ...}
 */
#ifndef S2S_CONFIG_ADMIN_H
#define S2S_CONFIG_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "s2s/error.h"

enum s2s_admin_kind {
	S2S_ADMIN_UNKNOWN = 0,
	S2S_ADMIN_LIST_DEVICES,
	S2S_ADMIN_GET_DEVICE,
	S2S_ADMIN_REMOVE_DEVICE,
	S2S_ADMIN_ADD_ENROLMENT_CODE,
	S2S_ADMIN_LIST_PAIRS,
	S2S_ADMIN_REMOVE_PAIR,
	S2S_ADMIN_LIST_SESSIONS,
	S2S_ADMIN_END_SESSION,
	S2S_ADMIN_GET_STATISTICS,
	S2S_ADMIN_UNPAIR,               /* id + peer: removePair by members */
};

#define S2S_ADMIN_NAME_MAX 64
#define S2S_ADMIN_ID_MAX 64
#define S2S_ADMIN_PAIR_MAX 129
#define S2S_ADMIN_CODE_MAX 128
#define S2S_ADMIN_CORR_MAX 256
#define S2S_ADMIN_MAX_COMMANDS 64

struct s2s_admin_cmd {
	enum s2s_admin_kind kind;
	char name[S2S_ADMIN_NAME_MAX + 1];      /* as sent ("?" if none) */
	char id[S2S_ADMIN_ID_MAX + 1];
	char pair[S2S_ADMIN_PAIR_MAX + 1];
	char code[S2S_ADMIN_CODE_MAX + 1];      /* secret: wiped by free */
	int64_t validity;                       /* seconds, -1 = default */
	char correlation[S2S_ADMIN_CORR_MAX + 1];
	bool has_correlation;
	/* Non-empty when this command is malformed: reply with this error. */
	char error[128];
};

struct s2s_admin_req {
	size_t count;
	struct s2s_admin_cmd *cmds;
};

/* "listDevices" etc.; NULL for S2S_ADMIN_UNKNOWN. */
const char *s2s_admin_name(enum s2s_admin_kind k);

/*
 * Parse a request.  S2S_ERR_FORMAT (err says why) if the payload is not
 * {"commands":[...]} or has more than S2S_ADMIN_MAX_COMMANDS; a malformed
 * single command is returned with its error field set.  Free with
 * s2s_admin_req_free() in every case.
 */
enum s2s_err s2s_admin_parse(const void *buf, size_t len,
			     struct s2s_admin_req *out, char *err,
			     size_t err_len);
void s2s_admin_req_free(struct s2s_admin_req *r);

/*
 * Build a request (for s2s ctl and tests): one command with optional
 * fields (NULL = absent, validity < 0 = absent).  malloc()ed text.
 */
/* unpair: {"command":"unpair","id":id,"peer":peer}; malloc()ed text. */
char *s2s_admin_request_unpair(const char *id, const char *peer);

char *s2s_admin_request(const char *command, const char *id,
			const char *pair, const char *code, int64_t validity);

/*
 * Replies.  s2s_admin_reply_new() starts {"responses":[]};
 * s2s_admin_reply_add() appends {"command": name, ["correlationData"],
 * "error": error} if error is non-NULL, or {"command", ..., "data": {}}
 * and returns the data object to fill with the json.h adders.
 */
struct s2s_json *s2s_admin_reply_new(void);
struct s2s_json *s2s_admin_reply_add(struct s2s_json *reply,
				     const struct s2s_admin_cmd *cmd,
				     const char *error);

#endif /* S2S_CONFIG_ADMIN_H */
