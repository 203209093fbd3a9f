// SPDX-License-Identifier: MIT
/*
 * The state of a KVM vCPU in the state blob: getting it from KVM, the
 * sections that carry it, their validation, and setting it back.
 *
 * Sections of a KVM vCPU record (vcpu_state.c frames them), each exactly
 * once: REGS, SREGS, XCRS, EVENTS, DEBUGREGS (the kernel structs as they are:
 * x86-64 little-endian, fixed sizes), XSAVE (KVM_GET_XSAVE2's buffer when
 * KVM_CAP_XSAVE2 gives a size, else KVM_GET_XSAVE's 4096 bytes; restore
 * accepts 4096 bytes up to this VM's size and pads with zeros), MSRS
 * (struct kvm_msr_entry, 16 bytes each: only the MSRs this VM saves, see
 * msr_wanted), and HOST (vcpu_state.c).
 *
 * Validation is of form, not of meaning: lengths, counts, reserved and
 * padding fields zero, flags within what the kernel defines, MSR indices
 * from the list, no pending interrupt bitmap (there is no irqchip). Values
 * KVM can judge better (control registers, segment attributes) are left to
 * KVM, which refuses them with EINVAL on restore.
 *
 * Restore order follows QEMU: regs, XSAVE, XCRs, sregs, MSRs, events, debug
 * registers.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vm/vm_core.h"

#define SEC_KVM_ALL                                                                          \
	(1u << SEC_HOST | 1u << SEC_REGS | 1u << SEC_SREGS | 1u << SEC_XSAVE | 1u << SEC_XCRS | \
	 1u << SEC_MSRS | 1u << SEC_EVENTS | 1u << SEC_DEBUGREGS)
#define EVENTS_VALID_FLAGS                                                             \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |           \
	 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_PAYLOAD | \
	 KVM_VCPUEVENT_VALID_TRIPLE_FAULT)

/* struct kvm_msrs with room for VM_MAX_MSRS entries. */
union msrs_buf {
	struct kvm_msrs hdr;
	uint8_t raw[sizeof(struct kvm_msrs) + VM_MAX_MSRS * sizeof(struct kvm_msr_entry)];
};

/* The MSRs in use by a guest like ours, saved when KVM lists them. */
static const uint32_t msr_wanted[] = {
	0x10,       /* TSC */
	0x174,      /* SYSENTER_CS */
	0x175,      /* SYSENTER_ESP */
	0x176,      /* SYSENTER_EIP */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SFMASK */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
	0x277,      /* PAT */
	0x1a0,      /* MISC_ENABLE */
};

static bool msr_listed(const struct kvm_msr_list *list, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

int kvm_query_msrs(struct uiommu_vm *vm)
{
	struct kvm_msr_list probe = {.nmsrs = 0}, *list;
	size_t i;

	if (!ioctl(vm->kvm.kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe))
		return 0; /* KVM lists no MSR at all */
	if (errno != E2BIG)
		return -errno;
	list = uiommu__zalloc(sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return -ENOMEM;
	list->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm.kvm_fd, KVM_GET_MSR_INDEX_LIST, list)) {
		uiommu__free(list);
		return -errno;
	}
	for (i = 0; i < ARRAY_SIZE(msr_wanted); i++)
		if (msr_listed(list, msr_wanted[i]))
			vm->kvm.msrs[vm->kvm.nr_msrs++] = msr_wanted[i];
	uiommu__free(list);
	return 0;
}

static bool vm_saves_msr(const struct uiommu_vm *vm, uint32_t index)
{
	uint32_t i;

	for (i = 0; i < vm->kvm.nr_msrs; i++)
		if (vm->kvm.msrs[i] == index)
			return true;
	return false;
}

