// SPDX-License-Identifier: MIT
/*
 * ioctls on a device fd of a group (VFIO_GROUP_GET_DEVICE_FD), as
 * drivers/vfio/vfio_main.c frames them:
 *
 *   VFIO_DEVICE_FEATURE   the core's framing (argsz, unknown flags, GET and SET
 *                         together without PROBE), then per feature the
 *                         check_feature rules: a GET or SET the feature does
 *                         not support -> EINVAL; PROBE -> 0; neither GET nor
 *                         SET -> EINVAL; payload below the feature's minimum
 *                         -> EINVAL. DMA_LOGGING_START, STOP and REPORT are
 *                         served by the device's log (vfio_type1_log.c);
 *                         without logging ability they are ENOTTY (PROBE
 *                         too). The migration features are ENOTTY (no
 *                         migration ops); any other index EINVAL (no driver
 *                         feature handler).
 *   VFIO_DEVICE_GET_INFO  the driver's: flags 0, no regions, no IRQs (the
 *                         device exists to DMA).
 *   anything else         ENOTTY (the driver's answer to unknown ioctls).
 *
 * START reads and checks the ranges as the core does, in the user's order:
 * copy (EFAULT), alignment to the requested page_size as the kernel's
 * IS_ALIGNED (a mask test, so a page size that is no power of two is taken
 * as the kernel takes it), iova + length wrapping (EOVERFLOW), overlap with
 * an earlier range (EINVAL). The device then chooses its granule, written
 * back in page_size; if that write faults, logging is stopped (EFAULT).
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stddef.h>

#include "uapi/vfio_type1_internal.h"

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

#define offsetofend(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))
#define FEATURE_HDR offsetofend(struct vfio_device_feature, flags)
#define FEATURE_FLAGS_KNOWN                                                                        \
	(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET |            \
	 VFIO_DEVICE_FEATURE_PROBE)
#define LOG_MAX_RANGES 256u

_Static_assert(sizeof(struct vfio_device_feature) == 8, "vfio_device_feature");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_control) == 24, "log control");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_range) == 16, "log range");
_Static_assert(sizeof(struct vfio_device_feature_dma_logging_report) == 32, "log report");

/* The kernel's vfio_check_feature(): 1 to go on, 0 for a PROBE, or -EINVAL. */
static int check_feature(uint32_t flags, size_t argsz, uint32_t supported, size_t minsz)
{
	if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) & ~supported)
		return -EINVAL;
	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		return 0;
	if (!(flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)))
		return -EINVAL;
	return argsz < minsz ? -EINVAL : 1;
}

/* ---- DMA_LOGGING_START ---- */

/* Range @i of the user's array into @out[i], with the core's checks. */
static int start_read_range(const struct vfio_device_feature_dma_logging_control *ctl,
			    uint32_t i, struct uiommu_iova_range *out)
{
	const struct vfio_device_feature_dma_logging_range *ur =
		(const void *)(uintptr_t)ctl->ranges;
	struct vfio_device_feature_dma_logging_range r;
	uint64_t end;

	if (uiommu__copy_from_user(&r, &ur[i], sizeof(r)))
		return -EFAULT;
	if ((r.iova & (ctl->page_size - 1)) || (r.length & (ctl->page_size - 1)))
		return -EINVAL;
	if (uiommu_check_add_overflow(r.iova, r.length, &end))
		return -EOVERFLOW;
	/* Not a core check: an empty range has no last byte (quirks doc). */
	if (!r.length)
		return -EINVAL;
	out[i] = (struct uiommu_iova_range){ r.iova, r.iova + r.length - 1 };
	for (uint32_t j = 0; j < i; j++)
		if (out[j].start <= out[i].last && out[i].start <= out[j].last)
			return -EINVAL;
	return 0;
}

static int start_read_ranges(const struct vfio_device_feature_dma_logging_control *ctl,
			     struct uiommu_iova_range *out)
{
	for (uint32_t i = 0; i < ctl->num_ranges; i++) {
		int ret = start_read_range(ctl, i, out);

		if (ret)
			return ret;
	}
	return 0;
}

