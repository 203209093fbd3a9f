// SPDX-License-Identifier: MIT
/*
 * Map/unmap churn on the emulated IOMMU: what a vIOMMU guest that maps and
 * unmaps 4 KiB buffers costs the domain, with 1k, 100k and 1M mappings live.
 *
 * An x86 domain limited to 4 KiB pages holds n live 4 KiB mappings at random
 * distinct page-aligned IOVAs of a 64 GiB window; every mapping aliases one
 * host page (allowed, and it keeps RAM out of the picture). One "pair" unmaps
 * a random live mapping and maps a new one at a random IOVA; the map's own
 * -EEXIST answer is the duplicate check (a hit, rare, draws again). No device
 * is attached and tracking is off: this is the page-table cost, IOTLB
 * invalidation included. The figure is pairs per second, the median of
 * several windows.
 *
 * Baseline, same run: glibc tsearch/tdelete (a red-black tree, one malloc per
 * node; the anchors' row) fed the very same random sequence: tdelete the
 * victim, then tsearch the new key, whose find-or-insert doubles as the
 * duplicate check. Both sides draw from one seed and see the same live set.
 * --quick: 1k and 10k live, short windows.
 */
#include "rng.h"
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uiommu/iommu.h>

#include "bench.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define SPACE_PAGES ((64ull << 30) >> PAGE_SHIFT)
#define IOVA_BASE (1ull << 40)
#define SEED 0x1badb002ull
#define CHUNK 256
#define WINDOWS 5

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
	{ 10000, "map+unmap pairs, 10k live (quick)", "-" },
};

/* One side of the comparison: keys[] are the live page numbers. */
struct churn {
	uint64_t *keys;
	size_t n;
	struct uiommu_domain *dom;
	void *host;
	void *root; /* tsearch side */
};

typedef int (*churn_fn)(struct churn *c, uint64_t *key);

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return splitmix64(&rng_state);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ---- the domain side ---- */

/* Maps *@key at a random free page. */
static int dom_add(struct churn *c, uint64_t *key)
{
	int rc;

	do {
		*key = rnd() % SPACE_PAGES;
		rc = uiommu_domain_map(c->dom, IOVA_BASE + (*key << PAGE_SHIFT), c->host, PAGE_SIZE,
				       UIOMMU_PROT_READ | UIOMMU_PROT_WRITE);
	} while (rc == -EEXIST);
	return rc;
}

static int dom_pair(struct churn *c, uint64_t *key)
{
	uint64_t unmapped = 0;
	int rc = uiommu_domain_unmap(c->dom, IOVA_BASE + (*key << PAGE_SHIFT), PAGE_SIZE,
				     &unmapped);

	if (rc || unmapped != PAGE_SIZE)
		return rc ? rc : -ENOENT;
	return dom_add(c, key);
}

/* ---- the tsearch side ---- */

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int ts_add(struct churn *c, uint64_t *key)
{
	void *slot;

	do {
		*key = rnd() % SPACE_PAGES;
		slot = tsearch(key, &c->root, key_cmp);
		if (!slot)
			return -ENOMEM;
	} while (*(uint64_t **)slot != key);
	return 0;
}

static int ts_pair(struct churn *c, uint64_t *key)
{
	if (!tdelete(key, &c->root, key_cmp))
		return -ENOENT;
	return ts_add(c, key);
}

static void no_free(void *p)
{
	(void)p;
}

/* ---- driver ---- */

/* Pairs per second over one window of about @budget_ns; 0 on error. */
static double churn_window(struct churn *c, churn_fn pair, uint64_t budget_ns)
{
	uint64_t t0 = bench_now_ns(), pairs = 0, t;

	do {
		for (int i = 0; i < CHUNK; i++) {
			if (pair(c, &c->keys[rnd() % c->n]))
				return 0;
		}
		pairs += CHUNK;
		t = bench_now_ns() - t0;
	} while (t < budget_ns);
	return (double)pairs * 1e9 / (double)t;
}

/* Fills @n live keys with @add, then returns the median pairs/s of @pair. */
static double churn_run(struct churn *c, churn_fn add, churn_fn pair, uint64_t budget_ns)
{
	double rate[WINDOWS];

	rng_state = SEED;
	for (size_t i = 0; i < c->n; i++) {
		if (add(c, &c->keys[i]))
			return 0;
	}
	for (int w = 0; w < WINDOWS; w++) {
		rate[w] = churn_window(c, pair, budget_ns / WINDOWS);
		if (rate[w] == 0)
			return 0;
	}
	qsort(rate, WINDOWS, sizeof(rate[0]), cmp_double);
	return rate[WINDOWS / 2];
}

static double run_domain(size_t n, void *host, uint64_t budget_ns)
{
	struct uiommu_domain_cfg dcfg = { .format = UIOMMU_PT_X86, .pgsize_bitmap = PAGE_SIZE };
	struct churn c = { .n = n, .host = host };
	struct uiommu_domain_stats st;
	double rate = 0;

	c.keys = calloc(n, sizeof(*c.keys));
	if (c.keys && !uiommu_domain_create(&dcfg, &c.dom)) {
		rate = churn_run(&c, dom_add, dom_pair, budget_ns);
		uiommu_domain_get_stats(c.dom, &st);
		if (st.leaves[0] != n) {
			fprintf(stderr, "bench_map: %zu live mappings, want %zu\n",
				(size_t)st.leaves[0], n);
			rate = 0;
		}
	}
	uiommu_domain_destroy(c.dom);
	free(c.keys);
	return rate;
}

static double run_tsearch(size_t n, uint64_t budget_ns)
{
	struct churn c = { .n = n };
	double rate = 0;

	c.keys = calloc(n, sizeof(*c.keys));
	if (c.keys)
		rate = churn_run(&c, ts_add, ts_pair, budget_ns);
	tdestroy(c.root, no_free);
	free(c.keys);
	return rate;
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	const struct size_case *cases;
	size_t nr_cases;
	uint64_t budget_ns;
	void *host = aligned_alloc(PAGE_SIZE, PAGE_SIZE);

	bench_parse(argc, argv, &opts);
	cases = opts.quick ? quick_cases : full_cases;
	nr_cases = opts.quick ? sizeof(quick_cases) / sizeof(quick_cases[0]) :
				sizeof(full_cases) / sizeof(full_cases[0]);
	budget_ns = opts.quick ? 50000000ull : 1000000000ull;
	if (!host)
		return 1;
	memset(host, 0, PAGE_SIZE);
	for (size_t i = 0; i < nr_cases; i++) {
		double dom = run_domain(cases[i].n, host, budget_ns);
		double glibc = run_tsearch(cases[i].n, budget_ns);

		if (dom == 0 || glibc == 0) {
			fprintf(stderr, "bench_map: failed at n=%zu\n", cases[i].n);
			free(host);
			return 1;
		}
		bench_report(&opts, "map", cases[i].metric, dom / 1e6, "Mops/s", "glibc tsearch",
			     glibc / 1e6, cases[i].goal);
	}
	free(host);
	return 0;
}
