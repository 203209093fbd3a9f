/* SPDX-License-Identifier: MIT */
/*
 * Scaffolding of randomized tests: one seed per test binary (UIOMMU_SEED or
 * the clock), a generator drawn from it, and CHECK(), which fails with the
 * seed and operation number that reproduce the failure.
 */
#ifndef UIOMMU_TEST_SEEDED_H
#define UIOMMU_TEST_SEEDED_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>

#include "rng.h"

static uint64_t seed __attribute__((unused));
static uint64_t rng_state __attribute__((unused));
static size_t op_index __attribute__((unused));

static inline void seed_rng(void)
{
	seed = seed_from_env();
	rng_state = seed;
	op_index = 0;
}

/* A cmocka group setup that seeds and prints the seed. */
static inline int setup_seed(void **state)
{
	(void)state;
	seed_rng();
	print_message("UIOMMU_SEED=%" PRIu64 "\n", seed);
	return 0;
}

static inline uint64_t rnd(void)
{
	return splitmix64(&rng_state);
}

static inline uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static inline void fill_random(void *buf, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		((uint8_t *)buf)[i] = (uint8_t)rnd();
}

/* Fails the test with the seed that reproduces it. */
static inline void check_true(bool ok, const char *expr, int line)
{
	if (!ok)
		fail_msg("UIOMMU_SEED=%" PRIu64 " op %zu: line %d: check failed: %s", seed, op_index,
			 line, expr);
}

#define CHECK(cond) check_true((cond), #cond, __LINE__)

#endif
