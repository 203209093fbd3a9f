// SPDX-License-Identifier: MIT
/*
 * Type1 dirty tracking (VFIO_IOMMU_DIRTY_PAGES, UNMAP with GET_DIRTY_BITMAP),
 * with the kernel's semantics (uapi-spec §1.6, §1.8).
 *
 * While tracking is on, every entry has its own bitmap: one bit per container
 * page (the smallest supported page size), bit 0 = the entry's first page.
 * Sources of bits:
 *  - pins of emulated devices: set at pin time, at START, and again after
 *    every report ("pinned pages are always dirty"); unpinning clears nothing
 *    before the next report;
 *  - writes through the container (uiommu_vfio_dma_rw): set, cleared by the
 *    next report (reported once);
 *  - the all-dirty rule, applied at report time: while an IOMMU-backed group
 *    that has not entered pinned-page scope is attached, every entry that is
 *    IOMMU mapped is reported wholly dirty (the kernel cannot see what the
 *    device wrote);
 *  - detaching such a group while tracking marks every page of every entry.
 *
 * Opt-in (UIOMMU_VFIO_OPT_IOMMU_DIRTY): an IOMMU-backed group whose devices
 * all track dirty IOPTEs no longer counts for the all-dirty rule; instead its
 * domain tracks dirty leaves from START, and each report reads and clears
 * them into the entry's bitmap first. The default is the kernel's behaviour.
 *
 * Copy-out of one entry, as the kernel's update_user_bitmap: with bit offset
 * b = (entry.iova - base) / pgsize, word w = b / 64 and shift s = b % 64, the
 * entry's bits are shifted left by s; when s != 0 the user's word w is read
 * and ORed into the first word (it may hold bits of the previous entry: two
 * mappings not aligned to 64 pages share that word); then ceil((nbits + s) /
 * 64) whole words are written from word w. So bits of the last word past the
 * entry are written as 0, and the caller must pass a zeroed buffer, as the
 * uAPI says. After a successful copy the entry's bitmap is reset to its
 * pinned pages; after a fault (-EFAULT) it is kept.
 *
 * Speed: a report walks many entries (a VMM maps guest RAM in pieces, and
 * vIOMMU users map page by page), so the copy-out must cost about what the
 * entry's bits cost, not a system call. Before the walk, the words the
 * report may touch are checked writable once (uiommu__user_populate_write:
 * one madvise, then a cached msync); the entries are then merged straight
 * into the user's words, a word at a time with shifts (or_bits for the
 * shared first word, copy_bits for the rest, then the tail of the last word
 * cleared). Only when that check fails does each entry go through
 * uiommu__copy_from_user/copy_to_user (one process_vm_readv and _writev
 * each, ~1-2 us apiece here, which made 37-page entries 15-20x slower than
 * a bit-by-bit merge: bench/bench_type1.c), so that a bitmap that faults
 * part way still reports the entries before the fault, as the kernel does.
 */
#include <errno.h>
#include <linux/vfio.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty.h>

#include "uapi/vfio_type1_internal.h"

static uint64_t dma_nbits(const struct uiommu_vfio_container *c, const struct vt1_dma *d)
{
	return dma_size(d) >> vt1_pgshift(c);
}

/* Sets the bit of every page pinned in @d (the "always dirty" pins). */
static void bitmap_add_pins(struct uiommu_vfio_container *c, struct vt1_dma *d)
{
	for (struct uiommu_itree_node *n = uiommu_itree_first(&d->pins); n;
	     n = uiommu_itree_next(n))
		vt1_dma_mark_dirty(c, d, n->start, n->start);
}

int vt1_dma_bitmap_alloc(struct uiommu_vfio_container *c, struct vt1_dma *d)
{
	uint64_t nbits = dma_nbits(c, d);

	if (nbits > VT1_BITMAP_PAGES_MAX)
		return -EINVAL;
	d->bitmap = uiommu__calloc(uiommu_bitmap_words(nbits), sizeof(uint64_t));
	if (!d->bitmap)
		return -ENOMEM;
	bitmap_add_pins(c, d);
	return 0;
}

void vt1_dma_bitmap_free(struct vt1_dma *d)
{
	uiommu__free(d->bitmap);
	d->bitmap = NULL;
}

void vt1_dma_mark_dirty(struct uiommu_vfio_container *c, struct vt1_dma *d, uint64_t iova,
			uint64_t last)
{
	unsigned int shift = vt1_pgshift(c);

	if (!d->bitmap)
		return;
	iova = u64_max(iova, d->node.start);
	last = u64_min(last, d->node.last);
	if (iova > last)
		return;
	uiommu_bitmap_set_range(d->bitmap, (iova - d->node.start) >> shift,
				(last - d->node.start) >> shift);
}

