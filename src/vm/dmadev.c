// SPDX-License-Identifier: MIT
/*
 * The emulated passthrough DMA device: creation, destruction and the
 * controls that are not the migration state machine (workload, throttle,
 * statistics, the device-side write log, the layout).
 *
 * A device is guest RAM (host pointer, bytes; GPA 0 at the pointer), a DMA
 * region inside it split into the network ring and the block area, the
 * iommufd objects of its set-up (dmadev_setup.c; or the type1 group and
 * pins of dmadev_type1.c), a device thread
 * (dmadev_thread.c), its migration state (dmadev_fsm.c) and the log of the
 * guest pages it wrote: one bit per 4 KiB page of guest RAM, set atomically
 * after each write completes, taken and cleared a word at a time with an
 * atomic exchange, so a bit is never lost between the device and a reader.
 *
 * Locks (see dmadev_internal.h): the workload, throttle and counters are part
 * of the running state and change under the device lock; the thread is
 * woken so that a sleeping thread notices at once.
 *
 * Example: 64 MiB of guest RAM, DMA region [16 MiB, 32 MiB), ring_bytes 0:
 * the ring is [16 MiB, 20 MiB) (2048 buffers), the block area [20 MiB,
 * 32 MiB) (3072 pages); the log has 16384 bits.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <uiommu/bitmap.h>

#include "vm/dmadev_internal.h"

#define PPM 1000000.0

static bool aligned(uint64_t v)
{
	return !(v % DMADEV_PAGE);
}

static int workload_check(const struct uiommu_dmadev_workload *wl)
{
	if ((unsigned int)wl->pattern > UIOMMU_DMADEV_MIXED ||
	    wl->rate_bytes_per_sec > UIOMMU_DMADEV_MAX_RATE)
		return -EINVAL;
	return 0;
}

static uint64_t default_ring_bytes(uint64_t dma_bytes)
{
	return u64_max(DMADEV_PAGE, dma_bytes / 4 / DMADEV_PAGE * DMADEV_PAGE);
}

static int cfg_check(const struct uiommu_dmadev_cfg *cfg)
{
	uint64_t end, ring = cfg->ring_bytes ? cfg->ring_bytes : default_ring_bytes(cfg->dma_bytes);

	if (!cfg->mem || !aligned((uintptr_t)cfg->mem) || !cfg->mem_bytes ||
	    !aligned(cfg->mem_bytes))
		return -EINVAL;
	if (!aligned(cfg->dma_gpa) || !aligned(cfg->dma_bytes) ||
	    cfg->dma_bytes < UIOMMU_DMADEV_MIN_DMA_BYTES)
		return -EINVAL;
	if (uiommu_check_add_overflow(cfg->dma_gpa, cfg->dma_bytes, &end) || end > cfg->mem_bytes)
		return -EINVAL;
	if (!aligned(ring) || !ring || ring > cfg->dma_bytes - UIOMMU_DMADEV_BLOCK_MAX)
		return -EINVAL;
	if ((unsigned int)cfg->kind > UIOMMU_DMADEV_KIND_MDEV ||
	    (cfg->kind == UIOMMU_DMADEV_KIND_MDEV && !cfg->vfio) ||
	    cfg->pin_pages > cfg->dma_bytes / DMADEV_PAGE)
		return -EINVAL;
	return workload_check(&cfg->workload);
}

/* MDEV: the working set pinned from the start of the region (its rings first). */
static uint64_t pin_pages_of(const struct uiommu_dmadev_cfg *cfg)
{
	if (cfg->kind != UIOMMU_DMADEV_KIND_MDEV)
		return 0;
	if (cfg->pin_pages)
		return cfg->pin_pages;
	return u64_min(UIOMMU_DMADEV_PIN_DEFAULT, cfg->dma_bytes / DMADEV_PAGE);
}

static uint64_t pick_seed(const struct uiommu_dmadev *d)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return dmadev_mix((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
	       dmadev_mix((uintptr_t)d);
}

static void geometry_init(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg)
{
	d->mem = cfg->mem;
	d->mem_bytes = cfg->mem_bytes;
	d->ident.seed = cfg->seed ? cfg->seed : pick_seed(d);
	d->ident.dma_gpa = cfg->dma_gpa;
	d->ident.dma_bytes = cfg->dma_bytes;
	d->ident.ring_bytes = cfg->ring_bytes ? cfg->ring_bytes : default_ring_bytes(cfg->dma_bytes);
	d->nslots = d->ident.ring_bytes / DMADEV_SLOT;
	d->block_gpa = cfg->dma_gpa + d->ident.ring_bytes;
	d->block_pages = (cfg->dma_bytes - d->ident.ring_bytes) / DMADEV_PAGE;
	d->kind = cfg->kind;
	d->pin_gpa = cfg->dma_gpa;
	d->pin_pages = pin_pages_of(cfg);
	d->run.pattern = cfg->workload.pattern;
	d->run.rate_bps = cfg->workload.rate_bytes_per_sec;
	d->state = DMADEV_STATE_RUNNING;
}

/* glibc's initializers cannot fail with these attributes. */
static void sync_init(struct uiommu_dmadev *d)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &attr);
	pthread_cond_init(&d->idle, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->fsm_lock, NULL);
}

static void sync_fini(struct uiommu_dmadev *d)
{
	pthread_cond_destroy(&d->wake);
	pthread_cond_destroy(&d->idle);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->fsm_lock);
}

