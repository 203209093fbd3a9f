// SPDX-License-Identifier: MIT
/*
 * The KVM backend: the VM, its memslot and dirty-tracking set-up, vCPUs in
 * 64-bit long mode, and the thread that runs each of them.
 *
 * Set-up order (KVM requires the dirty ring before any vCPU exists):
 * KVM_CREATE_VM, dirty ring (ACQ_REL, else the plain ring), manual protect,
 * memslot 0 over all guest RAM with flags 0 (the dirty sources turn
 * KVM_MEM_LOG_DIRTY_PAGES on and off themselves), then per vCPU:
 * KVM_CREATE_VCPU, the kvm_run mapping, CPUID (what KVM supports, with the
 * vCPU's APIC id), and its ring mapping.
 *
 * Boot state: long mode with paging (CR0.PG|PE, CR4.PAE, EFER.LME|LMA),
 * flat 64-bit segments, the layout's GDT/IDT and the vCPU's own TSS; rip at
 * the program's entry, rdi = control block, rsi = user stack, rsp = kernel
 * stack. No in-kernel irqchip: nothing interrupts the guest but exits.
 *
 * The vCPU thread: KVM_RUN, then the exit: a port write (guest_abi.h),
 * KVM_EXIT_DIRTY_RING_FULL (cfg.ring_full, then run again), or anything
 * else, which is unexpected: logged, and the vCPU parks for good. Kicks:
 * immediate_exit = 1 and a signal, so a thread in KVM_RUN leaves it with
 * EINTR and one about to enter returns at once; before parking, one more
 * KVM_RUN with immediate_exit completes a pending port exit (KVM advances
 * rip past `out` only then), which makes the saved state resumable.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"
#include "vm/vm_internal.h"

#define KICK_SIGNAL (SIGRTMIN + 6)
#define CPUID_MAX_ENTRIES 256u

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;

static void kick_handler(int sig)
{
	(void)sig;
}

static void kick_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
}

static uint64_t ctl_get(struct vm_vcpu *v, uint64_t off)
{
	struct uiommu_vm *vm = v->vm;

	return __atomic_load_n((uint64_t *)vm_gpa(vm, layout_ctl(&vm->lay, v->index) + off),
			       __ATOMIC_RELAXED);
}

static void ctl_put(struct vm_vcpu *v, uint64_t off, uint64_t val)
{
	struct uiommu_vm *vm = v->vm;

	__atomic_store_n((uint64_t *)vm_gpa(vm, layout_ctl(&vm->lay, v->index) + off), val,
			 __ATOMIC_RELEASE);
}

static int kvm_enable_cap(int fd, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec;

	memset(&ec, 0, sizeof(ec));
	ec.cap = cap;
	ec.args[0] = arg0;
	return ioctl(fd, KVM_ENABLE_CAP, &ec) ? -errno : 0;
}

static int kvm_enable_ring(struct uiommu_vm *vm)
{
	uint32_t n = vm->cfg.dirty_ring_entries;
	uint32_t cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	int ret;

	if (!n)
		return 0;
	if (!is_pow2_u64(n))
		return -EINVAL;
	if (kvm_check_cap(vm->kvm.vm_fd, cap) <= 0)
		cap = KVM_CAP_DIRTY_LOG_RING;
	if (kvm_check_cap(vm->kvm.vm_fd, cap) <= 0)
		return -EOPNOTSUPP;
	ret = kvm_enable_cap(vm->kvm.vm_fd, cap, (uint64_t)n * sizeof(struct kvm_dirty_gfn));
	if (!ret)
		vm->kvm.ring_entries = n;
	return ret;
}

static int kvm_enable_manual_protect(struct uiommu_vm *vm)
{
	int ret;

	if (!vm->cfg.manual_protect)
		return 0;
	if (kvm_check_cap(vm->kvm.vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0)
		return -EOPNOTSUPP;
	ret = kvm_enable_cap(vm->kvm.vm_fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			     KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	if (!ret)
		vm->kvm.manual_protect = true;
	return ret;
}

static int kvm_set_slot(struct uiommu_vm *vm)
{
	struct kvm_userspace_memory_region r = {
		.slot = 0,
		.flags = 0,
		.guest_phys_addr = 0,
		.memory_size = vm->lay.mem_bytes,
		.userspace_addr = (uint64_t)(uintptr_t)vm->mem,
	};

	return ioctl(vm->kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? -errno : 0;
}

static int kvm_query_xsave(struct uiommu_vm *vm)
{
	int size = kvm_check_cap(vm->kvm.vm_fd, KVM_CAP_XSAVE2);

	if (size > 0) {
		vm->kvm.xsave2 = true;
		vm->kvm.xsave_bytes = (uint32_t)u64_max((uint64_t)size, sizeof(struct kvm_xsave));
		return 0;
	}
	if (kvm_check_cap(vm->kvm.vm_fd, KVM_CAP_XSAVE) <= 0)
		return -EOPNOTSUPP;
	vm->kvm.xsave_bytes = sizeof(struct kvm_xsave);
	return 0;
}

static int kvm_get_cpuid(struct uiommu_vm *vm)
{
	struct kvm_cpuid2 *c;

	c = uiommu__zalloc(sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm.kvm_fd, KVM_GET_SUPPORTED_CPUID, c)) {
		uiommu__free(c);
		return -errno;
	}
	vm->kvm.cpuid = c;
	return 0;
}

/* The supported CPUID with this vCPU's APIC id in leaves 1, 0xb and 0x1f. */
static int kvm_vcpu_set_cpuid(struct vm_vcpu *v)
{
	struct kvm_cpuid2 *c = v->vm->kvm.cpuid;
	uint32_t i;

	for (i = 0; i < c->nent; i++) {
		if (c->entries[i].function == 1)
			c->entries[i].ebx = (c->entries[i].ebx & 0x00ffffffu) | v->index << 24;
		if (c->entries[i].function == 0xb || c->entries[i].function == 0x1f)
			c->entries[i].edx = v->index;
	}
	return ioctl(v->fd, KVM_SET_CPUID2, c) ? -errno : 0;
}

