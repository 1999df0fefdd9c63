/* SPDX-License-Identifier: MIT */
/*
 * ctx.h: the one contract between ursa and a machine context backend.
 * Implementations: switch_x86_64.S, switch_aarch64.S (asm backend) and
 * switch_ucontext.c (portable backend); meson picks one, and nothing else in
 * lib/ knows which.
 */
#ifndef URSA_FIBER_CTX_H
#define URSA_FIBER_CTX_H

#include <stddef.h>

#ifdef URSA_FIBER_UCONTEXT
#include <ucontext.h>
struct ursa__ctx {
	ucontext_t uc;
};
#else
/* The asm backends keep everything on the suspended stack; the context is
 * just the saved stack pointer (layout: the table in each .S file). */
struct ursa__ctx {
	void *sp;
};
#endif

/* The entry of a new context.  It must never return: a fiber ends by
 * switching away for the last time. */
typedef void (*ursa__ctx_entry)(void *arg);

/*
 * Prepare *c so that the first ursa__ctx_switch into it calls entry(arg) on
 * the stack [lo, lo + size).
 * Pre: lo is 16-byte aligned, size is a multiple of 16 and at least 4 KiB.
 * Post: *c is a suspended context; only the top 256 bytes of the stack are
 * written (the initial save area: 80 bytes on x86-64, 176 on aarch64).
 * The new context starts with round-to-nearest and all FP exceptions masked
 * (the asm backends write that; the ucontext backend inherits the calling
 * thread's environment, which is the same unless the caller changed it).
 */
void ursa__ctx_init(struct ursa__ctx *c, void *lo, size_t size, ursa__ctx_entry entry,
                    void *arg);

/*
 * Save the running context into *from and resume *to.  Returns when something
 * switches back into *from.
 * Saves and restores: the callee-saved registers of the platform ABI, the
 * stack pointer, and the floating-point control state (MXCSR and the x87
 * control word on x86-64; FPCR and d8-d15 on aarch64).  Sticky FP exception
 * flags follow the context on x86-64 (they live in MXCSR) but stay with the
 * thread on aarch64 (FPSR is not saved).  Never the signal
 * mask (the ucontext backend does touch it: that is why it is slow).
 * Pre: from != to; *to is suspended.  Not thread-safe per context: a context
 * is resumed by one thread at a time.
 */
void ursa__ctx_switch(struct ursa__ctx *from, struct ursa__ctx *to);

#endif /* URSA_FIBER_CTX_H */
