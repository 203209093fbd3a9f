/* SPDX-License-Identifier: MIT */
/*
 * iommufd conformance, uapi-spec §3.1 (framing, dispatch, generic errors) and
 * §3.2 (IOMMU_DESTROY, object ids).
 *
 * The size rules are checked for every command of the §3.1 table that uiommu
 * implements (0x80-0x8d and MAP_FILE 0x8f; FAULT_QUEUE_ALLOC 0x8e, which
 * makes fds, has its own in test_iommufd_fault.c): below min_size -> EINVAL; longer
 * than the kernel struct with a non-zero byte past it -> E2BIG, with zeros ->
 * the same result as the exact size; write-back limited to min(size, struct).
 */
#include "uapi_test.h"

struct cmd_desc {
	const char *name;
	unsigned long cmd;
	uint32_t ksize; /* the kernel's struct size */
	uint32_t min;   /* min_size of the §3.1 table */
};

static const struct cmd_desc cmds[] = {
	{ "DESTROY", IOMMU_DESTROY, 8, 8 },
	{ "IOAS_ALLOC", IOMMU_IOAS_ALLOC, 12, 12 },
	{ "IOAS_ALLOW_IOVAS", IOMMU_IOAS_ALLOW_IOVAS, 24, 24 },
	{ "IOAS_COPY", IOMMU_IOAS_COPY, 40, 40 },
	{ "IOAS_IOVA_RANGES", IOMMU_IOAS_IOVA_RANGES, 32, 32 },
	{ "IOAS_MAP", IOMMU_IOAS_MAP, 40, 40 },
	{ "IOAS_UNMAP", IOMMU_IOAS_UNMAP, 24, 24 },
	{ "OPTION", IOMMU_OPTION, 24, 24 },
	{ "VFIO_IOAS", IOMMU_VFIO_IOAS, 12, 12 },
	{ "HWPT_ALLOC", IOMMU_HWPT_ALLOC, 48, 24 },
	{ "GET_HW_INFO", IOMMU_GET_HW_INFO, 40, 32 },
	{ "HWPT_SET_DIRTY_TRACKING", IOMMU_HWPT_SET_DIRTY_TRACKING, 16, 16 },
	{ "HWPT_GET_DIRTY_BITMAP", IOMMU_HWPT_GET_DIRTY_BITMAP, 48, 48 },
	{ "HWPT_INVALIDATE", IOMMU_HWPT_INVALIDATE, 32, 32 },
	{ "IOAS_MAP_FILE", IOMMU_IOAS_MAP_FILE, 40, 40 },
};

/* A zeroed argument of @len bytes with size = @size, 8-byte aligned. */
static uint64_t argbuf[4096 / 8 + 8];

static void *arg_init(uint32_t size)
{
	memset(argbuf, 0, sizeof(argbuf));
	memcpy(argbuf, &size, sizeof(size));
	return argbuf;
}

static void test_command_numbers_are_0x3b00_or_nr_without_size_or_direction(void **state)
{
	(void)state;
	assert_int_equal(IOMMU_DESTROY, 0x3b80);
	assert_int_equal(IOMMU_IOAS_ALLOC, 0x3b81);
	assert_int_equal(IOMMU_IOAS_ALLOW_IOVAS, 0x3b82);
	assert_int_equal(IOMMU_IOAS_COPY, 0x3b83);
	assert_int_equal(IOMMU_IOAS_IOVA_RANGES, 0x3b84);
	assert_int_equal(IOMMU_IOAS_MAP, 0x3b85);
	assert_int_equal(IOMMU_IOAS_UNMAP, 0x3b86);
	assert_int_equal(IOMMU_OPTION, 0x3b87);
	assert_int_equal(IOMMU_VFIO_IOAS, 0x3b88);
	assert_int_equal(IOMMU_HWPT_ALLOC, 0x3b89);
	assert_int_equal(IOMMU_GET_HW_INFO, 0x3b8a);
	assert_int_equal(IOMMU_HWPT_SET_DIRTY_TRACKING, 0x3b8b);
	assert_int_equal(IOMMU_HWPT_GET_DIRTY_BITMAP, 0x3b8c);
	assert_int_equal(IOMMU_HWPT_INVALIDATE, 0x3b8d);
	assert_int_equal(IOMMU_FAULT_QUEUE_ALLOC, 0x3b8e);
	assert_int_equal(IOMMU_IOAS_MAP_FILE, 0x3b8f);
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		assert_int_equal(_IOC_SIZE(cmds[i].cmd), 0);
}

