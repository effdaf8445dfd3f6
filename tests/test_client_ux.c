/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_client_ux.c - what a user of the s2s tool and of libs2s-client
 * meets (issue 12), against a real Mosquitto with the s2s plugin
 * (client/tool/broker_run.c) and real tool processes:
 *
 *   lock         two clients of one configuration: the second is refused
 *                with the holder's pid and command; `s2s status` names it
 *   unread       a `send` that connects while messages wait for the
 *                device does not eat them: the next `listen` shows them
 *   errors       connect failures name the URI and the cause (wrong
 *                port, unknown host, ssl:// to a plain port), a missing
 *                tls.ca_file is refused when the configuration is read,
 *                a wrong or non-PNG signature is refused before
 *                connecting, ctl names a missing or world-readable admin
 *                key, a device cannot talk to itself, listen --help lists
 *                each option once
 *   waiting      `session` with an offline peer prints progress lines and
 *                names the peer; `pair` with a peer that never asks too
 *   revoked      a running listener whose device is revoked stops
 *                reconnecting and says so
 *   reconnect    listen tells a lost connection and the reconnect;
 *                send --verbose tells each package's answer
 *   status       `s2s status` (text and --json), `s2s health` exit codes,
 *                `s2s unpair` with the admin key removes the pair at the
 *                CS, `s2s register --code`
 *   api          per-message completion callback, log callback, timeout
 *                0 (no waiting), a blocking call from a callback fails at
 *                once, s2s_free
 *
 * Skipped (exit 77) when mosquitto or the plugin is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_run.h"
#include "check_main.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"

static struct broker_run B;

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

static void
at_exit(void)
{
	broker_cleanup(&B);
}

static void
start_broker(const char *extra)
{
	char err[2048];

	ck_assert_msg(broker_start(&B, "hardened", extra, err, sizeof(err)),
		      "%s", err);
	atexit(at_exit);
}

static void
teardown(void)
{
	broker_cleanup(&B);
}

/* A device: key, synthetic signature, configuration.  broker: NULL for
 * the test broker; extra: more JSON members starting with a comma. */
static void
make_device(const char *name, uint32_t user, const char *broker,
	    const char *extra, char *cfg, size_t cfg_len)
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
		"\"timeouts\":{\"connect\":5,\"pair\":20,\"session\":20,"
		"\"fetch\":5}%s}\n",
		broker ? broker : B.uri, name, key, B.cs_pub, sig,
		extra ? extra : "");
	fclose(f);
}

/* Point the configuration's "signature" at path. */
static void
set_signature(const char *cfg, const char *path)
{
	char *txt = NULL, *a, *b;
	size_t n = 0;
	FILE *f = fopen(cfg, "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_gt(getdelim(&txt, &n, '\0', f), 0);
	fclose(f);
	a = strstr(txt, "\"signature\":\"");
	ck_assert_ptr_nonnull(a);
	a += strlen("\"signature\":\"");
	b = strchr(a, '"');
	f = fopen(cfg, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%.*s%s%s", (int)(a - txt), txt, path, b);
	fclose(f);
	free(txt);
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

static char *
slurp(const char *file)
{
	static char buf[16384];
	FILE *f = fopen(file, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	buf[n] = '\0';
	if (f)
		fclose(f);
	return buf;
}

static bool
wait_text(const char *file, const char *what, int timeout_s)
{
	time_t end = time(NULL) + timeout_s;

	while (time(NULL) <= end) {
		if (strstr(slurp(file), what))
			return true;
		usleep(20000);
	}
	return false;
}

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
}

/* Enrol, pair and negotiate a session (bob online through e2e_device). */
static void
enrol_session(const char *ca, const char *cb)
{
	char *bv[] = { (char *)device_prog(), (char *)cb, "alice", "--expect",
		       "1", "--timeout", "60", NULL };
	char *av[] = { (char *)device_prog(), (char *)ca, "bob", "--initiate",
		       "--send", "1", "--timeout", "60", NULL };
	char f[700];
	pid_t pa, pb;

	enrol_pair(ca, cb);
	snprintf(f, sizeof(f), "%s/bob-setup.out", B.dir);
	pb = spawn(bv, f);
	ck_assert(wait_text(f, "READY", 30));
	pa = spawn(av, "/dev/null");
	ck_assert_int_eq(reap(pa, 60), 0);
	ck_assert_msg(reap(pb, 60) == 0, "%s", slurp(f));
}

/* ---- One process per configuration ----------------------------------------- */

START_TEST(test_lock)
{
	char ca[700], err[512], out[8192], pid[32];
	struct s2s_client *a, *a2;
	char *st[] = { (char *)tool(), "status", "--config", ca, NULL };
	char *snd[] = { (char *)tool(), "send", "bob", "hi", "--config", ca,
			NULL };

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	/* The same configuration again, in this process. */
	ck_assert_int_eq(s2s_client_create(ca, &a2, err, sizeof(err)),
			 S2S_ERR_STATE);
	ck_assert_ptr_null(a2);
	snprintf(pid, sizeof(pid), "process %ld ", (long)getpid());
	ck_assert_msg(strstr(err, "in use by") && strstr(err, pid), "%s", err);
	/* Another process: refused with the holder named; status too. */
	ck_assert_int_eq(run(snd, out, sizeof(out), 30), 1);
	ck_assert_msg(strstr(out, "in use by") && strstr(out, pid), "%s", out);
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "in use by") && strstr(out, pid), "%s", out);
	/* Released by destroy. */
	s2s_client_destroy(a);
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	s2s_client_destroy(a);
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "not in use"), "%s", out);
}
END_TEST

