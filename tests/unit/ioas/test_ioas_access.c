/* SPDX-License-Identifier: MIT */
/*
 * Tests of accesses: alignment they impose, pin/unpin (host pages, pin
 * counts, every errno), reads and writes by IOVA, the unmap callback and
 * -EBUSY when it keeps its pins, moving to another IOAS, destroy, a fail-nth
 * sweep over pin, and a two-thread race of pins against unmaps.
 */
#include <pthread.h>
#include <sched.h>

#include "ioas_test.h"

/* An access that records its pins the way the selftest's mock access does. */
#define MAX_ITEMS 32

struct acc_ctx {
	struct uiommu_access *acc;
	pthread_mutex_t lock;
	struct {
		uint64_t iova, len;
		bool live;
	} items[MAX_ITEMS];
	unsigned int calls;
	uint64_t cb_iova, cb_len;
	bool keep_pins; /* the callback ignores unmaps */
};

static void acc_unmap(void *opaque, uint64_t iova, uint64_t length)
{
	struct acc_ctx *c = opaque;
	uint64_t last = iova + length - 1;

	pthread_mutex_lock(&c->lock);
	c->calls++;
	c->cb_iova = iova;
	c->cb_len = length;
	for (unsigned int i = 0; i < MAX_ITEMS && !c->keep_pins; i++) {
		if (!c->items[i].live || c->items[i].iova > last ||
		    c->items[i].iova + c->items[i].len - 1 < iova)
			continue;
		uiommu_access_unpin(c->acc, c->items[i].iova, c->items[i].len);
		c->items[i].live = false;
	}
	pthread_mutex_unlock(&c->lock);
}

static const struct uiommu_access_ops pin_ops = { .needs_pin = true, .unmap = acc_unmap };
static const struct uiommu_access_ops rw_ops = { .needs_pin = false, .unmap = acc_unmap };

static struct acc_ctx *acc_new(struct uiommu_ioas *ioas, const struct uiommu_access_ops *ops)
{
	struct acc_ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	pthread_mutex_init(&c->lock, NULL);
	assert_int_equal(uiommu_access_create(ioas, ops, c, &c->acc), 0);
	return c;
}

static void acc_free(struct acc_ctx *c)
{
	uiommu_access_destroy(c->acc);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Pins and records; returns the errno of the pin. */
static int acc_pin(struct acc_ctx *c, uint64_t iova, uint64_t len, uint32_t flags, void **pages)
{
	size_t n = (size_t)((((iova + len - 1) & ~(PAGE - 1)) - (iova & ~(PAGE - 1))) / PAGE + 1);
	void *local[64];
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = uiommu_access_pin(c->acc, iova, len, flags, pages ? pages : local, n);
	for (unsigned int i = 0; !rc && i < MAX_ITEMS; i++) {
		if (c->items[i].live)
			continue;
		c->items[i].iova = iova;
		c->items[i].len = len;
		c->items[i].live = true;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void acc_unpin_all(struct acc_ctx *c)
{
	pthread_mutex_lock(&c->lock);
	for (unsigned int i = 0; i < MAX_ITEMS; i++) {
		if (c->items[i].live)
			uiommu_access_unpin(c->acc, c->items[i].iova, c->items[i].len);
		c->items[i].live = false;
	}
	pthread_mutex_unlock(&c->lock);
}

static void map_fixed(struct uiommu_ioas *ioas, void *uva, uint64_t iova, uint64_t len,
		      uint32_t prot)
{
	assert_int_equal(uiommu_ioas_map(ioas, uva, len, prot, FIXED, &iova), 0);
}

/* ---- create ---- */

static void test_access_create_needs_ops_and_an_unmap_callback_to_pin(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct uiommu_access_ops no_cb = { .needs_pin = true };
	struct uiommu_access *acc;

	(void)state;
	assert_int_equal(uiommu_access_create(ioas, NULL, NULL, &acc), -EINVAL);
	assert_int_equal(uiommu_access_create(ioas, &no_cb, NULL, &acc), -EINVAL);
	no_cb.needs_pin = false;
	assert_int_equal(uiommu_access_create(ioas, &no_cb, NULL, &acc), 0);
	assert_ptr_equal(uiommu_access_ioas(acc), ioas);
	uiommu_access_destroy(acc);
	uiommu_access_destroy(NULL);
	uiommu_ioas_destroy(ioas);
}

static void test_pinning_access_raises_alignment_or_is_eaddrinuse(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	char *buf = buf_alloc(PAGE, PAGE);
	struct uiommu_access *acc;
	struct acc_ctx *rw;
	struct snap s;

	(void)state;
	map_fixed(ioas, buf, 0x10000, 5, RW);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_access_create(ioas, &pin_ops, NULL, &acc), -EADDRINUSE);
	assert_unchanged(ioas, &s);
	rw = acc_new(ioas, &rw_ops); /* a non-pinning access needs nothing */
	assert_int_equal(ioas_alignment(ioas), 1);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, NULL), 0);
	assert_int_equal(uiommu_access_create(ioas, &pin_ops, NULL, &acc), 0);
	assert_int_equal(ioas_alignment(ioas), PAGE);
	uiommu_access_destroy(acc);
	assert_int_equal(ioas_alignment(ioas), 1);
	acc_free(rw);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, PAGE);
}

