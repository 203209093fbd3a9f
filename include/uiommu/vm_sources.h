/* SPDX-License-Identifier: MIT */
/*
 * Dirty sources of a KVM guest and of its DMA device (the vm layer's
 * implementations of <uiommu/dirty_source.h>):
 *
 *  "kvm-log"        KVM_GET_DIRTY_LOG on the guest RAM slot. Each collect gets
 *                   and clears the whole slot's bitmap and write-protects what
 *                   it reports, in one ioctl. Needs a VM without a dirty ring
 *                   and without manual protect (with manual protect the ioctl
 *                   does not clear: use kvm-clear-log).
 *  "kvm-clear-log"  KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_GET_DIRTY_LOG only
 *                   copies the bitmap; then KVM_CLEAR_DIRTY_LOG clears, chunk by
 *                   chunk, exactly the bits that were reported, re-arming write
 *                   protection per chunk (clean chunks cost no ioctl). With
 *                   KVM_DIRTY_LOG_INITIALLY_SET the slot starts all dirty and
 *                   unprotected: the first collect after start reports every
 *                   page of the slot (which a first migration round sends
 *                   anyway) and its clears write-protect the slot chunk by chunk
 *                   instead of all at once at start.
 *  "kvm-ring"       per-vCPU dirty rings (KVM_CAP_DIRTY_LOG_RING_ACQ_REL):
 *                   collect harvests every ring, marks the entries reset and
 *                   calls KVM_RESET_DIRTY_RINGS; the cost follows the pages
 *                   dirtied, not the memory size. A full ring stops its vCPU
 *                   with KVM_EXIT_DIRTY_RING_FULL: the VM's ring_full callback
 *                   must then be uiommu_kvm_ring_full(), which harvests that
 *                   ring on the vCPU thread into the source's own pending bits.
 *                   With a ring KVM_GET_DIRTY_LOG is not available (-ENXIO).
 *                   On this host KVM can overflow a ring with guest code it
 *                   emulates (no soft-full check between emulated writes):
 *                   the source then finds a full lap (or, at a ring-full
 *                   exit, entries its index did not reach), reports every
 *                   page of the slot, counts an overflow and resynchronizes
 *                   with KVM's index; overwritten entries KVM still counts
 *                   are recycled, one per ring-full exit if the vCPU cannot
 *                   run otherwise. Guests that exit every < 64 first writes,
 *                   or run natively (the VM module's CPL3 guest), do not.
 *  "iommu"          the emulated IOMMU's dirty bits through the iommufd front
 *                   end: IOMMU_HWPT_SET_DIRTY_TRACKING and
 *                   IOMMU_HWPT_GET_DIRTY_BITMAP over IOVA [0, npages * 4 KiB) at
 *                   4 KiB, i.e. a device whose IOVA is the guest physical
 *                   address (the VMM's passthrough set-up).
 *  "vfio"           a VFIO type1 container's dirty pages (the legacy VFIO
 *                   back end): VFIO_IOMMU_DIRTY_PAGES START, GET_BITMAP over
 *                   IOVA [0, npages * 4 KiB) at the container's smallest page
 *                   size (turned into 4 KiB guest pages), STOP, with the
 *                   kernel's rules (pinned pages always dirty; the all-dirty
 *                   rule for IOMMU-backed devices).
 *  "vmm", "soft"    software logs (uiommu_dirty_log_source_create()).
 *
 * Pairing: no KVM source sees writes the VMM makes to guest RAM through its
 * own mapping (device emulation, a receiver filling pages): KVM logs only what
 * the guest writes through its page tables. A VMM that writes guest memory
 * therefore runs a "vmm" log source beside its KVM source and marks what it
 * writes. With a dirty ring this is also the answer to the other gap the ring
 * has by design: an entry needs a vCPU ring, so KVM's own writes made with no
 * running vCPU (arm64's vgic/ITS table saves) have nowhere to go; the kernel
 * added KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP (a bitmap beside the ring, read with
 * KVM_GET_DIRTY_LOG) for them. That capability is absent on this machine and x86
 * makes no such writes, so here the bitmap beside the ring is the "vmm" log.
 *
 * Every KVM source covers guest pages [0, (gpa + bytes) / 4 KiB) of the slot
 * described by struct uiommu_vm_kvm_info (page gpa / 4 KiB + k is slot page
 * k). start sets KVM_MEM_LOG_DIRTY_PAGES on the slot with
 * KVM_SET_USER_MEMORY_REGION (other slot flags are taken to be 0) and stop
 * clears it, so at most one KVM source per VM may be started at a time.
 * Pages dirtied before start are not reported unless the slot was already
 * logging (then they may be). Destroy a KVM source before its VM: its stop
 * still uses the slot and, for kvm-ring, the mmapped rings.
 *
 * Errors: negative errnos from the ioctls as KVM or the front end returns
 * them; failures are also logged through the library's log callback.
 */
