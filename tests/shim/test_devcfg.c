// SPDX-License-Identifier: MIT
/*
 * The UIOMMU_DEVICES parser: every field of valid specs, the defaults, the
 * conversion to a hwdev configuration, and each way a spec can be wrong,
 * with the offset and message the shim would report.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uapi/shim/devcfg.h"

static struct uiommu_devcfg cfg;
static struct uiommu_devcfg_err err;

static void parse_ok(const char *spec)
{
	int ret = uiommu__devcfg_parse(spec, &cfg, &err);

	if (ret)
		fail_msg("\"%s\": offset %zu: %s", spec, err.offset, err.msg);
}

static void test_devcfg_brief_example_sets_every_field(void **state)
{
	const struct uiommu_devcfg_dev *nic, *disk;

	(void)state;
	parse_ok("nic0:aperture=0x0-0xffffffffff,reserved=0xfee00000-0xfeefffff,"
		 "pgsizes=4k|2m|1g,dirty=1;disk0:format=mock,dirty=0");
	assert_int_equal(cfg.nr, 2);
	nic = &cfg.dev[0];
	disk = &cfg.dev[1];
	assert_string_equal(nic->name, "nic0");
	assert_int_equal(nic->format, UIOMMU_PT_X86);
	assert_true(nic->has_aperture);
	assert_int_equal(nic->aperture_start, 0);
	assert_int_equal(nic->aperture_last, 0xffffffffffull);
	assert_int_equal(nic->nr_reserved, 1);
	assert_int_equal(nic->reserved[0].start, 0xfee00000ull);
	assert_int_equal(nic->reserved[0].last, 0xfeefffffull);
	assert_int_equal(nic->pgsize_bitmap, (1ull << 12) | (1ull << 21) | (1ull << 30));
	assert_true(nic->dirty);
	assert_false(nic->dma.enabled);
	assert_string_equal(disk->name, "disk0");
	assert_int_equal(disk->format, UIOMMU_PT_MOCK);
	assert_false(disk->dirty);
	assert_false(disk->has_aperture);
}

static void test_devcfg_defaults_for_a_bare_name(void **state)
{
	const struct uiommu_devcfg_dev *d = &cfg.dev[0];

	(void)state;
	parse_ok("a");
	assert_int_equal(cfg.nr, 1);
	assert_string_equal(d->name, "a");
	assert_int_equal(d->format, UIOMMU_PT_X86);
	assert_int_equal(d->pgsize_bitmap, 0);
	assert_false(d->has_aperture);
	assert_int_equal(d->nr_reserved, 0);
	assert_true(d->dirty);
	assert_int_equal(d->pasid_log2, 0);
	assert_false(d->dma.enabled);
}

static void test_devcfg_empty_spec_is_no_devices(void **state)
{
	(void)state;
	parse_ok("");
	assert_int_equal(cfg.nr, 0);
}

static void test_devcfg_dma_window_rate_and_pattern(void **state)
{
	const struct uiommu_devcfg_dma *dma = &cfg.dev[0].dma;

	(void)state;
	parse_ok("n:dma=0x100000-0x4fffff@10m:random;s:dma=4096-8191@1000;k:dma=0-0@3K:seq");
	assert_true(dma->enabled);
	assert_int_equal(dma->start, 0x100000);
	assert_int_equal(dma->last, 0x4fffff);
	assert_int_equal(dma->rate_bytes, 10ull << 20);
	assert_int_equal(dma->pattern, UIOMMU_DEVCFG_DMA_RANDOM);
	dma = &cfg.dev[1].dma;
	assert_int_equal(dma->start, 4096);
	assert_int_equal(dma->last, 8191);
	assert_int_equal(dma->rate_bytes, 1000);
	assert_int_equal(dma->pattern, UIOMMU_DEVCFG_DMA_SEQ);
	dma = &cfg.dev[2].dma;
	assert_int_equal(dma->last, 0);
	assert_int_equal(dma->rate_bytes, 3ull << 10);
}

static void test_devcfg_mock_sizes_pasid_and_reserved_list(void **state)
{
	const struct uiommu_devcfg_dev *d = &cfg.dev[0];

	(void)state;
	parse_ok("m-1_x.y:format=mock,pgsizes=1M|2k,pasid=20,"
		 "reserved=0x0-0xfff|0xFEE00000-0xFEEFFFFF|18446744073709551615-18446744073709551615,"
		 "aperture=0x1000000-0x7fffffff");
	assert_string_equal(d->name, "m-1_x.y");
	assert_int_equal(d->pgsize_bitmap, (1ull << 11) | (1ull << 20));
	assert_int_equal(d->pasid_log2, 20);
	assert_int_equal(d->nr_reserved, 3);
	assert_int_equal(d->reserved[1].start, 0xfee00000ull);
	assert_int_equal(d->reserved[2].start, UINT64_MAX);
	assert_int_equal(d->reserved[2].last, UINT64_MAX);
	assert_int_equal(d->aperture_start, 0x1000000);
	assert_int_equal(d->aperture_last, 0x7fffffff);
}

static void test_devcfg_full_48_bit_aperture_and_max_devices(void **state)
{
	char spec[32 * 8 + 1] = "";

	(void)state;
	parse_ok("a:aperture=0x0-0xffffffffffff");
	assert_int_equal(cfg.dev[0].aperture_last, (1ull << 48) - 1);
	for (int i = 0; i < UIOMMU_DEVCFG_MAX_DEVICES; i++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%sd%d", i ? ";" : "", i);
	parse_ok(spec);
	assert_int_equal(cfg.nr, UIOMMU_DEVCFG_MAX_DEVICES);
	assert_string_equal(cfg.dev[31].name, "d31");
}

static void test_devcfg_hwdev_cfg_carries_every_field(void **state)
{
	struct uiommu_hwdev_cfg hc;

	(void)state;
	parse_ok("nic0:pgsizes=4k|2m,aperture=0x0-0xffffffff,reserved=0xfee00000-0xfeefffff,"
		 "dirty=0,pasid=8;plain");
	uiommu__devcfg_hwdev_cfg(&cfg.dev[0], &hc);
	assert_string_equal(hc.name, "nic0");
	assert_int_equal(hc.format, UIOMMU_PT_X86);
	assert_int_equal(hc.pgsize_bitmap, (1ull << 12) | (1ull << 21));
	assert_int_equal(hc.aperture_start, 0);
	assert_int_equal(hc.aperture_last, 0xffffffffull);
	assert_int_equal(hc.nr_reserved, 1);
	assert_ptr_equal(hc.reserved, cfg.dev[0].reserved);
	assert_false(hc.dirty_tracking);
	assert_int_equal(hc.max_pasid_log2, 8);
	assert_int_equal(hc.hw_info_type, 0);
	assert_null(hc.hw_info);
	uiommu__devcfg_hwdev_cfg(&cfg.dev[1], &hc);
	/* Unset aperture: 0/0 asks the library for the format's whole space. */
	assert_int_equal(hc.aperture_start, 0);
	assert_int_equal(hc.aperture_last, 0);
	assert_null(hc.reserved);
	assert_true(hc.dirty_tracking);
}

