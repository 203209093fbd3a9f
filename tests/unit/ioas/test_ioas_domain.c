/* SPDX-License-Identifier: MIT */
/*
 * Tests of domains under an IOAS: mirroring (checked through
 * uiommu_domain_lookup), what attaching changes (alignment, reservations),
 * pin-on-demand (-EFAULT only when something pins), pin counts across
 * domains, COPY and unmap, and fail-nth sweeps showing that -ENOMEM changes
 * nothing.
 */
#include "ioas_test.h"

#define AP MOCK_APERTURE_START

static void test_domain_add_mirrors_existing_and_later_areas(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(8 * PAGE, PAGE);
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK);
	struct uiommu_pte_info info;
	uint64_t iova = AP;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * PAGE, RW, FIXED, &iova), 0);
	iova = AP + 0x10000;
	assert_int_equal(uiommu_ioas_map(ioas, buf + PAGE / 2, PAGE / 2, UIOMMU_PROT_READ, FIXED,
					 &iova),
			 0);
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, AP, MOCK_APERTURE_LAST), 0);
	assert_domain_maps(d, AP, buf, 2 * PAGE, MOCK_PAGE);
	assert_domain_maps(d, AP + 0x10000, buf + PAGE / 2, PAGE / 2, MOCK_PAGE);
	assert_int_equal(uiommu_domain_lookup(d, AP + 0x10000, &info), 0);
	assert_int_equal(info.prot, UIOMMU_PROT_READ);
	assert_int_equal(uiommu_domain_lookup(d, AP, &info), 0);
	assert_int_equal(info.prot, RW);
	/* later maps are mirrored as they are made */
	assert_int_equal(uiommu_ioas_map(ioas, buf + 4 * PAGE, 4 * PAGE, RW, 0, &iova), 0);
	assert_domain_maps(d, iova, buf + 4 * PAGE, 4 * PAGE, MOCK_PAGE);
	assert_int_equal(domain_mapped(d), 6 * PAGE + PAGE / 2);
	assert_int_equal(uiommu_ioas_unmap(ioas, AP + 0x10000, PAGE / 2, NULL), 0);
	assert_domain_unmapped(d, AP + 0x10000);
	assert_int_equal(uiommu_ioas_domain_count(ioas), 1);
	uiommu_ioas_domain_remove(ioas, d);
	assert_int_equal(domain_mapped(d), 0);
	assert_int_equal(uiommu_ioas_domain_count(ioas), 0);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 8 * PAGE);
}

static void test_domain_add_raises_alignment_and_reserves_outside_aperture(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = mock_domain_add(ioas);
	struct uiommu_iova_range r[4];
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t align = 0, iova;
	size_t total;

	(void)state;
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 4, &total, &align), 0);
	assert_int_equal(total, 1);
	assert_true(r[0].start == AP && r[0].last == MOCK_APERTURE_LAST);
	assert_int_equal(align, MOCK_PAGE);
	iova = 0x800;
	assert_int_equal(uiommu_ioas_map(ioas, buf, MOCK_PAGE, RW, FIXED, &iova), -EINVAL);
	iova = AP;
	assert_int_equal(uiommu_ioas_map(ioas, buf, MOCK_PAGE + 1, RW, FIXED, &iova), -EINVAL);
	assert_int_equal(uiommu_ioas_map(ioas, buf + 1, MOCK_PAGE, RW, FIXED, &iova), -EINVAL);
	/* automatic allocation lands inside the aperture */
	assert_int_equal(uiommu_ioas_map(ioas, buf, MOCK_PAGE, RW, 0, &iova), 0);
	assert_true(iova >= AP && iova + MOCK_PAGE - 1 <= MOCK_APERTURE_LAST);
	uiommu_ioas_domain_remove(ioas, d);
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 4, &total, &align), 0);
	assert_true(total == 1 && r[0].start == 0 && r[0].last == UINT64_MAX && align == 1);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_domain_aperture_is_clipped_to_max_iova(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = domain_new(UIOMMU_PT_X86);
	struct uiommu_iova_range r[4];
	size_t total;

	(void)state;
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, 5 * PAGE, 4 * PAGE), -EINVAL);
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, 0, UINT64_MAX), 0);
	assert_int_equal(uiommu_ioas_iova_ranges(ioas, r, 4, &total, NULL), 0);
	assert_true(total == 1 && r[0].start == 0 && r[0].last == uiommu_domain_max_iova(d));
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, 0, UINT64_MAX), -EEXIST);
	uiommu_ioas_domain_remove(ioas, d);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
}

