/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers. Every allocation of the library goes through here so
 * that tests can inject a failure at the n-th allocation (the idea of the
 * kernel's fail-nth) and check that each error path undoes its work and leaks
 * nothing. The countdown is per thread: a test that sweeps n does not disturb
 * other threads. Injection is compiled in only with debug checks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

#ifdef UIOMMU_DEBUG_CHECKS
static _Thread_local unsigned long fail_nth;
static _Thread_local bool fail_hit;

static bool should_fail(void)
{
	if (!fail_nth)
		return false;
	if (--fail_nth)
		return false;
	fail_hit = true;
	return true;
}
#else
static bool should_fail(void)
{
	return false;
}
#endif

void uiommu__fail_nth_set(unsigned long n)
{
#ifdef UIOMMU_DEBUG_CHECKS
	fail_nth = n;
	fail_hit = false;
#else
	(void)n;
#endif
}

bool uiommu__fail_nth_hit(void)
{
#ifdef UIOMMU_DEBUG_CHECKS
	return fail_hit;
#else
	return false;
#endif
}

void *uiommu__zalloc(size_t size)
{
	return should_fail() ? NULL : calloc(1, size);
}

void *uiommu__calloc(size_t nmemb, size_t size)
{
	return should_fail() ? NULL : calloc(nmemb, size);
}

void *uiommu__aligned_zalloc(size_t align, size_t size)
{
	void *p;

	if (should_fail() || posix_memalign(&p, align, size))
		return NULL;
	memset(p, 0, size);
	return p;
}

void uiommu__free(void *p)
{
	free(p);
}

int uiommu__range_last(uint64_t start, uint64_t length, uint64_t *last)
{
	if (!length || uiommu_check_add_overflow(start, length - 1, last))
		return -EOVERFLOW;
	return 0;
}
