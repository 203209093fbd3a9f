// SPDX-License-Identifier: MIT
/*
 * The kernel selftest's mock driver (IOMMU_TEST_CMD), kept apart from the real
 * front end: it exists so that the unmodified kernel iommufd selftest can run
 * against uiommu as a conformance suite.
 *
 * Mock devices are hardware devices with the mock page-table format (2 KiB
 * pages, 1 MiB with HUGE_IOVA), the mock aperture and the selftest's
 * GET_HW_INFO data; each lives in a "selftest" object whose destruction
 * unbinds and frees it. Accesses are fds (made through the context's fd ops)
 * holding a context reference; their pinned items are numbered from 0 per
 * access, and an unmap over an item drops it through the unmap callback, as
 * the kernel's selftest access does. Physical addresses are host virtual
 * addresses here, so MD_CHECK_MAP and the ACCESS_PAGES page check compare
 * VAs, and MD_CHECK_REFS reads the pin bookkeeping of the ioas layer.
 */
#include <errno.h>
#include <string.h>

#include "uapi/iommufd_test.h"
#include "uapi/uapi_internal.h"

#define MOCK_IO_PAGE_SIZE 2048ull
#define MOCK_HUGE_PAGE_SIZE (512 * MOCK_IO_PAGE_SIZE)

struct selftest_obj {
	struct obj obj;
	struct device_obj *idev;
	struct uiommu_hwdev *hw;
};

struct access_item {
	struct access_item *next;
	uint32_t id;
	uint64_t iova, length;
};

struct test_access {
	struct obj obj; /* hidden: takes an id, cannot be looked up */
	struct test_access *next;
	struct uiommu_ctx *ctx;
	struct uiommu_access *access;
	pthread_mutex_t lock; /* items; the unmap callback runs without ctx->lock */
	struct access_item *items;
	uint32_t next_id;
	bool needs_pin;
	int fd;
};

struct selftest_state {
	struct test_access *accesses;
};

/* Process-global, like the kernel module parameter it stands for. */
static unsigned int temp_memory_limit = 65536;

static const struct iommu_test_hw_info mock_hw_info = {
	.flags = 0,
	.test_reg = IOMMU_HW_INFO_SELFTEST_REGVAL,
};

/* ---- mock devices ---- */

static int mock_hwdev_create(uint32_t dev_flags, struct uiommu_hwdev **out)
{
	struct uiommu_hwdev_cfg cfg = {
		.name = "mock",
		.format = UIOMMU_PT_MOCK,
		.pgsize_bitmap = MOCK_IO_PAGE_SIZE,
		.aperture_start = MOCK_APERTURE_START,
		.aperture_last = MOCK_APERTURE_LAST,
		.dirty_tracking = !(dev_flags & MOCK_FLAGS_DEVICE_NO_DIRTY),
		.max_pasid_log2 = dev_flags & MOCK_FLAGS_DEVICE_PASID ? MOCK_PASID_WIDTH : 0,
		.hw_info_type = IOMMU_HW_INFO_TYPE_SELFTEST,
		.hw_info = &mock_hw_info,
		.hw_info_len = sizeof(mock_hw_info),
	};
	int ret;

	if (dev_flags & MOCK_FLAGS_DEVICE_HUGE_IOVA)
		cfg.pgsize_bitmap |= MOCK_HUGE_PAGE_SIZE;
	ret = uiommu_hwdev_create(&cfg, out);
	if (!ret)
		(*out)->nest_ops = &mock_nest_ops; /* the mock driver nests (selftest_nested.c) */
	return ret;
}

static void selftest_obj_free(struct uiommu_ctx *ctx, struct selftest_obj *sobj)
{
	if (sobj->idev)
		device_obj_unbind(ctx, sobj->idev);
	uiommu_hwdev_destroy(sobj->hw);
	uiommu__free(sobj);
}

int selftest_obj_destroy(struct uiommu_ctx *ctx, struct obj *obj)
{
	struct selftest_obj *sobj = (struct selftest_obj *)obj;

	obj_remove(ctx, obj);
	selftest_obj_free(ctx, sobj);
	return 0;
}

