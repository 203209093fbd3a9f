// SPDX-License-Identifier: MIT
/*
 * Dirty harvest: read-and-clear of 16 GiB of IOVA mapped at 4 KiB leaves
 * (4M leaves, an x86 domain limited to 4 KiB pages), in µs per GiB, with
 * 0 %, 0.1 %, 10 % and 100 % of the pages dirty.
 *
 * This is the per-iteration cost a pre-copy loop pays to learn what the
 * devices wrote. The dirty bits are kept densely in the page table (32 KiB
 * per GiB) under summary bits, so a sparse harvest should cost close to
 * nothing and a full one close to a scan of an equal flat bitmap with an
 * atomic clear per word.
 *
 * Setup (untimed): the IOVA space is backed by one 64 MiB host buffer mapped
 * again and again at consecutive IOVAs, so that dirtying every page touches
 * 64 MiB of RAM and not 16 GiB. Pages are dirtied by 1-byte DMA writes from a
 * device with tracking on; 0.1 % and 10 % use a fixed set of pages drawn
 * uniformly at random (selection sampling: exactly that many, distinct).
 *
 * Timed: one uiommu_domain_read_and_clear_dirty() over the whole range into
 *  (a) "native": a minimal sink that ORs whole run words into a flat bitmap
 *      (runs of 4 KiB pages at 64-page aligned IOVAs; anything else bit by
 *      bit), and
 *  (b) "report": uiommu_domain_get_dirty_bitmap() into a 512 KiB user bitmap.
 * Pages are dirtied again between repetitions and the median is reported;
 * every harvest is checked to report exactly the pages dirtied.
 *
 * Baseline, same run: the anchors' naive scan, an OR-reduce of an all-zero
 * flat bitmap of the same size (one bit per 4 KiB page), in µs per GiB.
 * --quick: 64 MiB and one repetition.
 */
#include "rng.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <uiommu/dirty.h>
#include <uiommu/iommu.h>

#include "bench.h"

#define PAGE_SHIFT 12
#define PAGE_SIZE (1ull << PAGE_SHIFT)
#define GIB (1ull << 30)
#define HOST_BYTES (64ull << 20)
#define FULL_BYTES (16ull * GIB)
#define QUICK_BYTES (64ull << 20)
#define FULL_REPS 7
#define SCAN_REPS 101
#define MAX_REPS 101
#define SEED 0x5eedf00dull

enum hv_variant { HV_NATIVE, HV_REPORT };

struct hv_ctx {
	const struct bench_opts *opts;
	struct uiommu_domain *dom;
	struct uiommu_device *dev;
	uint8_t *host;
	uint64_t bytes;      /* IOVA [0, bytes) is mapped */
	uint64_t npages;
	uint64_t *map;       /* flat bitmap, one bit per page */
	uint64_t map_words;
	uint32_t *pages;     /* pages to dirty; NULL means every page */
	uint64_t nr_pages;   /* how many pages are dirtied */
	int reps;
	double scan_us_gib; /* baseline */
};

struct flat_sink {
	uint64_t *map;
	uint64_t nbits;
};

struct dirty_case {
	double fraction;
	const char *label;
	const char *goal;
};

static const struct dirty_case cases[] = {
	{ 0.0, "0% dirty (clean)", "-" },
	{ 0.001, "0.1% dirty", "<= 3 us/GiB" },
	{ 0.1, "10% dirty", "-" },
	{ 1.0, "100% dirty", "<= 15 us/GiB" },
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return splitmix64(&rng_state);
}

static double us_per_gib(uint64_t ns, uint64_t bytes)
{
	return (double)ns / 1e3 / ((double)bytes / (double)GIB);
}

/* ---- the sink of the native variant ---- */

static void flat_set_slow(struct flat_sink *s, const struct uiommu_dirty_run *run)
{
	for (uint64_t j = 0; j < run->nbits; j++) {
		uint64_t first, last;

		if (!(run->bits[j / 64] & (1ull << (j % 64))))
			continue;
		first = (run->iova + (j << run->pgshift)) >> PAGE_SHIFT;
		last = (run->iova + ((j + 1) << run->pgshift) - 1) >> PAGE_SHIFT;
		for (uint64_t p = first; p <= last && p < s->nbits; p++)
			s->map[p / 64] |= 1ull << (p % 64);
	}
}

