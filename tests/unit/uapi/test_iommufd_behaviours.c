/* SPDX-License-Identifier: MIT */
/*
 * iommufd conformance, uapi-spec §3.12: the list of behaviours to reproduce,
 * one test per item, each exercising the item end to end through
 * uiommu_iommufd_ioctl() (the per-rule tests live in test_iommufd_frame.c,
 * test_iommufd_ioas.c and test_iommufd_hwpt.c).
 */
#include "uapi_test.h"

#define PG 4096ull
#define BASE 0x40000000ull
#define NOCLR IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR

/* An env whose dirty device is attached to a dirty-tracking HWPT over 64 pages at BASE. */
static uint32_t dirty_hwpt(struct env *e)
{
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 0);
	attach(e, e->ddev_id, hwpt);
	map_fixed(e->ctx, e->ioas, e->host, 64 * PG, BASE);
	assert_int_equal(set_dirty(e->ctx, hwpt, true), 0);
	return hwpt;
}

static void wr(struct env *e, uint64_t page)
{
	dma_write_byte(e->ddev, BASE + page * PG + 17);
}

static void test_3_12_01_size_rules(void **state)
{
	struct env *e = *state;
	uint64_t raw[8] = { 0 };
	struct iommu_ioas_alloc *al = (void *)raw;
	struct iommu_hw_info *hi = (void *)raw;

	al->size = 11; /* smaller than min_size */
	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOC, al), -EINVAL);
	al->size = 20;
	((uint8_t *)raw)[19] = 1; /* larger, non-zero tail */
	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOC, al), -E2BIG);
	((uint8_t *)raw)[19] = 0; /* larger, zero tail */
	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOC, al), 0);
	assert_int_not_equal(al->out_ioas_id, 0);
	/* Response truncated to size. */
	memset(raw, 0x3c, sizeof(raw));
	memset(raw, 0, 32);
	hi->size = 32;
	hi->dev_id = e->ddev_id;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, hi), 0);
	assert_true(raw[4] == 0x3c3c3c3c3c3c3c3cull);
}

static void test_3_12_02_unknown_flags_and_reserved_are_eopnotsupp(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = dirty_hwpt(e);
	struct iommu_ioas_alloc al = { .size = sizeof(al), .flags = 1 };
	struct iommu_ioas_map mp = { .size = sizeof(mp), .flags = MAP_RW | 8, .ioas_id = e->ioas,
				     .user_va = (uintptr_t)e->host, .length = PG };
	struct iommu_ioas_copy cp = { .size = sizeof(cp), .flags = MAP_RW | 8,
				      .dst_ioas_id = e->ioas, .src_ioas_id = e->ioas,
				      .length = PG, .src_iova = BASE };
	struct iommu_hwpt_alloc ha = { .size = sizeof(ha), .flags = 1u << 20, .dev_id = e->ddev_id,
				       .pt_id = e->ioas };
	struct iommu_hwpt_set_dirty_tracking sd = { .size = sizeof(sd), .flags = 2,
						    .hwpt_id = hwpt };
	struct iommu_hwpt_get_dirty_bitmap gd = { .size = sizeof(gd), .hwpt_id = hwpt, .flags = 2,
						  .iova = BASE, .length = PG, .page_size = PG };
	struct iommu_hw_info hi = { .size = sizeof(hi), .flags = 2, .dev_id = e->ddev_id };
	struct iommu_option op = { .size = sizeof(op), .option_id = IOMMU_OPTION_HUGE_PAGES,
				   .op = IOMMU_OPTION_OP_GET, .object_id = e->ioas,
				   .__reserved = 1 };
	struct iommu_ioas_iova_ranges rg = { .size = sizeof(rg), .ioas_id = e->ioas,
					     .__reserved = 1 };
	struct iommu_ioas_allow_iovas aw = { .size = sizeof(aw), .ioas_id = e->ioas,
					     .__reserved = 1 };
	uint64_t word = 0;

	gd.data = (uintptr_t)&word;
	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOC, &al), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_IOAS_MAP, &mp), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_IOAS_COPY, &cp), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &ha), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &gd), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &hi), -EOPNOTSUPP);
	/* Non-zero __reserved. */
	mp.flags = MAP_RW;
	mp.__reserved = 1;
	assert_int_equal(io(e->ctx, IOMMU_IOAS_MAP, &mp), -EOPNOTSUPP);
	ha.flags = 0;
	ha.__reserved = 1;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &ha), -EOPNOTSUPP);
	gd.flags = 0;
	gd.__reserved = 1;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &gd), -EOPNOTSUPP);
	hi.flags = 0;
	hi.__reserved[1] = 1;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &hi), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_OPTION, &op), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_IOAS_IOVA_RANGES, &rg), -EOPNOTSUPP);
	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOW_IOVAS, &aw), -EOPNOTSUPP);
	/* Except SET_DIRTY_TRACKING, which ignores it. */
	sd.flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE;
	sd.__reserved = 0xffffffffu;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd), 0);
}

static void test_3_12_03_fresh_ioas_iova_ranges(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range r = { 1, 1 };
	uint32_t n;
	uint64_t align;

	assert_int_equal(iova_ranges(e->ctx, e->ioas, &r, 1, &n, &align), 0);
	assert_true(n == 1 && align == 1 && r.start == 0 && r.last == U64_MAX);
	assert_int_equal(iova_ranges(e->ctx, e->ioas, &r, 0, &n, &align), -EMSGSIZE);
	assert_int_equal(n, 1);
}

