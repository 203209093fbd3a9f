// SPDX-License-Identifier: MIT
/*
 * kvm-ring against a model of KVM's dirty ring, so that the cases a real
 * KVM rarely shows can be forced, with any ring size, without /dev/kvm.
 *
 * The model behaves as the KVM documentation and the kernel describe the
 * ring (written from that description, not from kernel code): a push
 * writes slot and offset, then flags = DIRTY (release), then advances its
 * free-running dirty index, whatever the entry held (a vCPU that keeps
 * running past a full ring overwrites entries nobody read); the vCPU is
 * soft-full when dirty - reset index >= size - reserve, and then exits
 * with KVM_EXIT_DIRTY_RING_FULL before it runs again; KVM_RESET_DIRTY_RINGS
 * walks from the reset index while entries are RESET, making them empty -
 * bounded by nothing else, so an entry marked RESET that KVM never pushed
 * would carry the reset index past the dirty index (the model records that
 * as a fatal error: a real KVM would keep the ring full for good).
 *
 * A reset with an unblocked signal is recorded as an error too: KVM (6.17
 * on) stops its walk with -EINTR when a signal is pending, and pages of the
 * entries it had taken by then stay writable, so their next writes reach no
 * ring. The source resets from vCPU threads, where the VM's kick signal
 * lands, and must block signals around the ioctl.
 *
 * The source reaches the model through its ioctls (linked with
 * -Wl,--wrap=ioctl: KVM_RESET_DIRTY_RINGS and KVM_SET_USER_MEMORY_REGION on
 * the model's fd) and the ring memory itself. The model's vCPU keeps a
 * guest-side write log; every test checks that what the source reports
 * covers it (exactly, when no overflow was counted).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/vm_sources.h>

#include "seeded.h"

#define RING 64u    /* entries: KVM takes 256 at least; the model any power of two */
#define RESERVE 16u /* KVM reserves 64 of its (larger) rings */
#define NP 512u	    /* slot pages */
#define WORDS (NP / 64)
#define MAX_EXITS 100000u /* consecutive ring-full exits taken as a wedged vCPU */

struct model {
	int fd;
	struct kvm_dirty_gfn gfns[RING];
	uint32_t dirty_index, reset_index; /* atomics */
	pthread_mutex_t reset_lock;	   /* the model's resets and pushes */
	bool overran;			   /* a reset carried reset_index past dirty_index */
	uint64_t written[WORDS];	   /* the guest-side write log (atomic ORs) */
	uint64_t ring_full_exits;
	bool wedged;
	bool reset_interruptible; /* a reset ran with signals it could stop for */
	unsigned int fail_resets; /* the next ones walk, then fail with EINTR (6.17's bail-out) */
	unsigned int region_calls; /* KVM_SET_USER_MEMORY_REGION: dirty logging off or on */
};

static struct model m;

int __real_ioctl(int fd, unsigned long req, ...);
int __wrap_ioctl(int fd, unsigned long req, ...);

static void model_reset(void)
{
	pthread_mutex_lock(&m.reset_lock);
	for (;;) {
		uint32_t r = __atomic_load_n(&m.reset_index, __ATOMIC_RELAXED);
		struct kvm_dirty_gfn *e = &m.gfns[r % RING];

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_RESET))
			break;
		__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&m.reset_index, r + 1, __ATOMIC_RELEASE);
		if ((int32_t)(r + 1 - __atomic_load_n(&m.dirty_index, __ATOMIC_ACQUIRE)) > 0)
			__atomic_store_n(&m.overran, true, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&m.reset_lock);
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != m.fd)
		return __real_ioctl(fd, req, arg);
	if (req == KVM_RESET_DIRTY_RINGS) {
		sigset_t cur;

		pthread_sigmask(SIG_BLOCK, NULL, &cur);
		if (!sigismember(&cur, SIGRTMIN + 6) || !sigismember(&cur, SIGINT))
			__atomic_store_n(&m.reset_interruptible, true, __ATOMIC_RELAXED);
		model_reset();
		if (m.fail_resets) {
			m.fail_resets--;
			errno = EINTR;
			return -1;
		}
		return 0;
	}
	m.region_calls++;
	return 0; /* KVM_SET_USER_MEMORY_REGION: logging on or off */
}

static uint32_t model_used(void)
{
	return __atomic_load_n(&m.dirty_index, __ATOMIC_ACQUIRE) -
	       __atomic_load_n(&m.reset_index, __ATOMIC_ACQUIRE);
}

/*
 * A push is atomic with respect to the model's reset (KVM's are not), so
 * that the reset's check of its index against the dirty index is exact.
 */
