/* SPDX-License-Identifier: MIT */
/*
 * Randomized differential test: random MAP (fixed and automatic), COPY and
 * UNMAP run against the IOAS and against a naive model (a sorted array of
 * areas, linear scans), and after every operation the two must agree on the
 * return code, the IOVA chosen, every area (range, host address, permission,
 * shared pages), the domain's translations and pin counts per CPU page.
 *
 * Two variants: byte-granular without domain (with allowed and reserved
 * ranges inside the IOVA window), and 2 KiB-granular with a mock domain whose
 * aperture is the window. The seed is printed and comes from UIOMMU_SEED.
 */
#include "ioas_test.h"
#include "seeded.h"

#define MAX_AREAS 512
#define BUF_SIZE (256 * KiB)
#define OPS 3000

struct m_area {
	uint64_t start, last;
	uint64_t uoff; /* offset of the first byte in the test buffer */
	uint32_t prot;
	unsigned int pages_id;
};

struct model {
	struct m_area a[MAX_AREAS];
	size_t n;
	struct uiommu_iova_range reserved[4], allowed[4];
	size_t nr_reserved, nr_allowed;
	uint64_t align;
	bool writable[4 * OPS]; /* per pages id */
	const void *real[4 * OPS]; /* pages object behind each id */
	unsigned int next_id;
};

struct world {
	struct model m;
	struct uiommu_ioas *ioas;
	struct uiommu_domain *domain;
	char *buf;
	uint64_t g;          /* granularity of generated values */
	uint64_t lo, hi;     /* IOVA window of generated values */
	uint64_t thp;
};

static uint64_t m_roundup_pow2(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static bool m_fits(uint64_t *start, uint64_t last, uint64_t len, uint64_t align, uint64_t off)
{
	uint64_t s;

	if (*start > UINT64_MAX - (align - 1))
		return false;
	s = ((*start + align - 1) / align) * align;
	s |= off;
	if (s >= last || last - s < len - 1)
		return false;
	*start = s;
	return true;
}

static int cmp_range(const void *x, const void *y)
{
	const struct uiommu_iova_range *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

/* Reserved ranges and areas, sorted by start. */
static size_t m_occupied(const struct model *m, struct uiommu_iova_range *out)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nr_reserved; i++)
		out[n++] = m->reserved[i];
	for (size_t i = 0; i < m->n; i++)
		out[n++] = (struct uiommu_iova_range){ m->a[i].start, m->a[i].last };
	qsort(out, n, sizeof(*out), cmp_range);
	return n;
}

static bool m_alloc_in(const struct model *m, uint64_t s, uint64_t l, uint64_t len,
		       uint64_t align, uint64_t off, uint64_t *iova)
{
	static struct uiommu_iova_range occ[MAX_AREAS + 8];
	size_t n = m_occupied(m, occ);
	uint64_t cur;

	if (!m_fits(&s, l, len, align, off))
		return false;
	cur = s;
	for (size_t i = 0; i < n; i++) {
		uint64_t hs = cur;

		if (occ[i].last < cur)
			continue;
		if (occ[i].start > l)
			break;
		if (occ[i].start > cur && m_fits(&hs, occ[i].start - 1, len, align, off)) {
			*iova = hs;
			return true;
		}
		if (occ[i].last >= l)
			return false;
		cur = occ[i].last + 1 > cur ? occ[i].last + 1 : cur;
	}
	if (m_fits(&cur, l, len, align, off)) {
		*iova = cur;
		return true;
	}
	return false;
}

static int m_alloc(const struct world *w, uint64_t hint, uint64_t len, uint64_t *iova)
{
	const struct model *m = &w->m;
	uint64_t align, lo = PAGE, hi = UINT64_MAX - PAGE;

	if (!len || len >= UINT64_MAX / 2)
		return -EOVERFLOW;
	align = m_roundup_pow2(len);
	if (hint && (hint & -hint) < align)
		align = hint & -hint;
	if (align > w->thp)
		align = w->thp;
	if (align < m->align)
		return -EINVAL;
	if (!m->nr_allowed)
		return m_alloc_in(m, lo, hi, len, align, hint % PAGE, iova) ? 0 : -ENOSPC;
	for (size_t i = 0; i < m->nr_allowed; i++) {
		uint64_t s = m->allowed[i].start > lo ? m->allowed[i].start : lo;
		uint64_t l = m->allowed[i].last < hi ? m->allowed[i].last : hi;

		if (s <= l && m_alloc_in(m, s, l, len, align, hint % PAGE, iova))
			return 0;
	}
	return -ENOSPC;
}

