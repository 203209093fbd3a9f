// SPDX-License-Identifier: MIT
/*
 * VFIO groups and their devices, and what joining or leaving a container's
 * iommu does to it (the kernel's type1 attach_group/detach_group).
 *
 * A group is IOMMU-backed or emulated. An IOMMU-backed group gets its own
 * emulated IO page table (domain) when it is attached to an iommu; its
 * devices' DMA masters attach to that domain, and the shared IOAS mirrors
 * every mapping into it. Its aperture is the intersection of its devices'
 * apertures, its reserved regions the union of theirs. (The kernel may share
 * one domain between compatible groups; nothing user-visible depends on it,
 * as the page-size bitmap is the AND over domains either way.)
 *
 * The valid IOVA list (uapi-spec §1.7), as the kernel keeps it:
 *  - empty means "any IOVA" (no IOMMU-backed group yet);
 *  - attach: refused (-EINVAL) when its aperture is disjoint from the list's
 *    outer bounds or an entry lies in the part the aperture cuts off, or an
 *    entry overlaps a reserved region; otherwise the list is clipped to the
 *    aperture (an empty list becomes the aperture) and the reserved regions
 *    are cut out; nothing left -> -EINVAL. All or nothing.
 *  - detach: the outer bounds become the intersection of the remaining
 *    domains' apertures ([0, 2^64 - 1] when none is left: the kernel then
 *    reports that whole range, not "empty"), minus the reserved regions of
 *    the remaining groups. Only widening is possible.
 * Leaving with the last IOMMU-backed group and no emulated group unmaps
 * everything; with emulated groups left, entries stay but are no longer
 * "IOMMU mapped" (the all-dirty rule stops applying to them).
 */
#include <errno.h>
#include <linux/vfio.h>
#include <string.h>

#include "uapi/uapi_internal.h"
#include "uapi/vfio_type1_internal.h"

/* ---- create, devices ---- */

UIOMMU_EXPORT int uiommu_vfio_group_create(uint32_t id, uint32_t flags,
					   struct uiommu_vfio_group **out)
{
	struct uiommu_vfio_group *g;

