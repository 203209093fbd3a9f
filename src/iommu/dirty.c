/* SPDX-License-Identifier: MIT */
/*
 * Dirty state of the emulated IO page table, and its harvest.
 *
 * Representation: one Dirty bit per leaf, in two buffers. A leaf at level
 * L >= 1 keeps it in its node's leaf_dirty bitmap. Level-0 leaves keep theirs
 * densely in their level-1 parent's chunk: line i (8 words, one cache line)
 * holds the 512 bits of child i, so 1 GiB of 4 KiB pages is 32 KiB of
 * contiguous bits per buffer. Above the leaves, summary bits say which
 * subtrees may hold set bits: node->summary[b] bit i is set when entry i's
 * subtree (for level 1: line i of the chunk) may hold a set bit in buffer b.
 * A harvest descends only through set summary bits, so its cost follows the
 * number of dirty leaves, not the mapped size. A leaf is dirty when its bit is
 * set in either buffer.
 *
 * Two buffers, because one atomic read-and-clear per word costs about 10 ns
 * on our VMs (40 us per GiB fully dirty) while a plain copy and clear costs
 * 2 us. Markers set bits in the buffer the domain's epoch names. A clearing
 * harvest flips the epoch, then drains: every DMA in flight, the only place
 * marking happens, has finished, and every later one marks the other buffer.
 * The old buffer is then quiet and is read and cleared with plain loads and
 * stores. The new buffer may hold bits too (marks since the flip, and bits a
 * previous harvest of another range left behind); they are read and cleared
 * with atomics, which is cheap because there are few.
 *
 * Ordering, for the atomic passes (every operation sequentially consistent):
 *  - A marker sets the leaf bit, then each summary bit up to the root (each
 *    only if clear: reads are cheap, atomics are not).
 *  - A harvest that covers a whole subtree clears its summary bit first, then
 *    reads-and-clears the bits below. A marker whose summary read saw the bit
 *    still set is thus ordered before the harvest's clear, so its leaf bit is
 *    seen below; a marker that saw it clear sets it again for the next round.
 *    A subtree only partly covered keeps its summary bit.
 *  - Invariant: once its marker has finished, a set leaf bit has every summary
 *    bit above it, in its buffer, set.
 *
 * The IOTLB may cache "already dirty" (device.c); so a harvest that cleared
 * anything issues one IOTLB invalidation, which waits for the DMA in flight,
 * before it returns: afterwards every write marks again.
 *
 * Delivery: level-0 bits are gathered in an accumulator covering an aligned
 * window of 512 words (32768 leaves) and handed to the sink in runs of
 * nearby words, so the sink sees long runs, not a call per word. Large leaves
 * are delivered a word at a time at their own page shift. A large leaf only
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
	bool frozen;      /* the buffer is quiet: plain loads and stores */
	unsigned int buf; /* the buffer this pass reads */
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

static uint64_t load_word(const struct harvest *h, const uint64_t *word)
{
	return h->frozen ? *word : __atomic_load_n(word, __ATOMIC_SEQ_CST);
}

/* Clears @cover in @word; returns the value the bits had before. */
static uint64_t clear_word(const struct harvest *h, uint64_t *word, uint64_t v, uint64_t cover)
{
	if (h->frozen) {
		*word = v & ~cover;
		return v;
	}
	if (cover == ~0ull)
		return __atomic_exchange_n(word, 0, __ATOMIC_SEQ_CST);
	return __atomic_fetch_and(word, ~cover, __ATOMIC_SEQ_CST);
}

