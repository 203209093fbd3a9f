/* SPDX-License-Identifier: MIT */
/*
 * Tests of dirty tracking in the emulated IOMMU: marking by DMA writes, the
 * hardware contract of cached translations, read-and-clear and NO_CLEAR,
 * large leaves, splits, unmap, and a randomized comparison with a model.
 */
#include "iommu_test.h"

#include "core/core_internal.h"

#define RW (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)

struct fixture {
	struct uiommu_domain *d;
	struct uiommu_device *dev;
	char *host;
	uint64_t base, size;
	struct collect c;
};

static void fixture_init(struct fixture *f, enum uiommu_pt_format fmt, uint64_t pgsizes,
			 uint64_t base, uint64_t size, uint64_t pg)
{
	struct uiommu_domain_cfg cfg = { .format = fmt, .pgsize_bitmap = pgsizes };

	memset(f, 0, sizeof(*f));
	f->base = base;
	f->size = size;
	f->host = host_alloc(size, GiB);
	assert_int_equal(uiommu_domain_create(&cfg, &f->d), 0);
	assert_int_equal(uiommu_device_create(NULL, &f->dev), 0);
	assert_int_equal(uiommu_device_attach(f->dev, f->d), 0);
	assert_int_equal(uiommu_domain_map(f->d, base, f->host, size, RW), 0);
	collect_init(&f->c, base, pg, size / pg);
}

static void fixture_fini(struct fixture *f)
{
	collect_fini(&f->c);
	uiommu_device_destroy(f->dev);
	uiommu_domain_destroy(f->d);
}

static void dma_byte(struct fixture *f, uint64_t iova)
{
	char b = (char)iova;

	assert_int_equal(uiommu_device_dma_write(f->dev, iova, &b, 1), 0);
}

static void harvest(struct fixture *f, uint32_t flags)
{
	collect_reset(&f->c);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f->d, f->base, f->size, flags,
							     collect_sink, &f->c),
			 0);
}

static void test_writes_before_tracking_are_not_reported(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 4 * KiB, 0x100000, 64 * 4096, 4096);
	dma_byte(&f, 0x100000 + 5 * 4096);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, f.base, f.size, 0, collect_sink,
							     &f.c),
			 -EINVAL);
	/* Clearing without a sink is allowed while tracking is off. */
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, f.base, f.size, 0, NULL, NULL),
			 0);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	assert_true(uiommu_domain_dirty_tracking(f.d));
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == 0);
	fixture_fini(&f);
}

static void test_read_and_clear_reports_exactly_the_written_pages(void **state)
{
	static const uint64_t pages[] = { 0, 1, 63, 64, 511, 512, 1000, 4095 };
	struct fixture f;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 4 * KiB, 4 * GiB - 8 * MiB, 4096 * 4096, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(pages); i++)
		dma_byte(&f, f.base + pages[i] * 4096 + 100);
	harvest(&f, UIOMMU_DIRTY_NO_CLEAR);
	assert_true(collect_count(&f.c) == ARRAY_SIZE(pages));
	for (unsigned int i = 0; i < ARRAY_SIZE(pages); i++)
		assert_true(f.c.dirty[pages[i]]);
	/* NO_CLEAR twice gives the same bits; then a clearing read; then nothing. */
	harvest(&f, UIOMMU_DIRTY_NO_CLEAR);
	assert_true(collect_count(&f.c) == ARRAY_SIZE(pages));
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == ARRAY_SIZE(pages));
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == 0);
	fixture_fini(&f);
}

