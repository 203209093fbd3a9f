// SPDX-License-Identifier: MIT
/*
 * The legacy VFIO files under the shim: /dev/vfio/vfio (a type1 container),
 * /dev/vfio/N (the groups of UIOMMU_DEVICES, devices.c) and the device fds
 * VFIO_GROUP_GET_DEVICE_FD returns, served by the library's type1 front end
 * (uiommu_vfio_container_ioctl, uiommu_vfio_group_ioctl,
 * uiommu_vfio_device_ioctl).
 *
 * The fds the program sees are memfds, as for /dev/iommu; the library's own
 * fds (the eventfds that name a container or a device fd inside it) never
 * reach the program. So two ioctls are translated:
 *   SET_CONTAINER  the int the program passes is its container fd; when it
 *                  names a shim container, the library gets that
 *                  container's own fd instead. Any other fd goes through
 *                  unchanged, so the library's errnos stay the kernel's
 *                  (EBADF for a closed fd, EBADFD for a file that is no
 *                  container).
 *   GET_DEVICE_FD  the library's device fd is kept in a new file, and the
 *                  program gets a memfd for it (O_CLOEXEC, as the kernel).
 *
 * References, as the kernel holds them: a group in a container holds a
 * reference on the container's file (closing the container fd does not
 * take groups out); a device file holds one on its group's file (a group
 * closes only when its devices are closed). Releasing a group's file takes
 * it out of its container; releasing a container file destroys the
 * container, which then has no group. One group file at a time (a second
 * open is EBUSY, as in the kernel).
 *
 * DMA: a device with dma= in UIOMMU_DEVICES writes on its own while at
 * least one of its device fds is open (it opens only in a container with an
 * IOMMU type, so its pages are mapped), through
 * uiommu_vfio_device_dma_write(): that records the write in the device's DMA
 * log, and a kind=mdev device writes through the container's rw path. A
 * kind=mdev device with pin=N keeps the first N pages of its window pinned
 * meanwhile and writes those through its pins (pins.c); its last close
 * unpins them.
 *
 * Locking: vg->lock protects a group's open flag and container file; it is
 * taken before the library's locks and never with the fd table's. File puts
 * happen with no shim lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdlib.h>

#include "core/core_internal.h"
#include "uapi/shim/shim_internal.h"

/* ---- opening ---- */

int uiommu__shim_vfio_container_open(int flags)
{
	struct shim_file *f = uiommu__shim_file_new(SHIM_FILE_VFIO_CONTAINER);
	int ret;

	if (!f)
		return -ENOMEM;
	ret = uiommu_vfio_container_create(&f->vc);
	if (ret) {
		f->vc = NULL;
		uiommu__shim_file_put(f);
		return ret;
	}
	return uiommu__shim_file_open_fd(f, "vfio-container", flags);
}

/* A group number in decimal without leading zeros. */
static bool parse_group_name(const char *s, uint32_t *id)
{
	uint32_t n = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > 99999)
			return false;
		n = n * 10 + (uint32_t)(*s - '0');
	}
	*id = n;
	return true;
}

static bool vgroup_claim(struct shim_vgroup *vg)
{
	bool ok;

	pthread_mutex_lock(&vg->lock);
	ok = !vg->open;
	vg->open = true;
	pthread_mutex_unlock(&vg->lock);
	return ok;
}

int uiommu__shim_vfio_group_open(const char *name, int flags)
{
	struct shim_vgroup *vg;
	struct shim_file *f;
	uint32_t id;

	if (!parse_group_name(name, &id) || !(vg = uiommu__shim_vgroup(id)))
		return -ENOENT;
	if (!vgroup_claim(vg))
		return -EBUSY;
	f = uiommu__shim_file_new(SHIM_FILE_VFIO_GROUP);
	if (!f) {
		pthread_mutex_lock(&vg->lock);
		vg->open = false;
		pthread_mutex_unlock(&vg->lock);
		return -ENOMEM;
	}
	f->vg = vg;
	return uiommu__shim_file_open_fd(f, "vfio-group", flags);
}

/* ---- group ioctls ---- */

static long group_set_container(struct shim_vgroup *vg, void *arg)
{
	struct shim_file *cf;
	int32_t ufd, libfd;
	long ret;

	if (uiommu__copy_from_user(&ufd, arg, sizeof(ufd)))
		return -EFAULT;
	cf = uiommu__shim_fd_get(ufd);
	if (!cf || cf->kind != SHIM_FILE_VFIO_CONTAINER) {
		uiommu__shim_file_put(cf);
		return uiommu_vfio_group_ioctl(vg->g, VFIO_GROUP_SET_CONTAINER, arg);
	}
	libfd = uiommu_vfio_container_fd(cf->vc);
	pthread_mutex_lock(&vg->lock);
	ret = uiommu_vfio_group_ioctl(vg->g, VFIO_GROUP_SET_CONTAINER, &libfd);
	if (!ret) {
		vg->cfile = cf; /* the group's reference on its container */
		cf = NULL;
	}
	pthread_mutex_unlock(&vg->lock);
	uiommu__shim_file_put(cf);
	return ret;
}

