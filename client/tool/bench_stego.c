/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * s2s bench stego - Fx, stego embed/extract (without the PNG codec), PNG
 * encode/decode per zlib level, PSNR over the default covers, and a
 * steganalysis comparison of covers and stego images.  Times are medians.
 *
 * Covers are read from --covers DIR, else $S2S_COVERS_DIR, else
 * core/covers (run from the source tree, as `make bench` does).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "s2s/bio.h"
#include "s2s/crypto.h"
#include "s2s/image.h"
#include "s2s/package.h"
#include "s2s/scheme.h"
#include "s2s/secmem.h"
#include "s2s/stego.h"
#include "tool.h"

#define SAMPLES 31
#define KEYS 64

static const char *const cover_names[] = {
	"camera128", "astronaut128", "brick128", "grass128", "gravel128",
	"coffee128",
};
#define NCOVERS (sizeof(cover_names) / sizeof(cover_names[0]))

struct fx_arg {
	struct s2s_image a, b;
	uint16_t rv[S2S_RV_LEN];
};

static int
run_fx(void *p)
{
	struct fx_arg *f = p;

	return s2s_bio_features(&f->a, &f->b, f->rv) != S2S_OK;
}

struct st_arg {
	struct s2s_image img;
	uint8_t key[32];
	uint8_t payload[2][32];
	uint8_t out[16];
	size_t n;
	unsigned flip;
	struct s2s_stego_sel *sel;
};

/* Alternate two payloads so that every embed really changes pixels. */
static int
run_embed(void *p)
{
	struct st_arg *s = p;

	s->flip ^= 1;
	return s2s_stego_embed(&s->img, s->key, s->payload[s->flip], s->n,
			       NULL) != S2S_OK;
}

static int
run_extract(void *p)
{
	struct st_arg *s = p;

	return s2s_stego_extract(&s->img, s->key, s->out, s->n) != S2S_OK;
}

static int
run_sel_create(void *p)
{
	struct st_arg *s = p;
	struct s2s_stego_sel *sel;

	if (s2s_stego_sel_create(s->key, s->img.width, s->img.height, s->n,
				 &sel))
		return 1;
	s2s_stego_sel_destroy(sel);
	return 0;
}

static int
run_embed_sel(void *p)
{
	struct st_arg *s = p;

	s->flip ^= 1;
	return s2s_stego_embed_sel(s->sel, &s->img, s->payload[s->flip], s->n,
				   NULL) != S2S_OK;
}

static int
run_extract_sel(void *p)
{
	struct st_arg *s = p;

	return s2s_stego_extract_sel(s->sel, &s->img, s->out, s->n) != S2S_OK;
}

struct map_arg {
	struct st_arg *s;
	const uint8_t *rows[4096];
	uint8_t map[64 * 64];
};

static int
run_extract_map(void *p)
{
	struct map_arg *m = p;

	s2s_stego_parity_map(m->rows, m->s->img.width, m->s->img.height,
			     m->map);
	return s2s_stego_extract_map(m->s->sel, m->map, m->s->out,
				     m->s->n) != S2S_OK;
}

static int
run_both_sel(void *p)
{
	return run_embed_sel(p) || run_extract_sel(p);
}

struct png_arg {
	const struct s2s_image *img;
	int level;
	uint8_t *buf;
	size_t len;
	struct s2s_image_rows rows;
};

/* The gate's read of a stego PNG: rows (in place at level 0). */
static int
run_png_rows(void *p)
{
	struct png_arg *a = p;

	return s2s_image_png_gray_rows(a->buf, a->len, NULL, &a->rows,
				       NULL) != S2S_OK;
}

static int
run_png_enc(void *p)
{
	struct png_arg *a = p;
	uint8_t *buf;
	size_t len;

	if (s2s_image_encode_png(a->img, a->level, &buf, &len))
		return 1;
	free(buf);
	return 0;
}

static int
run_png_dec(void *p)
{
	struct png_arg *a = p;
	struct s2s_image img;

	if (s2s_image_decode(a->buf, a->len, NULL, &img))
		return 1;
	s2s_image_free(&img);
	return 0;
}

