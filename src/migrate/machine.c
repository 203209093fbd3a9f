// SPDX-License-Identifier: MIT
/*
 * A machine: a VM, its DMA device and their dirty sources, put together the
 * way a VMM does it.
 *
 * Order matters at creation: the vmm log (and, with software vCPUs, the soft
 * log) exist before the VM, because the VM reports its own writes to them
 * from its first one; KVM's ring link exists before the VM, because the VM's
 * ring_full callback points at it; the KVM source is created after the VM,
 * from the slot and rings the VM exposes; the device goes last, over the
 * VM's memory, and its source over the device's HWPT ("iommu") or, with
 * a type1 container, over the container ("vfio"). The container is the
 * machine's (the VMM's): created before the device, whose group joins it,
 * destroyed after the device left it.
 *
 * Tracking starts with the vmm and iommu sources and ends with the vCPU
 * source; stopping runs in reverse. A page written between two starts is
 * then either reported by a source already started or written before
 * tracking began, which the first full pass of a migration covers anyway.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <uiommu/machine.h>
#include <uiommu/vfio_type1.h>

#include "core/core_internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; glibc 2.36 headers lack it */
#endif

static void vmm_log_write(void *opaque, uint64_t gpa, uint64_t len)
{
	uiommu_dirty_log_mark(opaque, gpa, len);
}

static const char *cpu_source_name(const struct uiommu_machine_cfg *cfg)
{
	if (cfg->backend == UIOMMU_VM_SOFT)
		return "soft";
	return cfg->cpu_source ? cfg->cpu_source : "kvm-log";
}

static int create_logs(struct uiommu_machine *m)
{
	int ret = uiommu_dirty_log_source_create("vmm", m->npages, &m->vmm);

	if (!ret && m->cfg.backend == UIOMMU_VM_SOFT)
		ret = uiommu_dirty_log_source_create("soft", m->npages, &m->cpu);
	return ret;
}

static int create_vm(struct uiommu_machine *m)
{
	const char *src = cpu_source_name(&m->cfg);
	struct uiommu_vm_cfg vc = {
		.mem_bytes = m->cfg.mem_bytes,
		.dma_bytes = m->cfg.dma_bytes,
		.nr_vcpus = m->cfg.nr_vcpus,
		.backend = m->cfg.backend,
		.incoming = m->cfg.incoming,
		.manual_protect = !strcmp(src, "kvm-clear-log"),
		.vmm_write = vmm_log_write,
		.vmm_write_opaque = m->vmm,
	};

	if (!strcmp(src, "kvm-ring")) {
		vc.dirty_ring_entries = m->cfg.ring_entries ? m->cfg.ring_entries : 4096;
		vc.ring_full = uiommu_kvm_ring_full;
		vc.ring_full_opaque = &m->ring_link;
	}
	if (m->cfg.backend == UIOMMU_VM_SOFT) {
		vc.soft_write = vmm_log_write;
		vc.soft_write_opaque = m->cpu;
	}
	return uiommu_vm_create(&vc, &m->vm);
}

/*
 * An incoming machine faults its memory in at creation, as a destination
 * VMM does while it waits for the source: a first touch costs about 1 us a
 * page here (shmem allocation and zeroing), several times what receiving
 * the page costs, and inside a migration it would be paid on the critical
 * path. Best effort: without MADV_POPULATE_WRITE (kernels before 5.14) the
 * pages are faulted in as they arrive.
 */
static void populate_incoming(struct uiommu_machine *m)
{
	if (m->cfg.incoming)
		madvise(uiommu_vm_mem(m->vm), uiommu_vm_mem_bytes(m->vm), MADV_POPULATE_WRITE);
}

static int create_cpu_source(struct uiommu_machine *m)
{
	struct uiommu_vm_kvm_info info;
	struct uiommu_vm_source_cfg sc = {
		.npages = m->npages,
		.kvm = &info,
		.clear_chunk_pages = m->cfg.clear_chunk_pages,
		.ring_link = &m->ring_link,
	};
	int ret;

	if (m->cfg.backend == UIOMMU_VM_SOFT)
		return 0;
	ret = uiommu_vm_kvm_info(m->vm, &info);
	if (ret)
		return ret;
	return uiommu_vm_source_create(cpu_source_name(&m->cfg), &sc, &m->cpu);
}

