// SPDX-License-Identifier: MIT
/*
 * The receiver against malformed streams, one fault at a time: each forged
 * stream is valid except for the fault (records carry correct checks unless
 * the check is the fault), and must be rejected with the documented errno
 * and a message naming the problem, in one piece and in random splits alike.
 * Guest memory lies between guard pages and ASan watches the parser's own
 * buffers, so a write out of bounds would crash these tests.
 *
 * Also: truncation at every byte is -ENODATA, a lost page is named by the
 * verification (and travels in the result message), an event handler can
 * abort, errors are sticky, and the doc's worked example is what the sender
 * writes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <zstd.h>

#include "stream_test.h"
#include "forge.h"

#define PAGES16 (16 * PS)

static struct uiommu_stream_receiver *new_receiver(struct guest *g, uint64_t bytes)
{
	struct uiommu_stream_recv_cfg cfg = { .mem_bytes = bytes, .max_blob_bytes = 1 << 20,
					      .max_devices = 4 };
	struct uiommu_stream_receiver *r;

	guest_alloc(g, bytes);
	cfg.mem = g->mem;
	assert_int_equal(uiommu_stream_receiver_create(&cfg, &r), 0);
	return r;
}

/* Feeds @f whole, then again in random pieces: same error both times. */
static void expect_error(const struct forge *f, int code, const char *what)
{
	for (int split = 0; split < 2; split++) {
		struct guest g;
		struct uiommu_stream_receiver *r = new_receiver(&g, PAGES16);
		const struct uiommu_stream_error *e = uiommu_stream_recv_error(r);
		size_t pos = 0;
		int rc = 0;

		while (pos < f->len && !rc) {
			size_t n = split ? 1 + rnd_below(40) : f->len;

			n = n > f->len - pos ? f->len - pos : n;
			rc = uiommu_stream_recv_feed(r, f->buf + pos, n);
			pos += n;
		}
		if (!rc)
			rc = uiommu_stream_recv_finish(r);
		if (rc != code || !strstr(e->msg, what))
			fail_msg("split %d: got %d \"%s\", want %d \"...%s...\"", split, rc, e->msg,
				 code, what);
		assert_int_equal(uiommu_stream_recv_feed(r, "x", 1), code); /* sticky */
		uiommu_stream_receiver_destroy(r);
		guest_free(&g);
	}
}

/* Header, one batch (page 0 data, pages 1-15 zero), round 1, switchover. */
static void forge_base(struct forge *f, uint32_t caps)
{
	uint64_t runs[] = { 0, 1, 0, PS, 15, 1 };
	uint8_t page[PS];

	memset(page, 0x42, sizeof(page));
	forge_header(f, caps, PAGES16);
	forge_pages(f, 0, runs, 2, page, PS);
	forge_round(f, 1, 1, 15, MS_REC_HDR + MS_BATCH_HDR + 16 + PS);
	forge_switchover(f, 1, 15);
}

static void test_stream_forged_base_is_accepted(void **state)
{
	struct forge f = { 0 };
	struct guest g;
	struct uiommu_stream_receiver *r = new_receiver(&g, PAGES16);

	(void)state;
	forge_base(&f, 0);
	forge_end(&f, 16);
	assert_int_equal(uiommu_stream_recv_feed(r, f.buf, f.len), 0);
	assert_true(uiommu_stream_recv_done(r));
	assert_int_equal(g.mem[0], 0x42);
	uiommu_stream_receiver_destroy(r);
	guest_free(&g);
	forge_free(&f);
}

