// SPDX-License-Identifier: MIT
/*
 * Moving the emulated DMA device: save in PRE_COPY/STOP_COPY, load into a
 * second device over a copy of guest memory in RESUMING, RUNNING continues
 * the sequence where the source stopped, and verify passes on both sides.
 *
 * Verification itself: any corrupted byte of the DMA region, a stale ring
 * buffer or page (one that missed the device's last write), a torn page and
 * a record of another device are each found, at the right address.
 *
 * The stream is untrusted input: every truncation, every single-bit flip,
 * random damage, trailing bytes, and sections whose checksum is right but
 * whose fields are not (resealed with the checksum of dmadev_stream.c's
 * format) are refused with -EINVAL, and a refused write changes nothing.
 */
#include "dmadev_test.h"
#include "seeded.h"

#include "vm/dmadev_internal.h"

#define PC UIOMMU_VFIO_STATE_PRE_COPY
#define STREAM_BYTES 216
#define RUN_OFF 88  /* RUN section */
#define END_OFF 192 /* END section */

struct pair {
	uint8_t *src_mem, *dst_mem;
	struct uiommu_dmadev *src, *dst;
	uint8_t stream[STREAM_BYTES];
};

static void read_all(struct uiommu_dmadev *dev, uint8_t *buf, size_t want)
{
	size_t len, got = 0;

	while (!uiommu_dmadev_mig_read(dev, buf + got, want - got + 1, &len) && len)
		got += len;
	assert_int_equal(got, want);
}

/* The source runs @pattern at @rate for @ms, then PRE_COPY, STOP_COPY: the stream. */
static void pair_save(struct pair *p, enum uiommu_dmadev_pattern pattern, uint64_t rate,
		      unsigned int ms)
{
	struct uiommu_dmadev_cfg cfg;
	size_t len;

	p->src_mem = guest_alloc(GUEST_BYTES);
	cfg = std_cfg(p->src_mem, pattern, rate);
	p->src = dev_new(&cfg);
	sleep_ms(ms);
	set_state_ok(p->src, PC);
	assert_int_equal(uiommu_dmadev_mig_read(p->src, p->stream, sizeof(p->stream), &len), 0);
	assert_int_equal(len, RUN_OFF);
	run_until_writes(p->src, 10);
	set_state_ok(p->src, VFIO_DEVICE_STATE_STOP_COPY);
	read_all(p->src, p->stream + RUN_OFF, STREAM_BYTES - RUN_OFF);
	verify_ok(p->src);
}

/* A second device (another seed, idle) over a copy of the memory, RESUMING. */
static void pair_dst(struct pair *p)
{
	struct uiommu_dmadev_cfg cfg;

	p->dst_mem = guest_alloc(GUEST_BYTES);
	memcpy(p->dst_mem, p->src_mem, GUEST_BYTES);
	cfg = std_cfg(p->dst_mem, UIOMMU_DMADEV_IDLE, 0);
	cfg.seed = 0;
	p->dst = dev_new(&cfg);
	set_state_ok(p->dst, VFIO_DEVICE_STATE_RESUMING);
}

static void pair_free(struct pair *p)
{
	uiommu_dmadev_destroy(p->src);
	uiommu_dmadev_destroy(p->dst);
	guest_free(p->src_mem, GUEST_BYTES);
	if (p->dst_mem)
		guest_free(p->dst_mem, GUEST_BYTES);
}

