// SPDX-License-Identifier: MIT
/*
 * A VMM-style program for the legacy VFIO container, written only against
 * <linux/vfio.h> and libc: nothing here knows uiommu exists. Under
 * LD_PRELOAD=libuiommu-preload.so with the UIOMMU_DEVICES of meson.build it
 * talks to the shim; on a kernel with the same groups it would talk to VFIO.
 *
 *   test_vfio_shim <case>     cases: see the table at the bottom
 *
 * Exits 0 on success, 1 on a failed check, 77 (skip) when /dev/vfio/vfio
 * cannot be opened (the shim is not loaded).
 *
 * Devices (meson.build): group 12 holds vf0, IOMMU-backed, aperture
 * [0, 0xffffffffff] minus the reserved [0xfee00000, 0xfeefffff], 4 KiB
 * pages, DMA logging, writing [0x100000, 0x2fffff] on its own while its
 * device fd is open; group 13 holds gpu0, mdev-like, writing [0x400000,
 * 0x4fffff] through the container; group 14 holds nolog0 (no DMA logging);
 * group 15 holds vgpu0, mdev-like, writing [0x400000, 0x41ffff] and keeping
 * its first 16 pages pinned while its device fd is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "shim_check.h"

#define NPAGES (MAP_LEN / PAGE)
#define VF0_FIRST 0x100000ull
#define VF0_LAST 0x2fffffull
#define GPU_FIRST 0x400000ull
#define GPU_LAST 0x4fffffull
#define VGPU_FIRST 0x400000ull
#define VGPU_LAST 0x41ffffull
#define VGPU_PINNED 16ull

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static bool test_bit(const uint64_t *bm, uint64_t k)
{
	return bm[k / 64] >> (k % 64) & 1;
}

static bool page_written(const char *buf, uint64_t k)
{
	for (uint64_t i = 0; i < PAGE; i++)
		if (buf[k * PAGE + i])
			return true;
	return false;
}

/* ---- the container and group flow ---- */

static int open_container(void)
{
	int fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "no /dev/vfio/vfio (%s): is the shim preloaded?\n", strerror(errno));
		exit(77);
	}
	CHECK(ioctl(fd, VFIO_GET_API_VERSION) == VFIO_API_VERSION);
	CHECK(ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1);
	return fd;
}

static int open_group(unsigned int n, int container)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/dev/vfio/%u", n);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(ioctl(fd, VFIO_GROUP_GET_STATUS, &st) == 0);
	CHECK(st.flags == VFIO_GROUP_FLAGS_VIABLE);
	CHECK(ioctl(fd, VFIO_GROUP_SET_CONTAINER, &container) == 0);
	CHECK(ioctl(fd, VFIO_GROUP_GET_STATUS, &st) == 0);
	CHECK(st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET);
	return fd;
}

static void map_dma(int c, void *va, uint64_t iova, uint64_t len)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)va, .iova = iova, .size = len,
	};

	CHECK(ioctl(c, VFIO_IOMMU_MAP_DMA, &m) == 0);
}

static void dirty_ctl(int c, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof(d), .flags = flag };

	CHECK(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, &d) == 0);
}

static void get_bitmap(int c, uint64_t iova, uint64_t len, uint64_t *bm)
{
	uint64_t buf[8] = { 0 };
	struct vfio_iommu_type1_dirty_bitmap *hdr = (void *)buf;
	struct vfio_iommu_type1_dirty_bitmap_get *get = (void *)hdr->data;

	hdr->argsz = sizeof(*hdr) + sizeof(*get);
	hdr->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	get->iova = iova;
	get->size = len;
	get->bitmap.pgsize = PAGE;
	get->bitmap.size = (len / PAGE + 63) / 64 * 8;
	get->bitmap.data = (__u64 *)bm;
	CHECK(ioctl(c, VFIO_IOMMU_DIRTY_PAGES, buf) == 0);
}

