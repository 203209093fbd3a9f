/* SPDX-License-Identifier: MIT */
/*
 * IOVA space of an IOAS: alignment, reserved and allowed ranges, and where a
 * new area may go.
 *
 * Three sets live in the IOVA space: areas (an interval tree, disjoint),
 * reserved ranges (an interval tree, possibly overlapping, each with an
 * owner) and allowed ranges (a normalized iova_list). Invariants: no area
 * intersects a reserved range; no allowed range intersects a reserved range.
 * Allowed ranges only steer automatic allocation: a FIXED map may go outside.
 *
 * Alignment is the largest need of the IOAS's users (see
 * ioas_wanted_alignment()). Raising it is refused with -EADDRINUSE when an
 * existing area's iova, length or page offset would break it, since a domain
 * could not map such an area.
 *
 * Automatic allocation follows the kernel: the wanted alignment is the length
 * rounded up to a power of two, lowered to the lowest set bit of the source
 * address (so a 2 MiB-aligned buffer gets a 2 MiB-aligned IOVA and can use
 * large leaves) and capped at the THP size; the source's offset in its page is
 * OR-ed into the aligned start. The search visits the allowed ranges (or
 * [PAGE_SIZE, 2^64 - 1 - PAGE_SIZE] when none is set, so 0 and the top page
 * are never handed out) and takes the first hole between reserved ranges and
 * areas that fits. Like the kernel, a fit must also leave the start strictly
 * below the end of the range it is in.
 *
 * Example: 4 KiB pages, uva 0x7f0000201000, length 0x3000: alignment
 * roundup(0x3000) = 0x4000 lowered to 0x1000 (uva's lowest bit); an empty
 * IOAS gives IOVA 0x1000.
 *
 * All functions here run under ioas->lock.
 */
#include <errno.h>
#include <stdio.h>

#include "ioas/ioas_internal.h"

struct ioas_area *ioas_area_first(struct uiommu_ioas *ioas, uint64_t start, uint64_t last)
{
	return area_of(uiommu_itree_iter_first(&ioas->areas, start, last));
}

struct ioas_area *ioas_area_next(struct ioas_area *area, uint64_t start, uint64_t last)
{
	return area_of(uiommu_itree_iter_next(&area->node, start, last));
}

/* ---- contiguous walks ---- */

struct ioas_area *ioas_contig_first(struct uiommu_ioas *ioas, struct ioas_contig *it,
				    uint64_t start, uint64_t last)
{
	it->cur = start;
	it->last = last;
	it->area = ioas_area_first(ioas, start, start);
	return it->area;
}

struct ioas_area *ioas_contig_next(struct uiommu_ioas *ioas, struct ioas_contig *it)
{
	uint64_t area_last = it->area->node.last;

	if (area_last >= it->last)
		return NULL;
	it->cur = area_last + 1;
	it->area = ioas_area_first(ioas, it->cur, it->cur);
	return it->area;
}

bool ioas_contig_done(const struct ioas_contig *it)
{
	return it->area && it->area->node.last >= it->last;
}

/* ---- alignment ---- */

/* Every area conforms to @align (a power of two): -EADDRINUSE otherwise. */
int ioas_check_alignment(struct uiommu_ioas *ioas, uint64_t align)
{
	uint64_t mask = align - 1;
	struct uiommu_itree_node *n;

	for (n = uiommu_itree_first(&ioas->areas); n; n = uiommu_itree_next(n)) {
		const struct ioas_area *area = area_of(n);

		if ((n->start & mask) || (area_length(area) & mask) ||
		    ((area_uva(area) % page_size()) & mask))
			return -EADDRINUSE;
	}
	return 0;
}

static uint64_t domain_min_page(struct uiommu_domain *domain)
{
	uint64_t bitmap = uiommu_domain_pgsize_bitmap(domain);

	return bitmap & -bitmap;
}

