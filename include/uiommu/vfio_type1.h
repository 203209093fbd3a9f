/* SPDX-License-Identifier: MIT */
/*
 * The VFIO type1 container: the native API of what /dev/vfio/vfio and the
 * group files /dev/vfio/N offer, with the kernel's semantics
 * (drivers/vfio/vfio_iommu_type1.c, container.c, group.c).
 *
 * A container is an open /dev/vfio/vfio; a group is /dev/vfio/N with devices
 * behind it. A group is either IOMMU-backed (its devices are uiommu_hwdevs:
 * aperture, reserved regions, page sizes, dirty capability, a DMA master) or
 * emulated (mdev-like: its devices have no IOMMU, they pin pages and read or
 * write through the container). The VMM's flow: create a container, put a
 * group in it (SET_CONTAINER), choose TYPE1 or TYPE1v2 (SET_IOMMU), then
 * MAP_DMA, UNMAP_DMA, GET_INFO and DIRTY_PAGES on the container.
 *
 * uiommu_vfio_container_ioctl() and uiommu_vfio_group_ioctl() take the
 * kernel's command numbers and structs (<linux/vfio.h>) and user pointers
 * exactly as ioctl(2) does: same argsz rules, same checks in the same order,
 * same errnos (returned negated, never set in errno); a bad user pointer is
 * -EFAULT, never a crash. The native functions below do what the ioctls do
 * after the user structs are read. Every deviation from the kernel is listed
 * in doc/vfio-type1-quirks.md.
 *
 * Threads: the calls on a container (and on the groups in it) are serialized
 * by the container's lock; DMA by IOMMU-backed devices runs concurrently with
 * everything, and the pin/rw calls of emulated devices may run on any thread,
 * also while another thread sets or unsets the group's container. A device's
 * DMA log has its own lock.
 * An emulated device's dma_unmap callback is called without that lock, from
 * the thread that unmaps; it must unpin what it pinned in the range.
 */
#ifndef UIOMMU_VFIO_TYPE1_H
#define UIOMMU_VFIO_TYPE1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/compiler.h>
#include <uiommu/iommufd.h>
#include <uiommu/iova_list.h>

UIOMMU_BEGIN_DECLS

struct uiommu_vfio_container;
struct uiommu_vfio_group;
struct uiommu_vfio_emudev;
struct uiommu_vfio_device;

/* The kernel module parameter dma_entry_limit's default. */
#define UIOMMU_VFIO_DMA_ENTRY_LIMIT 65535u

/* ---- containers ---- */

/*
 * A new container with no group and no IOMMU type. It owns a file descriptor
 * (an eventfd) that names it in VFIO_GROUP_SET_CONTAINER. 0 or -ENOMEM/-EMFILE.
 */
UIOMMU_EXPORT int uiommu_vfio_container_create(struct uiommu_vfio_container **out);
/* Takes every group out (closing their device fds) and frees; the groups
 * stay the caller's. NULL-safe. */
UIOMMU_EXPORT void uiommu_vfio_container_destroy(struct uiommu_vfio_container *c);
UIOMMU_EXPORT int uiommu_vfio_container_fd(const struct uiommu_vfio_container *c);
/* The container whose fd is @fd, or NULL. */
UIOMMU_EXPORT struct uiommu_vfio_container *uiommu_vfio_container_from_fd(int fd);

/**
 * uiommu_vfio_container_ioctl() - ioctl(2) on /dev/vfio/vfio.
 * Return: >= 0 as the kernel's ioctl, or -errno.
 */
UIOMMU_EXPORT long uiommu_vfio_container_ioctl(struct uiommu_vfio_container *c, unsigned long cmd,
					       void *arg);

/* VFIO_CHECK_EXTENSION: 1 or 0. */
UIOMMU_EXPORT int uiommu_vfio_check_extension(struct uiommu_vfio_container *c, unsigned long ext);
/* VFIO_SET_IOMMU: -EINVAL (no group, type already set, or a type1 id that is
 * not an IOMMU type), -ENODEV (no such IOMMU driver), an attach error. */
UIOMMU_EXPORT int uiommu_vfio_set_iommu(struct uiommu_vfio_container *c, unsigned long type);

