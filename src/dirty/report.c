// SPDX-License-Identifier: MIT
/*
 * Dirty reports into user bitmaps (see include/uiommu/dirty.h).
 *
 * A report covers the inclusive IOVA range [iova, last] with one bit per
 * 2^pgshift bytes; report bit k covers [iova + (k << pgshift), iova + ((k + 1)
 * << pgshift) - 1]. The user bitmap is an untyped buffer at any alignment, so
 * every write goes through uiommu_bitmap_or_bits/set_bits, which touch only the
 * 8-byte words that hold a bit of the report; none lies past bitmap_bytes,
 * which report_init checked covers every bit of [iova, last].
 *
 * The page table hands the sink runs at its leaf granularity: run bit j covers
 * [run->iova + (j << rs), run->iova + ((j + 1) << rs) - 1] for rs =
 * run->pgshift. A run is first clipped to the run bits j0..j1 that meet the
 * report range; then, when run->iova sits on the report's 2^rs grid
 * (run->iova - iova is a multiple of 2^rs, always true for page tables), one
 * of three paths converts it to the report's pgshift ps:
 *  - rs == ps: one or_bits of the run bits into the report at bit offset
 *    (run->iova - iova) >> ps, a word at a time whatever the offsets;
 *  - rs > ps (extend): each run bit sets 2^(rs - ps) report bits. Runs of set
 *    bits are found with find_next_set/zero and set with one set_bits each;
 *  - rs < ps (combine): report bit k is the OR of a group of g = 2^(ps - rs)
 *    run bits. Groups of 64 bits or more: find the next set run bit, set its
 *    report bit, skip to the next group. Smaller groups: chunks of run bits are
 *    copied to a group-aligned buffer, each word folded to 64 / g report bits
 *    with shifts and masks, and the result ORed in.
 * Any other run (not on the grid) takes the extend path, which is exact for
 * every shift because it works on IOVA ranges, not bit indices.
 *
 * Worked example: report iova 0x10000, pgshift 13 (8 KiB); a run at iova
 * 0x14000, pgshift 12, bits 0b1101. The run is on the 4 KiB grid and combines
 * with g = 2: run unit offset (0x14000 - 0x10000) >> 12 = 4, so its bit j
 * belongs to report bit (4 + j) >> 1; bits 0 and 1 give report bit 2, bit 3
 * gives report bit 3.
 *
 * Validation matches IOMMU_HWPT_GET_DIRTY_BITMAP's order (uapi-spec 3.10).
 * length 0 wraps to a last of iova - 1 as in the kernel: it overflows unless
 * iova is 0, and (0, 0) asks for the whole 64-bit space.
 */
#include <errno.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty.h>

#include "core/core_internal.h"

/* Run bits per chunk of the small-group combine path. */
#define COMBINE_CHUNK_WORDS 32
#define COMBINE_CHUNK_BITS (COMBINE_CHUNK_WORDS * 64)

static unsigned int page_shift(uint64_t page_size)
{
	return (unsigned int)__builtin_ctzll(page_size);
}

UIOMMU_EXPORT uint64_t uiommu_dirty_bitmap_bytes(uint64_t length, uint64_t page_size)
{
	if (!page_size)
		return 0;
	/* length - 1 wraps for length 0, the kernel's whole-space request. */
	return (((length - 1) >> page_shift(page_size)) / 64 + 1) * 8;
}

UIOMMU_EXPORT int uiommu_dirty_report_init(struct uiommu_dirty_report *report, uint64_t iova,
					   uint64_t length, uint64_t page_size, void *bitmap,
					   uint64_t bitmap_bytes)
{
	uint64_t last;

	if (uiommu_check_add_overflow(iova, length - 1, &last))
		return -EOVERFLOW;
	if (!page_size)
		return -EINVAL;
	/* A mask, not a modulo: non-powers of two pass in some cases, as in the kernel. */
	if ((iova & (page_size - 1)) || ((last + 1) & (page_size - 1)))
		return -EINVAL;
	if (!bitmap || bitmap_bytes < uiommu_dirty_bitmap_bytes(length, page_size))
		return -EINVAL;
	report->iova = iova;
	report->last = last;
	report->pgshift = page_shift(page_size);
	report->bitmap = bitmap;
	report->bitmap_bytes = bitmap_bytes;
	return 0;
}

/* Sets the report bits that meet [first, last], clipped to the report. */
static void report_set_range(struct uiommu_dirty_report *r, uint64_t first, uint64_t last)
{
	uint64_t k0, k1;

	first = u64_max(first, r->iova);
	last = u64_min(last, r->last);
	if (first > last)
		return;
	k0 = (first - r->iova) >> r->pgshift;
	k1 = (last - r->iova) >> r->pgshift;
	uiommu_bitmap_set_bits(r->bitmap, k0, k1 - k0 + 1);
}

