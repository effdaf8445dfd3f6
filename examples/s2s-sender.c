/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s-sender.c - the smallest useful device application: send a few
 * messages to one peer through a broker that runs the s2s plugin.
 *
 *   usage: s2s-sender CONFIG PEER MESSAGE...
 *
 * Build it against an installed libs2s-client:
 *
 *   cc -o s2s-sender s2s-sender.c $(pkg-config --cflags --libs s2s-client)
 *
 * CONFIG is the device's JSON configuration (s2s/client.h, "Configuration":
 * broker URI, id, key files, signature image, state folder).  The program
 * walks through the scheme's three phases:
 *
 *   1. registration with the cloud server (once; remembered in state_dir),
 *   2. pairing with PEER and negotiation of a session (the peer's library
 *      answers on its own, the peer application only has to run),
 *   3. one sealed package per MESSAGE, each checked by the CS gate before
 *      the broker routes it (S2S_SEND_WAIT_ACK waits for that verdict).
 *
 * Exit status: 0 when every message was accepted, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <s2s/client.h>

/* Everything the library reports goes through one enum: print it. */
static int
fail(const char *what, enum s2s_err e, struct s2s_client *c)
{
	char reason[256] = "";

	if (c)
		s2s_client_last_reason(c, reason, sizeof(reason));
	fprintf(stderr, "s2s-sender: %s: %s%s%s\n", what, s2s_strerror(e),
		*reason ? " - " : "", reason);
	s2s_client_destroy(c);
	return 1;
}

int
main(int argc, char **argv)
{
	struct s2s_client *c = NULL;
	char err[512];
	enum s2s_err e;
	int i;

	if (argc < 4) {
		fprintf(stderr, "usage: s2s-sender CONFIG PEER MESSAGE...\n");
		return 2;
	}

	/* Reads the configuration, the keys and the saved state; does not
	 * connect yet.  err says which key or file is wrong. */
	e = s2s_client_create(argv[1], &c, err, sizeof(err));
	if (e != S2S_OK) {
		fprintf(stderr, "s2s-sender: %s\n", err);
		return 1;
	}

	/* Phase 1: register once.  Registration is idempotent, but a device
	 * that remembers it skips the round trip. */
	if (!s2s_client_registered(c)) {
		e = s2s_client_register(c, -1);     /* -1: configured timeout */
		if (e != S2S_OK)
			return fail("register", e, c);
	}

	/* Phases 1 and 2: pair with the peer if needed (the peer must ask
	 * too) and negotiate a session unless one is already established. */
	e = s2s_client_ensure_session(c, argv[2], -1);
	if (e != S2S_OK)
		return fail("session", e, c);

	/* Phase 3: each message is sealed (tag hidden in a stego image) and
	 * published; WAIT_ACK returns S2S_ERR_REJECTED if the CS refused. */
	for (i = 3; i < argc; i++) {
		struct s2s_sent_info info;

		e = s2s_client_send(c, argv[2], (const unsigned char *)argv[i],
				    strlen(argv[i]), S2S_SEND_WAIT_ACK, &info);
		if (e != S2S_OK)
			return fail("send", e, c);
		printf("sent seq %llu (%zu bytes on the wire)\n",
		       (unsigned long long)info.seq, info.package_len);
	}

	/* Disconnects cleanly and wipes every secret. */
	s2s_client_destroy(c);
	return 0;
}
