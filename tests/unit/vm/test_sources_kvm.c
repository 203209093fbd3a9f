/* SPDX-License-Identifier: MIT */
/*
 * The KVM dirty sources against a raw KVM VM (rawvm.h): a guest that writes a
 * chosen list of pages and halts. For kvm-log, kvm-clear-log (several chunk
 * sizes, with and without INITIALLY_SET) and kvm-ring (a small ring, so that
 * ring-full exits happen and go through uiommu_kvm_ring_full()), the pages
 * the guest wrote are exactly the pages each collect reports. Also: the ring
 * skips and counts entries of another slot; a second ring source carries on
 * where the first stopped; a round pairs kvm-ring with the "vmm" log for the
 * writes the VMM makes itself; and the by-name table.
 *
 * Exits 77 (skip) without /dev/kvm. Guest work is kept small: every page
 * costs ~3 us here (nested), ~10 us the first time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/vm.h>
#include <uiommu/vm_sources.h>

#include "rawvm.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#include "seeded.h"

#define MEM (8ull << 20) /* 2048 pages */
#define NP (MEM / RAWVM_PG)
#define WORDS (NP / 64)

static void vm_new(struct rawvm *vm, struct rawvm_cfg cfg)
{
	int rc;

	cfg.bytes = cfg.bytes ? cfg.bytes : MEM;
	cfg.table_entries = cfg.table_entries ? cfg.table_entries : 4096;
	rc = rawvm_create(vm, &cfg);
	if (rc)
		fail_msg("raw KVM VM: %d (%s)", rc, strerror(-rc));
}

/* @n distinct random pages the guest may write, sorted out by a bitmap. */
static uint64_t pick_pages(const struct rawvm *vm, uint64_t n, uint64_t *pages, uint64_t *want)
{
	uint64_t span = NP - vm->first_data_page, got = 0;

	memset(want, 0, WORDS * 8);
	while (got < n && got < span) {
		uint64_t p = vm->first_data_page + rnd_below(span);

		if (!uiommu_bitmap_test_and_set_atomic(want, p))
			pages[got++] = p;
	}
	return got;
}

static void check_exact(const uint64_t *want, const uint64_t *got, uint64_t reported)
{
	uint64_t n = 0;

	for (uint64_t p = 0; p < NP; p++) {
		bool w = uiommu_bitmap_test(want, p), g = uiommu_bitmap_test(got, p);

		if (w != g)
			fail_msg("UIOMMU_SEED=%" PRIu64 " op %zu: page %" PRIu64
				 ": guest wrote %d, reported %d",
				 seed, op_index, p, w, g);
		n += w;
	}
	assert_int_equal(reported, n);
}

