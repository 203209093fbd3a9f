/* SPDX-License-Identifier: MIT */
/*
 * Scaffolding of the stream tests: guest memory between guard pages (so that
 * a write outside it faults even where ASan does not look, mmap memory), page
 * patterns, a scripted source that sends every section of a stream, and a
 * destination that records the events it sees.
 *
 * The script: header; round 1 sends every layout page; rounds 2.. dirty a
 * random subset (some pages turned to zero, some rewritten) and send it by
 * bitmap; devices and vCPUs; switchover; end. Optionally one page is changed
 * after its last send and not resent: the lost page a verification must name.
 */
#ifndef UIOMMU_STREAM_TEST_H
#define UIOMMU_STREAM_TEST_H

#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <uiommu/bitmap.h>
#include <uiommu/migrate_stream.h>
#include <uiommu/migrate_xport.h>

#include "seeded.h"

#define PS 4096ull

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct guest {
	uint8_t *mem;
	uint64_t bytes;
	uint8_t *map;
	size_t map_len;
};

static inline void guest_alloc(struct guest *g, uint64_t bytes)
{
	g->map_len = bytes + 2 * PS;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	assert_int_equal(mprotect(g->map, PS, PROT_NONE), 0);
	assert_int_equal(mprotect(g->map + PS + bytes, PS, PROT_NONE), 0);
	g->mem = g->map + PS;
	g->bytes = bytes;
}

static inline void guest_free(struct guest *g)
{
	if (g->map)
		munmap(g->map, g->map_len);
	g->map = NULL;
}

enum pattern { PAT_RANDOM, PAT_ZERO, PAT_MIXED, PAT_TEXT };

/* Mixed: a third zero, a third random, a third compressible text. */
static inline void fill_page(uint8_t *page, enum pattern pat, uint64_t n)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog, page ";

	if (pat == PAT_MIXED)
		pat = (enum pattern)(n % 3 == 0 ? PAT_ZERO : n % 3 == 1 ? PAT_RANDOM : PAT_TEXT);
	if (pat == PAT_ZERO) {
		memset(page, 0, PS);
	} else if (pat == PAT_RANDOM) {
		fill_random(page, PS);
	} else {
		for (size_t i = 0; i < PS; i++)
			page[i] = (uint8_t)words[(i + n) % (sizeof(words) - 1)];
		memcpy(page, &n, sizeof(n));
	}
}

static inline void fill_guest(struct guest *g, enum pattern pat)
{
	for (uint64_t p = 0; p < g->bytes / PS; p++)
		fill_page(g->mem + p * PS, pat, p);
}

struct script {
	int zstd_level;
	enum uiommu_stream_verify_mode verify;
	unsigned int nr_ranges; /* 0: the whole memory */
	struct uiommu_stream_range ranges[4];
	unsigned int rounds;    /* >= 1 */
	unsigned int dirty_pct; /* of layout pages, rounds 2.. */
	unsigned int devices;
	uint64_t device_bytes;
	bool vcpus;
	uint64_t lose_gpa; /* UINT64_MAX: none */
	uint64_t seed;
	/* results */
	int rc;
	struct uiommu_stream_stats st;
	struct uiommu_stream_result result; /* with want_result */
	bool want_result;
	int result_rc;
};

static inline void script_init(struct script *s)
{
	memset(s, 0, sizeof(*s));
	s->rounds = 3;
	s->dirty_pct = 10;
	s->devices = 2;
	s->device_bytes = 5000;
	s->vcpus = true;
	s->lose_gpa = UINT64_MAX;
}

static inline bool in_script_layout(const struct script *s, uint64_t gpa)
{
	if (!s->nr_ranges)
		return true;
	for (unsigned int i = 0; i < s->nr_ranges; i++) {
		if (gpa >= s->ranges[i].gpa && gpa < s->ranges[i].gpa + s->ranges[i].bytes)
			return true;
	}
	return false;
}

