/* SPDX-License-Identifier: MIT */
/*
 * Private to the front ends: the context's object table and the objects in it.
 *
 * Every object has an id (from 1 up, lowest free first, as the kernel's
 * xarray allocation does) and a count of "users": references held by other
 * objects (an IOAS is used by its HWPTs and accesses, a HWPT by the devices
 * attached to it, a bound device by its binder). DESTROY only removes an
 * object nobody uses (-EBUSY otherwise), so an id is never reused while
 * anything refers to it. Hidden objects (accesses) take an id but cannot be
 * looked up, as in the kernel.
 *
 * ctx->lock serializes everything in a context; the functions here expect it
 * held unless they say otherwise.
 */
#ifndef UIOMMU_UAPI_INTERNAL_H
#define UIOMMU_UAPI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uiommu/ioas.h>
#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/uapi/iommufd.h>

#include "core/core_internal.h"

enum obj_type {
	OBJ_ANY = 0,
	OBJ_IOAS,
	OBJ_HWPT,        /* a paging HWPT: an IO page table that mirrors an IOAS */
	OBJ_HWPT_NESTED, /* a user-managed stage 1 over a paging parent (nested.c) */
	OBJ_DEVICE,
	OBJ_ACCESS,
	OBJ_SELFTEST,
	OBJ_FAULT,       /* an IO page-fault queue and its fd (fault.c) */
};

struct obj {
	uint32_t id;
	enum obj_type type;
	unsigned int users;
	bool hidden;
};

struct hwpt_obj;
struct fault_obj;

struct ioas_obj {
	struct obj obj;
	struct uiommu_ioas *ioas;
};

/*
 * User data of HWPT_ALLOC (one struct) and of HWPT_INVALIDATE (an array of
 * entry_num entries of entry_len bytes), as the caller described them.
 */
struct user_data {
	uint32_t type;
	uint32_t len;
	const void *uptr;
};

struct user_data_array {
	uint32_t type;
	uint32_t entry_len;
	uint32_t entry_num;
	const void *uptr;
};

/*
 * What an IOMMU driver adds for nesting (the kernel's domain_alloc_user with a
 * parent, and cache_invalidate_user). A device whose hwdev has no nest_ops
 * cannot allocate nested HWPTs.
 */
struct nest_ops {
	/* Driver state of a nested HWPT from @data: 0, -EOPNOTSUPP (type),
	 * -EINVAL (length), -EFAULT, -ENOMEM. */
	int (*alloc)(const struct user_data *data, void **state);
	/* Handles the entries in order; *done = how many, also on error. */
	int (*invalidate)(void *state, const struct user_data_array *array, uint32_t *done);
	void (*free)(void *state);
};

/*
 * A HWPT, paging (OBJ_HWPT) or nested (OBJ_HWPT_NESTED). A nested HWPT has no
 * page table of its own: it borrows its parent's domain, IOAS, cfg and
 * aperture, so a device attached to it DMAs through the parent's page table
 * (nested.c says why).
 */
struct hwpt_obj {
	struct obj obj;
	struct ioas_obj *ioas;
	struct uiommu_domain *domain;  /* nested: the parent's */
	struct uiommu_domain_cfg cfg;  /* what a device must match to attach */
	uint64_t aperture_start, aperture_last;
	bool auto_domain;      /* made by attaching to an IOAS; freed with its last device */
	bool dirty_ops;        /* allocated with DIRTY_TRACKING */
	bool nest_parent;      /* allocated with NEST_PARENT: nested HWPTs may use it */
	unsigned int devices;  /* attached devices */
	const struct nest_ops *nest_ops; /* the allocating device driver's, or NULL */
	struct hwpt_obj *parent;         /* nested: the paging HWPT it holds a user of */
	void *nest_state;                /* nested: the driver's state */
	struct fault_obj *fault;         /* IO page faults go here (FAULT_ID_VALID), or NULL */
};

struct device_obj {
	struct obj obj;
	struct uiommu_hwdev *hw;
	struct hwpt_obj *hwpt; /* attached to, or NULL */
};

struct uiommu_hwdev {
	struct uiommu_hwdev_cfg cfg;  /* name, reserved and hw_info point into this object */
	struct uiommu_device *dma;
	struct uiommu_iova_range *reserved;
	char *name;
	void *hw_info;
	struct uiommu_ctx *bound;
	const struct nest_ops *nest_ops; /* the driver's nesting support, or NULL */
};

struct uiommu_ctx {
	pthread_mutex_t lock;
	unsigned int refs;              /* atomic */
	struct obj **table;             /* index = id; NULL = free */
	uint32_t table_cap;
	uint32_t nr_objs;
	struct ioas_obj *vfio_ioas;     /* the VFIO compat IOAS */
	bool account_mm;                /* RLIMIT_MODE */
	struct uiommu_ctx_fd_ops fd_ops;
	struct selftest_state *selftest;
};

