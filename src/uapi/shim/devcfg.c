// SPDX-License-Identifier: MIT
/*
 * The UIOMMU_DEVICES parser.
 *
 * The LD_PRELOAD shim serves the devices listed in UIOMMU_DEVICES as
 * /dev/vfio/devices/vfio0, vfio1, ... in the order given; a device with a
 * group= option is served instead behind the VFIO group /dev/vfio/<group>
 * (the type1 container flow) and its cdev does not exist. The language is
 * small and strict: no whitespace, no empty entries, every key at most once
 * per device, numbers without signs or leading zeros, so that a typo is an
 * error with a byte offset instead of a silently different device.
 *
 *   devices  := "" | device (";" device)*
 *   device   := name [":" option ("," option)*]
 *   name     := 1 to 31 characters of [A-Za-z0-9_.-], unique
 *   option   := "format="   ("x86" | "mock")                    default x86
 *             | "pgsizes="  size ("|" size)*                    default: all of the format
 *             | "aperture=" range                               default: all 48 bits
 *             | "reserved=" range ("|" range)*                  at most 16
 *             | "dirty="    ("0" | "1")                         default 1
 *             | "pasid="    num                                 0..20, default 0
 *             | "dma="      range "@" size [":" ("seq" | "random")]
 *             | "group="    num                                 0..65535: VFIO group
 *             | "kind="     ("iommu" | "mdev")                  default iommu
 *             | "dmalog="   ("0" | "1")                         default 0
 *             | "pin="      num                                 1..65536 pages
 *   range    := num "-" num                                     inclusive: start-last
 *   num      := "0" | [1-9][0-9]* | "0x" [0-9a-fA-F]+           fits in 64 bits
 *   size     := num ["k" | "m" | "g" | "K" | "M" | "G"]          binary multiples
 *
 * Checks beyond the grammar: page sizes must be offered by the format
 * (x86: 4k, 2m, 1g; mock: 2k, 1m) and include its smallest; the aperture
 * must be start < last, aligned to the smallest page at both ends and lie in
 * the 48-bit IOVA space; the DMA rate (bytes per second) must be at least 1;
 * kind=mdev and dmalog=1 need group= (they exist only behind a VFIO group);
 * pin= needs kind=mdev and dma= whose window starts on a 4 KiB page and
 * holds the pinned pages, and excludes dmalog=1.
 *
 * VFIO groups: devices with the same group= share the group. A group is
 * emulated (mdev-like: no IOMMU, its devices pin pages and write through the
 * container) when all its devices are kind=mdev, else IOMMU-backed, with the
 * aperture, reserved regions, page sizes and dirty capability of its iommu
 * devices (all of one format). dmalog=1 gives the device the DMA logging
 * features (VFIO_DEVICE_FEATURE_DMA_LOGGING_*): it records its own writes.
 * pin=N makes a kind=mdev device pin the first N pages (4 KiB, the CPU page)
 * of its DMA window while a device fd is open, as a driver that does not
 * track its writes but pins what it uses (vfio_pin_pages), and DMA into
 * them through the pinned pages; the type1 container then reports them
 * dirty in every bitmap while they stay pinned (shim/pins.c). A device that
 * tracks nothing cannot also log its own writes: hence no dmalog=1.
 *
 * Example:
 *   nic0:aperture=0x0-0xffffffffff,reserved=0xfee00000-0xfeefffff,pgsizes=4k|2m|1g,
 *   dirty=1,dma=0x100000-0x4fffff@10m:random;disk0:format=mock,dirty=0;
 *   vf0:group=12,dmalog=1,dma=0x100000-0x1fffff@1m;gpu0:group=13,kind=mdev;
 *   vgpu0:group=15,kind=mdev,pin=16,dma=0x400000-0x41ffff@4m
 *
 * A span is a (pointer, length) view into the spec; nothing is copied except
 * the device names. Errors carry the offset of the offending token.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uapi/shim/devcfg.h"

struct span {
	const char *s;
	size_t n;
};

struct parser {
	const char *spec;
	struct uiommu_devcfg_err *err;
};

/* Where each option's value started, for errors found after the last option. */
struct dev_pos {
	const char *pgsizes;
	const char *aperture;
	const char *pin;
	unsigned int seen; /* bit per option key */
};

