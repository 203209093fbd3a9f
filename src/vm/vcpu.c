// SPDX-License-Identifier: MIT
/*
 * What every vCPU thread shares, whatever runs it (KVM_RUN or a software
 * loop): parking while the VM is paused, and the exits where the host does
 * its accounting.
 *
 * Run state (vm->lock): a vCPU thread parks when the VM is paused or the
 * vCPU failed (an unexpected exit), and leaves when the VM stops. Before it
 * parks or leaves, the backend's quiesce hook makes its state stable (KVM
 * completes a pending port exit), so a paused or stopped VM can be saved. pause() waits until every started vCPU is parked, so a
 * paused VM's vCPU state belongs to the caller.
 *
 * Rate accounting at a control exit, n pages written since the previous one:
 *   token bucket   next += n / (rate * (1 - f)), next never behind
 *                  now - VM_BURST_NS (a vCPU saves at most 10 ms of credit,
 *                  enough to catch up after being descheduled), sleep until
 *                  next;
 *   throttle f     sleep (time in the guest since the last exit) * f/(1-f);
 * the vCPU sleeps until the later of the two, and the time slept is stall.
 * The rate is what the workload makes of a whole vCPU, so a throttle that
 * holds the vCPU back f of the time scales it by (1 - f), as the throttle
 * of a CPU-bound guest would. Of the time slept, the throttle's share is
 * counted apart (throttle_ns, the guest stall a migration reports): all of
 * it without a rate, else f of the bucket's step (the step at the scaled
 * rate exceeds the unthrottled one by exactly that), at most what was
 * slept.
 * Sleeps end early when the VM is paused or stopped (the rest of a rate
 * sleep is owed at the next exit, since next stays ahead).
 *
 * Example: 2 vCPUs at 20000 pages/s: each gets 10000 pages/s, writes 5
 * pages between control exits (one every 0.5 ms), and if it wrote them in
 * 50 us it sleeps 450 us per exit: stall grows by ~0.9 s per second.
 */
#include <errno.h>
#include <time.h>

#include "vm/vm_core.h"

uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct timespec ns_to_ts(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	return ts;
}

static bool vcpu_must_park(struct vm_vcpu *v)
{
	return !v->vm->stopping && (v->vm->paused || v->failed);
}

static void vcpu_park_locked(struct vm_vcpu *v)
{
	struct uiommu_vm *vm = v->vm;

	v->parked = true;
	vm->nr_parked++;
	pthread_cond_broadcast(&vm->cond);
	while (vcpu_must_park(v))
		pthread_cond_wait(&vm->cond, &vm->lock);
	v->parked = false;
	vm->nr_parked--;
}

bool vcpu_wait_runnable(struct vm_vcpu *v)
{
	struct uiommu_vm *vm = v->vm;
	bool run;

	pthread_mutex_lock(&vm->lock);
	if (vcpu_must_park(v) || vm->stopping) {
		pthread_mutex_unlock(&vm->lock);
		if (vm->ops->quiesce)
			vm->ops->quiesce(v);
		pthread_mutex_lock(&vm->lock);
		if (vcpu_must_park(v))
			vcpu_park_locked(v);
		v->entry_ns = vm_now_ns();
	}
	run = !vm->stopping;
	if (run && vm->ops->unkick)
		vm->ops->unkick(v);
	pthread_mutex_unlock(&vm->lock);
	return run;
}

bool vcpu_should_leave(struct vm_vcpu *v)
{
	bool leave;

	pthread_mutex_lock(&v->vm->lock);
	leave = v->vm->stopping || v->vm->paused || v->failed;
	pthread_mutex_unlock(&v->vm->lock);
	return leave;
}

void vcpu_fail(struct vm_vcpu *v)
{
	stat_add(&v->unexpected, 1);
	pthread_mutex_lock(&v->vm->lock);
	v->failed = true;
	pthread_mutex_unlock(&v->vm->lock);
}

/*
 * Sleeps until @until_ns unless the VM is paused or stopped meanwhile (or
 * @seq_differs and the posted command is no longer @seq). Returns the time
 * slept.
 */
static uint64_t vcpu_sleep(struct vm_vcpu *v, uint64_t until_ns, bool seq_differs, uint64_t seq)
{
	struct uiommu_vm *vm = v->vm;
	struct timespec ts = ns_to_ts(until_ns);
	uint64_t start = vm_now_ns();

	pthread_mutex_lock(&vm->lock);
	while (!vm->stopping && !vm->paused && !(seq_differs && vm->cmd.seq != seq) &&
	       vm_now_ns() < until_ns)
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&vm->lock);
	return vm_now_ns() - start;
}

/*
 * The token bucket's deadline for @n more pages at the rate scaled by the
 * throttle @f, or 0 without a rate limit; *@thr_ns: the throttle's share of
 * the step.
 */
static uint64_t vcpu_rate_deadline(struct vm_vcpu *v, uint64_t n, uint64_t now, double f,
				   uint64_t *thr_ns)
{
	uint64_t rate = stat_get(&v->rate_pps);
	double step;

	if (!rate)
		return 0;
	if (v->next_ns + VM_BURST_NS < now)
		v->next_ns = now - VM_BURST_NS;
	step = (double)n * 1e9 / ((double)rate * (1 - f));
	v->next_ns += (uint64_t)step;
	*thr_ns = (uint64_t)(step * f);
	return v->next_ns;
}

