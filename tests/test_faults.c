/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_faults.c - crash and loss, through libs2s-client (two devices in
 * this process) and a real Mosquitto with the s2s plugin
 * (tests/broker_harness.h):
 *
 *   kill9     the broker is killed with SIGKILL in the middle of a load
 *             run and restarted on the same store: every package the CS
 *             acknowledged (PUBACK) is in the store, and both devices carry
 *             on by themselves: every acknowledged message reaches the
 *             receiver exactly once, and messages sent after the restart
 *             flow.
 *   lossy     a small TCP proxy between the broker and the receiver drops,
 *             duplicates and reorders the PUBLISH packets of the pair
 *             topic (both profiles): the receiver still gets every
 *             message exactly once and in order, both chains end at the
 *             same position, the CS refused nothing, and the receiver
 *             refused only duplicates (replay), never a genuine package.
 *
 * The proxy takes every QoS 1 PUBLISH from the broker, acknowledges it
 * to the broker itself and hands it to the receiver as QoS 0, so that a
 * "dropped" message is really gone from MQTT's point of view (only the
 * CS store still has it).
 *
 * S2S_TEST_STORE=pg (meson test faults_pg): kill9 (without the torn log
 * tail, which is the embedded store's), lossy and the slow reader with the
 * CS on PostgreSQL (a private server, tests/pg_harness.h): the packages
 * are then counted in the database.
 *
 * Skipped (exit 77) when S2S_PLUGIN is unset or the broker is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
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

#include "broker_harness.h"
#include "check_main.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/proto.h"
#include "seglog.h"

#define MAXSEQ 2048

static struct bh_broker *broker;
static char tmpdir[256];
#ifdef S2S_HAVE_PG
#include <libpq-fe.h>

#include "pg_harness.h"
static struct pgh_server *pg_srv;       /* S2S_TEST_STORE=pg */
static char pg_uri[256];
#endif

static void
teardown(void)
{
	char cmd[300];

	bh_destroy(broker);
	broker = NULL;
	if (tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
		tmpdir[0] = 0;
	}
}

static void
start_opts(const char *const *opts)
{
	ck_assert_msg(bh_start(&broker, &(struct bh_options){
		.plugin = bh_plugin_path(), .plugin_opts = opts }) == 0,
		"broker did not start");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/s2s-faults-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
start(const char *profile)
{
	const char *opts[] = { "enrollment", "open", "profile", profile,
			       NULL, NULL, NULL };

#ifdef S2S_HAVE_PG
	if (pg_srv) {
		char db[48];

		snprintf(db, sizeof(db), "faults_%ld_%d", (long)time(NULL),
			 (int)getpid());
		ck_assert_int_eq(pgh_create_db(pg_srv, db, pg_uri,
					       sizeof(pg_uri)), 0);
		opts[4] = "store";
		opts[5] = pg_uri;
	}
#endif

	ck_assert_msg(bh_start(&broker, &(struct bh_options){
		.plugin = bh_plugin_path(), .plugin_opts = opts }) == 0,
		"broker did not start");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/s2s-faults-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Key, synthetic signature and configuration of a device at port. */
static void
make_device(const char *name, uint32_t user, int port, char *cfg, size_t n)
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
	fprintf(f,
		"{\"broker\":\"tcp://127.0.0.1:%d\",\"id\":\"%s\","
		"\"key\":\"%s.key\",\"cs_key\":\"%s\",\"signature\":\"%s\","
		"\"state_dir\":\"state\",\"covers\":\"builtin\","
		"\"state_fsync\":false,\"keepalive\":5,"
		"\"timeouts\":{\"connect\":10,\"pair\":20,\"session\":20,"
		"\"fetch\":5}}\n",
		port, name, key, bh_path(broker, "cs.pub"), sig);
	fclose(f);
}

/* What a receiving device saw. */
struct rx {
	pthread_mutex_t lock;
	uint64_t t0;                    /* count seen[] in this session only */
	uint64_t last_session;
	unsigned seen[MAXSEQ];
	unsigned got, fetched, in_order_violations;
	uint64_t last_seq;
	unsigned rejects[64];           /* by -err */
	unsigned out_rejects;
	unsigned load[MAXSEQ], after[64];       /* by message number */
};

static void
on_msg(void *ud, const struct s2s_message_info *i, const uint8_t *m, size_t n)
{
	struct rx *r = ud;

	pthread_mutex_lock(&r->lock);
	{
		char t[64];
		int k;

		snprintf(t, sizeof(t), "%.*s", (int)(n < 63 ? n : 63),
			 (const char *)m);
		if (sscanf(t, "load %d", &k) == 1 && k > 0 && k < MAXSEQ)
			r->load[k]++;
		else if (sscanf(t, "after %d", &k) == 1 && k > 0 && k < 64)
			r->after[k]++;
	}
	/* seq numbers start again at 1 in each new session. */
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

static void
on_rej(void *ud, const struct s2s_reject_info *i)
{
	struct rx *r = ud;
	int e = i->err < 0 ? -i->err : i->err;

	pthread_mutex_lock(&r->lock);
	if (i->outgoing)
		r->out_rejects++;
	else
		r->rejects[e < 64 ? e : 63]++;
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

static struct s2s_client *
client(const char *cfg, struct rx *r)
{
	struct s2s_client *c;
	char err[512];

	ck_assert_msg(s2s_client_create(cfg, &c, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	if (r) {
		s2s_client_on_message(c, on_msg, r);
		s2s_client_on_reject(c, on_rej, r);
	}
	return c;
}

/* Register, pair and negotiate alice -> bob. */
static void
setup_pair(struct s2s_client *a, struct s2s_client *b)
{
	ck_assert_int_eq(s2s_client_connect(a, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_register(a, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_register(b, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, 0), S2S_ERR_TIMEOUT);
	ck_assert_int_eq(s2s_client_pair(b, "alice", 0, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_session(a, "bob", -1), S2S_OK);
	ck_assert_int_eq(s2s_client_wait_session(b, "alice", 30000), S2S_OK);
}

static bool
wait_got(struct rx *r, unsigned want, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	while (time(NULL) <= end) {
		if (rx_got(r) >= want)
			return true;
		usleep(20000);
	}
	return false;
}

/* ---- kill -9 under load ------------------------------------------------ */

struct sender {
	struct s2s_client *c;
	int count;
	volatile int acked_n;
	uint64_t acked[MAXSEQ];         /* seqs the CS acknowledged */
	uint64_t session[MAXSEQ];
	int errors;
	int errs[64];                   /* by -err */
	volatile int done;
};

static void *
send_main(void *arg)
{
	struct sender *s = arg;

	for (int i = 0; i < s->count; i++) {
		struct s2s_sent_info info;
		char msg[64];
		enum s2s_err e;

		snprintf(msg, sizeof(msg), "load %d", i + 1);
		memset(&info, 0, sizeof(info));
		e = s2s_client_send(s->c, "bob", (const uint8_t *)msg,
				    strlen(msg), S2S_SEND_WAIT_ACK, &info);
		if (e == S2S_OK) {
			if (s->acked_n < MAXSEQ) {
				s->acked[s->acked_n] = info.seq;
				s->session[s->acked_n] = info.session;
			}
			__atomic_add_fetch(&s->acked_n, 1, __ATOMIC_SEQ_CST);
		} else {
			/* broker down: the package stays queued in the MQTT
			 * client (or was refused as a replay after the
			 * restart); wait a little and go on */
			s->errors++;
			s->errs[-e < 64 && -e > 0 ? -e : 63]++;
			usleep(e == S2S_ERR_SESSION ? 100000 : 20000);
		}
	}
	s->done = 1;
	return NULL;
}

/* seqs of alice's stored packages, from the CS store's log on disk */
struct scan {
	uint64_t session;
	bool *have;
	unsigned n;
	uint64_t max_seq;
	unsigned dup;
};

static void
scan_one(void *arg, const struct seglog_rec *r)
{
	struct scan *c = arg;

	if (r->type != SEGLOG_PKG || strcmp(r->sender, "alice") != 0 ||
	    r->session != c->session)
		return;
	if (r->seq < MAXSEQ) {
		if (c->have[r->seq])
			c->dup++;
		c->have[r->seq] = true;
	}
	if (r->seq > c->max_seq)
		c->max_seq = r->seq;
	c->n++;
}

#ifdef S2S_HAVE_PG
/* The same from the PostgreSQL store. */
static void
stored_pg(struct scan *c)
{
	PGconn *db = PQconnectdb(pg_uri);
	PGresult *r;
	char q[160];

	ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
	snprintf(q, sizeof(q), "SELECT seq FROM packages WHERE sender = "
		 "'alice' AND session = %lld", (long long)c->session);
	r = PQexec(db, q);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(r); i++) {
		struct seglog_rec rec;

		memset(&rec, 0, sizeof(rec));
		rec.type = SEGLOG_PKG;
		snprintf(rec.sender, sizeof(rec.sender), "alice");
		rec.session = c->session;
		rec.seq = strtoull(PQgetvalue(r, i, 0), NULL, 10);
		scan_one(c, &rec);
	}
	PQclear(r);
	PQfinish(db);
}
#endif

static unsigned
stored(uint64_t session, bool have[MAXSEQ], uint64_t *max_seq)
{
	struct scan c = { session, have, 0, 0, 0 };
	uint64_t torn = 1;

#ifdef S2S_HAVE_PG
	if (pg_srv) {
		stored_pg(&c);
		ck_assert_uint_eq(c.dup, 0);
		if (max_seq)
			*max_seq = c.max_seq;
		return c.n;
	}
#endif
	ck_assert_int_ge(seglog_scan(bh_path(broker, "s2s.db-log"), scan_one,
				     &c, &torn), 0);
	/* a package is written once (relocation only after retention) */
	ck_assert_uint_eq(c.dup, 0);
	if (max_seq)
		*max_seq = c.max_seq;
	return c.n;
}

/* Newest segment file of the broker's log (path into buf). */
static void
newest_segment(char *buf, size_t n)
{
	char cmd[600];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls -1 '%s'/seg-*.log | tail -n 1",
		 bh_path(broker, "s2s.db-log"));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, (int)n, f));
	pclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

/*
 * A torn last record, as a power loss in the middle of a write leaves it:
 * a valid header announcing more bytes than follow, then garbage.
 */
static void
tear_tail(void)
{
	char path[600];
	uint8_t junk[300];
	FILE *f;

	newest_segment(path, sizeof(path));
	memset(junk, 0xa5, sizeof(junk));
	memcpy(junk, "S2L1\x00\x00\x40\x00\x12\x34\x56\x78", 12);
	f = fopen(path, "ab");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
}

START_TEST(test_kill9)
{
	char ca[600], cb[600];
	struct s2s_client *a, *b;
	struct rx r;
	struct sender *s = calloc(1, sizeof(*s));
	pthread_t th;
	static bool have[MAXSEQ];
	uint64_t t0, t1, max_before = 0, max_after = 0;
	unsigned nstored, lost = 0;
	int before;
	bool torn = _i == 1;

	ck_assert_ptr_nonnull(s);
	memset(&r, 0, sizeof(r));
	memset(have, 0, sizeof(have));
	pthread_mutex_init(&r.lock, NULL);
	start("hardened");
	make_device("alice", 1, bh_port(broker), ca, sizeof(ca));
	make_device("bob", 2, bh_port(broker), cb, sizeof(cb));
	a = client(ca, NULL);
	b = client(cb, &r);
	setup_pair(a, b);
	ck_assert(s2s_client_has_session(a, "bob", &t0));
	pthread_mutex_lock(&r.lock);
	r.t0 = t0;
	pthread_mutex_unlock(&r.lock);

	s->c = a;
	s->count = 300;
	ck_assert_int_eq(pthread_create(&th, NULL, send_main, s), 0);
	while (__atomic_load_n(&s->acked_n, __ATOMIC_SEQ_CST) < 100 &&
	       !s->done)
		usleep(1000);
	before = s->acked_n;
	ck_assert_int_eq(bh_kill9(broker), 0);
	if (torn) {
		/* what the log held when the broker died, then a torn tail */
		bool h[MAXSEQ] = { false };

		(void)stored(t0, h, &max_before);
		tear_tail();
	}
	usleep(500000);
	ck_assert_int_eq(bh_restart(broker), 0);
	if (torn) {
		bool h[MAXSEQ] = { false };
		uint64_t left = 1;

		/* recovery cut the torn record off; chains are those of the
		 * last accepted package: the CS takes max_before + 1 next */
		ck_assert(bh_log_contains(broker, "torn tail"));
		ck_assert_int_ge(seglog_scan(bh_path(broker, "s2s.db-log"),
					     NULL, NULL, &left), 0);
		ck_assert_uint_eq(left, 0);
		(void)stored(t0, h, NULL);
		for (uint64_t q = 1; q <= max_before && q < MAXSEQ; q++)
			ck_assert_msg(h[q], "package %llu lost in recovery",
				      (unsigned long long)q);
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(s2s_client_flush(a, 20000), S2S_OK);

	/* Every acknowledged package is in the store. */
	nstored = stored(t0, have, &max_after);
	/* no hole: the chain went on from the last accepted package */
	for (uint64_t q = 1; q <= max_after && q < MAXSEQ; q++)
		ck_assert_msg(have[q], "seq %llu of session T0 missing from "
			      "the log", (unsigned long long)q);
	if (torn)
		printf("faults: torn tail cut at restart; the log held seq "
		       "1..%llu at the kill and 1..%llu at the end\n",
		       (unsigned long long)max_before,
		       (unsigned long long)max_after);
	for (int i = 0; i < s->acked_n && i < MAXSEQ; i++)
		if (s->session[i] == t0 && !have[s->acked[i]])
			lost++;
	printf("faults: kill -9 after %d acknowledged packages; %d of %d "
	       "acknowledged in all; %d send errors (", before, s->acked_n,
	       s->count, s->errors);
	for (int e = 1; e < 64; e++)
		if (s->errs[e])
			printf(" %s x%d", s2s_errname(-e), s->errs[e]);
	printf(" ); %u in the store; acknowledged but missing from the "
	       "store: %u\n", nstored, lost);
	ck_assert_uint_eq(lost, 0);

	/* Both carry on by themselves (resume, or renegotiate): 20 more
	 * messages, each retried for up to 60 s in all. */
	{
		double end = (double)time(NULL) + 60;

		for (int i = 1; i <= 20; i++) {
			char msg[32];
			enum s2s_err e;

			snprintf(msg, sizeof(msg), "after %d", i);
			while ((e = s2s_client_send(a, "bob",
						    (const uint8_t *)msg,
						    strlen(msg),
						    S2S_SEND_WAIT_ACK, NULL)) &&
			       time(NULL) < end)
				usleep(100000);
			ck_assert_msg(e == S2S_OK, "alice cannot send after "
				      "the restart: %s (the library does not "
				      "recover by itself)", s2s_errname(e));
		}
	}
	ck_assert(s2s_client_has_session(a, "bob", &t1));

	{
		time_t end = time(NULL) + 60;
		bool all = false;

		while (!all && time(NULL) <= end) {
			all = true;
			pthread_mutex_lock(&r.lock);
			for (int i = 1; i <= 20 && all; i++)
				all = r.after[i] >= 1;
			pthread_mutex_unlock(&r.lock);
			if (!all)
				usleep(50000);
		}
		ck_assert_msg(all, "bob did not get the 20 messages sent after "
			      "the restart");
	}
	pthread_mutex_lock(&r.lock);
	for (int i = 1; i <= 20; i++)
		ck_assert_uint_eq(r.after[i], 1);
	/* every acknowledged load message reached bob exactly once */
	lost = 0;
	for (int i = 0; i < s->acked_n && i < MAXSEQ; i++)
		if (s->session[i] == t0 && r.seen[s->acked[i]] != 1)
			lost++;
	ck_assert_msg(lost == 0, "%u acknowledged messages not delivered "
		      "exactly once", lost);
	ck_assert_uint_eq(r.in_order_violations, 0);
	printf("faults: after the restart both carry on (%s), bob has every "
	       "acknowledged message exactly once (%u recovered from the "
	       "store by FETCH)\n", t1 == t0 ? "same session" :
	       "renegotiated", r.fetched);
	pthread_mutex_unlock(&r.lock);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	pthread_mutex_destroy(&r.lock);
	free(s);
}
END_TEST

/* ---- a lossy link between broker and receiver -------------------------- */

struct proxy {
	int lfd, port, upstream_port;
	pthread_t th;
	volatile int stop;
	unsigned seed;
	int budget;                     /* faulty pair PUBLISHes left */
	unsigned dropped, duplicated, reordered, passed;
};

static bool
write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/* Length of the complete MQTT packet at b (0: need more bytes). */
static size_t
packet_len(const uint8_t *b, size_t n, size_t *hdr)
{
	size_t rl = 0, i = 1;
	unsigned shift = 0;

	while (i < n && i <= 4) {
		rl |= (size_t)(b[i] & 0x7f) << shift;
		shift += 7;
		if (!(b[i++] & 0x80)) {
			*hdr = i;
			return i + rl <= n ? i + rl : 0;
		}
	}
	return 0;
}

static size_t
varint(uint8_t *out, size_t v)
{
	size_t i = 0;

	do {
		out[i] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			out[i] |= 0x80;
		i++;
	} while (v);
	return i;
}

/*
 * One PUBLISH from the broker: acknowledge QoS 1 upstream, rewrite as
 * QoS 0 into out.  *pair: on a pair topic.
 */
static size_t
downgrade(const uint8_t *p, size_t len, size_t hdr, int up, uint8_t *out,
	  bool *pair)
{
	int qos = (p[0] >> 1) & 3;
	size_t tl = (size_t)p[hdr] << 8 | p[hdr + 1], body, o;

	*pair = tl >= 9 && memcmp(p + hdr + 2, "s2s/pair/", 9) == 0;
	if (qos == 0) {
		memcpy(out, p, len);
		return len;
	}
	{
		uint8_t ack[4] = { 0x40, 2, p[hdr + 2 + tl],
				   p[hdr + 2 + tl + 1] };

		(void)write_all(up, ack, sizeof(ack));
	}
	body = len - hdr - 2;
	out[0] = (uint8_t)(p[0] & 0xf1);        /* QoS 0, no DUP */
	o = 1 + varint(out + 1, body);
	memcpy(out + o, p + hdr, 2 + tl);
	memcpy(out + o + 2 + tl, p + hdr + 2 + tl + 2, len - hdr - 2 - tl - 2);
	return o + body;
}

static int
connect_up(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Serve one client connection until either side closes. */
static void
serve(struct proxy *x, int cfd)
{
	int ufd = connect_up(x->upstream_port);
	uint8_t *in = malloc(1 << 20), *out = malloc(1 << 20), *held = NULL;
	size_t in_n = 0, held_n = 0;

	if (ufd < 0 || !in || !out)
		goto done;
	while (!x->stop) {
		struct pollfd p[2] = { { cfd, POLLIN, 0 }, { ufd, POLLIN, 0 } };
		uint8_t buf[65536];
		ssize_t r;

		if (poll(p, 2, 100) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			r = read(cfd, buf, sizeof(buf));
			if (r <= 0 || !write_all(ufd, buf, (size_t)r))
				break;
		}
		if (!p[1].revents)
			continue;
		r = read(ufd, in + in_n, (1 << 20) - in_n);
		if (r <= 0)
			break;
		in_n += (size_t)r;
		for (;;) {
			size_t hdr = 0, len = packet_len(in, in_n, &hdr), olen;
			bool pair;

			if (!len)
				break;
			if ((in[0] >> 4) != 3) {
				if (!write_all(cfd, in, len))
					goto done;
			} else {
				olen = downgrade(in, len, hdr, ufd, out, &pair);
				if (!pair || x->budget <= 0) {
					if (!write_all(cfd, out, olen))
						goto done;
					if (pair && held) {
						(void)write_all(cfd, held,
								held_n);
						free(held);
						held = NULL;
					}
				} else {
					int d = (int)(rand_r(&x->seed) % 10);

					x->budget--;
					if (d == 0) {
						x->dropped++;
					} else if (d == 1) {
						x->duplicated++;
						(void)write_all(cfd, out, olen);
						(void)write_all(cfd, out, olen);
					} else if (d == 2 && !held) {
						x->reordered++;
						held = malloc(olen);
						if (held) {
							memcpy(held, out, olen);
							held_n = olen;
						}
					} else {
						x->passed++;
						(void)write_all(cfd, out, olen);
						if (held) {
							(void)write_all(cfd,
								held, held_n);
							free(held);
							held = NULL;
						}
					}
				}
			}
			memmove(in, in + len, in_n - len);
			in_n -= len;
		}
	}
done:
	free(held);
	free(in);
	free(out);
	if (ufd >= 0)
		close(ufd);
	close(cfd);
}

static void *
proxy_main(void *arg)
{
	struct proxy *x = arg;

	while (!x->stop) {
		struct pollfd p = { x->lfd, POLLIN, 0 };
		int cfd;

		if (poll(&p, 1, 100) <= 0)
			continue;
		cfd = accept(x->lfd, NULL, NULL);
		if (cfd >= 0)
			serve(x, cfd);
	}
	return NULL;
}

static void
proxy_start(struct proxy *x, int upstream, unsigned seed, int budget)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int one = 1;

	memset(x, 0, sizeof(*x));
	x->upstream_port = upstream;
	x->seed = seed;
	x->budget = budget;
	x->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(x->lfd, 0);
	setsockopt(x->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(x->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(x->lfd, 4), 0);
	ck_assert_int_eq(getsockname(x->lfd, (struct sockaddr *)&a, &al), 0);
	x->port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&x->th, NULL, proxy_main, x), 0);
}

static void
proxy_stop(struct proxy *x)
{
	x->stop = 1;
	pthread_join(x->th, NULL);
	close(x->lfd);
}

#define LOSSY_N 120

START_TEST(test_lossy)
{
	const char *profile = _i ? "paper" : "hardened";
	char ca[600], cb[600];
	struct s2s_client *a, *b;
	struct rx r, ra;
	struct proxy x;
	uint64_t sn, rn;
	unsigned other = 0;

	memset(&r, 0, sizeof(r));
	memset(&ra, 0, sizeof(ra));
	pthread_mutex_init(&r.lock, NULL);
	pthread_mutex_init(&ra.lock, NULL);
	start(profile);
	/* faults on the first LOSSY_N - 10 pair messages, then a clean tail
	 * (a loss at the very end is only noticed by the next message) */
	proxy_start(&x, bh_port(broker), 7u + (unsigned)_i, LOSSY_N - 10);
	make_device("alice", 1, bh_port(broker), ca, sizeof(ca));
	make_device("bob", 2, x.port, cb, sizeof(cb));
	a = client(ca, &ra);
	b = client(cb, &r);
	setup_pair(a, b);
	for (int i = 0; i < LOSSY_N; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "lossy %d", i + 1);
		ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)msg,
						 strlen(msg), 0, NULL),
				 S2S_OK);
		usleep(3000);
	}
	ck_assert_int_eq(s2s_client_flush(a, 20000), S2S_OK);
	if (!wait_got(&r, LOSSY_N, 60))
		ck_abort_msg("%s: bob got %u of %d", profile, rx_got(&r),
			     LOSSY_N);
	usleep(300000);         /* late duplicates */
	ck_assert_int_eq(s2s_client_seq(a, "bob", &sn, NULL), S2S_OK);
	ck_assert_int_eq(s2s_client_seq(b, "alice", NULL, &rn), S2S_OK);
	pthread_mutex_lock(&r.lock);
	for (int q = 1; q <= LOSSY_N; q++)
		ck_assert_msg(r.seen[q] == 1, "seq %d seen %u times", q,
			      r.seen[q]);
	for (int e = 0; e < 64; e++)
		if (e != -S2S_ERR_REPLAY && e != S2S_ERR_REPLAY)
			other += r.rejects[e];
	printf("faults: %s lossy link: %u dropped, %u duplicated, %u "
	       "reordered, %u passed of %d; bob got %u exactly once and in "
	       "order (%u fetched from the store), refused %u duplicates, "
	       "%u others; CS refused %u of alice's\n", profile, x.dropped,
	       x.duplicated, x.reordered, x.passed, LOSSY_N - 10, r.got,
	       r.fetched, r.rejects[S2S_ERR_REPLAY < 0 ? -S2S_ERR_REPLAY :
				    S2S_ERR_REPLAY], other, ra.out_rejects);
	ck_assert_uint_eq(r.in_order_violations, 0);
	ck_assert_uint_eq(other, 0);            /* no false rejection */
	pthread_mutex_unlock(&r.lock);
	ck_assert_uint_eq(ra.out_rejects, 0);
	ck_assert_uint_eq(sn, LOSSY_N + 1);     /* chains in step */
	ck_assert_uint_eq(rn, LOSSY_N + 1);
	ck_assert_uint_gt(x.dropped, 0);
	ck_assert_uint_gt(x.duplicated, 0);
	ck_assert_uint_gt(x.reordered, 0);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	proxy_stop(&x);
	pthread_mutex_destroy(&r.lock);
	pthread_mutex_destroy(&ra.lock);
}
END_TEST

/* ---- a FETCH client that does not read (issue 10, class 3) -------------- */

/* MQTT 3.1.1 by hand on a socket that is never read after SUBACK. */
static void
raw_put_str(uint8_t *b, size_t *o, const char *str, size_t n)
{
	b[(*o)++] = (uint8_t)(n >> 8);
	b[(*o)++] = (uint8_t)n;
	memcpy(b + *o, str, n);
	*o += n;
}

static void
raw_send(int fd, uint8_t type, const uint8_t *body, size_t n)
{
	uint8_t h[5];
	size_t hl = 0, x = n;

	h[hl++] = type;
	do {
		h[hl] = (uint8_t)(x & 0x7f);
		x >>= 7;
		if (x)
			h[hl] |= 0x80;
		hl++;
	} while (x);
	ck_assert(write_all(fd, h, hl));
	ck_assert(write_all(fd, body, n));
}

static void
raw_read(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);

		ck_assert_int_gt(k, 0);
		got += (size_t)k;
	}
}

