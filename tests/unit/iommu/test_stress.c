/* SPDX-License-Identifier: MIT */
/*
 * Concurrency stress of the emulated IOMMU against a shadow log.
 *
 * Writer threads, each with its own device, DMA into pages they own in a
 * stable region S (half 2 MiB leaves, half 4 KiB leaves) and into a churn
 * region C that a mapper thread keeps mapping, splitting and unmapping. A
 * harvester thread reads-and-clears (sometimes with NO_CLEAR, sometimes a
 * sub-range) and records each harvest's report. Harvest k is announced by
 * setting a counter to k before it starts.
 *
 * Each write to S is logged as (page, s0, s1): the counter before it started
 * and after it completed. The invariant checked: the page appears in the
 * report of some harvest k >= s0, at the latest in the first harvest after s1
 * whose range covers it. That is "a write that completed before a harvest
 * began is reported by it; one that raced is reported by it or the next".
 * At the end the contents of S must equal the last write to each page.
 *
 * Bounded in time (UIOMMU_STRESS_SECONDS, default 2) and in log size; run
 * under TSan by `make tsan`.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "iommu_test.h"

#define WRITERS 3
#define PG 4096ull
#define S_PAGES 4096ull /* 16 MiB */
#define C_PAGES 2048ull /* 8 MiB */
#define BASE (GiB - 8 * MiB)
#define C_BASE (BASE + S_PAGES * PG)
#define MAX_LOG (1u << 20)
#define MAX_HARVESTS 20000u
#define RW (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)

struct logrec {
	uint32_t page;
	uint32_t s0, s1;
};

struct report {
	uint64_t first, last; /* pages covered */
	uint64_t bits[S_PAGES / 64];
};

struct stress {
	struct uiommu_domain *d;
	unsigned char *host_s, *host_c;
	_Atomic uint32_t seq;
	atomic_bool stop;
	uint64_t deadline_ns;      /* the run's length, once it made the minimum progress */
	uint64_t hard_deadline_ns; /* the end, progress or not */
	_Atomic uint64_t writes, harvests;
	struct report *reports; /* index k: harvest k */
	uint32_t nr_reports;
};

struct writer {
	struct stress *st;
	unsigned int id;
	struct uiommu_device *dev;
	uint64_t seed;
	struct logrec *log;
	uint32_t nr_log;
	uint64_t nr_writes;
	uint64_t *last_val; /* per owned page: last value written */
	uint64_t faults_c;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Enough work to mean something even on a loaded machine (TSan on 2 busy cores). */
#define MIN_WRITES 1000u
#define MIN_HARVESTS 10u

static bool time_up(struct stress *st)
{
	uint64_t now = now_ns();

	if (atomic_load(&st->stop) || now > st->hard_deadline_ns)
		return true;
	return now > st->deadline_ns && atomic_load(&st->writes) > MIN_WRITES &&
	       atomic_load(&st->harvests) > MIN_HARVESTS;
}

static void writer_one(struct writer *w)
{
	uint64_t page = (rnd(&w->seed) % (S_PAGES / WRITERS)) * WRITERS + w->id;
	uint64_t val = ((uint64_t)w->id << 56) | ++w->nr_writes;
	uint64_t off = (rnd(&w->seed) % (PG / 8)) * 8;
	struct logrec r;

	r.page = (uint32_t)page;
	r.s0 = atomic_load(&w->st->seq);
	/* Owned pages hold one value everywhere: the content check reads page start. */
	assert_int_equal(uiommu_device_dma_write(w->dev, BASE + page * PG + off, &val, 8), 0);
	if (off)
		assert_int_equal(uiommu_device_dma_write(w->dev, BASE + page * PG, &val, 8), 0);
	r.s1 = atomic_load(&w->st->seq);
	/* A full log stops logging, not writing: the harvester keeps its time. */
	if (w->nr_log < MAX_LOG)
		w->log[w->nr_log++] = r;
	w->last_val[page / WRITERS] = val;
	atomic_fetch_add_explicit(&w->st->writes, 1, memory_order_relaxed);
}

static void writer_churn(struct writer *w)
{
	uint64_t page = (rnd(&w->seed) % (C_PAGES / WRITERS)) * WRITERS + w->id;
	uint64_t val = rnd(&w->seed);
	int rc = uiommu_device_dma_write(w->dev, C_BASE + page * PG + 64, &val, 8);

	assert_true(rc == 0 || rc == -EFAULT);
	w->faults_c += rc != 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!time_up(w->st)) {
		writer_one(w);
		if (rnd(&w->seed) % 4 == 0)
			writer_churn(w);
	}
	return NULL;
}

