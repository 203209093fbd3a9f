/* SPDX-License-Identifier: MIT */
/*
 * The emulated IOMMU: paging domains (IO page tables with hardware-style
 * Accessed/Dirty state) and the devices that DMA through them.
 *
 * A domain translates IOVA to host virtual addresses through a radix page
 * table whose format is chosen at creation (x86-like 4 KiB/2 MiB/1 GiB leaves
 * over 48 bits, or the kernel selftest's mock format with 2 KiB pages and
 * 1 MiB large pages). Devices attach to one domain each and read or write by
 * IOVA through a per-device IOTLB; a write that hits a read-only or unmapped
 * IOVA is an IO page fault: nothing is written, the fault is recorded.
 *
 * Dirty tracking follows the hardware contract: while enabled, every DMA write
 * marks the leaves it touches dirty; a translation cached in an IOTLB may skip
 * the marking, so read-and-clear invalidates IOTLBs (once per call) and waits
 * for DMA in flight before it returns. Guarantees: a write that completed
 * before a harvest began is reported by that harvest; one racing with it is
 * reported by it or the next; none is lost.
 *
 * Threads: map, unmap, harvest and attach/detach may run on any threads
 * concurrently with each other and with DMA. The DMA calls of one device must
 * not run concurrently with each other (a device is one DMA master; use one
 * device per DMA thread).
 */
#ifndef UIOMMU_IOMMU_H
#define UIOMMU_IOMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

struct uiommu_domain;
struct uiommu_device;

enum uiommu_pt_format {
	/* 4 KiB, 2 MiB and 1 GiB leaves; 48-bit IOVA. */
	UIOMMU_PT_X86 = 0,
	/* The iommufd selftest mock: 2 KiB pages, 1 MiB large pages; 48-bit IOVA. */
	UIOMMU_PT_MOCK = 1,
};

#define UIOMMU_PROT_READ (1u << 0)
#define UIOMMU_PROT_WRITE (1u << 1)

struct uiommu_domain_cfg {
	enum uiommu_pt_format format;
	/* Leaf sizes the domain may use: a subset of the format's, which always
	 * includes the smallest. 0 means every size of the format. */
	uint64_t pgsize_bitmap;
};

/**
 * uiommu_domain_create() - Create an empty paging domain.
 * Return: 0, -EINVAL (unknown format, page sizes not offered by it), -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_domain_create(const struct uiommu_domain_cfg *cfg,
				       struct uiommu_domain **out);
/* Detaches any device still attached and frees everything. NULL-safe. */
UIOMMU_EXPORT void uiommu_domain_destroy(struct uiommu_domain *domain);
UIOMMU_EXPORT uint64_t uiommu_domain_pgsize_bitmap(const struct uiommu_domain *domain);
/* Highest IOVA the page table can translate (2^48 - 1). */
UIOMMU_EXPORT uint64_t uiommu_domain_max_iova(const struct uiommu_domain *domain);

/**
 * uiommu_domain_map() - Map [iova, iova + length) to host memory at @host.
 *
 * Each piece uses the largest leaf that the alignment of iova and host, the
 * remaining length and the page-size bitmap allow.
 * Return: 0; -EINVAL (iova, host or length not aligned to the smallest page,
 * no or unknown prot bits, beyond max_iova); -EOVERFLOW (length 0 or the
 * range wraps); -EEXIST (any page already mapped); -ENOMEM. On error nothing
 * changed.
 */
UIOMMU_EXPORT int uiommu_domain_map(struct uiommu_domain *domain, uint64_t iova, void *host,
				    uint64_t length, uint32_t prot);

/**
 * uiommu_domain_unmap() - Unmap whatever is mapped in [iova, iova + length).
 *
 * Holes are skipped. A large leaf that the range covers only in part is split
 * into smaller leaves first and only the covered part is unmapped (a real
 * driver would unmap the whole leaf; we keep the rest mapped so that callers
 * that unmap exactly what they mapped see no difference and others lose
 * nothing). Dirty state of the unmapped pages is discarded; that of split
 * leaves is inherited by every piece. After return no device reads or writes
 * the unmapped memory.
 * Return: 0 with *@unmapped (may be NULL) = bytes unmapped; -EINVAL
 * (misaligned); -EOVERFLOW; -ENOMEM (a split could not allocate; nothing
 * changed).
 */
UIOMMU_EXPORT int uiommu_domain_unmap(struct uiommu_domain *domain, uint64_t iova, uint64_t length,
				      uint64_t *unmapped);

/* Enabling first discards stale dirty state, as iommufd does. 0 always. */
UIOMMU_EXPORT int uiommu_domain_set_dirty_tracking(struct uiommu_domain *domain, bool enable);
UIOMMU_EXPORT bool uiommu_domain_dirty_tracking(const struct uiommu_domain *domain);

/*
 * A run of dirty state handed to a sink: bit j of @bits (j < nbits) set means
 * [iova + (j << pgshift), iova + ((j + 1) << pgshift) - 1] is dirty. Runs
 * never extend outside the range asked for, except that a dirty leaf larger
 * than the request's edges is clipped to them. @bits is valid only during the
 * call.
 */
