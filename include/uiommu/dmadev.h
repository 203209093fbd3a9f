/* SPDX-License-Identifier: MIT */
/*
 * An emulated passthrough DMA device: a device thread that writes guest
 * memory by DMA through the emulated IOMMU, with the VFIO migration v2 state
 * machine, so that it can be stopped, moved and resumed where it left off.
 *
 * Guest RAM is (host pointer, bytes) with guest physical address 0 at the
 * pointer; the device may write only its DMA region [dma_gpa, dma_gpa +
 * dma_bytes). It is set up as a VMM sets up a passthrough device, through
 * the iommufd front end of a context: IOAS_ALLOC; the device bound (behind
 * an x86 IOMMU that can track dirty pages); GET_HW_INFO must report
 * IOMMU_HW_CAP_DIRTY_TRACKING; HWPT_ALLOC with DIRTY_TRACKING on the IOAS;
 * attach; IOAS_MAP of all guest RAM at IOVA = GPA. Dirty tracking itself is
 * left to whoever harvests (the "iommu" dirty source) through
 * HWPT_SET_DIRTY_TRACKING and HWPT_GET_DIRTY_BITMAP on uiommu_dmadev_ctx()
 * and uiommu_dmadev_hwpt_id().
 *
 * Alternatively (cfg.vfio) the device is set up the way a VMM sets it up
 * with a VFIO type1 container: its group joins the container, the
 * container gets TYPE1v2 (when it has no type yet) and all guest RAM is
 * mapped with MAP_DMA at IOVA = GPA. Dirty tracking is then the
 * container's (VFIO_IOMMU_DIRTY_PAGES, the "vfio" source). Two kinds of
 * device exist there:
 *  - DMA: an IOMMU-backed group whose device DMAs through the IOMMU, as
 *    with iommufd. The kernel cannot see what it writes: while it is
 *    attached, type1 reports every mapped page dirty on every query (the
 *    all-dirty rule), unless the container has the IOMMU_DIRTY opt-in;
 *  - MDEV: an emulated (mdev-like) group: the device has no IOMMU and
 *    tracks nothing. It pins a working set, the first pin_pages pages of
 *    its region (its rings), through the container's pinning API at
 *    creation, writes those pages through the pins (host addresses, as a
 *    vendor driver does) and everything else with uiommu_vfio_dma_rw. Type1
 *    reports the pinned pages dirty in every query while they are pinned,
 *    and rw writes once. The pins go when the device goes, or when the
 *    mapping under them is unmapped (the container's unmap notifier).
 * The migration state, its stream and verification are the same for all.
 *
 * Layout of the DMA region: the network ring (2 KiB buffers) first, then the
 * block area (4 KiB pages). Patterns: "net" writes 1500-byte packets into
 * the ring buffers one after the other, wrapping; "block" writes 4-64 KiB at
 * random 4 KiB-aligned offsets of the block area; "mixed" does one block
 * write for seven packets on average; "idle" writes nothing. A rate (bytes
 * per second, 0 = as fast as possible) is enforced by a token bucket.
 *
 * Content is self-checking. Every packet and every 4 KiB page of a block
 * write is a record: a header (magic, kind, device sequence number, length,
 * the record's index in its pattern, a checksum of the header keyed by the
 * device's seed) followed by a payload that is a pure function of the
 * header. Placement is a pure function of (seed, index) too, so
 * uiommu_dmadev_verify() can recompute, from the device state alone, what
 * every byte of the DMA region must hold: the last packet sent to each ring
 * buffer, the last block record written to each page, zeros where the device
 * never wrote. It needs the region to have been zero before the device first
 * wrote it (fresh anonymous or memfd memory is), and nothing but the device
 * to write the region.
 *
 * States (enum vfio_device_mig_state of <linux/vfio.h>): RUNNING, STOP,
 * PRE_COPY, STOP_COPY, RESUMING and ERROR; the P2P states are not supported.
 * A new device is RUNNING. Only RUNNING and PRE_COPY do DMA: every other
 * state is quiesced, with no DMA in flight when the transition returns.
 *
 * Threads: every call may come from any thread; state transitions and the
 * migration data calls are serialized by the device.
 */
#ifndef UIOMMU_DMADEV_H
#define UIOMMU_DMADEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

#include <uiommu/compiler.h>
#include <uiommu/iommufd.h>

UIOMMU_BEGIN_DECLS

