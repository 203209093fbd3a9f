// SPDX-License-Identifier: MIT
/*
 * The stream's sender (format: doc/stream-format.md).
 *
 * States: NEW --header--> STREAMING --switchover--> SWITCHED --end--> ENDED.
 * Pages, rounds, devices and vCPUs go in STREAMING; a call out of order is
 * -EPROTO and sends nothing. A transport error breaks the sender: the error
 * is kept and returned by every later call (the stream on the wire stops at
 * an unknown point, so nothing more may follow it).
 *
 * Page batches. send_pages() walks the runs of set bits of the caller's
 * bitmap, tests each page for zero and appends it to the batch being built:
 * a run descriptor grows while pages are GPA-contiguous and of the same kind
 * (zero or data), and each data run is one iovec pointing into guest memory.
 * A batch is flushed when it holds MS_MAX_RUNS runs or MS_BATCH_MAX_DATA bytes
 * of data, and at the end of every call, so that what the caller asked for is
 * on the transport when the call returns. A flush is one writev: record
 * header, batch header and descriptors from one buffer, then the data runs
 * straight from guest memory (the kernel makes the only copy).
 *
 * Compression (zstd_level != 0): the data runs of a batch are fed to one
 * zstd frame with the pledged size, into an output buffer 3 % smaller than
 * the data; if the frame does not fit, the batch goes uncompressed. zstd
 * spends about 1 ns per byte on incompressible pages here, four times what
 * the socket costs, so a batch that did not compress makes the next 1, 2,
 * 4 ... 32 batches skip the attempt; one that compresses resets the backoff.
 * Incompressible memory thus costs at most 1/33 of the zstd time, and
 * compressible memory after incompressible memory is found again within 32
 * batches.
 *
 * Verification: send_end() hashes every layout page of the source's memory
 * (which the caller keeps unchanged since switchover; pages the caller
 * knows are zero, such as holes of a memfd, get the zero page's hash
 * without being read) in chunks of
 * MS_MAX_HASHES, sends each chunk as a HASHES record (when page hashes are
 * on) and folds it into the digest that the END record carries.
 */
#include <errno.h>
#include <stdlib.h>

#include <zstd.h>

#include "migrate/migrate_internal.h"

#define COMPRESS_BACKOFF_MAX 32

enum send_state { SEND_NEW, SEND_STREAMING, SEND_SWITCHED, SEND_ENDED };

struct uiommu_stream_sender {
	struct uiommu_xport *x;
	const uint8_t *mem;
	uint64_t mem_bytes;
	struct ms_layout lay;
	uint32_t caps;
	enum send_state state;
	int error; /* sticky transport error */
	bool any_round, vcpus_sent;
	uint32_t last_round;
	struct ms_hasher rec_hash, digest;
	/* zstd */
	ZSTD_CCtx *cctx;
	uint8_t *cbuf;
	unsigned int backoff, skip;
	/* The batch being built: meta = batch header + descriptors. */
	uint8_t *meta;
	unsigned int nr_runs;
	uint64_t batch_pages, batch_data_pages;
	bool run_open, run_zero;
	uint64_t run_gpa, run_count;
	struct iovec *iov; /* [0] record header, [1] meta, [2..] data runs */
	unsigned int nr_data_iov;
	/* Counters the ROUND and SWITCHOVER records carry. */
	uint64_t round_data, round_zero, round_bytes;
	uint64_t total_data, total_zero;
	uint8_t *hash_buf; /* one HASHES payload */
	uint64_t zero_hash; /* of a zero page */
	const uint64_t *zero_hint; /* send_end_known_zero's pages, during the call */
	struct uiommu_stream_stats st;
};

/* ---- Writing records ---- */

static int send_raw(struct uiommu_stream_sender *s, const struct iovec *iov, int cnt)
{
	uint64_t bytes = 0;
	int rc;

	for (int i = 0; i < cnt; i++)
		bytes += iov[i].iov_len;
	rc = uiommu_xport_writev(s->x, iov, cnt);
	if (rc) {
		s->error = rc;
		return rc;
	}
	s->st.bytes += bytes;
	s->round_bytes += bytes;
	return 0;
}

/*
 * Sends a record whose payload is iov[1..n]; iov[0] is filled with the record
 * header. The check covers the header and the first @checked payload pieces.
 */
static int send_record(struct uiommu_stream_sender *s, uint32_t type, uint32_t flags,
		       struct iovec *iov, int n, int checked)
{
	uint8_t hdr[MS_REC_HDR];
	uint64_t len = 0;

