/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_client_e2e.c - the device library end to end through a real
 * Mosquitto with the s2s plugin (client/tool/broker_run.c starts it), with
 * two real device processes (the s2s tool and tests/e2e_device):
 *
 *   profiles     both profiles, both directions at the same time
 *   restart      the receiver stopped and restarted mid-stream: every
 *                message exactly once
 *   drop_fetch   messages lost between broker and receiver (its MQTT
 *                session expired while it was away) come back from the
 *                CS store through FETCH, in order, ratchet replayed
 *   duplicates   a replayed package is refused by the CS and by the
 *                receiver; a tampered one too; the chains survive
 *   stale_rx     the receive path's deferred state write lands by itself;
 *                a state with the receive chain behind (a crash before
 *                that write) gets those packages again from the CS; the
 *                sender's files after a crash give its send chain from
 *                the journal
 *   revoked      a device removed by the admin is cut off
 *   sockets      in process: after registration the token connection
 *                has replaced the anonymous one (one socket per device,
 *                while another device's connection is open), and every
 *                socket to the broker has TCP_NODELAY
 *
 * S2S_TEST_STORE=pg (meson test client_e2e_pg): the same with the CS on
 * the PostgreSQL backend (a private server, tests/pg_harness.h, a fresh
 * database per test), plus
 *   pg_restart   PostgreSQL stopped and started under traffic: the broker
 *                degrades (logged, packages refused and counted), stays
 *                up and recovers by itself; the devices talk again
 *
 * Skipped (exit 77) when mosquitto or the plugin is missing (pg: or the
 * PostgreSQL binaries).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_run.h"
#include "check_main.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "diag.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/package.h"

static struct broker_run B;
#ifdef S2S_HAVE_PG
#include "pg_harness.h"
static struct pgh_server *pg_srv;       /* S2S_TEST_STORE=pg */
#endif

static const char *
tool(void)
{
	return tests_env("S2S_TOOL", "client/s2s");
}

static const char *
device_prog(void)
{
	static char p[1024];

	snprintf(p, sizeof(p), "%s/tests/e2e_device",
		 tests_env("S2S_BUILDDIR", "."));
	return p;
}

/* A failed check ends the test process with exit(): stop the broker. */
static void
at_exit(void)
{
	broker_cleanup(&B);
}

static void
start_broker(const char *profile)
{
	char err[2048], extra[512] = "";

#ifdef S2S_HAVE_PG
	if (pg_srv) {
		char db[32], uri[256];

		/* a fresh database per test (the last plugin_opt_store wins) */
		snprintf(db, sizeof(db), "e2e_%ld_%d", (long)time(NULL),
			 (int)getpid());
		ck_assert_int_eq(pgh_create_db(pg_srv, db, uri, sizeof(uri)),
				 0);
		snprintf(extra, sizeof(extra), "plugin_opt_store %s\n", uri);
	}
#endif
	ck_assert_msg(broker_start(&B, profile, extra[0] ? extra : NULL, err,
				   sizeof(err)), "%s", err);
	atexit(at_exit);
}

static void
teardown(void)
{
	broker_cleanup(&B);
}

/* Make a device: key, synthetic signature, configuration (extra: more
 * JSON members, starting with a comma). */
static void
make_device(const char *name, uint32_t user, const char *extra, char *cfg,
	    size_t cfg_len)
{
	char dir[512], key[600], sig[600];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%s", B.dir, name);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(key, sizeof(key), "%s/%s", dir, name);
	ck_assert_int_eq(s2s_key_generate(&k), S2S_OK);
	ck_assert_int_eq(s2s_key_save(k, key), S2S_OK);
	s2s_key_destroy(k);
	snprintf(sig, sizeof(sig), "%s/sig.png", dir);
	ck_assert_int_eq(s2s_bio_siggen(user, 1, &img), S2S_OK);
	ck_assert_int_eq(s2s_image_write_file(&img, sig, 6), S2S_OK);
	s2s_image_free(&img);
	snprintf(cfg, cfg_len, "%s/device.json", dir);
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\"broker\":\"%s\",\"id\":\"%s\",\"key\":\"%s.key\","
		"\"cs_key\":\"%s\",\"signature\":\"%s\",\"state_dir\":"
		"\"state\",\"covers\":\"builtin\",\"state_fsync\":false,"
		"\"timeouts\":{\"connect\":10,\"pair\":20,\"session\":20,"
		"\"fetch\":5}%s}\n",
		B.uri, name, key, B.cs_pub, sig, extra ? extra : "");
	fclose(f);
}

