/* SPDX-License-Identifier: MIT */
/*
 * iommufd conformance, uapi-spec §3.3-§3.9: IOAS_ALLOC, the IOVA space
 * (reserved, allowed, alignment), IOVA_RANGES, ALLOW_IOVAS, MAP (each check
 * of the §3.7 list, in order), MAP_FILE, COPY, UNMAP and OPTION.
 *
 * Test names carry the rule: test_map_7_fixed_overlap_is_eexist is check 7 of
 * the §3.7 MAP list. "Order" assertions violate two checks at once and expect
 * the errno of the earlier one.
 */
#include <sys/syscall.h>

#include "uapi_test.h"

#define PG page_size()
#define A1 0x100000ull /* an ordinary IOVA */

static struct iommu_ioas_map raw_map(uint32_t ioas, uint32_t flags, const void *va, uint64_t len,
				     uint64_t iova)
{
	return (struct iommu_ioas_map){ .size = sizeof(struct iommu_ioas_map),
					.flags = flags,
					.ioas_id = ioas,
					.user_va = (uintptr_t)va,
					.length = len,
					.iova = iova };
}

static long map_raw(struct env *e, struct iommu_ioas_map *m)
{
	return io(e->ctx, IOMMU_IOAS_MAP, m);
}

/* A HWPT on e->ioas (x86, 4 KiB smallest page): alignment becomes 4096. */
static uint32_t add_domain(struct env *e)
{
	uint32_t hwpt = 0;

	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), 0);
	assert_int_not_equal(hwpt, 0);
	return hwpt;
}

static void expect_ranges(struct env *e, uint32_t ioas, const struct iommu_iova_range *want,
			  uint32_t n, uint64_t align)
{
	struct iommu_iova_range r[8];
	uint32_t got;
	uint64_t a;

	assert_int_equal(iova_ranges(e->ctx, ioas, r, 8, &got, &a), 0);
	assert_int_equal(got, n);
	assert_true(a == align);
	for (uint32_t i = 0; i < n; i++) {
		assert_true(r[i].start == want[i].start);
		assert_true(r[i].last == want[i].last);
	}
}

static const struct iommu_iova_range whole[] = { { 0, U64_MAX } };
static const struct iommu_iova_range aperture[] = { { 0, APERTURE_LAST } };
static const struct iommu_iova_range attached[] = { { 0, RESV_START - 1 },
						    { RESV_LAST + 1, APERTURE_LAST } };

/* ---- §3.3 IOMMU_IOAS_ALLOC ---- */

static void test_ioas_alloc_nonzero_flags_is_eopnotsupp(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd), .flags = 1 };

	(void)state;
	assert_int_equal(io(ctx, IOMMU_IOAS_ALLOC, &cmd), -EOPNOTSUPP);
	cmd.flags = 0x80000000u;
	assert_int_equal(io(ctx, IOMMU_IOAS_ALLOC, &cmd), -EOPNOTSUPP);
	assert_int_equal(cmd.out_ioas_id, 0);
	assert_int_equal(destroy(ctx, 1), -ENOENT);
	uiommu_ctx_destroy(ctx);
}

static void test_ioas_alloc_fresh_ioas_state(void **state)
{
	struct env *e = *state;
	uint64_t v = 0xdead, iova = 0;

	/* No reserved ranges, alignment 1, huge pages on, no allowed ranges. */
	expect_ranges(e, e->ioas, whole, 1, 1);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, e->ioas, &v),
			 0);
	assert_true(v == 1);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == PG);
}

/* ---- §3.4 reserved, allowed, alignment ---- */

static void test_iova_space_hwpt_reserves_aperture_and_raises_alignment(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = add_domain(e);

	expect_ranges(e, e->ioas, aperture, 1, 4096);
	assert_int_equal(destroy(e->ctx, hwpt), 0);
	expect_ranges(e, e->ioas, whole, 1, 1);
}

static void test_iova_space_attach_reserves_device_regions_detach_releases(void **state)
{
	struct env *e = *state;
	uint32_t hwpt = add_domain(e);

	attach(e, e->ddev_id, hwpt);
	expect_ranges(e, e->ioas, attached, 2, 4096);
	assert_int_equal(uiommu_ctx_detach(e->ctx, e->ddev_id), 0);
	expect_ranges(e, e->ioas, aperture, 1, 4096);
	assert_int_equal(destroy(e->ctx, hwpt), 0);
	expect_ranges(e, e->ioas, whole, 1, 1);
}

static void test_iova_space_area_in_device_region_blocks_attach_eaddrinuse(void **state)
{
	struct env *e = *state;
	uint32_t pt = e->ioas;

	map_fixed(e->ctx, e->ioas, e->host, PG, RESV_START + 0x10000);
	assert_int_equal(uiommu_ctx_attach(e->ctx, e->pdev_id, &pt), -EADDRINUSE);
	assert_int_equal(unmap(e->ctx, e->ioas, RESV_START + 0x10000, PG, NULL), 0);
	attach(e, e->pdev_id, e->ioas);
}

static void test_iova_space_area_outside_aperture_blocks_hwpt_eaddrinuse(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	map_fixed(e->ctx, e->ioas, e->host, PG, 1ull << 40);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), -EADDRINUSE);
	expect_ranges(e, e->ioas, whole, 1, 1);
}

static void test_iova_space_allowed_range_blocks_reservation_eaddrinuse(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range over_resv = { RESV_START - 0x10000, RESV_START + 0xffff };
	const struct iommu_iova_range beyond = { 1ull << 40, (1ull << 40) + 0xffff };
	uint32_t pt = e->ioas, hwpt;

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &over_resv, 1), 0);
	assert_int_equal(uiommu_ctx_attach(e->ctx, e->pdev_id, &pt), -EADDRINUSE);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, &beyond, 1), 0);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), -EADDRINUSE);
}

static void test_iova_space_unaligned_area_blocks_domain_eaddrinuse(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	/* Byte-granular IOVA is fine at alignment 1... */
	map_fixed(e->ctx, e->ioas, e->host, PG, A1 + 1);
	/* ...and keeps a 4 KiB domain out. */
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), -EADDRINUSE);
	assert_int_equal(unmap(e->ctx, e->ioas, A1 + 1, PG, NULL), 0);
	/* So does a source page offset that is not a multiple of 4096. */
	map_fixed(e->ctx, e->ioas, e->host + 0x800, PG, A1 + 0x800);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), -EADDRINUSE);
	assert_int_equal(unmap(e->ctx, e->ioas, A1 + 0x800, PG, NULL), 0);
	add_domain(e);
}

