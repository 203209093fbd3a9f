// SPDX-License-Identifier: MIT
/*
 * The source's stop-and-copy, the verdict, and the unwind after a failure.
 *
 * Stop-copy, in order:
 *   1. pause the machine: vCPUs parked, the device in STOP (no DMA in
 *      flight); downtime starts here. The throttle is lifted now, while
 *      nothing runs, because the device's throttle travels with its state
 *      and the guest must not arrive slowed down.
 *   2. the final round: collect once more (every write that completed before
 *      the pause is reported now), OR into the bits the last pre-copy round
 *      left pending, send them. A KVM vCPU may be parked in the middle of a
 *      page write: that page is already dirty (KVM logs the first write to
 *      it), so its partial content is sent, and the vCPU completes the write
 *      on the destination.
 *   3. the device (STOP -> STOP_COPY, save, back to STOP) and the vCPUs
 *      (save), then DEVICE, VCPUS and SWITCHOVER records.
 *   4. wait for the receiver's Resumed notice: downtime ends.
 *   5. END (the source hashes its memory now; its guest is stopped, so this
 *      costs no downtime; never-written pages are hashed as zero without
 *      being read) and the receiver's verdict.
 * COMPLETED needs a verdict with status 0 and, unless verification is off,
 * every page verified. The source then stays paused, tracking stops.
 *
 * Unwind (any failure before that): the union of every bitmap taken goes
 * back into the machine's round, the throttle is lifted, the device returns
 * to RUNNING (reset if it cannot: ERROR is only left by reset) and the
 * vCPUs run again. Dirty tracking stays on, so that the bits given back and
 * those written since are both in the next attempt's hands.
 *
 * Once the receiver has resumed the guest, only its verdict says which copy
 * may run: uiommu_mig_recv() pauses a guest it resumed whenever it fails, and
 * reports the failure when the line allows. So after Resumed the source runs
 * again only on a verdict that says the receiver failed. Any other end (the
 * line drops before the verdict, a verdict that is good by its status but not
 * by the source's checks, a cancel) leaves the source paused and says so
 * (res.source_paused): two running copies of one guest are worse than none,
 * and the caller, who can ask the destination, decides. Everything else is
 * undone as above.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/engine_internal.h"

#define VERDICT_PROBE_MS 1000

static int pause_source(struct uiommu_migration *mig)
{
	int ret;

	engine_stall_update(mig);
	mig->pause_ns = engine_now();
	ret = uiommu_machine_pause(mig->m);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: pausing the guest: %s", strerror(-ret));
	mig->paused = true;
	mig->throttle = 0;
	ret = uiommu_machine_set_throttle(mig->m, 0);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: lifting the throttle: %s", strerror(-ret));
	return 0;
}

static int final_round(struct uiommu_migration *mig)
{
	struct uiommu_mig_round_info *ri = engine_round_new(mig);
	struct uiommu_stream_stats before;
	uint64_t t0 = engine_now();
	int ret;

	if (!ri)
		return engine_fail(mig, -ENOMEM, "round log: out of memory");
	ri->stopcopy = true;
	ret = uiommu_round_collect(mig->m->round);
	engine_take(mig, mig->send);
	ri->collect_ns = engine_now() - t0;
	engine_round_sources(mig, ri);
	engine_round_pinned(mig, ri);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: collecting dirty pages: %s", strerror(-ret));
	ri->dirty_pages = uiommu_bitmap_count_range(mig->send, 0, mig->m->npages - 1);
	uiommu_stream_sender_get_stats(mig->tx, &before);
	ret = engine_send_bitmap(mig, ri);
	ri->round_ns = engine_now() - t0;
	if (!ret)
		ret = uiommu_stream_send_round(mig->tx, ri->round, ri->round_ns, 0);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: sending pages: %s", strerror(-ret));
	engine_round_sent(mig, ri, &before);
	ri->completed = true;
	mig->res.stopcopy_pages = ri->dirty_pages;
	return 0;
}

static int save_device(struct uiommu_migration *mig)
{
	struct uiommu_dmadev *dev = mig->m->dev;
	int ret, ret2;

	if (!dev)
		return 0;
	ret = uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP_COPY);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: device to STOP_COPY: %s", strerror(-ret));
	ret = uiommu_dmadev_save(dev, &mig->dev_blob, &mig->dev_len);
	/* Close the saving session whatever save said. */
	ret2 = uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP);
	ret = ret ? ret : ret2;
	if (ret)
		return engine_fail(mig, ret, "stop-copy: saving the device: %s", strerror(-ret));
	mig->device_state_bytes = mig->dev_len;
	return 0;
}

static int send_state(struct uiommu_migration *mig)
{
	int ret = uiommu_vm_save_vcpus(mig->m->vm, &mig->vcpu_blob, &mig->vcpu_len);

	if (ret)
		return engine_fail(mig, ret, "stop-copy: saving the vCPUs: %s", strerror(-ret));
	mig->res.state_bytes = mig->dev_len + mig->vcpu_len;
	if (mig->m->dev)
		ret = uiommu_stream_send_device(mig->tx, ENGINE_DEVICE_ID, engine_device_name(mig->m),
						mig->dev_blob, mig->dev_len);
	if (!ret)
		ret = uiommu_stream_send_vcpus(mig->tx, mig->vcpu_blob, mig->vcpu_len);
	if (!ret)
		ret = uiommu_stream_send_switchover(mig->tx);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: sending the state: %s", strerror(-ret));
	return 0;
}

