/* SPDX-License-Identifier: MIT */
/*
 * Scaffolding of the engine tests: a source machine running a workload, an
 * incoming machine of the same geometry with uiommu_mig_recv() on a thread,
 * a transport between them (socketpair or loopback TCP, optionally wrapped
 * by a faulty transport that cuts or corrupts at a chosen byte), and the
 * checks every successful migration must pass: COMPLETED, the receiver's
 * page-for-page verification, the device's own check, and the guest's
 * check of its own memory on the destination.
 */
#ifndef UIOMMU_MIG_TEST_H
#define UIOMMU_MIG_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <uiommu/bitmap.h>
#include <uiommu/migration.h>

#include "migrate/engine_internal.h"
#include "seeded.h"

#define MiB (1ull << 20)
#define MT_TIMEOUT_MS 10000

static inline void mt_sleep_ms(unsigned int ms)
{
	usleep(ms * 1000u);
}

static inline uint64_t mt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- A faulty transport: cuts or flips a byte at a chosen offset ---- */

#define MT_NEVER UINT64_MAX

struct fault_xport {
	struct uiommu_xport base;
	struct uiommu_xport *inner;
	uint64_t wr, rd;          /* bytes written and read so far */
	uint64_t cut_write;       /* writes fail from this offset on */
	uint64_t cut_read;        /* reads fail from this offset on */
	uint64_t flip_at;         /* write offset of a byte to corrupt */
};

/*
 * Copies guest memory that vCPUs may be writing: relaxed atomic loads, as a
 * memcpy here would be (rightly) reported by TSan as racing with them.
 */