static void buffers_free(struct uiommu_dmadev *d)
{
	uiommu__free(d->log);
	uiommu__free(d->scratch);
	uiommu__free(d->stage);
	uiommu__free(d);
}

static int buffers_alloc(struct uiommu_dmadev *d, uint64_t mem_bytes)
{
	d->log_words = uiommu_bitmap_words(mem_bytes / DMADEV_PAGE);
	d->log = uiommu__calloc(d->log_words, sizeof(uint64_t));
	d->scratch = uiommu__aligned_zalloc(DMADEV_PAGE, UIOMMU_DMADEV_BLOCK_MAX);
	d->stage = uiommu__zalloc(DMADEV_STREAM_MAX);
	return d->log && d->scratch && d->stage ? 0 : -ENOMEM;
}

/* Through iommufd, or behind a type1 container. */
static int iommu_setup(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg)
{
	return cfg->vfio ? dmadev_type1_setup(d, cfg) : dmadev_iommu_setup(d, cfg);
}

static void iommu_teardown(struct uiommu_dmadev *d)
{
	if (d->vfio)
		dmadev_type1_teardown(d);
	else
		dmadev_iommu_teardown(d);
}

UIOMMU_EXPORT int uiommu_dmadev_create(const struct uiommu_dmadev_cfg *cfg,
				       struct uiommu_dmadev **out)
{
	struct uiommu_dmadev *d;
	int ret = cfg_check(cfg);

	if (ret)
		return ret;
	d = uiommu__zalloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	ret = buffers_alloc(d, cfg->mem_bytes);
	if (ret)
		goto err_free;
	geometry_init(d, cfg);
	sync_init(d);
	ret = iommu_setup(d, cfg);
	if (ret)
		goto err_sync_fini;
	ret = dmadev_thread_start(d);
	if (ret)
		goto err_teardown;
	*out = d;
	return 0;

err_teardown:
	iommu_teardown(d);
err_sync_fini:
	sync_fini(d);
err_free:
	buffers_free(d);
	return ret;
}

UIOMMU_EXPORT void uiommu_dmadev_destroy(struct uiommu_dmadev *d)
{
	if (!d)
		return;
	dmadev_thread_stop(d);
	dmadev_sessions_drop(d);
	iommu_teardown(d);
	sync_fini(d);
	buffers_free(d);
}

UIOMMU_EXPORT struct uiommu_ctx *uiommu_dmadev_ctx(struct uiommu_dmadev *d)
{
	return d->ctx;
}

UIOMMU_EXPORT uint32_t uiommu_dmadev_hwpt_id(struct uiommu_dmadev *d)
{
	return d->hwpt_id;
}

UIOMMU_EXPORT uint32_t uiommu_dmadev_ioas_id(struct uiommu_dmadev *d)
{
	return d->ioas_id;
}

UIOMMU_EXPORT uint32_t uiommu_dmadev_dev_id(struct uiommu_dmadev *d)
{
	return d->dev_id;
}

UIOMMU_EXPORT struct uiommu_hwdev *uiommu_dmadev_hwdev(struct uiommu_dmadev *d)
{
	return d->hw;
}

UIOMMU_EXPORT void uiommu_dmadev_pinned(struct uiommu_dmadev *d, uint64_t *gpa, uint64_t *pages)
{
	*gpa = d->pin_gpa;
	*pages = __atomic_load_n(&d->pinned, __ATOMIC_ACQUIRE) ? d->pin_pages : 0;
}

UIOMMU_EXPORT void uiommu_dmadev_layout(struct uiommu_dmadev *d,
					struct uiommu_dmadev_layout *layout)
{
	layout->ring_gpa = d->ident.dma_gpa;
	layout->ring_bytes = d->ident.ring_bytes;
	layout->block_gpa = d->block_gpa;
	layout->block_bytes = d->block_pages * DMADEV_PAGE;
}

UIOMMU_EXPORT int uiommu_dmadev_set_workload(struct uiommu_dmadev *d,
					     const struct uiommu_dmadev_workload *wl)
{
	int ret = workload_check(wl);

	if (ret)
		return ret;
	pthread_mutex_lock(&d->lock);
	d->run.pattern = wl->pattern;
	d->run.rate_bps = wl->rate_bytes_per_sec;
	d->pace.tokens = 0;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

UIOMMU_EXPORT int uiommu_dmadev_set_throttle(struct uiommu_dmadev *d, double fraction)
{
	double ppm = fraction * PPM + 0.5;

	if (!(fraction >= 0 && fraction < 1))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	d->run.throttle_ppm = ppm < PPM ? (uint64_t)ppm : (uint64_t)PPM - 1;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

UIOMMU_EXPORT void uiommu_dmadev_get_stats(struct uiommu_dmadev *d,
					   struct uiommu_dmadev_stats *st)
{
	pthread_mutex_lock(&d->lock);
	st->writes = d->run.seq;
	st->bytes = d->run.bytes;
	st->pages = d->run.pages;
	st->stall_ns = d->run.stall_ns;
	st->throttle_ns = d->throttle_ns;
	st->faults = d->run.faults;
	pthread_mutex_unlock(&d->lock);
}

UIOMMU_EXPORT uint64_t uiommu_dmadev_take_log(struct uiommu_dmadev *d, uint64_t *bits)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < d->log_words; i++) {
		bits[i] = __atomic_exchange_n(&d->log[i], 0, __ATOMIC_ACQ_REL);
		n += (uint64_t)__builtin_popcountll(bits[i]);
	}
	return n;
}
