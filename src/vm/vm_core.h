/* SPDX-License-Identifier: MIT */
/*
 * Private declarations of the VM core (vm.c, layout.c, vcpu*.c, content.c).
 * Kept apart from vm_internal.h, which the whole vm layer shares, because
 * only the VM core may look inside struct uiommu_vm.
 *
 * Locking: vm->lock protects the run state (started, paused, stopping,
 * nr_parked, every vcpu->parked and ->failed) and the posted command
 * vm->cmd; vm->cond is broadcast on every change of them. Statistics are
 * relaxed atomics written by the vCPU's own thread. The rest of a vCPU
 * (backend state, rate accounting) belongs to its thread while it runs and
 * to the caller while the VM is paused (pause waits for every vCPU to park,
 * which orders the accesses).
 */
#ifndef UIOMMU_VM_CORE_H
#define UIOMMU_VM_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>
#include <uiommu/vm.h>

#include "core/core_internal.h"

#define VM_PAGE UIOMMU_VM_PAGE_SIZE
#define VM_2M (2ull << 20)
#define VM_MAX_MEM (512ull << 30) /* one page-directory-pointer table */
#define VM_MAX_NPAGES 4096u       /* page writes between control exits, at most */
#define VM_EXIT_INTERVAL_NS 500000ull /* aim: a control exit every 0.5 ms */
#define VM_IDLE_WAIT_NS 10000000ull   /* an idle exit waits this long for news */
#define VM_BURST_NS 10000000ull       /* rate credit a vCPU may save up */
#define VM_MAX_MSRS 32u
#define VM_TSS_LIMIT 112u /* TSS (104 bytes), 8-byte I/O bitmap, terminator byte */

/* The generated guest program (guest_blob.c, built from guest/guest.S). */
extern const unsigned char uiommu__guest_blob[];
extern const size_t uiommu__guest_blob_len;

/* Where everything lives in guest memory (layout.c). GPAs unless noted. */
struct vm_layout {
	uint64_t mem_bytes, sys_bytes;
	uint64_t work_gpa, work_pages;
	uint64_t dma_gpa, dma_bytes;
	unsigned int nr_vcpus;
	uint64_t gdt, idt, tss, pml4, pdpt, pd, nr_pd;
	uint64_t code, code_bytes;
	uint64_t vcpu_area; /* per vCPU: control block, kernel stack, user stack */
	uint64_t gen;       /* u32 generation per work page */
	uint64_t log, log_words; /* write log: one bit per work page */
};

#define VM_VCPU_AREA_PAGES 3ull

static inline uint64_t layout_ctl(const struct vm_layout *l, unsigned int i)
{
	return l->vcpu_area + i * VM_VCPU_AREA_PAGES * VM_PAGE;
}

static inline uint64_t layout_kstack_top(const struct vm_layout *l, unsigned int i)
{
	return layout_ctl(l, i) + 2 * VM_PAGE;
}

static inline uint64_t layout_ustack_top(const struct vm_layout *l, unsigned int i)
{
	return layout_ctl(l, i) + 3 * VM_PAGE;
}

/* vCPU i's slice: work pages [first, first + pages). */
static inline uint64_t layout_slice_first(const struct vm_layout *l, unsigned int i)
{
	return l->work_pages * i / l->nr_vcpus;
}

static inline uint64_t layout_slice_pages(const struct vm_layout *l, unsigned int i)
{
	return layout_slice_first(l, i + 1) - layout_slice_first(l, i);
}

static inline uint64_t layout_work_page_gpa(const struct vm_layout *l, uint64_t page)
{
	return l->work_gpa + page * VM_PAGE;
}

int layout_compute(const struct uiommu_vm_cfg *cfg, struct vm_layout *l);
/* Page tables, GDT, TSSs, IDT, program, the fixed part of the control blocks. */
void layout_build(const struct vm_layout *l, uint8_t *mem);
uint64_t layout_entry(const struct vm_layout *l); /* GPA of the program's entry */

/* A command as the vCPUs run it: what the host posts into control blocks. */
struct vm_cmd {
	uint64_t seq; /* 0: none posted yet */
	uint32_t kind;
	uint32_t hot_pages_pct, hot_writes_pct;
	uint64_t pages_per_sec; /* whole VM; 0 = unlimited */
	uint64_t seed;
	uint64_t npages; /* page writes between control exits */
};

/* Per-vCPU parameters derived from a command and a slice. */
struct vm_cmd_slice {
	uint64_t hot_pages, hot_thresh, seed;
};
void vm_cmd_slice(const struct vm_cmd *cmd, uint64_t slice_pages, unsigned int vcpu,
		  struct vm_cmd_slice *out);