/*
 * Native options (none is the kernel's behaviour).
 * IOMMU_DIRTY: while dirty tracking is on, an IOMMU-backed group whose devices
 * all track dirty IOPTEs reports the pages its devices really wrote (read and
 * cleared from the emulated IO page table) instead of "everything mapped is
 * dirty". Groups without that capability keep the kernel's all-dirty rule.
 */
#define UIOMMU_VFIO_OPT_IOMMU_DIRTY (1u << 0)
/* 0 or -EINVAL (unknown bits, or changed while dirty tracking is on). */
UIOMMU_EXPORT int uiommu_vfio_set_options(struct uiommu_vfio_container *c, uint32_t opts);
/* Sets the dma_entry_limit of a container with no mapping (tests). -EBUSY. */
UIOMMU_EXPORT int uiommu_vfio_set_dma_limit(struct uiommu_vfio_container *c, uint32_t limit);

/*
 * VFIO_IOMMU_MAP_DMA with the struct's fields; @flags are VFIO_DMA_MAP_FLAG_*.
 * Checks and errnos: uapi-spec §1.4 (after the argsz/flag checks).
 */
UIOMMU_EXPORT int uiommu_vfio_map_dma(struct uiommu_vfio_container *c, uint32_t flags,
				      uint64_t vaddr, uint64_t iova, uint64_t size);

/* The struct vfio_bitmap of UNMAP_DMA and GET_BITMAP; data is a user pointer. */
struct uiommu_vfio_bitmap {
	uint64_t pgsize;
	uint64_t size;
	uint64_t *data;
};

/*
 * VFIO_IOMMU_UNMAP_DMA after the front end's checks (§1.5 steps 4 on);
 * @flags are VFIO_DMA_UNMAP_FLAG_*; @bitmap only with GET_DIRTY_BITMAP.
 * *@unmapped = bytes unmapped (or invalidated), also on error.
 */
UIOMMU_EXPORT int uiommu_vfio_unmap_dma(struct uiommu_vfio_container *c, uint32_t flags,
					uint64_t iova, uint64_t size,
					const struct uiommu_vfio_bitmap *bitmap,
					uint64_t *unmapped);

/* VFIO_IOMMU_DIRTY_PAGES START and STOP (v2 only: -EACCES on v1). */
UIOMMU_EXPORT int uiommu_vfio_dirty_start(struct uiommu_vfio_container *c);
UIOMMU_EXPORT int uiommu_vfio_dirty_stop(struct uiommu_vfio_container *c);
/* GET_BITMAP after its size checks (§1.6 steps 5 on). */
UIOMMU_EXPORT int uiommu_vfio_dirty_get_bitmap(struct uiommu_vfio_container *c, uint64_t iova,
					       uint64_t size,
					       const struct uiommu_vfio_bitmap *bitmap);

struct uiommu_vfio_info {
	uint64_t pgsize_bitmap;  /* iova_pgsizes of GET_INFO */
	uint32_t dma_avail;
	bool v2;
	bool dirty_tracking;
	size_t nr_iovas;         /* nodes of the valid IOVA list (0: any IOVA) */
};
/* -EINVAL before SET_IOMMU. Up to @cap nodes of the valid list into @iovas. */
UIOMMU_EXPORT int uiommu_vfio_get_info(struct uiommu_vfio_container *c,
				       struct uiommu_vfio_info *info,
				       struct uiommu_iova_range *iovas, size_t cap);

/* ---- groups and devices ---- */

#define UIOMMU_VFIO_GROUP_EMULATED (1u << 0)

/* Group number @id (the N of /dev/vfio/N; only a name). 0, -EINVAL, -ENOMEM. */
UIOMMU_EXPORT int uiommu_vfio_group_create(uint32_t id, uint32_t flags,
					   struct uiommu_vfio_group **out);
/* Closes its device fds, leaves its container, frees. NULL-safe. */
UIOMMU_EXPORT void uiommu_vfio_group_destroy(struct uiommu_vfio_group *g);
UIOMMU_EXPORT uint32_t uiommu_vfio_group_id(const struct uiommu_vfio_group *g);

/**
 * uiommu_vfio_group_ioctl() - ioctl(2) on /dev/vfio/N: GET_STATUS,
 * SET_CONTAINER (arg points to the container's fd), UNSET_CONTAINER,
 * GET_DEVICE_FD (arg is the device name). Return: as the kernel, or -errno.
 */
