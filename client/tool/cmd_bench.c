/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "tool.h"

double
bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
bench_median_us(int (*fn)(void *arg), void *arg, int samples, int batch)
{
	double *t = calloc((size_t)samples, sizeof(*t));
	double median;

	if (!t)
		return -1;
	for (int s = 0; s < samples; s++) {
		double start = bench_now_us();

		for (int b = 0; b < batch; b++) {
			if (fn(arg)) {
				free(t);
				return -1;
			}
		}
		t[s] = (bench_now_us() - start) / batch;
	}
	qsort(t, (size_t)samples, sizeof(*t), cmp_double);
	median = samples % 2 ? t[samples / 2]
			     : (t[samples / 2 - 1] + t[samples / 2]) / 2;
	free(t);
	return median;
}

void
bench_row(const char *name, double us, const char *note)
{
	printf("%-40s %12.3f us%s%s\n", name, us, note ? "  " : "",
	       note ? note : "");
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: s2s bench crypto   median microseconds of each primitive\n"
		"       s2s bench stego    Fx, embed/extract, PNG codec, PSNR\n");
}

int
cmd_bench(int argc, char **argv)
{
	if (argc < 2 || tool_wants_help(argc, argv)) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "crypto"))
		return bench_crypto(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stego"))
		return bench_stego(argc - 1, argv + 1);
	return tool_fail(EXIT_USAGE, "bench", "unknown benchmark '%s'", argv[1]);
}
