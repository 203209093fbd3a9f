/* SPDX-License-Identifier: MIT */
/*
 * iommufd conformance, uapi-spec §3.10: GET_HW_INFO, HWPT_ALLOC,
 * HWPT_SET_DIRTY_TRACKING and HWPT_GET_DIRTY_BITMAP (each check of its list,
 * in order, then the bitmap semantics, bit-exact).
 *
 * The dirty fixture: a HWPT allocated with DIRTY_TRACKING from a capable
 * device that uses 4 KiB IOPTEs only, the device attached to it, 16 MiB of
 * host memory mapped at BASE as one area, tracking enabled. Dirty pages come
 * from real DMA writes of the device.
 */
#include "uapi_test.h"

#define PG 4096ull
#define BASE 0x40000000ull
#define NPAGES 4096ull /* 16 MiB */
#define NOCLR IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR

struct dfx {
	struct env e;
	uint32_t hwpt;
};

static int dirty_setup(void **state)
{
	struct dfx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	env_init(&f->e, 4 * KiB, NPAGES * PG);
	assert_int_equal(hwpt_alloc(f->e.ctx, f->e.ddev_id, f->e.ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &f->hwpt),
			 0);
	attach(&f->e, f->e.ddev_id, f->hwpt);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host, NPAGES * PG, BASE);
	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, true), 0);
	*state = f;
	return 0;
}

static int dirty_teardown(void **state)
{
	struct dfx *f = *state;

	env_fini(&f->e);
	free(f);
	return 0;
}

static void wr(struct dfx *f, uint64_t page)
{
	dma_write_byte(f->e.ddev, BASE + page * PG + (page * 97) % PG);
}

static long gd(struct dfx *f, uint32_t flags, uint64_t iova, uint64_t len, uint64_t ps, void *bm)
{
	return get_dirty(f->e.ctx, f->hwpt, flags, iova, len, ps, bm);
}

/* Asserts that the @nbits of @bm are exactly @want (a sorted list of bits). */
static void expect_bits(const void *bm, uint64_t nbits, const uint64_t *want, size_t n)
{
	size_t j = 0;

	for (uint64_t k = 0; k < nbits; k++) {
		bool exp = j < n && want[j] == k;

		if (bit_test(bm, k) != exp)
			fail_msg("bit %llu: got %d, expected %d", (unsigned long long)k,
				 bit_test(bm, k), exp);
		j += exp;
	}
}

static struct iommu_hwpt_get_dirty_bitmap gd_cmd(struct dfx *f, uint64_t iova, uint64_t len,
						  uint64_t ps, void *bm)
{
	struct iommu_hwpt_get_dirty_bitmap c = {
		.size = sizeof(c),
		.hwpt_id = f->hwpt,
		.iova = iova,
		.length = len,
		.page_size = ps,
		.data = (uintptr_t)bm,
	};

	return c;
}

static uint64_t bm[NPAGES * 2 / 64 + 8]; /* room for 2 KiB granularity + guard */

/* ---- GET_HW_INFO ---- */

static const uint8_t info_blob[24] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				       13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24 };

static struct uiommu_hwdev *info_dev(void)
{
	struct uiommu_hwdev_cfg cfg = {
		.name = "info-dev",
		.format = UIOMMU_PT_X86,
		.aperture_last = APERTURE_LAST,
		.dirty_tracking = true,
		.max_pasid_log2 = 20,
		.hw_info_type = IOMMU_HW_INFO_TYPE_INTEL_VTD,
		.hw_info = info_blob,
		.hw_info_len = sizeof(info_blob),
	};
	struct uiommu_hwdev *dev = NULL;

	assert_int_equal(uiommu_hwdev_create(&cfg, &dev), 0);
	return dev;
}

static struct iommu_hw_info hw_cmd(uint32_t dev_id, uint32_t len, void *data)
{
	return (struct iommu_hw_info){ .size = sizeof(struct iommu_hw_info),
				       .dev_id = dev_id,
				       .data_len = len,
				       .data_uptr = (uintptr_t)data };
}

static void test_hw_info_reports_dirty_tracking_capability(void **state)
{
	struct env *e = *state;
	struct iommu_hw_info c = hw_cmd(e->ddev_id, 0, NULL);

	c.out_capabilities = 0;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), 0);
	assert_true(c.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	c = hw_cmd(e->pdev_id, 0, NULL);
	c.out_capabilities = ~0ull;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), 0);
	assert_false(c.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
}

