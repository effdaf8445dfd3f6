/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_gate.c - the cost of the CS gate (run by `make bench`).
 *
 * 1. In process (the plugin's own code with stub broker functions):
 *    microseconds per verified package for s2s_package_open (with the
 *    per-session stego selection cached, as the gate does), for the store
 *    transaction alone, and for the whole gate (parse, checks, open, store).
 * 2. Through a real broker: packages per second from one publisher (QoS 1,
 *    pipelined) to one subscriber, through mosquitto with the plugin (the
 *    gate verifies and stores every package) and through the same broker
 *    without the plugin, on the same payloads, alternating, in the same
 *    run.  Medians of the rounds and their ratio.
 *
 * Usage: bench_gate [-n packages-per-round] [-r rounds] [-l png-level]
 *                   [-m message-bytes]
 * Needs S2S_PLUGIN (meson sets it in `meson test --benchmark`; `make bench`
 * passes it) for part 2; part 1 always runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "broker_harness.h"
#include "mqtt_testclient.h"
#include "plugin.h"
#include "plugin_testlib.h"
#include "s2s/package.h"
#include "s2s/secmem.h"
#include "stubs/mosquitto_stubs.h"

static int n_per_round = 2000, rounds = 5, png_level = 0, msg_bytes = 32;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
fail(const char *what)
{
	fprintf(stderr, "bench_gate: %s\n", what);
	exit(1);
}

static char *
message(void)
{
	char *m = malloc((size_t)msg_bytes + 1);

	if (!m)
		fail("oom");
	for (int i = 0; i < msg_bytes; i++)
		m[i] = (char)('a' + i % 26);
	m[msg_bytes] = 0;
	return m;
}

/* Seal count packages on d's tx chain (with a selection cache). */
static uint8_t **
seal_many(struct td_dev *d, int count, size_t **lens)
{
	struct s2s_package_cache cache;
	uint8_t **p = calloc((size_t)count, sizeof(*p));
	char *msg = message();

	*lens = calloc((size_t)count, sizeof(**lens));
	if (!p || !*lens)
		fail("oom");
	memset(&cache, 0, sizeof(cache));
	for (int i = 0; i < count; i++)
		if (s2s_package_seal_cached(&d->tx, &cache, d->id, d->peer,
					    (const uint8_t *)msg, strlen(msg),
					    &d->cover, png_level, &p[i],
					    &(*lens)[i], NULL) != S2S_OK)
			fail("seal");
	s2s_package_cache_clear(&cache);
	free(msg);
	return p;
}

static void
free_many(uint8_t **p, size_t *lens, int count)
{
	for (int i = 0; i < count; i++)
		free(p[i]);
	free(p);
	free(lens);
}

/* ---- part 1: in process ------------------------------------------------ */

static bool
inbox(struct td_dev *d, struct s2s_msg *m)
{
	struct stub_pub p;
	char topic[128];
	bool ok;

	snprintf(topic, sizeof(topic), "s2s/inbox/%s", d->id);
	if (!stub_pub_take(topic, &p))
		return false;
	ok = td_decode(d, p.payload, p.len, m) == S2S_OK;
	stub_pub_free(&p);
	return ok;
}

static void
take(struct td_dev *d, enum s2s_msg_type type, struct s2s_msg *m)
{
	if (!inbox(d, m) || m->type != type) {
		fprintf(stderr, "%s: expected %s, got %s %s\n", d->id,
			s2s_msg_type_name(type), s2s_msg_type_name(m->type),
			m->reason);
		exit(1);
	}
}

static void
feed(struct s2s_cs *cs, struct td_dev *d, enum s2s_err rc, uint8_t *buf,
     size_t n)
{
	if (rc != S2S_OK)
		fail("encode");
	cs_on_request(cs, d->id, buf, n);
	free(buf);
}

static struct cs_pair *
establish_local(struct s2s_cs *cs, struct td_dev *a, struct td_dev *b)
{
	struct td_dev *d[2] = { a, b };
	struct s2s_msg m;
	uint8_t *buf;
	size_t n;
	enum s2s_err rc;

	for (int i = 0; i < 2; i++) {
		if (td_register(d[i], cs->cs_key, NULL, 1, &buf, &n) != S2S_OK)
			fail("register");
		cs_on_register(cs, d[i]->id, buf, n);
		free(buf);
		take(d[i], S2S_MSG_REGISTERED, &m);
		s2s_msg_clear(&m);
	}
	rc = td_pair(a, b->id, 0, 1, &buf, &n);
	feed(cs, a, rc, buf, n);
	take(a, S2S_MSG_PAIRED, &m);
	s2s_msg_clear(&m);
	rc = td_pair(b, a->id, 0, 1, &buf, &n);
	feed(cs, b, rc, buf, n);
	take(a, S2S_MSG_PAIRED, &m);
	td_take_paired(a, &m);
	s2s_msg_clear(&m);
	take(b, S2S_MSG_PAIRED, &m);
	td_take_paired(b, &m);
	s2s_msg_clear(&m);
	rc = td_session(a, b->id, 1, &buf, &n);
	feed(cs, a, rc, buf, n);
	take(a, S2S_MSG_NEG_KEYS, &m);
	td_take_keys(a, &m);
	s2s_msg_clear(&m);
	take(b, S2S_MSG_NEG_KEYS, &m);
	td_take_keys(b, &m);
	s2s_msg_clear(&m);
	rc = td_neg_sds(a, cs->cs_key, TD_OK, 1, &buf, &n);
	feed(cs, a, rc, buf, n);
	take(b, S2S_MSG_NEG_FWD, &m);
	s2s_msg_clear(&m);
	rc = td_neg_sdr(b, cs->cs_key, true, TD_OK, 1, &buf, &n);
	feed(cs, b, rc, buf, n);
	take(a, S2S_MSG_NEG_DONE, &m);
	s2s_msg_clear(&m);
	td_chains(a);
	td_chains(b);
	return cs->pairs;
}

static void
bench_local(void)
{
	char dir[] = "/tmp/s2s-bench-XXXXXX", store[128], key[128], cmd[200];
	struct mosquitto_opt o[3];
	struct s2s_cs *cs;
	struct td_dev a, b;
	struct cs_pair *p;
	struct cs_topic t;
	struct s2s_package pkg;
	struct s2s_chain c;
	struct s2s_package_cache cache;
	uint8_t **pk;
	size_t *len, total = 0;
	char err[256];
	const int batch = 100, count = n_per_round;
	int samples = count / batch;
	double *open_us, *store_us, *gate_us, t0;

	if (!mkdtemp(dir))
		fail("mkdtemp");
	snprintf(store, sizeof(store), "%s/s2s.db", dir);
	snprintf(key, sizeof(key), "%s/cs.key", dir);
	o[0] = (struct mosquitto_opt){ "store", store };
	o[1] = (struct mosquitto_opt){ "cs_key", key };
	o[2] = (struct mosquitto_opt){ "enrollment", "open" };
	if (cs_create(o, 3, &cs, err, sizeof(err)) != S2S_OK)
		fail(err);
	td_init(&a, "alice", 1);
	td_init(&b, "bob", 2);
	p = establish_local(cs, &a, &b);
	pk = seal_many(&a, count, &len);
	for (int i = 0; i < count; i++)
		total += len[i];
	open_us = calloc((size_t)samples, sizeof(double));
	store_us = calloc((size_t)samples, sizeof(double));
	gate_us = calloc((size_t)samples, sizeof(double));
	if (!open_us || !store_us || !gate_us)
		fail("oom");

	/* open alone, on a copy of the CS chain */
	c = p->sess->chain[0];
	memset(&cache, 0, sizeof(cache));
	for (int s = 0; s < samples; s++) {
		t0 = now_us();
		for (int i = s * batch; i < (s + 1) * batch; i++)
			if (s2s_package_parse(pk[i], len[i], &cs->limits,
					      &pkg) != S2S_OK ||
			    s2s_package_open_cached(&c, &cache, &pkg,
						    &cs->limits, NULL) !=
			    S2S_OK)
				fail("open");
		open_us[s] = (now_us() - t0) / batch;
	}
	s2s_package_cache_clear(&cache);
	s2s_chain_wipe(&c);
	/* the whole gate: parse, checks, open, store transaction */
	snprintf(cmd, sizeof(cmd), "s2s/pair/%s/alice", p->id);
	cs_topic_parse("s2s", cmd, &t);
	for (int s = 0; s < samples; s++) {
		t0 = now_us();
		for (int i = s * batch; i < (s + 1) * batch; i++)
			if (cs_gate(cs, "alice", &t, pk[i], len[i]) != S2S_OK)
				fail("gate");
		gate_us[s] = (now_us() - t0) / batch;
	}
	/* the store transaction alone (same chain advanced again) */
	c = p->sess->chain[0];
	for (int s = 0; s < samples; s++) {
		t0 = now_us();
		for (int i = s * batch; i < (s + 1) * batch; i++) {
			c.next_seq++;
			if (cs_store_accept(cs, p, 0, &c, pk[i], len[i]) !=
			    S2S_OK)
				fail("store");
		}
		store_us[s] = (now_us() - t0) / batch;
	}
	s2s_chain_wipe(&c);
	printf("gate, in process (%d packages, %zu bytes each on average, "
	       "PNG level %d, %s profile)\n", count, total / (size_t)count,
	       png_level, s2s_profile_name(p->profile));
	printf("  %-44s %9.1f us\n", "s2s_package_open (parse + open, cached)",
	       median(open_us, samples));
	printf("  %-44s %9.1f us\n", "store transaction (package + chain)",
	       median(store_us, samples));
	printf("  %-44s %9.1f us\n", "store append per package",
	       median(store_us, samples));
	printf("  %-44s %9.1f us\n", "whole gate per verified package",
	       median(gate_us, samples));
	free(open_us);
	free(store_us);
	free(gate_us);
	free_many(pk, len, count);
	td_free(&a);
	td_free(&b);
	cs_destroy(cs);
	stub_pub_reset();
	stub_log_reset();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* ---- part 2: through the broker ----------------------------------------- */

struct peer {
	volatile int connack;       /* -1 until CONNACK */
	volatile int subscribed;
	volatile int got;
	volatile double last_us;
};

struct who {
	const char *id, *user, *pass;
};

static void
on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	((struct peer *)obj)->connack = rc;
}

static void
on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *q)
{
	(void)m;
	(void)mid;
	(void)n;
	(void)q;
	((struct peer *)obj)->subscribed = 1;
}

