// SPDX-License-Identifier: MIT
/*
 * Type1 dirty bitmaps over many small mappings: VFIO_IOMMU_DIRTY_PAGES
 * GET_BITMAP and VFIO_IOMMU_UNMAP_DMA with GET_DIRTY_BITMAP, through the
 * ioctl front end (uiommu_vfio_container_ioctl with the <linux/vfio.h>
 * structs a VMM passes), over two layouts of the same 151552 pages (592 MiB
 * of IOVA, a bitmap of 18944 bytes):
 *  - unaligned: 4096 adjacent mappings of 37 pages, so every mapping
 *    boundary but the first falls inside a 64-bit bitmap word and the
 *    copy-out must merge the word it shares with the previous mapping;
 *  - aligned: 2368 adjacent mappings of 64 pages (one word each).
 * at three densities: 0 % (nothing written), 1 % (one byte written through
 * the container's rw path into 1 % of the pages, chosen with a fixed seed)
 * and 100 % (an IOMMU-backed group that has pinned nothing is attached, so
 * the kernel's all-dirty rule reports every page). Every report is checked
 * bit for bit against the pages dirtied.
 *
 * Each figure (µs per ioctl, median) is printed twice, beside two baselines
 * measured in the same run over the same bits:
 *  - memcpy: a memcpy of a bitmap of the same size, the floor;
 *  - perbit: the naive merge a kernel-style copy-out would do one bit at a
 *    time, mapping by mapping (test each source bit, set or clear the user
 *    bit at the mapping's offset). The copy-out must not fall to that speed.
 * UNMAP removes the mappings too, which costs more than any merge; so its
 * two lines give what the bitmap adds (median UNMAP with GET_DIRTY_BITMAP
 * minus median plain UNMAP of the same mappings, noisy on a loaded machine),
 * and a third line gives the whole UNMAP beside the plain one. The mappings all
 * share one 64-page host buffer (the container allows one vaddr at many
 * IOVAs), so the RAM touched stays small.
 * --quick: 256 mappings, one repetition.
 */
#include "rng.h"
#include <errno.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <uiommu/bitmap.h>
#include <uiommu/iommufd.h>
#include <uiommu/vfio_type1.h>

#include "bench.h"

#define PAGE_SIZE 4096ull
#define HOST_PAGES 64ull
#define BASE_IOVA (1ull << 32)
#define TOTAL_PAGES 151552ull /* 4096 * 37 = 2368 * 64 */
#define MAX_REPS 15

struct layout {
	const char *name;
	uint64_t map_pages; /* pages per mapping */
};

struct t1_bench {
	const struct bench_opts *opts;
	const struct layout *lay;
	uint64_t npages, nmaps;
	uint8_t *host;
	struct uiommu_vfio_container *c;
	struct uiommu_vfio_group *g;
	struct uiommu_vfio_emudev *emu; /* the rw writer */
	struct uiommu_vfio_group *hg;   /* 100 %: IOMMU-backed, not in pinned scope */
	struct uiommu_hwdev *hw;
	uint64_t *bitmap, *expect, bitmap_bytes;
	uint64_t *dirty;                /* pages written through rw */
	uint64_t nr_dirty;
	int reps;
};

static void emu_unmap(void *opaque, uint64_t iova, uint64_t length)
{
	(void)opaque;
	(void)iova;
	(void)length;
}

static long t1_ioctl(struct t1_bench *b, unsigned long cmd, void *arg)
{
	return uiommu_vfio_container_ioctl(b->c, cmd, arg);
}

static int map_all(struct t1_bench *b)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)b->host, .size = b->lay->map_pages * PAGE_SIZE,
	};
	int ret = 0;

	for (uint64_t i = 0; !ret && i < b->nmaps; i++) {
		map.iova = BASE_IOVA + i * map.size;
		ret = (int)t1_ioctl(b, VFIO_IOMMU_MAP_DMA, &map);
	}
	return ret;
}