static bool m_overlaps(const struct model *m, uint64_t s, uint64_t l, bool areas)
{
	for (size_t i = 0; areas && i < m->n; i++)
		if (m->a[i].start <= l && m->a[i].last >= s)
			return true;
	for (size_t i = 0; !areas && i < m->nr_reserved; i++)
		if (m->reserved[i].start <= l && m->reserved[i].last >= s)
			return true;
	return false;
}

/* The model of the placement: FIXED checks or automatic allocation. */
static int m_place(const struct world *w, bool fixed, uint64_t *iova, uint64_t hint,
		   uint64_t len)
{
	const struct model *m = &w->m;

	if (!len || len % m->align)
		return -EINVAL;
	if (!fixed)
		return m_alloc(w, hint, len, iova);
	if (*iova % m->align)
		return -EINVAL;
	if (*iova + (len - 1) < *iova)
		return -EOVERFLOW;
	if (m_overlaps(m, *iova, *iova + len - 1, false))
		return -EINVAL;
	if (m_overlaps(m, *iova, *iova + len - 1, true))
		return -EEXIST;
	return 0;
}

static int cmp_area(const void *x, const void *y)
{
	const struct m_area *a = x, *b = y;

	return a->start < b->start ? -1 : a->start > b->start;
}

static void m_insert(struct model *m, const struct m_area *a)
{
	CHECK(m->n < MAX_AREAS);
	m->a[m->n++] = *a;
	qsort(m->a, m->n, sizeof(m->a[0]), cmp_area);
}

/* ---- operations ---- */

/* Outcomes per operation, so that the run shows it exercised each path. */
enum { OP_MAP, OP_COPY, OP_UNMAP, NR_OPS };
static unsigned int ok_count[NR_OPS], err_count[NR_OPS];

static void count(int op, int rc)
{
	if (rc)
		err_count[op]++;
	else
		ok_count[op]++;
}

static uint64_t rnd_len(const struct world *w, uint64_t max)
{
	return (rnd_below(max / w->g) + 1) * w->g;
}

static uint64_t rnd_iova(const struct world *w)
{
	uint64_t iova = w->lo + rnd_below((w->hi - w->lo) / w->g) * w->g;

	return rnd_below(16) ? iova : iova + 1; /* now and then misaligned */
}

static uint32_t rnd_prot(void)
{
	static const uint32_t prots[] = { UIOMMU_PROT_READ, UIOMMU_PROT_WRITE, RW };

	return prots[rnd_below(3)];
}

static void op_map(struct world *w)
{
	uint64_t len = rnd_len(w, 16 * KiB), uoff = rnd_below((BUF_SIZE - len) / w->g) * w->g;
	bool fixed = rnd_below(2);
	uint64_t iova = fixed ? rnd_iova(w) : 0, want = iova;
	uint32_t prot = rnd_prot();
	int rc, expect;

	expect = m_place(w, fixed, &want, (uintptr_t)w->buf + uoff, len);
	rc = uiommu_ioas_map(w->ioas, w->buf + uoff, len, prot, fixed ? FIXED : 0, &iova);
	CHECK(rc == expect);
	count(OP_MAP, rc);
	if (rc)
		return;
	CHECK(iova == want);
	w->m.writable[w->m.next_id] = prot & UIOMMU_PROT_WRITE;
	w->m.real[w->m.next_id] = ioas_area_first(w->ioas, iova, iova)->pages;
	m_insert(&w->m, &(struct m_area){ iova, iova + len - 1, uoff, prot, w->m.next_id++ });
}

