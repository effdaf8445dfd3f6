/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_cluster.c - several brokers, one system (issue 13): a private
 * PostgreSQL (tests/pg_harness.h) and three real Mosquitto brokers with
 * the s2s plugin on it, bridged as `s2s cluster-config` writes it
 * (client/tool/cluster_conf.c), and devices on libs2s-client:
 *
 *   cross     alice on broker 0, bob on broker 1: register, pair, negotiate
 *             (the five steps cross brokers) and exchange messages both
 *             ways, each exactly once and in order, over the bridges.
 *   trust     only a peer's authenticated bridge may write
 *             ROOT/bridge/<peer>/...: an anonymous client, a bridge user
 *             with a wrong password, and a bridge writing under another
 *             broker's name are refused, and nothing reaches the device.
 *   kill9     kill -9 of alice's broker under load: alice reconnects to
 *             another broker by herself and continues her session (the
 *             gate there catches up from the store); every message the
 *             dead broker acknowledged reaches bob exactly once and in
 *             order (FETCH fills the gaps).  Prints the failover time.
 *   view      the admin API of broker 2 lists the pair made through
 *             brokers 0 and 1, the cluster's brokers and counters, and
 *             revoking bob there disconnects him from broker 1.
 *
 * Skipped (exit 77) only when the PostgreSQL binaries are missing (or
 * S2S_PLUGIN is unset: not run by meson).  S2S_CLUSTER_TEST=<name> runs one
 * test; S2S_CLUSTER_LOG=1 prints the devices' log lines, timestamped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "broker_harness.h"
#include "check_main.h"
#include "cluster_conf.h"
#include "diag.h"      /* S2S_SEND_SEAL_ONLY */
#include "json.h"
#include "mqtt_testclient.h"
#include "pg_harness.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/proto.h"

#define NB 3
#define MAXSEQ 2048
#define NOT_AUTHORIZED 135

