// SPDX-License-Identifier: MIT
/*
 * The iommufd ioctl front end: the kernel's framing, checks and errnos.
 *
 * Framing (as the kernel's dispatcher): commands whose nr is below 0x80 or
 * past the table go to the VFIO compat layer; otherwise the u32 size at the
 * start of the argument is read (-EFAULT), the full command number must match
 * the table (-ENOTTY), size below the command's mandatory end is -EINVAL, a
 * larger size needs a zero tail (-E2BIG), a shorter one is zero-extended.
 * Handlers answer with ucmd_respond(), which copies back min(size, struct)
 * bytes. Every user pointer goes through process_vm_readv/writev so a bad one
 * is -EFAULT, never a crash.
 *
 * Handlers validate in the kernel's order and then call the native layers
 * (ioas, iommu, dirty); they hold no state beyond the context's object table.
 * Where the kernel has a quirk, the choice made is noted at the handler and
 * collected in doc/iommufd-quirks.md.
 */
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uiommu/dirty.h>
#include <uiommu/uapi/iommufd.h>

#include "uapi/iommufd_test.h"
#include "uapi/uapi_internal.h"

#define U64_MAX UINT64_MAX

union ucmd_buffer {
	struct iommu_destroy destroy;
	struct iommu_hw_info info;
	struct iommu_hwpt_alloc hwpt;
	struct iommu_hwpt_get_dirty_bitmap get_dirty_bitmap;
	struct iommu_hwpt_invalidate cache;
	struct iommu_hwpt_set_dirty_tracking set_dirty_tracking;
	struct iommu_ioas_alloc alloc;
	struct iommu_ioas_allow_iovas allow_iovas;
	struct iommu_ioas_copy ioas_copy;
	struct iommu_ioas_iova_ranges iova_ranges;
	struct iommu_ioas_map map;
	struct iommu_ioas_map_file map_file;
	struct iommu_ioas_unmap unmap;
	struct iommu_option option;
	struct iommu_vfio_ioas vfio_ioas;
	struct iommu_fault_alloc fault;
	struct iommu_test_cmd test;
	uint64_t align;
};

int ucmd_respond(struct ucmd *ucmd, size_t length)
{
	size_t n = length < ucmd->user_size ? length : ucmd->user_size;

	return uiommu__copy_to_user(ucmd->ubuffer, ucmd->cmd, n);
}

static uint32_t map_prot(uint32_t flags)
{
	return (flags & IOMMU_IOAS_MAP_READABLE ? UIOMMU_PROT_READ : 0) |
	       (flags & IOMMU_IOAS_MAP_WRITEABLE ? UIOMMU_PROT_WRITE : 0);
}

#define MAP_VALID_FLAGS                                                                        \
	(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)

/* The first checks of MAP and MAP_FILE, in the kernel's order. */
static int map_args_check(uint32_t flags, uint64_t iova, uint64_t length)
{
	if (flags & ~MAP_VALID_FLAGS)
		return -EOPNOTSUPP;
	if (iova >= U64_MAX || length >= U64_MAX)
		return -EOVERFLOW;
	if (!map_prot(flags))
		return -EINVAL;
	return 0;
}

static int iommufd_destroy(struct ucmd *ucmd)
{
	struct iommu_destroy *cmd = ucmd->cmd;

	return obj_destroy_by_id(ucmd->ctx, cmd->id);
}

static int iommufd_ioas_alloc(struct ucmd *ucmd)
{
	struct iommu_ioas_alloc *cmd = ucmd->cmd;
	struct ioas_obj *ioas;
	int ret;

	if (cmd->flags)
		return -EOPNOTSUPP;
	ret = ioas_obj_create(ucmd->ctx, &ioas);
	if (ret)
		return ret;
	cmd->out_ioas_id = ioas->obj.id;
	ret = ucmd_respond(ucmd, sizeof(*cmd));
	if (ret)
		ioas_obj_destroy(ucmd->ctx, ioas);
	return ret;
}

