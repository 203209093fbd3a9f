// SPDX-License-Identifier: MIT
/*
 * Device DMA logging (uapi-spec §2): VFIO_DEVICE_FEATURE framing and the
 * DMA_LOGGING_START / STOP / REPORT rules, one test per rule, driven through
 * uiommu_vfio_device_ioctl() on a device fd from GET_DEVICE_FD. The device
 * writes with uiommu_vfio_device_dma_write() (IOMMU-backed) or through the
 * container (emulated).
 */
#include "vt1_test.h"

#define DEV "0000:00:01.0"
#define F_START VFIO_DEVICE_FEATURE_DMA_LOGGING_START
#define F_STOP VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP
#define F_REPORT VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT
#define SET VFIO_DEVICE_FEATURE_SET
#define GET VFIO_DEVICE_FEATURE_GET
#define PROBE VFIO_DEVICE_FEATURE_PROBE
#define IOVA 0x100000ull

struct lt {
	struct vt1 *t;
	int fd;
	struct uiommu_vfio_device *dev;
};

typedef struct vfio_device_feature_dma_logging_control ctl_t;
typedef struct vfio_device_feature_dma_logging_range range_t;
typedef struct vfio_device_feature_dma_logging_report report_t;

/* Type1v2 container with 8 MiB mapped at IOVA, a device fd, logging able. */
static struct lt *lt_new(bool capable)
{
	struct lt *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	l->t = vt1_ready(VFIO_TYPE1v2_IOMMU);
	assert_int_equal(vt1_map_mem(l->t, 0, IOVA, 8 * MiB), 0);
	l->fd = (int)gio_name(l->t->g, DEV);
	assert_true(l->fd >= 0);
	l->dev = uiommu_vfio_device_from_fd(l->t->g, l->fd);
	assert_ptr_equal(l->dev, uiommu_vfio_group_device(l->t->g, DEV));
	assert_int_equal(uiommu_vfio_device_set_log_capable(l->dev, capable), 0);
	return l;
}

static void lt_free(struct lt *l)
{
	vt1_free(l->t);
	free(l);
}

/* VFIO_DEVICE_FEATURE with @len bytes of payload, copied back after. */
static long feat_sz(struct lt *l, uint32_t flags, void *payload, size_t len, uint32_t argsz)
{
	uint64_t buf[8] = { 0 };
	struct vfio_device_feature *f = (void *)buf;
	long ret;

	f->argsz = argsz;
	f->flags = flags;
	if (len)
		memcpy(f->data, payload, len);
	ret = uiommu_vfio_device_ioctl(l->t->g, l->fd, VFIO_DEVICE_FEATURE, buf);
	if (len)
		memcpy(payload, f->data, len);
	return ret;
}

static long feat(struct lt *l, uint32_t flags, void *payload, size_t len)
{
	return feat_sz(l, flags, payload, len, (uint32_t)(sizeof(struct vfio_device_feature) + len));
}

static long start_n(struct lt *l, uint64_t *page_size, range_t *r, uint32_t n)
{
	ctl_t c = { .page_size = *page_size, .num_ranges = n, .ranges = (uintptr_t)r };
	long ret = feat(l, F_START | SET, &c, sizeof(c));

	*page_size = c.page_size;
	return ret;
}

static long start1(struct lt *l, uint64_t pgsz, uint64_t iova, uint64_t len)
{
	range_t r = { iova, len };

	return start_n(l, &pgsz, &r, 1);
}

static long report(struct lt *l, uint64_t iova, uint64_t len, uint64_t pgsz, uint64_t *bm)
{
	report_t r = { .iova = iova, .length = len, .page_size = pgsz, .bitmap = (uintptr_t)bm };

	return feat(l, F_REPORT | GET, &r, sizeof(r));
}

static void dma(struct lt *l, uint64_t iova, size_t len)
{
	static char buf[64 * 1024];

	memset(buf, 0x5a, len);
	assert_int_equal(uiommu_vfio_device_dma_write(l->dev, iova, buf, len), 0);
}

/* ---- framing ---- */