static void migrate_and_continue(enum uiommu_dmadev_pattern pattern, uint64_t rate)
{
	struct pair p = { 0 };
	struct uiommu_dmadev_stats s, d;
	struct dmadev_rec rec;
	uint64_t slot_gpa;

	pair_save(&p, pattern, rate, 100);
	s = stats_of(p.src);
	pair_dst(&p);
	/* As VFIO moves it: the initial data first, the rest later, in pieces. */
	assert_int_equal(uiommu_dmadev_mig_write(p.dst, p.stream, 50), 0);
	assert_int_equal(uiommu_dmadev_mig_write(p.dst, p.stream + 50, RUN_OFF - 50), 0);
	assert_int_equal(uiommu_dmadev_load(p.dst, p.stream + RUN_OFF, STREAM_BYTES - RUN_OFF), 0);
	set_state_ok(p.dst, VFIO_DEVICE_STATE_STOP);
	d = stats_of(p.dst);
	assert_memory_equal(&s, &d, sizeof(s)); /* counters migrate */
	verify_ok(p.dst);                       /* the copy is what the source wrote */
	set_state_ok(p.dst, VFIO_DEVICE_STATE_RUNNING);
	run_until_writes(p.dst, 200);
	set_state_ok(p.dst, VFIO_DEVICE_STATE_STOP);
	verify_ok(p.dst);
	d = stats_of(p.dst);
	print_message("pattern %d: source %llu writes, destination went on to %llu\n", pattern,
		      (unsigned long long)s.writes, (unsigned long long)d.writes);
	if (pattern == UIOMMU_DMADEV_NET) {
		/* The first packet after the move carries the next sequence number. */
		slot_gpa = DMA_GPA + (s.writes % (DMA_BYTES / 4 / UIOMMU_DMADEV_SLOT_BYTES)) *
					     UIOMMU_DMADEV_SLOT_BYTES;
		memcpy(&rec, p.dst_mem + slot_gpa, sizeof(rec));
		assert_true(rec.index >= s.writes && rec.seq >= s.writes);
	}
	pair_free(&p);
}

static void test_dmadev_net_migrates_and_continues_the_sequence(void **state)
{
	(void)state;
	migrate_and_continue(UIOMMU_DMADEV_NET, 0);
	migrate_and_continue(UIOMMU_DMADEV_NET, 20 * MiB);
}

static void test_dmadev_block_migrates_and_continues_the_sequence(void **state)
{
	(void)state;
	migrate_and_continue(UIOMMU_DMADEV_BLOCK, 0);
}

static void test_dmadev_mixed_migrates_and_continues_the_sequence(void **state)
{
	(void)state;
	migrate_and_continue(UIOMMU_DMADEV_MIXED, 50 * MiB);
}

/* ---- verify ---- */

static void expect_bad_at(struct uiommu_dmadev *dev, uint64_t gpa)
{
	struct uiommu_dmadev_verify v;

	assert_int_equal(uiommu_dmadev_verify(dev, &v), 0);
	if (v.bad != 1 || v.first_bad_gpa != gpa)
		fail_msg("want one bad unit at %#llx, got %llu first at %#llx",
			 (unsigned long long)gpa, (unsigned long long)v.bad,
			 (unsigned long long)v.first_bad_gpa);
}

#define SMALL_DMA (2 * MiB) /* verify scans the region: keep it small for 200 scans */
#define SMALL_RING_END (DMA_GPA + SMALL_DMA / 4)
#define BLOCK_PAGES (SMALL_DMA * 3 / 4 / PG)

/* The buffer or page of the small region that holds @gpa. */
static uint64_t unit_of(uint64_t gpa)
{
	return gpa < SMALL_RING_END ? gpa & ~(UIOMMU_DMADEV_SLOT_BYTES - 1) : gpa & ~(PG - 1);
}

static void flip_and_expect(struct uiommu_dmadev *dev, uint8_t *mem, uint64_t gpa, uint8_t mask)
{
	mem[gpa] ^= mask;
	expect_bad_at(dev, unit_of(gpa));
	mem[gpa] ^= mask;
}