/* Deterministic test keys and payloads: SHA-256("bench" || tag || i). */
static void
derive(const char *tag, unsigned i, uint8_t out[32])
{
	uint8_t ctr[4] = { (uint8_t)(i >> 24), (uint8_t)(i >> 16),
			   (uint8_t)(i >> 8), (uint8_t)i };
	struct s2s_iov v[3] = { { "bench", 5 }, { tag, strlen(tag) },
				{ ctr, 4 } };

	s2s_sha256v(v, 3, out);
}

static int
bench_fx(void)
{
	struct fx_arg f = { 0 };
	int rc = 1;

	if (s2s_bio_siggen(1, 0, &f.a) || s2s_bio_siggen(2, 0, &f.b))
		goto out;
	bench_row("Fx (two 560x220 signatures)",
		  bench_median_us(run_fx, &f, SAMPLES, 4), NULL);
	rc = 0;
out:
	S2S_WIPE(f.rv);
	s2s_image_free(&f.a);
	s2s_image_free(&f.b);
	return rc;
}

static int
bench_embed(const struct s2s_image *cover)
{
	struct st_arg s = { 0 };
	static const size_t sizes[2] = { 8, 16 };
	char name[80];
	int rc = 1;

	if (s2s_image_alloc(&s.img, cover->width, cover->height, 0))
		return 1;
	memcpy(s.img.pixels, cover->pixels, (size_t)cover->width * cover->height);
	derive("key", 0, s.key);
	derive("payload", 0, s.payload[0]);
	derive("payload", 1, s.payload[1]);
	for (int k = 0; k < 2; k++) {
		s.n = sizes[k];
		snprintf(name, sizeof(name), "stego embed %zu B (one-shot)", s.n);
		bench_row(name, bench_median_us(run_embed, &s, SAMPLES, 20), NULL);
		snprintf(name, sizeof(name), "stego extract %zu B (one-shot)", s.n);
		bench_row(name, bench_median_us(run_extract, &s, SAMPLES, 20), NULL);
		snprintf(name, sizeof(name), "stego selection create %zu B", s.n);
		bench_row(name, bench_median_us(run_sel_create, &s, SAMPLES, 20),
			  "once per session key");
		if (s2s_stego_sel_create(s.key, s.img.width, s.img.height, s.n,
					 &s.sel))
			goto out;
		snprintf(name, sizeof(name), "stego embed %zu B (session sel)", s.n);
		bench_row(name, bench_median_us(run_embed_sel, &s, SAMPLES, 2000),
			  NULL);
		snprintf(name, sizeof(name), "stego extract %zu B (session sel)", s.n);
		bench_row(name, bench_median_us(run_extract_sel, &s, SAMPLES, 2000),
			  NULL);
		if (s.img.height <= 4096 && s.img.width <= 128) {
			struct map_arg *m = calloc(1, sizeof(*m));

			if (!m)
				goto out;
			m->s = &s;
			for (uint32_t y = 0; y < s.img.height; y++)
				m->rows[y] = s.img.pixels +
					     (size_t)y * s.img.width;
			snprintf(name, sizeof(name),
				 "stego extract %zu B (parity map)", s.n);
			bench_row(name, bench_median_us(run_extract_map, m,
							SAMPLES, 2000),
				  "map of all blocks + lookups (open)");
			free(m);
		}
		snprintf(name, sizeof(name), "stego embed+extract %zu B (sel)", s.n);
		bench_row(name, bench_median_us(run_both_sel, &s, SAMPLES, 2000),
			  "goal < 5 us for 8 B");
		s2s_stego_sel_destroy(s.sel);
		s.sel = NULL;
	}
	rc = 0;
out:
	S2S_WIPE(s.key);
	s2s_image_free(&s.img);
	return rc;
}