/* ---- pin ---- */

static void test_access_pin_returns_each_cpu_page_and_pins_it_once(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops);
	char *buf = buf_alloc(16 * PAGE, PAGE);
	void *pages[16];

	(void)state;
	map_fixed(ioas, buf, 0x100000, 16 * PAGE, RW);
	for (uint64_t n = 1; n < 16; n++) {
		assert_int_equal(acc_pin(c, 0x100000 + PAGE, n * PAGE, 0, pages), 0);
		for (uint64_t i = 0; i < n; i++)
			assert_ptr_equal(pages[i], buf + (i + 1) * PAGE);
		assert_refs(buf + PAGE, n * PAGE, 1);
		assert_refs(buf + (n + 1) * PAGE, (15 - n) * PAGE, 0);
		assert_int_equal(ioas_stats(ioas).pinned_pages, n);
		/* a second pin of the same pages counts once */
		assert_int_equal(acc_pin(c, 0x100000 + PAGE, n * PAGE - 1, UIOMMU_ACCESS_WRITE,
					 pages),
				 0);
		assert_refs(buf + PAGE, n * PAGE, 1);
		acc_unpin_all(c);
		assert_refs(buf, 16 * PAGE, 0);
	}
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 16 * PAGE);
}

static void test_access_pin_errors_change_nothing(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops), *rw = acc_new(ioas, &rw_ops);
	char *buf = buf_alloc(4 * PAGE, PAGE);
	void *hole = buf_hole(PAGE), *pages[4];
	struct snap s;

	(void)state;
	map_fixed(ioas, buf, 0x10000, 2 * PAGE, RW);
	map_fixed(ioas, buf + 2 * PAGE, 0x12000, PAGE, UIOMMU_PROT_READ);
	map_fixed(ioas, hole, 0x20000, PAGE, RW);
	snap_take(ioas, &s);
	assert_int_equal(uiommu_access_pin(rw->acc, 0x10000, PAGE, 0, pages, 1), -EINVAL);
	assert_int_equal(uiommu_access_pin(c->acc, 0x10000, 0, 0, pages, 1), -EINVAL);
	assert_int_equal(uiommu_access_pin(c->acc, 0x10000, PAGE, 4, pages, 1), -EINVAL);
	assert_int_equal(uiommu_access_pin(c->acc, 0x10000, PAGE, 0, pages, 2), -EINVAL);
	assert_int_equal(uiommu_access_pin(c->acc, 0x10000, PAGE, 0, NULL, 1), -EINVAL);
	assert_int_equal(uiommu_access_pin(c->acc, UINT64_MAX, 2, 0, pages, 1), -EOVERFLOW);
	assert_int_equal(uiommu_access_pin(c->acc, 0x10800, PAGE, 0, pages, 2), -EINVAL);
	assert_int_equal(uiommu_access_pin(c->acc, 0x12000, 2 * PAGE, 0, pages, 2), -ENOENT);
	assert_int_equal(uiommu_access_pin(c->acc, 0x30000, PAGE, 0, pages, 1), -ENOENT);
	assert_int_equal(uiommu_access_pin(c->acc, 0x11000, 2 * PAGE, UIOMMU_ACCESS_WRITE, pages,
					   2),
			 -EPERM);
	assert_int_equal(uiommu_access_pin(c->acc, 0x20000, PAGE, 0, pages, 1), -EFAULT);
	assert_unchanged(ioas, &s);
	assert_refs(buf, 4 * PAGE, 0);
	/* read-only areas pin for reading */
	assert_int_equal(uiommu_access_pin(c->acc, 0x11000, 2 * PAGE, 0, pages, 2), 0);
	assert_ptr_equal(pages[1], buf + 2 * PAGE);
	uiommu_access_unpin(c->acc, 0x11000, 2 * PAGE);
	uiommu_access_unpin(c->acc, 0x11000, 2 * PAGE); /* no such pin: ignored */
	assert_refs(buf, 4 * PAGE, 0);
	acc_free(rw);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

