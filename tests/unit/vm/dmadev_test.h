/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the emulated DMA device's tests (test_dmadev*.c).
 *
 * The standard guest: 64 MiB of anonymous memory (zero, as a fresh VM's
 * memfd is), the DMA region [16 MiB, 32 MiB) with the default ring (its
 * first quarter), a fixed seed. Dirty reports are read the way the "iommu"
 * dirty source reads them: IOMMU_HWPT_GET_DIRTY_BITMAP over all of guest RAM
 * at 4 KiB pages on the device's context and HWPT.
 */
#ifndef UIOMMU_TEST_DMADEV_H
#define UIOMMU_TEST_DMADEV_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/dmadev.h>
#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/uapi/iommufd.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define PG 4096ull
#define GUEST_BYTES (64 * MiB)
#define DMA_GPA (16 * MiB)
#define DMA_BYTES (16 * MiB)
#define GUEST_PAGES (GUEST_BYTES / PG)
#define GUEST_WORDS (GUEST_PAGES / 64)
#define TEST_SEED 0x5eed5eedull

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts))
		;
}

/* Zeroed guest RAM, page aligned. */
static inline uint8_t *guest_alloc(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static inline void guest_free(uint8_t *mem, uint64_t bytes)
{
	munmap(mem, bytes);
}

static inline struct uiommu_dmadev_cfg std_cfg(uint8_t *mem, enum uiommu_dmadev_pattern pattern,
					       uint64_t rate)
{
	return (struct uiommu_dmadev_cfg){
		.mem = mem,
		.mem_bytes = GUEST_BYTES,
		.dma_gpa = DMA_GPA,
		.dma_bytes = DMA_BYTES,
		.workload = { .pattern = pattern, .rate_bytes_per_sec = rate },
		.seed = TEST_SEED,
	};
}

static inline struct uiommu_dmadev *dev_new(const struct uiommu_dmadev_cfg *cfg)
{
	struct uiommu_dmadev *dev = NULL;

	assert_int_equal(uiommu_dmadev_create(cfg, &dev), 0);
	assert_non_null(dev);
	return dev;
}

static inline void set_state_ok(struct uiommu_dmadev *dev, enum vfio_device_mig_state s)
{
	assert_int_equal(uiommu_dmadev_set_state(dev, s), 0);
	assert_int_equal(uiommu_dmadev_get_state(dev), s);
}

static inline void set_workload(struct uiommu_dmadev *dev, enum uiommu_dmadev_pattern pattern,
				uint64_t rate)
{
	struct uiommu_dmadev_workload wl = { .pattern = pattern, .rate_bytes_per_sec = rate };

	assert_int_equal(uiommu_dmadev_set_workload(dev, &wl), 0);
}

static inline void dirty_tracking(struct uiommu_dmadev *dev, bool on)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = uiommu_dmadev_hwpt_id(dev),
	};

	assert_int_equal(uiommu_iommufd_ioctl(uiommu_dmadev_ctx(dev),
					      IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd),
			 0);
}

/* Read-and-clear of all guest RAM into @bits (GUEST_WORDS words, overwritten). */
static inline void harvest(struct uiommu_dmadev *dev, uint64_t *bits)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = uiommu_dmadev_hwpt_id(dev),
		.iova = 0,
		.length = GUEST_BYTES,
		.page_size = PG,
		.data = (uintptr_t)bits,
	};

	memset(bits, 0, GUEST_WORDS * 8);
	assert_int_equal(uiommu_iommufd_ioctl(uiommu_dmadev_ctx(dev),
					      IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd),
			 0);
}

static inline uint64_t bits_count(const uint64_t *bits, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bits[i]);
	return n;
}

static inline bool bit_is_set(const uint64_t *bits, uint64_t k)
{
	return (bits[k / 64] >> (k % 64)) & 1;
}

/* First bit of @a not in @b | @c (either may be NULL), or UINT64_MAX. */
static inline uint64_t first_not_in(const uint64_t *a, const uint64_t *b, const uint64_t *c,
				    uint64_t words)
{
	for (uint64_t i = 0; i < words; i++) {
		uint64_t rest = a[i] & ~((b ? b[i] : 0) | (c ? c[i] : 0));

		if (rest)
			return i * 64 + (uint64_t)__builtin_ctzll(rest);
	}
	return UINT64_MAX;
}

static inline struct uiommu_dmadev_stats stats_of(struct uiommu_dmadev *dev)
{
	struct uiommu_dmadev_stats st;

	uiommu_dmadev_get_stats(dev, &st);
	return st;
}

static inline struct uiommu_dmadev_verify verify_ok(struct uiommu_dmadev *dev)
{
	struct uiommu_dmadev_verify v;

	assert_int_equal(uiommu_dmadev_verify(dev, &v), 0);
	if (v.bad)
		fail_msg("verify: %llu bad, first at %#llx", (unsigned long long)v.bad,
			 (unsigned long long)v.first_bad_gpa);
	return v;
}

/* Runs the device until it has made at least @writes more writes (bounded wait). */
static inline void run_until_writes(struct uiommu_dmadev *dev, uint64_t writes)
{
	uint64_t start = stats_of(dev).writes, deadline = now_ns() + 10000000000ull;

	while (stats_of(dev).writes - start < writes && now_ns() < deadline)
		sleep_ms(1);
	assert_true(stats_of(dev).writes - start >= writes);
}

#endif
