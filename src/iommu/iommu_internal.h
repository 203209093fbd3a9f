/* SPDX-License-Identifier: MIT */
/*
 * Private structures of the emulated IOMMU. See pagetable.c for the page-table
 * format, dirty.c for how dirty state is kept and harvested, device.c for the
 * DMA path, the IOTLB and the drain that makes invalidation synchronous.
 */
#ifndef UIOMMU_IOMMU_INTERNAL_H
#define UIOMMU_IOMMU_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uiommu/iommu.h>

#include "core/core_internal.h"

#define PT_BITS 9
#define PT_ENTRIES (1u << PT_BITS)
#define PT_WORDS (PT_ENTRIES / 64)
#define PT_MAX_LEVELS 6
#define PT_IOVA_BITS 48

/* Page-table entry bits; the rest of the word is a host or node address. */
#define PTE_PRESENT (1ull << 0)
#define PTE_LEAF (1ull << 1)
#define PTE_READ (1ull << 2)
#define PTE_WRITE (1ull << 3)
#define PTE_ACCESSED (1ull << 4)
#define PTE_FLAGS_MASK 0x7ffull /* of a leaf: host addresses are 2 KiB aligned */
#define PT_NODE_ALIGN 64
#define PTE_TABLE_MASK ((uint64_t)PT_NODE_ALIGN - 1) /* of a table: nodes are 64 B aligned */

struct pt_format {
	const char *name;
	unsigned int base_shift; /* smallest leaf */
	unsigned int levels;     /* node levels; level 0 holds smallest leaves */
	uint64_t pgsizes;        /* leaf sizes the format offers */
};

/*
 * One page-table node: 512 entries. Dirty state is double-buffered (see
 * dirty.c): levels >= 1 keep, per buffer, a Dirty bit per leaf entry
 * (leaf_dirty) and a summary bit per entry meaning "the subtree below may hold
 * dirty state in this buffer" (summary). The Dirty bits of level-0 leaves are
 * not kept in level-0 nodes but densely in their level-1 parent's chunk: per
 * buffer, line i (8 words) holds the bits of child i. Dense lines make a
 * harvest stream through memory instead of touching scattered cache lines.
 */
struct pt_node {
	_Atomic uint64_t pte[PT_ENTRIES];
	uint64_t leaf_dirty[2][PT_WORDS]; /* __atomic builtins, or plain when frozen */
	uint64_t summary[2][PT_WORDS];
	uint64_t *chunk;                  /* level 1: 2 buffers of PT_CHUNK_WORDS */
	uint32_t nr_used;                 /* present entries; domain lock */
	struct pt_node *next_free;        /* unmap: unlinked, waiting for the drain */
};

#define PT_CHUNK_WORDS (PT_ENTRIES * PT_WORDS)

static inline uint64_t *chunk_line(const struct pt_node *n, unsigned int buf, unsigned int i)
{
	return &n->chunk[buf * PT_CHUNK_WORDS + i * PT_WORDS];
}

struct uiommu_domain {
	const struct pt_format *fmt;
	uint64_t pgsizes;
	struct pt_node *root;
	pthread_mutex_t lock; /* serializes map, unmap, harvest, attach/detach */
	_Atomic uint64_t gen; /* IOTLB generation: entries of another gen are stale */
	atomic_bool tracking;
	atomic_uint epoch;    /* the dirty buffer markers write */
	struct uiommu_device **devs; /* attached devices; lock */
	unsigned int nr_devs, cap_devs;
	struct uiommu_domain_stats stats; /* lock */
	struct pt_node *spare; /* emptied level-0 nodes kept for reuse; lock */
	unsigned int nr_spare;
};

/* A walk's result: the node and index at each level down to the leaf. */
struct pt_path {
	struct pt_node *node[PT_MAX_LEVELS];
	unsigned int idx[PT_MAX_LEVELS];
	unsigned int level; /* level of the leaf */
	uint64_t pte;
};

static inline unsigned int pt_shift(const struct pt_format *fmt, unsigned int level)
{
	return fmt->base_shift + level * PT_BITS;
}

static inline unsigned int pt_index(const struct pt_format *fmt, unsigned int level,
				    uint64_t iova)
{
	return (unsigned int)(iova >> pt_shift(fmt, level)) & (PT_ENTRIES - 1);
}

static inline uint64_t pt_max_iova(void)
{
	return (1ull << PT_IOVA_BITS) - 1;
}

static inline struct pt_node *pte_table(uint64_t pte)
{
	return (struct pt_node *)(uintptr_t)(pte & ~PTE_TABLE_MASK);
}

static inline bool pte_is_table(uint64_t pte)
{
	return (pte & (PTE_PRESENT | PTE_LEAF)) == PTE_PRESENT;
}

static inline bool pte_is_leaf(uint64_t pte)
{
	return (pte & (PTE_PRESENT | PTE_LEAF)) == (PTE_PRESENT | PTE_LEAF);
}

static inline uint32_t pte_prot(uint64_t pte)
{
	return (pte & PTE_READ ? UIOMMU_PROT_READ : 0) | (pte & PTE_WRITE ? UIOMMU_PROT_WRITE : 0);
}

/* Sets a bit unless it is already set; sequentially consistent. */
static inline void bit_set_sc(uint64_t *words, unsigned int bit)
{
	uint64_t mask = 1ull << (bit % 64);

	if (!(__atomic_load_n(&words[bit / 64], __ATOMIC_SEQ_CST) & mask))
		__atomic_fetch_or(&words[bit / 64], mask, __ATOMIC_SEQ_CST);
}

/* pagetable.c */
int pt_walk(struct uiommu_domain *domain, uint64_t iova, struct pt_path *path);
void pt_touch_accessed(const struct pt_path *path);

/* dirty.c */
void dirty_mark(struct uiommu_domain *domain, const struct pt_path *path);

enum harvest_mode {
	HARVEST_PEEK,         /* report, clear nothing */
	HARVEST_CLEAR_ATOMIC, /* report and clear both buffers with atomics */
	HARVEST_FLIP,         /* flip buffers, drain, clear the old one with plain stores */
};
/*
 * Reports (sink may be NULL) and clears dirty state in [start, last] as @mode
 * says; returns how many words had bits cleared, or a sink's negative errno.
 * A caller that cleared anything must flush the IOTLBs. Lock held.
 */
int64_t dirty_harvest(struct uiommu_domain *domain, uint64_t start, uint64_t last,
		      enum harvest_mode mode, uiommu_dirty_sink_fn sink, void *opaque);
/* A leaf at @level, entry @idx of @parent, became a table: its Dirty bit, if
 * set, moves to every entry of the new table. After the drain; lock held. */
void dirty_split_inherit(const struct uiommu_domain *domain, struct pt_node *parent,
			 unsigned int idx, unsigned int level);
bool dirty_leaf_test(const struct uiommu_domain *domain, const struct pt_path *path);

/* device.c */
/* New IOTLB generation and wait for every DMA that may use the old one. Lock held. */
void domain_iotlb_flush(struct uiommu_domain *domain);
/* Wait for the DMA in flight on every attached device. Lock held. */
void domain_drain(struct uiommu_domain *domain);
void domain_detach_all(struct uiommu_domain *domain);

#endif