static void test_stream_header_faults_rejected(void **state)
{
	struct forge f = { 0 };
	uint64_t r2[4] = { 0, 8 * PS, 4 * PS, 8 * PS };

	(void)state;
	forge_header(&f, 0, PAGES16);
	f.buf[0] = 'X';
	expect_error(&f, -EBADMSG, "magic");
	f.buf[0] = 'U';
	put_le32(f.buf + 8, 2);
	forge_reseal_header(&f, 1);
	expect_error(&f, -EPROTONOSUPPORT, "version 2");
	put_le32(f.buf + 8, 1);
	put_le32(f.buf + 12, 1);
	forge_reseal_header(&f, 1);
	expect_error(&f, -EOPNOTSUPP, "flags");
	put_le32(f.buf + 12, 0);
	put_le32(f.buf + 16, 0x10);
	forge_reseal_header(&f, 1);
	expect_error(&f, -EOPNOTSUPP, "capabilities");
	put_le32(f.buf + 16, MS_CAP_PAGE_HASHES);
	forge_reseal_header(&f, 1);
	expect_error(&f, -EBADMSG, "without a digest");
	put_le32(f.buf + 16, 0);
	put_le32(f.buf + 20, 2048);
	forge_reseal_header(&f, 1);
	expect_error(&f, -EBADMSG, "page size");
	put_le32(f.buf + 20, 4096);
	f.buf[40] ^= 1; /* the check itself */
	expect_error(&f, -EBADMSG, "header: check");
	forge_free(&f);
	forge_header(&f, 0, PAGES16 + PS);
	expect_error(&f, -ERANGE, "outside memory");
	forge_free(&f);
	forge_header_ranges(&f, 0, 4096, r2, 2);
	expect_error(&f, -EBADMSG, "not above");
	forge_free(&f);
	forge_header_ranges(&f, 0, 4096, r2, 0);
	expect_error(&f, -EBADMSG, "0 ranges");
	forge_free(&f);
}

static void test_stream_records_out_of_place_rejected(void **state)
{
	struct forge f = { 0 };
	uint8_t hashes[MS_HASHES_HDR + 8] = { 0 };

	(void)state;
	forge_header(&f, 0, PAGES16);
	forge_end(&f, 16);
	expect_error(&f, -EPROTO, "END record not allowed before switchover");
	forge_free(&f);
	forge_base(&f, 0);
	forge_pages(&f, 0, (uint64_t[]){ 0, 1, 1 }, 1, NULL, 0);
	expect_error(&f, -EPROTO, "PAGES record not allowed after switchover");
	forge_free(&f);
	forge_base(&f, 0); /* no PAGE_HASHES capability */
	put_le32(hashes + 8, 1);
	forge_record(&f, MS_REC_HASHES, hashes, sizeof(hashes));
	expect_error(&f, -EPROTO, "HASHES record not allowed");
	forge_free(&f);
	forge_base(&f, 0);
	forge_end(&f, 16);
	forge_put(&f, "trailing", 8);
	expect_error(&f, -EPROTO, "after the end");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_record(&f, 9, "x", 1);
	expect_error(&f, -EBADMSG, "unknown record type 9");
	forge_free(&f);
}

static void test_stream_record_lengths_and_checks_enforced(void **state)
{
	struct forge f = { 0 };
	uint8_t hdr[MS_REC_HDR] = { 0 };

	(void)state;
	/* A 1 TiB VCPUS record is refused before anything is allocated. */
	forge_header(&f, 0, PAGES16);
	put_le32(hdr, MS_REC_VCPUS);
	put_le64(hdr + 8, 1ull << 40);
	forge_put(&f, hdr, sizeof(hdr));
	expect_error(&f, -EMSGSIZE, "over the limit");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_record(&f, MS_REC_ROUND, hdr, 20);
	expect_error(&f, -EBADMSG, "length 20, must be 48");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_round(&f, 1, 0, 0, 0);
	f.buf[f.len - 10] ^= 0x80; /* inside the payload */
	expect_error(&f, -EBADMSG, "ROUND record: check mismatch");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_round(&f, 1, 0, 0, 0);
	f.buf[56 + 4] = 1; /* an unknown flag; the check no longer matches either */
	expect_error(&f, -EOPNOTSUPP, "unknown flags");
	forge_free(&f);
}