static void test_iova_space_allowed_ranges_do_not_restrict_fixed_maps(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x40000000, 0x4000ffff };

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &r, 1), 0);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	map_fixed(e->ctx, e->ioas, e->host, PG, 0x3ffff000);
}

/* ---- §3.5 IOMMU_IOAS_IOVA_RANGES ---- */

static void test_iova_ranges_fresh_ioas_is_one_full_range_align_1(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range r[2];
	uint32_t n;
	uint64_t align;

	memset(r, 0xa5, sizeof(r));
	assert_int_equal(iova_ranges(e->ctx, e->ioas, r, 2, &n, &align), 0);
	assert_int_equal(n, 1);
	assert_true(align == 1);
	assert_true(r[0].start == 0 && r[0].last == U64_MAX);
	assert_true(r[1].start == 0xa5a5a5a5a5a5a5a5ull && r[1].last == 0xa5a5a5a5a5a5a5a5ull);
}

static void test_iova_ranges_capacity_0_is_emsgsize_with_count(void **state)
{
	struct env *e = *state;
	uint32_t n;
	uint64_t align;

	/* Nothing fits, so the (bad) array pointer is never written. */
	assert_int_equal(iova_ranges(e->ctx, e->ioas, bad_ptr(), 0, &n, &align), -EMSGSIZE);
	assert_int_equal(n, 1);
	assert_true(align == 1);
}

static void test_iova_ranges_short_capacity_writes_only_what_fits(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range r[3];
	uint32_t n;
	uint64_t align;

	attach(e, e->pdev_id, e->ioas);
	memset(r, 0xa5, sizeof(r));
	assert_int_equal(iova_ranges(e->ctx, e->ioas, r, 1, &n, &align), -EMSGSIZE);
	assert_int_equal(n, 2);
	assert_true(align == 4096);
	assert_true(r[0].start == 0 && r[0].last == RESV_START - 1);
	assert_true(r[1].start == 0xa5a5a5a5a5a5a5a5ull && r[1].last == 0xa5a5a5a5a5a5a5a5ull);
	/* Aperture minus the reserved region. */
	expect_ranges(e, e->ioas, attached, 2, 4096);
}

static void test_iova_ranges_reserved_field_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range r[2];
	struct iommu_ioas_iova_ranges cmd = { .size = sizeof(cmd),
					      .ioas_id = e->ioas,
					      .num_iovas = 2,
					      .__reserved = 1,
					      .allowed_iovas = (uintptr_t)r };

	assert_int_equal(io(e->ctx, IOMMU_IOAS_IOVA_RANGES, &cmd), -EOPNOTSUPP);
	/* Before the id lookup. */
	cmd.ioas_id = 999;
	assert_int_equal(io(e->ctx, IOMMU_IOAS_IOVA_RANGES, &cmd), -EOPNOTSUPP);
}

static void test_iova_ranges_bad_id_is_enoent(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range r[2];
	uint32_t n;
	uint64_t align;

	assert_int_equal(iova_ranges(e->ctx, 999, r, 2, &n, &align), -ENOENT);
	assert_int_equal(iova_ranges(e->ctx, 0, r, 2, &n, &align), -ENOENT);
}

static void test_iova_ranges_bad_array_pointer_is_efault(void **state)
{
	struct env *e = *state;
	uint32_t n;
	uint64_t align;

	assert_int_equal(iova_ranges(e->ctx, e->ioas, bad_ptr(), 1, &n, &align), -EFAULT);
	assert_int_equal(iova_ranges(e->ctx, e->ioas, NULL, 4, &n, &align), -EFAULT);
}

static void test_iova_ranges_ignore_allowed_ranges(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x40000000, 0x4000ffff };

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &r, 1), 0);
	expect_ranges(e, e->ioas, whole, 1, 1);
}

/* ---- §3.6 IOMMU_IOAS_ALLOW_IOVAS ---- */

static void test_allow_iovas_reserved_field_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x1000, 0x1fff };
	struct iommu_ioas_allow_iovas cmd = { .size = sizeof(cmd),
					      .ioas_id = e->ioas,
					      .num_iovas = 1,
					      .__reserved = 1,
					      .allowed_iovas = (uintptr_t)&r };

	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOW_IOVAS, &cmd), -EOPNOTSUPP);
	cmd.ioas_id = 999;
	assert_int_equal(io(e->ctx, IOMMU_IOAS_ALLOW_IOVAS, &cmd), -EOPNOTSUPP);
}

static void test_allow_iovas_bad_id_is_enoent(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x1000, 0x1fff };

	assert_int_equal(allow_iovas(e->ctx, 999, &r, 1), -ENOENT);
	assert_int_equal(allow_iovas(e->ctx, 0, &r, 1), -ENOENT);
}

static void test_allow_iovas_element_fault_is_efault(void **state)
{
	struct env *e = *state;
	struct iommu_iova_range *r = before_hole(sizeof(*r));

	assert_int_equal(allow_iovas(e->ctx, e->ioas, bad_ptr(), 1), -EFAULT);
	/* The first element is readable, the second lies in the hole. */
	r->start = 0x1000;
	r->last = 0x1fff;
	assert_int_equal(allow_iovas(e->ctx, e->ioas, r, 2), -EFAULT);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, r, 1), 0);
}

static void test_allow_iovas_start_not_below_last_is_einval(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range one = { 0x1000, 0x1000 };
	const struct iommu_iova_range rev = { 0x2000, 0x1000 };
	const struct iommu_iova_range two = { 0x1000, 0x1001 };

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &one, 1), -EINVAL);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, &rev, 1), -EINVAL);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, &two, 1), 0);
}

static void test_allow_iovas_overlapping_entries_is_einval(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range ovl[] = { { 0x1000, 0x2fff }, { 0x2000, 0x3fff } };
	const struct iommu_iova_range dup[] = { { 0x1000, 0x1fff }, { 0x1000, 0x1fff } };
	const struct iommu_iova_range inner[] = { { 0x1000, 0x8fff }, { 0x2000, 0x2fff } };
	const struct iommu_iova_range adj[] = { { 0x1000, 0x1fff }, { 0x2000, 0x2fff } };

	assert_int_equal(allow_iovas(e->ctx, e->ioas, ovl, 2), -EINVAL);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, dup, 2), -EINVAL);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, inner, 2), -EINVAL);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, adj, 2), 0);
}

static void test_allow_iovas_over_reserved_is_eaddrinuse_old_list_kept(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range old = { 0x40000000, 0x4fffffff };
	const struct iommu_iova_range bad[] = { { 0x50000000, 0x5fffffff },
						{ RESV_START, RESV_START + 0xffff } };
	uint64_t iova = 0;

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &old, 1), 0);
	attach(e, e->pdev_id, e->ioas);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, bad, 2), -EADDRINUSE);
	/* The old list still steers automatic allocation. */
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == 0x40000000);
}

