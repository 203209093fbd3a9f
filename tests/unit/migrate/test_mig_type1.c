// SPDX-License-Identifier: MIT
/*
 * The migration engine with the passthrough device behind a VFIO type1
 * container (the "vfio" dirty source, VFIO_IOMMU_DIRTY_PAGES GET_BITMAP),
 * end to end, with the kernel's type1 semantics and what they imply:
 *  - a DMA device with the IOMMU_DIRTY opt-in: type1 reports what the
 *    device wrote, and the migration converges as through iommufd;
 *  - a DMA device without it (the kernel's behaviour): the all-dirty rule
 *    reports every mapped page, i.e. all guest RAM, in every collect, so
 *    every round resends all of it; the remainder can never shrink, and the
 *    policy forces the switch at once (or gives up without --force);
 *  - an MDEV device that pins its working set: the pinned pages are in the
 *    "vfio" report of every round, counted in each round's pinned_pages,
 *    and the result states them (and their share of the expected downtime)
 *    from the last pre-copy round, before the stop-copy.
 * Every completed migration verifies page for page, and the device's region
 * from its migrated state. Software vCPUs, so they run everywhere; the KVM
 * variant skips (77) without /dev/kvm.
 */
#include "mig_test.h"

#define PIN_PAGES 64u

static struct mt_cfg t1_cfg(enum uiommu_dmadev_kind kind)
{
	struct mt_cfg c = {
		.backend = UIOMMU_VM_SOFT,
		.mem_mib = 32,
		.dma_mib = 8,
		.nr_vcpus = 2,
		.wl = mt_wl(UIOMMU_WL_RANDOM, 20000),
		.dma = { .pattern = UIOMMU_DMADEV_NET, .rate_bytes_per_sec = 20ull << 20 },
		.warm_ms = 100,
		.policy_set = true,
		.iommu = UIOMMU_MACHINE_VFIO_TYPE1,
		.kind = kind,
		.pin_pages = kind == UIOMMU_DMADEV_KIND_MDEV ? PIN_PAGES : 0,
	};

	uiommu_mig_policy_defaults(&c.policy);
	return c;
}

static const struct uiommu_mig_round_info *rounds_of(const struct mt *t, unsigned int *nr)
{
	const struct uiommu_mig_round_info *ri = uiommu_mig_get_rounds(t->mig, nr);

	for (unsigned int i = 0; i < *nr; i++)
		print_message("  round %u%s: sent %" PRIu64 ", pending %" PRIu64 ", pinned %" PRIu64
			      " (%.2f ms), all-dirty %d, exp. downtime %.1f ms, action %d\n",
			      ri[i].round, ri[i].stopcopy ? " (stop)" : "", ri[i].dirty_pages,
			      ri[i].pending_pages, ri[i].pinned_pages,
			      (double)ri[i].pinned_downtime_ns / 1e6, ri[i].all_dirty,
			      (double)ri[i].expected_downtime_ns / 1e6, ri[i].action);
	assert_true(*nr >= 2);
	assert_true(ri[*nr - 1].stopcopy);
	return ri;
}

/* The pages the "vfio" source reported in round @ri. */
static uint64_t vfio_pages(const struct uiommu_mig_round_info *ri)
{
	for (unsigned int s = 0; s < ri->nr_sources; s++)
		if (!strcmp(ri->source_name[s], "vfio"))
			return ri->source_pages[s];
	fail_msg("round %u has no vfio source", ri->round);
	return 0;
}

static void test_type1_dma_device_with_iommu_dirty_opt_in_converges(void **state)
{
	struct mt_cfg c = t1_cfg(UIOMMU_DMADEV_KIND_DMA);
	const struct uiommu_mig_round_info *ri;
	struct mt t = { 0 };
	unsigned int nr;

	(void)state;
	c.iommu_dirty = true;
	t.cfg = c;
	mt_source_up(&t);
	assert_false(uiommu_machine_all_dirty(t.src));
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, "type1 dma, IOMMU_DIRTY opt-in");
	mt_assert_ok(&t);
	ri = rounds_of(&t, &nr);
	/* The IOMMU's bits: what the device wrote, never all of guest RAM. */
	for (unsigned int i = 0; i < nr; i++) {
		assert_true(vfio_pages(&ri[i]) < t.src->npages);
		assert_int_equal(ri[i].pinned_pages, 0);
		assert_false(ri[i].all_dirty);
	}
	assert_int_equal(ri[nr - 2].action, UIOMMU_MIG_SWITCHOVER);
	assert_int_equal(t.res.pinned_pages, 0);
	assert_false(t.res.all_dirty);
	mt_down(&t);
}

