/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine to migrate: guest RAM in a memfd, 1-N vCPUs running a
 * guest workload, either on KVM (64-bit long mode, the workload at CPL3) or
 * as software vCPUs (threads writing guest RAM the same way, for machines
 * without /dev/kvm; labelled "software vCPUs" in every report, see
 * uiommu_vm_backend_label()).
 *
 * Guest physical memory is one range [0, mem_bytes) backed by the memfd at
 * offset 0, so the same memory can be mapped into an IOAS at IOVA = GPA and,
 * on a receiver, filled from a stream. Layout: first the system area (the
 * guest program, its page tables, GDT/IDT/TSSs, per-vCPU control blocks and
 * stacks, the per-page generation table and the guest-side write log); it is
 * UIOMMU_VM_SYS_BYTES long unless the VM is so large that its tables need
 * more (then it grows in 2 MiB steps: use uiommu_vm_work_region(), never
 * the constant, to find the work region). Then the vCPU work region (split
 * into one slice per vCPU, vCPU i owning work pages [W*i/n, W*(i+1)/n));
 * then the DMA region that the emulated device writes (dma_bytes, may be 0).
 *
 * Every page the guest workload writes carries self-checking content:
 *   word 0 = its GPA, word 1 = its generation g (how often the workload
 *   wrote it: 1, 2, ...), word i (2..511) = x + i * 0x165667b19e3779f9 with
 *   x = gpa * 0x9e3779b97f4a7c15 ^ g * 0xc2b2ae3d27d4eb4f (mod 2^64).
 * A work page never written is all zero (generation 0). The guest keeps the
 * generation of every work page in a table in the system area, so VERIFY
 * (run by the guest itself) finds pages that are stale (older generation
 * than the table says), torn (words of two generations) or misplaced (word
 * 0 is another GPA). uiommu_vm_page_check() applies the same rules.
 *
 * The KVM backend kicks vCPU threads out of KVM_RUN with the signal
 * SIGRTMIN + 6, for which it installs an empty handler (no SA_RESTART).
 */
#ifndef UIOMMU_VM_H
#define UIOMMU_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

#define UIOMMU_VM_PAGE_SIZE 4096ull
#define UIOMMU_VM_SYS_BYTES (2ull << 20) /* system area at GPA 0: its smallest size */
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

/*
 * Called after a write to guest memory [gpa, gpa + len) that no KVM dirty
 * log sees: by the VMM itself (vmm_write) or by a software vCPU
 * (soft_write). Called after the bytes are written (so a collector that
 * clears its log and then copies the page cannot miss the new content),
 * possibly from several threads at once and with VM locks held (it must
 * not call uiommu_vm_* functions).
 */
typedef void (*uiommu_vm_write_fn)(void *opaque, uint64_t gpa, uint64_t len);

struct uiommu_vm_cfg {
	uint64_t mem_bytes;    /* whole guest RAM incl. system area; multiple of 2 MiB */
	uint64_t dma_bytes;    /* DMA region at the top of RAM; multiple of 2 MiB */
	unsigned int nr_vcpus; /* 1..UIOMMU_VM_MAX_VCPUS */
	enum uiommu_vm_backend backend;
	/*
	 * Receiver: no program loaded; the VM is created paused and runs once
	 * its memory was filled and uiommu_vm_restore_vcpus() succeeded.
	 */
	bool incoming;
	/*
	 * KVM dirty tracking set-up that must happen before vCPUs exist
	 * (software vCPUs ignore it). The ring is enabled with
	 * KVM_CAP_DIRTY_LOG_RING_ACQ_REL, or KVM_CAP_DIRTY_LOG_RING where only
	 * that exists; -EINVAL if not a power of two, KVM's error otherwise.
	 */
	uint32_t dirty_ring_entries; /* 0: no dirty ring; else a power of two */
	/*
	 * Enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with MANUAL_PROTECT_ENABLE
	 * only: KVM_DIRTY_LOG_INITIALLY_SET is NOT set, so the first
	 * KVM_GET_DIRTY_LOG after logging is turned on reports written pages,
	 * not every page.
	 */
	bool manual_protect;
	/*
	 * NULL: a vCPU whose ring is full waits 1 ms at a time (counted in
	 * ring_full_exits) until someone resets the rings.
	 */
	uiommu_vm_ring_full_fn ring_full;
	void *ring_full_opaque;
	/*
	 * Writes the VMM makes to guest memory (program and tables at create,
	 * control blocks on every workload switch, write-log clears, restores).
	 */
	uiommu_vm_write_fn vmm_write;
	void *vmm_write_opaque;
	/* Writes of software vCPUs: every page, generation-table and write-log write. */
	uiommu_vm_write_fn soft_write;
	void *soft_write_opaque;
};

