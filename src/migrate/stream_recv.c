// SPDX-License-Identifier: MIT
/*
 * The stream's receiver: a bounded push parser (format:
 * doc/stream-format.md).
 *
 * Input arrives in any split (feed) or straight into the parser's buffers
 * (direct + commit). The parser is a loop over modes:
 *  - COLLECT: gather exactly want_len bytes into want (the header, a record
 *    header, a batch's runs, a small record, a blob), then call on_full;
 *  - RAW: copy page data into the current run of guest memory;
 *  - ZSTD: pass record bytes to the decompressor, whose output lands in the
 *    runs (stream_recv_pages.c);
 *  - DONE after the END record, FAILED after any error.
 * No byte is interpreted before the bytes it depends on were validated:
 * every length is checked against its limit before it sizes a collection
 * (so no buffer is ever over-filled and no allocation is unbounded), every
 * record's check is verified before its content is acted on, and every run
 * is checked against the layout (which lies inside guest memory) before page
 * data is written. The only writes outside the parser's own buffers are page
 * data and zero fills of validated runs.
 *
 * Phases order the records: the header first; PAGES, ROUND, DEVICE and
 * VCPUS until SWITCHOVER; then HASHES (when the stream has page hashes) and
 * END; nothing after END.
 *
 * Errors are sticky: the first one is kept (code, stream offset of the
 * record at fault, message) and returned by every later call.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <zstd.h>

#include "migrate/migrate_internal.h"

#define DEFAULT_MAX_BLOB (64ull << 20)
#define DEFAULT_MAX_DEVICES 64

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static const char *const rec_names[] = {
	[MS_REC_PAGES] = "PAGES",	    [MS_REC_ROUND] = "ROUND",
	[MS_REC_DEVICE] = "DEVICE",	    [MS_REC_VCPUS] = "VCPUS",
	[MS_REC_SWITCHOVER] = "SWITCHOVER", [MS_REC_HASHES] = "HASHES",
	[MS_REC_END] = "END",
};

static const char *rec_name(uint32_t type)
{
	return type && type < ARRAY_SIZE(rec_names) ? rec_names[type] : "unknown";
}

int recv_fail(struct uiommu_stream_receiver *r, int code, const char *fmt, ...)
{
	va_list ap;

	if (r->err.code)
		return r->err.code;
	r->err.code = code;
	r->err.offset = r->rec_offset;
	va_start(ap, fmt);
	vsnprintf(r->err.msg, sizeof(r->err.msg), fmt, ap);
	va_end(ap);
	r->mode = RM_FAILED;
	return code;
}

void recv_want(struct uiommu_stream_receiver *r, void *buf, size_t len, recv_full_fn fn)
{
	r->mode = RM_COLLECT;
	r->want = buf;
	r->want_len = len;
	r->have = 0;
	r->on_full = fn;
}

int recv_check_record(struct uiommu_stream_receiver *r, const void *payload, size_t len)
{
	if (ms_check_ok(ms_record_check(&r->rec_hash, r->rec, payload, len), get_le64(r->rec + 16)))
		return 0;
	return recv_fail(r, -EBADMSG, "%s record: check mismatch", rec_name(r->rec_type));
}

int recv_event(struct uiommu_stream_receiver *r, const struct uiommu_stream_event *ev)
{
	int rc;

	if (!r->cfg.on_event)
		return 0;
	rc = r->cfg.on_event(r->cfg.opaque, ev);
	if (rc < 0)
		return recv_fail(r, rc, "aborted by the event handler (%d)", rc);
	return 0;
}

/* ---- Record headers ---- */

static bool phase_allows(const struct uiommu_stream_receiver *r, uint32_t type)
{
	if (r->phase == RP_STREAM)
		return type >= MS_REC_PAGES && type <= MS_REC_SWITCHOVER;
	if (r->phase == RP_SWITCHED)
		return type == MS_REC_END ||
		       (type == MS_REC_HASHES && (r->caps & MS_CAP_PAGE_HASHES));
	return false;
}

/* Largest payload of each record type. */
static uint64_t rec_max_len(const struct uiommu_stream_receiver *r, uint32_t type)
{
	switch (type) {
	case MS_REC_PAGES:
		return MS_BATCH_HDR + 8ull * MS_MAX_RUNS + ZSTD_COMPRESSBOUND(MS_BATCH_MAX_DATA);
	case MS_REC_DEVICE:
		return MS_DEVICE_PREFIX + UIOMMU_STREAM_NAME_MAX + r->cfg.max_blob_bytes;
	case MS_REC_VCPUS:
		return r->cfg.max_blob_bytes;
	case MS_REC_HASHES:
		return MS_META_MAX;
	case MS_REC_ROUND:
		return MS_ROUND_LEN;
	case MS_REC_SWITCHOVER:
		return MS_SWITCHOVER_LEN;
	default:
		return MS_END_LEN;
	}
}

