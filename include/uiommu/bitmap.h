/* SPDX-License-Identifier: MIT */
/*
 * Bitmaps with 64-bit bit indices.
 *
 * Layout: bit k lives in 64-bit word k / 64, at bit k % 64 (LSB first), the
 * layout of VFIO, iommufd and KVM dirty bitmaps on little-endian machines.
 * Ranges are inclusive: (first, last). A bitmap may hold more than 2^32 bits.
 *
 * The plain functions are not thread-safe. The *_atomic ones may run
 * concurrently with each other on the same words; they are sequentially
 * consistent, so a writer that sets a bit after storing data and a reader that
 * clears it before reading that data see each other's effects.
 *
 * copy_bits/or_bits take untyped buffers that need not be 8-byte aligned: word
 * k is the 8 bytes at offset 8k from the pointer. Bits outside the destination
 * range are preserved, and no byte of a word that holds no destination bit is
 * written.
 */
#ifndef UIOMMU_BITMAP_H
#define UIOMMU_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

#define UIOMMU_BITMAP_NOT_FOUND UINT64_MAX

/* Number of 64-bit words needed for @nbits bits (no overflow for any u64). */
static inline uint64_t uiommu_bitmap_words(uint64_t nbits)
{
	return nbits / 64 + !!(nbits % 64);
}

UIOMMU_EXPORT void uiommu_bitmap_set(uint64_t *map, uint64_t bit);
UIOMMU_EXPORT void uiommu_bitmap_clear(uint64_t *map, uint64_t bit);
UIOMMU_EXPORT bool uiommu_bitmap_test(const uint64_t *map, uint64_t bit);

UIOMMU_EXPORT void uiommu_bitmap_set_atomic(uint64_t *map, uint64_t bit);
UIOMMU_EXPORT void uiommu_bitmap_clear_atomic(uint64_t *map, uint64_t bit);
UIOMMU_EXPORT bool uiommu_bitmap_test_atomic(const uint64_t *map, uint64_t bit);
/* Return the previous value of the bit. */
UIOMMU_EXPORT bool uiommu_bitmap_test_and_set_atomic(uint64_t *map, uint64_t bit);
UIOMMU_EXPORT bool uiommu_bitmap_test_and_clear_atomic(uint64_t *map, uint64_t bit);

/* Set or clear bits first..last inclusive (first <= last). */
UIOMMU_EXPORT void uiommu_bitmap_set_range(uint64_t *map, uint64_t first, uint64_t last);
UIOMMU_EXPORT void uiommu_bitmap_clear_range(uint64_t *map, uint64_t first, uint64_t last);
/* One atomic OR per word touched, not one per bit. */
UIOMMU_EXPORT void uiommu_bitmap_set_range_atomic(uint64_t *map, uint64_t first, uint64_t last);

/*
 * Index of the first set (or clear) bit at or after @from and below @nbits,
 * or UIOMMU_BITMAP_NOT_FOUND.
 */
UIOMMU_EXPORT uint64_t uiommu_bitmap_find_next_set(const uint64_t *map, uint64_t nbits,
						   uint64_t from);
UIOMMU_EXPORT uint64_t uiommu_bitmap_find_next_zero(const uint64_t *map, uint64_t nbits,
						    uint64_t from);

/* Number of set bits in first..last inclusive. */
UIOMMU_EXPORT uint64_t uiommu_bitmap_count_range(const uint64_t *map, uint64_t first,
						 uint64_t last);

/*
 * Copy (or OR) @nbits bits from @src starting at bit @src_bit into @dst
 * starting at bit @dst_bit. Works a word at a time with shifts; only the edge
 * words of the destination are masked. The buffers must not overlap. nbits 0
 * does nothing.
 */
UIOMMU_EXPORT void uiommu_bitmap_copy_bits(void *dst, uint64_t dst_bit, const void *src,
					   uint64_t src_bit, uint64_t nbits);
UIOMMU_EXPORT void uiommu_bitmap_or_bits(void *dst, uint64_t dst_bit, const void *src,
					 uint64_t src_bit, uint64_t nbits);
/*
 * Set @nbits bits of the untyped buffer @dst starting at bit @dst_bit: the
 * set_range of copy_bits' buffers (any alignment, only words that hold a
 * destination bit are touched). nbits 0 does nothing.
 */
UIOMMU_EXPORT void uiommu_bitmap_set_bits(void *dst, uint64_t dst_bit, uint64_t nbits);

UIOMMU_END_DECLS

#endif