static void test_access_pin_crosses_contiguous_areas(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops);
	char *a = buf_alloc(2 * PAGE, PAGE), *b = buf_alloc(2 * PAGE, PAGE);
	void *pages[3];

	(void)state;
	map_fixed(ioas, a, 0x10000, 2 * PAGE, RW);
	map_fixed(ioas, b, 0x12000, 2 * PAGE, RW);
	assert_int_equal(acc_pin(c, 0x11000, 2 * PAGE + 1, UIOMMU_ACCESS_WRITE, pages), 0);
	assert_ptr_equal(pages[0], a + PAGE);
	assert_ptr_equal(pages[1], b);
	assert_ptr_equal(pages[2], b + PAGE);
	assert_refs(a, PAGE, 0);
	assert_refs(a + PAGE, PAGE, 1);
	assert_refs(b, 2 * PAGE, 1);
	acc_unpin_all(c);
	assert_refs(a, 2 * PAGE, 0);
	assert_refs(b, 2 * PAGE, 0);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(a, 2 * PAGE);
	buf_free(b, 2 * PAGE);
}

static void test_domain_added_while_an_access_pins_mirrors_and_shares_the_pin(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops);
	char *buf = buf_alloc(4 * PAGE, PAGE);
	struct uiommu_domain *d;

	(void)state;
	map_fixed(ioas, buf, MOCK_APERTURE_START, 4 * PAGE, RW);
	assert_int_equal(acc_pin(c, MOCK_APERTURE_START + PAGE, PAGE, 0, NULL), 0);
	d = mock_domain_add(ioas);
	assert_domain_maps(d, MOCK_APERTURE_START, buf, 4 * PAGE, MOCK_PAGE);
	assert_refs(buf, 4 * PAGE, 1);
	uiommu_ioas_domain_remove(ioas, d);
	assert_refs(buf, PAGE, 0);
	assert_refs(buf + PAGE, PAGE, 1);
	acc_unpin_all(c);
	uiommu_domain_destroy(d);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

/* ---- unmap callbacks ---- */