static void add_fails_unchanged(struct uiommu_ioas *ioas, struct uiommu_domain *d, int err)
{
	struct snap s;

	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, AP, MOCK_APERTURE_LAST), err);
	assert_unchanged(ioas, &s);
	assert_int_equal(domain_mapped(d), 0);
}

static void test_domain_add_with_misaligned_area_is_eaddrinuse(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK);
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t iova = AP;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, MOCK_PAGE + 1, RW, FIXED, &iova), 0);
	add_fails_unchanged(ioas, d, -EADDRINUSE);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf + 1, MOCK_PAGE, RW, FIXED, &iova), 0);
	add_fails_unchanged(ioas, d, -EADDRINUSE);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_domain_add_with_area_or_allowed_outside_aperture_is_eaddrinuse(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK);
	struct uiommu_iova_range allowed = { 0x1000, 0x1fff };
	char *buf = buf_alloc(PAGE, PAGE);
	uint64_t iova = MOCK_APERTURE_LAST + 1;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	add_fails_unchanged(ioas, d, -EADDRINUSE);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	assert_int_equal(uiommu_ioas_allow_iovas(ioas, &allowed, 1), 0);
	add_fails_unchanged(ioas, d, -EADDRINUSE);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_domain_add_with_missing_user_memory_is_efault(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK);
	char *buf = buf_alloc(2 * PAGE, PAGE);
	uint64_t iova = AP;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * PAGE, RW, FIXED, &iova), 0);
	buf_free(buf + PAGE, PAGE); /* half of it goes away */
	add_fails_unchanged(ioas, d, -EFAULT);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	/* read-only memory under a writable area */
	assert_int_equal(mprotect(buf, PAGE, PROT_READ), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	add_fails_unchanged(ioas, d, -EFAULT);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, UIOMMU_PROT_READ, FIXED, &iova), 0);
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, AP, MOCK_APERTURE_LAST), 0);
	assert_refs(buf, PAGE, 1);
	uiommu_ioas_domain_remove(ioas, d);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

static void test_map_with_domain_checks_user_memory(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = mock_domain_add(ioas);
	char *buf = buf_alloc(2 * PAGE, PAGE);
	void *hole = buf_hole(PAGE);
	uint64_t iova = AP;
	struct snap s;

	(void)state;
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_map(ioas, hole, PAGE, RW, FIXED, &iova), -EFAULT);
	assert_int_equal(uiommu_ioas_map(ioas, buf + PAGE, 2 * PAGE, RW, FIXED, &iova), -EFAULT);
	assert_int_equal(mprotect(buf, PAGE, PROT_READ), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), -EFAULT);
	assert_unchanged(ioas, &s);
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, UIOMMU_PROT_READ, FIXED, &iova), 0);
	/* a munmap after the map is the program's business */
	buf_free(buf, 2 * PAGE);
	assert_int_equal(uiommu_ioas_unmap(ioas, AP, PAGE, NULL), 0);
	uiommu_ioas_domain_remove(ioas, d);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
}

