/* SPDX-License-Identifier: MIT */
/*
 * Tests of the emulated IO page table: validation, leaf choice, overlap,
 * unmap with splits, error paths under fail-nth, and a randomized comparison
 * with a flat per-page model.
 */
#include "iommu_test.h"

#include "core/core_internal.h"

static struct uiommu_domain *domain_new(enum uiommu_pt_format fmt, uint64_t pgsizes)
{
	struct uiommu_domain_cfg cfg = { .format = fmt, .pgsize_bitmap = pgsizes };
	struct uiommu_domain *d;

	assert_int_equal(uiommu_domain_create(&cfg, &d), 0);
	return d;
}

static uint64_t leaf_size_at(struct uiommu_domain *d, uint64_t iova)
{
	struct uiommu_pte_info info;

	assert_int_equal(uiommu_domain_lookup(d, iova, &info), 0);
	return info.leaf_size;
}

static void assert_unmapped(struct uiommu_domain *d, uint64_t iova)
{
	struct uiommu_pte_info info;

	assert_int_equal(uiommu_domain_lookup(d, iova, &info), -ENOENT);
}

static void test_domain_create_rejects_unknown_format_and_page_sizes(void **state)
{
	struct uiommu_domain_cfg cfg = { .format = 7 };
	struct uiommu_domain *d = NULL;

	(void)state;
	assert_int_equal(uiommu_domain_create(&cfg, &d), -EINVAL);
	cfg.format = UIOMMU_PT_X86;
	cfg.pgsize_bitmap = 1ull << 16;
	assert_int_equal(uiommu_domain_create(&cfg, &d), -EINVAL);
	cfg.pgsize_bitmap = 1ull << 21; /* lacks the smallest page */
	assert_int_equal(uiommu_domain_create(&cfg, &d), -EINVAL);
	cfg.format = UIOMMU_PT_MOCK;
	cfg.pgsize_bitmap = 1ull << 12;
	assert_int_equal(uiommu_domain_create(&cfg, &d), -EINVAL);
	assert_null(d);
	cfg.pgsize_bitmap = 0;
	assert_int_equal(uiommu_domain_create(&cfg, &d), 0);
	assert_true(uiommu_domain_pgsize_bitmap(d) == ((1ull << 11) | (1ull << 20)));
	assert_true(uiommu_domain_max_iova(d) == (1ull << 48) - 1);
	uiommu_domain_destroy(d);
	uiommu_domain_destroy(NULL);
}

static void test_map_validates_alignment_prot_and_range(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
	char *host = host_alloc(64 * KiB, 4 * KiB);
	struct uiommu_domain_stats st;

	(void)state;
	assert_int_equal(uiommu_domain_map(d, 0x1000, host, 0x1000, 0), -EINVAL);
	assert_int_equal(uiommu_domain_map(d, 0x1000, host, 0x1000, 4), -EINVAL);
	assert_int_equal(uiommu_domain_map(d, 0x1800, host, 0x1000, UIOMMU_PROT_READ), -EINVAL);
	assert_int_equal(uiommu_domain_map(d, 0x1000, host + 8, 0x1000, UIOMMU_PROT_READ),
			 -EINVAL);
	assert_int_equal(uiommu_domain_map(d, 0x1000, host, 0x800, UIOMMU_PROT_READ), -EINVAL);
	assert_int_equal(uiommu_domain_map(d, 0x1000, host, 0, UIOMMU_PROT_READ), -EOVERFLOW);
	assert_int_equal(uiommu_domain_map(d, UINT64_MAX - 0xfff, host, 0x2000, UIOMMU_PROT_READ),
			 -EOVERFLOW);
	assert_int_equal(uiommu_domain_map(d, 1ull << 48, host, 0x1000, UIOMMU_PROT_READ),
			 -EINVAL);
	assert_int_equal(uiommu_domain_map(d, (1ull << 48) - 0x1000, host, 0x2000,
					   UIOMMU_PROT_READ),
			 -EINVAL);
	uiommu_domain_get_stats(d, &st);
	assert_true(st.mapped_bytes == 0);
	assert_int_equal(uiommu_domain_map(d, (1ull << 48) - 0x1000, host, 0x1000,
					   UIOMMU_PROT_READ),
			 0);
	assert_true(leaf_size_at(d, (1ull << 48) - 1) == 4 * KiB);
	uiommu_domain_destroy(d);
}

