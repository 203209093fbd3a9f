// SPDX-License-Identifier: MIT
/*
 * The receiver's pages: the layout set up from the header, and PAGES
 * records (format: doc/stream-format.md, "PAGES").
 *
 * A PAGES record is taken in three steps. The batch header (16 bytes) is
 * checked against the record length: every later length derives from it.
 * The run descriptors are collected, the record check verified, and each run
 * checked (page-aligned, ascending, disjoint, inside one layout range, hence
 * inside guest memory) before anything is written; zero runs are applied at
 * once. Then the data: RAW copies record bytes into the data runs in order,
 * ZSTD streams them through the decompressor with the current run as its
 * output buffer, so decompression writes only into validated runs. Once all
 * runs are full, any further output goes to a small scratch buffer and is
 * an error (the frame is longer than the batch); a frame that ends before the
 * runs are full, or bytes after the frame, are errors too.
 *
 * Per-page state, indexed by layout page:
 *  - known_zero: the page is all zero and we know it (fresh memory, or we
 *    zeroed it). A zero run over a known-zero page writes nothing, so zero
 *    pages never fault fresh memory in; any data written clears the bit.
 *  - hashes (when the stream has a digest): XXH3 of what the page holds,
 *    updated as each page is completed, while it is still in cache. The
 *    invariant known_zero => hashes == zero_hash holds throughout.
 * At END the hashes are what the destination held at switchover, whatever
 * the resumed guest did since; stream_recv_records.c compares them.
 */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>

#include "migrate/migrate_internal.h"

#define SPILL_BYTES 64

/* ---- Layout ---- */

static void init_page(struct uiommu_stream_receiver *r, uint64_t idx, const uint8_t *page)
{
	bool zero = !r->cfg.not_zeroed || uiommu__page_is_zero(page, r->lay.page_size);

	if (zero)
		uiommu_bitmap_set(r->known_zero, idx);
	if (r->hashes)
		r->hashes[idx] = zero ? r->zero_hash : uiommu__hash(page, r->lay.page_size);
}

static void init_pages(struct uiommu_stream_receiver *r)
{
	uint64_t t0 = uiommu__now_ns();

	for (unsigned int i = 0; i < r->lay.nr; i++) {
		const struct ms_range *rg = &r->lay.r[i];

		for (uint64_t k = 0; k < rg->bytes >> r->lay.page_shift; k++)
			init_page(r, rg->first_index + k, r->mem + rg->gpa + (k << r->lay.page_shift));
	}
	r->st.hash_ns += uiommu__now_ns() - t0;
}

static int alloc_page_state(struct uiommu_stream_receiver *r)
{
	uint8_t *zero = uiommu__zalloc(r->lay.page_size);

	if (!zero)
		return -ENOMEM;
	r->zero_hash = uiommu__hash(zero, r->lay.page_size);
	uiommu__free(zero);
	r->known_zero = uiommu__calloc(uiommu_bitmap_words(r->lay.pages), sizeof(uint64_t));
	if (!r->known_zero)
		return -ENOMEM;
	if (r->caps & MS_CAP_DIGEST) {
		r->hashes = uiommu__calloc(r->lay.pages, sizeof(uint64_t));
		if (!r->hashes)
			return -ENOMEM;
	}
	if (r->caps & MS_CAP_ZSTD) {
		r->dctx = ZSTD_createDCtx();
		if (!r->dctx)
			return -ENOMEM;
		/* Bounds the decoder's memory whatever the frame header claims. */
		ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, MS_ZSTD_WINDOW_LOG_MAX);
	}
	return 0;
}

