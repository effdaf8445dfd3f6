/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * device_config.h - the device configuration file, read once into typed C.
 *
 * One JSON object (docs: client/include/s2s/client.h, "Configuration"):
 *
 *   key              type     default / rule
 *   broker           string   "tcp://127.0.0.1:1883" (tcp://, ssl://, mqtt://,
 *                             mqtts://, ws://, wss://), or an array of 1..8
 *                             such URIs: the brokers of a cluster, tried in
 *                             order at every (re)connect (failover)
 *   id               string   required; 1..64 of [A-Za-z0-9_.-]
 *   key              string   required; the device private key file (0600)
 *   cs_key           string   required; the pinned CS public key (.pub)
 *   signature        string   the handwritten-signature image (PNG/PGM);
 *                             needed to register
 *   state_dir        string   required; created 0700 if missing
 *   covers           string   a folder of 8-bit gray PNG covers, or
 *                             "builtin" for the embedded synthetic cover;
 *                             default: the project's core/covers when it
 *                             exists, else "builtin"
 *   profile          string   "default" | "paper" | "hardened" ("default":
 *                             the CS decides)
 *   png_level        integer  0, 0..9
 *   topic_root       string   "s2s"
 *   enrolment_code   string   none
 *   keepalive        integer  30 seconds, 5..3600
 *   session_expiry   integer  86400 seconds (MQTT session kept by the broker)
 *   token_ttl        integer  120 seconds, 60..86400 (each token is single-use)
 *   state_fsync      boolean  true
 *   fetch_on_connect boolean  true
 *   tls              object   { "ca_file", "cert_file", "key_file": string,
 *                               "verify": boolean (true) }
 *   timeouts         object   seconds (number > 0): "connect" 10,
 *                             "register" 15, "pair" 30, "session" 30,
 *                             "fetch" 10
 *
 * The file may hold comments (C++ style to the end of the line, and C style),
 * as the installed example does (config/s2s-device.json.example).
 * Relative paths are taken relative to the directory of the file.  Unknown
 * keys (also inside "tls" and "timeouts"), wrong types and out-of-range
 * values are errors; the message names the key ("timeouts.pair: expected a
 * number").
 */
#ifndef S2S_DEVICE_CONFIG_H
#define S2S_DEVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "s2s/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_COVERS_BUILTIN "builtin"
#define S2S_DEVICE_BROKERS_MAX 8

struct s2s_device_config {
	char *broker;
	char *id;
	char *key_file;
	char *cs_key_file;
	char *signature_file;   /* NULL if not set */
	char *state_dir;
	char *covers;           /* a folder, or S2S_COVERS_BUILTIN */
	int profile;            /* 0 default, 1 paper, 2 hardened */
	int png_level;
	char *topic_root;
	char *enrolment_code;   /* NULL if not set (secret) */
	int keepalive;
	long session_expiry;
	long token_ttl;
	bool state_fsync;
	bool fetch_on_connect;

	char *tls_ca_file;      /* NULLs if not set */
	char *tls_cert_file;
	char *tls_key_file;
	bool tls_verify;

	/* milliseconds */
	int timeout_connect;
	int timeout_register;
	int timeout_pair;
	int timeout_session;
	int timeout_fetch;

	/* every broker URI, brokers[0] == broker (a string: one) */
	char **brokers;
	size_t nbrokers;
};

/*
 * Read and parse a configuration file.  On error, cfg is left empty (free
 * is still safe) and err (may be NULL) receives one line naming the file
 * and the key: S2S_ERR_IO (cannot read), S2S_ERR_CONFIG (bad JSON, unknown
 * key, wrong type, missing or invalid value), S2S_ERR_NOMEM.
 */
enum s2s_err s2s_device_config_load(const char *path,
				    struct s2s_device_config *cfg,
				    char *err, size_t err_len);

/*
 * The same from a JSON text of len bytes; relative paths are resolved
 * against base_dir (NULL: the current directory).
 */
enum s2s_err s2s_device_config_parse(const char *json, size_t len,
				     const char *base_dir,
				     struct s2s_device_config *cfg,
				     char *err, size_t err_len);

/* Free every string (wiping the enrolment code) and zero cfg. */
void s2s_device_config_free(struct s2s_device_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* S2S_DEVICE_CONFIG_H */