static void test_allow_iovas_restrict_automatic_allocation(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x40000000, 0x4000ffff };
	uint64_t iova = 0;

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &r, 1), 0);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == 0x40000000);
	/* 60 KiB are left: 64 KiB do not fit. */
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, 0x10000, &iova), -ENOSPC);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == 0x40000000 + PG);
}

static void test_allow_iovas_zero_entries_clears_the_list(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x40000000, 0x4000ffff };
	uint64_t iova = 0;

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &r, 1), 0);
	assert_int_equal(allow_iovas(e->ctx, e->ioas, bad_ptr(), 0), 0);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == PG);
}

/* ---- §3.7 IOMMU_IOAS_MAP, checks 1-10 ---- */

static void test_map_1_unknown_flag_or_reserved_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_map m = raw_map(e->ioas, MAP_RW | (1u << 3), e->host, PG, 0);

	assert_int_equal(map_raw(e, &m), -EOPNOTSUPP);
	m = raw_map(e->ioas, MAP_RW | 0x80000000u, e->host, PG, 0);
	assert_int_equal(map_raw(e, &m), -EOPNOTSUPP);
	m = raw_map(e->ioas, MAP_RW, e->host, PG, 0);
	m.__reserved = 1;
	assert_int_equal(map_raw(e, &m), -EOPNOTSUPP);
	/* Order: before EOVERFLOW (2), EINVAL (3), ENOENT (4). */
	m = raw_map(999, 1u << 3, e->host, U64_MAX, U64_MAX);
	assert_int_equal(map_raw(e, &m), -EOPNOTSUPP);
}

static void test_map_2_iova_or_length_u64_max_is_eoverflow(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_map m = raw_map(e->ioas, MAP_FIXED_RW, e->host, PG, U64_MAX);

	assert_int_equal(map_raw(e, &m), -EOVERFLOW);
	m = raw_map(e->ioas, MAP_RW, e->host, PG, U64_MAX); /* even when not FIXED */
	assert_int_equal(map_raw(e, &m), -EOVERFLOW);
	m = raw_map(e->ioas, MAP_RW, e->host, U64_MAX, 0);
	assert_int_equal(map_raw(e, &m), -EOVERFLOW);
	/* Order: before EINVAL (3) and ENOENT (4). */
	m = raw_map(999, 0, e->host, U64_MAX, 0);
	assert_int_equal(map_raw(e, &m), -EOVERFLOW);
}

static void test_map_3_neither_read_nor_write_is_einval(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_map m = raw_map(e->ioas, IOMMU_IOAS_MAP_FIXED_IOVA, e->host, PG, A1);

	assert_int_equal(map_raw(e, &m), -EINVAL);
	m = raw_map(e->ioas, 0, e->host, PG, 0);
	assert_int_equal(map_raw(e, &m), -EINVAL);
	/* Order: before ENOENT (4). */
	m = raw_map(999, 0, e->host, PG, 0);
	assert_int_equal(map_raw(e, &m), -EINVAL);
	/* Either permission alone is enough. */
	m = raw_map(e->ioas, IOMMU_IOAS_MAP_READABLE, e->host, PG, 0);
	assert_int_equal(map_raw(e, &m), 0);
	m = raw_map(e->ioas, IOMMU_IOAS_MAP_WRITEABLE, e->host, PG, 0);
	assert_int_equal(map_raw(e, &m), 0);
}

static void test_map_4_bad_ioas_is_enoent(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_map m = raw_map(999, MAP_RW, e->host, PG, 0);

	assert_int_equal(map_raw(e, &m), -ENOENT);
	m = raw_map(0, MAP_RW, e->host, PG, 0);
	assert_int_equal(map_raw(e, &m), -ENOENT);
	/* Order: before length 0 (5) and user_va wrap (5). */
	m = raw_map(999, MAP_RW, e->host, 0, 0);
	assert_int_equal(map_raw(e, &m), -ENOENT);
	m = raw_map(999, MAP_RW, (void *)(uintptr_t)(U64_MAX - 0xfff), 0x2000, 0);
	assert_int_equal(map_raw(e, &m), -ENOENT);
}

static void test_map_5_user_va_wrap_is_eoverflow_then_bad_length_einval(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_map m =
		raw_map(e->ioas, MAP_FIXED_RW, (void *)(uintptr_t)(U64_MAX - 0xfff), 0x2000, A1);

	assert_int_equal(map_raw(e, &m), -EOVERFLOW);
	m = raw_map(e->ioas, MAP_FIXED_RW, e->host, 0, A1);
	assert_int_equal(map_raw(e, &m), -EINVAL);
	m = raw_map(e->ioas, MAP_RW, e->host, 0, 0);
	assert_int_equal(map_raw(e, &m), -EINVAL);
	/* length > SIZE_MAX - PAGE_SIZE, without wrapping user_va + length. */
	m = raw_map(e->ioas, MAP_RW, NULL, U64_MAX - 1, 0);
	assert_int_equal(map_raw(e, &m), -EINVAL);
	m = raw_map(e->ioas, MAP_RW, NULL, U64_MAX - PG + 1, 0);
	assert_int_equal(map_raw(e, &m), -EINVAL);
}

static void test_map_6_length_not_multiple_of_alignment_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t v = 0, iova = 0;

	/* Huge pages off: alignment PAGE_SIZE without any domain. */
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG + PG / 2, &iova), -EINVAL);
	iova = A1;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG + 1, &iova), -EINVAL);
	/* Order: before the FIXED overlap check (7). */
	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	iova = A1;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG / 2, &iova), -EINVAL);
	/* With a domain (alignment 4096) instead. */
	v = 1;
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	add_domain(e);
	iova = 0x200000;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 0x1800, &iova), -EINVAL);
}

static void test_map_7_fixed_unaligned_iova_is_einval_with_domain(void **state)
{
	struct env *e = *state;
	uint64_t iova = A1 + 0x800;

	add_domain(e);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EINVAL);
	iova = A1 + 1;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EINVAL);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
}

static void test_map_7_fixed_unaligned_iova_is_fine_without_domain(void **state)
{
	struct env *e = *state;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1 + 0x801);
}

static void test_map_7_fixed_end_wrap_is_eoverflow(void **state)
{
	struct env *e = *state;
	uint64_t iova = U64_MAX - 0xfff;

	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 0x2000, &iova),
			 -EOVERFLOW);
	/* Ending exactly at U64_MAX - 1 does not wrap. */
	iova = U64_MAX - 0x1000;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 0x1000, &iova), 0);
}

