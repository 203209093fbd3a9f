// SPDX-License-Identifier: MIT
/*
 * The "vfio" dirty source at every container page size, against a real
 * type1 container: guest RAM (4 KiB guest pages) mapped at IOVA = GPA with
 * MAP_DMA, an IOMMU-backed group whose dirty-capable device writes by DMA
 * (the container with UIOMMU_VFIO_OPT_IOMMU_DIRTY, so that its real dirty
 * bits are read), and an emulated group whose device pins pages and writes
 * with uiommu_vfio_dma_rw.
 *
 * The container's smallest page P is the larger of the IOMMU's smallest page
 * and the host's CPU page (type1 hides IOMMU pages below the CPU page, as the
 * kernel does); an emulated-only container's is the CPU page. So the test
 * plays hosts with other CPU pages by wrapping uiommu__page_size()
 * (-Wl,--wrap): 2 KiB with the mock IOMMU format (P = 2 KiB: two bits per
 * guest page), 4 KiB with x86 or mock (P = 4 KiB), 64 KiB like an arm64 or
 * ppc64 host and 2 MiB, both with x86 (P = 64 KiB and 2 MiB: one bit for 16
 * or 512 guest pages); emulated-only containers reach any power of two.
 * Devices get only their format's smallest page, so that the IOMMU's dirty
 * leaves are never larger than P and a write dirties exactly the container
 * pages it touches.
 *
 * Every collect goes into a bitmap pre-filled with random bits: it must end
 * up as those bits ORed with exactly the expected guest pages, nothing past
 * npages, and the count must be the expected guest pages (what the source
 * reported, whether or not the bit was already set).
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/dirty_source.h>
#include <uiommu/iommu.h>
#include <uiommu/iommufd.h>
#include <uiommu/vfio_type1.h>
#include <uiommu/vm_sources.h>

#include "core/core_internal.h"
#include "seeded.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GPG (4 * KiB) /* a guest page */
#define MAX_PINS 256

/* ---- the host's CPU page as the library sees it ---- */

size_t __real_uiommu__page_size(void);
size_t __wrap_uiommu__page_size(void);

static size_t host_page; /* 0: the real one */

size_t __wrap_uiommu__page_size(void)
{
	return host_page ? host_page : __real_uiommu__page_size();
}

struct host {
	const char *name;
	size_t cpu_page;
	bool iommu;                    /* an IOMMU-backed group (else emulated only) */
	enum uiommu_pt_format format;
	uint64_t iommu_pgsizes;        /* the device's: its format's smallest page */
	uint64_t pgsize;               /* the container's smallest page that follows */
};

static const struct host hosts[] = {
	{ "2 KiB CPU pages, mock IOMMU", 2 * KiB, true, UIOMMU_PT_MOCK, 2 * KiB, 2 * KiB },
	{ "4 KiB CPU pages, x86 IOMMU", 4 * KiB, true, UIOMMU_PT_X86, 4 * KiB, 4 * KiB },
	{ "4 KiB CPU pages, mock IOMMU", 4 * KiB, true, UIOMMU_PT_MOCK, 2 * KiB, 4 * KiB },
	{ "64 KiB CPU pages, x86 IOMMU", 64 * KiB, true, UIOMMU_PT_X86, 4 * KiB, 64 * KiB },
	{ "2 MiB CPU pages, x86 IOMMU", 2 * MiB, true, UIOMMU_PT_X86, 4 * KiB, 2 * MiB },
};

enum { H2K, H4K, H4K_MOCK, H64K, H2M };

/* ---- fixture ---- */

struct fx {
	const struct host *h;
	struct host emu_host;          /* for emulated-only hosts */
	uint64_t P, npages, mapped;    /* container page; guest pages; bytes mapped */
	struct uiommu_vfio_container *c;
	struct uiommu_vfio_group *g, *eg;
	struct uiommu_hwdev *hw;
	struct uiommu_vfio_emudev *emu;
	char *map, *mem;               /* mem: map aligned to P */
	size_t map_bytes;
	struct uiommu_dirty_source *src;
	uint64_t pin_iova[MAX_PINS];   /* one CPU page each */
	int nr_pins;
};

