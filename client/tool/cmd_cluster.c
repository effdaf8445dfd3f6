/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd_cluster.c - `s2s cluster-config` (the mosquitto.conf fragments of an
 * N-broker cluster, cluster_conf.h) and `s2s demo --cluster N`: a private
 * PostgreSQL, N bridged brokers on it, two devices on different brokers,
 * kill -9 of the sender's broker under load, and a table (or one JSON
 * object, key "cluster") of what reached the receiver.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker_run.h"
#include "cluster_conf.h"
#include "json.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/secmem.h"
#include "tool.h"
#ifdef S2S_HAVE_PGH
#include "pg_harness.h"
#endif

#define SECRET_HEX 64

static void
random_hex(char out[SECRET_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[SECRET_HEX / 2];

	if (s2s_random(rnd, sizeof(rnd)) != S2S_OK)
		abort();
	for (size_t k = 0; k < sizeof(rnd); k++) {
		out[2 * k] = hex[rnd[k] >> 4];
		out[2 * k + 1] = hex[rnd[k] & 15];
	}
	out[SECRET_HEX] = 0;
	S2S_WIPE(rnd);
}

/* Write one line (0600); false on error. */
static bool
write_secret(const char *path, const char *secret)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, secret, strlen(secret)) == (ssize_t)strlen(secret) &&
	     write(fd, "\n", 1) == 1;
	return close(fd) == 0 && ok;
}

static bool
read_secret(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (!f)
		return false;
	ok = fgets(out, (int)n, f) != NULL;
	fclose(f);
	if (ok)
		out[strcspn(out, "\r\n")] = 0;
	return ok && strlen(out) >= 16;
}

/* ---- s2s cluster-config ---------------------------------------------------- */

static void
config_usage(FILE *f)
{
	fprintf(f,
		"usage: s2s cluster-config --brokers ID=HOST:PORT,ID=HOST:PORT"
		"[,...]\n"
		"                          [--out DIR] [--root s2s]\n"
		"                          [--secret-file PATH]\n"
		"                          [--bridge-cafile F] [--bridge-certfile F]"
		"\n"
		"                          [--bridge-keyfile F]\n"
		"\n"
		"Writes, for every broker of an s2s cluster, the mosquitto.conf\n"
		"lines to put after its `plugin` line (its broker id, its bridge\n"
		"peers, and one bridge to every other broker): DIR/ID.conf, or\n"
		"all on stdout.  HOST:PORT is where the other brokers reach it.\n"
		"The bridges log in with one password: read from the local file\n"
		"PATH when it exists, else made and written to DIR/bridge.secret\n"
		"(0600); install it as PATH (default\n"
		"/etc/mosquitto/s2s-bridge.secret) on every broker, readable by\n"
		"the broker user.  Every broker also needs the same\n"
		"plugin_opt_store (PostgreSQL) and the same CS key files.\n"
		"TLS between brokers: --bridge-cafile (the CA of the peers'\n"
		"listener certificates), --bridge-certfile/--bridge-keyfile\n"
		"(this broker's client certificate; \"{id}\" in a path becomes\n"
		"the broker id) go into every bridge; HOST:PORT must then be\n"
		"the peers' TLS listeners (docs/CLUSTER.md, \"Trust\").\n");
}