static void model_push(uint64_t page)
{
	uint32_t d = __atomic_load_n(&m.dirty_index, __ATOMIC_RELAXED);
	struct kvm_dirty_gfn *e = &m.gfns[d % RING];

	uiommu_bitmap_set_atomic(m.written, page);
	pthread_mutex_lock(&m.reset_lock);
	__atomic_store_n(&e->slot, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e->offset, page, __ATOMIC_RELAXED);
	__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_DIRTY, __ATOMIC_RELEASE);
	__atomic_store_n(&m.dirty_index, d + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&m.reset_lock);
}

/*
 * The vCPU writes @n pages drawn by @next. Well-behaved, it takes a
 * ring-full exit (the source's callback) while soft-full, as KVM makes it;
 * a runaway vCPU pushes regardless.
 */
static void model_run(struct uiommu_kvm_ring_link *link, uint64_t n, bool runaway,
		      uint64_t (*next)(void))
{
	for (uint64_t i = 0; i < n; i++) {
		uint32_t exits = 0;

		while (!runaway && model_used() >= RING - RESERVE) {
			if (++exits > MAX_EXITS) {
				m.wedged = true;
				return;
			}
			m.ring_full_exits++;
			uiommu_kvm_ring_full(link, 0);
		}
		model_push(next());
	}
}

static uint64_t next_random(void)
{
	return rnd_below(NP);
}

struct fixture {
	struct uiommu_kvm_ring_link link;
	struct uiommu_dirty_source *src;
	uint64_t got[WORDS]; /* reported since the last window */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct uiommu_vm_kvm_info info = {
	    .bytes = NP * 4096ull, .nr_vcpus = 1, .ring_entries = RING};

	memset(&m, 0, sizeof(m));
	pthread_mutex_init(&m.reset_lock, NULL);
	m.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	info.vm_fd = m.fd;
	info.host = f;
	info.rings[0] = m.gfns;
	assert_int_equal(uiommu_kvm_ring_source_create(&info, &f->link, &f->src), 0);
	assert_int_equal(uiommu_dirty_source_start(f->src), 0);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	uiommu_dirty_source_destroy(f->src);
	close(m.fd);
	pthread_mutex_destroy(&m.reset_lock);
	free(f);
	return 0;
}

static struct uiommu_kvm_source_stats stats(struct fixture *f)
{
	struct uiommu_kvm_source_stats st;

	assert_int_equal(uiommu_kvm_source_get_stats(f->src, &st), 0);
	return st;
}

static void collect(struct fixture *f)
{
	assert_int_equal(uiommu_dirty_source_collect(f->src, f->got, NULL), 0);
}

/*
 * Closes a window: every page written since the last one was reported,
 * and nothing else unless @overflow_allowed; then both logs start afresh.
 */
static void window(struct fixture *f, bool overflow_allowed)
{
	for (uint64_t p = 0; p < NP; p++) {
		bool w = uiommu_bitmap_test(m.written, p), g = uiommu_bitmap_test(f->got, p);

		if (w && !g)
			fail_msg("UIOMMU_SEED=%" PRIu64 ": page %" PRIu64 " written, not reported",
				 seed, p);
		if (g && !w && !overflow_allowed)
			fail_msg("UIOMMU_SEED=%" PRIu64 ": page %" PRIu64 " reported, not written",
				 seed, p);
	}
	memset(m.written, 0, sizeof(m.written));
	memset(f->got, 0, sizeof(f->got));
	assert_false(m.overran);
	assert_false(m.wedged);
	assert_false(__atomic_load_n(&m.reset_interruptible, __ATOMIC_RELAXED));
}

static void test_model_ring_full_exits_keep_reports_exact(void **state)
{
	struct fixture *f = *state;

	for (int round = 0; round < 30; round++) {
		model_run(&f->link, 50 + rnd_below(200), false, next_random);
		collect(f);
		window(f, false);
	}
	assert_true(stats(f).ring_full > 0);
	assert_int_equal(stats(f).overflows, 0);
}

/* The collector is late and the vCPU ran past the full ring by less than a lap. */
static void test_model_ring_overrun_within_a_lap_reports_every_page(void **state)
{
	struct fixture *f = *state;

	model_run(&f->link, 100, false, next_random);
	collect(f);
	window(f, false);
	model_run(&f->link, RING + 20, true, next_random);
	collect(f);
	assert_int_equal(stats(f).overflows, 1);
	assert_int_equal(uiommu_bitmap_count_range(f->got, 0, NP - 1), NP);
	window(f, true);
	for (int round = 0; round < 10; round++) {
		model_run(&f->link, 100 + rnd_below(100), false, next_random);
		collect(f);
		window(f, false); /* exact again: the 20 overwritten entries are recycled */
	}
	assert_int_equal(stats(f).overflows, 1);
}

