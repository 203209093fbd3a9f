/* SPDX-License-Identifier: MIT */
/*
 * Dirty state of the emulated IO page table, and its harvest.
 *
 * Representation: one Dirty bit per leaf. A leaf at level L >= 1 keeps it in
 * its node's leaf_dirty bitmap. Level-0 leaves keep theirs densely in their
 * level-1 parent's chunk: line i (8 words, one cache line) holds the 512 bits
 * of child i, so 1 GiB of 4 KiB pages is 32 KiB of contiguous bits. Above the
 * leaves, summary bits say which subtrees may hold dirty bits: node->summary
 * bit i is set when entry i's subtree (for level 1: line i of the chunk) may
 * hold a set bit. A harvest descends only through set summary bits, so its
 * cost follows the number of dirty leaves, not the mapped size.
 *
 * Ordering (every operation below is sequentially consistent):
 *  - A marker sets the leaf bit, then each summary bit up to the root (each
 *    only if clear: reads are cheap, atomics are not).
 *  - A harvest that covers a whole subtree clears its summary bit first, then
 *    reads-and-clears the bits below. A marker whose summary read saw the bit
 *    still set is thus ordered before the harvest's clear, so its leaf bit is
 *    seen below; a marker that saw it clear sets it again for the next round.
 *    A subtree only partly covered keeps its summary bit.
 *  - Invariant: once its marker has finished, a set leaf bit has every summary
 *    bit above it set.
 *
 * The IOTLB may cache "already dirty" (device.c); so a harvest that cleared
 * anything issues one IOTLB invalidation, which waits for the DMA in flight,
 * before it returns: afterwards every write marks again.
 *
 * Delivery: level-0 bits are gathered in an accumulator covering an aligned
 * window of 512 words (32768 leaves) and handed to the sink in one run per
 * window, so the sink sees long runs, not a call per word. Large leaves are
 * delivered a word at a time at their own page shift. A large leaf only
 * partly inside the range is reported whole but not cleared: the kernel's
 * drivers clear it and so lose the dirty state of the part outside; we keep it.
 */
#include <errno.h>
#include <string.h>

#include "iommu/iommu_internal.h"

#define ACC_WORDS 512

struct harvest {
	const struct uiommu_domain *d;
	uint64_t start, last;
	bool clear;
	uiommu_dirty_sink_fn sink;
	void *opaque;
	int err;
	int64_t cleared; /* words in which bits were cleared */
	uint64_t win;    /* IOVA of the accumulator's bit 0 */
	unsigned int lo, hi;
	bool active;
	uint64_t acc[ACC_WORDS];
};

static uint64_t mask_between(unsigned int lo, unsigned int hi)
{
	return (~0ull >> (63 - hi)) & (~0ull << lo);
}

/*
 * Bits of a 64-leaf word at @word_iova (leaves of 1 << @shift bytes) whose
 * leaf intersects [start, last] (*touch) or lies wholly inside it (*cover).
 */
static void word_masks(const struct harvest *h, uint64_t word_iova, unsigned int shift,
		       uint64_t *touch, uint64_t *cover)
{
	uint64_t word_last = word_iova + (64ull << shift) - 1;
	uint64_t size = 1ull << shift;
	unsigned int t_lo, t_hi, c_lo, c_hi;

	*touch = *cover = 0;
	if (h->start > word_last || h->last < word_iova)
		return;
	t_lo = h->start <= word_iova ? 0 : (unsigned int)((h->start - word_iova) >> shift);
	t_hi = h->last >= word_last ? 63 : (unsigned int)((h->last - word_iova) >> shift);
	*touch = mask_between(t_lo, t_hi);
	c_lo = h->start <= word_iova ? 0 :
				       (unsigned int)((h->start - word_iova + size - 1) >> shift);
	if (h->last >= word_last)
		c_hi = 63;
	else if (((h->last - word_iova + 1) >> shift) == 0)
		return;
	else
		c_hi = (unsigned int)((h->last - word_iova + 1) >> shift) - 1;
	if (c_lo <= c_hi)
		*cover = mask_between(c_lo, c_hi);
}

/* Reads the bits of @word in @touch, clearing those in @cover when asked. */
static uint64_t take_bits(struct harvest *h, uint64_t *word, uint64_t touch, uint64_t cover)
{
	uint64_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);

	if (!(v & touch))
		return 0;
	if (h->clear && (v & cover)) {
		v = __atomic_fetch_and(word, ~cover, __ATOMIC_SEQ_CST);
		if (v & cover)
			h->cleared++;
	}
	return v & touch;
}

