/* SPDX-License-Identifier: MIT */
/*
 * Tests of IOVA range lists: every function on hand-picked edge cases (the
 * ends of the u64 space above all), -ENOMEM paths by sweeping fail-nth, and a
 * randomized differential test against the per-address model of
 * tests/model/iova_model.h. The seed comes from UIOMMU_SEED or the clock and
 * is printed with every failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "seeded.h"

#include <uiommu/iova_list.h>

#include "core/core_internal.h"
#include "../../model/iova_model.h"

#define MAX UINT64_MAX


/* Asserts that @list holds exactly the @n ranges of @want (start, last pairs). */
static void expect_ranges(const struct uiommu_iova_list *list, const uint64_t (*want)[2], size_t n)
{
	assert_int_equal(list->nr, n);
	for (size_t i = 0; i < n; i++) {
		assert_true(list->ranges[i].start == want[i][0]);
		assert_true(list->ranges[i].last == want[i][1]);
	}
}

#define EXPECT(list, ...)                                                                          \
	do {                                                                                       \
		static const uint64_t want_[][2] = { __VA_ARGS__ };                                \
		expect_ranges((list), want_, ARRAY_SIZE(want_));                                   \
	} while (0)

static void test_iova_list_starts_empty_and_fini_leaves_it_reusable(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(l.nr, 0);
	assert_false(uiommu_iova_list_overlaps(&l, 0, MAX));
	assert_false(uiommu_iova_list_contains(&l, 0, 0));
	assert_int_equal(uiommu_iova_list_add(&l, 10, 20), 0);
	uiommu_iova_list_fini(&l);
	assert_int_equal(l.nr, 0);
	assert_null(l.ranges);
	uiommu_iova_list_fini(&l);
	uiommu_iova_list_fini(NULL);
	assert_int_equal(uiommu_iova_list_add(&l, 1, 1), 0);
	EXPECT(&l, { 1, 1 });
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_add_merges_overlapping_and_adjacent_ranges(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 100, 199), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 300, 399), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 10, 19), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 500, 599), 0);
	EXPECT(&l, { 10, 19 }, { 100, 199 }, { 300, 399 }, { 500, 599 });
	assert_int_equal(uiommu_iova_list_add(&l, 200, 200), 0); /* touches on the left */
	assert_int_equal(uiommu_iova_list_add(&l, 299, 299), 0); /* touches on the right */
	EXPECT(&l, { 10, 19 }, { 100, 200 }, { 299, 399 }, { 500, 599 });
	assert_int_equal(uiommu_iova_list_add(&l, 150, 550), 0); /* swallows three */
	EXPECT(&l, { 10, 19 }, { 100, 599 });
	assert_int_equal(uiommu_iova_list_add(&l, 20, 99), 0); /* fills the gap exactly */
	EXPECT(&l, { 10, 599 });
	assert_int_equal(uiommu_iova_list_add(&l, 11, 12), 0); /* already inside */
	EXPECT(&l, { 10, 599 });
	assert_int_equal(uiommu_iova_list_add(&l, 5, 3), -EINVAL);
	EXPECT(&l, { 10, 599 });
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_add_works_at_both_ends_of_the_u64_space(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, MAX, MAX), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 0, 0), 0);
	EXPECT(&l, { 0, 0 }, { MAX, MAX });
	assert_int_equal(uiommu_iova_list_add(&l, MAX - 10, MAX - 1), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 1, 10), 0);
	EXPECT(&l, { 0, 10 }, { MAX - 10, MAX });
	assert_int_equal(uiommu_iova_list_add(&l, 11, MAX - 11), 0);
	EXPECT(&l, { 0, MAX });
	assert_int_equal(uiommu_iova_list_add(&l, 0, MAX), 0);
	EXPECT(&l, { 0, MAX });
	assert_true(uiommu_iova_list_contains(&l, 0, MAX));
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_subtract_splits_trims_and_removes_ranges(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 0, 999), 0);
	assert_int_equal(uiommu_iova_list_subtract(&l, 100, 199), 0);
	EXPECT(&l, { 0, 99 }, { 200, 999 });
	assert_int_equal(uiommu_iova_list_subtract(&l, 0, 0), 0);
	assert_int_equal(uiommu_iova_list_subtract(&l, 999, 2000), 0);
	EXPECT(&l, { 1, 99 }, { 200, 998 });
	assert_int_equal(uiommu_iova_list_subtract(&l, 100, 199), 0); /* hole: no-op */
	EXPECT(&l, { 1, 99 }, { 200, 998 });
	assert_int_equal(uiommu_iova_list_subtract(&l, 50, 300), 0); /* trims two */
	EXPECT(&l, { 1, 49 }, { 301, 998 });
	assert_int_equal(uiommu_iova_list_subtract(&l, 1, 49), 0); /* exact range */
	EXPECT(&l, { 301, 998 });
	assert_int_equal(uiommu_iova_list_subtract(&l, 3, 1), -EINVAL);
	assert_int_equal(uiommu_iova_list_subtract(&l, 0, MAX), 0);
	assert_int_equal(l.nr, 0);
	assert_int_equal(uiommu_iova_list_subtract(&l, 0, MAX), 0);
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_subtract_works_at_both_ends_of_the_u64_space(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 0, MAX), 0);
	assert_int_equal(uiommu_iova_list_subtract(&l, MAX, MAX), 0);
	assert_int_equal(uiommu_iova_list_subtract(&l, 0, 0), 0);
	EXPECT(&l, { 1, MAX - 1 });
	assert_int_equal(uiommu_iova_list_add(&l, 0, MAX), 0);
	assert_int_equal(uiommu_iova_list_subtract(&l, 1, MAX - 1), 0);
	EXPECT(&l, { 0, 0 }, { MAX, MAX });
	assert_int_equal(uiommu_iova_list_subtract(&l, 1, MAX), 0);
	EXPECT(&l, { 0, 0 });
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_clip_keeps_only_the_aperture(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_clip(&l, 0, MAX), 0); /* empty stays empty */
	assert_int_equal(l.nr, 0);
	assert_int_equal(uiommu_iova_list_add(&l, 0, 9), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 20, 29), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 40, 49), 0);
	assert_int_equal(uiommu_iova_list_add(&l, MAX - 9, MAX), 0);
	assert_int_equal(uiommu_iova_list_clip(&l, 9, 1), -EINVAL);
	assert_int_equal(uiommu_iova_list_clip(&l, 0, MAX), 0);
	EXPECT(&l, { 0, 9 }, { 20, 29 }, { 40, 49 }, { MAX - 9, MAX });
	assert_int_equal(uiommu_iova_list_clip(&l, 5, MAX - 5), 0);
	EXPECT(&l, { 5, 9 }, { 20, 29 }, { 40, 49 }, { MAX - 9, MAX - 5 });
	assert_int_equal(uiommu_iova_list_clip(&l, 25, 44), 0);
	EXPECT(&l, { 25, 29 }, { 40, 44 });
	assert_int_equal(uiommu_iova_list_clip(&l, 30, 39), 0); /* lies in the gap */
	assert_int_equal(l.nr, 0);
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_contains_and_overlaps_handle_edges(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 0, 9), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 20, 29), 0);
	assert_int_equal(uiommu_iova_list_add(&l, MAX - 9, MAX), 0);
	assert_true(uiommu_iova_list_contains(&l, 0, 9));
	assert_true(uiommu_iova_list_contains(&l, 20, 20));
	assert_true(uiommu_iova_list_contains(&l, MAX, MAX));
	assert_true(uiommu_iova_list_contains(&l, MAX - 9, MAX));
	assert_false(uiommu_iova_list_contains(&l, 0, 10));
	assert_false(uiommu_iova_list_contains(&l, 9, 20)); /* spans a gap */
	assert_false(uiommu_iova_list_contains(&l, MAX - 10, MAX));
	assert_false(uiommu_iova_list_contains(&l, 5, 4)); /* start > last */
	assert_true(uiommu_iova_list_overlaps(&l, 9, 19));
	assert_true(uiommu_iova_list_overlaps(&l, 10, 20));
	assert_false(uiommu_iova_list_overlaps(&l, 10, 19));
	assert_false(uiommu_iova_list_overlaps(&l, 30, MAX - 10));
	assert_true(uiommu_iova_list_overlaps(&l, 30, MAX - 9));
	assert_true(uiommu_iova_list_overlaps(&l, MAX, MAX));
	assert_true(uiommu_iova_list_overlaps(&l, 0, MAX));
	assert_false(uiommu_iova_list_overlaps(&l, 5, 4));
	uiommu_iova_list_fini(&l);
}

