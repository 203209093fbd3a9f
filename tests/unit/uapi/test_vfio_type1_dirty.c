// SPDX-License-Identifier: MIT
/*
 * Type1 dirty tracking and pinning (uapi-spec §1.6, §1.8 rules 9-15): one
 * test per rule, through VFIO_IOMMU_DIRTY_PAGES and UNMAP_DMA; the pinning
 * and rw calls of an emulated device (vfio_pin_pages, vfio_dma_rw).
 */
#include "vt1_test.h"

#define START VFIO_IOMMU_DIRTY_PAGES_FLAG_START
#define STOP VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP

/* §1.8 rule 9. */
static void test_dirty_flags(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU), *v1 = vt1_ready(VFIO_TYPE1_IOMMU);
	struct vfio_iommu_type1_dirty_bitmap d = { .argsz = 7, .flags = START };
	uint64_t bm = 0;

	(void)state;
	assert_int_equal(cio(v1, VFIO_IOMMU_DIRTY_PAGES, BAD_PTR), -EACCES);
	assert_int_equal(cio(t, VFIO_IOMMU_DIRTY_PAGES, BAD_PTR), -EFAULT);
	assert_int_equal(cio(t, VFIO_IOMMU_DIRTY_PAGES, &d), -EINVAL);
	assert_int_equal(vt1_dirty(t, 0), -EINVAL);
	assert_int_equal(vt1_dirty(t, START | STOP), -EINVAL);
	assert_int_equal(vt1_dirty(t, 1u << 3), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 0, PG, PG, &bm, 8), -EINVAL); /* before START */
	assert_int_equal(vt1_dirty(t, STOP), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	vt1_free(t);
	vt1_free(v1);
}

/* §1.8 rule 10 and the other GET_BITMAP checks, in order. */
static void test_get_bitmap_checks(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct vt1_get g = { .hdr = { .argsz = sizeof(g) - 1,
				      .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP } };
	uint64_t bm[2] = { 0 };

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 128 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(cio(t, VFIO_IOMMU_DIRTY_PAGES, &g), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 0, 0, PG, bm, 16), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 2 * PG, ~0ull - PG, PG, bm, 16), -EOVERFLOW);
	assert_int_equal(vt1_get_bitmap(t, 0, 128 * PG, PG, (uint64_t *)(1ull << 47), 16),
			 -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 0, 128 * PG, PG, bm, 15), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 0, 128 * PG, PG, bm, (1ull << 28) + 1), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 0, 128 * PG, 2 * PG, bm, 16), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 1, 128 * PG, PG, bm, 16), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, PG, 127 * PG, PG, bm, 16), -EINVAL); /* bisects */
	assert_int_equal(vt1_get_bitmap(t, 0, 128 * PG, PG, BAD_PTR, 16), -EFAULT);
	assert_int_equal(vt1_get_bitmap(t, 0, 128 * PG, PG, bm, 16), 0);
	vt1_free(t);
}

/* §1.8 rules 11, 12 and 14: all-dirty rule, gaps, the shared word OR-merged. */
static void test_merge_adjacent_unaligned(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	uint64_t bm[2] = { 0 };

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 3 * PG), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000 + 3 * PG, 3 * PG), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000 + 8 * PG, PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(vt1_get_bitmap(t, 0x100000, 9 * PG, PG, bm, 8), 0);
	assert_int_equal(bm[0], 0x13f); /* bits 0-5 and 8; the gap 6-7 stays 0 */
	/* The all-dirty rule reports everything again. */
	bm[0] = 0;
	assert_int_equal(vt1_get_bitmap(t, 0x100000, 9 * PG, PG, bm, 8), 0);
	assert_int_equal(bm[0], 0x13f);
	vt1_free(t);
}

