/* SPDX-License-Identifier: MIT */
/*
 * Shared macros of the public headers: symbol export and C++ guards.
 */
#ifndef UIOMMU_COMPILER_H
#define UIOMMU_COMPILER_H

#define UIOMMU_EXPORT __attribute__((visibility("default")))

#ifdef __cplusplus
#define UIOMMU_BEGIN_DECLS extern "C" {
#define UIOMMU_END_DECLS }
#else
#define UIOMMU_BEGIN_DECLS
#define UIOMMU_END_DECLS
#endif

#endif
