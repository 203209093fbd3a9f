/* SPDX-License-Identifier: MIT */
/*
 * Logging: the library never prints; it hands messages to a callback.
 */
#ifndef UIOMMU_LOG_H
#define UIOMMU_LOG_H

#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

enum uiommu_log_level {
	UIOMMU_LOG_ERR = 3,
	UIOMMU_LOG_WARN = 4,
	UIOMMU_LOG_INFO = 6,
	UIOMMU_LOG_DEBUG = 7,
};

typedef void (*uiommu_log_fn)(void *opaque, enum uiommu_log_level level, const char *msg);

/**
 * uiommu_set_log_fn() - Route library messages to @fn.
 * @fn: callback, or NULL to drop every message (the default)
 * @opaque: passed back to @fn
 * @max_level: messages above this level are dropped before formatting
 *
 * Process-wide. The callback may run on any thread that calls into the library.
 */
UIOMMU_EXPORT void uiommu_set_log_fn(uiommu_log_fn fn, void *opaque,
				     enum uiommu_log_level max_level);

UIOMMU_END_DECLS

#endif
