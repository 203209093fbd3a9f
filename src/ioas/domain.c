/* SPDX-License-Identifier: MIT */
/*
 * Domains attached to an IOAS mirror every area: area [iova, last] is mapped
 * in each domain to host address uva + offset with the area's permissions.
 *
 * Alignment: areas are byte-granular but a domain maps whole pages of its
 * smallest size. Attaching a domain first raises the IOAS alignment to that
 * size (refusing when an existing area breaks it), and while domains are
 * attached every new area honours it, so iova, length and host address of
 * every area are multiples of each domain's smallest page.
 *
 * Large leaves: the domain picks the largest leaf that alignment allows. With
 * huge pages disabled (the VFIO type1 v1 behaviour) an area is mapped in
 * pieces one page shorter than the smallest large leaf, which no large leaf
 * fits in, so unmap granularity and dirty reporting stay at the smallest page.
 *
 * Pins: the first domain pins every area (see pages.c), the last one to go
 * unpins them; in between, all areas are pinned exactly once. A domain is
 * attached after its reservations (outside its aperture) and the checks of
 * user memory succeeded, and every area is mapped; on any failure everything
 * done is undone, in reverse.
 *
 * Everything here runs under ioas->lock.
 */
#include <errno.h>
#include <sys/types.h>

#include "ioas/ioas_internal.h"

/* Piece length that keeps the domain from using large leaves; 0 = no limit. */
static uint64_t small_piece(struct uiommu_ioas *ioas, struct uiommu_domain *domain)
{
	uint64_t bitmap = uiommu_domain_pgsize_bitmap(domain), min = bitmap & -bitmap;
	uint64_t rest = bitmap & ~min;

	if (!ioas->huge_pages_disabled || !rest)
		return 0;
	return (rest & -rest) - min;
}

static int domain_map_area(struct uiommu_ioas *ioas, struct uiommu_domain *domain,
			   const struct ioas_area *area)
{
	uint64_t piece = small_piece(ioas, domain), done = 0, len = area_length(area);
	int rc;

	if (!piece)
		piece = len;
	while (done < len) {
		uint64_t n = u64_min(piece, len - done);

		rc = uiommu_domain_map(domain, area->node.start + done,
				       (void *)(area_uva(area) + done), n, area->prot);
		if (rc)
			goto err_unmap;
		done += n;
	}
	return 0;

err_unmap:
	if (done)
		uiommu_domain_unmap(domain, area->node.start, done, NULL);
	return rc;
}

static void domain_unmap_area(struct uiommu_domain *domain, const struct ioas_area *area)
{
	/* Whole map calls come back whole: no leaf is split, nothing can fail. */
	int rc = uiommu_domain_unmap(domain, area->node.start, area_length(area), NULL);

	UIOMMU_BUG_ON(rc);
	(void)rc;
}

int ioas_area_fill_domains(struct uiommu_ioas *ioas, struct ioas_area *area)
{
	size_t i;
	int rc;

	for (i = 0; i < ioas->nr_domains; i++) {
		rc = domain_map_area(ioas, ioas->domains[i], area);
		if (rc)
			goto err_unmap;
	}
	return 0;

err_unmap:
	while (i--)
		domain_unmap_area(ioas->domains[i], area);
	return rc;
}

void ioas_area_unfill_domains(struct uiommu_ioas *ioas, struct ioas_area *area)
{
	for (size_t i = 0; i < ioas->nr_domains; i++)
		domain_unmap_area(ioas->domains[i], area);
}

void ioas_area_pin_domains(struct ioas_area *area)
{
	if (area->domain_pinned)
		return;
	ioas_pin_add(area->pages, &area->pin, area_uva(area), area_uva(area) + area_length(area) - 1);
	area->domain_pinned = true;
}

void ioas_area_unpin_domains(struct ioas_area *area)
{
	if (!area->domain_pinned)
		return;
	ioas_pin_remove(area->pages, &area->pin);
	area->domain_pinned = false;
}

/* ---- attach and detach ---- */

static ssize_t domain_index(struct uiommu_ioas *ioas, struct uiommu_domain *domain)
{
	for (size_t i = 0; i < ioas->nr_domains; i++)
		if (ioas->domains[i] == domain)
			return (ssize_t)i;
	return -1;
}

static int domains_reserve_slot(struct uiommu_ioas *ioas)
{
	size_t cap = ioas->cap_domains ? ioas->cap_domains * 2 : 4;
	struct uiommu_domain **arr;

	if (ioas->nr_domains < ioas->cap_domains)
		return 0;
	arr = uiommu__calloc(cap, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < ioas->nr_domains; i++)
		arr[i] = ioas->domains[i];
	uiommu__free(ioas->domains);
	ioas->domains = arr;
	ioas->cap_domains = cap;
	return 0;
}

