/* SPDX-License-Identifier: MIT */
/*
 * Tests of the IOAS without domains: MAP's checks and their order, automatic
 * IOVA allocation, UNMAP, COPY, MAP_FILE, IOVA ranges, allowed and reserved
 * ranges, the huge-pages option. One test per rule.
 */
#include <fcntl.h>

#include "ioas_test.h"

static void test_ioas_create_starts_empty_with_full_range_and_alignment_1(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range r[2];
	struct uiommu_ioas_stats st = ioas_stats(ioas);
	uint64_t align = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 2, &total, &align), 0);
	assert_int_equal(total, 1);
	assert_true(r[0].start == 0 && r[0].last == UINT64_MAX);
	assert_int_equal(align, 1);
	assert_true(uiommu_ioas_huge_pages(ioas));
	assert_true(st.areas == 0 && st.mapped_bytes == 0 && st.domains == 0 && st.accesses == 0);
	uiommu_ioas_destroy(ioas);
	uiommu_ioas_destroy(NULL);
}

static void test_map_without_prot_or_with_unknown_bits_is_einval(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t iova = 0x10000;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, 0, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, 1u << 5, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 1u << 3, &iova), -EINVAL);
	/* Prot comes before every range check. */
	assert_int_equal(uiommu_ioas_map(ioas, (void *)UINTPTR_MAX, 2, 0, 0, &iova), -EINVAL);
	assert_int_equal(ioas_stats(ioas).areas, 0);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_map_checks_user_range_before_length(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	uint64_t iova = 0x10000;

	(void)state;
	/* uva + length wraps: EOVERFLOW even though length is also too large. */
	assert_int_equal(uiommu_ioas_map(ioas, (void *)(uintptr_t)(2 * PAGE), UINT64_MAX - PAGE,
					 RW, FIXED, &iova),
			 -EOVERFLOW);
	assert_int_equal(uiommu_ioas_map(ioas, (void *)(uintptr_t)PAGE, 0, RW, FIXED, &iova),
			 -EINVAL);
	assert_int_equal(uiommu_ioas_map(ioas, NULL, SIZE_MAX - PAGE + 1, RW, FIXED, &iova),
			 -EINVAL);
	uiommu_ioas_destroy(ioas);
}

static void test_map_fixed_checks_in_kernel_order(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova;

	(void)state;
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 0x100000, 0x1fffff), 0);
	iova = 0x10000;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	/* length not a multiple of the alignment comes first */
	iova = 1;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE + 1, RW, FIXED, &iova), -EINVAL);
	/* then iova alignment, then wrap, reserved, overlap */
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), -EINVAL);
	iova = UINT64_MAX - PAGE + 1;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * PAGE, RW, FIXED, &iova), -EOVERFLOW);
	iova = 0x100000 - PAGE;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * PAGE, RW, FIXED, &iova), -EINVAL);
	iova = 0x10000 - PAGE;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * PAGE, RW, FIXED, &iova), -EEXIST);
	/* then the page offset of uva against the alignment */
	iova = 0x20000;
	assert_int_equal(uiommu_ioas_map(ioas, buf + 8, PAGE, RW, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	assert_int_equal(ioas_stats(ioas).areas, 2);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_map_without_domain_accepts_memory_that_is_not_there(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	void *hole = buf_hole(16 * PAGE);
	uint64_t iova;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, hole, 16 * PAGE, RW, 0, &iova), 0);
	/* The kernel selftest maps this VA with no domain. */
	assert_int_equal(uiommu_ioas_map(ioas, (void *)0x80000000ul, PAGE, RW, 0, &iova), 0);
	assert_int_equal(ioas_stats(ioas).areas, 2);
	assert_int_equal(ioas_stats(ioas).pinned_pages, 0);
	uiommu_ioas_destroy(ioas);
}

