/* SPDX-License-Identifier: MIT */
/*
 * stall.c: the stall detector (the first rule of an event loop: never block
 * it).  Each core bumps core->turn before it switches into a task and after
 * the task switches back, so the count is odd while a task runs.  A watchdog
 * thread samples every core four times per stall_ms; a count that stays the
 * same and odd for stall_ms means one task has held the core that long.  The
 * watchdog then signals that worker, whose handler prints which task, for how
 * long, and a backtrace of where it is: one report per stall.
 *
 * Off by default: the sampling signal interrupts the blocked syscall, so a
 * nanosleep() in the stalled task returns early with EINTR (most other
 * syscalls restart: the handler uses SA_RESTART).
 */
#include "stall.h"

#include "task.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The sampling signal: a real-time signal glibc does not reserve. */
#define STALL_SIGNAL (SIGRTMIN + 4)

static pthread_mutex_t handler_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned handler_users;
static struct sigaction old_action;

static void on_sample(int sig, siginfo_t *si, void *uctx)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa_task *t = c ? c->current : NULL;
	const char *entry = "?";
	void *frames[48];
	char buf[384];
	Dl_info info;
	int n, saved = errno;

	(void)sig;
	(void)si;
	(void)uctx;
	if (!t) {
		errno = saved;
		return; /* it moved on between the sample and the signal */
	}
	/* Not async-signal-safe (snprintf, dladdr); acceptable for a report
	 * whose alternative is silence, and backtrace() is preloaded. */
	if (dladdr((void *)(uintptr_t)t->fn, &info) && info.dli_sname)
		entry = info.dli_sname;
	n = snprintf(buf, sizeof(buf),
	             "ursa: stall: core %u has run task '%s' (entry %s) for %lu ms without "
	             "returning to the scheduler; it is blocking every other task on that core. "
	             "Backtrace:\n",
	             c->id, t->name[0] ? t->name : "(unnamed)", entry,
	             (unsigned long)atomic_load_explicit(&c->stall_report_ms, memory_order_relaxed));
	if (n > 0)
		(void)!write(STDERR_FILENO, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	n = backtrace(frames, (int)(sizeof(frames) / sizeof(frames[0])));
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	errno = saved;
}

static int install_handler(void)
{
	struct sigaction sa;
	int rc = 0;

	pthread_mutex_lock(&handler_mu);
	if (handler_users++ == 0) {
		void *warm[1];

		/* The first backtrace() loads libgcc_s: do it here, not in the
		 * handler. */
		(void)backtrace(warm, 1);
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sample;
		sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		if (sigaction(STALL_SIGNAL, &sa, &old_action) != 0) {
			rc = -errno;
			handler_users--;
		}
	}
	pthread_mutex_unlock(&handler_mu);
	return rc;
}

static void uninstall_handler(void)
{
	pthread_mutex_lock(&handler_mu);
	if (handler_users && --handler_users == 0)
		sigaction(STALL_SIGNAL, &old_action, NULL);
	pthread_mutex_unlock(&handler_mu);
}

struct sample {
	uint64_t turn;
	uint64_t since_ns;
	uint64_t cpu_ns; /* the worker's CPU time when the window opened */
	bool reported;
};

static uint64_t thread_cpu_ns(struct ursa__core *c)
{
	clockid_t clk;
	struct timespec ts;

	if (pthread_getcpuclockid(c->thread, &clk) != 0 || clock_gettime(clk, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 'R', 'S', 'D', … from /proc, or 0 if unknown. */
static char thread_state(struct ursa__core *c)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)c->tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * The count has not moved for the whole window.  Is the task to blame?  Yes
 * if the worker burnt at least half the window on the CPU (a hog) or sleeps
 * in a syscall now (blocked).  A worker that is runnable but got little CPU
 * was merely preempted by a busy machine: not a stall of ours.
 */
static bool task_to_blame(struct ursa__core *c, const struct sample *s, uint64_t window_ns)
{
	char st;

	if (thread_cpu_ns(c) - s->cpu_ns >= window_ns / 2)
		return true;
	st = thread_state(c);
	return st == 'S' || st == 'D';
}

static void *watchdog(void *arg)
{
	struct ursa__runtime *rt = arg;
	uint64_t limit_ns = (uint64_t)rt->cfg.stall_ms * 1000000u;
	uint64_t period_ns = limit_ns / 4 ? limit_ns / 4 : 1000000u;
	struct sample *s = calloc(rt->cfg.cores, sizeof(*s));
	struct timespec until;

	if (!s)
		return NULL;
	pthread_mutex_lock(&rt->stall_mu);
	while (!rt->stall_stop) {
		uint64_t now = ursa_now();

		for (unsigned i = 0; i < rt->cfg.cores; i++) {
			struct ursa__core *c = &rt->cores[i];
			uint64_t turn = atomic_load_explicit(&c->turn, memory_order_relaxed);

			if (turn != s[i].turn || !(turn & 1)) {
				s[i] = (struct sample){.turn = turn, .since_ns = now,
				                       .cpu_ns = thread_cpu_ns(c)};
				continue;
			}
			if (!s[i].reported && now - s[i].since_ns >= limit_ns) {
				if (!task_to_blame(c, &s[i], now - s[i].since_ns)) {
					/* Preempted: start a fresh window. */
					s[i].since_ns = now;
					s[i].cpu_ns = thread_cpu_ns(c);
					continue;
				}
				s[i].reported = true; /* one report per stall */
				atomic_store_explicit(&c->stall_report_ms, (now - s[i].since_ns) / 1000000u,
				                      memory_order_relaxed);
				pthread_kill(c->thread, STALL_SIGNAL);
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)(period_ns % 1000000000u);
		until.tv_sec += (time_t)(period_ns / 1000000000u) + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&rt->stall_cv, &rt->stall_mu, &until);
	}
	pthread_mutex_unlock(&rt->stall_mu);
	free(s);
	return NULL;
}

int ursa__stall_start(struct ursa__runtime *rt)
{
	pthread_condattr_t attr;
	sigset_t all, old;
	int rc;

	if (!rt->cfg.stall_ms)
		return 0;
	rc = install_handler();
	if (rc < 0)
		return rc;
	pthread_mutex_init(&rt->stall_mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->stall_cv, &attr);
	pthread_condattr_destroy(&attr);
	rt->stall_stop = false;
	/* The watchdog takes no signals; the workers take the samples. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&rt->stall_thread, NULL, watchdog, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		pthread_cond_destroy(&rt->stall_cv);
		pthread_mutex_destroy(&rt->stall_mu);
		uninstall_handler();
		return rc;
	}
	rt->stall_running = true;
	return 0;
}

void ursa__stall_stop(struct ursa__runtime *rt)
{
	if (!rt->stall_running)
		return;
	pthread_mutex_lock(&rt->stall_mu);
	rt->stall_stop = true;
	pthread_cond_signal(&rt->stall_cv);
	pthread_mutex_unlock(&rt->stall_mu);
	pthread_join(rt->stall_thread, NULL);
	pthread_cond_destroy(&rt->stall_cv);
	pthread_mutex_destroy(&rt->stall_mu);
	rt->stall_running = false;
	uninstall_handler();
}