/* Run argv to completion; stdout+stderr into out (may be NULL). */
static int
run(char *const argv[], char *out, size_t out_len, int timeout_s)
{
	char path[600];
	pid_t pid;
	int st, fd;
	time_t end = time(NULL) + timeout_s;

	snprintf(path, sizeof(path), "%s/run.out", B.dir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (time(NULL) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(10000);
	}
	if (out) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(out, 1, out_len - 1, f) : 0;

		out[n] = '\0';
		if (f)
			fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start argv in the background, output to file. */
static pid_t
spawn(char *const argv[], const char *file)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int
reap(pid_t pid, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (time(NULL) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Count "RECV <seq> ..." lines of file: seen[seq]++, *fetched counts. */
static unsigned
read_recv(const char *file, unsigned seen[], unsigned max, unsigned *fetched,
	  unsigned *rejects)
{
	FILE *f = fopen(file, "r");
	char line[512];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long seq;
		int fe;

		if (sscanf(line, "RECV %llu %d", &seq, &fe) == 2) {
			if (seq < max)
				seen[seq]++;
			if (fe && fetched)
				(*fetched)++;
			n++;
		} else if (!strncmp(line, "REJECT", 6) && rejects) {
			(*rejects)++;
		}
	}
	fclose(f);
	return n;
}

/* Wait until file has a line starting with what. */
static bool
wait_line(const char *file, const char *what, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;
	char line[512];

	while (time(NULL) <= end) {
		FILE *f = fopen(file, "r");
		bool found = false;

		while (f && !found && fgets(line, sizeof(line), f))
			found = !strncmp(line, what, strlen(what));
		if (f)
			fclose(f);
		if (found)
			return true;
		usleep(20000);
	}
	return false;
}

static void
cat_file(const char *file)
{
	char buf[4096];
	FILE *f = fopen(file, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	buf[n] = '\0';
	if (f)
		fclose(f);
	fprintf(stderr, "---- %s\n%s\n", file, buf);
}

/* Register both devices and pair them, with the s2s tool. */
static void
enrol_pair(const char *ca, const char *cb)
{
	char out[4096];
	char *reg_a[] = { (char *)tool(), "register", "--config", (char *)ca,
			  NULL };
	char *reg_b[] = { (char *)tool(), "register", "--config", (char *)cb,
			  NULL };
	char *pair_a[] = { (char *)tool(), "pair", "bob", "--no-wait",
			   "--config", (char *)ca, NULL };
	char *pair_b[] = { (char *)tool(), "pair", "alice", "--config",
			   (char *)cb, NULL };

	ck_assert_msg(run(reg_a, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(run(reg_b, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(run(pair_a, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(run(pair_b, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "paired bob with alice"));
}

/* ---- Both profiles, both directions at once ---------------------------- */

START_TEST(test_profiles)
{
	const char *profile = _i ? "paper" : "hardened";
	char ca[700], cb[700], fa[700], fb[700];
	unsigned seen_a[64] = { 0 }, seen_b[64] = { 0 }, rej = 0;
	pid_t pa, pb;
	int sa, sb;

	start_broker(profile);
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	snprintf(fa, sizeof(fa), "%s/alice.out", B.dir);
	snprintf(fb, sizeof(fb), "%s/bob.out", B.dir);
	{
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "30", "--expect", "30", "--timeout",
			       "60", "--tag", "from-alice", NULL };
		char *bv[] = { (char *)device_prog(), cb, "alice", "--send",
			       "30", "--expect", "30", "--timeout", "60",
			       "--tag", "from-bob", NULL };

		pb = spawn(bv, fb);
		pa = spawn(av, fa);
	}
	sa = reap(pa, 90);
	sb = reap(pb, 90);
	if (sa || sb) {
		cat_file(fa);
		cat_file(fb);
	}
	ck_assert_int_eq(sa, 0);
	ck_assert_int_eq(sb, 0);
	ck_assert_uint_eq(read_recv(fa, seen_a, 64, NULL, &rej), 30);
	ck_assert_uint_eq(read_recv(fb, seen_b, 64, NULL, &rej), 30);
	for (int s = 1; s <= 30; s++) {
		ck_assert_uint_eq(seen_a[s], 1);
		ck_assert_uint_eq(seen_b[s], 1);
	}
	ck_assert_uint_eq(rej, 0);
}
END_TEST

/* ---- Receiver restarted mid-stream --------------------------------------- */

START_TEST(test_restart)
{
	char ca[700], cb[700], fa[700], fb1[700], fb2[700];
	unsigned seen[64] = { 0 }, n1, n2;
	char expect2[16];
	pid_t pa, pb;
	int st;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	snprintf(fa, sizeof(fa), "%s/alice.out", B.dir);
	snprintf(fb1, sizeof(fb1), "%s/bob1.out", B.dir);
	snprintf(fb2, sizeof(fb2), "%s/bob2.out", B.dir);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "40", "--timeout", "60", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "40", "--interval", "60",
			       "--timeout", "60", NULL };

		pb = spawn(bv, fb1);
		pa = spawn(av, fa);
		/* Stop bob once he has a few messages. */
		for (int i = 0; i < 3000; i++) {
			memset(seen, 0, sizeof(seen));
			if (read_recv(fb1, seen, 64, NULL, NULL) >= 8)
				break;
			usleep(10000);
		}
		kill(pb, SIGTERM);
		st = reap(pb, 30);
		ck_assert_int_eq(st, 3);
	}
	memset(seen, 0, sizeof(seen));
	n1 = read_recv(fb1, seen, 64, NULL, NULL);
	ck_assert_uint_ge(n1, 8);
	ck_assert_uint_lt(n1, 40);
	usleep(500000);     /* alice goes on meanwhile */
	snprintf(expect2, sizeof(expect2), "%u", 40 - n1);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       expect2, "--timeout", "60", NULL };

		pb = spawn(bv, fb2);
	}
	st = reap(pb, 90);
	if (st)
		cat_file(fb2);
	ck_assert_int_eq(st, 0);
	ck_assert_int_eq(reap(pa, 60), 0);
	n2 = read_recv(fb2, seen, 64, NULL, NULL);
	ck_assert_uint_eq(n1 + n2, 40);
	for (int s = 1; s <= 40; s++)
		ck_assert_msg(seen[s] == 1, "seq %d seen %u times", s, seen[s]);
}
END_TEST

/* ---- Dropped between broker and receiver, recovered by FETCH --------- */

START_TEST(test_drop_fetch)
{
	char ca[700], cb[700], f[700];
	unsigned seen[64] = { 0 }, fetched = 0, n;
	pid_t pa, pb;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	/* No MQTT session kept for bob while he is away, and no catch-up at
	 * connect: only the gap can bring the lost packages back. */
	make_device("bob", 2, ",\"session_expiry\":0,\"fetch_on_connect\":false",
		    cb, sizeof(cb));
	enrol_pair(ca, cb);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "5", "--timeout", "60", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "5", "--timeout", "60", NULL };

		snprintf(f, sizeof(f), "%s/bob1.out", B.dir);
		pb = spawn(bv, f);
		/* Bob keeps no MQTT session: he must be online and subscribed
		 * before alice starts the negotiation, or he misses step 1. */
		ck_assert(wait_line(f, "READY", 30));
		pa = spawn(av, "/dev/null");
		ck_assert_int_eq(reap(pa, 60), 0);
		ck_assert_int_eq(reap(pb, 60), 0);
	}
	/* Bob is away: these 10 never reach him through the broker. */
	{
		char *av[] = { (char *)device_prog(), ca, "bob", "--send", "10",
			       "--timeout", "60", "--tag", "away", NULL };
		char fa[700];

		snprintf(fa, sizeof(fa), "%s/alice2.out", B.dir);
		pa = spawn(av, fa);
		if (reap(pa, 60) != 0) {
			cat_file(fa);
			ck_abort_msg("alice could not send while bob was away");
		}
	}
	snprintf(f, sizeof(f), "%s/bob2.out", B.dir);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "15", "--timeout", "60", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--send", "5",
			       "--timeout", "60", "--tag", "back", NULL };

		pb = spawn(bv, f);
		ck_assert(wait_line(f, "READY", 30));
		pa = spawn(av, "/dev/null");
		ck_assert_int_eq(reap(pa, 60), 0);
		if (reap(pb, 60) != 0) {
			cat_file(f);
			ck_abort_msg("bob did not get 15 messages");
		}
	}
	n = read_recv(f, seen, 64, &fetched, NULL);
	ck_assert_uint_eq(n, 15);
	for (int s = 6; s <= 20; s++)
		ck_assert_msg(seen[s] == 1, "seq %d seen %u times", s, seen[s]);
	ck_assert_uint_eq(fetched, 10);
}
END_TEST

/* ---- A receiver that lost its state recovers on its own ------------------ */

START_TEST(test_lost_state)
{
	char ca[700], cb[700], fa[700], fb1[700], fb2[700], cmd[800];
	unsigned seen[128] = { 0 };
	FILE *f;
	char line[512];
	int last = 0, after = 0;
	pid_t pa, pb;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	snprintf(fa, sizeof(fa), "%s/alice.out", B.dir);
	snprintf(fb1, sizeof(fb1), "%s/bob1.out", B.dir);
	snprintf(fb2, sizeof(fb2), "%s/bob2.out", B.dir);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "5", "--timeout", "60", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "60", "--interval", "150",
			       "--timeout", "90", "--tag", "m", NULL };

		pb = spawn(bv, fb1);
		ck_assert(wait_line(fb1, "READY", 30));
		pa = spawn(av, fa);
		ck_assert_int_eq(reap(pb, 60), 0);
	}
	/* Bob loses everything but his key and configuration. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/bob/state'", B.dir);
	ck_assert_int_eq(system(cmd), 0);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "8", "--timeout", "60", NULL };

		pb = spawn(bv, fb2);
		if (reap(pb, 90) != 0) {
			cat_file(fb2);
			cat_file(fa);
			ck_abort_msg("bob did not recover");
		}
	}
	ck_assert_int_eq(reap(pa, 120), 0);
	/* After the recovery bob gets alice's messages again, in order, on
	 * a new session (sequence numbers start again at 1). */
	f = fopen(fb2, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long seq;
		int fe, k;

		if (sscanf(line, "RECV %llu %d m %d", &seq, &fe, &k) == 3) {
			ck_assert_int_gt(k, last);
			last = k;
			after++;
			if (seq < 128)
				seen[seq]++;
		}
	}
	fclose(f);
	ck_assert_int_ge(after, 8);
	ck_assert_uint_eq(seen[1], 1);
}
END_TEST

