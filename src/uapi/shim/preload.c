// SPDX-License-Identifier: MIT
/*
 * libuiommu-preload.so: /dev/iommu and VFIO device cdevs for unmodified
 * programs, served by uiommu in the program's own process.
 *
 *   LD_PRELOAD=libuiommu-preload.so UIOMMU_DEVICES="nic0:dma=..." ./vmm
 *
 * What is interposed:
 *   open, open64, openat, openat64, __open_2, __open64_2, __openat_2,
 *   __openat64_2  "/dev/iommu" gives a new context; with UIOMMU_DEVICES set,
 *                 "/dev/vfio/devices/vfioN" gives emulated device N
 *                 (devices.c); "/dev/vfio/vfio" a type1 container and
 *                 "/dev/vfio/N" VFIO group N (vfio_group.c). Only these
 *                 absolute spellings are matched;
 *                 every other path goes to the C library untouched.
 *   ioctl         on a context fd: uiommu_iommufd_ioctl() (iommufd and the
 *                 VFIO container compat commands); on a device fd: the VFIO
 *                 cdev commands (vfio_cdev.c); on a type1 container, group
 *                 or group device fd: vfio_group.c; a negative result becomes -1
 *                 with errno. Any other fd goes to the C library.
 *   close         drops the fd's reference on its file (fdtable.c); fds that
 *                 a context made (fault queues, accesses) are closed through
 *                 uiommu_ctx_close_fd().
 *   read, __read_chk, write
 *                 on a fault queue's fd: uiommu_fault_read() and
 *                 uiommu_fault_write() (faults out, page responses in); on an
 *                 access fd: EINVAL (it has no read or write, as in the
 *                 kernel). Every other fd goes to the C library, after one
 *                 load when no context-made fd is open (fdtable.c), else a
 *                 table lookup. readv, pread and friends are not interposed:
 *                 on a fault queue's fd they reach its eventfd.
 *   dup, dup2, dup3, fcntl(F_DUPFD, F_DUPFD_CLOEXEC), fcntl64
 *                 the new fd shares the file (and so the context), as in the
 *                 kernel; an fd that dup2/dup3 replaces is closed as by close.
 *                 Duplicating a fault-queue or access fd is refused (EINVAL):
 *                 the context knows those objects by their one fd number.
 *   close_range, closefrom
 *                 shim fds in the range are closed as by close() first.
 *
 * fds are real: memfd_create("iommufd" or "vfio-device") for contexts and
 * devices, eventfds for fault-queue and access fds, so their numbers come
 * from the kernel and never collide with the program's, O_CLOEXEC is
 * honoured, and poll or fstat on them do not fail (fstat shows a memfd, not
 * a character device; poll on a fault queue's fd never reports a fault
 * waiting: read it, which never blocks).
 *
 * Re-entrancy: the library inside this .so calls close() and friends too,
 * and those calls resolve to the versions here. They find nothing of theirs
 * in the table and pass through. The fd_ops the shim gives each context
 * (uiommu_ctx_set_fd_ops) use the real close, never the interposed one. The
 * fd_ops callbacks run inside the context's ioctl, under its lock: they only
 * touch the fd table, and file releases they cause are deferred to the end
 * of the interposed call (a per-thread list), when no lock is held. Which
 * context an access fd belongs to is known from a per-thread "current
 * context" set around each ioctl.
 *
 * Threads: everything here may be called from any thread. The fd table has
 * its own lock; each file counts references from fds and from calls in
 * flight, so closing an fd while another thread is in an ioctl on it is safe
 * (the ioctl finishes on the old file, as in the kernel). The context has its
 * own lock; the emulated devices have theirs.
 *
 * fork(): the child inherits the fd table, the contexts and the devices as a
 * copy: its ioctls act on its own copy of every context, and the parent sees
 * none of them (the kernel shares one context, and its pages belong to the
 * process that mapped them; that is not emulated). Locks of the shim are held
 * across fork() so the copy is consistent; DMA threads do not exist in the
 * child (they stop nowhere and restart only on a new attach).
 *
 * exec(): fds opened with O_CLOEXEC vanish. Others survive as plain memfds
 * that the new image's shim does not know: ioctls on them fail as on any
 * memfd (ENOTTY), and the state behind them is gone.
 *
 * Not handled: fds passed to another process (SCM_RIGHTS); closes the shim
 * does not see (syscall(SYS_close), fclose of an fdopen'ed shim fd). The
 * shim drops a stale entry when the kernel hands its number out again
 * through a call the shim sees. Not async-signal-safe while any shim fd is
 * open: a signal handler that calls close/ioctl/dup while its thread is
 * inside the shim can deadlock on the table lock. After vfork(), the child
 * shares the parent's table: it must not close shim fds before exec.
 */
