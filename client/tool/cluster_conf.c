/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cluster_conf.c - the bridges and plugin options of an N-broker cluster
 * (cluster_conf.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_conf.h"
#include "s2s/proto.h"

int
cc_parse(const char *spec, struct cc_broker *b, size_t max, char *err,
	 size_t n)
{
	size_t count = 0;
	const char *s = spec;

	while (s && *s) {
		size_t l = strcspn(s, ","), il, hl;
		const char *eq = memchr(s, '=', l), *colon;
		char *end;
		long port;

		if (count == max) {
			snprintf(err, n, "at most %zu brokers", max);
			return -1;
		}
		colon = NULL;
		for (const char *c = eq; c && c < s + l; c++)
			if (*c == ':')
				colon = c;      /* the last one (IPv6 hosts) */
		if (!eq || !colon) {
			snprintf(err, n, "'%.*s': expected id=host:port",
				 (int)l, s);
			return -1;
		}
		il = (size_t)(eq - s);
		hl = (size_t)(colon - eq - 1);
		if (il == 0 || il >= sizeof(b->id) || hl == 0 ||
		    hl >= sizeof(b->host)) {
			snprintf(err, n, "'%.*s': bad id or host", (int)l, s);
			return -1;
		}
		memcpy(b[count].id, s, il);
		b[count].id[il] = '\0';
		memcpy(b[count].host, eq + 1, hl);
		b[count].host[hl] = '\0';
		port = strtol(colon + 1, &end, 10);
		if (!s2s_id_valid(b[count].id) || end != s + l || port < 1 ||
		    port > 65535) {
			snprintf(err, n, "'%.*s': id of [A-Za-z0-9_.-], port "
				 "1..65535", (int)l, s);
			return -1;
		}
		b[count].port = (int)port;
		for (size_t k = 0; k < count; k++) {
			if (strcmp(b[k].id, b[count].id) == 0) {
				snprintf(err, n, "broker id '%s' twice",
					 b[k].id);
				return -1;
			}
		}
		count++;
		s += l;
		if (*s == ',')
			s++;
	}
	if (count < 2) {
		snprintf(err, n, "a cluster has at least 2 brokers");
		return -1;
	}
	return (int)count;
}

/* "key path" with every "{id}" replaced by id. */
static void
tls_line(FILE *f, const char *key, const char *path, const char *id)
{
	if (!path || !*path)
		return;
	fprintf(f, "%s ", key);
	for (const char *s = path; *s;) {
		if (strncmp(s, "{id}", 4) == 0) {
			fputs(id, f);
			s += 4;
		} else {
			fputc(*s++, f);
		}
	}
	fputc('\n', f);
}

int
cc_fragment(FILE *f, const struct cc_broker *b, size_t n, size_t i,
	    const char *root, const char *secret_file, const char *secret)
{
	return cc_fragment_tls(f, b, n, i, root, secret_file, secret, NULL);
}

int
cc_fragment_tls(FILE *f, const struct cc_broker *b, size_t n, size_t i,
		const char *root, const char *secret_file, const char *secret,
		const struct cc_tls *tls)
{
	const struct cc_broker *me = &b[i];
	bool first = true;

	fprintf(f, "# s2s cluster: broker '%s', %zu brokers (s2s "
		"cluster-config)\n", me->id, n);
	fprintf(f, "plugin_opt_broker_id %s\nplugin_opt_bridge_users ",
		me->id);
	for (size_t k = 0; k < n; k++) {
		if (k == i)
			continue;
		fprintf(f, "%s%s", first ? "" : ",", b[k].id);
		first = false;
	}
	fprintf(f, "\nplugin_opt_bridge_secret %s\n", secret_file);
	for (size_t k = 0; k < n; k++) {
		if (k == i)
			continue;
		fprintf(f, "\n# bridge %s -> %s: what the plugin routes to %s "
			"(%s/route/%s/pair/# and\n# .../inbox/#: messages for "
			"devices connected there) reaches it as %s/bridge/%s/..."
			"\n", me->id, b[k].id, b[k].id, root, b[k].id, root,
			me->id);
		fprintf(f, "connection s2s-%s-%s\n", me->id, b[k].id);
		fprintf(f, "address %s:%d\n", b[k].host, b[k].port);
		fprintf(f, "remote_clientid s2s-bridge-%s-%s\n", me->id,
			b[k].id);
		fprintf(f, "remote_username s2s-bridge-%s\n", me->id);
		fprintf(f, "remote_password %s\n", secret);
		fprintf(f, "bridge_protocol_version mqttv311\n"
			"try_private true\n"
			"cleansession true\n"
			"notifications false\n"
			"start_type automatic\n"
			"restart_timeout 1 10\n"
			"keepalive_interval 10\n"
			"bridge_attempt_unsubscribe false\n");
		if (tls) {
			tls_line(f, "bridge_cafile", tls->cafile, me->id);
			tls_line(f, "bridge_certfile", tls->certfile, me->id);
			tls_line(f, "bridge_keyfile", tls->keyfile, me->id);
		}
		/* only what the plugin routes to b[k] (ROOT/route/<k>/...) */
		fprintf(f, "topic pair/# out 1 %s/route/%s/ %s/bridge/%s/\n",
			root, b[k].id, root, me->id);
		fprintf(f, "topic inbox/# out 1 %s/route/%s/ %s/bridge/%s/\n",
			root, b[k].id, root, me->id);
	}
	return ferror(f) ? -1 : 0;
}
