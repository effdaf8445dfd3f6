/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stats.c - counters, and their retained copies under $SYS/broker/s2s/:
 *   devices, pairs, sessions (established), sessions/pending,
 *   packages/accepted, packages/rejected (total) and
 *   packages/rejected/<reason> (s2s_errname of the cause, for the causes
 *   a package can have -- package_reason(); anything else is counted as
 *   "other", so no meaningless leaf like rejected/timeout appears),
 *   registrations/accepted, registrations/rejected,
 *   negotiations/established, negotiations/rejected.
 * Published from MOSQ_EVT_TICK at most every plugin_opt_stats_interval
 * seconds, and only when something changed.
 */
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

/*
 * The reasons the gate can give for dropping a package, each a leaf of
 * packages/rejected/.  The rest (timeout, mqtt, rejected, invalid
 * argument, ...) say nothing about a package and land in "other".
 */
static bool
package_reason(int i)
{
	switch (-i) {
	case S2S_ERR_NOMEM:
	case S2S_ERR_CRYPTO:
	case S2S_ERR_AUTH:
	case S2S_ERR_FORMAT:
	case S2S_ERR_TRUNCATED:
	case S2S_ERR_TOO_BIG:
	case S2S_ERR_VERSION:
	case S2S_ERR_PROFILE:
	case S2S_ERR_REPLAY:
	case S2S_ERR_GAP:
	case S2S_ERR_IMAGE:
	case S2S_ERR_STORE:
	case S2S_ERR_DENIED:
	case S2S_ERR_INCONSISTENT:
	case S2S_ERR_SESSION:
		return true;
	default:
		return false;
	}
}

void
cs_stats_reject(struct s2s_cs *cs, enum s2s_err err)
{
	int i = -(int)err;

	if (i <= 0 || i >= S2S_ERR_COUNT || !package_reason(i))
		i = 0;      /* "other": not a reason a package can have */
	cs->stats.rejected[i]++;
	cs->stats_dirty = true;
}

static void
pub(const char *leaf, long long v)
{
	char topic[128], val[32];
	int n;

	snprintf(topic, sizeof(topic), CS_SYS_PREFIX "%s", leaf);
	n = snprintf(val, sizeof(val), "%lld", v);
	mosquitto_broker_publish_copy(NULL, topic, n, val, 0, true, NULL);
}

void
cs_stats_tick(struct s2s_cs *cs, int64_t now_ms, bool force)
{
	const struct cs_stats *s = &cs->stats;
	uint64_t total = 0;
	char leaf[96];

	if (!force && (!cs->stats_dirty || now_ms < cs->next_stats_ms))
		return;
	cs->next_stats_ms = now_ms + 1000 * (int64_t)cs->opt.stats_interval;
	cs->stats_dirty = false;
	pub("devices", cs_store_device_count(cs));
	pub("pairs", cs_pair_count(cs));
	pub("sessions", cs_session_count(cs, true));
	pub("sessions/pending", cs_session_count(cs, false) -
	    cs_session_count(cs, true));
	pub("packages/accepted", (long long)s->accepted);
	for (int i = 0; i < S2S_ERR_COUNT; i++) {
		total += s->rejected[i];
		if (s->rejected[i] == 0 && !force)
			continue;
		if (i == 0 && s->rejected[0] == 0)
			continue;
		if (i != 0 && !package_reason(i))
			continue;
		snprintf(leaf, sizeof(leaf), "packages/rejected/%s",
			 i ? s2s_errname(-i) : "other");
		pub(leaf, (long long)s->rejected[i]);
	}
	pub("packages/rejected", (long long)total);
	pub("registrations/accepted", (long long)s->registered);
	pub("registrations/rejected", (long long)s->register_rejected);
	pub("negotiations/established", (long long)s->negotiated);
	pub("negotiations/rejected", (long long)s->negotiation_rejected);
	{
		struct cs_store_usage u;

		cs_store_usage(cs, &u);
		pub("store/packages", (long long)u.live_packages);
		pub("store/log_bytes", (long long)u.log_bytes);
		pub("store/db_bytes", (long long)u.db_bytes);
		pub("store/enrolments_pending", (long long)u.pending_enrolments);
		pub("fetch/paced", (long long)s->fetch_paced);
	}
	pub("bridged/in", (long long)s->bridged_in);
	pub("bridged/delivered", (long long)s->bridged_delivered);
	pub("bridged/routed", (long long)s->routed);
	cs_cluster_sys(cs, pub);
}
