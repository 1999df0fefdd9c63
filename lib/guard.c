/* SPDX-License-Identifier: MIT */
/*
 * guard.c: crash reports for the threads the runtime runs user code on.
 * A fault in the running task's guard region is a stack overflow: print
 * which task (name, entry function, core) and abort.  Any other fatal
 * signal raised synchronously in a worker or a blocking-pool thread (SEGV,
 * BUS, FPE, ILL, TRAP, ABRT) is reported once -- what was running, and a
 * backtrace -- and then passed on to whichever handler was installed before
 * ours (ASan's, the application's, or the default, which ends the process
 * as before).  Signals in other threads are only passed on.
 */
#include "guard.h"

#include "pool.h"
#include "sched.h"
#include "symbolize.h"
#include "task.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Big enough for the handler's formatting (and libdw's lookups) even under
 * ASan. */
#define ALTSTACK_SIZE (256 * 1024)
#define MAX_FRAMES 48

/* The synchronous signals: raised by the faulting thread itself, so a
 * report can say what that thread was running. */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned guard_users;
static struct sigaction old_actions[NFATAL];
static atomic_bool reported; /* one crash report per process */

static struct sigaction *old_action(int sig)
{
	for (size_t i = 0; i < NFATAL; i++)
		if (fatal_signals[i] == sig)
			return &old_actions[i];
	return NULL;
}

void ursa__guard_sync_signals(sigset_t *set)
{
	for (size_t i = 0; i < NFATAL; i++)
		sigdelset(set, fatal_signals[i]);
}

static void say(const char *buf, int n, size_t cap)
{
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n < cap ? (size_t)n : cap - 1);
}

/* The backtrace: plain module+offset lines first (no allocation), then, if
 * libdw can load the modules, the same frames with functions and lines.
 * We are on the way out; a symbolizer that deadlocks in a corrupt heap
 * would cost only the second half. */
static void backtrace_report(const void *entry_fn)
{
	void *frames[MAX_FRAMES];
	int n = backtrace(frames, MAX_FRAMES);
	struct ursa__sym *sym;

	ursa__sym_print(NULL, STDERR_FILENO, frames, n, false);
	sym = ursa__sym_open();
	if (sym) {
		char buf[256], name[128] = "";
		int len;

		if (entry_fn)
			ursa__sym_name(sym, entry_fn, name, sizeof(name));
		len = snprintf(buf, sizeof(buf), "ursa: the same frames, symbolised%s%s%s:\n",
		               entry_fn ? " (entry " : "", name, entry_fn ? ")" : "");
		say(buf, len, sizeof(buf));
		ursa__sym_print(sym, STDERR_FILENO, frames, n, false);
		ursa__sym_close(sym);
	}
}

static void report_overflow(struct ursa__core *c, struct ursa_task *t, const void *addr)
{
	char buf[512], entry[128];
	int n;

	/* Not async-signal-safe (snprintf, the symbolizer); we are about to
	 * abort, and a clear message is worth the small risk. */
	ursa__sym_name(NULL, (void *)(uintptr_t)t->fn, entry, sizeof(entry));
	n = snprintf(buf, sizeof(buf),
	             "ursa: stack overflow in task '%s' (entry %s) on core %u: fault at %p, "
	             "in the guard below its %zu-byte stack; raise stack_size "
	             "(URSA_STACK_SIZE or ursa_spawn_opts.stack_size)\n",
	             t->name[0] ? t->name : "(unnamed)", entry, c->id, addr, t->stack.size);
	say(buf, n, sizeof(buf));
	backtrace_report((void *)(uintptr_t)t->fn);
}

/* What was running on this thread, if it is one of ours: the first line of
 * a crash report.  False for a thread the runtime does not run code on. */
static bool describe_thread(int sig, const siginfo_t *si, char *buf, size_t len, int *n,
                            const void **entry)
{
	struct ursa__core *c = ursa__sched_core;
	ursa_fn job_fn;
	void *job_arg;
	struct ursa_task *job_task;
	char fn[128];
	const char *what = sigabbrev_np(sig);

	if (c && c->current) {
		struct ursa_task *t = c->current;

		*entry = (void *)(uintptr_t)t->fn;
		ursa__sym_name(NULL, *entry, fn, sizeof(fn));
		*n = snprintf(buf, len, "ursa: crash: SIG%s (fault address %p) in task '%s' (entry %s) "
		              "on core %u.  Backtrace:\n",
		              what ? what : "?", si->si_addr, t->name[0] ? t->name : "(unnamed)", fn,
		              c->id);
	} else if (c) {
		*n = snprintf(buf, len, "ursa: crash: SIG%s (fault address %p) in core %u's scheduler, "
		              "between tasks.  Backtrace:\n",
		              what ? what : "?", si->si_addr, c->id);
	} else if (ursa__pool_running(&job_fn, &job_arg, &job_task)) {
		*entry = (void *)(uintptr_t)job_fn;
		ursa__sym_name(NULL, *entry, fn, sizeof(fn));
		*n = snprintf(buf, len, "ursa: crash: SIG%s (fault address %p) in a blocking-pool thread "
		              "running %s(%p) for task '%s'.  Backtrace:\n",
		              what ? what : "?", si->si_addr, fn, job_arg,
		              job_task && job_task->name[0] ? job_task->name : "(unnamed)");
	} else {
		return false;
	}
	return true;
}

