/* SPDX-License-Identifier: MIT */
/*
 * The VM on KVM: the cases both backends share (vm_cases.h), plus what only
 * KVM has: the info the KVM dirty sources need, the dirty ring and its
 * ring-full exits, vCPU state that goes through KVM and comes back the same,
 * and the cost of dirty logging on this machine (printed). Exits 77 (skip)
 * without a usable /dev/kvm.
 */
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include <uiommu/log.h>

#include "vm_cases.h"
#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"

static void test_kvm_info_exposes_slot_ring_and_manual_protect(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(2, 64);
	struct uiommu_vm_kvm_info info;
	struct uiommu_vm *vm;

	(void)state;
	cfg.dirty_ring_entries = 4096;
	cfg.manual_protect = true;
	vm = vm_new_cfg(&cfg);
	assert_int_equal(uiommu_vm_kvm_info(vm, &info), 0);
	assert_true(info.vm_fd >= 0);
	assert_true(info.slot == 0 && info.gpa == 0 && info.bytes == 64 * MiB);
	assert_ptr_equal(info.host, uiommu_vm_mem(vm));
	assert_true(info.manual_protect);
	assert_int_equal(info.nr_vcpus, 2);
	assert_int_equal(info.ring_entries, 4096);
	assert_non_null(info.rings[0]);
	assert_non_null(info.rings[1]);
	assert_null(info.rings[2]);
	uiommu_vm_destroy(vm);
	cfg = vm_cfg(1, 64);
	vm = vm_new_cfg(&cfg);
	assert_int_equal(uiommu_vm_kvm_info(vm, &info), 0);
	assert_true(!info.manual_protect && !info.ring_entries && !info.rings[0]);
	uiommu_vm_destroy(vm);
	cfg.dirty_ring_entries = 1000;
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
}

