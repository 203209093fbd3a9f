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
 * When UIOMMU_DEVICES is unset the shim leaves /dev/vfio/devices/ to the real
 * system; when it is set (even empty) the shim owns that directory and a
 * device that is not listed does not exist (ENOENT).
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
} reg = { .once = PTHREAD_ONCE_INIT };

static void devices_destroy(size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
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
	if (!devices_create())
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

struct shim_vdev *uiommu__shim_vdev(unsigned int index)
{
	uiommu__shim_devices_init();
	return index < reg.nr ? &reg.vdev[index] : NULL;
}

/* How many device locks fork_prepare took (the registry may appear meanwhile). */
static size_t fork_nr;

void uiommu__shim_devices_fork_prepare(void)
{
	fork_nr = __atomic_load_n(&reg.nr, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < fork_nr; i++)
		pthread_mutex_lock(&reg.vdev[i].lock);
}

void uiommu__shim_devices_fork_parent(void)
{
	for (size_t i = fork_nr; i-- > 0;)
		pthread_mutex_unlock(&reg.vdev[i].lock);
}

void uiommu__shim_devices_fork_child(void)
{
	for (size_t i = fork_nr; i-- > 0;) {
		uiommu__shim_dma_forget(&reg.vdev[i].dma);
		pthread_mutex_unlock(&reg.vdev[i].lock);
	}
}
