// SPDX-License-Identifier: MIT
/*
 * Transports: what every backend shares (the write loop, the bandwidth
 * limit, statistics, timeouts); the backends (xport_sock.c, xport_mem.c)
 * only move bytes, through an ops table.
 *
 * Writes. uiommu_xport_writev() writes all of an iovec array. It walks a
 * cursor (entry, offset) over the caller's array and hands the backend a
 * window of at most XPORT_IOV_WINDOW entries and at most the bytes the
 * bandwidth limit allows; the backend writes a prefix of it (at least one
 * byte) and the cursor moves on. The caller's array is never modified.
 *
 * Bandwidth limit: a token bucket in bytes. Tokens accrue at the rate, up to
 * a depth of 20 ms of traffic (at least 16 KiB, at most 4 MiB), and the
 * bucket starts empty so that a transfer of B bytes takes B / rate from its
 * first byte: the bench and the tests compare elapsed time with that. A write
 * takes at most one bucket of tokens at a time and sleeps for what is
 * missing; tokens it did not use (a short write) go back. The sleep is cut in
 * slices of at most 50 ms so that a shutdown from another thread is seen.
 *
 * Thread safety: one thread uses a transport; only the shut flag (atomic)
 * and the backend's shutdown (a shutdown(2) on the socket) may come from
 * another thread.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "migrate/migrate_internal.h"

#define XPORT_IOV_WINDOW 128
#define BUCKET_MS 20
#define BUCKET_MIN (16u << 10)
#define BUCKET_MAX (4u << 20)
#define SLEEP_SLICE_NS 50000000ull

uint64_t uiommu__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void uiommu__xport_init(struct uiommu_xport *x, const struct xport_ops *ops)
{
	memset(x, 0, sizeof(*x));
	x->ops = ops;
	x->timeout_ms = UIOMMU_XPORT_DEFAULT_TIMEOUT_MS;
}

bool uiommu__xport_is_shut(struct uiommu_xport *x)
{
	return __atomic_load_n(&x->shut, __ATOMIC_ACQUIRE);
}

UIOMMU_EXPORT void uiommu_xport_destroy(struct uiommu_xport *x)
{
	if (x)
		x->ops->destroy(x);
}

UIOMMU_EXPORT void uiommu_xport_set_timeout(struct uiommu_xport *x, int timeout_ms)
{
	x->timeout_ms = timeout_ms;
}

UIOMMU_EXPORT void uiommu_xport_set_bandwidth(struct uiommu_xport *x, uint64_t bytes_per_sec)
{
	struct xport_bucket *b = &x->bucket;

	b->rate = bytes_per_sec;
	b->cap = u64_min(u64_max(bytes_per_sec / (1000 / BUCKET_MS), BUCKET_MIN), BUCKET_MAX);
	b->tokens = 0;
	b->last_ns = uiommu__now_ns();
}

UIOMMU_EXPORT uint64_t uiommu_xport_get_bandwidth(const struct uiommu_xport *x)
{
	return x->bucket.rate;
}

UIOMMU_EXPORT void uiommu_xport_shutdown(struct uiommu_xport *x)
{
	__atomic_store_n(&x->shut, 1, __ATOMIC_RELEASE);
	if (x->ops->shutdown)
		x->ops->shutdown(x);
}

UIOMMU_EXPORT void uiommu_xport_get_stats(const struct uiommu_xport *x,
					  struct uiommu_xport_stats *st)
{
	*st = x->stats;
}

UIOMMU_EXPORT const char *uiommu_xport_name(const struct uiommu_xport *x)
{
	return x->ops->name;
}

static void bucket_refill(struct xport_bucket *b)
{
	uint64_t now = uiommu__now_ns();

	b->tokens += (double)(now - b->last_ns) * (double)b->rate / 1e9;
	if (b->tokens > (double)b->cap)
		b->tokens = (double)b->cap;
	b->last_ns = now;
}

/* Waits until @want bytes (at most one bucket) may go; returns how many. */
static int bucket_take(struct uiommu_xport *x, size_t want, size_t *allow)
{
	struct xport_bucket *b = &x->bucket;
	uint64_t t0 = uiommu__now_ns();

	if (!b->rate) {
		*allow = want;
		return 0;
	}
	want = (size_t)u64_min(want, b->cap);
	for (bucket_refill(b); b->tokens < (double)want; bucket_refill(b)) {
		double missing_ns = ((double)want - b->tokens) * 1e9 / (double)b->rate;
		uint64_t ns = u64_min((uint64_t)missing_ns + 1, SLEEP_SLICE_NS);
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ns };

		if (uiommu__xport_is_shut(x))
			return -ECANCELED;
		nanosleep(&ts, NULL);
	}
	b->tokens -= (double)want;
	x->stats.throttle_ns += uiommu__now_ns() - t0;
	*allow = want;
	return 0;
}

