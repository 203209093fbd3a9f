/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the IOAS tests: user buffers (real mappings, so that
 * unmapped and read-only memory behave as they would for a kernel), domains
 * in the selftest's mock format, and a snapshot of an IOAS's whole state
 * (read through the private header) to show that a failed call changed
 * nothing.
 */
#ifndef UIOMMU_TEST_IOAS_H
#define UIOMMU_TEST_IOAS_H

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/ioas.h>
#include <uiommu/iommu.h>

#include "ioas/ioas_internal.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define PAGE ((uint64_t)uiommu__page_size())
#define MOCK_PAGE (2 * KiB)
#define MOCK_APERTURE_START 0x1000000ull
#define MOCK_APERTURE_LAST 0x7fffffffull
#define RW (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)
#define FIXED UIOMMU_IOAS_MAP_FIXED_IOVA

/* @size bytes of fresh anonymous memory aligned to @align; untouched. */
static inline void *buf_alloc(uint64_t size, uint64_t align)
{
	uint64_t total = size + align;
	char *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *b;

	assert_true(p != MAP_FAILED);
	b = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (b > p)
		munmap(p, (size_t)(b - p));
	if (p + total > b + size)
		munmap(b + size, (size_t)(p + total - (b + size)));
	return b;
}

static inline void buf_free(void *b, uint64_t size)
{
	munmap(b, size);
}

/* An address range that is certainly not mapped. */
static inline void *buf_hole(uint64_t size)
{
	void *b = buf_alloc(size, PAGE);

	buf_free(b, size);
	return b;
}

static inline struct uiommu_ioas *ioas_new(void)
{
	struct uiommu_ioas *ioas = NULL;

	assert_int_equal(uiommu_ioas_create(&ioas), 0);
	return ioas;
}

static inline struct uiommu_domain *domain_new(enum uiommu_pt_format format)
{
	struct uiommu_domain_cfg cfg = { format, 0 };
	struct uiommu_domain *d = NULL;

	assert_int_equal(uiommu_domain_create(&cfg, &d), 0);
	return d;
}

/* A mock domain attached with the selftest's aperture. */
static inline struct uiommu_domain *mock_domain_add(struct uiommu_ioas *ioas)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK);

	assert_int_equal(uiommu_ioas_domain_add(ioas, d, MOCK_APERTURE_START, MOCK_APERTURE_LAST),
			 0);
	return d;
}

static inline uint64_t domain_mapped(struct uiommu_domain *d)
{
	struct uiommu_domain_stats st;

	uiommu_domain_get_stats(d, &st);
	return st.mapped_bytes;
}

/* Every @step bytes of [iova, iova + len) translates to uva + offset in @d. */
static inline void assert_domain_maps(struct uiommu_domain *d, uint64_t iova, const void *uva,
				      uint64_t len, uint64_t step)
{
	for (uint64_t off = 0; off < len; off += step) {
		struct uiommu_pte_info info;

		assert_int_equal(uiommu_domain_lookup(d, iova + off, &info), 0);
		assert_ptr_equal(info.host, (const char *)uva + off);
	}
}

static inline void assert_domain_unmapped(struct uiommu_domain *d, uint64_t iova)
{
	struct uiommu_pte_info info;

	assert_int_equal(uiommu_domain_lookup(d, iova, &info), -ENOENT);
}

/* uiommu_pin_refs() of every CPU page of [uva, uva + len) equals @refs. */
static inline void assert_refs(const void *uva, uint64_t len, uint64_t refs)
{
	for (uint64_t off = 0; off < len; off += PAGE)
		assert_int_equal(uiommu_pin_refs((const char *)uva + off), refs);
}

static inline uint64_t ioas_alignment(struct uiommu_ioas *ioas)
{
	struct uiommu_iova_range r[8];
	uint64_t align = 0;
	size_t total;

	uiommu_ioas_iova_ranges(ioas, r, 8, &total, &align);
	return align;
}

static inline struct uiommu_ioas_stats ioas_stats(struct uiommu_ioas *ioas)
{
	struct uiommu_ioas_stats st;

	uiommu_ioas_get_stats(ioas, &st);
	return st;
}