struct bad_spec {
	const char *spec;
	size_t offset;
	const char *msg; /* a substring of the message */
};

static const struct bad_spec bad_specs[] = {
	{ ";", 0, "empty device entry" },
	{ "a;", 2, "empty device entry" },
	{ ";a", 0, "empty device entry" },
	{ "a;;b", 2, "empty device entry" },
	{ ":dirty=1", 0, "empty device name" },
	{ "a:", 2, "no options after ':'" },
	{ "a:,dirty=1", 2, "empty option" },
	{ "a:dirty=1,", 10, "empty option" },
	{ "a:dirty=1,,pasid=1", 10, "empty option" },
	{ "a b", 1, "bad character ' '" },
	{ " a", 0, "bad character ' '" },
	{ "a/b", 1, "bad character '/'" },
	{ "abcdefghijklmnopqrstuvwxyz0123456", 0, "longer than 31" },
	{ "a;b;a", 4, "used twice" },
	{ "a:foo=1", 2, "unknown option \"foo\"" },
	{ "a:Dirty=1", 2, "unknown option" },
	{ "a:dirty", 2, "not key=value" },
	{ "a:dirty=", 8, "empty value" },
	{ "a:dirty=2", 8, "dirty must be 0 or 1" },
	{ "a:dirty=01", 8, "dirty must be 0 or 1" },
	{ "a:dirty=1,dirty=0", 10, "given twice" },
	{ "a:format=arm", 9, "unknown format \"arm\"" },
	{ "a:format=X86", 9, "unknown format" },
	{ "a:pgsizes=3k", 10, "not a power of two" },
	{ "a:pgsizes=0", 10, "not a power of two" },
	{ "a:pgsizes=4k|4k", 13, "listed twice" },
	{ "a:pgsizes=4k|", 13, "empty page size" },
	{ "a:pgsizes=|4k", 10, "empty page size" },
	{ "a:pgsizes=2m", 10, "must include 4k" },
	{ "a:pgsizes=4k|8k", 10, "8k is not offered by format x86" },
	{ "a:format=mock,pgsizes=4k", 22, "4k is not offered by format mock" },
	{ "a:pgsizes=1m,format=mock", 10, "must include 2k, the smallest of mock" },
	{ "a:pgsizes=4x", 11, "bad digit 'x'" },
	{ "a:pgsizes=4kk", 11, "bad digit 'k'" },
	{ "a:pgsizes=99999999999999999999", 10, "does not fit in 64 bits" },
	{ "a:pgsizes=0xffffffffffffffffk", 10, "does not fit in 64 bits" },
	{ "a:aperture=0x1000", 11, "expected start-last" },
	{ "a:aperture=0x2000-0x1fff", 11, "start above last" },
	{ "a:aperture=0x1000-0x1000", 11, "more than one byte" },
	{ "a:aperture=0x0-0x1000", 11, "page boundaries" },
	{ "a:aperture=0x800-0xfff", 11, "page boundaries" },
	{ "a:aperture=0x0-0x1ffffffffffff", 11, "beyond the 48-bit" },
	{ "a:aperture=010-0x1fff", 11, "leading zero" },
	{ "a:aperture=0x-0x1fff", 11, "\"0x\" without hex digits" },
	{ "a:aperture=0xg-0x1fff", 13, "bad hex digit 'g'" },
	{ "a:aperture=0x10000000000000000-0x1", 11, "does not fit in 64 bits" },
	{ "a:aperture=-0x1fff", 11, "expected a number" },
	{ "a:aperture=+1-0x1fff", 11, "bad digit '+'" },
	{ "a:aperture=0x0-0x1fff,aperture=0x0-0x1fff", 22, "given twice" },
	{ "a:reserved=0x1-0x2|", 19, "empty reserved range" },
	{ "a:reserved=0x1", 11, "expected start-last" },
	{ "a:pasid=21", 8, "0 to 20" },
	{ "a:pasid=x", 8, "bad digit 'x'" },
	{ "a:pasid=-1", 8, "bad digit '-'" },
	{ "a:dma=0x1000-0x1fff", 6, "expected dma=start-last@rate" },
	{ "a:dma=0x1000-0x1fff@0", 20, "at least 1 byte" },
	{ "a:dma=0x1000-0x1fff@1m:zigzag", 23, "unknown DMA pattern \"zigzag\"" },
	{ "a:dma=0x1000-0x1fff@1m:", 23, "unknown DMA pattern" },
	{ "a:dma=0x1000-0x1fff@", 20, "expected a number" },
	{ "a:dma=0x2000-0x1fff@1m", 6, "start above last" },
	{ "a:dma=@1m", 6, "expected start-last" },
	{ "a:dma=0x0-0xfff@1t", 17, "bad digit 't'" },
	{ "a:dirty=1;b:dirty=3", 18, "dirty must be 0 or 1" },
	{ "a:dirty=1 ", 8, "dirty must be 0 or 1" },
	{ "a:group=65536", 8, "group must be 0 to 65535" },
	{ "a:group=x", 8, "bad digit 'x'" },
	{ "a:kind=pci", 7, "unknown kind \"pci\"" },
	{ "a:dmalog=2", 9, "dmalog must be 0 or 1" },
	{ "a:kind=mdev", 0, "need group=" },
	{ "a:dmalog=1", 0, "need group=" },
	{ "a:group=1;b:group=1,format=mock", 10, "devices of group 1 must share one format" },
	{ "a:group=1,kind=mdev,dma=0x0-0xffff@1m,pin=0", 42, "pin is a number of pages, 1 to 65536" },
	{ "a:group=1,kind=mdev,dma=0x0-0xffff@1m,pin=65537", 42, "1 to 65536" },
	{ "a:group=1,kind=mdev,dma=0x0-0xffff@1m,pin=x", 42, "bad digit 'x'" },
	{ "a:group=1,kind=mdev,dma=0x0-0xffff@1m,pin=1,pin=2", 44, "given twice" },
	{ "a:group=1,dma=0x0-0xffff@1m,pin=1", 32, "pin= needs kind=mdev" },
	{ "a:group=1,kind=mdev,pin=1", 24, "pin= needs dma=" },
	{ "a:group=1,kind=mdev,dma=0x800-0xffff@1m,pin=1", 44, "starting on a 4k page" },
	{ "a:group=1,kind=mdev,dma=0x0-0xffff@1m,pin=17", 42, "pin=17 pages do not fit" },
	{ "a:group=1,kind=mdev,dma=0x0-0x1ffe@1m,pin=2", 42, "pin=2 pages do not fit" },
	{ "a:group=1,kind=mdev,dmalog=1,dma=0x0-0xffff@1m,pin=1", 51, "exclude each other" },
	{ "a:kind=mdev,dma=0x0-0xffff@1m,pin=1", 0, "need group=" },
};

