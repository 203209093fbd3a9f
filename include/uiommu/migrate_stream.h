/* SPDX-License-Identifier: MIT */
/*
 * The migration stream: what the source sends and how the destination reads
 * it. The format is specified in doc/stream-format.md (version 1).
 *
 * Source (sender), in this order:
 *   header                       page size, memory layout, capabilities
 *   { pages | round | device | vcpus }   pre-copy rounds, then stop-and-copy
 *   switchover                   everything the destination needs to resume
 *   end                          per-page hashes of the source's memory and a
 *                                digest: the proof that nothing was lost
 * Pages are taken from guest memory (host pointer, GPA 0 at the pointer) by a
 * dirty bitmap; zero pages cost 8 bytes or less, other pages are sent as they
 * are (one writev per batch, straight from guest memory) or zstd-compressed
 * per batch.
 *
 * Destination (receiver): a bounded push parser. Feed it any bytes in any
 * split; it writes pages into guest memory (validated against the layout and
 * the memory size before any byte is written), keeps the device and vCPU
 * blobs, reports rounds, and at the end compares the source's page hashes
 * with those of what it wrote. Anything malformed stops it with a negative
 * errno, the stream offset and a message; it never writes outside guest
 * memory or its own buffers.
 *
 * Verification: the receiver hashes (XXH3_64bits) each page as it writes it,
 * so its hash array describes its memory at switchover even after the guest
 * resumed. The source hashes its memory when it sends end, after switchover
 * (the source guest is stopped for good then, so this costs no downtime).
 *
 * The objects are used by one thread at a time; they never print.
 */
#ifndef UIOMMU_MIGRATE_STREAM_H
#define UIOMMU_MIGRATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uiommu/compiler.h>
#include <uiommu/migrate_xport.h>

UIOMMU_BEGIN_DECLS

#define UIOMMU_STREAM_VERSION 1
#define UIOMMU_STREAM_MAX_RANGES 64
#define UIOMMU_STREAM_NAME_MAX 64  /* device names, bytes */
#define UIOMMU_STREAM_MAX_BAD 16   /* differing pages named by a verification */
#define UIOMMU_STREAM_MSG_MAX 128

struct uiommu_stream_range {
	uint64_t gpa, bytes; /* page-aligned, bytes > 0 */
};

enum uiommu_stream_verify_mode {
	UIOMMU_STREAM_VERIFY_PAGES = 0, /* digest + every page's hash (names bad pages) */
	UIOMMU_STREAM_VERIFY_DIGEST,    /* digest only: says equal or not */
	UIOMMU_STREAM_VERIFY_NONE,
};

/* ------------------------------------------------------------------ sender */

struct uiommu_stream_sender;

struct uiommu_stream_send_cfg {
	struct uiommu_xport *xport;  /* where the stream goes; not owned */
	const void *mem;             /* guest memory, GPA 0 at mem */
	uint64_t mem_bytes;
	uint32_t page_size;          /* power of two, 4 KiB..64 KiB; 0 = 4 KiB */
	/* Memory layout; NULL/0 = one range [0, mem_bytes). Ascending, disjoint. */
	const struct uiommu_stream_range *ranges;
	unsigned int nr_ranges;
	int zstd_level;              /* 0 = no compression, else a zstd level (1..19, <0 fast) */
	enum uiommu_stream_verify_mode verify;
};

struct uiommu_stream_stats {
	uint64_t bytes;              /* stream bytes written or parsed */
	uint64_t data_pages;         /* pages sent with their content */
	uint64_t zero_pages;         /* pages sent as zero */
	uint64_t zero_pages_skipped; /* receiver: zero pages that were zero already */
	uint64_t batches, compressed_batches;
	uint64_t compress_in, compress_out; /* page bytes of compressed batches, and on the wire */
	uint64_t rounds;
	uint64_t hash_ns;            /* time spent hashing pages for verification */
};

/**
 * uiommu_stream_sender_create() - Prepare a sender; nothing is sent yet.
 *
 * Return: 0, -EINVAL for a bad configuration (page size, ranges outside
 * memory or not page-aligned, too many ranges), -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_stream_sender_create(const struct uiommu_stream_send_cfg *cfg,
					      struct uiommu_stream_sender **out);
/* Never fails, takes NULL; the transport is left open. */
UIOMMU_EXPORT void uiommu_stream_sender_destroy(struct uiommu_stream_sender *s);