#ifndef UIOMMU_VM_SOURCES_H
#define UIOMMU_VM_SOURCES_H

#include <stdbool.h>
#include <stdint.h>

#include <uiommu/compiler.h>
#include <uiommu/dirty_source.h>
#include <uiommu/vm.h>

UIOMMU_BEGIN_DECLS

struct uiommu_ctx;

/**
 * uiommu_kvm_log_source_create() - A "kvm-log" source.
 * Return: 0; -EINVAL (bad info: no slot pages, gpa not page-aligned);
 * -EOPNOTSUPP (the VM has a dirty ring or manual protect); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_kvm_log_source_create(const struct uiommu_vm_kvm_info *info,
					       struct uiommu_dirty_source **out);

/* Default chunk of kvm-clear-log: 256 Ki pages (1 GiB), QEMU's default. */
#define UIOMMU_KVM_CLEAR_CHUNK_DEFAULT (256ull * 1024)

/**
 * uiommu_kvm_clear_log_source_create() - A "kvm-clear-log" source.
 * @chunk_pages: pages per KVM_CLEAR_DIRTY_LOG, a non-zero multiple of 64 (0:
 *               UIOMMU_KVM_CLEAR_CHUNK_DEFAULT)
 * Return: 0; -EINVAL (bad info or chunk); -EOPNOTSUPP (no manual protect, or
 * a dirty ring); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_kvm_clear_log_source_create(const struct uiommu_vm_kvm_info *info,
						     uint64_t chunk_pages,
						     struct uiommu_dirty_source **out);

/*
 * Where uiommu_kvm_ring_full() finds the "kvm-ring" source. The VM is created
 * before the source (its rings must exist before its vCPUs), so the VMM
 * zero-initializes a link, passes uiommu_kvm_ring_full and the link as the
 * VM's ring_full callback and opaque, and names the link when it creates the
 * source. The link outlives every source of the VM: it also keeps each ring's
 * fetch index, which KVM's free-running ring indexes require to carry over
 * from one source to the next. Its fields are the library's.
 */
struct uiommu_kvm_ring_link {
	struct uiommu_dirty_source *src;
	unsigned int busy;
	uint32_t fetch[UIOMMU_VM_MAX_VCPUS];
};

/**
 * uiommu_kvm_ring_source_create() - A "kvm-ring" source.
 * @link: the link the VM's ring_full callback was given (required)
 * Return: 0; -EINVAL (bad info, NULL link); -EBUSY (the link has a source);
 * -EOPNOTSUPP (the VM has no dirty ring); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_kvm_ring_source_create(const struct uiommu_vm_kvm_info *info,
						struct uiommu_kvm_ring_link *link,
						struct uiommu_dirty_source **out);

/**
 * uiommu_kvm_ring_full() - The VM's ring_full callback (uiommu_vm_ring_full_fn).
 * @link: a struct uiommu_kvm_ring_link
 * @vcpu: the vCPU whose ring is full; called on that vCPU's thread
 *
 * Harvests the vCPU's ring into the source's pending bits (the next collect
 * reports them) and resets it, so the vCPU can run again. The collector and
 * this callback never harvest one ring at once (a lock per ring). Without a
 * started source it only logs a warning. Destroying the source waits for a
 * callback in progress.
 */
UIOMMU_EXPORT void uiommu_kvm_ring_full(void *link, unsigned int vcpu);

struct uiommu_kvm_source_stats {
	uint64_t ioctls;          /* dirty-log ioctls issued (GET, CLEAR, RESET, slot flags) */
	uint64_t clears;          /* kvm-clear-log: KVM_CLEAR_DIRTY_LOG chunks */
	uint64_t entries;         /* kvm-ring: entries harvested, by any thread */
	uint64_t ring_full;       /* kvm-ring: harvests made by uiommu_kvm_ring_full() */
	uint64_t resets;          /* kvm-ring: KVM_RESET_DIRTY_RINGS calls */
	uint64_t bad_entries;     /* kvm-ring: entries outside the slot, ignored */
	/*
	 * kvm-ring: harvests that found entries may have been lost (every page
	 * of the slot then reported): a full lap read at once, or, at a
	 * ring-full exit, dirty entries the fetch index had not reached; and
	 * resets that failed part way (the slot then write-protected again).
	 */
	uint64_t overflows;
	/*
	 * kvm-ring: entries KVM still counted after it wrapped the ring (their
	 * slots already emptied), recycled one per ring-full exit so that the
	 * vCPU could run again
	 */
	uint64_t recycled;
};