/* KVM_GET_MSRS of every saved MSR into @out (room for VM_MAX_MSRS). */
static int kvm_get_msrs(struct vm_vcpu *v, struct kvm_msr_entry *out)
{
	struct uiommu_vm *vm = v->vm;
	union msrs_buf m;
	uint32_t i;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = vm->kvm.nr_msrs;
	for (i = 0; i < vm->kvm.nr_msrs; i++)
		m.hdr.entries[i].index = vm->kvm.msrs[i];
	ret = ioctl(v->fd, KVM_GET_MSRS, &m);
	if (ret < 0)
		return -errno;
	if ((uint32_t)ret != vm->kvm.nr_msrs)
		return -EIO;
	memcpy(out, m.hdr.entries, vm->kvm.nr_msrs * sizeof(*out));
	return 0;
}

static int kvm_get_xsave(struct vm_vcpu *v, void *buf)
{
	unsigned long req = v->vm->kvm.xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;

	return ioctl(v->fd, req, buf) ? -errno : 0;
}

/* Reads every piece of state into @st (the XSAVE area into @xsave). */
static int kvm_get_state(struct vm_vcpu *v, struct kvm_vcpu_state *st, void *xsave)
{
	if (ioctl(v->fd, KVM_GET_REGS, &st->regs) || ioctl(v->fd, KVM_GET_SREGS, &st->sregs) ||
	    ioctl(v->fd, KVM_GET_XCRS, &st->xcrs) ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &st->events) ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &st->debugregs))
		return -errno;
	st->nr_msrs = v->vm->kvm.nr_msrs;
	return kvm_get_msrs(v, st->msrs) ?: kvm_get_xsave(v, xsave);
}

int kvm_state_save(struct vm_vcpu *v, struct blob_writer *w)
{
	uint32_t xbytes = v->vm->kvm.xsave_bytes;
	struct kvm_vcpu_state *st;
	void *xsave;
	int ret = -ENOMEM;

	st = uiommu__zalloc(sizeof(*st));
	xsave = uiommu__zalloc(xbytes);
	if (!st || !xsave)
		goto out_free;
	ret = kvm_get_state(v, st, xsave);
	if (ret)
		goto out_free;
	blob_put_section(w, SEC_REGS, &st->regs, sizeof(st->regs));
	blob_put_section(w, SEC_SREGS, &st->sregs, sizeof(st->sregs));
	blob_put_section(w, SEC_XSAVE, xsave, xbytes);
	blob_put_section(w, SEC_XCRS, &st->xcrs, sizeof(st->xcrs));
	blob_put_section(w, SEC_MSRS, st->msrs, st->nr_msrs * (uint32_t)sizeof(st->msrs[0]));
	blob_put_section(w, SEC_EVENTS, &st->events, sizeof(st->events));
	blob_put_section(w, SEC_DEBUGREGS, &st->debugregs, sizeof(st->debugregs));
out_free:
	uiommu__free(xsave);
	uiommu__free(st);
	return ret;
}

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static int decode_fixed(void *dst, size_t size, const uint8_t *p, uint32_t len)
{
	if (len != size)
		return -EINVAL;
	memcpy(dst, p, size);
	return 0;
}

static int decode_xcrs(struct kvm_xcrs *x, const uint8_t *p, uint32_t len)
{
	uint32_t i;

	if (decode_fixed(x, sizeof(*x), p, len))
		return -EINVAL;
	if (x->nr_xcrs > 1 || x->flags || !all_zero(x->padding, sizeof(x->padding)))
		return -EINVAL;
	for (i = 0; i < KVM_MAX_XCRS; i++)
		if (x->xcrs[i].xcr || x->xcrs[i].reserved ||
		    (i >= x->nr_xcrs && x->xcrs[i].value))
			return -EINVAL;
	return 0;
}

static int decode_msrs(const struct uiommu_vm *vm, struct kvm_vcpu_state *st, const uint8_t *p,
		       uint32_t len)
{
	uint32_t i, n = len / (uint32_t)sizeof(st->msrs[0]);

	if (len % sizeof(st->msrs[0]) || n > VM_MAX_MSRS)
		return -EINVAL;
	memcpy(st->msrs, p, len);
	for (i = 0; i < n; i++)
		if (st->msrs[i].reserved || !vm_saves_msr(vm, st->msrs[i].index))
			return -EINVAL;
	st->nr_msrs = n;
	return 0;
}

