// SPDX-License-Identifier: MIT
/*
 * The destination's Resumed notice (doc/stream-format.md "Resumed"): it
 * round-trips; a Result sent in its place is decoded and reported as
 * -EREMOTEIO; every malformed variant (magic, version, reserved field, any
 * single flipped bit, random bytes) is -EBADMSG; a short message is
 * -ECONNRESET. Randomized parts print their seed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uiommu/migrate_stream.h>

#include "migrate/migrate_internal.h"
#include "seeded.h"

/* The bytes one send writes. */
static size_t encode(uint64_t resume_ns, uint8_t *out)
{
	struct uiommu_xport *x;
	const void *b;
	size_t len;

	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	assert_int_equal(uiommu_stream_resumed_send(x, resume_ns), 0);
	assert_int_equal(uiommu_xport_mem_data(x, &b, &len), 0);
	memcpy(out, b, len);
	uiommu_xport_destroy(x);
	return len;
}

static int decode(const uint8_t *b, size_t len, uint64_t *ns, struct uiommu_stream_result *res)
{
	struct uiommu_xport *x;
	int rc;

	assert_int_equal(uiommu_xport_mem_create(b, len, &x), 0);
	rc = uiommu_stream_resumed_recv(x, ns, res);
	uiommu_xport_destroy(x);
	return rc;
}

/* Re-seals bytes 0..23 with their check, so a field change is not caught by it. */
static void reseal(uint8_t *b)
{
	put_le64(b + 24, uiommu_stream_hash_page(b, 24));
}

static void test_resumed_notice_round_trips_in_32_bytes(void **state)
{
	uint8_t b[64];
	struct uiommu_stream_result res;
	uint64_t ns = 0;

	(void)state;
	assert_int_equal(encode(123456789, b), MS_RESUMED_LEN);
	assert_memory_equal(b, "UIOMMURD", 8);
	assert_int_equal(decode(b, MS_RESUMED_LEN, &ns, &res), 0);
	assert_int_equal(ns, 123456789);
}

static void test_resumed_fields_out_of_range_are_ebadmsg(void **state)
{
	uint8_t b[64], c[64];
	struct uiommu_stream_result res;
	uint64_t ns = 0;
	static const unsigned int fields[] = { 0, 8, 12 };

	(void)state;
	encode(5, b);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		memcpy(c, b, sizeof(c));
		c[fields[i]] ^= 1;
		reseal(c);
		assert_int_equal(decode(c, MS_RESUMED_LEN, &ns, &res), -EBADMSG);
	}
}

static void test_resumed_any_flipped_bit_is_ebadmsg(void **state)
{
	uint8_t b[64], c[64];
	struct uiommu_stream_result res;
	uint64_t ns = 0;

	(void)state;
	encode(77, b);
	for (unsigned int bit = 0; bit < 8 * MS_RESUMED_LEN; bit++) {
		memcpy(c, b, sizeof(c));
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(decode(c, MS_RESUMED_LEN, &ns, &res), -EBADMSG);
	}
}

static void test_resumed_short_message_is_econnreset(void **state)
{
	uint8_t b[64];
	struct uiommu_stream_result res;
	uint64_t ns = 0;

	(void)state;
	encode(1, b);
	for (size_t len = 0; len < MS_RESUMED_LEN; len++)
		assert_int_equal(decode(b, len, &ns, &res), -ECONNRESET);
}

static void test_result_in_place_of_resumed_is_eremoteio_and_decoded(void **state)
{
	struct uiommu_stream_result sent = { .status = -ENODEV }, got;
	struct uiommu_xport *x;
	const void *b;
	uint8_t copy[MS_RESULT_LEN];
	size_t len;
	uint64_t ns = 0;

	(void)state;
	strcpy(sent.msg, "the device refused its state");
	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	assert_int_equal(uiommu_stream_result_send(x, &sent), 0);
	assert_int_equal(uiommu_xport_mem_data(x, &b, &len), 0);
	memcpy(copy, b, len);
	uiommu_xport_destroy(x);
	assert_int_equal(decode(copy, len, &ns, &got), -EREMOTEIO);
	assert_int_equal(got.status, -ENODEV);
	assert_string_equal(got.msg, sent.msg);
	/* A truncated or damaged result stays an error of its own. */
	assert_int_equal(decode(copy, len - 1, &ns, &got), -ECONNRESET);
	copy[100] ^= 4;
	assert_int_equal(decode(copy, len, &ns, &got), -EBADMSG);
}

static void test_random_bytes_never_pass_as_a_notice(void **state)
{
	uint8_t b[MS_RESULT_LEN];
	struct uiommu_stream_result res;
	uint64_t ns = 0;

	(void)state;
	for (op_index = 0; op_index < 20000; op_index++) {
		fill_random(b, sizeof(b));
		if (rnd_below(4) == 0)
			memcpy(b, rnd_below(2) ? "UIOMMURD" : "UIOMMURS", 8);
		CHECK(decode(b, sizeof(b), &ns, &res) == -EBADMSG);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resumed_notice_round_trips_in_32_bytes),
		cmocka_unit_test(test_resumed_fields_out_of_range_are_ebadmsg),
		cmocka_unit_test(test_resumed_any_flipped_bit_is_ebadmsg),
		cmocka_unit_test(test_resumed_short_message_is_econnreset),
		cmocka_unit_test(test_result_in_place_of_resumed_is_eremoteio_and_decoded),
		cmocka_unit_test(test_random_bytes_never_pass_as_a_notice),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
