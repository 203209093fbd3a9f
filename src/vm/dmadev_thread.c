// SPDX-License-Identifier: MIT
/*
 * The device thread of the emulated DMA device: plans each write from the
 * running state, builds its records, DMA-writes them through the emulated
 * IOMMU (uiommu_device_dma_write of the hwdev's DMA master, so the domain's
 * dirty bits are set; or, for a device behind a type1 container, whatever
 * d->write does there), logs the pages, and paces itself.
 *
 * Locking: the device lock protects the state, the running state (struct
 * dmadev_run), the pace and the parked flag. The thread holds it except
 * while it builds and writes. A write is planned under the lock without
 * advancing anything; the running state advances only when the write has
 * completed, so whenever the thread is parked the running state describes
 * exactly the writes done. The thread writes only in RUNNING and PRE_COPY
 * and checks that under the lock before every write; a transition to any
 * other state sets the state, wakes the thread and waits until it parks.
 * When that wait returns there is no DMA in flight and none will start.
 *
 * Pace: with a rate, a token bucket in bytes that may go into debt: a write
 * is allowed while the debt is under 200 us worth of bytes (so fast rates do
 * not sleep for every packet), and the thread then sleeps until the debt is
 * paid. The bucket holds up to 100 ms worth of bytes (plus one largest
 * write), so a thread the scheduler kept off the CPU for that long still
 * makes its rate over a second; bursts are bounded by the same amount. The throttle scales the rate by (1 - fraction); at unlimited rate it
 * holds the thread back fraction / (1 - fraction) of the time it ran since
 * it last slept:
 * that debt is slept in steps of at least 1 ms, and oversleeping is credited
 * (up to 10 ms), since a timed wait wakes ~50 us late on this kind of VM.
 * A faulting write (the IOMMU refused it, nothing was written) is retried
 * after 1 ms. Every sleep is a timed wait on the wake condition, so a
 * transition or a new workload interrupts it at once; the time slept is the
 * stall.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <uiommu/bitmap.h>
#include <uiommu/iommu.h>

#include "vm/dmadev_internal.h"

#define NSEC 1000000000ull
#define SLACK_NS 200000.0
#define BURST_S 0.1 /* bucket depth: catches up after the thread was starved */
#define MAX_SLEEP_NS 100000000ull
#define FAULT_BACKOFF_NS 1000000
#define HOLD_MIN_NS 1000000 /* sleep in steps of >= 1 ms: wake-up latency is ~50 us */
#define MAX_CREDIT_NS 10000000
#define PPM 1000000ull

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static bool may_write(const struct uiommu_dmadev *d)
{
	return dmadev_state_runs(d->state) && d->run.pattern != UIOMMU_DMADEV_IDLE;
}

/* Bytes per second after the throttle; 0 when unlimited. */
static double effective_rate(const struct uiommu_dmadev *d)
{
	return (double)d->run.rate_bps * (double)(PPM - d->run.throttle_ppm) / (double)PPM;
}

static void pace_reset(struct uiommu_dmadev *d)
{
	uint64_t now = now_ns();

	d->pace = (struct dmadev_pace){ .last_ns = now, .busy_since_ns = now };
}

/* How long the thread must still hold back before the next write. */
static uint64_t pace_due_ns(struct uiommu_dmadev *d, uint64_t now)
{
	double rate = effective_rate(d), wait;

	if (d->pace.debt_ns >= HOLD_MIN_NS)
		return (uint64_t)d->pace.debt_ns;
	if (!d->run.rate_bps)
		return 0;
	d->pace.tokens += rate * (double)(now - d->pace.last_ns) / (double)NSEC;
	d->pace.last_ns = now;
	if (d->pace.tokens > rate * BURST_S + (double)UIOMMU_DMADEV_BLOCK_MAX)
		d->pace.tokens = rate * BURST_S + (double)UIOMMU_DMADEV_BLOCK_MAX;
	if (d->pace.tokens * (double)NSEC > -SLACK_NS * rate)
		return 0;
	wait = -d->pace.tokens / rate * (double)NSEC;
	/* A rate throttled to a millionth can make the wait exceed 2^64 ns. */
	return wait < (double)MAX_SLEEP_NS ? (uint64_t)wait + 1 : MAX_SLEEP_NS;
}

/*
 * The throttle's share of @slept: with a rate, the throttle stretches each
 * write's time by 1 / (1 - f), so f of the time per byte is its doing; at
 * unlimited rate every hold is (a fault's back-off excepted, which is rare
 * and counted in too).
 */
static uint64_t throttle_share(const struct uiommu_dmadev *d, uint64_t slept)
{
	uint64_t ppm = d->run.throttle_ppm;

	if (!ppm)
		return 0;
	return d->run.rate_bps ? (uint64_t)((double)slept * (double)ppm / (double)PPM) : slept;
}

