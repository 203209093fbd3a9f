/* SPDX-License-Identifier: MIT */
/*
 * Concurrency of DMA and IOMMU_HWPT_GET_DIRTY_BITMAP through the ioctl front
 * end, against a shadow log.
 *
 * One thread DMA-writes random pages of an 8 MiB area (4 KiB IOPTEs) while
 * the test thread harvests the whole area through the ioctl, sometimes with
 * NO_CLEAR, and keeps each harvest's bitmap. Each write is logged as (page,
 * c0) where c0 is the number of harvests completed before the write started;
 * harvest h records n0[h], how many writes had completed (been logged) before
 * it started.
 *
 * Checked afterwards (iommu.h's guarantee, seen through iommufd): a write
 * with log index i appears in some harvest h with c0 <= h <= H(i), where H(i)
 * is the first harvest with n0 > i (the write completed before it began); a
 * final harvest after the writer stopped bounds every write. No harvest
 * reports a page that no write had started on before it completed.
 *
 * Bounded in time (UIOMMU_STRESS_SECONDS, default 1) and in log size; in
 * suite 'stress' too, so the TSan build runs it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "uapi_test.h"
#include "seeded.h"

#define PG 4096ull
#define BASE 0x40000000ull
#define NP 2048ull /* 8 MiB */
#define WORDS (NP / 64)
#define MAX_LOG 1000000u
#define MAX_HARVESTS 32768u

struct logrec {
	uint32_t page;
	uint32_t c0;
};

struct stress {
	struct env e;
	uint32_t hwpt;
	uint64_t deadline_ns;
	uint64_t wseed;
	struct logrec *log;
	_Atomic uint32_t log_len;
	_Atomic uint32_t harvests_done;
	atomic_bool writer_done;
	int writer_err;
	uint64_t (*reports)[WORDS];
	uint32_t *n0;
	uint32_t nr_harvests;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *writer(void *arg)
{
	struct stress *s = arg;
	struct uiommu_device *dma = uiommu_hwdev_dma(s->e.ddev);
	uint64_t st = s->wseed;

	for (uint32_t i = 0; i < MAX_LOG; i++) {
		uint64_t r = splitmix64(&st);
		uint32_t page = (uint32_t)(r % NP);
		uint8_t b = (uint8_t)(r >> 32);
		uint32_t c0 = atomic_load_explicit(&s->harvests_done, memory_order_acquire);
		int rc;

		if (c0 >= MAX_HARVESTS - 1 || ((i & 255) == 0 && now_ns() > s->deadline_ns))
			break;
		rc = uiommu_device_dma_write(dma, BASE + page * PG + (r >> 40) % PG, &b, 1);
		if (rc) {
			s->writer_err = rc;
			break;
		}
		s->log[i] = (struct logrec){ page, c0 };
		atomic_store_explicit(&s->log_len, i + 1, memory_order_release);
	}
	atomic_store_explicit(&s->writer_done, true, memory_order_release);
	return NULL;
}

static void harvest(struct stress *s, uint32_t flags)
{
	uint32_t h = s->nr_harvests;

	s->n0[h] = atomic_load_explicit(&s->log_len, memory_order_acquire);
	memset(s->reports[h], 0, sizeof(s->reports[h]));
	assert_int_equal(get_dirty(s->e.ctx, s->hwpt, flags, BASE, NP * PG, PG, s->reports[h]), 0);
	s->nr_harvests = h + 1;
	atomic_store_explicit(&s->harvests_done, h + 1, memory_order_release);
}

static void check_every_write_reported_in_time(struct stress *s, uint32_t nlog)
{
	uint32_t big_h = 0;

	for (uint32_t i = 0; i < nlog; i++) {
		const struct logrec *w = &s->log[i];
		bool found = false;

		while (big_h < s->nr_harvests && s->n0[big_h] <= i)
			big_h++;
		assert_true(big_h < s->nr_harvests); /* the final harvest bounds all */
		for (uint32_t h = w->c0; h <= big_h && !found; h++)
			found = bit_test(s->reports[h], w->page);
		if (!found)
			fail_msg("UIOMMU_SEED=%" PRIu64 ": write %u (page %u) started after %u "
				 "harvests, completed before harvest %u, never reported",
				 seed, i, w->page, w->c0, big_h);
	}
}

static void check_no_spurious_reports(struct stress *s, uint32_t nlog)
{
	uint32_t *first_c0 = malloc(NP * sizeof(*first_c0));

	assert_non_null(first_c0);
	for (uint64_t p = 0; p < NP; p++)
		first_c0[p] = UINT32_MAX;
	for (uint32_t i = 0; i < nlog; i++)
		if (s->log[i].c0 < first_c0[s->log[i].page])
			first_c0[s->log[i].page] = s->log[i].c0;
	for (uint32_t h = 0; h < s->nr_harvests; h++)
		for (uint64_t p = 0; p < NP; p++)
			if (bit_test(s->reports[h], p) && first_c0[p] > h)
				fail_msg("UIOMMU_SEED=%" PRIu64 ": harvest %u reports page %" PRIu64
					 " that no earlier write touched",
					 seed, h, p);
	free(first_c0);
}

static void test_every_dma_write_is_reported_by_some_harvest(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	const char *env = getenv("UIOMMU_STRESS_SECONDS");
	double secs = env ? strtod(env, NULL) : 1.0;
	pthread_t t;
	uint32_t nlog;

	(void)state;
	assert_non_null(s);
	seed_rng();
	print_message("UIOMMU_SEED=%" PRIu64 "\n", seed);
	s->wseed = rnd();
	s->log = calloc(MAX_LOG, sizeof(*s->log));
	s->reports = calloc(MAX_HARVESTS, sizeof(*s->reports));
	s->n0 = calloc(MAX_HARVESTS, sizeof(*s->n0));
	assert_true(s->log && s->reports && s->n0);
	env_init(&s->e, 4 * KiB, NP * PG);
	assert_int_equal(hwpt_alloc(s->e.ctx, s->e.ddev_id, s->e.ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &s->hwpt),
			 0);
	attach(&s->e, s->e.ddev_id, s->hwpt);
	map_fixed(s->e.ctx, s->e.ioas, s->e.host, NP * PG, BASE);
	assert_int_equal(set_dirty(s->e.ctx, s->hwpt, true), 0);

	s->deadline_ns = now_ns() + (uint64_t)(secs * 1e9);
	assert_int_equal(pthread_create(&t, NULL, writer, s), 0);
	while (!atomic_load_explicit(&s->writer_done, memory_order_acquire) &&
	       s->nr_harvests < MAX_HARVESTS - 1)
		harvest(s, rnd_below(4) ? 0 : IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s->writer_err, 0);
	harvest(s, 0); /* after the last write: bounds every write */
	nlog = atomic_load(&s->log_len);
	print_message("%u writes, %u harvests\n", nlog, s->nr_harvests);
	assert_true(nlog > 0);
	check_every_write_reported_in_time(s, nlog);
	check_no_spurious_reports(s, nlog);

	env_fini(&s->e);
	free(s->log);
	free(s->reports);
	free(s->n0);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_dma_write_is_reported_by_some_harvest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