	for (int i = 1; i <= n; i++)
		len += iov[i].iov_len;
	put_le32(hdr, type);
	put_le32(hdr + 4, flags);
	put_le64(hdr + 8, len);
	ms_hasher_reset(&s->rec_hash);
	ms_hasher_update(&s->rec_hash, hdr, MS_REC_CHECKED);
	for (int i = 1; i <= checked; i++)
		ms_hasher_update(&s->rec_hash, iov[i].iov_base, iov[i].iov_len);
	put_le64(hdr + 16, ms_hasher_digest(&s->rec_hash));
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(hdr);
	return send_raw(s, iov, n + 1);
}

static int send_small(struct uiommu_stream_sender *s, uint32_t type, const void *payload,
		      size_t len)
{
	struct iovec iov[2] = { [1] = { .iov_base = (void *)(uintptr_t)payload, .iov_len = len } };

	return send_record(s, type, 0, iov, 1, 1);
}

static int check_state(const struct uiommu_stream_sender *s, enum send_state want)
{
	if (s->error)
		return s->error;
	return s->state == want ? 0 : -EPROTO;
}

/* ---- Batches ---- */

static uint64_t batch_data_bytes(const struct uiommu_stream_sender *s)
{
	return s->batch_data_pages << s->lay.page_shift;
}

static void close_run(struct uiommu_stream_sender *s)
{
	if (!s->run_open)
		return;
	put_le64(s->meta + MS_BATCH_HDR + 8 * s->nr_runs,
		 ms_desc_encode(s->run_gpa, s->run_count, s->run_zero));
	s->nr_runs++;
	if (!s->run_zero) {
		struct iovec *v = &s->iov[2 + s->nr_data_iov++];

		v->iov_base = (void *)(uintptr_t)(s->mem + s->run_gpa);
		v->iov_len = s->run_count << s->lay.page_shift;
	}
	s->run_open = false;
}

/* Feeds the data runs to one zstd frame; its size, or 0 if it does not pay. */
static size_t compress_batch(struct uiommu_stream_sender *s, size_t data_bytes)
{
	ZSTD_outBuffer out = { s->cbuf, data_bytes - data_bytes / 32, 0 };
	ZSTD_inBuffer none = { NULL, 0, 0 };
	size_t r;

	ZSTD_CCtx_reset(s->cctx, ZSTD_reset_session_only);
	ZSTD_CCtx_setPledgedSrcSize(s->cctx, data_bytes);
	for (unsigned int i = 0; i < s->nr_data_iov; i++) {
		ZSTD_inBuffer in = { s->iov[2 + i].iov_base, s->iov[2 + i].iov_len, 0 };

		while (in.pos < in.size) {
			size_t before = in.pos;

			r = ZSTD_compressStream2(s->cctx, &out, &in, ZSTD_e_continue);
			if (ZSTD_isError(r) || (in.pos == before && out.pos == out.size))
				return 0;
		}
	}
	do {
		r = ZSTD_compressStream2(s->cctx, &out, &none, ZSTD_e_end);
		if (ZSTD_isError(r) || (r && out.pos == out.size))
			return 0;
	} while (r);
	return out.pos;
}

/* Decides whether this batch is compressed (with backoff, see the top). */
static size_t maybe_compress(struct uiommu_stream_sender *s)
{
	size_t data = batch_data_bytes(s), csize;

	if (!s->cctx || !data)
		return 0;
	if (s->skip) {
		s->skip--;
		return 0;
	}
	csize = compress_batch(s, data);
	if (!csize) {
		s->backoff = s->backoff ? (unsigned int)u64_min(2ull * s->backoff,
								COMPRESS_BACKOFF_MAX) : 1;
		s->skip = s->backoff;
		return 0;
	}
	s->backoff = 0;
	s->st.compressed_batches++;
	s->st.compress_in += data;
	s->st.compress_out += csize;
	return csize;
}

static void batch_reset(struct uiommu_stream_sender *s)
{
	s->nr_runs = 0;
	s->nr_data_iov = 0;
	s->batch_pages = 0;
	s->batch_data_pages = 0;
}

