/* SPDX-License-Identifier: MIT */
/*
 * ctx_test.c: standalone check of an asm fiber backend (lib/fiber/ctx.h),
 * built natively against switch_x86_64.S or statically for aarch64 against
 * switch_aarch64.S and run under qemu-user; driven by tools/cross/run-aarch64.sh.
 * Plain C with no test framework, so that a bare cross toolchain builds it.
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "ctx.h"

#if defined(__x86_64__)
#define ARCH_NAME "x86_64"
#elif defined(__aarch64__) && defined(__ARM_FEATURE_BTI_DEFAULT)
#define ARCH_NAME "aarch64+bti+pac"
#elif defined(__aarch64__)
#define ARCH_NAME "aarch64"
#else
#error "ctx_test.c knows the registers of x86-64 and aarch64 only"
#endif

#define STACK_SIZE (64 * 1024)
#define PINGPONG_ROUNDS 100000
#define REGS_ROUNDS 1000

static int passed, failed, skipped;

static void check(int ok, const char *what, const char *file, int line)
{
	if (ok) {
		passed++;
	} else {
		failed++;
		fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
	}
}

#define CHECK(cond) check(!!(cond), #cond, __FILE__, __LINE__)

static void skip(const char *what, const char *why)
{
	skipped++;
	printf("  skip %s: %s\n", what, why);
}

/* A fresh stack of size bytes with a PROT_NONE guard page below it, so that
 * an overflow faults instead of corrupting the neighbour.  Never freed. */
static unsigned char *stack_alloc(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
	                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) != 0) {
		perror("stack_alloc");
		exit(2);
	}
	return p + page;
}

/* Runs fn in a child process and returns its wait status; the child's
 * stderr goes to /dev/null (qemu-user reports guest signals there), it
 * dumps no core, and SIGALRM ends it if it runs astray instead of dying. */
static int run_in_child(void (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		struct rlimit no_core = {0, 0};

		setrlimit(RLIMIT_CORE, &no_core);
		alarm(20);
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(2);
		fn();
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid) {
		perror("waitpid");
		exit(2);
	}
	return status;
}

/* ---- ping-pong: main -> fiber -> fiber -> main, values passed along ---- */

static struct {
	struct ursa__ctx main, fib[2];
	struct ursa__ctx *route[3]; /* where hop 0, 1, 2 goes: fiber, fiber, main */
	int hop;
	uint64_t value;
	unsigned long runs[2];
} pp;

static void pingpong_fiber(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (;;) {
		pp.runs[id]++;
		pp.value = pp.value * 3 + (uint64_t)id + 1;
		pp.hop++;
		ursa__ctx_switch(&pp.fib[id], pp.route[pp.hop]);
	}
}

/* Rounds alternate the order (main, A, B) and (main, B, A), so every pair of
 * contexts switches both ways; each hop transforms the value, so a wrong,
 * skipped or repeated hop shows in what comes back. */
static void test_pingpong(void)
{
	unsigned long wrong = 0;

	for (int id = 0; id < 2; id++)
		ursa__ctx_init(&pp.fib[id], stack_alloc(STACK_SIZE), STACK_SIZE, pingpong_fiber,
		               (void *)(intptr_t)id);
	for (uint64_t i = 0; i < PINGPONG_ROUNDS; i++) {
		int first = (int)(i & 1), second = 1 - first;

		pp.route[0] = &pp.fib[first];
		pp.route[1] = &pp.fib[second];
		pp.route[2] = &pp.main;
		pp.hop = 0;
		pp.value = i;
		ursa__ctx_switch(&pp.main, pp.route[0]);
		if (pp.value != (i * 3 + (uint64_t)first + 1) * 3 + (uint64_t)second + 1 ||
		    pp.hop != 2)
			wrong++;
	}
	CHECK(wrong == 0);
	CHECK(pp.runs[0] == PINGPONG_ROUNDS);
	CHECK(pp.runs[1] == PINGPONG_ROUNDS);
}

/* ---- callee-saved registers survive a switch ---- */

/* switch_with_regs() loads in[] into every callee-saved register, calls
 * ursa__ctx_switch(from, to) and, once resumed, stores the registers into
 * out[].  The other side does the same with its own values. */
struct regs_call {
	struct ursa__ctx *from, *to;
	const uint64_t *in;
	uint64_t *out;
};
_Static_assert(offsetof(struct regs_call, from) == 0 && offsetof(struct regs_call, to) == 8 &&
                       offsetof(struct regs_call, in) == 16 && offsetof(struct regs_call, out) == 24,
               "the asm below uses these offsets");