static void test_map_failing_in_a_later_domain_undoes_the_earlier_ones(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d1 = mock_domain_add(ioas), *d2 = mock_domain_add(ioas);
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova = AP;
	struct snap s;

	(void)state;
	/* Someone else's mapping in d2 makes the mirror fail there. */
	assert_int_equal(uiommu_domain_map(d2, AP + 3 * PAGE, buf, MOCK_PAGE, UIOMMU_PROT_READ), 0);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * PAGE, RW, FIXED, &iova), -EEXIST);
	assert_int_equal(domain_mapped(d1), 0);
	assert_int_equal(domain_mapped(d2), MOCK_PAGE);
	assert_refs(buf, 4 * PAGE, 0);
	assert_unchanged(ioas, &s);
	assert_int_equal(uiommu_domain_unmap(d2, AP + 3 * PAGE, MOCK_PAGE, NULL), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * PAGE, RW, FIXED, &iova), 0);
	assert_domain_maps(d1, AP, buf, 4 * PAGE, MOCK_PAGE);
	assert_domain_maps(d2, AP, buf, 4 * PAGE, MOCK_PAGE);
	uiommu_ioas_domain_remove(ioas, d1);
	uiommu_ioas_domain_remove(ioas, d2);
	uiommu_domain_destroy(d1);
	uiommu_domain_destroy(d2);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_domain_add_failing_to_map_leaves_domain_and_ioas_unchanged(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = domain_new(UIOMMU_PT_MOCK);
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova = AP;
	struct snap s;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	iova = AP + 4 * PAGE;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, RW, FIXED, &iova), 0);
	/* Someone else's mapping in the domain: the second area cannot go in. */
	assert_int_equal(uiommu_domain_map(d, AP + 4 * PAGE, buf, MOCK_PAGE, RW), 0);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_domain_add(ioas, d, AP, MOCK_APERTURE_LAST), -EEXIST);
	assert_unchanged(ioas, &s);
	assert_int_equal(domain_mapped(d), MOCK_PAGE);
	assert_domain_unmapped(d, AP);
	assert_refs(buf, 4 * PAGE, 0);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_huge_pages_disabled_maps_only_small_leaves(void **state)
{
	char *buf = buf_alloc(4 * MiB, 2 * MiB);

	(void)state;
	for (int huge = 0; huge < 2; huge++) {
		struct uiommu_ioas *ioas = ioas_new();
		struct uiommu_domain *d = domain_new(UIOMMU_PT_X86);
		struct uiommu_pte_info info;
		uint64_t iova = 2 * MiB;

		assert_int_equal(uiommu_ioas_set_huge_pages(ioas, huge), 0);
		assert_int_equal(uiommu_ioas_domain_add(ioas, d, 0, UINT64_MAX), 0);
		assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * MiB, RW, FIXED, &iova), 0);
		for (uint64_t off = 0; off < 4 * MiB; off += 256 * KiB) {
			assert_int_equal(uiommu_domain_lookup(d, iova + off, &info), 0);
			assert_int_equal(info.leaf_size, huge ? 2 * MiB : 4 * KiB);
			assert_ptr_equal(info.host, buf + off);
		}
		uiommu_ioas_domain_remove(ioas, d);
		assert_int_equal(domain_mapped(d), 0);
		uiommu_domain_destroy(d);
		uiommu_ioas_destroy(ioas);
	}
	buf_free(buf, 4 * MiB);
}

/* ---- pins ---- */

/* The selftest's all_aligns: every 2 KiB-aligned [start, end) of a buffer. */
static void all_aligns(unsigned int nr_domains)
{
	uint64_t size = 4 * PAGE;
	char *buf = buf_alloc(size, PAGE);
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d[2] = { NULL, NULL };

	for (unsigned int i = 0; i < nr_domains; i++)
		d[i] = mock_domain_add(ioas);
	for (uint64_t start = 0; start < size; start += MOCK_PAGE) {
		for (uint64_t end = start + MOCK_PAGE; end <= size; end += MOCK_PAGE) {
			uint64_t iova = AP + start, first = start & ~(PAGE - 1);
			uint64_t last = (end + PAGE - 1) & ~(PAGE - 1);

			assert_int_equal(uiommu_ioas_map(ioas, buf + start, end - start, RW, FIXED,
							 &iova),
					 0);
			for (unsigned int i = 0; i < nr_domains; i++)
				assert_domain_maps(d[i], iova, buf + start, end - start, MOCK_PAGE);
			assert_refs(buf, first, 0);
			assert_refs(buf + first, last - first, nr_domains ? 1 : 0);
			assert_refs(buf + last, size - last, 0);
			assert_int_equal(ioas_stats(ioas).pinned_pages,
					 nr_domains ? (last - first) / PAGE : 0);
			assert_int_equal(uiommu_ioas_unmap(ioas, iova, end - start, NULL), 0);
			assert_refs(buf, size, 0);
		}
	}
	for (unsigned int i = 0; i < nr_domains; i++) {
		uiommu_ioas_domain_remove(ioas, d[i]);
		uiommu_domain_destroy(d[i]);
	}
	uiommu_ioas_destroy(ioas);
	buf_free(buf, size);
}