/* Alignment the IOAS needs with @domain added: -EINVAL, -EADDRINUSE. */
static int domain_check_alignment(struct uiommu_ioas *ioas, struct uiommu_domain *domain,
				  uint64_t *align)
{
	uint64_t bitmap = uiommu_domain_pgsize_bitmap(domain);

	*align = u64_max(bitmap & -bitmap, ioas->iova_alignment);
	/* The pages behind an area are only known to be CPU-page contiguous. */
	if (!bitmap || *align > page_size())
		return -EINVAL;
	if (*align != ioas->iova_alignment)
		return ioas_check_alignment(ioas, *align);
	return 0;
}

/* Reserves what lies outside [start, last] for @domain. */
static int domain_reserve_aperture(struct uiommu_ioas *ioas, struct uiommu_domain *domain,
				   uint64_t start, uint64_t last)
{
	int rc = 0;

	last = u64_min(last, uiommu_domain_max_iova(domain));
	if (start > last)
		return -EINVAL;
	if (start)
		rc = ioas_reserve_locked(ioas, domain, 0, start - 1);
	if (!rc && last != UINT64_MAX)
		rc = ioas_reserve_locked(ioas, domain, last + 1, UINT64_MAX);
	if (rc)
		ioas_unreserve_locked(ioas, domain);
	return rc;
}

/* Without domains nothing was pinned: the user memory must exist now. */
static int domain_check_user(struct uiommu_ioas *ioas)
{
	struct uiommu_itree_node *n;
	int rc;

	if (ioas->nr_domains)
		return 0;
	for (n = uiommu_itree_first(&ioas->areas); n; n = uiommu_itree_next(n)) {
		rc = ioas_check_user(area_of(n));
		if (rc)
			return rc;
	}
	return 0;
}

static int domain_fill(struct uiommu_ioas *ioas, struct uiommu_domain *domain)
{
	struct uiommu_itree_node *n, *undo;
	int rc;

	for (n = uiommu_itree_first(&ioas->areas); n; n = uiommu_itree_next(n)) {
		rc = domain_map_area(ioas, domain, area_of(n));
		if (rc)
			goto err_unmap;
	}
	return 0;

err_unmap:
	for (undo = uiommu_itree_first(&ioas->areas); undo != n; undo = uiommu_itree_next(undo))
		domain_unmap_area(domain, area_of(undo));
	return rc;
}

static void domain_pin_all(struct uiommu_ioas *ioas, bool pin)
{
	for (struct uiommu_itree_node *n = uiommu_itree_first(&ioas->areas); n;
	     n = uiommu_itree_next(n)) {
		if (pin)
			ioas_area_pin_domains(area_of(n));
		else
			ioas_area_unpin_domains(area_of(n));
	}
}

static int domain_add_locked(struct uiommu_ioas *ioas, struct uiommu_domain *domain,
			     uint64_t aperture_start, uint64_t aperture_last)
{
	uint64_t align;
	int rc;

	if (domain_index(ioas, domain) >= 0)
		return -EEXIST;
	rc = domain_check_alignment(ioas, domain, &align);
	if (rc)
		return rc;
	rc = domain_reserve_aperture(ioas, domain, aperture_start, aperture_last);
	if (rc)
		return rc;
	rc = domain_check_user(ioas);
	if (rc)
		goto err_unreserve;
	rc = domains_reserve_slot(ioas);
	if (rc)
		goto err_unreserve;
	rc = domain_fill(ioas, domain);
	if (rc)
		goto err_unreserve;
	domain_pin_all(ioas, true);
	ioas->domains[ioas->nr_domains++] = domain;
	ioas->iova_alignment = align;
	return 0;

err_unreserve:
	ioas_unreserve_locked(ioas, domain);
	return rc;
}

UIOMMU_EXPORT int uiommu_ioas_domain_add(struct uiommu_ioas *ioas, struct uiommu_domain *domain,
					 uint64_t aperture_start, uint64_t aperture_last)
{
	int rc;

	pthread_mutex_lock(&ioas->lock);
	rc = domain_add_locked(ioas, domain, aperture_start, aperture_last);
	pthread_mutex_unlock(&ioas->lock);
	return rc;
}

UIOMMU_EXPORT void uiommu_ioas_domain_remove(struct uiommu_ioas *ioas,
					     struct uiommu_domain *domain)
{
	struct uiommu_itree_node *n;
	ssize_t i;

	pthread_mutex_lock(&ioas->lock);
	i = domain_index(ioas, domain);
	if (i < 0)
		goto out_unlock;
	for (n = uiommu_itree_first(&ioas->areas); n; n = uiommu_itree_next(n))
		domain_unmap_area(domain, area_of(n));
	ioas->domains[i] = ioas->domains[--ioas->nr_domains];
	if (!ioas->nr_domains)
		domain_pin_all(ioas, false);
	ioas_unreserve_locked(ioas, domain);
	/* Lowering cannot fail. */
	ioas_update_alignment(ioas);
out_unlock:
	pthread_mutex_unlock(&ioas->lock);
}

UIOMMU_EXPORT size_t uiommu_ioas_domain_count(struct uiommu_ioas *ioas)
{
	size_t n;

	pthread_mutex_lock(&ioas->lock);
	n = ioas->nr_domains;
	pthread_mutex_unlock(&ioas->lock);
	return n;
}
