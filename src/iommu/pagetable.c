/* SPDX-License-Identifier: MIT */
/*
 * The emulated IO page table.
 *
 * A radix tree of 512-entry nodes over a 48-bit IOVA space. Level 0 nodes hold
 * the smallest leaves (4 KiB in the x86 format, 2 KiB in the mock format);
 * an entry at level L maps 2^(base_shift + 9L) bytes, either as a leaf or as
 * a pointer to a node of level L - 1. Example (x86): IOVA 0x40201000 is
 * level-3 index 0, level-2 index 1, level-1 index 1, level-0 index 1.
 *
 * Terminology: 'last' is an inclusive end, 'length' a byte count; a range
 * [start, last] never wraps (checked on entry).
 *
 * Locking: the domain lock serializes everything that changes the tree (map,
 * unmap) and harvests. DMA walks the tree without locks: entries are read and
 * written with atomics, a new node is fully built before it is published, and
 * a node is freed only after every device attached has finished the DMA it
 * had in flight when the node was unlinked (domain_drain, device.c). So a
 * walker never reads freed memory, and after unmap returns no device touches
 * the unmapped host memory.
 *
 * Map chooses, piece by piece, the largest leaf that the alignment of iova and
 * host address, the remaining length and the domain's page sizes allow. Unmap
 * first splits any leaf that straddles an edge of the range (allocating every
 * node the splits need before changing anything), clears the leaves inside,
 * invalidates IOTLBs, moves the Dirty bit of each split leaf to its pieces,
 * discards the dirty state of what it unmapped, and frees the tables the range
 * covers entirely and the level-0 tables it empties. A few emptied level-0
 * nodes are kept for reuse: their entries are all clear and their Dirty bits
 * live in the parent, so they need no zeroing, and scattered 4 KiB map/unmap
 * churn then stays in cache.
 */
#include <errno.h>
#include <string.h>

#include "iommu/iommu_internal.h"


static const struct pt_format pt_formats[] = {
	[UIOMMU_PT_X86] = {
		.name = "x86",
		.base_shift = 12,
		.levels = 4,
		.pgsizes = (1ull << 12) | (1ull << 21) | (1ull << 30),
	},
	[UIOMMU_PT_MOCK] = {
		.name = "mock",
		.base_shift = 11,
		.levels = 5,
		.pgsizes = (1ull << 11) | (1ull << 20),
	},
};

static uint64_t level_size(const struct uiommu_domain *d, unsigned int level)
{
	return 1ull << pt_shift(d->fmt, level);
}

#define MAX_SPARE 64

static struct pt_node *node_alloc(struct uiommu_domain *d, unsigned int level)
{
	struct pt_node *n;

	if (level == 0 && d->spare) {
		n = d->spare;
		d->spare = n->next_free;
		d->nr_spare--;
		n->next_free = NULL;
		d->stats.table_nodes++;
		return n;
	}
	n = uiommu__aligned_zalloc(PT_NODE_ALIGN, sizeof(*n));

	if (n)
		d->stats.table_nodes++;
	return n;
}

static uint64_t *chunk_alloc(void)
{
	return uiommu__aligned_zalloc(PT_NODE_ALIGN, 2 * PT_CHUNK_WORDS * sizeof(uint64_t));
}

static void node_free(struct uiommu_domain *d, struct pt_node *n)
{
	uiommu__free(n->chunk);
	uiommu__free(n);
	d->stats.table_nodes--;
}

static void subtree_free(struct uiommu_domain *d, struct pt_node *n, unsigned int level)
{
	for (unsigned int i = 0; level > 0 && i < PT_ENTRIES; i++) {
		uint64_t pte = atomic_load_explicit(&n->pte[i], memory_order_relaxed);

		if (pte_is_table(pte))
			subtree_free(d, pte_table(pte), level - 1);
	}
	node_free(d, n);
}

static uint64_t table_pte(struct pt_node *child)
{
	return (uint64_t)(uintptr_t)child | PTE_PRESENT;
}

