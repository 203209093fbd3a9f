/* SPDX-License-Identifier: MIT */
/*
 * Private declarations of the emulated DMA device (dmadev*.c): the device
 * object, the record format written into guest memory, the device state that
 * migrates and the stream that carries it.
 */
#ifndef UIOMMU_VM_DMADEV_INTERNAL_H
#define UIOMMU_VM_DMADEV_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <uiommu/dmadev.h>

#include "core/core_internal.h"

#define DMADEV_PAGE UIOMMU_DMADEV_PAGE_SIZE
#define DMADEV_SLOT UIOMMU_DMADEV_SLOT_BYTES
#define DMADEV_PACKET UIOMMU_DMADEV_PACKET_BYTES
#define DMADEV_BLOCK_MAX_PAGES (UIOMMU_DMADEV_BLOCK_MAX / DMADEV_PAGE)
#define DMADEV_STATE_ERROR VFIO_DEVICE_STATE_ERROR
#define DMADEV_STATE_STOP VFIO_DEVICE_STATE_STOP
#define DMADEV_STATE_RUNNING VFIO_DEVICE_STATE_RUNNING
#define DMADEV_STATE_STOP_COPY VFIO_DEVICE_STATE_STOP_COPY
#define DMADEV_STATE_RESUMING VFIO_DEVICE_STATE_RESUMING
#define DMADEV_STATE_PRE_COPY UIOMMU_VFIO_STATE_PRE_COPY
#define DMADEV_NR_STATES 8 /* ERROR .. PRE_COPY_P2P */

/* ---- records (dmadev_record.c) ---- */

#define DMADEV_REC_MAGIC 0x524d4455u /* "UDMR" */
#define DMADEV_REC_NET 1u
#define DMADEV_REC_BLOCK 2u

/*
 * The header at the start of every packet and of every page of a block
 * write, in host byte order (the guest's, x86). @index is the packet number
 * (net) or the block-write number (block); @part is the page's position in
 * its block write. @check keys the header's other fields with the seed.
 */
struct dmadev_rec {
	uint32_t magic;
	uint16_t kind;
	uint16_t part;
	uint32_t len; /* bytes of the record, header included */
	uint32_t nparts;
	uint64_t seq;
	uint64_t index;
	uint64_t check;
};
_Static_assert(sizeof(struct dmadev_rec) == 40, "record header layout");

/* One DMA write as planned: what to write where. */
struct dmadev_write {
	uint64_t gpa;
	uint64_t len;
	uint32_t kind;
	uint32_t nparts;
	uint64_t seq;
	uint64_t index;
	uint64_t seed;
};

/* splitmix64's finalizer: a bijection of 64-bit words. */
static inline uint64_t dmadev_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Block write number @w: first page of the block area and page count. */
void dmadev_block_place(uint64_t seed, uint64_t w, uint64_t block_pages, uint64_t *first,
			uint64_t *npages);
/* Is write number @seq of a MIXED workload a block write? */
bool dmadev_mixed_is_block(uint64_t seed, uint64_t seq);
/* Writes the records of @w into @buf (@w->len bytes). */
void dmadev_rec_build(uint8_t *buf, const struct dmadev_write *w);
/*
 * Is the record at @p (room for @room bytes) intact and of the device keyed
 * by @seed? Fills @rec with its header when it is.
 */
bool dmadev_rec_check(const uint8_t *p, uint64_t room, uint64_t seed, struct dmadev_rec *rec);

/* ---- the device state that migrates (dmadev_stream.c) ---- */

/* Identity and geometry: must match between source and destination. */
struct dmadev_ident {
	uint64_t seed;
	uint64_t dma_gpa, dma_bytes, ring_bytes;
};

/* Running state: position, sequence, workload, counters. */
struct dmadev_run {
	uint64_t seq;         /* next sequence number == completed writes */
	uint64_t net_count;   /* packets written: the ring position */
	uint64_t block_count; /* block writes done: the placement generator's counter */
	uint64_t pattern;
	uint64_t rate_bps;
	uint64_t throttle_ppm;
	uint64_t bytes, pages, stall_ns, faults;
};

/* What a resuming session has received so far, validated. */
struct dmadev_image {
	bool has_ident, has_run, has_end;
	struct dmadev_ident ident;
	struct dmadev_run run;
};

#define DMADEV_STREAM_MAX 1024 /* a complete stream is far smaller */

/* Bytes of the ident section, and of the run and end sections together. */
size_t dmadev_stream_ident_len(void);
size_t dmadev_stream_tail_len(void);
void dmadev_stream_put_ident(uint8_t *buf, const struct dmadev_ident *ident);
void dmadev_stream_put_tail(uint8_t *buf, const struct dmadev_run *run);
/*
 * The checksum of the section at @sect: over its header's first 16 bytes and
 * @words payload words (also used by the fuzz target to repair mutated
 * sections, so that mutations reach the field checks behind it).
 */