static void *mapper_main(void *arg)
{
	struct stress *st = arg;
	uint64_t seed = 77;

	while (!time_up(st)) {
		/* Whole region with 2 MiB leaves, then holes that split them. */
		assert_int_equal(uiommu_domain_map(st->d, C_BASE, st->host_c, C_PAGES * PG, RW), 0);
		for (int i = 0; i < 16; i++) {
			uint64_t first = rnd(&seed) % C_PAGES, n = 1 + rnd(&seed) % 64;

			if (first + n > C_PAGES)
				n = C_PAGES - first;
			assert_int_equal(uiommu_domain_unmap(st->d, C_BASE + first * PG, n * PG, NULL),
					 0);
			/* The domain lock is not fair: leave the harvester its turns. */
			usleep(20);
		}
		assert_int_equal(uiommu_domain_unmap(st->d, C_BASE, C_PAGES * PG, NULL), 0);
	}
	return NULL;
}

static int report_sink(void *opaque, const struct uiommu_dirty_run *run)
{
	struct report *r = opaque;

	for (uint64_t j = 0; j < run->nbits; j++) {
		uint64_t first = run->iova + (j << run->pgshift);
		uint64_t last = first + (1ull << run->pgshift) - 1;

		if (!(run->bits[j / 64] & (1ull << (j % 64))))
			continue;
		for (uint64_t a = (first > BASE ? first : BASE); a <= last && a < C_BASE; a += PG)
			r->bits[(a - BASE) / PG / 64] |= 1ull << ((a - BASE) / PG % 64);
	}
	return 0;
}

static void harvest_once(struct stress *st, uint64_t *seed, bool full)
{
	uint32_t k = atomic_load(&st->seq) + 1;
	struct report *r = &st->reports[k];
	uint64_t first = 0, n = S_PAGES + C_PAGES;
	uint32_t flags = rnd(seed) % 5 ? 0 : UIOMMU_DIRTY_NO_CLEAR;

	if (!full && rnd(seed) % 4 == 0) {
		first = rnd(seed) % S_PAGES;
		n = 1 + rnd(seed) % (S_PAGES - first);
	}
	r->first = first;
	r->last = first + n - 1;
	atomic_store(&st->seq, k);
	assert_int_equal(uiommu_domain_read_and_clear_dirty(st->d, BASE + first * PG, n * PG,
							     flags, report_sink, r),
			 0);
	st->nr_reports = k;
	atomic_fetch_add_explicit(&st->harvests, 1, memory_order_relaxed);
}

static void *harvester_main(void *arg)
{
	struct stress *st = arg;
	uint64_t seed = 99;

	while (!time_up(st) && st->nr_reports + 2 < MAX_HARVESTS) {
		harvest_once(st, &seed, false);
		usleep((useconds_t)(rnd(&seed) % 200));
	}
	return NULL;
}

static bool reported(const struct report *r, uint64_t page)
{
	return r->bits[page / 64] & (1ull << (page % 64));
}

/* The invariant of the file comment, for one logged write. */
static void check_write(const struct stress *st, const struct logrec *l)
{
	for (uint32_t k = l->s0 ? l->s0 : 1; k <= st->nr_reports; k++) {
		const struct report *r = &st->reports[k];

		if (reported(r, l->page))
			return;
		if (k > l->s1 && l->page >= r->first && l->page <= r->last)
			fail_msg("page %u written in [%u, %u] not reported by harvest %u", l->page,
				 l->s0, l->s1, k);
	}
	fail_msg("page %u written in [%u, %u] never reported", l->page, l->s0, l->s1);
}