static void test_feature_framing(void **state)
{
	struct lt *l = lt_new(true);
	ctl_t c = { 0 };

	(void)state;
	assert_int_equal(feat_sz(l, F_START | SET, &c, 0, 7), -EINVAL);
	assert_int_equal(feat(l, F_START | SET | (1u << 19), &c, sizeof(c)), -EINVAL);
	assert_int_equal(feat(l, F_START | SET | GET, &c, sizeof(c)), -EINVAL);
	assert_int_equal(uiommu_vfio_device_ioctl(l->t->g, l->fd, VFIO_DEVICE_FEATURE, BAD_PTR),
			 -EFAULT);
	assert_int_equal(uiommu_vfio_device_ioctl(l->t->g, l->fd + 1000, VFIO_DEVICE_FEATURE, &c),
			 -EBADF);
	lt_free(l);
}

static void test_feature_probe(void **state)
{
	struct lt *l = lt_new(true);
	ctl_t c = { 0 };

	(void)state;
	assert_int_equal(feat(l, F_START | SET | PROBE, NULL, 0), 0);
	assert_int_equal(feat(l, F_START | GET | PROBE, NULL, 0), -EINVAL);
	assert_int_equal(feat(l, F_START | GET | SET | PROBE, NULL, 0), -EINVAL);
	assert_int_equal(feat(l, F_STOP | SET | PROBE, NULL, 0), 0);
	assert_int_equal(feat(l, F_REPORT | GET | PROBE, NULL, 0), 0);
	assert_int_equal(feat(l, F_REPORT | SET | PROBE, NULL, 0), -EINVAL);
	assert_int_equal(feat(l, F_START | PROBE, NULL, 0), 0);
	/* Neither GET nor SET without PROBE; short payloads. */
	assert_int_equal(feat(l, F_START, &c, sizeof(c)), -EINVAL);
	assert_int_equal(feat_sz(l, F_START | SET, &c, sizeof(c), 8 + 23), -EINVAL);
	assert_int_equal(feat_sz(l, F_REPORT | GET, &c, 0, 8 + 31), -EINVAL);
	/* STOP has no payload. */
	assert_int_equal(feat(l, F_STOP | SET, NULL, 0), 0);
	lt_free(l);
}

static void test_feature_without_logging_ops(void **state)
{
	struct lt *l = lt_new(false);

	(void)state;
	assert_int_equal(feat(l, F_START | SET | PROBE, NULL, 0), -ENOTTY);
	assert_int_equal(feat(l, F_STOP | SET, NULL, 0), -ENOTTY);
	assert_int_equal(feat(l, F_REPORT | GET | PROBE, NULL, 0), -ENOTTY);
	/* No migration ops; no driver feature handler. */
	assert_int_equal(feat(l, VFIO_DEVICE_FEATURE_MIGRATION | GET, NULL, 0), -ENOTTY);
	assert_int_equal(feat(l, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | GET, NULL, 0), -ENOTTY);
	assert_int_equal(feat(l, VFIO_DEVICE_FEATURE_PCI_VF_TOKEN | SET, NULL, 0), -EINVAL);
	assert_int_equal(feat(l, 100 | GET | PROBE, NULL, 0), -EINVAL);
	lt_free(l);
}

static void test_device_get_info_and_unknown(void **state)
{
	struct lt *l = lt_new(true);
	struct vfio_device_info info = { .argsz = sizeof(info), .num_regions = 7 };

	(void)state;
	assert_int_equal(uiommu_vfio_device_ioctl(l->t->g, l->fd, VFIO_DEVICE_GET_INFO, &info), 0);
	assert_int_equal(info.num_regions, 0);
	assert_int_equal(info.num_irqs, 0);
	info.argsz = 15;
	assert_int_equal(uiommu_vfio_device_ioctl(l->t->g, l->fd, VFIO_DEVICE_GET_INFO, &info),
			 -EINVAL);
	assert_int_equal(uiommu_vfio_device_ioctl(l->t->g, l->fd, VFIO_DEVICE_RESET, NULL),
			 -ENOTTY);
	lt_free(l);
}

/* ---- START ---- */

