// SPDX-License-Identifier: MIT
/*
 * The receiver over a transport, and the result message it sends back.
 *
 * recv_run() reads until the END record. When the parser expects a large
 * piece (page data of a run, a blob) it reads straight into guest memory or
 * the blob (recv_direct/commit), so page data is copied once, by the kernel.
 * Otherwise it reads whatever is available, up to STAGE_BYTES, into a
 * staging buffer and feeds it: record headers, runs and small batches then
 * cost one system call for many. An orderly end of stream before END is
 * -ECONNRESET (the peer vanished), recorded like a parse error so that the
 * result message can report it.
 *
 * The result message (320 bytes, doc/stream-format.md "Result") is the only
 * thing the receiver sends: status, error offset and message, verification.
 */
#include <errno.h>
#include <string.h>

#include "migrate/migrate_internal.h"

#define STAGE_BYTES (256u << 10)
#define DIRECT_MIN (32u << 10)

static const char *where(const struct uiommu_stream_receiver *r)
{
	if (r->phase == RP_HEADER)
		return "in the header";
	return r->phase == RP_DONE ? "after the end" : "before the END record";
}

static const char *errno_text(int rc)
{
	const char *d = strerrordesc_np(-rc);

	return d ? d : "unknown error";
}

static int read_step(struct uiommu_stream_receiver *r, struct uiommu_xport *x)
{
	void *buf;
	size_t room, got;
	bool direct;
	int rc;

	uiommu_stream_recv_direct(r, &buf, &room);
	direct = room >= DIRECT_MIN;
	rc = uiommu_xport_read(x, direct ? buf : r->stage, direct ? room : STAGE_BYTES, &got);
	if (rc)
		return recv_fail(r, rc, "transport: %s %s (offset %llu)", errno_text(rc), where(r),
				 (unsigned long long)r->offset);
	if (!got)
		return recv_fail(r, -ECONNRESET, "the peer closed the stream %s (offset %llu)",
				 where(r), (unsigned long long)r->offset);
	return direct ? uiommu_stream_recv_commit(r, got) : uiommu_stream_recv_feed(r, r->stage, got);
}

UIOMMU_EXPORT int uiommu_stream_recv_run(struct uiommu_stream_receiver *r,
					 struct uiommu_xport *x)
{
	if (!r->stage) {
		r->stage = uiommu__zalloc(STAGE_BYTES);
		if (!r->stage)
			return -ENOMEM;
	}
	while (r->mode != RM_DONE && r->mode != RM_FAILED) {
		if (read_step(r, x))
			break;
	}
	return r->err.code;
}

UIOMMU_EXPORT void uiommu_stream_recv_get_result(const struct uiommu_stream_receiver *r,
						 struct uiommu_stream_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = r->err.code;
	res->offset = r->err.offset;
	memcpy(res->msg, r->err.msg, sizeof(res->msg));
	res->verify = r->verify;
}

/* ---- Result message ---- */

#define RV_CHECKED 0x1u
#define RV_OK 0x2u
#define RV_DIGEST_MATCH 0x4u
#define RV_PAGES_COMPARED 0x8u

static uint32_t verify_flags(const struct uiommu_stream_verify *v)
{
	return (v->checked ? RV_CHECKED : 0) | (v->ok ? RV_OK : 0) |
	       (v->digest_match ? RV_DIGEST_MATCH : 0) |
	       (v->pages_compared ? RV_PAGES_COMPARED : 0);
}

UIOMMU_EXPORT int uiommu_stream_result_send(struct uiommu_xport *x,
					    const struct uiommu_stream_result *res)
{
	uint8_t b[MS_RESULT_LEN] = { 0 };
	const struct uiommu_stream_verify *v = &res->verify;
	unsigned int nr_bad = (unsigned int)u64_min(v->nr_bad, UIOMMU_STREAM_MAX_BAD);

	if (res->status > 0 || res->status < -4095)
		return -EINVAL;
	memcpy(b, MS_RESULT_MAGIC, MS_MAGIC_LEN);
	put_le32(b + 8, MS_VERSION);
	put_le32(b + 16, (uint32_t)-res->status);
	put_le32(b + 20, verify_flags(v));
	put_le64(b + 24, v->pages);
	put_le64(b + 32, v->mismatched);
	put_le32(b + 40, nr_bad);
	for (unsigned int i = 0; i < nr_bad; i++)
		put_le64(b + 48 + 8 * i, v->bad_gpa[i]);
	put_le64(b + 176, res->offset);
	memcpy(b + MS_RESULT_MSG_OFF, res->msg, strnlen(res->msg, UIOMMU_STREAM_MSG_MAX - 1));
	put_le64(b + MS_RESULT_LEN - 8, uiommu__hash(b, MS_RESULT_LEN - 8));
	return uiommu_xport_write(x, b, sizeof(b));
}

static int result_check(const uint8_t *b)
{
	uint32_t status = get_le32(b + 16), flags = get_le32(b + 20);

	if (memcmp(b, MS_RESULT_MAGIC, MS_MAGIC_LEN) ||
	    get_le64(b + MS_RESULT_LEN - 8) != uiommu__hash(b, MS_RESULT_LEN - 8))
		return -EBADMSG;
	if (get_le32(b + 8) != MS_VERSION || get_le32(b + 12) || get_le32(b + 44))
		return -EBADMSG;
	if (status > 4095 || flags & ~(RV_CHECKED | RV_OK | RV_DIGEST_MATCH | RV_PAGES_COMPARED))
		return -EBADMSG;
	if (get_le32(b + 40) > UIOMMU_STREAM_MAX_BAD || b[MS_RESULT_LEN - 9])
		return -EBADMSG;
	return 0;
}

static void result_decode(const uint8_t *b, struct uiommu_stream_result *res)
{
	struct uiommu_stream_verify *v = &res->verify;
	uint32_t flags = get_le32(b + 20);

	memset(res, 0, sizeof(*res));
	res->status = -(int)get_le32(b + 16);
	v->checked = flags & RV_CHECKED;
	v->ok = flags & RV_OK;
	v->digest_match = flags & RV_DIGEST_MATCH;
	v->pages_compared = flags & RV_PAGES_COMPARED;
	v->pages = get_le64(b + 24);
	v->mismatched = get_le64(b + 32);
	v->nr_bad = get_le32(b + 40);
	for (unsigned int i = 0; i < v->nr_bad; i++)
		v->bad_gpa[i] = get_le64(b + 48 + 8 * i);
	res->offset = get_le64(b + 176);
	memcpy(res->msg, b + MS_RESULT_MSG_OFF, UIOMMU_STREAM_MSG_MAX);
	res->msg[UIOMMU_STREAM_MSG_MAX - 1] = '\0';
}

int ms_result_parse(const uint8_t *b, struct uiommu_stream_result *res)
{
	int rc = result_check(b);

	if (!rc)
		result_decode(b, res);
	return rc;
}

UIOMMU_EXPORT int uiommu_stream_result_recv(struct uiommu_xport *x,
					    struct uiommu_stream_result *res)
{
	uint8_t b[MS_RESULT_LEN];
	int rc = uiommu_xport_read_full(x, b, sizeof(b));

	return rc ? rc : ms_result_parse(b, res);
}
