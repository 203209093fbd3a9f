// SPDX-License-Identifier: MIT
/*
 * The kernel selftest's mock driver, nesting side: what a mock device does
 * with a nested HWPT (IOMMU_HWPT_DATA_SELFTEST) and the test op that looks
 * inside (MD_CHECK_IOTLB). Kept apart from selftest.c, which has the mock devices,
 * accesses and the paging checks.
 *
 * A mock nested domain has no stage-1 table, only an "IOTLB" of
 * MOCK_NESTED_DOMAIN_IOTLB_NUM u32 entries: allocation fills every entry with
 * the data's iotlb value, and MD_CHECK_IOTLB compares one entry with a value.
 * The state is only touched under the context lock, like every object of the
 * context.
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

static void mock_nested_free(void *state)
{
	uiommu__free(state);
}

const struct nest_ops mock_nest_ops = {
	.alloc = mock_nested_alloc,
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