static void test_dmadev_verify_finds_any_corrupted_byte(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_MIXED, 10 * MiB);
	struct uiommu_dmadev *dev;
	struct uiommu_dmadev_verify v;
	uint64_t block = SMALL_RING_END, page;

	(void)state;
	seed_rng();
	print_message("UIOMMU_SEED=%llu\n", (unsigned long long)seed);
	cfg.dma_bytes = SMALL_DMA;
	dev = dev_new(&cfg);
	sleep_ms(50);
	assert_int_equal(uiommu_dmadev_verify(dev, &v), -EBUSY);
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	v = verify_ok(dev);
	print_message("%llu records intact\n", (unsigned long long)v.records);
	flip_and_expect(dev, mem, DMA_GPA, 0x01);               /* packet 0: magic */
	flip_and_expect(dev, mem, DMA_GPA + 16, 0x80);          /* its sequence number */
	flip_and_expect(dev, mem, DMA_GPA + 39, 0x01);          /* its checksum */
	flip_and_expect(dev, mem, DMA_GPA + 1499, 0x40);        /* its last payload byte */
	flip_and_expect(dev, mem, DMA_GPA + 1500, 0x01);        /* after the packet */
	flip_and_expect(dev, mem, SMALL_RING_END - 1, 0x01);    /* end of the ring */
	flip_and_expect(dev, mem, DMA_GPA + SMALL_DMA - 1, 0x10); /* end of the region */
	for (page = 0; page < BLOCK_PAGES && mem[block + page * PG] == 0; page++)
		;
	assert_true(page < BLOCK_PAGES);
	flip_and_expect(dev, mem, block + page * PG + 8, 0x02); /* a written page: length */
	flip_and_expect(dev, mem, block + page * PG + 2000, 0x02);
	for (page = 0; page < BLOCK_PAGES && mem[block + page * PG] != 0; page++)
		;
	assert_true(page < BLOCK_PAGES);
	flip_and_expect(dev, mem, block + page * PG + 100, 0x04); /* a page never written */
	for (int i = 0; i < 200; i++)
		flip_and_expect(dev, mem, DMA_GPA + rnd_below(SMALL_DMA), (uint8_t)(1u << rnd_below(8)));
	verify_ok(dev);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
}

/* First unit of [from, to) whose content differs between @a and @b. */
static uint64_t first_changed(const uint8_t *a, const uint8_t *b, uint64_t from, uint64_t to,
			      uint64_t unit)
{
	for (uint64_t g = from; g < to; g += unit)
		if (memcmp(a + g, b + g, unit))
			return g;
	fail_msg("nothing changed in [%#llx, %#llx)", (unsigned long long)from,
		 (unsigned long long)to);
	return 0;
}

/* Content that missed the device's last write, half-written, or another device's. */
static void test_dmadev_verify_finds_stale_torn_and_foreign_content(void **state)
{
	uint8_t *mem = guest_alloc(GUEST_BYTES), *old = guest_alloc(GUEST_BYTES);
	struct uiommu_dmadev_cfg cfg = std_cfg(mem, UIOMMU_DMADEV_MIXED, 20 * MiB);
	struct uiommu_dmadev *dev = dev_new(&cfg);
	uint64_t ring_end = DMA_GPA + DMA_BYTES / 4, g;
	uint8_t keep[PG];

	(void)state;
	run_until_writes(dev, 300);
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	memcpy(old, mem, GUEST_BYTES);
	set_state_ok(dev, VFIO_DEVICE_STATE_RUNNING);
	run_until_writes(dev, 300);
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	verify_ok(dev);
	g = first_changed(mem, old, DMA_GPA, ring_end, UIOMMU_DMADEV_SLOT_BYTES);
	memcpy(keep, mem + g, UIOMMU_DMADEV_SLOT_BYTES);
	memcpy(mem + g, old + g, UIOMMU_DMADEV_SLOT_BYTES); /* a stale buffer */
	expect_bad_at(dev, g);
	memcpy(mem + g, keep, UIOMMU_DMADEV_SLOT_BYTES);
	g = first_changed(mem, old, ring_end, DMA_GPA + DMA_BYTES, PG);
	memcpy(keep, mem + g, PG);
	memcpy(mem + g, old + g, PG); /* a stale page */
	expect_bad_at(dev, g);
	memcpy(mem + g + PG / 2, keep + PG / 2, PG / 2); /* torn: old first half */
	expect_bad_at(dev, g);
	memcpy(mem + g, keep, PG);
	verify_ok(dev);
	uiommu_dmadev_destroy(dev);
	/* Packet 0 of a device with another seed is not this device's packet 0. */
	memset(old, 0, GUEST_BYTES);
	cfg = std_cfg(old, UIOMMU_DMADEV_NET, 0);
	cfg.seed = TEST_SEED + 1;
	dev = dev_new(&cfg);
	run_until_writes(dev, 10);
	uiommu_dmadev_destroy(dev);
	memset(mem, 0, GUEST_BYTES);
	cfg = std_cfg(mem, UIOMMU_DMADEV_NET, 0);
	dev = dev_new(&cfg);
	run_until_writes(dev, 10);
	set_state_ok(dev, VFIO_DEVICE_STATE_STOP);
	verify_ok(dev);
	memcpy(mem + DMA_GPA, old + DMA_GPA, UIOMMU_DMADEV_SLOT_BYTES);
	expect_bad_at(dev, DMA_GPA);
	uiommu_dmadev_destroy(dev);
	guest_free(mem, GUEST_BYTES);
	guest_free(old, GUEST_BYTES);
}