static void test_map_7_fixed_into_reserved_range_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t iova;

	attach(e, e->pdev_id, e->ioas);
	iova = RESV_START;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EINVAL);
	iova = RESV_START - PG; /* straddles */
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 2 * PG, &iova), -EINVAL);
	iova = RESV_LAST + 1 - PG;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 2 * PG, &iova), -EINVAL);
	iova = APERTURE_LAST + 1; /* outside the aperture */
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EINVAL);
	map_fixed(e->ctx, e->ioas, e->host, PG, RESV_START - PG);
	map_fixed(e->ctx, e->ioas, e->host, PG, RESV_LAST + 1);
}

static void test_map_7_fixed_overlap_is_eexist(void **state)
{
	struct env *e = *state;
	uint64_t iova;

	map_fixed(e->ctx, e->ioas, e->host, 2 * PG, A1);
	iova = A1;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EEXIST);
	iova = A1 + PG;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 2 * PG, &iova), -EEXIST);
	iova = A1 - PG;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, 2 * PG, &iova), -EEXIST);
	iova = A1 + 2 * PG - 1;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host, PG, &iova), -EEXIST);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1 + 2 * PG);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1 - PG);
}

static void test_map_7_auto_huge_length_is_eoverflow(void **state)
{
	struct env *e = *state;
	uint64_t iova = 0;

	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, 1ull << 63, &iova), -EOVERFLOW);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, U64_MAX / 2, &iova),
			 -EOVERFLOW);
}

static void test_map_7_auto_without_space_is_enospc(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0x40000000, 0x40000fff };
	uint64_t iova = 0;

	assert_int_equal(allow_iovas(e->ctx, e->ioas, &r, 1), 0);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, 2 * PG, &iova), -ENOSPC);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == 0x40000000);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), -ENOSPC);
}

static void test_map_7_auto_alignment_below_iova_alignment_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t iova = 0;

	add_domain(e);
	/* The source's lowest set bit (2 KiB) is below the 4 KiB alignment. */
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host + 0x800, PG, &iova), -EINVAL);
}

static void test_map_7_auto_iova_is_never_0_and_keeps_page_offset(void **state)
{
	struct env *e = *state;
	uint64_t seen[16];

	for (int i = 0; i < 16; i++) {
		uint64_t iova = 0;

		assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
		assert_true(iova >= PG && iova % PG == 0);
		for (int j = 0; j < i; j++)
			assert_true(seen[j] != iova);
		seen[i] = iova;
	}
	assert_true(seen[0] == PG);
	for (uint64_t off = 0x123; off < PG; off += 0x6dd) {
		uint64_t iova = 0;

		assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host + off, PG, &iova), 0);
		assert_true(iova != 0);
		assert_true(iova % PG == off);
	}
}

static void test_map_7_auto_iova_is_never_0_even_when_allowed(void **state)
{
	struct env *e = *state;
	const struct iommu_iova_range r = { 0, 2 * PG - 1 };
	uint64_t iova = 0;

	/* §3.12.4: auto-allocation never returns 0, even inside an allowed range. */
	assert_int_equal(allow_iovas(e->ctx, e->ioas, &r, 1), 0);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), 0);
	assert_true(iova == PG);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_RW, e->host, PG, &iova), -ENOSPC);
}

static void test_map_8_user_va_page_offset_unaligned_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t iova = A1, v = 0;

	/* Alignment 1: any page offset is accepted. */
	map_fixed(e->ctx, e->ioas, e->host + 0x800, PG, A1 + 0x800);
	/* Alignment PAGE_SIZE (huge pages off) on a second IOAS. */
	e->ioas = ioas_alloc(e->ctx);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host + 0x800, PG, &iova),
			 -EINVAL);
	/* And with a domain attached. */
	e->ioas = ioas_alloc(e->ctx);
	add_domain(e);
	iova = A1;
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, e->host + 0x800, PG, &iova),
			 -EINVAL);
	map_fixed(e->ctx, e->ioas, e->host + PG, PG, A1);
}

static void test_map_9_unmapped_user_memory_efault_only_with_domain(void **state)
{
	struct env *e = *state;
	uint8_t *half = before_hole(PG);
	uint64_t iova = A1;

	/* No domain: nothing is pinned, the map succeeds. */
	map_fixed(e->ctx, e->ioas, bad_ptr(), PG, A1);
	e->ioas = ioas_alloc(e->ctx);
	add_domain(e);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, bad_ptr(), PG, &iova), -EFAULT);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, half, 2 * PG, &iova), -EFAULT);
	/* Nothing was mapped by the failed calls. */
	assert_int_equal(unmap(e->ctx, e->ioas, 0, U64_MAX, &iova), 0);
	assert_true(iova == 0);
	map_fixed(e->ctx, e->ioas, half, PG, A1);
}

static void test_map_9_readonly_memory_with_writeable_is_efault(void **state)
{
	struct env *e = *state;
	void *ro = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t iova = A1;

	assert_true(ro != MAP_FAILED);
	add_domain(e);
	assert_int_equal(map_va(e->ctx, e->ioas, MAP_FIXED_RW, ro, PG, &iova), -EFAULT);
	assert_int_equal(map_va(e->ctx, e->ioas,
				IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, ro, PG,
				&iova),
			 0);
}

static void test_map_9_bad_user_memory_surfaces_at_first_attach(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;

	map_fixed(e->ctx, e->ioas, bad_ptr(), PG, A1);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), -EFAULT);
	assert_int_equal(unmap(e->ctx, e->ioas, A1, PG, NULL), 0);
	add_domain(e);
}

static void test_map_10_success_writes_iova_and_device_sees_memory(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_map m = raw_map(e->ioas, MAP_RW, e->host, PG, 0xdeadbeef000ull);
	struct uiommu_device *dma;
	uint32_t v = 0x5a5aa5a5, r = 0;

	attach(e, e->pdev_id, e->ioas);
	dma = uiommu_hwdev_dma(e->pdev);
	assert_int_equal(map_raw(e, &m), 0);
	assert_true(m.iova != 0xdeadbeef000ull && m.iova != 0 && m.iova % PG == 0);
	assert_int_equal(uiommu_device_dma_write(dma, m.iova + 16, &v, 4), 0);
	assert_memory_equal(e->host + 16, &v, 4);
	/* FIXED: iova stays as given. */
	m = raw_map(e->ioas, MAP_FIXED_RW, e->host + PG, PG, 0x7000000);
	assert_int_equal(map_raw(e, &m), 0);
	assert_true(m.iova == 0x7000000);
	memcpy(e->host + PG + 8, &v, 4);
	assert_int_equal(uiommu_device_dma_read(dma, 0x7000008, &r, 4), 0);
	assert_true(r == v);
}

