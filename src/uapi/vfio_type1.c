// SPDX-License-Identifier: MIT
/*
 * VFIO type1 containers: what an open /dev/vfio/vfio is in the kernel.
 *
 * A container starts with no group and no IOMMU type. A group must join it
 * (SET_CONTAINER) before SET_IOMMU may choose TYPE1 (v1) or TYPE1v2; that
 * "opens" the iommu part: an IOAS from the shared core (src/ioas) that holds
 * the mappings and mirrors them into the IO page tables of the IOMMU-backed
 * groups, the tree of vfio_dma entries, the dma_avail counter, the valid IOVA
 * list and the page-size bitmap. When the last group leaves, the iommu part
 * is released (every mapping goes) and the container is back to "no type",
 * as the kernel deprivileges it.
 *
 * The IOAS does the memory work (pinning checks, domains, DMA); this layer
 * adds what is type1's own: one entry per MAP, never merged; v1/v2 unmap
 * rules; vaddr invalidation; the valid list; per-entry dirty bitmaps; pins of
 * emulated devices with unmap notification.
 *
 * Containers are named by an fd (an eventfd, so that the number is a real,
 * unique descriptor) kept in a process-wide registry, because SET_CONTAINER
 * passes the container as an fd. The registry lock is never held with a
 * container lock.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "uapi/vfio_type1_internal.h"

/* ---- fd registry ---- */

