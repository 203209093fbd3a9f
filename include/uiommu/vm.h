/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine to migrate: guest RAM in a memfd, 1-N vCPUs running a
 * guest workload, either on KVM (64-bit long mode, the workload at CPL3) or
 * as software vCPUs (threads writing guest RAM the same way, for machines
 * without /dev/kvm; clearly labelled as such in every report).
 *
 * Guest physical memory is one range [0, mem_bytes) backed by the memfd at
 * offset 0, so the same memory can be mapped into an IOAS at IOVA = GPA and,
 * on a receiver, filled from a stream. Layout (fixed, see vm_layout below):
 * the first UIOMMU_VM_SYS_BYTES hold the guest program, its page tables,
 * stacks, a control page and the guest-side write log; then the vCPU work
 * region (split into one slice per vCPU); then the DMA region that the
 * emulated device writes (dma_bytes, may be 0).
 *
 * Every page the guest workload writes carries self-checking content (its
 * GPA, a generation and a checksum of the page) so the guest itself can
 * verify, after a migration, that no page is stale or torn.
 */
#ifndef UIOMMU_VM_H
#define UIOMMU_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

#define UIOMMU_VM_PAGE_SIZE 4096ull
#define UIOMMU_VM_SYS_BYTES (2ull << 20) /* system area at GPA 0 */
#define UIOMMU_VM_MAX_VCPUS 8

struct uiommu_vm;

enum uiommu_vm_backend {
	UIOMMU_VM_KVM,  /* KVM vCPUs; create fails with -ENODEV without /dev/kvm */
	UIOMMU_VM_SOFT, /* software vCPUs: threads writing guest RAM */
};

enum uiommu_workload_kind {
	UIOMMU_WL_IDLE,   /* the guest runs, writes nothing */
	UIOMMU_WL_SEQ,    /* sweeps its slice page by page, wrapping */
	UIOMMU_WL_RANDOM, /* uniformly random pages of its slice */
	UIOMMU_WL_HOTSET, /* hot_pages_pct % of the pages take hot_writes_pct % of writes */
	UIOMMU_WL_VERIFY, /* checks every page of its slice once, reports bad pages, idles */
};

struct uiommu_workload {
	enum uiommu_workload_kind kind;
	uint64_t pages_per_sec; /* target write rate of the whole VM; 0 = unlimited */
	uint32_t hot_pages_pct, hot_writes_pct;
	uint64_t seed;
};

/* Called on a vCPU thread when KVM reports its dirty ring full. */
typedef void (*uiommu_vm_ring_full_fn)(void *opaque, unsigned int vcpu);

struct uiommu_vm_cfg {
	uint64_t mem_bytes;    /* whole guest RAM incl. system area; multiple of 2 MiB */
	uint64_t dma_bytes;    /* DMA region at the top of RAM; multiple of 2 MiB */
	unsigned int nr_vcpus; /* 1..UIOMMU_VM_MAX_VCPUS */
	enum uiommu_vm_backend backend;
	bool incoming;         /* receiver: no program loaded; state comes by restore */
	/* KVM dirty tracking set-up that must happen before vCPUs exist. */
	uint32_t dirty_ring_entries; /* 0: no dirty ring; else a power of two */
	bool manual_protect;         /* enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 */
	uiommu_vm_ring_full_fn ring_full;
	void *ring_full_opaque;
};

UIOMMU_EXPORT int uiommu_vm_create(const struct uiommu_vm_cfg *cfg, struct uiommu_vm **out);
/* Stops the vCPUs if running; never fails. */
UIOMMU_EXPORT void uiommu_vm_destroy(struct uiommu_vm *vm);

