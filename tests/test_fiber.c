/* SPDX-License-Identifier: MIT */
/*
 * The context-switch contract (lib/fiber/ctx.h) on its own, without the
 * scheduler: values round-trip, callee-saved registers and the FP control
 * state survive a switch, a new context starts with an aligned stack.
 */
#include "helpers.h"

#include "fiber/ctx.h"
#include "fiber/stack.h"

#include <fenv.h>
#include <stdint.h>

static struct ursa__ctx main_ctx, fib_ctx;
static volatile uint64_t shared;

static void counter(void *arg)
{
	uint64_t n = (uintptr_t)arg;

	for (uint64_t i = 0; i < n; i++) {
		shared = shared * 3 + i; /* main checks the same recurrence */
		ursa__ctx_switch(&fib_ctx, &main_ctx);
	}
	for (;;)
		ursa__ctx_switch(&fib_ctx, &main_ctx);
}

Test(fiber, ping_pong_100k_switches_in_order)
{
	struct ursa__stack st;
	uint64_t expect = 0, bad_at = UINT64_MAX;

	cr_assert_eq(ursa__stack_map(&st, 64 * 1024), 0);
	ursa__ctx_init(&fib_ctx, ursa__stack_lo(&st), st.size, counter, (void *)100000);
	shared = 0;
	for (uint64_t i = 0; i < 100000; i++) {
		ursa__ctx_switch(&main_ctx, &fib_ctx);
		expect = expect * 3 + i;
		if (shared != expect && bad_at == UINT64_MAX)
			bad_at = i; /* one assert at the end: 100k asserts are slow */
	}
	cr_assert_eq(bad_at, UINT64_MAX, "wrong value after switch %lu", (unsigned long)bad_at);
	ursa__stack_unmap(&st);
}

/* Rounding mode is per context: the fiber's FE_UPWARD does not leak into
 * main, and comes back when the fiber resumes. */
static volatile int fiber_round_before, fiber_round_after;

static void rounder(void *arg)
{
	(void)arg;
	fesetround(FE_UPWARD);
	fiber_round_before = fegetround();
	ursa__ctx_switch(&fib_ctx, &main_ctx);
	fiber_round_after = fegetround();
	for (;;)
		ursa__ctx_switch(&fib_ctx, &main_ctx);
}

Test(fiber, fp_rounding_mode_is_per_context)
{
	struct ursa__stack st;

	cr_assert_eq(ursa__stack_map(&st, 64 * 1024), 0);
	fesetround(FE_TONEAREST);
	ursa__ctx_init(&fib_ctx, ursa__stack_lo(&st), st.size, rounder, NULL);
	ursa__ctx_switch(&main_ctx, &fib_ctx);
	cr_assert_eq(fiber_round_before, FE_UPWARD);
	cr_assert_eq(fegetround(), FE_TONEAREST, "the fiber's rounding mode leaked into main");
	fesetround(FE_DOWNWARD);
	ursa__ctx_switch(&main_ctx, &fib_ctx);
	cr_assert_eq(fiber_round_after, FE_UPWARD, "the fiber lost its rounding mode");
	cr_assert_eq(fegetround(), FE_DOWNWARD, "main lost its rounding mode");
	fesetround(FE_TONEAREST);
	ursa__stack_unmap(&st);
}

static volatile uintptr_t entry_local_addr;

static void aligned_entry(void *arg)
{
	/* A 16-byte aligned local proves the ABI alignment at entry. */
	_Alignas(16) volatile char probe[16];

	(void)arg;
	probe[0] = 1;
	entry_local_addr = (uintptr_t)probe;
	for (;;)
		ursa__ctx_switch(&fib_ctx, &main_ctx);
}

Test(fiber, new_context_starts_with_aligned_stack_inside_its_range)
{
	struct ursa__stack st;
	uintptr_t lo;

	cr_assert_eq(ursa__stack_map(&st, 64 * 1024), 0);
	lo = (uintptr_t)ursa__stack_lo(&st);
	ursa__ctx_init(&fib_ctx, ursa__stack_lo(&st), st.size, aligned_entry, NULL);
	ursa__ctx_switch(&main_ctx, &fib_ctx);
	cr_assert_eq(entry_local_addr % 16, 0);
	cr_assert(entry_local_addr > lo && entry_local_addr < lo + st.size);
	ursa__stack_unmap(&st);
}

#if defined(__x86_64__)
/*
 * Callee-saved registers: load known values into rbx, rbp, r12-r15, switch to
 * a fiber that overwrites all of them, switch back, read them out.  Written in
 * asm because the compiler would otherwise keep the values wherever it likes.
 */
static void clobber(void *arg)
{
	(void)arg;
	for (;;) {
		__asm__ volatile("mov $0xdead, %%rbx\n\tmov $0xdead, %%r12\n\tmov $0xdead, %%r13\n\t"
		                 "mov $0xdead, %%r14\n\tmov $0xdead, %%r15\n\t" ::
		                         : "rbx", "r12", "r13", "r14", "r15");
		ursa__ctx_switch(&fib_ctx, &main_ctx);
	}
}

Test(fiber, callee_saved_registers_survive_a_switch)
{
	struct ursa__stack st;
	uint64_t out[6];
	uint64_t *outp = out; /* in rdi: with a frame pointer no other register is free */

	cr_assert_eq(ursa__stack_map(&st, 64 * 1024), 0);
	ursa__ctx_init(&fib_ctx, ursa__stack_lo(&st), st.size, clobber, NULL);
	__asm__ volatile(
		/* Step over the red zone, keep rbp and the output pointer (which
		 * may live in rbp) on the stack; two pushes keep 16-byte alignment. */
		"sub $128, %%rsp\n\t"
		"push %%rbp\n\t"
		"push %[out]\n\t"
		"mov $0x1111, %%rbx\n\tmov $0x2222, %%rbp\n\tmov $0x3333, %%r12\n\t"
		"mov $0x4444, %%r13\n\tmov $0x5555, %%r14\n\tmov $0x6666, %%r15\n\t"
		"lea main_ctx(%%rip), %%rdi\n\tlea fib_ctx(%%rip), %%rsi\n\t"
		"call ursa__ctx_switch\n\t"
		"pop %%rax\n\t"
		"mov %%rbx, 0(%%rax)\n\tmov %%rbp, 8(%%rax)\n\tmov %%r12, 16(%%rax)\n\t"
		"mov %%r13, 24(%%rax)\n\tmov %%r14, 32(%%rax)\n\tmov %%r15, 40(%%rax)\n\t"
		"pop %%rbp\n\t"
		"add $128, %%rsp\n\t"
		: [out] "+D"(outp)
		:
		: "rax", "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13",
		  "r14", "r15", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
		  "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	cr_assert_eq(out[0], 0x1111, "rbx");
	cr_assert_eq(out[1], 0x2222, "rbp");
	cr_assert_eq(out[2], 0x3333, "r12");
	cr_assert_eq(out[3], 0x4444, "r13");
	cr_assert_eq(out[4], 0x5555, "r14");
	cr_assert_eq(out[5], 0x6666, "r15");
	ursa__stack_unmap(&st);
}
#endif