static void test_pin_refs_are_one_per_cpu_page_with_zero_one_or_two_domains(void **state)
{
	(void)state;
	all_aligns(0);
	all_aligns(1);
	all_aligns(2);
}

static void test_pin_refs_follow_domains_coming_and_going(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	struct uiommu_domain *d1, *d2;
	uint64_t iova = AP;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * PAGE, RW, FIXED, &iova), 0);
	assert_refs(buf, 4 * PAGE, 0);
	d1 = mock_domain_add(ioas);
	assert_refs(buf, 4 * PAGE, 1);
	d2 = mock_domain_add(ioas);
	assert_refs(buf, 4 * PAGE, 1);
	uiommu_ioas_domain_remove(ioas, d1);
	uiommu_domain_destroy(d1);
	assert_refs(buf, 4 * PAGE, 1);
	assert_int_equal(ioas_stats(ioas).pinned_pages, 4);
	uiommu_ioas_domain_remove(ioas, d2);
	assert_refs(buf, 4 * PAGE, 0);
	assert_int_equal(ioas_stats(ioas).pinned_pages, 0);
	d1 = mock_domain_add(ioas);
	assert_refs(buf, 4 * PAGE, 1);
	/* destroy with a domain still attached (a caller bug) still cleans up */
	uiommu_ioas_destroy(ioas);
	assert_refs(buf, 4 * PAGE, 0);
	assert_int_equal(domain_mapped(d1), 0);
	uiommu_domain_destroy(d1);
	uiommu_domain_destroy(d2);
	buf_free(buf, 4 * PAGE);
}

static void test_pin_refs_are_shared_by_copy_across_ioases(void **state)
{
	struct uiommu_ioas *a = ioas_new(), *b = ioas_new(), *c = ioas_new();
	struct uiommu_domain *da = mock_domain_add(a), *db = mock_domain_add(b);
	char *buf = buf_alloc(8 * PAGE, PAGE);
	uint64_t iova = AP, dst = AP + 0x100000;

	(void)state;
	assert_int_equal(uiommu_ioas_map(a, buf, 8 * PAGE, RW, FIXED, &iova), 0);
	assert_int_equal(uiommu_ioas_copy(b, &dst, a, AP + 2 * PAGE, 4 * PAGE, RW, FIXED), 0);
	assert_domain_maps(db, dst, buf + 2 * PAGE, 4 * PAGE, MOCK_PAGE);
	assert_refs(buf, 8 * PAGE, 1);
	dst = AP;
	assert_int_equal(uiommu_ioas_copy(c, &dst, a, AP, 8 * PAGE, RW, FIXED), 0);
	assert_refs(buf, 8 * PAGE, 1);
	assert_int_equal(uiommu_ioas_unmap(a, AP, 8 * PAGE, NULL), 0);
	assert_refs(buf, 2 * PAGE, 0);
	assert_refs(buf + 2 * PAGE, 4 * PAGE, 1);
	assert_refs(buf + 6 * PAGE, 2 * PAGE, 0);
	assert_int_equal(ioas_stats(b).pinned_pages, 4);
	/* c pins nothing itself, but its pages object is the one b pins */
	assert_int_equal(ioas_stats(c).pinned_pages, 4);
	assert_int_equal(uiommu_ioas_unmap(b, 0, UINT64_MAX, NULL), 0);
	assert_refs(buf, 8 * PAGE, 0);
	uiommu_ioas_domain_remove(a, da);
	uiommu_ioas_domain_remove(b, db);
	uiommu_domain_destroy(da);
	uiommu_domain_destroy(db);
	uiommu_ioas_destroy(a);
	uiommu_ioas_destroy(b);
	uiommu_ioas_destroy(c);
	buf_free(buf, 8 * PAGE);
}

