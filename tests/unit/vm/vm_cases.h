/* SPDX-License-Identifier: MIT */
/*
 * Test cases that hold for both backends. test_vm_soft.c and test_vm_kvm.c
 * include this file after setting `backend`, and run VM_CASES with their
 * own cases.
 *
 * What they show: each workload writes only its vCPUs' slices, every page
 * it wrote carries valid content and is in the guest's write log, and the
 * generations add up to each vCPU's pages_written; the rate limit and the
 * throttle hold; a paused VM writes nothing; VERIFY finds exactly the pages
 * spoiled (flipped, misplaced, stale, or written while it should be zero);
 * a VM saved while paused resumes in a fresh incoming VM and verifies; state
 * blobs that are malformed are refused with -EINVAL.
 */
#ifndef UIOMMU_TEST_VM_CASES_H
#define UIOMMU_TEST_VM_CASES_H

#include <math.h> /* fabs only: a builtin, no libm needed */
#include <pthread.h>
#include <sys/stat.h>

#include "vm_test.h"
#include "rng.h"

/* Runs IDLE and waits until no vCPU writes any more. */
static void vm_go_idle(struct uiommu_vm *vm)
{
	uint64_t before;

	vm_run(vm, UIOMMU_WL_IDLE, 0);
	do {
		before = vm_stats(vm).pages_written;
		sleep_ms(40);
	} while (vm_stats(vm).pages_written != before);
}

static void test_create_rejects_bad_configs(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(1, 64);
	struct uiommu_vm *vm = NULL;

	(void)state;
	assert_int_equal(uiommu_vm_create(NULL, &vm), -EINVAL);
	cfg.mem_bytes += PG;
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	cfg = vm_cfg(0, 64);
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	cfg = vm_cfg(UIOMMU_VM_MAX_VCPUS + 1, 64);
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	cfg = vm_cfg(1, 64);
	cfg.dma_bytes = MiB;
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	cfg.dma_bytes = 64 * MiB;
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	cfg = vm_cfg(1, 2); /* nothing left after the system area */
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	cfg = vm_cfg(1, 64);
	cfg.backend = (enum uiommu_vm_backend)7;
	assert_int_equal(uiommu_vm_create(&cfg, &vm), -EINVAL);
	assert_null(vm);
	uiommu_vm_destroy(NULL);
}