static void test_write_after_harvest_marks_again_despite_cached_translation(void **state)
{
	struct fixture f;
	struct uiommu_device_stats ds;
	struct uiommu_domain_stats st0, st1;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 4 * KiB, 0x200000, 16 * 4096, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	dma_byte(&f, 0x200000);
	dma_byte(&f, 0x200001); /* IOTLB hit, already dirty: no marking */
	uiommu_device_get_stats(f.dev, &ds);
	assert_true(ds.iotlb_hits >= 1);
	uiommu_domain_get_stats(f.d, &st0);
	harvest(&f, 0);
	assert_true(f.c.dirty[0] && collect_count(&f.c) == 1);
	uiommu_domain_get_stats(f.d, &st1);
	/* One batched invalidation per harvest that cleared something. */
	assert_true(st1.iotlb_flushes == st0.iotlb_flushes + 1);
	dma_byte(&f, 0x200002);
	harvest(&f, 0);
	assert_true(f.c.dirty[0] && collect_count(&f.c) == 1);
	/* Nothing cleared: no invalidation. */
	uiommu_domain_get_stats(f.d, &st0);
	harvest(&f, 0);
	uiommu_domain_get_stats(f.d, &st1);
	assert_true(st1.iotlb_flushes == st0.iotlb_flushes);
	/* NO_CLEAR never invalidates. */
	dma_byte(&f, 0x200000 + 4096);
	harvest(&f, UIOMMU_DIRTY_NO_CLEAR);
	uiommu_domain_get_stats(f.d, &st1);
	assert_true(st1.iotlb_flushes == st0.iotlb_flushes);
	fixture_fini(&f);
}

static void test_enabling_tracking_discards_stale_dirty_state(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 4 * KiB, 0x200000, 16 * 4096, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	dma_byte(&f, 0x200000 + 3 * 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, false), 0);
	/* Disabled: bits stay, nothing new is marked. */
	dma_byte(&f, 0x200000 + 4 * 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == 0);
	dma_byte(&f, 0x200000 + 3 * 4096);
	harvest(&f, 0);
	assert_true(f.c.dirty[3] && collect_count(&f.c) == 1);
	fixture_fini(&f);
}

static void test_dirty_large_leaf_is_reported_whole(void **state)
{
	struct fixture f;
	struct uiommu_pte_info info;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 0, GiB, GiB + 4 * MiB, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	dma_byte(&f, GiB + 123 * 4096);          /* inside the 1 GiB leaf */
	dma_byte(&f, 2 * GiB + 2 * MiB + 4096);  /* inside a 2 MiB leaf */
	assert_int_equal(uiommu_domain_lookup(f.d, GiB, &info), 0);
	assert_true(info.leaf_size == GiB && info.dirty && info.accessed);
	harvest(&f, UIOMMU_DIRTY_NO_CLEAR);
	assert_true(collect_count(&f.c) == (GiB + 2 * MiB) / 4096);
	assert_true(f.c.dirty[(2 * GiB + 2 * MiB - GiB) / 4096]);
	assert_false(f.c.dirty[(2 * GiB - GiB) / 4096]);
	/* A range covering part of the 2 MiB leaf reports it but does not clear it. */
	collect_reset(&f.c);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, 2 * GiB + 2 * MiB, 4096, 0,
							     collect_sink, &f.c),
			 0);
	assert_true(collect_count(&f.c) == 512);
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == (GiB + 2 * MiB) / 4096);
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == 0);
	fixture_fini(&f);
}

static void test_split_of_dirty_leaf_leaves_every_piece_dirty(void **state)
{
	struct fixture f;
	uint64_t bytes;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 0, GiB, GiB, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	dma_byte(&f, GiB + 7);
	assert_int_equal(uiommu_domain_unmap(f.d, GiB + 512 * MiB + 4096, 4096, &bytes), 0);
	assert_true(bytes == 4096);
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == GiB / 4096 - 1);
	assert_false(f.c.dirty[(512 * MiB + 4096) / 4096]);
	/* The pieces are now small leaves: a write dirties one page only. */
	dma_byte(&f, GiB + 512 * MiB + 8192);
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == 1);
	fixture_fini(&f);
}

