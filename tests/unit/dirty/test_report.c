// SPDX-License-Identifier: MIT
/*
 * Tests of dirty reports (src/dirty/report.c) without the IOMMU: synthetic runs
 * go to uiommu_dirty_report_sink and the user bitmap is compared with a naive
 * model that, for every set run bit, sets every report bit whose IOVA range
 * meets it (clipped to the request).
 *
 * User bitmaps sit at random byte offsets inside a buffer pre-filled with a
 * pattern: the pattern inside the report must survive (reports only OR) and
 * the guard bytes before the bitmap and after its declared size must come out
 * untouched. Randomized cases use UIOMMU_SEED or the clock, printed on
 * failure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <cmocka.h>

#include "seeded.h"

#include <uiommu/bitmap.h>
#include <uiommu/dirty.h>

#include "../../model/bitmap_model.h"


/* The model: per set run bit, per report bit. */
static void model_sink(uint8_t *bitmap, uint64_t riova, uint64_t rlast, unsigned int ps,
		       const struct uiommu_dirty_run *run)
{
	for (uint64_t j = 0; j < run->nbits; j++) {
		uint64_t a = run->iova + (j << run->pgshift);
		uint64_t b = a + ((1ull << run->pgshift) - 1);

		if (!bitmap_model_get(run->bits, j) || b < riova || a > rlast)
			continue;
		a = a < riova ? riova : a;
		b = b > rlast ? rlast : b;
		for (uint64_t k = (a - riova) >> ps; k <= (b - riova) >> ps; k++)
			bitmap_model_put(bitmap, k, true);
	}
}

#define GUARD 24

/* One request with one or more runs, against the model, with guards around. */
struct case_ctx {
	uint64_t riova, length;
	unsigned int ps;
	unsigned int byte_off;
	uint64_t bytes;
	uint8_t *buf, *model;
	struct uiommu_dirty_report report;
};

static void case_begin(struct case_ctx *c, uint64_t riova, uint64_t length, unsigned int ps,
		       unsigned int byte_off)
{
	c->riova = riova;
	c->length = length;
	c->ps = ps;
	c->byte_off = byte_off;
	c->bytes = uiommu_dirty_bitmap_bytes(length, 1ull << ps);
	c->buf = malloc(c->bytes + 2 * GUARD + 8);
	c->model = malloc(c->bytes + 2 * GUARD + 8);
	assert_true(c->buf && c->model);
	fill_random(c->buf, c->bytes + 2 * GUARD + 8);
	memcpy(c->model, c->buf, c->bytes + 2 * GUARD + 8);
	assert_int_equal(uiommu_dirty_report_init(&c->report, riova, length, 1ull << ps,
						  c->buf + GUARD + byte_off, c->bytes),
			 0);
}

static void case_run(struct case_ctx *c, const struct uiommu_dirty_run *run)
{
	assert_int_equal(uiommu_dirty_report_sink(&c->report, run), 0);
	model_sink(c->model + GUARD + c->byte_off, c->riova, c->riova + c->length - 1, c->ps, run);
}

static void case_end(struct case_ctx *c, const struct uiommu_dirty_run *run)
{
	if (memcmp(c->buf, c->model, c->bytes + 2 * GUARD + 8))
		fail_msg("report iova %#llx length %#llx pgshift %u +%u; run iova %#llx pgshift "
			 "%u nbits %llu (UIOMMU_SEED=%llu)",
			 (unsigned long long)c->riova, (unsigned long long)c->length, c->ps,
			 c->byte_off, (unsigned long long)run->iova, run->pgshift,
			 (unsigned long long)run->nbits, (unsigned long long)seed);
	free(c->buf);
	free(c->model);
}

/* Random run bits: sparse, dense or random density. */
static void random_bits(uint64_t *bits, uint64_t nwords)
{
	int density = (int)rnd_below(4);

	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t v = rnd();

		if (density == 0)
			v &= rnd() & rnd() & rnd();
		else if (density == 1)
			v |= rnd() | rnd();
		bits[w] = v;
	}
}

