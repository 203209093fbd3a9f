// SPDX-License-Identifier: MIT
/*
 * Page helpers of the stream: the zero-page test and XXH3 hashing.
 *
 * Zero test. The sender asks it of every page it sends, so both cases must
 * be cheap: a page with data almost always has a non-zero byte in its first
 * 8 bytes (one load), and a zero page must be read in full at memory speed.
 * The loop ORs 32-byte vectors (the compiler's generic vectors) sixteen at a
 * time and looks at the accumulator once per 512 bytes, which keeps the loop
 * free of branches on the data while bounding the work wasted on a page that
 * turns out to be non-zero late. On x86-64 the loop is compiled twice, for
 * AVX2 (used where the CPU has it) and for the SSE2 baseline. bench_stream compares it with memcmp() against a
 * zero page (glibc's is AVX2 too): 1.5 to 1.7 times faster in cache here,
 * equal from memory, where both are bound by the memory's bandwidth.
 *
 * Hashing is XXH3_64bits with seed 0 everywhere (the format fixes it). When
 * libxxhash has its x86 dispatcher (XXH3_64bits_dispatch, which picks AVX2 or
 * AVX-512 at run time) it is used: same result, about twice the speed of the
 * SSE2 build on this machine. Streaming hashes use XXH3_state_t, allocated by
 * the library so that its layout stays private to xxhash.
 */
#include <errno.h>

#include <xxhash.h>
#ifdef UIOMMU_HAVE_XXH_DISPATCH
#include <xxh_x86dispatch.h>
#endif

#include "migrate/migrate_internal.h"

typedef uint64_t ms_vec __attribute__((vector_size(32), aligned(1)));

#define ZERO_STEP 512u /* bytes ORed together before the accumulator is tested */

/* Are the @n ZERO_STEP blocks at @p all zero? Inlined into each variant below. */
static inline __attribute__((always_inline)) bool blocks_zero_body(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++, p += ZERO_STEP) {
		const ms_vec *v = (const ms_vec *)(const void *)p;
		ms_vec a = v[0] | v[1] | v[2] | v[3];
		ms_vec b = v[4] | v[5] | v[6] | v[7];
		ms_vec c = v[8] | v[9] | v[10] | v[11];
		ms_vec d = v[12] | v[13] | v[14] | v[15];

		a |= b | c | d;
		if (a[0] | a[1] | a[2] | a[3])
			return false;
	}
	return true;
}

static bool blocks_are_zero_base(const uint8_t *p, size_t n)
{
	return blocks_zero_body(p, n);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static bool blocks_are_zero_avx2(const uint8_t *p, size_t n)
{
	return blocks_zero_body(p, n);
}

/*
 * A plain run-time test rather than an ifunc (target_clones): ThreadSanitizer
 * instruments ifunc resolvers, which then run before it is set up and crash.
 */
static bool blocks_are_zero(const uint8_t *p, size_t n)
{
	if (__builtin_cpu_supports("avx2"))
		return blocks_are_zero_avx2(p, n);
	return blocks_are_zero_base(p, n);
}
#else
static bool blocks_are_zero(const uint8_t *p, size_t n)
{
	return blocks_are_zero_base(p, n);
}
#endif

static bool tail_is_zero(const uint8_t *p, size_t len)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < len; i++)
		acc |= p[i];
	return !acc;
}

bool uiommu__page_is_zero(const void *page, size_t len)
{
	const uint8_t *p = page;
	size_t blocks = len / ZERO_STEP;
	uint64_t head;

	/* Most data pages fail here, on one load. */
	if (len >= 8) {
		memcpy(&head, p, 8);
		if (head)
			return false;
	}
	if (!blocks_are_zero(p, blocks))
		return false;
	return tail_is_zero(p + blocks * ZERO_STEP, len - blocks * ZERO_STEP);
}

UIOMMU_EXPORT bool uiommu_stream_page_is_zero(const void *page, size_t len)
{
	return uiommu__page_is_zero(page, len);
}

uint64_t uiommu__hash(const void *buf, size_t len)
{
#ifdef UIOMMU_HAVE_XXH_DISPATCH
	return XXH3_64bits_dispatch(buf, len);
#else
	return XXH3_64bits(buf, len);
#endif
}

UIOMMU_EXPORT uint64_t uiommu_stream_hash_page(const void *page, size_t page_size)
{
	return uiommu__hash(page, page_size);
}

int ms_hasher_init(struct ms_hasher *h)
{
	h->state = XXH3_createState();
	return h->state ? 0 : -ENOMEM;
}

void ms_hasher_fini(struct ms_hasher *h)
{
	if (h->state)
		XXH3_freeState(h->state);
	h->state = NULL;
}

void ms_hasher_reset(struct ms_hasher *h)
{
	XXH3_64bits_reset(h->state);
}

void ms_hasher_update(struct ms_hasher *h, const void *buf, size_t len)
{
#ifdef UIOMMU_HAVE_XXH_DISPATCH
	XXH3_64bits_update_dispatch(h->state, buf, len);
#else
	XXH3_64bits_update(h->state, buf, len);
#endif
}

uint64_t ms_hasher_digest(struct ms_hasher *h)
{
	return XXH3_64bits_digest(h->state);
}

uint64_t ms_record_check(struct ms_hasher *h, const uint8_t *rec_hdr, const void *payload,
			 size_t len)
{
	ms_hasher_reset(h);
	ms_hasher_update(h, rec_hdr, MS_REC_CHECKED);
	if (len)
		ms_hasher_update(h, payload, len);
	return ms_hasher_digest(h);
}
