// SPDX-License-Identifier: MIT
/*
 * A VMM-style program under the LD_PRELOAD shim, written only against kernel
 * headers (<linux/vfio.h>, the iommufd uAPI and the VFIO cdev declarations):
 * nothing here knows uiommu exists. Run it without the shim on a machine
 * whose kernel has iommufd and VFIO cdevs and it would talk to the kernel.
 * The fault_fd case also uses the kernel selftest's mock driver (the
 * iommufd_test.h declarations), as on a kernel with CONFIG_IOMMUFD_TEST, to
 * make a device take an IO page fault.
 *
 *   test_shim <case>      cases: see the table at the bottom
 *
 * Exits 0 on success, 1 on a failed check (with file, line, errno), 77
 * (skip) when /dev/iommu does not exist (the shim is not loaded).
 *
 * Each case starts from a fresh process (one meson test per case): the
 * shim reads UIOMMU_DEVICES and UIOMMU_DMA_LOG once per process.
 *
 * The DMA case expects UIOMMU_DEVICES as registered in meson.build: vfio0
 * and vfio1 DMA into [0x100000, 0x4fffff] and [0x880000, 0x97ffff], with 4k
 * pages only so that the dirty bitmap has the granularity of the writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "uiommu/uapi/iommufd.h"
#include "uapi/iommufd_test.h"
#include "uapi/shim/vfio_cdev.h"

#include "shim_check.h"

/* Fails the case with where and why; a function so that callers stay straight-line. */
/* ---- small wrappers over the uAPI ---- */

static int open_iommufd(void)
{
	int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		printf("SKIP: /dev/iommu does not exist (is libuiommu-preload.so in LD_PRELOAD?)\n");
		exit(77);
	}
	CHECK(fd >= 0);
	return fd;
}

static uint32_t ioas_alloc(int fd)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	CHECK(!ioctl(fd, IOMMU_IOAS_ALLOC, &a));
	CHECK(a.out_ioas_id != 0);
	return a.out_ioas_id;
}

static void ioas_map(int fd, uint32_t ioas, void *va, uint64_t len, uint64_t iova)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};

	CHECK(!ioctl(fd, IOMMU_IOAS_MAP, &m));
}

static int open_vfio(unsigned int n)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%u", n);
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	return fd;
}

static uint32_t vfio_bind(int dev, int iommufd)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };

	CHECK(!ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b));
	CHECK(b.out_devid != 0);
	return b.out_devid;
}

static uint32_t vfio_attach(int dev, uint32_t pt_id)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = pt_id };

	CHECK(!ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a));
	return a.pt_id;
}

static void vfio_detach(int dev)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };

	CHECK(!ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d));
}

static uint32_t hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags)
{
	struct iommu_hwpt_alloc h = { .size = sizeof(h), .flags = flags, .dev_id = dev_id,
				      .pt_id = pt_id };

	CHECK(!ioctl(fd, IOMMU_HWPT_ALLOC, &h));
	return h.out_hwpt_id;
}

static uint64_t hw_caps(int fd, uint32_t dev_id)
{
	struct iommu_hw_info info = { .size = sizeof(info), .dev_id = dev_id };

	CHECK(!ioctl(fd, IOMMU_GET_HW_INFO, &info));
	return info.out_capabilities;
}

static void set_dirty_tracking(int fd, uint32_t hwpt, bool on)
{
	struct iommu_hwpt_set_dirty_tracking s = {
		.size = sizeof(s), .flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0, .hwpt_id = hwpt
	};

	CHECK(!ioctl(fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &s));
}

static void get_dirty(int fd, uint32_t hwpt, uint64_t *bitmap, size_t bitmap_bytes)
{
	struct iommu_hwpt_get_dirty_bitmap g = {
		.size = sizeof(g), .hwpt_id = hwpt, .iova = MAP_IOVA, .length = MAP_LEN,
		.page_size = PAGE, .data = (uintptr_t)bitmap,
	};

	memset(bitmap, 0, bitmap_bytes);
	CHECK(!ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &g));
}