/*
 * The largest of: 1 (PAGE_SIZE with huge pages disabled, as the kernel then
 * maps page by page), the smallest page of each domain, PAGE_SIZE if a
 * pinning access is attached (pins hand out whole CPU pages).
 */
uint64_t ioas_wanted_alignment(const struct uiommu_ioas *ioas)
{
	uint64_t align = ioas->huge_pages_disabled || ioas->nr_pin_accesses ? page_size() : 1;

	for (size_t i = 0; i < ioas->nr_domains; i++)
		align = u64_max(align, domain_min_page(ioas->domains[i]));
	return align;
}

/* Recomputes the alignment; raising it may fail with -EADDRINUSE (unchanged). */
int ioas_update_alignment(struct uiommu_ioas *ioas)
{
	uint64_t align = ioas_wanted_alignment(ioas);
	int rc;

	if (align > ioas->iova_alignment) {
		rc = ioas_check_alignment(ioas, align);
		if (rc)
			return rc;
	}
	ioas->iova_alignment = align;
	return 0;
}

/* ---- holes ---- */

/*
 * Walks the holes that the union of up to two interval trees leaves in
 * [cur, last], in ascending order.
 */
struct hole_iter {
	const struct uiommu_itree *trees[2];
	unsigned int nr_trees;
	uint64_t cur, last;
	bool done;
};

/* The node of any tree overlapping [cur, last] with the lowest start. */
static const struct uiommu_itree_node *hole_iter_lowest(const struct hole_iter *it)
{
	const struct uiommu_itree_node *best = NULL;

	for (unsigned int i = 0; i < it->nr_trees; i++) {
		const struct uiommu_itree_node *n =
			uiommu_itree_iter_first(it->trees[i], it->cur, it->last);

		if (n && (!best || n->start < best->start))
			best = n;
	}
	return best;
}

static bool hole_iter_next(struct hole_iter *it, uint64_t *start, uint64_t *last)
{
	while (!it->done) {
		const struct uiommu_itree_node *n = hole_iter_lowest(it);

		if (!n || n->start > it->cur) {
			*start = it->cur;
			*last = n ? n->start - 1 : it->last;
			if (n)
				it->cur = n->start;
			else
				it->done = true;
			return true;
		}
		/* it->cur is covered: move past the node covering it. */
		if (n->last >= it->last)
			it->done = true;
		else
			it->cur = n->last + 1;
	}
	return false;
}

/* ---- automatic allocation ---- */

static uint64_t thp_size(void)
{
	static uint64_t cached;
	unsigned long long v = 0;
	FILE *f;

	if (__atomic_load_n(&cached, __ATOMIC_RELAXED))
		return cached;
	f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (!is_pow2_u64(v) || v < page_size())
		v = page_size();
	__atomic_store_n(&cached, (uint64_t)v, __ATOMIC_RELAXED);
	return v;
}

static uint64_t roundup_pow2(uint64_t v)
{
	return v <= 1 ? 1 : 1ull << (64 - __builtin_clzll(v - 1));
}

struct alloc_req {
	uint64_t length;
	uint64_t align;
	uint64_t page_offset;
};

/*
 * Moves *start to the first aligned candidate of [*start, last] and says
 * whether the request fits there (the kernel's test, including its refusal
 * of a candidate equal to @last).
 */
static bool alloc_fits(const struct alloc_req *req, uint64_t *start, uint64_t last)
{
	uint64_t s;

	if (uiommu_check_add_overflow(*start, req->align - 1, &s))
		return false;
	s = (s & ~(req->align - 1)) | req->page_offset;
	if (s >= last || last - s < req->length - 1)
		return false;
	*start = s;
	return true;
}

/* First fit inside the allowed span [start, last]. */
static bool alloc_in_span(struct uiommu_ioas *ioas, const struct alloc_req *req, uint64_t start,
			  uint64_t last, uint64_t *iova)
{
	struct hole_iter it = { { &ioas->reserved, &ioas->areas }, 2, 0, last, false };
	uint64_t hs, hl;

	if (!alloc_fits(req, &start, last))
		return false;
	it.cur = start;
	while (hole_iter_next(&it, &hs, &hl)) {
		if (alloc_fits(req, &hs, hl)) {
			*iova = hs;
			return true;
		}
	}
	return false;
}