/* ---- Duplicates and tampering, in one process -------------------------- */

static void
rx_count(void *ud, const struct s2s_message_info *i, const uint8_t *m,
	 size_t n)
{
	(void)i;
	(void)m;
	(void)n;
	__atomic_add_fetch((unsigned *)ud, 1, __ATOMIC_SEQ_CST);
}

/* Connect, register and pair alice (a) and bob (b), then negotiate. */
static void
connect_pair(struct s2s_client *a, struct s2s_client *b)
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

START_TEST(test_duplicates)
{
	char ca[700], cb[700], err[512];
	struct s2s_client *a, *b;
	struct s2s_sent_info info;
	struct s2s_package pk;
	unsigned got = 0;
	uint64_t next;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == 0, "%s",
		      err);
	s2s_client_on_message(b, rx_count, &got);
	connect_pair(a, b);
	ck_assert(s2s_client_registered(a));

	ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)"one", 3,
					 S2S_SEND_KEEP_PACKAGE |
					 S2S_SEND_WAIT_ACK, &info), S2S_OK);
	ck_assert_uint_eq(info.seq, 1);
	for (int i = 0; i < 3000 && !__atomic_load_n(&got, __ATOMIC_SEQ_CST);
	     i++)
		usleep(10000);
	ck_assert_uint_eq(got, 1);

	/* The same package again: the CS refuses it, so would bob. */
	ck_assert_int_eq(s2s_client_publish_raw(a, "bob", info.package,
						info.package_len, 20000),
			 S2S_ERR_REJECTED);
	ck_assert_int_eq(s2s_client_inject(b, "alice", info.package,
					   info.package_len), S2S_ERR_REPLAY);

	/* A tampered fresh package: refused by both, chains untouched. */
	s2s_free(info.package);
	ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)"two", 3,
					 S2S_SEND_SEAL_ONLY, &info), S2S_OK);
	ck_assert_uint_eq(info.seq, 2);
	ck_assert_int_eq(s2s_package_parse(info.package, info.package_len,
					   NULL, &pk), S2S_OK);
	info.package[pk.msg - info.package] ^= 1;
	ck_assert_int_eq(s2s_client_publish_raw(a, "bob", info.package,
						info.package_len, 20000),
			 S2S_ERR_REJECTED);
	ck_assert_int_eq(s2s_client_inject(b, "alice", info.package,
					   info.package_len), S2S_ERR_AUTH);
	s2s_free(info.package);
	ck_assert_int_eq(s2s_client_seq(b, "alice", NULL, &next), S2S_OK);
	ck_assert_uint_eq(next, 2);

	ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)"two", 3,
					 S2S_SEND_WAIT_ACK, NULL), S2S_OK);
	for (int i = 0; i < 3000 && __atomic_load_n(&got, __ATOMIC_SEQ_CST) < 2;
	     i++)
		usleep(10000);
	ck_assert_uint_eq(got, 2);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
}
END_TEST

