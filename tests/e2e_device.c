/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * e2e_device.c - a small device application on libs2s-client for the
 * end-to-end tests: it sends and receives at the same time, and prints
 * what happens, one line per event:
 *
 *   RECV <seq> <fetched 0|1> <message>
 *   REJECT <errname> <seq> <in|out>
 *   DONE sent=<n> recv=<m>
 *
 * usage: e2e_device CONFIG PEER [--send N] [--expect M] [--initiate]
 *                   [--interval MS] [--timeout SEC] [--tag TEXT]
 * Exit: 0 when N sent and M received, 1 on error or timeout, 3 when
 * stopped by SIGTERM (after a clean shutdown).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s2s/client.h"

static volatile sig_atomic_t stop;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned received;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void
on_message(void *ud, const struct s2s_message_info *i, const uint8_t *m,
	   size_t n)
{
	(void)ud;
	pthread_mutex_lock(&out_lock);
	printf("RECV %llu %d %.*s\n", (unsigned long long)i->seq,
	       i->fetched ? 1 : 0, (int)n, (const char *)m);
	fflush(stdout);
	received++;
	pthread_mutex_unlock(&out_lock);
}

static void
on_reject(void *ud, const struct s2s_reject_info *r)
{
	(void)ud;
	pthread_mutex_lock(&out_lock);
	printf("REJECT %s %llu %s\n", s2s_errname(r->err),
	       (unsigned long long)r->seq, r->outgoing ? "out" : "in");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static unsigned
got(void)
{
	unsigned n;

	pthread_mutex_lock(&out_lock);
	n = received;
	pthread_mutex_unlock(&out_lock);
	return n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct s2s_client *c;
	const char *peer, *tag = "m";
	long nsend = 0, expect = 0, interval = 0, sent = 0;
	double timeout = 60, end, next = 0;
	bool initiate = false;
	char err[512];
	enum s2s_err e;
	int status = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: e2e_device CONFIG PEER [options]\n");
		return 2;
	}
	peer = argv[2];
	for (int i = 3; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "0";

		if (!strcmp(argv[i], "--send"))
			nsend = atol(v), i++;
		else if (!strcmp(argv[i], "--expect"))
			expect = atol(v), i++;
		else if (!strcmp(argv[i], "--interval"))
			interval = atol(v), i++;
		else if (!strcmp(argv[i], "--timeout"))
			timeout = atof(v), i++;
		else if (!strcmp(argv[i], "--tag"))
			tag = v, i++;
		else if (!strcmp(argv[i], "--initiate"))
			initiate = true;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	end = now_s() + timeout;

	e = s2s_client_create(argv[1], &c, err, sizeof(err));
	if (e) {
		fprintf(stderr, "e2e_device: %s\n", err);
		return 1;
	}
	s2s_client_on_message(c, on_message, NULL);
	s2s_client_on_reject(c, on_reject, NULL);
	e = s2s_client_connect(c, -1);
	if (!e && !s2s_client_registered(c))
		e = s2s_client_register(c, -1);
	if (!e && !s2s_client_paired(c, peer))
		e = s2s_client_pair(c, peer, 0, -1);
	if (e) {
		fprintf(stderr, "e2e_device: setup: %s\n", s2s_strerror(e));
		goto out;
	}
	if (initiate) {
		e = s2s_client_ensure_session(c, peer, -1);
	} else if (nsend) {
		/* The peer starts the session; wait for it. */
		e = s2s_client_wait_session(c, peer, (int)(timeout * 1000));
	}
	if (e) {
		fprintf(stderr, "e2e_device: session: %s\n", s2s_strerror(e));
		goto out;
	}
	printf("READY\n");
	fflush(stdout);
	while (!stop && now_s() < end) {
		if (sent < nsend && now_s() >= next) {
			char msg[128];

			snprintf(msg, sizeof(msg), "%s %ld", tag, sent + 1);
			e = s2s_client_send(c, peer, (const uint8_t *)msg,
					    strlen(msg), 0, NULL);
			if (e == S2S_ERR_SESSION) {
				/* Renegotiating (recovery): try again. */
				usleep(50000);
				continue;
			}
			if (e) {
				fprintf(stderr, "e2e_device: send: %s\n",
					s2s_strerror(e));
				goto out;
			}
			sent++;
			next = now_s() + interval / 1000.0;
			continue;
		}
		if (sent >= nsend && got() >= (unsigned long)expect &&
		    s2s_client_flush(c, 0) == S2S_OK) {
			status = 0;
			break;
		}
		usleep(2000);
	}
	if (stop)
		status = 3;
	s2s_client_flush(c, 5000);
out:
	s2s_client_destroy(c);
	printf("DONE sent=%ld recv=%u\n", sent, got());
	fflush(stdout);
	return status;
}
