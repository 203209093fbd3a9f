// SPDX-License-Identifier: MIT
/*
 * Verification of the emulated DMA device's region: after a migration (or
 * any time the device is quiesced), does every byte of the DMA region hold
 * what the device last wrote there?
 *
 * The device state says everything needed. Ring: packets go to buffers in
 * order, so buffer k (of n) last received packet k + n * floor((packets - 1
 * - k) / n), or nothing when packets <= k. Block area: placement of block
 * write w is a pure function of (seed, w) (dmadev_record.c), so replaying the
 * writes from the last one backwards, until every page has been claimed or
 * the first write is reached, gives the last write of each page; pages no
 * write covered must be zero.
 *
 * A buffer is good when it holds an intact record of this device (header
 * checksum keyed by the seed, every payload byte) of the expected kind and
 * index, with a sequence number below the device's, followed by zeros up to
 * the buffer's end; a page when it holds the expected part of the expected
 * write. Zero buffers and pages are good when nothing was written there, and
 * are not counted as records. This assumes the region was zero before the
 * device first wrote it and that nothing else writes it.
 *
 * The caller must keep the device quiesced (fsm_lock is held throughout, so
 * no transition can restart it) and guest memory is read directly, not by
 * DMA: verifying dirties nothing.
 */
#include <errno.h>
#include <string.h>

#include "vm/dmadev_internal.h"

struct verify_ctx {
	const struct uiommu_dmadev *d;
	struct dmadev_ident ident;
	struct dmadev_run run;
	struct uiommu_dmadev_verify *res;
};

static bool all_zero(const uint8_t *p, uint64_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

static void tally(struct verify_ctx *v, uint64_t gpa, bool record, bool ok)
{
	if (!ok) {
		v->res->bad++;
		v->res->first_bad_gpa = u64_min(v->res->first_bad_gpa, gpa);
	} else if (record) {
		v->res->records++;
	}
}

/* Ring buffer @k. */
static void verify_slot(struct verify_ctx *v, uint64_t k)
{
	uint64_t gpa = v->ident.dma_gpa + k * DMADEV_SLOT, packets = v->run.net_count, want;
	const uint8_t *p = v->d->mem + gpa;
	struct dmadev_rec rec;
	bool ok;

	if (packets <= k) {
		tally(v, gpa, false, all_zero(p, DMADEV_SLOT));
		return;
	}
	want = k + (packets - 1 - k) / v->d->nslots * v->d->nslots;
	ok = dmadev_rec_check(p, DMADEV_SLOT, v->ident.seed, &rec) &&
	     rec.kind == DMADEV_REC_NET && rec.index == want && rec.seq < v->run.seq &&
	     all_zero(p + rec.len, DMADEV_SLOT - rec.len);
	tally(v, gpa, true, ok);
}

/* last[p] = 1 + the last block write covering block page p, or 0. */
static void replay_blocks(const struct verify_ctx *v, uint64_t *last)
{
	uint64_t pages = v->d->block_pages, unclaimed = pages, first, n;

	for (uint64_t w = v->run.block_count; w-- > 0 && unclaimed;) {
		dmadev_block_place(v->ident.seed, w, pages, &first, &n);
		for (uint64_t p = first; p < first + n; p++) {
			if (last[p])
				continue;
			last[p] = w + 1;
			unclaimed--;
		}
	}
}

static void verify_page(struct verify_ctx *v, uint64_t page, uint64_t last)
{
	uint64_t gpa = v->d->block_gpa + page * DMADEV_PAGE, w = last - 1, first, n;
	const uint8_t *p = v->d->mem + gpa;
	struct dmadev_rec rec;
	bool ok;

	if (!last) {
		tally(v, gpa, false, all_zero(p, DMADEV_PAGE));
		return;
	}
	dmadev_block_place(v->ident.seed, w, v->d->block_pages, &first, &n);
	ok = dmadev_rec_check(p, DMADEV_PAGE, v->ident.seed, &rec) &&
	     rec.kind == DMADEV_REC_BLOCK && rec.index == w && rec.part == page - first &&
	     rec.nparts == n && rec.seq < v->run.seq;
	tally(v, gpa, true, ok);
}

static int verify_region(struct verify_ctx *v)
{
	uint64_t *last = uiommu__calloc(v->d->block_pages, sizeof(*last));

	if (!last)
		return -ENOMEM;
	for (uint64_t k = 0; k < v->d->nslots; k++)
		verify_slot(v, k);
	replay_blocks(v, last);
	for (uint64_t page = 0; page < v->d->block_pages; page++)
		verify_page(v, page, last[page]);
	uiommu__free(last);
	return 0;
}

UIOMMU_EXPORT int uiommu_dmadev_verify(struct uiommu_dmadev *d, struct uiommu_dmadev_verify *res)
{
	struct verify_ctx v = { .d = d, .res = res };
	int ret = 0;

	pthread_mutex_lock(&d->fsm_lock);
	pthread_mutex_lock(&d->lock);
	if (dmadev_state_runs(d->state))
		ret = -EBUSY;
	v.ident = d->ident;
	v.run = d->run;
	pthread_mutex_unlock(&d->lock);
	*res = (struct uiommu_dmadev_verify){ .first_bad_gpa = UINT64_MAX };
	if (!ret)
		ret = verify_region(&v);
	if (!ret && res->bad)
		uiommu__log(UIOMMU_LOG_WARN, "dmadev: verify: %llu bad of the region, first at %#llx",
			    (unsigned long long)res->bad, (unsigned long long)res->first_bad_gpa);
	pthread_mutex_unlock(&d->fsm_lock);
	return ret;
}