static void test_map_without_domain_is_byte_granular(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t iova = 1;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf + 3, 5, UIOMMU_PROT_READ, FIXED, &iova), 0);
	iova = 6;
	assert_int_equal(uiommu_ioas_map(ioas, buf + 9, 1, UIOMMU_PROT_READ, FIXED, &iova), 0);
	iova = 5;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 1, UIOMMU_PROT_READ, FIXED, &iova), -EEXIST);
	assert_int_equal(ioas_stats(ioas).mapped_bytes, 6);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

/* ---- automatic allocation ---- */

static void test_auto_iova_starts_at_page_size_never_zero(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t iova = 0;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 1, RW, 0, &iova), 0);
	assert_int_equal(iova, PAGE);
	assert_int_equal(uiommu_ioas_map(ioas, NULL, 1, RW, 0, &iova), 0);
	assert_int_equal(iova, PAGE + 1);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_auto_iova_never_uses_the_last_page(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range top = { UINT64_MAX - 2 * PAGE + 1, UINT64_MAX };
	uint64_t iova = 0;

	(void)state;
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &top, 1), 0);
	/* Only [MAX - 2 PAGE + 1, MAX - PAGE] is usable; a candidate equal to
	 * the span's last byte is refused too. */
	assert_int_equal(uiommu_ioas_map(ioas, NULL, PAGE, RW, 0, &iova), 0);
	assert_true(iova == UINT64_MAX - 2 * PAGE + 1);
	assert_int_equal(uiommu_ioas_map(ioas, NULL, 1, RW, 0, &iova), -ENOSPC);
	uiommu_ioas_destroy(ioas);
}

static void test_auto_iova_refuses_a_start_on_the_last_byte_of_a_hole(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range two = { 0x10000, 0x10001 };
	uint64_t iova = 0x10000;

	(void)state;
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &two, 1), 0);
	assert_int_equal(uiommu_ioas_map(ioas, NULL, 1, RW, FIXED, &iova), 0);
	/* The kernel wants the start strictly below the hole's last byte. */
	assert_int_equal(uiommu_ioas_map(ioas, NULL, 1, RW, 0, &iova), -ENOSPC);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x10000, 1, NULL), 0);
	assert_int_equal(uiommu_ioas_map(ioas, NULL, 2, RW, 0, &iova), 0);
	assert_int_equal(iova, 0x10000);
	uiommu_ioas_destroy(ioas);
}

/* What the library caps automatic alignment at. */
static uint64_t thp_size(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	unsigned long long v = 0;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v >= PAGE ? v : PAGE;
}

static void test_auto_iova_alignment_follows_length_and_uva(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(8 * MiB, 4 * MiB);
	uint64_t iova, thp = thp_size();

	(void)state;
	/* A first small area pushes the next ones off the start of the space. */
	assert_int_equal(uiommu_ioas_map(ioas, buf, 1, RW, 0, &iova), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 3 * PAGE, RW, 0, &iova), 0);
	assert_int_equal(iova % (4 * PAGE), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 8 * MiB, RW, 0, &iova), 0);
	assert_int_equal(iova % thp, 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 16 * MiB, RW, 0, &iova), 0);
	if (thp == 2 * MiB) /* capped: first fit after [2M, 10M), not 16 MiB aligned */
		assert_int_equal(iova, 10 * MiB);
	/* the lowest set bit of the uva lowers it */
	assert_int_equal(uiommu_ioas_map(ioas, buf + PAGE, 4 * PAGE, RW, 0, &iova), 0);
	assert_int_equal(iova % PAGE, 0);
	/* and the page offset is kept */
	assert_int_equal(uiommu_ioas_map(ioas, buf + 0x10, 0x20, RW, 0, &iova), 0);
	assert_int_equal(iova % PAGE, 0x10);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 8 * MiB);
}

