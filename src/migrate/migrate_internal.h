/* SPDX-License-Identifier: MIT */
/*
 * Private header of the migrate layer: the wire format's constants (the
 * normative text is doc/stream-format.md; a change here is a format change),
 * little-endian accessors, page helpers and the transport vtable.
 */
#ifndef UIOMMU_MIGRATE_INTERNAL_H
#define UIOMMU_MIGRATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <uiommu/bitmap.h>
#include <uiommu/migrate_stream.h>
#include <uiommu/migrate_xport.h>

#include "core/core_internal.h"

/* ---- Wire format, version 1 (doc/stream-format.md) ---- */

#define MS_MAGIC "UIOMMUMS"
#define MS_MAGIC_LEN 8
#define MS_VERSION 1u

/* Stream header: fixed part, then nr_ranges ranges, then a le64 check. */
#define MS_HDR_FIXED 32u
#define MS_RANGE_LEN 16u
#define MS_HDR_MAX (MS_HDR_FIXED + UIOMMU_STREAM_MAX_RANGES * MS_RANGE_LEN + 8u)

#define MS_CAP_ZSTD 0x1u
#define MS_CAP_DIGEST 0x2u
#define MS_CAP_PAGE_HASHES 0x4u
#define MS_CAPS_KNOWN (MS_CAP_ZSTD | MS_CAP_DIGEST | MS_CAP_PAGE_HASHES)

#define MS_PAGE_MIN 4096u
#define MS_PAGE_MAX 65536u

/* Record header: le32 type, le32 flags, le64 length, le64 check. */
#define MS_REC_HDR 24u
#define MS_REC_CHECKED 16u /* header bytes covered by the check */

enum ms_rec_type {
	MS_REC_PAGES = 1,
	MS_REC_ROUND = 2,
	MS_REC_DEVICE = 3,
	MS_REC_VCPUS = 4,
	MS_REC_SWITCHOVER = 5,
	MS_REC_HASHES = 6,
	MS_REC_END = 7,
};

/* PAGES: le32 nr_runs, le32 nr_pages, le64 data_len, runs, data. */
#define MS_PAGES_ZSTD 0x1u
#define MS_BATCH_HDR 16u
#define MS_MAX_RUNS 4096u
#define MS_RUN_MAX_PAGES 2048u
#define MS_BATCH_MAX_DATA (4u << 20)
#define MS_ZSTD_WINDOW_LOG_MAX 23

/* Run descriptor: GPA in bits 63..12, count - 1 in bits 11..1, ZERO in bit 0. */
#define MS_DESC_ZERO 0x1ull
#define MS_DESC_COUNT_SHIFT 1
#define MS_DESC_COUNT_MASK 0x7ffull
#define MS_DESC_GPA_MASK (~0xfffull)

#define MS_ROUND_LEN 48u
#define MS_DEVICE_PREFIX 8u
#define MS_SWITCHOVER_LEN 16u
#define MS_HASHES_HDR 16u
#define MS_MAX_HASHES 8192u
#define MS_END_LEN 32u

/* The receiver's answer (result message), the only bytes sent back. */
#define MS_RESULT_MAGIC "UIOMMURS"
#define MS_RESULT_LEN 320u
#define MS_RESULT_MSG_OFF 184u

/*
 * Checks a 320-byte result message and decodes it into @res (0), or leaves
 * @res alone (-EBADMSG). Shared by result_recv and resumed_recv, which may
 * find a result where it waited for the resumed notice.
 */
int ms_result_parse(const uint8_t *b, struct uiommu_stream_result *res);

/* The destination's "resumed" notice (stream_resumed.c). */
#define MS_RESUMED_MAGIC "UIOMMURD"
#define MS_RESUMED_LEN 32u

/* Largest blob a sender accepts; receivers set their own, lower, limit. */
#define MS_BLOB_MAX (1ull << 32)

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t ms_desc_encode(uint64_t gpa, uint64_t count, bool zero)
{
	return gpa | ((count - 1) << MS_DESC_COUNT_SHIFT) | (zero ? MS_DESC_ZERO : 0);
}

/* ---- Pages and hashes (stream_page.c) ---- */

bool uiommu__page_is_zero(const void *page, size_t len);
uint64_t uiommu__hash(const void *buf, size_t len);

