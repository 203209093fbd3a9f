// SPDX-License-Identifier: MIT
/*
 * Pinning and rw for emulated (mdev-like) devices: the kernel's
 * vfio_pin_pages, vfio_unpin_pages and vfio_dma_rw on a type1 container.
 *
 * A pin is per CPU page and counted: pinning a page twice needs two unpins.
 * Pins are recorded in the entry that maps the page (vt1_pin), which is what
 * makes the page "always dirty" while tracking (vfio_type1_dirty.c) and what
 * stops an unmap: UNMAP of an entry with pins first calls the dma_unmap op of
 * every emulated device in the container, without the container lock, and
 * the device must unpin (vt1_notify_unmap; the walk in vfio_type1_dma.c then
 * starts again). The "physical page" handed out is the page's host virtual
 * address (the entry's current vaddr); the emulation has no other.
 *
 * The first pin made by a device of a group puts that group into pinned-page
 * dirty scope: from then on the kernel trusts its pins (and rw writes) to
 * describe everything it dirties, and the all-dirty rule no longer counts it.
 *
 * Deviation: pin takes a page-aligned iova (-EINVAL otherwise); the kernel
 * does not check and keys the pin by the unaligned address.
 */
#include <errno.h>
#include <linux/vfio.h>

#include "uapi/vfio_type1_internal.h"

/* ---- pin records ---- */

static struct vt1_pin *pin_find(struct vt1_dma *d, uint64_t iova)
{
	struct uiommu_itree_node *n = uiommu_itree_iter_first(&d->pins, iova, iova);

	return n ? container_of(n, struct vt1_pin, node) : NULL;
}

static int pin_get(struct vt1_dma *d, uint64_t iova)
{
	struct vt1_pin *p = pin_find(d, iova);

	if (p) {
		p->refs++;
		return 0;
	}
	p = uiommu__zalloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->node.start = p->node.last = iova;
	p->refs = 1;
	uiommu_itree_insert(&d->pins, &p->node);
	return 0;
}

static void pin_put(struct vt1_dma *d, uint64_t iova)
{
	struct vt1_pin *p = pin_find(d, iova);

	if (p && !--p->refs) {
		uiommu_itree_remove(&d->pins, &p->node);
		uiommu__free(p);
	}
}

void vt1_dma_unpin_all(struct vt1_dma *d)
{
	struct uiommu_itree_node *n;

	while ((n = uiommu_itree_first(&d->pins))) {
		uiommu_itree_remove(&d->pins, n);
		uiommu__free(container_of(n, struct vt1_pin, node));
	}
}

/* ---- unmap notification ---- */

struct notify_target {
	void (*fn)(void *opaque, uint64_t iova, uint64_t length);
	void *opaque;
};

static size_t notify_collect(struct uiommu_vfio_container *c, struct notify_target *t,
			     size_t cap)
{
	size_t n = 0;

	for (struct uiommu_vfio_group *g = c->groups; g; g = g->next) {
		for (struct uiommu_vfio_device *d = g->devices; d; d = d->next) {
			if (!d->emu || !d->emu->ops.dma_unmap)
				continue;
			if (t && n < cap)
				t[n] = (struct notify_target){ d->emu->ops.dma_unmap, d->emu->opaque };
			n++;
		}
	}
	return n;
}

void vt1_notify_unmap(struct uiommu_vfio_container *c, uint64_t iova, uint64_t last)
{
	size_t n = notify_collect(c, NULL, 0);
	struct notify_target *t = uiommu__calloc(n ? n : 1, sizeof(*t));

	/* Without memory nobody is asked; the caller's retry limit ends it. */
	if (!t)
		return;
	n = notify_collect(c, t, n);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++)
		t[i].fn(t[i].opaque, iova, last - iova + 1);
	pthread_mutex_lock(&c->lock);
	uiommu__free(t);
}

/* ---- pin, unpin ---- */

/* The device's container, locked, or NULL: see vt1_group_lock_container(). */
static struct uiommu_vfio_container *emudev_lock_container(struct uiommu_vfio_emudev *dev)
{
	return vt1_group_lock_container(dev->dev.group);
}

/* The checks shared by pin and rw once locked, in the kernel's order. */
static int locked_check(struct uiommu_vfio_container *c, bool need_v2)
{
	if (!c->type)
		return -ENOTTY;
	if (need_v2 && !c->v2)
		return -EACCES;
	if (c->vaddr_invalid_count)
		return -EBUSY;
	return 0;
}

/* Pins one page (prot checked, user memory looked at): the kernel's loop body. */
static int pin_one(struct uiommu_vfio_container *c, uint64_t iova, uint32_t prot, void **page)
{
	uint64_t pg = uiommu__page_size();
	struct vt1_dma *d = vt1_dma_find(c, iova, iova + pg - 1);
	uint64_t vaddr;
	int ret;

	if (!d)
		return -EINVAL;
	if ((d->prot & prot) != prot)
		return -EPERM;
	vaddr = d->vaddr + (iova - d->node.start);
	if (!pin_find(d, iova)) {
		ret = uiommu__user_check((void *)(uintptr_t)vaddr, pg, d->prot & UIOMMU_PROT_WRITE);
		if (ret)
			return ret;
	}
	ret = pin_get(d, iova);
	if (ret)
		return ret;
	vt1_dma_mark_dirty(c, d, iova, iova + pg - 1);
	*page = (void *)(uintptr_t)vaddr;
	return 0;
}