static struct pgh_server *pg;
static struct bh_broker *br[NB];
static struct cc_broker cc[NB];
static char shared[256], tmpdir[256], store_uri[300];

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
rm_rf(char *dir)
{
	char cmd[400];

	if (!dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	dir[0] = 0;
}

static void
teardown(void)
{
	for (int i = 0; i < NB; i++) {
		bh_destroy(br[i]);
		br[i] = NULL;
	}
	pgh_destroy(pg);
	pg = NULL;
	rm_rf(shared);
	rm_rf(tmpdir);
}

static int
bridges_up(int i)
{
	char *log = bh_log(br[i]);
	int n = 0;

	for (const char *s = log; s && (s = strstr(s, "bridge of broker '"));
	     s++)
		n++;
	free(log);
	return n;
}

/*
 * NB brokers on fresh ports, bridged in a full mesh; -1 when all started,
 * else the index of the one that did not (*taken: its port was taken by
 * another process after it was picked).
 */
static int
brokers_start(const char *secret_file, const char *secret, bool *taken)
{
	char *frag = NULL;
	size_t frag_len = 0;
	FILE *f;

	for (int i = 0; i < NB; i++) {
		snprintf(cc[i].id, sizeof(cc[i].id), "b%d", i);
		snprintf(cc[i].host, sizeof(cc[i].host), "127.0.0.1");
		do {
			cc[i].port = bh_free_port();
			for (int k = 0; k < i; k++)
				if (cc[k].port == cc[i].port)
					cc[i].port = 0;
		} while (cc[i].port <= 0);
	}
	for (int i = 0; i < NB; i++) {
		char key[300];
		const char *opts[] = { "store", store_uri, "cs_key", key,
				       "enrollment", "open", "stats_interval",
				       "1", NULL };
		int rc;

		/* one CS: every broker has the same key, admin and store
		 * keys (beside cs_key) */
		snprintf(key, sizeof(key), "%s/cs.key", shared);
		f = open_memstream(&frag, &frag_len);
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(cc_fragment(f, cc, NB, (size_t)i, "s2s",
					     secret_file, secret), 0);
		fclose(f);
		rc = bh_start(&br[i], &(struct bh_options){
			.plugin = bh_plugin_path(), .plugin_opts = opts,
			.extra_conf = frag, .port = cc[i].port,
			.start_timeout_ms = 60000 });
		free(frag);
		frag = NULL;
		if (rc != 0) {
			*taken = bh_log_contains(br[i],
						 "Address already in use");
			return i;
		}
	}
	return -1;
}

/* PostgreSQL, then NB brokers on it, bridged in a full mesh. */
static void
cluster_start(void)
{
	static const char hex[] = "0123456789abcdef";
	char secret[65], secret_file[300];
	uint8_t rnd[32];
	FILE *f;
	double end;
	int failed;
	bool taken = false;

	ck_assert_int_eq(pgh_start(&pg), 0);
	ck_assert_int_eq(pgh_create_db(pg, "cluster", store_uri,
				       sizeof(store_uri)), 0);
	snprintf(shared, sizeof(shared), "/tmp/s2s-cluster-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(shared));
	bh_give(shared);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/s2s-cluster-dev-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	/* the bridges' password: one line, 0600, the broker user's */
	ck_assert_int_eq(s2s_random(rnd, sizeof(rnd)), S2S_OK);
	for (size_t k = 0; k < sizeof(rnd); k++) {
		secret[2 * k] = hex[rnd[k] >> 4];
		secret[2 * k + 1] = hex[rnd[k] & 15];
	}
	secret[64] = 0;
	snprintf(secret_file, sizeof(secret_file), "%s/bridge.secret", shared);
	f = fopen(secret_file, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", secret);
	fclose(f);
	chmod(secret_file, 0600);
	bh_give(secret_file);
	/* The ports are picked before the brokers start (the bridges name
	 * their peers): one taken meanwhile by another process means new
	 * ports for all. */
	for (int attempt = 0;
	     (failed = brokers_start(secret_file, secret, &taken)) >= 0;
	     attempt++) {
		for (int i = 0; i < NB; i++) {
			bh_destroy(br[i]);
			br[i] = NULL;
		}
		ck_assert_msg(taken && attempt < 4, "broker %d did not start",
			      failed);
		fprintf(stderr, "cluster: a port was taken; new ports\n");
		taken = false;
	}
	/* every broker has the bridges of its NB - 1 peers */
	end = now_s() + 60;
	for (int i = 0; i < NB; i++)
		while (bridges_up(i) < NB - 1 && now_s() < end)
			usleep(50000);
	for (int i = 0; i < NB; i++)
		ck_assert_msg(bridges_up(i) >= NB - 1, "broker %d: %d bridges "
			      "connected", i, bridges_up(i));
}

/* A device whose broker list starts at broker first. */
static void
make_device(const char *name, uint32_t user, int first, char *cfg, size_t n)
{
	char dir[400], key[500], sig[500];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(key, sizeof(key), "%s/%s", dir, name);
	ck_assert_int_eq(s2s_key_generate(&k), S2S_OK);
	ck_assert_int_eq(s2s_key_save(k, key), S2S_OK);
	s2s_key_destroy(k);
	snprintf(sig, sizeof(sig), "%s/sig.png", dir);
	ck_assert_int_eq(s2s_bio_siggen(user, 1, &img), S2S_OK);
	ck_assert_int_eq(s2s_image_write_file(&img, sig, 6), S2S_OK);
	s2s_image_free(&img);
	snprintf(cfg, n, "%s/device.json", dir);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "{\"broker\":[");
	for (int i = 0; i < NB; i++)
		fprintf(f, "%s\"tcp://127.0.0.1:%d\"", i ? "," : "",
			cc[(first + i) % NB].port);
	fprintf(f, "],\"id\":\"%s\",\"key\":\"%s.key\",\"cs_key\":"
		"\"%s/cs.pub\",\"signature\":\"%s\",\"state_dir\":\"state\","
		"\"covers\":\"builtin\",\"state_fsync\":false,\"keepalive\":5,"
		"\"timeouts\":{\"connect\":10,\"pair\":20,\"session\":20,"
		"\"fetch\":5}}\n", name, key, shared, sig);
	fclose(f);
}

/* What a receiving device saw. */
struct rx {
	pthread_mutex_t lock;
	uint64_t t0;
	unsigned seen[MAXSEQ];
	unsigned got, fetched, in_order_violations;
	uint64_t last_session, last_seq;
	unsigned after[64];
	double first_after_s;           /* when "after 1" arrived */
	double load_t[MAXSEQ];          /* when "load k" arrived */
};

static void
on_msg(void *ud, const struct s2s_message_info *i, const uint8_t *m, size_t n)
{
	struct rx *r = ud;
	char t[64];
	int k;

	pthread_mutex_lock(&r->lock);
	snprintf(t, sizeof(t), "%.*s", (int)(n < 63 ? n : 63),
		 (const char *)m);
	if (sscanf(t, "load %d", &k) == 1 && k > 0 && k < MAXSEQ &&
	    !r->load_t[k])
		r->load_t[k] = now_s();
	if (sscanf(t, "after %d", &k) == 1 && k > 0 && k < 64) {
		r->after[k]++;
		if (!r->first_after_s)
			r->first_after_s = now_s();
	}
	if (i->seq < MAXSEQ && (!r->t0 || i->session == r->t0))
		r->seen[i->seq]++;
	if (i->session == r->last_session && i->seq <= r->last_seq)
		r->in_order_violations++;
	r->last_session = i->session;
	r->last_seq = i->seq;
	r->got++;
	r->fetched += i->fetched;
	pthread_mutex_unlock(&r->lock);
}

static unsigned
rx_got(struct rx *r)
{
	unsigned n;

	pthread_mutex_lock(&r->lock);
	n = r->got;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static bool
wait_got(struct rx *r, unsigned want, int timeout_s)
{
	double end = now_s() + timeout_s;

	while (now_s() <= end) {
		if (rx_got(r) >= want)
			return true;
		usleep(20000);
	}
	return false;
}

/* S2S_CLUSTER_LOG=1: the devices' log lines on stderr, timestamped */
static void
on_log(void *ud, enum s2s_log_level level, const char *line)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%02ld:%02ld:%02ld.%03ld %s[%d] %s\n",
		(long)(ts.tv_sec / 3600 % 24), (long)(ts.tv_sec / 60 % 60),
		(long)(ts.tv_sec % 60), ts.tv_nsec / 1000000L,
		(const char *)ud, (int)level, line);
}

static struct s2s_client *
client(const char *cfg, struct rx *r)
{
	struct s2s_client *c;
	char err[512];
	const char *lg = getenv("S2S_CLUSTER_LOG");

	ck_assert_msg(s2s_client_create(cfg, &c, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	if (lg && *lg == '1')
		s2s_client_on_log(c, on_log, (void *)(strstr(cfg, "/alice/") ?
						      "alice" : "bob"),
				  S2S_LOG_DEBUG);
	if (r)
		s2s_client_on_message(c, on_msg, r);
	return c;
}

/*
 * The device's Paho persistence folder (state/mqtt/<id>-<uri>) is still
 * there: the token reconnect after registration destroys a second Paho
 * handle of the same client id, which used to remove the folder of the
 * live one; a failover then bounced between brokers for seconds
 * (transport_paho.c, pin_persist).
 */
static bool
persist_folder_ok(const char *name)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "test -n \"$(find '%s/%s/state/mqtt' "
		 "-mindepth 1 -maxdepth 1 -type d -name '%s-*' 2>/dev/null)\"",
		 tmpdir, name, name);
	return system(cmd) == 0;
}

static void
setup_pair(struct s2s_client *a, struct s2s_client *b)
{
	enum s2s_err e;

	ck_assert_int_eq(s2s_client_connect(a, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_register(a, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_register(b, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, 0), S2S_ERR_TIMEOUT);
	ck_assert_int_eq(s2s_client_pair(b, "alice", 0, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, -1), S2S_OK);
	e = s2s_client_session(a, "bob", -1);
	if (e != S2S_OK) {
		char ra[256], rb[256];

		s2s_client_last_reason(a, ra, sizeof(ra));
		s2s_client_last_reason(b, rb, sizeof(rb));
		fprintf(stderr, "session: %s; alice's last REJECT '%s', bob's "
			"'%s'\n", s2s_errname(e), ra, rb);
		for (int i = 0; i < NB; i++) {
			char *log = bh_log(br[i]);

			for (char *l = log ? strtok(log, "\n") : NULL; l;
			     l = strtok(NULL, "\n"))
				if (strstr(l, "s2s:") && !strstr(l, "bridge"))
					fprintf(stderr, "b%d| %s\n", i, l);
			free(log);
		}
	}
	ck_assert_int_eq(e, S2S_OK);
	ck_assert_int_eq(s2s_client_wait_session(b, "alice", 30000), S2S_OK);
	ck_assert_msg(persist_folder_ok("alice") && persist_folder_ok("bob"),
		      "a device's MQTT persistence folder is gone after its "
		      "token reconnect");
}

static void
rx_init(struct rx *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

/* A retained $SYS/broker/s2s/<leaf> of broker i (-1 if none). */
static long
sys_value(int i, const char *leaf)
{
	struct tc *c;
	struct tc_msg m;
	char topic[200], v[32];
	long r = -1;

	snprintf(topic, sizeof(topic), "$SYS/broker/s2s/%s", leaf);
	ck_assert_int_eq(tc_connect(&c, cc[i].port, "sysreader", NULL, NULL,
				    5), 0);
	ck_assert_int_ge(tc_subscribe(c, topic, 0), 0);
	if (tc_wait(c, topic, 10000, &m)) {    /* retained: at once */
		snprintf(v, sizeof(v), "%.*s", (int)(m.len < 31 ? m.len : 31),
			 (const char *)m.payload);
		r = atol(v);
		tc_msg_free(&m);
	}
	tc_close(c);
	return r;
}

static void
send_n(struct s2s_client *c, const char *peer, const char *what, int n)
{
	for (int i = 1; i <= n; i++) {
		char msg[64];

		snprintf(msg, sizeof(msg), "%s %d", what, i);
		ck_assert_int_eq(s2s_client_send(c, peer, (const uint8_t *)msg,
						 strlen(msg),
						 S2S_SEND_WAIT_ACK, NULL),
				 S2S_OK);
	}
}

/* ---- two devices on two brokers ------------------------------------------ */

START_TEST(test_cross)
{
	char ca[600], cb[600];
	struct s2s_client *a, *b;
	struct rx ra, rb;
	uint64_t t;

	cluster_start();
	rx_init(&ra);
	rx_init(&rb);
	make_device("alice", 1, 0, ca, sizeof(ca));
	make_device("bob", 2, 1, cb, sizeof(cb));
	a = client(ca, &ra);
	b = client(cb, &rb);
	setup_pair(a, b);
	ck_assert(s2s_client_has_session(a, "bob", &t));
	rb.t0 = ra.t0 = t;
	send_n(a, "bob", "a2b", 20);
	send_n(b, "alice", "b2a", 20);
	ck_assert_msg(wait_got(&rb, 20, 30), "bob got %u of 20", rx_got(&rb));
	ck_assert_msg(wait_got(&ra, 20, 30), "alice got %u of 20",
		      rx_got(&ra));
	usleep(300000);         /* duplicates would arrive by now */
	ck_assert_uint_eq(rx_got(&rb), 20);
	ck_assert_uint_eq(rx_got(&ra), 20);
	for (int q = 1; q <= 20; q++) {
		ck_assert_uint_eq(rb.seen[q], 1);
		ck_assert_uint_eq(ra.seen[q], 1);
	}
	ck_assert_uint_eq(rb.in_order_violations, 0);
	ck_assert_uint_eq(ra.in_order_violations, 0);
	/* they really went over the bridges: each broker handed messages
	 * from its peer to its device */
	{
		double end = now_s() + 60;    /* $SYS every stats_interval */
		long d0 = 0, d1 = 0, r0 = 0, r1 = 0;

		/* each leaf polled: one read may be a second old */
		while ((d0 < 20 || d1 < 20 || r0 < 20 || r1 < 20) &&
		       now_s() < end) {
			d0 = sys_value(0, "bridged/delivered");
			d1 = sys_value(1, "bridged/delivered");
			r0 = sys_value(0, "bridged/routed");
			r1 = sys_value(1, "bridged/routed");
		}
		ck_assert_msg(d0 >= 20 && d1 >= 20, "bridged/delivered: "
			      "broker 0 %ld, broker 1 %ld", d0, d1);
		/* routed to the receiver's broker only: b2, where neither
		 * device is, got nothing over its bridges (it got all 40
		 * and every control message when bridges broadcast) */
		{
			long in2 = sys_value(2, "bridged/in");

			ck_assert_msg(r0 >= 20 && r1 >= 20, "bridged/routed: "
				      "b0 %ld, b1 %ld", r0, r1);
			ck_assert_msg(in2 == 0, "broker 2 got %ld bridged "
				      "messages", in2);
			printf("cluster: alice on b0, bob on b1: 20 + 20 "
			       "messages across the bridges, each once and in "
			       "order (bridged/delivered b0 %ld, b1 %ld; routed "
			       "b0 %ld, b1 %ld; b2 got %ld)\n", d0, d1, r0, r1,
			       in2);
		}
	}
	s2s_client_destroy(a);
	s2s_client_destroy(b);
}
END_TEST

/* ---- who may use the bridge topics ------------------------------------------ */

START_TEST(test_trust)
{
	char ca[600], cb[600], topic[400], secret[100];
	struct s2s_client *a, *b;
	struct rx rb;
	struct tc *m;
	FILE *f;
	unsigned before;

	cluster_start();
	rx_init(&rb);
	make_device("alice", 1, 0, ca, sizeof(ca));
	make_device("bob", 2, 1, cb, sizeof(cb));
	a = client(ca, NULL);
	b = client(cb, &rb);
	setup_pair(a, b);
	send_n(a, "bob", "real", 3);
	ck_assert(wait_got(&rb, 3, 30));
	before = rx_got(&rb);
	snprintf(topic, sizeof(topic), "s2s/bridge/b0/pair/alice~bob/alice");

	/* an anonymous client on bob's broker */
	ck_assert_int_eq(tc_connect(&m, cc[1].port, "mallory", NULL, NULL, 5),
			 0);
	ck_assert_int_eq(tc_publish(m, topic, "forged", 6, 1, false),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(tc_publish(m, "s2s/bridge/b0/inbox/bob", "x", 1, 1,
				    false), NOT_AUTHORIZED);
	tc_close(m);
	/* nor into a bridge's queue on alice's broker: ROOT/route/... is
	 * the plugin's (past the gate) */
	ck_assert_int_eq(tc_connect(&m, cc[0].port, "mallory", NULL, NULL, 5),
			 0);
	ck_assert_int_eq(tc_publish(m, "s2s/route/b1/pair/alice~bob/alice",
				    "forged", 6, 1, false), NOT_AUTHORIZED);
	ck_assert_int_eq(tc_publish(m, "s2s/route/b1/inbox/bob", "x", 1, 1,
				    false), NOT_AUTHORIZED);
	ck_assert_int_eq(tc_subscribe(m, "s2s/route/#", 1), NOT_AUTHORIZED);
	tc_close(m);
	/* a bridge user with the wrong password */
	ck_assert_int_ne(tc_connect(&m, cc[1].port, "s2s-bridge-mallory",
				    "s2s-bridge-b0", "not-the-password-at-all",
				    5), 0);
	/* the right password, but writing in another broker's name */
	snprintf(topic, sizeof(topic), "%s/bridge.secret", shared);
	f = fopen(topic, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(secret, sizeof(secret), f));
	fclose(f);
	secret[strcspn(secret, "\n")] = 0;
	ck_assert_int_eq(tc_connect(&m, cc[1].port, "s2s-bridge-x",
				    "s2s-bridge-b2", secret, 5), 0);
	ck_assert_int_eq(tc_publish(m, "s2s/bridge/b0/pair/alice~bob/alice",
				    "forged", 6, 1, false), NOT_AUTHORIZED);
	/* and no bridge may subscribe to pair topics or read inboxes */
	ck_assert_int_eq(tc_subscribe(m, "s2s/pair/alice~bob/+", 1),
			 NOT_AUTHORIZED);
	ck_assert_int_eq(tc_subscribe(m, "s2s/inbox/bob", 1), NOT_AUTHORIZED);
	tc_close(m);
	usleep(500000);
	ck_assert_uint_eq(rx_got(&rb), before);
	/* the real path still works */
	send_n(a, "bob", "real2", 2);
	ck_assert(wait_got(&rb, before + 2, 30));
	printf("cluster: forged bridge messages refused (anonymous, wrong "
	       "password, another broker's name); the real bridges work\n");
	s2s_client_destroy(a);
	s2s_client_destroy(b);
}
END_TEST

/* ---- s2s cluster-config: bridge TLS ----------------------------------------- */

START_TEST(test_config_tls)
{
	struct cc_broker b[3];
	struct cc_tls tls = { "/etc/mosquitto/ca.crt",
			      "/etc/mosquitto/{id}.crt",
			      "/etc/mosquitto/{id}.key" };
	char err[128], *frag = NULL;
	size_t len = 0;
	FILE *f;
	int n = cc_parse("b0=10.0.0.1:8883,b1=10.0.0.2:8883,b2=h2:8883", b,
			 3, err, sizeof(err));

	ck_assert_int_eq(n, 3);
	f = open_memstream(&frag, &len);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(cc_fragment_tls(f, b, 3, 1, "s2s", "/x/secret",
					 "0123456789abcdef", &tls), 0);
	fclose(f);
	/* two bridges (to b0 and b2), each with the three files, b1's own
	 * certificate */
	ck_assert_ptr_nonnull(strstr(frag, "connection s2s-b1-b0\n"));
	ck_assert_ptr_nonnull(strstr(frag, "connection s2s-b1-b2\n"));
	{
		int ca = 0, cert = 0, key = 0;

		for (const char *s = frag; (s = strstr(s, "\nbridge_")); s++) {
			ca += !strncmp(s, "\nbridge_cafile /etc/mosquitto/"
				       "ca.crt\n", 37);
			cert += !strncmp(s, "\nbridge_certfile /etc/mosquitto/"
					 "b1.crt\n", 39);
			key += !strncmp(s, "\nbridge_keyfile /etc/mosquitto/"
					"b1.key\n", 38);
		}
		ck_assert_int_eq(ca, 2);
		ck_assert_int_eq(cert, 2);
		ck_assert_int_eq(key, 2);
	}
	free(frag);
	/* without TLS: no bridge_ TLS lines */
	frag = NULL;
	f = open_memstream(&frag, &len);
	ck_assert_int_eq(cc_fragment(f, b, 3, 1, "s2s", "/x/secret",
				     "0123456789abcdef"), 0);
	fclose(f);
	ck_assert_ptr_null(strstr(frag, "bridge_cafile"));
	ck_assert_ptr_null(strstr(frag, "bridge_certfile"));
	free(frag);
}
END_TEST

/* ---- kill -9 of a broker under load -------------------------------------- */

struct sender {
	struct s2s_client *c;
	int count;
	volatile int acked_n;
	uint64_t acked[MAXSEQ];
	uint64_t session[MAXSEQ];
	int errors;
	int errs[64];                   /* by -err */
	double deadline;                /* stop sending (now_s) */
	volatile int done;
};

static void *
send_main(void *arg)
{
	struct sender *s = arg;

	for (int i = 0; i < s->count && now_s() < s->deadline; i++) {
		struct s2s_sent_info info;
		char msg[64];
		enum s2s_err e;

		snprintf(msg, sizeof(msg), "load %d", i + 1);
		memset(&info, 0, sizeof(info));
		e = s2s_client_send(s->c, "bob", (const uint8_t *)msg,
				    strlen(msg), S2S_SEND_WAIT_ACK, &info);
		if (e == S2S_OK) {
			int k = s->acked_n;

			if (k < MAXSEQ) {
				s->acked[k] = info.seq;
				s->session[k] = info.session;
			}
			__atomic_add_fetch(&s->acked_n, 1, __ATOMIC_SEQ_CST);
		} else {
			s->errors++;
			s->errs[-e > 0 && -e < 64 ? -e : 63]++;
			usleep(20000);
		}
	}
	s->done = 1;
	return NULL;
}

/*
 * kill -9 of broker `victim` after 100 of alice's 300 packages: 0 is
 * alice's (the sender moves), 1 is bob's (the receiver moves: packages
 * routed to his dead broker are fetched from the store at his new one).
 */
static void
kill9_run(int victim)
{
	char ca[600], cb[600];
	struct s2s_client *a, *b;
	struct rx r;
	struct sender *s = calloc(1, sizeof(*s));
	pthread_t th;
	uint64_t t0, t1;
	double t_kill, t_back = 0, t_first;
	int before, lost = 0, dup = 0;

	ck_assert_ptr_nonnull(s);
	cluster_start();
	rx_init(&r);
	make_device("alice", 1, 0, ca, sizeof(ca));
	make_device("bob", 2, 1, cb, sizeof(cb));
	a = client(ca, NULL);
	b = client(cb, &r);
	setup_pair(a, b);
	ck_assert(s2s_client_has_session(a, "bob", &t0));
	pthread_mutex_lock(&r.lock);
	r.t0 = t0;
	pthread_mutex_unlock(&r.lock);

	s->c = a;
	s->count = 300;
	s->deadline = now_s() + 150;    /* a stuck failover fails, not hangs */
	ck_assert_int_eq(pthread_create(&th, NULL, send_main, s), 0);
	while (__atomic_load_n(&s->acked_n, __ATOMIC_SEQ_CST) < 100 &&
	       !s->done)
		usleep(1000);
	before = s->acked_n;
	t_kill = now_s();
	ck_assert_int_eq(bh_kill9(br[victim]), 0);
	/* alice's next acknowledged package: through another broker */
	while (__atomic_load_n(&s->acked_n, __ATOMIC_SEQ_CST) <= before + 1 &&
	       now_s() < t_kill + 60)
		usleep(1000);
	t_back = now_s();
	pthread_join(th, NULL);
	for (int e = 1; e < 64; e++)
		if (s->errs[e])
			fprintf(stderr, "cluster: alice's sends failed: %s x%d\n",
				s2s_errname(-e), s->errs[e]);
	/* at most the one in flight when its broker died goes unanswered */
	ck_assert_msg(s->acked_n >= s->count - 1 && s->errors <= 1,
		      "alice: %d of %d acknowledged (%d send errors)",
		      s->acked_n, s->count, s->errors);
	ck_assert_int_eq(s2s_client_flush(a, 20000), S2S_OK);
	ck_assert(s2s_client_has_session(a, "bob", &t1));
	ck_assert_msg(t1 == t0, "alice renegotiated instead of continuing "
		      "her session");

	/* 20 more, and every acknowledged one reaches bob exactly once */
	send_n(a, "bob", "after", 20);
	{
		double end = now_s() + 60;
		bool all = false;

		while (!all && now_s() <= end) {
			all = true;
			pthread_mutex_lock(&r.lock);
			for (int i = 1; i <= 20 && all; i++)
				all = r.after[i] >= 1;
			pthread_mutex_unlock(&r.lock);
			if (!all)
				usleep(50000);
		}
		ck_assert_msg(all, "bob did not get the messages sent after "
			      "the kill");
	}
	/* the tail: FETCH fills what the dead broker's bridge lost */
	{
		double end = now_s() + 30;

		for (;;) {
			lost = 0;
			pthread_mutex_lock(&r.lock);
			for (int i = 0; i < s->acked_n && i < MAXSEQ; i++)
				if (s->session[i] == t0 &&
				    r.seen[s->acked[i]] == 0)
					lost++;
			pthread_mutex_unlock(&r.lock);
			if (!lost || now_s() > end)
				break;
			usleep(100000);
		}
	}
	usleep(500000);
	pthread_mutex_lock(&r.lock);
	/* the first message alice sent after the kill, delivered to bob */
	t_first = 0;
	for (int k = before + 2; k < MAXSEQ && k <= s->count; k++)
		if (r.load_t[k] && (!t_first || r.load_t[k] < t_first))
			t_first = r.load_t[k];
	for (int i = 0; i < s->acked_n && i < MAXSEQ; i++)
		if (s->session[i] == t0 && r.seen[s->acked[i]] > 1)
			dup++;
	for (int i = 1; i <= 20; i++)
		ck_assert_uint_eq(r.after[i], 1);
	ck_assert_uint_eq(r.in_order_violations, 0);
	printf("cluster: kill -9 of %s's broker after %d acknowledged; "
	       "%d of %d acknowledged in all, %d send errors; alice's next "
	       "package acknowledged %.0f ms after the kill; lost %d, "
	       "duplicates %d, "
	       "%u recovered by FETCH; failover: first message sent after "
	       "the kill delivered %.0f ms after it\n", victim ? "bob" : "alice",
	       before, s->acked_n, s->count,
	       s->errors, 1000 * (t_back - t_kill), lost, dup, r.fetched,
	       1000 * (t_first - t_kill));
	pthread_mutex_unlock(&r.lock);
	ck_assert_int_eq(lost, 0);
	ck_assert_int_eq(dup, 0);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	free(s);
}

START_TEST(test_kill9)
{
	kill9_run(0);
}
END_TEST

START_TEST(test_kill9_receiver)
{
	kill9_run(1);
}
END_TEST

/* ---- one view: the admin API of any broker ---------------------------------- */

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
data(const struct s2s_json *j)
{
	const struct s2s_json *r =
		s2s_json_array_at(s2s_json_get(j, "responses"), 0);

	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(s2s_json_get(r, "error"));
	return s2s_json_get(r, "data");
}

START_TEST(test_view)
{
	char ca[600], cb[600], path[400], tok[S2S_TOKEN_MAX], err[64];
	struct s2s_client *a, *b;
	struct s2s_key *adm, *kb;
	struct rx rb;
	struct tc *c, *bob;
	struct s2s_json *j;
	const struct s2s_json *d, *arr;

	cluster_start();
	rx_init(&rb);
	make_device("alice", 1, 0, ca, sizeof(ca));
	make_device("bob", 2, 1, cb, sizeof(cb));
	a = client(ca, NULL);
	b = client(cb, &rb);
	setup_pair(a, b);
	send_n(a, "bob", "hello", 3);
	ck_assert(wait_got(&rb, 3, 30));
	s2s_client_destroy(b);  /* bob comes back below as a plain client */

	snprintf(path, sizeof(path), "%s/cs.admin.key", shared);
	ck_assert_int_eq(s2s_key_load_private(path, &adm), S2S_OK);
	/* tokens are bound to the client id and used once (auth.c) */
	ck_assert_int_eq(s2s_token_make_for(adm, "s2s-admin", "ctl",
					    (uint64_t)time(NULL) + 120, tok),
			 S2S_OK);
	s2s_key_destroy(adm);
	ck_assert_int_eq(tc_connect(&c, cc[2].port, "ctl", "s2s-admin", tok,
				    5), 0);
	ck_assert_int_eq(tc_subscribe(c, "$CONTROL/s2s/v1/response", 1), 1);
	/* the pair was made through brokers 0 and 1 */
	j = admin(c, "listPairs", NULL, NULL);
	arr = s2s_json_get(data(j), "pairs");
	ck_assert_uint_eq(s2s_json_array_size(arr), 1);
	ck_assert_str_eq(s2s_json_string_value(s2s_json_get(
		s2s_json_array_at(arr, 0), "pair")), "alice~bob");
	s2s_json_free(j);
	/* the cluster's counters: three brokers, the packages of b0. The
	 * view is eventually consistent: each broker writes its row every
	 * 2 s and republishes $SYS at most every stats_interval (1 s here),
	 * so a reader sees a package counted within about 3 s; allow 60 s
	 * on a loaded machine. */
	{
		double end = now_s() + 60;
		int64_t brokers = -1, acc = -1;
		long sys_b = -1, sys_acc = -1;

		while (now_s() < end) {
			j = admin(c, "getStatistics", NULL, NULL);
			d = s2s_json_get(s2s_json_get(data(j), "cluster"),
					 "total");
			ck_assert_ptr_nonnull(d);
			ck_assert_int_eq(s2s_json_get_int(d, "brokers", false,
							  0, 0, 100, &brokers,
							  err, sizeof(err)),
					 S2S_OK);
			ck_assert_int_eq(s2s_json_get_int(d, "accepted", false,
							  0, 0, INT64_MAX,
							  &acc, err,
							  sizeof(err)),
					 S2S_OK);
			s2s_json_free(j);
			sys_b = sys_value(2, "cluster/brokers");
			sys_acc = sys_value(2, "cluster/packages/accepted");
			if (brokers == NB && acc >= 3 && sys_b == NB &&
			    sys_acc >= 3)
				break;
			usleep(250000);
		}
		ck_assert_int_eq(brokers, NB);
		ck_assert_int_ge(acc, 3);
		ck_assert_int_eq(sys_b, NB);
		ck_assert_int_ge(sys_acc, 3);
	}

	/* bob on broker 1; revoked on broker 2; gone from broker 1 */
	snprintf(path, sizeof(path), "%s/bob/bob.key", tmpdir);
	ck_assert_int_eq(s2s_key_load_private(path, &kb), S2S_OK);
	ck_assert_int_eq(s2s_token_make(kb, "bob", (uint64_t)time(NULL) + 120,
					tok), S2S_OK);
	ck_assert_int_eq(tc_connect(&bob, cc[1].port, "bob", "bob", tok, 5),
			 0);
	/* a fresh token below: the refusal must be the revocation, not a
	 * replay of this one (used tokens are shared by the brokers) */
	ck_assert_int_eq(s2s_token_make(kb, "bob", (uint64_t)time(NULL) + 120,
					tok), S2S_OK);
	s2s_key_destroy(kb);
	j = admin(c, "removeDevice", "bob", NULL);
	(void)data(j);
	s2s_json_free(j);
	ck_assert_msg(tc_wait_disconnect(bob, 30000), "bob is still connected "
		      "to broker 1 after his revocation on broker 2");
	tc_close(bob);
	ck_assert_int_ne(tc_connect(&bob, cc[0].port, "bob", "bob", tok, 5),
			 0);
	printf("cluster: broker 2's admin API lists the pair made on b0/b1, "
	       "counts %d brokers; bob revoked on b2 was disconnected from "
	       "b1\n", NB);
	tc_close(c);
	s2s_client_destroy(a);
}
END_TEST

/* ---- QoS 2 copies are routed to the receiver's broker once ------------------ */

/* A raw MQTT 5 client (every message id and flag under the test's control). */
struct raw {
	int fd;
};

static void
raw_send(struct raw *r, uint8_t first, const uint8_t *body, size_t n)
{
	uint8_t hdr[5];
	size_t h = 0, left = n;

	hdr[h++] = first;
	do {
		hdr[h] = (uint8_t)(left % 128);
		left /= 128;
		if (left)
			hdr[h] |= 0x80;
		h++;
	} while (left);
	ck_assert(write(r->fd, hdr, h) == (ssize_t)h);
	ck_assert(write(r->fd, body, n) == (ssize_t)n);
}

static bool
raw_read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (poll(&pf, 1, TC_TIMEOUT_MS) != 1)
			return false;
		k = read(fd, p, n);
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* The next packet's first byte (body in buf), -1 on timeout or EOF. */
static int
raw_read(struct raw *r, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t first, c;
	size_t n = 0, mul = 1;

	if (!raw_read_full(r->fd, &first, 1))
		return -1;
	do {
		if (!raw_read_full(r->fd, &c, 1))
			return -1;
		n += (c & 0x7f) * mul;
		mul *= 128;
	} while (c & 0x80);
	ck_assert_uint_le(n, cap);
	if (!raw_read_full(r->fd, buf, n))
		return -1;
	*len = n;
	return first;
}

static void
put_str(uint8_t *b, size_t *n, const char *s)
{
	size_t l = strlen(s);

	b[(*n)++] = (uint8_t)(l >> 8);
	b[(*n)++] = (uint8_t)l;
	memcpy(b + *n, s, l);
	*n += l;
}

/* MQTT 5 CONNECT (clean start) as id with a token; the CONNACK reason. */
static int
raw_connect5(struct raw *r, int port, const char *id, const char *pw)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	uint8_t b[1024];
	size_t n = 0, len;
	int first;

	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->fd, 0);
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(r->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	put_str(b, &n, "MQTT");
	b[n++] = 5;
	b[n++] = 0x02 | 0x80 | 0x40;    /* clean start, user, password */
	b[n++] = 0;
	b[n++] = 60;                    /* keepalive */
	b[n++] = 0;                     /* no properties */
	put_str(b, &n, id);
	put_str(b, &n, id);
	put_str(b, &n, pw);
	raw_send(r, 0x10, b, n);
	first = raw_read(r, b, sizeof(b), &len);
	if (first != 0x20 || len < 2)
		return -1;
	return b[1];
}

static void
raw_publish2(struct raw *r, const char *topic, const uint8_t *p, size_t n,
	     unsigned mid)
{
	uint8_t *b = malloc(n + strlen(topic) + 8);
	size_t k = 0;

	ck_assert_ptr_nonnull(b);
	put_str(b, &k, topic);
	b[k++] = (uint8_t)(mid >> 8);
	b[k++] = (uint8_t)mid;
	b[k++] = 0;                     /* no properties */
	memcpy(b + k, p, n);
	raw_send(r, 0x34, b, k + n);    /* QoS 2, no DUP */
	free(b);
}

/* The reason code of the next ack of type want for mid, -1 if none. */
static int
raw_ack(struct raw *r, int want, unsigned mid)
{
	uint8_t buf[256];
	size_t len;
	int first;

	for (;;) {
		first = raw_read(r, buf, sizeof(buf), &len);
		if (first < 0)
			return -1;
		if ((first & 0xf0) == want && len >= 2 &&
		    (unsigned)(buf[0] << 8 | buf[1]) == mid)
			return len > 2 ? buf[2] : 0;
	}
}

static void
raw_pubrel(struct raw *r, unsigned mid)
{
	uint8_t b[2] = { (uint8_t)(mid >> 8), (uint8_t)mid };

	raw_send(r, 0x62, b, 2);
}

static void
device_token(const char *name, char tok[S2S_TOKEN_MAX])
{
	char path[600];
	struct s2s_key *k;

	snprintf(path, sizeof(path), "%s/%s/%s.key", tmpdir, name, name);
	ck_assert_int_eq(s2s_key_load_private(path, &k), S2S_OK);
	ck_assert_int_eq(s2s_token_make(k, name, (uint64_t)time(NULL) + 300,
					tok), S2S_OK);
	s2s_key_destroy(k);
}

/*
 * Alice (MQTT 5, on b0) publishes one package at QoS 2, then the same
 * bytes under two more message ids before any PUBREL: the gate passes the
 * copies unverified (its QoS 2 resend rule) and the broker routes none of
 * them to a local reader again (cs_gate_route), but every copy used to be
 * published to bob's broker as well: bob got the package three times.
 */
START_TEST(test_qos2_route_once)
{
	static const char topic[] = "s2s/pair/alice~bob/alice";
	char ca[600], cb[600], tok[S2S_TOKEN_MAX];
	struct s2s_client *a, *b;
	struct s2s_sent_info info;
	struct tc *tb;
	struct tc_msg m;
	struct raw r;

	cluster_start();
	make_device("alice", 1, 0, ca, sizeof(ca));
	make_device("bob", 2, 1, cb, sizeof(cb));
	a = client(ca, NULL);
	b = client(cb, NULL);
	setup_pair(a, b);
	memset(&info, 0, sizeof(info));
	ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)"q2", 2,
					 S2S_SEND_SEAL_ONLY, &info), S2S_OK);
	ck_assert_ptr_nonnull(info.package);
	s2s_client_destroy(a);
	s2s_client_destroy(b);

	/* bob, as a plain MQTT client on b1, reads alice's topic */
	device_token("bob", tok);
	ck_assert_int_eq(tc_connect(&tb, cc[1].port, "bob", "bob", tok, 5), 0);
	ck_assert_int_eq(tc_subscribe(tb, topic, 1), 1);

	device_token("alice", tok);
	ck_assert_int_eq(raw_connect5(&r, cc[0].port, "alice", tok), 0);
	for (unsigned mid = 7; mid <= 9; mid++) {
		raw_publish2(&r, topic, info.package, info.package_len, mid);
		ck_assert_int_eq(raw_ack(&r, 0x50, mid), 0);
	}
	for (unsigned mid = 7; mid <= 9; mid++) {
		raw_pubrel(&r, mid);
		ck_assert_int_eq(raw_ack(&r, 0x70, mid), 0);
	}
	ck_assert_msg(tc_wait(tb, topic, 60000, &m),
		      "the package never reached bob's broker");
	ck_assert_uint_eq(m.len, info.package_len);
	tc_msg_free(&m);
	/* the copies were routed right behind it (same bridge, in order) */
	if (tc_wait(tb, topic, 3000, &m)) {
		tc_msg_free(&m);
		ck_abort_msg("bob got a QoS 2 copy a second time (routed "
			     "again to his broker)");
	}
	close(r.fd);
	tc_close(tb);
	s2s_free(info.package);
}
END_TEST

/* ---- failover past a broker that takes the connection and never answers ---- */

/*
 * The device's first broker accepts TCP (a listening socket nobody reads:
 * a hung broker, or a host that is up with its broker stuck) and never
 * sends a CONNACK.  After its share of the timeout the device must try
 * the next broker.  Paho was still connecting to the first one then (its
 * own connect timeout had not fired, and a disconnect does not stop a
 * connect in progress): it swallowed the CONNECT to the second broker and
 * reported the first one's failure for it, so a device whose first
 * broker hung never reached the second.
 */
START_TEST(test_failover_silent)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	char dir[400], key[500], sig[500], cfg[600], err[512];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	struct s2s_client *c;
	FILE *f;
	int ls;

	cluster_start();
	ls = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(ls, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(ls, 16), 0);
	ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);

	snprintf(dir, sizeof(dir), "%s/carol", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(key, sizeof(key), "%s/carol", dir);
	ck_assert_int_eq(s2s_key_generate(&k), S2S_OK);
	ck_assert_int_eq(s2s_key_save(k, key), S2S_OK);
	s2s_key_destroy(k);
	snprintf(sig, sizeof(sig), "%s/sig.png", dir);
	ck_assert_int_eq(s2s_bio_siggen(3, 1, &img), S2S_OK);
	ck_assert_int_eq(s2s_image_write_file(&img, sig, 6), S2S_OK);
	s2s_image_free(&img);
	snprintf(cfg, sizeof(cfg), "%s/device.json", dir);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "{\"broker\":[\"tcp://127.0.0.1:%d\",\"tcp://127.0.0.1:%d\"],"
		"\"id\":\"carol\",\"key\":\"%s.key\",\"cs_key\":\"%s/cs.pub\","
		"\"signature\":\"%s\",\"state_dir\":\"state\",\"covers\":"
		"\"builtin\",\"state_fsync\":false,\"keepalive\":5,"
		"\"timeouts\":{\"connect\":20,\"pair\":20,\"session\":20,"
		"\"fetch\":5}}\n", ntohs(a.sin_port), cc[0].port, key, shared,
		sig);
	fclose(f);
	ck_assert_msg(s2s_client_create(cfg, &c, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	ck_assert_int_eq(s2s_client_connect(c, -1), S2S_OK);
	ck_assert(s2s_client_connected(c));
	s2s_client_destroy(c);
	close(ls);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("cluster");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 300);
	/* S2S_CLUSTER_TEST=kill9 runs one test (debugging) */
	const char *only = getenv("S2S_CLUSTER_TEST");
#define ADD(t) \
	if (!only || strcmp(only, #t) == 0) \
		tcase_add_test(tc, test_##t)
	ADD(config_tls);
	ADD(cross);
	ADD(trust);
	ADD(kill9);
	ADD(kill9_receiver);
	ADD(view);
	ADD(qos2_route_once);
	ADD(failover_silent);
#undef ADD
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (!bh_plugin_path() || !pgh_available()) {
		fprintf(stderr, "cluster: %s: skipped\n", !bh_plugin_path() ?
			"S2S_PLUGIN unset" : "no PostgreSQL binaries");
		return 77;
	}
	sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	s2s_crypto_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
