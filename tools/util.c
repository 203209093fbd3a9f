/* SPDX-License-Identifier: MIT */
/*
 * Small helpers the CLI commands share: the monotonic clock and looking a
 * word up in a table of option values.
 */
#include <string.h>
#include <time.h>

#include "uiommu.h"

uint64_t tool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tool_lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}
