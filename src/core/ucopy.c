// SPDX-License-Identifier: MIT
/*
 * User memory access that cannot crash the caller.
 *
 * The front ends take pointers from programs that think they are talking to
 * a kernel: a bad pointer must give -EFAULT, as copy_from_user does, not a
 * SIGSEGV in the program. Copies therefore go through process_vm_readv and
 * process_vm_writev on our own pid, which report unmapped or protected memory
 * as an error instead of faulting. Memory in the live part of the calling
 * thread's stack (above our own frame) is copied directly: it cannot be bad.
 *
 * Pinning checks (is this user range mapped, and writable?) read
 * /proc/self/maps instead of touching the pages: the kernel would populate
 * pinned memory, but an emulated IOMMU has no reason to, and populating a
 * 16 GiB guest just to map it would cost seconds and the memory itself.
 *
 * Writable output buffers that the library writes directly (dirty bitmaps)
 * are faulted in for writing first with MADV_POPULATE_WRITE: one call that
 * fails on unmapped or read-only memory, after which direct stores are safe
 * unless the program unmaps the buffer concurrently. That call costs 10-40 us
 * for a 512 KiB bitmap (16 GiB at 4 KiB), more than a sparse harvest itself,
 * and programs harvest into the same bitmap round after round; so each
 * thread remembers the last few ranges it validated, and a range inside one
 * is only checked with msync() (~0.3 us alone, ~1.5 us right after a harvest
 * on this nested VM), which still catches a bitmap that was unmapped. A
 * remembered range that the program later makes read-only with mprotect()
 * is the one case not caught.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core_internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Bounds of this thread's stack; hi == 0 until looked up, lo == hi if unknown. */
static __thread uintptr_t stack_lo, stack_hi;

static void stack_bounds_lookup(void)
{
	pthread_attr_t attr;
	size_t size;
	void *addr;

	stack_lo = stack_hi = 1;
	if (pthread_getattr_np(pthread_self(), &attr))
		return;
	if (!pthread_attr_getstack(&attr, &addr, &size)) {
		stack_lo = (uintptr_t)addr;
		stack_hi = stack_lo + size;
	}
	pthread_attr_destroy(&attr);
}

/*
 * Is [p, p + len) in the live part of the calling thread's stack, between our
 * own frame and the top? That memory is mapped and writable for sure: the
 * frames of our callers are in it. Command structs usually live there, and
 * taking them without a syscall matters on machines where every syscall
 * costs the following work its TLB (nested virtualization). A frame on a
 * signal stack or an ASan fake stack is not inside the bounds: slow path.
 */
bool uiommu__user_on_stack(const void *p, size_t len)
{
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0), a = (uintptr_t)p;

	if (!stack_hi)
		stack_bounds_lookup();
	return frame >= stack_lo && frame < stack_hi && a >= frame && a < stack_hi &&
	       len <= stack_hi - a;
}

static int vm_copy(void *dst, const void *src, size_t len, bool to_user)
{
	struct iovec local, remote;
	ssize_t n;

	if (!len)
		return 0;
	local.iov_base = to_user ? (void *)(uintptr_t)src : dst;
	remote.iov_base = to_user ? dst : (void *)(uintptr_t)src;
	local.iov_len = remote.iov_len = len;
	if (to_user)
		n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	else
		n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	return n == (ssize_t)len ? 0 : -EFAULT;
}

int uiommu__copy_from_user(void *dst, const void *usrc, size_t len)
{
	if (!len)
		return 0;
	if (uiommu__user_on_stack(usrc, len)) {
		memcpy(dst, usrc, len);
		return 0;
	}
	return vm_copy(dst, usrc, len, false);
}

int uiommu__copy_to_user(void *udst, const void *src, size_t len)
{
	if (!len)
		return 0;
	if (uiommu__user_on_stack(udst, len)) {
		memcpy(udst, src, len);
		return 0;
	}
	return vm_copy(udst, src, len, true);
}