static int decode_events(struct kvm_vcpu_events *e, const uint8_t *p, uint32_t len)
{
	if (decode_fixed(e, sizeof(*e), p, len))
		return -EINVAL;
	if (e->flags & ~(uint32_t)EVENTS_VALID_FLAGS || e->exception.nr >= 32 || e->nmi.pad ||
	    !all_zero(e->reserved, sizeof(e->reserved)))
		return -EINVAL;
	return 0;
}

static int decode_debugregs(struct kvm_debugregs *d, const uint8_t *p, uint32_t len)
{
	if (decode_fixed(d, sizeof(*d), p, len))
		return -EINVAL;
	return d->flags || !all_zero(d->reserved, sizeof(d->reserved)) ? -EINVAL : 0;
}

static int decode_xsave(const struct uiommu_vm *vm, struct kvm_vcpu_state *st, const uint8_t *p,
			uint32_t len)
{
	if (len < sizeof(struct kvm_xsave) || len > vm->kvm.xsave_bytes || len % 4)
		return -EINVAL;
	st->xsave = p;
	st->xsave_len = len;
	return 0;
}

int kvm_state_decode(struct uiommu_vm *vm, uint32_t tag, const uint8_t *p, uint32_t len,
		     struct vm_state *state, unsigned int vcpu)
{
	struct kvm_vcpu_state *st = &state->vcpu[vcpu].kvm;

	switch (tag) {
	case SEC_REGS:
		return decode_fixed(&st->regs, sizeof(st->regs), p, len);
	case SEC_SREGS:
		if (decode_fixed(&st->sregs, sizeof(st->sregs), p, len))
			return -EINVAL;
		return all_zero(st->sregs.interrupt_bitmap, sizeof(st->sregs.interrupt_bitmap))
			       ? 0
			       : -EINVAL;
	case SEC_XSAVE:
		return decode_xsave(vm, st, p, len);
	case SEC_XCRS:
		return decode_xcrs(&st->xcrs, p, len);
	case SEC_MSRS:
		return decode_msrs(vm, st, p, len);
	case SEC_EVENTS:
		return decode_events(&st->events, p, len);
	case SEC_DEBUGREGS:
		return decode_debugregs(&st->debugregs, p, len);
	}
	return -EINVAL;
}

int kvm_state_check(struct uiommu_vm *vm, struct vm_state *state, unsigned int vcpu)
{
	(void)vm;
	return state->vcpu[vcpu].seen == SEC_KVM_ALL ? 0 : -EINVAL;
}

static int kvm_set_msrs(struct vm_vcpu *v, const struct kvm_vcpu_state *st)
{
	union msrs_buf m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = st->nr_msrs;
	memcpy(m.hdr.entries, st->msrs, st->nr_msrs * sizeof(st->msrs[0]));
	ret = ioctl(v->fd, KVM_SET_MSRS, &m);
	if (ret < 0)
		return -errno;
	return (uint32_t)ret == st->nr_msrs ? 0 : -EINVAL;
}

static int kvm_set_xsave(struct vm_vcpu *v, const struct kvm_vcpu_state *st)
{
	void *buf = uiommu__zalloc(v->vm->kvm.xsave_bytes);
	int ret;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, st->xsave, st->xsave_len);
	ret = ioctl(v->fd, KVM_SET_XSAVE, buf) ? -errno : 0;
	uiommu__free(buf);
	return ret;
}

int kvm_state_load(struct vm_vcpu *v, const struct vm_state *state)
{
	const struct kvm_vcpu_state *st = &state->vcpu[v->index].kvm;
	struct kvm_vcpu_events events = st->events;
	int ret;

	if (ioctl(v->fd, KVM_SET_REGS, &st->regs))
		return -errno;
	ret = kvm_set_xsave(v, st);
	if (ret)
		return ret;
	if (ioctl(v->fd, KVM_SET_XCRS, &st->xcrs) || ioctl(v->fd, KVM_SET_SREGS, &st->sregs))
		return -errno;
	ret = kvm_set_msrs(v, st);
	if (ret)
		return ret;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &events) ||
	    ioctl(v->fd, KVM_SET_DEBUGREGS, &st->debugregs))
		return -errno;
	return 0;
}
