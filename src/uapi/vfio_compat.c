// SPDX-License-Identifier: MIT
/*
 * The VFIO container ioctls that iommufd answers on its own file: iommufd's
 * compat semantics (drivers/iommu/iommufd/vfio_compat.c behaviour), not
 * type1's. They act on the context's compat IOAS, chosen with
 * IOMMU_VFIO_IOAS; without one they fail with -ENODEV. Differences from
 * type1 (the type1 front end is separate): no dirty tracking (ENOTTY), UNMAP
 * takes only the ALL flag, GET_INFO reports DMA_AVAIL (U32_MAX) and IOVA_RANGE
 * only, and TYPE1 (v1) mode disables huge pages and cuts areas on unmap.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stddef.h>
#include <string.h>

#include <uiommu/uapi/iommufd.h>

#include "uapi/uapi_internal.h"

#define offsetofend(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))

int vfio_compat_ioas(struct ucmd *ucmd)
{
	struct iommu_vfio_ioas *cmd = ucmd->cmd;
	struct ioas_obj *ioas;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	switch (cmd->op) {
	case IOMMU_VFIO_IOAS_GET:
		if (!ucmd->ctx->vfio_ioas)
			return -ENODEV;
		cmd->ioas_id = ucmd->ctx->vfio_ioas->obj.id;
		return ucmd_respond(ucmd, sizeof(*cmd));
	case IOMMU_VFIO_IOAS_SET:
		ioas = ioas_find(ucmd->ctx, cmd->ioas_id);
		if (!ioas)
			return -ENOENT;
		ucmd->ctx->vfio_ioas = ioas;
		return 0;
	case IOMMU_VFIO_IOAS_CLEAR:
		ucmd->ctx->vfio_ioas = NULL;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static int compat_map_dma(struct uiommu_ctx *ctx, void *arg)
{
	const uint32_t valid = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
	struct vfio_iommu_type1_dma_map map;
	uint32_t prot = 0;
	uint64_t iova;

	if (uiommu__copy_from_user(&map, arg, minsz))
		return -EFAULT;
	if (map.argsz < minsz || (map.flags & ~valid))
		return -EINVAL;
	if (map.flags & VFIO_DMA_MAP_FLAG_READ)
		prot |= UIOMMU_PROT_READ;
	if (map.flags & VFIO_DMA_MAP_FLAG_WRITE)
		prot |= UIOMMU_PROT_WRITE;
	if (!ctx->vfio_ioas)
		return -ENODEV;
	iova = map.iova;
	/* Deviation: flags 0 (no permission) is -EINVAL here; iommufd maps it. */
	return uiommu_ioas_map(ctx->vfio_ioas->ioas, (void *)(uintptr_t)map.vaddr, map.size, prot,
			       UIOMMU_IOAS_MAP_FIXED_IOVA, &iova);
}

static int compat_unmap_range(struct uiommu_ioas *ioas, uint64_t iova, uint64_t size,
			      uint64_t *unmapped)
{
	int ret;

	/* v1 (huge pages disabled) may unmap part of a mapping: cut first. */
	if (!uiommu_ioas_huge_pages(ioas)) {
		ret = uiommu_ioas_cut(ioas, iova + size - 1);
		if (!ret && iova)
			ret = uiommu_ioas_cut(ioas, iova - 1);
		if (ret)
			return ret;
	}
	return uiommu_ioas_unmap(ioas, iova, size, unmapped);
}

static int compat_unmap_dma(struct uiommu_ctx *ctx, void *arg)
{
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
	struct vfio_iommu_type1_dma_unmap unmap;
	uint64_t unmapped = 0;
	int ret;

	if (uiommu__copy_from_user(&unmap, arg, minsz))
		return -EFAULT;
	if (unmap.argsz < minsz || (unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL))
		return -EINVAL;
	if (!ctx->vfio_ioas)
		return -ENODEV;
	if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		if (unmap.iova || unmap.size)
			return -EINVAL;
		ret = uiommu_ioas_unmap(ctx->vfio_ioas->ioas, 0, UINT64_MAX, &unmapped);
	} else {
		ret = compat_unmap_range(ctx->vfio_ioas->ioas, unmap.iova, unmap.size, &unmapped);
	}
	/* The size unmapped goes back even on error, as in the kernel. */
	unmap.size = unmapped;
	if (uiommu__copy_to_user(arg, &unmap, minsz))
		ret = -EFAULT;
	return ret;
}

static long compat_check_extension(struct uiommu_ctx *ctx, unsigned long type)
{
	switch (type) {
	case VFIO_TYPE1_IOMMU:
	case VFIO_TYPE1v2_IOMMU:
	case VFIO_UNMAP_ALL:
		return 1;
	case VFIO_DMA_CC_IOMMU:
		/* Emulated DMA is always cache coherent. */
		return ctx->vfio_ioas ? 1 : -ENODEV;
	default:
		return 0;
	}
}

static long compat_set_iommu(struct uiommu_ctx *ctx, unsigned long type)
{
	if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU)
		return -EINVAL;
	if (!ctx->vfio_ioas)
		return -ENODEV;
	if (type == VFIO_TYPE1_IOMMU)
		return uiommu_ioas_set_huge_pages(ctx->vfio_ioas->ioas, false);
	return 0;
}

/* The page sizes VFIO reports: what every domain offers, at least PAGE_SIZE. */
static uint64_t compat_pgsizes(struct uiommu_ctx *ctx, struct ioas_obj *ioas)
{
	uint64_t pg = uiommu__page_size(), bitmap = UINT64_MAX;

	for (uint32_t id = 1; id < ctx->table_cap; id++) {
		struct hwpt_obj *hwpt = hwpt_find(ctx, id);

		if (hwpt && hwpt->ioas == ioas)
			bitmap &= uiommu_domain_pgsize_bitmap(hwpt->domain);
	}
	if (bitmap & (pg - 1))
		bitmap = (bitmap & ~(pg - 1)) | pg;
	return u64_max(bitmap, uiommu_ioas_iova_alignment(ioas->ioas));
}

