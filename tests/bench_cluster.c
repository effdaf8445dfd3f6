/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench_cluster.c - `make bench`, issue 13: what a cluster costs.
 *
 *  1. a message between two devices on the same broker against one
 *     between devices on two bridged brokers, side by side (alternating
 *     rounds, same sizes, paced: one message in flight): end-to-end
 *     latency (send -> verified by the receiver) medians, and the CPU the
 *     brokers spent per message (utime + stime of every broker process,
 *     from /proc, over the round);
 *  2. failover: `s2s demo --cluster 3 --json` three times (kill -9 of the
 *     sender's broker under load): median time from the kill to the next
 *     acknowledgement and to the next message delivered.
 *
 * One PostgreSQL (tests/pg_harness.h), brokers of tests/broker_harness.h
 * bridged as `s2s cluster-config` writes it.  Exit 77 without PostgreSQL.
 *
 * usage: bench_cluster [-n MESSAGES] [-r ROUNDS] [-f FAILOVER_RUNS]
 * Needs S2S_PLUGIN, and S2S_TOOL for 2.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker_harness.h"
#include "cluster_conf.h"
#include "json.h"
#include "pg_harness.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "s2s/crypto.h"
#include "s2s/image.h"

#define NB 2

static struct pgh_server *pg;
static struct bh_broker *br[NB];
static struct cc_broker cc[NB];
static char shared[256], store_uri[300];

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	if (n <= 0)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_cluster: %s\n", what);
	for (int i = 0; i < NB; i++)
		bh_destroy(br[i]);
	pgh_destroy(pg);
	exit(1);
}

/* CPU seconds (utime + stime) of process pid. */
static double
cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	/* fields after ")": state(3) ... utime(14) stime(15) */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
brokers_cpu(void)
{
	double s = 0;

	for (int i = 0; i < NB; i++)
		s += cpu_s(bh_pid(br[i]));
	return s;
}

static void
start_cluster(void)
{
	char secret[] = "bench-cluster-bridge-password-0123456789";
	char secret_file[300], key[300];
	FILE *f;

	if (pgh_start(&pg) != 0 ||
	    pgh_create_db(pg, "bench", store_uri, sizeof(store_uri)) != 0)
		die("cannot start PostgreSQL");
	snprintf(shared, sizeof(shared), "/tmp/s2s-bench-cluster-XXXXXX");
	if (!mkdtemp(shared))
		die("mkdtemp");
	bh_give(shared);
	snprintf(secret_file, sizeof(secret_file), "%s/bridge.secret", shared);
	f = fopen(secret_file, "w");
	if (!f)
		die("secret");
	fprintf(f, "%s\n", secret);
	fclose(f);
	chmod(secret_file, 0600);
	bh_give(secret_file);
	snprintf(key, sizeof(key), "%s/cs.key", shared);
	for (int i = 0; i < NB; i++) {
		snprintf(cc[i].id, sizeof(cc[i].id), "b%d", i);
		snprintf(cc[i].host, sizeof(cc[i].host), "127.0.0.1");
		do {
			cc[i].port = bh_free_port();
		} while (i && cc[i].port == cc[0].port);
	}
	for (int i = 0; i < NB; i++) {
		const char *opts[] = { "store", store_uri, "cs_key", key,
				       "enrollment", "open", NULL };
		char *frag = NULL;
		size_t fl = 0;

		f = open_memstream(&frag, &fl);
		if (!f || cc_fragment(f, cc, NB, (size_t)i, "s2s", secret_file,
				      secret) != 0)
			die("fragment");
		fclose(f);
		if (bh_start(&br[i], &(struct bh_options){ .default_log = true,
			.plugin = bh_plugin_path(), .plugin_opts = opts,
			.extra_conf = frag, .port = cc[i].port }) != 0)
			die("broker did not start");
		free(frag);
	}
	for (double end = now_ms() + 30000; now_ms() < end;) {
		int up = 0;

		for (int i = 0; i < NB; i++)
			up += bh_log_contains(br[i], "bridge of broker '");
		if (up == NB)
			return;
		usleep(50000);
	}
	die("bridges did not connect");
}

/* ---- devices ------------------------------------------------------------------- */

struct dev {
	struct s2s_client *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned got;
};