static int
bench_png(const struct s2s_image *cover)
{
	static const int levels[4] = { 0, 1, 6, 9 };

	for (int k = 0; k < 4; k++) {
		struct png_arg a = { .img = cover, .level = levels[k] };
		char name[64], note[64];

		if (s2s_image_encode_png(cover, a.level, &a.buf, &a.len))
			return 1;
		snprintf(note, sizeof(note), "%zu bytes", a.len);
		snprintf(name, sizeof(name), "PNG encode 128x128 level %d", a.level);
		bench_row(name, bench_median_us(run_png_enc, &a, SAMPLES, 20), note);
		snprintf(name, sizeof(name), "PNG decode 128x128 level %d", a.level);
		bench_row(name, bench_median_us(run_png_dec, &a, SAMPLES, 20), note);
		snprintf(name, sizeof(name), "PNG gray rows 128x128 level %d",
			 a.level);
		bench_row(name, bench_median_us(run_png_rows, &a, SAMPLES, a.level ? 20 : 200),
			  "what open reads (in place at level 0)");
		s2s_image_rows_free(&a.rows);
		free(a.buf);
	}
	return 0;
}

/* ---- seal + open per PNG level: compute and wire bytes ----------------- */

struct pkg_arg {
	struct s2s_chain tx, rx;
	struct s2s_package_cache sc, oc;
	const struct s2s_image *cover;
	int level;
	uint8_t *pkg;
	size_t len;
	int mode;          /* 0 seal, 1 open, 2 both */
};

static int
pkg_seal(struct pkg_arg *a)
{
	free(a->pkg);
	a->pkg = NULL;
	return s2s_package_seal_cached(&a->tx, &a->sc, "alice", "bob",
				       (const uint8_t *)"32-byte message for "
				       "the bench!!", 32, a->cover, a->level,
				       &a->pkg, &a->len, NULL) != S2S_OK;
}

static int
pkg_open(struct pkg_arg *a)
{
	struct s2s_package q;

	return s2s_package_parse(a->pkg, a->len, NULL, &q) ||
	       s2s_package_open_cached(&a->rx, &a->oc, &q, NULL, NULL);
}

/* Seal and open alternate: every open gets the package sealed last. */
static int
run_pkg(void *p)
{
	struct pkg_arg *a = p;

	return pkg_seal(a) || pkg_open(a);
}

static int
bench_package(const struct s2s_image *cover)
{
	static const int levels[] = { 0, 1, 6, 9 };
	uint8_t skcs[S2S_SKCS_LEN], sk[32], shk[32];

	for (size_t i = 0; i < sizeof(skcs); i++)
		skcs[i] = (uint8_t)(i * 13 + 1);
	for (size_t i = 0; i < 32; i++) {
		sk[i] = (uint8_t)(i * 29 + 7);
		shk[i] = (uint8_t)(i * 31 + 3);
	}
	printf("\n# Package seal + open (cached, 32-byte message, 128x128 "
	       "cover): median us per pair, wire bytes\n");
	for (int prof = 1; prof <= 2; prof++) {
		for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
			struct pkg_arg *a = calloc(1, sizeof(*a));
			double t_both, t_seal, t_open, t0;
			char name[96], note[96];
			size_t sk_len = prof == S2S_PROFILE_PAPER ? 24 : 32;
			double ts[SAMPLES], to[SAMPLES];
			/* compressed levels cost up to ms: fewer per sample */
			int batch = levels[l] ? 3 : 100;

			if (!a)
				return 1;
			a->cover = cover;
			a->level = levels[l];
			if (s2s_chain_init(&a->tx, (enum s2s_profile)prof, 9,
					   skcs, sk, sk_len, shk, 32) ||
			    s2s_chain_init(&a->rx, (enum s2s_profile)prof, 9,
					   skcs, sk, sk_len, shk, 32) ||
			    run_pkg(a) || run_pkg(a)) {
				free(a);
				return 1;
			}
			/* seal and open timed apart, alternating */
			for (int smp = 0; smp < SAMPLES; smp++) {
				double s_sum = 0, o_sum = 0;

				for (int i = 0; i < batch; i++) {
					t0 = bench_now_us();
					if (pkg_seal(a))
						return 1;
					s_sum += bench_now_us() - t0;
					t0 = bench_now_us();
					if (pkg_open(a))
						return 1;
					o_sum += bench_now_us() - t0;
				}
				ts[smp] = s_sum / batch;
				to[smp] = o_sum / batch;
			}
			t_both = bench_median_us(run_pkg, a, SAMPLES, batch);
			{
				/* medians of the split */
				for (int i = 1; i < SAMPLES; i++)
					for (int j = i; j > 0 &&
					     ts[j - 1] > ts[j]; j--) {
						double t = ts[j];

						ts[j] = ts[j - 1];
						ts[j - 1] = t;
					}
				for (int i = 1; i < SAMPLES; i++)
					for (int j = i; j > 0 &&
					     to[j - 1] > to[j]; j--) {
						double t = to[j];

						to[j] = to[j - 1];
						to[j - 1] = t;
					}
				t_seal = ts[SAMPLES / 2];
				t_open = to[SAMPLES / 2];
			}
			snprintf(note, sizeof(note), "%zu bytes on the wire",
				 a->len);
			snprintf(name, sizeof(name), "package seal %s level %d",
				 prof == 1 ? "paper" : "hardened", a->level);
			bench_row(name, t_seal, note);
			snprintf(name, sizeof(name), "package open %s level %d",
				 prof == 1 ? "paper" : "hardened", a->level);
			bench_row(name, t_open, "the gate's and the receiver's "
				  "work");
			snprintf(name, sizeof(name), "package seal+open %s "
				 "level %d", prof == 1 ? "paper" : "hardened",
				 a->level);
			bench_row(name, t_both, "goal <= 20 us");
			free(a->pkg);
			s2s_package_cache_clear(&a->sc);
			s2s_package_cache_clear(&a->oc);
			s2s_chain_wipe(&a->tx);
			s2s_chain_wipe(&a->rx);
			free(a);
		}
	}
	S2S_WIPE(sk);
	S2S_WIPE(shk);
	S2S_WIPE(skcs);
	return 0;
}