static void test_auto_iova_is_aligned_to_lowest_bit_of_every_length(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * MiB, 2 * MiB);

	(void)state;
	for (uint64_t len = 1; len < 2 * PAGE + 3; len++) {
		uint64_t iova = 0, low = len & -len;

		assert_int_equal(uiommu_ioas_map(ioas, buf, len, RW, 0, &iova), 0);
		assert_int_equal(iova & (u64_min(low, 2 * MiB) - 1), 0);
		assert_true(iova != 0);
		assert_int_equal(uiommu_ioas_unmap(ioas, iova, len, NULL), 0);
	}
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * MiB);
}

static void test_auto_iova_below_ioas_alignment_is_einval(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(2 * PAGE, PAGE);
	uint64_t iova;

	(void)state;
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	/* uva's lowest bit is PAGE / 2, below the IOAS's PAGE alignment */
	assert_int_equal(uiommu_ioas_map(ioas, buf + PAGE / 2, PAGE, RW, 0, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &iova), 0);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 2 * PAGE);
}

static void test_auto_iova_huge_length_is_eoverflow(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	uint64_t iova;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, NULL, UINT64_MAX / 2, RW, 0, &iova), -EOVERFLOW);
	assert_int_equal(uiommu_ioas_map(ioas, NULL, UINT64_MAX / 4, RW, 0, &iova), 0);
	uiommu_ioas_destroy(ioas);
}

static void test_auto_iova_first_fit_avoids_reserved_and_areas(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t a, b, c;

	(void)state;
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, PAGE, 16 * PAGE - 1), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &a), 0);
	assert_int_equal(a, 16 * PAGE);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &b), 0);
	assert_int_equal(b, 17 * PAGE);
	assert_int_equal(uiommu_ioas_unmap(ioas, a, PAGE, NULL), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &c), 0);
	assert_int_equal(c, 16 * PAGE);
	/* Reserved ranges of one owner can overlap others; auto still avoids them. */
	assert_int_equal(uiommu_ioas_reserve(ioas, buf, 18 * PAGE, 40 * PAGE), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 20 * PAGE, 30 * PAGE), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &c), 0);
	assert_int_equal(c, 41 * PAGE);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_auto_iova_stays_inside_allowed_ranges(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range allowed[] = { { 0x400000, 0x4fffff }, { 0x100000, 0x1fffff } };
	char *buf = buf_alloc(MiB, MiB);
	uint64_t iova;

	(void)state;
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, allowed, 2), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, MiB, RW, 0, &iova), 0);
	assert_int_equal(iova, 0x100000);
	assert_int_equal(uiommu_ioas_map(ioas, buf, MiB, RW, 0, &iova), 0);
	assert_int_equal(iova, 0x400000);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &iova), -ENOSPC);
	/* allowed ranges do not restrict FIXED maps */
	iova = 0x800000;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	/* clearing the list opens the whole space again */
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, NULL, 0), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, 0, &iova), 0);
	assert_int_equal(iova, PAGE);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, MiB);
}

static void test_auto_iova_enospc_when_no_hole_fits(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range allowed = { 0x10000, 0x17fff };
	char *buf = buf_alloc(64 * KiB, 64 * KiB);
	uint64_t iova;

	(void)state;
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &allowed, 1), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 64 * KiB, RW, 0, &iova), -ENOSPC);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 32 * KiB, RW, 0, &iova), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 1, RW, 0, &iova), -ENOSPC);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 64 * KiB);
}

/* ---- unmap ---- */

static void map_fixed(struct uiommu_ioas *ioas, void *uva, uint64_t iova, uint64_t len)
{
	assert_int_equal(uiommu_ioas_map(ioas, uva, len, RW, FIXED, &iova), 0);
}

static void test_unmap_removes_whole_areas_and_reports_bytes(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t bytes = 0;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE);
	map_fixed(ioas, buf, 0x11000, 0x800);
	map_fixed(ioas, buf, 0x20000, PAGE);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x10000, 0x800, &bytes), -ENOENT);
	/* Empty: nothing unmapped, not an error at this layer (the ioctl's ENOENT). */
	bytes = 1;
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x30000, PAGE, &bytes), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0xf000, 0x5000, &bytes), 0);
	assert_int_equal(bytes, PAGE + 0x800);
	assert_int_equal(ioas_stats(ioas).areas, 1);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_unmap_argument_errors(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();

	(void)state;
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x1000, 0, NULL), -EINVAL);
	assert_int_equal(uiommu_ioas_unmap(ioas, 2, UINT64_MAX, NULL), -EOVERFLOW);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX - 1, NULL), 0);
	uiommu_ioas_destroy(ioas);
}

