/* SPDX-License-Identifier: MIT */
/*
 * The uiommu command-line tool: a git-style command table, one cmd_<name>.c per
 * subcommand.
 */
#ifndef UIOMMU_TOOLS_H
#define UIOMMU_TOOLS_H

/* Exit codes (documented in the README). */
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_SETUP 3     /* migrate: could not set up (memory, /dev/kvm, address, gnuplot) */
#define EXIT_VERIFY 4
#define EXIT_CANCELLED 5 /* migrate: SIGINT or SIGTERM; the source guest runs on */
#define EXIT_SOURCE_PAUSED 6 /* migrate: the receiver may run the guest; the source stays paused */

struct uiommu_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

#include <stdint.h>

int cmd_dirty(int argc, char **argv);
int dirty_run(int argc, char **argv); /* cmd_dirty_run.c */
int cmd_migrate(int argc, char **argv);

/* util.c */
uint64_t tool_now_ns(void);
/* Index of @s in @names (@n of them), or -1. */
int tool_lookup(const char *const *names, int n, const char *s);
/*
 * The guest workload option: idle, seq, random, hotset (10 % of the pages
 * take 90 % of the writes) or hotset:P:W. Sets the kind and the hot-set
 * shares of @wl; -EINVAL for anything else.
 */
struct uiommu_workload;
int tool_parse_workload(const char *s, struct uiommu_workload *wl);
/* The DMA device's patterns by name (idle, net, block, mixed); -EINVAL otherwise. */
#define TOOL_DMA_PATTERNS 4
extern const char *const tool_dma_patterns[TOOL_DMA_PATTERNS];
enum uiommu_dmadev_pattern;
int tool_parse_dma_pattern(const char *s, enum uiommu_dmadev_pattern *p);

#endif
