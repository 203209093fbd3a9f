// SPDX-License-Identifier: MIT
/*
 * The migration engine end to end, in one process: a source machine with a
 * running workload migrates to an incoming machine over a socketpair or
 * loopback TCP, and every migration must verify page for page, the device
 * must find its region intact, and the guest must find no bad page when it
 * checks its own memory on the destination.
 *
 * Cases: an idle guest; busy guests at several rates; a DMA-heavy device;
 * each dirty source (soft, kvm-log, kvm-clear-log, kvm-ring); zstd. KVM
 * cases skip without /dev/kvm; the software-vCPU cases run everywhere.
 */
#include "mig_test.h"

static struct mt_cfg soft_cfg(uint64_t mem_mib, uint64_t dma_mib)
{
	struct mt_cfg c = {
		.backend = UIOMMU_VM_SOFT,
		.mem_mib = mem_mib,
		.dma_mib = dma_mib,
		.nr_vcpus = 2,
		.wl = mt_wl(UIOMMU_WL_IDLE, 0),
		.dma = { .pattern = UIOMMU_DMADEV_IDLE },
		.warm_ms = 50,
	};

	return c;
}

static struct mt_cfg kvm_cfg(uint64_t mem_mib, uint64_t dma_mib, const char *source)
{
	struct mt_cfg c = soft_cfg(mem_mib, dma_mib);

	c.backend = UIOMMU_VM_KVM;
	c.source = source;
	return c;
}

static void need_kvm(void)
{
	if (!mt_have_kvm())
		skip();
}

static void test_idle_soft_guest_migrates_over_a_socketpair(void **state)
{
	struct mt_cfg c = soft_cfg(32, 4);

	(void)state;
	mt_run_ok(&c, "idle soft");
}

static void test_idle_kvm_guest_migrates_over_loopback_tcp(void **state)
{
	struct mt_cfg c = kvm_cfg(64, 4, NULL);

	(void)state;
	need_kvm();
	c.tcp = true;
	mt_run_ok(&c, "idle kvm tcp");
}

static void test_busy_soft_guest_migrates_at_several_rates(void **state)
{
	static const uint64_t rates[] = { 2000, 20000, 100000 };
	char what[64];

	(void)state;
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct mt_cfg c = soft_cfg(32, 4);

		c.wl = mt_wl(UIOMMU_WL_RANDOM, rates[i]);
		c.warm_ms = 100;
		snprintf(what, sizeof(what), "soft random %" PRIu64 " pages/s", rates[i]);
		mt_run_ok(&c, what);
	}
}

static void test_busy_kvm_guest_migrates_at_several_rates(void **state)
{
	static const uint64_t rates[] = { 5000, 50000 };
	char what[64];

	(void)state;
	need_kvm();
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct mt_cfg c = kvm_cfg(64, 4, NULL);

		c.wl = mt_wl(UIOMMU_WL_SEQ, rates[i]);
		c.warm_ms = 100;
		snprintf(what, sizeof(what), "kvm seq %" PRIu64 " pages/s", rates[i]);
		mt_run_ok(&c, what);
	}
}

static void test_dma_heavy_device_migrates_mid_write(void **state)
{
	struct mt_cfg c = soft_cfg(64, 32);

	(void)state;
	c.wl = mt_wl(UIOMMU_WL_HOTSET, 10000);
	c.dma = (struct uiommu_dmadev_workload){ .pattern = UIOMMU_DMADEV_MIXED,
						 .rate_bytes_per_sec = 200ull << 20 };
	c.warm_ms = 100;
	mt_run_ok(&c, "dma mixed 200 MB/s");
}

/* One busy KVM guest and a busy device per KVM dirty source. */
static void kvm_source_case(const char *source)
{
	struct mt_cfg c = kvm_cfg(64, 8, source);
	char what[64];

	need_kvm();
	c.nr_vcpus = 2;
	c.wl = mt_wl(UIOMMU_WL_RANDOM, 20000);
	c.dma = (struct uiommu_dmadev_workload){ .pattern = UIOMMU_DMADEV_NET,
						 .rate_bytes_per_sec = 20ull << 20 };
	c.warm_ms = 100;
	snprintf(what, sizeof(what), "kvm %s", source);
	mt_run_ok(&c, what);
}

static void test_kvm_log_source_migrates(void **state)
{
	(void)state;
	kvm_source_case("kvm-log");
}

static void test_kvm_clear_log_source_migrates(void **state)
{
	(void)state;
	kvm_source_case("kvm-clear-log");
}

static void test_kvm_ring_source_migrates(void **state)
{
	(void)state;
	kvm_source_case("kvm-ring");
}

static void test_soft_source_with_device_migrates_with_zstd(void **state)
{
	struct mt_cfg c = soft_cfg(32, 8);

	(void)state;
	c.wl = mt_wl(UIOMMU_WL_SEQ, 20000);
	c.dma = (struct uiommu_dmadev_workload){ .pattern = UIOMMU_DMADEV_BLOCK,
						 .rate_bytes_per_sec = 20ull << 20 };
	c.zstd = 3;
	c.tcp = true;
	c.warm_ms = 100;
	mt_run_ok(&c, "soft zstd tcp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_soft_guest_migrates_over_a_socketpair),
		cmocka_unit_test(test_idle_kvm_guest_migrates_over_loopback_tcp),
		cmocka_unit_test(test_busy_soft_guest_migrates_at_several_rates),
		cmocka_unit_test(test_busy_kvm_guest_migrates_at_several_rates),
		cmocka_unit_test(test_dma_heavy_device_migrates_mid_write),
		cmocka_unit_test(test_kvm_log_source_migrates),
		cmocka_unit_test(test_kvm_clear_log_source_migrates),
		cmocka_unit_test(test_kvm_ring_source_migrates),
		cmocka_unit_test(test_soft_source_with_device_migrates_with_zstd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
