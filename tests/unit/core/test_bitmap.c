// SPDX-License-Identifier: MIT
/*
 * Tests of the bitmap primitives against the per-bit model in
 * tests/model/bitmap_model.h.
 *
 * The untyped-buffer functions (copy_bits, or_bits, set_bits) are checked
 * exhaustively over source and destination bit offsets 0..63 and lengths
 * 1..256. Each case places its buffers at byte offsets 0, 1 or 3 and either at
 * the very start or at the very end of their heap block: in the ASan build any
 * read or write of a word outside the named bits then fails the test, and in
 * every build the bytes around the destination (filled with a pattern) must
 * come out exactly as the model says. Randomized cases use the seed from
 * UIOMMU_SEED or the clock, printed with any failure.
 */
#include <pthread.h>
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

#include "../../model/bitmap_model.h"


#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail_msg("%s (UIOMMU_SEED=%llu)", #cond, (unsigned long long)seed);        \
	} while (0)

/* ---- untyped buffers: copy_bits, or_bits, set_bits ---- */

enum buf_op { OP_COPY, OP_OR, OP_SET };

static void apply_op(enum buf_op op, void *dst, uint64_t d, const void *src, uint64_t s, uint64_t n)
{
	if (op == OP_COPY)
		uiommu_bitmap_copy_bits(dst, d, src, s, n);
	else if (op == OP_OR)
		uiommu_bitmap_or_bits(dst, d, src, s, n);
	else
		uiommu_bitmap_set_bits(dst, d, n);
}

static void apply_model(enum buf_op op, void *dst, uint64_t d, const void *src, uint64_t s,
			uint64_t n)
{
	if (op == OP_COPY)
		bitmap_model_copy_bits(dst, d, src, s, n);
	else if (op == OP_OR)
		bitmap_model_or_bits(dst, d, src, s, n);
	else if (n)
		bitmap_model_put_range(dst, d, d + n - 1, true);
}

/*
 * Three heap blocks per role. Block 0 holds its buffer at its start (byte
 * offset 0, pattern after it); blocks 1 and 3 hold it flush with their end
 * at byte offsets 1 and 3 (pattern before it).
 */
#define BLOCK_WORDS 8
struct placement {
	uint8_t *block[4];
	size_t size[4];
};

static void placement_init(struct placement *p)
{
	for (int k = 0; k < 4; k++) {
		p->size[k] = BLOCK_WORDS * 8 + (size_t)k;
		p->block[k] = malloc(p->size[k]);
		assert_non_null(p->block[k]);
		fill_random(p->block[k], p->size[k]);
	}
}

static void placement_fini(struct placement *p)
{
	for (int k = 0; k < 4; k++)
		free(p->block[k]);
}

/* Buffer of @words words in block @k: at its start for 0, flush with its end otherwise. */
static uint8_t *place(const struct placement *p, int k, uint64_t words)
{
	return k == 0 ? p->block[0] : p->block[k] + p->size[k] - words * 8;
}

struct exhaustive_ctx {
	struct placement src, dst;
	uint8_t pattern[BLOCK_WORDS * 8 + 3];
	uint8_t model[BLOCK_WORDS * 8 + 3];
};

static void check_one(struct exhaustive_ctx *c, enum buf_op op, unsigned int s, unsigned int d,
		      unsigned int n)
{
	static const int kinds[3] = {0, 1, 3};
	int k = kinds[(s + d + n) % 3];
	uint8_t *block = c->dst.block[k];
	size_t size = c->dst.size[k];
	const uint8_t *src = place(&c->src, k, (s + n - 1) / 64 + 1);
	uint8_t *dst = place(&c->dst, k, (d + n - 1) / 64 + 1);

	memcpy(block, c->pattern, size);
	memcpy(c->model, c->pattern, size);
	apply_op(op, dst, d, src, s, n);
	apply_model(op, c->model + (dst - block), d, src, s, n);
	if (memcmp(block, c->model, size))
		fail_msg("op %d src bit %u dst bit %u nbits %u block %d", op, s, d, n, k);
}

static void exhaustive(enum buf_op op)
{
	struct exhaustive_ctx c;

	placement_init(&c.src);
	placement_init(&c.dst);
	fill_random(c.pattern, sizeof(c.pattern));
	for (unsigned int s = 0; s < 64; s++) {
		for (unsigned int d = 0; d < 64; d++) {
			for (unsigned int n = 1; n <= 256; n++)
				check_one(&c, op, s, d, n);
		}
	}
	placement_fini(&c.src);
	placement_fini(&c.dst);
}

