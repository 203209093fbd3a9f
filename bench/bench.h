/* SPDX-License-Identifier: MIT */
/*
 * Benchmark harness: timing, and one result line per figure with the baseline
 * measured in the same run and their ratio. With --json each result is one
 * JSON object per line:
 * {"bench":..,"metric":..,"value":..,"unit":..,"baseline":..,"ratio":..,"goal":..}
 * --quick shrinks sizes so that the test suite can smoke-run every benchmark.
 */
#ifndef UIOMMU_BENCH_H
#define UIOMMU_BENCH_H

#include <stdbool.h>
#include <stdint.h>

struct bench_opts {
	bool json;
	bool quick;
};

void bench_parse(int argc, char **argv, struct bench_opts *opts);
uint64_t bench_now_ns(void);

/*
 * Prints one figure. @baseline is the same metric for the baseline named
 * @baseline_name; ratio = value / baseline. @goal is free text ("<= 3 us/GiB").
 */
void bench_report(const struct bench_opts *opts, const char *bench, const char *metric,
		  double value, const char *unit, const char *baseline_name, double baseline,
		  const char *goal);

/* Medians of @n samples; the arrays are sorted in place. */
double bench_median(double *v, int n);
uint64_t bench_median_u64(uint64_t *v, int n);

/* Keeps the compiler from discarding a computed value. */
static inline void bench_keep(uint64_t v)
{
	__asm__ volatile("" : : "r"(v) : "memory");
}

static inline void bench_clobber(void)
{
	__asm__ volatile("" : : : "memory");
}

#endif
