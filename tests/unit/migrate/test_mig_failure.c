// SPDX-License-Identifier: MIT
/*
 * Failure safety of the engine: whatever goes wrong before the receiver's
 * verdict, the source ends FAILED (or CANCELLED) with the throttle lifted
 * and every dirty bit it took from the machine pending again, and never do
 * both sides run the guest: before the receiver resumed it, or when the
 * receiver says it failed (and so paused it), the source's guest and device
 * run on; once it resumed and did not say so, the source stays paused
 * (res.source_paused). Then either the receiver runs the guest, verified, or
 * it failed and the test resumes the source. A second attempt on a fresh
 * receiver verifies page for page.
 *
 * Faults: the connection cut at random points (the source's writes or
 * reads, the destination's reads or writes, seeded: UIOMMU_SEED replays),
 * stream bytes corrupted (in a record header: rejected at once; anywhere:
 * rejected at once or by the verification at the end), cancel from another
 * thread at a random moment and before the run. The guest and the device
 * keep writing throughout. Runs threads: also in the 'stress' suite (TSan).
 */
#include "mig_test.h"

#define CUTS 8
#define RESULT_BYTES (MS_RESUMED_LEN + MS_RESULT_LEN)

static struct mt_cfg busy_cfg(void)
{
	struct mt_cfg c = {
		.backend = UIOMMU_VM_SOFT,
		.mem_mib = 16,
		.dma_mib = 4,
		.nr_vcpus = 2,
		.wl = mt_wl(UIOMMU_WL_RANDOM, 20000),
		.dma = { .pattern = UIOMMU_DMADEV_NET, .rate_bytes_per_sec = 4ull << 20 },
		.warm_ms = 100,
	};

	return c;
}

/* The source's guest writes nothing for a while: it is paused. */
static void assert_source_paused(struct mt *t)
{
	struct uiommu_vm_stats a, b;

	uiommu_vm_get_stats(t->src->vm, &a);
	mt_sleep_ms(30);
	uiommu_vm_get_stats(t->src->vm, &b);
	CHECK(a.pages_written == b.pages_written);
}

/*
 * A failed attempt: at most one side runs the guest; the source is whole.
 * Returns true when the receiver runs it (the source, paused, is spent).
 */
static bool check_failed_attempt(struct mt *t)
{
	CHECK(t->ret != 0);
	CHECK(t->res.state == UIOMMU_MIG_FAILED);
	CHECK(t->res.error == t->ret);
	CHECK(t->res.msg[0] != '\0');
	if (t->rret)
		CHECK(!t->rres.resumed);
	if (!t->res.source_paused) {
		CHECK(t->rret != 0); /* else both would run */
		mt_assert_source_unharmed(t);
		return false;
	}
	CHECK(strstr(t->res.msg, "the source stays paused") != NULL);
	assert_source_paused(t);
	if (!t->rret) {
		CHECK(t->rres.resumed && t->rres.verify.ok);
		return true;
	}
	/* The receiver failed and paused its copy: the caller resumes the source. */
	CHECK(uiommu_machine_resume(t->src) == 0);
	mt_assert_source_unharmed(t);
	return false;
}

/* The last attempt, on a clean line, must succeed and verify. */
static void final_attempt(struct mt *t)
{
	mt_dest_up(t, false);
	mt_migrate(t);
	mt_print(t, "retry");
	mt_assert_ok(t);
	mt_down(t);
}

/* After an unplanned success the source is spent: start a new one. */
static void renew_source(struct mt *t)
{
	mt_assert_ok(t);
	mt_down(t);
	mt_source_up(t);
}

enum cut_kind { CUT_SRC_WRITE, CUT_DST_READ, CUT_SRC_READ, CUT_DST_WRITE, CUT_KINDS };

static const char *const cut_names[] = { "source write", "destination read", "source read",
					 "destination write" };

static void arm_cut(struct mt *t, enum cut_kind kind, uint64_t at)
{
	if (kind == CUT_SRC_WRITE)
		t->fs->cut_write = at;
	else if (kind == CUT_DST_READ)
		t->fd->cut_read = at;
	else if (kind == CUT_SRC_READ)
		t->fs->cut_read = at;
	else
		t->fd->cut_write = at;
}

static void test_connection_cut_at_random_points_is_safe_and_retry_succeeds(void **state)
{
	struct mt t = { .cfg = busy_cfg() };
	uint64_t stream_bytes;

	(void)state;
	mt_source_up(&t);
	/* A first cut when the source waits for the Resumed notice measures the stream. */
	mt_dest_up(&t, true);
	arm_cut(&t, CUT_SRC_READ, 0);
	mt_migrate(&t);
	stream_bytes = t.res.stream.bytes;
	CHECK(!check_failed_attempt(&t));
	mt_dest_down(&t);
	for (op_index = 1; op_index <= CUTS; op_index++) {
		enum cut_kind kind = (enum cut_kind)rnd_below(CUT_KINDS);
		uint64_t at = kind <= CUT_DST_READ ? rnd_below(stream_bytes) : rnd_below(RESULT_BYTES);

		mt_dest_up(&t, true);
		arm_cut(&t, kind, at);
		mt_migrate(&t);
		print_message("cut %zu: %s at %" PRIu64 ": %s\n", op_index, cut_names[kind], at,
			      t.ret ? t.res.msg : "completed (cut after the end)");
		if (!t.ret) {
			renew_source(&t);
			continue;
		}
		if (check_failed_attempt(&t)) {
			mt_down(&t); /* the receiver runs the guest: a new source */
			mt_source_up(&t);
			continue;
		}
		mt_dest_down(&t);
	}
	final_attempt(&t);
}

