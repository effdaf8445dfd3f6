/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd_ctl.c - `s2s ctl`: the CS admin API ($CONTROL/s2s/v1) from the
 * command line.  The request is built by config/admin.c, sent by
 * libs2s-client (s2s_admin_call), and the JSON reply printed as is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "device_config.h"
#include "s2s/client.h"
#include "tool.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s ctl [options] COMMAND [id=ID] [pair=PAIR] [code=CODE]"
		" [validity=SEC]\n"
		"       s2s ctl [options] --raw '{\"commands\":[...]}'\n"
		"Send one admin command to the CS and print its JSON reply.\n"
		"commands: listDevices, getDevice id, removeDevice id (revoke),\n"
		"  addEnrolmentCode id [code] [validity], listPairs, removePair "
		"pair,\n"
		"  unpair id peer (removePair by its members),\n"
		"  listSessions, endSession pair, getStatistics\n"
		"options:\n"
		"  --config FILE     take the broker URI, the CA and the CS key "
		"from a device\n"
		"                    configuration (admin key: <cs_key "
		"base>.admin.key)\n"
		"  --broker URI      the broker (default tcp://127.0.0.1:1883)\n"
		"  --admin-key FILE  the admin private key (<cs_key base>"
		".admin.key)\n"
		"  --user NAME       the admin user name (default s2s-admin)\n"
		"  --ca FILE         CA certificate for ssl:// brokers\n"
		"  --timeout SEC     default 10\n"
		"  --help            this text\n");
}

int
cmd_ctl(int argc, char **argv)
{
	const char *broker = NULL, *key = NULL, *user = NULL, *ca = NULL;
	const char *config = NULL, *raw = NULL, *command = NULL;
	const char *id = NULL, *pair = NULL, *code = NULL, *peer = NULL;
	int64_t validity = -1;
	int timeout_ms = 10000;
	struct s2s_device_config cfg;
	char *req = NULL, *resp = NULL;
	char keybuf[4096];
	char err[512];
	enum s2s_err e;
	int status = 1;

	memset(&cfg, 0, sizeof(cfg));
	if (tool_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--config") && v)
			config = argv[++i];
		else if (!strcmp(a, "--broker") && v)
			broker = argv[++i];
		else if (!strcmp(a, "--admin-key") && v)
			key = argv[++i];
		else if (!strcmp(a, "--user") && v)
			user = argv[++i];
		else if (!strcmp(a, "--ca") && v)
			ca = argv[++i];
		else if (!strcmp(a, "--raw") && v)
			raw = argv[++i];
		else if (!strcmp(a, "--timeout") && v)
			timeout_ms = (int)(atof(argv[++i]) * 1000);
		else if (!strncmp(a, "id=", 3))
			id = a + 3;
		else if (!strncmp(a, "pair=", 5))
			pair = a + 5;
		else if (!strncmp(a, "peer=", 5))
			peer = a + 5;
		else if (!strncmp(a, "code=", 5))
			code = a + 5;
		else if (!strncmp(a, "validity=", 9)) {
			uint64_t u;

			if (!parse_u64(a + 9, INT64_MAX, &u))
				return tool_fail(EXIT_USAGE, "ctl",
						 "bad validity '%s'", a + 9);
			validity = (int64_t)u;
		} else if (a[0] != '-' && !command)
			command = a;
		else
			return tool_fail(EXIT_USAGE, "ctl",
					 "bad argument '%s' (try --help)", a);
	}
	if (!raw && !command)
		return tool_fail(EXIT_USAGE, "ctl", "no command (try --help)");
	if (config) {
		e = s2s_device_config_load(config, &cfg, err, sizeof(err));
		if (e)
			return tool_fail(1, "ctl", "%s", err);
		if (!broker)
			broker = cfg.broker;
		if (!ca)
			ca = cfg.tls_ca_file;
		if (!key) {
			size_t l = strlen(cfg.cs_key_file);

			if (l > 4 && !strcmp(cfg.cs_key_file + l - 4, ".pub"))
				l -= 4;
			snprintf(keybuf, sizeof(keybuf), "%.*s.admin.key",
				 (int)l, cfg.cs_key_file);
			key = keybuf;
		}
	}
	if (!broker)
		broker = "tcp://127.0.0.1:1883";
	if (!key) {
		tool_fail(EXIT_USAGE, "ctl", "no admin key (--admin-key FILE or "
			  "--config FILE)");
		goto out;
	}
	{
		/* Name the admin key file when it is the problem: the broker
		 * is not. */
		FILE *kf = fopen(key, "r");

		if (!kf) {
			tool_fail(1, "ctl", "admin key %s: %s (give --admin-key "
				  "FILE; the CS writes it next to cs.pub as "
				  "cs.admin.key)", key, strerror(errno));
			goto out;
		}
		fclose(kf);
	}
	if (command && !strcmp(command, "unpair") && !raw) {
		if (!id || !peer) {
			tool_fail(EXIT_USAGE, "ctl", "usage: s2s ctl unpair "
				  "id=DEVICE peer=DEVICE");
			status = EXIT_USAGE;
			goto out;
		}
		req = s2s_admin_request_unpair(id, peer);
	} else {
		req = raw ? strdup(raw) : s2s_admin_request(command, id, pair,
							    code, validity);
	}
	if (!req) {
		tool_fail(1, "ctl", "cannot build the request");
		goto out;
	}
	e = s2s_admin_call(broker, key, user, ca, req, timeout_ms, &resp);
	if (e == S2S_ERR_PERM) {
		tool_fail(1, "ctl", "admin key %s is readable by group or others:"
			  " chmod 600 %s", key, key);
		goto out;
	}
	if (e == S2S_ERR_IO || e == S2S_ERR_FORMAT || e == S2S_ERR_CRYPTO) {
		tool_fail(1, "ctl", "admin key %s: %s", key, s2s_strerror(e));
		goto out;
	}
	if (e) {
		tool_fail(1, "ctl", "%s: %s%s", broker, s2s_strerror(e),
			  e == S2S_ERR_DENIED ? " (wrong admin key or user?)"
					      : "");
		goto out;
	}
	printf("%s\n", resp);
	status = strstr(resp, "\"error\"") ? 1 : 0;
out:
	free(req);
	s2s_free(resp);
	s2s_device_config_free(&cfg);
	return status;
}