static void test_regions_split_guest_memory(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(2, 64);
	struct uiommu_vm *vm;
	struct region w;
	struct stat sb;
	uint64_t gpa, bytes;

	(void)state;
	cfg.dma_bytes = 8 * MiB;
	vm = vm_new_cfg(&cfg);
	w = work_region(vm);
	assert_true(w.gpa == UIOMMU_VM_SYS_BYTES && w.bytes == 54 * MiB);
	uiommu_vm_dma_region(vm, &gpa, &bytes);
	assert_true(gpa == 56 * MiB && bytes == 8 * MiB);
	assert_int_equal(uiommu_vm_mem_bytes(vm), 64 * MiB);
	assert_int_equal(uiommu_vm_nr_vcpus(vm), 2);
	assert_int_equal(uiommu_vm_backend(vm), backend);
	assert_string_equal(uiommu_vm_backend_label(vm),
			    backend == UIOMMU_VM_SOFT ? "software vCPUs" : "KVM vCPUs");
	assert_int_equal(fstat(uiommu_vm_mem_fd(vm), &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, 64 * MiB);
	uiommu_vm_destroy(vm);
}

/*
 * Checks vCPU @i's slice after a pause: every page in the write log changed
 * and holds valid content; at most one page is "in flight" (a KVM vCPU was
 * stopped inside its write: changed but not yet logged, or partly written);
 * the generations add up to the vCPU's pages_written, plus one for a page
 * in flight (the generation word may be written before the page is
 * counted). Returns the sum of the generations.
 */
static uint64_t check_slice(struct uiommu_vm *vm, unsigned int i, const uint8_t *before,
			    const uint8_t *after, const uint64_t *log)
{
	struct region w = work_region(vm);
	uint64_t first, n, p, gpa, sum = 0, written = vcpu_stats(vm, i).pages_written;
	unsigned int inflight = 0;
	bool changed, valid;

	slice_of(vm, i, &first, &n);
	for (p = first; p < first + n; p++) {
		gpa = w.gpa + p * PG;
		changed = memcmp(before + gpa, after + gpa, PG) != 0;
		valid = uiommu_vm_page_check(after + gpa, gpa);
		if (bit_test(log, p))
			assert_true(changed);
		inflight += (changed && !bit_test(log, p)) || !valid;
		sum += page_word(after + gpa, 1);
	}
	/* In flight, the generation may be written before the page is counted. */
	assert_true(inflight <= (backend == UIOMMU_VM_KVM ? 1 : 0));
	assert_true(sum == written || (backend == UIOMMU_VM_KVM && sum == written + 1));
	assert_true(sum > 0);
	return sum;
}

/*
 * Runs @kind on 2 vCPUs until each wrote @pages pages, pauses, and checks
 * every slice (check_slice) and that nothing outside the work region
 * changed but the system area. Returns the VM (paused), the memory after,
 * and each vCPU's generation sum; the caller checks what is particular to
 * the workload.
 */
static struct uiommu_vm *run_and_check_log(enum uiommu_workload_kind kind, uint64_t pages,
					   uint8_t **after, uint64_t *sums)
{
	struct uiommu_vm_cfg cfg = vm_cfg(2, 64);
	struct uiommu_vm *vm;
	uint8_t *before;
	uint64_t *log, gpa, bytes;

	cfg.dma_bytes = 4 * MiB;
	vm = vm_new_cfg(&cfg);
	log = log_alloc(vm);
	before = mem_snapshot(vm);
	vm_run(vm, kind, 0);
	wait_vcpu_pages(vm, 0, pages, 15);
	wait_vcpu_pages(vm, 1, pages, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	*after = mem_snapshot(vm);
	assert_int_equal(uiommu_vm_take_write_log(vm, log), 0);
	for (unsigned int i = 0; i < 2; i++)
		sums[i] = check_slice(vm, i, before, *after, log);
	uiommu_vm_dma_region(vm, &gpa, &bytes);
	assert_memory_equal(before + gpa, *after + gpa, bytes);
	assert_int_equal(vm_stats(vm).unexpected_exits, 0);
	free(before);
	free(log);
	return vm;
}

static void test_seq_sweeps_each_slice_from_its_start(void **state)
{
	uint64_t sums[2];
	uint8_t *after;
	struct uiommu_vm *vm = run_and_check_log(UIOMMU_WL_SEQ, 3000, &after, sums);
	struct region w = work_region(vm);

	(void)state;
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t first, n, p, written = sums[i];

		slice_of(vm, i, &first, &n);
		/* Page k of the slice was written floor(written / n) or one more times. */
		for (p = 0; p < n; p++)
			assert_int_equal(page_word(after + w.gpa + (first + p) * PG, 1),
					 written / n + (p < written % n));
	}
	free(after);
	uiommu_vm_destroy(vm);
}

/* b^e by squaring (the tests do not link libm). */
static double pow_u(double b, uint64_t e)
{
	double r = 1;

	for (; e; e >>= 1, b *= b)
		if (e & 1)
			r *= b;
	return r;
}

static void test_random_spreads_writes_over_each_slice(void **state)
{
	uint64_t sums[2];
	uint8_t *after;
	struct uiommu_vm *vm = run_and_check_log(UIOMMU_WL_RANDOM, 6000, &after, sums);
	struct region w = work_region(vm);

	(void)state;
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t first, n, p, distinct = 0, written = sums[i];
		double expect;

		slice_of(vm, i, &first, &n);
		for (p = first; p < first + n; p++)
			distinct += page_word(after + w.gpa + p * PG, 1) != 0;
		/* w writes into n pages at random touch n (1 - (1 - 1/n)^w) of them. */
		expect = (double)n * (1 - pow_u(1 - 1 / (double)n, written));
		assert_true(fabs((double)distinct - expect) < 0.05 * expect + 50);
	}
	free(after);
	uiommu_vm_destroy(vm);
}