int recv_layout_setup(struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_range ranges[UIOMMU_STREAM_MAX_RANGES];
	struct uiommu_stream_event ev = { .type = UIOMMU_STREAM_EV_HEADER };

	if (alloc_page_state(r))
		return recv_fail(r, -ENOMEM, "header: no memory for the state of %llu pages",
				 (unsigned long long)r->lay.pages);
	init_pages(r);
	for (unsigned int i = 0; i < r->lay.nr; i++) {
		ranges[i].gpa = r->lay.r[i].gpa;
		ranges[i].bytes = r->lay.r[i].bytes;
	}
	ev.header.page_size = r->lay.page_size;
	ev.header.caps = r->caps;
	ev.header.nr_ranges = r->lay.nr;
	ev.header.ranges = ranges;
	r->phase = RP_STREAM;
	r->round_mark = r->offset;
	if (recv_event(r, &ev))
		return r->err.code;
	recv_next_record(r);
	return 0;
}

void recv_pages_fini(struct uiommu_stream_receiver *r)
{
	ZSTD_freeDCtx(r->dctx);
	uiommu__free(r->hashes);
	uiommu__free(r->known_zero);
}

/* ---- Batch header and runs ---- */

static uint64_t run_bytes(const struct uiommu_stream_receiver *r, const struct recv_run *run)
{
	return (uint64_t)run->count << r->lay.page_shift;
}

static int decode_run(struct uiommu_stream_receiver *r, unsigned int i, uint64_t *prev_end,
		      int *ri)
{
	uint64_t d = get_le64(r->meta + MS_BATCH_HDR + 8ull * i);
	struct recv_run *run = &r->runs[i];
	uint64_t end;

	run->gpa = d & MS_DESC_GPA_MASK;
	run->count = (uint32_t)((d >> MS_DESC_COUNT_SHIFT) & MS_DESC_COUNT_MASK) + 1;
	run->zero = d & MS_DESC_ZERO;
	if (run->gpa & (r->lay.page_size - 1))
		return recv_fail(r, -EBADMSG, "PAGES run %u: GPA 0x%llx not page-aligned", i,
				 (unsigned long long)run->gpa);
	if (i && run->gpa < *prev_end)
		return recv_fail(r, -EBADMSG, "PAGES run %u: GPA 0x%llx overlaps or descends", i,
				 (unsigned long long)run->gpa);
	*ri = ms_layout_find(&r->lay, run->gpa, *ri);
	if (*ri < 0 || uiommu_check_add_overflow(run->gpa, run_bytes(r, run), &end) ||
	    end > ms_range_end(&r->lay.r[*ri]))
		return recv_fail(r, -ERANGE, "PAGES run %u: 0x%llx + %u pages outside the layout",
				 i, (unsigned long long)run->gpa, run->count);
	run->index = ms_layout_index(&r->lay, *ri, run->gpa);
	*prev_end = end;
	return 0;
}

static int check_data_len(struct uiommu_stream_receiver *r, uint64_t data_pages)
{
	uint64_t data = data_pages << r->lay.page_shift;

	if (data > MS_BATCH_MAX_DATA)
		return recv_fail(r, -EMSGSIZE, "PAGES: %llu data bytes over the batch limit",
				 (unsigned long long)data);
	if (!(r->rec_flags & MS_PAGES_ZSTD)) {
		if (r->data_left == data)
			return 0;
		return recv_fail(r, -EBADMSG, "PAGES: %llu data bytes for %llu data pages",
				 (unsigned long long)r->data_left, (unsigned long long)data_pages);
	}
	if (data && r->data_left && r->data_left <= ZSTD_COMPRESSBOUND(data))
		return 0;
	return recv_fail(r, -EBADMSG, "PAGES: compressed length %llu for %llu data pages",
			 (unsigned long long)r->data_left, (unsigned long long)data_pages);
}

static int decode_runs(struct uiommu_stream_receiver *r)
{
	uint64_t prev_end = 0, pages = 0, data_pages = 0;
	int ri = 0;

	for (unsigned int i = 0; i < r->nr_runs; i++) {
		if (decode_run(r, i, &prev_end, &ri))
			return r->err.code;
		pages += r->runs[i].count;
		if (!r->runs[i].zero)
			data_pages += r->runs[i].count;
	}
	if (pages != get_le32(r->meta + 4))
		return recv_fail(r, -EBADMSG, "PAGES: nr_pages %u but the runs hold %llu",
				 get_le32(r->meta + 4), (unsigned long long)pages);
	r->batch_data_pages = data_pages;
	return check_data_len(r, data_pages);
}