static int add_iommu_group(struct t1_bench *b)
{
	struct uiommu_hwdev_cfg cfg = { .name = "bench-hw", .format = UIOMMU_PT_X86,
					.pgsize_bitmap = PAGE_SIZE };
	int ret = uiommu_hwdev_create(&cfg, &b->hw);

	if (!ret)
		ret = uiommu_vfio_group_create(2, 0, &b->hg);
	if (!ret)
		ret = uiommu_vfio_group_add_hwdev(b->hg, "hw", b->hw);
	if (!ret)
		ret = uiommu_vfio_group_set_container(b->hg, b->c);
	return ret;
}

/* A container with an emulated group (and for 100 % an IOMMU group), mapped, tracking. */
static int setup(struct t1_bench *b, bool all_dirty)
{
	static const struct uiommu_vfio_emudev_ops ops = { .dma_unmap = emu_unmap };
	struct vfio_iommu_type1_dirty_bitmap start = {
		.argsz = sizeof(start), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START
	};
	int ret = uiommu_vfio_container_create(&b->c);

	if (!ret)
		ret = uiommu_vfio_group_create(1, UIOMMU_VFIO_GROUP_EMULATED, &b->g);
	if (!ret)
		ret = uiommu_vfio_group_add_emudev(b->g, "emu", &ops, NULL, &b->emu);
	if (!ret)
		ret = uiommu_vfio_group_set_container(b->g, b->c);
	if (!ret && all_dirty)
		ret = add_iommu_group(b);
	if (!ret)
		ret = (int)t1_ioctl(b, VFIO_SET_IOMMU, (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
	if (!ret)
		ret = map_all(b);
	if (!ret)
		ret = (int)t1_ioctl(b, VFIO_IOMMU_DIRTY_PAGES, &start);
	return ret;
}

static void teardown(struct t1_bench *b)
{
	uiommu_vfio_container_destroy(b->c);
	uiommu_vfio_group_destroy(b->hg);
	uiommu_vfio_group_destroy(b->g);
	uiommu_hwdev_destroy(b->hw);
	b->c = NULL;
	b->g = b->hg = NULL;
	b->hw = NULL;
}

/* Exactly k distinct pages, uniformly (selection sampling), and their expected bitmap. */
static int pick_pages(struct t1_bench *b, double fraction)
{
	uint64_t k = (uint64_t)(fraction * (double)b->npages), seen = 0, state = 0x7e1b17ull;

	memset(b->expect, 0, b->bitmap_bytes);
	b->nr_dirty = 0;
	if (fraction >= 1.0) {
		uiommu_bitmap_set_range(b->expect, 0, b->npages - 1);
		return 0;
	}
	free(b->dirty);
	b->dirty = calloc(k ? k : 1, sizeof(*b->dirty));
	if (!b->dirty)
		return -ENOMEM;
	for (uint64_t p = 0; p < b->npages && b->nr_dirty < k; p++, seen++) {
		if ((splitmix64(&state) % (b->npages - seen)) < k - b->nr_dirty) {
			b->dirty[b->nr_dirty++] = p;
			uiommu_bitmap_set(b->expect, p);
		}
	}
	return 0;
}

/* The device writes one byte into each picked page through the container. */
static int dirty_pages(struct t1_bench *b)
{
	uint8_t one = 1;
	int ret = 0;

	for (uint64_t i = 0; !ret && i < b->nr_dirty; i++)
		ret = uiommu_vfio_dma_rw(b->emu, BASE_IOVA + b->dirty[i] * PAGE_SIZE, &one, 1,
					 true);
	return ret;
}

static int check_bitmap(const struct t1_bench *b)
{
	return memcmp(b->bitmap, b->expect, b->bitmap_bytes) ? -EIO : 0;
}

static int get_bitmap(struct t1_bench *b, uint64_t *ns)
{
	uint64_t buf[8] = { 0 }, t0;
	struct vfio_iommu_type1_dirty_bitmap *hdr = (void *)buf;
	struct vfio_iommu_type1_dirty_bitmap_get *get = (void *)hdr->data;
	int ret;

	hdr->argsz = sizeof(*hdr) + sizeof(*get);
	hdr->flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	get->iova = BASE_IOVA;
	get->size = b->npages * PAGE_SIZE;
	get->bitmap = (struct vfio_bitmap){ .pgsize = PAGE_SIZE, .size = b->bitmap_bytes,
					    .data = (__u64 *)b->bitmap };
	memset(b->bitmap, 0, b->bitmap_bytes);
	t0 = bench_now_ns();
	ret = (int)t1_ioctl(b, VFIO_IOMMU_DIRTY_PAGES, buf);
	*ns = bench_now_ns() - t0;
	return ret ? ret : check_bitmap(b);
}

/* UNMAP of every mapping, with the bitmap or without; then map them again. */
static int unmap_all(struct t1_bench *b, bool with_bitmap, uint64_t *ns)
{
	uint64_t buf[8] = { 0 }, t0;
	struct vfio_iommu_type1_dma_unmap *u = (void *)buf;
	struct vfio_bitmap *ub = (void *)u->data;
	int ret;

	u->argsz = (uint32_t)(sizeof(*u) + (with_bitmap ? sizeof(*ub) : 0));
	u->flags = with_bitmap ? VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP : 0;
	u->iova = BASE_IOVA;
	u->size = b->npages * PAGE_SIZE;
	*ub = (struct vfio_bitmap){ .pgsize = PAGE_SIZE, .size = b->bitmap_bytes,
				    .data = (__u64 *)b->bitmap };
	memset(b->bitmap, 0, b->bitmap_bytes);
	t0 = bench_now_ns();
	ret = (int)t1_ioctl(b, VFIO_IOMMU_UNMAP_DMA, u);
	*ns = bench_now_ns() - t0;
	if (!ret && u->size != b->npages * PAGE_SIZE)
		ret = -EIO;
	if (!ret && with_bitmap)
		ret = check_bitmap(b);
	return ret ? ret : map_all(b);
}

/* ---- baselines ---- */

/* The naive copy-out: one bit at a time, mapping by mapping, from @src to @dst. */
static void perbit_merge(const struct t1_bench *b, uint64_t *dst, const uint64_t *src)
{
	for (uint64_t m = 0; m < b->nmaps; m++) {
		uint64_t off = m * b->lay->map_pages;

		for (uint64_t k = 0; k < b->lay->map_pages; k++) {
			if (src[(off + k) / 64] >> ((off + k) % 64) & 1)
				dst[(off + k) / 64] |= 1ull << ((off + k) % 64);
			else
				dst[(off + k) / 64] &= ~(1ull << ((off + k) % 64));
		}
	}
	bench_clobber();
}

/* Median ns of the memcpy and the per-bit merge of the expected bitmap. */
static void baselines(struct t1_bench *b, double *memcpy_ns, double *perbit_ns)
{
	enum { N = 31 };
	double m[N], p[N];

	for (int i = 0; i < N; i++) {
		uint64_t t0 = bench_now_ns();

		memcpy(b->bitmap, b->expect, b->bitmap_bytes);
		bench_clobber();
		m[i] = (double)(bench_now_ns() - t0);
		t0 = bench_now_ns();
		perbit_merge(b, b->bitmap, b->expect);
		p[i] = (double)(bench_now_ns() - t0);
	}
	*memcpy_ns = bench_median(m, N);
	*perbit_ns = bench_median(p, N);
}

/* ---- cases ---- */

struct figures {
	uint64_t get[MAX_REPS], unmap[MAX_REPS], plain[MAX_REPS];
};

static int measure(struct t1_bench *b, struct figures *f)
{
	int ret = 0;

	for (int r = 0; !ret && r < b->reps; r++) {
		ret = dirty_pages(b);
		if (!ret)
			ret = get_bitmap(b, &f->get[r]);
	}
	/* Interleaved, so that the drift of a loaded machine hits both alike. */
	for (int r = 0; !ret && r < b->reps; r++) {
		ret = dirty_pages(b);
		if (!ret)
			ret = unmap_all(b, true, &f->unmap[r]);
		if (!ret)
			ret = unmap_all(b, false, &f->plain[r]);
	}
	return ret;
}

static void report(struct t1_bench *b, const char *op, const char *label, double us,
		   double memcpy_us, double perbit_us)
{
	char metric[64];

	snprintf(metric, sizeof(metric), "%s_%s_%s", op, b->lay->name, label);
	bench_report(b->opts, "type1", metric, us, "us", "memcpy", memcpy_us, "no goal (floor)");
	bench_report(b->opts, "type1", metric, us, "us", "perbit_merge", perbit_us, "ratio < 1");
}

static int run_case(struct t1_bench *b, double fraction, const char *label)
{
	struct figures f;
	double memcpy_ns, perbit_ns, get_us, unmap_us, plain_us;
	char metric[64];
	int ret = pick_pages(b, fraction);

	if (!ret)
		ret = setup(b, fraction >= 1.0);
	if (!ret)
		ret = measure(b, &f);
	teardown(b);
	if (ret)
		return ret;
	baselines(b, &memcpy_ns, &perbit_ns);
	get_us = (double)bench_median_u64(f.get, b->reps) / 1e3;
	unmap_us = (double)bench_median_u64(f.unmap, b->reps) / 1e3;
	plain_us = (double)bench_median_u64(f.plain, b->reps) / 1e3;
	report(b, "get_bitmap", label, get_us, memcpy_ns / 1e3, perbit_ns / 1e3);
	/* What the bitmap adds to the unmap is what compares with the merges. */
	report(b, "unmap_bitmap_extra", label, unmap_us - plain_us, memcpy_ns / 1e3,
	       perbit_ns / 1e3);
	snprintf(metric, sizeof(metric), "unmap_bitmap_%s_%s", b->lay->name, label);
	bench_report(b->opts, "type1", metric, unmap_us, "us", "plain_unmap", plain_us,
		     "what the bitmap adds");
	return 0;
}

static int run_layout(struct t1_bench *b, const struct layout *lay)
{
	static const struct {
		double fraction;
		const char *label;
	} densities[] = { { 0.0, "0pct" }, { 0.01, "1pct" }, { 1.0, "100pct" } };
	int ret = 0;

	b->lay = lay;
	b->nmaps = b->npages / lay->map_pages;
	for (size_t i = 0; !ret && i < sizeof(densities) / sizeof(densities[0]); i++)
		ret = run_case(b, densities[i].fraction, densities[i].label);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct layout layouts[] = { { "unaligned37", 37 }, { "aligned64", 64 } };
	struct bench_opts opts;
	struct t1_bench b = { .opts = &opts };
	int ret = 0;

	bench_parse(argc, argv, &opts);
	/* 256 * 37 and 148 * 64 pages: the same bitmap for both layouts. */
	b.npages = opts.quick ? TOTAL_PAGES / 16 : TOTAL_PAGES;
	b.reps = opts.quick ? 1 : MAX_REPS;
	b.bitmap_bytes = uiommu_bitmap_words(b.npages) * 8;
	b.host = mmap(NULL, HOST_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b.bitmap = calloc(1, b.bitmap_bytes);
	b.expect = calloc(1, b.bitmap_bytes);
	if (b.host == MAP_FAILED || !b.bitmap || !b.expect)
		return 1;
	for (size_t i = 0; !ret && i < sizeof(layouts) / sizeof(layouts[0]); i++)
		ret = run_layout(&b, &layouts[i]);
	if (ret)
		fprintf(stderr, "bench_type1: %s\n", strerror(-ret));
	free(b.dirty);
	free(b.expect);
	free(b.bitmap);
	munmap(b.host, HOST_PAGES * PAGE_SIZE);
	return ret ? 1 : 0;
}
