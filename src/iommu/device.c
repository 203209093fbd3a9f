/* SPDX-License-Identifier: MIT */
/*
 * Emulated DMA masters: the IOTLB, the DMA path, IO page faults, and the drain
 * that makes IOTLB invalidation synchronous.
 *
 * A device attached to a domain reads and writes by IOVA. Each access looks up
 * a per-device, direct-mapped IOTLB keyed by smallest-page number; an entry
 * caches a whole leaf (its IOVA range, host address, permissions) and whether
 * the leaf is known to be dirty. On a miss the page table is walked, which
 * sets the leaf's Accessed bit. A write through an entry not known dirty marks
 * the leaf Dirty (dirty.c) and remembers it, so later writes through the same
 * entry skip the marking, as hardware does.
 *
 * Invalidation: a domain has a generation number; an IOTLB entry is valid only
 * while its generation is the domain's. Generations come from one global
 * counter, so an entry can never match another domain either. Invalidating is
 * taking a new generation and then draining: waiting until every attached
 * device has finished the DMA it had in flight. A DMA announces itself by
 * making its device's sequence counter odd and even again when done; the
 * drain waits on odd counters. Hence after an unmap returns no device touches
 * the unmapped memory, page-table nodes can be freed, and after a harvest
 * returns every write it did not report will mark again.
 *
 * The announcement must be ordered before the DMA reads the domain, its
 * generation and its dirty epoch, and the invalidator's store of those before
 * its read of the counters (store-load ordering on both sides). A fence on
 * every DMA costs ~10 ns on our VMs, as much as a 64-byte copy; so the DMA
 * side uses only a compiler barrier and the drain side, which is rare, makes
 * every running thread of the process execute a full barrier with
 * membarrier(PRIVATE_EXPEDITED), ~2.5 us, before it reads the counters (the
 * asymmetric fence of user-space RCU). Where membarrier is unavailable the DMA
 * falls back to a sequentially consistent store.
 *
 * A DMA translates every page first and copies nothing unless all of them
 * are mapped with the needed permission; otherwise it records an IO page
 * fault and fails. The DMA calls of one device are not reentrant: one thread
 * at a time per device.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "iommu/iommu_internal.h"

#define SEGS_ON_STACK 16
#define DRAIN_SPINS 1024

struct iotlb_entry {
	uint64_t tag; /* smallest-page number + 1; 0 is empty */
	uint64_t gen;
	uint64_t first, last; /* the cached leaf */
	uintptr_t host;       /* host address of first */
	uint32_t prot;
	bool dirty;
};

/* Single-writer counters that other threads may read. */
struct dev_counter {
	_Atomic uint64_t v;
};

struct uiommu_device {
	_Atomic(struct uiommu_domain *) domain;
	_Atomic uint64_t seq; /* odd while a DMA is in flight */
	struct iotlb_entry *iotlb;
	uint64_t iotlb_mask;
	pthread_mutex_t lock; /* attach/detach */
	pthread_mutex_t fault_lock;
	struct uiommu_iopf *faults;
	unsigned int fault_cap, fault_head, fault_nr;
	struct dev_counter hits, misses, nfaults, written, read;
};

struct seg {
	uintptr_t host;
	size_t len;
};

struct dma_req {
	uint64_t iova;
	size_t len;
	bool write;
	struct seg *segs;
	unsigned int nr_segs, cap_segs;
	unsigned int need_mark;
};

static _Atomic uint64_t global_gen;
static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static bool use_membarrier;

static void membarrier_register(void)
{
	use_membarrier = !syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
}

/* The DMA side of the announcement (see the file comment). */
static void dma_announce(struct uiommu_device *dev, uint64_t odd)
{
	if (likely(use_membarrier)) {
		atomic_store_explicit(&dev->seq, odd, memory_order_relaxed);
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		atomic_store(&dev->seq, odd);
	}
}

