// SPDX-License-Identifier: MIT
/*
 * Type1 container and group flow (uapi-spec §1.1-§1.3, §1.8 rules 1-3): API
 * version, extensions, SET_IOMMU, group status/container/device fds, and
 * GET_INFO with its capability chain, one test per rule, through the ioctls.
 */
#include <fcntl.h>

#include "vt1_test.h"

static void test_api_version(void **state)
{
	struct vt1 *t = vt1_new();

	(void)state;
	assert_int_equal(cio(t, VFIO_GET_API_VERSION, NULL), VFIO_API_VERSION);
	vt1_free(t);
}

/* Before SET_IOMMU: what the type1 driver answers with no iommu data. */
static void test_extensions_unset(void **state)
{
	struct vt1 *t = vt1_new();

	(void)state;
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_TYPE1_IOMMU), 1);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_TYPE1v2_IOMMU), 1);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_UNMAP_ALL), 1);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_UPDATE_VADDR), 0);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_DMA_CC_IOMMU), 0);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_SPAPR_TCE_IOMMU), 0);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_TYPE1_NESTING_IOMMU), 0);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_NOIOMMU_IOMMU), 0);
	vt1_free(t);
}

static void test_extensions_set(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);

	(void)state;
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_UPDATE_VADDR), 1);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_DMA_CC_IOMMU), 1);
	/* An emulated group makes vaddr updates unavailable. */
	vt1_add_emu(t);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_UPDATE_VADDR), 0);
	vt1_free(t);
}

static void test_set_iommu_needs_group(void **state)
{
	struct vt1 *t = vt1_new();

	(void)state;
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), -EINVAL);
	/* No group beats an unknown type. */
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_SPAPR_TCE_IOMMU), -EINVAL);
	vt1_free(t);
}

static void test_set_iommu_types(void **state)
{
	struct vt1 *t = vt1_new();

	(void)state;
	vt1_join(t, t->g);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_SPAPR_TCE_IOMMU), -ENODEV);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_NOIOMMU_IOMMU), -ENODEV);
	/* Claimed as an extension by type1, refused by its open(). */
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_UNMAP_ALL), -EINVAL);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1_IOMMU), 0);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), -EINVAL);
	vt1_free(t);
}

static void test_commands_before_set_iommu(void **state)
{
	struct vt1 *t = vt1_new();

	(void)state;
	vt1_join(t, t->g);
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), -EINVAL);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, BAD_PTR), -EINVAL);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(cio(t, VFIO_IOMMU_ENABLE, NULL), -ENOTTY);
	vt1_free(t);
}

static void test_group_status(void **state)
{
	struct vt1 *t = vt1_new();
	struct vfio_group_status st = { .argsz = sizeof(st) };

	(void)state;
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, VFIO_GROUP_FLAGS_VIABLE);
	vt1_join(t, t->g);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
	st.argsz = 7;
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_STATUS, &st), -EINVAL);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_STATUS, BAD_PTR), -EFAULT);
	assert_int_equal(gio(t->g, 0x3b00 | 200, NULL), -ENOTTY);
	vt1_free(t);
}

/* No DMA-ownership state: a hwdev bound to an iommufd context is refused at
 * add (-EBUSY) instead, so the group stays VIABLE and without the device. */
static void test_group_status_bound_hwdev(void **state)
{
	struct vt1 *t = vt1_new();
	struct vfio_group_status st = { .argsz = sizeof(st) };
	struct uiommu_hwdev *hw = vt1_hwdev(0, APERTURE_LAST, 1, 0, false);
	struct uiommu_ctx *ctx;
	uint32_t id;

	(void)state;
	assert_int_equal(uiommu_ctx_create(&ctx), 0);
	assert_int_equal(uiommu_ctx_bind(ctx, hw, &id), 0);
	assert_int_equal(uiommu_vfio_group_add_hwdev(t->g, "bound", hw), -EBUSY);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, VFIO_GROUP_FLAGS_VIABLE);
	assert_int_equal(gio_name(t->g, "bound"), -ENODEV);
	/* Once unbound it may be added. */
	uiommu_ctx_unbind(ctx, id);
	assert_int_equal(uiommu_vfio_group_add_hwdev(t->g, "bound", hw), 0);
	vt1_free(t);
	uiommu_ctx_destroy(ctx);
	uiommu_hwdev_destroy(hw);
}

