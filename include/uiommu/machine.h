/* SPDX-License-Identifier: MIT */
/*
 * A machine: what a migration moves and what `uiommu dirty` watches. A VM
 * (KVM or software vCPUs) whose guest RAM is also mapped, IOVA = GPA, into
 * the IOAS of an emulated passthrough DMA device, plus every dirty source of
 * the pair in one round:
 *  - the vCPU source: "kvm-log", "kvm-clear-log" or "kvm-ring" on KVM,
 *    "soft" with software vCPUs;
 *  - the device's source: "iommu", its dirty bits through
 *    HWPT_GET_DIRTY_BITMAP, when the device is set up through iommufd (the
 *    default); or "vfio", VFIO_IOMMU_DIRTY_PAGES GET_BITMAP, when it is set
 *    up behind a VFIO type1 container (iommu = VFIO_TYPE1);
 *  - "vmm": writes the VMM itself makes to guest RAM (which no KVM log sees).
 *
 * With a type1 container the "vfio" source says what the kernel's type1
 * would say, not what was written: a DMA device (IOMMU-backed, not in
 * pinned scope) makes it report every mapped page, i.e. all guest RAM, in
 * every round (the all-dirty rule) unless type1_iommu_dirty turns on the
 * UIOMMU_VFIO_OPT_IOMMU_DIRTY opt-in; an MDEV device (pins its working set)
 * makes it report the pinned pages in every round while they are pinned.
 * uiommu_machine_pinned_pages() and uiommu_machine_all_dirty() tell a
 * migration what it will have to resend whatever the guest does.
 */
#ifndef UIOMMU_MACHINE_H
#define UIOMMU_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uiommu/compiler.h>
#include <uiommu/dirty_source.h>
#include <uiommu/dmadev.h>
#include <uiommu/vm.h>
#include <uiommu/vm_sources.h>

UIOMMU_BEGIN_DECLS

/* How the passthrough device is set up, and so which source tracks it. */
enum uiommu_machine_iommu {
	UIOMMU_MACHINE_IOMMUFD = 0,    /* IOAS + DIRTY_TRACKING HWPT: the "iommu" source */
	UIOMMU_MACHINE_VFIO_TYPE1 = 1, /* type1 container, MAP_DMA: the "vfio" source */
};

struct uiommu_vfio_container;

struct uiommu_machine_cfg {
	uint64_t mem_bytes;  /* guest RAM, multiple of 2 MiB */
	uint64_t dma_bytes;  /* the device's region at the top of RAM; 0: no device */
	unsigned int nr_vcpus;
	enum uiommu_vm_backend backend;
	const char *cpu_source;     /* kvm-log (default), kvm-clear-log, kvm-ring; soft: ignored */
	uint32_t ring_entries;      /* kvm-ring: entries per vCPU ring (default 4096) */
	uint64_t clear_chunk_pages; /* kvm-clear-log: 0 = the source's default */
	bool incoming;              /* receiver: VM waits for restore, device for RESUMING;
				     * its memory is faulted in at creation */
	uint64_t seed;              /* device seed (travels with its state) */
	struct uiommu_dmadev_workload dma; /* the device's workload once running */
	enum uiommu_machine_iommu iommu;    /* default IOMMUFD */
	bool type1_iommu_dirty;     /* VFIO_TYPE1: the IOMMU_DIRTY opt-in (no all-dirty rule) */
	enum uiommu_dmadev_kind device_kind; /* MDEV needs VFIO_TYPE1 */
	uint64_t pin_pages;         /* MDEV: working set; 0 = UIOMMU_DMADEV_PIN_DEFAULT */
};

struct uiommu_machine {
	struct uiommu_machine_cfg cfg;
	struct uiommu_vm *vm;
	struct uiommu_dmadev *dev;                /* NULL without a device */
	struct uiommu_kvm_ring_link ring_link;
	struct uiommu_vfio_container *vfio;       /* VFIO_TYPE1 only */
	struct uiommu_dirty_source *cpu, *iommu, *vmm; /* iommu: "iommu" or "vfio" */
	struct uiommu_round *round;               /* every source above */
	uint64_t npages;                          /* guest pages of RAM */
	bool tracking;
};

/* 0; -EINVAL (no memory or vCPUs; MDEV or type1_iommu_dirty without
 * VFIO_TYPE1; unknown iommu or kind); the errors of what it sets up. */
UIOMMU_EXPORT int uiommu_machine_create(const struct uiommu_machine_cfg *cfg,
					struct uiommu_machine **out);
UIOMMU_EXPORT void uiommu_machine_destroy(struct uiommu_machine *m);

/* Starts every source (the vCPU one last, so nothing falls between). */
UIOMMU_EXPORT int uiommu_machine_track_start(struct uiommu_machine *m);
UIOMMU_EXPORT void uiommu_machine_track_stop(struct uiommu_machine *m);

/* Starts (or switches) the guest workload and lets the device run. */
UIOMMU_EXPORT int uiommu_machine_run(struct uiommu_machine *m, const struct uiommu_workload *wl);
/* vCPUs parked and the device in STOP (no DMA in flight); resume undoes it. */
UIOMMU_EXPORT int uiommu_machine_pause(struct uiommu_machine *m);
UIOMMU_EXPORT int uiommu_machine_resume(struct uiommu_machine *m);
UIOMMU_EXPORT int uiommu_machine_set_throttle(struct uiommu_machine *m, double fraction);

/*
 * Pages the type1 container reports dirty in every round because they are
 * pinned (the device's working set): a migration resends them every round
 * and once more at stop-copy. 0 without a type1 container.
 */
UIOMMU_EXPORT uint64_t uiommu_machine_pinned_pages(struct uiommu_machine *m);
/* Does type1's all-dirty rule apply (every mapped page dirty in every round)? */
UIOMMU_EXPORT bool uiommu_machine_all_dirty(const struct uiommu_machine *m);

/* The VMM writes guest RAM: copies and reports the write to the vmm source. */
UIOMMU_EXPORT void uiommu_machine_vmm_write(struct uiommu_machine *m, uint64_t gpa,
					    const void *buf, uint64_t len);

UIOMMU_END_DECLS

#endif
