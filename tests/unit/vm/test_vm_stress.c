/* SPDX-License-Identifier: MIT */
/*
 * uiommu_vm_take_write_log() racing with software vCPUs, against a shadow
 * model: no bit may be lost.
 *
 * A taker thread numbers its takes: before take k starts it sets the epoch
 * to k. A software vCPU reports each page write through soft_write after
 * the write's log bit is set, then its generation word and its log word;
 * every report reads the epoch. For a page write, s1 is the epoch its page
 * report read and s0 the epoch the same thread's previous report read, just
 * before this write began. The bit was set after take s0 began, so after
 * every take before it had ended: a take >= s0 takes it. Take s1 + 1 had
 * not begun when the bit was already set: its exchange sees the bit unless
 * an earlier take took it. Hence the invariant checked for every write: the
 * page is in some take j, s0 <= j <= s1 + 1 ("reported by the take that
 * raced with it or by the next", as in the iommu stress test). Also: a page
 * is in no more takes than it was written (each take consumes a bit some
 * write set), and after the VM is paused and the log taken once more, the
 * pages ever reported are exactly the pages whose generation is not zero,
 * and the log is empty.
 *
 * Bounded in time (UIOMMU_STRESS_SECONDS, default 1.5) and in records; run
 * under TSan by `make tsan`.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "vm_test.h"
#include "rng.h"

#define MAX_TAKES 4096u
#define MAX_RECS (1u << 20)

struct rec {
	uint32_t page, s0, s1;
};

struct stress {
	struct uiommu_vm *vm;
	uint64_t work_gpa, pages, words;
	_Atomic uint32_t epoch;
	_Atomic uint32_t nrec;
	struct rec *recs;
	uint64_t *takes; /* take k's bits at k * words; take 0 is empty */
	uint32_t nr_takes;
	atomic_bool stop;
	double seconds;
};


static struct stress S;

static _Thread_local uint32_t last_epoch; /* read by this thread's previous report */

static void on_soft_write(void *opaque, uint64_t gpa, uint64_t len)
{
	uint32_t e = atomic_load(&S.epoch), s0 = last_epoch, i;

	(void)opaque;
	last_epoch = e;
	if (gpa < S.work_gpa || gpa >= S.work_gpa + S.pages * PG)
		return; /* the generation table and the log: in the system area */
	assert_int_equal(len, PG);
	i = atomic_fetch_add(&S.nrec, 1);
	if (i < MAX_RECS)
		S.recs[i] = (struct rec){(uint32_t)((gpa - S.work_gpa) / PG), s0, e};
}

static uint64_t *take_bits(uint32_t k)
{
	return S.takes + (uint64_t)k * S.words;
}

static void take(uint32_t k)
{
	atomic_store(&S.epoch, k);
	assert_int_equal(uiommu_vm_take_write_log(S.vm, take_bits(k)), 0);
}

/* Enough work to mean something even on a loaded machine (TSan on 2 busy cores). */
#define MIN_TAKES 100u
#define MIN_WRITES 1000u

/* The run ends at its time once it made the minimum progress, or 60 s later. */
static bool taker_done(double end)
{
	double now = now_s();

	if (atomic_load(&S.stop) || S.nr_takes + 2 >= MAX_TAKES || now > end + 60 ||
	    atomic_load(&S.nrec) >= MAX_RECS / 2)
		return true;
	return now >= end && S.nr_takes > MIN_TAKES && atomic_load(&S.nrec) > MIN_WRITES;
}

static void *taker(void *arg)
{
	uint64_t rng = 99;
	double end = now_s() + S.seconds;

	(void)arg;
	while (!taker_done(end)) {
		take(++S.nr_takes);
		usleep((useconds_t)(splitmix64(&rng) % 400));
	}
	return NULL;
}

static bool in_some_take(uint32_t page, uint32_t lo, uint32_t hi)
{
	uint32_t j;

	for (j = lo ? lo : 1; j <= hi && j <= S.nr_takes; j++)
		if (bit_test(take_bits(j), page))
			return true;
	return false;
}