/* The drain side: every running thread has passed a full barrier. */
static void drain_fence(void)
{
	if (use_membarrier && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		use_membarrier = false; /* cannot happen once registered; stay safe */
	atomic_thread_fence(memory_order_seq_cst);
}

static void counter_add(struct dev_counter *c, uint64_t n)
{
	atomic_store_explicit(&c->v, atomic_load_explicit(&c->v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static uint64_t counter_get(struct dev_counter *c)
{
	return atomic_load_explicit(&c->v, memory_order_relaxed);
}

UIOMMU_EXPORT int uiommu_device_create(const struct uiommu_device_cfg *cfg,
				       struct uiommu_device **out)
{
	unsigned int entries = cfg && cfg->iotlb_entries ? cfg->iotlb_entries : 64;
	unsigned int nfaults = cfg && cfg->fault_log ? cfg->fault_log : 64;
	struct uiommu_device *dev;

	if (entries & (entries - 1))
		return -EINVAL;
	pthread_once(&membarrier_once, membarrier_register);
	dev = uiommu__zalloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->iotlb = uiommu__calloc(entries, sizeof(*dev->iotlb));
	dev->faults = uiommu__calloc(nfaults, sizeof(*dev->faults));
	if (!dev->iotlb || !dev->faults)
		goto err_free;
	dev->iotlb_mask = entries - 1;
	dev->fault_cap = nfaults;
	pthread_mutex_init(&dev->lock, NULL);
	pthread_mutex_init(&dev->fault_lock, NULL);
	*out = dev;
	return 0;
err_free:
	uiommu__free(dev->iotlb);
	uiommu__free(dev->faults);
	uiommu__free(dev);
	return -ENOMEM;
}

UIOMMU_EXPORT void uiommu_device_destroy(struct uiommu_device *dev)
{
	if (!dev)
		return;
	uiommu_device_detach(dev);
	pthread_mutex_destroy(&dev->lock);
	pthread_mutex_destroy(&dev->fault_lock);
	uiommu__free(dev->iotlb);
	uiommu__free(dev->faults);
	uiommu__free(dev);
}

/* ---- invalidation and drain ---- */

static void wait_idle(struct uiommu_device *dev)
{
	uint64_t s = atomic_load(&dev->seq);

	if (!(s & 1))
		return;
	for (unsigned int spins = 0; atomic_load_explicit(&dev->seq, memory_order_acquire) == s;
	     spins++) {
		if (spins >= DRAIN_SPINS)
			sched_yield();
	}
}

static void drain_one(struct uiommu_device *dev)
{
	drain_fence();
	wait_idle(dev);
}

void domain_drain(struct uiommu_domain *d)
{
	if (!d->nr_devs)
		return;
	drain_fence();
	for (unsigned int i = 0; i < d->nr_devs; i++)
		wait_idle(d->devs[i]);
}

static void new_generation(struct uiommu_domain *d)
{
	atomic_store(&d->gen, atomic_fetch_add(&global_gen, 1) + 1);
}

void domain_iotlb_flush(struct uiommu_domain *d)
{
	/* No device, no IOTLB; attach takes a new generation anyway. */
	if (d->nr_devs)
		new_generation(d);
	d->stats.iotlb_flushes++;
	domain_drain(d);
}

/* ---- attach / detach ---- */

static int devs_add(struct uiommu_domain *d, struct uiommu_device *dev)
{
	if (d->nr_devs == d->cap_devs) {
		unsigned int cap = d->cap_devs ? 2 * d->cap_devs : 4;
		struct uiommu_device **devs = uiommu__calloc(cap, sizeof(*devs));

		if (!devs)
			return -ENOMEM;
		if (d->nr_devs)
			memcpy(devs, d->devs, d->nr_devs * sizeof(*devs));
		uiommu__free(d->devs);
		d->devs = devs;
		d->cap_devs = cap;
	}
	d->devs[d->nr_devs++] = dev;
	return 0;
}

static void devs_remove(struct uiommu_domain *d, struct uiommu_device *dev)
{
	for (unsigned int i = 0; i < d->nr_devs; i++) {
		if (d->devs[i] == dev) {
			d->devs[i] = d->devs[--d->nr_devs];
			return;
		}
	}
}

UIOMMU_EXPORT int uiommu_device_attach(struct uiommu_device *dev, struct uiommu_domain *d)
{
	int rc = -EBUSY;

	pthread_mutex_lock(&dev->lock);
	if (atomic_load(&dev->domain))
		goto out_unlock;
	pthread_mutex_lock(&d->lock);
	rc = devs_add(d, dev);
	if (!rc) {
		/* Whatever this device cached before, under any domain, is stale. */
		new_generation(d);
		atomic_store(&dev->domain, d);
	}
	pthread_mutex_unlock(&d->lock);
out_unlock:
	pthread_mutex_unlock(&dev->lock);
	return rc;
}

UIOMMU_EXPORT void uiommu_device_detach(struct uiommu_device *dev)
{
	struct uiommu_domain *d;

	pthread_mutex_lock(&dev->lock);
	d = atomic_load(&dev->domain);
	if (d) {
		pthread_mutex_lock(&d->lock);
		devs_remove(d, dev);
		atomic_store(&dev->domain, NULL);
		/*
		 * Under the lock: once off the list, no unmap or harvest waits for
		 * this device, so its DMA in flight must be over before they run.
		 */
		drain_one(dev);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_unlock(&dev->lock);
}

void domain_detach_all(struct uiommu_domain *d)
{
	for (;;) {
		struct uiommu_device *dev = NULL;

		pthread_mutex_lock(&d->lock);
		if (d->nr_devs)
			dev = d->devs[0];
		pthread_mutex_unlock(&d->lock);
		if (!dev)
			return;
		uiommu_device_detach(dev);
	}
}

/* ---- faults ---- */

static void fault_record(struct uiommu_device *dev, uint64_t iova, bool write, bool perm)
{
	struct uiommu_iopf f = {
		.iova = iova,
		.flags = (write ? UIOMMU_IOPF_WRITE : 0) | (perm ? UIOMMU_IOPF_PERM : 0),
	};

	pthread_mutex_lock(&dev->fault_lock);
	counter_add(&dev->nfaults, 1);
	if (dev->fault_nr < dev->fault_cap) {
		dev->faults[(dev->fault_head + dev->fault_nr) % dev->fault_cap] = f;
		dev->fault_nr++;
	}
	pthread_mutex_unlock(&dev->fault_lock);
}

UIOMMU_EXPORT int uiommu_device_fault_pop(struct uiommu_device *dev, struct uiommu_iopf *fault)
{
	int rc = -EAGAIN;

	pthread_mutex_lock(&dev->fault_lock);
	if (dev->fault_nr) {
		*fault = dev->faults[dev->fault_head];
		dev->fault_head = (dev->fault_head + 1) % dev->fault_cap;
		dev->fault_nr--;
		rc = 0;
	}
	pthread_mutex_unlock(&dev->fault_lock);
	return rc;
}

UIOMMU_EXPORT void uiommu_device_get_stats(struct uiommu_device *dev,
					   struct uiommu_device_stats *stats)
{
	stats->iotlb_hits = counter_get(&dev->hits);
	stats->iotlb_misses = counter_get(&dev->misses);
	stats->faults = counter_get(&dev->nfaults);
	stats->bytes_written = counter_get(&dev->written);
	stats->bytes_read = counter_get(&dev->read);
}

/* ---- translation ---- */

static struct iotlb_entry *iotlb_fill(struct uiommu_device *dev, struct uiommu_domain *d,
				      uint64_t iova, uint64_t gen, struct iotlb_entry *e)
{
	struct pt_path path;
	uint64_t size;

	counter_add(&dev->misses, 1);
	if (pt_walk(d, iova, &path))
		return NULL;
	pt_touch_accessed(&path);
	size = 1ull << pt_shift(d->fmt, path.level);
	e->tag = (iova >> d->fmt->base_shift) + 1;
	e->gen = gen;
	e->first = iova & ~(size - 1);
	e->last = e->first + size - 1;
	e->host = (uintptr_t)(path.pte & ~PTE_FLAGS_MASK);
	e->prot = pte_prot(path.pte);
	e->dirty = false;
	return e;
}

static struct iotlb_entry *iotlb_get(struct uiommu_device *dev, struct uiommu_domain *d,
				     uint64_t iova, uint64_t gen)
{
	uint64_t pfn = iova >> d->fmt->base_shift;
	struct iotlb_entry *e = &dev->iotlb[pfn & dev->iotlb_mask];

	if (likely(e->tag == pfn + 1 && e->gen == gen)) {
		counter_add(&dev->hits, 1);
		return e;
	}
	return iotlb_fill(dev, d, iova, gen, e);
}

static int seg_add(struct dma_req *r, uintptr_t host, size_t len)
{
	struct seg *last = r->nr_segs ? &r->segs[r->nr_segs - 1] : NULL;

	if (last && last->host + last->len == host) {
		last->len += len;
		return 0;
	}
	if (r->nr_segs == r->cap_segs) {
		/* Fragmented beyond the stack array: room for one segment a page. */
		size_t cap = r->len / 512 + 2;
		struct seg *segs;

		if (r->cap_segs != SEGS_ON_STACK || !(segs = uiommu__calloc(cap, sizeof(*segs))))
			return -ENOMEM;
		memcpy(segs, r->segs, r->nr_segs * sizeof(*segs));
		r->segs = segs;
		r->cap_segs = (unsigned int)cap;
	}
	r->segs[r->nr_segs++] = (struct seg){ .host = host, .len = len };
	return 0;
}

/* Translates every page of the request; on failure *fault_iova says where. */
static int translate(struct uiommu_device *dev, struct uiommu_domain *d, struct dma_req *r,
		     uint64_t gen, uint64_t *fault_iova)
{
	uint32_t need = r->write ? UIOMMU_PROT_WRITE : UIOMMU_PROT_READ;
	bool tracking = r->write && atomic_load_explicit(&d->tracking, memory_order_relaxed);
	size_t pos = 0;

	while (pos < r->len) {
		uint64_t at = r->iova + pos;
		struct iotlb_entry *e = iotlb_get(dev, d, at, gen);
		size_t n;
		int rc;

		*fault_iova = at;
		if (!e)
			return -EFAULT;
		if (!(e->prot & need))
			return -EPERM;
		n = (size_t)u64_min(e->last - at + 1, r->len - pos);
		rc = seg_add(r, e->host + (at - e->first), n);
		if (rc)
			return rc;
		r->need_mark += tracking && !e->dirty;
		pos += n;
	}
	return 0;
}

/* Marks Dirty the leaves of the request not yet known dirty in the IOTLB. */
static void mark_dirty(struct uiommu_device *dev, struct uiommu_domain *d, struct dma_req *r,
		       uint64_t gen)
{
	size_t pos = 0;

	while (pos < r->len) {
		uint64_t at = r->iova + pos;
		struct iotlb_entry *e = iotlb_get(dev, d, at, gen);
		struct pt_path path;

		/* An entry evicted and now unmapped: a racing unmap, nothing to track. */
		if (!e)
			return;
		if (!e->dirty && !pt_walk(d, at, &path)) {
			dirty_mark(d, &path);
			e->dirty = true;
		}
		pos += (size_t)u64_min(e->last - at + 1, r->len - pos);
	}
}

static void copy_segs(const struct dma_req *r, void *buf)
{
	char *p = buf;

	for (unsigned int i = 0; i < r->nr_segs; i++) {
		void *host = (void *)r->segs[i].host;

		if (r->write)
			memcpy(host, p, r->segs[i].len);
		else
			memcpy(p, host, r->segs[i].len);
		p += r->segs[i].len;
	}
}

static int dma_in_domain(struct uiommu_device *dev, struct uiommu_domain *d, struct dma_req *r,
			 void *buf, uint64_t *fault_iova)
{
	uint64_t gen = atomic_load(&d->gen);
	int rc = translate(dev, d, r, gen, fault_iova);

	if (rc)
		return rc;
	if (r->need_mark)
		mark_dirty(dev, d, r, gen);
	copy_segs(r, buf);
	return 0;
}

static int dma(struct uiommu_device *dev, uint64_t iova, void *buf, size_t len, bool write)
{
	struct seg stack_segs[SEGS_ON_STACK];
	struct dma_req r = { .iova = iova, .len = len, .write = write, .segs = stack_segs,
			     .cap_segs = SEGS_ON_STACK };
	uint64_t s = atomic_load_explicit(&dev->seq, memory_order_relaxed);
	uint64_t fault_iova = iova;
	struct uiommu_domain *d;
	int rc = -EFAULT;

	if (!len)
		return 0;
	if (iova + (len - 1) < iova)
		return -EOVERFLOW;
	/* Announce the DMA before reading the domain and its generation. */
	dma_announce(dev, s + 1);
	d = atomic_load(&dev->domain);
	if (d)
		rc = dma_in_domain(dev, d, &r, buf, &fault_iova);
	atomic_store_explicit(&dev->seq, s + 2, memory_order_release);
	if (r.segs != stack_segs)
		uiommu__free(r.segs);
	if (rc == -EFAULT || rc == -EPERM)
		fault_record(dev, fault_iova, write, rc == -EPERM);
	else if (!rc)
		counter_add(write ? &dev->written : &dev->read, len);
	return rc;
}

UIOMMU_EXPORT int uiommu_device_dma_write(struct uiommu_device *dev, uint64_t iova,
					  const void *buf, size_t len)
{
	return dma(dev, iova, (void *)(uintptr_t)buf, len, true);
}

UIOMMU_EXPORT int uiommu_device_dma_read(struct uiommu_device *dev, uint64_t iova, void *buf,
					 size_t len)
{
	return dma(dev, iova, buf, len, false);
}
