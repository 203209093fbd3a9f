/* SPDX-License-Identifier: MIT */
/*
 * The migration state table: every pair of states against the list of arcs
 * the engine may take, and out-of-range values refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <uiommu/migrate.h>

#define N UIOMMU_MIG_NR_STATES

static const struct {
	enum uiommu_mig_state from, to;
} valid[] = {
	{ UIOMMU_MIG_NONE, UIOMMU_MIG_SETUP },
	{ UIOMMU_MIG_SETUP, UIOMMU_MIG_PRECOPY },
	{ UIOMMU_MIG_SETUP, UIOMMU_MIG_FAILED },
	{ UIOMMU_MIG_SETUP, UIOMMU_MIG_CANCELLED },
	{ UIOMMU_MIG_PRECOPY, UIOMMU_MIG_STOPCOPY },
	{ UIOMMU_MIG_PRECOPY, UIOMMU_MIG_FAILED },
	{ UIOMMU_MIG_PRECOPY, UIOMMU_MIG_CANCELLED },
	{ UIOMMU_MIG_STOPCOPY, UIOMMU_MIG_COMPLETED },
	{ UIOMMU_MIG_STOPCOPY, UIOMMU_MIG_FAILED },
	{ UIOMMU_MIG_STOPCOPY, UIOMMU_MIG_CANCELLED },
	{ UIOMMU_MIG_FAILED, UIOMMU_MIG_SETUP },
	{ UIOMMU_MIG_CANCELLED, UIOMMU_MIG_SETUP },
};

static bool listed(int from, int to)
{
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		if ((int)valid[i].from == from && (int)valid[i].to == to)
			return true;
	return false;
}

static void test_every_pair_matches_the_list(void **state)
{
	(void)state;
	for (int from = 0; from < N; from++)
		for (int to = 0; to < N; to++)
			assert_int_equal(uiommu_mig_transition_valid(from, to), listed(from, to));
}

static void test_completed_is_final_and_out_of_range_is_refused(void **state)
{
	(void)state;
	for (int to = 0; to < N; to++)
		assert_false(uiommu_mig_transition_valid(UIOMMU_MIG_COMPLETED, to));
	assert_false(uiommu_mig_transition_valid(N, UIOMMU_MIG_SETUP));
	assert_false(uiommu_mig_transition_valid(UIOMMU_MIG_NONE, N));
	assert_false(uiommu_mig_transition_valid((enum uiommu_mig_state)-1, UIOMMU_MIG_SETUP));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(uiommu_mig_state_name(UIOMMU_MIG_PRECOPY), "pre-copy");
	assert_string_equal(uiommu_mig_state_name(UIOMMU_MIG_STOPCOPY), "stop-copy");
	assert_string_equal(uiommu_mig_state_name(N), "invalid");
	for (int s = 0; s < N; s++)
		assert_true(strcmp(uiommu_mig_state_name(s), "invalid") != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_pair_matches_the_list),
		cmocka_unit_test(test_completed_is_final_and_out_of_range_is_refused),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
