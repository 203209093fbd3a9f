/* SPDX-License-Identifier: MIT */
/*
 * The contract between the host side of the VM (the C files of src/vm) and the guest
 * program (guest.S). Included by both, so it holds only #defines.
 *
 * The guest program is a flat binary loaded at GUEST_CODE_GPA's place in the
 * system area (see layout.c). It starts with a header the host reads:
 *   +0 GUEST_MAGIC, +8 offset of the entry point, +16 offset of the
 *   exception stubs (one every GUEST_STUB_STRIDE bytes, vectors 0-31, then
 *   one for every other vector), +24 the binary's ABI version.
 *
 * Each vCPU owns a control block (one page). The host writes the command
 * (CTL_SEQ last); the guest reads it after every control exit and, when
 * CTL_SEQ differs from its CTL_ACK_SEQ, takes the new command. The guest
 * writes the CTL_ACK_SEQ .. CTL_BAD words; the host reads them.
 *
 * Exits are port writes (`out %eax, %dx` at CPL3, RFLAGS.IOPL = 3):
 *   PORT_CTL    every CTL_NPAGES page writes: rate accounting point
 *   PORT_IDLE   the guest has nothing to do (idle, or verify finished)
 *   PORT_VERIFY the verify pass is over; CTL_VERIFIED/CTL_BAD hold its result
 *   PORT_EXC    unexpected exception at CPL0: rax vector, rbx error, rcx rip
 *
 * Page content (both backends): word 0 the page's GPA, word 1 its
 * generation g (1, 2, ...: how often the workload wrote it; 0 = never, the
 * page is all zero), word i >= 2 is  x + i * CONTENT_K3  where
 * x = gpa * CONTENT_K1 ^ g * CONTENT_K2 (all mod 2^64).
 */
#ifndef UIOMMU_VM_GUEST_ABI_H
#define UIOMMU_VM_GUEST_ABI_H

#define GUEST_MAGIC 0x314d56554d4d4f49 /* "IOMMUVM1" little-endian */
#define GUEST_ABI_VERSION 1
#define GUEST_HDR_MAGIC 0
#define GUEST_HDR_ENTRY 8
#define GUEST_HDR_STUBS 16
#define GUEST_HDR_VERSION 24
#define GUEST_STUB_STRIDE 16
#define GUEST_NR_STUBS 33 /* vectors 0-31, then the one for all others */

/* GDT selectors. */
#define SEL_KERNEL_CS 0x08
#define SEL_KERNEL_DS 0x10
#define SEL_USER_DS 0x1b /* 0x18 | RPL 3 */
#define SEL_USER_CS 0x23 /* 0x20 | RPL 3 */
#define SEL_TSS0 0x28    /* vCPU i: SEL_TSS0 + 16 * i */
#define RFLAGS_USER 0x3002 /* IOPL 3 (port exits at CPL3), IF 0, bit 1 */

/* Ports. */
#define PORT_CTL 0x10
#define PORT_IDLE 0x11
#define PORT_VERIFY 0x12
#define PORT_EXC 0x13

/* Workload kinds, as enum uiommu_workload_kind. */
#define WL_IDLE 0
#define WL_SEQ 1
#define WL_RANDOM 2
#define WL_HOTSET 3
#define WL_VERIFY 4

/* Control block: host -> guest. */
#define CTL_SEQ 0x00         /* command number, written last */
#define CTL_KIND 0x08        /* WL_* */
#define CTL_NPAGES 0x10      /* page writes between control exits (>= 1) */
#define CTL_HOT_PAGES 0x18   /* hot set: slice pages [0, hot) */
#define CTL_HOT_THRESH 0x20  /* a write is hot when a random u64 < this */
#define CTL_SEED 0x28        /* random state for the command */
#define CTL_SLICE_GPA 0x30   /* first page of the vCPU's slice */
#define CTL_SLICE_PAGES 0x38 /* pages in the slice (>= 2) */
#define CTL_GEN_GPA 0x40     /* u32 generation of slice page 0; page i at + 4 * i */
#define CTL_LOG_GPA 0x48     /* write log bitmap (bit k = work page k) */
#define CTL_LOG_FIRST 0x50   /* work page index of slice page 0 */
/* Control block: guest -> host. */
#define CTL_ACK_SEQ 0x100     /* the command the guest runs */
#define CTL_PAGES_TOTAL 0x108 /* pages written since boot */
#define CTL_VERIFY_SEQ 0x110  /* command of the last finished verify */
#define CTL_VERIFIED 0x118
#define CTL_BAD 0x120

/* Content constants (see the top of this file). */
#define CONTENT_K1 0x9e3779b97f4a7c15
#define CONTENT_K2 0xc2b2ae3d27d4eb4f
#define CONTENT_K3 0x165667b19e3779f9

/* splitmix64, used by both backends to draw pages. */
#define RNG_GAMMA 0x9e3779b97f4a7c15
#define RNG_M1 0xbf58476d1ce4e5b9
#define RNG_M2 0x94d049bb133111eb

#endif