static int batch_flush(struct uiommu_stream_sender *s)
{
	uint64_t zero_pages;
	size_t csize;
	int rc, n;

	close_run(s);
	if (!s->nr_runs)
		return 0;
	csize = maybe_compress(s);
	put_le32(s->meta, s->nr_runs);
	put_le32(s->meta + 4, (uint32_t)s->batch_pages);
	put_le64(s->meta + 8, csize ? csize : batch_data_bytes(s));
	s->iov[1].iov_base = s->meta;
	s->iov[1].iov_len = MS_BATCH_HDR + 8ull * s->nr_runs;
	n = 1 + (int)s->nr_data_iov;
	if (csize) {
		s->iov[2].iov_base = s->cbuf;
		s->iov[2].iov_len = csize;
		n = 2;
	}
	rc = send_record(s, MS_REC_PAGES, csize ? MS_PAGES_ZSTD : 0, s->iov, n, 1);
	if (rc)
		return rc;
	zero_pages = s->batch_pages - s->batch_data_pages;
	s->round_data += s->batch_data_pages;
	s->round_zero += zero_pages;
	s->total_data += s->batch_data_pages;
	s->total_zero += zero_pages;
	s->st.data_pages += s->batch_data_pages;
	s->st.zero_pages += zero_pages;
	s->st.batches++;
	batch_reset(s);
	return 0;
}

static bool run_extends(const struct uiommu_stream_sender *s, uint64_t gpa, bool zero)
{
	return s->run_open && zero == s->run_zero && s->run_count < MS_RUN_MAX_PAGES &&
	       gpa == s->run_gpa + (s->run_count << s->lay.page_shift);
}

static int batch_add(struct uiommu_stream_sender *s, uint64_t gpa, bool zero)
{
	int rc;

	if (!zero && batch_data_bytes(s) + s->lay.page_size > MS_BATCH_MAX_DATA) {
		rc = batch_flush(s);
		if (rc)
			return rc;
	}
	if (!run_extends(s, gpa, zero)) {
		close_run(s);
		if (s->nr_runs == MS_MAX_RUNS) {
			rc = batch_flush(s);
			if (rc)
				return rc;
		}
		s->run_open = true;
		s->run_zero = zero;
		s->run_gpa = gpa;
		s->run_count = 0;
	}
	s->run_count++;
	s->batch_pages++;
	s->batch_data_pages += !zero;
	return 0;
}

/* Pages [pfn, end) in the layout, already checked. */
static int add_pages(struct uiommu_stream_sender *s, uint64_t pfn, uint64_t end)
{
	size_t ps = s->lay.page_size;
	int rc;

	for (; pfn < end; pfn++) {
		uint64_t gpa = pfn << s->lay.page_shift;

		rc = batch_add(s, gpa, uiommu__page_is_zero(s->mem + gpa, ps));
		if (rc)
			return rc;
	}
	return 0;
}

/* Is every page of [pfn, end) in the layout? */
static bool in_layout(const struct uiommu_stream_sender *s, uint64_t pfn, uint64_t end)
{
	uint64_t mem_pages = s->mem_bytes >> s->lay.page_shift;
	int ri = 0;

	if (end > mem_pages || pfn >= end)
		return false;
	while (pfn < end) {
		ri = ms_layout_find(&s->lay, pfn << s->lay.page_shift, ri);
		if (ri < 0)
			return false;
		pfn = ms_range_end(&s->lay.r[ri]) >> s->lay.page_shift;
	}
	return true;
}

typedef int (*run_fn)(struct uiommu_stream_sender *s, uint64_t pfn, uint64_t end);

static int check_run(struct uiommu_stream_sender *s, uint64_t pfn, uint64_t end)
{
	return in_layout(s, pfn, end) ? 0 : -ERANGE;
}

static int for_each_run(struct uiommu_stream_sender *s, const uint64_t *bitmap, uint64_t first,
			uint64_t end, run_fn fn)
{
	uint64_t p = uiommu_bitmap_find_next_set(bitmap, end, first), q;
	int rc;

	while (p < end) {
		q = uiommu_bitmap_find_next_zero(bitmap, end, p);
		if (q > end)
			q = end;
		rc = fn(s, p, q);
		if (rc)
			return rc;
		p = q < end ? uiommu_bitmap_find_next_set(bitmap, end, q) : end;
	}
	return 0;
}

UIOMMU_EXPORT int uiommu_stream_send_pages(struct uiommu_stream_sender *s, const uint64_t *bitmap,
					   uint64_t first, uint64_t count)
{
	uint64_t end;
	int rc = check_state(s, SEND_STREAMING);

	if (rc)
		return rc;
	if (uiommu_check_add_overflow(first, count, &end) || !bitmap)
		return -EINVAL;
	rc = for_each_run(s, bitmap, first, end, check_run);
	if (!rc)
		rc = for_each_run(s, bitmap, first, end, add_pages);
	if (!rc)
		rc = batch_flush(s);
	return rc;
}

