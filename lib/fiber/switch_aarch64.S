/* SPDX-License-Identifier: MIT */
/*
 * switch_aarch64.S: the AArch64 (AAPCS64) context switch of the asm fiber
 * backend; implements lib/fiber/ctx.h.
 *
 * A suspended context is its stack pointer.  Everything else is on the
 * suspended stack, in a 176-byte save area, lowest address first:
 *
 *   sp + 0    x29 (fp)  (new context: 0, ends frame-pointer walks)
 *   sp + 8    x30 (lr), signed  (new context: ursa__ctx_trampoline)
 *   sp + 16   x19       (new context: the entry function)
 *   sp + 24   x20       (new context: the entry argument)
 *   sp + 32   x21
 *   sp + 40   x22
 *   sp + 48   x23
 *   sp + 56   x24
 *   sp + 64   x25
 *   sp + 72   x26
 *   sp + 80   x27
 *   sp + 88   x28
 *   sp + 96   d8
 *   sp + 104  d9
 *   sp + 112  d10
 *   sp + 120  d11
 *   sp + 128  d12
 *   sp + 136  d13
 *   sp + 144  d14
 *   sp + 152  d15
 *   sp + 160  FPCR (8 bytes)  (new context: 0)
 *   sp + 168  pad (8 bytes)   (new context: 0)
 *   sp + 176  the caller's frame  (new context: the aligned stack top)
 *
 * Only the callee-saved state is saved: the caller of ursa__ctx_switch has
 * already spilled everything else, as for any call.  Of v8-v15 AAPCS64
 * preserves only the low 64 bits (d8-d15).  FPCR (rounding mode, trap
 * enables, flush-to-zero) is per context; FPSR (the sticky exception flags)
 * is not saved and stays with the thread.  The signal mask is not touched
 * (it is per thread, and saving it costs a syscall).
 *
 * PAC: the saved lr is signed with key A and the stack pointer above the save
 * area as modifier (paciasp/autiasp, as compiled code does with
 * -mbranch-protection=pac-ret), so a suspended stack cannot be made to return
 * anywhere else.  ursa__ctx_init signs the trampoline address the same way.
 * All of these are hint-space instructions: a NOP on CPUs without PAuth, where
 * signing and checking both vanish, so the two always agree.
 *
 * BTI: the two exported functions start with `bti c` (also a hint, a NOP
 * without BTI), so they may be called through pointers (BLR) when their pages
 * are guarded.  The trampoline has no landing pad (see there).  The object
 * carries the GNU property note when the compiler asks for it.
 */

	.text

/* void ursa__ctx_switch(struct ursa__ctx *from (x0), struct ursa__ctx *to (x1)) */
	.globl	ursa__ctx_switch
	.hidden	ursa__ctx_switch
	.type	ursa__ctx_switch, %function
	.p2align 4