UIOMMU_EXPORT long uiommu_vfio_group_ioctl(struct uiommu_vfio_group *g, unsigned long cmd,
					   void *arg);
UIOMMU_EXPORT int uiommu_vfio_group_set_container(struct uiommu_vfio_group *g,
						  struct uiommu_vfio_container *c);
UIOMMU_EXPORT int uiommu_vfio_group_unset_container(struct uiommu_vfio_group *g);

/*
 * Puts @dev behind an IOMMU-backed group that is in no container. All devices
 * of a group share one IO page-table format (-EINVAL otherwise); the group's
 * aperture is the intersection of theirs, its reserved regions the union.
 * -EINVAL (emulated group, bad name), -EBUSY (in a container, or @dev is
 * bound to an iommufd context or another group), -EEXIST (name), -ENOMEM.
 * The device stays the caller's: destroy it after the group.
 */
UIOMMU_EXPORT int uiommu_vfio_group_add_hwdev(struct uiommu_vfio_group *g, const char *name,
					      struct uiommu_hwdev *dev);

struct uiommu_vfio_emudev_ops {
	/*
	 * [iova, iova + length) is being unmapped: unpin everything pinned in it
	 * (the kernel's dma_unmap op). Called without the container lock. NULL
	 * makes pinning fail with -EINVAL, as for a driver without the op.
	 */
	void (*dma_unmap)(void *opaque, uint64_t iova, uint64_t length);
};

/* An emulated (pinning) device in @g, of any kind of group, not in a container. */
UIOMMU_EXPORT int uiommu_vfio_group_add_emudev(struct uiommu_vfio_group *g, const char *name,
					       const struct uiommu_vfio_emudev_ops *ops,
					       void *opaque, struct uiommu_vfio_emudev **out);

/* GET_DEVICE_FD by name: an fd (eventfd) or -errno; closing it: */
UIOMMU_EXPORT int uiommu_vfio_group_get_device_fd(struct uiommu_vfio_group *g, const char *name);
/* 0, or -EBADF when @fd is not one of the group's device fds. */
UIOMMU_EXPORT int uiommu_vfio_group_close_device_fd(struct uiommu_vfio_group *g, int fd);

/* ---- devices: handles, device fds, DMA and DMA logging ---- */

/* The device named @name in @g, or NULL. It lives as long as the group. */
UIOMMU_EXPORT struct uiommu_vfio_device *uiommu_vfio_group_device(struct uiommu_vfio_group *g,
								  const char *name);
/* The device behind @fd, a device fd of @g (GET_DEVICE_FD), or NULL. */
UIOMMU_EXPORT struct uiommu_vfio_device *uiommu_vfio_device_from_fd(struct uiommu_vfio_group *g,
								    int fd);
UIOMMU_EXPORT const char *uiommu_vfio_device_name(const struct uiommu_vfio_device *d);

/**
 * uiommu_vfio_device_ioctl() - ioctl(2) on device fd @fd of @g:
 * VFIO_DEVICE_GET_INFO (no regions, no IRQs) and VFIO_DEVICE_FEATURE with
 * the DMA logging features (uapi-spec §2). Return: as the kernel, -EBADF
 * when @fd is not a device fd of @g, or -errno.
 */
UIOMMU_EXPORT long uiommu_vfio_device_ioctl(struct uiommu_vfio_group *g, int fd,
					    unsigned long cmd, void *arg);

/*
 * Gives the device (or takes away) the ability to log its own DMA writes: the
 * kernel's log_ops of drivers such as mlx5. Without it the logging features
 * are -ENOTTY. -EBUSY while logging is started.
 */
UIOMMU_EXPORT int uiommu_vfio_device_set_log_capable(struct uiommu_vfio_device *d, bool capable);

/**
 * uiommu_vfio_device_dma_write() - The device writes @len bytes at @iova: an
 * IOMMU-backed device through its DMA master (uiommu_device_dma_write), an
 * emulated one through the container (uiommu_vfio_dma_rw). What landed is
 * recorded in the device's DMA log while logging is started.
 * Return: 0 or the errno of the path taken.
 */
UIOMMU_EXPORT int uiommu_vfio_device_dma_write(struct uiommu_vfio_device *d, uint64_t iova,
					       const void *buf, size_t len);

