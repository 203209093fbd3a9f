// SPDX-License-Identifier: MIT
/*
 * The device state stream: what a saving session reads and a resuming one
 * is written, VFIO's opaque migration data for the emulated DMA device.
 *
 * The stream is three sections, in this order: IDENT (the seed and the
 * geometry, which the destination must share; it is the initial data of
 * PRE_COPY), RUN (sequence number, ring position, block-write counter,
 * workload, counters) and END (empty). Each section is a 24-byte header and
 * a payload of little-endian 64-bit words:
 *
 *   u32 magic "UDMS" | u16 version (1) | u16 type | u32 payload bytes |
 *   u32 reserved (0) | u64 checksum of the header's first 16 bytes and of
 *   the payload (h = mix(h ^ word) word by word, mix a bijection)
 *
 * The input is untrusted: the header is checked before its payload is
 * looked at (magic, version, type in order, exact payload length for the
 * version, reserved zero), then the checksum, then every field: the geometry
 * must equal the receiver's, the workload must be one the device accepts, and
 * the counters must be consistent (seq = packets + block writes; bytes and
 * pages follow from the packet count and the block pages written). Any
 * failure is -EINVAL. A change confined to one word of a section always
 * fails the checksum; random damage elsewhere fails the header checks.
 *
 * Worked sizes: IDENT 24 + 64, RUN 24 + 80, END 24: 216 bytes in all.
 */
#include <errno.h>
#include <string.h>

#include "vm/dmadev_internal.h"

#define SECT_MAGIC 0x534d4455u /* "UDMS" */
#define SECT_VERSION 1
#define SECT_HDR 24
#define SECT_KEY 0xd3adb10bull
#define IDENT_WORDS 8
#define RUN_WORDS 10
#define MAX_COUNT (1ull << 48) /* more writes than a device can make */

enum sect_type { SECT_IDENT = 1, SECT_RUN = 2, SECT_END = 3 };

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint64_t dmadev_stream_checksum(const uint8_t *sect, size_t words)
{
	uint64_t h = dmadev_mix(SECT_KEY);

	for (size_t i = 0; i < 2 + words; i++)
		h = dmadev_mix(h ^ get_le64(sect + (i < 2 ? i * 8 : SECT_HDR + (i - 2) * 8)));
	return h;
}

static void sect_put(uint8_t *p, enum sect_type type, const uint64_t *words, size_t n)
{
	put_le32(p, SECT_MAGIC);
	p[4] = SECT_VERSION & 0xff;
	p[5] = SECT_VERSION >> 8;
	p[6] = (uint8_t)type;
	p[7] = 0;
	put_le32(p + 8, (uint32_t)(n * 8));
	put_le32(p + 12, 0);
	for (size_t i = 0; i < n; i++)
		put_le64(p + SECT_HDR + i * 8, words[i]);
	put_le64(p + 16, dmadev_stream_checksum(p, n));
}

size_t dmadev_stream_ident_len(void)
{
	return SECT_HDR + IDENT_WORDS * 8;
}

size_t dmadev_stream_tail_len(void)
{
	return SECT_HDR + RUN_WORDS * 8 + SECT_HDR;
}

void dmadev_stream_put_ident(uint8_t *buf, const struct dmadev_ident *id)
{
	const uint64_t w[IDENT_WORDS] = {
		id->seed,	 id->dma_gpa,	id->dma_bytes,		 id->ring_bytes,
		DMADEV_SLOT,	 DMADEV_PACKET, UIOMMU_DMADEV_BLOCK_MIN, UIOMMU_DMADEV_BLOCK_MAX,
	};

	sect_put(buf, SECT_IDENT, w, IDENT_WORDS);
}

void dmadev_stream_put_tail(uint8_t *buf, const struct dmadev_run *r)
{
	const uint64_t w[RUN_WORDS] = {
		r->seq,		 r->net_count, r->block_count, r->pattern, r->rate_bps,
		r->throttle_ppm, r->bytes,     r->pages,       r->stall_ns, r->faults,
	};

	sect_put(buf, SECT_RUN, w, RUN_WORDS);
	sect_put(buf + SECT_HDR + RUN_WORDS * 8, SECT_END, NULL, 0);
}

/* ---- parsing ---- */

static size_t sect_words(enum sect_type type)
{
	return type == SECT_IDENT ? IDENT_WORDS : type == SECT_RUN ? RUN_WORDS : 0;
}

