/* SPDX-License-Identifier: MIT */
/*
 * Nested HWPTs (HWPT_ALLOC with a nest parent and driver data), the mock
 * driver's nested domain and MD_CHECK_IOTLB: every check in the kernel's order
 * with its exact errno, the parent reference, attaching devices.
 *
 * The fixture has a context, an IOAS and a selftest mock device (made with
 * IOMMU_TEST_OP_MOCK_DOMAIN, so its driver is the mock one that nests),
 * attached to an automatic HWPT, plus a NEST_PARENT HWPT and a plain one
 * allocated by that device. DMA through a nested HWPT needs a device the test
 * can drive, so those tests make a mock-format hwdev with the mock driver's
 * nesting ops (the internal header gives them).
 */
#include "uapi_test.h"

#include "uapi/iommufd_test.h"
#include "uapi/uapi_internal.h"

#define MOCK_BASE 0x1000000ull
#define DEFAULT IOMMU_TEST_IOTLB_DEFAULT

struct nfx {
	struct uiommu_ctx *ctx;
	uint32_t ioas, stdev, auto_hwpt, idev;
	uint32_t parent, plain;
};

static long test_cmd(struct uiommu_ctx *ctx, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return io(ctx, IOMMU_TEST_CMD, cmd);
}

static int nfx_setup(void **state)
{
	struct nfx *f = calloc(1, sizeof(*f));
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN };

	assert_non_null(f);
	f->ctx = ctx_new();
	f->ioas = ioas_alloc(f->ctx);
	c.id = f->ioas;
	assert_int_equal(test_cmd(f->ctx, &c), 0);
	f->stdev = c.mock_domain.out_stdev_id;
	f->auto_hwpt = c.mock_domain.out_hwpt_id;
	f->idev = c.mock_domain.out_idev_id;
	assert_int_equal(hwpt_alloc(f->ctx, f->idev, f->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT,
				    &f->parent),
			 0);
	assert_int_equal(hwpt_alloc(f->ctx, f->idev, f->ioas, 0, &f->plain), 0);
	*state = f;
	return 0;
}

static int nfx_teardown(void **state)
{
	struct nfx *f = *state;

	uiommu_ctx_destroy(f->ctx);
	free(f);
	return 0;
}

static struct iommu_hwpt_selftest data = { .iotlb = DEFAULT };

static struct iommu_hwpt_alloc nested_cmd(uint32_t dev, uint32_t pt, uint32_t type,
					  const void *uptr, uint32_t len)
{
	return (struct iommu_hwpt_alloc){
		.size = sizeof(struct iommu_hwpt_alloc),
		.dev_id = dev,
		.pt_id = pt,
		.data_type = type,
		.data_len = len,
		.data_uptr = (uintptr_t)uptr,
	};
}

static long nested_alloc(struct uiommu_ctx *ctx, uint32_t dev, uint32_t pt, uint32_t *out)
{
	struct iommu_hwpt_alloc c = nested_cmd(dev, pt, IOMMU_HWPT_DATA_SELFTEST, &data,
					       sizeof(data));
	long rc = io(ctx, IOMMU_HWPT_ALLOC, &c);

	*out = rc ? 0 : c.out_hwpt_id;
	return rc;
}

static long check_iotlb(struct uiommu_ctx *ctx, uint32_t hwpt, uint32_t id, uint32_t want)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_MD_CHECK_IOTLB,
		.id = hwpt,
		.check_iotlb = { .id = id, .iotlb = want },
	};

	return test_cmd(ctx, &c);
}

/* The four IOTLB entries of @hwpt must be @w0..@w3. */
static void expect_iotlb(struct uiommu_ctx *ctx, uint32_t hwpt, uint32_t w0, uint32_t w1,
			 uint32_t w2, uint32_t w3)
{
	const uint32_t want[MOCK_NESTED_DOMAIN_IOTLB_NUM] = { w0, w1, w2, w3 };

	for (uint32_t i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++)
		if (check_iotlb(ctx, hwpt, i, want[i]))
			fail_msg("iotlb[%u] of hwpt %u is not %#x", i, hwpt, want[i]);
}

