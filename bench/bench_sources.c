// SPDX-License-Identifier: MIT
/*
 * Dirty sources: what one collect costs, in µs per GiB of guest memory, with
 * 0.1 %, 10 % and 100 % of the pages dirty, for every source this machine
 * can run: the "vmm"/"soft" software log, "iommu" (HWPT_GET_DIRTY_BITMAP
 * through the front end), and with /dev/kvm "kvm-log", "kvm-clear-log" and
 * "kvm-ring". Then the ring-vs-bitmap crossover: the dirty fraction above
 * which harvesting the ring costs more than KVM_GET_DIRTY_LOG of the slot.
 *
 * Baseline, same run: the naive scan (OR-reduce) of an all-zero flat bitmap
 * with one bit per 4 KiB page, in µs per GiB (bench_harvest's baseline).
 *
 * Dirtying (untimed for the collect figures, but reported, since it is what
 * a tracked guest pays): marks for the log, 1-byte DMA writes for iommu, and
 * for KVM a raw guest (tests/unit/vm/rawvm.h: 32-bit protected mode at CPL0,
 * a table-driven loop writing one byte per page, a port exit every 32 pages
 * so that a soft-full ring stops the vCPU). The guest's figures are per page:
 * its first write (host and KVM faults), a write with logging off (the loop
 * and its exits), and a write to a write-protected page (logging on).
 *
 * Pages dirtied: exactly round(f * npages) distinct pages, uniformly at
 * random (selection sampling), among the pages the source may see dirtied
 * (for KVM, those after the guest's code and table). Every collect is checked
 * to report exactly that many. A ring that fills during dirtying is harvested
 * by the ring-full callback on the vCPU thread; that time is added to the
 * ring's collect (it is harvest work all the same).
 *
 * Last, what tracking costs a real guest: the VM module's 64-bit CPL3 guest
 * (src/vm), its write rate with logging off and with kvm-log or kvm-ring
 * collected every 10 ms, in µs per page written.
 *
 * Sizes: log and iommu 1 GiB (iommu maps one 64 MiB buffer again and again),
 * KVM 512 MiB of guest RAM, a 64 Ki-entry ring (the largest this KVM takes).
 * --quick: 64 MiB, 16 MiB for KVM, one repetition.
 */
#include "rng.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/uapi/iommufd.h>
#include <uiommu/vm.h>
#include <uiommu/vm_sources.h>

#include "../tests/unit/vm/rawvm.h"
#include "bench.h"

#define PG 4096ull
#define GIB (1ull << 30)
#define HOST_BYTES (64ull << 20)
#define REPS 5
#define KVM_REPS 3
#define SWEEP_REPS 7 /* the crossover's points are small and noisy */
#define RING_ENTRIES 65536u
#define SEED 0x5eedf00dull

struct fraction {
	double f;
	const char *label;
	const char *goal;
};

static const struct fraction fractions[] = {
	{ 0.001, "0.1% dirty", "-" },
	{ 0.1, "10% dirty", "-" },
	{ 1.0, "100% dirty", "-" },
};

/* Dirty fractions of the crossover sweep. */
static const double sweep[] = { 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2 };

/* One benchmarked source and how to dirty its pages. */
struct target {
	const char *name;
	struct uiommu_dirty_source *src;
	uint64_t npages;
	uint64_t first_page; /* the first page that may be dirtied */
	int (*dirty)(struct target *t, const uint64_t *pages, uint64_t n);
	struct rawvm *vm;    /* KVM targets */
	struct uiommu_device *dev; /* iommu */
	int reps;
};

struct bench {
	const struct bench_opts *opts;
	double scan_us_gib;
	uint64_t rng;
	uint64_t *pages; /* the pages to dirty, room for the largest target */
	uint64_t *map;   /* the collect's bitmap */
};

static double us_per_gib(double ns, uint64_t npages)
{
	return ns / 1e3 / ((double)(npages * PG) / (double)GIB);
}

