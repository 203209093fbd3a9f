// SPDX-License-Identifier: MIT
/*
 * Type1 MAP_DMA / UNMAP_DMA (uapi-spec §1.4, §1.5, §1.7, §1.8 rules 4-8):
 * errnos in the kernel's order, v1 and v2 unmap, ALL, VADDR life cycle, the
 * dma_avail limit and the valid IOVA list across attach and detach.
 */
#include "vt1_test.h"

static uint32_t info_avail(struct vt1 *t)
{
	unsigned char buf[512] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;

	info->argsz = sizeof(buf);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	return ((struct vfio_iommu_type1_info_dma_avail *)(buf + 56))->avail;
}

static size_t info_ranges(struct vt1 *t, struct vfio_iova_range *out)
{
	unsigned char buf[512] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_iommu_type1_info_cap_iova_range *r = (void *)(buf + 72);

	info->argsz = sizeof(buf);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	if (((struct vfio_iommu_type1_info_dma_avail *)(buf + 56))->header.next != 72)
		return 0;
	memcpy(out, r->iova_ranges, r->nr_iovas * sizeof(*out));
	return r->nr_iovas;
}

/* ---- MAP ---- */

static void test_map_errors_in_order(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	uint64_t va = (uintptr_t)t->mem;
	struct vfio_iommu_type1_dma_map m = { .argsz = 31, .flags = RW, .vaddr = va, .size = PG };

	(void)state;
	assert_int_equal(cio(t, VFIO_IOMMU_MAP_DMA, BAD_PTR), -EFAULT);
	assert_int_equal(cio(t, VFIO_IOMMU_MAP_DMA, &m), -EINVAL);
	assert_int_equal(vt1_map(t, RW | (1u << 3), va, 0, PG), -EINVAL);
	assert_int_equal(vt1_map(t, 0, va, 0, 0), -EINVAL);              /* size 0 first */
	assert_int_equal(vt1_map(t, 0, va, ~0ull - PG + 2, PG), -EOVERFLOW); /* before prot */
	assert_int_equal(vt1_map(t, RW, ~0ull - PG + 2, 0, PG), -EOVERFLOW);
	assert_int_equal(vt1_map(t, 0, va, 0, PG), -EINVAL);
	assert_int_equal(vt1_map(t, RW | VFIO_DMA_MAP_FLAG_VADDR, va, 0, PG), -EINVAL);
	assert_int_equal(vt1_map(t, RW, va + 1, 0, PG), -EINVAL);
	assert_int_equal(vt1_map(t, RW, va, 1, PG), -EINVAL);
	assert_int_equal(vt1_map(t, RW, va, 0, PG + 1), -EINVAL);
	assert_int_equal(vt1_map(t, RW, va, 0, PG), 0);
	assert_int_equal(vt1_map(t, RW, va, 0, PG), -EEXIST);
	assert_int_equal(vt1_map(t, RW, va + PG, 0, 2 * PG), -EEXIST);
	vt1_free(t);
}

/* §1.8 rule 5. */
static void test_map_valid_list(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, RESV_START, PG), -EINVAL);
	assert_int_equal(vt1_map_mem(t, 0, RESV_START - PG, 2 * PG), -EINVAL);
	assert_int_equal(vt1_map_mem(t, 0, APERTURE_LAST + 1, PG), -EINVAL);
	assert_int_equal(vt1_map_mem(t, 0, APERTURE_LAST + 1 - PG, PG), 0);
	assert_int_equal(vt1_map_mem(t, 0, RESV_LAST + 1, PG), 0);
	vt1_free(t);
}

/* With an IOMMU domain the memory is pinned (-EFAULT); without, it is not looked at. */
static void test_map_pins_only_with_domain(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU), *e = vt1_ready_emu();

	(void)state;
	assert_int_equal(vt1_map(t, RW, 0x10000, 0, PG), -EFAULT);
	assert_int_equal(info_avail(t), 65535); /* nothing left behind */
	assert_int_equal(vt1_map(e, RW, 0x10000, 0, PG), 0);
	vt1_free(t);
	vt1_free(e);
}

