// SPDX-License-Identifier: MIT
/*
 * The emulated devices of UIOMMU_DEVICES, served as /dev/vfio/devices/vfioN.
 *
 * The variable is read once per process, on the first open of /dev/iommu or
 * of a /dev/vfio/devices/ path: device N of the list is vfioN. Each device is
 * a uiommu_hwdev (aperture, reserved regions, page sizes, page-table format,
 * dirty capability) that lives as long as the process; contexts only bind
 * it. A value that does not parse, or that the library rejects, is reported
 * once on stderr and the shim then serves no device at all: a half-applied
 * configuration would be harder to notice than none.
 *
 * Devices with group=N are put behind VFIO group N instead (a uiommu_vfio
 * group, emulated when all its devices are kind=mdev), served as /dev/vfio/N
 * by vfio_group.c; they have no cdev. Groups live as long as the process.
 * A kind=mdev device's unmap notifier drops the pins of pin=N (pins.c).
 *
 * When UIOMMU_DEVICES is unset the shim leaves /dev/vfio/ to the real
 * system; when it is set (even empty) the shim owns /dev/vfio/vfio,
 * /dev/vfio/N and /dev/vfio/devices/, and a device or group that is not
 * listed does not exist (ENOENT).
 *
 * Locking: each device has a lock that serializes its binding state and its
 * DMA thread (vfio_cdev.c); the registry itself is written once, under
 * pthread_once, and read-only afterwards.
 *
 * fork(): the child gets a copy of every device and binding; device locks
 * are taken around fork() so the copy is consistent, and DMA threads, which
 * the child does not have, are forgotten there.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uapi/shim/shim_internal.h"

static struct {
	pthread_once_t once;
	bool claimed;                 /* UIOMMU_DEVICES is set */
	size_t nr;                    /* devices served */
	struct uiommu_devcfg cfg;
	struct shim_vdev vdev[UIOMMU_DEVCFG_MAX_DEVICES];
	size_t nr_groups;
	struct shim_vgroup vgroup[UIOMMU_DEVCFG_MAX_DEVICES];
} reg = { .once = PTHREAD_ONCE_INIT };

/* The unmap notifier of kind=mdev devices: only pin=N devices have pins to drop. */
static void mdev_dma_unmap(void *opaque, uint64_t iova, uint64_t length)
{
	struct shim_vdev *v = opaque;

	uiommu__shim_pins_unmap(&v->pins, iova, length);
}

static const struct uiommu_vfio_emudev_ops mdev_ops = { .dma_unmap = mdev_dma_unmap };

static struct shim_vgroup *vgroup_find(uint32_t id)
{
	for (size_t i = 0; i < reg.nr_groups; i++)
		if (reg.vgroup[i].id == id)
			return &reg.vgroup[i];
	return NULL;
}

/* Group @id, emulated when every device of it is kind=mdev. */
static int vgroup_new(uint32_t id, struct shim_vgroup **out)
{
	struct shim_vgroup *vg = &reg.vgroup[reg.nr_groups];
	uint32_t flags = UIOMMU_VFIO_GROUP_EMULATED;
	int ret;

	for (size_t i = 0; i < reg.cfg.nr; i++) {
		const struct uiommu_devcfg_dev *d = &reg.cfg.dev[i];

		if (d->has_group && d->group == id && !d->mdev)
			flags = 0;
	}
	ret = uiommu_vfio_group_create(id, flags, &vg->g);
	if (ret)
		return ret;
	vg->id = id;
	pthread_mutex_init(&vg->lock, NULL);
	reg.nr_groups++;
	*out = vg;
	return 0;
}

static int group_add_device(struct shim_vdev *v)
{
	struct shim_vgroup *vg = vgroup_find(v->cfg->group);
	int ret = vg ? 0 : vgroup_new(v->cfg->group, &vg);

	if (ret)
		return ret;
	if (v->cfg->mdev)
		ret = uiommu_vfio_group_add_emudev(vg->g, v->cfg->name, &mdev_ops, v, &v->emu);
	else
		ret = uiommu_vfio_group_add_hwdev(vg->g, v->cfg->name, v->hw);
	if (!ret && v->cfg->pin_pages)
		ret = uiommu__shim_pins_init(&v->pins, v->emu, v->cfg);
	if (ret)
		return ret;
	v->vg = vg;
	v->t1dev = uiommu_vfio_group_device(vg->g, v->cfg->name);
	return uiommu_vfio_device_set_log_capable(v->t1dev, v->cfg->dmalog);
}

static void groups_destroy(void)
{
	for (size_t i = 0; i < reg.nr_groups; i++) {
		uiommu_vfio_group_destroy(reg.vgroup[i].g);
		pthread_mutex_destroy(&reg.vgroup[i].lock);
	}
	reg.nr_groups = 0;
}

