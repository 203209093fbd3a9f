// SPDX-License-Identifier: MIT
/*
 * Binary compatibility of the declared iommufd structs with the kernel's
 * uAPI: sizes and offsets as the kernel defines them (Linux 6.12 plus the
 * newer fields noted), checked at compile time. A mismatch breaks the build,
 * never a caller.
 */
#include <stddef.h>

#include <uiommu/uapi/iommufd.h>

#include "uapi/iommufd_test.h"

#define ABI(type, size) _Static_assert(sizeof(struct type) == (size), #type " size")
#define OFF(type, field, off)                                                                  \
	_Static_assert(offsetof(struct type, field) == (off), #type "." #field " offset")

ABI(iommu_destroy, 8);
OFF(iommu_destroy, id, 4);
ABI(iommu_ioas_alloc, 12);
OFF(iommu_ioas_alloc, out_ioas_id, 8);
ABI(iommu_iova_range, 16);
OFF(iommu_iova_range, last, 8);
ABI(iommu_ioas_iova_ranges, 32);
OFF(iommu_ioas_iova_ranges, num_iovas, 8);
OFF(iommu_ioas_iova_ranges, allowed_iovas, 16);
OFF(iommu_ioas_iova_ranges, out_iova_alignment, 24);
ABI(iommu_ioas_allow_iovas, 24);
OFF(iommu_ioas_allow_iovas, allowed_iovas, 16);
ABI(iommu_ioas_map, 40);
OFF(iommu_ioas_map, flags, 4);
OFF(iommu_ioas_map, ioas_id, 8);
OFF(iommu_ioas_map, user_va, 16);
OFF(iommu_ioas_map, length, 24);
OFF(iommu_ioas_map, iova, 32);
ABI(iommu_ioas_map_file, 40);
OFF(iommu_ioas_map_file, fd, 12);
OFF(iommu_ioas_map_file, start, 16);
OFF(iommu_ioas_map_file, iova, 32);
ABI(iommu_ioas_copy, 40);
OFF(iommu_ioas_copy, dst_ioas_id, 8);
OFF(iommu_ioas_copy, src_ioas_id, 12);
OFF(iommu_ioas_copy, length, 16);
OFF(iommu_ioas_copy, dst_iova, 24);
OFF(iommu_ioas_copy, src_iova, 32);
ABI(iommu_ioas_unmap, 24);
OFF(iommu_ioas_unmap, iova, 8);
OFF(iommu_ioas_unmap, length, 16);
ABI(iommu_option, 24);
OFF(iommu_option, op, 8);
OFF(iommu_option, __reserved, 10);
OFF(iommu_option, object_id, 12);
OFF(iommu_option, val64, 16);
ABI(iommu_vfio_ioas, 12);
OFF(iommu_vfio_ioas, op, 8);
OFF(iommu_vfio_ioas, __reserved, 10);
ABI(iommu_hwpt_alloc, 48);
OFF(iommu_hwpt_alloc, dev_id, 8);
OFF(iommu_hwpt_alloc, pt_id, 12);
OFF(iommu_hwpt_alloc, out_hwpt_id, 16);
OFF(iommu_hwpt_alloc, __reserved, 20);
OFF(iommu_hwpt_alloc, data_type, 24);
OFF(iommu_hwpt_alloc, data_len, 28);
OFF(iommu_hwpt_alloc, data_uptr, 32);
OFF(iommu_hwpt_alloc, fault_id, 40);
ABI(iommu_hw_info, 40);
OFF(iommu_hw_info, dev_id, 8);
OFF(iommu_hw_info, data_len, 12);
OFF(iommu_hw_info, data_uptr, 16);
OFF(iommu_hw_info, out_data_type, 24);
OFF(iommu_hw_info, out_max_pasid_log2, 28);
OFF(iommu_hw_info, __reserved, 29);
OFF(iommu_hw_info, out_capabilities, 32);
ABI(iommu_hwpt_set_dirty_tracking, 16);
OFF(iommu_hwpt_set_dirty_tracking, hwpt_id, 8);
ABI(iommu_hwpt_get_dirty_bitmap, 48);
OFF(iommu_hwpt_get_dirty_bitmap, flags, 8);
OFF(iommu_hwpt_get_dirty_bitmap, iova, 16);
OFF(iommu_hwpt_get_dirty_bitmap, length, 24);
OFF(iommu_hwpt_get_dirty_bitmap, page_size, 32);
OFF(iommu_hwpt_get_dirty_bitmap, data, 40);
ABI(iommu_hwpt_invalidate, 32);
OFF(iommu_hwpt_invalidate, data_type, 16);
OFF(iommu_hwpt_invalidate, entry_num, 24);
ABI(iommu_hwpt_pgfault, 40);
OFF(iommu_hwpt_pgfault, dev_id, 4);
OFF(iommu_hwpt_pgfault, pasid, 8);
OFF(iommu_hwpt_pgfault, grpid, 12);
OFF(iommu_hwpt_pgfault, perm, 16);
OFF(iommu_hwpt_pgfault, __reserved, 20);
OFF(iommu_hwpt_pgfault, addr, 24);
OFF(iommu_hwpt_pgfault, length, 32);
OFF(iommu_hwpt_pgfault, cookie, 36);
ABI(iommu_hwpt_page_response, 8);
OFF(iommu_hwpt_page_response, code, 4);
ABI(iommu_fault_alloc, 16);
OFF(iommu_fault_alloc, out_fault_id, 8);
OFF(iommu_fault_alloc, out_fault_fd, 12);
ABI(iommu_hwpt_selftest, 4);
ABI(iommu_hwpt_invalidate_selftest, 8);
OFF(iommu_hwpt_invalidate_selftest, iotlb_id, 4);
ABI(iommu_test_cmd, 72);
OFF(iommu_test_cmd, id, 8);
OFF(iommu_test_cmd, add_reserved.length, 24);
OFF(iommu_test_cmd, mock_domain.out_idev_id, 24);
OFF(iommu_test_cmd, mock_domain.dev_flags, 28);
OFF(iommu_test_cmd, check_map.uptr, 32);
OFF(iommu_test_cmd, check_refs.refs, 32);
OFF(iommu_test_cmd, access_pages.uptr, 40);
OFF(iommu_test_cmd, access_rw.flags, 40);
OFF(iommu_test_cmd, dirty.page_size, 40);
OFF(iommu_test_cmd, dirty.out_nr_dirty, 56);
OFF(iommu_test_cmd, check_iotlb.id, 16);
OFF(iommu_test_cmd, check_iotlb.iotlb, 20);
OFF(iommu_test_cmd, trigger_iopf.dev_id, 16);
OFF(iommu_test_cmd, trigger_iopf.pasid, 20);
OFF(iommu_test_cmd, trigger_iopf.grpid, 24);
OFF(iommu_test_cmd, trigger_iopf.perm, 28);
OFF(iommu_test_cmd, trigger_iopf.addr, 32);
OFF(iommu_test_cmd, last, 64);
_Static_assert(IOMMU_TEST_CMD == 0x3ba0, "IOMMU_TEST_CMD");
_Static_assert(IOMMU_DESTROY == 0x3b80, "IOMMU_DESTROY");
_Static_assert(IOMMU_HWPT_GET_DIRTY_BITMAP == 0x3b8c, "IOMMU_HWPT_GET_DIRTY_BITMAP");
_Static_assert(IOMMU_IOAS_MAP_FILE == 0x3b8f, "IOMMU_IOAS_MAP_FILE");
_Static_assert(IOMMU_HWPT_INVALIDATE == 0x3b8d, "IOMMU_HWPT_INVALIDATE");
_Static_assert(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e, "IOMMU_FAULT_QUEUE_ALLOC");
