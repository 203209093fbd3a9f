// SPDX-License-Identifier: MIT
/*
 * The emulated DMA device's set-up through the iommufd front end: what it
 * builds (an IOAS with all guest RAM at IOVA = GPA, a dirty-tracking HWPT,
 * the device attached, the capability checked), that every failure undoes
 * everything (the caller's context is left with no object), including under
 * allocation failure at every step, and the controls that are not the state
 * machine (geometry checks, workload and throttle checks, layout, the
 * device-side log).
 */
#include <math.h>

#include "dmadev_test.h"

#include "core/core_internal.h"
#include "uapi/uapi_internal.h"

static uint32_t ctx_objects(struct uiommu_ctx *ctx)
{
	uint32_t n;

	pthread_mutex_lock(&ctx->lock);
	n = ctx->nr_objs;
	pthread_mutex_unlock(&ctx->lock);
	return n;
}

static void test_dmadev_create_sets_up_ioas_hwpt_and_attach(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	struct uiommu_ctx *ctx = uiommu_dmadev_ctx(dev);
	struct iommu_hw_info info = { .size = sizeof(info), .dev_id = uiommu_dmadev_dev_id(dev) };
	struct uiommu_device *dma = uiommu_hwdev_dma(uiommu_dmadev_hwdev(dev));
	uint64_t *bits = calloc(GUEST_WORDS, 8);
	const uint8_t byte = 0xa5;

	(void)state;
	assert_int_equal(uiommu_iommufd_ioctl(ctx, IOMMU_GET_HW_INFO, &info), 0);
	assert_true(info.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	assert_int_not_equal(uiommu_dmadev_ioas_id(dev), 0);
	assert_int_not_equal(uiommu_dmadev_hwpt_id(dev), 0);
	assert_int_equal(uiommu_dmadev_get_state(dev), VFIO_DEVICE_STATE_RUNNING);
	/* The HWPT was allocated with DIRTY_TRACKING: tracking can be turned on. */
	dirty_tracking(dev, true);
	/* All of guest RAM is mapped at IOVA = GPA, writable, and nothing more. */
	assert_int_equal(uiommu_device_dma_write(dma, 5 * MiB + 7, &byte, 1), 0);
	assert_int_equal(mem[5 * MiB + 7], byte);
	assert_int_equal(uiommu_device_dma_write(dma, GUEST_BYTES - 1, &byte, 1), 0);
	assert_int_equal(mem[GUEST_BYTES - 1], byte);
	assert_int_equal(uiommu_device_dma_write(dma, GUEST_BYTES, &byte, 1), -EFAULT);
	/* The writes went through the dirty-tracking domain: exactly their pages. */
	harvest(dev, bits);
	assert_int_equal(bits_count(bits, GUEST_WORDS), 2);
	assert_true(bit_is_set(bits, 5 * MiB / PG));
	assert_true(bit_is_set(bits, GUEST_PAGES - 1));
	uiommu_dmadev_destroy(dev);
	free(bits);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_destroy_leaves_the_callers_context_empty(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 0);
	struct uiommu_dmadev *dev;

	(void)state;
	assert_int_equal(uiommu_ctx_create(&cfg.ctx), 0);
	dev = dev_new(&cfg);
	assert_ptr_equal(uiommu_dmadev_ctx(dev), cfg.ctx);
	assert_int_equal(ctx_objects(cfg.ctx), 3); /* IOAS, device, HWPT */
	run_until_writes(dev, 10);
	uiommu_dmadev_destroy(dev);
	assert_int_equal(ctx_objects(cfg.ctx), 0);
	uiommu_ctx_destroy(cfg.ctx);
	uiommu_dmadev_destroy(NULL);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_create_rejects_bad_geometry_and_workload(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	const struct uiommu_dmadev_cfg good = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev_cfg bad[16];
	struct uiommu_dmadev *dev = NULL;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < 16; i++)
		bad[i] = good;
	bad[n++].mem = NULL;
	bad[n++].mem = mem + 8;
	bad[n++].mem_bytes = 0;
	bad[n++].mem_bytes = GUEST_BYTES - 1;
	bad[n++].dma_gpa = DMA_GPA + 512;
	bad[n++].dma_bytes = DMA_BYTES + 100;
	bad[n++].dma_bytes = UIOMMU_DMADEV_MIN_DMA_BYTES - PG;
	bad[n].dma_gpa = GUEST_BYTES - DMA_BYTES + PG; /* past the end of RAM */
	n++;
	bad[n].dma_gpa = UINT64_MAX - PG + 1; /* wraps */
	n++;
	bad[n++].ring_bytes = 6000;
	bad[n++].ring_bytes = DMA_BYTES - UIOMMU_DMADEV_BLOCK_MAX + PG;
	bad[n++].workload.pattern = (enum uiommu_dmadev_pattern)4;
	bad[n++].workload.rate_bytes_per_sec = UIOMMU_DMADEV_MAX_RATE + 1;
	for (size_t i = 0; i < n; i++)
		assert_int_equal(uiommu_dmadev_create(&bad[i], &dev), -EINVAL);
	assert_null(dev);
	guest_free(mem, GUEST_BYTES);
}

/* A failing create in the caller's context must leave it as it was. */
static void expect_create_fails_and_undoes(struct uiommu_dmadev_cfg *cfg, int err)
{
	struct uiommu_dmadev *dev = NULL;

	assert_int_equal(uiommu_ctx_create(&cfg->ctx), 0);
	assert_int_equal(uiommu_dmadev_create(cfg, &dev), err);
	assert_null(dev);
	assert_int_equal(ctx_objects(cfg->ctx), 0);
	uiommu_ctx_destroy(cfg->ctx);
	cfg->ctx = NULL;
}

static void test_dmadev_create_refuses_an_iommu_without_dirty_tracking(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 0);
	const struct uiommu_hwdev_cfg hw = { .format = UIOMMU_PT_X86, .pgsize_bitmap = PG };

	(void)state;
	cfg.hw = &hw;
	expect_create_fails_and_undoes(&cfg, -EOPNOTSUPP);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_create_failing_map_undoes_everything(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 0);
	const struct uiommu_iova_range resv = { 1 * MiB, 2 * MiB - 1 };
	const struct uiommu_hwdev_cfg hw = { .format = UIOMMU_PT_X86, .pgsize_bitmap = PG,
					     .reserved = &resv, .nr_reserved = 1,
					     .dirty_tracking = true };

	(void)state;
	/* Guest RAM that is not there: IOAS_MAP with a domain attached faults. */
	assert_int_equal(mprotect(mem + 8 * MiB, PG, PROT_NONE), 0);
	expect_create_fails_and_undoes(&cfg, -EFAULT);
	assert_int_equal(mprotect(mem + 8 * MiB, PG, PROT_READ | PROT_WRITE), 0);
	/* A reserved region of the IOMMU inside guest RAM: the map is refused. */
	cfg.hw = &hw;
	expect_create_fails_and_undoes(&cfg, -EINVAL);
	guest_free(mem, GUEST_BYTES);
}

