/* SPDX-License-Identifier: MIT */
/*
 * Interval tree: an intrusive red-black tree of inclusive [start, last] ranges.
 *
 * Order. Nodes are sorted by start, then by last; a node equal to an existing
 * one on both goes to its right, so equal keys keep their insertion order.
 * Removal is by node pointer and never compares keys, so duplicates are fine.
 *
 * Augmentation. Every node caches subtree_last, the largest last of its
 * subtree. It changes only where the shape or the set of a subtree changes:
 * - insert raises it along the descent path before linking the new leaf;
 * - a rotation keeps the set of the rotated pair, so the node that moves up
 *   inherits the old value of the node that moves down, and only the latter
 *   is recomputed from its (new) children;
 * - erase recomputes from the lowest spliced position upwards, before any
 *   rebalancing rotation, so that rotations always start from correct
 *   values; it stops at the first node whose value comes out unchanged, which
 *   keeps erase from walking to the root every time. Recolouring never
 *   touches it.
 *
 * Overlap search. [s, l] overlaps a node when node.start <= l and
 * node.last >= s. In sorted order, the first overlapping node is the first
 * node with last >= s, provided its start <= l: every earlier node ends before
 * s, and every later node starts at or after it. subtree_last lets the search
 * skip subtrees that end before s, so iter_first is O(log n) and iter_next is
 * O(log n) amortized per result.
 *
 * Example: nodes [0,9] [5,5] [20,29]; query [6,21]. The first node with
 * last >= 6 is [0,9] (start 0 <= 21): a hit. Next, [5,5] ends before 6 and is
 * skipped; [20,29] has last >= 6 and start 20 <= 21: a hit. Then the end.
 *
 * Red-black rules: the root and NULL leaves are black, a red node has black
 * children, and every root-to-leaf path holds the same number of black nodes.
 * The fixups are written once for a direction @dir (0 = left, 1 = right) and
 * used with both values, so that mirror cases share code.
 *
 * Not thread-safe: the owner serializes access.
 */
#include <stddef.h>

#include <uiommu/itree.h>

#include "core/core_internal.h"

typedef struct uiommu_itree_node node_t;

static node_t **child_slot(node_t *n, int dir)
{
	return dir ? &n->right : &n->left;
}

static node_t *child(const node_t *n, int dir)
{
	return dir ? n->right : n->left;
}

static bool is_red(const node_t *n)
{
	return n && n->red;
}

static uint64_t subtree_last_of(const node_t *n)
{
	uint64_t v = n->last;

	if (n->left)
		v = u64_max(v, n->left->subtree_last);
	if (n->right)
		v = u64_max(v, n->right->subtree_last);
	return v;
}

/* Makes @new take @old's place under @parent (or at the root). */
static void replace_child(struct uiommu_itree *tree, node_t *parent, node_t *old, node_t *new)
{
	if (!parent)
		tree->root = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
	if (new)
		new->parent = parent;
}

/*
 * Rotates @x towards @dir: its child on the other side, y, takes its place and
 * @x becomes y's child on side @dir. The pair covers the same nodes before and
 * after, so y inherits @x's subtree_last.
 */
static void rotate(struct uiommu_itree *tree, node_t *x, int dir)
{
	node_t *y = child(x, !dir);
	node_t *inner = child(y, dir);

	*child_slot(x, !dir) = inner;
	if (inner)
		inner->parent = x;
	replace_child(tree, x->parent, x, y);
	*child_slot(y, dir) = x;
	x->parent = y;
	y->subtree_last = x->subtree_last;
	x->subtree_last = subtree_last_of(x);
}

UIOMMU_EXPORT void uiommu_itree_init(struct uiommu_itree *tree)
{
	tree->root = NULL;
	tree->count = 0;
}

static bool goes_left(const node_t *n, const node_t *at)
{
	return n->start < at->start || (n->start == at->start && n->last < at->last);
}

/* Links @node as a red leaf, raising subtree_last on the way down. */
static void link_leaf(struct uiommu_itree *tree, node_t *node)
{
	node_t *parent = NULL, **slot = &tree->root;

	while (*slot) {
		parent = *slot;
		if (parent->subtree_last < node->last)
			parent->subtree_last = node->last;
		slot = goes_left(node, parent) ? &parent->left : &parent->right;
	}
	*slot = node;
	node->parent = parent;
	node->left = node->right = NULL;
	node->subtree_last = node->last;
	node->red = 1;
}

/*
 * One step of the insert fixup, for red @n under red parent @p. Returns the
 * node that may still have a red parent, or NULL when the tree is balanced.
 */
static node_t *insert_fix_step(struct uiommu_itree *tree, node_t *n, node_t *p)
{
	node_t *g = p->parent; /* exists: a red node is never the root */
	int dir = p == g->right;
	node_t *uncle = child(g, !dir);

	if (is_red(uncle)) {
		/* Push the blackness of g down one level; g may now clash above. */
		p->red = uncle->red = 0;
		g->red = 1;
		return g;
	}
	if (n == child(p, !dir)) {
		/* Inner grandchild: turn it into the outer case. */
		rotate(tree, p, dir);
		p = n;
	}
	p->red = 0;
	g->red = 1;
	rotate(tree, g, !dir);
	return NULL;
}

UIOMMU_EXPORT void uiommu_itree_insert(struct uiommu_itree *tree, node_t *node)
{
	node_t *n = node;

	UIOMMU_BUG_ON(node->start > node->last);
	link_leaf(tree, node);
	while (n && is_red(n->parent))
		n = insert_fix_step(tree, n, n->parent);
	tree->root->red = 0;
	tree->count++;
}

static node_t *leftmost(node_t *n)
{
	while (n->left)
		n = n->left;
	return n;
}

