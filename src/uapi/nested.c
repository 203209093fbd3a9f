// SPDX-License-Identifier: MIT
/*
 * Nested HWPTs: a user-managed stage-1 table over a kernel-managed parent,
 * and HWPT_INVALIDATE, which is how the user keeps the IOMMU's caches of that
 * stage 1 coherent.
 *
 * A nest parent is a paging HWPT allocated with NEST_PARENT (never an
 * automatic one). HWPT_ALLOC with pt_id = such a parent and driver data
 * (data_type, data_len, data_uptr) makes a nested HWPT: the generic checks
 * are here, in the kernel's order (flags other than FAULT_ID_VALID, or no
 * data: -EOPNOTSUPP; a parent that is automatic, not a nest parent or made by
 * another driver: -EINVAL; a device whose driver cannot nest: -EOPNOTSUPP),
 * then the device's driver (struct nest_ops) parses the data. The nested
 * HWPT is a user of its parent, so the parent cannot be destroyed first
 * (-EBUSY); a nested HWPT is never a parent itself (-EINVAL: pt_id is neither
 * an IOAS nor a paging HWPT).
 *
 * Emulation choice: the stage-1 table the data describes lives in guest
 * memory the emulated IOMMU does not walk. A nested HWPT therefore borrows
 * its parent's domain: a device attached to it translates through the
 * parent's page table (stage 1 is the identity), its reserved regions go to
 * the parent's IOAS, and its compatibility is checked against the parent's
 * format, as for attaching to the parent. Dirty tracking, dirty bitmaps and
 * the mock checks of paging HWPTs do not see nested HWPTs (-ENOENT), as in
 * the kernel, whose lookups for those take paging HWPTs only.
 *
 * HWPT_INVALIDATE hands the request array to the driver, which handles the
 * entries in order and stops at the first bad one; entry_num is written back
 * with the number handled, on failure too, so the caller knows where to
 * resume. Entries before the bad one stay handled: that is the kernel's
 * contract, not partial state.
 *
 * Driver data is copied as the kernel's iommu_copy_struct_from_user does:
 * the length must lie between the struct's first version (min_size) and its
 * current size, else -EINVAL (a longer struct is refused even with a zero
 * tail); a short one is zero-extended.
 */
#include <errno.h>
#include <string.h>

#include "uapi/uapi_internal.h"

/* Keeps a single call from holding the context for long (the kernel's cap). */
#define INVALIDATE_ENTRY_NUM_MAX (1u << 19)

int user_data_copy(void *dst, size_t size, size_t min_size, const struct user_data *src)
{
	if (src->len < min_size || src->len > size)
		return -EINVAL;
	memset(dst, 0, size);
	return uiommu__copy_from_user(dst, src->uptr, src->len);
}

int user_data_array_copy(void *dst, size_t size, size_t min_size,
			 const struct user_data_array *src, uint32_t index)
{
	struct user_data one = {
		.type = src->type,
		.len = src->entry_len,
		.uptr = (const char *)src->uptr + (size_t)src->entry_len * index,
	};

	if (index >= src->entry_num)
		return -EINVAL;
	return user_data_copy(dst, size, min_size, &one);
}

struct hwpt_obj *hwpt_nested_find(struct uiommu_ctx *ctx, uint32_t id)
{
	return (struct hwpt_obj *)obj_find(ctx, id, OBJ_HWPT_NESTED);
}

/* The generic checks of a nested allocation, before the driver sees the data. */
static int nested_check(const struct hwpt_obj *parent, const struct device_obj *dev,
			const struct iommu_hwpt_alloc *cmd)
{
	const struct nest_ops *ops = dev->hw->nest_ops;

	if ((cmd->flags & ~IOMMU_HWPT_FAULT_ID_VALID) || !cmd->data_len)
		return -EOPNOTSUPP;
	/* A parent made by another driver has other nest_ops (the kernel's owner check). */
	if (parent->auto_domain || !parent->nest_parent || parent->nest_ops != ops)
		return -EINVAL;
	/* A driver that cannot nest refuses a parent, as its allocator would. */
	if (!ops)
		return -EOPNOTSUPP;
	return 0;
}

/* What the nested HWPT takes over from its parent (see the top of the file). */
static void nested_borrow(struct hwpt_obj *hwpt, struct hwpt_obj *parent)
{
	hwpt->parent = parent;
	hwpt->ioas = parent->ioas;
	hwpt->domain = parent->domain;
	hwpt->cfg = parent->cfg;
	hwpt->aperture_start = parent->aperture_start;
	hwpt->aperture_last = parent->aperture_last;
	parent->obj.users++;
}

int hwpt_nested_alloc(struct uiommu_ctx *ctx, struct hwpt_obj *parent, struct device_obj *dev,
		      const struct iommu_hwpt_alloc *cmd, struct hwpt_obj **out)
{
	const struct user_data data = {
		.type = cmd->data_type,
		.len = cmd->data_len,
		.uptr = (const void *)(uintptr_t)cmd->data_uptr,
	};
	struct hwpt_obj *hwpt;
	int ret = nested_check(parent, dev, cmd);

	if (ret)
		return ret;
	hwpt = uiommu__zalloc(sizeof(*hwpt));
	if (!hwpt)
		return -ENOMEM;
	hwpt->nest_ops = dev->hw->nest_ops;
	ret = hwpt->nest_ops->alloc(&data, &hwpt->nest_state);
	if (ret)
		goto err_free;
	ret = obj_add(ctx, &hwpt->obj, OBJ_HWPT_NESTED);
	if (ret)
		goto err_free_state;
	nested_borrow(hwpt, parent);
	*out = hwpt;
	return 0;

err_free_state:
	hwpt->nest_ops->free(hwpt->nest_state);
err_free:
	uiommu__free(hwpt);
	return ret;
}

void hwpt_nested_fini(struct hwpt_obj *hwpt)
{
	hwpt->nest_ops->free(hwpt->nest_state);
	hwpt->parent->obj.users--;
}

/* The generic checks of HWPT_INVALIDATE, in the kernel's order. */
static int invalidate_check(const struct iommu_hwpt_invalidate *cmd)
{
	if (cmd->__reserved)
		return -EOPNOTSUPP;
	/* Without entries, data_uptr and entry_len are ignored: a data_type probe. */
	if (cmd->entry_num && (!cmd->data_uptr || !cmd->entry_len ||
			       cmd->entry_len > uiommu__page_size() ||
			       cmd->entry_num > INVALIDATE_ENTRY_NUM_MAX))
		return -EINVAL;
	return 0;
}

int hwpt_invalidate(struct ucmd *ucmd)
{
	struct iommu_hwpt_invalidate *cmd = ucmd->cmd;
	const struct user_data_array array = {
		.type = cmd->data_type,
		.entry_len = cmd->entry_len,
		.entry_num = cmd->entry_num,
		.uptr = (const void *)(uintptr_t)cmd->data_uptr,
	};
	struct hwpt_obj *hwpt;
	uint32_t done = 0;
	int ret = invalidate_check(cmd);

	if (!ret) {
		hwpt = hwpt_nested_find(ucmd->ctx, cmd->hwpt_id);
		ret = hwpt ? hwpt->nest_ops->invalidate(hwpt->nest_state, &array, &done)
			   : -ENOENT;
	}
	cmd->entry_num = done;
	if (ucmd_respond(ucmd, sizeof(*cmd)))
		return -EFAULT;
	return ret;
}
