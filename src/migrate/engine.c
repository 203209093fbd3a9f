// SPDX-License-Identifier: MIT
/*
 * The migration engine, source side: the object, its states and the run
 * loop's frame (setup and rounds in engine_precopy.c, stop-and-copy and the
 * verdict in engine_stopcopy.c, the destination in engine_recv.c).
 *
 * run() walks NONE -> SETUP -> PRECOPY -> STOPCOPY -> COMPLETED; every move
 * goes through engine_set_state(), which asks the one table of arcs
 * (state.c), so no path can reach COMPLETED without stopping the guest.
 * Any error on the way ends in FAILED, or CANCELLED when uiommu_mig_cancel()
 * was called: engine_unwind() then gives every dirty bit the attempt took
 * back to the machine's round, lifts the throttle and lets the guest and the
 * device run again, so that another attempt (a new migration object on a
 * new transport) starts from a machine that lost nothing; unless the
 * receiver had resumed the guest and did not say it failed: the source then
 * stays paused (engine_stopcopy.c).
 *
 * Errors: the first one recorded wins (engine_fail), with a message saying
 * where it happened; later failures during the unwind are only logged.
 *
 * Cancel is a flag (atomic, so a signal handler may set it) that the loop
 * checks between chunks of pages and between steps; to interrupt a write or
 * read blocked on the transport it also shuts the transport down
 * (uiommu_xport_shutdown is an atomic store and shutdown(2), both
 * async-signal-safe), but only while the run is in flight.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/engine_internal.h"

uint64_t engine_now(void)
{
	return uiommu__now_ns();
}

int engine_set_state(struct uiommu_migration *mig, enum uiommu_mig_state to)
{
	if (!uiommu_mig_transition_valid(mig->state, to)) {
		uiommu__log(UIOMMU_LOG_ERR, "migration: no arc from %s to %s",
			    uiommu_mig_state_name(mig->state), uiommu_mig_state_name(to));
		return engine_fail(mig, -EINVAL, "internal: no arc from %s to %s",
				   uiommu_mig_state_name(mig->state), uiommu_mig_state_name(to));
	}
	mig->state = to;
	return 0;
}

int engine_fail(struct uiommu_migration *mig, int err, const char *fmt, ...)
{
	va_list ap;

	if (mig->res.error)
		return err;
	mig->res.error = err;
	va_start(ap, fmt);
	vsnprintf(mig->res.msg, sizeof(mig->res.msg), fmt, ap);
	va_end(ap);
	return err;
}

bool engine_cancelled(struct uiommu_migration *mig)
{
	return __atomic_load_n(&mig->cancel, __ATOMIC_ACQUIRE);
}

static int check_cfg(const struct uiommu_mig_cfg *cfg)
{
	const struct uiommu_mig_policy_cfg *p = &cfg->policy;

	if (!cfg->machine || !cfg->xport || !cfg->machine->vm || !cfg->machine->round)
		return -EINVAL;
	if (cfg->machine->cfg.incoming || cfg->verify > UIOMMU_STREAM_VERIFY_NONE)
		return -EINVAL;
	if (!(p->throttle_initial >= 0 && p->throttle_initial < 1) ||
	    !(p->throttle_max >= 0 && p->throttle_max < 1) || !(p->throttle_step >= 0))
		return -EINVAL;
	return 0;
}

UIOMMU_EXPORT int uiommu_mig_create(const struct uiommu_mig_cfg *cfg,
				    struct uiommu_migration **out)
{
	struct uiommu_migration *mig;

	if (!cfg || !out || check_cfg(cfg))
		return -EINVAL;
	mig = uiommu__zalloc(sizeof(*mig));
	if (!mig)
		return -ENOMEM;
	mig->cfg = *cfg;
	mig->m = cfg->machine;
	if (!mig->cfg.progress_interval_ns)
		mig->cfg.progress_interval_ns = ENGINE_PROGRESS_NS;
	mig->words = uiommu_bitmap_words(mig->m->npages);
	mig->send = uiommu__calloc(mig->words, sizeof(uint64_t));
	mig->taken = uiommu__calloc(mig->words, sizeof(uint64_t));
	mig->scratch = uiommu__calloc(mig->words, sizeof(uint64_t));
	if (!mig->send || !mig->taken || !mig->scratch) {
		uiommu_mig_destroy(mig);
		return -ENOMEM;
	}
	uiommu_mig_policy_init(&mig->policy, &cfg->policy);
	*out = mig;
	return 0;
}

UIOMMU_EXPORT void uiommu_mig_destroy(struct uiommu_migration *mig)
{
	if (!mig)
		return;
	uiommu_stream_sender_destroy(mig->tx);
	free(mig->dev_blob);
	free(mig->vcpu_blob);
	uiommu__free(mig->rounds);
	uiommu__free(mig->send);
	uiommu__free(mig->taken);
	uiommu__free(mig->scratch);
	uiommu__free(mig);
}

UIOMMU_EXPORT void uiommu_mig_cancel(struct uiommu_migration *mig)
{
	if (!mig)
		return;
	__atomic_store_n(&mig->cancel, 1, __ATOMIC_RELEASE);
	if (__atomic_load_n(&mig->running, __ATOMIC_ACQUIRE))
		uiommu_xport_shutdown(mig->cfg.xport);
}

/* The result's totals, whatever the outcome. */
static void fill_totals(struct uiommu_migration *mig)
{
	struct uiommu_mig_result *res = &mig->res;

	res->state = mig->state;
	res->total_ns = engine_now() - mig->start_ns;
	if (mig->tx)
		uiommu_stream_sender_get_stats(mig->tx, &res->stream);
	res->rounds = 0;
	res->pinned_resent_pages = 0;
	for (unsigned int i = 0; i < mig->nr_rounds; i++) {
		const struct uiommu_mig_round_info *ri = &mig->rounds[i];

		if (ri->stopcopy || !ri->completed)
			continue;
		res->rounds++;
		/* What a pre-copy round found pinned, the next round (or the stop-copy) resends. */
		res->pinned_resent_pages += ri->pinned_pages;
		res->pinned_pages = ri->pinned_pages;
		res->pinned_downtime_ns = ri->pinned_downtime_ns;
		res->all_dirty = res->all_dirty || ri->all_dirty;
	}
}