static void apply_zero_run(struct uiommu_stream_receiver *r, const struct recv_run *run)
{
	uint64_t end = run->index + run->count, p = run->index, written = 0;

	while ((p = uiommu_bitmap_find_next_zero(r->known_zero, end, p)) < end) {
		memset(r->mem + run->gpa + ((p - run->index) << r->lay.page_shift), 0,
		       r->lay.page_size);
		uiommu_bitmap_set(r->known_zero, p);
		if (r->hashes)
			r->hashes[p] = r->zero_hash;
		written++;
		p++;
	}
	r->st.zero_pages_skipped += run->count - written;
	r->st.zero_pages += run->count;
	r->round_zero += run->count;
	r->total_zero += run->count;
}

static void next_data_run(struct uiommu_stream_receiver *r)
{
	while (r->cur < r->nr_runs && r->runs[r->cur].zero)
		r->cur++;
	r->cur_off = 0;
}

static void batch_done(struct uiommu_stream_receiver *r)
{
	r->round_data += r->batch_data_pages;
	r->total_data += r->batch_data_pages;
	r->st.data_pages += r->batch_data_pages;
	r->st.batches++;
	if (r->rec_flags & MS_PAGES_ZSTD) {
		r->st.compressed_batches++;
		r->st.compress_in += r->batch_data_pages << r->lay.page_shift;
		r->st.compress_out += r->rec_len - MS_BATCH_HDR - 8ull * r->nr_runs;
	}
	recv_next_record(r);
}

static int runs_full(struct uiommu_stream_receiver *r)
{
	if (recv_check_record(r, r->meta, MS_BATCH_HDR + 8ull * r->nr_runs) || decode_runs(r))
		return r->err.code;
	for (unsigned int i = 0; i < r->nr_runs; i++) {
		if (r->runs[i].zero)
			apply_zero_run(r, &r->runs[i]);
	}
	r->cur = 0;
	next_data_run(r);
	if (!r->batch_data_pages) {
		batch_done(r);
	} else if (r->rec_flags & MS_PAGES_ZSTD) {
		ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
		r->mode = RM_ZSTD;
	} else {
		r->mode = RM_RAW;
	}
	return 0;
}

static int batch_hdr_full(struct uiommu_stream_receiver *r)
{
	uint32_t nr_runs = get_le32(r->meta), nr_pages = get_le32(r->meta + 4);
	uint64_t data_len = get_le64(r->meta + 8), meta_len;

	if (!nr_runs || nr_runs > MS_MAX_RUNS || !nr_pages)
		return recv_fail(r, -EBADMSG, "PAGES: %u runs, %u pages", nr_runs, nr_pages);
	if ((r->rec_flags & MS_PAGES_ZSTD) && !(r->caps & MS_CAP_ZSTD))
		return recv_fail(r, -EOPNOTSUPP, "PAGES: compressed, but zstd was not announced");
	meta_len = MS_BATCH_HDR + 8ull * nr_runs;
	if (r->rec_len < meta_len || r->rec_len - meta_len != data_len)
		return recv_fail(r, -EBADMSG, "PAGES: %u runs and %llu data bytes in %llu bytes",
				 nr_runs, (unsigned long long)data_len,
				 (unsigned long long)r->rec_len);
	r->nr_runs = nr_runs;
	r->data_left = data_len;
	recv_want(r, r->meta + MS_BATCH_HDR, 8ull * nr_runs, runs_full);
	return 0;
}

int recv_pages_begin(struct uiommu_stream_receiver *r)
{
	recv_want(r, r->meta, MS_BATCH_HDR, batch_hdr_full);
	return 0;
}

/* ---- Page data ---- */