static void test_size_below_min_is_einval_for_every_command(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		uint32_t sizes[] = { 0, 4, cmds[i].min - 1 };

		for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
			long rc = io(ctx, cmds[i].cmd, arg_init(sizes[j]));

			if (rc != -EINVAL)
				fail_msg("%s size %u: %ld, expected -EINVAL", cmds[i].name,
					 sizes[j], rc);
		}
	}
	uiommu_ctx_destroy(ctx);
}

static void test_size_above_struct_with_nonzero_tail_is_e2big_for_every_command(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		uint32_t k = cmds[i].ksize;
		/* Non-zero byte: first extra, last extra of a long tail. */
		uint32_t sizes[] = { k + 1, k + 8, 4096 };
		uint32_t where[] = { k, k + 7, 4095 };

		for (size_t j = 0; j < ARRAY_SIZE(sizes); j++) {
			uint8_t *a = arg_init(sizes[j]);
			long rc;

			a[where[j]] = 0x01;
			rc = io(ctx, cmds[i].cmd, a);
			if (rc != -E2BIG)
				fail_msg("%s size %u tail byte %u: %ld, expected -E2BIG",
					 cmds[i].name, sizes[j], where[j], rc);
		}
	}
	uiommu_ctx_destroy(ctx);
}

static void test_size_above_struct_with_zero_tail_is_accepted_for_every_command(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();

	(void)state;
	/* A zeroed struct gives the same answer at its exact size and padded. */
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		long exact = io(ctx, cmds[i].cmd, arg_init(cmds[i].ksize));
		long padded = io(ctx, cmds[i].cmd, arg_init(cmds[i].ksize + 64));

		if (exact != padded || padded == -E2BIG)
			fail_msg("%s: exact size %ld, padded with zeros %ld", cmds[i].name, exact,
				 padded);
	}
	uiommu_ctx_destroy(ctx);
}

static void test_zero_tail_ioas_alloc_and_destroy_succeed(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	uint8_t *a;
	uint32_t id;

	(void)state;
	a = arg_init(4096);
	assert_int_equal(io(ctx, IOMMU_IOAS_ALLOC, a), 0);
	memcpy(&id, a + 8, 4);
	assert_int_equal(id, 1);
	/* Nothing past the kernel struct is written back. */
	for (int i = 12; i < 4096; i++)
		assert_int_equal(a[i], 0);
	a = arg_init(64);
	memcpy(a + 4, &id, 4);
	assert_int_equal(io(ctx, IOMMU_DESTROY, a), 0);
	assert_int_equal(destroy(ctx, id), -ENOENT);
	uiommu_ctx_destroy(ctx);
}

static void test_min_size_below_struct_size_is_accepted(void **state)
{
	struct env e;
	uint8_t *a;
	uint32_t hwpt;

	(void)state;
	env_init(&e, 0, 2 * MiB);
	/* HWPT_ALLOC: min 24, the data fields are zero-filled. */
	a = arg_init(24);
	memcpy(a + 8, &e.ddev_id, 4);
	memcpy(a + 12, &e.ioas, 4);
	assert_int_equal(io(e.ctx, IOMMU_HWPT_ALLOC, a), 0);
	memcpy(&hwpt, a + 16, 4);
	assert_int_not_equal(hwpt, 0);
	/* GET_HW_INFO: min 32, out_capabilities optional. */
	a = arg_init(32);
	memcpy(a + 8, &e.ddev_id, 4);
	assert_int_equal(io(e.ctx, IOMMU_GET_HW_INFO, a), 0);
	env_fini(&e);
}

