// SPDX-License-Identifier: MIT
/*
 * The shim's fd table: which fds of the process are files the shim serves.
 *
 * The kernel has an fd table pointing at struct files; dup'ed fds share a
 * file and the file is released when its last fd closes. The shim mirrors
 * that: table[fd] points to a struct shim_file, which counts one reference
 * per fd that names it plus one per call in flight on it (what fget/fput do),
 * so a close() racing with an ioctl() on another thread cannot free the
 * context under the ioctl. The last reference releases what the file holds:
 * a context reference, or a bound device.
 *
 * Locking: table_lock protects the array and its slots; it is a leaf lock
 * held for a few loads and stores only. Nothing is allocated, freed or
 * released under it (an allocator that opened a file would otherwise re-enter
 * the shim and deadlock), and no library function is called under it.
 * nr_live counts the used slots so that programs that never open /dev/iommu
 * pay one load per close() and ioctl(), not a lock; nr_ctx_fds counts the
 * slots that hold fds a context made (fault queues, accesses), so that
 * read() and write() pay one load unless such an fd is open (real VMMs have
 * none until they allocate a fault queue).
 *
 * The array is indexed by fd and grows to the highest shim fd; it is replaced
 * whole (allocated outside the lock, swapped under it).
 *
 * Shim bookkeeping uses plain calloc/free rather than the library's
 * allocator so that fail-nth sweeps of the library are not perturbed by it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "uapi/shim/shim_internal.h"

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_file **table; /* protected by table_lock */
static size_t table_len;         /* protected by table_lock */
static size_t nr_live;           /* atomic; written under table_lock */
static size_t nr_ctx_fds;        /* atomic; written under table_lock */

struct shim_file *uiommu__shim_file_new(enum shim_kind kind)
{
	struct shim_file *f = calloc(1, sizeof(*f));

	if (f) {
		f->kind = kind;
		f->refs = 1;
	}
	return f;
}

void uiommu__shim_file_get(struct shim_file *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void uiommu__shim_file_put(struct shim_file *f)
{
	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL))
		return;
	switch (f->kind) {
	case SHIM_FILE_IOMMUFD:
	case SHIM_FILE_CTX_FD:
		if (f->ctx)
			uiommu_ctx_put(f->ctx);
		break;
	case SHIM_FILE_VFIO_DEV:
		uiommu__shim_vdev_release(f);
		break;
	case SHIM_FILE_VFIO_CONTAINER:
	case SHIM_FILE_VFIO_GROUP:
	case SHIM_FILE_VFIO_GROUP_DEV:
		uiommu__shim_vfio_release(f);
		break;
	}
	free(f);
}

bool uiommu__shim_fd_any(void)
{
	return __atomic_load_n(&nr_live, __ATOMIC_ACQUIRE) != 0;
}

bool uiommu__shim_fd_any_ctx_fd(void)
{
	return __atomic_load_n(&nr_ctx_fds, __ATOMIC_ACQUIRE) != 0;
}

static void slot_set(int fd, struct shim_file *f)
{
	if (!table[fd] && f)
		__atomic_add_fetch(&nr_live, 1, __ATOMIC_RELEASE);
	else if (table[fd] && !f)
		__atomic_sub_fetch(&nr_live, 1, __ATOMIC_RELEASE);
	if (table[fd] && table[fd]->kind == SHIM_FILE_CTX_FD)
		__atomic_sub_fetch(&nr_ctx_fds, 1, __ATOMIC_RELEASE);
	if (f && f->kind == SHIM_FILE_CTX_FD)
		__atomic_add_fetch(&nr_ctx_fds, 1, __ATOMIC_RELEASE);
	table[fd] = f;
}

struct shim_file *uiommu__shim_fd_get(int fd)
{
	struct shim_file *f = NULL;

	if (fd < 0 || !uiommu__shim_fd_any())
		return NULL;
	pthread_mutex_lock(&table_lock);
	if ((size_t)fd < table_len && table[fd]) {
		f = table[fd];
		uiommu__shim_file_get(f);
	}
	pthread_mutex_unlock(&table_lock);
	return f;
}

struct shim_file *uiommu__shim_fd_take(int fd)
{
	struct shim_file *f = NULL;

	if (fd < 0 || !uiommu__shim_fd_any())
		return NULL;
	pthread_mutex_lock(&table_lock);
	if ((size_t)fd < table_len) {
		f = table[fd];
		slot_set(fd, NULL);
	}
	pthread_mutex_unlock(&table_lock);
	return f;
}

/* Makes the table hold @fd: allocates outside the lock, swaps under it. */
static int table_grow(int fd)
{
	size_t len = 64;
	struct shim_file **n, **old;

	while (len <= (size_t)fd)
		len *= 2;
	n = calloc(len, sizeof(*n));
	if (!n)
		return -ENOMEM;
	pthread_mutex_lock(&table_lock);
	if (table_len >= len) {
		/* Another thread grew it meanwhile. */
		pthread_mutex_unlock(&table_lock);
		free(n);
		return 0;
	}
	if (table_len)
		memcpy(n, table, table_len * sizeof(*n));
	old = table;
	table = n;
	table_len = len;
	pthread_mutex_unlock(&table_lock);
	free(old);
	return 0;
}

struct shim_file *uiommu__shim_fd_install(int fd, struct shim_file *f, int *err)
{
	struct shim_file *prev = NULL;

	*err = 0;
	if (fd < 0) {
		*err = -EBADF;
		return NULL;
	}
	if (!f)
		return uiommu__shim_fd_take(fd);
	pthread_mutex_lock(&table_lock);
	while ((size_t)fd >= table_len) {
		pthread_mutex_unlock(&table_lock);
		*err = table_grow(fd);
		if (*err)
			return NULL;
		pthread_mutex_lock(&table_lock);
	}
	prev = table[fd];
	slot_set(fd, f);
	pthread_mutex_unlock(&table_lock);
	return prev;
}

int uiommu__shim_fd_next(int from, int last)
{
	int found = -1;

	if (from < 0 || last < from || !uiommu__shim_fd_any())
		return -1;
	pthread_mutex_lock(&table_lock);
	for (size_t fd = (size_t)from; fd < table_len && fd <= (size_t)last; fd++) {
		if (table[fd]) {
			found = (int)fd;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	return found;
}

void uiommu__shim_fd_lock(void)
{
	pthread_mutex_lock(&table_lock);
}

void uiommu__shim_fd_unlock(void)
{
	pthread_mutex_unlock(&table_lock);
}