/* ---- snapshots ---- */

#define SNAP_MAX 64

struct snap_area {
	uint64_t start, last;
	uintptr_t uva;
	uint32_t prot;
	const void *pages;
	bool pinned;
};

struct snap {
	size_t nr_areas;
	struct snap_area areas[SNAP_MAX];
	size_t nr_reserved;
	struct uiommu_iova_range reserved[SNAP_MAX];
	size_t nr_allowed;
	struct uiommu_iova_range allowed[SNAP_MAX];
	uint64_t alignment;
	size_t nr_domains;
	uint64_t domain_mapped[8];
	size_t nr_accesses, nr_pin_accesses;
	uint64_t mapped_bytes, pinned_pages;
};

static inline void snap_take(struct uiommu_ioas *ioas, struct snap *s)
{
	struct uiommu_itree_node *n;

	memset(s, 0, sizeof(*s));
	for (n = uiommu_itree_first(&ioas->areas); n; n = uiommu_itree_next(n)) {
		struct ioas_area *a = area_of(n);

		assert_true(s->nr_areas < SNAP_MAX);
		s->areas[s->nr_areas++] = (struct snap_area){ n->start, n->last, area_uva(a),
							      a->prot, a->pages, a->domain_pinned };
	}
	for (n = uiommu_itree_first(&ioas->reserved); n; n = uiommu_itree_next(n)) {
		assert_true(s->nr_reserved < SNAP_MAX);
		s->reserved[s->nr_reserved++] = (struct uiommu_iova_range){ n->start, n->last };
	}
	assert_true(ioas->allowed.nr <= SNAP_MAX);
	s->nr_allowed = ioas->allowed.nr;
	if (ioas->allowed.nr)
		memcpy(s->allowed, ioas->allowed.ranges, ioas->allowed.nr * sizeof(s->allowed[0]));
	s->alignment = ioas->iova_alignment;
	s->nr_domains = ioas->nr_domains;
	for (size_t i = 0; i < ioas->nr_domains && i < 8; i++)
		s->domain_mapped[i] = domain_mapped(ioas->domains[i]);
	s->nr_accesses = ioas->nr_accesses;
	s->nr_pin_accesses = ioas->nr_pin_accesses;
	s->mapped_bytes = ioas->mapped_bytes;
	s->pinned_pages = ioas_stats(ioas).pinned_pages;
}

static inline void assert_snap_equal(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->nr_areas, b->nr_areas);
	for (size_t i = 0; i < a->nr_areas; i++) {
		const struct snap_area *x = &a->areas[i], *y = &b->areas[i];

		assert_true(x->start == y->start && x->last == y->last && x->uva == y->uva);
		assert_true(x->prot == y->prot && x->pages == y->pages && x->pinned == y->pinned);
	}
	assert_int_equal(a->nr_reserved, b->nr_reserved);
	assert_memory_equal(a->reserved, b->reserved, a->nr_reserved * sizeof(a->reserved[0]));
	assert_int_equal(a->nr_allowed, b->nr_allowed);
	assert_memory_equal(a->allowed, b->allowed, a->nr_allowed * sizeof(a->allowed[0]));
	assert_int_equal(a->alignment, b->alignment);
	assert_int_equal(a->nr_domains, b->nr_domains);
	assert_memory_equal(a->domain_mapped, b->domain_mapped, sizeof(a->domain_mapped));
	assert_int_equal(a->nr_accesses, b->nr_accesses);
	assert_int_equal(a->nr_pin_accesses, b->nr_pin_accesses);
	assert_int_equal(a->mapped_bytes, b->mapped_bytes);
	assert_int_equal(a->pinned_pages, b->pinned_pages);
}

static inline void assert_unchanged(struct uiommu_ioas *ioas, const struct snap *before)
{
	struct snap now;

	snap_take(ioas, &now);
	assert_snap_equal(before, &now);
}

/* Skips fail-nth sweeps in builds without injection. */
#ifdef UIOMMU_DEBUG_CHECKS
#define REQUIRE_FAIL_NTH() ((void)0)
#else
#define REQUIRE_FAIL_NTH() skip()
#endif

#endif
