/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the iommufd conformance tests (uapi-spec §3).
 *
 * Every test drives a context only through uiommu_iommufd_ioctl(), the same
 * entry point a program reaches through /dev/iommu; devices are the only
 * thing set up through the native API (create, bind, attach), because the
 * kernel does that through VFIO, not through iommufd ioctls.
 *
 * The standard device: x86 page-table format, aperture [0, 2^39 - 1], one
 * reserved region [RESV_START, RESV_LAST] (the x86 MSI window), page sizes as
 * asked (4 KiB only gives bit-exact dirty reports). Expected values come from
 * the spec, never from the implementation: every assertion names an exact
 * errno or value.
 */
#ifndef UIOMMU_TEST_UAPI_H
#define UIOMMU_TEST_UAPI_H

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
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/uapi/iommufd.h>

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define U64_MAX UINT64_MAX

#define APERTURE_LAST ((1ull << 39) - 1)
#define RESV_START 0xfee00000ull
#define RESV_LAST 0xfeefffffull

#define MAP_RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)
#define MAP_FIXED_RW (IOMMU_IOAS_MAP_FIXED_IOVA | MAP_RW)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CMD(nr) _IO(IOMMUFD_TYPE, (nr))

static inline uint64_t page_size(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

static inline long io(struct uiommu_ctx *ctx, unsigned long cmd, void *arg)
{
	return uiommu_iommufd_ioctl(ctx, cmd, arg);
}

/* Anonymous read-write host memory aligned to @align; not touched. */
static inline void *host_alloc(uint64_t size, uint64_t align)
{
	void *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(p != MAP_FAILED);
	return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

/* An address no access may succeed on: a PROT_NONE page. */
static inline void *bad_ptr(void)
{
	static void *p;

	if (!p) {
		p = mmap(NULL, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(p != MAP_FAILED);
	}
	return p;
}

/*
 * Two pages, the second PROT_NONE: the returned pointer has @bytes readable
 * and writable bytes before the inaccessible page.
 */
static inline void *before_hole(size_t bytes)
{
	uint64_t pg = page_size();
	char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p + pg, pg, PROT_NONE), 0);
	memset(p, 0, pg);
	return p + pg - bytes;
}

static inline struct uiommu_ctx *ctx_new(void)
{
	struct uiommu_ctx *ctx = NULL;

	assert_int_equal(uiommu_ctx_create(&ctx), 0);
	assert_non_null(ctx);
	return ctx;
}

/* ---- object helpers (assert success) ---- */

static inline uint32_t ioas_alloc(struct uiommu_ctx *ctx)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	assert_int_equal(io(ctx, IOMMU_IOAS_ALLOC, &cmd), 0);
	assert_int_not_equal(cmd.out_ioas_id, 0);
	return cmd.out_ioas_id;
}

static inline long destroy(struct uiommu_ctx *ctx, uint32_t id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return io(ctx, IOMMU_DESTROY, &cmd);
}

static inline long map_va(struct uiommu_ctx *ctx, uint32_t ioas, uint32_t flags, const void *va,
			  uint64_t length, uint64_t *iova)
{
	struct iommu_ioas_map cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = *iova,
	};
	long rc = io(ctx, IOMMU_IOAS_MAP, &cmd);

	if (!rc)
		*iova = cmd.iova;
	return rc;
}

/* FIXED read-write map that must succeed. */
static inline void map_fixed(struct uiommu_ctx *ctx, uint32_t ioas, const void *va,
			     uint64_t length, uint64_t iova)
{
	uint64_t got = iova;

	assert_int_equal(map_va(ctx, ioas, MAP_FIXED_RW, va, length, &got), 0);
	assert_true(got == iova);
}

static inline long unmap(struct uiommu_ctx *ctx, uint32_t ioas, uint64_t iova, uint64_t length,
			 uint64_t *unmapped)
{
	struct iommu_ioas_unmap cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .iova = iova, .length = length
	};
	long rc = io(ctx, IOMMU_IOAS_UNMAP, &cmd);

	if (unmapped)
		*unmapped = cmd.length;
	return rc;
}

/* IOVA_RANGES with room for @cap ranges; *n = num_iovas out, *align. */
static inline long iova_ranges(struct uiommu_ctx *ctx, uint32_t ioas, struct iommu_iova_range *out,
			       uint32_t cap, uint32_t *n, uint64_t *align)
{
	struct iommu_ioas_iova_ranges cmd = {
		.size = sizeof(cmd),
		.ioas_id = ioas,
		.num_iovas = cap,
		.allowed_iovas = (uintptr_t)out,
	};
	long rc = io(ctx, IOMMU_IOAS_IOVA_RANGES, &cmd);

	*n = cmd.num_iovas;
	*align = cmd.out_iova_alignment;
	return rc;
}

static inline uint64_t ioas_alignment(struct uiommu_ctx *ctx, uint32_t ioas)
{
	struct iommu_iova_range r[8];
	uint32_t n;
	uint64_t align;

	assert_int_equal(iova_ranges(ctx, ioas, r, 8, &n, &align), 0);
	return align;
}

static inline long allow_iovas(struct uiommu_ctx *ctx, uint32_t ioas,
			       const struct iommu_iova_range *r, uint32_t n)
{
	struct iommu_ioas_allow_iovas cmd = {
		.size = sizeof(cmd), .ioas_id = ioas, .num_iovas = n, .allowed_iovas = (uintptr_t)r
	};

	return io(ctx, IOMMU_IOAS_ALLOW_IOVAS, &cmd);
}