/* §1.8 rule 13: pinned pages stay dirty; dma_rw writes are reported once. */
static void test_pinned_and_rw(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t bm = 0;
	char buf[16] = "hello";

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 16 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(vt1_pin(t, 2 * PG, 1, UIOMMU_PROT_READ), 1);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 5 * PG + 10, buf, sizeof(buf), true), 0);
	assert_memory_equal(t->mem + 5 * PG + 10, buf, sizeof(buf));
	assert_int_equal(vt1_get_bitmap(t, 0, 16 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, (1u << 2) | (1u << 5));
	bm = 0;
	assert_int_equal(vt1_get_bitmap(t, 0, 16 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 1u << 2);
	/* Unpinned: reported once more (dirty until the next report), then gone. */
	uiommu_vfio_unpin_pages(t->emu, 2 * PG, 1);
	t->nr_pins = 0;
	bm = 0;
	assert_int_equal(vt1_get_bitmap(t, 0, 16 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 1u << 2);
	bm = 0;
	assert_int_equal(vt1_get_bitmap(t, 0, 16 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0);
	/* A reads through rw does not dirty. */
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 0, buf, sizeof(buf), false), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 16 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0);
	vt1_free(t);
}

/* The pages every report will show while pinned: counted per page, not per pin. */
static void test_count_pinned(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t n = 99;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 16 * PG), 0);
	assert_int_equal(uiommu_vfio_count_pinned(t->c, 0, 16 * PG, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vt1_pin(t, 2 * PG, 3, UIOMMU_PROT_READ), 3);
	assert_int_equal(vt1_pin(t, 3 * PG, 1, UIOMMU_PROT_READ), 1);
	assert_int_equal(uiommu_vfio_count_pinned(t->c, 0, 16 * PG, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(uiommu_vfio_count_pinned(t->c, 3 * PG, PG, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uiommu_vfio_count_pinned(t->c, 0, 0, &n), -EINVAL);
	assert_int_equal(uiommu_vfio_count_pinned(t->c, 2, UINT64_MAX, &n), -EINVAL);
	vt1_free(t);
}

/* A pin by a device of an IOMMU-backed group puts it in pinned scope. */
static void test_pinned_scope(void **state)
{
	static const struct uiommu_vfio_emudev_ops ops = { .dma_unmap = vt1_unmap_cb };
	struct vt1 *t = vt1_new();
	uint64_t bm = 0;

	(void)state;
	assert_int_equal(uiommu_vfio_group_add_emudev(t->g, "vf", &ops, t, &t->emu), 0);
	vt1_join(t, t->g);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0, 8 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 8 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0xff);
	assert_int_equal(vt1_pin(t, 3 * PG, 1, UIOMMU_PROT_WRITE), 1);
	bm = 0;
	assert_int_equal(vt1_get_bitmap(t, 0, 8 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 1u << 3);
	vt1_free(t);
}

/* Detaching a group that was not in pinned scope marks everything dirty. */
static void test_detach_marks_all(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	uint64_t bm = 0;

	(void)state;
	vt1_add_emu(t);
	assert_int_equal(vt1_map_mem(t, 0, 0, 4 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(uiommu_vfio_group_unset_container(t->g), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 4 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0xf);
	bm = 0;
	assert_int_equal(vt1_get_bitmap(t, 0, 4 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0); /* no longer IOMMU mapped: the rule stops */
	vt1_free(t);
}

/* A mapping made while tracking starts clean; STOP discards. */
static void test_new_mapping_starts_clean(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t bm = 0;
	char c = 1;

	(void)state;
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0, 4 * PG), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 4 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, PG, &c, 1, true), 0);
	assert_int_equal(vt1_dirty(t, STOP), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 4 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0);
	vt1_free(t);
}

/* START refuses an entry of more than INT_MAX pages and stays off. */
static void test_start_too_big(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t bm = 0;

	(void)state;
	assert_int_equal(vt1_map(t, RW, 1ull << 40, 0, (1ull << 31) * PG), 0);
	assert_int_equal(vt1_dirty(t, START), -EINVAL);
	assert_int_equal(vt1_get_bitmap(t, 0, PG, PG, &bm, 8), -EINVAL);
	vt1_free(t);
}

/* §1.8 rule 15 and the UNMAP bitmap checks. */
static void test_unmap_get_dirty(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	/* struct vfio_iommu_type1_dma_unmap without its data[], then the bitmap. */
	struct {
		struct {
			__u32 argsz, flags;
			__u64 iova, size;
		} u;
		struct vfio_bitmap b;
	} a;
	uint64_t bm[2] = { 0 };

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 2 * PG), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000 + 4 * PG, PG), 0);
	a.u = (__typeof__(a.u)){ .argsz = sizeof(a),
		.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, .iova = 0x100000 - 2 * PG,
		.size = 8 * PG };
	a.b = (struct vfio_bitmap){ .pgsize = PG, .size = 8, .data = (__u64 *)bm };
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), -EINVAL); /* tracking off */
	assert_int_equal(vt1_dirty(t, START), 0);
	a.u.argsz = sizeof(a) - 1;
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), -EINVAL);
	a.u.argsz = sizeof(a);
	a.b.pgsize = 2 * PG;
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), -EINVAL);
	a.b.pgsize = PG;
	a.b.data = BAD_PTR;
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), -EFAULT);
	assert_int_equal(a.u.size, 8 * PG); /* not written back */
	a.b.data = (__u64 *)bm;
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), 0);
	assert_int_equal(a.u.size, 3 * PG);
	assert_int_equal(bm[0], (3u << 2) | (1u << 6)); /* relative to unmap.iova */
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 2 * PG), 0); /* gone */
	vt1_free(t);
}