/* Every write is in a take of its window; returns the writes per page. */
static uint32_t *check_records(void)
{
	uint32_t n = atomic_load(&S.nrec), i, *writes = calloc(S.pages, 4);

	assert_non_null(writes);
	assert_true(n > MIN_WRITES);
	assert_true(n <= MAX_RECS);
	for (i = 0; i < n; i++) {
		struct rec r = S.recs[i];

		assert_true(r.s0 <= r.s1 && r.s1 <= S.nr_takes);
		assert_true(in_some_take(r.page, r.s0, r.s1 + 1));
		writes[r.page]++;
	}
	return writes;
}

/* A page is in no more takes than it was written, and in one iff written. */
static void check_takes(const uint32_t *writes)
{
	uint64_t p, gen;
	uint32_t k, nr;

	for (p = 0; p < S.pages; p++) {
		for (k = 1, nr = 0; k <= S.nr_takes; k++)
			nr += bit_test(take_bits(k), p);
		gen = page_word(vm_page(S.vm, S.work_gpa + p * PG), 1);
		assert_int_equal(gen, writes[p]);
		assert_true(nr <= writes[p]);
		assert_int_equal(nr != 0, gen != 0);
	}
}

/*
 * One run of @wl on 2 software vCPUs against the taker. With random writes
 * over the whole work region a page is rarely written twice within a take,
 * so a bit lost by a take is rarely masked by a neighbouring write of the
 * same page; the hot set makes takes and writers meet on the same words.
 */
static void stress_run(const struct uiommu_workload *wl, double seconds)
{
	struct uiommu_vm_cfg cfg = vm_cfg(2, 32);
	uint32_t *writes;
	uint64_t *last;
	pthread_t t;

	memset(&S, 0, sizeof(S));
	last_epoch = 0;
	S.seconds = seconds;
	cfg.soft_write = on_soft_write;
	S.vm = vm_new_cfg(&cfg);
	uiommu_vm_work_region(S.vm, &S.work_gpa, &S.pages);
	S.pages /= PG;
	S.words = (S.pages + 63) / 64;
	S.recs = calloc(MAX_RECS, sizeof(*S.recs));
	S.takes = calloc((uint64_t)MAX_TAKES * S.words, 8);
	assert_true(S.recs && S.takes);
	assert_int_equal(uiommu_vm_start(S.vm, wl), 0);
	assert_int_equal(pthread_create(&t, NULL, taker, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(uiommu_vm_pause(S.vm), 0);
	take(++S.nr_takes);
	print_message("%u takes, %u page writes\n", S.nr_takes, atomic_load(&S.nrec));
	assert_true(S.nr_takes > MIN_TAKES);
	writes = check_records();
	check_takes(writes);
	free(writes);
	last = log_alloc(S.vm);
	assert_int_equal(uiommu_vm_take_write_log(S.vm, last), 0);
	for (uint64_t w = 0; w < S.words; w++)
		assert_int_equal(last[w], 0);
	free(last);
	uiommu_vm_destroy(S.vm);
	free(S.recs);
	free(S.takes);
}

static double stress_seconds(void)
{
	const char *env = getenv("UIOMMU_STRESS_SECONDS");

	return env ? atof(env) : 1.5;
}

static void test_take_write_log_racing_random_writes_loses_no_bit(void **state)
{
	struct uiommu_workload wl = {.kind = UIOMMU_WL_RANDOM, .pages_per_sec = 300000, .seed = 3};

	(void)state;
	stress_run(&wl, stress_seconds());
}

static void test_take_write_log_racing_hot_set_writes_loses_no_bit(void **state)
{
	struct uiommu_workload wl = {.kind = UIOMMU_WL_HOTSET, .pages_per_sec = 300000,
				     .hot_pages_pct = 20, .hot_writes_pct = 80, .seed = 5};

	(void)state;
	stress_run(&wl, stress_seconds());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_write_log_racing_random_writes_loses_no_bit),
		cmocka_unit_test(test_take_write_log_racing_hot_set_writes_loses_no_bit),
	};

	backend = UIOMMU_VM_SOFT;
	return cmocka_run_group_tests_name("vm_stress", tests, NULL, NULL);
}