static void test_hw_info_data_len_in_out_and_tail_zeroed(void **state)
{
	struct env *e = *state;
	struct uiommu_hwdev *dev = info_dev();
	uint32_t id = bind(e->ctx, dev);
	uint8_t buf[80];
	struct iommu_hw_info c = hw_cmd(id, 64, buf);

	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), 0);
	assert_int_equal(c.data_len, sizeof(info_blob));
	assert_int_equal(c.out_data_type, IOMMU_HW_INFO_TYPE_INTEL_VTD);
	assert_int_equal(c.out_max_pasid_log2, 20);
	assert_true(c.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	assert_memory_equal(buf, info_blob, sizeof(info_blob));
	for (size_t i = sizeof(info_blob); i < 64; i++)
		assert_int_equal(buf[i], 0); /* the rest of the user buffer zeroed */
	for (size_t i = 64; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa); /* beyond data_len untouched */
	uiommu_ctx_unbind(e->ctx, id);
	uiommu_hwdev_destroy(dev);
}

static void test_hw_info_short_data_len_copies_only_a_prefix(void **state)
{
	struct env *e = *state;
	struct uiommu_hwdev *dev = info_dev();
	uint32_t id = bind(e->ctx, dev);
	uint8_t buf[32];
	struct iommu_hw_info c = hw_cmd(id, 10, buf);

	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), 0);
	assert_int_equal(c.data_len, sizeof(info_blob));
	assert_memory_equal(buf, info_blob, 10);
	for (size_t i = 10; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa);
	/* data_len 0: nothing written, the pointer is not used. */
	c = hw_cmd(id, 0, bad_ptr());
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), 0);
	assert_int_equal(c.data_len, sizeof(info_blob));
	uiommu_ctx_unbind(e->ctx, id);
	uiommu_hwdev_destroy(dev);
}

static void test_hw_info_without_type_data_zeroes_the_buffer(void **state)
{
	struct env *e = *state;
	uint8_t buf[24];
	struct iommu_hw_info c = hw_cmd(e->pdev_id, 16, buf);

	memset(buf, 0xaa, sizeof(buf));
	c.out_data_type = 0x77;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), 0);
	assert_int_equal(c.data_len, 0);
	assert_int_equal(c.out_data_type, IOMMU_HW_INFO_TYPE_NONE);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(buf[i], 0);
	for (size_t i = 16; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa);
}

static void test_hw_info_bad_data_pointer_is_efault(void **state)
{
	struct env *e = *state;
	struct uiommu_hwdev *dev = info_dev();
	uint32_t id = bind(e->ctx, dev);
	struct iommu_hw_info c = hw_cmd(id, 24, bad_ptr());

	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -EFAULT);
	/* Also for a device without data: the zeroing faults. */
	c = hw_cmd(e->pdev_id, 8, bad_ptr());
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -EFAULT);
	uiommu_ctx_unbind(e->ctx, id);
	uiommu_hwdev_destroy(dev);
}

static void test_hw_info_unknown_flags_or_reserved_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	struct iommu_hw_info c = hw_cmd(e->ddev_id, 0, NULL);

	c.flags = 1u << 1;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -EOPNOTSUPP);
	c.flags = 0x80000000u;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -EOPNOTSUPP);
	for (int i = 0; i < 3; i++) {
		c = hw_cmd(e->ddev_id, 0, NULL);
		c.__reserved[i] = 1;
		assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -EOPNOTSUPP);
	}
	/* Order: before the device lookup. */
	c = hw_cmd(999, 0, NULL);
	c.flags = 1u << 1;
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -EOPNOTSUPP);
}

static void test_hw_info_bad_dev_id_is_enoent(void **state)
{
	struct env *e = *state;
	struct iommu_hw_info c = hw_cmd(999, 0, NULL);

	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -ENOENT);
	c = hw_cmd(0, 0, NULL);
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -ENOENT);
	c = hw_cmd(e->ioas, 0, NULL);
	assert_int_equal(io(e->ctx, IOMMU_GET_HW_INFO, &c), -ENOENT);
}

/* ---- HWPT_ALLOC ---- */

static struct iommu_hwpt_alloc ha_cmd(uint32_t flags, uint32_t dev, uint32_t pt)
{
	return (struct iommu_hwpt_alloc){
		.size = sizeof(struct iommu_hwpt_alloc), .flags = flags, .dev_id = dev, .pt_id = pt
	};
}

static void test_hwpt_alloc_reserved_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	struct iommu_hwpt_alloc c = ha_cmd(0, e->ddev_id, e->ioas);

	c.__reserved = 1;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
	/* Order: before the data checks and the lookups. */
	c = ha_cmd(0, 999, 999);
	c.__reserved = 1;
	c.data_len = 8;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
}

static void test_hwpt_alloc_data_type_and_len_mismatch_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t data[2] = { 0 };
	struct iommu_hwpt_alloc c = ha_cmd(0, e->ddev_id, e->ioas);

	c.data_len = 8;
	c.data_uptr = (uintptr_t)data;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
	c = ha_cmd(0, e->ddev_id, e->ioas);
	c.data_type = IOMMU_HWPT_DATA_VTD_S1;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
	/* Order: before the device lookup. */
	c = ha_cmd(0, 999, e->ioas);
	c.data_len = 8;
	c.data_uptr = (uintptr_t)data;
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
}