/* Slices of the model's source range: -ENOENT unless covered without holes. */
static int m_slices(const struct model *m, uint64_t s, uint64_t l, struct m_area *out,
		    size_t *nr)
{
	uint64_t cur = s;

	*nr = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct m_area *a = &m->a[i];

		if (a->last < cur || a->start > cur)
			continue;
		out[*nr] = *a;
		out[*nr].start = cur;
		out[*nr].last = a->last < l ? a->last : l;
		out[*nr].uoff = a->uoff + (cur - a->start);
		(*nr)++;
		if (a->last >= l)
			return 0;
		cur = a->last + 1;
	}
	return -ENOENT;
}

static int m_copy_check(const struct world *w, const struct m_area *sl, size_t nr,
			uint32_t prot)
{
	for (size_t i = 0; i < nr; i++) {
		uintptr_t uva = (uintptr_t)w->buf + sl[i].uoff;

		if ((prot & UIOMMU_PROT_WRITE) && !w->m.writable[sl[i].pages_id])
			return -EPERM;
		if ((uva % PAGE) % w->m.align)
			return -EINVAL;
	}
	return 0;
}

/* A source range: mostly inside or across existing areas. */
static void rnd_src(const struct world *w, uint64_t *s, uint64_t *len)
{
	if (w->m.n && rnd_below(8)) {
		const struct m_area *a = &w->m.a[rnd_below(w->m.n)];
		uint64_t room = a->last - a->start + 1;

		*s = a->start + rnd_below(room / w->g) * w->g;
		*len = rnd_len(w, room + 8 * KiB);
	} else {
		*s = rnd_iova(w);
		*len = rnd_len(w, 16 * KiB);
	}
}

static void op_copy(struct world *w)
{
	static struct m_area sl[MAX_AREAS];
	bool fixed = rnd_below(2);
	uint64_t src, len, iova = fixed ? rnd_iova(w) : 0, want = iova, off;
	uint32_t prot = rnd_prot();
	size_t nr;
	int rc, expect;

	rnd_src(w, &src, &len);
	expect = m_slices(&w->m, src, src + len - 1, sl, &nr);
	if (!expect)
		expect = m_place(w, fixed, &want, (uintptr_t)w->buf + sl[0].uoff, len);
	if (!expect)
		expect = m_copy_check(w, sl, nr, prot);
	rc = uiommu_ioas_copy(w->ioas, &iova, w->ioas, src, len, prot, fixed ? FIXED : 0);
	CHECK(rc == expect);
	count(OP_COPY, rc);
	if (rc)
		return;
	CHECK(iova == want);
	off = iova;
	for (size_t i = 0; i < nr; i++) {
		uint64_t l = sl[i].last - sl[i].start + 1;

		m_insert(&w->m, &(struct m_area){ off, off + l - 1, sl[i].uoff, prot,
						  sl[i].pages_id });
		off += l;
	}
}

static void op_unmap(struct world *w)
{
	uint64_t s, len, bytes = 0, want = 0;
	int rc, expect = 0;
	size_t i = 0;

	rnd_src(w, &s, &len);
	if (w->m.n && !rnd_below(4)) { /* exactly some areas */
		size_t k = rnd_below(w->m.n);

		s = w->m.a[k].start;
		len = w->m.a[k + rnd_below(w->m.n - k)].last - s + 1;
	}
	while (i < w->m.n) {
		struct m_area *a = &w->m.a[i];

		if (a->last < s || a->start > s + len - 1) {
			i++;
			continue;
		}
		if (a->start < s || a->last > s + len - 1) {
			expect = -ENOENT;
			break;
		}
		want += a->last - a->start + 1;
		memmove(a, a + 1, (w->m.n - i - 1) * sizeof(*a));
		w->m.n--;
	}
	rc = uiommu_ioas_unmap(w->ioas, s, len, &bytes);
	CHECK(rc == expect);
	count(OP_UNMAP, rc);
	CHECK(bytes == want);
}

