/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s - the s2s-mqtt command-line tool: a thin front end over core/ and the
 * client library.  One function per command, in cmd_*.c.
 */
#include <stdio.h>
#include <string.h>

#include "s2s/crypto.h"
#include "tool.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "crypto", cmd_crypto, "run one primitive of the scheme (macless, ratchet, skcs)" },
	{ "keygen", cmd_keygen, "create a P-256 key pair: PATH.key (0600) and PATH.pub" },
	{ "bio", cmd_bio, "bio-keys: Rv from two signatures, synthetic signatures" },
	{ "stego", cmd_stego, "hide, extract and analyse payloads in cover images" },
	{ "bench", cmd_bench, "print benchmark figures (median microseconds)" },
	{ "register", cmd_register, "register this device with the CS (phase 1)" },
	{ "pair", cmd_pair, "pair this device with a peer (phase 1)" },
	{ "session", cmd_session, "negotiate a session with a peer (phase 2)" },
	{ "send", cmd_send, "send messages to a peer (phase 3)" },
	{ "listen", cmd_listen, "print every verified message (--json: JSON lines)" },
	{ "fetch", cmd_fetch, "fetch a peer's stored packages from the CS" },
	{ "status", cmd_status, "this device's registration, pairs, sessions (--json)" },
	{ "health", cmd_health, "check the device for scripts (exit status 0..5)" },
	{ "unpair", cmd_unpair, "forget a peer (and remove the pair at the CS)" },
	{ "ctl", cmd_ctl, "the CS admin API (devices, pairs, sessions, statistics)" },
	{ "demo", cmd_demo, "the whole scheme end to end through a private broker" },
	{ "cluster-config", cmd_cluster_config, "mosquitto.conf fragments (bridges, plugin options) of an N-broker cluster" },
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s <command> [options]\n"
		"       s2s <command> --help\n"
		"       s2s --version\n\n"
		"Secure, lightweight end-to-end messaging for IoT devices through an\n"
		"MQTT broker (Al Sibahee et al., IEEE Access 2020).\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

int
main(int argc, char **argv)
{
	int status;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("s2s %s (%s)\n", S2S_VERSION, s2s_crypto_backend_version());
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		status = commands[i].run(argc - 1, argv + 1);
		s2s_crypto_shutdown();
		return status;
	}
	fprintf(stderr, "s2s: unknown command '%s' (try 's2s --help')\n", argv[1]);
	return EXIT_USAGE;
}