static void test_hwpt_alloc_bad_dev_id_is_enoent(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, 999, e->ioas, 0, &hwpt), -ENOENT);
	assert_int_equal(hwpt_alloc(e->ctx, 0, e->ioas, 0, &hwpt), -ENOENT);
	assert_int_equal(hwpt_alloc(e->ctx, e->ioas, e->ioas, 0, &hwpt), -ENOENT);
	/* Order: before the pt_id lookup (which would be EINVAL). */
	assert_int_equal(hwpt_alloc(e->ctx, 999, 999, 0, &hwpt), -ENOENT);
}

static void test_hwpt_alloc_unknown_pt_id_is_einval(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, 999, 0, &hwpt), -EINVAL);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, 0, 0, &hwpt), -EINVAL);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->pdev_id, 0, &hwpt), -EINVAL);
}

static void test_hwpt_alloc_unknown_flag_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 1u << 4, &hwpt), -EOPNOTSUPP);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0x80000000u, &hwpt),
			 -EOPNOTSUPP);
}

static void test_hwpt_alloc_flags_are_checked_after_the_lookups(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	/* Flags are the paging allocator's business: after dev_id and pt_id. */
	assert_int_equal(hwpt_alloc(e->ctx, 999, e->ioas, 1u << 4, &hwpt), -ENOENT);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, 999, 1u << 4, &hwpt), -EINVAL);
	assert_int_equal(hwpt_alloc(e->ctx, e->pdev_id, 999, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 -EINVAL);
}

static void test_hwpt_alloc_write_back_fault_is_efault_and_hwpt_destroyed(void **state)
{
	struct env *e = *state;
	struct iommu_hwpt_alloc *ro;

	ro = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	*ro = ha_cmd(0, e->ddev_id, e->ioas);
	assert_int_equal(mprotect(ro, PG, PROT_READ), 0);
	assert_int_equal(io(e->ctx, IOMMU_HWPT_ALLOC, ro), -EFAULT);
	/* No HWPT holds the IOAS: it can be destroyed, its range is whole again. */
	assert_int_equal(ioas_alignment(e->ctx, e->ioas), 1);
	assert_int_equal(destroy(e->ctx, e->ioas), 0);
	munmap(ro, PG);
}

static void test_hwpt_alloc_dirty_tracking_on_noncapable_device_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->pdev_id, e->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 -EOPNOTSUPP);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 0);
	assert_int_not_equal(hwpt, 0);
	assert_true(hwpt != e->ioas && hwpt != e->ddev_id && hwpt != e->pdev_id);
}

static void test_hwpt_alloc_populates_existing_mappings(void **state)
{
	struct env *e = *state;
	uint32_t hwpt, v = 0x600dcafe;

	map_fixed(e->ctx, e->ioas, e->host, 4 * PG, BASE);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), 0);
	attach(e, e->ddev_id, hwpt);
	assert_int_equal(uiommu_device_dma_write(uiommu_hwdev_dma(e->ddev), BASE + 3 * PG + 4, &v,
						 4),
			 0);
	assert_memory_equal(e->host + 3 * PG + 4, &v, 4);
}

static void test_hwpt_dirty_tracking_refuses_noncapable_device_einval(void **state)
{
	struct env *e = *state;
	uint32_t hwpt, pt;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 0);
	pt = hwpt;
	assert_int_equal(uiommu_ctx_attach(e->ctx, e->pdev_id, &pt), -EINVAL);
	attach(e, e->ddev_id, hwpt);
}

static void test_auto_domain_has_no_dirty_ops(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = attach(e, e->ddev_id, e->ioas);

	assert_true(hwpt != e->ioas);
	map_fixed(e->ctx, e->ioas, e->host, PG, BASE);
	assert_int_equal(set_dirty(e->ctx, hwpt, true), -EOPNOTSUPP);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, PG, PG, bm), -EOPNOTSUPP);
}

/* An automatic domain that cannot be filled (user memory gone) is undone:
 * the device is left detached, no HWPT remains, and a later attach works. */
static void test_auto_attach_fill_failure_leaves_device_detached(void **state)
{
	struct env *e = *state;
	void *gone = host_alloc(page_size(), page_size());
	uint32_t pt = e->ioas;
	uint64_t len;

	map_fixed(e->ctx, e->ioas, gone, page_size(), BASE);
	munmap(gone, page_size());
	assert_int_equal(uiommu_ctx_attach(e->ctx, e->ddev_id, &pt), -EFAULT);
	assert_int_equal(uiommu_ctx_detach(e->ctx, e->ddev_id), -EINVAL);
	/* Ids: IOAS 1, devices 2 and 3; the HWPT the attach made was 4, and is gone. */
	assert_int_equal(destroy(e->ctx, e->ioas + 3), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, 0, U64_MAX, &len), 0);
	attach(e, e->ddev_id, e->ioas);
	assert_int_equal(destroy(e->ctx, e->ioas), -EBUSY);
}