static void *map_buffer(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

/* ---- the VMM flow: DMA, dirty bitmap, and the device's own log ---- */

#define NR_PAGES (MAP_LEN / PAGE)

struct dma_log {
	bool page[NR_PAGES];  /* written by a successful DMA */
	unsigned long ok;     /* successful writes */
	unsigned long faults; /* writes that faulted */
};

static void log_line(struct dma_log *log, const char *line)
{
	uint64_t iova, len;
	char name[32];
	int rc;

	CHECK(sscanf(line, "%31s iova=%" SCNx64 " len=%" SCNx64 " rc=%d", name, &iova, &len, &rc) ==
	      4);
	if (rc) {
		log->faults++;
		return;
	}
	log->ok++;
	/* A successful write must lie inside the mapping, or it would have faulted. */
	CHECK(iova >= MAP_IOVA && iova + len <= MAP_IOVA + MAP_LEN && len);
	for (uint64_t a = iova; a < iova + len; a += PAGE)
		log->page[(a - MAP_IOVA) / PAGE] = true;
}

static void read_dma_log(const char *path, struct dma_log *log)
{
	char line[256];
	FILE *f = fopen(path, "r");

	CHECK(f);
	memset(log, 0, sizeof(*log));
	while (fgets(line, sizeof(line), f)) {
		/* A line still being appended (only while the devices run) is skipped. */
		if (strchr(line, '\n'))
			log_line(log, line);
	}
	fclose(f);
}

/* The log says which pages DMA wrote: the bitmap and the memory must agree. */
static void check_dirty_matches_log(const uint64_t *bitmap, const uint8_t *buf,
				    const struct dma_log *log)
{
	unsigned long dirty = 0;

	for (uint64_t pg = 0; pg < NR_PAGES; pg++) {
		bool bit = bitmap[pg / 64] >> (pg % 64) & 1;

		if (bit != log->page[pg]) {
			fprintf(stderr, "page %" PRIu64 " (iova 0x%" PRIx64 "): bitmap %d, log %d\n",
				pg, (uint64_t)(MAP_IOVA + pg * PAGE), bit, log->page[pg]);
			exit(1);
		}
		dirty += bit;
		for (uint64_t i = 0; i < PAGE; i++)
			CHECK(buf[pg * PAGE + i] == (bit ? 0xa5 : 0));
	}
	printf("dma: %lu writes, %lu faults, %lu dirty pages\n", log->ok, log->faults, dirty);
}

/* Lets the devices run until the log shows enough (at most 10 s, however loaded the machine). */
static void wait_for_dma(const char *path)
{
	static struct dma_log log;

	usleep(200 * 1000);
	for (int i = 0; i < 200; i++) {
		read_dma_log(path, &log);
		if (log.ok >= 20 && log.faults >= 1)
			return;
		usleep(50 * 1000);
	}
}

static const char *dma_log_path(void)
{
	static char path[] = "/tmp/uiommu-shim-dma-XXXXXX";
	const char *env = getenv("UIOMMU_DMA_LOG");
	int fd;

	if (env) {
		CHECK(truncate(env, 0) == 0 || errno == ENOENT);
		return env;
	}
	/* The shim reads the variable when the first DMA thread starts. */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK(!setenv("UIOMMU_DMA_LOG", path, 1));
	return path;
}

static void case_vmm_dirty(void)
{
	static struct dma_log log;
	const char *log_path = dma_log_path();
	uint64_t bitmap[NR_PAGES / 64];
	int fd = open_iommufd(), nic0 = open_vfio(0), nic1 = open_vfio(1);
	uint8_t *buf = map_buffer(MAP_LEN);
	uint32_t ioas = ioas_alloc(fd), dev0, dev1, hwpt;

	ioas_map(fd, ioas, buf, MAP_LEN, MAP_IOVA);
	dev0 = vfio_bind(nic0, fd);
	dev1 = vfio_bind(nic1, fd);
	CHECK(hw_caps(fd, dev0) & IOMMU_HW_CAP_DIRTY_TRACKING);
	CHECK(hw_caps(fd, dev1) & IOMMU_HW_CAP_DIRTY_TRACKING);
	hwpt = hwpt_alloc(fd, dev0, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
	/* Track before any device runs, so every write the log shows is tracked. */
	set_dirty_tracking(fd, hwpt, true);
	CHECK(vfio_attach(nic0, hwpt) == hwpt);
	CHECK(vfio_attach(nic1, hwpt) == hwpt);
	wait_for_dma(log_path);
	/* Detach stops the DMA threads: after it the log is complete. */
	vfio_detach(nic0);
	vfio_detach(nic1);
	get_dirty(fd, hwpt, bitmap, sizeof(bitmap));
	read_dma_log(log_path, &log);
	CHECK(log.ok >= 20);
	CHECK(log.faults >= 1);
	check_dirty_matches_log(bitmap, buf, &log);
	get_dirty(fd, hwpt, bitmap, sizeof(bitmap));
	for (size_t i = 0; i < NR_PAGES / 64; i++)
		CHECK(bitmap[i] == 0);
	close(nic0);
	close(nic1);
	CHECK(!ioctl(fd, IOMMU_DESTROY, &(struct iommu_destroy){ .size = 8, .id = hwpt }));
	close(fd);
	munmap(buf, MAP_LEN);
	if (!strncmp(log_path, "/tmp/uiommu-shim-dma-", 21))
		unlink(log_path);
}

/* ---- everything that is not ours goes to the kernel ---- */

static void case_passthrough(void)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	char path[] = "/tmp/uiommu-shim-open-XXXXXX";
	int p[2], n = -1, fd, iommufd = open_iommufd();
	struct stat st;

	CHECK(!pipe(p));
	CHECK(write(p[1], "abc", 3) == 3);
	CHECK(!ioctl(p[0], FIONREAD, &n) && n == 3);
	CHECK_ERR(ioctl(p[0], IOMMU_IOAS_ALLOC, &a), ENOTTY);
	CHECK_ERR(ioctl(p[0], VFIO_DEVICE_BIND_IOMMUFD, &a), ENOTTY);
	close(p[0]);
	CHECK_ERR(ioctl(p[0], FIONREAD, &n), EBADF);
	CHECK_ERR(close(p[0]), EBADF);
	close(p[1]);
	/* The optional mode argument reaches the kernel. */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	unlink(path);
	umask(0);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
	CHECK(fd >= 0 && !fstat(fd, &st) && (st.st_mode & 0777) == 0640);
	close(fd);
	fd = openat(AT_FDCWD, path, O_RDONLY);
	CHECK(fd >= 0);
	close(fd);
	unlink(path);
	CHECK_ERR(open("/dev/vfio/devices/vfio99", O_RDWR), ENOENT);
	CHECK_ERR(open("/dev/vfio/devices/vfio01", O_RDWR), ENOENT);
	CHECK_ERR(open("/dev/vfio/devices/", O_RDWR), ENOENT);
	/* fcntl other than F_DUPFD reaches the memfd behind a shim fd. */
	CHECK((fcntl(iommufd, F_GETFL) & O_ACCMODE) == O_RDWR);
	close(iommufd);
}

/* Attach and detach in quick succession, replace while running, close while attached. */
static void case_dma_churn(void)
{
	int fd = open_iommufd(), nic0 = open_vfio(0);
	uint8_t *buf = map_buffer(MAP_LEN);
	uint32_t ioas = ioas_alloc(fd), ioas2 = ioas_alloc(fd), dev0;

	ioas_map(fd, ioas, buf, MAP_LEN, MAP_IOVA);
	dev0 = vfio_bind(nic0, fd);
	for (int i = 0; i < 20; i++) {
		vfio_attach(nic0, ioas);
		usleep(2000);
		vfio_detach(nic0);
	}
	vfio_attach(nic0, ioas);
	/* Replace to an empty IOAS: the DMA goes on, and faults. */
	vfio_attach(nic0, ioas2);
	usleep(5000);
	vfio_attach(nic0, hwpt_alloc(fd, dev0, ioas, 0));
	usleep(5000);
	close(fd);
	close(nic0);
	/* Every DMA stopped with the close: the memory can go. */
	munmap(buf, MAP_LEN);
}

/* ---- bad pointers give EFAULT, never a crash ---- */

static void case_efault(void)
{
	int fd = open_iommufd(), dev = open_vfio(0);
	void *hole = map_buffer(PAGE);

	munmap(hole, PAGE);
	CHECK_ERR(ioctl(fd, IOMMU_IOAS_ALLOC, NULL), EFAULT);
	CHECK_ERR(ioctl(fd, IOMMU_IOAS_ALLOC, (void *)1), EFAULT);
	CHECK_ERR(ioctl(fd, IOMMU_IOAS_ALLOC, hole), EFAULT);
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, NULL), EFAULT);
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, hole), EFAULT);
	vfio_bind(dev, fd);
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, hole), EFAULT);
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, hole), EFAULT);
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_GET_INFO, hole), EFAULT);
	close(dev);
	close(fd);
}