static void test_pin_refs_count_each_map_of_the_same_memory(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_domain *d = mock_domain_add(ioas);
	char *buf = buf_alloc(2 * PAGE, PAGE);
	uint64_t a, b;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * PAGE, RW, 0, &a), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf + PAGE, PAGE, RW, 0, &b), 0);
	assert_refs(buf, PAGE, 1);
	assert_refs(buf + PAGE, PAGE, 2);
	assert_int_equal(ioas_stats(ioas).pinned_pages, 3);
	assert_int_equal(uiommu_ioas_unmap(ioas, a, 2 * PAGE, NULL), 0);
	assert_refs(buf, PAGE, 0);
	assert_refs(buf + PAGE, PAGE, 1);
	uiommu_ioas_domain_remove(ioas, d);
	assert_refs(buf, 2 * PAGE, 0);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 2 * PAGE);
}

/* ---- cut ---- */

static void noop_unmap(void *opaque, uint64_t iova, uint64_t length)
{
	(void)opaque;
	(void)iova;
	(void)length;
}

static void test_cut_splits_an_area_into_two_sharing_its_pages(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova = 0x10000, bytes = 0;
	struct snap s;

	(void)state;
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * PAGE, RW, FIXED, &iova), 0);
	snap_take(ioas, &s);
	/* in a hole, at the first or at the last byte: nothing to do */
	assert_int_equal(uiommu_ioas_cut(ioas, 0x5000), 0);
	assert_int_equal(uiommu_ioas_cut(ioas, 0x10000), 0);
	assert_int_equal(uiommu_ioas_cut(ioas, 0x13fff), 0);
	assert_unchanged(ioas, &s);
	assert_int_equal(uiommu_ioas_cut(ioas, 0x11fff), 0);
	snap_take(ioas, &s);
	assert_int_equal(s.nr_areas, 2);
	assert_true(s.areas[0].last == 0x11fff && s.areas[1].start == 0x12000);
	assert_true(s.areas[1].uva == (uintptr_t)buf + 2 * PAGE);
	assert_ptr_equal(s.areas[0].pages, s.areas[1].pages);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x12000, 2 * PAGE, &bytes), 0);
	assert_int_equal(bytes, 2 * PAGE);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_cut_refuses_misaligned_pinned_or_large_leaf_areas(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_access_ops ops = { .needs_pin = true, .unmap = noop_unmap };
	struct uiommu_access *acc;
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova = AP;
	struct uiommu_domain *d;
	void *pages[1];
	struct snap s;

	(void)state;
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * PAGE, RW, FIXED, &iova), 0);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_ioas_cut(ioas, AP + PAGE / 2 - 1), -EINVAL);
	assert_int_equal(uiommu_access_create(ioas, &ops, NULL, &acc), 0);
	assert_int_equal(uiommu_access_pin(acc, AP, PAGE, 0, pages, 1), 0);
	assert_int_equal(uiommu_ioas_cut(ioas, AP + PAGE - 1), -EINVAL);
	uiommu_access_destroy(acc);
	assert_unchanged(ioas, &s);
	/* a domain with huge pages enabled could hold leaves across the cut */
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, true), 0);
	d = mock_domain_add(ioas);
	assert_int_equal(uiommu_ioas_cut(ioas, AP + PAGE - 1), -EINVAL);
	uiommu_ioas_domain_remove(ioas, d);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_cut_with_small_leaves_keeps_domain_and_pins(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * MiB, 2 * MiB);
	uint64_t iova = AP;
	struct uiommu_domain *d;

	(void)state;
	assert_int_equal(uiommu_ioas_set_huge_pages(ioas, false), 0);
	d = mock_domain_add(ioas);
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * MiB, RW, FIXED, &iova), 0);
	assert_int_equal(uiommu_ioas_cut(ioas, AP + 3 * MiB - 1), 0);
	assert_int_equal(uiommu_ioas_cut(ioas, AP + MiB - 1), 0);
	assert_int_equal(ioas_stats(ioas).areas, 3);
	assert_refs(buf, 4 * MiB, 1);
	assert_int_equal(ioas_stats(ioas).pinned_pages, 4 * MiB / PAGE);
	assert_int_equal(uiommu_ioas_unmap(ioas, AP + MiB, 2 * MiB, NULL), 0);
	assert_domain_maps(d, AP, buf, MiB, 64 * KiB);
	assert_domain_unmapped(d, AP + MiB);
	assert_domain_unmapped(d, AP + 3 * MiB - MOCK_PAGE);
	assert_domain_maps(d, AP + 3 * MiB, buf + 3 * MiB, MiB, 64 * KiB);
	assert_refs(buf, MiB, 1);
	assert_refs(buf + MiB, 2 * MiB, 0);
	uiommu_ioas_domain_remove(ioas, d);
	assert_refs(buf, 4 * MiB, 0);
	uiommu_domain_destroy(d);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * MiB);
}

