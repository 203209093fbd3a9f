/* SPDX-License-Identifier: MIT */
/*
 * End-to-end dirty bitmaps: DMA writes through the emulated IOMMU, read back
 * with uiommu_domain_get_dirty_bitmap at page sizes smaller and larger than
 * the leaves, compared with a model that knows which leaves were written.
 */
#include "../iommu/iommu_test.h"

#include <uiommu/dirty.h>

#include "core/core_internal.h"

#define RW (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)
#define PG 4096ull
#define NPAGES 4096ull /* 16 MiB: 2 MiB leaves in the first half, 4 KiB in the second */
#define BASE (64 * MiB)

struct env {
	struct uiommu_domain *d;
	struct uiommu_device *dev;
	unsigned char *host;
	uint8_t written[NPAGES];
};

static void env_init(struct env *e)
{
	struct uiommu_domain_cfg cfg = { .format = UIOMMU_PT_X86 };

	memset(e, 0, sizeof(*e));
	e->host = host_alloc(NPAGES * PG + PG, 2 * MiB);
	assert_int_equal(uiommu_domain_create(&cfg, &e->d), 0);
	assert_int_equal(uiommu_device_create(NULL, &e->dev), 0);
	assert_int_equal(uiommu_device_attach(e->dev, e->d), 0);
	assert_int_equal(uiommu_domain_map(e->d, BASE, e->host, NPAGES / 2 * PG, RW), 0);
	assert_int_equal(uiommu_domain_map(e->d, BASE + NPAGES / 2 * PG,
					   e->host + (NPAGES / 2 + 1) * PG, NPAGES / 2 * PG, RW),
			 0);
	assert_int_equal(uiommu_domain_set_dirty_tracking(e->d, true), 0);
}

static void env_fini(struct env *e)
{
	uiommu_device_destroy(e->dev);
	uiommu_domain_destroy(e->d);
}

static void write_page(struct env *e, uint64_t page)
{
	assert_int_equal(uiommu_device_dma_write(e->dev, BASE + page * PG + 8, "x", 1), 0);
	e->written[page] = 1;
}

/* A page is reported dirty when its leaf holds a written page. */
static bool leaf_dirty(const struct env *e, uint64_t page)
{
	uint64_t first = page < NPAGES / 2 ? page & ~511ull : page;
	uint64_t n = page < NPAGES / 2 ? 512 : 1;

	for (uint64_t p = first; p < first + n; p++)
		if (e->written[p])
			return true;
	return false;
}

static void check_bitmap(const struct env *e, uint64_t iova, uint64_t length, uint64_t ps,
			 const uint64_t *bm)
{
	for (uint64_t k = 0; k < length / ps; k++) {
		bool want = false;

		for (uint64_t a = iova + k * ps; a < iova + (k + 1) * ps; a += PG)
			want |= a >= BASE && a < BASE + NPAGES * PG && leaf_dirty(e, (a - BASE) / PG);
		if (want != !!(bm[k / 64] & (1ull << (k % 64))))
			fail_msg("bit %llu of (iova %#llx, length %#llx, page %#llx): want %d",
				 (unsigned long long)k, (unsigned long long)iova,
				 (unsigned long long)length, (unsigned long long)ps, want);
	}
}

static void test_bitmap_at_page_sizes_around_the_leaf_sizes(void **state)
{
	static const uint64_t sizes[] = { 4096, 8192, 65536, 2 * MiB, 4 * MiB };
	uint64_t seed = test_seed("domain_bitmap");
	struct env e;

	(void)state;
	env_init(&e);
	for (int i = 0; i < 60; i++)
		write_page(&e, rnd(&seed) % NPAGES);
	for (int round = 0; round < 200; round++) {
		uint64_t ps = sizes[rnd(&seed) % ARRAY_SIZE(sizes)];
		uint64_t first = rnd(&seed) % (NPAGES * PG / ps), n = 1 + rnd(&seed) % 64;
		uint64_t iova = BASE + first * ps, length = n * ps;
		uint64_t bytes = uiommu_dirty_bitmap_bytes(length, ps);
		uint64_t *bm = calloc(1, bytes);

		assert_non_null(bm);
		assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, iova, length, ps,
								UIOMMU_DIRTY_NO_CLEAR, bm, bytes),
				 0);
		check_bitmap(&e, iova, length, ps, bm);
		free(bm);
	}
	env_fini(&e);
}

static void test_bitmap_at_odd_address_keeps_ones_and_stays_in_bounds(void **state)
{
	unsigned char buf[64 + 16 + 8];
	unsigned char *bm = buf + 0x11; /* odd address */
	struct env e;

	(void)state;
	env_init(&e);
	write_page(&e, NPAGES / 2 + 3);
	memset(buf, 0xa5, sizeof(buf));
	bm[0] = 0x01; /* a one already there stays */
	memset(bm, 0, 16);
	bm[0] = 0x01;
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE + NPAGES / 2 * PG, 128 * PG, PG,
							0, bm, 16),
			 0);
	assert_int_equal(bm[0], 0x09);
	for (int i = 1; i < 16; i++)
		assert_int_equal(bm[i], 0);
	assert_int_equal(bm[16], 0xa5);
	assert_int_equal(bm[-1], 0xa5);
	/* Cleared by the first read. */
	memset(bm, 0, 16);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE + NPAGES / 2 * PG, 128 * PG, PG,
							0, bm, 16),
			 0);
	assert_int_equal(bm[0], 0);
	env_fini(&e);
}

static void test_get_dirty_bitmap_validates_before_touching_anything(void **state)
{
	uint64_t bm[4] = { 0 };
	struct env e;

	(void)state;
	env_init(&e);
	write_page(&e, NPAGES - 1);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE, 0, PG, 0, bm, 32), -EOVERFLOW);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, UINT64_MAX - PG + 1, 2 * PG, PG, 0,
							bm, 32),
			 -EOVERFLOW);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE, PG, 0, 0, bm, 32), -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE + 512, PG, PG, 0, bm, 32),
			 -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE, 257 * PG, PG, 0, bm, 32),
			 -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE, PG, PG, 0, NULL, 32), -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE, PG, PG, 4, bm, 32), -EINVAL);
	/* Nothing was cleared by the failed calls. */
	assert_int_equal(uiommu_domain_get_dirty_bitmap(e.d, BASE + (NPAGES - 64) * PG, 64 * PG,
							PG, 0, bm, 8),
			 0);
	assert_true(bm[0] == 1ull << 63);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_at_page_sizes_around_the_leaf_sizes),
		cmocka_unit_test(test_bitmap_at_odd_address_keeps_ones_and_stays_in_bounds),
		cmocka_unit_test(test_get_dirty_bitmap_validates_before_touching_anything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