static int check_rec_len(struct uiommu_stream_receiver *r)
{
	uint32_t t = r->rec_type;
	uint64_t len = r->rec_len, max = rec_max_len(r, t);

	if (len > max)
		return recv_fail(r, -EMSGSIZE, "%s record: length %llu over the limit of %llu",
				 rec_name(t), (unsigned long long)len, (unsigned long long)max);
	if ((t == MS_REC_ROUND || t == MS_REC_SWITCHOVER || t == MS_REC_END) && len != max)
		return recv_fail(r, -EBADMSG, "%s record: length %llu, must be %llu", rec_name(t),
				 (unsigned long long)len, (unsigned long long)max);
	if ((t == MS_REC_PAGES && len < MS_BATCH_HDR + 8) ||
	    (t == MS_REC_DEVICE && len < MS_DEVICE_PREFIX + 1) ||
	    (t == MS_REC_HASHES && (len < MS_HASHES_HDR + 8 || (len - MS_HASHES_HDR) % 8)))
		return recv_fail(r, -EBADMSG, "%s record: bad length %llu", rec_name(t),
				 (unsigned long long)len);
	return 0;
}

static int blob_begin(struct uiommu_stream_receiver *r, recv_full_fn fn)
{
	/* Length checked against max_blob_bytes already; +1 so that 0 is not NULL. */
	r->payload = malloc(r->rec_len + 1);
	if (!r->payload)
		return recv_fail(r, -ENOMEM, "%s record: no memory for %llu bytes",
				 rec_name(r->rec_type), (unsigned long long)r->rec_len);
	recv_want(r, r->payload, r->rec_len, fn);
	return 0;
}

static int rec_dispatch(struct uiommu_stream_receiver *r)
{
	switch (r->rec_type) {
	case MS_REC_PAGES:
		return recv_pages_begin(r);
	case MS_REC_DEVICE:
		return blob_begin(r, recv_device_full);
	case MS_REC_VCPUS:
		return blob_begin(r, recv_vcpus_full);
	case MS_REC_ROUND:
		recv_want(r, r->meta, r->rec_len, recv_round_full);
		return 0;
	case MS_REC_SWITCHOVER:
		recv_want(r, r->meta, r->rec_len, recv_switchover_full);
		return 0;
	case MS_REC_HASHES:
		recv_want(r, r->meta, r->rec_len, recv_hashes_full);
		return 0;
	default:
		recv_want(r, r->meta, r->rec_len, recv_end_full);
		return 0;
	}
}

static int rec_hdr_full(struct uiommu_stream_receiver *r)
{
	uint32_t t = get_le32(r->rec);

	r->rec_type = t;
	r->rec_flags = get_le32(r->rec + 4);
	r->rec_len = get_le64(r->rec + 8);
	if (!t || t >= ARRAY_SIZE(rec_names))
		return recv_fail(r, -EBADMSG, "unknown record type %u", t);
	if (!phase_allows(r, t))
		return recv_fail(r, -EPROTO, "%s record not allowed %s", rec_name(t),
				 r->phase == RP_STREAM ? "before switchover" : "after switchover");
	if (r->rec_flags & ~(t == MS_REC_PAGES ? MS_PAGES_ZSTD : 0))
		return recv_fail(r, -EOPNOTSUPP, "%s record: unknown flags 0x%x", rec_name(t),
				 r->rec_flags);
	return check_rec_len(r) ? r->err.code : rec_dispatch(r);
}

void recv_next_record(struct uiommu_stream_receiver *r)
{
	r->rec_offset = r->offset;
	recv_want(r, r->rec, MS_REC_HDR, rec_hdr_full);
}

/* ---- Stream header ---- */

static int hdr_full(struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_range ranges[UIOMMU_STREAM_MAX_RANGES];
	uint32_t n = get_le32(r->hdr + 24);
	size_t len = MS_HDR_FIXED + MS_RANGE_LEN * n;
	char why[MS_WHY_MAX];
	int rc;

	if (!ms_check_ok(uiommu__hash(r->hdr, len), get_le64(r->hdr + len)))
		return recv_fail(r, -EBADMSG, "header: check mismatch");
	for (uint32_t i = 0; i < n; i++) {
		ranges[i].gpa = get_le64(r->hdr + MS_HDR_FIXED + MS_RANGE_LEN * i);
		ranges[i].bytes = get_le64(r->hdr + MS_HDR_FIXED + MS_RANGE_LEN * i + 8);
	}
	rc = ms_layout_init(&r->lay, get_le32(r->hdr + 20), ranges, n, r->cfg.mem_bytes, why);
	if (rc)
		return recv_fail(r, rc == -ERANGE ? -ERANGE : -EBADMSG, "header: %s", why);
	r->caps = get_le32(r->hdr + 16);
	return recv_layout_setup(r);
}