/*
 * Every send function returns 0 or a negative errno: -EPROTO when called out
 * of order (pages after switchover, anything after end), -EINVAL/-ERANGE for
 * bad arguments (nothing is sent then), or the transport's error, after which
 * the sender is broken and returns that error from every call.
 */
UIOMMU_EXPORT int uiommu_stream_send_header(struct uiommu_stream_sender *s);
/**
 * uiommu_stream_send_pages() - Send the pages of a dirty bitmap.
 * @bitmap: bit k (bit k % 64 of word k / 64) stands for the page at GPA
 *          k * page_size
 * @first, @count: the bits to look at, [first, first + count)
 *
 * Every set bit must be a page of the layout (-ERANGE otherwise, checked
 * before anything is sent). Each page is sent as zero or with its content as
 * it is in memory now. Everything is on the transport when this returns.
 */
UIOMMU_EXPORT int uiommu_stream_send_pages(struct uiommu_stream_sender *s, const uint64_t *bitmap,
					   uint64_t first, uint64_t count);
/* Sends every page of [gpa, gpa + bytes), which must be page-aligned and in the layout. */
UIOMMU_EXPORT int uiommu_stream_send_range(struct uiommu_stream_sender *s, uint64_t gpa,
					   uint64_t bytes);
/**
 * uiommu_stream_send_round() - Mark the end of a round.
 * @round: greater than the previous round's number
 * @duration_ns, @remaining_pages: informational, passed to the receiver
 *
 * The page and byte counts of the round are added by the stream and checked by
 * the receiver.
 */
UIOMMU_EXPORT int uiommu_stream_send_round(struct uiommu_stream_sender *s, uint32_t round,
					   uint64_t duration_ns, uint64_t remaining_pages);
/* Device state: @id unique in the stream, @name 1..64 printable ASCII bytes. */
UIOMMU_EXPORT int uiommu_stream_send_device(struct uiommu_stream_sender *s, uint32_t id,
					    const char *name, const void *blob, uint64_t len);
/* vCPU state (once per stream). */
UIOMMU_EXPORT int uiommu_stream_send_vcpus(struct uiommu_stream_sender *s, const void *blob,
					   uint64_t len);
/* Memory and state are complete: the destination may resume the guest. */
UIOMMU_EXPORT int uiommu_stream_send_switchover(struct uiommu_stream_sender *s);
/*
 * Hashes the source's memory (unless verify is NONE), sends the hashes and
 * the end record. Memory must not change between switchover and this call.
 */
UIOMMU_EXPORT int uiommu_stream_send_end(struct uiommu_stream_sender *s);
/*
 * The same, where the caller knows some pages are zero (bit k of @zero: the
 * page at GPA k * page_size; NULL for none), such as holes of the memory's
 * memfd: they are hashed as zero pages without being read (reading a hole
 * would allocate it). The claim must be true: a bit on a page that is not
 * zero gives it the zero page's hash, and a receiver holding zeros there
 * would then be verified wrongly.
 */
UIOMMU_EXPORT int uiommu_stream_send_end_known_zero(struct uiommu_stream_sender *s,
						    const uint64_t *zero);
UIOMMU_EXPORT void uiommu_stream_sender_get_stats(const struct uiommu_stream_sender *s,
						  struct uiommu_stream_stats *st);

/* ---------------------------------------------------------------- receiver */

struct uiommu_stream_receiver;

struct uiommu_stream_error {
	int code;       /* negative errno; 0 = no error */
	uint64_t offset; /* stream offset of the record (or byte) at fault */
	char msg[UIOMMU_STREAM_MSG_MAX];
};

struct uiommu_stream_verify {
	bool checked;      /* the stream carried a digest and it was compared */
	bool ok;           /* destination memory equals the source's, page for page */
	bool digest_match;
	bool pages_compared; /* per-page hashes were sent: bad pages are named */
	uint64_t pages;      /* pages covered (the layout) */
	uint64_t mismatched; /* pages whose hashes differ (when pages_compared) */
	unsigned int nr_bad;
	uint64_t bad_gpa[UIOMMU_STREAM_MAX_BAD]; /* the first differing pages, ascending */
};

struct uiommu_stream_round {
	uint32_t round;
	uint64_t data_pages, zero_pages, bytes; /* of the round, checked against the stream */
	uint64_t duration_ns, remaining_pages;  /* as the source said */
};