static int set_slot_logging(struct uiommu_vm_kvm_info *info, bool on)
{
	struct kvm_userspace_memory_region r = {
		.slot = info->slot,
		.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = info->gpa,
		.memory_size = info->bytes,
		.userspace_addr = (uint64_t)(uintptr_t)info->host,
	};

	return ioctl(info->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

/* A minimal ring collector: what the kvm-ring source does, for this test. */
struct ring_harvest {
	struct uiommu_vm_kvm_info info;
	uint32_t next[UIOMMU_VM_MAX_VCPUS];
	uint64_t *pages; /* bit per guest page, atomic */
	_Atomic uint64_t calls;
};

static void ring_collect(struct ring_harvest *h, unsigned int vcpu)
{
	struct kvm_dirty_gfn *ring = h->info.rings[vcpu], *e;
	uint32_t mask = h->info.ring_entries - 1;

	for (;; h->next[vcpu]++) {
		e = &ring[h->next[vcpu] & mask];
		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		__atomic_fetch_or(&h->pages[e->offset / 64], 1ull << (e->offset % 64),
				  __ATOMIC_RELAXED);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
	}
	assert_true(ioctl(h->info.vm_fd, KVM_RESET_DIRTY_RINGS, 0) >= 0);
}

static void on_ring_full(void *opaque, unsigned int vcpu)
{
	struct ring_harvest *h = opaque;

	atomic_fetch_add(&h->calls, 1);
	ring_collect(h, vcpu);
}

static void test_ring_full_exits_call_back_and_the_guest_goes_on(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(1, 64);
	struct ring_harvest *h = calloc(1, sizeof(*h));
	uint64_t *log, p;
	struct uiommu_vm *vm;
	struct region w;

	(void)state;
	assert_non_null(h);
	h->pages = calloc(64 * MiB / PG / 64, 8);
	cfg.dirty_ring_entries = 1024;
	cfg.ring_full = on_ring_full;
	cfg.ring_full_opaque = h;
	vm = vm_new_cfg(&cfg);
	w = work_region(vm);
	log = log_alloc(vm);
	assert_int_equal(uiommu_vm_kvm_info(vm, &h->info), 0);
	assert_int_equal(set_slot_logging(&h->info, true), 0);
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	wait_pages(vm, 8000, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	ring_collect(h, 0);
	assert_int_equal(uiommu_vm_take_write_log(vm, log), 0);
	assert_true(vm_stats(vm).ring_full_exits >= 4);
	assert_int_equal(vm_stats(vm).ring_full_exits, atomic_load(&h->calls));
	for (p = 0; p < w.pages; p++)
		if (bit_test(log, p))
			assert_true(bit_test(h->pages, w.gpa / PG + p));
	assert_int_equal(vm_stats(vm).unexpected_exits, 0);
	uiommu_vm_destroy(vm);
	free(log);
	free(h->pages);
	free(h);
}

/* Decodes a blob of @vm's for comparison. */
static struct vm_state *decode(struct uiommu_vm *vm, const void *blob, uint64_t len)
{
	struct vm_state *st = calloc(1, sizeof(*st));

	assert_non_null(st);
	assert_int_equal(vm_state_decode(vm, blob, len, st), 0);
	return st;
}

static void assert_same_kvm_state(const struct kvm_vcpu_state *a, const struct kvm_vcpu_state *b)
{
	assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
	assert_memory_equal(&a->sregs, &b->sregs, sizeof(a->sregs));
	assert_memory_equal(&a->xcrs, &b->xcrs, sizeof(a->xcrs));
	assert_memory_equal(&a->debugregs, &b->debugregs, sizeof(a->debugregs));
	assert_memory_equal(&a->events, &b->events, sizeof(a->events));
	assert_int_equal(a->xsave_len, b->xsave_len);
	assert_memory_equal(a->xsave, b->xsave, a->xsave_len);
	assert_int_equal(a->nr_msrs, b->nr_msrs);
	for (uint32_t i = 0; i < a->nr_msrs; i++) {
		assert_int_equal(a->msrs[i].index, b->msrs[i].index);
		if (a->msrs[i].index != 0x10) /* the TSC runs on */
			assert_int_equal(a->msrs[i].data, b->msrs[i].data);
	}
}

/* What is saved, restored into a fresh VM and saved again is what was saved. */
static void test_kvm_state_survives_a_round_trip_through_kvm(void **state)
{
	struct uiommu_vm *src = vm_new(2, 64), *dst;
	struct vm_state *a, *b;
	uint64_t len, len2;
	void *blob, *blob2;

	(void)state;
	vm_run(src, UIOMMU_WL_RANDOM, 0);
	wait_pages(src, 4000, 15);
	assert_int_equal(uiommu_vm_pause(src), 0);
	assert_int_equal(uiommu_vm_save_vcpus(src, &blob, &len), 0);
	dst = vm_clone(src, blob, len);
	assert_int_equal(uiommu_vm_save_vcpus(dst, &blob2, &len2), 0);
	assert_int_equal(len, len2);
	a = decode(src, blob, len);
	b = decode(dst, blob2, len2);
	assert_memory_equal(&a->cmd, &b->cmd, sizeof(a->cmd));
	for (unsigned int i = 0; i < 2; i++) {
		assert_memory_equal(&a->vcpu[i].host, &b->vcpu[i].host, sizeof(a->vcpu[i].host));
		assert_same_kvm_state(&a->vcpu[i].kvm, &b->vcpu[i].kvm);
	}
	/* The guest is at CPL3, and rip is past the port exit it made. */
	assert_int_equal(a->vcpu[0].kvm.sregs.cs.dpl, 3);
	free(a);
	free(b);
	free(blob);
	free(blob2);
	uiommu_vm_destroy(dst);
	uiommu_vm_destroy(src);
}

/* A VM much larger than the fixed system area: the tables grow, the guest runs. */
static void test_large_vm_grows_its_system_area(void **state)
{
	struct uiommu_vm *vm = vm_new(1, 8192);
	struct region w = work_region(vm);
	uint64_t *log = log_alloc(vm);

	(void)state;
	assert_true(w.gpa > UIOMMU_VM_SYS_BYTES && w.gpa % (2 * MiB) == 0);
	assert_int_equal(w.gpa + w.bytes, 8192 * MiB);
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	wait_pages(vm, 3000, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	assert_int_equal(uiommu_vm_take_write_log(vm, log), 0);
	assert_true(bit_test(log, 0) && bit_test(log, 2999));
	assert_true(uiommu_vm_page_check(vm_page(vm, w.gpa), w.gpa));
	assert_int_equal(page_word(vm_page(vm, w.gpa + 2999 * PG), 0), w.gpa + 2999 * PG);
	free(log);
	uiommu_vm_destroy(vm);
}

static void capture_log(void *opaque, enum uiommu_log_level level, const char *msg)
{
	(void)level;
	snprintf(opaque, 256, "%s", msg);
}

/*
 * A page fault at CPL3 goes through the IDT (and the TSS's kernel stack) to
 * the exception stub, which reports it through a port exit: counted, logged,
 * and the vCPU stops; the VM can still be paused, resumed and destroyed.
 */
static void test_guest_exception_is_reported_and_stops_the_vcpu(void **state)
{
	struct uiommu_vm *vm = vm_new(1, 64);
	uint64_t ctl = layout_ctl(&vm->lay, 0) + CTL_SLICE_GPA;
	static char msg[256];
	double end;

	(void)state;
	uiommu_set_log_fn(capture_log, msg, UIOMMU_LOG_ERR);
	vm_go_idle(vm);
	/* The slice now starts at 1 TiB, which the page tables do not map. */
	memcpy(vm_page(vm, ctl), &(uint64_t){1ull << 40}, 8);
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	for (end = now_s() + 10; !vm_stats(vm).unexpected_exits && now_s() < end;)
		sleep_ms(5);
	assert_int_equal(vm_stats(vm).unexpected_exits, 1);
	assert_non_null(strstr(msg, "guest exception 14"));
	assert_int_equal(vm_stats(vm).pages_written, 0);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	assert_int_equal(uiommu_vm_resume(vm), 0);
	uiommu_set_log_fn(NULL, NULL, UIOMMU_LOG_ERR);
	uiommu_vm_destroy(vm);
}

/* Pages per second of the VM over @ms. */
static double rate_over(struct uiommu_vm *vm, unsigned int ms)
{
	uint64_t p0 = vm_stats(vm).pages_written;
	double t0 = now_s();

	sleep_ms(ms);
	return (double)(vm_stats(vm).pages_written - p0) / (now_s() - t0);
}

/*
 * What dirty logging costs the guest here: one vCPU sweeping 62 MiB, warm,
 * without logging, then with the slot logged and KVM_GET_DIRTY_LOG every
 * 20 ms (each call write-protects the pages again). Printed, not judged.
 */
static void test_kvm_write_rate_with_and_without_dirty_logging(void **state)
{
	struct uiommu_vm *vm = vm_new(1, 64);
	struct uiommu_vm_kvm_info info;
	struct kvm_dirty_log dl = {.slot = 0};
	uint64_t *bitmap = calloc(64 * MiB / PG / 64, 8);
	struct uiommu_vm_stats st;
	double plain, logged, t0;

	(void)state;
	assert_int_equal(uiommu_vm_kvm_info(vm, &info), 0);
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	wait_pages(vm, 2 * work_region(vm).pages, 15);
	plain = rate_over(vm, 400);
	assert_int_equal(set_slot_logging(&info, true), 0);
	dl.dirty_bitmap = bitmap;
	st = vm_stats(vm);
	t0 = now_s();
	for (int i = 0; i < 20; i++) {
		sleep_ms(20);
		assert_int_equal(ioctl(info.vm_fd, KVM_GET_DIRTY_LOG, &dl), 0);
	}
	logged = (double)(vm_stats(vm).pages_written - st.pages_written) / (now_s() - t0);
	print_message("KVM vCPU at CPL3: %.0f pages/s (%.2f us/page) without dirty logging, "
		      "%.0f pages/s (%.2f us/page) with it\n",
		      plain, 1e6 / plain, logged, 1e6 / logged);
	assert_true(plain > 0 && logged > 0);
	free(bitmap);
	uiommu_vm_destroy(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		VM_CASES,
		cmocka_unit_test(test_kvm_info_exposes_slot_ring_and_manual_protect),
		cmocka_unit_test(test_ring_full_exits_call_back_and_the_guest_goes_on),
		cmocka_unit_test(test_kvm_state_survives_a_round_trip_through_kvm),
		cmocka_unit_test(test_large_vm_grows_its_system_area),
		cmocka_unit_test(test_guest_exception_is_reported_and_stops_the_vcpu),
		cmocka_unit_test(test_kvm_write_rate_with_and_without_dirty_logging),
	};

	if (!uiommu_kvm_available())
		return 77;
	backend = UIOMMU_VM_KVM;
	return cmocka_run_group_tests_name("vm_kvm", tests, NULL, NULL);
}