static void test_copy_bits_matches_model_for_all_offsets_and_lengths(void **state)
{
	(void)state;
	exhaustive(OP_COPY);
}

static void test_or_bits_matches_model_for_all_offsets_and_lengths(void **state)
{
	(void)state;
	exhaustive(OP_OR);
}

static void test_set_bits_matches_model_for_all_offsets_and_lengths(void **state)
{
	struct exhaustive_ctx c;

	(void)state;
	placement_init(&c.src);
	placement_init(&c.dst);
	fill_random(c.pattern, sizeof(c.pattern));
	for (unsigned int d = 0; d < 64; d++) {
		for (unsigned int n = 1; n <= 256; n++)
			check_one(&c, OP_SET, 0, d, n);
	}
	placement_fini(&c.src);
	placement_fini(&c.dst);
}

static void test_copy_or_set_bits_of_zero_bits_touch_nothing(void **state)
{
	uint8_t buf[16], before[16];

	(void)state;
	memset(buf, 0xa5, sizeof(buf));
	memcpy(before, buf, sizeof(buf));
	/* NULL buffers prove that nothing is dereferenced. */
	uiommu_bitmap_copy_bits(NULL, 5, NULL, 7, 0);
	uiommu_bitmap_or_bits(NULL, 5, NULL, 7, 0);
	uiommu_bitmap_set_bits(NULL, 5, 0);
	uiommu_bitmap_copy_bits(buf, 3, buf + 8, 9, 0);
	assert_memory_equal(buf, before, sizeof(buf));
}

/* Random long ranges at random bit and byte offsets, with guard bytes around. */
static void random_long_one(enum buf_op op, uint8_t *dst, uint8_t *model, const uint8_t *src,
			    size_t bytes)
{
	uint64_t n = 1 + rnd_below(40000), s = rnd_below(8 * 1024), d = rnd_below(8 * 1024);
	unsigned int soff = (unsigned int)rnd_below(8), doff = (unsigned int)rnd_below(8);

	fill_random(dst, bytes);
	memcpy(model, dst, bytes);
	apply_op(op, dst + doff, d, src + soff, s, n);
	apply_model(op, model + doff, d, src + soff, s, n);
	if (memcmp(dst, model, bytes))
		fail_msg("op %d src +%u bit %llu dst +%u bit %llu nbits %llu (UIOMMU_SEED=%llu)",
			 op, soff, (unsigned long long)s, doff, (unsigned long long)d,
			 (unsigned long long)n, (unsigned long long)seed);
}

static void test_copy_or_set_bits_match_model_on_random_long_ranges(void **state)
{
	size_t bytes = 8 * 1024 / 8 + 40000 / 8 + 64;
	uint8_t *src = malloc(bytes), *dst = malloc(bytes), *model = malloc(bytes);

	(void)state;
	assert_true(src && dst && model);
	fill_random(src, bytes);
	for (int i = 0; i < 60; i++)
		random_long_one((enum buf_op)(i % 3), dst, model, src, bytes);
	free(src);
	free(dst);
	free(model);
}

/* ---- single bits ---- */

static void test_set_clear_and_test_change_only_their_bit(void **state)
{
	uint64_t map[4] = {0}, ref[4] = {0};

	(void)state;
	for (uint64_t b = 0; b < 256; b++) {
		fill_random(map, sizeof(map));
		memcpy(ref, map, sizeof(map));
		uiommu_bitmap_set(map, b);
		bitmap_model_put(ref, b, true);
		assert_memory_equal(map, ref, sizeof(map));
		assert_true(uiommu_bitmap_test(map, b));
		uiommu_bitmap_clear(map, b);
		bitmap_model_put(ref, b, false);
		assert_memory_equal(map, ref, sizeof(map));
		assert_false(uiommu_bitmap_test(map, b));
		uiommu_bitmap_set_atomic(map, b);
		assert_true(uiommu_bitmap_test_atomic(map, b));
		uiommu_bitmap_clear_atomic(map, b);
		assert_false(uiommu_bitmap_test_atomic(map, b));
		assert_memory_equal(map, ref, sizeof(map));
	}
}

static void test_test_and_set_and_clear_return_the_previous_value(void **state)
{
	uint64_t map[2] = {0, 0};

	(void)state;
	for (uint64_t b = 0; b < 128; b += 7) {
		assert_false(uiommu_bitmap_test_and_set_atomic(map, b));
		assert_true(uiommu_bitmap_test_and_set_atomic(map, b));
		assert_true(uiommu_bitmap_test(map, b));
		assert_true(uiommu_bitmap_test_and_clear_atomic(map, b));
		assert_false(uiommu_bitmap_test_and_clear_atomic(map, b));
		assert_false(uiommu_bitmap_test(map, b));
	}
	assert_true(map[0] == 0 && map[1] == 0);
}