/*
 * A report of up to ~2000 bits at pgshift @ps and one run at pgshift @rs
 * that starts before, inside or after the report start (by whole run pages,
 * plus @skew bytes) and may end past the report's last.
 */
static void random_case(unsigned int rs, unsigned int ps, uint64_t skew)
{
	uint64_t bits[40], nbits = 1 + rnd_below(40 * 64);
	uint64_t nrep = 1 + rnd_below(2000), riova = (1 + rnd_below(64)) << 24;
	int64_t start_units;
	struct uiommu_dirty_run run;
	struct case_ctx c;

	/* Start anywhere from a little before the report to inside it. */
	if (rs > ps)
		start_units = (int64_t)rnd_below((nrep >> (rs - ps)) + 4) - 2;
	else
		start_units = (int64_t)rnd_below((nrep << (ps - rs)) + 40) - 20;
	random_bits(bits, 40);
	run = (struct uiommu_dirty_run){
	    .iova = riova + (uint64_t)start_units * (1ull << rs) + skew,
	    .pgshift = rs,
	    .bits = bits,
	    .nbits = nbits,
	};
	case_begin(&c, riova, nrep << ps, ps, (unsigned int)rnd_below(8));
	case_run(&c, &run);
	case_end(&c, &run);
}

static void test_sink_matches_model_for_every_ratio_from_2_pow_minus_10_to_10(void **state)
{
	(void)state;
	for (unsigned int ps = 2; ps <= 22; ps++) {
		for (int i = 0; i < 60; i++)
			random_case(12, ps, 0);
	}
}

static void test_sink_matches_model_for_runs_off_the_report_grid(void **state)
{
	(void)state;
	for (unsigned int ps = 2; ps <= 22; ps++) {
		for (int i = 0; i < 20; i++)
			random_case(12, ps, 1 + rnd_below(4095));
	}
}

static void test_sink_matches_model_for_runs_clipped_at_both_edges(void **state)
{
	uint64_t bits[8];
	struct case_ctx c;

	(void)state;
	memset(bits, 0xff, sizeof(bits));
	for (unsigned int ps = 2; ps <= 22; ps++) {
		/* A run of 512 pages centred on a report of 3 run pages or 3 report pages. */
		uint64_t len = (ps > 12 ? 3ull << ps : 3ull << 12);
		struct uiommu_dirty_run run = {
		    .iova = (1ull << 30) - (256ull << 12),
		    .pgshift = 12,
		    .bits = bits,
		    .nbits = 512,
		};

		case_begin(&c, 1ull << 30, len, ps, 3);
		case_run(&c, &run);
		case_end(&c, &run);
	}
}

static void test_sink_ignores_runs_outside_the_request(void **state)
{
	uint64_t bits[2] = {~0ull, ~0ull};
	struct uiommu_dirty_run before = {
	    .iova = 0x100000 - 128 * 4096, .pgshift = 12, .bits = bits, .nbits = 128};
	struct uiommu_dirty_run after = {
	    .iova = 0x100000 + 64 * 4096, .pgshift = 12, .bits = bits, .nbits = 128};
	struct uiommu_dirty_run empty = {.iova = 0x100000, .pgshift = 12, .bits = bits, .nbits = 0};
	struct case_ctx c;

	(void)state;
	case_begin(&c, 0x100000, 64 * 4096, 12, 0);
	case_run(&c, &before);
	case_run(&c, &after);
	case_run(&c, &empty);
	case_end(&c, &after);
}