/* The state of a software vCPU's workload (what registers hold in a guest). */
struct soft_state {
	uint64_t ack_seq; /* command taken */
	uint32_t kind;    /* running kind: a finished verify turns into idle */
	uint64_t pos;     /* sweep page / next page to verify */
	uint64_t rng;
	uint64_t left;    /* page writes before the next control point */
	uint64_t bad;     /* of the running verify */
	uint64_t hot_pages, hot_thresh;
	uint64_t npages;  /* page writes between control points */
};

/* Host-side accounting of a vCPU that travels with its state. */
struct vm_host_state {
	uint64_t pages; /* software vCPUs only: pages written (guests keep it in memory) */
	uint64_t exits, stall_ns, ring_full_exits;
	uint64_t verify_seq, verified, bad;
};

struct vm_vcpu {
	struct uiommu_vm *vm;
	unsigned int index;
	uint64_t slice_first, slice_pages; /* work pages */
	pthread_t thread;
	bool parked, failed; /* under vm->lock */
	/* KVM backend. */
	int fd;
	struct kvm_run *run;
	void *ring;
	/* Software backend. */
	struct soft_state soft;
	/* Rate accounting (vCPU thread). */
	uint64_t next_ns, entry_ns, seen_pages;
	_Atomic uint64_t rate_pps; /* this vCPU's share of the rate; 0 = unlimited */
	/* Statistics. */
	_Atomic uint64_t pages, exits, stall_ns, ring_full_exits, unexpected;
	_Atomic uint64_t throttle_ns; /* of stall_ns, the throttle's share; stays on this host */
	_Atomic uint64_t verify_seq, verified, bad;
};

struct vm_state;
struct blob_writer;

struct vm_backend_ops {
	const char *label;
	uint32_t record_type;
	int (*init)(struct uiommu_vm *vm);  /* creates the vCPUs */
	void (*fini)(struct uiommu_vm *vm); /* never fails */
	int (*boot)(struct uiommu_vm *vm);  /* initial vCPU state (not incoming) */
	void *(*thread)(void *vcpu);
	void (*kick)(struct vm_vcpu *v);    /* under vm->lock: leave the guest soon */
	void (*unkick)(struct vm_vcpu *v);  /* under vm->lock: may run again (optional) */
	void (*quiesce)(struct vm_vcpu *v); /* before parking: make the state stable (optional) */
	void (*post)(struct vm_vcpu *v, const struct vm_cmd *cmd); /* under vm->lock */
	uint64_t (*pages_written)(struct vm_vcpu *v);
	void (*resync)(struct vm_vcpu *v);  /* after a restore: rate accounting from the state */
	int (*save)(struct vm_vcpu *v, struct blob_writer *w);
	int (*decode)(struct uiommu_vm *vm, uint32_t tag, const uint8_t *p, uint32_t len,
		      struct vm_state *st, unsigned int vcpu);
	int (*check)(struct uiommu_vm *vm, struct vm_state *st, unsigned int vcpu);
	int (*load)(struct vm_vcpu *v, const struct vm_state *st);
};

extern const struct vm_backend_ops vm_kvm_ops, vm_soft_ops;

struct vm_kvm {
	int kvm_fd, vm_fd;
	size_t run_bytes;
	uint32_t ring_entries;
	bool manual_protect;
	uint32_t xsave_bytes; /* KVM_GET_XSAVE2 size, or 4096 for KVM_GET_XSAVE */
	bool xsave2;
	uint32_t nr_msrs;
	uint32_t msrs[VM_MAX_MSRS]; /* the MSRs saved, as KVM lists them */
	struct kvm_cpuid2 *cpuid;
};

struct uiommu_vm {
	struct uiommu_vm_cfg cfg;
	const struct vm_backend_ops *ops;
	struct vm_layout lay;
	int mem_fd;
	uint8_t *mem;
	struct vm_kvm kvm;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool started, paused, stopping, runnable;
	unsigned int nr_parked;
	struct vm_cmd cmd;
	uint64_t last_verify_seq;
	_Atomic uint64_t throttle_ppm; /* fraction held back, parts per million */
	struct vm_vcpu vcpus[UIOMMU_VM_MAX_VCPUS];
};

static inline void *vm_gpa(struct uiommu_vm *vm, uint64_t gpa)
{
	return vm->mem + gpa;
}