static void expect_pages_error(const uint64_t *runs, uint32_t nr, size_t data_len, int code,
			       const char *what)
{
	struct forge f = { 0 };
	uint8_t *data = calloc(1, data_len + 1);

	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, nr, data, data_len);
	expect_error(&f, code, what);
	forge_free(&f);
	free(data);
}

static void test_stream_page_runs_validated(void **state)
{
	(void)state;
	expect_pages_error((uint64_t[]){ 15 * PS, 2, 1 }, 1, 0, -ERANGE, "outside the layout");
	expect_pages_error((uint64_t[]){ 16 * PS, 1, 0 }, 1, PS, -ERANGE, "outside the layout");
	expect_pages_error((uint64_t[]){ ~0xfffull, 2, 1 }, 1, 0, -ERANGE, "outside the layout");
	expect_pages_error((uint64_t[]){ 4 * PS, 2, 1, 5 * PS, 1, 1 }, 2, 0, -EBADMSG,
			   "overlaps or descends");
	expect_pages_error((uint64_t[]){ 4 * PS, 1, 1, 2 * PS, 1, 1 }, 2, 0, -EBADMSG,
			   "overlaps or descends");
	expect_pages_error((uint64_t[]){ 0, 1, 0 }, 1, PS - 1, -EBADMSG, "data bytes for");
	expect_pages_error((uint64_t[]){ 0, 1, 0 }, 1, 0, -EBADMSG, "data bytes for");
}

static void test_stream_page_batch_header_validated(void **state)
{
	struct forge f = { 0 };
	uint64_t runs[] = { 0, 1, 1 };

	(void)state;
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 1, NULL, 0);
	put_le32(f.buf + 56 + MS_REC_HDR + 4, 7); /* nr_pages; the check breaks too */
	expect_error(&f, -EBADMSG, "PAGES record: check mismatch");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 1, NULL, 0);
	put_le32(f.buf + 56 + MS_REC_HDR, 0);
	expect_error(&f, -EBADMSG, "0 runs");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 1, NULL, 0);
	put_le64(f.buf + 56 + MS_REC_HDR + 8, 1); /* data_len disagrees with the length */
	expect_error(&f, -EBADMSG, "in 24 bytes");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, MS_PAGES_ZSTD, runs, 1, NULL, 0);
	expect_error(&f, -EOPNOTSUPP, "zstd was not announced");
	forge_free(&f);
}

/* A batch with one bad run writes nothing, not even its valid zero run. */
static void test_stream_rejected_batch_writes_nothing(void **state)
{
	struct uiommu_stream_recv_cfg cfg = { .mem_bytes = PAGES16, .not_zeroed = true };
	uint64_t runs[] = { 0, 2, 1, 4 * PS, 1, 0, 20 * PS, 1, 0 };
	struct uiommu_stream_receiver *r;
	struct forge f = { 0 };
	uint8_t data[2 * PS];
	struct guest g;

	(void)state;
	guest_alloc(&g, PAGES16);
	memset(g.mem, 0xa5, PAGES16);
	cfg.mem = g.mem;
	assert_int_equal(uiommu_stream_receiver_create(&cfg, &r), 0);
	memset(data, 0x11, sizeof(data));
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 3, data, sizeof(data));
	assert_int_equal(uiommu_stream_recv_feed(r, f.buf, f.len), -ERANGE);
	for (uint64_t i = 0; i < PAGES16; i++)
		assert_int_equal(g.mem[i], 0xa5);
	uiommu_stream_receiver_destroy(r);
	guest_free(&g);
	forge_free(&f);
}