static void test_unmap_all_empties_and_succeeds_when_empty(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t bytes = 1;

	(void)state;
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, &bytes), 0);
	assert_int_equal(bytes, 0);
	map_fixed(ioas, buf, 0, 1);
	map_fixed(ioas, buf, UINT64_MAX, 1);
	map_fixed(ioas, buf, 0x1000, PAGE);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, &bytes), 0);
	assert_int_equal(bytes, PAGE + 2);
	assert_int_equal(ioas_stats(ioas).areas, 0);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_unmap_is_not_atomic(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t bytes = 0;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE);
	map_fixed(ioas, buf, 0x11000, PAGE);
	map_fixed(ioas, buf, 0x12000, PAGE);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x10000, 0x1800, &bytes), -ENOENT);
	assert_int_equal(bytes, PAGE);
	assert_int_equal(ioas_stats(ioas).areas, 2);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

/* ---- copy ---- */

static void test_copy_makes_one_area_per_source_slice_sharing_pages(void **state)
{
	struct uiommu_ioas *src = ioas_new(), *dst = ioas_new();
	char *a = buf_alloc(4 * PAGE, PAGE), *b = buf_alloc(4 * PAGE, PAGE);
	struct snap s;
	uint64_t iova = 0x50000;

	(void)state;
	map_fixed(src, a, 0x10000, 4 * PAGE);
	map_fixed(src, b, 0x14000, 4 * PAGE);
	assert_int_equal(uiommu_ioas_copy(dst, &iova, src, 0x13000, 2 * PAGE, RW, FIXED), 0);
	snap_take(dst, &s);
	assert_int_equal(s.nr_areas, 2);
	assert_true(s.areas[0].start == 0x50000 && s.areas[0].last == 0x50fff);
	assert_true(s.areas[0].uva == (uintptr_t)a + 3 * PAGE);
	assert_true(s.areas[1].start == 0x51000 && s.areas[1].uva == (uintptr_t)b);
	assert_ptr_equal(s.areas[0].pages, ioas_area_first(src, 0x10000, 0x10000)->pages);
	assert_ptr_equal(s.areas[1].pages, ioas_area_first(src, 0x14000, 0x14000)->pages);
	/* The source can go; the destination keeps the pages. */
	uiommu_ioas_destroy(src);
	assert_int_equal(uiommu_ioas_unmap(dst, 0x50000, PAGE, NULL), 0);
	assert_int_equal(uiommu_ioas_unmap(dst, 0x51000, PAGE, NULL), 0);
	uiommu_ioas_destroy(dst);
	buf_free(a, 4 * PAGE);
	buf_free(b, 4 * PAGE);
}

