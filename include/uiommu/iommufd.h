/* SPDX-License-Identifier: MIT */
/*
 * iommufd contexts: the native API of what /dev/iommu offers.
 *
 * A context is what an open /dev/iommu file is in the kernel: an object
 * table (IOAS, HWPT, device, access, selftest objects) with ids from 1 up,
 * driven by uiommu_iommufd_ioctl() with the kernel's command numbers and
 * structs (<uiommu/uapi/iommufd.h>), sizes, checks, order and errnos. The
 * VFIO container compat ioctls that iommufd serves on the same file are
 * accepted too.
 *
 * Hardware devices (uiommu_hwdev) stand for devices behind an IOMMU: each has
 * an aperture, reserved regions, page sizes, an IO page-table format and says
 * whether its IOMMU tracks dirty pages. A program creates them, binds them to
 * a context (what VFIO_DEVICE_BIND_IOMMUFD does) and attaches them to an IOAS
 * or a HWPT; then it can make them DMA. The LD_PRELOAD shim creates them from
 * the environment.
 *
 * User pointers inside ioctl arguments are read and written as the kernel
 * would: a bad pointer gives -EFAULT, never a crash. Contexts are
 * thread-safe: one lock serializes the ioctls of a context; device DMA runs
 * concurrently with everything.
 */
#ifndef UIOMMU_IOMMUFD_H
#define UIOMMU_IOMMUFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uiommu/compiler.h>
#include <uiommu/iommu.h>
#include <uiommu/iova_list.h>

UIOMMU_BEGIN_DECLS

struct uiommu_ctx;
struct uiommu_hwdev;

struct uiommu_hwdev_cfg {
	const char *name;               /* for logs; copied */
	enum uiommu_pt_format format;   /* IO page-table format of its IOMMU */
	uint64_t pgsize_bitmap;         /* 0: every size of the format */
	uint64_t aperture_start;        /* IOVA window the IOMMU translates */
	uint64_t aperture_last;         /* inclusive; 0 means the format's maximum */
	const struct uiommu_iova_range *reserved; /* reserved regions (e.g. MSI) */
	size_t nr_reserved;
	bool dirty_tracking;            /* the IOMMU can track dirty IOPTEs */
	uint8_t max_pasid_log2;         /* GET_HW_INFO out_max_pasid_log2 */
	uint32_t hw_info_type;          /* GET_HW_INFO out_data_type */
	const void *hw_info;            /* GET_HW_INFO data; copied */
	uint32_t hw_info_len;
};

/* 0, -EINVAL (bad page sizes, aperture, reserved ranges), -ENOMEM. */
UIOMMU_EXPORT int uiommu_hwdev_create(const struct uiommu_hwdev_cfg *cfg,
				      struct uiommu_hwdev **out);
/* The device must not be bound to any context. NULL-safe. */
UIOMMU_EXPORT void uiommu_hwdev_destroy(struct uiommu_hwdev *dev);
/* The DMA master (dma_write/dma_read/fault_pop/get_stats of iommu.h). One
 * thread at a time may DMA through it. */
UIOMMU_EXPORT struct uiommu_device *uiommu_hwdev_dma(struct uiommu_hwdev *dev);
UIOMMU_EXPORT const struct uiommu_hwdev_cfg *uiommu_hwdev_cfg(const struct uiommu_hwdev *dev);

/*
 * How a context names its file-like objects: the fd of a fault queue
 * (IOMMU_FAULT_QUEUE_ALLOC) and the access objects of the selftest ops. By
 * default eventfds; the shim supplies its own so that its close(), read() and
 * write() interpositions know them.
 */
struct uiommu_ctx_fd_ops {
	int (*open)(void *opaque);             /* a new fd, or -errno */
	void (*close)(void *opaque, int fd);
	void *opaque;
};

UIOMMU_EXPORT int uiommu_ctx_create(struct uiommu_ctx **out);
UIOMMU_EXPORT void uiommu_ctx_set_fd_ops(struct uiommu_ctx *ctx,
					 const struct uiommu_ctx_fd_ops *ops);