/* The kernel's rule: an IOMMU-backed group outside pinned scope makes everything dirty. */
static void all_dirty_case(struct mt *t, bool force)
{
	t->cfg = t1_cfg(UIOMMU_DMADEV_KIND_DMA);
	/* A limit no full resend of 32 MiB can meet. */
	t->cfg.policy.downtime_limit_ns = 1000;
	t->cfg.policy.force_switchover = force;
	mt_source_up(t);
	assert_true(uiommu_machine_all_dirty(t->src));
	mt_dest_up(t, false);
	mt_migrate(t);
	mt_print(t, force ? "type1 dma, all-dirty, force" : "type1 dma, all-dirty");
}

static void test_type1_dma_device_all_dirty_rule_resends_everything_and_forces(void **state)
{
	const struct uiommu_mig_round_info *ri;
	struct mt t = { 0 };
	unsigned int nr;

	(void)state;
	all_dirty_case(&t, true);
	mt_assert_ok(&t);
	ri = rounds_of(&t, &nr);
	/* Every collect reports all guest RAM, so the stop-copy resends all of it. */
	for (unsigned int i = 0; i < nr; i++) {
		assert_int_equal(vfio_pages(&ri[i]), t.src->npages);
		assert_true(ri[i].all_dirty);
	}
	for (unsigned int i = 0; i + 1 < nr; i++)
		assert_int_equal(ri[i].pending_pages, t.src->npages);
	assert_int_equal(ri[nr - 1].dirty_pages, t.src->npages);
	assert_int_equal(t.res.stopcopy_pages, t.src->npages);
	/* Rounds cannot shrink it: the switch is forced after the first. */
	assert_int_equal(nr, 2);
	assert_int_equal(ri[0].action, UIOMMU_MIG_FORCE_SWITCH);
	assert_true(t.res.all_dirty);
	mt_down(&t);
}

static void test_type1_dma_device_all_dirty_rule_gives_up_without_force(void **state)
{
	struct mt t = { 0 };

	(void)state;
	all_dirty_case(&t, false);
	assert_int_equal(t.ret, -ETIMEDOUT);
	assert_int_equal(t.res.state, UIOMMU_MIG_FAILED);
	assert_non_null(strstr(t.res.msg, "all-dirty"));
	mt_assert_source_unharmed(&t);
	mt_down(&t);
}

static void check_pinned_rounds(const struct mt *t)
{
	const struct uiommu_mig_round_info *ri;
	unsigned int nr;

	ri = rounds_of(t, &nr);
	for (unsigned int i = 0; i < nr; i++) {
		/* Pinned pages are dirty in every report while pinned: every round resends them. */
		assert_int_equal(ri[i].pinned_pages, PIN_PAGES);
		assert_true(vfio_pages(&ri[i]) >= PIN_PAGES);
		assert_true(ri[i].pending_pages >= PIN_PAGES || ri[i].stopcopy);
		assert_true(ri[i].dirty_pages >= PIN_PAGES);
		assert_false(ri[i].all_dirty);
		if (!ri[i].stopcopy) {
			assert_true(ri[i].pinned_downtime_ns > 0);
			assert_true(ri[i].pinned_downtime_ns <= ri[i].expected_downtime_ns);
		}
	}
	/* Known before the stop-copy: the last pre-copy round's figures. */
	assert_int_equal(t->res.pinned_pages, PIN_PAGES);
	assert_int_equal(t->res.pinned_downtime_ns, ri[nr - 2].pinned_downtime_ns);
	assert_int_equal(t->res.pinned_resent_pages, (uint64_t)PIN_PAGES * t->res.rounds);
	assert_true(t->res.stopcopy_pages >= PIN_PAGES);
}

static void mdev_case(struct mt_cfg *c, const char *what)
{
	struct mt t = { .cfg = *c };
	uint64_t gpa, pages;

	mt_source_up(&t);
	uiommu_dmadev_pinned(t.src->dev, &gpa, &pages);
	assert_int_equal(pages, PIN_PAGES);
	assert_int_equal(uiommu_machine_pinned_pages(t.src), PIN_PAGES);
	assert_false(uiommu_machine_all_dirty(t.src));
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, what);
	mt_assert_ok(&t);
	check_pinned_rounds(&t);
	mt_down(&t);
}