static void unpin_at(struct fx *f, int i)
{
	uiommu_vfio_unpin_pages(f->emu, f->pin_iova[i], 1);
	f->pin_iova[i] = f->pin_iova[--f->nr_pins];
}

/* The emulated device's dma_unmap: drops its pins in the range. */
static void unmap_cb(void *opaque, uint64_t iova, uint64_t length)
{
	struct fx *f = opaque;

	for (int i = 0; i < f->nr_pins; i++)
		if (f->pin_iova[i] >= iova && f->pin_iova[i] - iova < length)
			unpin_at(f, i--);
}

static void join(struct fx *f, struct uiommu_vfio_group *g)
{
	int fd = uiommu_vfio_container_fd(f->c);

	assert_int_equal(uiommu_vfio_group_ioctl(g, VFIO_GROUP_SET_CONTAINER, &fd), 0);
}

static void add_iommu_group(struct fx *f)
{
	struct uiommu_hwdev_cfg cfg = {
		.name = "dev",
		.format = f->h->format,
		.pgsize_bitmap = f->h->iommu_pgsizes,
		.dirty_tracking = true,
	};

	assert_int_equal(uiommu_hwdev_create(&cfg, &f->hw), 0);
	assert_int_equal(uiommu_vfio_group_create(7, 0, &f->g), 0);
	assert_int_equal(uiommu_vfio_group_add_hwdev(f->g, "0000:00:01.0", f->hw), 0);
	join(f, f->g);
}

static void add_emu_group(struct fx *f)
{
	static const struct uiommu_vfio_emudev_ops ops = { .dma_unmap = unmap_cb };

	assert_int_equal(uiommu_vfio_group_create(9, UIOMMU_VFIO_GROUP_EMULATED, &f->eg), 0);
	assert_int_equal(uiommu_vfio_group_add_emudev(f->eg, "mdev0", &ops, f, &f->emu), 0);
	join(f, f->eg);
}

static void map_dma(struct fx *f, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)f->mem + iova,
		.iova = iova,
		.size = size,
	};

	assert_int_equal(uiommu_vfio_container_ioctl(f->c, VFIO_IOMMU_MAP_DMA, &m), 0);
}

/* Maps [0, mapped) in @pieces MAP_DMA calls (or fewer) cut at random P boundaries. */
static void map_guest_ram(struct fx *f, unsigned int pieces)
{
	uint64_t cp = f->mapped / f->P, at = 0;

	for (unsigned int i = 0; at < cp; i++) {
		uint64_t len = i + 1 < pieces ? 1 + rnd_below(cp - at) : cp - at;

		map_dma(f, at * f->P, len * f->P);
		at += len;
	}
}

/*
 * A container for host @h with guest RAM of @npages pages, of which the
 * first @mapped bytes are mapped (0: all, rounded up to P), and a source
 * over npages. @iommu_dirty: the opt-in, else the kernel's all-dirty rule.
 */
