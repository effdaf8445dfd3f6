/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diagnose.c - turn a failed connect into one line that names the thing
 * to fix.  Paho says little ("TCP/TLS connect failure"), so after a
 * failure this file looks for itself, outside Paho: does the host name
 * resolve, does anything accept a TCP connection on that port.  Called on
 * an application thread only after a connect failed (never on the fast
 * path); the probe takes at most 2 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_private.h"

/* scheme://host:port (host may be [v6]); false if it is not that shape. */
static bool
split_uri(const char *uri, bool *tls, char *host, size_t hl, char *port,
	  size_t pl)
{
	const char *h = strstr(uri, "://"), *p, *end;

	if (!h)
		return false;
	*tls = !strncmp(uri, "ssl://", 6) || !strncmp(uri, "mqtts://", 8) ||
	       !strncmp(uri, "wss://", 6);
	h += 3;
	end = h + strcspn(h, "/");
	if (*h == '[') {
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			return false;
		snprintf(host, hl, "%.*s", (int)(rb - h - 1), h + 1);
		p = rb + 1;
	} else {
		p = memchr(h, ':', (size_t)(end - h));
		snprintf(host, hl, "%.*s", (int)((p ? p : end) - h), h);
	}
	if (p && *p == ':')
		snprintf(port, pl, "%.*s", (int)(end - p - 1), p + 1);
	else
		snprintf(port, pl, "%s", *tls ? "8883" : "1883");
	return host[0] != '\0';
}

/* 0 connected, else an errno; *gai a getaddrinfo error (or 0). */
static int
probe_tcp(const char *host, const char *port, int *gai)
{
	struct addrinfo hints, *res = NULL, *a;
	int err = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	*gai = getaddrinfo(host, port, &hints, &res);
	if (*gai)
		return -1;
	for (a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC |
				SOCK_NONBLOCK, a->ai_protocol);
		struct pollfd pf;
		socklen_t sl = sizeof(err);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			err = 0;
		} else if (errno != EINPROGRESS) {
			err = errno;
		} else {
			pf.fd = fd;
			pf.events = POLLOUT;
			if (poll(&pf, 1, 2000) <= 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl))
				err = errno;
		}
		close(fd);
		if (!err)
			break;
	}
	freeaddrinfo(res);
	return err;
}

void
diagnose__connect(const struct s2s_device_config *cfg, enum s2s_err e,
		  const char *paho, char *out, size_t len)
{
	char host[256], port[16];
	bool tls = false;
	int gai = 0, err;
	const char *said = paho && paho[0] ? paho : s2s_strerror(e);

	if (e == S2S_ERR_DENIED) {
		snprintf(out, len, "%s refused this device's credentials (not "
			 "authorised): is the device revoked, or registered "
			 "with another key?", cfg->broker);
		return;
	}
	if (!split_uri(cfg->broker, &tls, host, sizeof(host), port,
		       sizeof(port))) {
		snprintf(out, len, "cannot connect to %s: %s (broker: expected "
			 "tcp://HOST:PORT or ssl://HOST:PORT)", cfg->broker,
			 said);
		return;
	}
	err = probe_tcp(host, port, &gai);
	if (gai) {
		snprintf(out, len, "cannot connect to %s: unknown host '%s' "
			 "(%s)", cfg->broker, host, gai_strerror(gai));
	} else if (err == ECONNREFUSED) {
		snprintf(out, len, "cannot connect to %s: connection refused "
			 "(nothing listens on %s port %s: wrong port, or the "
			 "broker is not running)", cfg->broker, host, port);
	} else if (err) {
		snprintf(out, len, "cannot connect to %s: %s", cfg->broker,
			 strerror(err));
	} else if (tls) {
		snprintf(out, len, "cannot connect to %s: TLS failed (%s): is "
			 "port %s a TLS listener, and is tls.ca_file (%s) the "
			 "CA of the broker's certificate?", cfg->broker, said,
			 port, cfg->tls_ca_file ? cfg->tls_ca_file
						: "not set: the system CAs");
	} else if (e == S2S_ERR_TIMEOUT) {
		snprintf(out, len, "cannot connect to %s: no MQTT answer in "
			 "time (%s port %s accepts TCP: is it a TLS listener? "
			 "then use ssl://)", cfg->broker, host, port);
	} else {
		snprintf(out, len, "cannot connect to %s: %s (%s port %s "
			 "accepts TCP but the MQTT handshake failed: a TLS "
			 "listener? then use ssl://)", cfg->broker, said, host,
			 port);
	}
}