static void test_hotset_sends_most_writes_to_the_hot_pages(void **state)
{
	uint64_t sums[2];
	uint8_t *after;
	struct uiommu_vm *vm = run_and_check_log(UIOMMU_WL_HOTSET, 8000, &after, sums);
	struct region w = work_region(vm);

	(void)state;
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t first, n, p, hot = 0, all = 0, g;

		slice_of(vm, i, &first, &n);
		for (p = 0; p < n; p++) {
			g = page_word(after + w.gpa + (first + p) * PG, 1);
			all += g;
			hot += p < n / 10 ? g : 0; /* 10 % of the pages */
		}
		assert_true(all >= 8000);
		assert_true(fabs((double)hot / (double)all - 0.9) < 0.03);
	}
	free(after);
	uiommu_vm_destroy(vm);
}

static void test_idle_writes_nothing_and_exits_rarely(void **state)
{
	struct uiommu_vm *vm = vm_new(2, 64);
	uint64_t *log = log_alloc(vm);
	struct uiommu_vm_stats st;

	(void)state;
	vm_run(vm, UIOMMU_WL_IDLE, 0);
	sleep_ms(200);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	st = vm_stats(vm);
	assert_int_equal(st.pages_written, 0);
	assert_true(st.exits <= 2 * (200 / 10 + 5));
	assert_int_equal(uiommu_vm_take_write_log(vm, log), 0);
	for (uint64_t i = 0; i < work_region(vm).pages / 64; i++)
		assert_int_equal(log[i], 0);
	free(log);
	uiommu_vm_destroy(vm);
}

static void test_rate_limit_holds_and_exits_come_every_half_ms(void **state)
{
	struct uiommu_vm *vm = vm_new(2, 64);
	struct uiommu_vm_stats st;
	double t0, dt, rate;

	(void)state;
	t0 = now_s();
	vm_run(vm, UIOMMU_WL_RANDOM, 20000);
	sleep_ms(1000);
	st = vm_stats(vm);
	dt = now_s() - t0;
	rate = (double)st.pages_written / dt;
	print_message("%s: %.0f pages/s for 20000 asked, %" PRIu64 " exits, stall %.2f s\n",
		      uiommu_vm_backend_label(vm), rate, st.exits, (double)st.stall_ns / 1e9);
	/*
	 * A ceiling; on a loaded 2-core machine a vCPU kept off the CPU falls
	 * short (the limiter lets it catch up only by a bucket's worth).
	 */
	assert_true(rate > 0.4 * 20000 && rate < 1.1 * 20000);
	/*
	 * 10000 pages/s per vCPU, 5 pages per exit: an exit every 0.5 ms. Checked
	 * against the pages written, which a starved vCPU does not distort.
	 */
	assert_true((double)st.exits > 0.8 * (double)st.pages_written / 5 &&
		    (double)st.exits < 1.2 * (double)st.pages_written / 5 + 2 * 8);
	assert_true(st.stall_ns > 0);
	uiommu_vm_destroy(vm);
}

/* Stall and pages of vCPU 0 over @ms milliseconds. */
static void measure_window(struct uiommu_vm *vm, unsigned int ms, double *stall_frac,
			   double *pages_per_s)
{
	struct uiommu_vm_stats a = vm_stats(vm), b;
	double t0 = now_s(), dt;

	sleep_ms(ms);
	b = vm_stats(vm);
	dt = now_s() - t0;
	*stall_frac = (double)(b.stall_ns - a.stall_ns) / 1e9 / dt;
	*pages_per_s = (double)(b.pages_written - a.pages_written) / dt;
}

static void test_throttle_holds_vcpus_back_and_counts_stall(void **state)
{
	struct uiommu_vm *vm = vm_new(1, 64);
	double free_stall, free_rate, stall, rate;

	(void)state;
	assert_int_equal(uiommu_vm_set_throttle(vm, 0.5), 0);
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	wait_pages(vm, 20000, 15); /* past the first touch of every page */
	measure_window(vm, 600, &stall, &rate);
	assert_int_equal(uiommu_vm_set_throttle(vm, 0), 0);
	sleep_ms(50);
	measure_window(vm, 600, &free_stall, &free_rate);
	print_message("%s: throttle 0.5: stall %.2f, %.0f pages/s; none: stall %.2f, %.0f pages/s\n",
		      uiommu_vm_backend_label(vm), stall, rate, free_stall, free_rate);
	/* Half the time; a loaded machine oversleeps, or keeps the vCPU from its sleeps. */
	assert_true(stall > 0.3 && stall < 0.75);
	assert_true(free_stall < 0.05);
	assert_true(rate < 0.85 * free_rate); /* both windows are noisy on a loaded machine */
	uiommu_vm_destroy(vm);
}