/* ---- A receive chain behind on disk: the packages come again -------------- */

static size_t
read_all(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/*
 * The receive path writes the state a little later (client__persist_soon,
 * docs/OPERATIONS.md): the write does land without a destroy, and a state
 * whose receive chain is behind (what a crash before that write leaves)
 * is safe: the next run fetches those packages from the CS and verifies
 * them again, the session goes on, nothing is refused.
 */
START_TEST(test_stale_rx)
{
	char ca[700], cb[700], err[512], sf[700], af[700], aj[700];
	static uint8_t snap[1 << 16], now[1 << 16];
	static uint8_t a_state[1 << 16], a_jrnl[1 << 17];
	size_t a_len, aj_len;
	struct s2s_client *a, *b;
	unsigned got = 0, again = 0;
	size_t snap_len, now_len = 0;
	uint64_t next;
	FILE *f;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	snprintf(sf, sizeof(sf), "%s/bob/state/state.s2s", B.dir);
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == 0, "%s",
		      err);
	s2s_client_on_message(b, rx_count, &got);
	connect_pair(a, b);
	/* Bob's state with the session and nothing received yet. */
	for (int i = 0; i < 3000; i++) {
		ck_assert_int_eq(s2s_client_seq(b, "alice", NULL, &next),
				 S2S_OK);
		if (next == 1)
			break;
		usleep(10000);
	}
	snap_len = read_all(sf, snap, sizeof(snap));
	ck_assert_uint_gt(snap_len, 0);

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(s2s_client_send(a, "bob",
						 (const uint8_t *)"msg", 3,
						 S2S_SEND_WAIT_ACK, NULL),
				 S2S_OK);
	for (int i = 0; i < 3000 && __atomic_load_n(&got, __ATOMIC_SEQ_CST) < 5;
	     i++)
		usleep(10000);
	ck_assert_uint_eq(got, 5);
	/* Alice's files now, as a crash would leave them: the send chain
	 * of these five is in her journal only (state.h, txlog). */
	snprintf(af, sizeof(af), "%s/alice/state/state.s2s", B.dir);
	snprintf(aj, sizeof(aj), "%s/alice/state/txlog", B.dir);
	a_len = read_all(af, a_state, sizeof(a_state));
	aj_len = read_all(aj, a_jrnl, sizeof(a_jrnl));
	ck_assert_uint_gt(a_len, 0);
	ck_assert_uint_gt(aj_len, 0);
	/* The deferred write lands on its own (poll, generous deadline). */
	for (int i = 0; i < 3000; i++) {
		now_len = read_all(sf, now, sizeof(now));
		if (now_len && (now_len != snap_len ||
				memcmp(now, snap, now_len)))
			break;
		usleep(10000);
	}
	ck_assert_msg(now_len && (now_len != snap_len ||
				  memcmp(now, snap, now_len)),
		      "the receive chain never reached the state file");
	s2s_client_destroy(b);

	/* A crash before that write: bob's state five packages behind. */
	f = fopen(sf, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(snap, 1, snap_len, f), snap_len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == 0, "%s",
		      err);
	s2s_client_on_message(b, rx_count, &again);
	ck_assert_int_eq(s2s_client_seq(b, "alice", NULL, &next), S2S_OK);
	ck_assert_uint_eq(next, 1);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	for (int i = 0; i < 3000 &&
	     __atomic_load_n(&again, __ATOMIC_SEQ_CST) < 5; i++)
		usleep(10000);
	ck_assert_uint_eq(again, 5);    /* fetched from the CS, verified */
	ck_assert_int_eq(s2s_client_send(a, "bob", (const uint8_t *)"six", 3,
					 S2S_SEND_WAIT_ACK, NULL), S2S_OK);
	for (int i = 0; i < 3000 &&
	     __atomic_load_n(&again, __ATOMIC_SEQ_CST) < 6; i++)
		usleep(10000);
	ck_assert_uint_eq(again, 6);
	ck_assert_int_eq(s2s_client_seq(b, "alice", NULL, &next), S2S_OK);
	ck_assert_uint_eq(next, 7);

	/* Alice's files as a crash after her five left them: her send chain
	 * is at 6 (from the journal; the state file alone is behind). */
	s2s_client_destroy(a);
	f = fopen(af, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(a_state, 1, a_len, f), a_len);
	ck_assert_int_eq(fclose(f), 0);
	f = fopen(aj, "r+b");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(a_jrnl, 1, aj_len, f), aj_len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_int_eq(s2s_client_seq(a, "bob", &next, NULL), S2S_OK);
	ck_assert_uint_eq(next, 6);
	s2s_client_destroy(a);
	/* Without the journal, the same state file is behind. */
	f = fopen(af, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(a_state, 1, a_len, f), a_len);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(unlink(aj), 0);
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_int_eq(s2s_client_seq(a, "bob", &next, NULL), S2S_OK);
	ck_assert_uint_lt(next, 6);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
}
END_TEST