/* A zstd batch of @pages pages holding @src, with @delta bytes added (> 0) or cut (< 0). */
static void forge_zstd_batch(struct forge *f, const void *src, size_t src_len, uint32_t pages,
			     long delta)
{
	size_t cap = ZSTD_compressBound(src_len) + 16;
	uint8_t *z = calloc(1, cap);
	size_t n = ZSTD_compress(z, cap, src, src_len, 1);
	uint64_t runs[] = { 0, pages, 0 };

	assert_false(ZSTD_isError(n));
	forge_header(f, MS_CAP_ZSTD, PAGES16);
	forge_pages(f, MS_PAGES_ZSTD, runs, 1, z, (size_t)((long)n + delta));
	free(z);
}

static void test_stream_zstd_frames_must_fit_the_batch_exactly(void **state)
{
	uint8_t *src = calloc(1, 3 * PS);
	struct forge f = { 0 };

	(void)state;
	memset(src, 'a', 3 * PS);
	forge_zstd_batch(&f, src, 2 * PS, 2, 0); /* exact: accepted, then truncated */
	forge_round(&f, 1, 2, 0, f.len - 56);
	expect_error(&f, -ENODATA, "before the END");
	forge_free(&f);
	forge_zstd_batch(&f, src, PS, 2, 0);
	expect_error(&f, -EBADMSG, "frame shorter");
	forge_free(&f);
	forge_zstd_batch(&f, src, 3 * PS, 2, 0);
	expect_error(&f, -EBADMSG, "frame longer");
	forge_free(&f);
	forge_zstd_batch(&f, src, 2 * PS, 2, 5);
	expect_error(&f, -EBADMSG, "bytes after the zstd frame");
	forge_free(&f);
	forge_zstd_batch(&f, src, 2 * PS, 2, -3);
	expect_error(&f, -EBADMSG, "truncated by the end of the record");
	forge_free(&f);
	forge_header(&f, MS_CAP_ZSTD, PAGES16);
	forge_pages(&f, MS_PAGES_ZSTD, (uint64_t[]){ 0, 1, 0 }, 1, "not a zstd frame", 16);
	expect_error(&f, -EBADMSG, "zstd:");
	forge_free(&f);
	free(src);
}

static void test_stream_round_and_switchover_counts_checked(void **state)
{
	struct forge f = { 0 };
	uint64_t runs[] = { 0, 3, 1 };

	(void)state;
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 1, NULL, 0);
	forge_round(&f, 1, 0, 2, MS_REC_HDR + MS_BATCH_HDR + 8);
	expect_error(&f, -EBADMSG, "counted 2 zero pages, the stream held 3");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 1, NULL, 0);
	forge_round(&f, 1, 0, 3, 7);
	expect_error(&f, -EBADMSG, "counted 7 bytes");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_round(&f, 4, 0, 0, 0);
	forge_round(&f, 4, 0, 0, 0);
	expect_error(&f, -EPROTO, "ROUND 4 after round 4");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_pages(&f, 0, runs, 1, NULL, 0);
	forge_switchover(&f, 0, 2);
	expect_error(&f, -EBADMSG, "SWITCHOVER");
	forge_free(&f);
}

static void test_stream_devices_and_vcpus_validated(void **state)
{
	struct forge f = { 0 };

	(void)state;
	forge_header(&f, 0, PAGES16);
	forge_device(&f, 1, "nic 0", 10);
	expect_error(&f, -EBADMSG, "name byte 3");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_device(&f, 1, "nic0", 10);
	forge_device(&f, 1, "nic1", 10);
	expect_error(&f, -EBADMSG, "sent twice");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	for (uint32_t i = 0; i < 5; i++)
		forge_device(&f, i, "d", 1);
	expect_error(&f, -EMSGSIZE, "more than 4 devices");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_device(&f, 1, "big", (1 << 20) + 100);
	expect_error(&f, -EMSGSIZE, "over the limit");
	forge_free(&f);
	forge_header(&f, 0, PAGES16);
	forge_record(&f, MS_REC_VCPUS, "ab", 2);
	forge_record(&f, MS_REC_VCPUS, "ab", 2);
	expect_error(&f, -EBADMSG, "VCPUS: sent twice");
	forge_free(&f);
}