static int log_start(struct uiommu_vfio_device *d, uint32_t flags, char *arg, size_t argsz)
{
	struct vfio_device_feature_dma_logging_control ctl;
	struct uiommu_iova_range *ranges;
	uint64_t page_size;
	int ret = check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, sizeof(ctl));

	if (ret != 1)
		return ret;
	if (uiommu__copy_from_user(&ctl, arg, sizeof(ctl)))
		return -EFAULT;
	if (!ctl.num_ranges)
		return -EINVAL;
	if (ctl.num_ranges > LOG_MAX_RANGES)
		return -E2BIG;
	ranges = uiommu__calloc(ctl.num_ranges, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	ret = start_read_ranges(&ctl, ranges);
	page_size = ctl.page_size;
	if (!ret)
		ret = uiommu_vfio_device_log_start(d, &page_size, ranges, ctl.num_ranges);
	ctl.page_size = page_size;
	if (!ret && uiommu__copy_to_user(arg, &ctl, sizeof(ctl))) {
		uiommu_vfio_device_log_stop(d);
		ret = -EFAULT;
	}
	uiommu__free(ranges);
	return ret;
}

/* ---- STOP, REPORT ---- */

static int log_stop(struct uiommu_vfio_device *d, uint32_t flags, size_t argsz)
{
	int ret = check_feature(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);

	return ret != 1 ? ret : uiommu_vfio_device_log_stop(d);
}

static int log_report(struct uiommu_vfio_device *d, uint32_t flags, char *arg, size_t argsz)
{
	struct vfio_device_feature_dma_logging_report rep;
	int ret = check_feature(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(rep));

	if (ret != 1)
		return ret;
	if (uiommu__copy_from_user(&rep, arg, sizeof(rep)))
		return -EFAULT;
	return uiommu_vfio_device_log_report(d, rep.iova, rep.length, rep.page_size,
					     (uint64_t *)(uintptr_t)rep.bitmap);
}

static bool log_capable(struct uiommu_vfio_device *d)
{
	bool capable;

	pthread_mutex_lock(&d->log.lock);
	capable = d->log.capable;
	pthread_mutex_unlock(&d->log.lock);
	return capable;
}

static int device_feature(struct uiommu_vfio_device *d, char *arg)
{
	struct vfio_device_feature f;
	size_t argsz;

	if (uiommu__copy_from_user(&f, arg, FEATURE_HDR))
		return -EFAULT;
	if (f.argsz < FEATURE_HDR || (f.flags & ~FEATURE_FLAGS_KNOWN))
		return -EINVAL;
	if (!(f.flags & VFIO_DEVICE_FEATURE_PROBE) && (f.flags & VFIO_DEVICE_FEATURE_SET) &&
	    (f.flags & VFIO_DEVICE_FEATURE_GET))
		return -EINVAL;
	argsz = f.argsz - FEATURE_HDR;
	switch (f.flags & VFIO_DEVICE_FEATURE_MASK) {
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		return log_capable(d) ? log_start(d, f.flags, arg + FEATURE_HDR, argsz) : -ENOTTY;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
		return log_capable(d) ? log_stop(d, f.flags, argsz) : -ENOTTY;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return log_capable(d) ? log_report(d, f.flags, arg + FEATURE_HDR, argsz) : -ENOTTY;
	case VFIO_DEVICE_FEATURE_MIGRATION:
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		return -ENOTTY;
	default:
		return -EINVAL;
	}
}

/* VFIO_DEVICE_GET_INFO of a device that only DMAs: no regions and no IRQs. */
int vfio_device_get_info_dma_only(void *arg)
{
	const size_t minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct vfio_device_info info;

	if (uiommu__copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	info.flags = 0;
	info.num_regions = 0;
	info.num_irqs = 0;
	return uiommu__copy_to_user(arg, &info, minsz);
}

UIOMMU_EXPORT long uiommu_vfio_device_ioctl(struct uiommu_vfio_group *g, int fd,
					    unsigned long cmd, void *arg)
{
	struct uiommu_vfio_device *d = uiommu_vfio_device_from_fd(g, fd);

	if (!d)
		return -EBADF;
	switch ((unsigned int)cmd) {
	case VFIO_DEVICE_FEATURE:
		return device_feature(d, arg);
	case VFIO_DEVICE_GET_INFO:
		return vfio_device_get_info_dma_only(arg);
	default:
		return -ENOTTY;
	}
}