static void case_efault_readonly_bind(void)
{
	int fd = open_iommufd(), dev = open_vfio(0), dev2;
	struct vfio_device_bind_iommufd *b = map_buffer(PAGE);

	*b = (struct vfio_device_bind_iommufd){ .argsz = sizeof(*b), .iommufd = fd };
	CHECK(!mprotect(b, PAGE, PROT_READ));
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, b), EFAULT);
	/* The failed bind left the device free: another file can bind it. */
	dev2 = open_vfio(0);
	vfio_bind(dev2, fd);
	close(dev2);
	close(dev);
	close(fd);
	munmap(b, PAGE);
}

/* ---- dup family ---- */

static void check_cloexec(int fd, bool want)
{
	int flags = fcntl(fd, F_GETFD);

	CHECK(flags >= 0 && !!(flags & FD_CLOEXEC) == want);
}

static void case_dup(void)
{
	int fd = open_iommufd(), d1, d2, d3, other, plain;
	uint32_t id;

	check_cloexec(fd, true);
	id = ioas_alloc(fd);
	d1 = dup(fd);
	CHECK(d1 >= 0);
	check_cloexec(d1, false);
	close(fd);
	/* The same context: ids go on from where the closed fd left them. */
	CHECK(ioas_alloc(d1) == id + 1);
	d2 = fcntl(d1, F_DUPFD_CLOEXEC, 100);
	CHECK(d2 >= 100);
	check_cloexec(d2, true);
	CHECK(ioas_alloc(d2) == id + 2);
	d3 = dup3(d2, 200, O_CLOEXEC);
	CHECK(d3 == 200);
	check_cloexec(d3, true);
	/* dup2 over another context's fd closes that one and takes its number. */
	other = open("/dev/iommu", O_RDWR);
	check_cloexec(other, false);
	CHECK(dup2(d3, other) == other);
	CHECK(ioas_alloc(other) == id + 3);
	/* dup2 of a plain fd over a shim fd: the number is plain afterwards. */
	plain = open("/dev/null", O_RDONLY);
	CHECK(dup2(plain, d2) == d2);
	CHECK_ERR(ioctl(d2, IOMMU_IOAS_ALLOC, &(struct iommu_ioas_alloc){ .size = 12 }), ENOTTY);
	CHECK(dup2(d1, d1) == d1);
	CHECK_ERR(dup3(d1, d1, 0), EINVAL);
	CHECK(ioas_alloc(d1) == id + 4);
	close(d1);
	close(d2);
	close(d3);
	close(other);
	close(plain);
}