static void test_set_container_errors(void **state)
{
	struct vt1 *t = vt1_new();
	int fds[2], bad = -1;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(gio(t->g, VFIO_GROUP_SET_CONTAINER, BAD_PTR), -EFAULT);
	assert_int_equal(gio(t->g, VFIO_GROUP_SET_CONTAINER, &bad), -EBADF);
	assert_int_equal(gio(t->g, VFIO_GROUP_SET_CONTAINER, &fds[0]), -EBADFD);
	vt1_join(t, t->g);
	/* Already set: -EINVAL, but a bad fd is found first. */
	assert_int_equal(gio(t->g, VFIO_GROUP_SET_CONTAINER, &fds[0]), -EINVAL);
	assert_int_equal(gio(t->g, VFIO_GROUP_SET_CONTAINER, &bad), -EBADF);
	close(fds[0]);
	close(fds[1]);
	vt1_free(t);
}

static void test_unset_container(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	int fd;

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), 0);
	fd = uiommu_vfio_group_get_device_fd(t->g, "0000:00:01.0");
	assert_true(fd >= 0);
	/* An open device is a user of the container. */
	assert_int_equal(gio(t->g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EBUSY);
	assert_int_equal(uiommu_vfio_group_close_device_fd(t->g, fd), 0);
	assert_int_equal(gio(t->g, VFIO_GROUP_UNSET_CONTAINER, NULL), 0);
	assert_int_equal(gio(t->g, VFIO_GROUP_UNSET_CONTAINER, NULL), -EINVAL);
	/* The last group out deprivileged the container: no type, no mappings. */
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), -EINVAL);
	assert_int_equal(cio(t, VFIO_CHECK_EXTENSION, (void *)VFIO_UPDATE_VADDR), 0);
	vt1_join(t, t->g);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), 0);
	vt1_free(t);
}

static void test_get_device_fd(void **state)
{
	struct vt1 *t = vt1_new();
	char *page = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd;

	(void)state;
	assert_int_equal(gio_name(t->g, "nope"), -ENODEV);
	assert_int_equal(gio_name(t->g, "0000:00:01.0"), -EINVAL);
	vt1_join(t, t->g);
	/* In a container without an IOMMU type: still not openable. */
	assert_int_equal(gio_name(t->g, "0000:00:01.0"), -EINVAL);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	fd = (int)gio_name(t->g, "0000:00:01.0");
	assert_true(fd >= 0);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_DEVICE_FD, BAD_PTR), -EFAULT);
	/* No NUL in a page: -EINVAL; one that runs into unmapped memory: -EFAULT. */
	memset(page, 'x', 2 * PG);
	assert_int_equal(munmap(page + PG, PG), 0);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_DEVICE_FD, page), -EINVAL);
	assert_int_equal(gio(t->g, VFIO_GROUP_GET_DEVICE_FD, page + 100), -EFAULT);
	munmap(page, PG);
	assert_int_equal(uiommu_vfio_group_close_device_fd(t->g, fd), 0);
	assert_int_equal(uiommu_vfio_group_close_device_fd(t->g, fd), -EBADF);
	vt1_free(t);
}

/* ---- GET_INFO ---- */

#define INFO_FULL (24 + 32 + 16 + 16 + 2 * 16)

