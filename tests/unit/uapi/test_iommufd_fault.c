/* SPDX-License-Identifier: MIT */
/*
 * IO page-fault queues: IOMMU_FAULT_QUEUE_ALLOC, HWPT_ALLOC with
 * IOMMU_HWPT_FAULT_ID_VALID, the selftest's TRIGGER_IOPF, and reading faults
 * and writing responses through the native equivalents of read(2) and
 * write(2) on the queue's fd (uiommu_fault_read/uiommu_fault_write): every
 * rule with its exact errno, the cookies, partial reads and writes, and what
 * detaching a device does to its pending faults.
 *
 * The fixture: a context, an IOAS, a selftest mock device attached to it, a
 * NEST_PARENT HWPT, a fault queue, and a nested HWPT that reports to it.
 */
#include <fcntl.h>

#include "uapi_test.h"

#include "uapi/iommufd_test.h"

#define REC sizeof(struct iommu_hwpt_pgfault)
#define RESP sizeof(struct iommu_hwpt_page_response)
#define RW (IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE)

struct ffx {
	struct uiommu_ctx *ctx;
	uint32_t ioas, stdev, idev, parent;
	uint32_t fault;
	int fd;
	uint32_t iopf_hwpt; /* nested, reports to fault */
};

static struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };

static long test_cmd(struct uiommu_ctx *ctx, struct iommu_test_cmd *cmd)
{
	cmd->size = sizeof(*cmd);
	return io(ctx, IOMMU_TEST_CMD, cmd);
}

static long fault_alloc(struct uiommu_ctx *ctx, uint32_t *id, int *fd)
{
	struct iommu_fault_alloc c = { .size = sizeof(c) };
	long rc = io(ctx, IOMMU_FAULT_QUEUE_ALLOC, &c);

	*id = rc ? 0 : c.out_fault_id;
	*fd = rc ? -1 : (int)c.out_fault_fd;
	return rc;
}

/* HWPT_ALLOC over @pt (nested with selftest data when @pt is a HWPT). */
static long alloc_with_fault(struct ffx *f, uint32_t pt, bool nested, uint32_t flags,
			     uint32_t fault_id, uint32_t *out)
{
	struct iommu_hwpt_alloc c = {
		.size = sizeof(c),
		.flags = flags,
		.dev_id = f->idev,
		.pt_id = pt,
		.data_type = nested ? IOMMU_HWPT_DATA_SELFTEST : IOMMU_HWPT_DATA_NONE,
		.data_len = nested ? sizeof(data) : 0,
		.data_uptr = nested ? (uintptr_t)&data : 0,
		.fault_id = fault_id,
	};
	long rc = io(f->ctx, IOMMU_HWPT_ALLOC, &c);

	*out = rc ? 0 : c.out_hwpt_id;
	return rc;
}

static long replace(struct ffx *f, uint32_t pt)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, .id = f->stdev };

	c.mock_domain_replace.pt_id = pt;
	return test_cmd(f->ctx, &c);
}

static long trigger(struct ffx *f, uint32_t dev_id, uint32_t pasid, uint64_t addr)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_TRIGGER_IOPF,
		.trigger_iopf = { .dev_id = dev_id, .pasid = pasid, .grpid = 2, .perm = RW,
				  .addr = addr },
	};

	return test_cmd(f->ctx, &c);
}

static ssize_t rd(struct ffx *f, void *buf, size_t count)
{
	return uiommu_fault_read(f->ctx, f->fd, buf, count);
}

static ssize_t answer(struct ffx *f, uint32_t cookie, uint32_t code)
{
	struct iommu_hwpt_page_response r = { .cookie = cookie, .code = code };

	return uiommu_fault_write(f->ctx, f->fd, &r, sizeof(r));
}