/* XXH3_64bits over pieces, without exposing xxhash.h to every file. */
struct ms_hasher {
	void *state; /* XXH3_state_t */
};
int ms_hasher_init(struct ms_hasher *h);
void ms_hasher_fini(struct ms_hasher *h);
void ms_hasher_reset(struct ms_hasher *h);
void ms_hasher_update(struct ms_hasher *h, const void *buf, size_t len);
uint64_t ms_hasher_digest(struct ms_hasher *h);

/*
 * Whether a check that was computed matches. Fuzzing builds (the libFuzzer
 * target and its replay, tests/fuzz/fuzz_stream.c) accept any check, so that
 * mutated inputs reach the parsing behind it; every other build enforces it.
 */
static inline bool ms_check_ok(uint64_t computed, uint64_t carried)
{
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	(void)computed;
	(void)carried;
	return true;
#else
	return computed == carried;
#endif
}

/* The check of a record: XXH3 over header bytes 0..15 then @len payload bytes. */
uint64_t ms_record_check(struct ms_hasher *h, const uint8_t *rec_hdr, const void *payload,
			 size_t len);

/* ---- Layout (stream_layout.c) ---- */

struct ms_range {
	uint64_t gpa, bytes;
	uint64_t first_index; /* layout index of the range's first page */
};

struct ms_layout {
	uint32_t page_size;
	unsigned int page_shift;
	unsigned int nr;
	struct ms_range r[UIOMMU_STREAM_MAX_RANGES];
	uint64_t pages; /* total layout pages */
};

#define MS_WHY_MAX 96

/*
 * Validates @ranges against the page size and a memory of @mem_bytes and fills
 * @lay. On failure writes a reason into @why.
 */
int ms_layout_init(struct ms_layout *lay, uint32_t page_size,
		   const struct uiommu_stream_range *ranges, unsigned int nr, uint64_t mem_bytes,
		   char why[MS_WHY_MAX]);
/*
 * The range holding page [gpa, gpa + page_size), or -1. @hint speeds up
 * ascending lookups (pass the previous answer, or 0).
 */
int ms_layout_find(const struct ms_layout *lay, uint64_t gpa, int hint);

static inline uint64_t ms_range_end(const struct ms_range *r)
{
	return r->gpa + r->bytes;
}

static inline uint64_t ms_layout_index(const struct ms_layout *lay, int ri, uint64_t gpa)
{
	return lay->r[ri].first_index + ((gpa - lay->r[ri].gpa) >> lay->page_shift);
}

/* ---- Transports (xport.c, xport_sock.c, xport_mem.c) ---- */

struct xport_ops {
	const char *name;
	/* Writes at least one byte of @iov (at most @max bytes), or fails. */
	int (*writev)(struct uiommu_xport *x, const struct iovec *iov, int iovcnt, size_t *done);
	/* Reads 1..@len bytes; *got = 0 means an orderly end of stream. */
	int (*read)(struct uiommu_xport *x, void *buf, size_t len, size_t *got);
	void (*shutdown)(struct uiommu_xport *x);
	void (*destroy)(struct uiommu_xport *x);
};

struct xport_bucket {
	uint64_t rate;    /* bytes per second, 0 = unlimited */
	uint64_t cap;     /* bucket depth in bytes */
	double tokens;
	uint64_t last_ns;
};

struct uiommu_xport {
	const struct xport_ops *ops;
	int timeout_ms;
	int shut; /* atomic: uiommu_xport_shutdown() was called */
	struct xport_bucket bucket;
	struct uiommu_xport_stats stats;
};

void uiommu__xport_init(struct uiommu_xport *x, const struct xport_ops *ops);
bool uiommu__xport_is_shut(struct uiommu_xport *x);
uint64_t uiommu__now_ns(void);

/* ---- Receiver (stream_recv*.c) ---- */

/*
 * The parser is a loop over modes: COLLECT gathers want_len bytes into
 * want and then calls on_full, which validates them and sets the next mode;
 * RAW copies page data into the current run; ZSTD feeds record bytes to the
 * decompressor whose output goes into the runs. phase says which records
 * may come next.
 */
enum recv_mode { RM_COLLECT, RM_RAW, RM_ZSTD, RM_DONE, RM_FAILED };
enum recv_phase { RP_HEADER, RP_STREAM, RP_SWITCHED, RP_DONE };

