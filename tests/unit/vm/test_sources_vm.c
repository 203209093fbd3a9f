/* SPDX-License-Identifier: MIT */
/*
 * The dirty sources on the real VM (src/vm/vm.c), against the guest-side write
 * log: a workload runs, the VM is paused, the source is collected and
 * uiommu_vm_take_write_log() says which work pages the guest wrote. Over the
 * work region they must agree, except for what the VM's contract allows: a
 * paused KVM vCPU may hold one page whose write is in flight (content written,
 * or partly, but not yet logged). So a round may report up to one page per
 * vCPU that the log has not; and the log may have, in the next round, up to
 * one page per vCPU that this round reported and the next one does not (its
 * content was complete before the pause, only the log bit came after; it may
 * also have been logged in the first round by another write, which is why
 * the excuse is "reported last round", not "reported and not logged").
 * Pages outside the work region (the guest's tables and write log, control
 * blocks) are the VM's own business and not compared.
 *
 * KVM: kvm-log, kvm-clear-log and kvm-ring (a 256-entry ring at an unlimited
 * write rate, so that ring-full exits go through the VM's ring_full callback,
 * uiommu_kvm_ring_full(), on the vCPU threads); software vCPUs: the "soft" log fed by the VM's
 * soft_write callback, with the "vmm" log fed by vmm_write beside it. The KVM
 * cases exit 77 without /dev/kvm; the software case always runs.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/vm.h>
#include <uiommu/vm_sources.h>

#define MiB (1ull << 20)
#define PG UIOMMU_VM_PAGE_SIZE
#define MEM (32 * MiB)
#define NP (MEM / PG)
#define WORDS (NP / 64)
#define VCPUS 2
#define ROUNDS 6
#define RING 256 /* small, so that ring-full exits come through the callback */

struct fixture {
	struct uiommu_vm *vm;
	struct uiommu_kvm_ring_link link;
	struct uiommu_dirty_source *src, *vmm;
	uint64_t work_first, work_pages; /* in pages */
	uint64_t prev_seen[WORDS];       /* the work pages the last round reported */
	uint64_t rounds_with_in_flight;
	uint64_t rounds_excused; /* rounds whose log had a page only the last round reported */
	uint64_t rate; /* pages per second, 0: unlimited */
};

static void vm_up(struct fixture *f, struct uiommu_vm_cfg cfg)
{
	uint64_t gpa, bytes;

	cfg.mem_bytes = MEM;
	cfg.nr_vcpus = VCPUS;
	assert_int_equal(uiommu_vm_create(&cfg, &f->vm), 0);
	uiommu_vm_work_region(f->vm, &gpa, &bytes);
	f->work_first = gpa / PG;
	f->work_pages = bytes / PG;
}

static void workload_start(struct fixture *f)
{
	struct uiommu_workload wl = { .kind = UIOMMU_WL_RANDOM, .pages_per_sec = f->rate, .seed = 7 };
	uint64_t log[WORDS];

	assert_int_equal(uiommu_dirty_source_start(f->src), 0);
	assert_int_equal(uiommu_vm_take_write_log(f->vm, log), 0); /* empty, or from before */
	assert_int_equal(uiommu_vm_start(f->vm, &wl), 0);
}

/* One round: run, pause, collect, and compare with the guest's log. */
static void round_check(struct fixture *f, unsigned int r)
{
	uint64_t got[WORDS] = { 0 }, log[WORDS] = { 0 }, seen_now[WORDS] = { 0 };
	uint64_t n = 0, only_src = 0, excused = 0;

	usleep(20000 + 10000 * r);
	assert_int_equal(uiommu_vm_pause(f->vm), 0);
	assert_int_equal(uiommu_dirty_source_collect(f->src, got, &n), 0);
	assert_int_equal(uiommu_vm_take_write_log(f->vm, log), 0);
	for (uint64_t k = 0; k < f->work_pages; k++) {
		bool logged = uiommu_bitmap_test(log, k);
		bool seen = uiommu_bitmap_test(got, f->work_first + k);

		if (seen)
			uiommu_bitmap_set(seen_now, k);
		if (seen && !logged)
			only_src++;
		else if (logged && !seen && uiommu_bitmap_test(f->prev_seen, k))
			excused++;
		else if (logged && !seen)
			fail_msg("%s round %u: work page %" PRIu64 " written, not reported",
				 f->src->name, r, k);
	}
	if (only_src > VCPUS)
		fail_msg("%s round %u: %" PRIu64 " work pages reported, not written", f->src->name,
			 r, only_src);
	if (excused > VCPUS)
		fail_msg("%s round %u: %" PRIu64 " work pages logged, reported only last round",
			 f->src->name, r, excused);
	f->rounds_with_in_flight += !!only_src;
	f->rounds_excused += !!excused;
	memcpy(f->prev_seen, seen_now, sizeof(seen_now));
	assert_true(n + VCPUS >= uiommu_bitmap_count_range(log, 0, f->work_pages - 1));
	assert_int_equal(uiommu_vm_resume(f->vm), 0);
}