/* The message says why the source did not resume (cut to fit). */
static void note_source_paused(struct uiommu_migration *mig)
{
	static const char note[] = "; the receiver had resumed the guest: the source stays paused";
	size_t len = strlen(mig->res.msg), room = sizeof(mig->res.msg) - 1;

	if (len + sizeof(note) - 1 > room)
		len = room - (sizeof(note) - 1);
	memcpy(mig->res.msg + len, note, sizeof(note));
}

/* After an error: undo, then FAILED or CANCELLED. */
static void finish_failed(struct uiommu_migration *mig, int err)
{
	bool cancelled = engine_cancelled(mig);

	if (cancelled) {
		mig->res.error = 0;
		engine_fail(mig, -ECANCELED, "cancelled in %s", uiommu_mig_state_name(mig->state));
	} else if (!mig->res.error) {
		engine_fail(mig, err, "%s", strerror(-err));
	}
	if (!cancelled && !mig->res.remote_valid && (err == -EPIPE || err == -ECONNRESET))
		engine_fetch_verdict(mig);
	engine_unwind(mig);
	if (mig->res.source_paused)
		note_source_paused(mig);
	/* FAILED and CANCELLED are reachable from every state run passes through. */
	engine_set_state(mig, cancelled ? UIOMMU_MIG_CANCELLED : UIOMMU_MIG_FAILED);
}

UIOMMU_EXPORT int uiommu_mig_run(struct uiommu_migration *mig)
{
	int ret;

	if (mig->ran)
		return -EALREADY;
	mig->ran = true;
	mig->start_ns = engine_now();
	mig->progress_ns = mig->start_ns;
	__atomic_store_n(&mig->running, 1, __ATOMIC_RELEASE);
	ret = engine_set_state(mig, UIOMMU_MIG_SETUP);
	if (!ret)
		ret = engine_setup(mig);
	if (!ret)
		ret = engine_precopy(mig);
	if (!ret)
		ret = engine_stopcopy(mig);
	__atomic_store_n(&mig->running, 0, __ATOMIC_RELEASE);
	if (ret)
		finish_failed(mig, ret);
	if (mig->bandwidth_set)
		uiommu_xport_set_bandwidth(mig->cfg.xport, mig->saved_bandwidth);
	fill_totals(mig);
	engine_progress(mig, 0, true);
	return mig->res.error;
}

UIOMMU_EXPORT void uiommu_mig_get_result(const struct uiommu_migration *mig,
					 struct uiommu_mig_result *res)
{
	*res = mig->res;
	res->state = mig->state;
}

UIOMMU_EXPORT const struct uiommu_mig_round_info *
uiommu_mig_get_rounds(const struct uiommu_migration *mig, unsigned int *nr)
{
	*nr = mig->nr_rounds;
	return mig->rounds;
}

const uint64_t *uiommu__mig_taken(const struct uiommu_migration *mig, uint64_t *words)
{
	*words = mig->words;
	return mig->taken;
}

const char *engine_device_name(const struct uiommu_machine *m)
{
	if (m->cfg.iommu != UIOMMU_MACHINE_VFIO_TYPE1)
		return "dmadev";
	return m->cfg.device_kind == UIOMMU_DMADEV_KIND_MDEV ? "mdev-type1" : "dmadev-type1";
}
