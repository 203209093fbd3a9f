// SPDX-License-Identifier: MIT
/*
 * Concurrency stress (suite 'stress', run under TSan): one thread DMA-writes
 * through an IOMMU-backed device (opt-in IOMMU dirty bits), one writes
 * through an emulated device's rw path, one harvests with GET_BITMAP.
 *
 * Before a write, a writer reads how many harvests have started (g); after
 * it completed, it records g for the page. A write that began after harvest
 * g - 1 started and completed before harvest r starts must be reported by one
 * of the harvests g - 1 .. r (one racing with it, or a later one). The
 * harvester collects the records, starts harvest r, and checks that the page
 * was reported by a harvest numbered g - 1 or later: otherwise a dirty page
 * was lost. (A writer may be delayed between its write and its record, so
 * "this harvest or the previous one" would not be a sound check.)
 */
#include <pthread.h>
#include <stdatomic.h>

#include "vt1_test.h"

#define NPAGES 512
#define ROUNDS 400

struct stress {
	struct vt1 *t;
	atomic_bool stop;
	atomic_int started;         /* harvests started */
	atomic_int shadow[NPAGES];  /* g + 1 of the last completed write, 0 = none */
};

static void *dma_writer(void *arg)
{
	struct stress *s = arg;
	struct uiommu_device *dev = uiommu_hwdev_dma(s->t->hw);
	uint64_t x = 1;

	while (!atomic_load(&s->stop)) {
		uint64_t page = (x = x * 6364136223846793005ull + 1) % (NPAGES / 2);
		char c = (char)x;

		int g = atomic_load(&s->started);

		assert_int_equal(uiommu_device_dma_write(dev, page * PG, &c, 1), 0);
		atomic_store(&s->shadow[page], g + 1);
	}
	return NULL;
}

static void *rw_writer(void *arg)
{
	struct stress *s = arg;
	uint64_t x = 7;

	while (!atomic_load(&s->stop)) {
		uint64_t page = NPAGES / 2 + (x = x * 6364136223846793005ull + 1) % (NPAGES / 2);
		char c = (char)x;

		int g = atomic_load(&s->started);

		assert_int_equal(uiommu_vfio_dma_rw(s->t->emu, page * PG + 3, &c, 1, true), 0);
		atomic_store(&s->shadow[page], g + 1);
	}
	return NULL;
}

static void harvest_rounds(struct stress *s)
{
	uint64_t cur[NPAGES / 64];
	int need[NPAGES], last_seen[NPAGES];

	for (int p = 0; p < NPAGES; p++)
		last_seen[p] = -1;
	for (int r = 0; r < ROUNDS; r++) {
		for (int p = 0; p < NPAGES; p++)
			need[p] = atomic_exchange(&s->shadow[p], 0) - 1; /* g, or -1 */
		atomic_store(&s->started, r + 1);
		memset(cur, 0, sizeof(cur));
		assert_int_equal(vt1_get_bitmap(s->t, 0, NPAGES * PG, PG, cur, sizeof(cur)), 0);
		for (int p = 0; p < NPAGES; p++) {
			if ((cur[p / 64] >> (p % 64)) & 1)
				last_seen[p] = r;
			if (need[p] >= 0 && last_seen[p] < need[p] - 1)
				fail_msg("round %d: dirty page %d (written after harvest %d) lost", r,
					 p, need[p] - 1);
		}
	}
}

static void test_no_dirty_page_lost(void **state)
{
	struct stress *s = calloc(1, sizeof(*s));
	pthread_t a, b;

	(void)state;
	s->t = vt1_new();
	vt1_add_emu(s->t);
	vt1_join(s->t, s->t->g);
	assert_int_equal(uiommu_vfio_set_options(s->t->c, UIOMMU_VFIO_OPT_IOMMU_DIRTY), 0);
	assert_int_equal(cio(s->t, VFIO_SET_IOMMU, (void *)VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(vt1_map_mem(s->t, 0, 0, NPAGES / 2 * PG), 0);
	assert_int_equal(vt1_map_mem(s->t, NPAGES / 2 * PG, NPAGES / 2 * PG, NPAGES / 2 * PG), 0);
	assert_int_equal(vt1_dirty(s->t, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	pthread_create(&a, NULL, dma_writer, s);
	pthread_create(&b, NULL, rw_writer, s);
	harvest_rounds(s);
	atomic_store(&s->stop, true);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	vt1_free(s->t);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_dirty_page_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
