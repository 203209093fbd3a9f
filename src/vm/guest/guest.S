/* SPDX-License-Identifier: MIT */
/*
 * The guest program of the KVM backend: a flat, position-independent binary
 * (every reference is RIP-relative) that the host loads into the system area.
 *
 * The host enters it in 64-bit long mode at CPL0 with paging on (identity
 * map, 2 MiB pages, U bit set), GDT, IDT and TSS in place, and
 *   rdi = this vCPU's control block, rsi = its user stack top,
 *   rsp = its kernel stack top (also the TSS's rsp0).
 * On this (nested, PVM) machine CPL0 code is emulated, about 1 us per
 * instruction pair, while CPL3 code runs at native speed: the CPL0 part only
 * builds an iretq frame and drops to CPL3 with RFLAGS.IOPL = 3, so that the
 * workload can leave the guest with `out` from CPL3.
 *
 * CPL3 registers that live across the whole program (and across a
 * migration, being vCPU state):
 *   r15 control block, r14 current workload kind, r13 position (sweep page
 *   or verify page), r12 random state, rbp page writes left before the next
 *   control exit, rbx bad pages of the running verify.
 * See guest_abi.h for the control block, the ports and the page content.
 */
#include "guest_abi.h"

	.code64
	.text
base:
	.quad GUEST_MAGIC
	.quad entry - base
	.quad exc_stubs - base
	.quad GUEST_ABI_VERSION

entry:
	pushq $SEL_USER_DS
	pushq %rsi
	pushq $RFLAGS_USER
	pushq $SEL_USER_CS
	leaq user_entry(%rip), %rax
	pushq %rax
	iretq

/* CPL3 from here on. */
user_entry:
	movq %rdi, %r15
	movq $WL_IDLE, %r14

/* After every exit: take a new command if the host posted one. */
dispatch:
	movq CTL_SEQ(%r15), %rax
	cmpq CTL_ACK_SEQ(%r15), %rax
	je run
	movq CTL_KIND(%r15), %r14
	movq CTL_SEED(%r15), %r12
	xorl %r13d, %r13d
	movq %rax, CTL_ACK_SEQ(%r15)
run:
	movq CTL_NPAGES(%r15), %rbp
	cmpq $WL_SEQ, %r14
	je seq_batch
	cmpq $WL_RANDOM, %r14
	je random_batch
	cmpq $WL_HOTSET, %r14
	je hot_batch
	cmpq $WL_VERIFY, %r14
	je verify
idle:
	movl $PORT_IDLE, %edx
	outl %eax, %dx
	jmp dispatch

control_exit:
	movl $PORT_CTL, %edx
	outl %eax, %dx
	jmp dispatch

/* Sweep the slice page by page, wrapping. */
seq_batch:
	movq %r13, %rdi
	call write_page
	incq %r13
	cmpq CTL_SLICE_PAGES(%r15), %r13
	jb 1f
	xorl %r13d, %r13d
1:	decq %rbp
	jnz seq_batch
	jmp control_exit

/* Uniformly random pages of the slice: page = (random * pages) >> 64. */
random_batch:
	call rng_next
	mulq CTL_SLICE_PAGES(%r15)
	movq %rdx, %rdi
	call write_page
	decq %rbp
	jnz random_batch
	jmp control_exit

/*
 * Hot set: a write is hot with probability CTL_HOT_THRESH / 2^64 and then
 * goes to pages [0, hot), else to [hot, pages). The host keeps both non-empty.
 */
hot_batch:
	call rng_next
	cmpq CTL_HOT_THRESH(%r15), %rax
	jae 1f
	call rng_next
	mulq CTL_HOT_PAGES(%r15)
	movq %rdx, %rdi
	jmp 2f
1:	call rng_next
	movq CTL_SLICE_PAGES(%r15), %rcx
	subq CTL_HOT_PAGES(%r15), %rcx
	mulq %rcx
	movq %rdx, %rdi
	addq CTL_HOT_PAGES(%r15), %rdi
2:	call write_page
	decq %rbp
	jnz hot_batch
	jmp control_exit

/* Check every page of the slice once, report, then idle. */
verify:
	xorl %ebx, %ebx
	xorl %r13d, %r13d
1:	cmpq CTL_SLICE_PAGES(%r15), %r13
	jae 2f
	movq %r13, %rdi
	call check_page
	addq %rax, %rbx
	incq %r13
	jmp 1b
