// SPDX-License-Identifier: MIT
/*
 * Replays a libFuzzer target without libFuzzer, so that every build (gcc
 * included) exercises the fuzz targets and their oracles.
 *
 *   replay_<target> [--mutations N] <file or directory>...
 *
 * Each corpus file is fed to LLVMFuzzerTestOneInput() as is, then N random
 * mutations of it (default 200): byte flips, insertions of bytes or of
 * pieces of other corpus files (which act as a dictionary), deletions and
 * duplications of ranges, truncation. The seed comes from UIOMMU_SEED or the
 * clock and is printed, so a failure can be replayed. A target signals a
 * failure by aborting; the run ends with "N passed, 0 failed".
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* Stream seeds carry whole 4 KiB pages, so inputs go up to 64 KiB. */
#define REPLAY_MAX_INPUT 65536
#define MAX_FILES 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	uint8_t *data;
	size_t size;
};

static struct input corpus[MAX_FILES];
static size_t nr_corpus;
static uint64_t rng;

static void load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct input *in = &corpus[nr_corpus];

	if (!f || nr_corpus == MAX_FILES) {
		fprintf(stderr, "replay: cannot load %s\n", path);
		exit(2);
	}
	in->data = malloc(REPLAY_MAX_INPUT);
	in->size = fread(in->data, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	nr_corpus++;
}

static void load_path(const char *path)
{
	char sub[4096];
	struct dirent *e;
	DIR *dir = opendir(path);

	if (!dir) {
		load_file(path);
		return;
	}
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		load_file(sub);
	}
	closedir(dir);
}

static size_t below(size_t n)
{
	return n ? (size_t)(splitmix64(&rng) % n) : 0;
}

/* Inserts a piece of another corpus file at @at. */
static size_t splice(uint8_t *buf, size_t size, size_t at)
{
	const struct input *other = &corpus[below(nr_corpus)];
	size_t from = below(other->size), len = below(16) + 1;

	if (from + len > other->size)
		len = other->size - from;
	if (!len || size + len > REPLAY_MAX_INPUT)
		return size;
	memmove(buf + at + len, buf + at, size - at);
	memcpy(buf + at, other->data + from, len);
	return size + len;
}

static size_t mutate_once(uint8_t *buf, size_t size)
{
	size_t at = below(size + 1), len = below(8) + 1;

	switch (below(6)) {
	case 0:
		if (size)
			buf[below(size)] ^= (uint8_t)(1u << below(8));
		return size;
	case 1:
		if (size >= REPLAY_MAX_INPUT)
			return size;
		memmove(buf + at + 1, buf + at, size - at);
		buf[at] = (uint8_t)splitmix64(&rng);
		return size + 1;
	case 2:
		return splice(buf, size, at);
	case 3:
		if (at + len > size)
			len = size - at;
		memmove(buf + at, buf + at + len, size - at - len);
		return size - len;
	case 4:
		if (at + len > size || size + len > REPLAY_MAX_INPUT)
			return size;
		memmove(buf + at + len, buf + at, size - at);
		return size + len;
	default:
		return at;
	}
}

static size_t run_mutations(const struct input *in, unsigned long count)
{
	static uint8_t buf[REPLAY_MAX_INPUT];
	size_t size;

	for (unsigned long i = 0; i < count; i++) {
		memcpy(buf, in->data, in->size);
		size = in->size;
		for (size_t k = below(4) + 1; k; k--)
			size = mutate_once(buf, size);
		LLVMFuzzerTestOneInput(buf, size);
	}
	return count;
}

int main(int argc, char **argv)
{
	unsigned long mutations = 200;
	uint64_t seed = seed_from_env();
	size_t runs = 0;
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--mutations")) {
		mutations = strtoul(argv[2], NULL, 0);
		i = 3;
	}
	for (; i < argc; i++)
		load_path(argv[i]);
	if (!nr_corpus) {
		fprintf(stderr, "usage: %s [--mutations N] <corpus file or dir>...\n", argv[0]);
		return 2;
	}
	printf("replay: %zu corpus files, %lu mutations each, UIOMMU_SEED=%" PRIu64 "\n",
	       nr_corpus, mutations, seed);
	rng = seed;
	for (size_t k = 0; k < nr_corpus; k++) {
		LLVMFuzzerTestOneInput(corpus[k].data, corpus[k].size);
		runs += 1 + run_mutations(&corpus[k], mutations);
	}
	for (size_t k = 0; k < nr_corpus; k++)
		free(corpus[k].data);
	printf("%zu passed, 0 failed\n", runs);
	return 0;
}
