/* SPDX-License-Identifier: MIT */
/*
 * `uiommu migrate`: what its files share. cmd_migrate.c dispatches and holds
 * the receiver, migrate_source.c the source (send, and the demo that runs
 * both ends in one process), migrate_opts.c the options, migrate_report.c
 * the progress line and the text summary, migrate_json.c the JSON one,
 * migrate_chart.c the gnuplot chart, cancel.c what SIGINT does.
 */
#ifndef UIOMMU_TOOLS_MIGRATE_H
#define UIOMMU_TOOLS_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uiommu/migration.h>

enum mig_mode { MIG_DEMO, MIG_SEND, MIG_RECV };

struct mig_opts {
	enum mig_mode mode;
	struct uiommu_machine_cfg m;  /* geometry, backend, dirty source, device workload */
	struct uiommu_workload wl;    /* the guest's */
	char wl_name[32];             /* as given, for the banner */
	double rate_mbps, dma_rate_mbps;
	const char *addr;             /* send: --to; recv: --listen */
	struct uiommu_mig_policy_cfg policy;
	uint64_t bandwidth_bps;       /* 0: unlimited */
	int zstd_level;               /* 0: off */
	enum uiommu_stream_verify_mode verify;
	bool json;
	const char *chart;            /* PNG path, or NULL */
	double seconds_before;        /* guest runs this long before the migration */
	double timeout_s;             /* recv: wait for the sender; send: connect */
};

/* migrate_opts.c: 0, 1 for --help, or -EINVAL (a message went to stderr). */
int mig_opts_parse(int argc, char **argv, enum mig_mode mode, struct mig_opts *o);
void mig_help(FILE *out);
const char *mig_verify_name(enum uiommu_stream_verify_mode v);

/* Everything the summary shows, gathered once the migration ended. */
struct mig_report {
	const struct mig_opts *o;
	const char *backend;          /* "KVM vCPUs" / "software vCPUs" */
	char peer[160];               /* dirty sources and transport, for the banner */
	uint64_t total_pages;
	struct uiommu_mig_result res;
	const struct uiommu_mig_round_info *rounds;
	unsigned int nr_rounds;
	bool have_recv;               /* the receiver ran in this process (demo) */
	int recv_rc;
	struct uiommu_mig_recv_result recv;
	bool cancelled;
};

/* migrate_report.c; the progress callback's opaque is NULL, or this on a receiver. */
#define MIG_PROGRESS_RECEIVER ((void *)1)
void mig_progress_line(void *opaque, const struct uiommu_mig_progress *p);
void mig_progress_end(void);
const char *mig_action_name(enum uiommu_mig_action a);
void mig_banner(const struct mig_opts *o, const char *backend, const char *peer);
void mig_summary_text(const struct mig_report *r);
void mig_recv_summary_text(const struct mig_opts *o, const struct uiommu_mig_recv_result *res,
			   int rc);
/* The exit code a finished migration deserves (see `uiommu migrate --help`). */
int mig_exit_code(const struct mig_report *r);
int mig_recv_exit_code(const struct uiommu_mig_recv_result *res, int rc, bool cancelled);
/* Was the page-for-page verification (or a check on the receiver) failed? */
bool mig_verify_failed(const struct mig_report *r);

/* migrate_json.c */
void mig_summary_json(const struct mig_report *r);
void mig_recv_summary_json(const struct mig_opts *o, const struct uiommu_mig_recv_result *res,
			   int rc);

/* migrate_chart.c: 0, -ENOENT when gnuplot is missing, or another negative errno. */
int mig_chart_check(void);
int mig_chart_write(const char *png, const struct mig_report *r);

/* migrate_source.c */
int mig_send(const struct mig_opts *o);
int mig_demo(const struct mig_opts *o);

/*
 * cmd_migrate.c: the receiving side, on an accepted transport, with the
 * guest's own check after the verdict; @progress: a progress line on a
 * terminal (not in the demo, where the source has one).
 */
int mig_recv_on(struct uiommu_machine *m, struct uiommu_xport *x, bool progress,
		struct uiommu_mig_recv_result *res);
int mig_machine_create(const struct mig_opts *o, bool incoming, struct uiommu_machine **out);

/*
 * cancel.c: SIGINT and SIGTERM go to one thread, which calls the function
 * set last. tool_cancel_start() must run before any other thread exists.
 */
int tool_cancel_start(void);
void tool_cancel_set(void (*fn)(void *), void *arg);
bool tool_cancel_fired(void);
void tool_cancel_stop(void);

#endif
