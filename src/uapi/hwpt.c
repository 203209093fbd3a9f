// SPDX-License-Identifier: MIT
/*
 * HW page tables (paging HWPTs) and attaching devices to them.
 *
 * A paging HWPT is an emulated IO page table (uiommu_domain) that mirrors one
 * IOAS. It is made explicitly (HWPT_ALLOC, possibly with DIRTY_TRACKING) or
 * automatically when a device attaches to an IOAS: then any existing
 * automatic HWPT of that IOAS that accepts the device is reused, and the
 * automatic HWPT goes away when its last device leaves, as in the kernel.
 *
 * "Accepts the device" is the driver's compatibility check: same page-table
 * format, page sizes and aperture as the device that allocated the HWPT, and
 * no dirty-tracking HWPT for a device whose IOMMU cannot track dirty pages.
 * A refusal is -EINVAL, which automatic attachment takes as "try the next".
 *
 * Attaching reserves the device's reserved regions in the IOAS (owner = the
 * device), which fails with -EADDRINUSE when mappings are in the way; detach
 * drops them. A fresh automatic HWPT is attached before it is filled, so a
 * device that cannot attach never costs a fill.
 *
 * Devices attach to nested HWPTs (nested.c) the same way: a nested HWPT
 * carries its parent's domain, IOAS and format, so everything here applies to
 * it unchanged; only its destruction differs. A device that leaves a HWPT
 * with a fault queue has its pending faults there dropped (fault.c).
 */
#include <errno.h>

#include <uiommu/uapi/iommufd.h>

#include "uapi/uapi_internal.h"

struct device_obj *device_find(struct uiommu_ctx *ctx, uint32_t id)
{
	return (struct device_obj *)obj_find(ctx, id, OBJ_DEVICE);
}

struct hwpt_obj *hwpt_find(struct uiommu_ctx *ctx, uint32_t id)
{
	return (struct hwpt_obj *)obj_find(ctx, id, OBJ_HWPT);
}

static int hwpt_flags_check(const struct uiommu_hwdev *hw, uint32_t flags)
{
	const uint32_t valid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
			       IOMMU_HWPT_FAULT_ID_VALID;

	if (flags & ~valid)
		return -EOPNOTSUPP;
	if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !hw->cfg.dirty_tracking)
		return -EOPNOTSUPP;
	if ((flags & IOMMU_HWPT_FAULT_ID_VALID) && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT))
		return -EOPNOTSUPP;
	return 0;
}

/*
 * The driver's check: may @hw use the page table of @hwpt? Same page-table
 * format; the domain's aperture inside the device's; and, for real formats,
 * no leaf size the device's IOMMU cannot walk (the kernel's mock driver takes
 * any mock domain, whatever device allocated it, and so does ours).
 */
static int hwpt_compatible(const struct hwpt_obj *hwpt, const struct uiommu_hwdev *hw)
{
	if (hwpt->cfg.format != hw->cfg.format || hwpt->aperture_start < hw->cfg.aperture_start ||
	    hwpt->aperture_last > hw->cfg.aperture_last)
		return -EINVAL;
	if (hw->cfg.format != UIOMMU_PT_MOCK && (hwpt->cfg.pgsize_bitmap & ~hw->cfg.pgsize_bitmap))
		return -EINVAL;
	if (hwpt->dirty_ops && !hw->cfg.dirty_tracking)
		return -EINVAL;
	return 0;
}

static int dev_reserve(struct uiommu_ioas *ioas, const struct uiommu_hwdev *hw)
{
	int ret = 0;

	for (size_t i = 0; i < hw->cfg.nr_reserved && !ret; i++)
		ret = uiommu_ioas_reserve(ioas, hw, hw->cfg.reserved[i].start,
					  hw->cfg.reserved[i].last);
	if (ret)
		uiommu_ioas_unreserve(ioas, hw);
	return ret;
}

/* Attach a detached device; the HWPT is already in the table. */
static int device_do_attach(struct device_obj *dev, struct hwpt_obj *hwpt)
{
	int ret;

	if (dev->hwpt)
		return -EINVAL;
	ret = dev_reserve(hwpt->ioas->ioas, dev->hw);
	if (ret)
		return ret;
	ret = hwpt_compatible(hwpt, dev->hw);
	if (!ret)
		ret = uiommu_device_attach(dev->hw->dma, hwpt->domain);
	if (ret) {
		uiommu_ioas_unreserve(hwpt->ioas->ioas, dev->hw);
		return ret;
	}
	dev->hwpt = hwpt;
	hwpt->devices++;
	hwpt->obj.users++;
	return 0;
}

