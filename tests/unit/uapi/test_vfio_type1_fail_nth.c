// SPDX-License-Identifier: MIT
/*
 * Fail-nth sweep of the type1 allocation paths (src/core/alloc.c): for each
 * operation, the n-th allocation is made to fail for n = 1, 2, ... until the
 * operation succeeds. Every failure must be -ENOMEM and leave nothing
 * behind: the state the test can observe through the uAPI is the state
 * before the call, the same call succeeds afterwards, and ASan finds no leak.
 * Skipped in builds without injection (-Ddebug_checks=false).
 */
#include "vt1_test.h"

#include "core/core_internal.h"

#define IOVA 0x100000ull
#define DEV "0000:00:01.0"

typedef long (*op_fn)(struct vt1 *t);
/* Asserts that a failed op left the state as it was. */
typedef void (*unchanged_fn)(struct vt1 *t);

static uint32_t dma_avail(struct vt1 *t)
{
	uint64_t buf[32] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_info_cap_header *h;

	info->argsz = sizeof(buf);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	for (uint32_t off = info->cap_offset; off; off = h->next) {
		h = (void *)((char *)buf + off);
		if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
			return ((struct vfio_iommu_type1_info_dma_avail *)h)->avail;
	}
	fail();
	return 0;
}

static void sweep(struct vt1 *(*setup)(void), op_fn op, unchanged_fn unchanged)
{
	long rc = -ENOMEM;
	unsigned long n;

	for (n = 1; rc == -ENOMEM; n++) {
		struct vt1 *t = setup();

		uiommu__fail_nth_set(n);
		rc = op(t);
		uiommu__fail_nth_set(0);
		if (rc < 0) {
			assert_int_equal(rc, -ENOMEM);
			unchanged(t);
			assert_true(op(t) >= 0);
		}
		vt1_free(t);
	}
	print_message("%lu allocation failure points swept\n", n - 2);
}

#ifdef UIOMMU_DEBUG_CHECKS
#define REQUIRE_FAIL_NTH() ((void)0)
#else
#define REQUIRE_FAIL_NTH() skip()
#endif

/* ---- fixtures ---- */

static struct vt1 *joined(void)
{
	struct vt1 *t = vt1_new();

	vt1_join(t, t->g);
	return t;
}

static struct vt1 *ready(void)
{
	return vt1_ready(VFIO_TYPE1v2_IOMMU);
}

static struct vt1 *mapped(void)
{
	struct vt1 *t = ready();

	assert_int_equal(vt1_map_mem(t, 0, IOVA, 4 * MiB), 0);
	return t;
}

static struct vt1 *tracking(void)
{
	struct vt1 *t = mapped();

	assert_int_equal(vt1_dirty(t, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	return t;
}

static struct vt1 *emu_mapped(void)
{
	struct vt1 *t = vt1_ready_emu();

	assert_int_equal(vt1_map_mem(t, 0, IOVA, 4 * MiB), 0);
	assert_int_equal(vt1_dirty(t, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	return t;
}

/* ---- operations and what "unchanged" means for each ---- */

static long op_set_iommu(struct vt1 *t)
{
	return cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU);
}

static void no_type(struct vt1 *t)
{
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };

	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, &info), -EINVAL);
}

static long op_map(struct vt1 *t)
{
	return vt1_map_mem(t, 4 * MiB, IOVA + 4 * MiB, 4 * MiB);
}

static void one_mapping(struct vt1 *t)
{
	assert_int_equal(dma_avail(t), UIOMMU_VFIO_DMA_ENTRY_LIMIT - 1);
}

