// SPDX-License-Identifier: MIT
/*
 * The "vfio" dirty source: what a VFIO type1 container says was dirtied,
 * read the way a VMM with a legacy VFIO container reads it, through
 * VFIO_IOMMU_DIRTY_PAGES on the container (uiommu_vfio_container_ioctl(),
 * the same entry point as ioctl(2) on /dev/vfio/vfio).
 *
 * Guest RAM is mapped at IOVA = GPA, so guest page p is IOVA p * 4 KiB; the
 * source covers IOVA [0, npages * 4 KiB). start is DIRTY_PAGES START, stop
 * is STOP, collect is one GET_BITMAP of the whole range. GET_BITMAP reads
 * and clears.
 *
 * Page sizes. GET_BITMAP speaks in container pages: its pgsize must be the
 * container's smallest page size P (the lowest bit of its pgsize_bitmap),
 * and the range must be P-aligned. P follows the devices attached (and the
 * host's CPU page: type1 hides smaller IOMMU pages and raises the floor to
 * the CPU page, so P is 64 KiB on a 64 KiB-page host), so start reads it and
 * sizes the scratch bitmap for it: npages * 4 KiB / P bits. Collect turns
 * container bits into guest pages, clipped to [0, npages):
 *  - P = 4 KiB: bit k is guest page k; the words are ORed as they are;
 *  - P > 4 KiB: bit k covers the r = P / 4 KiB guest pages [k * r, k * r +
 *    r - 1], all reported. With r < 64 each 64 / r bits of a word spread to
 *    one whole guest word (shift-and-mask steps, then a multiply that fills
 *    each r-bit block); with r >= 64 each bit fills r / 64 words;
 *  - P < 4 KiB: guest page p is dirty when any of its q = 4 KiB / P bits
 *    [p * q, p * q + q - 1] is. With q < 64 each word folds to 64 / q guest
 *    pages (OR within q-bit blocks, then the inverse steps of the spread);
 *    with q >= 64 a page is dirty when one of its q / 64 words is non-zero.
 * Only the r >= 64 and q >= 64 paths look at single bits, and only at set
 * ones found a word at a time (for q >= 64, at most one per guest page).
 *
 * Layout rule. The range must stay exactly the mapped guest RAM: GET_BITMAP
 * refuses a range that ends inside a mapping, and rounding it up would read
 * and clear bits of IOVA that is not guest RAM. So when P > 4 KiB, npages
 * must be a multiple of r; otherwise guest RAM cannot have been mapped alone
 * with P-aligned MAP_DMA sizes, and start fails with -EINVAL (logged) before
 * anything is asked of the container. P < 4 KiB always fits.
 *
 * The page size is the one read at start. Should the container's change
 * while tracking (a group with larger pages joins), GET_BITMAP refuses the
 * old one (-EINVAL, logged) until the source is stopped and started again.
 *
 * What it reports is the kernel's rule, not what was written:
 *  - while an IOMMU-backed group that is not in pinned scope is attached,
 *    every mapped page, in every collect (the all-dirty rule), unless the
 *    container has UIOMMU_VFIO_OPT_IOMMU_DIRTY, which reads the IOMMU's
 *    dirty bits instead;
 *  - pages pinned by emulated devices (CPU pages), in every collect while
 *    pinned, and once more after the unpin;
 *  - pages written with uiommu_vfio_dma_rw, once.
 * The kernel copies whole words and expects a zeroed buffer, so collect
 * reads into a zeroed scratch bitmap of its own, then ORs the guest pages
 * into the caller's bitmap and counts them in the same pass: *pages grows by
 * the guest pages this collect reported (a page of the caller's bitmap that
 * was already set counts all the same, as for the "iommu" source).
 *
 * The container is the VMM's and must outlive the source. The scratch
 * bitmap is allocated by the first start (and grown by a later one that
 * needs more); destroy frees it.
 *
 * Example: npages 512 with an emulated device that pinned pages 8-11 and
 * wrote page 20 by rw, P = 4 KiB: the first collect reports 8-11 and 20 (5
 * pages), the next ones 8-11 (4 pages) for as long as the pins stay. With
 * P = 64 KiB (r = 16) the scratch holds 32 bits; an rw write to page 20 sets
 * bit 1 and the collect reports pages 16-31 (16 pages). With P = 2 KiB
 * (q = 2) it holds 1024 bits; a write to IOVA 0x5000..0x5010 sets bit 10
 * and the collect reports page 5.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <string.h>

#include <uiommu/bitmap.h>
#include <uiommu/vfio_type1.h>
#include <uiommu/vm_sources.h>

#include "core/core_internal.h"

#define GUEST_PAGE_SHIFT 12

struct vfio_src;
/* ORs the scratch bitmap into @bitmap as guest pages; returns how many. */
typedef uint64_t (*deliver_fn)(const struct vfio_src *vs, uint64_t *bitmap);

