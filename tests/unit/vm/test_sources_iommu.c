/* SPDX-License-Identifier: MIT */
/*
 * The "iommu" dirty source against a dirty-capable uiommu_hwdev doing DMA
 * writes: guest memory (NP pages) mapped at IOVA = GPA 0 in an IOAS, a HWPT
 * allocated with DIRTY_TRACKING, the device attached, all through the
 * iommufd front end as a VMM does it. In each interval the device writes
 * random byte ranges (inside a page or across several); the collect must
 * report exactly the pages they touched, and count them. Also: a partial
 * mapping, a HWPT that cannot track, the reference the source holds on the
 * context, a round with the "vmm" log, and a DMA thread racing collects.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "../uapi/uapi_test.h"
#include "seeded.h"

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/vm_sources.h>

#define PG 4096ull
#define NP 4096ull /* 16 MiB */
#define WORDS (NP / 64)

struct fixture {
	struct env e;
	uint32_t hwpt;
	struct uiommu_dirty_source *src;
};

static void fixture_init(struct fixture *f, uint64_t mapped_pages)
{
	env_init(&f->e, 4 * KiB, NP * PG);
	assert_int_equal(hwpt_alloc(f->e.ctx, f->e.ddev_id, f->e.ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &f->hwpt),
			 0);
	attach(&f->e, f->e.ddev_id, f->hwpt);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host, mapped_pages * PG, 0);
	f->src = NULL;
	assert_int_equal(uiommu_iommu_source_create(f->e.ctx, f->hwpt, NP, &f->src), 0);
	assert_string_equal(f->src->name, "iommu");
	assert_true(f->src->npages == NP);
}

static void fixture_fini(struct fixture *f)
{
	uiommu_dirty_source_destroy(f->src);
	env_fini(&f->e);
}

static void dma(struct fixture *f, uint64_t iova, uint64_t len)
{
	static uint8_t buf[64 * 1024];

	assert_true(len <= sizeof(buf));
	assert_int_equal(uiommu_device_dma_write(uiommu_hwdev_dma(f->e.ddev), iova, buf, len), 0);
}

/* Random writes inside [0, mapped) into @want (pages touched). */
static void dma_random(struct fixture *f, uint64_t nwrites, uint64_t mapped, uint64_t *want)
{
	for (uint64_t i = 0; i < nwrites; i++) {
		uint64_t iova = rnd_below(mapped * PG);
		uint64_t len = 1 + rnd_below(rnd_below(4) ? 1500 : 40000);

		if (iova + len > mapped * PG)
			len = mapped * PG - iova;
		dma(f, iova, len);
		uiommu_bitmap_set_range(want, iova / PG, (iova + len - 1) / PG);
	}
}

static void check_exact(const uint64_t *want, const uint64_t *got, uint64_t reported)
{
	for (uint64_t p = 0; p < NP; p++)
		if (uiommu_bitmap_test(want, p) != uiommu_bitmap_test(got, p))
			fail_msg("UIOMMU_SEED=%" PRIu64 " op %zu: page %" PRIu64
				 ": written %d, reported %d",
				 seed, op_index, p, uiommu_bitmap_test(want, p),
				 uiommu_bitmap_test(got, p));
	assert_int_equal(reported, uiommu_bitmap_count_range(want, 0, NP - 1));
}

static void interval(struct fixture *f, uint64_t nwrites, uint64_t mapped)
{
	uint64_t want[WORDS] = { 0 }, got[WORDS] = { 0 }, n = 0;

	dma_random(f, nwrites, mapped, want);
	assert_int_equal(uiommu_dirty_source_collect(f->src, got, &n), 0);
	check_exact(want, got, n);
	op_index++;
}

static void test_iommu_source_reports_exactly_the_pages_the_device_wrote(void **state)
{
	static const uint64_t writes[] = { 1, 0, 10, 200, 3, 2000, 0, 50 };
	struct fixture f;

	(void)state;
	fixture_init(&f, NP);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	for (size_t i = 0; i < ARRAY_SIZE(writes); i++)
		interval(&f, writes[i], NP);
	fixture_fini(&f);
}

static void test_iommu_source_reports_nothing_written_before_start(void **state)
{
	uint64_t got[WORDS] = { 0 }, n = 0;
	struct fixture f;

	(void)state;
	fixture_init(&f, NP);
	dma(&f, 5 * PG, 1);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	assert_int_equal(uiommu_dirty_source_collect(f.src, got, &n), 0);
	assert_int_equal(n, 0);
	dma(&f, 5 * PG, 1);
	dma(&f, (NP - 1) * PG + 4095, 1);
	assert_int_equal(uiommu_dirty_source_collect(f.src, got, &n), 0);
	assert_int_equal(n, 2);
	assert_true(uiommu_bitmap_test(got, 5) && uiommu_bitmap_test(got, NP - 1));
	fixture_fini(&f);
}

static void test_iommu_source_covers_a_partly_mapped_range(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, NP / 2 + 3);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	interval(&f, 300, NP / 2 + 3);
	interval(&f, 5, NP / 2 + 3);
	fixture_fini(&f);
}