static void acc_flush(struct harvest *h)
{
	struct uiommu_dirty_run run;
	unsigned int base = h->d->fmt->base_shift;
	int rc;

	if (!h->active || h->lo > h->hi)
		return;
	run.iova = h->win + ((uint64_t)h->lo * 64 << base);
	run.pgshift = base;
	run.bits = &h->acc[h->lo];
	run.nbits = (uint64_t)(h->hi - h->lo + 1) * 64;
	rc = h->err ? 0 : h->sink(h->opaque, &run);
	if (rc)
		h->err = rc;
	memset(&h->acc[h->lo], 0, (h->hi - h->lo + 1) * sizeof(uint64_t));
	h->lo = ACC_WORDS;
	h->hi = 0;
}

static void acc_add(struct harvest *h, uint64_t word_iova, uint64_t bits)
{
	unsigned int base = h->d->fmt->base_shift;
	uint64_t win = word_iova & ~(((uint64_t)ACC_WORDS * 64 << base) - 1);
	unsigned int k;

	if (!h->active || win != h->win) {
		acc_flush(h);
		h->win = win;
		h->active = true;
	}
	k = (unsigned int)((word_iova - win) >> (base + 6));
	h->acc[k] |= bits;
	h->lo = k < h->lo ? k : h->lo;
	h->hi = k > h->hi ? k : h->hi;
}

/* The 8 words of line @i of a level-1 node's chunk: child i's level-0 leaves. */
static void harvest_line(struct harvest *h, struct pt_node *n, unsigned int i,
			 uint64_t child_base)
{
	unsigned int base = h->d->fmt->base_shift;

	for (unsigned int j = 0; j < PT_WORDS; j++) {
		uint64_t word_iova = child_base + ((uint64_t)j * 64 << base);
		uint64_t touch, cover, bits;

		word_masks(h, word_iova, base, &touch, &cover);
		bits = touch ? take_bits(h, &n->chunk[i * PT_WORDS + j], touch, cover) : 0;
		if (bits && h->sink)
			acc_add(h, word_iova, bits);
	}
}

static void deliver_word(struct harvest *h, uint64_t word_iova, unsigned int shift,
			 uint64_t bits)
{
	struct uiommu_dirty_run run = {
		.iova = word_iova, .pgshift = shift, .bits = &bits, .nbits = 64
	};
	int rc;

	if (!h->sink || h->err)
		return;
	rc = h->sink(h->opaque, &run);
	if (rc)
		h->err = rc;
}

/* Dirty bits of the large leaves held directly by @n. */
static void harvest_leaf_words(struct harvest *h, struct pt_node *n, unsigned int level,
			       uint64_t node_base, unsigned int i0, unsigned int i1)
{
	unsigned int shift = pt_shift(h->d->fmt, level);

	for (unsigned int w = i0 / 64; w <= i1 / 64; w++) {
		uint64_t word_iova = node_base + ((uint64_t)w * 64 << shift);
		uint64_t touch, cover, bits;

		if (!__atomic_load_n(&n->leaf_dirty[w], __ATOMIC_RELAXED))
			continue;
		word_masks(h, word_iova, shift, &touch, &cover);
		bits = take_bits(h, &n->leaf_dirty[w], touch, cover);
		if (bits)
			deliver_word(h, word_iova, shift, bits);
	}
}

static void harvest_node(struct harvest *h, struct pt_node *n, unsigned int level,
			 uint64_t node_base);

static void harvest_child(struct harvest *h, struct pt_node *n, unsigned int level,
			  unsigned int i, uint64_t child_base)
{
	uint64_t pte = atomic_load_explicit(&n->pte[i], memory_order_acquire);

	/* A stale summary bit over a leaf or an empty slot: nothing below. */
	if (!pte_is_table(pte))
		return;
	if (level == 1)
		harvest_line(h, n, i, child_base);
	else
		harvest_node(h, pte_table(pte), level - 1, child_base);
}

/* Descends into the children of @n whose summary bit is set. */
static void harvest_children(struct harvest *h, struct pt_node *n, unsigned int level,
			     uint64_t node_base, unsigned int i0, unsigned int i1)
{
	unsigned int shift = pt_shift(h->d->fmt, level);

	for (unsigned int w = i0 / 64; w <= i1 / 64 && !h->err; w++) {
		uint64_t word_iova = node_base + ((uint64_t)w * 64 << shift);
		uint64_t touch, cover, visit;

		visit = __atomic_load_n(&n->summary[w], __ATOMIC_SEQ_CST);
		if (!visit)
			continue;
		word_masks(h, word_iova, shift, &touch, &cover);
		if (h->clear && (visit & cover))
			visit = __atomic_fetch_and(&n->summary[w], ~cover, __ATOMIC_SEQ_CST);
		for (visit &= touch; visit && !h->err; visit &= visit - 1) {
			unsigned int i = w * 64 + (unsigned int)__builtin_ctzll(visit);

			harvest_child(h, n, level, i, node_base + ((uint64_t)i << shift));
		}
	}
}