/* Bitmap pgsize 0 (the kernel's __ffs(0) is undefined): -EINVAL from GET_BITMAP
 * and from UNMAP with a bitmap, the user's bitmap untouched, the dirty page
 * still pending for the next report and the mapping still there. */
static void test_bitmap_pgsize_zero(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	struct {
		struct {
			__u32 argsz, flags;
			__u64 iova, size;
		} u;
		struct vfio_bitmap b;
	} a;
	uint64_t bm = 0xa5a5a5a5a5a5a5a5ull;
	char c = 1;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 16 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 5 * PG, &c, 1, true), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 16 * PG, 0, &bm, 8), -EINVAL);
	assert_int_equal(bm, 0xa5a5a5a5a5a5a5a5ull);
	a.u = (__typeof__(a.u)){ .argsz = sizeof(a),
		.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, .size = 16 * PG };
	a.b = (struct vfio_bitmap){ .pgsize = 0, .size = 8, .data = (__u64 *)&bm };
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), -EINVAL);
	assert_int_equal(bm, 0xa5a5a5a5a5a5a5a5ull);
	assert_int_equal(a.u.size, 16 * PG); /* not written back */
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), -EEXIST);
	/* The rw write was neither reported nor cleared by the refused calls. */
	bm = 0;
	a.b.pgsize = PG;
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &a), 0);
	assert_int_equal(a.u.size, 16 * PG);
	assert_int_equal(bm, 1u << 5);
	vt1_free(t);
}

/* Opt-in: the IOMMU's real dirty bits instead of "everything mapped". */
static void test_opt_in_iommu_dirty(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_device *dev = uiommu_hwdev_dma(t->hw);
	uint64_t bm = 0;
	char c = 7;

	(void)state;
	assert_int_equal(uiommu_vfio_set_options(t->c, UIOMMU_VFIO_OPT_IOMMU_DIRTY), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0, 8 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(uiommu_vfio_set_options(t->c, 0), -EINVAL);
	assert_int_equal(uiommu_device_dma_write(dev, 5 * PG + 1, &c, 1), 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 8 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 1u << 5);
	bm = 0;
	assert_int_equal(vt1_get_bitmap(t, 0, 8 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0);
	vt1_free(t);
}

/* ---- pinning API ---- */

static void test_pin_errors(void **state)
{
	static const struct uiommu_vfio_emudev_ops no_op = { 0 };
	struct vt1 *t = vt1_ready_emu();
	struct uiommu_vfio_emudev *bare;
	void *pages[600];

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 4 * PG), 0);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_READ, (uintptr_t)t->mem, 8 * PG, PG), 0);
	assert_int_equal(vt1_map(t, RW, 0x10000, 16 * PG, PG), 0); /* no memory there */
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 0, 0, UIOMMU_PROT_READ, pages), -EINVAL);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 0, 1, UIOMMU_PROT_READ, NULL), -EINVAL);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 0, 513, UIOMMU_PROT_READ, pages), -E2BIG);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 4 * PG, 1, UIOMMU_PROT_READ, pages),
			 -EINVAL);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 3 * PG, 2, UIOMMU_PROT_READ, pages),
			 -EINVAL); /* runs off the mapping; page 3 is unwound */
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 8 * PG, 1, UIOMMU_PROT_WRITE, pages),
			 -EPERM);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 16 * PG, 1, UIOMMU_PROT_READ, pages),
			 -EFAULT);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 0, 1, UIOMMU_PROT_READ, pages), 1);
	assert_ptr_equal(pages[0], t->mem);
	uiommu_vfio_unpin_pages(t->emu, 0, 1);
	assert_int_equal(uiommu_vfio_group_unset_container(t->eg), 0);
	assert_int_equal(uiommu_vfio_group_add_emudev(t->eg, "bare", &no_op, NULL, &bare), 0);
	assert_int_equal(uiommu_vfio_pin_pages(bare, 0, 1, UIOMMU_PROT_READ, pages), -EINVAL);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 0, 1, UIOMMU_PROT_READ, pages), -EINVAL);
	vt1_free(t);
}