/*
 * The PRE_COPY states of the kernel's enum vfio_device_mig_state (Linux 6.2),
 * with the kernel's values, which Debian 12's <linux/vfio.h> lacks.
 */
#define UIOMMU_VFIO_STATE_PRE_COPY ((enum vfio_device_mig_state)6)
#define UIOMMU_VFIO_STATE_PRE_COPY_P2P ((enum vfio_device_mig_state)7)

#define UIOMMU_DMADEV_PAGE_SIZE 4096ull
#define UIOMMU_DMADEV_SLOT_BYTES 2048ull   /* a ring buffer */
#define UIOMMU_DMADEV_PACKET_BYTES 1500ull /* a packet, header included */
#define UIOMMU_DMADEV_BLOCK_MIN 4096ull
#define UIOMMU_DMADEV_BLOCK_MAX 65536ull
/* Smallest DMA region: one ring page and one largest block write. */
#define UIOMMU_DMADEV_MIN_DMA_BYTES (UIOMMU_DMADEV_PAGE_SIZE + UIOMMU_DMADEV_BLOCK_MAX)
/* Highest rate accepted (1 TB/s); 0 means as fast as possible. */
#define UIOMMU_DMADEV_MAX_RATE 1000000000000ull

struct uiommu_dmadev;

enum uiommu_dmadev_pattern {
	UIOMMU_DMADEV_IDLE = 0,
	UIOMMU_DMADEV_NET = 1,
	UIOMMU_DMADEV_BLOCK = 2,
	UIOMMU_DMADEV_MIXED = 3,
};

struct uiommu_dmadev_workload {
	enum uiommu_dmadev_pattern pattern;
	uint64_t rate_bytes_per_sec; /* 0: as fast as possible */
};

enum uiommu_dmadev_kind {
	UIOMMU_DMADEV_KIND_DMA = 0,  /* behind an IOMMU: DMA through its page table */
	UIOMMU_DMADEV_KIND_MDEV = 1, /* no IOMMU: pins its working set (needs cfg.vfio) */
};

/* Pages an MDEV device pins when cfg.pin_pages is 0 (1 MiB: its rings). */
#define UIOMMU_DMADEV_PIN_DEFAULT 256u

struct uiommu_vfio_container;

struct uiommu_dmadev_cfg {
	void *mem;          /* guest RAM: GPA 0 here; page aligned */
	uint64_t mem_bytes; /* multiple of 4 KiB */
	uint64_t dma_gpa;   /* DMA region: 4 KiB aligned, inside guest RAM */
	uint64_t dma_bytes; /* multiple of 4 KiB, >= UIOMMU_DMADEV_MIN_DMA_BYTES */
	/* Bytes of the network ring at the start of the region: a multiple of
	 * 4 KiB that leaves >= 64 KiB for the block area; 0 means a quarter of
	 * the region (rounded down to 4 KiB, at least 4 KiB). */
	uint64_t ring_bytes;
	struct uiommu_dmadev_workload workload; /* what the device does at first */
	/* Keys the record checksums and chooses block placement; travels with
	 * the device state. 0 picks one from the clock. */
	uint64_t seed;
	/* The iommufd context to set up in (a reference is taken), or NULL for
	 * a context of the device's own. */
	struct uiommu_ctx *ctx;
	/* The IOMMU in front of the device, or NULL for the default: x86
	 * format, 4 KiB pages only (so dirty reports are exact to the page), no
	 * reserved region, dirty tracking. name is ignored. */
	const struct uiommu_hwdev_cfg *hw;
	/* Set up behind this VFIO type1 container instead of iommufd (ctx is
	 * then ignored): the container is the caller's and outlives the
	 * device; it must hold no mapping of guest RAM yet. */
	struct uiommu_vfio_container *vfio;
	enum uiommu_dmadev_kind kind;
	/* MDEV: pages pinned from the start of the DMA region; 0 means
	 * UIOMMU_DMADEV_PIN_DEFAULT (capped at the region). */
	uint64_t pin_pages;
};

/**
 * uiommu_dmadev_create() - Set the device up through the iommufd front end.
 * @cfg: copied; @cfg->mem must stay mapped until destroy
 * @out: the device, RUNNING with @cfg->workload
 *
 * Return: 0; -EINVAL (bad geometry or workload; MDEV without a container;
 * more pins than the region has pages); -EOPNOTSUPP (the IOMMU cannot
 * track dirty pages); any error of the set-up ioctls (e.g. -EFAULT when guest
 * RAM is not mapped, -EINVAL when a reserved region of @cfg->hw meets guest
 * RAM); -ENOMEM; -EAGAIN (no thread). On error everything done is
 * undone: the context holds no object of the device.
 */