/* §1.8 rule 4: the 65536th mapping is -ENOSPC; DMA_AVAIL drops by one per map. */
static void test_dma_avail_limit(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t va = (uintptr_t)t->mem;

	(void)state;
	for (uint64_t i = 0; i < 65535; i++)
		assert_int_equal(vt1_map(t, RW, va, i * PG, PG), 0);
	assert_int_equal(info_avail(t), 0);
	assert_int_equal(vt1_map(t, RW, va, 65535 * PG, PG), -ENOSPC);
	/* EEXIST is checked before ENOSPC. */
	assert_int_equal(vt1_map(t, RW, va, 0, PG), -EEXIST);
	assert_int_equal(vt1_unmap(t, 0, 0, PG, NULL), 0);
	assert_int_equal(info_avail(t), 1);
	vt1_free(t);
}

/* Mappings ending at the top of the 64-bit space are legal. */
static void test_map_top_of_space(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	uint64_t size;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, ~0ull - PG + 1, PG), 0);
	assert_int_equal(vt1_unmap(t, 0, ~0ull - PG + 1, PG, &size), 0);
	assert_int_equal(size, PG);
	vt1_free(t);
}

/* ---- UNMAP ---- */

static void test_unmap_errors(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct vfio_iommu_type1_dma_unmap u = { .argsz = 23, .size = PG };
	uint64_t size = 77;

	(void)state;
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, BAD_PTR), -EFAULT);
	assert_int_equal(cio(t, VFIO_IOMMU_UNMAP_DMA, &u), -EINVAL);
	assert_int_equal(vt1_unmap(t, 1u << 3, 0, PG, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, 0, 1, PG, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, 0, 0, 0, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, 0, 0, PG + 1, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, 0, 2 * PG, ~0ull & ~(PG - 1), NULL), -EOVERFLOW);
	/* On error the struct is not written back. */
	assert_int_equal(vt1_unmap(t, 0, 1, 77, &size), -EINVAL);
	assert_int_equal(size, 77);
	vt1_free(t);
}

/* §1.8 rule 6. */
static void test_unmap_v2(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	uint64_t size;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 4 * PG), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0x200000, 2 * PG), 0);
	assert_int_equal(vt1_unmap(t, 0, 0x100000 + PG, 3 * PG, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, 0, 0x100000, 3 * PG, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, 0, 0x300000, PG, &size), 0);
	assert_int_equal(size, 0);
	/* Two whole mappings with a gap, the range starting in a gap. */
	assert_int_equal(vt1_unmap(t, 0, 0x80000, 0x200000, &size), 0);
	assert_int_equal(size, 6 * PG);
	assert_int_equal(info_avail(t), 65535);
	vt1_free(t);
}

/* §1.8 rule 7. */
static void test_unmap_v1(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1_IOMMU);
	uint64_t size;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 4 * PG), 0);
	assert_int_equal(vt1_unmap(t, 0, 0x100000 + PG, PG, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), -EEXIST); /* still there */
	assert_int_equal(vt1_unmap(t, 0, 0x100000, PG, &size), 0);
	assert_int_equal(size, 4 * PG);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), 0);
	vt1_free(t);
}

/* §1.8 rule 8. */
static void test_unmap_all(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	uint64_t size;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 4 * PG), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0x300000, PG), 0);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_ALL, PG, 0, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_ALL, 0, PG, NULL), -EINVAL);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_ALL |
					      VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 0, 0, NULL),
			 -EINVAL);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, &size), 0);
	assert_int_equal(size, 5 * PG);
	assert_int_equal(info_avail(t), 65535);
	vt1_free(t);
}

/* Device DMA goes through the mapping, and faults once it is unmapped. */
static void test_device_dma(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_device *dev = uiommu_hwdev_dma(t->hw);
	uint32_t v = 0xfeedf00d;

	(void)state;
	assert_int_equal(vt1_map_mem(t, PG, 0x100000, PG), 0);
	assert_int_equal(uiommu_device_dma_write(dev, 0x100010, &v, sizeof(v)), 0);
	assert_memory_equal(t->mem + PG + 0x10, &v, sizeof(v));
	assert_int_equal(vt1_unmap(t, 0, 0x100000, PG, NULL), 0);
	assert_int_equal(uiommu_device_dma_write(dev, 0x100010, &v, sizeof(v)), -EFAULT);
	vt1_free(t);
}