#undef _FILE_OFFSET_BITS /* open and open64 are both defined here: no LFS renames */
#undef _FORTIFY_SOURCE   /* no inline wrappers over the functions defined here */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uapi/shim/shim_internal.h"

#define SHIM_EXPORT __attribute__((visibility("default")))

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif

/* Not ours: pass the call through. No errno is this negative. */
#define NOT_OURS INT_MIN

#define VFIO_DIR "/dev/vfio/"
#define VFIO_DEVICES_DIR "/dev/vfio/devices/"

/* Declared by glibc only under _FORTIFY_SOURCE. */
SHIM_EXPORT int __open_2(const char *path, int flags);
SHIM_EXPORT int __open64_2(const char *path, int flags);
SHIM_EXPORT int __openat_2(int dirfd, const char *path, int flags);
SHIM_EXPORT int __openat64_2(int dirfd, const char *path, int flags);
SHIM_EXPORT int fcntl64(int fd, int cmd, ...);
SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen);
void __chk_fail(void) __attribute__((noreturn)); /* glibc's, undeclared */

static __thread struct uiommu_ctx *tls_cur_ctx;   /* context whose ioctl runs */
static __thread struct shim_file *tls_deferred;   /* files to put when unlocked */
static __thread int tls_fd_gone = -1;             /* already closed by the kernel */

static void defer_put(struct shim_file *f)
{
	f->deferred = tls_deferred;
	tls_deferred = f;
}

static void drain_deferred(void)
{
	struct shim_file *f;

	while ((f = tls_deferred)) {
		tls_deferred = f->deferred;
		uiommu__shim_file_put(f);
	}
}

/* ---- fd_ops: the fds a context makes (fault queues, accesses) ---- */

static int fdops_open(void *opaque)
{
	struct shim_file *f, *prev;
	int fd, err;

	(void)opaque;
	fd = eventfd(0, EFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!tls_cur_ctx)
		return fd; /* not inside one of our ioctls: a plain fd */
	f = uiommu__shim_file_new(SHIM_FILE_CTX_FD);
	if (!f) {
		uiommu__shim_real()->close(fd);
		return -ENOMEM;
	}
	uiommu_ctx_get(tls_cur_ctx);
	f->ctx = tls_cur_ctx;
	prev = uiommu__shim_fd_install(fd, f, &err);
	if (err) {
		uiommu__shim_real()->close(fd);
		defer_put(f);
		return err;
	}
	if (prev)
		defer_put(prev); /* a stale entry: its fd was closed behind our back */
	return fd;
}

static void fdops_close(void *opaque, int fd)
{
	/* Present when the context closes on its own (error paths). */
	struct shim_file *f = uiommu__shim_fd_take(fd);

	(void)opaque;
	if (fd != tls_fd_gone)
		uiommu__shim_real()->close(fd);
	if (f)
		defer_put(f);
}

static const struct uiommu_ctx_fd_ops shim_fd_ops = {
	.open = fdops_open,
	.close = fdops_close,
};

/* ---- closing ---- */

/* A context's fd: the context releases its object's fd and closes it. */
static void ctx_fd_close(struct shim_file *f, int fd, bool fd_gone)
{
	int ret;

	tls_fd_gone = fd_gone ? fd : -1;
	ret = f->ctx ? uiommu_ctx_close_fd(f->ctx, fd) : -ENOENT;
	tls_fd_gone = -1;
	if (ret && !fd_gone)
		uiommu__shim_real()->close(fd);
	uiommu__shim_file_put(f);
}

/* Closes @fd, whose file @f the caller took out of the table. */
static int file_close(int fd, struct shim_file *f)
{
	int ret, err;

	if (f->kind == SHIM_FILE_CTX_FD) {
		ctx_fd_close(f, fd, false);
		return 0;
	}
	ret = uiommu__shim_real()->close(fd);
	err = errno;
	uiommu__shim_file_put(f);
	errno = err;
	return ret;
}

/* @f was at @fd, which the kernel has already closed (dup2, a reused number). */
static void file_gone(int fd, struct shim_file *f)
{
	if (!f)
		return;
	if (f->kind == SHIM_FILE_CTX_FD)
		ctx_fd_close(f, fd, true);
	else
		uiommu__shim_file_put(f);
}

/* A call we passed through made @fd: forget what the table had there. */
static void passthrough_made(int fd)
{
	int err = errno;

	if (fd >= 0 && uiommu__shim_fd_any()) {
		file_gone(fd, uiommu__shim_fd_take(fd));
		drain_deferred();
	}
	errno = err;
}