UIOMMU_EXPORT int uiommu_dmadev_create(const struct uiommu_dmadev_cfg *cfg,
				       struct uiommu_dmadev **out);
/* Stops the thread and undoes the whole set-up. NULL-safe; cannot fail. */
UIOMMU_EXPORT void uiommu_dmadev_destroy(struct uiommu_dmadev *dev);

/* What the "iommu" dirty source needs: the context and the dirty-tracking HWPT
 * (NULL and 0 for a device set up behind a type1 container). */
UIOMMU_EXPORT struct uiommu_ctx *uiommu_dmadev_ctx(struct uiommu_dmadev *dev);
UIOMMU_EXPORT uint32_t uiommu_dmadev_hwpt_id(struct uiommu_dmadev *dev);
UIOMMU_EXPORT uint32_t uiommu_dmadev_ioas_id(struct uiommu_dmadev *dev);
UIOMMU_EXPORT uint32_t uiommu_dmadev_dev_id(struct uiommu_dmadev *dev);
UIOMMU_EXPORT struct uiommu_hwdev *uiommu_dmadev_hwdev(struct uiommu_dmadev *dev);
/* MDEV: [gpa, gpa + pages * 4 KiB) is the pinned working set; 0 pages otherwise. */
UIOMMU_EXPORT void uiommu_dmadev_pinned(struct uiommu_dmadev *dev, uint64_t *gpa,
					uint64_t *pages);

/* [gpa, gpa + bytes) of the network ring and of the block area. */
struct uiommu_dmadev_layout {
	uint64_t ring_gpa, ring_bytes;
	uint64_t block_gpa, block_bytes;
};
UIOMMU_EXPORT void uiommu_dmadev_layout(struct uiommu_dmadev *dev,
					struct uiommu_dmadev_layout *layout);

/* ---- workload ---- */

/*
 * Pattern and rate from the next write on, in any state (they are part of
 * the device state that migrates). 0, or -EINVAL (unknown pattern, rate above
 * UIOMMU_DMADEV_MAX_RATE).
 */
UIOMMU_EXPORT int uiommu_dmadev_set_workload(struct uiommu_dmadev *dev,
					     const struct uiommu_dmadev_workload *wl);

/*
 * Throttle for migration convergence: the device writes (1 - @fraction) of
 * what it would: its rate times (1 - @fraction), or, at unlimited rate, it
 * is held back @fraction of the time. Kept in millionths. 0, or -EINVAL
 * unless 0 <= @fraction < 1.
 */
UIOMMU_EXPORT int uiommu_dmadev_set_throttle(struct uiommu_dmadev *dev, double fraction);

struct uiommu_dmadev_stats {
	uint64_t writes;   /* completed DMA writes == the next sequence number */
	uint64_t bytes;    /* bytes they wrote */
	uint64_t pages;    /* sum over the writes of the 4 KiB guest pages each touched */
	uint64_t stall_ns; /* time held back: rate limit, throttle, 1 ms after a fault */
	uint64_t throttle_ns; /* of that, the throttle's share (not migrated) */
	uint64_t faults;   /* DMA writes that faulted (nothing written; retried) */
};
/* Counters since creation; they migrate with the device. */
UIOMMU_EXPORT void uiommu_dmadev_get_stats(struct uiommu_dmadev *dev,
					   struct uiommu_dmadev_stats *stats);

/*
 * The device's own log of the guest pages it wrote: bit k = GPA page k, over
 * all of guest RAM, into @bits (uiommu_bitmap_words(mem_bytes / 4096) words,
 * overwritten), taken and cleared atomically a word at a time. A page's bit
 * is set after its DMA write completed. Returns the number of bits set.
 */
UIOMMU_EXPORT uint64_t uiommu_dmadev_take_log(struct uiommu_dmadev *dev, uint64_t *bits);

/* ---- migration (VFIO migration v2) ---- */