/* Cut at a random byte: on success the model's area splits there too. */
static void op_cut(struct world *w)
{
	uint64_t last = rnd_iova(w) + w->g - 1;
	int rc = uiommu_ioas_cut(w->ioas, last);

	CHECK(rc == 0 || rc == -EINVAL);
	for (size_t i = 0; !rc && i < w->m.n; i++) {
		struct m_area rhs = w->m.a[i];

		if (last <= rhs.start || last >= rhs.last)
			continue;
		w->m.a[i].last = last;
		rhs.start = last + 1;
		rhs.uoff += rhs.start - w->m.a[i].start;
		m_insert(&w->m, &rhs);
		break;
	}
}

/* ---- comparison ---- */

/* The naive answer to contig_last: walk the sorted areas from @iova. */
static int m_contig_last(const struct model *m, uint64_t iova, uint64_t last, uint64_t *out)
{
	uint64_t next = iova;
	int ret = -ENOENT;

	for (size_t i = 0; i < m->n && m->a[i].start <= last; i++) {
		if (m->a[i].last < next)
			continue;
		if (m->a[i].start > next)
			break;
		ret = 0;
		*out = m->a[i].last < last ? m->a[i].last : last;
		if (m->a[i].last >= last || m->a[i].last == UINT64_MAX)
			break;
		next = m->a[i].last + 1;
	}
	return ret;
}

static void compare_contig(struct world *w)
{
	for (int k = 0; k < 4; k++) {
		uint64_t iova = k ? rnd_iova(w) : w->m.n ? w->m.a[rnd_below(w->m.n)].start : w->lo;
		uint64_t last = iova + rnd_len(w, w->hi - iova > w->g ? w->hi - iova : w->g) - 1;
		uint64_t want = 0, got = 0;
		int rc = m_contig_last(&w->m, iova, last, &want);

		CHECK(uiommu_ioas_contig_last(w->ioas, iova, last, &got) == rc);
		CHECK(rc || got == want);
	}
}

static void compare_areas(struct world *w)
{
	struct uiommu_itree_node *n = uiommu_itree_first(&w->ioas->areas);
	uint64_t total = 0;

	for (size_t i = 0; i < w->m.n; i++, n = uiommu_itree_next(n)) {
		const struct m_area *a = &w->m.a[i];
		struct ioas_area *r = area_of(n);

		CHECK(n && n->start == a->start && n->last == a->last);
		CHECK(area_uva(r) == (uintptr_t)w->buf + a->uoff);
		CHECK(r->prot == a->prot && r->pages == w->m.real[a->pages_id]);
		total += a->last - a->start + 1;
	}
	CHECK(!n);
	CHECK(ioas_stats(w->ioas).mapped_bytes == total);
}

static void compare_domain(struct world *w)
{
	uint64_t total = 0;

	for (size_t i = 0; w->domain && i < w->m.n; i++) {
		const struct m_area *a = &w->m.a[i];
		uint64_t at = a->start + rnd_below((a->last - a->start + 1) / w->g) * w->g;
		struct uiommu_pte_info info;

		CHECK(uiommu_domain_lookup(w->domain, at, &info) == 0);
		CHECK(info.host == w->buf + a->uoff + (at - a->start));
		CHECK(info.prot == a->prot);
		total += a->last - a->start + 1;
	}
	CHECK(!w->domain || domain_mapped(w->domain) == total);
}

/* Pins per CPU page: distinct pages objects whose mirrored areas cover it. */
static void compare_pins(struct world *w)
{
	static bool seen[4 * OPS];
	uint64_t pinned = 0;

	for (uint64_t p = 0; p < BUF_SIZE; p += PAGE) {
		uint64_t refs = 0;

		memset(seen, 0, w->m.next_id * sizeof(seen[0]));
		for (size_t i = 0; w->domain && i < w->m.n; i++) {
			const struct m_area *a = &w->m.a[i];
			uint64_t first = a->uoff & ~(PAGE - 1);
			uint64_t last = (a->uoff + (a->last - a->start)) & ~(PAGE - 1);

			if (p < first || p > last || seen[a->pages_id])
				continue;
			seen[a->pages_id] = true;
			refs++;
		}
		CHECK(uiommu_pin_refs(w->buf + p) == refs);
		pinned += refs;
	}
	CHECK(ioas_stats(w->ioas).pinned_pages == pinned);
}

/* ---- the run ---- */

