/* SPDX-License-Identifier: MIT */
/*
 * The software dirty log source and rounds, single-threaded, against a model
 * that is a bool per page: every mark sets the model's pages; every collect
 * must report exactly the model's pages since the previous collect. Sizes
 * that are not multiples of 64 (or of 4096) check the tail words. The
 * concurrent cases are in test_dirty_source_stress.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>

#include "core/core_internal.h"
#include "seeded.h"

#define PG 4096ull
#define NP (3 * 4096ull + 45) /* three summary words and a partial one */
#define WORDS ((NP + 63) / 64)

struct model {
	uint64_t npages;
	bool *dirty;
};

static void model_init(struct model *m, uint64_t npages)
{
	m->npages = npages;
	m->dirty = calloc(npages, sizeof(bool));
	assert_non_null(m->dirty);
}

static void model_mark(struct model *m, uint64_t gpa, uint64_t len)
{
	for (uint64_t p = gpa / PG; len && p < m->npages && p <= (gpa + len - 1) / PG; p++)
		m->dirty[p] = true;
}

/* The collected bitmap equals the model; the model is then cleared. */
static void model_check_and_clear(struct model *m, const uint64_t *bitmap, uint64_t reported)
{
	uint64_t n = 0;

	for (uint64_t p = 0; p < m->npages; p++) {
		if (uiommu_bitmap_test(bitmap, p) != m->dirty[p])
			fail_msg("UIOMMU_SEED=%" PRIu64 ": page %" PRIu64
				 ": reported %d, written %d",
				 seed, p, uiommu_bitmap_test(bitmap, p), m->dirty[p]);
		n += m->dirty[p];
		m->dirty[p] = false;
	}
	assert_int_equal(reported, n);
}

static struct uiommu_dirty_source *log_new(const char *name, uint64_t npages)
{
	struct uiommu_dirty_source *src = NULL;

	assert_int_equal(uiommu_dirty_log_source_create(name, npages, &src), 0);
	assert_non_null(src);
	assert_string_equal(src->name, name);
	assert_true(src->npages == npages);
	return src;
}

static uint64_t collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t words)
{
	uint64_t pages = 0;

	memset(bitmap, 0, words * 8);
	assert_int_equal(uiommu_dirty_source_collect(src, bitmap, &pages), 0);
	return pages;
}

static void test_log_source_reports_exactly_the_marked_pages(void **state)
{
	struct uiommu_dirty_source *src = log_new("soft", NP);
	uint64_t bitmap[WORDS];
	struct model m;

	(void)state;
	model_init(&m, NP);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	for (int round = 0; round < 40; round++) {
		uint64_t nmarks = rnd_below(round % 4 ? 50 : 2000);

		for (uint64_t i = 0; i < nmarks; i++, op_index++) {
			uint64_t gpa = rnd_below(NP * PG);
			uint64_t len = rnd_below(4) ? 1 + rnd_below(PG) : 1 + rnd_below(200 * PG);

			uiommu_dirty_log_mark(src, gpa, len);
			model_mark(&m, gpa, len);
		}
		model_check_and_clear(&m, bitmap, collect(src, bitmap, WORDS));
	}
	uiommu_dirty_source_destroy(src);
	free(m.dirty);
}

static void test_log_source_collect_forgets_what_it_reported(void **state)
{
	struct uiommu_dirty_source *src = log_new("vmm", NP);
	uint64_t bitmap[WORDS];

	(void)state;
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	uiommu_dirty_log_mark(src, 5 * PG + 100, 2 * PG); /* pages 5, 6, 7 */
	uiommu_dirty_log_mark(src, (NP - 1) * PG, PG);
	assert_int_equal(collect(src, bitmap, WORDS), 4);
	assert_true(uiommu_bitmap_test(bitmap, 5) && uiommu_bitmap_test(bitmap, 7));
	assert_true(uiommu_bitmap_test(bitmap, NP - 1));
	assert_int_equal(collect(src, bitmap, WORDS), 0);
	assert_true(uiommu_bitmap_find_next_set(bitmap, NP, 0) == UIOMMU_BITMAP_NOT_FOUND);
	uiommu_dirty_source_destroy(src);
}

static void test_log_source_collect_ors_into_the_bitmap(void **state)
{
	struct uiommu_dirty_source *src = log_new("vmm", 128);
	uint64_t bitmap[2] = {1, 0}, pages = 10;

	(void)state;
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	uiommu_dirty_log_mark(src, 64 * PG, 1);
	assert_int_equal(uiommu_dirty_source_collect(src, bitmap, &pages), 0);
	assert_true(bitmap[0] == 1 && bitmap[1] == 1);
	assert_int_equal(pages, 11); /* added to, not set */
	assert_int_equal(uiommu_dirty_source_collect(src, bitmap, NULL), 0);
	uiommu_dirty_source_destroy(src);
}

