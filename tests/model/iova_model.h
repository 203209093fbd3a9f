/* SPDX-License-Identifier: MIT */
/*
 * Reference model of IOVA range lists: one bool per address over a small
 * universe [base, base + IOVA_MODEL_SIZE - 1]. Choosing base = 0 or
 * base = UINT64_MAX - IOVA_MODEL_SIZE + 1 puts the ends of the u64 space
 * inside the universe, where the real list's overflow edges are. Every query
 * is brute force over the addresses; addresses outside the universe are never
 * in the model.
 */
#ifndef UIOMMU_TESTS_IOVA_MODEL_H
#define UIOMMU_TESTS_IOVA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define IOVA_MODEL_SIZE 256u

struct iova_model {
	uint64_t base;
	bool in[IOVA_MODEL_SIZE];
};

static inline void iova_model_init(struct iova_model *m, uint64_t base)
{
	m->base = base;
	memset(m->in, 0, sizeof(m->in));
}

static inline uint64_t iova_model_last(const struct iova_model *m)
{
	return m->base + (IOVA_MODEL_SIZE - 1);
}

/* Sets every universe address of [start, last] to @val. */
static inline void iova_model_fill(struct iova_model *m, uint64_t start, uint64_t last, bool val)
{
	for (size_t i = 0; i < IOVA_MODEL_SIZE; i++) {
		uint64_t a = m->base + i;

		if (a >= start && a <= last)
			m->in[i] = val;
	}
}

static inline void iova_model_add(struct iova_model *m, uint64_t start, uint64_t last)
{
	iova_model_fill(m, start, last, true);
}

static inline void iova_model_subtract(struct iova_model *m, uint64_t start, uint64_t last)
{
	iova_model_fill(m, start, last, false);
}

static inline void iova_model_clip(struct iova_model *m, uint64_t start, uint64_t last)
{
	for (size_t i = 0; i < IOVA_MODEL_SIZE; i++) {
		uint64_t a = m->base + i;

		if (a < start || a > last)
			m->in[i] = false;
	}
}

static inline bool iova_model_has(const struct iova_model *m, uint64_t a)
{
	return a >= m->base && a <= iova_model_last(m) && m->in[a - m->base];
}

static inline bool iova_model_contains(const struct iova_model *m, uint64_t start, uint64_t last)
{
	if (start > last || start < m->base || last > iova_model_last(m))
		return false;
	for (uint64_t a = start;; a++) {
		if (!iova_model_has(m, a))
			return false;
		if (a == last)
			return true;
	}
}

static inline bool iova_model_overlaps(const struct iova_model *m, uint64_t start, uint64_t last)
{
	for (size_t i = 0; i < IOVA_MODEL_SIZE; i++) {
		uint64_t a = m->base + i;

		if (m->in[i] && a >= start && a <= last)
			return true;
	}
	return false;
}

/* Brute-force find_hole: 0 with *iova set, or -1 when there is no hole. */
static inline int iova_model_find_hole(const struct iova_model *m, uint64_t length, uint64_t align,
				       uint64_t from, uint64_t *iova)
{
	for (size_t i = 0; i < IOVA_MODEL_SIZE; i++) {
		uint64_t s = m->base + i;

		if (s < from || (s & (align - 1)) || length > IOVA_MODEL_SIZE - i)
			continue;
		if (iova_model_contains(m, s, s + (length - 1))) {
			*iova = s;
			return 0;
		}
	}
	return -1;
}

#endif
