/* SPDX-License-Identifier: MIT */
/*
 * Interval tree keyed by inclusive [start, last] u64 ranges.
 *
 * Intrusive: embed struct uiommu_itree_node in your object, set start and last,
 * insert. A red-black tree ordered by start, augmented with the largest last of
 * each subtree, so that insert, remove and finding the first overlap of a range
 * are O(log n). Nodes may overlap each other and share a start. Not
 * thread-safe: the owner serializes access.
 */
#ifndef UIOMMU_ITREE_H
#define UIOMMU_ITREE_H

#include <stdint.h>

#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

struct uiommu_itree_node {
	uint64_t start;
	uint64_t last;
	/* Private to the tree. */
	uint64_t subtree_last;
	struct uiommu_itree_node *parent, *left, *right;
	int red;
};

struct uiommu_itree {
	struct uiommu_itree_node *root;
	uint64_t count;
};

UIOMMU_EXPORT void uiommu_itree_init(struct uiommu_itree *tree);
/* @node->start <= @node->last must hold. */
UIOMMU_EXPORT void uiommu_itree_insert(struct uiommu_itree *tree, struct uiommu_itree_node *node);
UIOMMU_EXPORT void uiommu_itree_remove(struct uiommu_itree *tree, struct uiommu_itree_node *node);

/*
 * In-order iteration over every node; NULL at the end. The order is by start,
 * then by last; fully equal nodes come in insertion order.
 */
UIOMMU_EXPORT struct uiommu_itree_node *uiommu_itree_first(const struct uiommu_itree *tree);
UIOMMU_EXPORT struct uiommu_itree_node *uiommu_itree_next(const struct uiommu_itree_node *node);

/*
 * In-order iteration over the nodes that overlap [start, last]: iter_first
 * returns the overlapping node with the lowest start, iter_next the following
 * one, NULL at the end. @node must come from iter_first or iter_next on the
 * same [start, last], and the tree must not change during the walk.
 */
UIOMMU_EXPORT struct uiommu_itree_node *
uiommu_itree_iter_first(const struct uiommu_itree *tree, uint64_t start, uint64_t last);
UIOMMU_EXPORT struct uiommu_itree_node *
uiommu_itree_iter_next(const struct uiommu_itree_node *node, uint64_t start, uint64_t last);

#define uiommu_itree_for_each_overlap(node, tree, start, last)                                   \
	for ((node) = uiommu_itree_iter_first((tree), (start), (last)); (node);                    \
	     (node) = uiommu_itree_iter_next((node), (start), (last)))

UIOMMU_END_DECLS

#endif