/* ---- HWPT_ALLOC: nested ---- */

static void test_nested_alloc_over_a_nest_parent_succeeds(void **state)
{
	struct nfx *f = *state;
	uint32_t a, b;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &b), 0);
	assert_true(a && b && a != b && a != f->parent);
	assert_int_equal(destroy(f->ctx, a), 0);
	assert_int_equal(destroy(f->ctx, b), 0);
}

static void test_nested_data_type_none_with_data_is_einval(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_NONE, &data,
					       sizeof(data));

	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
	/* And a type without data, before the device lookup too. */
	c = nested_cmd(999, f->parent, IOMMU_HWPT_DATA_SELFTEST, &data, 0);
	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
}

static void test_nested_without_data_is_eopnotsupp(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_NONE, NULL, 0);

	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
}

static void test_nested_flags_other_than_fault_id_are_eopnotsupp(void **state)
{
	struct nfx *f = *state;
	const uint32_t bad[] = { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				 1u << 4, 1u << 31 };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent,
						       IOMMU_HWPT_DATA_SELFTEST, &data,
						       sizeof(data));

		c.flags = bad[i];
		assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
		/* Before the parent checks: even over a plain HWPT. */
		c.pt_id = f->plain;
		assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
	}
}

static void test_nested_over_a_plain_or_automatic_hwpt_is_einval(void **state)
{
	struct nfx *f = *state;
	uint32_t h;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->plain, &h), -EINVAL);
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->auto_hwpt, &h), -EINVAL);
}

static void test_nested_parent_checks_come_before_the_data_type(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->plain, IOMMU_HWPT_DATA_SELFTEST + 1,
					       &data, sizeof(data));

	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
}

static void test_nested_on_nested_is_einval(void **state)
{
	struct nfx *f = *state;
	uint32_t n, h;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	assert_int_equal(nested_alloc(f->ctx, f->idev, n, &h), -EINVAL);
	assert_int_equal(destroy(f->ctx, n), 0);
}

static void test_nested_unknown_data_type_is_eopnotsupp(void **state)
{
	struct nfx *f = *state;
	const uint32_t types[] = { IOMMU_HWPT_DATA_SELFTEST + 1, IOMMU_HWPT_DATA_VTD_S1,
				   IOMMU_HWPT_DATA_ARM_SMMUV3 };

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent, types[i], &data,
						       sizeof(data));

		assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
	}
}

static void test_nested_data_len_other_than_the_struct_is_einval(void **state)
{
	struct nfx *f = *state;
	const uint32_t lens[] = { 1, 3, 5, 8, 4096 };
	uint64_t big[512] = { DEFAULT };

	/* Longer is refused even with a zero tail (iommu_copy_struct_from_user). */
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent,
						       IOMMU_HWPT_DATA_SELFTEST, big, lens[i]);

		assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EINVAL);
	}
}

static void test_nested_bad_data_pointer_is_efault(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_SELFTEST, NULL,
					       sizeof(data));

	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EFAULT);
	c.data_uptr = (uintptr_t)bad_ptr();
	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EFAULT);
}

static void test_nested_failures_leave_the_parent_destroyable(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_SELFTEST, NULL,
					       sizeof(data));
	uint32_t n;

	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EFAULT);
	c = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_SELFTEST + 1, &data, sizeof(data));
	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), -EOPNOTSUPP);
	assert_int_equal(destroy(f->ctx, f->parent), 0);
	/* No id was consumed either: the next object takes the parent's. */
	assert_int_equal(hwpt_alloc(f->ctx, f->idev, f->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &n), 0);
	assert_int_equal(n, f->parent);
}

static void test_nested_write_back_fault_is_efault_and_nothing_is_left(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_alloc *ro;

	ro = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	*ro = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data));
	assert_int_equal(mprotect(ro, page_size(), PROT_READ), 0);
	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, ro), -EFAULT);
	assert_int_equal(destroy(f->ctx, f->parent), 0);
	munmap(ro, page_size());
}

