/* SPDX-License-Identifier: MIT */
/* Private declarations of the vm layer. */
#ifndef UIOMMU_VM_INTERNAL_H
#define UIOMMU_VM_INTERNAL_H

/* kvm.c */
int kvm_open(void);                 /* fd, or negative errno */
int kvm_check_cap(int fd, long cap); /* the capability's value, or negative errno */

#endif
