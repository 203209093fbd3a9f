/* SPDX-License-Identifier: MIT */
/*
 * Tests of the interval tree: fixed edge cases, then a randomized differential
 * test against the linear model of tests/model/itree_model.h. After every
 * mutation a checker walks the public node fields and verifies the red-black
 * rules, the order, the parent links and subtree_last. The random seed comes
 * from UIOMMU_SEED or the clock and is printed with every failure.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "seeded.h"

#include <uiommu/itree.h>

#include "core/core_internal.h"
#include "../../model/itree_model.h"

struct item {
	struct uiommu_itree_node node;
	size_t id;
	bool live;
};


static struct item *item_of(struct uiommu_itree_node *n)
{
	return container_of(n, struct item, node);
}

static bool key_le(const struct uiommu_itree_node *a, const struct uiommu_itree_node *b)
{
	return a->start < b->start || (a->start == b->start && a->last <= b->last);
}

/* Checks the subtree of @n; returns its black height (NULL leaves count 1). */
static int check_subtree(const struct uiommu_itree_node *n, const struct uiommu_itree_node *parent,
			 size_t *count)
{
	uint64_t sub_last;
	int lh, rh;

	if (!n)
		return 1;
	CHECK(n->parent == parent);
	CHECK(n->start <= n->last);
	CHECK(!(n->red && parent && parent->red));
	CHECK(!n->left || key_le(n->left, n));
	CHECK(!n->right || key_le(n, n->right));
	lh = check_subtree(n->left, n, count);
	rh = check_subtree(n->right, n, count);
	CHECK(lh == rh);
	sub_last = n->last;
	if (n->left && n->left->subtree_last > sub_last)
		sub_last = n->left->subtree_last;
	if (n->right && n->right->subtree_last > sub_last)
		sub_last = n->right->subtree_last;
	CHECK(n->subtree_last == sub_last);
	(*count)++;
	return lh + !n->red;
}

/* Full invariant check, plus in-order iteration being sorted and complete. */
static void check_tree(const struct uiommu_itree *tree)
{
	const struct uiommu_itree_node *prev = NULL, *n;
	size_t count = 0, iterated = 0;

	CHECK(!tree->root || !tree->root->red);
	check_subtree(tree->root, NULL, &count);
	CHECK(count == tree->count);
	for (n = uiommu_itree_first(tree); n; n = uiommu_itree_next(n)) {
		CHECK(!prev || key_le(prev, n));
		prev = n;
		iterated++;
	}
	CHECK(iterated == count);
}

static void item_set(struct item *it, uint64_t start, uint64_t last)
{
	it->node.start = start;
	it->node.last = last;
}

/* Collects the ids overlapping [start, last] through the for_each macro. */
static size_t collect(const struct uiommu_itree *tree, uint64_t start, uint64_t last, size_t *ids,
		      size_t max)
{
	struct uiommu_itree_node *n;
	size_t nr = 0;

	uiommu_itree_for_each_overlap(n, tree, start, last)
	{
		CHECK(nr < max);
		ids[nr++] = item_of(n)->id;
	}
	return nr;
}

static void test_itree_empty_tree_has_no_nodes_and_no_overlaps(void **state)
{
	struct uiommu_itree tree;

	(void)state;
	uiommu_itree_init(&tree);
	assert_null(uiommu_itree_first(&tree));
	assert_null(uiommu_itree_iter_first(&tree, 0, UINT64_MAX));
	assert_true(tree.count == 0);
	check_tree(&tree);
}

static void test_itree_ranges_touching_zero_and_u64_max_are_found(void **state)
{
	struct item it[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
	struct uiommu_itree tree;
	size_t ids[4];

	(void)state;
	uiommu_itree_init(&tree);
	item_set(&it[0], 0, 0);
	item_set(&it[1], UINT64_MAX, UINT64_MAX);
	item_set(&it[2], 0, UINT64_MAX);
	for (int i = 0; i < 3; i++) {
		uiommu_itree_insert(&tree, &it[i].node);
		check_tree(&tree);
	}
	assert_int_equal(collect(&tree, 0, 0, ids, 4), 2);
	assert_int_equal(collect(&tree, UINT64_MAX, UINT64_MAX, ids, 4), 2);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 1);
	assert_int_equal(collect(&tree, 1, UINT64_MAX - 1, ids, 4), 1);
	assert_int_equal(collect(&tree, 0, UINT64_MAX, ids, 4), 3);
	uiommu_itree_remove(&tree, &it[2].node);
	check_tree(&tree);
	assert_int_equal(collect(&tree, 1, UINT64_MAX - 1, ids, 4), 0);
	assert_ptr_equal(uiommu_itree_iter_first(&tree, 1, UINT64_MAX), &it[1].node);
	assert_null(uiommu_itree_iter_next(&it[1].node, 1, UINT64_MAX));
}

