// SPDX-License-Identifier: MIT
/*
 * The pages the emulated DMA device wrote (its own log) against the pages
 * IOMMU_HWPT_GET_DIRTY_BITMAP reports, read and cleared over several
 * intervals while the device runs, for every pattern.
 *
 * Interval k: take the device log L[k], then harvest H[k]. A page's log bit
 * is set after its write completed, and a harvest that cleared a dirty bit
 * waits for the DMA in flight before it returns. Hence (iommu.h's contract
 * seen from the device):
 *  - nothing lost: L[k] is in H[k-1] | H[k] (a write completed before
 *    harvest k is reported by it, or by harvest k-1 if it raced that one);
 *  - nothing invented: H[k] is in L[k] | L[k+1] | ... | L[final] (a reported
 *    page was written by a write that completed after L[k-1] was taken);
 *  - at the end, the device stopped, the union of all logs equals the union
 *    of all reports, and no page outside the DMA region is ever reported.
 * The rate is moderate so that each interval dirties a part of the region,
 * not all of it; the unlimited-rate variant is the concurrency stress.
 */
#include "dmadev_test.h"

#define MAX_INTERVALS 32

struct run {
	uint64_t (*log)[GUEST_WORDS];
	uint64_t (*rep)[GUEST_WORDS];
	unsigned int n; /* intervals; index n is the final one, after STOP */
};

static void check_nothing_lost(const struct run *r)
{
	for (unsigned int k = 0; k <= r->n; k++) {
		uint64_t miss = first_not_in(r->log[k], r->rep[k], k ? r->rep[k - 1] : NULL,
					     GUEST_WORDS);

		if (miss != UINT64_MAX)
			fail_msg("interval %u: page %#llx written but never reported", k,
				 (unsigned long long)miss);
	}
}

static void check_nothing_invented(const struct run *r)
{
	uint64_t later[GUEST_WORDS] = { 0 };

	for (unsigned int k = r->n + 1; k-- > 0;) {
		uint64_t extra;

		for (uint64_t i = 0; i < GUEST_WORDS; i++)
			later[i] |= r->log[k][i];
		extra = first_not_in(r->rep[k], later, NULL, GUEST_WORDS);
		if (extra != UINT64_MAX)
			fail_msg("interval %u: page %#llx reported but not written", k,
				 (unsigned long long)extra);
	}
}

static void check_unions_equal_inside_the_region(const struct run *r)
{
	uint64_t all_log[GUEST_WORDS] = { 0 }, all_rep[GUEST_WORDS] = { 0 };

	for (unsigned int k = 0; k <= r->n; k++)
		for (uint64_t i = 0; i < GUEST_WORDS; i++) {
			all_log[i] |= r->log[k][i];
			all_rep[i] |= r->rep[k][i];
		}
	assert_memory_equal(all_log, all_rep, sizeof(all_log));
	for (uint64_t p = 0; p < GUEST_PAGES; p++)
		if (bit_is_set(all_rep, p))
			assert_true(p >= DMA_GPA / PG && p < (DMA_GPA + DMA_BYTES) / PG);
	assert_true(bits_count(all_rep, GUEST_WORDS) > 0);
}

/* @intervals of @ms each while the device runs @pattern at @rate, then STOP. */
static void run_and_check(enum uiommu_dmadev_pattern pattern, uint64_t rate, unsigned int intervals,
			  unsigned int ms)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	struct run r = { .n = intervals };
	uint64_t pages = 0;

	r.log = calloc(intervals + 1, sizeof(*r.log));
	r.rep = calloc(intervals + 1, sizeof(*r.rep));
	assert_true(r.log && r.rep && intervals < MAX_INTERVALS);
	dirty_tracking(dev, true);
	set_workload(dev, pattern, rate);
	for (unsigned int k = 0; k < intervals; k++) {
		sleep_ms(ms);
		pages += uiommu_dmadev_take_log(dev, r.log[k]);
		harvest(dev, r.rep[k]);
	}
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	uiommu_dmadev_take_log(dev, r.log[intervals]);
	harvest(dev, r.rep[intervals]);
	print_message("pattern %d: %llu writes, %llu logged pages over %u intervals\n", pattern,
		      (unsigned long long)stats_of(dev).writes, (unsigned long long)pages, intervals);
	check_nothing_lost(&r);
	check_nothing_invented(&r);
	check_unions_equal_inside_the_region(&r);
	verify_ok(dev);
	uiommu_dmadev_destroy(dev);
	free(r.log);
	free(r.rep);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_net_pages_logged_are_the_pages_reported(void **state)
{
	(void)state;
	run_and_check(UIOMMU_DMADEV_NET, 20 * MiB, 12, 40);
}

static void test_dmadev_block_pages_logged_are_the_pages_reported(void **state)
{
	(void)state;
	run_and_check(UIOMMU_DMADEV_BLOCK, 20 * MiB, 12, 40);
}

static void test_dmadev_mixed_pages_logged_are_the_pages_reported(void **state)
{
	(void)state;
	run_and_check(UIOMMU_DMADEV_MIXED, 20 * MiB, 12, 40);
}

static void test_dmadev_unlimited_rate_loses_no_dirty_page(void **state)
{
	(void)state;
	run_and_check(UIOMMU_DMADEV_NET, 0, 16, 15);
	run_and_check(UIOMMU_DMADEV_BLOCK, 0, 16, 15);
	run_and_check(UIOMMU_DMADEV_MIXED, 0, 16, 15);
}

static void test_dmadev_idle_dirties_nothing(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	uint64_t *bits = calloc(GUEST_WORDS, 8);

	(void)state;
	dirty_tracking(dev, true);
	sleep_ms(50);
	assert_int_equal(uiommu_dmadev_take_log(dev, bits), 0);
	harvest(dev, bits);
	assert_int_equal(bits_count(bits, GUEST_WORDS), 0);
	assert_int_equal(stats_of(dev).writes, 0);
	uiommu_dmadev_destroy(dev);
	free(bits);
	guest_free(mem, GUEST_BYTES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmadev_net_pages_logged_are_the_pages_reported),
		cmocka_unit_test(test_dmadev_block_pages_logged_are_the_pages_reported),
		cmocka_unit_test(test_dmadev_mixed_pages_logged_are_the_pages_reported),
		cmocka_unit_test(test_dmadev_unlimited_rate_loses_no_dirty_page),
		cmocka_unit_test(test_dmadev_idle_dirties_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
