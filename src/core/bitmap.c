// SPDX-License-Identifier: MIT
/*
 * Bitmaps with 64-bit bit indices (see include/uiommu/bitmap.h for the layout).
 *
 * Typed functions (set, find, count, ...) take a uint64_t array; bit k is bit
 * k % 64 of map[k / 64]. Ranges are inclusive (first, last) and every index is
 * a uint64_t, so a bitmap may hold more than 2^32 bits.
 *
 * The *_atomic functions use the __atomic builtins with sequentially
 * consistent ordering on plain uint64_t words, so they may race with each other
 * on the same word without losing bits. Range updates OR whole-word masks: one
 * atomic per word touched, never one per bit.
 *
 * copy_bits/or_bits/set_bits work on untyped buffers that may sit at any byte
 * address (a user bitmap at an odd address, as the iommufd selftest passes).
 * Word k of such a buffer is the 8 bytes at byte offset 8k, loaded and stored
 * through memcpy so that the compiler emits one unaligned mov without any
 * alignment assumption (and no strict-aliasing trouble).
 *
 * Shifted copies: after moving both pointers to the word holding their first
 * bit, the destination starts at bit d (0..63) of its word 0 and the source at
 * bit s of its word 0. Destination word i then takes the 64 source bits that
 * begin at source bit 64i + s - d; with r = (s - d) mod 64 and h = i + (s > d),
 * that is (src[h - 1] >> r) | (src[h] << (64 - r)). Only the first and last
 * destination words are masked. At those edges h - 1 may be -1 or h may be past
 * the last source word; the missing word is then taken as 0, which is safe
 * because its bits land outside the destination range and are masked off.
 * Worked example: d = 3, s = 10, nbits = 100: r = 7, h = i + 1; destination
 * word 0 gets bits 3..63 from src[0] >> 7 | src[1] << 57, destination word 1
 * gets bits 0..38 from src[1] >> 7 (src[2] holds no source bit, as the last
 * source bit is 109, so it is not read).
 *
 * Words of the destination that hold no destination bit are never read or
 * written, and source words past the one holding the last source bit are never
 * read, so a caller may pass buffers sized exactly to the bits it names.
 */
#include <string.h>

#include <uiommu/bitmap.h>

#include "core/core_internal.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE uint64_t load64(const void *p, uint64_t word)
{
	uint64_t v;

	memcpy(&v, (const char *)p + word * 8, sizeof(v));
	return v;
}

static ALWAYS_INLINE void store64(void *p, uint64_t word, uint64_t v)
{
	memcpy((char *)p + word * 8, &v, sizeof(v));
}

static inline uint64_t bit_mask(uint64_t bit)
{
	return 1ull << (bit % 64);
}

/* Mask of bits @lo..@hi (0..63, lo <= hi) of one word. */
static inline uint64_t range_mask(unsigned int lo, unsigned int hi)
{
	return (~0ull << lo) & (~0ull >> (63 - hi));
}

/* SWAR popcount: __builtin_popcountll is a libgcc call without -mpopcnt. */
static inline unsigned int popcount64(uint64_t v)
{
	v = v - ((v >> 1) & 0x5555555555555555ull);
	v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned int)((v * 0x0101010101010101ull) >> 56);
}

UIOMMU_EXPORT void uiommu_bitmap_set(uint64_t *map, uint64_t bit)
{
	map[bit / 64] |= bit_mask(bit);
}

UIOMMU_EXPORT void uiommu_bitmap_clear(uint64_t *map, uint64_t bit)
{
	map[bit / 64] &= ~bit_mask(bit);
}

UIOMMU_EXPORT bool uiommu_bitmap_test(const uint64_t *map, uint64_t bit)
{
	return map[bit / 64] & bit_mask(bit);
}

UIOMMU_EXPORT void uiommu_bitmap_set_atomic(uint64_t *map, uint64_t bit)
{
	__atomic_fetch_or(&map[bit / 64], bit_mask(bit), __ATOMIC_SEQ_CST);
}

UIOMMU_EXPORT void uiommu_bitmap_clear_atomic(uint64_t *map, uint64_t bit)
{
	__atomic_fetch_and(&map[bit / 64], ~bit_mask(bit), __ATOMIC_SEQ_CST);
}