#if defined(__x86_64__)
#define NREGS 6
static const char *const reg_names[NREGS] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};

__attribute__((noinline)) static void switch_with_regs(struct regs_call *rc)
{
	/* rbp cannot be a clobber (it may be the frame pointer): the asm saves
	 * it itself.  The call would overwrite the red zone: step over it, and
	 * align rsp for the call. */
	__asm__ volatile("movq %%rsp, %%rax\n\t"
	                 "subq $128, %%rsp\n\t"
	                 "andq $-16, %%rsp\n\t"
	                 "pushq %%rax\n\t" /* the original rsp */
	                 "pushq %%rbp\n\t"
	                 "pushq %%rdi\n\t" /* rc, for after the call */
	                 "subq $8, %%rsp\n\t"
	                 "movq 16(%%rdi), %%rax\n\t"
	                 "movq 0(%%rax), %%rbx\n\t"
	                 "movq 8(%%rax), %%rbp\n\t"
	                 "movq 16(%%rax), %%r12\n\t"
	                 "movq 24(%%rax), %%r13\n\t"
	                 "movq 32(%%rax), %%r14\n\t"
	                 "movq 40(%%rax), %%r15\n\t"
	                 "movq 8(%%rdi), %%rsi\n\t"
	                 "movq 0(%%rdi), %%rdi\n\t"
	                 "call ursa__ctx_switch\n\t"
	                 "movq 8(%%rsp), %%rdi\n\t"
	                 "movq 24(%%rdi), %%rax\n\t"
	                 "movq %%rbx, 0(%%rax)\n\t"
	                 "movq %%rbp, 8(%%rax)\n\t"
	                 "movq %%r12, 16(%%rax)\n\t"
	                 "movq %%r13, 24(%%rax)\n\t"
	                 "movq %%r14, 32(%%rax)\n\t"
	                 "movq %%r15, 40(%%rax)\n\t"
	                 "addq $16, %%rsp\n\t"
	                 "popq %%rbp\n\t"
	                 "popq %%rsp"
	                 : "+D"(rc)
	                 :
	                 : "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "rbx", "r12", "r13",
	                   "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
	                   "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc",
	                   "memory");
}
#else
#define NREGS 18
static const char *const reg_names[NREGS] = {"x19", "x20", "x21", "x22", "x23", "x24",
                                             "x25", "x26", "x27", "x28", "d8",  "d9",
                                             "d10", "d11", "d12", "d13", "d14", "d15"};

__attribute__((noinline)) static void switch_with_regs(struct regs_call *rc)
{
	/* rc stays in x0 and on the stack across the call (AArch64 Linux has
	 * no red zone).  x29 is left alone: the compiler may use it. */
	register struct regs_call *x0 __asm__("x0") = rc;

	__asm__ volatile("str x0, [sp, #-16]!\n\t"
	                 "ldr x9, [x0, #16]\n\t"
	                 "ldp x19, x20, [x9, #0]\n\t"
	                 "ldp x21, x22, [x9, #16]\n\t"
	                 "ldp x23, x24, [x9, #32]\n\t"
	                 "ldp x25, x26, [x9, #48]\n\t"
	                 "ldp x27, x28, [x9, #64]\n\t"
	                 "ldp d8, d9, [x9, #80]\n\t"
	                 "ldp d10, d11, [x9, #96]\n\t"
	                 "ldp d12, d13, [x9, #112]\n\t"
	                 "ldp d14, d15, [x9, #128]\n\t"
	                 "ldr x1, [x0, #8]\n\t"
	                 "ldr x0, [x0, #0]\n\t"
	                 "bl ursa__ctx_switch\n\t"
	                 "ldr x0, [sp], #16\n\t"
	                 "ldr x9, [x0, #24]\n\t"
	                 "stp x19, x20, [x9, #0]\n\t"
	                 "stp x21, x22, [x9, #16]\n\t"
	                 "stp x23, x24, [x9, #32]\n\t"
	                 "stp x25, x26, [x9, #48]\n\t"
	                 "stp x27, x28, [x9, #64]\n\t"
	                 "stp d8, d9, [x9, #80]\n\t"
	                 "stp d10, d11, [x9, #96]\n\t"
	                 "stp d12, d13, [x9, #112]\n\t"
	                 "stp d14, d15, [x9, #128]"
	                 : "+r"(x0)
	                 :
	                 : "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12",
	                   "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23",
	                   "x24", "x25", "x26", "x27", "x28", "x30", "v0", "v1", "v2", "v3", "v4", "v5",
	                   "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",
	                   "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27",
	                   "v28", "v29", "v30", "v31", "cc", "memory");
}
#endif