/* ---- ranges ---- */

enum range_op { R_SET, R_CLEAR, R_SET_ATOMIC };

static void apply_range(enum range_op op, uint64_t *map, uint64_t first, uint64_t last)
{
	if (op == R_SET)
		uiommu_bitmap_set_range(map, first, last);
	else if (op == R_CLEAR)
		uiommu_bitmap_clear_range(map, first, last);
	else
		uiommu_bitmap_set_range_atomic(map, first, last);
}

static void test_set_clear_range_match_model_for_all_small_ranges(void **state)
{
	uint64_t map[5], ref[5], pattern[5];

	(void)state;
	fill_random(pattern, sizeof(pattern));
	for (int op = R_SET; op <= R_SET_ATOMIC; op++) {
		for (uint64_t first = 0; first < 256; first++) {
			for (uint64_t last = first; last < 256; last++) {
				memcpy(map, pattern, sizeof(map));
				memcpy(ref, pattern, sizeof(ref));
				apply_range((enum range_op)op, map, first, last);
				bitmap_model_put_range(ref, first, last, op != R_CLEAR);
				if (memcmp(map, ref, sizeof(map)))
					fail_msg("op %d first %llu last %llu", op,
						 (unsigned long long)first,
						 (unsigned long long)last);
			}
		}
	}
}

static void test_set_clear_range_match_model_on_random_long_ranges(void **state)
{
	size_t words = 2048;
	uint64_t *map = malloc(words * 8), *ref = malloc(words * 8);

	(void)state;
	assert_true(map && ref);
	for (int i = 0; i < 60; i++) {
		uint64_t first = rnd_below(words * 64),
			 last = first + rnd_below(words * 64 - first);
		int op = i % 3;

		fill_random(map, words * 8);
		memcpy(ref, map, words * 8);
		apply_range((enum range_op)op, map, first, last);
		bitmap_model_put_range(ref, first, last, op != R_CLEAR);
		check(!memcmp(map, ref, words * 8));
	}
	free(map);
	free(ref);
}

/* ---- find and count ---- */

static void check_find_all_from(const uint64_t *map, uint64_t nbits)
{
	for (uint64_t from = 0; from < nbits + 70; from++) {
		uint64_t set = uiommu_bitmap_find_next_set(map, nbits, from);
		uint64_t zero = uiommu_bitmap_find_next_zero(map, nbits, from);

		if (set != bitmap_model_find_next(map, nbits, from, true) ||
		    zero != bitmap_model_find_next(map, nbits, from, false))
			fail_msg("nbits %llu from %llu (UIOMMU_SEED=%llu)",
				 (unsigned long long)nbits, (unsigned long long)from,
				 (unsigned long long)seed);
	}
}

static void test_find_next_set_and_zero_match_model_for_every_start(void **state)
{
	static const uint64_t sizes[] = {1, 2, 63, 64, 65, 127, 128, 129, 255, 300, 511, 640};
	uint64_t map[11];

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int density = 0; density < 5; density++) {
			/* Sparse to dense, garbage past nbits included. */
			for (size_t w = 0; w < 11; w++) {
				uint64_t v = rnd();

				for (int k = 0; k < density; k++)
					v = density < 3 ? v & rnd() : v | rnd();
				map[w] = density == 0 ? 0 : density == 4 ? ~0ull : v;
			}
			check_find_all_from(map, sizes[i]);
			map[sizes[i] / 64] ^= 1ull << (sizes[i] % 64 ? sizes[i] % 64 : 0);
			check_find_all_from(map, sizes[i]);
		}
	}
}

static void test_find_returns_not_found_past_nbits_and_on_uniform_maps(void **state)
{
	uint64_t zeros[3] = {0, 0, 0}, ones[3] = {~0ull, ~0ull, ~0ull};

	(void)state;
	assert_true(uiommu_bitmap_find_next_set(zeros, 150, 0) == UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_zero(ones, 150, 0) == UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_set(ones, 150, 150) == UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_set(ones, 150, UINT64_MAX) == UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_zero(zeros, 150, 151) == UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_set(ones, 0, 0) == UIOMMU_BITMAP_NOT_FOUND);
	/* Bits past nbits in the last word are padding: a zero there is not found. */
	assert_true(uiommu_bitmap_find_next_zero(ones, 150, 149) == UIOMMU_BITMAP_NOT_FOUND);
	zeros[2] = 1ull << 30; /* bit 158, past nbits */
	assert_true(uiommu_bitmap_find_next_set(zeros, 150, 0) == UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_set(zeros, 159, 0) == 158);
	assert_true(uiommu_bitmap_find_next_zero(ones, 192, 0) == UIOMMU_BITMAP_NOT_FOUND);
}

