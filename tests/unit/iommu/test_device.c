/* SPDX-License-Identifier: MIT */
/*
 * Tests of emulated devices: the DMA path, permissions and IO page faults,
 * the IOTLB and its invalidation, attach and detach.
 */
#include "iommu_test.h"

#include "core/core_internal.h"

#define RW (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)

struct setup {
	struct uiommu_domain *d;
	struct uiommu_device *dev;
	unsigned char *host;
};

static void setup_init(struct setup *s, unsigned int iotlb, unsigned int faults)
{
	struct uiommu_domain_cfg cfg = { .format = UIOMMU_PT_X86 };
	struct uiommu_device_cfg dcfg = { .iotlb_entries = iotlb, .fault_log = faults };

	assert_int_equal(uiommu_domain_create(&cfg, &s->d), 0);
	assert_int_equal(uiommu_device_create(&dcfg, &s->dev), 0);
	assert_int_equal(uiommu_device_attach(s->dev, s->d), 0);
	s->host = host_alloc(4 * MiB, 2 * MiB);
	memset(s->host, 0xee, 4 * MiB);
}

static void setup_fini(struct setup *s)
{
	uiommu_device_destroy(s->dev);
	uiommu_domain_destroy(s->d);
}

static void fill(unsigned char *buf, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(seed + i * 7);
}

static void test_dma_write_and_read_cross_leaves_with_scattered_host(void **state)
{
	unsigned char out[10000], in[10000];
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	/* IOVA-contiguous pages backed by host pages in another order. */
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host + 3 * 4096, 4096, RW), 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x11000, s.host + 1 * 4096, 4096, RW), 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x12000, s.host + 0 * 4096, 4096, RW), 0);
	fill(out, sizeof(out), 1);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000 + 1000, out, sizeof(out)), 0);
	assert_memory_equal(s.host + 3 * 4096 + 1000, out, 4096 - 1000);
	assert_memory_equal(s.host + 1 * 4096, out + 4096 - 1000, 4096);
	assert_memory_equal(s.host, out + 8192 - 1000, sizeof(out) - (8192 - 1000));
	assert_true(s.host[sizeof(out) - (8192 - 1000)] == 0xee);
	assert_int_equal(uiommu_device_dma_read(s.dev, 0x10000 + 1000, in, sizeof(in)), 0);
	assert_memory_equal(in, out, sizeof(out));
	setup_fini(&s);
}

static void test_fault_on_any_page_writes_nothing_and_is_recorded(void **state)
{
	unsigned char out[8192];
	struct uiommu_iopf f;
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host, 4096, RW), 0);
	fill(out, sizeof(out), 3);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10800, out, sizeof(out)), -EFAULT);
	assert_true(s.host[0x800] == 0xee && s.host[0xfff] == 0xee);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), 0);
	assert_true(f.iova == 0x11000);
	assert_int_equal(f.flags, UIOMMU_IOPF_WRITE);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), -EAGAIN);
	assert_int_equal(uiommu_device_dma_read(s.dev, 0x20000, out, 1), -EFAULT);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), 0);
	assert_true(f.iova == 0x20000 && f.flags == 0);
	setup_fini(&s);
}

static void test_permissions_are_enforced_per_page(void **state)
{
	unsigned char buf[8192] = { 1 };
	struct uiommu_iopf f;
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host, 4096, RW), 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x11000, s.host + 4096, 4096, UIOMMU_PROT_READ),
			 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x12000, s.host + 8192, 4096, UIOMMU_PROT_WRITE),
			 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000, buf, sizeof(buf)), -EPERM);
	assert_true(s.host[0] == 0xee);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), 0);
	assert_true(f.iova == 0x11000 && f.flags == (UIOMMU_IOPF_WRITE | UIOMMU_IOPF_PERM));
	assert_int_equal(uiommu_device_dma_read(s.dev, 0x11000, buf, 4096), 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x12000, buf, 4096), 0);
	assert_int_equal(uiommu_device_dma_read(s.dev, 0x12000, buf, 1), -EPERM);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), 0);
	assert_true(f.iova == 0x12000 && f.flags == UIOMMU_IOPF_PERM);
	setup_fini(&s);
}