/* The capability chain of GET_INFO: argsz grows, then each cap is found by walking. */
static void check_info(int c)
{
	struct vfio_iommu_type1_info small = { .argsz = sizeof(small) };
	uint64_t buf[64] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_info_cap_header *h;
	unsigned int seen = 0;

	CHECK(ioctl(c, VFIO_IOMMU_GET_INFO, &small) == 0);
	CHECK(small.flags & VFIO_IOMMU_INFO_CAPS);
	CHECK(small.cap_offset == 0 && small.argsz > sizeof(small) && small.argsz <= sizeof(buf));
	info->argsz = small.argsz;
	CHECK(ioctl(c, VFIO_IOMMU_GET_INFO, info) == 0);
	CHECK(info->flags & VFIO_IOMMU_INFO_PGSIZES);
	CHECK(info->iova_pgsizes == PAGE);
	for (uint32_t off = info->cap_offset; off; off = h->next) {
		CHECK(off % 8 == 0 && off < info->argsz);
		h = (void *)((char *)buf + off);
		seen |= 1u << h->id;
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;

			/* The aperture minus the reserved region: two ranges. */
			CHECK(r->nr_iovas == 2);
			CHECK(r->iova_ranges[0].start == 0 && r->iova_ranges[0].end == 0xfedfffff);
			CHECK(r->iova_ranges[1].start == 0xfef00000 &&
			      r->iova_ranges[1].end == 0xffffffffff);
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
			struct vfio_iommu_type1_info_cap_migration *m = (void *)h;

			CHECK(m->pgsize_bitmap & PAGE);
		}
	}
	CHECK(seen == ((1u << VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) |
		       (1u << VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) |
		       (1u << VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)));
}

static void *map_buffer(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* ---- device DMA logging ---- */

static long feature(int dev, uint32_t flags, const void *payload, size_t len)
{
	uint64_t buf[8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;

	f->argsz = (uint32_t)(sizeof(*f) + len);
	f->flags = flags;
	if (len)
		memcpy(f->data, payload, len);
	return ioctl(dev, VFIO_DEVICE_FEATURE, buf);
}

static void log_start(int dev, uint64_t iova, uint64_t len)
{
	struct vfio_device_feature_dma_logging_range r = { .iova = iova, .length = len };
	struct vfio_device_feature_dma_logging_control ctl = {
		.page_size = PAGE, .num_ranges = 1, .ranges = (uintptr_t)&r,
	};
	uint32_t set = VFIO_DEVICE_FEATURE_SET;

	CHECK(feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | set | VFIO_DEVICE_FEATURE_PROBE,
		      NULL, 0) == 0);
	CHECK(feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | set, &ctl, sizeof(ctl)) == 0);
	CHECK_ERR(feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | set, &ctl, sizeof(ctl)),
		  EBUSY);
	ctl.num_ranges = 0;
	CHECK_ERR(feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | set, &ctl, sizeof(ctl)),
		  EINVAL);
}

static long log_report(int dev, uint64_t iova, uint64_t len, uint64_t pgsize, uint64_t *bm)
{
	struct vfio_device_feature_dma_logging_report r = {
		.iova = iova, .length = len, .page_size = pgsize, .bitmap = (uintptr_t)bm,
	};

	return feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | VFIO_DEVICE_FEATURE_GET, &r,
		       sizeof(r));
}

/* Every page written since the memset is in the log; the log stays in the window. */
static void check_log_matches(const char *buf, const uint64_t *log)
{
	uint64_t logged = 0;

	for (uint64_t k = 0; k < NPAGES; k++) {
		uint64_t iova = MAP_IOVA + k * PAGE;

		if (test_bit(log, k)) {
			CHECK(iova >= VF0_FIRST && iova <= VF0_LAST);
			logged++;
		}
		if (page_written(buf, k))
			CHECK(test_bit(log, k));
	}
	CHECK(logged > 0);
}

/* ---- cases ---- */