static void test_sink_keeps_ones_already_in_the_bitmap(void **state)
{
	uint64_t bits[4] = {0}, map[16];
	struct uiommu_dirty_report r;
	struct uiommu_dirty_run run = {.iova = 0, .pgshift = 12, .bits = bits, .nbits = 256};

	(void)state;
	memset(map, 0xff, sizeof(map));
	for (unsigned int ps = 10; ps <= 14; ps++) {
		assert_int_equal(
		    uiommu_dirty_report_init(&r, 0, 256ull << 12, 1ull << ps, map, sizeof(map)), 0);
		uiommu_dirty_report_sink(&r, &run);
		for (int i = 0; i < 16; i++)
			assert_true(map[i] == ~0ull);
	}
	/* Ones and new bits are ORed. */
	map[0] = 0x0f;
	map[1] = map[2] = map[3] = 0;
	bits[0] = 0xf0;
	bits[3] = 1ull << 63;
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 256ull << 12, 4096, map, sizeof(map)), 0);
	uiommu_dirty_report_sink(&r, &run);
	assert_true(map[0] == 0xff && map[1] == 0 && map[2] == 0 && map[3] == 1ull << 63);
}

/* The iommufd selftest passes its bitmap at an odd address such as page + 0xff1. */
static void test_sink_writes_a_bitmap_at_an_odd_address(void **state)
{
	uint64_t bits[64], length = 0x1000000, riova = 0x200000;
	uint8_t *buf, *model;

	(void)state;
	for (unsigned int ps = 9; ps <= 15; ps++) {
		uint64_t bytes = uiommu_dirty_bitmap_bytes(length, 1ull << ps), size;
		struct uiommu_dirty_run run = {.iova = riova + (5ull << 12),
					       .pgshift = 12,
					       .bits = bits,
					       .nbits = 64 * 64 - 7};
		struct uiommu_dirty_report r;

		size = 0xff1 + bytes + GUARD;
		buf = aligned_alloc(4096, (size + 4095) & ~4095ull);
		model = malloc(size);
		assert_true(buf && model);
		random_bits(bits, 64);
		memset(buf, 0x5a, size);
		memcpy(model, buf, size);
		assert_int_equal(
		    uiommu_dirty_report_init(&r, riova, length, 1ull << ps, buf + 0xff1, bytes), 0);
		assert_int_equal(uiommu_dirty_report_sink(&r, &run), 0);
		model_sink(model + 0xff1, riova, riova + length - 1, ps, &run);
		assert_memory_equal(buf, model, size);
		free(buf);
		free(model);
	}
}

/* A bitmap of exactly its declared size at the end of its heap block: ASan checks the rest. */
static void test_sink_writes_nothing_past_the_declared_size(void **state)
{
	uint64_t bits[8];
	uint8_t *block;

	(void)state;
	memset(bits, 0xff, sizeof(bits));
	for (unsigned int ps = 10; ps <= 14; ps++) {
		uint64_t length = 100ull << ps,
			 bytes = uiommu_dirty_bitmap_bytes(length, 1ull << ps);
		struct uiommu_dirty_run run = {
		    .iova = 0, .pgshift = 12, .bits = bits, .nbits = 512};
		struct uiommu_dirty_report r;

		assert_true(bytes == 16);
		block = calloc(1, bytes + 3);
		assert_non_null(block);
		assert_int_equal(
		    uiommu_dirty_report_init(&r, 0, length, 1ull << ps, block + 3, bytes), 0);
		uiommu_dirty_report_sink(&r, &run);
		uiommu_dirty_report_set(&r, 0, UINT64_MAX);
		/* Bits 100..127 are in the bitmap but outside the request. */
		assert_true(bitmap_model_count(block + 3, 0, 99) == 100);
		assert_true(bitmap_model_count(block + 3, 100, 127) == 0);
		free(block);
	}
}

/* ---- more than 2^32 report bits ---- */

#define BIG_REPORT_BITS ((1ull << 32) + (1ull << 17))

static void *big_map(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		skip();
	return p;
}

/*
 * Runs at report bits above 2^32, for equal, extend, small and large combine,
 * compared with the model over the window from report bit k to the end.
 */