void vt1_dirty_mark_all(struct uiommu_vfio_container *c)
{
	for (struct uiommu_itree_node *n = uiommu_itree_first(&c->dmas); n;
	     n = uiommu_itree_next(n)) {
		struct vt1_dma *d = container_of(n, struct vt1_dma, node);

		vt1_dma_mark_dirty(c, d, d->node.start, d->node.last);
	}
}

/* ---- the IOMMU's own dirty bits (opt-in) ---- */

static bool group_iommu_tracked(const struct uiommu_vfio_container *c,
				const struct uiommu_vfio_group *g)
{
	return (c->opts & UIOMMU_VFIO_OPT_IOMMU_DIRTY) && g->attached && g->domain &&
	       vt1_group_dirty_capable(g);
}

/* The all-dirty rule: some group may have written anything, unseen. */
static bool all_dirty_applies(const struct uiommu_vfio_container *c, const struct vt1_dma *d)
{
	if (!c->num_non_pinned || !d->iommu_mapped)
		return false;
	for (const struct uiommu_vfio_group *g = c->groups; g; g = g->next)
		if (g->attached && !g->pinned_scope && !group_iommu_tracked(c, g))
			return true;
	return false;
}

void vt1_dma_harvest_iommu(struct uiommu_vfio_container *c, struct vt1_dma *d)
{
	struct uiommu_dirty_report rep;
	uint64_t bytes = uiommu_bitmap_words(dma_nbits(c, d)) * 8;

	if (!c->dirty_tracking || !d->bitmap || d->vaddr_invalid)
		return;
	if (uiommu_dirty_report_init(&rep, d->node.start, dma_size(d), vt1_pgsize(c), d->bitmap,
				     bytes))
		return;
	for (struct uiommu_vfio_group *g = c->groups; g; g = g->next)
		if (group_iommu_tracked(c, g))
			uiommu_domain_read_and_clear_dirty(g->domain, d->node.start, dma_size(d),
							   0, uiommu_dirty_report_sink, &rep);
}

static void domains_set_tracking(struct uiommu_vfio_container *c, bool on)
{
	for (struct uiommu_vfio_group *g = c->groups; g; g = g->next)
		if (group_iommu_tracked(c, g))
			uiommu_domain_set_dirty_tracking(g->domain, on);
}

void vt1_dirty_group_attached(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	if (c->dirty_tracking && group_iommu_tracked(c, g))
		uiommu_domain_set_dirty_tracking(g->domain, true);
}

/* ---- report ---- */

/*
 * The entry's bits, shifted to the user's bit offset, into user words
 * through copies that turn a bad pointer into -EFAULT (the slow path).
 */
static int copy_out_checked(uint64_t *ubitmap, uint64_t bitoff, const uint64_t *bits,
			    uint64_t nbits)
{
	uint64_t w = bitoff / 64, s = bitoff % 64, nwords = uiommu_bitmap_words(nbits + s);
	uint64_t *tmp = uiommu__calloc(nwords, sizeof(*tmp)), uword;
	int ret = 0;

	if (!tmp)
		return -ENOMEM;
	uiommu_bitmap_copy_bits(tmp, s, bits, 0, nbits);
	/* The first word may hold the previous entry's bits: OR, never overwrite. */
	if (s) {
		ret = uiommu__copy_from_user(&uword, ubitmap + w, sizeof(uword));
		tmp[0] |= uword;
	}
	if (!ret)
		ret = uiommu__copy_to_user(ubitmap + w, tmp, nwords * sizeof(*tmp));
	uiommu__free(tmp);
	return ret;
}

/*
 * The same result as copy_out_checked, stored straight into user words that
 * were checked writable: the bits sharing the first word with what is below
 * @bitoff are ORed in (that word is merged as a whole, tail included when
 * the entry ends inside it), the rest are copied, and the last word's bits
 * past the entry are cleared, as the kernel writes whole words.
 */
static void copy_out_direct(uint64_t *ubitmap, uint64_t bitoff, const uint64_t *bits,
			    uint64_t nbits)
{
	uint64_t s = bitoff % 64, head = s ? u64_min(nbits, 64 - s) : 0, end = bitoff + nbits;

	if (head)
		uiommu_bitmap_or_bits(ubitmap, bitoff, bits, 0, head);
	if (nbits == head)
		return;
	uiommu_bitmap_copy_bits(ubitmap, bitoff + head, bits, head, nbits - head);
	if (end % 64)
		ubitmap[end / 64] &= (1ull << (end % 64)) - 1;
}

