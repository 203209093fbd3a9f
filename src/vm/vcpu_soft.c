// SPDX-License-Identifier: MIT
/*
 * Software vCPUs: one thread per vCPU running the guest program's
 * workloads in C, for machines without /dev/kvm. Same slices, same page
 * content, same generation table and write log in guest memory, same
 * control points (every npages page writes, where vcpu.c does the rate
 * accounting) and the same verify; reported as "software vCPUs".
 *
 * What the guest keeps in registers lives in struct soft_state and travels
 * in the state blob as a SOFT section (fixed little-endian u64 fields, see
 * soft_save()). A software vCPU looks at the run state every 64 page writes
 * (and at every control point), so a pause waits for at most 64 pages; the
 * state is then between two page writes and resumable.
 *
 * Every write goes to guest memory first and is reported afterwards through
 * cfg.soft_write: the page, its generation-table word, its write-log word.
 */
#include <errno.h>
#include <string.h>

#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"

#define SOFT_CHECK_EVERY 64u
#define SOFT_FIELDS 9u

static void soft_wrote(struct uiommu_vm *vm, uint64_t gpa, uint64_t len)
{
	if (vm->cfg.soft_write)
		vm->cfg.soft_write(vm->cfg.soft_write_opaque, gpa, len);
}

/* Takes the posted command if it is new (the guest does it at dispatch). */
static void soft_take_cmd(struct vm_vcpu *v)
{
	struct soft_state *st = &v->soft;
	struct vm_cmd_slice s;
	struct vm_cmd cmd;

	pthread_mutex_lock(&v->vm->lock);
	cmd = v->vm->cmd;
	pthread_mutex_unlock(&v->vm->lock);
	if (cmd.seq == st->ack_seq)
		return;
	vm_cmd_slice(&cmd, v->slice_pages, v->index, &s);
	st->ack_seq = cmd.seq;
	st->kind = cmd.kind;
	st->pos = 0;
	st->bad = 0;
	st->rng = s.seed;
	st->hot_pages = s.hot_pages;
	st->hot_thresh = s.hot_thresh;
	st->npages = cmd.npages;
	st->left = cmd.npages;
}

static uint64_t mul_hi(uint64_t a, uint64_t b)
{
	return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

static uint64_t soft_next_page(struct vm_vcpu *v)
{
	struct soft_state *st = &v->soft;
	uint64_t page;

	switch (st->kind) {
	case WL_SEQ:
		page = st->pos;
		st->pos = page + 1 < v->slice_pages ? page + 1 : 0;
		return page;
	case WL_RANDOM:
		return mul_hi(rng_next(&st->rng), v->slice_pages);
	}
	if (rng_next(&st->rng) < st->hot_thresh)
		return mul_hi(rng_next(&st->rng), st->hot_pages);
	return st->hot_pages + mul_hi(rng_next(&st->rng), v->slice_pages - st->hot_pages);
}

/* Slice page @i: generation, content, write-log bit, then the reports. */
static void soft_write_page(struct vm_vcpu *v, uint64_t i)
{
	struct uiommu_vm *vm = v->vm;
	uint64_t wp = v->slice_first + i, gpa = layout_work_page_gpa(&vm->lay, wp);
	uint64_t gen_gpa = vm->lay.gen + 4 * wp, log_gpa = vm->lay.log + 8 * (wp / 64);
	uint32_t *gen = vm_gpa(vm, gen_gpa);
	uint32_t g = __atomic_load_n(gen, __ATOMIC_RELAXED) + 1;

	if (!g)
		g = 1;
	__atomic_store_n(gen, g, __ATOMIC_RELAXED);
	content_fill(vm_gpa(vm, gpa), gpa, g);
	__atomic_fetch_or((uint64_t *)vm_gpa(vm, log_gpa), 1ull << (wp % 64), __ATOMIC_SEQ_CST);
	stat_add(&v->pages, 1);
	soft_wrote(vm, gpa, VM_PAGE);
	soft_wrote(vm, gen_gpa, 4);
	soft_wrote(vm, log_gpa, 8);
}

static void soft_batch(struct vm_vcpu *v)
{
	struct soft_state *st = &v->soft;
	unsigned int n = 0;

	while (st->left) {
		soft_write_page(v, soft_next_page(v));
		st->left--;
		if (++n % SOFT_CHECK_EVERY == 0 && st->left && vcpu_should_leave(v))
			return;
	}
	st->left = st->npages;
	vcpu_control_exit(v, stat_get(&v->pages));
}

static bool soft_check_page(struct vm_vcpu *v, uint64_t i)
{
	struct uiommu_vm *vm = v->vm;
	uint64_t wp = v->slice_first + i, gpa = layout_work_page_gpa(&vm->lay, wp);
	uint32_t g = __atomic_load_n((uint32_t *)vm_gpa(vm, vm->lay.gen + 4 * wp),
				     __ATOMIC_RELAXED);

	return content_check(vm_gpa(vm, gpa), gpa, g);
}

static void soft_verify(struct vm_vcpu *v)
{
	struct soft_state *st = &v->soft;
	unsigned int n = 0;

	while (st->pos < v->slice_pages) {
		st->bad += !soft_check_page(v, st->pos);
		st->pos++;
		if (++n % SOFT_CHECK_EVERY == 0 && vcpu_should_leave(v))
			return;
	}
	st->kind = WL_IDLE;
	vcpu_verify_done(v, st->ack_seq, v->slice_pages, st->bad);
}

static void *soft_thread(void *arg)
{
	struct vm_vcpu *v = arg;

	while (vcpu_wait_runnable(v)) {
		soft_take_cmd(v);
		if (v->soft.kind == WL_VERIFY)
			soft_verify(v);
		else if (v->soft.kind == WL_IDLE)
			vcpu_idle_exit(v, v->soft.ack_seq);
		else
			soft_batch(v);
	}
	return NULL;
}

static int soft_init(struct uiommu_vm *vm)
{
	(void)vm;
	return 0;
}

static void soft_fini(struct uiommu_vm *vm)
{
	(void)vm;
}

static int soft_boot(struct uiommu_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->lay.nr_vcpus; i++)
		memset(&vm->vcpus[i].soft, 0, sizeof(vm->vcpus[i].soft));
	return 0;
}

