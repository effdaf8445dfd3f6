/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_plugin_broker.c - integration tests: a real /usr/sbin/mosquitto
 * with mosquitto_s2s.so, started by each test on a free 127.0.0.1 port
 * (tests/broker_harness.h), and test devices speaking the protocol over
 * MQTT v5 (tests/mqtt_testclient.h + tests/plugin_testlib.h).
 *
 * Skipped (exit 77) when S2S_PLUGIN is unset or the broker is missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "broker_harness.h"
#include "check_main.h"
#include "json.h"
#include "mqtt_testclient.h"
#include "plugin_testlib.h"
#include "s2s/package.h"
#include "s2s/secmem.h"

#define NOT_AUTHORIZED 135
#define QUIET_MS 400

static struct bh_broker *broker;

static void
start(const char *const *opts)
{
	int rc = bh_start(&broker, &(struct bh_options){
		.plugin = bh_plugin_path(), .plugin_opts = opts });

	ck_assert_msg(rc == 0, "broker did not start");
}

static void
teardown(void)
{
	bh_destroy(broker);
	broker = NULL;
}

static struct s2s_key *
cs_key(void)
{
	struct s2s_key *k = NULL;

	ck_assert_int_eq(s2s_key_load_public(bh_path(broker, "cs.pub"), &k),
			 S2S_OK);
	return k;
}

static void
inbox_topic(const struct td_dev *d, char *buf, size_t n)
{
	snprintf(buf, n, "s2s/inbox/%s", d->id);
}

/* Next message in d's inbox, decoded; false on timeout. */
static bool
inbox(struct tc *c, struct td_dev *d, struct s2s_msg *m, int timeout_ms)
{
	char topic[128];
	struct tc_msg t;
	enum s2s_err rc;

	inbox_topic(d, topic, sizeof(topic));
	if (!tc_wait(c, topic, timeout_ms, &t))
		return false;
	rc = td_decode(d, t.payload, t.len, m);
	ck_assert_msg(rc == S2S_OK, "decode: %s", s2s_strerror(rc));
	tc_msg_free(&t);
	return true;
}

static void
expect(struct tc *c, struct td_dev *d, enum s2s_msg_type type,
       struct s2s_msg *m)
{
	ck_assert_msg(inbox(c, d, m, TC_TIMEOUT_MS), "%s: no %s", d->id,
		      s2s_msg_type_name(type));
	ck_assert_msg(m->type == type, "%s: got %s (%s %s), want %s", d->id,
		      s2s_msg_type_name(m->type), s2s_errname(m->code),
		      m->reason, s2s_msg_type_name(type));
}

static void
expect_reject(struct tc *c, struct td_dev *d, enum s2s_err code)
{
	struct s2s_msg m;

	expect(c, d, S2S_MSG_REJECT, &m);
	ck_assert_msg(m.code == code, "%s: REJECT %s, want %s (%s)", d->id,
		      s2s_errname(m.code), s2s_errname(code), m.reason);
	s2s_msg_clear(&m);
}

/* Anonymous connection as an enrolling device, inbox subscribed. */
static struct tc *
enrolling(struct td_dev *d)
{
	struct tc *c;
	char topic[128];

	ck_assert_int_eq(tc_connect(&c, bh_port(broker), d->id, NULL, NULL, 5),
			 0);
	inbox_topic(d, topic, sizeof(topic));
	ck_assert_int_eq(tc_subscribe(c, topic, 1), 1);
	return c;
}

/* Register d (code may be NULL); expect REGISTERED or REJECT want. */
static void
do_register(struct td_dev *d, const char *code, enum s2s_err want)
{
	struct s2s_key *k = cs_key();
	struct tc *c = enrolling(d);
	uint8_t *buf;
	size_t n;
	struct s2s_msg m;

	ck_assert_int_eq(td_register(d, k, code, 5, &buf, &n), S2S_OK);
	ck_assert_int_eq(tc_publish(c, "s2s/cs/register", buf, n, 1, false), 0);
	free(buf);
	if (want == S2S_OK) {
		expect(c, d, S2S_MSG_REGISTERED, &m);
		ck_assert_uint_eq(m.req_id, 5);
		s2s_msg_clear(&m);
	} else {
		expect_reject(c, d, want);
	}
	tc_close(c);
	s2s_key_destroy(k);
}

static int
token_connect(struct tc **c, struct td_dev *d, const struct s2s_key *key,
	      int64_t ttl)
{
	char tok[S2S_TOKEN_MAX];

	ck_assert_int_eq(s2s_token_make(key, d->id, (uint64_t)(time(NULL) +
							       ttl), tok),
			 S2S_OK);
	return tc_connect(c, bh_port(broker), d->id, d->id, tok, 5);
}

