/* SPDX-License-Identifier: MIT */
/*
 * helpers.h: what every test file shares: the recorder through which fibers
 * state what they expect (EXPECT, EXPECT_EQ, REQUIRE, JOIN_OK, JOIN_ANY; the
 * test then calls ASSERT_SEEN), counting open fds, memory mappings and address
 * space (to prove a runtime left nothing behind), and running a runtime with
 * explicit options.  Never call cr_assert* inside a fiber or a thread the
 * test started: a failing assertion longjmps to the test's own stack.
 */
#ifndef URSA_TEST_HELPERS_H
#define URSA_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ursa.h"

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static inline int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0, ch;

	if (!f)
		return -1;
	while ((ch = fgetc(f)) != EOF)
		if (ch == '\n')
			n++;
	fclose(f);
	return n;
}

/* The process's address space in KiB (VmSize), -1 if unknown. */
static inline long vm_size_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* Run main on a runtime of `cores` cores; assert it started and returned. */
static inline void *run_on(unsigned cores, ursa_fn main, void *arg)
{
	struct ursa_opts o = {.cores = cores};
	void *res = NULL;
	int rc = ursa_run(main, arg, &o, &res);

	cr_assert_eq(rc, 0, "ursa_run: %s", ursa_strerror(rc));
	return res;
}

#define MS (1000000ull)

/* Sleep, whatever happens: for the test sleeps whose result does not matter
 * (ursa_sleep is URSA_NODISCARD).  Record it with EXPECT where it does. */
static inline void nap(uint64_t ns)
{
	(void)!ursa_sleep(ns);
}

/*
 * The one way tests check what happens inside fibers (and threads), where
 * cr_assert must not run: each check is stated where the value is, the
 * first that fails keeps its line and value, and the test calls ASSERT_SEEN
 * after ursa_run returns.  Any thread may record (the fields are atomic).
 */
struct seen {
	_Atomic int line;
	_Atomic long long val;
};

/* cond must hold; v is what to report if it does not. */
#define EXPECT(s, cond, v)                                                                  \
	do {                                                                                \
		if (!(cond)) {                                                              \
			int zero_ = 0;                                                      \
			if (atomic_compare_exchange_strong(&(s)->line, &zero_, __LINE__))   \
				atomic_store(&(s)->val, (long long)(v));                    \
		}                                                                           \
	} while (0)

/* got (evaluated once) must equal want; reports got. */
#define EXPECT_EQ(s, got, want)                                                             \
	do {                                                                                \
		long long got_ = (long long)(got);                                          \
		EXPECT(s, got_ == (long long)(want), got_);                                 \
	} while (0)

/* For a step the rest of the fiber depends on (a spawn, a queue's creation):
 * if cond fails, record v and leave the fiber (returning NULL). */
#define REQUIRE(s, cond, v)                                                                 \
	do {                                                                                \
		if (!(cond)) {                                                              \
			EXPECT(s, false, v);                                                \
			return NULL;                                                        \
		}                                                                           \
	} while (0)

/* Join t, which must have ended normally / may also have been cancelled. */
#define JOIN_OK(s, t) EXPECT_EQ(s, ursa_join((t), NULL), 0)
#define JOIN_ANY(s, t)                                                                      \
	do {                                                                                \
		int j_ = ursa_join((t), NULL);                                              \
		EXPECT(s, j_ == 0 || j_ == -ECANCELED, j_);                                 \
	} while (0)

#define ASSERT_SEEN(s)                                                                      \
	cr_assert_eq(atomic_load(&(s)->line), 0, "check at line %d failed (value %lld)",      \
	             atomic_load(&(s)->line), atomic_load(&(s)->val))

/*
 * Run main(arg) on a runtime of `cores` cores in a forked child, with its
 * stderr captured into buf (cap bytes, NUL-terminated); the child's wait
 * status is returned.  For calls whose misuse must abort the process.  The
 * child never touches Criterion, not even a passing assert; it exits 0 if
 * the runtime returns, which the caller reads as "the misuse went unnoticed".
 */
static inline int run_in_child(ursa_fn main, void *arg, unsigned cores, char *buf, size_t cap)
{
	int pipefd[2], status = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) {
		struct ursa_opts o = {.cores = cores};

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		/* The report must come from our handler, not from a core dump. */
		signal(SIGABRT, SIG_DFL);
		(void)!ursa_run(main, arg, &o, NULL);
		_exit(0);
	}
	cr_assert_neq(pid, -1);
	close(pipefd[1]);
	/* Read it all (the child must never block on a full pipe), keep what
	 * fits. */
	for (;;) {
		char scratch[4096];
		size_t room = got < cap - 1 ? cap - 1 - got : 0;

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

#endif /* URSA_TEST_HELPERS_H */