static long op_dirty_start(struct vt1 *t)
{
	return vt1_dirty(t, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
}

static void not_tracking(struct vt1 *t)
{
	uint64_t bm[16] = { 0 };

	assert_int_equal(vt1_get_bitmap(t, IOVA, 4 * MiB, PG, bm, sizeof(bm)), -EINVAL);
}

static long op_unmap_bitmap(struct vt1 *t)
{
	static uint64_t bm[16];
	uint64_t buf[8] = { 0 };
	struct vfio_iommu_type1_dma_unmap *u = (void *)buf;
	struct vfio_bitmap *b = (void *)u->data;

	u->argsz = sizeof(*u) + sizeof(*b);
	u->flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	u->iova = IOVA;
	u->size = 4 * MiB;
	*b = (struct vfio_bitmap){ .pgsize = PG, .size = sizeof(bm), .data = (__u64 *)bm };
	return cio(t, VFIO_IOMMU_UNMAP_DMA, u);
}

static void still_tracked_mapping(struct vt1 *t)
{
	uint64_t bm[16] = { 0 };

	one_mapping(t);
	assert_int_equal(vt1_get_bitmap(t, IOVA, 4 * MiB, PG, bm, sizeof(bm)), 0);
}

static long op_get_device_fd(struct vt1 *t)
{
	return gio_name(t->g, DEV);
}

static void no_device_fd(struct vt1 *t)
{
	/* UNSET works only without device fds; join again for the retry. */
	assert_int_equal(gio(t->g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0);
	vt1_join(t, t->g);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
}

static long op_log_start(struct vt1 *t)
{
	struct uiommu_vfio_device *d = uiommu_vfio_group_device(t->g, DEV);
	struct uiommu_iova_range r[2] = { { IOVA, IOVA + MiB - 1 }, { 0, PG - 1 } };
	uint64_t pg = PG;

	assert_int_equal(uiommu_vfio_device_set_log_capable(d, true), 0);
	return uiommu_vfio_device_log_start(d, &pg, r, 2);
}

static void log_not_started(struct vt1 *t)
{
	struct uiommu_vfio_device *d = uiommu_vfio_group_device(t->g, DEV);
	uint64_t bm[4] = { 0 };

	assert_int_equal(uiommu_vfio_device_log_report(d, IOVA, PG, PG, bm), -EINVAL);
}

static long op_pin(struct vt1 *t)
{
	return vt1_pin(t, IOVA, 8, UIOMMU_PROT_READ | UIOMMU_PROT_WRITE);
}

static void nothing_pinned(struct vt1 *t)
{
	uint64_t bm[16] = { 0 };

	/*
	 * A pinned page is reported dirty by every query. Pages pinned and then
	 * unwound stay marked once, as in the kernel (its bitmap_set is not
	 * undone): the second query must be empty.
	 */
	assert_int_equal(vt1_get_bitmap(t, IOVA, 4 * MiB, PG, bm, sizeof(bm)), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(vt1_get_bitmap(t, IOVA, 4 * MiB, PG, bm, sizeof(bm)), 0);
	assert_int_equal(bits_count(bm, 16), 0);
}

/* ---- tests ---- */

static void test_set_iommu_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(joined, op_set_iommu, no_type);
}

static void test_map_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(mapped, op_map, one_mapping);
}

static void test_dirty_start_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(mapped, op_dirty_start, not_tracking);
}

static void test_unmap_bitmap_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(tracking, op_unmap_bitmap, still_tracked_mapping);
}

static void test_get_device_fd_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(ready, op_get_device_fd, no_device_fd);
}

static void test_log_start_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(ready, op_log_start, log_not_started);
}

static void test_pin_fail_nth(void **state)
{
	(void)state;
	REQUIRE_FAIL_NTH();
	sweep(emu_mapped, op_pin, nothing_pinned);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_iommu_fail_nth),
		cmocka_unit_test(test_map_fail_nth),
		cmocka_unit_test(test_dirty_start_fail_nth),
		cmocka_unit_test(test_unmap_bitmap_fail_nth),
		cmocka_unit_test(test_get_device_fd_fail_nth),
		cmocka_unit_test(test_log_start_fail_nth),
		cmocka_unit_test(test_pin_fail_nth),
	};

	return cmocka_run_group_tests_name("vfio_type1_fail_nth", tests, NULL, NULL);
}
