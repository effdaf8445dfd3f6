/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cmd_demo.c - `s2s demo`: the whole scheme end to end in one command.
 *
 * A private Mosquitto with the s2s plugin on a free loopback port, two
 * devices (alice, bob) with synthetic handwritten signatures, the three
 * phases (registration, pairing + negotiation, delivery of N messages each
 * way at the same time), then a tampered, a replayed and a forged package
 * shown refused by the CS gate and by the receiver.  Prints each phase's
 * time next to the paper's Table 6 and the stego PSNR next to its Table 4,
 * and keeps the images it used in an output folder.
 */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker_run.h"
#include "json.h"
#include "s2s/bio.h"
#include "s2s/client.h"
#include "diag.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/package.h"
#include "s2s/scheme.h"
#include "s2s/secmem.h"
#include "tool.h"

#ifndef S2S_COVERS_DIR
#define S2S_COVERS_DIR ""
#endif

/* The paper's figures (Table 6, Table 4). */
#define PAPER_REG_S 2.998
#define PAPER_NEG_S 2.951
#define PAPER_SDS_MS 22.3
#define PAPER_SDR_MS 21.0
#define PAPER_PSNR 76.43

struct side {
	const char *name, *peer;
	struct s2s_client *c;
	/* receiving (network thread) */
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* broadcast on every message */
	unsigned received, fetched, bad_order;
	uint64_t last_seq;
	double *verify_ms, *latency_ms;
	unsigned nrej;
	char rejects[8][160];
	/* sending */
	double *seal_ms;
	double psnr_sum;
	unsigned psnr_n;
	double reg_ms;          /* REGISTER -> REGISTERED */
	double reg_total_ms;    /* with the reconnect that follows */
	double reg_event;       /* when REGISTERED arrived */
	unsigned delivered;     /* received when delivery ended */
	uint8_t *first_pkg;
	size_t first_len;
};

struct demo {
	bool json, quiet, no_fsync;
	int n;
	const char *profile;
	char out[1024];
	struct broker_run b;
	struct s2s_image cover;
	double pair_ms, neg_ms, delivery_ms;
	struct side a, b2;
	struct {
		const char *what;
		char cs[48], rx[48];
		bool refused_cs, refused_rx;
	} attack[3];
	bool after_ok;
	char stats[2048];
	/* --paced N: alice -> bob one at a time (after the rest) */
	int paced;
	unsigned paced_n;
	double paced_p50, paced_p99, paced_send_p50, paced_verify_p50;
};

/* Interrupted (Ctrl-C, timeout): stop the broker before going. */
static volatile pid_t broker_pid;