/* ---- opening ---- */

/* A real fd for @f. Consumes the reference of @f. Returns the fd or -errno. */
int uiommu__shim_file_open_fd(struct shim_file *f, const char *name, int flags)
{
	struct shim_file *prev;
	int fd, err;

	fd = memfd_create(name, (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	if (fd < 0) {
		err = -errno;
		uiommu__shim_file_put(f);
		return err;
	}
	prev = uiommu__shim_fd_install(fd, f, &err);
	if (err) {
		uiommu__shim_real()->close(fd);
		uiommu__shim_file_put(f);
		return err;
	}
	file_gone(fd, prev);
	return fd;
}

static int iommufd_open(int flags)
{
	struct shim_file *f;
	int ret;

	/* Report a bad UIOMMU_DEVICES now, not at the first device open. */
	uiommu__shim_devices_init();
	f = uiommu__shim_file_new(SHIM_FILE_IOMMUFD);
	if (!f)
		return -ENOMEM;
	ret = uiommu_ctx_create(&f->ctx);
	if (ret) {
		f->ctx = NULL;
		uiommu__shim_file_put(f);
		return ret;
	}
	uiommu_ctx_set_fd_ops(f->ctx, &shim_fd_ops);
	return uiommu__shim_file_open_fd(f, "iommufd", flags);
}

/* "vfioN", N in decimal without leading zeros. */
static bool parse_vfio_name(const char *s, unsigned int *index)
{
	unsigned int n = 0;

	if (strncmp(s, "vfio", 4))
		return false;
	s += 4;
	if (!*s || (s[0] == '0' && s[1]))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || n > 99999)
			return false;
		n = n * 10 + (unsigned int)(*s - '0');
	}
	*index = n;
	return true;
}

static int vfio_dev_open(const char *name, int flags)
{
	struct shim_vdev *v;
	struct shim_file *f;
	unsigned int index;

	if (!parse_vfio_name(name, &index))
		return -ENOENT;
	v = uiommu__shim_vdev(index);
	if (!v)
		return -ENOENT;
	f = uiommu__shim_file_new(SHIM_FILE_VFIO_DEV);
	if (!f)
		return -ENOMEM;
	f->vdev = v;
	return uiommu__shim_file_open_fd(f, "vfio-device", flags);
}

/* An fd, -errno, or NOT_OURS. */
static int shim_path_open(const char *path, int flags)
{
	const size_t dir_len = sizeof(VFIO_DEVICES_DIR) - 1;

	if (!path)
		return NOT_OURS;
	if (!strcmp(path, "/dev/iommu"))
		return iommufd_open(flags);
	if (strncmp(path, VFIO_DIR, sizeof(VFIO_DIR) - 1) || !uiommu__shim_devices_claimed())
		return NOT_OURS;
	if (!strncmp(path, VFIO_DEVICES_DIR, dir_len))
		return vfio_dev_open(path + dir_len, flags);
	if (!strcmp(path, VFIO_DIR "vfio"))
		return uiommu__shim_vfio_container_open(flags);
	return uiommu__shim_vfio_group_open(path + sizeof(VFIO_DIR) - 1, flags);
}

static int shim_openat(int dirfd, const char *path, int flags, unsigned int mode)
{
	const char *p = path;
	int ret;

	/* glibc declares the path nonnull; keep the compiler from dropping our NULL check. */
	__asm__("" : "+r"(p));
	ret = shim_path_open(p, flags);

	if (ret == NOT_OURS) {
		ret = uiommu__shim_real()->openat(dirfd, path, flags, mode);
		passthrough_made(ret);
		return ret;
	}
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}

static bool open_needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* The optional mode argument of open/openat, read only when it was passed. */
#define OPEN_MODE(flags, mode)                                                                     \
	do {                                                                                       \
		va_list ap_;                                                                       \
		(mode) = 0;                                                                        \
		if (open_needs_mode(flags)) {                                                      \
			va_start(ap_, flags);                                                      \
			(mode) = va_arg(ap_, unsigned int);                                        \
			va_end(ap_);                                                               \
		}                                                                                  \
	} while (0)

SHIM_EXPORT int open(const char *path, int flags, ...)
{
	unsigned int mode;

	OPEN_MODE(flags, mode);
	return shim_openat(AT_FDCWD, path, flags, mode);
}

SHIM_EXPORT int open64(const char *path, int flags, ...)
{
	unsigned int mode;

	OPEN_MODE(flags, mode);
	return shim_openat(AT_FDCWD, path, flags, mode);
}

