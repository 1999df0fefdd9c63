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

/* Run main on a 2-core runtime in a forked child; its stderr into buf.
 * Returns the child's wait status. */
static int run_in_child(ursa_fn main, char *buf, size_t len)
{
	int pipefd[2], status = 0;
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
		(void)!ursa_run(main, NULL, &o, NULL);
		_exit(0); /* reaching here means the crash went unnoticed */
	}
	cr_assert_neq(pid, -1);
	close(pipefd[1]);
	/* Read it all (the child must never block on a full pipe), keep what
	 * fits. */
	for (;;) {
		char scratch[4096];
		size_t room = got < len - 1 ? len - 1 - got : 0;

		n = read(pipefd[0], room ? buf + got : scratch, room ? room : sizeof(scratch));
		if (n <= 0)
			break;
		if (room)
			got += (size_t)n;
	}
	buf[got] = 0;
	close(pipefd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

Test(overflow, overflow_is_reported_with_task_name_and_core)
{
	static char buf[65536];
	int status = run_in_child(main_overflow, buf, sizeof(buf));

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
	int status = run_in_child(main_pool_crash, buf, sizeof(buf));

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
	int status = run_in_child(main_task_crash, buf, sizeof(buf));

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
