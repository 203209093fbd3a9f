// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpus of fuzz_stream: small valid streams, made by the
 * real sender, that between them reach every record type, raw and zstd
 * batches, every verification mode, several ranges and a larger page size.
 * Every seed fits the fuzz target's 64-page memory and replay's input limit.
 *
 *   gen_stream_corpus <dir>     (the committed seeds are tests/fuzz/corpus/stream)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uiommu/migrate_stream.h>
#include <uiommu/migrate_xport.h>

#define PS 4096u
#define MEM_PAGES 64

struct seed {
	const char *name;
	int zstd_level;
	enum uiommu_stream_verify_mode verify;
	uint32_t page_size;
	unsigned int nr_ranges;
	struct uiommu_stream_range ranges[3];
	unsigned int data_pages; /* pages 1.. of each range hold data, the rest are zero */
	bool text;               /* compressible data */
	unsigned int rounds, devices;
	bool vcpus;
};

static const struct seed seeds[] = {
	{ "raw_mixed", 0, UIOMMU_STREAM_VERIFY_PAGES, 0, 1, { { 0, 16 * PS } }, 2, false, 1, 1,
	  true },
	{ "zstd_text", 1, UIOMMU_STREAM_VERIFY_PAGES, 0, 1, { { 0, 16 * PS } }, 8, true, 2, 2,
	  true },
	{ "three_ranges", 3, UIOMMU_STREAM_VERIFY_PAGES, 0, 3,
	  { { 0, 4 * PS }, { 10 * PS, 8 * PS }, { 60 * PS, 4 * PS } }, 1, true, 2, 0, false },
	{ "digest_only", 1, UIOMMU_STREAM_VERIFY_DIGEST, 0, 1, { { 4 * PS, 32 * PS } }, 3, true,
	  1, 1, true },
	{ "no_verify", 0, UIOMMU_STREAM_VERIFY_NONE, 0, 1, { { 0, 8 * PS } }, 1, false, 1, 0,
	  true },
	{ "zero_only", 0, UIOMMU_STREAM_VERIFY_PAGES, 0, 1, { { 0, 64 * PS } }, 0, false, 3, 0,
	  false },
	{ "page_8k", 1, UIOMMU_STREAM_VERIFY_PAGES, 8192, 1, { { 0, 16 * PS } }, 2, true, 1, 1,
	  true },
	{ "many_devices", 0, UIOMMU_STREAM_VERIFY_PAGES, 0, 1, { { 0, 4 * PS } }, 0, false, 1, 8,
	  true },
};

static void fill(uint8_t *mem, const struct seed *sd, uint32_t ps)
{
	memset(mem, 0, MEM_PAGES * PS);
	for (unsigned int r = 0; r < sd->nr_ranges; r++) {
		for (unsigned int p = 1; p <= sd->data_pages; p++) {
			uint8_t *page = mem + sd->ranges[r].gpa + (uint64_t)p * ps;

			if (sd->ranges[r].gpa + (uint64_t)(p + 1) * ps > sd->ranges[r].gpa +
										 sd->ranges[r].bytes)
				break;
			for (uint32_t i = 0; i < ps; i++)
				page[i] = sd->text ? (uint8_t)("abcdefgh"[(i / 7 + p) % 8])
						   : (uint8_t)(i * 2654435761u >> 13) ^ (uint8_t)p;
		}
	}
}

static int send_state(struct uiommu_stream_sender *s, const struct seed *sd)
{
	static const uint8_t blob[300] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char name[16];
	int rc = 0;

	for (unsigned int d = 0; d < sd->devices && !rc; d++) {
		snprintf(name, sizeof(name), "dev.%u", d);
		rc = uiommu_stream_send_device(s, d + 1, name, blob, 10 + 30 * d);
	}
	if (!rc && sd->vcpus)
		rc = uiommu_stream_send_vcpus(s, blob, sizeof(blob));
	return rc;
}

static int send_seed(struct uiommu_stream_sender *s, const struct seed *sd, uint8_t *mem)
{
	int rc = uiommu_stream_send_header(s);

	for (unsigned int r = 1; r <= sd->rounds && !rc; r++) {
		for (unsigned int i = 0; i < sd->nr_ranges && !rc; i++)
			rc = uiommu_stream_send_range(s, sd->ranges[i].gpa, sd->ranges[i].bytes);
		if (!rc)
			rc = uiommu_stream_send_round(s, r, 1000 * r, 0);
		mem[sd->ranges[0].gpa + 100] ^= 1; /* a change the next round resends */
	}
	if (!rc)
		rc = send_state(s, sd);
	if (!rc)
		rc = uiommu_stream_send_switchover(s);
	if (!rc)
		rc = uiommu_stream_send_end(s);
	return rc;
}

static int write_seed(const char *dir, const struct seed *sd, uint8_t *mem)
{
	struct uiommu_stream_send_cfg cfg = {
		.mem = mem, .mem_bytes = MEM_PAGES * PS, .page_size = sd->page_size,
		.ranges = sd->ranges, .nr_ranges = sd->nr_ranges, .zstd_level = sd->zstd_level,
		.verify = sd->verify,
	};
	struct uiommu_stream_sender *s;
	struct uiommu_xport *x;
	const void *data;
	char path[4096];
	size_t len;
	FILE *f;
	int rc;

	fill(mem, sd, sd->page_size ? sd->page_size : PS);
	rc = uiommu_xport_mem_create(NULL, 0, &x);
	if (rc)
		return rc;
	cfg.xport = x;
	rc = uiommu_stream_sender_create(&cfg, &s);
	if (!rc) {
		rc = send_seed(s, sd, mem);
		uiommu_stream_sender_destroy(s);
	}
	if (!rc)
		rc = uiommu_xport_mem_data(x, &data, &len);
	snprintf(path, sizeof(path), "%s/%s.bin", dir, sd->name);
	f = rc ? NULL : fopen(path, "wb");
	if (f) {
		rc = fwrite(data, 1, len, f) == len ? 0 : -EIO;
		fclose(f);
		printf("%s: %zu bytes\n", path, len);
	}
	uiommu_xport_destroy(x);
	return rc ? rc : (f ? 0 : -EIO);
}

int main(int argc, char **argv)
{
	uint8_t *mem = aligned_alloc(PS, MEM_PAGES * PS);

	if (argc != 2 || !mem) {
		fprintf(stderr, "usage: %s <dir>\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		int rc = write_seed(argv[1], &seeds[i], mem);

		if (rc) {
			fprintf(stderr, "gen_stream_corpus: %s: %s\n", seeds[i].name, strerror(-rc));
			return 1;
		}
	}
	free(mem);
	return 0;
}