/* The cap of automatic alignment, as the library reads it. */
static uint64_t thp_size(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	unsigned long long v = 0;

	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v >= PAGE ? v : PAGE;
}

static void world_init(struct world *w, bool with_domain)
{
	memset(w, 0, sizeof(*w));
	w->ioas = ioas_new();
	w->buf = buf_alloc(BUF_SIZE, 2 * MiB);
	w->thp = thp_size();
	w->m.align = 1;
	w->g = 1;
	w->lo = 0x10000;
	w->hi = w->lo + 512 * KiB;
	if (with_domain) {
		w->domain = domain_new(UIOMMU_PT_MOCK);
		assert_int_equal(uiommu_ioas_domain_add(w->ioas, w->domain, w->lo, w->hi - 1), 0);
		w->m.reserved[0] = (struct uiommu_iova_range){ 0, w->lo - 1 };
		w->m.reserved[1] = (struct uiommu_iova_range){ w->hi, UINT64_MAX };
		w->m.nr_reserved = 2;
		w->m.align = w->g = MOCK_PAGE;
		w->lo -= 8 * KiB;
		w->hi += 8 * KiB;
		return;
	}
	/* allowed ranges around a reserved one, all inside the window */
	w->m.reserved[0] = (struct uiommu_iova_range){ w->lo + 128 * KiB, w->lo + 160 * KiB - 1 };
	w->m.allowed[0] = (struct uiommu_iova_range){ w->lo, w->lo + 128 * KiB - 1 };
	w->m.allowed[1] = (struct uiommu_iova_range){ w->lo + 160 * KiB, w->hi - 1 };
	w->m.nr_reserved = 1;
	w->m.nr_allowed = 2;
	assert_int_equal(uiommu_ioas_reserve(w->ioas, w, w->m.reserved[0].start,
					     w->m.reserved[0].last),
			 0);
	assert_int_equal(uiommu_ioas_allow_iovas(w->ioas, w->m.allowed, 2), 0);
	w->lo -= 8 * KiB;
	w->hi += 8 * KiB;
}

static void world_fini(struct world *w)
{
	if (w->domain) {
		uiommu_ioas_domain_remove(w->ioas, w->domain);
		uiommu_domain_destroy(w->domain);
	}
	uiommu_ioas_destroy(w->ioas);
	assert_refs(w->buf, BUF_SIZE, 0);
	buf_free(w->buf, BUF_SIZE);
}

static void run(bool with_domain)
{
	static struct world w;

	memset(ok_count, 0, sizeof(ok_count));
	memset(err_count, 0, sizeof(err_count));
	world_init(&w, with_domain);
	for (op_index = 0; op_index < OPS; op_index++) {
		uint64_t r = rnd_below(100);

		if (r < 40)
			op_map(&w);
		else if (r < 65)
			op_copy(&w);
		else if (r < 95)
			op_unmap(&w);
		else if (r < 99)
			op_cut(&w);
		else if (!uiommu_ioas_unmap(w.ioas, 0, UINT64_MAX, NULL))
			w.m.n = 0;
		compare_areas(&w);
		compare_contig(&w);
		compare_domain(&w);
		if (op_index % 8 == 0 || op_index == OPS - 1)
			compare_pins(&w);
	}
	print_message("map %u/%u copy %u/%u unmap %u/%u (ok/error)\n", ok_count[OP_MAP],
		      err_count[OP_MAP], ok_count[OP_COPY], err_count[OP_COPY], ok_count[OP_UNMAP],
		      err_count[OP_UNMAP]);
	for (int i = 0; i < NR_OPS; i++)
		CHECK(ok_count[i] > OPS / 50 && err_count[i] > OPS / 50);
	world_fini(&w);
}

static void test_random_ops_match_model_without_domain(void **state)
{
	(void)state;
	run(false);
}

static void test_random_ops_match_model_with_mock_domain(void **state)
{
	(void)state;
	run(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops_match_model_without_domain),
		cmocka_unit_test(test_random_ops_match_model_with_mock_domain),
	};
	return cmocka_run_group_tests(tests, setup_seed, NULL);
}
