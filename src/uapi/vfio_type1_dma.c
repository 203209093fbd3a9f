// SPDX-License-Identifier: MIT
/*
 * vfio_dma entries: MAP_DMA and UNMAP_DMA with type1's rules (uapi-spec
 * §1.4, §1.5).
 *
 * Each successful MAP creates exactly one entry [iova, last] (never merged
 * with a neighbour) and one IOAS area at the same IOVA over the same user
 * memory; the IOAS mirrors it into the domains of the IOMMU-backed groups and
 * checks the user memory when any is attached (-EFAULT), and only then, as
 * the kernel pins only when an IOMMU domain exists. Entries count against
 * dma_avail (65535 by default).
 *
 * UNMAP removes whole entries only:
 *  - v2: a range that starts or ends inside an entry is -EINVAL (no
 *    bisecting); gaps are fine, an empty range answers 0 bytes.
 *  - v1: the walk stops at an entry that starts below the request (so a
 *    request starting inside a mapping answers 0 bytes), and an entry whose
 *    first byte the request covers goes whole, even past the request's end.
 *    (The kernel's v1 never splits an entry; neither do we.)
 * Entries that emulated devices pinned are not removed under them: the lock
 * is dropped, every emulated device's dma_unmap is called for the entry, and
 * the walk starts again (vt1_notify_unmap). It is not atomic: entries removed
 * before an error stay removed.
 *
 * VADDR (v2 live update): UNMAP with VADDR marks the entries "vaddr invalid"
 * and takes them out of the IOAS, so that DMA to them faults (an IO page
 * fault, nothing written) instead of reaching memory the program may be
 * about to unmap; pin and rw answer -EBUSY, attaching a group too. MAP with
 * VADDR and exactly the same iova/size gives the entry its new vaddr and maps
 * it again. The kernel keeps DMA going to the old pages instead: there the
 * pages are pinned physical memory, here they are the old virtual addresses.
 */
#include <errno.h>
#include <linux/vfio.h>

#include "uapi/vfio_type1_internal.h"

#define MAP_FLAGS (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR)
#define UNMAP_FLAGS                                                                            \
	(VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)

/* ---- lookup ---- */

struct vt1_dma *vt1_dma_first(struct uiommu_vfio_container *c, uint64_t start, uint64_t last)
{
	struct uiommu_itree_node *n = uiommu_itree_iter_first(&c->dmas, start, last);

	return n ? container_of(n, struct vt1_dma, node) : NULL;
}

struct vt1_dma *vt1_dma_find(struct uiommu_vfio_container *c, uint64_t start, uint64_t last)
{
	return vt1_dma_first(c, start, last);
}

/* The entry after @d that overlaps [start, last]; entries are disjoint. */
struct vt1_dma *vt1_dma_next(struct vt1_dma *d, uint64_t start, uint64_t last)
{
	struct uiommu_itree_node *n = uiommu_itree_iter_next(&d->node, start, last);

	return n ? container_of(n, struct vt1_dma, node) : NULL;
}

int vt1_check_no_bisect(struct uiommu_vfio_container *c, uint64_t iova, uint64_t last)
{
	struct vt1_dma *d = vt1_dma_find(c, iova, iova);

	if (d && d->node.start != iova)
		return -EINVAL;
	d = vt1_dma_find(c, last, last);
	if (d && d->node.last != last)
		return -EINVAL;
	return 0;
}

/* ---- removal ---- */

void vt1_dma_remove(struct uiommu_vfio_container *c, struct vt1_dma *d)
{
	if (d->vaddr_invalid)
		c->vaddr_invalid_count--;
	else
		uiommu_ioas_unmap(c->ioas, d->node.start, dma_size(d), NULL);
	vt1_dma_unpin_all(d);
	vt1_dma_bitmap_free(d);
	uiommu_itree_remove(&c->dmas, &d->node);
	uiommu__free(d);
	c->dma_avail++;
}

/* ---- map ---- */

static uint32_t map_prot(uint32_t flags)
{
	return (flags & VFIO_DMA_MAP_FLAG_READ ? UIOMMU_PROT_READ : 0) |
	       (flags & VFIO_DMA_MAP_FLAG_WRITE ? UIOMMU_PROT_WRITE : 0);
}