UIOMMU_EXPORT int uiommu_vm_create(const struct uiommu_vm_cfg *cfg, struct uiommu_vm **out);
/* Stops the vCPUs if running; never fails. */
UIOMMU_EXPORT void uiommu_vm_destroy(struct uiommu_vm *vm);

UIOMMU_EXPORT void *uiommu_vm_mem(struct uiommu_vm *vm);
UIOMMU_EXPORT int uiommu_vm_mem_fd(struct uiommu_vm *vm);
UIOMMU_EXPORT uint64_t uiommu_vm_mem_bytes(struct uiommu_vm *vm);
UIOMMU_EXPORT enum uiommu_vm_backend uiommu_vm_backend(struct uiommu_vm *vm);
/* "KVM vCPUs" or "software vCPUs": how to label the VM in reports. */
UIOMMU_EXPORT const char *uiommu_vm_backend_label(struct uiommu_vm *vm);
UIOMMU_EXPORT unsigned int uiommu_vm_nr_vcpus(struct uiommu_vm *vm);
/* [gpa, gpa + bytes) of the vCPU work region and of the DMA region. */
UIOMMU_EXPORT void uiommu_vm_work_region(struct uiommu_vm *vm, uint64_t *gpa, uint64_t *bytes);
UIOMMU_EXPORT void uiommu_vm_dma_region(struct uiommu_vm *vm, uint64_t *gpa, uint64_t *bytes);

/*
 * Runs @wl on every vCPU (threads are started on the first call). Calling it
 * again switches workload at the guest's next control exit. -EBUSY while
 * paused, -EINVAL for an unknown kind or a HOTSET with hot_pages_pct not in
 * 1..100 or hot_writes_pct above 100, -ESHUTDOWN after stop.
 *
 * Rate: the host gives every vCPU pages_per_sec / nr_vcpus and chooses how
 * many pages the guest writes between control exits so that exits come
 * every ~0.5 ms at that rate (at most 4096 pages; 4096 when unlimited). At
 * each control exit it sleeps as a token bucket requires (10 ms of credit at
 * most); the sleep counts as stall.
 */
UIOMMU_EXPORT int uiommu_vm_start(struct uiommu_vm *vm, const struct uiommu_workload *wl);
/*
 * The workload last started, or restored with the vCPU state (IDLE before
 * either). A HOTSET's percentages are 0 for the other kinds.
 */
UIOMMU_EXPORT void uiommu_vm_get_workload(struct uiommu_vm *vm, struct uiommu_workload *wl);
/*
 * Pause: every vCPU out of the guest and parked, vCPU state stable (a KVM
 * vCPU's pending port exit is completed first). Pausing a paused VM is a
 * no-op. Resume undoes it, and starts the vCPU threads if they never ran
 * (an incoming VM after its restore); resuming an incoming VM before a
 * successful restore is -EINVAL. Both are -ESHUTDOWN after stop.
 */
UIOMMU_EXPORT int uiommu_vm_pause(struct uiommu_vm *vm);
UIOMMU_EXPORT int uiommu_vm_resume(struct uiommu_vm *vm);
/* Stops and joins the vCPU threads (destroy does it too). */
UIOMMU_EXPORT void uiommu_vm_stop(struct uiommu_vm *vm);

/*
 * Throttle: hold the vCPUs back this fraction of the time (0 <= f < 1, else
 * -EINVAL). At each control exit a vCPU that ran t since it entered the
 * guest sleeps t * f / (1 - f) (or the rate limit's sleep, the longer). A
 * rate limit is scaled by (1 - f): the rate is what the workload makes of a
 * whole vCPU, and the throttle leaves it only 1 - f of one. The sleep counts
 * as stall, the throttle's share of it also as throttle_ns.
 */
UIOMMU_EXPORT int uiommu_vm_set_throttle(struct uiommu_vm *vm, double fraction);