static void bucket_give_back(struct uiommu_xport *x, size_t unused)
{
	if (x->bucket.rate)
		x->bucket.tokens += (double)unused;
}

struct iov_cursor {
	const struct iovec *iov;
	int cnt;
	int idx;
	size_t off; /* bytes of iov[idx] already written */
	size_t left; /* bytes left in total */
};

/* A window of the cursor: at most XPORT_IOV_WINDOW entries and @max bytes. */
static int cursor_window(const struct iov_cursor *c, size_t max, struct iovec *win)
{
	size_t off = c->off;
	int n = 0;

	for (int i = c->idx; i < c->cnt && n < XPORT_IOV_WINDOW && max; i++, off = 0) {
		size_t len = c->iov[i].iov_len - off;

		if (!len)
			continue;
		if (len > max)
			len = max;
		win[n].iov_base = (char *)c->iov[i].iov_base + off;
		win[n++].iov_len = len;
		max -= len;
	}
	return n;
}

static void cursor_advance(struct iov_cursor *c, size_t done)
{
	c->left -= done;
	while (done) {
		size_t len = c->iov[c->idx].iov_len - c->off;

		if (done < len) {
			c->off += done;
			return;
		}
		done -= len;
		c->idx++;
		c->off = 0;
	}
}

static int cursor_init(struct iov_cursor *c, const struct iovec *iov, int iovcnt)
{
	memset(c, 0, sizeof(*c));
	c->iov = iov;
	c->cnt = iovcnt;
	for (int i = 0; i < iovcnt; i++) {
		if (uiommu_check_add_overflow(c->left, iov[i].iov_len, &c->left))
			return -EINVAL;
	}
	return 0;
}

UIOMMU_EXPORT int uiommu_xport_writev(struct uiommu_xport *x, const struct iovec *iov,
				      int iovcnt)
{
	struct iovec win[XPORT_IOV_WINDOW];
	struct iov_cursor c;
	size_t allow, done;
	int rc = iovcnt < 0 ? -EINVAL : cursor_init(&c, iov, iovcnt);

	while (!rc && c.left) {
		if (uiommu__xport_is_shut(x))
			return -ECANCELED;
		rc = bucket_take(x, c.left, &allow);
		if (rc)
			break;
		done = 0;
		rc = x->ops->writev(x, win, cursor_window(&c, allow, win), &done);
		bucket_give_back(x, allow - done);
		cursor_advance(&c, done);
		x->stats.bytes_written += done;
		x->stats.write_calls++;
	}
	if (rc && uiommu__xport_is_shut(x))
		rc = -ECANCELED;
	return rc;
}

UIOMMU_EXPORT int uiommu_xport_write(struct uiommu_xport *x, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };

	return uiommu_xport_writev(x, &iov, 1);
}

UIOMMU_EXPORT int uiommu_xport_read(struct uiommu_xport *x, void *buf, size_t len, size_t *got)
{
	int rc;

	*got = 0;
	if (!len)
		return 0;
	if (uiommu__xport_is_shut(x))
		return -ECANCELED;
	rc = x->ops->read(x, buf, len, got);
	if (uiommu__xport_is_shut(x) && (rc || !*got))
		return -ECANCELED;
	x->stats.bytes_read += *got;
	return rc;
}

UIOMMU_EXPORT int uiommu_xport_read_full(struct uiommu_xport *x, void *buf, size_t len)
{
	size_t have = 0, got;
	int rc;

	while (have < len) {
		rc = uiommu_xport_read(x, (char *)buf + have, len - have, &got);
		if (rc)
			return rc;
		if (!got)
			return -ECONNRESET;
		have += got;
	}
	return 0;
}
