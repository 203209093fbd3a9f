// SPDX-License-Identifier: MIT
/*
 * The emulated DMA device's VFIO migration v2 state machine.
 *
 * Every (state, target) pair against a table written from the kernel's
 * documentation (include/uapi/linux/vfio.h and the combination transitions
 * that vfio_mig_get_next_state() produces for a device with STOP_COPY and
 * PRE_COPY but no P2P): the return code, the final state and the exact
 * sequence of arcs taken (captured from the library's debug log). Then what
 * the states mean: every state but RUNNING and PRE_COPY is quiesced the
 * moment the transition returns; the saving session (PRE_COPY initial data,
 * -ENOMSG, STOP_COPY end of stream); data calls in the wrong state; a failed
 * arc leaves ERROR, and only reset leaves it.
 */
#include <pthread.h>

#include <uiommu/log.h>

#include "dmadev_test.h"

#include "core/core_internal.h"

#define R VFIO_DEVICE_STATE_RUNNING
#define S VFIO_DEVICE_STATE_STOP
#define SC VFIO_DEVICE_STATE_STOP_COPY
#define RS VFIO_DEVICE_STATE_RESUMING
#define E VFIO_DEVICE_STATE_ERROR
#define PC UIOMMU_VFIO_STATE_PRE_COPY
#define STREAM_BYTES 216

/* ---- arcs taken, from the debug log ---- */

static char arcs_seen[256];

static void log_fn(void *opaque, enum uiommu_log_level level, const char *msg)
{
	int from, to;
	size_t n = strlen(arcs_seen);

	(void)opaque;
	(void)level;
	if (sscanf(msg, "dmadev: arc %d -> %d", &from, &to) == 2)
		snprintf(arcs_seen + n, sizeof(arcs_seen) - n, "%s%d", n ? " " : "", to);
}

struct arc_case {
	enum vfio_device_mig_state from;
	unsigned int to;
	int ret;
	const char *path; /* states entered, in order; "" for none */
};

/*
 * The kernel's FSM for STOP_COPY | PRE_COPY. States: 0 ERROR, 1 STOP,
 * 2 RUNNING, 3 STOP_COPY, 4 RESUMING, 5 RUNNING_P2P, 6 PRE_COPY,
 * 7 PRE_COPY_P2P. Unsupported (P2P) and unknown targets and ERROR are
 * -EINVAL; STOP_COPY -> PRE_COPY is blocked; nothing leaves ERROR.
 */
static const struct arc_case cases[] = {
	{ R, 0, -EINVAL, "" },	   { R, 1, 0, "1" },	      { R, 2, 0, "" },
	{ R, 3, 0, "1 3" },	   { R, 4, 0, "1 4" },	      { R, 5, -EINVAL, "" },
	{ R, 6, 0, "6" },	   { R, 7, -EINVAL, "" },     { R, 8, -EINVAL, "" },
	{ S, 0, -EINVAL, "" },	   { S, 1, 0, "" },	      { S, 2, 0, "2" },
	{ S, 3, 0, "3" },	   { S, 4, 0, "4" },	      { S, 5, -EINVAL, "" },
	{ S, 6, 0, "2 6" },	   { S, 7, -EINVAL, "" },     { S, 200, -EINVAL, "" },
	{ PC, 0, -EINVAL, "" },	   { PC, 1, 0, "2 1" },	      { PC, 2, 0, "2" },
	{ PC, 3, 0, "3" },	   { PC, 4, 0, "2 1 4" },     { PC, 5, -EINVAL, "" },
	{ PC, 6, 0, "" },	   { PC, 7, -EINVAL, "" },    { SC, 0, -EINVAL, "" },
	{ SC, 1, 0, "1" },	   { SC, 2, 0, "1 2" },	      { SC, 3, 0, "" },
	{ SC, 4, 0, "1 4" },	   { SC, 5, -EINVAL, "" },    { SC, 6, -EINVAL, "" },
	{ SC, 7, -EINVAL, "" },	   { RS, 0, -EINVAL, "" },    { RS, 1, 0, "1" },
	{ RS, 2, 0, "1 2" },	   { RS, 3, 0, "1 3" },	      { RS, 4, 0, "" },
	{ RS, 5, -EINVAL, "" },	   { RS, 6, 0, "1 2 6" },     { RS, 7, -EINVAL, "" },
	{ E, 0, 0, "" },	   { E, 1, -EINVAL, "" },     { E, 2, -EINVAL, "" },
	{ E, 3, -EINVAL, "" },	   { E, 4, -EINVAL, "" },     { E, 5, -EINVAL, "" },
	{ E, 6, -EINVAL, "" },	   { E, 7, -EINVAL, "" },     { E, 9, -EINVAL, "" },
};

struct fixture {
	uint8_t *mem;
	struct uiommu_dmadev *dev;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct uiommu_dmadev_cfg cfg;

