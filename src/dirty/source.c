// SPDX-License-Identifier: MIT
/*
 * Dirty sources: the wrappers every caller goes through, and the software
 * dirty log source ("vmm", "soft").
 *
 * The wrappers own src->started and check the state, so that an
 * implementation's start runs only on a stopped source, its collect only on a
 * started one, and its stop only once. They are called by one controlling
 * thread at a time (see dirty_source.h); started is therefore a plain bool.
 *
 * The log source is a dirty_log (log.c) behind a tracking flag. Writers call
 * uiommu_dirty_log_mark() from any thread: it reads the flag (acquire) and
 * marks only while tracking, so marks made before start or after stop are
 * dropped. Start clears the log before it raises the flag, so a session never
 * reports what a previous one left behind; a mark that read the flag just
 * before stop may still land after it, and the next start's clear drops it.
 * Collect is a dirty_log_take() into the caller's bitmap.
 *
 * Example: create("vmm", 512), start, mark(0x2000, 0x1001) marks pages 2..3,
 * collect ORs bits 2 and 3 into the bitmap and adds 2 to *pages.
 */
#include <errno.h>
#include <string.h>

#include <uiommu/dirty_source.h>

#include "core/core_internal.h"
#include "dirty/dirty_internal.h"

#define LOG_NAME_MAX 32

struct log_source {
	struct uiommu_dirty_source base;
	struct dirty_log log;
	bool tracking; /* read by markers with acquire, written by the controller */
	char name[LOG_NAME_MAX];
};

UIOMMU_EXPORT int uiommu_dirty_source_start(struct uiommu_dirty_source *src)
{
	int rc;

	if (!src)
		return -EINVAL;
	if (src->started)
		return -EBUSY;
	rc = src->ops->start(src);
	if (!rc)
		src->started = true;
	return rc;
}

UIOMMU_EXPORT int uiommu_dirty_source_collect(struct uiommu_dirty_source *src, uint64_t *bitmap,
					      uint64_t *pages)
{
	uint64_t n = 0;
	int rc;

	if (!src || !bitmap || !src->started)
		return -EINVAL;
	rc = src->ops->collect(src, bitmap, &n);
	if (pages)
		*pages += n;
	return rc;
}

UIOMMU_EXPORT void uiommu_dirty_source_stop(struct uiommu_dirty_source *src)
{
	if (!src || !src->started)
		return;
	src->ops->stop(src);
	src->started = false;
}

UIOMMU_EXPORT void uiommu_dirty_source_destroy(struct uiommu_dirty_source *src)
{
	if (!src)
		return;
	uiommu_dirty_source_stop(src);
	src->ops->destroy(src);
}

static struct log_source *to_log(struct uiommu_dirty_source *src)
{
	return container_of(src, struct log_source, base);
}

static int log_start(struct uiommu_dirty_source *src)
{
	struct log_source *ls = to_log(src);

	dirty_log_clear(&ls->log);
	__atomic_store_n(&ls->tracking, true, __ATOMIC_RELEASE);
	return 0;
}

static int log_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	*pages += dirty_log_take(&to_log(src)->log, bitmap);
	return 0;
}

static void log_stop(struct uiommu_dirty_source *src)
{
	__atomic_store_n(&to_log(src)->tracking, false, __ATOMIC_RELEASE);
}

static void log_destroy(struct uiommu_dirty_source *src)
{
	struct log_source *ls = to_log(src);

	dirty_log_fini(&ls->log);
	uiommu__free(ls);
}

static const struct uiommu_dirty_source_ops log_ops = {
	.start = log_start,
	.collect = log_collect,
	.stop = log_stop,
	.destroy = log_destroy,
};

UIOMMU_EXPORT int uiommu_dirty_log_source_create(const char *name, uint64_t npages,
						 struct uiommu_dirty_source **out)
{
	struct log_source *ls;
	size_t len = name ? strlen(name) : 0;
	int rc;

	if (!len || len >= LOG_NAME_MAX || !npages || !out)
		return -EINVAL;
	ls = uiommu__zalloc(sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	rc = dirty_log_init(&ls->log, npages, true);
	if (rc)
		goto err_free_source;
	memcpy(ls->name, name, len + 1);
	ls->base.ops = &log_ops;
	ls->base.name = ls->name;
	ls->base.npages = npages;
	*out = &ls->base;
	return 0;

err_free_source:
	uiommu__free(ls);
	return rc;
}

UIOMMU_EXPORT void uiommu_dirty_log_mark(struct uiommu_dirty_source *src, uint64_t gpa,
					 uint64_t len)
{
	struct log_source *ls = to_log(src);
	uint64_t first = gpa >> 12, last;

	if (src->ops != &log_ops || !len || !__atomic_load_n(&ls->tracking, __ATOMIC_ACQUIRE))
		return;
	if (first >= src->npages)
		return;
	/* A range that wraps the 64-bit space runs to the end of the log. */
	if (uiommu_check_add_overflow(gpa, len - 1, &last))
		last = UINT64_MAX;
	last = u64_min(last >> 12, src->npages - 1);
	dirty_log_mark(&ls->log, first, last);
}
