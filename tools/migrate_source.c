/* SPDX-License-Identifier: MIT */
/*
 * The source side of `uiommu migrate`: `send` to a receiver in another
 * process (or on another host), and `demo`, which runs the receiver in a
 * thread of this process over loopback TCP, so that one command shows a
 * whole live migration and its verification.
 *
 * Sequence: create the machine (a VM and its DMA device) -> start the guest
 * workload and the device -> let them run --seconds-before -> connect ->
 * uiommu_mig_run(), with SIGINT wired to uiommu_mig_cancel() -> report.
 * The engine starts dirty tracking itself; the first round sends every page.
 *
 * Demo: the receiver thread listens on 127.0.0.1 port 0 before the source
 * connects, accepts, and runs uiommu_mig_recv() on an incoming machine of the
 * same geometry, with the guest's self-check after the verdict. When the
 * source ends (whatever the outcome) it closes its end of the connection and
 * shuts the listener down, so the receiver never waits out a timeout for a
 * source that has gone; then it joins the thread, whose result (device and
 * guest checks) joins the summary.
 *
 * Exit codes: 3 when something could not be set up before any byte was sent
 * (memory, /dev/kvm, gnuplot for --chart), else mig_exit_code().
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "uiommu.h"

struct source {
	const struct mig_opts *o;
	struct uiommu_machine *m;
	struct uiommu_xport *x;
	struct uiommu_migration *mig;
	struct mig_report rep;
};

struct demo_rx {
	struct uiommu_xport_listener *l;
	struct uiommu_machine *m;
	int timeout_ms;
	int rc;
	struct uiommu_mig_recv_result res;
};

static int timeout_ms(double s)
{
	return s * 1e3 > 2e9 ? 2000000000 : (int)(s * 1e3);
}

static void sources_desc(struct uiommu_machine *m, char *buf, size_t len)
{
	struct uiommu_round_stats st;
	size_t off = 0;

	uiommu_round_get_stats(m->round, &st);
	buf[0] = 0;
	for (unsigned int i = 0; i < st.nr_sources && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", st.name[i]);
}

/* Lets the guest run before the migration; false if interrupted meanwhile. */
static bool run_before(const struct mig_opts *o)
{
	uint64_t end = tool_now_ns() + (uint64_t)(o->seconds_before * 1e9);

	while (tool_now_ns() < end && !tool_cancel_fired())
		usleep(20000);
	return !tool_cancel_fired();
}

static int source_setup(struct source *s)
{
	int ret;

	if (s->o->chart && mig_chart_check()) {
		fprintf(stderr, "uiommu: migrate: --chart needs gnuplot (Debian package "
				"gnuplot-nox, see scripts/deps.sh)\n");
		return -ENOENT;
	}
	ret = mig_machine_create(s->o, false, &s->m);
	if (ret)
		return ret;
	ret = uiommu_machine_run(s->m, &s->o->wl);
	if (ret)
		fprintf(stderr, "uiommu: migrate: cannot start the guest workload: %s\n",
			strerror(-ret));
	return ret;
}

static void cancel_mig(void *arg)
{
	uiommu_mig_cancel(arg);
}

/* Migrates over s->x; the report holds the outcome. Returns an exit code. */
static int source_migrate(struct source *s)
{
	const struct mig_opts *o = s->o;
	struct uiommu_mig_cfg cfg = {
		.machine = s->m, .xport = s->x, .policy = o->policy, .zstd_level = o->zstd_level,
		.verify = o->verify, .bandwidth_bps = o->bandwidth_bps,
		.on_progress = isatty(STDERR_FILENO) ? mig_progress_line : NULL,
	};
	int ret = uiommu_mig_create(&cfg, &s->mig);

	if (ret) {
		fprintf(stderr, "uiommu: migrate: cannot set the migration up: %s\n",
			strerror(-ret));
		return EXIT_SETUP;
	}
	tool_cancel_set(cancel_mig, s->mig);
	uiommu_mig_run(s->mig);
	tool_cancel_set(NULL, NULL);
	mig_progress_end();
	uiommu_mig_get_result(s->mig, &s->rep.res);
	s->rep.rounds = uiommu_mig_get_rounds(s->mig, &s->rep.nr_rounds);
	s->rep.cancelled = tool_cancel_fired();
	return 0;
}

static int source_report(struct source *s)
{
	const struct mig_report *r = &s->rep;
	int ret;

	if (s->o->json)
		mig_summary_json(r);
	else
		mig_summary_text(r);
	if (r->res.state == UIOMMU_MIG_FAILED || r->res.state == UIOMMU_MIG_CANCELLED)
		fprintf(stderr, "uiommu: migrate: %s; the source guest runs on, unharmed\n",
			uiommu_mig_state_name(r->res.state));
	if (s->o->chart) {
		ret = mig_chart_write(s->o->chart, r);
		if (ret)
			fprintf(stderr, "uiommu: migrate: --chart %s: %s\n", s->o->chart,
				strerror(-ret));
		else if (!s->o->json)
			printf("chart: %s\n", s->o->chart);
	}
	return mig_exit_code(r);
}

