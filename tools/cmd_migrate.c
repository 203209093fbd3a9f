/* SPDX-License-Identifier: MIT */
/*
 * `uiommu migrate demo|send|recv`: live migration of a guest (KVM vCPUs, or
 * software vCPUs where /dev/kvm is not usable, labelled so) and its DMA
 * device, with the engine of <uiommu/migration.h>.
 *
 * This file dispatches, creates machines and holds the receiving side; the
 * source side is in migrate_source.c. `recv` is QEMU's -incoming: it builds
 * an incoming machine from the same machine options as the sender's, listens
 * (127.0.0.1 unless told otherwise; port 0 picks one, printed on stderr so
 * that a script can start the sender), accepts one sender, receives, resumes
 * the guest and lets it check its own memory, then reports and exits.
 *
 * Every wait is bounded (--timeout for the sender to come, the transport's
 * own timeout after that). SIGINT and SIGTERM cancel: on a receiver they shut
 * the listener or the connection down, which ends the receive with
 * -ECANCELED (exit 5); the sender's guest is not touched by that.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "uiommu.h"

int mig_machine_create(const struct mig_opts *o, bool incoming, struct uiommu_machine **out)
{
	struct uiommu_machine_cfg cfg = o->m;
	int ret;

	cfg.incoming = incoming;
	ret = uiommu_machine_create(&cfg, out);
	if (!ret)
		return 0;
	fprintf(stderr, "uiommu: migrate: cannot create the %s machine (%llu MiB, %u vCPUs, %s): %s\n",
		incoming ? "incoming" : "source", (unsigned long long)(cfg.mem_bytes >> 20),
		cfg.nr_vcpus, cfg.backend == UIOMMU_VM_KVM ? "KVM" : "software vCPUs",
		strerror(-ret));
	if (cfg.backend == UIOMMU_VM_KVM && !uiommu_kvm_available())
		fprintf(stderr, "uiommu: migrate: /dev/kvm is not usable here; try --backend soft\n");
	return ret;
}

int mig_recv_on(struct uiommu_machine *m, struct uiommu_xport *x, bool progress,
		struct uiommu_mig_recv_result *res)
{
	struct uiommu_mig_recv_cfg cfg = { .machine = m, .xport = x, .guest_check = true };
	int ret;

	if (progress && isatty(STDERR_FILENO)) {
		cfg.on_progress = mig_progress_line;
		cfg.opaque = MIG_PROGRESS_RECEIVER;
	}
	ret = uiommu_mig_recv(&cfg, res);
	if (progress)
		mig_progress_end();
	return ret;
}

/* ---- recv ---- */

static void cancel_listener(void *arg)
{
	uiommu_xport_listener_shutdown(arg);
}

static void cancel_xport(void *arg)
{
	uiommu_xport_shutdown(arg);
}

/* The listener, its address printed on stderr (scripts read the port there). */
static int recv_listen(const struct mig_opts *o, struct uiommu_xport_listener **l, char *addr,
		       size_t len)
{
	const char *want = o->addr ? o->addr : UIOMMU_XPORT_DEFAULT_ADDR;
	size_t host = strlen(want);
	int ret = uiommu_xport_listen(want, l);

	if (ret) {
		fprintf(stderr, "uiommu: migrate recv: listen on %s: %s\n", want, strerror(-ret));
		return ret;
	}
	/* The host part as given, the port as bound. */
	if (strrchr(want, ':') && (want[0] != '[' || strstr(want, "]:")))
		host = (size_t)(strrchr(want, ':') - want);
	snprintf(addr, len, "%.*s:%u", (int)host, want, uiommu_xport_listener_port(*l));
	fprintf(stderr, "uiommu: migrate recv: listening on %s\n", addr);
	return 0;
}

static int recv_accept(const struct mig_opts *o, struct uiommu_xport_listener *l,
		       struct uiommu_xport **x)
{
	int ret;

	tool_cancel_set(cancel_listener, l);
	ret = uiommu_xport_accept(l, (int)(o->timeout_s * 1e3), x);
	tool_cancel_set(NULL, NULL);
	if (ret)
		fprintf(stderr, "uiommu: migrate recv: waiting for the sender: %s\n",
			ret == -ETIMEDOUT ? "no sender came (--timeout)" : strerror(-ret));
	return ret;
}

static int recv_report(const struct mig_opts *o, const struct uiommu_mig_recv_result *res, int rc)
{
	if (o->json)
		mig_recv_summary_json(o, res, rc);
	else
		mig_recv_summary_text(o, res, rc);
	return mig_recv_exit_code(res, rc, tool_cancel_fired());
}

static int mig_recv(const struct mig_opts *o)
{
	struct uiommu_mig_recv_result res = { 0 };
	struct uiommu_xport_listener *l = NULL;
	struct uiommu_machine *m = NULL;
	struct uiommu_xport *x = NULL;
	char addr[80], peer[96];
	int ret, code = EXIT_SETUP;

	if (recv_listen(o, &l, addr, sizeof(addr)) || mig_machine_create(o, true, &m))
		goto out;
	snprintf(peer, sizeof(peer), "listening on %s", addr);
	mig_banner(o, uiommu_vm_backend_label(m->vm), peer);
	ret = recv_accept(o, l, &x);
	code = tool_cancel_fired() ? EXIT_CANCELLED : EXIT_RUNTIME;
	if (ret)
		goto out;
	tool_cancel_set(cancel_xport, x);
	ret = mig_recv_on(m, x, true, &res);
	tool_cancel_set(NULL, NULL);
	code = recv_report(o, &res, ret);
out:
	uiommu_xport_destroy(x);
	uiommu_xport_listener_destroy(l);
	uiommu_machine_destroy(m);
	return code;
}

/* ---- dispatch ---- */

static int usage(FILE *out)
{
	fprintf(out, "usage: uiommu migrate demo|send|recv [options]\n"
		     "  demo   a guest and a DMA device migrate to a receiver in this process\n"
		     "  send   migrate a guest to a receiver (--to ADDR:PORT)\n"
		     "  recv   receive one migration (--listen ADDR:PORT, default 127.0.0.1)\n\n");
	mig_help(out);
	return out == stdout ? 0 : EXIT_USAGE;
}

static int run_mode(enum mig_mode mode, int argc, char **argv)
{
	struct mig_opts o;
	int ret = mig_opts_parse(argc, argv, mode, &o);

	if (ret > 0) {
		mig_help(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "usage: uiommu migrate demo|send|recv [options] "
				"(`uiommu migrate --help` lists them)\n");
		return EXIT_USAGE;
	}
	ret = tool_cancel_start();
	if (ret) {
		fprintf(stderr, "uiommu: migrate: %s\n", strerror(-ret));
		return EXIT_SETUP;
	}
	if (mode == MIG_RECV)
		ret = mig_recv(&o);
	else
		ret = mode == MIG_SEND ? mig_send(&o) : mig_demo(&o);
	tool_cancel_stop();
	return ret;
}

int cmd_migrate(int argc, char **argv)
{
	static const char *const modes[] = { "demo", "send", "recv" };
	int mode;

	if (argc < 2)
		return usage(stderr);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout);
	mode = tool_lookup(modes, 3, argv[1]);
	if (mode < 0) {
		fprintf(stderr, "uiommu: migrate: unknown subcommand '%s'\n", argv[1]);
		return usage(stderr);
	}
	return run_mode((enum mig_mode)mode, argc - 1, argv + 1);
}
