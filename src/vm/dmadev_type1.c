// SPDX-License-Identifier: MIT
/*
 * Setting the emulated DMA device up behind a VFIO type1 container, as a VMM
 * does with /dev/vfio/vfio and /dev/vfio/N, and undoing it.
 *
 * Order, as QEMU's legacy VFIO back end does it: the device's group (number
 * DMADEV_T1_GROUP, a name only) gets the device, joins the container
 * (VFIO_GROUP_SET_CONTAINER), the container gets VFIO_TYPE1v2_IOMMU when it
 * has no type yet (VFIO_SET_IOMMU), then all guest RAM is mapped with
 * VFIO_IOMMU_MAP_DMA at IOVA = GPA, readable and writable. The container
 * stays the caller's: it also carries dirty tracking (the "vfio" source).
 *
 * Two kinds of device (see <uiommu/dmadev.h>):
 *  - DMA: a uiommu_hwdev behind an IOMMU-backed group. Its writes go through
 *    the IOMMU's page table (dmadev_write_iommu), which type1 cannot see:
 *    the all-dirty rule, or the IOMMU_DIRTY opt-in, decide what it reports.
 *  - MDEV: an emulated device in an emulated group. After the mapping it
 *    pins its working set, [pin_gpa, pin_gpa + pin_pages * 4 KiB), in
 *    chunks of at most 512 pages (the kernel's limit per call); its writes
 *    to pinned pages are plain stores through the pinned host addresses,
 *    which nothing records (that is why type1 reports pinned pages dirty in
 *    every query), and every other write goes through uiommu_vfio_dma_rw,
 *    which marks the pages dirty once.
 *
 * The unmap notifier (the kernel's dma_unmap op) drops the pins when the
 * mapping under them goes. Teardown unpins first, so its UNMAP never needs
 * the notifier; anyone else unmapping guest RAM while the device runs
 * pulls the pages from under it, as in the kernel, and the device's later
 * writes there fault (rw on a hole) and are retried.
 *
 * Example: DMA region [16 MiB, 32 MiB), pin_pages 256: pages [4096, 4351]
 * of guest RAM are pinned; a packet at 16 MiB + 2 KiB is a store into the
 * second half of pins[0]; a block write at 20 MiB goes through dma_rw.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <string.h>

#include <uiommu/iommu.h>
#include <uiommu/vfio_type1.h>

#include "vm/dmadev_internal.h"

#define DMADEV_T1_GROUP 1u
#define DMADEV_T1_NAME "dmadev"
#define PIN_CHUNK 512u /* the kernel's VFIO_PIN_PAGES_MAX_ENTRIES */
#define PROT_RW (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)

static long cio(struct uiommu_dmadev *d, unsigned long cmd, void *arg)
{
	return uiommu_vfio_container_ioctl(d->vfio, cmd, arg);
}

/* ---- the pinned working set ---- */

static void unpin_range(struct uiommu_dmadev *d, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i += PIN_CHUNK)
		uiommu_vfio_unpin_pages(d->emu, d->pin_gpa + i * DMADEV_PAGE,
					(int)u64_min(PIN_CHUNK, first + n - i));
}

/* Idempotent: the notifier and teardown may both come. */
static void unpin_working_set(struct uiommu_dmadev *d)
{
	if (__atomic_exchange_n(&d->pinned, 0, __ATOMIC_ACQ_REL))
		unpin_range(d, 0, d->pin_pages);
}

static int pin_working_set(struct uiommu_dmadev *d)
{
	uint64_t i;
	int ret = 0;

	for (i = 0; i < d->pin_pages; i += PIN_CHUNK) {
		int n = (int)u64_min(PIN_CHUNK, d->pin_pages - i);

		ret = uiommu_vfio_pin_pages(d->emu, d->pin_gpa + i * DMADEV_PAGE, n, PROT_RW,
					    &d->pins[i]);
		if (ret < 0)
			break;
		ret = 0;
	}
	if (ret) {
		unpin_range(d, 0, i);
		return ret;
	}
	__atomic_store_n(&d->pinned, 1, __ATOMIC_RELEASE);
	return 0;
}

/* The container unmaps [iova, iova + length): drop the pins if they meet it. */
static void mdev_dma_unmap(void *opaque, uint64_t iova, uint64_t length)
{
	struct uiommu_dmadev *d = opaque;
	uint64_t pin_last = d->pin_gpa + d->pin_pages * DMADEV_PAGE - 1;

	if (d->pin_pages && iova <= pin_last && iova + length - 1 >= d->pin_gpa)
		unpin_working_set(d);
}

static const struct uiommu_vfio_emudev_ops mdev_ops = { .dma_unmap = mdev_dma_unmap };

/* Does [gpa, gpa + len) lie wholly in the pinned working set? */
static bool in_pins(const struct uiommu_dmadev *d, uint64_t gpa, uint64_t len)
{
	return __atomic_load_n(&d->pinned, __ATOMIC_ACQUIRE) && gpa >= d->pin_gpa &&
	       gpa + len <= d->pin_gpa + d->pin_pages * DMADEV_PAGE;
}