void vt1_ubitmap_init(struct vt1_ubitmap *ub, uint64_t *data, uint64_t base, uint64_t npages)
{
	ub->data = data;
	ub->base = base;
	ub->direct = !uiommu__user_populate_write(data, uiommu_bitmap_words(npages) * 8);
}

int vt1_dma_report(struct uiommu_vfio_container *c, struct vt1_dma *d,
		   const struct vt1_ubitmap *ub)
{
	uint64_t nbits = dma_nbits(c, d), bitoff = (d->node.start - ub->base) >> vt1_pgshift(c);
	int ret = 0;

	vt1_dma_harvest_iommu(c, d);
	if (all_dirty_applies(c, d))
		uiommu_bitmap_set_range(d->bitmap, 0, nbits - 1);
	if (ub->direct)
		copy_out_direct(ub->data, bitoff, d->bitmap, nbits);
	else
		ret = copy_out_checked(ub->data, bitoff, d->bitmap, nbits);
	if (ret)
		return ret;
	uiommu_bitmap_clear_range(d->bitmap, 0, nbits - 1);
	bitmap_add_pins(c, d);
	return 0;
}

/* ---- START, STOP, GET_BITMAP ---- */

static void bitmaps_free_all(struct uiommu_vfio_container *c)
{
	for (struct uiommu_itree_node *n = uiommu_itree_first(&c->dmas); n;
	     n = uiommu_itree_next(n))
		vt1_dma_bitmap_free(container_of(n, struct vt1_dma, node));
}

static int dirty_start_locked(struct uiommu_vfio_container *c)
{
	if (!c->type)
		return -EINVAL;
	if (!c->v2)
		return -EACCES;
	/* START while tracking keeps what was gathered. */
	if (c->dirty_tracking)
		return 0;
	for (struct uiommu_itree_node *n = uiommu_itree_first(&c->dmas); n;
	     n = uiommu_itree_next(n)) {
		int ret = vt1_dma_bitmap_alloc(c, container_of(n, struct vt1_dma, node));

		if (ret) {
			bitmaps_free_all(c);
			return ret;
		}
	}
	c->dirty_tracking = true;
	domains_set_tracking(c, true);
	return 0;
}

UIOMMU_EXPORT int uiommu_vfio_dirty_start(struct uiommu_vfio_container *c)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = dirty_start_locked(c);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_dirty_stop(struct uiommu_vfio_container *c)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->type) {
		ret = -EINVAL;
	} else if (!c->v2) {
		ret = -EACCES;
	} else if (c->dirty_tracking) {
		domains_set_tracking(c, false);
		bitmaps_free_all(c);
		c->dirty_tracking = false;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

/* §1.6 GET_BITMAP steps 5 to 7. */
static int get_bitmap_check(struct uiommu_vfio_container *c, uint64_t iova, uint64_t size,
			    uint64_t pgsize, uint64_t *last)
{
	uint64_t pgmask = vt1_pgsize(c) - 1;

	if (!c->type)
		return -EINVAL;
	if (!c->v2)
		return -EACCES;
	if (pgsize != vt1_pgsize(c) || (iova & pgmask) || !size || (size & pgmask))
		return -EINVAL;
	if (uiommu_check_add_overflow(iova, size - 1, last))
		return -EOVERFLOW;
	if (!c->dirty_tracking)
		return -EINVAL;
	return vt1_check_no_bisect(c, iova, *last);
}

static int get_bitmap_locked(struct uiommu_vfio_container *c, uint64_t iova, uint64_t size,
			     const struct uiommu_vfio_bitmap *bm)
{
	struct vt1_ubitmap ub;
	uint64_t last;
	int ret = get_bitmap_check(c, iova, size, bm->pgsize, &last);

	if (ret)
		return ret;
	vt1_ubitmap_init(&ub, bm->data, iova, size >> vt1_pgshift(c));
	for (struct vt1_dma *d = vt1_dma_first(c, iova, last); d; d = vt1_dma_next(d, iova, last)) {
		ret = vt1_dma_report(c, d, &ub);
		if (ret)
			break;
	}
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_dirty_get_bitmap(struct uiommu_vfio_container *c, uint64_t iova,
					       uint64_t size,
					       const struct uiommu_vfio_bitmap *bitmap)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = get_bitmap_locked(c, iova, size, bitmap);
	pthread_mutex_unlock(&c->lock);
	return ret;
}