/* ---- malformed streams ---- */

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Recomputes the checksum of the section at @off with @words payload words. */
static void reseal(uint8_t *s, size_t off, size_t words)
{
	uint64_t h = dmadev_mix(0xd3adb10bull);

	h = dmadev_mix(h ^ le64(s + off));
	h = dmadev_mix(h ^ le64(s + off + 8));
	for (size_t i = 0; i < words; i++)
		h = dmadev_mix(h ^ le64(s + off + 24 + i * 8));
	put64(s + off + 16, h);
}

static void expect_refused(struct uiommu_dmadev *dev, const uint8_t *s, size_t len,
			   const char *what)
{
	int ret = uiommu_dmadev_load(dev, s, len);

	if (ret != -EINVAL)
		fail_msg("%s: load returned %d", what, ret);
	assert_int_equal(uiommu_dmadev_get_state(dev), VFIO_DEVICE_STATE_RESUMING);
}

/* Right checksums, wrong fields: each must be refused. */
static void expect_fields_checked(struct uiommu_dmadev *dev, const uint8_t *good)
{
	static const struct {
		size_t off;   /* byte of the stream */
		uint64_t add; /* added to the 64-bit word there */
		size_t sect, words;
		const char *what;
	} cases[] = {
		{ 32, PG, 0, 8, "another DMA region" },	  { 48, PG, 0, 8, "another ring size" },
		{ 56, 1, 0, 8, "another buffer size" },	  { 80, 1, 0, 8, "another block size" },
		{ 136, 4, 88, 10, "unknown pattern" },	  { 152, 1000000, 88, 10, "throttle >= 1" },
		{ 144, 1ull << 41, 88, 10, "rate too high" }, { 112, 1, 88, 10, "seq != writes" },
		{ 160, 1, 88, 10, "bytes inconsistent" }, { 168, 1ull << 50, 88, 10, "pages inconsistent" },
		{ 4, 1, 0, 8, "version 2" },		  { 12, 1, 0, 8, "reserved nonzero" },
		{ 8, 8, 0, 9, "longer section" },
	};
	uint8_t s[STREAM_BYTES + 8];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(s, good, STREAM_BYTES);
		put64(s + cases[i].off, le64(s + cases[i].off) + cases[i].add);
		reseal(s, cases[i].sect, cases[i].words);
		expect_refused(dev, s, STREAM_BYTES + (cases[i].words == 9 ? 8 : 0), cases[i].what);
	}
	/* Sections out of order: RUN first. */
	memcpy(s, good + RUN_OFF, END_OFF - RUN_OFF);
	memcpy(s + END_OFF - RUN_OFF, good, RUN_OFF);
	memcpy(s + END_OFF, good + END_OFF, 24);
	expect_refused(dev, s, STREAM_BYTES, "RUN before IDENT");
}

