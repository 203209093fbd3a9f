/* SPDX-License-Identifier: MIT */
/*
 * Private header of the migration engine (engine*.c): the migration object
 * and the steps the source's run loop is made of.
 *
 * Ownership: the engine owns its sender, bitmaps, round log and the state
 * blobs of the stop-copy; the machine and the transport are the caller's.
 */
#ifndef UIOMMU_ENGINE_INTERNAL_H
#define UIOMMU_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <uiommu/migration.h>

#include "migrate/migrate_internal.h"

#define ENGINE_PAGE 4096ull
/* Dirty pages per send_pages call: one full batch, so cancel is seen often. */
#define ENGINE_CHUNK_PAGES 1024ull
#define ENGINE_PROGRESS_NS 250000000ull
#define ENGINE_DEVICE_ID 0u
/* vCPU state estimate before the first save: regs, sregs, XSAVE, MSRs... */
#define ENGINE_VCPU_STATE_EST (16ull << 10)
#define ENGINE_DEVICE_STATE_EST (4ull << 10)

struct uiommu_migration {
	struct uiommu_mig_cfg cfg;
	struct uiommu_machine *m;
	struct uiommu_stream_sender *tx;
	struct uiommu_mig_policy policy;
	enum uiommu_mig_state state;
	int cancel;  /* atomic: uiommu_mig_cancel() was called */
	int running; /* atomic: run is between setup and its verdict */
	bool ran;
	bool bandwidth_set;       /* the caller's limit is in saved_bandwidth */
	uint64_t saved_bandwidth;
	bool paused; /* the engine paused the source machine */
	bool remote_resumed; /* the receiver said it resumed the guest */
	uint64_t words;
	uint64_t *send;  /* the pages of the round being sent */
	uint64_t *taken; /* every bit taken from the machine's round, this attempt */
	uint64_t *scratch; /* what one take handed out */
	/* Rounds, stop-copy last. */
	struct uiommu_mig_round_info *rounds;
	unsigned int nr_rounds, cap_rounds;
	struct uiommu_mig_decision last;
	double throttle;
	/* Clocks and counters. */
	uint64_t start_ns, pause_ns;
	uint64_t progress_ns, progress_bytes; /* at the last progress report */
	uint64_t stall_mark_ns, dma_stall_mark_ns; /* throttle_ns counters at the last update */
	bool stall_marked;
	uint64_t device_state_bytes;
	void *dev_blob, *vcpu_blob;
	uint64_t dev_len, vcpu_len;
	struct uiommu_mig_result res;
};

/* engine.c */
int engine_set_state(struct uiommu_migration *mig, enum uiommu_mig_state to);
/* Records the first error and its message; returns @err. */
int engine_fail(struct uiommu_migration *mig, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool engine_cancelled(struct uiommu_migration *mig);
uint64_t engine_now(void);
/*
 * The name of the machine's device in the stream: its kind and how it is
 * attached ("dmadev" behind iommufd, "dmadev-type1", "mdev-type1"), so that
 * a destination set up otherwise refuses the state instead of loading it
 * into a device that would run differently.
 */
const char *engine_device_name(const struct uiommu_machine *m);

/* engine_precopy.c */
int engine_setup(struct uiommu_migration *mig);
/* Rounds until the policy switches over (0) or an error or give-up. */
int engine_precopy(struct uiommu_migration *mig);
/* The never-written pages of guest memory (memfd holes) into @map. */
void engine_holes(struct uiommu_migration *mig, uint64_t *map);
/* Takes the machine's pending bits into @into (ORed), remembering them. */
uint64_t engine_take(struct uiommu_migration *mig, uint64_t *into);
/* Sends the set bits of mig->send in chunks, reporting progress; times it in @ri. */
int engine_send_bitmap(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri);
/* The round's counters from the sender's, since @before. */
void engine_round_sent(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri,
		       const struct uiommu_stream_stats *before);
struct uiommu_mig_round_info *engine_round_new(struct uiommu_migration *mig);
void engine_round_sources(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri);
/* The pinned pages and the all-dirty rule at the round's collection. */
void engine_round_pinned(struct uiommu_migration *mig, struct uiommu_mig_round_info *ri);
void engine_progress(struct uiommu_migration *mig, uint64_t remaining, bool force);
void engine_stall_update(struct uiommu_migration *mig);

/* engine_stopcopy.c */
int engine_stopcopy(struct uiommu_migration *mig);
/* Undoes what the attempt did to the machine; never fails. */
void engine_unwind(struct uiommu_migration *mig);
/* Best effort after a transport error: the receiver's reason, if it sent one. */
void engine_fetch_verdict(struct uiommu_migration *mig);

/* For tests: the union of every bitmap the attempt took (npages bits). */
const uint64_t *uiommu__mig_taken(const struct uiommu_migration *mig, uint64_t *words);

#endif