static void fx_init(struct fx *f, const struct host *h, uint64_t npages, uint64_t mapped,
		    bool iommu_dirty)
{
	struct uiommu_vfio_info info;

	memset(f, 0, sizeof(*f));
	f->h = h;
	f->P = h->pgsize;
	f->npages = npages;
	f->mapped = mapped ? mapped : (npages * GPG + f->P - 1) / f->P * f->P;
	host_page = h->cpu_page;
	f->map_bytes = f->mapped + f->P;
	f->map = mmap(NULL, f->map_bytes, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(f->map != MAP_FAILED);
	f->mem = (char *)(((uintptr_t)f->map + f->P - 1) & ~(uintptr_t)(f->P - 1));
	assert_int_equal(uiommu_vfio_container_create(&f->c), 0);
	if (h->iommu)
		add_iommu_group(f);
	add_emu_group(f);
	assert_int_equal(uiommu_vfio_set_iommu(f->c, VFIO_TYPE1v2_IOMMU), 0);
	if (iommu_dirty)
		assert_int_equal(uiommu_vfio_set_options(f->c, UIOMMU_VFIO_OPT_IOMMU_DIRTY), 0);
	assert_int_equal(uiommu_vfio_get_info(f->c, &info, NULL, 0), 0);
	assert_true((info.pgsize_bitmap & -info.pgsize_bitmap) == f->P);
	map_guest_ram(f, 1 + (unsigned int)rnd_below(4));
	assert_int_equal(uiommu_vfio_source_create(f->c, npages, &f->src), 0);
	assert_string_equal(f->src->name, "vfio");
}

/* An emulated-only container whose CPU page (and so P) is @page. */
static void fx_init_emu(struct fx *f, size_t page, uint64_t npages)
{
	struct host h = { "emulated devices only", page, false, UIOMMU_PT_X86, 0, page };

	fx_init(f, &h, npages, 0, false);
	f->emu_host = h;
	f->h = &f->emu_host;
}

static void fx_fini(struct fx *f)
{
	uiommu_dirty_source_destroy(f->src);
	uiommu_vfio_container_destroy(f->c);
	uiommu_vfio_group_destroy(f->g);
	uiommu_vfio_group_destroy(f->eg);
	uiommu_hwdev_destroy(f->hw);
	munmap(f->map, f->map_bytes);
	host_page = 0;
}

/* ---- writes ---- */

static void dma(struct fx *f, uint64_t iova, uint64_t len)
{
	static uint8_t buf[64 * KiB];

	assert_true(len <= sizeof(buf));
	assert_int_equal(uiommu_device_dma_write(uiommu_hwdev_dma(f->hw), iova, buf, len), 0);
}

static void rw(struct fx *f, uint64_t iova, uint64_t len)
{
	static uint8_t buf[64 * KiB];

	assert_true(len <= sizeof(buf));
	assert_int_equal(uiommu_vfio_dma_rw(f->emu, iova, buf, len, true), 0);
}

static void pin(struct fx *f, uint64_t iova)
{
	void *page;

	assert_true(f->nr_pins < MAX_PINS);
	assert_int_equal(uiommu_vfio_pin_pages(f->emu, iova, 1, UIOMMU_PROT_WRITE, &page), 1);
	f->pin_iova[f->nr_pins++] = iova;
}

static void unpin(struct fx *f, uint64_t iova)
{
	for (int i = 0; i < f->nr_pins; i++)
		if (f->pin_iova[i] == iova) {
			unpin_at(f, i);
			return;
		}
	fail_msg("no pin at 0x%" PRIx64, iova);
}

/* ---- collect and compare ---- */

static uint64_t words_of(const struct fx *f)
{
	return uiommu_bitmap_words(f->npages);
}

static uint64_t count_bits(const uint64_t *map, uint64_t nbits)
{
	return uiommu_bitmap_count_range(map, 0, nbits - 1);
}

/* Random bits below npages, the caller's bitmap before the collect. */
static void fill_pre(const struct fx *f, uint64_t *pre)
{
	for (uint64_t w = 0; w < words_of(f); w++)
		pre[w] = rnd() & rnd();
	if (f->npages % 64)
		pre[words_of(f) - 1] &= (1ull << (f->npages % 64)) - 1;
}

/*
 * Collects into a bitmap holding random bits; it must then hold them ORed
 * with exactly @want, and the count must be @want's.
 */
static void collect_check(struct fx *f, const uint64_t *want, const char *what)
{
	uint64_t words = words_of(f), n = 0, p;
	uint64_t *pre = calloc(words, sizeof(uint64_t)), *got = calloc(words, sizeof(uint64_t));

	assert_true(pre && got);
	fill_pre(f, pre);
	memcpy(got, pre, words * sizeof(uint64_t));
	assert_int_equal(uiommu_dirty_source_collect(f->src, got, &n), 0);
	for (p = 0; p < words * 64; p++) {
		bool w = p < f->npages && (uiommu_bitmap_test(want, p) || uiommu_bitmap_test(pre, p));

		if (uiommu_bitmap_test(got, p) != w)
			fail_msg("UIOMMU_SEED=%" PRIu64 " op %zu: %s, P 0x%" PRIx64 ", npages %" PRIu64
				 ": %s: guest page %" PRIu64 " reported %d, expected %d",
				 seed, op_index, f->h->name, f->P, f->npages, what, p,
				 uiommu_bitmap_test(got, p), w);
	}
	if (n != count_bits(want, f->npages))
		fail_msg("UIOMMU_SEED=%" PRIu64 " op %zu: %s: %s: count %" PRIu64 ", expected %" PRIu64,
			 seed, op_index, f->h->name, what, n, count_bits(want, f->npages));
	free(pre);
	free(got);
	op_index++;
}

/* The guest pages of IOVA [first, last], the pages a write there makes dirty. */
static void want_bytes(const struct fx *f, uint64_t *want, uint64_t first, uint64_t last)
{
	uiommu_bitmap_set_range(want, first / f->P * f->P / GPG,
				((last / f->P + 1) * f->P - 1) / GPG);
}

static uint64_t *want_new(const struct fx *f)
{
	uint64_t *want = calloc(words_of(f), sizeof(uint64_t));

	assert_non_null(want);
	return want;
}

static void want_clear(const struct fx *f, uint64_t *want)
{
	memset(want, 0, words_of(f) * sizeof(uint64_t));
}

static bool started_in_container(struct fx *f)
{
	struct uiommu_vfio_info info;

	assert_int_equal(uiommu_vfio_get_info(f->c, &info, NULL, 0), 0);
	return info.dirty_tracking;
}

/* ---- DMA writes ---- */

/* A DMA write and the guest pages it dirties (first, last), by host (16 MiB of RAM). */
static const struct {
	uint64_t iova, len;
	uint64_t pages[ARRAY_SIZE(hosts)][2];
} dma_cases[] = {
	/* Inside guest page 5. */
	{ 0x5000, 1, { { 5, 5 }, { 5, 5 }, { 5, 5 }, { 0, 15 }, { 0, 511 } } },
	/* Both 2 KiB halves of page 0. */
	{ 0x7ff, 2, { { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 15 }, { 0, 511 } } },
	/* Pages 16 and 17, the first two of the second 64 KiB page. */
	{ 0x10ffe, 4, { { 16, 17 }, { 16, 17 }, { 16, 17 }, { 16, 31 }, { 0, 511 } } },
	/* Across a 64 KiB boundary: pages 63 and 64. */
	{ 0x3ffff, 2, { { 63, 64 }, { 63, 64 }, { 63, 64 }, { 48, 79 }, { 0, 511 } } },
	/* Across the first 2 MiB boundary: pages 511 and 512. */
	{ 0x1ff800, 0x1000, { { 511, 512 }, { 511, 512 }, { 511, 512 }, { 496, 527 },
			      { 0, 1023 } } },
	/* The last byte of guest RAM. */
	{ 0xffffff, 1, { { 4095, 4095 }, { 4095, 4095 }, { 4095, 4095 }, { 4080, 4095 },
			 { 3584, 4095 } } },
};

static void dma_writes_at(size_t hi)
{
	uint64_t *want, *all;
	struct fx f;

	fx_init(&f, &hosts[hi], 4096, 0, true);
	want = want_new(&f);
	all = want_new(&f);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	for (size_t i = 0; i < ARRAY_SIZE(dma_cases); i++) {
		dma(&f, dma_cases[i].iova, dma_cases[i].len);
		want_clear(&f, want);
		uiommu_bitmap_set_range(want, dma_cases[i].pages[hi][0], dma_cases[i].pages[hi][1]);
		uiommu_bitmap_set_range(all, dma_cases[i].pages[hi][0], dma_cases[i].pages[hi][1]);
		collect_check(&f, want, "one DMA write");
		want_clear(&f, want);
		collect_check(&f, want, "the collect after it");
	}
	for (size_t i = 0; i < ARRAY_SIZE(dma_cases); i++)
		dma(&f, dma_cases[i].iova, dma_cases[i].len);
	collect_check(&f, all, "every DMA write at once");
	want_clear(&f, want);
	collect_check(&f, want, "the collect after them");
	free(want);
	free(all);
	fx_fini(&f);
}

static void test_vfio_source_reports_dma_writes_as_guest_pages_at_each_page_size(void **state)
{
	(void)state;
	for (size_t hi = 0; hi < ARRAY_SIZE(hosts); hi++)
		dma_writes_at(hi);
}

/* ---- pins and rw ---- */

/* A pin of CPU page 3 and an rw write at 0x500a (16 bytes): their guest pages, by host. */
static const uint64_t pin_pages[ARRAY_SIZE(hosts)][2] = {
	{ 1, 1 }, { 3, 3 }, { 3, 3 }, { 48, 63 }, { 1536, 2047 },
};
static const uint64_t rw_pages[ARRAY_SIZE(hosts)][2] = {
	{ 5, 5 }, { 5, 5 }, { 5, 5 }, { 0, 15 }, { 0, 511 },
};

static void pins_and_rw_at(size_t hi)
{
	uint64_t *want, *pinned, pin_iova = 3 * hosts[hi].cpu_page;
	struct fx f;

	fx_init(&f, &hosts[hi], 4096, 0, true);
	want = want_new(&f);
	pinned = want_new(&f);
	uiommu_bitmap_set_range(pinned, pin_pages[hi][0], pin_pages[hi][1]);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	pin(&f, pin_iova);
	rw(&f, 0x500a, 16);
	uiommu_bitmap_set_range(want, pin_pages[hi][0], pin_pages[hi][1]);
	uiommu_bitmap_set_range(want, rw_pages[hi][0], rw_pages[hi][1]);
	collect_check(&f, want, "a pin and an rw write");
	collect_check(&f, pinned, "the pin stays dirty");
	collect_check(&f, pinned, "the pin stays dirty again");
	unpin(&f, pin_iova);
	collect_check(&f, pinned, "reported once more after the unpin");
	want_clear(&f, want);
	collect_check(&f, want, "then nothing");
	free(want);
	free(pinned);
	fx_fini(&f);
}

static void test_vfio_source_reports_pins_and_rw_writes_as_guest_pages(void **state)
{
	(void)state;
	for (size_t hi = 0; hi < ARRAY_SIZE(hosts); hi++)
		pins_and_rw_at(hi);
}

/* With 2 KiB container pages, either half of a guest page makes it dirty. */
static void test_vfio_source_combines_the_halves_of_a_guest_page(void **state)
{
	uint64_t *want;
	struct fx f;

	(void)state;
	fx_init(&f, &hosts[H2K], 4096, 0, true);
	want = want_new(&f);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	rw(&f, 0x5800, 1);               /* second half of page 5 */
	dma(&f, 0x7000, 1);              /* first half of page 7 */
	pin(&f, 0x9800);                 /* second half of page 9 */
	pin(&f, 0xa000);                 /* first half of page 10 */
	pin(&f, 0xa800);                 /* and its second half */
	uiommu_bitmap_set(want, 5);
	uiommu_bitmap_set(want, 7);
	uiommu_bitmap_set_range(want, 9, 10);
	collect_check(&f, want, "halves");
	unpin(&f, 0xa000);
	unpin(&f, 0x9800);
	unpin(&f, 0xa800);
	uiommu_bitmap_clear_range(want, 5, 7);
	collect_check(&f, want, "unpinned halves, once more");
	want_clear(&f, want);
	collect_check(&f, want, "nothing");
	free(want);
	fx_fini(&f);
}

/* ---- guest RAM that is not a whole number of container pages ---- */

static void refused_at(size_t hi, uint64_t npages)
{
	uint64_t bm[1] = { 0 };
	struct fx f;

	fx_init(&f, &hosts[hi], npages, 0, true);
	assert_int_equal(uiommu_dirty_source_start(f.src), -EINVAL);
	assert_false(f.src->started);
	assert_false(started_in_container(&f));
	assert_int_equal(uiommu_dirty_source_collect(f.src, bm, NULL), -EINVAL);
	fx_fini(&f);
}

static void test_vfio_source_refuses_guest_ram_not_a_whole_number_of_container_pages(void **state)
{
	uint64_t *want;
	struct fx f;

	(void)state;
	refused_at(H64K, 4097);         /* 16 MiB + 4 KiB, mapped up to 16 MiB + 64 KiB */
	refused_at(H64K, 8);            /* less than one container page */
	refused_at(H2M, 4096 + 16);     /* 16 MiB + 64 KiB */
	/* Sizes below 4 KiB always fit: 4095 pages at 2 KiB, the last word partial. */
	fx_init(&f, &hosts[H2K], 4095, 0, true);
	want = want_new(&f);
	assert_int_equal(uiommu_dirty_source_start(f.src), 0);
	dma(&f, 4093 * GPG + 0x800, 0x1000);
	uiommu_bitmap_set_range(want, 4093, 4094);
	collect_check(&f, want, "the last pages of an odd RAM size");
	free(want);
	fx_fini(&f);
}

/* ---- the all-dirty rule ---- */

/* Without the opt-in every mapped page is dirty in every collect: here the first half. */
static void test_vfio_source_reports_all_mapped_guest_pages_without_the_opt_in(void **state)
{
	uint64_t *want;
	struct fx f;

	(void)state;
	for (size_t hi = 0; hi < ARRAY_SIZE(hosts); hi++) {
		fx_init(&f, &hosts[hi], 4096, 8 * MiB, false);
		want = want_new(&f);
		uiommu_bitmap_set_range(want, 0, 2047);
		assert_int_equal(uiommu_dirty_source_start(f.src), 0);
		collect_check(&f, want, "all-dirty");
		collect_check(&f, want, "all-dirty again");
		free(want);
		fx_fini(&f);
	}
}

/* ---- the page size is read at each start ---- */

/*
 * Takes the emulated group out (the container drops its type and mappings),
 * then brings it back on a host with CPU pages of @page, and maps again.
 */
static void reset_container(struct fx *f, size_t page)
{
	f->emu_host.cpu_page = f->emu_host.pgsize = page;
	f->P = page;
	assert_int_equal(uiommu_vfio_group_unset_container(f->eg), 0);
	host_page = page;
	assert_int_equal(uiommu_vfio_group_set_container(f->eg, f->c), 0);
	assert_int_equal(uiommu_vfio_set_iommu(f->c, VFIO_TYPE1v2_IOMMU), 0);
	map_guest_ram(f, 2);
}

static void test_vfio_source_follows_the_page_size_of_each_start(void **state)
{
	static const size_t pages[] = { 4 * KiB, 2 * KiB, 64 * KiB, 512, 2 * MiB, 4 * KiB };
	uint64_t *want;
	struct fx f;

	(void)state;
	/* Set up at 2 MiB first: the memory is then aligned for every later P. */
	fx_init_emu(&f, 2 * MiB, 4096);
	want = want_new(&f);
	for (size_t i = 0; i < ARRAY_SIZE(pages); i++) {
		reset_container(&f, pages[i]);
		assert_int_equal(uiommu_dirty_source_start(f.src), 0);
		rw(&f, 0x5800, 1);
		rw(&f, 0x3fffff, 2);
		want_clear(&f, want);
		want_bytes(&f, want, 0x5800, 0x5800);
		want_bytes(&f, want, 0x3fffff, 0x400000);
		collect_check(&f, want, "after a restart at another page size");
		uiommu_dirty_source_stop(f.src);
	}
	free(want);
	fx_fini(&f);
}

/* ---- a start that fails leaves nothing behind ---- */

static void test_vfio_source_start_failing_on_allocation_leaks_nothing(void **state)
{
	struct uiommu_dirty_source *src;
	uint64_t *want;
	int ret = -1;
	struct fx f;

	(void)state;
	fx_init(&f, &hosts[H64K], 4096, 0, true);
	want = want_new(&f);
	for (unsigned long n = 1; ret; n++) {
		assert_int_equal(uiommu_vfio_source_create(f.c, f.npages, &src), 0);
		uiommu__fail_nth_set(n);
		ret = uiommu_dirty_source_start(src);
		uiommu__fail_nth_set(0);
		if (ret) {
			/* The scratch bitmap may exist: destroy frees it (ASan checks). */
			assert_int_equal(ret, -ENOMEM);
			assert_false(src->started);
			assert_false(started_in_container(&f));
			uiommu_dirty_source_destroy(src);
		}
	}
	uiommu_dirty_source_destroy(f.src);
	f.src = src;
	dma(&f, 0x20000, 1);
	uiommu_bitmap_set_range(want, 32, 47);
	collect_check(&f, want, "after the failed starts");
	free(want);
	fx_fini(&f);
}

/* ---- randomized, against a per-bit model ---- */

/*
 * The type1 rules per container page: a write or a pin makes the page
 * dirty; a collect reports the dirty pages, then only the pinned ones stay
 * dirty. Guest page p is reported when one of the container pages meeting
 * [p * 4 KiB, p * 4 KiB + 4 KiB - 1] is, bit by bit.
 */
struct model {
	uint64_t nbits;
	uint8_t *dirty;
	uint32_t *pins;
};

static void model_init(struct model *m, const struct fx *f)
{
	m->nbits = f->npages * GPG / f->P;
	m->dirty = calloc(m->nbits, 1);
	m->pins = calloc(m->nbits, sizeof(*m->pins));
	assert_true(m->dirty && m->pins);
}

static void model_fini(struct model *m)
{
	free(m->dirty);
	free(m->pins);
}

static void model_mark(struct model *m, const struct fx *f, uint64_t iova, uint64_t len, int pin)
{
	for (uint64_t c = iova / f->P; c <= (iova + len - 1) / f->P; c++) {
		m->pins[c] += (uint32_t)pin;
		if (pin >= 0)
			m->dirty[c] = 1;
	}
}

static void model_collect(struct model *m, const struct fx *f, uint64_t *want)
{
	want_clear(f, want);
	for (uint64_t p = 0; p < f->npages; p++)
		for (uint64_t c = p * GPG / f->P; c <= (p * GPG + GPG - 1) / f->P; c++)
			if (m->dirty[c])
				uiommu_bitmap_set(want, p);
	for (uint64_t c = 0; c < m->nbits; c++)
		m->dirty[c] = m->pins[c] > 0;
}

/* A random write of up to @max bytes inside guest RAM, by DMA when there is a device. */
static void random_write(struct fx *f, struct model *m, uint64_t max)
{
	uint64_t bytes = f->npages * GPG, iova = rnd_below(bytes), len = 1 + rnd_below(max);

	if (len > bytes - iova)
		len = bytes - iova;
	if (f->hw && rnd_below(2))
		dma(f, iova, len);
	else
		rw(f, iova, len);
	model_mark(m, f, iova, len, 0);
}

/*
 * One byte in one container page out of 1 to 16 of a random window: dense
 * words, and neighbouring guest pages dirty at different offsets.
 */
static void random_burst(struct fx *f, struct model *m)
{
	uint64_t first = rnd_below(m->nbits), n = 1 + rnd_below(256), every = 1 + rnd_below(16);

	for (uint64_t c = first; c < m->nbits && c < first + n; c++) {
		uint64_t iova = c * f->P + rnd_below(f->P);

		if (rnd_below(every))
			continue;
		rw(f, iova, 1);
		model_mark(m, f, iova, 1, 0);
	}
}

static void random_pin_or_unpin(struct fx *f, struct model *m)
{
	uint64_t cpu = f->h->cpu_page, iova = rnd_below(f->npages * GPG / cpu) * cpu;

	if (f->nr_pins && (f->nr_pins == MAX_PINS || rnd_below(2))) {
		iova = f->pin_iova[rnd_below((uint64_t)f->nr_pins)];
		unpin(f, iova);
		model_mark(m, f, iova, cpu, -1);
	} else {
		pin(f, iova);
		model_mark(m, f, iova, cpu, 1);
	}
}

static void random_op(struct fx *f, struct model *m)
{
	switch (rnd_below(5)) {
	case 0:
		random_write(f, m, 300);
		break;
	case 1:
		random_write(f, m, 64 * KiB);
		break;
	case 2:
		random_burst(f, m);
		break;
	case 3:
		random_pin_or_unpin(f, m);
		break;
	default:
		random_write(f, m, 8);
	}
}

/* Guest pages of a random size for P: a whole number of container pages above 4 KiB. */
static uint64_t random_npages(uint64_t P)
{
	uint64_t r = P > GPG ? P / GPG : 1, most = 8192 / r;

	return r * (1 + rnd_below(most ? most : 1));
}

/*
 * Container @kind (mod 8): a host of the table, or an emulated-only one with
 * P of 32 or 64 bytes (a guest page is whole words of bits), 128 bytes to
 * 2 KiB, or 8 KiB to 2 MiB; so each run takes every path of the source.
 */
static void random_container(struct fx *f, unsigned int kind)
{
	size_t page;

	kind %= 8;
	if (kind < ARRAY_SIZE(hosts)) {
		fx_init(f, &hosts[kind], random_npages(hosts[kind].pgsize), 0, true);
		return;
	}
	if (kind == ARRAY_SIZE(hosts))
		page = (size_t)1 << (5 + rnd_below(2));
	else if (kind == ARRAY_SIZE(hosts) + 1)
		page = (size_t)1 << (7 + rnd_below(5));
	else
		page = (size_t)1 << (13 + rnd_below(9));
	fx_init_emu(f, page, random_npages(page));
}

static void test_vfio_source_matches_a_per_bit_model_at_random(void **state)
{
	struct model m;
	uint64_t *want;
	struct fx f;

	(void)state;
	for (unsigned int iter = 0; iter < 24; iter++) {
		random_container(&f, iter);
		print_message("  %s, P 0x%" PRIx64 ", %" PRIu64 " guest pages\n", f.h->name, f.P,
			      f.npages);
		model_init(&m, &f);
		want = want_new(&f);
		assert_int_equal(uiommu_dirty_source_start(f.src), 0);
		for (int col = 0; col < 6; col++) {
			for (uint64_t n = rnd_below(40); n; n--)
				random_op(&f, &m);
			model_collect(&m, &f, want);
			collect_check(&f, want, "random interval");
		}
		free(want);
		model_fini(&m);
		fx_fini(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vfio_source_reports_dma_writes_as_guest_pages_at_each_page_size),
		cmocka_unit_test(test_vfio_source_reports_pins_and_rw_writes_as_guest_pages),
		cmocka_unit_test(test_vfio_source_combines_the_halves_of_a_guest_page),
		cmocka_unit_test(
			test_vfio_source_refuses_guest_ram_not_a_whole_number_of_container_pages),
		cmocka_unit_test(test_vfio_source_reports_all_mapped_guest_pages_without_the_opt_in),
		cmocka_unit_test(test_vfio_source_follows_the_page_size_of_each_start),
		cmocka_unit_test(test_vfio_source_start_failing_on_allocation_leaks_nothing),
		cmocka_unit_test(test_vfio_source_matches_a_per_bit_model_at_random),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
