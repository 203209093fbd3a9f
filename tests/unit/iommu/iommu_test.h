/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the iommu tests: host buffers, seeds, a dirty collector.
 */
#ifndef UIOMMU_TEST_IOMMU_H
#define UIOMMU_TEST_IOMMU_H

#include "rng.h"
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <cmocka.h>

#include <uiommu/iommu.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Host memory aligned to @align, reserved without being touched. */
static inline void *host_alloc(uint64_t size, uint64_t align)
{
	void *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(p != MAP_FAILED);
	return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

static inline void host_free(void *p, uint64_t size, uint64_t align)
{
	(void)p;
	(void)size;
	(void)align; /* Test processes are short-lived; mappings go with them. */
}

/* Seed from UIOMMU_SEED or the clock; printed so that a failure can be replayed. */
static inline uint64_t test_seed(const char *what)
{
	uint64_t seed = seed_from_env();

	printf("# %s: UIOMMU_SEED=%llu\n", what, (unsigned long long)seed);
	return seed;
}

static inline uint64_t rnd(uint64_t *s)
{
	return splitmix64(s);
}

/* Collects dirty runs as a per-page flag array over [base, base + npages * pg). */
struct collect {
	uint64_t base;
	uint64_t pg;
	uint64_t npages;
	uint8_t *dirty;
	uint64_t runs;
	int fail_with;
};

static inline int collect_sink(void *opaque, const struct uiommu_dirty_run *run)
{
	struct collect *c = opaque;

	c->runs++;
	for (uint64_t j = 0; j < run->nbits; j++) {
		uint64_t first, last;

		if (!(run->bits[j / 64] & (1ull << (j % 64))))
			continue;
		first = run->iova + (j << run->pgshift);
		last = first + (1ull << run->pgshift) - 1;
		for (uint64_t a = first; a <= last; a += c->pg) {
			if (a >= c->base && a - c->base < c->npages * c->pg)
				c->dirty[(a - c->base) / c->pg] = 1;
			if (a + c->pg < a)
				break;
		}
	}
	return c->fail_with;
}

static inline void collect_init(struct collect *c, uint64_t base, uint64_t pg, uint64_t npages)
{
	memset(c, 0, sizeof(*c));
	c->base = base;
	c->pg = pg;
	c->npages = npages;
	c->dirty = calloc(npages, 1);
	assert_non_null(c->dirty);
}

static inline void collect_reset(struct collect *c)
{
	memset(c->dirty, 0, c->npages);
	c->runs = 0;
}

static inline uint64_t collect_count(const struct collect *c)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < c->npages; i++)
		n += c->dirty[i];
	return n;
}

static inline void collect_fini(struct collect *c)
{
	free(c->dirty);
}

#endif