static int iommufd_ioas_iova_ranges(struct ucmd *ucmd)
{
	struct iommu_ioas_iova_ranges *cmd = ucmd->cmd;
	struct uiommu_iova_range *ranges = NULL;
	size_t total = 0, cap = cmd->num_iovas;
	struct ioas_obj *ioas;
	uint64_t align;
	int ret;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	ioas = ioas_find(ucmd->ctx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	if (cap && !(ranges = uiommu__calloc(cap, sizeof(*ranges))))
		return -ENOMEM;
	ret = uiommu_ioas_iova_ranges(ioas->ioas, ranges, cap, &total, &align);
	if (ret && ret != -EMSGSIZE)
		goto out_free;
	/* What fits is written, the struct goes back, then -EMSGSIZE if short. */
	if (uiommu__copy_to_user((void *)(uintptr_t)cmd->allowed_iovas, ranges,
				 u64_min(total, cap) * sizeof(*ranges))) {
		ret = -EFAULT;
		goto out_free;
	}
	cmd->num_iovas = (uint32_t)total;
	cmd->out_iova_alignment = align;
	if (ucmd_respond(ucmd, sizeof(*cmd)))
		ret = -EFAULT;
out_free:
	uiommu__free(ranges);
	return ret;
}

static int iommufd_ioas_allow_iovas(struct ucmd *ucmd)
{
	struct iommu_ioas_allow_iovas *cmd = ucmd->cmd;
	struct uiommu_iova_range *ranges = NULL;
	struct ioas_obj *ioas;
	int ret = 0;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	ioas = ioas_find(ucmd->ctx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	if (cmd->num_iovas && !(ranges = uiommu__calloc(cmd->num_iovas, sizeof(*ranges))))
		return -ENOMEM;
	for (uint32_t i = 0; i < cmd->num_iovas && !ret; i++) {
		const struct iommu_iova_range *u = (const void *)(uintptr_t)cmd->allowed_iovas;

		ret = uiommu__copy_from_user(&ranges[i], &u[i], sizeof(ranges[i]));
		if (!ret && ranges[i].start >= ranges[i].last)
			ret = -EINVAL;
	}
	if (!ret)
		ret = uiommu_ioas_allow_iovas(ioas->ioas, ranges, cmd->num_iovas);
	uiommu__free(ranges);
	return ret;
}

static int iommufd_ioas_map(struct ucmd *ucmd)
{
	struct iommu_ioas_map *cmd = ucmd->cmd;
	struct ioas_obj *ioas;
	uint64_t iova = cmd->iova;
	int ret;

	if ((cmd->flags & ~MAP_VALID_FLAGS) || cmd->__reserved)
		return -EOPNOTSUPP;
	ret = map_args_check(cmd->flags, cmd->iova, cmd->length);
	if (ret)
		return ret;
	ioas = ioas_find(ucmd->ctx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	ret = uiommu_ioas_map(ioas->ioas, (void *)(uintptr_t)cmd->user_va, cmd->length,
			      map_prot(cmd->flags), cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA, &iova);
	if (ret)
		return ret;
	/* As in the kernel, a failed copy-back leaves the mapping in place. */
	cmd->iova = iova;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

static int iommufd_ioas_map_file(struct ucmd *ucmd)
{
	struct iommu_ioas_map_file *cmd = ucmd->cmd;
	struct ioas_obj *ioas;
	uint64_t iova = cmd->iova;
	int ret = map_args_check(cmd->flags, cmd->iova, cmd->length);

	if (ret)
		return ret;
	ioas = ioas_find(ucmd->ctx, cmd->ioas_id);
	if (!ioas)
		return -ENOENT;
	ret = uiommu_ioas_map_file(ioas->ioas, cmd->fd, cmd->start, cmd->length,
				   map_prot(cmd->flags), cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA,
				   &iova);
	if (ret)
		return ret;
	cmd->iova = iova;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

static int iommufd_ioas_copy(struct ucmd *ucmd)
{
	struct iommu_ioas_copy *cmd = ucmd->cmd;
	struct ioas_obj *src, *dst;
	uint64_t iova = cmd->dst_iova;
	int ret;

	if (cmd->flags & ~MAP_VALID_FLAGS)
		return -EOPNOTSUPP;
	if (cmd->length >= U64_MAX || cmd->src_iova >= U64_MAX || cmd->dst_iova >= U64_MAX)
		return -EOVERFLOW;
	if (!map_prot(cmd->flags))
		return -EINVAL;
	src = ioas_find(ucmd->ctx, cmd->src_ioas_id);
	if (!src)
		return -ENOENT;
	/* Deviation: the kernel validates the source range before it looks up the
	 * destination; with both wrong it reports the source's error. */
	dst = ioas_find(ucmd->ctx, cmd->dst_ioas_id);
	if (!dst)
		return -ENOENT;
	ret = uiommu_ioas_copy(dst->ioas, &iova, src->ioas, cmd->src_iova, cmd->length,
			       map_prot(cmd->flags), cmd->flags & IOMMU_IOAS_MAP_FIXED_IOVA);
	if (ret)
		return ret;
	cmd->dst_iova = iova;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

static int iommufd_ioas_unmap(struct ucmd *ucmd)
{
	struct iommu_ioas_unmap *cmd = ucmd->cmd;
	struct ioas_obj *ioas = ioas_find(ucmd->ctx, cmd->ioas_id);
	uint64_t unmapped = 0;
	int ret;

	if (!ioas)
		return -ENOENT;
	if (!(cmd->iova == 0 && cmd->length == U64_MAX) &&
	    (cmd->iova >= U64_MAX || cmd->length >= U64_MAX))
		return -EOVERFLOW;
	ret = uiommu_ioas_unmap(ioas->ioas, cmd->iova, cmd->length, &unmapped);
	if (ret)
		return ret;
	if (!unmapped && !(cmd->iova == 0 && cmd->length == U64_MAX))
		return -ENOENT;
	cmd->length = unmapped;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

static bool has_cap_sys_resource(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_SYS_RESOURCE / 32].effective & (1u << (CAP_SYS_RESOURCE % 32));
}

static int option_rlimit_mode(struct uiommu_ctx *ctx, struct iommu_option *cmd)
{
	if (cmd->object_id)
		return -EOPNOTSUPP;
	if (cmd->op == IOMMU_OPTION_OP_GET) {
		cmd->val64 = ctx->account_mm;
		return 0;
	}
	if (cmd->op != IOMMU_OPTION_OP_SET)
		return -EOPNOTSUPP;
	if (!has_cap_sys_resource())
		return -EPERM;
	if (ctx->nr_objs)
		return -EBUSY;
	if (cmd->val64 > 1)
		return -EINVAL;
	/* Accepted and reported; locked memory is not accounted here (see doc). */
	ctx->account_mm = cmd->val64;
	return 0;
}

static int option_huge_pages(struct uiommu_ctx *ctx, struct iommu_option *cmd)
{
	struct ioas_obj *ioas = ioas_find(ctx, cmd->object_id);

	if (!ioas)
		return -ENOENT;
	if (cmd->op == IOMMU_OPTION_OP_GET) {
		cmd->val64 = uiommu_ioas_huge_pages(ioas->ioas);
		return 0;
	}
	if (cmd->op != IOMMU_OPTION_OP_SET)
		return -EOPNOTSUPP;
	if (cmd->val64 > 1)
		return -EINVAL;
	return uiommu_ioas_set_huge_pages(ioas->ioas, cmd->val64);
}

static int iommufd_option(struct ucmd *ucmd)
{
	struct iommu_option *cmd = ucmd->cmd;
	int ret;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	switch (cmd->option_id) {
	case IOMMU_OPTION_RLIMIT_MODE:
		ret = option_rlimit_mode(ucmd->ctx, cmd);
		break;
	case IOMMU_OPTION_HUGE_PAGES:
		ret = option_huge_pages(ucmd->ctx, cmd);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (ret)
		return ret;
	/* Only val64 goes back. */
	return uiommu__copy_to_user((char *)ucmd->ubuffer + offsetof(struct iommu_option, val64),
				    &cmd->val64, sizeof(cmd->val64));
}

static int iommufd_hwpt_alloc(struct ucmd *ucmd)
{
	struct iommu_hwpt_alloc *cmd = ucmd->cmd;
	struct device_obj *dev;
	struct hwpt_obj *hwpt;
	struct obj *pt;
	int ret;

	if (cmd->__reserved)
		return -EOPNOTSUPP;
	if ((cmd->data_type == IOMMU_HWPT_DATA_NONE) != !cmd->data_len)
		return -EINVAL;
	dev = device_find(ucmd->ctx, cmd->dev_id);
	if (!dev)
		return -ENOENT;
	pt = obj_find(ucmd->ctx, cmd->pt_id, OBJ_ANY);
	if (!pt)
		return -EINVAL;
	if (pt->type == OBJ_IOAS)
		/* Driver data describes stage-1 tables: no paging allocator takes any. */
		ret = cmd->data_len ? -EOPNOTSUPP
				    : hwpt_paging_alloc(ucmd->ctx, (struct ioas_obj *)pt, dev,
							cmd->flags, false, &hwpt);
	else if (pt->type == OBJ_HWPT)
		ret = hwpt_nested_alloc(ucmd->ctx, (struct hwpt_obj *)pt, dev, cmd, &hwpt);
	else
		ret = -EINVAL; /* a nested HWPT is no parent */
	if (ret)
		return ret;
	if (cmd->flags & IOMMU_HWPT_FAULT_ID_VALID) {
		ret = hwpt_fault_set(ucmd->ctx, hwpt, cmd->fault_id);
		if (ret)
			goto err_destroy;
	}
	cmd->out_hwpt_id = hwpt->obj.id;
	ret = ucmd_respond(ucmd, sizeof(*cmd));
	if (ret)
		goto err_destroy;
	return 0;

err_destroy:
	hwpt_obj_destroy(ucmd->ctx, hwpt);
	return ret;
}

/* GET_HW_INFO input checks, newer-kernel style (flags may carry INPUT_TYPE). */
static int hw_info_check(const struct iommu_hw_info *cmd, const struct uiommu_hwdev *hw)
{
	if ((cmd->flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE) &&
	    cmd->out_data_type != IOMMU_HW_INFO_TYPE_DEFAULT &&
	    cmd->out_data_type != hw->cfg.hw_info_type)
		return -EOPNOTSUPP;
	return 0;
}

static int iommufd_get_hw_info(struct ucmd *ucmd)
{
	struct iommu_hw_info *cmd = ucmd->cmd;
	void *uptr = (void *)(uintptr_t)cmd->data_uptr;
	const struct uiommu_hwdev *hw;
	struct device_obj *dev;
	uint32_t copy_len;
	int ret;

	if ((cmd->flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) || cmd->__reserved[0] ||
	    cmd->__reserved[1] || cmd->__reserved[2])
		return -EOPNOTSUPP;
	dev = device_find(ucmd->ctx, cmd->dev_id);
	if (!dev)
		return -ENOENT;
	hw = dev->hw;
	ret = hw_info_check(cmd, hw);
	if (ret)
		return ret;
	copy_len = cmd->data_len < hw->cfg.hw_info_len ? cmd->data_len : hw->cfg.hw_info_len;
	if (uiommu__copy_to_user(uptr, hw->cfg.hw_info, copy_len))
		return -EFAULT;
	for (uint32_t off = copy_len; off < cmd->data_len; off += 64) {
		static const char zeros[64];
		uint32_t n = cmd->data_len - off < 64 ? cmd->data_len - off : 64;

		if (uiommu__copy_to_user((char *)uptr + off, zeros, n))
			return -EFAULT;
	}
	cmd->data_len = hw->cfg.hw_info_len;
	cmd->out_data_type = hw->cfg.hw_info_type;
	cmd->out_capabilities = hw->cfg.dirty_tracking ? IOMMU_HW_CAP_DIRTY_TRACKING : 0;
	cmd->out_max_pasid_log2 = hw->cfg.max_pasid_log2;
	return ucmd_respond(ucmd, sizeof(*cmd));
}

static int iommufd_hwpt_set_dirty_tracking(struct ucmd *ucmd)
{
	struct iommu_hwpt_set_dirty_tracking *cmd = ucmd->cmd;
	struct hwpt_obj *hwpt;

	/* __reserved is not checked, as in the kernel. */
	if (cmd->flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE)
		return -EOPNOTSUPP;
	hwpt = hwpt_find(ucmd->ctx, cmd->hwpt_id);
	if (!hwpt)
		return -ENOENT;
	if (!hwpt->dirty_ops)
		return -EOPNOTSUPP;
	return uiommu_domain_set_dirty_tracking(hwpt->domain,
						cmd->flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
}

/* iommufd_check_iova_range(): the generic checks before any driver work. */
static int dirty_range_check(const struct iommu_hwpt_get_dirty_bitmap *cmd, uint64_t align)
{
	uint64_t last;

	/*
	 * Length 0 wraps iova + length - 1, so it is -EOVERFLOW unless iova is 0
	 * (the spec's rule). Newer kernels refuse length 0 outright with -EINVAL;
	 * we do that only for the case that would otherwise pass (iova 0, the
	 * whole 64-bit space), which no caller can mean.
	 */
	if (uiommu_check_add_overflow(cmd->iova, cmd->length - 1, &last))
		return -EOVERFLOW;
	if (!cmd->length)
		return -EINVAL;
	if ((cmd->iova & (align - 1)) || ((last + 1) & (align - 1)))
		return -EINVAL;
	if (!cmd->page_size)
		return -EINVAL;
	if ((cmd->iova & (cmd->page_size - 1)) || ((last + 1) & (cmd->page_size - 1)))
		return -EINVAL;
	return 0;
}

static int iommufd_hwpt_get_dirty_bitmap(struct ucmd *ucmd)
{
	struct iommu_hwpt_get_dirty_bitmap *cmd = ucmd->cmd;
	struct uiommu_dirty_report report;
	uint64_t bytes, contig_last;
	struct hwpt_obj *hwpt;
	void *bitmap = (void *)(uintptr_t)cmd->data;
	int ret;

	if ((cmd->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) || cmd->__reserved)
		return -EOPNOTSUPP;
	hwpt = hwpt_find(ucmd->ctx, cmd->hwpt_id);
	if (!hwpt)
		return -ENOENT;
	ret = dirty_range_check(cmd, uiommu_ioas_iova_alignment(hwpt->ioas->ioas));
	if (ret)
		return ret;
	if (!hwpt->dirty_ops)
		return -EOPNOTSUPP;
	/* The kernel pins the bitmap first and reports any failure as -ENOMEM. */
	bytes = uiommu_dirty_bitmap_bytes(cmd->length, cmd->page_size);
	if (uiommu__user_populate_write(bitmap, bytes) ||
	    uiommu_dirty_report_init(&report, cmd->iova, cmd->length, cmd->page_size, bitmap,
				     bytes))
		return -ENOMEM;
	/*
	 * Kept quirk: the walk stops at the first IOVA not covered by an area and
	 * the ioctl still returns 0. Nothing is lost: bits past the hole are not
	 * cleared either, so the next query reports them.
	 */
	if (uiommu_ioas_contig_last(hwpt->ioas->ioas, cmd->iova, report.last, &contig_last))
		return 0;
	/* Walk errors (tracking disabled) are dropped too, as in the kernel. */
	uiommu_domain_read_and_clear_dirty(hwpt->domain, cmd->iova, contig_last - cmd->iova + 1,
					   cmd->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
						   ? UIOMMU_DIRTY_NO_CLEAR
						   : 0,
					   uiommu_dirty_report_sink, &report);
	return 0;
}

struct ioctl_op {
	unsigned long cmd;
	uint32_t size;
	uint32_t min_size;
	int (*execute)(struct ucmd *ucmd);
};

#define offsetofend(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))
#define IOCTL_OP(_cmd, _fn, _struct, _last)                                                   \
	[_IOC_NR(_cmd) - IOMMUFD_CMD_BASE] = { _cmd, sizeof(_struct),                          \
					       offsetofend(_struct, _last), _fn }

static const struct ioctl_op ioctl_ops[] = {
	IOCTL_OP(IOMMU_DESTROY, iommufd_destroy, struct iommu_destroy, id),
	IOCTL_OP(IOMMU_IOAS_ALLOC, iommufd_ioas_alloc, struct iommu_ioas_alloc, out_ioas_id),
	IOCTL_OP(IOMMU_IOAS_ALLOW_IOVAS, iommufd_ioas_allow_iovas, struct iommu_ioas_allow_iovas,
		 allowed_iovas),
	IOCTL_OP(IOMMU_IOAS_COPY, iommufd_ioas_copy, struct iommu_ioas_copy, src_iova),
	IOCTL_OP(IOMMU_IOAS_IOVA_RANGES, iommufd_ioas_iova_ranges, struct iommu_ioas_iova_ranges,
		 out_iova_alignment),
	IOCTL_OP(IOMMU_IOAS_MAP, iommufd_ioas_map, struct iommu_ioas_map, iova),
	IOCTL_OP(IOMMU_IOAS_UNMAP, iommufd_ioas_unmap, struct iommu_ioas_unmap, length),
	IOCTL_OP(IOMMU_OPTION, iommufd_option, struct iommu_option, val64),
	IOCTL_OP(IOMMU_VFIO_IOAS, vfio_compat_ioas, struct iommu_vfio_ioas, __reserved),
	IOCTL_OP(IOMMU_HWPT_ALLOC, iommufd_hwpt_alloc, struct iommu_hwpt_alloc, __reserved),
	IOCTL_OP(IOMMU_GET_HW_INFO, iommufd_get_hw_info, struct iommu_hw_info, __reserved),
	IOCTL_OP(IOMMU_HWPT_SET_DIRTY_TRACKING, iommufd_hwpt_set_dirty_tracking,
		 struct iommu_hwpt_set_dirty_tracking, __reserved),
	IOCTL_OP(IOMMU_HWPT_GET_DIRTY_BITMAP, iommufd_hwpt_get_dirty_bitmap,
		 struct iommu_hwpt_get_dirty_bitmap, data),
	IOCTL_OP(IOMMU_HWPT_INVALIDATE, hwpt_invalidate, struct iommu_hwpt_invalidate, __reserved),
	IOCTL_OP(IOMMU_FAULT_QUEUE_ALLOC, fault_queue_alloc, struct iommu_fault_alloc,
		 out_fault_fd),
	IOCTL_OP(IOMMU_IOAS_MAP_FILE, iommufd_ioas_map_file, struct iommu_ioas_map_file, iova),
	IOCTL_OP(IOMMU_TEST_CMD, selftest_cmd, struct iommu_test_cmd, last),
};

/* copy_struct_from_user(): zero-extend short input, refuse non-zero tails. */
static int copy_struct_from_user(void *dst, size_t ksize, const void *src, size_t usize)
{
	size_t n = usize < ksize ? usize : ksize;

	memset(dst, 0, ksize);
	if (usize > ksize) {
		char tail[64];

		for (size_t off = ksize; off < usize; off += sizeof(tail)) {
			size_t len = usize - off < sizeof(tail) ? usize - off : sizeof(tail);

			if (uiommu__copy_from_user(tail, (const char *)src + off, len))
				return -EFAULT;
			for (size_t i = 0; i < len; i++)
				if (tail[i])
					return -E2BIG;
		}
	}
	return uiommu__copy_from_user(dst, src, n);
}

/*
 * Reads the u32 size and, in the same syscall, as much of the struct as lies
 * on the same page (readable if its first byte is): *@head bytes of @buf are
 * the caller's. A struct on the caller's stack needs no syscall, so only the
 * size is read and nothing past the caller's object. A fault here is the
 * kernel's get_user() failing: -EFAULT.
 */
static int read_head(union ucmd_buffer *buf, void *arg, uint32_t *user_size, size_t *head)
{
	uintptr_t pg = uiommu__page_size(), to_page_end = pg - ((uintptr_t)arg & (pg - 1));
	size_t n = to_page_end < sizeof(*buf) ? to_page_end : sizeof(*buf);

	if (n < sizeof(*user_size) || uiommu__user_on_stack(arg, sizeof(*user_size)))
		n = sizeof(*user_size);
	if (uiommu__copy_from_user(buf, arg, n)) {
		n = sizeof(*user_size);
		if (uiommu__copy_from_user(buf, arg, n))
			return -EFAULT;
	}
	memcpy(user_size, buf, sizeof(*user_size));
	*head = n;
	return 0;
}

static long iommufd_dispatch(struct uiommu_ctx *ctx, unsigned long cmd, void *arg)
{
	const struct ioctl_op *op;
	union ucmd_buffer buf;
	struct ucmd ucmd = { .ctx = ctx, .ubuffer = arg, .cmd = &buf };
	unsigned int nr = _IOC_NR(cmd);
	size_t head;
	int ret;

	ret = read_head(&buf, arg, &ucmd.user_size, &head);
	if (ret)
		return ret;
	op = &ioctl_ops[nr - IOMMUFD_CMD_BASE];
	if (op->cmd != cmd)
		return -ENOTTY;
	if (ucmd.user_size < op->min_size)
		return -EINVAL;
	/* Usually the first read already holds the whole struct: one syscall. */
	if (ucmd.user_size <= op->size && ucmd.user_size <= head)
		memset((char *)&buf + ucmd.user_size, 0, op->size - ucmd.user_size);
	else if ((ret = copy_struct_from_user(&buf, op->size, arg, ucmd.user_size)))
		return ret;
	return op->execute(&ucmd);
}

UIOMMU_EXPORT long uiommu_iommufd_ioctl(struct uiommu_ctx *ctx, unsigned long cmd, void *arg)
{
	unsigned int nr = _IOC_NR(cmd);
	long ret;

	if (_IOC_TYPE(cmd) != IOMMUFD_TYPE)
		return -ENOTTY;
	if (nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= ARRAY_SIZE(ioctl_ops))
		return vfio_compat_ioctl(ctx, cmd, arg);
	pthread_mutex_lock(&ctx->lock);
	ret = iommufd_dispatch(ctx, cmd, arg);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}
