/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stddef.h>

#include "s2s/error.h"

struct err_entry {
	const char *name;
	const char *text;
};

/* Indexed by -err. */
static const struct err_entry errors[S2S_ERR_COUNT] = {
	[0] = { "ok", "success" },
	[-S2S_ERR_NOMEM] = { "nomem", "out of memory" },
	[-S2S_ERR_INVAL] = { "inval", "invalid argument" },
	[-S2S_ERR_IO] = { "io", "input/output error" },
	[-S2S_ERR_CRYPTO] = { "crypto", "cryptographic backend failure" },
	[-S2S_ERR_AUTH] = { "auth", "verification failed" },
	[-S2S_ERR_PERM] = { "perm", "secret file is accessible by group or others" },
	[-S2S_ERR_FORMAT] = { "format", "malformed input" },
	[-S2S_ERR_TRUNCATED] = { "truncated", "input is truncated" },
	[-S2S_ERR_TOO_BIG] = { "too_big", "input exceeds a configured limit" },
	[-S2S_ERR_VERSION] = { "version", "unsupported format version" },
	[-S2S_ERR_PROFILE] = { "profile", "unknown or mismatched security profile" },
	[-S2S_ERR_REPLAY] = { "replay", "sequence number already seen (replay or duplicate)" },
	[-S2S_ERR_GAP] = { "gap", "sequence number ahead of the expected one" },
	[-S2S_ERR_COVER] = { "cover", "cover image unusable for this payload" },
	[-S2S_ERR_IMAGE] = { "image", "image cannot be decoded or is unsupported" },
	[-S2S_ERR_NO_INK] = { "no_ink", "signature image has no ink" },
	[-S2S_ERR_CONFIG] = { "config", "invalid configuration" },
	[-S2S_ERR_STATE] = { "state", "operation not valid in the current state" },
	[-S2S_ERR_NOT_FOUND] = { "not_found", "not found" },
	[-S2S_ERR_TIMEOUT] = { "timeout", "timed out" },
	[-S2S_ERR_REJECTED] = { "rejected", "request rejected" },
	[-S2S_ERR_MQTT] = { "mqtt", "MQTT transport failure" },
	[-S2S_ERR_STORE] = { "store", "persistent store failure" },
	[-S2S_ERR_DENIED] = { "denied", "not allowed" },
	[-S2S_ERR_INCONSISTENT] = { "inconsistent", "fields are inconsistent" },
	[-S2S_ERR_SESSION] = { "session", "unknown, expired or ended session" },
};

static const struct err_entry *
lookup(int err)
{
	if (err > 0 || err <= -S2S_ERR_COUNT || !errors[-err].name)
		return NULL;
	return &errors[-err];
}

const char *
s2s_strerror(int err)
{
	const struct err_entry *e = lookup(err);

	return e ? e->text : "unknown error";
}

const char *
s2s_errname(int err)
{
	const struct err_entry *e = lookup(err);

	return e ? e->name : "unknown";
}
