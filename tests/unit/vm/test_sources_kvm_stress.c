/* SPDX-License-Identifier: MIT */
/*
 * kvm-ring under concurrency: the vCPU thread runs the raw guest (rawvm.h)
 * again and again, each run writing a random list of pages, with a small ring
 * so that ring-full exits harvest on the vCPU thread through
 * uiommu_kvm_ring_full(); meanwhile the test thread collects. The same shadow
 * log as the software log's stress test: run i records c0, the number of
 * collects completed before it started; collect h records n0[h], the number
 * of runs completed before it began. Every page of run i must be in a
 * collect h with c0 <= h <= H, H the first collect with n0[H] > i (a final
 * collect after the vCPU stopped bounds every run); no collect may report a
 * page that no run had started to write before it completed. Collects are
 * 0-200 us apart, so that they fall inside runs as well as between them.
 *
 * Exits 77 without /dev/kvm. Bounded in time (UIOMMU_STRESS_SECONDS, default
 * 1). In suite 'stress' too (registered in tests/unit/dirty/meson.build), so
 * the TSan build runs it: the collector and the vCPU thread share the ring
 * locks, the pending log and the statistics.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/vm_sources.h>

#include "rawvm.h"
#include "seeded.h"

#define MEM (8ull << 20)
#define NP (MEM / RAWVM_PG)
#define WORDS (NP / 64)
#define MAX_RUNS 20000u
#define MAX_PAGES 2000000u
#define MAX_RUN_PAGES 300u
#define MAX_COLLECTS 20000u

struct stress {
	struct rawvm vm;
	struct uiommu_dirty_source *src;
	uint64_t deadline_ns;
	uint64_t vseed;
	uint32_t *pages;     /* every run's pages, one after the other */
	uint32_t *run_first; /* run i: pages[run_first[i]] .. pages[run_first[i + 1] - 1] */
	uint32_t *run_c0;
	_Atomic uint32_t runs_done;
	_Atomic uint32_t collects_done;
	atomic_bool vcpu_done;
	int vcpu_err;
	uint64_t (*reports)[WORDS];
	uint32_t *n0;
	uint32_t nr_collects;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One run: a random list of distinct pages, written by the guest. */
static int one_run(struct stress *s, uint32_t i, uint64_t *st)
{
	uint64_t span = NP - s->vm.first_data_page, list[MAX_RUN_PAGES], seen[WORDS] = { 0 };
	uint32_t first = s->run_first[i], n = 1 + (uint32_t)(splitmix64(st) % MAX_RUN_PAGES);

	for (uint32_t k = 0; k < n; k++) {
		uint64_t p = s->vm.first_data_page + splitmix64(st) % span;

		if (uiommu_bitmap_test(seen, p)) {
			n = k; /* a short run now and then */
			break;
		}
		uiommu_bitmap_set(seen, p);
		list[k] = p;
		s->pages[first + k] = (uint32_t)p;
	}
	s->run_c0[i] = atomic_load_explicit(&s->collects_done, memory_order_acquire);
	s->run_first[i + 1] = first + n;
	return rawvm_write_pages(&s->vm, list, n);
}

static void *vcpu_thread(void *arg)
{
	struct stress *s = arg;
	uint64_t st = s->vseed;

	for (uint32_t i = 0; i < MAX_RUNS - 1; i++) {
		if (s->run_first[i] + MAX_RUN_PAGES > MAX_PAGES || now_ns() > s->deadline_ns ||
		    atomic_load_explicit(&s->collects_done, memory_order_acquire) >=
			    MAX_COLLECTS - 1)
			break;
		s->vcpu_err = one_run(s, i, &st);
		if (s->vcpu_err)
			break;
		atomic_store_explicit(&s->runs_done, i + 1, memory_order_release);
	}
	atomic_store_explicit(&s->vcpu_done, true, memory_order_release);
	return NULL;
}

static void collect(struct stress *s)
{
	uint32_t h = s->nr_collects;

	s->n0[h] = atomic_load_explicit(&s->runs_done, memory_order_acquire);
	assert_int_equal(uiommu_dirty_source_collect(s->src, s->reports[h], NULL), 0);
	s->nr_collects = h + 1;
	atomic_store_explicit(&s->collects_done, h + 1, memory_order_release);
}