static int ffx_setup(void **state)
{
	struct ffx *f = calloc(1, sizeof(*f));
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN };

	assert_non_null(f);
	f->ctx = ctx_new();
	f->ioas = ioas_alloc(f->ctx);
	c.id = f->ioas;
	assert_int_equal(test_cmd(f->ctx, &c), 0);
	f->stdev = c.mock_domain.out_stdev_id;
	f->idev = c.mock_domain.out_idev_id;
	assert_int_equal(hwpt_alloc(f->ctx, f->idev, f->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT,
				    &f->parent),
			 0);
	assert_int_equal(fault_alloc(f->ctx, &f->fault, &f->fd), 0);
	assert_int_equal(alloc_with_fault(f, f->parent, true, IOMMU_HWPT_FAULT_ID_VALID, f->fault,
					  &f->iopf_hwpt),
			 0);
	*state = f;
	return 0;
}

static int ffx_teardown(void **state)
{
	struct ffx *f = *state;

	if (f->fd >= 0)
		assert_int_equal(uiommu_ctx_close_fd(f->ctx, f->fd), 0);
	uiommu_ctx_destroy(f->ctx);
	free(f);
	return 0;
}

/* The fixture's device on the fault-reporting nested HWPT. */
static void attach_iopf(struct ffx *f)
{
	assert_int_equal(replace(f, f->iopf_hwpt), 0);
}

/* ---- FAULT_QUEUE_ALLOC ---- */

static void test_fault_alloc_gives_an_object_and_a_cloexec_fd(void **state)
{
	struct ffx *f = *state;

	assert_int_not_equal(f->fault, 0);
	assert_true(f->fd >= 0);
	assert_true(fcntl(f->fd, F_GETFD) & FD_CLOEXEC);
}

static void test_fault_alloc_flags_are_eopnotsupp_and_make_nothing(void **state)
{
	struct ffx *f = *state;
	struct iommu_fault_alloc c = { .size = sizeof(c), .flags = 1 };
	uint32_t next;

	assert_int_equal(io(f->ctx, IOMMU_FAULT_QUEUE_ALLOC, &c), -EOPNOTSUPP);
	c.flags = 1u << 31;
	assert_int_equal(io(f->ctx, IOMMU_FAULT_QUEUE_ALLOC, &c), -EOPNOTSUPP);
	next = ioas_alloc(f->ctx);
	assert_int_equal(next, f->iopf_hwpt + 1);
}

static void test_fault_alloc_size_rules(void **state)
{
	struct ffx *f = *state;
	uint64_t raw[4] = { 0 };
	struct iommu_fault_alloc *c = (void *)raw;

	c->size = 15;
	assert_int_equal(io(f->ctx, IOMMU_FAULT_QUEUE_ALLOC, c), -EINVAL);
	c->size = 24;
	((uint8_t *)raw)[20] = 1;
	assert_int_equal(io(f->ctx, IOMMU_FAULT_QUEUE_ALLOC, c), -E2BIG);
	((uint8_t *)raw)[20] = 0;
	assert_int_equal(io(f->ctx, IOMMU_FAULT_QUEUE_ALLOC, c), 0);
	assert_true(c->out_fault_id && c->out_fault_id != f->fault);
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, (int)c->out_fault_fd), 0);
	assert_int_equal(destroy(f->ctx, c->out_fault_id), 0);
}

static void test_fault_alloc_write_back_fault_is_efault_and_nothing_is_left(void **state)
{
	struct ffx *f = *state;
	struct iommu_fault_alloc *ro;
	int probe = dup(0), fd;
	uint32_t id;

	ro = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED && probe >= 0);
	ro->size = sizeof(*ro);
	assert_int_equal(mprotect(ro, page_size(), PROT_READ), 0);
	/* The queue's fd would be the lowest free number, @probe's. */
	close(probe);
	assert_int_equal(io(f->ctx, IOMMU_FAULT_QUEUE_ALLOC, ro), -EFAULT);
	munmap(ro, page_size());
	/* Neither the fd nor the id was kept. */
	assert_int_equal(fcntl(probe, F_GETFD), -1);
	assert_int_equal(fault_alloc(f->ctx, &id, &fd), 0);
	assert_int_equal(id, f->iopf_hwpt + 1);
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, fd), 0);
}

static void test_fault_destroy_is_ebusy_while_its_fd_is_open(void **state)
{
	struct ffx *f = *state;
	uint32_t id;
	int fd;

	assert_int_equal(fault_alloc(f->ctx, &id, &fd), 0);
	assert_int_equal(destroy(f->ctx, id), -EBUSY);
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, fd), 0);
	/* A closed fault fd is no one's: closing it again is unknown. */
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, fd), -ENOENT);
	assert_int_equal(destroy(f->ctx, id), 0);
	assert_int_equal(destroy(f->ctx, id), -ENOENT);
}

