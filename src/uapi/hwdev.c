// SPDX-License-Identifier: MIT
/*
 * Hardware devices: an emulated device behind an IOMMU, described by what the
 * kernel learns from the IOMMU driver and the device (aperture, reserved
 * regions, page sizes, page-table format, dirty-tracking capability,
 * GET_HW_INFO data), plus the DMA master that reads and writes through the
 * domain it is attached to. The description is copied at creation and never
 * changes, so readers need no lock.
 */
#include <errno.h>
#include <string.h>

#include "uapi/uapi_internal.h"

static uint64_t format_pgsizes(enum uiommu_pt_format format)
{
	if (format == UIOMMU_PT_MOCK)
		return (1ull << 11) | (1ull << 20);
	return (1ull << 12) | (1ull << 21) | (1ull << 30);
}

static int hwdev_cfg_check(const struct uiommu_hwdev_cfg *cfg)
{
	uint64_t all;

	if (cfg->format != UIOMMU_PT_X86 && cfg->format != UIOMMU_PT_MOCK)
		return -EINVAL;
	all = format_pgsizes(cfg->format);
	if (cfg->pgsize_bitmap & ~all)
		return -EINVAL;
	if (cfg->pgsize_bitmap && !(cfg->pgsize_bitmap & all & -all))
		return -EINVAL;
	if (cfg->aperture_last && cfg->aperture_start > cfg->aperture_last)
		return -EINVAL;
	for (size_t i = 0; i < cfg->nr_reserved; i++)
		if (cfg->reserved[i].start > cfg->reserved[i].last)
			return -EINVAL;
	if (cfg->hw_info_len && !cfg->hw_info)
		return -EINVAL;
	return 0;
}

static int hwdev_copy_cfg(struct uiommu_hwdev *dev, const struct uiommu_hwdev_cfg *cfg)
{
	dev->cfg = *cfg;
	if (!dev->cfg.pgsize_bitmap)
		dev->cfg.pgsize_bitmap = format_pgsizes(cfg->format);
	if (!dev->cfg.aperture_last)
		dev->cfg.aperture_last = (1ull << 48) - 1;
	dev->name = uiommu__zalloc(cfg->name ? strlen(cfg->name) + 1 : 1);
	dev->reserved = uiommu__calloc(cfg->nr_reserved + 1, sizeof(*dev->reserved));
	dev->hw_info = uiommu__zalloc(cfg->hw_info_len + 1);
	if (!dev->name || !dev->reserved || !dev->hw_info)
		return -ENOMEM;
	if (cfg->name)
		strcpy(dev->name, cfg->name);
	if (cfg->nr_reserved)
		memcpy(dev->reserved, cfg->reserved, cfg->nr_reserved * sizeof(*dev->reserved));
	if (cfg->hw_info_len)
		memcpy(dev->hw_info, cfg->hw_info, cfg->hw_info_len);
	dev->cfg.name = dev->name;
	dev->cfg.reserved = dev->reserved;
	dev->cfg.hw_info = dev->hw_info;
	return 0;
}

static void hwdev_free(struct uiommu_hwdev *dev)
{
	uiommu_device_destroy(dev->dma);
	uiommu__free(dev->name);
	uiommu__free(dev->reserved);
	uiommu__free(dev->hw_info);
	uiommu__free(dev);
}

UIOMMU_EXPORT int uiommu_hwdev_create(const struct uiommu_hwdev_cfg *cfg,
				      struct uiommu_hwdev **out)
{
	struct uiommu_hwdev *dev;
	int ret = hwdev_cfg_check(cfg);

	if (ret)
		return ret;
	dev = uiommu__zalloc(sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	ret = hwdev_copy_cfg(dev, cfg);
	if (!ret)
		ret = uiommu_device_create(NULL, &dev->dma);
	if (ret) {
		hwdev_free(dev);
		return ret;
	}
	*out = dev;
	return 0;
}

UIOMMU_EXPORT void uiommu_hwdev_destroy(struct uiommu_hwdev *dev)
{
	if (!dev)
		return;
	UIOMMU_BUG_ON(dev->bound);
	hwdev_free(dev);
}

UIOMMU_EXPORT struct uiommu_device *uiommu_hwdev_dma(struct uiommu_hwdev *dev)
{
	return dev->dma;
}

UIOMMU_EXPORT const struct uiommu_hwdev_cfg *uiommu_hwdev_cfg(const struct uiommu_hwdev *dev)
{
	return &dev->cfg;
}