static void test_copy_within_one_ioas_with_auto_iova(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, 4 * PAGE);
	uint64_t iova = 0;
	struct snap s;

	(void)state;
	map_fixed(ioas, buf, 0x100000, 4 * PAGE);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x100000, 4 * PAGE, RW, 0), 0);
	assert_true(iova != 0x100000 && iova % (4 * PAGE) == 0);
	snap_take(ioas, &s);
	assert_int_equal(s.nr_areas, 2);
	assert_ptr_equal(s.areas[0].pages, s.areas[1].pages);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_copy_source_must_be_covered_without_holes(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova = 0x80000;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE);
	map_fixed(ioas, buf, 0x12000, PAGE);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x10000, 3 * PAGE, RW, FIXED),
			 -ENOENT);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0xf000, 2 * PAGE, RW, FIXED),
			 -ENOENT);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x10800, PAGE, RW, FIXED), -ENOENT);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x10800, 0x800, RW, FIXED), 0);
	assert_int_equal(ioas_stats(ioas).areas, 3);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_copy_argument_errors_in_order(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t iova = 0x80000;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, UIOMMU_PROT_READ, FIXED, &iova), 0);
	iova = 0x90000;
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x80000, PAGE, 0, FIXED), -EINVAL);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x80000, 0, RW, FIXED), -EINVAL);
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 2, UINT64_MAX, RW, FIXED),
			 -EOVERFLOW);
	/* WRITE of read-only pages */
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x80000, PAGE, RW, FIXED), -EPERM);
	/* destination rules as map */
	iova = 0x80000;
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x80000, PAGE, UIOMMU_PROT_READ,
					  FIXED),
			 -EEXIST);
	iova = 0x90000;
	assert_int_equal(uiommu_ioas_copy(ioas, &iova, ioas, 0x80000, PAGE, UIOMMU_PROT_READ,
					  FIXED),
			 0);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

/* The selftest's copy_sweep: a 2 KiB window at byte-unaligned source IOVAs. */
static void test_copy_sweep_of_byte_unaligned_windows(void **state)
{
	struct uiommu_ioas *src = ioas_new(), *dst = ioas_new();
	uint64_t base = 0x100000, len = 4 * PAGE - 13, win = 2 * KiB;
	char *buf = buf_alloc(4 * PAGE, PAGE);

	(void)state;
	map_fixed(src, buf, base, len);
	for (uint64_t s = base - 4 * KiB; s < base + len + 4 * KiB; s += 511) {
		uint64_t iova = 0x800000, bytes = 0;
		int rc = uiommu_ioas_copy(dst, &iova, src, s, win, RW, FIXED);

		if (s >= base && s + win <= base + len) {
			assert_int_equal(rc, 0);
			assert_int_equal(uiommu_ioas_unmap(dst, iova, win, &bytes), 0);
			assert_int_equal(bytes, win);
		} else {
			assert_int_equal(rc, -ENOENT);
		}
	}
	uiommu_ioas_destroy(src);
	uiommu_ioas_destroy(dst);
	buf_free(buf, 4 * PAGE);
}

/* ---- map_file ---- */

static int memfd_with_pattern(uint64_t size)
{
	int fd = memfd_create("ioas-test", 0);
	unsigned char *p;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	for (uint64_t i = 0; i < size; i++)
		p[i] = (unsigned char)(i * 7 + 1);
	munmap(p, size);
	return fd;
}

static void test_map_file_maps_the_range_and_owns_the_mapping(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	int fd = memfd_with_pattern(8 * PAGE);
	uint64_t iova = 0x40000, start = PAGE + 0x10;
	unsigned char *uva, byte = 0;
	struct snap s;

	(void)state;
	assert_int_equal(uiommu_ioas_map_file(ioas, fd, start, 2 * PAGE, RW, FIXED, &iova), 0);
	snap_take(ioas, &s);
	uva = (unsigned char *)s.areas[0].uva;
	assert_int_equal((uintptr_t)uva % PAGE, 0x10);
	assert_int_equal(uva[0], (unsigned char)(start * 7 + 1));
	uva[1] = 0xee; /* shared: the file sees it */
	assert_int_equal(pread(fd, &byte, 1, (off_t)start + 1), 1);
	assert_int_equal(byte, 0xee);
	assert_int_equal(uiommu__user_check(uva, 2 * PAGE, true), 0);
	/* the hint for automatic IOVA is the file offset */
	assert_int_equal(uiommu_ioas_map_file(ioas, fd, start, 0x20, RW, 0, &iova), 0);
	assert_int_equal(iova % PAGE, 0x10);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	assert_int_equal(uiommu__user_check(uva, 1, false), -EFAULT);
	close(fd);
	uiommu_ioas_destroy(ioas);
}