struct uiommu_stream_device {
	uint32_t id;
	char name[UIOMMU_STREAM_NAME_MAX + 1];
	const void *blob; /* owned by the receiver, valid until it is destroyed */
	uint64_t len;
};

enum uiommu_stream_event_type {
	UIOMMU_STREAM_EV_HEADER,
	UIOMMU_STREAM_EV_ROUND,
	UIOMMU_STREAM_EV_DEVICE,
	UIOMMU_STREAM_EV_VCPUS,
	UIOMMU_STREAM_EV_SWITCHOVER,
	UIOMMU_STREAM_EV_END,
};

struct uiommu_stream_event {
	enum uiommu_stream_event_type type;
	union {
		struct {
			uint32_t page_size;
			uint32_t caps; /* UIOMMU_STREAM_CAP_* */
			unsigned int nr_ranges;
			const struct uiommu_stream_range *ranges;
		} header;
		struct uiommu_stream_round round;
		struct uiommu_stream_device device;
		struct {
			const void *blob;
			uint64_t len;
		} vcpus;
		const struct uiommu_stream_verify *end;
	};
};

#define UIOMMU_STREAM_CAP_ZSTD 0x1u
#define UIOMMU_STREAM_CAP_DIGEST 0x2u
#define UIOMMU_STREAM_CAP_PAGE_HASHES 0x4u

/*
 * Called as each section is parsed. A negative return stops the parse with
 * that error ("aborted by the event handler").
 */
typedef int (*uiommu_stream_event_fn)(void *opaque, const struct uiommu_stream_event *ev);

struct uiommu_stream_recv_cfg {
	void *mem;                /* guest memory, GPA 0 at mem */
	uint64_t mem_bytes;
	/*
	 * The receiver faults guest memory in at creation
	 * (MADV_POPULATE_WRITE): a first touch costs about 1 us per page, too
	 * much inside a migration. Set when the memory is populated already.
	 */
	bool populated;
	/*
	 * Memory is assumed zero-filled (fresh anonymous or memfd memory), so
	 * zero pages need not be written. Set when it may hold anything else;
	 * the receiver then hashes it once when the header arrives.
	 */
	bool not_zeroed;
	uint64_t max_blob_bytes;  /* per device or vCPU blob; 0 = 64 MiB */
	unsigned int max_devices; /* 0 = 64 */
	uiommu_stream_event_fn on_event; /* optional */
	void *opaque;
};

struct uiommu_stream_layout {
	uint32_t page_size;
	uint32_t caps;
	unsigned int nr_ranges;
	struct uiommu_stream_range ranges[UIOMMU_STREAM_MAX_RANGES];
	uint64_t pages;
};

UIOMMU_EXPORT int uiommu_stream_receiver_create(const struct uiommu_stream_recv_cfg *cfg,
						struct uiommu_stream_receiver **out);
UIOMMU_EXPORT void uiommu_stream_receiver_destroy(struct uiommu_stream_receiver *r);

/**
 * uiommu_stream_recv_feed() - Parse the next @len bytes of the stream.
 *
 * Consumes every byte. Errors are sticky (every later call returns the first
 * one); see uiommu_stream_recv_error() for offset and message. Codes:
 * -EBADMSG malformed or failed check, -EPROTONOSUPPORT unknown version,
 * -EOPNOTSUPP unknown flags or capabilities, -EPROTO a record out of place
 * or bytes after the end, -ERANGE a page outside the layout or memory,
 * -EMSGSIZE a length over a limit, -ENOMEM, or the event handler's error.
 */
UIOMMU_EXPORT int uiommu_stream_recv_feed(struct uiommu_stream_receiver *r, const void *buf,
					  size_t len);
/*
 * Zero-copy feeding: where the next bytes of the stream should go. When the
 * parser expects page data or a blob, *@buf points into guest memory or the
 * blob and *@len > 0; write up to *@len stream bytes there and call
 * uiommu_stream_recv_commit() with the count. Otherwise *@len is 0: use feed.
 */
UIOMMU_EXPORT void uiommu_stream_recv_direct(struct uiommu_stream_receiver *r, void **buf,
					     size_t *len);