/* Guest writes @n random pages; one collect must report exactly them. */
static void write_and_check(struct rawvm *vm, struct uiommu_dirty_source *src, uint64_t n)
{
	uint64_t *pages = calloc(NP, sizeof(uint64_t)), want[WORDS], got[WORDS], reported = 0;

	assert_non_null(pages);
	n = pick_pages(vm, n, pages, want);
	assert_int_equal(rawvm_write_pages(vm, pages, n), 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(uiommu_dirty_source_collect(src, got, &reported), 0);
	check_exact(want, got, reported);
	op_index++;
	free(pages);
}

static const uint64_t sizes[] = { 1, 0, 37, 300, 2, 700 };

static void test_kvm_log_reports_exactly_the_pages_the_guest_wrote(void **state)
{
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	struct rawvm vm;

	(void)state;
	vm_new(&vm, (struct rawvm_cfg){ 0 });
	assert_int_equal(uiommu_kvm_log_source_create(&vm.info, &src), 0);
	assert_string_equal(src->name, "kvm-log");
	assert_true(src->npages == NP);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		write_and_check(&vm, src, sizes[i]);
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	assert_int_equal(st.ioctls, 1 + ARRAY_SIZE(sizes)); /* slot flags, then one GET each */
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

static void test_kvm_log_reports_nothing_written_before_start_or_after_stop(void **state)
{
	struct uiommu_dirty_source *src = NULL;
	uint64_t pages[2], got[WORDS] = { 0 }, n = 0;
	struct rawvm vm;

	(void)state;
	vm_new(&vm, (struct rawvm_cfg){ 0 });
	pages[0] = vm.first_data_page;
	pages[1] = vm.first_data_page + 1;
	assert_int_equal(uiommu_kvm_log_source_create(&vm.info, &src), 0);
	assert_int_equal(rawvm_write_pages(&vm, &pages[0], 1), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	assert_int_equal(uiommu_dirty_source_collect(src, got, &n), 0);
	assert_int_equal(n, 0);
	uiommu_dirty_source_stop(src);
	assert_int_equal(rawvm_write_pages(&vm, &pages[1], 1), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	assert_int_equal(uiommu_dirty_source_collect(src, got, &n), 0);
	assert_int_equal(n, 0);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

static void test_kvm_sources_refuse_the_wrong_vm_mode_and_bad_info(void **state)
{
	struct uiommu_vm_kvm_info info = { .vm_fd = 3, .bytes = MEM, .host = &info, .nr_vcpus = 1 };
	struct uiommu_kvm_ring_link link = { 0 };
	struct uiommu_dirty_source *src = NULL;

	(void)state;
	assert_int_equal(uiommu_kvm_clear_log_source_create(&info, 64, &src), -EOPNOTSUPP);
	assert_int_equal(uiommu_kvm_ring_source_create(&info, &link, &src), -EOPNOTSUPP);
	info.manual_protect = true;
	assert_int_equal(uiommu_kvm_log_source_create(&info, &src), -EOPNOTSUPP);
	assert_int_equal(uiommu_kvm_clear_log_source_create(&info, 100, &src), -EINVAL);
	info.ring_entries = 512;
	assert_int_equal(uiommu_kvm_log_source_create(&info, &src), -EOPNOTSUPP);
	assert_int_equal(uiommu_kvm_clear_log_source_create(&info, 64, &src), -EOPNOTSUPP);
	assert_int_equal(uiommu_kvm_ring_source_create(&info, &link, &src), -EINVAL); /* no ring */
	assert_int_equal(uiommu_kvm_ring_source_create(&info, NULL, &src), -EINVAL);
	info.gpa = 100;
	assert_int_equal(uiommu_kvm_log_source_create(&info, &src), -EINVAL);
	assert_int_equal(uiommu_kvm_log_source_create(NULL, &src), -EINVAL);
	assert_null(src);
	assert_int_equal(uiommu_kvm_source_get_stats(NULL, NULL), -EINVAL);
}

static void clear_log_at_chunk(uint64_t chunk, bool initially_set)
{
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	struct rawvm vm;

	vm_new(&vm, (struct rawvm_cfg){ .manual_protect = true, .initially_set = initially_set });
	assert_int_equal(uiommu_kvm_clear_log_source_create(&vm.info, chunk, &src), 0);
	assert_string_equal(src->name, "kvm-clear-log");
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	if (initially_set) {
		uint64_t all[WORDS], want[WORDS], n = 0;

		/* The first collect reports every page of the slot, then clears them. */
		memset(all, 0, sizeof(all));
		memset(want, 0xff, sizeof(want));
		assert_int_equal(uiommu_dirty_source_collect(src, all, &n), 0);
		check_exact(want, all, n);
	}
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		write_and_check(&vm, src, sizes[i]);
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	assert_true(st.clears > 0);
	print_message("chunk %" PRIu64 "%s: %" PRIu64 " clears\n", chunk,
		      initially_set ? " (initially set)" : "", st.clears);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

static void test_kvm_clear_log_reports_exactly_the_pages_at_every_chunk_size(void **state)
{
	(void)state;
	clear_log_at_chunk(64, false);
	clear_log_at_chunk(192, false);
	clear_log_at_chunk(1024, false);
	clear_log_at_chunk(0, false); /* the default: the whole slot at once */
}

static void test_kvm_clear_log_initially_set_first_collect_reports_every_page(void **state)
{
	(void)state;
	clear_log_at_chunk(256, true);
}

static void test_kvm_clear_log_clears_only_chunks_with_dirty_pages(void **state)
{
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	uint64_t pages[3], got[WORDS] = { 0 }, n = 0;
	struct rawvm vm;

	(void)state;
	vm_new(&vm, (struct rawvm_cfg){ .manual_protect = true });
	assert_int_equal(uiommu_kvm_clear_log_source_create(&vm.info, 64, &src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	pages[0] = 130;
	pages[1] = 131;
	pages[2] = NP - 1; /* chunks 2 and 31 */
	assert_int_equal(rawvm_write_pages(&vm, pages, 3), 0);
	assert_int_equal(uiommu_dirty_source_collect(src, got, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	assert_int_equal(st.clears, 2);
	/* Cleared and write-protected again: the same pages are seen again. */
	assert_int_equal(rawvm_write_pages(&vm, pages, 1), 0);
	memset(got, 0, sizeof(got));
	n = 0;
	assert_int_equal(uiommu_dirty_source_collect(src, got, &n), 0);
	assert_int_equal(n, 1);
	assert_true(uiommu_bitmap_test(got, 130));
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

static void ring_vm(struct rawvm *vm, uint64_t extra)
{
	vm_new(vm, (struct rawvm_cfg){ .ring_entries = 256, .extra_slot_bytes = extra });
}

static void test_kvm_ring_reports_exactly_the_pages_through_ring_full_exits(void **state)
{
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	struct rawvm vm;

	(void)state;
	ring_vm(&vm, 0);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &src), 0);
	assert_string_equal(src->name, "kvm-ring");
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
		write_and_check(&vm, src, sizes[i]);
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	print_message("%" PRIu64 " entries, %" PRIu64 " ring-full exits, %" PRIu64 " resets\n",
		      st.entries, st.ring_full, st.resets);
	assert_true(vm.ring_full_exits > 0);
	assert_int_equal(st.ring_full, vm.ring_full_exits);
	assert_int_equal(st.bad_entries, 0);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

/*
 * A guest that writes mapped pages without exits: on this host KVM overflows
 * the ring; the source must then report every page (or, on a host whose KVM
 * stops the vCPU in time, exactly the pages), and be exact again afterwards.
 */
static void test_kvm_ring_overflow_reports_every_page_and_recovers(void **state)
{
	uint64_t *pages = calloc(NP, sizeof(uint64_t)), want[WORDS], got[WORDS], n = 0;
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	struct rawvm vm;

	(void)state;
	ring_vm(&vm, 0);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	write_and_check(&vm, src, 600); /* maps the pages in */
	n = pick_pages(&vm, 400, pages, want);
	assert_int_equal(rawvm_write_pages(&vm, pages, n), 0); /* fault in, with exits */
	memset(got, 0, sizeof(got));
	assert_int_equal(uiommu_dirty_source_collect(src, got, NULL), 0);
	vm.exit_every = UINT32_MAX;
	assert_int_equal(rawvm_write_pages(&vm, pages, n), 0);
	memset(got, 0, sizeof(got));
	n = 0;
	assert_int_equal(uiommu_dirty_source_collect(src, got, &n), 0);
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	print_message("%" PRIu64 " overflows, %" PRIu64 " pages reported\n", st.overflows, n);
	if (st.overflows) {
		memset(want, 0xff, sizeof(want));
		memset(want, 0, vm.first_data_page / 8); /* whole words: the guest wrote none */
		for (uint64_t p = 0; p < NP; p++)
			if (uiommu_bitmap_test(want, p))
				assert_true(uiommu_bitmap_test(got, p));
		assert_int_equal(n, NP);
	} else {
		check_exact(want, got, n);
	}
	vm.exit_every = 32;
	write_and_check(&vm, src, 100);
	write_and_check(&vm, src, 500);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
	free(pages);
}

/*
 * Every written page is reported: @got holds each of @pages. Returns how
 * many pages @got holds beyond them.
 */
static uint64_t check_superset(const uint64_t *pages, uint64_t n, const uint64_t *got)
{
	uint64_t want[WORDS] = { 0 }, extra = 0;

	for (uint64_t i = 0; i < n; i++) {
		uiommu_bitmap_set(want, pages[i]);
		if (!uiommu_bitmap_test(got, pages[i]))
			fail_msg("UIOMMU_SEED=%" PRIu64 ": page %" PRIu64 " written, not reported",
				 seed, pages[i]);
	}
	for (uint64_t p = 0; p < NP; p++)
		extra += uiommu_bitmap_test(got, p) && !uiommu_bitmap_test(want, p);
	return extra;
}

/*
 * The collector falls behind by several laps: a guest that never exits
 * writes 1200 pages into a 256-entry ring (the smallest KVM takes) before
 * anyone looks. On this host KVM pushes them all, so most entries are
 * overwritten unread and KVM's own count of outstanding entries stays above
 * the soft limit after the first reset. The source must report every page,
 * count the overflow, and leave a ring KVM can run with again: the next runs
 * end (no vCPU bounced forever between ring-full exits) and are exact.
 */
static void test_kvm_ring_overrun_of_several_laps_reports_every_page_and_unwedges(void **state)
{
	uint64_t *pages = calloc(NP, sizeof(uint64_t)), want[WORDS], got[WORDS], n, reported = 0;
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	struct rawvm vm;

	(void)state;
	ring_vm(&vm, 0);
	vm.ring_full_limit = 64;
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	write_and_check(&vm, src, 1600); /* maps the pages in, with exits */
	n = pick_pages(&vm, 1200, pages, want);
	vm.exit_every = UINT32_MAX;
	assert_int_equal(rawvm_write_pages(&vm, pages, n), 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(uiommu_dirty_source_collect(src, got, &reported), 0);
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	print_message("%" PRIu64 " overflows, %" PRIu64 " pages reported\n", st.overflows,
		      reported);
	if (check_superset(pages, n, got))
		assert_true(st.overflows > 0); /* extra pages only after a counted overflow */
	vm.exit_every = 32;
	for (int i = 0; i < 4; i++)
		write_and_check(&vm, src, 150 + 100 * (uint64_t)i);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
	free(pages);
}

static void test_kvm_ring_counts_entries_of_another_slot_and_skips_them(void **state)
{
	struct uiommu_dirty_source *src = NULL;
	struct uiommu_kvm_source_stats st;
	uint64_t gpas[3], got[WORDS] = { 0 }, n = 0;
	struct rawvm vm;

	(void)state;
	ring_vm(&vm, 1ull << 20);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	gpas[0] = MEM + 5 * RAWVM_PG; /* slot 1: not ours */
	gpas[1] = (vm.first_data_page + 1) * RAWVM_PG;
	gpas[2] = MEM + 7 * RAWVM_PG;
	assert_int_equal(rawvm_write_gpas(&vm, gpas, 3), 0);
	assert_int_equal(uiommu_dirty_source_collect(src, got, &n), 0);
	assert_int_equal(n, 1);
	assert_true(uiommu_bitmap_test(got, vm.first_data_page + 1));
	assert_int_equal(uiommu_kvm_source_get_stats(src, &st), 0);
	assert_int_equal(st.bad_entries, 2);
	assert_int_equal(st.entries, 3);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

static void test_kvm_ring_second_source_carries_on_where_the_first_stopped(void **state)
{
	struct uiommu_dirty_source *src = NULL, *again = NULL;
	struct rawvm vm;

	(void)state;
	ring_vm(&vm, 0);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &src), 0);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &again), -EBUSY);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	write_and_check(&vm, src, 100);
	uiommu_dirty_source_destroy(src);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &src), 0);
	assert_int_equal(uiommu_dirty_source_start(src), 0);
	write_and_check(&vm, src, 100);
	write_and_check(&vm, src, 300);
	uiommu_dirty_source_destroy(src);
	rawvm_destroy(&vm);
}

static void test_round_of_kvm_ring_and_vmm_log_sees_guest_and_vmm_writes(void **state)
{
	struct uiommu_dirty_source *ring = NULL, *vmm = NULL;
	struct uiommu_round *round = NULL;
	struct uiommu_round_stats st;
	uint64_t pages[2], got[WORDS];
	struct rawvm vm;

	(void)state;
	ring_vm(&vm, 0);
	assert_int_equal(uiommu_kvm_ring_source_create(&vm.info, &vm.link, &ring), 0);
	assert_int_equal(uiommu_dirty_log_source_create("vmm", NP, &vmm), 0);
	assert_int_equal(uiommu_round_create(NP, &round), 0);
	assert_int_equal(uiommu_round_add_source(round, ring), 0);
	assert_int_equal(uiommu_round_add_source(round, vmm), 0);
	assert_int_equal(uiommu_dirty_source_start(ring), 0);
	assert_int_equal(uiommu_dirty_source_start(vmm), 0);
	pages[0] = vm.first_data_page;
	pages[1] = vm.first_data_page + 70;
	assert_int_equal(rawvm_write_pages(&vm, pages, 2), 0);
	/* The VMM writes page first + 70 and two others through its own mapping. */
	memset(vm.mem + (vm.first_data_page + 70) * RAWVM_PG, 1, 3 * RAWVM_PG);
	uiommu_dirty_log_mark(vmm, (vm.first_data_page + 70) * RAWVM_PG, 3 * RAWVM_PG);
	assert_int_equal(uiommu_round_collect(round), 0);
	uiommu_round_get_stats(round, &st);
	assert_int_equal(st.reported[0], 2); /* KVM never saw the VMM's writes */
	assert_int_equal(st.reported[1], 3);
	assert_int_equal(st.pending, 4);
	assert_int_equal(uiommu_round_take(round, got), 4);
	assert_true(uiommu_bitmap_test(got, vm.first_data_page + 72));
	uiommu_round_destroy(round);
	uiommu_dirty_source_destroy(vmm);
	uiommu_dirty_source_destroy(ring);
	rawvm_destroy(&vm);
}

static void test_sources_by_name_follow_the_vm_mode(void **state)
{
	const char *const *names = uiommu_vm_source_names();
	struct uiommu_vm_source_cfg cfg = { .npages = NP };
	struct uiommu_dirty_source *src = NULL;
	struct rawvm vm;
	size_t n = 0;

	(void)state;
	while (names[n])
		n++;
	assert_int_equal(n, 6);
	vm_new(&vm, (struct rawvm_cfg){ .manual_protect = true });
	cfg.kvm = &vm.info;
	assert_false(uiommu_vm_source_supported("kvm-log", &cfg));
	assert_true(uiommu_vm_source_supported("kvm-clear-log", &cfg));
	assert_false(uiommu_vm_source_supported("kvm-ring", &cfg));
	assert_false(uiommu_vm_source_supported("iommu", &cfg)); /* no context */
	assert_true(uiommu_vm_source_supported("vmm", &cfg));
	assert_false(uiommu_vm_source_supported("bogus", &cfg));
	assert_int_equal(uiommu_vm_source_create("bogus", &cfg, &src), -ENOENT);
	assert_int_equal(uiommu_vm_source_create("kvm-log", &cfg, &src), -EOPNOTSUPP);
	for (size_t i = 0; i < n; i++) {
		if (!uiommu_vm_source_supported(names[i], &cfg))
			continue;
		assert_int_equal(uiommu_vm_source_create(names[i], &cfg, &src), 0);
		assert_string_equal(src->name, names[i]);
		assert_int_equal(uiommu_dirty_source_start(src), 0);
		write_and_check(&vm, src, i == 1 ? 20 : 0); /* the log sources see no guest */
		uiommu_dirty_source_destroy(src);
	}
	rawvm_destroy(&vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvm_log_reports_exactly_the_pages_the_guest_wrote),
		cmocka_unit_test(test_kvm_log_reports_nothing_written_before_start_or_after_stop),
		cmocka_unit_test(test_kvm_sources_refuse_the_wrong_vm_mode_and_bad_info),
		cmocka_unit_test(test_kvm_clear_log_reports_exactly_the_pages_at_every_chunk_size),
		cmocka_unit_test(test_kvm_clear_log_initially_set_first_collect_reports_every_page),
		cmocka_unit_test(test_kvm_clear_log_clears_only_chunks_with_dirty_pages),
		cmocka_unit_test(test_kvm_ring_reports_exactly_the_pages_through_ring_full_exits),
		cmocka_unit_test(test_kvm_ring_overflow_reports_every_page_and_recovers),
		cmocka_unit_test(test_kvm_ring_overrun_of_several_laps_reports_every_page_and_unwedges),
		cmocka_unit_test(test_kvm_ring_counts_entries_of_another_slot_and_skips_them),
		cmocka_unit_test(test_kvm_ring_second_source_carries_on_where_the_first_stopped),
		cmocka_unit_test(test_round_of_kvm_ring_and_vmm_log_sees_guest_and_vmm_writes),
		cmocka_unit_test(test_sources_by_name_follow_the_vm_mode),
	};

	if (!uiommu_kvm_available()) {
		printf("no usable /dev/kvm: skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