static void test_response_is_truncated_to_size(void **state)
{
	struct env e;
	struct iommu_hw_info *hi;
	struct iommu_hwpt_alloc *ha;
	uint8_t buf[64] __attribute__((aligned(8)));

	(void)state;
	env_init(&e, 0, 2 * MiB);
	/* GET_HW_INFO of size 32: out_capabilities (off 32) must stay untouched. */
	memset(buf, 0xa5, sizeof(buf));
	memset(buf, 0, 32);
	hi = (void *)buf;
	hi->size = 32;
	hi->dev_id = e.ddev_id;
	assert_int_equal(io(e.ctx, IOMMU_GET_HW_INFO, hi), 0);
	for (int i = 32; i < 64; i++)
		assert_int_equal(buf[i], 0xa5);
	/* Full size: the capability is written. */
	memset(buf, 0, sizeof(buf));
	hi->size = 40;
	hi->dev_id = e.ddev_id;
	assert_int_equal(io(e.ctx, IOMMU_GET_HW_INFO, hi), 0);
	assert_true(hi->out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	/* HWPT_ALLOC of size 40 (before fault_id): bytes 40.. untouched. */
	memset(buf, 0xa5, sizeof(buf));
	memset(buf, 0, 40);
	ha = (void *)buf;
	ha->size = 40;
	ha->dev_id = e.ddev_id;
	ha->pt_id = e.ioas;
	assert_int_equal(io(e.ctx, IOMMU_HWPT_ALLOC, ha), 0);
	assert_int_not_equal(ha->out_hwpt_id, 0);
	for (int i = 40; i < 64; i++)
		assert_int_equal(buf[i], 0xa5);
	env_fini(&e);
}

/* Each out-command written into the last bytes before a PROT_NONE page. */
static void test_response_never_written_beyond_size(void **state)
{
	struct env e;
	struct iommu_ioas_alloc *al = before_hole(sizeof(*al));
	struct iommu_ioas_map *mp = before_hole(sizeof(*mp));
	struct iommu_ioas_iova_ranges *rg = before_hole(sizeof(*rg));
	struct iommu_ioas_unmap *um = before_hole(sizeof(*um));
	struct iommu_option *op = before_hole(sizeof(*op));
	struct iommu_hw_info *hi = before_hole(32);
	struct iommu_hwpt_alloc *ha = before_hole(24);

	(void)state;
	env_init(&e, 0, 2 * MiB);
	al->size = sizeof(*al);
	assert_int_equal(io(e.ctx, IOMMU_IOAS_ALLOC, al), 0);
	assert_int_not_equal(al->out_ioas_id, 0);
	*mp = (struct iommu_ioas_map){ .size = sizeof(*mp), .flags = MAP_RW, .ioas_id = e.ioas,
				       .user_va = (uintptr_t)e.host, .length = 4096 };
	assert_int_equal(io(e.ctx, IOMMU_IOAS_MAP, mp), 0);
	assert_true(mp->iova != 0);
	*rg = (struct iommu_ioas_iova_ranges){ .size = sizeof(*rg), .ioas_id = e.ioas };
	assert_int_equal(io(e.ctx, IOMMU_IOAS_IOVA_RANGES, rg), -EMSGSIZE);
	assert_int_equal(rg->num_iovas, 1);
	*um = (struct iommu_ioas_unmap){ .size = sizeof(*um), .ioas_id = e.ioas, .iova = mp->iova,
					 .length = 4096 };
	assert_int_equal(io(e.ctx, IOMMU_IOAS_UNMAP, um), 0);
	assert_true(um->length == 4096);
	*op = (struct iommu_option){ .size = sizeof(*op), .option_id = IOMMU_OPTION_HUGE_PAGES,
				     .op = IOMMU_OPTION_OP_GET, .object_id = e.ioas };
	assert_int_equal(io(e.ctx, IOMMU_OPTION, op), 0);
	assert_true(op->val64 == 1);
	hi->size = 32;
	hi->dev_id = e.ddev_id;
	assert_int_equal(io(e.ctx, IOMMU_GET_HW_INFO, hi), 0);
	ha->size = 24;
	ha->dev_id = e.ddev_id;
	ha->pt_id = e.ioas;
	assert_int_equal(io(e.ctx, IOMMU_HWPT_ALLOC, ha), 0);
	assert_int_not_equal(ha->out_hwpt_id, 0);
	env_fini(&e);
}

static void test_response_write_fault_is_efault_and_new_object_destroyed(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	uint64_t pg = page_size();
	struct iommu_ioas_alloc *ro;

	(void)state;
	ro = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	ro->size = sizeof(*ro);
	assert_int_equal(mprotect(ro, pg, PROT_READ), 0);
	assert_int_equal(io(ctx, IOMMU_IOAS_ALLOC, ro), -EFAULT);
	/* Ids start at 1: the object the failed call made was id 1, and is gone. */
	assert_int_equal(destroy(ctx, 1), -ENOENT);
	munmap(ro, pg);
	uiommu_ctx_destroy(ctx);
}

/* Quirk 5 (doc/iommufd-quirks.md): a MAP whose copy-back faults keeps the
 * mapping and returns EFAULT, as the kernel does. */
static void test_map_writeback_fault_keeps_the_mapping(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	uint64_t pg = page_size(), len = 0;
	uint32_t ioas = ioas_alloc(ctx);
	void *buf = host_alloc(pg, pg);
	struct iommu_ioas_map *ro;

	(void)state;
	ro = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	*ro = (struct iommu_ioas_map){ .size = sizeof(*ro), .flags = MAP_FIXED_RW, .ioas_id = ioas,
				       .user_va = (uintptr_t)buf, .length = pg, .iova = 0x100000 };
	assert_int_equal(mprotect(ro, pg, PROT_READ), 0);
	assert_int_equal(io(ctx, IOMMU_IOAS_MAP, ro), -EFAULT);
	assert_int_equal(unmap(ctx, ioas, 0x100000, pg, &len), 0);
	assert_true(len == pg);
	munmap(ro, pg);
	uiommu_ctx_destroy(ctx);
}

/*
 * Unknown numbers. 0x90-0x9f may sit inside the command table (a build with
 * the selftest command 0xa0 has holes there, as the kernel's has): ENOTTY
 * after the size is read. Outside the table (below 0x80, not a VFIO command;
 * above 0xa0) the call goes to the VFIO compat layer, which does not read
 * the argument: ENOTTY even with a NULL argument.
 */
static void test_unknown_command_nr_is_enotty(void **state)
{
	static const unsigned int inside[] = { 0x90, 0x95, 0x9f };
	static const unsigned int outside[] = { 0x00, 0x01, 0x3f, 0x63, 0x7f, 0xa1, 0xc0, 0xff };
	struct uiommu_ctx *ctx = ctx_new();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(inside); i++) {
		long rc = io(ctx, CMD(inside[i]), arg_init(48));

		if (rc != -ENOTTY)
			fail_msg("nr 0x%x: %ld, expected -ENOTTY", inside[i], rc);
	}
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		long rc = io(ctx, CMD(outside[i]), arg_init(48));

		if (rc != -ENOTTY)
			fail_msg("nr 0x%x: %ld, expected -ENOTTY", outside[i], rc);
		rc = io(ctx, CMD(outside[i]), NULL);
		if (rc != -ENOTTY)
			fail_msg("nr 0x%x, NULL arg: %ld, expected -ENOTTY", outside[i], rc);
	}
	uiommu_ctx_destroy(ctx);
}