static int remote_failed(struct uiommu_migration *mig, const char *when)
{
	struct uiommu_stream_result *r = &mig->res.remote;

	mig->res.remote_valid = true;
	return engine_fail(mig, r->status ? r->status : -EPROTO, "the receiver failed %s: %s",
			   when, r->msg[0] ? r->msg : "(no message)");
}

static int wait_resumed(struct uiommu_migration *mig)
{
	uint64_t resume_ns = 0;
	int ret = uiommu_stream_resumed_recv(mig->cfg.xport, &resume_ns, &mig->res.remote);

	if (ret == -EREMOTEIO)
		return remote_failed(mig, "at switchover");
	if (ret)
		return engine_fail(mig, ret, "stop-copy: waiting for the receiver to resume: %s",
				   strerror(-ret));
	mig->res.downtime_ns = engine_now() - mig->pause_ns;
	mig->remote_resumed = true;
	return 0;
}

static int verdict(struct uiommu_migration *mig)
{
	const struct uiommu_stream_verify *v = &mig->res.remote.verify;
	int ret;

	/* The guest is stopped: holes stay holes, and need not be read to be hashed. */
	engine_holes(mig, mig->scratch);
	ret = uiommu_stream_send_end_known_zero(mig->tx, mig->scratch);
	if (ret)
		return engine_fail(mig, ret, "stop-copy: sending the end: %s", strerror(-ret));
	ret = uiommu_stream_result_recv(mig->cfg.xport, &mig->res.remote);
	if (ret)
		return engine_fail(mig, ret, "waiting for the receiver's verdict: %s",
				   strerror(-ret));
	mig->res.remote_valid = true;
	if (mig->res.remote.status)
		return remote_failed(mig, "after the end");
	if (mig->cfg.verify != UIOMMU_STREAM_VERIFY_NONE && !(v->checked && v->ok))
		return engine_fail(mig, -EIO, "verification failed: %llu of %llu pages differ",
				   (unsigned long long)v->mismatched, (unsigned long long)v->pages);
	return 0;
}

int engine_stopcopy(struct uiommu_migration *mig)
{
	int ret = engine_set_state(mig, UIOMMU_MIG_STOPCOPY);

	if (!ret)
		ret = pause_source(mig);
	if (!ret)
		ret = final_round(mig);
	if (!ret)
		ret = save_device(mig);
	if (!ret)
		ret = send_state(mig);
	if (!ret)
		ret = wait_resumed(mig);
	if (!ret)
		ret = verdict(mig);
	if (ret)
		return ret;
	uiommu_machine_track_stop(mig->m);
	return engine_set_state(mig, UIOMMU_MIG_COMPLETED);
}

static void resume_source(struct uiommu_migration *mig)
{
	struct uiommu_dmadev *dev = mig->m->dev;
	int ret;

	if (dev && uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_RUNNING)) {
		uiommu__log(UIOMMU_LOG_WARN, "migration: device stuck, reset to resume it");
		uiommu_dmadev_reset(dev);
	}
	ret = uiommu_vm_resume(mig->m->vm);
	if (ret)
		uiommu__log(UIOMMU_LOG_ERR, "migration: resuming the guest failed (%d)", ret);
	mig->paused = false;
}

/* After Resumed, may the source run again? Only if the receiver said it failed. */
static bool receiver_stopped(const struct uiommu_migration *mig)
{
	return !mig->remote_resumed || (mig->res.remote_valid && mig->res.remote.status);
}

void engine_unwind(struct uiommu_migration *mig)
{
	uiommu_round_restore(mig->m->round, mig->taken);
	engine_stall_update(mig);
	mig->throttle = 0;
	if (uiommu_machine_set_throttle(mig->m, 0))
		uiommu__log(UIOMMU_LOG_WARN, "migration: could not lift the throttle");
	if (!mig->paused)
		return;
	if (receiver_stopped(mig)) {
		resume_source(mig);
		return;
	}
	mig->res.source_paused = true;
	uiommu__log(UIOMMU_LOG_WARN, "migration: the receiver resumed the guest and did not "
				     "say it failed: the source stays paused");
}

void engine_fetch_verdict(struct uiommu_migration *mig)
{
	struct uiommu_xport *x = mig->cfg.xport;
	struct uiommu_stream_result r;
	int saved = x->timeout_ms;

	/* The receiver may have said why it hung up before it did. */
	uiommu_xport_set_timeout(x, VERDICT_PROBE_MS);
	if (!uiommu_stream_result_recv(x, &r) && r.status) {
		mig->res.remote = r;
		mig->res.error = 0;
		remote_failed(mig, "and closed the connection");
	}
	uiommu_xport_set_timeout(x, saved);
}
