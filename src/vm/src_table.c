// SPDX-License-Identifier: MIT
/*
 * Dirty sources by name: the table behind --dirty-source=NAME, in the manner
 * of the KVM selftests' log modes. Each entry says whether it can be made
 * from a configuration (supported) and makes it (create); the KVM entries
 * follow the VM's dirty-tracking mode (a VM has either a dirty ring, or a
 * bitmap with or without manual protect), so exactly one KVM source is
 * supported for a given VM. Also the glue that lets the VM's write callbacks
 * (vmm_write, soft_write) feed a software log.
 */
#include <errno.h>
#include <string.h>

#include <uiommu/vm_sources.h>

#include "core/core_internal.h"

struct source_entry {
	const char *name;
	bool (*supported)(const struct uiommu_vm_source_cfg *cfg);
	int (*create)(const struct uiommu_vm_source_cfg *cfg, struct uiommu_dirty_source **out);
};

static bool kvm_log_supported(const struct uiommu_vm_source_cfg *cfg)
{
	return cfg->kvm && !cfg->kvm->ring_entries && !cfg->kvm->manual_protect;
}

static bool kvm_clear_supported(const struct uiommu_vm_source_cfg *cfg)
{
	return cfg->kvm && !cfg->kvm->ring_entries && cfg->kvm->manual_protect;
}

static bool kvm_ring_supported(const struct uiommu_vm_source_cfg *cfg)
{
	return cfg->kvm && cfg->kvm->ring_entries && cfg->ring_link;
}

static bool iommu_supported(const struct uiommu_vm_source_cfg *cfg)
{
	return cfg->ctx && cfg->hwpt_id && cfg->npages;
}

static bool log_supported(const struct uiommu_vm_source_cfg *cfg)
{
	return cfg->npages;
}

static int kvm_log_create(const struct uiommu_vm_source_cfg *cfg, struct uiommu_dirty_source **out)
{
	return uiommu_kvm_log_source_create(cfg->kvm, out);
}

static int kvm_clear_create(const struct uiommu_vm_source_cfg *cfg,
			    struct uiommu_dirty_source **out)
{
	return uiommu_kvm_clear_log_source_create(cfg->kvm, cfg->clear_chunk_pages, out);
}

static int kvm_ring_create(const struct uiommu_vm_source_cfg *cfg, struct uiommu_dirty_source **out)
{
	return uiommu_kvm_ring_source_create(cfg->kvm, cfg->ring_link, out);
}

static int iommu_create(const struct uiommu_vm_source_cfg *cfg, struct uiommu_dirty_source **out)
{
	return uiommu_iommu_source_create(cfg->ctx, cfg->hwpt_id, cfg->npages, out);
}

static int vmm_create(const struct uiommu_vm_source_cfg *cfg, struct uiommu_dirty_source **out)
{
	return uiommu_dirty_log_source_create("vmm", cfg->npages, out);
}

static int soft_create(const struct uiommu_vm_source_cfg *cfg, struct uiommu_dirty_source **out)
{
	return uiommu_dirty_log_source_create("soft", cfg->npages, out);
}

static const struct source_entry sources[] = {
	{ "kvm-log", kvm_log_supported, kvm_log_create },
	{ "kvm-clear-log", kvm_clear_supported, kvm_clear_create },
	{ "kvm-ring", kvm_ring_supported, kvm_ring_create },
	{ "iommu", iommu_supported, iommu_create },
	{ "vmm", log_supported, vmm_create },
	{ "soft", log_supported, soft_create },
};

static const char *const source_names[] = {
	"kvm-log", "kvm-clear-log", "kvm-ring", "iommu", "vmm", "soft", NULL,
};

static const struct source_entry *source_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(sources); i++)
		if (!strcmp(sources[i].name, name))
			return &sources[i];
	return NULL;
}

UIOMMU_EXPORT const char *const *uiommu_vm_source_names(void)
{
	return source_names;
}

UIOMMU_EXPORT bool uiommu_vm_source_supported(const char *name,
					      const struct uiommu_vm_source_cfg *cfg)
{
	const struct source_entry *e = source_find(name);

	return e && cfg && e->supported(cfg);
}

UIOMMU_EXPORT int uiommu_vm_source_create(const char *name, const struct uiommu_vm_source_cfg *cfg,
					  struct uiommu_dirty_source **out)
{
	const struct source_entry *e = source_find(name);

	if (!e)
		return -ENOENT;
	if (!cfg || !out)
		return -EINVAL;
	return e->create(cfg, out);
}

UIOMMU_EXPORT void uiommu_dirty_log_write(void *src, uint64_t gpa, uint64_t len)
{
	uiommu_dirty_log_mark(src, gpa, len);
}