static void test_itree_duplicate_starts_are_all_kept_and_iterated(void **state)
{
	struct item it[64];
	struct uiommu_itree tree;
	struct uiommu_itree_node *n;
	size_t ids[64], nr;

	(void)state;
	uiommu_itree_init(&tree);
	for (size_t i = 0; i < 64; i++) {
		it[i].id = i;
		/* Same start; lasts repeat too, so some nodes are fully equal. */
		item_set(&it[i], 100, 100 + i % 8);
		uiommu_itree_insert(&tree, &it[i].node);
		check_tree(&tree);
	}
	assert_int_equal(collect(&tree, 0, 100, ids, 64), 64);
	assert_int_equal(collect(&tree, 107, 1000, ids, 64), 8);
	nr = 0;
	for (n = uiommu_itree_first(&tree); n; n = uiommu_itree_next(n))
		nr++;
	assert_int_equal(nr, 64);
	for (size_t i = 0; i < 64; i += 2) {
		uiommu_itree_remove(&tree, &it[i].node);
		check_tree(&tree);
	}
	assert_int_equal(collect(&tree, 100, 100, ids, 64), 32);
	assert_int_equal(collect(&tree, 106, 106, ids, 64), 8);
}

static void test_itree_in_order_iteration_is_sorted_by_start(void **state)
{
	enum { N = 1000 };
	struct item *it = calloc(N, sizeof(*it));
	struct uiommu_itree tree;
	struct uiommu_itree_node *n;
	uint64_t prev = 0;
	size_t nr = 0;

	(void)state;
	assert_non_null(it);
	uiommu_itree_init(&tree);
	for (size_t i = 0; i < N; i++) {
		/* A permutation of 0..N-1 scaled, so every start is distinct. */
		uint64_t s = (i * 7919 % N) * 16;

		item_set(&it[i], s, s + 15);
		uiommu_itree_insert(&tree, &it[i].node);
	}
	check_tree(&tree);
	for (n = uiommu_itree_first(&tree); n; n = uiommu_itree_next(n), nr++) {
		assert_true(n->start == prev);
		prev += 16;
	}
	assert_int_equal(nr, N);
	free(it);
}