static int hdr_fixed_full(struct uiommu_stream_receiver *r)
{
	uint32_t version = get_le32(r->hdr + 8), caps = get_le32(r->hdr + 16);
	uint32_t n = get_le32(r->hdr + 24);

	if (memcmp(r->hdr, MS_MAGIC, MS_MAGIC_LEN))
		return recv_fail(r, -EBADMSG, "header: bad magic (not a uiommu migration stream)");
	if (version != MS_VERSION)
		return recv_fail(r, -EPROTONOSUPPORT, "header: version %u (only %u is known)",
				 version, MS_VERSION);
	if (get_le32(r->hdr + 12) || get_le32(r->hdr + 28))
		return recv_fail(r, -EOPNOTSUPP, "header: unknown flags 0x%x or reserved 0x%x",
				 get_le32(r->hdr + 12), get_le32(r->hdr + 28));
	if (caps & ~MS_CAPS_KNOWN)
		return recv_fail(r, -EOPNOTSUPP, "header: unknown capabilities 0x%x",
				 caps & ~MS_CAPS_KNOWN);
	if ((caps & MS_CAP_PAGE_HASHES) && !(caps & MS_CAP_DIGEST))
		return recv_fail(r, -EBADMSG, "header: page hashes without a digest");
	if (!n || n > UIOMMU_STREAM_MAX_RANGES)
		return recv_fail(r, -EBADMSG, "header: %u ranges (1..%d allowed)", n,
				 UIOMMU_STREAM_MAX_RANGES);
	/* Keep the fixed part: the rest lands after it and the check covers both. */
	recv_want(r, r->hdr, MS_HDR_FIXED + MS_RANGE_LEN * n + 8, hdr_full);
	r->have = MS_HDR_FIXED;
	return 0;
}

/* ---- Feeding ---- */

static size_t collect(struct uiommu_stream_receiver *r, const uint8_t *p, size_t len)
{
	size_t n = (size_t)u64_min(len, r->want_len - r->have);

	memcpy(r->want + r->have, p, n);
	r->have += n;
	r->offset += n;
	return n;
}

static size_t consume(struct uiommu_stream_receiver *r, const uint8_t *p, size_t len)
{
	switch (r->mode) {
	case RM_COLLECT:
		return collect(r, p, len);
	case RM_RAW:
		return recv_raw_consume(r, p, len);
	case RM_ZSTD:
		return recv_zstd_consume(r, p, len);
	default:
		r->rec_offset = r->offset;
		recv_fail(r, -EPROTO, "data after the end of the stream");
		return 0;
	}
}

UIOMMU_EXPORT int uiommu_stream_recv_feed(struct uiommu_stream_receiver *r, const void *buf,
					  size_t len)
{
	const uint8_t *p = buf;

	while (r->mode != RM_FAILED) {
		if (r->mode == RM_COLLECT && r->have == r->want_len) {
			r->on_full(r);
			continue;
		}
		if (!len)
			break;
		size_t n = consume(r, p, len);

		p += n;
		len -= n;
	}
	return r->err.code;
}

UIOMMU_EXPORT void uiommu_stream_recv_direct(struct uiommu_stream_receiver *r, void **buf,
					     size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (r->mode == RM_COLLECT) {
		*buf = r->want + r->have;
		*len = r->want_len - r->have;
	} else if (r->mode == RM_RAW) {
		const struct recv_run *run = &r->runs[r->cur];

		*buf = r->mem + run->gpa + r->cur_off;
		*len = (size_t)(((uint64_t)run->count << r->lay.page_shift) - r->cur_off);
	}
}

UIOMMU_EXPORT int uiommu_stream_recv_commit(struct uiommu_stream_receiver *r, size_t n)
{
	void *buf;
	size_t room;

	uiommu_stream_recv_direct(r, &buf, &room);
	if (n > room)
		return -EINVAL;
	if (r->mode == RM_COLLECT) {
		r->have += n;
		r->offset += n;
	} else if (n) {
		recv_raw_advance(r, n);
	}
	return uiommu_stream_recv_feed(r, NULL, 0);
}

