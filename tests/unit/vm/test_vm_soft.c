/* SPDX-License-Identifier: MIT */
/*
 * The VM with software vCPUs: the cases both backends share (vm_cases.h),
 * plus what only software vCPUs do: report every write they make through
 * cfg.soft_write. Runs everywhere (no /dev/kvm needed).
 */
#include <stdatomic.h>

#include "vm_cases.h"

/* Every page whose content changed was reported, and only those work pages. */
static void test_soft_writes_are_all_reported(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(2, 64);
	struct wrote *w = wrote_new(cfg.mem_bytes);
	struct uiommu_vm *vm;
	struct region r;
	uint8_t *before;
	uint64_t p;
	bool changed;

	(void)state;
	cfg.soft_write = wrote_cb;
	cfg.soft_write_opaque = w;
	vm = vm_new_cfg(&cfg);
	r = work_region(vm);
	before = mem_snapshot(vm);
	vm_run(vm, UIOMMU_WL_HOTSET, 0);
	wait_pages(vm, 20000, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	for (p = 0; p < cfg.mem_bytes / PG; p++) {
		changed = memcmp(before + p * PG, vm_page(vm, p * PG), PG) != 0;
		if (changed)
			assert_true(wrote_test(w, p * PG));
		if (p * PG >= r.gpa)
			assert_int_equal(changed, wrote_test(w, p * PG));
	}
	free(before);
	uiommu_vm_destroy(vm);
	wrote_free(w);
}

static void test_soft_vm_has_no_kvm_info(void **state)
{
	struct uiommu_vm *vm = vm_new(1, 64);
	struct uiommu_vm_kvm_info info;

	(void)state;
	assert_int_equal(uiommu_vm_kvm_info(vm, &info), -EOPNOTSUPP);
	uiommu_vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VM_CASES,
		cmocka_unit_test(test_soft_writes_are_all_reported),
		cmocka_unit_test(test_soft_vm_has_no_kvm_info),
	};

	backend = UIOMMU_VM_SOFT;
	return cmocka_run_group_tests_name("vm_soft", tests, NULL, NULL);
}
