/* SPDX-License-Identifier: MIT */
/*
 * `uiommu dirty run`: a guest (KVM vCPUs, or software vCPUs where there is no
 * /dev/kvm, labelled as such) and an emulated DMA device run chosen
 * workloads; every interval one round collects every dirty source (the vCPU
 * source, "iommu" for the device, "vmm" for the VMM's own writes) and a line
 * shows what each source reported, the dirty rate and what collecting cost.
 *
 * Check: the guest keeps a log of the work pages it wrote, the device one of
 * the pages it wrote; both are taken just before the round collects. A write
 * that completed before the collection must be in it; one racing with it in
 * it or the next. So a page in the logs taken before round k must be in the
 * report of round k - 1 or k. A page missing is a lost dirty page: exit 4.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uiommu/bitmap.h>
#include <uiommu/machine.h>

#include "uiommu.h"

struct run_cfg {
	struct uiommu_machine_cfg m;
	struct uiommu_workload wl;
	double seconds;
	unsigned int interval_ms;
	bool json;
};

struct run {
	struct run_cfg cfg;
	struct uiommu_machine *m;
	uint64_t words, work_first, nwork;
	uint64_t *cur, *prev, *glog, *dlog;
	uint64_t lost, intervals, union_total;
	uint64_t src_total[UIOMMU_ROUND_MAX_SOURCES];
};

static void run_help(FILE *out)
{
	fprintf(out,
		"usage: uiommu dirty run [options]\n"
		"  --backend B        kvm | soft (default kvm when /dev/kvm works, else soft)\n"
		"  --mem MiB          guest RAM (default 512)\n"
		"  --dma MiB          the device's DMA region, 0 = no device (default 64)\n"
		"  --vcpus N          vCPUs (default 1)\n"
		"  --workload W       seq | random | hotset[:PAGES%%:WRITES%%] | idle (default random)\n"
		"  --rate N           guest writes, pages/s; 0 = unlimited (default 20000)\n"
		"  --device P         net | block | mixed | idle (default net)\n"
		"  --dma-rate MB/s    device write rate; 0 = unlimited (default 50)\n"
		"  --source S         kvm-log | kvm-clear-log | kvm-ring (default kvm-log)\n"
		"  --ring-entries N   kvm-ring entries per vCPU (default 4096)\n"
		"  --clear-chunk N    kvm-clear-log pages per KVM_CLEAR_DIRTY_LOG (default: source's)\n"
		"  --seconds S        how long to run (default 3)\n"
		"  --interval-ms N    collection interval (default 500)\n"
		"  --json             one JSON object per interval and a summary\n"
		"exit: 0 verified, 1 runtime error, 2 usage, 4 a dirty page was lost\n");
}

static int parse_source(const char *s, struct run_cfg *c)
{
	static const char *const names[] = { "kvm-log", "kvm-clear-log", "kvm-ring" };

	if (tool_lookup(names, 3, s) < 0)
		return -EINVAL;
	c->m.cpu_source = s;
	return 0;
}

static int parse_opt(struct run_cfg *c, int opt, const char *arg)
{
	switch (opt) {
	case 'b':
		c->m.backend = !strcmp(arg, "soft") ? UIOMMU_VM_SOFT : UIOMMU_VM_KVM;
		return !strcmp(arg, "soft") || !strcmp(arg, "kvm") ? 0 : -EINVAL;
	case 'm':
		c->m.mem_bytes = strtoull(arg, NULL, 0) << 20;
		return c->m.mem_bytes ? 0 : -EINVAL;
	case 'd':
		c->m.dma_bytes = strtoull(arg, NULL, 0) << 20;
		return 0;
	case 'v':
		c->m.nr_vcpus = (unsigned int)atoi(arg);
		return c->m.nr_vcpus >= 1 && c->m.nr_vcpus <= UIOMMU_VM_MAX_VCPUS ? 0 : -EINVAL;
	case 'w':
		return tool_parse_workload(arg, &c->wl);
	case 'r':
		c->wl.pages_per_sec = strtoull(arg, NULL, 0);
		return 0;
	case 'D':
		return tool_parse_dma_pattern(arg, &c->m.dma.pattern);
	case 'R':
		c->m.dma.rate_bytes_per_sec = (uint64_t)(atof(arg) * 1e6);
		return atof(arg) >= 0 ? 0 : -EINVAL;
	case 'S':
		return parse_source(arg, c);
	case 'E':
		c->m.ring_entries = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	case 'C':
		c->m.clear_chunk_pages = strtoull(arg, NULL, 0);
		return 0;
	case 's':
		c->seconds = atof(arg);
		return c->seconds > 0 ? 0 : -EINVAL;
	case 'i':
		c->interval_ms = (unsigned int)atoi(arg);
		return c->interval_ms ? 0 : -EINVAL;
	case 'j':
		c->json = true;
		return 0;
	}
	return -EINVAL;
}

static void defaults(struct run_cfg *c)
{
	*c = (struct run_cfg){
		.m = { .mem_bytes = 512ull << 20, .dma_bytes = 64ull << 20, .nr_vcpus = 1,
		       .backend = uiommu_kvm_available() ? UIOMMU_VM_KVM : UIOMMU_VM_SOFT,
		       .cpu_source = "kvm-log", .seed = 1,
		       .dma = { .pattern = UIOMMU_DMADEV_NET, .rate_bytes_per_sec = 50000000 } },
		.wl = { .kind = UIOMMU_WL_RANDOM, .pages_per_sec = 20000, .seed = 1 },
		.seconds = 3,
		.interval_ms = 500,
	};
}

/* 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct run_cfg *c)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "mem", required_argument, NULL, 'm' },
		{ "dma", required_argument, NULL, 'd' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "workload", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "device", required_argument, NULL, 'D' },
		{ "dma-rate", required_argument, NULL, 'R' },
		{ "source", required_argument, NULL, 'S' },
		{ "ring-entries", required_argument, NULL, 'E' },
		{ "clear-chunk", required_argument, NULL, 'C' },
		{ "seconds", required_argument, NULL, 's' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	defaults(c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'h')
			return 1;
		if (opt == '?' || parse_opt(c, opt, optarg))
			return -EINVAL;
	}
	return optind == argc ? 0 : -EINVAL;
}

/* ---- the check ---- */