static void test_type1_mdev_device_pinned_pages_are_resent_every_round(void **state)
{
	struct mt_cfg c = t1_cfg(UIOMMU_DMADEV_KIND_MDEV);

	(void)state;
	/* Block writes land outside the pins (dma_rw, reported once) as well as inside. */
	c.dma.pattern = UIOMMU_DMADEV_MIXED;
	mdev_case(&c, "type1 mdev, mixed");
}

static void test_type1_mdev_device_migrates_over_several_rounds(void **state)
{
	struct mt_cfg c = t1_cfg(UIOMMU_DMADEV_KIND_MDEV);

	(void)state;
	/* A tight limit keeps it going a few rounds: the pins are there in each. */
	c.policy.downtime_limit_ns = 1000;
	c.policy.max_rounds = 3;
	c.policy.force_switchover = true;
	c.policy.throttle = false;
	mdev_case(&c, "type1 mdev, 3 rounds forced");
}

static void test_type1_mdev_device_on_kvm_migrates(void **state)
{
	struct mt_cfg c = t1_cfg(UIOMMU_DMADEV_KIND_MDEV);

	(void)state;
	if (!mt_have_kvm())
		skip();
	c.backend = UIOMMU_VM_KVM;
	c.mem_mib = 64;
	mdev_case(&c, "kvm, type1 mdev");
}

/*
 * The device's kind travels in the stream: a destination set up with
 * another one (here the iommufd DMA device for an mdev behind type1) refuses
 * the state at switchover, the source comes back unharmed, and a retry to a
 * destination set up like the source succeeds.
 */
static void test_device_of_another_kind_is_refused_and_a_retry_succeeds(void **state)
{
	struct mt_cfg c = t1_cfg(UIOMMU_DMADEV_KIND_MDEV);
	struct mt t = { .cfg = c };

	(void)state;
	mt_source_up(&t);
	t.cfg.iommu = UIOMMU_MACHINE_IOMMUFD;
	t.cfg.kind = UIOMMU_DMADEV_KIND_DMA;
	t.cfg.pin_pages = 0;
	mt_dest_up(&t, false);
	t.cfg = c;
	mt_migrate(&t);
	mt_print(&t, "mdev to a dma destination");
	assert_int_equal(t.res.state, UIOMMU_MIG_FAILED);
	assert_non_null(strstr(t.res.msg, "the stream's device is mdev-type1, this machine's is dmadev"));
	assert_false(t.rres.resumed);
	mt_assert_source_unharmed(&t);
	mt_dest_down(&t);
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, "retry");
	mt_assert_ok(&t);
	mt_down(&t);
}

static void test_mdev_needs_a_type1_container(void **state)
{
	struct mt_cfg c = t1_cfg(UIOMMU_DMADEV_KIND_MDEV);
	struct uiommu_machine_cfg mc;
	struct uiommu_machine *m = NULL;

	(void)state;
	c.iommu = UIOMMU_MACHINE_IOMMUFD;
	mc = mt_machine_cfg(&c, false);
	assert_int_equal(uiommu_machine_create(&mc, &m), -EINVAL);
	c.kind = UIOMMU_DMADEV_KIND_DMA;
	c.iommu_dirty = true;
	mc = mt_machine_cfg(&c, false);
	assert_int_equal(uiommu_machine_create(&mc, &m), -EINVAL);
	assert_null(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type1_dma_device_with_iommu_dirty_opt_in_converges),
		cmocka_unit_test(test_type1_dma_device_all_dirty_rule_resends_everything_and_forces),
		cmocka_unit_test(test_type1_dma_device_all_dirty_rule_gives_up_without_force),
		cmocka_unit_test(test_type1_mdev_device_pinned_pages_are_resent_every_round),
		cmocka_unit_test(test_type1_mdev_device_migrates_over_several_rounds),
		cmocka_unit_test(test_type1_mdev_device_on_kvm_migrates),
		cmocka_unit_test(test_device_of_another_kind_is_refused_and_a_retry_succeeds),
		cmocka_unit_test(test_mdev_needs_a_type1_container),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