static struct tc *
device(struct td_dev *d)
{
	struct tc *c;
	char topic[128];
	int rc = token_connect(&c, d, d->key, 300);

	ck_assert_msg(rc == 0, "%s: CONNACK %d", d->id, rc);
	inbox_topic(d, topic, sizeof(topic));
	ck_assert_int_eq(tc_subscribe(c, topic, 1), 1);
	return c;
}

/* Publish what rc's call encoded into *buf, *n on ROOT/req/<id>. */
static void
request(struct tc *c, struct td_dev *d, enum s2s_err rc, uint8_t **buf,
	size_t *n)
{
	char topic[128];

	ck_assert_int_eq(rc, S2S_OK);
	snprintf(topic, sizeof(topic), "s2s/req/%s", d->id);
	ck_assert_int_eq(tc_publish(c, topic, *buf, *n, 1, false), 0);
	free(*buf);
	*buf = NULL;
}

static void
pair_and_keys(struct tc *ca, struct td_dev *a, struct tc *cb,
	      struct td_dev *b, int profile)
{
	uint8_t *buf;
	size_t n;
	struct s2s_msg m;

	request(ca, a, td_pair(a, b->id, profile, 1, &buf, &n), &buf, &n);
	expect(ca, a, S2S_MSG_PAIRED, &m);
	ck_assert_int_eq(m.status, 1);
	s2s_msg_clear(&m);
	request(cb, b, td_pair(b, a->id, profile, 2, &buf, &n), &buf, &n);
	expect(ca, a, S2S_MSG_PAIRED, &m);
	ck_assert_int_eq(m.status, 0);
	td_take_paired(a, &m);
	s2s_msg_clear(&m);
	expect(cb, b, S2S_MSG_PAIRED, &m);
	td_take_paired(b, &m);
	s2s_msg_clear(&m);
	request(ca, a, td_session(a, b->id, 3, &buf, &n), &buf, &n);
	expect(ca, a, S2S_MSG_NEG_KEYS, &m);
	td_take_keys(a, &m);
	s2s_msg_clear(&m);
	expect(cb, b, S2S_MSG_NEG_KEYS, &m);
	td_take_keys(b, &m);
	s2s_msg_clear(&m);
}

static void
negotiate(struct tc *ca, struct td_dev *a, struct tc *cb, struct td_dev *b,
	  const struct s2s_key *k)
{
	uint8_t *buf;
	size_t n;
	struct s2s_msg m;

	request(ca, a, td_neg_sds(a, k, TD_OK, 4, &buf, &n), &buf, &n);
	expect(cb, b, S2S_MSG_NEG_FWD, &m);
	ck_assert(td_check_step(b, &m, a->sk, a->sk_len));
	s2s_msg_clear(&m);
	request(cb, b, td_neg_sdr(b, k, true, TD_OK, 5, &buf, &n), &buf, &n);
	expect(ca, a, S2S_MSG_NEG_DONE, &m);
	ck_assert(td_check_step(a, &m, b->sk, b->sk_len));
	s2s_msg_clear(&m);
	td_chains(a);
	td_chains(b);
}

/* alice and bob registered, connected, paired, session established. */
static void
establish(struct td_dev *a, struct tc **ca, struct td_dev *b,
	  struct tc **cb, int profile)
{
	struct s2s_key *k = cs_key();

	td_init(a, "alice", 1);
	td_init(b, "bob", 2);
	do_register(a, NULL, S2S_OK);
	do_register(b, NULL, S2S_OK);
	*ca = device(a);
	*cb = device(b);
	pair_and_keys(*ca, a, *cb, b, profile);
	negotiate(*ca, a, *cb, b, k);
	s2s_key_destroy(k);
}

static const char *const OPEN[] = { "enrollment", "open",
				    "stats_interval", "1", NULL };

/* The receiver gets and opens one package from sender. */
static void
receive_one(struct tc *c, struct td_dev *rx, struct td_dev *tx)
{
	char topic[256];
	struct tc_msg t;
	struct s2s_package p;

	td_pair_topic(tx, "s2s", topic, sizeof(topic));
	ck_assert_msg(tc_wait(c, topic, TC_TIMEOUT_MS, &t), "no package");
	ck_assert_int_eq(s2s_package_parse(t.payload, t.len, NULL, &p), S2S_OK);
	ck_assert_int_eq(s2s_package_open(&rx->rx, &p, NULL, NULL), S2S_OK);
	tc_msg_free(&t);
}

/* A package that must be refused: the device chain does not move. */
static enum s2s_err
seal_scratch(struct td_dev *d, const char *msg, uint64_t session_xor,
	     uint8_t **buf, size_t *n)
{
	struct s2s_chain save = d->tx;
	enum s2s_err rc;

	d->tx.session ^= session_xor;
	rc = td_seal(d, msg, buf, n);
	d->tx = save;
	return rc;
}

