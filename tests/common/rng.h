/* SPDX-License-Identifier: MIT */
/*
 * The pseudo-random generator of tests and benchmarks: splitmix64, small and
 * reproducible from a seed, and the seed itself from UIOMMU_SEED or the clock
 * so that a failing randomized test can be replayed.
 */
#ifndef UIOMMU_TEST_RNG_H
#define UIOMMU_TEST_RNG_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t seed_from_env(void)
{
	const char *env = getenv("UIOMMU_SEED");

	return env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
}

#endif
