// SPDX-License-Identifier: MIT
/*
 * Device DMA logging: what a device that tracks its own writes (the kernel's
 * vfio_log_ops: mlx5, pds) does behind VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
 * STOP and REPORT. The uAPI framing is in vfio_type1_device.c.
 *
 * Every DMA write a device of a group makes goes through this file
 * (vt1_log_mark): writes of IOMMU-backed devices through
 * uiommu_vfio_device_dma_write() once they landed, rw writes of emulated
 * devices from vfio_type1_pin.c per chunk copied. While logging is started
 * the write sets one bit per granule it touches, in the tracked ranges only.
 *
 * The granule is the device's choice, which START reports back in page_size:
 * the requested size rounded up to a power of two, at least 4 KiB, and then
 * doubled until the whole log fits in LOG_MAX_BITS bits (so a START over
 * terabytes succeeds with a coarse granule instead of failing). Each range
 * is widened to whole granules.
 *
 * REPORT (iova, length, page_size) reads and clears: bit k of the user's
 * bitmap stands for [iova + k * page_size, iova + (k + 1) * page_size - 1];
 * bits are only ever set (OR into what the caller had). A dirty granule sets
 * every report bit it overlaps, clipped to [iova, last]; it is cleared when
 * it lies wholly inside [iova, last], and kept (reported again next time)
 * when only part of it was asked for, so no write is ever lost. The range
 * asked for must lie inside the tracked (widened) ranges, else -EINVAL.
 *
 * Worked example: START page_size 4096, ranges [0x10000, +0x4000) and
 * [0x20000, +0x2000): two ranges of 4 and 2 granules. A write of 0x1800 bytes
 * at 0x11c00 sets granules 1 and 2 of range 0 (0x11000 and 0x12000). REPORT
 * iova 0x10000 length 0x4000 page_size 8192 sets user bits 0 and 1 (0x10000
 * covers granule 1, 0x12000 granule 2) and clears both granules.
 *
 * Locking: log->lock protects the log; it is a leaf (taken under c->lock by
 * rw, alone by everything else). User memory is written under it (copies
 * never fault the process: src/core/ucopy.c).
 */
#include <errno.h>
#include <stdlib.h>

#include <uiommu/bitmap.h>

#include "uapi/vfio_type1_internal.h"

/* The kernel core's limit: the range array fits in one page. */
#define LOG_MAX_RANGES 256u
#define LOG_MIN_SHIFT 12u
/* 16 MiB of bitmap per device at most; beyond it the granule grows. */
#define LOG_MAX_BITS (1ull << 27)

void vt1_log_init(struct vt1_log *log)
{
	pthread_mutex_init(&log->lock, NULL);
	log->started = false;
	log->nr = 0;
	log->ranges = NULL;
}

static void ranges_free(struct vt1_log_range *r, uint32_t nr)
{
	for (uint32_t i = 0; r && i < nr; i++)
		uiommu__free(r[i].bits);
	uiommu__free(r);
}

void vt1_log_fini(struct vt1_log *log)
{
	ranges_free(log->ranges, log->nr);
	log->ranges = NULL;
	log->nr = 0;
	log->started = false;
}

/* ---- START ---- */

static int range_cmp(const void *a, const void *b)
{
	const struct uiommu_iova_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Sorted copy of @r in @out; -EINVAL for an empty or reversed range or an overlap. */
static int ranges_check(const struct uiommu_iova_range *r, uint32_t nr,
			struct uiommu_iova_range *out)
{
	if (!nr)
		return -EINVAL;
	if (nr > LOG_MAX_RANGES)
		return -E2BIG;
	for (uint32_t i = 0; i < nr; i++) {
		if (r[i].start > r[i].last)
			return -EINVAL;
		out[i] = r[i];
	}
	qsort(out, nr, sizeof(*out), range_cmp);
	for (uint32_t i = 1; i < nr; i++)
		if (out[i].start <= out[i - 1].last)
			return -EINVAL;
	return 0;
}

static uint64_t range_granules(const struct uiommu_iova_range *r, unsigned int shift)
{
	return (r->last >> shift) - (r->start >> shift) + 1;
}

static uint64_t total_granules(const struct uiommu_iova_range *r, uint32_t nr, unsigned int shift)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < nr; i++)
		n += range_granules(&r[i], shift); /* <= 256 * 2^52: no overflow */
	return n;
}

/* The device's granule for @page_size over the (sorted, disjoint) ranges. */
static unsigned int pick_shift(uint64_t page_size, const struct uiommu_iova_range *r, uint32_t nr)
{
	unsigned int shift = LOG_MIN_SHIFT;

	while (shift < 63 && (1ull << shift) < page_size)
		shift++;
	while (shift < 63 && total_granules(r, nr, shift) > LOG_MAX_BITS)
		shift++;
	return shift;
}

