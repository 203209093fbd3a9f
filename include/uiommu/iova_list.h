/* SPDX-License-Identifier: MIT */
/*
 * IOVA range lists: sorted, disjoint, inclusive [start, last] ranges, kept
 * normalized (adjacent ranges are merged). They describe allowed IOVA space:
 * an aperture, minus reserved regions, intersected with user-allowed ranges.
 * Ranges ending at 2^64 - 1 work everywhere.
 *
 * Every mutating function either succeeds or returns -ENOMEM leaving the list
 * unchanged.
 */
#ifndef UIOMMU_IOVA_LIST_H
#define UIOMMU_IOVA_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

struct uiommu_iova_range {
	uint64_t start;
	uint64_t last;
};

struct uiommu_iova_list {
	struct uiommu_iova_range *ranges;
	size_t nr;
	size_t cap;
};

UIOMMU_EXPORT void uiommu_iova_list_init(struct uiommu_iova_list *list);
/* Frees the ranges; the list is empty and reusable afterwards. Cannot fail. */
UIOMMU_EXPORT void uiommu_iova_list_fini(struct uiommu_iova_list *list);
/* Replaces @dst with a copy of @src. 0 or -ENOMEM (dst unchanged). */
UIOMMU_EXPORT int uiommu_iova_list_copy(struct uiommu_iova_list *dst,
					const struct uiommu_iova_list *src);

/* Union with [start, last] (start <= last). 0, -EINVAL (start > last), -ENOMEM. */
UIOMMU_EXPORT int uiommu_iova_list_add(struct uiommu_iova_list *list, uint64_t start,
				       uint64_t last);
/* Removes [start, last] (a reserved region). 0, -EINVAL, -ENOMEM. */
UIOMMU_EXPORT int uiommu_iova_list_subtract(struct uiommu_iova_list *list, uint64_t start,
					    uint64_t last);
/* Keeps only what lies inside [start, last] (an aperture). 0 or -EINVAL. */
UIOMMU_EXPORT int uiommu_iova_list_clip(struct uiommu_iova_list *list, uint64_t start,
					uint64_t last);

/* True when every address of [start, last] is in the list. */
UIOMMU_EXPORT bool uiommu_iova_list_contains(const struct uiommu_iova_list *list, uint64_t start,
					     uint64_t last);
/* True when some address of [start, last] is in the list. */
UIOMMU_EXPORT bool uiommu_iova_list_overlaps(const struct uiommu_iova_list *list, uint64_t start,
					     uint64_t last);

/*
 * Finds the lowest IOVA >= @from that is a multiple of @align (a power of two)
 * and starts @length bytes (length >= 1) lying wholly inside one range.
 * Return: 0 with *@iova set, -EINVAL for a bad align or length 0, -ENOSPC when
 * there is no such hole.
 */
UIOMMU_EXPORT int uiommu_iova_list_find_hole(const struct uiommu_iova_list *list, uint64_t length,
					     uint64_t align, uint64_t from, uint64_t *iova);

UIOMMU_END_DECLS

#endif
