// SPDX-License-Identifier: MIT
/*
 * The "vfio" dirty source: what a VFIO type1 container says was dirtied,
 * read the way a VMM with a legacy VFIO container reads it, through
 * VFIO_IOMMU_DIRTY_PAGES on the container (uiommu_vfio_container_ioctl(),
 * the same entry point as ioctl(2) on /dev/vfio/vfio).
 *
 * Guest RAM is mapped at IOVA = GPA, so guest page p is IOVA p * 4 KiB; the
 * source covers IOVA [0, npages * 4 KiB). start is DIRTY_PAGES START, stop
 * is STOP, collect is one GET_BITMAP of the whole range at the container's
 * smallest page size, which must be 4 KiB (checked at start, -EOPNOTSUPP
 * otherwise) so that bit k is guest page k. GET_BITMAP reads and clears.
 *
 * What it reports is the kernel's rule, not what was written:
 *  - while an IOMMU-backed group that is not in pinned scope is attached,
 *    every mapped page, in every collect (the all-dirty rule), unless the
 *    container has UIOMMU_VFIO_OPT_IOMMU_DIRTY, which reads the IOMMU's
 *    dirty bits instead;
 *  - pages pinned by emulated devices, in every collect while pinned, and
 *    once more after the unpin;
 *  - pages written with uiommu_vfio_dma_rw, once.
 * The kernel copies whole words and expects a zeroed buffer, so collect
 * reads into a zeroed scratch bitmap of its own and ORs it into the
 * caller's, counting in the same pass (as the "iommu" source does).
 *
 * The container is the VMM's and must outlive the source.
 *
 * Example: npages 512 with an emulated device that pinned pages 8-11 and
 * wrote page 20 by rw: the first collect reports 8-11 and 20 (5 pages), the
 * next ones 8-11 (4 pages) for as long as the pins stay.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <string.h>

#include <uiommu/bitmap.h>
#include <uiommu/vfio_type1.h>
#include <uiommu/vm_sources.h>

#include "core/core_internal.h"

#define PAGE_SHIFT 12

struct vfio_src {
	struct uiommu_dirty_source base;
	struct uiommu_vfio_container *c;
	uint64_t *scratch;
	uint64_t nwords;
};

/* The header of struct vfio_iommu_type1_dirty_bitmap, then its GET_BITMAP payload. */
struct dirty_get {
	struct {
		__u32 argsz;
		__u32 flags;
	} hdr;
	struct vfio_iommu_type1_dirty_bitmap_get get;
};

static struct vfio_src *to_vfio(struct uiommu_dirty_source *src)
{
	return container_of(src, struct vfio_src, base);
}

static int dirty_cmd(struct vfio_src *vs, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap cmd = { .argsz = sizeof(cmd), .flags = flag };
	long rc = uiommu_vfio_container_ioctl(vs->c, VFIO_IOMMU_DIRTY_PAGES, &cmd);

	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "vfio: DIRTY_PAGES %s failed (%ld)",
			    flag == VFIO_IOMMU_DIRTY_PAGES_FLAG_START ? "START" : "STOP", rc);
	return (int)rc;
}

/* Bit k must be guest page k: the container's smallest page is 4 KiB. */
static int check_page_size(struct vfio_src *vs)
{
	struct uiommu_vfio_info info;
	int ret = uiommu_vfio_get_info(vs->c, &info, NULL, 0);

	if (ret)
		return ret;
	if ((info.pgsize_bitmap & -info.pgsize_bitmap) != 1ull << PAGE_SHIFT) {
		uiommu__log(UIOMMU_LOG_ERR, "vfio: smallest page 0x%llx, not 4 KiB",
			    (unsigned long long)(info.pgsize_bitmap & -info.pgsize_bitmap));
		return -EOPNOTSUPP;
	}
	return 0;
}

static int vfio_start(struct uiommu_dirty_source *src)
{
	struct vfio_src *vs = to_vfio(src);
	int ret = check_page_size(vs);

	return ret ? ret : dirty_cmd(vs, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
}

static void vfio_stop(struct uiommu_dirty_source *src)
{
	dirty_cmd(to_vfio(src), VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
}

/* ORs the scratch bitmap into @bitmap; the pages it held. */
static uint64_t deliver_scratch(struct vfio_src *vs, uint64_t *bitmap)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < vs->nwords; w++) {
		bitmap[w] |= vs->scratch[w];
		n += (uint64_t)__builtin_popcountll(vs->scratch[w]);
	}
	return n;
}

static int vfio_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	struct vfio_src *vs = to_vfio(src);
	struct dirty_get g = {
		.hdr = { .argsz = sizeof(g), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
		.get = { .iova = 0,
			 .size = src->npages << PAGE_SHIFT,
			 .bitmap = { .pgsize = 1ull << PAGE_SHIFT,
				     .size = vs->nwords * sizeof(uint64_t),
				     .data = (__u64 *)vs->scratch } },
	};
	long rc;

	memset(vs->scratch, 0, vs->nwords * sizeof(uint64_t));
	rc = uiommu_vfio_container_ioctl(vs->c, VFIO_IOMMU_DIRTY_PAGES, &g);
	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "vfio: GET_BITMAP failed (%ld)", rc);
	/* Entries copied out before a failure were reset: deliver what arrived. */
	*pages += deliver_scratch(vs, bitmap);
	return (int)rc;
}

static void vfio_destroy(struct uiommu_dirty_source *src)
{
	struct vfio_src *vs = to_vfio(src);

	uiommu__free(vs->scratch);
	uiommu__free(vs);
}

static const struct uiommu_dirty_source_ops vfio_ops = {
	.start = vfio_start,
	.collect = vfio_collect,
	.stop = vfio_stop,
	.destroy = vfio_destroy,
};

UIOMMU_EXPORT int uiommu_vfio_source_create(struct uiommu_vfio_container *c, uint64_t npages,
					    struct uiommu_dirty_source **out)
{
	struct vfio_src *vs;

	/* The IOVA length npages * 4 KiB must not wrap. */
	if (!c || !npages || npages > (UINT64_MAX >> PAGE_SHIFT) || !out)
		return -EINVAL;
	vs = uiommu__zalloc(sizeof(*vs));
	if (!vs)
		return -ENOMEM;
	vs->nwords = uiommu_bitmap_words(npages);
	vs->scratch = uiommu__calloc(vs->nwords, sizeof(uint64_t));
	if (!vs->scratch)
		goto err_free_source;
	vs->c = c;
	vs->base.ops = &vfio_ops;
	vs->base.name = "vfio";
	vs->base.npages = npages;
	*out = &vs->base;
	return 0;

err_free_source:
	uiommu__free(vs);
	return -ENOMEM;
}