/* An unaligned iova is -EINVAL (the kernel would key the pin by it and never
 * find it at unpin): nothing pinned, dirtied, or put in pinned scope. */
static void test_pin_unaligned_iova(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t bm = 0, n = 99;
	void *page;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 4 * PG), 0);
	assert_int_equal(vt1_dirty(t, START), 0);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, PG + 1, 1, UIOMMU_PROT_READ, &page),
			 -EINVAL);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 2 * PG - 1, 2, UIOMMU_PROT_READ, &page),
			 -EINVAL);
	assert_int_equal(uiommu_vfio_count_pinned(t->c, 0, 4 * PG, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(vt1_get_bitmap(t, 0, 4 * PG, PG, &bm, 8), 0);
	assert_int_equal(bm, 0);
	/* Nothing for the unmap to ask the device to unpin. */
	assert_int_equal(vt1_unmap(t, 0, 0, 4 * PG, NULL), 0);
	assert_int_equal(t->notified, 0);
	vt1_free(t);
}

static void test_pin_v1_eacces(void **state)
{
	struct vt1 *t = vt1_new();
	void *page;

	(void)state;
	vt1_add_emu(t);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1_IOMMU), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), 0);
	assert_int_equal(uiommu_vfio_pin_pages(t->emu, 0, 1, UIOMMU_PROT_READ, &page), -EACCES);
	vt1_free(t);
}

/* Unmap of a pinned range first makes the device unpin. */
static void test_unmap_notifies_pinner(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t size;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, 4 * PG), 0);
	assert_int_equal(vt1_pin(t, PG, 2, UIOMMU_PROT_READ), 2);
	assert_int_equal(vt1_unmap(t, 0, 0, 4 * PG, &size), 0);
	assert_int_equal(size, 4 * PG);
	assert_int_equal(t->notified, 1);
	assert_int_equal(t->nr_pins, 0);
	/* A device that never unpins: -EBUSY after the retries (the kernel BUG()s). */
	assert_int_equal(vt1_map_mem(t, 0, 0, 4 * PG), 0);
	assert_int_equal(vt1_pin(t, PG, 1, UIOMMU_PROT_READ), 1);
	t->refuse_unpin = true;
	assert_int_equal(vt1_unmap(t, 0, 0, 4 * PG, NULL), -EBUSY);
	t->refuse_unpin = false;
	assert_int_equal(vt1_unmap(t, 0, 0, 4 * PG, &size), 0);
	vt1_free(t);
}

static void test_rw_errors(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	char buf[8] = { 0 };

	(void)state;
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_READ, (uintptr_t)t->mem, 0, PG), 0);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_WRITE, (uintptr_t)t->mem, PG, PG), 0);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 0, NULL, 8, false), -EINVAL);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 0, buf, 0, false), -EINVAL);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 0, buf, 8, true), -EPERM);
	/* As the kernel: even a write needs READ permission. */
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, PG, buf, 8, true), -EPERM);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 4 * PG, buf, 8, false), -EINVAL);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, 0, buf, 8, false), 0);
	vt1_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirty_flags),
		cmocka_unit_test(test_get_bitmap_checks),
		cmocka_unit_test(test_merge_adjacent_unaligned),
		cmocka_unit_test(test_pinned_and_rw),
		cmocka_unit_test(test_count_pinned),
		cmocka_unit_test(test_pinned_scope),
		cmocka_unit_test(test_detach_marks_all),
		cmocka_unit_test(test_new_mapping_starts_clean),
		cmocka_unit_test(test_start_too_big),
		cmocka_unit_test(test_unmap_get_dirty),
		cmocka_unit_test(test_bitmap_pgsize_zero),
		cmocka_unit_test(test_opt_in_iommu_dirty),
		cmocka_unit_test(test_pin_errors),
		cmocka_unit_test(test_pin_unaligned_iova),
		cmocka_unit_test(test_pin_v1_eacces),
		cmocka_unit_test(test_unmap_notifies_pinner),
		cmocka_unit_test(test_rw_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
