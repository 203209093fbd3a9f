/* SPDX-License-Identifier: MIT */
/*
 * The IOAS object: areas, and the map, copy and unmap operations on them.
 *
 * An area maps [iova, last] to a slice of a pages object (pages.c). MAP makes
 * a pages object for the user range and one area over all of it; MAP_FILE
 * first maps the file range shared and lets the pages object own that
 * mapping; COPY takes references on the pages objects behind a contiguous run
 * of source areas and makes one destination area per source slice, so both
 * IOASes share the memory (and its pins).
 *
 * Every mapping goes through map_slices(): validation first (IOVA placement,
 * permissions, page offset against the alignment, user memory when domains
 * are attached), then allocation, then the areas enter the tree and are
 * mirrored into every domain (domain.c). A failure at any step undoes the
 * previous ones, so on error nothing changed.
 *
 * Pin-on-demand, as in the kernel: user memory is looked at (never touched)
 * only when something pins it: a map while domains are attached, a domain
 * attached to a populated IOAS, an access pin. A domain-less map of memory
 * that does not exist succeeds.
 *
 * Unmap removes whole areas only. An area that an access has pinned is not
 * removed under the access's feet: the accesses' unmap callbacks are called
 * (without the lock, since they unpin through the same IOAS), then the area
 * is looked up again; pins still there mean -EBUSY. Meanwhile the area is
 * marked so that new pins and reads/writes of it fail.
 *
 * Cut (VFIO type1 v1 only): an area may be split in two that share its
 * pages, so that a partial unmap becomes a whole one. Domains keep their
 * mappings (leaves are small when huge pages are disabled, which the cut
 * requires with domains attached); only the area and pin bookkeeping split.
 *
 * Locking: ioas->lock protects the IOAS; it is held across a whole operation
 * except around callbacks. COPY never holds two IOAS locks: it collects
 * references under the source's lock, then maps under the destination's.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ioas/ioas_internal.h"

#define MAP_FLAGS_ALL UIOMMU_IOAS_MAP_FIXED_IOVA
#define PROT_ALL (UIOMMU_PROT_READ | UIOMMU_PROT_WRITE)

UIOMMU_EXPORT int uiommu_ioas_create(struct uiommu_ioas **out)
{
	struct uiommu_ioas *ioas = uiommu__zalloc(sizeof(*ioas));

	if (!ioas)
		return -ENOMEM;
	pthread_mutex_init(&ioas->lock, NULL);
	pthread_cond_init(&ioas->cb_done, NULL);
	uiommu_itree_init(&ioas->areas);
	uiommu_itree_init(&ioas->spans);
	uiommu_itree_init(&ioas->reserved);
	uiommu_iova_list_init(&ioas->allowed);
	ioas->iova_alignment = 1;
	ioas->accesses.next = ioas->accesses.prev = &ioas->accesses;
	*out = ioas;
	return 0;
}

/* Unmaps @area from every domain, drops its pins and frees it. */
static void area_remove(struct uiommu_ioas *ioas, struct ioas_area *area)
{
	ioas_area_unfill_domains(ioas, area);
	ioas_area_unpin_domains(area);
	ioas_span_del(ioas, area);
	uiommu_itree_remove(&ioas->areas, &area->node);
	ioas->mapped_bytes -= area_length(area);
	ioas_pages_put(area->pages);
	uiommu__free(area);
}

UIOMMU_EXPORT void uiommu_ioas_destroy(struct uiommu_ioas *ioas)
{
	struct uiommu_itree_node *n;

	if (!ioas)
		return;
	pthread_mutex_lock(&ioas->lock);
	ioas_detach_accesses(ioas);
	while ((n = uiommu_itree_first(&ioas->areas)))
		area_remove(ioas, area_of(n));
	while ((n = uiommu_itree_first(&ioas->reserved))) {
		uiommu_itree_remove(&ioas->reserved, n);
		uiommu__free(container_of(n, struct ioas_reserved, node));
	}
	pthread_mutex_unlock(&ioas->lock);
	uiommu_iova_list_fini(&ioas->allowed);
	uiommu__free(ioas->domains);
	pthread_cond_destroy(&ioas->cb_done);
	pthread_mutex_destroy(&ioas->lock);
	uiommu__free(ioas);
}

