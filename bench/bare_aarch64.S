/* SPDX-License-Identifier: MIT */
/*
 * bare_aarch64.S: the smallest correct AArch64 context switch, the floor the
 * `switch` workload compares the asm backend with: x19-x30, d8-d15 and sp
 * (what AAPCS64 makes callee-saved), no FPCR, no pointer signing.  Used only
 * by bench (never by the library).
 *
 * Save area on the suspended stack, lowest address first:
 *
 *   sp + 0    x19       (new context: the entry function)
 *   sp + 8    x20       (new context: the entry argument)
 *   sp + 16   x21 ... sp + 72  x28
 *   sp + 80   x29 (fp)  (new context: 0)
 *   sp + 88   x30 (lr)  (new context: the trampoline)
 *   sp + 96   d8 ... sp + 152  d15
 */

	.text

/* void bench_bare_ctx_switch(void **from_sp (x0), void **to_sp (x1)) */
	.globl	bench_bare_ctx_switch
	.hidden	bench_bare_ctx_switch
	.type	bench_bare_ctx_switch, %function
	.p2align 4
bench_bare_ctx_switch:
	.cfi_startproc
	hint	#34			/* bti c */
	/* Callee-saved state onto the current stack. */
	sub	sp, sp, #160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	/* Swap stacks. */
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	/* The other context's state. */
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	ret
	.cfi_endproc
	.size	bench_bare_ctx_switch, .-bench_bare_ctx_switch

/*
 * void bench_bare_ctx_init(void **sp (x0), void *lo (x1), size_t size (x2),
 *                          void (*entry)(void *) (x3), void *arg (x4))
 */
	.globl	bench_bare_ctx_init
	.hidden	bench_bare_ctx_init
	.type	bench_bare_ctx_init, %function
	.p2align 4
bench_bare_ctx_init:
	.cfi_startproc
	hint	#34			/* bti c */
	/* x9 = aligned top - 160: the frame base. */
	add	x9, x1, x2
	and	x9, x9, #~15
	sub	x9, x9, #160
	/* Zero the frame, then entry, arg and the trampoline. */
	mov	x10, #0
	mov	x11, x9
1:	stp	xzr, xzr, [x11], #16
	add	x10, x10, #16
	cmp	x10, #160
	b.lo	1b
	stp	x3, x4, [x9, #0]
	adr	x10, bare_trampoline
	str	x10, [x9, #88]
	str	x9, [x0]
	ret
	.cfi_endproc
	.size	bench_bare_ctx_init, .-bench_bare_ctx_init

/* entry(arg); reached by `ret`, so no landing pad; entry never returns. */
	.type	bare_trampoline, %function
	.p2align 4
bare_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	mov	x0, x20
	blr	x19
	brk	#0
	.cfi_endproc
	.size	bare_trampoline, .-bare_trampoline

	.section .note.GNU-stack, "", %progbits
