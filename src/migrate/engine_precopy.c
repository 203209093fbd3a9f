// SPDX-License-Identifier: MIT
/*
 * The source's setup and pre-copy rounds.
 *
 * Setup: a stream sender over guest memory, the header, the bandwidth limit,
 * and dirty tracking (unless it is on already: then it stays on, and what it
 * holds is covered below).
 *
 * Round 1 sends every page that was ever written (memfd holes are zero on
 * both sides, see engine_holes). Whatever the machine's round held before it
 * (bits from before the migration, or given back by a failed attempt) is
 * taken and dropped, because the full pass covers it; it is still recorded
 * in mig->taken, for the full pass covers it only if it is delivered.
 *
 * Round k (k >= 1): send the pages of mig->send in chunks of at most
 * ENGINE_CHUNK_PAGES dirty pages (checking cancel and reporting progress
 * between chunks), then collect every dirty source and take the round
 * bitmap into mig->send: the pages dirtied while round k was on the wire,
 * which round k + 1 sends. A ROUND record closes the round; the policy
 * (policy.c) then sees what the round measured and decides.
 *
 * Failure safety rests on one rule: every bitmap taken from the machine is
 * ORed into mig->taken at once, and a failed attempt restores mig->taken
 * (engine_unwind). That gives back more than needed (pages that were
 * delivered, too), never less: a taken bit is only "consumed" when the
 * receiver's verdict proves it holds the page, and that is the end of the
 * migration.
 *
 * A page written while its chunk is being sent is either sent with the new
 * content or not; in both cases its dirty bit is set after the write (every
 * source reports a write that completed before the collect), so the next
 * round sends it again.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "migrate/engine_internal.h"

int engine_setup(struct uiommu_migration *mig)
{
	struct uiommu_stream_send_cfg sc = {
		.xport = mig->cfg.xport,
		.mem = uiommu_vm_mem(mig->m->vm),
		.mem_bytes = uiommu_vm_mem_bytes(mig->m->vm),
		.zstd_level = mig->cfg.zstd_level,
		.verify = mig->cfg.verify,
	};
	int ret = uiommu_stream_sender_create(&sc, &mig->tx);

	if (ret)
		return engine_fail(mig, ret, "setup: stream sender: %s", strerror(-ret));
	if (mig->cfg.bandwidth_bps) {
		/* The transport is the caller's: run() puts its own limit back. */
		mig->saved_bandwidth = uiommu_xport_get_bandwidth(mig->cfg.xport);
		mig->bandwidth_set = true;
		uiommu_xport_set_bandwidth(mig->cfg.xport, mig->cfg.bandwidth_bps);
	}
	engine_stall_update(mig);
	ret = uiommu_machine_track_start(mig->m);
	if (ret)
		return engine_fail(mig, ret, "setup: dirty tracking: %s", strerror(-ret));
	ret = uiommu_stream_send_header(mig->tx);
	if (ret)
		return engine_fail(mig, ret, "setup: sending the header: %s", strerror(-ret));
	mig->res.setup_ns = engine_now() - mig->start_ns;
	return engine_set_state(mig, UIOMMU_MIG_PRECOPY);
}

uint64_t engine_take(struct uiommu_migration *mig, uint64_t *into)
{
	uint64_t n = uiommu_round_take(mig->m->round, mig->scratch);

	for (uint64_t w = 0; w < mig->words; w++) {
		into[w] |= mig->scratch[w];
		mig->taken[w] |= mig->scratch[w];
	}
	return n;
}

struct uiommu_mig_round_info *engine_round_new(struct uiommu_migration *mig)
{
	struct uiommu_mig_round_info *ri;

	if (mig->nr_rounds == mig->cap_rounds) {
		unsigned int cap = mig->cap_rounds ? 2 * mig->cap_rounds : 16;

		ri = uiommu__calloc(cap, sizeof(*ri));
		if (!ri)
			return NULL;
		if (mig->nr_rounds)
			memcpy(ri, mig->rounds, mig->nr_rounds * sizeof(*ri));
		uiommu__free(mig->rounds);
		mig->rounds = ri;
		mig->cap_rounds = cap;
	}
	ri = &mig->rounds[mig->nr_rounds++];
	memset(ri, 0, sizeof(*ri));
	ri->round = mig->nr_rounds;
	ri->throttle = mig->throttle;
	return ri;
}