static void test_fault_destroy_is_ebusy_while_a_hwpt_reports_to_it(void **state)
{
	struct ffx *f = *state;

	assert_int_equal(uiommu_ctx_close_fd(f->ctx, f->fd), 0);
	f->fd = -1;
	assert_int_equal(destroy(f->ctx, f->fault), -EBUSY);
	assert_int_equal(destroy(f->ctx, f->iopf_hwpt), 0);
	assert_int_equal(destroy(f->ctx, f->fault), 0);
}

static void test_fault_fd_keeps_the_context_alive(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	/* The creator lets go; the fd still reads, and its close frees everything. */
	uiommu_ctx_destroy(f->ctx);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, f->fd), 0);
	f->ctx = ctx_new();
	f->fd = -1;
}

/* ---- HWPT_ALLOC with FAULT_ID_VALID ---- */

static void test_hwpt_alloc_bad_fault_id_is_enoent_and_nothing_is_left(void **state)
{
	struct ffx *f = *state;
	const uint32_t bad[] = { UINT32_MAX, 0, f->ioas, f->parent };
	uint32_t h;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(alloc_with_fault(f, f->parent, true, IOMMU_HWPT_FAULT_ID_VALID,
						  bad[i], &h),
				 -ENOENT);
		assert_int_equal(alloc_with_fault(f, f->ioas, false, IOMMU_HWPT_FAULT_ID_VALID,
						  bad[i], &h),
				 -ENOENT);
	}
	/* The parent has the fixture's nested HWPT as its only user. */
	assert_int_equal(destroy(f->ctx, f->iopf_hwpt), 0);
	assert_int_equal(destroy(f->ctx, f->parent), 0);
	assert_int_equal(ioas_alloc(f->ctx), f->parent);
}

static void test_hwpt_alloc_fault_id_with_nest_parent_is_eopnotsupp(void **state)
{
	struct ffx *f = *state;
	uint32_t h;

	assert_int_equal(alloc_with_fault(f, f->ioas, false,
					  IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_NEST_PARENT,
					  f->fault, &h),
			 -EOPNOTSUPP);
	/* Before the fault lookup. */
	assert_int_equal(alloc_with_fault(f, f->ioas, false,
					  IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_NEST_PARENT,
					  UINT32_MAX, &h),
			 -EOPNOTSUPP);
}

static void test_hwpt_alloc_fault_id_is_ignored_without_the_flag(void **state)
{
	struct ffx *f = *state;
	uint32_t h;

	assert_int_equal(alloc_with_fault(f, f->parent, true, 0, UINT32_MAX, &h), 0);
	assert_int_equal(destroy(f->ctx, h), 0);
}

/* ---- TRIGGER_IOPF and what a read returns ---- */

static void test_trigger_bad_device_is_enoent_and_non_mock_is_einval(void **state)
{
	struct ffx *f = *state;
	struct uiommu_hwdev *x86 = hwdev_new(false, 0);
	uint32_t id = bind(f->ctx, x86);

	assert_int_equal(trigger(f, 999, 0, 0), -ENOENT);
	assert_int_equal(trigger(f, 0, 0, 0), -ENOENT);
	assert_int_equal(trigger(f, f->stdev, 0, 0), -ENOENT);
	assert_int_equal(trigger(f, id, 0, 0), -EINVAL);
	uiommu_ctx_unbind(f->ctx, id);
	uiommu_hwdev_destroy(x86);
}

static void test_read_returns_the_fault_as_the_device_reported_it(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0xdeadbeaf), 0);
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(m.flags, IOMMU_PGFAULT_FLAGS_PASID_VALID | IOMMU_PGFAULT_FLAGS_LAST_PAGE);
	assert_int_equal(m.dev_id, f->idev);
	assert_int_equal(m.pasid, 1);
	assert_int_equal(m.grpid, 2);
	assert_int_equal(m.perm, RW);
	assert_int_equal(m.__reserved, 0);
	assert_true(m.addr == 0xdeadbeaf);
	assert_int_equal(m.length, 0);
	assert_int_equal(m.cookie, 1);
	/* Nothing else waits. */
	assert_int_equal(rd(f, &m, REC), 0);
}