static inline uint64_t stat_get(_Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

static inline void stat_add(_Atomic uint64_t *a, uint64_t n)
{
	atomic_fetch_add_explicit(a, n, memory_order_relaxed);
}

static inline void stat_set(_Atomic uint64_t *a, uint64_t n)
{
	atomic_store_explicit(a, n, memory_order_relaxed);
}

uint64_t vm_now_ns(void);
/* Reports a write the VMM made to guest memory (cfg.vmm_write). */
void vm_vmm_wrote(struct uiommu_vm *vm, uint64_t gpa, uint64_t len);

/* vcpu.c: the run state and the exits every backend shares. */
bool vcpu_wait_runnable(struct vm_vcpu *v); /* parks while paused; false: stop */
bool vcpu_should_leave(struct vm_vcpu *v);  /* pause or stop requested */
void vcpu_fail(struct vm_vcpu *v);          /* unexpected exit: park for good */
void vcpu_entered(struct vm_vcpu *v);       /* the vCPU (re)enters the guest */
void vcpu_control_exit(struct vm_vcpu *v, uint64_t pages_total);
void vcpu_idle_exit(struct vm_vcpu *v, uint64_t ack_seq);
void vcpu_verify_done(struct vm_vcpu *v, uint64_t seq, uint64_t verified, uint64_t bad);
void vcpu_ring_full(struct vm_vcpu *v);
int vm_threads_start(struct uiommu_vm *vm);     /* under vm->lock */
void vm_stop_locked(struct uiommu_vm *vm, unsigned int nr_threads);
void vm_threads_join_all(struct uiommu_vm *vm); /* without vm->lock */
void vm_set_rates(struct uiommu_vm *vm);        /* under vm->lock */
void vm_post_cmd(struct uiommu_vm *vm);         /* under vm->lock */
uint64_t vm_cmd_npages(uint64_t pages_per_sec, unsigned int nr_vcpus);

/* content.c: the page content both backends write (guest_abi.h). */
void content_fill(void *page, uint64_t gpa, uint64_t gen);
bool content_check(const void *page, uint64_t gpa, uint64_t gen);
uint64_t rng_next(uint64_t *state);

/* vcpu_state.c: the state blob. */
struct blob_writer {
	uint8_t *buf;
	size_t len, cap;
	int err;
};
void blob_put(struct blob_writer *w, const void *p, size_t len);
void blob_put_u32(struct blob_writer *w, uint32_t v);
void blob_put_u64(struct blob_writer *w, uint64_t v);
/* A section: tag, length, bytes. */
void blob_put_section(struct blob_writer *w, uint32_t tag, const void *p, uint32_t len);
void blob_put_section_u64s(struct blob_writer *w, uint32_t tag, const uint64_t *f, uint32_t n);
/* @n u64 fields from a section of exactly @n * 8 bytes; -EINVAL otherwise. */
int blob_get_u64s(const uint8_t *p, uint32_t len, uint64_t *f, uint32_t n);

#define STATE_MAGIC 0x534d5655u /* "UVMS" */
#define STATE_VERSION 1u
#define REC_VM 1u
#define REC_KVM_VCPU 2u
#define REC_SOFT_VCPU 3u
/* Section tags. */
#define SEC_HOST 1u
#define SEC_SOFT 2u
#define SEC_REGS 3u
#define SEC_SREGS 4u
#define SEC_XSAVE 5u
#define SEC_XCRS 6u
#define SEC_MSRS 7u
#define SEC_EVENTS 8u
#define SEC_DEBUGREGS 9u
#define SEC_MAX 10u

struct kvm_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	uint32_t nr_msrs;
	struct kvm_msr_entry msrs[VM_MAX_MSRS];
	const uint8_t *xsave; /* into the blob */
	uint32_t xsave_len;
};

struct vm_vcpu_state {
	uint32_t seen; /* bit per section tag */
	struct vm_host_state host;
	struct soft_state soft;
	struct kvm_vcpu_state kvm;
};

struct vm_state {
	struct vm_cmd cmd;
	uint64_t last_verify_seq;
	struct vm_vcpu_state vcpu[UIOMMU_VM_MAX_VCPUS];
};

/* Decodes and validates a blob for @vm (nothing applied); -EINVAL if malformed. */
int vm_state_decode(struct uiommu_vm *vm, const void *blob, uint64_t len, struct vm_state *st);
int vm_state_encode(struct uiommu_vm *vm, void **blob, uint64_t *len);
int vm_state_apply(struct uiommu_vm *vm, const struct vm_state *st);

/* vcpu_kvm_state.c */
int kvm_query_msrs(struct uiommu_vm *vm);
int kvm_state_save(struct vm_vcpu *v, struct blob_writer *w);
int kvm_state_decode(struct uiommu_vm *vm, uint32_t tag, const uint8_t *p, uint32_t len,
		     struct vm_state *state, unsigned int vcpu);
int kvm_state_check(struct uiommu_vm *vm, struct vm_state *state, unsigned int vcpu);
int kvm_state_load(struct vm_vcpu *v, const struct vm_state *state);

#endif