static bool type1(const struct uiommu_machine *m)
{
	return m->cfg.iommu == UIOMMU_MACHINE_VFIO_TYPE1;
}

static int check_cfg(const struct uiommu_machine_cfg *cfg)
{
	bool t1 = cfg->iommu == UIOMMU_MACHINE_VFIO_TYPE1;

	if (!cfg->mem_bytes || !cfg->nr_vcpus)
		return -EINVAL;
	if ((unsigned int)cfg->iommu > UIOMMU_MACHINE_VFIO_TYPE1 ||
	    (unsigned int)cfg->device_kind > UIOMMU_DMADEV_KIND_MDEV)
		return -EINVAL;
	if (!t1 && (cfg->type1_iommu_dirty || cfg->device_kind == UIOMMU_DMADEV_KIND_MDEV))
		return -EINVAL;
	return 0;
}

/* The device's dirty source: its HWPT's bits, or the container's bitmap. */
static int create_device_source(struct uiommu_machine *m)
{
	int ret = 0;

	if (!type1(m))
		return uiommu_iommu_source_create(uiommu_dmadev_ctx(m->dev),
						  uiommu_dmadev_hwpt_id(m->dev), m->npages,
						  &m->iommu);
	if (m->cfg.type1_iommu_dirty)
		ret = uiommu_vfio_set_options(m->vfio, UIOMMU_VFIO_OPT_IOMMU_DIRTY);
	return ret ? ret : uiommu_vfio_source_create(m->vfio, m->npages, &m->iommu);
}

static int create_device(struct uiommu_machine *m)
{
	struct uiommu_dmadev_cfg dc = {
		.mem = uiommu_vm_mem(m->vm),
		.mem_bytes = m->cfg.mem_bytes,
		.workload = { .pattern = UIOMMU_DMADEV_IDLE },
		.seed = m->cfg.seed,
		.kind = m->cfg.device_kind,
		.pin_pages = m->cfg.pin_pages,
	};
	int ret;

	if (!m->cfg.dma_bytes)
		return 0;
	if (type1(m)) {
		ret = uiommu_vfio_container_create(&m->vfio);
		if (ret)
			return ret;
		dc.vfio = m->vfio;
	}
	uiommu_vm_dma_region(m->vm, &dc.dma_gpa, &dc.dma_bytes);
	ret = uiommu_dmadev_create(&dc, &m->dev);
	if (!ret && m->cfg.incoming)
		ret = uiommu_dmadev_set_state(m->dev, VFIO_DEVICE_STATE_RESUMING);
	if (!ret)
		ret = create_device_source(m);
	return ret;
}

static int build_round(struct uiommu_machine *m)
{
	struct uiommu_dirty_source *srcs[] = { m->cpu, m->iommu, m->vmm };
	int ret = uiommu_round_create(m->npages, &m->round);

	for (size_t i = 0; !ret && i < sizeof(srcs) / sizeof(srcs[0]); i++)
		if (srcs[i])
			ret = uiommu_round_add_source(m->round, srcs[i]);
	return ret;
}

UIOMMU_EXPORT int uiommu_machine_create(const struct uiommu_machine_cfg *cfg,
					struct uiommu_machine **out)
{
	struct uiommu_machine *m;
	int ret;

