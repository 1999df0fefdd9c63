/* SPDX-License-Identifier: MIT */
/*
 * guard.c: the stack-overflow report.  A fault whose address lies in the
 * running task's guard region is an overflow: print which task (name, entry
 * function, core) and abort.  Any other fault goes to whichever handler was
 * installed before ours (ASan's, the application's, or the default).
 */
#include "guard.h"

#include "core.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Big enough for the handler's formatting even under ASan. */
#define ALTSTACK_SIZE (64 * 1024)

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned guard_users;
static struct sigaction old_segv, old_bus;

static void report_overflow(struct ursa__core *c, struct ursa_task *t, const void *addr)
{
	char buf[512];
	const char *entry = "?";
	Dl_info info;
	int n;

	/* dladdr and snprintf are not async-signal-safe; we are about to
	 * abort, and a clear message is worth the small risk. */
	if (dladdr((void *)(uintptr_t)t->fn, &info) && info.dli_sname)
		entry = info.dli_sname;
	n = snprintf(buf, sizeof(buf),
	             "ursa: stack overflow in task '%s' (entry %s) on core %u: fault at %p, "
	             "in the guard below its %zu-byte stack; raise stack_size "
	             "(URSA_STACK_SIZE or ursa_spawn_opts.stack_size)\n",
	             t->name[0] ? t->name : "(unnamed)", entry, c->id, addr, t->stack.size);
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void ursa__guard_top_overrun(struct ursa__core *c, struct ursa_task *t)
{
	char buf[512];
	const char *entry = "?";
	Dl_info info;
	int n;

	/* The record sits just above the canary and may be damaged too: the
	 * name is bounded, a garbage entry pointer only fails dladdr. */
	if (dladdr((void *)(uintptr_t)t->fn, &info) && info.dli_sname)
		entry = info.dli_sname;
	n = snprintf(buf, sizeof(buf),
	             "ursa: task '%.31s' (entry %s) on core %u wrote past the top of its stack "
	             "(a buffer overrun running up from its first frames) into the canary below "
	             "its task record\n",
	             t->name[0] ? t->name : "(unnamed)", entry, c->id);
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	abort();
}

static void chain(const struct sigaction *old, int sig, siginfo_t *si, void *uctx)
{
	if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uctx);
		return;
	}
	if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
		/* Put the default back and return: the faulting instruction runs
		 * again and the default action (a core dump) happens. */
		signal(sig, SIG_DFL);
		return;
	}
	old->sa_handler(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
	struct ursa__core *c = ursa__tls_core;
	struct ursa_task *t = c ? c->current : NULL;

	if (t && t->stack.map && ursa__stack_in_guard(&t->stack, si->si_addr)) {
		report_overflow(c, t, si->si_addr);
		/* abort() must not be caught by a handler expecting a live stack. */
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	chain(sig == SIGBUS ? &old_bus : &old_segv, sig, si, uctx);
}

int ursa__guard_install(void)
{
	struct sigaction sa;
	int rc = 0;

	pthread_mutex_lock(&guard_mu);
	if (guard_users++ == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_fault;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSEGV, &sa, &old_segv) != 0 || sigaction(SIGBUS, &sa, &old_bus) != 0) {
			rc = -errno;
			guard_users--;
		}
	}
	pthread_mutex_unlock(&guard_mu);
	return rc;
}

void ursa__guard_uninstall(void)
{
	pthread_mutex_lock(&guard_mu);
	if (guard_users && --guard_users == 0) {
		sigaction(SIGSEGV, &old_segv, NULL);
		sigaction(SIGBUS, &old_bus, NULL);
	}
	pthread_mutex_unlock(&guard_mu);
}

int ursa__guard_thread_init(struct ursa__core *c)
{
	stack_t ss;

	c->altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (c->altstack == MAP_FAILED) {
		c->altstack = NULL;
		return -errno;
	}
	ss.ss_sp = c->altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0) {
		int rc = -errno;

		munmap(c->altstack, ALTSTACK_SIZE);
		c->altstack = NULL;
		return rc;
	}
	return 0;
}

void ursa__guard_thread_fini(struct ursa__core *c)
{
	stack_t ss = {.ss_flags = SS_DISABLE};

	if (!c->altstack)
		return;
	sigaltstack(&ss, NULL);
	munmap(c->altstack, ALTSTACK_SIZE);
	c->altstack = NULL;
}