struct quality {
	double psnr_sum, psnr_min;
	unsigned changes_max, fallback, fail;
	double d_chi2p, d_rs, d_spa;    /* sums of |stego - cover| */
};

/* Embed KEYS random payloads of n bytes; PSNR and detector deltas. */
static int
measure(const struct s2s_image *cover, const struct s2s_stego_analysis *ca,
	size_t n, struct quality *q)
{
	struct s2s_image img;
	size_t npx = (size_t)cover->width * cover->height;

	memset(q, 0, sizeof(*q));
	q->psnr_min = INFINITY;
	if (s2s_image_alloc(&img, cover->width, cover->height, 0))
		return 1;
	for (unsigned i = 0; i < KEYS; i++) {
		uint8_t key[32], payload[32], back[32];
		struct s2s_stego_analysis sa;
		unsigned changes;
		double psnr;

		derive("key", i, key);
		derive("payload", i, payload);
		memcpy(img.pixels, cover->pixels, npx);
		if (s2s_stego_embed(&img, key, payload, n, &changes) ||
		    s2s_stego_extract(&img, key, back, n) ||
		    memcmp(back, payload, n)) {
			q->fail++;
			continue;
		}
		s2s_image_psnr(cover, &img, NULL, &psnr);
		q->psnr_sum += isinf(psnr) ? 0 : psnr;
		if (psnr < q->psnr_min)
			q->psnr_min = psnr;
		if (changes > q->changes_max)
			q->changes_max = changes;
		q->fallback += changes > n;
		s2s_stego_analyze(&img, &sa);
		q->d_chi2p += fabs(sa.chi2_p - ca->chi2_p);
		q->d_rs += fabs(sa.rs - ca->rs);
		q->d_spa += fabs(sa.spa - ca->spa);
	}
	s2s_image_free(&img);
	return 0;
}

/* Replace the LSB of each pixel with probability 1/2 (detector check). */
static void
lsb_replace_half(struct s2s_image *img)
{
	size_t n = (size_t)img->width * img->height;
	uint8_t r[32];

	for (size_t i = 0; i < n; i++) {
		unsigned bits;

		if (i % 128 == 0)
			derive("lsb", (unsigned)(i / 128), r);
		bits = r[(i % 128) / 4] >> (2 * (i % 4));
		if (bits & 1)
			img->pixels[i] = (uint8_t)((img->pixels[i] & ~1u) |
						   ((bits >> 1) & 1));
	}
}