ursa__ctx_switch:
	.cfi_startproc
	/* Landing pad for indirect calls (blr), then sign lr against this sp. */
	bti	c
	paciasp
	.cfi_negate_ra_state
	/* Allocate the save area with the frame record (fp, lr) at its base.
	 * The CFI describes only the CFA, fp and lr: enough for backtraces
	 * taken inside the switch; no exception ever unwinds through it. */
	stp	x29, x30, [sp, #-176]!
	.cfi_def_cfa_offset 176
	.cfi_offset x29, -176
	.cfi_offset x30, -168
	/* Save the callee-saved integer registers. */
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	/* Save the callee-saved halves of v8-v15. */
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	/* Save FPCR; x9 keeps it for the comparison after the swap. */
	mrs	x9, fpcr
	str	x9, [sp, #160]
	/* from->sp = sp; sp = to->sp: from here on we are in the other context.
	 * (sp cannot be the operand of a load or store, hence x10.)  The save
	 * area there has the same layout, so the CFI above stays true. */
	mov	x10, sp
	str	x10, [x0]
	ldr	x10, [x1]
	mov	sp, x10
	/* Restore the other context's FPCR, only if it differs: writing FPCR
	 * can stall the pipeline, and most switches keep the same mode. */
	ldr	x10, [sp, #160]
	cmp	x9, x10
	b.eq	.Lsame_fpcr
	msr	fpcr, x10
.Lsame_fpcr:
	/* Restore its d8-d15. */
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	/* Restore its x19-x28. */
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	/* Restore its fp and (signed) lr, and pop the save area. */
	ldp	x29, x30, [sp], #176
	.cfi_def_cfa_offset 0
	.cfi_restore x29
	.cfi_restore x30
	/* Check lr against the sp it was signed with, now restored. */
	autiasp
	.cfi_negate_ra_state
	/* Return into it: where it called ursa__ctx_switch, or the trampoline. */
	ret
	.cfi_endproc
	.size	ursa__ctx_switch, .-ursa__ctx_switch

/*
 * void ursa__ctx_init(struct ursa__ctx *c (x0), void *lo (x1), size_t size (x2),
 *                     ursa__ctx_entry entry (x3), void *arg (x4))
 *
 * Builds the save area of the table above right below the 16-byte aligned
 * top of [lo, lo + size) (it writes those 176 bytes and nothing else), so
 * that the first switch pops it and "returns" into the trampoline with
 * x19 = entry, x20 = arg and sp = the aligned top, 16-byte aligned as the
 * ABI requires at the call of entry.
 */
	.globl	ursa__ctx_init
	.hidden	ursa__ctx_init
	.type	ursa__ctx_init, %function
	.p2align 4
ursa__ctx_init:
	.cfi_startproc
	/* Landing pad for indirect calls (blr). */
	bti	c
	/* x9 = (lo + size) & ~15, the aligned top; x10 = the save area, 176 below. */
	add	x9, x1, x2
	and	x9, x9, #-16
	sub	x10, x9, #176
	/* Sign the trampoline address as ursa__ctx_switch's autiasp will check
	 * it: key A, modifier = the sp after the pop, the aligned top.
	 * pacia1716 signs x17 with modifier x16 (a NOP without PAuth). */
	adr	x17, ursa__ctx_trampoline
	mov	x16, x9
	pacia1716
	/* Frame record: x29 = 0 ends frame-pointer walks; lr = the trampoline. */
	stp	xzr, x17, [x10, #0]
	/* x19 = entry, x20 = arg: the trampoline's inputs. */
	stp	x3, x4, [x10, #16]
	/* x21-x28 start at zero. */
	stp	xzr, xzr, [x10, #32]
	stp	xzr, xzr, [x10, #48]
	stp	xzr, xzr, [x10, #64]
	stp	xzr, xzr, [x10, #80]
	/* d8-d15 start at zero (+0.0). */
	stp	xzr, xzr, [x10, #96]
	stp	xzr, xzr, [x10, #112]
	stp	xzr, xzr, [x10, #128]
	stp	xzr, xzr, [x10, #144]
	/* FPCR = 0: round to nearest, no trap enabled (all FP exceptions
	 * masked), no flush-to-zero, no default NaN; and a zero pad. */
	stp	xzr, xzr, [x10, #160]
	/* c->sp = the save area. */
	str	x10, [x0]
	ret
	.cfi_endproc
	.size	ursa__ctx_init, .-ursa__ctx_init

/*
 * First code run by a new context: entry(arg).  Reached only by the `ret` of
 * ursa__ctx_switch, never called.  No BTI landing pad: RET is not a checked
 * branch (it sets BTYPE to 0, unlike BR/BLR), so a guarded page accepts it
 * without one, and without one a stray BR/BLR to here faults.  entry must
 * not return; if it does, trap rather than run off the end of the stack.
 */
	.type	ursa__ctx_trampoline, %function
	.p2align 4
ursa__ctx_trampoline:
	.cfi_startproc
	/* Unwinders stop here: this frame has no caller (and x29 is 0). */
	.cfi_undefined x30
	/* entry(arg), with sp at the aligned top. */
	mov	x0, x20
	blr	x19
	/* entry returned: SIGTRAP (0x3e8 is what __builtin_trap uses). */
	brk	#0x3e8
	.cfi_endproc
	.size	ursa__ctx_trampoline, .-ursa__ctx_trampoline

	.section .note.GNU-stack, "", %progbits

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define FEATURE_1_BTI 1
#else
#define FEATURE_1_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define FEATURE_1_PAC 2
#else
#define FEATURE_1_PAC 0
#endif

#if FEATURE_1_BTI || FEATURE_1_PAC
/* GNU property note: GNU_PROPERTY_AARCH64_FEATURE_1_AND = what the compiler
 * was asked for (-mbranch-protection), which this file honours (see top). */
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4		/* name size: "GNU\0" */
	.long	16		/* descriptor size */
	.long	5		/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000	/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4		/* property size */
	.long	FEATURE_1_BTI | FEATURE_1_PAC	/* bit 0: BTI, bit 1: PAC */
	.long	0		/* pad the descriptor to 8 bytes */
#endif