size_t uiommu__page_size(void)
{
	static size_t cached;

	if (!__atomic_load_n(&cached, __ATOMIC_RELAXED))
		__atomic_store_n(&cached, (size_t)sysconf(_SC_PAGESIZE), __ATOMIC_RELAXED);
	return __atomic_load_n(&cached, __ATOMIC_RELAXED);
}

/* One line of /proc/self/maps: "start-end perms ...". */
static bool maps_parse_line(const char *line, uint64_t *start, uint64_t *end, bool *r, bool *w)
{
	unsigned long long s, e;
	char perms[5];

	if (sscanf(line, "%llx-%llx %4s", &s, &e, perms) != 3 || e <= s)
		return false;
	*start = s;
	*end = e;
	*r = perms[0] == 'r';
	*w = perms[1] == 'w';
	return true;
}

/*
 * Walks the sorted mappings and advances *next over every one that starts at
 * or before it and has the permissions asked for.
 */
static int maps_cover(FILE *f, uint64_t first, uint64_t end, bool write)
{
	char line[512];
	uint64_t next = first, s, e;
	bool r, w;

	while (next < end && fgets(line, sizeof(line), f)) {
		if (!strchr(line, '\n') && !feof(f)) {
			/* A long path: skip the rest of the line. */
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
		}
		if (!maps_parse_line(line, &s, &e, &r, &w) || e <= next)
			continue;
		if (s > next || !r || (write && !w))
			return -EFAULT;
		next = e;
	}
	return next >= end ? 0 : -EFAULT;
}

int uiommu__user_check(const void *uva, uint64_t len, bool write)
{
	uint64_t first = (uintptr_t)uva, end;
	FILE *f;
	int ret;

	if (!len)
		return 0;
	if (uiommu_check_add_overflow(first, len, &end))
		return -EFAULT;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -ENOMEM;
	ret = maps_cover(f, first, end, write);
	fclose(f);
	return ret;
}

#define WRITABLE_CACHE 4

/*
 * Per thread: a harvest takes no lock and shares no cache line with the
 * harvests of other threads. A thread validates each bitmap once for itself.
 */
static __thread struct {
	uintptr_t start[WRITABLE_CACHE], end[WRITABLE_CACHE];
	unsigned int next;
} writable;

static bool writable_cached(uintptr_t start, uintptr_t end)
{
	for (unsigned int i = 0; i < WRITABLE_CACHE; i++)
		if (start >= writable.start[i] && end <= writable.end[i])
			return true;
	return false;
}

static void writable_remember(uintptr_t start, uintptr_t end)
{
	writable.start[writable.next] = start;
	writable.end[writable.next] = end;
	writable.next = (writable.next + 1) % WRITABLE_CACHE;
}

/*
 * Still mapped? msync() with no flags only walks the VMAs of the range (it
 * syncs nothing: MS_ASYNC is a no-op) and fails with ENOMEM on any gap, for
 * about 0.3 us whatever the length; mincore() also walks every page table
 * entry and took 1-15 us for a 512 KiB bitmap.
 */
static int still_mapped(uintptr_t start, uintptr_t end)
{
	return msync((void *)start, end - start, 0) ? -ENOMEM : 0;
}

int uiommu__user_populate_write(void *uva, uint64_t len)
{
	uint64_t pg = uiommu__page_size(), start = (uintptr_t)uva & ~(pg - 1), end;

	if (!len)
		return 0;
	if (uiommu_check_add_overflow((uint64_t)(uintptr_t)uva, len, &end) ||
	    uiommu_check_add_overflow(end, pg - 1, &end))
		return -EFAULT;
	end &= ~(pg - 1);
	if (writable_cached(start, end))
		return still_mapped(start, end);
	if (madvise((void *)(uintptr_t)start, end - start, MADV_POPULATE_WRITE))
		return errno == ENOMEM ? -ENOMEM : -EFAULT;
	writable_remember(start, end);
	return 0;
}
