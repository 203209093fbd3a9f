// SPDX-License-Identifier: MIT
/*
 * The type1 ioctl front end: the container's and the groups' ioctls with the
 * kernel's structs (<linux/vfio.h>), argsz rules, check order and errnos.
 *
 * Every handler reads the user struct first (a bad pointer is -EFAULT, never
 * a crash: src/core/ucopy.c), checks argsz and flags as the kernel's handler
 * does, then calls the native function (vfio_type1_*.c) for the checks the
 * kernel makes under its lock. Results go back only on success (UNMAP's
 * size is not written back on error, as in the kernel).
 *
 * Container commands other than GET_API_VERSION, CHECK_EXTENSION and
 * SET_IOMMU reach type1 only once SET_IOMMU chose it; before that the
 * container answers -EINVAL, after it type1 answers unknown commands with
 * -ENOTTY.
 *
 * GET_INFO builds its capability chain as vfio_info_cap_add does: MIGRATION,
 * DMA_AVAIL, then IOVA_RANGE (only with a non-empty valid list), each
 * footprint rounded up to 8 bytes, 'next' offsets from the start of the
 * user's struct. A buffer too small for the chain still succeeds: CAPS set,
 * cap_offset 0, argsz = the size needed, nothing written past the struct.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stddef.h>
#include <string.h>

#include <uiommu/bitmap.h>

#include "uapi/vfio_type1_internal.h"

#define offsetofend(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))
#define CAP_ALIGN(n) (((n) + 7) & ~(size_t)7)

/* access_ok() on x86-64: the range ends below TASK_SIZE_MAX. */
#define USER_ADDR_MAX ((1ull << 47) - 4096)

_Static_assert(sizeof(struct vfio_iommu_type1_info) == 24, "vfio_iommu_type1_info");
_Static_assert(sizeof(struct vfio_iommu_type1_info_cap_migration) == 32, "cap_migration");
_Static_assert(sizeof(struct vfio_iommu_type1_dma_map) == 32, "dma_map");
_Static_assert(sizeof(struct vfio_iommu_type1_dma_unmap) == 24, "dma_unmap");
_Static_assert(sizeof(struct vfio_bitmap) == 24, "vfio_bitmap");
_Static_assert(sizeof(struct vfio_iommu_type1_dirty_bitmap_get) == 40, "dirty_bitmap_get");

static bool user_range_ok(uint64_t addr, uint64_t size)
{
	return size <= USER_ADDR_MAX && addr <= USER_ADDR_MAX - size;
}

/* The kernel's verify_bitmap_size(). */
static int verify_bitmap_size(uint64_t npages, uint64_t bytes)
{
	if (!npages || !bytes || bytes > VT1_BITMAP_SIZE_MAX ||
	    bytes < uiommu_bitmap_words(npages) * 8)
		return -EINVAL;
	return 0;
}

/* The front end's bitmap checks (UNMAP step 3, GET_BITMAP steps 3 and 4). */
static int check_user_bitmap(const struct vfio_bitmap *bm, uint64_t size)
{
	if (!user_range_ok((uintptr_t)bm->data, bm->size))
		return -EINVAL;
	/* pgsize 0 has no bit shift (the kernel's __ffs(0) is undefined). */
	if (!bm->pgsize)
		return -EINVAL;
	return verify_bitmap_size(size >> __builtin_ctzll(bm->pgsize), bm->size);
}

/* ---- GET_INFO ---- */

struct caps {
	char *buf;
	size_t size;
	size_t last; /* offset of the last cap added, for its 'next' */
};

static void *cap_add(struct caps *caps, size_t size, uint16_t id)
{
	size_t off = caps->size, grown = off + CAP_ALIGN(size);
	char *buf = uiommu__zalloc(grown);
	struct vfio_info_cap_header *hdr;

	if (!buf)
		return NULL;
	if (caps->size)
		memcpy(buf, caps->buf, caps->size);
	uiommu__free(caps->buf);
	caps->buf = buf;
	if (off) /* chain the previous cap; rebased on the struct later */
		((struct vfio_info_cap_header *)(buf + caps->last))->next = (uint32_t)off;
	caps->last = off;
	caps->size = grown;
	hdr = (struct vfio_info_cap_header *)(buf + off);
	hdr->id = id;
	hdr->version = 1;
	return hdr;
}

