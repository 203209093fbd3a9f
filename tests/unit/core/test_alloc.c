/* SPDX-License-Identifier: MIT */
/*
 * Tests of the allocation wrappers (fail-nth injection) and range helpers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core_internal.h"

static void test_range_last_rejects_zero_length_and_wrap(void **state)
{
	uint64_t last = 7;

	(void)state;
	assert_int_equal(uiommu__range_last(0, 0, &last), -EOVERFLOW);
	assert_int_equal(uiommu__range_last(5, 0, &last), -EOVERFLOW);
	assert_int_equal(uiommu__range_last(UINT64_MAX, 2, &last), -EOVERFLOW);
	assert_int_equal(uiommu__range_last(2, UINT64_MAX, &last), -EOVERFLOW);
	assert_int_equal(uiommu__range_last(1, UINT64_MAX, &last), 0);
	assert_true(last == UINT64_MAX);
	assert_int_equal(uiommu__range_last(0, UINT64_MAX, &last), 0);
	assert_true(last == UINT64_MAX - 1);
	assert_int_equal(uiommu__range_last(UINT64_MAX, 1, &last), 0);
	assert_true(last == UINT64_MAX);
	assert_int_equal(uiommu__range_last(0x1000, 0x1000, &last), 0);
	assert_true(last == 0x1fff);
}

static void test_fail_nth_fails_exactly_the_nth_allocation(void **state)
{
	void *a, *b, *c;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	uiommu__fail_nth_set(2);
	a = uiommu__zalloc(16);
	assert_non_null(a);
	assert_false(uiommu__fail_nth_hit());
	b = uiommu__calloc(2, 8);
	assert_null(b);
	assert_true(uiommu__fail_nth_hit());
	c = uiommu__aligned_zalloc(64, 64);
	assert_non_null(c);
	assert_true(((uintptr_t)c & 63) == 0);
	assert_true(((unsigned char *)c)[63] == 0);
	uiommu__free(a);
	uiommu__free(c);
	uiommu__fail_nth_set(0);
	a = uiommu__zalloc(1);
	assert_non_null(a);
	assert_false(uiommu__fail_nth_hit());
	uiommu__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_last_rejects_zero_length_and_wrap),
		cmocka_unit_test(test_fail_nth_fails_exactly_the_nth_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
