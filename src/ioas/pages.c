/* SPDX-License-Identifier: MIT */
/*
 * Pages objects and the process-wide pin registry.
 *
 * A pages object stands for the user memory given to one MAP (or the shared
 * mapping one MAP_FILE made): [uva, uva + length). Areas point into it at a
 * byte offset; COPY makes more areas, possibly in other IOASes, pointing into
 * the same object, which is freed (and its file mapping unmapped) with the
 * last reference.
 *
 * Pins. The kernel long-term pins the CPU pages that a domain maps or an
 * access pins, once per pages object however many domains or accesses use
 * them. We keep that as bookkeeping only (the memory is never touched): each
 * user of a range of CPU pages (an area mirrored into domains, one slice of an
 * access pin) puts a node keyed by CPU page numbers into its pages object's
 * users tree. A CPU page is pinned by a pages object while some node of that
 * object covers it, so uiommu_pin_refs(va) is the number of pages objects
 * whose users cover va's page. Objects with users sit in a global interval
 * tree keyed by their span of CPU pages, so the query visits only the objects
 * around va. Each insert or removal is O(log n + k), k being the nodes of the
 * same object that overlap (a handful in practice), and pinned_pages (the
 * number of distinct pinned CPU pages of the object) is kept up to date by
 * measuring the overlap before and after.
 *
 * Example: an area covering bytes 0x1800..0x47ff of VA (4 KiB pages) is
 * mirrored: node [1, 4]. An access then pins page 2: node [2, 2]; the union
 * is still 4 pages, pin_refs(0x2000) = 1 (one object), not 2.
 *
 * Locking: registry_lock protects the registry, every users tree and
 * pinned_pages. It nests inside IOAS locks. refs is atomic.
 */
#include <errno.h>
#include <sys/mman.h>

#include "ioas/ioas_internal.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uiommu_itree registry; /* zero-initialized = empty */
static uint64_t stats_mark;

static unsigned int page_shift(void)
{
	return (unsigned int)__builtin_ctzll(page_size());
}

int ioas_pages_create(uintptr_t uva, uint64_t length, bool writable, struct ioas_pages **out)
{
	struct ioas_pages *pages = uiommu__zalloc(sizeof(*pages));

	if (!pages)
		return -ENOMEM;
	pages->refs = 1;
	pages->uva = uva;
	pages->length = length;
	pages->writable = writable;
	uiommu_itree_init(&pages->users);
	*out = pages;
	return 0;
}

void ioas_pages_get(struct ioas_pages *pages)
{
	__atomic_add_fetch(&pages->refs, 1, __ATOMIC_RELAXED);
}

void ioas_pages_put(struct ioas_pages *pages)
{
	if (!pages || __atomic_sub_fetch(&pages->refs, 1, __ATOMIC_ACQ_REL))
		return;
	/* Every user is an area or an access pin, which hold references. */
	UIOMMU_BUG_ON(pages->users.count);
	if (pages->file_base)
		munmap(pages->file_base, pages->file_len);
	uiommu__free(pages);
}

/* CPU pages of [first, last] covered by the nodes of @tree. */
static uint64_t users_covered(const struct uiommu_itree *tree, uint64_t first, uint64_t last)
{
	struct uiommu_itree_node *n;
	uint64_t next = first, covered = 0;

	/* Nodes come by increasing start: count what each adds beyond @next. */
	uiommu_itree_for_each_overlap(n, tree, first, last) {
		uint64_t s = u64_max(n->start, next), l = u64_min(n->last, last);

		if (s > l)
			continue;
		covered += l - s + 1;
		next = l + 1;
	}
	return covered;
}

void ioas_pin_add(struct ioas_pages *pages, struct uiommu_itree_node *user, uintptr_t uva,
		  uintptr_t uva_last)
{
	uint64_t first = uva >> page_shift(), last = uva_last >> page_shift();

	user->start = first;
	user->last = last;
	pthread_mutex_lock(&registry_lock);
	pages->pinned_pages += (last - first + 1) - users_covered(&pages->users, first, last);
	uiommu_itree_insert(&pages->users, user);
	if (pages->users.count == 1) {
		pages->reg.start = pages->uva >> page_shift();
		pages->reg.last = (pages->uva + pages->length - 1) >> page_shift();
		uiommu_itree_insert(&registry, &pages->reg);
	}
	pthread_mutex_unlock(&registry_lock);
}

void ioas_pin_remove(struct ioas_pages *pages, struct uiommu_itree_node *user)
{
	uint64_t first = user->start, last = user->last;

	pthread_mutex_lock(&registry_lock);
	uiommu_itree_remove(&pages->users, user);
	pages->pinned_pages -= (last - first + 1) - users_covered(&pages->users, first, last);
	if (!pages->users.count)
		uiommu_itree_remove(&registry, &pages->reg);
	pthread_mutex_unlock(&registry_lock);
}

uint64_t ioas_pinned_pages(struct uiommu_ioas *ioas)
{
	struct uiommu_itree_node *n;
	uint64_t sum = 0, mark;

	/* The mark makes each pages object count once, however many areas share it. */
	pthread_mutex_lock(&registry_lock);
	mark = ++stats_mark;
	for (n = uiommu_itree_first(&ioas->areas); n; n = uiommu_itree_next(n)) {
		struct ioas_pages *pages = area_of(n)->pages;

		if (pages->stats_mark == mark)
			continue;
		pages->stats_mark = mark;
		sum += pages->pinned_pages;
	}
	pthread_mutex_unlock(&registry_lock);
	return sum;
}

UIOMMU_EXPORT uint64_t uiommu_pin_refs(const void *uva)
{
	uint64_t page = (uintptr_t)uva >> page_shift(), refs = 0;
	struct uiommu_itree_node *n;

	pthread_mutex_lock(&registry_lock);
	uiommu_itree_for_each_overlap(n, &registry, page, page) {
		struct ioas_pages *pages = container_of(n, struct ioas_pages, reg);

		if (uiommu_itree_iter_first(&pages->users, page, page))
			refs++;
	}
	pthread_mutex_unlock(&registry_lock);
	return refs;
}