/*
 * Recomputes subtree_last from @n up. Each node on the way still holds the
 * value for its subtree before the erase, so once a node's value comes out
 * unchanged, nothing above can change either. The exception is the path up
 * to and including @must_reach, the successor moved into the erased node's
 * place: its stored value belongs to its old position, and the nodes below it
 * lost it while it lost the erased node, so all of them are recomputed.
 */
static void propagate_up(node_t *n, const node_t *must_reach)
{
	for (; n; n = n->parent) {
		uint64_t v = subtree_last_of(n);

		if (v == n->subtree_last && !must_reach)
			return;
		n->subtree_last = v;
		if (n == must_reach)
			must_reach = NULL;
	}
}

/* Where erase left a hole: the child that moved up (maybe NULL) and its parent. */
struct erase_pos {
	node_t *x;
	node_t *parent;
	node_t *moved; /* the successor that took the erased node's place, or NULL */
};

/*
 * Unlinks @z, which has two children, by putting its in-order successor y in
 * its place (y takes z's colour). Returns whether y's old position lost a
 * black node, and where.
 */
static bool splice_successor(struct uiommu_itree *tree, node_t *z, struct erase_pos *pos)
{
	node_t *y = leftmost(z->right);
	bool removed_black = !y->red;

	pos->x = y->right;
	if (y->parent == z) {
		pos->parent = y;
	} else {
		pos->parent = y->parent;
		replace_child(tree, y->parent, y, y->right);
		y->right = z->right;
		y->right->parent = y;
	}
	y->left = z->left;
	y->left->parent = y;
	replace_child(tree, z->parent, z, y);
	y->red = z->red;
	pos->moved = y;
	return removed_black;
}

/* Unlinks @z; returns whether a black node left the tree's paths, and where. */
static bool splice_out(struct uiommu_itree *tree, node_t *z, struct erase_pos *pos)
{
	if (z->left && z->right)
		return splice_successor(tree, z, pos);
	pos->x = z->left ? z->left : z->right;
	pos->parent = z->parent;
	pos->moved = NULL;
	replace_child(tree, z->parent, z, pos->x);
	return !z->red;
}

/*
 * One step of the erase fixup: pos->x is "doubly black" (its paths lack one
 * black node). Returns false when done.
 */
static bool erase_fix_step(struct uiommu_itree *tree, struct erase_pos *pos)
{
	node_t *p = pos->parent;
	int dir = pos->x == p->right;
	node_t *w = child(p, !dir); /* exists: its side has black height >= 1 */

	if (w->red) {
		/* Make the sibling black so that the cases below apply. */
		w->red = 0;
		p->red = 1;
		rotate(tree, p, dir);
		w = child(p, !dir);
	}
	if (!is_red(w->left) && !is_red(w->right)) {
		/* Take one black off both sides; the deficit moves up to p. */
		w->red = 1;
		pos->x = p;
		pos->parent = p->parent;
		return true;
	}
	if (!is_red(child(w, !dir))) {
		/* Only the inner nephew is red: make it the outer one. */
		child(w, dir)->red = 0;
		w->red = 1;
		rotate(tree, w, !dir);
		w = child(p, !dir);
	}
	w->red = p->red;
	p->red = 0;
	child(w, !dir)->red = 0;
	rotate(tree, p, dir);
	pos->x = tree->root;
	return false;
}

UIOMMU_EXPORT void uiommu_itree_remove(struct uiommu_itree *tree, node_t *node)
{
	struct erase_pos pos;
	bool removed_black = splice_out(tree, node, &pos);

	propagate_up(pos.parent, pos.moved);
	if (removed_black) {
		while (pos.x != tree->root && !is_red(pos.x) && erase_fix_step(tree, &pos))
			;
		if (pos.x)
			pos.x->red = 0;
	}
	node->parent = node->left = node->right = NULL;
	tree->count--;
}

UIOMMU_EXPORT node_t *uiommu_itree_first(const struct uiommu_itree *tree)
{
	return tree->root ? leftmost(tree->root) : NULL;
}

UIOMMU_EXPORT node_t *uiommu_itree_next(const node_t *node)
{
	node_t *p;

	if (node->right)
		return leftmost(node->right);
	while ((p = node->parent) && node == p->right)
		node = p;
	return p;
}

static bool reaches(const node_t *n, uint64_t start)
{
	return n && n->subtree_last >= start;
}

/* The first node of @n's subtree, in order, with last >= @start; NULL if none. */
static node_t *first_reaching(node_t *n, uint64_t start)
{
	if (!reaches(n, start))
		return NULL;
	for (;;) {
		if (reaches(n->left, start))
			n = n->left;
		else if (n->last >= start)
			return n;
		else
			n = n->right; /* must reach: n's subtree does and n does not */
	}
}

static node_t *overlap_or_null(node_t *n, uint64_t last)
{
	return n && n->start <= last ? n : NULL;
}

UIOMMU_EXPORT node_t *uiommu_itree_iter_first(const struct uiommu_itree *tree, uint64_t start,
					      uint64_t last)
{
	return overlap_or_null(first_reaching(tree->root, start), last);
}

/*
 * Walks forward in order from @node, skipping right subtrees that end before
 * @start, and stops at the first ancestor that starts after @last.
 */
UIOMMU_EXPORT node_t *uiommu_itree_iter_next(const node_t *node, uint64_t start, uint64_t last)
{
	const node_t *n = node;
	node_t *p;

	for (;;) {
		if (reaches(n->right, start))
			return overlap_or_null(first_reaching(n->right, start), last);
		while ((p = n->parent) && n == p->right)
			n = p;
		if (!p || p->start > last)
			return NULL;
		if (p->last >= start)
			return p;
		n = p;
	}
}