void engine_round_sources(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri)
{
	struct uiommu_round_stats st;

	uiommu_round_get_stats(mig->m->round, &st);
	ri->nr_sources = st.nr_sources;
	for (unsigned int i = 0; i < st.nr_sources; i++) {
		ri->source_name[i] = st.name[i];
		ri->source_pages[i] = st.reported[i];
	}
}

void engine_round_sent(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri,
		       const struct uiommu_stream_stats *before)
{
	struct uiommu_stream_stats now;

	uiommu_stream_sender_get_stats(mig->tx, &now);
	ri->data_pages = now.data_pages - before->data_pages;
	ri->zero_pages = now.zero_pages - before->zero_pages;
	ri->bytes = now.bytes - before->bytes;
}

void engine_progress(struct uiommu_migration *mig, uint64_t remaining, bool force)
{
	uint64_t now = engine_now(), dt = now - mig->progress_ns;
	struct uiommu_stream_stats st = { 0 };
	struct uiommu_mig_progress p;

	if (!mig->cfg.on_progress || (!force && dt < mig->cfg.progress_interval_ns))
		return;
	if (mig->tx)
		uiommu_stream_sender_get_stats(mig->tx, &st);
	p = (struct uiommu_mig_progress){
		.state = mig->state,
		.round = mig->nr_rounds,
		.elapsed_ns = now - mig->start_ns,
		.total_pages = mig->m->npages,
		.remaining_pages = remaining,
		.bytes = st.bytes,
		.throughput_bps = dt ? (uint64_t)((double)(st.bytes - mig->progress_bytes) * 1e9 /
						  (double)dt)
				     : 0,
		.dirty_rate_pps = mig->last.dirty_rate_pps,
		.expected_downtime_ns = mig->last.expected_downtime_ns,
		.throttle = mig->throttle,
	};
	mig->progress_ns = now;
	mig->progress_bytes = st.bytes;
	mig->cfg.on_progress(mig->cfg.opaque, &p);
}

/* Bits from @first (a multiple of 64) up to about ENGINE_CHUNK_PAGES set ones. */
static uint64_t chunk_span(const uint64_t *map, uint64_t first, uint64_t nbits, uint64_t *set)
{
	uint64_t w = first / 64, end_w = uiommu_bitmap_words(nbits);

	*set = 0;
	while (w < end_w && *set < ENGINE_CHUNK_PAGES)
		*set += (uint64_t)__builtin_popcountll(map[w++]);
	return u64_min(w * 64, nbits) - first;
}

int engine_send_bitmap(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri)
{
	uint64_t first = 0, n = mig->m->npages, left = ri->dirty_pages, set, span, t0;
	int ret;

	while (first < n) {
		if (engine_cancelled(mig))
			return engine_fail(mig, -ECANCELED, "cancelled");
		span = chunk_span(mig->send, first, n, &set);
		t0 = engine_now();
		ret = set ? uiommu_stream_send_pages(mig->tx, mig->send, first, span) : 0;
		ri->send_ns += engine_now() - t0;
		if (ret)
			return engine_fail(mig, ret, "%s round %u: sending pages: %s",
					   uiommu_mig_state_name(mig->state), ri->round,
					   strerror(-ret));
		first += span;
		left -= u64_min(left, set);
		engine_progress(mig, left, false);
	}
	return 0;
}

/*
 * Adds the time the throttle held the guest and the device back, up to now
 * (their throttle_ns: rate-limit sleeps of an unthrottled workload are the
 * workload's own pace, not stall).
 */
void engine_stall_update(struct uiommu_migration *mig)
{
	struct uiommu_vm_stats vs;
	struct uiommu_dmadev_stats ds = { 0 };

	uiommu_vm_get_stats(mig->m->vm, &vs);
	if (mig->m->dev)
		uiommu_dmadev_get_stats(mig->m->dev, &ds);
	/* The first call only marks: what a throttle did before this run is not its stall. */
	if (mig->stall_marked) {
		mig->res.guest_stall_ns += vs.throttle_ns - mig->stall_mark_ns;
		mig->res.dma_stall_ns += ds.throttle_ns - mig->dma_stall_mark_ns;
	}
	mig->stall_mark_ns = vs.throttle_ns;
	mig->dma_stall_mark_ns = ds.throttle_ns;
	mig->stall_marked = true;
}

