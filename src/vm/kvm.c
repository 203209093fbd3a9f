// SPDX-License-Identifier: MIT
/*
 * Small KVM helpers shared by the VM and the KVM dirty sources: opening
 * /dev/kvm and asking it for capabilities. Errors are negative errnos.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <uiommu/vm.h>

#include "vm/vm_internal.h"

int kvm_open(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		close(fd);
		return -ENODEV;
	}
	return fd;
}

int kvm_check_cap(int fd, long cap)
{
	int ret = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	return ret < 0 ? -errno : ret;
}

UIOMMU_EXPORT bool uiommu_kvm_available(void)
{
	int fd = kvm_open();

	if (fd < 0)
		return false;
	close(fd);
	return true;
}