/* Every allocation of the set-up fails in turn; each failure undoes the rest. */
static void test_dmadev_create_undoes_after_allocation_failure_at_every_step(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 0);
	struct uiommu_dmadev *dev = NULL;
	unsigned long n;
	int ret = -ENOMEM;

	(void)state;
#ifndef UIOMMU_DEBUG_CHECKS
	skip();
#endif
	assert_int_equal(uiommu_ctx_create(&cfg.ctx), 0);
	for (n = 1; ret && n < 10000; n++) {
		uiommu__fail_nth_set(n);
		ret = uiommu_dmadev_create(&cfg, &dev);
		assert_true(!ret || uiommu__fail_nth_hit());
		uiommu__fail_nth_set(0);
		assert_true(ret == 0 || ret == -ENOMEM);
		if (ret)
			assert_int_equal(ctx_objects(cfg.ctx), 0);
	}
	assert_int_equal(ret, 0);
	print_message("%lu allocation failures undone\n", n - 2);
	assert_true(n > 5);
	run_until_writes(dev, 10);
	uiommu_dmadev_destroy(dev);
	assert_int_equal(ctx_objects(cfg.ctx), 0);
	uiommu_ctx_destroy(cfg.ctx);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_layout_splits_the_region_into_ring_and_blocks(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev_layout l;
	struct uiommu_dmadev *dev = dev_new(&cfg);

	(void)state;
	uiommu_dmadev_layout(dev, &l);
	assert_true(l.ring_gpa == DMA_GPA && l.ring_bytes == DMA_BYTES / 4);
	assert_true(l.block_gpa == DMA_GPA + DMA_BYTES / 4);
	assert_true(l.block_bytes == DMA_BYTES - DMA_BYTES / 4);
	uiommu_dmadev_destroy(dev);
	cfg.ring_bytes = 8 * PG;
	dev = dev_new(&cfg);
	uiommu_dmadev_layout(dev, &l);
	assert_true(l.ring_bytes == 8 * PG && l.block_gpa == DMA_GPA + 8 * PG);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

static void test_dmadev_workload_and_throttle_refuse_bad_values(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_IDLE, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	struct uiommu_dmadev_workload wl = { .pattern = (enum uiommu_dmadev_pattern)9 };

	(void)state;
	assert_int_equal(uiommu_dmadev_set_workload(dev, &wl), -EINVAL);
	wl = (struct uiommu_dmadev_workload){ UIOMMU_DMADEV_NET, UIOMMU_DMADEV_MAX_RATE + 1 };
	assert_int_equal(uiommu_dmadev_set_workload(dev, &wl), -EINVAL);
	wl.rate_bytes_per_sec = UIOMMU_DMADEV_MAX_RATE;
	assert_int_equal(uiommu_dmadev_set_workload(dev, &wl), 0);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, -0.1), -EINVAL);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 1.0), -EINVAL);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, NAN), -EINVAL);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 0.9999999), 0);
	assert_int_equal(uiommu_dmadev_set_throttle(dev, 0), 0);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

