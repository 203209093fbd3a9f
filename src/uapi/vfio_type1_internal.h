/* SPDX-License-Identifier: MIT */
/*
 * Private to the VFIO type1 front end (vfio_type1*.c):
 *   vfio_type1.c         containers, the fd registry, SET_IOMMU, extensions
 *   vfio_type1_group.c   groups, devices, attach/detach, the valid IOVA list
 *   vfio_type1_dma.c     vfio_dma entries: MAP_DMA, UNMAP_DMA, VADDR
 *   vfio_type1_dirty.c   per-entry dirty bitmaps and their copy-out
 *   vfio_type1_pin.c     pin/unpin and rw for emulated devices
 *   vfio_type1_ioctl.c   the container and group ioctls (user structs)
 *   vfio_type1_device.c  the device fd ioctls (VFIO_DEVICE_FEATURE framing)
 *   vfio_type1_log.c     device DMA logs (devices that track their own writes)
 *
 * Terminology: 'last' is inclusive; entries are the kernel's vfio_dma: one
 * per successful MAP, never merged, [node.start, node.last] in c->dmas. The
 * "iommu" part of a container (type, entries, valid list, dirty state) exists
 * between SET_IOMMU and the departure of its last group, as the kernel's
 * iommu_data does.
 *
 * Locking: g->lock protects a group's container pointer and its device fds;
 * c->lock protects the container, its groups' membership and every entry; a
 * device's log->lock protects its DMA log. Order: g->lock, then c->lock, then
 * log->lock. A group's container can change only under both g->lock and
 * c->lock, so whoever holds either sees a stable one (vt1_group_lock_container
 * hands over from the first to the second). Device DMA of IOMMU-backed groups
 * goes through the IOAS's domains and never takes c->lock. The fd registry
 * has its own lock, taken alone.
 */
#ifndef UIOMMU_VFIO_TYPE1_INTERNAL_H
#define UIOMMU_VFIO_TYPE1_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uiommu/ioas.h>
#include <uiommu/iommu.h>
#include <uiommu/itree.h>
#include <uiommu/iova_list.h>
#include <uiommu/vfio_type1.h>

#include "core/core_internal.h"

/* The kernel's VFIO_PIN_PAGES_MAX_ENTRIES and DIRTY_BITMAP_PAGES_MAX. */
#define VT1_PIN_MAX 512
#define VT1_BITMAP_PAGES_MAX ((uint64_t)INT32_MAX)
/* DIRTY_BITMAP_SIZE_MAX: bytes for INT_MAX pages rounded to u64 words. */
#define VT1_BITMAP_SIZE_MAX (((VT1_BITMAP_PAGES_MAX + 63) / 64) * 8)
/* Unmap notifications of one entry before giving up (the kernel BUG()s). */
#define VT1_NOTIFY_RETRIES 10

/* A pinned CPU page of an entry, counted per pin (the kernel's vfio_pfn). */
struct vt1_pin {
	struct uiommu_itree_node node; /* [iova, iova] */
	uint64_t refs;
};

struct vt1_dma {
	struct uiommu_itree_node node; /* [iova, last] */
	uint64_t vaddr;
	uint32_t prot;          /* UIOMMU_PROT_* */
	bool vaddr_invalid;     /* UNMAP VADDR: out of the IOAS until MAP VADDR */
	bool iommu_mapped;      /* mapped while an IOMMU-backed group was attached */
	uint64_t *bitmap;       /* while dirty tracking: one bit per container page */
	struct uiommu_itree pins;
};

static inline uint64_t dma_size(const struct vt1_dma *d)
{
	return d->node.last - d->node.start + 1;
}

/* One range of a device's DMA log: a bit per granule of [start, last]. */
struct vt1_log_range {
	uint64_t start, last;   /* granule aligned */
	uint64_t *bits;
};

/* The device's own record of its DMA writes (VFIO_DEVICE_FEATURE_DMA_LOGGING_*). */
struct vt1_log {
	pthread_mutex_t lock;   /* protects everything below */
	bool capable;           /* the device has logging ops */
	bool started;
	unsigned int shift;     /* log2 of the granule */
	uint32_t nr;
	struct vt1_log_range *ranges; /* sorted by start, disjoint */
};

struct uiommu_vfio_device {
	struct uiommu_vfio_device *next;
	char *name;
	struct uiommu_vfio_group *group;
	struct uiommu_hwdev *hw;        /* IOMMU-backed device, or NULL */
	struct uiommu_vfio_emudev *emu; /* emulated device, or NULL */
	struct vt1_log log;
};

struct uiommu_vfio_emudev {
	struct uiommu_vfio_device dev;
	struct uiommu_vfio_emudev_ops ops;
	void *opaque;
};

struct vt1_devfd {
	struct vt1_devfd *next;
	int fd;
	struct uiommu_vfio_device *dev;
};

struct uiommu_vfio_group {
	pthread_mutex_t lock;           /* protects container and fds */
	uint32_t id;
	bool emulated;
	struct uiommu_vfio_device *devices;
	struct vt1_devfd *fds;          /* open device fds (container users) */
	struct uiommu_vfio_container *container;
	struct uiommu_vfio_group *next; /* in container->groups */
	/* While attached to the iommu of an IOMMU-backed container: */
	bool attached;
	bool pinned_scope;              /* pinned-page dirty scope */
	struct uiommu_domain *domain;   /* IOMMU-backed groups */
	uint64_t aperture_start, aperture_last;
};