static void test_map_uses_largest_leaf_alignment_allows(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
	char *host = host_alloc(4 * GiB, GiB);
	struct uiommu_pte_info info;
	struct uiommu_domain_stats st;

	(void)state;
	/* 1 GiB + 2 MiB + 4 KiB, all aligned: one leaf of each size. */
	assert_int_equal(uiommu_domain_map(d, GiB, host, GiB + 2 * MiB + 4 * KiB,
					   UIOMMU_PROT_READ | UIOMMU_PROT_WRITE),
			 0);
	assert_true(leaf_size_at(d, GiB) == GiB);
	assert_true(leaf_size_at(d, 2 * GiB) == 2 * MiB);
	assert_true(leaf_size_at(d, 2 * GiB + 2 * MiB) == 4 * KiB);
	assert_int_equal(uiommu_domain_lookup(d, GiB + 12345 * 4096 + 7, &info), 0);
	assert_ptr_equal(info.host, host + 12345 * 4096 + 7);
	assert_int_equal(info.prot, UIOMMU_PROT_READ | UIOMMU_PROT_WRITE);
	uiommu_domain_get_stats(d, &st);
	assert_true(st.leaves[0] == 1 && st.leaves[1] == 1 && st.leaves[2] == 1);
	assert_true(st.mapped_bytes == GiB + 2 * MiB + 4 * KiB);
	/* Host only 4 KiB aligned: small leaves although the IOVA is 1 GiB aligned. */
	assert_int_equal(uiommu_domain_map(d, 8 * GiB, host + 4096, 4 * MiB, UIOMMU_PROT_READ), 0);
	assert_true(leaf_size_at(d, 8 * GiB) == 4 * KiB);
	assert_true(leaf_size_at(d, 8 * GiB + 4 * MiB - 1) == 4 * KiB);
	uiommu_domain_destroy(d);

	/* A domain limited to 4 KiB never uses a large leaf. */
	d = domain_new(UIOMMU_PT_X86, 4 * KiB);
	assert_int_equal(uiommu_domain_map(d, GiB, host, 4 * MiB, UIOMMU_PROT_READ), 0);
	assert_true(leaf_size_at(d, GiB + 2 * MiB) == 4 * KiB);
	uiommu_domain_destroy(d);

	/* The mock format: 2 KiB pages and 1 MiB large pages. */
	d = domain_new(UIOMMU_PT_MOCK, 0);
	assert_int_equal(uiommu_domain_map(d, 0x1000000, host, MiB + 2 * KiB, UIOMMU_PROT_READ),
			 0);
	assert_true(leaf_size_at(d, 0x1000000) == MiB);
	assert_true(leaf_size_at(d, 0x1000000 + MiB) == 2 * KiB);
	assert_int_equal(uiommu_domain_map(d, 0x3000800, host + 2048, 2048, UIOMMU_PROT_READ), 0);
	assert_true(leaf_size_at(d, 0x3000800) == 2 * KiB);
	uiommu_domain_destroy(d);
}