static int mock_domain_setup(struct uiommu_ctx *ctx, struct selftest_obj *sobj,
			     uint32_t dev_flags, uint32_t *pt_id)
{
	int ret = mock_hwdev_create(dev_flags, &sobj->hw);

	if (ret)
		return ret;
	ret = device_obj_bind(ctx, sobj->hw, &sobj->idev);
	if (ret)
		return ret;
	return device_attach_pt(ctx, sobj->idev, pt_id);
}

static int test_mock_domain(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	const uint32_t valid = MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA |
			       MOCK_FLAGS_DEVICE_PASID;
	uint32_t dev_flags = cmd->op == IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS ?
				     cmd->mock_domain.dev_flags : 0;
	struct selftest_obj *sobj;
	uint32_t pt_id = cmd->id;
	int ret;

	if (dev_flags & ~valid)
		return -EINVAL;
	sobj = uiommu__zalloc(sizeof(*sobj));
	if (!sobj)
		return -ENOMEM;
	ret = obj_add(ucmd->ctx, &sobj->obj, OBJ_SELFTEST);
	if (ret) {
		uiommu__free(sobj);
		return ret;
	}
	ret = mock_domain_setup(ucmd->ctx, sobj, dev_flags, &pt_id);
	if (!ret) {
		cmd->mock_domain.out_stdev_id = sobj->obj.id;
		cmd->mock_domain.out_hwpt_id = sobj->idev->hwpt->obj.id;
		cmd->mock_domain.out_idev_id = sobj->idev->obj.id;
		ret = ucmd_respond(ucmd, sizeof(*cmd));
	}
	if (ret)
		selftest_obj_destroy(ucmd->ctx, &sobj->obj);
	return ret;
}

