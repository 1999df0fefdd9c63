/* SPDX-License-Identifier: MIT */
/*
 * switch_ucontext.c: the portable fiber backend, on getcontext/makecontext/
 * swapcontext; implements lib/fiber/ctx.h.  Chosen with -Dfiber=ucontext.
 * swapcontext saves the signal mask with a syscall on every switch, so this
 * backend is the fallback, not the default (bench `switch` shows the cost).
 */
#include "ctx.h"

#include <stdint.h>
#include <stdlib.h>

/*
 * makecontext passes only int arguments, so the entry and its argument travel
 * as two halves each of a 64-bit value.
 */
static void trampoline(unsigned e_hi, unsigned e_lo, unsigned a_hi, unsigned a_lo)
{
	uintptr_t e = ((uintptr_t)e_hi << 32) | e_lo;
	uintptr_t a = ((uintptr_t)a_hi << 32) | a_lo;

	((ursa__ctx_entry)e)((void *)a);
	/* An entry must switch away for the last time, never return. */
	abort();
}

void ursa__ctx_init(struct ursa__ctx *c, void *lo, size_t size, ursa__ctx_entry entry,
                    void *arg)
{
	uint64_t e = (uintptr_t)entry, a = (uintptr_t)arg;

	if (getcontext(&c->uc) != 0)
		abort(); /* getcontext cannot fail on Linux */
	c->uc.uc_stack.ss_sp = lo;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, (void (*)(void))trampoline, 4, (unsigned)(e >> 32), (unsigned)e,
	            (unsigned)(a >> 32), (unsigned)a);
}

void ursa__ctx_switch(struct ursa__ctx *from, struct ursa__ctx *to)
{
	swapcontext(&from->uc, &to->uc);
}