static inline long option(struct uiommu_ctx *ctx, uint32_t option_id, uint16_t op,
			  uint32_t object_id, uint64_t *val)
{
	struct iommu_option cmd = {
		.size = sizeof(cmd),
		.option_id = option_id,
		.op = op,
		.object_id = object_id,
		.val64 = *val,
	};
	long rc = io(ctx, IOMMU_OPTION, &cmd);

	*val = cmd.val64;
	return rc;
}

/* ---- devices ---- */

static inline struct uiommu_hwdev *hwdev_new(bool dirty, uint64_t pgsizes)
{
	static const struct uiommu_iova_range resv = { RESV_START, RESV_LAST };
	struct uiommu_hwdev_cfg cfg = {
		.name = dirty ? "dirty-dev" : "plain-dev",
		.format = UIOMMU_PT_X86,
		.pgsize_bitmap = pgsizes,
		.aperture_start = 0,
		.aperture_last = APERTURE_LAST,
		.reserved = &resv,
		.nr_reserved = 1,
		.dirty_tracking = dirty,
	};
	struct uiommu_hwdev *dev = NULL;

	assert_int_equal(uiommu_hwdev_create(&cfg, &dev), 0);
	assert_non_null(dev);
	return dev;
}

static inline uint32_t bind(struct uiommu_ctx *ctx, struct uiommu_hwdev *dev)
{
	uint32_t id = 0;

	assert_int_equal(uiommu_ctx_bind(ctx, dev, &id), 0);
	assert_int_not_equal(id, 0);
	return id;
}

static inline long hwpt_alloc(struct uiommu_ctx *ctx, uint32_t dev_id, uint32_t pt_id,
			      uint32_t flags, uint32_t *hwpt)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd), .flags = flags, .dev_id = dev_id, .pt_id = pt_id
	};
	long rc = io(ctx, IOMMU_HWPT_ALLOC, &cmd);

	*hwpt = rc ? 0 : cmd.out_hwpt_id;
	return rc;
}

static inline long set_dirty(struct uiommu_ctx *ctx, uint32_t hwpt, bool enable)
{
	struct iommu_hwpt_set_dirty_tracking cmd = {
		.size = sizeof(cmd),
		.flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
		.hwpt_id = hwpt,
	};

	return io(ctx, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);
}

static inline long get_dirty(struct uiommu_ctx *ctx, uint32_t hwpt, uint32_t flags, uint64_t iova,
			     uint64_t length, uint64_t pgsize, void *data)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {
		.size = sizeof(cmd),
		.hwpt_id = hwpt,
		.flags = flags,
		.iova = iova,
		.length = length,
		.page_size = pgsize,
		.data = (uintptr_t)data,
	};

	return io(ctx, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

/* Bytes of bitmap the spec says a request needs. */
static inline size_t bitmap_bytes(uint64_t length, uint64_t pgsize)
{
	return (size_t)(((length - 1) / (64 * pgsize) + 1) * 8);
}

static inline bool bit_test(const void *bm, uint64_t k)
{
	return (((const uint8_t *)bm)[k / 8] >> (k % 8)) & 1;
}

static inline void bit_set(void *bm, uint64_t k)
{
	((uint8_t *)bm)[k / 8] |= (uint8_t)(1u << (k % 8));
}

static inline uint64_t bits_count(const void *bm, uint64_t nbits)
{
	uint64_t n = 0;

	for (uint64_t k = 0; k < nbits; k++)
		n += bit_test(bm, k);
	return n;
}

/*
 * A context with an IOAS, a dirty-capable device and a plain one (both
 * bound, neither attached), and @size bytes of host memory.
 */
struct env {
	struct uiommu_ctx *ctx;
	uint32_t ioas;
	struct uiommu_hwdev *ddev, *pdev; /* dirty-capable, plain */
	uint32_t ddev_id, pdev_id;
	uint8_t *host;
	uint64_t host_size;
};

static inline void env_init(struct env *e, uint64_t dirty_pgsizes, uint64_t host_size)
{
	memset(e, 0, sizeof(*e));
	e->ctx = ctx_new();
	e->ioas = ioas_alloc(e->ctx);
	e->ddev = hwdev_new(true, dirty_pgsizes);
	e->pdev = hwdev_new(false, 0);
	e->ddev_id = bind(e->ctx, e->ddev);
	e->pdev_id = bind(e->ctx, e->pdev);
	e->host_size = host_size;
	e->host = host_alloc(host_size, 2 * MiB);
}

static inline void env_fini(struct env *e)
{
	uiommu_ctx_destroy(e->ctx);
	uiommu_hwdev_destroy(e->ddev);
	uiommu_hwdev_destroy(e->pdev);
	munmap(e->host, e->host_size);
}

static inline int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	env_init(e, 4 * KiB, 64 * MiB);
	*state = e;
	return 0;
}

static inline int env_teardown(void **state)
{
	env_fini(*state);
	free(*state);
	return 0;
}

/* Attaches @dev_id to @pt (IOAS or HWPT); returns the HWPT id. */
static inline uint32_t attach(struct env *e, uint32_t dev_id, uint32_t pt)
{
	assert_int_equal(uiommu_ctx_attach(e->ctx, dev_id, &pt), 0);
	assert_int_not_equal(pt, 0);
	return pt;
}

static inline void dma_write_byte(struct uiommu_hwdev *dev, uint64_t iova)
{
	uint8_t b = (uint8_t)(iova >> 12) | 1;

	assert_int_equal(uiommu_device_dma_write(uiommu_hwdev_dma(dev), iova, &b, 1), 0);
}

#endif
