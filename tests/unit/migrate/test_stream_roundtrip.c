// SPDX-License-Identifier: MIT
/*
 * Round trips of the migration stream: every section (header with a layout,
 * page rounds with zero and data pages, devices, vCPUs, switchover, hashes,
 * end) from a scripted source to a receiver, over a socketpair or TCP
 * (source on a thread, receiver reading the transport) and through memory (receiver fed
 * by hand). Each case checks that the destination's layout memory equals the
 * source's byte for byte, that verification says so, that every event
 * arrived with the right content, and that the two sides' counts agree;
 * the receiver's answer travels back as a result message. The same over
 * TCP loopback.
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

#define MEM (4ull << 20)

static void check_destination(const struct script *s, struct guest *src, struct guest *dst,
			      struct uiommu_stream_receiver *r, const struct seen *sn)
{
	struct uiommu_stream_verify v;
	struct uiommu_stream_stats rst;

	assert_true(uiommu_stream_recv_done(r));
	assert_int_equal(uiommu_stream_recv_finish(r), 0);
	assert_true(same_layout_memory(s, src, dst));
	uiommu_stream_recv_get_verify(r, &v);
	assert_int_equal(v.checked, s->verify != UIOMMU_STREAM_VERIFY_NONE);
	assert_int_equal(v.ok, s->verify != UIOMMU_STREAM_VERIFY_NONE);
	assert_int_equal(v.mismatched, 0);
	assert_int_equal(sn->headers, 1);
	assert_int_equal(sn->rounds, s->rounds);
	assert_int_equal(sn->last_round, s->rounds);
	assert_int_equal(sn->devices, s->devices);
	assert_int_equal(sn->vcpus, s->vcpus);
	assert_int_equal(sn->switchovers, 1);
	assert_int_equal(sn->ends, 1);
	assert_true(sn->blobs_ok);
	uiommu_stream_recv_get_stats(r, &rst);
	assert_int_equal(rst.bytes, s->st.bytes);
	assert_int_equal(rst.data_pages, s->st.data_pages);
	assert_int_equal(rst.zero_pages, s->st.zero_pages);
	assert_int_equal(rst.compressed_batches, s->st.compressed_batches);
	assert_int_equal(sn->round_data, s->st.data_pages);
	assert_int_equal(sn->round_zero, s->st.zero_pages);
}

static void tcp_pair(struct uiommu_xport **a, struct uiommu_xport **b)
{
	struct uiommu_xport_listener *l;
	char addr[64];

	assert_int_equal(uiommu_xport_listen(NULL, &l), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", uiommu_xport_listener_port(l));
	assert_int_equal(uiommu_xport_connect(addr, 5000, a), 0);
	assert_int_equal(uiommu_xport_accept(l, 5000, b), 0);
	uiommu_xport_listener_destroy(l);
}

/* Source on a thread over one end of a socketpair or TCP connection, receiver on the other. */
static void round_trip(struct script *s, enum pattern pat, bool tcp)
{
	struct guest src, dst;
	struct uiommu_xport *a, *b;
	struct uiommu_stream_receiver *r;
	struct uiommu_stream_result res;
	struct script_thread t;
	struct seen sn;

	guest_alloc(&src, MEM);
	guest_alloc(&dst, MEM);
	fill_guest(&src, pat);
	s->seed = rnd();
	s->want_result = true;
	if (tcp)
		tcp_pair(&a, &b);
	else
		assert_int_equal(uiommu_xport_pair(&a, &b), 0);
	r = receiver_for(&dst, &sn);
	script_start(&t, s, &src, a);
	assert_int_equal(uiommu_stream_recv_run(r, b), 0);
	uiommu_stream_recv_get_result(r, &res);
	assert_int_equal(uiommu_stream_result_send(b, &res), 0);
	pthread_join(t.tid, NULL);
	assert_int_equal(s->rc, 0);
	assert_int_equal(s->result_rc, 0);
	assert_int_equal(s->result.status, 0);
	assert_int_equal(s->result.verify.ok, s->verify != UIOMMU_STREAM_VERIFY_NONE);
	check_destination(s, &src, &dst, r, &sn);
	uiommu_stream_receiver_destroy(r);
	uiommu_xport_destroy(a);
	uiommu_xport_destroy(b);
	guest_free(&src);
	guest_free(&dst);
}