static void test_unmap_over_a_pin_calls_back_with_the_area_then_unmaps(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops), *other = acc_new(ioas, &rw_ops);
	char *buf = buf_alloc(8 * PAGE, PAGE);
	uint64_t bytes = 0;

	(void)state;
	map_fixed(ioas, buf, 0x10000, 2 * PAGE, RW);
	map_fixed(ioas, buf + 2 * PAGE, 0x12000, 4 * PAGE, RW);
	assert_int_equal(acc_pin(c, 0x13000, PAGE, 0, NULL), 0);
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x10000, 6 * PAGE, &bytes), 0);
	assert_int_equal(bytes, 6 * PAGE);
	/* once, for the pinned area only, and to every access */
	assert_int_equal(c->calls, 1);
	assert_true(c->cb_iova == 0x12000 && c->cb_len == 4 * PAGE);
	assert_int_equal(other->calls, 1);
	assert_false(c->items[0].live);
	assert_refs(buf, 8 * PAGE, 0);
	acc_free(other);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 8 * PAGE);
}

static void test_unmap_over_a_pin_that_stays_is_ebusy(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops);
	char *buf = buf_alloc(4 * PAGE, PAGE), byte = 0;
	uint64_t bytes = 0;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE, RW);
	map_fixed(ioas, buf + PAGE, 0x11000, 2 * PAGE, RW);
	assert_int_equal(acc_pin(c, 0x11000, PAGE, 0, NULL), 0);
	c->keep_pins = true;
	assert_int_equal(uiommu_ioas_unmap(ioas, 0x10000, 3 * PAGE, &bytes), -EBUSY);
	assert_int_equal(bytes, PAGE); /* not atomic: the first area went */
	assert_int_equal(c->calls, 1);
	assert_int_equal(ioas_stats(ioas).areas, 1);
	assert_refs(buf + PAGE, PAGE, 1);
	/* the area is usable again */
	assert_int_equal(uiommu_access_rw(c->acc, 0x11000, &byte, 1, 0), 0);
	assert_int_equal(acc_pin(c, 0x12000, PAGE, 0, NULL), 0);
	c->keep_pins = false;
	assert_int_equal(uiommu_ioas_unmap(ioas, 0, UINT64_MAX, &bytes), 0);
	assert_int_equal(bytes, 2 * PAGE);
	assert_refs(buf, 4 * PAGE, 0);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

/* ---- rw ---- */

static void rw_round_trips(struct acc_ctx *c, uint64_t iova, char *mem)
{
	char in[64], out[64];

	for (uint64_t len = 1; len < 64; len++) {
		uint64_t at = iova + PAGE - len / 2; /* straddles a page boundary */
		char *m = mem + PAGE - len / 2;

		for (uint64_t i = 0; i < len; i++)
			in[i] = (char)(len * 3 + i);
		assert_int_equal(uiommu_access_rw(c->acc, at, in, len, UIOMMU_ACCESS_WRITE), 0);
		assert_memory_equal(m, in, len);
		memset(out, 0, sizeof(out));
		assert_int_equal(uiommu_access_rw(c->acc, at, out, len, 0), 0);
		assert_memory_equal(out, in, len);
	}
}

static void test_access_rw_copies_with_and_without_domain(void **state)
{
	char *buf = buf_alloc(4 * PAGE, PAGE);

	(void)state;
	for (int with_domain = 0; with_domain < 2; with_domain++) {
		struct uiommu_ioas *ioas = ioas_new();
		struct uiommu_domain *d = with_domain ? mock_domain_add(ioas) : NULL;
		struct acc_ctx *c = acc_new(ioas, with_domain ? &pin_ops : &rw_ops);
		uint64_t iova = MOCK_APERTURE_START;

		/* two areas meeting at the page boundary the copies straddle */
		map_fixed(ioas, buf, iova, PAGE, RW);
		map_fixed(ioas, buf + PAGE, iova + PAGE, 3 * PAGE, RW);
		rw_round_trips(c, iova, buf);
		/* unaligned IOVA inside an area */
		rw_round_trips(c, iova + PAGE + MOCK_PAGE, buf + PAGE + MOCK_PAGE);
		acc_free(c);
		if (d) {
			uiommu_ioas_domain_remove(ioas, d);
			uiommu_domain_destroy(d);
		}
		uiommu_ioas_destroy(ioas);
	}
	buf_free(buf, 4 * PAGE);
}

