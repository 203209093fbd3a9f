// SPDX-License-Identifier: MIT
/*
 * The destination's "resumed" notice (doc/stream-format.md "Resumed"): 32
 * bytes the destination sends back as soon as the guest runs there, which
 * ends the source's downtime.
 *
 *   0  "UIOMMURD"  8  le32 version (1)  12  le32 reserved (0)
 *  16  le64 resume_ns  24  le64 XXH3 of bytes 0..23
 *
 * A destination that fails at switchover (say, the device refuses its
 * state) sends its 320-byte result instead. Both messages start with an
 * 8-byte magic, so the source reads 32 bytes, and when they begin with the
 * result's magic it reads the rest of the result and reports it
 * (-EREMOTEIO): the source learns why instead of seeing a bad notice.
 */
#include <errno.h>
#include <string.h>

#include "migrate/migrate_internal.h"

UIOMMU_EXPORT int uiommu_stream_resumed_send(struct uiommu_xport *x, uint64_t resume_ns)
{
	uint8_t b[MS_RESUMED_LEN] = { 0 };

	memcpy(b, MS_RESUMED_MAGIC, MS_MAGIC_LEN);
	put_le32(b + 8, MS_VERSION);
	put_le64(b + 16, resume_ns);
	put_le64(b + 24, uiommu__hash(b, 24));
	return uiommu_xport_write(x, b, sizeof(b));
}

static int resumed_check(const uint8_t *b)
{
	if (memcmp(b, MS_RESUMED_MAGIC, MS_MAGIC_LEN) || get_le64(b + 24) != uiommu__hash(b, 24))
		return -EBADMSG;
	if (get_le32(b + 8) != MS_VERSION || get_le32(b + 12))
		return -EBADMSG;
	return 0;
}

/* The first 32 bytes of a result are in @b: read the rest and decode it. */
static int read_result(struct uiommu_xport *x, uint8_t *b, struct uiommu_stream_result *res)
{
	int rc = uiommu_xport_read_full(x, b + MS_RESUMED_LEN, MS_RESULT_LEN - MS_RESUMED_LEN);

	if (!rc)
		rc = ms_result_parse(b, res);
	return rc ? rc : -EREMOTEIO;
}

UIOMMU_EXPORT int uiommu_stream_resumed_recv(struct uiommu_xport *x, uint64_t *resume_ns,
					     struct uiommu_stream_result *res)
{
	uint8_t b[MS_RESULT_LEN];
	int rc = uiommu_xport_read_full(x, b, MS_RESUMED_LEN);

	if (rc)
		return rc;
	if (!memcmp(b, MS_RESULT_MAGIC, MS_MAGIC_LEN))
		return read_result(x, b, res);
	rc = resumed_check(b);
	if (!rc)
		*resume_ns = get_le64(b + 16);
	return rc;
}
