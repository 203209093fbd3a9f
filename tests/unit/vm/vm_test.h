/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the VM tests: a VM of the backend under test (set by
 * each test binary's main), snapshots of guest memory, and readers of the
 * self-checking page content (word 0 the GPA, word 1 the generation, i.e.
 * how often the workload wrote the page), which lets a test count exactly
 * what each vCPU wrote.
 */
#ifndef UIOMMU_TEST_VM_H
#define UIOMMU_TEST_VM_H

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/vm.h>

#define MiB (1ull << 20)
#define PG UIOMMU_VM_PAGE_SIZE

static enum uiommu_vm_backend backend;

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(unsigned int ms)
{
	usleep(ms * 1000u);
}

static inline struct uiommu_vm_cfg vm_cfg(unsigned int nr_vcpus, uint64_t mem_mib)
{
	struct uiommu_vm_cfg cfg = {
		.mem_bytes = mem_mib * MiB,
		.nr_vcpus = nr_vcpus,
		.backend = backend,
	};

	return cfg;
}

static inline struct uiommu_vm *vm_new_cfg(const struct uiommu_vm_cfg *cfg)
{
	struct uiommu_vm *vm = NULL;

	assert_int_equal(uiommu_vm_create(cfg, &vm), 0);
	assert_non_null(vm);
	return vm;
}

static inline struct uiommu_vm *vm_new(unsigned int nr_vcpus, uint64_t mem_mib)
{
	struct uiommu_vm_cfg cfg = vm_cfg(nr_vcpus, mem_mib);

	return vm_new_cfg(&cfg);
}

static inline struct uiommu_workload wl_of(enum uiommu_workload_kind kind, uint64_t rate)
{
	struct uiommu_workload wl = {.kind = kind, .pages_per_sec = rate, .seed = 42};

	if (kind == UIOMMU_WL_HOTSET) {
		wl.hot_pages_pct = 10;
		wl.hot_writes_pct = 90;
	}
	return wl;
}

static inline void vm_run(struct uiommu_vm *vm, enum uiommu_workload_kind kind, uint64_t rate)
{
	struct uiommu_workload wl = wl_of(kind, rate);

	assert_int_equal(uiommu_vm_start(vm, &wl), 0);
}

static inline struct uiommu_vm_stats vm_stats(struct uiommu_vm *vm)
{
	struct uiommu_vm_stats st;

	uiommu_vm_get_stats(vm, &st);
	return st;
}

static inline struct uiommu_vm_stats vcpu_stats(struct uiommu_vm *vm, unsigned int i)
{
	struct uiommu_vm_stats st;

	assert_int_equal(uiommu_vm_get_vcpu_stats(vm, i, &st), 0);
	return st;
}

/* Waits (up to @secs) until the VM wrote at least @pages pages in all. */
static inline void wait_pages(struct uiommu_vm *vm, uint64_t pages, double secs)
{
	double end = now_s() + secs;

	while (vm_stats(vm).pages_written < pages && now_s() < end)
		sleep_ms(5);
	assert_true(vm_stats(vm).pages_written >= pages);
}

/* Waits (up to @secs) until vCPU @i wrote at least @pages pages. */
static inline void wait_vcpu_pages(struct uiommu_vm *vm, unsigned int i, uint64_t pages,
				   double secs)
{
	double end = now_s() + secs;

	while (vcpu_stats(vm, i).pages_written < pages && now_s() < end)
		sleep_ms(5);
	assert_true(vcpu_stats(vm, i).pages_written >= pages);
}

/* Runs VERIFY and waits for its result. */
static inline struct uiommu_vm_stats vm_verify(struct uiommu_vm *vm)
{
	double end = now_s() + 15;
	struct uiommu_vm_stats st;

	vm_run(vm, UIOMMU_WL_VERIFY, 0);
	do {
		sleep_ms(5);
		st = vm_stats(vm);
	} while (!st.verify_done && now_s() < end);
	assert_true(st.verify_done);
	assert_int_equal(st.unexpected_exits, 0);
	return st;
}

struct region {
	uint64_t gpa, bytes, pages;
};

static inline struct region work_region(struct uiommu_vm *vm)
{
	struct region r;

	uiommu_vm_work_region(vm, &r.gpa, &r.bytes);
	r.pages = r.bytes / PG;
	return r;
}

static inline uint8_t *vm_page(struct uiommu_vm *vm, uint64_t gpa)
{
	return (uint8_t *)uiommu_vm_mem(vm) + gpa;
}

static inline uint64_t page_word(const uint8_t *page, unsigned int i)
{
	uint64_t w;

	memcpy(&w, page + 8 * i, sizeof(w));
	return w;
}

/* A copy of all guest memory (take it while the VM is paused). */
static inline uint8_t *mem_snapshot(struct uiommu_vm *vm)
{
	uint64_t bytes = uiommu_vm_mem_bytes(vm);
	uint8_t *copy = malloc(bytes);

	assert_non_null(copy);
	memcpy(copy, uiommu_vm_mem(vm), bytes);
	return copy;
}

/* vCPU i's slice of the work region, in work pages (see vm.h). */
static inline void slice_of(struct uiommu_vm *vm, unsigned int i, uint64_t *first, uint64_t *pages)
{
	uint64_t w = work_region(vm).pages, n = uiommu_vm_nr_vcpus(vm);

	*first = w * i / n;
	*pages = w * (i + 1) / n - *first;
}

static inline uint64_t *log_alloc(struct uiommu_vm *vm)
{
	uint64_t *bits = calloc((work_region(vm).pages + 63) / 64, 8);

	assert_non_null(bits);
	return bits;
}

static inline bool bit_test(const uint64_t *bits, uint64_t i)
{
	return bits[i / 64] >> (i % 64) & 1;
}

static inline void bit_set(uint64_t *bits, uint64_t i)
{
	bits[i / 64] |= 1ull << (i % 64);
}

#endif