static void test_command_number_must_match_exactly(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };

	(void)state;
	/* Right nr, but with a size/direction or another type: ENOTTY. */
	assert_int_equal(io(ctx, _IOWR(IOMMUFD_TYPE, 0x81, struct iommu_ioas_alloc), &cmd),
			 -ENOTTY);
	assert_int_equal(io(ctx, _IOR(IOMMUFD_TYPE, 0x81, struct iommu_ioas_alloc), &cmd),
			 -ENOTTY);
	assert_int_equal(io(ctx, _IO('X', 0x81), &cmd), -ENOTTY);
	assert_int_equal(cmd.out_ioas_id, 0);
	/* The size is read (step 2) before the number is compared (step 3). */
	assert_int_equal(io(ctx, _IOWR(IOMMUFD_TYPE, 0x81, struct iommu_ioas_alloc), NULL),
			 -EFAULT);
	/* Nothing was created: the first real IOAS is id 1. */
	assert_int_equal(ioas_alloc(ctx), 1);
	uiommu_ctx_destroy(ctx);
}

static void test_null_arg_is_efault_for_every_command(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		long rc = io(ctx, cmds[i].cmd, NULL);

		if (rc != -EFAULT)
			fail_msg("%s NULL: %ld, expected -EFAULT", cmds[i].name, rc);
		rc = io(ctx, cmds[i].cmd, bad_ptr());
		if (rc != -EFAULT)
			fail_msg("%s PROT_NONE: %ld, expected -EFAULT", cmds[i].name, rc);
	}
	uiommu_ctx_destroy(ctx);
}

