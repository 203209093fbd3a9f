/* SPDX-License-Identifier: MIT */
/*
 * Shared benchmark harness (see bench.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

void bench_parse(int argc, char **argv, struct bench_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			opts->json = true;
		else if (!strcmp(argv[i], "--quick"))
			opts->quick = true;
	}
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_report(const struct bench_opts *opts, const char *bench, const char *metric,
		  double value, const char *unit, const char *baseline_name, double baseline,
		  const char *goal)
{
	double ratio = baseline != 0 ? value / baseline : 0;

	if (opts->json) {
		printf("{\"bench\":\"%s\",\"metric\":\"%s\",\"value\":%.4g,\"unit\":\"%s\","
		       "\"baseline\":%.4g,\"baseline_name\":\"%s\",\"ratio\":%.4g,"
		       "\"goal\":\"%s\"}\n",
		       bench, metric, value, unit, baseline, baseline_name, ratio, goal);
	} else {
		printf("%-10s %-34s %10.3f %-8s | %-18s %10.3f %-8s ratio %6.2f | goal %s\n",
		       bench, metric, value, unit, baseline_name, baseline, unit, ratio, goal);
	}
	fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

uint64_t bench_median_u64(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}
