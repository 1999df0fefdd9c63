/* SPDX-License-Identifier: MIT */
/*
 * Crash reports.  A stack overflow in a task is caught by the guard region
 * and reported with the task's name and core, then the process aborts; any
 * other crash in a task or a blocking-pool job is reported with what was
 * running and a backtrace before the previous handler (ASan's or the
 * default) ends the process.  Each runs in a forked child so the parent can
 * read the report.
 */
#include "helpers.h"

#include "task.h" /* the task's stack, to write past its top */

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Winfinite-recursion"
/* Unbounded on purpose: it must run into the guard region. */
static int recurse(volatile char *prev, int depth)
{
	volatile char frame[512];

	frame[0] = (char)depth;
	frame[511] = prev ? prev[0] : 0;
	return recurse(frame, depth + 1) + frame[1];
}

static void *overflower(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)recurse(NULL, 0);
}

static void *main_overflow(void *arg)
{
	struct ursa_spawn_opts so = {.name = "deep-thinker", .stack_size = 32 * 1024};
	struct ursa_task *t;

	(void)arg;
	if (ursa_spawn_ex(&t, 1, overflower, NULL, &so))
		return (void *)1;
	(void)!ursa_join(t, NULL);
	return NULL;
}

Test(overflow, overflow_is_reported_with_task_name_and_core)
{
	static char buf[65536];
	int status = run_in_child(main_overflow, NULL, 2, buf, sizeof(buf));

	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child did not abort (status %#x); stderr: %s", status, buf);
	cr_assert_not_null(strstr(buf, "stack overflow in task 'deep-thinker'"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "on core 1"), "stderr: %s", buf);
	/* The entry function is static: named through the symbol table. */
#ifdef URSA_HAVE_LIBDW
	cr_assert_not_null(strstr(buf, "symbolised (entry overflower)"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, " recurse+0x"), "no symbolised frame: %s", buf);
#endif
	/* Every frame carries module+offset, whatever the build. */
	cr_assert_not_null(strstr(buf, "  #1  "), "no backtrace: %s", buf);
	cr_assert_not_null(strstr(strstr(buf, "  #1  "), "+0x"), "no module+offset: %s", buf);
}

/* ------------------------------------------------------------ other crashes */

/* Unmapped, and not NULL (UBSan would stop a NULL store before it faults);
 * volatile keeps it out of the optimiser's sight. */
static volatile int *volatile nowhere = (volatile int *)8;

static void *crash_job(void *arg)
{
	(void)arg;
	*nowhere = 42;
	return NULL;
}

static void *main_pool_crash(void *arg)
{
	(void)arg;
	(void)!ursa_blocking(crash_job, (void *)0x5eed, NULL);
	return NULL;
}

/* A job that faults on a pool thread used to die silently: the pool thread
 * blocked SIGSEGV, so the kernel killed the process without a word. */
Test(overflow, crash_in_a_blocking_job_is_reported)
{
	static char buf[65536];
	int status = run_in_child(main_pool_crash, NULL, 2, buf, sizeof(buf));

	cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
	          "the crash went unnoticed; stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "ursa: crash: SIGSEGV"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "in a blocking-pool thread running "), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "(0x5eed) for task 'main'"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "  #1  "), "no backtrace: %s", buf);
#ifdef URSA_HAVE_LIBDW
	cr_assert_not_null(strstr(buf, "symbolised (entry crash_job)"), "stderr: %s", buf);
#endif
}

static void *crasher(void *arg)
{
	(void)arg;
	*nowhere = 7;
	return NULL;
}

static void *main_task_crash(void *arg)
{
	struct ursa_spawn_opts so = {.name = "clumsy"};
	struct ursa_task *t;

	(void)arg;
	if (ursa_spawn_ex(&t, 1, crasher, NULL, &so))
		return (void *)1;
	(void)!ursa_join(t, NULL);
	return NULL;
}

Test(overflow, crash_in_a_task_names_the_task_and_core)
{
	static char buf[65536];
	int status = run_in_child(main_task_crash, NULL, 2, buf, sizeof(buf));

	cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
	          "the crash went unnoticed; stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "ursa: crash: SIGSEGV (fault address 0x8) in task 'clumsy'"),
	                   "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "on core 1"), "stderr: %s", buf);
#ifdef URSA_HAVE_LIBDW
	cr_assert_not_null(strstr(buf, "symbolised (entry crasher)"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "crasher+0x"), "stderr: %s", buf);
	if (URSA_TEST_DEBUG_INFO)
		cr_assert_not_null(strstr(buf, "test_overflow.c:"), "no file:line: %s", buf);
#endif
}

/* ------------------------------------------------ slabs and jumping frames */

long ursa_test_big_frame(long seed); /* bigframe.c: no stack-clash probes */

/*
 * Run `main` in a forked child whose stderr we read; it must abort with a
 * report containing `what` (printf'd with the task's name) and `core`.
 */
static void expect_abort_with(ursa_fn main, void *arg, const char *what, const char *task,
                              unsigned core)
{
	char buf[4096], want[256];
	int status = run_in_child(main, arg, 2, buf, sizeof(buf));

	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child did not abort (status %#x); stderr: %s", status, buf);
	snprintf(want, sizeof(want), what, task);
	cr_assert_not_null(strstr(buf, want), "stderr: %s", buf);
	snprintf(want, sizeof(want), "on core %u", core);
	cr_assert_not_null(strstr(buf, want), "stderr: %s", buf);
}

static void expect_report(ursa_fn main, void *arg, const char *task, unsigned core)
{
	expect_abort_with(main, arg, "stack overflow in task '%s'", task, core);
}

struct jump {
	size_t stack_size;
	unsigned core;
	bool big_frame;
};

static void *jumper(void *arg)
{
	const struct jump *j = arg;

	if (j->big_frame)
		return (void *)(intptr_t)ursa_test_big_frame(7);
	return (void *)(intptr_t)recurse(NULL, 0);
}

static void *idler(void *arg)
{
	struct ursa_event *e = arg;

	return ursa_event_wait(e) == 0 ? e : NULL;
}

/* The offender's slot sits among live neighbours, one above and one below
 * in the same slab (slots are handed out in address order when new), so a
 * frame that jumped the guard would write into a live task's stack. */
static void *main_jump(void *arg)
{
	const struct jump *j = arg;
	struct ursa_spawn_opts so = {.name = "jumper", .stack_size = j->stack_size};
	struct ursa_spawn_opts quiet = {.stack_size = j->stack_size};
	struct ursa_task *n[8], *t;
	struct ursa_event e;

	ursa_event_init(&e);
	for (int i = 0; i < 4; i++)
		if (ursa_spawn_ex(&n[i], j->core, idler, &e, &quiet))
			return (void *)1;
	if (ursa_spawn_ex(&t, j->core, jumper, arg, &so))
		return (void *)1;
	for (int i = 4; i < 8; i++)
		if (ursa_spawn_ex(&n[i], j->core, idler, &e, &quiet))
			return (void *)1;
	(void)!ursa_join(t, NULL);
	return NULL;
}

Test(overflow, recursion_in_a_slab_stack_among_live_neighbours_is_reported)
{
	struct jump j = {.stack_size = 0, .core = 0, .big_frame = false};

	expect_report(main_jump, &j, "jumper", 0);
}

/* Issue 20: a 152 KiB local array in code built without stack-clash probes
 * wrote over a neighbouring task's stack with a 16 KiB guard and the
 * program exited 0.  The 256 KiB guard is bigger than the frame: the first
 * write lands in it, wherever the stack pointer was.  Worst case first: a
 * 16 KiB stack, so the write is 136 KiB below the stack's bottom. */
Test(overflow, a_152k_frame_without_stack_clash_probes_is_caught_on_a_16k_stack)
{
	struct jump j = {.stack_size = 16 * 1024, .core = 1, .big_frame = true};

	expect_report(main_jump, &j, "jumper", 1);
}

Test(overflow, a_152k_frame_without_stack_clash_probes_is_caught_on_a_default_stack)
{
	struct jump j = {.stack_size = 0, .core = 0, .big_frame = true};

	expect_report(main_jump, &j, "jumper", 0);
}

/* The record lives above the stack's top now: a buffer overrun running up
 * from a task's first frames reaches the canary below it first, and the
 * task's end reports it instead of freeing a damaged record. */
static void *overrun_up(void *arg)
{
	struct ursa_task *self = ursa_self();
	volatile char *top = (char *)ursa__stack_lo(&self->stack) + self->stack.size;

	(void)arg;
	top[3] = 'x'; /* what a strcpy past a buffer in the first frame does */
	return NULL;
}

static void *main_overrun(void *arg)
{
	struct ursa_spawn_opts so = {.name = "climber"};
	struct ursa_task *t;

	(void)arg;
	if (ursa_spawn_ex(&t, 1, overrun_up, NULL, &so))
		return (void *)1;
	(void)!ursa_join(t, NULL);
	return NULL;
}

Test(overflow, a_write_past_the_stack_top_is_reported_at_the_tasks_end)
{
	expect_abort_with(main_overrun, NULL, "task '%s' (entry ?) on core 1 wrote past the top of "
	                                      "its stack", "climber", 1);
}