static void test_access_rw_errors(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &rw_ops);
	char *buf = buf_alloc(4 * PAGE, PAGE), tmp[16] = { 0 };
	void *hole = buf_hole(PAGE);

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE, UIOMMU_PROT_READ);
	map_fixed(ioas, buf + PAGE, 0x11000, PAGE, UIOMMU_PROT_WRITE);
	map_fixed(ioas, hole, 0x20000, PAGE, RW);
	map_fixed(ioas, buf + 2 * PAGE, 0x30000, PAGE, RW);
	assert_int_equal(uiommu_access_rw(c->acc, 0x10000, tmp, 0, 0), -EINVAL);
	assert_int_equal(uiommu_access_rw(c->acc, 0x10000, tmp, 1, 2), -EINVAL);
	assert_int_equal(uiommu_access_rw(c->acc, UINT64_MAX, tmp, 2, 0), -EOVERFLOW);
	assert_int_equal(uiommu_access_rw(c->acc, 0x10000, tmp, 1, UIOMMU_ACCESS_WRITE), -EPERM);
	assert_int_equal(uiommu_access_rw(c->acc, 0x11000, tmp, 1, 0), -EPERM);
	assert_int_equal(uiommu_access_rw(c->acc, 0x11000, tmp, 1, UIOMMU_ACCESS_WRITE), 0);
	assert_int_equal(uiommu_access_rw(c->acc, 0x12000 - 8, tmp, 16, UIOMMU_ACCESS_WRITE),
			 -ENOENT);
	assert_int_equal(uiommu_access_rw(c->acc, 0x40000, tmp, 1, 0), -ENOENT);
	assert_int_equal(uiommu_access_rw(c->acc, 0x20000, tmp, 16, 0), -EFAULT);
	assert_int_equal(uiommu_access_rw(c->acc, 0x20000, tmp, 16, UIOMMU_ACCESS_WRITE), -EFAULT);
	/* memory the program unmapped after mapping it */
	buf_free(buf + 2 * PAGE, PAGE);
	assert_int_equal(uiommu_access_rw(c->acc, 0x30000, tmp, 16, 0), -EFAULT);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 2 * PAGE);
}

/* ---- replace, destroy ---- */

static void test_access_replace_drops_old_pins_through_the_callback(void **state)
{
	struct uiommu_ioas *a = ioas_new(), *b = ioas_new();
	struct acc_ctx *c = acc_new(a, &pin_ops);
	char *buf = buf_alloc(2 * PAGE, PAGE);

	(void)state;
	map_fixed(a, buf, 0x10000, 2 * PAGE, RW);
	map_fixed(b, buf, 0x40000, 2 * PAGE, RW);
	assert_int_equal(acc_pin(c, 0x10000, PAGE, 0, NULL), 0);
	assert_int_equal(uiommu_access_replace_ioas(c->acc, a), 0);
	assert_int_equal(c->calls, 0);
	assert_int_equal(uiommu_access_replace_ioas(c->acc, b), 0);
	assert_int_equal(c->calls, 1);
	assert_true(c->cb_iova == 0 && c->cb_len == UINT64_MAX);
	assert_ptr_equal(uiommu_access_ioas(c->acc), b);
	assert_int_equal(ioas_alignment(a), 1);
	assert_int_equal(ioas_alignment(b), PAGE);
	assert_true(ioas_stats(a).accesses == 0 && ioas_stats(b).accesses == 1);
	assert_refs(buf, 2 * PAGE, 0);
	assert_int_equal(acc_pin(c, 0x10000, PAGE, 0, NULL), -ENOENT);
	assert_int_equal(acc_pin(c, 0x41000, PAGE, 0, NULL), 0);
	assert_refs(buf + PAGE, PAGE, 1);
	uiommu_ioas_destroy(a); /* the old IOAS can go */
	assert_int_equal(uiommu_access_replace_ioas(c->acc, NULL), -EINVAL);
	acc_free(c);
	assert_refs(buf, 2 * PAGE, 0);
	uiommu_ioas_destroy(b);
	buf_free(buf, 2 * PAGE);
}