static void
on_msg(void *ud, const struct s2s_message_info *i, const uint8_t *m, size_t n)
{
	struct dev *d = ud;

	(void)i;
	(void)m;
	(void)n;
	pthread_mutex_lock(&d->lock);
	d->got++;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void
device(struct dev *d, const char *name, uint32_t user, int broker)
{
	char dir[400], keyp[500], sig[500], cfg[600], err[512];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	FILE *f;

	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	snprintf(dir, sizeof(dir), "%s/%s", shared, name);
	mkdir(dir, 0700);
	snprintf(keyp, sizeof(keyp), "%s/%s", dir, name);
	if (s2s_key_generate(&k) || s2s_key_save(k, keyp))
		die("device key");
	s2s_key_destroy(k);
	snprintf(sig, sizeof(sig), "%s/sig.png", dir);
	if (s2s_bio_siggen(user, 1, &img) ||
	    s2s_image_write_file(&img, sig, 6))
		die("signature");
	s2s_image_free(&img);
	snprintf(cfg, sizeof(cfg), "%s/device.json", dir);
	f = fopen(cfg, "w");
	if (!f)
		die("config");
	fprintf(f, "{\"broker\":\"tcp://127.0.0.1:%d\",\"id\":\"%s\","
		"\"key\":\"%s.key\",\"cs_key\":\"%s/cs.pub\",\"signature\":"
		"\"%s\",\"state_dir\":\"state\",\"covers\":\"builtin\","
		"\"state_fsync\":false,\"timeouts\":{\"pair\":20,"
		"\"session\":20}}\n", cc[broker].port, name, keyp, shared, sig);
	fclose(f);
	if (s2s_client_create(cfg, &d->c, err, sizeof(err)))
		die(err);
	s2s_client_on_message(d->c, on_msg, d);
	if (s2s_client_connect(d->c, -1) || s2s_client_register(d->c, -1))
		die("register");
}

static void
pair(struct dev *a, const char *an, struct dev *b, const char *bn)
{
	(void)s2s_client_pair(a->c, bn, 0, 0);
	if (s2s_client_pair(b->c, an, 0, -1) ||
	    s2s_client_pair(a->c, bn, 0, -1) ||
	    s2s_client_session(a->c, bn, -1) ||
	    s2s_client_wait_session(b->c, an, 20000))
		die("pair/session");
}

/* n paced messages a -> b: latencies into lat[], returns the count. */
static int
run(struct dev *a, const char *bn, struct dev *b, int n, double *lat)
{
	int k = 0;

	for (int i = 0; i < n; i++) {
		struct timespec ts;
		unsigned want;
		double t0;
		char msg[48];

		pthread_mutex_lock(&b->lock);
		want = b->got + 1;
		pthread_mutex_unlock(&b->lock);
		snprintf(msg, sizeof(msg), "reading %d", i);
		t0 = now_ms();
		if (s2s_client_send(a->c, bn, (const uint8_t *)msg, strlen(msg),
				    0, NULL))
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		pthread_mutex_lock(&b->lock);
		while (b->got < want)
			if (pthread_cond_timedwait(&b->cond, &b->lock, &ts))
				break;
		if (b->got >= want)
			lat[k++] = now_ms() - t0;
		pthread_mutex_unlock(&b->lock);
	}
	return k;
}

/* ---- failover through the demo ------------------------------------------------- */

static void
failover(int runs)
{
	const char *tool = getenv("S2S_TOOL");
	double ack[16], del[16];
	int na = 0, nd = 0, lost = 0, dup = 0;

	if (!tool || !*tool) {
		printf("failover: S2S_TOOL unset, skipped\n");
		return;
	}
	for (int r = 0; r < runs && r < 16; r++) {
		char cmd[1200], *buf = NULL;
		size_t cap = 0, len = 0;
		FILE *p;
		struct s2s_json *j;
		const struct s2s_json *c;
		int64_t v;
		char err[64];

		snprintf(cmd, sizeof(cmd), "%s demo --cluster 3 --messages 150 "
			 "--json 2>/dev/null", tool);
		p = popen(cmd, "r");
		if (!p)
			continue;
		for (;;) {
			if (len + 4096 > cap) {
				char *nb = realloc(buf, cap + 8192);

				if (!nb)
					break;
				buf = nb;
				cap += 8192;
			}
			size_t got = fread(buf + len, 1, cap - len - 1, p);

			if (!got)
				break;
			len += got;
		}
		pclose(p);
		if (!buf)
			continue;
		buf[len] = 0;
		j = s2s_json_parse(buf, len);
		free(buf);
		c = j ? s2s_json_get(j, "cluster") : NULL;
		if (c && !s2s_json_get_int(c, "failover_ack_ms", false, 0, -1,
					   INT64_MAX, &v, err, sizeof(err)) &&
		    v >= 0)
			ack[na++] = (double)v;
		if (c && !s2s_json_get_int(c, "failover_delivery_ms", false, 0,
					   -1, INT64_MAX, &v, err,
					   sizeof(err)) && v >= 0)
			del[nd++] = (double)v;
		if (c && !s2s_json_get_int(c, "lost", false, 0, 0, INT64_MAX,
					   &v, err, sizeof(err)))
			lost += (int)v;
		if (c && !s2s_json_get_int(c, "duplicates", false, 0, 0,
					   INT64_MAX, &v, err, sizeof(err)))
			dup += (int)v;
		s2s_json_free(j);
	}
	printf("failover (kill -9 of the sender's broker, 3 brokers, %d "
	       "runs): next acknowledgement %.0f ms, next message delivered "
	       "%.0f ms (medians); lost %d, duplicates %d in all\n", na,
	       median(ack, na), median(del, nd), lost, dup);
}

int
main(int argc, char **argv)
{
	struct dev a, b, c, d;
	int n = 200, rounds = 3, fo = 3, ks = 0, kx = 0;
	double *ls, *lx, cpu_same = 0, cpu_cross = 0;
	double bs[NB] = { 0 }, bx[NB] = { 0 };     /* per broker */

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-n"))
			n = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-r"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-f"))
			fo = atoi(argv[i + 1]);
	}
	if (n < 10 || rounds < 1 || fo < 0) {
		fprintf(stderr, "usage: bench_cluster [-n MESSAGES >= 10] "
			"[-r ROUNDS] [-f FAILOVER_RUNS]\n");
		return 2;
	}
	if (!bh_plugin_path() || !pgh_available()) {
		fprintf(stderr, "bench_cluster: needs S2S_PLUGIN and "
			"PostgreSQL: skipped\n");
		return 77;
	}
	ls = calloc((size_t)(n * rounds), sizeof(*ls));
	lx = calloc((size_t)(n * rounds), sizeof(*lx));
	if (!ls || !lx)
		die("out of memory");
	start_cluster();
	device(&a, "alice", 1, 0);
	device(&b, "bob", 2, 0);      /* same broker as alice */
	device(&c, "carol", 3, 0);
	device(&d, "dave", 4, 1);     /* the other broker */
	pair(&a, "alice", &b, "bob");
	pair(&c, "carol", &d, "dave");
	(void)run(&a, "bob", &b, 10, ls);       /* warm up */
	(void)run(&c, "dave", &d, 10, lx);
	for (int r = 0; r < rounds; r++) {
		double t;

		double p[NB];

		for (int i = 0; i < NB; i++)
			p[i] = cpu_s(bh_pid(br[i]));
		t = brokers_cpu();
		ks += run(&a, "bob", &b, n, ls + ks);
		cpu_same += brokers_cpu() - t;
		for (int i = 0; i < NB; i++) {
			bs[i] += cpu_s(bh_pid(br[i])) - p[i];
			p[i] = cpu_s(bh_pid(br[i]));
		}
		t = brokers_cpu();
		kx += run(&c, "dave", &d, n, lx + kx);
		cpu_cross += brokers_cpu() - t;
		for (int i = 0; i < NB; i++)
			bx[i] += cpu_s(bh_pid(br[i])) - p[i];
	}
	{
		double ms = median(ls, ks), mx = median(lx, kx);

		printf("cluster (2 brokers, PostgreSQL store, paced, %d x %d "
		       "messages each, alternating rounds):\n", rounds, n);
		printf("  same broker:   latency %.2f ms (median), broker CPU "
		       "%.0f us per message\n", ms, 1e6 * cpu_same / ks);
		printf("  across brokers: latency %.2f ms (median), broker CPU "
		       "%.0f us per message (both brokers)\n", mx,
		       1e6 * cpu_cross / kx);
		printf("  per broker (us per message): same: sender's broker "
		       "%.0f, the other %.0f (gets nothing: packages are routed "
		       "to the receiver's broker only); across: sender's broker "
		       "%.0f, "
		       "receiver's broker %.0f\n", 1e6 * bs[0] / ks,
		       1e6 * bs[1] / ks, 1e6 * bx[0] / kx, 1e6 * bx[1] / kx);
		printf("  ratio across / same: latency %.2f, CPU %.2f\n",
		       ms > 0 ? mx / ms : 0, cpu_same > 0 ?
		       (cpu_cross / kx) / (cpu_same / ks) : 0);
	}
	s2s_client_destroy(a.c);
	s2s_client_destroy(b.c);
	s2s_client_destroy(c.c);
	s2s_client_destroy(d.c);
	for (int i = 0; i < NB; i++)
		bh_destroy(br[i]);
	pgh_destroy(pg);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", shared);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", shared);
	}
	free(ls);
	free(lx);
	failover(fo);
	s2s_crypto_shutdown();
	return 0;
}