struct vfio_src {
	struct uiommu_dirty_source base;
	struct uiommu_vfio_container *c;
	uint64_t *scratch;        /* GET_BITMAP's buffer, one bit per container page */
	uint64_t scratch_words;   /* allocated */
	/* Set by start from the container's smallest page: */
	unsigned int pgshift;     /* log2(P) */
	uint64_t nbits;           /* container pages in [0, npages * 4 KiB) */
	deliver_fn deliver;
	/*
	 * For P != 4 KiB with a ratio 2^k below 64 (k = |pgshift - 12|, 1..5):
	 * mask[j] keeps the low 2^j bits of every (2^j << k)-bit block, for
	 * 2^j <= 64 >> k. The spread and fold steps mask with them.
	 */
	uint64_t mask[6];
};

/* The header of struct vfio_iommu_type1_dirty_bitmap, then its GET_BITMAP payload. */
struct dirty_get {
	struct {
		__u32 argsz;
		__u32 flags;
	} hdr;
	struct vfio_iommu_type1_dirty_bitmap_get get;
};

static struct vfio_src *to_vfio(struct uiommu_dirty_source *src)
{
	return container_of(src, struct vfio_src, base);
}

static uint64_t scratch_words_used(const struct vfio_src *vs)
{
	return uiommu_bitmap_words(vs->nbits);
}

/* ---- container bits to guest pages ---- */

/* P = 4 KiB: the same bits. */
static uint64_t deliver_same(const struct vfio_src *vs, uint64_t *bitmap)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < scratch_words_used(vs); w++) {
		bitmap[w] |= vs->scratch[w];
		n += (uint64_t)__builtin_popcountll(vs->scratch[w]);
	}
	return n;
}

/* Bit i of the low 64 >> k bits of @x to bits [i << k, (i << k) + 2^k - 1]. */
static uint64_t spread_word(const struct vfio_src *vs, uint64_t x, unsigned int k)
{
	unsigned int r = 1u << k;

	/* Step j moves the bits whose index has bit j set up by 2^j * (r - 1). */
	for (int j = __builtin_ctz(64u >> k) - 1; j >= 0; j--)
		x = (x | x << ((1u << j) * (r - 1))) & vs->mask[j];
	/* One bit at the bottom of each r-bit block: the product fills the block. */
	return x * ((1ull << r) - 1);
}

/* P = 2^k * 4 KiB, k 1..5: each 64 >> k bits of a word make one guest word. */
static uint64_t deliver_spread(const struct vfio_src *vs, uint64_t *bitmap)
{
	unsigned int k = vs->pgshift - GUEST_PAGE_SHIFT, n = 64u >> k;
	uint64_t low = (1ull << n) - 1, count = 0;

	for (uint64_t w = 0; w < scratch_words_used(vs); w++) {
		uint64_t x = vs->scratch[w];

		if (!x)
			continue;
		count += (uint64_t)__builtin_popcountll(x);
		/* Bits past nbits are clear, so no guest word past npages is touched. */
		for (uint64_t o = w << k; x; o++, x >>= n)
			if (x & low)
				bitmap[o] |= spread_word(vs, x & low, k);
	}
	return count << k;
}

/* P >= 256 KiB: each bit fills P / 256 KiB whole guest words. */
static uint64_t deliver_fill(const struct vfio_src *vs, uint64_t *bitmap)
{
	unsigned int k = vs->pgshift - GUEST_PAGE_SHIFT;
	uint64_t count = 0, b = 0;

	while ((b = uiommu_bitmap_find_next_set(vs->scratch, vs->nbits, b)) !=
	       UIOMMU_BITMAP_NOT_FOUND) {
		uiommu_bitmap_set_range(bitmap, b << k, ((b + 1) << k) - 1);
		count++;
		b++;
	}
	return count << k;
}