static void racy_copy(uint8_t *dst, const uint8_t *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* The first @len bytes of @iov, with the byte at stream offset flip_at changed. */
static int fault_write_flipped(struct fault_xport *f, const struct iovec *iov, int cnt,
			       size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	size_t off = 0;
	int rc;

	assert_non_null(buf);
	for (int i = 0; i < cnt && off < len; i++) {
		size_t n = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;

		racy_copy(buf + off, iov[i].iov_base, n);
		off += n;
	}
	buf[f->flip_at - f->wr] ^= 0x5a;
	rc = uiommu_xport_write(f->inner, buf, len);
	free(buf);
	return rc;
}

/* The first @len bytes of @iov, as they are. */
static int fault_write_through(struct fault_xport *f, const struct iovec *iov, int cnt,
			       size_t len)
{
	struct iovec part[128]; /* the transport passes at most 128 entries */
	size_t off = 0;
	int n = 0;

	assert_true(cnt <= 128);

	for (int i = 0; i < cnt && off < len; i++, n++) {
		part[n] = iov[i];
		if (part[n].iov_len > len - off)
			part[n].iov_len = len - off;
		off += part[n].iov_len;
	}
	return uiommu_xport_writev(f->inner, part, n);
}

static int fault_writev(struct uiommu_xport *x, const struct iovec *iov, int cnt, size_t *done)
{
	struct fault_xport *f = (struct fault_xport *)x;
	size_t total = 0, len;
	int rc;

	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (f->wr >= f->cut_write) {
		uiommu_xport_shutdown(f->inner);
		return -EPIPE;
	}
	len = (size_t)(total < f->cut_write - f->wr ? total : f->cut_write - f->wr);
	if (f->flip_at >= f->wr && f->flip_at < f->wr + len)
		rc = fault_write_flipped(f, iov, cnt, len);
	else
		rc = fault_write_through(f, iov, cnt, len);
	if (rc)
		return rc;
	f->wr += len;
	*done = len;
	return 0;
}

static int fault_read(struct uiommu_xport *x, void *buf, size_t len, size_t *got)
{
	struct fault_xport *f = (struct fault_xport *)x;

	if (f->rd >= f->cut_read) {
		uiommu_xport_shutdown(f->inner);
		return -ECONNRESET;
	}
	if (len > f->cut_read - f->rd)
		len = (size_t)(f->cut_read - f->rd);
	int rc = uiommu_xport_read(f->inner, buf, len, got);

	f->rd += *got;
	return rc;
}

static void fault_shutdown(struct uiommu_xport *x)
{
	uiommu_xport_shutdown(((struct fault_xport *)x)->inner);
}

static void fault_destroy(struct uiommu_xport *x)
{
	uiommu_xport_destroy(((struct fault_xport *)x)->inner);
	free(x);
}

static const struct xport_ops fault_ops = {
	.name = "fault",
	.writev = fault_writev,
	.read = fault_read,
	.shutdown = fault_shutdown,
	.destroy = fault_destroy,
};

/* Wraps @inner (then owned by the wrapper); nothing fails until told. */
static inline struct fault_xport *fault_wrap(struct uiommu_xport *inner)
{
	struct fault_xport *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	uiommu__xport_init(&f->base, &fault_ops);
	uiommu_xport_set_timeout(&f->base, MT_TIMEOUT_MS);
	f->inner = inner;
	f->cut_write = f->cut_read = f->flip_at = MT_NEVER;
	return f;
}

/* ---- Machines ---- */

struct mt_cfg {
	enum uiommu_vm_backend backend;
	uint64_t mem_mib, dma_mib;
	unsigned int nr_vcpus;
	const char *source;            /* KVM: kvm-log (NULL), kvm-clear-log, kvm-ring */
	struct uiommu_workload wl;
	struct uiommu_dmadev_workload dma;
	unsigned int warm_ms;          /* the workload runs this long before the migration */
	bool tcp;
	int zstd;
	uint64_t bandwidth;
	bool policy_set;
	struct uiommu_mig_policy_cfg policy;
	bool no_guest_check;
	enum uiommu_machine_iommu iommu;  /* iommufd (default) or a type1 container */
	bool iommu_dirty;                 /* type1: the IOMMU_DIRTY opt-in */
	enum uiommu_dmadev_kind kind;     /* dma (default) or mdev (type1 only) */
	uint64_t pin_pages;               /* mdev: 0 = the default */
};

struct mt {
	struct mt_cfg cfg;
	struct uiommu_machine *src, *dst;
	struct uiommu_xport *xs, *xd;   /* source's and destination's ends */
	struct fault_xport *fs, *fd;    /* their wrappers, when asked */
	struct uiommu_migration *mig;
	pthread_t thr;
	bool thr_up;
	struct uiommu_mig_recv_result rres;
	int rret, ret;
	struct uiommu_mig_result res;
};

static inline struct uiommu_machine_cfg mt_machine_cfg(const struct mt_cfg *c, bool incoming)
{
	struct uiommu_machine_cfg mc = {
		.mem_bytes = c->mem_mib * MiB,
		.dma_bytes = c->dma_mib * MiB,
		.nr_vcpus = c->nr_vcpus ? c->nr_vcpus : 1,
		.backend = c->backend,
		.cpu_source = c->source,
		.ring_entries = 1024,
		.incoming = incoming,
		.seed = 7,
		.dma = c->dma,
		.iommu = c->iommu,
		.type1_iommu_dirty = c->iommu_dirty,
		.device_kind = c->kind,
		.pin_pages = c->pin_pages,
	};

	return mc;
}

/* The source machine, running its workload for warm_ms. */
static inline void mt_source_up(struct mt *t)
{
	struct uiommu_machine_cfg mc = mt_machine_cfg(&t->cfg, false);

	assert_int_equal(uiommu_machine_create(&mc, &t->src), 0);
	assert_int_equal(uiommu_machine_run(t->src, &t->cfg.wl), 0);
	mt_sleep_ms(t->cfg.warm_ms);
}

static inline void mt_tcp_pair(struct uiommu_xport **a, struct uiommu_xport **b)
{
	struct uiommu_xport_listener *l;
	char addr[64];

	assert_int_equal(uiommu_xport_listen(NULL, &l), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", uiommu_xport_listener_port(l));
	assert_int_equal(uiommu_xport_connect(addr, MT_TIMEOUT_MS, a), 0);
	assert_int_equal(uiommu_xport_accept(l, MT_TIMEOUT_MS, b), 0);
	uiommu_xport_listener_destroy(l);
}

/* A fresh incoming machine and transport; @fault wraps both ends. */
static inline void mt_dest_up(struct mt *t, bool fault)
{
	struct uiommu_machine_cfg mc = mt_machine_cfg(&t->cfg, true);

	assert_int_equal(uiommu_machine_create(&mc, &t->dst), 0);
	if (t->cfg.tcp)
		mt_tcp_pair(&t->xs, &t->xd);
	else
		assert_int_equal(uiommu_xport_pair(&t->xs, &t->xd), 0);
	uiommu_xport_set_timeout(t->xs, MT_TIMEOUT_MS);
	uiommu_xport_set_timeout(t->xd, MT_TIMEOUT_MS);
	t->fs = t->fd = NULL;
	if (fault) {
		t->fs = fault_wrap(t->xs);
		t->fd = fault_wrap(t->xd);
		t->xs = &t->fs->base;
		t->xd = &t->fd->base;
	}
}

static void *mt_recv_thread(void *arg)
{
	struct mt *t = arg;
	struct uiommu_mig_recv_cfg rc = {
		.machine = t->dst,
		.xport = t->xd,
		.guest_check = !t->cfg.no_guest_check,
		.guest_check_timeout_ns = 20000000000ull,
	};

	t->rret = uiommu_mig_recv(&rc, &t->rres);
	return NULL;
}

static inline void mt_join(struct mt *t)
{
	if (!t->thr_up)
		return;
	/* A source that failed early may leave the receiver waiting: cut the line. */
	if (t->ret)
		uiommu_xport_shutdown(t->xs);
	pthread_join(t->thr, NULL);
	t->thr_up = false;
}

/* One migration of the source to the current destination; the result in t->res. */
static inline int mt_migrate(struct mt *t)
{
	struct uiommu_mig_cfg cfg = {
		.machine = t->src,
		.xport = t->xs,
		.zstd_level = t->cfg.zstd,
		.bandwidth_bps = t->cfg.bandwidth,
		.verify = UIOMMU_STREAM_VERIFY_PAGES,
	};
	uint64_t limit = uiommu_xport_get_bandwidth(t->xs);

	if (t->cfg.policy_set)
		cfg.policy = t->cfg.policy;
	else
		uiommu_mig_policy_defaults(&cfg.policy);
	assert_int_equal(uiommu_mig_create(&cfg, &t->mig), 0);
	assert_int_equal(pthread_create(&t->thr, NULL, mt_recv_thread, t), 0);
	t->thr_up = true;
	t->ret = uiommu_mig_run(t->mig);
	uiommu_mig_get_result(t->mig, &t->res);
	/* The transport is ours: the migration's limit is gone, ours is back. */
	assert_true(uiommu_xport_get_bandwidth(t->xs) == limit);
	mt_join(t);
	return t->ret;
}

/* Frees the destination and the transport (the source stays). */
static inline void mt_dest_down(struct mt *t)
{
	mt_join(t);
	uiommu_mig_destroy(t->mig);
	t->mig = NULL;
	uiommu_xport_destroy(t->xs);
	uiommu_xport_destroy(t->xd);
	t->xs = t->xd = NULL;
	uiommu_machine_destroy(t->dst);
	t->dst = NULL;
}

static inline void mt_down(struct mt *t)
{
	mt_dest_down(t);
	uiommu_machine_destroy(t->src);
	t->src = NULL;
}

static inline void mt_print(const struct mt *t, const char *what)
{
	const struct uiommu_mig_result *r = &t->res;

	print_message("%s: %s in %.1f ms, downtime %.2f ms, %u rounds, %" PRIu64
		      " stop-copy pages, %.1f MiB, throttle %.2f; dest resume %.2f ms%s%s\n",
		      what, uiommu_mig_state_name(r->state), (double)r->total_ns / 1e6,
		      (double)r->downtime_ns / 1e6, r->rounds, r->stopcopy_pages,
		      (double)r->stream.bytes / (double)MiB, r->throttle_max,
		      (double)t->rres.resume_ns / 1e6, r->msg[0] ? ": " : "", r->msg);
}

/* A guest on a writing workload writes on (given the CPU: sanitizers and parallel tests starve it). */
static inline void mt_assert_writes_on(struct uiommu_machine *m, enum uiommu_workload_kind kind)
{
	struct uiommu_vm_stats a, b;

	if (kind == UIOMMU_WL_IDLE)
		return;
	uiommu_vm_get_stats(m->vm, &a);
	for (int i = 0; i < 300; i++) {
		mt_sleep_ms(10);
		uiommu_vm_get_stats(m->vm, &b);
		if (b.pages_written > a.pages_written)
			break;
	}
	assert_true(b.pages_written > a.pages_written);
}

/* After its own check the destination guest is back on the source's workload. */
static inline void mt_assert_guest_check_ok(const struct mt *t)
{
	struct uiommu_workload wl;

	assert_true(t->rres.guest_checked);
	assert_int_equal(t->rres.guest_bad_pages, 0);
	assert_true(t->rres.guest_verified_pages > 0);
	uiommu_vm_get_workload(t->dst->vm, &wl);
	assert_int_equal(wl.kind, t->cfg.wl.kind);
	assert_true(wl.pages_per_sec == t->cfg.wl.pages_per_sec && wl.seed == t->cfg.wl.seed);
	mt_assert_writes_on(t->dst, wl.kind);
}

/* Everything a good migration must show, on both sides. */
static inline void mt_assert_ok(const struct mt *t)
{
	const struct uiommu_mig_result *r = &t->res;

	for (unsigned int i = 0; (t->ret || t->rret) && i < r->remote.verify.nr_bad; i++)
		print_message("differing page at GPA 0x%" PRIx64 "\n", r->remote.verify.bad_gpa[i]);
	if (t->ret || t->rret)
		fail_msg("migration failed: source %d (%s), destination %d (%s)", t->ret, r->msg,
			 t->rret, t->rres.msg);
	assert_int_equal(r->state, UIOMMU_MIG_COMPLETED);
	assert_true(r->remote_valid);
	assert_int_equal(r->remote.status, 0);
	assert_true(r->remote.verify.checked);
	assert_true(r->remote.verify.ok);
	assert_int_equal(r->remote.verify.mismatched, 0);
	assert_true(t->rres.verify.ok);
	assert_true(t->rres.resumed);
	if (t->cfg.dma_mib) {
		assert_true(t->rres.device_checked);
		assert_int_equal(t->rres.device_bad, 0);
	}
	if (!t->cfg.no_guest_check)
		mt_assert_guest_check_ok(t);
	assert_true(r->downtime_ns > 0);
	assert_true(r->rounds >= 1);
}

/* Migrates a source built from @cfg to a fresh destination and checks it all. */
static inline void mt_run_ok(const struct mt_cfg *cfg, const char *what)
{
	struct mt t = { .cfg = *cfg };

	mt_source_up(&t);
	mt_dest_up(&t, false);
	mt_migrate(&t);
	mt_print(&t, what);
	mt_assert_ok(&t);
	mt_down(&t);
}

/* The source after a failed attempt: running, unthrottled, nothing lost. */
static inline void mt_assert_source_unharmed(struct mt *t)
{
	struct uiommu_machine *m = t->src;
	uint64_t words, *after = calloc(uiommu_bitmap_words(m->npages), 8);
	const uint64_t *taken = uiommu__mig_taken(t->mig, &words);

	assert_non_null(after);
	assert_int_equal(uiommu_round_collect(m->round), 0);
	uiommu_round_take(m->round, after);
	for (uint64_t w = 0; w < words; w++)
		if (taken[w] & ~after[w])
			fail_msg("taken bits not given back in word %" PRIu64, w);
	uiommu_round_restore(m->round, after);
	free(after);
	if (m->dev)
		assert_int_equal(uiommu_dmadev_get_state(m->dev), VFIO_DEVICE_STATE_RUNNING);
	assert_true(m->tracking);
	mt_assert_writes_on(m, t->cfg.wl.kind);
}

static inline struct uiommu_workload mt_wl(enum uiommu_workload_kind kind, uint64_t rate)
{
	struct uiommu_workload wl = { .kind = kind, .pages_per_sec = rate, .seed = 11 };

	if (kind == UIOMMU_WL_HOTSET) {
		wl.hot_pages_pct = 10;
		wl.hot_writes_pct = 90;
	}
	return wl;
}

static inline bool mt_have_kvm(void)
{
	return uiommu_kvm_available();
}

#endif