SHIM_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	unsigned int mode;

	OPEN_MODE(flags, mode);
	return shim_openat(dirfd, path, flags, mode);
}

SHIM_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	unsigned int mode;

	OPEN_MODE(flags, mode);
	return shim_openat(dirfd, path, flags, mode);
}

/* The fortified entry points: callers that pass no mode. */
SHIM_EXPORT int __open_2(const char *path, int flags)
{
	return shim_openat(AT_FDCWD, path, flags, 0);
}

SHIM_EXPORT int __open64_2(const char *path, int flags)
{
	return shim_openat(AT_FDCWD, path, flags, 0);
}

SHIM_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return shim_openat(dirfd, path, flags, 0);
}

SHIM_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return shim_openat(dirfd, path, flags, 0);
}

/* ---- close ---- */

SHIM_EXPORT int close(int fd)
{
	struct shim_file *f = uiommu__shim_fd_take(fd);
	int ret, err;

	if (!f)
		return uiommu__shim_real()->close(fd);
	ret = file_close(fd, f);
	err = errno;
	drain_deferred();
	errno = err;
	return ret;
}

/* Closes every shim fd in [first, last] as close() would. */
static void close_shim_range(unsigned int first, unsigned int last)
{
	int hi = last > INT_MAX ? INT_MAX : (int)last;
	int fd = first > INT_MAX ? -1 : uiommu__shim_fd_next((int)first, hi);

	while (fd >= 0) {
		struct shim_file *f = uiommu__shim_fd_take(fd);

		if (f)
			file_close(fd, f);
		drain_deferred();
		fd = fd < hi ? uiommu__shim_fd_next(fd + 1, hi) : -1;
	}
}

SHIM_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	const struct shim_real *real = uiommu__shim_real();

	if (!((unsigned int)flags & CLOSE_RANGE_CLOEXEC) && first <= last)
		close_shim_range(first, last);
	if (real->close_range)
		return real->close_range(first, last, flags);
	return (int)syscall(SYS_close_range, first, last, flags);
}

SHIM_EXPORT void closefrom(int lowfd)
{
	const struct shim_real *real = uiommu__shim_real();

	if (lowfd >= 0)
		close_shim_range((unsigned int)lowfd, UINT_MAX);
	if (real->closefrom)
		real->closefrom(lowfd);
	else if (lowfd >= 0)
		syscall(SYS_close_range, (unsigned int)lowfd, UINT_MAX, 0);
}

/* ---- ioctl ---- */

static long file_ioctl(struct shim_file *f, unsigned long request, void *arg)
{
	struct uiommu_ctx *outer = tls_cur_ctx;
	long ret;

	switch (f->kind) {
	case SHIM_FILE_IOMMUFD:
		tls_cur_ctx = f->ctx;
		ret = uiommu_iommufd_ioctl(f->ctx, request, arg);
		tls_cur_ctx = outer;
		return ret;
	case SHIM_FILE_VFIO_DEV:
		return uiommu__shim_vdev_ioctl(f, request, arg);
	case SHIM_FILE_VFIO_CONTAINER:
	case SHIM_FILE_VFIO_GROUP:
	case SHIM_FILE_VFIO_GROUP_DEV:
		return uiommu__shim_vfio_ioctl(f, request, arg);
	case SHIM_FILE_CTX_FD:
	default:
		return -ENOTTY;
	}
}

SHIM_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	struct shim_file *f;
	int err = errno;
	va_list ap;
	void *arg;
	long ret;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	f = uiommu__shim_fd_get(fd);
	if (!f)
		return uiommu__shim_real()->ioctl(fd, request, arg);
	ret = file_ioctl(f, request, arg);
	uiommu__shim_file_put(f);
	drain_deferred();
	if (ret < 0) {
		errno = (int)-ret;
		return -1;
	}
	errno = err;
	return (int)ret;
}

/* ---- read, write ---- */

/* A result of the library as read/write return it; -EBADF means no fault queue. */
static ssize_t rw_result(ssize_t ret)
{
	if (ret == -EBADF)
		ret = -EINVAL; /* an access fd: a file without read or write */
	if (ret >= 0)
		return ret;
	errno = (int)-ret;
	return -1;
}

/* The context-made file at @fd with a reference, or NULL (then pass through). */
static struct shim_file *ctx_fd_get(int fd)
{
	struct shim_file *f;

