// SPDX-License-Identifier: MIT
/*
 * The migration engine, destination side: uiommu_mig_recv().
 *
 * A stream receiver writes the pages straight into the incoming machine's
 * guest memory (fresh memfd memory, so zero: not_zeroed stays false). The
 * memory is not faulted in beforehand: the source leaves pages never
 * written out of the stream, so most of a large idle guest is never
 * touched here, and faulting all of it first (over a second per GiB) would
 * keep the receiver from reading while the source, done with its few
 * pages, already waits for it at switchover, i.e. it would be downtime. A
 * page is faulted in when its first copy arrives (pre-copy, mostly). Its
 * event handler does the machine's part:
 *   HEADER      the layout must be this machine's memory, page for page;
 *   DEVICE      kept (the blob lives in the receiver) until switchover;
 *   SWITCHOVER  memory and state are complete: the device loads its state
 *               (it waits in RESUMING since the machine was created), the
 *               vCPUs are restored, the machine resumes (device RUNNING,
 *               vCPUs running), and the Resumed notice goes to the source,
 *               which ends its downtime.
 * After END the receiver's verification says whether our memory at
 * switchover equals the source's page for page; the device then checks its
 * DMA region against its own history (briefly stopped, as it cannot verify
 * while it writes). The verdict goes back to the source in every case the
 * transport allows, failure included.
 *
 * On failure the guest must not run here: the source resumes its own copy
 * when this side says it failed, so a guest resumed here is paused again.
 * (A source that hears nothing after Resumed stays paused: it cannot tell a
 * lost good verdict from a lost bad one.) The transport is shut down after the verdict, so that a source
 * still writing pages fails at once instead of filling the socket.
 *
 * Then, if asked, the guest checks its own memory (the VERIFY workload):
 * every work page must hold the generation the guest's table says. A page
 * a KVM vCPU was writing when the source paused it is finished first, when
 * the vCPU runs again here (the content and the table are both in memory).
 * The guest then takes up the workload it arrived with again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "migrate/engine_internal.h"

#define GUEST_CHECK_NS 60000000000ull
#define GUEST_POLL_NS 2000000L

struct recv_ctx {
	const struct uiommu_mig_recv_cfg *cfg;
	struct uiommu_machine *m;
	struct uiommu_mig_recv_result *res;
	struct uiommu_stream_receiver *rx;
	struct uiommu_stream_device dev;
	bool have_dev;
	uint64_t start_ns;
};

static int recv_fail_msg(struct recv_ctx *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int recv_fail_msg(struct recv_ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->res->error)
		return err;
	c->res->error = err;
	va_start(ap, fmt);
	vsnprintf(c->res->msg, sizeof(c->res->msg), fmt, ap);
	va_end(ap);
	return err;
}

static int on_header(struct recv_ctx *c, const struct uiommu_stream_event *ev)
{
	const struct uiommu_stream_range *r = ev->header.ranges;

	if (ev->header.page_size != ENGINE_PAGE || ev->header.nr_ranges != 1 || r[0].gpa ||
	    r[0].bytes != uiommu_vm_mem_bytes(c->m->vm))
		return recv_fail_msg(c, -EINVAL,
				     "the stream's memory layout is not this machine's (%llu MiB)",
				     (unsigned long long)(uiommu_vm_mem_bytes(c->m->vm) >> 20));
	return 0;
}

static int on_device(struct recv_ctx *c, const struct uiommu_stream_event *ev)
{
	if (!c->m->dev || ev->device.id != ENGINE_DEVICE_ID)
		return recv_fail_msg(c, -EPROTO, "state of an unknown device (%u, %s)",
				     ev->device.id, ev->device.name);
	if (strcmp(ev->device.name, engine_device_name(c->m)))
		return recv_fail_msg(c, -EPROTO, "the stream's device is %s, this machine's is %s",
				     ev->device.name, engine_device_name(c->m));
	c->dev = ev->device;
	c->have_dev = true;
	return 0;
}

static int load_device(struct recv_ctx *c)
{
	int ret;

	if (!c->m->dev)
		return 0;
	if (!c->have_dev)
		return recv_fail_msg(c, -EPROTO, "switchover without the device's state");
	ret = uiommu_dmadev_load(c->m->dev, c->dev.blob, c->dev.len);
	if (ret)
		return recv_fail_msg(c, ret, "the device refused its state (%d)", ret);
	return 0;
}

static int restore_vcpus(struct recv_ctx *c)
{
	const void *blob;
	uint64_t len;
	int ret = uiommu_stream_recv_vcpus(c->rx, &blob, &len);

	if (ret)
		return recv_fail_msg(c, -EPROTO, "switchover without the vCPUs' state");
	ret = uiommu_vm_restore_vcpus(c->m->vm, blob, len);
	if (ret)
		return recv_fail_msg(c, ret, "the vCPUs refused their state (%d)", ret);
	return 0;
}

static int on_switchover(struct recv_ctx *c)
{
	uint64_t t0 = engine_now();
	int ret = load_device(c);

	if (!ret)
		ret = restore_vcpus(c);
	if (ret)
		return ret;
	ret = uiommu_machine_resume(c->m);
	if (ret)
		return recv_fail_msg(c, ret, "resuming the guest (%d)", ret);
	c->res->resumed = true;
	c->res->resume_ns = engine_now() - t0;
	ret = uiommu_stream_resumed_send(c->cfg->xport, c->res->resume_ns);
	if (ret)
		return recv_fail_msg(c, ret, "sending the resumed notice: %s", strerror(-ret));
	return 0;
}

static void on_round(struct recv_ctx *c, const struct uiommu_stream_event *ev)
{
	struct uiommu_stream_stats st;
	struct uiommu_mig_progress p = { .state = UIOMMU_MIG_PRECOPY };

	if (!c->cfg->on_progress)
		return;
	uiommu_stream_recv_get_stats(c->rx, &st);
	p.round = ev->round.round;
	p.elapsed_ns = engine_now() - c->start_ns;
	p.total_pages = c->m->npages;
	p.remaining_pages = ev->round.remaining_pages;
	p.bytes = st.bytes;
	c->cfg->on_progress(c->cfg->opaque, &p);
}

static int on_event(void *opaque, const struct uiommu_stream_event *ev)
{
	struct recv_ctx *c = opaque;

	switch (ev->type) {
	case UIOMMU_STREAM_EV_HEADER:
		return on_header(c, ev);
	case UIOMMU_STREAM_EV_DEVICE:
		return on_device(c, ev);
	case UIOMMU_STREAM_EV_SWITCHOVER:
		return on_switchover(c);
	case UIOMMU_STREAM_EV_ROUND:
		on_round(c, ev);
		return 0;
	default:
		return 0;
	}
}

static int receive(struct recv_ctx *c)
{
	struct uiommu_stream_recv_cfg rc = {
		.mem = uiommu_vm_mem(c->m->vm),
		.mem_bytes = uiommu_vm_mem_bytes(c->m->vm),
		.populated = true,
		.on_event = on_event,
		.opaque = c,
	};
	int ret = uiommu_stream_receiver_create(&rc, &c->rx);

	if (ret)
		return recv_fail_msg(c, ret, "receiver: %s", strerror(-ret));
	ret = uiommu_stream_recv_run(c->rx, c->cfg->xport);
	if (ret)
		return recv_fail_msg(c, ret, "%s", uiommu_stream_recv_error(c->rx)->msg);
	uiommu_stream_recv_get_verify(c->rx, &c->res->verify);
	if (c->res->verify.checked && !c->res->verify.ok)
		return recv_fail_msg(c, -EIO, "verification: %llu of %llu pages differ",
				     (unsigned long long)c->res->verify.mismatched,
				     (unsigned long long)c->res->verify.pages);
	return 0;
}

static int check_device(struct recv_ctx *c)
{
	struct uiommu_dmadev *dev = c->m->dev;
	struct uiommu_dmadev_verify v;
	int ret, ret2;

	if (!dev)
		return 0;
	ret = uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_STOP);
	if (!ret)
		ret = uiommu_dmadev_verify(dev, &v);
	ret2 = uiommu_dmadev_set_state(dev, VFIO_DEVICE_STATE_RUNNING);
	ret = ret ? ret : ret2;
	if (ret)
		return recv_fail_msg(c, ret, "checking the device (%d)", ret);
	c->res->device_checked = true;
	c->res->device_bad = v.bad;
	c->res->device_bad_bytes = v.bad * ENGINE_PAGE;
	if (v.bad)
		return recv_fail_msg(c, -EIO, "the device's region: %llu bad, first at 0x%llx",
				     (unsigned long long)v.bad, (unsigned long long)v.first_bad_gpa);
	return 0;
}

/* The verdict to the source; on failure the guest stops here and the line is cut. */
static int answer(struct recv_ctx *c, int ret)
{
	struct uiommu_stream_result out = { 0 };
	int rc;

	if (c->rx)
		uiommu_stream_recv_get_result(c->rx, &out);
	if (ret) {
		out.status = ret < -4095 ? -EPROTO : ret;
		/* Our message may be longer than the wire's: cut it. */
		memcpy(out.msg, c->res->msg, sizeof(out.msg) - 1);
		out.msg[sizeof(out.msg) - 1] = '\0';
	}
	rc = uiommu_stream_result_send(c->cfg->xport, &out);
	if (!ret && rc)
		ret = recv_fail_msg(c, rc, "sending the verdict: %s", strerror(-rc));
	if (!ret)
		return 0;
	if (c->res->resumed && !uiommu_machine_pause(c->m))
		c->res->resumed = false;
	uiommu_xport_shutdown(c->cfg->xport);
	return ret;
}