/* ---- The device commands of the s2s tool ---------------------------------- */

START_TEST(test_tool)
{
	char ca[700], cb[700], f[700], out[8192];
	char *line;
	int n = 0;
	pid_t pb;

	start_broker("paper");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	snprintf(f, sizeof(f), "%s/listen.out", B.dir);
	{
		char *lis[] = { (char *)tool(), "listen", "--json", "--count",
				"3", "--timeout", "60", "--config", cb, NULL };
		char *ses[] = { (char *)tool(), "session", "bob", "--config", ca,
				NULL };
		char *snd[] = { (char *)tool(), "send", "bob", "hello",
				"--count", "3", "--config", ca, NULL };

		/* Negotiation needs the peer online: bob listens first. */
		pb = spawn(lis, f);
		ck_assert(wait_line(f, "listening as bob", 30));
		ck_assert_msg(run(ses, out, sizeof(out), 60) == 0, "%s", out);
		ck_assert_ptr_nonnull(strstr(out, "established with bob"));
		ck_assert_msg(run(snd, out, sizeof(out), 60) == 0, "%s", out);
		ck_assert_ptr_nonnull(strstr(out, "sent bob seq 3"));
		ck_assert_int_eq(reap(pb, 60), 0);
	}
	{
		FILE *fp = fopen(f, "r");
		size_t k = fread(out, 1, sizeof(out) - 1, fp);

		fclose(fp);
		out[k] = '\0';
	}
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char want[128];

		if (line[0] != '{')
			continue;

		snprintf(want, sizeof(want), "\"msg\":\"hello #%d\"", n + 1);
		ck_assert_msg(strstr(line, "\"from\":\"alice\"") &&
			      strstr(line, "\"profile\":\"paper\"") &&
			      strstr(line, want), "%s", line);
		n++;
	}
	ck_assert_int_eq(n, 3);
	{
		char *fet[] = { (char *)tool(), "fetch", "alice", "--from", "1",
				"--config", cb, NULL };

		ck_assert_msg(run(fet, out, sizeof(out), 60) == 0, "%s", out);
		ck_assert_msg(strstr(out, "fetched 0 new messages from alice"),
			      "%s", out);
	}
	{
		char *ctl[] = { (char *)tool(), "ctl", "--config", ca,
				"listSessions", NULL };

		ck_assert_msg(run(ctl, out, sizeof(out), 30) == 0, "%s", out);
		ck_assert_ptr_nonnull(strstr(out, "alice~bob"));
	}
}
END_TEST