static int test_mock_domain_replace(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	struct selftest_obj *sobj =
		(struct selftest_obj *)obj_find(ucmd->ctx, cmd->id, OBJ_SELFTEST);
	uint32_t pt_id = cmd->mock_domain_replace.pt_id;
	int ret;

	if (!sobj)
		return -ENOENT;
	ret = device_attach_pt(ucmd->ctx, sobj->idev, &pt_id);
	if (ret)
		return ret;
	cmd->mock_domain_replace.pt_id = sobj->idev->hwpt->obj.id;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

static int test_add_reserved(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	static const char test_owner;
	struct ioas_obj *ioas;
	uint64_t last;

	if (!cmd->add_reserved.length)
		return -EINVAL;
	if (uiommu_check_add_overflow(cmd->add_reserved.start, cmd->add_reserved.length - 1,
				      &last))
		return -EOVERFLOW;
	ioas = ioas_find(ucmd->ctx, cmd->id);
	if (!ioas)
		return -ENOENT;
	return uiommu_ioas_reserve(ioas->ioas, &test_owner, cmd->add_reserved.start, last);
}

/* The mock HWPT @id: a paging HWPT whose page table is in the mock format. */
static struct hwpt_obj *mock_hwpt_find(struct uiommu_ctx *ctx, uint32_t id)
{
	struct hwpt_obj *hwpt = hwpt_find(ctx, id);

	return hwpt && hwpt->cfg.format == UIOMMU_PT_MOCK ? hwpt : NULL;
}

static int test_md_check_map(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	uint64_t iova = cmd->check_map.iova, length = cmd->check_map.length;
	uint64_t uptr = cmd->check_map.uptr, end;
	struct uiommu_pte_info info;
	struct hwpt_obj *hwpt;
	int ret;

	if (iova % MOCK_IO_PAGE_SIZE || length % MOCK_IO_PAGE_SIZE || uptr % MOCK_IO_PAGE_SIZE ||
	    uiommu_check_add_overflow(uptr, length, &end))
		return -EINVAL;
	hwpt = mock_hwpt_find(ucmd->ctx, cmd->id);
	if (!hwpt)
		return -ENOENT;
	ret = uiommu__user_check((void *)(uintptr_t)uptr, length, false);
	if (ret)
		return ret;
	for (uint64_t off = 0; off < length; off += MOCK_IO_PAGE_SIZE) {
		if (uiommu_domain_lookup(hwpt->domain, iova + off, &info) ||
		    (uintptr_t)info.host != uptr + off)
			return -EINVAL;
	}
	return 0;
}

static int test_md_check_refs(struct iommu_test_cmd *cmd)
{
	uint64_t pg = uiommu__page_size();
	uint64_t uptr = cmd->check_refs.uptr, length = cmd->check_refs.length;

	if (uptr % pg || length % pg)
		return -EINVAL;
	for (uint64_t off = 0; off < length; off += pg)
		if (uiommu_pin_refs((const void *)(uintptr_t)(uptr + off)) != cmd->check_refs.refs)
			return -EIO;
	return 0;
}

static int test_dirty(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	uint64_t iova = cmd->dirty.iova, length = cmd->dirty.length, pgsz = cmd->dirty.page_size;
	uint64_t max, count = 0;
	struct hwpt_obj *hwpt;
	uint8_t *bits;
	int ret;

	if (!pgsz || !length || iova % pgsz || length % pgsz || !cmd->dirty.uptr)
		return -EINVAL;
	max = length / pgsz;
	if (max > (16ull << 20) * 8)
		return -EOVERFLOW;
	hwpt = mock_hwpt_find(ucmd->ctx, cmd->id);
	if (!hwpt)
		return -ENOENT;
	if (!uiommu_domain_dirty_tracking(hwpt->domain))
		return -EINVAL;
	bits = uiommu__zalloc((max + 7) / 8);
	if (!bits)
		return -ENOMEM;
	ret = uiommu__copy_from_user(bits, (const void *)(uintptr_t)cmd->dirty.uptr,
				     (max + 7) / 8);
	for (uint64_t i = 0; !ret && i < max; i++)
		if ((bits[i / 8] >> (i % 8)) & 1)
			count += !uiommu_domain_mark_dirty(hwpt->domain, iova + i * pgsz);
	uiommu__free(bits);
	if (ret)
		return ret;
	cmd->dirty.out_nr_dirty = count;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

/* ---- accesses ---- */

static struct selftest_state *selftest_state(struct uiommu_ctx *ctx)
{
	if (!ctx->selftest)
		ctx->selftest = uiommu__zalloc(sizeof(*ctx->selftest));
	return ctx->selftest;
}

static struct test_access *access_by_fd(struct uiommu_ctx *ctx, uint32_t fd)
{
	struct test_access *a = ctx->selftest ? ctx->selftest->accesses : NULL;

	while (a && (uint32_t)a->fd != fd)
		a = a->next;
	return a;
}

static void access_unmap_cb(void *opaque, uint64_t iova, uint64_t length)
{
	struct test_access *a = opaque;
	uint64_t last = iova + length - 1;
	struct access_item **pp = &a->items, *it;

	pthread_mutex_lock(&a->lock);
	while ((it = *pp)) {
		if (iova > it->iova + it->length - 1 || last < it->iova) {
			pp = &it->next;
			continue;
		}
		*pp = it->next;
		uiommu_access_unpin(a->access, it->iova, it->length);
		uiommu__free(it);
	}
	pthread_mutex_unlock(&a->lock);
}

static const struct uiommu_access_ops access_ops_pin = {
	.needs_pin = true,
	.unmap = access_unmap_cb,
};

static const struct uiommu_access_ops access_ops_nopin = {
	.needs_pin = false,
	.unmap = access_unmap_cb,
};

static void test_access_free(struct uiommu_ctx *ctx, struct test_access *a)
{
	struct access_item *it;

	while ((it = a->items)) {
		a->items = it->next;
		uiommu_access_unpin(a->access, it->iova, it->length);
		uiommu__free(it);
	}
	uiommu_access_destroy(a->access);
	if (a->obj.id)
		obj_remove(ctx, &a->obj);
	pthread_mutex_destroy(&a->lock);
	uiommu__free(a);
}

static int test_create_access(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	struct uiommu_ctx *ctx = ucmd->ctx;
	struct selftest_state *st;
	struct ioas_obj *ioas;
	struct test_access *a;
	int ret;

	if (cmd->create_access.flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES)
		return -EOPNOTSUPP;
	st = selftest_state(ctx);
	a = uiommu__zalloc(sizeof(*a));
	if (!st || !a) {
		uiommu__free(a);
		return -ENOMEM;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->ctx = ctx;
	a->needs_pin = cmd->create_access.flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
	ret = obj_add(ctx, &a->obj, OBJ_ACCESS);
	if (ret)
		goto err_free;
	a->obj.hidden = true;
	ioas = ioas_find(ctx, cmd->id);
	ret = ioas ? uiommu_access_create(ioas->ioas, a->needs_pin ? &access_ops_pin
								   : &access_ops_nopin,
					  a, &a->access)
		   : -ENOENT;
	if (ret)
		goto err_free;
	a->fd = ctx->fd_ops.open(ctx->fd_ops.opaque);
	if (a->fd < 0) {
		ret = -ENOMEM;
		goto err_free;
	}
	cmd->create_access.out_access_fd = (uint32_t)a->fd;
	ret = ucmd_respond(ucmd, sizeof(*cmd));
	if (ret) {
		ctx->fd_ops.close(ctx->fd_ops.opaque, a->fd);
		goto err_free;
	}
	a->next = st->accesses;
	st->accesses = a;
	uiommu_ctx_get(ctx);
	return 0;

err_free:
	test_access_free(ctx, a);
	return ret;
}

static int access_pages_check(struct test_access *a, uint64_t iova, uint64_t uptr,
			      void **pages, size_t npages)
{
	uint64_t pg = uiommu__page_size();
	uint64_t base = uptr - (iova - (iova & ~(pg - 1)));

	(void)a;
	for (size_t i = 0; i < npages; i++)
		if ((uintptr_t)pages[i] != ((base + i * pg) & ~(pg - 1)))
			return -EBADE;
	return 0;
}

static int access_item_add(struct test_access *a, uint64_t iova, uint64_t length, uint32_t *id)
{
	struct access_item *it = uiommu__zalloc(sizeof(*it));

	if (!it)
		return -ENOMEM;
	it->iova = iova;
	it->length = length;
	it->id = a->next_id++;
	pthread_mutex_lock(&a->lock);
	it->next = a->items;
	a->items = it;
	pthread_mutex_unlock(&a->lock);
	*id = it->id;
	return 0;
}

/* Unpins and drops item @id: 0, or -ENOENT. */
static int access_item_del(struct test_access *a, uint32_t id)
{
	struct access_item **pp, *it = NULL;

	pthread_mutex_lock(&a->lock);
	for (pp = &a->items; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			it = *pp;
			*pp = it->next;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (!it)
		return -ENOENT;
	uiommu_access_unpin(a->access, it->iova, it->length);
	uiommu__free(it);
	return 0;
}

static size_t npages_of(uint64_t iova, uint64_t length)
{
	uint64_t pg = uiommu__page_size();

	return (size_t)((((iova + length + pg - 1) & ~(pg - 1)) - (iova & ~(pg - 1))) / pg);
}

static int test_access_pages(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	uint64_t iova = cmd->access_pages.iova, length = cmd->access_pages.length;
	uint32_t flags = cmd->access_pages.flags;
	struct test_access *a;
	size_t npages;
	void **pages;
	int ret;

	if (length > 16 * 1024 * 1024)
		return -ENOMEM;
	if (flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ))
		return -EOPNOTSUPP;
	a = access_by_fd(ucmd->ctx, cmd->id);
	if (!a)
		return -EBADFD;
	if (!a->needs_pin || (flags & MOCK_FLAGS_ACCESS_SYZ))
		return -EOPNOTSUPP;
	npages = npages_of(iova, length);
	pages = uiommu__calloc(npages ? npages : 1, sizeof(*pages));
	if (!pages)
		return -ENOMEM;
	ret = uiommu_access_pin(a->access, iova, length,
				flags & MOCK_FLAGS_ACCESS_WRITE ? UIOMMU_ACCESS_WRITE : 0, pages,
				npages);
	if (ret)
		goto out_free;
	if (cmd->access_pages.uptr)
		ret = access_pages_check(a, iova, cmd->access_pages.uptr, pages, npages);
	if (!ret)
		ret = access_item_add(a, iova, length, &cmd->access_pages.out_access_pages_id);
	if (ret)
		goto out_unpin;
	ret = ucmd_respond(ucmd, sizeof(*cmd));
	if (ret)
		access_item_del(a, cmd->access_pages.out_access_pages_id);
	goto out_free;

out_unpin:
	uiommu_access_unpin(a->access, iova, length);
out_free:
	uiommu__free(pages);
	return ret;
}

static int test_destroy_access_pages(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	struct test_access *a = access_by_fd(ucmd->ctx, cmd->id);

	if (!a)
		return -EBADFD;
	return access_item_del(a, cmd->destroy_access_pages.access_pages_id);
}

static int test_access_rw(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	const uint32_t valid = MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH |
			       MOCK_FLAGS_ACCESS_SYZ;
	uint64_t length = cmd->access_rw.length;
	uint32_t flags = cmd->access_rw.flags;
	void *ubuf = (void *)(uintptr_t)cmd->access_rw.uptr;
	struct test_access *a;
	void *tmp;
	int ret = 0;

	if (length > 16 * 1024 * 1024)
		return -ENOMEM;
	if (flags & ~valid)
		return -EOPNOTSUPP;
	a = access_by_fd(ucmd->ctx, cmd->id);
	if (!a)
		return -EBADFD;
	if (flags & MOCK_FLAGS_ACCESS_SYZ)
		return -EOPNOTSUPP;
	tmp = uiommu__zalloc(length ? length : 1);
	if (!tmp)
		return -ENOMEM;
	if (flags & MOCK_ACCESS_RW_WRITE)
		ret = uiommu__copy_from_user(tmp, ubuf, length);
	if (!ret)
		ret = uiommu_access_rw(a->access, cmd->access_rw.iova, tmp, length,
				       flags & MOCK_ACCESS_RW_WRITE ? UIOMMU_ACCESS_WRITE : 0);
	if (!ret && !(flags & MOCK_ACCESS_RW_WRITE))
		ret = uiommu__copy_to_user(ubuf, tmp, length);
	uiommu__free(tmp);
	return ret;
}

static int test_access_replace_ioas(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	struct test_access *a = access_by_fd(ucmd->ctx, cmd->id);
	struct ioas_obj *ioas;

	if (!a)
		return -EBADFD;
	ioas = ioas_find(ucmd->ctx, cmd->access_replace_ioas.ioas_id);
	if (!ioas)
		return -ENOENT;
	return uiommu_access_replace_ioas(a->access, ioas->ioas);
}

int selftest_cmd(struct ucmd *ucmd)
{
	struct iommu_test_cmd *cmd = ucmd->cmd;

	switch (cmd->op) {
	case IOMMU_TEST_OP_ADD_RESERVED:
		return test_add_reserved(ucmd, cmd);
	case IOMMU_TEST_OP_MOCK_DOMAIN:
	case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
		return test_mock_domain(ucmd, cmd);
	case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
		return test_mock_domain_replace(ucmd, cmd);
	case IOMMU_TEST_OP_MD_CHECK_MAP:
		return test_md_check_map(ucmd, cmd);
	case IOMMU_TEST_OP_MD_CHECK_REFS:
		return test_md_check_refs(cmd);
	case IOMMU_TEST_OP_CREATE_ACCESS:
		return test_create_access(ucmd, cmd);
	case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
		return test_destroy_access_pages(ucmd, cmd);
	case IOMMU_TEST_OP_ACCESS_PAGES:
		return test_access_pages(ucmd, cmd);
	case IOMMU_TEST_OP_ACCESS_RW:
		return test_access_rw(ucmd, cmd);
	case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
		return test_access_replace_ioas(ucmd, cmd);
	case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
		/* The kernel's batch sizing; accepted and kept, no effect here. */
		if (cmd->memory_limit.limit < sizeof(unsigned long) + sizeof(uint32_t))
			return -EINVAL;
		__atomic_store_n(&temp_memory_limit, cmd->memory_limit.limit, __ATOMIC_RELAXED);
		return 0;
	case IOMMU_TEST_OP_DIRTY:
		return test_dirty(ucmd, cmd);
	case IOMMU_TEST_OP_MD_CHECK_IOTLB:
		return selftest_check_iotlb(ucmd, cmd);
	case IOMMU_TEST_OP_TRIGGER_IOPF:
		return selftest_trigger_iopf(ucmd, cmd);
	default:
		return -EOPNOTSUPP;
	}
}

int selftest_close_fd(struct uiommu_ctx *ctx, int fd)
{
	struct test_access **pp, *a = NULL;

	for (pp = ctx->selftest ? &ctx->selftest->accesses : NULL; pp && *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			a = *pp;
			*pp = a->next;
			break;
		}
	}
	if (!a)
		return -ENOENT;
	test_access_free(ctx, a);
	return 0;
}

void selftest_ctx_fini(struct uiommu_ctx *ctx)
{
	/* Accesses hold context references, so none is left by now. */
	UIOMMU_BUG_ON(ctx->selftest && ctx->selftest->accesses);
	uiommu__free(ctx->selftest);
	ctx->selftest = NULL;
}