/* Exactly @k distinct pages of [first, npages), uniformly (Knuth's algorithm S). */
static uint64_t pick_pages(struct bench *b, const struct target *t, double f)
{
	uint64_t span = t->npages - t->first_page, got = 0;
	uint64_t k = (uint64_t)((double)t->npages * f + 0.5);

	k = k > span ? span : k;
	for (uint64_t i = 0; i < span && got < k; i++) {
		double u = (double)(splitmix64(&b->rng) >> 11) * 0x1p-53;

		if ((double)(span - i) * u < (double)(k - got))
			b->pages[got++] = t->first_page + i;
	}
	return got;
}

static uint64_t or_reduce(const uint64_t *map, uint64_t words)
{
	uint64_t acc = 0;

	for (uint64_t i = 0; i < words; i++)
		acc |= map[i];
	return acc;
}

/* The baseline: the naive scan of an all-zero 1 GiB-page bitmap. */
static double scan_baseline(const struct bench_opts *opts)
{
	uint64_t words = GIB / PG / 64, ns[101];
	uint64_t *zero = aligned_alloc(64, words * 8);
	int reps = opts->quick ? 3 : 101;

	if (!zero)
		return 0;
	memset(zero, 0xff, words * 8);
	bench_clobber();
	memset(zero, 0, words * 8);
	for (int r = 0; r < reps; r++) {
		uint64_t t0 = bench_now_ns();

		bench_keep(or_reduce(zero, words));
		ns[r] = bench_now_ns() - t0;
	}
	free(zero);
	return us_per_gib((double)bench_median_u64(ns, reps), GIB / PG);
}

/* One dirtying and one timed collect; ns of harvest work, 0 on error. */
static uint64_t collect_once(struct bench *b, struct target *t, uint64_t n)
{
	uint64_t got = 0, t0, t1, outside = t->vm ? t->vm->ring_full_ns : 0;
	int rc;

	if (t->dirty(t, b->pages, n))
		return 0;
	outside = t->vm ? t->vm->ring_full_ns - outside : 0;
	memset(b->map, 0, uiommu_bitmap_words(t->npages) * 8);
	t0 = bench_now_ns();
	rc = uiommu_dirty_source_collect(t->src, b->map, &got);
	t1 = bench_now_ns();
	if (rc || got != n) {
		fprintf(stderr, "bench_sources: %s: rc %d, %" PRIu64 " pages reported, %" PRIu64
			" dirtied\n", t->name, rc, got, n);
		return 0;
	}
	return t1 - t0 + outside + 1;
}

/* Median ns of a collect of @f dirty; 0 on error. */
static uint64_t time_collect(struct bench *b, struct target *t, double f)
{
	uint64_t ns[SWEEP_REPS > REPS ? SWEEP_REPS : REPS], n;

	b->rng = SEED;
	n = pick_pages(b, t, f);
	for (int r = 0; r < t->reps; r++) {
		ns[r] = collect_once(b, t, n);
		if (!ns[r])
			return 0;
	}
	return bench_median_u64(ns, t->reps);
}

static int bench_target(struct bench *b, struct target *t)
{
	char metric[64];

	for (size_t i = 0; i < sizeof(fractions) / sizeof(fractions[0]); i++) {
		uint64_t ns = time_collect(b, t, fractions[i].f);

		if (!ns)
			return -1;
		snprintf(metric, sizeof(metric), "%s collect, %s", t->name, fractions[i].label);
		bench_report(b->opts, "sources", metric, us_per_gib((double)ns, t->npages), "us/GiB",
			     "naive scan", b->scan_us_gib, fractions[i].goal);
	}
	return 0;
}

/* ---- the software log ---- */

static int log_dirty(struct target *t, const uint64_t *pages, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		uiommu_dirty_log_mark(t->src, pages[i] * PG, 1);
	return 0;
}

/* ns per page of a plain (not atomic) bit set at the same pages: the marks' baseline. */
static double plain_set_ns(struct bench *b, uint64_t n)
{
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < n; i++)
		b->map[b->pages[i] / 64] |= 1ull << (b->pages[i] % 64);
	bench_clobber();
	return (double)(bench_now_ns() - t0) / (double)n;
}