static int
send_pkg(struct tc *c, struct td_dev *d, const uint8_t *buf, size_t n)
{
	char topic[256];

	td_pair_topic(d, "s2s", topic, sizeof(topic));
	return tc_publish(c, topic, buf, n, 1, false);
}

/* Wait for $SYS/broker/s2s/<leaf> to read want (stats every second). */
static void
expect_stat(struct tc *c, const char *leaf, const char *want)
{
	char topic[128];
	struct tc_msg t;
	time_t end = time(NULL) + 60;   /* a bound for a loaded machine */

	snprintf(topic, sizeof(topic), "$SYS/broker/s2s/%s", leaf);
	while (time(NULL) <= end) {
		if (!tc_wait(c, topic, 1000, &t))
			continue;
		if (strcmp((char *)t.payload, want) == 0) {
			tc_msg_free(&t);
			return;
		}
		tc_msg_free(&t);
	}
	ck_abort_msg("%s never read %s", topic, want);
}

/*
 * $SYS names only the reasons a package can be refused for: the retained
 * leaves published at start include auth, replay, too_big, and none of
 * the meaningless ones (timeout, mqtt, rejected, ...).
 */
START_TEST(test_sys_reject_reasons)
{
	static const char *const opts[] = { "enrollment", "open",
					    "stats_interval", "1", NULL };
	static const char *const want[] = { "auth", "replay", "gap",
					    "too_big", "format", "session",
					    "denied", NULL };
	static const char *const never[] = { "timeout", "mqtt", "rejected",
					     "inval", "io", "config",
					     "state", "not_found", "ok",
					     "cover", "no_ink", "perm", NULL };
	char seen[40][64];
	int nseen = 0;
	struct tc *obs;
	struct tc_msg t;
	const char *prefix = "$SYS/broker/s2s/packages/rejected/";

	start(opts);
	ck_assert_int_eq(tc_connect(&obs, bh_port(broker), "observer", NULL,
				    NULL, 5), 0);
	ck_assert_int_eq(tc_subscribe(obs, "$SYS/broker/s2s/packages/"
				      "rejected/+", 0), 0);
	/* the retained leaves come at once; then 1.5 s of quiet ends it */
	while (nseen < 40 &&
	       tc_wait(obs, NULL, nseen ? 1500 : TC_TIMEOUT_MS, &t)) {
		ck_assert(strncmp(t.topic, prefix, strlen(prefix)) == 0);
		snprintf(seen[nseen++], sizeof(seen[0]), "%s",
			 t.topic + strlen(prefix));
		tc_msg_free(&t);
	}
	for (const char *const *w = want; *w; w++) {
		bool found = false;

		for (int i = 0; i < nseen; i++)
			found = found || strcmp(seen[i], *w) == 0;
		ck_assert_msg(found, "no $SYS leaf rejected/%s", *w);
	}
	for (int i = 0; i < nseen; i++)
		for (const char *const *n = never; *n; n++)
			ck_assert_msg(strcmp(seen[i], *n) != 0,
				      "meaningless $SYS leaf rejected/%s", *n);
	tc_close(obs);
}
END_TEST

/*
 * A plugin the broker user cannot reach (a checkout under /root, mode
 * 0700): the broker still starts, since the launcher loads a copy (issue
 * 12: make test failed in a clone under a private home).
 */
