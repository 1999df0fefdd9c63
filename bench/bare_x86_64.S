/* SPDX-License-Identifier: MIT */
/*
 * bare_x86_64.S: the smallest correct x86-64 context switch, the floor the
 * `switch` workload compares the asm backend with: the six callee-saved
 * registers and rsp, no floating-point control state, no CET marker work
 * beyond endbr64.  Same contract as lib/fiber/ctx.h minus the FP state; used
 * only by bench (never by the library).
 *
 * Save area on the suspended stack, lowest address first:
 *
 *   sp + 0    r15
 *   sp + 8    r14
 *   sp + 16   r13       (new context: the entry function)
 *   sp + 24   r12       (new context: the entry argument)
 *   sp + 32   rbx
 *   sp + 40   rbp
 *   sp + 48   return address (new context: the trampoline)
 */

	.text

/* void bench_bare_ctx_switch(void **from_sp (rdi), void **to_sp (rsi)) */
	.globl	bench_bare_ctx_switch
	.hidden	bench_bare_ctx_switch
	.type	bench_bare_ctx_switch, @function
	.p2align 4
bench_bare_ctx_switch:
	.cfi_startproc
	endbr64
	/* Callee-saved registers onto the current stack. */
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	/* Swap stacks. */
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	/* The other context's registers, reverse order. */
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	bench_bare_ctx_switch, .-bench_bare_ctx_switch

/*
 * void bench_bare_ctx_init(void **sp (rdi), void *lo (rsi), size_t size (rdx),
 *                          void (*entry)(void *) (rcx), void *arg (r8))
 * The frame ends 16 bytes below the aligned top so rsp is 16-byte aligned at
 * the trampoline's call, as the ABI requires.
 */
	.globl	bench_bare_ctx_init
	.hidden	bench_bare_ctx_init
	.type	bench_bare_ctx_init, @function
	.p2align 4
bench_bare_ctx_init:
	.cfi_startproc
	endbr64
	/* rax = aligned top - 72: the frame base. */
	leaq	(%rsi,%rdx), %rax
	andq	$-16, %rax
	subq	$72, %rax
	/* r15, r14, rbx, rbp = 0; r13 = entry; r12 = arg. */
	movq	$0, 0(%rax)
	movq	$0, 8(%rax)
	movq	%rcx, 16(%rax)
	movq	%r8, 24(%rax)
	movq	$0, 32(%rax)
	movq	$0, 40(%rax)
	/* The first switch returns into the trampoline. */
	leaq	bare_trampoline(%rip), %r9
	movq	%r9, 48(%rax)
	/* A null return address above, for unwinders. */
	movq	$0, 56(%rax)
	movq	$0, 64(%rax)
	movq	%rax, (%rdi)
	ret
	.cfi_endproc
	.size	bench_bare_ctx_init, .-bench_bare_ctx_init

/* entry(arg); entry never returns (trap if it does). */
	.type	bare_trampoline, @function
	.p2align 4
bare_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	endbr64
	movq	%r12, %rdi
	call	*%r13
	ud2
	.cfi_endproc
	.size	bare_trampoline, .-bare_trampoline

	.section .note.GNU-stack, "", @progbits