static void test_stream_pair_round_trip_mixed_pages(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	round_trip(&s, PAT_MIXED, false);
	assert_true(s.st.zero_pages > 0 && s.st.data_pages > 0);
	assert_int_equal(s.st.compressed_batches, 0);
}

static void test_stream_pair_round_trip_zstd_compresses_text(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.zstd_level = 3;
	round_trip(&s, PAT_TEXT, false);
	assert_true(s.st.compressed_batches > 0);
	assert_true(s.st.compress_out * 4 < s.st.compress_in);
}

static void test_stream_pair_round_trip_zstd_random_goes_raw(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.zstd_level = 1;
	/*
	 * One round: later rounds zero some pages and change single bytes of
	 * others, which makes nearly-zero pages that do compress.
	 */
	s.rounds = 1;
	round_trip(&s, PAT_RANDOM, false);
	assert_int_equal(s.st.compressed_batches, 0);
	assert_true(s.st.bytes > MEM);
}

static void test_stream_pair_round_trip_zero_memory_is_tiny(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.rounds = 1;
	s.devices = 0;
	s.vcpus = false;
	s.verify = UIOMMU_STREAM_VERIFY_DIGEST;
	round_trip(&s, PAT_ZERO, false);
	assert_int_equal(s.st.data_pages, 0);
	assert_int_equal(s.st.zero_pages, MEM / PS);
	/* 4 MiB of zero pages cost one 8-byte run: the stream is ~270 bytes. */
	assert_true(s.st.bytes < 300);
}

static void test_stream_pair_round_trip_without_verification(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.verify = UIOMMU_STREAM_VERIFY_NONE;
	round_trip(&s, PAT_MIXED, false);
}

static void test_stream_pair_round_trip_layout_of_several_ranges(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.zstd_level = 1;
	s.nr_ranges = 3;
	s.ranges[0] = (struct uiommu_stream_range){ 0, 64 * PS };
	s.ranges[1] = (struct uiommu_stream_range){ 100 * PS, 300 * PS };
	s.ranges[2] = (struct uiommu_stream_range){ MEM - 16 * PS, 16 * PS };
	round_trip(&s, PAT_MIXED, false);
	assert_int_equal(s.st.data_pages + s.st.zero_pages >= 380, true);
}

static void test_stream_pair_round_trip_many_rounds_heavy_dirtying(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.rounds = 8;
	s.dirty_pct = 60;
	s.devices = 5;
	s.device_bytes = 300000;
	s.zstd_level = -1;
	round_trip(&s, PAT_MIXED, false);
}

static void test_stream_tcp_round_trip(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	round_trip(&s, PAT_MIXED, true);
}

static void test_stream_tcp_round_trip_zstd(void **state)
{
	struct script s;

	(void)state;
	script_init(&s);
	s.zstd_level = 1;
	s.dirty_pct = 40;
	round_trip(&s, PAT_MIXED, true);
	assert_true(s.st.compressed_batches > 0);
}

/* The receiver fed by hand from memory, with direct/commit for big pieces. */
static void test_stream_memory_round_trip_direct_feeding(void **state)
{
	struct guest src, dst;
	struct uiommu_stream_receiver *r;
	struct script s;
	struct seen sn;
	uint8_t *data;
	size_t len, pos = 0;

	(void)state;
	script_init(&s);
	s.seed = rnd();
	guest_alloc(&src, MEM);
	guest_alloc(&dst, MEM);
	fill_guest(&src, PAT_MIXED);
	capture_stream(&s, &src, &data, &len);
	r = receiver_for(&dst, &sn);
	while (pos < len) {
		void *buf;
		size_t room, n;

		uiommu_stream_recv_direct(r, &buf, &room);
		n = room ? room : 1 + rnd_below(100);
		if (n > len - pos)
			n = len - pos;
		if (room) {
			memcpy(buf, data + pos, n);
			assert_int_equal(uiommu_stream_recv_commit(r, n), 0);
		} else {
			assert_int_equal(uiommu_stream_recv_feed(r, data + pos, n), 0);
		}
		pos += n;
	}
	check_destination(&s, &src, &dst, r, &sn);
	uiommu_stream_receiver_destroy(r);
	free(data);
	guest_free(&src);
	guest_free(&dst);
}

