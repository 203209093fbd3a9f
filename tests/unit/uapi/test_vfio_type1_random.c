// SPDX-License-Identifier: MIT
/*
 * Randomized differential test of type1 MAP / UNMAP / rw / GET_BITMAP on a
 * v2 container with an emulated group, against a naive model: one slot per
 * page holding the id of the entry that maps it, and one dirty flag per page.
 * Model rules (uapi-spec §1.4-§1.6): MAP fails with EEXIST on any overlap;
 * UNMAP and GET_BITMAP fail with EINVAL when the range cuts an entry and
 * otherwise act on the whole entries inside; rw writes dirty their pages;
 * a report returns and clears the dirty flags of entries in range. The seed
 * is printed; UIOMMU_SEED replays a failure.
 */
#include "vt1_test.h"
#include "seeded.h"

#define NPAGES 256

static uint64_t u_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

struct model {
	uint32_t owner[NPAGES]; /* entry id, 0 = unmapped */
	bool dirty[NPAGES];
	uint32_t next_id;
};

static bool model_cuts(const struct model *m, uint64_t first, uint64_t last)
{
	return (first > 0 && m->owner[first] && m->owner[first] == m->owner[first - 1]) ||
	       (last + 1 < NPAGES && m->owner[last] && m->owner[last] == m->owner[last + 1]);
}

static void op_map(struct vt1 *t, struct model *m, uint64_t first, uint64_t n)
{
	long want = 0, got;

	for (uint64_t p = first; p < first + n; p++)
		if (m->owner[p])
			want = -EEXIST;
	got = vt1_map_mem(t, first * PG, first * PG, n * PG);
	CHECK(got == want);
	if (got)
		return;
	m->next_id++;
	for (uint64_t p = first; p < first + n; p++) {
		m->owner[p] = m->next_id;
		m->dirty[p] = false;
	}
}

static void op_unmap(struct vt1 *t, struct model *m, uint64_t first, uint64_t n)
{
	uint64_t size = 0, want_size = 0;
	long want = model_cuts(m, first, first + n - 1) ? -EINVAL : 0;
	long got = vt1_unmap(t, 0, first * PG, n * PG, &size);

	CHECK(got == want);
	if (got)
		return;
	for (uint64_t p = first; p < first + n; p++) {
		want_size += m->owner[p] ? PG : 0;
		m->owner[p] = 0;
		m->dirty[p] = false;
	}
	CHECK(size == want_size);
}

static void op_write(struct vt1 *t, struct model *m, uint64_t page)
{
	char c = (char)rnd();
	long got = uiommu_vfio_dma_rw(t->emu, page * PG + rnd_below(PG), &c, 1, true);

	CHECK(got == (m->owner[page] ? 0 : -EINVAL));
	if (!got)
		m->dirty[page] = true;
}

static void op_report(struct vt1 *t, struct model *m, uint64_t first, uint64_t n)
{
	uint64_t bm[NPAGES / 64] = { 0 };
	long want = model_cuts(m, first, first + n - 1) ? -EINVAL : 0;
	long got = vt1_get_bitmap(t, first * PG, n * PG, PG, bm, sizeof(bm));

	CHECK(got == want);
	if (got)
		return;
	for (uint64_t k = 0; k < n; k++) {
		bool bit = (bm[k / 64] >> (k % 64)) & 1;

		CHECK(bit == m->dirty[first + k]);
		m->dirty[first + k] = false;
	}
}

static void test_random_ops(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	struct model *m = calloc(1, sizeof(*m));

	(void)state;
	assert_int_equal(vt1_dirty(t, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
	for (op_index = 0; op_index < 20000; op_index++) {
		uint64_t first = rnd_below(NPAGES), n = 1 + rnd_below(u_min(NPAGES - first, 40));

		switch (rnd_below(4)) {
		case 0:
			op_map(t, m, first, n);
			break;
		case 1:
			op_unmap(t, m, first, n);
			break;
		case 2:
			op_write(t, m, first);
			break;
		default:
			op_report(t, m, first, n);
			break;
		}
	}
	free(m);
	vt1_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