/* The widened ranges with clean bitmaps; nothing is left on -ENOMEM. */
static int ranges_alloc(const struct uiommu_iova_range *r, uint32_t nr, unsigned int shift,
			struct vt1_log_range **out)
{
	struct vt1_log_range *lr = uiommu__calloc(nr, sizeof(*lr));
	uint64_t mask = (1ull << shift) - 1;

	if (!lr)
		return -ENOMEM;
	for (uint32_t i = 0; i < nr; i++) {
		lr[i].start = r[i].start & ~mask;
		lr[i].last = r[i].last | mask;
		lr[i].bits = uiommu__calloc(uiommu_bitmap_words(range_granules(&r[i], shift)), 8);
		if (!lr[i].bits) {
			ranges_free(lr, i);
			return -ENOMEM;
		}
	}
	*out = lr;
	return 0;
}

static int log_start_locked(struct vt1_log *log, uint64_t *page_size,
			    const struct uiommu_iova_range *sorted, uint32_t nr)
{
	unsigned int shift;
	int ret;

	if (!log->capable)
		return -ENOTTY;
	if (log->started)
		return -EBUSY;
	shift = pick_shift(*page_size, sorted, nr);
	ret = ranges_alloc(sorted, nr, shift, &log->ranges);
	if (ret)
		return ret;
	log->nr = nr;
	log->shift = shift;
	log->started = true;
	*page_size = 1ull << shift;
	return 0;
}