static void
on_msg(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct peer *s = obj;

	(void)m;
	(void)msg;
	s->got++;
	s->last_us = now_us();
}

static void
wait_for(volatile int *flag, int want_nonneg, const char *what)
{
	double end = now_us() + 10e6;

	while (now_us() < end) {
		if (want_nonneg ? *flag >= 0 : *flag != 0)
			return;
		usleep(1000);
	}
	fail(what);
}

static struct mosquitto *
open_conn(int port, const struct who *w, struct peer *obj)
{
	struct mosquitto *m = mosquitto_new(w->id, true, obj);

	if (!m)
		fail("mosquitto_new");
	obj->connack = -1;
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_max_inflight_messages_set(m, 100);
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_message_callback_set(m, on_msg);
	if (w->user)
		mosquitto_username_pw_set(m, w->user, w->pass);
	if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS ||
	    mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS)
		fail("connect");
	wait_for(&obj->connack, 1, "CONNACK");
	if (obj->connack != 0)
		fail("connection refused");
	return m;
}

static void
close_conn(struct mosquitto *m)
{
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
}

/* Packages per second from pub to sub on topic (QoS 1, pipelined). */
static double
rate(int port, const struct who *pub, const struct who *sub,
     const char *topic, uint8_t **pk, size_t *len, int count)
{
	struct peer ps, ss;
	struct mosquitto *p, *s;
	double t0, end;

	memset(&ps, 0, sizeof(ps));
	memset(&ss, 0, sizeof(ss));
	s = open_conn(port, sub, &ss);
	p = open_conn(port, pub, &ps);
	if (mosquitto_subscribe(s, NULL, topic, 1) != MOSQ_ERR_SUCCESS)
		fail("subscribe");
	wait_for(&ss.subscribed, 0, "SUBACK");
	t0 = now_us();
	for (int i = 0; i < count; i++)
		if (mosquitto_publish(p, NULL, topic, (int)len[i], pk[i], 1,
				      false) != MOSQ_ERR_SUCCESS)
			fail("publish");
	end = now_us() + 120e6;
	while (ss.got < count && now_us() < end)
		usleep(200);
	if (ss.got < count) {
		fprintf(stderr, "bench_gate: only %d of %d delivered\n", ss.got,
			count);
		exit(1);
	}
	close_conn(p);
	close_conn(s);
	return count / ((ss.last_us - t0) / 1e6);
}

