/* SPDX-License-Identifier: MIT */
/*
 * The machine the vm layer's fuzz targets (fuzz_vmstate, fuzz_dmadev_state)
 * parse state for, shared with their corpus generator (gen_vm_corpus): a
 * blob or a device stream only reaches the interesting checks when its
 * header names the receiver's geometry, so the seeds must be saved from a
 * machine shaped exactly like the one the targets restore into.
 */
#ifndef UIOMMU_FUZZ_VM_H
#define UIOMMU_FUZZ_VM_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <uiommu/dmadev.h>
#include <uiommu/vm.h>

/* The VM: system area, 2 MiB of work pages split between two vCPUs, DMA region. */
#define FUZZ_VM_MEM (6ull << 20)
#define FUZZ_VM_DMA (2ull << 20)
#define FUZZ_VM_VCPUS 2u

/* The DMA device: a small guest whose DMA region holds a 32 KiB ring and 24 block pages. */
#define FUZZ_DEV_MEM (256ull << 10)
#define FUZZ_DEV_DMA_GPA (64ull << 10)
#define FUZZ_DEV_DMA_BYTES (128ull << 10)
#define FUZZ_DEV_SEED 0xf022f022ull

static inline struct uiommu_vm_cfg fuzz_vm_cfg(enum uiommu_vm_backend backend, bool incoming)
{
	return (struct uiommu_vm_cfg){.mem_bytes = FUZZ_VM_MEM,
				      .dma_bytes = FUZZ_VM_DMA,
				      .nr_vcpus = FUZZ_VM_VCPUS,
				      .backend = backend,
				      .incoming = incoming};
}

static inline struct uiommu_dmadev_cfg fuzz_dev_cfg(void *mem, enum uiommu_dmadev_pattern p)
{
	return (struct uiommu_dmadev_cfg){.mem = mem,
					  .mem_bytes = FUZZ_DEV_MEM,
					  .dma_gpa = FUZZ_DEV_DMA_GPA,
					  .dma_bytes = FUZZ_DEV_DMA_BYTES,
					  .workload = {.pattern = p},
					  .seed = FUZZ_DEV_SEED};
}

/* The targets' oracle: a violated property aborts, which libFuzzer and replay report. */
static inline void fuzz_oracle(bool ok, const char *file, const char *expr, int line)
{
	if (!ok) {
		fprintf(stderr, "%s:%d: oracle failed: %s\n", file, line, expr);
		abort();
	}
}

#define ORACLE(cond) fuzz_oracle(!!(cond), __FILE__, #cond, __LINE__)

#endif