int ioas_check_user(const struct ioas_area *area)
{
	return uiommu__user_check((const void *)area_uva(area), area_length(area),
				  area->pages->writable);
}

/* ---- map_slices ---- */

struct map_req {
	bool fixed;
	uint64_t iova;   /* in with fixed, out */
	uint64_t hint;   /* source address steering automatic allocation */
	uint64_t length; /* sum of the slices */
	uint32_t prot;
	const struct ioas_slice *slices;
	size_t nr;
};

static int slices_check(struct uiommu_ioas *ioas, const struct map_req *req)
{
	for (size_t i = 0; i < req->nr; i++) {
		const struct ioas_slice *sl = &req->slices[i];
		uintptr_t uva = sl->pages->uva + sl->pages_off;

		if ((req->prot & UIOMMU_PROT_WRITE) && !sl->pages->writable)
			return -EPERM;
		if ((uva % page_size()) & (ioas->iova_alignment - 1))
			return -EINVAL;
	}
	for (size_t i = 0; ioas->nr_domains && i < req->nr; i++) {
		const struct ioas_slice *sl = &req->slices[i];
		int rc = uiommu__user_check((const void *)(sl->pages->uva + sl->pages_off),
					    sl->length, sl->pages->writable);

		if (rc)
			return rc;
	}
	return 0;
}

static int areas_alloc(const struct map_req *req, struct ioas_area **areas)
{
	uint64_t iova = req->iova;

	for (size_t i = 0; i < req->nr; i++) {
		areas[i] = uiommu__zalloc(sizeof(**areas));
		if (!areas[i]) {
			while (i--)
				uiommu__free(areas[i]);
			return -ENOMEM;
		}
		areas[i]->pages = req->slices[i].pages;
		areas[i]->pages_off = req->slices[i].pages_off;
		areas[i]->prot = req->prot;
		areas[i]->node.start = iova;
		areas[i]->node.last = iova + req->slices[i].length - 1;
		iova += req->slices[i].length;
	}
	return 0;
}

/* Inserts the areas and mirrors them; on failure takes them all out again. */
static int areas_insert(struct uiommu_ioas *ioas, struct ioas_area **areas, size_t nr)
{
	size_t i, filled;
	int rc;

	for (i = 0; i < nr; i++) {
		uiommu_itree_insert(&ioas->areas, &areas[i]->node);
		ioas_span_add(ioas, areas[i]);
	}
	for (filled = 0; filled < nr; filled++) {
		rc = ioas_area_fill_domains(ioas, areas[filled]);
		if (rc)
			goto err_unfill;
	}
	for (i = 0; i < nr; i++) {
		ioas_pages_get(areas[i]->pages);
		ioas->mapped_bytes += area_length(areas[i]);
		if (ioas->nr_domains)
			ioas_area_pin_domains(areas[i]);
	}
	return 0;

err_unfill:
	while (filled--)
		ioas_area_unfill_domains(ioas, areas[filled]);
	for (i = 0; i < nr; i++) {
		ioas_span_del(ioas, areas[i]);
		uiommu_itree_remove(&ioas->areas, &areas[i]->node);
	}
	return rc;
}

static int map_slices_locked(struct uiommu_ioas *ioas, struct map_req *req)
{
	struct ioas_area *one, **areas = &one;
	int rc;

	rc = ioas_place_iova(ioas, req->fixed, &req->iova, req->hint, req->length);
	if (rc)
		return rc;
	rc = slices_check(ioas, req);
	if (rc)
		return rc;
	if (req->nr > 1) {
		areas = uiommu__calloc(req->nr, sizeof(*areas));
		if (!areas)
			return -ENOMEM;
	}
	rc = areas_alloc(req, areas);
	if (rc)
		goto out_free_array;
	rc = areas_insert(ioas, areas, req->nr);
	if (rc) {
		for (size_t i = 0; i < req->nr; i++)
			uiommu__free(areas[i]);
	}
out_free_array:
	if (areas != &one)
		uiommu__free(areas);
	return rc;
}