/* ---- VADDR ---- */

static void test_vaddr_lifecycle(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_device *dev = uiommu_hwdev_dma(t->hw);
	uint64_t va2 = (uintptr_t)t->mem + 8 * PG, size;
	uint32_t v = 0x12345678;
	struct uiommu_vfio_group *g2;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 2 * PG), 0);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 2 * PG, &size), 0);
	assert_int_equal(size, 2 * PG);
	/* Invalid vaddr: DMA faults (documented choice), a second invalidation is refused. */
	assert_int_equal(uiommu_device_dma_write(dev, 0x100000, &v, sizeof(v)), -EFAULT);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 2 * PG, NULL), -EINVAL);
	/* Attaching a group needs pinning: refused meanwhile. */
	assert_int_equal(uiommu_vfio_group_create(3, UIOMMU_VFIO_GROUP_EMULATED, &g2), 0);
	assert_int_equal(uiommu_vfio_group_set_container(g2, t->c), -EBUSY);
	uiommu_vfio_group_destroy(g2);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va2, 0x400000, 2 * PG), -ENOENT);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va2, 0x100000, PG), -EINVAL);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va2, 0x100000, 2 * PG), 0);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va2, 0x100000, 2 * PG), -EINVAL);
	assert_int_equal(uiommu_device_dma_write(dev, 0x100000, &v, sizeof(v)), 0);
	assert_memory_equal(t->mem + 8 * PG, &v, sizeof(v));
	vt1_free(t);
}

/* An invalidation meeting an already invalid entry changes nothing. */
static void test_vaddr_refusal_is_atomic(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	uint64_t va = (uintptr_t)t->mem;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), 0);
	assert_int_equal(vt1_map_mem(t, PG, 0x200000, PG), 0);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR, 0x200000, PG, NULL), 0);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL, 0, 0,
				   NULL), -EINVAL);
	/* The first entry was not left invalid. */
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va, 0x100000, PG), -EINVAL);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va + PG, 0x200000, PG), 0);
	vt1_free(t);
}

/* MAP VADDR re-pins with a domain: a new vaddr that is not (wholly) mapped is
 * -EFAULT, and the entry stays invalid with no page of it mapped. */
static void test_vaddr_update_efault(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_device *dev = uiommu_hwdev_dma(t->hw);
	uint64_t va2 = (uintptr_t)t->mem + 8 * PG;
	uint32_t v = 0x5a5a5a5a;
	struct uiommu_vfio_group *g2;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, 2 * PG), 0);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 2 * PG, NULL), 0);
	/* A hole at the second page: a partial re-map would show at the first. */
	assert_int_equal(munmap(t->mem + 9 * PG, PG), 0);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va2, 0x100000, 2 * PG), -EFAULT);
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, 0x10000, 0x100000, 2 * PG), -EFAULT);
	/* Still invalid: DMA faults on both pages, invalidating again is refused,
	 * attach is still blocked, and the entry still counts against dma_avail. */
	assert_int_equal(uiommu_device_dma_write(dev, 0x100000, &v, sizeof(v)), -EFAULT);
	assert_int_equal(uiommu_device_dma_write(dev, 0x100000 + PG, &v, sizeof(v)), -EFAULT);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR, 0x100000, 2 * PG, NULL), -EINVAL);
	assert_int_equal(uiommu_vfio_group_create(3, UIOMMU_VFIO_GROUP_EMULATED, &g2), 0);
	assert_int_equal(uiommu_vfio_group_set_container(g2, t->c), -EBUSY);
	uiommu_vfio_group_destroy(g2);
	assert_int_equal(info_avail(t), 65534);
	/* A good vaddr still completes the update. */
	assert_int_equal(vt1_map(t, VFIO_DMA_MAP_FLAG_VADDR, va2 + 8 * PG, 0x100000, 2 * PG), 0);
	assert_int_equal(uiommu_device_dma_write(dev, 0x100000 + PG, &v, sizeof(v)), 0);
	assert_memory_equal(t->mem + 17 * PG, &v, sizeof(v));
	vt1_free(t);
}

static void test_vaddr_busy_with_emulated_group(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);

	(void)state;
	vt1_add_emu(t);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), 0);
	assert_int_equal(vt1_unmap(t, VFIO_DMA_UNMAP_FLAG_VADDR, 1, PG, NULL), -EBUSY);
	vt1_free(t);
}