static void test_unmap_and_remap_are_seen_despite_the_iotlb(void **state)
{
	unsigned char b = 0x42;
	struct uiommu_device_stats st;
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host, 4096, RW), 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000, &b, 1), 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10001, &b, 1), 0);
	uiommu_device_get_stats(s.dev, &st);
	assert_true(st.iotlb_misses == 1 && st.iotlb_hits == 1 && st.bytes_written == 2);
	assert_int_equal(uiommu_domain_unmap(s.d, 0x10000, 4096, NULL), 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10002, &b, 1), -EFAULT);
	assert_true(s.host[2] == 0xee);
	/* Remapped elsewhere: the write goes to the new host page. */
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host + 8192, 4096, RW), 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10003, &b, 1), 0);
	assert_true(s.host[3] == 0xee && s.host[8192 + 3] == 0x42);
	setup_fini(&s);
}

static void test_dma_sets_accessed_bit(void **state)
{
	struct uiommu_pte_info info;
	unsigned char b;
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x200000, s.host, 2 * MiB, RW), 0);
	assert_int_equal(uiommu_domain_lookup(s.d, 0x200000, &info), 0);
	assert_false(info.accessed);
	assert_int_equal(uiommu_device_dma_read(s.dev, 0x300000, &b, 1), 0);
	assert_int_equal(uiommu_domain_lookup(s.d, 0x200000, &info), 0);
	assert_true(info.accessed && info.leaf_size == 2 * MiB && !info.dirty);
	setup_fini(&s);
}

static void test_attach_detach_rules(void **state)
{
	struct uiommu_domain_cfg cfg = { .format = UIOMMU_PT_X86 };
	struct uiommu_domain *other;
	unsigned char b = 1;
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_domain_create(&cfg, &other), 0);
	assert_int_equal(uiommu_device_attach(s.dev, other), -EBUSY);
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host, 4096, RW), 0);
	assert_int_equal(uiommu_domain_map(other, 0x10000, s.host + 4096, 4096, RW), 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000, &b, 1), 0);
	uiommu_device_detach(s.dev);
	uiommu_device_detach(s.dev);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000, &b, 1), -EFAULT);
	/* Moved to another domain, the cached translation of the first is gone. */
	assert_int_equal(uiommu_device_attach(s.dev, other), 0);
	b = 2;
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000, &b, 1), 0);
	assert_true(s.host[0] == 1 && s.host[4096] == 2);
	/* Destroying a domain detaches its devices. */
	uiommu_domain_destroy(other);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x10000, &b, 1), -EFAULT);
	assert_int_equal(uiommu_device_attach(s.dev, s.d), 0);
	setup_fini(&s);
}

static void test_dma_rejects_wrap_and_accepts_zero_length(void **state)
{
	unsigned char b[2];
	struct setup s;

	(void)state;
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, UINT64_MAX, b, 2), -EOVERFLOW);
	assert_int_equal(uiommu_device_dma_read(s.dev, UINT64_MAX, b, 2), -EOVERFLOW);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x1234, b, 0), 0);
	setup_fini(&s);
}

static void test_fault_log_keeps_oldest_and_counts_all(void **state)
{
	struct uiommu_device_stats st;
	struct uiommu_iopf f;
	unsigned char b;
	struct setup s;

	(void)state;
	setup_init(&s, 0, 2);
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(uiommu_device_dma_read(s.dev, i << 20, &b, 1), -EFAULT);
	uiommu_device_get_stats(s.dev, &st);
	assert_true(st.faults == 3);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), 0);
	assert_true(f.iova == 1 << 20);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), 0);
	assert_true(f.iova == 2 << 20);
	assert_int_equal(uiommu_device_fault_pop(s.dev, &f), -EAGAIN);
	setup_fini(&s);
}

static void test_device_create_rejects_bad_iotlb_size(void **state)
{
	struct uiommu_device_cfg cfg = { .iotlb_entries = 3 };
	struct uiommu_device *dev = NULL;

	(void)state;
	assert_int_equal(uiommu_device_create(&cfg, &dev), -EINVAL);
	assert_null(dev);
	uiommu_device_destroy(NULL);
}