/* ORs a run into the flat bitmap: whole words when it is 64-page aligned. */
static int flat_sink_fn(void *opaque, const struct uiommu_dirty_run *run)
{
	struct flat_sink *s = opaque;
	uint64_t first = run->iova >> PAGE_SHIFT;

	if (run->pgshift == PAGE_SHIFT && !(first % 64) && !(run->nbits % 64) &&
	    first + run->nbits <= s->nbits) {
		uint64_t *dst = &s->map[first / 64];

		for (uint64_t i = 0; i < run->nbits / 64; i++)
			dst[i] |= run->bits[i];
		return 0;
	}
	flat_set_slow(s, run);
	return 0;
}

/* ---- setup ---- */

static int setup_domain(struct hv_ctx *c)
{
	struct uiommu_domain_cfg dcfg = { .format = UIOMMU_PT_X86, .pgsize_bitmap = PAGE_SIZE };
	uint64_t host_bytes = c->bytes < HOST_BYTES ? c->bytes : HOST_BYTES;
	int rc;

	c->host = mmap(NULL, host_bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->host == MAP_FAILED)
		return -1;
	memset(c->host, 0, host_bytes); /* fault it in now, not while dirtying */
	rc = uiommu_domain_create(&dcfg, &c->dom);
	if (rc)
		return rc;
	/* The same host memory again and again: 16 GiB of IOVA, 64 MiB of RAM. */
	for (uint64_t iova = 0; iova < c->bytes && !rc; iova += host_bytes)
		rc = uiommu_domain_map(c->dom, iova, c->host, host_bytes,
				       UIOMMU_PROT_READ | UIOMMU_PROT_WRITE);
	if (!rc)
		rc = uiommu_device_create(NULL, &c->dev);
	if (!rc)
		rc = uiommu_device_attach(c->dev, c->dom);
	if (!rc)
		rc = uiommu_domain_set_dirty_tracking(c->dom, true);
	return rc;
}

/* Allocates @words words of real (faulted-in, zeroed) memory. */
static uint64_t *alloc_words(uint64_t words)
{
	uint64_t *p = aligned_alloc(64, words * sizeof(*p));

	if (!p)
		return NULL;
	/* Two stores kept apart: a plain zeroing could become an untouched calloc. */
	memset(p, 0xff, words * sizeof(*p));
	bench_clobber();
	memset(p, 0, words * sizeof(*p));
	return p;
}

/* Exactly @k distinct pages out of c->npages, uniformly (Knuth's algorithm S). */
static int pick_pages(struct hv_ctx *c, uint64_t k)
{
	uint64_t got = 0;

	free(c->pages);
	c->pages = NULL;
	c->nr_pages = k;
	if (k == c->npages)
		return 0;
	c->pages = malloc((k ? k : 1) * sizeof(*c->pages));
	if (!c->pages)
		return -1;
	for (uint64_t i = 0; i < c->npages && got < k; i++) {
		double u = (double)(rnd() >> 11) * 0x1p-53;

		if ((double)(c->npages - i) * u < (double)(k - got))
			c->pages[got++] = (uint32_t)i;
	}
	return got == k ? 0 : -1;
}

static int dirty_pages(struct hv_ctx *c)
{
	static const uint8_t one = 1;

	for (uint64_t i = 0; i < c->nr_pages; i++) {
		uint64_t page = c->pages ? c->pages[i] : i;

		if (uiommu_device_dma_write(c->dev, page << PAGE_SHIFT, &one, 1))
			return -1;
	}
	return 0;
}

/* ---- timed parts ---- */

static uint64_t or_reduce(const uint64_t *map, uint64_t words)
{
	uint64_t acc = 0;

	for (uint64_t i = 0; i < words; i++)
		acc |= map[i];
	return acc;
}