/* ---- §3.7 IOMMU_IOAS_MAP_FILE ---- */

static long map_file(struct env *e, uint32_t flags, int fd, uint64_t start, uint64_t len,
		     uint64_t *iova)
{
	struct iommu_ioas_map_file cmd = { .size = sizeof(cmd),
					   .flags = flags,
					   .ioas_id = e->ioas,
					   .fd = fd,
					   .start = start,
					   .length = len,
					   .iova = *iova };
	long rc = io(e->ctx, IOMMU_IOAS_MAP_FILE, &cmd);

	*iova = cmd.iova;
	return rc;
}

static int memfd(uint64_t size)
{
	int fd = (int)syscall(SYS_memfd_create, "uapi-test", 0);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static void test_map_file_bad_fd_is_ebadf(void **state)
{
	struct env *e = *state;
	int fd = memfd(PG);
	uint64_t iova = A1;

	assert_int_equal(map_file(e, MAP_FIXED_RW, -1, 0, PG, &iova), -EBADF);
	close(fd);
	assert_int_equal(map_file(e, MAP_FIXED_RW, fd, 0, PG, &iova), -EBADF);
}

static void test_map_file_shares_the_map_checks(void **state)
{
	struct env *e = *state;
	int fd = memfd(4 * PG);
	uint64_t iova = A1;

	assert_int_equal(map_file(e, MAP_FIXED_RW | (1u << 3), fd, 0, PG, &iova), -EOPNOTSUPP);
	assert_int_equal(map_file(e, MAP_FIXED_RW, fd, 0, U64_MAX, &iova), -EOVERFLOW);
	assert_int_equal(map_file(e, IOMMU_IOAS_MAP_FIXED_IOVA, fd, 0, PG, &iova), -EINVAL);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	assert_int_equal(map_file(e, MAP_FIXED_RW, fd, 0, PG, &iova), -EEXIST);
	close(fd);
}

static void test_map_file_memfd_is_mapped_and_device_writes_the_file(void **state)
{
	struct env *e = *state;
	int fd = memfd(16 * PG);
	uint64_t iova = 0x200000, got = 0;
	uint32_t v = 0xc0ffee11;

	attach(e, e->pdev_id, e->ioas);
	assert_int_equal(map_file(e, MAP_FIXED_RW, fd, 4 * PG, 2 * PG, &iova), 0);
	assert_true(iova == 0x200000);
	assert_int_equal(uiommu_device_dma_write(uiommu_hwdev_dma(e->pdev), 0x200000 + PG + 12,
						 &v, 4),
			 0);
	assert_int_equal(pread(fd, &got, 4, (off_t)(5 * PG + 12)), 4);
	assert_true((uint32_t)got == v);
	iova = 0;
	assert_int_equal(map_file(e, MAP_RW, fd, 0, PG, &iova), 0);
	assert_true(iova != 0 && iova % PG == 0);
	close(fd);
}

/* ---- §3.7 IOMMU_IOAS_COPY ---- */

static long copy(struct env *e, uint32_t flags, uint32_t dst, uint32_t src, uint64_t len,
		 uint64_t *dst_iova, uint64_t src_iova)
{
	struct iommu_ioas_copy cmd = { .size = sizeof(cmd),
				       .flags = flags,
				       .dst_ioas_id = dst,
				       .src_ioas_id = src,
				       .length = len,
				       .dst_iova = *dst_iova,
				       .src_iova = src_iova };
	long rc = io(e->ctx, IOMMU_IOAS_COPY, &cmd);

	*dst_iova = cmd.dst_iova;
	return rc;
}

/* e->ioas holds [A1, A1 + 4 pages) of e->host; returns a second, empty IOAS. */
static uint32_t copy_setup(struct env *e)
{
	map_fixed(e->ctx, e->ioas, e->host, 4 * PG, A1);
	return ioas_alloc(e->ctx);
}

static void test_copy_1_unknown_flag_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	assert_int_equal(copy(e, MAP_FIXED_RW | (1u << 3), dst, e->ioas, PG, &d, A1),
			 -EOPNOTSUPP);
	/* Order: before EOVERFLOW. */
	assert_int_equal(copy(e, 1u << 3, dst, e->ioas, U64_MAX, &d, A1), -EOPNOTSUPP);
}

static void test_copy_2_u64_max_is_eoverflow(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, U64_MAX, &d, A1), -EOVERFLOW);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, U64_MAX), -EOVERFLOW);
	d = U64_MAX;
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, A1), -EOVERFLOW);
	/* Order: before EINVAL (no permission). */
	assert_int_equal(copy(e, 0, dst, e->ioas, PG, &d, A1), -EOVERFLOW);
}

static void test_copy_3_neither_read_nor_write_is_einval(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	assert_int_equal(copy(e, IOMMU_IOAS_MAP_FIXED_IOVA, dst, e->ioas, PG, &d, A1), -EINVAL);
	/* Order: before ENOENT (bad src). */
	assert_int_equal(copy(e, 0, dst, 999, PG, &d, A1), -EINVAL);
}

static void test_copy_4_bad_src_is_enoent(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	assert_int_equal(copy(e, MAP_FIXED_RW, dst, 999, PG, &d, A1), -ENOENT);
	/* Order: before length 0 (EINVAL). */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, 999, 0, &d, A1), -ENOENT);
}

static void test_copy_5_length_0_is_einval(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 0, &d, A1), -EINVAL);
}

static void test_copy_6_src_end_wrap_is_eoverflow(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 0x2000, &d, U64_MAX - 0xfff),
			 -EOVERFLOW);
}

static void test_copy_7_src_not_covered_is_enoent(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1 + 5 * PG); /* hole at page 4 */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 5 * PG, &d, A1), -ENOENT);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 3 * PG, &d, A1 + 3 * PG), -ENOENT);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, A1 + 4 * PG), -ENOENT);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 2 * PG, &d, A1 - PG), -ENOENT);
	/* Nothing was made in the destination. */
	assert_int_equal(unmap(e->ctx, dst, 0, U64_MAX, &d), 0);
	assert_true(d == 0);
}

static void test_copy_8_slice_of_an_area_is_accepted(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e);
	uint64_t d = 0x300000;
	uint32_t v = 0x13579bdf, r = 0;

	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 2 * PG, &d, A1 + PG), 0);
	assert_true(d == 0x300000);
	attach(e, e->pdev_id, dst);
	memcpy(e->host + PG + 40, &v, 4);
	assert_int_equal(uiommu_device_dma_read(uiommu_hwdev_dma(e->pdev), 0x300000 + 40, &r, 4),
			 0);
	assert_true(r == v);
	/* Without FIXED the destination IOVA is written back. */
	d = 0;
	assert_int_equal(copy(e, MAP_RW, dst, e->ioas, PG, &d, A1), 0);
	assert_true(d != 0 && d % PG == 0 && d != 0x300000);
}