/* The blobs stay with the receiver after the stream, in arrival order. */
static void test_stream_blobs_kept_by_receiver(void **state)
{
	struct guest src, dst;
	struct uiommu_stream_receiver *r;
	struct uiommu_stream_device dev;
	struct uiommu_stream_layout lay;
	struct script s;
	struct seen sn;
	const void *blob;
	uint64_t blen;
	uint8_t *data;
	size_t len;

	(void)state;
	script_init(&s);
	s.devices = 3;
	guest_alloc(&src, MEM);
	guest_alloc(&dst, MEM);
	capture_stream(&s, &src, &data, &len);
	r = receiver_for(&dst, &sn);
	assert_int_equal(uiommu_stream_recv_layout(r, &lay), -ENODATA);
	assert_int_equal(uiommu_stream_recv_vcpus(r, &blob, &blen), -ENOENT);
	assert_int_equal(uiommu_stream_recv_feed(r, data, len), 0);
	assert_int_equal(uiommu_stream_recv_layout(r, &lay), 0);
	assert_int_equal(lay.page_size, PS);
	assert_int_equal(lay.pages, MEM / PS);
	assert_int_equal(lay.nr_ranges, 1);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(uiommu_stream_recv_device(r, i, &dev), 0);
		assert_int_equal(dev.id, 100 + i);
		assert_int_equal(dev.len, s.device_bytes + i);
		assert_true(dev.name[0] == 'd' && dev.name[3] == (char)('0' + i));
	}
	assert_int_equal(uiommu_stream_recv_device(r, 3, &dev), -ENOENT);
	assert_int_equal(uiommu_stream_recv_vcpus(r, &blob, &blen), 0);
	assert_int_equal(blen, 777);
	uiommu_stream_receiver_destroy(r);
	free(data);
	guest_free(&src);
	guest_free(&dst);
}

