/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the VFIO type1 conformance tests (uapi-spec §1).
 *
 * Every rule is driven through uiommu_vfio_container_ioctl() and
 * uiommu_vfio_group_ioctl() with the real <linux/vfio.h> structs; devices and
 * groups are the only things set up natively (the kernel has them before the
 * program starts). Expected values come from the spec, never from the
 * implementation.
 *
 * The standard IOMMU-backed group: one x86-format device with 4 KiB pages
 * only, aperture [0, 2^39 - 1], reserved region [RESV_START, RESV_LAST].
 */
#ifndef UIOMMU_TEST_VT1_H
#define UIOMMU_TEST_VT1_H

#include <errno.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/vfio_type1.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define PG 4096ull
#define APERTURE_LAST ((1ull << 39) - 1)
#define RESV_START 0xfee00000ull
#define RESV_LAST 0xfeefffffull
#define RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)
#define BAD_PTR ((void *)(uintptr_t)8)

struct vt1 {
	struct uiommu_vfio_container *c;
	struct uiommu_vfio_group *g;    /* IOMMU-backed (or emulated, see setup) */
	struct uiommu_hwdev *hw;
	struct uiommu_vfio_group *eg;   /* emulated group (setup_emu) */
	struct uiommu_vfio_emudev *emu;
	char *mem;                      /* MEM_BYTES of anonymous memory */
	/* Pins the test made through t->emu, dropped by the unmap callback. */
	uint64_t pin_iova[64];
	int pin_n[64];
	int nr_pins;
	int notified;                   /* dma_unmap calls */
	bool refuse_unpin;              /* the callback ignores the request */
};

#define MEM_BYTES (64 * MiB)

static inline long cio(struct vt1 *t, unsigned long cmd, void *arg)
{
	return uiommu_vfio_container_ioctl(t->c, cmd, arg);
}

static inline long gio(struct uiommu_vfio_group *g, unsigned long cmd, void *arg)
{
	return uiommu_vfio_group_ioctl(g, cmd, arg);
}

/* GET_DEVICE_FD takes a string. */
static inline long gio_name(struct uiommu_vfio_group *g, const char *name)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s", name);
	return uiommu_vfio_group_ioctl(g, VFIO_GROUP_GET_DEVICE_FD, buf);
}

static inline struct uiommu_hwdev *vt1_hwdev(uint64_t ap_start, uint64_t ap_last,
					     uint64_t resv_start, uint64_t resv_last, bool dirty)
{
	struct uiommu_iova_range resv = { resv_start, resv_last };
	struct uiommu_hwdev_cfg cfg = {
		.name = "dev",
		.format = UIOMMU_PT_X86,
		.pgsize_bitmap = 4096,
		.aperture_start = ap_start,
		.aperture_last = ap_last,
		.reserved = &resv,
		.nr_reserved = resv_start <= resv_last ? 1 : 0,
		.dirty_tracking = dirty,
	};
	struct uiommu_hwdev *hw = NULL;

	assert_int_equal(uiommu_hwdev_create(&cfg, &hw), 0);
	return hw;
}

static inline void vt1_join(struct vt1 *t, struct uiommu_vfio_group *g)
{
	int fd = uiommu_vfio_container_fd(t->c);

	assert_int_equal(gio(g, VFIO_GROUP_SET_CONTAINER, &fd), 0);
}

