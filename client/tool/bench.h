/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bench.h - timing helpers for `s2s bench`.  Figures are medians of
 * repeated runs (these machines are shared and noisy).
 */
#ifndef S2S_BENCH_H
#define S2S_BENCH_H

#include <stddef.h>

/* Monotonic time in microseconds. */
double bench_now_us(void);

/*
 * Run fn(arg) `batch` times per sample, `samples` times, and return the
 * median microseconds per call.  fn returns non-zero on failure, which
 * aborts the measurement (returns a negative value).
 */
double bench_median_us(int (*fn)(void *arg), void *arg, int samples,
		       int batch);

/* Print one result row: "name  median_us" (and optional note). */
void bench_row(const char *name, double us, const char *note);

int bench_crypto(int argc, char **argv);
int bench_stego(int argc, char **argv);

#endif /* S2S_BENCH_H */
