/* SPDX-License-Identifier: MIT */
/*
 * Live migration of a machine (a VM and its DMA device, see machine.h): the
 * engine that drives the states and the policy of migrate.h over a stream
 * (migrate_stream.h) on a transport (migrate_xport.h).
 *
 * Source: uiommu_mig_create() then uiommu_mig_run(), which blocks until the
 * migration is COMPLETED, FAILED or CANCELLED:
 *   SETUP     header; dirty tracking started (unless it was already on)
 *   PRECOPY   round 1 sends every page; each later round collects the round
 *             bitmap from every dirty source, sends the dirty pages, feeds
 *             the policy, and continues, throttles the guest and the device,
 *             switches over, or gives up
 *   STOPCOPY  vCPUs parked and the device in STOP_COPY; final collection;
 *             the rest of the pages, the device state, the vCPU state,
 *             switchover; the receiver resumes the guest and says so, which
 *             ends the downtime; then the end record with the source's page
 *             hashes, and the receiver's verdict
 * Failure is safe: whatever fails before the receiver's verdict (transport,
 * receiver rejecting the stream, a local error, cancel) ends in FAILED or
 * CANCELLED with the source guest and device running again, the throttle
 * removed, and every dirty bit the migration had taken merged back into the
 * machine's round (uiommu_round_restore), so a second migration of the same
 * machine, on a new transport, succeeds and loses nothing.
 *
 * Destination: uiommu_mig_recv() on a machine created with incoming = true
 * and the same geometry as the source (memory, vCPUs, device), as QEMU's
 * -incoming: the stream's layout, the vCPU blob and the device state are
 * checked against it. It writes pages into guest memory, and at switchover
 * loads the device state (RESUMING, then RUNNING), restores the vCPUs,
 * resumes the guest and tells the source; after the end record it sends its
 * verdict (the stream's page-for-page verification), and may then let the
 * guest check its own memory.
 *
 * Neither side prints; progress goes to a callback.
 */
#ifndef UIOMMU_MIGRATION_H
#define UIOMMU_MIGRATION_H

#include <stdbool.h>
#include <stdint.h>
#include <uiommu/compiler.h>
#include <uiommu/dirty_source.h>
#include <uiommu/machine.h>
#include <uiommu/migrate.h>
#include <uiommu/migrate_stream.h>
#include <uiommu/migrate_xport.h>

UIOMMU_BEGIN_DECLS

#define UIOMMU_MIG_MSG_MAX 160

/* One pre-copy or stop-copy round, as the engine saw it (for reports and charts). */
struct uiommu_mig_round_info {
	uint32_t round;     /* 1: the full first pass */
	bool stopcopy;      /* the final round, guest stopped */
	bool completed;     /* false: cut short by a failure or cancel */
	unsigned int nr_sources;
	const char *source_name[UIOMMU_ROUND_MAX_SOURCES]; /* static strings of the machine */
	uint64_t source_pages[UIOMMU_ROUND_MAX_SOURCES];   /* each source's report this round */
	uint64_t dirty_pages;    /* pages this round sent (round 1: every page) */
	uint64_t data_pages, zero_pages, bytes; /* sent during the round */
	uint64_t collect_ns, send_ns, round_ns;
	uint64_t bandwidth_bps;        /* the policy's estimate after the round */
	uint64_t dirty_rate_pps;       /* pages/s dirtied while the round was sent */
	uint64_t pending_pages;        /* dirty when the round ended (the next round) */
	uint64_t expected_downtime_ns; /* for pending_pages at bandwidth_bps, plus state */
	double throttle;               /* in force during the round */
	enum uiommu_mig_action action; /* the policy's decision after the round */
	/* Pages a device had pinned when the round was collected: type1 reports
	 * them dirty in every round, so every round (and the stop-copy) sends
	 * them again; and their share of expected_downtime_ns. */
	uint64_t pinned_pages;
	uint64_t pinned_downtime_ns;
	bool all_dirty;                /* type1's all-dirty rule was in force */
};

/* What the progress callback sees, a few times a second and after each round. */
struct uiommu_mig_progress {
	enum uiommu_mig_state state;
	uint32_t round;
	uint64_t elapsed_ns;
	uint64_t total_pages;          /* of guest memory */
	uint64_t remaining_pages;      /* not yet sent in this round, plus known dirty */
	uint64_t bytes;                /* on the wire so far */
	uint64_t throughput_bps;       /* over the last interval */
	uint64_t dirty_rate_pps;       /* of the last finished round */
	uint64_t expected_downtime_ns; /* of the last finished round */
	double throttle;
};

typedef void (*uiommu_mig_progress_fn)(void *opaque, const struct uiommu_mig_progress *p);

struct uiommu_mig_cfg {
	struct uiommu_machine *machine; /* running; not owned */
	struct uiommu_xport *xport;     /* connected to a receiver; not owned, not closed */
	struct uiommu_mig_policy_cfg policy; /* uiommu_mig_policy_defaults() for QEMU's */
	int zstd_level;                 /* 0: no compression */
	enum uiommu_stream_verify_mode verify;
	uint64_t bandwidth_bps;         /* 0: unlimited */
	uint64_t progress_interval_ns;  /* 0: 250 ms */
	uiommu_mig_progress_fn on_progress; /* optional; called from uiommu_mig_run's thread */
	void *opaque;
};

