// SPDX-License-Identifier: MIT
/*
 * Contexts and their object tables: what an open /dev/iommu file holds.
 *
 * Ids come from a growable array indexed by id. Allocation takes the lowest
 * free id from 1 up, like the kernel's xa_alloc, so ids are reused only after
 * the object is gone; an object stays in the table while anything uses it
 * (obj->users), which is what makes DESTROY answer -EBUSY.
 *
 * A context is reference counted: the opener holds one reference, every
 * dup'ed file and every fd the context made (access and fault-queue fds)
 * another. The last put tears the objects down in dependency order (selftest
 * devices, accesses, bound devices, nested HWPTs, paging HWPTs, fault queues,
 * IOASes), so destroy never fails.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "uapi/uapi_internal.h"

static int default_fd_open(void *opaque)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	(void)opaque;
	return fd < 0 ? -errno : fd;
}

static void default_fd_close(void *opaque, int fd)
{
	(void)opaque;
	close(fd);
}

UIOMMU_EXPORT int uiommu_ctx_create(struct uiommu_ctx **out)
{
	struct uiommu_ctx *ctx = uiommu__zalloc(sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->refs = 1;
	ctx->fd_ops.open = default_fd_open;
	ctx->fd_ops.close = default_fd_close;
	*out = ctx;
	return 0;
}

UIOMMU_EXPORT void uiommu_ctx_set_fd_ops(struct uiommu_ctx *ctx,
					 const struct uiommu_ctx_fd_ops *ops)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->fd_ops = *ops;
	pthread_mutex_unlock(&ctx->lock);
}

UIOMMU_EXPORT void uiommu_ctx_get(struct uiommu_ctx *ctx)
{
	__atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
}

/* Destroys every object of @type that nothing uses; returns how many. */
static unsigned int ctx_sweep(struct uiommu_ctx *ctx, enum obj_type type)
{
	unsigned int n = 0;

	for (uint32_t id = 1; id < ctx->table_cap; id++) {
		struct obj *obj = ctx->table[id];

		if (!obj || obj->type != type)
			continue;
		if (type == OBJ_DEVICE) {
			/* Bound by a program that never unbound it. */
			device_obj_unbind(ctx, (struct device_obj *)obj);
			n++;
		} else if (!obj->users && !obj_destroy_by_id(ctx, id)) {
			n++;
		}
	}
	return n;
}

static void ctx_teardown(struct uiommu_ctx *ctx)
{
	static const enum obj_type order[] = { OBJ_SELFTEST, OBJ_DEVICE, OBJ_HWPT_NESTED,
					       OBJ_HWPT,     OBJ_FAULT,  OBJ_IOAS };

	selftest_ctx_fini(ctx);
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		while (ctx_sweep(ctx, order[i]))
			;
	UIOMMU_BUG_ON(ctx->nr_objs);
	uiommu__free(ctx->table);
}

UIOMMU_EXPORT void uiommu_ctx_put(struct uiommu_ctx *ctx)
{
	if (!ctx || __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL))
		return;
	pthread_mutex_lock(&ctx->lock);
	ctx_teardown(ctx);
	pthread_mutex_unlock(&ctx->lock);
	pthread_mutex_destroy(&ctx->lock);
	uiommu__free(ctx);
}

UIOMMU_EXPORT void uiommu_ctx_destroy(struct uiommu_ctx *ctx)
{
	uiommu_ctx_put(ctx);
}

static int table_grow(struct uiommu_ctx *ctx)
{
	uint32_t cap = ctx->table_cap ? ctx->table_cap * 2 : 16;
	struct obj **t;

	if (cap > (1u << 31))
		return -ENOSPC;
	t = uiommu__calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < ctx->table_cap; i++)
		t[i] = ctx->table[i];
	uiommu__free(ctx->table);
	ctx->table = t;
	ctx->table_cap = cap;
	return 0;
}

int obj_add(struct uiommu_ctx *ctx, struct obj *obj, enum obj_type type)
{
	uint32_t id;
	int ret;

	for (id = 1; id < ctx->table_cap && ctx->table[id]; id++)
		;
	if (id >= ctx->table_cap) {
		ret = table_grow(ctx);
		if (ret)
			return ret;
	}
	obj->id = id;
	obj->type = type;
	obj->users = 0;
	ctx->table[id] = obj;
	ctx->nr_objs++;
	return 0;
}

void obj_remove(struct uiommu_ctx *ctx, struct obj *obj)
{
	UIOMMU_BUG_ON(ctx->table[obj->id] != obj);
	ctx->table[obj->id] = NULL;
	ctx->nr_objs--;
}

struct obj *obj_find(struct uiommu_ctx *ctx, uint32_t id, enum obj_type type)
{
	struct obj *obj;

	if (!id || id >= ctx->table_cap)
		return NULL;
	obj = ctx->table[id];
	if (!obj || obj->hidden || (type != OBJ_ANY && obj->type != type))
		return NULL;
	return obj;
}

struct ioas_obj *ioas_find(struct uiommu_ctx *ctx, uint32_t id)
{
	return (struct ioas_obj *)obj_find(ctx, id, OBJ_IOAS);
}

int ioas_obj_create(struct uiommu_ctx *ctx, struct ioas_obj **out)
{
	struct ioas_obj *ioas = uiommu__zalloc(sizeof(*ioas));
	int ret;

	if (!ioas)
		return -ENOMEM;
	ret = uiommu_ioas_create(&ioas->ioas);
	if (ret)
		goto err_free;
	ret = obj_add(ctx, &ioas->obj, OBJ_IOAS);
	if (ret)
		goto err_destroy_ioas;
	*out = ioas;
	return 0;

err_destroy_ioas:
	uiommu_ioas_destroy(ioas->ioas);
err_free:
	uiommu__free(ioas);
	return ret;
}

void ioas_obj_destroy(struct uiommu_ctx *ctx, struct ioas_obj *ioas)
{
	if (ctx->vfio_ioas == ioas)
		ctx->vfio_ioas = NULL;
	obj_remove(ctx, &ioas->obj);
	uiommu_ioas_destroy(ioas->ioas);
	uiommu__free(ioas);
}

int obj_destroy_by_id(struct uiommu_ctx *ctx, uint32_t id)
{
	struct obj *obj = obj_find(ctx, id, OBJ_ANY);

	if (!obj)
		return -ENOENT;
	if (obj->users)
		return -EBUSY;
	switch (obj->type) {
	case OBJ_IOAS:
		ioas_obj_destroy(ctx, (struct ioas_obj *)obj);
		return 0;
	case OBJ_HWPT:
	case OBJ_HWPT_NESTED:
		hwpt_obj_destroy(ctx, (struct hwpt_obj *)obj);
		return 0;
	case OBJ_SELFTEST:
		return selftest_obj_destroy(ctx, obj);
	case OBJ_FAULT:
		fault_obj_destroy(ctx, (struct fault_obj *)obj);
		return 0;
	default:
		/* Devices are released by their binder, accesses by their fd. */
		return -EBUSY;
	}
}

UIOMMU_EXPORT int uiommu_ctx_close_fd(struct uiommu_ctx *ctx, int fd)
{
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = selftest_close_fd(ctx, fd);
	if (ret == -ENOENT)
		ret = fault_close_fd(ctx, fd);
	if (!ret)
		ctx->fd_ops.close(ctx->fd_ops.opaque, fd);
	pthread_mutex_unlock(&ctx->lock);
	if (ret)
		return ret;
	/* The fd's reference; it may be the last. */
	uiommu_ctx_put(ctx);
	return 0;
}
