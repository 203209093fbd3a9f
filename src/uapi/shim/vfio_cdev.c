// SPDX-License-Identifier: MIT
/*
 * VFIO device cdev ioctls on /dev/vfio/devices/vfioN fds, as a VMM drives a
 * real device with iommufd (Linux 6.6+, drivers/vfio/device_cdev.c):
 *
 *   BIND_IOMMUFD        bind the device to the context of an iommufd fd;
 *                       returns the device object id (uiommu_ctx_bind)
 *   ATTACH_IOMMUFD_PT   attach or replace: IOAS (auto HWPT) or HWPT id in,
 *                       HWPT id out (uiommu_ctx_attach); starts the DMA
 *   DETACH_IOMMUFD_PT   detach (uiommu_ctx_detach); stops the DMA
 *   GET_INFO            flags 0, no regions, no IRQs
 *   close (last fd)     stops the DMA, unbinds, drops the context reference
 *
 * Checks and errnos follow the kernel: each struct is copied up to its
 * mandatory end (EFAULT), argsz below that or unknown flags are EINVAL; a
 * PASID attach or detach is EOPNOTSUPP (no emulated device has PASID
 * attach); an iommufd argument that is not open is EBADF, one that is not an
 * iommufd is EBADFD; every ioctl but BIND on an unbound device file is
 * EINVAL; binding a device that some file (this or another) has bound is
 * EINVAL; unknown ioctls on a bound file are ENOTTY. Detaching a device that
 * is not attached succeeds, as vfio_iommufd_physical_detach_ioas() does.
 * User memory is accessed with uiommu__copy_from_user/_to_user, so bad
 * pointers give EFAULT.
 *
 * The binding holds a context reference, as the kernel's
 * iommufd_ctx_from_fd() does: closing the iommufd while a device is bound
 * keeps the context alive until the device file closes.
 *
 * Locking: the device lock serializes the binding state and the DMA thread.
 * Lock order: device lock, then the context's lock (inside uiommu_ctx_*),
 * then the fd-table lock. The last context put happens with no lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>

#include "core/core_internal.h"
#include "uapi/shim/shim_internal.h"
#include "uapi/shim/vfio_cdev.h"
#include "uapi/vfio_type1_internal.h"

/* The context of iommufd @fd, with a reference: 0, -EBADF or -EBADFD. */
static int ctx_from_fd(int fd, struct uiommu_ctx **out)
{
	struct shim_file *f = uiommu__shim_fd_get(fd);

	if (!f)
		return uiommu__shim_real()->fcntl(fd, F_GETFD) < 0 ? -EBADF : -EBADFD;
	if (f->kind != SHIM_FILE_IOMMUFD) {
		uiommu__shim_file_put(f);
		return -EBADFD;
	}
	uiommu_ctx_get(f->ctx);
	*out = f->ctx;
	uiommu__shim_file_put(f);
	return 0;
}

static bool vdev_bound_by(struct shim_vdev *v, const struct shim_file *f)
{
	bool bound;

	pthread_mutex_lock(&v->lock);
	bound = v->owner == f;
	pthread_mutex_unlock(&v->lock);
	return bound;
}

/* Device lock held. */
static void vdev_detach_locked(struct shim_vdev *v)
{
	uiommu__shim_dma_stop(&v->dma);
	if (v->attached)
		uiommu_ctx_detach(v->ctx, v->dev_id);
	v->attached = false;
}

static long vdev_bind(struct shim_file *f, void *arg)
{
	struct vfio_device_bind_iommufd bind;
	struct shim_vdev *v = f->vdev;
	struct uiommu_ctx *ctx = NULL;
	uint32_t dev_id;
	int ret;

	if (uiommu__copy_from_user(&bind, arg, VFIO_CDEV_BIND_MINSZ))
		return -EFAULT;
	if (bind.argsz < VFIO_CDEV_BIND_MINSZ || bind.flags || bind.iommufd < 0)
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	ret = v->owner ? -EINVAL : ctx_from_fd(bind.iommufd, &ctx);
	if (!ret)
		ret = uiommu_ctx_bind(ctx, v->hw, &dev_id);
	if (!ret && uiommu__copy_to_user((char *)arg + offsetof(struct vfio_device_bind_iommufd,
								 out_devid),
					 &dev_id, sizeof(dev_id))) {
		uiommu_ctx_unbind(ctx, dev_id);
		ret = -EFAULT;
	}
	if (!ret) {
		v->owner = f;
		v->ctx = ctx;
		v->dev_id = dev_id;
		v->attached = false;
		ctx = NULL;
	}
	pthread_mutex_unlock(&v->lock);
	if (ctx)
		uiommu_ctx_put(ctx);
	return ret;
}

