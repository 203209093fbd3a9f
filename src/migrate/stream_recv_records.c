// SPDX-License-Identifier: MIT
/*
 * The receiver's other records: ROUND, DEVICE, VCPUS, SWITCHOVER, HASHES
 * and END (format: doc/stream-format.md).
 *
 * Each handler runs once the whole payload is collected (its length was
 * bounded by the record header), verifies the record check first, then the
 * fields, and only then changes state or calls the event handler.
 *
 * Cross-checks: a ROUND carries the source's count of data pages, zero
 * pages and stream bytes since the previous ROUND (or the header); they must
 * equal what was parsed, so a batch lost or duplicated between the two ends
 * is caught at the round it belongs to. SWITCHOVER carries the totals; END
 * carries the layout's page count and the stream length before it.
 *
 * Verification. HASHES records carry the source's page hashes in layout
 * order, with no gap; each is compared with the hash of what this side
 * holds (kept up to date as pages were written), the mismatches counted and
 * the first UIOMMU_STREAM_MAX_BAD named by GPA, and the received hashes are
 * folded into a digest. END carries the source's digest: it must equal the
 * digest of the received hashes (else the stream is inconsistent: -EBADMSG),
 * and it is compared with the digest of our own hashes. The result is ok
 * when the digests match and no page differs.
 */
#include <errno.h>
#include <stdlib.h>

#include "migrate/migrate_internal.h"

/* ---- ROUND ---- */

static int check_count(struct uiommu_stream_receiver *r, uint32_t round, const char *what,
		       uint64_t said, uint64_t seen)
{
	if (said == seen)
		return 0;
	return recv_fail(r, -EBADMSG, "ROUND %u: the source counted %llu %s, the stream held %llu",
			 round, (unsigned long long)said, what, (unsigned long long)seen);
}

int recv_round_full(struct uiommu_stream_receiver *r)
{
	const uint8_t *p = r->meta;
	struct uiommu_stream_event ev = { .type = UIOMMU_STREAM_EV_ROUND };
	struct uiommu_stream_round *rd = &ev.round;

	if (recv_check_record(r, p, MS_ROUND_LEN))
		return r->err.code;
	rd->round = get_le32(p);
	if (get_le32(p + 4))
		return recv_fail(r, -EOPNOTSUPP, "ROUND: unknown flags 0x%x", get_le32(p + 4));
	if (r->any_round && rd->round <= r->last_round)
		return recv_fail(r, -EPROTO, "ROUND %u after round %u", rd->round, r->last_round);
	rd->data_pages = get_le64(p + 8);
	rd->zero_pages = get_le64(p + 16);
	rd->bytes = get_le64(p + 24);
	rd->duration_ns = get_le64(p + 32);
	rd->remaining_pages = get_le64(p + 40);
	if (check_count(r, rd->round, "data pages", rd->data_pages, r->round_data) ||
	    check_count(r, rd->round, "zero pages", rd->zero_pages, r->round_zero) ||
	    check_count(r, rd->round, "bytes", rd->bytes, r->rec_offset - r->round_mark))
		return r->err.code;
	r->any_round = true;
	r->last_round = rd->round;
	r->round_data = r->round_zero = 0;
	r->round_mark = r->offset;
	r->st.rounds++;
	if (recv_event(r, &ev))
		return r->err.code;
	recv_next_record(r);
	return 0;
}

/* ---- DEVICE and VCPUS ---- */

static int check_name(struct uiommu_stream_receiver *r, const uint8_t *name, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		if (name[i] <= ' ' || name[i] > '~')
			return recv_fail(r, -EBADMSG, "DEVICE: name byte %u is 0x%02x", i, name[i]);
	}
	return 0;
}

static int check_device(struct uiommu_stream_receiver *r, uint32_t id, uint32_t nlen)
{
	if (!nlen || nlen > UIOMMU_STREAM_NAME_MAX || MS_DEVICE_PREFIX + nlen > r->rec_len)
		return recv_fail(r, -EBADMSG, "DEVICE %u: name length %u", id, nlen);
	if (check_name(r, r->payload + MS_DEVICE_PREFIX, nlen))
		return r->err.code;
	for (unsigned int i = 0; i < r->nr_devs; i++) {
		if (r->devs[i].id == id)
			return recv_fail(r, -EBADMSG, "DEVICE %u: sent twice", id);
	}
	if (r->nr_devs == r->cfg.max_devices)
		return recv_fail(r, -EMSGSIZE, "DEVICE %u: more than %u devices", id,
				 r->cfg.max_devices);
	if (!r->devs)
		r->devs = uiommu__calloc(r->cfg.max_devices, sizeof(*r->devs));
	if (!r->devs)
		return recv_fail(r, -ENOMEM, "DEVICE %u: no memory", id);
	return 0;
}