static void test_map_file_errors(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	int fd = memfd_with_pattern(PAGE), ro, pipefd[2];
	char path[64];
	uint64_t iova = 0x40000;

	(void)state;
	assert_int_equal(uiommu_ioas_map_file(ioas, -1, 0, PAGE, RW, FIXED, &iova), -EBADF);
	assert_int_equal(pipe(pipefd), 0);
	close(pipefd[1]);
	assert_int_equal(uiommu_ioas_map_file(ioas, pipefd[1], 0, PAGE, RW, FIXED, &iova), -EBADF);
	assert_int_equal(uiommu_ioas_map_file(ioas, pipefd[0], 0, PAGE, RW, FIXED, &iova),
			 -EINVAL);
	assert_int_equal(uiommu_ioas_map_file(ioas, fd, 0, 0, RW, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map_file(ioas, fd, 0, PAGE, 0, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map_file(ioas, fd, UINT64_MAX, 2, RW, FIXED, &iova),
			 -EOVERFLOW);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	assert_true(ro >= 0);
	assert_int_equal(uiommu_ioas_map_file(ioas, ro, 0, PAGE, RW, FIXED, &iova), -EPERM);
	assert_int_equal(uiommu_ioas_map_file(ioas, ro, 0, PAGE, UIOMMU_PROT_READ, FIXED, &iova),
			 0);
	/* a failed map drops the mapping it made */
	iova = 0x40000;
	assert_int_equal(uiommu_ioas_map_file(ioas, fd, 0, PAGE, RW, FIXED, &iova), -EEXIST);
	assert_int_equal(ioas_stats(ioas).areas, 1);
	close(ro);
	close(fd);
	close(pipefd[0]);
	uiommu_ioas_destroy(ioas);
}

/* ---- IOVA ranges, allowed, reserved ---- */

static void test_iova_ranges_are_the_gaps_of_reserved_and_emsgsize_reports_total(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range r[4] = { 0 };
	size_t total = 0;
	uint64_t align = 0;

	(void)state;
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 0, 0xfff), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, &total, 0x8000, 0x8fff), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, &align, 0x8800, 0x9fff), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, UINT64_MAX, UINT64_MAX), 0);
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 4, &total, &align), 0);
	assert_int_equal(total, 2);
	assert_true(r[0].start == 0x1000 && r[0].last == 0x7fff);
	assert_true(r[1].start == 0xa000 && r[1].last == UINT64_MAX - 1);
	memset(r, 0, sizeof(r));
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 1, &total, &align), -EMSGSIZE);
	assert_int_equal(total, 2);
	assert_true(r[0].start == 0x1000 && r[1].start == 0);
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, NULL, 0, &total, NULL), -EMSGSIZE);
	uiommu_ioas_unreserve(ioas, ioas);
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 4, &total, &align), 0);
	assert_int_equal(total, 2);
	assert_true(r[0].start == 0 && r[0].last == 0x7fff && r[1].last == UINT64_MAX);
	uiommu_ioas_destroy(ioas);
}

static void test_allow_iovas_rejects_bad_and_overlapping_entries(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range single = { 5, 5 }, backwards = { 6, 5 };
	struct uiommu_iova_range overlap[] = { { 0x1000, 0x1fff }, { 0x1fff, 0x2fff } };
	struct uiommu_iova_range touching[] = { { 0x1000, 0x1fff }, { 0x2000, 0x2fff } };
	struct snap s;

	(void)state;
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &single, 1), -EINVAL);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &backwards, 1), -EINVAL);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, overlap, 2), -EINVAL);
	assert_unchanged(ioas, &s);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, touching, 2), 0);
	assert_int_equal(ioas->allowed.nr, 1);
	uiommu_ioas_destroy(ioas);
}

static void test_allow_iovas_over_reserved_is_eaddrinuse_and_keeps_old_list(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range old = { 0x100000, 0x1fffff }, bad[] = { { 0x200000, 0x2fffff },
									  { 0x7000, 0x8000 } };
	struct snap s;

	(void)state;
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &old, 1), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 0x8000, 0x8fff), 0);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, bad, 2), -EADDRINUSE);
	assert_unchanged(ioas, &s);
	uiommu_ioas_destroy(ioas);
}