static void case_close_range(void)
{
	int a = open_iommufd(), b = open_iommufd(), c = open_iommufd();
	int lo = a < b ? a : b, hi = a < b ? b : a;

	ioas_alloc(a);
	CHECK(!close_range((unsigned int)lo, (unsigned int)hi, 0));
	CHECK_ERR(ioctl(a, IOMMU_IOAS_ALLOC, &(struct iommu_ioas_alloc){ .size = 12 }), EBADF);
	CHECK_ERR(ioctl(b, IOMMU_IOAS_ALLOC, &(struct iommu_ioas_alloc){ .size = 12 }), EBADF);
	CHECK(ioas_alloc(c) == 1);
	CHECK(!close_range((unsigned int)c, (unsigned int)c, CLOSE_RANGE_CLOEXEC));
	check_cloexec(c, true);
	CHECK(ioas_alloc(c) == 2);
	closefrom(c);
	CHECK_ERR(fcntl(c, F_GETFD), EBADF);
}

/* ---- lifetime: the last close frees (ASan builds report a leak otherwise) ---- */

static void case_close_frees(void)
{
	uint8_t *buf = map_buffer(1 << 20);
	int fd, dev;
	uint32_t ioas;

	for (int i = 0; i < 200; i++) {
		fd = open_iommufd();
		ioas = ioas_alloc(fd);
		CHECK(ioas == 1); /* a fresh context every time */
		ioas_map(fd, ioas, buf, 1 << 20, MAP_IOVA);
		close(fd);
	}
	/* A bound device keeps the context after its fd closes, as in the kernel. */
	fd = open_iommufd();
	ioas = ioas_alloc(fd);
	ioas_map(fd, ioas, buf, 1 << 20, MAP_IOVA);
	dev = open_vfio(2);
	vfio_bind(dev, fd);
	vfio_attach(dev, ioas);
	close(fd);
	vfio_detach(dev);
	vfio_attach(dev, ioas);
	close(dev);
	munmap(buf, 1 << 20);
}

