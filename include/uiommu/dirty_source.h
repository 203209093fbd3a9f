/* SPDX-License-Identifier: MIT */
/*
 * Dirty sources and rounds.
 *
 * A dirty source is anything that can say which guest pages were written
 * since it was last asked: a KVM dirty log or ring, the emulated IOMMU's
 * dirty bits (HWPT_GET_DIRTY_BITMAP), the VMM's own writes, software vCPUs.
 * All sources speak in 4 KiB guest pages over [0, npages) of guest RAM.
 *
 * A round collects every active source into one bitmap with per-source
 * counts. Bits a round has handed out but that were not consumed (a failed
 * send, a failed migration attempt) are given back with restore and appear
 * in the next collection: nothing is ever lost.
 *
 * Implementations: "vmm" and "soft" here (src/dirty); "kvm-log",
 * "kvm-clear-log", "kvm-ring" and "iommu" in the vm layer
 * (<uiommu/vm_sources.h>).
 *
 * Threads: start, collect, stop and destroy of one source are called by one
 * thread at a time (the controller, e.g. the migration thread); the writers
 * a source watches (uiommu_dirty_log_mark(), vCPUs, DMA) run concurrently
 * with all of them. A round serializes its own calls with a lock.
 *
 * Refinements of the first contract (issue 4, §3):
 *  - "reported" is the number of distinct pages a source said were dirty in
 *    one collect, whether or not another source also reported them; a page
 *    two sources report counts for both (attribution, not a partition).
 *  - A source that fails in collect has still ORed into the bitmap every
 *    page it forgot at its end, so an error never loses a write.
 *  - The wrappers check state: start of a started source is -EBUSY, collect
 *    of a source that is not started is -EINVAL; stop and destroy accept
 *    anything, NULL included. A round skips sources that are not started.
 *  - uiommu_round_add_source() refuses a source larger than the round
 *    (-EINVAL); uiommu_round_stats gains the round's collect count and the
 *    last error of each source.
 */
#ifndef UIOMMU_DIRTY_SOURCE_H
#define UIOMMU_DIRTY_SOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

struct uiommu_dirty_source;

struct uiommu_dirty_source_ops {
	/* Begins tracking: pages written from now on are reported. */
	int (*start)(struct uiommu_dirty_source *src);
	/*
	 * ORs every page written since the last collect (or start) into @bitmap
	 * (npages bits) and forgets them at the source; adds the number of pages
	 * this call reported to *@pages. Must not lose a write that races with it:
	 * such a write is reported by this call or the next. On error, what the
	 * source forgot is in @bitmap all the same.
	 */
	int (*collect)(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages);
	/* Ends tracking (collect first if the bits matter). Never fails. */
	void (*stop)(struct uiommu_dirty_source *src);
	/* Frees the source (stopped or not). */
	void (*destroy)(struct uiommu_dirty_source *src);
};

struct uiommu_dirty_source {
	const struct uiommu_dirty_source_ops *ops;
	const char *name;   /* "kvm-log", "kvm-clear-log", "kvm-ring", "iommu", "vfio", "vmm",
			     * "soft" */
	uint64_t npages;    /* guest pages covered, from page 0 */
	bool started;       /* written by the wrappers only */
};

/**
 * uiommu_dirty_source_start() - Begin tracking.
 * Return: 0; -EINVAL (NULL); -EBUSY (already started); the source's error.
 */
UIOMMU_EXPORT int uiommu_dirty_source_start(struct uiommu_dirty_source *src);
/**
 * uiommu_dirty_source_collect() - OR the pages written since the last collect
 * into @bitmap (src->npages bits) and add their number to *@pages (may be NULL).
 * Return: 0; -EINVAL (NULL source or bitmap, or not started); the source's error.
 */
UIOMMU_EXPORT int uiommu_dirty_source_collect(struct uiommu_dirty_source *src, uint64_t *bitmap,
					      uint64_t *pages);