/* ---- A revoked device is cut off ------------------------------------------ */

START_TEST(test_revoked)
{
	char ca[700], cb[700], out[8192];
	pid_t pa, pb;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "3", "--timeout", "60", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "3", "--timeout", "60", NULL };

		pb = spawn(bv, "/dev/null");
		pa = spawn(av, "/dev/null");
		ck_assert_int_eq(reap(pa, 60), 0);
		ck_assert_int_eq(reap(pb, 60), 0);
	}
	{
		char *ctl[] = { (char *)tool(), "ctl", "--broker", B.uri,
				"--admin-key", B.admin_key, "removeDevice",
				"id=alice", NULL };

		ck_assert_msg(run(ctl, out, sizeof(out), 30) == 0, "%s", out);
	}
	{
		char *send[] = { (char *)tool(), "send", "bob", "hello",
				 "--config", ca, "--timeout", "20", NULL };

		ck_assert_int_eq(run(send, out, sizeof(out), 60), 1);
		ck_assert_msg(strstr(out, "revoked") && strstr(out, B.uri),
			      "%s", out);
	}
}
END_TEST

/* ---- Key rotation and re-admission, with the tool (issue 12, item 5) ---- */

/* Put "enrolment_code": code into a device configuration. */
static void
set_code(const char *cfg, const char *code)
{
	char buf[4096], *end;
	FILE *f = fopen(cfg, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	ck_assert_ptr_nonnull(f);
	fclose(f);
	buf[n] = '\0';
	end = strstr(buf, ",\"enrolment_code\"");    /* set_code's own */
	if (!end)
		end = strrchr(buf, '}');
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s,\"enrolment_code\":\"%s\"}\n", buf, code);
	fclose(f);
}

static void
ctl(const char *cmd, const char *arg, const char *arg2)
{
	char out[4096];
	char *av[] = { (char *)tool(), "ctl", "--broker", B.uri, "--admin-key",
		       B.admin_key, (char *)cmd, (char *)arg, (char *)arg2,
		       NULL };

	ck_assert_msg(run(av, out, sizeof(out), 30) == 0, "%s", out);
}

static void
exchange(const char *ca, const char *cb)
{
	char *bv[] = { (char *)device_prog(), (char *)cb, "alice", "--expect",
		       "2", "--timeout", "60", NULL };
	char *av[] = { (char *)device_prog(), (char *)ca, "bob", "--initiate",
		       "--send", "2", "--timeout", "60", NULL };
	char fa[700], fb[700];
	pid_t pa, pb;
	int ra, rb;

	snprintf(fa, sizeof(fa), "%s/alice.out", B.dir);
	snprintf(fb, sizeof(fb), "%s/bob.out", B.dir);
	pb = spawn(bv, fb);
	pa = spawn(av, fa);
	ra = reap(pa, 90);
	rb = reap(pb, 90);
	if (ra || rb) {
		char cmd[800];

		cat_file(fa);
		cat_file(fb);
		snprintf(cmd, sizeof(cmd), "tail -n 40 %s >&2", B.log);
		if (system(cmd) != 0)
			cat_file(B.log);
	}
	ck_assert_int_eq(ra, 0);
	ck_assert_int_eq(rb, 0);
}

/*
 * OPERATIONS.md, "Key rotation" and "Revocation", as written: a new code,
 * a new key, `s2s register`; messages flow again.  Then revoked, a new
 * code, `s2s register`, pair again.
 */
START_TEST(test_rotation)
{
	char ca[700], cb[700], out[8192], key[600];

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	exchange(ca, cb);
	/* Rotation. */
	ctl("addEnrolmentCode", "id=alice", "code=rotate-0001");
	snprintf(key, sizeof(key), "%s/alice/alice", B.dir);
	{
		char *kg[] = { (char *)tool(), "keygen", "--out", key,
			       "--force", NULL };
		char *reg[] = { (char *)tool(), "register", "--config", ca,
				NULL };

		ck_assert_msg(run(kg, out, sizeof(out), 30) == 0, "%s", out);
		/* Without the code: refused. */
		ck_assert_int_ne(run(reg, out, sizeof(out), 60), 0);
		set_code(ca, "rotate-0001");
		ck_assert_msg(run(reg, out, sizeof(out), 60) == 0, "%s", out);
	}
	exchange(ca, cb);
	/* Revocation and re-admission. */
	ctl("removeDevice", "id=alice", NULL);
	ctl("addEnrolmentCode", "id=alice", "code=readmit-0002");
	set_code(ca, "readmit-0002");
	{
		char *reg[] = { (char *)tool(), "register", "--config", ca,
				NULL };
		char *pair_a[] = { (char *)tool(), "pair", "bob", "--no-wait",
				   "--config", ca, NULL };
		char *pair_b[] = { (char *)tool(), "pair", "alice",
				   "--config", cb, NULL };

		ck_assert_msg(run(reg, out, sizeof(out), 60) == 0, "%s", out);
		ck_assert_msg(run(pair_a, out, sizeof(out), 60) == 0, "%s",
			      out);
		ck_assert_msg(run(pair_b, out, sizeof(out), 60) == 0, "%s",
			      out);
		ck_assert_ptr_nonnull(strstr(out, "paired bob with alice"));
	}
	/* Messages flow again.  (This negotiation used to time out, or the
	 * broker crashed: removeDevice kicked alice's disconnected session,
	 * which Mosquitto 2.0.11 then put on its expiry list twice and
	 * "expired" right after alice reconnected.) */
	exchange(ca, cb);
}
END_TEST