static void test_fault_without_pasid_has_no_pasid_flag(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 0, 0x2000), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(m.flags, IOMMU_PGFAULT_FLAGS_LAST_PAGE);
	assert_int_equal(m.pasid, 0);
}

static void test_fault_nothing_takes_is_dropped_and_the_op_succeeds(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;
	uint32_t plain;

	/* Attached to the automatic HWPT (no queue), then to the parent (none either). */
	assert_int_equal(trigger(f, f->idev, 0, 0x1000), 0);
	assert_int_equal(replace(f, f->parent), 0);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(rd(f, &m, REC), 0);
	/* A nested HWPT without a queue. */
	assert_int_equal(alloc_with_fault(f, f->parent, true, 0, 0, &plain), 0);
	assert_int_equal(replace(f, plain), 0);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(rd(f, &m, REC), 0);
}

static void test_pasid_fault_goes_only_to_a_nested_hwpt(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;
	uint32_t paging;

	/* A paging HWPT with a queue (newer kernels allow it): RID faults only. */
	assert_int_equal(alloc_with_fault(f, f->ioas, false, IOMMU_HWPT_FAULT_ID_VALID, f->fault,
					  &paging),
			 0);
	assert_int_equal(replace(f, paging), 0);
	assert_int_equal(trigger(f, f->idev, 5, 0x1000), 0);
	assert_int_equal(rd(f, &m, REC), 0);
	assert_int_equal(trigger(f, f->idev, 0, 0x3000), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_true(m.addr == 0x3000);
}

/* ---- read rules ---- */

static void test_read_count_not_a_multiple_is_espipe(void **state)
{
	struct ffx *f = *state;
	uint8_t buf[2 * REC];

	assert_int_equal(rd(f, buf, 1), -ESPIPE);
	assert_int_equal(rd(f, buf, REC - 1), -ESPIPE);
	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(rd(f, buf, REC + 1), -ESPIPE);
	assert_int_equal(rd(f, buf, 2 * REC), (ssize_t)REC);
}

static void test_read_count_0_is_einval_when_a_fault_waits(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	assert_int_equal(rd(f, &m, 0), 0);
	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(rd(f, &m, 0), -EINVAL);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(m.cookie, 1);
}

static void test_read_takes_only_what_fits_oldest_first(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m[3];

	attach_iopf(f);
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(trigger(f, f->idev, 1, i << 12), 0);
	assert_int_equal(rd(f, m, REC), (ssize_t)REC);
	assert_true(m[0].addr == 1 << 12 && m[0].cookie == 1);
	assert_int_equal(rd(f, m, 3 * REC), (ssize_t)(2 * REC));
	assert_true(m[0].addr == 2 << 12 && m[0].cookie == 2);
	assert_true(m[1].addr == 3 << 12 && m[1].cookie == 3);
}

static void test_read_bad_buffer_is_efault_and_the_fault_stays(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(rd(f, bad_ptr(), REC), -EFAULT);
	assert_int_equal(rd(f, NULL, REC), -EFAULT);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_true(m.addr == 0x1000 && m.cookie == 1);
}

static void test_read_fault_after_a_record_returns_the_bytes_done(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault *m = before_hole(REC), m2;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(trigger(f, f->idev, 1, 0x2000), 0);
	assert_int_equal(rd(f, m, 2 * REC), (ssize_t)REC);
	assert_true(m->addr == 0x1000 && m->cookie == 1);
	assert_int_equal(rd(f, &m2, REC), (ssize_t)REC);
	assert_true(m2.addr == 0x2000 && m2.cookie == 2);
}

static void test_cookies_are_the_lowest_free_from_1(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m[3];

	attach_iopf(f);
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(trigger(f, f->idev, 1, i << 12), 0);
	assert_int_equal(rd(f, m, sizeof(m)), (ssize_t)sizeof(m));
	assert_int_equal(answer(f, 2, IOMMUFD_PAGE_RESP_SUCCESS), (ssize_t)RESP);
	assert_int_equal(trigger(f, f->idev, 1, 4 << 12), 0);
	assert_int_equal(rd(f, m, REC), (ssize_t)REC);
	assert_int_equal(m[0].cookie, 2);
	assert_int_equal(trigger(f, f->idev, 1, 5 << 12), 0);
	assert_int_equal(rd(f, m, REC), (ssize_t)REC);
	assert_int_equal(m[0].cookie, 4);
}

/* ---- write rules ---- */

static void test_write_answers_a_group_once(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(answer(f, m.cookie, IOMMUFD_PAGE_RESP_INVALID), (ssize_t)RESP);
	assert_int_equal(answer(f, m.cookie, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
}

static void test_write_count_not_a_multiple_is_espipe_and_0_is_0(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_page_response r[2] = { { 0 } };

	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, r, 1), -ESPIPE);
	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, r, RESP + 4), -ESPIPE);
	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, r, 0), 0);
}