UIOMMU_EXPORT bool uiommu_bitmap_test_atomic(const uint64_t *map, uint64_t bit)
{
	return __atomic_load_n(&map[bit / 64], __ATOMIC_SEQ_CST) & bit_mask(bit);
}

UIOMMU_EXPORT bool uiommu_bitmap_test_and_set_atomic(uint64_t *map, uint64_t bit)
{
	return __atomic_fetch_or(&map[bit / 64], bit_mask(bit), __ATOMIC_SEQ_CST) & bit_mask(bit);
}

UIOMMU_EXPORT bool uiommu_bitmap_test_and_clear_atomic(uint64_t *map, uint64_t bit)
{
	uint64_t m = bit_mask(bit);

	return __atomic_fetch_and(&map[bit / 64], ~m, __ATOMIC_SEQ_CST) & m;
}

/*
 * Applies @op (set, clear or atomic set) to first..last a word at a time:
 * masked edge words, whole middle words. Inlined into each caller so that the
 * op is a constant and the loop has no branch on it.
 */
enum range_op { RANGE_SET, RANGE_CLEAR, RANGE_SET_ATOMIC };

static ALWAYS_INLINE void range_word(uint64_t *w, uint64_t mask, enum range_op op)
{
	if (op == RANGE_SET)
		*w |= mask;
	else if (op == RANGE_CLEAR)
		*w &= ~mask;
	else
		__atomic_fetch_or(w, mask, __ATOMIC_SEQ_CST);
}

static ALWAYS_INLINE void range_apply(uint64_t *map, uint64_t first, uint64_t last,
				      enum range_op op)
{
	uint64_t fw = first / 64, lw = last / 64;

	if (fw == lw) {
		range_word(&map[fw], range_mask(first % 64, last % 64), op);
		return;
	}
	range_word(&map[fw], ~0ull << (first % 64), op);
	for (uint64_t w = fw + 1; w < lw; w++)
		range_word(&map[w], ~0ull, op);
	range_word(&map[lw], ~0ull >> (63 - last % 64), op);
}

UIOMMU_EXPORT void uiommu_bitmap_set_range(uint64_t *map, uint64_t first, uint64_t last)
{
	range_apply(map, first, last, RANGE_SET);
}

UIOMMU_EXPORT void uiommu_bitmap_clear_range(uint64_t *map, uint64_t first, uint64_t last)
{
	range_apply(map, first, last, RANGE_CLEAR);
}

UIOMMU_EXPORT void uiommu_bitmap_set_range_atomic(uint64_t *map, uint64_t first, uint64_t last)
{
	range_apply(map, first, last, RANGE_SET_ATOMIC);
}

/*
 * Index of the first word in [w, nwords) with a bit set after XOR with @flip
 * (0 finds set bits, ~0 finds clear ones), or nwords. Four words per step
 * keep the all-clear scan near memory speed.
 */
static ALWAYS_INLINE uint64_t scan_words(const uint64_t *map, uint64_t w, uint64_t nwords,
					 uint64_t flip)
{
	for (; w + 4 <= nwords; w += 4) {
		if ((map[w] ^ flip) | (map[w + 1] ^ flip) | (map[w + 2] ^ flip) |
		    (map[w + 3] ^ flip))
			break;
	}
	for (; w < nwords; w++) {
		if (map[w] ^ flip)
			break;
	}
	return w;
}

static ALWAYS_INLINE uint64_t find_next(const uint64_t *map, uint64_t nbits, uint64_t from,
					uint64_t flip)
{
	uint64_t nwords = uiommu_bitmap_words(nbits), w, v, bit;

	if (from >= nbits)
		return UIOMMU_BITMAP_NOT_FOUND;
	w = from / 64;
	v = (map[w] ^ flip) & (~0ull << (from % 64));
	if (!v) {
		w = scan_words(map, w + 1, nwords, flip);
		if (w == nwords)
			return UIOMMU_BITMAP_NOT_FOUND;
		v = map[w] ^ flip;
	}
	bit = w * 64 + (uint64_t)__builtin_ctzll(v);
	/* A clear bit past nbits in the last word is padding, not a result. */
	return bit < nbits ? bit : UIOMMU_BITMAP_NOT_FOUND;
}

UIOMMU_EXPORT uint64_t uiommu_bitmap_find_next_set(const uint64_t *map, uint64_t nbits,
						   uint64_t from)
{
	return find_next(map, nbits, from, 0);
}