static void expect_hole(const struct uiommu_iova_list *l, uint64_t length, uint64_t align,
			uint64_t from, int rc, uint64_t iova)
{
	uint64_t got = 0x5a5a;

	assert_int_equal(uiommu_iova_list_find_hole(l, length, align, from, &got), rc);
	if (rc == 0)
		assert_true(got == iova);
	else
		assert_true(got == 0x5a5a); /* untouched on failure */
}

static void test_iova_list_find_hole_rejects_bad_align_and_zero_length(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 0, MAX), 0);
	expect_hole(&l, 0, 1, 0, -EINVAL, 0);
	expect_hole(&l, 1, 0, 0, -EINVAL, 0);
	expect_hole(&l, 1, 3, 0, -EINVAL, 0);
	expect_hole(&l, 1, (1ull << 63) + 1, 0, -EINVAL, 0);
	expect_hole(&l, 1, MAX, 0, -EINVAL, 0);
	uiommu_iova_list_fini(&l);
	expect_hole(&l, 1, 1, 0, -ENOSPC, 0); /* empty list */
}

static void test_iova_list_find_hole_returns_lowest_aligned_fit(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 0x1001, 0x2fff), 0);
	assert_int_equal(uiommu_iova_list_add(&l, 0x5000, 0x9fff), 0);
	expect_hole(&l, 1, 1, 0, 0, 0x1001);
	expect_hole(&l, 0x1000, 0x1000, 0, 0, 0x2000);
	expect_hole(&l, 0x1001, 0x1000, 0, 0, 0x5000); /* too long for the first */
	expect_hole(&l, 0x1fff, 1, 0, 0, 0x1001);
	expect_hole(&l, 0x2000, 1, 0, 0, 0x5000);
	expect_hole(&l, 0x1000, 0x1000, 0x2001, 0, 0x5000);
	expect_hole(&l, 0x1000, 0x4000, 0, 0, 0x8000);
	expect_hole(&l, 0x2000, 0x4000, 0, 0, 0x8000);
	expect_hole(&l, 0x2001, 0x4000, 0, -ENOSPC, 0);
	expect_hole(&l, 0x5000, 1, 0, 0, 0x5000);
	expect_hole(&l, 0x5001, 1, 0, -ENOSPC, 0);
	expect_hole(&l, 1, 1, 0x9fff, 0, 0x9fff);
	expect_hole(&l, 1, 1, 0xa000, -ENOSPC, 0);
	expect_hole(&l, 2, 1, 0x9fff, -ENOSPC, 0);
	expect_hole(&l, 1, 1ull << 63, 0, -ENOSPC, 0);
	expect_hole(&l, MAX, 1, 0, -ENOSPC, 0);
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_find_hole_handles_the_top_of_the_u64_space(void **state)
{
	struct uiommu_iova_list l;

	(void)state;
	uiommu_iova_list_init(&l);
	assert_int_equal(uiommu_iova_list_add(&l, 0, MAX), 0);
	expect_hole(&l, MAX, 1, 0, 0, 0);
	expect_hole(&l, MAX, 1, 1, 0, 1); /* [1, MAX] is exactly MAX bytes */
	expect_hole(&l, MAX, 2, 1, -ENOSPC, 0);
	expect_hole(&l, 1, 1ull << 63, 1, 0, 1ull << 63);
	expect_hole(&l, 1ull << 63, 1ull << 63, 1, 0, 1ull << 63);
	expect_hole(&l, (1ull << 63) + 1, 1ull << 63, 1, -ENOSPC, 0);
	expect_hole(&l, 1, 1ull << 63, (1ull << 63) + 1, -ENOSPC, 0); /* align-up wraps */
	expect_hole(&l, 1, 1, MAX, 0, MAX);
	expect_hole(&l, 2, 1, MAX, -ENOSPC, 0);
	expect_hole(&l, 1, 2, MAX, -ENOSPC, 0);
	expect_hole(&l, 1, 1ull << 62, MAX - 5, -ENOSPC, 0);
	assert_int_equal(uiommu_iova_list_clip(&l, MAX - 0xffff, MAX), 0);
	expect_hole(&l, 0x1000, 0x1000, 0, 0, MAX - 0xffff);
	expect_hole(&l, 0x1000, 0x1000, MAX - 0xfff, 0, MAX - 0xfff);
	expect_hole(&l, 0x1000, 0x1000, MAX - 0xffe, -ENOSPC, 0);
	expect_hole(&l, 0x10000, 0x10000, 0, 0, MAX - 0xffff);
	expect_hole(&l, 0x10000, 0x20000, 0, -ENOSPC, 0);
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_copy_replaces_the_destination(void **state)
{
	struct uiommu_iova_list a, b;

	(void)state;
	uiommu_iova_list_init(&a);
	uiommu_iova_list_init(&b);
	assert_int_equal(uiommu_iova_list_add(&a, 1, 2), 0);
	assert_int_equal(uiommu_iova_list_add(&a, 10, MAX), 0);
	assert_int_equal(uiommu_iova_list_add(&b, 5, 6), 0);
	assert_int_equal(uiommu_iova_list_copy(&b, &a), 0);
	EXPECT(&b, { 1, 2 }, { 10, MAX });
	assert_ptr_not_equal(a.ranges, b.ranges);
	assert_int_equal(uiommu_iova_list_copy(&b, &b), 0);
	EXPECT(&b, { 1, 2 }, { 10, MAX });
	/* The copy is independent and still grows. */
	assert_int_equal(uiommu_iova_list_add(&b, 4, 4), 0);
	EXPECT(&b, { 1, 2 }, { 4, 4 }, { 10, MAX });
	EXPECT(&a, { 1, 2 }, { 10, MAX });
	uiommu_iova_list_fini(&a);
	assert_int_equal(uiommu_iova_list_copy(&b, &a), 0); /* copy of empty */
	assert_int_equal(b.nr, 0);
	assert_int_equal(uiommu_iova_list_add(&b, 4, 4), 0);
	EXPECT(&b, { 4, 4 });
	uiommu_iova_list_fini(&b);
}

/*
 * A plain-malloc image of a list, taken without touching the fail-nth
 * countdown. Room for any list the random test can build: ranges need a
 * gap between them, so at most half the model's universe, plus the two u64
 * ends it sometimes uses (16 slots overflowed now and then, by seed).
 */
struct snapshot {
	struct uiommu_iova_list shallow;
	struct uiommu_iova_range r[IOVA_MODEL_SIZE / 2 + 4];
};

static void snap(struct snapshot *s, const struct uiommu_iova_list *l)
{
	assert_true(l->nr <= ARRAY_SIZE(s->r));
	s->shallow = *l;
	if (l->nr)
		memcpy(s->r, l->ranges, l->nr * sizeof(*l->ranges));
}

static void expect_unchanged(const struct snapshot *s, const struct uiommu_iova_list *l)
{
	assert_ptr_equal(l->ranges, s->shallow.ranges);
	assert_int_equal(l->nr, s->shallow.nr);
	assert_int_equal(l->cap, s->shallow.cap);
	if (l->nr)
		assert_memory_equal(l->ranges, s->r, l->nr * sizeof(*l->ranges));
}

enum nomem_op { OP_ADD, OP_SUBTRACT, OP_COPY };

static int run_op(enum nomem_op op, struct uiommu_iova_list *l,
		  const struct uiommu_iova_list *src, uint64_t start, uint64_t last)
{
	switch (op) {
	case OP_ADD:
		return uiommu_iova_list_add(l, start, last);
	case OP_SUBTRACT:
		return uiommu_iova_list_subtract(l, start, last);
	default:
		return uiommu_iova_list_copy(l, src);
	}
}

/*
 * Sweeps n = 1.. failing the n-th allocation of @op until it succeeds; every
 * failure must be -ENOMEM with @l unchanged. Returns the number of failures.
 */
static unsigned long sweep_fail_nth(enum nomem_op op, struct uiommu_iova_list *l,
				    const struct uiommu_iova_list *src, uint64_t start,
				    uint64_t last)
{
	struct snapshot s;
	unsigned long n;
	int rc;

	for (n = 1;; n++) {
		snap(&s, l);
		uiommu__fail_nth_set(n);
		rc = run_op(op, l, src, start, last);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_true(uiommu__fail_nth_hit());
		expect_unchanged(&s, l);
	}
	uiommu__fail_nth_set(0);
	return n - 1;
}

/*
 * Initializes @l with @nr ranges [10 i, 10 i + 4] at full capacity, so that
 * growth allocates.
 */
static void make_full_list(struct uiommu_iova_list *l, size_t nr)
{
	struct uiommu_iova_list tmp;

	uiommu_iova_list_init(&tmp);
	uiommu_iova_list_init(l);
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(uiommu_iova_list_add(&tmp, 10 * i, 10 * i + 4), 0);
	assert_int_equal(uiommu_iova_list_copy(l, &tmp), 0);
	assert_int_equal(l->cap, nr);
	uiommu_iova_list_fini(&tmp);
}

static void test_iova_list_failed_allocations_leave_the_list_unchanged(void **state)
{
	struct uiommu_iova_list l, src;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	uiommu_iova_list_init(&l);
	assert_int_equal(sweep_fail_nth(OP_ADD, &l, NULL, 5, 5), 1); /* first allocation */
	EXPECT(&l, { 5, 5 });
	uiommu_iova_list_fini(&l);
	make_full_list(&l, 4);
	assert_int_equal(sweep_fail_nth(OP_ADD, &l, NULL, 100, 200), 1); /* growth */
	EXPECT(&l, { 0, 4 }, { 10, 14 }, { 20, 24 }, { 30, 34 }, { 100, 200 });
	uiommu_iova_list_fini(&l);
	make_full_list(&l, 4);
	assert_int_equal(sweep_fail_nth(OP_ADD, &l, NULL, 3, 12), 0); /* merge: no growth */
	assert_int_equal(sweep_fail_nth(OP_ADD, &l, NULL, 40, 44), 0); /* fits: nr 4 of 4 */
	assert_int_equal(sweep_fail_nth(OP_SUBTRACT, &l, NULL, 21, 22), 1); /* split grows */
	EXPECT(&l, { 0, 14 }, { 20, 20 }, { 23, 24 }, { 30, 34 }, { 40, 44 });
	assert_int_equal(sweep_fail_nth(OP_SUBTRACT, &l, NULL, 0, 20), 0);
	EXPECT(&l, { 23, 24 }, { 30, 34 }, { 40, 44 });
	make_full_list(&src, 3);
	assert_int_equal(sweep_fail_nth(OP_COPY, &l, &src, 0, 0), 1);
	EXPECT(&l, { 0, 4 }, { 10, 14 }, { 20, 24 });
	uiommu_iova_list_fini(&src);
	uiommu_iova_list_fini(&l);
}

/* Asserts that @l is normalized, inside the universe, and equal to the model. */
static void check_against_model(const struct uiommu_iova_list *l, const struct iova_model *m)
{
	bool in[IOVA_MODEL_SIZE] = { false };

	for (size_t i = 0; i < l->nr; i++) {
		const struct uiommu_iova_range *r = &l->ranges[i];

		CHECK(r->start <= r->last);
		CHECK(i == 0 || l->ranges[i - 1].last < r->start - 1); /* r->start > 0 here */
		CHECK(r->start >= m->base && r->last <= iova_model_last(m));
		for (uint64_t a = r->start - m->base; a <= r->last - m->base; a++)
			in[a] = true;
	}
	CHECK(memcmp(in, m->in, sizeof(in)) == 0);
}

/* An address in the universe, or now and then one of the u64 ends. */
static uint64_t random_addr(const struct iova_model *m)
{
	uint64_t k = rnd() % 32;

	if (k == 0)
		return 0;
	if (k == 1)
		return MAX;
	return m->base + rnd() % IOVA_MODEL_SIZE;
}

static void random_range(const struct iova_model *m, bool inside, uint64_t *start, uint64_t *last)
{
	uint64_t a, b;

	if (inside) {
		a = m->base + rnd() % IOVA_MODEL_SIZE;
		b = a + u64_min(rnd() % 24, iova_model_last(m) - a);
	} else {
		a = random_addr(m);
		b = rnd() % 4 ? a + rnd() % 24 : random_addr(m);
		if (b < a) {
			uint64_t t = a;

			a = b;
			b = t;
		}
	}
	*start = a;
	*last = b;
}

/* One add or subtract, sometimes with an injected allocation failure. */
static void random_mutation(struct uiommu_iova_list *l, struct iova_model *m)
{
	bool add = rnd() % 2, fail = rnd() % 8 == 0;
	uint64_t start, last;
	struct snapshot s;
	int rc;

	random_range(m, add, &start, &last);
	snap(&s, l);
	uiommu__fail_nth_set(fail ? 1 : 0);
	rc = add ? uiommu_iova_list_add(l, start, last) : uiommu_iova_list_subtract(l, start, last);
	uiommu__fail_nth_set(0);
	if (rc == -ENOMEM) {
		CHECK(fail);
		expect_unchanged(&s, l);
		return;
	}
	CHECK(rc == 0);
	if (add)
		iova_model_add(m, start, last);
	else
		iova_model_subtract(m, start, last);
}

static void random_query(const struct uiommu_iova_list *l, const struct iova_model *m)
{
	uint64_t start, last, length = 1 + rnd() % 40, align, from, got = 0, want = 0;
	int rc, want_rc;

	random_range(m, false, &start, &last);
	CHECK(uiommu_iova_list_contains(l, start, last) == iova_model_contains(m, start, last));
	CHECK(uiommu_iova_list_overlaps(l, start, last) == iova_model_overlaps(m, start, last));
	align = 1ull << (rnd() % 8 ? rnd() % 8 : rnd() % 64);
	from = rnd() % 4 ? random_addr(m) : 0;
	rc = uiommu_iova_list_find_hole(l, length, align, from, &got);
	want_rc = iova_model_find_hole(m, length, align, from, &want);
	CHECK(rc == (want_rc ? -ENOSPC : 0));
	CHECK(rc || got == want);
}

static void run_differential(uint64_t base, size_t nr_ops)
{
	struct uiommu_iova_list l;
	struct iova_model m;
	uint64_t start, last;

	uiommu_iova_list_init(&l);
	iova_model_init(&m, base);
	for (op_index = 0; op_index < nr_ops; op_index++) {
		uint64_t k = rnd() % 16;

		if (k < 8) {
			random_mutation(&l, &m);
		} else if (k == 8) {
			random_range(&m, false, &start, &last);
			CHECK(uiommu_iova_list_clip(&l, start, last) == 0);
			iova_model_clip(&m, start, last);
		} else {
			random_query(&l, &m);
		}
		check_against_model(&l, &m);
	}
	uiommu_iova_list_fini(&l);
}

static void test_iova_list_random_ops_match_per_address_model(void **state)
{
	(void)state;
	seed_rng();
	print_message("iova_list differential: UIOMMU_SEED=%" PRIu64 "\n", seed);
	run_differential(0, 100000);
	run_differential(MAX - (IOVA_MODEL_SIZE - 1), 100000);
	run_differential((1ull << 63) - 100, 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iova_list_starts_empty_and_fini_leaves_it_reusable),
		cmocka_unit_test(test_iova_list_add_merges_overlapping_and_adjacent_ranges),
		cmocka_unit_test(test_iova_list_add_works_at_both_ends_of_the_u64_space),
		cmocka_unit_test(test_iova_list_subtract_splits_trims_and_removes_ranges),
		cmocka_unit_test(test_iova_list_subtract_works_at_both_ends_of_the_u64_space),
		cmocka_unit_test(test_iova_list_clip_keeps_only_the_aperture),
		cmocka_unit_test(test_iova_list_contains_and_overlaps_handle_edges),
		cmocka_unit_test(test_iova_list_find_hole_rejects_bad_align_and_zero_length),
		cmocka_unit_test(test_iova_list_find_hole_returns_lowest_aligned_fit),
		cmocka_unit_test(test_iova_list_find_hole_handles_the_top_of_the_u64_space),
		cmocka_unit_test(test_iova_list_copy_replaces_the_destination),
		cmocka_unit_test(test_iova_list_failed_allocations_leave_the_list_unchanged),
		cmocka_unit_test(test_iova_list_random_ops_match_per_address_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