START_TEST(test_plugin_out_of_reach)
{
	static const char *const opts[] = { "enrollment", "open", NULL };
	char dir[] = "/tmp/s2s-private-XXXXXX", so[128], cmd[300];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0700), 0);
	snprintf(so, sizeof(so), "%s/mosquitto_s2s.so", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", bh_plugin_path(), so);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(bh_start(&broker, &(struct bh_options){
		.plugin = so, .plugin_opts = opts }), 0);
	ck_assert(bh_log_contains(broker, "cloud server"));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_flow_and_gate)
{
	static const char *const opts[] = { "enrollment", "open",
					    "stats_interval", "1",
					    "max_package", "100000", NULL };
	struct td_dev a, b;
	struct tc *ca, *cb, *obs;
	uint8_t *buf, *first;
	size_t n, first_n;
	char topic[256];
	struct s2s_msg m;
	int profile = _i ? S2S_PROFILE_PAPER : S2S_PROFILE_HARDENED;

	start(opts);
	establish(&a, &ca, &b, &cb, profile);
	ck_assert_int_eq(a.profile, profile);
	snprintf(topic, sizeof(topic), "s2s/pair/%s/+", a.pair);
	ck_assert_int_eq(tc_subscribe(cb, topic, 1), 1);
	ck_assert_int_eq(tc_subscribe(ca, topic, 1), 1);
	ck_assert_int_eq(tc_connect(&obs, bh_port(broker), "observer", NULL,
				    NULL, 5), 0);
	ck_assert_int_eq(tc_subscribe(obs, "$SYS/broker/s2s/#", 0), 0);

	/* Accepted packages reach the receiver, in both directions. */
	ck_assert_int_eq(td_seal(&a, "one", &first, &first_n), S2S_OK);
	ck_assert_int_eq(send_pkg(ca, &a, first, first_n), 0);
	receive_one(cb, &b, &a);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(td_seal(&a, "more", &buf, &n), S2S_OK);
		ck_assert_int_eq(send_pkg(ca, &a, buf, n), 0);
		free(buf);
		receive_one(cb, &b, &a);
		ck_assert_int_eq(td_seal(&b, "back", &buf, &n), S2S_OK);
		ck_assert_int_eq(send_pkg(cb, &b, buf, n), 0);
		free(buf);
		receive_one(ca, &a, &b);
	}
	{
		struct tc_msg t;

		while (tc_wait(ca, NULL, 200, &t))  /* own echoes */
			tc_msg_free(&t);
		while (tc_wait(cb, topic, 200, &t))
			tc_msg_free(&t);
	}

	/* Rejected packages: PUBACK 135, nothing reaches bob. */
	ck_assert_int_eq(send_pkg(ca, &a, first, first_n), NOT_AUTHORIZED);
	ck_assert_int_eq(seal_scratch(&a, "forged text", 0, &buf, &n), S2S_OK);
	buf[S2S_PACKAGE_FIXED + 8 + 2] ^= 1;
	ck_assert_int_eq(send_pkg(ca, &a, buf, n), NOT_AUTHORIZED);
	free(buf);
	ck_assert_int_eq(seal_scratch(&a, "wrong session", 1, &buf, &n),
			 S2S_OK);
	ck_assert_int_eq(send_pkg(ca, &a, buf, n), NOT_AUTHORIZED);
	free(buf);
	ck_assert_int_eq(send_pkg(ca, &a, (const uint8_t *)"S2SPgarbage", 11), NOT_AUTHORIZED);
	{
		char *big = malloc(150001);

		memset(big, 'x', 150000);
		big[150000] = 0;
		ck_assert_int_eq(seal_scratch(&a, big, 0, &buf, &n), S2S_OK);
		free(big);
		ck_assert_int_eq(send_pkg(ca, &a, buf, n), NOT_AUTHORIZED);
		free(buf);
	}
	ck_assert_uint_eq(tc_pending(cb, topic), 0);
	{
		struct tc_msg t;

		ck_assert(!tc_wait(cb, topic, QUIET_MS, &t));
	}
	/* A good package after all that is accepted (chain untouched). */
	ck_assert_int_eq(td_seal(&a, "still fine", &buf, &n), S2S_OK);
	ck_assert_int_eq(send_pkg(ca, &a, buf, n), 0);
	free(buf);
	receive_one(cb, &b, &a);

	expect_stat(obs, "packages/accepted", "6");
	expect_stat(obs, "packages/rejected/replay", "1");
	expect_stat(obs, "packages/rejected/auth", "1");
	expect_stat(obs, "packages/rejected/session", "1");
	expect_stat(obs, "packages/rejected/too_big", "1");
	expect_stat(obs, "sessions", "1");

	/* Fetch alice's packages 1..10: the 4 accepted ones. */
	request(cb, &b, td_fetch(&b, "alice", "alice", 0, 1, 10, 9, &buf, &n),
		&buf, &n);
	expect(cb, &b, S2S_MSG_FETCHED, &m);
	ck_assert_uint_eq(m.count, 4);
	s2s_msg_clear(&m);
	free(first);
	tc_close(obs);
	tc_close(ca);
	tc_close(cb);
	td_free(&a);
	td_free(&b);
}
END_TEST