struct uiommu_mig_result {
	enum uiommu_mig_state state;   /* COMPLETED, FAILED or CANCELLED (NONE before run) */
	int error;                     /* 0, or the negative errno that ended it */
	char msg[UIOMMU_MIG_MSG_MAX];  /* what failed and where; "" on success */
	uint64_t total_ns;             /* run start to the receiver's verdict */
	uint64_t setup_ns;
	uint64_t downtime_ns;          /* source paused to receiver's "resumed" notice */
	uint64_t stopcopy_pages;       /* pages sent while the guest was stopped */
	uint64_t state_bytes;          /* device + vCPU state */
	uint32_t rounds;               /* pre-copy rounds completed (not the stop-copy) */
	double throttle_max;
	uint64_t guest_stall_ns;       /* time the vCPUs were held back by the throttle */
	uint64_t dma_stall_ns;         /* and the device */
	/* From the last pre-copy round, i.e. known before the stop-copy: pages
	 * pinned (resent every round) and their share of the expected downtime. */
	uint64_t pinned_pages;
	uint64_t pinned_downtime_ns;
	uint64_t pinned_resent_pages;  /* pinned pages sent in rounds after the first */
	bool all_dirty;                /* type1's all-dirty rule was in force */
	struct uiommu_stream_stats stream; /* bytes, data/zero pages, compression */
	bool remote_valid;             /* a verdict arrived from the receiver */
	struct uiommu_stream_result remote; /* status and page-for-page verification */
	/*
	 * FAILED after the receiver resumed the guest, without its word that it
	 * failed (and so paused its copy): the guest may be running there, so the
	 * source stays paused. Everything else is undone (every dirty bit taken is
	 * back in the machine's round, tracking on, throttle lifted): once the
	 * caller knows the receiver does not run the guest, uiommu_machine_resume()
	 * and another attempt lose nothing.
	 */
	bool source_paused;
};

struct uiommu_migration;

/* -EINVAL for a NULL machine or transport or a bad policy; -ENOMEM. */
UIOMMU_EXPORT int uiommu_mig_create(const struct uiommu_mig_cfg *cfg,
				    struct uiommu_migration **out);
/* Never fails; a migration still running must have returned from run first. */
UIOMMU_EXPORT void uiommu_mig_destroy(struct uiommu_migration *mig);
/**
 * uiommu_mig_run() - Migrate, once; blocks until the end.
 *
 * Return: 0 when COMPLETED (the receiver verified every page and runs the
 * guest; the source stays paused, tracking stopped); else the negative errno
 * also in the result: the transport's, -EBADMSG/-EPROTO... from the
 * receiver's verdict, -ETIMEDOUT when the policy gave up, -ECANCELED.
 * -EALREADY when called twice.
 */
UIOMMU_EXPORT int uiommu_mig_run(struct uiommu_migration *mig);
/* From any thread or a signal handler: stop at the next chance, as a failure. */
UIOMMU_EXPORT void uiommu_mig_cancel(struct uiommu_migration *mig);
UIOMMU_EXPORT void uiommu_mig_get_result(const struct uiommu_migration *mig,
					 struct uiommu_mig_result *res);
/* The rounds so far, stop-copy last; valid until destroy or the next round. */
UIOMMU_EXPORT const struct uiommu_mig_round_info *
uiommu_mig_get_rounds(const struct uiommu_migration *mig, unsigned int *nr);

/* ------------------------------------------------------------ destination */

struct uiommu_mig_recv_cfg {
	struct uiommu_machine *machine; /* created with incoming = true; not owned */
	struct uiommu_xport *xport;     /* connected to the source; not owned */
	bool guest_check;   /* after the verdict: the guest verifies its own memory */
	uint64_t guest_check_timeout_ns; /* 0: 60 s */
	uiommu_mig_progress_fn on_progress; /* optional */
	void *opaque;
};

struct uiommu_mig_recv_result {
	int error;                     /* 0, or the negative errno that ended it */
	char msg[UIOMMU_MIG_MSG_MAX];
	uint64_t total_ns;             /* first byte to verdict */
	uint64_t resume_ns;            /* switchover record parsed to guest running */
	bool resumed;                  /* the guest runs here */
	struct uiommu_stream_stats stream;
	struct uiommu_stream_verify verify; /* page for page, against the source */
	bool device_checked;           /* the device's region verified from its state */
	uint64_t device_bad_bytes;     /* device_bad x 4 KiB: an upper bound */
	uint64_t device_bad;           /* ring buffers and pages not holding their last write */
	bool guest_checked;            /* the guest's own check finished */
	uint64_t guest_verified_pages, guest_bad_pages;
};

/**
 * uiommu_mig_recv() - Receive one migration; blocks until the end.
 *
 * Return: 0 when the stream was complete, verified and the guest resumed;
 * else a negative errno (the stream's, the transport's, -EIO when the
 * verification found differing pages or the guest's check bad pages). The
 * verdict is sent to the source in every case the transport allows.
 */
UIOMMU_EXPORT int uiommu_mig_recv(const struct uiommu_mig_recv_cfg *cfg,
				  struct uiommu_mig_recv_result *res);

UIOMMU_END_DECLS

#endif