static void test_unmap_discards_dirty_state_and_remap_starts_clean(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, UIOMMU_PT_X86, 4 * KiB, 0x400000, 1024 * 4096, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	dma_byte(&f, 0x400000 + 10 * 4096);
	dma_byte(&f, 0x400000 + 600 * 4096);
	assert_int_equal(uiommu_domain_unmap(f.d, 0x400000, 512 * 4096, NULL), 0);
	assert_int_equal(uiommu_device_dma_write(f.dev, 0x400000 + 10 * 4096, "x", 1), -EFAULT);
	assert_int_equal(uiommu_domain_map(f.d, 0x400000, f.host, 512 * 4096, RW), 0);
	harvest(&f, 0);
	assert_true(collect_count(&f.c) == 1 && f.c.dirty[600]);
	fixture_fini(&f);
}

static void test_read_and_clear_validates_and_propagates_sink_errors(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, UIOMMU_PT_MOCK, 0, 0x1000000, 256 * 2048, 2048);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, f.base, f.size, 2, NULL, NULL),
			 -EINVAL);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, f.base + 1024, 2048, 0, NULL,
							     NULL),
			 -EINVAL);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, f.base, 0, 0, NULL, NULL),
			 -EOVERFLOW);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, UINT64_MAX - 2047, 4096, 0, NULL,
							     NULL),
			 -EOVERFLOW);
	dma_byte(&f, f.base + 2048 * 3);
	f.c.fail_with = -EIO;
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f.d, f.base, f.size, 0, collect_sink,
							     &f.c),
			 -EIO);
	assert_true(f.c.dirty[3]);
	fixture_fini(&f);
}

/* ---- randomized: writes and sub-range harvests against a per-page model ---- */

static void random_round(struct fixture *f, uint8_t *model, uint64_t npages, uint64_t *seed)
{
	uint64_t first = rnd(seed) % npages, n = 1 + rnd(seed) % npages;
	uint32_t flags = rnd(seed) % 4 ? 0 : UIOMMU_DIRTY_NO_CLEAR;

	for (int w = (int)(rnd(seed) % 64); w > 0; w--) {
		uint64_t p = rnd(seed) % npages;
		uint64_t len = 1 + rnd(seed) % 3 * 4096;

		if ((p + 1) * 4096 + len > f->size)
			continue;
		static const unsigned char src[3 * 4096];

		assert_int_equal(uiommu_device_dma_write(f->dev, f->base + p * 4096 + 4095, src,
							 len),
				 0);
		for (uint64_t q = p; q * 4096 < p * 4096 + 4095 + len; q++)
			model[q] = 1;
	}
	if (first + n > npages)
		n = npages - first;
	collect_reset(&f->c);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(f->d, f->base + first * 4096, n * 4096,
							     flags, collect_sink, &f->c),
			 0);
	for (uint64_t q = 0; q < npages; q++) {
		bool in = q >= first && q < first + n;

		assert_int_equal(f->c.dirty[q], in ? model[q] : 0);
		if (in && !flags)
			model[q] = 0;
	}
}

static void test_random_writes_and_harvests_match_model(void **state)
{
	uint64_t npages = 8192, seed = test_seed("random_writes_and_harvests");
	uint8_t *model = calloc(npages, 1);
	struct fixture f;

	(void)state;
	assert_non_null(model);
	fixture_init(&f, UIOMMU_PT_X86, 4 * KiB, GiB - 16 * MiB, npages * 4096, 4096);
	assert_int_equal(uiommu_domain_set_dirty_tracking(f.d, true), 0);
	for (int round = 0; round < 400; round++)
		random_round(&f, model, npages, &seed);
	free(model);
	fixture_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_before_tracking_are_not_reported),
		cmocka_unit_test(test_read_and_clear_reports_exactly_the_written_pages),
		cmocka_unit_test(test_write_after_harvest_marks_again_despite_cached_translation),
		cmocka_unit_test(test_enabling_tracking_discards_stale_dirty_state),
		cmocka_unit_test(test_dirty_large_leaf_is_reported_whole),
		cmocka_unit_test(test_split_of_dirty_leaf_leaves_every_piece_dirty),
		cmocka_unit_test(test_unmap_discards_dirty_state_and_remap_starts_clean),
		cmocka_unit_test(test_read_and_clear_validates_and_propagates_sink_errors),
		cmocka_unit_test(test_random_writes_and_harvests_match_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
