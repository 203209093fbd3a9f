/* SPDX-License-Identifier: MIT */
/*
 * Dirty reports into user bitmaps: the equivalent of iommufd's iova_bitmap.
 *
 * A report covers (iova, length) at page_size bytes per bit: bit k means
 * IOVA iova + k * page_size, relative to the request, in little-endian u64
 * words (bit k is bit k % 64 of word k / 64). page_size may be smaller than a
 * leaf (a dirty 2 MiB leaf sets 512 bits at 4 KiB) or larger (a dirty 4 KiB
 * page sets the bit of its 2 MiB page). Reports only set bits, never clear
 * them, and never write outside the declared bitmap size. The bitmap need not
 * be 8-byte aligned.
 *
 * As in the kernel, page_size need not be a power of two: it must be non-zero,
 * iova and iova + length must have no bit of page_size - 1 set, and the bit
 * shift used is that of page_size's lowest set bit.
 */
#ifndef UIOMMU_DIRTY_H
#define UIOMMU_DIRTY_H

#include <stdint.h>

#include <uiommu/compiler.h>
#include <uiommu/iommu.h>

UIOMMU_BEGIN_DECLS

struct uiommu_dirty_report {
	uint64_t iova;       /* IOVA of bit 0 */
	uint64_t last;       /* last IOVA covered, inclusive */
	unsigned int pgshift;
	void *bitmap;
	uint64_t bitmap_bytes;
};

/* Bytes of bitmap a report of (length, page_size) needs: whole u64 words. */
UIOMMU_EXPORT uint64_t uiommu_dirty_bitmap_bytes(uint64_t length, uint64_t page_size);

/**
 * uiommu_dirty_report_init() - Validate a request and prepare a report.
 * Return: 0; -EOVERFLOW (iova + length - 1 wraps, length 0 with iova != 0);
 * -EINVAL (page_size 0, iova or iova + length not aligned to page_size,
 * bitmap NULL or smaller than uiommu_dirty_bitmap_bytes()).
 * Checks run in that order, the kernel's. As in the kernel, length 0 with iova 0
 * passes: it covers the whole 64-bit space (last = 2^64 - 1).
 */
UIOMMU_EXPORT int uiommu_dirty_report_init(struct uiommu_dirty_report *report, uint64_t iova,
					   uint64_t length, uint64_t page_size, void *bitmap,
					   uint64_t bitmap_bytes);

/* Marks [iova, iova + length) dirty in the report, clipped to its range. */
UIOMMU_EXPORT void uiommu_dirty_report_set(struct uiommu_dirty_report *report, uint64_t iova,
					   uint64_t length);

/* A uiommu_dirty_sink_fn whose opaque is a struct uiommu_dirty_report. */
UIOMMU_EXPORT int uiommu_dirty_report_sink(void *report, const struct uiommu_dirty_run *run);

/**
 * uiommu_domain_get_dirty_bitmap() - Read (and unless NO_CLEAR, clear) the
 * dirty state of a domain into a user bitmap.
 * Return: uiommu_dirty_report_init()'s errors, then those of
 * uiommu_domain_read_and_clear_dirty().
 */
UIOMMU_EXPORT int uiommu_domain_get_dirty_bitmap(struct uiommu_domain *domain, uint64_t iova,
						 uint64_t length, uint64_t page_size,
						 uint32_t flags, void *bitmap,
						 uint64_t bitmap_bytes);

UIOMMU_END_DECLS

#endif