/*
 * A rate-limited workload is what it makes of a whole vCPU: a throttle of
 * 0.5 halves it, and the time that costs is counted as the throttle's
 * (throttle_ns), while the workload's own pace without a throttle is not.
 */
static void test_throttle_scales_a_rate_limited_workload(void **state)
{
	struct uiommu_vm *vm = vm_new(1, 64);
	double stall, rate, free_rate;
	uint64_t thr0;

	(void)state;
	vm_run(vm, UIOMMU_WL_RANDOM, 10000);
	sleep_ms(100);
	thr0 = vm_stats(vm).throttle_ns;
	measure_window(vm, 500, &stall, &free_rate);
	assert_int_equal(vm_stats(vm).throttle_ns, thr0);
	assert_int_equal(uiommu_vm_set_throttle(vm, 0.5), 0);
	sleep_ms(50);
	thr0 = vm_stats(vm).throttle_ns;
	measure_window(vm, 600, &stall, &rate);
	print_message("%s: rate 10000 pages/s: %.0f free, %.0f at throttle 0.5, throttle "
		      "stall %.2f s\n",
		      uiommu_vm_backend_label(vm), free_rate, rate,
		      (double)(vm_stats(vm).throttle_ns - thr0) / 1e9);
	/* The ceiling is the limiter's: 5000 pages/s and a bucket's burst. */
	assert_true(rate < 0.65 * 10000);
	assert_true(rate > 0.2 * 10000);
	assert_true(vm_stats(vm).throttle_ns - thr0 > 100000000ull); /* ~0.3 s expected */
	uiommu_vm_destroy(vm);
}