static uint64_t state_bytes_estimate(const struct uiommu_migration *mig)
{
	uint64_t dev = mig->m->dev ? ENGINE_DEVICE_STATE_EST : 0;

	if (mig->device_state_bytes)
		dev = mig->device_state_bytes;
	return dev + uiommu_vm_nr_vcpus(mig->m->vm) * ENGINE_VCPU_STATE_EST;
}

/* The policy's view of round @ri, which left @pending pages to send. */
static void feed_policy(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri)
{
	struct uiommu_mig_round r = {
		.bytes_sent = ri->bytes,
		.send_ns = ri->send_ns,
		.pages_sent = ri->data_pages + ri->zero_pages,
		.zero_pages = ri->zero_pages,
		.dirty_pages = ri->pending_pages,
		.round_ns = ri->round_ns,
		.elapsed_ns = engine_now() - mig->start_ns,
		.state_bytes = state_bytes_estimate(mig),
		/* Pages dirtied by a workload carry data: price them as data pages. */
		.page_wire_bytes = ri->data_pages ? u64_min(ri->bytes / ri->data_pages, ENGINE_PAGE + 64)
						  : ENGINE_PAGE + 8,
		.pinned_pages = ri->pinned_pages,
		.always_dirty_pages = ri->all_dirty ? mig->m->npages : ri->pinned_pages,
	};

	uiommu_mig_policy_round(&mig->policy, &r, &mig->last);
	ri->bandwidth_bps = mig->last.bandwidth_bps;
	ri->dirty_rate_pps = mig->last.dirty_rate_pps;
	ri->expected_downtime_ns = mig->last.expected_downtime_ns;
	ri->pinned_downtime_ns = mig->last.pinned_downtime_ns;
	ri->action = mig->last.action;
}

void engine_round_pinned(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri)
{
	ri->pinned_pages = uiommu_machine_pinned_pages(mig->m);
	ri->all_dirty = uiommu_machine_all_dirty(mig->m);
}

/* Collects the sources into mig->send (now empty): the next round's pages. */
static int collect_round(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri)
{
	uint64_t t0 = engine_now();
	int ret = uiommu_round_collect(mig->m->round);

	/* A source that failed still handed over what it forgot: take it all the same. */
	memset(mig->send, 0, mig->words * sizeof(uint64_t));
	ri->pending_pages = engine_take(mig, mig->send);
	ri->collect_ns = engine_now() - t0;
	engine_round_sources(mig, ri);
	engine_round_pinned(mig, ri);
	if (ret)
		return engine_fail(mig, ret, "round %u: collecting dirty pages: %s", ri->round,
				   strerror(-ret));
	return 0;
}

/* Round @ri: send mig->send (ri->dirty_pages pages), collect the next. */
static int precopy_round(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri)
{
	struct uiommu_stream_stats before;
	uint64_t t0 = engine_now();
	int ret;

	uiommu_stream_sender_get_stats(mig->tx, &before);
	ret = engine_send_bitmap(mig, ri);
	if (!ret)
		ret = collect_round(mig, ri);
	if (ret) {
		/* What the cut round did send, for the log. */
		engine_round_sent(mig, ri, &before);
		return ret;
	}
	ri->round_ns = engine_now() - t0;
	ret = uiommu_stream_send_round(mig->tx, ri->round, ri->round_ns, ri->pending_pages);
	if (ret)
		return engine_fail(mig, ret, "round %u: sending its end: %s", ri->round,
				   strerror(-ret));
	engine_round_sent(mig, ri, &before);
	feed_policy(mig, ri);
	ri->completed = true;
	engine_progress(mig, ri->pending_pages, true);
	return 0;
}

/*
 * Sets in @map (cleared first) the pages of guest memory that were never
 * written: the holes of its memfd. They are zero without being read, and
 * reading one would allocate it (~7 us a page here, seconds per GiB).
 */
