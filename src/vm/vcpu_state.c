// SPDX-License-Identifier: MIT
/*
 * The vCPU state blob: framing, the parts every backend shares, and the
 * decode that must survive any input.
 *
 * Format (little-endian; 'u64s' are consecutive u64 fields):
 *   header   u32 magic "UVMS", u32 version (1), u32 nr_vcpus, u32 reserved
 *            (0), u64 mem_bytes, u64 dma_bytes, u64 total length of the blob
 *   record   u32 type, u32 payload length, payload
 *     REC_VM (first, once): u64s seq, kind, hot_pages_pct, hot_writes_pct,
 *            pages_per_sec, seed, npages, last_verify_seq (the command)
 *     REC_KVM_VCPU / REC_SOFT_VCPU (then one per vCPU, in order, of the
 *            VM's backend): u32 index, u32 reserved (0), then sections
 *   section  u32 tag, u32 length, bytes; every tag at most once per record
 *     SEC_HOST (both backends): u64s pages, exits, stall_ns,
 *            ring_full_exits, verify_seq, verified, bad
 *     others: vcpu_kvm_state.c, vcpu_soft.c
 *
 * Decode reads through a bounds-checked cursor: every length is compared
 * with what remains before anything is read, and nothing is allocated from
 * a length in the blob (XSAVE bytes are referenced in place). Then every
 * record is checked as a whole (all sections present, fields consistent
 * with the command and the slice). Only a blob that passes all of it is
 * applied; anything else is -EINVAL.
 */
#include <errno.h>
#include <string.h>

#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"

#define HDR_BYTES 40u
#define CMD_FIELDS 8u
#define HOST_FIELDS 7u

struct blob_reader {
	const uint8_t *p;
	uint64_t left;
};

static void blob_grow(struct blob_writer *w, size_t need)
{
	size_t cap = w->cap ? w->cap : 4096;
	uint8_t *buf;

	while (cap < need)
		cap *= 2;
	buf = uiommu__zalloc(cap);
	if (!buf) {
		w->err = -ENOMEM;
		return;
	}
	if (w->len)
		memcpy(buf, w->buf, w->len);
	uiommu__free(w->buf);
	w->buf = buf;
	w->cap = cap;
}

void blob_put(struct blob_writer *w, const void *p, size_t len)
{
	if (!w->err && w->len + len > w->cap)
		blob_grow(w, w->len + len);
	if (w->err)
		return;
	memcpy(w->buf + w->len, p, len);
	w->len += len;
}

void blob_put_u32(struct blob_writer *w, uint32_t v)
{
	blob_put(w, &v, sizeof(v)); /* x86: already little-endian */
}

void blob_put_u64(struct blob_writer *w, uint64_t v)
{
	blob_put(w, &v, sizeof(v));
}

void blob_put_section(struct blob_writer *w, uint32_t tag, const void *p, uint32_t len)
{
	blob_put_u32(w, tag);
	blob_put_u32(w, len);
	blob_put(w, p, len);
}

void blob_put_section_u64s(struct blob_writer *w, uint32_t tag, const uint64_t *f, uint32_t n)
{
	blob_put_section(w, tag, f, n * 8);
}

/* Overwrites the u32 at @off (a length written before it was known). */
static void blob_patch_u32(struct blob_writer *w, size_t off, uint32_t v)
{
	if (!w->err)
		memcpy(w->buf + off, &v, sizeof(v));
}

int blob_get_u64s(const uint8_t *p, uint32_t len, uint64_t *f, uint32_t n)
{
	if (len != n * 8)
		return -EINVAL;
	memcpy(f, p, len);
	return 0;
}

static bool rd_take(struct blob_reader *r, void *dst, uint64_t len)
{
	if (len > r->left)
		return false;
	memcpy(dst, r->p, len);
	r->p += len;
	r->left -= len;
	return true;
}

/* A sub-reader over the next @len bytes. */
static bool rd_sub(struct blob_reader *r, uint64_t len, struct blob_reader *sub)
{
	if (len > r->left)
		return false;
	sub->p = r->p;
	sub->left = len;
	r->p += len;
	r->left -= len;
	return true;
}