UIOMMU_EXPORT int uiommu_stream_recv_commit(struct uiommu_stream_receiver *r, size_t n);
/* True once the end record was parsed (the stream is complete). */
UIOMMU_EXPORT bool uiommu_stream_recv_done(const struct uiommu_stream_receiver *r);
/* The input ended: 0 when done, else -ENODATA ("truncated") or the earlier error. */
UIOMMU_EXPORT int uiommu_stream_recv_finish(struct uiommu_stream_receiver *r);
/**
 * uiommu_stream_recv_run() - Read the whole stream from @x.
 *
 * Reads large page data straight into guest memory. Return: 0 once the end
 * record is parsed; a parse error; -ECONNRESET if the peer ends the stream
 * early; or the transport's error. The error is also recorded.
 */
UIOMMU_EXPORT int uiommu_stream_recv_run(struct uiommu_stream_receiver *r,
					 struct uiommu_xport *x);

/* The first error, or code 0. */
UIOMMU_EXPORT const struct uiommu_stream_error *
uiommu_stream_recv_error(const struct uiommu_stream_receiver *r);
/* -ENODATA before the header was parsed. */
UIOMMU_EXPORT int uiommu_stream_recv_layout(const struct uiommu_stream_receiver *r,
					    struct uiommu_stream_layout *lay);
/* The verification result (checked = false until the end record). */
UIOMMU_EXPORT void uiommu_stream_recv_get_verify(const struct uiommu_stream_receiver *r,
						 struct uiommu_stream_verify *v);
UIOMMU_EXPORT void uiommu_stream_recv_get_stats(const struct uiommu_stream_receiver *r,
						struct uiommu_stream_stats *st);
/* The vCPU blob; -ENOENT if none was received. Owned by the receiver. */
UIOMMU_EXPORT int uiommu_stream_recv_vcpus(const struct uiommu_stream_receiver *r,
					   const void **blob, uint64_t *len);
/* Device @idx in arrival order; -ENOENT past the last. */
UIOMMU_EXPORT int uiommu_stream_recv_device(const struct uiommu_stream_receiver *r,
					    unsigned int idx, struct uiommu_stream_device *dev);

/* ------------------------------------------------------------------ result */

/*
 * The receiver's answer to the source after the stream (or after a failure):
 * its status, message and verification. 320 bytes on the wire, checked.
 */
struct uiommu_stream_result {
	int status;       /* 0, or the receiver's negative errno */
	uint64_t offset;  /* stream offset of the error */
	char msg[UIOMMU_STREAM_MSG_MAX];
	struct uiommu_stream_verify verify;
};

/* What the receiver would answer now. */
UIOMMU_EXPORT void uiommu_stream_recv_get_result(const struct uiommu_stream_receiver *r,
						 struct uiommu_stream_result *res);
UIOMMU_EXPORT int uiommu_stream_result_send(struct uiommu_xport *x,
					    const struct uiommu_stream_result *res);
/* -EBADMSG when the message is malformed; transport errors as they are. */
UIOMMU_EXPORT int uiommu_stream_result_recv(struct uiommu_xport *x,
					    struct uiommu_stream_result *res);

/* ----------------------------------------------------------------- resumed */

/*
 * The destination's notice that the guest runs there (32 bytes, checked;
 * doc/stream-format.md "Resumed"), sent right after it resumed the guest at
 * switchover: it ends the source's downtime. @resume_ns is the destination's
 * time from the switchover record to the guest running (informational).
 */
UIOMMU_EXPORT int uiommu_stream_resumed_send(struct uiommu_xport *x, uint64_t resume_ns);
/**
 * uiommu_stream_resumed_recv() - Wait for the resumed notice.
 * @resume_ns: the destination's resume time, on success
 * @res: the destination's result, when it sent that instead (it failed)
 *
 * Return: 0; -EREMOTEIO when a result message came instead (decoded into
 * @res); -EBADMSG when the message is malformed (either kind); transport
 * errors as they are.
 */
UIOMMU_EXPORT int uiommu_stream_resumed_recv(struct uiommu_xport *x, uint64_t *resume_ns,
					     struct uiommu_stream_result *res);

/* ----------------------------------------------------------------- helpers */

/* The hash of one page as the stream uses it: XXH3_64bits, seed 0. */
UIOMMU_EXPORT uint64_t uiommu_stream_hash_page(const void *page, size_t page_size);
/* True when every byte is zero (the sender's zero-page test). */
UIOMMU_EXPORT bool uiommu_stream_page_is_zero(const void *page, size_t len);

UIOMMU_END_DECLS

#endif