/* MDEV: stores through the pins, page by page; dma_rw for the rest. */
static int write_mdev(struct uiommu_dmadev *d, uint64_t gpa, const void *buf, uint64_t len)
{
	const uint8_t *src = buf;

	if (!in_pins(d, gpa, len))
		return uiommu_vfio_dma_rw(d->emu, gpa, (void *)(uintptr_t)buf, len, true);
	while (len) {
		uint64_t page = (gpa - d->pin_gpa) / DMADEV_PAGE, off = gpa % DMADEV_PAGE;
		uint64_t n = u64_min(len, DMADEV_PAGE - off);

		memcpy((uint8_t *)d->pins[page] + off, src, n);
		gpa += n;
		src += n;
		len -= n;
	}
	return 0;
}

/* ---- group, type, mapping ---- */

static int add_device(struct uiommu_dmadev *d, const struct uiommu_hwdev_cfg *hw)
{
	struct uiommu_hwdev_cfg cfg;
	int ret;

	if (d->kind == UIOMMU_DMADEV_KIND_MDEV)
		return uiommu_vfio_group_add_emudev(d->group, DMADEV_T1_NAME, &mdev_ops, d,
						    &d->emu);
	dmadev_hwdev_cfg(hw, &cfg);
	ret = uiommu_hwdev_create(&cfg, &d->hw);
	if (ret)
		return ret;
	ret = uiommu_vfio_group_add_hwdev(d->group, DMADEV_T1_NAME, d->hw);
	if (ret) {
		uiommu_hwdev_destroy(d->hw);
		d->hw = NULL;
		return ret;
	}
	d->dma = uiommu_hwdev_dma(d->hw);
	return 0;
}

static int group_create(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg)
{
	uint32_t flags = d->kind == UIOMMU_DMADEV_KIND_MDEV ? UIOMMU_VFIO_GROUP_EMULATED : 0;
	int ret = uiommu_vfio_group_create(DMADEV_T1_GROUP, flags, &d->group);

	if (ret)
		return ret;
	ret = add_device(d, cfg->hw);
	if (ret)
		uiommu_vfio_group_destroy(d->group);
	return ret;
}

/* The group first (it closes its device fds), then the device it held. */
static void group_destroy(struct uiommu_dmadev *d)
{
	uiommu_vfio_group_destroy(d->group);
	uiommu_hwdev_destroy(d->hw);
}

/* SET_CONTAINER, then SET_IOMMU unless the container has a type already. */
static int join_container(struct uiommu_dmadev *d)
{
	struct uiommu_vfio_info info;
	int fd = uiommu_vfio_container_fd(d->vfio);
	int ret = (int)uiommu_vfio_group_ioctl(d->group, VFIO_GROUP_SET_CONTAINER, &fd);

	if (ret)
		return ret;
	if (uiommu_vfio_get_info(d->vfio, &info, NULL, 0) == -EINVAL)
		ret = (int)cio(d, VFIO_SET_IOMMU, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
	if (ret)
		uiommu_vfio_group_unset_container(d->group);
	return ret;
}

static int map_ram(struct uiommu_dmadev *d)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)d->mem,
		.iova = 0,
		.size = d->mem_bytes,
	};

	return (int)cio(d, VFIO_IOMMU_MAP_DMA, &map);
}

static void unmap_ram(struct uiommu_dmadev *d)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap), .iova = 0, .size = d->mem_bytes
	};

	(void)cio(d, VFIO_IOMMU_UNMAP_DMA, &unmap);
}

int dmadev_type1_setup(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg)
{
	int ret;

	d->vfio = cfg->vfio;
	d->pins = d->pin_pages ? uiommu__calloc(d->pin_pages, sizeof(void *)) : NULL;
	if (d->pin_pages && !d->pins)
		return -ENOMEM;
	ret = group_create(d, cfg);
	if (ret)
		goto err_free_pins;
	ret = join_container(d);
	if (ret)
		goto err_destroy_group;
	ret = map_ram(d);
	if (ret)
		goto err_leave_container;
	ret = d->pin_pages ? pin_working_set(d) : 0;
	if (ret)
		goto err_unmap;
	d->write = d->kind == UIOMMU_DMADEV_KIND_MDEV ? write_mdev : dmadev_write_iommu;
	return 0;

err_unmap:
	unmap_ram(d);
err_leave_container:
	uiommu_vfio_group_unset_container(d->group);
err_destroy_group:
	group_destroy(d);
err_free_pins:
	uiommu__free(d->pins);
	uiommu__log(UIOMMU_LOG_ERR, "dmadev: set-up behind the type1 container failed: %d", ret);
	return ret;
}

void dmadev_type1_teardown(struct uiommu_dmadev *d)
{
	unpin_working_set(d);
	unmap_ram(d);
	uiommu_vfio_group_unset_container(d->group);
	group_destroy(d);
	uiommu__free(d->pins);
}