/* The type that must come next, or 0 after END. */
static uint16_t sect_expected(const struct dmadev_image *img)
{
	if (!img->has_ident)
		return SECT_IDENT;
	if (!img->has_run)
		return SECT_RUN;
	return img->has_end ? 0 : SECT_END;
}

static int sect_header_check(const uint8_t *p, const struct dmadev_image *img)
{
	uint16_t version = (uint16_t)(p[4] | p[5] << 8);
	uint16_t type = (uint16_t)(p[6] | p[7] << 8);

	if (get_le32(p) != SECT_MAGIC || version != SECT_VERSION)
		return -EINVAL;
	if (!type || type != sect_expected(img) || get_le32(p + 12))
		return -EINVAL;
	if (get_le32(p + 8) != sect_words(type) * 8)
		return -EINVAL;
	return 0;
}

static int ident_take(const uint8_t *w, const struct dmadev_ident *self, struct dmadev_ident *id)
{
	id->seed = get_le64(w);
	id->dma_gpa = get_le64(w + 8);
	id->dma_bytes = get_le64(w + 16);
	id->ring_bytes = get_le64(w + 24);
	if (id->dma_gpa != self->dma_gpa || id->dma_bytes != self->dma_bytes ||
	    id->ring_bytes != self->ring_bytes)
		return -EINVAL;
	if (get_le64(w + 32) != DMADEV_SLOT || get_le64(w + 40) != DMADEV_PACKET ||
	    get_le64(w + 48) != UIOMMU_DMADEV_BLOCK_MIN ||
	    get_le64(w + 56) != UIOMMU_DMADEV_BLOCK_MAX)
		return -EINVAL;
	return 0;
}

/* Counters must be what the writes they count imply. */
static int run_check(const struct dmadev_run *r)
{
	uint64_t block_pages;

	if (r->pattern > UIOMMU_DMADEV_MIXED || r->rate_bps > UIOMMU_DMADEV_MAX_RATE ||
	    r->throttle_ppm >= 1000000)
		return -EINVAL;
	if (r->net_count >= MAX_COUNT || r->block_count >= MAX_COUNT ||
	    r->seq != r->net_count + r->block_count)
		return -EINVAL;
	if (r->pages < r->net_count || r->pages - r->net_count > MAX_COUNT)
		return -EINVAL;
	block_pages = r->pages - r->net_count;
	if (block_pages < r->block_count || block_pages > r->block_count * DMADEV_BLOCK_MAX_PAGES)
		return -EINVAL;
	if (r->bytes != r->net_count * DMADEV_PACKET + block_pages * DMADEV_PAGE)
		return -EINVAL;
	return 0;
}

static int run_take(const uint8_t *w, struct dmadev_run *r)
{
	uint64_t *const f[RUN_WORDS] = {
		&r->seq,	  &r->net_count, &r->block_count, &r->pattern,	&r->rate_bps,
		&r->throttle_ppm, &r->bytes,	 &r->pages,	  &r->stall_ns, &r->faults,
	};

	for (int i = 0; i < RUN_WORDS; i++)
		*f[i] = get_le64(w + i * 8);
	return run_check(r);
}

static int sect_take(const uint8_t *p, const struct dmadev_ident *self, struct dmadev_image *img)
{
	uint16_t type = p[6];
	int ret = 0;

	if (get_le64(p + 16) != dmadev_stream_checksum(p, sect_words(type)))
		return -EINVAL;
	if (type == SECT_IDENT)
		ret = ident_take(p + SECT_HDR, self, &img->ident);
	else if (type == SECT_RUN)
		ret = run_take(p + SECT_HDR, &img->run);
	if (ret)
		return ret;
	img->has_ident |= type == SECT_IDENT;
	img->has_run |= type == SECT_RUN;
	img->has_end |= type == SECT_END;
	return 0;
}

int dmadev_stream_parse(const uint8_t *buf, size_t len, const struct dmadev_ident *self,
			struct dmadev_image *img)
{
	size_t off = 0, size;
	int ret;

	memset(img, 0, sizeof(*img));
	while (len - off >= SECT_HDR) {
		ret = sect_header_check(buf + off, img);
		if (ret)
			return ret;
		size = SECT_HDR + get_le32(buf + off + 8);
		if (len - off < size)
			return 0;
		ret = sect_take(buf + off, self, img);
		if (ret)
			return ret;
		off += size;
	}
	/* Bytes after END can never become a section. */
	return off < len && img->has_end ? -EINVAL : 0;
}