static inline void blob_fill(uint8_t *b, uint64_t len, uint64_t tag)
{
	for (uint64_t i = 0; i < len; i++)
		b[i] = (uint8_t)(tag * 31 + i * 7);
}

/* Dirties a random subset of the layout: some pages zeroed, some rewritten. */
static inline int dirty_round(struct uiommu_stream_sender *snd, const struct script *s,
			      struct guest *g, uint64_t *rng, uint64_t *bitmap)
{
	uint64_t npages = g->bytes / PS;

	memset(bitmap, 0, uiommu_bitmap_words(npages) * 8);
	for (uint64_t p = 0; p < npages; p++) {
		if (!in_script_layout(s, p * PS) || splitmix64(rng) % 100 >= s->dirty_pct)
			continue;
		uiommu_bitmap_set(bitmap, p);
		if (splitmix64(rng) % 4 == 0)
			memset(g->mem + p * PS, 0, PS);
		else
			g->mem[p * PS + splitmix64(rng) % PS] ^= 0x5a;
	}
	return uiommu_stream_send_pages(snd, bitmap, 0, npages);
}

static inline int send_first_round(struct uiommu_stream_sender *snd, const struct script *s,
				   struct guest *g)
{
	int rc = 0;

	if (!s->nr_ranges)
		return uiommu_stream_send_range(snd, 0, g->bytes);
	for (unsigned int i = 0; i < s->nr_ranges && !rc; i++)
		rc = uiommu_stream_send_range(snd, s->ranges[i].gpa, s->ranges[i].bytes);
	return rc;
}

static inline int send_state(struct uiommu_stream_sender *snd, const struct script *s)
{
	uint8_t *blob = malloc(s->device_bytes + 64);
	char name[32];
	int rc = 0;

	for (unsigned int d = 0; d < s->devices && !rc; d++) {
		blob_fill(blob, s->device_bytes + d, d);
		snprintf(name, sizeof(name), "dev%u", d);
		rc = uiommu_stream_send_device(snd, 100 + d, name, blob, s->device_bytes + d);
	}
	if (!rc && s->vcpus) {
		blob_fill(blob, 777, 99);
		rc = uiommu_stream_send_vcpus(snd, blob, 777);
	}
	free(blob);
	return rc;
}

static inline int script_body(struct uiommu_stream_sender *snd, struct script *s,
			      struct guest *g)
{
	uint64_t rng = s->seed, *bitmap = calloc(uiommu_bitmap_words(g->bytes / PS), 8);
	int rc = uiommu_stream_send_header(snd);

	if (!rc)
		rc = send_first_round(snd, s, g);
	if (!rc)
		rc = uiommu_stream_send_round(snd, 1, 1000, 0);
	for (unsigned int r = 2; r <= s->rounds && !rc; r++) {
		rc = dirty_round(snd, s, g, &rng, bitmap);
		if (!rc)
			rc = uiommu_stream_send_round(snd, r, 1000 * r, r);
	}
	if (!rc)
		rc = send_state(snd, s);
	if (!rc)
		rc = uiommu_stream_send_switchover(snd);
	if (!rc && s->lose_gpa != UINT64_MAX)
		g->mem[s->lose_gpa + 17] ^= 0xff;
	if (!rc)
		rc = uiommu_stream_send_end(snd);
	free(bitmap);
	return rc;
}

/* Runs the script over @x; fills s->rc, s->st (and s->result when asked). */
static inline void run_script(struct script *s, struct guest *g, struct uiommu_xport *x)
{
	struct uiommu_stream_send_cfg cfg = {
		.xport = x, .mem = g->mem, .mem_bytes = g->bytes, .zstd_level = s->zstd_level,
		.verify = s->verify, .ranges = s->nr_ranges ? s->ranges : NULL,
		.nr_ranges = s->nr_ranges,
	};
	struct uiommu_stream_sender *snd;

	s->rc = uiommu_stream_sender_create(&cfg, &snd);
	if (s->rc)
		return;
	s->rc = script_body(snd, s, g);
	uiommu_stream_sender_get_stats(snd, &s->st);
	uiommu_stream_sender_destroy(snd);
	if (!s->rc && s->want_result)
		s->result_rc = uiommu_stream_result_recv(x, &s->result);
}