/* ---- the valid IOVA list across attach and detach ---- */

static struct uiommu_vfio_group *hw_group(uint32_t id, struct uiommu_hwdev *hw)
{
	struct uiommu_vfio_group *g;

	assert_int_equal(uiommu_vfio_group_create(id, 0, &g), 0);
	assert_int_equal(uiommu_vfio_group_add_hwdev(g, "d", hw), 0);
	return g;
}

static void test_valid_list_attach_detach(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_hwdev *hw_b = vt1_hwdev(0, (1ull << 32) - 1, 0x1000000, 0x1ffffff, false);
	struct uiommu_hwdev *hw_c = vt1_hwdev(1ull << 33, APERTURE_LAST, 1, 0, false);
	struct uiommu_hwdev *hw_d = vt1_hwdev(0, APERTURE_LAST, 0x40000000, 0x40000fff, false);
	struct uiommu_vfio_group *b = hw_group(20, hw_b), *c = hw_group(21, hw_c);
	struct uiommu_vfio_group *d = hw_group(22, hw_d);
	struct vfio_iova_range r[8];

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x40000000, PG), 0);
	/* B narrows the list (its aperture ends at 4 GiB, one more hole). */
	assert_int_equal(uiommu_vfio_group_set_container(b, t->c), 0);
	assert_int_equal(info_ranges(t, r), 3);
	assert_int_equal(r[0].end, 0xffffff);
	assert_int_equal(r[1].start, 0x2000000);
	assert_int_equal(r[2].end, (1ull << 32) - 1);
	/* C's aperture is disjoint: refused, nothing changed. */
	assert_int_equal(uiommu_vfio_group_set_container(c, t->c), -EINVAL);
	/* D reserves what is mapped: refused. */
	assert_int_equal(uiommu_vfio_group_set_container(d, t->c), -EINVAL);
	assert_int_equal(info_ranges(t, r), 3);
	/* B leaves: the list widens back to A's. */
	assert_int_equal(uiommu_vfio_group_unset_container(b), 0);
	assert_int_equal(info_ranges(t, r), 2);
	assert_int_equal(r[1].end, APERTURE_LAST);
	uiommu_vfio_group_destroy(b);
	uiommu_vfio_group_destroy(c);
	uiommu_vfio_group_destroy(d);
	uiommu_hwdev_destroy(hw_b);
	uiommu_hwdev_destroy(hw_c);
	uiommu_hwdev_destroy(hw_d);
	vt1_free(t);
}

/* Attach refused when a mapping lies where the new aperture cuts the list. */
static void test_attach_aperture_cuts_mapping(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_hwdev *hw_b = vt1_hwdev(0, (1ull << 32) - 1, 1, 0, false);
	struct uiommu_vfio_group *b = hw_group(20, hw_b);

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 1ull << 33, PG), 0);
	assert_int_equal(uiommu_vfio_group_set_container(b, t->c), -EINVAL);
	uiommu_vfio_group_destroy(b);
	uiommu_hwdev_destroy(hw_b);
	vt1_free(t);
}

/* An empty list (emulated groups only) lets MAP anywhere; attaching a domain
 * whose aperture misses a mapping is -EINVAL, and nothing is left behind. */
static void test_attach_empty_list_mapping_outside(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	struct uiommu_device *dev = uiommu_hwdev_dma(t->hw);
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct vfio_iova_range r[4];
	uint32_t v = 0xc0ffee;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), 0);
	assert_int_equal(vt1_map_mem(t, PG, APERTURE_LAST + 1, PG), 0);
	assert_int_equal(uiommu_vfio_group_set_container(t->g, t->c), -EINVAL);
	/* Unchanged: no list, both entries, the group out, the device unattached. */
	assert_int_equal(info_ranges(t, r), 0);
	assert_int_equal(info_avail(t), 65533);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), -EEXIST);
	assert_int_equal(vt1_map_mem(t, 0, APERTURE_LAST + 1, PG), -EEXIST);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, VFIO_GROUP_FLAGS_VIABLE);
	assert_int_not_equal(uiommu_device_dma_write(dev, 0x100000, &v, sizeof(v)), 0);
	/* Without the outside entry the attach succeeds: no leftover domain or
	 * reservation of the failed one. */
	assert_int_equal(vt1_unmap(t, 0, APERTURE_LAST + 1, PG, NULL), 0);
	assert_int_equal(uiommu_vfio_group_set_container(t->g, t->c), 0);
	assert_int_equal(info_ranges(t, r), 2);
	assert_int_equal(uiommu_device_dma_write(dev, 0x100000, &v, sizeof(v)), 0);
	assert_memory_equal(t->mem, &v, sizeof(v));
	vt1_free(t);
}