static void test_hwpt_without_dirty_flag_has_no_dirty_ops(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), 0);
	assert_int_equal(set_dirty(e->ctx, hwpt, true), -EOPNOTSUPP);
	assert_int_equal(set_dirty(e->ctx, hwpt, false), -EOPNOTSUPP);
}

/* ---- HWPT_SET_DIRTY_TRACKING ---- */

static void test_set_dirty_unknown_flag_is_eopnotsupp(void **state)
{
	struct dfx *f = *state;
	struct iommu_hwpt_set_dirty_tracking c = { .size = sizeof(c), .flags = 2,
						   .hwpt_id = f->hwpt };

	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &c), -EOPNOTSUPP);
	c.flags = 3;
	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &c), -EOPNOTSUPP);
	/* Order: before the lookup. */
	c.hwpt_id = 999;
	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &c), -EOPNOTSUPP);
}

static void test_set_dirty_ignores_reserved(void **state)
{
	struct dfx *f = *state;
	struct iommu_hwpt_set_dirty_tracking c = { .size = sizeof(c),
						   .flags = IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
						   .hwpt_id = f->hwpt,
						   .__reserved = 0xdeadbeef };

	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &c), 0);
	c.flags = 0;
	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &c), 0);
}

static void test_set_dirty_not_a_paging_hwpt_is_enoent(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(set_dirty(f->e.ctx, 999, true), -ENOENT);
	assert_int_equal(set_dirty(f->e.ctx, 0, true), -ENOENT);
	assert_int_equal(set_dirty(f->e.ctx, f->e.ioas, true), -ENOENT);
	assert_int_equal(set_dirty(f->e.ctx, f->e.ddev_id, false), -ENOENT);
}

static void test_set_dirty_enable_discards_accumulated_state(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 3 };

	wr(f, 3);
	wr(f, 7);
	/* Enabling an enabled HWPT succeeds and starts from a clean snapshot. */
	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, true), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, NOCLR, BASE, NPAGES * PG, PG, bm), 0);
	assert_true(bits_count(bm, NPAGES) == 0);
	wr(f, 3);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	expect_bits(bm, NPAGES, want, 1);
}

static void test_set_dirty_disable_stops_marking(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, false), 0);
	wr(f, 5);
	memset(bm, 0, sizeof(bm));
	/* §3.10 item 10: a refusing driver's error is discarded; either way 0. */
	assert_int_equal(gd(f, NOCLR, BASE, NPAGES * PG, PG, bm), 0);
	assert_false(bit_test(bm, 5));
	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, true), 0);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	assert_false(bit_test(bm, 5));
	wr(f, 5);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	assert_true(bit_test(bm, 5));
}

/* ---- HWPT_GET_DIRTY_BITMAP checks 1-8 ---- */

static void test_get_dirty_1_unknown_flag_or_reserved_is_eopnotsupp(void **state)
{
	struct dfx *f = *state;
	struct iommu_hwpt_get_dirty_bitmap c = gd_cmd(f, BASE, PG, PG, bm);

	c.flags = 2;
	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &c), -EOPNOTSUPP);
	c.flags = 0;
	c.__reserved = 1;
	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &c), -EOPNOTSUPP);
	/* Order: before ENOENT (2), EOVERFLOW (3), EINVAL (5). */
	c = gd_cmd(f, BASE, 0, 0, bm);
	c.hwpt_id = 999;
	c.flags = 2;
	assert_int_equal(io(f->e.ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &c), -EOPNOTSUPP);
}

static void test_get_dirty_2_not_a_paging_hwpt_is_enoent(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(get_dirty(f->e.ctx, 999, 0, BASE, PG, PG, bm), -ENOENT);
	assert_int_equal(get_dirty(f->e.ctx, f->e.ioas, 0, BASE, PG, PG, bm), -ENOENT);
	assert_int_equal(get_dirty(f->e.ctx, f->e.ddev_id, 0, BASE, PG, PG, bm), -ENOENT);
	/* Order: before EOVERFLOW (3) and EINVAL (5). */
	assert_int_equal(get_dirty(f->e.ctx, 999, 0, BASE, 0, 0, bm), -ENOENT);
}

static void test_get_dirty_3_range_wrap_is_eoverflow(void **state)
{
	struct dfx *f = *state;

	/* length 0 wraps to U64_MAX unless iova is 0. */
	assert_int_equal(gd(f, 0, BASE, 0, PG, bm), -EOVERFLOW);
	assert_int_equal(gd(f, 0, PG, 0, PG, bm), -EOVERFLOW);
	assert_int_equal(gd(f, 0, U64_MAX - 0xfff, 0x2000, PG, bm), -EOVERFLOW);
	/* Order: before EINVAL for alignment (4) and page_size 0 (5). */
	assert_int_equal(gd(f, 0, BASE + 1, 0, PG, bm), -EOVERFLOW);
	assert_int_equal(gd(f, 0, BASE, 0, 0, bm), -EOVERFLOW);
}