static void test_parent_destroy_is_ebusy_while_a_nested_hwpt_uses_it(void **state)
{
	struct nfx *f = *state;
	uint32_t a, b;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &b), 0);
	assert_int_equal(destroy(f->ctx, f->parent), -EBUSY);
	assert_int_equal(destroy(f->ctx, a), 0);
	assert_int_equal(destroy(f->ctx, f->parent), -EBUSY);
	assert_int_equal(destroy(f->ctx, b), 0);
	assert_int_equal(destroy(f->ctx, f->parent), 0);
	/* The IOAS is used by the plain and automatic HWPTs only now. */
	assert_int_equal(destroy(f->ctx, f->plain), 0);
}

static void test_nested_hwpt_is_not_a_paging_hwpt(void **state)
{
	struct nfx *f = *state;
	uint64_t bm[1] = { 0 };
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.check_map = { .iova = MOCK_BASE, .length = 2048, .uptr = 0 },
	};
	uint32_t n;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	assert_int_equal(set_dirty(f->ctx, n, true), -ENOENT);
	assert_int_equal(get_dirty(f->ctx, n, 0, MOCK_BASE, 4096, 4096, bm), -ENOENT);
	c.id = n;
	assert_int_equal(test_cmd(f->ctx, &c), -ENOENT);
	/* Nor an IOAS. */
	assert_int_equal(unmap(f->ctx, n, 0, U64_MAX, NULL), -ENOENT);
}

static void test_nested_on_a_device_without_nesting(void **state)
{
	struct nfx *f = *state;
	struct uiommu_hwdev *x86 = hwdev_new(false, 0);
	uint32_t x86_id = bind(f->ctx, x86), ioas2 = ioas_alloc(f->ctx), xparent, h;

	assert_int_equal(hwpt_alloc(f->ctx, x86_id, ioas2, IOMMU_HWPT_ALLOC_NEST_PARENT, &xparent),
			 0);
	/* Its driver cannot nest: refused as its allocator would. */
	assert_int_equal(nested_alloc(f->ctx, x86_id, xparent, &h), -EOPNOTSUPP);
	/* Parents made by another driver: the owner check. */
	assert_int_equal(nested_alloc(f->ctx, f->idev, xparent, &h), -EINVAL);
	assert_int_equal(nested_alloc(f->ctx, x86_id, f->parent, &h), -EINVAL);
	uiommu_ctx_unbind(f->ctx, x86_id);
	uiommu_hwdev_destroy(x86);
}

/* ---- MD_CHECK_IOTLB ---- */