static void test_log_source_drops_marks_outside_a_session(void **state)
{
	struct uiommu_dirty_source *src = log_new("soft", NP);
	uint64_t bitmap[WORDS];

	(void)state;
	uiommu_dirty_log_mark(src, 0, PG); /* before start */
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	assert_int_equal(collect(src, bitmap, WORDS), 0);
	uiommu_dirty_log_mark(src, PG, PG);
	uiommu_dirty_source_stop(src); /* page 1 is dropped with the session */
	uiommu_dirty_log_mark(src, 2 * PG, PG);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	uiommu_dirty_log_mark(src, 3 * PG, PG);
	assert_int_equal(collect(src, bitmap, WORDS), 1);
	assert_true(uiommu_bitmap_test(bitmap, 3));
	uiommu_dirty_source_destroy(src);
}

static void test_log_source_clips_marks_past_its_pages(void **state)
{
	struct uiommu_dirty_source *src = log_new("vmm", 100);
	uint64_t bitmap[2] = {0, 0}, pages = 0;

	(void)state;
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	uiommu_dirty_log_mark(src, 98 * PG, 10 * PG);	 /* 98, 99 and beyond */
	uiommu_dirty_log_mark(src, 200 * PG, PG);	 /* wholly outside */
	uiommu_dirty_log_mark(src, UINT64_MAX - 5, 100); /* wraps */
	uiommu_dirty_log_mark(src, 7 * PG, 0);		 /* empty */
	assert_int_equal(uiommu_dirty_source_collect(src, bitmap, &pages), 0);
	assert_int_equal(pages, 2);
	assert_true(bitmap[0] == 0 && bitmap[1] == (3ull << 34));
	uiommu_dirty_source_destroy(src);
}

static void test_source_wrappers_check_the_state(void **state)
{
	struct uiommu_dirty_source *src = log_new("vmm", 64);
	uint64_t bitmap[1];

	(void)state;
	assert_int_equal(uiommu_dirty_source_collect(src, bitmap, NULL), -EINVAL);
	assert_int_equal(uiommu_dirty_source_start(NULL), -EINVAL);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	assert_true(src->started);
	assert_int_equal(uiommu_dirty_source_start(src), -EBUSY);
	assert_int_equal(uiommu_dirty_source_collect(src, NULL, NULL), -EINVAL);
	assert_int_equal(uiommu_dirty_source_collect(NULL, bitmap, NULL), -EINVAL);
	uiommu_dirty_source_stop(src);
	assert_false(src->started);
	uiommu_dirty_source_stop(src);
	uiommu_dirty_source_stop(NULL);
	uiommu_dirty_source_destroy(NULL);
	uiommu_dirty_source_destroy(src);
}

static void test_log_source_create_rejects_bad_arguments(void **state)
{
	struct uiommu_dirty_source *src = NULL;

	(void)state;
	assert_int_equal(uiommu_dirty_log_source_create(NULL, 64, &src), -EINVAL);
	assert_int_equal(uiommu_dirty_log_source_create("", 64, &src), -EINVAL);
	assert_int_equal(uiommu_dirty_log_source_create("vmm", 0, &src), -EINVAL);
	assert_int_equal(
	    uiommu_dirty_log_source_create("0123456789abcdef0123456789abcdef", 64, &src), -EINVAL);
	assert_int_equal(uiommu_dirty_log_source_create("vmm", 64, NULL), -EINVAL);
	assert_null(src);
}

static void test_log_source_create_under_allocation_failure_leaks_nothing(void **state)
{
	int rc = -ENOMEM;

	(void)state;
	for (unsigned long n = 1; rc; n++) {
		struct uiommu_dirty_source *src = NULL;

		uiommu__fail_nth_set(n);
		rc = uiommu_dirty_log_source_create("vmm", NP, &src);
		uiommu__fail_nth_set(0);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_null(src);
			assert_true(n < 10);
		}
		uiommu_dirty_source_destroy(src);
	}
}

/* ---- rounds ---- */

static struct uiommu_round *round_new(uint64_t npages)
{
	struct uiommu_round *round = NULL;

	assert_int_equal(uiommu_round_create(npages, &round), 0);
	assert_non_null(round);
	return round;
}