static void test_get_dirty_4_not_multiple_of_iova_alignment_is_einval(void **state)
{
	struct dfx *f = *state;

	/* page_size 2 KiB passes check 6; the IOAS alignment is 4 KiB. */
	assert_int_equal(gd(f, 0, BASE + 0x800, PG, 0x800, bm), -EINVAL);
	assert_int_equal(gd(f, 0, BASE, 0x800, 0x800, bm), -EINVAL);
	assert_int_equal(gd(f, 0, BASE, PG, 0x800, bm), 0);
}

static void test_get_dirty_5_page_size_0_is_einval(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(gd(f, 0, BASE, PG, 0, bm), -EINVAL);
}

static void test_get_dirty_6_not_aligned_to_page_size_is_einval(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(gd(f, 0, BASE + PG, 2 * PG, 2 * PG, bm), -EINVAL);
	assert_int_equal(gd(f, 0, BASE, 3 * PG, 2 * PG, bm), -EINVAL);
	assert_int_equal(gd(f, 0, BASE, PG, 2 * MiB, bm), -EINVAL);
	/* Non power of two: only the mask test, (BASE + 0x2000) & 0x2fff != 0. */
	assert_int_equal(gd(f, 0, BASE + 2 * PG, 4 * PG, 0x3000, bm), -EINVAL);
	assert_int_equal(gd(f, 0, BASE, 3 * PG, 0x3000, bm), -EINVAL);
	/* ...which BASE + 0x1000 passes (bit 12 is not in 0x2fff). */
	assert_int_equal(gd(f, 0, BASE + PG, 4 * PG, 0x3000, bm), 0);
}

static void test_get_dirty_6_non_power_of_two_page_size_uses_lowest_bit(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 2, 3 };

	wr(f, 2);
	wr(f, 3);
	memset(bm, 0, sizeof(bm));
	/* BASE and BASE + 0x4000 pass the mask 0x2fff; bits are 4 KiB apart. */
	assert_int_equal(gd(f, 0, BASE, 4 * PG, 0x3000, bm), 0);
	expect_bits(bm, 64, want, 2);
}

static void test_get_dirty_7_domain_without_dirty_ops_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), 0);
	map_fixed(e->ctx, e->ioas, e->host, 4 * PG, BASE);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 4 * PG, PG, bm), -EOPNOTSUPP);
	/* Order: after EINVAL (6), before ENOMEM (8). */
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 4 * PG, 8 * PG, bm), -EINVAL);
	assert_int_equal(get_dirty(e->ctx, hwpt, 0, BASE, 4 * PG, PG, bad_ptr()), -EOPNOTSUPP);
}

static void test_get_dirty_8_bad_bitmap_pointer_is_enomem(void **state)
{
	struct dfx *f = *state;
	void *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(ro != MAP_FAILED);
	wr(f, 0);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bad_ptr()), -ENOMEM);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, NULL), -ENOMEM);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, ro), -ENOMEM);
	/* The failed calls did not clear anything. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	assert_true(bit_test(bm, 0) && bits_count(bm, NPAGES) == 1);
	munmap(ro, PG);
}

/* ---- bitmap semantics ---- */

static void test_get_dirty_reports_exactly_the_written_pages(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 0, 1, 63, 64, 65, 127, 1000, 2048, 4095 };

	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		wr(f, want[i]);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	expect_bits(bm, NPAGES, want, ARRAY_SIZE(want));
}

static void test_get_dirty_bits_accumulate_and_a_get_clears_them(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 10, 20, 30 };

	wr(f, 10);
	wr(f, 20);
	wr(f, 20);
	wr(f, 30);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	expect_bits(bm, NPAGES, want, 3);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	assert_true(bits_count(bm, NPAGES) == 0);
	/* Written again after the harvest: reported again. */
	wr(f, 20);
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	expect_bits(bm, NPAGES, want + 1, 1);
}

static void test_get_dirty_no_clear_twice_gives_same_bits(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 1, 100, 4000 };

	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		wr(f, want[i]);
	for (int round = 0; round < 3; round++) {
		memset(bm, 0, sizeof(bm));
		assert_int_equal(gd(f, round < 2 ? NOCLR : 0, BASE, NPAGES * PG, PG, bm), 0);
		expect_bits(bm, NPAGES, want, ARRAY_SIZE(want));
	}
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, NOCLR, BASE, NPAGES * PG, PG, bm), 0);
	assert_true(bits_count(bm, NPAGES) == 0);
}