static void test_devcfg_vfio_group_options(void **state)
{
	(void)state;
	parse_ok("vf0:group=12,dmalog=1;gpu0:group=13,kind=mdev;nic0;m:group=1,format=mock,"
		 "kind=mdev;x:group=1");
	assert_int_equal(cfg.nr, 5);
	assert_true(cfg.dev[0].has_group && cfg.dev[0].group == 12 && cfg.dev[0].dmalog);
	assert_false(cfg.dev[0].mdev);
	assert_true(cfg.dev[1].has_group && cfg.dev[1].group == 13 && cfg.dev[1].mdev);
	assert_false(cfg.dev[1].dmalog);
	assert_false(cfg.dev[2].has_group || cfg.dev[2].mdev || cfg.dev[2].dmalog);
	/* An mdev device's format does not matter to its group's IOMMU devices. */
	assert_true(cfg.dev[3].mdev && cfg.dev[4].group == 1);
	parse_ok("g:group=0,kind=iommu,dmalog=0");
	assert_true(cfg.dev[0].has_group && cfg.dev[0].group == 0);
}

static void test_devcfg_pin_pages_of_the_dma_window(void **state)
{
	(void)state;
	parse_ok("vgpu0:group=15,kind=mdev,pin=16,dma=0x400000-0x40ffff@4m;gpu0:group=15,kind=mdev,"
		 "dma=0x0-0xfff@1m;big:group=16,kind=mdev,dma=0x0-0xfffffff@1g:random,pin=65536;"
		 "one:group=17,kind=mdev,dma=0x1000-0x1fff@1m,pin=1");
	assert_int_equal(cfg.nr, 4);
	/* Exactly as many pages as the window holds. */
	assert_int_equal(cfg.dev[0].pin_pages, 16);
	assert_true(cfg.dev[0].mdev && cfg.dev[0].dma.enabled);
	assert_int_equal(cfg.dev[1].pin_pages, 0); /* the default: pins nothing */
	assert_int_equal(cfg.dev[2].pin_pages, 65536);
	assert_int_equal(cfg.dev[3].pin_pages, 1);
}