/* Ends tracking if started; bits not collected are dropped. Never fails. */
UIOMMU_EXPORT void uiommu_dirty_source_stop(struct uiommu_dirty_source *src);
/* Stops if started, then frees. NULL-safe. */
UIOMMU_EXPORT void uiommu_dirty_source_destroy(struct uiommu_dirty_source *src);

/*
 * A software dirty log: writers mark pages (lock-free, any thread), the
 * source reads and clears. Backs the "vmm" source (writes the VMM makes to
 * guest memory itself, which no vCPU ring sees) and the "soft" source
 * (software vCPUs).
 *
 * Marking is one load per word touched and an atomic OR only when a bit is
 * still clear; collecting visits only words that were marked (a summary bit
 * per 64 words) and exchanges them with zero. A writer must mark after its
 * write to guest memory: a write whose mark completed before a collect began
 * is reported by it, with its data visible to whoever reads the page after
 * the collect returns; a mark racing with a collect is reported by it or by
 * the next. The price of the cheap mark is one membarrier() per collect that
 * found anything (~2.5 us here).
 */
/**
 * uiommu_dirty_log_source_create() - A software log over [0, npages).
 * @name: the source's name ("vmm", "soft", ...), copied; at most 31 bytes
 * Return: 0; -EINVAL (NULL or empty or too long name, npages 0); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_dirty_log_source_create(const char *name, uint64_t npages,
						 struct uiommu_dirty_source **out);
/*
 * Marks the pages that meet [gpa, gpa + len), clipped to npages; a no-op when
 * not started, and for a source that is not a software log.
 */
UIOMMU_EXPORT void uiommu_dirty_log_mark(struct uiommu_dirty_source *src, uint64_t gpa,
					 uint64_t len);

#define UIOMMU_ROUND_MAX_SOURCES 8

struct uiommu_round_stats {
	unsigned int nr_sources;
	const char *name[UIOMMU_ROUND_MAX_SOURCES];
	uint64_t reported[UIOMMU_ROUND_MAX_SOURCES]; /* pages each source reported, last collect */
	uint64_t collect_ns[UIOMMU_ROUND_MAX_SOURCES]; /* time each source's collect took */
	int error[UIOMMU_ROUND_MAX_SOURCES]; /* each source's result, last collect */
	uint64_t collects; /* uiommu_round_collect() calls so far */
	uint64_t pending;  /* pages in the round bitmap now (after merge and restores) */
};

struct uiommu_round;

/* 0; -EINVAL (npages 0); -ENOMEM. */
UIOMMU_EXPORT int uiommu_round_create(uint64_t npages, struct uiommu_round **out);
/* NULL-safe; the sources are not destroyed. */
UIOMMU_EXPORT void uiommu_round_destroy(struct uiommu_round *round);
/*
 * The round does not own sources; at most UIOMMU_ROUND_MAX_SOURCES (-ENOSPC);
 * -EINVAL for NULL, a source already added or one with more pages than the round.
 */
UIOMMU_EXPORT int uiommu_round_add_source(struct uiommu_round *round,
					  struct uiommu_dirty_source *src);
/*
 * Collects every started source into the round's pending bitmap. Idempotent:
 * a second collect only adds what was written meanwhile. On a source error
 * the bits already collected stay pending, the other sources are collected
 * all the same, and the first error is returned.
 */
UIOMMU_EXPORT int uiommu_round_collect(struct uiommu_round *round);
/*
 * Hands out the pending bitmap (copied into @bitmap, npages bits) and clears
 * it. Return: the number of pages handed out (0 for a NULL round or bitmap).
 */
UIOMMU_EXPORT uint64_t uiommu_round_take(struct uiommu_round *round, uint64_t *bitmap);
/* Gives back bits that were taken but not consumed; they are pending again. */
UIOMMU_EXPORT void uiommu_round_restore(struct uiommu_round *round, const uint64_t *bitmap);
/* A snapshot; a NULL round gives zeroed stats. */
UIOMMU_EXPORT void uiommu_round_get_stats(struct uiommu_round *round,
					  struct uiommu_round_stats *st);

UIOMMU_END_DECLS

#endif