static void check_big_window(unsigned int rs, unsigned int ps, uint8_t *ref)
{
	uint64_t bytes = uiommu_dirty_bitmap_bytes(BIG_REPORT_BITS, 1), bits[4] = {0};
	uint64_t *map = big_map(bytes), k = (1ull << 32) + 8, w = BIG_REPORT_BITS - k;
	struct uiommu_dirty_run run = {.iova = k << ps, .pgshift = rs, .bits = bits, .nbits = 256};
	struct uiommu_dirty_report r;

	bits[0] = 0x5;
	bits[3] = 1ull << 63;
	memset(ref, 0, w / 8);
	assert_int_equal(
	    uiommu_dirty_report_init(&r, 0, BIG_REPORT_BITS << ps, 1ull << ps, map, bytes), 0);
	uiommu_dirty_report_sink(&r, &run);
	model_sink(ref, k << ps, (BIG_REPORT_BITS << ps) - 1, ps, &run);
	for (uint64_t b = 0; b < w; b++) {
		if (uiommu_bitmap_test(map, k + b) != bitmap_model_get(ref, b))
			fail_msg("rs %u ps %u report bit 2^32 + %llu", rs, ps,
				 (unsigned long long)(k + b - (1ull << 32)));
	}
	assert_true(uiommu_bitmap_find_next_set(map, BIG_REPORT_BITS, 0) == k);
	assert_true(uiommu_bitmap_count_range(map, 0, BIG_REPORT_BITS - 1) ==
		    bitmap_model_count(ref, 0, w - 1));
	munmap(map, bytes);
}

static void test_sink_converts_runs_at_report_bits_above_2_pow_32(void **state)
{
	static const unsigned int shifts[][2] = {{13, 13}, {21, 13}, {12, 13}, {12, 20}};
	uint8_t *ref = malloc(BIG_REPORT_BITS / 8 - (1ull << 29));

	(void)state;
	assert_non_null(ref);
	for (size_t i = 0; i < 4; i++)
		check_big_window(shifts[i][0], shifts[i][1], ref);
	free(ref);
}

/* The libvfio-user bug class: combining a run longer than 2^32 bits. */
static void test_sink_combines_a_run_of_more_than_2_pow_33_bits(void **state)
{
	uint64_t run_nbits = (1ull << 33) + 128, rep_bits = (1ull << 32) + 64;
	uint64_t run_bytes = run_nbits / 8, rep_bytes = uiommu_dirty_bitmap_bytes(rep_bits, 1);
	uint64_t *bits = big_map(run_bytes), *map = big_map(rep_bytes);
	struct uiommu_dirty_report r;
	struct uiommu_dirty_run run = {.iova = 0, .pgshift = 12, .bits = bits, .nbits = run_nbits};

	(void)state;
	uiommu_bitmap_set(bits, 3);
	uiommu_bitmap_set(bits, (1ull << 32) + 1);
	uiommu_bitmap_set(bits, (1ull << 33) + 5);
	uiommu_bitmap_set(bits, (1ull << 33) + 127);
	assert_int_equal(
	    uiommu_dirty_report_init(&r, 0, rep_bits << 13, 1ull << 13, map, rep_bytes), 0);
	uiommu_dirty_report_sink(&r, &run);
	assert_true(uiommu_bitmap_find_next_set(map, rep_bits, 0) == 1);
	assert_true(uiommu_bitmap_find_next_set(map, rep_bits, 2) == (1ull << 31));
	assert_true(uiommu_bitmap_find_next_set(map, rep_bits, (1ull << 31) + 1) ==
		    (1ull << 32) + 2);
	assert_true(uiommu_bitmap_find_next_set(map, rep_bits, (1ull << 32) + 3) ==
		    (1ull << 32) + 63);
	assert_true(uiommu_bitmap_find_next_set(map, rep_bits, (1ull << 32) + 64) ==
		    UIOMMU_BITMAP_NOT_FOUND);
	munmap(bits, run_bytes);
	munmap(map, rep_bytes);
}

/* ---- uiommu_dirty_report_set ---- */