#define MAIN_SALT 0xa5a5a5a5a5a5a5a5u
#define FIBER_SALT 0x3c3c3c3c3c3c3c3cu

static void regs_pattern(uint64_t *v, uint64_t salt, int round)
{
	for (int i = 0; i < NREGS; i++)
		v[i] = salt ^ ((uint64_t)(i + 1) * 0x0101010101010101u) ^ ((uint64_t)round << 40);
}

/* Counts the registers of out[] that differ from in[]; names the first few. */
static unsigned long regs_diff(const char *side, const uint64_t *in, const uint64_t *out)
{
	static int reported;
	unsigned long bad = 0;

	for (int i = 0; i < NREGS; i++) {
		if (in[i] == out[i])
			continue;
		bad++;
		if (reported++ < 8)
			fprintf(stderr, "  %s: %s = %#llx, expected %#llx\n", side, reg_names[i],
			        (unsigned long long)out[i], (unsigned long long)in[i]);
	}
	return bad;
}

static struct {
	struct ursa__ctx main, fib;
	unsigned long fiber_bad, fiber_checked;
} rs;

static void regs_fiber(void *arg)
{
	(void)arg;
	for (int round = 0;; round++) {
		uint64_t in[NREGS], out[NREGS];
		struct regs_call rc = {&rs.fib, &rs.main, in, out};

		regs_pattern(in, FIBER_SALT, round);
		switch_with_regs(&rc);
		rs.fiber_bad += regs_diff("fiber", in, out);
		rs.fiber_checked++;
	}
}

/* Each side loads its own values into all callee-saved registers right
 * before switching, so each switch in finds them clobbered by the other. */
static void test_callee_saved_regs(void)
{
	unsigned long main_bad = 0;

	ursa__ctx_init(&rs.fib, stack_alloc(STACK_SIZE), STACK_SIZE, regs_fiber, NULL);
	for (int round = 0; round < REGS_ROUNDS; round++) {
		uint64_t in[NREGS], out[NREGS];
		struct regs_call rc = {&rs.main, &rs.fib, in, out};

		regs_pattern(in, MAIN_SALT, round);
		switch_with_regs(&rc);
		main_bad += regs_diff("main", in, out);
	}
	CHECK(main_bad == 0);
	CHECK(rs.fiber_bad == 0);
	CHECK(rs.fiber_checked == REGS_ROUNDS - 1);
}

/* ---- floating-point control state is per context ---- */

/* The rounding mode as the hardware holds it, as an FE_* value; -1 on x86-64
 * if the SSE (MXCSR) and x87 modes disagree. */
static int hw_rounding(void)
{
#if defined(__x86_64__)
	uint32_t mxcsr;
	uint16_t cw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	return (int)((mxcsr >> 3) & 0xc00) == (cw & 0xc00) ? cw & 0xc00 : -1;
#else
	uint64_t fpcr;

	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	return (int)(fpcr & 0xc00000);
#endif
}

/* Whether the FP control state is the documented start state of a context:
 * round to nearest, all exceptions masked, nothing else set. */
static int fp_control_is_default(void)
{
#if defined(__x86_64__)
	uint32_t mxcsr;
	uint16_t cw;

	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	return (mxcsr & ~0x3fu) == 0x1f80 && cw == 0x037f; /* ignore the sticky flags */
#else
	uint64_t fpcr;

	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	return fpcr == 0;
#endif
}

static struct {
	struct ursa__ctx main, fib;
	int entry_default, entry_mode, entry_traps;
	int resumed_mode, resumed_hw;
	double third;
} fr;

static volatile double one = 1.0, three = 3.0;

static void rounding_fiber(void *arg)
{
	(void)arg;
	fr.entry_default = fp_control_is_default();
	fr.entry_mode = fegetround();
	fr.entry_traps = fegetexcept();
	fesetround(FE_UPWARD);
	ursa__ctx_switch(&fr.fib, &fr.main);
	fr.resumed_mode = fegetround();
	fr.resumed_hw = hw_rounding();
	fr.third = one / three;
	ursa__ctx_switch(&fr.fib, &fr.main);
}