int
bench_stego(int argc, char **argv)
{
	const char *dir = getenv("S2S_COVERS_DIR");
	struct s2s_image covers[NCOVERS];
	struct s2s_stego_analysis ca[NCOVERS];
	int rc = 1;
	size_t loaded = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--covers") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: s2s bench stego [--covers DIR]\n");
			return 0;
		} else {
			return tool_fail(EXIT_USAGE, "bench", "bad argument '%s'",
					 argv[i]);
		}
	}
	if (!dir || !*dir)
		dir = "core/covers";
	for (; loaded < NCOVERS; loaded++) {
		char path[4096];
		enum s2s_err err;

		snprintf(path, sizeof(path), "%s/%s.png", dir,
			 cover_names[loaded]);
		if ((err = s2s_image_read_file(path, NULL, &covers[loaded]))) {
			tool_fail(1, "bench", "%s: %s (use --covers DIR)", path,
				  s2s_strerror(err));
			goto out;
		}
	}

	printf("# Fx, stego and PNG: median microseconds of %d samples\n",
	       SAMPLES);
	if (bench_fx() || bench_embed(&covers[0]) || bench_png(&covers[0]) ||
	    bench_package(&covers[0]))
		goto out;

	printf("\n# PSNR over %d keys per cover (8 B = paper MACLESS||R^T, "
	       "16 B = hardened tag||R^T); paper: 76.43 dB\n", KEYS);
	printf("%-13s %6s %9s %9s %7s %8s %5s\n", "cover", "bytes", "mean_dB",
	       "min_dB", "max_chg", "fallback", "fail");
	for (size_t c = 0; c < NCOVERS; c++) {
		s2s_stego_analyze(&covers[c], &ca[c]);
		for (size_t n = 8; n <= 16; n += 8) {
			struct quality q;
			unsigned ok;

			if (measure(&covers[c], &ca[c], n, &q))
				goto out;
			ok = KEYS - q.fail;
			printf("%-13s %6zu %9.3f %9.3f %7u %8u %5u\n",
			       cover_names[c], n, ok ? q.psnr_sum / ok : 0.0,
			       q.psnr_min, q.changes_max, q.fallback, q.fail);
		}
	}

	printf("\n# Steganalysis: cover values, mean |stego - cover| over %d "
	       "keys (8 B payload), and 50 %% LSB replacement for calibration\n",
	       KEYS);
	printf("%-13s %8s %8s %8s | %9s %9s %9s | %8s %8s %8s\n", "cover",
	       "chi2_p", "rs", "spa", "|d chi2p|", "|d rs|", "|d spa|",
	       "lsb chi2p", "lsb rs", "lsb spa");
	for (size_t c = 0; c < NCOVERS; c++) {
		struct quality q;
		struct s2s_image lsb;
		struct s2s_stego_analysis la;
		size_t npx = (size_t)covers[c].width * covers[c].height;
		unsigned ok;

		if (measure(&covers[c], &ca[c], 8, &q) ||
		    s2s_image_alloc(&lsb, covers[c].width, covers[c].height, 0))
			goto out;
		memcpy(lsb.pixels, covers[c].pixels, npx);
		lsb_replace_half(&lsb);
		s2s_stego_analyze(&lsb, &la);
		s2s_image_free(&lsb);
		ok = KEYS - q.fail;
		if (!ok)
			ok = 1;
		printf("%-13s %8.4f %8.4f %8.4f | %9.5f %9.5f %9.5f | %8.4f %8.4f %8.4f\n",
		       cover_names[c], ca[c].chi2_p, ca[c].rs, ca[c].spa,
		       q.d_chi2p / ok, q.d_rs / ok, q.d_spa / ok, la.chi2_p,
		       la.rs, la.spa);
	}
	rc = 0;
out:
	for (size_t c = 0; c < loaded; c++)
		s2s_image_free(&covers[c]);
	return rc;
}