	if (!uiommu__shim_fd_any_ctx_fd())
		return NULL;
	f = uiommu__shim_fd_get(fd);
	if (f && f->kind != SHIM_FILE_CTX_FD) {
		uiommu__shim_file_put(f);
		return NULL;
	}
	return f;
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t count)
{
	struct shim_file *f = ctx_fd_get(fd);
	ssize_t ret;

	if (!f)
		return uiommu__shim_real()->read(fd, buf, count);
	ret = f->ctx ? uiommu_fault_read(f->ctx, fd, buf, count) : -EBADF;
	uiommu__shim_file_put(f);
	return rw_result(ret);
}

/* The fortified read of programs built with _FORTIFY_SOURCE. */
SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	if (count > buflen)
		__chk_fail();
	return read(fd, buf, count);
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
	struct shim_file *f = ctx_fd_get(fd);
	ssize_t ret;

	if (!f)
		return uiommu__shim_real()->write(fd, buf, count);
	ret = f->ctx ? uiommu_fault_write(f->ctx, fd, buf, count) : -EBADF;
	uiommu__shim_file_put(f);
	return rw_result(ret);
}

/* ---- dup ---- */

/* The file at @fd with a reference, NULL if not ours; -EINVAL for a context's fds. */
static struct shim_file *dup_source(int fd, int *err)
{
	struct shim_file *f = uiommu__shim_fd_get(fd);

	*err = 0;
	if (f && f->kind == SHIM_FILE_CTX_FD) {
		uiommu__shim_file_put(f);
		*err = -EINVAL;
		return NULL;
	}
	return f;
}

/* @nfd (result of a real dup) now names @f too; consumes @f's reference. */
static int dup_finish(int nfd, struct shim_file *f)
{
	struct shim_file *prev;
	int err = errno;

	if (nfd < 0 || !f) {
		uiommu__shim_file_put(f);
		passthrough_made(nfd);
		errno = err;
		return nfd;
	}
	prev = uiommu__shim_fd_install(nfd, f, &err);
	if (err) {
		/* A shim fd we cannot track would misbehave: undo the dup. */
		uiommu__shim_real()->close(nfd);
		uiommu__shim_file_put(f);
		errno = -err;
		return -1;
	}
	file_gone(nfd, prev);
	drain_deferred();
	return nfd;
}

SHIM_EXPORT int dup(int fd)
{
	struct shim_file *f;
	int err;

	if (!uiommu__shim_fd_any())
		return uiommu__shim_real()->dup(fd);
	f = dup_source(fd, &err);
	if (err) {
		errno = -err;
		return -1;
	}
	return dup_finish(uiommu__shim_real()->dup(fd), f);
}

/* dup2 and dup3: what was at @fd2 is closed by the kernel, atomically. */
static int shim_dup23(int fd, int fd2, int flags, bool three)
{
	const struct shim_real *real = uiommu__shim_real();
	struct shim_file *f;
	int err, ret;

	f = dup_source(fd, &err);
	if (err) {
		errno = -err;
		return -1;
	}
	ret = three ? real->dup3(fd, fd2, flags) : real->dup2(fd, fd2);
	if (ret < 0 || fd == fd2) {
		err = errno;
		uiommu__shim_file_put(f);
		errno = err;
		return ret;
	}
	return dup_finish(ret, f);
}

SHIM_EXPORT int dup2(int fd, int fd2)
{
	return shim_dup23(fd, fd2, 0, false);
}

SHIM_EXPORT int dup3(int fd, int fd2, int flags)
{
	return shim_dup23(fd, fd2, flags, true);
}

static int shim_fcntl(int fd, int cmd, void *arg)
{
	const struct shim_real *real = uiommu__shim_real();
	struct shim_file *f;
	int err;

	if ((cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC) || !uiommu__shim_fd_any())
		return real->fcntl(fd, cmd, arg);
	f = dup_source(fd, &err);
	if (err) {
		errno = -err;
		return -1;
	}
	return dup_finish(real->fcntl(fd, cmd, arg), f);
}

/* The third argument is read as glibc does: one word, whatever its type. */
SHIM_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return shim_fcntl(fd, cmd, arg);
}

SHIM_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return shim_fcntl(fd, cmd, arg);
}

/* ---- fork ---- */

static void fork_prepare(void)
{
	uiommu__shim_devices_fork_prepare();
	uiommu__shim_fd_lock();
}

static void fork_parent(void)
{
	uiommu__shim_fd_unlock();
	uiommu__shim_devices_fork_parent();
}

static void fork_child(void)
{
	uiommu__shim_fd_unlock();
	uiommu__shim_devices_fork_child();
}

__attribute__((constructor)) static void shim_init(void)
{
	uiommu__shim_real();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}