static void test_report_set_marks_the_pages_met_and_clips_to_the_request(void **state)
{
	uint64_t map[2] = {0, 0};
	struct uiommu_dirty_report r;

	(void)state;
	assert_int_equal(uiommu_dirty_report_init(&r, 0x10000, 100 * 4096, 4096, map, 16), 0);
	uiommu_dirty_report_set(&r, 0x10000 + 4096 + 1, 4096); /* meets pages 1 and 2 */
	assert_true(map[0] == 0x6 && map[1] == 0);
	uiommu_dirty_report_set(&r, 0, 0x10000 + 1); /* ends in page 0 */
	assert_true(map[0] == 0x7);
	uiommu_dirty_report_set(&r, 0x10000 + 99 * 4096, UINT64_MAX); /* wraps: to the end */
	assert_true(map[1] == 1ull << 35);
	uiommu_dirty_report_set(&r, 0x10000 + 100 * 4096, 4096); /* past the request */
	uiommu_dirty_report_set(&r, 0x10000 + 50 * 4096, 0);	 /* empty */
	assert_true(map[0] == 0x7 && map[1] == 1ull << 35);
}

/* ---- validation ---- */

static void test_report_init_rejects_wrapping_ranges_with_eoverflow(void **state)
{
	struct uiommu_dirty_report r;
	uint64_t map[1];

	(void)state;
	assert_int_equal(uiommu_dirty_report_init(&r, 2, UINT64_MAX, 1, map, 8), -EOVERFLOW);
	assert_int_equal(uiommu_dirty_report_init(&r, 0x1000, 0, 4096, map, 8), -EOVERFLOW);
	assert_int_equal(uiommu_dirty_report_init(&r, UINT64_MAX - 0xfff, 0x2000, 4096, map, 8),
			 -EOVERFLOW);
	/* Overflow is checked first: page size 0 and a NULL bitmap come later. */
	assert_int_equal(uiommu_dirty_report_init(&r, 5, 0, 0, NULL, 0), -EOVERFLOW);
}

static void test_report_init_of_length_0_at_iova_0_covers_the_whole_space(void **state)
{
	struct uiommu_dirty_report r;
	uint64_t map[1];

	(void)state;
	assert_true(uiommu_dirty_bitmap_bytes(0, 4096) == 1ull << 49);
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 0, 4096, map, 8), -EINVAL);
	/* A declared size that large passes; nothing is written here. */
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 0, 4096, map, 1ull << 49), 0);
	assert_true(r.iova == 0 && r.last == UINT64_MAX && r.pgshift == 12);
}

static void test_report_init_rejects_bad_page_size_alignment_and_bitmap(void **state)
{
	struct uiommu_dirty_report r;
	uint64_t map[2];

	(void)state;
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 4096, 0, map, 16), -EINVAL);
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 4096, 0, NULL, 0), -EINVAL);
	assert_int_equal(uiommu_dirty_report_init(&r, 0x800, 4096, 4096, map, 16), -EINVAL);
	assert_int_equal(uiommu_dirty_report_init(&r, 0x1000, 0x1800, 4096, map, 16), -EINVAL);
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 4096, 4096, NULL, 16), -EINVAL);
	/* 65 pages need 16 bytes: 15 is short, 16 exact. */
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 65 * 4096, 4096, map, 15), -EINVAL);
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 65 * 4096, 4096, map, 16), 0);
	/* Alignment is checked before the bitmap. */
	assert_int_equal(uiommu_dirty_report_init(&r, 0x800, 4096, 4096, NULL, 0), -EINVAL);
}

static void test_get_dirty_bitmap_validates_before_touching_the_domain(void **state)
{
	uint64_t map[2];

	(void)state;
	/* A NULL domain proves the request is refused before any domain access. */
	assert_int_equal(uiommu_domain_get_dirty_bitmap(NULL, 4096, 0, 4096, 0, map, 16),
			 -EOVERFLOW);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(NULL, 0, 4096, 0, 0, map, 16), -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(NULL, 0x800, 4096, 4096, 0, map, 16),
			 -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(NULL, 0, 4096, 4096, 0, NULL, 16), -EINVAL);
	assert_int_equal(uiommu_domain_get_dirty_bitmap(NULL, 0, 65 * 4096, 4096, 0, map, 8),
			 -EINVAL);
}

