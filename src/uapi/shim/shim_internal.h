/* SPDX-License-Identifier: MIT */
/*
 * Private interfaces between the files of the LD_PRELOAD shim. The theory of
 * operation is at the top of preload.c.
 */
#ifndef UIOMMU_SHIM_INTERNAL_H
#define UIOMMU_SHIM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uiommu/iommufd.h>
#include <uiommu/vfio_type1.h>

#include "uapi/shim/devcfg.h"

/* ---- the C library's own functions (preload.c) ---- */

struct shim_real {
	int (*openat)(int dirfd, const char *path, int flags, ...);
	int (*close)(int fd);
	int (*ioctl)(int fd, unsigned long request, ...);
	ssize_t (*read)(int fd, void *buf, size_t count);
	ssize_t (*write)(int fd, const void *buf, size_t count);
	int (*dup)(int fd);
	int (*dup2)(int fd, int fd2);
	int (*dup3)(int fd, int fd2, int flags);
	int (*fcntl)(int fd, int cmd, ...);
	int (*close_range)(unsigned int first, unsigned int last, int flags); /* may be NULL */
	void (*closefrom)(int lowfd);                                        /* may be NULL */
};

/* Resolved on first use; never NULL except where noted. */
const struct shim_real *uiommu__shim_real(void);

/* The one message the shim prints: a configuration error, once per process. */
void uiommu__shim_config_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- VFIO type1: containers, groups, group devices (vfio_group.c) ---- */

struct shim_file;

int uiommu__shim_vfio_container_open(int flags);
/* @name is what follows "/dev/vfio/": a group number. NOT_OURS-free: -ENOENT. */
int uiommu__shim_vfio_group_open(const char *name, int flags);
long uiommu__shim_vfio_ioctl(struct shim_file *f, unsigned long request, void *arg);
/* The last fd of a container, group or group device file went away. */
void uiommu__shim_vfio_release(struct shim_file *f);

/* A real fd (memfd named @name) for @f, installed in the table (preload.c).
 * Consumes the reference of @f. Returns the fd or -errno. */
int uiommu__shim_file_open_fd(struct shim_file *f, const char *name, int flags);

/* ---- files and the fd table (fdtable.c) ---- */

enum shim_kind {
	SHIM_FILE_IOMMUFD = 1, /* /dev/iommu: a context */
	SHIM_FILE_CTX_FD,      /* an fd a context made through its fd_ops: a fault
				* queue's or an access's */
	SHIM_FILE_VFIO_DEV,    /* /dev/vfio/devices/vfioN */
	SHIM_FILE_VFIO_CONTAINER, /* /dev/vfio/vfio: a type1 container */
	SHIM_FILE_VFIO_GROUP,  /* /dev/vfio/N */
	SHIM_FILE_VFIO_GROUP_DEV, /* a device fd from VFIO_GROUP_GET_DEVICE_FD */
};

struct shim_vdev;
struct shim_vgroup;

/*
 * What a kernel "struct file" is to an fd: dup'ed fds share one. @refs counts
 * the fds in the table plus the calls in flight (as fget does); the last put
 * releases what the file holds.
 */
struct shim_file {
	enum shim_kind kind;
	unsigned int refs;          /* atomic */
	struct uiommu_ctx *ctx;     /* IOMMUFD, ACCESS: one context reference */
	struct shim_vdev *vdev;     /* VFIO_DEV, VFIO_GROUP_DEV */
	struct uiommu_vfio_container *vc; /* VFIO_CONTAINER */
	struct shim_vgroup *vg;     /* VFIO_GROUP, VFIO_GROUP_DEV */
	struct shim_file *parent;   /* VFIO_GROUP_DEV: its group's file (a reference) */
	int libfd;                  /* VFIO_GROUP_DEV: the library's device fd */
	struct shim_file *deferred; /* link of the per-thread deferred-put list */
};

/* A new file with one reference (for the fd it will be installed at). */
struct shim_file *uiommu__shim_file_new(enum shim_kind kind);
void uiommu__shim_file_get(struct shim_file *f);
void uiommu__shim_file_put(struct shim_file *f);

/* True when the table may hold any fd: the fast path for everything else. */
bool uiommu__shim_fd_any(void);
/* True when it may hold a SHIM_FILE_CTX_FD: the fast path of read and write. */
bool uiommu__shim_fd_any_ctx_fd(void);
/* The file at @fd with a reference, or NULL. */
struct shim_file *uiommu__shim_fd_get(int fd);
/* Removes @fd from the table; its reference goes to the caller. NULL if absent. */
struct shim_file *uiommu__shim_fd_take(int fd);
/*
 * Puts @f (whose reference it consumes; may be NULL) at @fd and returns what
 * was there before (with its reference), NULL if nothing. -ENOMEM leaves the
 * table unchanged and is returned through @err.
 */
struct shim_file *uiommu__shim_fd_install(int fd, struct shim_file *f, int *err);
/* The lowest fd in [from, last] present in the table, or -1. */
int uiommu__shim_fd_next(int from, int last);
/* Fork support: hold and release the table lock around fork(). */
void uiommu__shim_fd_lock(void);
void uiommu__shim_fd_unlock(void);