static int map_slices(struct uiommu_ioas *ioas, struct map_req *req)
{
	int rc;

	pthread_mutex_lock(&ioas->lock);
	rc = map_slices_locked(ioas, req);
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

/* ---- map, map_file ---- */

static int check_args(uint32_t prot, uint32_t flags)
{
	if ((flags & ~MAP_FLAGS_ALL) || (prot & ~PROT_ALL) || !(prot & PROT_ALL))
		return -EINVAL;
	return 0;
}

/* The kernel's checks of a user range, in its order. */
static int check_user_range(uint64_t start, uint64_t length)
{
	uint64_t end;

	if (uiommu_check_add_overflow(start, length, &end))
		return -EOVERFLOW;
	if (!length || length > SIZE_MAX - page_size())
		return -EINVAL;
	return 0;
}

/* Maps all of @pages; the caller's reference is dropped whatever happens. */
static int map_pages(struct uiommu_ioas *ioas, struct ioas_pages *pages, uint64_t hint,
		     uint32_t prot, uint32_t flags, uint64_t *iova)
{
	struct ioas_slice slice = { pages, 0, pages->length };
	bool fixed = flags & UIOMMU_IOAS_MAP_FIXED_IOVA;
	struct map_req req = { .fixed = fixed,
			       .iova = fixed ? *iova : 0,
			       .hint = hint,
			       .length = pages->length,
			       .prot = prot,
			       .slices = &slice,
			       .nr = 1 };
	int rc = map_slices(ioas, &req);

	if (!rc)
		*iova = req.iova;
	ioas_pages_put(pages);
	return rc;
}

UIOMMU_EXPORT int uiommu_ioas_map(struct uiommu_ioas *ioas, void *uva, uint64_t length,
				  uint32_t prot, uint32_t flags, uint64_t *iova)
{
	struct ioas_pages *pages;
	int rc;

	rc = check_args(prot, flags);
	if (!rc)
		rc = check_user_range((uintptr_t)uva, length);
	if (!rc)
		rc = ioas_pages_create((uintptr_t)uva, length, prot & UIOMMU_PROT_WRITE, &pages);
	if (rc)
		return rc;
	return map_pages(ioas, pages, (uintptr_t)uva, prot, flags, iova);
}

/* Maps the file range shared; the pages object will own the mapping. */
static int file_pages_create(int fd, uint64_t start, uint64_t length, uint32_t prot,
			     struct ioas_pages **out)
{
	uint64_t off = start & ~(uint64_t)(page_size() - 1);
	size_t len = (size_t)((start - off + length + page_size() - 1) & ~(page_size() - 1));
	int mprot = PROT_READ | (prot & UIOMMU_PROT_WRITE ? PROT_WRITE : 0);
	void *base;
	int rc;

	base = mmap(NULL, len, mprot, MAP_SHARED, fd, (off_t)off);
	if (base == MAP_FAILED)
		return errno == EACCES ? -EPERM : errno == ENOMEM ? -ENOMEM : -EINVAL;
	rc = ioas_pages_create((uintptr_t)base + (start - off), length, prot & UIOMMU_PROT_WRITE,
			       out);
	if (rc) {
		munmap(base, len);
		return rc;
	}
	(*out)->file_base = base;
	(*out)->file_len = len;
	return 0;
}

/* NOLINTNEXTLINE(readability-function-size): 7 parameters fixed by the public API */
UIOMMU_EXPORT int uiommu_ioas_map_file(struct uiommu_ioas *ioas, int fd, uint64_t start,
				       uint64_t length, uint32_t prot, uint32_t flags,
				       uint64_t *iova)
{
	struct ioas_pages *pages;
	struct stat st;
	int rc;

	rc = check_args(prot, flags);
	if (rc)
		return rc;
	if (fd < 0 || fstat(fd, &st))
		return -EBADF;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	rc = check_user_range(start, length);
	if (!rc && (length > (uint64_t)INT64_MAX || start > (uint64_t)INT64_MAX - length))
		rc = -EOVERFLOW; /* beyond what off_t can address */
	if (!rc)
		rc = file_pages_create(fd, start, length, prot, &pages);
	if (rc)
		return rc;
	return map_pages(ioas, pages, start, prot, flags, iova);
}

/* ---- copy ---- */

static void slices_put(struct ioas_slice *slices, size_t nr)
{
	for (size_t i = 0; i < nr; i++)
		ioas_pages_put(slices[i].pages);
	uiommu__free(slices);
}

/* Counts the source slices: -ENOENT unless areas cover [start, last] without holes. */
static int copy_count(struct uiommu_ioas *src, uint64_t start, uint64_t last, size_t *nr)
{
	struct ioas_contig it;
	struct ioas_area *area;

	*nr = 0;
	for (area = ioas_contig_first(src, &it, start, last); area;
	     area = ioas_contig_next(src, &it))
		++*nr;
	return ioas_contig_done(&it) ? 0 : -ENOENT;
}

/* References the pages behind [start, last] of @src, one slice per area. */
static int copy_get_slices(struct uiommu_ioas *src, uint64_t start, uint64_t last,
			   struct ioas_slice **out, size_t *nr)
{
	struct ioas_slice *slices = NULL;
	struct ioas_contig it;
	struct ioas_area *area;
	size_t i = 0;
	int rc;

	pthread_mutex_lock(&src->lock);
	rc = copy_count(src, start, last, nr);
	if (!rc) {
		slices = uiommu__calloc(*nr, sizeof(*slices));
		rc = slices ? 0 : -ENOMEM;
	}
	for (area = rc ? NULL : ioas_contig_first(src, &it, start, last); area;
	     area = ioas_contig_next(src, &it), i++) {
		slices[i].pages = area->pages;
		slices[i].pages_off = area->pages_off + (it.cur - area->node.start);
		slices[i].length = ioas_contig_slice_last(&it) - it.cur + 1;
		ioas_pages_get(area->pages);
	}
	pthread_mutex_unlock(&src->lock);
	*out = slices;
	return rc;
}

/* NOLINTNEXTLINE(readability-function-size): 7 parameters fixed by the public API */
UIOMMU_EXPORT int uiommu_ioas_copy(struct uiommu_ioas *dst, uint64_t *dst_iova,
				   struct uiommu_ioas *src, uint64_t src_iova, uint64_t length,
				   uint32_t prot, uint32_t flags)
{
	bool fixed = flags & UIOMMU_IOAS_MAP_FIXED_IOVA;
	struct map_req req = { .fixed = fixed,
			       .iova = fixed ? *dst_iova : 0,
			       .length = length,
			       .prot = prot };
	struct ioas_slice *slices;
	uint64_t last;
	int rc;

	rc = check_args(prot, flags);
	if (rc)
		return rc;
	if (!length)
		return -EINVAL;
	if (uiommu__range_last(src_iova, length, &last))
		return -EOVERFLOW;
	rc = copy_get_slices(src, src_iova, last, &slices, &req.nr);
	if (rc)
		return rc;
	req.slices = slices;
	req.hint = slices[0].pages->uva + slices[0].pages_off;
	rc = map_slices(dst, &req);
	if (!rc)
		*dst_iova = req.iova;
	slices_put(slices, req.nr);
	return rc;
}

/* ---- unmap ---- */

/*
 * Removes the areas inside [start, last] in ascending order; see the top of
 * the file for areas that accesses pinned.
 */
static int unmap_range(struct uiommu_ioas *ioas, uint64_t start, uint64_t last,
		       uint64_t *unmapped)
{
	struct ioas_area *area;
	bool notified = false;
	uint64_t notified_iova = 0;
	int rc = 0;

	*unmapped = 0;
	pthread_mutex_lock(&ioas->lock);
	while ((area = ioas_area_first(ioas, start, last))) {
		uint64_t a_start = area->node.start, a_last = area->node.last;

		if (a_start < start || a_last > last) {
			rc = -ENOENT;
			break;
		}
		if (area->access_pins) {
			if (notified && notified_iova == a_start) {
				area->prevent_access = false;
				rc = -EBUSY;
				break;
			}
			area->prevent_access = true;
			notified = true;
			notified_iova = a_start;
			/* Areas mapped below meanwhile are not ours to remove. */
			start = a_start;
			/* The area may be gone after this: look it up again. */
			ioas_notify_unmap(ioas, a_start, a_last - a_start + 1);
			continue;
		}
		*unmapped += a_last - a_start + 1;
		area_remove(ioas, area);
		if (a_last >= last)
			break;
		start = a_last + 1;
	}
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

UIOMMU_EXPORT int uiommu_ioas_unmap(struct uiommu_ioas *ioas, uint64_t iova, uint64_t length,
				    uint64_t *unmapped)
{
	uint64_t last, bytes = 0;
	bool all = !iova && length == UINT64_MAX;
	int rc;

	if (!all && !length)
		return -EINVAL;
	if (all)
		last = UINT64_MAX;
	else if (uiommu__range_last(iova, length, &last))
		return -EOVERFLOW;
	/* An empty range is not an error here: iommufd's ioctl makes it -ENOENT,
	 * VFIO's UNMAP answers 0. */
	rc = unmap_range(ioas, iova, last, &bytes);
	if (unmapped)
		*unmapped = bytes;
	return rc;
}

/* ---- cut (VFIO type1 v1) ---- */

/* Whether @area may be split so that one part ends at @last, as the kernel has it. */
static int split_check(struct uiommu_ioas *ioas, const struct ioas_area *area, uint64_t last)
{
	uint64_t mask = ioas->iova_alignment - 1, next = last + 1;

	if (area->prevent_access)
		return -EBUSY;
	if ((next & mask) || ((area_iova_to_uva(area, next) % page_size()) & mask))
		return -EINVAL;
	/*
	 * Access pins are recorded per area and cannot be split; domains with
	 * huge pages enabled may hold leaves that straddle the cut.
	 */
	if (area->access_pins || (ioas->nr_domains && !ioas->huge_pages_disabled))
		return -EINVAL;
	return 0;
}

/* Splits @area into [start, last] and [last + 1, end], which share the pages. */
static int area_split(struct uiommu_ioas *ioas, struct ioas_area *area, uint64_t last)
{
	struct ioas_area *rhs;
	int rc;

	/* The kernel leaves a cut at the first byte alone, too. */
	if (last == area->node.start || last == area->node.last)
		return 0;
	rc = split_check(ioas, area, last);
	if (rc)
		return rc;
	rhs = uiommu__zalloc(sizeof(*rhs));
	if (!rhs)
		return -ENOMEM;
	ioas_area_unpin_domains(area);
	uiommu_itree_remove(&ioas->areas, &area->node);
	*rhs = *area;
	rhs->span_head = false; /* the left part keeps the span: coverage is unchanged */
	rhs->node.start = last + 1;
	rhs->pages_off = area->pages_off + (rhs->node.start - area->node.start);
	area->node.last = last;
	uiommu_itree_insert(&ioas->areas, &area->node);
	uiommu_itree_insert(&ioas->areas, &rhs->node);
	ioas_pages_get(rhs->pages);
	/* The domains keep their mappings: only the bookkeeping is split. */
	if (ioas->nr_domains) {
		ioas_area_pin_domains(area);
		ioas_area_pin_domains(rhs);
	}
	return 0;
}

UIOMMU_EXPORT int uiommu_ioas_cut(struct uiommu_ioas *ioas, uint64_t last)
{
	struct ioas_area *area;
	int rc = 0;

	pthread_mutex_lock(&ioas->lock);
	area = ioas_area_first(ioas, last, last);
	if (area)
		rc = area_split(ioas, area, last);
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

UIOMMU_EXPORT void uiommu_ioas_get_stats(struct uiommu_ioas *ioas, struct uiommu_ioas_stats *st)
{
	pthread_mutex_lock(&ioas->lock);
	st->areas = ioas->areas.count;
	st->mapped_bytes = ioas->mapped_bytes;
	st->pinned_pages = ioas_pinned_pages(ioas);
	st->domains = ioas->nr_domains;
	st->accesses = ioas->nr_accesses;
	pthread_mutex_unlock(&ioas->lock);
}
