// SPDX-License-Identifier: MIT
/*
 * Page helpers of the stream: the zero-page test and XXH3 hashing.
 *
 * Zero test. The sender asks it of every page it sends, so both cases must
 * be cheap: a page with data almost always has a non-zero byte in its first
 * cache line (early exit after 64 bytes), and a zero page must be read in
 * full at memory speed. The loop ORs 16-byte vectors (the compiler's generic
 * vectors: SSE2 on x86-64, no target flags needed) four cache lines at a time
 * and looks at the accumulator once per 256 bytes, which keeps the loop free
 * of branches on the data while bounding the work wasted on a page that turns
 * out to be non-zero late. bench_stream compares it with memcmp() against a
 * zero page.
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

typedef uint64_t ms_vec __attribute__((vector_size(16), aligned(1)));

#define ZERO_STEP 256u /* bytes ORed together before the accumulator is tested */

static bool block_is_zero(const uint8_t *p)
{
	const ms_vec *v = (const ms_vec *)(const void *)p;
	ms_vec a = v[0] | v[1] | v[2] | v[3];
	ms_vec b = v[4] | v[5] | v[6] | v[7];
	ms_vec c = v[8] | v[9] | v[10] | v[11];
	ms_vec d = v[12] | v[13] | v[14] | v[15];

	a |= b | c | d;
	return !(a[0] | a[1]);
}

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
	uint64_t head;
	size_t i;

	/* Most data pages fail here, on one load. */
	if (len >= 8) {
		memcpy(&head, p, 8);
		if (head)
			return false;
	}
	for (i = 0; i + ZERO_STEP <= len; i += ZERO_STEP) {
		if (!block_is_zero(p + i))
			return false;
	}
	return tail_is_zero(p + i, len - i);
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