struct uiommu_vfio_container {
	pthread_mutex_t lock;
	int fd;
	struct uiommu_vfio_group *groups;
	uint32_t opts;
	uint32_t dma_limit;
	/* The iommu (type set): */
	unsigned long type;             /* 0 = none */
	bool v2;
	struct uiommu_ioas *ioas;
	struct uiommu_itree dmas;
	uint32_t dma_avail;
	uint64_t pgsize_bitmap;
	struct uiommu_iova_list iovas;  /* valid IOVA list; empty = any */
	unsigned int nr_domains;
	unsigned int nr_emulated;
	unsigned int num_non_pinned;    /* IOMMU-backed groups not in pinned scope */
	unsigned int vaddr_invalid_count;
	bool dirty_tracking;
};

static inline uint64_t vt1_pgsize(const struct uiommu_vfio_container *c)
{
	return c->pgsize_bitmap & -c->pgsize_bitmap;
}

static inline unsigned int vt1_pgshift(const struct uiommu_vfio_container *c)
{
	return (unsigned int)__builtin_ctzll(c->pgsize_bitmap);
}

/* ---- containers (vfio_type1.c) ---- */
/* Frees the iommu part: every entry, the IOAS, the valid list. */
void vt1_iommu_release(struct uiommu_vfio_container *c);
void vt1_update_pgsize_bitmap(struct uiommu_vfio_container *c);

/* ---- groups (vfio_type1_group.c) ---- */
int vt1_group_attach(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g);
void vt1_group_detach(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g);
/* The group's reserved regions (union over its devices) fed to @fn. */
int vt1_group_for_each_resv(const struct uiommu_vfio_group *g,
			    int (*fn)(void *opaque, uint64_t start, uint64_t last), void *opaque);
bool vt1_group_dirty_capable(const struct uiommu_vfio_group *g);

/*
 * The group's container, locked (c->lock held), or NULL. g->lock is held
 * only until c->lock is taken: membership changes need both.
 */
struct uiommu_vfio_container *vt1_group_lock_container(struct uiommu_vfio_group *g);
bool vt1_group_in_container(struct uiommu_vfio_group *g);

/* ---- device DMA logs (vfio_type1_log.c) ---- */
void vt1_log_init(struct vt1_log *log);
/* Stops logging and frees; the log stays usable. */
void vt1_log_fini(struct vt1_log *log);
/* The device wrote [iova, iova + len): record it while logging. */
void vt1_log_mark(struct vt1_log *log, uint64_t iova, uint64_t len);

/* ---- entries (vfio_type1_dma.c) ---- */
struct vt1_dma *vt1_dma_find(struct uiommu_vfio_container *c, uint64_t start, uint64_t last);
struct vt1_dma *vt1_dma_first(struct uiommu_vfio_container *c, uint64_t start, uint64_t last);
struct vt1_dma *vt1_dma_next(struct vt1_dma *d, uint64_t start, uint64_t last);
/* Removes from the IOAS and the tree, unpins, frees; dma_avail++. */
void vt1_dma_remove(struct uiommu_vfio_container *c, struct vt1_dma *d);
/* The range must not start or end inside an entry (v2 UNMAP, GET_BITMAP). */
int vt1_check_no_bisect(struct uiommu_vfio_container *c, uint64_t iova, uint64_t last);

/* ---- dirty tracking (vfio_type1_dirty.c) ---- */
int vt1_dma_bitmap_alloc(struct uiommu_vfio_container *c, struct vt1_dma *d);
void vt1_dma_bitmap_free(struct vt1_dma *d);
/* Sets the entry's bits of [iova, last] (clipped); no-op without tracking. */
void vt1_dma_mark_dirty(struct uiommu_vfio_container *c, struct vt1_dma *d, uint64_t iova,
			uint64_t last);
/* The user bitmap of one report: bit 0 stands for @base. */
struct vt1_ubitmap {
	uint64_t *data;         /* user pointer */
	uint64_t base;
	bool direct;            /* its words were checked writable: stored to directly */
};
/* Checks the words of @npages bits writable once, so entries are merged directly. */
void vt1_ubitmap_init(struct vt1_ubitmap *ub, uint64_t *data, uint64_t base, uint64_t npages);
/* Reports @d into the user bitmap, then resets its bits (kept on -EFAULT). */
int vt1_dma_report(struct uiommu_vfio_container *c, struct vt1_dma *d,
		   const struct vt1_ubitmap *ub);
/* Folds the real dirty bits of the IOMMU into @d (opt-in), before it leaves the IOAS. */
void vt1_dma_harvest_iommu(struct uiommu_vfio_container *c, struct vt1_dma *d);
/* Group with IOMMU dirty bits joins or leaves while tracking. */
void vt1_dirty_group_attached(struct uiommu_vfio_container *c, struct uiommu_vfio_group *g);
void vt1_dirty_mark_all(struct uiommu_vfio_container *c);

/* ---- pinning (vfio_type1_pin.c) ---- */
void vt1_dma_unpin_all(struct vt1_dma *d);
/* Asks every emulated device in @c to unpin [iova, last]; drops c->lock meanwhile. */
void vt1_notify_unmap(struct uiommu_vfio_container *c, uint64_t iova, uint64_t last);

/* ---- registry (vfio_type1.c) ---- */
int vt1_fd_open(void);
void vt1_fd_close(int fd);

/* VFIO_DEVICE_GET_INFO of a device that only DMAs (no regions, no IRQs). */
int vfio_device_get_info_dma_only(void *arg);

#endif