static void test_get_dirty_bit_k_is_relative_to_request_iova(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 2, 67 };

	wr(f, 5);
	wr(f, 70);
	wr(f, 2); /* outside the window */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE + 3 * PG, 100 * PG, PG, bm), 0);
	expect_bits(bm, 128, want, 2);
	/* Only the window was cleared. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 3 * PG, PG, bm), 0);
	expect_bits(bm, 64, (const uint64_t[]){ 2 }, 1);
}

static void test_get_dirty_keeps_prefilled_bits(void **state)
{
	struct dfx *f = *state;
	uint8_t pre[64], got[64];

	for (size_t i = 0; i < sizeof(pre); i++)
		pre[i] = (uint8_t)(0x81 ^ (i * 37));
	wr(f, 1);
	wr(f, 300);
	memcpy(got, pre, sizeof(got));
	assert_int_equal(gd(f, 0, BASE, 512 * PG, PG, got), 0);
	for (uint64_t k = 0; k < 512; k++)
		assert_int_equal(bit_test(got, k), bit_test(pre, k) || k == 1 || k == 300);
	/* Nothing dirty: the buffer is left exactly as it was. */
	memcpy(got, pre, sizeof(got));
	assert_int_equal(gd(f, 0, BASE, 512 * PG, PG, got), 0);
	assert_memory_equal(got, pre, sizeof(pre));
}

static void test_get_dirty_bitmap_at_odd_byte_address(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 0, 9, 64, 129 };
	uint8_t raw[64];

	for (unsigned int off = 1; off < 8; off += 2) {
		for (size_t i = 0; i < ARRAY_SIZE(want); i++)
			wr(f, want[i]);
		memset(raw, 0, sizeof(raw));
		assert_int_equal(gd(f, 0, BASE, 192 * PG, PG, raw + off), 0);
		expect_bits(raw + off, 192, want, ARRAY_SIZE(want));
		for (unsigned int i = 0; i < off; i++)
			assert_int_equal(raw[i], 0);
		for (unsigned int i = off + 24; i < sizeof(raw); i++)
			assert_int_equal(raw[i], 0);
	}
}

static void test_get_dirty_writes_only_the_required_bitmap_length(void **state)
{
	struct dfx *f = *state;
	uint64_t *tight;
	uint8_t guarded[32];

	/* 65 pages need two words, and only two: the third would be in a hole. */
	assert_int_equal(bitmap_bytes(65 * PG, PG), 16);
	tight = before_hole(16);
	wr(f, 64);
	wr(f, 65); /* dirty, but outside the window */
	assert_int_equal(gd(f, 0, BASE, 65 * PG, PG, tight), 0);
	assert_true(tight[0] == 0 && tight[1] == 1);
	/* An exact word: nothing past 8 bytes changes even with pages dirty after it. */
	wr(f, 63);
	memset(guarded, 0, sizeof(guarded));
	assert_int_equal(gd(f, 0, BASE, 64 * PG, PG, guarded), 0);
	assert_int_equal(guarded[7], 0x80);
	for (int i = 8; i < 32; i++)
		assert_int_equal(guarded[i], 0);
}

static void test_get_dirty_page_size_8k_ors_two_pages(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 0, 2, 511 };

	wr(f, 1);
	wr(f, 4);
	wr(f, 5);
	wr(f, 1023);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 1024 * PG, 2 * PG, bm), 0);
	expect_bits(bm, 512, want, 3);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 1024 * PG, PG, bm), 0);
	assert_true(bits_count(bm, 1024) == 0);
}

static void test_get_dirty_page_size_2m_ors_512_pages(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 1, 7 };

	wr(f, 512 + 5);
	wr(f, 512 + 511);
	wr(f, 7 * 512);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, 2 * MiB, bm), 0);
	expect_bits(bm, 64, want, 2);
	/* Every 4 KiB IOPTE of the window was cleared. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, NPAGES * PG, PG, bm), 0);
	assert_true(bits_count(bm, NPAGES) == 0);
}

static void test_get_dirty_page_size_2k_sets_both_halves_of_a_4k_iopte(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 6, 7, 200, 201 };

	dma_write_byte(f->e.ddev, BASE + 3 * PG + 100);
	dma_write_byte(f->e.ddev, BASE + 100 * PG + 0xfff);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 256 * PG, 0x800, bm), 0);
	expect_bits(bm, 512, want, 4);
}

static void test_get_dirty_large_iopte_sets_every_covered_bit(void **state)
{
	struct env e;
	uint32_t hwpt;
	uint64_t want[512];

	(void)state;
	env_init(&e, 0, 8 * MiB); /* all x86 page sizes: 2 MiB IOPTEs */
	assert_int_equal(hwpt_alloc(e.ctx, e.ddev_id, e.ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				    &hwpt),
			 0);
	attach(&e, e.ddev_id, hwpt);
	map_fixed(e.ctx, e.ioas, e.host, 4 * MiB, BASE);
	assert_int_equal(set_dirty(e.ctx, hwpt, true), 0);
	dma_write_byte(e.ddev, BASE + 2 * MiB + 7 * PG + 5);
	for (int i = 0; i < 512; i++)
		want[i] = 512 + (uint64_t)i;
	memset(bm, 0, sizeof(bm));
	assert_int_equal(get_dirty(e.ctx, hwpt, 0, BASE, 4 * MiB, PG, bm), 0);
	expect_bits(bm, 1024, want, 512);
	env_fini(&e);
}

