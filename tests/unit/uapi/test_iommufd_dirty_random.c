/* SPDX-License-Identifier: MIT */
/*
 * Randomized differential test of IOMMU_HWPT_GET_DIRTY_BITMAP (uapi-spec
 * §3.10) against a naive model: one dirty flag per 4 KiB page.
 *
 * The HWPT tracks dirty 4 KiB IOPTEs (the device offers no larger page), so
 * the model is exact. 64 MiB are mapped as adjacent areas of random sizes
 * (the walk must cross area boundaries). Random DMA writes (single bytes and
 * writes crossing pages) mark the model; random windows are harvested with
 * page_size 4 KiB, 8 KiB or 2 MiB, with or without NO_CLEAR, into a bitmap at
 * a random byte offset, sometimes pre-filled with random bits. Expected:
 * every bit k < nbits = prefill | OR of the model over its page_size; bits
 * past nbits in the last word and the bytes after the required length are
 * untouched; without NO_CLEAR the model's window is cleared. Now and then
 * tracking is re-enabled, which clears everything.
 *
 * Reproduce a failure with UIOMMU_SEED=<seed printed>.
 */
#include "uapi_test.h"
#include "seeded.h"

#define PG 4096ull
#define BASE 0x80000000ull
#define NP 16384ull /* 64 MiB */
#define OPS 8000
#define GUARD 16

struct rig {
	struct env e;
	uint32_t hwpt;
	uint8_t model[NP];
	uint8_t buf[NP / 8 + 64];
	uint8_t pre[NP / 8 + 64];
	uint64_t harvests, bits_seen;
};

static int rig_setup(void **state)
{
	struct rig *r = calloc(1, sizeof(*r));
	uint64_t done = 0;

	assert_non_null(r);
	setup_seed(NULL);
	env_init(&r->e, 4 * KiB, NP * PG);
	assert_int_equal(hwpt_alloc(r->e.ctx, r->e.ddev_id, r->e.ioas,
				    IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &r->hwpt),
			 0);
	attach(&r->e, r->e.ddev_id, r->hwpt);
	while (done < NP) {
		uint64_t n = 1 + rnd_below(rnd_below(2) ? 8 : 2048);

		if (n > NP - done)
			n = NP - done;
		map_fixed(r->e.ctx, r->e.ioas, r->e.host + done * PG, n * PG, BASE + done * PG);
		done += n;
	}
	assert_int_equal(set_dirty(r->e.ctx, r->hwpt, true), 0);
	*state = r;
	return 0;
}

static int rig_teardown(void **state)
{
	struct rig *r = *state;

	env_fini(&r->e);
	free(r);
	return 0;
}

static void random_writes(struct rig *r)
{
	static const uint8_t src[3 * PG];

	for (uint64_t w = 1 + rnd_below(12); w > 0; w--) {
		uint64_t off = rnd_below(NP * PG);
		uint64_t len = rnd_below(4) ? 1 : 1 + rnd_below(sizeof(src));
		struct uiommu_device *dma = uiommu_hwdev_dma(r->e.ddev);

		if (off + len > NP * PG)
			len = NP * PG - off;
		CHECK(uiommu_device_dma_write(dma, BASE + off, src, len) == 0);
		for (uint64_t p = off / PG; p <= (off + len - 1) / PG; p++)
			r->model[p] = 1;
	}
}

static bool model_any(const struct rig *r, uint64_t first_page, uint64_t npages)
{
	for (uint64_t p = first_page; p < first_page + npages; p++)
		if (r->model[p])
			return true;
	return false;
}

static void random_harvest(struct rig *r)
{
	static const uint64_t sizes[] = { PG, 2 * PG, 2 * MiB };
	uint64_t ps = sizes[rnd_below(3)], per = ps / PG, total = NP / per;
	uint64_t first = rnd_below(total), nbits = 1 + rnd_below(total - first);
	uint32_t flags = rnd_below(3) ? 0 : IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
	size_t off = (size_t)rnd_below(8), bytes = bitmap_bytes(nbits * ps, ps);
	uint8_t *bm = r->buf + off;

	if (rnd_below(4) == 0)
		nbits = 1 + rnd_below(70); /* small windows, partial words */
	if (nbits > total - first)
		nbits = total - first;
	bytes = bitmap_bytes(nbits * ps, ps);
	if (rnd_below(3) == 0)
		fill_random(r->pre, bytes);
	else
		memset(r->pre, 0, bytes);
	memset(r->pre + bytes, 0x5c, GUARD);
	memcpy(bm, r->pre, bytes + GUARD);
	CHECK(get_dirty(r->e.ctx, r->hwpt, flags, BASE + first * ps, nbits * ps, ps, bm) == 0);
	for (uint64_t k = 0; k < bytes * 8; k++) {
		bool want = bit_test(r->pre, k) ||
			    (k < nbits && model_any(r, (first + k) * per, per));

		if (bit_test(bm, k) != want)
			fail_msg("UIOMMU_SEED=%" PRIu64 " op %zu: window [%" PRIu64 " x %" PRIu64
				 "] flags %u offset %zu: bit %" PRIu64 " is %d, model says %d",
				 seed, op_index, first, ps, flags, off, k, bit_test(bm, k), want);
	}
	CHECK(memcmp(bm + bytes, r->pre + bytes, GUARD) == 0);
	r->harvests++;
	r->bits_seen += bits_count(bm, nbits) - bits_count(r->pre, nbits);
	if (!flags)
		memset(r->model + first * per, 0, nbits * per);
}

static void test_get_dirty_bitmap_matches_per_page_model(void **state)
{
	struct rig *r = *state;

	for (op_index = 0; op_index < OPS; op_index++) {
		uint64_t what = rnd_below(100);

		if (what < 50) {
			random_writes(r);
		} else if (what < 98) {
			random_harvest(r);
		} else {
			CHECK(set_dirty(r->e.ctx, r->hwpt, true) == 0);
			memset(r->model, 0, sizeof(r->model));
		}
	}
	/* Drain: one full harvest must equal the model, then nothing is left. */
	memset(r->buf, 0, NP / 8);
	CHECK(get_dirty(r->e.ctx, r->hwpt, 0, BASE, NP * PG, PG, r->buf) == 0);
	for (uint64_t p = 0; p < NP; p++)
		CHECK(bit_test(r->buf, p) == (r->model[p] != 0));
	memset(r->buf, 0, NP / 8);
	CHECK(get_dirty(r->e.ctx, r->hwpt, 0, BASE, NP * PG, PG, r->buf) == 0);
	CHECK(bits_count(r->buf, NP) == 0);
	print_message("%" PRIu64 " harvests, %" PRIu64 " new bits reported\n", r->harvests,
		      r->bits_seen);
	assert_true(r->bits_seen > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_dirty_bitmap_matches_per_page_model,
						rig_setup, rig_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