/* The checks before the lock, in the kernel's order. */
static int map_check_args(uint32_t flags, uint64_t vaddr, uint64_t iova, uint64_t size)
{
	bool set_vaddr = flags & VFIO_DMA_MAP_FLAG_VADDR;
	uint64_t last;

	if (flags & ~MAP_FLAGS)
		return -EINVAL;
	if (!size)
		return -EINVAL;
	if (uiommu_check_add_overflow(iova, size - 1, &last) ||
	    uiommu_check_add_overflow(vaddr, size - 1, &last))
		return -EOVERFLOW;
	if (!map_prot(flags) == !set_vaddr)
		return -EINVAL;
	return 0;
}

static int ioas_map_entry(struct uiommu_vfio_container *c, struct vt1_dma *d, uint64_t vaddr)
{
	uint64_t iova = d->node.start;

	return uiommu_ioas_map(c->ioas, (void *)(uintptr_t)vaddr, dma_size(d), d->prot,
			       UIOMMU_IOAS_MAP_FIXED_IOVA, &iova);
}

/* MAP with VADDR: a new vaddr for an invalidated entry of the same range. */
static int map_update_vaddr(struct uiommu_vfio_container *c, uint64_t vaddr, uint64_t iova,
			    uint64_t last)
{
	struct vt1_dma *d = vt1_dma_find(c, iova, last);
	int ret;

	if (!d)
		return -ENOENT;
	if (!d->vaddr_invalid || d->node.start != iova || d->node.last != last)
		return -EINVAL;
	ret = ioas_map_entry(c, d, vaddr);
	if (ret)
		return ret;
	d->vaddr = vaddr;
	d->vaddr_invalid = false;
	c->vaddr_invalid_count--;
	return 0;
}

static int map_new_entry(struct uiommu_vfio_container *c, uint32_t prot, uint64_t vaddr,
			 uint64_t iova, uint64_t last)
{
	struct vt1_dma *d;
	int ret;

	if (vt1_dma_find(c, iova, last))
		return -EEXIST;
	if (!c->dma_avail)
		return -ENOSPC;
	if (c->iovas.nr && !uiommu_iova_list_contains(&c->iovas, iova, last))
		return -EINVAL;
	d = uiommu__zalloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->node.start = iova;
	d->node.last = last;
	d->vaddr = vaddr;
	d->prot = prot;
	d->iommu_mapped = c->nr_domains > 0;
	uiommu_itree_init(&d->pins);
	ret = ioas_map_entry(c, d, vaddr);
	if (ret)
		goto err_free;
	if (c->dirty_tracking) {
		ret = vt1_dma_bitmap_alloc(c, d);
		if (ret)
			goto err_unmap;
	}
	uiommu_itree_insert(&c->dmas, &d->node);
	c->dma_avail--;
	return 0;

err_unmap:
	uiommu_ioas_unmap(c->ioas, iova, last - iova + 1, NULL);
err_free:
	uiommu__free(d);
	return ret;
}

static int map_locked(struct uiommu_vfio_container *c, uint32_t flags, uint64_t vaddr,
		      uint64_t iova, uint64_t size)
{
	uint64_t pgmask = vt1_pgsize(c) - 1, last = iova + size - 1;

	if (!c->type)
		return -EINVAL;
	if ((size | iova | vaddr) & pgmask)
		return -EINVAL;
	if (flags & VFIO_DMA_MAP_FLAG_VADDR)
		return map_update_vaddr(c, vaddr, iova, last);
	return map_new_entry(c, map_prot(flags), vaddr, iova, last);
}

