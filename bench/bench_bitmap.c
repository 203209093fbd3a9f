// SPDX-License-Identifier: MIT
/*
 * Bitmap throughput: copy_bits and or_bits at unaligned bit offsets, each
 * beside an aligned memcpy of the same byte count measured in the same run,
 * and find_next_set over an all-zero bitmap beside a naive word OR-reduce.
 *
 * Every figure is GB/s of bitmap (bytes of destination bits moved or bytes of
 * bitmap scanned). A measurement repeats the operation until it has run for
 * about 2 ms and keeps the best of 5 trials, which filters out
 * preemption on a shared machine. The buffer is 1 MiB so that it stays in the
 * cache hierarchy and the figure is the code's, not DRAM's. --quick uses a
 * 4 KiB buffer, a few offsets and short trials: the suite only checks that the
 * benchmark runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uiommu/bitmap.h>

#include "bench.h"

enum bm_op { OP_MEMCPY, OP_COPY, OP_OR, OP_FIND, OP_SCAN };

struct bm_ctx {
	const struct bench_opts *opts;
	uint8_t *dst;
	uint8_t *src;
	uint64_t bytes; /* bitmap bytes per operation */
	uint64_t target_ns;
	int trials;
};

/* Naive all-zero check: OR every word, as a caller without find_next_set would. */
static uint64_t naive_or_reduce(const uint64_t *map, uint64_t nwords)
{
	uint64_t acc = 0;

	for (uint64_t i = 0; i < nwords; i++)
		acc |= map[i];
	return acc;
}

static void run_once(const struct bm_ctx *c, enum bm_op op, unsigned int dbit, unsigned int sbit)
{
	/* Offsets within one word; the bit count stays the byte count * 8. */
	uint64_t nbits = c->bytes * 8 - 64;

	switch (op) {
	case OP_MEMCPY:
		memcpy(c->dst, c->src, c->bytes);
		break;
	case OP_COPY:
		uiommu_bitmap_copy_bits(c->dst, dbit, c->src, sbit, nbits);
		break;
	case OP_OR:
		uiommu_bitmap_or_bits(c->dst, dbit, c->src, sbit, nbits);
		break;
	case OP_FIND:
		bench_keep(
		    uiommu_bitmap_find_next_set((const uint64_t *)(void *)c->src, c->bytes * 8, 0));
		break;
	case OP_SCAN:
		bench_keep(naive_or_reduce((const uint64_t *)(void *)c->src, c->bytes / 8));
		break;
	}
	bench_clobber();
}

/* GB/s of one timed trial: repeats @op for about target_ns. */
static double trial(const struct bm_ctx *c, enum bm_op op, unsigned int dbit, unsigned int sbit)
{
	uint64_t start = bench_now_ns(), now, reps = 0;

	do {
		run_once(c, op, dbit, sbit);
		reps++;
		now = bench_now_ns();
	} while (now - start < c->target_ns);
	return (double)(c->bytes * reps) / (double)(now - start);
}

/*
 * Best GB/s over the trials of @op and of its baseline @base_op, their trials
 * interleaved so that a burst of load on a shared machine hits both alike.
 */
struct pair {
	double value;
	double base;
};

static struct pair measure(const struct bm_ctx *c, enum bm_op op, enum bm_op base_op,
			   unsigned int dbit, unsigned int sbit)
{
	struct pair p = {0, 0};

	for (int t = 0; t < c->trials; t++) {
		double v = trial(c, op, dbit, sbit), b = trial(c, base_op, 0, 0);

		p.value = v > p.value ? v : p.value;
		p.base = b > p.base ? b : p.base;
	}
	return p;
}

static void report(const struct bm_ctx *c, const char *name, const char *what, struct pair p,
		   const char *base_name, const char *goal)
{
	char metric[64];

	snprintf(metric, sizeof(metric), "%s_%s", name, what);
	bench_report(c->opts, "bitmap", metric, p.value, "GB/s", base_name, p.base, goal);
}