static void forge_hashes(struct forge *f, uint64_t first, uint32_t n)
{
	uint8_t *p = calloc(1, MS_HASHES_HDR + 8ull * n);

	put_le64(p, first);
	put_le32(p + 8, n);
	forge_record(f, MS_REC_HASHES, p, MS_HASHES_HDR + 8ull * n);
	free(p);
}

static void test_stream_hashes_and_end_validated(void **state)
{
	uint32_t caps = MS_CAP_DIGEST | MS_CAP_PAGE_HASHES;
	struct forge f = { 0 };

	(void)state;
	forge_base(&f, caps);
	forge_hashes(&f, 1, 4);
	expect_error(&f, -EPROTO, "from page 1, expected 0");
	forge_free(&f);
	forge_base(&f, caps);
	forge_hashes(&f, 0, 17);
	expect_error(&f, -ERANGE, "past the layout");
	forge_free(&f);
	forge_base(&f, caps);
	forge_hashes(&f, 0, 8);
	forge_end(&f, 16);
	expect_error(&f, -EPROTO, "END after 8 of 16 page hashes");
	forge_free(&f);
	forge_base(&f, caps);
	forge_hashes(&f, 0, 16);
	forge_end(&f, 16); /* digest 0: not the digest of those hashes */
	expect_error(&f, -EBADMSG, "digest does not match the page hashes");
	forge_free(&f);
	forge_base(&f, 0);
	forge_end(&f, 15);
	expect_error(&f, -EBADMSG, "END: 15 pages");
	forge_free(&f);
}

/* Every proper prefix of a valid stream is a truncation, nothing else. */
static void test_stream_truncation_at_every_byte_is_enodata(void **state)
{
	struct forge f = { 0 };

	(void)state;
	forge_base(&f, 0);
	forge_end(&f, 16);
	for (size_t cut = 0; cut < f.len; cut++) {
		struct guest g;
		struct uiommu_stream_receiver *r = new_receiver(&g, PAGES16);

		assert_int_equal(uiommu_stream_recv_feed(r, f.buf, cut), 0);
		assert_false(uiommu_stream_recv_done(r));
		assert_int_equal(uiommu_stream_recv_finish(r), -ENODATA);
		assert_non_null(strstr(uiommu_stream_recv_error(r)->msg, "truncated"));
		uiommu_stream_receiver_destroy(r);
		guest_free(&g);
	}
	forge_free(&f);
}

static void lost_page(enum uiommu_stream_verify_mode mode, struct uiommu_stream_verify *v,
		      struct uiommu_stream_result *res)
{
	struct guest src, dst;
	struct uiommu_stream_receiver *r;
	struct uiommu_xport *a, *b;
	struct script_thread t;
	struct script s;
	struct seen sn;

	script_init(&s);
	s.seed = rnd();
	s.verify = mode;
	s.lose_gpa = 37 * PS;
	s.want_result = true;
	guest_alloc(&src, 256 * PS);
	guest_alloc(&dst, 256 * PS);
	fill_guest(&src, PAT_MIXED);
	assert_int_equal(uiommu_xport_pair(&a, &b), 0);
	r = receiver_for(&dst, &sn);
	script_start(&t, &s, &src, a);
	assert_int_equal(uiommu_stream_recv_run(r, b), 0);
	uiommu_stream_recv_get_verify(r, v);
	uiommu_stream_recv_get_result(r, res);
	assert_int_equal(uiommu_stream_result_send(b, res), 0);
	pthread_join(t.tid, NULL);
	assert_int_equal(s.rc, 0);
	assert_int_equal(s.result_rc, 0);
	assert_int_equal(s.result.verify.ok, v->ok);
	assert_int_equal(s.result.verify.mismatched, v->mismatched);
	assert_int_equal(s.result.verify.nr_bad, v->nr_bad);
	assert_int_equal(s.result.verify.bad_gpa[0], v->bad_gpa[0]);
	uiommu_stream_receiver_destroy(r);
	uiommu_xport_destroy(a);
	uiommu_xport_destroy(b);
	guest_free(&src);
	guest_free(&dst);
}