/* The last IOMMU group leaving with emulated groups left: the kernel's list
 * becomes [0, 2^64 - 1], mappings stay. Without them: everything unmapped. */
static void test_detach_last_iommu_group(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct vfio_iova_range r[4];

	(void)state;
	vt1_add_emu(t);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), 0);
	assert_int_equal(uiommu_vfio_group_unset_container(t->g), 0);
	assert_int_equal(info_ranges(t, r), 1);
	assert_int_equal(r[0].start, 0);
	assert_int_equal(r[0].end, ~0ull);
	assert_int_equal(info_avail(t), 65534);
	assert_int_equal(uiommu_vfio_group_set_container(t->g, t->c), 0);
	assert_int_equal(uiommu_vfio_group_unset_container(t->eg), 0);
	assert_int_equal(uiommu_vfio_group_unset_container(t->g), 0);
	/* Container released; a new SET_IOMMU starts empty. */
	vt1_join(t, t->g);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(info_avail(t), 65535);
	vt1_free(t);
}

/*
 * A group whose IOMMU shares no page size with the container's (x86 4 KiB
 * pages against the mock format's 2 KiB and up) is refused: the kernel would
 * leave iova_pgsizes 0 and take the lowest bit of 0 on the next MAP_DMA.
 * Nothing changes: the first group, its pages and its mapping stay.
 */
static void test_attach_without_a_shared_page_size(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct uiommu_hwdev_cfg cfg = { .name = "mock", .format = UIOMMU_PT_MOCK,
					.pgsize_bitmap = 2048 | (1ull << 20) };
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	struct uiommu_vfio_group *m;
	struct uiommu_hwdev *hw;
	struct vfio_iova_range r[8];
	uint64_t unmapped = 0;

	(void)state;
	assert_int_equal(uiommu_hwdev_create(&cfg, &hw), 0);
	m = hw_group(23, hw);
	assert_int_equal(vt1_map_mem(t, 0, 0x100000, PG), 0);
	assert_int_equal(uiommu_vfio_group_set_container(m, t->c), -EINVAL);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, &info), 0);
	assert_true(info.iova_pgsizes == PG);
	assert_int_equal(info_ranges(t, r), 2);
	assert_int_equal(vt1_map_mem(t, PG, 0x200000, PG), 0);
	assert_int_equal(vt1_unmap(t, 0, 0x100000, PG, &unmapped), 0);
	assert_true(unmapped == PG);
	uiommu_vfio_group_destroy(m);
	uiommu_hwdev_destroy(hw);
	vt1_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_errors_in_order),
		cmocka_unit_test(test_map_valid_list),
		cmocka_unit_test(test_map_pins_only_with_domain),
		cmocka_unit_test(test_dma_avail_limit),
		cmocka_unit_test(test_map_top_of_space),
		cmocka_unit_test(test_unmap_errors),
		cmocka_unit_test(test_unmap_v2),
		cmocka_unit_test(test_unmap_v1),
		cmocka_unit_test(test_unmap_all),
		cmocka_unit_test(test_device_dma),
		cmocka_unit_test(test_vaddr_lifecycle),
		cmocka_unit_test(test_vaddr_refusal_is_atomic),
		cmocka_unit_test(test_vaddr_update_efault),
		cmocka_unit_test(test_vaddr_busy_with_emulated_group),
		cmocka_unit_test(test_valid_list_attach_detach),
		cmocka_unit_test(test_attach_aperture_cuts_mapping),
		cmocka_unit_test(test_attach_empty_list_mapping_outside),
		cmocka_unit_test(test_detach_last_iommu_group),
		cmocka_unit_test(test_attach_without_a_shared_page_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