static void test_fp_control_per_context(void)
{
	int traps;

	/* Main runs with a mode and a trap of its own; a new context must not
	 * inherit them. */
	fesetround(FE_DOWNWARD);
	traps = feenableexcept(FE_DIVBYZERO) != -1 && (fegetexcept() & FE_DIVBYZERO);
	ursa__ctx_init(&fr.fib, stack_alloc(STACK_SIZE), STACK_SIZE, rounding_fiber, NULL);
	ursa__ctx_switch(&fr.main, &fr.fib);
	CHECK(fr.entry_default);
	CHECK(fr.entry_mode == FE_TONEAREST);
	CHECK(fr.entry_traps == 0);
	/* The fiber's fesetround(FE_UPWARD) did not leak into main. */
	CHECK(fegetround() == FE_DOWNWARD);
	CHECK(hw_rounding() == FE_DOWNWARD);
	if (traps)
		CHECK(fegetexcept() == FE_DIVBYZERO);
	else
		skip("FP trap enable per context", "this CPU does not trap FP exceptions");
	fedisableexcept(FE_ALL_EXCEPT);

	/* Main changes its mode again; the fiber gets its own back. */
	fesetround(FE_TOWARDZERO);
	ursa__ctx_switch(&fr.main, &fr.fib);
	CHECK(fr.resumed_mode == FE_UPWARD);
	CHECK(fr.resumed_hw == FE_UPWARD);
	CHECK(fegetround() == FE_TOWARDZERO);
	/* And the hardware really used it: 1/3 rounded up > 1/3 truncated. */
	CHECK(fr.third > one / three);
	fesetround(FE_TONEAREST);
}

/* ---- the entry runs on an aligned stack, at the end of the frame chain ---- */

struct entry_probe {
	struct ursa__ctx main, fib;
	uintptr_t local, cfa, sp;
	void *caller_fp;
	int unwind; /* whether to run the unwinder: it needs more than 4 KiB */
	int unwind_reason, unwind_frames;
};

static _Unwind_Reason_Code count_frame(struct _Unwind_Context *uc, void *arg)
{
	(void)uc;
	return ++*(int *)arg > 64 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

static void probe_fiber(void *arg)
{
	struct entry_probe *p = arg;
	_Alignas(16) volatile char local[16];

	local[0] = 1;
	p->local = (uintptr_t)local;
	/* The CFA is the sp at the call of this function: 16-byte aligned by the ABI. */
	p->cfa = (uintptr_t)__builtin_dwarf_cfa();
#if defined(__aarch64__)
	__asm__ volatile("mov %0, sp" : "=r"(p->sp));
#else
	p->sp = p->cfa; /* rsp itself is 8 off inside a function */
#endif
	/* The caller's saved frame pointer: the trampoline's, which is 0. */
	p->caller_fp = *(void **)__builtin_frame_address(0);
	if (p->unwind)
		p->unwind_reason = _Unwind_Backtrace(count_frame, &p->unwind_frames);
	ursa__ctx_switch(&p->fib, &p->main);
}

static void test_entry_frame(void)
{
	/* Stacks of several sizes and offsets, so the top lands differently. */
	static const size_t sizes[] = {4096, 4096 + 16, 8192 + 48, STACK_SIZE};
	static const size_t offsets[] = {0, 16, 32, 48};
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct entry_probe p;
		unsigned char *mem = stack_alloc(sizes[i] + page);
		unsigned char *lo = mem + offsets[i], *top = lo + sizes[i];
		size_t below = 0, above = 0;

		/* A canary around the stack: init and the fiber stay inside it. */
		memset(mem, 0xcd, sizes[i] + page);
		memset(&p, 0, sizeof p);
		p.unwind = sizes[i] >= 16384;
		ursa__ctx_init(&p.fib, lo, sizes[i], probe_fiber, &p);
		CHECK((unsigned char *)p.fib.sp >= lo && (unsigned char *)p.fib.sp < top);
		if (i == 0) {
			unsigned char *b = lo;

			while (b < top && *b == 0xcd)
				b++;
			printf("  init wrote the top %zu bytes of the stack\n", (size_t)(top - b));
		}
		ursa__ctx_switch(&p.main, &p.fib);
		for (unsigned char *b = mem; b < lo; b++)
			below += *b != 0xcd;
		for (unsigned char *b = top; b < mem + sizes[i] + page; b++)
			above += *b != 0xcd;
		CHECK(below == 0 && above == 0);

		CHECK(p.local % 16 == 0);
		CHECK(p.cfa % 16 == 0);
		CHECK(p.sp % 16 == 0);
		CHECK(p.cfa <= (uintptr_t)top && p.cfa >= (uintptr_t)top - 256);
		CHECK(p.caller_fp == NULL);
		/* The unwinder stops at the trampoline, a few frames up. */
		if (p.unwind) {
			CHECK(p.unwind_reason == _URC_END_OF_STACK);
			CHECK(p.unwind_frames >= 2 && p.unwind_frames <= 8);
		}
	}
}