/* Undoes device_do_attach(): the device faults from now on. */
static void device_undo_attach(struct device_obj *dev)
{
	struct hwpt_obj *hwpt = dev->hwpt;

	uiommu_device_detach(dev->hw->dma);
	uiommu_ioas_unreserve(hwpt->ioas->ioas, dev->hw);
	dev->hwpt = NULL;
	hwpt->devices--;
	hwpt->obj.users--;
	fault_drop_device(hwpt, dev);
}

/* Drops a hold on @old; an automatic HWPT left alone goes away. */
static void hwpt_release(struct uiommu_ctx *ctx, struct hwpt_obj *old)
{
	if (old->auto_domain && !old->obj.users)
		hwpt_obj_destroy(ctx, old);
}

void device_detach(struct uiommu_ctx *ctx, struct device_obj *dev)
{
	struct hwpt_obj *old = dev->hwpt;

	if (!old)
		return;
	device_undo_attach(dev);
	hwpt_release(ctx, old);
}

/* Replace a live attachment with @hwpt: the device never sees no domain. */
static int device_do_replace(struct uiommu_ctx *ctx, struct device_obj *dev,
			     struct hwpt_obj *hwpt)
{
	struct hwpt_obj *old = dev->hwpt;
	bool new_ioas = old->ioas != hwpt->ioas;
	int ret;

	if (old == hwpt)
		return 0;
	ret = hwpt_compatible(hwpt, dev->hw);
	if (!ret && new_ioas)
		ret = dev_reserve(hwpt->ioas->ioas, dev->hw);
	if (ret)
		return ret;
	uiommu_device_detach(dev->hw->dma);
	ret = uiommu_device_attach(dev->hw->dma, hwpt->domain);
	UIOMMU_BUG_ON(ret); /* detached just above */
	if (new_ioas)
		uiommu_ioas_unreserve(old->ioas->ioas, dev->hw);
	dev->hwpt = hwpt;
	hwpt->devices++;
	hwpt->obj.users++;
	old->devices--;
	old->obj.users--;
	fault_drop_device(old, dev);
	hwpt_release(ctx, old);
	return 0;
}

static int device_set_hwpt(struct uiommu_ctx *ctx, struct device_obj *dev, struct hwpt_obj *hwpt)
{
	return dev->hwpt ? device_do_replace(ctx, dev, hwpt) : device_do_attach(dev, hwpt);
}

static void hwpt_cfg_for(struct hwpt_obj *hwpt, const struct uiommu_hwdev *hw)
{
	hwpt->cfg.format = hw->cfg.format;
	hwpt->cfg.pgsize_bitmap = hw->cfg.pgsize_bitmap;
	hwpt->aperture_start = hw->cfg.aperture_start;
	hwpt->aperture_last = hw->cfg.aperture_last;
}

static int hwpt_fill(struct hwpt_obj *hwpt, struct ioas_obj *ioas, struct device_obj *attach_dev)
{
	int ret;

	hwpt->ioas = ioas;
	if (attach_dev) {
		ret = device_do_attach(attach_dev, hwpt);
		if (ret)
			return ret;
	}
	ret = uiommu_ioas_domain_add(ioas->ioas, hwpt->domain, hwpt->aperture_start,
				     hwpt->aperture_last);
	if (ret) {
		if (attach_dev)
			device_undo_attach(attach_dev);
		return ret;
	}
	ioas->obj.users++;
	return 0;
}

int hwpt_paging_alloc(struct uiommu_ctx *ctx, struct ioas_obj *ioas, struct device_obj *dev,
		      uint32_t flags, bool auto_domain, struct hwpt_obj **out)
{
	struct hwpt_obj *hwpt;
	int ret = hwpt_flags_check(dev->hw, flags);

	if (ret)
		return ret;
	hwpt = uiommu__zalloc(sizeof(*hwpt));
	if (!hwpt)
		return -ENOMEM;
	hwpt_cfg_for(hwpt, dev->hw);
	hwpt->auto_domain = auto_domain;
	hwpt->dirty_ops = flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	hwpt->nest_parent = flags & IOMMU_HWPT_ALLOC_NEST_PARENT;
	hwpt->nest_ops = dev->hw->nest_ops;
	ret = uiommu_domain_create(&hwpt->cfg, &hwpt->domain);
	if (ret)
		goto err_free;
	ret = obj_add(ctx, &hwpt->obj, OBJ_HWPT);
	if (ret)
		goto err_destroy_domain;
	ret = hwpt_fill(hwpt, ioas, auto_domain ? dev : NULL);
	if (ret)
		goto err_remove;
	*out = hwpt;
	return 0;

err_remove:
	obj_remove(ctx, &hwpt->obj);
err_destroy_domain:
	uiommu_domain_destroy(hwpt->domain);
err_free:
	uiommu__free(hwpt);
	return ret;
}