static void test_count_range_matches_model_for_all_small_ranges(void **state)
{
	uint64_t map[4];

	(void)state;
	fill_random(map, sizeof(map));
	for (uint64_t first = 0; first < 256; first++) {
		for (uint64_t last = first; last < 256; last++)
			assert_true(uiommu_bitmap_count_range(map, first, last) ==
				    bitmap_model_count(map, first, last));
	}
	memset(map, 0xff, sizeof(map));
	assert_true(uiommu_bitmap_count_range(map, 0, 255) == 256);
	assert_true(uiommu_bitmap_count_range(map, 3, 3) == 1);
}

static void test_count_range_matches_model_on_random_long_ranges(void **state)
{
	size_t words = 4096;
	uint64_t *map = malloc(words * 8);

	(void)state;
	assert_non_null(map);
	fill_random(map, words * 8);
	for (int i = 0; i < 50; i++) {
		uint64_t first = rnd_below(words * 64),
			 last = first + rnd_below(words * 64 - first);

		check(uiommu_bitmap_count_range(map, first, last) ==
		      bitmap_model_count(map, first, last));
	}
	free(map);
}

/* ---- more than 2^32 bits ---- */

#define BIG_NBITS ((1ull << 32) + 128)
#define BIG_BYTES (BIG_NBITS / 8)
#define TOP (1ull << 32)