	assert_non_null(f);
	f->mem = guest_alloc(GUEST_BYTES);
	cfg = std_cfg(f->mem, UIOMMU_DMADEV_MIXED, 50 * MiB);
	cfg.dma_bytes = 1 * MiB;
	f->dev = dev_new(&cfg);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	uiommu_dmadev_destroy(f->dev);
	guest_free(f->mem, GUEST_BYTES);
	free(f);
	return 0;
}

/* RESUMING, then leave it with a partial stream: the arc fails into ERROR. */
static void drive_to_error(struct uiommu_dmadev *dev)
{
	static const uint8_t partial[10] = { 'U', 'D', 'M', 'S' };

	set_state_ok(dev, RS);
	assert_int_equal(uiommu_dmadev_mig_write(dev, partial, sizeof(partial)), 0);
	assert_int_equal(uiommu_dmadev_set_state(dev, S), -EINVAL);
	assert_int_equal(uiommu_dmadev_get_state(dev), E);
}

static void drive_to(struct uiommu_dmadev *dev, enum vfio_device_mig_state s)
{
	uiommu_dmadev_reset(dev);
	assert_int_equal(uiommu_dmadev_get_state(dev), R);
	if (s == E)
		drive_to_error(dev);
	else
		set_state_ok(dev, s);
}

static void test_dmadev_every_arc_follows_the_kernel_table(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct arc_case *c = &cases[i];
		const char *last = strrchr(c->path, ' ');
		enum vfio_device_mig_state end =
			*c->path ? (enum vfio_device_mig_state)atoi(last ? last + 1 : c->path)
				 : c->from;
		int ret;

		drive_to(f->dev, c->from);
		arcs_seen[0] = 0;
		uiommu_set_log_fn(log_fn, NULL, UIOMMU_LOG_DEBUG);
		ret = uiommu_dmadev_set_state(f->dev, (enum vfio_device_mig_state)c->to);
		uiommu_set_log_fn(NULL, NULL, UIOMMU_LOG_ERR);
		if (ret != c->ret || strcmp(arcs_seen, c->path) ||
		    uiommu_dmadev_get_state(f->dev) != end)
			fail_msg("%d -> %u: returned %d, arcs \"%s\", state %d; want %d, \"%s\", %d",
				 c->from, c->to, ret, arcs_seen, uiommu_dmadev_get_state(f->dev),
				 c->ret, c->path, end);
	}
}

/* Nothing the device does may change after the transition returns. */
static void expect_quiesced(struct uiommu_dmadev *dev, const uint8_t *region, uint8_t *copy)
{
	struct uiommu_device *dma = uiommu_hwdev_dma(uiommu_dmadev_hwdev(dev));
	struct uiommu_device_stats d0, d1;
	struct uiommu_dmadev_stats s0 = stats_of(dev), s1;

	uiommu_device_get_stats(dma, &d0);
	memcpy(copy, region, 1 * MiB);
	sleep_ms(5);
	s1 = stats_of(dev);
	uiommu_device_get_stats(dma, &d1);
	assert_true(s1.writes == s0.writes && s1.bytes == s0.bytes);
	assert_true(d1.bytes_written == d0.bytes_written);
	assert_memory_equal(copy, region, 1 * MiB);
}

static void test_dmadev_every_stopped_state_is_quiesced_on_return(void **state)
{
	static const enum vfio_device_mig_state stopped[] = { S, SC, RS, E };
	struct fixture *f = *state;
	uint8_t *copy = malloc(1 * MiB);
	uint64_t writes = 0;

	set_workload(f->dev, UIOMMU_DMADEV_MIXED, 0);
	for (int round = 0; round < 5; round++) {
		for (size_t i = 0; i < 4; i++) {
			uiommu_dmadev_reset(f->dev);
			if (round & 1)
				set_state_ok(f->dev, PC); /* PRE_COPY runs too */
			run_until_writes(f->dev, 100);
			if (stopped[i] == E)
				drive_to_error(f->dev);
			else
				set_state_ok(f->dev, stopped[i]);
			expect_quiesced(f->dev, f->mem + DMA_GPA, copy);
		}
	}
	writes = stats_of(f->dev).writes;
	print_message("%llu writes, stopped 20 times\n", (unsigned long long)writes);
	free(copy);
}

/* Racing requests from two threads leave one consistent state, and DMA obeys it. */
struct racer {
	struct uiommu_dmadev *dev;
	uint64_t seed;
};

static void *race(void *arg)
{
	static const enum vfio_device_mig_state targets[] = { R, S, PC, SC, RS };
	struct racer *r = arg;

	for (int i = 0; i < 300; i++) {
		r->seed = r->seed * 6364136223846793005ull + 1442695040888963407ull;
		uiommu_dmadev_set_state(r->dev, targets[(r->seed >> 33) % 5]);
	}
	return NULL;
}