static void
expect_msg(struct tc *c, struct td_dev *d, enum s2s_msg_type type,
	   struct s2s_msg *m)
{
	char topic[128];
	struct tc_msg t;

	snprintf(topic, sizeof(topic), "s2s/inbox/%s", d->id);
	if (!tc_wait(c, topic, TC_TIMEOUT_MS, &t) ||
	    td_decode(d, t.payload, t.len, m) != S2S_OK || m->type != type) {
		fprintf(stderr, "%s: no %s\n", d->id, s2s_msg_type_name(type));
		exit(1);
	}
	tc_msg_free(&t);
}

static struct tc *
mqtt_device(int port, struct td_dev *d, const struct s2s_key *cs)
{
	struct tc *c;
	char topic[128], tok[S2S_TOKEN_MAX];
	uint8_t *buf;
	size_t n;
	struct s2s_msg m;

	snprintf(topic, sizeof(topic), "s2s/inbox/%s", d->id);
	if (tc_connect(&c, port, d->id, NULL, NULL, 5) != 0 ||
	    tc_subscribe(c, topic, 1) != 1 ||
	    td_register(d, cs, NULL, 1, &buf, &n) != S2S_OK ||
	    tc_publish(c, "s2s/cs/register", buf, n, 1, false) != 0)
		fail("register");
	free(buf);
	expect_msg(c, d, S2S_MSG_REGISTERED, &m);
	s2s_msg_clear(&m);
	tc_close(c);
	if (s2s_token_make(d->key, d->id, (uint64_t)time(NULL) + 300, tok) !=
	    S2S_OK || tc_connect(&c, port, d->id, d->id, tok, 5) != 0 ||
	    tc_subscribe(c, topic, 1) != 1)
		fail("device connect");
	return c;
}