static int fill_cap_dma_avail(struct uiommu_ioas *ioas, void *cur, size_t avail)
{
	struct vfio_iommu_type1_info_dma_avail cap = {
		.header = { .id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, .version = 1 },
		.avail = UINT32_MAX,
	};

	(void)ioas;
	if (avail >= sizeof(cap) && uiommu__copy_to_user(cur, &cap, sizeof(cap)))
		return -EFAULT;
	return sizeof(cap);
}

static int fill_cap_iova_ranges(struct vfio_iommu_type1_info_cap_iova_range *cap,
				const struct uiommu_iova_range *ranges, size_t total, void *cur,
				size_t avail)
{
	size_t hdr = offsetof(struct vfio_iommu_type1_info_cap_iova_range, iova_ranges);

	cap->nr_iovas = (uint32_t)total;
	for (size_t i = 0; i < total; i++) {
		struct vfio_iova_range r = { .start = ranges[i].start, .end = ranges[i].last };
		size_t off = hdr + i * sizeof(r);

		if (avail >= off + sizeof(r) &&
		    uiommu__copy_to_user((char *)cur + off, &r, sizeof(r)))
			return -EFAULT;
	}
	if (avail >= hdr + total * sizeof(struct vfio_iova_range) &&
	    uiommu__copy_to_user(cur, cap, hdr))
		return -EFAULT;
	return (int)(hdr + total * sizeof(struct vfio_iova_range));
}

static int fill_cap_iova(struct uiommu_ioas *ioas, void *cur, size_t avail)
{
	struct vfio_iommu_type1_info_cap_iova_range cap = {
		.header = { .id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, .version = 1 },
	};
	struct uiommu_iova_range *ranges;
	size_t total = 0;
	uint64_t align;
	int ret;

	uiommu_ioas_iova_ranges(ioas, NULL, 0, &total, &align);
	ranges = uiommu__calloc(total ? total : 1, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	ret = uiommu_ioas_iova_ranges(ioas, ranges, total, &total, &align);
	if (!ret)
		ret = fill_cap_iova_ranges(&cap, ranges, total, cur, avail);
	uiommu__free(ranges);
	return ret;
}
typedef int (*fill_cap_fn)(struct uiommu_ioas *ioas, void *cur, size_t avail);

static int compat_fill_caps(struct uiommu_ioas *ioas, void *arg, uint32_t argsz,
			    size_t *total)
{
	static const fill_cap_fn fill[] = { fill_cap_dma_avail, fill_cap_iova };
	size_t last_cap = 0;

	*total = sizeof(struct vfio_iommu_type1_info);
	for (size_t i = 0; i < ARRAY_SIZE(fill); i++) {
		int size = argsz > *total ? fill[i](ioas, (char *)arg + *total, argsz - *total)
					  : fill[i](ioas, NULL, 0);
		uint32_t next = (uint32_t)*total;

		if (size < 0)
			return size;
		if (last_cap && argsz >= *total &&
		    uiommu__copy_to_user((char *)arg + last_cap +
						 offsetof(struct vfio_info_cap_header, next),
					 &next, sizeof(next)))
			return -EFAULT;
		last_cap = *total;
		*total += ((size_t)size + 7) & ~(size_t)7;
	}
	return 0;
}

static int compat_get_info(struct uiommu_ctx *ctx, void *arg)
{
	size_t minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes), total;
	struct vfio_iommu_type1_info info = { 0 };
	int ret;

	if (uiommu__copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	minsz = info.argsz < sizeof(info) ? info.argsz : sizeof(info);
	if (!ctx->vfio_ioas)
		return -ENODEV;
	info.flags = VFIO_IOMMU_INFO_PGSIZES;
	info.iova_pgsizes = compat_pgsizes(ctx, ctx->vfio_ioas);
	info.cap_offset = 0;
	ret = compat_fill_caps(ctx->vfio_ioas->ioas, arg, info.argsz, &total);
	if (ret)
		return ret;
	if (info.argsz >= total)
		info.cap_offset = sizeof(info);
	info.argsz = (uint32_t)total;
	info.flags |= VFIO_IOMMU_INFO_CAPS;
	return uiommu__copy_to_user(arg, &info, minsz);
}

static long vfio_compat_locked(struct uiommu_ctx *ctx, unsigned long cmd, void *arg)
{
	switch (cmd) {
	case VFIO_GET_API_VERSION:
		return VFIO_API_VERSION;
	case VFIO_SET_IOMMU:
		return compat_set_iommu(ctx, (unsigned long)arg);
	case VFIO_CHECK_EXTENSION:
		return compat_check_extension(ctx, (unsigned long)arg);
	case VFIO_IOMMU_GET_INFO:
		return compat_get_info(ctx, arg);
	case VFIO_IOMMU_MAP_DMA:
		return compat_map_dma(ctx, arg);
	case VFIO_IOMMU_UNMAP_DMA:
		return compat_unmap_dma(ctx, arg);
	default:
		/* Including VFIO_IOMMU_DIRTY_PAGES: iommufd's compat has none. */
		return -ENOTTY;
	}
}

long vfio_compat_ioctl(struct uiommu_ctx *ctx, unsigned long cmd, void *arg)
{
	long ret;

	pthread_mutex_lock(&ctx->lock);
	ret = vfio_compat_locked(ctx, cmd, arg);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}
