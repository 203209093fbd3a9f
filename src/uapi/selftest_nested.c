// SPDX-License-Identifier: MIT
/*
 * The kernel selftest's mock driver, nesting side: what a mock device does
 * with a nested HWPT (IOMMU_HWPT_DATA_SELFTEST), its invalidation entries
 * (IOMMU_HWPT_INVALIDATE_DATA_SELFTEST), the test op that looks inside
 * (MD_CHECK_IOTLB), and the one that makes a mock device take an IO page
 * fault (TRIGGER_IOPF). Kept apart from selftest.c, which has the mock
 * devices, accesses and the paging checks.
 *
 * A mock nested domain has no stage-1 table, only an "IOTLB" of
 * MOCK_NESTED_DOMAIN_IOTLB_NUM u32 entries: allocation fills every entry with
 * the data's iotlb value, an invalidation entry zeroes one entry (iotlb_id)
 * or all of them (IOMMU_TEST_INVALIDATE_FLAG_ALL, with iotlb_id still
 * checked), and MD_CHECK_IOTLB compares one entry with a value. For example,
 * after allocating with iotlb = 0xbadbeef and invalidating { flags 0,
 * iotlb_id 1 }, the entries read 0xbadbeef, 0, 0xbadbeef, 0xbadbeef.
 *
 * Per entry, in order: a length other than the struct's (8 bytes) is -EINVAL,
 * an unreadable entry -EFAULT, unknown flags -EOPNOTSUPP, iotlb_id above
 * MOCK_NESTED_DOMAIN_IOTLB_ID_MAX -EINVAL; a data_type other than the mock's
 * is -EINVAL before any entry (even with none). The state is only touched
 * under the context lock, like every object of the context.
 *
 * TRIGGER_IOPF: dev_id must be a bound device (-ENOENT) of the mock driver
 * (-EINVAL). The fault is the last of its group (LAST_PAGE), PASID-tagged
 * when pasid is not 0, and goes where fault.c routes it; the op succeeds
 * whether or not a queue took it, as the kernel's does.
 */
#include <errno.h>
#include <string.h>

#include "uapi/iommufd_test.h"
#include "uapi/uapi_internal.h"

#define offsetofend(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))

struct mock_nested {
	uint32_t iotlb[MOCK_NESTED_DOMAIN_IOTLB_NUM];
};

static int mock_nested_alloc(const struct user_data *data, void **state)
{
	struct iommu_hwpt_selftest cfg;
	struct mock_nested *mock;
	int ret;

	if (data->type != IOMMU_HWPT_DATA_SELFTEST)
		return -EOPNOTSUPP;
	ret = user_data_copy(&cfg, sizeof(cfg), offsetofend(struct iommu_hwpt_selftest, iotlb),
			     data);
	if (ret)
		return ret;
	mock = uiommu__zalloc(sizeof(*mock));
	if (!mock)
		return -ENOMEM;
	for (size_t i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++)
		mock->iotlb[i] = cfg.iotlb;
	*state = mock;
	return 0;
}

/* Entry @index of the request array, checked: 0, or the errno that stops the walk. */
static int mock_inv_entry(const struct user_data_array *array, uint32_t index,
			  struct iommu_hwpt_invalidate_selftest *inv)
{
	int ret = user_data_array_copy(inv, sizeof(*inv),
				       offsetofend(struct iommu_hwpt_invalidate_selftest, iotlb_id),
				       array, index);

	if (ret)
		return ret;
	if (inv->flags & ~IOMMU_TEST_INVALIDATE_FLAG_ALL)
		return -EOPNOTSUPP;
	if (inv->iotlb_id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX)
		return -EINVAL;
	return 0;
}

static int mock_nested_invalidate(void *state, const struct user_data_array *array,
				  uint32_t *done)
{
	struct mock_nested *mock = state;
	struct iommu_hwpt_invalidate_selftest inv;
	int ret = 0;

	*done = 0;
	if (array->type != IOMMU_HWPT_INVALIDATE_DATA_SELFTEST)
		return -EINVAL;
	for (uint32_t i = 0; i < array->entry_num; i++) {
		ret = mock_inv_entry(array, i, &inv);
		if (ret)
			break;
		if (inv.flags & IOMMU_TEST_INVALIDATE_FLAG_ALL)
			memset(mock->iotlb, 0, sizeof(mock->iotlb));
		else
			mock->iotlb[inv.iotlb_id] = 0;
		(*done)++;
	}
	return ret;
}

static void mock_nested_free(void *state)
{
	uiommu__free(state);
}

const struct nest_ops mock_nest_ops = {
	.alloc = mock_nested_alloc,
	.invalidate = mock_nested_invalidate,
	.free = mock_nested_free,
};

int selftest_check_iotlb(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	struct hwpt_obj *hwpt = hwpt_nested_find(ucmd->ctx, cmd->id);
	const struct mock_nested *mock;

	if (!hwpt)
		return -ENOENT;
	if (hwpt->nest_ops != &mock_nest_ops)
		return -EINVAL;
	mock = hwpt->nest_state;
	if (cmd->check_iotlb.id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX ||
	    mock->iotlb[cmd->check_iotlb.id] != cmd->check_iotlb.iotlb)
		return -EINVAL;
	return 0;
}

int selftest_trigger_iopf(struct ucmd *ucmd, struct iommu_test_cmd *cmd)
{
	struct device_obj *dev = device_find(ucmd->ctx, cmd->trigger_iopf.dev_id);
	struct iommu_hwpt_pgfault msg = {
		.flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE,
		.pasid = cmd->trigger_iopf.pasid,
		.grpid = cmd->trigger_iopf.grpid,
		.perm = cmd->trigger_iopf.perm,
		.addr = cmd->trigger_iopf.addr,
	};

	if (!dev)
		return -ENOENT;
	/* The mock driver's devices are the ones with its nesting ops. */
	if (dev->hw->nest_ops != &mock_nest_ops)
		return -EINVAL;
	if (msg.pasid)
		msg.flags |= IOMMU_PGFAULT_FLAGS_PASID_VALID;
	msg.dev_id = dev->obj.id;
	/* A fault no queue takes is answered and dropped; the op does not fail. */
	fault_report(dev, &msg);
	return 0;
}