static void
on_signal(int sig)
{
	if (broker_pid > 0)
		kill(broker_pid, SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
progress(const struct demo *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
progress(const struct demo *d, const char *fmt, ...)
{
	va_list ap;

	if (d->quiet)
		return;
	va_start(ap, fmt);
	fputs("s2s demo: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, unsigned n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The q-th percentile (0..100) of v[0..n) (sorts v). */
static double
percentile(double *v, unsigned n, double q)
{
	size_t k;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)(q / 100 * (n - 1) + 0.5);
	return v[k < n ? k : n - 1];
}

/*
 * --paced N: alice sends N messages to bob one at a time, each once bob's
 * message callback had the one before: the latency of one message with
 * nothing queued (s2s_client_send() called -> bob's callback), split into
 * the send call (seal, state write, hand-over to Paho) and bob's verify.
 * Runs after every other phase so that their figures are unchanged.
 */
static bool
paced_run(struct demo *d, char *err, size_t err_len)
{
	struct side *rx = &d->b2;
	double *lat = calloc((size_t)d->paced, sizeof(double));
	double *snd = calloc((size_t)d->paced, sizeof(double));
	double *ver = calloc((size_t)d->paced, sizeof(double));
	unsigned k = 0;
	bool ok = false;

	if (!lat || !snd || !ver) {
		snprintf(err, err_len, "paced: out of memory");
		goto out;
	}
	for (int i = 0; i < d->paced; i++) {
		char msg[128];
		struct timespec ts;
		unsigned before;
		double t0, t1;
		enum s2s_err e;

		pthread_mutex_lock(&rx->lock);
		before = rx->received;
		pthread_mutex_unlock(&rx->lock);
		t0 = now_ms();
		snprintf(msg, sizeof(msg), "alice -> bob: paced %d, t@%.3f",
			 i + 1, t0);
		e = s2s_client_send(d->a.c, "bob", (const uint8_t *)msg,
				    strlen(msg), 0, NULL);
		t1 = now_ms();
		if (e) {
			snprintf(err, err_len, "paced send %d: %s", i + 1,
				 s2s_strerror(e));
			goto out;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		pthread_mutex_lock(&rx->lock);
		while (rx->received == before &&
		       pthread_cond_timedwait(&rx->cond, &rx->lock, &ts) == 0)
			;
		if (rx->received == before) {
			pthread_mutex_unlock(&rx->lock);
			snprintf(err, err_len, "paced message %d not received "
				 "within 10 s", i + 1);
			goto out;
		}
		if (before < 4096) {
			lat[k] = rx->latency_ms[before];
			ver[k] = rx->verify_ms[before];
			snd[k] = t1 - t0;
			k++;
		}
		pthread_mutex_unlock(&rx->lock);
	}
	d->paced_n = k;
	d->paced_p50 = percentile(lat, k, 50);
	d->paced_p99 = percentile(lat, k, 99);
	d->paced_send_p50 = percentile(snd, k, 50);
	d->paced_verify_p50 = percentile(ver, k, 50);
	ok = true;
out:
	free(lat);
	free(snd);
	free(ver);
	return ok;
}

/* ---- Callbacks (network thread) --------------------------------------------- */

static void
on_message(void *ud, const struct s2s_message_info *i, const uint8_t *m,
	   size_t n)
{
	struct side *s = ud;
	double sent = 0, now = now_ms();
	const char *t = memchr(m, '@', n);

	if (t) {
		char buf[32];
		size_t k = n - (size_t)(t + 1 - (const char *)m);

		if (k < sizeof(buf)) {
			memcpy(buf, t + 1, k);
			buf[k] = '\0';
			sent = atof(buf);
		}
	}
	pthread_mutex_lock(&s->lock);
	if (i->seq != s->last_seq + 1)
		s->bad_order++;
	s->last_seq = i->seq;
	if (s->received < 4096) {
		s->verify_ms[s->received] = i->verify_us / 1000.0;
		s->latency_ms[s->received] = sent > 0 ? now - sent : 0;
	}
	s->received++;
	if (i->fetched)
		s->fetched++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void
on_reject(void *ud, const struct s2s_reject_info *r)
{
	struct side *s = ud;

	pthread_mutex_lock(&s->lock);
	if (s->nrej < 8)
		snprintf(s->rejects[s->nrej], sizeof(s->rejects[0]),
			 "%s %llu: %s", s2s_errname(r->err),
			 (unsigned long long)r->seq, r->reason);
	s->nrej++;
	pthread_mutex_unlock(&s->lock);
}

static void
on_event(void *ud, enum s2s_event ev, const char *peer, const char *detail)
{
	struct side *s = ud;

	(void)peer;
	(void)detail;
	if (ev == S2S_EVENT_REGISTERED) {
		pthread_mutex_lock(&s->lock);
		s->reg_event = now_ms();
		pthread_mutex_unlock(&s->lock);
	}
}

/* ---- Setup -------------------------------------------------------------------- */

static bool
write_config(struct demo *d, const char *id, const char *path,
	     const char *key, const char *sig, const char *state,
	     const char *covers)
{
	struct s2s_json *o = s2s_json_new_object();
	struct s2s_json *t;
	char *txt;
	FILE *f;
	bool ok;

	s2s_json_add_string(o, "broker", d->b.uri);
	s2s_json_add_string(o, "id", id);
	s2s_json_add_string(o, "key", key);
	s2s_json_add_string(o, "cs_key", d->b.cs_pub);
	s2s_json_add_string(o, "signature", sig);
	s2s_json_add_string(o, "state_dir", state);
	s2s_json_add_string(o, "covers", covers);
	s2s_json_add_string(o, "profile", d->profile);
	s2s_json_add_int(o, "png_level", 0);
	s2s_json_add_bool(o, "state_fsync", !d->no_fsync);
	t = s2s_json_add_object(o, "timeouts");
	s2s_json_add_int(t, "connect", 10);
	s2s_json_add_int(t, "register", 20);
	s2s_json_add_int(t, "pair", 20);
	s2s_json_add_int(t, "session", 20);
	s2s_json_add_int(t, "fetch", 10);
	txt = s2s_json_print(o, NULL);
	s2s_json_free(o);
	if (!txt)
		return false;
	f = fopen(path, "w");
	ok = f && fputs(txt, f) >= 0;
	if (f && fclose(f))
		ok = false;
	free(txt);
	return ok;
}

static bool
make_device(struct demo *d, struct side *s, uint32_t user, char *err,
	    size_t err_len)
{
	char dir[512], key[600], sig[1200], cfg[600], state[600], covers[1100];
	struct s2s_key *k = NULL;
	struct s2s_image img = { 0 };
	enum s2s_err e;

	snprintf(dir, sizeof(dir), "%s/%s", d->b.dir, s->name);
	snprintf(key, sizeof(key), "%s/%s", dir, s->name);
	snprintf(cfg, sizeof(cfg), "%s/device.json", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(sig, sizeof(sig), "%s/signature-%s.png", d->out, s->name);
	snprintf(covers, sizeof(covers), "%s/covers", d->out);
	if (mkdir(dir, 0700)) {
		snprintf(err, err_len, "mkdir %s: %s", dir, strerror(errno));
		return false;
	}
	e = s2s_key_generate(&k);
	if (!e)
		e = s2s_key_save(k, key);
	s2s_key_destroy(k);
	if (!e)
		e = s2s_bio_siggen(user, 1, &img);
	if (!e)
		e = s2s_image_write_file(&img, sig, 9);
	s2s_image_free(&img);
	if (e) {
		snprintf(err, err_len, "device %s: %s", s->name,
			 s2s_strerror(e));
		return false;
	}
	strcat(key, ".key");
	if (!write_config(d, s->name, cfg, key, sig, state, covers)) {
		snprintf(err, err_len, "cannot write %s", cfg);
		return false;
	}
	e = s2s_client_create(cfg, &s->c, err, err_len);
	if (e)
		return false;
	s2s_client_on_message(s->c, on_message, s);
	s2s_client_on_reject(s->c, on_reject, s);
	s2s_client_on_event(s->c, on_event, s);
	return true;
}

/* The cover: the project's reference cover, or a synthetic one. */
static bool
make_cover(struct demo *d, char *err, size_t err_len)
{
	char dir[1100], path[1200], src[1200];
	enum s2s_err e;

	snprintf(dir, sizeof(dir), "%s/covers", d->out);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/cover.png", dir);
	snprintf(src, sizeof(src), "%s/camera128.png", S2S_COVERS_DIR);
	e = S2S_ERR_IO;
	if (*S2S_COVERS_DIR && access(src, R_OK) == 0)
		e = s2s_image_read_file(src, NULL, &d->cover);
	if (e) {
		uint32_t x = 12345;

		e = s2s_image_alloc(&d->cover, 128, 128, 0);
		for (uint32_t i = 0; !e && i < 128 * 128; i++) {
			x = x * 1103515245u + 12345u;
			d->cover.pixels[i] = (uint8_t)(64 + (i % 128) +
						       (x >> 28));
		}
	}
	if (!e)
		e = s2s_image_write_file(&d->cover, path, 9);
	if (e)
		snprintf(err, err_len, "cover: %s", s2s_strerror(e));
	return !e;
}

/*
 * Connect both devices at once.  Paho 1.3.11 (one network thread per
 * process) notices a new connection only when its poll wakes: the second
 * of two connects made one after the other waits for the 1 s poll twice;
 * started together, both are seen at the first one (about 0.1 s).
 */
static void *
connect_main(void *arg)
{
	struct s2s_client *c = arg;

	return (void *)(intptr_t)s2s_client_connect(c, -1);
}

static enum s2s_err
connect_both(struct demo *d)
{
	pthread_t t;
	void *ra = NULL;
	enum s2s_err eb;

	if (pthread_create(&t, NULL, connect_main, d->a.c)) {
		eb = s2s_client_connect(d->a.c, -1);
		return eb ? eb : s2s_client_connect(d->b2.c, -1);
	}
	eb = s2s_client_connect(d->b2.c, -1);
	pthread_join(t, &ra);
	return (intptr_t)ra ? (enum s2s_err)(intptr_t)ra : eb;
}

/* ---- Delivery ------------------------------------------------------------------- */

struct sender_arg {
	struct demo *d;
	struct side *s;
	enum s2s_err err;
};

static void
stego_of(const uint8_t *pkg, size_t len, struct s2s_image *out)
{
	struct s2s_package p;

	memset(out, 0, sizeof(*out));
	if (!s2s_package_parse(pkg, len, NULL, &p))
		s2s_image_decode(p.image, p.image_len, NULL, out);
}

static void *
sender_main(void *arg)
{
	struct sender_arg *a = arg;
	struct side *s = a->s;

	for (int i = 0; i < a->d->n; i++) {
		struct s2s_sent_info info;
		struct s2s_image st;
		char msg[128];
		double mse, psnr;

		snprintf(msg, sizeof(msg), "%s -> %s: reading %d, t@%.3f",
			 s->name, s->peer, i + 1, now_ms());
		a->err = s2s_client_send(s->c, s->peer, (const uint8_t *)msg,
					 strlen(msg), S2S_SEND_KEEP_PACKAGE,
					 &info);
		if (a->err)
			return NULL;
		s->seal_ms[i] = info.seal_us / 1000.0;
		stego_of(info.package, info.package_len, &st);
		if (st.pixels && !s2s_image_psnr(&a->d->cover, &st, &mse,
						 &psnr)) {
			s->psnr_sum += psnr;
			s->psnr_n++;
		}
		if (i == 0) {
			char path[1200];

			snprintf(path, sizeof(path), "%s/stego-%s-1.png",
				 a->d->out, s->name);
			if (st.pixels)
				s2s_image_write_file(&st, path, 9);
			s->first_pkg = info.package;
			s->first_len = info.package_len;
		} else {
			s2s_free(info.package);
		}
		s2s_image_free(&st);
	}
	return NULL;
}

static unsigned
received(struct side *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->received;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- Attacks -------------------------------------------------------------------- */

static void
verdicts(struct demo *d, int i, const char *what, enum s2s_err cs,
	 enum s2s_err rx)
{
	d->attack[i].what = what;
	d->attack[i].refused_cs = cs == S2S_ERR_REJECTED;
	d->attack[i].refused_rx = rx != S2S_OK;
	snprintf(d->attack[i].cs, sizeof(d->attack[i].cs), "%s",
		 cs == S2S_ERR_REJECTED ? "refused" :
		 cs == S2S_OK ? "ACCEPTED" : s2s_errname(cs));
	snprintf(d->attack[i].rx, sizeof(d->attack[i].rx), "%s%s",
		 rx ? "refused: " : "ACCEPTED", rx ? s2s_errname(rx) : "");
}

static bool
attacks(struct demo *d, char *err, size_t err_len)
{
	struct side *a = &d->a, *b = &d->b2;
	struct s2s_sent_info info;
	struct s2s_chain fake;
	struct s2s_package pk;
	uint8_t skcs[S2S_SKCS_LEN], sk[32], shk[32];
	uint8_t *forged = NULL;
	size_t forged_len = 0;
	enum s2s_err cs, rx, e;

	/* 1. Tampered: a genuine package for the next position, one bit of
	 * the message flipped on the way. */
	e = s2s_client_send(a->c, "bob", (const uint8_t *)"open the door", 13,
			    S2S_SEND_SEAL_ONLY, &info);
	if (e) {
		snprintf(err, err_len, "seal: %s", s2s_strerror(e));
		return false;
	}
	if (!s2s_package_parse(info.package, info.package_len, NULL, &pk))
		info.package[pk.msg - info.package] ^= 0x20;  /* "Open" */
	cs = s2s_client_publish_raw(a->c, "bob", info.package,
				    info.package_len, 5000);
	rx = s2s_client_inject(b->c, "alice", info.package, info.package_len);
	verdicts(d, 0, "tampered", cs, rx);
	s2s_free(info.package);

	/* 2. Replayed: alice's first package, sent again. */
	cs = s2s_client_publish_raw(a->c, "bob", a->first_pkg, a->first_len,
				    5000);
	rx = s2s_client_inject(b->c, "alice", a->first_pkg, a->first_len);
	verdicts(d, 1, "replayed", cs, rx);

	/* 3. Forged: right header, session and sequence number, but sealed
	 * without the keys (random SkCS^T, Sk, Shk). */
	s2s_random(skcs, sizeof(skcs));
	s2s_random(sk, sizeof(sk));
	s2s_random(shk, sizeof(shk));
	if (!s2s_package_parse(a->first_pkg, a->first_len, NULL, &pk)) {
		uint64_t next = 0;

		s2s_client_seq(a->c, "bob", &next, NULL);
		e = s2s_chain_init(&fake, pk.profile, pk.session, skcs, sk,
				   pk.profile == S2S_PROFILE_PAPER ? 16 : 32,
				   shk, 32);
		fake.next_seq = next;
		if (!e)
			e = s2s_package_seal(&fake, "alice", "bob",
					     (const uint8_t *)"open the door",
					     13, &d->cover, 1, &forged,
					     &forged_len, NULL);
		s2s_chain_wipe(&fake);
		if (e) {
			snprintf(err, err_len, "forge: %s", s2s_strerror(e));
			return false;
		}
	}
	cs = s2s_client_publish_raw(a->c, "bob", forged, forged_len, 5000);
	rx = s2s_client_inject(b->c, "alice", forged, forged_len);
	verdicts(d, 2, "forged", cs, rx);
	free(forged);
	s2s_memzero(skcs, sizeof(skcs));
	s2s_memzero(sk, sizeof(sk));
	s2s_memzero(shk, sizeof(shk));

	/* The chains are untouched: one more genuine message goes through. */
	{
		unsigned before = received(b);
		double end = now_ms() + 10000;

		e = s2s_client_send(a->c, "bob",
				    (const uint8_t *)"still fine", 10,
				    S2S_SEND_WAIT_ACK, NULL);
		while (!e && received(b) == before && now_ms() < end)
			usleep(2000);
		d->after_ok = !e && received(b) > before;
	}
	return true;
}

/* The CS gate's counters from getStatistics, in one line. */
static void
summarise_stats(struct demo *d, const char *resp)
{
	struct s2s_json *j = s2s_json_parse(resp, strlen(resp));
	const struct s2s_json *r, *data, *pk, *rej;
	char acc[32] = "?", v[32];
	size_t n;

	r = s2s_json_get(j, "responses");
	data = s2s_json_get(s2s_json_array_at(r, 0), "data");
	pk = s2s_json_get(data, "packages");
	rej = s2s_json_get(pk, "rejected");
	if (!pk) {
		s2s_json_free(j);
		return;
	}
	s2s_json_get_string(pk, "accepted", true, "?", acc, sizeof(acc),
			    NULL, 0);
	n = (size_t)snprintf(d->stats, sizeof(d->stats),
			     "%s packages accepted by the gate; refused:", acc);
	for (int e = -1; e > -S2S_ERR_COUNT && n < sizeof(d->stats); e--) {
		if (s2s_json_get_string(rej, s2s_errname(e), false, NULL, v,
					sizeof(v), NULL, 0))
			continue;
		n += (size_t)snprintf(d->stats + n, sizeof(d->stats) - n,
				      " %s %s", s2s_errname(e), v);
	}
	s2s_json_free(j);
}

/* ---- Report --------------------------------------------------------------------- */

static void
print_table(struct demo *d, double reg, double neg, double sds, double sdr,
	    double lat, double psnr)
{
	const struct side *a = &d->a, *b = &d->b2;

	printf("\n"
	       "s2s-mqtt demo: %s profile, %d messages each way through "
	       "a private broker\n\n", d->profile, d->n);
	printf("  %-34s %14s   %s\n", "phase", "this run", "paper (Table 6)");
	printf("  %-34s %11.2f ms   %.3f s\n", "registration (per device)", reg,
	       PAPER_REG_S);
	printf("  %-34s %11.2f ms   -\n", "  then reconnect with a token",
	       (a->reg_total_ms - a->reg_ms + b->reg_total_ms - b->reg_ms) / 2);
	printf("  %-34s %11.2f ms   %.3f s\n", "negotiation (5 steps)", neg,
	       PAPER_NEG_S);
	printf("  %-34s %11.3f ms   %.1f ms\n",
	       "delivery, sender (SDS, median)", sds, PAPER_SDS_MS);
	printf("  %-34s %11.3f ms   %.1f ms\n",
	       "delivery, receiver (SDR, median)", sdr, PAPER_SDR_MS);
	printf("  %-34s %11.3f ms   %.1f ms\n", "delivery, SDS + SDR", sds + sdr,
	       PAPER_SDS_MS + PAPER_SDR_MS);
	printf("  %-34s %11.3f ms   -\n", "end to end via broker (median)", lat);
	printf("  %-34s %11.0f ms   -\n", "all 2 x N messages, both at once",
	       d->delivery_ms);
	if (d->paced_n)
		printf("  %-34s %11.3f ms   -\n  %-34s %11.3f ms   -\n",
		       "paced, one at a time: p50", d->paced_p50,
		       "paced, one at a time: p99", d->paced_p99);
	printf("  %-34s %11.2f dB   %.2f dB (Table 4)\n",
	       "stego PSNR (128x128 cover, mean)", psnr, PAPER_PSNR);
	printf("\n  messages: alice -> bob %u/%d, bob -> alice %u/%d verified, "
	       "in order: %s\n", b->delivered, d->n, a->delivered, d->n,
	       a->bad_order + b->bad_order ? "NO" : "yes");
	printf("  attacks (CS gate / receiver):\n");
	for (int i = 0; i < 3; i++)
		printf("    %-9s %-9s / %s\n", d->attack[i].what, d->attack[i].cs,
		       d->attack[i].rx);
	printf("    a genuine message after them: %s\n",
	       d->after_ok ? "accepted" : "NOT accepted");
	if (d->stats[0])
		printf("  CS statistics: %s\n", d->stats);
	printf("  output: %s (signatures, cover, stego images)\n\n", d->out);
}

static void
print_json(struct demo *d, double reg_a, double reg_b, double neg,
	   double sds, double sdr, double lat, double psnr)
{
	struct s2s_json *o = s2s_json_new_object(), *t, *p, *x, *arr;
	char *txt;

	s2s_json_add_string(o, "profile", d->profile);
	s2s_json_add_int(o, "messages_each_way", d->n);
	s2s_json_add_string(o, "output", d->out);
	t = s2s_json_add_object(o, "times_ms");
	/* json.h has no doubles: times in microseconds as integers too. */
	x = s2s_json_add_object(o, "times_us");
	s2s_json_add_int(x, "registration_alice", (int64_t)(reg_a * 1000));
	s2s_json_add_int(x, "registration_bob", (int64_t)(reg_b * 1000));
	s2s_json_add_int(x, "pairing", (int64_t)(d->pair_ms * 1000));
	s2s_json_add_int(x, "reconnect_after_registration",
			 (int64_t)((d->a.reg_total_ms - d->a.reg_ms) * 1000));
	s2s_json_add_int(x, "negotiation", (int64_t)(neg * 1000));
	s2s_json_add_int(x, "delivery_sds_median", (int64_t)(sds * 1000));
	s2s_json_add_int(x, "delivery_sdr_median", (int64_t)(sdr * 1000));
	s2s_json_add_int(x, "end_to_end_median", (int64_t)(lat * 1000));
	s2s_json_add_int(x, "delivery_all", (int64_t)(d->delivery_ms * 1000));
	if (d->paced_n) {
		s2s_json_add_int(x, "paced_count", d->paced_n);
		s2s_json_add_int(x, "paced_p50", (int64_t)(d->paced_p50 * 1000));
		s2s_json_add_int(x, "paced_p99", (int64_t)(d->paced_p99 * 1000));
		s2s_json_add_int(x, "paced_send_p50",
				 (int64_t)(d->paced_send_p50 * 1000));
		s2s_json_add_int(x, "paced_verify_p50",
				 (int64_t)(d->paced_verify_p50 * 1000));
	}
	{
		char v[32];

		snprintf(v, sizeof(v), "%.3f", (reg_a + reg_b) / 2);
		s2s_json_add_string(t, "registration", v);
		snprintf(v, sizeof(v), "%.3f", neg);
		s2s_json_add_string(t, "negotiation", v);
		snprintf(v, sizeof(v), "%.4f", sds);
		s2s_json_add_string(t, "delivery_sds", v);
		snprintf(v, sizeof(v), "%.4f", sdr);
		s2s_json_add_string(t, "delivery_sdr", v);
		snprintf(v, sizeof(v), "%.4f", lat);
		s2s_json_add_string(t, "end_to_end", v);
		snprintf(v, sizeof(v), "%.2f", psnr);
		s2s_json_add_string(o, "psnr_db", v);
	}
	p = s2s_json_add_object(o, "paper");
	s2s_json_add_string(p, "registration_s", "2.998");
	s2s_json_add_string(p, "negotiation_s", "2.951");
	s2s_json_add_string(p, "delivery_sds_ms", "22.3");
	s2s_json_add_string(p, "delivery_sdr_ms", "21.0");
	s2s_json_add_string(p, "delivery_ms", "43.3");
	s2s_json_add_string(p, "psnr_db", "76.43");
	x = s2s_json_add_object(o, "received");
	s2s_json_add_int(x, "alice_to_bob", d->b2.delivered);
	s2s_json_add_int(x, "bob_to_alice", d->a.delivered);
	s2s_json_add_bool(x, "in_order", !(d->a.bad_order + d->b2.bad_order));
	arr = s2s_json_add_array(o, "attacks");
	for (int i = 0; i < 3; i++) {
		struct s2s_json *e = s2s_json_push_object(arr);

		s2s_json_add_string(e, "package", d->attack[i].what);
		s2s_json_add_string(e, "cs_gate", d->attack[i].cs);
		s2s_json_add_string(e, "receiver", d->attack[i].rx);
		s2s_json_add_bool(e, "refused", d->attack[i].refused_cs &&
				  d->attack[i].refused_rx);
	}
	s2s_json_add_bool(o, "genuine_after_attacks", d->after_ok);
	s2s_json_add_string(o, "cs_statistics", d->stats);
	txt = s2s_json_print(o, NULL);
	if (txt)
		printf("%s\n", txt);
	free(txt);
	s2s_json_free(o);
}

/* ---- Command -------------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s demo [--json] [--out DIR] [--messages N] "
		"[--paced N]\n"
		"                [--profile hardened|paper]\n"
		"Run the whole scheme once, end to end: a private Mosquitto "
		"with the s2s\nplugin on a free loopback port, two devices with"
		" synthetic signatures,\nregistration, pairing, negotiation, N "
		"messages each way at once (default\n100), then a tampered, a "
		"replayed and a forged package refused.  Prints\nthe time of "
		"each phase next to the paper's Table 6 and the stego PSNR\n"
		"next to Table 4; keeps signatures, cover and stego images in "
		"DIR\n(default ./s2s-demo).\n"
		"  --json            print the results as one JSON object\n"
		"  --quiet           no progress lines\n"
		"  --no-fsync        write the device state atomically but "
		"without fsync\n"
		"                    (faster; not durable across power loss)"
		"\n"
		"  --paced N         then N messages alice -> bob one at a "
		"time: latency\n"
		"                    p50/p99 with nothing queued\n"
		"  --config FILE     ignored (the demo makes its own)\n"
		"\n"
		"usage: s2s demo --cluster N [--messages M] [--json] [--keep]\n"
		"A private PostgreSQL and N brokers (2..16) bridged as `s2s "
		"cluster-config`\nwrites it; alice on b0 sends M messages "
		"(default 300) to bob on b1 and\nb0 is killed (kill -9) after "
		"M/3: prints what reached bob (sent,\ndelivered, lost, "
		"duplicates) and the failover time; --json: one object,\nkey "
		"\"cluster\".  Needs the PostgreSQL server binaries "
		"(postgresql).\n");
}

int
cmd_demo(int argc, char **argv)
{
	struct demo *d;
	struct sender_arg sa, sb;
	pthread_t ta, tb;
	char err[2048];
	const char *out = "s2s-demo";
	double t0, reg, neg, sds, sdr, lat, psnr, end;
	int status = 1;
	enum s2s_err e;

	if (tool_wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--cluster"))
			return demo_cluster(argc, argv);  /* cmd_cluster.c */
	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->n = 100;
	d->profile = "hardened";
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t u;

		if (!strcmp(argv[i], "--json"))
			d->json = true;
		else if (!strcmp(argv[i], "--quiet"))
			d->quiet = true;
		else if (!strcmp(argv[i], "--no-fsync"))
			d->no_fsync = true;
		else if (!strcmp(argv[i], "--out") && v)
			out = argv[++i];
		else if (!strcmp(argv[i], "--config") && v)
			i++;
		else if (!strcmp(argv[i], "--messages") && v &&
			 parse_u64(v, 4000, &u) && u > 0) {
			d->n = (int)u;
			i++;
		} else if (!strcmp(argv[i], "--paced") && v &&
			   parse_u64(v, 4000, &u)) {
			d->paced = (int)u;
			i++;
		} else if (!strcmp(argv[i], "--profile") && v &&
			   (!strcmp(v, "paper") || !strcmp(v, "hardened"))) {
			d->profile = v;
			i++;
		} else {
			free(d);
			return tool_fail(EXIT_USAGE, "demo",
					 "bad argument '%s' (try --help)",
					 argv[i]);
		}
	}
	if (mkdir(out, 0755) && errno != EEXIST) {
		tool_fail(1, "demo", "cannot create %s: %s", out,
			  strerror(errno));
		free(d);
		return 1;
	}
	if (!realpath(out, d->out))
		snprintf(d->out, sizeof(d->out), "%s", out);
	d->a.name = "alice";
	d->a.peer = "bob";
	d->b2.name = "bob";
	d->b2.peer = "alice";
	pthread_mutex_init(&d->a.lock, NULL);
	pthread_mutex_init(&d->b2.lock, NULL);
	pthread_cond_init(&d->a.cond, NULL);
	pthread_cond_init(&d->b2.cond, NULL);
	d->a.verify_ms = calloc(4096, sizeof(double));
	d->a.latency_ms = calloc(4096, sizeof(double));
	d->a.seal_ms = calloc((size_t)d->n, sizeof(double));
	d->b2.verify_ms = calloc(4096, sizeof(double));
	d->b2.latency_ms = calloc(4096, sizeof(double));
	d->b2.seal_ms = calloc((size_t)d->n, sizeof(double));
	if (!d->a.verify_ms || !d->a.latency_ms || !d->a.seal_ms ||
	    !d->b2.verify_ms || !d->b2.latency_ms || !d->b2.seal_ms) {
		tool_fail(1, "demo", "out of memory");
		goto out;
	}

	progress(d, "[1/7] starting a private broker with the s2s plugin");
	if (!broker_start(&d->b, d->profile, NULL, err, sizeof(err))) {
		tool_fail(1, "demo", "%s", err);
		goto out;
	}
	broker_pid = d->b.pid;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	progress(d, "      broker on %s, files in %s", d->b.uri, d->b.dir);

	progress(d, "[2/7] creating devices alice and bob (keys, synthetic "
		 "signatures)");
	if (!make_cover(d, err, sizeof(err)) ||
	    !make_device(d, &d->a, 1, err, sizeof(err)) ||
	    !make_device(d, &d->b2, 2, err, sizeof(err))) {
		tool_fail(1, "demo", "%s", err);
		goto out;
	}
	if ((e = connect_both(d))) {
		tool_fail(1, "demo", "connect: %s", s2s_strerror(e));
		goto out;
	}

	progress(d, "[3/7] phase 1: registration (then a reconnect with a "
		 "token)");
	t0 = now_ms();
	e = s2s_client_register(d->a.c, -1);
	d->a.reg_total_ms = now_ms() - t0;
	d->a.reg_ms = d->a.reg_event - t0;
	if (!e) {
		t0 = now_ms();
		e = s2s_client_register(d->b2.c, -1);
		d->b2.reg_total_ms = now_ms() - t0;
		d->b2.reg_ms = d->b2.reg_event - t0;
	}
	if (e) {
		s2s_client_last_reason(d->a.c, err, 256);
		tool_fail(1, "demo", "registration: %s (%s)", s2s_strerror(e),
			  err);
		goto out;
	}

	progress(d, "[4/7] phase 1: pairing; phase 2: negotiation");
	t0 = now_ms();
	e = s2s_client_pair(d->a.c, "bob", 0, 0);
	if (e == S2S_ERR_TIMEOUT)
		e = S2S_OK;
	if (!e)
		e = s2s_client_pair(d->b2.c, "alice", 0, -1);
	if (!e)
		e = s2s_client_pair(d->a.c, "bob", 0, -1);
	d->pair_ms = now_ms() - t0;
	if (e) {
		s2s_client_last_reason(d->b2.c, err, 256);
		tool_fail(1, "demo", "pairing: %s (%s)", s2s_strerror(e), err);
		goto out;
	}
	t0 = now_ms();
	e = s2s_client_session(d->a.c, "bob", -1);
	d->neg_ms = now_ms() - t0;
	if (!e)
		e = s2s_client_wait_session(d->b2.c, "alice", 10000);
	if (e) {
		s2s_client_last_reason(d->a.c, err, 256);
		tool_fail(1, "demo", "negotiation: %s (%s)", s2s_strerror(e),
			  err);
		goto out;
	}

	progress(d, "[5/7] phase 3: %d messages each way, both at once",
		 d->n);
	sa.d = sb.d = d;
	sa.s = &d->a;
	sb.s = &d->b2;
	sa.err = sb.err = S2S_OK;
	t0 = now_ms();
	pthread_create(&ta, NULL, sender_main, &sa);
	pthread_create(&tb, NULL, sender_main, &sb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (sa.err || sb.err) {
		tool_fail(1, "demo", "send: %s",
			  s2s_strerror(sa.err ? sa.err : sb.err));
		goto out;
	}
	end = now_ms() + 30000;
	while ((received(&d->a) < (unsigned)d->n ||
		received(&d->b2) < (unsigned)d->n) && now_ms() < end)
		usleep(5000);
	d->delivery_ms = now_ms() - t0;
	d->a.delivered = received(&d->a);
	d->b2.delivered = received(&d->b2);
	progress(d, "      received %u + %u in %.0f ms", d->b2.delivered,
		 d->a.delivered, d->delivery_ms);

	progress(d, "[6/7] attacks: tampered, replayed, forged packages");
	if (!attacks(d, err, sizeof(err))) {
		tool_fail(1, "demo", "%s", err);
		goto out;
	}
	{
		char *resp = NULL;

		if (!s2s_admin_call(d->b.uri, d->b.admin_key, NULL, NULL,
				    "{\"commands\":[{\"command\":"
				    "\"getStatistics\"}]}", 5000, &resp) &&
		    resp)
			summarise_stats(d, resp);
		free(resp);
	}

	progress(d, "[7/7] stopping the broker");
	reg = (d->a.reg_ms + d->b2.reg_ms) / 2;
	neg = d->neg_ms;
	{
		unsigned na = d->n, nb = received(&d->a) + received(&d->b2);
		double *seal = calloc(2 * na, sizeof(double));
		double *ver = calloc(nb + 1, sizeof(double));
		double *lt = calloc(nb + 1, sizeof(double));
		unsigned k = 0;

		if (!seal || !ver || !lt) {
			free(seal);
			free(ver);
			free(lt);
			goto out;
		}
		memcpy(seal, d->a.seal_ms, na * sizeof(double));
		memcpy(seal + na, d->b2.seal_ms, na * sizeof(double));
		for (unsigned i = 0; i < d->a.received && i < 4096; i++, k++) {
			ver[k] = d->a.verify_ms[i];
			lt[k] = d->a.latency_ms[i];
		}
		for (unsigned i = 0; i < d->b2.received && i < 4096; i++, k++) {
			ver[k] = d->b2.verify_ms[i];
			lt[k] = d->b2.latency_ms[i];
		}
		sds = median(seal, 2 * na);
		sdr = median(ver, k);
		lat = median(lt, k);
		free(seal);
		free(ver);
		free(lt);
	}
	if (d->paced) {
		progress(d, "      paced: %d messages alice -> bob, one at a "
			 "time", d->paced);
		if (!paced_run(d, err, sizeof(err))) {
			tool_fail(1, "demo", "%s", err);
			goto out;
		}
	}
	psnr = d->a.psnr_n + d->b2.psnr_n ?
	       (d->a.psnr_sum + d->b2.psnr_sum) /
	       (d->a.psnr_n + d->b2.psnr_n) : 0;
	s2s_client_destroy(d->a.c);
	s2s_client_destroy(d->b2.c);
	d->a.c = d->b2.c = NULL;
	broker_stop(&d->b);
	broker_pid = 0;
	if (d->json)
		print_json(d, d->a.reg_ms, d->b2.reg_ms, neg, sds, sdr, lat,
			   psnr);
	else
		print_table(d, reg, neg, sds, sdr, lat, psnr);
	status = d->b2.delivered >= (unsigned)d->n &&
		 d->a.delivered >= (unsigned)d->n && d->after_ok &&
		 d->attack[0].refused_cs && d->attack[1].refused_cs &&
		 d->attack[2].refused_cs && d->attack[0].refused_rx &&
		 d->attack[1].refused_rx && d->attack[2].refused_rx ? 0 : 1;
	if (status)
		tool_fail(1, "demo", "the run did not go as expected (see "
			  "above)");
out:
	s2s_client_destroy(d->a.c);
	s2s_client_destroy(d->b2.c);
	broker_cleanup(&d->b);
	s2s_image_free(&d->cover);
	free(d->a.first_pkg);
	free(d->b2.first_pkg);
	free(d->a.verify_ms);
	free(d->a.latency_ms);
	free(d->a.seal_ms);
	free(d->b2.verify_ms);
	free(d->b2.latency_ms);
	free(d->b2.seal_ms);
	pthread_mutex_destroy(&d->a.lock);
	pthread_mutex_destroy(&d->b2.lock);
	pthread_cond_destroy(&d->a.cond);
	pthread_cond_destroy(&d->b2.cond);
	free(d);
	return status;
}