void ursa__guard_top_overrun(struct ursa__core *c, struct ursa_task *t)
{
	char buf[512], entry[128];
	int n;

	/* The record sits just above the canary and may be damaged too: the
	 * name is bounded, a garbage entry pointer only fails the lookup. */
	ursa__sym_name(NULL, (void *)(uintptr_t)t->fn, entry, sizeof(entry));
	n = snprintf(buf, sizeof(buf),
	             "ursa: task '%.31s' (entry %s) on core %u wrote past the top of its stack "
	             "(a buffer overrun running up from its first frames) into the canary below "
	             "its task record\n",
	             t->name[0] ? t->name : "(unnamed)", entry, c->id);
	say(buf, n, sizeof(buf));
	abort();
}

static void chain(const struct sigaction *old, int sig, siginfo_t *si, void *uctx)
{
	if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uctx);
		return;
	}
	if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
		/* Put the default back and return: a fault's instruction runs
		 * again and the default action (a core dump) happens.  A signal
		 * that was sent (raise, kill, abort) is sent again: it is blocked
		 * in here and arrives as we return. */
		signal(sig, SIG_DFL);
		if (si->si_code <= 0)
			raise(sig);
		return;
	}
	old->sa_handler(sig);
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa_task *t = c ? c->current : NULL;
	int saved = errno;

	if ((sig == SIGSEGV || sig == SIGBUS) && t && t->stack.map &&
	    ursa__stack_in_guard(&t->stack, si->si_addr)) {
		if (!atomic_exchange(&reported, true))
			report_overflow(c, t, si->si_addr);
		/* abort() must not be caught by a handler expecting a live stack. */
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	if (!atomic_exchange(&reported, true)) {
		const void *entry = NULL;
		char buf[512];
		int n;

		if (describe_thread(sig, si, buf, sizeof(buf), &n, &entry)) {
			say(buf, n, sizeof(buf));
			backtrace_report(entry);
		} else {
			atomic_store(&reported, false); /* not ours: leave it to the next */
		}
	}
	errno = saved;
	chain(old_action(sig), sig, si, uctx);
}

int ursa__guard_install(void)
{
	struct sigaction sa;
	int rc = 0;

	pthread_mutex_lock(&guard_mu);
	if (guard_users++ == 0) {
		void *warm[1];

		/* The first backtrace() loads libgcc_s: do it here, not in the
		 * handler. */
		(void)backtrace(warm, 1);
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_fatal;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < NFATAL && rc == 0; i++) {
			if (sigaction(fatal_signals[i], &sa, &old_actions[i]) != 0) {
				rc = -errno;
				while (i-- > 0)
					sigaction(fatal_signals[i], &old_actions[i], NULL);
				guard_users--;
			}
		}
	}
	pthread_mutex_unlock(&guard_mu);
	return rc;
}

void ursa__guard_uninstall(void)
{
	pthread_mutex_lock(&guard_mu);
	if (guard_users && --guard_users == 0)
		for (size_t i = 0; i < NFATAL; i++)
			sigaction(fatal_signals[i], &old_actions[i], NULL);
	pthread_mutex_unlock(&guard_mu);
}

int ursa__guard_altstack_init(void **altstack)
{
	stack_t ss;
	void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);

	*altstack = NULL;
	if (p == MAP_FAILED)
		return -errno;
	ss.ss_sp = p;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0) {
		int rc = -errno;

		munmap(p, ALTSTACK_SIZE);
		return rc;
	}
	*altstack = p;
	return 0;
}

void ursa__guard_altstack_fini(void *altstack)
{
	stack_t ss = {.ss_flags = SS_DISABLE};

	if (!altstack)
		return;
	sigaltstack(&ss, NULL);
	munmap(altstack, ALTSTACK_SIZE);
}

int ursa__guard_thread_init(struct ursa__core *c)
{
	return ursa__guard_altstack_init(&c->altstack);
}

void ursa__guard_thread_fini(struct ursa__core *c)
{
	ursa__guard_altstack_fini(c->altstack);
	c->altstack = NULL;
}