static void case_type1_vmm(void)
{
	int c = open_container(), g = open_group(12, c), dev;
	uint64_t *bm = calloc(NPAGES / 64, 8), *log = calloc(NPAGES / 64, 8);
	char *buf = map_buffer(MAP_LEN);
	struct vfio_iommu_type1_dma_unmap *u = calloc(1, sizeof(*u) + sizeof(struct vfio_bitmap));
	struct vfio_bitmap *ub = (void *)u->data;

	CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0);
	check_info(c);
	map_dma(c, buf, MAP_IOVA, MAP_LEN);
	dirty_ctl(c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "vf0");
	CHECK(dev >= 0);
	log_start(dev, MAP_IOVA, MAP_LEN);
	memset(buf, 0, MAP_LEN); /* from here on, only the device writes */
	sleep_ms(300);
	/* The kernel's rule: an IOMMU-backed group not in pinned scope dirties everything. */
	get_bitmap(c, MAP_IOVA, MAP_LEN, bm);
	for (uint64_t k = 0; k < NPAGES; k++)
		CHECK(test_bit(bm, k));
	/* UNMAP with the bitmap: the same, and the device's DMA faults from now on. */
	memset(bm, 0, NPAGES / 8);
	u->argsz = sizeof(*u) + sizeof(*ub);
	u->flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	u->iova = MAP_IOVA;
	u->size = MAP_LEN;
	*ub = (struct vfio_bitmap){ .pgsize = PAGE, .size = NPAGES / 8, .data = (__u64 *)bm };
	CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, u) == 0);
	CHECK(u->size == MAP_LEN);
	CHECK(bm[0] == UINT64_MAX && bm[NPAGES / 64 - 1] == UINT64_MAX);
	sleep_ms(50); /* a write that landed just before the unmap is logged by now */
	CHECK(log_report(dev, MAP_IOVA, MAP_LEN, PAGE, log) == 0);
	check_log_matches(buf, log);
	/* Read and clear: nothing was written since. */
	memset(log, 0, NPAGES / 8);
	CHECK(log_report(dev, MAP_IOVA, MAP_LEN, PAGE, log) == 0);
	for (uint64_t k = 0; k < NPAGES / 64; k++)
		CHECK(log[k] == 0);
	CHECK_ERR(log_report(dev, MAP_IOVA, MAP_LEN, 2048, log), EINVAL);
	CHECK_ERR(log_report(dev, MAP_IOVA, MAP_LEN + PAGE, PAGE, log), EINVAL);
	CHECK(feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | VFIO_DEVICE_FEATURE_SET, NULL,
		      0) == 0);
	CHECK_ERR(ioctl(g, VFIO_GROUP_UNSET_CONTAINER), EBUSY);
	CHECK(close(dev) == 0);
	CHECK(ioctl(g, VFIO_GROUP_UNSET_CONTAINER) == 0);
	CHECK(close(g) == 0 && close(c) == 0);
	free(u);
	free(log);
	free(bm);
	munmap(buf, MAP_LEN);
}

/* An mdev-like device writes through the container: real dirty pages, reported once. */
static void case_type1_mdev(void)
{
	int c = open_container(), g = open_group(13, c), dev;
	uint64_t *bm = calloc(NPAGES / 64, 8), *bm2 = calloc(NPAGES / 64, 8);
	char *buf = map_buffer(MAP_LEN);
	uint64_t dirty = 0;

	CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0);
	map_dma(c, buf, MAP_IOVA, MAP_LEN);
	dirty_ctl(c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "gpu0");
	CHECK(dev >= 0);
	sleep_ms(300);
	CHECK(close(dev) == 0); /* the device stops writing */
	get_bitmap(c, MAP_IOVA, MAP_LEN, bm);
	get_bitmap(c, MAP_IOVA, MAP_LEN, bm2);
	for (uint64_t k = 0; k < NPAGES; k++) {
		uint64_t iova = MAP_IOVA + k * PAGE;

		CHECK(test_bit(bm, k) == page_written(buf, k));
		CHECK(!test_bit(bm, k) || (iova >= GPU_FIRST && iova <= GPU_LAST));
		CHECK(!test_bit(bm2, k));
		dirty += test_bit(bm, k);
	}
	CHECK(dirty > 0);
	/* Closing the group takes it out of the container. */
	CHECK(close(g) == 0);
	CHECK_ERR(ioctl(c, VFIO_IOMMU_GET_INFO, bm), EINVAL);
	CHECK(close(c) == 0);
	free(bm2);
	free(bm);
	munmap(buf, MAP_LEN);
}

