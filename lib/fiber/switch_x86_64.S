/* SPDX-License-Identifier: MIT */
/*
 * switch_x86_64.S: the x86-64 (System V) context switch of the asm fiber
 * backend; implements lib/fiber/ctx.h.
 *
 * A suspended context is its stack pointer.  Everything else is on the
 * suspended stack, lowest address first:
 *
 *   sp + 0    MXCSR (4 bytes) | x87 control word (2 bytes) | 2 bytes pad
 *   sp + 8    r15
 *   sp + 16   r14
 *   sp + 24   r13       (new context: the entry function)
 *   sp + 32   r12       (new context: the entry argument)
 *   sp + 40   rbx
 *   sp + 48   rbp
 *   sp + 56   return address (new context: ursa__ctx_trampoline)
 *
 * Only the callee-saved registers are saved: the caller of ursa__ctx_switch
 * has already spilled everything else, as for any call.  The signal mask is
 * not touched (it is per thread, and saving it costs a syscall).
 *
 * CET: every entry point starts with endbr64 (a NOP without IBT).  The object
 * is marked IBT-compatible but not SHSTK-compatible: switching stacks with
 * `ret` would trip a shadow stack.
 */

	.text

/* void ursa__ctx_switch(struct ursa__ctx *from (rdi), struct ursa__ctx *to (rsi)) */
	.globl	ursa__ctx_switch
	.hidden	ursa__ctx_switch
	.type	ursa__ctx_switch, @function
	.p2align 4
ursa__ctx_switch:
	.cfi_startproc
	endbr64
	/* Save the callee-saved integer registers on the current stack. */
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	/* Save the floating-point control state in the low slot. */
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	/* from->sp = rsp; rsp = to->sp: from here on we are in the other context. */
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	/* Restore the other context's floating-point control state. */
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	/* Restore its callee-saved registers, in reverse order of the pushes. */
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	/* Return into it: where it called ursa__ctx_switch, or the trampoline. */
	ret
	.cfi_endproc
	.size	ursa__ctx_switch, .-ursa__ctx_switch

/*
 * void ursa__ctx_init(struct ursa__ctx *c (rdi), void *lo (rsi), size_t size (rdx),
 *                     ursa__ctx_entry entry (rcx), void *arg (r8))
 *
 * Builds the frame of the table above at the top of [lo, lo + size) so that
 * the first switch "returns" into the trampoline with r12 = arg, r13 = entry.
 * The frame ends 16 bytes below the aligned top, so that rsp is 16-byte
 * aligned when the trampoline calls entry, as the ABI requires.
 */
	.globl	ursa__ctx_init
	.hidden	ursa__ctx_init
	.type	ursa__ctx_init, @function
	.p2align 4
ursa__ctx_init:
	.cfi_startproc
	endbr64
	/* rax = (lo + size) & ~15, the aligned top; then the frame base, 80 below. */
	leaq	(%rsi,%rdx), %rax
	andq	$-16, %rax
	subq	$80, %rax
	/* Default FP environment: MXCSR 0x1f80 (all masked, nearest), x87 CW 0x037f. */
	movl	$0x1f80, (%rax)
	movl	$0x037f, 4(%rax)
	/* r15, r14, rbx, rbp start at zero; rbp = 0 ends frame-pointer walks. */
	movq	$0, 8(%rax)
	movq	$0, 16(%rax)
	movq	%rcx, 24(%rax)
	movq	%r8, 32(%rax)
	movq	$0, 40(%rax)
	movq	$0, 48(%rax)
	/* The first switch returns into the trampoline. */
	leaq	ursa__ctx_trampoline(%rip), %r9
	movq	%r9, 56(%rax)
	/* The 16 spare bytes above: zero, a null return address for unwinders. */
	movq	$0, 64(%rax)
	movq	$0, 72(%rax)
	/* c->sp = frame base. */
	movq	%rax, (%rdi)
	ret
	.cfi_endproc
	.size	ursa__ctx_init, .-ursa__ctx_init

/*
 * First code run by a new context: entry(arg).  Reached by `ret`, never
 * called.  entry must not return; if it does, trap rather than run off the
 * end of the stack.
 */
	.type	ursa__ctx_trampoline, @function
	.p2align 4
ursa__ctx_trampoline:
	.cfi_startproc
	/* Unwinders stop here: this frame has no caller. */
	.cfi_undefined rip
	endbr64
	movq	%r12, %rdi
	call	*%r13
	ud2
	.cfi_endproc
	.size	ursa__ctx_trampoline, .-ursa__ctx_trampoline

	.section .note.GNU-stack, "", @progbits

#if defined(__CET__) && (__CET__ & 1)
/* GNU property note: GNU_PROPERTY_X86_FEATURE_1_AND = IBT only (see top). */
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4		/* name size: "GNU\0" */
	.long	16		/* descriptor size */
	.long	5		/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000002	/* GNU_PROPERTY_X86_FEATURE_1_AND */
	.long	4		/* property size */
	.long	1		/* GNU_PROPERTY_X86_FEATURE_1_IBT */
	.p2align 3
#endif
