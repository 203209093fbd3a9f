// SPDX-License-Identifier: MIT
/*
 * Guest memory layout and the tables the host builds for the guest.
 *
 * The system area starts at GPA 0 (pages, in order):
 *   0          unused
 *   0x1000     GDT: null, kernel code, kernel data, user data, user code,
 *              then one 16-byte TSS descriptor per vCPU (guest_abi.h SEL_*)
 *   0x2000     IDT: 256 interrupt gates to the program's exception stubs
 *   0x3000     TSSs, 128 bytes apart; rsp0 = the vCPU's kernel stack
 *   0x4000     PML4, then the PDPT, then one page directory per GiB:
 *              identity map of all guest RAM with 2 MiB pages, every entry
 *              present, writable and user (the workload runs at CPL3)
 *   code       the guest program (guest/guest.S)
 *   vcpu_area  per vCPU: control block, kernel stack, user stack
 *   gen        u32 generation per work page
 *   log        write log, one bit per work page, in 64-bit words
 * The area is UIOMMU_VM_SYS_BYTES long, or grows in 2 MiB steps when the
 * generation table and the log of a large VM need it; the work region
 * follows it and the DMA region ends guest RAM.
 *
 * Example: 256 MiB, no DMA, 2 vCPUs: code at 0x7000, vCPU areas at 0x8000
 * and 0xb000, generation table at 0xe000 (65024 work pages, 254 KiB),
 * log at 0x4e000 (8 KiB), work region [2 MiB, 256 MiB).
 */
#include <errno.h>
#include <string.h>

#include "vm/guest/guest_abi.h"
#include "vm/vm_core.h"


#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull
#define PTE_TABLE (PTE_P | PTE_RW | PTE_US)
#define TSS_STRIDE 128ull
#define TSS_IOMAP 104ull   /* I/O permission bitmap right after the TSS proper */
#define TSS_IOMAP_BYTES 8u /* ports 0-63, then a terminating 0xff byte */
_Static_assert(PORT_EXC + 3 < 8 * TSS_IOMAP_BYTES, "guest ports outside the I/O bitmap");
_Static_assert(TSS_IOMAP + TSS_IOMAP_BYTES == VM_TSS_LIMIT, "TSS limit");

#define GDT_NR_FIXED 5u

static uint64_t round_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

static uint64_t blob_u64(size_t off)
{
	uint64_t v;

	memcpy(&v, uiommu__guest_blob + off, sizeof(v));
	return v;
}

/* The program's header: magic, version, entry and stubs inside the binary. */
static int layout_check_program(struct vm_layout *l)
{
	uint64_t entry, stubs;

	if (uiommu__guest_blob_len < 32 || blob_u64(GUEST_HDR_MAGIC) != GUEST_MAGIC ||
	    blob_u64(GUEST_HDR_VERSION) != GUEST_ABI_VERSION)
		return -EINVAL;
	entry = blob_u64(GUEST_HDR_ENTRY);
	stubs = blob_u64(GUEST_HDR_STUBS);
	/* The last stub (the one for vectors 32-255) must start inside the binary. */
	if (entry >= uiommu__guest_blob_len || stubs >= uiommu__guest_blob_len ||
	    uiommu__guest_blob_len - stubs <= (uint64_t)(GUEST_NR_STUBS - 1) * GUEST_STUB_STRIDE)
		return -EINVAL;
	l->code_bytes = round_up(uiommu__guest_blob_len, VM_PAGE);
	return 0;
}

static int layout_check_cfg(const struct uiommu_vm_cfg *cfg)
{
	if (!cfg->mem_bytes || cfg->mem_bytes % VM_2M || cfg->mem_bytes > VM_MAX_MEM)
		return -EINVAL;
	if (cfg->dma_bytes % VM_2M || cfg->dma_bytes >= cfg->mem_bytes)
		return -EINVAL;
	if (!cfg->nr_vcpus || cfg->nr_vcpus > UIOMMU_VM_MAX_VCPUS)
		return -EINVAL;
	return 0;
}

/* The fixed part: everything up to the generation table. */
static void layout_fixed(struct vm_layout *l)
{
	l->gdt = 0x1000;
	l->idt = 0x2000;
	l->tss = 0x3000;
	l->pml4 = 0x4000;
	l->pdpt = 0x5000;
	l->pd = 0x6000;
	l->nr_pd = (l->mem_bytes + (1ull << 30) - 1) >> 30;
	l->code = l->pd + l->nr_pd * VM_PAGE;
	l->vcpu_area = l->code + l->code_bytes;
	l->gen = l->vcpu_area + l->nr_vcpus * VM_VCPU_AREA_PAGES * VM_PAGE;
}

/* Sizes the system area for the work pages that remain; grows until it fits. */
static int layout_size(struct vm_layout *l)
{
	uint64_t sys = UIOMMU_VM_SYS_BYTES, need;

	for (;;) {
		if (sys + l->dma_bytes >= l->mem_bytes)
			return -EINVAL;
		l->work_pages = (l->mem_bytes - sys - l->dma_bytes) / VM_PAGE;
		l->log_words = (l->work_pages + 63) / 64;
		l->log = l->gen + round_up(4 * l->work_pages, VM_PAGE);
		need = l->log + round_up(8 * l->log_words, VM_PAGE);
		if (need <= sys)
			break;
		sys = round_up(need, VM_2M);
	}
	l->sys_bytes = sys;
	l->work_gpa = sys;
	l->dma_gpa = l->mem_bytes - l->dma_bytes;
	return l->work_pages >= 2ull * l->nr_vcpus ? 0 : -EINVAL;
}