UIOMMU_EXPORT uint64_t uiommu_bitmap_find_next_zero(const uint64_t *map, uint64_t nbits,
						    uint64_t from)
{
	return find_next(map, nbits, from, ~0ull);
}

UIOMMU_EXPORT uint64_t uiommu_bitmap_count_range(const uint64_t *map, uint64_t first, uint64_t last)
{
	uint64_t fw = first / 64, lw = last / 64, n;

	if (fw == lw)
		return popcount64(map[fw] & range_mask(first % 64, last % 64));
	n = popcount64(map[fw] & (~0ull << (first % 64)));
	for (uint64_t w = fw + 1; w < lw; w++)
		n += popcount64(map[w]);
	return n + popcount64(map[lw] & (~0ull >> (63 - last % 64)));
}

/*
 * Untyped-buffer operations. @do_or selects OR (true) or copy (false); every
 * helper is inlined into copy_bits and or_bits so that it is a constant.
 */
static ALWAYS_INLINE void merge_word(void *dst, uint64_t i, uint64_t v, uint64_t mask, bool do_or)
{
	uint64_t old = load64(dst, i);

	store64(dst, i, do_or ? old | (v & mask) : (old & ~mask) | (v & mask));
}

/* Source word pair h - 1, h at shift r, where either may lie outside 0..ls. */
static ALWAYS_INLINE uint64_t edge_word(const void *src, uint64_t h, unsigned int r, uint64_t ls)
{
	uint64_t v = 0;

	if (h >= 1)
		v = load64(src, h - 1) >> r;
	if (h <= ls)
		v |= load64(src, h) << (64 - r);
	return v;
}

/*
 * Two words as one value: GCC's generic vectors become one SSE register on
 * x86-64 (plain pairs of registers elsewhere), so the bulk loops below move
 * 16 bytes per load and store without target-specific code.
 */
/*
 * A copy only stores to the destination, and each store that misses waits for
 * its line to be read for ownership; or_bits loads the line first and runs
 * faster for it. Prefetching the destination for writing this many bytes ahead
 * brings copy_bits from ~13 to ~18 GB/s on the development machine (measured
 * with bench_bitmap; 256 and 1024 were slower).
 */
#define PF_DIST 512

typedef uint64_t v2u64 __attribute__((vector_size(16)));

static ALWAYS_INLINE v2u64 vload(const void *p, uint64_t word)
{
	v2u64 v;

	memcpy(&v, (const char *)p + word * 8, sizeof(v));
	return v;
}

static ALWAYS_INLINE void vstore(void *p, uint64_t word, v2u64 v)
{
	memcpy((char *)p + word * 8, &v, sizeof(v));
}

/*
 * The middle destination words 1..nwords-2, all of whose bits are destination
 * bits, from source words hoff .. nwords + hoff - 2 (all holding source bits).
 * Each step shifts two overlapping unaligned loads of the source (words h - 1..
 * and h..) into place, eight words (one cache line) at a time.
 */
static ALWAYS_INLINE void shift_bulk(void *dst, const void *src, uint64_t nwords, uint64_t hoff,
				     unsigned int r, bool do_or)
{
	unsigned int l = 64 - r;
	uint64_t i = 1, end = nwords - 1, h = i + hoff;

	for (; i + 8 <= end; i += 8, h += 8) {
		v2u64 v0 = vload(src, h - 1) >> r | vload(src, h) << l;
		v2u64 v1 = vload(src, h + 1) >> r | vload(src, h + 2) << l;
		v2u64 v2 = vload(src, h + 3) >> r | vload(src, h + 4) << l;
		v2u64 v3 = vload(src, h + 5) >> r | vload(src, h + 6) << l;

		if (do_or) {
			v0 |= vload(dst, i);
			v1 |= vload(dst, i + 2);
			v2 |= vload(dst, i + 4);
			v3 |= vload(dst, i + 6);
		} else {
			__builtin_prefetch((char *)dst + i * 8 + PF_DIST, 1);
		}
		vstore(dst, i, v0);
		vstore(dst, i + 2, v1);
		vstore(dst, i + 4, v2);
		vstore(dst, i + 6, v3);
	}
	for (; i < end; i++, h++) {
		uint64_t v = load64(src, h - 1) >> r | load64(src, h) << l;

		store64(dst, i, do_or ? load64(dst, i) | v : v);
	}
}

