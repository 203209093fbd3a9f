/* SPDX-License-Identifier: MIT */
/*
 * Tests of the user-copy layer: bad pointers give -EFAULT and never a crash,
 * the stack fast path accepts only the live part of the calling thread's
 * stack, and a remembered bitmap range that was unmapped is caught; ranges
 * are remembered per thread.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "core/core_internal.h"

static char *map_pages(size_t n, int prot)
{
	char *p = mmap(NULL, n * uiommu__page_size(), prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static void test_copies_of_bad_pointers_are_efault(void **state)
{
	size_t pg = uiommu__page_size();
	char *ro = map_pages(2, PROT_READ), buf[16] = "abc";

	(void)state;
	munmap(ro + pg, pg);
	assert_int_equal(uiommu__copy_from_user(buf, NULL, sizeof(buf)), -EFAULT);
	assert_int_equal(uiommu__copy_from_user(buf, ro + pg, 1), -EFAULT);
	/* Straddling into the hole fails as a whole. */
	assert_int_equal(uiommu__copy_from_user(buf, ro + pg - 4, 8), -EFAULT);
	assert_int_equal(uiommu__copy_to_user(ro, buf, 1), -EFAULT);
	assert_int_equal(uiommu__copy_from_user(buf, ro, 4), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(uiommu__copy_to_user(NULL, buf, 0), 0);
	munmap(ro, pg);
}

static void test_stack_fast_path_takes_only_the_live_stack(void **state)
{
	uint64_t local = 42, out = 0, in = 7;
	/* Below our own frame: the dead part of the stack. */
	const char *dead = (const char *)__builtin_frame_address(0) - 512;
	char *heap = malloc(64);

	(void)state;
	__asm__ volatile("" : : "r"(&local) : "memory"); /* keep it in memory */
	assert_non_null(heap);
	/* ASan may move locals to a fake stack; then only the slow path runs. */
	if (uiommu__user_on_stack(&local, sizeof(local))) {
		assert_false(uiommu__user_on_stack(&local, SIZE_MAX / 2));
		assert_false(uiommu__user_on_stack(dead, 1));
	}
	assert_false(uiommu__user_on_stack(heap, 64));
	assert_false(uiommu__user_on_stack(NULL, 1));
	assert_int_equal(uiommu__copy_from_user(&out, &local, sizeof(out)), 0);
	assert_true(out == 42);
	assert_int_equal(uiommu__copy_to_user(&local, &in, sizeof(in)), 0);
	assert_true(local == 7);
	free(heap);
}

static void *thread_stack_check(void *arg)
{
	uint64_t local = 5, out = 0;

	(void)arg;
	if (uiommu__copy_from_user(&out, &local, sizeof(out)) || out != 5)
		return (void *)1;
	return NULL;
}

static void test_copies_from_another_threads_stack_work(void **state)
{
	pthread_t t;
	void *ret = (void *)2;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, thread_stack_check, NULL), 0);
	pthread_join(t, &ret);
	assert_null(ret);
}

static void test_populate_write_catches_a_remembered_range_unmapped(void **state)
{
	size_t pg = uiommu__page_size();
	char *bm = map_pages(4, PROT_READ | PROT_WRITE), *ro = map_pages(1, PROT_READ);

	(void)state;
	assert_int_equal(uiommu__user_populate_write(bm, 4 * pg), 0);
	assert_int_equal(uiommu__user_populate_write(bm + 1, 2 * pg), 0); /* remembered */
	munmap(bm + 2 * pg, pg);
	assert_int_equal(uiommu__user_populate_write(bm, 4 * pg), -ENOMEM);
	assert_int_equal(uiommu__user_populate_write(bm, 2 * pg), 0);
	assert_int_equal(uiommu__user_populate_write(ro, pg), -EFAULT);
	assert_int_equal(uiommu__user_populate_write(ro, 0), 0);
	assert_int_equal(uiommu__user_populate_write((void *)(UINTPTR_MAX - 8), 64), -EFAULT);
	munmap(bm, 2 * pg);
	munmap(bm + 3 * pg, pg);
	munmap(ro, pg);
}

static void *thread_populate(void *arg)
{
	return (void *)(intptr_t)uiommu__user_populate_write(arg, uiommu__page_size());
}

/*
 * What one thread remembers does not vouch for a range in another: a bitmap
 * made read-only after this thread validated it is still refused to a thread
 * that never validated it (a shared cache would answer 0, and the harvest
 * would then fault in the caller).
 */
static void test_populate_write_remembers_per_thread(void **state)
{
	char *bm = map_pages(1, PROT_READ | PROT_WRITE);
	pthread_t t;
	void *ret;

	(void)state;
	assert_int_equal(uiommu__user_populate_write(bm, uiommu__page_size()), 0);
	assert_int_equal(mprotect(bm, uiommu__page_size(), PROT_READ), 0);
	assert_int_equal(pthread_create(&t, NULL, thread_populate, bm), 0);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, -EFAULT);
	munmap(bm, uiommu__page_size());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copies_of_bad_pointers_are_efault),
		cmocka_unit_test(test_stack_fast_path_takes_only_the_live_stack),
		cmocka_unit_test(test_copies_from_another_threads_stack_work),
		cmocka_unit_test(test_populate_write_catches_a_remembered_range_unmapped),
		cmocka_unit_test(test_populate_write_remembers_per_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