/* As in the kernel: a mask test and the shift of the lowest set bit. */
static void test_report_with_a_non_power_of_two_page_size_uses_its_lowest_bit(void **state)
{
	struct uiommu_dirty_report r;
	uint64_t map[1] = {0};

	(void)state;
	assert_int_equal(uiommu_dirty_report_init(&r, 0, 0xc000, 0x3000, map, 8), 0);
	assert_int_equal(r.pgshift, 12);
	/* 0x2000 has a bit of the mask 0x2fff; 0x4000 and 0x1000 have none, so they pass. */
	assert_int_equal(uiommu_dirty_report_init(&r, 0x2000, 0xc000, 0x3000, map, 8), -EINVAL);
	assert_int_equal(uiommu_dirty_report_init(&r, 0x1000, 0xc000, 0x3000, map, 8), 0);
	assert_int_equal(uiommu_dirty_report_init(&r, 0x4000, 0xc000, 0x3000, map, 8), 0);
	uiommu_dirty_report_set(&r, 0x5000, 0x1000);
	assert_true(map[0] == 0x2);
	assert_true(uiommu_dirty_bitmap_bytes(0xc000, 0x3000) == 8);
	assert_true(uiommu_dirty_bitmap_bytes(65 * 0x1000, 0x3000) == 16);
}

static void test_dirty_bitmap_bytes_rounds_to_whole_words(void **state)
{
	(void)state;
	assert_true(uiommu_dirty_bitmap_bytes(4096, 4096) == 8);
	assert_true(uiommu_dirty_bitmap_bytes(64 * 4096, 4096) == 8);
	assert_true(uiommu_dirty_bitmap_bytes(64 * 4096 + 1, 4096) == 16);
	assert_true(uiommu_dirty_bitmap_bytes(65 * 4096, 4096) == 16);
	assert_true(uiommu_dirty_bitmap_bytes(1, 1) == 8);
	assert_true(uiommu_dirty_bitmap_bytes(1ull << 40, 1ull << 21) == (1ull << 19) / 8);
	assert_true(uiommu_dirty_bitmap_bytes(1ull << 63, 1) == 1ull << 60);
	assert_true(uiommu_dirty_bitmap_bytes(0, 1) == 1ull << 61);
	assert_true(uiommu_dirty_bitmap_bytes(4096, 0) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sink_matches_model_for_every_ratio_from_2_pow_minus_10_to_10),
	    cmocka_unit_test(test_sink_matches_model_for_runs_off_the_report_grid),
	    cmocka_unit_test(test_sink_matches_model_for_runs_clipped_at_both_edges),
	    cmocka_unit_test(test_sink_ignores_runs_outside_the_request),
	    cmocka_unit_test(test_sink_keeps_ones_already_in_the_bitmap),
	    cmocka_unit_test(test_sink_writes_a_bitmap_at_an_odd_address),
	    cmocka_unit_test(test_sink_writes_nothing_past_the_declared_size),
	    cmocka_unit_test(test_sink_converts_runs_at_report_bits_above_2_pow_32),
	    cmocka_unit_test(test_sink_combines_a_run_of_more_than_2_pow_33_bits),
	    cmocka_unit_test(test_report_set_marks_the_pages_met_and_clips_to_the_request),
	    cmocka_unit_test(test_report_init_rejects_wrapping_ranges_with_eoverflow),
	    cmocka_unit_test(test_report_init_of_length_0_at_iova_0_covers_the_whole_space),
	    cmocka_unit_test(test_report_init_rejects_bad_page_size_alignment_and_bitmap),
	    cmocka_unit_test(test_get_dirty_bitmap_validates_before_touching_the_domain),
	    cmocka_unit_test(test_report_with_a_non_power_of_two_page_size_uses_its_lowest_bit),
	    cmocka_unit_test(test_dirty_bitmap_bytes_rounds_to_whole_words),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
