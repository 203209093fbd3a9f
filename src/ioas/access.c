/* SPDX-License-Identifier: MIT */
/*
 * Accesses: users of an IOAS that are not behind an IOMMU (mdev-like or
 * emulated devices). They read and write by IOVA (uiommu_access_rw), and, if
 * created with needs_pin, pin IOVA ranges to get at the host pages directly.
 *
 * A pin is recorded as an access_pin: the IOVA range, and one slice per area
 * it crosses, each slice a pin user of the area's pages object (pages.c) and
 * counted in area->access_pins. Unpin takes the same (iova, length) and drops
 * the record. Pins need whole CPU pages: a pinning access raises the IOAS
 * alignment to PAGE_SIZE, and a pin must start on a page boundary of the
 * host memory and may only cross from one area to the next at one.
 *
 * Unmap callbacks. An unmap that meets a pinned area calls ops->unmap of every
 * access of the IOAS with the IOAS lock dropped (ioas_notify_unmap); the
 * callback unpins through uiommu_access_unpin, which takes the locks itself.
 * While a callback runs, the access's link in that IOAS has cb_users > 0 and
 * is not removed: destroy and replace wait on ioas->cb_done for it.
 *
 * Moving (replace_ioas), as the kernel does it: join the new IOAS (raising
 * its alignment may fail), block new pins (access->ioas = NULL), ask the
 * access to drop everything it pinned in the old IOAS (ops->unmap(0, all)),
 * then leave the old IOAS. Pins left after the callback make the move fail
 * with -EBUSY, and the access stays where it was.
 *
 * Locks: access->lock (protects ioas, ioas_unpin, cur) is taken before an
 * IOAS lock and never held while waiting for callbacks; the pin records are
 * protected by the lock of ioas_unpin.
 */
#include <errno.h>

#include "ioas/ioas_internal.h"

/* ---- membership ---- */

static int link_add_locked(struct uiommu_ioas *ioas, struct uiommu_access *access,
			   struct access_link *link)
{
	int rc;

	link->access = access;
	link->cb_users = 0;
	link->prev = ioas->accesses.prev;
	link->next = &ioas->accesses;
	link->prev->next = link;
	ioas->accesses.prev = link;
	ioas->nr_accesses++;
	ioas->nr_pin_accesses += access->ops.needs_pin;
	rc = ioas_update_alignment(ioas);
	if (rc) {
		link->prev->next = link->next;
		link->next->prev = link->prev;
		ioas->nr_accesses--;
		ioas->nr_pin_accesses -= access->ops.needs_pin;
	}
	return rc;
}

/* Waits for callbacks running on @link, then removes it. */
static void link_del_locked(struct uiommu_ioas *ioas, struct access_link *link)
{
	while (link->cb_users)
		pthread_cond_wait(&ioas->cb_done, &ioas->lock);
	link->prev->next = link->next;
	link->next->prev = link->prev;
	ioas->nr_accesses--;
	ioas->nr_pin_accesses -= link->access->ops.needs_pin;
	/* Lowering cannot fail. */
	ioas_update_alignment(ioas);
}

void ioas_notify_unmap(struct uiommu_ioas *ioas, uint64_t iova, uint64_t length)
{
	struct access_link *link = ioas->accesses.next, *next;

	while (link != &ioas->accesses) {
		struct uiommu_access *access = link->access;

		link->cb_users++;
		pthread_mutex_unlock(&ioas->lock);
		if (access->ops.unmap)
			access->ops.unmap(access->opaque, iova, length);
		pthread_mutex_lock(&ioas->lock);
		/* The link stayed in the list: removal waits for cb_users. */
		next = link->next;
		if (!--link->cb_users)
			pthread_cond_broadcast(&ioas->cb_done);
		link = next;
	}
}

/* ---- pin records ---- */

static void pin_release(struct access_pin *pin)
{
	for (size_t i = 0; i < pin->nr_slices; i++) {
		struct ioas_area *area = pin->slices[i].area;

		ioas_pin_remove(area->pages, &pin->slices[i].user);
		area->access_pins--;
	}
	uiommu__free(pin);
}