static int
raw_device(int port, const char *id, const char *token)
{
	struct sockaddr_in sa;
	uint8_t b[1024], ack[5];
	size_t o = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
	char topic[128];

	ck_assert_int_ge(fd, 0);
	/* a small window: the broker keeps what the client does not take */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	raw_put_str(b, &o, "MQTT", 4);
	b[o++] = 4;                     /* 3.1.1 */
	b[o++] = 0xc2;                  /* user, password, clean session */
	b[o++] = 0;
	b[o++] = 120;                   /* keepalive */
	raw_put_str(b, &o, id, strlen(id));
	raw_put_str(b, &o, id, strlen(id));
	raw_put_str(b, &o, token, strlen(token));
	raw_send(fd, 0x10, b, o);
	raw_read(fd, ack, 4);
	ck_assert_int_eq(ack[0], 0x20);
	ck_assert_int_eq(ack[3], 0);    /* accepted */
	o = 0;
	b[o++] = 0;
	b[o++] = 1;                     /* packet id */
	snprintf(topic, sizeof(topic), "s2s/inbox/%s", id);
	raw_put_str(b, &o, topic, strlen(topic));
	b[o++] = 0;                     /* QoS 0 */
	raw_send(fd, 0x82, b, o);
	raw_read(fd, ack, 5);
	ck_assert_int_eq(ack[0], 0x90);
	ck_assert_int_eq(ack[4], 0);
	return fd;
}