	if (flags & ~UIOMMU_VFIO_GROUP_EMULATED)
		return -EINVAL;
	g = uiommu__zalloc(sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	g->id = id;
	g->emulated = flags & UIOMMU_VFIO_GROUP_EMULATED;
	*out = g;
	return 0;
}

UIOMMU_EXPORT uint32_t uiommu_vfio_group_id(const struct uiommu_vfio_group *g)
{
	return g->id;
}

static struct uiommu_vfio_device *vt1_device_find(const struct uiommu_vfio_group *g, const char *name)
{
	for (struct uiommu_vfio_device *d = g->devices; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

static int device_check_new(const struct uiommu_vfio_group *g, const char *name)
{
	if (!name || !*name)
		return -EINVAL;
	if (g->container)
		return -EBUSY;
	if (vt1_device_find(g, name))
		return -EEXIST;
	return 0;
}

static void device_link(struct uiommu_vfio_group *g, struct uiommu_vfio_device *d, char *name)
{
	vt1_log_init(&d->log);
	d->name = name;
	d->group = g;
	d->next = g->devices;
	g->devices = d;
}

static char *name_dup(const char *name)
{
	char *s = uiommu__zalloc(strlen(name) + 1);

	if (s)
		strcpy(s, name);
	return s;
}

UIOMMU_EXPORT int uiommu_vfio_group_add_hwdev(struct uiommu_vfio_group *g, const char *name,
					      struct uiommu_hwdev *dev)
{
	struct uiommu_vfio_device *d;
	char *s;
	int ret = device_check_new(g, name);

	if (ret)
		return ret;
	if (g->emulated || !dev)
		return -EINVAL;
	if (dev->bound)
		return -EBUSY;
	for (d = g->devices; d; d = d->next)
		if (d->hw && uiommu_hwdev_cfg(d->hw)->format != uiommu_hwdev_cfg(dev)->format)
			return -EINVAL;
	d = uiommu__zalloc(sizeof(*d));
	s = name_dup(name);
	if (!d || !s) {
		uiommu__free(d);
		uiommu__free(s);
		return -ENOMEM;
	}
	d->hw = dev;
	device_link(g, d, s);
	return 0;
}

UIOMMU_EXPORT int uiommu_vfio_group_add_emudev(struct uiommu_vfio_group *g, const char *name,
					       const struct uiommu_vfio_emudev_ops *ops,
					       void *opaque, struct uiommu_vfio_emudev **out)
{
	struct uiommu_vfio_emudev *e;
	char *s;
	int ret = device_check_new(g, name);

	if (ret)
		return ret;
	e = uiommu__zalloc(sizeof(*e));
	s = name_dup(name);
	if (!e || !s) {
		uiommu__free(e);
		uiommu__free(s);
		return -ENOMEM;
	}
	if (ops)
		e->ops = *ops;
	e->opaque = opaque;
	e->dev.emu = e;
	device_link(g, &e->dev, s);
	*out = e;
	return 0;
}

UIOMMU_EXPORT void uiommu_vfio_group_destroy(struct uiommu_vfio_group *g)
{
	if (!g)
		return;
	while (g->fds)
		uiommu_vfio_group_close_device_fd(g, g->fds->fd);
	if (g->container)
		uiommu_vfio_group_unset_container(g);
	while (g->devices) {
		struct uiommu_vfio_device *d = g->devices;

		g->devices = d->next;
		vt1_log_fini(&d->log);
		pthread_mutex_destroy(&d->log.lock);
		uiommu__free(d->name);
		/* The emulated device embeds its vt1_device; hwdevs are the caller's. */
		uiommu__free(d->emu ? (void *)d->emu : (void *)d);
	}
	pthread_mutex_destroy(&g->lock);
	uiommu__free(g);
}

/* ---- what a group brings: aperture, reserved regions, page sizes ---- */

int vt1_group_for_each_resv(const struct uiommu_vfio_group *g,
			    int (*fn)(void *opaque, uint64_t start, uint64_t last), void *opaque)
{
	for (struct uiommu_vfio_device *d = g->devices; d; d = d->next) {
		const struct uiommu_hwdev_cfg *cfg = d->hw ? uiommu_hwdev_cfg(d->hw) : NULL;

		for (size_t i = 0; cfg && i < cfg->nr_reserved; i++) {
			int ret = fn(opaque, cfg->reserved[i].start, cfg->reserved[i].last);

			if (ret)
				return ret;
		}
	}
	return 0;
}

bool vt1_group_dirty_capable(const struct uiommu_vfio_group *g)
{
	bool any = false;

	for (struct uiommu_vfio_device *d = g->devices; d; d = d->next) {
		if (d->hw && !uiommu_hwdev_cfg(d->hw)->dirty_tracking)
			return false;
		any |= d->hw != NULL;
	}
	return any;
}

/* The group's domain config and aperture, from its devices. -EINVAL: none. */
static int group_hw_geometry(struct uiommu_vfio_group *g, struct uiommu_domain_cfg *cfg)
{
	bool first = true;

	for (struct uiommu_vfio_device *d = g->devices; d; d = d->next) {
		const struct uiommu_hwdev_cfg *hc = d->hw ? uiommu_hwdev_cfg(d->hw) : NULL;

		if (!hc)
			continue;
		if (first) {
			cfg->format = hc->format;
			cfg->pgsize_bitmap = hc->pgsize_bitmap;
			g->aperture_start = hc->aperture_start;
			g->aperture_last = hc->aperture_last;
			first = false;
			continue;
		}
		cfg->pgsize_bitmap &= hc->pgsize_bitmap;
		g->aperture_start = u64_max(g->aperture_start, hc->aperture_start);
		g->aperture_last = u64_min(g->aperture_last, hc->aperture_last);
	}
	if (first || g->aperture_start > g->aperture_last || !cfg->pgsize_bitmap)
		return -EINVAL;
	return 0;
}

/* ---- the valid list ---- */

/* The kernel's aperture conflict test against the current list. */
static bool aperture_conflict(struct uiommu_vfio_container *c, uint64_t as, uint64_t ae)
{
	uint64_t first, last;

	if (!c->iovas.nr)
		return false;
	first = c->iovas.ranges[0].start;
	last = c->iovas.ranges[c->iovas.nr - 1].last;
	if (as > last || ae < first)
		return true;
	if (as > first && vt1_dma_find(c, first, as - 1))
		return true;
	return ae < last && vt1_dma_find(c, ae + 1, last);
}

static int resv_hits_dma(void *opaque, uint64_t start, uint64_t last)
{
	return vt1_dma_find(opaque, start, last) ? -EINVAL : 0;
}

static int resv_subtract(void *opaque, uint64_t start, uint64_t last)
{
	return uiommu_iova_list_subtract(opaque, start, last);
}

/* The list the container would have with @g attached, into @out. */
static int iovas_with_group(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g,
			    struct uiommu_iova_list *out)
{
	int ret;

	if (aperture_conflict(c, g->aperture_start, g->aperture_last))
		return -EINVAL;
	ret = vt1_group_for_each_resv(g, resv_hits_dma, c);
	if (ret)
		return ret;
	ret = c->iovas.nr ? uiommu_iova_list_copy(out, &c->iovas)
			  : uiommu_iova_list_add(out, g->aperture_start, g->aperture_last);
	if (!ret)
		ret = uiommu_iova_list_clip(out, g->aperture_start, g->aperture_last);
	if (!ret)
		ret = vt1_group_for_each_resv(g, resv_subtract, out);
	if (!ret && !out->nr)
		ret = -EINVAL;
	return ret;
}

/* The list after a domain left: remaining apertures minus remaining regions. */
static int iovas_rebuild(struct uiommu_vfio_container *c, struct uiommu_iova_list *out)
{
	uint64_t start = 0, last = UINT64_MAX;
	int ret;

	for (struct uiommu_vfio_group *g = c->groups; g; g = g->next) {
		if (g->attached && g->domain) {
			start = u64_max(start, g->aperture_start);
			last = u64_min(last, g->aperture_last);
		}
	}
	ret = uiommu_iova_list_add(out, start, last);
	for (struct uiommu_vfio_group *g = c->groups; g && !ret; g = g->next)
		if (g->attached && g->domain)
			ret = vt1_group_for_each_resv(g, resv_subtract, out);
	return ret;
}

/* ---- attach ---- */

static int resv_reserve(void *opaque, uint64_t start, uint64_t last)
{
	struct uiommu_vfio_group *g = opaque;

	return uiommu_ioas_reserve(g->container->ioas, g, start, last);
}

static void devices_detach(struct uiommu_vfio_group *g)
{
	for (struct uiommu_vfio_device *d = g->devices; d; d = d->next)
		if (d->hw)
			uiommu_device_detach(uiommu_hwdev_dma(d->hw));
}

static int devices_attach(struct uiommu_vfio_group *g)
{
	for (struct uiommu_vfio_device *d = g->devices; d; d = d->next) {
		int ret = d->hw ? uiommu_device_attach(uiommu_hwdev_dma(d->hw), g->domain) : 0;

		if (ret) {
			devices_detach(g);
			return ret;
		}
	}
	return 0;
}


/*
 * A domain must share a page size with the other domains of the container.
 * The kernel does not check: the container's bitmap becomes 0 and MAP_DMA
 * then takes the lowest set bit of 0, which is undefined. Refused here,
 * before the container changes (doc/vfio-type1-quirks.md).
 */
static int pgsizes_shared(const struct uiommu_vfio_container *c, struct uiommu_domain *dom)
{
	uint64_t bitmap = uiommu_domain_pgsize_bitmap(dom);

	for (const struct uiommu_vfio_group *o = c->groups; o; o = o->next)
		if (o->attached && o->domain)
			bitmap &= uiommu_domain_pgsize_bitmap(o->domain);
	return bitmap ? 0 : -EINVAL;
}

/* The domain, in the IOAS with every mapping replayed, devices attached. */
static int group_domain_setup(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g,
			      const struct uiommu_domain_cfg *cfg)
{
	int ret = uiommu_domain_create(cfg, &g->domain);

	if (ret)
		return ret;
	ret = pgsizes_shared(c, g->domain);
	if (ret)
		goto err_destroy_domain;
	ret = uiommu_ioas_domain_add(c->ioas, g->domain, g->aperture_start, g->aperture_last);
	/* Mappings outside the aperture with an empty list: see the quirks doc. */
	if (ret == -EADDRINUSE)
		ret = -EINVAL;
	if (ret)
		goto err_destroy_domain;
	ret = vt1_group_for_each_resv(g, resv_reserve, g);
	if (ret)
		goto err_remove_domain;
	ret = devices_attach(g);
	if (ret)
		goto err_unreserve;
	return 0;

err_unreserve:
	uiommu_ioas_unreserve(c->ioas, g);
err_remove_domain:
	uiommu_ioas_domain_remove(c->ioas, g->domain);
err_destroy_domain:
	uiommu_domain_destroy(g->domain);
	g->domain = NULL;
	return ret;
}

static void entries_set_iommu_mapped(struct uiommu_vfio_container *c, bool mapped)
{
	for (struct uiommu_itree_node *n = uiommu_itree_first(&c->dmas); n;
	     n = uiommu_itree_next(n))
		container_of(n, struct vt1_dma, node)->iommu_mapped = mapped;
}

static int attach_iommu_group(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	struct uiommu_domain_cfg cfg = { 0 };
	struct uiommu_iova_list list;
	int ret = group_hw_geometry(g, &cfg);

	if (ret)
		return ret;
	uiommu_iova_list_init(&list);
	ret = iovas_with_group(c, g, &list);
	if (!ret)
		ret = group_domain_setup(c, g, &cfg);
	if (ret) {
		uiommu_iova_list_fini(&list);
		return ret;
	}
	uiommu_iova_list_fini(&c->iovas);
	c->iovas = list;
	g->attached = true;
	g->pinned_scope = false;
	c->nr_domains++;
	c->num_non_pinned++;
	entries_set_iommu_mapped(c, true);
	vt1_update_pgsize_bitmap(c);
	vt1_dirty_group_attached(c, g);
	return 0;
}

int vt1_group_attach(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	/* Attaching could need pinning: not while a vaddr is invalid. */
	if (c->vaddr_invalid_count)
		return -EBUSY;
	if (g->attached)
		return -EINVAL;
	if (g->emulated) {
		g->attached = true;
		g->pinned_scope = true;
		c->nr_emulated++;
		return 0;
	}
	/* g->container is needed for the IOAS reservations' owner lookups. */
	g->container = c;
	return attach_iommu_group(c, g);
}

/* ---- detach ---- */

static void remove_all_entries(struct uiommu_vfio_container *c)
{
	struct uiommu_itree_node *n;

	while ((n = uiommu_itree_first(&c->dmas)))
		vt1_dma_remove(c, container_of(n, struct vt1_dma, node));
}

static void detach_iommu_group(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	struct uiommu_iova_list list;

	devices_detach(g);
	uiommu_ioas_unreserve(c->ioas, g);
	uiommu_ioas_domain_remove(c->ioas, g->domain);
	uiommu_domain_destroy(g->domain);
	g->domain = NULL;
	g->attached = false;
	if (--c->nr_domains == 0) {
		if (!c->nr_emulated)
			remove_all_entries(c);
		else
			entries_set_iommu_mapped(c, false);
	}
	/* The kernel keeps the old list when rebuilding fails (ENOMEM). */
	uiommu_iova_list_init(&list);
	if (iovas_rebuild(c, &list)) {
		uiommu_iova_list_fini(&list);
	} else {
		uiommu_iova_list_fini(&c->iovas);
		c->iovas = list;
	}
	vt1_update_pgsize_bitmap(c);
}

void vt1_group_detach(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	bool was_non_pinned = !g->pinned_scope;

	if (!g->attached)
		return;
	if (g->emulated) {
		g->attached = false;
		if (--c->nr_emulated == 0 && !c->nr_domains)
			remove_all_entries(c);
	} else {
		detach_iommu_group(c, g);
	}
	/* Removing a group that could dirty anything: all becomes dirty. */
	if (was_non_pinned) {
		c->num_non_pinned--;
		if (c->dirty_tracking)
			vt1_dirty_mark_all(c);
	}
}

/* ---- container membership ---- */

static int set_container_locked(struct uiommu_vfio_group *g, struct uiommu_vfio_container *c)
{
	int ret = 0;

	if (c->type)
		ret = vt1_group_attach(c, g);
	if (ret)
		return ret;
	/* At the head, as the kernel's list_add: SET_IOMMU attaches newest first. */
	g->next = c->groups;
	c->groups = g;
	g->container = c;
	return 0;
}

UIOMMU_EXPORT int uiommu_vfio_group_set_container(struct uiommu_vfio_group *g,
						  struct uiommu_vfio_container *c)
{
	int ret = -EINVAL;

	pthread_mutex_lock(&g->lock);
	if (!g->container) {
		pthread_mutex_lock(&c->lock);
		ret = set_container_locked(g, c);
		if (ret)
			g->container = NULL;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return ret;
}

static void group_unlink(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g)
{
	for (struct uiommu_vfio_group **pp = &c->groups; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	g->next = NULL;
}

/* Both locks held: leaves, and the last group out deprivileges the container. */
static void unset_container_locked(struct uiommu_vfio_group *g, struct uiommu_vfio_container *c)
{
	if (c->type)
		vt1_group_detach(c, g);
	group_unlink(c, g);
	if (!c->groups && c->type)
		vt1_iommu_release(c);
	g->container = NULL;
}

UIOMMU_EXPORT int uiommu_vfio_group_unset_container(struct uiommu_vfio_group *g)
{
	struct uiommu_vfio_container *c;
	int ret = 0;

	pthread_mutex_lock(&g->lock);
	c = g->container;
	/* Open device fds are users of the container. */
	if (!c || g->fds) {
		ret = c ? -EBUSY : -EINVAL;
		goto out_unlock;
	}
	pthread_mutex_lock(&c->lock);
	unset_container_locked(g, c);
	pthread_mutex_unlock(&c->lock);
out_unlock:
	pthread_mutex_unlock(&g->lock);
	return ret;
}

struct uiommu_vfio_container *vt1_group_lock_container(struct uiommu_vfio_group *g)
{
	struct uiommu_vfio_container *c;

	pthread_mutex_lock(&g->lock);
	c = g->container;
	if (c)
		pthread_mutex_lock(&c->lock);
	pthread_mutex_unlock(&g->lock);
	return c;
}

bool vt1_group_in_container(struct uiommu_vfio_group *g)
{
	bool in;

	pthread_mutex_lock(&g->lock);
	in = g->container != NULL;
	pthread_mutex_unlock(&g->lock);
	return in;
}

/* ---- device fds ---- */

/* g->lock held. A device opens only in a container whose IOMMU type is set. */
static int check_device_open(struct uiommu_vfio_group *g)
{
	struct uiommu_vfio_container *c = g->container;
	bool typed;

	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	typed = c->type != 0;
	pthread_mutex_unlock(&c->lock);
	return typed ? 0 : -EINVAL;
}

/* g->lock held. */
static int devfd_open(struct uiommu_vfio_group *g, struct uiommu_vfio_device *d)
{
	struct vt1_devfd *f = uiommu__zalloc(sizeof(*f));
	int fd;

	if (!f)
		return -ENOMEM;
	fd = vt1_fd_open();
	if (fd < 0) {
		uiommu__free(f);
		return fd;
	}
	f->fd = fd;
	f->dev = d;
	f->next = g->fds;
	g->fds = f;
	return fd;
}

UIOMMU_EXPORT int uiommu_vfio_group_get_device_fd(struct uiommu_vfio_group *g, const char *name)
{
	struct uiommu_vfio_device *d = vt1_device_find(g, name);
	int ret;

	if (!d)
		return -ENODEV;
	pthread_mutex_lock(&g->lock);
	ret = check_device_open(g);
	if (!ret)
		ret = devfd_open(g, d);
	pthread_mutex_unlock(&g->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_group_close_device_fd(struct uiommu_vfio_group *g, int fd)
{
	struct vt1_devfd *f = NULL;

	pthread_mutex_lock(&g->lock);
	for (struct vt1_devfd **pp = &g->fds; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			f = *pp;
			*pp = f->next;
			break;
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (!f)
		return -EBADF;
	vt1_fd_close(f->fd);
	uiommu__free(f);
	return 0;
}

UIOMMU_EXPORT struct uiommu_vfio_device *uiommu_vfio_group_device(struct uiommu_vfio_group *g,
								  const char *name)
{
	return name ? vt1_device_find(g, name) : NULL;
}

UIOMMU_EXPORT struct uiommu_vfio_device *uiommu_vfio_device_from_fd(struct uiommu_vfio_group *g,
								    int fd)
{
	struct uiommu_vfio_device *d = NULL;

	pthread_mutex_lock(&g->lock);
	for (struct vt1_devfd *f = g->fds; f && !d; f = f->next)
		if (f->fd == fd)
			d = f->dev;
	pthread_mutex_unlock(&g->lock);
	return d;
}

UIOMMU_EXPORT const char *uiommu_vfio_device_name(const struct uiommu_vfio_device *d)
{
	return d->name;
}
