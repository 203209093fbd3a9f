/* SPDX-License-Identifier: MIT */
/*
 * Small helpers the CLI commands share: the monotonic clock, looking a word
 * up in a table of option values, the guest workload option and the DMA
 * device's pattern names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uiommu/dmadev.h>
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

/* Indexed by enum uiommu_dmadev_pattern. */
const char *const tool_dma_patterns[TOOL_DMA_PATTERNS] = { "idle", "net", "block", "mixed" };

int tool_parse_dma_pattern(const char *s, enum uiommu_dmadev_pattern *p)
{
	int i = tool_lookup(tool_dma_patterns, TOOL_DMA_PATTERNS, s);

	if (i < 0)
		return -EINVAL;
	*p = (enum uiommu_dmadev_pattern)i;
	return 0;
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