static int fail(struct parser *p, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, const char *at, const char *fmt, ...)
{
	va_list ap;

	if (p->err) {
		p->err->offset = (size_t)(at - p->spec);
		va_start(ap, fmt);
		vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool span_eq(struct span t, const char *word)
{
	return t.n == strlen(word) && !memcmp(t.s, word, t.n);
}

/* Splits @t at the first @c: *head before it, *tail after it. False when absent. */
static bool span_split(struct span t, char c, struct span *head, struct span *tail)
{
	const char *at = t.n ? memchr(t.s, c, t.n) : NULL;
	struct span h, r;

	if (!at)
		return false;
	h = (struct span){ t.s, (size_t)(at - t.s) };
	r = (struct span){ at + 1, t.n - h.n - 1 };
	*head = h;
	*tail = r;
	return true;
}

typedef int (*item_fn)(struct parser *p, struct span item, void *opaque);

/*
 * Calls @fn on each @sep-separated item of @list in order. An empty item (two
 * separators in a row, or one at either end) is an error named by @what.
 */
static int for_each_item(struct parser *p, struct span list, char sep, const char *what,
			 item_fn fn, void *opaque)
{
	struct span item, rest = list;
	bool more;
	int ret;

	do {
		more = span_split(rest, sep, &item, &rest);
		if (!more)
			item = rest;
		if (!item.n)
			return fail(p, item.s, "empty %s (stray '%c')", what, sep);
		ret = fn(p, item, opaque);
		if (ret)
			return ret;
	} while (more);
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hex(struct parser *p, struct span t, uint64_t *v)
{
	uint64_t x = 0;
	int d;

	if (t.n == 2)
		return fail(p, t.s, "\"0x\" without hex digits");
	for (size_t i = 2; i < t.n; i++) {
		d = hex_digit(t.s[i]);
		if (d < 0)
			return fail(p, t.s + i, "bad hex digit '%c' in \"%.*s\"", t.s[i], (int)t.n,
				    t.s);
		if (x >> 60)
			return fail(p, t.s, "number \"%.*s\" does not fit in 64 bits", (int)t.n,
				    t.s);
		x = x << 4 | (uint64_t)d;
	}
	*v = x;
	return 0;
}

static int parse_num(struct parser *p, struct span t, uint64_t *v)
{
	uint64_t x = 0, d;

	if (!t.n)
		return fail(p, t.s, "expected a number");
	if (t.n >= 2 && t.s[0] == '0' && (t.s[1] == 'x' || t.s[1] == 'X'))
		return parse_hex(p, t, v);
	if (t.n > 1 && t.s[0] == '0')
		return fail(p, t.s, "leading zero in \"%.*s\" (write hex as 0x...)", (int)t.n,
			    t.s);
	for (size_t i = 0; i < t.n; i++) {
		if (t.s[i] < '0' || t.s[i] > '9')
			return fail(p, t.s + i, "bad digit '%c' in number \"%.*s\"", t.s[i],
				    (int)t.n, t.s);
		d = (uint64_t)(t.s[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return fail(p, t.s, "number \"%.*s\" does not fit in 64 bits", (int)t.n,
				    t.s);
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static unsigned int suffix_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	default: return 0;
	}
}

/* A number with an optional binary-multiple suffix. */
static int parse_size(struct parser *p, struct span t, uint64_t *v)
{
	unsigned int shift = t.n ? suffix_shift(t.s[t.n - 1]) : 0;
	struct span num = { t.s, shift ? t.n - 1 : t.n };
	uint64_t x;
	int ret;

	/* No ambiguity with hex: k, m and g are not hex digits. */
	ret = parse_num(p, num, &x);
	if (ret)
		return ret;
	if (shift && x > (UINT64_MAX >> shift))
		return fail(p, t.s, "size \"%.*s\" does not fit in 64 bits", (int)t.n, t.s);
	*v = x << shift;
	return 0;
}

static int parse_range(struct parser *p, struct span t, uint64_t *start, uint64_t *last)
{
	struct span a, b;
	int ret;

	if (!span_split(t, '-', &a, &b))
		return fail(p, t.s, "expected start-last, got \"%.*s\"", (int)t.n, t.s);
	ret = parse_num(p, a, start);
	if (!ret)
		ret = parse_num(p, b, last);
	if (ret)
		return ret;
	if (*start > *last)
		return fail(p, t.s, "range \"%.*s\" has start above last (last is inclusive)",
			    (int)t.n, t.s);
	return 0;
}

uint64_t uiommu__devcfg_format_pgsizes(enum uiommu_pt_format format)
{
	if (format == UIOMMU_PT_MOCK)
		return (1ull << 11) | (1ull << 20);
	return (1ull << 12) | (1ull << 21) | (1ull << 30);
}

/* "4k", "2m", "1g" or plain bytes, for messages. */
static const char *fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char units[] = { 'g', 'm', 'k' };

	for (unsigned int i = 0; i < 3; i++) {
		unsigned int shift = 30 - 10 * i;

		if (v >= (1ull << shift) && !(v & ((1ull << shift) - 1))) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v >> shift), units[i]);
			return buf;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

static const char *format_name(enum uiommu_pt_format format)
{
	return format == UIOMMU_PT_MOCK ? "mock" : "x86";
}

static int opt_format(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	if (span_eq(v, "x86"))
		d->format = UIOMMU_PT_X86;
	else if (span_eq(v, "mock"))
		d->format = UIOMMU_PT_MOCK;
	else
		return fail(p, v.s, "unknown format \"%.*s\" (expected x86 or mock)", (int)v.n,
			    v.s);
	return 0;
}

static int pgsize_item(struct parser *p, struct span t, void *opaque)
{
	struct uiommu_devcfg_dev *d = opaque;
	uint64_t size;
	int ret = parse_size(p, t, &size);

	if (ret)
		return ret;
	if (!size || (size & (size - 1)))
		return fail(p, t.s, "page size \"%.*s\" is not a power of two", (int)t.n, t.s);
	if (d->pgsize_bitmap & size)
		return fail(p, t.s, "page size \"%.*s\" listed twice", (int)t.n, t.s);
	d->pgsize_bitmap |= size;
	return 0;
}

static int opt_pgsizes(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	return for_each_item(p, v, '|', "page size", pgsize_item, d);
}

static int opt_aperture(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	d->has_aperture = true;
	return parse_range(p, v, &d->aperture_start, &d->aperture_last);
}

static int reserved_item(struct parser *p, struct span t, void *opaque)
{
	struct uiommu_devcfg_dev *d = opaque;
	struct uiommu_iova_range *r = &d->reserved[d->nr_reserved];
	int ret;

	if (d->nr_reserved == UIOMMU_DEVCFG_MAX_RESERVED)
		return fail(p, t.s, "more than %d reserved ranges", UIOMMU_DEVCFG_MAX_RESERVED);
	ret = parse_range(p, t, &r->start, &r->last);
	if (!ret)
		d->nr_reserved++;
	return ret;
}

static int opt_reserved(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	return for_each_item(p, v, '|', "reserved range", reserved_item, d);
}

static int opt_dirty(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	if (span_eq(v, "0") || span_eq(v, "1")) {
		d->dirty = v.s[0] == '1';
		return 0;
	}
	return fail(p, v.s, "dirty must be 0 or 1, not \"%.*s\"", (int)v.n, v.s);
}

static int opt_pasid(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	uint64_t bits;
	int ret = parse_num(p, v, &bits);

	if (ret)
		return ret;
	if (bits > UIOMMU_DEVCFG_MAX_PASID_LOG2)
		return fail(p, v.s, "pasid is a width in bits, 0 to %d, not %llu",
			    UIOMMU_DEVCFG_MAX_PASID_LOG2, (unsigned long long)bits);
	d->pasid_log2 = (uint8_t)bits;
	return 0;
}

static int opt_bool(struct parser *p, struct span v, const char *key, bool *out)
{
	if (span_eq(v, "0") || span_eq(v, "1")) {
		*out = v.s[0] == '1';
		return 0;
	}
	return fail(p, v.s, "%s must be 0 or 1, not \"%.*s\"", key, (int)v.n, v.s);
}

static int opt_group(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	uint64_t n;
	int ret = parse_num(p, v, &n);

	if (ret)
		return ret;
	if (n > UIOMMU_DEVCFG_MAX_GROUP)
		return fail(p, v.s, "group must be 0 to %d", UIOMMU_DEVCFG_MAX_GROUP);
	d->has_group = true;
	d->group = (uint32_t)n;
	return 0;
}

static int opt_kind(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	if (span_eq(v, "iommu") || span_eq(v, "mdev")) {
		d->mdev = v.s[0] == 'm';
		return 0;
	}
	return fail(p, v.s, "unknown kind \"%.*s\" (expected iommu or mdev)", (int)v.n, v.s);
}

static int opt_dmalog(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	return opt_bool(p, v, "dmalog", &d->dmalog);
}

static int opt_pin(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	uint64_t n;
	int ret = parse_num(p, v, &n);

	if (ret)
		return ret;
	if (!n || n > UIOMMU_DEVCFG_MAX_PIN)
		return fail(p, v.s, "pin is a number of pages, 1 to %d, not %llu",
			    UIOMMU_DEVCFG_MAX_PIN, (unsigned long long)n);
	d->pin_pages = (uint32_t)n;
	return 0;
}

static int dma_pattern(struct parser *p, struct span t, enum uiommu_devcfg_pattern *out)
{
	if (span_eq(t, "seq"))
		*out = UIOMMU_DEVCFG_DMA_SEQ;
	else if (span_eq(t, "random"))
		*out = UIOMMU_DEVCFG_DMA_RANDOM;
	else
		return fail(p, t.s, "unknown DMA pattern \"%.*s\" (expected seq or random)",
			    (int)t.n, t.s);
	return 0;
}

static int opt_dma(struct parser *p, struct uiommu_devcfg_dev *d, struct span v)
{
	struct uiommu_devcfg_dma *dma = &d->dma;
	struct span window, tail, rate, pattern;
	int ret;

	if (!span_split(v, '@', &window, &tail))
		return fail(p, v.s, "expected dma=start-last@rate[:seq|random], got \"%.*s\"",
			    (int)v.n, v.s);
	ret = parse_range(p, window, &dma->start, &dma->last);
	if (ret)
		return ret;
	if (span_split(tail, ':', &rate, &pattern)) {
		ret = dma_pattern(p, pattern, &dma->pattern);
		if (ret)
			return ret;
	} else {
		rate = tail;
	}
	ret = parse_size(p, rate, &dma->rate_bytes);
	if (ret)
		return ret;
	if (!dma->rate_bytes)
		return fail(p, rate.s, "DMA rate must be at least 1 byte per second");
	dma->enabled = true;
	return 0;
}

typedef int (*opt_fn)(struct parser *p, struct uiommu_devcfg_dev *d, struct span v);

static const struct {
	const char *key;
	opt_fn fn;
} options[] = {
	{ "format", opt_format },     { "pgsizes", opt_pgsizes }, { "aperture", opt_aperture },
	{ "reserved", opt_reserved }, { "dirty", opt_dirty },     { "pasid", opt_pasid },
	{ "dma", opt_dma },	      { "group", opt_group },     { "kind", opt_kind },
	{ "dmalog", opt_dmalog },     { "pin", opt_pin },
};

struct dev_state {
	struct uiommu_devcfg_dev *d;
	struct dev_pos pos;
};

static int parse_option(struct parser *p, struct span opt, void *opaque)
{
	struct dev_state *st = opaque;
	struct uiommu_devcfg_dev *d = st->d;
	struct dev_pos *pos = &st->pos;
	struct span key, val;

	if (!span_split(opt, '=', &key, &val))
		return fail(p, opt.s, "option \"%.*s\" is not key=value", (int)opt.n, opt.s);
	for (unsigned int i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		if (!span_eq(key, options[i].key))
			continue;
		if (pos->seen & (1u << i))
			return fail(p, key.s, "option \"%s\" given twice", options[i].key);
		pos->seen |= 1u << i;
		if (!val.n)
			return fail(p, val.s, "option \"%s\" has an empty value", options[i].key);
		if (options[i].fn == opt_pgsizes)
			pos->pgsizes = val.s;
		if (options[i].fn == opt_aperture)
			pos->aperture = val.s;
		if (options[i].fn == opt_pin)
			pos->pin = val.s;
		return options[i].fn(p, d, val);
	}
	return fail(p, key.s,
		    "unknown option \"%.*s\" (expected format, pgsizes, aperture, reserved, "
		    "dirty, pasid, dma, group, kind, dmalog or pin)",
		    (int)key.n, key.s);
}

static int check_pgsizes(struct parser *p, const struct uiommu_devcfg_dev *d,
			 const struct dev_pos *pos)
{
	uint64_t offered = uiommu__devcfg_format_pgsizes(d->format);
	uint64_t smallest = offered & -offered, bad = d->pgsize_bitmap & ~offered;
	char a[24], b[24];

	if (!d->pgsize_bitmap)
		return 0;
	if (bad)
		return fail(p, pos->pgsizes, "page size %s is not offered by format %s",
			    fmt_size(bad & -bad, a, sizeof(a)), format_name(d->format));
	if (!(d->pgsize_bitmap & smallest))
		return fail(p, pos->pgsizes, "page sizes must include %s, the smallest of %s",
			    fmt_size(smallest, b, sizeof(b)), format_name(d->format));
	return 0;
}

static int check_aperture(struct parser *p, const struct uiommu_devcfg_dev *d,
			  const struct dev_pos *pos)
{
	uint64_t offered = uiommu__devcfg_format_pgsizes(d->format);
	uint64_t mask = (offered & -offered) - 1;

	if (!d->has_aperture)
		return 0;
	if (d->aperture_start == d->aperture_last)
		return fail(p, pos->aperture, "aperture must span more than one byte");
	if (d->aperture_last > UIOMMU_DEVCFG_MAX_IOVA)
		return fail(p, pos->aperture, "aperture ends beyond the 48-bit IOVA space");
	if ((d->aperture_start & mask) || (d->aperture_last & mask) != mask)
		return fail(p, pos->aperture,
			    "aperture must start and end on %llu-byte page boundaries (last is "
			    "inclusive)",
			    (unsigned long long)mask + 1);
	return 0;
}

/* The pinned pages are the first of the DMA window, whole 4 KiB pages. */
static int check_pin(struct parser *p, const struct uiommu_devcfg_dev *d,
		     const struct dev_pos *pos)
{
	const struct uiommu_devcfg_dma *dma = &d->dma;

	if (!d->pin_pages)
		return 0;
	if (!d->mdev)
		return fail(p, pos->pin, "pin= needs kind=mdev (only emulated devices pin)");
	if (d->dmalog)
		return fail(p, pos->pin, "pin= and dmalog=1 exclude each other (a pinning device "
				       "does not track its writes)");
	if (!dma->enabled)
		return fail(p, pos->pin, "pin= needs dma= (the pages pinned are its window's)");
	if (dma->start & (UIOMMU_DEVCFG_PIN_PAGE - 1))
		return fail(p, pos->pin, "pin= needs a DMA window starting on a 4k page");
	/* last is inclusive: compare with length - 1, which cannot overflow. */
	if (d->pin_pages * UIOMMU_DEVCFG_PIN_PAGE - 1 > dma->last - dma->start)
		return fail(p, pos->pin, "pin=%u pages do not fit in the DMA window",
			    (unsigned int)d->pin_pages);
	return 0;
}

static int parse_name(struct parser *p, const struct uiommu_devcfg *cfg, size_t idx,
		      struct span name, char *out)
{
	if (!name.n)
		return fail(p, name.s, "empty device name");
	if (name.n > UIOMMU_DEVCFG_NAME_MAX)
		return fail(p, name.s, "device name longer than %d characters",
			    UIOMMU_DEVCFG_NAME_MAX);
	for (size_t i = 0; i < name.n; i++) {
		char c = name.s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '_' && c != '.' && c != '-')
			return fail(p, name.s + i, "bad character '%c' in device name", c);
	}
	for (size_t i = 0; i < idx; i++) {
		if (span_eq(name, cfg->dev[i].name))
			return fail(p, name.s, "device name \"%.*s\" used twice", (int)name.n,
				    name.s);
	}
	memcpy(out, name.s, name.n);
	out[name.n] = '\0';
	return 0;
}

/* The IOMMU devices of one group share a page-table format (a type1 rule). */
static int check_group_format(struct parser *p, const struct uiommu_devcfg *cfg,
			      const struct uiommu_devcfg_dev *d, const char *at)
{
	for (size_t i = 0; d->has_group && !d->mdev && i < cfg->nr; i++) {
		const struct uiommu_devcfg_dev *o = &cfg->dev[i];

		if (o->has_group && o->group == d->group && !o->mdev && o->format != d->format)
			return fail(p, at, "devices of group %u must share one format",
				    (unsigned int)d->group);
	}
	return 0;
}

static int parse_device(struct parser *p, struct span dev, void *opaque)
{
	struct uiommu_devcfg *cfg = opaque;
	struct dev_state st = { .d = &cfg->dev[cfg->nr], };
	struct uiommu_devcfg_dev *d = st.d;
	struct span name, opts;
	bool has_opts = span_split(dev, ':', &name, &opts);
	int ret;

	if (cfg->nr == UIOMMU_DEVCFG_MAX_DEVICES)
		return fail(p, dev.s, "more than %d devices", UIOMMU_DEVCFG_MAX_DEVICES);
	memset(d, 0, sizeof(*d));
	d->format = UIOMMU_PT_X86;
	d->dirty = true;
	ret = parse_name(p, cfg, cfg->nr, has_opts ? name : dev, d->name);
	if (!ret && has_opts && !opts.n)
		return fail(p, opts.s, "no options after ':'");
	if (!ret && has_opts)
		ret = for_each_item(p, opts, ',', "option", parse_option, &st);
	if (!ret)
		ret = check_pgsizes(p, d, &st.pos);
	if (!ret)
		ret = check_aperture(p, d, &st.pos);
	if (!ret && (d->mdev || d->dmalog) && !d->has_group)
		ret = fail(p, dev.s, "kind=mdev and dmalog=1 need group= (VFIO group devices only)");
	if (!ret)
		ret = check_pin(p, d, &st.pos);
	if (!ret)
		ret = check_group_format(p, cfg, d, dev.s);
	if (!ret)
		cfg->nr++;
	return ret;
}

int uiommu__devcfg_parse(const char *spec, struct uiommu_devcfg *cfg,
			 struct uiommu_devcfg_err *err)
{
	struct parser p = { .spec = spec, .err = err };
	struct span all = { spec, strlen(spec) };

	cfg->nr = 0;
	if (err) {
		err->offset = 0;
		err->msg[0] = '\0';
	}
	if (!all.n)
		return 0;
	return for_each_item(&p, all, ';', "device entry", parse_device, cfg);
}

void uiommu__devcfg_hwdev_cfg(const struct uiommu_devcfg_dev *dev, struct uiommu_hwdev_cfg *out)
{
	memset(out, 0, sizeof(*out));
	out->name = dev->name;
	out->format = dev->format;
	out->pgsize_bitmap = dev->pgsize_bitmap;
	if (dev->has_aperture) {
		out->aperture_start = dev->aperture_start;
		out->aperture_last = dev->aperture_last;
	}
	out->reserved = dev->nr_reserved ? dev->reserved : NULL;
	out->nr_reserved = dev->nr_reserved;
	out->dirty_tracking = dev->dirty;
	out->max_pasid_log2 = dev->pasid_log2;
	/* No vendor data: GET_HW_INFO reports type NONE, as for a plain device. */
	out->hw_info_type = 0;
}