static void test_fragmented_dma_beyond_stack_segments(void **state)
{
	enum { PAGES = 40 };
	static unsigned char out[PAGES * 4096], in[PAGES * 4096];
	struct setup s;

	(void)state;
	setup_init(&s, 1, 0);
	/* Every other host page: no two IOVA-adjacent pages are host-adjacent. */
	for (unsigned int i = 0; i < PAGES; i++)
		assert_int_equal(uiommu_domain_map(s.d, 0x100000 + i * 4096ull,
						   s.host + 2 * i * 4096ull, 4096, RW),
				 0);
	fill(out, sizeof(out), 9);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x100000, out, sizeof(out)), 0);
	for (unsigned int i = 0; i < PAGES; i++)
		assert_memory_equal(s.host + 2 * i * 4096ull, out + i * 4096ull, 4096);
	assert_int_equal(uiommu_device_dma_read(s.dev, 0x100000, in, sizeof(in)), 0);
	assert_memory_equal(in, out, sizeof(out));
	setup_fini(&s);
}

static void test_attach_failing_to_allocate_leaves_device_detached(void **state)
{
	struct uiommu_device *devs[5];
	unsigned int failures = 0;
	unsigned char b = 7;
	struct setup s;
	int rc = -ENOMEM;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	setup_init(&s, 0, 0);
	assert_int_equal(uiommu_domain_map(s.d, 0x10000, s.host, 4096, RW), 0);
	/* One attached already; three more fill the device array, the fifth grows it. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(uiommu_device_create(NULL, &devs[i]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(uiommu_device_attach(devs[i], s.d), 0);
	for (unsigned long n = 1; rc == -ENOMEM; n++) {
		uiommu__fail_nth_set(n);
		rc = uiommu_device_attach(devs[3], s.d);
		uiommu__fail_nth_set(0);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_int_equal(uiommu_device_dma_write(devs[3], 0x10000, &b, 1), -EFAULT);
			failures++;
		}
	}
	assert_int_equal(rc, 0);
	assert_true(failures >= 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(uiommu_device_dma_write(devs[i], 0x10000, &b, 1), 0);
	for (int i = 0; i < 5; i++)
		uiommu_device_destroy(devs[i]);
	setup_fini(&s);
}

static void test_fragmented_dma_failing_to_allocate_writes_nothing(void **state)
{
	enum { PAGES = 40 };
	static unsigned char out[PAGES * 4096];
	struct uiommu_device_stats st;
	struct setup s;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	setup_init(&s, 0, 0);
	for (unsigned int i = 0; i < PAGES; i++)
		assert_int_equal(uiommu_domain_map(s.d, 0x100000 + i * 4096ull,
						   s.host + 2 * i * 4096ull, 4096, RW),
				 0);
	memset(out, 0x11, sizeof(out));
	uiommu__fail_nth_set(1);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x100000, out, sizeof(out)), -ENOMEM);
	uiommu__fail_nth_set(0);
	for (unsigned int i = 0; i < PAGES; i++)
		assert_true(s.host[2 * i * 4096ull] == 0xee);
	uiommu_device_get_stats(s.dev, &st);
	assert_true(st.faults == 0 && st.bytes_written == 0);
	assert_int_equal(uiommu_device_dma_write(s.dev, 0x100000, out, sizeof(out)), 0);
	setup_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dma_write_and_read_cross_leaves_with_scattered_host),
		cmocka_unit_test(test_fault_on_any_page_writes_nothing_and_is_recorded),
		cmocka_unit_test(test_permissions_are_enforced_per_page),
		cmocka_unit_test(test_unmap_and_remap_are_seen_despite_the_iotlb),
		cmocka_unit_test(test_dma_sets_accessed_bit),
		cmocka_unit_test(test_attach_detach_rules),
		cmocka_unit_test(test_dma_rejects_wrap_and_accepts_zero_length),
		cmocka_unit_test(test_fault_log_keeps_oldest_and_counts_all),
		cmocka_unit_test(test_device_create_rejects_bad_iotlb_size),
		cmocka_unit_test(test_fragmented_dma_beyond_stack_segments),
		cmocka_unit_test(test_attach_failing_to_allocate_leaves_device_detached),
		cmocka_unit_test(test_fragmented_dma_failing_to_allocate_writes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
