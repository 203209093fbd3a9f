// SPDX-License-Identifier: MIT
/*
 * The VM object: guest memory, the backend (KVM or software vCPUs), and the
 * public calls that drive it (include/uiommu/vm.h).
 *
 * Life of a VM:
 *   create     memfd + shared mapping, layout, backend init (KVM: VM, ring,
 *              slot, vCPUs); unless incoming: tables and program written
 *              (reported through vmm_write) and vCPUs set to their boot
 *              state. An incoming VM starts paused and not runnable.
 *   start      posts a command (the workload) to every control block and
 *              starts the vCPU threads on first use
 *   pause      every vCPU parked (pause waits for it); resume undoes it and
 *              starts the threads if they never ran (an incoming VM after
 *              its restore)
 *   stop       threads joined; the VM can still be saved and destroyed
 * Commands are numbered (vm->cmd.seq); the guest takes a new one at its
 * next exit. A VERIFY command's number is remembered (last_verify_seq) so
 * that statistics know which verify results are current.
 *
 * Locking: vm->lock (see vm_core.h). The public calls are meant for one
 * controlling thread; statistics and the write log may be read from any.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"

void vm_vmm_wrote(struct uiommu_vm *vm, uint64_t gpa, uint64_t len)
{
	if (vm->cfg.vmm_write)
		vm->cfg.vmm_write(vm->cfg.vmm_write_opaque, gpa, len);
}

static int vm_sync_init(struct uiommu_vm *vm)
{
	pthread_condattr_t attr;
	int ret;

	ret = pthread_mutex_init(&vm->lock, NULL);
	if (ret)
		return -ret;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&vm->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (ret)
		pthread_mutex_destroy(&vm->lock);
	return -ret;
}

static void vm_sync_fini(struct uiommu_vm *vm)
{
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
}

static int vm_mem_create(struct uiommu_vm *vm)
{
	void *p;
	int ret;

	vm->mem_fd = memfd_create("uiommu-vm", MFD_CLOEXEC);
	if (vm->mem_fd < 0)
		return -errno;
	if (ftruncate(vm->mem_fd, (off_t)vm->lay.mem_bytes))
		goto err_close;
	p = mmap(NULL, vm->lay.mem_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vm->mem_fd, 0);
	if (p == MAP_FAILED)
		goto err_close;
	vm->mem = p;
	return 0;

err_close:
	ret = -errno;
	close(vm->mem_fd);
	return ret;
}

static void vm_mem_destroy(struct uiommu_vm *vm)
{
	munmap(vm->mem, vm->lay.mem_bytes);
	close(vm->mem_fd);
}

static void vm_vcpus_init(struct uiommu_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->lay.nr_vcpus; i++) {
		struct vm_vcpu *v = &vm->vcpus[i];

		v->vm = vm;
		v->index = i;
		v->fd = -1;
		v->slice_first = layout_slice_first(&vm->lay, i);
		v->slice_pages = layout_slice_pages(&vm->lay, i);
	}
}

/* Program, tables and boot state of a VM that is not incoming. */
static int vm_boot(struct uiommu_vm *vm)
{
	if (vm->cfg.incoming) {
		vm->paused = true;
		return 0;
	}
	layout_build(&vm->lay, vm->mem);
	vm_vmm_wrote(vm, 0, vm->lay.gen);
	vm->runnable = true;
	return vm->ops->boot(vm);
}

static const struct vm_backend_ops *vm_backend_ops(enum uiommu_vm_backend b)
{
	switch (b) {
	case UIOMMU_VM_KVM:
		return &vm_kvm_ops;
	case UIOMMU_VM_SOFT:
		return &vm_soft_ops;
	}
	return NULL;
}

