// SPDX-License-Identifier: MIT
/*
 * The C library's own open/close/ioctl/read/write/dup/fcntl, which the shim's
 * versions pass everything they do not serve to.
 *
 * They are looked up once with dlsym(RTLD_NEXT, ...), the next definition
 * after the shim in the symbol search order: the C library's, or a sanitizer
 * runtime's interceptor when one was preloaded after the shim. The lookup
 * runs under pthread_once on first use (the constructor in preload.c
 * triggers it early). While it runs, a call that re-enters the shim on the
 * same thread (dlsym allocating through an allocator that opens files)
 * cannot wait for it; such calls get direct system calls instead.
 *
 * Also here: the shim's one message, a configuration error on stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uapi/shim/shim_internal.h"

static int sys_openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	unsigned int mode;

	va_start(ap, flags);
	mode = va_arg(ap, unsigned int);
	va_end(ap);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

static int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static int sys_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

static ssize_t sys_read(int fd, void *buf, size_t count)
{
	return syscall(SYS_read, fd, buf, count);
}

static ssize_t sys_write(int fd, const void *buf, size_t count)
{
	return syscall(SYS_write, fd, buf, count);
}

static int sys_dup(int fd)
{
	return (int)syscall(SYS_dup, fd);
}

static int sys_dup3(int fd, int fd2, int flags)
{
	return (int)syscall(SYS_dup3, fd, fd2, flags);
}

static int sys_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

static int sys_dup2(int fd, int fd2)
{
	/* dup3 refuses fd == fd2; dup2 returns fd2 if it is open. */
	if (fd == fd2)
		return sys_fcntl(fd, F_GETFD) < 0 ? -1 : fd2;
	return sys_dup3(fd, fd2, 0);
}

static const struct shim_real fallback = {
	.openat = sys_openat,
	.close = sys_close,
	.ioctl = sys_ioctl,
	.read = sys_read,
	.write = sys_write,
	.dup = sys_dup,
	.dup2 = sys_dup2,
	.dup3 = sys_dup3,
	.fcntl = sys_fcntl,
};

static struct shim_real real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
static __thread bool resolving;

/* dlsym's result, or the fallback when there is none. */
#define RESOLVE(field, name)                                                                       \
	do {                                                                                       \
		void *sym = dlsym(RTLD_NEXT, name);                                                \
		real.field = sym ? (__typeof__(real.field))sym : fallback.field;                   \
	} while (0)

/* The calls that move data through an fd. */
static void real_resolve_io(void)
{
	RESOLVE(ioctl, "ioctl");
	RESOLVE(read, "read");
	RESOLVE(write, "write");
}

static void real_resolve(void)
{
	resolving = true;
	RESOLVE(openat, "openat");
	RESOLVE(close, "close");
	real_resolve_io();
	RESOLVE(dup, "dup");
	RESOLVE(dup2, "dup2");
	RESOLVE(dup3, "dup3");
	RESOLVE(fcntl, "fcntl");
	/* Newer than the rest (glibc 2.34); NULL means "use the system call". */
	real.close_range = (__typeof__(real.close_range))dlsym(RTLD_NEXT, "close_range");
	real.closefrom = (__typeof__(real.closefrom))dlsym(RTLD_NEXT, "closefrom");
	resolving = false;
}

const struct shim_real *uiommu__shim_real(void)
{
	if (resolving)
		return &fallback;
	pthread_once(&real_once, real_resolve);
	return &real;
}

void uiommu__shim_config_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "uiommu-preload: ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = 0;
	while (msg[n])
		n++;
	msg[n++] = '\n';
	/* One write(2): the line stays whole among the program's own output. */
	if (write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* Nowhere else to report it. */
	}
}