START_TEST(test_connect_auth)
{
	struct td_dev a, other;
	struct tc *c;

	start(OPEN);
	td_init(&a, "alice", 1);
	td_init(&other, "alice", 9);
	do_register(&a, NULL, S2S_OK);
	ck_assert_int_eq(token_connect(&c, &a, a.key, 120), 0);
	tc_close(c);
	ck_assert_int_eq(token_connect(&c, &a, a.key, -10), NOT_AUTHORIZED);
	ck_assert_int_eq(token_connect(&c, &a, other.key, 120),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(token_connect(&c, &a, a.key, 100000), NOT_AUTHORIZED);
	/* The registered id without a token; MQTT 3.1.1: code 5. */
	ck_assert_int_eq(tc_connect(&c, bh_port(broker), "alice", NULL, NULL,
				    5), NOT_AUTHORIZED);
	ck_assert_int_eq(tc_connect(&c, bh_port(broker), "alice", "alice",
				    "s2s1:1:00", 4), 5);
	/* Unregistered clients connect anonymously (allow_anonymous). */
	ck_assert_int_eq(tc_connect(&c, bh_port(broker), "newcomer", NULL,
				    NULL, 5), 0);
	tc_close(c);
	td_free(&a);
	td_free(&other);
}
END_TEST

START_TEST(test_registration)
{
	static const char *const opts[] = { "stats_interval", "1", NULL };
	struct td_dev a, m;
	struct s2s_key *k;
	struct tc *c;
	uint8_t *buf;
	size_t n;
	static const uint8_t junk[] = "definitely not a picture";

	start(opts);    /* enrolment by code */
	td_init(&a, "alice", 1);
	td_init(&m, "mallory", 3);
	do_register(&a, NULL, S2S_ERR_DENIED);          /* no code */
	do_register(&a, "WRONGCODE", S2S_ERR_DENIED);
	k = cs_key();
	/* The id must be the client id. */
	c = enrolling(&m);
	ck_assert_int_eq(td_register_raw(&m, k, "alice", NULL, a.hs, a.hs_len,
					 1, &buf, &n), S2S_OK);
	ck_assert_int_eq(tc_publish(c, "s2s/cs/register", buf, n, 1, false), 0);
	free(buf);
	expect_reject(c, &m, S2S_ERR_DENIED);
	/* Bad proof of possession. */
	ck_assert_int_eq(td_register(&m, k, NULL, 2, &buf, &n), S2S_OK);
	buf[n - 3] ^= 0x40;
	ck_assert_int_eq(tc_publish(c, "s2s/cs/register", buf, n, 1, false), 0);
	free(buf);
	expect_reject(c, &m, S2S_ERR_AUTH);
	tc_close(c);
	td_free(&m);
	/* Open enrolment: not an image. */
	bh_destroy(broker);
	start(OPEN);
	s2s_key_destroy(k);
	k = cs_key();
	c = enrolling(&a);
	ck_assert_int_eq(td_register_raw(&a, k, "alice", NULL, junk,
					 sizeof(junk), 3, &buf, &n), S2S_OK);
	ck_assert_int_eq(tc_publish(c, "s2s/cs/register", buf, n, 1, false), 0);
	free(buf);
	expect_reject(c, &a, S2S_ERR_IMAGE);
	/* An enrolling client may only send REGISTER. */
	ck_assert_int_eq(tc_publish(c, "s2s/req/alice", "x", 1, 1, false),
			 NOT_AUTHORIZED);
	tc_close(c);
	s2s_key_destroy(k);
	td_free(&a);
}
END_TEST

START_TEST(test_acl)
{
	struct td_dev a, b, c;
	struct tc *ca, *cb, *cc;
	uint8_t *buf;
	size_t n;
	char topic[256];

	start(OPEN);
	establish(&a, &ca, &b, &cb, 0);
	td_init(&c, "carol", 3);
	do_register(&c, NULL, S2S_OK);
	cc = device(&c);
	/* Reading another device's inbox or pair. */
	ck_assert_int_eq(tc_subscribe(cc, "s2s/inbox/alice", 1),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(tc_subscribe(cb, "s2s/inbox/alice", 1),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(tc_subscribe(cc, "s2s/pair/alice~bob/#", 1),
			 NOT_AUTHORIZED);
	/* Publishing to an inbox, on another's sender topic. */
	ck_assert_int_eq(tc_publish(ca, "s2s/inbox/bob", "x", 1, 1, false),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(tc_publish(ca, "s2s/inbox/alice", "x", 1, 1, false),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(td_seal(&a, "as bob", &buf, &n), S2S_OK);
	ck_assert_int_eq(tc_publish(ca, "s2s/pair/alice~bob/bob", buf, n, 1,
				    false), NOT_AUTHORIZED);
	ck_assert_int_eq(tc_publish(cc, "s2s/pair/alice~bob/carol", buf, n, 1,
				    false), NOT_AUTHORIZED);
	ck_assert_int_eq(tc_publish(ca, "s2s/req/bob", "x", 1, 1, false),
			 NOT_AUTHORIZED);
	free(buf);
	/* A wildcard reader sees no protected traffic. */
	ck_assert_int_eq(tc_subscribe(cc, "#", 1), 1);
	snprintf(topic, sizeof(topic), "s2s/pair/%s/alice", a.pair);
	a.tx.next_seq = 1;
	s2s_chain_wipe(&a.tx);
	td_chains(&a);
	ck_assert_int_eq(td_seal(&a, "private", &buf, &n), S2S_OK);
	ck_assert_int_eq(tc_publish(ca, topic, buf, n, 1, false), 0);
	free(buf);
	{
		struct tc_msg t;

		ck_assert(!tc_wait(cc, "s2s/#", QUIET_MS, &t));
	}
	tc_close(ca);
	tc_close(cb);
	tc_close(cc);
	td_free(&a);
	td_free(&b);
	td_free(&c);
}
END_TEST

START_TEST(test_foreign_topics)
{
	static const char *const deny[] = { "foreign_topics", "deny", NULL };
	struct tc *p, *s;
	struct tc_msg t;

	start(_i ? deny : OPEN);
	ck_assert_int_eq(tc_connect(&p, bh_port(broker), "pub", NULL, NULL, 5),
			 0);
	ck_assert_int_eq(tc_connect(&s, bh_port(broker), "sub", NULL, NULL, 5),
			 0);
	if (_i == 0) {
		/* As on a plain broker: pub/sub, retained messages. */
		ck_assert_int_eq(tc_subscribe(s, "sensors/#", 1), 1);
		ck_assert_int_eq(tc_publish(p, "sensors/t1", "21.5", 4, 1,
					    false), 0);
		ck_assert(tc_wait(s, "sensors/t1", TC_TIMEOUT_MS, &t));
		ck_assert_str_eq((char *)t.payload, "21.5");
		tc_msg_free(&t);
		ck_assert_int_eq(tc_publish(p, "sensors/r", "kept", 4, 1,
					    true), 0);
		tc_close(s);
		ck_assert_int_eq(tc_connect(&s, bh_port(broker), "sub2", NULL,
					    NULL, 4), 0);
		ck_assert_int_eq(tc_subscribe(s, "sensors/r", 0), 0);
		ck_assert(tc_wait(s, "sensors/r", TC_TIMEOUT_MS, &t));
		ck_assert(t.retain);
		tc_msg_free(&t);
	} else {
		ck_assert_int_eq(tc_subscribe(s, "sensors/#", 1),
				 NOT_AUTHORIZED);
		ck_assert_int_eq(tc_publish(p, "sensors/t1", "21.5", 4, 1,
					    false), NOT_AUTHORIZED);
		/* Statistics stay readable. */
		ck_assert_int_eq(tc_subscribe(s, "$SYS/broker/s2s/#", 0), 0);
	}
	tc_close(p);
	tc_close(s);
}
END_TEST

START_TEST(test_restart_kill9)
{
	struct td_dev a, b;
	struct tc *ca, *cb;
	uint8_t *buf;
	size_t n;
	struct s2s_msg m;
	char topic[256];
	int acked = 0;

	start(OPEN);
	establish(&a, &ca, &b, &cb, S2S_PROFILE_PAPER);
	snprintf(topic, sizeof(topic), "s2s/pair/%s/alice", a.pair);
	ck_assert_int_eq(tc_subscribe(cb, topic, 1), 1);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(td_seal(&a, "durable", &buf, &n), S2S_OK);
		if (send_pkg(ca, &a, buf, n) == 0)
			acked++;
		free(buf);
	}
	ck_assert_int_eq(acked, 20);
	for (int i = 0; i < acked; i++)
		receive_one(cb, &b, &a);
	ck_assert_int_eq(bh_kill9(broker), 0);
	tc_close(ca);
	tc_close(cb);
	ck_assert_int_eq(bh_restart(broker), 0);
	ca = device(&a);
	cb = device(&b);
	ck_assert_int_eq(tc_subscribe(cb, topic, 1), 1);
	/* Every acknowledged package is in the store. */
	request(cb, &b, td_fetch(&b, "alice", "alice", 0, 1, 100, 7, &buf, &n),
		&buf, &n);
	expect(cb, &b, S2S_MSG_FETCHED, &m);
	ck_assert_uint_eq(m.count, (unsigned)acked);
	ck_assert_uint_eq(m.session, a.t);
	s2s_msg_clear(&m);
	/* The chain position survived: the next package goes through. */
	ck_assert_int_eq(td_seal(&a, "after kill -9", &buf, &n), S2S_OK);
	ck_assert_int_eq(send_pkg(ca, &a, buf, n), 0);
	free(buf);
	receive_one(cb, &b, &a);
	/* A clean restart too. */
	ck_assert_int_eq(bh_stop(broker), 0);
	tc_close(ca);
	tc_close(cb);
	ck_assert_int_eq(bh_restart(broker), 0);
	ca = device(&a);
	ck_assert_int_eq(td_seal(&a, "after restart", &buf, &n), S2S_OK);
	ck_assert_int_eq(send_pkg(ca, &a, buf, n), 0);
	free(buf);
	tc_close(ca);
	td_free(&a);
	td_free(&b);
}
END_TEST

START_TEST(test_negotiation_over_mqtt)
{
	static const char *const opts[] = { "enrollment", "open",
					    "negotiation_timeout", "1", NULL };
	struct td_dev a, b;
	struct tc *ca, *cb;
	struct s2s_key *k;
	uint8_t *buf;
	size_t n;
	struct s2s_msg m;

	start(opts);
	k = cs_key();
	td_init(&a, "alice", 1);
	td_init(&b, "bob", 2);
	do_register(&a, NULL, S2S_OK);
	do_register(&b, NULL, S2S_OK);
	ca = device(&a);
	cb = device(&b);
	pair_and_keys(ca, &a, cb, &b, 0);
	/* Wrong Shk: REJECT auth, both hear ENDED. */
	request(ca, &a, td_neg_sds(&a, k, TD_BAD_SHK, 4, &buf, &n), &buf, &n);
	expect_reject(ca, &a, S2S_ERR_AUTH);
	expect(cb, &b, S2S_MSG_ENDED, &m);
	s2s_msg_clear(&m);
	expect(ca, &a, S2S_MSG_ENDED, &m);
	s2s_msg_clear(&m);
	/* New session, then silence: timeout for both. */
	request(ca, &a, td_session(&a, "bob", 6, &buf, &n), &buf, &n);
	expect(ca, &a, S2S_MSG_NEG_KEYS, &m);
	s2s_msg_clear(&m);
	expect(cb, &b, S2S_MSG_NEG_KEYS, &m);
	s2s_msg_clear(&m);
	expect_reject(ca, &a, S2S_ERR_TIMEOUT);
	expect_reject(cb, &b, S2S_ERR_TIMEOUT);
	tc_close(ca);
	tc_close(cb);
	s2s_key_destroy(k);
	td_free(&a);
	td_free(&b);
}
END_TEST

/*
 * Wills never pass the gate (Mosquitto does not run MOSQ_EVT_MESSAGE for
 * them): a device's will on its own pair topic must not reach the peer.
 * And packages queued for an offline peer (persistent session) still
 * arrive when it comes back.
 */
START_TEST(test_will_and_offline)
{
	struct td_dev a, b;
	struct tc *ca, *cb, *cw;
	uint8_t *buf;
	size_t n;
	char topic[256], tok[S2S_TOKEN_MAX];
	struct tc_msg t;

	start(OPEN);
	establish(&a, &ca, &b, &cb, 0);
	snprintf(topic, sizeof(topic), "s2s/pair/%s/alice", a.pair);
	tc_close(cb);
	ck_assert_int_eq(s2s_token_make(b.key, "bob", (uint64_t)time(NULL) +
					300, tok), S2S_OK);
	ck_assert_int_eq(tc_connect_will(&cb, bh_port(broker), "bob", "bob",
					 tok, 5, NULL, NULL, 0, true), 0);
	ck_assert_int_eq(tc_subscribe(cb, topic, 1), 1);
	/* A forged package as alice's will. */
	ck_assert_int_eq(seal_scratch(&a, "forged will", 0, &buf, &n), S2S_OK);
	buf[S2S_PACKAGE_FIXED + 8 + 1] ^= 1;
	tc_close(ca);
	ck_assert_int_eq(s2s_token_make(a.key, "alice", (uint64_t)time(NULL) +
					300, tok), S2S_OK);
	ck_assert_int_eq(tc_connect_will(&cw, bh_port(broker), "alice",
					 "alice", tok, 5, topic, buf, n,
					 false), 0);
	free(buf);
	tc_drop_with_will(cw);
	tc_close(cw);
	ck_assert(!tc_wait(cb, topic, 2 * QUIET_MS, &t));
	/* bob goes away; alice sends 3 packages; bob comes back. */
	tc_close(cb);
	ca = device(&a);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(td_seal(&a, "while you were away", &buf, &n),
				 S2S_OK);
		ck_assert_int_eq(send_pkg(ca, &a, buf, n), 0);
		free(buf);
	}
	ck_assert_int_eq(s2s_token_make(b.key, "bob", (uint64_t)time(NULL) +
					300, tok), S2S_OK);
	ck_assert_int_eq(tc_connect_will(&cb, bh_port(broker), "bob", "bob",
					 tok, 5, NULL, NULL, 0, true), 0);
	for (int i = 0; i < 3; i++)
		receive_one(cb, &b, &a);
	tc_close(ca);
	tc_close(cb);
	td_free(&a);
	td_free(&b);
}
END_TEST

/* Send one admin command and return the first response object. */
static struct s2s_json *
admin(struct tc *c, const char *cmd, const char *id, const char *pair)
{
	char *q = s2s_admin_request(cmd, id, pair, NULL, -1);
	struct tc_msg t;
	struct s2s_json *j;

	ck_assert_int_eq(tc_publish(c, "$CONTROL/s2s/v1", q, strlen(q), 1,
				    false), 0);
	free(q);
	ck_assert(tc_wait(c, "$CONTROL/s2s/v1/response", TC_TIMEOUT_MS, &t));
	j = s2s_json_parse(t.payload, t.len);
	ck_assert_ptr_nonnull(j);
	tc_msg_free(&t);
	return j;
}

static const struct s2s_json *
first(const struct s2s_json *j)
{
	const struct s2s_json *r =
		s2s_json_array_at(s2s_json_get(j, "responses"), 0);

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(s2s_json_get(r, "error"));
	return s2s_json_get(r, "data");
}

START_TEST(test_admin)
{
	static const char *const opts[] = { "stats_interval", "1", NULL };
	struct s2s_key *adm;
	struct td_dev a, b;
	struct tc *c, *ca, *spy;
	struct s2s_json *j;
	char tok[S2S_TOKEN_MAX], code[200];
	int64_t v;

	start(opts);
	ck_assert_int_eq(s2s_key_load_private(bh_path(broker, "cs.admin.key"),
					      &adm), S2S_OK);
	ck_assert_int_eq(s2s_token_make_for(adm, "s2s-admin", "ctl", (uint64_t)time(NULL)
					+ 120, tok), S2S_OK);
	ck_assert_int_eq(tc_connect(&c, bh_port(broker), "ctl", "s2s-admin",
				    tok, 5), 0);
	ck_assert_int_eq(tc_subscribe(c, "$CONTROL/s2s/v1/response", 1), 1);
	/* Nobody else may read the responses or send commands. */
	ck_assert_int_eq(tc_connect(&spy, bh_port(broker), "spy", NULL, NULL,
				    5), 0);
	ck_assert_int_eq(tc_subscribe(spy, "$CONTROL/s2s/v1/response", 1),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(tc_publish(spy, "$CONTROL/s2s/v1",
				    "{\"commands\":[]}", 15, 1, false),
			 NOT_AUTHORIZED);
	/* Enrolment codes. */
	td_init(&a, "alice", 1);
	td_init(&b, "bob", 2);
	j = admin(c, "addEnrolmentCode", "alice", NULL);
	ck_assert_int_eq(s2s_json_get_string(first(j), "code", false, NULL,
					     code, sizeof(code), NULL, 0),
			 S2S_OK);
	s2s_json_free(j);
	do_register(&a, "NOTTHECODE", S2S_ERR_DENIED);
	do_register(&a, code, S2S_OK);
	do_register(&b, code, S2S_ERR_DENIED);      /* alice's code */
	j = admin(c, "listDevices", NULL, NULL);
	ck_assert_uint_eq(s2s_json_array_size(s2s_json_get(first(j),
							   "devices")), 1);
	s2s_json_free(j);
	ca = device(&a);
	j = admin(c, "getStatistics", NULL, NULL);
	ck_assert_int_eq(s2s_json_get_int(first(j), "devicesConnected", false,
					  0, 0, 10, &v, NULL, 0), S2S_OK);
	ck_assert_int_eq(v, 1);
	s2s_json_free(j);
	j = admin(c, "listPairs", NULL, NULL);
	ck_assert_uint_eq(s2s_json_array_size(s2s_json_get(first(j),
							   "pairs")), 0);
	s2s_json_free(j);
	j = admin(c, "listSessions", NULL, NULL);
	(void)first(j);
	s2s_json_free(j);
	/* A device may not use the admin API. */
	ck_assert_int_eq(tc_publish(ca, "$CONTROL/s2s/v1",
				    "{\"commands\":[]}", 15, 1, false),
			 NOT_AUTHORIZED);
	/* removeDevice revokes and disconnects. */
	j = admin(c, "removeDevice", "alice", NULL);
	(void)first(j);
	s2s_json_free(j);
	ck_assert(tc_wait_disconnect(ca, TC_TIMEOUT_MS));
	tc_close(ca);
	ck_assert_int_eq(token_connect(&ca, &a, a.key, 60), NOT_AUTHORIZED);
	tc_close(spy);
	tc_close(c);
	s2s_key_destroy(adm);
	td_free(&a);
	td_free(&b);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("plugin_broker");
	TCase *tc = tcase_create("broker");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_loop_test(tc, test_flow_and_gate, 0, 2);
	tcase_add_test(tc, test_connect_auth);
	tcase_add_test(tc, test_sys_reject_reasons);
	tcase_add_test(tc, test_plugin_out_of_reach);
	tcase_add_test(tc, test_registration);
	tcase_add_test(tc, test_acl);
	tcase_add_loop_test(tc, test_foreign_topics, 0, 2);
	tcase_add_test(tc, test_restart_kill9);
	tcase_add_test(tc, test_negotiation_over_mqtt);
	tcase_add_test(tc, test_admin);
	tcase_add_test(tc, test_will_and_offline);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (!bh_plugin_path() || access("/usr/sbin/mosquitto", X_OK) != 0) {
		fprintf(stderr, "S2S_PLUGIN unset or no broker: skipped\n");
		return 77;
	}
	sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	s2s_crypto_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