UIOMMU_EXPORT int uiommu_vm_create(const struct uiommu_vm_cfg *cfg, struct uiommu_vm **out)
{
	struct uiommu_vm *vm;
	int ret;

	if (!cfg || !out || !vm_backend_ops(cfg->backend))
		return -EINVAL;
	vm = uiommu__zalloc(sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	vm->ops = vm_backend_ops(cfg->backend);
	ret = layout_compute(cfg, &vm->lay);
	if (ret)
		goto err_free;
	ret = vm_sync_init(vm);
	if (ret)
		goto err_free;
	ret = vm_mem_create(vm);
	if (ret)
		goto err_sync;
	vm_vcpus_init(vm);
	ret = vm->ops->init(vm);
	if (ret)
		goto err_mem;
	ret = vm_boot(vm);
	if (ret)
		goto err_fini;
	*out = vm;
	return 0;

err_fini:
	vm->ops->fini(vm);
err_mem:
	vm_mem_destroy(vm);
err_sync:
	vm_sync_fini(vm);
err_free:
	uiommu__free(vm);
	return ret;
}

UIOMMU_EXPORT void uiommu_vm_destroy(struct uiommu_vm *vm)
{
	if (!vm)
		return;
	uiommu_vm_stop(vm);
	vm->ops->fini(vm);
	vm_mem_destroy(vm);
	vm_sync_fini(vm);
	uiommu__free(vm);
}

UIOMMU_EXPORT void *uiommu_vm_mem(struct uiommu_vm *vm)
{
	return vm->mem;
}

UIOMMU_EXPORT int uiommu_vm_mem_fd(struct uiommu_vm *vm)
{
	return vm->mem_fd;
}

UIOMMU_EXPORT uint64_t uiommu_vm_mem_bytes(struct uiommu_vm *vm)
{
	return vm->lay.mem_bytes;
}

UIOMMU_EXPORT enum uiommu_vm_backend uiommu_vm_backend(struct uiommu_vm *vm)
{
	return vm->cfg.backend;
}

UIOMMU_EXPORT const char *uiommu_vm_backend_label(struct uiommu_vm *vm)
{
	return vm->ops->label;
}

UIOMMU_EXPORT unsigned int uiommu_vm_nr_vcpus(struct uiommu_vm *vm)
{
	return vm->lay.nr_vcpus;
}

UIOMMU_EXPORT void uiommu_vm_work_region(struct uiommu_vm *vm, uint64_t *gpa, uint64_t *bytes)
{
	*gpa = vm->lay.work_gpa;
	*bytes = vm->lay.work_pages * VM_PAGE;
}

UIOMMU_EXPORT void uiommu_vm_dma_region(struct uiommu_vm *vm, uint64_t *gpa, uint64_t *bytes)
{
	*gpa = vm->lay.dma_gpa;
	*bytes = vm->lay.dma_bytes;
}

static int check_workload(const struct uiommu_workload *wl)
{
	if (!wl || (unsigned int)wl->kind > UIOMMU_WL_VERIFY)
		return -EINVAL;
	if (wl->kind == UIOMMU_WL_HOTSET &&
	    (!wl->hot_pages_pct || wl->hot_pages_pct > 100 || wl->hot_writes_pct > 100))
		return -EINVAL;
	return 0;
}

/* The command for @wl, numbered after the current one; under vm->lock. */
static void vm_make_cmd(struct uiommu_vm *vm, const struct uiommu_workload *wl)
{
	struct vm_cmd *c = &vm->cmd;

	c->seq++;
	c->kind = (uint32_t)wl->kind;
	c->pages_per_sec = wl->pages_per_sec;
	c->hot_pages_pct = wl->kind == UIOMMU_WL_HOTSET ? wl->hot_pages_pct : 0;
	c->hot_writes_pct = wl->kind == UIOMMU_WL_HOTSET ? wl->hot_writes_pct : 0;
	c->seed = wl->seed;
	c->npages = vm_cmd_npages(wl->pages_per_sec, vm->lay.nr_vcpus);
	if (c->kind == WL_VERIFY)
		vm->last_verify_seq = c->seq;
}

UIOMMU_EXPORT int uiommu_vm_start(struct uiommu_vm *vm, const struct uiommu_workload *wl)
{
	int ret = check_workload(wl);

	if (ret)
		return ret;
	pthread_mutex_lock(&vm->lock);
	if (vm->stopping)
		ret = -ESHUTDOWN;
	else if (vm->paused)
		ret = -EBUSY;
	if (ret)
		goto out_unlock;
	vm_make_cmd(vm, wl);
	vm_post_cmd(vm);
	if (!vm->started)
		ret = vm_threads_start(vm);
out_unlock:
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

UIOMMU_EXPORT void uiommu_vm_get_workload(struct uiommu_vm *vm, struct uiommu_workload *wl)
{
	pthread_mutex_lock(&vm->lock);
	*wl = (struct uiommu_workload){
		.kind = (enum uiommu_workload_kind)vm->cmd.kind,
		.pages_per_sec = vm->cmd.pages_per_sec,
		.hot_pages_pct = vm->cmd.hot_pages_pct,
		.hot_writes_pct = vm->cmd.hot_writes_pct,
		.seed = vm->cmd.seed,
	};
	pthread_mutex_unlock(&vm->lock);
}

UIOMMU_EXPORT int uiommu_vm_pause(struct uiommu_vm *vm)
{
	unsigned int i;

	pthread_mutex_lock(&vm->lock);
	if (vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		return -ESHUTDOWN;
	}
	if (!vm->paused && vm->started)
		for (i = 0; i < vm->lay.nr_vcpus; i++)
			vm->ops->kick(&vm->vcpus[i]);
	vm->paused = true;
	pthread_cond_broadcast(&vm->cond);
	while (vm->started && vm->nr_parked < vm->lay.nr_vcpus)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

UIOMMU_EXPORT int uiommu_vm_resume(struct uiommu_vm *vm)
{
	int ret = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->stopping)
		ret = -ESHUTDOWN;
	else if (!vm->runnable)
		ret = -EINVAL;
	if (ret || !vm->paused)
		goto out_unlock;
	vm->paused = false;
	pthread_cond_broadcast(&vm->cond);
	if (!vm->started)
		ret = vm_threads_start(vm);
out_unlock:
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

UIOMMU_EXPORT void uiommu_vm_stop(struct uiommu_vm *vm)
{
	bool join;

	pthread_mutex_lock(&vm->lock);
	join = vm->started;
	if (!vm->stopping)
		vm_stop_locked(vm, vm->started ? vm->lay.nr_vcpus : 0);
	vm->started = false;
	pthread_mutex_unlock(&vm->lock);
	if (join)
		vm_threads_join_all(vm);
}

UIOMMU_EXPORT int uiommu_vm_set_throttle(struct uiommu_vm *vm, double fraction)
{
	if (!(fraction >= 0 && fraction < 1))
		return -EINVAL;
	stat_set(&vm->throttle_ppm, (uint64_t)(fraction * 1e6 + 0.5));
	return 0;
}

static void vcpu_stats(struct vm_vcpu *v, uint64_t verify_seq, struct uiommu_vm_stats *st)
{
	bool done = verify_seq && stat_get(&v->verify_seq) == verify_seq;

	st->pages_written += v->vm->ops->pages_written(v);
	st->exits += stat_get(&v->exits);
	st->stall_ns += stat_get(&v->stall_ns);
	st->throttle_ns += stat_get(&v->throttle_ns);
	st->ring_full_exits += stat_get(&v->ring_full_exits);
	st->unexpected_exits += stat_get(&v->unexpected);
	if (done) {
		st->verified_pages += stat_get(&v->verified);
		st->bad_pages += stat_get(&v->bad);
	}
	st->verify_done = st->verify_done && done;
}

static uint64_t vm_last_verify_seq(struct uiommu_vm *vm)
{
	uint64_t seq;

	pthread_mutex_lock(&vm->lock);
	seq = vm->last_verify_seq;
	pthread_mutex_unlock(&vm->lock);
	return seq;
}

UIOMMU_EXPORT void uiommu_vm_get_stats(struct uiommu_vm *vm, struct uiommu_vm_stats *st)
{
	uint64_t seq = vm_last_verify_seq(vm);
	unsigned int i;

	memset(st, 0, sizeof(*st));
	st->verify_done = true;
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		vcpu_stats(&vm->vcpus[i], seq, st);
}

UIOMMU_EXPORT int uiommu_vm_get_vcpu_stats(struct uiommu_vm *vm, unsigned int vcpu,
					   struct uiommu_vm_stats *st)
{
	if (vcpu >= vm->lay.nr_vcpus)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->verify_done = true;
	vcpu_stats(&vm->vcpus[vcpu], vm_last_verify_seq(vm), st);
	return 0;
}

/* Takes the log words of one log page; reports the page if it cleared any. */
static void take_log_page(struct uiommu_vm *vm, uint64_t *bits, uint64_t first, uint64_t end)
{
	uint64_t *log = vm_gpa(vm, vm->lay.log), w;
	bool cleared = false;

	/*
	 * Sequentially consistent (plain loads and xchg on x86): a writer whose
	 * bit was set before a take began is seen by that take's exchange.
	 */
	for (w = first; w < end; w++) {
		bits[w] = 0;
		if (!__atomic_load_n(&log[w], __ATOMIC_SEQ_CST))
			continue;
		bits[w] = __atomic_exchange_n(&log[w], 0, __ATOMIC_SEQ_CST);
		cleared = true;
	}
	if (cleared)
		vm_vmm_wrote(vm, vm->lay.log + first * 8, VM_PAGE);
}

UIOMMU_EXPORT int uiommu_vm_take_write_log(struct uiommu_vm *vm, uint64_t *bits)
{
	const uint64_t per_page = VM_PAGE / 8;
	uint64_t w;

	if (!bits)
		return -EINVAL;
	for (w = 0; w < vm->lay.log_words; w += per_page)
		take_log_page(vm, bits, w, u64_min(w + per_page, vm->lay.log_words));
	return 0;
}

/* Is the vCPU state the caller's (paused, stopped, or never started)? */
static bool vm_state_stable(struct uiommu_vm *vm)
{
	bool stable;

	pthread_mutex_lock(&vm->lock);
	stable = vm->paused || vm->stopping || !vm->started;
	pthread_mutex_unlock(&vm->lock);
	return stable;
}

UIOMMU_EXPORT int uiommu_vm_save_vcpus(struct uiommu_vm *vm, void **blob, uint64_t *len)
{
	if (!blob || !len)
		return -EINVAL;
	if (!vm_state_stable(vm))
		return -EBUSY;
	return vm_state_encode(vm, blob, len);
}

UIOMMU_EXPORT int uiommu_vm_restore_vcpus(struct uiommu_vm *vm, const void *blob, uint64_t len)
{
	struct vm_state *st;
	int ret;

	if (!vm_state_stable(vm))
		return -EBUSY;
	st = uiommu__zalloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	ret = vm_state_decode(vm, blob, len, st);
	if (!ret)
		ret = vm_state_apply(vm, st);
	uiommu__free(st);
	return ret;
}

UIOMMU_EXPORT int uiommu_vm_kvm_info(struct uiommu_vm *vm, struct uiommu_vm_kvm_info *info)
{
	unsigned int i;

	if (vm->cfg.backend != UIOMMU_VM_KVM)
		return -EOPNOTSUPP;
	memset(info, 0, sizeof(*info));
	info->vm_fd = vm->kvm.vm_fd;
	info->slot = 0;
	info->gpa = 0;
	info->bytes = vm->lay.mem_bytes;
	info->host = vm->mem;
	info->manual_protect = vm->kvm.manual_protect;
	info->nr_vcpus = vm->lay.nr_vcpus;
	info->ring_entries = vm->kvm.ring_entries;
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		info->rings[i] = vm->vcpus[i].ring;
	return 0;
}