static void test_access_replace_with_pins_kept_is_ebusy(void **state)
{
	struct uiommu_ioas *a = ioas_new(), *b = ioas_new();
	struct acc_ctx *c = acc_new(a, &pin_ops);
	char *buf = buf_alloc(2 * PAGE, PAGE);
	struct snap sb;

	(void)state;
	map_fixed(a, buf, 0x10000, 2 * PAGE, RW);
	assert_int_equal(acc_pin(c, 0x10000, PAGE, 0, NULL), 0);
	c->keep_pins = true;
	snap_take(b, &sb);
	assert_int_equal(uiommu_access_replace_ioas(c->acc, b), -EBUSY);
	assert_unchanged(b, &sb);
	assert_ptr_equal(uiommu_access_ioas(c->acc), a);
	assert_int_equal(ioas_alignment(a), PAGE);
	assert_refs(buf, PAGE, 1);
	assert_int_equal(acc_pin(c, 0x11000, PAGE, 0, NULL), 0);
	acc_free(c); /* destroy unpins what is left */
	assert_refs(buf, 2 * PAGE, 0);
	assert_int_equal(ioas_alignment(a), 1);
	uiommu_ioas_destroy(a);
	uiommu_ioas_destroy(b);
	buf_free(buf, 2 * PAGE);
}

static void test_access_replace_into_misaligned_ioas_is_eaddrinuse(void **state)
{
	struct uiommu_ioas *a = ioas_new(), *b = ioas_new();
	struct acc_ctx *c = acc_new(a, &pin_ops);
	char *buf = buf_alloc(PAGE, PAGE);

	(void)state;
	map_fixed(b, buf, 0x10000, 7, RW);
	assert_int_equal(uiommu_access_replace_ioas(c->acc, b), -EADDRINUSE);
	assert_int_equal(c->calls, 0);
	assert_ptr_equal(uiommu_access_ioas(c->acc), a);
	assert_int_equal(ioas_stats(b).accesses, 0);
	acc_free(c);
	uiommu_ioas_destroy(a);
	uiommu_ioas_destroy(b);
	buf_free(buf, PAGE);
}

static void test_ioas_destroy_with_an_access_left_detaches_it(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops);
	char *buf = buf_alloc(PAGE, PAGE);
	char byte;

	(void)state;
	map_fixed(ioas, buf, 0x10000, PAGE, RW);
	assert_int_equal(acc_pin(c, 0x10000, PAGE, 0, NULL), 0);
	uiommu_ioas_destroy(ioas); /* a caller bug, but no leak or dangling pin */
	assert_refs(buf, PAGE, 0);
	assert_null(uiommu_access_ioas(c->acc));
	assert_int_equal(uiommu_access_rw(c->acc, 0x10000, &byte, 1, 0), -ENOENT);
	acc_free(c);
	buf_free(buf, PAGE);
}

/* ---- fail-nth ---- */

static void test_access_pin_failing_at_every_allocation_changes_nothing(void **state)
{
	struct uiommu_ioas *ioas = ioas_new();
	struct acc_ctx *c = acc_new(ioas, &pin_ops);
	char *buf = buf_alloc(4 * PAGE, PAGE);
	int rc = -ENOMEM;

	(void)state;
	REQUIRE_FAIL_NTH();
	map_fixed(ioas, buf, 0x10000, 2 * PAGE, RW);
	map_fixed(ioas, buf + 2 * PAGE, 0x12000, 2 * PAGE, RW);
	for (unsigned long n = 1; rc == -ENOMEM; n++) {
		void *pages[4];
		struct snap s;

		snap_take(ioas, &s);
		uiommu__fail_nth_set(n);
		rc = uiommu_access_pin(c->acc, 0x10000, 4 * PAGE, 0, pages, 4);
		uiommu__fail_nth_set(0);
		if (rc) {
			assert_int_equal(rc, -ENOMEM);
			assert_unchanged(ioas, &s);
			assert_refs(buf, 4 * PAGE, 0);
		}
	}
	assert_refs(buf, 4 * PAGE, 1);
	uiommu_access_unpin(c->acc, 0x10000, 4 * PAGE);
	assert_refs(buf, 4 * PAGE, 0);
	acc_free(c);
	uiommu_ioas_destroy(ioas);
	buf_free(buf, 4 * PAGE);
}