static void test_itree_for_each_overlap_visits_exactly_the_overlapping_nodes(void **state)
{
	/* [0,9] [5,5] [20,29] [25,100] [200,300]; nested and disjoint mixes. */
	static const uint64_t r[][2] = {
		{ 0, 9 }, { 5, 5 }, { 20, 29 }, { 25, 100 }, { 200, 300 },
	};
	struct item it[5];
	struct uiommu_itree tree;
	size_t ids[5];

	(void)state;
	uiommu_itree_init(&tree);
	for (size_t i = 0; i < 5; i++) {
		it[i].id = i;
		item_set(&it[i], r[i][0], r[i][1]);
		uiommu_itree_insert(&tree, &it[i].node);
	}
	assert_int_equal(collect(&tree, 6, 21, ids, 5), 2);
	assert_int_equal(ids[0], 0);
	assert_int_equal(ids[1], 2);
	assert_int_equal(collect(&tree, 30, 199, ids, 5), 1);
	assert_int_equal(ids[0], 3);
	assert_int_equal(collect(&tree, 101, 199, ids, 5), 0);
	assert_int_equal(collect(&tree, 5, 5, ids, 5), 2);
	assert_int_equal(collect(&tree, 300, UINT64_MAX, ids, 5), 1);
	assert_int_equal(ids[0], 4);
	assert_int_equal(collect(&tree, 0, UINT64_MAX, ids, 5), 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(ids[i], i);
}

static void test_itree_ascending_and_descending_fill_then_drain_stay_balanced(void **state)
{
	enum { N = 2048 };
	struct item *it = calloc(N, sizeof(*it));
	struct uiommu_itree tree;

	(void)state;
	assert_non_null(it);
	for (int pass = 0; pass < 4; pass++) {
		uiommu_itree_init(&tree);
		for (size_t i = 0; i < N; i++) {
			size_t k = pass & 1 ? N - 1 - i : i;

			item_set(&it[k], k * 4096, k * 4096 + 4095);
			uiommu_itree_insert(&tree, &it[k].node);
			if (i % 97 == 0)
				check_tree(&tree);
		}
		check_tree(&tree);
		for (size_t i = 0; i < N; i++) {
			size_t k = pass & 2 ? N - 1 - i : i;

			uiommu_itree_remove(&tree, &it[k].node);
			if (i % 97 == 0)
				check_tree(&tree);
		}
		assert_null(tree.root);
		assert_true(tree.count == 0);
	}
	free(it);
}

/* A random range: mostly small and crowded, sometimes at either end of u64. */
static void random_range(uint64_t *start, uint64_t *last)
{
	uint64_t kind = rnd() % 16, len = rnd() % 64;

	if (kind == 0) {
		*start = rnd() % 32;
		*last = *start + len;
	} else if (kind == 1) {
		*last = UINT64_MAX - rnd() % 32;
		*start = *last - len;
	} else if (kind == 2) {
		*start = rnd() % 1024;
		*last = UINT64_MAX - rnd() % 4;
	} else {
		*start = rnd() % 1024;
		*last = *start + len;
	}
}

/* Compares one overlap query of the tree with the model. */
static void check_query(const struct uiommu_itree *tree, const struct itree_model *m,
			struct item *items, size_t nr_items, bool *hit)
{
	struct uiommu_itree_node *n, *first;
	uint64_t start, last, min_start, prev = 0;
	size_t expect, got = 0;

	random_range(&start, &last);
	expect = itree_model_overlaps(m, start, last, hit, nr_items, &min_start);
	first = uiommu_itree_iter_first(tree, start, last);
	CHECK(!first == !expect);
	CHECK(!first || first->start == min_start);
	uiommu_itree_for_each_overlap(n, tree, start, last)
	{
		struct item *it = item_of(n);

		CHECK(it->id < nr_items && &items[it->id] == it);
		CHECK(hit[it->id]); /* overlaps, and not reported twice */
		hit[it->id] = false;
		CHECK(n->start >= prev);
		prev = n->start;
		got++;
	}
	CHECK(got == expect);
}

static void random_mutation(struct uiommu_itree *tree, struct itree_model *m, struct item *items,
			    size_t nr_items)
{
	struct item *it = &items[rnd() % nr_items];

	if (it->live) {
		uiommu_itree_remove(tree, &it->node);
		CHECK(itree_model_remove(m, it->id));
		it->live = false;
		return;
	}
	random_range(&it->node.start, &it->node.last);
	uiommu_itree_insert(tree, &it->node);
	CHECK(itree_model_insert(m, it->node.start, it->node.last, it->id));
	it->live = true;
}

static void run_differential(size_t nr_items, size_t nr_ops, size_t check_every)
{
	struct item *items = calloc(nr_items, sizeof(*items));
	bool *hit = calloc(nr_items, sizeof(*hit));
	struct uiommu_itree tree;
	struct itree_model m;

	assert_non_null(items);
	assert_non_null(hit);
	uiommu_itree_init(&tree);
	itree_model_init(&m, nr_items);
	for (size_t i = 0; i < nr_items; i++)
		items[i].id = i;
	for (op_index = 0; op_index < nr_ops; op_index++) {
		if (rnd() % 3)
			random_mutation(&tree, &m, items, nr_items);
		else
			check_query(&tree, &m, items, nr_items, hit);
		if (op_index % check_every == 0)
			check_tree(&tree);
	}
	check_tree(&tree);
	itree_model_fini(&m);
	free(hit);
	free(items);
}

static void test_itree_random_ops_match_linear_model_and_keep_invariants(void **state)
{
	(void)state;
	seed_rng();
	print_message("itree differential: UIOMMU_SEED=%" PRIu64 "\n", seed);
	run_differential(64, 40000, 1);
	run_differential(400, 40000, 1);
	run_differential(4000, 100000, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_itree_empty_tree_has_no_nodes_and_no_overlaps),
		cmocka_unit_test(test_itree_ranges_touching_zero_and_u64_max_are_found),
		cmocka_unit_test(test_itree_duplicate_starts_are_all_kept_and_iterated),
		cmocka_unit_test(test_itree_in_order_iteration_is_sorted_by_start),
		cmocka_unit_test(test_itree_for_each_overlap_visits_exactly_the_overlapping_nodes),
		cmocka_unit_test(test_itree_ascending_and_descending_fill_then_drain_stay_balanced),
		cmocka_unit_test(test_itree_random_ops_match_linear_model_and_keep_invariants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
