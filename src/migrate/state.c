// SPDX-License-Identifier: MIT
/*
 * The migration's states and the one table of arcs between them.
 *
 * none -> setup -> precopy -> stopcopy -> completed is the successful path.
 * Failure or cancellation may come from setup, precopy or stopcopy; both
 * leave the source guest running (the engine resumes it and merges back the
 * dirty bits it had taken), so another attempt may start from there: failed
 * and cancelled lead back to setup. Completed is final: the guest lives on
 * the destination now.
 */
#include <uiommu/migrate.h>

static const char *const state_names[UIOMMU_MIG_NR_STATES] = {
	[UIOMMU_MIG_NONE] = "none",
	[UIOMMU_MIG_SETUP] = "setup",
	[UIOMMU_MIG_PRECOPY] = "pre-copy",
	[UIOMMU_MIG_STOPCOPY] = "stop-copy",
	[UIOMMU_MIG_COMPLETED] = "completed",
	[UIOMMU_MIG_FAILED] = "failed",
	[UIOMMU_MIG_CANCELLED] = "cancelled",
};

#define ARC(to) (1u << (to))
#define ENDINGS (ARC(UIOMMU_MIG_FAILED) | ARC(UIOMMU_MIG_CANCELLED))

static const unsigned int arcs[UIOMMU_MIG_NR_STATES] = {
	[UIOMMU_MIG_NONE] = ARC(UIOMMU_MIG_SETUP),
	[UIOMMU_MIG_SETUP] = ARC(UIOMMU_MIG_PRECOPY) | ENDINGS,
	[UIOMMU_MIG_PRECOPY] = ARC(UIOMMU_MIG_STOPCOPY) | ENDINGS,
	[UIOMMU_MIG_STOPCOPY] = ARC(UIOMMU_MIG_COMPLETED) | ENDINGS,
	[UIOMMU_MIG_COMPLETED] = 0,
	[UIOMMU_MIG_FAILED] = ARC(UIOMMU_MIG_SETUP),
	[UIOMMU_MIG_CANCELLED] = ARC(UIOMMU_MIG_SETUP),
};

UIOMMU_EXPORT const char *uiommu_mig_state_name(enum uiommu_mig_state s)
{
	return (unsigned int)s < UIOMMU_MIG_NR_STATES ? state_names[s] : "invalid";
}

UIOMMU_EXPORT bool uiommu_mig_transition_valid(enum uiommu_mig_state from,
					       enum uiommu_mig_state to)
{
	if ((unsigned int)from >= UIOMMU_MIG_NR_STATES || (unsigned int)to >= UIOMMU_MIG_NR_STATES)
		return false;
	return arcs[from] & ARC(to);
}
