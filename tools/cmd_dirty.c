/* SPDX-License-Identifier: MIT */
/*
 * uiommu dirty demo: an emulated DMA device writes host memory through the
 * emulated IOMMU while dirty tracking is on; every interval the dirty pages
 * are harvested into a bitmap (GET_DIRTY_BITMAP style) and checked against
 * the device's own log of what it wrote.
 *
 * Check: the device sets a page's bit in its log after each write completes.
 * Before each harvest the log is taken (swapped with zeros). A write that
 * completed before the harvest began must be reported by it; one that raced
 * with it by it or by the next. So the log taken before harvest k must be a
 * subset of reports k-1 and k together. A page missing is a lost dirty page:
 * exit code 4.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty.h>
#include <uiommu/iommu.h>

#include "uiommu.h"

#define DEMO_IOVA 0x100000000ull

enum pattern { PAT_MIXED, PAT_NET, PAT_BLOCK, PAT_RANDOM };

struct demo_cfg {
	uint64_t mem_bytes;
	double seconds;
	unsigned int interval_ms;
	double rate_mbps; /* 0: as fast as possible */
	enum pattern pattern;
	enum uiommu_pt_format format;
	bool large_leaves;
	bool json;
};

struct demo {
	struct demo_cfg cfg;
	uint64_t pg, npages, words;
	unsigned char *host;
	struct uiommu_domain *d;
	struct uiommu_device *dev;
	uint64_t *log;  /* pages the device wrote: set after each write */
	uint64_t *snap; /* the log taken before a harvest */
	uint64_t *report, *prev;
	atomic_bool stop;
	_Atomic uint64_t bytes;
	uint64_t seed;
	uint64_t lost, reported_total, written_total;
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void demo_help(FILE *out)
{
	fprintf(out,
		"usage: uiommu dirty demo [options]\n"
		"  --mem MiB          memory mapped for the device (default 256)\n"
		"  --seconds S        how long the device runs (default 3)\n"
		"  --interval-ms N    harvest interval (default 200)\n"
		"  --rate MB/s        device write rate, 0 = unlimited (default 200)\n"
		"  --pattern P        mixed | net | block | random (default mixed)\n"
		"  --format F         x86 | mock page-table format (default x86)\n"
		"  --large-leaves     map with 2 MiB/1 GiB leaves where aligned\n"
		"  --json             one JSON object per interval and a summary\n"
		"exit: 0 verified, 1 runtime error, 2 usage, 4 a dirty page was lost\n");
}

static int parse_pattern(const char *s, enum pattern *p)
{
	static const char *const names[] = { "mixed", "net", "block", "random" };
	int i = tool_lookup(names, 4, s);

	*p = i < 0 ? *p : (enum pattern)i;
	return i < 0 ? -EINVAL : 0;
}

static int parse_opt(struct demo_cfg *c, int opt, const char *arg)
{
	switch (opt) {
	case 'm':
		c->mem_bytes = strtoull(arg, NULL, 0) << 20;
		return c->mem_bytes ? 0 : -EINVAL;
	case 's':
		c->seconds = atof(arg);
		return c->seconds > 0 ? 0 : -EINVAL;
	case 'i':
		c->interval_ms = (unsigned int)atoi(arg);
		return c->interval_ms ? 0 : -EINVAL;
	case 'r':
		c->rate_mbps = atof(arg);
		return c->rate_mbps >= 0 ? 0 : -EINVAL;
	case 'p':
		return parse_pattern(arg, &c->pattern);
	case 'f':
		c->format = !strcmp(arg, "mock") ? UIOMMU_PT_MOCK : UIOMMU_PT_X86;
		return !strcmp(arg, "mock") || !strcmp(arg, "x86") ? 0 : -EINVAL;
	case 'L':
		c->large_leaves = true;
		return 0;
	case 'j':
		c->json = true;
		return 0;
	}
	return -EINVAL;
}

/* 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct demo_cfg *c)
{
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "seconds", required_argument, NULL, 's' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "rate", required_argument, NULL, 'r' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "format", required_argument, NULL, 'f' },
		{ "large-leaves", no_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*c = (struct demo_cfg){ .mem_bytes = 256ull << 20, .seconds = 3, .interval_ms = 200,
				.rate_mbps = 200 };
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'h')
			return 1;
		if (opt == '?' || parse_opt(c, opt, optarg))
			return -EINVAL;
	}
	return optind == argc ? 0 : -EINVAL;
}

/* ---- the device ---- */

static void log_pages(struct demo *dm, uint64_t off, uint64_t len)
{
	uiommu_bitmap_set_range_atomic(dm->log, off / dm->pg, (off + len - 1) / dm->pg);
}

static uint64_t next_write(struct demo *dm, enum pattern p, uint64_t *ring, uint64_t *len)
{
	uint64_t mem = dm->cfg.mem_bytes;

	if (p == PAT_MIXED)
		p = rnd(&dm->seed) % 8 ? PAT_NET : PAT_BLOCK;
	switch (p) {
	case PAT_NET: /* 1500 B packets into a ring of 2 KiB buffers */
		*len = 1500;
		*ring = (*ring + 2048) % (mem < (8u << 20) ? mem : (8u << 20));
		return *ring;
	case PAT_BLOCK: /* 4-64 KiB at random 4 KiB offsets */
		*len = (1 + rnd(&dm->seed) % 16) * 4096;
		return (rnd(&dm->seed) % (mem / 4096)) * 4096 % (mem - *len + 1);
	default:
		*len = 64;
		return (rnd(&dm->seed) % (mem / 64)) * 64;
	}
}

static void pace(struct demo *dm, uint64_t start_ns, uint64_t bytes)
{
	double due_ns;
	uint64_t now;

	if (dm->cfg.rate_mbps <= 0)
		return;
	due_ns = (double)bytes / (dm->cfg.rate_mbps * 1e6) * 1e9;
	now = tool_now_ns() - start_ns;
	if (due_ns > (double)now + 1e5)
		usleep((useconds_t)((due_ns - (double)now) / 1000));
}

static void *device_main(void *arg)
{
	static unsigned char payload[64 << 10];
	struct demo *dm = arg;
	uint64_t ring = 0, len, start = tool_now_ns(), bytes = 0;

	memset(payload, 0x5a, sizeof(payload));
	while (!atomic_load(&dm->stop)) {
		uint64_t off = next_write(dm, dm->cfg.pattern, &ring, &len);

		if (uiommu_device_dma_write(dm->dev, DEMO_IOVA + off, payload, len))
			break;
		log_pages(dm, off, len);
		bytes += len;
		atomic_store_explicit(&dm->bytes, bytes, memory_order_relaxed);
		pace(dm, start, bytes);
	}
	return NULL;
}

/* ---- harvest and check ---- */

static void take_log(struct demo *dm)
{
	for (uint64_t i = 0; i < dm->words; i++)
		dm->snap[i] = __atomic_exchange_n(&dm->log[i], 0, __ATOMIC_SEQ_CST);
}

/* Pages of the log that neither this report nor the previous one has. */
static uint64_t count_lost(const struct demo *dm)
{
	uint64_t lost = 0;

	for (uint64_t i = 0; i < dm->words; i++)
		lost += (uint64_t)__builtin_popcountll(dm->snap[i] & ~(dm->report[i] | dm->prev[i]));
	return lost;
}

static int harvest(struct demo *dm, uint64_t *ns)
{
	uint64_t *t = dm->prev;
	uint64_t t0;
	int rc;

	dm->prev = dm->report;
	dm->report = t;
	memset(dm->report, 0, dm->words * 8);
	take_log(dm);
	t0 = tool_now_ns();
	rc = uiommu_domain_get_dirty_bitmap(dm->d, DEMO_IOVA, dm->cfg.mem_bytes, dm->pg, 0,
					    dm->report, dm->words * 8);
	*ns = tool_now_ns() - t0;
	return rc;
}

struct round_stats {
	unsigned int round;
	double secs, mbps;
	uint64_t written, reported, lost, harvest_ns;
};

static void print_round(const struct demo *dm, const struct round_stats *r)
{
	if (dm->cfg.json) {
		printf("{\"round\":%u,\"time_s\":%.3f,\"written_pages\":%llu,"
		       "\"reported_pages\":%llu,\"lost_pages\":%llu,\"harvest_us\":%.1f,"
		       "\"device_mbps\":%.1f}\n",
		       r->round, r->secs, (unsigned long long)r->written,
		       (unsigned long long)r->reported, (unsigned long long)r->lost,
		       (double)r->harvest_ns / 1e3, r->mbps);
		return;
	}
	printf("round %3u  t=%6.2fs  device %7.1f MB/s  logged %7llu pages  reported %7llu  "
	       "harvest %8.1f us  %s\n",
	       r->round, r->secs, r->mbps, (unsigned long long)r->written,
	       (unsigned long long)r->reported, (double)r->harvest_ns / 1e3,
	       r->lost ? "LOST PAGES" : "ok");
}

struct round_clock {
	uint64_t start_ns, last_ns, last_bytes;
};

static int one_round(struct demo *dm, unsigned int round, struct round_clock *clk)
{
	struct round_stats r = { .round = round };
	uint64_t bytes, now = tool_now_ns();
	double dt = (double)(now - clk->last_ns) / 1e9;
	int rc = harvest(dm, &r.harvest_ns);

	if (rc)
		return rc;
	bytes = atomic_load_explicit(&dm->bytes, memory_order_relaxed);
	for (uint64_t i = 0; i < dm->words; i++)
		r.written += (uint64_t)__builtin_popcountll(dm->snap[i]);
	r.reported = uiommu_bitmap_count_range(dm->report, 0, dm->npages - 1);
	r.lost = count_lost(dm);
	r.secs = (double)(now - clk->start_ns) / 1e9;
	r.mbps = dt > 0 ? (double)(bytes - clk->last_bytes) / 1e6 / dt : 0;
	dm->lost += r.lost;
	dm->written_total += r.written;
	dm->reported_total += r.reported;
	print_round(dm, &r);
	clk->last_bytes = bytes;
	clk->last_ns = now;
	return 0;
}

/* ---- setup ---- */

static int demo_setup(struct demo *dm)
{
	struct uiommu_domain_cfg dc = { .format = dm->cfg.format };
	int rc;

	dm->pg = dm->cfg.format == UIOMMU_PT_MOCK ? 2048 : 4096;
	dc.pgsize_bitmap = dm->cfg.large_leaves ? 0 : dm->pg;
	dm->npages = dm->cfg.mem_bytes / dm->pg;
	dm->words = uiommu_bitmap_words(dm->npages);
	dm->host = mmap(NULL, dm->cfg.mem_bytes, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	dm->log = calloc(dm->words, 8);
	dm->snap = calloc(dm->words, 8);
	dm->report = calloc(dm->words, 8);
	dm->prev = calloc(dm->words, 8);
	if (dm->host == MAP_FAILED || !dm->log || !dm->snap || !dm->report || !dm->prev)
		return -ENOMEM;
	rc = uiommu_domain_create(&dc, &dm->d);
	rc = rc ? rc : uiommu_device_create(NULL, &dm->dev);
	rc = rc ? rc : uiommu_device_attach(dm->dev, dm->d);
	rc = rc ? rc : uiommu_domain_map(dm->d, DEMO_IOVA, dm->host, dm->cfg.mem_bytes,
					 UIOMMU_PROT_READ | UIOMMU_PROT_WRITE);
	return rc ? rc : uiommu_domain_set_dirty_tracking(dm->d, true);
}

static void demo_teardown(struct demo *dm)
{
	uiommu_device_destroy(dm->dev);
	uiommu_domain_destroy(dm->d);
	if (dm->host && dm->host != MAP_FAILED)
		munmap(dm->host, dm->cfg.mem_bytes);
	free(dm->log);
	free(dm->snap);
	free(dm->report);
	free(dm->prev);
}

static void print_summary(const struct demo *dm, unsigned int rounds, uint64_t bytes)
{
	if (dm->cfg.json) {
		printf("{\"status\":\"%s\",\"rounds\":%u,\"device_bytes\":%llu,"
		       "\"logged_pages\":%llu,\"reported_pages\":%llu,\"lost_pages\":%llu}\n",
		       dm->lost ? "lost" : "verified", rounds, (unsigned long long)bytes,
		       (unsigned long long)dm->written_total,
		       (unsigned long long)dm->reported_total, (unsigned long long)dm->lost);
		return;
	}
	printf("\nstatus:          %s\nrounds:          %u\ndevice wrote:    %.1f MB\n"
	       "logged pages:    %llu\nreported pages:  %llu\nlost pages:      %llu\n",
	       dm->lost ? "LOST DIRTY PAGES" : "verified: every page the device wrote was reported",
	       rounds, (double)bytes / 1e6, (unsigned long long)dm->written_total,
	       (unsigned long long)dm->reported_total, (unsigned long long)dm->lost);
}

static int demo_run(struct demo *dm)
{
	struct round_clock clk = { .start_ns = tool_now_ns() };
	unsigned int round = 0;
	pthread_t th;
	int rc = 0;

	if (pthread_create(&th, NULL, device_main, dm))
		return -EAGAIN;
	clk.last_ns = clk.start_ns;
	while (!rc && (double)(tool_now_ns() - clk.start_ns) / 1e9 < dm->cfg.seconds) {
		usleep(dm->cfg.interval_ms * 1000);
		rc = one_round(dm, ++round, &clk);
	}
	atomic_store(&dm->stop, true);
	pthread_join(th, NULL);
	/* A final round after the device stopped: nothing may be left behind. */
	if (!rc)
		rc = one_round(dm, ++round, &clk);
	if (!rc)
		print_summary(dm, round, atomic_load(&dm->bytes));
	return rc;
}

static int dirty_demo(int argc, char **argv)
{
	struct demo dm;
	int rc;

	memset(&dm, 0, sizeof(dm));
	rc = parse_args(argc, argv, &dm.cfg);
	if (rc) {
		demo_help(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : EXIT_USAGE;
	}
	dm.seed = (uint64_t)tool_now_ns();
	rc = demo_setup(&dm);
	if (!rc)
		rc = demo_run(&dm);
	demo_teardown(&dm);
	if (rc) {
		fprintf(stderr, "uiommu: dirty demo: %s\n", strerror(-rc));
		return EXIT_RUNTIME;
	}
	return dm.lost ? EXIT_VERIFY : 0;
}

int cmd_dirty(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: uiommu dirty <subcommand> [options]\n"
			"  demo   a DMA device alone on the emulated IOMMU\n"
			"  run    a guest (KVM or software vCPUs) and a DMA device, every dirty source\n"
			"`uiommu dirty <subcommand> --help` for its options\n");
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "demo"))
		return dirty_demo(argc - 1, argv + 1);
	if (!strcmp(argv[1], "run"))
		return dirty_run(argc - 1, argv + 1);
	fprintf(stderr, "uiommu: dirty: unknown subcommand '%s'\n", argv[1]);
	return EXIT_USAGE;
}
