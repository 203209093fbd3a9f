/* SPDX-License-Identifier: MIT */
/*
 * IOVA range lists: a sorted array of disjoint, inclusive [start, last] ranges.
 *
 * Invariant (normalized): for consecutive ranges a, b: a.last + 1 < b.start,
 * i.e. ranges neither overlap nor touch; touching ranges are merged. Hence any
 * run of contiguous addresses lies in exactly one range, and both start and
 * last increase along the array, which the binary searches rely on.
 *
 * Overflow. "last + 1" and "start - 1" wrap at the ends of the u64 space, so
 * the code never forms them without checking for UINT64_MAX or 0 first; a
 * range may end at UINT64_MAX and a list may cover all of it.
 *
 * Every mutation is a splice: the ranges in a half-open index window
 * [lo, hi) are replaced by 0..2 new ones. The array is grown (the only
 * allocation) before anything is written, so that a failed allocation
 * returns -ENOMEM with the list unchanged.
 *
 * Example: {[0x1000, 0x4fff]}; subtract [0x2000, 0x2fff] replaces index window
 * [0, 1) with [0x1000, 0x1fff] [0x3000, 0x4fff]; add [0x2000, 0x2fff] then
 * replaces [0, 2) with the merged [0x1000, 0x4fff].
 */
#include <errno.h>
#include <string.h>

#include <uiommu/iova_list.h>

#include "core/core_internal.h"

#define IOVA_LIST_MIN_CAP 4

typedef struct uiommu_iova_range range_t;

UIOMMU_EXPORT void uiommu_iova_list_init(struct uiommu_iova_list *list)
{
	list->ranges = NULL;
	list->nr = 0;
	list->cap = 0;
}

UIOMMU_EXPORT void uiommu_iova_list_fini(struct uiommu_iova_list *list)
{
	if (!list)
		return;
	uiommu__free(list->ranges);
	uiommu_iova_list_init(list);
}