static uint64_t leaf_pte(uintptr_t host, uint32_t prot)
{
	return (uint64_t)host | PTE_PRESENT | PTE_LEAF | (prot & UIOMMU_PROT_READ ? PTE_READ : 0) |
	       (prot & UIOMMU_PROT_WRITE ? PTE_WRITE : 0);
}

static uintptr_t pte_host(uint64_t pte)
{
	return (uintptr_t)(pte & ~PTE_FLAGS_MASK);
}

UIOMMU_EXPORT int uiommu_domain_create(const struct uiommu_domain_cfg *cfg,
				       struct uiommu_domain **out)
{
	const struct pt_format *fmt;
	struct uiommu_domain *d;

	if (cfg->format >= ARRAY_SIZE(pt_formats))
		return -EINVAL;
	fmt = &pt_formats[cfg->format];
	if (cfg->pgsize_bitmap & ~fmt->pgsizes)
		return -EINVAL;
	if (cfg->pgsize_bitmap && !(cfg->pgsize_bitmap & (1ull << fmt->base_shift)))
		return -EINVAL;
	d = uiommu__zalloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fmt = fmt;
	d->pgsizes = cfg->pgsize_bitmap ? cfg->pgsize_bitmap : fmt->pgsizes;
	d->root = node_alloc(d, cfg->format == UIOMMU_PT_X86 ? 3 : 4);
	if (!d->root) {
		uiommu__free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

UIOMMU_EXPORT void uiommu_domain_destroy(struct uiommu_domain *d)
{
	if (!d)
		return;
	domain_detach_all(d);
	subtree_free(d, d->root, d->fmt->levels - 1);
	while (d->spare) {
		struct pt_node *n = d->spare;

		d->spare = n->next_free;
		uiommu__free(n);
	}
	pthread_mutex_destroy(&d->lock);
	uiommu__free(d->devs);
	uiommu__free(d);
}

UIOMMU_EXPORT uint64_t uiommu_domain_pgsize_bitmap(const struct uiommu_domain *d)
{
	return d->pgsizes;
}

UIOMMU_EXPORT uint64_t uiommu_domain_max_iova(const struct uiommu_domain *d)
{
	(void)d;
	return pt_max_iova();
}

UIOMMU_EXPORT void uiommu_domain_get_stats(struct uiommu_domain *d,
					   struct uiommu_domain_stats *stats)
{
	pthread_mutex_lock(&d->lock);
	*stats = d->stats;
	pthread_mutex_unlock(&d->lock);
}

/* ---- walking ---- */

int pt_walk(struct uiommu_domain *d, uint64_t iova, struct pt_path *path)
{
	struct pt_node *node = d->root;

	if (iova > pt_max_iova())
		return -ENOENT;
	for (unsigned int l = d->fmt->levels; l-- > 0;) {
		unsigned int idx = pt_index(d->fmt, l, iova);
		uint64_t pte = atomic_load_explicit(&node->pte[idx], memory_order_acquire);

		path->node[l] = node;
		path->idx[l] = idx;
		if (!(pte & PTE_PRESENT))
			return -ENOENT;
		if (pte & PTE_LEAF) {
			path->level = l;
			path->pte = pte;
			return 0;
		}
		node = pte_table(pte);
	}
	return -ENOENT;
}

/* Sets the leaf's Accessed bit, as hardware does on a translation fill. */
void pt_touch_accessed(const struct pt_path *path)
{
	_Atomic uint64_t *slot = &path->node[path->level]->pte[path->idx[path->level]];
	uint64_t old = path->pte;

	if (old & PTE_ACCESSED)
		return;
	/* Only if the entry is unchanged: never resurrect an unmapped one. */
	atomic_compare_exchange_strong(slot, &old, old | PTE_ACCESSED);
}

UIOMMU_EXPORT int uiommu_domain_lookup(struct uiommu_domain *d, uint64_t iova,
				       struct uiommu_pte_info *info)
{
	struct pt_path path;
	uint64_t size;
	int rc;

	pthread_mutex_lock(&d->lock);
	rc = pt_walk(d, iova, &path);
	if (!rc) {
		size = level_size(d, path.level);
		info->leaf_size = size;
		info->host = (void *)(pte_host(path.pte) + (iova & (size - 1)));
		info->prot = pte_prot(path.pte);
		info->accessed = path.pte & PTE_ACCESSED;
		info->dirty = dirty_leaf_test(d, &path);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* ---- map ---- */

static int check_range(const struct uiommu_domain *d, uint64_t iova, uint64_t length,
		       uint64_t *last)
{
	uint64_t min_size = level_size(d, 0);

	if (uiommu__range_last(iova, length, last))
		return -EOVERFLOW;
	if ((iova | length) & (min_size - 1))
		return -EINVAL;
	if (*last > pt_max_iova())
		return -EINVAL;
	return 0;
}

static int map_check(const struct uiommu_domain *d, uint64_t iova, uintptr_t host,
		     uint64_t length, uint32_t prot, uint64_t *last)
{
	int rc = check_range(d, iova, length, last);

	if (rc)
		return rc;
	if (!prot || (prot & ~(UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)))
		return -EINVAL;
	if (host & (level_size(d, 0) - 1))
		return -EINVAL;
	if (host + (length - 1) < host)
		return -EOVERFLOW;
	return 0;
}

/* True when no leaf maps any address of [start, last] below @n. */
static bool range_empty(const struct uiommu_domain *d, struct pt_node *n, unsigned int level,
			uint64_t start, uint64_t last)
{
	unsigned int shift = pt_shift(d->fmt, level);
	uint64_t iova = start;

	for (;;) {
		uint64_t pte = atomic_load_explicit(&n->pte[pt_index(d->fmt, level, iova)],
						    memory_order_relaxed);
		uint64_t entry_last = iova | ((1ull << shift) - 1);

		if (pte_is_leaf(pte))
			return false;
		if (pte_is_table(pte) &&
		    !range_empty(d, pte_table(pte), level - 1, iova, u64_min(entry_last, last)))
			return false;
		if (entry_last >= last)
			return true;
		iova = entry_last + 1;
	}
}

static unsigned int pick_level(const struct uiommu_domain *d, uint64_t iova, uintptr_t host,
			       uint64_t remaining)
{
	for (unsigned int l = d->fmt->levels; l-- > 1;) {
		uint64_t size = level_size(d, l);

		if ((d->pgsizes & size) && !((iova | host) & (size - 1)) && remaining >= size)
			return l;
	}
	return 0;
}

/* Returns the node of @level that covers @iova, creating tables on the way. */
static int descend_alloc(struct uiommu_domain *d, uint64_t iova, unsigned int level,
			 struct pt_node **out)
{
	struct pt_node *n = d->root;

	for (unsigned int l = d->fmt->levels - 1; l > level; l--) {
		_Atomic uint64_t *slot = &n->pte[pt_index(d->fmt, l, iova)];
		uint64_t pte = atomic_load_explicit(slot, memory_order_relaxed);
		struct pt_node *child;

		if (!pte_is_table(pte)) {
			/* A level-0 table keeps its Dirty bits in the chunk of its parent. */
			if (l == 1 && !n->chunk && !(n->chunk = chunk_alloc()))
				return -ENOMEM;
			child = node_alloc(d, l - 1);
			if (!child)
				return -ENOMEM;
			atomic_store_explicit(slot, table_pte(child), memory_order_release);
			n->nr_used++;
			pte = table_pte(child);
		}
		n = pte_table(pte);
	}
	*out = n;
	return 0;
}

static void count_leaf(struct uiommu_domain *d, unsigned int level, int64_t delta)
{
	d->stats.leaves[level < 3 ? level : 2] += (uint64_t)delta;
	d->stats.mapped_bytes += (uint64_t)delta * level_size(d, level);
}

/*
 * Stores a leaf. The slot may hold a table left empty by an earlier unmap (the
 * range was checked to have no leaf): the leaf replaces it, and the old
 * subtree is freed once no walker can be inside it.
 */
static void install_leaf(struct uiommu_domain *d, struct pt_node *n, unsigned int level,
			 unsigned int idx, uint64_t pte)
{
	uint64_t old = atomic_exchange_explicit(&n->pte[idx], pte, memory_order_acq_rel);

	if (!pte_is_table(old)) {
		n->nr_used++;
		return;
	}
	domain_drain(d);
	subtree_free(d, pte_table(old), level - 1);
}

static int map_range(struct uiommu_domain *d, uint64_t iova, uint64_t length, uintptr_t host,
		     uint32_t prot, uint64_t *done)
{
	*done = 0;
	while (*done < length) {
		uint64_t at = iova + *done;
		unsigned int level = pick_level(d, at, host + *done, length - *done);
		struct pt_node *n;
		int rc = descend_alloc(d, at, level, &n);

		if (rc)
			return rc;
		install_leaf(d, n, level, pt_index(d->fmt, level, at), leaf_pte(host + *done, prot));
		count_leaf(d, level, 1);
		*done += level_size(d, level);
	}
	return 0;
}

static int unmap_locked(struct uiommu_domain *d, uint64_t start, uint64_t last,
			uint64_t *unmapped);

UIOMMU_EXPORT int uiommu_domain_map(struct uiommu_domain *d, uint64_t iova, void *host,
				    uint64_t length, uint32_t prot)
{
	uint64_t last, done;
	int rc = map_check(d, iova, (uintptr_t)host, length, prot, &last);

	if (rc)
		return rc;
	pthread_mutex_lock(&d->lock);
	if (!range_empty(d, d->root, d->fmt->levels - 1, iova, last)) {
		rc = -EEXIST;
		goto out_unlock;
	}
	rc = map_range(d, iova, length, (uintptr_t)host, prot, &done);
	/* Leaves of whole pages only: undoing them needs no split and cannot fail. */
	if (rc && done)
		unmap_locked(d, iova, iova + done - 1, NULL);
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* ---- unmap ---- */

/* Nodes and chunks the splits of one unmap need, allocated before any change. */
struct split_pool {
	struct pt_node *nodes[2 * PT_MAX_LEVELS];
	uint64_t *chunks[2];
	unsigned int nr_nodes, nr_chunks;
};

/* A split done by this unmap, to move its Dirty bit once DMA has drained. */
struct split_rec {
	struct pt_node *parent; /* holds the former leaf, now a table */
	unsigned int idx, level;
};

struct unmap_ctx {
	struct split_pool pool;
	struct split_rec splits[2 * PT_MAX_LEVELS];
	unsigned int nr_splits;
	struct pt_node *freed; /* unlinked tables, chained through next_free */
};

/* How many nodes (and chunks) making @addr a leaf boundary needs. */
static void split_count(struct uiommu_domain *d, uint64_t addr, unsigned int *nodes,
			unsigned int *chunks)
{
	struct pt_path p;
	unsigned int l;

	if (addr > pt_max_iova() || pt_walk(d, addr, &p) || p.level == 0 ||
	    !(addr & (level_size(d, p.level) - 1)))
		return;
	for (l = p.level; l > 0 && (addr & (level_size(d, l) - 1)); l--)
		(*nodes)++;
	/* The chain reaches level 0: its level-1 node needs a chunk. */
	if (l == 0 && (p.level > 1 || !p.node[1]->chunk))
		(*chunks)++;
}

static void pool_release(struct split_pool *pool)
{
	while (pool->nr_nodes)
		uiommu__free(pool->nodes[--pool->nr_nodes]);
	while (pool->nr_chunks)
		uiommu__free(pool->chunks[--pool->nr_chunks]);
}

static int pool_fill(struct uiommu_domain *d, struct split_pool *pool, uint64_t start,
		     uint64_t last)
{
	unsigned int nodes = 0, chunks = 0;

	split_count(d, start, &nodes, &chunks);
	if (last < UINT64_MAX)
		split_count(d, last + 1, &nodes, &chunks);
	while (pool->nr_nodes < nodes) {
		pool->nodes[pool->nr_nodes] =
			uiommu__aligned_zalloc(PT_NODE_ALIGN, sizeof(struct pt_node));
		if (!pool->nodes[pool->nr_nodes])
			goto err_release;
		pool->nr_nodes++;
	}
	while (pool->nr_chunks < chunks) {
		pool->chunks[pool->nr_chunks] = chunk_alloc();
		if (!pool->chunks[pool->nr_chunks])
			goto err_release;
		pool->nr_chunks++;
	}
	return 0;
err_release:
	pool_release(pool);
	return -ENOMEM;
}

/* Replaces the leaf at p->level by a table of 512 leaves one level down. */
static void split_leaf(struct uiommu_domain *d, struct unmap_ctx *c, const struct pt_path *p)
{
	unsigned int level = p->level;
	struct pt_node *parent = p->node[level];
	struct pt_node *child = c->pool.nodes[--c->pool.nr_nodes];
	uint64_t size = level_size(d, level - 1);
	uintptr_t host = pte_host(p->pte);
	uint64_t keep = p->pte & PTE_ACCESSED;
	uint32_t prot = pte_prot(p->pte);

	for (unsigned int i = 0; i < PT_ENTRIES; i++)
		atomic_store_explicit(&child->pte[i], leaf_pte(host + i * size, prot) | keep,
				      memory_order_relaxed);
	child->nr_used = PT_ENTRIES;
	if (level == 1 && !parent->chunk)
		parent->chunk = c->pool.chunks[--c->pool.nr_chunks];
	d->stats.table_nodes++;
	/* Release: walkers that see the table see its entries. */
	atomic_store_explicit(&parent->pte[p->idx[level]], table_pte(child), memory_order_release);
	count_leaf(d, level, -1);
	count_leaf(d, level - 1, PT_ENTRIES);
	c->splits[c->nr_splits++] =
		(struct split_rec){ .parent = parent, .idx = p->idx[level], .level = level };
}

static void split_at(struct uiommu_domain *d, struct unmap_ctx *c, uint64_t addr)
{
	struct pt_path p;

	if (addr > pt_max_iova())
		return;
	while (!pt_walk(d, addr, &p) && p.level > 0 && (addr & (level_size(d, p.level) - 1)))
		split_leaf(d, c, &p);
}

/* Clears the leaves inside [start, last] below @n; returns bytes unmapped. */
static uint64_t clear_leaves(struct uiommu_domain *d, struct pt_node *n, unsigned int level,
			     uint64_t start, uint64_t last)
{
	unsigned int shift = pt_shift(d->fmt, level);
	uint64_t iova = start, bytes = 0;

	for (;;) {
		_Atomic uint64_t *slot = &n->pte[pt_index(d->fmt, level, iova)];
		uint64_t pte = atomic_load_explicit(slot, memory_order_relaxed);
		uint64_t entry_last = iova | ((1ull << shift) - 1);

		if (pte_is_leaf(pte)) {
			atomic_store_explicit(slot, 0, memory_order_release);
			n->nr_used--;
			count_leaf(d, level, -1);
			bytes += 1ull << shift;
		} else if (pte_is_table(pte)) {
			bytes += clear_leaves(d, pte_table(pte), level - 1, iova,
					      u64_min(entry_last, last));
		}
		if (entry_last >= last)
			return bytes;
		iova = entry_last + 1;
	}
}

static void unlink_table(struct unmap_ctx *c, struct pt_node *n, unsigned int idx,
			 struct pt_node *child)
{
	atomic_store_explicit(&n->pte[idx], 0, memory_order_release);
	for (unsigned int b = 0; b < 2; b++)
		__atomic_fetch_and(&n->summary[b][idx / 64], ~(1ull << (idx % 64)),
				   __ATOMIC_SEQ_CST);
	n->nr_used--;
	child->next_free = c->freed;
	c->freed = child;
}

/* Unlinks the tables whose whole span lies in [start, last]; they are empty. */
static void prune_tables(struct uiommu_domain *d, struct unmap_ctx *c, struct pt_node *n,
			 unsigned int level, uint64_t start, uint64_t last)
{
	unsigned int shift = pt_shift(d->fmt, level);
	uint64_t iova = start;

	for (;;) {
		unsigned int idx = pt_index(d->fmt, level, iova);
		uint64_t pte = atomic_load_explicit(&n->pte[idx], memory_order_relaxed);
		uint64_t entry_start = iova & ~((1ull << shift) - 1);
		uint64_t entry_last = entry_start | ((1ull << shift) - 1);

		if (pte_is_table(pte)) {
			struct pt_node *child = pte_table(pte);

			prune_tables(d, c, child, level - 1, iova, u64_min(entry_last, last));
			if (!child->nr_used &&
			    (level == 1 || (entry_start >= start && entry_last <= last)))
				unlink_table(c, n, idx, child);
		}
		if (entry_last >= last)
			return;
		iova = entry_last + 1;
	}
}

static void free_pruned(struct uiommu_domain *d, struct unmap_ctx *c)
{
	if (!c->freed)
		return;
	/* A walker may still hold a pointer it loaded before the unlink. */
	domain_drain(d);
	while (c->freed) {
		struct pt_node *n = c->freed;

		c->freed = n->next_free;
		if (n->chunk || d->nr_spare >= MAX_SPARE) {
			node_free(d, n);
			continue;
		}
		/* Entries are all clear already; a level-0 node's Dirty bits are its
		 * parent's. A spare only ever serves as a level-0 node. */
		memset(n->leaf_dirty, 0, sizeof(n->leaf_dirty));
		memset(n->summary, 0, sizeof(n->summary));
		n->next_free = d->spare;
		d->spare = n;
		d->nr_spare++;
		d->stats.table_nodes--;
	}
}

static void inherit_splits(struct uiommu_domain *d, struct unmap_ctx *c)
{
	for (unsigned int i = 0; i < c->nr_splits; i++)
		dirty_split_inherit(d, c->splits[i].parent, c->splits[i].idx, c->splits[i].level);
}

/*
 * Unmaps [start, last]. Only the splits allocate, and they allocate before any
 * change, so an unmap that needs no split (the undo of a failed map) cannot
 * fail.
 */
static int unmap_locked(struct uiommu_domain *d, uint64_t start, uint64_t last,
			uint64_t *unmapped)
{
	struct unmap_ctx c = { 0 };
	unsigned int top = d->fmt->levels - 1;
	uint64_t bytes;

	/* Without large leaves nothing can straddle an edge. */
	if (d->stats.leaves[1] || d->stats.leaves[2]) {
		if (pool_fill(d, &c.pool, start, last))
			return -ENOMEM;
		split_at(d, &c, start);
		if (last < UINT64_MAX)
			split_at(d, &c, last + 1);
	}
	bytes = clear_leaves(d, d->root, top, start, last);
	if (bytes || c.nr_splits)
		domain_iotlb_flush(d);
	inherit_splits(d, &c);
	/* Pages mapped later at these IOVAs start clean. */
	dirty_harvest(d, start, last, HARVEST_CLEAR_ATOMIC, NULL, NULL);
	prune_tables(d, &c, d->root, top, start, last);
	free_pruned(d, &c);
	pool_release(&c.pool);
	if (unmapped)
		*unmapped = bytes;
	return 0;
}

UIOMMU_EXPORT int uiommu_domain_unmap(struct uiommu_domain *d, uint64_t iova, uint64_t length,
				      uint64_t *unmapped)
{
	uint64_t last, bytes = 0;
	int rc = 0;

	if (uiommu__range_last(iova, length, &last))
		return -EOVERFLOW;
	if ((iova | length) & (level_size(d, 0) - 1))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	if (iova <= pt_max_iova())
		rc = unmap_locked(d, iova, u64_min(last, pt_max_iova()), &bytes);
	pthread_mutex_unlock(&d->lock);
	if (!rc && unmapped)
		*unmapped = bytes;
	return rc;
}