static void test_map_overlapping_returns_eexist_and_changes_nothing(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
	char *host = host_alloc(8 * MiB, 2 * MiB);
	struct uiommu_domain_stats before, after;

	(void)state;
	assert_int_equal(uiommu_domain_map(d, 2 * MiB, host, 2 * MiB, UIOMMU_PROT_READ), 0);
	uiommu_domain_get_stats(d, &before);
	assert_int_equal(uiommu_domain_map(d, 0, host, 4 * MiB, UIOMMU_PROT_READ), -EEXIST);
	assert_int_equal(uiommu_domain_map(d, 4 * MiB - 4096, host, 8192, UIOMMU_PROT_READ),
			 -EEXIST);
	assert_int_equal(uiommu_domain_map(d, 2 * MiB, host, 4096, UIOMMU_PROT_WRITE), -EEXIST);
	uiommu_domain_get_stats(d, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_unmapped(d, 0);
	assert_unmapped(d, 4 * MiB);
	/* Adjacent on both sides is fine. */
	assert_int_equal(uiommu_domain_map(d, 2 * MiB - 4096, host, 4096, UIOMMU_PROT_READ), 0);
	assert_int_equal(uiommu_domain_map(d, 4 * MiB, host, 4096, UIOMMU_PROT_READ), 0);
	uiommu_domain_destroy(d);
}

static void test_unmap_returns_bytes_and_skips_holes(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
	char *host = host_alloc(8 * MiB, 2 * MiB);
	uint64_t bytes = 1;

	(void)state;
	assert_int_equal(uiommu_domain_unmap(d, 0, 1ull << 48, &bytes), 0);
	assert_true(bytes == 0);
	assert_int_equal(uiommu_domain_map(d, 0x10000, host, 0x3000, UIOMMU_PROT_READ), 0);
	assert_int_equal(uiommu_domain_map(d, 0x20000, host, 0x1000, UIOMMU_PROT_READ), 0);
	assert_int_equal(uiommu_domain_unmap(d, 0, 0x100000, &bytes), 0);
	assert_true(bytes == 0x4000);
	assert_unmapped(d, 0x10000);
	assert_unmapped(d, 0x20000);
	assert_int_equal(uiommu_domain_unmap(d, 0, 0x100000, NULL), 0);
	uiommu_domain_destroy(d);
}

static void test_unmap_validates_alignment_and_overflow(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK, 0);
	uint64_t bytes = 99;

	(void)state;
	assert_int_equal(uiommu_domain_unmap(d, 0x400, 0x800, &bytes), -EINVAL);
	assert_int_equal(uiommu_domain_unmap(d, 0x800, 0x400, &bytes), -EINVAL);
	assert_int_equal(uiommu_domain_unmap(d, 0x800, 0, &bytes), -EOVERFLOW);
	assert_int_equal(uiommu_domain_unmap(d, UINT64_MAX - 0x7ff, 0x1000, &bytes), -EOVERFLOW);
	assert_true(bytes == 99);
	assert_int_equal(uiommu_domain_unmap(d, 1ull << 50, 0x800, &bytes), 0);
	assert_true(bytes == 0);
	assert_int_equal(uiommu_domain_unmap(d, UINT64_MAX - 0x7ff, 0x800, &bytes), 0);
	uiommu_domain_destroy(d);
}

static void test_unmap_part_of_large_leaf_splits_and_keeps_rest(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
	char *host = host_alloc(2 * GiB, GiB);
	uint64_t hole = GiB + 300 * MiB + 5 * 4096, bytes;
	struct uiommu_pte_info info;
	struct uiommu_domain_stats st;

	(void)state;
	assert_int_equal(uiommu_domain_map(d, GiB, host, GiB, UIOMMU_PROT_READ), 0);
	assert_int_equal(uiommu_domain_unmap(d, hole, 2 * 4096, &bytes), 0);
	assert_true(bytes == 2 * 4096);
	assert_unmapped(d, hole);
	assert_unmapped(d, hole + 4096);
	assert_true(leaf_size_at(d, hole - 4096) == 4 * KiB);
	assert_true(leaf_size_at(d, hole + 2 * 4096) == 4 * KiB);
	assert_true(leaf_size_at(d, GiB) == 2 * MiB);
	assert_true(leaf_size_at(d, 2 * GiB - 1) == 2 * MiB);
	assert_int_equal(uiommu_domain_lookup(d, hole + 2 * 4096 + 17, &info), 0);
	assert_ptr_equal(info.host, host + (hole - GiB) + 2 * 4096 + 17);
	uiommu_domain_get_stats(d, &st);
	assert_true(st.mapped_bytes == GiB - 2 * 4096);
	assert_true(st.leaves[0] == 510 && st.leaves[1] == 511 && st.leaves[2] == 0);
	/* Unmapping the rest frees every table under the old leaf. */
	assert_int_equal(uiommu_domain_unmap(d, GiB, GiB, &bytes), 0);
	assert_true(bytes == GiB - 2 * 4096);
	uiommu_domain_get_stats(d, &st);
	assert_true(st.mapped_bytes == 0);
	assert_true(st.table_nodes == 2); /* the root and the level-2 node */
	assert_int_equal(uiommu_domain_unmap(d, 0, 1ull << 48, NULL), 0);
	uiommu_domain_get_stats(d, &st);
	assert_true(st.table_nodes == 1);
	uiommu_domain_destroy(d);
}