static void test_nested_iotlb_starts_as_the_data_says(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_selftest other = { .iotlb = 0x1234 };
	struct iommu_hwpt_alloc c = nested_cmd(f->idev, f->parent, IOMMU_HWPT_DATA_SELFTEST,
					       &other, sizeof(other));
	uint32_t a;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	expect_iotlb(f->ctx, a, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
	assert_int_equal(io(f->ctx, IOMMU_HWPT_ALLOC, &c), 0);
	expect_iotlb(f->ctx, c.out_hwpt_id, 0x1234, 0x1234, 0x1234, 0x1234);
}

static void test_check_iotlb_mismatch_or_bad_slot_is_einval(void **state)
{
	struct nfx *f = *state;
	uint32_t a;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	assert_int_equal(check_iotlb(f->ctx, a, 0, DEFAULT + 1), -EINVAL);
	assert_int_equal(check_iotlb(f->ctx, a, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1, DEFAULT),
			 -EINVAL);
	assert_int_equal(check_iotlb(f->ctx, a, UINT32_MAX, DEFAULT), -EINVAL);
}

static void test_check_iotlb_of_a_non_nested_id_is_enoent(void **state)
{
	struct nfx *f = *state;

	assert_int_equal(check_iotlb(f->ctx, f->parent, 0, DEFAULT), -ENOENT);
	assert_int_equal(check_iotlb(f->ctx, f->ioas, 0, DEFAULT), -ENOENT);
	assert_int_equal(check_iotlb(f->ctx, 0, 0, DEFAULT), -ENOENT);
	assert_int_equal(check_iotlb(f->ctx, 999, 0, DEFAULT), -ENOENT);
}

/* ---- attaching devices ---- */

static void test_device_replace_between_nested_hwpts(void **state)
{
	struct nfx *f = *state;
	struct iommu_test_cmd r = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE };
	uint32_t a, b;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &b), 0);
	r.id = f->stdev;
	r.mock_domain_replace.pt_id = a;
	assert_int_equal(test_cmd(f->ctx, &r), 0);
	assert_int_equal(r.mock_domain_replace.pt_id, a);
	/* The automatic HWPT lost its last device. */
	assert_int_equal(destroy(f->ctx, f->auto_hwpt), -ENOENT);
	assert_int_equal(destroy(f->ctx, a), -EBUSY);
	r.mock_domain_replace.pt_id = b;
	assert_int_equal(test_cmd(f->ctx, &r), 0);
	assert_int_equal(destroy(f->ctx, b), -EBUSY);
	assert_int_equal(destroy(f->ctx, a), 0);
	/* Back to the parent, then to the IOAS (a new automatic HWPT). */
	r.mock_domain_replace.pt_id = f->parent;
	assert_int_equal(test_cmd(f->ctx, &r), 0);
	assert_int_equal(destroy(f->ctx, b), 0);
	r.mock_domain_replace.pt_id = f->ioas;
	assert_int_equal(test_cmd(f->ctx, &r), 0);
	assert_int_equal(destroy(f->ctx, f->parent), 0);
}

static void test_mock_domain_attaches_straight_to_a_nested_hwpt(void **state)
{
	struct nfx *f = *state;
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN };
	uint32_t a;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	c.id = a;
	assert_int_equal(test_cmd(f->ctx, &c), 0);
	assert_int_equal(c.mock_domain.out_hwpt_id, a);
	assert_int_equal(destroy(f->ctx, a), -EBUSY);
	assert_int_equal(destroy(f->ctx, c.mock_domain.out_stdev_id), 0);
	assert_int_equal(destroy(f->ctx, a), 0);
}

/* A mock-format device whose driver nests as the mock one does. */
static struct uiommu_hwdev *nesting_hwdev(const struct uiommu_iova_range *resv, size_t nr)
{
	struct uiommu_hwdev_cfg cfg = {
		.name = "nesting-dev",
		.format = UIOMMU_PT_MOCK,
		.aperture_start = MOCK_BASE,
		.aperture_last = (1ull << 31) - 1,
		.reserved = resv,
		.nr_reserved = nr,
	};
	struct uiommu_hwdev *dev = NULL;

	assert_int_equal(uiommu_hwdev_create(&cfg, &dev), 0);
	dev->nest_ops = &mock_nest_ops;
	return dev;
}

static void test_dma_through_a_nested_hwpt_uses_the_parents_table(void **state)
{
	struct nfx *f = *state;
	struct uiommu_hwdev *dev = nesting_hwdev(NULL, 0);
	uint32_t id = bind(f->ctx, dev), parent, n, pt;
	uint8_t *host = host_alloc(2 * MiB, 2 * MiB), b = 0x5a;

	assert_int_equal(hwpt_alloc(f->ctx, id, f->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &parent), 0);
	assert_int_equal(nested_alloc(f->ctx, id, parent, &n), 0);
	map_fixed(f->ctx, f->ioas, host, 64 * KiB, MOCK_BASE);
	pt = n;
	assert_int_equal(uiommu_ctx_attach(f->ctx, id, &pt), 0);
	assert_int_equal(pt, n);
	assert_int_equal(uiommu_device_dma_write(uiommu_hwdev_dma(dev), MOCK_BASE + 4097, &b, 1),
			 0);
	assert_int_equal(host[4097], 0x5a);
	/* Unmapping from the parent's IOAS takes it away from the nested HWPT too. */
	assert_int_equal(unmap(f->ctx, f->ioas, MOCK_BASE, 64 * KiB, NULL), 0);
	assert_int_not_equal(uiommu_device_dma_write(uiommu_hwdev_dma(dev), MOCK_BASE, &b, 1), 0);
	uiommu_ctx_unbind(f->ctx, id);
	uiommu_hwdev_destroy(dev);
	munmap(host, 2 * MiB);
}