/* Makes room for @nr ranges. 0 or -ENOMEM (list unchanged). */
static int reserve(struct uiommu_iova_list *list, size_t nr)
{
	size_t cap = list->cap ? list->cap : IOVA_LIST_MIN_CAP;
	range_t *ranges;

	if (nr <= list->cap)
		return 0;
	while (cap < nr)
		cap *= 2;
	ranges = uiommu__calloc(cap, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	if (list->nr)
		memcpy(ranges, list->ranges, list->nr * sizeof(*ranges));
	uiommu__free(list->ranges);
	list->ranges = ranges;
	list->cap = cap;
	return 0;
}

/* Replaces the ranges at indexes [lo, hi) by the @k ranges of @repl. */
static int splice(struct uiommu_iova_list *list, size_t lo, size_t hi, const range_t *repl,
		  size_t k)
{
	size_t tail = list->nr - hi;
	int rc;

	rc = reserve(list, list->nr - (hi - lo) + k);
	if (rc)
		return rc;
	memmove(&list->ranges[lo + k], &list->ranges[hi], tail * sizeof(*repl));
	if (k)
		memcpy(&list->ranges[lo], repl, k * sizeof(*repl));
	list->nr = lo + k + tail;
	return 0;
}

UIOMMU_EXPORT int uiommu_iova_list_copy(struct uiommu_iova_list *dst,
					const struct uiommu_iova_list *src)
{
	range_t *ranges = NULL;

	if (dst == src)
		return 0;
	if (src->nr) {
		ranges = uiommu__calloc(src->nr, sizeof(*ranges));
		if (!ranges)
			return -ENOMEM;
		memcpy(ranges, src->ranges, src->nr * sizeof(*ranges));
	}
	uiommu__free(dst->ranges);
	dst->ranges = ranges;
	dst->nr = src->nr;
	dst->cap = src->nr;
	return 0;
}

/* Index of the first range with last >= @addr, or list->nr. */
static size_t first_ending_at_or_after(const struct uiommu_iova_list *list, uint64_t addr)
{
	size_t lo = 0, hi = list->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list->ranges[mid].last < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first range with start > @addr, or list->nr. */
static size_t first_starting_after(const struct uiommu_iova_list *list, uint64_t addr)
{
	size_t lo = 0, hi = list->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (list->ranges[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

UIOMMU_EXPORT int uiommu_iova_list_add(struct uiommu_iova_list *list, uint64_t start,
				       uint64_t last)
{
	range_t merged = { start, last };
	size_t lo, hi;

	if (start > last)
		return -EINVAL;
	/* Ranges that overlap or touch [start, last] merge with it. */
	lo = start ? first_ending_at_or_after(list, start - 1) : 0;
	hi = last != UINT64_MAX ? first_starting_after(list, last + 1) : list->nr;
	if (lo < hi) {
		merged.start = u64_min(start, list->ranges[lo].start);
		merged.last = u64_max(last, list->ranges[hi - 1].last);
	}
	return splice(list, lo, hi, &merged, 1);
}

UIOMMU_EXPORT int uiommu_iova_list_subtract(struct uiommu_iova_list *list, uint64_t start,
					    uint64_t last)
{
	range_t keep[2];
	size_t lo, hi, k = 0;

	if (start > last)
		return -EINVAL;
	lo = first_ending_at_or_after(list, start);
	hi = first_starting_after(list, last);
	if (lo >= hi)
		return 0;
	/* Only the first and last overlapped ranges can stick out of [start, last]. */
	if (list->ranges[lo].start < start)
		keep[k++] = (range_t){ list->ranges[lo].start, start - 1 };
	if (list->ranges[hi - 1].last > last)
		keep[k++] = (range_t){ last + 1, list->ranges[hi - 1].last };
	return splice(list, lo, hi, keep, k);
}

UIOMMU_EXPORT int uiommu_iova_list_clip(struct uiommu_iova_list *list, uint64_t start,
					uint64_t last)
{
	size_t lo, hi;

	if (start > last)
		return -EINVAL;
	lo = first_ending_at_or_after(list, start);
	hi = first_starting_after(list, last);
	if (lo < hi) {
		list->ranges[lo].start = u64_max(list->ranges[lo].start, start);
		list->ranges[hi - 1].last = u64_min(list->ranges[hi - 1].last, last);
	} else {
		lo = hi = 0;
	}
	/* Shrinking never allocates, so this cannot fail. */
	if (lo && hi > lo)
		memmove(list->ranges, &list->ranges[lo], (hi - lo) * sizeof(*list->ranges));
	list->nr = hi - lo;
	return 0;
}

UIOMMU_EXPORT bool uiommu_iova_list_contains(const struct uiommu_iova_list *list, uint64_t start,
					     uint64_t last)
{
	size_t i = first_ending_at_or_after(list, start);

	/* Normalized: a contiguous span is either inside one range or not covered. */
	return start <= last && i < list->nr && list->ranges[i].start <= start &&
	       list->ranges[i].last >= last;
}

UIOMMU_EXPORT bool uiommu_iova_list_overlaps(const struct uiommu_iova_list *list, uint64_t start,
					     uint64_t last)
{
	size_t i = first_ending_at_or_after(list, start);

	return start <= last && i < list->nr && list->ranges[i].start <= last;
}

/*
 * Lowest multiple of @align (a power of two) >= @addr; false when it would
 * pass UINT64_MAX.
 */
static bool align_up(uint64_t addr, uint64_t align, uint64_t *out)
{
	uint64_t bumped;

	if (uiommu_check_add_overflow(addr, align - 1, &bumped))
		return false;
	*out = bumped & ~(align - 1);
	return true;
}

UIOMMU_EXPORT int uiommu_iova_list_find_hole(const struct uiommu_iova_list *list, uint64_t length,
					     uint64_t align, uint64_t from, uint64_t *iova)
{
	size_t i;

	if (!is_pow2_u64(align) || !length)
		return -EINVAL;
	/*
	 * The lowest aligned start in a range is the only candidate there: a
	 * higher one leaves less room. Ranges ending before @from never fit.
	 */
	for (i = first_ending_at_or_after(list, from); i < list->nr; i++) {
		const range_t *r = &list->ranges[i];
		uint64_t s;

		if (!align_up(u64_max(r->start, from), align, &s))
			break; /* no aligned address is left in the u64 space */
		if (s <= r->last && r->last - s >= length - 1) {
			*iova = s;
			return 0;
		}
	}
	return -ENOSPC;
}