static void test_round_collect_is_idempotent(void **state)
{
	struct uiommu_round *round = round_new(NP);
	struct uiommu_dirty_source *src = log_new("vmm", NP);
	struct uiommu_round_stats st;
	uint64_t bitmap[WORDS];

	(void)state;
	assert_int_equal(uiommu_round_add_source(round, src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	uiommu_dirty_log_mark(src, 0, 3 * PG);
	assert_int_equal(uiommu_round_collect(round), 0);
	assert_int_equal(uiommu_round_collect(round), 0);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.pending, 3);
	assert_int_equal(st.reported[0], 0); /* the last collect found nothing new */
	assert_int_equal(st.collects, 2);
	uiommu_dirty_log_mark(src, 2 * PG, 2 * PG); /* 2 again, and 3 */
	assert_int_equal(uiommu_round_collect(round), 0);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.pending, 4);
	assert_int_equal(st.reported[0], 2);
	assert_int_equal(uiommu_round_take(round, bitmap), 4);
	assert_true(bitmap[0] == 0xf);
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(src);
}

static void test_round_take_and_restore_lose_nothing(void **state)
{
	struct uiommu_round *round = round_new(NP);
	struct uiommu_dirty_source *src = log_new("vmm", NP);
	uint64_t taken[WORDS], again[WORDS];
	struct model m;

	(void)state;
	model_init(&m, NP);
	assert_int_equal(uiommu_round_add_source(round, src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	for (int i = 0; i < 20; i++, op_index++) {
		uint64_t gpa = rnd_below(NP * PG), len = 1 + rnd_below(100 * PG);

		uiommu_dirty_log_mark(src, gpa, len);
		model_mark(&m, gpa, len);
		assert_int_equal(uiommu_round_collect(round), 0);
		uiommu_round_take(round, taken);
		/* The send failed: give back; meanwhile more writes arrive. */
		uiommu_round_restore(round, taken);
		gpa = rnd_below(NP * PG);
		uiommu_dirty_log_mark(src, gpa, PG);
		model_mark(&m, gpa, PG);
		if (i % 5 == 4) {
			assert_int_equal(uiommu_round_collect(round), 0);
			model_check_and_clear(&m, again, uiommu_round_take(round, again));
		}
	}
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(src);
	free(m.dirty);
}

static void test_round_counts_pages_per_source(void **state)
{
	struct uiommu_round *round = round_new(NP);
	struct uiommu_dirty_source *a = log_new("soft", NP), *b = log_new("vmm", NP / 2);
	struct uiommu_round_stats st;
	uint64_t bitmap[WORDS];

	(void)state;
	assert_int_equal(uiommu_round_add_source(round, a), 0);
	assert_int_equal(uiommu_round_add_source(round, b), 0);
	assert_int_equal(uiommu_dirty_source_start(a), 0);
	assert_int_equal(uiommu_dirty_source_start(b), 0);
	uiommu_dirty_log_mark(a, PG, 2 * PG);	  /* 1, 2 */
	uiommu_dirty_log_mark(b, 2 * PG, 3 * PG); /* 2, 3, 4 */
	assert_int_equal(uiommu_round_collect(round), 0);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.nr_sources, 2);
	assert_string_equal(st.name[0], "soft");
	assert_string_equal(st.name[1], "vmm");
	assert_int_equal(st.reported[0], 2);
	assert_int_equal(st.reported[1], 3); /* page 2 counts for both */
	assert_int_equal(st.error[0], 0);
	assert_int_equal(st.pending, 4);
	assert_int_equal(uiommu_round_take(round, bitmap), 4);
	assert_true(bitmap[0] == 0x1e);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.pending, 0);
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(a);
	uiommu_dirty_source_destroy(b);
}

static void test_round_skips_sources_that_are_not_started(void **state)
{
	struct uiommu_round *round = round_new(64);
	struct uiommu_dirty_source *src = log_new("vmm", 64);
	struct uiommu_round_stats st;

	(void)state;
	assert_int_equal(uiommu_round_add_source(round, src), 0);
	assert_int_equal(uiommu_round_collect(round), 0);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.reported[0], 0);
	assert_int_equal(st.collect_ns[0], 0);
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(src);
}

static void test_round_add_source_refuses_duplicates_oversize_and_a_ninth(void **state)
{
	struct uiommu_round *round = round_new(64);
	struct uiommu_dirty_source *src[UIOMMU_ROUND_MAX_SOURCES + 1], *big = log_new("big", 65);

	(void)state;
	for (unsigned int i = 0; i <= UIOMMU_ROUND_MAX_SOURCES; i++)
		src[i] = log_new("vmm", 64);
	assert_int_equal(uiommu_round_add_source(round, big), -EINVAL);
	assert_int_equal(uiommu_round_add_source(round, NULL), -EINVAL);
	assert_int_equal(uiommu_round_add_source(NULL, src[0]), -EINVAL);
	for (unsigned int i = 0; i < UIOMMU_ROUND_MAX_SOURCES; i++)
		assert_int_equal(uiommu_round_add_source(round, src[i]), 0);
	assert_int_equal(uiommu_round_add_source(round, src[0]), -EINVAL);
	assert_int_equal(uiommu_round_add_source(round, src[UIOMMU_ROUND_MAX_SOURCES]), -ENOSPC);
	uiommu_round_destroy(round);
	for (unsigned int i = 0; i <= UIOMMU_ROUND_MAX_SOURCES; i++)
		uiommu_dirty_source_destroy(src[i]);
	uiommu_dirty_source_destroy(big);
}