struct uiommu_dirty_run {
	uint64_t iova;
	unsigned int pgshift;
	const uint64_t *bits;
	uint64_t nbits;
};

/* Return 0 to continue, a negative errno to stop the walk (it is returned). */
typedef int (*uiommu_dirty_sink_fn)(void *opaque, const struct uiommu_dirty_run *run);

#define UIOMMU_DIRTY_NO_CLEAR (1u << 0)

/**
 * uiommu_domain_read_and_clear_dirty() - Report and clear dirty leaves.
 * @sink: receives the dirty state of the mapped leaves in the range; NULL only
 *        clears (allowed with tracking off, to drop stale state)
 * @flags: UIOMMU_DIRTY_NO_CLEAR reads without clearing and without the IOTLB
 *         invalidation
 *
 * Cost grows with the number of dirty leaves, not with the mapped size.
 * Return: 0; -EINVAL (unknown flags, misaligned, a sink with tracking off);
 * -EOVERFLOW; the sink's error.
 */
UIOMMU_EXPORT int uiommu_domain_read_and_clear_dirty(struct uiommu_domain *domain, uint64_t iova,
						     uint64_t length, uint32_t flags,
						     uiommu_dirty_sink_fn sink, void *opaque);

/*
 * Marks the leaf that maps @iova dirty, as a DMA write through it would,
 * without writing anything (for writers that do not go through a device, and
 * the selftest's DIRTY op). 0; -ENOENT when @iova is not mapped; -EINVAL when
 * tracking is off.
 */
UIOMMU_EXPORT int uiommu_domain_mark_dirty(struct uiommu_domain *domain, uint64_t iova);

struct uiommu_domain_stats {
	uint64_t mapped_bytes;
	uint64_t leaves[3];       /* by level: smallest, middle, largest page size */
	uint64_t table_nodes;     /* page-table nodes allocated */
	uint64_t iotlb_flushes;   /* batched invalidations issued */
};
UIOMMU_EXPORT void uiommu_domain_get_stats(struct uiommu_domain *domain,
					   struct uiommu_domain_stats *stats);

/*
 * Translation as the page table holds it, for tests and tools: 0 with the
 * host address of @iova, its leaf size and Accessed/Dirty state, or -ENOENT.
 */
struct uiommu_pte_info {
	void *host;
	uint64_t leaf_size;
	uint32_t prot;
	bool accessed;
	bool dirty;
};
UIOMMU_EXPORT int uiommu_domain_lookup(struct uiommu_domain *domain, uint64_t iova,
				       struct uiommu_pte_info *info);

/* ---- devices ---- */

struct uiommu_device_cfg {
	unsigned int iotlb_entries; /* power of two; 0 means 64 */
	unsigned int fault_log;     /* faults kept for uiommu_device_fault_pop; 0 means 64 */
};

UIOMMU_EXPORT int uiommu_device_create(const struct uiommu_device_cfg *cfg,
				       struct uiommu_device **out);
/* Detaches first. NULL-safe. */
UIOMMU_EXPORT void uiommu_device_destroy(struct uiommu_device *dev);
/* 0, or -EBUSY when already attached. */
UIOMMU_EXPORT int uiommu_device_attach(struct uiommu_device *dev, struct uiommu_domain *domain);
/* Waits for the device's DMA in flight; afterwards the device faults. */
UIOMMU_EXPORT void uiommu_device_detach(struct uiommu_device *dev);

/**
 * uiommu_device_dma_write() - DMA @len bytes from @buf to @iova.
 * Return: 0; -EFAULT (IO page fault: some page unmapped, or not attached);
 * -EPERM (some page not writable); -EOVERFLOW. On a fault nothing is written
 * and the fault is recorded.
 */
UIOMMU_EXPORT int uiommu_device_dma_write(struct uiommu_device *dev, uint64_t iova,
					  const void *buf, size_t len);
/* As dma_write, for reads (-EPERM when some page is not readable). */
UIOMMU_EXPORT int uiommu_device_dma_read(struct uiommu_device *dev, uint64_t iova, void *buf,
					 size_t len);

#define UIOMMU_IOPF_WRITE (1u << 0)
#define UIOMMU_IOPF_PERM (1u << 1) /* permission fault; otherwise not present */

struct uiommu_iopf {
	uint64_t iova; /* first faulting address */
	uint32_t flags;
};

/* Oldest recorded fault: 0, or -EAGAIN when none. Thread-safe. */
UIOMMU_EXPORT int uiommu_device_fault_pop(struct uiommu_device *dev, struct uiommu_iopf *fault);

struct uiommu_device_stats {
	uint64_t iotlb_hits;
	uint64_t iotlb_misses;
	uint64_t faults;         /* all faults, including those dropped from a full log */
	uint64_t bytes_written;
	uint64_t bytes_read;
};
UIOMMU_EXPORT void uiommu_device_get_stats(struct uiommu_device *dev,
					   struct uiommu_device_stats *stats);

UIOMMU_END_DECLS

#endif