/* Guest page i (q = 2^k bits from bit i << k, k 1..5) of @x dirty: bit i of the result. */
static uint64_t fold_word(const struct vfio_src *vs, uint64_t x, unsigned int k)
{
	unsigned int q = 1u << k, top = (unsigned int)__builtin_ctz(64u >> k);

	/* Bit i << k becomes the OR of its block; the others are dropped. */
	for (unsigned int t = 1; t < q; t <<= 1)
		x |= x >> t;
	x &= vs->mask[0];
	/* The spread's steps undone: step j moves down what step j moved up. */
	for (unsigned int j = 0; j < top; j++)
		x = (x | x >> ((1u << j) * (q - 1))) & vs->mask[j + 1];
	return x;
}

/* P = 4 KiB >> k, k 1..5: each guest word gathers 2^k words of 64 >> k pages. */
static uint64_t deliver_fold(const struct vfio_src *vs, uint64_t *bitmap)
{
	unsigned int k = GUEST_PAGE_SHIFT - vs->pgshift, n = 64u >> k;
	uint64_t in_words = scratch_words_used(vs), count = 0;

	for (uint64_t o = 0; o < uiommu_bitmap_words(vs->base.npages); o++) {
		uint64_t out = 0, w = o << k;

		for (unsigned int j = 0; j < (1u << k) && w + j < in_words; j++)
			if (vs->scratch[w + j])
				out |= fold_word(vs, vs->scratch[w + j], k) << (j * n);
		bitmap[o] |= out;
		count += (uint64_t)__builtin_popcountll(out);
	}
	return count;
}

/* P <= 64 bytes: each guest page owns 64 / P whole words of bits. */
static uint64_t deliver_any(const struct vfio_src *vs, uint64_t *bitmap)
{
	unsigned int k = GUEST_PAGE_SHIFT - vs->pgshift;
	uint64_t count = 0, b = 0;

	while ((b = uiommu_bitmap_find_next_set(vs->scratch, vs->nbits, b)) !=
	       UIOMMU_BITMAP_NOT_FOUND) {
		uiommu_bitmap_set(bitmap, b >> k);
		count++;
		/* The rest of this page's bits cannot add anything. */
		b = ((b >> k) + 1) << k;
	}
	return count;
}

/* The masks of spread_word/fold_word for a ratio of 2^k (k 1..5). */
static void masks_init(struct vfio_src *vs, unsigned int k)
{
	for (unsigned int j = 0; (1u << j) <= (64u >> k); j++) {
		unsigned int width = 1u << j, period = width << k;
		/* 1 at the bottom of every block: 2^64 - 1 divided by 2^period - 1. */
		uint64_t rep = period >= 64 ? 1 : UINT64_MAX / ((1ull << period) - 1);

		vs->mask[j] = ((1ull << width) - 1) * rep;
	}
}

static deliver_fn deliver_choose(struct vfio_src *vs, unsigned int pgshift)
{
	unsigned int k;

	if (pgshift == GUEST_PAGE_SHIFT)
		return deliver_same;
	k = pgshift > GUEST_PAGE_SHIFT ? pgshift - GUEST_PAGE_SHIFT : GUEST_PAGE_SHIFT - pgshift;
	if (k >= 6)
		return pgshift > GUEST_PAGE_SHIFT ? deliver_fill : deliver_any;
	masks_init(vs, k);
	return pgshift > GUEST_PAGE_SHIFT ? deliver_spread : deliver_fold;
}

/* ---- start, stop, collect ---- */

static int dirty_cmd(struct vfio_src *vs, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap cmd = { .argsz = sizeof(cmd), .flags = flag };
	long rc = uiommu_vfio_container_ioctl(vs->c, VFIO_IOMMU_DIRTY_PAGES, &cmd);

	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "vfio: DIRTY_PAGES %s failed (%ld)",
			    flag == VFIO_IOMMU_DIRTY_PAGES_FLAG_START ? "START" : "STOP", rc);
	return (int)rc;
}

/* The container's smallest page, and whether guest RAM is a whole number of them. */
static int read_pgshift(struct vfio_src *vs, unsigned int *pgshift)
{
	struct uiommu_vfio_info info;
	int ret = uiommu_vfio_get_info(vs->c, &info, NULL, 0);
	unsigned int shift;
	uint64_t bytes;

	if (ret)
		return ret;
	if (!info.pgsize_bitmap) {
		uiommu__log(UIOMMU_LOG_ERR, "vfio: the container has no page size");
		return -EINVAL;
	}
	shift = (unsigned int)__builtin_ctzll(info.pgsize_bitmap);
	/* create bounded npages so that npages << 12 cannot wrap. */
	bytes = vs->base.npages << GUEST_PAGE_SHIFT;
	if (bytes & ((1ull << shift) - 1)) {
		uiommu__log(UIOMMU_LOG_ERR,
			    "vfio: guest RAM of %llu 4 KiB pages is not a whole number of the "
			    "container's 0x%llx-byte pages: GET_BITMAP cannot cover exactly it",
			    (unsigned long long)vs->base.npages, 1ull << shift);
		return -EINVAL;
	}
	*pgshift = shift;
	return 0;
}