static void unpin_locked(struct uiommu_vfio_container *c, uint64_t iova, int npage)
{
	uint64_t pg = uiommu__page_size();

	for (int i = 0; i < npage; i++, iova += pg) {
		struct vt1_dma *d = vt1_dma_find(c, iova, iova + pg - 1);

		if (!d)
			break;
		pin_put(d, iova);
	}
}

static void enter_pinned_scope(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	if (g->pinned_scope)
		return;
	g->pinned_scope = true;
	if (g->attached)
		c->num_non_pinned--;
}

static int pin_locked(struct uiommu_vfio_container *c, struct uiommu_vfio_emudev *dev,
		      uint64_t iova, int npage, uint32_t prot, void **pages)
{
	uint64_t pg = uiommu__page_size(), last;
	int ret = locked_check(c, true), i;

	if (!ret && ((iova & (pg - 1)) ||
		     uiommu_check_add_overflow(iova, (uint64_t)npage * pg - 1, &last)))
		ret = -EINVAL;
	for (i = 0; !ret && i < npage; i++)
		ret = pin_one(c, iova + (uint64_t)i * pg, prot, &pages[i]);
	if (ret) {
		/* Pages [0, i - 1] were pinned; i failed. */
		unpin_locked(c, iova, i - 1 > 0 ? i - 1 : 0);
		return ret;
	}
	enter_pinned_scope(c, dev->dev.group);
	return npage;
}

UIOMMU_EXPORT int uiommu_vfio_pin_pages(struct uiommu_vfio_emudev *dev, uint64_t iova, int npage,
					uint32_t prot, void **pages)
{
	struct uiommu_vfio_container *c;
	int ret;

	if (!pages || npage <= 0 || !dev->ops.dma_unmap)
		return -EINVAL;
	if (npage > VT1_PIN_MAX)
		return -E2BIG;
	if (prot & ~(UIOMMU_PROT_READ | UIOMMU_PROT_WRITE))
		return -EINVAL;
	c = emudev_lock_container(dev);
	if (!c)
		return -EINVAL;
	ret = pin_locked(c, dev, iova, npage, prot, pages);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

UIOMMU_EXPORT void uiommu_vfio_unpin_pages(struct uiommu_vfio_emudev *dev, uint64_t iova,
					   int npage)
{
	struct uiommu_vfio_container *c;

	if (npage <= 0 || npage > VT1_PIN_MAX)
		return;
	c = emudev_lock_container(dev);
	if (!c)
		return;
	if (c->type)
		unpin_locked(c, iova, npage);
	pthread_mutex_unlock(&c->lock);
}

/* Pin records are per page, so counting the nodes in range counts pages. */
static uint64_t count_pinned_locked(struct uiommu_vfio_container *c, uint64_t iova, uint64_t last)
{
	struct uiommu_itree_node *n;
	uint64_t count = 0;

	for (struct vt1_dma *d = vt1_dma_first(c, iova, last); d; d = vt1_dma_next(d, iova, last))
		uiommu_itree_for_each_overlap(n, &d->pins, iova, last)
			count++;
	return count;
}

UIOMMU_EXPORT int uiommu_vfio_count_pinned(struct uiommu_vfio_container *c, uint64_t iova,
					   uint64_t size, uint64_t *pages)
{
	uint64_t last;

	if (!size || uiommu_check_add_overflow(iova, size - 1, &last))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	*pages = c->type ? count_pinned_locked(c, iova, last) : 0;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- rw ---- */

/* One entry's part of an rw; *done = bytes copied. */
static int rw_chunk(struct uiommu_vfio_container *c, uint64_t iova, char *data, size_t len,
		    bool write, size_t *done)
{
	struct vt1_dma *d = vt1_dma_find(c, iova, iova);
	uint64_t off, count;
	void *uva;
	int ret;

	if (!d)
		return -EINVAL;
	/* As the kernel: a write also needs READ permission. */
	if ((write && !(d->prot & UIOMMU_PROT_WRITE)) || !(d->prot & UIOMMU_PROT_READ))
		return -EPERM;
	off = iova - d->node.start;
	count = u64_min(len, d->node.last - iova + 1);
	uva = (void *)(uintptr_t)(d->vaddr + off);
	ret = write ? uiommu__copy_to_user(uva, data, count) : uiommu__copy_from_user(data, uva, count);
	if (ret)
		return ret;
	if (write)
		vt1_dma_mark_dirty(c, d, iova, iova + count - 1);
	*done = count;
	/* Past the top of the IOVA space nothing can be mapped. */
	return (len > count && d->node.last == UINT64_MAX) ? -EINVAL : 0;
}

static int rw_locked(struct uiommu_vfio_container *c, struct uiommu_vfio_device *dev,
		     uint64_t iova, char *data, size_t len, bool write)
{
	int ret = locked_check(c, false);

	while (!ret && len) {
		size_t done = 0;

		ret = rw_chunk(c, iova, data, len, write, &done);
		/* The device's own record of what it wrote (DMA logging). */
		if (write)
			vt1_log_mark(&dev->log, iova, done);
		iova += done;
		data += done;
		len -= done;
	}
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_dma_rw(struct uiommu_vfio_emudev *dev, uint64_t iova, void *data,
				     size_t len, bool write)
{
	struct uiommu_vfio_container *c;
	int ret;

	if (!data || !len)
		return -EINVAL;
	c = emudev_lock_container(dev);
	if (!c)
		return -EINVAL;
	ret = rw_locked(c, &dev->dev, iova, data, len, write);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