static void test_large_leaf_over_a_table_emptied_by_unmap_replaces_it(void **state)
{
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
	char *host = host_alloc(2 * GiB, GiB);
	struct uiommu_domain_stats st0, st1, st2;

	(void)state;
	uiommu_domain_get_stats(d, &st0);
	assert_int_equal(uiommu_domain_map(d, GiB + 4096, host, 4096, UIOMMU_PROT_READ), 0);
	uiommu_domain_get_stats(d, &st1);
	assert_true(st1.table_nodes == st0.table_nodes + 3);
	/* The emptied level-0 table goes; the level-1 one stays (range not covering it). */
	assert_int_equal(uiommu_domain_unmap(d, GiB + 4096, 4096, NULL), 0);
	uiommu_domain_get_stats(d, &st2);
	assert_true(st2.table_nodes == st1.table_nodes - 1);
	/* A 1 GiB leaf over the empty level-1 table replaces and frees it. */
	assert_int_equal(uiommu_domain_map(d, GiB, host, GiB, UIOMMU_PROT_READ), 0);
	assert_true(leaf_size_at(d, GiB + 4096) == GiB);
	uiommu_domain_get_stats(d, &st2);
	assert_true(st2.table_nodes == st1.table_nodes - 2);
	/* A new level-0 table comes from the spares, clean. */
	assert_int_equal(uiommu_domain_map(d, 4 * GiB + 8192, host, 4096, UIOMMU_PROT_READ), 0);
	assert_unmapped(d, 4 * GiB);
	assert_true(leaf_size_at(d, 4 * GiB + 8192) == 4096);
	uiommu_domain_destroy(d);
}

static void test_map_failure_at_every_allocation_changes_nothing(void **state)
{
	char *host = host_alloc(64 * MiB, 2 * MiB);
	int rc = -ENOMEM;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	for (unsigned long n = 1; rc == -ENOMEM; n++) {
		struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 4 * KiB);
		struct uiommu_domain_stats st;

		uiommu__fail_nth_set(n);
		/* Crosses a 1 GiB boundary: needs level-2, level-1 and level-0 nodes. */
		rc = uiommu_domain_map(d, GiB - 4 * MiB, host, 8 * MiB, UIOMMU_PROT_READ);
		uiommu__fail_nth_set(0);
		uiommu_domain_get_stats(d, &st);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_true(st.mapped_bytes == 0);
			assert_unmapped(d, GiB - 4 * MiB);
			assert_unmapped(d, GiB);
		} else {
			assert_true(st.mapped_bytes == 8 * MiB);
		}
		uiommu_domain_destroy(d);
	}
}

static void test_unmap_split_failure_at_every_allocation_changes_nothing(void **state)
{
	char *host = host_alloc(2 * GiB, GiB);
	int rc = -ENOMEM;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	for (unsigned long n = 1; rc == -ENOMEM; n++) {
		struct uiommu_domain *d = domain_new(UIOMMU_PT_X86, 0);
		uint64_t bytes = 0;

		assert_int_equal(uiommu_domain_map(d, GiB, host, GiB, UIOMMU_PROT_READ), 0);
		uiommu__fail_nth_set(n);
		rc = uiommu_domain_unmap(d, GiB + 4096, 4096, &bytes);
		uiommu__fail_nth_set(0);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_true(leaf_size_at(d, GiB + 4096) == GiB);
		} else {
			assert_true(bytes == 4096);
			assert_unmapped(d, GiB + 4096);
			assert_true(leaf_size_at(d, GiB) == 4 * KiB);
		}
		uiommu_domain_destroy(d);
	}
}

/* ---- randomized comparison with a flat per-page model ---- */

struct flat_model {
	uint64_t base, pg, npages;
	uintptr_t *host; /* 0: unmapped */
};

static uint64_t model_mapped_in(const struct flat_model *m, uint64_t first, uint64_t n)
{
	uint64_t count = 0;

	for (uint64_t i = first; i < first + n; i++)
		count += m->host[i] != 0;
	return count;
}