/* Waits for the guest's VERIFY pass; @st: the VM's statistics at its end. */
static int guest_check_wait(struct recv_ctx *c, struct uiommu_vm_stats *st)
{
	const struct timespec poll = { .tv_nsec = GUEST_POLL_NS };
	uint64_t limit = c->cfg->guest_check_timeout_ns ? c->cfg->guest_check_timeout_ns
							 : GUEST_CHECK_NS;
	uint64_t end = engine_now() + limit;

	for (uiommu_vm_get_stats(c->m->vm, st); !st->verify_done; uiommu_vm_get_stats(c->m->vm, st)) {
		if (engine_now() > end)
			return recv_fail_msg(c, -ETIMEDOUT, "the guest's check did not finish");
		nanosleep(&poll, NULL);
	}
	return 0;
}

/*
 * The guest's own check runs between two stretches of the workload it
 * arrived with, which it then takes up again, whatever the check found.
 */
static int guest_check(struct recv_ctx *c)
{
	const struct uiommu_workload verify = { .kind = UIOMMU_WL_VERIFY };
	struct uiommu_workload wl;
	struct uiommu_vm_stats st;
	int ret, ret2;

	uiommu_vm_get_workload(c->m->vm, &wl);
	ret = uiommu_vm_start(c->m->vm, &verify);
	if (ret)
		return recv_fail_msg(c, ret, "starting the guest's check (%d)", ret);
	ret = guest_check_wait(c, &st);
	ret2 = wl.kind == UIOMMU_WL_VERIFY ? 0 : uiommu_vm_start(c->m->vm, &wl);
	if (ret)
		return ret;
	c->res->guest_checked = true;
	c->res->guest_verified_pages = st.verified_pages;
	c->res->guest_bad_pages = st.bad_pages;
	if (st.bad_pages)
		return recv_fail_msg(c, -EIO, "the guest found %llu bad pages of %llu",
				     (unsigned long long)st.bad_pages,
				     (unsigned long long)st.verified_pages);
	if (ret2)
		return recv_fail_msg(c, ret2, "resuming the guest's workload after its check (%d)",
				     ret2);
	return 0;
}

static int check_recv_cfg(const struct uiommu_mig_recv_cfg *cfg)
{
	if (!cfg || !cfg->machine || !cfg->xport || !cfg->machine->vm)
		return -EINVAL;
	return cfg->machine->cfg.incoming ? 0 : -EINVAL;
}

UIOMMU_EXPORT int uiommu_mig_recv(const struct uiommu_mig_recv_cfg *cfg,
				  struct uiommu_mig_recv_result *res)
{
	struct recv_ctx c = { .cfg = cfg, .res = res, .start_ns = engine_now() };
	int ret;

	memset(res, 0, sizeof(*res));
	ret = check_recv_cfg(cfg);
	if (ret)
		return recv_fail_msg(&c, ret, "not an incoming machine and a transport");
	c.m = cfg->machine;
	ret = receive(&c);
	if (!ret)
		ret = check_device(&c);
	ret = answer(&c, ret);
	if (c.rx)
		uiommu_stream_recv_get_stats(c.rx, &res->stream);
	res->total_ns = engine_now() - c.start_ns;
	if (!ret && cfg->guest_check)
		ret = guest_check(&c);
	uiommu_stream_receiver_destroy(c.rx);
	return ret;
}