static int bench_log(struct bench *b)
{
	struct target t = { .name = "vmm/soft log", .dirty = log_dirty };
	uint64_t t0, n;
	double mark_ns;
	int rc;

	t.npages = (b->opts->quick ? HOST_BYTES : GIB) / PG;
	t.reps = b->opts->quick ? 1 : REPS;
	rc = uiommu_dirty_log_source_create("vmm", t.npages, &t.src);
	rc = rc ? rc : uiommu_dirty_source_start(t.src);
	rc = rc ? rc : bench_target(b, &t);
	if (!rc) {
		/* Marking cost: every page once, into an empty log. */
		b->rng = SEED;
		n = pick_pages(b, &t, 1.0);
		t0 = bench_now_ns();
		log_dirty(&t, b->pages, n);
		mark_ns = (double)(bench_now_ns() - t0) / (double)n;
		bench_report(b->opts, "sources", "dirty: vmm log mark", mark_ns, "ns/page",
			     "plain bit set", plain_set_ns(b, n), "-");
	}
	uiommu_dirty_source_destroy(t.src);
	return rc;
}

/* ---- iommu ---- */

struct iommu_env {
	struct uiommu_ctx *ctx;
	struct uiommu_hwdev *hw;
	uint32_t dev_id, ioas, hwpt;
	uint8_t *host;
};

static int iommu_dirty(struct target *t, const uint64_t *pages, uint64_t n)
{
	static const uint8_t one = 1;

	for (uint64_t i = 0; i < n; i++)
		if (uiommu_device_dma_write(t->dev, pages[i] * PG, &one, 1))
			return -1;
	return 0;
}

static int iommu_map_all(struct iommu_env *e, uint64_t bytes)
{
	uint64_t host_bytes = bytes < HOST_BYTES ? bytes : HOST_BYTES;
	long rc = 0;

	/* The same host memory again and again: GiBs of IOVA, 64 MiB of RAM. */
	for (uint64_t iova = 0; iova < bytes && !rc; iova += host_bytes) {
		struct iommu_ioas_map map = {
			.size = sizeof(map),
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				 IOMMU_IOAS_MAP_WRITEABLE,
			.ioas_id = e->ioas,
			.user_va = (uintptr_t)e->host,
			.length = host_bytes,
			.iova = iova,
		};

		rc = uiommu_iommufd_ioctl(e->ctx, IOMMU_IOAS_MAP, &map);
	}
	return (int)rc;
}