static void test_start_range_count(void **state)
{
	struct lt *l = lt_new(true);
	range_t *r = calloc(257, sizeof(*r));
	uint64_t pg = PG;

	(void)state;
	for (int i = 0; i < 257; i++)
		r[i] = (range_t){ IOVA + (uint64_t)i * 2 * PG, PG };
	assert_int_equal(start_n(l, &pg, r, 0), -EINVAL);
	assert_int_equal(start_n(l, &pg, r, 257), -E2BIG);
	assert_int_equal(start_n(l, &pg, r, 256), 0);
	free(r);
	lt_free(l);
}

static void test_start_range_checks(void **state)
{
	struct lt *l = lt_new(true);
	range_t over[2] = { { IOVA, 4 * PG }, { IOVA + 3 * PG, PG } };
	range_t wrap[2] = { { IOVA, PG }, { UINT64_MAX - PG + 1, PG } };
	uint64_t pg = PG;

	(void)state;
	assert_int_equal(start1(l, PG, IOVA + 512, PG), -EINVAL);
	assert_int_equal(start1(l, PG, IOVA, PG + 512), -EINVAL);
	assert_int_equal(start_n(l, &pg, over, 2), -EINVAL);
	/* iova + length reaching 2^64 wraps (the end is exclusive). */
	assert_int_equal(start_n(l, &pg, wrap, 2), -EOVERFLOW);
	assert_int_equal(start1(l, PG, IOVA, 0), -EINVAL);
	assert_int_equal(start_n(l, &pg, BAD_PTR, 1), -EFAULT);
	/* The first failing range decides, in the user's order. */
	{
		range_t order[3] = { { IOVA, PG }, { IOVA, PG }, wrap[1] };

		assert_int_equal(start_n(l, &pg, order, 3), -EINVAL);
		order[1] = wrap[1];
		assert_int_equal(start_n(l, &pg, order, 3), -EOVERFLOW);
	}
	lt_free(l);
}

static void test_start_twice_is_ebusy(void **state)
{
	struct lt *l = lt_new(true);

	(void)state;
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), 0);
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), -EBUSY);
	assert_int_equal(feat(l, F_STOP | SET, NULL, 0), 0);
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), 0);
	lt_free(l);
}

static void test_start_page_size_choice(void **state)
{
	struct lt *l = lt_new(true);
	range_t big = { 0, 1ull << 46 };
	range_t r = { 0, 48 * KiB };
	uint64_t pg = 12288;

	(void)state;
	/* Rounded up to a power of two. */
	assert_int_equal(start_n(l, &pg, &r, 1), 0);
	assert_int_equal(pg, 16384);
	assert_int_equal(feat(l, F_STOP | SET, NULL, 0), 0);
	pg = 1024;
	r.length = 4 * KiB;
	assert_int_equal(start_n(l, &pg, &r, 1), 0);
	assert_int_equal(pg, 4096);
	assert_int_equal(feat(l, F_STOP | SET, NULL, 0), 0);
	/* 2^46 bytes do not fit 2^27 bits of 4 KiB: the granule grows to 512 KiB. */
	pg = PG;
	assert_int_equal(start_n(l, &pg, &big, 1), 0);
	assert_int_equal(pg, 1ull << 19);
	lt_free(l);
}

static void test_start_control_writeback_fault_stops(void **state)
{
	struct lt *l = lt_new(true);
	range_t r = { IOVA, 16 * PG };
	char *page = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct vfio_device_feature *f = (void *)page;
	ctl_t c = { .page_size = PG, .num_ranges = 1, .ranges = (uintptr_t)&r };

	(void)state;
	f->argsz = sizeof(*f) + sizeof(c);
	f->flags = F_START | SET;
	memcpy(f->data, &c, sizeof(c));
	assert_int_equal(mprotect(page, PG, PROT_READ), 0);
	assert_int_equal(uiommu_vfio_device_ioctl(l->t->g, l->fd, VFIO_DEVICE_FEATURE, page),
			 -EFAULT);
	/* Logging was stopped: a new START works. */
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), 0);
	munmap(page, PG);
	lt_free(l);
}

/* ---- REPORT ---- */