/* ---- a race: pins against unmaps ---- */

struct race {
	struct uiommu_ioas *ioas;
	struct acc_ctx *c;
	char *buf;
	int stop;
	int bad_rc; /* checked by the main thread: cmocka asserts belong there */
};

static void *race_pinner(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		int rc = acc_pin(r->c, 0x10000 + PAGE, PAGE, 0, NULL);
		char byte;

		/* -EINVAL: the area is being unmapped; -ENOENT: it is gone */
		if (rc && rc != -EINVAL && rc != -ENOENT)
			r->bad_rc = rc;
		/* hold the pin a little, so that unmaps meet it */
		for (int i = 0; !rc && i < 16; i++)
			uiommu_access_rw(r->c->acc, 0x10000, &byte, 1, 0);
		acc_unpin_all(r->c);
	}
	return NULL;
}

static void test_pins_racing_unmaps_never_leave_a_pin_behind(void **state)
{
	struct race r = { ioas_new(), NULL, buf_alloc(4 * PAGE, PAGE), 0, 0 };
	pthread_t t;

	(void)state;
	r.c = acc_new(r.ioas, &pin_ops);
	assert_int_equal(pthread_create(&t, NULL, race_pinner, &r), 0);
	/* Until unmaps met pins a number of times, within bounds. */
	for (int i = 0; i < 200000 && (i < 2000 || r.c->calls < 50); i++) {
		uint64_t bytes = 0;

		map_fixed(r.ioas, r.buf, 0x10000, 4 * PAGE, RW);
		sched_yield();
		assert_int_equal(uiommu_ioas_unmap(r.ioas, 0x10000, 4 * PAGE, &bytes), 0);
		assert_int_equal(bytes, 4 * PAGE);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	assert_int_equal(r.bad_rc, 0);
	print_message("unmap callbacks during the race: %u\n", r.c->calls);
	assert_refs(r.buf, 4 * PAGE, 0);
	acc_free(r.c);
	uiommu_ioas_destroy(r.ioas);
	buf_free(r.buf, 4 * PAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_access_create_needs_ops_and_an_unmap_callback_to_pin),
		cmocka_unit_test(test_pinning_access_raises_alignment_or_is_eaddrinuse),
		cmocka_unit_test(test_access_pin_returns_each_cpu_page_and_pins_it_once),
		cmocka_unit_test(test_access_pin_errors_change_nothing),
		cmocka_unit_test(test_access_pin_crosses_contiguous_areas),
		cmocka_unit_test(test_domain_added_while_an_access_pins_mirrors_and_shares_the_pin),
		cmocka_unit_test(test_unmap_over_a_pin_calls_back_with_the_area_then_unmaps),
		cmocka_unit_test(test_unmap_over_a_pin_that_stays_is_ebusy),
		cmocka_unit_test(test_access_rw_copies_with_and_without_domain),
		cmocka_unit_test(test_access_rw_errors),
		cmocka_unit_test(test_access_replace_drops_old_pins_through_the_callback),
		cmocka_unit_test(test_access_replace_with_pins_kept_is_ebusy),
		cmocka_unit_test(test_access_replace_into_misaligned_ioas_is_eaddrinuse),
		cmocka_unit_test(test_ioas_destroy_with_an_access_left_detaches_it),
		cmocka_unit_test(test_access_pin_failing_at_every_allocation_changes_nothing),
		cmocka_unit_test(test_pins_racing_unmaps_never_leave_a_pin_behind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