static void test_corrupt_record_header_is_rejected_and_retry_succeeds(void **state)
{
	struct mt t = { .cfg = busy_cfg() };

	(void)state;
	mt_source_up(&t);
	mt_dest_up(&t, true);
	/* The first PAGES record's type field, right after the 56-byte header. */
	t.fs->flip_at = 56;
	mt_migrate(&t);
	mt_print(&t, "corrupt record header");
	CHECK(!check_failed_attempt(&t));
	assert_int_equal(t.rret, -EBADMSG);
	assert_true(t.res.remote_valid);
	assert_int_equal(t.res.error, -EBADMSG);
	mt_dest_down(&t);
	final_attempt(&t);
}

static void test_corrupt_bytes_anywhere_never_complete_wrong(void **state)
{
	struct mt t = { .cfg = busy_cfg() };
	uint64_t stream_bytes = (uint64_t)t.cfg.mem_mib * MiB / 4;

	(void)state;
	mt_source_up(&t);
	for (op_index = 1; op_index <= 4; op_index++) {
		uint64_t at = rnd_below(stream_bytes);

		mt_dest_up(&t, true);
		t.fs->flip_at = at;
		mt_migrate(&t);
		print_message("flip at %" PRIu64 ": %s\n", at, t.ret ? t.res.msg : "completed");
		if (!t.ret) {
			/* The page was sent again later: memory is right all the same. */
			renew_source(&t);
			continue;
		}
		CHECK(!check_failed_attempt(&t));
		CHECK(t.rret != 0);
		mt_dest_down(&t);
	}
	final_attempt(&t);
}

struct canceller {
	struct mt *t;
	unsigned int delay_ms;
};

static void *cancel_thread(void *arg)
{
	struct canceller *c = arg;

	mt_sleep_ms(c->delay_ms);
	uiommu_mig_cancel(c->t->mig);
	return NULL;
}

/* Only rounds that ran to their end count; only the last may have been cut. */
static void assert_completed_rounds_counted(struct mt *t)
{
	const struct uiommu_mig_round_info *ri;
	unsigned int nr, done = 0;

	ri = uiommu_mig_get_rounds(t->mig, &nr);
	for (unsigned int i = 0; i < nr; i++) {
		assert_true(ri[i].completed || i == nr - 1);
		done += ri[i].completed && !ri[i].stopcopy;
	}
	assert_int_equal(t->res.rounds, done);
}

static void test_cancel_from_another_thread_is_safe_and_retry_succeeds(void **state)
{
	struct mt t = { .cfg = busy_cfg() };
	struct canceller c = { .t = &t };
	pthread_t thr;
	struct uiommu_mig_cfg cfg = { .verify = UIOMMU_STREAM_VERIFY_PAGES };

	(void)state;
	t.cfg.wl = mt_wl(UIOMMU_WL_RANDOM, 50000);
	t.cfg.warm_ms = 200;
	mt_source_up(&t);
	mt_dest_up(&t, false);
	cfg.machine = t.src;
	cfg.xport = t.xs;
	cfg.bandwidth_bps = 8ull << 20; /* slow enough to be caught in the act */
	uiommu_mig_policy_defaults(&cfg.policy);
	assert_int_equal(uiommu_mig_create(&cfg, &t.mig), 0);
	c.delay_ms = 20 + (unsigned int)rnd_below(300);
	assert_int_equal(pthread_create(&t.thr, NULL, mt_recv_thread, &t), 0);
	t.thr_up = true;
	assert_int_equal(pthread_create(&thr, NULL, cancel_thread, &c), 0);
	uiommu_xport_set_bandwidth(t.xs, 1ull << 40); /* the caller's own limit */
	t.ret = uiommu_mig_run(t.mig);
	pthread_join(thr, NULL);
	assert_true(uiommu_xport_get_bandwidth(t.xs) == 1ull << 40);
	uiommu_mig_get_result(t.mig, &t.res);
	mt_join(&t);
	mt_print(&t, "cancelled");
	assert_int_equal(t.ret, -ECANCELED);
	assert_int_equal(t.res.state, UIOMMU_MIG_CANCELLED);
	assert_completed_rounds_counted(&t);
	mt_assert_source_unharmed(&t);
	mt_dest_down(&t);
	final_attempt(&t);
}

static void test_cancel_before_run_cancels_at_once(void **state)
{
	struct mt t = { .cfg = busy_cfg() };
	struct uiommu_mig_cfg cfg = { 0 };

	(void)state;
	mt_source_up(&t);
	mt_dest_up(&t, false);
	cfg.machine = t.src;
	cfg.xport = t.xs;
	uiommu_mig_policy_defaults(&cfg.policy);
	assert_int_equal(uiommu_mig_create(&cfg, &t.mig), 0);
	uiommu_mig_cancel(t.mig);
	assert_int_equal(uiommu_mig_run(t.mig), -ECANCELED);
	assert_int_equal(uiommu_mig_run(t.mig), -EALREADY);
	uiommu_mig_get_result(t.mig, &t.res);
	assert_int_equal(t.res.state, UIOMMU_MIG_CANCELLED);
	t.ret = t.res.error;
	mt_assert_source_unharmed(&t);
	mt_dest_down(&t);
	final_attempt(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connection_cut_at_random_points_is_safe_and_retry_succeeds),
		cmocka_unit_test(test_corrupt_record_header_is_rejected_and_retry_succeeds),
		cmocka_unit_test(test_corrupt_bytes_anywhere_never_complete_wrong),
		cmocka_unit_test(test_cancel_from_another_thread_is_safe_and_retry_succeeds),
		cmocka_unit_test(test_cancel_before_run_cancels_at_once),
	};

	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