static void check_every_run_reported_in_time(struct stress *s, uint32_t runs)
{
	uint32_t big_h = 0;

	for (uint32_t i = 0; i < runs; i++) {
		while (big_h < s->nr_collects && s->n0[big_h] <= i)
			big_h++;
		assert_true(big_h < s->nr_collects);
		for (uint32_t k = s->run_first[i]; k < s->run_first[i + 1]; k++) {
			bool found = false;

			for (uint32_t h = s->run_c0[i]; h <= big_h && !found; h++)
				found = uiommu_bitmap_test(s->reports[h], s->pages[k]);
			if (!found)
				fail_msg("UIOMMU_SEED=%" PRIu64 ": run %u page %u (after %u collects,"
					 " done before collect %u) never reported",
					 seed, i, s->pages[k], s->run_c0[i], big_h);
		}
	}
}

static void check_no_spurious_reports(struct stress *s, uint32_t runs)
{
	uint32_t *first_c0 = malloc(NP * sizeof(*first_c0));

	assert_non_null(first_c0);
	for (uint64_t p = 0; p < NP; p++)
		first_c0[p] = UINT32_MAX;
	for (uint32_t i = 0; i < runs; i++)
		for (uint32_t k = s->run_first[i]; k < s->run_first[i + 1]; k++)
			if (s->run_c0[i] < first_c0[s->pages[k]])
				first_c0[s->pages[k]] = s->run_c0[i];
	for (uint32_t h = 0; h < s->nr_collects; h++)
		for (uint64_t p = 0; p < NP; p++)
			if (uiommu_bitmap_test(s->reports[h], p) && first_c0[p] > h)
				fail_msg("UIOMMU_SEED=%" PRIu64 ": collect %u reports page %" PRIu64
					 " that no earlier run wrote",
					 seed, h, p);
	free(first_c0);
}

static void stress_init(struct stress *s)
{
	struct rawvm_cfg cfg = { .bytes = MEM, .table_entries = MAX_RUN_PAGES, .ring_entries = 256 };
	const char *env = getenv("UIOMMU_STRESS_SECONDS");
	double secs = env ? strtod(env, NULL) : 1.0;

	seed_rng();
	print_message("UIOMMU_SEED=%" PRIu64 "\n", seed);
	s->vseed = rnd();
	assert_int_equal(rawvm_create(&s->vm, &cfg), 0);
	assert_int_equal(uiommu_kvm_ring_source_create(&s->vm.info, &s->vm.link, &s->src), 0);
	s->pages = calloc(MAX_PAGES, sizeof(uint32_t));
	s->run_first = calloc(MAX_RUNS + 1, sizeof(uint32_t));
	s->run_c0 = calloc(MAX_RUNS, sizeof(uint32_t));
	s->reports = calloc(MAX_COLLECTS, sizeof(*s->reports));
	s->n0 = calloc(MAX_COLLECTS, sizeof(uint32_t));
	assert_true(s->pages && s->run_first && s->run_c0 && s->reports && s->n0);
	s->deadline_ns = now_ns() + (uint64_t)(secs * 1e9);
}

static void stress_fini(struct stress *s)
{
	uiommu_dirty_source_destroy(s->src);
	rawvm_destroy(&s->vm);
	free(s->pages);
	free(s->run_first);
	free(s->run_c0);
	free(s->reports);
	free(s->n0);
}

static void test_ring_harvests_of_collector_and_vcpu_lose_nothing(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	struct uiommu_kvm_source_stats st;
	uint32_t runs;
	pthread_t t;

	(void)state;
	assert_non_null(s);
	stress_init(s);
	assert_int_equal(uiommu_dirty_source_start(s->src), 0);
	assert_int_equal(pthread_create(&t, NULL, vcpu_thread, s), 0);
	while (!atomic_load_explicit(&s->vcpu_done, memory_order_acquire) &&
	       s->nr_collects < MAX_COLLECTS - 1) {
		/* 0-200 us apart: collects land anywhere in a run (~1 ms) or between. */
		struct timespec pause = { 0, (long)rnd_below(200000) };

		collect(s);
		nanosleep(&pause, NULL);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s->vcpu_err, 0);
	collect(s); /* after the last run: bounds every run */
	runs = atomic_load(&s->runs_done);
	assert_int_equal(uiommu_kvm_source_get_stats(s->src, &st), 0);
	print_message("%u runs (%u pages), %u collects, %" PRIu64 " ring-full harvests, %" PRIu64
		      " overflows\n",
		      runs, s->run_first[runs], s->nr_collects, st.ring_full, st.overflows);
	assert_true(runs > 0);
	assert_int_equal(st.overflows, 0);
	assert_int_equal(st.bad_entries, 0);
	check_every_run_reported_in_time(s, runs);
	check_no_spurious_reports(s, runs);
	stress_fini(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_harvests_of_collector_and_vcpu_lose_nothing),
	};

	if (!uiommu_kvm_available()) {
		printf("no usable /dev/kvm: skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