static void test_copy_9_bad_dst_is_enoent(void **state)
{
	struct env *e = *state;
	uint32_t hwpt;
	uint64_t d = 0x300000;

	copy_setup(e);
	assert_int_equal(copy(e, MAP_FIXED_RW, 999, e->ioas, PG, &d, A1), -ENOENT);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, e->ioas, 0, &hwpt), 0);
	assert_int_equal(copy(e, MAP_FIXED_RW, hwpt, e->ioas, PG, &d, A1), -ENOENT);
}

static void test_copy_10_destination_map_rules_apply(void **state)
{
	struct env *e = *state;
	uint32_t dst = copy_setup(e), hwpt;
	uint64_t d;

	/* Source areas at alignment 1: a 6 KiB one and one at page offset 2 KiB. */
	map_fixed(e->ctx, e->ioas, e->host, 0x1800, 0x400000);
	map_fixed(e->ctx, e->ioas, e->host + 0x800, PG, 0x500800);
	assert_int_equal(hwpt_alloc(e->ctx, e->ddev_id, dst, 0, &hwpt), 0);
	d = 0x300000; /* rule 6: length */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 0x1800, &d, 0x400000), -EINVAL);
	d = 0x300800; /* rule 7: unaligned */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, A1), -EINVAL);
	d = 1ull << 40; /* rule 7: reserved (outside the aperture) */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, A1), -EINVAL);
	d = 0x300000; /* rule 8: source page offset */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, 0x500800), -EINVAL);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 2 * PG, &d, A1), 0);
	d = 0x300000 + PG; /* rule 7: overlap */
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, A1), -EEXIST);
}

static void test_copy_11_writeable_from_readonly_source_is_eperm(void **state)
{
	struct env *e = *state;
	uint32_t dst = ioas_alloc(e->ctx);
	uint64_t iova = A1, d = 0x300000;

	assert_int_equal(map_va(e->ctx, e->ioas,
				IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, e->host, PG,
				&iova),
			 0);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, PG, &d, A1), -EPERM);
	assert_int_equal(copy(e, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE, dst,
			      e->ioas, PG, &d, A1),
			 -EPERM);
	assert_int_equal(copy(e, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE, dst, e->ioas,
			      PG, &d, A1),
			 0);
}

static void test_copy_12_one_destination_area_per_source_slice(void **state)
{
	struct env *e = *state;
	uint32_t dst = ioas_alloc(e->ctx);
	uint64_t d = 0x400000, len;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	map_fixed(e->ctx, e->ioas, e->host + PG, 2 * PG, A1 + PG);
	assert_int_equal(copy(e, MAP_FIXED_RW, dst, e->ioas, 3 * PG, &d, A1), 0);
	/* Two destination areas: each can be unmapped alone... */
	assert_int_equal(unmap(e->ctx, dst, 0x400000, PG, &len), 0);
	assert_true(len == PG);
	/* ...but not half of the second. */
	assert_int_equal(unmap(e->ctx, dst, 0x400000 + PG, PG, &len), -ENOENT);
	assert_int_equal(unmap(e->ctx, dst, 0x400000 + PG, 2 * PG, &len), 0);
	assert_true(len == 2 * PG);
}

/* ---- §3.8 IOMMU_IOAS_UNMAP ---- */

static void test_unmap_bad_id_is_enoent(void **state)
{
	struct env *e = *state;

	assert_int_equal(unmap(e->ctx, 999, A1, PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, 999, 0, U64_MAX, NULL), -ENOENT);
	/* Order: before EOVERFLOW and EINVAL. */
	assert_int_equal(unmap(e->ctx, 0, U64_MAX, PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, 999, A1, 0, NULL), -ENOENT);
}

static void test_unmap_all_on_empty_ioas_is_0_with_length_0(void **state)
{
	struct env *e = *state;
	uint64_t len = 12345;

	assert_int_equal(unmap(e->ctx, e->ioas, 0, U64_MAX, &len), 0);
	assert_true(len == 0);
}

static void test_unmap_all_removes_every_area_and_returns_total(void **state)
{
	struct env *e = *state;
	uint64_t len;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	map_fixed(e->ctx, e->ioas, e->host, 2 * PG, 0x40000000);
	map_fixed(e->ctx, e->ioas, e->host, 3 * PG, 1ull << 50);
	assert_int_equal(unmap(e->ctx, e->ioas, 0, U64_MAX, &len), 0);
	assert_true(len == 6 * PG);
	assert_int_equal(unmap(e->ctx, e->ioas, 0, U64_MAX, &len), 0);
	assert_true(len == 0);
}

static void test_unmap_iova_or_length_u64_max_is_eoverflow(void **state)
{
	struct env *e = *state;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	assert_int_equal(unmap(e->ctx, e->ioas, U64_MAX, PG, NULL), -EOVERFLOW);
	assert_int_equal(unmap(e->ctx, e->ioas, 1, U64_MAX, NULL), -EOVERFLOW);
	assert_int_equal(unmap(e->ctx, e->ioas, A1, U64_MAX, NULL), -EOVERFLOW);
	/* Order: before EINVAL for length 0. */
	assert_int_equal(unmap(e->ctx, e->ioas, U64_MAX, 0, NULL), -EOVERFLOW);
}

static void test_unmap_length_0_is_einval(void **state)
{
	struct env *e = *state;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	assert_int_equal(unmap(e->ctx, e->ioas, A1, 0, NULL), -EINVAL);
	assert_int_equal(unmap(e->ctx, e->ioas, 0, 0, NULL), -EINVAL);
}

static void test_unmap_end_wrap_is_eoverflow(void **state)
{
	struct env *e = *state;

	assert_int_equal(unmap(e->ctx, e->ioas, U64_MAX - 0xfff, 0x2000, NULL), -EOVERFLOW);
}

static void test_unmap_partial_area_is_enoent(void **state)
{
	struct env *e = *state;
	uint64_t len = 0;

	map_fixed(e->ctx, e->ioas, e->host, 2 * PG, A1);
	assert_int_equal(unmap(e->ctx, e->ioas, A1, PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, A1 + PG, PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, A1 - PG, 2 * PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, A1 + 1, 2 * PG, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, A1, 2 * PG, &len), 0);
	assert_true(len == 2 * PG);
}