/* Pages in @log (bit k = page @first + k, @n bits) missing from both reports. */
static uint64_t missing(const struct run *r, const uint64_t *log, uint64_t first, uint64_t n)
{
	uint64_t lost = 0;

	for (uint64_t k = 0; k < n; k++) {
		uint64_t p = first + k;

		if ((log[k / 64] >> (k % 64) & 1) && !uiommu_bitmap_test(r->cur, p) &&
		    !uiommu_bitmap_test(r->prev, p))
			lost++;
	}
	return lost;
}

static int take_logs(struct run *r)
{
	int ret = uiommu_vm_take_write_log(r->m->vm, r->glog);

	memset(r->dlog, 0, r->words * 8);
	if (!ret && r->m->dev)
		uiommu_dmadev_take_log(r->m->dev, r->dlog);
	return ret;
}

/* ---- output ---- */

static void print_header(const struct run *r)
{
	const struct run_cfg *c = &r->cfg;
	struct uiommu_round_stats st;

	uiommu_round_get_stats(r->m->round, &st);
	if (c->json)
		return;
	printf("uiommu dirty run: %s x%u, %llu MiB RAM, %llu MiB DMA region; sources:",
	       uiommu_vm_backend_label(r->m->vm), c->m.nr_vcpus,
	       (unsigned long long)(c->m.mem_bytes >> 20),
	       (unsigned long long)(c->m.dma_bytes >> 20));
	for (unsigned int i = 0; i < st.nr_sources; i++)
		printf(" %s", st.name[i]);
	printf("\n%7s", "t(s)");
	for (unsigned int i = 0; i < st.nr_sources; i++)
		printf(" %13s %9s", st.name[i], "us");
	printf(" %9s %10s %6s\n", "union", "MB/s", "lost");
}

static void print_interval(const struct run *r, double t, uint64_t uni, uint64_t lost)
{
	struct uiommu_round_stats st;
	double mbps = (double)uni * 4096 / 1e6 / (r->cfg.interval_ms / 1e3);

	uiommu_round_get_stats(r->m->round, &st);
	if (r->cfg.json) {
		printf("{\"t\":%.3f,\"sources\":{", t);
		for (unsigned int i = 0; i < st.nr_sources; i++)
			printf("%s\"%s\":{\"pages\":%llu,\"collect_us\":%.1f}", i ? "," : "",
			       st.name[i], (unsigned long long)st.reported[i],
			       (double)st.collect_ns[i] / 1e3);
		printf("},\"union_pages\":%llu,\"dirty_mb_s\":%.1f,\"lost\":%llu}\n",
		       (unsigned long long)uni, mbps, (unsigned long long)lost);
		return;
	}
	printf("%7.2f", t);
	for (unsigned int i = 0; i < st.nr_sources; i++)
		printf(" %13llu %9.1f", (unsigned long long)st.reported[i],
		       (double)st.collect_ns[i] / 1e3);
	printf(" %9llu %10.1f %6llu\n", (unsigned long long)uni, mbps, (unsigned long long)lost);
}

