// SPDX-License-Identifier: MIT
/*
 * The memory transport: reads serve a copy of a given buffer and then an end
 * of stream; writes are appended to a growing buffer (doubling, so a stream
 * of n bytes costs O(n) copies). Tests use it to capture a stream and replay
 * it in any split, the fuzz corpus generator to write seeds.
 */
#include <errno.h>
#include <stdlib.h>

#include "migrate/migrate_internal.h"

struct mem_xport {
	struct uiommu_xport x;
	uint8_t *in;
	size_t in_len, in_pos;
	uint8_t *out;
	size_t out_len, out_cap;
};

static struct mem_xport *to_mem(struct uiommu_xport *x)
{
	return container_of(x, struct mem_xport, x);
}

static int mem_reserve(struct mem_xport *m, size_t add)
{
	size_t need, cap = m->out_cap ? m->out_cap : 4096;
	uint8_t *p;

	if (uiommu_check_add_overflow(m->out_len, add, &need))
		return -ENOMEM;
	while (cap < need) {
		if (uiommu_check_add_overflow(cap, cap, &cap))
			return -ENOMEM;
	}
	if (cap == m->out_cap)
		return 0;
	p = realloc(m->out, cap);
	if (!p)
		return -ENOMEM;
	m->out = p;
	m->out_cap = cap;
	return 0;
}

static int mem_writev(struct uiommu_xport *x, const struct iovec *iov, int iovcnt, size_t *done)
{
	struct mem_xport *m = to_mem(x);
	size_t total = 0;
	int rc;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	rc = mem_reserve(m, total);
	if (rc)
		return rc;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(m->out + m->out_len, iov[i].iov_base, iov[i].iov_len);
		m->out_len += iov[i].iov_len;
	}
	*done = total;
	return 0;
}

static int mem_read(struct uiommu_xport *x, void *buf, size_t len, size_t *got)
{
	struct mem_xport *m = to_mem(x);
	size_t n = (size_t)u64_min(len, m->in_len - m->in_pos);

	/* An empty transport has no buffer at all; memcpy must not see NULL. */
	if (n)
		memcpy(buf, m->in + m->in_pos, n);
	m->in_pos += n;
	*got = n;
	return 0;
}

static void mem_destroy(struct uiommu_xport *x)
{
	struct mem_xport *m = to_mem(x);

	free(m->in);
	free(m->out);
	uiommu__free(m);
}

static const struct xport_ops mem_ops = {
	.name = "mem",
	.writev = mem_writev,
	.read = mem_read,
	.destroy = mem_destroy,
};

UIOMMU_EXPORT int uiommu_xport_mem_create(const void *data, size_t len,
					  struct uiommu_xport **out)
{
	struct mem_xport *m = uiommu__zalloc(sizeof(*m));

	if (!m)
		return -ENOMEM;
	uiommu__xport_init(&m->x, &mem_ops);
	if (len) {
		m->in = malloc(len);
		if (!m->in) {
			uiommu__free(m);
			return -ENOMEM;
		}
		memcpy(m->in, data, len);
		m->in_len = len;
	}
	*out = &m->x;
	return 0;
}

UIOMMU_EXPORT int uiommu_xport_mem_data(struct uiommu_xport *x, const void **data, size_t *len)
{
	if (x->ops != &mem_ops)
		return -EINVAL;
	*data = to_mem(x)->out;
	*len = to_mem(x)->out_len;
	return 0;
}
