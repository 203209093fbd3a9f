// SPDX-License-Identifier: MIT
/*
 * The self-checking page content, in C: what software vCPUs write and what
 * they and uiommu_vm_page_check() verify. It must match guest.S word for
 * word (guest_abi.h has the formula): a page written by a KVM guest and
 * checked here, or the reverse, agrees.
 *
 * Software vCPUs store the words with relaxed atomic stores (plain moves on
 * x86): other threads (a migration sender) may read guest memory while they
 * write it, as they may while a real guest runs.
 */
#include <string.h>

#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"

#define WORDS (VM_PAGE / 8)

static uint64_t content_x(uint64_t gpa, uint64_t gen)
{
	return gpa * CONTENT_K1 ^ gen * CONTENT_K2;
}

void content_fill(void *page, uint64_t gpa, uint64_t gen)
{
	uint64_t *w = page, v = content_x(gpa, gen) + 2 * CONTENT_K3;
	size_t i;

	__atomic_store_n(&w[0], gpa, __ATOMIC_RELAXED);
	__atomic_store_n(&w[1], gen, __ATOMIC_RELAXED);
	for (i = 2; i < WORDS; i++, v += CONTENT_K3)
		__atomic_store_n(&w[i], v, __ATOMIC_RELAXED);
}

static bool page_is_zero(const uint64_t *w)
{
	size_t i;

	for (i = 0; i < WORDS; i++)
		if (w[i])
			return false;
	return true;
}

bool content_check(const void *page, uint64_t gpa, uint64_t gen)
{
	const uint64_t *w = page;
	uint64_t v = content_x(gpa, gen) + 2 * CONTENT_K3;
	size_t i;

	if (!gen)
		return page_is_zero(w);
	if (w[0] != gpa || w[1] != gen)
		return false;
	for (i = 2; i < WORDS; i++, v += CONTENT_K3)
		if (w[i] != v)
			return false;
	return true;
}

uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += RNG_GAMMA);

	z = (z ^ (z >> 30)) * RNG_M1;
	z = (z ^ (z >> 27)) * RNG_M2;
	return z ^ (z >> 31);
}

UIOMMU_EXPORT bool uiommu_vm_page_check(const void *page, uint64_t gpa)
{
	const uint64_t *w = page;

	if (!w[1])
		return page_is_zero(w);
	/* Generations are 32-bit in the guest's table. */
	return w[1] <= UINT32_MAX && content_check(page, gpa, w[1]);
}