UIOMMU_EXPORT void uiommu_dirty_report_set(struct uiommu_dirty_report *report, uint64_t iova,
					   uint64_t length)
{
	uint64_t last;

	if (!length)
		return;
	if (uiommu_check_add_overflow(iova, length - 1, &last))
		last = UINT64_MAX;
	report_set_range(report, iova, last);
}

/* A run clipped to its bits j0..j1 that meet the report range. */
struct clipped_run {
	const struct uiommu_dirty_run *run;
	uint64_t j0, j1;
};

static bool run_clip(const struct uiommu_dirty_report *r, const struct uiommu_dirty_run *run,
		     struct clipped_run *c)
{
	uint64_t j0 = 0, j1;

	if (!run->nbits || run->iova > r->last)
		return false;
	if (run->iova < r->iova)
		j0 = (r->iova - run->iova) >> run->pgshift;
	j1 = u64_min(run->nbits - 1, (r->last - run->iova) >> run->pgshift);
	if (j0 > j1)
		return false;
	c->run = run;
	c->j0 = j0;
	c->j1 = j1;
	return true;
}

/* First IOVA of run bit @j; cannot wrap for j <= j1, which lies below the report's last. */
static uint64_t run_bit_iova(const struct uiommu_dirty_run *run, uint64_t j)
{
	return run->iova + (j << run->pgshift);
}

static uint64_t run_bit_last(const struct uiommu_dirty_run *run, uint64_t j)
{
	uint64_t last;

	if (uiommu_check_add_overflow(run_bit_iova(run, j), (1ull << run->pgshift) - 1, &last))
		return UINT64_MAX;
	return last;
}

/* Every run of set bits as one IOVA range: exact for any shifts and alignment. */
static void sink_ranges(struct uiommu_dirty_report *r, const struct clipped_run *c)
{
	const uint64_t *bits = c->run->bits;
	uint64_t nbits = c->j1 + 1, j = c->j0, e;

	while ((j = uiommu_bitmap_find_next_set(bits, nbits, j)) != UIOMMU_BITMAP_NOT_FOUND) {
		e = uiommu_bitmap_find_next_zero(bits, nbits, j);
		if (e == UIOMMU_BITMAP_NOT_FOUND)
			e = nbits;
		report_set_range(r, run_bit_iova(c->run, j), run_bit_last(c->run, e - 1));
		j = e;
	}
}

/* Report bit of the first clipped run bit; the run is on the report's grid. */
static uint64_t first_report_bit(const struct uiommu_dirty_report *r, const struct clipped_run *c)
{
	return (run_bit_iova(c->run, c->j0) - r->iova) >> r->pgshift;
}

/* Combine with groups of at least 64 run bits: one search per dirty group. */
static void combine_large(struct uiommu_dirty_report *r, const struct clipped_run *c,
			  unsigned int sh)
{
	uint64_t g = 1ull << sh, nbits = c->j1 + 1, j = c->j0, u, skip;
	/* Run units (2^rs bytes) from the report's iova to run bit j0. */
	uint64_t u0 = (run_bit_iova(c->run, c->j0) - r->iova) >> c->run->pgshift;

	while ((j = uiommu_bitmap_find_next_set(c->run->bits, nbits, j)) !=
	       UIOMMU_BITMAP_NOT_FOUND) {
		u = u0 + (j - c->j0);
		uiommu_bitmap_set_bits(r->bitmap, u >> sh, 1);
		skip = g - (u & (g - 1));
		if (skip > c->j1 - j)
			break;
		j += skip;
	}
}

/* Masks of the fold: bits [0, w) repeated every s bits. */
static uint64_t repeat_mask(unsigned int w, unsigned int s)
{
	uint64_t m = 0;

	for (unsigned int p = 0; p < 64; p += s)
		m |= ((1ull << w) - 1) << p;
	return m;
}

struct fold {
	unsigned int sh;
	uint64_t lsb;	  /* bit 0 of every group */
	uint64_t pack[6]; /* masks of the packing steps */
};

static void fold_init(struct fold *f, unsigned int sh)
{
	f->sh = sh;
	f->lsb = repeat_mask(1, 1u << sh);
	for (unsigned int s = 0; sh + s < 6; s++)
		f->pack[s] = repeat_mask(2u << s, 2u << (sh + s));
}

/*
 * ORs each group of 2^sh bits of @x into one bit and packs those bits into the
 * low 64 >> sh bits, group i at bit i: first OR each group down into its low
 * bit, then repeatedly merge neighbouring fields (width 2^s at spacing
 * 2^(sh+s)) into fields twice as wide at twice the spacing.
 */