static void pins_release_all(struct uiommu_access *access)
{
	struct uiommu_itree_node *n;

	while ((n = uiommu_itree_first(&access->pins))) {
		uiommu_itree_remove(&access->pins, n);
		pin_release(container_of(n, struct access_pin, node));
	}
}

/* Called from ioas_destroy for accesses the caller forgot (a bug). */
void ioas_detach_accesses(struct uiommu_ioas *ioas)
{
	while (ioas->accesses.next != &ioas->accesses) {
		struct access_link *link = ioas->accesses.next;
		struct uiommu_access *access = link->access;

		if (access->ioas_unpin == ioas)
			pins_release_all(access);
		link_del_locked(ioas, link);
		access->ioas = access->ioas_unpin = NULL;
	}
}

/* ---- create, destroy, replace ---- */

UIOMMU_EXPORT int uiommu_access_create(struct uiommu_ioas *ioas,
				       const struct uiommu_access_ops *ops, void *opaque,
				       struct uiommu_access **out)
{
	struct uiommu_access *access;
	int rc;

	/* Pins can only be taken back through the unmap callback. */
	if (!ioas || !ops || (ops->needs_pin && !ops->unmap))
		return -EINVAL;
	access = uiommu__zalloc(sizeof(*access));
	if (!access)
		return -ENOMEM;
	pthread_mutex_init(&access->lock, NULL);
	access->ops = *ops;
	access->opaque = opaque;
	uiommu_itree_init(&access->pins);
	pthread_mutex_lock(&ioas->lock);
	rc = link_add_locked(ioas, access, &access->links[0]);
	pthread_mutex_unlock(&ioas->lock);
	if (rc) {
		pthread_mutex_destroy(&access->lock);
		uiommu__free(access);
		return rc;
	}
	access->ioas = access->ioas_unpin = ioas;
	*out = access;
	return 0;
}

UIOMMU_EXPORT void uiommu_access_destroy(struct uiommu_access *access)
{
	struct uiommu_ioas *ioas;

	if (!access)
		return;
	pthread_mutex_lock(&access->lock);
	ioas = access->ioas_unpin;
	access->ioas = NULL;
	pthread_mutex_unlock(&access->lock);
	if (ioas) {
		pthread_mutex_lock(&ioas->lock);
		pins_release_all(access);
		link_del_locked(ioas, &access->links[access->cur]);
		pthread_mutex_unlock(&ioas->lock);
	}
	pthread_mutex_destroy(&access->lock);
	uiommu__free(access);
}

/* Second half of a move: leave @old unless pins remain there. */
static int access_leave(struct uiommu_access *access, struct uiommu_ioas *old,
			struct uiommu_ioas *new)
{
	unsigned int cur = access->cur;
	bool busy;

	pthread_mutex_lock(&old->lock);
	busy = access->pins.count;
	if (!busy)
		link_del_locked(old, &access->links[cur]);
	pthread_mutex_unlock(&old->lock);
	if (busy) {
		pthread_mutex_lock(&new->lock);
		link_del_locked(new, &access->links[!cur]);
		pthread_mutex_unlock(&new->lock);
	}
	pthread_mutex_lock(&access->lock);
	if (busy) {
		access->ioas = old;
	} else {
		access->ioas = access->ioas_unpin = new;
		access->cur = !cur;
	}
	pthread_mutex_unlock(&access->lock);
	return busy ? -EBUSY : 0;
}

UIOMMU_EXPORT int uiommu_access_replace_ioas(struct uiommu_access *access,
					     struct uiommu_ioas *ioas)
{
	struct uiommu_ioas *old;
	int rc = 0;

	if (!ioas)
		return -EINVAL;
	pthread_mutex_lock(&access->lock);
	old = access->ioas;
	if (!old || old == ioas) {
		rc = old ? 0 : -EBUSY; /* NULL: another move is under way */
		goto out_unlock;
	}
	pthread_mutex_lock(&ioas->lock);
	rc = link_add_locked(ioas, access, &access->links[!access->cur]);
	pthread_mutex_unlock(&ioas->lock);
	if (rc)
		goto out_unlock;
	access->ioas = NULL;
	pthread_mutex_unlock(&access->lock);
	if (access->ops.unmap)
		access->ops.unmap(access->opaque, 0, UINT64_MAX);
	return access_leave(access, old, ioas);

out_unlock:
	pthread_mutex_unlock(&access->lock);
	return rc;
}