	if (check_cfg(cfg))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->npages = cfg->mem_bytes / UIOMMU_VM_PAGE_SIZE;
	ret = create_logs(m);
	if (!ret)
		ret = create_vm(m);
	if (!ret)
		populate_incoming(m);
	if (!ret)
		ret = create_cpu_source(m);
	if (!ret)
		ret = create_device(m);
	if (!ret)
		ret = build_round(m);
	if (ret) {
		uiommu_machine_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

UIOMMU_EXPORT void uiommu_machine_destroy(struct uiommu_machine *m)
{
	if (!m)
		return;
	uiommu_machine_track_stop(m);
	if (m->vm)
		uiommu_vm_stop(m->vm);
	uiommu_round_destroy(m->round);
	if (m->iommu)
		uiommu_dirty_source_destroy(m->iommu);
	uiommu_dmadev_destroy(m->dev);
	/* After the device: its group leaves the container as it goes. */
	uiommu_vfio_container_destroy(m->vfio);
	if (m->cpu && m->cfg.backend != UIOMMU_VM_SOFT)
		uiommu_dirty_source_destroy(m->cpu);
	uiommu_vm_destroy(m->vm);
	/* The logs go after the VM: it reports writes to them until it is gone. */
	if (m->cpu && m->cfg.backend == UIOMMU_VM_SOFT)
		uiommu_dirty_source_destroy(m->cpu);
	if (m->vmm)
		uiommu_dirty_source_destroy(m->vmm);
	free(m);
}

UIOMMU_EXPORT int uiommu_machine_track_start(struct uiommu_machine *m)
{
	struct uiommu_dirty_source *order[] = { m->vmm, m->iommu, m->cpu };
	size_t i;
	int ret = 0;

	if (m->tracking)
		return 0;
	for (i = 0; !ret && i < sizeof(order) / sizeof(order[0]); i++)
		if (order[i])
			ret = uiommu_dirty_source_start(order[i]);
	if (ret) {
		while (i-- > 0)
			if (order[i])
				uiommu_dirty_source_stop(order[i]);
		return ret;
	}
	m->tracking = true;
	return 0;
}

UIOMMU_EXPORT void uiommu_machine_track_stop(struct uiommu_machine *m)
{
	struct uiommu_dirty_source *order[] = { m->cpu, m->iommu, m->vmm };

	if (!m->tracking)
		return;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (order[i])
			uiommu_dirty_source_stop(order[i]);
	m->tracking = false;
}

UIOMMU_EXPORT int uiommu_machine_run(struct uiommu_machine *m, const struct uiommu_workload *wl)
{
	int ret = uiommu_vm_start(m->vm, wl);

	if (!ret && m->dev)
		ret = uiommu_dmadev_set_workload(m->dev, &m->cfg.dma);
	return ret;
}

UIOMMU_EXPORT int uiommu_machine_pause(struct uiommu_machine *m)
{
	int ret = uiommu_vm_pause(m->vm);

	if (!ret && m->dev && (ret = uiommu_dmadev_set_state(m->dev, VFIO_DEVICE_STATE_STOP)))
		uiommu_vm_resume(m->vm);
	return ret;
}

UIOMMU_EXPORT int uiommu_machine_resume(struct uiommu_machine *m)
{
	int ret = m->dev ? uiommu_dmadev_set_state(m->dev, VFIO_DEVICE_STATE_RUNNING) : 0;

	return ret ? ret : uiommu_vm_resume(m->vm);
}

UIOMMU_EXPORT int uiommu_machine_set_throttle(struct uiommu_machine *m, double fraction)
{
	int ret = uiommu_vm_set_throttle(m->vm, fraction);

	if (!ret && m->dev)
		ret = uiommu_dmadev_set_throttle(m->dev, fraction);
	return ret;
}

UIOMMU_EXPORT uint64_t uiommu_machine_pinned_pages(struct uiommu_machine *m)
{
	uint64_t pages = 0;

	/* The container's count, not the device's: it is what GET_BITMAP obeys. */
	if (m->vfio && uiommu_vfio_count_pinned(m->vfio, 0, m->cfg.mem_bytes, &pages))
		return 0;
	return pages;
}

UIOMMU_EXPORT bool uiommu_machine_all_dirty(const struct uiommu_machine *m)
{
	return type1(m) && m->dev && m->cfg.device_kind == UIOMMU_DMADEV_KIND_DMA &&
	       !m->cfg.type1_iommu_dirty;
}

UIOMMU_EXPORT void uiommu_machine_vmm_write(struct uiommu_machine *m, uint64_t gpa,
					    const void *buf, uint64_t len)
{
	memcpy((char *)uiommu_vm_mem(m->vm) + gpa, buf, len);
	uiommu_dirty_log_mark(m->vmm, gpa, len);
}