static void source_fini(struct source *s)
{
	uiommu_mig_destroy(s->mig);
	uiommu_xport_destroy(s->x);
	uiommu_machine_destroy(s->m);
}

static void source_init(struct source *s, const struct mig_opts *o)
{
	*s = (struct source){ .o = o, .rep = { .o = o } };
}

static void banner(struct source *s, const char *peer)
{
	char srcs[128], buf[sizeof(s->rep.peer)];

	s->rep.backend = uiommu_vm_backend_label(s->m->vm);
	s->rep.total_pages = s->m->npages;
	sources_desc(s->m, srcs, sizeof(srcs));
	snprintf(buf, sizeof(buf), "dirty sources: %s; %s", srcs, peer);
	snprintf(s->rep.peer, sizeof(s->rep.peer), "%s", buf);
	mig_banner(s->o, s->rep.backend, s->rep.peer);
}

int mig_send(const struct mig_opts *o)
{
	struct source s;
	char peer[64];
	int ret, code = EXIT_SETUP;

	source_init(&s, o);
	if (source_setup(&s))
		goto out;
	snprintf(peer, sizeof(peer), "TCP to %s", o->addr);
	banner(&s, peer);
	code = EXIT_CANCELLED;
	if (!run_before(o))
		goto out;
	ret = uiommu_xport_connect(o->addr, timeout_ms(o->timeout_s), &s.x);
	if (ret) {
		fprintf(stderr, "uiommu: migrate: connect %s: %s\n", o->addr, strerror(-ret));
		code = tool_cancel_fired() ? EXIT_CANCELLED : EXIT_RUNTIME;
		goto out;
	}
	code = source_migrate(&s);
	if (!code)
		code = source_report(&s);
out:
	source_fini(&s);
	return code;
}

/* ---- demo: the receiver in a thread ---- */

static void *demo_rx_thread(void *arg)
{
	struct demo_rx *rx = arg;
	struct uiommu_xport *x = NULL;

	rx->rc = uiommu_xport_accept(rx->l, rx->timeout_ms, &x);
	if (!rx->rc)
		rx->rc = mig_recv_on(rx->m, x, false, &rx->res);
	uiommu_xport_destroy(x);
	return NULL;
}

static int demo_rx_start(const struct mig_opts *o, struct demo_rx *rx, pthread_t *tid)
{
	int ret = uiommu_xport_listen("127.0.0.1:0", &rx->l);

	if (ret) {
		fprintf(stderr, "uiommu: migrate: listen on 127.0.0.1: %s\n", strerror(-ret));
		return ret;
	}
	ret = mig_machine_create(o, true, &rx->m);
	if (ret)
		return ret;
	rx->timeout_ms = timeout_ms(o->timeout_s + o->seconds_before);
	ret = -pthread_create(tid, NULL, demo_rx_thread, rx);
	if (ret)
		fprintf(stderr, "uiommu: migrate: no receiver thread: %s\n", strerror(-ret));
	return ret;
}

/* Ends the receiver: a source that has gone must not leave it waiting. */
static void demo_rx_join(struct source *s, struct demo_rx *rx, pthread_t tid)
{
	uiommu_xport_destroy(s->x);
	s->x = NULL;
	uiommu_xport_listener_shutdown(rx->l);
	pthread_join(tid, NULL);
	s->rep.have_recv = true;
	s->rep.recv_rc = rx->rc;
	s->rep.recv = rx->res;
}

static int demo_connect(struct source *s, struct demo_rx *rx)
{
	char addr[32], peer[96];
	int ret;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", uiommu_xport_listener_port(rx->l));
	snprintf(peer, sizeof(peer), "loopback TCP %s, receiver in this process", addr);
	banner(s, peer);
	if (!run_before(s->o))
		return -ECANCELED;
	ret = uiommu_xport_connect(addr, timeout_ms(s->o->timeout_s), &s->x);
	if (ret)
		fprintf(stderr, "uiommu: migrate: connect %s: %s\n", addr, strerror(-ret));
	return ret;
}

int mig_demo(const struct mig_opts *o)
{
	struct demo_rx rx = { 0 };
	struct source s;
	pthread_t tid;
	int ret, code = EXIT_SETUP;

	source_init(&s, o);
	if (source_setup(&s) || demo_rx_start(o, &rx, &tid))
		goto out;
	ret = demo_connect(&s, &rx);
	code = ret ? (ret == -ECANCELED ? EXIT_CANCELLED : EXIT_RUNTIME) : source_migrate(&s);
	demo_rx_join(&s, &rx, tid);
	if (!ret && !code)
		code = source_report(&s);
out:
	source_fini(&s);
	uiommu_xport_listener_destroy(rx.l);
	uiommu_machine_destroy(rx.m);
	return code;
}