void hwpt_obj_destroy(struct uiommu_ctx *ctx, struct hwpt_obj *hwpt)
{
	UIOMMU_BUG_ON(hwpt->devices);
	obj_remove(ctx, &hwpt->obj);
	if (hwpt->parent) {
		/* Nested: the domain and the IOAS are the parent's. */
		hwpt_nested_fini(hwpt);
	} else {
		uiommu_ioas_domain_remove(hwpt->ioas->ioas, hwpt->domain);
		hwpt->ioas->obj.users--;
		uiommu_domain_destroy(hwpt->domain);
	}
	hwpt_fault_clear(hwpt);
	uiommu__free(hwpt);
}

/* Reuse an automatic HWPT of @ioas that accepts the device, or make one. */
static int device_auto_attach(struct uiommu_ctx *ctx, struct device_obj *dev,
			      struct ioas_obj *ioas, uint32_t *pt_id)
{
	struct hwpt_obj *hwpt;
	int ret;

	for (uint32_t id = 1; id < ctx->table_cap; id++) {
		hwpt = hwpt_find(ctx, id);
		if (!hwpt || hwpt->ioas != ioas || !hwpt->auto_domain)
			continue;
		ret = device_set_hwpt(ctx, dev, hwpt);
		if (ret == -EINVAL)
			continue;
		if (!ret)
			*pt_id = hwpt->obj.id;
		return ret;
	}
	if (!dev->hwpt) {
		ret = hwpt_paging_alloc(ctx, ioas, dev, 0, true, &hwpt);
	} else {
		ret = hwpt_paging_alloc(ctx, ioas, dev, 0, false, &hwpt);
		if (!ret) {
			hwpt->auto_domain = true;
			ret = device_do_replace(ctx, dev, hwpt);
			if (ret)
				hwpt_obj_destroy(ctx, hwpt);
		}
	}
	if (!ret)
		*pt_id = hwpt->obj.id;
	return ret;
}

int device_attach_pt(struct uiommu_ctx *ctx, struct device_obj *dev, uint32_t *pt_id)
{
	struct obj *pt = obj_find(ctx, *pt_id, OBJ_ANY);
	int ret;

	if (!pt)
		return -ENOENT;
	switch (pt->type) {
	case OBJ_HWPT:
	case OBJ_HWPT_NESTED:
		ret = device_set_hwpt(ctx, dev, (struct hwpt_obj *)pt);
		return ret;
	case OBJ_IOAS:
		return device_auto_attach(ctx, dev, (struct ioas_obj *)pt, pt_id);
	default:
		return -EINVAL;
	}
}

int device_obj_bind(struct uiommu_ctx *ctx, struct uiommu_hwdev *hw, struct device_obj **out)
{
	struct device_obj *dev;
	int ret;

	if (hw->bound)
		return -EBUSY;
	dev = uiommu__zalloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	ret = obj_add(ctx, &dev->obj, OBJ_DEVICE);
	if (ret) {
		uiommu__free(dev);
		return ret;
	}
	dev->obj.users = 1; /* the binder's: DESTROY refuses a bound device */
	dev->hw = hw;
	hw->bound = ctx;
	*out = dev;
	return 0;
}

void device_obj_unbind(struct uiommu_ctx *ctx, struct device_obj *dev)
{
	device_detach(ctx, dev);
	dev->hw->bound = NULL;
	obj_remove(ctx, &dev->obj);
	uiommu__free(dev);
}

/* ---- native API ---- */

UIOMMU_EXPORT int uiommu_ctx_bind(struct uiommu_ctx *ctx, struct uiommu_hwdev *hw,
				  uint32_t *dev_id)
{
	struct device_obj *dev;
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = device_obj_bind(ctx, hw, &dev);
	if (!ret)
		*dev_id = dev->obj.id;
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

UIOMMU_EXPORT void uiommu_ctx_unbind(struct uiommu_ctx *ctx, uint32_t dev_id)
{
	struct device_obj *dev;

	pthread_mutex_lock(&ctx->lock);
	dev = device_find(ctx, dev_id);
	if (dev)
		device_obj_unbind(ctx, dev);
	pthread_mutex_unlock(&ctx->lock);
}

UIOMMU_EXPORT int uiommu_ctx_attach(struct uiommu_ctx *ctx, uint32_t dev_id, uint32_t *pt_id)
{
	struct device_obj *dev;
	int ret = -ENOENT;

	pthread_mutex_lock(&ctx->lock);
	dev = device_find(ctx, dev_id);
	if (dev)
		ret = device_attach_pt(ctx, dev, pt_id);
	if (!ret && dev->hwpt)
		*pt_id = dev->hwpt->obj.id;
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_ctx_detach(struct uiommu_ctx *ctx, uint32_t dev_id)
{
	struct device_obj *dev;
	int ret = -ENOENT;

	pthread_mutex_lock(&ctx->lock);
	dev = device_find(ctx, dev_id);
	if (dev) {
		ret = dev->hwpt ? 0 : -EINVAL;
		device_detach(ctx, dev);
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}
