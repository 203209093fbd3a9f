/* SPDX-License-Identifier: MIT */
/*
 * A minimal raw KVM VM for the dirty-source tests and benchmark, independent
 * of the VM module: one memslot (slot 0 at GPA 0, memfd-backed, logging off
 * until a source turns it on), optionally a second logged slot right after it,
 * and one vCPU in 32-bit flat protected mode without paging (segments loaded
 * through KVM_SET_SREGS, no GDT needed) running this loop at GPA 0x1000:
 *
 *   loop: mov ebx, [esi]     8b 1e      next page address from the table
 *         cmp ebx, -1        83 fb ff   end of the table?
 *         je done            74 0e
 *         mov [ebx], bl      88 1b      one byte into the page
 *         add esi, 4         83 c6 04
 *         dec ecx            49
 *         jnz loop           75 f1
 *         out 0x80, al       e6 80      an exit to the host every edi pages
 *         mov ecx, edi       89 f9
 *         jmp loop           eb eb
 *   done: hlt                f4
 *
 * Why the port write: this host (nested PVM) emulates this guest (~0.5 us per
 * instruction), and KVM logs emulated writes to mapped pages without checking
 * for a soft-full dirty ring between them, so a guest that never exits pushes
 * past the ring's 64 reserved entries and KVM overwrites entries nobody
 * harvested (seen: 300 writes into a 256-entry ring, 256 entries left). An
 * exit to user space every exit_every pages (default 32, fewer than the
 * reserve) makes KVM look at the request. The VM module's CPL3 guest runs
 * natively and is stopped in time without this.
 *
 * KVM_EXIT_DIRTY_RING_FULL is handled as the VM module does: the ring_full
 * callback, uiommu_kvm_ring_full(&vm->link, 0), then KVM_RUN again (a run
 * fails with -ELOOP after ring_full_limit of them, if set: a callback that
 * leaves KVM's ring full would otherwise bounce the vCPU forever); a port
 * exit just runs again.
 */
#ifndef UIOMMU_TEST_RAWVM_H
#define UIOMMU_TEST_RAWVM_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <uiommu/vm.h>
#include <uiommu/vm_sources.h>

#define RAWVM_PG 4096ull
#define RAWVM_CODE_GPA 0x1000ull
#define RAWVM_TABLE_GPA 0x10000ull

struct rawvm_cfg {
	uint64_t bytes;         /* slot 0; multiple of 4 KiB */
	uint64_t table_entries; /* most pages one run writes; default 16 Ki */
	bool manual_protect;
	bool initially_set;
	uint32_t ring_entries;  /* 0: no dirty ring */
	uint64_t extra_slot_bytes; /* slot 1 at GPA bytes, always logging; 0: none */
	uint32_t exit_every;    /* pages between port exits; 0: 32 */
};

struct rawvm {
	int kvm, vm, vcpu, memfd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	uint64_t bytes;
	uint8_t *extra;
	uint64_t extra_bytes;
	void *ring;
	size_t ring_bytes;
	uint64_t table_entries;
	uint64_t first_data_page; /* the first page a run may write */
	uint32_t exit_every;      /* may be changed between runs; UINT32_MAX: never */
	struct uiommu_vm_kvm_info info;
	struct uiommu_kvm_ring_link link;
	uint64_t ring_full_exits;
	uint64_t ring_full_ns; /* time spent in the ring_full callback */
	/* Most ring-full exits one run may take (0: no limit): a wedged ring fails the run. */
	uint64_t ring_full_limit;
	uint64_t port_exits;
};

static const uint8_t rawvm_code[] = {
	0x8b, 0x1e, 0x83, 0xfb, 0xff, 0x74, 0x0e, 0x88, 0x1b, 0x83, 0xc6,
	0x04, 0x49, 0x75, 0xf1, 0xe6, 0x80, 0x89, 0xf9, 0xeb, 0xeb, 0xf4,
};

static inline uint64_t rawvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int rawvm_errno(long rc)
{
	return rc < 0 ? -errno : 0;
}

static inline int rawvm_enable_cap(struct rawvm *vm, uint32_t cap, uint64_t arg)
{
	struct kvm_enable_cap c = { .cap = cap, .args = { arg } };

	return rawvm_errno(ioctl(vm->vm, KVM_ENABLE_CAP, &c));
}

