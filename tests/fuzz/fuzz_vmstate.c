// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the vCPU state blob decoder (vm_state_decode() in
 * src/vm/vcpu_state.c, the KVM and software sections it hands on) and the
 * public path a receiver takes, uiommu_vm_restore_vcpus().
 *
 * Two VMs shaped as fuzz_vm.h says, made once: a real incoming VM with
 * software vCPUs (so the target runs without /dev/kvm), into which every
 * input is restored, and a copy of its layout posing as a KVM VM (the KVM
 * backend's ops, an XSAVE size and MSR list as generous as a host can have),
 * which only decodes: restoring needs KVM, decoding does not. Each input is
 * copied into a heap buffer of exactly its size, so ASan sees any read past
 * the blob.
 *
 * Oracle, beyond "does not crash":
 *  - restore and decode return 0 or -EINVAL, and no blob is both a software
 *    and a KVM blob;
 *  - a refused restore changes nothing: the VM saves the same blob as
 *    before;
 *  - an accepted restore round-trips: what the VM then saves decodes to
 *    the same state as the input, and restores again;
 *  - an accepted KVM blob has every section, its XSAVE area inside the
 *    blob, and encoding the decoded state again (as kvm_state_save lays it
 *    out) decodes to the same state.
 *
 * Built with libFuzzer when the compiler is clang (fuzz_vmstate), and linked
 * with replay.c into replay_vmstate, which every build runs as a test over
 * corpus/vmstate (seeds saved by gen_vm_corpus from real VMs).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_vm.h"
#include "vm/vm_core.h"

#define FUZZ_XSAVE_MAX (64u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The MSRs vcpu_kvm_state.c saves when KVM lists them: the most a blob may carry. */
static const uint32_t fuzz_msrs[] = {
    0x10,	0x174,	    0x175,	0x176,	    0xc0000081, 0xc0000082,
    0xc0000083, 0xc0000084, 0xc0000102, 0xc0000103, 0x277,	0x1a0,
};

static struct uiommu_vm *soft_vm;
static struct uiommu_vm kvm_vm; /* decode only: no fd, no lock, no thread is used */
static struct vm_state st_a, st_b;

static void setup(void)
{
	struct uiommu_vm_cfg cfg = fuzz_vm_cfg(UIOMMU_VM_SOFT, true);

	ORACLE(!uiommu_vm_create(&cfg, &soft_vm));
	kvm_vm.cfg = cfg;
	kvm_vm.cfg.backend = UIOMMU_VM_KVM;
	kvm_vm.ops = &vm_kvm_ops;
	kvm_vm.lay = soft_vm->lay;
	kvm_vm.kvm.xsave_bytes = FUZZ_XSAVE_MAX;
	kvm_vm.kvm.xsave2 = true;
	kvm_vm.kvm.nr_msrs = ARRAY_SIZE(fuzz_msrs);
	memcpy(kvm_vm.kvm.msrs, fuzz_msrs, sizeof(fuzz_msrs));
}

/*
 * Decoded states compare with memcmp: decode zeroes the state first and
 * then only assigns fields, so padding stays zero. XSAVE is referenced in
 * the blob it came from: compared by content, then left out.
 */
static bool states_equal(struct vm_state *a, struct vm_state *b)
{
	for (unsigned int i = 0; i < UIOMMU_VM_MAX_VCPUS; i++) {
		struct kvm_vcpu_state *ka = &a->vcpu[i].kvm, *kb = &b->vcpu[i].kvm;

		if (ka->xsave_len != kb->xsave_len ||
		    (ka->xsave_len && memcmp(ka->xsave, kb->xsave, ka->xsave_len)))
			return false;
		ka->xsave = kb->xsave = NULL;
	}
	return !memcmp(a, b, sizeof(*a));
}

static void check_soft_accepted(const uint8_t *blob, size_t size)
{
	uint64_t len;
	void *saved;

	ORACLE(!uiommu_vm_save_vcpus(soft_vm, &saved, &len));
	ORACLE(!vm_state_decode(soft_vm, blob, size, &st_a));
	ORACLE(!vm_state_decode(soft_vm, saved, len, &st_b));
	ORACLE(states_equal(&st_a, &st_b));
	ORACLE(!uiommu_vm_restore_vcpus(soft_vm, saved, len));
	free(saved);
}

static bool check_soft(const uint8_t *blob, size_t size)
{
	uint64_t before_len, after_len;
	void *before, *after;
	int rc;

	ORACLE(!uiommu_vm_save_vcpus(soft_vm, &before, &before_len));
	rc = uiommu_vm_restore_vcpus(soft_vm, blob, size);
	ORACLE(rc == 0 || rc == -EINVAL);
	if (!rc) {
		check_soft_accepted(blob, size);
	} else {
		ORACLE(!uiommu_vm_save_vcpus(soft_vm, &after, &after_len));
		ORACLE(after_len == before_len && !memcmp(before, after, after_len));
		free(after);
	}
	free(before);
	return !rc;
}

static void put_kvm_vcpu(struct blob_writer *w, const struct vm_vcpu_state *vs, unsigned int i)
{
	const struct vm_host_state *h = &vs->host;
	const uint64_t host[] = {h->pages,	h->exits,    h->stall_ns, h->ring_full_exits,
				 h->verify_seq, h->verified, h->bad};
	const struct kvm_vcpu_state *k = &vs->kvm;
	size_t len_off;

	blob_put_u32(w, REC_KVM_VCPU);
	len_off = w->len;
	blob_put_u32(w, 0);
	blob_put_u32(w, i);
	blob_put_u32(w, 0);
	blob_put_section_u64s(w, SEC_HOST, host, ARRAY_SIZE(host));
	blob_put_section(w, SEC_REGS, &k->regs, sizeof(k->regs));
	blob_put_section(w, SEC_SREGS, &k->sregs, sizeof(k->sregs));
	blob_put_section(w, SEC_XSAVE, k->xsave, k->xsave_len);
	blob_put_section(w, SEC_XCRS, &k->xcrs, sizeof(k->xcrs));
	blob_put_section(w, SEC_MSRS, k->msrs, k->nr_msrs * (uint32_t)sizeof(k->msrs[0]));
	blob_put_section(w, SEC_EVENTS, &k->events, sizeof(k->events));
	blob_put_section(w, SEC_DEBUGREGS, &k->debugregs, sizeof(k->debugregs));
	if (!w->err)
		memcpy(w->buf + len_off, &(uint32_t){(uint32_t)(w->len - len_off - 4)}, 4);
}

/* @st as vm_state_encode and kvm_state_save would lay it out. */
static void put_kvm_blob(struct blob_writer *w, const struct vm_state *st)
{
	const struct vm_cmd *c = &st->cmd;
	const uint64_t cmd[] = {c->seq,		  c->kind, c->hot_pages_pct, c->hot_writes_pct,
				c->pages_per_sec, c->seed, c->npages,	     st->last_verify_seq};

	blob_put_u32(w, STATE_MAGIC);
	blob_put_u32(w, STATE_VERSION);
	blob_put_u32(w, kvm_vm.lay.nr_vcpus);
	blob_put_u32(w, 0);
	blob_put_u64(w, kvm_vm.lay.mem_bytes);
	blob_put_u64(w, kvm_vm.lay.dma_bytes);
	blob_put_u64(w, 0);
	blob_put_u32(w, REC_VM);
	blob_put_u32(w, sizeof(cmd));
	blob_put(w, cmd, sizeof(cmd));
	for (unsigned int i = 0; i < kvm_vm.lay.nr_vcpus; i++)
		put_kvm_vcpu(w, &st->vcpu[i], i);
	if (!w->err)
		memcpy(w->buf + 32, &(uint64_t){w->len}, 8);
}

static bool check_kvm(const uint8_t *blob, size_t size)
{
	struct blob_writer w = {0};
	int rc = vm_state_decode(&kvm_vm, blob, size, &st_a);

	ORACLE(rc == 0 || rc == -EINVAL);
	if (rc)
		return false;
	for (unsigned int i = 0; i < kvm_vm.lay.nr_vcpus; i++) {
		const struct kvm_vcpu_state *k = &st_a.vcpu[i].kvm;

		ORACLE(k->xsave >= blob && k->xsave_len <= size - (size_t)(k->xsave - blob));
		ORACLE(k->xsave_len <= kvm_vm.kvm.xsave_bytes && k->nr_msrs <= VM_MAX_MSRS);
	}
	put_kvm_blob(&w, &st_a);
	ORACLE(!w.err);
	ORACLE(!vm_state_decode(&kvm_vm, w.buf, w.len, &st_b));
	ORACLE(states_equal(&st_a, &st_b));
	uiommu__free(w.buf);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *blob = malloc(size ? size : 1);
	bool soft_ok, kvm_ok;

	if (!soft_vm)
		setup();
	ORACLE(blob);
	memcpy(blob, data, size);
	soft_ok = check_soft(blob, size);
	kvm_ok = check_kvm(blob, size);
	ORACLE(!(soft_ok && kvm_ok));
	free(blob);
	return 0;
}