UIOMMU_EXPORT void *uiommu_vm_mem(struct uiommu_vm *vm);
UIOMMU_EXPORT int uiommu_vm_mem_fd(struct uiommu_vm *vm);
UIOMMU_EXPORT uint64_t uiommu_vm_mem_bytes(struct uiommu_vm *vm);
UIOMMU_EXPORT enum uiommu_vm_backend uiommu_vm_backend(struct uiommu_vm *vm);
UIOMMU_EXPORT unsigned int uiommu_vm_nr_vcpus(struct uiommu_vm *vm);
/* [gpa, gpa + bytes) of the vCPU work region and of the DMA region. */
UIOMMU_EXPORT void uiommu_vm_work_region(struct uiommu_vm *vm, uint64_t *gpa, uint64_t *bytes);
UIOMMU_EXPORT void uiommu_vm_dma_region(struct uiommu_vm *vm, uint64_t *gpa, uint64_t *bytes);

/*
 * Runs @wl on every vCPU (threads are started on the first call). Calling it
 * again switches workload at the guest's next control exit. -EBUSY while paused.
 */
UIOMMU_EXPORT int uiommu_vm_start(struct uiommu_vm *vm, const struct uiommu_workload *wl);
/* Pause: every vCPU out of the guest and parked, vCPU state stable. Resume undoes it. */
UIOMMU_EXPORT int uiommu_vm_pause(struct uiommu_vm *vm);
UIOMMU_EXPORT int uiommu_vm_resume(struct uiommu_vm *vm);
/* Stops and joins the vCPU threads (destroy does it too). */
UIOMMU_EXPORT void uiommu_vm_stop(struct uiommu_vm *vm);

/* Throttle: hold the vCPUs back this fraction of the time (0 <= f < 1). */
UIOMMU_EXPORT int uiommu_vm_set_throttle(struct uiommu_vm *vm, double fraction);

struct uiommu_vm_stats {
	uint64_t pages_written; /* by the guest workload, all vCPUs */
	uint64_t exits;         /* control exits (rate accounting points) */
	uint64_t stall_ns;      /* time vCPUs were held back (rate limit + throttle) */
	uint64_t ring_full_exits;
	uint64_t verified_pages, bad_pages; /* from the last VERIFY workload */
	bool verify_done;       /* every vCPU finished its VERIFY pass */
};
UIOMMU_EXPORT void uiommu_vm_get_stats(struct uiommu_vm *vm, struct uiommu_vm_stats *st);

/*
 * Guest-side write log: bit k set when the guest workload wrote work page k
 * (page k of the work region) since the last call; read and cleared. For tests
 * that check dirty sources against what the guest says it wrote. @bits has
 * room for work_bytes / 4096 bits.
 */
UIOMMU_EXPORT int uiommu_vm_take_write_log(struct uiommu_vm *vm, uint64_t *bits);

/*
 * vCPU state: everything a guest needs to resume on another VM. Encoded as a
 * versioned, self-describing blob so it can travel in the migration stream;
 * decode validates every length and field (untrusted input) and returns
 * -EINVAL for anything malformed. Only valid while the VM is paused.
 */
UIOMMU_EXPORT int uiommu_vm_save_vcpus(struct uiommu_vm *vm, void **blob, uint64_t *len);
UIOMMU_EXPORT int uiommu_vm_restore_vcpus(struct uiommu_vm *vm, const void *blob, uint64_t len);

/*
 * What KVM dirty sources need (src/vm/src_kvm.c). Filled only for the KVM
 * backend (-EOPNOTSUPP otherwise). The slot covers all of guest RAM.
 */
struct uiommu_vm_kvm_info {
	int vm_fd;
	uint32_t slot;           /* memslot id in address space 0 */
	uint64_t gpa, bytes;     /* == 0, mem_bytes */
	void *host;              /* userspace_addr of the slot */
	bool manual_protect;     /* cfg.manual_protect took effect */
	unsigned int nr_vcpus;
	uint32_t ring_entries;   /* 0 without a dirty ring */
	void *rings[UIOMMU_VM_MAX_VCPUS]; /* mmapped struct kvm_dirty_gfn arrays */
};
UIOMMU_EXPORT int uiommu_vm_kvm_info(struct uiommu_vm *vm, struct uiommu_vm_kvm_info *info);

/* Is /dev/kvm usable here? (Tests that need it exit 77 when not.) */
UIOMMU_EXPORT bool uiommu_kvm_available(void);

UIOMMU_END_DECLS

#endif