static int iommu_setup(struct iommu_env *e, uint64_t bytes)
{
	struct uiommu_hwdev_cfg cfg = {
		.name = "bench", .format = UIOMMU_PT_X86, .pgsize_bitmap = PG,
		.aperture_last = (1ull << 39) - 1, .dirty_tracking = true,
	};
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_hwpt_alloc hwpt = { .size = sizeof(hwpt),
					 .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING };
	int rc;

	e->host = mmap(NULL, HOST_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (e->host == MAP_FAILED || uiommu_ctx_create(&e->ctx) || uiommu_hwdev_create(&cfg, &e->hw))
		return -1;
	memset(e->host, 0, HOST_BYTES);
	rc = uiommu_ctx_bind(e->ctx, e->hw, &e->dev_id);
	rc = rc ? rc : (int)uiommu_iommufd_ioctl(e->ctx, IOMMU_IOAS_ALLOC, &ioas);
	hwpt.dev_id = e->dev_id;
	hwpt.pt_id = e->ioas = ioas.out_ioas_id;
	rc = rc ? rc : (int)uiommu_iommufd_ioctl(e->ctx, IOMMU_HWPT_ALLOC, &hwpt);
	e->hwpt = hwpt.out_hwpt_id;
	rc = rc ? rc : uiommu_ctx_attach(e->ctx, e->dev_id, &hwpt.out_hwpt_id);
	return rc ? rc : iommu_map_all(e, bytes);
}

static void iommu_teardown(struct iommu_env *e)
{
	uiommu_ctx_destroy(e->ctx);
	uiommu_hwdev_destroy(e->hw);
	if (e->host && e->host != MAP_FAILED)
		munmap(e->host, HOST_BYTES);
}

/* ns per page of 1-byte DMA writes to every page. */
static double iommu_dirty_ns(struct bench *b, struct target *t)
{
	uint64_t n, t0;

	b->rng = SEED;
	n = pick_pages(b, t, 1.0);
	t0 = bench_now_ns();
	if (iommu_dirty(t, b->pages, n))
		return 0;
	return (double)(bench_now_ns() - t0) / (double)n;
}

/* DMA cost with tracking on, beside the same writes with tracking off. */
static int iommu_dirty_costs(struct bench *b, struct target *t)
{
	double on = iommu_dirty_ns(b, t), off;
	int rc;

	uiommu_dirty_source_stop(t->src);
	off = iommu_dirty_ns(b, t);
	rc = uiommu_dirty_source_start(t->src);
	if (rc || !on || !off)
		return rc ? rc : -1;
	bench_report(b->opts, "sources", "dirty: DMA write 1 B, tracked", on, "ns/page",
		     "untracked", off, "-");
	return 0;
}

static int bench_iommu(struct bench *b)
{
	struct target t = { .name = "iommu", .dirty = iommu_dirty };
	struct iommu_env e = { 0 };
	int rc;

	t.npages = (b->opts->quick ? HOST_BYTES : GIB) / PG;
	t.reps = b->opts->quick ? 1 : REPS;
	rc = iommu_setup(&e, t.npages * PG);
	rc = rc ? rc : uiommu_iommu_source_create(e.ctx, e.hwpt, t.npages, &t.src);
	t.dev = rc ? NULL : uiommu_hwdev_dma(e.hw);
	rc = rc ? rc : uiommu_dirty_source_start(t.src);
	rc = rc ? rc : bench_target(b, &t);
	rc = rc ? rc : iommu_dirty_costs(b, &t);
	uiommu_dirty_source_destroy(t.src);
	iommu_teardown(&e);
	if (rc)
		fprintf(stderr, "bench_sources: iommu: %d\n", rc);
	return rc;
}

/* ---- KVM ---- */

struct kvm_case {
	const char *name;
	struct rawvm_cfg cfg;
	int (*create)(struct rawvm *vm, struct uiommu_dirty_source **out);
	bool dirty_costs; /* measure what dirtying costs the guest on this VM */
};

static int make_log(struct rawvm *vm, struct uiommu_dirty_source **out)
{
	return uiommu_kvm_log_source_create(&vm->info, out);
}

static int make_clear(struct rawvm *vm, struct uiommu_dirty_source **out)
{
	return uiommu_kvm_clear_log_source_create(&vm->info, 0, out);
}

static int make_ring(struct rawvm *vm, struct uiommu_dirty_source **out)
{
	return uiommu_kvm_ring_source_create(&vm->info, &vm->link, out);
}

static const struct kvm_case kvm_cases[] = {
	{ "kvm-log", { 0 }, make_log, true },
	{ "kvm-clear-log", { .manual_protect = true }, make_clear, false },
	{ "kvm-ring", { .ring_entries = RING_ENTRIES }, make_ring, false },
};

#define NR_SWEEP (sizeof(sweep) / sizeof(sweep[0]))
#define NR_KVM (sizeof(kvm_cases) / sizeof(kvm_cases[0]))

static int kvm_dirty(struct target *t, const uint64_t *pages, uint64_t n)
{
	return rawvm_write_pages(t->vm, pages, n);
}

/* The guest writes every page it may write once: ns per page, 0 on error. */
static double kvm_pass(struct bench *b, struct target *t)
{
	uint64_t n, t0;

	b->rng = SEED;
	n = pick_pages(b, t, 1.0);
	t0 = bench_now_ns();
	if (rawvm_write_pages(t->vm, b->pages, n))
		return 0;
	return (double)(bench_now_ns() - t0) / (double)n;
}

static int kvm_target_new(struct bench *b, const struct kvm_case *kc, struct rawvm *vm,
			  struct target *t)
{
	struct rawvm_cfg cfg = kc->cfg;
	int rc;

	cfg.bytes = b->opts->quick ? (16ull << 20) : (512ull << 20);
	cfg.table_entries = cfg.bytes / PG;
	rc = rawvm_create(vm, &cfg);
	if (rc)
		return rc;
	*t = (struct target){
		.name = kc->name,
		.npages = cfg.bytes / PG,
		.first_page = vm->first_data_page,
		.dirty = kvm_dirty,
		.vm = vm,
		.reps = b->opts->quick ? 1 : KVM_REPS,
	};
	return 0;
}

/*
 * Before the source starts: the guest's first write to every page (host and
 * KVM faults), then a write with logging off; after: a write to pages that
 * logging write-protected, collected (untimed) so the figures start clean.
 */
static int kvm_dirty_costs(struct bench *b, struct target *t, double first)
{
	double off = kvm_pass(b, t), wp;
	uint64_t got = 0;
	int rc = uiommu_dirty_source_start(t->src);

	wp = rc ? 0 : kvm_pass(b, t);
	rc = rc ? rc : uiommu_dirty_source_collect(t->src, b->map, &got);
	if (rc || !first || !off || !wp)
		return rc ? rc : -1;
	bench_report(b->opts, "sources", "dirty: guest first write", first / 1e3, "us/page",
		     "guest write, log off", off / 1e3, "-");
	bench_report(b->opts, "sources", "dirty: guest write, protected", wp / 1e3, "us/page",
		     "guest write, log off", off / 1e3, "-");
	if (!b->opts->json)
		printf("sources    note: this host (nested PVM) runs the raw guest's CPL0 code at"
		       " ~0.5 us per instruction (7 per page): the loop, not write protection,"
		       " dominates the guest's cost per page\n");
	return 0;
}

static int kvm_sweep(struct bench *b, struct target *t, double *sweep_ns)
{
	t->reps = b->opts->quick ? 1 : SWEEP_REPS;
	for (size_t i = 0; i < NR_SWEEP; i++) {
		sweep_ns[i] = (double)time_collect(b, t, sweep[i]);
		if (!sweep_ns[i])
			return -1;
	}
	return 0;
}

static int bench_kvm_case(struct bench *b, const struct kvm_case *kc, double *sweep_ns)
{
	struct target t = { 0 };
	struct rawvm vm;
	double first;
	int rc = kvm_target_new(b, kc, &vm, &t);

	if (rc)
		return rc;
	first = kvm_pass(b, &t); /* faults every page in, logging off */
	rc = first ? kc->create(&vm, &t.src) : -1;
	if (!rc && kc->dirty_costs)
		rc = kvm_dirty_costs(b, &t, first);
	else if (!rc)
		rc = uiommu_dirty_source_start(t.src);
	rc = rc ? rc : bench_target(b, &t);
	rc = rc ? rc : kvm_sweep(b, &t, sweep_ns);
	uiommu_dirty_source_destroy(t.src);
	rawvm_destroy(&vm);
	if (rc)
		fprintf(stderr, "bench_sources: %s: %d\n", kc->name, rc);
	return rc;
}

/*
 * The dirty fraction where the ring's collect time meets the bitmap's:
 * linear between the two sweep points around it, on the time ratio.
 */
static void report_crossover(struct bench *b, const char *bitmap, const double *bm,
			     const double *ring)
{
	char metric[64];
	double x = sweep[NR_SWEEP - 1];
	size_t i = 0;

	while (i < NR_SWEEP && ring[i] <= bm[i])
		i++;
	if (i == 0) {
		x = sweep[0];
	} else if (i < NR_SWEEP) {
		double q0 = ring[i - 1] / bm[i - 1], q1 = ring[i] / bm[i];

		x = sweep[i - 1] + (sweep[i] - sweep[i - 1]) * (1 - q0) / (q1 - q0);
	}
	snprintf(metric, sizeof(metric), "ring vs %s crossover%s", bitmap,
		 i == 0 ? " (below)" : i == NR_SWEEP ? " (above)" : "");
	bench_report(b->opts, "sources", metric, x * 100, "% dirty", "-", 0, "-");
}

static int bench_kvm(struct bench *b)
{
	double sweep_ns[NR_KVM][NR_SWEEP];
	int rc = 0;

	for (size_t i = 0; i < NR_KVM && !rc; i++)
		rc = bench_kvm_case(b, &kvm_cases[i], sweep_ns[i]);
	if (rc)
		return rc;
	report_crossover(b, "kvm-log", sweep_ns[0], sweep_ns[2]);
	report_crossover(b, "kvm-clear-log", sweep_ns[1], sweep_ns[2]);
	return 0;
}

/* ---- the VM module's guest ---- */

/* Pages per second the guest wrote over @secs, collecting @src every 10 ms. */
static double vm_rate(struct bench *b, struct uiommu_vm *vm, struct uiommu_dirty_source *src,
		      double secs)
{
	struct uiommu_vm_stats s0, s1;
	uint64_t t0 = bench_now_ns(), t1;

	uiommu_vm_get_stats(vm, &s0);
	do {
		struct timespec pause = { 0, 10 * 1000 * 1000 };

		nanosleep(&pause, NULL);
		if (src && uiommu_dirty_source_collect(src, b->map, NULL))
			return 0;
		t1 = bench_now_ns();
	} while ((double)(t1 - t0) < secs * 1e9);
	uiommu_vm_get_stats(vm, &s1);
	return (double)(s1.pages_written - s0.pages_written) / ((double)(t1 - t0) / 1e9);
}

static int vm_guest_up(struct uiommu_vm_cfg *cfg, struct uiommu_kvm_ring_link *link,
		       struct uiommu_vm **vm)
{
	struct uiommu_workload wl = { .kind = UIOMMU_WL_SEQ };

	cfg->mem_bytes = 32ull << 20;
	cfg->nr_vcpus = 1;
	cfg->backend = UIOMMU_VM_KVM;
	if (cfg->dirty_ring_entries) {
		cfg->ring_full = uiommu_kvm_ring_full;
		cfg->ring_full_opaque = link;
	}
	if (uiommu_vm_create(cfg, vm))
		return -1;
	return uiommu_vm_start(*vm, &wl);
}

/*
 * What tracking costs the VM module's guest (64-bit, CPL3, the SEQ workload
 * at full speed over ~7.5 k work pages): its write rate with logging off,
 * then with @name started and collected every 10 ms, so that almost every
 * write is the first one to a write-protected page.
 */
static int vm_guest_cost(struct bench *b, const char *name, struct uiommu_vm_cfg cfg)
{
	struct uiommu_vm_source_cfg scfg = { 0 };
	struct uiommu_kvm_ring_link link = { 0 };
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_vm_kvm_info info;
	double secs = b->opts->quick ? 0.1 : 0.5, off = 0, on = 0;
	struct uiommu_vm *vm = NULL;
	char metric[64];
	int rc = vm_guest_up(&cfg, &link, &vm);

	rc = rc ? rc : uiommu_vm_kvm_info(vm, &info);
	scfg.kvm = &info;
	scfg.ring_link = &link;
	rc = rc ? rc : uiommu_vm_source_create(name, &scfg, &src);
	if (!rc) {
		vm_rate(b, vm, NULL, secs); /* every page written once: faults in */
		off = vm_rate(b, vm, NULL, secs);
		rc = uiommu_dirty_source_start(src);
	}
	on = rc ? 0 : vm_rate(b, vm, src, secs);
	uiommu_vm_stop(vm);
	uiommu_dirty_source_destroy(src);
	uiommu_vm_destroy(vm);
	if (rc || !on || !off)
		return rc ? rc : -1;
	snprintf(metric, sizeof(metric), "dirty: VM guest write, %s", name);
	bench_report(b->opts, "sources", metric, 1e6 / on, "us/page", "VM guest, log off",
		     1e6 / off, "-");
	return 0;
}

static int bench_vm_guest(struct bench *b)
{
	int rc = vm_guest_cost(b, "kvm-log", (struct uiommu_vm_cfg){ 0 });

	return rc ? rc : vm_guest_cost(b, "kvm-ring",
				       (struct uiommu_vm_cfg){ .dirty_ring_entries = 4096 });
}

int main(int argc, char **argv)
{
	struct bench_opts opts;
	struct bench b = { .opts = &opts };
	int rc;

	bench_parse(argc, argv, &opts);
	b.scan_us_gib = scan_baseline(&opts);
	b.pages = calloc(GIB / PG, sizeof(uint64_t));
	b.map = calloc(GIB / PG / 64, sizeof(uint64_t));
	if (!b.pages || !b.map || !b.scan_us_gib)
		return 1;
	rc = bench_log(&b);
	rc = rc ? rc : bench_iommu(&b);
	if (!rc && uiommu_kvm_available())
		rc = bench_kvm(&b);
	if (!rc && uiommu_kvm_available())
		rc = bench_vm_guest(&b);
	else if (!rc && !opts.json)
		printf("sources    no usable /dev/kvm: kvm-log, kvm-clear-log, kvm-ring skipped\n");
	free(b.pages);
	free(b.map);
	return rc ? 1 : 0;
}