/**
 * uiommu_vfio_device_log_start() - DMA_LOGGING_START after the uAPI checks.
 * @page_size: in, the granule asked for; out, the one chosen (a power of
 * two, at least 4096, grown until the log fits in 16 MiB of bitmap)
 * @ranges: 1 to 256 disjoint inclusive ranges, any order
 * Return: 0, -ENOTTY (no logging ability), -EINVAL (no range, a reversed
 * range, an overlap), -E2BIG (more than 256), -EBUSY (already started),
 * -ENOMEM (nothing changed).
 */
UIOMMU_EXPORT int uiommu_vfio_device_log_start(struct uiommu_vfio_device *d, uint64_t *page_size,
					       const struct uiommu_iova_range *ranges, uint32_t nr);
/* DMA_LOGGING_STOP: 0 (also when not started), -ENOTTY. */
UIOMMU_EXPORT int uiommu_vfio_device_log_stop(struct uiommu_vfio_device *d);
/**
 * uiommu_vfio_device_log_report() - DMA_LOGGING_REPORT: reads and clears the
 * log of [@iova, @iova + @length) into the user bitmap @bitmap (bit k =
 * iova + k * page_size; bits are only set, never cleared).
 * Return: 0, -ENOTTY, -EINVAL (page_size not a power of two >= 4096, length
 * 0, logging not started, a part of the range not tracked), -EOVERFLOW
 * (iova + length wraps), -EFAULT (bitmap not writable: nothing read).
 */
UIOMMU_EXPORT int uiommu_vfio_device_log_report(struct uiommu_vfio_device *d, uint64_t iova,
						uint64_t length, uint64_t page_size,
						uint64_t *bitmap);

/* ---- pinning and rw for emulated devices (vfio_pin_pages, vfio_dma_rw) ---- */

/**
 * uiommu_vfio_pin_pages() - Pin @npage CPU pages from @iova (page aligned).
 * @prot: UIOMMU_PROT_READ/WRITE needed of the mappings.
 * @pages: receives each page's host address.
 * Return: @npage, or -EINVAL (no pages, npage <= 0, no dma_unmap op, not in a
 * container, unaligned iova, a page not mapped), -E2BIG (npage > 512),
 * -ENOTTY (no IOMMU type set), -EACCES (v1), -EBUSY (a vaddr is invalid),
 * -EPERM (prot not allowed), -EFAULT (user memory missing); on error nothing
 * stays pinned. Pins are counted per page; while dirty tracking is on a
 * pinned page is reported dirty by every query.
 */
UIOMMU_EXPORT int uiommu_vfio_pin_pages(struct uiommu_vfio_emudev *dev, uint64_t iova, int npage,
					uint32_t prot, void **pages);
/* Drops one pin of each page; stops at the first page in no mapping. */
UIOMMU_EXPORT void uiommu_vfio_unpin_pages(struct uiommu_vfio_emudev *dev, uint64_t iova,
					   int npage);
/**
 * uiommu_vfio_count_pinned() - Pages pinned by emulated devices in
 * [@iova, @iova + @size), each counted once however many pins it has: the
 * pages every GET_BITMAP reports dirty while they stay pinned (the kernel's
 * "pinned pages are always dirty"), which a VMM resends every round.
 * Return: 0 with *@pages (0 before SET_IOMMU), or -EINVAL (size 0, the
 * range wraps).
 */
UIOMMU_EXPORT int uiommu_vfio_count_pinned(struct uiommu_vfio_container *c, uint64_t iova,
					   uint64_t size, uint64_t *pages);
/**
 * uiommu_vfio_dma_rw() - Copy between @data and [@iova, @iova + @len) through
 * the container, as vfio_dma_rw. Writes set dirty bits (reported once).
 * Return: 0, -EINVAL (no data, len 0, not in a container, a hole), -ENOTTY,
 * -EBUSY, -EPERM (write to a read-only mapping; any access to a mapping
 * without READ), -EFAULT. Not atomic.
 */
UIOMMU_EXPORT int uiommu_vfio_dma_rw(struct uiommu_vfio_emudev *dev, uint64_t iova, void *data,
				     size_t len, bool write);

UIOMMU_END_DECLS

#endif