static void test_paused_vm_writes_nothing_until_resumed(void **state)
{
	struct uiommu_vm *vm = vm_new(2, 64);
	uint64_t *log = log_alloc(vm), pages;
	uint8_t *snap;

	(void)state;
	vm_run(vm, UIOMMU_WL_RANDOM, 0);
	wait_pages(vm, 3000, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	pages = vm_stats(vm).pages_written;
	snap = mem_snapshot(vm);
	assert_int_equal(uiommu_vm_take_write_log(vm, log), 0);
	memcpy(snap, uiommu_vm_mem(vm), uiommu_vm_mem_bytes(vm)); /* the log, now clear */
	sleep_ms(150);
	assert_int_equal(vm_stats(vm).pages_written, pages);
	assert_memory_equal(snap, uiommu_vm_mem(vm), uiommu_vm_mem_bytes(vm));
	assert_int_equal(uiommu_vm_resume(vm), 0);
	assert_int_equal(uiommu_vm_resume(vm), 0);
	wait_pages(vm, pages + 3000, 15);
	free(snap);
	free(log);
	uiommu_vm_destroy(vm);
}

/* Spoils page @gpa of guest memory by flipping one byte. */
static void flip_byte(struct uiommu_vm *vm, uint64_t gpa, uint64_t off)
{
	vm_page(vm, gpa)[off] ^= 0x40;
}

static void test_verify_finds_flipped_misplaced_stale_and_nonzero_pages(void **state)
{
	struct uiommu_vm *vm = vm_new(2, 64);
	struct region w = work_region(vm);
	struct uiommu_vm_stats st;
	uint64_t p, stale = UINT64_MAX, written[2], zero = UINT64_MAX, n = 0;
	uint8_t *snap;

	(void)state;
	vm_run(vm, UIOMMU_WL_RANDOM, 0);
	wait_pages(vm, 6000, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	snap = mem_snapshot(vm);
	assert_int_equal(uiommu_vm_resume(vm), 0);
	wait_pages(vm, vm_stats(vm).pages_written + 6000, 15);
	vm_go_idle(vm);
	st = vm_verify(vm);
	assert_int_equal(st.bad_pages, 0);
	assert_int_equal(st.verified_pages, w.pages);
	for (p = 0; p < w.pages; p++) {
		uint64_t gpa = w.gpa + p * PG, g0 = page_word(snap + gpa, 1);

		if (g0 && page_word(vm_page(vm, gpa), 1) > g0 && stale == UINT64_MAX)
			stale = p;
		else if (page_word(vm_page(vm, gpa), 1) && n < 2)
			written[n++] = p;
		else if (!page_word(vm_page(vm, gpa), 1))
			zero = p;
	}
	assert_true(stale != UINT64_MAX && n == 2 && zero != UINT64_MAX);
	memcpy(vm_page(vm, w.gpa + stale * PG), snap + w.gpa + stale * PG, PG);
	flip_byte(vm, w.gpa + written[0] * PG, 2000);
	memcpy(vm_page(vm, w.gpa + written[1] * PG), vm_page(vm, w.gpa + stale * PG), PG);
	flip_byte(vm, w.gpa + zero * PG, 4095);
	/* A stale page is valid content: only the guest's table tells it is old. */
	assert_true(uiommu_vm_page_check(vm_page(vm, w.gpa + stale * PG), w.gpa + stale * PG));
	st = vm_verify(vm);
	assert_int_equal(st.bad_pages, 4);
	assert_int_equal(st.verified_pages, w.pages);
	free(snap);
	uiommu_vm_destroy(vm);
}

/* A fresh incoming VM with @src's configuration, memory and vCPU state. */
static struct uiommu_vm *vm_clone(struct uiommu_vm *src, const void *blob, uint64_t len)
{
	struct uiommu_vm_cfg cfg = vm_cfg(uiommu_vm_nr_vcpus(src), uiommu_vm_mem_bytes(src) / MiB);
	struct uiommu_vm *dst;

	cfg.incoming = true;
	dst = vm_new_cfg(&cfg);
	assert_int_equal(uiommu_vm_resume(dst), -EINVAL);
	memcpy(uiommu_vm_mem(dst), uiommu_vm_mem(src), uiommu_vm_mem_bytes(src));
	assert_int_equal(uiommu_vm_restore_vcpus(dst, blob, len), 0);
	return dst;
}

static void test_saved_vm_resumes_in_a_fresh_vm_and_verifies(void **state)
{
	struct uiommu_vm *src = vm_new(2, 64), *dst;
	struct uiommu_workload ws, wd;
	struct uiommu_vm_stats s, d;
	uint64_t len;
	void *blob;

	(void)state;
	uiommu_vm_get_workload(src, &ws);
	assert_int_equal(ws.kind, UIOMMU_WL_IDLE);
	vm_run(src, UIOMMU_WL_RANDOM, 0);
	wait_pages(src, 8000, 15);
	assert_int_equal(uiommu_vm_pause(src), 0);
	assert_int_equal(uiommu_vm_save_vcpus(src, &blob, &len), 0);
	s = vm_stats(src);
	dst = vm_clone(src, blob, len);
	free(blob);
	/* The workload travels with the vCPU state. */
	uiommu_vm_get_workload(src, &ws);
	uiommu_vm_get_workload(dst, &wd);
	assert_int_equal(ws.kind, UIOMMU_WL_RANDOM);
	assert_int_equal(wd.kind, ws.kind);
	assert_true(wd.pages_per_sec == ws.pages_per_sec && wd.seed == ws.seed);
	assert_true(wd.hot_pages_pct == ws.hot_pages_pct && wd.hot_writes_pct == ws.hot_writes_pct);
	d = vm_stats(dst);
	assert_int_equal(d.pages_written, s.pages_written);
	assert_int_equal(d.exits, s.exits);
	assert_int_equal(uiommu_vm_resume(dst), 0);
	wait_pages(dst, s.pages_written + 8000, 15);
	vm_go_idle(dst);
	d = vm_verify(dst);
	assert_int_equal(d.bad_pages, 0);
	assert_int_equal(d.verified_pages, work_region(dst).pages);
	uiommu_vm_destroy(dst);
	uiommu_vm_destroy(src);
}

static void test_restored_vm_with_one_spoiled_page_verifies_one_bad(void **state)
{
	struct uiommu_vm *src = vm_new(2, 64), *dst;
	struct region w = work_region(src);
	uint64_t len, p = 0;
	void *blob;

	(void)state;
	vm_run(src, UIOMMU_WL_RANDOM, 0);
	wait_pages(src, 8000, 15);
	vm_go_idle(src);
	assert_int_equal(uiommu_vm_pause(src), 0);
	assert_int_equal(uiommu_vm_save_vcpus(src, &blob, &len), 0);
	dst = vm_clone(src, blob, len);
	free(blob);
	while (!page_word(vm_page(dst, w.gpa + p * PG), 1))
		p++;
	flip_byte(dst, w.gpa + p * PG, 100);
	assert_int_equal(uiommu_vm_resume(dst), 0);
	assert_int_equal(vm_verify(dst).bad_pages, 1);
	uiommu_vm_destroy(dst);
	assert_int_equal(uiommu_vm_resume(src), 0);
	assert_int_equal(vm_verify(src).bad_pages, 0);
	uiommu_vm_destroy(src);
}

static void test_calls_refused_in_the_wrong_state(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(1, 64);
	struct uiommu_workload wl = wl_of(UIOMMU_WL_HOTSET, 0);
	struct uiommu_vm *vm = vm_new(1, 64), *in;
	struct uiommu_vm_stats st;
	uint64_t len;
	void *blob;

	(void)state;
	assert_int_equal(uiommu_vm_start(vm, NULL), -EINVAL);
	wl.hot_pages_pct = 0;
	assert_int_equal(uiommu_vm_start(vm, &wl), -EINVAL);
	wl.hot_pages_pct = 101;
	assert_int_equal(uiommu_vm_start(vm, &wl), -EINVAL);
	wl = wl_of(UIOMMU_WL_HOTSET, 0);
	wl.hot_writes_pct = 101;
	assert_int_equal(uiommu_vm_start(vm, &wl), -EINVAL);
	wl.kind = (enum uiommu_workload_kind)9;
	assert_int_equal(uiommu_vm_start(vm, &wl), -EINVAL);
	assert_int_equal(uiommu_vm_set_throttle(vm, -0.1), -EINVAL);
	assert_int_equal(uiommu_vm_set_throttle(vm, 1.0), -EINVAL);
	assert_int_equal(uiommu_vm_set_throttle(vm, 0.0 / 0.0), -EINVAL); /* NaN */
	assert_int_equal(uiommu_vm_get_vcpu_stats(vm, 1, &st), -EINVAL);
	assert_int_equal(uiommu_vm_save_vcpus(vm, NULL, &len), -EINVAL);
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	assert_int_equal(uiommu_vm_save_vcpus(vm, &blob, &len), -EBUSY);
	assert_int_equal(uiommu_vm_restore_vcpus(vm, "", 1), -EBUSY);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	wl = wl_of(UIOMMU_WL_SEQ, 0);
	assert_int_equal(uiommu_vm_start(vm, &wl), -EBUSY);
	assert_int_equal(uiommu_vm_resume(vm), 0);
	assert_int_equal(uiommu_vm_start(vm, &wl), 0);
	uiommu_vm_stop(vm);
	uiommu_vm_stop(vm);
	assert_int_equal(uiommu_vm_start(vm, &wl), -ESHUTDOWN);
	assert_int_equal(uiommu_vm_pause(vm), -ESHUTDOWN);
	assert_int_equal(uiommu_vm_resume(vm), -ESHUTDOWN);
	assert_int_equal(uiommu_vm_save_vcpus(vm, &blob, &len), 0);
	cfg.incoming = true;
	in = vm_new_cfg(&cfg);
	assert_int_equal(uiommu_vm_start(in, &wl), -EBUSY);
	assert_int_equal(uiommu_vm_resume(in), -EINVAL);
	assert_int_equal(uiommu_vm_restore_vcpus(in, blob, len), 0);
	free(blob);
	uiommu_vm_destroy(in);
	uiommu_vm_destroy(vm);
}

/* Page-granular record of the ranges a write callback reported. */
struct wrote {
	uint64_t npages;
	uint64_t *bits; /* atomic bit operations */
};

static void wrote_cb(void *opaque, uint64_t gpa, uint64_t len)
{
	struct wrote *w = opaque;
	uint64_t p;

	assert_true(len > 0 && gpa + len <= w->npages * PG);
	for (p = gpa / PG; p <= (gpa + len - 1) / PG; p++)
		__atomic_fetch_or(&w->bits[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

static bool wrote_test(struct wrote *w, uint64_t gpa)
{
	return __atomic_load_n(&w->bits[gpa / PG / 64], __ATOMIC_RELAXED) >> (gpa / PG % 64) & 1;
}

static void wrote_clear(struct wrote *w)
{
	for (uint64_t i = 0; i < (w->npages + 63) / 64; i++)
		__atomic_store_n(&w->bits[i], 0, __ATOMIC_RELAXED);
}

static struct wrote *wrote_new(uint64_t mem_bytes)
{
	struct wrote *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->npages = mem_bytes / PG;
	w->bits = calloc((w->npages + 63) / 64, 8);
	assert_non_null(w->bits);
	return w;
}

static void wrote_free(struct wrote *w)
{
	free(w->bits);
	free(w);
}

/*
 * Every page the VMM changed in guest memory was reported through vmm_write:
 * the tables at create, the write log when it is taken, and (KVM) the
 * control blocks a command is posted to.
 */
static void test_vmm_writes_are_reported(void **state)
{
	struct uiommu_vm_cfg cfg = vm_cfg(2, 64);
	struct wrote *w = wrote_new(cfg.mem_bytes);
	struct uiommu_vm *vm;
	uint8_t *zero = calloc(1, PG), *before;
	uint64_t *log, p;

	(void)state;
	cfg.vmm_write = wrote_cb;
	cfg.vmm_write_opaque = w;
	vm = vm_new_cfg(&cfg);
	log = log_alloc(vm);
	for (p = 0; p < cfg.mem_bytes / PG; p++)
		if (memcmp(vm_page(vm, p * PG), zero, PG))
			assert_true(wrote_test(w, p * PG));
	vm_run(vm, UIOMMU_WL_SEQ, 0);
	wait_pages(vm, 2000, 15);
	vm_go_idle(vm);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	before = mem_snapshot(vm);
	wrote_clear(w);
	assert_int_equal(uiommu_vm_take_write_log(vm, log), 0);
	for (p = 0; p < cfg.mem_bytes / PG; p++)
		assert_int_equal(memcmp(vm_page(vm, p * PG), before + p * PG, PG) != 0,
				 wrote_test(w, p * PG));
	free(before);
	free(log);
	free(zero);
	uiommu_vm_destroy(vm);
	wrote_free(w);
}

/* A random blob refused: header, lengths, truncations, flips. */
static void put_u32_at(uint8_t *b, uint64_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static uint32_t get_u32_at(const uint8_t *b, uint64_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

/* Offsets of every record and section length field of a well-formed blob. */
static unsigned int blob_length_fields(const uint8_t *b, uint64_t len, uint64_t *offs,
				       unsigned int max)
{
	uint64_t off = 40, end, rec_end;
	unsigned int n = 0, r = 0;

	while (off < len && n < max) {
		offs[n++] = off + 4;
		rec_end = off + 8 + get_u32_at(b, off + 4);
		off += 8;
		if (r++ == 0) { /* the VM record has no sections */
			off = rec_end;
			continue;
		}
		for (off += 8, end = rec_end; off < end && n < max; off += 8 + get_u32_at(b, off + 4))
			offs[n++] = off + 4;
	}
	return n;
}

static void expect_refused(struct uiommu_vm *vm, const uint8_t *b, uint64_t len)
{
	assert_int_equal(uiommu_vm_restore_vcpus(vm, b, len), -EINVAL);
}

static void check_malformed_blobs(struct uiommu_vm *vm, const uint8_t *blob, uint64_t len)
{
	uint8_t *b = malloc(len + 8);
	uint64_t offs[64], rng = 7, i;
	unsigned int n, k;
	int ret;

	assert_non_null(b);
	for (i = 0; i < len; i++)
		expect_refused(vm, blob, i);
	memcpy(b, blob, len);
	b[len] = 0;
	expect_refused(vm, b, len + 1); /* a trailing byte */
	for (i = 0; i < 40; i += 4) { /* every header word */
		memcpy(b, blob, len);
		put_u32_at(b, i, get_u32_at(b, i) ^ 0x100);
		expect_refused(vm, b, len);
	}
	n = blob_length_fields(blob, len, offs, 64);
	assert_true(n >= 3);
	for (k = 0; k < n; k++) {
		for (int d = -1; d <= 1; d += 2) {
			memcpy(b, blob, len);
			put_u32_at(b, offs[k], get_u32_at(b, offs[k]) + (uint32_t)d);
			expect_refused(vm, b, len);
		}
		memcpy(b, blob, len);
		put_u32_at(b, offs[k], UINT32_MAX);
		expect_refused(vm, b, len);
		if (k > 0) { /* tags: unknown, or a copy of the previous one */
			memcpy(b, blob, len);
			put_u32_at(b, offs[k] - 4, 99);
			expect_refused(vm, b, len);
		}
	}
	for (i = 0; i < 3000; i++) {
		memcpy(b, blob, len);
		for (k = 0; k <= splitmix64(&rng) % 4; k++)
			b[splitmix64(&rng) % len] ^= (uint8_t)(1u << splitmix64(&rng) % 8);
		ret = uiommu_vm_restore_vcpus(vm, b, len);
		assert_true(ret == 0 || ret == -EINVAL);
	}
	assert_int_equal(uiommu_vm_restore_vcpus(vm, blob, len), 0);
	free(b);
}

static void test_malformed_state_blobs_are_refused(void **state)
{
	struct uiommu_vm *vm = vm_new(2, 64);
	uint64_t len;
	void *blob;

	(void)state;
	vm_run(vm, UIOMMU_WL_HOTSET, 0);
	wait_pages(vm, 2000, 15);
	assert_int_equal(uiommu_vm_pause(vm), 0);
	assert_int_equal(uiommu_vm_save_vcpus(vm, &blob, &len), 0);
	check_malformed_blobs(vm, blob, len);
	expect_refused(vm, NULL, len);
	free(blob);
	assert_int_equal(uiommu_vm_resume(vm), 0);
	vm_go_idle(vm);
	assert_int_equal(vm_verify(vm).bad_pages, 0);
	uiommu_vm_destroy(vm);
}

static void test_blob_for_another_configuration_is_refused(void **state)
{
	struct uiommu_vm *one = vm_new(1, 64), *two = vm_new(2, 64), *big = vm_new(1, 66);
	uint64_t len;
	void *blob;

	(void)state;
	assert_int_equal(uiommu_vm_save_vcpus(one, &blob, &len), 0);
	expect_refused(two, blob, len);
	expect_refused(big, blob, len);
	assert_int_equal(uiommu_vm_restore_vcpus(one, blob, len), 0);
	free(blob);
	uiommu_vm_destroy(big);
	uiommu_vm_destroy(two);
	uiommu_vm_destroy(one);
}

#define VM_CASES                                                               \
	cmocka_unit_test(test_create_rejects_bad_configs),                     \
	cmocka_unit_test(test_regions_split_guest_memory),                     \
	cmocka_unit_test(test_seq_sweeps_each_slice_from_its_start),           \
	cmocka_unit_test(test_random_spreads_writes_over_each_slice),          \
	cmocka_unit_test(test_hotset_sends_most_writes_to_the_hot_pages),      \
	cmocka_unit_test(test_idle_writes_nothing_and_exits_rarely),           \
	cmocka_unit_test(test_rate_limit_holds_and_exits_come_every_half_ms),  \
	cmocka_unit_test(test_throttle_holds_vcpus_back_and_counts_stall),     \
	cmocka_unit_test(test_throttle_scales_a_rate_limited_workload),        \
	cmocka_unit_test(test_paused_vm_writes_nothing_until_resumed),         \
	cmocka_unit_test(test_verify_finds_flipped_misplaced_stale_and_nonzero_pages), \
	cmocka_unit_test(test_saved_vm_resumes_in_a_fresh_vm_and_verifies),    \
	cmocka_unit_test(test_restored_vm_with_one_spoiled_page_verifies_one_bad), \
	cmocka_unit_test(test_calls_refused_in_the_wrong_state),               \
	cmocka_unit_test(test_vmm_writes_are_reported),                        \
	cmocka_unit_test(test_malformed_state_blobs_are_refused),              \
	cmocka_unit_test(test_blob_for_another_configuration_is_refused)

#endif
