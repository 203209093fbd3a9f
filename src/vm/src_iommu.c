// SPDX-License-Identifier: MIT
/*
 * The "iommu" dirty source: what the emulated IOMMU's dirty bits say a DMA
 * device wrote, read the way a VMM reads them, through the iommufd front end
 * (uiommu_iommufd_ioctl(), the same entry point as /dev/iommu).
 *
 * The device's IOVA space is guest physical: guest page p is IOVA p * 4 KiB,
 * and the source covers IOVA [0, npages * 4 KiB) of one paging HWPT allocated
 * with IOMMU_HWPT_ALLOC_DIRTY_TRACKING. start and stop are
 * IOMMU_HWPT_SET_DIRTY_TRACKING on and off; collect is one
 * IOMMU_HWPT_GET_DIRTY_BITMAP (read and clear) of the whole range at 4 KiB.
 * The kernel's call ORs bits into the user's bitmap, so reading straight into
 * the caller's bitmap could not tell this source's pages from bits already
 * there: collect reads into a zeroed scratch bitmap of its own, then ORs it
 * into the caller's and counts it in the same pass. Unmapped IOVA reports
 * nothing. A write racing with the harvest is reported by it or by the next
 * (the IOMMU's guarantee, README "Semantics").
 *
 * The source holds a reference on the context, so the context outlives it;
 * the HWPT is the VMM's and is checked by the ioctls (-ENOENT if gone).
 *
 * Example: npages 512, a DMA wrote IOVA 0x3ff0..0x4010: collect reports
 * pages 3 and 4 and adds 2 to the count.
 */
#include <errno.h>
#include <string.h>

#include <uiommu/bitmap.h>
#include <uiommu/iommufd.h>
#include <uiommu/uapi/iommufd.h>
#include <uiommu/vm_sources.h>

#include "core/core_internal.h"

#define PAGE_SHIFT 12

struct iommu_src {
	struct uiommu_dirty_source base;
	struct uiommu_ctx *ctx;
	uint32_t hwpt_id;
	uint64_t *scratch;
	uint64_t nwords;
};

static struct iommu_src *to_iommu(struct uiommu_dirty_source *src)
{
	return container_of(src, struct iommu_src, base);
}

static int set_tracking(struct iommu_src *is, bool on)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = is->hwpt_id,
	};
	long rc = uiommu_iommufd_ioctl(is->ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);

	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "iommu: hwpt %u: dirty tracking %s failed (%ld)",
			    is->hwpt_id, on ? "on" : "off", rc);
	return (int)rc;
}

static int iommu_start(struct uiommu_dirty_source *src)
{
	return set_tracking(to_iommu(src), true);
}

static void iommu_stop(struct uiommu_dirty_source *src)
{
	set_tracking(to_iommu(src), false);
}

/* ORs the scratch bitmap into @bitmap; the pages it held. */
static uint64_t deliver_scratch(struct iommu_src *is, uint64_t *bitmap)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < is->nwords; w++) {
		bitmap[w] |= is->scratch[w];
		n += (uint64_t)__builtin_popcountll(is->scratch[w]);
	}
	return n;
}

static int iommu_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	struct iommu_src *is = to_iommu(src);
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = is->hwpt_id,
		.iova = 0,
		.length = src->npages << PAGE_SHIFT,
		.page_size = 1ull << PAGE_SHIFT,
		.data = (uintptr_t)is->scratch,
	};
	long rc;

	memset(is->scratch, 0, is->nwords * sizeof(uint64_t));
	rc = uiommu_iommufd_ioctl(is->ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "iommu: hwpt %u: GET_DIRTY_BITMAP failed (%ld)",
			    is->hwpt_id, rc);
	/* What a failed harvest cleared before it stopped is in scratch: deliver it. */
	*pages += deliver_scratch(is, bitmap);
	return (int)rc;
}

static void iommu_destroy(struct uiommu_dirty_source *src)
{
	struct iommu_src *is = to_iommu(src);

	uiommu_ctx_put(is->ctx);
	uiommu__free(is->scratch);
	uiommu__free(is);
}

static const struct uiommu_dirty_source_ops iommu_ops = {
	.start = iommu_start,
	.collect = iommu_collect,
	.stop = iommu_stop,
	.destroy = iommu_destroy,
};

UIOMMU_EXPORT int uiommu_iommu_source_create(struct uiommu_ctx *ctx, uint32_t hwpt_id,
					     uint64_t npages, struct uiommu_dirty_source **out)
{
	struct iommu_src *is;

	/* The IOVA length npages * 4 KiB must not wrap. */
	if (!ctx || !hwpt_id || !npages || npages > (UINT64_MAX >> PAGE_SHIFT) || !out)
		return -EINVAL;
	is = uiommu__zalloc(sizeof(*is));
	if (!is)
		return -ENOMEM;
	is->nwords = uiommu_bitmap_words(npages);
	is->scratch = uiommu__calloc(is->nwords, sizeof(uint64_t));
	if (!is->scratch)
		goto err_free_source;
	is->ctx = ctx;
	is->hwpt_id = hwpt_id;
	is->base.ops = &iommu_ops;
	is->base.name = "iommu";
	is->base.npages = npages;
	uiommu_ctx_get(ctx);
	*out = &is->base;
	return 0;

err_free_source:
	uiommu__free(is);
	return -ENOMEM;
}