struct recv_run {
	uint64_t gpa;
	uint64_t index; /* layout index of its first page */
	uint32_t count;
	bool zero;
};

struct recv_device {
	uint32_t id;
	char name[UIOMMU_STREAM_NAME_MAX + 1];
	uint8_t *payload; /* the record payload; the blob starts after the name */
	uint64_t blob_off, len;
};

struct uiommu_stream_receiver;
typedef int (*recv_full_fn)(struct uiommu_stream_receiver *r);

struct uiommu_stream_receiver {
	struct uiommu_stream_recv_cfg cfg;
	uint8_t *mem;
	enum recv_mode mode;
	enum recv_phase phase;
	uint8_t *want;
	size_t want_len, have;
	recv_full_fn on_full;
	uint64_t offset;     /* stream bytes consumed */
	uint64_t rec_offset; /* offset of the current record (errors point there) */
	uint8_t hdr[MS_HDR_MAX];
	uint8_t rec[MS_REC_HDR];
	uint32_t rec_type, rec_flags;
	uint64_t rec_len;
	uint8_t *meta;    /* batch header + runs, or a small record's payload */
	uint8_t *payload; /* a DEVICE or VCPUS payload being collected */
	/* Layout, from the header. */
	struct ms_layout lay;
	uint32_t caps;
	uint64_t *hashes;     /* per layout page: hash of what we hold (DIGEST) */
	uint64_t *known_zero; /* per layout page: we know it is all zero */
	uint64_t zero_hash;
	/* The PAGES record being parsed. */
	struct recv_run *runs;
	unsigned int nr_runs, cur;
	uint64_t cur_off;   /* bytes of runs[cur] written */
	uint64_t data_left; /* record bytes still to come */
	uint64_t batch_data_pages;
	void *dctx; /* ZSTD_DCtx */
	/* Sections. */
	bool any_round;
	uint32_t last_round;
	uint64_t round_data, round_zero, round_mark;
	uint64_t total_data, total_zero;
	struct recv_device *devs;
	unsigned int nr_devs;
	uint8_t *vcpus;
	uint64_t vcpus_len;
	bool have_vcpus;
	/* Verification. */
	uint64_t next_hash;
	int hash_range; /* range of next_hash (ascending lookups) */
	struct ms_hasher rec_hash, src_digest;
	struct uiommu_stream_verify verify;
	struct uiommu_stream_error err;
	struct uiommu_stream_stats st;
	uint8_t *stage; /* recv_run's read buffer */
};

/* Records the first error (sticky), stops the parser, returns @code. */
int recv_fail(struct uiommu_stream_receiver *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets up the collection of @len bytes into @buf, then @fn. */
void recv_want(struct uiommu_stream_receiver *r, void *buf, size_t len, recv_full_fn fn);
/* The record is complete: expect the next record header. */
void recv_next_record(struct uiommu_stream_receiver *r);
/* Checks the current record's check against @len bytes of @payload. */
int recv_check_record(struct uiommu_stream_receiver *r, const void *payload, size_t len);
int recv_event(struct uiommu_stream_receiver *r, const struct uiommu_stream_event *ev);

/* stream_recv_pages.c */
int recv_pages_begin(struct uiommu_stream_receiver *r);
size_t recv_raw_consume(struct uiommu_stream_receiver *r, const uint8_t *p, size_t len);
void recv_raw_advance(struct uiommu_stream_receiver *r, size_t n);
size_t recv_zstd_consume(struct uiommu_stream_receiver *r, const uint8_t *p, size_t len);
int recv_layout_setup(struct uiommu_stream_receiver *r);
void recv_pages_fini(struct uiommu_stream_receiver *r);

/* stream_recv_records.c */
int recv_round_full(struct uiommu_stream_receiver *r);
int recv_device_full(struct uiommu_stream_receiver *r);
int recv_vcpus_full(struct uiommu_stream_receiver *r);
int recv_switchover_full(struct uiommu_stream_receiver *r);
int recv_hashes_full(struct uiommu_stream_receiver *r);
int recv_end_full(struct uiommu_stream_receiver *r);
void recv_records_fini(struct uiommu_stream_receiver *r);

#define MS_META_MAX (MS_HASHES_HDR + 8u * MS_MAX_HASHES)

#endif