static uint64_t vcpu_throttle_deadline(struct vm_vcpu *v, uint64_t now, double f)
{
	if (f <= 0 || now <= v->entry_ns)
		return 0;
	return now + (uint64_t)((double)(now - v->entry_ns) * f / (1 - f));
}

void vcpu_control_exit(struct vm_vcpu *v, uint64_t pages_total)
{
	double f = (double)stat_get(&v->vm->throttle_ppm) / 1e6;
	uint64_t now = vm_now_ns(), n = pages_total - v->seen_pages, thr = UINT64_MAX, slept;
	uint64_t until = u64_max(vcpu_rate_deadline(v, n, now, f, &thr),
				 vcpu_throttle_deadline(v, now, f));

	v->seen_pages = pages_total;
	stat_add(&v->exits, 1);
	if (until > now) {
		slept = vcpu_sleep(v, until, false, 0);
		stat_add(&v->stall_ns, slept);
		if (f > 0)
			stat_add(&v->throttle_ns, u64_min(slept, thr));
	}
	v->entry_ns = vm_now_ns();
}

void vcpu_idle_exit(struct vm_vcpu *v, uint64_t ack_seq)
{
	stat_add(&v->exits, 1);
	vcpu_sleep(v, vm_now_ns() + VM_IDLE_WAIT_NS, true, ack_seq);
	v->entry_ns = vm_now_ns();
}

void vcpu_verify_done(struct vm_vcpu *v, uint64_t seq, uint64_t verified, uint64_t bad)
{
	stat_add(&v->exits, 1);
	stat_set(&v->verified, verified);
	stat_set(&v->bad, bad);
	stat_set(&v->verify_seq, seq);
}

void vcpu_ring_full(struct vm_vcpu *v)
{
	struct uiommu_vm *vm = v->vm;

	stat_add(&v->ring_full_exits, 1);
	if (vm->cfg.ring_full)
		vm->cfg.ring_full(vm->cfg.ring_full_opaque, v->index);
	else
		vcpu_sleep(v, vm_now_ns() + 1000000ull, false, 0);
}

/* Every vCPU's share of vm->cmd's rate; under vm->lock. */
void vm_set_rates(struct uiommu_vm *vm)
{
	uint64_t rate = vm->cmd.pages_per_sec / vm->lay.nr_vcpus;
	unsigned int i;

	if (vm->cmd.pages_per_sec && !rate)
		rate = 1;
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		stat_set(&vm->vcpus[i].rate_pps, rate);
}

/* Posts vm->cmd to every vCPU and wakes the idle ones; under vm->lock. */
void vm_post_cmd(struct uiommu_vm *vm)
{
	unsigned int i;

	vm_set_rates(vm);
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		vm->ops->post(&vm->vcpus[i], &vm->cmd);
	pthread_cond_broadcast(&vm->cond);
}

/* Pages between control exits: ~VM_EXIT_INTERVAL_NS at the per-vCPU rate. */
uint64_t vm_cmd_npages(uint64_t pages_per_sec, unsigned int nr_vcpus)
{
	uint64_t n;

	if (!pages_per_sec)
		return VM_MAX_NPAGES;
	n = (uint64_t)((double)pages_per_sec / nr_vcpus * (double)VM_EXIT_INTERVAL_NS / 1e9);
	return n < 1 ? 1 : n > VM_MAX_NPAGES ? VM_MAX_NPAGES : n;
}

void vm_cmd_slice(const struct vm_cmd *cmd, uint64_t slice_pages, unsigned int vcpu,
		  struct vm_cmd_slice *out)
{
	uint64_t hot = slice_pages * cmd->hot_pages_pct / 100;

	/* Both parts non-empty, so that the guest never draws from an empty one. */
	out->hot_pages = hot < 1 ? 1 : hot > slice_pages - 1 ? slice_pages - 1 : hot;
	if (cmd->hot_writes_pct >= 100)
		out->hot_thresh = UINT64_MAX;
	else
		out->hot_thresh = (uint64_t)((double)cmd->hot_writes_pct / 100.0 * 18446744073709551616.0);
	out->seed = cmd->seed ^ ((uint64_t)(vcpu + 1) * 0xd1b54a32d192ed03ull);
}

static int vm_thread_create(struct vm_vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, v->vm->ops->thread, v);

	return -ret;
}

static void vm_threads_join(struct uiommu_vm *vm, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
}

/* Under vm->lock: sets stopping, kicks every thread; the caller joins. */
void vm_stop_locked(struct uiommu_vm *vm, unsigned int nr_threads)
{
	unsigned int i;

	vm->stopping = true;
	for (i = 0; i < nr_threads; i++)
		vm->ops->kick(&vm->vcpus[i]);
	pthread_cond_broadcast(&vm->cond);
}

/* Under vm->lock, which the new threads wait for; dropped only to undo a failure. */
int vm_threads_start(struct uiommu_vm *vm)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < vm->lay.nr_vcpus; i++) {
		vm->vcpus[i].entry_ns = vm_now_ns();
		ret = vm_thread_create(&vm->vcpus[i]);
		if (ret)
			goto err_stop;
	}
	vm->started = true;
	return 0;

err_stop:
	vm_stop_locked(vm, i);
	pthread_mutex_unlock(&vm->lock);
	vm_threads_join(vm, i);
	pthread_mutex_lock(&vm->lock);
	vm->stopping = false;
	return ret;
}

void vm_threads_join_all(struct uiommu_vm *vm)
{
	vm_threads_join(vm, vm->lay.nr_vcpus);
}
