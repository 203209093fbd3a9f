// SPDX-License-Identifier: MIT
/*
 * The engine's convergence decisions, end to end: a device that dirties
 * faster than the bandwidth limit is throttled until the migration
 * converges (and the throttle and the stall are reported); a round limit
 * either forces the switchover (still verified page for page) or gives up
 * with -ETIMEDOUT, leaving the source running, throttle lifted, with every
 * dirty bit it had handed out pending again, so that the next attempt
 * succeeds.
 */
#include "mig_test.h"

static struct mt_cfg base_cfg(void)
{
	struct mt_cfg c = {
		.backend = UIOMMU_VM_SOFT,
		.mem_mib = 32,
		.dma_mib = 8,
		.nr_vcpus = 2,
		.wl = mt_wl(UIOMMU_WL_IDLE, 0),
		.dma = { .pattern = UIOMMU_DMADEV_IDLE },
		.warm_ms = 100,
		.policy_set = true,
	};

	uiommu_mig_policy_defaults(&c.policy);
	return c;
}

static void print_rounds(const struct mt *t)
{
	unsigned int nr;
	const struct uiommu_mig_round_info *ri = uiommu_mig_get_rounds(t->mig, &nr);

	for (unsigned int i = 0; i < nr; i++)
		print_message("  round %u%s: sent %" PRIu64 " pages in %.1f ms, pending %" PRIu64
			      ", expected downtime %.1f ms, throttle %.2f, action %d\n",
			      ri[i].round, ri[i].stopcopy ? " (stop-copy)" : "", ri[i].dirty_pages,
			      (double)ri[i].round_ns / 1e6, ri[i].pending_pages,
			      (double)ri[i].expected_downtime_ns / 1e6, ri[i].throttle, ri[i].action);
}

static enum uiommu_mig_action last_precopy_action(const struct mt *t)
{
	unsigned int nr;
	const struct uiommu_mig_round_info *ri = uiommu_mig_get_rounds(t->mig, &nr);

	assert_true(nr >= 2);
	assert_true(ri[nr - 1].stopcopy);
	return ri[nr - 2].action;
}

static void test_device_faster_than_the_link_converges_by_throttling(void **state)
{
	struct mt_cfg c = base_cfg();
	struct mt t = { 0 };

	(void)state;
	c.mem_mib = 16;
	c.dma_mib = 8;
	c.dma = (struct uiommu_dmadev_workload){ .pattern = UIOMMU_DMADEV_BLOCK,
						 .rate_bytes_per_sec = 24ull << 20 };
	c.bandwidth = 8ull << 20;
	c.policy.throttle_initial = 0.5;
	c.policy.throttle_step = 0.2;
	c.policy.max_rounds = 30;
	c.policy.force_switchover = true;
	t.cfg = c;
	mt_source_up(&t);
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, "device 24 MB/s over 8 MB/s");
	print_rounds(&t);
	mt_assert_ok(&t);
	assert_true(t.res.throttle_max > 0);
	assert_true(t.res.dma_stall_ns > 0);
	mt_down(&t);
}

/* A busy guest that cannot fit a 1 ms downtime: only the round limit ends it. */
static struct mt_cfg unreachable_cfg(bool force)
{
	struct mt_cfg c = base_cfg();

	c.wl = mt_wl(UIOMMU_WL_RANDOM, 50000);
	c.dma = (struct uiommu_dmadev_workload){ .pattern = UIOMMU_DMADEV_NET,
						 .rate_bytes_per_sec = 10ull << 20 };
	c.policy.downtime_limit_ns = 1000;
	c.policy.max_rounds = 3;
	c.policy.throttle = false;
	c.policy.force_switchover = force;
	return c;
}

static void test_round_limit_with_force_switches_over_and_verifies(void **state)
{
	struct mt t = { .cfg = unreachable_cfg(true) };

	(void)state;
	mt_source_up(&t);
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, "max 3 rounds, force");
	print_rounds(&t);
	mt_assert_ok(&t);
	assert_int_equal(t.res.rounds, 3);
	assert_int_equal(last_precopy_action(&t), UIOMMU_MIG_FORCE_SWITCH);
	mt_down(&t);
}

static void test_round_limit_without_force_gives_up_and_the_retry_succeeds(void **state)
{
	struct mt t = { .cfg = unreachable_cfg(false) };

	(void)state;
	mt_source_up(&t);
	mt_dest_up(&t, false);
	assert_int_equal(mt_migrate(&t), -ETIMEDOUT);
	mt_print(&t, "max 3 rounds, give up");
	assert_int_equal(t.res.state, UIOMMU_MIG_FAILED);
	assert_int_equal(t.res.error, -ETIMEDOUT);
	assert_int_equal(t.res.rounds, 3);
	assert_int_not_equal(t.rret, 0);
	assert_false(t.rres.resumed);
	mt_assert_source_unharmed(&t);
	mt_dest_down(&t);
	/* Again, allowed to take its time. */
	t.cfg.policy.downtime_limit_ns = 300000000ull;
	t.cfg.policy.max_rounds = 10;
	t.cfg.policy.force_switchover = true;
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, "retry");
	mt_assert_ok(&t);
	mt_down(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_device_faster_than_the_link_converges_by_throttling),
		cmocka_unit_test(test_round_limit_with_force_switches_over_and_verifies),
		cmocka_unit_test(test_round_limit_without_force_gives_up_and_the_retry_succeeds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