static void test_3_12_04_map_rules(void **state)
{
	struct env *e = *state;
	uint64_t iova = BASE;

	assert_int_equal(map_va(e->ctx, e->ioas, IOMMU_IOAS_MAP_FIXED_IOVA, e->host, PG, &iova),
			 -EINVAL);
	map_fixed(e->ctx, e->ioas, e->host, PG, BASE);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EEXIST);
	attach(e, e->pdev_id, e->ioas);
	iova = RESV_START;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EINVAL);
	for (int i = 0; i < 8; i++) {
		iova = 0;
		assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
		assert_true(iova != 0);
	}
}

static void test_3_12_05_unmap_rules(void **state)
{
	struct env *e = *state;
	uint64_t len = 99;

	assert_int_equal(unmap(e->ctx, e->ioas, 0, U64_MAX, &len), 0);
	assert_true(len == 0);
	assert_int_equal(unmap(e->ctx, e->ioas, BASE, PG, NULL), -ENOENT);
	map_fixed(e->ctx, e->ioas, e->host, 2 * PG, BASE);
	assert_int_equal(unmap(e->ctx, e->ioas, BASE, PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, BASE + 2 * PG, PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, BASE, 2 * PG, &len), 0);
	assert_true(len == 2 * PG);
}

static void test_3_12_06_allow_iovas_rules(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range single = { 0x10000, 0x10000 };
	const struct iommu_iova_range ovl[] = { { 0x10000, 0x1ffff }, { 0x18000, 0x2ffff } };
	const struct iommu_iova_range resv = { RESV_START, RESV_LAST };

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &single, 1), -EINVAL);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, ovl, 2), -EINVAL);
	attach(e, e->pdev_id, e->ioas);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, &resv, 1), -EADDRINUSE);
}

static void test_3_12_07_hwpt_alloc_rules(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->pdev_id, e->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 -EOPNOTSUPP);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, 4242, 0, &hwpt), -EINVAL);
}

static void test_3_12_08_set_dirty_tracking_rules(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = dirty_hwpt(e);
	struct iommu_hwpt_set_dirty_tracking sd = { .size = sizeof(sd), .flags = 2,
						    .hwpt_id = hwpt };

	assert_int_equal(set_dirty(e->ctx, 4242, true), -ENOENT);
	assert_int_equal(io(e->ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &sd), -EOPNOTSUPP);
}

static void test_3_12_09_get_dirty_bitmap_rules(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = dirty_hwpt(e);
	uint64_t words[2] = { 0 }, len;

	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, PG, 0, words), -EINVAL);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE + PG, 2 * PG, 2 * PG, words), -EINVAL);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 0, PG, words), -EOVERFLOW);
	assert_int_equal(get_dirty(e->ctx, hwpt, 2, BASE, PG, PG, words), -EOPNOTSUPP);
	/* A hole at pages [8, 16): 0, and only the bits before it. */
	assert_int_equal(unmap(e->ctx, e->ioas, BASE, 64 * PG, &len), 0);
	map_fixed(e->ctx, e->ioas, e->host, 8 * PG, BASE);
	map_fixed(e->ctx, e->ioas, e->host + 16 * PG, 8 * PG, BASE + 16 * PG);
	wr(e, 2);
	wr(e, 20);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 24 * PG, PG, words), 0);
	assert_true(words[0] == 1ull << 2 && words[1] == 0);
}

static void test_3_12_10_accumulate_clear_no_clear_reenable(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = dirty_hwpt(e);
	uint64_t w = 0;

	wr(e, 1);
	wr(e, 5);
	wr(e, 1);
	assert_int_equal(get_dirty(e->ctx, hwpt, NOCLR, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == ((1ull << 1) | (1ull << 5)));
	w = 0;
	assert_int_equal(get_dirty(e->ctx, hwpt, NOCLR, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == ((1ull << 1) | (1ull << 5)));
	w = 0;
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == ((1ull << 1) | (1ull << 5)));
	w = 0;
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == 0);
	wr(e, 9);
	assert_int_equal(set_dirty(e->ctx, hwpt, true), 0);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == 0);
}

static void test_3_12_11_prefilled_bitmap_keeps_its_ones(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = dirty_hwpt(e);
	uint64_t w = ~0ull;

	wr(e, 3);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == ~0ull);
	w = 0xf0f0f0f0f0f0f0f0ull;
	wr(e, 3);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 64 * PG, PG, &w), 0);
	assert_true(w == (0xf0f0f0f0f0f0f0f0ull | 1ull << 3));
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	env_init(e, 4 * KiB, 4 * MiB);
	*state = e;
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_3_12_01_size_rules),
		T(test_3_12_02_unknown_flags_and_reserved_are_eopnotsupp),
		T(test_3_12_03_fresh_ioas_iova_ranges),
		T(test_3_12_04_map_rules),
		T(test_3_12_05_unmap_rules),
		T(test_3_12_06_allow_iovas_rules),
		T(test_3_12_07_hwpt_alloc_rules),
		T(test_3_12_08_set_dirty_tracking_rules),
		T(test_3_12_09_get_dirty_bitmap_rules),
		T(test_3_12_10_accumulate_clear_no_clear_reenable),
		T(test_3_12_11_prefilled_bitmap_keeps_its_ones),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
