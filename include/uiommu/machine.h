/* SPDX-License-Identifier: MIT */
/*
 * A machine: what a migration moves and what `uiommu dirty` watches. A VM
 * (KVM or software vCPUs) whose guest RAM is also mapped, IOVA = GPA, into
 * the IOAS of an emulated passthrough DMA device, plus every dirty source of
 * the pair in one round:
 *  - the vCPU source: "kvm-log", "kvm-clear-log" or "kvm-ring" on KVM,
 *    "soft" with software vCPUs;
 *  - "iommu": the device's dirty bits, through HWPT_GET_DIRTY_BITMAP;
 *  - "vmm": writes the VMM itself makes to guest RAM (which no KVM log sees).
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
};

struct uiommu_machine {
	struct uiommu_machine_cfg cfg;
	struct uiommu_vm *vm;
	struct uiommu_dmadev *dev;                /* NULL without a device */
	struct uiommu_kvm_ring_link ring_link;
	struct uiommu_dirty_source *cpu, *iommu, *vmm;
	struct uiommu_round *round;               /* every source above */
	uint64_t npages;                          /* guest pages of RAM */
	bool tracking;
};

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

/* The VMM writes guest RAM: copies and reports the write to the vmm source. */
UIOMMU_EXPORT void uiommu_machine_vmm_write(struct uiommu_machine *m, uint64_t gpa,
					    const void *buf, uint64_t len);

UIOMMU_END_DECLS

#endif