static void run_rounds(struct fixture *f)
{
	workload_start(f);
	for (unsigned int r = 0; r < ROUNDS; r++)
		round_check(f, r);
	uiommu_vm_stop(f->vm);
}

/* Sources first: a KVM source's stop still uses the VM's slot and rings. */
static void fixture_fini(struct fixture *f)
{
	uiommu_dirty_source_destroy(f->src);
	uiommu_dirty_source_destroy(f->vmm);
	uiommu_vm_destroy(f->vm);
}

static void kvm_case(struct uiommu_vm_cfg cfg, const char *name, uint64_t rate)
{
	struct uiommu_vm_source_cfg scfg = { 0 };
	struct uiommu_vm_kvm_info info;
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->rate = rate;
	if (cfg.dirty_ring_entries) {
		cfg.ring_full = uiommu_kvm_ring_full;
		cfg.ring_full_opaque = &f->link;
	}
	vm_up(f, cfg);
	assert_int_equal(uiommu_vm_kvm_info(f->vm, &info), 0);
	scfg.kvm = &info;
	scfg.ring_link = &f->link;
	assert_true(uiommu_vm_source_supported(name, &scfg));
	assert_int_equal(uiommu_vm_source_create(name, &scfg, &f->src), 0);
	run_rounds(f);
	if (cfg.dirty_ring_entries) {
		struct uiommu_kvm_source_stats st;

		assert_int_equal(uiommu_kvm_source_get_stats(f->src, &st), 0);
		print_message("kvm-ring: %" PRIu64 " entries, %" PRIu64 " ring-full harvests, %" PRIu64
			      " overflows\n",
			      st.entries, st.ring_full, st.overflows);
		assert_int_equal(st.overflows, 0);
		assert_true(st.ring_full > 0);
	}
	print_message("%s: %" PRIu64 " of %d rounds had a page in flight, %" PRIu64
		      " a log bit late\n",
		      name, f->rounds_with_in_flight, ROUNDS, f->rounds_excused);
	fixture_fini(f);
	free(f);
}

static void skip_without_kvm(void)
{
	if (!uiommu_kvm_available())
		skip();
}

static void test_kvm_log_agrees_with_the_guest_write_log(void **state)
{
	(void)state;
	skip_without_kvm();
	kvm_case((struct uiommu_vm_cfg){ .backend = UIOMMU_VM_KVM }, "kvm-log", 40000);
}

static void test_kvm_clear_log_agrees_with_the_guest_write_log(void **state)
{
	(void)state;
	skip_without_kvm();
	kvm_case((struct uiommu_vm_cfg){ .backend = UIOMMU_VM_KVM, .manual_protect = true },
		 "kvm-clear-log", 40000);
}

static void test_kvm_ring_agrees_with_the_guest_write_log(void **state)
{
	(void)state;
	skip_without_kvm();
	kvm_case((struct uiommu_vm_cfg){ .backend = UIOMMU_VM_KVM, .dirty_ring_entries = RING },
		 "kvm-ring", 0);
}

static void test_soft_log_agrees_with_the_guest_write_log_and_vmm_sees_the_vmm(void **state)
{
	struct uiommu_vm_cfg cfg = { .backend = UIOMMU_VM_SOFT };
	struct fixture *f = calloc(1, sizeof(*f));
	uint64_t got[WORDS] = { 0 }, n = 0;

	(void)state;
	assert_non_null(f);
	f->rate = 40000;
	assert_int_equal(uiommu_dirty_log_source_create("soft", NP, &f->src), 0);
	assert_int_equal(uiommu_dirty_log_source_create("vmm", NP, &f->vmm), 0);
	assert_int_equal(uiommu_dirty_source_start(f->vmm), 0);
	cfg.soft_write = uiommu_dirty_log_write;
	cfg.soft_write_opaque = f->src;
	cfg.vmm_write = uiommu_dirty_log_write;
	cfg.vmm_write_opaque = f->vmm;
	vm_up(f, cfg);
	/* Creating the VM loaded its program and tables: the VMM's own writes. */
	assert_int_equal(uiommu_dirty_source_collect(f->vmm, got, &n), 0);
	assert_true(n > 0);
	run_rounds(f);
	print_message("soft: %" PRIu64 " of %d rounds had a page in flight\n",
		      f->rounds_with_in_flight, ROUNDS);
	fixture_fini(f);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvm_log_agrees_with_the_guest_write_log),
		cmocka_unit_test(test_kvm_clear_log_agrees_with_the_guest_write_log),
		cmocka_unit_test(test_kvm_ring_agrees_with_the_guest_write_log),
		cmocka_unit_test(test_soft_log_agrees_with_the_guest_write_log_and_vmm_sees_the_vmm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
