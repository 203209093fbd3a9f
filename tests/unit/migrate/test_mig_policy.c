/* SPDX-License-Identifier: MIT */
/*
 * The convergence policy, fed synthetic rounds: a small remainder switches
 * over, a remainder that does not shrink raises the throttle in steps up to
 * its cap, limits force the switch or give up, the bandwidth estimate is
 * smoothed and the expected downtime is what the formula says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <uiommu/migrate.h>

#define MS 1000000ull
#define PAGE 4096ull

/* A round that sent @pages at @bps and left @dirty pending. */
static struct uiommu_mig_round mk(uint64_t pages, uint64_t bps, uint64_t dirty, uint64_t elapsed)
{
	struct uiommu_mig_round r = {
		.bytes_sent = pages * PAGE,
		.pages_sent = pages,
		.dirty_pages = dirty,
		.page_wire_bytes = PAGE,
		.state_bytes = 64 * 1024,
		.elapsed_ns = elapsed,
	};

	r.send_ns = bps ? r.bytes_sent * 1000000000ull / bps : 0;
	r.round_ns = r.send_ns ? r.send_ns : 100 * MS;
	return r;
}

/* A policy with QEMU's defaults. */
static void policy_default(struct uiommu_mig_policy *p)
{
	struct uiommu_mig_policy_cfg cfg;

	uiommu_mig_policy_defaults(&cfg);
	uiommu_mig_policy_init(p, &cfg);
}

static void feed(struct uiommu_mig_policy *p, struct uiommu_mig_round r,
		 struct uiommu_mig_decision *d)
{
	uiommu_mig_policy_round(p, &r, d);
}

static void test_defaults_are_qemus(void **state)
{
	struct uiommu_mig_policy_cfg cfg;

	(void)state;
	uiommu_mig_policy_defaults(&cfg);
	assert_true(cfg.downtime_limit_ns == 300 * MS);
	assert_true(cfg.throttle);
	assert_true(cfg.throttle_initial == 0.20 && cfg.throttle_step == 0.10);
}

/*
 * A round of mostly zero pages measures how fast they were found, not the
 * link: it may raise the estimate or make the first one, never lower it.
 */
static void test_a_mostly_zero_round_does_not_lower_the_bandwidth(void **state)
{
	struct uiommu_mig_policy_cfg cfg;
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;
	struct uiommu_mig_round r;

	(void)state;
	uiommu_mig_policy_defaults(&cfg);
	uiommu_mig_policy_init(&p, &cfg);
	feed(&p, mk(262144, 1000000000ull, 200000, 0), &d);
	r = mk(200000, 100000000ull, 150000, 0);
	r.zero_pages = 150000;
	feed(&p, r, &d);
	assert_true(d.bandwidth_bps == 1000000000ull);
	r.send_ns /= 20; /* 2 GB/s: a lower bound above the estimate raises it */
	feed(&p, r, &d);
	assert_true(d.bandwidth_bps >= 1999000000ull && d.bandwidth_bps <= 2001000000ull);
	r.zero_pages = 100000; /* half: the round was on the wire, it counts */
	r.send_ns *= 4;
	feed(&p, r, &d);
	assert_true(d.bandwidth_bps >= 1249000000ull && d.bandwidth_bps <= 1251000000ull);

	uiommu_mig_policy_init(&p, &cfg);
	r = mk(262144, 100000000ull, 200000, 0);
	r.zero_pages = 262000;
	feed(&p, r, &d);
	assert_true(d.bandwidth_bps == 100000000ull); /* the first estimate, lower bound or not */
}

static void test_small_remainder_switches_over_with_the_formula(void **state)
{
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;

	(void)state;
	policy_default(&p);
	/* 1 GB/s; 1000 pages + 64 KiB state = 4,161,536 bytes = 4.16 ms. */
	feed(&p, mk(262144, 1000000000ull, 1000, 0), &d);
	assert_int_equal(d.action, UIOMMU_MIG_SWITCHOVER);
	assert_true(d.bandwidth_bps == 1000000000ull);
	assert_true(d.expected_downtime_ns >= 4161000 && d.expected_downtime_ns <= 4162000);
}