/* ---- unknown ioctls ---- */

static void case_enotty(void)
{
	int fd = open_iommufd(), dev = open_vfio(0);
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	CHECK_ERR(ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), &a), ENOTTY);
	CHECK_ERR(ioctl(fd, _IO(IOMMUFD_TYPE, 0xff), &a), ENOTTY);
	CHECK_ERR(ioctl(fd, _IO('x', 0x85), &a), ENOTTY);
	/* A device file refuses everything but BIND until bound (EINVAL). */
	CHECK_ERR(ioctl(dev, _IO(VFIO_TYPE, VFIO_BASE + 50), &a), EINVAL);
	vfio_bind(dev, fd);
	CHECK_ERR(ioctl(dev, _IO(VFIO_TYPE, VFIO_BASE + 50), &a), ENOTTY);
	close(dev);
	close(fd);
}

/* ---- VFIO device cdev: the kernel's checks and errnos ---- */

static void cdev_bind_checks(int dev, int fd)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = fd };
	int p[2];

	b.argsz = 15;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EINVAL);
	b.argsz = sizeof(b);
	b.flags = 1;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EINVAL);
	b.flags = 0;
	b.iommufd = -1;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EINVAL);
	CHECK(!pipe(p));
	b.iommufd = p[0];
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EBADFD);
	b.iommufd = dev;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EBADFD);
	close(p[0]);
	close(p[1]);
	b.iommufd = p[0];
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b), EBADF);
}

static void cdev_attach_checks(int dev)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a) };
	struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };

	a.argsz = 11;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), EINVAL);
	a.argsz = sizeof(a);
	a.flags = 2;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), EINVAL);
	a.flags = VFIO_DEVICE_ATTACH_PASID;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), EOPNOTSUPP);
	a.flags = 0;
	a.pt_id = 9999;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), ENOENT);
	d.argsz = 7;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d), EINVAL);
	d.argsz = sizeof(d);
	d.flags = 2;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d), EINVAL);
	d.flags = VFIO_DEVICE_DETACH_PASID;
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d), EOPNOTSUPP);
	/* Detaching a device that is not attached succeeds, as in the kernel. */
	vfio_detach(dev);
}

static void cdev_info_checks(int dev)
{
	struct vfio_device_info info = { .argsz = 15 };

	CHECK_ERR(ioctl(dev, VFIO_DEVICE_GET_INFO, &info), EINVAL);
	memset(&info, 0xff, sizeof(info));
	info.argsz = sizeof(info);
	CHECK(!ioctl(dev, VFIO_DEVICE_GET_INFO, &info));
	CHECK(info.flags == 0 && info.num_regions == 0 && info.num_irqs == 0);
}

static void case_vfio_cdev(void)
{
	int fd = open_iommufd(), dev = open_vfio(0), dev_b = open_vfio(0);
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a) };
	uint32_t ioas = ioas_alloc(fd), ioas2 = ioas_alloc(fd), hwpt, dev_id;

	CHECK_ERR(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a), EINVAL);
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_GET_INFO, &a), EINVAL);
	cdev_bind_checks(dev, fd);
	dev_id = vfio_bind(dev, fd);
	/* Bound once: neither this file nor another can bind it again. */
	CHECK_ERR(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD,
			&(struct vfio_device_bind_iommufd){ .argsz = 16, .iommufd = fd }),
		  EINVAL);
	CHECK_ERR(ioctl(dev_b, VFIO_DEVICE_BIND_IOMMUFD,
			&(struct vfio_device_bind_iommufd){ .argsz = 16, .iommufd = fd }),
		  EINVAL);
	cdev_attach_checks(dev);
	cdev_info_checks(dev);
	/* An IOAS gives an automatic HWPT; attaching again replaces. */
	hwpt = vfio_attach(dev, ioas);
	CHECK(hwpt != ioas && hwpt != 0);
	CHECK(vfio_attach(dev, ioas2) != hwpt);
	CHECK(vfio_attach(dev, hwpt_alloc(fd, dev_id, ioas, 0)) != 0);
	vfio_detach(dev);
	/* Closing the bound file unbinds: the other file can bind now. */
	close(dev);
	vfio_bind(dev_b, fd);
	close(dev_b);
	close(fd);
}