/* §1.8 rule 1: argsz 16 succeeds, grows argsz, writes nothing past 16. */
static void test_info_short_argsz(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	unsigned char buf[128];
	struct vfio_iommu_type1_info *info = (void *)buf;

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	info->argsz = 16;
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	assert_int_equal(info->flags, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
	assert_int_equal(info->argsz, INFO_FULL);
	assert_int_equal(info->iova_pgsizes, PG);
	for (size_t i = 16; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xaa);
	/* argsz 24: the whole struct, cap_offset 0, still no caps written. */
	info->argsz = 24;
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	assert_int_equal(info->cap_offset, 0);
	assert_int_equal(info->argsz, INFO_FULL);
	assert_int_equal(buf[24], 0xaa);
	vt1_free(t);
}

/* §1.8 rules 2 and 3: the chain's order, alignment and content. */
static void test_info_caps(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	unsigned char buf[INFO_FULL];
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_iommu_type1_info_cap_migration *mig = (void *)(buf + 24);
	struct vfio_iommu_type1_info_dma_avail *avail = (void *)(buf + 56);
	struct vfio_iommu_type1_info_cap_iova_range *r = (void *)(buf + 72);

	(void)state;
	memset(buf, 0xaa, sizeof(buf));
	info->argsz = INFO_FULL;
	assert_int_equal(vt1_map_mem(t, 0, 0, PG), 0);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	assert_int_equal(info->cap_offset, 24);
	assert_int_equal(mig->header.id, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	assert_int_equal(mig->header.version, 1);
	assert_int_equal(mig->header.next, 56);
	assert_int_equal(mig->flags, 0);
	assert_int_equal(mig->pgsize_bitmap, PG);
	assert_int_equal(mig->max_dirty_bitmap_size, 268435456ull);
	assert_int_equal(avail->header.id, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	assert_int_equal(avail->header.next, 72);
	assert_int_equal(avail->avail, 65534);
	/* Padding of the 12-byte cap is zero. */
	assert_int_equal(buf[68] | buf[69] | buf[70] | buf[71], 0);
	assert_int_equal(r->header.id, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	assert_int_equal(r->header.next, 0);
	assert_int_equal(r->nr_iovas, 2);
	assert_int_equal(r->iova_ranges[0].start, 0);
	assert_int_equal(r->iova_ranges[0].end, RESV_START - 1);
	assert_int_equal(r->iova_ranges[1].start, RESV_LAST + 1);
	assert_int_equal(r->iova_ranges[1].end, APERTURE_LAST);
	vt1_free(t);
}

static void test_info_errors(void **state)
{
	struct vt1 *t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	struct vfio_iommu_type1_info info = { .argsz = 15 };

	(void)state;
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, &info), -EINVAL);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, BAD_PTR), -EFAULT);
	vt1_free(t);
}

/* Only emulated groups: no IOVA_RANGE cap, the unrestricted page sizes. */
static void test_info_emulated_only(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	unsigned char buf[256] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_iommu_type1_info_dma_avail *avail = (void *)(buf + 56);

	(void)state;
	info->argsz = sizeof(buf);
	assert_int_equal(cio(t, VFIO_IOMMU_GET_INFO, info), 0);
	assert_int_equal(info->argsz, sizeof(buf)); /* big enough: left alone */
	assert_int_equal(info->cap_offset, 24);
	assert_int_equal(info->iova_pgsizes, ~(PG - 1));
	assert_int_equal(avail->header.next, 0);
	assert_int_equal(avail->avail, 65535);
	vt1_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_version),
		cmocka_unit_test(test_extensions_unset),
		cmocka_unit_test(test_extensions_set),
		cmocka_unit_test(test_set_iommu_needs_group),
		cmocka_unit_test(test_set_iommu_types),
		cmocka_unit_test(test_commands_before_set_iommu),
		cmocka_unit_test(test_group_status),
		cmocka_unit_test(test_group_status_bound_hwdev),
		cmocka_unit_test(test_set_container_errors),
		cmocka_unit_test(test_unset_container),
		cmocka_unit_test(test_get_device_fd),
		cmocka_unit_test(test_info_short_argsz),
		cmocka_unit_test(test_info_caps),
		cmocka_unit_test(test_info_errors),
		cmocka_unit_test(test_info_emulated_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