/* ---- fail-nth ---- */

static void test_cut_failing_to_allocate_changes_nothing(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(4 * PAGE, PAGE);
	uint64_t iova = 0x10000;
	struct snap s;

	(void)state;
	REQUIRE_FAIL_NTH();
	assert_int_equal(uiommu_ioas_map(ioas, buf, 4 * PAGE, RW, FIXED, &iova), 0);
	snap_take(ioas, &s);
	uiommu__fail_nth_set(1);
	assert_int_equal(uiommu_ioas_cut(ioas, 0x10fff), -ENOMEM);
	uiommu__fail_nth_set(0);
	assert_unchanged(ioas, &s);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}


/* A populated IOAS with two x86 domains; areas from two buffers. */
static struct uiommu_ioas *populated(struct uiommu_domain **d, unsigned int nr_domains,
				     char *buf)
{
	struct uiommu_ioas *ioas = ioas_new();
	uint64_t iova = 2 * MiB;

	for (unsigned int i = 0; i < nr_domains; i++) {
		d[i] = domain_new(UIOMMU_PT_X86);
		assert_int_equal(uiommu_ioas_domain_add(ioas, d[i], 0, UINT64_MAX), 0);
	}
	assert_int_equal(uiommu_ioas_map(ioas, buf, 2 * MiB, RW, FIXED, &iova), 0);
	iova = 4 * MiB;
	assert_int_equal(uiommu_ioas_map(ioas, buf + 2 * MiB, 2 * MiB - PAGE, RW, FIXED, &iova),
			 0);
	iova = 6 * MiB - PAGE;
	assert_int_equal(uiommu_ioas_map(ioas, buf, PAGE, UIOMMU_PROT_READ, FIXED, &iova), 0);
	return ioas;
}

static void teardown(struct uiommu_ioas *ioas, struct uiommu_domain **d, unsigned int nr)
{
	for (unsigned int i = 0; i < nr; i++)
		uiommu_ioas_domain_remove(ioas, d[i]);
	uiommu_ioas_destroy(ioas);
	for (unsigned int i = 0; i < nr; i++)
		uiommu_domain_destroy(d[i]);
}

/* Every sweep must have met several allocations (pages, areas, tables). */
#define CHECK_SWEPT(n) assert_true((n) >= 3)

enum sweep_op { SWEEP_MAP, SWEEP_COPY, SWEEP_DOMAIN_ADD };

static int sweep_call(enum sweep_op op, struct uiommu_ioas *ioas, struct uiommu_domain *extra,
		      char *buf)
{
	uint64_t iova = 1ull << 30;

	switch (op) {
	case SWEEP_MAP:
		/* Crosses a 1 GiB boundary, so both domains need new tables. */
		iova -= 2 * MiB;
		return uiommu_ioas_map(ioas, buf, 4 * MiB, RW, FIXED, &iova);
	case SWEEP_COPY:
		return uiommu_ioas_copy(ioas, &iova, ioas, 3 * MiB, 3 * MiB, UIOMMU_PROT_READ,
					FIXED);
	default:
		return uiommu_ioas_domain_add(ioas, extra, 0, UINT64_MAX);
	}
}