static void test_dmadev_load_refuses_every_malformed_stream(void **state)
{
	struct pair p = { 0 };
	uint8_t s[STREAM_BYTES + 24];
	uint64_t n = 0;

	(void)state;
	seed_rng();
	print_message("UIOMMU_SEED=%llu\n", (unsigned long long)seed);
	pair_save(&p, UIOMMU_DMADEV_MIXED, 0, 50);
	pair_dst(&p);
	for (size_t len = 0; len < STREAM_BYTES; len++, n++)
		expect_refused(p.dst, p.stream, len, "truncated");
	for (size_t bit = 0; bit < STREAM_BYTES * 8; bit++, n++) {
		memcpy(s, p.stream, STREAM_BYTES);
		s[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		expect_refused(p.dst, s, STREAM_BYTES, "one bit flipped");
	}
	for (int i = 0; i < 3000; i++, n++) {
		memcpy(s, p.stream, STREAM_BYTES);
		for (uint64_t k = 1 + rnd_below(8); k--;)
			s[rnd_below(STREAM_BYTES)] ^= (uint8_t)(1 + rnd_below(255));
		if (!memcmp(s, p.stream, STREAM_BYTES))
			continue;
		expect_refused(p.dst, s, STREAM_BYTES, "random damage");
	}
	memcpy(s, p.stream, STREAM_BYTES);
	memcpy(s + STREAM_BYTES, p.stream + END_OFF, 24);
	expect_refused(p.dst, s, STREAM_BYTES + 1, "a trailing byte");
	expect_refused(p.dst, s, STREAM_BYTES + 24, "a second END");
	expect_fields_checked(p.dst, p.stream);
	/* A bad header is refused as soon as it is written, before any payload. */
	memcpy(s, p.stream, 24);
	s[0] ^= 1;
	assert_int_equal(uiommu_dmadev_mig_write(p.dst, s, 24), -EINVAL);
	print_message("%llu malformed streams refused\n", (unsigned long long)n);
	/* Nothing was kept: the real stream, a byte at a time, still loads. */
	for (size_t i = 0; i < STREAM_BYTES; i++)
		assert_int_equal(uiommu_dmadev_mig_write(p.dst, p.stream + i, 1), 0);
	set_state_ok(p.dst, VFIO_DEVICE_STATE_RUNNING);
	run_until_writes(p.dst, 100);
	set_state_ok(p.dst, VFIO_DEVICE_STATE_STOP);
	verify_ok(p.dst);
	pair_free(&p);
}

static void test_dmadev_load_refuses_a_device_of_another_geometry(void **state)
{
	struct pair p = { 0 };
	struct uiommu_dmadev_cfg cfg;

	(void)state;
	pair_save(&p, UIOMMU_DMADEV_NET, 0, 20);
	p.dst_mem = guest_alloc(GUEST_BYTES);
	cfg = std_cfg(p.dst_mem, UIOMMU_DMADEV_IDLE, 0);
	cfg.ring_bytes = DMA_BYTES / 2;
	p.dst = dev_new(&cfg);
	set_state_ok(p.dst, VFIO_DEVICE_STATE_RESUMING);
	assert_int_equal(uiommu_dmadev_mig_write(p.dst, p.stream, RUN_OFF), -EINVAL);
	assert_int_equal(uiommu_dmadev_load(p.dst, p.stream, STREAM_BYTES), -EINVAL);
	/* Leaving RESUMING with nothing received keeps the device as it was. */
	set_state_ok(p.dst, VFIO_DEVICE_STATE_RUNNING);
	assert_int_equal(stats_of(p.dst).writes, 0);
	pair_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dmadev_net_migrates_and_continues_the_sequence),
		cmocka_unit_test(test_dmadev_block_migrates_and_continues_the_sequence),
		cmocka_unit_test(test_dmadev_mixed_migrates_and_continues_the_sequence),
		cmocka_unit_test(test_dmadev_verify_finds_any_corrupted_byte),
		cmocka_unit_test(test_dmadev_verify_finds_stale_torn_and_foreign_content),
		cmocka_unit_test(test_dmadev_load_refuses_every_malformed_stream),
		cmocka_unit_test(test_dmadev_load_refuses_a_device_of_another_geometry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