static void
mqtt_req(struct tc *c, struct td_dev *d, enum s2s_err rc, uint8_t *buf,
	 size_t n)
{
	char topic[128];

	snprintf(topic, sizeof(topic), "s2s/req/%s", d->id);
	if (rc != S2S_OK || tc_publish(c, topic, buf, n, 1, false) != 0)
		fail("request");
	free(buf);
}

static void
establish_mqtt(int port, const struct s2s_key *cs, struct td_dev *a,
	       struct td_dev *b)
{
	struct tc *ca = mqtt_device(port, a, cs), *cb = mqtt_device(port, b, cs);
	struct s2s_msg m;
	uint8_t *buf = NULL;
	size_t n = 0;
	enum s2s_err rc;

	rc = td_pair(a, b->id, 0, 1, &buf, &n);
	mqtt_req(ca, a, rc, buf, n);
	expect_msg(ca, a, S2S_MSG_PAIRED, &m);
	s2s_msg_clear(&m);
	rc = td_pair(b, a->id, 0, 1, &buf, &n);
	mqtt_req(cb, b, rc, buf, n);
	expect_msg(ca, a, S2S_MSG_PAIRED, &m);
	td_take_paired(a, &m);
	s2s_msg_clear(&m);
	expect_msg(cb, b, S2S_MSG_PAIRED, &m);
	td_take_paired(b, &m);
	s2s_msg_clear(&m);
	rc = td_session(a, b->id, 1, &buf, &n);
	mqtt_req(ca, a, rc, buf, n);
	expect_msg(ca, a, S2S_MSG_NEG_KEYS, &m);
	td_take_keys(a, &m);
	s2s_msg_clear(&m);
	expect_msg(cb, b, S2S_MSG_NEG_KEYS, &m);
	td_take_keys(b, &m);
	s2s_msg_clear(&m);
	rc = td_neg_sds(a, cs, TD_OK, 1, &buf, &n);
	mqtt_req(ca, a, rc, buf, n);
	expect_msg(cb, b, S2S_MSG_NEG_FWD, &m);
	s2s_msg_clear(&m);
	rc = td_neg_sdr(b, cs, true, TD_OK, 1, &buf, &n);
	mqtt_req(cb, b, rc, buf, n);
	expect_msg(ca, a, S2S_MSG_NEG_DONE, &m);
	s2s_msg_clear(&m);
	td_chains(a);
	td_chains(b);
	tc_close(ca);
	tc_close(cb);
}