static void test_struct_reaching_unmapped_memory_is_efault(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		/* size readable, the rest of the struct is not. */
		uint32_t *a = before_hole(4);
		long rc;

		a[0] = cmds[i].ksize;
		rc = io(ctx, cmds[i].cmd, a);
		if (rc != -EFAULT)
			fail_msg("%s short buffer: %ld, expected -EFAULT", cmds[i].name, rc);
		/* A zero tail that runs into the hole. */
		a = before_hole(cmds[i].ksize + 8);
		a[0] = cmds[i].ksize + 64;
		rc = io(ctx, cmds[i].cmd, a);
		if (rc != -EFAULT)
			fail_msg("%s tail in hole: %ld, expected -EFAULT", cmds[i].name, rc);
	}
	uiommu_ctx_destroy(ctx);
}

static void test_lookup_of_wrong_object_type_is_enoent(void **state)
{
	struct env e;
	struct iommu_iova_range r[2];
	uint32_t hwpt, n;
	uint64_t iova = 0, align, v = 0;

	(void)state;
	env_init(&e, 0, 2 * MiB);
	assert_int_equal(hwpt_alloc(e.ctx, e.ddev_id, e.ioas, 0, &hwpt), 0);
	/* HWPT or device where an IOAS is wanted. */
	assert_int_equal(map_va(e.ctx, hwpt, MAP_RW, e.host, 4096, &iova), -ENOENT);
	assert_int_equal(map_va(e.ctx, e.ddev_id, MAP_RW, e.host, 4096, &iova), -ENOENT);
	assert_int_equal(iova_ranges(e.ctx, hwpt, r, 2, &n, &align), -ENOENT);
	assert_int_equal(unmap(e.ctx, e.ddev_id, 0, U64_MAX, NULL), -ENOENT);
	assert_int_equal(option(e.ctx, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, hwpt, &v),
			 -ENOENT);
	/* IOAS where a HWPT is wanted. */
	assert_int_equal(set_dirty(e.ctx, e.ioas, true), -ENOENT);
	assert_int_equal(get_dirty(e.ctx, e.ioas, 0, 0, 4096, 4096, r), -ENOENT);
	env_fini(&e);
}

static void test_ids_start_at_1_and_are_not_reused_while_referenced(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	uint32_t a, b, c, d;

	(void)state;
	a = ioas_alloc(ctx);
	b = ioas_alloc(ctx);
	assert_int_equal(a, 1);
	assert_true(b != a && b != 0);
	assert_int_equal(destroy(ctx, a), 0);
	c = ioas_alloc(ctx);
	d = ioas_alloc(ctx);
	assert_true(c != 0 && c != b);
	assert_true(d != 0 && d != b && d != c);
	/* All three live ids are usable, the destroyed one only if reused. */
	assert_int_equal(destroy(ctx, b), 0);
	assert_int_equal(destroy(ctx, c), 0);
	assert_int_equal(destroy(ctx, d), 0);
	assert_int_equal(destroy(ctx, b), -ENOENT);
	uiommu_ctx_destroy(ctx);
}

