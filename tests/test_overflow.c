/* SPDX-License-Identifier: MIT */
/*
 * A stack overflow in a task is caught by the guard region and reported with
 * the task's name and core, then the process aborts.  Runs in a forked child
 * so the parent can read the report.
 */
#include "helpers.h"

#include "core.h" /* the task's stack, to write past its top */

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
	int pipefd[2], status = 0;
	char buf[4096] = "";
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	/* The child must not touch Criterion (not even a passing assert: the
	 * runner rejects messages from processes it did not start). */
	if (pid == 0) {
		struct ursa_opts o = {.cores = 2};

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		/* The report must come from our handler, not from a core dump. */
		signal(SIGABRT, SIG_DFL);
		(void)!ursa_run(main_overflow, NULL, &o, NULL);
		_exit(0); /* reaching here means the overflow went unnoticed */
	}
	cr_assert_neq(pid, -1);
	close(pipefd[1]);
	while ((n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(pipefd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child did not abort (status %#x); stderr: %s", status, buf);
	cr_assert_not_null(strstr(buf, "stack overflow in task 'deep-thinker'"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "on core 1"), "stderr: %s", buf);
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
	int pipefd[2], status = 0;
	char buf[4096] = "", want[256];
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) {
		struct ursa_opts o = {.cores = 2};

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		signal(SIGABRT, SIG_DFL);
		(void)!ursa_run(main, arg, &o, NULL);
		_exit(0); /* reaching here means the overflow went unnoticed */
	}
	cr_assert_neq(pid, -1);
	close(pipefd[1]);
	while ((n = read(pipefd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(pipefd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
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