uint64_t dmadev_stream_checksum(const uint8_t *sect, size_t words);
/*
 * Parses the complete sections of @buf; a trailing partial section is left
 * for later (its header is checked once whole). @self is the receiving
 * device's geometry. 0 with @img; -EINVAL for anything malformed,
 * out of order or incompatible.
 */
int dmadev_stream_parse(const uint8_t *buf, size_t len, const struct dmadev_ident *self,
			struct dmadev_image *img);

/* ---- the device ---- */

/* The token bucket and the duty-cycle throttle (owned by the device thread). */
struct dmadev_pace {
	double tokens;   /* bytes that may be written now; may go negative */
	uint64_t last_ns;
	uint64_t busy_since_ns; /* the thread last woke or finished a write */
	int64_t debt_ns; /* time still to hold back (throttle at unlimited rate,
			  * fault back-off); negative: overslept, credited */
};

/* A saving session (PRE_COPY, STOP_COPY): the stream and the read position. */
struct dmadev_session {
	uint8_t *buf;
	size_t len, pos;
	size_t initial; /* bytes readable in PRE_COPY */
};

struct uiommu_dmadev {
	/* Fixed after create. */
	uint8_t *mem;
	uint64_t mem_bytes;
	uint64_t nslots, block_pages, block_gpa;
	struct uiommu_ctx *ctx;
	struct uiommu_hwdev *hw;
	struct uiommu_device *dma;
	uint32_t ioas_id, dev_id, hwpt_id;
	/* The type1 set-up (dmadev_type1.c), when cfg.vfio was given. */
	enum uiommu_dmadev_kind kind;
	struct uiommu_vfio_container *vfio;
	struct uiommu_vfio_group *group;
	struct uiommu_vfio_emudev *emu;
	void **pins;            /* MDEV: host address of each pinned page */
	uint64_t pin_gpa, pin_pages;
	int pinned;             /* atomic: the working set is pinned */
	/* How a DMA write reaches guest memory: the IOMMU, or pins and rw. */
	int (*write)(struct uiommu_dmadev *d, uint64_t gpa, const void *buf, uint64_t len);
	uint64_t *log; /* guest pages written; atomic words */
	uint64_t log_words;
	uint8_t *scratch; /* the device thread's write buffer */
	pthread_t thread;

	/* fsm_lock serializes transitions and the migration data calls, and
	 * protects the sessions. Taken before lock. */
	pthread_mutex_t fsm_lock;
	struct dmadev_session save;
	uint8_t *stage; /* resuming: bytes written so far (DMADEV_STREAM_MAX) */
	size_t stage_len;

	/* lock protects everything below; the thread sleeps on wake, waiters
	 * for it to park on idle. */
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	bool exiting, parked;
	enum vfio_device_mig_state state;
	struct dmadev_ident ident; /* the seed changes only when resuming */
	struct dmadev_run run;
	struct dmadev_pace pace;
	uint64_t throttle_ns; /* of the stall, the throttle's share; stays on this host */
};

/* dmadev_thread.c: start (0 or -EAGAIN), stop (joins), and the quiescing helpers. */
int dmadev_thread_start(struct uiommu_dmadev *d);
void dmadev_thread_stop(struct uiommu_dmadev *d);
/* Under lock: may the device DMA in this state? */
static inline bool dmadev_state_runs(enum vfio_device_mig_state s)
{
	return s == DMADEV_STATE_RUNNING || s == DMADEV_STATE_PRE_COPY;
}
/* Under lock: sets @state and, if it does not run, waits until the thread is parked. */
void dmadev_enter_state(struct uiommu_dmadev *d, enum vfio_device_mig_state state);

/* dmadev_setup.c: the iommufd set-up and its undo. */
int dmadev_iommu_setup(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg);
void dmadev_iommu_teardown(struct uiommu_dmadev *d);
/* The IOMMU in front of the device: @hw, or the default (x86, 4 KiB, dirty). */
void dmadev_hwdev_cfg(const struct uiommu_hwdev_cfg *hw, struct uiommu_hwdev_cfg *out);
/* A DMA write through the hwdev's DMA master (the IOMMU's page table). */
int dmadev_write_iommu(struct uiommu_dmadev *d, uint64_t gpa, const void *buf, uint64_t len);

/* dmadev_type1.c: the set-up behind a VFIO type1 container and its undo. */
int dmadev_type1_setup(struct uiommu_dmadev *d, const struct uiommu_dmadev_cfg *cfg);
void dmadev_type1_teardown(struct uiommu_dmadev *d);

/* dmadev_fsm.c: drops the sessions (destroy, reset). Under fsm_lock. */
void dmadev_sessions_drop(struct uiommu_dmadev *d);

#endif