/*
 * allow_anonymous false (SECURITY.md's hardening): devices without a code
 * still enrol (open enrolment) through the enrolment login, then work.
 */
START_TEST(test_no_anonymous)
{
	char ca[700], cb[700], err[2048];

	ck_assert_msg(broker_start(&B, "hardened", "allow_anonymous false\n",
				   err, sizeof(err)), "%s", err);
	atexit(at_exit);
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	exchange(ca, cb);
	{
		char cmd[800];

		/* It was the enrolment login that let them in. */
		snprintf(cmd, sizeof(cmd), "grep -q \"enrolment login of "
			 "'alice'\" %s", B.log);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

/* ---- The device library's sockets ---------------------------------------- */

/* This process's TCP sockets to the broker's port; *nodelay: how many of
 * them have TCP_NODELAY. */
static int
broker_sockets(int *nodelay)
{
	const char *p = strrchr(B.uri, ':');
	int port = p ? atoi(p + 1) : 0, n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	*nodelay = 0;
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		int fd = atoi(e->d_name), v = 0;
		socklen_t vl = sizeof(v);

		if (e->d_name[0] == '.' || fd == dirfd(d) ||
		    getpeername(fd, (struct sockaddr *)&a, &al) ||
		    a.sin_family != AF_INET || ntohs(a.sin_port) != port)
			continue;
		n++;
		if (!getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl) && v)
			(*nodelay)++;
	}
	closedir(d);
	return n;
}

START_TEST(test_sockets)
{
	char ca[700], cb[700], err[512];
	struct s2s_client *a = NULL, *b = NULL;
	int nd = 0;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_connect(a, -1), S2S_OK);
	ck_assert_int_eq(broker_sockets(&nd), 2);
	ck_assert_int_eq(nd, 2);
	/* Anonymous -> token connection, bob's connection open meanwhile. */
	ck_assert_int_eq(s2s_client_register(a, -1), S2S_OK);
	ck_assert(s2s_client_connected(a));
	ck_assert_int_eq(broker_sockets(&nd), 2);
	ck_assert_int_eq(nd, 2);
	ck_assert_int_eq(s2s_client_register(b, -1), S2S_OK);
	ck_assert_int_eq(broker_sockets(&nd), 2);
	ck_assert_int_eq(nd, 2);
	/* Both token connections work: pairing goes through the CS. */
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, 0), S2S_ERR_TIMEOUT);
	ck_assert_int_eq(s2s_client_pair(b, "alice", 0, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, -1), S2S_OK);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	ck_assert_int_eq(broker_sockets(&nd), 0);
}
END_TEST

#ifdef S2S_HAVE_PG
static bool
log_has(const char *needle)
{
	char *buf;
	size_t n;
	FILE *f = fopen(B.log, "r");
	bool yes;

	if (!f)
		return false;
	buf = calloc(1, 1 << 20);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	yes = strstr(buf, needle) != NULL;
	free(buf);
	return yes;
}

/*
 * PostgreSQL goes away under traffic and comes back: the broker logs it,
 * refuses packages meanwhile (nothing is let through unstored), stays up,
 * reconnects by itself, and the devices exchange messages again.
 */