UIOMMU_EXPORT int uiommu_stream_send_range(struct uiommu_stream_sender *s, uint64_t gpa,
					   uint64_t bytes)
{
	uint64_t mask = s->lay.page_size - 1, end;
	int rc = check_state(s, SEND_STREAMING);

	if (rc)
		return rc;
	if ((gpa | bytes) & mask || !bytes || uiommu_check_add_overflow(gpa, bytes, &end))
		return -EINVAL;
	if (!in_layout(s, gpa >> s->lay.page_shift, end >> s->lay.page_shift))
		return -ERANGE;
	rc = add_pages(s, gpa >> s->lay.page_shift, end >> s->lay.page_shift);
	if (!rc)
		rc = batch_flush(s);
	return rc;
}

/* ---- Header and the small records ---- */

UIOMMU_EXPORT int uiommu_stream_send_header(struct uiommu_stream_sender *s)
{
	uint8_t buf[MS_HDR_MAX];
	size_t len = MS_HDR_FIXED + MS_RANGE_LEN * s->lay.nr;
	int rc = check_state(s, SEND_NEW);

	if (rc)
		return rc;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, MS_MAGIC, MS_MAGIC_LEN);
	put_le32(buf + 8, MS_VERSION);
	put_le32(buf + 16, s->caps);
	put_le32(buf + 20, s->lay.page_size);
	put_le32(buf + 24, s->lay.nr);
	for (unsigned int i = 0; i < s->lay.nr; i++) {
		put_le64(buf + MS_HDR_FIXED + MS_RANGE_LEN * i, s->lay.r[i].gpa);
		put_le64(buf + MS_HDR_FIXED + MS_RANGE_LEN * i + 8, s->lay.r[i].bytes);
	}
	put_le64(buf + len, uiommu__hash(buf, len));
	rc = send_raw(s, &(struct iovec){ .iov_base = buf, .iov_len = len + 8 }, 1);
	if (rc)
		return rc;
	s->round_bytes = 0;
	s->state = SEND_STREAMING;
	return 0;
}

UIOMMU_EXPORT int uiommu_stream_send_round(struct uiommu_stream_sender *s, uint32_t round,
					   uint64_t duration_ns, uint64_t remaining_pages)
{
	uint8_t p[MS_ROUND_LEN] = { 0 };
	int rc = check_state(s, SEND_STREAMING);

	if (rc)
		return rc;
	if (s->any_round && round <= s->last_round)
		return -EINVAL;
	put_le32(p, round);
	put_le64(p + 8, s->round_data);
	put_le64(p + 16, s->round_zero);
	put_le64(p + 24, s->round_bytes);
	put_le64(p + 32, duration_ns);
	put_le64(p + 40, remaining_pages);
	rc = send_small(s, MS_REC_ROUND, p, sizeof(p));
	if (rc)
		return rc;
	s->any_round = true;
	s->last_round = round;
	s->round_data = s->round_zero = s->round_bytes = 0;
	s->st.rounds++;
	return 0;
}

static bool name_ok(const char *name, size_t *len)
{
	size_t n = name ? strnlen(name, UIOMMU_STREAM_NAME_MAX + 1) : 0;

	if (!n || n > UIOMMU_STREAM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (name[i] <= ' ' || name[i] > '~')
			return false;
	}
	*len = n;
	return true;
}

UIOMMU_EXPORT int uiommu_stream_send_device(struct uiommu_stream_sender *s, uint32_t id,
					    const char *name, const void *blob, uint64_t len)
{
	uint8_t prefix[MS_DEVICE_PREFIX + UIOMMU_STREAM_NAME_MAX];
	struct iovec iov[3];
	size_t nlen;
	int rc = check_state(s, SEND_STREAMING);

	if (rc)
		return rc;
	if (!name_ok(name, &nlen) || (len && !blob) || len > MS_BLOB_MAX)
		return -EINVAL;
	put_le32(prefix, id);
	put_le32(prefix + 4, (uint32_t)nlen);
	memcpy(prefix + MS_DEVICE_PREFIX, name, nlen);
	iov[1] = (struct iovec){ .iov_base = prefix, .iov_len = MS_DEVICE_PREFIX + nlen };
	iov[2] = (struct iovec){ .iov_base = (void *)(uintptr_t)blob, .iov_len = (size_t)len };
	return send_record(s, MS_REC_DEVICE, 0, iov, 2, 2);
}