static void test_get_dirty_mock_format_reports_2k_iopte_granularity(void **state)
{
	struct uiommu_hwdev_cfg cfg = {
		.name = "mock-dev",
		.format = UIOMMU_PT_MOCK,
		.pgsize_bitmap = 2 * KiB,
		.aperture_last = APERTURE_LAST,
		.dirty_tracking = true,
	};
	struct uiommu_ctx *ctx = ctx_new();
	struct uiommu_hwdev *dev = NULL;
	uint32_t ioas = ioas_alloc(ctx), dev_id, hwpt, pt;
	uint8_t *host = host_alloc(MiB, 2 * MiB);

	(void)state;
	assert_int_equal(uiommu_hwdev_create(&cfg, &dev), 0);
	assert_int_equal(uiommu_ctx_bind(ctx, dev, &dev_id), 0);
	assert_int_equal(hwpt_alloc(ctx, dev_id, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt), 0);
	pt = hwpt;
	assert_int_equal(uiommu_ctx_attach(ctx, dev_id, &pt), 0);
	/* The domain's smallest page (2 KiB) is the IOAS alignment. */
	assert_true(ioas_alignment(ctx, ioas) == 2 * KiB);
	map_fixed(ctx, ioas, host, MiB, BASE);
	assert_int_equal(set_dirty(ctx, hwpt, true), 0);
	dma_write_byte(dev, BASE + 3 * 2 * KiB + 5);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(get_dirty(ctx, hwpt, NOCLR, BASE, 64 * 2 * KiB, 2 * KiB, bm), 0);
	expect_bits(bm, 64, (const uint64_t[]){ 3 }, 1);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(get_dirty(ctx, hwpt, NOCLR, BASE + 2 * KiB, 4 * 2 * KiB, 2 * KiB, bm),
			 0);
	expect_bits(bm, 64, (const uint64_t[]){ 2 }, 1);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(get_dirty(ctx, hwpt, 0, BASE, 64 * PG, PG, bm), 0);
	expect_bits(bm, 64, (const uint64_t[]){ 1 }, 1);
	/* 2 KiB aligned windows are valid here, 1 KiB ones are not. */
	assert_int_equal(get_dirty(ctx, hwpt, 0, BASE + 0x400, 2 * KiB, 0x400, bm), -EINVAL);
	uiommu_ctx_destroy(ctx);
	uiommu_hwdev_destroy(dev);
}

static void test_get_dirty_hole_returns_0_with_bits_before_the_hole_only(void **state)
{
	struct dfx *f = *state;
	uint64_t len;

	/* Areas: pages [0, 16) and [32, 48); hole [16, 32). */
	assert_int_equal(unmap(f->e.ctx, f->e.ioas, 0, U64_MAX, &len), 0);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host, 16 * PG, BASE);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host + 32 * PG, 16 * PG, BASE + 32 * PG);
	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, true), 0);
	wr(f, 3);
	wr(f, 40);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 48 * PG, PG, bm), 0);
	expect_bits(bm, 64, (const uint64_t[]){ 3 }, 1);
	/* The second area was never visited: its bit is still there. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE + 32 * PG, 16 * PG, PG, bm), 0);
	expect_bits(bm, 64, (const uint64_t[]){ 8 }, 1);
	/* A hole first: 0 and nothing reported. */
	wr(f, 3);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE - 16 * PG, 32 * PG, PG, bm), 0);
	assert_true(bits_count(bm, 64) == 0);
	assert_int_equal(gd(f, 0, BASE, 16 * PG, PG, bm), 0);
	expect_bits(bm, 64, (const uint64_t[]){ 3 }, 1);
}

/* Quirk 12 (doc/iommufd-quirks.md): length 0 at iova 0 would cover all of
 * the 64-bit space; refused as newer kernels refuse every length 0. */
static void test_get_dirty_length_0_at_iova_0_is_einval(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(gd(f, 0, 0, 0, PG, bm), -EINVAL);
}

/* Quirk 11: with tracking off the walk refuses and the ioctl still returns
 * 0, with no bits, even for a page written while tracking was on. */
static void test_get_dirty_tracking_off_returns_0_without_bits(void **state)
{
	struct dfx *f = *state;

	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, true), 0);
	wr(f, 5);
	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, false), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 16 * PG, PG, bm), 0);
	assert_true(bits_count(bm, 64) == 0);
}