static void test_bandwidth_is_smoothed_and_kept_over_empty_rounds(void **state)
{
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;

	(void)state;
	policy_default(&p);
	feed(&p, mk(262144, 1000000000ull, 200000, 0), &d);
	feed(&p, mk(200000, 500000000ull, 150000, 0), &d);
	assert_true(d.bandwidth_bps >= 749000000ull && d.bandwidth_bps <= 751000000ull);
	feed(&p, mk(0, 0, 150000, 0), &d);
	assert_true(d.bandwidth_bps >= 749000000ull && d.bandwidth_bps <= 751000000ull);
}

static void test_unmeasured_bandwidth_uses_the_nominal_gigabit(void **state)
{
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;

	(void)state;
	policy_default(&p);
	/* Nothing sent; 64 KiB of state at 125 MB/s is 0.52 ms. */
	feed(&p, mk(0, 0, 0, 0), &d);
	assert_int_equal(d.action, UIOMMU_MIG_SWITCHOVER);
	assert_true(d.expected_downtime_ns > 500000 && d.expected_downtime_ns < 540000);
}

static void test_stuck_remainder_raises_throttle_in_steps_to_the_cap(void **state)
{
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;
	double seen[16];
	int n = 0;

	(void)state;
	policy_default(&p);
	/* 100 MB/s, 200k pages always pending: 8 s of downtime, never shrinking. */
	for (int i = 0; i < 40; i++) {
		feed(&p, mk(200000, 100000000ull, 200000, 0), &d);
		assert_int_not_equal(d.action, UIOMMU_MIG_SWITCHOVER);
		if (d.action == UIOMMU_MIG_THROTTLE)
			seen[n++] = d.throttle;
	}
	assert_int_equal(n, 8); /* 0.2, 0.3 ... 0.9 */
	for (int i = 0; i < n; i++)
		assert_true(seen[i] > 0.19 + 0.1 * i && seen[i] < 0.21 + 0.1 * i);
	assert_true(d.throttle > 0.89 && d.throttle < 0.91);
}

static void test_shrinking_remainder_is_not_throttled(void **state)
{
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d = { .action = UIOMMU_MIG_CONTINUE };
	uint64_t dirty = 1000000;

	(void)state;
	policy_default(&p);
	for (int i = 0; i < 10 && d.action != UIOMMU_MIG_SWITCHOVER; i++, dirty /= 2) {
		feed(&p, mk(dirty, 100000000ull, dirty / 2, 0), &d);
		assert_int_not_equal(d.action, UIOMMU_MIG_THROTTLE);
	}
	assert_int_equal(d.action, UIOMMU_MIG_SWITCHOVER);
}

static void test_throttle_off_never_throttles(void **state)
{
	struct uiommu_mig_policy_cfg cfg;
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;

	(void)state;
	uiommu_mig_policy_defaults(&cfg);
	cfg.throttle = false;
	uiommu_mig_policy_init(&p, &cfg);
	for (int i = 0; i < 10; i++) {
		feed(&p, mk(200000, 100000000ull, 200000, 0), &d);
		assert_int_equal(d.action, UIOMMU_MIG_CONTINUE);
		assert_true(d.throttle == 0);
	}
}