static long group_unset_container(struct shim_vgroup *vg)
{
	struct shim_file *cf = NULL;
	long ret;

	pthread_mutex_lock(&vg->lock);
	ret = uiommu_vfio_group_ioctl(vg->g, VFIO_GROUP_UNSET_CONTAINER, NULL);
	if (!ret) {
		cf = vg->cfile;
		vg->cfile = NULL;
	}
	pthread_mutex_unlock(&vg->lock);
	uiommu__shim_file_put(cf);
	return ret;
}

static int group_dev_dma_write(void *opaque, uint64_t iova, const void *buf, size_t len)
{
	return uiommu_vfio_device_dma_write(opaque, iova, buf, len);
}

/* pin=N: into the pinned pages directly, elsewhere through the container. */
static int pinned_dev_dma_write(void *opaque, uint64_t iova, const void *buf, size_t len)
{
	struct shim_vdev *v = opaque;
	int ret = uiommu__shim_pins_write(&v->pins, iova, buf, len);

	return ret == -ENOENT ? uiommu_vfio_device_dma_write(v->t1dev, iova, buf, len) : ret;
}

/* A device fd opened: its DMA starts with the first. */
static void vdev_opened(struct shim_vdev *v)
{
	bool pins = v->cfg->pin_pages;

	pthread_mutex_lock(&v->lock);
	if (v->t1_opens++ == 0 &&
	    uiommu__shim_dma_start(&v->dma, v->cfg,
				   pins ? pinned_dev_dma_write : group_dev_dma_write,
				   pins ? (void *)v : (void *)v->t1dev))
		uiommu__shim_config_error("device %s: no DMA thread", v->cfg->name);
	pthread_mutex_unlock(&v->lock);
}

/* The last device fd closed: DMA stops, then the pins go (the device is still open). */
static void vdev_closed(struct shim_vdev *v)
{
	pthread_mutex_lock(&v->lock);
	if (--v->t1_opens == 0) {
		uiommu__shim_dma_stop(&v->dma);
		uiommu__shim_pins_release(&v->pins);
	}
	pthread_mutex_unlock(&v->lock);
}

static long group_get_device_fd(struct shim_file *gf, void *arg)
{
	struct shim_vgroup *vg = gf->vg;
	long libfd = uiommu_vfio_group_ioctl(vg->g, VFIO_GROUP_GET_DEVICE_FD, arg);
	struct shim_vdev *v;
	struct shim_file *f;

	if (libfd < 0)
		return libfd;
	v = uiommu__shim_vdev_of(uiommu_vfio_device_from_fd(vg->g, (int)libfd));
	f = v ? uiommu__shim_file_new(SHIM_FILE_VFIO_GROUP_DEV) : NULL;
	if (!f) {
		uiommu_vfio_group_close_device_fd(vg->g, (int)libfd);
		return -ENOMEM;
	}
	uiommu__shim_file_get(gf);
	f->parent = gf;
	f->vg = vg;
	f->vdev = v;
	f->libfd = (int)libfd;
	vdev_opened(v);
	return uiommu__shim_file_open_fd(f, "vfio-device", O_CLOEXEC);
}

static long group_ioctl(struct shim_file *f, unsigned int cmd, void *arg)
{
	switch (cmd) {
	case VFIO_GROUP_SET_CONTAINER:
		return group_set_container(f->vg, arg);
	case VFIO_GROUP_UNSET_CONTAINER:
		return group_unset_container(f->vg);
	case VFIO_GROUP_GET_DEVICE_FD:
		return group_get_device_fd(f, arg);
	default:
		return uiommu_vfio_group_ioctl(f->vg->g, cmd, arg);
	}
}

long uiommu__shim_vfio_ioctl(struct shim_file *f, unsigned long request, void *arg)
{
	/* The kernel's ioctl command is an unsigned int; higher bits are ignored. */
	unsigned int cmd = (unsigned int)request;

	switch (f->kind) {
	case SHIM_FILE_VFIO_CONTAINER:
		return uiommu_vfio_container_ioctl(f->vc, cmd, arg);
	case SHIM_FILE_VFIO_GROUP:
		return group_ioctl(f, cmd, arg);
	case SHIM_FILE_VFIO_GROUP_DEV:
		return uiommu_vfio_device_ioctl(f->vg->g, f->libfd, cmd, arg);
	default:
		return -ENOTTY;
	}
}

/* ---- release ---- */

/* The group's file closed: it leaves its container, as vfio_group_fops_release. */
static void group_release(struct shim_vgroup *vg)
{
	struct shim_file *cf;

	pthread_mutex_lock(&vg->lock);
	cf = vg->cfile;
	vg->cfile = NULL;
	/* Its device files hold references on it: none is open. */
	if (cf)
		uiommu_vfio_group_unset_container(vg->g);
	vg->open = false;
	pthread_mutex_unlock(&vg->lock);
	uiommu__shim_file_put(cf);
}

void uiommu__shim_vfio_release(struct shim_file *f)
{
	switch (f->kind) {
	case SHIM_FILE_VFIO_CONTAINER:
		uiommu_vfio_container_destroy(f->vc);
		break;
	case SHIM_FILE_VFIO_GROUP:
		group_release(f->vg);
		break;
	case SHIM_FILE_VFIO_GROUP_DEV:
		vdev_closed(f->vdev);
		uiommu_vfio_group_close_device_fd(f->vg->g, f->libfd);
		uiommu__shim_file_put(f->parent);
		break;
	default:
		break;
	}
}