static void
raw_publish(int fd, const char *topic, const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n + strlen(topic) + 2);
	size_t o = 0;

	ck_assert_ptr_nonnull(b);
	raw_put_str(b, &o, topic, strlen(topic));
	memcpy(b + o, p, n);
	raw_send(fd, 0x30, b, o + n);
	free(b);
}

/* Is the ASan runtime loaded into this process? */
static bool
under_sanitizer(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "/libasan.so") != NULL;
	fclose(f);
	return found;
}

static long
rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * bob's stored history is fetched again and again by a client with bob's
 * token that never reads its socket: the broker grows by at most the
 * per-client budget; then the genuine bob catches up on everything with
 * paced replies (several FETCHes, the library goes on by itself).
 */
START_TEST(test_fetch_slow_reader)
{
	static const char *const opts[] = {
		"enrollment", "open", "fetch_reply_bytes", "262144",
		"fetch_client_bytes", "1048576", NULL };
	char ca[600], cb[600], path[700], tok[S2S_TOKEN_MAX];
	struct s2s_client *a, *b;
	struct s2s_key *k = NULL;
	struct rx r;
	uint64_t t0;
	long rss0, rss1;
	int fd, n = 100;
	bool all;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	start_opts(opts);
	make_device("alice", 1, bh_port(broker), ca, sizeof(ca));
	make_device("bob", 2, bh_port(broker), cb, sizeof(cb));
	a = client(ca, NULL);
	b = client(cb, &r);
	setup_pair(a, b);
	ck_assert(s2s_client_has_session(a, "bob", &t0));
	s2s_client_destroy(b);          /* bob is away */
	for (int i = 1; i <= n; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "load %d", i);
		ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)msg,
						 strlen(msg),
						 S2S_SEND_WAIT_ACK, NULL),
				 S2S_OK);
	}

	/* someone with bob's token asks for it all, 60 times, not reading */
	snprintf(path, sizeof(path), "%s/bob/bob.key", tmpdir);
	ck_assert_int_eq(s2s_key_load_private(path, &k), S2S_OK);
	ck_assert_int_eq(s2s_token_make(k, "bob", (uint64_t)time(NULL) + 300,
					tok), S2S_OK);
	s2s_key_destroy(k);
	fd = raw_device(bh_port(broker), "bob", tok);
	usleep(300000);
	rss0 = rss_kb(bh_pid(broker));
	for (int i = 0; i < 60; i++) {
		struct s2s_msg m;
		uint8_t *buf;
		size_t len;

		s2s_msg_init(&m, S2S_MSG_FETCH, 100 + (uint64_t)i);
		snprintf(m.peer, sizeof(m.peer), "alice");
		snprintf(m.sender, sizeof(m.sender), "alice");
		m.session = t0;
		m.from_seq = 1;
		m.to_seq = 64;
		m.has_ack = i % 2 == 0;         /* v1.1 and v1 alike */
		ck_assert_int_eq(s2s_msg_encode(&m, NULL, NULL, &buf, &len),
				 S2S_OK);
		raw_publish(fd, "s2s/req/bob", buf, len);
		free(buf);
		s2s_msg_clear(&m);
	}
	usleep(1500000);
	rss1 = rss_kb(bh_pid(broker));
	printf("faults: 60 FETCHes of ~1 MB each by a client that does not "
	       "read: broker RSS %ld kB -> %ld kB (+%ld kB; budget 1024 kB "
	       "per client)\n", rss0, rss1, rss1 - rss0);
	ck_assert_int_gt(rss0, 0);
	/* ASan keeps freed memory in quarantine: RSS says nothing there */
	if (!under_sanitizer())
		ck_assert_msg(rss1 - rss0 < 6 * 1024, "the broker grew by %ld "
			      "kB", rss1 - rss0);
	ck_assert(bh_running(broker));
	close(fd);

	/* the genuine bob catches up through paced replies */
	b = client(cb, &r);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	{
		time_t end = time(NULL) + 60;

		do {
			all = true;
			pthread_mutex_lock(&r.lock);
			for (int i = 1; i <= n && all; i++)
				all = r.load[i] == 1;
			pthread_mutex_unlock(&r.lock);
			if (!all)
				usleep(50000);
		} while (!all && time(NULL) <= end);
	}
	pthread_mutex_lock(&r.lock);
	printf("faults: bob caught up on %u messages, %u of them by FETCH "
	       "(replies of at most 256 kB)\n", r.got, r.fetched);
	pthread_mutex_unlock(&r.lock);
	ck_assert_msg(all, "bob did not catch up on every message");
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	pthread_mutex_destroy(&r.lock);
}
END_TEST

static Suite *
make_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 240);
	/* 1: a torn tail of the embedded store's log */
#ifdef S2S_HAVE_PG
	tcase_add_loop_test(tc, test_kill9, 0, pg_srv ? 1 : 2);
#else
	tcase_add_loop_test(tc, test_kill9, 0, 2);
#endif
	tcase_add_loop_test(tc, test_lossy, 0, 2);
	tcase_add_test(tc, test_fetch_slow_reader);
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
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("S2S_TEST_STORE") && strcmp(getenv("S2S_TEST_STORE"),
					       "pg") == 0) {
#ifdef S2S_HAVE_PG
		int r = pgh_start(&pg_srv);

		if (r != 0) {
			pgh_destroy(pg_srv);
			fprintf(stderr, "%s\n", r == PGH_SKIP ? "no PostgreSQL "
				"binaries: skipped" : "PostgreSQL did not start");
			return r == PGH_SKIP ? 77 : EXIT_FAILURE;
		}
#else
		fprintf(stderr, "built without libpq: skipped\n");
		return 77;
#endif
	}
	sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
#ifdef S2S_HAVE_PG
	pgh_destroy(pg_srv);
#endif
	s2s_crypto_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