void engine_holes(struct uiommu_migration *mig, uint64_t *map)
{
	int fd = uiommu_vm_mem_fd(mig->m->vm);
	off_t end = (off_t)(mig->m->npages * ENGINE_PAGE), off = 0, data;

	memset(map, 0, mig->words * sizeof(uint64_t));
	while (off < end) {
		data = lseek(fd, off, SEEK_DATA);
		/* ENXIO: no data after off. Any other error: claim no more holes. */
		if (data < 0 && errno != ENXIO)
			return;
		data = data < 0 || data > end ? end : data;
		if (data > off)
			uiommu_bitmap_set_range(map, (uint64_t)off / ENGINE_PAGE,
						(uint64_t)data / ENGINE_PAGE - 1);
		off = data < end ? lseek(fd, data, SEEK_HOLE) : end;
		if (off < 0)
			return;
	}
}

/* Round 1's bitmap: every page written so far; what was pending is covered (and remembered). */
static int first_round_bitmap(struct uiommu_migration *mig, uint64_t *pages)
{
	int ret = uiommu_round_collect(mig->m->round);

	engine_take(mig, mig->send);
	if (ret)
		return engine_fail(mig, ret, "setup: collecting dirty pages: %s", strerror(-ret));
	/*
	 * Holes are zero on the receiver too (fresh memory). Tracking is on
	 * already, so a hole written after this look goes in a later round.
	 */
	engine_holes(mig, mig->scratch);
	for (uint64_t w = 0; w < mig->words; w++)
		mig->send[w] = ~mig->scratch[w];
	if (mig->m->npages < mig->words * 64)
		uiommu_bitmap_clear_range(mig->send, mig->m->npages, mig->words * 64 - 1);
	*pages = uiommu_bitmap_count_range(mig->send, 0, mig->m->npages - 1);
	return 0;
}

static int raise_throttle(struct uiommu_migration *mig)
{
	int ret;

	engine_stall_update(mig);
	ret = uiommu_machine_set_throttle(mig->m, mig->last.throttle);
	if (ret)
		return engine_fail(mig, ret, "throttling the guest: %s", strerror(-ret));
	mig->throttle = mig->last.throttle;
	if (mig->throttle > mig->res.throttle_max)
		mig->res.throttle_max = mig->throttle;
	return 0;
}

/* Says why: a limit, or a remainder that only the stop-copy can send. */
static int give_up(struct uiommu_migration *mig, const struct uiommu_mig_round_info *ri)
{
	if (ri->all_dirty || (ri->pinned_pages && ri->pending_pages <= ri->pinned_pages))
		return engine_fail(mig, -ETIMEDOUT,
				   "did not converge: %u rounds, expected downtime %.1f ms, all "
				   "of it pages dirty in every round (%s)",
				   ri->round, (double)ri->expected_downtime_ns / 1e6,
				   ri->all_dirty ? "type1 all-dirty rule" : "pinned");
	return engine_fail(mig, -ETIMEDOUT, "did not converge: %u rounds, expected downtime %.1f ms",
			   ri->round, (double)ri->expected_downtime_ns / 1e6);
}

int engine_precopy(struct uiommu_migration *mig)
{
	struct uiommu_mig_round_info *ri;
	uint64_t pages = 0;
	int ret = first_round_bitmap(mig, &pages);

	while (!ret) {
		ri = engine_round_new(mig);
		if (!ri)
			return engine_fail(mig, -ENOMEM, "round log: out of memory");
		ri->dirty_pages = pages;
		ret = precopy_round(mig, ri);
		if (ret)
			break;
		pages = ri->pending_pages;
		switch (ri->action) {
		case UIOMMU_MIG_SWITCHOVER:
		case UIOMMU_MIG_FORCE_SWITCH:
			return 0;
		case UIOMMU_MIG_GIVE_UP:
			return give_up(mig, ri);
		case UIOMMU_MIG_THROTTLE:
			ret = raise_throttle(mig);
			break;
		case UIOMMU_MIG_CONTINUE:
			break;
		}
	}
	return ret;
}