START_TEST(test_pg_restart)
{
	char ca[700], cb[700], fa[700], fb[700];
	unsigned seen[128] = { 0 }, rej = 0, got;
	pid_t pa, pb;
	int sa, sb;

	start_broker("hardened");
	make_device("alice", 1, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	snprintf(fa, sizeof(fa), "%s/alice.out", B.dir);
	snprintf(fb, sizeof(fb), "%s/bob.out", B.dir);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "40", "--timeout", "40", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "40", "--interval", "100",
			       "--timeout", "40", NULL };

		pb = spawn(bv, fb);
		pa = spawn(av, fa);
		/* under traffic: PostgreSQL goes once bob has messages, and
		 * comes back once the broker noticed (polled, not slept: a
		 * loaded machine may take seconds to negotiate) */
		for (int w = 0; w < 600; w++) {
			unsigned s0[128] = { 0 };

			if (read_recv(fb, s0, 128, NULL, NULL) >= 2)
				break;
			usleep(100000);
		}
		ck_assert_int_eq(pgh_stop(pg_srv, false), 0);
		for (int w = 0; w < 300 && !log_has("PostgreSQL connection lost");
		     w++)
			usleep(100000);
		ck_assert_int_eq(pgh_restart(pg_srv), 0);
		sa = reap(pa, 60);
		sb = reap(pb, 60);
	}
	got = read_recv(fb, seen, 128, NULL, &rej);
	printf("pg_restart: under traffic: alice exit %d, bob exit %d, bob "
	       "received %u of 40\n", sa, sb, got);
	if (getenv("S2S_TEST_VERBOSE")) {
		cat_file(fa);
		cat_file(fb);
	}
	for (int w = 0; w < 300 && !log_has("PostgreSQL connection back");
	     w++)
		usleep(100000);
	ck_assert(log_has("PostgreSQL connection lost"));
	ck_assert(log_has("PostgreSQL connection back"));
	ck_assert_int_eq(kill(B.pid, 0), 0);
	/* every message arrived once, or its sender heard it was refused
	 * (the session is replaced after a refusal, so count messages by
	 * their text "m N", not by seq) */
	{
		unsigned msgs[64] = { 0 }, refused = 0, delivered = 0;
		char line[512];
		FILE *f = fopen(fb, "r");

		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof(line), f)) {
			unsigned long long seq;
			int fe;
			unsigned m;

			if (sscanf(line, "RECV %llu %d m %u", &seq, &fe, &m) ==
			    3 && m < 64) {
				msgs[m]++;
				delivered++;
			}
		}
		fclose(f);
		unsigned sent = 0;

		(void)read_recv(fa, seen, 128, NULL, &refused);
		/* what alice sent before her timeout (a loaded machine may
		 * not send all 40 in time) */
		f = fopen(fa, "r");
		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof(line), f))
			(void)sscanf(line, "DONE sent=%u", &sent);
		fclose(f);
		for (unsigned k = 0; k < 64; k++)
			ck_assert_uint_le(msgs[k], 1);
		printf("pg_restart: %u sent, %u delivered once, %u refused to "
		       "the sender\n", sent, delivered, refused);
		fflush(stdout);
		ck_assert_uint_gt(sent, 0);
		ck_assert_uint_eq(delivered + refused, sent);
		(void)got;
	}
	/* and they talk again */
	memset(seen, 0, sizeof(seen));
	snprintf(fa, sizeof(fa), "%s/alice2.out", B.dir);
	snprintf(fb, sizeof(fb), "%s/bob2.out", B.dir);
	{
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "5", "--timeout", "60", "--tag", "again", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "5", "--timeout", "60", "--tag",
			       "again", NULL };

		pb = spawn(bv, fb);
		pa = spawn(av, fa);
		sa = reap(pa, 90);
		sb = reap(pb, 90);
	}
	if (sa || sb) {
		cat_file(fa);
		cat_file(fb);
	}
	ck_assert_int_eq(sa, 0);
	ck_assert_int_eq(sb, 0);
	ck_assert_uint_eq(read_recv(fb, seen, 128, NULL, &rej), 5);
}
END_TEST
#endif

static TCase *
tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, NULL, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

/* One case per scenario: CK_RUN_CASE=restart runs one. */
static Suite *
make_suite(void)
{
	Suite *s = suite_create("client_e2e");

	tcase_add_loop_test(tcase(s, "profiles"), test_profiles, 0, 2);
	tcase_add_test(tcase(s, "restart"), test_restart);
	tcase_add_test(tcase(s, "drop_fetch"), test_drop_fetch);
	tcase_add_test(tcase(s, "duplicates"), test_duplicates);
	tcase_add_test(tcase(s, "stale_rx"), test_stale_rx);
	tcase_add_test(tcase(s, "revoked"), test_revoked);
	tcase_add_test(tcase(s, "rotation"), test_rotation);
	tcase_add_test(tcase(s, "no_anonymous"), test_no_anonymous);
	tcase_add_test(tcase(s, "tool"), test_tool);
	tcase_add_test(tcase(s, "lost_state"), test_lost_state);
	tcase_add_test(tcase(s, "sockets"), test_sockets);
#ifdef S2S_HAVE_PG
	if (pg_srv)
		tcase_add_test(tcase(s, "pg_restart"), test_pg_restart);
#endif
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (!broker_plugin_path() || access("/usr/sbin/mosquitto", X_OK)) {
		fprintf(stderr, "client_e2e: no mosquitto or no plugin: skip\n");
		return 77;
	}
	if (getenv("S2S_TEST_STORE") && strcmp(getenv("S2S_TEST_STORE"),
					       "pg") == 0) {
#ifdef S2S_HAVE_PG
		int r = pgh_start(&pg_srv);

		if (r != 0) {
			pgh_destroy(pg_srv);
			fprintf(stderr, "client_e2e: %s\n", r == PGH_SKIP ?
				"no PostgreSQL binaries: skip" :
				"cannot start PostgreSQL");
			return r == PGH_SKIP ? 77 : EXIT_FAILURE;
		}
#else
		fprintf(stderr, "client_e2e: built without libpq: skip\n");
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