int layout_compute(const struct uiommu_vm_cfg *cfg, struct vm_layout *l)
{
	int ret = layout_check_cfg(cfg);

	if (ret)
		return ret;
	memset(l, 0, sizeof(*l));
	l->mem_bytes = cfg->mem_bytes;
	l->dma_bytes = cfg->dma_bytes;
	l->nr_vcpus = cfg->nr_vcpus;
	ret = layout_check_program(l);
	if (ret)
		return ret;
	layout_fixed(l);
	return layout_size(l);
}

static void put_u64(uint8_t *mem, uint64_t gpa, uint64_t v)
{
	memcpy(mem + gpa, &v, sizeof(v));
}

static void build_page_tables(const struct vm_layout *l, uint8_t *mem)
{
	uint64_t gib, i, pd;

	put_u64(mem, l->pml4, l->pdpt | PTE_TABLE);
	for (gib = 0; gib < l->nr_pd; gib++) {
		pd = l->pd + gib * VM_PAGE;
		put_u64(mem, l->pdpt + 8 * gib, pd | PTE_TABLE);
		for (i = 0; i < 512 && (gib << 30) + (i << 21) < l->mem_bytes; i++)
			put_u64(mem, pd + 8 * i, ((gib << 30) + (i << 21)) | PTE_TABLE | PTE_PS);
	}
}

/*
 * A 64-bit TSS descriptor (two GDT slots) and its TSS: rsp0, and an I/O
 * bitmap that lets CPL3 use the guest's ports. RFLAGS.IOPL = 3 would be
 * enough on bare metal, but PVM checks the bitmap whatever IOPL says.
 */
static void build_tss(const struct vm_layout *l, uint8_t *mem, unsigned int i)
{
	uint64_t base = l->tss + i * TSS_STRIDE;
	uint64_t lo = VM_TSS_LIMIT | (base & 0xffffff) << 16 | 0x89ull << 40 |
		      (base >> 24 & 0xff) << 56;
	uint64_t slot = l->gdt + (GDT_NR_FIXED + 2 * i) * 8;
	uint16_t iomap = TSS_IOMAP;
	uint8_t *bitmap = mem + base + TSS_IOMAP;
	unsigned int port;

	put_u64(mem, slot, lo);
	put_u64(mem, slot + 8, base >> 32);
	put_u64(mem, base + 4, layout_kstack_top(l, i));
	memcpy(mem + base + 102, &iomap, sizeof(iomap));
	memset(bitmap, 0xff, TSS_IOMAP_BYTES + 1);
	/* `out %eax` checks the bits of all four ports it touches. */
	for (port = PORT_CTL; port <= PORT_EXC + 3; port++)
		bitmap[port / 8] &= (uint8_t)~(1u << port % 8);
}

static void build_gdt(const struct vm_layout *l, uint8_t *mem)
{
	static const uint64_t fixed[GDT_NR_FIXED] = {
		0,
		0x00209a0000000000ull, /* kernel code: present, DPL 0, L */
		0x0000920000000000ull, /* kernel data */
		0x0000f20000000000ull, /* user data: DPL 3 */
		0x0020fa0000000000ull, /* user code: DPL 3, L */
	};
	unsigned int i;

	memcpy(mem + l->gdt, fixed, sizeof(fixed));
	for (i = 0; i < l->nr_vcpus; i++)
		build_tss(l, mem, i);
}

static void build_idt(const struct vm_layout *l, uint8_t *mem)
{
	uint64_t stubs = l->code + blob_u64(GUEST_HDR_STUBS), h, lo;
	unsigned int v;

	for (v = 0; v < 256; v++) {
		h = stubs + (v < 32 ? v : 32) * GUEST_STUB_STRIDE;
		lo = (h & 0xffff) | (uint64_t)SEL_KERNEL_CS << 16 | 0x8eull << 40 |
		     (h >> 16 & 0xffff) << 48;
		put_u64(mem, l->idt + 16 * v, lo);
		put_u64(mem, l->idt + 16 * v + 8, h >> 32);
	}
}

/* The parts of each control block that never change. */
static void build_ctl(const struct vm_layout *l, uint8_t *mem, unsigned int i)
{
	uint64_t ctl = layout_ctl(l, i), first = layout_slice_first(l, i);

	put_u64(mem, ctl + CTL_SLICE_GPA, layout_work_page_gpa(l, first));
	put_u64(mem, ctl + CTL_SLICE_PAGES, layout_slice_pages(l, i));
	put_u64(mem, ctl + CTL_GEN_GPA, l->gen + 4 * first);
	put_u64(mem, ctl + CTL_LOG_GPA, l->log);
	put_u64(mem, ctl + CTL_LOG_FIRST, first);
}

void layout_build(const struct vm_layout *l, uint8_t *mem)
{
	unsigned int i;

	build_page_tables(l, mem);
	build_gdt(l, mem);
	build_idt(l, mem);
	memcpy(mem + l->code, uiommu__guest_blob, uiommu__guest_blob_len);
	for (i = 0; i < l->nr_vcpus; i++)
		build_ctl(l, mem, i);
}

uint64_t layout_entry(const struct vm_layout *l)
{
	return l->code + blob_u64(GUEST_HDR_ENTRY);
}