static int kvm_vcpu_map_ring(struct vm_vcpu *v)
{
	size_t bytes = (size_t)v->vm->kvm.ring_entries * sizeof(struct kvm_dirty_gfn);
	void *p;

	if (!bytes)
		return 0;
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		 (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * (off_t)uiommu__page_size());
	if (p == MAP_FAILED)
		return -errno;
	v->ring = p;
	return 0;
}

static int kvm_vcpu_create(struct vm_vcpu *v)
{
	struct uiommu_vm *vm = v->vm;
	void *run;

	v->fd = ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)v->index);
	if (v->fd < 0)
		return -errno;
	run = mmap(NULL, vm->kvm.run_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return -errno;
	v->run = run;
	return kvm_vcpu_set_cpuid(v) ?: kvm_vcpu_map_ring(v);
}

static void kvm_vcpu_destroy(struct vm_vcpu *v)
{
	struct uiommu_vm *vm = v->vm;

	if (v->ring)
		munmap(v->ring, (size_t)vm->kvm.ring_entries * sizeof(struct kvm_dirty_gfn));
	if (v->run)
		munmap(v->run, vm->kvm.run_bytes);
	if (v->fd >= 0)
		close(v->fd);
	v->ring = NULL;
	v->run = NULL;
	v->fd = -1;
}

static void kvm_fini(struct uiommu_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->lay.nr_vcpus; i++)
		kvm_vcpu_destroy(&vm->vcpus[i]);
	uiommu__free(vm->kvm.cpuid);
	vm->kvm.cpuid = NULL;
	if (vm->kvm.vm_fd >= 0)
		close(vm->kvm.vm_fd);
	if (vm->kvm.kvm_fd >= 0)
		close(vm->kvm.kvm_fd);
	vm->kvm.vm_fd = vm->kvm.kvm_fd = -1;
}