struct reg_entry {
	struct reg_entry *next;
	struct uiommu_vfio_container *c;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_entry *reg_head;

int vt1_fd_open(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

void vt1_fd_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

static int reg_add(struct uiommu_vfio_container *c)
{
	struct reg_entry *e = uiommu__zalloc(sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->c = c;
	pthread_mutex_lock(&reg_lock);
	e->next = reg_head;
	reg_head = e;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

static void reg_del(struct uiommu_vfio_container *c)
{
	struct reg_entry **pp, *e = NULL;

	pthread_mutex_lock(&reg_lock);
	for (pp = &reg_head; *pp; pp = &(*pp)->next) {
		if ((*pp)->c == c) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	uiommu__free(e);
}

UIOMMU_EXPORT struct uiommu_vfio_container *uiommu_vfio_container_from_fd(int fd)
{
	struct uiommu_vfio_container *found = NULL;

	pthread_mutex_lock(&reg_lock);
	for (struct reg_entry *e = reg_head; e && !found; e = e->next)
		if (e->c->fd == fd)
			found = e->c;
	pthread_mutex_unlock(&reg_lock);
	return found;
}

/* ---- create, destroy ---- */

UIOMMU_EXPORT int uiommu_vfio_container_create(struct uiommu_vfio_container **out)
{
	struct uiommu_vfio_container *c = uiommu__zalloc(sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->fd = vt1_fd_open();
	if (c->fd < 0) {
		ret = c->fd;
		goto err_free;
	}
	ret = reg_add(c);
	if (ret)
		goto err_close_fd;
	pthread_mutex_init(&c->lock, NULL);
	c->dma_limit = UIOMMU_VFIO_DMA_ENTRY_LIMIT;
	uiommu_itree_init(&c->dmas);
	uiommu_iova_list_init(&c->iovas);
	*out = c;
	return 0;

err_close_fd:
	vt1_fd_close(c->fd);
err_free:
	uiommu__free(c);
	return ret;
}

UIOMMU_EXPORT void uiommu_vfio_container_destroy(struct uiommu_vfio_container *c)
{
	if (!c)
		return;
	reg_del(c);
	/* Groups stay the caller's: they leave (their device fds closed), and
	 * the last one out releases the iommu part. */
	while (c->groups) {
		struct uiommu_vfio_group *g = c->groups;

		while (g->fds)
			uiommu_vfio_group_close_device_fd(g, g->fds->fd);
		uiommu_vfio_group_unset_container(g);
	}
	vt1_fd_close(c->fd);
	pthread_mutex_destroy(&c->lock);
	uiommu__free(c);
}

UIOMMU_EXPORT int uiommu_vfio_container_fd(const struct uiommu_vfio_container *c)
{
	return c->fd;
}

/* ---- the iommu part ---- */

/* What the kernel's type1 open() sets up: no domain yet, PAGE_MASK sizes. */
static int iommu_open(struct uiommu_vfio_container *c, unsigned long type)
{
	int ret = uiommu_ioas_create(&c->ioas);

	if (ret)
		return ret;
	c->v2 = type == VFIO_TYPE1v2_IOMMU;
	c->dma_avail = c->dma_limit;
	c->pgsize_bitmap = ~(uint64_t)(uiommu__page_size() - 1);
	c->nr_domains = c->nr_emulated = c->num_non_pinned = 0;
	c->vaddr_invalid_count = 0;
	c->dirty_tracking = false;
	return 0;
}

void vt1_iommu_release(struct uiommu_vfio_container *c)
{
	struct uiommu_itree_node *n;

	while ((n = uiommu_itree_first(&c->dmas)))
		vt1_dma_remove(c, container_of(n, struct vt1_dma, node));
	uiommu_ioas_destroy(c->ioas);
	c->ioas = NULL;
	uiommu_iova_list_fini(&c->iovas);
	c->type = 0;
	c->dirty_tracking = false;
}

void vt1_update_pgsize_bitmap(struct uiommu_vfio_container *c)
{
	uint64_t page = uiommu__page_size(), bitmap = UINT64_MAX;

	for (struct uiommu_vfio_group *g = c->groups; g; g = g->next)
		if (g->attached && g->domain)
			bitmap &= uiommu_domain_pgsize_bitmap(g->domain);
	/* Sub-page sizes are hidden: the CPU page is what is pinned. */
	if (bitmap & (page - 1))
		bitmap = (bitmap & ~(page - 1)) | page;
	c->pgsize_bitmap = bitmap;
}

/* Attaches every group of the container, in order; all or nothing. */
static int attach_all(struct uiommu_vfio_container *c)
{
	struct uiommu_vfio_group *g;
	int ret = 0;

	for (g = c->groups; g; g = g->next) {
		ret = vt1_group_attach(c, g);
		if (ret)
			break;
	}
	if (!ret)
		return 0;
	for (struct uiommu_vfio_group *u = c->groups; u != g; u = u->next)
		vt1_group_detach(c, u);
	return ret;
}

static int set_iommu_locked(struct uiommu_vfio_container *c, unsigned long type)
{
	int ret;

	if (!c->groups || c->type)
		return -EINVAL;
	/* Type1 claims UNMAP_ALL as an extension, so SET_IOMMU reaches its
	 * open(), which refuses it; no driver claims the other ids. */
	if (type == VFIO_UNMAP_ALL)
		return -EINVAL;
	if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU)
		return -ENODEV;
	ret = iommu_open(c, type);
	if (ret)
		return ret;
	c->type = type;
	ret = attach_all(c);
	if (ret)
		vt1_iommu_release(c);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_set_iommu(struct uiommu_vfio_container *c, unsigned long type)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	ret = set_iommu_locked(c, type);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_check_extension(struct uiommu_vfio_container *c, unsigned long ext)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	switch (ext) {
	case VFIO_TYPE1_IOMMU:
	case VFIO_TYPE1v2_IOMMU:
	case VFIO_UNMAP_ALL:
		ret = 1;
		break;
	case VFIO_UPDATE_VADDR:
		/* Not with emulated groups: their pins could not wait for a vaddr. */
		ret = c->type && !c->nr_emulated;
		break;
	case VFIO_DMA_CC_IOMMU:
		/* Emulated DMA is coherent; the kernel answers 1 once opened. */
		ret = c->type != 0;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_set_options(struct uiommu_vfio_container *c, uint32_t opts)
{
	int ret = 0;

	if (opts & ~UIOMMU_VFIO_OPT_IOMMU_DIRTY)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->dirty_tracking)
		ret = -EINVAL;
	else
		c->opts = opts;
	pthread_mutex_unlock(&c->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_set_dma_limit(struct uiommu_vfio_container *c, uint32_t limit)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (c->dmas.count) {
		ret = -EBUSY;
	} else {
		c->dma_limit = limit;
		if (c->type)
			c->dma_avail = limit;
	}
	pthread_mutex_unlock(&c->lock);
	return ret;
}

UIOMMU_EXPORT int uiommu_vfio_get_info(struct uiommu_vfio_container *c,
				       struct uiommu_vfio_info *info,
				       struct uiommu_iova_range *iovas, size_t cap)
{
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->type) {
		ret = -EINVAL;
		goto out_unlock;
	}
	info->pgsize_bitmap = c->pgsize_bitmap;
	info->dma_avail = c->dma_avail;
	info->v2 = c->v2;
	info->dirty_tracking = c->dirty_tracking;
	info->nr_iovas = c->iovas.nr;
	for (size_t i = 0; i < cap && i < c->iovas.nr; i++)
		iovas[i] = c->iovas.ranges[i];
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return ret;
}