static void device_of(const struct recv_device *d, struct uiommu_stream_device *out)
{
	out->id = d->id;
	memcpy(out->name, d->name, sizeof(out->name));
	out->blob = d->payload + d->blob_off;
	out->len = d->len;
}

int recv_device_full(struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_event ev = { .type = UIOMMU_STREAM_EV_DEVICE };
	uint32_t id, nlen;
	struct recv_device *d;

	if (recv_check_record(r, r->payload, r->rec_len))
		return r->err.code;
	id = get_le32(r->payload);
	nlen = get_le32(r->payload + 4);
	if (check_device(r, id, nlen))
		return r->err.code;
	d = &r->devs[r->nr_devs++];
	d->id = id;
	memcpy(d->name, r->payload + MS_DEVICE_PREFIX, nlen);
	d->name[nlen] = '\0';
	d->payload = r->payload;
	d->blob_off = MS_DEVICE_PREFIX + nlen;
	d->len = r->rec_len - d->blob_off;
	r->payload = NULL;
	device_of(d, &ev.device);
	if (recv_event(r, &ev))
		return r->err.code;
	recv_next_record(r);
	return 0;
}

int recv_vcpus_full(struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_event ev = { .type = UIOMMU_STREAM_EV_VCPUS };

	if (recv_check_record(r, r->payload, r->rec_len))
		return r->err.code;
	if (r->have_vcpus)
		return recv_fail(r, -EBADMSG, "VCPUS: sent twice");
	r->vcpus = r->payload;
	r->vcpus_len = r->rec_len;
	r->have_vcpus = true;
	r->payload = NULL;
	ev.vcpus.blob = r->vcpus;
	ev.vcpus.len = r->vcpus_len;
	if (recv_event(r, &ev))
		return r->err.code;
	recv_next_record(r);
	return 0;
}

void recv_records_fini(struct uiommu_stream_receiver *r)
{
	for (unsigned int i = 0; i < r->nr_devs; i++)
		free(r->devs[i].payload);
	uiommu__free(r->devs);
	free(r->vcpus);
}

UIOMMU_EXPORT int uiommu_stream_recv_vcpus(const struct uiommu_stream_receiver *r,
					   const void **blob, uint64_t *len)
{
	if (!r->have_vcpus)
		return -ENOENT;
	*blob = r->vcpus;
	*len = r->vcpus_len;
	return 0;
}

UIOMMU_EXPORT int uiommu_stream_recv_device(const struct uiommu_stream_receiver *r,
					    unsigned int idx, struct uiommu_stream_device *dev)
{
	if (idx >= r->nr_devs)
		return -ENOENT;
	device_of(&r->devs[idx], dev);
	return 0;
}

/* ---- SWITCHOVER ---- */

int recv_switchover_full(struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_event ev = { .type = UIOMMU_STREAM_EV_SWITCHOVER };
	uint64_t data, zero;

	if (recv_check_record(r, r->meta, MS_SWITCHOVER_LEN))
		return r->err.code;
	data = get_le64(r->meta);
	zero = get_le64(r->meta + 8);
	if (data != r->total_data || zero != r->total_zero)
		return recv_fail(r, -EBADMSG,
				 "SWITCHOVER: the source sent %llu data and %llu zero pages, "
				 "the stream held %llu and %llu",
				 (unsigned long long)data, (unsigned long long)zero,
				 (unsigned long long)r->total_data,
				 (unsigned long long)r->total_zero);
	r->phase = RP_SWITCHED;
	ms_hasher_reset(&r->src_digest);
	if (recv_event(r, &ev))
		return r->err.code;
	recv_next_record(r);
	return 0;
}

/* ---- HASHES ---- */

static uint64_t index_gpa(struct uiommu_stream_receiver *r, uint64_t idx)
{
	const struct ms_layout *lay = &r->lay;

	while (r->hash_range + 1 < (int)lay->nr && lay->r[r->hash_range + 1].first_index <= idx)
		r->hash_range++;
	return lay->r[r->hash_range].gpa +
	       ((idx - lay->r[r->hash_range].first_index) << lay->page_shift);
}

static void compare_hashes(struct uiommu_stream_receiver *r, const uint8_t *src, uint64_t first,
			   uint32_t n)
{
	struct uiommu_stream_verify *v = &r->verify;

	for (uint32_t i = 0; i < n; i++) {
		if (get_le64(src + 8ull * i) == r->hashes[first + i])
			continue;
		v->mismatched++;
		if (v->nr_bad < UIOMMU_STREAM_MAX_BAD)
			v->bad_gpa[v->nr_bad++] = index_gpa(r, first + i);
	}
	ms_hasher_update(&r->src_digest, src, 8ull * n);
}