static void harvest_node(struct harvest *h, struct pt_node *n, unsigned int level,
			 uint64_t node_base)
{
	unsigned int shift = pt_shift(h->d->fmt, level);
	uint64_t node_last = node_base + ((uint64_t)PT_ENTRIES << shift) - 1;
	unsigned int i0, i1;

	i0 = h->start <= node_base ? 0 : (unsigned int)((h->start - node_base) >> shift);
	i1 = h->last >= node_last ? PT_ENTRIES - 1 : (unsigned int)((h->last - node_base) >> shift);
	if (level >= 1)
		harvest_leaf_words(h, n, level, node_base, i0, i1);
	if (level >= 1 && !h->err)
		harvest_children(h, n, level, node_base, i0, i1);
}

int64_t dirty_harvest(struct uiommu_domain *d, uint64_t start, uint64_t last, bool clear,
		      uiommu_dirty_sink_fn sink, void *opaque)
{
	struct harvest h;

	h.d = d;
	h.start = start;
	h.last = last;
	h.clear = clear;
	h.sink = sink;
	h.opaque = opaque;
	h.err = 0;
	h.cleared = 0;
	h.active = false;
	h.lo = ACC_WORDS;
	h.hi = 0;
	memset(h.acc, 0, sizeof(h.acc));
	harvest_node(&h, d->root, d->fmt->levels - 1, 0);
	if (sink)
		acc_flush(&h);
	if (h.cleared && clear && h.err)
		domain_iotlb_flush(d);
	return h.err ? h.err : h.cleared;
}

void dirty_mark(const struct uiommu_domain *d, const struct pt_path *p)
{
	unsigned int l = p->level;

	if (l == 0) {
		bit_set_sc(&p->node[1]->chunk[p->idx[1] * PT_WORDS], p->idx[0]);
		l = 1;
	} else {
		bit_set_sc(p->node[l]->leaf_dirty, p->idx[l]);
		l++;
	}
	for (; l < d->fmt->levels; l++)
		bit_set_sc(p->node[l]->summary, p->idx[l]);
}

bool dirty_leaf_test(const struct uiommu_domain *d, const struct pt_path *p)
{
	const uint64_t *words;
	unsigned int bit;

	(void)d;
	if (p->level == 0) {
		words = &p->node[1]->chunk[p->idx[1] * PT_WORDS];
		bit = p->idx[0];
	} else {
		words = p->node[p->level]->leaf_dirty;
		bit = p->idx[p->level];
	}
	return __atomic_load_n(&words[bit / 64], __ATOMIC_SEQ_CST) & (1ull << (bit % 64));
}

void dirty_split_inherit(const struct uiommu_domain *d, struct pt_node *parent, unsigned int idx,
			 unsigned int level)
{
	uint64_t bit = 1ull << (idx % 64);
	uint64_t *dst;

	(void)d;
	if (!(__atomic_fetch_and(&parent->leaf_dirty[idx / 64], ~bit, __ATOMIC_SEQ_CST) & bit))
		return;
	if (level == 1)
		dst = &parent->chunk[idx * PT_WORDS];
	else
		dst = pte_table(atomic_load_explicit(&parent->pte[idx], memory_order_relaxed))
			      ->leaf_dirty;
	for (unsigned int j = 0; j < PT_WORDS; j++)
		__atomic_fetch_or(&dst[j], ~0ull, __ATOMIC_SEQ_CST);
	/* The bits above the parent are set: the leaf's Dirty bit was. */
	__atomic_fetch_or(&parent->summary[idx / 64], bit, __ATOMIC_SEQ_CST);
}

UIOMMU_EXPORT int uiommu_domain_read_and_clear_dirty(struct uiommu_domain *d, uint64_t iova,
						     uint64_t length, uint32_t flags,
						     uiommu_dirty_sink_fn sink, void *opaque)
{
	bool clear = !(flags & UIOMMU_DIRTY_NO_CLEAR);
	uint64_t last;
	int64_t n;
	int rc = 0;

	if (flags & ~UIOMMU_DIRTY_NO_CLEAR)
		return -EINVAL;
	if (uiommu__range_last(iova, length, &last))
		return -EOVERFLOW;
	if ((iova | length) & ((1ull << d->fmt->base_shift) - 1))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if (sink && !atomic_load(&d->tracking)) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (iova > pt_max_iova())
		goto out_unlock;
	n = dirty_harvest(d, iova, u64_min(last, pt_max_iova()), clear, sink, opaque);
	if (n > 0 && clear)
		domain_iotlb_flush(d);
	rc = n < 0 ? (int)n : 0;
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return rc;
}

UIOMMU_EXPORT int uiommu_domain_set_dirty_tracking(struct uiommu_domain *d, bool enable)
{
	pthread_mutex_lock(&d->lock);
	if (enable && dirty_harvest(d, 0, pt_max_iova(), true, NULL, NULL) > 0)
		domain_iotlb_flush(d);
	atomic_store(&d->tracking, enable);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

UIOMMU_EXPORT bool uiommu_domain_dirty_tracking(const struct uiommu_domain *d)
{
	return atomic_load(&((struct uiommu_domain *)(uintptr_t)d)->tracking);
}
