// SPDX-License-Identifier: MIT
/*
 * DMA path cost: what a device write pays for translation and dirty marking
 * on top of the copy itself, beside a plain memcpy of the same size into the
 * same host memory, measured in the same run.
 *
 * An x86 domain (4 KiB pages only) maps 64 pages of host memory; a device
 * with the default 64-entry IOTLB writes them in turn, so the working set
 * (256 KiB) stays in cache and every figure is overhead, not DRAM bandwidth.
 * Tracking is on. Cases:
 *  - steady write, 4 KiB and 64 B: after a first write, so the IOTLB entry is
 *    warm and the leaf already known dirty (the common state during a
 *    pre-copy round); checked to see no IOTLB miss;
 *  - first write after a harvest, 4 KiB and 64 B: the harvest invalidated the
 *    IOTLB, so each write misses, walks the table and marks the leaf dirty;
 *    only the writes are timed, not the harvest;
 *  - steady read, 4 KiB.
 * The 64 B write is also reported as overhead: DMA ns minus memcpy ns.
 *
 * Baseline: memcpy of the same size at the same host addresses. Its length
 * is hidden from the compiler so that it is a real memcpy call, as in the DMA
 * path, and a barrier after each copy keeps it from being elided.
 * Each figure is the median over repetitions of ns per operation.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uiommu/iommu.h>

#include "bench.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define NPAGES 64
#define IOVA_BASE (1ull << 32)
#define REPS 9
#define QUICK_REPS 3

enum op_kind { OP_DMA_WRITE, OP_DMA_READ, OP_MEMCPY_WRITE, OP_MEMCPY_READ };

struct dma_ctx {
	const struct bench_opts *opts;
	struct uiommu_domain *dom;
	struct uiommu_device *dev;
	uint8_t *host; /* NPAGES pages, mapped at IOVA_BASE */
	uint8_t *buf;  /* the device side of every copy */
	uint64_t iters;
	int reps;
};

struct timing {
	double dma, cpy; /* ns per operation */
};

/* The length as the compiler cannot see it: no inlined fixed-size copy. */
static size_t opaque_len(size_t len)
{
	__asm__ volatile("" : "+r"(len));
	return len;
}

/* Offset of operation @i: page i % NPAGES, then successive @len slots within it. */
static uint64_t op_offset(uint64_t i, size_t len)
{
	return (i % NPAGES) * PAGE_SIZE + ((i / NPAGES) * len) % PAGE_SIZE;
}

static int do_op(const struct dma_ctx *c, enum op_kind k, uint64_t off, size_t len)
{
	switch (k) {
	case OP_DMA_WRITE:
		return uiommu_device_dma_write(c->dev, IOVA_BASE + off, c->buf, len);
	case OP_DMA_READ:
		return uiommu_device_dma_read(c->dev, IOVA_BASE + off, c->buf, len);
	case OP_MEMCPY_WRITE:
		memcpy(c->host + off, c->buf, opaque_len(len));
		break;
	case OP_MEMCPY_READ:
		memcpy(c->buf, c->host + off, opaque_len(len));
		break;
	}
	bench_clobber();
	return 0;
}

/* ns per operation of one repetition of @k, in the steady state; < 0 on error. */
static double steady_rep(const struct dma_ctx *c, enum op_kind k, size_t len)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < c->iters; i++) {
		if (do_op(c, k, op_offset(i, len), len))
			return -1;
	}
	return (double)(bench_now_ns() - t0) / (double)c->iters;
}

/*
 * Medians of @dma and of its memcpy baseline @cpy, repetitions interleaved so
 * that a burst of noise on this shared machine hits both sides alike.
 */
static int time_steady(const struct dma_ctx *c, enum op_kind dma, enum op_kind cpy, size_t len,
		       struct timing *t)
{
	double d[REPS], m[REPS];

	for (int r = 0; r < c->reps; r++) {
		d[r] = steady_rep(c, dma, len);
		m[r] = steady_rep(c, cpy, len);
		if (d[r] < 0)
			return -1;
	}
	t->dma = bench_median(d, c->reps);
	t->cpy = bench_median(m, c->reps);
	return 0;
}

static int count_sink(void *opaque, const struct uiommu_dirty_run *run)
{
	(void)run;
	(*(uint64_t *)opaque)++;
	return 0;
}

/* Harvest (untimed), then time one write to each page: all miss and mark. */
static double first_write_round(const struct dma_ctx *c, size_t len, uint64_t round)
{
	uint64_t runs = 0, t0;

	if (uiommu_domain_read_and_clear_dirty(c->dom, IOVA_BASE, NPAGES * PAGE_SIZE, 0,
					       count_sink, &runs) || !runs)
		return -1;
	t0 = bench_now_ns();
	for (uint64_t p = 0; p < NPAGES; p++) {
		if (uiommu_device_dma_write(c->dev, IOVA_BASE + op_offset(round * NPAGES + p, len),
					    c->buf, len))
			return -1;
	}
	return (double)(bench_now_ns() - t0);
}