/* dst |= src over whole words, 16 bytes per step. */
static ALWAYS_INLINE void or_words(void *dst, const void *src, uint64_t i, uint64_t end)
{
	for (; i + 4 <= end; i += 4) {
		vstore(dst, i, vload(dst, i) | vload(src, i));
		vstore(dst, i + 2, vload(dst, i + 2) | vload(src, i + 2));
	}
	for (; i < end; i++)
		store64(dst, i, load64(dst, i) | load64(src, i));
}

/* Where a copy lands: bit offsets within the first words, sizes and edge masks. */
struct span {
	unsigned int d, s;
	uint64_t nbits, nwords, first_mask, last_mask;
};

/* Same bit offset in source and destination: word i comes from word i. */
static ALWAYS_INLINE void aligned_bits(void *dst, const void *src, const struct span *sp,
				       bool do_or)
{
	uint64_t nwords = sp->nwords;

	if (nwords == 1) {
		merge_word(dst, 0, load64(src, 0), sp->first_mask & sp->last_mask, do_or);
		return;
	}
	merge_word(dst, 0, load64(src, 0), sp->first_mask, do_or);
	if (!do_or)
		memcpy((char *)dst + 8, (const char *)src + 8, (nwords - 2) * 8);
	else
		or_words(dst, src, 1, nwords - 1);
	merge_word(dst, nwords - 1, load64(src, nwords - 1), sp->last_mask, do_or);
}

static ALWAYS_INLINE void shifted_bits(void *dst, const void *src, const struct span *sp,
				       bool do_or)
{
	unsigned int r = (sp->s - sp->d) % 64;
	uint64_t hoff = sp->s > sp->d, ls = (sp->s + sp->nbits - 1) / 64, nwords = sp->nwords;

	if (nwords == 1) {
		merge_word(dst, 0, edge_word(src, hoff, r, ls), sp->first_mask & sp->last_mask,
			   do_or);
		return;
	}
	merge_word(dst, 0, edge_word(src, hoff, r, ls), sp->first_mask, do_or);
	shift_bulk(dst, src, nwords, hoff, r, do_or);
	merge_word(dst, nwords - 1, edge_word(src, nwords - 1 + hoff, r, ls), sp->last_mask, do_or);
}

static ALWAYS_INLINE void move_bits(void *dst, uint64_t dst_bit, const void *src, uint64_t src_bit,
				    uint64_t nbits, bool do_or)
{
	struct span sp = {.d = dst_bit % 64, .s = src_bit % 64, .nbits = nbits};

	if (!nbits)
		return;
	dst = (char *)dst + dst_bit / 64 * 8;
	src = (const char *)src + src_bit / 64 * 8;
	sp.nwords = (sp.d + nbits - 1) / 64 + 1;
	sp.first_mask = ~0ull << sp.d;
	sp.last_mask = ~0ull >> (63 - (sp.d + nbits - 1) % 64);
	if (sp.d == sp.s)
		aligned_bits(dst, src, &sp, do_or);
	else
		shifted_bits(dst, src, &sp, do_or);
}

UIOMMU_EXPORT void uiommu_bitmap_copy_bits(void *dst, uint64_t dst_bit, const void *src,
					   uint64_t src_bit, uint64_t nbits)
{
	move_bits(dst, dst_bit, src, src_bit, nbits, false);
}

UIOMMU_EXPORT void uiommu_bitmap_or_bits(void *dst, uint64_t dst_bit, const void *src,
					 uint64_t src_bit, uint64_t nbits)
{
	move_bits(dst, dst_bit, src, src_bit, nbits, true);
}

UIOMMU_EXPORT void uiommu_bitmap_set_bits(void *dst, uint64_t dst_bit, uint64_t nbits)
{
	unsigned int d = dst_bit % 64;
	uint64_t nwords, last_mask;

	if (!nbits)
		return;
	dst = (char *)dst + dst_bit / 64 * 8;
	nwords = (d + nbits - 1) / 64 + 1;
	last_mask = ~0ull >> (63 - (d + nbits - 1) % 64);
	if (nwords == 1) {
		store64(dst, 0, load64(dst, 0) | ((~0ull << d) & last_mask));
		return;
	}
	store64(dst, 0, load64(dst, 0) | ~0ull << d);
	memset((char *)dst + 8, 0xff, (nwords - 2) * 8);
	store64(dst, nwords - 1, load64(dst, nwords - 1) | last_mask);
}