static void test_dmadev_concurrent_requests_leave_a_consistent_device(void **state)
{
	struct fixture *f = *state;
	struct racer r[2] = { { f->dev, 1 }, { f->dev, 2 } };
	pthread_t t[2];
	uint8_t *copy = malloc(1 * MiB);

	uiommu_dmadev_reset(f->dev);
	set_workload(f->dev, UIOMMU_DMADEV_MIXED, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	set_state_ok(f->dev, S);
	expect_quiesced(f->dev, f->mem + DMA_GPA, copy);
	verify_ok(f->dev);
	free(copy);
}

static void test_dmadev_precopy_offers_initial_data_then_enomsg(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[512];
	uint64_t initial, dirty, writes;
	size_t len, got = 0;

	uiommu_dmadev_reset(f->dev);
	assert_int_equal(uiommu_dmadev_precopy_info(f->dev, &initial, &dirty), -EINVAL);
	set_state_ok(f->dev, PC);
	assert_int_equal(uiommu_dmadev_precopy_info(f->dev, &initial, &dirty), 0);
	assert_true(initial == 88 && dirty == 0);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, 10, &len), 0);
	assert_int_equal(len, 10);
	assert_int_equal(uiommu_dmadev_precopy_info(f->dev, &initial, &dirty), 0);
	assert_int_equal(initial, 78);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf + 10, sizeof(buf), &len), 0);
	assert_int_equal(len, 78);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), -ENOMSG);
	/* The device keeps running in PRE_COPY. */
	run_until_writes(f->dev, 100);
	set_state_ok(f->dev, SC);
	writes = stats_of(f->dev).writes;
	assert_int_equal(uiommu_dmadev_precopy_info(f->dev, &initial, &dirty), -EINVAL);
	for (got = 88; !uiommu_dmadev_mig_read(f->dev, buf + got, 7, &len) && len; got += len)
		assert_true(got + len <= STREAM_BYTES);
	assert_int_equal(got, STREAM_BYTES);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(stats_of(f->dev).writes, writes);
	/* Back to RUNNING ends the session: another starts from the beginning. */
	set_state_ok(f->dev, R);
	set_state_ok(f->dev, SC);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, STREAM_BYTES);
}

static void test_dmadev_data_calls_in_other_states_are_einval(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[STREAM_BYTES];
	size_t len;
	void *blob;
	uint64_t blob_len;

	drive_to(f->dev, R);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(uiommu_dmadev_mig_write(f->dev, buf, 1), -EINVAL);
	assert_int_equal(uiommu_dmadev_save(f->dev, &blob, &blob_len), -EINVAL);
	set_state_ok(f->dev, PC);
	assert_int_equal(uiommu_dmadev_save(f->dev, &blob, &blob_len), -EINVAL);
	assert_int_equal(uiommu_dmadev_load(f->dev, buf, 1), -EINVAL);
	set_state_ok(f->dev, S);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), -EINVAL);
	set_state_ok(f->dev, SC);
	assert_int_equal(uiommu_dmadev_mig_write(f->dev, buf, 1), -EINVAL);
	set_state_ok(f->dev, RS);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(uiommu_dmadev_save(f->dev, &blob, &blob_len), -EINVAL);
	drive_to_error(f->dev);
	assert_int_equal(uiommu_dmadev_mig_read(f->dev, buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(uiommu_dmadev_mig_write(f->dev, buf, 1), -EINVAL);
}

/* A failed arc leaves ERROR: quiesced, deaf to requests, until reset. */
static void test_dmadev_failed_arc_leaves_error_until_reset(void **state)
{
	struct fixture *f = *state;
	uint8_t *copy = malloc(1 * MiB);

	uiommu_dmadev_reset(f->dev);
	set_workload(f->dev, UIOMMU_DMADEV_NET, 0);
	run_until_writes(f->dev, 100);
	drive_to_error(f->dev);
	expect_quiesced(f->dev, f->mem + DMA_GPA, copy);
	assert_int_equal(uiommu_dmadev_set_state(f->dev, R), -EINVAL);
	assert_int_equal(uiommu_dmadev_get_state(f->dev), E);
	uiommu_dmadev_reset(f->dev);
	assert_int_equal(uiommu_dmadev_get_state(f->dev), R);
	run_until_writes(f->dev, 100);
#ifdef UIOMMU_DEBUG_CHECKS
	/* No memory for the session: STOP -> STOP_COPY fails into ERROR. */
	set_state_ok(f->dev, S);
	uiommu__fail_nth_set(1);
	assert_int_equal(uiommu_dmadev_set_state(f->dev, SC), -ENOMEM);
	uiommu__fail_nth_set(0);
	assert_int_equal(uiommu_dmadev_get_state(f->dev), E);
	expect_quiesced(f->dev, f->mem + DMA_GPA, copy);
	uiommu_dmadev_reset(f->dev);
	run_until_writes(f->dev, 100);
#endif
	set_state_ok(f->dev, S);
	verify_ok(f->dev);
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmadev_every_arc_follows_the_kernel_table),
		cmocka_unit_test(test_dmadev_every_stopped_state_is_quiesced_on_return),
		cmocka_unit_test(test_dmadev_concurrent_requests_leave_a_consistent_device),
		cmocka_unit_test(test_dmadev_precopy_offers_initial_data_then_enomsg),
		cmocka_unit_test(test_dmadev_data_calls_in_other_states_are_einval),
		cmocka_unit_test(test_dmadev_failed_arc_leaves_error_until_reset),
	};
	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