static void fail_nth_sweep(enum sweep_op op)
{
	char *buf = buf_alloc(4 * MiB, 2 * MiB);
	int rc = -ENOMEM;
	unsigned long n;

	for (n = 1; rc == -ENOMEM; n++) {
		struct uiommu_domain *d[3] = { NULL, NULL, NULL };
		struct uiommu_ioas *ioas = populated(d, 2, buf);
		struct snap s;

		d[2] = domain_new(UIOMMU_PT_X86);
		snap_take(ioas, &s);
		uiommu__fail_nth_set(n);
		rc = sweep_call(op, ioas, d[2], buf);
		uiommu__fail_nth_set(0);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_unchanged(ioas, &s);
			assert_int_equal(domain_mapped(d[2]), 0);
		} else {
			uint64_t added = op == SWEEP_COPY ? 3 : op == SWEEP_MAP ? 1 : 0;

			assert_int_equal(ioas_stats(ioas).areas, s.nr_areas + added);
		}
		teardown(ioas, d, op == SWEEP_DOMAIN_ADD && !rc ? 3 : 2);
		if (op != SWEEP_DOMAIN_ADD || rc)
			uiommu_domain_destroy(d[2]);
		assert_refs(buf, 4 * MiB, 0);
	}
	print_message("%lu allocation failure points swept\n", n - 2);
	CHECK_SWEPT(n - 2);
	buf_free(buf, 4 * MiB);
}

static void test_map_failing_at_every_allocation_changes_nothing(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	fail_nth_sweep(SWEEP_MAP);
}

static void test_copy_failing_at_every_allocation_changes_nothing(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	fail_nth_sweep(SWEEP_COPY);
}

static void test_domain_add_failing_at_every_allocation_changes_nothing(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	fail_nth_sweep(SWEEP_DOMAIN_ADD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_add_mirrors_existing_and_later_areas),
		cmocka_unit_test(test_domain_add_raises_alignment_and_reserves_outside_aperture),
		cmocka_unit_test(test_domain_aperture_is_clipped_to_max_iova),
		cmocka_unit_test(test_domain_add_with_misaligned_area_is_eaddrinuse),
		cmocka_unit_test(test_domain_add_with_area_or_allowed_outside_aperture_is_eaddrinuse),
		cmocka_unit_test(test_domain_add_with_missing_user_memory_is_efault),
		cmocka_unit_test(test_map_with_domain_checks_user_memory),
		cmocka_unit_test(test_map_failing_in_a_later_domain_undoes_the_earlier_ones),
		cmocka_unit_test(test_domain_add_failing_to_map_leaves_domain_and_ioas_unchanged),
		cmocka_unit_test(test_huge_pages_disabled_maps_only_small_leaves),
		cmocka_unit_test(test_pin_refs_are_one_per_cpu_page_with_zero_one_or_two_domains),
		cmocka_unit_test(test_pin_refs_follow_domains_coming_and_going),
		cmocka_unit_test(test_pin_refs_are_shared_by_copy_across_ioases),
		cmocka_unit_test(test_pin_refs_count_each_map_of_the_same_memory),
		cmocka_unit_test(test_cut_splits_an_area_into_two_sharing_its_pages),
		cmocka_unit_test(test_cut_refuses_misaligned_pinned_or_large_leaf_areas),
		cmocka_unit_test(test_cut_with_small_leaves_keeps_domain_and_pins),
		cmocka_unit_test(test_cut_failing_to_allocate_changes_nothing),
		cmocka_unit_test(test_map_failing_at_every_allocation_changes_nothing),
		cmocka_unit_test(test_copy_failing_at_every_allocation_changes_nothing),
		cmocka_unit_test(test_domain_add_failing_at_every_allocation_changes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
