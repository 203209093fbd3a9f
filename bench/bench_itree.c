/* SPDX-License-Identifier: MIT */
/*
 * Interval tree churn: what an IOAS map/unmap does to its IOVA tree.
 *
 * The tree holds n live, non-overlapping 4 KiB ranges at random 4 KiB slots of
 * a 256 TiB space. One "pair" removes a random live node (unmap), draws a new
 * random slot, checks it for overlap (the map-time -EEXIST check; a hit, which
 * is rare, draws again) and inserts it (map). The figure is pairs per second
 * with 1k, 100k and 1M nodes live.
 *
 * Baseline: glibc tsearch/tdelete (also a red-black tree) keyed by start, fed
 * the very same random sequence in the same run: tdelete the victim, then
 * tsearch the new key, whose find-or-insert doubles as the duplicate check.
 * Both sides draw from one seed and see the same live set, so they collide
 * and redraw at the same points. glibc allocates a node per tsearch; the
 * intrusive tree allocates nothing, which is part of what is measured.
 */
#include "rng.h"
#include <inttypes.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>

#include <uiommu/itree.h>

#include "bench.h"

#define SLOT_SHIFT 12
#define SPACE_SLOTS (1ull << 36)
#define SEED 0x1badb002ull
#define CHUNK 1024

struct size_case {
	size_t n;
	const char *metric;
	const char *goal;
};

static const struct size_case full_cases[] = {
	{ 1000, "map+unmap pairs, 1k live", ">= 2M/s at 1k" },
	{ 100000, "map+unmap pairs, 100k live", ">= 500k/s at 100k" },
	{ 1000000, "map+unmap pairs, 1M live", ">= 100k/s at 1M" },
};

static const struct size_case quick_cases[] = {
	{ 1000, "map+unmap pairs, 1k live", ">= 2M/s at 1k" },
	{ 10000, "map+unmap pairs, 10k live (quick)", "none at 10k" },
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return splitmix64(&rng_state);
}

static uint64_t random_start(void)
{
	return (rnd() % SPACE_SLOTS) << SLOT_SHIFT;
}

/* Gives @node a random start that overlaps no live node. */
static void itree_draw(struct uiommu_itree *tree, struct uiommu_itree_node *node)
{
	do {
		node->start = random_start();
		node->last = node->start + (1u << SLOT_SHIFT) - 1;
	} while (uiommu_itree_iter_first(tree, node->start, node->last));
}

static uint64_t itree_pairs(struct uiommu_itree *tree, struct uiommu_itree_node *pool, size_t n,
			    uint64_t budget_ns)
{
	uint64_t t0 = bench_now_ns(), pairs = 0;

	while (bench_now_ns() - t0 < budget_ns) {
		for (int i = 0; i < CHUNK; i++) {
			struct uiommu_itree_node *victim = &pool[rnd() % n];

			uiommu_itree_remove(tree, victim);
			itree_draw(tree, victim);
			uiommu_itree_insert(tree, victim);
		}
		pairs += CHUNK;
	}
	return pairs;
}

/* Pairs per second through the interval tree, with @n nodes live. */
static double run_itree(size_t n, uint64_t budget_ns)
{
	struct uiommu_itree_node *pool = calloc(n, sizeof(*pool));
	struct uiommu_itree tree;
	uint64_t t0, pairs;
	double secs;

	if (!pool)
		return 0;
	rng_state = SEED;
	uiommu_itree_init(&tree);
	for (size_t i = 0; i < n; i++) {
		itree_draw(&tree, &pool[i]);
		uiommu_itree_insert(&tree, &pool[i]);
	}
	t0 = bench_now_ns();
	pairs = itree_pairs(&tree, pool, n, budget_ns);
	secs = (double)(bench_now_ns() - t0) / 1e9;
	if (tree.count != n)
		fprintf(stderr, "bench_itree: tree lost nodes\n");
	free(pool);
	return (double)pairs / secs;
}

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Gives *@key a random start not yet in the tree, and inserts it. */
static int tsearch_draw(void **root, uint64_t *key)
{
	void *slot;

	do {
		*key = random_start();
		slot = tsearch(key, root, key_cmp);
		if (!slot)
			return -1;
	} while (*(uint64_t **)slot != key);
	return 0;
}

static void no_free(void *p)
{
	(void)p;
}

static uint64_t tsearch_pairs(void **root, uint64_t *keys, size_t n, uint64_t budget_ns)
{
	uint64_t t0 = bench_now_ns(), pairs = 0;

	while (bench_now_ns() - t0 < budget_ns) {
		for (int i = 0; i < CHUNK; i++) {
			uint64_t *victim = &keys[rnd() % n];

			tdelete(victim, root, key_cmp);
			if (tsearch_draw(root, victim))
				return 0;
		}
		pairs += CHUNK;
	}
	return pairs;
}

/* The same churn through glibc tsearch/tdelete. */
static double run_tsearch(size_t n, uint64_t budget_ns)
{
	uint64_t *keys = calloc(n, sizeof(*keys));
	void *root = NULL;
	uint64_t t0, pairs = 0;
	double secs;

	if (!keys)
		return 0;
	rng_state = SEED;
	for (size_t i = 0; i < n; i++) {
		if (tsearch_draw(&root, &keys[i]))
			goto out;
	}
	t0 = bench_now_ns();
	pairs = tsearch_pairs(&root, keys, n, budget_ns);
	secs = (double)(bench_now_ns() - t0) / 1e9;
out:
	tdestroy(root, no_free);
	free(keys);
	return pairs ? (double)pairs / secs : 0;
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	const struct size_case *cases;
	size_t nr_cases;
	uint64_t budget_ns;

	bench_parse(argc, argv, &opts);
	cases = opts.quick ? quick_cases : full_cases;
	nr_cases = opts.quick ? sizeof(quick_cases) / sizeof(quick_cases[0]) :
				sizeof(full_cases) / sizeof(full_cases[0]);
	budget_ns = opts.quick ? 50000000ull : 500000000ull;
	for (size_t i = 0; i < nr_cases; i++) {
		double tree = run_itree(cases[i].n, budget_ns);
		double glibc = run_tsearch(cases[i].n, budget_ns);

		if (tree == 0 || glibc == 0) {
			fprintf(stderr, "bench_itree: out of memory at n=%zu\n", cases[i].n);
			return 1;
		}
		bench_report(&opts, "itree", cases[i].metric, tree / 1e6, "Mops/s",
			     "glibc tsearch", glibc / 1e6, cases[i].goal);
	}
	return 0;
}