static void test_attaching_to_a_nested_hwpt_reserves_in_the_parents_ioas(void **state)
{
	struct nfx *f = *state;
	static const struct uiommu_iova_range resv = { 0x2000000, 0x2ffffff };
	struct uiommu_hwdev *dev = nesting_hwdev(&resv, 1);
	uint32_t id = bind(f->ctx, dev), parent, n, pt;
	uint8_t *host = host_alloc(2 * MiB, 2 * MiB);
	uint64_t iova = resv.start;

	assert_int_equal(hwpt_alloc(f->ctx, id, f->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, &parent), 0);
	assert_int_equal(nested_alloc(f->ctx, id, parent, &n), 0);
	pt = n;
	assert_int_equal(uiommu_ctx_attach(f->ctx, id, &pt), 0);
	assert_int_equal(map_va(f->ctx, f->ioas, MAP_FIXED_RW, host, 64 * KiB, &iova), -EINVAL);
	assert_int_equal(uiommu_ctx_detach(f->ctx, id), 0);
	assert_int_equal(map_va(f->ctx, f->ioas, MAP_FIXED_RW, host, 64 * KiB, &iova), 0);
	/* With the range mapped, attaching to the nested HWPT again is refused. */
	pt = n;
	assert_int_equal(uiommu_ctx_attach(f->ctx, id, &pt), -EADDRINUSE);
	uiommu_ctx_unbind(f->ctx, id);
	uiommu_hwdev_destroy(dev);
	munmap(host, 2 * MiB);
}

static void test_teardown_with_nested_hwpts_and_attached_devices(void **state)
{
	struct nfx *f = *state;
	struct iommu_test_cmd r = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, .id = f->stdev };
	uint32_t a, b;

	/* Everything is left for the context's teardown (leaks show under ASan). */
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &b), 0);
	r.mock_domain_replace.pt_id = a;
	assert_int_equal(test_cmd(f->ctx, &r), 0);
}

#define N(fn) cmocka_unit_test_setup_teardown(fn, nfx_setup, nfx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		N(test_nested_alloc_over_a_nest_parent_succeeds),
		N(test_nested_data_type_none_with_data_is_einval),
		N(test_nested_without_data_is_eopnotsupp),
		N(test_nested_flags_other_than_fault_id_are_eopnotsupp),
		N(test_nested_over_a_plain_or_automatic_hwpt_is_einval),
		N(test_nested_parent_checks_come_before_the_data_type),
		N(test_nested_on_nested_is_einval),
		N(test_nested_unknown_data_type_is_eopnotsupp),
		N(test_nested_data_len_other_than_the_struct_is_einval),
		N(test_nested_bad_data_pointer_is_efault),
		N(test_nested_failures_leave_the_parent_destroyable),
		N(test_nested_write_back_fault_is_efault_and_nothing_is_left),
		N(test_parent_destroy_is_ebusy_while_a_nested_hwpt_uses_it),
		N(test_nested_hwpt_is_not_a_paging_hwpt),
		N(test_nested_on_a_device_without_nesting),
		N(test_nested_iotlb_starts_as_the_data_says),
		N(test_check_iotlb_mismatch_or_bad_slot_is_einval),
		N(test_check_iotlb_of_a_non_nested_id_is_enoent),
		N(test_device_replace_between_nested_hwpts),
		N(test_mock_domain_attaches_straight_to_a_nested_hwpt),
		N(test_dma_through_a_nested_hwpt_uses_the_parents_table),
		N(test_attaching_to_a_nested_hwpt_reserves_in_the_parents_ioas),
		N(test_teardown_with_nested_hwpts_and_attached_devices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