/**
 * uiommu_dmadev_set_state() - VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, SET.
 * @state: the target; combination transitions go through the intermediate
 *         states the kernel's vfio_mig_get_next_state() would choose (shortest
 *         path, PRE_COPY and STOP_COPY never interior)
 *
 * Arcs: RUNNING <-> STOP (quiesce / resume DMA); RUNNING -> PRE_COPY (opens a
 * saving session: the device keeps running, the initial data can be read);
 * PRE_COPY -> STOP_COPY and STOP -> STOP_COPY (quiesce; the rest of the
 * device state can be read); PRE_COPY -> RUNNING and STOP_COPY -> STOP (end
 * the session); STOP -> RESUMING (opens a resuming session); RESUMING ->
 * STOP (incorporates what was written: nothing, or a complete stream).
 * Return: 0 (also when @state is the current state); -EINVAL with no change
 * when @state is ERROR, a P2P state or unknown, when the arc is not allowed
 * (STOP_COPY -> PRE_COPY) or when the device is in ERROR; the error of a
 * failed arc (-ENOMEM; -EINVAL when RESUMING ends with an incomplete stream),
 * after which the device is in ERROR, quiesced.
 */
UIOMMU_EXPORT int uiommu_dmadev_set_state(struct uiommu_dmadev *dev,
					  enum vfio_device_mig_state state);
UIOMMU_EXPORT enum vfio_device_mig_state uiommu_dmadev_get_state(struct uiommu_dmadev *dev);

/*
 * VFIO_DEVICE_RESET: back to RUNNING from any state (the way out of ERROR);
 * sessions are dropped. The device keeps its sequence, position, seed,
 * workload and counters, so that its records stay verifiable. Cannot fail.
 */
UIOMMU_EXPORT void uiommu_dmadev_reset(struct uiommu_dmadev *dev);

/*
 * VFIO_MIG_GET_PRECOPY_INFO: in PRE_COPY, the initial bytes not read yet and
 * the dirty bytes (always 0: the device streams its running state only in
 * STOP_COPY). 0, or -EINVAL in any other state.
 */
UIOMMU_EXPORT int uiommu_dmadev_precopy_info(struct uiommu_dmadev *dev, uint64_t *initial_bytes,
					     uint64_t *dirty_bytes);

/*
 * read() on the saving session's data fd: up to @cap bytes into @buf, *@len
 * = bytes read. PRE_COPY: the initial data, then -ENOMSG (temporary end of
 * stream). STOP_COPY: the rest of the stream, then 0 bytes (end of stream).
 * -EINVAL in other states.
 */
UIOMMU_EXPORT int uiommu_dmadev_mig_read(struct uiommu_dmadev *dev, void *buf, size_t cap,
					 size_t *len);

/*
 * write() on the resuming session's data fd, in RESUMING: bytes of a stream
 * in any segmentation. Every section is validated as soon as it is complete
 * (its header as soon as that is): a malformed or incompatible one is -EINVAL
 * and the whole call is dropped, as if it had not been made. -EINVAL in other
 * states.
 */
UIOMMU_EXPORT int uiommu_dmadev_mig_write(struct uiommu_dmadev *dev, const void *buf, size_t len);

/*
 * Whole-blob shorthands. save, in STOP_COPY: the rest of the stream in a new
 * buffer (free() it). load, in RESUMING: as mig_write, but the stream must be
 * complete after it, else -EINVAL and nothing changed.
 */
UIOMMU_EXPORT int uiommu_dmadev_save(struct uiommu_dmadev *dev, void **blob, uint64_t *len);
UIOMMU_EXPORT int uiommu_dmadev_load(struct uiommu_dmadev *dev, const void *blob, uint64_t len);

/* ---- verification ---- */

struct uiommu_dmadev_verify {
	uint64_t records;       /* intact records found where the device's history puts them */
	uint64_t bad;           /* ring buffers and pages that do not hold what it last wrote */
	uint64_t first_bad_gpa; /* start of the first bad buffer or page; UINT64_MAX if none */
};

/**
 * uiommu_dmadev_verify() - Check every byte of the DMA region.
 *
 * Guarantees, for a device whose region was zero before it first wrote it:
 * each ring buffer holds exactly the last packet the device sent to it (an
 * intact record of this device whose index is the one the packet count puts
 * there) and zeros after it, or only zeros if no packet went there; each page
 * of the block area holds exactly the record of the last block write that
 * covered it (replayed from the seed), or only zeros. So a torn record, a
 * stale buffer or page (one that missed the device's last write to it), a
 * record of another device and any corrupted byte are all counted in @bad.
 * Return: 0 with @res filled; -EBUSY while the device can DMA (RUNNING,
 * PRE_COPY); -ENOMEM.
 */
UIOMMU_EXPORT int uiommu_dmadev_verify(struct uiommu_dmadev *dev,
				       struct uiommu_dmadev_verify *res);

UIOMMU_END_DECLS

#endif