static inline int rawvm_set_slot(struct rawvm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
				 void *host, uint64_t bytes)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = bytes,
		.userspace_addr = (uintptr_t)host,
	};

	return rawvm_errno(ioctl(vm->vm, KVM_SET_USER_MEMORY_REGION, &r));
}

static inline int rawvm_map_memory(struct rawvm *vm)
{
	vm->memfd = memfd_create("rawvm", MFD_CLOEXEC);
	if (vm->memfd < 0 || ftruncate(vm->memfd, (off_t)vm->bytes))
		return -errno;
	vm->mem = mmap(NULL, vm->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vm->memfd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return -errno;
	}
	memcpy(vm->mem + RAWVM_CODE_GPA, rawvm_code, sizeof(rawvm_code));
	if (!vm->extra_bytes)
		return rawvm_set_slot(vm, 0, 0, 0, vm->mem, vm->bytes);
	vm->extra = mmap(NULL, vm->extra_bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->extra == MAP_FAILED) {
		vm->extra = NULL;
		return -errno;
	}
	if (rawvm_set_slot(vm, 1, KVM_MEM_LOG_DIRTY_PAGES, vm->bytes, vm->extra, vm->extra_bytes))
		return -errno;
	return rawvm_set_slot(vm, 0, 0, 0, vm->mem, vm->bytes);
}

static inline int rawvm_dirty_caps(struct rawvm *vm, const struct rawvm_cfg *cfg)
{
	uint64_t mp = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
		      (cfg->initially_set ? KVM_DIRTY_LOG_INITIALLY_SET : 0);
	int rc = 0;

	if (cfg->manual_protect)
		rc = rawvm_enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, mp);
	if (!rc && cfg->ring_entries)
		rc = rawvm_enable_cap(vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
				      (uint64_t)cfg->ring_entries * sizeof(struct kvm_dirty_gfn));
	return rc;
}

/* 32-bit flat protected mode, CPL0, no paging. */
static inline int rawvm_vcpu_mode(struct rawvm *vm)
{
	struct kvm_segment cs = {
		.limit = 0xffffffff, .selector = 8, .type = 0xb, .present = 1, .db = 1, .s = 1,
		.g = 1,
	};
	struct kvm_segment ds = cs;
	struct kvm_sregs s;

	if (ioctl(vm->vcpu, KVM_GET_SREGS, &s))
		return -errno;
	ds.selector = 0x10;
	ds.type = 0x3;
	s.cs = cs;
	s.ds = s.es = s.ss = s.fs = s.gs = ds;
	s.cr0 |= 1;
	return rawvm_errno(ioctl(vm->vcpu, KVM_SET_SREGS, &s));
}

static inline int rawvm_vcpu(struct rawvm *vm)
{
	long mmap_size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);

	vm->vcpu = (int)ioctl(vm->vm, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0 || mmap_size <= 0)
		return -errno;
	vm->run_size = (size_t)mmap_size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		return -errno;
	}
	if (vm->ring_bytes) {
		vm->ring = mmap(NULL, vm->ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu,
				KVM_DIRTY_LOG_PAGE_OFFSET * (off_t)RAWVM_PG);
		if (vm->ring == MAP_FAILED) {
			vm->ring = NULL;
			return -errno;
		}
	}
	return rawvm_vcpu_mode(vm);
}

static inline void rawvm_fill_info(struct rawvm *vm, const struct rawvm_cfg *cfg)
{
	vm->info = (struct uiommu_vm_kvm_info){
		.vm_fd = vm->vm,
		.slot = 0,
		.gpa = 0,
		.bytes = vm->bytes,
		.host = vm->mem,
		.manual_protect = cfg->manual_protect,
		.nr_vcpus = 1,
		.ring_entries = cfg->ring_entries,
	};
	vm->info.rings[0] = vm->ring;
}

