/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cluster_conf.h - the mosquitto.conf fragment of one broker of an
 * N-broker s2s cluster (docs/CLUSTER.md, "Bridges"): its plugin options
 * (broker id, bridge peers, the bridges' password file) and one bridge to
 * every other broker.  Used by `s2s cluster-config`, the cluster demo and
 * tests/test_cluster.c, so that what is tested is what operators get.
 *
 * Broker X's bridge to Y publishes what X's plugin routes to Y (under
 * ROOT/route/Y/pair/# and ROOT/route/Y/inbox/#: messages for devices
 * connected to Y) to Y as ROOT/bridge/X/...; it logs in to Y as user
 * "s2s-bridge-X" with the shared password; only that user may write
 * ROOT/bridge/X/... on Y.  Every bridge goes "out" only and the receiving
 * plugin hands what arrives straight to one connected device, so nothing
 * is forwarded twice: full mesh, one hop, no loops.
 */
#ifndef S2S_TOOL_CLUSTER_CONF_H
#define S2S_TOOL_CLUSTER_CONF_H

#include <stddef.h>
#include <stdio.h>

#define CC_MAX_BROKERS 16

struct cc_broker {
	char id[49];            /* plugin_opt_broker_id, [A-Za-z0-9_.-] */
	char host[256];         /* where the other brokers reach it */
	int port;
};

/*
 * Parse "id=host:port,id=host:port,..." (2..CC_MAX_BROKERS).  Returns the
 * number of brokers, or -1 with a message in err.
 */
int cc_parse(const char *spec, struct cc_broker *b, size_t max, char *err,
	     size_t err_len);

/*
 * Write broker i's fragment to f: plugin_opt_broker_id, _bridge_users,
 * _bridge_secret (secret_file), then the bridges, whose remote_password
 * is secret (the file's content).  Goes after the broker's `plugin` line
 * (plugin_opt_* bind to the last plugin).  root: the topic root ("s2s").
 * 0 or -1 (write error).
 */
int cc_fragment(FILE *f, const struct cc_broker *b, size_t n, size_t i,
		const char *root, const char *secret_file, const char *secret);

/*
 * TLS between brokers: each bridge gets bridge_cafile (the CA that signed
 * the peers' listener certificates), bridge_certfile and bridge_keyfile
 * (this broker's client certificate, for listeners that require one).
 * "{id}" in a path is replaced with the broker's id (one certificate per
 * broker).  Any field may be NULL; all NULL: no TLS lines.  HOST:PORT of
 * each broker must then be its TLS listener.
 */
struct cc_tls {
	const char *cafile;
	const char *certfile;
	const char *keyfile;
};

/* cc_fragment with the bridges' TLS files (tls NULL: cc_fragment). */
int cc_fragment_tls(FILE *f, const struct cc_broker *b, size_t n, size_t i,
		    const char *root, const char *secret_file,
		    const char *secret, const struct cc_tls *tls);

#endif