/* Sleeps (interruptibly) if the pace says so; true when it slept. */
static bool pace_hold(struct uiommu_dmadev *d)
{
	uint64_t now = now_ns(), due = pace_due_ns(d, now), slept;
	struct timespec until;

	if (!due)
		return false;
	due = u64_min(due, MAX_SLEEP_NS) + now;
	until.tv_sec = (time_t)(due / NSEC);
	until.tv_nsec = (long)(due % NSEC);
	pthread_cond_timedwait(&d->wake, &d->lock, &until);
	d->pace.busy_since_ns = now_ns();
	slept = d->pace.busy_since_ns - now;
	d->run.stall_ns += slept;
	d->throttle_ns += throttle_share(d, slept);
	d->pace.debt_ns -= (int64_t)slept;
	if (d->pace.debt_ns < -MAX_CREDIT_NS)
		d->pace.debt_ns = -MAX_CREDIT_NS;
	return true;
}

static bool next_is_block(const struct uiommu_dmadev *d)
{
	return d->run.pattern == UIOMMU_DMADEV_BLOCK ||
	       (d->run.pattern == UIOMMU_DMADEV_MIXED &&
		dmadev_mixed_is_block(d->ident.seed, d->run.seq));
}

/* The next write, from the running state; advances nothing. */
static void plan(const struct uiommu_dmadev *d, struct dmadev_write *w)
{
	const struct dmadev_run *r = &d->run;
	uint64_t first, npages;

	w->seq = r->seq;
	w->seed = d->ident.seed;
	if (next_is_block(d)) {
		dmadev_block_place(w->seed, r->block_count, d->block_pages, &first, &npages);
		w->kind = DMADEV_REC_BLOCK;
		w->index = r->block_count;
		w->gpa = d->block_gpa + first * DMADEV_PAGE;
		w->len = npages * DMADEV_PAGE;
		w->nparts = (uint32_t)npages;
	} else {
		w->kind = DMADEV_REC_NET;
		w->index = r->net_count;
		w->gpa = d->ident.dma_gpa + r->net_count % d->nslots * DMADEV_SLOT;
		w->len = DMADEV_PACKET;
		w->nparts = 1;
	}
}

/* The write is done (@rc 0) or faulted. */
static void account(struct uiommu_dmadev *d, const struct dmadev_write *w, int rc)
{
	struct dmadev_run *r = &d->run;
	uint64_t ppm = r->throttle_ppm, now = now_ns(), busy = now - d->pace.busy_since_ns;

	d->pace.busy_since_ns = now;
	if (rc) {
		r->faults++;
		/* A full back-off each time: no credit from oversleeping applies. */
		d->pace.debt_ns = (d->pace.debt_ns > 0 ? d->pace.debt_ns : 0) + FAULT_BACKOFF_NS;
		return;
	}
	r->seq++;
	if (w->kind == DMADEV_REC_NET)
		r->net_count++;
	else
		r->block_count++;
	r->bytes += w->len;
	r->pages += w->nparts;
	if (r->rate_bps)
		d->pace.tokens -= (double)w->len;
	else if (ppm)
		d->pace.debt_ns += (int64_t)(busy * ppm / (PPM - ppm));
}

static int do_write(struct uiommu_dmadev *d, const struct dmadev_write *w)
{
	int rc;

	dmadev_rec_build(d->scratch, w);
	rc = d->write(d, w->gpa, d->scratch, w->len);
	if (!rc)
		uiommu_bitmap_set_range_atomic(d->log, w->gpa / DMADEV_PAGE,
					       (w->gpa + w->len - 1) / DMADEV_PAGE);
	return rc;
}

/* Under lock: tell waiters the thread is parked, sleep until woken. */
static void park(struct uiommu_dmadev *d)
{
	d->parked = true;
	pthread_cond_broadcast(&d->idle);
	pthread_cond_wait(&d->wake, &d->lock);
	d->parked = false;
	pace_reset(d);
}

static void *dmadev_main(void *arg)
{
	struct uiommu_dmadev *d = arg;
	struct dmadev_write w;
	int rc;

	pthread_mutex_lock(&d->lock);
	pace_reset(d);
	while (!d->exiting) {
		if (!may_write(d)) {
			park(d);
			continue;
		}
		if (pace_hold(d))
			continue;
		plan(d, &w);
		pthread_mutex_unlock(&d->lock);
		rc = do_write(d, &w);
		pthread_mutex_lock(&d->lock);
		account(d, &w, rc);
	}
	d->parked = true;
	pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

void dmadev_enter_state(struct uiommu_dmadev *d, enum vfio_device_mig_state state)
{
	d->state = state;
	pthread_cond_broadcast(&d->wake);
	if (dmadev_state_runs(state))
		return;
	while (!d->parked)
		pthread_cond_wait(&d->idle, &d->lock);
}

int dmadev_thread_start(struct uiommu_dmadev *d)
{
	int ret = pthread_create(&d->thread, NULL, dmadev_main, d);

	return ret ? -ret : 0;
}

void dmadev_thread_stop(struct uiommu_dmadev *d)
{
	pthread_mutex_lock(&d->lock);
	d->exiting = true;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
}