UIOMMU_EXPORT bool uiommu_stream_recv_done(const struct uiommu_stream_receiver *r)
{
	return r->mode == RM_DONE;
}

UIOMMU_EXPORT int uiommu_stream_recv_finish(struct uiommu_stream_receiver *r)
{
	if (r->mode == RM_DONE || r->mode == RM_FAILED)
		return r->err.code;
	if (r->phase == RP_HEADER)
		return recv_fail(r, -ENODATA, "truncated: the stream ended inside the header");
	if (r->want == r->rec && r->mode == RM_COLLECT)
		return recv_fail(r, -ENODATA, "truncated: the stream ended %s",
				 r->have ? "inside a record header" : "before the END record");
	return recv_fail(r, -ENODATA, "truncated: the stream ended inside a %s record",
			 rec_name(r->rec_type));
}

/* ---- Creation and queries ---- */

static int populate(void *mem, uint64_t bytes)
{
	uint64_t ps = uiommu__page_size(), start = ((uintptr_t)mem + ps - 1) & ~(ps - 1);
	uint64_t end = ((uintptr_t)mem + bytes) & ~(ps - 1);

	if (end <= start || !madvise((void *)(uintptr_t)start, end - start, MADV_POPULATE_WRITE))
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* Kernels before 5.14: fault each page in by writing back what it holds. */
	for (uint64_t a = start; a < end; a += ps) {
		volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)a;

		*b = *b;
	}
	return 0;
}

UIOMMU_EXPORT int uiommu_stream_receiver_create(const struct uiommu_stream_recv_cfg *cfg,
						struct uiommu_stream_receiver **out)
{
	struct uiommu_stream_receiver *r;
	int rc;

	if (!cfg->mem || !cfg->mem_bytes)
		return -EINVAL;
	if (!cfg->populated) {
		rc = populate(cfg->mem, cfg->mem_bytes);
		if (rc)
			return rc;
	}
	r = uiommu__zalloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	r->mem = cfg->mem;
	if (!r->cfg.max_blob_bytes)
		r->cfg.max_blob_bytes = DEFAULT_MAX_BLOB;
	if (!r->cfg.max_devices)
		r->cfg.max_devices = DEFAULT_MAX_DEVICES;
	r->meta = uiommu__zalloc(MS_META_MAX);
	r->runs = uiommu__calloc(MS_MAX_RUNS, sizeof(*r->runs));
	if (!r->meta || !r->runs || ms_hasher_init(&r->rec_hash) ||
	    ms_hasher_init(&r->src_digest)) {
		uiommu_stream_receiver_destroy(r);
		return -ENOMEM;
	}
	recv_want(r, r->hdr, MS_HDR_FIXED, hdr_fixed_full);
	*out = r;
	return 0;
}

UIOMMU_EXPORT void uiommu_stream_receiver_destroy(struct uiommu_stream_receiver *r)
{
	if (!r)
		return;
	recv_pages_fini(r);
	recv_records_fini(r);
	free(r->payload);
	uiommu__free(r->meta);
	uiommu__free(r->runs);
	uiommu__free(r->stage);
	ms_hasher_fini(&r->rec_hash);
	ms_hasher_fini(&r->src_digest);
	uiommu__free(r);
}

UIOMMU_EXPORT const struct uiommu_stream_error *
uiommu_stream_recv_error(const struct uiommu_stream_receiver *r)
{
	return &r->err;
}

UIOMMU_EXPORT int uiommu_stream_recv_layout(const struct uiommu_stream_receiver *r,
					    struct uiommu_stream_layout *lay)
{
	if (r->phase == RP_HEADER)
		return -ENODATA;
	memset(lay, 0, sizeof(*lay));
	lay->page_size = r->lay.page_size;
	lay->caps = r->caps;
	lay->nr_ranges = r->lay.nr;
	lay->pages = r->lay.pages;
	for (unsigned int i = 0; i < r->lay.nr; i++) {
		lay->ranges[i].gpa = r->lay.r[i].gpa;
		lay->ranges[i].bytes = r->lay.r[i].bytes;
	}
	return 0;
}

UIOMMU_EXPORT void uiommu_stream_recv_get_verify(const struct uiommu_stream_receiver *r,
						 struct uiommu_stream_verify *v)
{
	*v = r->verify;
}

UIOMMU_EXPORT void uiommu_stream_recv_get_stats(const struct uiommu_stream_receiver *r,
						struct uiommu_stream_stats *st)
{
	*st = r->st;
	st->bytes = r->offset;
}
