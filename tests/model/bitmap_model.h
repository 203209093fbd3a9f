/* SPDX-License-Identifier: MIT */
/*
 * Reference model of the bitmap operations: one bit at a time on a byte
 * buffer. Bit k of a little-endian u64 bitmap is bit k % 8 of byte k / 8, so
 * the model needs no word loads, works at any buffer alignment and is
 * obviously right. Slow on purpose; only tests use it.
 */
#ifndef UIOMMU_TESTS_BITMAP_MODEL_H
#define UIOMMU_TESTS_BITMAP_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#define BITMAP_MODEL_NOT_FOUND UINT64_MAX

static inline bool bitmap_model_get(const void *buf, uint64_t bit)
{
	return (((const uint8_t *)buf)[bit / 8] >> (bit % 8)) & 1;
}

static inline void bitmap_model_put(void *buf, uint64_t bit, bool v)
{
	uint8_t *p = (uint8_t *)buf + bit / 8;

	if (v)
		*p = (uint8_t)(*p | (1u << (bit % 8)));
	else
		*p = (uint8_t)(*p & ~(1u << (bit % 8)));
}

static inline void bitmap_model_copy_bits(void *dst, uint64_t dst_bit, const void *src,
					  uint64_t src_bit, uint64_t nbits)
{
	for (uint64_t i = 0; i < nbits; i++)
		bitmap_model_put(dst, dst_bit + i, bitmap_model_get(src, src_bit + i));
}

static inline void bitmap_model_or_bits(void *dst, uint64_t dst_bit, const void *src,
					uint64_t src_bit, uint64_t nbits)
{
	for (uint64_t i = 0; i < nbits; i++) {
		if (bitmap_model_get(src, src_bit + i))
			bitmap_model_put(dst, dst_bit + i, true);
	}
}

/* Sets (v true) or clears first..last inclusive. */
static inline void bitmap_model_put_range(void *buf, uint64_t first, uint64_t last, bool v)
{
	for (uint64_t i = first; i <= last; i++)
		bitmap_model_put(buf, i, v);
}

static inline uint64_t bitmap_model_find_next(const void *buf, uint64_t nbits, uint64_t from,
					      bool v)
{
	for (uint64_t i = from; i < nbits; i++) {
		if (bitmap_model_get(buf, i) == v)
			return i;
	}
	return BITMAP_MODEL_NOT_FOUND;
}

static inline uint64_t bitmap_model_count(const void *buf, uint64_t first, uint64_t last)
{
	uint64_t n = 0;

	for (uint64_t i = first; i <= last; i++)
		n += bitmap_model_get(buf, i);
	return n;
}

#endif