/* The log holds exactly the pages written, once: taking it clears it. */
static void test_dmadev_take_log_returns_the_pages_written_and_clears(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 0);
	struct uiommu_dmadev *dev;
	uint64_t *bits = calloc(GUEST_WORDS, 8), packets, pages;

	(void)state;
	cfg.ring_bytes = 64 * PG; /* 128 buffers */
	dev = dev_new(&cfg);
	run_until_writes(dev, 50);
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	packets = stats_of(dev).writes;
	pages = packets >= 128 ? 64 : (packets + 1) / 2;
	assert_int_equal(uiommu_dmadev_take_log(dev, bits), pages);
	for (uint64_t k = 0; k < GUEST_PAGES; k++)
		assert_int_equal(bit_is_set(bits, k), k >= DMA_GPA / PG && k < DMA_GPA / PG + pages);
	assert_int_equal(uiommu_dmadev_take_log(dev, bits), 0);
	assert_int_equal(bits_count(bits, GUEST_WORDS), 0);
	uiommu_dmadev_destroy(dev);
	free(bits);
	guest_free(mem, GUEST_BYTES);
}

static long ram_map(struct uiommu_dmadev *dev, uint8_t *mem, bool map)
{
	struct iommu_ioas_map m = {
		.size = sizeof(m),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = uiommu_dmadev_ioas_id(dev),
		.user_va = (uintptr_t)mem,
		.length = GUEST_BYTES,
	};
	struct iommu_ioas_unmap u = {
		.size = sizeof(u), .ioas_id = uiommu_dmadev_ioas_id(dev), .length = GUEST_BYTES
	};

	return map ? uiommu_iommufd_ioctl(uiommu_dmadev_ctx(dev), IOMMU_IOAS_MAP, &m)
		   : uiommu_iommufd_ioctl(uiommu_dmadev_ctx(dev), IOMMU_IOAS_UNMAP, &u);
}

/* With guest RAM unmapped every write faults; it is retried, not skipped. */
static void test_dmadev_faulting_writes_are_counted_and_retried(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_MIXED, 0);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	struct uiommu_dmadev_stats s0, s1;

	(void)state;
	run_until_writes(dev, 100);
	assert_int_equal(ram_map(dev, mem, false), 0);
	sleep_ms(5);
	s0 = stats_of(dev);
	sleep_ms(30);
	s1 = stats_of(dev);
	assert_int_equal(s1.writes, s0.writes);
	/* One try per millisecond: the device does not spin on a fault. */
	assert_true(s1.faults > s0.faults && s1.faults - s0.faults <= 40);
	assert_int_equal(ram_map(dev, mem, true), 0);
	run_until_writes(dev, 100);
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	verify_ok(dev);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmadev_create_sets_up_ioas_hwpt_and_attach),
		cmocka_unit_test(test_dmadev_destroy_leaves_the_callers_context_empty),
		cmocka_unit_test(test_dmadev_create_rejects_bad_geometry_and_workload),
		cmocka_unit_test(test_dmadev_create_refuses_an_iommu_without_dirty_tracking),
		cmocka_unit_test(test_dmadev_create_failing_map_undoes_everything),
		cmocka_unit_test(test_dmadev_create_undoes_after_allocation_failure_at_every_step),
		cmocka_unit_test(test_dmadev_layout_splits_the_region_into_ring_and_blocks),
		cmocka_unit_test(test_dmadev_workload_and_throttle_refuse_bad_values),
		cmocka_unit_test(test_dmadev_take_log_returns_the_pages_written_and_clears),
		cmocka_unit_test(test_dmadev_faulting_writes_are_counted_and_retried),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