/*
 * Several laps: KVM then counts more overwritten entries than the soft
 * limit, so the vCPU cannot run until they are recycled, one per ring-full
 * exit, without ever marking an entry KVM did not push.
 */
static void test_model_ring_overrun_of_several_laps_unwedges_and_loses_nothing(void **state)
{
	struct fixture *f = *state;
	struct uiommu_kvm_source_stats st;

	model_run(&f->link, 3 * RING + 10, true, next_random);
	collect(f);
	window(f, true);
	assert_true(model_used() >= RING - RESERVE); /* wedged unless recycled */
	for (int round = 0; round < 10; round++) {
		model_run(&f->link, 100 + rnd_below(100), false, next_random);
		collect(f);
		window(f, round == 0);
	}
	st = stats(f);
	print_message("%" PRIu64 " overflows, %" PRIu64 " recycled, %" PRIu64 " ring-full\n",
		      st.overflows, st.recycled, st.ring_full);
	assert_int_equal(st.overflows, 1);
	assert_true(st.recycled > 0);
}

struct race {
	struct fixture *f;
	uint64_t writes;
	bool done; /* atomic */
	uint64_t seed;
};

static uint64_t race_rng;

static uint64_t next_race(void)
{
	return splitmix64(&race_rng) % NP;
}

/* The vCPU: well-behaved stretches and runaway bursts of up to three laps. */
static void *race_vcpu(void *arg)
{
	struct race *r = arg;

	race_rng = r->seed;
	for (uint64_t w = 0; w < r->writes && !m.wedged;) {
		uint64_t n = 1 + splitmix64(&race_rng) % (3 * RING);
		bool runaway = splitmix64(&race_rng) % 4 == 0;

		model_run(&r->f->link, n, runaway, next_race);
		w += n;
	}
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* A collector that falls behind at random while the vCPU runs, and runs away. */
static void test_model_ring_collector_racing_a_runaway_vcpu_loses_nothing(void **state)
{
	struct race r = {.f = *state, .writes = 60000, .seed = rnd()};
	struct uiommu_kvm_source_stats st;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, race_vcpu, &r), 0);
	while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE)) {
		struct timespec ts = {0, (long)rnd_below(300) * 1000};

		nanosleep(&ts, NULL);
		collect(r.f);
	}
	pthread_join(t, NULL);
	collect(r.f);
	st = stats(r.f);
	print_message("%" PRIu64 " overflows, %" PRIu64 " recycled, %" PRIu64 " ring-full\n",
		      st.overflows, st.recycled, st.ring_full);
	window(r.f, st.overflows > 0);
}

/*
 * A reset that fails part way (KVM 6.17 on, with a signal pending: the
 * entries are taken, their pages not write-protected) must not lose the
 * pages' next writes: the source turns dirty logging off and on (KVM
 * write-protects the whole slot again) and reports every page.
 */
static void test_model_failed_reset_protects_the_slot_again_and_reports_all(void **state)
{
	struct fixture *f = *state;
	unsigned int calls;

	model_run(&f->link, 20, false, next_random);
	collect(f);
	window(f, false);
	model_run(&f->link, 20, false, next_random);
	m.fail_resets = 1;
	calls = m.region_calls;
	assert_int_equal(uiommu_dirty_source_collect(f->src, f->got, NULL), -EINTR);
	assert_int_equal(m.region_calls, calls + 2);
	assert_int_equal(stats(f).overflows, 1);
	for (uint64_t p = 0; p < NP; p++)
		assert_true(uiommu_bitmap_test(f->got, p));
	window(f, true);
	/* Exact again afterwards. */
	model_run(&f->link, 100, false, next_random);
	collect(f);
	window(f, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_model_ring_full_exits_keep_reports_exact,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_model_ring_overrun_within_a_lap_reports_every_page,
					    fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(
		test_model_ring_overrun_of_several_laps_unwedges_and_loses_nothing, fixture_setup,
		fixture_teardown),
	    cmocka_unit_test_setup_teardown(
		test_model_ring_collector_racing_a_runaway_vcpu_loses_nothing, fixture_setup,
		fixture_teardown),
	    cmocka_unit_test_setup_teardown(
		test_model_failed_reset_protects_the_slot_again_and_reports_all, fixture_setup,
		fixture_teardown),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
