/* SPDX-License-Identifier: MIT */
/*
 * The VFIO device-cdev uAPI (Linux 6.6+) that Debian 12's <linux/vfio.h>
 * (Linux 6.1) lacks: binding a /dev/vfio/devices/vfioN fd to an iommufd and
 * attaching it to an IOAS or HWPT. Declared from the kernel's documented ABI
 * (numbers, layouts); binary-compatible with <linux/vfio.h> of newer kernels.
 *
 * Self-contained on purpose: programs written against kernel headers only
 * (the shim tests) include it next to <linux/vfio.h>.
 *
 * Newer kernels grew these structs (bind: token_uuid_ptr; attach and detach:
 * pasid). The kernel reads only up to the mandatory fields unless a flag asks
 * for more, so the short layouts below work against any kernel, and the shim
 * accepts the longer ones. When the system header already declares them, we
 * use its declarations and only check the offsets the shim relies on.
 */
#ifndef UIOMMU_SHIM_VFIO_CDEV_H
#define UIOMMU_SHIM_VFIO_CDEV_H

#include <stddef.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/vfio.h>

#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;      /* must be 0 */
	__s32 iommufd;
	__u32 out_devid;  /* the iommufd device object id */
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)

struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;      /* 0, or VFIO_DEVICE_ATTACH_PASID (newer kernels) */
	__u32 pt_id;      /* in: IOAS or HWPT id; out: the HWPT attached */
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;      /* 0, or VFIO_DEVICE_DETACH_PASID (newer kernels) */
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)

_Static_assert(sizeof(struct vfio_device_bind_iommufd) == 16, "bind size");
_Static_assert(sizeof(struct vfio_device_attach_iommufd_pt) == 12, "attach size");
_Static_assert(sizeof(struct vfio_device_detach_iommufd_pt) == 8, "detach size");
#endif

#ifndef VFIO_DEVICE_ATTACH_PASID
#define VFIO_DEVICE_ATTACH_PASID (1u << 0)
#endif
#ifndef VFIO_DEVICE_DETACH_PASID
#define VFIO_DEVICE_DETACH_PASID (1u << 0)
#endif

/* The mandatory part of each struct: what the kernel copies in first. */
#define VFIO_CDEV_BIND_MINSZ 16u   /* through out_devid */
#define VFIO_CDEV_ATTACH_MINSZ 12u /* through pt_id */
#define VFIO_CDEV_DETACH_MINSZ 8u  /* through flags */

_Static_assert(offsetof(struct vfio_device_bind_iommufd, argsz) == 0, "bind argsz");
_Static_assert(offsetof(struct vfio_device_bind_iommufd, flags) == 4, "bind flags");
_Static_assert(offsetof(struct vfio_device_bind_iommufd, iommufd) == 8, "bind iommufd");
_Static_assert(offsetof(struct vfio_device_bind_iommufd, out_devid) == 12, "bind out_devid");
_Static_assert(sizeof(struct vfio_device_bind_iommufd) >= VFIO_CDEV_BIND_MINSZ, "bind minsz");
_Static_assert(offsetof(struct vfio_device_attach_iommufd_pt, flags) == 4, "attach flags");
_Static_assert(offsetof(struct vfio_device_attach_iommufd_pt, pt_id) == 8, "attach pt_id");
_Static_assert(sizeof(struct vfio_device_attach_iommufd_pt) >= VFIO_CDEV_ATTACH_MINSZ,
	       "attach minsz");
_Static_assert(offsetof(struct vfio_device_detach_iommufd_pt, flags) == 4, "detach flags");
_Static_assert(sizeof(struct vfio_device_detach_iommufd_pt) >= VFIO_CDEV_DETACH_MINSZ,
	       "detach minsz");
_Static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76, "bind number");
_Static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77, "attach number");
_Static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78, "detach number");
/* VFIO_DEVICE_GET_INFO reads and writes only through num_irqs without caps. */
_Static_assert(offsetof(struct vfio_device_info, num_irqs) == 12, "info num_irqs");

#endif