/* What must exist before the first vCPU: VM, ring, manual protect, slot. */
static int kvm_init_vm(struct uiommu_vm *vm)
{
	int ret, n;

	ret = kvm_open();
	if (ret < 0)
		return -ENODEV;
	vm->kvm.kvm_fd = ret;
	n = ioctl(vm->kvm.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (n <= 0)
		return n < 0 ? -errno : -ENODEV;
	vm->kvm.run_bytes = (size_t)n;
	vm->kvm.vm_fd = ioctl(vm->kvm.kvm_fd, KVM_CREATE_VM, 0);
	if (vm->kvm.vm_fd < 0)
		return -errno;
	return kvm_enable_ring(vm) ?: kvm_enable_manual_protect(vm) ?: kvm_set_slot(vm) ?:
	       kvm_query_xsave(vm) ?: kvm_query_msrs(vm) ?: kvm_get_cpuid(vm);
}

static int kvm_init(struct uiommu_vm *vm)
{
	unsigned int i;
	int ret;

	pthread_once(&kick_once, kick_install);
	vm->kvm.kvm_fd = vm->kvm.vm_fd = -1;
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		vm->vcpus[i].fd = -1;
	ret = kvm_init_vm(vm);
	for (i = 0; !ret && i < vm->lay.nr_vcpus; i++)
		ret = kvm_vcpu_create(&vm->vcpus[i]);
	if (ret)
		goto err_fini;
	return 0;

err_fini:
	kvm_fini(vm);
	return ret;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static void boot_sregs(const struct vm_layout *l, unsigned int i, struct kvm_sregs *s)
{
	flat_segment(&s->cs, SEL_KERNEL_CS, 11, true);
	flat_segment(&s->ds, SEL_KERNEL_DS, 3, false);
	s->es = s->fs = s->gs = s->ss = s->ds;
	memset(&s->tr, 0, sizeof(s->tr));
	s->tr.selector = (uint16_t)(SEL_TSS0 + 16 * i);
	s->tr.base = l->tss + 128ull * i;
	s->tr.limit = VM_TSS_LIMIT;
	s->tr.type = 11; /* busy 64-bit TSS */
	s->tr.present = 1;
	s->gdt.base = l->gdt;
	s->gdt.limit = (uint16_t)((5 + 2 * l->nr_vcpus) * 8 - 1);
	s->idt.base = l->idt;
	s->idt.limit = 256 * 16 - 1;
	s->cr0 = 0x80050033; /* PG, AM, WP, NE, ET, MP, PE */
	s->cr3 = l->pml4;
	s->cr4 = 0x620; /* OSXMMEXCPT, OSFXSR, PAE */
	s->efer = 0x500; /* LMA, LME */
}

static int kvm_boot_vcpu(struct vm_vcpu *v)
{
	const struct vm_layout *l = &v->vm->lay;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
		return -errno;
	boot_sregs(l, v->index, &sregs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
		return -errno;
	memset(&regs, 0, sizeof(regs));
	regs.rip = layout_entry(l);
	regs.rsp = layout_kstack_top(l, v->index);
	regs.rdi = layout_ctl(l, v->index);
	regs.rsi = layout_ustack_top(l, v->index);
	regs.rflags = 2;
	return ioctl(v->fd, KVM_SET_REGS, &regs) ? -errno : 0;
}

static int kvm_boot(struct uiommu_vm *vm)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; !ret && i < vm->lay.nr_vcpus; i++)
		ret = kvm_boot_vcpu(&vm->vcpus[i]);
	return ret;
}

static void kvm_report_exception(struct vm_vcpu *v)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs))
		memset(&regs, 0, sizeof(regs));
	uiommu__log(UIOMMU_LOG_ERR,
		    "vm: vCPU %u: guest exception %llu (error code %#llx) at rip %#llx",
		    v->index, regs.rax, regs.rbx, regs.rcx);
}

