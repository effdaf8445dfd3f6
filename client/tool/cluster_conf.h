/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cluster_conf.h - the mosquitto.conf fragment of one broker of an
 * N-broker s2s cluster (docs/CLUSTER.md, "Bridges"): its plugin options
 * (broker id, bridge peers, the bridges' password file) and one bridge to
 * every other broker.  Used by `s2s cluster-config`, the cluster demo and
 * tests/test_cluster.c, so that what is tested is what operators get.
 *
 * Broker X's bridge to Y publishes what appears on X under ROOT/pair/#
 * and ROOT/inbox/# to Y as ROOT/bridge/X/...; it logs in to Y as user
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

#endif