static void test_write_bad_code_or_unknown_cookie_is_einval(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	/* Not read yet: no cookie is known. */
	assert_int_equal(answer(f, 1, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	assert_int_equal(answer(f, 0, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(answer(f, m.cookie, 2), -EINVAL);
	assert_int_equal(answer(f, m.cookie, UINT32_MAX), -EINVAL);
	assert_int_equal(answer(f, m.cookie + 1, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	/* None of that answered it. */
	assert_int_equal(answer(f, m.cookie, IOMMUFD_PAGE_RESP_SUCCESS), (ssize_t)RESP);
}

static void test_write_bad_buffer_is_efault(void **state)
{
	struct ffx *f = *state;

	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, bad_ptr(), RESP), -EFAULT);
	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, NULL, RESP), -EFAULT);
}

static void test_write_stops_at_the_first_bad_record_and_returns_the_bytes_done(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m[3];
	struct iommu_hwpt_page_response r[3] = { { .cookie = 1 }, { .cookie = 99 },
						 { .cookie = 3 } };
	struct iommu_hwpt_page_response *tail = before_hole(RESP);

	attach_iopf(f);
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(trigger(f, f->idev, 1, i << 12), 0);
	assert_int_equal(rd(f, m, sizeof(m)), (ssize_t)sizeof(m));
	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, r, sizeof(r)), (ssize_t)RESP);
	/* 1 is answered, 3 is not; a record running into a hole ends a write too. */
	assert_int_equal(answer(f, 1, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	*tail = (struct iommu_hwpt_page_response){ .cookie = 3 };
	assert_int_equal(uiommu_fault_write(f->ctx, f->fd, tail, 2 * RESP), (ssize_t)RESP);
	assert_int_equal(answer(f, 2, IOMMUFD_PAGE_RESP_SUCCESS), (ssize_t)RESP);
	assert_int_equal(answer(f, 3, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
}

static void test_read_and_write_on_fds_that_are_not_fault_queues_are_ebadf(void **state)
{
	struct ffx *f = *state;
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_CREATE_ACCESS, .id = f->ioas };
	struct iommu_hwpt_pgfault m;
	int fd;

	assert_int_equal(test_cmd(f->ctx, &c), 0);
	fd = (int)c.create_access.out_access_fd;
	assert_int_equal(uiommu_fault_read(f->ctx, fd, &m, REC), -EBADF);
	assert_int_equal(uiommu_fault_write(f->ctx, fd, &m, RESP), -EBADF);
	assert_int_equal(uiommu_fault_read(f->ctx, -1, &m, REC), -EBADF);
	assert_int_equal(uiommu_fault_read(f->ctx, 0, &m, REC), -EBADF);
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, fd), 0);
	/* A closed fault fd no longer reads. */
	fd = f->fd;
	assert_int_equal(uiommu_ctx_close_fd(f->ctx, fd), 0);
	f->fd = -1;
	assert_int_equal(uiommu_fault_read(f->ctx, fd, &m, REC), -EBADF);
	assert_int_equal(uiommu_fault_write(f->ctx, fd, &m, RESP), -EBADF);
}

/* ---- leaving a HWPT drops the device's pending faults ---- */

static void test_replace_drops_waiting_and_unanswered_faults(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x1000), 0);
	assert_int_equal(trigger(f, f->idev, 1, 0x2000), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_int_equal(replace(f, f->parent), 0);
	assert_int_equal(rd(f, &m, REC), 0);
	assert_int_equal(answer(f, 1, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	/* Back again: new faults queue as usual, cookies from 1. */
	attach_iopf(f);
	assert_int_equal(trigger(f, f->idev, 1, 0x3000), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_true(m.addr == 0x3000 && m.cookie == 1);
}

static void test_replace_keeps_other_devices_faults(void **state)
{
	struct ffx *f = *state;
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN };
	struct iommu_hwpt_pgfault m;

	attach_iopf(f);
	c.id = f->iopf_hwpt;
	assert_int_equal(test_cmd(f->ctx, &c), 0);
	assert_int_equal(trigger(f, c.mock_domain.out_idev_id, 1, 0x1000), 0);
	assert_int_equal(trigger(f, f->idev, 1, 0x2000), 0);
	assert_int_equal(replace(f, f->parent), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
	assert_true(m.addr == 0x1000 && m.dev_id == c.mock_domain.out_idev_id);
	/* Destroying the other device drops its unanswered group. */
	assert_int_equal(destroy(f->ctx, c.mock_domain.out_stdev_id), 0);
	assert_int_equal(answer(f, m.cookie, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
}

static void test_teardown_with_faults_pending(void **state)
{
	struct ffx *f = *state;
	struct iommu_hwpt_pgfault m;

	/* Everything is left to the teardown (leaks show under ASan). */
	attach_iopf(f);
	for (uint64_t i = 1; i <= 4; i++)
		assert_int_equal(trigger(f, f->idev, 1, i << 12), 0);
	assert_int_equal(rd(f, &m, REC), (ssize_t)REC);
}

#define F(fn) cmocka_unit_test_setup_teardown(fn, ffx_setup, ffx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		F(test_fault_alloc_gives_an_object_and_a_cloexec_fd),
		F(test_fault_alloc_flags_are_eopnotsupp_and_make_nothing),
		F(test_fault_alloc_size_rules),
		F(test_fault_alloc_write_back_fault_is_efault_and_nothing_is_left),
		F(test_fault_destroy_is_ebusy_while_its_fd_is_open),
		F(test_fault_destroy_is_ebusy_while_a_hwpt_reports_to_it),
		F(test_fault_fd_keeps_the_context_alive),
		F(test_hwpt_alloc_bad_fault_id_is_enoent_and_nothing_is_left),
		F(test_hwpt_alloc_fault_id_with_nest_parent_is_eopnotsupp),
		F(test_hwpt_alloc_fault_id_is_ignored_without_the_flag),
		F(test_trigger_bad_device_is_enoent_and_non_mock_is_einval),
		F(test_read_returns_the_fault_as_the_device_reported_it),
		F(test_fault_without_pasid_has_no_pasid_flag),
		F(test_fault_nothing_takes_is_dropped_and_the_op_succeeds),
		F(test_pasid_fault_goes_only_to_a_nested_hwpt),
		F(test_read_count_not_a_multiple_is_espipe),
		F(test_read_count_0_is_einval_when_a_fault_waits),
		F(test_read_takes_only_what_fits_oldest_first),
		F(test_read_bad_buffer_is_efault_and_the_fault_stays),
		F(test_read_fault_after_a_record_returns_the_bytes_done),
		F(test_cookies_are_the_lowest_free_from_1),
		F(test_write_answers_a_group_once),
		F(test_write_count_not_a_multiple_is_espipe_and_0_is_0),
		F(test_write_bad_code_or_unknown_cookie_is_einval),
		F(test_write_bad_buffer_is_efault),
		F(test_write_stops_at_the_first_bad_record_and_returns_the_bytes_done),
		F(test_read_and_write_on_fds_that_are_not_fault_queues_are_ebadf),
		F(test_replace_drops_waiting_and_unanswered_faults),
		F(test_replace_keeps_other_devices_faults),
		F(test_teardown_with_faults_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