/* Container + the standard IOMMU-backed group, not yet SET_IOMMU. */
static inline struct vt1 *vt1_new(void)
{
	struct vt1 *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	assert_int_equal(uiommu_vfio_container_create(&t->c), 0);
	assert_int_equal(uiommu_vfio_group_create(7, 0, &t->g), 0);
	t->hw = vt1_hwdev(0, APERTURE_LAST, RESV_START, RESV_LAST, true);
	assert_int_equal(uiommu_vfio_group_add_hwdev(t->g, "0000:00:01.0", t->hw), 0);
	t->mem = mmap(NULL, MEM_BYTES, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(t->mem != MAP_FAILED);
	return t;
}

/* The emulated device's dma_unmap: drops the test's pins in the range. */
static inline void vt1_unmap_cb(void *opaque, uint64_t iova, uint64_t length)
{
	struct vt1 *t = opaque;

	t->notified++;
	if (t->refuse_unpin)
		return;
	for (int i = 0; i < t->nr_pins; i++) {
		uint64_t last = t->pin_iova[i] + (uint64_t)t->pin_n[i] * PG - 1;

		if (last < iova || t->pin_iova[i] > iova + length - 1)
			continue;
		uiommu_vfio_unpin_pages(t->emu, t->pin_iova[i], t->pin_n[i]);
		t->pin_iova[i] = t->pin_iova[--t->nr_pins];
		t->pin_n[i] = t->pin_n[t->nr_pins];
		i--;
	}
}

/* Pins through t->emu and records the pin for the callback. */
static inline int vt1_pin(struct vt1 *t, uint64_t iova, int npage, uint32_t prot)
{
	void *pages[512];
	int ret = uiommu_vfio_pin_pages(t->emu, iova, npage, prot, pages);

	if (ret > 0) {
		t->pin_iova[t->nr_pins] = iova;
		t->pin_n[t->nr_pins++] = npage;
	}
	return ret;
}

/* An emulated group with one pinning device, joined to the container. */
static inline void vt1_add_emu(struct vt1 *t)
{
	static const struct uiommu_vfio_emudev_ops ops = { .dma_unmap = vt1_unmap_cb };

	assert_int_equal(uiommu_vfio_group_create(9, UIOMMU_VFIO_GROUP_EMULATED, &t->eg), 0);
	assert_int_equal(uiommu_vfio_group_add_emudev(t->eg, "mdev0", &ops, t, &t->emu), 0);
	vt1_join(t, t->eg);
}

/* Standard group joined, type set (TYPE1v2 unless v1). */
static inline struct vt1 *vt1_ready(unsigned long type)
{
	struct vt1 *t = vt1_new();

	vt1_join(t, t->g);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)type), 0);
	return t;
}

/* Only an emulated group (empty valid list, nothing pinned at MAP). */
static inline struct vt1 *vt1_ready_emu(void)
{
	struct vt1 *t = vt1_new();

	vt1_add_emu(t);
	assert_int_equal(cio(t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	return t;
}

static inline void vt1_free(struct vt1 *t)
{
	uiommu_vfio_container_destroy(t->c);
	uiommu_vfio_group_destroy(t->g);
	uiommu_vfio_group_destroy(t->eg);
	uiommu_hwdev_destroy(t->hw);
	munmap(t->mem, MEM_BYTES);
	free(t);
}

static inline long vt1_map(struct vt1 *t, uint32_t flags, uint64_t vaddr, uint64_t iova,
			   uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = flags, .vaddr = vaddr, .iova = iova, .size = size,
	};

	return cio(t, VFIO_IOMMU_MAP_DMA, &m);
}

/* Maps @size bytes of t->mem at offset @off to @iova, read-write. */
static inline long vt1_map_mem(struct vt1 *t, uint64_t off, uint64_t iova, uint64_t size)
{
	return vt1_map(t, RW, (uintptr_t)t->mem + off, iova, size);
}

static inline long vt1_unmap(struct vt1 *t, uint32_t flags, uint64_t iova, uint64_t size,
			     uint64_t *out_size)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u), .flags = flags, .iova = iova, .size = size,
	};
	long ret = cio(t, VFIO_IOMMU_UNMAP_DMA, &u);

	if (out_size)
		*out_size = u.size;
	return ret;
}

static inline long vt1_dirty(struct vt1 *t, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d), .flags = flag };

	return cio(t, VFIO_IOMMU_DIRTY_PAGES, &d);
}

/* The header of struct vfio_iommu_type1_dirty_bitmap without its data[]. */
struct vt1_dirty_hdr {
	__u32 argsz;
	__u32 flags;
};

struct vt1_get {
	struct vt1_dirty_hdr hdr;
	struct vfio_iommu_type1_dirty_bitmap_get get;
};

static inline long vt1_get_bitmap(struct vt1 *t, uint64_t iova, uint64_t size, uint64_t pgsize,
				  uint64_t *bitmap, uint64_t bytes)
{
	struct vt1_get g = {
		.hdr = { .argsz = sizeof(g), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
		.get = { .iova = iova, .size = size,
			 .bitmap = { .pgsize = pgsize, .size = bytes, .data = (__u64 *)bitmap } },
	};

	return cio(t, VFIO_IOMMU_DIRTY_PAGES, &g);
}

static inline uint64_t bits_count(const uint64_t *b, size_t words)
{
	uint64_t n = 0;

	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(b[i]);
	return n;
}

#endif