/* @n bytes were written at the current position of the current run. */
static void pages_advance(struct uiommu_stream_receiver *r, uint64_t n)
{
	const struct recv_run *run = &r->runs[r->cur];
	uint64_t from = r->cur_off >> r->lay.page_shift, to;

	r->cur_off += n;
	to = r->cur_off >> r->lay.page_shift;
	for (uint64_t p = from; p < to; p++) {
		uiommu_bitmap_clear(r->known_zero, run->index + p);
		if (r->hashes)
			r->hashes[run->index + p] = uiommu__hash(
				r->mem + run->gpa + (p << r->lay.page_shift), r->lay.page_size);
	}
	if (r->cur_off == run_bytes(r, run)) {
		r->cur++;
		next_data_run(r);
	}
}

void recv_raw_advance(struct uiommu_stream_receiver *r, size_t n)
{
	r->offset += n;
	r->data_left -= n;
	pages_advance(r, n);
	if (!r->data_left)
		batch_done(r);
}

size_t recv_raw_consume(struct uiommu_stream_receiver *r, const uint8_t *p, size_t len)
{
	const struct recv_run *run = &r->runs[r->cur];
	size_t n = (size_t)u64_min(len, run_bytes(r, run) - r->cur_off);

	memcpy(r->mem + run->gpa + r->cur_off, p, n);
	recv_raw_advance(r, n);
	return n;
}

/* The frame ended: it must have filled the runs and the record exactly. */
static void zstd_frame_end(struct uiommu_stream_receiver *r)
{
	if (r->cur < r->nr_runs)
		recv_fail(r, -EBADMSG, "PAGES: zstd frame shorter than the batch's data pages");
	else if (r->data_left)
		recv_fail(r, -EBADMSG, "PAGES: %llu bytes after the zstd frame",
			  (unsigned long long)r->data_left);
	else
		batch_done(r);
}

/* The output buffer of the next step: the current run, or the spill once all are full. */
static ZSTD_outBuffer zstd_out(struct uiommu_stream_receiver *r, uint8_t *spill)
{
	const struct recv_run *run;

	if (r->cur >= r->nr_runs)
		return (ZSTD_outBuffer){ spill, SPILL_BYTES, 0 };
	run = &r->runs[r->cur];
	return (ZSTD_outBuffer){ r->mem + run->gpa + r->cur_off,
				 (size_t)(run_bytes(r, run) - r->cur_off), 0 };
}

/* One decompression step: true to step again, false when it needs input, ended or failed. */
static bool zstd_step(struct uiommu_stream_receiver *r, ZSTD_inBuffer *in, bool *frame_end)
{
	uint8_t spill[SPILL_BYTES];
	bool full = r->cur >= r->nr_runs;
	ZSTD_outBuffer out = zstd_out(r, spill);
	size_t before = in->pos, ret;

	ret = ZSTD_decompressStream(r->dctx, &out, in);
	if (ZSTD_isError(ret)) {
		recv_fail(r, -EBADMSG, "PAGES: zstd: %s", ZSTD_getErrorName(ret));
		return false;
	}
	if (full && out.pos) {
		recv_fail(r, -EBADMSG, "PAGES: zstd frame longer than the batch");
		return false;
	}
	if (out.pos)
		pages_advance(r, out.pos);
	*frame_end = !ret;
	if (*frame_end)
		return false;
	/* A full output buffer: go on with the next run (or the spill check). */
	if (!full && out.pos == out.size)
		return true;
	if (in->pos == in->size)
		return false;
	if (in->pos == before && !out.pos) {
		recv_fail(r, -EBADMSG, "PAGES: zstd made no progress");
		return false;
	}
	return true;
}

size_t recv_zstd_consume(struct uiommu_stream_receiver *r, const uint8_t *p, size_t len)
{
	ZSTD_inBuffer in = { p, (size_t)u64_min(len, r->data_left), 0 };
	bool frame_end = false;

	while (zstd_step(r, &in, &frame_end))
		;
	r->offset += in.pos;
	r->data_left -= in.pos;
	if (r->mode == RM_FAILED)
		return in.pos;
	if (frame_end)
		zstd_frame_end(r);
	else if (!r->data_left)
		recv_fail(r, -EBADMSG, "PAGES: zstd frame truncated by the end of the record");
	return in.pos;
}