static void kvm_handle_io(struct vm_vcpu *v)
{
	struct kvm_run *run = v->run;

	if (run->io.direction != KVM_EXIT_IO_OUT)
		goto err_unexpected;
	switch (run->io.port) {
	case PORT_CTL:
		vcpu_control_exit(v, ctl_get(v, CTL_PAGES_TOTAL));
		return;
	case PORT_IDLE:
		vcpu_idle_exit(v, ctl_get(v, CTL_ACK_SEQ));
		return;
	case PORT_VERIFY:
		vcpu_verify_done(v, ctl_get(v, CTL_VERIFY_SEQ), ctl_get(v, CTL_VERIFIED),
				 ctl_get(v, CTL_BAD));
		return;
	case PORT_EXC:
		kvm_report_exception(v);
		vcpu_fail(v);
		return;
	}
err_unexpected:
	uiommu__log(UIOMMU_LOG_ERR, "vm: vCPU %u: unexpected port %s %#x", v->index,
		    run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read", run->io.port);
	vcpu_fail(v);
}

static void kvm_run_once(struct vm_vcpu *v)
{
	struct kvm_run *run = v->run;

	if (ioctl(v->fd, KVM_RUN, 0)) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		uiommu__log(UIOMMU_LOG_ERR, "vm: vCPU %u: KVM_RUN: errno %d", v->index, errno);
		vcpu_fail(v);
		return;
	}
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		kvm_handle_io(v);
		return;
	case KVM_EXIT_DIRTY_RING_FULL:
		vcpu_ring_full(v);
		return;
	case KVM_EXIT_INTR:
		return;
	}
	uiommu__log(UIOMMU_LOG_ERR, "vm: vCPU %u: unexpected exit reason %u", v->index,
		    run->exit_reason);
	vcpu_fail(v);
}

static void *kvm_thread(void *arg)
{
	struct vm_vcpu *v = arg;

	while (vcpu_wait_runnable(v))
		kvm_run_once(v);
	return NULL;
}

static void kvm_kick(struct vm_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, KICK_SIGNAL);
}

static void kvm_unkick(struct vm_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/* Completes a pending port exit so that the state is resumable. */
static void kvm_quiesce(struct vm_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (ioctl(v->fd, KVM_RUN, 0) == 0 && v->run->exit_reason == KVM_EXIT_IO)
		uiommu__log(UIOMMU_LOG_WARN, "vm: vCPU %u: ran while quiescing", v->index);
}

static void kvm_post(struct vm_vcpu *v, const struct vm_cmd *cmd)
{
	uint64_t ctl = layout_ctl(&v->vm->lay, v->index);
	struct vm_cmd_slice s;

	vm_cmd_slice(cmd, v->slice_pages, v->index, &s);
	ctl_put(v, CTL_KIND, cmd->kind);
	ctl_put(v, CTL_NPAGES, cmd->npages);
	ctl_put(v, CTL_HOT_PAGES, s.hot_pages);
	ctl_put(v, CTL_HOT_THRESH, s.hot_thresh);
	ctl_put(v, CTL_SEED, s.seed);
	ctl_put(v, CTL_SEQ, cmd->seq);
	vm_vmm_wrote(v->vm, ctl + CTL_SEQ, CTL_SEED + 8 - CTL_SEQ);
}

static uint64_t kvm_pages_written(struct vm_vcpu *v)
{
	return ctl_get(v, CTL_PAGES_TOTAL);
}

/* After a restore: the guest's counters are in the copied memory. */
static void kvm_resync(struct vm_vcpu *v)
{
	v->seen_pages = ctl_get(v, CTL_PAGES_TOTAL);
}

const struct vm_backend_ops vm_kvm_ops = {
	.label = "KVM vCPUs",
	.record_type = REC_KVM_VCPU,
	.init = kvm_init,
	.fini = kvm_fini,
	.boot = kvm_boot,
	.thread = kvm_thread,
	.kick = kvm_kick,
	.unkick = kvm_unkick,
	.quiesce = kvm_quiesce,
	.post = kvm_post,
	.pages_written = kvm_pages_written,
	.resync = kvm_resync,
	.save = kvm_state_save,
	.decode = kvm_state_decode,
	.check = kvm_state_check,
	.load = kvm_state_load,
};