/* ---- a pinning mdev device ---- */

static bool vgpu_pinned(uint64_t k)
{
	uint64_t iova = MAP_IOVA + k * PAGE;

	return iova >= VGPU_FIRST && iova < VGPU_FIRST + VGPU_PINNED * PAGE;
}

/*
 * One GET_BITMAP of the whole mapping, ORed into @seen: only the device's
 * window is dirty, and its pinned pages are, in every report, when @pinned.
 */
static void vgpu_report(int c, uint64_t *bm, uint64_t *seen, bool pinned)
{
	memset(bm, 0, NPAGES / 8);
	get_bitmap(c, MAP_IOVA, MAP_LEN, bm);
	for (uint64_t k = 0; k < NPAGES; k++) {
		uint64_t iova = MAP_IOVA + k * PAGE;

		CHECK(!test_bit(bm, k) || (iova >= VGPU_FIRST && iova <= VGPU_LAST));
		if (pinned && vgpu_pinned(k))
			CHECK(test_bit(bm, k));
	}
	for (uint64_t w = 0; w < NPAGES / 64; w++)
		seen[w] |= bm[w];
}

/* UNMAP with the bitmap while the device holds pins: its notifier unpins. */
static void vgpu_unmap_pinned(int c, uint64_t *bm)
{
	struct vfio_iommu_type1_dma_unmap *u = calloc(1, sizeof(*u) + sizeof(struct vfio_bitmap));
	struct vfio_bitmap *ub = (void *)u->data;

	CHECK(u);
	memset(bm, 0, NPAGES / 8);
	u->argsz = sizeof(*u) + sizeof(*ub);
	u->flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	u->iova = MAP_IOVA;
	u->size = MAP_LEN;
	*ub = (struct vfio_bitmap){ .pgsize = PAGE, .size = NPAGES / 8, .data = (__u64 *)bm };
	CHECK(ioctl(c, VFIO_IOMMU_UNMAP_DMA, u) == 0);
	CHECK(u->size == MAP_LEN);
	for (uint64_t k = 0; k < NPAGES; k++)
		if (vgpu_pinned(k))
			CHECK(test_bit(bm, k));
	free(u);
}

/*
 * A device that pins what it uses (pin=16): the pinned pages are dirty in
 * every report while pinned and once more after, UNMAP goes through its
 * unmap notifier, and everything it wrote is reported.
 */
static void case_type1_mdev_pin(void)
{
	int c = open_container(), g = open_group(15, c), dev;
	uint64_t *bm = calloc(NPAGES / 64, 8), *seen = calloc(NPAGES / 64, 8);
	char *buf = map_buffer(MAP_LEN);

	CHECK(bm && seen);
	CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0);
	/* Opened before anything is mapped: it pins once the memory is there. */
	dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "vgpu0");
	CHECK(dev >= 0);
	map_dma(c, buf, MAP_IOVA, MAP_LEN);
	dirty_ctl(c, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	sleep_ms(200);
	for (int i = 0; i < 3; i++) /* back to back: rw writes cannot fill every pinned page */
		vgpu_report(c, bm, seen, true);
	vgpu_unmap_pinned(c, bm);
	/* Mapped again: pins come back; from here on, only the device writes. */
	memset(buf, 0, MAP_LEN);
	memset(seen, 0, NPAGES / 8);
	map_dma(c, buf, MAP_IOVA, MAP_LEN);
	sleep_ms(200);
	for (int i = 0; i < 2; i++)
		vgpu_report(c, bm, seen, true);
	CHECK(close(dev) == 0); /* DMA stops, then the pins go */
	vgpu_report(c, bm, seen, true); /* unpinned pages: reported once more */
	vgpu_report(c, bm, seen, false);
	for (uint64_t w = 0; w < NPAGES / 64; w++)
		CHECK(bm[w] == 0);
	for (uint64_t k = 0; k < NPAGES; k++) {
		/* It wrote into its pinned pages, and no write went unreported. */
		if (vgpu_pinned(k))
			CHECK(page_written(buf, k));
		if (page_written(buf, k))
			CHECK(test_bit(seen, k));
	}
	CHECK(close(g) == 0 && close(c) == 0);
	free(seen);
	free(bm);
	munmap(buf, MAP_LEN);
}