static uint64_t fold_word(const struct fold *f, uint64_t x)
{
	for (unsigned int s = 0; s < f->sh; s++)
		x |= x >> (1u << s);
	x &= f->lsb;
	for (unsigned int s = 0; f->sh + s < 6; s++)
		x = (x | x >> ((1u << (f->sh + s)) - (1u << s))) & f->pack[s];
	return x;
}

/*
 * Run bits of the group-aligned stream positions [t, t + COMBINE_CHUNK_BITS)
 * into the report. Position p holds run bit j0 + p - phase, so groups start at
 * multiples of 2^sh.
 */
static void combine_chunk(struct uiommu_dirty_report *r, const struct clipped_run *c,
			  const struct fold *f, uint64_t t, uint64_t phase, uint64_t kbase)
{
	uint64_t in[COMBINE_CHUNK_WORDS] = {0}, out[COMBINE_CHUNK_WORDS] = {0};
	uint64_t end = phase + (c->j1 - c->j0) + 1, lo = u64_max(t, phase);
	uint64_t hi = u64_min(t + COMBINE_CHUNK_BITS, end), per_word = 64 >> f->sh;
	uint64_t nwords = (hi - t + 63) / 64;

	uiommu_bitmap_copy_bits(in, lo - t, c->run->bits, c->j0 + lo - phase, hi - lo);
	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t pos = w * per_word;

		out[pos / 64] |= fold_word(f, in[w]) << (pos % 64);
	}
	uiommu_bitmap_or_bits(r->bitmap, kbase + (t >> f->sh), out, 0, ((hi - t - 1) >> f->sh) + 1);
}

/*
 * Combine with groups of 2..32 run bits. Chunks with no set bit are skipped
 * by jumping to the chunk of the next set bit, so sparse runs cost a scan.
 */
static void combine_small(struct uiommu_dirty_report *r, const struct clipped_run *c,
			  unsigned int sh)
{
	uint64_t u0 = (run_bit_iova(c->run, c->j0) - r->iova) >> c->run->pgshift;
	uint64_t phase = u0 & ((1ull << sh) - 1), kbase = u0 >> sh;
	uint64_t nbits = c->j1 + 1, j = c->j0, t;
	struct fold f;

	fold_init(&f, sh);
	while ((j = uiommu_bitmap_find_next_set(c->run->bits, nbits, j)) !=
	       UIOMMU_BITMAP_NOT_FOUND) {
		t = (phase + (j - c->j0)) & ~(uint64_t)(COMBINE_CHUNK_BITS - 1);
		combine_chunk(r, c, &f, t, phase, kbase);
		/* The next chunk starts at stream position t + CHUNK_BITS. */
		if (t + COMBINE_CHUNK_BITS - phase > c->j1 - c->j0)
			break;
		j = c->j0 + t + COMBINE_CHUNK_BITS - phase;
	}
}

UIOMMU_EXPORT int uiommu_dirty_report_sink(void *report, const struct uiommu_dirty_run *run)
{
	struct uiommu_dirty_report *r = report;
	unsigned int rs = run->pgshift, ps = r->pgshift;
	struct clipped_run c;

	UIOMMU_BUG_ON(rs >= 64);
	if (!run_clip(r, run, &c))
		return 0;
	/* Off the report's 2^rs grid a run bit may straddle report bits. */
	if ((run->iova - r->iova) & ((1ull << rs) - 1))
		sink_ranges(r, &c);
	else if (rs == ps)
		uiommu_bitmap_or_bits(r->bitmap, first_report_bit(r, &c), run->bits, c.j0,
				      c.j1 - c.j0 + 1);
	else if (rs > ps)
		sink_ranges(r, &c);
	else if (ps - rs >= 6)
		combine_large(r, &c, ps - rs);
	else
		combine_small(r, &c, ps - rs);
	return 0;
}

/* NOLINTNEXTLINE(readability-function-size): 7 parameters, the ioctl's fields. */
UIOMMU_EXPORT int uiommu_domain_get_dirty_bitmap(struct uiommu_domain *domain, uint64_t iova,
						 uint64_t length, uint64_t page_size,
						 uint32_t flags, void *bitmap,
						 uint64_t bitmap_bytes)
{
	struct uiommu_dirty_report report;
	int rc;

	rc = uiommu_dirty_report_init(&report, iova, length, page_size, bitmap, bitmap_bytes);
	if (rc)
		return rc;
	return uiommu_domain_read_and_clear_dirty(domain, iova, length, flags,
						  uiommu_dirty_report_sink, &report);
}
