// SPDX-License-Identifier: MIT
/*
 * Rate control of the emulated DMA device: the token bucket holds each
 * pattern to its rate, the throttle scales a rate by (1 - fraction) and
 * holds an unlimited device back that fraction of the time, the time held
 * back is counted as stall, and a workload change takes effect at once.
 *
 * Tolerances are wide enough for a shared, loaded 2-core VM under
 * sanitizers, tight enough to catch a wrong unit or a missing scale factor.
 * They are asymmetric: going over the rate is the limiter's fault (the bucket
 * holds 100 ms worth of bytes, so a 1 s window sees at most 10 % of burst),
 * falling under it may only mean the thread was kept off the CPU longer than
 * the bucket can make up for. The figures measured are printed.
 */
#include "dmadev_test.h"

#define RATE (16 * MiB)

/* Bytes per second written over @ms, from the device's own counter. */
static double measure(struct uiommu_dmadev *dev, unsigned int ms)
{
	uint64_t b0 = stats_of(dev).bytes, t0 = now_ns(), b1, t1;

	sleep_ms(ms);
	b1 = stats_of(dev).bytes;
	t1 = now_ns();
	return (double)(b1 - b0) * 1e9 / (double)(t1 - t0);
}

/* At most @tol over @want; at most 3 * @tol under it (a starved thread). */
static void expect_rate_near(double got, double want, double tol, const char *what)
{
	print_message("%s: %.2f MB/s (want %.2f)\n", what, got / 1e6, want / 1e6);
	if (got < want * (1 - 3 * tol) || got > want * (1 + tol))
		fail_msg("%s: %.0f B/s, want %.0f -%.0f%% +%.0f%%", what, got, want, 3 * tol * 100,
			 tol * 100);
}

static void test_dmadev_each_pattern_keeps_its_rate(void **state)
{
	static const enum uiommu_dmadev_pattern patterns[] = {
		UIOMMU_DMADEV_NET, UIOMMU_DMADEV_BLOCK, UIOMMU_DMADEV_MIXED
	};
	static const char *const names[] = { "net", "block", "mixed" };
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);

	(void)state;
	for (int i = 0; i < 3; i++) {
		set_workload(dev, patterns[i], RATE);
		sleep_ms(50);
		expect_rate_near(measure(dev, 1000), RATE, 0.15, names[i]);
	}
	assert_true(stats_of(dev).stall_ns > 1000000000ull); /* mostly waiting */
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_throttle_scales_the_rate(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, RATE);
	struct uiommu_dmadev *dev = dev_new(&cfg);

	uint64_t thr;

	(void)state;
	sleep_ms(50);
	/* The rate's own pace is not the throttle's stall. */
	assert_int_equal(stats_of(dev).throttle_ns, 0);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 0.5), 0);
	sleep_ms(50);
	expect_rate_near(measure(dev, 1000), RATE / 2, 0.15, "net, throttle 0.5");
	/* Half of the time per byte is the throttle's: ~0.5 s of the second. */
	assert_true(stats_of(dev).throttle_ns > 250000000ull);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 0.75), 0);
	sleep_ms(50);
	expect_rate_near(measure(dev, 1000), RATE / 4, 0.15, "net, throttle 0.75");
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 0), 0);
	sleep_ms(50);
	thr = stats_of(dev).throttle_ns;
	expect_rate_near(measure(dev, 1000), RATE, 0.15, "net, throttle 0");
	assert_int_equal(stats_of(dev).throttle_ns, thr);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

/*
 * At unlimited rate the throttle holds the device back that fraction of the
 * wall time: the stall grows by ~0.75 s per second. What that does to the
 * throughput depends on how much CPU the thread gets otherwise (when other
 * processes starve it, much less), so it is printed, not checked.
 */
static void test_dmadev_throttle_holds_an_unlimited_device_back(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_BLOCK, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	uint64_t stall0, t0;
	double full, held, held_frac;

	(void)state;
	sleep_ms(20);
	full = measure(dev, 300);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 0.75), 0);
	sleep_ms(20);
	stall0 = stats_of(dev).stall_ns;
	t0 = now_ns();
	held = measure(dev, 500);
	held_frac = (double)(stats_of(dev).stall_ns - stall0) / (double)(now_ns() - t0);
	print_message("block unlimited: %.0f MB/s; throttle 0.75: %.0f MB/s, held back %.2f of "
		      "the time\n",
		      full / 1e6, held / 1e6, held_frac);
	/* Oversleeping on a loaded machine only adds to the time held back. */
	assert_true(held_frac > 0.65 && held_frac < 0.95);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_workload_change_takes_effect_at_once(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 1000);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	uint64_t t0;

	(void)state;
	/* At 1000 B/s the thread sleeps in 100 ms steps; a new rate wakes it. */
	sleep_ms(20);
	t0 = now_ns();
	set_workload(dev, UIOMMU_DMADEV_NET, 0);
	run_until_writes(dev, 1000);
	assert_true(now_ns() - t0 < 2000000000ull);
	set_workload(dev, UIOMMU_DMADEV_IDLE, 0);
	sleep_ms(10);
	t0 = stats_of(dev).writes;
	sleep_ms(30);
	assert_int_equal(stats_of(dev).writes, t0);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmadev_each_pattern_keeps_its_rate),
		cmocka_unit_test(test_dmadev_throttle_scales_the_rate),
		cmocka_unit_test(test_dmadev_throttle_holds_an_unlimited_device_back),
		cmocka_unit_test(test_dmadev_workload_change_takes_effect_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
