// SPDX-License-Identifier: MIT
/*
 * The records the emulated DMA device writes into guest memory, and where
 * block writes go.
 *
 * A record is a 40-byte header (struct dmadev_rec) and a payload. The header
 * says what the record is: kind (packet or block page), device sequence
 * number, length, index in its pattern (packet number, block-write number),
 * part and part count (a block write of n pages is n records, one per page).
 * Its last word is a checksum of the four words before it, keyed by the
 * device's seed: h = seed-derived constant; h = mix(h ^ word) for each word.
 * mix is a bijection, so any change confined to one word changes the
 * checksum, and a record of a device with another seed does not check.
 *
 * The payload is a pure function of the header: word j is base + j * G, with
 * base a mix of (seed, kind, seq, part) and G the golden-ratio constant; a
 * trailing partial word takes the low bytes of the next word. So every byte
 * of a record can be checked without storing anything, and a torn record
 * (header of one write, payload bytes of another) does not check.
 *
 * Placement of block write number w is a pure function of (seed, w): a
 * counter-based generator, whose whole state is the counter. Page count
 * 1..16, first page uniform among those where the write fits. Verification
 * replays it to learn which write each page saw last.
 *
 * Example: seed 7, block write 12 of 3 pages at block page 100 with seq 40:
 * pages 100, 101, 102 each start with a header {UDMR, BLOCK, part 0/1/2,
 * len 4096, nparts 3, seq 40, index 12, check} and 4056 payload bytes.
 */
#include <string.h>

#include "vm/dmadev_internal.h"

#define GOLDEN 0x9e3779b97f4a7c15ull
#define CHECK_KEY 0x5d1ec7ab1e5eedull
#define PLACE_KEY 0xb10cb10cb10cull
#define MIXED_KEY 0x313eda313edaull

void dmadev_block_place(uint64_t seed, uint64_t w, uint64_t block_pages, uint64_t *first,
			uint64_t *npages)
{
	uint64_t h = dmadev_mix(seed ^ dmadev_mix(w + PLACE_KEY));
	uint64_t n = 1 + (h & (DMADEV_BLOCK_MAX_PAGES - 1));

	*npages = n;
	*first = dmadev_mix(h + GOLDEN) % (block_pages - n + 1);
}

bool dmadev_mixed_is_block(uint64_t seed, uint64_t seq)
{
	return (dmadev_mix(seed ^ dmadev_mix(seq + MIXED_KEY)) & 7) == 0;
}

static uint64_t rec_checksum(const struct dmadev_rec *r, uint64_t seed)
{
	uint64_t w[4], h = dmadev_mix(seed ^ CHECK_KEY);

	memcpy(w, r, sizeof(w));
	for (int i = 0; i < 4; i++)
		h = dmadev_mix(h ^ w[i]);
	return h;
}

static uint64_t payload_base(const struct dmadev_rec *r, uint64_t seed)
{
	return dmadev_mix(seed ^ dmadev_mix(r->seq ^ ((uint64_t)r->kind << 56) ^
					    ((uint64_t)r->part << 40)));
}

static void payload_fill(uint8_t *p, uint64_t bytes, uint64_t base)
{
	uint64_t j, v;

	for (j = 0; j < bytes / 8; j++) {
		v = base + j * GOLDEN;
		memcpy(p + j * 8, &v, 8);
	}
	v = base + j * GOLDEN;
	memcpy(p + j * 8, &v, bytes % 8);
}

static bool payload_matches(const uint8_t *p, uint64_t bytes, uint64_t base)
{
	uint64_t j, v, got;

	for (j = 0; j < bytes / 8; j++) {
		v = base + j * GOLDEN;
		memcpy(&got, p + j * 8, 8);
		if (got != v)
			return false;
	}
	v = base + j * GOLDEN;
	return !memcmp(p + j * 8, &v, bytes % 8);
}

static void rec_put(uint8_t *p, const struct dmadev_write *w, uint32_t part, uint64_t len)
{
	struct dmadev_rec r = {
		.magic = DMADEV_REC_MAGIC,
		.kind = (uint16_t)w->kind,
		.part = (uint16_t)part,
		.len = (uint32_t)len,
		.nparts = w->nparts,
		.seq = w->seq,
		.index = w->index,
	};

	r.check = rec_checksum(&r, w->seed);
	memcpy(p, &r, sizeof(r));
	payload_fill(p + sizeof(r), len - sizeof(r), payload_base(&r, w->seed));
}

void dmadev_rec_build(uint8_t *buf, const struct dmadev_write *w)
{
	if (w->kind == DMADEV_REC_NET) {
		rec_put(buf, w, 0, w->len);
		return;
	}
	for (uint32_t part = 0; part < w->nparts; part++)
		rec_put(buf + part * DMADEV_PAGE, w, part, DMADEV_PAGE);
}

/* The header's own consistency: kind, length, parts. */
static bool rec_header_ok(const struct dmadev_rec *r, uint64_t room)
{
	if (r->magic != DMADEV_REC_MAGIC || r->len > room)
		return false;
	if (r->kind == DMADEV_REC_NET)
		return r->len == DMADEV_PACKET && r->part == 0 && r->nparts == 1;
	if (r->kind == DMADEV_REC_BLOCK)
		return r->len == DMADEV_PAGE && r->nparts >= 1 &&
		       r->nparts <= DMADEV_BLOCK_MAX_PAGES && r->part < r->nparts;
	return false;
}

bool dmadev_rec_check(const uint8_t *p, uint64_t room, uint64_t seed, struct dmadev_rec *rec)
{
	struct dmadev_rec r;

	if (room < sizeof(r))
		return false;
	memcpy(&r, p, sizeof(r));
	if (!rec_header_ok(&r, room) || r.check != rec_checksum(&r, seed))
		return false;
	if (!payload_matches(p + sizeof(r), r.len - sizeof(r), payload_base(&r, seed)))
		return false;
	*rec = r;
	return true;
}