/* ---- A command that sends does not eat what listen should show ------------ */

START_TEST(test_unread)
{
	char ca[700], cb[700], out[8192], f[700];
	char *m1[] = { (char *)tool(), "send", "bob", "first while away",
		       "--config", ca, NULL };
	char *m2[] = { (char *)tool(), "send", "bob", "second while away",
		       "--config", ca, NULL };
	char *reply[] = { (char *)tool(), "send", "alice", "a reply",
			  "--config", cb, NULL };
	char *st[] = { (char *)tool(), "status", "--json", "--config", cb,
		       NULL };
	char *lis[] = { (char *)tool(), "listen", "--count", "2", "--timeout",
			"20", "--config", cb, NULL };
	char *again[] = { (char *)tool(), "listen", "--count", "1",
			  "--timeout", "3", "--config", cb, NULL };

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	enrol_session(ca, cb);
	/* Bob is offline: the broker keeps these for him. */
	ck_assert_msg(run(m1, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(run(m2, out, sizeof(out), 60) == 0, "%s", out);
	/* Bob connects only to send: he gets the two, shows none of them. */
	ck_assert_msg(run(reply, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(!strstr(out, "while away"), "%s", out);
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "\"unread\":2"), "%s", out);
	/* The next listen shows both, in order, and only once. */
	snprintf(f, sizeof(f), "%s/listen.out", B.dir);
	ck_assert_int_eq(reap(spawn(lis, f), 40), 0);
	ck_assert_msg(strstr(slurp(f), "alice -> bob #2: first while away") &&
		      strstr(slurp(f), "alice -> bob #3: second while away"),
		      "%s", slurp(f));
	ck_assert_int_eq(run(again, out, sizeof(out), 30), 1);
	ck_assert_msg(!strstr(out, "while away"), "%s", out);
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "\"unread\":0"), "%s", out);
}
END_TEST

static void
count_msg(void *ud, const struct s2s_message_info *i, const uint8_t *m,
	  size_t n)
{
	(void)i;
	if (n == 4 && !memcmp(m, "kept", 4))
		__atomic_add_fetch((unsigned *)ud, 1, __ATOMIC_SEQ_CST);
}

