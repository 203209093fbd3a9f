// SPDX-License-Identifier: MIT
/*
 * Randomized tests of the receiver on valid streams from the scripted source
 * (with and without zstd, with page hashes), seeded (UIOMMU_SEED, printed):
 *
 *  - random splits, fed by feed() or written in place through direct/commit
 *    at random: always accepted, verified, memory equal to the source's;
 *  - one byte flipped in a record's header or metadata: always rejected with
 *    a documented errno (every such byte is under a check);
 *  - one byte flipped anywhere: rejected, or accepted with a verification
 *    that fails, or (a page resent later overwrote the damage) accepted,
 *    verified and equal; never "verified" with different memory;
 *  - a record dropped or duplicated: rejected (counts, order, or END's byte
 *    count give it away);
 *  - a random truncation: -ENODATA.
 * Guest memory sits between guard pages; under ASan the parser's buffers
 * are watched too.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "stream_test.h"
#include "migrate/migrate_internal.h"

#define MEM (96 * PS)
#define MAX_RECORDS 4096

struct sample {
	struct script s;
	struct guest src; /* the source's memory at the end of the script */
	uint8_t *data;
	size_t len;
	size_t rec[MAX_RECORDS + 1]; /* record offsets; rec[nr] = len */
	size_t meta_end[MAX_RECORDS]; /* end of each record's checked bytes */
	unsigned int nr;
};

/* Walks a valid stream's records (header has one range). */
static void index_records(struct sample *sm)
{
	size_t pos = MS_HDR_FIXED + MS_RANGE_LEN + 8;

	sm->nr = 0;
	while (pos < sm->len) {
		uint32_t type = get_le32(sm->data + pos);
		uint64_t len = get_le64(sm->data + pos + 8);
		size_t checked = len;

		assert_true(sm->nr < MAX_RECORDS);
		if (type == MS_REC_PAGES)
			checked = MS_BATCH_HDR + 8ull * get_le32(sm->data + pos + MS_REC_HDR);
		sm->rec[sm->nr] = pos;
		sm->meta_end[sm->nr++] = pos + MS_REC_HDR + checked;
		pos += MS_REC_HDR + len;
	}
	assert_int_equal(pos, sm->len);
	sm->rec[sm->nr] = pos;
}

static void sample_make(struct sample *sm, int zstd_level)
{
	script_init(&sm->s);
	sm->s.seed = rnd();
	sm->s.zstd_level = zstd_level;
	sm->s.rounds = 4;
	sm->s.dirty_pct = 30;
	sm->s.devices = 3;
	sm->s.device_bytes = 3000;
	guest_alloc(&sm->src, MEM);
	fill_guest(&sm->src, PAT_MIXED);
	capture_stream(&sm->s, &sm->src, &sm->data, &sm->len);
	index_records(sm);
}

static void sample_free(struct sample *sm)
{
	free(sm->data);
	guest_free(&sm->src);
}

static bool documented(int rc)
{
	return rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EOPNOTSUPP || rc == -EPROTO ||
	       rc == -ERANGE || rc == -EMSGSIZE || rc == -ENODATA;
}

struct outcome {
	int rc;
	bool ok;    /* verified */
	bool equal; /* destination layout memory equals the source's */
};

/* Feeds @data in random pieces, by feed or direct/commit, then finish. */
static int feed_randomly(struct uiommu_stream_receiver *r, const uint8_t *data, size_t len)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < len && !rc) {
		size_t room, n = 1 + rnd_below(rnd_below(4) ? 64 : 20000);
		void *buf;

		n = n > len - pos ? len - pos : n;
		uiommu_stream_recv_direct(r, &buf, &room);
		if (room && rnd_below(2)) {
			n = n > room ? room : n;
			memcpy(buf, data + pos, n);
			rc = uiommu_stream_recv_commit(r, n);
		} else {
			rc = uiommu_stream_recv_feed(r, data + pos, n);
		}
		pos += n;
	}
	return rc ? rc : uiommu_stream_recv_finish(r);
}

static struct outcome run_stream(const struct sample *sm, const uint8_t *data, size_t len)
{
	struct uiommu_stream_recv_cfg cfg = { .mem_bytes = MEM };
	struct uiommu_stream_receiver *r;
	struct uiommu_stream_verify v;
	struct outcome o;
	struct guest dst;