static void test_report_checks(void **state)
{
	struct lt *l = lt_new(true);
	uint64_t bm[4] = { 0 };

	(void)state;
	assert_int_equal(report(l, IOVA, 16 * PG, PG, bm), -EINVAL); /* not started */
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), 0);
	assert_int_equal(report(l, IOVA, 16 * PG, 2048, bm), -EINVAL);
	assert_int_equal(report(l, IOVA, 16 * PG, 12288, bm), -EINVAL);
	assert_int_equal(report(l, UINT64_MAX - PG + 1, PG, PG, bm), -EOVERFLOW);
	assert_int_equal(report(l, IOVA, 17 * PG, PG, bm), -EINVAL);    /* past the range */
	assert_int_equal(report(l, IOVA - PG, 2 * PG, PG, bm), -EINVAL); /* before it */
	assert_int_equal(report(l, IOVA, 0, PG, bm), -EINVAL);
	assert_int_equal(report(l, IOVA, 16 * PG, PG, BAD_PTR), -EFAULT);
	assert_int_equal(report(l, IOVA, 16 * PG, PG, bm), 0);
	assert_int_equal(bits_count(bm, 4), 0);
	lt_free(l);
}

static void test_report_reads_clears_and_ors(void **state)
{
	struct lt *l = lt_new(true);
	uint64_t bm[2] = { 1ull << 63, 0 };

	(void)state;
	dma(l, IOVA, PG); /* before START: not logged */
	assert_int_equal(start1(l, PG, IOVA, 64 * PG), 0);
	dma(l, IOVA + 3 * PG + 100, 2 * PG); /* pages 3, 4, 5 */
	dma(l, IOVA + 70 * PG, PG);          /* outside the range */
	assert_int_equal(report(l, IOVA, 64 * PG, PG, bm), 0);
	assert_int_equal(bm[0], (1ull << 63) | (7ull << 3)); /* pre-set bit survives */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(report(l, IOVA, 64 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 0); /* read cleared */
	lt_free(l);
}

static void test_report_other_page_size_and_partial(void **state)
{
	struct lt *l = lt_new(true);
	uint64_t bm[2] = { 0 };

	(void)state;
	assert_int_equal(start1(l, PG, IOVA, 64 * PG), 0);
	dma(l, IOVA + 5 * PG, PG);
	/* 8 KiB report pages: page 5 is in report bit 2. */
	assert_int_equal(report(l, IOVA, 64 * PG, 2 * PG, bm), 0);
	assert_int_equal(bm[0], 1ull << 2);
	/* A report that starts mid-granule: bit k counts from its iova. */
	dma(l, IOVA + 8 * PG, PG);
	bm[0] = 0;
	assert_int_equal(report(l, IOVA + 7 * PG, 2 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 1ull << 1);
	lt_free(l);
}

static void test_report_coarse_granule_kept_when_partly_asked(void **state)
{
	struct lt *l = lt_new(true);
	uint64_t bm[1] = { 0 };
	range_t r = { IOVA, 64 * PG };
	uint64_t pg = 4 * PG;

	(void)state;
	assert_int_equal(start_n(l, &pg, &r, 1), 0);
	dma(l, IOVA + PG, 1);
	/* Half of the 16 KiB granule: reported, and kept for the next report. */
	assert_int_equal(report(l, IOVA, 2 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 3);
	bm[0] = 0;
	assert_int_equal(report(l, IOVA, 4 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 0xf);
	bm[0] = 0;
	assert_int_equal(report(l, IOVA, 4 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 0);
	lt_free(l);
}

static void test_stop_discards(void **state)
{
	struct lt *l = lt_new(true);
	uint64_t bm[1] = { 0 };

	(void)state;
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), 0);
	dma(l, IOVA, PG);
	assert_int_equal(feat(l, F_STOP | SET, NULL, 0), 0);
	assert_int_equal(report(l, IOVA, 16 * PG, PG, bm), -EINVAL);
	assert_int_equal(start1(l, PG, IOVA, 16 * PG), 0);
	assert_int_equal(report(l, IOVA, 16 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 0);
	lt_free(l);
}

static void test_multiple_ranges_in_any_order(void **state)
{
	struct lt *l = lt_new(true);
	range_t r[2] = { { IOVA + 32 * PG, 8 * PG }, { IOVA, 8 * PG } };
	uint64_t bm[1] = { 0 }, pg = PG;

	(void)state;
	assert_int_equal(start_n(l, &pg, r, 2), 0);
	dma(l, IOVA + 7 * PG, 2 * PG); /* page 7 tracked, page 8 in the gap */
	dma(l, IOVA + 33 * PG, PG);
	assert_int_equal(report(l, IOVA + 32 * PG, 8 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 2);
	bm[0] = 0;
	assert_int_equal(report(l, IOVA, 8 * PG, PG, bm), 0);
	assert_int_equal(bm[0], 1ull << 7);
	/* A report across the gap between tracked ranges is refused. */
	assert_int_equal(report(l, IOVA, 40 * PG, PG, bm), -EINVAL);
	lt_free(l);
}

static void test_emulated_device_rw_is_logged(void **state)
{
	struct vt1 *t = vt1_ready_emu();
	struct uiommu_vfio_device *d = uiommu_vfio_group_device(t->eg, "mdev0");
	struct uiommu_iova_range r = { IOVA, IOVA + 16 * PG - 1 };
	uint64_t pg = PG, bm[1] = { 0 };
	char buf[16] = "written";

	(void)state;
	assert_int_equal(vt1_map_mem(t, 0, IOVA, 16 * PG), 0);
	assert_int_equal(uiommu_vfio_device_set_log_capable(d, true), 0);
	assert_int_equal(uiommu_vfio_device_log_start(d, &pg, &r, 1), 0);
	assert_int_equal(uiommu_vfio_device_set_log_capable(d, false), -EBUSY);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, IOVA + 2 * PG, buf, sizeof(buf), true), 0);
	assert_int_equal(uiommu_vfio_dma_rw(t->emu, IOVA + 4 * PG, buf, sizeof(buf), false), 0);
	assert_int_equal(uiommu_vfio_device_dma_write(d, IOVA + 9 * PG, buf, 1), 0);
	assert_int_equal(uiommu_vfio_device_log_report(d, IOVA, 16 * PG, PG, bm), 0);
	assert_int_equal(bm[0], (1ull << 2) | (1ull << 9));
	assert_int_equal(memcmp(t->mem + 2 * PG, "written", 8), 0);
	vt1_free(t);
}

static void test_native_start_checks(void **state)
{
	struct lt *l = lt_new(true);
	struct uiommu_iova_range rev = { IOVA + PG, IOVA }, r[2] = { { 0, PG - 1 }, { 0, 0 } };
	uint64_t pg = PG;

	(void)state;
	assert_int_equal(uiommu_vfio_device_log_start(l->dev, &pg, &rev, 1), -EINVAL);
	assert_int_equal(uiommu_vfio_device_log_start(l->dev, &pg, r, 2), -EINVAL);
	assert_int_equal(uiommu_vfio_device_log_start(l->dev, &pg, r, 0), -EINVAL);
	assert_int_equal(uiommu_vfio_device_log_start(l->dev, &pg, r, 1), 0);
	assert_int_equal(uiommu_vfio_device_log_stop(l->dev), 0);
	assert_int_equal(uiommu_vfio_device_log_stop(l->dev), 0);
	lt_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feature_framing),
		cmocka_unit_test(test_feature_probe),
		cmocka_unit_test(test_feature_without_logging_ops),
		cmocka_unit_test(test_device_get_info_and_unknown),
		cmocka_unit_test(test_start_range_count),
		cmocka_unit_test(test_start_range_checks),
		cmocka_unit_test(test_start_twice_is_ebusy),
		cmocka_unit_test(test_start_page_size_choice),
		cmocka_unit_test(test_start_control_writeback_fault_stops),
		cmocka_unit_test(test_report_checks),
		cmocka_unit_test(test_report_reads_clears_and_ors),
		cmocka_unit_test(test_report_other_page_size_and_partial),
		cmocka_unit_test(test_report_coarse_granule_kept_when_partly_asked),
		cmocka_unit_test(test_stop_discards),
		cmocka_unit_test(test_multiple_ranges_in_any_order),
		cmocka_unit_test(test_emulated_device_rw_is_logged),
		cmocka_unit_test(test_native_start_checks),
	};

	return cmocka_run_group_tests_name("vfio_type1_dmalog", tests, NULL, NULL);
}