/* Untouched pages of a MAP_NORESERVE mapping read as zero and cost nothing. */
static uint64_t *big_map(void)
{
	void *p = mmap(NULL, BIG_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		skip();
	return p;
}

static void test_bits_above_2_pow_32_are_set_found_and_counted(void **state)
{
	uint64_t *map = big_map();

	(void)state;
	uiommu_bitmap_set(map, TOP + 5);
	uiommu_bitmap_set_atomic(map, TOP + 127);
	uiommu_bitmap_set_range(map, TOP - 3, TOP + 2);
	assert_true(uiommu_bitmap_test(map, TOP + 5));
	assert_false(uiommu_bitmap_test(map, 5));
	assert_true(uiommu_bitmap_test_atomic(map, TOP + 127));
	assert_true(uiommu_bitmap_find_next_set(map, BIG_NBITS, 0) == TOP - 3);
	assert_true(uiommu_bitmap_find_next_set(map, BIG_NBITS, TOP + 3) == TOP + 5);
	assert_true(uiommu_bitmap_find_next_set(map, BIG_NBITS, TOP + 6) == TOP + 127);
	assert_true(uiommu_bitmap_find_next_set(map, TOP + 127, TOP + 6) ==
		    UIOMMU_BITMAP_NOT_FOUND);
	assert_true(uiommu_bitmap_find_next_zero(map, BIG_NBITS, TOP - 3) == TOP + 3);
	assert_true(uiommu_bitmap_count_range(map, 0, BIG_NBITS - 1) == 8);
	assert_true(uiommu_bitmap_count_range(map, TOP, TOP + 126) == 4);
	uiommu_bitmap_clear_range(map, TOP - 3, TOP + 127);
	assert_true(uiommu_bitmap_find_next_set(map, BIG_NBITS, 0) == UIOMMU_BITMAP_NOT_FOUND);
	munmap(map, BIG_BYTES);
}

static void test_copy_bits_moves_bits_above_2_pow_32(void **state)
{
	uint64_t *map = big_map(), small[4] = {0}, pattern[4];

	(void)state;
	fill_random(pattern, sizeof(pattern));
	/* Into the high bits and back out at different offsets. */
	uiommu_bitmap_copy_bits(map, TOP + 3, pattern, 5, 200);
	for (uint64_t i = 0; i < 200; i++)
		assert_true(uiommu_bitmap_test(map, TOP + 3 + i) ==
			    bitmap_model_get(pattern, 5 + i));
	uiommu_bitmap_or_bits((uint8_t *)small + 1, 7, map, TOP + 3, 150);
	for (uint64_t i = 0; i < 150; i++)
		assert_true(bitmap_model_get((uint8_t *)small + 1, 7 + i) ==
			    bitmap_model_get(pattern, 5 + i));
	munmap(map, BIG_BYTES);
}

/* A copy of more than 2^32 bits, with shifts, between two big mappings. */
static void test_copy_bits_of_more_than_2_pow_32_bits(void **state)
{
	uint64_t *src = big_map(), *dst = big_map();
	uint64_t n = BIG_NBITS - 64;

	(void)state;
	uiommu_bitmap_set(src, 9);
	uiommu_bitmap_set(src, TOP);
	uiommu_bitmap_set(src, 9 + n - 1);
	uiommu_bitmap_set(src, 9 + n); /* just past the range: must not be copied */
	uiommu_bitmap_copy_bits(dst, 50, src, 9, n);
	assert_true(uiommu_bitmap_find_next_set(dst, BIG_NBITS, 0) == 50);
	assert_true(uiommu_bitmap_find_next_set(dst, BIG_NBITS, 51) == TOP - 9 + 50);
	assert_true(uiommu_bitmap_find_next_set(dst, BIG_NBITS, TOP - 8 + 50) == 50 + n - 1);
	assert_true(uiommu_bitmap_find_next_set(dst, BIG_NBITS, 50 + n) == UIOMMU_BITMAP_NOT_FOUND);
	munmap(src, BIG_BYTES);
	munmap(dst, BIG_BYTES);
}

/* ---- concurrency ---- */

#define MT_WORDS 64
#define MT_ROUNDS 200

struct mt_arg {
	uint64_t *map;
	unsigned int parity;
	pthread_barrier_t *barrier;
};

/* Each thread owns alternate bits, then alternate 16-bit runs, of the same words. */
static void *mt_worker(void *p)
{
	struct mt_arg *a = p;

	for (int round = 0; round < MT_ROUNDS; round++) {
		pthread_barrier_wait(a->barrier);
		for (uint64_t b = a->parity; b < MT_WORDS * 64; b += 2)
			uiommu_bitmap_set_atomic(a->map, b);
		for (uint64_t b = a->parity * 16; b < MT_WORDS * 64; b += 32)
			uiommu_bitmap_set_range_atomic(a->map + MT_WORDS, b, b + 15);
		pthread_barrier_wait(a->barrier);
	}
	return NULL;
}

static void test_atomic_sets_of_disjoint_bits_in_shared_words_lose_none(void **state)
{
	uint64_t map[2 * MT_WORDS];
	pthread_barrier_t barrier;
	pthread_t t[2];
	struct mt_arg args[2];

	(void)state;
	pthread_barrier_init(&barrier, NULL, 3);
	for (unsigned int i = 0; i < 2; i++) {
		args[i] = (struct mt_arg){.map = map, .parity = i, .barrier = &barrier};
		assert_int_equal(pthread_create(&t[i], NULL, mt_worker, &args[i]), 0);
	}
	for (int round = 0; round < MT_ROUNDS; round++) {
		memset(map, 0, sizeof(map));
		pthread_barrier_wait(&barrier);
		pthread_barrier_wait(&barrier);
		assert_true(uiommu_bitmap_count_range(map, 0, 2 * MT_WORDS * 64 - 1) ==
			    2 * MT_WORDS * 64);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&barrier);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_copy_bits_matches_model_for_all_offsets_and_lengths),
	    cmocka_unit_test(test_or_bits_matches_model_for_all_offsets_and_lengths),
	    cmocka_unit_test(test_set_bits_matches_model_for_all_offsets_and_lengths),
	    cmocka_unit_test(test_copy_or_set_bits_of_zero_bits_touch_nothing),
	    cmocka_unit_test(test_copy_or_set_bits_match_model_on_random_long_ranges),
	    cmocka_unit_test(test_set_clear_and_test_change_only_their_bit),
	    cmocka_unit_test(test_test_and_set_and_clear_return_the_previous_value),
	    cmocka_unit_test(test_set_clear_range_match_model_for_all_small_ranges),
	    cmocka_unit_test(test_set_clear_range_match_model_on_random_long_ranges),
	    cmocka_unit_test(test_find_next_set_and_zero_match_model_for_every_start),
	    cmocka_unit_test(test_find_returns_not_found_past_nbits_and_on_uniform_maps),
	    cmocka_unit_test(test_count_range_matches_model_for_all_small_ranges),
	    cmocka_unit_test(test_count_range_matches_model_on_random_long_ranges),
	    cmocka_unit_test(test_bits_above_2_pow_32_are_set_found_and_counted),
	    cmocka_unit_test(test_copy_bits_moves_bits_above_2_pow_32),
	    cmocka_unit_test(test_copy_bits_of_more_than_2_pow_32_bits),
	    cmocka_unit_test(test_atomic_sets_of_disjoint_bits_in_shared_words_lose_none),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