/* Reads the bits of @word in @touch, clearing those in @cover when asked. */
static uint64_t take_bits(struct harvest *h, uint64_t *word, uint64_t touch, uint64_t cover)
{
	uint64_t v = load_word(h, word);

	if (!(v & touch))
		return 0;
	if (h->clear && (v & cover)) {
		v = clear_word(h, word, v, cover);
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

	k = (unsigned int)((word_iova - win) >> (base + 6));
	/* A new window, or a long gap of clean words: not worth delivering. */
	if (!h->active || win != h->win || (h->lo <= h->hi && k > h->hi + 8)) {
		acc_flush(h);
		h->win = win;
		h->active = true;
	}
	h->acc[k] |= bits;
	h->lo = k < h->lo ? k : h->lo;
	h->hi = k > h->hi ? k : h->hi;
}

/* Child i fully inside the range: its whole line is taken, no masks needed. */
static void take_line(struct harvest *h, uint64_t *line, uint64_t child_base)
{
	unsigned int base = h->d->fmt->base_shift;

	for (unsigned int j = 0; j < PT_WORDS; j++) {
		uint64_t v = load_word(h, &line[j]);

		if (!v)
			continue;
		if (h->clear) {
			v = clear_word(h, &line[j], v, ~0ull);
			h->cleared += v != 0;
		}
		if (v && h->sink)
			acc_add(h, child_base + ((uint64_t)j * 64 << base), v);
	}
}

/* The 8 words of line @i of a level-1 node's chunk: child i's level-0 leaves. */
static void harvest_line(struct harvest *h, struct pt_node *n, unsigned int i,
			 uint64_t child_base)
{
	unsigned int base = h->d->fmt->base_shift;
	uint64_t *line = chunk_line(n, h->buf, i);

	if (child_base >= h->start && child_base + ((uint64_t)PT_ENTRIES << base) - 1 <= h->last) {
		take_line(h, line, child_base);
		return;
	}
	for (unsigned int j = 0; j < PT_WORDS; j++) {
		uint64_t word_iova = child_base + ((uint64_t)j * 64 << base);
		uint64_t touch, cover, bits;

		word_masks(h, word_iova, base, &touch, &cover);
		bits = touch ? take_bits(h, &line[j], touch, cover) : 0;
		if (bits && h->sink)
			acc_add(h, word_iova, bits);
	}
}

static void deliver_run(struct harvest *h, uint64_t iova, unsigned int shift,
			const uint64_t *bits, uint64_t nbits)
{
	struct uiommu_dirty_run run = { .iova = iova, .pgshift = shift, .bits = bits,
					.nbits = nbits };
	int rc;

	if (!h->sink || h->err)
		return;
	rc = h->sink(h->opaque, &run);
	if (rc)
		h->err = rc;
}

static void deliver_word(struct harvest *h, uint64_t word_iova, unsigned int shift,
			 uint64_t bits)
{
	deliver_run(h, word_iova, shift, &bits, 64);
}

/*
 * A quiet buffer of a level-1 node wholly inside the range: the chunk goes to
 * the sink as it lies, one stretch of up to 64 lines (first to last set
 * summary bit of a word) a call, and is then zeroed. No copy, no per-word
 * work. In a quiet buffer a clear summary bit means a zero line, so a stretch
 * may span such lines.
 */
static void take_chunk(struct harvest *h, struct pt_node *n, uint64_t node_base)
{
	unsigned int base = h->d->fmt->base_shift;

	for (unsigned int w = 0; w < PT_WORDS && !h->err; w++) {
		uint64_t visit = n->summary[h->buf][w];
		unsigned int lo, hi;
		uint64_t *bits;

		if (!visit)
			continue;
		n->summary[h->buf][w] = 0;
		lo = w * 64 + (unsigned int)__builtin_ctzll(visit);
		hi = w * 64 + 63 - (unsigned int)__builtin_clzll(visit);
		bits = chunk_line(n, h->buf, lo);
		deliver_run(h, node_base + ((uint64_t)lo << (base + PT_BITS)), base, bits,
			    (uint64_t)(hi - lo + 1) * PT_WORDS * 64);
		memset(bits, 0, (hi - lo + 1) * PT_WORDS * sizeof(uint64_t));
		h->cleared += __builtin_popcountll(visit);
	}
}

/* Dirty bits of the large leaves held directly by @n. */
static void harvest_leaf_words(struct harvest *h, struct pt_node *n, unsigned int level,
			       uint64_t node_base, unsigned int i0, unsigned int i1)
{
	unsigned int shift = pt_shift(h->d->fmt, level);

	for (unsigned int w = i0 / 64; w <= i1 / 64; w++) {
		uint64_t word_iova = node_base + ((uint64_t)w * 64 << shift);
		uint64_t touch, cover, bits;

		if (!load_word(h, &n->leaf_dirty[h->buf][w]))
			continue;
		word_masks(h, word_iova, shift, &touch, &cover);
		bits = take_bits(h, &n->leaf_dirty[h->buf][w], touch, cover);
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

		visit = load_word(h, &n->summary[h->buf][w]);
		if (!visit)
			continue;
		word_masks(h, word_iova, shift, &touch, &cover);
		if (h->clear && (visit & cover))
			visit = clear_word(h, &n->summary[h->buf][w], visit, cover);
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
	if (h->err || level == 0)
		return;
	if (level == 1 && h->frozen && h->start <= node_base && h->last >= node_last)
		take_chunk(h, n, node_base);
	else
		harvest_children(h, n, level, node_base, i0, i1);
}

static void harvest_pass(struct harvest *h, unsigned int buf, bool frozen, bool clear)
{
	h->buf = buf;
	h->frozen = frozen;
	h->clear = clear;
	if (!h->err)
		harvest_node(h, h->d->root, h->d->fmt->levels - 1, 0);
	if (h->sink)
		acc_flush(h);
}

int64_t dirty_harvest(struct uiommu_domain *d, uint64_t start, uint64_t last,
		      enum harvest_mode mode, uiommu_dirty_sink_fn sink, void *opaque)
{
	struct harvest h = { .d = d, .start = start, .last = last, .sink = sink,
			     .opaque = opaque, .lo = ACC_WORDS };
	unsigned int old;

	if (mode == HARVEST_FLIP) {
		old = atomic_load(&d->epoch);
		atomic_store(&d->epoch, !old);
		domain_drain(d);
		harvest_pass(&h, old, true, true);
		harvest_pass(&h, !old, false, true);
	} else {
		harvest_pass(&h, 0, false, mode == HARVEST_CLEAR_ATOMIC);
		harvest_pass(&h, 1, false, mode == HARVEST_CLEAR_ATOMIC);
	}
	if (!h.err)
		return h.cleared;
	/* Stopped by the sink: what was cleared must still mark again. */
	if (h.cleared)
		domain_iotlb_flush(d);
	return h.err;
}

void dirty_mark(struct uiommu_domain *d, const struct pt_path *p)
{
	/* Read after the DMA announced itself: a flip either sees it or is seen. */
	unsigned int b = atomic_load(&d->epoch);
	unsigned int l = p->level;

	if (l == 0) {
		bit_set_sc(chunk_line(p->node[1], b, p->idx[1]), p->idx[0]);
		l = 1;
	} else {
		bit_set_sc(p->node[l]->leaf_dirty[b], p->idx[l]);
		l++;
	}
	for (; l < d->fmt->levels; l++)
		bit_set_sc(p->node[l]->summary[b], p->idx[l]);
}

static bool leaf_bit(const struct pt_path *p, unsigned int b)
{
	const uint64_t *words;
	unsigned int bit;

	if (p->level == 0) {
		words = chunk_line(p->node[1], b, p->idx[1]);
		bit = p->idx[0];
	} else {
		words = p->node[p->level]->leaf_dirty[b];
		bit = p->idx[p->level];
	}
	return __atomic_load_n(&words[bit / 64], __ATOMIC_SEQ_CST) & (1ull << (bit % 64));
}

bool dirty_leaf_test(const struct uiommu_domain *d, const struct pt_path *p)
{
	(void)d;
	return leaf_bit(p, 0) || leaf_bit(p, 1);
}

/*
 * Each buffer separately: the bit moves within its buffer, where the summary
 * bits above the parent are already set (the invariant of the file comment).
 */
void dirty_split_inherit(const struct uiommu_domain *d, struct pt_node *parent, unsigned int idx,
			 unsigned int level)
{
	uint64_t bit = 1ull << (idx % 64);
	uint64_t *dst;

	(void)d;
	for (unsigned int b = 0; b < 2; b++) {
		if (!(__atomic_fetch_and(&parent->leaf_dirty[b][idx / 64], ~bit,
					 __ATOMIC_SEQ_CST) &
		      bit))
			continue;
		if (level == 1)
			dst = chunk_line(parent, b, idx);
		else
			dst = pte_table(atomic_load_explicit(&parent->pte[idx],
							     memory_order_relaxed))
				      ->leaf_dirty[b];
		for (unsigned int j = 0; j < PT_WORDS; j++)
			__atomic_fetch_or(&dst[j], ~0ull, __ATOMIC_SEQ_CST);
		__atomic_fetch_or(&parent->summary[b][idx / 64], bit, __ATOMIC_SEQ_CST);
	}
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
	n = dirty_harvest(d, iova, u64_min(last, pt_max_iova()),
			  clear ? HARVEST_FLIP : HARVEST_PEEK, sink, opaque);
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
	if (enable && dirty_harvest(d, 0, pt_max_iova(), HARVEST_CLEAR_ATOMIC, NULL, NULL) > 0)
		domain_iotlb_flush(d);
	atomic_store(&d->tracking, enable);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

UIOMMU_EXPORT bool uiommu_domain_dirty_tracking(const struct uiommu_domain *d)
{
	return atomic_load(&d->tracking);
}

UIOMMU_EXPORT int uiommu_domain_mark_dirty(struct uiommu_domain *d, uint64_t iova)
{
	struct pt_path path;
	int rc;

	if (!atomic_load(&d->tracking))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	rc = pt_walk(d, iova, &path);
	if (!rc)
		dirty_mark(d, &path);
	pthread_mutex_unlock(&d->lock);
	return rc;
}