static void put_header(struct uiommu_vm *vm, struct blob_writer *w)
{
	blob_put_u32(w, STATE_MAGIC);
	blob_put_u32(w, STATE_VERSION);
	blob_put_u32(w, vm->lay.nr_vcpus);
	blob_put_u32(w, 0);
	blob_put_u64(w, vm->lay.mem_bytes);
	blob_put_u64(w, vm->lay.dma_bytes);
	blob_put_u64(w, 0); /* total length, patched */
}

static void put_vm_record(struct uiommu_vm *vm, struct blob_writer *w)
{
	const struct vm_cmd *c = &vm->cmd;
	uint64_t f[CMD_FIELDS] = {c->seq,  c->kind,   c->hot_pages_pct, c->hot_writes_pct,
				  c->pages_per_sec, c->seed, c->npages, vm->last_verify_seq};

	blob_put_u32(w, REC_VM);
	blob_put_u32(w, CMD_FIELDS * 8);
	blob_put(w, f, sizeof(f));
}

static void put_host_section(struct vm_vcpu *v, struct blob_writer *w)
{
	uint64_t f[HOST_FIELDS] = {
		v->vm->ops->pages_written(v), stat_get(&v->exits),	stat_get(&v->stall_ns),
		stat_get(&v->ring_full_exits), stat_get(&v->verify_seq), stat_get(&v->verified),
		stat_get(&v->bad),
	};

	blob_put_section_u64s(w, SEC_HOST, f, HOST_FIELDS);
}

static int put_vcpu_record(struct vm_vcpu *v, struct blob_writer *w)
{
	size_t len_off;
	int ret;

	blob_put_u32(w, v->vm->ops->record_type);
	len_off = w->len;
	blob_put_u32(w, 0);
	blob_put_u32(w, v->index);
	blob_put_u32(w, 0);
	put_host_section(v, w);
	ret = v->vm->ops->save(v, w);
	blob_patch_u32(w, len_off, (uint32_t)(w->len - len_off - 4));
	return ret;
}

int vm_state_encode(struct uiommu_vm *vm, void **blob, uint64_t *len)
{
	struct blob_writer w = {0};
	uint64_t total;
	unsigned int i;
	int ret = 0;

	put_header(vm, &w);
	put_vm_record(vm, &w);
	for (i = 0; !ret && i < vm->lay.nr_vcpus; i++)
		ret = put_vcpu_record(&vm->vcpus[i], &w);
	if (!ret)
		ret = w.err;
	if (ret)
		goto err_free;
	total = w.len;
	memcpy(w.buf + HDR_BYTES - 8, &total, sizeof(total));
	*blob = w.buf;
	*len = total;
	return 0;

err_free:
	uiommu__free(w.buf);
	return ret;
}

static int decode_header(struct uiommu_vm *vm, struct blob_reader *r, uint64_t len)
{
	uint32_t h[4];
	uint64_t sizes[3];

	if (!rd_take(r, h, sizeof(h)) || !rd_take(r, sizes, sizeof(sizes)))
		return -EINVAL;
	if (h[0] != STATE_MAGIC || h[1] != STATE_VERSION || h[2] != vm->lay.nr_vcpus || h[3])
		return -EINVAL;
	if (sizes[0] != vm->lay.mem_bytes || sizes[1] != vm->lay.dma_bytes || sizes[2] != len)
		return -EINVAL;
	return 0;
}

/* The next record of @type: its payload in @sub. */
static int decode_record(struct blob_reader *r, uint32_t type, struct blob_reader *sub)
{
	uint32_t h[2];

	if (!rd_take(r, h, sizeof(h)) || h[0] != type || !rd_sub(r, h[1], sub))
		return -EINVAL;
	return 0;
}

static int decode_vm_record(struct blob_reader *r, struct vm_state *st)
{
	struct blob_reader sub;
	uint64_t f[CMD_FIELDS];
	struct vm_cmd *c = &st->cmd;

	if (decode_record(r, REC_VM, &sub) || blob_get_u64s(sub.p, (uint32_t)sub.left, f, CMD_FIELDS))
		return -EINVAL;
	if (f[1] > WL_VERIFY || f[2] > 100 || f[3] > 100)
		return -EINVAL;
	if (f[6] > VM_MAX_NPAGES || (f[0] && !f[6]) || f[7] > f[0])
		return -EINVAL;
	c->seq = f[0];
	c->kind = (uint32_t)f[1];
	c->hot_pages_pct = (uint32_t)f[2];
	c->hot_writes_pct = (uint32_t)f[3];
	c->pages_per_sec = f[4];
	c->seed = f[5];
	c->npages = f[6];
	st->last_verify_seq = f[7];
	return 0;
}