UIOMMU_EXPORT int uiommu_vfio_device_log_start(struct uiommu_vfio_device *d, uint64_t *page_size,
					       const struct uiommu_iova_range *ranges, uint32_t nr)
{
	struct uiommu_iova_range *sorted;
	int ret;

	if (!d->log.capable)
		return -ENOTTY;
	sorted = uiommu__calloc(nr ? nr : 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	ret = ranges_check(ranges, nr, sorted);
	if (!ret) {
		pthread_mutex_lock(&d->log.lock);
		ret = log_start_locked(&d->log, page_size, sorted, nr);
		pthread_mutex_unlock(&d->log.lock);
	}
	uiommu__free(sorted);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_device_log_stop(struct uiommu_vfio_device *d)
{
	if (!d->log.capable)
		return -ENOTTY;
	pthread_mutex_lock(&d->log.lock);
	vt1_log_fini(&d->log);
	pthread_mutex_unlock(&d->log.lock);
	return 0;
}

UIOMMU_EXPORT int uiommu_vfio_device_set_log_capable(struct uiommu_vfio_device *d, bool capable)
{
	int ret = 0;

	pthread_mutex_lock(&d->log.lock);
	if (d->log.started)
		ret = -EBUSY;
	else
		d->log.capable = capable;
	pthread_mutex_unlock(&d->log.lock);
	return ret;
}

/* ---- recording ---- */

/* Index of the first range whose last is >= @iova (nr if none). */
static uint32_t range_lower_bound(const struct vt1_log *log, uint64_t iova)
{
	uint32_t lo = 0, hi = log->nr;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (log->ranges[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void vt1_log_mark(struct vt1_log *log, uint64_t iova, uint64_t len)
{
	uint64_t last;

	if (!len || uiommu_check_add_overflow(iova, len - 1, &last))
		return;
	pthread_mutex_lock(&log->lock);
	for (uint32_t i = log->started ? range_lower_bound(log, iova) : log->nr;
	     i < log->nr && log->ranges[i].start <= last; i++) {
		const struct vt1_log_range *r = &log->ranges[i];
		uint64_t s = u64_max(r->start, iova), e = u64_min(r->last, last);

		uiommu_bitmap_set_range(r->bits, (s - r->start) >> log->shift,
					(e - r->start) >> log->shift);
	}
	pthread_mutex_unlock(&log->lock);
}

UIOMMU_EXPORT int uiommu_vfio_device_dma_write(struct uiommu_vfio_device *d, uint64_t iova,
					       const void *buf, size_t len)
{
	int ret;

	/* Emulated devices write through the container; rw records the log. */
	if (d->emu)
		return uiommu_vfio_dma_rw(d->emu, iova, (void *)(uintptr_t)buf, len, true);
	ret = uiommu_device_dma_write(uiommu_hwdev_dma(d->hw), iova, buf, len);
	if (!ret)
		vt1_log_mark(&d->log, iova, len);
	return ret;
}

/* ---- REPORT ---- */

/* Read-modify-write of the user's bitmap, one word at a time. */
struct ubits {
	uint64_t *u;
	uint64_t idx;   /* word held in 'word', UINT64_MAX: none */
	uint64_t word;
	int err;
};

static void ubits_flush(struct ubits *w)
{
	if (w->idx != UINT64_MAX && !w->err)
		w->err = uiommu__copy_to_user(&w->u[w->idx], &w->word, sizeof(w->word));
	w->idx = UINT64_MAX;
}

static void ubits_load(struct ubits *w, uint64_t idx)
{
	ubits_flush(w);
	if (!w->err)
		w->err = uiommu__copy_from_user(&w->word, &w->u[idx], sizeof(w->word));
	w->idx = w->err ? UINT64_MAX : idx;
}

/* Sets user bits first..last. */
static void ubits_set(struct ubits *w, uint64_t first, uint64_t last)
{
	for (uint64_t idx = first / 64; !w->err && idx <= last / 64; idx++) {
		uint64_t lo = idx == first / 64 ? first % 64 : 0;
		uint64_t hi = idx == last / 64 ? last % 64 : 63;

		if (w->idx != idx)
			ubits_load(w, idx);
		w->word |= (UINT64_MAX >> (63 - hi)) & (UINT64_MAX << lo);
	}
}

struct report {
	uint64_t iova, last;
	unsigned int pshift;    /* log2 of the report's page size */
	struct ubits w;
};

/* Reports the dirty granules of @r inside the report's range; clears whole ones. */
static void report_range(const struct vt1_log *log, const struct vt1_log_range *r,
			 struct report *rp)
{
	uint64_t s = u64_max(r->start, rp->iova), e = u64_min(r->last, rp->last);
	uint64_t g = (s - r->start) >> log->shift, gend = ((e - r->start) >> log->shift) + 1;

	while ((g = uiommu_bitmap_find_next_set(r->bits, gend, g)) != UIOMMU_BITMAP_NOT_FOUND) {
		uint64_t gs = r->start + (g << log->shift), gl = gs + (1ull << log->shift) - 1;
		uint64_t a = u64_max(gs, rp->iova), b = u64_min(gl, rp->last);

		ubits_set(&rp->w, (a - rp->iova) >> rp->pshift, (b - rp->iova) >> rp->pshift);
		if (rp->w.err)
			return;
		if (gs >= rp->iova && gl <= rp->last)
			uiommu_bitmap_clear(r->bits, g);
		g++;
	}
}

/* Is [iova, last] inside the union of the tracked ranges? */
static bool log_covers(const struct vt1_log *log, uint64_t iova, uint64_t last)
{
	uint32_t i = range_lower_bound(log, iova);
	uint64_t cur = iova;

	for (; i < log->nr && log->ranges[i].start <= cur; i++) {
		if (log->ranges[i].last >= last)
			return true;
		cur = log->ranges[i].last + 1;
	}
	return false;
}

static int report_locked(const struct vt1_log *log, struct report *rp)
{
	if (!log->capable)
		return -ENOTTY;
	if (!log->started || !log_covers(log, rp->iova, rp->last))
		return -EINVAL;
	for (uint32_t i = range_lower_bound(log, rp->iova);
	     i < log->nr && log->ranges[i].start <= rp->last && !rp->w.err; i++)
		report_range(log, &log->ranges[i], rp);
	ubits_flush(&rp->w);
	return rp->w.err;
}

UIOMMU_EXPORT int uiommu_vfio_device_log_report(struct uiommu_vfio_device *d, uint64_t iova,
						uint64_t length, uint64_t page_size,
						uint64_t *bitmap)
{
	struct report rp = { .iova = iova, .w = { .u = bitmap, .idx = UINT64_MAX } };
	uint64_t nbits;
	int ret;

	if (!d->log.capable)
		return -ENOTTY;
	if (page_size < 4096 || (page_size & (page_size - 1)))
		return -EINVAL;
	if (uiommu_check_add_overflow(iova, length, &nbits))
		return -EOVERFLOW;
	if (!length)
		return -EINVAL;
	rp.last = iova + length - 1;
	rp.pshift = (unsigned int)__builtin_ctzll(page_size);
	nbits = ((length - 1) >> rp.pshift) + 1;
	/* As the kernel pins the whole user bitmap before reading the log. */
	ret = uiommu__user_check(bitmap, uiommu_bitmap_words(nbits) * 8, true);
	if (ret)
		return ret;
	pthread_mutex_lock(&d->log.lock);
	ret = report_locked(&d->log, &rp);
	pthread_mutex_unlock(&d->log.lock);
	return ret;
}