static void test_iommu_source_start_fails_without_dirty_tracking(void **state)
{
	struct uiommu_dirty_source *src = NULL;
	uint32_t plain;
	struct env e;

	(void)state;
	env_init(&e, 4 * KiB, NP * PG);
	assert_int_equal(hwpt_alloc(e.ctx, e.pdev_id, e.ioas, 0, &plain), 0);
	assert_int_equal(uiommu_iommu_source_create(e.ctx, plain, NP, &src), 0);
	assert_true(uiommu_dirty_source_start(src) < 0);
	assert_false(src->started);
	uiommu_dirty_source_destroy(src);
	assert_int_equal(uiommu_iommu_source_create(e.ctx, 9999, NP, &src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), -ENOENT);
	uiommu_dirty_source_destroy(src);
	src = NULL;
	assert_int_equal(uiommu_iommu_source_create(NULL, plain, NP, &src), -EINVAL);
	assert_int_equal(uiommu_iommu_source_create(e.ctx, 0, NP, &src), -EINVAL);
	assert_int_equal(uiommu_iommu_source_create(e.ctx, plain, 0, &src), -EINVAL);
	assert_int_equal(uiommu_iommu_source_create(e.ctx, plain, 1ull << 60, &src), -EINVAL);
	assert_null(src);
	env_fini(&e);
}

static void test_iommu_source_keeps_its_context_alive(void **state)
{
	uint64_t got[WORDS] = { 0 }, n = 0;
	struct fixture f;

	(void)state;
	fixture_init(&f, NP);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	dma(&f, 7 * PG, 1);
	uiommu_ctx_destroy(f.e.ctx); /* the creator's reference; the source has its own */
	assert_int_equal(uiommu_dirty_source_collect(f.src, got, &n), 0);
	assert_int_equal(n, 1);
	uiommu_dirty_source_destroy(f.src); /* the last reference: objects and bindings go */
	uiommu_hwdev_destroy(f.e.ddev);
	uiommu_hwdev_destroy(f.e.pdev);
	munmap(f.e.host, f.e.host_size);
}

static void test_round_of_iommu_and_vmm_counts_each(void **state)
{
	struct uiommu_dirty_source *vmm = NULL;
	struct uiommu_round *round = NULL;
	struct uiommu_round_stats st;
	uint64_t got[WORDS];
	struct fixture f;

	(void)state;
	fixture_init(&f, NP);
	assert_int_equal(uiommu_dirty_log_source_create("vmm", NP, &vmm), 0);
	assert_int_equal(uiommu_round_create(NP, &round), 0);
	assert_int_equal(uiommu_round_add_source(round, f.src), 0);
	assert_int_equal(uiommu_round_add_source(round, vmm), 0);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	assert_int_equal(uiommu_dirty_source_start(vmm), 0);
	dma(&f, 10 * PG + 100, 3 * PG); /* 10..13 */
	uiommu_dirty_log_mark(vmm, 13 * PG, 2 * PG); /* 13, 14 */
	assert_int_equal(uiommu_round_collect(round), 0);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.reported[0], 4);
	assert_int_equal(st.reported[1], 2);
	assert_int_equal(uiommu_round_take(round, got), 5);
	assert_true(got[0] == (0x1full << 10));
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(vmm);
	fixture_fini(&f);
}

/* A DMA thread writes random pages while the test thread collects. */
struct race {
	struct fixture *f;
	uint64_t seed;
	uint64_t written[WORDS];
	atomic_bool stop;
};

static void *dma_thread(void *arg)
{
	struct race *r = arg;
	struct uiommu_device *dev = uiommu_hwdev_dma(r->f->e.ddev);
	uint64_t st = r->seed;
	uint8_t b = 1;

	while (!atomic_load_explicit(&r->stop, memory_order_acquire)) {
		uint64_t page = splitmix64(&st) % NP;

		assert_int_equal(uiommu_device_dma_write(dev, page * PG + 9, &b, 1), 0);
		uiommu_bitmap_set(r->written, page);
	}
	return NULL;
}

static void test_iommu_source_loses_nothing_to_a_racing_device(void **state)
{
	uint64_t all[WORDS] = { 0 }, n = 0, collects = 0;
	struct race *r = calloc(1, sizeof(*r));
	struct fixture f;
	pthread_t t;

	(void)state;
	assert_non_null(r);
	fixture_init(&f, NP);
	r->f = &f;
	r->seed = rnd();
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	assert_int_equal(pthread_create(&t, NULL, dma_thread, r), 0);
	for (; collects < 300; collects++)
		assert_int_equal(uiommu_dirty_source_collect(f.src, all, &n), 0);
	atomic_store_explicit(&r->stop, true, memory_order_release);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(uiommu_dirty_source_collect(f.src, all, &n), 0);
	check_exact(r->written, all, uiommu_bitmap_count_range(all, 0, NP - 1));
	assert_true(n >= uiommu_bitmap_count_range(all, 0, NP - 1));
	fixture_fini(&f);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iommu_source_reports_exactly_the_pages_the_device_wrote),
		cmocka_unit_test(test_iommu_source_reports_nothing_written_before_start),
		cmocka_unit_test(test_iommu_source_covers_a_partly_mapped_range),
		cmocka_unit_test(test_iommu_source_start_fails_without_dirty_tracking),
		cmocka_unit_test(test_iommu_source_keeps_its_context_alive),
		cmocka_unit_test(test_round_of_iommu_and_vmm_counts_each),
		cmocka_unit_test(test_iommu_source_loses_nothing_to_a_racing_device),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