UIOMMU_EXPORT struct uiommu_ioas *uiommu_access_ioas(struct uiommu_access *access)
{
	struct uiommu_ioas *ioas;

	pthread_mutex_lock(&access->lock);
	ioas = access->ioas_unpin;
	pthread_mutex_unlock(&access->lock);
	return ioas;
}

/* ---- pin, unpin ---- */

static uint64_t pages_touched(uint64_t iova, uint64_t last)
{
	unsigned int shift = (unsigned int)__builtin_ctzll(page_size());

	return (last >> shift) - (iova >> shift) + 1;
}

/* Pins hand out whole CPU pages: slices must meet at page boundaries. */
static bool slice_is_aligned(const struct ioas_contig *it)
{
	const struct ioas_area *area = it->area;

	if (area_iova_to_uva(area, it->cur) % page_size())
		return false;
	return ioas_contig_done(it) ||
	       area_iova_to_uva(area, area->node.last) % page_size() == page_size() - 1;
}

static bool area_allows(const struct ioas_area *area, uint32_t flags)
{
	uint32_t need = flags & UIOMMU_ACCESS_WRITE ? UIOMMU_PROT_WRITE : UIOMMU_PROT_READ;

	return area->prot & need;
}

/* Validates a pin and counts its slices. The kernel's checks, area by area. */
static int pin_check(struct uiommu_ioas *ioas, uint64_t iova, uint64_t last, uint32_t flags,
		     size_t *nr)
{
	struct ioas_contig it;
	struct ioas_area *area;
	int rc;

	*nr = 0;
	for (area = ioas_contig_first(ioas, &it, iova, last); area;
	     area = ioas_contig_next(ioas, &it), ++*nr) {
		uintptr_t uva = area_iova_to_uva(area, it.cur);
		uint64_t len = ioas_contig_slice_last(&it) - it.cur + 1;

		if (area->prevent_access || !slice_is_aligned(&it))
			return -EINVAL;
		if (!area_allows(area, flags))
			return -EPERM;
		rc = uiommu__user_check((const void *)uva, len, area->pages->writable);
		if (rc)
			return rc;
	}
	return ioas_contig_done(&it) ? 0 : -ENOENT;
}

/* Fills @pin's slices and the page list; cannot fail after pin_check. */
static void pin_fill(struct uiommu_ioas *ioas, struct access_pin *pin, void **pages)
{
	struct ioas_contig it;
	struct ioas_area *area;
	size_t i = 0;

	for (area = ioas_contig_first(ioas, &it, pin->node.start, pin->node.last); area;
	     area = ioas_contig_next(ioas, &it), i++) {
		uintptr_t uva = area_iova_to_uva(area, it.cur);
		uintptr_t uva_last = area_iova_to_uva(area, ioas_contig_slice_last(&it));

		pin->slices[i].area = area;
		ioas_pin_add(area->pages, &pin->slices[i].user, uva, uva_last);
		area->access_pins++;
		for (uintptr_t p = uva; p <= uva_last; p += page_size())
			*pages++ = (void *)p;
	}
	pin->nr_slices = i;
}

static int pin_locked(struct uiommu_access *access, struct uiommu_ioas *ioas, uint64_t iova,
		      uint64_t last, uint32_t flags, void **pages)
{
	struct access_pin *pin;
	size_t nr;
	int rc;

	rc = pin_check(ioas, iova, last, flags, &nr);
	if (rc)
		return rc;
	pin = uiommu__zalloc(sizeof(*pin) + nr * sizeof(pin->slices[0]));
	if (!pin)
		return -ENOMEM;
	pin->node.start = iova;
	pin->node.last = last;
	pin_fill(ioas, pin, pages);
	uiommu_itree_insert(&access->pins, &pin->node);
	return 0;
}