static void model_check_page(struct uiommu_domain *d, const struct flat_model *m, uint64_t i)
{
	struct uiommu_pte_info info;
	int rc = uiommu_domain_lookup(d, m->base + i * m->pg, &info);

	if (!m->host[i]) {
		assert_int_equal(rc, -ENOENT);
		return;
	}
	assert_int_equal(rc, 0);
	assert_true((uintptr_t)info.host == m->host[i]);
}

static void random_op(struct uiommu_domain *d, struct flat_model *m, char *host, uint64_t *seed)
{
	uint64_t first = rnd(seed) % m->npages;
	uint64_t n = 1 + rnd(seed) % (rnd(seed) % 4 ? 16 : 2048);
	uint64_t busy, bytes;
	uintptr_t h;

	if (first + n > m->npages)
		n = m->npages - first;
	busy = model_mapped_in(m, first, n);
	if (rnd(seed) % 2) {
		/* The host offset follows the IOVA so that large leaves happen. */
		h = (uintptr_t)host + first * m->pg + (rnd(seed) % 8 ? 0 : m->pg);
		assert_int_equal(uiommu_domain_map(d, m->base + first * m->pg, (void *)h, n * m->pg,
						   UIOMMU_PROT_READ),
				 busy ? -EEXIST : 0);
		for (uint64_t i = 0; !busy && i < n; i++)
			m->host[first + i] = h + i * m->pg;
	} else {
		assert_int_equal(uiommu_domain_unmap(d, m->base + first * m->pg, n * m->pg, &bytes),
				 0);
		assert_true(bytes == busy * m->pg);
		for (uint64_t i = 0; i < n; i++)
			m->host[first + i] = 0;
	}
}

static void random_vs_model(enum uiommu_pt_format fmt, uint64_t pg, uint64_t base)
{
	struct flat_model m = { .base = base, .pg = pg, .npages = 16384 };
	char *host = host_alloc(m.npages * pg + pg, GiB);
	struct uiommu_domain *d = domain_new(fmt, 0);
	uint64_t seed = test_seed("random_vs_model");
	struct uiommu_domain_stats st;

	m.host = calloc(m.npages, sizeof(*m.host));
	assert_non_null(m.host);
	for (int op = 0; op < 3000; op++) {
		random_op(d, &m, host, &seed);
		for (int k = 0; k < 8; k++)
			model_check_page(d, &m, rnd(&seed) % m.npages);
	}
	for (uint64_t i = 0; i < m.npages; i++)
		model_check_page(d, &m, i);
	uiommu_domain_get_stats(d, &st);
	assert_true(st.mapped_bytes == model_mapped_in(&m, 0, m.npages) * pg);
	free(m.host);
	uiommu_domain_destroy(d);
}

static void test_random_map_unmap_matches_flat_model_x86(void **state)
{
	(void)state;
	random_vs_model(UIOMMU_PT_X86, 4 * KiB, GiB - 32 * MiB);
}

static void test_random_map_unmap_matches_flat_model_mock(void **state)
{
	(void)state;
	random_vs_model(UIOMMU_PT_MOCK, 2 * KiB, 0x1000000 - 16 * MiB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_create_rejects_unknown_format_and_page_sizes),
		cmocka_unit_test(test_map_validates_alignment_prot_and_range),
		cmocka_unit_test(test_map_uses_largest_leaf_alignment_allows),
		cmocka_unit_test(test_map_overlapping_returns_eexist_and_changes_nothing),
		cmocka_unit_test(test_unmap_returns_bytes_and_skips_holes),
		cmocka_unit_test(test_unmap_validates_alignment_and_overflow),
		cmocka_unit_test(test_unmap_part_of_large_leaf_splits_and_keeps_rest),
		cmocka_unit_test(test_large_leaf_over_a_table_emptied_by_unmap_replaces_it),
		cmocka_unit_test(test_map_failure_at_every_allocation_changes_nothing),
		cmocka_unit_test(test_unmap_split_failure_at_every_allocation_changes_nothing),
		cmocka_unit_test(test_random_map_unmap_matches_flat_model_x86),
		cmocka_unit_test(test_random_map_unmap_matches_flat_model_mock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