2:	movq %rbx, CTL_BAD(%r15)
	movq CTL_SLICE_PAGES(%r15), %rax
	movq %rax, CTL_VERIFIED(%r15)
	movq CTL_ACK_SEQ(%r15), %rax
	movq %rax, CTL_VERIFY_SEQ(%r15)
	movq $WL_IDLE, %r14
	movl %ebx, %eax
	movl $PORT_VERIFY, %edx
	outl %eax, %dx
	jmp dispatch

/* splitmix64 step of r12; the result in rax; clobbers rcx. */
rng_next:
	movabsq $RNG_GAMMA, %rax
	addq %rax, %r12
	movq %r12, %rax
	movq %rax, %rcx
	shrq $30, %rcx
	xorq %rcx, %rax
	movabsq $RNG_M1, %rcx
	imulq %rcx, %rax
	movq %rax, %rcx
	shrq $27, %rcx
	xorq %rcx, %rax
	movabsq $RNG_M2, %rcx
	imulq %rcx, %rax
	movq %rax, %rcx
	shrq $31, %rcx
	xorq %rcx, %rax
	ret

/*
 * rdi = slice page: rsi = its address (= GPA), rcx = the generation table
 * of the slice. Clobbers rax.
 */
page_addr:
	movq %rdi, %rsi
	shlq $12, %rsi
	addq CTL_SLICE_GPA(%r15), %rsi
	movq CTL_GEN_GPA(%r15), %rcx
	ret

/*
 * rsi = page address, rax = generation: r8 = word 2 of the content,
 * r9 = the step between words. Clobbers rdx.
 */
content_start:
	movabsq $CONTENT_K2, %rdx
	imulq %rax, %rdx
	movabsq $CONTENT_K1, %r8
	imulq %rsi, %r8
	xorq %rdx, %r8
	movabsq $CONTENT_K3, %r9
	addq %r9, %r8
	addq %r9, %r8
	ret

/*
 * Writes slice page rdi with its next generation: generation table first,
 * then the content, then the write-log bit (lock bts: the host clears the
 * log with atomic exchanges), then the page counter.
 */
write_page:
	call page_addr
	movl (%rcx,%rdi,4), %eax
	incl %eax
	jnz 1f
	incl %eax
1:	movl %eax, (%rcx,%rdi,4)
	movq %rsi, (%rsi)
	movq %rax, 8(%rsi)
	call content_start
	leaq 16(%rsi), %r10
	leaq 4096(%rsi), %r11
2:	movq %r8, (%r10)
	addq %r9, %r8
	movq %r8, 8(%r10)
	addq %r9, %r8
	addq $16, %r10
	cmpq %r11, %r10
	jb 2b
	movq CTL_LOG_FIRST(%r15), %rax
	addq %rdi, %rax
	movq CTL_LOG_GPA(%r15), %rcx
	lock btsq %rax, (%rcx)
	incq CTL_PAGES_TOTAL(%r15)
	ret

/* Checks slice page rdi against its generation: eax = 0 good, 1 bad. */
check_page:
	call page_addr
	movl (%rcx,%rdi,4), %eax
	testl %eax, %eax
	jz 3f
	cmpq %rsi, (%rsi)
	jne 5f
	cmpq %rax, 8(%rsi)
	jne 5f
	call content_start
	leaq 16(%rsi), %r10
	leaq 4096(%rsi), %r11
2:	cmpq %r8, (%r10)
	jne 5f
	addq %r9, %r8
	addq $8, %r10
	cmpq %r11, %r10
	jb 2b
	xorl %eax, %eax
	ret
	/* Never written: all zero. */
3:	movq %rsi, %r10
	leaq 4096(%rsi), %r11
4:	cmpq $0, (%r10)
	jne 5f
	addq $8, %r10
	cmpq %r11, %r10
	jb 4b
	xorl %eax, %eax
	ret
5:	movl $1, %eax
	ret

/*
 * Exception stubs (CPL0), GUEST_STUB_STRIDE bytes apart: vectors 0-31, then
 * one for every other vector. Each pushes a zero error code where the CPU
 * pushes none, then its vector. Nothing is expected here: report through
 * PORT_EXC (rax vector, rbx error code, rcx faulting rip) and halt.
 */
	.balign GUEST_STUB_STRIDE
exc_stubs:
	.set vec, 0
	.rept 32
	.balign GUEST_STUB_STRIDE
	.if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
	.else
	pushq $0
	.endif
	pushq $vec
	jmp exc_common
	.set vec, vec + 1
	.endr
	.balign GUEST_STUB_STRIDE
	pushq $0
	pushq $255
	jmp exc_common

exc_common:
	popq %rax
	popq %rbx
	movq (%rsp), %rcx
	movl $PORT_EXC, %edx
	outl %eax, %dx
1:	hlt
	jmp 1b
