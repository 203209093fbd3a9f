// SPDX-License-Identifier: MIT
/*
 * uiommu_stream_send_end_known_zero(): pages the caller says are zero are
 * hashed as zero pages without being read. With a true claim the stream
 * verifies as with send_end (same digest); with a false one (a page with
 * data claimed zero) the receiver, which holds the data, names the page.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/migrate_stream.h>

#define PS 4096u
#define PAGES 64u

/* Sends every page of @mem, then the end with @zero; feeds it all to a receiver. */
static void run(uint8_t *mem, const uint64_t *zero, struct uiommu_stream_verify *v)
{
	struct uiommu_stream_send_cfg sc = { .mem = mem, .mem_bytes = PAGES * PS };
	struct uiommu_stream_recv_cfg rc = { .mem_bytes = PAGES * PS };
	struct uiommu_stream_sender *s;
	struct uiommu_stream_receiver *r;
	struct uiommu_xport *x;
	uint8_t *dst = calloc(PAGES, PS);
	const void *b;
	size_t len;

	assert_non_null(dst);
	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	sc.xport = x;
	assert_int_equal(uiommu_stream_sender_create(&sc, &s), 0);
	assert_int_equal(uiommu_stream_send_header(s), 0);
	assert_int_equal(uiommu_stream_send_range(s, 0, PAGES * PS), 0);
	assert_int_equal(uiommu_stream_send_switchover(s), 0);
	assert_int_equal(uiommu_stream_send_end_known_zero(s, zero), 0);
	assert_int_equal(uiommu_xport_mem_data(x, &b, &len), 0);
	rc.mem = dst;
	rc.populated = true;
	assert_int_equal(uiommu_stream_receiver_create(&rc, &r), 0);
	uiommu_stream_recv_feed(r, b, len);
	uiommu_stream_recv_get_verify(r, v);
	uiommu_stream_receiver_destroy(r);
	uiommu_stream_sender_destroy(s);
	uiommu_xport_destroy(x);
	free(dst);
}

static uint8_t *memory(void)
{
	uint8_t *mem = calloc(PAGES, PS);

	assert_non_null(mem);
	for (unsigned int p = 0; p < PAGES; p += 2)
		memset(mem + p * PS, (int)(p + 1), PS); /* even pages data, odd pages zero */
	return mem;
}

static void test_true_claims_verify_like_send_end(void **state)
{
	uint64_t zero[1] = { 0 };
	uint8_t *mem = memory();
	struct uiommu_stream_verify plain, hinted;

	(void)state;
	for (unsigned int p = 1; p < PAGES; p += 2)
		uiommu_bitmap_set(zero, p);
	run(mem, NULL, &plain);
	run(mem, zero, &hinted);
	assert_true(plain.ok);
	assert_true(hinted.ok);
	assert_int_equal(hinted.mismatched, 0);
	free(mem);
}

static void test_a_false_claim_names_the_page(void **state)
{
	uint64_t zero[1] = { 0 };
	uint8_t *mem = memory();
	struct uiommu_stream_verify v;

	(void)state;
	uiommu_bitmap_set(zero, 6); /* page 6 holds data */
	run(mem, zero, &v);
	assert_true(v.checked);
	assert_false(v.ok);
	assert_int_equal(v.mismatched, 1);
	assert_int_equal(v.nr_bad, 1);
	assert_int_equal(v.bad_gpa[0], 6 * PS);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_true_claims_verify_like_send_end),
		cmocka_unit_test(test_a_false_claim_names_the_page),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
