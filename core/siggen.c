/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * siggen.c - seeded synthetic handwritten signatures (signal-processing.md
 * section 8, generator G2: purely procedural, no data files).
 *
 * No signature corpus is available to the project, so tests and the demo
 * draw signatures from Hollerbach's oscillatory model of handwriting: the
 * pen moves right at a steady pace while two coupled oscillators (x and y)
 * draw the letters,
 *
 *     x(t) = c t / 2pi + a sin(wx t + px),   y(t) = A(t) sin(t + py),
 *
 * where a wx > c / 2pi makes loops and A(t) switches per half-cycle between
 * x-height, ascender and descender amplitudes.  The writer ("user") fixes
 * the name's shape: number of words and letters, loopiness, slant,
 * ascenders, pen, ink and paper.  Each signature ("sample") adds the small
 * variations of a real hand: rotation, scale, slant and amplitude jitter, a
 * slow wobble, and its own pen pressure.  Strokes are resampled by arc
 * length (0.25 px) and stamped as anti-aliased discs on a 2x supersampled
 * canvas; the stroke is thinner where the pen moves fast and tapers at its
 * ends.  The paper gets a slow texture and N(0, 2) noise.
 *
 * All randomness comes from xoshiro256** seeded by splitmix64 from
 * (user, sample), so the image is a pure function of the two numbers (on
 * a given libm; the golden hashes in the tests pin this).
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/bio.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define SIG_W 560
#define SIG_H 220
#define SS 2                   /* supersampling factor */
#define MARGIN 16.0            /* px kept free around the signature */
#define STEP 0.25              /* arc-length step in final pixels */
#define MAX_WORDS 3
#define MAX_LETTERS 8
#define MAX_HALF (2 * MAX_LETTERS + 4)
#define MAX_STROKES (MAX_WORDS + 4)
#define DENSE 96               /* parameter samples per letter cycle */

/* ---- PRNG ------------------------------------------------------------------ */

struct rng {
	uint64_t s[4];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void
rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1) with 53 bits. */
static double
rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static double
rng_uniform(struct rng *r, double lo, double hi)
{
	return lo + (hi - lo) * rng_unit(r);
}