static void test_limits_force_or_give_up(void **state)
{
	struct uiommu_mig_policy_cfg cfg;
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;

	(void)state;
	uiommu_mig_policy_defaults(&cfg);
	cfg.max_rounds = 3;
	uiommu_mig_policy_init(&p, &cfg);
	feed(&p, mk(200000, 100000000ull, 200000, 0), &d);
	feed(&p, mk(200000, 100000000ull, 200000, 0), &d);
	assert_int_equal(d.action, UIOMMU_MIG_CONTINUE);
	feed(&p, mk(200000, 100000000ull, 200000, 0), &d);
	assert_int_equal(d.action, UIOMMU_MIG_GIVE_UP);

	cfg.max_rounds = 0;
	cfg.max_time_ns = 5000 * MS;
	cfg.force_switchover = true;
	uiommu_mig_policy_init(&p, &cfg);
	feed(&p, mk(200000, 100000000ull, 200000, 4999 * MS), &d);
	assert_int_equal(d.action, UIOMMU_MIG_CONTINUE);
	feed(&p, mk(200000, 100000000ull, 200000, 5000 * MS), &d);
	assert_int_equal(d.action, UIOMMU_MIG_FORCE_SWITCH);
	/* Fitting the limit wins over a limit hit in the same round. */
	feed(&p, mk(200000, 100000000ull, 10, 6000 * MS), &d);
	assert_int_equal(d.action, UIOMMU_MIG_SWITCHOVER);
}

static void test_pinned_pages_are_priced_in_the_expected_downtime(void **state)
{
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;
	struct uiommu_mig_round r;

	(void)state;
	policy_default(&p);
	/* 1 GB/s; 1000 pending of which 250 pinned: 1,024,000 bytes = 1.02 ms theirs. */
	r = mk(262144, 1000000000ull, 1000, 0);
	r.pinned_pages = r.always_dirty_pages = 250;
	feed(&p, r, &d);
	assert_int_equal(d.action, UIOMMU_MIG_SWITCHOVER);
	assert_true(d.pinned_downtime_ns >= 1023000 && d.pinned_downtime_ns <= 1025000);
	assert_true(d.expected_downtime_ns >= 4161000 && d.expected_downtime_ns <= 4162000);
	/* They are a floor: the stop-copy sends them even if the count says fewer. */
	r.dirty_pages = 10;
	feed(&p, r, &d);
	assert_true(d.expected_downtime_ns >= 1024000 + 65000);
}

static void test_only_always_dirty_left_over_the_limit_acts_as_a_limit(void **state)
{
	struct uiommu_mig_policy_cfg cfg;
	struct uiommu_mig_policy p;
	struct uiommu_mig_decision d;
	struct uiommu_mig_round r = mk(200000, 100000000ull, 200000, 0);

	(void)state;
	uiommu_mig_policy_defaults(&cfg);
	uiommu_mig_policy_init(&p, &cfg);
	/* The all-dirty rule: everything every round. No round, no throttle helps. */
	r.always_dirty_pages = 200000;
	feed(&p, r, &d);
	assert_int_equal(d.action, UIOMMU_MIG_GIVE_UP);
	assert_true(d.throttle == 0);
	cfg.force_switchover = true;
	uiommu_mig_policy_init(&p, &cfg);
	feed(&p, r, &d);
	assert_int_equal(d.action, UIOMMU_MIG_FORCE_SWITCH);
	/* More than the always-dirty pages left: rounds may still shrink it. */
	r.always_dirty_pages = 1000;
	uiommu_mig_policy_init(&p, &cfg);
	feed(&p, r, &d);
	assert_int_equal(d.action, UIOMMU_MIG_CONTINUE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_qemus),
		cmocka_unit_test(test_small_remainder_switches_over_with_the_formula),
		cmocka_unit_test(test_a_mostly_zero_round_does_not_lower_the_bandwidth),
		cmocka_unit_test(test_bandwidth_is_smoothed_and_kept_over_empty_rounds),
		cmocka_unit_test(test_unmeasured_bandwidth_uses_the_nominal_gigabit),
		cmocka_unit_test(test_stuck_remainder_raises_throttle_in_steps_to_the_cap),
		cmocka_unit_test(test_shrinking_remainder_is_not_throttled),
		cmocka_unit_test(test_throttle_off_never_throttles),
		cmocka_unit_test(test_limits_force_or_give_up),
		cmocka_unit_test(test_pinned_pages_are_priced_in_the_expected_downtime),
		cmocka_unit_test(test_only_always_dirty_left_over_the_limit_acts_as_a_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