static inline void rawvm_destroy(struct rawvm *vm)
{
	if (vm->ring)
		munmap(vm->ring, vm->ring_bytes);
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu >= 0)
		close(vm->vcpu);
	if (vm->vm >= 0)
		close(vm->vm);
	if (vm->kvm >= 0)
		close(vm->kvm);
	if (vm->mem)
		munmap(vm->mem, vm->bytes);
	if (vm->extra)
		munmap(vm->extra, vm->extra_bytes);
	if (vm->memfd >= 0)
		close(vm->memfd);
	memset(vm, 0, sizeof(*vm));
	vm->kvm = vm->vm = vm->vcpu = vm->memfd = -1;
}

/* 0 or a negative errno; on failure everything is undone. */
static inline int rawvm_create(struct rawvm *vm, const struct rawvm_cfg *cfg)
{
	int rc;

	memset(vm, 0, sizeof(*vm));
	vm->kvm = vm->vm = vm->vcpu = vm->memfd = -1;
	vm->bytes = cfg->bytes;
	vm->extra_bytes = cfg->extra_slot_bytes;
	vm->table_entries = cfg->table_entries ? cfg->table_entries : 16384;
	vm->exit_every = cfg->exit_every ? cfg->exit_every : 32;
	vm->first_data_page = (RAWVM_TABLE_GPA + (vm->table_entries + 1) * 4 + RAWVM_PG - 1) /
			      RAWVM_PG;
	vm->ring_bytes = (size_t)cfg->ring_entries * sizeof(struct kvm_dirty_gfn);
	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	vm->vm = vm->kvm < 0 ? -1 : (int)ioctl(vm->kvm, KVM_CREATE_VM, 0);
	rc = vm->vm < 0 ? -errno : rawvm_dirty_caps(vm, cfg);
	if (!rc)
		rc = rawvm_map_memory(vm);
	if (!rc)
		rc = rawvm_vcpu(vm);
	if (rc) {
		rawvm_destroy(vm);
		return rc;
	}
	rawvm_fill_info(vm, cfg);
	return 0;
}

/* Runs the guest until it halts, handling ring-full exits. */
static inline int rawvm_run(struct rawvm *vm)
{
	struct kvm_regs regs = {
		.rip = RAWVM_CODE_GPA,
		.rsi = RAWVM_TABLE_GPA,
		.rcx = vm->exit_every,
		.rdi = vm->exit_every,
		.rflags = 2,
	};

	uint64_t ring_full_at_start = vm->ring_full_exits;

	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs))
		return -errno;
	for (;;) {
		if (ioctl(vm->vcpu, KVM_RUN, 0)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (vm->run->exit_reason == KVM_EXIT_HLT)
			return 0;
		if (vm->run->exit_reason == KVM_EXIT_IO) {
			vm->port_exits++;
			continue;
		}
		if (vm->run->exit_reason != KVM_EXIT_DIRTY_RING_FULL)
			return -EIO;
		if (vm->ring_full_limit && vm->ring_full_exits - ring_full_at_start >= vm->ring_full_limit)
			return -ELOOP;
		vm->ring_full_exits++;
		vm->ring_full_ns -= rawvm_now_ns();
		uiommu_kvm_ring_full(&vm->link, 0);
		vm->ring_full_ns += rawvm_now_ns();
	}
}

/* The guest writes one byte into each of @gpas (any GPA of either slot). */
static inline int rawvm_write_gpas(struct rawvm *vm, const uint64_t *gpas, uint64_t n)
{
	uint32_t *table = (uint32_t *)(void *)(vm->mem + RAWVM_TABLE_GPA);

	if (n > vm->table_entries)
		return -E2BIG;
	for (uint64_t i = 0; i < n; i++)
		table[i] = (uint32_t)gpas[i];
	table[n] = 0xffffffffu;
	return rawvm_run(vm);
}

/* The guest writes into each of @pages of slot 0 (page numbers, >= first_data_page). */
static inline int rawvm_write_pages(struct rawvm *vm, const uint64_t *pages, uint64_t n)
{
	uint32_t *table = (uint32_t *)(void *)(vm->mem + RAWVM_TABLE_GPA);

	if (n > vm->table_entries)
		return -E2BIG;
	for (uint64_t i = 0; i < n; i++)
		table[i] = (uint32_t)(pages[i] * RAWVM_PG + (pages[i] * 8) % RAWVM_PG);
	table[n] = 0xffffffffu;
	return rawvm_run(vm);
}

#endif
