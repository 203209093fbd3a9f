/* SPDX-License-Identifier: MIT */
/*
 * Nested HWPTs (HWPT_ALLOC with a nest parent and driver data), the mock
 * driver's nested domain and MD_CHECK_IOTLB, and HWPT_INVALIDATE: every check
 * in the kernel's order with its exact errno, the parent reference, attaching
 * devices, and the entry_num write-back of a partly handled request.
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
#define INV_SELFTEST IOMMU_HWPT_INVALIDATE_DATA_SELFTEST

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

static long invalidate(struct uiommu_ctx *ctx, uint32_t hwpt, uint32_t type, const void *reqs,
		       uint32_t entry_len, uint32_t *num)
{
	struct iommu_hwpt_invalidate c = {
		.size = sizeof(c),
		.hwpt_id = hwpt,
		.data_uptr = (uintptr_t)reqs,
		.data_type = type,
		.entry_len = entry_len,
		.entry_num = *num,
	};
	long rc = io(ctx, IOMMU_HWPT_INVALIDATE, &c);

	*num = c.entry_num;
	return rc;
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

/* ---- HWPT_INVALIDATE ---- */

static void test_invalidate_reserved_is_eopnotsupp_and_entry_num_is_0(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { 0 };
	struct iommu_hwpt_invalidate c = {
		.size = sizeof(c),
		.data_uptr = (uintptr_t)&req,
		.data_type = INV_SELFTEST,
		.entry_len = sizeof(req),
		.entry_num = 1,
		.__reserved = 1,
	};
	uint32_t n;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	c.hwpt_id = n;
	assert_int_equal(io(f->ctx, IOMMU_HWPT_INVALIDATE, &c), -EOPNOTSUPP);
	assert_int_equal(c.entry_num, 0);
	expect_iotlb(f->ctx, n, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
}

static void test_invalidate_array_sanity_is_einval_before_the_lookup(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { 0 };
	uint32_t n, num, ids[2];

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	ids[0] = n;
	ids[1] = 999;
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		num = 1;
		assert_int_equal(invalidate(f->ctx, ids[i], INV_SELFTEST, NULL, sizeof(req), &num),
				 -EINVAL);
		assert_int_equal(num, 0);
		num = 1;
		assert_int_equal(invalidate(f->ctx, ids[i], INV_SELFTEST, &req, 0, &num), -EINVAL);
		num = 1;
		assert_int_equal(invalidate(f->ctx, ids[i], INV_SELFTEST, &req,
					    (uint32_t)page_size() + 1, &num),
				 -EINVAL);
		num = (1u << 19) + 1;
		assert_int_equal(invalidate(f->ctx, ids[i], INV_SELFTEST, &req, sizeof(req), &num),
				 -EINVAL);
		assert_int_equal(num, 0);
	}
}

static void test_invalidate_without_entries_probes_the_data_type(void **state)
{
	struct nfx *f = *state;
	uint32_t n, num = 0;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	/* data_uptr and entry_len are not looked at. */
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, NULL, 0, &num), 0);
	assert_int_equal(num, 0);
	assert_int_equal(invalidate(f->ctx, n, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, NULL,
				    0, &num),
			 -EINVAL);
	assert_int_equal(invalidate(f->ctx, n, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, bad_ptr(), 0,
				    &num),
			 -EINVAL);
}

static void test_invalidate_of_a_non_nested_hwpt_is_enoent(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { 0 };
	const uint32_t ids[] = { f->parent, f->plain, f->auto_hwpt, f->ioas, f->idev, 0 };

	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		uint32_t num = 1;

		assert_int_equal(invalidate(f->ctx, ids[i], INV_SELFTEST, &req, sizeof(req), &num),
				 -ENOENT);
		assert_int_equal(num, 0);
	}
}

static void test_invalidate_wrong_data_type_is_einval(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { 0 };
	uint32_t n, num = 1;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	assert_int_equal(invalidate(f->ctx, n, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, &req,
				    sizeof(req), &num),
			 -EINVAL);
	assert_int_equal(num, 0);
	expect_iotlb(f->ctx, n, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
}

static void test_invalidate_entry_len_other_than_the_struct_is_einval(void **state)
{
	struct nfx *f = *state;
	uint64_t reqs[8] = { 0 };
	const uint32_t lens[] = { 1, 4, 7, 9, 16 };
	uint32_t n;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		uint32_t num = 1;

		assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, reqs, lens[i], &num),
				 -EINVAL);
		assert_int_equal(num, 0);
	}
	expect_iotlb(f->ctx, n, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
}

static void test_invalidate_unknown_flags_is_eopnotsupp(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { .flags = 0xffffffff };
	uint32_t n, num = 1;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, &req, sizeof(req), &num),
			 -EOPNOTSUPP);
	assert_int_equal(num, 0);
	req.flags = 2;
	num = 1;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, &req, sizeof(req), &num),
			 -EOPNOTSUPP);
	expect_iotlb(f->ctx, n, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
}

static void test_invalidate_bad_iotlb_id_is_einval_even_with_flag_all(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = {
		.iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1,
	};
	uint32_t n, num = 1;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, &req, sizeof(req), &num), -EINVAL);
	assert_int_equal(num, 0);
	req.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL;
	num = 1;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, &req, sizeof(req), &num), -EINVAL);
	assert_int_equal(num, 0);
	expect_iotlb(f->ctx, n, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
}