/* ---- devices from UIOMMU_DEVICES ---- */

static void case_env_devices(void)
{
	int fd = open_iommufd(), nic0 = open_vfio(0), disk = open_vfio(2);
	uint32_t ioas = ioas_alloc(fd), dev_nic0 = vfio_bind(nic0, fd), dev_disk;
	struct iommu_iova_range r[4];
	struct iommu_ioas_iova_ranges q = {
		.size = sizeof(q), .ioas_id = ioas, .num_iovas = 4, .allowed_iovas = (uintptr_t)r
	};
	struct iommu_hwpt_alloc h = {
		.size = sizeof(h), .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING, .pt_id = ioas
	};

	dev_disk = vfio_bind(disk, fd);
	CHECK(hw_caps(fd, dev_nic0) & IOMMU_HW_CAP_DIRTY_TRACKING);
	CHECK(!(hw_caps(fd, dev_disk) & IOMMU_HW_CAP_DIRTY_TRACKING));
	h.dev_id = dev_disk;
	CHECK_ERR(ioctl(fd, IOMMU_HWPT_ALLOC, &h), EOPNOTSUPP);
	/* nic0's aperture and reserved region shape the IOAS once it is attached. */
	vfio_attach(nic0, ioas);
	CHECK(!ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &q));
	CHECK(q.num_iovas == 2);
	CHECK(r[0].start == 0 && r[0].last == 0xfedfffffull);
	CHECK(r[1].start == 0xfef00000ull && r[1].last == 0xffffffffffull);
	CHECK(q.out_iova_alignment == PAGE);
	close(nic0);
	close(disk);
	close(fd);
}

/* Run with a broken UIOMMU_DEVICES: one message, no devices, /dev/iommu works. */
static void case_bad_config(void)
{
#define PREFIX "uiommu-preload: UIOMMU_DEVICES: at offset "
	char path[] = "/tmp/uiommu-shim-err-XXXXXX", text[1024];
	int log = mkstemp(path), saved = dup(2), fd;
	ssize_t n;

	CHECK(log >= 0 && saved >= 0);
	CHECK(dup2(log, 2) == 2);
	fd = open_iommufd();
	CHECK_ERR(open("/dev/vfio/devices/vfio0", O_RDWR), ENOENT);
	close(fd);
	close(open_iommufd());
	CHECK(dup2(saved, 2) == 2);
	n = pread(log, text, sizeof(text) - 1, 0);
	CHECK(n > 0);
	text[n] = '\0';
	fputs(text, stdout);
	CHECK(!strncmp(text, PREFIX, strlen(PREFIX)));
	CHECK(strstr(text, "serving no devices\n"));
	CHECK(strchr(text, '\n') == text + n - 1); /* exactly one line */
	close(log);
	close(saved);
	unlink(path);
}

/* ---- fork: the child works on its own copy ---- */

static void case_fork(void)
{
	int fd = open_iommufd(), status;
	pid_t pid;

	CHECK(ioas_alloc(fd) == 1);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		CHECK(ioas_alloc(fd) == 2);
		CHECK(ioas_alloc(fd) == 3);
		close(fd);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status));
	/* The child's objects are not the parent's. */
	CHECK(ioas_alloc(fd) == 2);
	close(fd);
}

/* ---- exec: a context fd kept across exec is a plain memfd there ---- */

/* Run in the new image: the inherited fd is open but serves no context. */
static void case_exec_child(void)
{
	const char *env = getenv("UIOMMU_TEST_EXEC_FD");
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	int fd = env ? atoi(env) : -1, fresh;

	CHECK(fd > 2 && fcntl(fd, F_GETFD) >= 0);
	CHECK(ioctl(fd, IOMMU_IOAS_ALLOC, &a) == -1 && errno == ENOTTY && !a.out_ioas_id);
	fresh = open_iommufd();
	CHECK(ioas_alloc(fresh) == 1); /* a new context, not the old image's */
	close(fresh);
	close(fd);
}