static int alloc_iova(struct uiommu_ioas *ioas, uint64_t hint, uint64_t length, uint64_t *iova)
{
	uint64_t lo = page_size(), hi = UINT64_MAX - page_size();
	struct alloc_req req = { length, 0, hint % page_size() };
	const struct uiommu_iova_list *allowed = &ioas->allowed;

	if (!length || length >= UINT64_MAX / 2)
		return -EOVERFLOW;
	req.align = roundup_pow2(length);
	if (hint)
		req.align = u64_min(req.align, hint & -hint);
	req.align = u64_min(req.align, thp_size());
	if (req.align < ioas->iova_alignment)
		return -EINVAL;
	if (!allowed->nr)
		return alloc_in_span(ioas, &req, lo, hi, iova) ? 0 : -ENOSPC;
	for (size_t i = 0; i < allowed->nr; i++) {
		uint64_t s = u64_max(allowed->ranges[i].start, lo);
		uint64_t l = u64_min(allowed->ranges[i].last, hi);

		if (s <= l && alloc_in_span(ioas, &req, s, l, iova))
			return 0;
	}
	return -ENOSPC;
}

/* FIXED: the kernel's checks, in its order. */
static int check_fixed_iova(struct uiommu_ioas *ioas, uint64_t iova, uint64_t length)
{
	uint64_t last;

	if (iova & (ioas->iova_alignment - 1))
		return -EINVAL;
	if (uiommu__range_last(iova, length, &last))
		return -EOVERFLOW;
	if (uiommu_itree_iter_first(&ioas->reserved, iova, last))
		return -EINVAL;
	if (uiommu_itree_iter_first(&ioas->areas, iova, last))
		return -EEXIST;
	return 0;
}

/*
 * Chooses (or checks, with @fixed) the IOVA of a new mapping of @length bytes
 * whose source address is @hint.
 */
int ioas_place_iova(struct uiommu_ioas *ioas, bool fixed, uint64_t *iova, uint64_t hint,
		    uint64_t length)
{
	if (!length || (length & (ioas->iova_alignment - 1)))
		return -EINVAL;
	if (fixed)
		return check_fixed_iova(ioas, *iova, length);
	return alloc_iova(ioas, hint, length, iova);
}

/* ---- reserved ranges ---- */

int ioas_reserve_locked(struct uiommu_ioas *ioas, const void *owner, uint64_t start,
			uint64_t last)
{
	struct ioas_reserved *res;

	if (start > last)
		return -EINVAL;
	if (uiommu_itree_iter_first(&ioas->areas, start, last) ||
	    uiommu_iova_list_overlaps(&ioas->allowed, start, last))
		return -EADDRINUSE;
	res = uiommu__zalloc(sizeof(*res));
	if (!res)
		return -ENOMEM;
	res->owner = owner;
	res->node.start = start;
	res->node.last = last;
	uiommu_itree_insert(&ioas->reserved, &res->node);
	return 0;
}

void ioas_unreserve_locked(struct uiommu_ioas *ioas, const void *owner)
{
	struct uiommu_itree_node *n = uiommu_itree_first(&ioas->reserved), *next;

	for (; n; n = next) {
		struct ioas_reserved *res = container_of(n, struct ioas_reserved, node);

		next = uiommu_itree_next(n);
		if (res->owner != owner)
			continue;
		uiommu_itree_remove(&ioas->reserved, n);
		uiommu__free(res);
	}
}