static void writer_init(struct writer *w, struct stress *st, unsigned int id, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->st = st;
	w->id = id;
	w->seed = seed + id;
	w->log = calloc(MAX_LOG, sizeof(*w->log));
	w->last_val = calloc(S_PAGES / WRITERS + 1, sizeof(*w->last_val));
	assert_true(w->log && w->last_val);
	assert_int_equal(uiommu_device_create(NULL, &w->dev), 0);
	assert_int_equal(uiommu_device_attach(w->dev, st->d), 0);
}

static void check_writer(const struct stress *st, const struct writer *w)
{
	for (uint32_t i = 0; i < w->nr_log; i++)
		check_write(st, &w->log[i]);
	for (uint64_t p = w->id; p < S_PAGES; p += WRITERS) {
		uint64_t v;

		if (!w->last_val[p / WRITERS])
			continue;
		/* The second half is backed one host page further. */
		memcpy(&v, st->host_s + (p < S_PAGES / 2 ? p : p + 1) * PG, 8);
		assert_true(v == w->last_val[p / WRITERS]);
	}
}

static void stress_setup(struct stress *st)
{
	struct uiommu_domain_cfg cfg = { .format = UIOMMU_PT_X86 };
	const char *secs = getenv("UIOMMU_STRESS_SECONDS");

	memset(st, 0, sizeof(*st));
	st->host_s = host_alloc(S_PAGES * PG + PG, 2 * MiB);
	st->host_c = host_alloc(C_PAGES * PG, 2 * MiB);
	st->reports = calloc(MAX_HARVESTS, sizeof(*st->reports));
	assert_non_null(st->reports);
	assert_int_equal(uiommu_domain_create(&cfg, &st->d), 0);
	/* First half: 2 MiB leaves. Second half: host off by a page, so 4 KiB leaves. */
	assert_int_equal(uiommu_domain_map(st->d, BASE, st->host_s, S_PAGES / 2 * PG, RW), 0);
	assert_int_equal(uiommu_domain_map(st->d, BASE + S_PAGES / 2 * PG,
					   st->host_s + (S_PAGES / 2 + 1) * PG, S_PAGES / 2 * PG,
					   RW),
			 0);
	assert_int_equal(uiommu_domain_set_dirty_tracking(st->d, true), 0);
	st->deadline_ns = now_ns() + (uint64_t)((secs ? atof(secs) : 2.0) * 1e9);
	st->hard_deadline_ns = st->deadline_ns + 60000000000ull;
}

static void test_concurrent_dma_harvest_and_map_lose_no_dirty_write(void **state)
{
	struct writer w[WRITERS];
	pthread_t tw[WRITERS], tm, th;
	uint64_t seed = test_seed("stress"), writes = 0;
	struct stress st;

	(void)state;
	stress_setup(&st);
	for (unsigned int i = 0; i < WRITERS; i++)
		writer_init(&w[i], &st, i, seed);
	for (unsigned int i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_create(&tw[i], NULL, writer_main, &w[i]), 0);
	assert_int_equal(pthread_create(&tm, NULL, mapper_main, &st), 0);
	assert_int_equal(pthread_create(&th, NULL, harvester_main, &st), 0);
	for (unsigned int i = 0; i < WRITERS; i++)
		pthread_join(tw[i], NULL);
	atomic_store(&st.stop, true);
	pthread_join(tm, NULL);
	pthread_join(th, NULL);
	/* A last full harvest after every write completed. */
	harvest_once(&st, &seed, true);
	for (unsigned int i = 0; i < WRITERS; i++) {
		check_writer(&st, &w[i]);
		writes += w[i].nr_log;
		uiommu_device_destroy(w[i].dev);
		free(w[i].log);
		free(w[i].last_val);
	}
	printf("# %llu logged writes, %u harvests\n", (unsigned long long)writes, st.nr_reports);
	assert_true(writes > MIN_WRITES && st.nr_reports > MIN_HARVESTS);
	uiommu_domain_destroy(st.d);
	free(st.reports);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_dma_harvest_and_map_lose_no_dirty_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