static void
bench_broker(void)
{
	static const char *const opts[] = { "enrollment", "open", NULL };
	struct bh_broker *gate = NULL, *plain = NULL;
	struct s2s_key *cs = NULL;
	struct td_dev a, b;
	uint8_t **pk;
	size_t *len;
	char topic[256], tok_a[S2S_TOKEN_MAX], tok_b[S2S_TOKEN_MAX];
	double *r_plain, *r_gate, mp, mg, *c_plain, *c_gate, c0;
	int total = n_per_round * rounds;

	if (!bh_plugin_path()) {
		printf("through the broker: skipped (S2S_PLUGIN unset)\n");
		return;
	}
	if (bh_start(&gate, &(struct bh_options){
		.default_log = true, .plugin = bh_plugin_path(),
						  .plugin_opts = opts }) != 0 ||
	    bh_start(&plain, &(struct bh_options){
		.default_log = true, .plugin = NULL }) != 0)
		fail("broker start");
	if (s2s_key_load_public(bh_path(gate, "cs.pub"), &cs) != S2S_OK)
		fail("cs.pub");
	td_init(&a, "alice", 1);
	td_init(&b, "bob", 2);
	establish_mqtt(bh_port(gate), cs, &a, &b);
	pk = seal_many(&a, total, &len);
	snprintf(topic, sizeof(topic), "s2s/pair/%s/alice", a.pair);
	if (s2s_token_make(a.key, "alice", (uint64_t)time(NULL) + 300,
			   tok_a) != S2S_OK ||
	    s2s_token_make(b.key, "bob", (uint64_t)time(NULL) + 300,
			   tok_b) != S2S_OK)
		fail("token");
	r_plain = calloc((size_t)rounds, sizeof(double));
	r_gate = calloc((size_t)rounds, sizeof(double));
	c_plain = calloc((size_t)rounds, sizeof(double));
	c_gate = calloc((size_t)rounds, sizeof(double));
	if (!r_plain || !r_gate || !c_plain || !c_gate)
		fail("oom");
	for (int r = 0; r < rounds; r++) {
		struct who pa = { "alice", NULL, NULL }, pb = { "bob", NULL,
								NULL };
		struct who ga = { "alice", "alice", tok_a },
			   gb = { "bob", "bob", tok_b };
		uint8_t **slice = pk + (size_t)r * (size_t)n_per_round;
		size_t *lslice = len + (size_t)r * (size_t)n_per_round;

		/* Tokens are single-use (connect protocol v2): new ones for
		 * every round's connections. */
		if (s2s_token_make(a.key, "alice", (uint64_t)time(NULL) + 300,
				   tok_a) != S2S_OK ||
		    s2s_token_make(b.key, "bob", (uint64_t)time(NULL) + 300,
				   tok_b) != S2S_OK)
			fail("token");

		c0 = bh_main_thread_cpu_us(bh_pid(plain));
		r_plain[r] = rate(bh_port(plain), &pa, &pb, topic, slice,
				  lslice, n_per_round);
		c_plain[r] = (bh_main_thread_cpu_us(bh_pid(plain)) - c0) /
			     n_per_round;
		c0 = bh_main_thread_cpu_us(bh_pid(gate));
		r_gate[r] = rate(bh_port(gate), &ga, &gb, topic, slice, lslice,
				 n_per_round);
		c_gate[r] = (bh_main_thread_cpu_us(bh_pid(gate)) - c0) /
			    n_per_round;
	}
	mp = median(r_plain, rounds);
	mg = median(r_gate, rounds);
	printf("through the broker (%d rounds of %d packages, QoS 1, "
	       "pipelined, one publisher, one subscriber)\n", rounds,
	       n_per_round);
	printf("  %-44s %9.0f packages/s\n", "plain mosquitto 2.0 (no plugin)",
	       mp);
	printf("  %-44s %9.0f packages/s\n", "mosquitto + s2s gate", mg);
	printf("  %-44s %9.2f\n", "ratio gate / plain", mg / mp);
	printf("broker main thread CPU per package (connect, deliver, "
	       "disconnect)\n");
	mp = median(c_plain, rounds);
	mg = median(c_gate, rounds);
	printf("  %-44s %9.1f us\n", "plain mosquitto 2.0", mp);
	printf("  %-44s %9.1f us\n", "mosquitto + s2s gate", mg);
	printf("  %-44s %9.1f us\n", "gate cost on the broker thread", mg - mp);
	free(r_plain);
	free(r_gate);
	free(c_plain);
	free(c_gate);
	free_many(pk, len, total);
	td_free(&a);
	td_free(&b);
	s2s_key_destroy(cs);
	bh_destroy(gate);
	bh_destroy(plain);
}

int
main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "n:r:l:m:")) != -1) {
		switch (opt) {
		case 'n':
			n_per_round = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'l':
			png_level = atoi(optarg);
			break;
		case 'm':
			msg_bytes = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_gate [-n packages] "
				"[-r rounds] [-l png-level] [-m msg-bytes]\n");
			return 2;
		}
	}
	if (n_per_round < 100 || rounds < 1 || png_level < 0 ||
	    png_level > 9 || msg_bytes < 1 || msg_bytes > 100000) {
		fprintf(stderr, "bench_gate: bad arguments\n");
		return 2;
	}
	mosquitto_lib_init();
	bench_local();
	bench_broker();
	mosquitto_lib_cleanup();
	s2s_crypto_shutdown();
	return 0;
}
