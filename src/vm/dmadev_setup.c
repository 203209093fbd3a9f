// SPDX-License-Identifier: MIT
/*
 * Setting the emulated DMA device up as a VMM sets up a passthrough device,
 * through the iommufd front end (uiommu_iommufd_ioctl) of a context, and
 * undoing it.
 *
 * Order, as QEMU's iommufd back end does it: IOAS_ALLOC; the device (a
 * uiommu_hwdev for its IOMMU) bound to the context, which is what
 * VFIO_DEVICE_BIND_IOMMUFD does; GET_HW_INFO, which must report
 * IOMMU_HW_CAP_DIRTY_TRACKING since the device is to be migrated;
 * HWPT_ALLOC with IOMMU_HWPT_ALLOC_DIRTY_TRACKING on the IOAS; attach to that
 * HWPT (natively: in process there is no device fd for
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT); then IOAS_MAP of all guest RAM at IOVA =
 * GPA, FIXED_IOVA, readable and writable, which the IOAS mirrors into the
 * HWPT's page table.
 *
 * Every step has its undo, run in reverse order on failure and at teardown,
 * so the context is left as it was found. Teardown ignores errors: the
 * objects are the device's own and destroying them cannot fail unless
 * someone else destroyed them first.
 */
#include <errno.h>

#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/uapi/iommufd.h>

#include "vm/dmadev_internal.h"

static long fe(struct uiommu_dmadev *d, unsigned long cmd, void *arg)
{
	return uiommu_iommufd_ioctl(d->ctx, cmd, arg);
}

static void obj_destroy(struct uiommu_dmadev *d, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	(void)fe(d, IOMMU_DESTROY, &cmd);
}

static int ctx_open(struct uiommu_dmadev *d, struct uiommu_ctx *ctx)
{
	if (!ctx)
		return uiommu_ctx_create(&d->ctx);
	uiommu_ctx_get(ctx);
	d->ctx = ctx;
	return 0;
}

static int ioas_alloc(struct uiommu_dmadev *d)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret = (int)fe(d, IOMMU_IOAS_ALLOC, &cmd);

	d->ioas_id = cmd.out_ioas_id;
	return ret;
}

/* The default IOMMU: x86, 4 KiB pages only so that dirty reports are exact. */
void dmadev_hwdev_cfg(const struct uiommu_hwdev_cfg *hw, struct uiommu_hwdev_cfg *out)
{
	*out = (struct uiommu_hwdev_cfg){
		.format = UIOMMU_PT_X86,
		.pgsize_bitmap = DMADEV_PAGE,
		.dirty_tracking = true,
	};
	if (hw)
		*out = *hw;
	out->name = "dmadev";
}

int dmadev_write_iommu(struct uiommu_dmadev *d, uint64_t gpa, const void *buf, uint64_t len)
{
	return uiommu_device_dma_write(d->dma, gpa, buf, len);
}

static int hwdev_bind(struct uiommu_dmadev *d, const struct uiommu_hwdev_cfg *hw)
{
	struct uiommu_hwdev_cfg cfg;
	int ret;

	dmadev_hwdev_cfg(hw, &cfg);
	ret = uiommu_hwdev_create(&cfg, &d->hw);
	if (ret)
		return ret;
	ret = uiommu_ctx_bind(d->ctx, d->hw, &d->dev_id);
	if (ret) {
		uiommu_hwdev_destroy(d->hw);
		return ret;
	}
	d->dma = uiommu_hwdev_dma(d->hw);
	return 0;
}

static void hwdev_unbind(struct uiommu_dmadev *d)
{
	uiommu_ctx_unbind(d->ctx, d->dev_id);
	uiommu_hwdev_destroy(d->hw);
}

static int hw_info_check(struct uiommu_dmadev *d)
{
	struct iommu_hw_info cmd = { .size = sizeof(cmd), .dev_id = d->dev_id };
	int ret = (int)fe(d, IOMMU_GET_HW_INFO, &cmd);

	if (ret)
		return ret;
	if (!(cmd.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING)) {
		uiommu__log(UIOMMU_LOG_ERR, "dmadev: the IOMMU cannot track dirty pages");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int hwpt_alloc(struct uiommu_dmadev *d)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
		.dev_id = d->dev_id,
		.pt_id = d->ioas_id,
	};
	int ret = (int)fe(d, IOMMU_HWPT_ALLOC, &cmd);

	d->hwpt_id = cmd.out_hwpt_id;
	return ret;
}

static int attach(struct uiommu_dmadev *d)
{
	uint32_t pt = d->hwpt_id;

	return uiommu_ctx_attach(d->ctx, d->dev_id, &pt);
}

static int map_ram(struct uiommu_dmadev *d)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = d->ioas_id,
		.user_va = (uintptr_t)d->mem,
		.length = d->mem_bytes,
		.iova = 0,
	};

	return (int)fe(d, IOMMU_IOAS_MAP, &cmd);
}

static void unmap_ram(struct uiommu_dmadev *d)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd), .ioas_id = d->ioas_id, .iova = 0, .length = d->mem_bytes
	};

	(void)fe(d, IOMMU_IOAS_UNMAP, &cmd);
}

int dmadev_iommu_setup(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg)
{
	int ret = ctx_open(d, cfg->ctx);

	if (ret)
		return ret;
	ret = ioas_alloc(d);
	if (ret)
		goto err_put_ctx;
	ret = hwdev_bind(d, cfg->hw);
	if (ret)
		goto err_destroy_ioas;
	ret = hw_info_check(d);
	if (ret)
		goto err_unbind;
	ret = hwpt_alloc(d);
	if (ret)
		goto err_unbind;
	ret = attach(d);
	if (ret)
		goto err_destroy_hwpt;
	ret = map_ram(d);
	if (ret)
		goto err_detach;
	d->write = dmadev_write_iommu;
	return 0;

err_detach:
	uiommu_ctx_detach(d->ctx, d->dev_id);
err_destroy_hwpt:
	obj_destroy(d, d->hwpt_id);
err_unbind:
	hwdev_unbind(d);
err_destroy_ioas:
	obj_destroy(d, d->ioas_id);
err_put_ctx:
	uiommu_ctx_put(d->ctx);
	uiommu__log(UIOMMU_LOG_ERR, "dmadev: set-up through iommufd failed: %d", ret);
	return ret;
}

void dmadev_iommu_teardown(struct uiommu_dmadev *d)
{
	unmap_ram(d);
	uiommu_ctx_detach(d->ctx, d->dev_id);
	obj_destroy(d, d->hwpt_id);
	hwdev_unbind(d);
	obj_destroy(d, d->ioas_id);
	uiommu_ctx_put(d->ctx);
}
