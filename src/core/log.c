/* SPDX-License-Identifier: MIT */
/*
 * Logging through a process-wide callback. The library never writes to stdout
 * or stderr itself; without a callback every message is dropped. The callback
 * and its level are read with relaxed atomics so that a program may install it
 * while other threads run: a message may go to the old or the new callback.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/core_internal.h"

static _Atomic(uiommu_log_fn) log_fn;
static void *_Atomic log_opaque;
static atomic_int log_max_level;

UIOMMU_EXPORT void uiommu_set_log_fn(uiommu_log_fn fn, void *opaque,
				     enum uiommu_log_level max_level)
{
	atomic_store_explicit(&log_opaque, opaque, memory_order_relaxed);
	atomic_store_explicit(&log_max_level, (int)max_level, memory_order_relaxed);
	atomic_store_explicit(&log_fn, fn, memory_order_release);
}

void uiommu__log(enum uiommu_log_level level, const char *fmt, ...)
{
	uiommu_log_fn fn = atomic_load_explicit(&log_fn, memory_order_acquire);
	char msg[256];
	va_list ap;

	if (!fn || (int)level > atomic_load_explicit(&log_max_level, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(atomic_load_explicit(&log_opaque, memory_order_relaxed), level, msg);
}