/* ---- the signal mask is per thread, not per context ---- */

static struct {
	struct ursa__ctx main, fib;
	int fiber_sees_blocked;
} sm;

static int usr2_blocked(void)
{
	sigset_t cur;

	sigprocmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, SIGUSR2);
}

static void sigmask_fiber(void *arg)
{
	sigset_t usr2;

	(void)arg;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	ursa__ctx_switch(&sm.fib, &sm.main);
	sm.fiber_sees_blocked = usr2_blocked();
	ursa__ctx_switch(&sm.fib, &sm.main);
}

static void test_sigmask_not_switched(void)
{
	sigset_t usr2;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	ursa__ctx_init(&sm.fib, stack_alloc(STACK_SIZE), STACK_SIZE, sigmask_fiber, NULL);
	ursa__ctx_switch(&sm.main, &sm.fib);
	CHECK(usr2_blocked());
	sigprocmask(SIG_UNBLOCK, &usr2, NULL);
	ursa__ctx_switch(&sm.main, &sm.fib);
	CHECK(!sm.fiber_sees_blocked);
}

/* ---- an entry that returns traps ---- */

static void returning_entry(void *arg)
{
	*(int *)arg = 1;
}

static void entry_returns(void)
{
	static struct ursa__ctx main_ctx, fib;
	int ran = 0;

	ursa__ctx_init(&fib, stack_alloc(STACK_SIZE), STACK_SIZE, returning_entry, &ran);
	ursa__ctx_switch(&main_ctx, &fib);
	_exit(3); /* unreachable: nothing switches back */
}

static void test_entry_return_traps(void)
{
#if defined(__x86_64__)
	int expected = SIGILL; /* ud2 */
#else
	int expected = SIGTRAP; /* brk */
#endif
	int status = run_in_child(entry_returns);

	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == expected);
}

#if defined(__aarch64__)
/* ---- BTI: the landing pads are right (aarch64) ---- */

#ifndef PROT_BTI
#define PROT_BTI 0x10
#endif
#ifndef HWCAP2_BTI
#define HWCAP2_BTI (1 << 17)
#endif
#ifndef HWCAP_PACA
#define HWCAP_PACA (1 << 30)
#endif

/* A function without a landing pad, alone on its page so that guarding the
 * page affects nothing else: a BLR to it faults where BTI is enforced. */
__asm__(".pushsection .text.ctx_test_nobti, \"ax\", %progbits\n"
        ".p2align 12\n"
        ".type nobti_stub, %function\n"
        "nobti_stub:\n"
        "	mov w0, #7\n"
        "	ret\n"
        ".size nobti_stub, .-nobti_stub\n"
        ".p2align 12\n"
        ".popsection");
int nobti_stub(void);

static void guard(const void *from, const void *to)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)from & ~(page - 1);
	uintptr_t hi = ((uintptr_t)to + page - 1) & ~(page - 1);

	if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_EXEC | PROT_BTI) != 0)
		_exit(4);
}

static void call_nobti_stub(void)
{
	int (*volatile fn)(void) = nobti_stub;

	guard((const void *)nobti_stub, (const char *)nobti_stub + 1);
	_exit(fn());
}

static void never_run(void *arg)
{
	(void)arg;
	_exit(3);
}

/* The trampoline's address, from a fresh save area (lr at sp + 8, see the
 * table in switch_aarch64.S), with its PAC stripped. */
static uintptr_t trampoline_address(void)
{
	static struct ursa__ctx c;
	uintptr_t lr;

	ursa__ctx_init(&c, stack_alloc(STACK_SIZE), STACK_SIZE, never_run, NULL);
	lr = ((uintptr_t *)c.sp)[1];
	__asm__("mov x30, %1\n\txpaclri\n\tmov %0, x30" : "=r"(lr) : "r"(lr) : "x30");
	return lr;
}

static void call_trampoline(void)
{
	void (*volatile fn)(void) = (void (*)(void))trampoline_address();

	guard((const void *)ursa__ctx_switch, (const char *)ursa__ctx_init + 256);
	fn();
	_exit(3);
}