static void test_destroy_unknown_id_is_enoent(void **state)
{
	struct uiommu_ctx *ctx = ctx_new();
	uint32_t a;

	(void)state;
	assert_int_equal(destroy(ctx, 0), -ENOENT);
	assert_int_equal(destroy(ctx, 1), -ENOENT);
	assert_int_equal(destroy(ctx, 0xffffffffu), -ENOENT);
	a = ioas_alloc(ctx);
	assert_int_equal(destroy(ctx, a + 1), -ENOENT);
	assert_int_equal(destroy(ctx, a), 0);
	assert_int_equal(destroy(ctx, a), -ENOENT);
	uiommu_ctx_destroy(ctx);
}

static void test_destroy_ioas_with_hwpt_is_ebusy(void **state)
{
	struct env e;
	uint32_t hwpt;

	(void)state;
	env_init(&e, 0, 2 * MiB);
	assert_int_equal(hwpt_alloc(e.ctx, e.ddev_id, e.ioas, 0, &hwpt), 0);
	assert_int_equal(destroy(e.ctx, e.ioas), -EBUSY);
	assert_int_equal(destroy(e.ctx, hwpt), 0);
	assert_int_equal(destroy(e.ctx, e.ioas), 0);
	env_fini(&e);
}

static void test_destroy_ioas_with_attached_device_is_ebusy(void **state)
{
	struct env e;

	(void)state;
	env_init(&e, 0, 2 * MiB);
	attach(&e, e.pdev_id, e.ioas);
	assert_int_equal(destroy(e.ctx, e.ioas), -EBUSY);
	assert_int_equal(uiommu_ctx_detach(e.ctx, e.pdev_id), 0);
	assert_int_equal(destroy(e.ctx, e.ioas), 0);
	assert_int_equal(destroy(e.ctx, e.ioas), -ENOENT);
	env_fini(&e);
}

static void test_destroy_hwpt_with_attached_device_is_ebusy(void **state)
{
	struct env e;
	uint32_t hwpt;

	(void)state;
	env_init(&e, 0, 2 * MiB);
	assert_int_equal(hwpt_alloc(e.ctx, e.ddev_id, e.ioas, 0, &hwpt), 0);
	assert_int_equal(attach(&e, e.ddev_id, hwpt), hwpt);
	assert_int_equal(destroy(e.ctx, hwpt), -EBUSY);
	assert_int_equal(destroy(e.ctx, e.ioas), -EBUSY);
	assert_int_equal(uiommu_ctx_detach(e.ctx, e.ddev_id), 0);
	assert_int_equal(destroy(e.ctx, hwpt), 0);
	assert_int_equal(destroy(e.ctx, hwpt), -ENOENT);
	assert_int_equal(destroy(e.ctx, e.ioas), 0);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_numbers_are_0x3b00_or_nr_without_size_or_direction),
		cmocka_unit_test(test_size_below_min_is_einval_for_every_command),
		cmocka_unit_test(test_size_above_struct_with_nonzero_tail_is_e2big_for_every_command),
		cmocka_unit_test(test_size_above_struct_with_zero_tail_is_accepted_for_every_command),
		cmocka_unit_test(test_zero_tail_ioas_alloc_and_destroy_succeed),
		cmocka_unit_test(test_min_size_below_struct_size_is_accepted),
		cmocka_unit_test(test_response_is_truncated_to_size),
		cmocka_unit_test(test_response_never_written_beyond_size),
		cmocka_unit_test(test_response_write_fault_is_efault_and_new_object_destroyed),
		cmocka_unit_test(test_map_writeback_fault_keeps_the_mapping),
		cmocka_unit_test(test_unknown_command_nr_is_enotty),
		cmocka_unit_test(test_command_number_must_match_exactly),
		cmocka_unit_test(test_null_arg_is_efault_for_every_command),
		cmocka_unit_test(test_struct_reaching_unmapped_memory_is_efault),
		cmocka_unit_test(test_lookup_of_wrong_object_type_is_enoent),
		cmocka_unit_test(test_ids_start_at_1_and_are_not_reused_while_referenced),
		cmocka_unit_test(test_destroy_unknown_id_is_enoent),
		cmocka_unit_test(test_destroy_ioas_with_hwpt_is_ebusy),
		cmocka_unit_test(test_destroy_ioas_with_attached_device_is_ebusy),
		cmocka_unit_test(test_destroy_hwpt_with_attached_device_is_ebusy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