static void print_summary(struct run *r)
{
	struct uiommu_vm_stats vs;
	struct uiommu_dmadev_stats ds = { 0 };

	uiommu_vm_get_stats(r->m->vm, &vs);
	if (r->m->dev)
		uiommu_dmadev_get_stats(r->m->dev, &ds);
	if (r->cfg.json) {
		printf("{\"summary\":{\"backend\":\"%s\",\"intervals\":%llu,\"guest_pages_written\":%llu,"
		       "\"guest_stall_ms\":%.1f,\"dma_bytes\":%llu,\"union_pages\":%llu,"
		       "\"lost\":%llu}}\n",
		       uiommu_vm_backend_label(r->m->vm), (unsigned long long)r->intervals,
		       (unsigned long long)vs.pages_written, (double)vs.stall_ns / 1e6,
		       (unsigned long long)ds.bytes, (unsigned long long)r->union_total,
		       (unsigned long long)r->lost);
		return;
	}
	printf("guest wrote %llu pages (stall %.1f ms, %llu exits), device wrote %llu bytes; "
	       "%llu dirty pages reported over %llu intervals; lost: %llu\n",
	       (unsigned long long)vs.pages_written, (double)vs.stall_ns / 1e6,
	       (unsigned long long)vs.exits, (unsigned long long)ds.bytes,
	       (unsigned long long)r->union_total, (unsigned long long)r->intervals,
	       (unsigned long long)r->lost);
}

/* ---- the loop ---- */

static int one_interval(struct run *r, double t)
{
	uint64_t uni, lost, *tmp;
	int ret = take_logs(r);

	if (!ret)
		ret = uiommu_round_collect(r->m->round);
	if (ret)
		return ret;
	tmp = r->prev;
	r->prev = r->cur;
	r->cur = tmp;
	uni = uiommu_round_take(r->m->round, r->cur);
	lost = missing(r, r->glog, r->work_first, r->nwork) +
	       missing(r, r->dlog, 0, r->m->npages);
	r->lost += lost;
	r->union_total += uni;
	r->intervals++;
	print_interval(r, t, uni, lost);
	return 0;
}

static int run_loop(struct run *r)
{
	uint64_t start = tool_now_ns(), step = r->cfg.interval_ms * 1000000ull;
	uint64_t end = start + (uint64_t)(r->cfg.seconds * 1e9), next = start + step;
	int ret = uiommu_machine_track_start(r->m);

	if (!ret)
		ret = uiommu_round_collect(r->m->round); /* what happened before: not checked */
	if (!ret) {
		uiommu_round_take(r->m->round, r->prev);
		ret = take_logs(r);
	}
	if (!ret)
		ret = uiommu_machine_run(r->m, &r->cfg.wl);
	for (; !ret && next <= end; next += step) {
		uint64_t now = tool_now_ns();

		if (next > now)
			usleep((useconds_t)((next - now) / 1000));
		ret = one_interval(r, (double)(tool_now_ns() - start) / 1e9);
	}
	return ret;
}

static int run_alloc(struct run *r)
{
	uint64_t gpa, bytes;

	r->words = (r->m->npages + 63) / 64;
	uiommu_vm_work_region(r->m->vm, &gpa, &bytes);
	r->work_first = gpa / UIOMMU_VM_PAGE_SIZE;
	r->nwork = bytes / UIOMMU_VM_PAGE_SIZE;
	r->cur = calloc(r->words, 8);
	r->prev = calloc(r->words, 8);
	r->glog = calloc(r->words, 8);
	r->dlog = calloc(r->words, 8);
	return r->cur && r->prev && r->glog && r->dlog ? 0 : -ENOMEM;
}

static void run_free(struct run *r)
{
	uiommu_machine_destroy(r->m);
	free(r->cur);
	free(r->prev);
	free(r->glog);
	free(r->dlog);
}

int dirty_run(int argc, char **argv)
{
	struct run r = { 0 };
	int ret = parse_args(argc, argv, &r.cfg);

	if (ret) {
		run_help(ret > 0 ? stdout : stderr);
		return ret > 0 ? 0 : EXIT_USAGE;
	}
	ret = uiommu_machine_create(&r.cfg.m, &r.m);
	if (!ret)
		ret = run_alloc(&r);
	if (!ret) {
		print_header(&r);
		ret = run_loop(&r);
	}
	if (!ret)
		print_summary(&r);
	else
		fprintf(stderr, "uiommu: dirty run: %s\n", strerror(-ret));
	run_free(&r);
	if (ret)
		return EXIT_RUNTIME;
	return r.lost ? EXIT_VERIFY : 0;
}