static void test_stream_lost_page_named_by_verification(void **state)
{
	struct uiommu_stream_verify v;
	struct uiommu_stream_result res;

	(void)state;
	lost_page(UIOMMU_STREAM_VERIFY_PAGES, &v, &res);
	assert_true(v.checked && !v.ok && !v.digest_match && v.pages_compared);
	assert_int_equal(v.mismatched, 1);
	assert_int_equal(v.nr_bad, 1);
	assert_int_equal(v.bad_gpa[0], 37 * PS);
	assert_int_equal(v.pages, 256);
	assert_int_equal(res.status, 0);
	lost_page(UIOMMU_STREAM_VERIFY_DIGEST, &v, &res);
	assert_true(v.checked && !v.ok && !v.digest_match && !v.pages_compared);
	assert_int_equal(v.nr_bad, 0);
}

static int abort_on_round(void *opaque, const struct uiommu_stream_event *ev)
{
	(void)opaque;
	return ev->type == UIOMMU_STREAM_EV_ROUND ? -ECANCELED : 0;
}

static void test_stream_event_handler_can_abort(void **state)
{
	struct uiommu_stream_recv_cfg cfg = { .mem_bytes = PAGES16, .on_event = abort_on_round };
	struct uiommu_stream_receiver *r;
	struct uiommu_stream_result res;
	struct forge f = { 0 };
	struct guest g;

	(void)state;
	guest_alloc(&g, PAGES16);
	cfg.mem = g.mem;
	assert_int_equal(uiommu_stream_receiver_create(&cfg, &r), 0);
	forge_base(&f, 0);
	assert_int_equal(uiommu_stream_recv_feed(r, f.buf, f.len), -ECANCELED);
	uiommu_stream_recv_get_result(r, &res);
	assert_int_equal(res.status, -ECANCELED);
	assert_non_null(strstr(res.msg, "event handler"));
	assert_int_equal(res.offset, 56 + MS_REC_HDR + MS_BATCH_HDR + 16 + PS);
	uiommu_stream_receiver_destroy(r);
	guest_free(&g);
	forge_free(&f);
}

static int result_from_bytes(const uint8_t *b, size_t len, struct uiommu_stream_result *res)
{
	struct uiommu_xport *x;
	int rc;

	assert_int_equal(uiommu_xport_mem_create(b, len, &x), 0);
	rc = uiommu_stream_result_recv(x, res);
	uiommu_xport_destroy(x);
	return rc;
}

static void test_stream_result_message_round_trip_and_checks(void **state)
{
	struct uiommu_stream_result res = { .status = -EBADMSG, .offset = 1234 }, got;
	struct uiommu_xport *x;
	uint8_t copy[MS_RESULT_LEN];
	const uint8_t *b;
	size_t len;

	(void)state;
	strcpy(res.msg, "PAGES record: check mismatch");
	res.verify = (struct uiommu_stream_verify){ .checked = true, .pages_compared = true,
						    .pages = 99, .mismatched = 5, .nr_bad = 2,
						    .bad_gpa = { 0x3000, 0x9000 } };
	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	assert_int_equal(uiommu_stream_result_send(x, &res), 0);
	assert_int_equal(uiommu_xport_mem_data(x, (const void **)&b, &len), 0);
	assert_int_equal(len, MS_RESULT_LEN);
	assert_int_equal(result_from_bytes(b, len, &got), 0);
	assert_int_equal(got.status, -EBADMSG);
	assert_int_equal(got.offset, 1234);
	assert_string_equal(got.msg, res.msg);
	assert_true(got.verify.checked && got.verify.pages_compared && !got.verify.ok);
	assert_int_equal(got.verify.pages, 99);
	assert_int_equal(got.verify.mismatched, 5);
	assert_int_equal(got.verify.nr_bad, 2);
	assert_int_equal(got.verify.bad_gpa[1], 0x9000);
	for (int i = 0; i < 64; i++) {
		memcpy(copy, b, len);
		copy[rnd_below(len)] ^= (uint8_t)(1u << rnd_below(8));
		assert_int_equal(result_from_bytes(copy, len, &got), -EBADMSG);
	}
	assert_int_equal(result_from_bytes(b, len - 1, &got), -ECONNRESET);
	res.status = 5;
	assert_int_equal(uiommu_stream_result_send(x, &res), -EINVAL);
	uiommu_xport_destroy(x);
}

