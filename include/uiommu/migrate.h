/* SPDX-License-Identifier: MIT */
/*
 * Live migration: the engine's states and its convergence policy.
 *
 * States are table-driven: every transition goes through one function that
 * refuses arcs the table does not list (-EINVAL), so no code path can, say,
 * complete a migration that never stopped the guest.
 *
 * The policy is pure arithmetic over what the engine measured in each round
 * (bytes sent and the time it took, pages still dirty, sizes of the device
 * and vCPU state); it decides whether to run another round, throttle the
 * guest and the device harder, switch over, or give up.
 *
 * Pages that are dirty in every round whatever the guest does (pinned by a
 * device, or every mapped page under type1's all-dirty rule) put a floor
 * under the remainder: when all that is left is such pages and it does not
 * fit the downtime limit, neither another round nor a throttle can help, so
 * the policy acts as at a limit at once (force the switch, or give up).
 */
#ifndef UIOMMU_MIGRATE_H
#define UIOMMU_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <uiommu/compiler.h>

UIOMMU_BEGIN_DECLS

enum uiommu_mig_state {
	UIOMMU_MIG_NONE,      /* not started */
	UIOMMU_MIG_SETUP,     /* connect, header, start dirty tracking */
	UIOMMU_MIG_PRECOPY,   /* rounds while the guest runs */
	UIOMMU_MIG_STOPCOPY,  /* guest and device stopped: the rest, device and vCPU state */
	UIOMMU_MIG_COMPLETED, /* the receiver confirmed; the source guest stays stopped */
	UIOMMU_MIG_FAILED,    /* the source guest runs on; dirty state merged back */
	UIOMMU_MIG_CANCELLED, /* as failed, at the user's request */
	UIOMMU_MIG_NR_STATES,
};

UIOMMU_EXPORT const char *uiommu_mig_state_name(enum uiommu_mig_state s);
/* May the engine go from @from to @to? */
UIOMMU_EXPORT bool uiommu_mig_transition_valid(enum uiommu_mig_state from,
					       enum uiommu_mig_state to);

struct uiommu_mig_policy_cfg {
	uint64_t downtime_limit_ns;  /* default 300 ms, as QEMU */
	unsigned int max_rounds;     /* 0: no limit */
	uint64_t max_time_ns;        /* 0: no limit */
	bool force_switchover;       /* at a limit: switch anyway (else fail) */
	bool throttle;               /* auto-converge: allowed to slow the guest */
	double throttle_initial;     /* default 0.20 */
	double throttle_step;        /* default 0.10 */
	double throttle_max;         /* default 0.90 */
};

/* Fills @cfg with the defaults above. */
UIOMMU_EXPORT void uiommu_mig_policy_defaults(struct uiommu_mig_policy_cfg *cfg);

/* What one pre-copy round measured. */
struct uiommu_mig_round {
	uint64_t bytes_sent;     /* on the wire during the round */
	uint64_t send_ns;        /* time spent sending them */
	uint64_t pages_sent;
	uint64_t zero_pages;     /* of pages_sent, those sent as zero records */
	uint64_t dirty_pages;    /* pending after this round's collection (to send next) */
	uint64_t round_ns;       /* wall time of the whole round */
	uint64_t elapsed_ns;     /* since the migration started */
	uint64_t state_bytes;    /* device + vCPU state to send at switchover */
	uint64_t page_wire_bytes; /* average bytes on the wire per page sent (<= 4096 + hdr) */
	/* Of dirty_pages, those pinned by a device: reported dirty in every
	 * round and so sent again at stop-copy whatever the guest does. */
	uint64_t pinned_pages;
	/* Pages the sources report in every round whatever is written: the
	 * pinned ones, or every mapped page under type1's all-dirty rule. */
	uint64_t always_dirty_pages;
};

enum uiommu_mig_action {
	UIOMMU_MIG_CONTINUE,      /* another round */
	UIOMMU_MIG_THROTTLE,      /* another round, with the throttle raised to .throttle */
	UIOMMU_MIG_SWITCHOVER,    /* expected downtime fits the limit */
	UIOMMU_MIG_FORCE_SWITCH,  /* a limit was hit and force_switchover is set */
	UIOMMU_MIG_GIVE_UP,       /* a limit was hit: fail (-ETIMEDOUT) */
};

struct uiommu_mig_decision {
	enum uiommu_mig_action action;
	double throttle;               /* fraction the guest and device are held back */
	uint64_t bandwidth_bps;        /* bytes/s estimate used */
	uint64_t expected_downtime_ns; /* at this bandwidth, for what is pending */
	uint64_t dirty_rate_pps;       /* pages/s dirtied during the round */
	uint64_t pinned_downtime_ns;   /* of expected_downtime_ns, the pinned pages' share */
};

struct uiommu_mig_policy {
	struct uiommu_mig_policy_cfg cfg;
	unsigned int rounds;
	uint64_t bandwidth_bps;  /* smoothed */
	uint64_t prev_dirty;     /* pending pages after the previous round */
	unsigned int stuck;      /* consecutive rounds the remainder did not shrink */
	double throttle;
};

UIOMMU_EXPORT void uiommu_mig_policy_init(struct uiommu_mig_policy *p,
					  const struct uiommu_mig_policy_cfg *cfg);
/* Feeds one round; returns the decision (also for the first round). */
UIOMMU_EXPORT void uiommu_mig_policy_round(struct uiommu_mig_policy *p,
					   const struct uiommu_mig_round *r,
					   struct uiommu_mig_decision *d);

UIOMMU_END_DECLS

#endif