/* The baseline: the naive scan of an all-zero flat bitmap of the same size. */
static double scan_baseline(const struct hv_ctx *c)
{
	uint64_t *zero = alloc_words(c->map_words);
	uint64_t ns[SCAN_REPS];
	int reps = c->opts->quick ? 3 : SCAN_REPS;

	if (!zero)
		return 0;
	for (int r = 0; r < reps; r++) {
		uint64_t t0 = bench_now_ns();

		bench_keep(or_reduce(zero, c->map_words));
		ns[r] = bench_now_ns() - t0;
	}
	free(zero);
	return us_per_gib(bench_median_u64(ns, reps), c->bytes);
}

static int harvest_once(struct hv_ctx *c, enum hv_variant v)
{
	struct flat_sink sink = { .map = c->map, .nbits = c->npages };

	if (v == HV_NATIVE)
		return uiommu_domain_read_and_clear_dirty(c->dom, 0, c->bytes, 0, flat_sink_fn,
							  &sink);
	return uiommu_domain_get_dirty_bitmap(c->dom, 0, c->bytes, PAGE_SIZE, 0, c->map,
					      c->map_words * sizeof(uint64_t));
}

static uint64_t count_bits(const uint64_t *map, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(map[i]);
	return n;
}

/* Median ns of one harvest of c->nr_pages dirty pages; 0 on error. */
static uint64_t time_harvest(struct hv_ctx *c, enum hv_variant v)
{
	uint64_t ns[MAX_REPS];

	for (int r = 0; r < c->reps; r++) {
		uint64_t t0, t1;
		int rc;

		if (dirty_pages(c))
			return 0;
		memset(c->map, 0, c->map_words * sizeof(uint64_t));
		t0 = bench_now_ns();
		rc = harvest_once(c, v);
		t1 = bench_now_ns();
		if (rc || count_bits(c->map, c->map_words) != c->nr_pages) {
			fprintf(stderr, "bench_harvest: rc %d, %" PRIu64 " bits, want %" PRIu64
				"\n", rc, count_bits(c->map, c->map_words), c->nr_pages);
			return 0;
		}
		ns[r] = t1 - t0 ? t1 - t0 : 1;
	}
	return bench_median_u64(ns, c->reps);
}

static int run_case(struct hv_ctx *c, const struct dirty_case *dc)
{
	static const char *const names[] = { "native", "report" };
	char metric[64];

	rng_state = SEED;
	if (pick_pages(c, (uint64_t)((double)c->npages * dc->fraction + 0.5)))
		return -1;
	for (int v = HV_NATIVE; v <= HV_REPORT; v++) {
		uint64_t ns = time_harvest(c, (enum hv_variant)v);

		if (!ns)
			return -1;
		snprintf(metric, sizeof(metric), "%s, %s", names[v], dc->label);
		bench_report(c->opts, "harvest", metric, us_per_gib(ns, c->bytes), "us/GiB",
			     "naive scan", c->scan_us_gib, dc->goal);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	struct hv_ctx c = { .opts = &opts };
	int rc;

	bench_parse(argc, argv, &opts);
	c.bytes = opts.quick ? QUICK_BYTES : FULL_BYTES;
	c.npages = c.bytes >> PAGE_SHIFT;
	c.map_words = c.npages / 64;
	c.reps = opts.quick ? 1 : FULL_REPS;
	c.map = alloc_words(c.map_words);
	rc = c.map ? setup_domain(&c) : -1;
	if (rc) {
		fprintf(stderr, "bench_harvest: setup failed (%d)\n", rc);
		return 1;
	}
	c.scan_us_gib = scan_baseline(&c);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !rc; i++)
		rc = run_case(&c, &cases[i]);
	uiommu_device_destroy(c.dev);
	uiommu_domain_destroy(c.dom);
	munmap(c.host, c.bytes < HOST_BYTES ? c.bytes : HOST_BYTES);
	free(c.pages);
	free(c.map);
	return rc ? 1 : 0;
}
