/* SPDX-License-Identifier: MIT */
/*
 * Small helpers the CLI commands share: the monotonic clock, looking a word
 * up in a table of option values, and the guest workload option.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uiommu/vm.h>

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

int tool_parse_workload(const char *s, struct uiommu_workload *wl)
{
	static const char *const names[] = { "idle", "seq", "random" };
	int i = tool_lookup(names, 3, s);
	char tail;

	if (i >= 0) {
		wl->kind = (enum uiommu_workload_kind)i;
		return 0;
	}
	if (strncmp(s, "hotset", 6))
		return -EINVAL;
	wl->kind = UIOMMU_WL_HOTSET;
	wl->hot_pages_pct = 10;
	wl->hot_writes_pct = 90;
	if (!s[6])
		return 0;
	if (sscanf(s + 6, ":%u:%u%c", &wl->hot_pages_pct, &wl->hot_writes_pct, &tail) != 2)
		return -EINVAL;
	return wl->hot_pages_pct >= 1 && wl->hot_pages_pct <= 100 && wl->hot_writes_pct <= 100
		       ? 0
		       : -EINVAL;
}