static void test_devcfg_rejects_each_bad_form_with_offset(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_specs) / sizeof(bad_specs[0]); i++) {
		const struct bad_spec *b = &bad_specs[i];
		int ret = uiommu__devcfg_parse(b->spec, &cfg, &err);

		if (ret != -EINVAL)
			fail_msg("\"%s\": accepted (%d)", b->spec, ret);
		if (err.offset != b->offset || !strstr(err.msg, b->msg))
			fail_msg("\"%s\": got offset %zu \"%s\", want offset %zu \"%s\"", b->spec,
				 err.offset, err.msg, b->offset, b->msg);
	}
}

static void test_devcfg_rejects_too_many_devices_and_ranges(void **state)
{
	char spec[1024] = "";
	size_t len;

	(void)state;
	for (int i = 0; i <= UIOMMU_DEVCFG_MAX_DEVICES; i++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec), "%sd%d", i ? ";" : "", i);
	assert_int_equal(uiommu__devcfg_parse(spec, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "more than 32 devices"));
	assert_string_equal(spec + err.offset, "d32");

	strcpy(spec, "a:reserved=");
	for (int i = 0; i <= UIOMMU_DEVCFG_MAX_RESERVED; i++) {
		len = strlen(spec);
		snprintf(spec + len, sizeof(spec) - len, "%s%d-%d", i ? "|" : "", i, i);
	}
	assert_int_equal(uiommu__devcfg_parse(spec, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "more than 16 reserved"));
	assert_string_equal(spec + err.offset, "16-16");
}

static void test_devcfg_error_pointer_is_optional(void **state)
{
	(void)state;
	assert_int_equal(uiommu__devcfg_parse("a:bad", &cfg, NULL), -EINVAL);
	assert_int_equal(uiommu__devcfg_parse("a", &cfg, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_devcfg_brief_example_sets_every_field),
		cmocka_unit_test(test_devcfg_defaults_for_a_bare_name),
		cmocka_unit_test(test_devcfg_empty_spec_is_no_devices),
		cmocka_unit_test(test_devcfg_dma_window_rate_and_pattern),
		cmocka_unit_test(test_devcfg_mock_sizes_pasid_and_reserved_list),
		cmocka_unit_test(test_devcfg_full_48_bit_aperture_and_max_devices),
		cmocka_unit_test(test_devcfg_hwdev_cfg_carries_every_field),
		cmocka_unit_test(test_devcfg_vfio_group_options),
		cmocka_unit_test(test_devcfg_pin_pages_of_the_dma_window),
		cmocka_unit_test(test_devcfg_rejects_each_bad_form_with_offset),
		cmocka_unit_test(test_devcfg_rejects_too_many_devices_and_ranges),
		cmocka_unit_test(test_devcfg_error_pointer_is_optional),
	};

	return cmocka_run_group_tests_name("devcfg", tests, NULL, NULL);
}
