/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * steganalysis.c - chi-square, RS and SPA detectors of LSB replacement
 * (signal-processing.md section 7), used to show that the HH-band stego
 * changes are statistically invisible.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "s2s/stego.h"

/* ---- Regularised incomplete gamma --------------------------------------- */

/* P(a, x) by its power series; converges fast for x < a + 1. */
static double
gamma_p_series(double a, double x)
{
	double term = 1.0 / a, sum = term;

	for (int n = 1; n < 1000; n++) {
		term *= x / (a + n);
		sum += term;
		if (fabs(term) < fabs(sum) * 1e-16)
			break;
	}
	return sum * exp(-x + a * log(x) - lgamma(a));
}

/* Q(a, x) by its continued fraction (modified Lentz), for x >= a + 1. */
static double
gamma_q_cf(double a, double x)
{
	const double tiny = 1e-300;
	double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;

	for (int i = 1; i < 1000; i++) {
		double an = -i * (i - a), delta;

		b += 2.0;
		d = an * d + b;
		if (fabs(d) < tiny)
			d = tiny;
		c = b + an / c;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1.0 / d;
		delta = d * c;
		h *= delta;
		if (fabs(delta - 1.0) < 1e-16)
			break;
	}
	return exp(-x + a * log(x) - lgamma(a)) * h;
}

double
s2s_stego_gamma_q(double a, double x)
{
	if (!(a > 0) || !(x >= 0))
		return NAN;
	if (x == 0)
		return 1.0;
	if (x < a + 1.0)
		return 1.0 - gamma_p_series(a, x);
	return gamma_q_cf(a, x);
}

/* ---- Chi-square attack (Westfeld-Pfitzmann) -------------------------------- */

static void
chi_square(const uint64_t hist[256], double *chi2, double *p)
{
	double sum = 0;
	int cats = 0;

	for (int k = 0; k < 128; k++) {
		double e = (double)(hist[2 * k] + hist[2 * k + 1]) / 2.0;
		double o = (double)hist[2 * k];

		if (e <= 4)
			continue;
		sum += (o - e) * (o - e) / e;
		cats++;
	}
	*chi2 = sum;
	*p = cats >= 2 ? s2s_stego_gamma_q((cats - 1) / 2.0, sum / 2.0) : 0.0;
}

/* ---- RS analysis (Fridrich-Goljan-Du) ------------------------------------- */

/* F1: x ^ 1.  F-1: ((x + 1) ^ 1) - 1, i.e. even x - 1, odd x + 1. */
static int
flip_pos(int x)
{
	return x ^ 1;
}

static int
flip_neg(int x)
{
	return ((x + 1) ^ 1) - 1;
}

static int
smooth(const int g[4])
{
	return abs(g[1] - g[0]) + abs(g[2] - g[1]) + abs(g[3] - g[2]);
}

struct rs_counts {
	double r_m, s_m, r_n, s_n;   /* fractions for mask M and -M */
};

/*
 * Regular/singular fractions over all groups of 4 horizontally adjacent
 * pixels (non-overlapping, row by row), mask M = [0 1 1 0].  With `pre`
 * every pixel first goes through F1 (the "all LSBs flipped" image).
 */
static void
rs_count(const struct s2s_image *img, bool pre, struct rs_counts *rc)
{
	static const int mask[4] = { 0, 1, 1, 0 };
	uint64_t rm = 0, sm = 0, rn = 0, sn = 0, groups = 0;

	for (uint32_t y = 0; y < img->height; y++) {
		const uint8_t *row = img->pixels + (size_t)y * img->width;

		for (uint32_t x = 0; x + 4 <= img->width; x += 4) {
			int g[4], fp[4], fn[4], f0, f1, f2;

			for (int k = 0; k < 4; k++) {
				g[k] = pre ? flip_pos(row[x + k]) : row[x + k];
				fp[k] = mask[k] ? flip_pos(g[k]) : g[k];
				fn[k] = mask[k] ? flip_neg(g[k]) : g[k];
			}
			f0 = smooth(g);
			f1 = smooth(fp);
			f2 = smooth(fn);
			rm += f1 > f0;
			sm += f1 < f0;
			rn += f2 > f0;
			sn += f2 < f0;
			groups++;
		}
	}
	rc->r_m = (double)rm / (double)groups;
	rc->s_m = (double)sm / (double)groups;
	rc->r_n = (double)rn / (double)groups;
	rc->s_n = (double)sn / (double)groups;
}

static double
rs_estimate(const struct s2s_image *img)
{
	struct rs_counts c0, c1;
	double d0, d1, dn0, dn1, a, b, c, z, disc;

	rs_count(img, false, &c0);
	rs_count(img, true, &c1);
	d0 = c0.r_m - c0.s_m;
	d1 = c1.r_m - c1.s_m;
	dn0 = c0.r_n - c0.s_n;
	dn1 = c1.r_n - c1.s_n;
	a = 2 * (d1 + d0);
	b = dn0 - dn1 - d1 - 3 * d0;
	c = d0 - dn0;
	if (fabs(a) < 1e-12) {
		if (fabs(b) < 1e-12)
			return 0;
		z = -c / b;
	} else {
		double z1, z2;

		disc = b * b - 4 * a * c;
		if (disc < 0)
			disc = 0;
		z1 = (-b + sqrt(disc)) / (2 * a);
		z2 = (-b - sqrt(disc)) / (2 * a);
		z = fabs(z1) < fabs(z2) ? z1 : z2;
	}
	if (fabs(z - 0.5) < 1e-12)
		return 0;
	return z / (z - 0.5);
}

/* ---- Sample pair analysis (Dumitrescu-Wu-Wang) ---------------------------- */

static double
spa_estimate(const struct s2s_image *img)
{
	uint64_t x = 0, y = 0, k = 0, p = 0;
	double a, b, c, disc, r1, r2;

	for (uint32_t row = 0; row < img->height; row++) {
		const uint8_t *px = img->pixels + (size_t)row * img->width;

		for (uint32_t i = 0; i + 1 < img->width; i++) {
			unsigned u = px[i], v = px[i + 1];

			if ((!(v & 1) && u < v) || ((v & 1) && u > v))
				x++;
			if ((!(v & 1) && u > v) || ((v & 1) && u < v))
				y++;
			if (u >> 1 == v >> 1)
				k++;
			p++;
		}
	}
	a = 2.0 * (double)k;
	b = 2.0 * (2.0 * (double)x - (double)p);
	c = (double)y - (double)x;
	if (a == 0)
		return b != 0 ? -c / b : 0;
	disc = b * b - 4 * a * c;
	if (disc < 0)
		disc = 0;
	r1 = (-b + sqrt(disc)) / (2 * a);
	r2 = (-b - sqrt(disc)) / (2 * a);
	return r1 < r2 ? r1 : r2;
}

enum s2s_err
s2s_stego_analyze(const struct s2s_image *img, struct s2s_stego_analysis *out)
{
	uint64_t hist[256] = { 0 };
	size_t n;

	if (!img || !img->pixels || !out || img->width < 4 || !img->height)
		return S2S_ERR_INVAL;
	n = (size_t)img->width * img->height;
	for (size_t i = 0; i < n; i++)
		hist[img->pixels[i]]++;
	chi_square(hist, &out->chi2, &out->chi2_p);
	out->rs = rs_estimate(img);
	out->spa = spa_estimate(img);
	return S2S_OK;
}