/* 0, or -EINVAL when @src is not a KVM source. Readable from any thread. */
UIOMMU_EXPORT int uiommu_kvm_source_get_stats(struct uiommu_dirty_source *src,
					      struct uiommu_kvm_source_stats *st);

/**
 * uiommu_iommu_source_create() - An "iommu" source over a dirty-tracking HWPT.
 * @ctx: the iommufd context (a reference is taken and dropped by destroy)
 * @hwpt_id: a paging HWPT allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING
 * @npages: guest pages covered, IOVA [0, npages * 4 KiB)
 *
 * start enables tracking (IOMMU_HWPT_SET_DIRTY_TRACKING), collect reads and
 * clears the dirty bits at 4 KiB (the front end ORs them in; the count is of
 * the pages reported), stop disables tracking. The HWPT is checked at start.
 * Return: 0; -EINVAL (NULL ctx, hwpt 0, npages 0 or too large); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_iommu_source_create(struct uiommu_ctx *ctx, uint32_t hwpt_id,
					     uint64_t npages, struct uiommu_dirty_source **out);

struct uiommu_vfio_container;

/**
 * uiommu_vfio_source_create() - A "vfio" source over a VFIO type1 container.
 * @c: the container (the caller's; it must outlive the source), guest RAM
 *     mapped at IOVA = GPA
 * @npages: guest pages covered, IOVA [0, npages * 4 KiB)
 *
 * start reads the container's smallest page size P (GET_BITMAP's only
 * granule) and is then VFIO_IOMMU_DIRTY_PAGES START; collect is one
 * GET_BITMAP (read and clear) of the whole range at P, whose bits become
 * guest pages: with P > 4 KiB a bit reports every guest page it covers, with
 * P < 4 KiB a guest page is reported when any of its bits is; stop is STOP.
 * When P > 4 KiB, npages * 4 KiB must be a multiple of P (the range must be
 * exactly the mapped guest RAM): start fails with -EINVAL otherwise. start
 * may also fail with -ENOMEM (its bitmap, sized for P) or the ioctls' errors.
 * What it reports follows the kernel's type1 rules: pinned pages in every
 * collect, rw writes once, every mapped page in every collect while an
 * IOMMU-backed group outside pinned scope is attached (unless the container
 * has UIOMMU_VFIO_OPT_IOMMU_DIRTY).
 * Return: 0; -EINVAL (NULL container, npages 0 or too large); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_vfio_source_create(struct uiommu_vfio_container *c, uint64_t npages,
					    struct uiommu_dirty_source **out);

/**
 * uiommu_dirty_log_write() - A uiommu_vm_write_fn that marks a software log.
 * @src: a "vmm" or "soft" source (uiommu_dirty_log_source_create())
 *
 * Pass it as the VM's vmm_write (with the "vmm" source) or soft_write (with
 * the "soft" source) so that those writes reach a round.
 */
UIOMMU_EXPORT void uiommu_dirty_log_write(void *src, uint64_t gpa, uint64_t len);

/* What uiommu_vm_source_create() needs, by source; unused fields are ignored. */
struct uiommu_vm_source_cfg {
	uint64_t npages;                        /* vmm, soft, iommu */
	const struct uiommu_vm_kvm_info *kvm;   /* kvm-* */
	uint64_t clear_chunk_pages;             /* kvm-clear-log, 0: the default */
	struct uiommu_kvm_ring_link *ring_link; /* kvm-ring */
	struct uiommu_ctx *ctx;                 /* iommu */
	uint32_t hwpt_id;                       /* iommu */
};

/* The source names, NULL-terminated: "kvm-log", ..., "soft". */
UIOMMU_EXPORT const char *const *uiommu_vm_source_names(void);
/* Can @name be created from @cfg (known name, the fields it needs, the VM's mode)? */
UIOMMU_EXPORT bool uiommu_vm_source_supported(const char *name,
					      const struct uiommu_vm_source_cfg *cfg);
/**
 * uiommu_vm_source_create() - Create a source by name (--dirty-source=NAME).
 * Return: 0; -ENOENT (unknown name); the errors of the source's create.
 */
UIOMMU_EXPORT int uiommu_vm_source_create(const char *name, const struct uiommu_vm_source_cfg *cfg,
					  struct uiommu_dirty_source **out);

UIOMMU_END_DECLS

#endif