UIOMMU_EXPORT int uiommu_ioas_reserve(struct uiommu_ioas *ioas, const void *owner,
				      uint64_t start, uint64_t last)
{
	int rc;

	pthread_mutex_lock(&ioas->lock);
	rc = ioas_reserve_locked(ioas, owner, start, last);
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

UIOMMU_EXPORT void uiommu_ioas_unreserve(struct uiommu_ioas *ioas, const void *owner)
{
	pthread_mutex_lock(&ioas->lock);
	ioas_unreserve_locked(ioas, owner);
	pthread_mutex_unlock(&ioas->lock);
}

/* ---- allowed ranges ---- */

/* Builds the new list in @list: -EINVAL for a bad or overlapping entry. */
static int allowed_build(const struct uiommu_iova_range *ranges, size_t n,
			 struct uiommu_iova_list *list)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t s = ranges[i].start, l = ranges[i].last;
		int rc;

		/* Single-byte ranges are refused, as by the kernel. */
		if (s >= l || uiommu_iova_list_overlaps(list, s, l))
			return -EINVAL;
		rc = uiommu_iova_list_add(list, s, l);
		if (rc)
			return rc;
	}
	return 0;
}

static bool allowed_hits_reserved(struct uiommu_ioas *ioas, const struct uiommu_iova_list *list)
{
	for (size_t i = 0; i < list->nr; i++)
		if (uiommu_itree_iter_first(&ioas->reserved, list->ranges[i].start,
					    list->ranges[i].last))
			return true;
	return false;
}

UIOMMU_EXPORT int uiommu_ioas_allow_iovas(struct uiommu_ioas *ioas,
					  const struct uiommu_iova_range *ranges, size_t n)
{
	struct uiommu_iova_list list;
	int rc;

	uiommu_iova_list_init(&list);
	rc = allowed_build(ranges, n, &list);
	if (rc)
		goto out_free;
	pthread_mutex_lock(&ioas->lock);
	if (allowed_hits_reserved(ioas, &list)) {
		rc = -EADDRINUSE;
	} else {
		/* Swap: the old list is freed below. */
		struct uiommu_iova_list old = ioas->allowed;

		ioas->allowed = list;
		list = old;
	}
	pthread_mutex_unlock(&ioas->lock);
out_free:
	uiommu_iova_list_fini(&list);
	return rc;
}

/* ---- queries and options ---- */

UIOMMU_EXPORT int uiommu_ioas_iova_ranges(struct uiommu_ioas *ioas, struct uiommu_iova_range *out,
					  size_t cap, size_t *total, uint64_t *alignment)
{
	struct hole_iter it = { { &ioas->reserved, NULL }, 1, 0, UINT64_MAX, false };
	uint64_t s, l;
	size_t nr = 0;

	pthread_mutex_lock(&ioas->lock);
	while (hole_iter_next(&it, &s, &l)) {
		if (nr < cap)
			out[nr] = (struct uiommu_iova_range){ s, l };
		nr++;
	}
	if (alignment)
		*alignment = ioas->iova_alignment;
	pthread_mutex_unlock(&ioas->lock);
	if (total)
		*total = nr;
	return nr > cap ? -EMSGSIZE : 0;
}

UIOMMU_EXPORT int uiommu_ioas_set_huge_pages(struct uiommu_ioas *ioas, bool enable)
{
	int rc = 0;

	pthread_mutex_lock(&ioas->lock);
	if (enable) {
		ioas->huge_pages_disabled = false;
		rc = ioas_update_alignment(ioas); /* only lowers: cannot fail */
	} else if (!ioas->huge_pages_disabled) {
		/* Domains would already hold large leaves for these areas. */
		if (ioas->nr_domains && ioas->areas.count) {
			rc = -EINVAL;
			goto out_unlock;
		}
		ioas->huge_pages_disabled = true;
		rc = ioas_update_alignment(ioas);
		if (rc)
			ioas->huge_pages_disabled = false;
	}
out_unlock:
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

UIOMMU_EXPORT bool uiommu_ioas_huge_pages(struct uiommu_ioas *ioas)
{
	bool enabled;

	pthread_mutex_lock(&ioas->lock);
	enabled = !ioas->huge_pages_disabled;
	pthread_mutex_unlock(&ioas->lock);
	return enabled;
}