static void case_exec(void)
{
	int fd = open("/dev/iommu", O_RDWR), status; /* no O_CLOEXEC */
	char num[16];
	pid_t pid;

	CHECK(fd >= 0 && ioas_alloc(fd) == 1);
	snprintf(num, sizeof(num), "%d", fd);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		setenv("UIOMMU_TEST_EXEC_FD", num, 1);
		execl("/proc/self/exe", "test_shim", "exec_child", (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status));
	CHECK(ioas_alloc(fd) == 2); /* the parent's context is untouched */
	close(fd);
}

/* ---- fault queues: read and write on the fault fd ---- */

static long test_cmd(int fd, struct iommu_test_cmd *c)
{
	c->size = sizeof(*c);
	return ioctl(fd, IOMMU_TEST_CMD, c);
}

/* A selftest mock device on @ioas; *idev = its device id. Returns its selftest id. */
static uint32_t mock_device(int fd, uint32_t ioas, uint32_t *idev)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas };

	CHECK(!test_cmd(fd, &c));
	*idev = c.mock_domain.out_idev_id;
	return c.mock_domain.out_stdev_id;
}

/* A nested HWPT over @parent whose IO page faults go to @fault. */
static uint32_t iopf_hwpt(int fd, uint32_t idev, uint32_t parent, uint32_t fault)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_alloc h = {
		.size = sizeof(h), .flags = IOMMU_HWPT_FAULT_ID_VALID, .dev_id = idev,
		.pt_id = parent, .data_type = IOMMU_HWPT_DATA_SELFTEST, .data_len = sizeof(data),
		.data_uptr = (uintptr_t)&data, .fault_id = fault,
	};

	CHECK(!ioctl(fd, IOMMU_HWPT_ALLOC, &h));
	return h.out_hwpt_id;
}

static void replace_pt(int fd, uint32_t stdev, uint32_t pt)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, .id = stdev };

	c.mock_domain_replace.pt_id = pt;
	CHECK(!test_cmd(fd, &c));
}

static void trigger_iopf(int fd, uint32_t idev, uint64_t addr)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = { .dev_id = idev, .pasid = 1, .grpid = 2,
				  .perm = IOMMU_PGFAULT_PERM_READ, .addr = addr },
	};

	CHECK(!test_cmd(fd, &c));
}

/* read and write on a plain fd still work while a fault fd is open. */
static void check_passthrough_rw(void)
{
	int p[2];
	char c = 0;

	CHECK(!pipe(p));
	CHECK(write(p[1], "x", 1) == 1);
	CHECK(read(p[0], &c, 1) == 1 && c == 'x');
	close(p[0]);
	close(p[1]);
}