/* A source that reports page 7 and then fails, as the contract allows. */
static int failing_start(struct uiommu_dirty_source *src)
{
	(void)src;
	return 0;
}

static int failing_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	(void)src;
	uiommu_bitmap_set(bitmap, 7);
	*pages += 1;
	return -EIO;
}

static void failing_stop(struct uiommu_dirty_source *src)
{
	(void)src;
}

static void failing_destroy(struct uiommu_dirty_source *src)
{
	(void)src;
}

static const struct uiommu_dirty_source_ops failing_ops = {failing_start, failing_collect,
							   failing_stop, failing_destroy};

static void test_round_collect_error_keeps_bits_and_collects_the_others(void **state)
{
	struct uiommu_dirty_source bad = {.ops = &failing_ops, .name = "bad", .npages = 64};
	struct uiommu_round *round = round_new(64);
	struct uiommu_dirty_source *good = log_new("vmm", 64);
	struct uiommu_round_stats st;
	uint64_t bitmap[1];

	(void)state;
	assert_int_equal(uiommu_round_add_source(round, &bad), 0);
	assert_int_equal(uiommu_round_add_source(round, good), 0);
	assert_int_equal(uiommu_dirty_source_start(&bad), 0);
	assert_int_equal(uiommu_dirty_source_start(good), 0);
	uiommu_dirty_log_mark(good, 0, 1);
	assert_int_equal(uiommu_round_collect(round), -EIO);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.error[0], -EIO);
	assert_int_equal(st.error[1], 0);
	assert_int_equal(st.reported[0], 1);
	assert_int_equal(uiommu_round_take(round, bitmap), 2);
	assert_true(bitmap[0] == 0x81);
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(good);
	uiommu_dirty_source_stop(&bad);
}

static void test_round_restore_ignores_bits_past_its_pages(void **state)
{
	struct uiommu_round *round = round_new(70);
	uint64_t bits[2] = {1, ~0ull}, out[2];

	(void)state;
	uiommu_round_restore(round, bits);
	assert_int_equal(uiommu_round_take(round, out), 7);
	assert_true(out[0] == 1 && out[1] == 0x3f);
	assert_int_equal(uiommu_round_create(0, &round), -EINVAL);
	assert_int_equal(uiommu_round_take(NULL, out), 0);
	uiommu_round_restore(NULL, bits);
	uiommu_round_destroy(round);
	uiommu_round_destroy(NULL);
}

static void test_round_create_under_allocation_failure_leaks_nothing(void **state)
{
	int rc = -ENOMEM;

	(void)state;
	for (unsigned long n = 1; rc; n++) {
		struct uiommu_round *round = NULL;

		uiommu__fail_nth_set(n);
		rc = uiommu_round_create(NP, &round);
		uiommu__fail_nth_set(0);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_true(n < 10);
		}
		uiommu_round_destroy(round);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_log_source_reports_exactly_the_marked_pages),
	    cmocka_unit_test(test_log_source_collect_forgets_what_it_reported),
	    cmocka_unit_test(test_log_source_collect_ors_into_the_bitmap),
	    cmocka_unit_test(test_log_source_drops_marks_outside_a_session),
	    cmocka_unit_test(test_log_source_clips_marks_past_its_pages),
	    cmocka_unit_test(test_source_wrappers_check_the_state),
	    cmocka_unit_test(test_log_source_create_rejects_bad_arguments),
	    cmocka_unit_test(test_log_source_create_under_allocation_failure_leaks_nothing),
	    cmocka_unit_test(test_round_collect_is_idempotent),
	    cmocka_unit_test(test_round_take_and_restore_lose_nothing),
	    cmocka_unit_test(test_round_counts_pages_per_source),
	    cmocka_unit_test(test_round_skips_sources_that_are_not_started),
	    cmocka_unit_test(test_round_add_source_refuses_duplicates_oversize_and_a_ninth),
	    cmocka_unit_test(test_round_collect_error_keeps_bits_and_collects_the_others),
	    cmocka_unit_test(test_round_restore_ignores_bits_past_its_pages),
	    cmocka_unit_test(test_round_create_under_allocation_failure_leaks_nothing),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