/* A zeroed scratch bitmap of at least @words words (the old one if big enough). */
static int scratch_reserve(struct vfio_src *vs, uint64_t words)
{
	uint64_t *p;

	if (words <= vs->scratch_words)
		return 0;
	if (words > SIZE_MAX / sizeof(uint64_t))
		return -ENOMEM;
	p = uiommu__calloc((size_t)words, sizeof(uint64_t));
	if (!p)
		return -ENOMEM;
	uiommu__free(vs->scratch);
	vs->scratch = p;
	vs->scratch_words = words;
	return 0;
}

static int vfio_start(struct uiommu_dirty_source *src)
{
	struct vfio_src *vs = to_vfio(src);
	unsigned int pgshift;
	uint64_t nbits;
	int ret = read_pgshift(vs, &pgshift);

	if (ret)
		return ret;
	/* Exact: the byte length is a multiple of P when P > 4 KiB (checked). */
	nbits = (src->npages << GUEST_PAGE_SHIFT) >> pgshift;
	ret = scratch_reserve(vs, uiommu_bitmap_words(nbits));
	if (ret)
		return ret;
	vs->pgshift = pgshift;
	vs->nbits = nbits;
	vs->deliver = deliver_choose(vs, pgshift);
	return dirty_cmd(vs, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
}

static void vfio_stop(struct uiommu_dirty_source *src)
{
	dirty_cmd(to_vfio(src), VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
}

static int vfio_collect(struct uiommu_dirty_source *src, uint64_t *bitmap, uint64_t *pages)
{
	struct vfio_src *vs = to_vfio(src);
	uint64_t words = scratch_words_used(vs);
	struct dirty_get g = {
		.hdr = { .argsz = sizeof(g), .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
		.get = { .iova = 0,
			 .size = src->npages << GUEST_PAGE_SHIFT,
			 .bitmap = { .pgsize = 1ull << vs->pgshift,
				     .size = words * sizeof(uint64_t),
				     .data = (__u64 *)vs->scratch } },
	};
	long rc;

	memset(vs->scratch, 0, words * sizeof(uint64_t));
	rc = uiommu_vfio_container_ioctl(vs->c, VFIO_IOMMU_DIRTY_PAGES, &g);
	if (rc)
		uiommu__log(UIOMMU_LOG_ERR, "vfio: GET_BITMAP at 0x%llx failed (%ld)",
			    1ull << vs->pgshift, rc);
	/*
	 * The kernel clears the bits past the last entry it writes; keep the
	 * delivery inside npages whatever lands there.
	 */
	if (vs->nbits % 64)
		vs->scratch[words - 1] &= (1ull << (vs->nbits % 64)) - 1;
	/* Entries copied out before a failure were reset: deliver what arrived. */
	*pages += vs->deliver(vs, bitmap);
	return (int)rc;
}

static void vfio_destroy(struct uiommu_dirty_source *src)
{
	struct vfio_src *vs = to_vfio(src);

	uiommu__free(vs->scratch);
	uiommu__free(vs);
}

static const struct uiommu_dirty_source_ops vfio_ops = {
	.start = vfio_start,
	.collect = vfio_collect,
	.stop = vfio_stop,
	.destroy = vfio_destroy,
};

UIOMMU_EXPORT int uiommu_vfio_source_create(struct uiommu_vfio_container *c, uint64_t npages,
					    struct uiommu_dirty_source **out)
{
	struct vfio_src *vs;

	/* The IOVA length npages * 4 KiB must not wrap. */
	if (!c || !npages || npages > (UINT64_MAX >> GUEST_PAGE_SHIFT) || !out)
		return -EINVAL;
	vs = uiommu__zalloc(sizeof(*vs));
	if (!vs)
		return -ENOMEM;
	vs->c = c;
	vs->base.ops = &vfio_ops;
	vs->base.name = "vfio";
	vs->base.npages = npages;
	*out = &vs->base;
	return 0;
}