UIOMMU_EXPORT int uiommu_stream_send_vcpus(struct uiommu_stream_sender *s, const void *blob,
					   uint64_t len)
{
	int rc = check_state(s, SEND_STREAMING);

	if (rc)
		return rc;
	if (s->vcpus_sent)
		return -EPROTO;
	if ((len && !blob) || len > MS_BLOB_MAX)
		return -EINVAL;
	rc = send_small(s, MS_REC_VCPUS, blob, (size_t)len);
	if (!rc)
		s->vcpus_sent = true;
	return rc;
}

UIOMMU_EXPORT int uiommu_stream_send_switchover(struct uiommu_stream_sender *s)
{
	uint8_t p[MS_SWITCHOVER_LEN];
	int rc = check_state(s, SEND_STREAMING);

	if (rc)
		return rc;
	put_le64(p, s->total_data);
	put_le64(p + 8, s->total_zero);
	rc = send_small(s, MS_REC_SWITCHOVER, p, sizeof(p));
	if (!rc)
		s->state = SEND_SWITCHED;
	return rc;
}

/* ---- Verification and end ---- */

/* Is the page at @gpa one the caller said is zero (send_end_known_zero)? */
static bool known_zero(const struct uiommu_stream_sender *s, uint64_t gpa)
{
	uint64_t pfn = gpa >> s->lay.page_shift;

	return s->zero_hint && (s->zero_hint[pfn / 64] >> (pfn % 64)) & 1;
}

/* Hashes the @n pages from @gpa into hash_buf's payload and the digest. */
static void hash_chunk(struct uiommu_stream_sender *s, uint64_t gpa, uint32_t n)
{
	uint8_t *out = s->hash_buf + MS_HASHES_HDR;

	for (uint32_t i = 0; i < n; i++, gpa += s->lay.page_size) {
		uint64_t h = known_zero(s, gpa) ? s->zero_hash
						: uiommu__hash(s->mem + gpa, s->lay.page_size);

		put_le64(out + 8 * i, h);
	}
	ms_hasher_update(&s->digest, out, 8ull * n);
}

static int send_range_hashes(struct uiommu_stream_sender *s, const struct ms_range *r)
{
	uint64_t gpa = r->gpa, idx = r->first_index;
	int rc;

	while (gpa < ms_range_end(r)) {
		uint32_t n = (uint32_t)u64_min(MS_MAX_HASHES, (ms_range_end(r) - gpa) >>
							      s->lay.page_shift);

		hash_chunk(s, gpa, n);
		if (s->caps & MS_CAP_PAGE_HASHES) {
			put_le64(s->hash_buf, idx);
			put_le32(s->hash_buf + 8, n);
			put_le32(s->hash_buf + 12, 0);
			rc = send_small(s, MS_REC_HASHES, s->hash_buf, MS_HASHES_HDR + 8ull * n);
			if (rc)
				return rc;
		}
		gpa += (uint64_t)n << s->lay.page_shift;
		idx += n;
	}
	return 0;
}

UIOMMU_EXPORT int uiommu_stream_send_end(struct uiommu_stream_sender *s)
{
	return uiommu_stream_send_end_known_zero(s, NULL);
}

UIOMMU_EXPORT int uiommu_stream_send_end_known_zero(struct uiommu_stream_sender *s,
						    const uint64_t *zero)
{
	uint8_t p[MS_END_LEN] = { 0 };
	uint64_t t0 = uiommu__now_ns(), digest = 0;
	int rc = check_state(s, SEND_SWITCHED);

	if (rc)
		return rc;
	s->zero_hint = zero;
	if (s->caps & MS_CAP_DIGEST) {
		ms_hasher_reset(&s->digest);
		for (unsigned int i = 0; i < s->lay.nr && !rc; i++)
			rc = send_range_hashes(s, &s->lay.r[i]);
		if (rc)
			return rc;
		digest = ms_hasher_digest(&s->digest);
		s->st.hash_ns += uiommu__now_ns() - t0;
	}
	s->zero_hint = NULL;
	put_le64(p + 8, s->lay.pages);
	put_le64(p + 16, digest);
	put_le64(p + 24, s->st.bytes);
	rc = send_small(s, MS_REC_END, p, sizeof(p));
	if (!rc)
		s->state = SEND_ENDED;
	return rc;
}