/* The sender refuses calls out of order and bad arguments, sending nothing. */
static void test_stream_sender_rejects_misuse(void **state)
{
	struct uiommu_stream_range bad = { PS, 3 * PS }, two[2] = { { 8 * PS, PS }, { 0, PS } };
	struct uiommu_stream_send_cfg cfg = { .mem_bytes = 16 * PS };
	struct uiommu_stream_sender *snd;
	struct uiommu_xport *x;
	uint64_t bitmap[1] = { 1ull << 20 };
	const void *p;
	size_t len;
	struct guest g;

	(void)state;
	guest_alloc(&g, 16 * PS);
	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	cfg.mem = g.mem;
	assert_int_equal(uiommu_stream_sender_create(&cfg, &snd), -EINVAL); /* no transport */
	cfg.xport = x;
	cfg.page_size = 3000;
	assert_int_equal(uiommu_stream_sender_create(&cfg, &snd), -EINVAL);
	cfg.page_size = 0;
	cfg.ranges = two;
	cfg.nr_ranges = 2;
	assert_int_equal(uiommu_stream_sender_create(&cfg, &snd), -EINVAL); /* descending */
	cfg.ranges = &bad;
	cfg.nr_ranges = 1;
	assert_int_equal(uiommu_stream_sender_create(&cfg, &snd), 0);
	assert_int_equal(uiommu_stream_send_range(snd, PS, PS), -EPROTO); /* before header */
	assert_int_equal(uiommu_stream_send_header(snd), 0);
	assert_int_equal(uiommu_stream_send_header(snd), -EPROTO);
	assert_int_equal(uiommu_stream_send_range(snd, 0, PS), -ERANGE);
	assert_int_equal(uiommu_stream_send_range(snd, PS, 100), -EINVAL);
	assert_int_equal(uiommu_stream_send_pages(snd, bitmap, 0, 64), -ERANGE);
	assert_int_equal(uiommu_stream_send_device(snd, 1, "bad name", "x", 1), -EINVAL);
	assert_int_equal(uiommu_stream_send_device(snd, 1, "", "x", 1), -EINVAL);
	assert_int_equal(uiommu_stream_send_round(snd, 5, 0, 0), 0);
	assert_int_equal(uiommu_stream_send_round(snd, 5, 0, 0), -EINVAL);
	assert_int_equal(uiommu_stream_send_vcpus(snd, "v", 1), 0);
	assert_int_equal(uiommu_stream_send_vcpus(snd, "v", 1), -EPROTO);
	assert_int_equal(uiommu_stream_send_end(snd), -EPROTO); /* before switchover */
	assert_int_equal(uiommu_stream_send_switchover(snd), 0);
	assert_int_equal(uiommu_stream_send_range(snd, PS, PS), -EPROTO);
	assert_int_equal(uiommu_stream_send_end(snd), 0);
	assert_int_equal(uiommu_stream_send_end(snd), -EPROTO);
	uiommu_stream_sender_destroy(snd);
	/* Header 40 + 16, round 72, vcpus 25, switchover 40, 1 HASHES 64, end 56. */
	assert_int_equal(uiommu_xport_mem_data(x, &p, &len), 0);
	assert_int_equal(len, 56 + 72 + 25 + 40 + (24 + 16 + 24) + 56);
	uiommu_xport_destroy(x);
	guest_free(&g);
}

/* One non-zero byte anywhere (head, blocks, tail; any length) is seen. */
static void test_stream_page_is_zero_sees_every_byte(void **state)
{
	static const size_t lens[] = { 0, 1, 7, 8, 9, 511, 512, 513, 4096, 4097, 65536 };
	uint8_t *buf = calloc(1, 65536 + 64);

	(void)state;
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		for (size_t off = 0; off < 64; off += 13) {
			uint8_t *p = buf + off;

			assert_true(uiommu_stream_page_is_zero(p, lens[l]));
			for (size_t i = 0; i < lens[l]; i += 1 + (i > 600 ? 97 : 0)) {
				p[i] = (uint8_t)(1u << (i % 8));
				if (uiommu_stream_page_is_zero(p, lens[l]))
					fail_msg("len %zu, offset %zu: byte %zu missed", lens[l], off,
						 i);
				p[i] = 0;
			}
			p[lens[l]] = 1; /* just past the end: not looked at */
			assert_true(uiommu_stream_page_is_zero(p, lens[l]));
			p[lens[l]] = 0;
		}
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_pair_round_trip_mixed_pages),
		cmocka_unit_test(test_stream_pair_round_trip_zstd_compresses_text),
		cmocka_unit_test(test_stream_pair_round_trip_zstd_random_goes_raw),
		cmocka_unit_test(test_stream_pair_round_trip_zero_memory_is_tiny),
		cmocka_unit_test(test_stream_pair_round_trip_without_verification),
		cmocka_unit_test(test_stream_pair_round_trip_layout_of_several_ranges),
		cmocka_unit_test(test_stream_pair_round_trip_many_rounds_heavy_dirtying),
		cmocka_unit_test(test_stream_tcp_round_trip),
		cmocka_unit_test(test_stream_tcp_round_trip_zstd),
		cmocka_unit_test(test_stream_memory_round_trip_direct_feeding),
		cmocka_unit_test(test_stream_blobs_kept_by_receiver),
		cmocka_unit_test(test_stream_sender_rejects_misuse),
		cmocka_unit_test(test_stream_page_is_zero_sees_every_byte),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