/* ---- emulated devices (devices.c, vfio_cdev.c, dma.c) ---- */

/* How a device's DMA thread writes: 0 or -errno, as uiommu_device_dma_write. */
typedef int (*shim_dma_write_fn)(void *opaque, uint64_t iova, const void *buf, size_t len);

struct shim_dma {
	pthread_t thread;
	bool running;               /* protected by the device lock */
	pid_t pid;                  /* process that started the thread */
	int stop;                   /* atomic: ask the thread to return */
	const struct uiommu_devcfg_dev *cfg;
	shim_dma_write_fn write;
	void *opaque;
};

/* The pins of a pin=N mdev device (pins.c). */
struct shim_pins {
	pthread_mutex_t lock;               /* protects everything below */
	struct uiommu_vfio_emudev *emu;
	uint64_t iova;                      /* first page: the DMA window's start */
	uint32_t npages;
	void **pages;                       /* host address while pinned, else NULL */
	uint32_t nr_pinned;
	uint64_t retry_ns;                  /* no pin attempt before (CLOCK_MONOTONIC) */
};

struct shim_vdev {
	unsigned int index;                 /* N of /dev/vfio/devices/vfioN */
	const struct uiommu_devcfg_dev *cfg;
	struct uiommu_hwdev *hw;
	/* Serializes bind, attach, detach, unbind and DMA start/stop. */
	pthread_mutex_t lock;
	const struct shim_file *owner;      /* the device file that bound it */
	struct uiommu_ctx *ctx;             /* bound context (one reference) */
	uint32_t dev_id;
	bool attached;
	struct shim_dma dma;
	/* Devices with group= (then no cdev): */
	struct shim_vgroup *vg;
	struct uiommu_vfio_device *t1dev;
	struct uiommu_vfio_emudev *emu;     /* kind=mdev */
	unsigned int t1_opens;              /* open device fds; DMA runs while > 0 */
	struct shim_pins pins;              /* pin=N (pages NULL without) */
};

/* A VFIO group of UIOMMU_DEVICES, /dev/vfio/<id>; lives as long as the process. */
struct shim_vgroup {
	uint32_t id;
	struct uiommu_vfio_group *g;
	pthread_mutex_t lock;               /* protects open and cfile */
	bool open;                          /* one group file at a time, as the kernel */
	struct shim_file *cfile;            /* the container file it joined (a reference) */
};

/* True when UIOMMU_DEVICES is set: the shim then owns /dev/vfio/devices/. */
bool uiommu__shim_devices_claimed(void);
/* Device @index, or NULL (-ENOENT) when it is not configured. */
struct shim_vdev *uiommu__shim_vdev(unsigned int index);
/* VFIO group @id, or NULL when no device names it. */
struct shim_vgroup *uiommu__shim_vgroup(uint32_t id);
/* The device of the registry that is @d, or NULL. */
struct shim_vdev *uiommu__shim_vdev_of(const struct uiommu_vfio_device *d);
/* Parse UIOMMU_DEVICES now (reports a bad value once). */
void uiommu__shim_devices_init(void);
/* Fork support for the device locks and DMA threads. */
void uiommu__shim_devices_fork_prepare(void);
void uiommu__shim_devices_fork_parent(void);
void uiommu__shim_devices_fork_child(void);

long uiommu__shim_vdev_ioctl(struct shim_file *f, unsigned long request, void *arg);
/* The last fd of a device file went away: stop DMA, unbind, drop the context. */
void uiommu__shim_vdev_release(struct shim_file *f);

/* DMA thread: start while attached (device lock held), stop at detach. */
int uiommu__shim_dma_start(struct shim_dma *dma, const struct uiommu_devcfg_dev *cfg,
			   shim_dma_write_fn write, void *opaque);
void uiommu__shim_dma_stop(struct shim_dma *dma);
/* In a forked child: the thread does not exist there. */
void uiommu__shim_dma_forget(struct shim_dma *dma);

/* ---- pinning mdev devices (pins.c) ---- */

/* For a device with pin_pages: 0 or -ENOMEM. fini is NULL-safe (no pins). */
int uiommu__shim_pins_init(struct shim_pins *p, struct uiommu_vfio_emudev *emu,
			   const struct uiommu_devcfg_dev *cfg);
void uiommu__shim_pins_fini(struct shim_pins *p);
/*
 * The DMA thread writes [iova, iova + len): pins what is not pinned yet (when
 * due), then writes into the pinned page. -ENOENT when the chunk is not in a
 * pinned page (the caller writes through the container instead).
 */
int uiommu__shim_pins_write(struct shim_pins *p, uint64_t iova, const void *buf, size_t len);
/* The unmap notifier: unpins every pinned page in [iova, iova + length). */
void uiommu__shim_pins_unmap(struct shim_pins *p, uint64_t iova, uint64_t length);
/* The last device fd closed (DMA stopped): unpins everything. */
void uiommu__shim_pins_release(struct shim_pins *p);
/* Fork support (no-ops without pins). */
void uiommu__shim_pins_lock(struct shim_pins *p);
void uiommu__shim_pins_unlock(struct shim_pins *p);

#endif
