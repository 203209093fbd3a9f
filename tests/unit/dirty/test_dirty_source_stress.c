/* SPDX-License-Identifier: MIT */
/*
 * The software dirty log under concurrency, against a shadow log.
 *
 * Three marker threads mark random pages and short ranges of a log while the
 * test thread collects, keeping each collect's bitmap. Each marker logs its
 * marks as (first, last, c0), c0 being the number of collects completed
 * before the mark started, and publishes its log length after each mark;
 * collect h records n0[h][t], how many marks thread t had completed before
 * it began. Pages are few (two summary words and a bit), so markers collide
 * on words and on summary words all the time.
 *
 * Checked afterwards (dirty_source.h's guarantee): every page of mark i of
 * thread t is in some collect h with c0 <= h <= H, where H is the first
 * collect with n0[H][t] > i (the mark completed before it began); a final
 * collect after the markers stopped bounds every mark. No collect reports a
 * page that no mark had started on before it completed (no spurious bit).
 *
 * A second case runs the same markers against a round (collect, take, and a
 * restore of every other take, as after a failed send): the union of what the
 * takes handed out and did not give back must be exactly the marked pages.
 *
 * Bounded in time (UIOMMU_STRESS_SECONDS, default 1); in suite 'stress' too,
 * so the TSan build runs it.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>

#include "seeded.h"

#define PG 4096ull
#define NP (2 * 4096ull + 100)
#define WORDS ((NP + 63) / 64)
#define NT 3
#define MAX_LOG 400000u
#define MAX_COLLECTS 8192u

struct mark {
	uint32_t first, last;
	uint32_t c0;
};

struct marker {
	struct stress *s;
	uint64_t seed;
	struct mark *log;
	_Atomic uint32_t len;
};

struct stress {
	struct uiommu_dirty_source *src;
	struct uiommu_round *round; /* the second case only */
	uint64_t deadline_ns;
	struct marker m[NT];
	_Atomic uint32_t collects_done;
	_Atomic int markers_done;
	uint64_t (*reports)[WORDS];
	uint32_t (*n0)[NT];
	uint32_t nr_collects;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *marker_main(void *arg)
{
	struct marker *mk = arg;
	struct stress *s = mk->s;
	uint64_t st = mk->seed;

	for (uint32_t i = 0; i < MAX_LOG; i++) {
		uint64_t r = splitmix64(&st);
		uint32_t first = (uint32_t)(r % NP);
		uint32_t n = (r >> 32) % 8 ? 1 : 1 + (uint32_t)((r >> 40) % 130);
		uint32_t last = first + n - 1 < NP ? first + n - 1 : (uint32_t)NP - 1;
		uint32_t c0 = atomic_load_explicit(&s->collects_done, memory_order_acquire);

		if (c0 >= MAX_COLLECTS - 1 || ((i & 255) == 0 && now_ns() > s->deadline_ns))
			break;
		/* An offset into the first page, and the length that ends on the last. */
		uiommu_dirty_log_mark(s->src, (uint64_t)first * PG + (r >> 52),
				      (uint64_t)n * PG - (r >> 52));
		mk->log[i] = (struct mark){first, last, c0};
		atomic_store_explicit(&mk->len, i + 1, memory_order_release);
	}
	atomic_fetch_add_explicit(&s->markers_done, 1, memory_order_release);
	return NULL;
}

static void stress_init(struct stress *s)
{
	const char *env = getenv("UIOMMU_STRESS_SECONDS");
	double secs = env ? strtod(env, NULL) : 1.0;

	memset(s, 0, sizeof(*s));
	seed_rng();
	print_message("UIOMMU_SEED=%" PRIu64 "\n", seed);
	assert_int_equal(uiommu_dirty_log_source_create("soft", NP, &s->src), 0);
	assert_int_equal(uiommu_dirty_source_start(s->src), 0);
	s->reports = calloc(MAX_COLLECTS, sizeof(*s->reports));
	s->n0 = calloc(MAX_COLLECTS, sizeof(*s->n0));
	assert_true(s->reports && s->n0);
	for (int t = 0; t < NT; t++) {
		s->m[t].s = s;
		s->m[t].seed = rnd();
		s->m[t].log = calloc(MAX_LOG, sizeof(struct mark));
		assert_non_null(s->m[t].log);
	}
	s->deadline_ns = now_ns() + (uint64_t)(secs * 1e9);
}

static void stress_fini(struct stress *s)
{
	uiommu_dirty_source_destroy(s->src);
	uiommu_round_destroy(s->round);
	for (int t = 0; t < NT; t++)
		free(s->m[t].log);
	free(s->reports);
	free(s->n0);
}

