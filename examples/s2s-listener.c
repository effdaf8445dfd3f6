/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s-listener.c - a device application that waits for a peer's messages
 * and prints each verified one.
 *
 *   usage: s2s-listener CONFIG PEER [COUNT [SECONDS]]
 *
 * Build it against an installed libs2s-client:
 *
 *   cc -o s2s-listener s2s-listener.c \
 *      $(pkg-config --cflags --libs s2s-client)
 *
 * It registers (once), asks to pair with PEER and then takes messages
 * with the blocking s2s_client_receive() until COUNT messages arrived (0:
 * for ever) or nothing came for SECONDS (default 30).  On later runs the
 * saved state skips registration and pairing; s2s_client_receive()
 * connects on its own, like every blocking call.  The session itself
 * is negotiated by the peer (s2s-sender); this library answers on its own.
 *
 * Every message printed here has passed two checks: the cloud server's
 * gate (before the broker routed it) and this device's own verification
 * against its copy of the key chain.  Refused packages are reported by the
 * reject callback, which runs on the library's network thread.
 *
 * Output, one line per message:  <seq> <sender>: <text>
 * Exit status: 0 when COUNT messages arrived, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include <s2s/client.h>

/* Network thread: keep it short, and never call blocking functions. */
static void
on_reject(void *ud, const struct s2s_reject_info *r)
{
	(void)ud;
	fprintf(stderr, "s2s-listener: refused package %llu from '%s': %s\n",
		(unsigned long long)r->seq, r->peer, s2s_errname(r->err));
}

int
main(int argc, char **argv)
{
	struct s2s_client *c = NULL;
	struct s2s_received *m;
	long count, got = 0;
	int timeout_ms;
	char err[512];
	enum s2s_err e;

	if (argc < 3) {
		fprintf(stderr, "usage: s2s-listener CONFIG PEER "
			"[COUNT [SECONDS]]\n");
		return 2;
	}
	count = argc > 3 ? atol(argv[3]) : 0;
	timeout_ms = argc > 4 ? atoi(argv[4]) * 1000 : 30000;

	e = s2s_client_create(argv[1], &c, err, sizeof(err));
	if (e != S2S_OK) {
		fprintf(stderr, "s2s-listener: %s\n", err);
		return 1;
	}
	/* No message callback: verified messages are queued for
	 * s2s_client_receive().  Set callbacks before connecting. */
	s2s_client_on_reject(c, on_reject, NULL);

	if (!s2s_client_registered(c))
		e = s2s_client_register(c, -1);
	/* Pairing completes when both devices have asked for it. */
	if (e == S2S_OK && !s2s_client_paired(c, argv[2]))
		e = s2s_client_pair(c, argv[2], 0, -1);
	if (e != S2S_OK) {
		char why[256] = "";

		s2s_client_last_reason(c, why, sizeof(why));
		fprintf(stderr, "s2s-listener: setup: %s%s%s\n",
			s2s_strerror(e), *why ? " - " : "", why);
		s2s_client_destroy(c);
		return 1;
	}
	printf("listening for %s\n", argv[2]);
	fflush(stdout);

	while (count == 0 || got < count) {
		/* Connects on its own (on the first call, e.g. when the
		 * saved state let us skip registration and pairing). */
		e = s2s_client_receive(c, timeout_ms, &m);
		if (e != S2S_OK) {
			char why[256] = "";

			s2s_client_last_reason(c, why, sizeof(why));
			fprintf(stderr, "s2s-listener: receive: %s%s%s\n",
				s2s_strerror(e), *why ? " - " : "", why);
			break;
		}
		/* msg is the plaintext the peer sent (not NUL-terminated). */
		printf("%llu %s: %.*s\n", (unsigned long long)m->info.seq,
		       m->info.sender, (int)m->len, (const char *)m->msg);
		fflush(stdout);
		s2s_received_free(m);
		got++;
	}
	s2s_client_destroy(c);
	return count && got >= count ? 0 : 1;
}
