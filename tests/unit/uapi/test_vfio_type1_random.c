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
 *
 * A second test checks the copy-out word for word against the kernel's
 * update_user_bitmap (uapi-spec §1.6) on a user bitmap full of garbage:
 * adjacent entries of random lengths at random bit offsets, reported once
 * into a bitmap the library checks writable up front (merged directly) and
 * once into one whose last word lies on an inaccessible page past every
 * entry (so each entry goes through the checked copies instead).
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

/* ---- copy-out against the kernel's algorithm ---- */

#define CO_BASE 0x100000ull /* page 256: bit 0 of the user's bitmap */
#define CO_PAGES 3000ull
#define CO_WORDS ((CO_PAGES + 63) / 64)

struct co_layout {
	uint64_t first[128], n[128]; /* entries, in pages from CO_BASE */
	int nr;
	uint64_t end;                /* first page past the last entry */
	bool dirty[CO_PAGES];
};

/* Adjacent entries, now and then a gap, starting at a random bit offset. */
static void co_map(struct vt1 *t, struct co_layout *l)
{
	uint64_t p = rnd_below(64);

	for (l->nr = 0; l->nr < 128; l->nr++) {
		uint64_t n = 1 + rnd_below(rnd_below(2) ? 8 : 150);

		if (p + n > CO_PAGES - 64)
			break;
		assert_int_equal(vt1_map_mem(t, p * PG, CO_BASE + p * PG, n * PG), 0);
		l->first[l->nr] = p;
		l->n[l->nr] = n;
		p += n + (rnd_below(8) ? 0 : rnd_below(100));
	}
	l->end = l->first[l->nr - 1] + l->n[l->nr - 1];
}

/* The kernel's copy-out of one entry into the model of the user's words. */
static void co_model_entry(uint64_t *u, uint64_t bitoff, const bool *dirty, uint64_t nbits)
{
	uint64_t w = bitoff / 64, s = bitoff % 64, nwords = (nbits + s + 63) / 64;
	uint64_t tmp[CO_WORDS + 1] = { 0 };

	for (uint64_t k = 0; k < nbits; k++)
		if (dirty[k])
			tmp[(k + s) / 64] |= 1ull << ((k + s) % 64);
	if (s)
		tmp[0] |= u[w];
	memcpy(u + w, tmp, nwords * 8);
}

/* Writes through the container into a random tenth of the mapped pages. */
static void co_dirty(struct vt1 *t, struct co_layout *l)
{
	memset(l->dirty, 0, sizeof(l->dirty));
	for (int e = 0; e < l->nr; e++) {
		for (uint64_t p = l->first[e]; p < l->first[e] + l->n[e]; p++) {
			char c = 1;

			if (rnd_below(10))
				continue;
			assert_int_equal(uiommu_vfio_dma_rw(t->emu, CO_BASE + p * PG, &c, 1, true), 0);
			l->dirty[p] = true;
		}
	}
}

/* One GET_BITMAP of @npages pages into @u, prefilled with @garbage, against the model. */
static void co_report(struct vt1 *t, struct co_layout *l, uint64_t *u, uint64_t npages,
		      const uint64_t *garbage)
{
	uint64_t want[CO_WORDS];
	uint64_t words = (l->end + 63) / 64;

	memcpy(want, garbage, words * 8);
	for (int e = 0; e < l->nr; e++)
		co_model_entry(want, l->first[e], &l->dirty[l->first[e]], l->n[e]);
	memcpy(u, garbage, words * 8);
	CHECK(vt1_get_bitmap(t, CO_BASE, npages * PG, PG, u, (npages + 63) / 64 * 8) == 0);
	CHECK(!memcmp(u, want, words * 8));
}

static void test_copy_out_matches_kernel_model(void **state)
{
	uint64_t garbage[CO_WORDS], direct[CO_WORDS];
	char *guarded = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct co_layout *l = calloc(1, sizeof(*l));

	(void)state;
	assert_true(guarded != MAP_FAILED && l);
	assert_int_equal(mprotect(guarded + 4096, 4096, PROT_NONE), 0);
	for (op_index = 0; op_index < 40; op_index++) {
		struct vt1 *t = vt1_ready_emu();
		uint64_t words;

		assert_int_equal(vt1_dirty(t, VFIO_IOMMU_DIRTY_PAGES_FLAG_START), 0);
		co_map(t, l);
		words = (l->end + 63) / 64;
		for (uint64_t i = 0; i < CO_WORDS; i++)
			garbage[i] = rnd();
		co_dirty(t, l);
		co_report(t, l, direct, l->end, garbage);
		/* One word more than the entries need reaches the inaccessible page. */
		co_dirty(t, l);
		co_report(t, l, (uint64_t *)(void *)(guarded + 4096 - words * 8), words * 64 + 64,
			  garbage);
		vt1_free(t);
	}
	free(l);
	munmap(guarded, 2 * 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops),
		cmocka_unit_test(test_copy_out_matches_kernel_model),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