static void case_fault_fd(void)
{
	int fd = open_iommufd(), ffd;
	uint32_t ioas = ioas_alloc(fd), idev, stdev = mock_device(fd, ioas, &idev), parent, nested;
	struct iommu_fault_alloc fa = { .size = sizeof(fa) };
	struct iommu_hwpt_pgfault m[2];
	struct iommu_hwpt_page_response r = { .code = IOMMUFD_PAGE_RESP_SUCCESS };
	struct iommu_test_cmd acc = { .op = IOMMU_TEST_OP_CREATE_ACCESS, .id = ioas };
	void *none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(none != MAP_FAILED);
	parent = hwpt_alloc(fd, idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
	CHECK(!ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, &fa));
	ffd = (int)fa.out_fault_fd;
	check_cloexec(ffd, true);
	nested = iopf_hwpt(fd, idev, parent, fa.out_fault_id);
	replace_pt(fd, stdev, nested);
	/* Nothing waits: read returns 0 at once. */
	CHECK(read(ffd, m, sizeof(m)) == 0);
	trigger_iopf(fd, idev, 0xdeadbeaf);
	CHECK_ERR(read(ffd, m, sizeof(m[0]) - 1), ESPIPE);
	CHECK_ERR(read(ffd, m, 0), EINVAL);
	CHECK(read(ffd, m, sizeof(m)) == (ssize_t)sizeof(m[0]));
	CHECK(m[0].dev_id == idev && m[0].addr == 0xdeadbeaf && m[0].cookie == 1);
	CHECK_ERR(write(ffd, &r, sizeof(r) - 1), ESPIPE);
	r.cookie = 2;
	CHECK_ERR(write(ffd, &r, sizeof(r)), EINVAL);
	r.cookie = m[0].cookie;
	CHECK(write(ffd, &r, sizeof(r)) == (ssize_t)sizeof(r));
	CHECK_ERR(write(ffd, &r, sizeof(r)), EINVAL);
	/* A bad buffer is EFAULT, and the fault waits on. */
	trigger_iopf(fd, idev, 0x2000);
	CHECK_ERR(read(ffd, none, sizeof(m[0])), EFAULT);
	CHECK(read(ffd, m, sizeof(m)) == (ssize_t)sizeof(m[0]));
	CHECK(m[0].addr == 0x2000 && m[0].cookie == 1);
	check_passthrough_rw();
	/* The context's fds cannot be duplicated; an access fd has no read or write. */
	CHECK_ERR(dup(ffd), EINVAL);
	CHECK(!test_cmd(fd, &acc));
	CHECK_ERR(read((int)acc.create_access.out_access_fd, m, sizeof(m[0])), EINVAL);
	CHECK_ERR(write((int)acc.create_access.out_access_fd, &r, sizeof(r)), EINVAL);
	CHECK(!close((int)acc.create_access.out_access_fd));
	/* The fd holds the fault object; the nested HWPT does too. */
	CHECK_ERR(ioctl(fd, IOMMU_DESTROY, &(struct iommu_destroy){ 8, fa.out_fault_id }), EBUSY);
	CHECK(!close(ffd));
	CHECK_ERR(read(ffd, m, sizeof(m[0])), EBADF);
	replace_pt(fd, stdev, parent);
	CHECK(!ioctl(fd, IOMMU_DESTROY, &(struct iommu_destroy){ 8, nested }));
	CHECK(!ioctl(fd, IOMMU_DESTROY, &(struct iommu_destroy){ 8, fa.out_fault_id }));
	munmap(none, PAGE);
	close(fd);
}

/* ---- threads: open, ioctl, dup and close from many threads at once ---- */

static int shared_fd = -1;

static void *thread_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		int fd = open_iommufd(), d = dup(fd);
		struct iommu_ioas_alloc a = { .size = sizeof(a) };
		int s = __atomic_load_n(&shared_fd, __ATOMIC_RELAXED);

		ioas_alloc(fd);
		close(fd);
		ioas_alloc(d);
		close(d);
		/* Racing with the closer below: it succeeds or sees a closed fd. */
		if (ioctl(s, IOMMU_IOAS_ALLOC, &a))
			CHECK(errno == EBADF || errno == ENOTTY);
	}
	return NULL;
}

static void case_threads(void)
{
	pthread_t t[4];

	for (int i = 0; i < 4; i++)
		CHECK(!pthread_create(&t[i], NULL, thread_main, NULL));
	for (int i = 0; i < 300; i++) {
		int fd = open_iommufd();

		__atomic_store_n(&shared_fd, fd, __ATOMIC_RELAXED);
		ioas_alloc(fd);
		close(fd);
	}
	for (int i = 0; i < 4; i++)
		CHECK(!pthread_join(t[i], NULL));
}

/* ---- the case table ---- */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "vmm_dirty", case_vmm_dirty },
	{ "dma_churn", case_dma_churn },
	{ "passthrough", case_passthrough },
	{ "efault", case_efault },
	{ "efault_readonly_bind", case_efault_readonly_bind },
	{ "dup", case_dup },
	{ "close_range", case_close_range },
	{ "close_frees", case_close_frees },
	{ "enotty", case_enotty },
	{ "vfio_cdev", case_vfio_cdev },
	{ "env_devices", case_env_devices },
	{ "bad_config", case_bad_config },
	{ "fork", case_fork },
	{ "exec", case_exec },
	{ "exec_child", case_exec_child },
	{ "threads", case_threads },
	{ "fault_fd", case_fault_fd },
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <case>\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!strcmp(argv[1], cases[i].name)) {
			cases[i].fn();
			printf("ok %s\n", argv[1]);
			return 0;
		}
	}
	fprintf(stderr, "unknown case %s\n", argv[1]);
	return 2;
}