struct uiommu_vm_stats {
	uint64_t pages_written; /* by the guest workload, all vCPUs */
	uint64_t exits;         /* port exits: control (rate accounting), idle, verify */
	uint64_t stall_ns;      /* time vCPUs were held back (rate limit + throttle) */
	uint64_t throttle_ns;   /* of that, the throttle's share (not migrated) */
	uint64_t ring_full_exits;
	uint64_t verified_pages, bad_pages; /* from the last VERIFY workload */
	bool verify_done;       /* every vCPU finished its VERIFY pass */
	/*
	 * Exits nothing explains (a guest exception, shutdown, internal error):
	 * the vCPU stops running and the reason goes to the library log.
	 */
	uint64_t unexpected_exits;
};
UIOMMU_EXPORT void uiommu_vm_get_stats(struct uiommu_vm *vm, struct uiommu_vm_stats *st);
/* The same for one vCPU (verify_done: that vCPU finished); -EINVAL for a bad index. */
UIOMMU_EXPORT int uiommu_vm_get_vcpu_stats(struct uiommu_vm *vm, unsigned int vcpu,
					   struct uiommu_vm_stats *st);

/*
 * Guest-side write log: bit k set when the guest workload wrote work page k
 * (page k of the work region) since the last call; read and cleared. For tests
 * that check dirty sources against what the guest says it wrote. @bits has
 * room for work_bytes / 4096 bits. The log lives in guest memory; the guest
 * sets bits with locked instructions and this call takes whole words with
 * atomic exchanges, so a bit set concurrently is reported now or by the next
 * call, never lost. The log pages it clears are reported through vmm_write.
 *
 * A page write is: generation-table word, then the content, then the log
 * bit (so a page in the log has its content in memory). A KVM vCPU can be
 * paused anywhere, so a paused VM may hold, per KVM vCPU, one page whose
 * write is in flight (changed, maybe partly, but not yet logged); the write
 * completes when the vCPU runs again (on this VM or, after a migration, on
 * the destination). Software vCPUs pause between page writes.
 */
UIOMMU_EXPORT int uiommu_vm_take_write_log(struct uiommu_vm *vm, uint64_t *bits);

/*
 * vCPU state: everything a guest needs to resume on another VM. Encoded as a
 * versioned, self-describing blob so it can travel in the migration stream;
 * decode validates every length and field (untrusted input) and returns
 * -EINVAL for anything malformed. Only valid while the VM is paused (-EBUSY
 * otherwise).
 *
 * The blob (little-endian): a header (magic "UVMS", version 1, vCPU count,
 * mem_bytes, dma_bytes, total length), a VM record (the workload command),
 * then one record per vCPU, each a list of sections (tag, length, bytes):
 * KVM vCPUs (record type 2) carry regs, sregs, XSAVE (KVM_GET_XSAVE2 where
 * KVM_CAP_XSAVE2 says so), XCRs, the MSRs in use that KVM lists (TSC,
 * SYSENTER, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE, TSC_AUX, PAT,
 * MISC_ENABLE; EFER and the FS/GS bases travel in sregs), vCPU events and
 * debug registers (no in-kernel irqchip, so no LAPIC); software vCPUs
 * (record type 3) carry their workload state. Both carry the host-side
 * accounting (exits, stall, verify results) so statistics and the workload
 * continue on the destination. The blob is allocated with malloc: free() it.
 *
 * Restore decodes and validates the whole blob before changing anything; a
 * blob for another configuration (vCPU count, sizes, backend) is -EINVAL.
 * If KVM then refuses a piece of state, the error is returned and the vCPUs
 * may be partly restored.
 */
UIOMMU_EXPORT int uiommu_vm_save_vcpus(struct uiommu_vm *vm, void **blob, uint64_t *len);
UIOMMU_EXPORT int uiommu_vm_restore_vcpus(struct uiommu_vm *vm, const void *blob, uint64_t len);

/*
 * Does the 4096-byte @page hold valid workload content for @gpa: all zero,
 * or word 0 == @gpa and every word consistent with its generation (word 1)?
 * Stale pages cannot be told from the page alone: VERIFY also compares the
 * generation with the guest's table.
 */
UIOMMU_EXPORT bool uiommu_vm_page_check(const void *page, uint64_t gpa);

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