static struct ursa__ctx bti_main, bti_fib;
static void (*volatile switch_ptr)(struct ursa__ctx *, struct ursa__ctx *) = ursa__ctx_switch;
static void (*volatile init_ptr)(struct ursa__ctx *, void *, size_t, ursa__ctx_entry,
                                 void *) = ursa__ctx_init;

/* Called by the trampoline's BLR: needs a landing pad whatever the build. */
__attribute__((target("branch-protection=bti"))) static void bti_fiber(void *arg)
{
	++*(int *)arg;
	switch_ptr(&bti_fib, &bti_main);
	++*(int *)arg;
	switch_ptr(&bti_fib, &bti_main);
}

static void switch_on_guarded_pages(void)
{
	static int runs;
	unsigned char *stack = stack_alloc(STACK_SIZE);

	/* Our code and whatever shares its pages; from here the child only
	 * calls through pointers into ursa__ctx_*, returns by ret, and exits. */
	guard((const void *)ursa__ctx_switch, (const char *)ursa__ctx_init + 256);
	init_ptr(&bti_fib, stack, STACK_SIZE, bti_fiber, &runs);
	switch_ptr(&bti_main, &bti_fib);
	switch_ptr(&bti_main, &bti_fib);
	_exit(runs == 2 ? 0 : 3);
}

static void test_bti_landing_pads(void)
{
	int status;

	if (!(getauxval(AT_HWCAP2) & HWCAP2_BTI)) {
		skip("BTI landing pads", "the CPU has no BTI");
		return;
	}
	status = run_in_child(call_nobti_stub);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 7) {
		skip("BTI landing pads", "guarded pages are not enforced here");
		return;
	}
	/* Enforcement works: a BLR to a function without a pad dies ... */
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGILL);
	/* ... ursa__ctx_init and ursa__ctx_switch can be called through
	 * pointers, and RET into the trampoline needs no pad ... */
	status = run_in_child(switch_on_guarded_pages);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* ... while a BLR into the trampoline is refused. */
	status = run_in_child(call_trampoline);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGILL);
}

/* ---- PAC: the saved lr is signed and checked (aarch64) ---- */

static struct ursa__ctx pac_main, pac_fib;

static void switch_to_forged_lr(void)
{
	ursa__ctx_init(&pac_fib, stack_alloc(STACK_SIZE), STACK_SIZE, never_run, NULL);
	((uintptr_t *)pac_fib.sp)[1] ^= (uintptr_t)1 << 50; /* a bit of the PAC field */
	ursa__ctx_switch(&pac_main, &pac_fib);
	_exit(3);
}

static void test_pac_signed_lr(void)
{
	uintptr_t trampoline;
	int signed_seen = 0, status;

	if (!(getauxval(AT_HWCAP) & HWCAP_PACA)) {
		skip("PAC signed lr", "the CPU has no address authentication");
		return;
	}
	trampoline = trampoline_address();
	/* Several tops (modifiers), so that a PAC of 0 by chance cannot fail it. */
	for (int i = 0; i < 4; i++) {
		struct ursa__ctx c;
		unsigned char *lo = stack_alloc(STACK_SIZE);

		ursa__ctx_init(&c, lo, STACK_SIZE - 16 * (size_t)i, never_run, NULL);
		signed_seen |= ((uintptr_t *)c.sp)[1] != trampoline;
	}
	CHECK(signed_seen);
	status = run_in_child(switch_to_forged_lr);
	CHECK(WIFSIGNALED(status) &&
	      (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGILL || WTERMSIG(status) == SIGBUS));
}
#endif /* __aarch64__ */

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
#if defined(__aarch64__)
	printf("ctx_test " ARCH_NAME ": hwcap paca=%d bti=%d\n", !!(getauxval(AT_HWCAP) & HWCAP_PACA),
	       !!(getauxval(AT_HWCAP2) & HWCAP2_BTI));
#else
	printf("ctx_test " ARCH_NAME "\n");
#endif
	test_pingpong();
	test_callee_saved_regs();
	test_fp_control_per_context();
	test_entry_frame();
	test_sigmask_not_switched();
	test_entry_return_traps();
#if defined(__aarch64__)
	test_bti_landing_pads();
	test_pac_signed_lr();
#endif
	if (skipped)
		printf(ARCH_NAME ": %d passed, %d failed, %d skipped\n", passed, failed, skipped);
	else
		printf(ARCH_NAME ": %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
