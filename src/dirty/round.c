// SPDX-License-Identifier: MIT
/*
 * Rounds: every dirty source of a migration merged into one pending bitmap.
 *
 * A round holds a pending bitmap over [0, npages) and up to
 * UIOMMU_ROUND_MAX_SOURCES sources it does not own. Collect asks each started
 * source to OR what it saw into the pending bitmap directly, timing it and
 * keeping its count and result; a source that fails has still put what it
 * forgot into the bitmap (the source contract), so collecting goes on with
 * the others and the first error is returned. Because sources only OR and
 * forget, collecting twice is collecting once plus what was written meanwhile.
 *
 * Take copies the pending bitmap out and clears it; restore ORs bits back.
 * Between the two the bits live only in the caller's copy, which is what a
 * sender consumes; a failed send restores them, so the pages are in the next
 * take (together with anything collected meanwhile).
 *
 * Locking: round->lock protects everything in the round, including the calls
 * into the sources (collect holds it while the sources run), so stats can be
 * read from another thread. Sources are started and stopped by their owner,
 * not by the round: a source that is not started is skipped.
 *
 * Example: sources kvm-ring and iommu; the guest wrote pages 1, 2 and a DMA
 * wrote 2, 3. collect: reported = {2, 2}, pending = 3; take hands out {1,2,3}
 * and returns 3; restore({2}) makes pending = 1.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>

#include "core/core_internal.h"

struct uiommu_round {
	pthread_mutex_t lock;
	uint64_t npages;
	uint64_t nwords;
	uint64_t *pending;
	uint64_t collects;
	unsigned int nr;
	struct uiommu_dirty_source *src[UIOMMU_ROUND_MAX_SOURCES];
	uint64_t reported[UIOMMU_ROUND_MAX_SOURCES];
	uint64_t collect_ns[UIOMMU_ROUND_MAX_SOURCES];
	int error[UIOMMU_ROUND_MAX_SOURCES];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Bits of the last word that lie inside the round. */
static uint64_t tail_mask(uint64_t npages)
{
	return npages % 64 ? (1ull << (npages % 64)) - 1 : ~0ull;
}

UIOMMU_EXPORT int uiommu_round_create(uint64_t npages, struct uiommu_round **out)
{
	struct uiommu_round *round;

	if (!npages || !out)
		return -EINVAL;
	round = uiommu__zalloc(sizeof(*round));
	if (!round)
		return -ENOMEM;
	round->npages = npages;
	round->nwords = uiommu_bitmap_words(npages);
	round->pending = uiommu__calloc(round->nwords, sizeof(uint64_t));
	if (!round->pending)
		goto err_free_round;
	pthread_mutex_init(&round->lock, NULL);
	*out = round;
	return 0;

err_free_round:
	uiommu__free(round);
	return -ENOMEM;
}

UIOMMU_EXPORT void uiommu_round_destroy(struct uiommu_round *round)
{
	if (!round)
		return;
	pthread_mutex_destroy(&round->lock);
	uiommu__free(round->pending);
	uiommu__free(round);
}

static bool round_has(const struct uiommu_round *round, const struct uiommu_dirty_source *src)
{
	for (unsigned int i = 0; i < round->nr; i++)
		if (round->src[i] == src)
			return true;
	return false;
}

UIOMMU_EXPORT int uiommu_round_add_source(struct uiommu_round *round,
					  struct uiommu_dirty_source *src)
{
	int rc = 0;

	if (!round || !src || src->npages > round->npages)
		return -EINVAL;
	pthread_mutex_lock(&round->lock);
	if (round_has(round, src))
		rc = -EINVAL;
	else if (round->nr == UIOMMU_ROUND_MAX_SOURCES)
		rc = -ENOSPC;
	else
		round->src[round->nr++] = src;
	pthread_mutex_unlock(&round->lock);
	return rc;
}

/* Collects source @i; its count, time and result go to the round's stats. */
static int collect_one(struct uiommu_round *round, unsigned int i)
{
	struct uiommu_dirty_source *src = round->src[i];
	uint64_t pages = 0, t0;
	int rc = 0;

	if (src->started) {
		t0 = now_ns();
		rc = uiommu_dirty_source_collect(src, round->pending, &pages);
		round->collect_ns[i] = now_ns() - t0;
		if (rc)
			uiommu__log(UIOMMU_LOG_WARN, "round: source %s: collect failed (%d)",
				    src->name, rc);
	} else {
		round->collect_ns[i] = 0;
	}
	round->reported[i] = pages;
	round->error[i] = rc;
	return rc;
}

UIOMMU_EXPORT int uiommu_round_collect(struct uiommu_round *round)
{
	int first_err = 0;

	if (!round)
		return -EINVAL;
	pthread_mutex_lock(&round->lock);
	for (unsigned int i = 0; i < round->nr; i++) {
		int rc = collect_one(round, i);

		if (rc && !first_err)
			first_err = rc;
	}
	round->collects++;
	pthread_mutex_unlock(&round->lock);
	return first_err;
}

UIOMMU_EXPORT uint64_t uiommu_round_take(struct uiommu_round *round, uint64_t *bitmap)
{
	uint64_t n = 0;

	if (!round || !bitmap)
		return 0;
	pthread_mutex_lock(&round->lock);
	for (uint64_t w = 0; w < round->nwords; w++) {
		bitmap[w] = round->pending[w];
		n += (uint64_t)__builtin_popcountll(round->pending[w]);
	}
	memset(round->pending, 0, round->nwords * sizeof(uint64_t));
	pthread_mutex_unlock(&round->lock);
	return n;
}

UIOMMU_EXPORT void uiommu_round_restore(struct uiommu_round *round, const uint64_t *bitmap)
{
	uint64_t last;

	if (!round || !bitmap)
		return;
	last = round->nwords - 1;
	pthread_mutex_lock(&round->lock);
	for (uint64_t w = 0; w < last; w++)
		round->pending[w] |= bitmap[w];
	/* Bits past npages in the caller's last word are not pages of the round. */
	round->pending[last] |= bitmap[last] & tail_mask(round->npages);
	pthread_mutex_unlock(&round->lock);
}

UIOMMU_EXPORT void uiommu_round_get_stats(struct uiommu_round *round, struct uiommu_round_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!round)
		return;
	pthread_mutex_lock(&round->lock);
	st->nr_sources = round->nr;
	for (unsigned int i = 0; i < round->nr; i++) {
		st->name[i] = round->src[i]->name;
		st->reported[i] = round->reported[i];
		st->collect_ns[i] = round->collect_ns[i];
		st->error[i] = round->error[i];
	}
	st->collects = round->collects;
	st->pending = uiommu_bitmap_count_range(round->pending, 0, round->npages - 1);
	pthread_mutex_unlock(&round->lock);
}