static void test_invalidate_entries_are_handled_in_order(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest reqs[2] = { { .iotlb_id = 2 }, { .iotlb_id = 3 } };
	uint32_t n, num = 1;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	reqs[0].iotlb_id = 1;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, reqs, sizeof(reqs[0]), &num), 0);
	assert_int_equal(num, 1);
	expect_iotlb(f->ctx, n, DEFAULT, 0, DEFAULT, DEFAULT);
	reqs[0].iotlb_id = 2;
	num = 2;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, reqs, sizeof(reqs[0]), &num), 0);
	assert_int_equal(num, 2);
	expect_iotlb(f->ctx, n, DEFAULT, 0, 0, 0);
}

static void test_invalidate_flag_all_zeroes_every_entry_of_that_hwpt_only(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { .flags = IOMMU_TEST_INVALIDATE_FLAG_ALL,
						      .iotlb_id = 3 };
	uint32_t a, b, num = 1;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &a), 0);
	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &b), 0);
	assert_int_equal(invalidate(f->ctx, b, INV_SELFTEST, &req, sizeof(req), &num), 0);
	assert_int_equal(num, 1);
	expect_iotlb(f->ctx, b, 0, 0, 0, 0);
	expect_iotlb(f->ctx, a, DEFAULT, DEFAULT, DEFAULT, DEFAULT);
}

static void test_invalidate_partial_writes_back_the_number_handled(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest reqs[3] = {
		{ .iotlb_id = 0 }, { .flags = 0xffffffff, .iotlb_id = 1 }, { .iotlb_id = 2 }
	};
	uint32_t n, num = 3;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, reqs, sizeof(reqs[0]), &num),
			 -EOPNOTSUPP);
	assert_int_equal(num, 1);
	expect_iotlb(f->ctx, n, 0, DEFAULT, DEFAULT, DEFAULT);
	/* A bad iotlb_id second. */
	reqs[0].iotlb_id = 3;
	reqs[1].flags = 0;
	reqs[1].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
	num = 3;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, reqs, sizeof(reqs[0]), &num),
			 -EINVAL);
	assert_int_equal(num, 1);
	expect_iotlb(f->ctx, n, 0, DEFAULT, DEFAULT, 0);
}

static void test_invalidate_unreadable_entry_is_efault_after_the_readable_ones(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest *reqs = before_hole(2 * sizeof(*reqs));
	uint32_t n, num = 3;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	reqs[0].iotlb_id = 1;
	reqs[1].iotlb_id = 2;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, reqs, sizeof(*reqs), &num), -EFAULT);
	assert_int_equal(num, 2);
	expect_iotlb(f->ctx, n, DEFAULT, 0, 0, DEFAULT);
	num = 1;
	assert_int_equal(invalidate(f->ctx, n, INV_SELFTEST, bad_ptr(), sizeof(*reqs), &num),
			 -EFAULT);
	assert_int_equal(num, 0);
}

static void test_invalidate_write_back_fault_is_efault(void **state)
{
	struct nfx *f = *state;
	struct iommu_hwpt_invalidate_selftest req = { .iotlb_id = 0 };
	struct iommu_hwpt_invalidate *ro;
	uint32_t n;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	ro = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	*ro = (struct iommu_hwpt_invalidate){ .size = sizeof(*ro),
					      .hwpt_id = n,
					      .data_uptr = (uintptr_t)&req,
					      .data_type = INV_SELFTEST,
					      .entry_len = sizeof(req),
					      .entry_num = 1 };
	assert_int_equal(mprotect(ro, page_size(), PROT_READ), 0);
	/* The entry was handled; only the report of it failed (the kernel's order). */
	assert_int_equal(io(f->ctx, IOMMU_HWPT_INVALIDATE, ro), -EFAULT);
	expect_iotlb(f->ctx, n, 0, DEFAULT, DEFAULT, DEFAULT);
	munmap(ro, page_size());
}

static void test_invalidate_write_back_is_truncated_to_size(void **state)
{
	struct nfx *f = *state;
	uint64_t raw[8];
	struct iommu_hwpt_invalidate *c = (void *)raw;
	uint32_t n;

	assert_int_equal(nested_alloc(f->ctx, f->idev, f->parent, &n), 0);
	memset(raw, 0xa5, sizeof(raw));
	memset(raw, 0, sizeof(*c));
	c->size = sizeof(*c);
	c->hwpt_id = n;
	c->data_type = INV_SELFTEST;
	assert_int_equal(io(f->ctx, IOMMU_HWPT_INVALIDATE, c), 0);
	for (size_t i = sizeof(*c); i < sizeof(raw); i++)
		assert_int_equal(((uint8_t *)raw)[i], 0xa5);
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
		N(test_invalidate_reserved_is_eopnotsupp_and_entry_num_is_0),
		N(test_invalidate_array_sanity_is_einval_before_the_lookup),
		N(test_invalidate_without_entries_probes_the_data_type),
		N(test_invalidate_of_a_non_nested_hwpt_is_enoent),
		N(test_invalidate_wrong_data_type_is_einval),
		N(test_invalidate_entry_len_other_than_the_struct_is_einval),
		N(test_invalidate_unknown_flags_is_eopnotsupp),
		N(test_invalidate_bad_iotlb_id_is_einval_even_with_flag_all),
		N(test_invalidate_entries_are_handled_in_order),
		N(test_invalidate_flag_all_zeroes_every_entry_of_that_hwpt_only),
		N(test_invalidate_partial_writes_back_the_number_handled),
		N(test_invalidate_unreadable_entry_is_efault_after_the_readable_ones),
		N(test_invalidate_write_back_fault_is_efault),
		N(test_invalidate_write_back_is_truncated_to_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