UIOMMU_EXPORT void uiommu_stream_sender_get_stats(const struct uiommu_stream_sender *s,
						  struct uiommu_stream_stats *st)
{
	*st = s->st;
}

/* ---- Creation ---- */

static int check_cfg(const struct uiommu_stream_send_cfg *cfg, struct ms_layout *lay)
{
	struct uiommu_stream_range whole = { 0, cfg->mem_bytes };
	char why[MS_WHY_MAX];

	if (!cfg->xport || !cfg->mem || !cfg->mem_bytes || cfg->verify > UIOMMU_STREAM_VERIFY_NONE)
		return -EINVAL;
	if (cfg->zstd_level && (cfg->zstd_level < ZSTD_minCLevel() ||
				cfg->zstd_level > ZSTD_maxCLevel()))
		return -EINVAL;
	if (!cfg->ranges != !cfg->nr_ranges)
		return -EINVAL;
	return ms_layout_init(lay, cfg->page_size ? cfg->page_size : MS_PAGE_MIN,
			      cfg->ranges ? cfg->ranges : &whole,
			      cfg->ranges ? cfg->nr_ranges : 1, cfg->mem_bytes, why)
		       ? -EINVAL
		       : 0;
}

static uint32_t caps_of(const struct uiommu_stream_send_cfg *cfg)
{
	uint32_t caps = cfg->zstd_level ? MS_CAP_ZSTD : 0;

	if (cfg->verify == UIOMMU_STREAM_VERIFY_PAGES)
		caps |= MS_CAP_DIGEST | MS_CAP_PAGE_HASHES;
	else if (cfg->verify == UIOMMU_STREAM_VERIFY_DIGEST)
		caps |= MS_CAP_DIGEST;
	return caps;
}

static int setup_zstd(struct uiommu_stream_sender *s, int level)
{
	s->cctx = ZSTD_createCCtx();
	s->cbuf = uiommu__zalloc(MS_BATCH_MAX_DATA);
	if (!s->cctx || !s->cbuf)
		return -ENOMEM;
	/* Verification covers content, so the frame needs no checksum of its own. */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_windowLog,
						 MS_ZSTD_WINDOW_LOG_MAX - 1)))
		return -EINVAL;
	return 0;
}

static int sender_alloc(struct uiommu_stream_sender *s, int zstd_level)
{
	s->meta = uiommu__zalloc(MS_BATCH_HDR + 8ull * MS_MAX_RUNS);
	s->iov = uiommu__calloc(MS_MAX_RUNS + 2, sizeof(*s->iov));
	s->hash_buf = uiommu__zalloc(MS_HASHES_HDR + 8ull * MS_MAX_HASHES);
	if (!s->meta || !s->iov || !s->hash_buf)
		return -ENOMEM;
	if (ms_hasher_init(&s->rec_hash) || ms_hasher_init(&s->digest))
		return -ENOMEM;
	return zstd_level ? setup_zstd(s, zstd_level) : 0;
}

UIOMMU_EXPORT int uiommu_stream_sender_create(const struct uiommu_stream_send_cfg *cfg,
					      struct uiommu_stream_sender **out)
{
	struct uiommu_stream_sender *s;
	int rc;

	s = uiommu__zalloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	rc = check_cfg(cfg, &s->lay);
	if (!rc)
		rc = sender_alloc(s, cfg->zstd_level);
	if (rc) {
		uiommu_stream_sender_destroy(s);
		return rc;
	}
	/* hash_buf is zero and longer than the largest page: hash a zero page from it. */
	s->zero_hash = uiommu__hash(s->hash_buf, s->lay.page_size);
	s->x = cfg->xport;
	s->mem = cfg->mem;
	s->mem_bytes = cfg->mem_bytes;
	s->caps = caps_of(cfg);
	*out = s;
	return 0;
}

UIOMMU_EXPORT void uiommu_stream_sender_destroy(struct uiommu_stream_sender *s)
{
	if (!s)
		return;
	ZSTD_freeCCtx(s->cctx);
	uiommu__free(s->cbuf);
	uiommu__free(s->meta);
	uiommu__free(s->iov);
	uiommu__free(s->hash_buf);
	ms_hasher_fini(&s->rec_hash);
	ms_hasher_fini(&s->digest);
	uiommu__free(s);
}