/* close, dup and the kernel's file rules. */
static void case_type1_files(void)
{
	int c = open_container(), c2 = dup(c), g, dev, null = open("/dev/null", O_RDONLY);
	struct vfio_device_info info = { .argsz = sizeof(info) };
	int bad = 1000;

	CHECK(c2 >= 0 && null >= 0);
	CHECK_ERR(open("/dev/vfio/99", O_RDWR), ENOENT);
	g = open("/dev/vfio/14", O_RDWR);
	CHECK(g >= 0);
	CHECK_ERR(open("/dev/vfio/14", O_RDWR), EBUSY);
	CHECK_ERR(ioctl(g, VFIO_GROUP_SET_CONTAINER, &null), EBADFD);
	CHECK_ERR(ioctl(g, VFIO_GROUP_SET_CONTAINER, &bad), EBADF);
	CHECK_ERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "nolog0"), EINVAL); /* no container */
	CHECK(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c2) == 0);               /* through the dup */
	CHECK(close(c) == 0 && close(c2) == 0); /* the group keeps the container alive */
	CHECK_ERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "nolog0"), EINVAL); /* no IOMMU type yet */
	CHECK_ERR(ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "nosuch"), ENODEV);
	c = open_container();
	CHECK(ioctl(g, VFIO_GROUP_UNSET_CONTAINER) == 0);
	CHECK(ioctl(g, VFIO_GROUP_SET_CONTAINER, &c) == 0);
	CHECK(ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) == 0);
	dev = ioctl(g, VFIO_GROUP_GET_DEVICE_FD, "nolog0");
	CHECK(dev >= 0 && (fcntl(dev, F_GETFD) & FD_CLOEXEC));
	CHECK(ioctl(dev, VFIO_DEVICE_GET_INFO, &info) == 0);
	CHECK(info.num_regions == 0 && info.num_irqs == 0);
	CHECK_ERR(feature(dev, VFIO_DEVICE_FEATURE_DMA_LOGGING_START | VFIO_DEVICE_FEATURE_SET |
				       VFIO_DEVICE_FEATURE_PROBE, NULL, 0),
		  ENOTTY);
	/* The device fd holds the group: closing the group fd first is fine. */
	CHECK(close(g) == 0);
	CHECK_ERR(open("/dev/vfio/14", O_RDWR), EBUSY);
	g = dup(dev);
	CHECK(close(dev) == 0);
	CHECK(ioctl(g, VFIO_DEVICE_GET_INFO, &info) == 0);
	CHECK(close(g) == 0);
	g = open("/dev/vfio/14", O_RDWR);
	CHECK(g >= 0);
	CHECK(close(g) == 0 && close(c) == 0 && close(null) == 0);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "type1_vmm", case_type1_vmm },
	{ "type1_mdev", case_type1_mdev },
	{ "type1_mdev_pin", case_type1_mdev_pin },
	{ "type1_files", case_type1_files },
};

int main(int argc, char **argv)
{
	for (size_t i = 0; argc == 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!strcmp(argv[1], cases[i].name)) {
			cases[i].fn();
			printf("%s: ok\n", cases[i].name);
			return 0;
		}
	}
	fprintf(stderr, "usage: test_vfio_shim <case>\n");
	return 2;
}