static int decode_host(const uint8_t *p, uint32_t len, struct vm_host_state *h)
{
	uint64_t f[HOST_FIELDS];

	if (blob_get_u64s(p, len, f, HOST_FIELDS))
		return -EINVAL;
	h->pages = f[0];
	h->exits = f[1];
	h->stall_ns = f[2];
	h->ring_full_exits = f[3];
	h->verify_seq = f[4];
	h->verified = f[5];
	h->bad = f[6];
	return 0;
}

static int decode_section(struct uiommu_vm *vm, struct blob_reader *r, struct vm_state *st,
			  unsigned int i)
{
	struct vm_vcpu_state *vs = &st->vcpu[i];
	uint32_t h[2];
	struct blob_reader sec;
	int ret;

	if (!rd_take(r, h, sizeof(h)) || !rd_sub(r, h[1], &sec))
		return -EINVAL;
	if (!h[0] || h[0] >= SEC_MAX || vs->seen & 1u << h[0])
		return -EINVAL;
	vs->seen |= 1u << h[0];
	if (h[0] == SEC_HOST)
		ret = decode_host(sec.p, h[1], &vs->host);
	else
		ret = vm->ops->decode(vm, h[0], sec.p, h[1], st, i);
	return ret ? -EINVAL : 0;
}

static int decode_vcpu_record(struct uiommu_vm *vm, struct blob_reader *r, struct vm_state *st,
			      unsigned int i)
{
	struct blob_reader sub;
	uint32_t h[2];

	if (decode_record(r, vm->ops->record_type, &sub) || !rd_take(&sub, h, sizeof(h)))
		return -EINVAL;
	if (h[0] != i || h[1])
		return -EINVAL;
	while (sub.left)
		if (decode_section(vm, &sub, st, i))
			return -EINVAL;
	return 0;
}

/* Host accounting consistent with the command and the slice. */
static int check_host(struct uiommu_vm *vm, const struct vm_state *st, unsigned int i)
{
	const struct vm_host_state *h = &st->vcpu[i].host;

	if (h->verify_seq > st->last_verify_seq || h->bad > h->verified ||
	    h->verified > layout_slice_pages(&vm->lay, i))
		return -EINVAL;
	return 0;
}

int vm_state_decode(struct uiommu_vm *vm, const void *blob, uint64_t len, struct vm_state *st)
{
	struct blob_reader r = {.p = blob, .left = len};
	unsigned int i;

	memset(st, 0, sizeof(*st));
	if (!blob || decode_header(vm, &r, len) || decode_vm_record(&r, st))
		return -EINVAL;
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		if (decode_vcpu_record(vm, &r, st, i))
			return -EINVAL;
	if (r.left)
		return -EINVAL;
	for (i = 0; i < vm->lay.nr_vcpus; i++)
		if (check_host(vm, st, i) || vm->ops->check(vm, st, i))
			return -EINVAL;
	return 0;
}

static void apply_host(struct vm_vcpu *v, const struct vm_host_state *h)
{
	stat_set(&v->pages, h->pages);
	stat_set(&v->exits, h->exits);
	stat_set(&v->stall_ns, h->stall_ns);
	stat_set(&v->ring_full_exits, h->ring_full_exits);
	stat_set(&v->verify_seq, h->verify_seq);
	stat_set(&v->verified, h->verified);
	stat_set(&v->bad, h->bad);
	v->next_ns = 0;
	v->vm->ops->resync(v);
}

/* The VM is paused; the caller holds no lock (vCPU ioctls may be slow). */
int vm_state_apply(struct uiommu_vm *vm, const struct vm_state *st)
{
	unsigned int i;
	int ret;

	for (i = 0; i < vm->lay.nr_vcpus; i++) {
		ret = vm->ops->load(&vm->vcpus[i], st);
		if (ret)
			return ret;
		apply_host(&vm->vcpus[i], &st->vcpu[i].host);
	}
	pthread_mutex_lock(&vm->lock);
	vm->cmd = st->cmd;
	vm->last_verify_seq = st->last_verify_seq;
	vm_set_rates(vm);
	vm->runnable = true;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}
