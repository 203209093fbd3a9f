/* SPDX-License-Identifier: MIT */
/*
 * A stream forger for the error tests: writes headers and records with
 * valid checks (through the library's own XXH3 helpers), so that a test can
 * break exactly one thing and see the receiver name it.
 */
#ifndef UIOMMU_FORGE_H
#define UIOMMU_FORGE_H

#include <stdlib.h>
#include <string.h>

#include "migrate/migrate_internal.h"

struct forge {
	uint8_t *buf;
	size_t len, cap;
};

static inline void forge_put(struct forge *f, const void *p, size_t n)
{
	if (f->len + n > f->cap) {
		f->cap = (f->len + n) * 2 + 4096;
		f->buf = realloc(f->buf, f->cap);
		assert_non_null(f->buf);
	}
	if (n)
		memcpy(f->buf + f->len, p, n);
	f->len += n;
}

static inline void forge_free(struct forge *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

/* A header with one range [0, bytes) unless @ranges says otherwise. */
static inline void forge_header_ranges(struct forge *f, uint32_t caps, uint32_t page_size,
				       const uint64_t *ranges, uint32_t nr)
{
	uint8_t h[MS_HDR_MAX] = { 0 };
	size_t len = MS_HDR_FIXED + MS_RANGE_LEN * nr;

	memcpy(h, MS_MAGIC, MS_MAGIC_LEN);
	put_le32(h + 8, MS_VERSION);
	put_le32(h + 16, caps);
	put_le32(h + 20, page_size);
	put_le32(h + 24, nr);
	for (uint32_t i = 0; i < nr; i++) {
		put_le64(h + MS_HDR_FIXED + 16 * i, ranges[2 * i]);
		put_le64(h + MS_HDR_FIXED + 16 * i + 8, ranges[2 * i + 1]);
	}
	put_le64(h + len, uiommu__hash(h, len));
	forge_put(f, h, len + 8);
}

static inline void forge_header(struct forge *f, uint32_t caps, uint64_t bytes)
{
	uint64_t r[2] = { 0, bytes };

	forge_header_ranges(f, caps, 4096, r, 1);
}

/* Re-seals the header's check after a test changed its fields. */
static inline void forge_reseal_header(struct forge *f, uint32_t nr)
{
	size_t len = MS_HDR_FIXED + MS_RANGE_LEN * nr;

	put_le64(f->buf + len, uiommu__hash(f->buf, len));
}

/* A record whose check covers the first @checked payload bytes. */
static inline void forge_record_checked(struct forge *f, uint32_t type, uint32_t flags,
					const void *payload, size_t len, size_t checked)
{
	uint8_t h[MS_REC_HDR];
	struct ms_hasher hs;

	assert_int_equal(ms_hasher_init(&hs), 0);
	put_le32(h, type);
	put_le32(h + 4, flags);
	put_le64(h + 8, len);
	put_le64(h + 16, ms_record_check(&hs, h, payload, checked));
	ms_hasher_fini(&hs);
	forge_put(f, h, sizeof(h));
	forge_put(f, payload, len);
}

static inline void forge_record(struct forge *f, uint32_t type, const void *payload, size_t len)
{
	forge_record_checked(f, type, 0, payload, len, len);
}

/* A PAGES record: runs as (gpa, count, zero) triples, then raw data. */
static inline void forge_pages(struct forge *f, uint32_t flags, const uint64_t *runs,
			       uint32_t nr_runs, const void *data, size_t data_len)
{
	size_t meta = MS_BATCH_HDR + 8ull * nr_runs;
	uint8_t *p = calloc(1, meta + data_len + 1);
	uint32_t pages = 0;

	for (uint32_t i = 0; i < nr_runs; i++) {
		put_le64(p + MS_BATCH_HDR + 8 * i,
			 ms_desc_encode(runs[3 * i], runs[3 * i + 1], runs[3 * i + 2]));
		pages += (uint32_t)runs[3 * i + 1];
	}
	put_le32(p, nr_runs);
	put_le32(p + 4, pages);
	put_le64(p + 8, data_len);
	if (data_len)
		memcpy(p + meta, data, data_len);
	forge_record_checked(f, MS_REC_PAGES, flags, p, meta + data_len, meta);
	free(p);
}

static inline void forge_round(struct forge *f, uint32_t round, uint64_t data, uint64_t zero,
			       uint64_t bytes)
{
	uint8_t p[MS_ROUND_LEN] = { 0 };

	put_le32(p, round);
	put_le64(p + 8, data);
	put_le64(p + 16, zero);
	put_le64(p + 24, bytes);
	forge_record(f, MS_REC_ROUND, p, sizeof(p));
}

static inline void forge_switchover(struct forge *f, uint64_t data, uint64_t zero)
{
	uint8_t p[MS_SWITCHOVER_LEN];

	put_le64(p, data);
	put_le64(p + 8, zero);
	forge_record(f, MS_REC_SWITCHOVER, p, sizeof(p));
}

static inline void forge_device(struct forge *f, uint32_t id, const char *name, size_t blob)
{
	size_t n = strlen(name);
	uint8_t *p = calloc(1, MS_DEVICE_PREFIX + n + blob);

	put_le32(p, id);
	put_le32(p + 4, (uint32_t)n);
	memcpy(p + MS_DEVICE_PREFIX, name, n);
	forge_record(f, MS_REC_DEVICE, p, MS_DEVICE_PREFIX + n + blob);
	free(p);
}

/* END without a digest (a stream whose header has no DIGEST capability). */
static inline void forge_end(struct forge *f, uint64_t pages)
{
	uint8_t p[MS_END_LEN] = { 0 };

	put_le64(p + 8, pages);
	put_le64(p + 24, f->len);
	forge_record(f, MS_REC_END, p, sizeof(p));
}

#endif