UIOMMU_EXPORT int uiommu_vfio_map_dma(struct uiommu_vfio_container *c, uint32_t flags,
				      uint64_t vaddr, uint64_t iova, uint64_t size)
{
	int ret = map_check_args(flags, vaddr, iova, size);

	if (ret)
		return ret;
	pthread_mutex_lock(&c->lock);
	ret = map_locked(c, flags, vaddr, iova, size);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* ---- unmap ---- */

struct unmap_req {
	uint32_t flags;
	uint64_t iova, last;
	const struct uiommu_vfio_bitmap *bitmap;
	uint64_t unmapped;
};

/* §1.5 steps 4 to 9, in the kernel's order. */
static int unmap_check(struct uiommu_vfio_container *c, struct unmap_req *r, uint64_t size)
{
	uint64_t pgmask = vt1_pgsize(c) - 1;

	if (!c->type)
		return -EINVAL;
	if ((r->flags & VFIO_DMA_UNMAP_FLAG_VADDR) && c->nr_emulated)
		return -EBUSY;
	if (r->iova & pgmask)
		return -EINVAL;
	if (r->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		if (r->iova || size)
			return -EINVAL;
		r->last = UINT64_MAX;
	} else if (!size || (size & pgmask)) {
		return -EINVAL;
	} else if (uiommu_check_add_overflow(r->iova, size - 1, &r->last)) {
		return -EOVERFLOW;
	}
	if ((r->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) &&
	    (!c->dirty_tracking || r->bitmap->pgsize != vt1_pgsize(c)))
		return -EINVAL;
	if (c->v2 && !(r->flags & VFIO_DMA_UNMAP_FLAG_ALL))
		return vt1_check_no_bisect(c, r->iova, r->last);
	return 0;
}

/* The first entry the walk takes from @from, or NULL (v1's early stop). */
static struct vt1_dma *walk_first(struct uiommu_vfio_container *c, const struct unmap_req *r,
				  uint64_t from)
{
	struct vt1_dma *d = vt1_dma_first(c, from, r->last);

	if (d && !c->v2 && d->node.start < r->iova)
		return NULL;
	return d;
}

/* VADDR: validate the whole walk first, so that a refusal changes nothing. */
static int unmap_vaddr(struct uiommu_vfio_container *c, struct unmap_req *r)
{
	struct vt1_dma *d;

	for (d = walk_first(c, r, r->iova); d; d = vt1_dma_next(d, r->iova, r->last))
		if (d->vaddr_invalid)
			return -EINVAL;
	for (d = walk_first(c, r, r->iova); d; d = vt1_dma_next(d, r->iova, r->last)) {
		vt1_dma_harvest_iommu(c, d);
		uiommu_ioas_unmap(c->ioas, d->node.start, dma_size(d), NULL);
		d->vaddr_invalid = true;
		c->vaddr_invalid_count++;
		r->unmapped += dma_size(d);
	}
	return 0;
}

/* Makes the emulated devices unpin @d; -EBUSY when they keep refusing. */
static int unmap_wait_pins(struct uiommu_vfio_container *c, struct vt1_dma *d,
			   uint64_t *last_iova, unsigned int *retries)
{
	if (*last_iova == d->node.start && ++*retries > VT1_NOTIFY_RETRIES)
		return -EBUSY;
	if (*last_iova != d->node.start)
		*retries = 0;
	*last_iova = d->node.start;
	vt1_notify_unmap(c, d->node.start, d->node.last);
	return c->type ? 0 : -EINVAL;
}

static int unmap_remove(struct uiommu_vfio_container *c, struct unmap_req *r)
{
	uint64_t from = r->iova, notified = UINT64_MAX;
	unsigned int retries = 0;
	struct vt1_ubitmap ub;
	struct vt1_dma *d;
	int ret = 0;

	/* Not with ALL (refused with a bitmap): r->last - r->iova + 1 does not wrap. */
	if (r->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
		vt1_ubitmap_init(&ub, r->bitmap->data, r->iova,
				 (r->last - r->iova + 1) >> vt1_pgshift(c));
	while (!ret && (d = walk_first(c, r, from))) {
		uint64_t d_last = d->node.last;

		if (d->pins.count) {
			ret = unmap_wait_pins(c, d, &notified, &retries);
			continue;
		}
		if (r->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
			ret = vt1_dma_report(c, d, &ub);
			if (ret)
				break;
		}
		r->unmapped += dma_size(d);
		vt1_dma_remove(c, d);
		if (d_last >= r->last)
			break;
		from = d_last + 1;
	}
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_unmap_dma(struct uiommu_vfio_container *c, uint32_t flags,
					uint64_t iova, uint64_t size,
					const struct uiommu_vfio_bitmap *bitmap,
					uint64_t *unmapped)
{
	struct unmap_req r = { .flags = flags, .iova = iova, .bitmap = bitmap };
	int ret;

	if ((flags & ~UNMAP_FLAGS) ||
	    ((flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) && !bitmap))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	ret = unmap_check(c, &r, size);
	if (!ret && (flags & VFIO_DMA_UNMAP_FLAG_VADDR))
		ret = unmap_vaddr(c, &r);
	else if (!ret)
		ret = unmap_remove(c, &r);
	pthread_mutex_unlock(&c->lock);
	if (unmapped)
		*unmapped = r.unmapped;
	return ret;
}