/*
 * Sweeps source offsets 1..63 (destination bit 0) and destination offsets
 * 1..63 (source bit 0). "min" is the offset with the lowest ratio to the
 * memcpy measured beside it; "mean" averages both over all offsets.
 */
static void sweep(const struct bm_ctx *c, enum bm_op op, const char *name)
{
	unsigned int step = c->opts->quick ? 21 : 1, n = 0;
	struct pair min = {0, 0}, sum = {0, 0}, p;

	for (unsigned int o = 1; o < 64; o += step) {
		for (int side = 0; side < 2; side++) {
			p = side ? measure(c, op, OP_MEMCPY, o, 0)
				 : measure(c, op, OP_MEMCPY, 0, o);
			if (!n || p.value / p.base < min.value / min.base)
				min = p;
			sum.value += p.value;
			sum.base += p.base;
			n++;
		}
	}
	sum.value /= n;
	sum.base /= n;
	report(c, name, "offsets_1_63_min", min, "memcpy_aligned", ">= 0.5x memcpy");
	report(c, name, "offsets_1_63_mean", sum, "memcpy_aligned", ">= 0.5x memcpy");
	report(c, name, "src13_dst37", measure(c, op, OP_MEMCPY, 37, 13), "memcpy_aligned",
	       ">= 0.5x memcpy");
	report(c, name, "aligned_bits", measure(c, op, OP_MEMCPY, 0, 0), "memcpy_aligned",
	       ">= 0.5x memcpy");
}

/* At odd buffer addresses (+1 and +3 bytes), as a user bitmap may be. */
static void odd_address(const struct bm_ctx *c, enum bm_op op, const char *name)
{
	struct bm_ctx odd = *c;
	struct pair p = {0, 0};

	odd.dst = c->dst + 1;
	odd.src = c->src + 3;
	for (int t = 0; t < c->trials; t++) {
		double v = trial(&odd, op, 29, 5), b = trial(c, OP_MEMCPY, 0, 0);

		p.value = v > p.value ? v : p.value;
		p.base = b > p.base ? b : p.base;
	}
	report(c, name, "odd_addr_src5_dst29", p, "memcpy_aligned", ">= 0.5x memcpy");
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	struct bm_ctx c;

	bench_parse(argc, argv, &opts);
	c.opts = &opts;
	c.bytes = opts.quick ? 4096 : 1u << 20;
	c.target_ns = opts.quick ? 200000 : 2000000;
	c.trials = opts.quick ? 1 : 5;
	/*
	 * 64 spare bytes for the odd-address runs. The destination sits 1 KiB
	 * into its block so that source and destination do not share their
	 * offset in a 4 KiB page, which would stall loads behind stores (4K
	 * aliasing) and measure the allocator rather than the code.
	 */
	c.dst = aligned_alloc(64, c.bytes + 64 + 1024);
	if (c.dst)
		c.dst += 1024;
	c.src = aligned_alloc(64, c.bytes + 64);
	if (!c.dst || !c.src) {
		fprintf(stderr, "bench_bitmap: out of memory\n");
		return 1;
	}
	for (uint64_t i = 0; i < c.bytes + 64; i++)
		c.src[i] = (uint8_t)(i * 131 + 7);
	memset(c.dst, 0, c.bytes + 64);

	sweep(&c, OP_COPY, "copy_bits");
	odd_address(&c, OP_COPY, "copy_bits");
	sweep(&c, OP_OR, "or_bits");
	odd_address(&c, OP_OR, "or_bits");

	memset(c.src, 0, c.bytes + 64);
	report(&c, "find_next_set", "all_zero", measure(&c, OP_FIND, OP_SCAN, 0, 0),
	       "naive_or_reduce", ">= 1x naive scan");
	free(c.dst - 1024);
	free(c.src);
	return 0;
}
