/* SPDX-License-Identifier: MIT */
/*
 * A stack overflow in a task is caught by the guard region and reported with
 * the task's name and core, then the process aborts.  Runs in a forked child
 * so the parent can read the report.
 */
#include "helpers.h"

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