static void test_get_dirty_walks_through_adjacent_areas(void **state)
{
	struct dfx *f = *state;
	const uint64_t want[] = { 7, 8, 20 };
	uint64_t len;

	assert_int_equal(unmap(f->e.ctx, f->e.ioas, 0, U64_MAX, &len), 0);
	assert_true(len == NPAGES * PG);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host, 8 * PG, BASE);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host + 8 * PG, 8 * PG, BASE + 8 * PG);
	map_fixed(f->e.ctx, f->e.ioas, f->e.host + 16 * PG, 16 * PG, BASE + 16 * PG);
	assert_int_equal(set_dirty(f->e.ctx, f->hwpt, true), 0);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		wr(f, want[i]);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(gd(f, 0, BASE, 32 * PG, PG, bm), 0);
	expect_bits(bm, 64, want, ARRAY_SIZE(want));
}

#define D(fn) cmocka_unit_test_setup_teardown(fn, dirty_setup, dirty_teardown)
#define E(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		E(test_hw_info_reports_dirty_tracking_capability),
		E(test_hw_info_data_len_in_out_and_tail_zeroed),
		E(test_hw_info_short_data_len_copies_only_a_prefix),
		E(test_hw_info_without_type_data_zeroes_the_buffer),
		E(test_hw_info_bad_data_pointer_is_efault),
		E(test_hw_info_unknown_flags_or_reserved_is_eopnotsupp),
		E(test_hw_info_bad_dev_id_is_enoent),
		E(test_hwpt_alloc_reserved_is_eopnotsupp),
		E(test_hwpt_alloc_data_type_and_len_mismatch_is_einval),
		E(test_hwpt_alloc_bad_dev_id_is_enoent),
		E(test_hwpt_alloc_unknown_pt_id_is_einval),
		E(test_hwpt_alloc_unknown_flag_is_eopnotsupp),
		E(test_hwpt_alloc_flags_are_checked_after_the_lookups),
		E(test_hwpt_alloc_write_back_fault_is_efault_and_hwpt_destroyed),
		E(test_hwpt_alloc_dirty_tracking_on_noncapable_device_is_eopnotsupp),
		E(test_hwpt_alloc_populates_existing_mappings),
		E(test_hwpt_dirty_tracking_refuses_noncapable_device_einval),
		E(test_auto_domain_has_no_dirty_ops),
		E(test_auto_attach_fill_failure_leaves_device_detached),
		E(test_hwpt_without_dirty_flag_has_no_dirty_ops),
		D(test_set_dirty_unknown_flag_is_eopnotsupp),
		D(test_set_dirty_ignores_reserved),
		D(test_set_dirty_not_a_paging_hwpt_is_enoent),
		D(test_set_dirty_enable_discards_accumulated_state),
		D(test_set_dirty_disable_stops_marking),
		D(test_get_dirty_1_unknown_flag_or_reserved_is_eopnotsupp),
		D(test_get_dirty_2_not_a_paging_hwpt_is_enoent),
		D(test_get_dirty_3_range_wrap_is_eoverflow),
		D(test_get_dirty_4_not_multiple_of_iova_alignment_is_einval),
		D(test_get_dirty_5_page_size_0_is_einval),
		D(test_get_dirty_6_not_aligned_to_page_size_is_einval),
		D(test_get_dirty_6_non_power_of_two_page_size_uses_lowest_bit),
		E(test_get_dirty_7_domain_without_dirty_ops_is_eopnotsupp),
		D(test_get_dirty_8_bad_bitmap_pointer_is_enomem),
		D(test_get_dirty_reports_exactly_the_written_pages),
		D(test_get_dirty_bits_accumulate_and_a_get_clears_them),
		D(test_get_dirty_no_clear_twice_gives_same_bits),
		D(test_get_dirty_bit_k_is_relative_to_request_iova),
		D(test_get_dirty_keeps_prefilled_bits),
		D(test_get_dirty_bitmap_at_odd_byte_address),
		D(test_get_dirty_writes_only_the_required_bitmap_length),
		D(test_get_dirty_page_size_8k_ors_two_pages),
		D(test_get_dirty_page_size_2m_ors_512_pages),
		D(test_get_dirty_page_size_2k_sets_both_halves_of_a_4k_iopte),
		cmocka_unit_test(test_get_dirty_large_iopte_sets_every_covered_bit),
		cmocka_unit_test(test_get_dirty_mock_format_reports_2k_iopte_granularity),
		D(test_get_dirty_hole_returns_0_with_bits_before_the_hole_only),
		D(test_get_dirty_length_0_at_iova_0_is_einval),
		D(test_get_dirty_tracking_off_returns_0_without_bits),
		D(test_get_dirty_walks_through_adjacent_areas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