	guest_alloc(&dst, MEM);
	cfg.mem = dst.mem;
	assert_int_equal(uiommu_stream_receiver_create(&cfg, &r), 0);
	o.rc = feed_randomly(r, data, len);
	uiommu_stream_recv_get_verify(r, &v);
	o.ok = !o.rc && v.ok;
	o.equal = same_layout_memory(&sm->s, &sm->src, &dst);
	if (o.rc)
		CHECK(uiommu_stream_recv_error(r)->msg[0] != '\0');
	uiommu_stream_receiver_destroy(r);
	guest_free(&dst);
	return o;
}

static void test_stream_random_splits_always_accepted(void **state)
{
	(void)state;
	for (int z = 0; z < 2; z++) {
		struct sample sm;

		sample_make(&sm, z ? 1 : 0);
		for (int i = 0; i < 100; i++, op_index++) {
			struct outcome o = run_stream(&sm, sm.data, sm.len);

			CHECK(o.rc == 0 && o.ok && o.equal);
		}
		sample_free(&sm);
	}
}

static struct outcome flipped(const struct sample *sm, size_t at, uint8_t *copy)
{
	memcpy(copy, sm->data, sm->len);
	copy[at] ^= (uint8_t)(1u << rnd_below(8));
	return run_stream(sm, copy, sm->len);
}

static void test_stream_flips_in_metadata_always_rejected(void **state)
{
	(void)state;
	for (int z = 0; z < 2; z++) {
		struct sample sm;
		uint8_t *copy;

		sample_make(&sm, z ? 3 : 0);
		copy = malloc(sm.len);
		for (int i = 0; i < 1000; i++, op_index++) {
			unsigned int k = (unsigned int)rnd_below(sm.nr + 1);
			size_t lo = k == sm.nr ? 0 : sm.rec[k];
			size_t hi = k == sm.nr ? MS_HDR_FIXED + MS_RANGE_LEN + 8 : sm.meta_end[k];
			struct outcome o = flipped(&sm, lo + rnd_below(hi - lo), copy);

			CHECK(o.rc && documented(o.rc));
		}
		free(copy);
		sample_free(&sm);
	}
}

static void test_stream_flips_anywhere_never_verified_wrongly(void **state)
{
	unsigned int rejected = 0, mismatch = 0, healed = 0;

	(void)state;
	for (int z = 0; z < 2; z++) {
		struct sample sm;
		uint8_t *copy;

		sample_make(&sm, z ? 1 : 0);
		copy = malloc(sm.len);
		for (int i = 0; i < 1000; i++, op_index++) {
			struct outcome o = flipped(&sm, rnd_below(sm.len), copy);

			CHECK(!o.rc || documented(o.rc));
			CHECK(!o.ok || o.equal);
			rejected += !!o.rc;
			mismatch += !o.rc && !o.ok;
			healed += o.ok;
		}
		free(copy);
		sample_free(&sm);
	}
	print_message("flips: %u rejected, %u failed verification, %u overwritten later\n",
		      rejected, mismatch, healed);
	CHECK(mismatch > 0 && rejected > 0);
}

static void test_stream_dropped_or_duplicated_record_rejected(void **state)
{
	struct sample sm;
	uint8_t *copy;

	(void)state;
	sample_make(&sm, 1);
	copy = malloc(2 * sm.len);
	for (int i = 0; i < 400; i++, op_index++) {
		unsigned int k = (unsigned int)rnd_below(sm.nr);
		size_t a = sm.rec[k], b = sm.rec[k + 1], len;
		bool dup = rnd_below(2);

		memcpy(copy, sm.data, b);
		if (dup) {
			memcpy(copy + b, sm.data + a, sm.len - a);
			len = sm.len + (b - a);
		} else {
			memcpy(copy + a, sm.data + b, sm.len - b);
			len = sm.len - (b - a);
		}
		struct outcome o = run_stream(&sm, copy, len);

		CHECK(o.rc && documented(o.rc));
	}
	free(copy);
	sample_free(&sm);
}

static void test_stream_random_truncation_is_enodata(void **state)
{
	struct sample sm;

	(void)state;
	sample_make(&sm, 1);
	for (int i = 0; i < 60; i++, op_index++) {
		struct outcome o = run_stream(&sm, sm.data, rnd_below(sm.len));

		CHECK(o.rc == -ENODATA);
	}
	sample_free(&sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_random_splits_always_accepted),
		cmocka_unit_test(test_stream_flips_in_metadata_always_rejected),
		cmocka_unit_test(test_stream_flips_anywhere_never_verified_wrongly),
		cmocka_unit_test(test_stream_dropped_or_duplicated_record_rejected),
		cmocka_unit_test(test_stream_random_truncation_is_enodata),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
