// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the UIOMMU_DEVICES parser (src/uapi/shim/devcfg.c).
 *
 * Oracle, beyond "does not crash" (run under ASan/UBSan):
 *  - a rejected spec gives -EINVAL, an offset inside the spec and a non-empty,
 *    terminated message;
 *  - an accepted spec yields devices that satisfy every documented check,
 *    and printing them back in canonical form and parsing that again gives
 *    the same devices (the grammar and the parser agree).
 *
 * Built with libFuzzer when the compiler is clang (fuzz_devcfg), and linked
 * with replay.c into replay_devcfg, which every build runs as a test.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uapi/shim/devcfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void oracle(bool ok, const char *expr, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz_devcfg: %s:%d: %s\n", __FILE__, line, expr);
		abort();
	}
}

#define ORACLE(cond) oracle(!!(cond), #cond, __LINE__)

static void check_error(const char *spec, int ret, const struct uiommu_devcfg_err *err)
{
	ORACLE(ret == -EINVAL);
	ORACLE(err->offset <= strlen(spec));
	ORACLE(memchr(err->msg, '\0', sizeof(err->msg)));
	ORACLE(err->msg[0] != '\0');
}

static void check_device(const struct uiommu_devcfg_dev *d)
{
	uint64_t offered = uiommu__devcfg_format_pgsizes(d->format);

	ORACLE(d->name[0] && strlen(d->name) <= UIOMMU_DEVCFG_NAME_MAX);
	ORACLE(d->format == UIOMMU_PT_X86 || d->format == UIOMMU_PT_MOCK);
	ORACLE(!(d->pgsize_bitmap & ~offered));
	ORACLE(!d->pgsize_bitmap || (d->pgsize_bitmap & offered & -offered));
	if (d->has_aperture) {
		ORACLE(d->aperture_start < d->aperture_last);
		ORACLE(d->aperture_last <= UIOMMU_DEVCFG_MAX_IOVA);
	}
	ORACLE(d->nr_reserved <= UIOMMU_DEVCFG_MAX_RESERVED);
	for (size_t i = 0; i < d->nr_reserved; i++)
		ORACLE(d->reserved[i].start <= d->reserved[i].last);
	ORACLE(d->pasid_log2 <= UIOMMU_DEVCFG_MAX_PASID_LOG2);
	if (d->dma.enabled)
		ORACLE(d->dma.start <= d->dma.last && d->dma.rate_bytes >= 1);
	ORACLE(!(d->mdev || d->dmalog) || d->has_group);
	if (d->pin_pages) {
		ORACLE(d->mdev && !d->dmalog && d->dma.enabled);
		ORACLE(d->pin_pages <= UIOMMU_DEVCFG_MAX_PIN);
		ORACLE(!(d->dma.start % UIOMMU_DEVCFG_PIN_PAGE));
		ORACLE(d->pin_pages * UIOMMU_DEVCFG_PIN_PAGE - 1 <= d->dma.last - d->dma.start);
	}
}

#define PUT(...) (n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__))

static size_t print_pgsizes(uint64_t bitmap, char *buf, size_t len, size_t n)
{
	const char *sep = ",pgsizes=";

	for (unsigned int b = 0; b < 64; b++) {
		if (!(bitmap & (1ull << b)))
			continue;
		PUT("%s0x%llx", sep, 1ull << b);
		sep = "|";
	}
	return n;
}

/* Canonical spelling of one device: every option, in a fixed order. */
static size_t print_device(const struct uiommu_devcfg_dev *d, char *buf, size_t len, size_t n)
{
	PUT("%s:format=%s,dirty=%d,pasid=%u", d->name, d->format == UIOMMU_PT_MOCK ? "mock" : "x86",
	    d->dirty, d->pasid_log2);
	n = print_pgsizes(d->pgsize_bitmap, buf, len, n);
	if (d->has_aperture)
		PUT(",aperture=0x%llx-%llu", (unsigned long long)d->aperture_start,
		    (unsigned long long)d->aperture_last);
	for (size_t i = 0; i < d->nr_reserved; i++)
		PUT("%s0x%llx-0x%llx", i ? "|" : ",reserved=",
		    (unsigned long long)d->reserved[i].start, (unsigned long long)d->reserved[i].last);
	if (d->dma.enabled)
		PUT(",dma=%llu-0x%llx@%llu:%s", (unsigned long long)d->dma.start,
		    (unsigned long long)d->dma.last, (unsigned long long)d->dma.rate_bytes,
		    d->dma.pattern == UIOMMU_DEVCFG_DMA_RANDOM ? "random" : "seq");
	if (d->has_group)
		PUT(",group=%u,kind=%s,dmalog=%d", (unsigned int)d->group,
		    d->mdev ? "mdev" : "iommu", d->dmalog);
	if (d->pin_pages)
		PUT(",pin=%u", (unsigned int)d->pin_pages);
	return n;
}

static void check_round_trip(const struct uiommu_devcfg *cfg)
{
	static struct uiommu_devcfg again;
	struct uiommu_devcfg_err err;
	size_t len = 64 * 1024, n = 0;
	char *buf = malloc(len);

	ORACLE(buf);
	buf[0] = '\0';
	for (size_t i = 0; i < cfg->nr; i++) {
		if (i)
			PUT(";");
		n = print_device(&cfg->dev[i], buf, len, n);
	}
	ORACLE(n < len);
	if (uiommu__devcfg_parse(buf, &again, &err)) {
		fprintf(stderr, "fuzz_devcfg: canonical \"%s\" rejected at %zu: %s\n", buf,
			err.offset, err.msg);
		abort();
	}
	ORACLE(again.nr == cfg->nr);
	/* The parser zeroes each device before filling it, padding included. */
	ORACLE(!memcmp(again.dev, cfg->dev, cfg->nr * sizeof(cfg->dev[0])));
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct uiommu_devcfg cfg;
	struct uiommu_devcfg_err err;
	char *spec = malloc(size + 1);
	int ret;

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	ret = uiommu__devcfg_parse(spec, &cfg, &err);
	if (ret) {
		check_error(spec, ret, &err);
	} else {
		ORACLE(cfg.nr <= UIOMMU_DEVCFG_MAX_DEVICES);
		for (size_t i = 0; i < cfg.nr; i++)
			check_device(&cfg.dev[i]);
		check_round_trip(&cfg);
	}
	free(spec);
	return 0;
}
