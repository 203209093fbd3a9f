/* SPDX-License-Identifier: MIT */
/*
 * Checks for the programs run under the shim: they exit 1 with the file,
 * line, expression and errno of the first check that fails, so that meson
 * shows what broke. Needs only libc.
 */
#ifndef UIOMMU_TESTS_SHIM_CHECK_H
#define UIOMMU_TESTS_SHIM_CHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void check(bool ok, const char *expr, const char *file, int line)
{
	int err = errno;

	if (!ok) {
		fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n", file, line, expr, err,
			strerror(err));
		exit(1);
	}
}

/* @ret (with the errno it left) must be -1 with errno @want. */
static inline void check_err(long ret, int want, const char *expr, const char *file, int line)
{
	int err = errno;

	if (ret != -1 || err != want) {
		fprintf(stderr, "%s:%d: %s: got %ld errno %d (%s), want errno %d (%s)\n", file, line,
			expr, ret, err, strerror(err), want, strerror(want));
		exit(1);
	}
}

#define CHECK(cond) check(!!(cond), #cond, __FILE__, __LINE__)
/* @expr must fail with errno @err. */
#define CHECK_ERR(expr, err) check_err((errno = 0, (long)(expr)), (err), #expr, __FILE__, __LINE__)

#define PAGE 4096ull
#define MAP_IOVA 0x100000ull
#define MAP_LEN (8ull << 20)

#endif