static void test_reserve_conflicts_with_areas_and_allowed(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_iova_range allowed = { 0x100000, 0x1fffff };
	char *buf = buf_alloc(PAGE, PAGE);
	struct snap s;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &allowed, 1), 0);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 6, 5), -EINVAL);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 0x10fff, 0x10fff), -EADDRINUSE);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 0x1fffff, 0x300000), -EADDRINUSE);
	assert_unchanged(ioas, &s);
	assert_int_equal(uiommu_ioas_reserve(ioas, ioas, 0x11000, 0x11000), 0);
	/* FIXED maps over reserved ranges: EINVAL */
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &(uint64_t){ 0x11000 }),
			 -EINVAL);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_unreserve_drops_only_that_owners_ranges(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	int a, b;

	(void)state;
	assert_int_equal(uiommu_ioas_reserve(ioas, &a, 0x1000, 0x1fff), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, &b, 0x1000, 0x2fff), 0);
	assert_int_equal(uiommu_ioas_reserve(ioas, &a, 0x5000, 0x5fff), 0);
	uiommu_ioas_unreserve(ioas, &a);
	assert_int_equal(ioas->reserved.count, 1);
	uiommu_ioas_unreserve(ioas, &a);
	uiommu_ioas_unreserve(ioas, &b);
	assert_int_equal(ioas->reserved.count, 0);
	uiommu_ioas_destroy(ioas);
}

/* ---- huge pages ---- */

static void test_huge_pages_off_raises_alignment_to_page_size(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(2 * PAGE, PAGE);
	uint64_t iova = 0x10000;

	(void)state;
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	assert_false(uiommu_ioas_huge_pages(ioas));
	assert_int_equal(ioas_alignment(ioas), PAGE);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE / 2, RW, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, true), 0);
	assert_int_equal(ioas_alignment(ioas), 1);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE / 2, RW, FIXED, &iova), 0);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 2 * PAGE);
}

static void test_huge_pages_off_with_misaligned_area_is_eaddrinuse(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(2 * PAGE, PAGE);
	struct snap s;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE / 2);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), -EADDRINUSE);
	assert_true(uiommu_ioas_huge_pages(ioas));
	assert_unchanged(ioas, &s);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	/* a misaligned page offset of the uva breaks it too */
	map_fixed(ioas, buf + 8, 0x10000, PAGE);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), -EADDRINUSE);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 2 * PAGE);
}