/* doc/stream-format.md, "Worked example", byte for byte except the checks. */
static void test_stream_worked_example_matches_the_doc(void **state)
{
	static const uint8_t head[] = "UIOMMUMS\1\0\0\0\0\0\0\0\6\0\0\0\0\x10\0\0\1\0\0\0\0\0\0\0";
	struct uiommu_stream_send_cfg cfg = { .mem_bytes = 2 * PS };
	struct uiommu_stream_sender *s;
	struct uiommu_xport *x;
	const uint8_t *d;
	size_t len;
	struct guest g;

	(void)state;
	guest_alloc(&g, 2 * PS);
	memset(g.mem + PS, 7, PS);
	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	cfg.xport = x;
	cfg.mem = g.mem;
	assert_int_equal(uiommu_stream_sender_create(&cfg, &s), 0);
	assert_int_equal(uiommu_stream_send_header(s), 0);
	assert_int_equal(uiommu_stream_send_range(s, 0, 2 * PS), 0);
	assert_int_equal(uiommu_stream_send_round(s, 1, 0, 0), 0);
	assert_int_equal(uiommu_stream_send_switchover(s), 0);
	assert_int_equal(uiommu_stream_send_end(s), 0);
	assert_int_equal(uiommu_xport_mem_data(x, (const void **)&d, &len), 0);
	assert_int_equal(len, 56 + (24 + 32 + PS) + 72 + 40 + (24 + 32) + 56);
	assert_memory_equal(d, head, 32);
	assert_int_equal(get_le64(d + 40), 2 * PS);
	d += 56;
	assert_int_equal(get_le32(d), 1);
	assert_int_equal(get_le64(d + 8), 0x1020);
	assert_int_equal(get_le64(d + 24 + 8), PS);
	assert_int_equal(get_le64(d + 24 + 16), 1);
	assert_int_equal(get_le64(d + 24 + 24), 0x1000);
	d += 24 + 32 + PS;
	assert_int_equal(get_le64(d + 24 + 24), 0x1038);
	uiommu_stream_sender_destroy(s);
	uiommu_xport_destroy(x);
	guest_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_forged_base_is_accepted),
		cmocka_unit_test(test_stream_header_faults_rejected),
		cmocka_unit_test(test_stream_records_out_of_place_rejected),
		cmocka_unit_test(test_stream_record_lengths_and_checks_enforced),
		cmocka_unit_test(test_stream_page_runs_validated),
		cmocka_unit_test(test_stream_page_batch_header_validated),
		cmocka_unit_test(test_stream_rejected_batch_writes_nothing),
		cmocka_unit_test(test_stream_zstd_frames_must_fit_the_batch_exactly),
		cmocka_unit_test(test_stream_round_and_switchover_counts_checked),
		cmocka_unit_test(test_stream_devices_and_vcpus_validated),
		cmocka_unit_test(test_stream_hashes_and_end_validated),
		cmocka_unit_test(test_stream_truncation_at_every_byte_is_enodata),
		cmocka_unit_test(test_stream_lost_page_named_by_verification),
		cmocka_unit_test(test_stream_event_handler_can_abort),
		cmocka_unit_test(test_stream_result_message_round_trip_and_checks),
		cmocka_unit_test(test_stream_worked_example_matches_the_doc),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