/* A script on its own thread, over its own transport end. */
struct script_thread {
	pthread_t tid;
	struct script *s;
	struct guest *g;
	struct uiommu_xport *x;
};

static inline void *script_thread_fn(void *arg)
{
	struct script_thread *t = arg;

	run_script(t->s, t->g, t->x);
	return NULL;
}

static inline void script_start(struct script_thread *t, struct script *s, struct guest *g,
				struct uiommu_xport *x)
{
	t->s = s;
	t->g = g;
	t->x = x;
	assert_int_equal(pthread_create(&t->tid, NULL, script_thread_fn, t), 0);
}

/* What the destination saw. */
struct seen {
	unsigned int headers, rounds, devices, vcpus, switchovers, ends;
	uint32_t last_round;
	uint64_t round_data, round_zero;
	bool blobs_ok;
};

static inline int record_event(void *opaque, const struct uiommu_stream_event *ev)
{
	struct seen *sn = opaque;
	uint8_t *want;

	switch (ev->type) {
	case UIOMMU_STREAM_EV_HEADER:
		sn->headers++;
		sn->blobs_ok = true;
		break;
	case UIOMMU_STREAM_EV_ROUND:
		sn->rounds++;
		sn->last_round = ev->round.round;
		sn->round_data += ev->round.data_pages;
		sn->round_zero += ev->round.zero_pages;
		break;
	case UIOMMU_STREAM_EV_DEVICE:
		want = malloc(ev->device.len + 1);
		blob_fill(want, ev->device.len, ev->device.id - 100);
		sn->blobs_ok &= !memcmp(want, ev->device.blob, ev->device.len);
		free(want);
		sn->devices++;
		break;
	case UIOMMU_STREAM_EV_VCPUS:
		sn->vcpus++;
		break;
	case UIOMMU_STREAM_EV_SWITCHOVER:
		sn->switchovers++;
		break;
	case UIOMMU_STREAM_EV_END:
		sn->ends++;
		break;
	}
	return 0;
}

static inline struct uiommu_stream_receiver *receiver_for(struct guest *g, struct seen *sn)
{
	struct uiommu_stream_recv_cfg cfg = {
		.mem = g->mem, .mem_bytes = g->bytes, .on_event = record_event, .opaque = sn,
	};
	struct uiommu_stream_receiver *r;

	memset(sn, 0, sizeof(*sn));
	assert_int_equal(uiommu_stream_receiver_create(&cfg, &r), 0);
	return r;
}

/* Layout pages of @dst equal to @src (pages outside the layout untouched). */
static inline bool same_layout_memory(const struct script *s, const struct guest *src,
				      const struct guest *dst)
{
	for (uint64_t p = 0; p < src->bytes / PS; p++) {
		const uint8_t *want = in_script_layout(s, p * PS) ? src->mem + p * PS : NULL;

		if (want && memcmp(want, dst->mem + p * PS, PS))
			return false;
		if (!want && !uiommu_stream_page_is_zero(dst->mem + p * PS, PS))
			return false;
	}
	return true;
}

/* Captures the script's stream in memory. */
static inline void capture_stream(struct script *s, struct guest *g, uint8_t **data,
				  size_t *len)
{
	struct uiommu_xport *x;
	const void *p;

	assert_int_equal(uiommu_xport_mem_create(NULL, 0, &x), 0);
	run_script(s, g, x);
	assert_int_equal(s->rc, 0);
	assert_int_equal(uiommu_xport_mem_data(x, &p, len), 0);
	*data = malloc(*len);
	memcpy(*data, p, *len);
	uiommu_xport_destroy(x);
}

#endif