int
cmd_cluster_config(int argc, char **argv)
{
	struct cc_broker b[CC_MAX_BROKERS];
	const char *spec = NULL, *out = NULL, *root = "s2s";
	const char *secret_file = "/etc/mosquitto/s2s-bridge.secret";
	struct cc_tls tls = { NULL, NULL, NULL };
	char secret[256], err[256], path[4096 + 64];
	int n;

	if (tool_wants_help(argc, argv)) {
		config_usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--brokers") == 0)
			spec = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--out") == 0)
			out = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--root") == 0)
			root = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--secret-file") == 0)
			secret_file = argv[++i];
		else if (i + 1 < argc &&
			 strcmp(argv[i], "--bridge-cafile") == 0)
			tls.cafile = argv[++i];
		else if (i + 1 < argc &&
			 strcmp(argv[i], "--bridge-certfile") == 0)
			tls.certfile = argv[++i];
		else if (i + 1 < argc &&
			 strcmp(argv[i], "--bridge-keyfile") == 0)
			tls.keyfile = argv[++i];
		else {
			config_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!spec) {
		config_usage(stderr);
		return EXIT_USAGE;
	}
	if (!tls.certfile != !tls.keyfile)
		return tool_fail(EXIT_USAGE, "cluster-config", "--bridge-"
				 "certfile and --bridge-keyfile go together");
	n = cc_parse(spec, b, CC_MAX_BROKERS, err, sizeof(err));
	if (n < 0)
		return tool_fail(EXIT_USAGE, "cluster-config", "--brokers: %s",
				 err);
	if (!read_secret(secret_file, secret, sizeof(secret))) {
		random_hex(secret);
		if (out) {
			snprintf(path, sizeof(path), "%.4000s/bridge.secret",
				 out);
			if (mkdir(out, 0755) && errno != EEXIST)
				return tool_fail(1, "cluster-config", "mkdir "
						 "%s: %s", out,
						 strerror(errno));
			if (!write_secret(path, secret))
				return tool_fail(1, "cluster-config", "cannot "
						 "write %s", path);
			fprintf(stderr, "s2s cluster-config: new bridge "
				"password in %s: install it as %s on every "
				"broker\n", path, secret_file);
		} else {
			fprintf(stderr, "s2s cluster-config: %s does not "
				"exist: a new bridge password is in the "
				"fragments (remote_password); write it as "
				"one line into %s on every broker\n",
				secret_file, secret_file);
		}
	}
	for (int i = 0; i < n; i++) {
		FILE *f = stdout;

		if (out) {
			snprintf(path, sizeof(path), "%.4000s/%.48s.conf", out,
				 b[i].id);
			f = fopen(path, "w");
			if (!f) {
				S2S_WIPE(secret);
				return tool_fail(1, "cluster-config", "cannot "
						 "write %s", path);
			}
		}
		if (cc_fragment_tls(f, b, (size_t)n, (size_t)i, root,
				    secret_file, secret, &tls) != 0) {
			S2S_WIPE(secret);
			return tool_fail(1, "cluster-config", "write error");
		}
		if (out) {
			fclose(f);
			printf("%s\n", path);
		} else {
			fputc('\n', f);
		}
	}
	S2S_WIPE(secret);
	return 0;
}

/* ---- s2s demo --cluster N ----------------------------------------------------- */

#define DEMO_MAXSEQ 4096

struct cdemo {
	int n, messages;
	bool json, keep;
	char dir[256];
	char csdir[300];
	char secret_file[320];
	char store[300];
	struct broker_run br[CC_MAX_BROKERS];
	struct cc_broker cc[CC_MAX_BROKERS];
	/* receiver */
	pthread_mutex_t lock;
	unsigned seen[DEMO_MAXSEQ];
	double seen_t[DEMO_MAXSEQ];
	unsigned got, fetched, out_of_order;
	uint64_t t0, last_seq;
	/* sender */
	struct s2s_client *a, *b;
	volatile int acked_n;
	uint64_t acked[DEMO_MAXSEQ];
	double acked_t[DEMO_MAXSEQ];
	int send_errors;
	volatile int kill_at;
	double t_kill;
};

static double
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
say(const struct cdemo *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say(const struct cdemo *d, const char *fmt, ...)
{
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	fputs("s2s demo: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void
on_msg(void *ud, const struct s2s_message_info *i, const uint8_t *m,
       size_t n)
{
	struct cdemo *d = ud;

	(void)m;
	(void)n;
	pthread_mutex_lock(&d->lock);
	if (i->session == d->t0 && i->seq < DEMO_MAXSEQ) {
		if (!d->seen[i->seq])
			d->seen_t[i->seq] = mono_ms();
		d->seen[i->seq]++;
		if (i->seq <= d->last_seq)
			d->out_of_order++;
		d->last_seq = i->seq;
	}
	d->got++;
	d->fetched += i->fetched;
	pthread_mutex_unlock(&d->lock);
}

static void
give_to_broker(const char *path)
{
	struct passwd *pw;

	if (geteuid() != 0 || !(pw = getpwnam("mosquitto")))
		return;
	if (chown(path, pw->pw_uid, pw->pw_gid) != 0)
		fprintf(stderr, "s2s demo: chown %s: %s\n", path,
			strerror(errno));
}

static bool
make_keys(struct cdemo *d)
{
	char path[400];
	struct s2s_key *k = NULL;
	enum s2s_err e;
	static const char *const own[] = {
		"cs.key", "cs.pub", "cs.admin.pub", "cs.admin.key",
	};

	snprintf(d->csdir, sizeof(d->csdir), "%s/cs", d->dir);
	if (mkdir(d->csdir, 0700))
		return false;
	snprintf(path, sizeof(path), "%s/cs", d->csdir);
	e = s2s_key_generate(&k);
	if (!e)
		e = s2s_key_save(k, path);
	s2s_key_destroy(k);
	k = NULL;
	snprintf(path, sizeof(path), "%s/cs.admin", d->csdir);
	if (!e)
		e = s2s_key_generate(&k);
	if (!e)
		e = s2s_key_save(k, path);
	s2s_key_destroy(k);
	if (e)
		return false;
	give_to_broker(d->csdir);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->csdir, own[i]);
		give_to_broker(path);
	}
	return true;
}

/* Every broker's log shows the bridges of its n - 1 peers. */
static bool
bridges_up(const struct cdemo *d, int timeout_ms)
{
	double end = mono_ms() + timeout_ms;

	for (;;) {
		int ok = 0;

		for (int i = 0; i < d->n; i++) {
			FILE *f = fopen(d->br[i].log, "r");
			char line[1024];
			int c = 0;

			while (f && fgets(line, sizeof(line), f))
				c += strstr(line, "bridge of broker '") != NULL;
			if (f)
				fclose(f);
			ok += c >= d->n - 1;
		}
		if (ok == d->n)
			return true;
		if (mono_ms() > end)
			return false;
		usleep(50000);
	}
}

static bool
make_device(struct cdemo *d, const char *name, uint32_t user, int first,
	    char *cfg, size_t n)
{
	char dir[400], key[500], sig[500];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	FILE *f;
	enum s2s_err e;

	snprintf(dir, sizeof(dir), "%s/%s", d->dir, name);
	if (mkdir(dir, 0700))
		return false;
	snprintf(key, sizeof(key), "%s/%s", dir, name);
	e = s2s_key_generate(&k);
	if (!e)
		e = s2s_key_save(k, key);
	s2s_key_destroy(k);
	snprintf(sig, sizeof(sig), "%s/sig.png", dir);
	if (!e)
		e = s2s_bio_siggen(user, 1, &img);
	if (!e)
		e = s2s_image_write_file(&img, sig, 6);
	s2s_image_free(&img);
	if (e)
		return false;
	snprintf(cfg, n, "%s/device.json", dir);
	f = fopen(cfg, "w");
	if (!f)
		return false;
	fprintf(f, "{\"broker\":[");
	for (int i = 0; i < d->n; i++)
		fprintf(f, "%s\"tcp://127.0.0.1:%d\"", i ? "," : "",
			d->cc[(first + i) % d->n].port);
	fprintf(f, "],\"id\":\"%s\",\"key\":\"%s.key\",\"cs_key\":"
		"\"%s/cs.pub\",\"signature\":\"%s\",\"state_dir\":\"state\","
		"\"covers\":\"builtin\",\"state_fsync\":false,\"keepalive\":5,"
		"\"timeouts\":{\"connect\":10,\"pair\":20,\"session\":20,"
		"\"fetch\":5}}\n", name, key, d->csdir, sig);
	return fclose(f) == 0;
}

static void *
sender(void *arg)
{
	struct cdemo *d = arg;

	for (int i = 0; i < d->messages; i++) {
		struct s2s_sent_info info;
		char msg[64];
		enum s2s_err e;

		if (i == d->kill_at && !d->t_kill) {
			d->t_kill = mono_ms();
			if (!broker_kill9(&d->br[0]))
				say(d, "could not kill broker b0");
		}
		snprintf(msg, sizeof(msg), "reading %d", i + 1);
		memset(&info, 0, sizeof(info));
		e = s2s_client_send(d->a, "bob", (const uint8_t *)msg,
				    strlen(msg), S2S_SEND_WAIT_ACK, &info);
		if (e == S2S_OK) {
			int k = d->acked_n;

			if (k < DEMO_MAXSEQ) {
				d->acked[k] = info.session == d->t0 ?
					      info.seq : 0;
				d->acked_t[k] = mono_ms();
			}
			__atomic_add_fetch(&d->acked_n, 1, __ATOMIC_SEQ_CST);
		} else {
			if (!d->send_errors++)
				say(d, "alice: send %d: %s (retrying)", i + 1,
				    s2s_strerror(e));
			usleep(20000);
		}
	}
	return NULL;
}

static int
demo_fail(struct cdemo *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
demo_fail(struct cdemo *d, const char *fmt, ...)
{
	va_list ap;

	(void)d;
	va_start(ap, fmt);
	fputs("s2s demo: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static int
run_cluster(struct cdemo *d)
{
#ifndef S2S_HAVE_PGH
	return demo_fail(d, "--cluster needs PostgreSQL support (libpq) in "
			 "this build");
#else
	struct pgh_server *pg = NULL;
	char secret[SECRET_HEX + 1], err[4096], ca[600], cb[600];
	pthread_t th;
	double t_back = 0, t_first = 0, t_start;
	unsigned delivered = 0, lost = 0, dup = 0, acked = 0;
	int rc = 1, r;
	uint64_t t1 = 0;

	t_start = mono_ms();
	r = pgh_start(&pg);
	if (r == PGH_SKIP)
		return demo_fail(d, "PostgreSQL is not installed (apt-get "
				 "install postgresql)");
	if (r != 0 || pgh_create_db(pg, "s2s", d->store,
				    sizeof(d->store)) != 0) {
		pgh_destroy(pg);
		return demo_fail(d, "cannot start a private PostgreSQL");
	}
	say(d, "PostgreSQL %s on 127.0.0.1:%d", pgh_dir(pg), pgh_port(pg));
	snprintf(d->dir, sizeof(d->dir), "%s/s2s-cluster-XXXXXX",
		 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") :
		 "/tmp");
	if (!mkdtemp(d->dir) || (geteuid() == 0 && chmod(d->dir, 0755)) ||
	    !make_keys(d)) {
		demo_fail(d, "cannot make the CS keys in %s", d->dir);
		goto out;
	}
	random_hex(secret);
	snprintf(d->secret_file, sizeof(d->secret_file), "%s/bridge.secret",
		 d->csdir);
	if (!write_secret(d->secret_file, secret)) {
		demo_fail(d, "cannot write %s", d->secret_file);
		goto out;
	}
	give_to_broker(d->secret_file);
	for (int i = 0; i < d->n; i++) {
		snprintf(d->cc[i].id, sizeof(d->cc[i].id), "b%d", i);
		snprintf(d->cc[i].host, sizeof(d->cc[i].host), "127.0.0.1");
	}
	/* ports first: every broker's bridges name the others */
	for (int i = 0; i < d->n; i++) {
		int p;

		do {
			p = broker_free_port();
			for (int k = 0; k < i; k++)
				if (d->cc[k].port == p)
					p = 0;
		} while (p <= 0);
		d->cc[i].port = p;
	}
	for (int i = 0; i < d->n; i++) {
		struct broker_run_opts o = { 0 };
		char *frag = NULL;
		size_t fl = 0;
		FILE *f = open_memstream(&frag, &fl);
		bool ok;

		if (!f || cc_fragment(f, d->cc, (size_t)d->n, (size_t)i, "s2s",
				      d->secret_file, secret) != 0) {
			if (f)
				fclose(f);
			free(frag);
			demo_fail(d, "out of memory");
			goto out;
		}
		fprintf(f, "plugin_opt_stats_interval 1\n");
		fclose(f);
		o.profile = "hardened";
		o.extra = frag;
		o.port = d->cc[i].port;
		o.cs_dir = d->csdir;
		o.store = d->store;
		ok = broker_start_ex(&d->br[i], &o, err, sizeof(err));
		free(frag);
		if (!ok) {
			demo_fail(d, "broker b%d: %s", i, err);
			goto out;
		}
		say(d, "broker b%d on %s", i, d->br[i].uri);
	}
	if (!bridges_up(d, 30000)) {
		demo_fail(d, "the bridges did not connect within 30 s");
		goto out;
	}
	say(d, "%d brokers bridged in a full mesh (%d bridges)", d->n,
	    d->n * (d->n - 1));
	S2S_WIPE(secret);

	if (!make_device(d, "alice", 1, 0, ca, sizeof(ca)) ||
	    !make_device(d, "bob", 2, 1, cb, sizeof(cb))) {
		demo_fail(d, "cannot make the devices' keys");
		goto out;
	}
	if (s2s_client_create(ca, &d->a, err, sizeof(err)) ||
	    s2s_client_create(cb, &d->b, err, sizeof(err))) {
		demo_fail(d, "device: %s", err);
		goto out;
	}
	s2s_client_on_message(d->b, on_msg, d);
	if (s2s_client_connect(d->a, -1) || s2s_client_connect(d->b, -1) ||
	    s2s_client_register(d->a, -1) || s2s_client_register(d->b, -1) ||
	    s2s_client_pair(d->a, "bob", 0, 0) != S2S_ERR_TIMEOUT ||
	    s2s_client_pair(d->b, "alice", 0, -1) ||
	    s2s_client_pair(d->a, "bob", 0, -1) ||
	    s2s_client_session(d->a, "bob", -1) ||
	    s2s_client_wait_session(d->b, "alice", 20000) ||
	    !s2s_client_has_session(d->a, "bob", &d->t0)) {
		s2s_client_last_reason(d->a, err, sizeof(err));
		demo_fail(d, "alice (on b0) and bob (on b1) could not "
			  "register, pair and negotiate: %s", err[0] ? err :
			  "see the broker logs");
		goto out;
	}
	say(d, "alice on b0 and bob on b1 registered, paired and negotiated "
	    "across brokers");
	say(d, "alice sends %d messages; kill -9 of broker b0 after %d",
	    d->messages, d->kill_at);
	if (pthread_create(&th, NULL, sender, d)) {
		demo_fail(d, "cannot start the sender");
		goto out;
	}
	pthread_join(th, NULL);
	(void)s2s_client_flush(d->a, 20000);
	(void)s2s_client_has_session(d->a, "bob", &t1);
	/* wait for bob: the bridges, then FETCH for what b0 took down */
	{
		double end = mono_ms() + 30000;

		for (;;) {
			lost = 0;
			pthread_mutex_lock(&d->lock);
			for (int i = 0; i < d->acked_n && i < DEMO_MAXSEQ; i++)
				if (d->acked[i] && !d->seen[d->acked[i]])
					lost++;
			pthread_mutex_unlock(&d->lock);
			if (!lost || mono_ms() > end)
				break;
			usleep(100000);
		}
		usleep(500000);
	}
	pthread_mutex_lock(&d->lock);
	for (int i = 0; i < d->acked_n && i < DEMO_MAXSEQ; i++) {
		uint64_t q = d->acked[i];

		if (!q)
			continue;
		acked++;
		delivered += d->seen[q] > 0;
		if (d->acked_t[i] > d->t_kill && !t_back)
			t_back = d->acked_t[i];
		if (d->acked_t[i] > d->t_kill && d->seen[q] &&
		    (!t_first || d->seen_t[q] < t_first))
			t_first = d->seen_t[q];
	}
	lost = acked - delivered;
	for (int q = 1; q < DEMO_MAXSEQ; q++)
		dup += d->seen[q] > 1 ? d->seen[q] - 1 : 0;
	pthread_mutex_unlock(&d->lock);

	if (d->json) {
		struct s2s_json *o = s2s_json_new_object(), *c, *a;
		char *text;
		size_t len;

		c = s2s_json_add_object(o, "cluster");
		s2s_json_add_int(c, "brokers", d->n);
		s2s_json_add_string(c, "killed", "b0");
		s2s_json_add_int(c, "sent", d->messages);
		s2s_json_add_int(c, "acknowledged", acked);
		s2s_json_add_int(c, "delivered", delivered);
		s2s_json_add_int(c, "lost", lost);
		s2s_json_add_int(c, "duplicates", dup);
		s2s_json_add_int(c, "out_of_order", d->out_of_order);
		s2s_json_add_int(c, "recovered_by_fetch", d->fetched);
		s2s_json_add_int(c, "send_errors", d->send_errors);
		s2s_json_add_bool(c, "same_session", t1 == d->t0);
		s2s_json_add_int(c, "failover_ack_ms",
				 t_back ? (int64_t)(t_back - d->t_kill) : -1);
		s2s_json_add_int(c, "failover_delivery_ms",
				 t_first ? (int64_t)(t_first - d->t_kill) :
				 -1);
		s2s_json_add_int(c, "seconds",
				 (int64_t)((mono_ms() - t_start) / 1000));
		a = s2s_json_add_array(c, "broker_list");
		for (int i = 0; i < d->n; i++) {
			struct s2s_json *b = s2s_json_push_object(a);

			s2s_json_add_string(b, "id", d->cc[i].id);
			s2s_json_add_string(b, "uri", d->br[i].uri);
			s2s_json_add_bool(b, "killed", i == 0);
		}
		text = s2s_json_print(o, &len);
		if (text)
			printf("%s\n", text);
		free(text);
		s2s_json_free(o);
	} else {
		printf("s2s demo --cluster %d: PostgreSQL + %d bridged brokers, "
		       "alice on b0 -> bob on b1\n\n", d->n, d->n);
		printf("  %-34s %s\n", "broker killed (kill -9)", "b0 (alice's)");
		printf("  %-34s %d\n", "messages sent", d->messages);
		printf("  %-34s %u\n", "acknowledged by a broker", acked);
		printf("  %-34s %u\n", "delivered to bob", delivered);
		printf("  %-34s %u\n", "lost", lost);
		printf("  %-34s %u\n", "duplicates", dup);
		printf("  %-34s %u\n", "out of order", d->out_of_order);
		printf("  %-34s %u\n", "recovered from the store (FETCH)",
		       d->fetched);
		printf("  %-34s %s\n", "alice's session",
		       t1 == d->t0 ? "continued (same T)" : "renegotiated");
		printf("  %-34s %.0f ms\n", "failover: next acknowledgement",
		       t_back ? t_back - d->t_kill : -1);
		printf("  %-34s %.0f ms\n", "failover: next message delivered",
		       t_first ? t_first - d->t_kill : -1);
		printf("\n");
	}
	rc = lost || dup ? 1 : 0;
out:
	S2S_WIPE(secret);
	s2s_client_destroy(d->a);
	s2s_client_destroy(d->b);
	for (int i = 0; i < d->n; i++) {
		if (d->keep)
			broker_stop(&d->br[i]);
		else
			broker_cleanup(&d->br[i]);
	}
	if (d->keep) {
		say(d, "kept %s (PostgreSQL stopped)", d->dir);
	} else if (d->dir[0]) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
		if (system(cmd) != 0)
			say(d, "cannot remove %s", d->dir);
	}
	pgh_destroy(pg);
	return rc;
#endif
}

int
demo_cluster(int argc, char **argv)
{
	struct cdemo *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return tool_fail(1, "demo", "out of memory");
	d->n = 3;
	d->messages = 300;
	for (int i = 1; i < argc; i++) {
		uint64_t v;

		if (i + 1 < argc && strcmp(argv[i], "--cluster") == 0 &&
		    parse_u64(argv[i + 1], CC_MAX_BROKERS, &v) && v >= 2) {
			d->n = (int)v;
			i++;
		} else if (i + 1 < argc && (strcmp(argv[i], "-n") == 0 ||
					    strcmp(argv[i], "--messages") ==
					    0) &&
			   parse_u64(argv[i + 1], DEMO_MAXSEQ - 1, &v) &&
			   v >= 10) {
			d->messages = (int)v;
			i++;
		} else if (strcmp(argv[i], "--json") == 0) {
			d->json = true;
		} else if (strcmp(argv[i], "--keep") == 0) {
			d->keep = true;
		} else {
			free(d);
			fprintf(stderr, "usage: s2s demo --cluster N (2..%d) "
				"[--messages M] [--json] [--keep]\n",
				CC_MAX_BROKERS);
			return EXIT_USAGE;
		}
	}
	d->kill_at = d->messages / 3;
	pthread_mutex_init(&d->lock, NULL);
	rc = run_cluster(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return rc;
}