static void test_unmap_empty_range_is_enoent(void **state)
{
	struct env *e = *state;

	assert_int_equal(unmap(e->ctx, e->ioas, A1, PG, NULL), -ENOENT);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	assert_int_equal(unmap(e->ctx, e->ioas, A1 + PG, 0x100000, NULL), -ENOENT);
	assert_int_equal(unmap(e->ctx, e->ioas, 0, A1, NULL), -ENOENT);
}

static void test_unmap_covering_range_removes_whole_areas_returns_length(void **state)
{
	struct env *e = *state;
	uint64_t len = 0;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	map_fixed(e->ctx, e->ioas, e->host, 2 * PG, A1 + 3 * PG);
	map_fixed(e->ctx, e->ioas, e->host, PG, 0x40000000);
	assert_int_equal(unmap(e->ctx, e->ioas, 0, 0x1000000, &len), 0);
	assert_true(len == 3 * PG);
	assert_int_equal(unmap(e->ctx, e->ioas, 0x40000000, PG, &len), 0);
	assert_true(len == PG);
}

static void test_unmap_is_not_atomic_and_not_copied_back_on_error(void **state)
{
	struct env *e = *state;
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd), .ioas_id = e->ioas, .iova = A1, .length = 3 * PG
	};
	uint64_t len;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	map_fixed(e->ctx, e->ioas, e->host, 2 * PG, A1 + 2 * PG);
	/* Covers the first area and half of the second. */
	assert_int_equal(io(e->ctx, IOMMU_IOAS_UNMAP, &cmd), -ENOENT);
	assert_true(cmd.length == 3 * PG && cmd.iova == A1);
	assert_int_equal(unmap(e->ctx, e->ioas, A1, PG, NULL), -ENOENT); /* already gone */
	assert_int_equal(unmap(e->ctx, e->ioas, A1 + 2 * PG, 2 * PG, &len), 0);
	assert_true(len == 2 * PG);
}

/* ---- §3.9 IOMMU_OPTION ---- */

static bool has_cap_sys_resource(void)
{
	char line[256];
	unsigned long long eff = 0;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff & (1ull << 24); /* CAP_SYS_RESOURCE */
}

static void test_option_unknown_option_or_op_or_reserved_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	struct iommu_option cmd = { .size = sizeof(cmd),
				    .option_id = IOMMU_OPTION_HUGE_PAGES,
				    .op = IOMMU_OPTION_OP_GET,
				    .object_id = e->ioas };

	cmd.option_id = 2;
	assert_int_equal(io(e->ctx, IOMMU_OPTION, &cmd), -EOPNOTSUPP);
	cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
	cmd.op = 2;
	assert_int_equal(io(e->ctx, IOMMU_OPTION, &cmd), -EOPNOTSUPP);
	cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
	cmd.object_id = 0;
	assert_int_equal(io(e->ctx, IOMMU_OPTION, &cmd), -EOPNOTSUPP);
	cmd.op = IOMMU_OPTION_OP_GET;
	cmd.__reserved = 1;
	assert_int_equal(io(e->ctx, IOMMU_OPTION, &cmd), -EOPNOTSUPP);
	cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
	cmd.object_id = e->ioas;
	assert_int_equal(io(e->ctx, IOMMU_OPTION, &cmd), -EOPNOTSUPP);
}

static void test_option_rlimit_mode_nonzero_object_id_is_eopnotsupp(void **state)
{
	struct env *e = *state;
	uint64_t v = 0;

	assert_int_equal(option(e->ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, e->ioas,
				&v),
			 -EOPNOTSUPP);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 999, &v),
			 -EOPNOTSUPP);
}

static void test_option_rlimit_mode_set_needs_cap_sys_resource(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	bool cap = has_cap_sys_resource();
	uint64_t v = 0xdead, before;

	(void)state;
	print_message("CAP_SYS_RESOURCE %s\n", cap ? "effective" : "not effective");
	assert_int_equal(option(ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v), 0);
	assert_true(v == 0 || v == 1);
	before = v;
	v = !before;
	assert_int_equal(option(ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v),
			 cap ? 0 : -EPERM);
	assert_int_equal(option(ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, &v), 0);
	assert_true(v == (cap ? !before : before));
	uiommu_ctx_destroy(ctx);
}

static void test_option_rlimit_mode_set_with_objects_is_ebusy(void **state)
{
	struct env *e = *state;
	bool cap = has_cap_sys_resource();
	uint64_t v = 1;

	/* EPERM comes first; EBUSY before the value check. */
	assert_int_equal(option(e->ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v),
			 cap ? -EBUSY : -EPERM);
	v = 7;
	assert_int_equal(option(e->ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v),
			 cap ? -EBUSY : -EPERM);
}

static void test_option_rlimit_mode_bad_value_is_einval(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	bool cap = has_cap_sys_resource();
	uint64_t v = 2;

	(void)state;
	assert_int_equal(option(ctx, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, &v),
			 cap ? -EINVAL : -EPERM);
	uiommu_ctx_destroy(ctx);
}

static void test_option_huge_pages_get_writes_val64_1_on_fresh_ioas(void **state)
{
	struct env *e = *state;
	struct iommu_option cmd = { .size = sizeof(cmd),
				    .option_id = IOMMU_OPTION_HUGE_PAGES,
				    .op = IOMMU_OPTION_OP_GET,
				    .object_id = e->ioas,
				    .val64 = 0xdeadbeef };

	assert_int_equal(io(e->ctx, IOMMU_OPTION, &cmd), 0);
	assert_true(cmd.val64 == 1);
	assert_int_equal(cmd.option_id, IOMMU_OPTION_HUGE_PAGES);
	assert_int_equal(cmd.op, IOMMU_OPTION_OP_GET);
	assert_int_equal(cmd.object_id, e->ioas);
}

static void test_option_huge_pages_set_sets_alignment(void **state)
{
	struct env *e = *state;
	uint64_t v = 0;

	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, e->ioas, &v),
			 0);
	assert_true(v == 0);
	assert_true(ioas_alignment(e->ctx, e->ioas) == PG);
	v = 1;
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, e->ioas, &v),
			 0);
	assert_true(v == 1);
	assert_true(ioas_alignment(e->ctx, e->ioas) == 1);
}

static void test_option_huge_pages_bad_value_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t v = 2;

	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 -EINVAL);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, e->ioas, &v),
			 0);
	assert_true(v == 1);
}

static void test_option_huge_pages_bad_ioas_is_enoent(void **state)
{
	struct env *e = *state;
	uint64_t v = 0;

	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 999, &v),
			 -ENOENT);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, 0, &v),
			 -ENOENT);
	/* Order: the lookup before the value check. */
	v = 2;
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, 999, &v),
			 -ENOENT);
}