static int groups_create(void)
{
	for (size_t i = 0; i < reg.cfg.nr; i++) {
		int ret = reg.cfg.dev[i].has_group ? group_add_device(&reg.vdev[i]) : 0;

		if (ret) {
			uiommu__shim_config_error("UIOMMU_DEVICES: device %s: group %u: %s; "
						  "serving no devices",
						  reg.cfg.dev[i].name,
						  (unsigned int)reg.cfg.dev[i].group, strerror(-ret));
			groups_destroy();
			return ret;
		}
	}
	return 0;
}

static void devices_destroy(size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		uiommu__shim_pins_fini(&reg.vdev[i].pins);
		uiommu_hwdev_destroy(reg.vdev[i].hw);
		pthread_mutex_destroy(&reg.vdev[i].lock);
	}
}

static int devices_create(void)
{
	struct uiommu_hwdev_cfg hc;
	int ret;

	for (size_t i = 0; i < reg.cfg.nr; i++) {
		struct shim_vdev *v = &reg.vdev[i];

		uiommu__devcfg_hwdev_cfg(&reg.cfg.dev[i], &hc);
		ret = uiommu_hwdev_create(&hc, &v->hw);
		if (ret) {
			uiommu__shim_config_error("UIOMMU_DEVICES: device %s: rejected: %s; "
						  "serving no devices",
						  reg.cfg.dev[i].name, strerror(-ret));
			devices_destroy(i);
			return ret;
		}
		v->index = (unsigned int)i;
		v->cfg = &reg.cfg.dev[i];
		pthread_mutex_init(&v->lock, NULL);
	}
	return 0;
}

static void devices_init_once(void)
{
	const char *spec = getenv("UIOMMU_DEVICES");
	struct uiommu_devcfg_err err;

	if (!spec)
		return;
	reg.claimed = true;
	if (uiommu__devcfg_parse(spec, &reg.cfg, &err)) {
		uiommu__shim_config_error("UIOMMU_DEVICES: at offset %zu (\"%.20s\"): %s; "
					  "serving no devices",
					  err.offset, spec + err.offset, err.msg);
		return;
	}
	if (devices_create())
		return;
	if (groups_create()) {
		devices_destroy(reg.cfg.nr);
		return;
	}
	__atomic_store_n(&reg.nr, reg.cfg.nr, __ATOMIC_RELEASE);
}

void uiommu__shim_devices_init(void)
{
	pthread_once(&reg.once, devices_init_once);
}

bool uiommu__shim_devices_claimed(void)
{
	uiommu__shim_devices_init();
	return reg.claimed;
}

/* Devices in a VFIO group have no cdev. */
struct shim_vdev *uiommu__shim_vdev(unsigned int index)
{
	uiommu__shim_devices_init();
	return index < reg.nr && !reg.vdev[index].vg ? &reg.vdev[index] : NULL;
}

struct shim_vgroup *uiommu__shim_vgroup(uint32_t id)
{
	uiommu__shim_devices_init();
	return __atomic_load_n(&reg.nr, __ATOMIC_ACQUIRE) ? vgroup_find(id) : NULL;
}

struct shim_vdev *uiommu__shim_vdev_of(const struct uiommu_vfio_device *d)
{
	for (size_t i = 0; i < reg.nr; i++)
		if (reg.vdev[i].t1dev == d)
			return &reg.vdev[i];
	return NULL;
}

/* How many device locks fork_prepare took (the registry may appear meanwhile). */
static size_t fork_nr;

void uiommu__shim_devices_fork_prepare(void)
{
	fork_nr = __atomic_load_n(&reg.nr, __ATOMIC_ACQUIRE);
	/* A DMA thread may hold its pins lock: the child must not inherit it held. */
	for (size_t i = 0; i < fork_nr; i++) {
		pthread_mutex_lock(&reg.vdev[i].lock);
		uiommu__shim_pins_lock(&reg.vdev[i].pins);
	}
}

void uiommu__shim_devices_fork_parent(void)
{
	for (size_t i = fork_nr; i-- > 0;) {
		uiommu__shim_pins_unlock(&reg.vdev[i].pins);
		pthread_mutex_unlock(&reg.vdev[i].lock);
	}
}

void uiommu__shim_devices_fork_child(void)
{
	for (size_t i = fork_nr; i-- > 0;) {
		uiommu__shim_pins_unlock(&reg.vdev[i].pins);
		uiommu__shim_dma_forget(&reg.vdev[i].dma);
		pthread_mutex_unlock(&reg.vdev[i].lock);
	}
}