/* Kept messages go to a message callback too, once it is set. */
START_TEST(test_unread_callback)
{
	char ca[700], cb[700], out[8192], err[512];
	char *m1[] = { (char *)tool(), "send", "bob", "kept", "--config", ca,
		       NULL };
	char *reply[] = { (char *)tool(), "send", "alice", "a reply",
			  "--config", cb, NULL };
	struct s2s_client *b;
	unsigned got = 0;

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	enrol_session(ca, cb);
	ck_assert_msg(run(m1, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(run(reply, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	s2s_client_on_message(b, count_msg, &got);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	for (int i = 0; i < 3000 && !__atomic_load_n(&got, __ATOMIC_SEQ_CST);
	     i++)
		usleep(10000);
	ck_assert_uint_eq(got, 1);
	s2s_client_destroy(b);
	/* Delivered: not kept again. */
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == S2S_OK,
		      "%s", err);
	got = 0;
	s2s_client_on_message(b, count_msg, &got);
	ck_assert_int_eq(s2s_client_connect(b, -1), S2S_OK);
	usleep(500000);
	ck_assert_uint_eq(__atomic_load_n(&got, __ATOMIC_SEQ_CST), 0);
	s2s_client_destroy(b);
}
END_TEST

/* ---- Errors that name the thing to fix ------------------------------------- */

static void
expect_fail(char *const argv[], const char *a, const char *b)
{
	char out[8192];
	int rc = run(argv, out, sizeof(out), 60);

	ck_assert_msg(rc != 0, "exit 0:\n%s", out);
	ck_assert_msg(strstr(out, a) && (!b || strstr(out, b)),
		      "wanted '%s'%s%s:\n%s", a, b ? " and " : "", b ? b : "",
		      out);
	/* One line, no blanket "MQTT transport failure". */
	ck_assert_msg(!strstr(out, "MQTT transport failure"), "%s", out);
}

START_TEST(test_errors)
{
	char c1[700], c2[700], c3[700], c4[700], c5[700], c6[700], cs[700];
	char uri[64], tls_uri[64], badsig[700], key[700], out[8192];
	int port;
	FILE *f;

	start_broker(NULL);
	port = B.port;
	/* A port nothing listens on: the broker's, plus one (checked). */
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port + 1);
	make_device("wrongport", 1, uri, NULL, c1, sizeof(c1));
	{
		char *v[] = { (char *)tool(), "pair", "bob", "--config", c1,
			      NULL };

		expect_fail(v, uri, "connection refused");
	}
	make_device("nohost", 1, "tcp://no-such-host.invalid:1883", NULL, c2,
		    sizeof(c2));
	{
		char *v[] = { (char *)tool(), "pair", "bob", "--config", c2,
			      NULL };

		expect_fail(v, "unknown host 'no-such-host.invalid'",
			    "tcp://no-such-host.invalid:1883");
	}
	snprintf(tls_uri, sizeof(tls_uri), "ssl://127.0.0.1:%d", port);
	make_device("tlsplain", 1, tls_uri, NULL, c3, sizeof(c3));
	{
		char *v[] = { (char *)tool(), "pair", "bob", "--config", c3,
			      "--timeout", "5", NULL };

		expect_fail(v, tls_uri, "TLS");
	}
	make_device("noca", 1, NULL, ",\"tls\":{\"ca_file\":\"missing-ca.pem\"}",
		    c4, sizeof(c4));
	{
		char *v[] = { (char *)tool(), "pair", "bob", "--config", c4,
			      NULL };

		expect_fail(v, "tls.ca_file", "missing-ca.pem");
	}
	/* A wrong signature path, on a device whose broker is unreachable:
	 * the path is named, nothing connects. */
	make_device("nosig", 1, uri, NULL, c5, sizeof(c5));
	set_signature(c5, "no-such-sig.png");
	{
		char *v[] = { (char *)tool(), "register", "--config", c5, NULL };

		expect_fail(v, "no-such-sig.png", "cannot read");
		ck_assert(!strstr(slurp(B.log), "nosig"));
	}
	snprintf(badsig, sizeof(badsig), "%s/notpng.png", B.dir);
	f = fopen(badsig, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not an image\n", f);
	fclose(f);
	make_device("badsig", 1, uri, NULL, c6, sizeof(c6));
	set_signature(c6, badsig);
	{
		char *v[] = { (char *)tool(), "register", "--config", c6, NULL };

		expect_fail(v, "notpng.png", "not a PNG");
	}
	/* Talking to oneself. */
	make_device("self", 1, NULL, NULL, cs, sizeof(cs));
	{
		char *v[] = { (char *)tool(), "send", "self", "hi", "--config",
			      cs, NULL };

		expect_fail(v, "'self' is this device itself", NULL);
	}
	/* s2s ctl: a missing admin key and a world-readable one are named. */
	{
		char *v[] = { (char *)tool(), "ctl", "--broker", B.uri,
			      "--admin-key", "/nonexistent/admin.key",
			      "listDevices", NULL };

		expect_fail(v, "admin key /nonexistent/admin.key", NULL);
	}
	snprintf(key, sizeof(key), "%s/open-admin.key", B.dir);
	snprintf(out, sizeof(out), "cp '%s' '%s' && chmod 644 '%s'",
		 B.admin_key, key, key);
	ck_assert_int_eq(system(out), 0);
	{
		char *v[] = { (char *)tool(), "ctl", "--broker", B.uri,
			      "--admin-key", key, "listDevices", NULL };

		expect_fail(v, key, "chmod 600");
	}
	/* listen --help: each option once. */
	{
		char *v[] = { (char *)tool(), "listen", "--help", NULL };
		const char *p;
		int n = 0;

		ck_assert_int_eq(run(v, out, sizeof(out), 30), 0);
		for (p = out; (p = strstr(p, "\n  --timeout")); p++)
			n++;
		ck_assert_msg(n == 1, "%s", out);
	}
}
END_TEST

/* ---- Progress while waiting for a peer ------------------------------------ */

START_TEST(test_waiting)
{
	char ca[700], cb[700], cc[700], out[8192];
	char *ses[] = { (char *)tool(), "session", "bob", "--timeout", "4",
			"--config", ca, NULL };
	char *pair[] = { (char *)tool(), "pair", "carol", "--timeout", "4",
			 "--config", ca, NULL };
	char *snd[] = { (char *)tool(), "send", "carol", "hi", "--timeout",
			"4", "--config", ca, NULL };

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	make_device("carol", 3, NULL, NULL, cc, sizeof(cc));
	enrol_pair(ca, cb);
	{
		char *reg[] = { (char *)tool(), "register", "--config", cc,
				NULL };

		ck_assert_msg(run(reg, out, sizeof(out), 60) == 0, "%s", out);
	}
	/* bob is offline. */
	ck_assert_int_eq(run(ses, out, sizeof(out), 60), 1);
	ck_assert_msg(strstr(out, "waiting for bob to come online"), "%s",
		      out);
	ck_assert_msg(strstr(out, "bob did not answer"), "%s", out);
	/* carol never asks to pair. */
	ck_assert_int_eq(run(pair, out, sizeof(out), 60), 1);
	ck_assert_msg(strstr(out, "waiting for carol to pair with alice"),
		      "%s", out);
	ck_assert_int_eq(run(snd, out, sizeof(out), 60), 1);
	ck_assert_msg(strstr(out, "carol has not asked to pair with alice"),
		      "%s", out);
}
END_TEST

/* ---- A revoked device stops reconnecting ---------------------------------- */

START_TEST(test_revoked_listener)
{
	char ca[700], cb[700], out[8192], f[700];
	char *lis[] = { (char *)tool(), "listen", "--config", cb, NULL };
	char *ctl[] = { (char *)tool(), "ctl", "--broker", B.uri,
			"--admin-key", B.admin_key, "removeDevice", "id=bob",
			NULL };
	pid_t pb;
	int rc;

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	enrol_pair(ca, cb);
	snprintf(f, sizeof(f), "%s/listen.out", B.dir);
	pb = spawn(lis, f);
	ck_assert(wait_text(f, "listening as bob", 30));
	ck_assert_msg(run(ctl, out, sizeof(out), 30) == 0, "%s", out);
	/* It exits on its own, saying why, instead of retrying for ever. */
	rc = reap(pb, 60);
	ck_assert_msg(rc == 1, "rc %d\n%s", rc, slurp(f));
	ck_assert_msg(strstr(slurp(f), "revoked") &&
		      strstr(slurp(f), "not reconnecting"), "%s", slurp(f));
	{
		/* health says it too, with its own exit status. */
		char *h[] = { (char *)tool(), "health", "--config", cb, NULL };

		ck_assert_int_eq(run(h, out, sizeof(out), 30), 3);
		ck_assert_msg(strstr(out, "revoked"), "%s", out);
	}
}
END_TEST

/* ---- Reconnect lines, --verbose -------------------------------------------- */

START_TEST(test_reconnect)
{
	char ca[700], cb[700], out[8192], f[700], err[2048];
	char *lis[] = { (char *)tool(), "listen", "--config", cb, NULL };
	char *snd[] = { (char *)tool(), "send", "bob", "after the restart",
			"--wait", "--verbose", "--config", ca, NULL };
	pid_t pb;

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	enrol_session(ca, cb);
	snprintf(f, sizeof(f), "%s/listen.out", B.dir);
	pb = spawn(lis, f);
	ck_assert(wait_text(f, "listening as bob", 30));
	broker_stop(&B);
	ck_assert_msg(wait_text(f, "disconnected from", 30), "%s", slurp(f));
	ck_assert_msg(wait_text(f, "reconnecting", 10), "%s", slurp(f));
	ck_assert_msg(broker_restart(&B, err, sizeof(err)), "%s", err);
	ck_assert_msg(wait_text(f, "reconnected to", 60), "%s", slurp(f));
	/* --verbose: every package, and the CS's answer to it. */
	ck_assert_msg(run(snd, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(strstr(out, "accepted by the CS"), "%s", out);
	ck_assert_msg(wait_text(f, "after the restart", 30), "%s", slurp(f));
	kill(pb, SIGTERM);
	ck_assert_int_eq(reap(pb, 30), 0);
}
END_TEST

/* ---- A device on a broker list names the broker it is on ---------------- */

START_TEST(test_failover_names_broker)
{
	char ca[700], cb[700], f[700], dead[64], want[128], wrong[128];
	char *lis[] = { (char *)tool(), "listen", "--config", cb, NULL };
	char *txt = NULL, *a;
	size_t n = 0;
	int port;
	pid_t pb;
	FILE *fp;

	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	enrol_session(ca, cb);
	/* bob's list starts with a broker that is down: he connects to the
	 * second, and his log must name that one (it named the first). */
	do
		port = broker_free_port();
	while (port == B.port);
	snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%d", port);
	fp = fopen(cb, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_gt(getdelim(&txt, &n, '\0', fp), 0);
	fclose(fp);
	a = strstr(txt, "\"broker\":\"");
	ck_assert_ptr_nonnull(a);
	a = strchr(a + strlen("\"broker\":\""), '"');
	ck_assert_ptr_nonnull(a);
	fp = fopen(cb, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "{\"broker\":[\"%s\",\"%s\"]%s", dead, B.uri, a + 1);
	fclose(fp);
	free(txt);

	snprintf(f, sizeof(f), "%s/listen.out", B.dir);
	snprintf(want, sizeof(want), "connected to %s", B.uri);
	snprintf(wrong, sizeof(wrong), "connected to %s", dead);
	pb = spawn(lis, f);
	ck_assert_msg(wait_text(f, "listening as bob", 60), "%s", slurp(f));
	ck_assert_msg(strstr(slurp(f), want) && !strstr(slurp(f), wrong),
		      "%s", slurp(f));
	kill(pb, SIGTERM);
	ck_assert_int_eq(reap(pb, 30), 0);
}
END_TEST

/* ---- status, health, unpair, register --code -------------------------------- */

START_TEST(test_status)
{
	char ca[700], cb[700], cc[700], cw[700], out[8192], uri[64];
	char *st[] = { (char *)tool(), "status", "--config", ca, NULL };
	char *stj[] = { (char *)tool(), "status", "--json", "--config", ca,
			NULL };
	char *h_ok[] = { (char *)tool(), "health", "--peer", "bob",
			 "--config", ca, NULL };
	char *h_nos[] = { (char *)tool(), "health", "--peer", "carol",
			  "--config", ca, NULL };
	char *h_reg[] = { (char *)tool(), "health", "--config", cc, NULL };
	char *h_port[] = { (char *)tool(), "health", "--config", cw, NULL };
	char *unp[] = { (char *)tool(), "unpair", "bob", "--admin-key",
			B.admin_key, "--config", ca, NULL };
	char *pairs[] = { (char *)tool(), "ctl", "--config", ca, "listPairs",
			  NULL };

	start_broker("plugin_opt_enrollment code\n");
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	make_device("carol", 3, NULL, NULL, cc, sizeof(cc));
	/* Enrolment by code: --code on the command line. */
	{
		char *add[] = { (char *)tool(), "ctl", "--config", ca,
				"addEnrolmentCode", "id=alice",
				"code=alice-code-1234", NULL };
		char *add_b[] = { (char *)tool(), "ctl", "--config", ca,
				  "addEnrolmentCode", "id=bob",
				  "code=bob-code-12345", NULL };
		char *reg[] = { (char *)tool(), "register", "--code",
				"alice-code-1234", "--config", ca, NULL };
		char *reg_b[] = { (char *)tool(), "register", "--code",
				  "bob-code-12345", "--config", cb, NULL };
		char *reg_nocode[] = { (char *)tool(), "register", "--config",
				       cc, NULL };

		ck_assert_msg(run(reg_nocode, out, sizeof(out), 60) == 1, "%s",
			      out);
		ck_assert_msg(run(add, out, sizeof(out), 30) == 0, "%s", out);
		ck_assert_msg(run(add_b, out, sizeof(out), 30) == 0, "%s", out);
		ck_assert_msg(run(reg, out, sizeof(out), 60) == 0, "%s", out);
		ck_assert_msg(run(reg_b, out, sizeof(out), 60) == 0, "%s", out);
	}
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "registered  yes") &&
		      strstr(out, "peers       none"), "%s", out);
	ck_assert_int_eq(run(h_reg, out, sizeof(out), 30), 4);
	/* a port nothing listens on (B.port + 1 may be another test's) */
	{
		int free_port;

		do
			free_port = broker_free_port();
		while (free_port == B.port);
		snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", free_port);
	}
	make_device("wrongport", 4, uri, NULL, cw, sizeof(cw));
	ck_assert_int_eq(run(h_port, out, sizeof(out), 30), 1);
	ck_assert_msg(strstr(out, uri) && strstr(out, "connection refused"),
		      "%s", out);
	{
		/* Pair and negotiate (bob online through e2e_device). */
		char *pa[] = { (char *)tool(), "pair", "bob", "--no-wait",
			       "--config", ca, NULL };
		char *pb_[] = { (char *)tool(), "pair", "alice", "--config", cb,
				NULL };
		char *bv[] = { (char *)device_prog(), cb, "alice", "--expect",
			       "1", "--timeout", "60", NULL };
		char *av[] = { (char *)device_prog(), ca, "bob", "--initiate",
			       "--send", "1", "--timeout", "60", NULL };
		char f[700];
		pid_t p1, p2;

		ck_assert_msg(run(pa, out, sizeof(out), 60) == 0, "%s", out);
		ck_assert_msg(run(pb_, out, sizeof(out), 60) == 0, "%s", out);
		snprintf(f, sizeof(f), "%s/bob.out", B.dir);
		p2 = spawn(bv, f);
		ck_assert(wait_text(f, "READY", 30));
		p1 = spawn(av, "/dev/null");
		ck_assert_int_eq(reap(p1, 60), 0);
		ck_assert_int_eq(reap(p2, 60), 0);
	}
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "peer        bob: paired") &&
		      strstr(out, "(initiator), send next 2, receive next 1"),
		      "%s", out);
	ck_assert_int_eq(run(stj, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "\"peer\":\"bob\"") &&
		      strstr(out, "\"send_next\":\"2\"") &&
		      strstr(out, "\"role\":\"initiator\"") &&
		      strstr(out, "\"registered\":true"), "%s", out);
	ck_assert_msg(run(h_ok, out, sizeof(out), 30) == 0, "%s", out);
	ck_assert_msg(run(h_nos, out, sizeof(out), 30) == 5, "%s", out);
	/* unpair: forgotten here, removed at the CS. */
	ck_assert_msg(run(unp, out, sizeof(out), 60) == 0, "%s", out);
	ck_assert_msg(strstr(out, "removed the pair alice/bob at the CS"), "%s",
		      out);
	ck_assert_int_eq(run(st, out, sizeof(out), 30), 0);
	ck_assert_msg(strstr(out, "peers       none"), "%s", out);
	ck_assert_int_eq(run(pairs, out, sizeof(out), 30), 0);
	ck_assert_msg(!strstr(out, "alice~bob"), "%s", out);
}
END_TEST

/* ---- The C API -------------------------------------------------------------- */

struct api_ctx {
	pthread_mutex_t lock;
	unsigned sent_ok, sent_other, logs, in_cb_done;
	uint64_t last_seq;
	int in_cb;                  /* the result of a blocking call made
				     * from the message callback */
	long in_cb_ms;
	char reason[300];
	struct s2s_client *self;
};

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
api_sent(void *ud, const struct s2s_sent_result *r)
{
	struct api_ctx *x = ud;

	pthread_mutex_lock(&x->lock);
	if (r->err == S2S_OK && !strcmp(r->peer, "bob") &&
	    r->seq == x->last_seq + 1) {
		x->sent_ok++;
		x->last_seq = r->seq;
	} else {
		x->sent_other++;
	}
	pthread_mutex_unlock(&x->lock);
}

static void
api_log(void *ud, enum s2s_log_level level, const char *line)
{
	struct api_ctx *x = ud;

	(void)level;
	ck_assert_ptr_nonnull(line);
	__atomic_add_fetch(&x->logs, 1, __ATOMIC_SEQ_CST);
}

static void
api_message(void *ud, const struct s2s_message_info *i, const uint8_t *m,
	    size_t n)
{
	struct api_ctx *x = ud;
	long t0 = mono_ms();
	int rc;

	(void)i;
	(void)m;
	(void)n;
	/* Not allowed here: it must fail at once, not stall 10 s. */
	rc = s2s_client_session(x->self, "alice", 10000);
	pthread_mutex_lock(&x->lock);
	x->in_cb = rc;
	x->in_cb_ms = mono_ms() - t0;
	s2s_client_last_reason(x->self, x->reason, sizeof(x->reason));
	x->in_cb_done = 1;
	pthread_mutex_unlock(&x->lock);
}

START_TEST(test_api)
{
	char ca[700], cb[700], err[512];
	struct s2s_client *a, *b;
	struct s2s_sent_info info;
	struct api_ctx xa, xb;
	uint64_t t = 0;

	memset(&xa, 0, sizeof(xa));
	memset(&xb, 0, sizeof(xb));
	pthread_mutex_init(&xa.lock, NULL);
	pthread_mutex_init(&xb.lock, NULL);
	start_broker(NULL);
	make_device("alice", 1, NULL, NULL, ca, sizeof(ca));
	make_device("bob", 2, NULL, NULL, cb, sizeof(cb));
	ck_assert_msg(s2s_client_create(ca, &a, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_msg(s2s_client_create(cb, &b, err, sizeof(err)) == 0, "%s",
		      err);
	xb.self = b;
	s2s_client_on_sent(a, api_sent, &xa);
	s2s_client_on_log(a, api_log, &xa, S2S_LOG_DEBUG);
	s2s_client_on_message(b, api_message, &xb);
	/* Timeout 0: connect in the background. */
	ck_assert_int_eq(s2s_client_connect(a, 0), S2S_ERR_TIMEOUT);
	for (int i = 0; i < 3000 && !s2s_client_connected(a); i++)
		usleep(10000);
	ck_assert(s2s_client_connected(a));
	ck_assert_int_eq(s2s_client_register(a, S2S_TIMEOUT_DEFAULT), S2S_OK);
	ck_assert_int_eq(s2s_client_register(b, S2S_TIMEOUT_DEFAULT), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, 0), S2S_ERR_TIMEOUT);
	ck_assert_int_eq(s2s_client_pair(b, "alice", 0, -1), S2S_OK);
	ck_assert_int_eq(s2s_client_pair(a, "bob", 0, -1), S2S_OK);
	/* Timeout 0: the negotiation goes on after the call returns. */
	ck_assert_int_eq(s2s_client_session(a, "bob", 0), S2S_ERR_TIMEOUT);
	ck_assert_int_eq(s2s_client_wait_session(a, "bob", 30000), S2S_OK);
	ck_assert_int_eq(s2s_client_wait_session(b, "alice", 30000), S2S_OK);
	ck_assert(s2s_client_has_session(a, "bob", &t));
	{
		struct s2s_peer_status ps;

		ck_assert_uint_eq(s2s_client_peer_count(a), 1);
		ck_assert_int_eq(s2s_client_peer_status(a, 0, &ps), S2S_OK);
		ck_assert_str_eq(ps.peer, "bob");
		ck_assert_int_eq(ps.pair, 2);
		ck_assert(ps.established);
		ck_assert_uint_eq(ps.session, t);
		ck_assert_uint_eq(ps.send_next, 1);
		ck_assert_int_eq(s2s_client_peer_status(a, 1, &ps),
				 S2S_ERR_NOT_FOUND);
	}
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(s2s_client_send(a, "bob",
						 (const uint8_t *)"x", 1,
						 S2S_SEND_KEEP_PACKAGE, &info),
				 S2S_OK);
		ck_assert_ptr_nonnull(info.package);
		s2s_free(info.package);
	}
	ck_assert_int_eq(s2s_client_flush(a, 20000), S2S_OK);
	for (int i = 0; i < 3000; i++) {
		pthread_mutex_lock(&xa.lock);
		if (xa.sent_ok == 5) {
			pthread_mutex_unlock(&xa.lock);
			break;
		}
		pthread_mutex_unlock(&xa.lock);
		usleep(10000);
	}
	ck_assert_uint_eq(xa.sent_ok, 5);
	ck_assert_uint_eq(xa.sent_other, 0);
	ck_assert_uint_gt(__atomic_load_n(&xa.logs, __ATOMIC_SEQ_CST), 5);
	/* The blocking call in bob's message callback. */
	for (int i = 0; i < 3000; i++) {
		pthread_mutex_lock(&xb.lock);
		if (xb.in_cb_done) {
			pthread_mutex_unlock(&xb.lock);
			break;
		}
		pthread_mutex_unlock(&xb.lock);
		usleep(10000);
	}
	ck_assert_int_eq(xb.in_cb_done, 1);
	ck_assert_int_eq(xb.in_cb, S2S_ERR_STATE);
	ck_assert_msg(strstr(xb.reason, "from a callback"), "%s", xb.reason);
	/* far below the 10 s it would stall (not a speed: a loaded machine) */
	ck_assert_msg(xb.in_cb_ms < 5000, "%ld ms", xb.in_cb_ms);
	/* Peers: a device cannot pair with itself; the reason says so. */
	ck_assert_int_eq(s2s_client_pair(a, "alice", 0, -1), S2S_ERR_INVAL);
	s2s_client_last_reason(a, err, sizeof(err));
	ck_assert_msg(strstr(err, "itself"), "%s", err);
	/* forget_peer: gone from the device's own view. */
	ck_assert_int_eq(s2s_client_forget_peer(a, "bob"), S2S_OK);
	ck_assert_uint_eq(s2s_client_peer_count(a), 0);
	ck_assert_int_eq(s2s_client_forget_peer(a, "bob"), S2S_ERR_NOT_FOUND);
	s2s_client_destroy(a);
	s2s_client_destroy(b);
	pthread_mutex_destroy(&xa.lock);
	pthread_mutex_destroy(&xb.lock);
}
END_TEST

static TCase *
tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, NULL, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

/* One case per scenario: CK_RUN_CASE=unread runs one. */
static Suite *
make_suite(void)
{
	Suite *s = suite_create("client_ux");

	tcase_add_test(tcase(s, "lock"), test_lock);
	tcase_add_test(tcase(s, "unread"), test_unread);
	tcase_add_test(tcase(s, "unread_callback"), test_unread_callback);
	tcase_add_test(tcase(s, "errors"), test_errors);
	tcase_add_test(tcase(s, "waiting"), test_waiting);
	tcase_add_test(tcase(s, "revoked_listener"), test_revoked_listener);
	tcase_add_test(tcase(s, "reconnect"), test_reconnect);
	tcase_add_test(tcase(s, "failover_names_broker"),
		       test_failover_names_broker);
	tcase_add_test(tcase(s, "status"), test_status);
	tcase_add_test(tcase(s, "api"), test_api);
	return s;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	if (!broker_plugin_path() || access("/usr/sbin/mosquitto", X_OK)) {
		fprintf(stderr, "client_ux: no mosquitto or no plugin: skip\n");
		return 77;
	}
	sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	s2s_crypto_shutdown();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