static int cdev_dma_write(void *opaque, uint64_t iova, const void *buf, size_t len)
{
	return uiommu_device_dma_write(opaque, iova, buf, len);
}

static long vdev_attach(struct shim_file *f, void *arg)
{
	struct vfio_device_attach_iommufd_pt at;
	struct shim_vdev *v = f->vdev;
	uint32_t pt_id;
	int ret;

	if (uiommu__copy_from_user(&at, arg, VFIO_CDEV_ATTACH_MINSZ))
		return -EFAULT;
	if (at.argsz < VFIO_CDEV_ATTACH_MINSZ || (at.flags & ~VFIO_DEVICE_ATTACH_PASID))
		return -EINVAL;
	if (at.flags)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&v->lock);
	pt_id = at.pt_id;
	ret = uiommu_ctx_attach(v->ctx, v->dev_id, &pt_id);
	if (!ret) {
		v->attached = true;
		if (uiommu__copy_to_user((char *)arg + offsetof(struct vfio_device_attach_iommufd_pt,
								 pt_id),
					 &pt_id, sizeof(pt_id)))
			ret = -EFAULT;
		else
			ret = uiommu__shim_dma_start(&v->dma, v->cfg, cdev_dma_write,
						     uiommu_hwdev_dma(v->hw));
		/* As the kernel does when the copy-out fails: detached, even after a replace. */
		if (ret)
			vdev_detach_locked(v);
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

static long vdev_detach(struct shim_file *f, void *arg)
{
	struct vfio_device_detach_iommufd_pt dt;
	struct shim_vdev *v = f->vdev;

	if (uiommu__copy_from_user(&dt, arg, VFIO_CDEV_DETACH_MINSZ))
		return -EFAULT;
	if (dt.argsz < VFIO_CDEV_DETACH_MINSZ || (dt.flags & ~VFIO_DEVICE_DETACH_PASID))
		return -EINVAL;
	if (dt.flags)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&v->lock);
	vdev_detach_locked(v);
	pthread_mutex_unlock(&v->lock);
	return 0;
}

long uiommu__shim_vdev_ioctl(struct shim_file *f, unsigned long request, void *arg)
{
	/* The kernel's ioctl command is an unsigned int; higher bits are ignored. */
	unsigned int cmd = (unsigned int)request;

	if (cmd == VFIO_DEVICE_BIND_IOMMUFD)
		return vdev_bind(f, arg);
	if (!vdev_bound_by(f->vdev, f))
		return -EINVAL;
	switch (cmd) {
	case VFIO_DEVICE_ATTACH_IOMMUFD_PT:
		return vdev_attach(f, arg);
	case VFIO_DEVICE_DETACH_IOMMUFD_PT:
		return vdev_detach(f, arg);
	case VFIO_DEVICE_GET_INFO:
		return vfio_device_get_info_dma_only(arg);
	default:
		return -ENOTTY;
	}
}

void uiommu__shim_vdev_release(struct shim_file *f)
{
	struct shim_vdev *v = f->vdev;
	struct uiommu_ctx *ctx = NULL;

	pthread_mutex_lock(&v->lock);
	if (v->owner == f) {
		vdev_detach_locked(v);
		uiommu_ctx_unbind(v->ctx, v->dev_id);
		ctx = v->ctx;
		v->ctx = NULL;
		v->owner = NULL;
	}
	pthread_mutex_unlock(&v->lock);
	/* Possibly the last reference: destroy the context with no lock held. */
	if (ctx)
		uiommu_ctx_put(ctx);
}