static void run_markers(struct stress *s, void (*collect_fn)(struct stress *s))
{
	pthread_t th[NT];

	for (int t = 0; t < NT; t++)
		assert_int_equal(pthread_create(&th[t], NULL, marker_main, &s->m[t]), 0);
	while (atomic_load_explicit(&s->markers_done, memory_order_acquire) < NT &&
	       s->nr_collects < MAX_COLLECTS - 1) {
		/* Mostly back to back, sometimes up to 200 us apart. */
		struct timespec pause = { 0, rnd_below(4) ? 0 : (long)rnd_below(200000) };

		collect_fn(s);
		if (pause.tv_nsec)
			nanosleep(&pause, NULL);
	}
	for (int t = 0; t < NT; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	collect_fn(s); /* after the last mark: bounds every mark */
}

static void collect_once(struct stress *s)
{
	uint32_t h = s->nr_collects;

	for (int t = 0; t < NT; t++)
		s->n0[h][t] = atomic_load_explicit(&s->m[t].len, memory_order_acquire);
	assert_int_equal(uiommu_dirty_source_collect(s->src, s->reports[h], NULL), 0);
	s->nr_collects = h + 1;
	atomic_store_explicit(&s->collects_done, h + 1, memory_order_release);
}

static bool reported_between(struct stress *s, uint32_t page, uint32_t h0, uint32_t h1)
{
	for (uint32_t h = h0; h <= h1; h++)
		if (uiommu_bitmap_test(s->reports[h], page))
			return true;
	return false;
}

static void check_every_mark_reported_in_time(struct stress *s, int t)
{
	uint32_t len = atomic_load(&s->m[t].len), big_h = 0;

	for (uint32_t i = 0; i < len; i++) {
		const struct mark *mk = &s->m[t].log[i];

		while (big_h < s->nr_collects && s->n0[big_h][t] <= i)
			big_h++;
		assert_true(big_h < s->nr_collects);
		for (uint32_t p = mk->first; p <= mk->last; p++)
			if (!reported_between(s, p, mk->c0, big_h))
				fail_msg("UIOMMU_SEED=%" PRIu64 ": thread %d mark %u (page %u) "
					 "started after %u collects, done before collect %u, "
					 "never reported",
					 seed, t, i, p, mk->c0, big_h);
	}
}

static void check_no_spurious_reports(struct stress *s)
{
	uint32_t *first_c0 = malloc(NP * sizeof(*first_c0));

	assert_non_null(first_c0);
	for (uint64_t p = 0; p < NP; p++)
		first_c0[p] = UINT32_MAX;
	for (int t = 0; t < NT; t++)
		for (uint32_t i = 0; i < atomic_load(&s->m[t].len); i++)
			for (uint32_t p = s->m[t].log[i].first; p <= s->m[t].log[i].last; p++)
				if (s->m[t].log[i].c0 < first_c0[p])
					first_c0[p] = s->m[t].log[i].c0;
	for (uint32_t h = 0; h < s->nr_collects; h++)
		for (uint64_t p = 0; p < NP; p++)
			if (uiommu_bitmap_test(s->reports[h], p) && first_c0[p] > h)
				fail_msg("UIOMMU_SEED=%" PRIu64 ": collect %u reports page %" PRIu64
					 " that no earlier mark touched",
					 seed, h, p);
	free(first_c0);
}

static void test_concurrent_marks_are_reported_by_the_right_collect(void **state)
{
	struct stress *s = malloc(sizeof(*s));
	uint64_t total = 0;

	(void)state;
	assert_non_null(s);
	stress_init(s);
	run_markers(s, collect_once);
	for (int t = 0; t < NT; t++) {
		total += atomic_load(&s->m[t].len);
		check_every_mark_reported_in_time(s, t);
	}
	print_message("%" PRIu64 " marks, %u collects\n", total, s->nr_collects);
	assert_true(total > 0);
	check_no_spurious_reports(s);
	stress_fini(s);
	free(s);
}

/* Round variant: reports[0] accumulates what takes handed out and kept. */
static void round_collect_take(struct stress *s)
{
	uint32_t h = s->nr_collects;
	uint64_t taken[WORDS];

	assert_int_equal(uiommu_round_collect(s->round), 0);
	uiommu_round_take(s->round, taken);
	if (h % 2)
		uiommu_round_restore(s->round, taken);
	else
		for (uint64_t w = 0; w < WORDS; w++)
			s->reports[0][w] |= taken[w];
	s->nr_collects = h + 1;
	atomic_store_explicit(&s->collects_done, h + 1, memory_order_release);
}

static void test_concurrent_marks_through_a_round_with_restores_lose_nothing(void **state)
{
	struct stress *s = malloc(sizeof(*s));
	uint64_t *want = calloc(WORDS, sizeof(uint64_t));

	(void)state;
	assert_true(s && want);
	stress_init(s);
	assert_int_equal(uiommu_round_create(NP, &s->round), 0);
	assert_int_equal(uiommu_round_add_source(s->round, s->src), 0);
	run_markers(s, round_collect_take);
	if (s->nr_collects % 2 == 0)
		round_collect_take(s); /* the last one must be kept, not restored */
	for (int t = 0; t < NT; t++)
		for (uint32_t i = 0; i < atomic_load(&s->m[t].len); i++)
			uiommu_bitmap_set_range(want, s->m[t].log[i].first, s->m[t].log[i].last);
	for (uint64_t p = 0; p < NP; p++)
		if (uiommu_bitmap_test(want, p) != uiommu_bitmap_test(s->reports[0], p))
			fail_msg("UIOMMU_SEED=%" PRIu64 ": page %" PRIu64
				 ": marked %d, handed out %d",
				 seed, p, uiommu_bitmap_test(want, p),
				 uiommu_bitmap_test(s->reports[0], p));
	print_message("%u collect+take, half restored\n", s->nr_collects);
	free(want);
	stress_fini(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_marks_are_reported_by_the_right_collect),
	    cmocka_unit_test(test_concurrent_marks_through_a_round_with_restores_lose_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