static void test_huge_pages_off_with_domain_and_areas_is_einval(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = mock_domain_add(ioas);
	char *buf = buf_alloc(PAGE, PAGE);

	(void)state;
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, true), 0);
	map_fixed(ioas, buf, MOCK_APERTURE_START, PAGE);
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), -EINVAL);
	assert_true(uiommu_ioas_huge_pages(ioas));
	uiommu_ioas_domain_remove(ioas, d);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_stats_count_areas_bytes_domains_and_accesses(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_access_ops ops = { 0 };
	struct uiommu_access *acc;
	char *buf = buf_alloc(4 * PAGE, PAGE);
	struct uiommu_ioas_stats st;

	(void)state;
	map_fixed(ioas, buf, 0x10000, 3 * PAGE);
	map_fixed(ioas, buf, 0x20000, 5);
	assert_int_equal(uiommu_access_create(ioas, &ops, NULL, &acc), 0);
	st = ioas_stats(ioas);
	assert_true(st.areas == 2 && st.mapped_bytes == 3 * PAGE + 5);
	assert_true(st.domains == 0 && st.accesses == 1 && st.pinned_pages == 0);
	uiommu_access_destroy(acc);
	assert_int_equal(ioas_stats(ioas).accesses, 0);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_contig_last_stops_at_the_first_hole(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t last = 0;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE);
	map_fixed(ioas, buf, 0x11000, PAGE);
	map_fixed(ioas, buf, 0x13000, PAGE);
	assert_int_equal(uiommu_ioas_contig_last(ioas, 0x10800, 0x14000, &last), 0);
	assert_int_equal(last, 0x11fff);
	assert_int_equal(uiommu_ioas_contig_last(ioas, 0x10000, 0x10100, &last), 0);
	assert_int_equal(last, 0x10100);
	assert_int_equal(uiommu_ioas_contig_last(ioas, 0x12000, 0x14000, &last), -ENOENT);
	assert_int_equal(uiommu_ioas_contig_last(ioas, 0x14000, 0x13000, &last), -EINVAL);
	assert_int_equal(uiommu_ioas_iova_alignment(ioas), 1);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ioas_create_starts_empty_with_full_range_and_alignment_1),
		cmocka_unit_test(test_map_without_prot_or_with_unknown_bits_is_einval),
		cmocka_unit_test(test_map_checks_user_range_before_length),
		cmocka_unit_test(test_map_fixed_checks_in_kernel_order),
		cmocka_unit_test(test_map_without_domain_accepts_memory_that_is_not_there),
		cmocka_unit_test(test_map_without_domain_is_byte_granular),
		cmocka_unit_test(test_auto_iova_starts_at_page_size_never_zero),
		cmocka_unit_test(test_auto_iova_never_uses_the_last_page),
		cmocka_unit_test(test_auto_iova_refuses_a_start_on_the_last_byte_of_a_hole),
		cmocka_unit_test(test_auto_iova_alignment_follows_length_and_uva),
		cmocka_unit_test(test_auto_iova_is_aligned_to_lowest_bit_of_every_length),
		cmocka_unit_test(test_auto_iova_below_ioas_alignment_is_einval),
		cmocka_unit_test(test_auto_iova_huge_length_is_eoverflow),
		cmocka_unit_test(test_auto_iova_first_fit_avoids_reserved_and_areas),
		cmocka_unit_test(test_auto_iova_stays_inside_allowed_ranges),
		cmocka_unit_test(test_auto_iova_enospc_when_no_hole_fits),
		cmocka_unit_test(test_unmap_removes_whole_areas_and_reports_bytes),
		cmocka_unit_test(test_unmap_argument_errors),
		cmocka_unit_test(test_unmap_all_empties_and_succeeds_when_empty),
		cmocka_unit_test(test_unmap_is_not_atomic),
		cmocka_unit_test(test_copy_makes_one_area_per_source_slice_sharing_pages),
		cmocka_unit_test(test_copy_within_one_ioas_with_auto_iova),
		cmocka_unit_test(test_copy_source_must_be_covered_without_holes),
		cmocka_unit_test(test_copy_argument_errors_in_order),
		cmocka_unit_test(test_copy_sweep_of_byte_unaligned_windows),
		cmocka_unit_test(test_map_file_maps_the_range_and_owns_the_mapping),
		cmocka_unit_test(test_map_file_errors),
		cmocka_unit_test(test_iova_ranges_are_the_gaps_of_reserved_and_emsgsize_reports_total),
		cmocka_unit_test(test_allow_iovas_rejects_bad_and_overlapping_entries),
		cmocka_unit_test(test_allow_iovas_over_reserved_is_eaddrinuse_and_keeps_old_list),
		cmocka_unit_test(test_reserve_conflicts_with_areas_and_allowed),
		cmocka_unit_test(test_unreserve_drops_only_that_owners_ranges),
		cmocka_unit_test(test_huge_pages_off_raises_alignment_to_page_size),
		cmocka_unit_test(test_huge_pages_off_with_misaligned_area_is_eaddrinuse),
		cmocka_unit_test(test_huge_pages_off_with_domain_and_areas_is_einval),
		cmocka_unit_test(test_stats_count_areas_bytes_domains_and_accesses),
		cmocka_unit_test(test_contig_last_stops_at_the_first_hole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