int recv_hashes_full(struct uiommu_stream_receiver *r)
{
	uint64_t first;
	uint32_t n;

	if (recv_check_record(r, r->meta, r->rec_len))
		return r->err.code;
	first = get_le64(r->meta);
	n = get_le32(r->meta + 8);
	if (get_le32(r->meta + 12))
		return recv_fail(r, -EOPNOTSUPP, "HASHES: reserved field 0x%x",
				 get_le32(r->meta + 12));
	if (n != (r->rec_len - MS_HASHES_HDR) / 8)
		return recv_fail(r, -EBADMSG, "HASHES: %u hashes in %llu bytes", n,
				 (unsigned long long)r->rec_len);
	if (first != r->next_hash)
		return recv_fail(r, -EPROTO, "HASHES: from page %llu, expected %llu",
				 (unsigned long long)first, (unsigned long long)r->next_hash);
	if (n > r->lay.pages - first)
		return recv_fail(r, -ERANGE, "HASHES: %u hashes from page %llu, past the layout",
				 n, (unsigned long long)first);
	compare_hashes(r, r->meta + MS_HASHES_HDR, first, n);
	r->next_hash += n;
	recv_next_record(r);
	return 0;
}

/* ---- END ---- */

/* XXH3 of our hash array as little-endian u64s. */
static uint64_t own_digest(struct uiommu_stream_receiver *r)
{
	uint8_t le[8 * 512];
	uint64_t i = 0;

	ms_hasher_reset(&r->rec_hash);
	while (i < r->lay.pages) {
		uint64_t n = u64_min(r->lay.pages - i, sizeof(le) / 8);

		for (uint64_t k = 0; k < n; k++)
			put_le64(le + 8 * k, r->hashes[i + k]);
		ms_hasher_update(&r->rec_hash, le, 8 * n);
		i += n;
	}
	return ms_hasher_digest(&r->rec_hash);
}

static int end_check(struct uiommu_stream_receiver *r, uint64_t pages, uint64_t digest,
		     uint64_t bytes)
{
	if (get_le32(r->meta) || get_le32(r->meta + 4))
		return recv_fail(r, -EOPNOTSUPP, "END: unknown flags 0x%x or reserved 0x%x",
				 get_le32(r->meta), get_le32(r->meta + 4));
	if (pages != r->lay.pages || bytes != r->rec_offset)
		return recv_fail(r, -EBADMSG, "END: %llu pages and %llu bytes, expected %llu and %llu",
				 (unsigned long long)pages, (unsigned long long)bytes,
				 (unsigned long long)r->lay.pages,
				 (unsigned long long)r->rec_offset);
	if ((r->caps & MS_CAP_PAGE_HASHES) && r->next_hash != r->lay.pages)
		return recv_fail(r, -EPROTO, "END after %llu of %llu page hashes",
				 (unsigned long long)r->next_hash, (unsigned long long)r->lay.pages);
	if (!(r->caps & MS_CAP_DIGEST) && digest)
		return recv_fail(r, -EBADMSG, "END: a digest in a stream without one");
	if ((r->caps & MS_CAP_PAGE_HASHES) && digest != ms_hasher_digest(&r->src_digest))
		return recv_fail(r, -EBADMSG, "END: the digest does not match the page hashes");
	return 0;
}

int recv_end_full(struct uiommu_stream_receiver *r)
{
	struct uiommu_stream_event ev = { .type = UIOMMU_STREAM_EV_END, .end = &r->verify };
	struct uiommu_stream_verify *v = &r->verify;
	uint64_t digest = get_le64(r->meta + 16);

	if (recv_check_record(r, r->meta, MS_END_LEN) ||
	    end_check(r, get_le64(r->meta + 8), digest, get_le64(r->meta + 24)))
		return r->err.code;
	v->pages = r->lay.pages;
	v->pages_compared = r->caps & MS_CAP_PAGE_HASHES;
	if (r->caps & MS_CAP_DIGEST) {
		uint64_t t0 = uiommu__now_ns();

		v->checked = true;
		v->digest_match = own_digest(r) == digest;
		v->ok = v->digest_match && !v->mismatched;
		r->st.hash_ns += uiommu__now_ns() - t0;
	}
	r->phase = RP_DONE;
	r->mode = RM_DONE;
	return recv_event(r, &ev);
}