UIOMMU_EXPORT int uiommu_access_pin(struct uiommu_access *access, uint64_t iova, uint64_t length,
				    uint32_t flags, void **pages, size_t npages)
{
	struct uiommu_ioas *ioas;
	uint64_t last;
	int rc;

	if (!access->ops.needs_pin || (flags & ~UIOMMU_ACCESS_WRITE) || !length)
		return -EINVAL;
	if (uiommu__range_last(iova, length, &last))
		return -EOVERFLOW;
	if (!pages || npages != pages_touched(iova, last))
		return -EINVAL;
	pthread_mutex_lock(&access->lock);
	ioas = access->ioas;
	if (ioas) {
		pthread_mutex_lock(&ioas->lock);
		rc = pin_locked(access, ioas, iova, last, flags, pages);
		pthread_mutex_unlock(&ioas->lock);
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&access->lock);
	return rc;
}

static struct access_pin *pin_find(struct uiommu_access *access, uint64_t iova, uint64_t last)
{
	struct uiommu_itree_node *n;

	uiommu_itree_for_each_overlap(n, &access->pins, iova, last)
		if (n->start == iova && n->last == last)
			return container_of(n, struct access_pin, node);
	return NULL;
}

UIOMMU_EXPORT void uiommu_access_unpin(struct uiommu_access *access, uint64_t iova,
				       uint64_t length)
{
	struct uiommu_ioas *ioas;
	struct access_pin *pin;
	uint64_t last;

	if (uiommu__range_last(iova, length, &last))
		return;
	pthread_mutex_lock(&access->lock);
	ioas = access->ioas_unpin;
	if (ioas) {
		pthread_mutex_lock(&ioas->lock);
		pin = pin_find(access, iova, last);
		if (pin) {
			uiommu_itree_remove(&access->pins, &pin->node);
			pin_release(pin);
		}
		pthread_mutex_unlock(&ioas->lock);
	}
	pthread_mutex_unlock(&access->lock);
}

/* ---- rw ---- */

static int rw_slice(const struct ioas_area *area, uint64_t iova, void *buf, uint64_t len,
		    uint32_t flags)
{
	void *uva = (void *)area_iova_to_uva(area, iova);

	if (area->prevent_access)
		return -EINVAL;
	if (!area_allows(area, flags))
		return -EPERM;
	if (flags & UIOMMU_ACCESS_WRITE)
		return uiommu__copy_to_user(uva, buf, len);
	return uiommu__copy_from_user(buf, uva, len);
}

static int rw_locked(struct uiommu_ioas *ioas, uint64_t iova, uint64_t last, char *buf,
		     uint32_t flags)
{
	struct ioas_contig it;
	struct ioas_area *area;
	int rc;

	for (area = ioas_contig_first(ioas, &it, iova, last); area;
	     area = ioas_contig_next(ioas, &it)) {
		uint64_t len = ioas_contig_slice_last(&it) - it.cur + 1;

		rc = rw_slice(area, it.cur, buf, len, flags);
		if (rc)
			return rc;
		buf += len;
	}
	return ioas_contig_done(&it) ? 0 : -ENOENT;
}

UIOMMU_EXPORT int uiommu_access_rw(struct uiommu_access *access, uint64_t iova, void *buf,
				   uint64_t length, uint32_t flags)
{
	struct uiommu_ioas *ioas;
	uint64_t last;
	int rc;

	if ((flags & ~UIOMMU_ACCESS_WRITE) || !length)
		return -EINVAL;
	if (uiommu__range_last(iova, length, &last))
		return -EOVERFLOW;
	pthread_mutex_lock(&access->lock);
	ioas = access->ioas;
	if (ioas) {
		pthread_mutex_lock(&ioas->lock);
		rc = rw_locked(ioas, iova, last, buf, flags);
		pthread_mutex_unlock(&ioas->lock);
	} else {
		rc = -ENOENT;
	}
	pthread_mutex_unlock(&access->lock);
	return rc;
}