static double time_first_write(const struct dma_ctx *c, size_t len)
{
	uint64_t rounds = c->iters / NPAGES ? c->iters / NPAGES : 1;
	double ns[REPS];

	for (int r = 0; r < c->reps; r++) {
		double sum = 0;

		for (uint64_t i = 0; i < rounds; i++) {
			double t = first_write_round(c, len, i);

			if (t < 0)
				return -1;
			sum += t;
		}
		ns[r] = sum / (double)(rounds * NPAGES);
	}
	return bench_median(ns, c->reps);
}

static int setup(struct dma_ctx *c)
{
	struct uiommu_domain_cfg dcfg = { .format = UIOMMU_PT_X86, .pgsize_bitmap = PAGE_SIZE };
	int rc;

	c->host = aligned_alloc(PAGE_SIZE, NPAGES * PAGE_SIZE);
	c->buf = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	if (!c->host || !c->buf)
		return -1;
	memset(c->host, 0, NPAGES * PAGE_SIZE);
	memset(c->buf, 0x5a, PAGE_SIZE);
	rc = uiommu_domain_create(&dcfg, &c->dom);
	if (!rc)
		rc = uiommu_domain_map(c->dom, IOVA_BASE, c->host, NPAGES * PAGE_SIZE,
				       UIOMMU_PROT_READ | UIOMMU_PROT_WRITE);
	if (!rc)
		rc = uiommu_device_create(NULL, &c->dev);
	if (!rc)
		rc = uiommu_device_attach(c->dev, c->dom);
	if (!rc)
		rc = uiommu_domain_set_dirty_tracking(c->dom, true);
	/* Warm up: every IOTLB entry filled, every leaf dirty. */
	for (uint64_t p = 0; p < NPAGES && !rc; p++)
		rc = uiommu_device_dma_write(c->dev, IOVA_BASE + p * PAGE_SIZE, c->buf, PAGE_SIZE);
	return rc;
}

static uint64_t iotlb_misses(const struct dma_ctx *c)
{
	struct uiommu_device_stats st;

	uiommu_device_get_stats(c->dev, &st);
	return st.iotlb_misses;
}

/* Steady writes of @len: reports DMA vs memcpy, and returns both in @t. */
static int report_steady_write(const struct dma_ctx *c, size_t len, const char *metric,
			       const char *baseline, const char *goal, struct timing *t)
{
	uint64_t misses = iotlb_misses(c);

	if (time_steady(c, OP_DMA_WRITE, OP_MEMCPY_WRITE, len, t))
		return -1;
	if (iotlb_misses(c) != misses)
		fprintf(stderr, "bench_dma: %" PRIu64 " IOTLB misses in the steady state\n",
			iotlb_misses(c) - misses);
	bench_report(c->opts, "dma", metric, t->dma, "ns/op", baseline, t->cpy, goal);
	return 0;
}

static int report_first_write(const struct dma_ctx *c, size_t len, const char *metric,
			      const char *baseline)
{
	double dma = time_first_write(c, len);
	double cpy[REPS];

	if (dma < 0)
		return -1;
	for (int r = 0; r < c->reps; r++)
		cpy[r] = steady_rep(c, OP_MEMCPY_WRITE, len);
	bench_report(c->opts, "dma", metric, dma, "ns/op", baseline, bench_median(cpy, c->reps), "-");
	return 0;
}

static int run_all(const struct dma_ctx *c)
{
	struct timing t;

	if (report_steady_write(c, PAGE_SIZE, "write 4 KiB, steady (IOTLB hit)", "memcpy 4 KiB",
				"4 KiB within 1.2x of memcpy", &t) ||
	    report_steady_write(c, 64, "write 64 B, steady (IOTLB hit)", "memcpy 64 B", "-", &t))
		return -1;
	bench_report(c->opts, "dma", "write 64 B, overhead over memcpy", t.dma - t.cpy, "ns",
		     "memcpy 64 B", t.cpy, "64 B: overhead <= 15 ns");
	if (report_first_write(c, PAGE_SIZE, "write 4 KiB, first after harvest", "memcpy 4 KiB") ||
	    report_first_write(c, 64, "write 64 B, first after harvest", "memcpy 64 B"))
		return -1;
	if (time_steady(c, OP_DMA_READ, OP_MEMCPY_READ, PAGE_SIZE, &t))
		return -1;
	bench_report(c->opts, "dma", "read 4 KiB, steady (IOTLB hit)", t.dma, "ns/op",
		     "memcpy 4 KiB", t.cpy, "-");
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	struct dma_ctx c = { .opts = &opts };
	int rc;

	bench_parse(argc, argv, &opts);
	c.iters = opts.quick ? 2048 : 262144;
	c.reps = opts.quick ? QUICK_REPS : REPS;
	rc = setup(&c);
	if (!rc)
		rc = run_all(&c);
	if (rc)
		fprintf(stderr, "bench_dma: failed (%d)\n", rc);
	uiommu_device_destroy(c.dev);
	uiommu_domain_destroy(c.dom);
	free(c.host);
	free(c.buf);
	return rc ? 1 : 0;
}