/* Idle waits and rate sleeps watch vm->cond, which the caller broadcasts. */
static void soft_kick(struct vm_vcpu *v)
{
	(void)v;
}

static void soft_post(struct vm_vcpu *v, const struct vm_cmd *cmd)
{
	(void)v;
	(void)cmd;
}

static uint64_t soft_pages_written(struct vm_vcpu *v)
{
	return stat_get(&v->pages);
}

static void soft_resync(struct vm_vcpu *v)
{
	v->seen_pages = stat_get(&v->pages);
}

/* The SOFT section: nine little-endian u64, in struct soft_state's order. */
static int soft_save(struct vm_vcpu *v, struct blob_writer *w)
{
	const struct soft_state *st = &v->soft;
	uint64_t f[SOFT_FIELDS] = {st->ack_seq, st->kind,      st->pos,
				   st->rng,     st->left,      st->bad,
				   st->hot_pages, st->hot_thresh, st->npages};

	blob_put_section_u64s(w, SEC_SOFT, f, SOFT_FIELDS);
	return 0;
}

static int soft_decode(struct uiommu_vm *vm, uint32_t tag, const uint8_t *p, uint32_t len,
		       struct vm_state *state, unsigned int vcpu)
{
	struct soft_state *st = &state->vcpu[vcpu].soft;
	uint64_t f[SOFT_FIELDS];

	(void)vm;
	if (tag != SEC_SOFT || blob_get_u64s(p, len, f, SOFT_FIELDS) || f[1] > WL_VERIFY)
		return -EINVAL;
	st->ack_seq = f[0];
	st->kind = (uint32_t)f[1];
	st->pos = f[2];
	st->rng = f[3];
	st->left = f[4];
	st->bad = f[5];
	st->hot_pages = f[6];
	st->hot_thresh = f[7];
	st->npages = f[8];
	return 0;
}

/* A state soft_take_cmd() and the loops can produce, for a command posted. */
static int soft_check_fields(const struct soft_state *st, uint64_t pages, uint64_t seq)
{
	if (st->ack_seq > seq)
		return -EINVAL;
	if (!st->ack_seq) /* never took a command: as booted */
		return st->kind == WL_IDLE && !st->pos && !st->left && !st->bad ? 0 : -EINVAL;
	if (!st->npages || st->npages > VM_MAX_NPAGES || st->left > st->npages)
		return -EINVAL;
	/* A finished verify leaves pos == pages (and the kind idle). */
	if (st->pos > pages || (st->pos == pages && st->kind == WL_SEQ) || st->bad > st->pos)
		return -EINVAL;
	return st->hot_pages < 1 || st->hot_pages >= pages ? -EINVAL : 0;
}

static int soft_check(struct uiommu_vm *vm, struct vm_state *state, unsigned int vcpu)
{
	if (state->vcpu[vcpu].seen != (1u << SEC_HOST | 1u << SEC_SOFT))
		return -EINVAL;
	return soft_check_fields(&state->vcpu[vcpu].soft, layout_slice_pages(&vm->lay, vcpu),
				 state->cmd.seq);
}

static int soft_load(struct vm_vcpu *v, const struct vm_state *state)
{
	v->soft = state->vcpu[v->index].soft;
	return 0;
}

const struct vm_backend_ops vm_soft_ops = {
	.label = "software vCPUs",
	.record_type = REC_SOFT_VCPU,
	.init = soft_init,
	.fini = soft_fini,
	.boot = soft_boot,
	.thread = soft_thread,
	.kick = soft_kick,
	.post = soft_post,
	.pages_written = soft_pages_written,
	.resync = soft_resync,
	.save = soft_save,
	.decode = soft_decode,
	.check = soft_check,
	.load = soft_load,
};