/* References: the creator holds one; dup'ed fds and access fds hold more.
 * The last put destroys every object (and unbinds devices). */
UIOMMU_EXPORT void uiommu_ctx_get(struct uiommu_ctx *ctx);
UIOMMU_EXPORT void uiommu_ctx_put(struct uiommu_ctx *ctx);
/* Shorthand for the creator: put. */
UIOMMU_EXPORT void uiommu_ctx_destroy(struct uiommu_ctx *ctx);

/**
 * uiommu_iommufd_ioctl() - One ioctl on the context.
 * Return: >= 0 as the kernel's ioctl would return, or -errno.
 */
UIOMMU_EXPORT long uiommu_iommufd_ioctl(struct uiommu_ctx *ctx, unsigned long cmd, void *arg);

/*
 * A file-like object of the context is being closed (a fault-queue or access
 * fd): 0 when @fd was one (it is released, fd_ops.close called and the
 * context reference it held dropped), -ENOENT otherwise. A fault queue stays
 * an object until DESTROY; only its fd goes.
 */
UIOMMU_EXPORT int uiommu_ctx_close_fd(struct uiommu_ctx *ctx, int fd);

/**
 * uiommu_fault_read() - read(2) on a fault queue's fd, without the shim.
 * @fd: out_fault_fd of IOMMU_FAULT_QUEUE_ALLOC on @ctx.
 * @buf: user memory for whole struct iommu_hwpt_pgfault records.
 *
 * Takes the waiting faults, oldest first, as many as fit, and gives each
 * group a cookie to answer with. Never blocks. Under the shim, read() on the
 * fd does exactly this.
 *
 * Return: bytes read (0 when no fault waits), or -EBADF (@fd is no fault
 * queue's fd of @ctx), -ESPIPE (@count not a multiple of the record),
 * -EINVAL (the first waiting fault does not fit), -EFAULT (bad @buf, before
 * anything was read); a failure after some records returns their bytes.
 */
UIOMMU_EXPORT ssize_t uiommu_fault_read(struct uiommu_ctx *ctx, int fd, void *buf, size_t count);

/**
 * uiommu_fault_write() - write(2) on a fault queue's fd, without the shim.
 * @buf: struct iommu_hwpt_page_response records, each answering the group
 *       with that cookie (code IOMMUFD_PAGE_RESP_SUCCESS or _INVALID).
 *
 * Return: bytes taken, or -EBADF, -ESPIPE (as for the read), -EINVAL (bad
 * code, or no unanswered group has that cookie), -EFAULT; a failure after
 * some records returns their bytes, and those groups stay answered.
 */
UIOMMU_EXPORT ssize_t uiommu_fault_write(struct uiommu_ctx *ctx, int fd, const void *buf,
					 size_t count);

/* Bind @dev (VFIO_DEVICE_BIND_IOMMUFD): *dev_id = its device object id.
 * -EBUSY when bound elsewhere. */
UIOMMU_EXPORT int uiommu_ctx_bind(struct uiommu_ctx *ctx, struct uiommu_hwdev *dev,
				  uint32_t *dev_id);
/* Detaches if attached and frees the device object. */
UIOMMU_EXPORT void uiommu_ctx_unbind(struct uiommu_ctx *ctx, uint32_t dev_id);
/*
 * Attach or replace (VFIO_DEVICE_ATTACH_IOMMUFD_PT): *pt_id is an IOAS (an
 * automatic HWPT is reused or made) or a HWPT, paging or nested (the device
 * then DMAs through the nested HWPT's parent page table); on return the HWPT.
 * -ENOENT bad ids; -EINVAL incompatible (e.g. dirty-tracking HWPT and a device
 * that cannot track); -EADDRINUSE reserved-region conflicts with mappings.
 */
UIOMMU_EXPORT int uiommu_ctx_attach(struct uiommu_ctx *ctx, uint32_t dev_id, uint32_t *pt_id);
/* 0, -ENOENT (no such device), -EINVAL (not attached). */
UIOMMU_EXPORT int uiommu_ctx_detach(struct uiommu_ctx *ctx, uint32_t dev_id);

UIOMMU_END_DECLS

#endif