static double
rng_normal(struct rng *r, double mean, double sd)
{
	double u = rng_unit(r), v = rng_unit(r);

	return mean + sd * sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static int
rng_int(struct rng *r, int lo, int hi)   /* inclusive */
{
	return lo + (int)(rng_unit(r) * (hi - lo + 1));
}

/* ---- Style and variation --------------------------------------------------- */

struct word {
	int letters;
	double up[MAX_HALF];    /* amplitude of upward half-cycles (x-heights) */
	double down[MAX_HALF];  /* amplitude of downward half-cycles */
	double wid[MAX_LETTERS + 2];  /* letter widths (advance multiplier) */
	double lx[MAX_LETTERS + 2];   /* letter loopiness multiplier */
	double gap;             /* space before the word, in x-heights */
	double drift;           /* baseline slope */
};

struct style {
	int words;
	struct word w[MAX_WORDS];
	double xh;              /* x-height in px */
	double adv;             /* advance per letter, in x-heights */
	double loop;            /* a / (c / 2pi): > 1 makes loops */
	double wx, px, py;      /* x frequency and the phases */
	double slant;
	double pen;             /* base pen width, px */
	double ink, paper;
	bool underline;
	int dots;               /* i-dots / t-bars */
};

static void
make_style(uint32_t user, struct style *st)
{
	struct rng r;

	rng_seed(&r, 0x5349474e00000000ull ^ user);   /* "SIGN" */
	st->words = rng_unit(&r) < 0.25 ? 3 : 2;
	st->xh = rng_uniform(&r, 20, 30);
	st->adv = rng_uniform(&r, 0.75, 1.15);
	st->loop = rng_uniform(&r, 0.7, 1.9);
	st->wx = rng_uniform(&r, 0.9, 1.1);
	st->py = rng_uniform(&r, 0, 2 * M_PI);
	st->px = st->py + rng_uniform(&r, 0.2, 0.8) * M_PI;
	st->slant = rng_uniform(&r, -0.1, 0.5);
	st->pen = rng_uniform(&r, 1.2, 2.4);
	st->ink = rng_uniform(&r, 25, 80);
	st->paper = rng_uniform(&r, 238, 252);
	st->underline = rng_unit(&r) < 0.7;
	st->dots = rng_int(&r, 0, 2);
	for (int k = 0; k < st->words; k++) {
		struct word *w = &st->w[k];

		/* A first word of one letter is an initial. */
		w->letters = k == 0 && st->words == 3 ? 1 : rng_int(&r, 3, 8);
		w->gap = k ? rng_uniform(&r, 0.9, 1.8) : 0;
		w->drift = rng_uniform(&r, -0.06, 0.06);
		for (int h = 0; h < MAX_HALF; h++) {
			double u = rng_unit(&r), d = rng_unit(&r);

			w->up[h] = u < 0.3 ? rng_uniform(&r, 1.9, 2.8)
					   : rng_uniform(&r, 0.8, 1.15);
			w->down[h] = d < 0.18 ? rng_uniform(&r, 1.8, 2.6)
					      : rng_uniform(&r, 0.8, 1.1);
		}
		for (int l = 0; l < MAX_LETTERS + 2; l++) {
			w->wid[l] = rng_uniform(&r, 0.6, 1.5);
			w->lx[l] = rng_uniform(&r, 0.5, 1.6);
		}
		/* The capital: a tall, wide first loop. */
		w->wid[0] = rng_uniform(&r, 1.2, 1.8);
		w->lx[0] = rng_uniform(&r, 1.2, 2.2);
		w->up[0] = rng_uniform(&r, 2.6, 3.6);
	}
}

/* Per-signature variation of the writer's style. */
struct sample {
	double rot, scale, slant;
	double wob_a[2][3], wob_f[2][3], wob_p[2][3];   /* slow wobble */
	double pr_a[3], pr_f[3], pr_p[3];               /* pen pressure */
	double dx, dy;                                  /* placement */
};

static void
make_sample(uint32_t user, uint32_t sample, struct style *st,
	    struct sample *sm, struct rng *r)
{
	rng_seed(r, ((uint64_t)user << 32 | sample) ^ 0xa5a5c3c3deadbeefull);
	sm->rot = rng_normal(r, 0, 0.03);
	sm->scale = rng_normal(r, 1, 0.03);
	sm->slant = st->slant + rng_normal(r, 0, 0.03);
	for (int a = 0; a < 2; a++) {
		for (int k = 0; k < 3; k++) {
			sm->wob_a[a][k] = rng_uniform(r, 0.2, 0.8);
			sm->wob_f[a][k] = rng_uniform(r, 0.005, 0.03);
			sm->wob_p[a][k] = rng_uniform(r, 0, 2 * M_PI);
		}
	}
	for (int k = 0; k < 3; k++) {
		sm->pr_a[k] = rng_uniform(r, 0.3, 1.0);
		sm->pr_f[k] = rng_uniform(r, 0.01, 0.05);
		sm->pr_p[k] = rng_uniform(r, 0, 2 * M_PI);
	}
	/* The writer's amplitudes, phases and gaps vary a little. */
	for (int k = 0; k < st->words; k++) {
		for (int h = 0; h < MAX_HALF; h++) {
			st->w[k].up[h] *= 1 + rng_normal(r, 0, 0.06);
			st->w[k].down[h] *= 1 + rng_normal(r, 0, 0.06);
		}
		st->w[k].gap *= 1 + rng_normal(r, 0, 0.08);
		st->w[k].drift += rng_normal(r, 0, 0.01);
	}
	st->px += rng_normal(r, 0, 0.06);
	st->adv *= 1 + rng_normal(r, 0, 0.03);
	sm->dx = rng_normal(r, 0, 6);
	sm->dy = rng_normal(r, 0, 4);
}

/* ---- Trajectories ----------------------------------------------------------- */

struct pt {
	double x, y;
};

struct stroke {
	struct pt *p;
	size_t n;
};

static bool
stroke_push(struct stroke *s, size_t *cap, double x, double y)
{
	if (s->n == *cap) {
		size_t nc = *cap ? 2 * *cap : 256;
		struct pt *np = realloc(s->p, nc * sizeof(*np));

		if (!np)
			return false;
		s->p = np;
		*cap = nc;
	}
	s->p[s->n].x = x;
	s->p[s->n].y = y;
	s->n++;
	return true;
}

/*
 * One word as a dense polyline in "writer units" (x-height = 1, y up),
 * starting at x0 on a baseline through (x0, 0).  Returns the end x.
 */
static bool
word_path(const struct style *st, const struct word *w, double x0,
	  struct stroke *s, double *x_end)
{
	size_t cap = 0;
	double c = st->adv, a = st->loop * c / (2 * M_PI);
	double t_end = 2 * M_PI * w->letters + 0.5 * M_PI;
	size_t n = (size_t)(DENSE * (w->letters + 0.25));
	double dt = t_end / (double)n, xa = x0;

	for (size_t i = 0; i <= n; i++) {
		double t = dt * (double)i;
		/* Letter widths and loopiness blend smoothly between letters. */
		double lt = t / (2 * M_PI);
		int l = (int)lt;
		double f = 0.5 - 0.5 * cos(M_PI * (lt - l));
		double wid = w->wid[l] + f * (w->wid[l + 1] - w->wid[l]);
		double lx = w->lx[l] + f * (w->lx[l + 1] - w->lx[l]);
		double sy = sin(t + st->py);
		/* Half-cycle index: each zero crossing of sy starts a new one. */
		double ph = (t + st->py) / M_PI;
		int h = (int)floor(ph) - (int)floor(st->py / M_PI);
		double amp, x, y;

		if (h < 0)
			h = 0;
		if (h >= MAX_HALF)
			h = MAX_HALF - 1;
		amp = sy > 0 ? w->up[h] : w->down[h];
		x = xa + a * lx * sin(st->wx * t + st->px);
		xa += c * wid * dt / (2 * M_PI);
		y = 0.5 * amp * sy + 0.5 + w->drift * (x - x0);
		if (!stroke_push(s, &cap, x, y))
			return false;
	}
	*x_end = xa + a;
	return true;
}

/* A sweeping underline from under the end back towards the start. */
static bool
underline_path(double x_start, double x_end, struct rng *r, struct stroke *s)
{
	size_t cap = 0, n = 400;
	double y0 = rng_uniform(r, -1.2, -0.6), bow = rng_uniform(r, -0.4, 0.4);
	double x_from = x_end + rng_uniform(r, -0.5, 1.0);
	double x_to = x_start + (x_end - x_start) * rng_uniform(r, 0.0, 0.35);

	for (size_t i = 0; i <= n; i++) {
		double u = (double)i / (double)n;
		double x = x_from + (x_to - x_from) * u;
		double y = y0 + bow * sin(M_PI * u) - 0.3 * u * u;

		if (!stroke_push(s, &cap, x, y))
			return false;
	}
	return true;
}

/* A short dot or bar above the x-height. */
static bool
dot_path(double x, struct rng *r, struct stroke *s)
{
	size_t cap = 0;
	double len = rng_uniform(r, 0.1, 0.9), y = rng_uniform(r, 1.6, 2.2);

	for (int i = 0; i <= 20; i++)
		if (!stroke_push(s, &cap, x + len * i / 20.0,
				 y + 0.05 * len * i / 20.0))
			return false;
	return true;
}

/* ---- Rendering -------------------------------------------------------------- */

struct canvas {
	float *cov;             /* SIG_W*SS x SIG_H*SS coverage in [0, 1] */
	int w, h;
};

static void
stamp(struct canvas *cv, double cx, double cy, double radius)
{
	int x_lo = (int)floor(cx - radius - 1), x_hi = (int)ceil(cx + radius + 1);
	int y_lo = (int)floor(cy - radius - 1), y_hi = (int)ceil(cy + radius + 1);

	if (x_lo < 0)
		x_lo = 0;
	if (y_lo < 0)
		y_lo = 0;
	if (x_hi >= cv->w)
		x_hi = cv->w - 1;
	if (y_hi >= cv->h)
		y_hi = cv->h - 1;
	for (int y = y_lo; y <= y_hi; y++) {
		for (int x = x_lo; x <= x_hi; x++) {
			double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
			double c = radius + 0.5 - sqrt(dx * dx + dy * dy);
			float *p = &cv->cov[(size_t)y * cv->w + x];

			if (c <= 0)
				continue;
			if (c > 1)
				c = 1;
			if ((float)c > *p)
				*p = (float)c;
		}
	}
}

static double
pressure(const struct sample *sm, double s)
{
	double v = 0;

	for (int k = 0; k < 3; k++)
		v += sm->pr_a[k] * sin(sm->pr_f[k] * s + sm->pr_p[k]);
	return 0.75 + 0.25 * tanh(v);
}

/*
 * Draw one stroke given in canvas pixels (final resolution): resample by
 * arc length, width from speed, pressure and end taper.  `total` carries
 * the arc length over strokes so that the pressure signal is continuous.
 */
static void
render_stroke(struct canvas *cv, const struct stroke *s, const struct style *st,
	      const struct sample *sm, double *total)
{
	double len = 0, mean_v, pos = 0;
	size_t seg = 0;

	if (s->n < 2)
		return;
	for (size_t i = 1; i < s->n; i++)
		len += hypot(s->p[i].x - s->p[i - 1].x, s->p[i].y - s->p[i - 1].y);
	mean_v = len / (double)(s->n - 1);
	if (mean_v <= 0)
		return;
	for (double d = 0; d <= len; d += STEP) {
		double sl, u, x, y, v, wf, taper, width, end;

		/* Advance to the segment containing arc length d. */
		for (;;) {
			sl = hypot(s->p[seg + 1].x - s->p[seg].x,
				   s->p[seg + 1].y - s->p[seg].y);
			if (pos + sl >= d || seg + 2 >= s->n)
				break;
			pos += sl;
			seg++;
		}
		u = sl > 0 ? (d - pos) / sl : 0;
		if (u > 1)
			u = 1;
		x = s->p[seg].x + u * (s->p[seg + 1].x - s->p[seg].x);
		y = s->p[seg].y + u * (s->p[seg + 1].y - s->p[seg].y);
		/* Dense samples are uniform in time: length = speed. */
		v = sl / mean_v;
		wf = 1.3 - 0.5 * v;
		wf = wf < 0.45 ? 0.45 : wf > 1.6 ? 1.6 : wf;
		end = d < len - d ? d : len - d;
		taper = 0.3 + 0.7 * fmin(1.0, end / (3.0 * st->pen));
		width = st->pen * wf * pressure(sm, *total + d) * taper;
		stamp(cv, x * SS, y * SS, 0.5 * width * SS);
	}
	*total += len;
}

enum s2s_err
s2s_bio_siggen(uint32_t user, uint32_t sample, struct s2s_image *out)
{
	struct style st;
	struct sample sm;
	struct rng r;
	struct stroke strokes[MAX_STROKES];
	struct canvas cv = { 0 };
	size_t ns = 0;
	double x = 0, x_first = 0, x_lo = 1e9, x_hi = -1e9, y_lo = 1e9,
	       y_hi = -1e9, k, cx, cy, cosr, sinr, total = 0;
	enum s2s_err err = S2S_ERR_NOMEM;

	if (!out)
		return S2S_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	memset(strokes, 0, sizeof(strokes));
	make_style(user, &st);
	make_sample(user, sample, &st, &sm, &r);

	/* Words, then the flourishes, in writer units. */
	for (int i = 0; i < st.words; i++) {
		x += st.w[i].gap;
		if (!word_path(&st, &st.w[i], x, &strokes[ns++], &x))
			goto out;
	}
	for (int i = 0; i < st.dots; i++) {
		double dx = rng_uniform(&r, x_first + 1, x);

		if (!dot_path(dx, &r, &strokes[ns++]))
			goto out;
	}
	if (st.underline && !underline_path(x_first, x, &r, &strokes[ns++]))
		goto out;

	/* Slant, wobble, rotation: then fit and centre on the canvas. */
	cosr = cos(sm.rot);
	sinr = sin(sm.rot);
	for (size_t i = 0; i < ns; i++) {
		for (size_t j = 0; j < strokes[i].n; j++) {
			struct pt *p = &strokes[i].p[j];
			double px = p->x + sm.slant * p->y, py = p->y;

			for (int q = 0; q < 3; q++) {
				double ph = 2 * M_PI * j / DENSE;

				px += 0.03 * sm.wob_a[0][q] *
				      sin(sm.wob_f[0][q] * 40 * ph + sm.wob_p[0][q]);
				py += 0.03 * sm.wob_a[1][q] *
				      sin(sm.wob_f[1][q] * 40 * ph + sm.wob_p[1][q]);
			}
			p->x = (px * cosr - py * sinr) * st.xh * sm.scale;
			p->y = -(px * sinr + py * cosr) * st.xh * sm.scale;
			x_lo = fmin(x_lo, p->x);
			x_hi = fmax(x_hi, p->x);
			y_lo = fmin(y_lo, p->y);
			y_hi = fmax(y_hi, p->y);
		}
	}
	k = fmin(1.0, fmin((SIG_W - 2 * MARGIN - 12) / (x_hi - x_lo),
			   (SIG_H - 2 * MARGIN - 8) / (y_hi - y_lo)));
	cx = SIG_W / 2.0 + sm.dx;
	cy = SIG_H / 2.0 + sm.dy;
	for (size_t i = 0; i < ns; i++) {
		for (size_t j = 0; j < strokes[i].n; j++) {
			struct pt *p = &strokes[i].p[j];

			p->x = cx + k * (p->x - (x_lo + x_hi) / 2);
			p->y = cy + k * (p->y - (y_lo + y_hi) / 2);
		}
	}

	cv.w = SIG_W * SS;
	cv.h = SIG_H * SS;
	cv.cov = calloc((size_t)cv.w * cv.h, sizeof(*cv.cov));
	if (!cv.cov)
		goto out;
	for (size_t i = 0; i < ns; i++)
		render_stroke(&cv, &strokes[i], &st, &sm, &total);

	if ((err = s2s_image_alloc(out, SIG_W, SIG_H, 255)))
		goto out;
	{
		/* Slow paper texture: a few broad sinusoidal blotches. */
		double ta[3], tf[3][2], tp[3];

		for (int q = 0; q < 3; q++) {
			ta[q] = rng_uniform(&r, 0.3, 1.2);
			tf[q][0] = rng_uniform(&r, 0.01, 0.05);
			tf[q][1] = rng_uniform(&r, 0.01, 0.05);
			tp[q] = rng_uniform(&r, 0, 2 * M_PI);
		}
		for (int y = 0; y < SIG_H; y++) {
			for (int xx = 0; xx < SIG_W; xx++) {
				double c = 0, paper = st.paper, v;

				for (int dy = 0; dy < SS; dy++)
					for (int dx = 0; dx < SS; dx++)
						c += cv.cov[(size_t)(y * SS + dy) *
								    cv.w +
							    xx * SS + dx];
				c /= SS * SS;
				for (int q = 0; q < 3; q++)
					paper += ta[q] * sin(tf[q][0] * xx +
							     tf[q][1] * y + tp[q]);
				v = paper - (paper - st.ink) * c +
				    rng_normal(&r, 0, 2);
				v = floor(v + 0.5);
				out->pixels[(size_t)y * SIG_W + xx] =
					(uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
			}
		}
	}
	err = S2S_OK;
out:
	free(cv.cov);
	for (size_t i = 0; i < MAX_STROKES; i++)
		free(strokes[i].p);
	return err;
}
