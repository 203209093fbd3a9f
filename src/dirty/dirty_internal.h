/* SPDX-License-Identifier: MIT */
/*
 * Private declarations of the dirty layer, shared with the vm layer's
 * sources: the lock-free two-level dirty log (log.c).
 */
#ifndef UIOMMU_DIRTY_INTERNAL_H
#define UIOMMU_DIRTY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * One bit per page, and one summary bit per 64-bit word of page bits (set
 * when the word may be non-zero). Marks run on any thread, lock-free; take
 * runs on one thread at a time. See log.c.
 */
struct dirty_log {
	uint64_t npages;
	uint64_t *bits;    /* npages bits */
	uint64_t *summary; /* one bit per word of bits */
	uint64_t nwords;   /* words of bits */
	uint64_t nsum;     /* words of summary */
	/*
	 * Marks come after the marker's own writes to guest memory, and whoever
	 * reads those pages after a take must see them: take then runs an
	 * asymmetric fence (membarrier) so that marks need none.
	 */
	bool order_data;
};

/* 0, -EINVAL (npages 0), -ENOMEM. */
int dirty_log_init(struct dirty_log *log, uint64_t npages, bool order_data);
/* NULL-safe on a zeroed log. */
void dirty_log_fini(struct dirty_log *log);
/* Marks pages first..last (inclusive, last < npages). */
void dirty_log_mark(struct dirty_log *log, uint64_t first, uint64_t last);
/*
 * ORs every marked page into @bitmap (npages bits), clears them, and returns
 * how many there were. One caller at a time.
 */
uint64_t dirty_log_take(struct dirty_log *log, uint64_t *bitmap);
/* Forgets every mark (a mark racing with it may survive). One caller at a time. */
void dirty_log_clear(struct dirty_log *log);

#endif
