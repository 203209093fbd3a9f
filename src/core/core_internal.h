/* SPDX-License-Identifier: MIT */
/*
 * Private helpers shared by every layer: overflow checks, allocation with
 * fail-nth injection, logging, small arithmetic.
 */
#ifndef UIOMMU_CORE_INTERNAL_H
#define UIOMMU_CORE_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/log.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define UIOMMU_BUG_ON(cond) assert(!(cond))

/* Returns true when a + b overflows; *res is then undefined. Callers must check. */
#define uiommu_check_add_overflow(a, b, res) __builtin_add_overflow(a, b, res)

static inline uint64_t u64_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t u64_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static inline bool is_pow2_u64(uint64_t v)
{
	return v && !(v & (v - 1));
}

/*
 * Converts an API range (start, length) to an inclusive last. Fails with
 * -EOVERFLOW when length is 0 or start + length - 1 wraps.
 */
int uiommu__range_last(uint64_t start, uint64_t length, uint64_t *last);

/*
 * Allocation. In builds with debug checks, uiommu__fail_nth_set(n) makes the
 * n-th following allocation (1-based) fail, so tests can sweep every error path.
 */
void *uiommu__zalloc(size_t size);
void *uiommu__calloc(size_t nmemb, size_t size);
void *uiommu__aligned_zalloc(size_t align, size_t size);
void uiommu__free(void *p);
void uiommu__fail_nth_set(unsigned long n);
/* True when the fail-nth countdown ran out and made an allocation fail. */
bool uiommu__fail_nth_hit(void);

/*
 * User memory (ucopy.c). Copies return 0 or -EFAULT and never fault the
 * process. user_check: 0 when [uva, uva + len) is mapped readable (and
 * writable if asked), else -EFAULT; -ENOMEM if /proc/self/maps is unreadable.
 * user_populate_write: faults the range in for writing; -EFAULT when not
 * writable, -ENOMEM when not mapped.
 */
int uiommu__copy_from_user(void *dst, const void *usrc, size_t len);
/* In the live part of the calling thread's stack (copies need no syscall)? */
bool uiommu__user_on_stack(const void *p, size_t len);
int uiommu__copy_to_user(void *udst, const void *src, size_t len);
int uiommu__user_check(const void *uva, uint64_t len, bool write);
int uiommu__user_populate_write(void *uva, uint64_t len);
size_t uiommu__page_size(void);

void uiommu__log(enum uiommu_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
