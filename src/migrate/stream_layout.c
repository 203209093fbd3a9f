// SPDX-License-Identifier: MIT
/*
 * The memory layout of a stream: the GPA ranges that the stream may carry
 * pages of, and the layout index that numbers their pages for verification.
 *
 * Ranges are page-aligned, non-empty, ascending and disjoint, and lie inside
 * the memory of the side that checks them ([0, mem_bytes)). The layout index
 * of a page counts pages range after range: page g of range i has index
 * r[i].first_index + (g - r[i].gpa) / page_size. Both sides use it for the
 * hash arrays, so it never depends on anything but the header.
 *
 * The sender checks its configuration here, and the receiver checks the
 * header it received here, so that the two cannot disagree on what is valid.
 */
#include <errno.h>
#include <stdio.h>

#include "migrate/migrate_internal.h"

static int check_range(const struct ms_layout *lay, const struct uiommu_stream_range *in,
		       uint64_t prev_end, uint64_t mem_bytes, char why[MS_WHY_MAX])
{
	uint64_t mask = lay->page_size - 1, end;

	if ((in->gpa | in->bytes) & mask || !in->bytes) {
		snprintf(why, MS_WHY_MAX, "range 0x%llx+0x%llx not page-aligned or empty",
			 (unsigned long long)in->gpa, (unsigned long long)in->bytes);
		return -EINVAL;
	}
	if (uiommu_check_add_overflow(in->gpa, in->bytes, &end) || end > mem_bytes) {
		snprintf(why, MS_WHY_MAX, "range 0x%llx+0x%llx outside memory of 0x%llx bytes",
			 (unsigned long long)in->gpa, (unsigned long long)in->bytes,
			 (unsigned long long)mem_bytes);
		return -ERANGE;
	}
	if (in->gpa < prev_end) {
		snprintf(why, MS_WHY_MAX, "range 0x%llx not above the previous range",
			 (unsigned long long)in->gpa);
		return -EINVAL;
	}
	return 0;
}

int ms_layout_init(struct ms_layout *lay, uint32_t page_size,
		   const struct uiommu_stream_range *ranges, unsigned int nr, uint64_t mem_bytes,
		   char why[MS_WHY_MAX])
{
	uint64_t prev_end = 0;
	int rc;

	memset(lay, 0, sizeof(*lay));
	if (!is_pow2_u64(page_size) || page_size < MS_PAGE_MIN || page_size > MS_PAGE_MAX) {
		snprintf(why, MS_WHY_MAX, "page size %u not a power of two in 4096..65536", page_size);
		return -EINVAL;
	}
	if (!nr || nr > UIOMMU_STREAM_MAX_RANGES) {
		snprintf(why, MS_WHY_MAX, "%u ranges (1..%d allowed)", nr, UIOMMU_STREAM_MAX_RANGES);
		return -EINVAL;
	}
	lay->page_size = page_size;
	lay->page_shift = (unsigned int)__builtin_ctzll(page_size);
	for (unsigned int i = 0; i < nr; i++) {
		rc = check_range(lay, &ranges[i], prev_end, mem_bytes, why);
		if (rc)
			return rc;
		lay->r[i].gpa = ranges[i].gpa;
		lay->r[i].bytes = ranges[i].bytes;
		lay->r[i].first_index = lay->pages;
		lay->pages += ranges[i].bytes >> lay->page_shift;
		prev_end = ranges[i].gpa + ranges[i].bytes;
	}
	lay->nr = nr;
	return 0;
}

int ms_layout_find(const struct ms_layout *lay, uint64_t gpa, int hint)
{
	int lo = 0, hi = (int)lay->nr - 1;

	if (hint >= 0 && hint < (int)lay->nr && gpa >= lay->r[hint].gpa &&
	    gpa < ms_range_end(&lay->r[hint]))
		return hint;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;

		if (gpa < lay->r[mid].gpa)
			hi = mid - 1;
		else if (gpa >= ms_range_end(&lay->r[mid]))
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}