static void test_option_huge_pages_disable_with_domain_and_areas_is_einval(void **state)
{
	struct env *e = *state;
	uint64_t v = 0;

	add_domain(e);
	/* A domain without areas: fine. */
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	v = 1;
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 0);
	map_fixed(e->ctx, e->ioas, e->host, PG, A1);
	v = 0;
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 -EINVAL);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, e->ioas, &v),
			 0);
	assert_true(v == 1);
}

static void test_option_huge_pages_disable_with_unaligned_area_is_eaddrinuse(void **state)
{
	struct env *e = *state;
	uint64_t v = 0;

	map_fixed(e->ctx, e->ioas, e->host, PG, A1 + 1);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, e->ioas, &v),
			 -EADDRINUSE);
	assert_int_equal(option(e->ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, e->ioas, &v),
			 0);
	assert_true(v == 1);
	assert_true(ioas_alignment(e->ctx, e->ioas) == 1);
}

static int small_env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	env_init(e, 0, 16 * MiB);
	*state = e;
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, small_env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ioas_alloc_nonzero_flags_is_eopnotsupp),
		T(test_ioas_alloc_fresh_ioas_state),
		T(test_iova_space_hwpt_reserves_aperture_and_raises_alignment),
		T(test_iova_space_attach_reserves_device_regions_detach_releases),
		T(test_iova_space_area_in_device_region_blocks_attach_eaddrinuse),
		T(test_iova_space_area_outside_aperture_blocks_hwpt_eaddrinuse),
		T(test_iova_space_allowed_range_blocks_reservation_eaddrinuse),
		T(test_iova_space_unaligned_area_blocks_domain_eaddrinuse),
		T(test_iova_space_allowed_ranges_do_not_restrict_fixed_maps),
		T(test_iova_ranges_fresh_ioas_is_one_full_range_align_1),
		T(test_iova_ranges_capacity_0_is_emsgsize_with_count),
		T(test_iova_ranges_short_capacity_writes_only_what_fits),
		T(test_iova_ranges_reserved_field_is_eopnotsupp),
		T(test_iova_ranges_bad_id_is_enoent),
		T(test_iova_ranges_bad_array_pointer_is_efault),
		T(test_iova_ranges_ignore_allowed_ranges),
		T(test_allow_iovas_reserved_field_is_eopnotsupp),
		T(test_allow_iovas_bad_id_is_enoent),
		T(test_allow_iovas_element_fault_is_efault),
		T(test_allow_iovas_start_not_below_last_is_einval),
		T(test_allow_iovas_overlapping_entries_is_einval),
		T(test_allow_iovas_over_reserved_is_eaddrinuse_old_list_kept),
		T(test_allow_iovas_restrict_automatic_allocation),
		T(test_allow_iovas_zero_entries_clears_the_list),
		T(test_map_1_unknown_flag_or_reserved_is_eopnotsupp),
		T(test_map_2_iova_or_length_u64_max_is_eoverflow),
		T(test_map_3_neither_read_nor_write_is_einval),
		T(test_map_4_bad_ioas_is_enoent),
		T(test_map_5_user_va_wrap_is_eoverflow_then_bad_length_einval),
		T(test_map_6_length_not_multiple_of_alignment_is_einval),
		T(test_map_7_fixed_unaligned_iova_is_einval_with_domain),
		T(test_map_7_fixed_unaligned_iova_is_fine_without_domain),
		T(test_map_7_fixed_end_wrap_is_eoverflow),
		T(test_map_7_fixed_into_reserved_range_is_einval),
		T(test_map_7_fixed_overlap_is_eexist),
		T(test_map_7_auto_huge_length_is_eoverflow),
		T(test_map_7_auto_without_space_is_enospc),
		T(test_map_7_auto_alignment_below_iova_alignment_is_einval),
		T(test_map_7_auto_iova_is_never_0_and_keeps_page_offset),
		T(test_map_7_auto_iova_is_never_0_even_when_allowed),
		T(test_map_8_user_va_page_offset_unaligned_is_einval),
		T(test_map_9_unmapped_user_memory_efault_only_with_domain),
		T(test_map_9_readonly_memory_with_writeable_is_efault),
		T(test_map_9_bad_user_memory_surfaces_at_first_attach),
		T(test_map_10_success_writes_iova_and_device_sees_memory),
		T(test_map_file_bad_fd_is_ebadf),
		T(test_map_file_shares_the_map_checks),
		T(test_map_file_memfd_is_mapped_and_device_writes_the_file),
		T(test_copy_1_unknown_flag_is_eopnotsupp),
		T(test_copy_2_u64_max_is_eoverflow),
		T(test_copy_3_neither_read_nor_write_is_einval),
		T(test_copy_4_bad_src_is_enoent),
		T(test_copy_5_length_0_is_einval),
		T(test_copy_6_src_end_wrap_is_eoverflow),
		T(test_copy_7_src_not_covered_is_enoent),
		T(test_copy_8_slice_of_an_area_is_accepted),
		T(test_copy_9_bad_dst_is_enoent),
		T(test_copy_10_destination_map_rules_apply),
		T(test_copy_11_writeable_from_readonly_source_is_eperm),
		T(test_copy_12_one_destination_area_per_source_slice),
		T(test_unmap_bad_id_is_enoent),
		T(test_unmap_all_on_empty_ioas_is_0_with_length_0),
		T(test_unmap_all_removes_every_area_and_returns_total),
		T(test_unmap_iova_or_length_u64_max_is_eoverflow),
		T(test_unmap_length_0_is_einval),
		T(test_unmap_end_wrap_is_eoverflow),
		T(test_unmap_partial_area_is_enoent),
		T(test_unmap_empty_range_is_enoent),
		T(test_unmap_covering_range_removes_whole_areas_returns_length),
		T(test_unmap_is_not_atomic_and_not_copied_back_on_error),
		T(test_option_unknown_option_or_op_or_reserved_is_eopnotsupp),
		T(test_option_rlimit_mode_nonzero_object_id_is_eopnotsupp),
		cmocka_unit_test(test_option_rlimit_mode_set_needs_cap_sys_resource),
		T(test_option_rlimit_mode_set_with_objects_is_ebusy),
		cmocka_unit_test(test_option_rlimit_mode_bad_value_is_einval),
		T(test_option_huge_pages_get_writes_val64_1_on_fresh_ioas),
		T(test_option_huge_pages_set_sets_alignment),
		T(test_option_huge_pages_bad_value_is_einval),
		T(test_option_huge_pages_bad_ioas_is_enoent),
		T(test_option_huge_pages_disable_with_domain_and_areas_is_einval),
		T(test_option_huge_pages_disable_with_unaligned_area_is_eaddrinuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