/* ---- object table (ctx.c) ---- */
int obj_add(struct uiommu_ctx *ctx, struct obj *obj, enum obj_type type);
void obj_remove(struct uiommu_ctx *ctx, struct obj *obj);
struct obj *obj_find(struct uiommu_ctx *ctx, uint32_t id, enum obj_type type);
struct ioas_obj *ioas_find(struct uiommu_ctx *ctx, uint32_t id);
int ioas_obj_create(struct uiommu_ctx *ctx, struct ioas_obj **out);
void ioas_obj_destroy(struct uiommu_ctx *ctx, struct ioas_obj *ioas);
/* DESTROY: -ENOENT, -EBUSY, or 0 with the object gone. */
int obj_destroy_by_id(struct uiommu_ctx *ctx, uint32_t id);

/* ---- HWPTs and device attachment (hwpt.c) ---- */
int hwpt_paging_alloc(struct uiommu_ctx *ctx, struct ioas_obj *ioas, struct device_obj *dev,
		      uint32_t flags, bool auto_domain, struct hwpt_obj **out);
void hwpt_obj_destroy(struct uiommu_ctx *ctx, struct hwpt_obj *hwpt);
/* Attach (replace when already attached) to an IOAS or HWPT id; *pt_id out. */
int device_attach_pt(struct uiommu_ctx *ctx, struct device_obj *dev, uint32_t *pt_id);
void device_detach(struct uiommu_ctx *ctx, struct device_obj *dev);
int device_obj_bind(struct uiommu_ctx *ctx, struct uiommu_hwdev *hw, struct device_obj **out);
void device_obj_unbind(struct uiommu_ctx *ctx, struct device_obj *dev);
struct device_obj *device_find(struct uiommu_ctx *ctx, uint32_t id);
/* A paging HWPT; nested ones are not found (the kernel's get_hwpt_paging). */
struct hwpt_obj *hwpt_find(struct uiommu_ctx *ctx, uint32_t id);

/* ---- nested HWPTs and HWPT_INVALIDATE (nested.c) ---- */
int hwpt_nested_alloc(struct uiommu_ctx *ctx, struct hwpt_obj *parent, struct device_obj *dev,
		      const struct iommu_hwpt_alloc *cmd, struct hwpt_obj **out);
/* Undoes what hwpt_nested_alloc() took (driver state, the parent's user). */
void hwpt_nested_fini(struct hwpt_obj *hwpt);
struct hwpt_obj *hwpt_nested_find(struct uiommu_ctx *ctx, uint32_t id);
/* One element of the caller's data as the driver's struct: @size bytes, of
 * which at least @min_size must be given; -EINVAL, -EFAULT. */
int user_data_copy(void *dst, size_t size, size_t min_size, const struct user_data *src);
int user_data_array_copy(void *dst, size_t size, size_t min_size,
			 const struct user_data_array *src, uint32_t index);

/* ---- ioctl framing (iommufd.c) ---- */
struct ucmd {
	struct uiommu_ctx *ctx;
	void *ubuffer;
	uint32_t user_size;
	void *cmd;
};
int ucmd_respond(struct ucmd *ucmd, size_t length);
int hwpt_invalidate(struct ucmd *ucmd);       /* nested.c */
int fault_queue_alloc(struct ucmd *ucmd);     /* fault.c */

/* ---- IO page-fault queues (fault.c) ---- */
/* Makes @hwpt report its IO page faults to fault object @fault_id: -ENOENT. */
int hwpt_fault_set(struct uiommu_ctx *ctx, struct hwpt_obj *hwpt, uint32_t fault_id);
void hwpt_fault_clear(struct hwpt_obj *hwpt);
/* @dev leaves @hwpt: its faults still queued or unanswered are answered
 * "invalid" and dropped, as the kernel does at detach. */
void fault_drop_device(struct hwpt_obj *hwpt, const struct device_obj *dev);
/* A device reports an IO page fault (the last of its group): 0 when queued,
 * -ENODEV when nothing takes it, -ENOMEM. */
int fault_report(struct device_obj *dev, const struct iommu_hwpt_pgfault *msg);
void fault_obj_destroy(struct uiommu_ctx *ctx, struct fault_obj *fault);
/* 0 when @fd was a fault queue's fd (now released), -ENOENT otherwise. */
int fault_close_fd(struct uiommu_ctx *ctx, int fd);

/* ---- selftest ops (selftest.c) and VFIO compat (vfio_compat.c) ---- */
int selftest_cmd(struct ucmd *ucmd);
int selftest_obj_destroy(struct uiommu_ctx *ctx, struct obj *obj);
void selftest_ctx_fini(struct uiommu_ctx *ctx);
/* 0 when @fd was an access fd (now released), -ENOENT otherwise. */
int selftest_close_fd(struct uiommu_ctx *ctx, int fd);
/* The mock driver's nesting, MD_CHECK_IOTLB and TRIGGER_IOPF (selftest_nested.c). */
extern const struct nest_ops mock_nest_ops;
struct iommu_test_cmd;
int selftest_check_iotlb(struct ucmd *ucmd, struct iommu_test_cmd *cmd);
int selftest_trigger_iopf(struct ucmd *ucmd, struct iommu_test_cmd *cmd);
long vfio_compat_ioctl(struct uiommu_ctx *ctx, unsigned long cmd, void *arg);
int vfio_compat_ioas(struct ucmd *ucmd);

#endif