static int caps_build(struct uiommu_vfio_container *c, struct caps *caps)
{
	struct vfio_iommu_type1_info_cap_migration *mig;
	struct vfio_iommu_type1_info_dma_avail *avail;
	struct vfio_iommu_type1_info_cap_iova_range *r;
	size_t n = c->iovas.nr;

	mig = cap_add(caps, sizeof(*mig), VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	if (!mig)
		return -ENOMEM;
	mig->pgsize_bitmap = vt1_pgsize(c);
	mig->max_dirty_bitmap_size = VT1_BITMAP_SIZE_MAX;
	avail = cap_add(caps, sizeof(*avail), VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	if (!avail)
		return -ENOMEM;
	avail->avail = c->dma_avail;
	if (!n)
		return 0; /* only emulated groups: no IOVA_RANGE cap */
	r = cap_add(caps, sizeof(*r) + n * sizeof(r->iova_ranges[0]),
		    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	if (!r)
		return -ENOMEM;
	r->nr_iovas = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		r->iova_ranges[i].start = c->iovas.ranges[i].start;
		r->iova_ranges[i].end = c->iovas.ranges[i].last;
	}
	return 0;
}

/* Offsets become relative to the user's struct, which the caps follow. */
static void caps_shift(struct caps *caps, size_t by)
{
	for (size_t off = 0; off < caps->size;) {
		struct vfio_info_cap_header *hdr = (void *)(caps->buf + off);

		if (!hdr->next)
			break;
		off = hdr->next;
		hdr->next += (uint32_t)by;
	}
}

static int info_fill(struct uiommu_vfio_container *c, struct vfio_iommu_type1_info *info,
		     struct caps *caps)
{
	int ret;

	pthread_mutex_lock(&c->lock);
	info->flags = VFIO_IOMMU_INFO_PGSIZES;
	info->iova_pgsizes = c->pgsize_bitmap;
	ret = caps_build(c, caps);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static int ioctl_get_info(struct uiommu_vfio_container *c, void *arg)
{
	size_t minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
	struct vfio_iommu_type1_info info = { 0 };
	struct caps caps = { 0 };
	int ret;

	if (uiommu__copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	minsz = u64_min(info.argsz, sizeof(info));
	ret = info_fill(c, &info, &caps);
	if (ret)
		goto out_free_caps;
	info.flags |= VFIO_IOMMU_INFO_CAPS;
	if (info.argsz < sizeof(info) + caps.size) {
		info.argsz = (uint32_t)(sizeof(info) + caps.size);
	} else {
		caps_shift(&caps, sizeof(info));
		ret = uiommu__copy_to_user((char *)arg + sizeof(info), caps.buf, caps.size);
		if (ret)
			goto out_free_caps;
		info.cap_offset = sizeof(info);
	}
	ret = uiommu__copy_to_user(arg, &info, minsz);
out_free_caps:
	uiommu__free(caps.buf);
	return ret;
}

/* ---- MAP, UNMAP ---- */

static int ioctl_map_dma(struct uiommu_vfio_container *c, void *arg)
{
	const uint32_t mask =
		VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
	struct vfio_iommu_type1_dma_map map;

	if (uiommu__copy_from_user(&map, arg, minsz))
		return -EFAULT;
	if (map.argsz < minsz || (map.flags & ~mask))
		return -EINVAL;
	return uiommu_vfio_map_dma(c, map.flags, map.vaddr, map.iova, map.size);
}

static int unmap_read_bitmap(const struct vfio_iommu_type1_dma_unmap *unmap, const char *arg,
			     struct vfio_bitmap *bm)
{
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);

	if (unmap->argsz < minsz + sizeof(*bm))
		return -EINVAL;
	if (uiommu__copy_from_user(bm, arg + minsz, sizeof(*bm)))
		return -EFAULT;
	return check_user_bitmap(bm, unmap->size);
}

static int ioctl_unmap_dma(struct uiommu_vfio_container *c, void *arg)
{
	const uint32_t mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL |
			      VFIO_DMA_UNMAP_FLAG_VADDR;
	size_t minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
	struct vfio_iommu_type1_dma_unmap unmap;
	struct vfio_bitmap bm = { 0 };
	struct uiommu_vfio_bitmap nbm;
	uint64_t unmapped = 0;
	bool get_dirty;
	int ret;

	if (uiommu__copy_from_user(&unmap, arg, minsz))
		return -EFAULT;
	if (unmap.argsz < minsz || (unmap.flags & ~mask))
		return -EINVAL;
	get_dirty = unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	if (get_dirty && (unmap.flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR)))
		return -EINVAL;
	if (get_dirty && (ret = unmap_read_bitmap(&unmap, arg, &bm)))
		return ret;
	nbm = (struct uiommu_vfio_bitmap){ bm.pgsize, bm.size, (uint64_t *)bm.data };
	ret = uiommu_vfio_unmap_dma(c, unmap.flags, unmap.iova, unmap.size,
				    get_dirty ? &nbm : NULL, &unmapped);
	if (ret)
		return ret;
	unmap.size = unmapped;
	return uiommu__copy_to_user(arg, &unmap, minsz);
}

/* ---- DIRTY_PAGES ---- */

static int dirty_get_bitmap(struct uiommu_vfio_container *c, uint32_t argsz, const char *arg)
{
	struct vfio_iommu_type1_dirty_bitmap_get range;
	struct uiommu_vfio_bitmap nbm;
	uint64_t last;
	int ret;

	if (argsz - sizeof(struct vfio_iommu_type1_dirty_bitmap) < sizeof(range))
		return -EINVAL;
	if (uiommu__copy_from_user(&range, arg + sizeof(struct vfio_iommu_type1_dirty_bitmap),
				   sizeof(range)))
		return -EFAULT;
	if (!range.size)
		return -EINVAL;
	if (uiommu_check_add_overflow(range.iova, range.size - 1, &last))
		return -EOVERFLOW;
	ret = check_user_bitmap(&range.bitmap, range.size);
	if (ret)
		return ret;
	nbm = (struct uiommu_vfio_bitmap){ range.bitmap.pgsize, range.bitmap.size,
					   (uint64_t *)range.bitmap.data };
	return uiommu_vfio_dirty_get_bitmap(c, range.iova, range.size, &nbm);
}

static bool container_v2(struct uiommu_vfio_container *c)
{
	bool v2;

	pthread_mutex_lock(&c->lock);
	v2 = c->v2;
	pthread_mutex_unlock(&c->lock);
	return v2;
}

static int ioctl_dirty_pages(struct uiommu_vfio_container *c, void *arg)
{
	const uint32_t mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
			      VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	size_t minsz = offsetofend(struct vfio_iommu_type1_dirty_bitmap, flags);
	struct vfio_iommu_type1_dirty_bitmap dirty;

	if (!container_v2(c))
		return -EACCES;
	if (uiommu__copy_from_user(&dirty, arg, minsz))
		return -EFAULT;
	if (dirty.argsz < minsz || (dirty.flags & ~mask))
		return -EINVAL;
	/* Exactly one operation per call. */
	if (!dirty.flags || (dirty.flags & (dirty.flags - 1)))
		return -EINVAL;
	if (dirty.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
		return uiommu_vfio_dirty_start(c);
	if (dirty.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP)
		return uiommu_vfio_dirty_stop(c);
	return dirty_get_bitmap(c, dirty.argsz, arg);
}

/* ---- container dispatch ---- */

static bool container_has_type(struct uiommu_vfio_container *c)
{
	bool set;

	pthread_mutex_lock(&c->lock);
	set = c->type != 0;
	pthread_mutex_unlock(&c->lock);
	return set;
}

static long type1_ioctl(struct uiommu_vfio_container *c, unsigned long cmd, void *arg)
{
	switch (cmd) {
	case VFIO_IOMMU_GET_INFO:
		return ioctl_get_info(c, arg);
	case VFIO_IOMMU_MAP_DMA:
		return ioctl_map_dma(c, arg);
	case VFIO_IOMMU_UNMAP_DMA:
		return ioctl_unmap_dma(c, arg);
	case VFIO_IOMMU_DIRTY_PAGES:
		return ioctl_dirty_pages(c, arg);
	default:
		return -ENOTTY;
	}
}

UIOMMU_EXPORT long uiommu_vfio_container_ioctl(struct uiommu_vfio_container *c, unsigned long cmd,
					       void *arg)
{
	switch (cmd) {
	case VFIO_GET_API_VERSION:
		return VFIO_API_VERSION;
	case VFIO_CHECK_EXTENSION:
		return uiommu_vfio_check_extension(c, (unsigned long)arg);
	case VFIO_SET_IOMMU:
		return uiommu_vfio_set_iommu(c, (unsigned long)arg);
	default:
		/* Without an IOMMU driver the container passes nothing on. */
		if (!container_has_type(c))
			return -EINVAL;
		return type1_ioctl(c, cmd, arg);
	}
}

/* ---- group ioctls ---- */

static int group_get_status(struct uiommu_vfio_group *g, void *arg)
{
	size_t minsz = offsetofend(struct vfio_group_status, flags);
	struct vfio_group_status st;

	if (uiommu__copy_from_user(&st, arg, minsz))
		return -EFAULT;
	if (st.argsz < minsz)
		return -EINVAL;
	st.flags = VFIO_GROUP_FLAGS_VIABLE;
	if (vt1_group_in_container(g))
		st.flags |= VFIO_GROUP_FLAGS_CONTAINER_SET;
	return uiommu__copy_to_user(arg, &st, minsz);
}

static int group_set_container(struct uiommu_vfio_group *g, void *arg)
{
	struct uiommu_vfio_container *c;
	int32_t fd;

	if (uiommu__copy_from_user(&fd, arg, sizeof(fd)))
		return -EFAULT;
	c = uiommu_vfio_container_from_fd(fd);
	if (!c && (fd < 0 || fcntl(fd, F_GETFD) < 0))
		return -EBADF;
	if (vt1_group_in_container(g))
		return -EINVAL;
	/* An open file that is no container (nor an iommufd, unsupported here). */
	if (!c)
		return -EBADFD;
	return uiommu_vfio_group_set_container(g, c);
}

/*
 * strndup_user(arg, PAGE_SIZE): -EFAULT, or -EINVAL with no NUL in a page.
 * Byte by byte: reading past the NUL could touch memory the caller does not
 * own (names are short, so this costs little).
 */
static int name_from_user(const char *uname, char *buf, size_t cap)
{
	for (size_t i = 0; i < cap; i++) {
		if (uiommu__copy_from_user(&buf[i], uname + i, 1))
			return -EFAULT;
		if (!buf[i])
			return 0;
	}
	return -EINVAL;
}

static int group_get_device_fd(struct uiommu_vfio_group *g, const char *arg)
{
	size_t cap = uiommu__page_size();
	char *name = uiommu__zalloc(cap);
	int ret;

	if (!name)
		return -ENOMEM;
	ret = name_from_user(arg, name, cap);
	if (!ret)
		ret = uiommu_vfio_group_get_device_fd(g, name);
	uiommu__free(name);
	return ret;
}

UIOMMU_EXPORT long uiommu_vfio_group_ioctl(struct uiommu_vfio_group *g, unsigned long cmd,
					   void *arg)
{
	switch (cmd) {
	case VFIO_GROUP_GET_STATUS:
		return group_get_status(g, arg);
	case VFIO_GROUP_SET_CONTAINER:
		return group_set_container(g, arg);
	case VFIO_GROUP_UNSET_CONTAINER:
		return uiommu_vfio_group_unset_container(g);
	case VFIO_GROUP_GET_DEVICE_FD:
		return group_get_device_fd(g, arg);
	default:
		return -ENOTTY;
	}
}
