/* SPDX-License-Identifier: MIT */
/*
 * stall.c: the stall detector (the first rule of an event loop: never block
 * it).  Each core bumps core->turn before it switches into a task and after
 * the task switches back, so the count is odd while a task runs.  A watchdog
 * thread samples every core four times per stall_ms.  A count that has not
 * moved for stall_ms means the core has not turned its loop that long, and
 * there are two culprits, reported once per stall each:
 *
 *   - a task (the count is odd, and the worker burnt the window on the CPU
 *     or sleeps in a syscall): the watchdog signals that worker, whose
 *     handler records which task runs and the frames of where it is; the
 *     watchdog then prints them, symbolised (lib/symbolize.h), outside the
 *     signal handler;
 *   - the OS (the worker thread was ready to run, state 'R' in
 *     /proc/self/task/TID/stat, at every sample for stall_ms, yet got under
 *     a quarter of that time on a CPU): the watchdog prints that itself,
 *     since the worker cannot run to print.  (schedstat's run-queue wait
 *     cannot tell: the kernel adds a wait to it only once the wait is over.)
 *     A pinned worker cannot be moved to an idle CPU by the load balancer,
 *     so another busy process on its CPU can hold it off for seconds
 *     (docs/design.md, "Pinning").
 *
 * Off by default: the sampling signal interrupts the blocked syscall, so a
 * nanosleep() in the stalled task returns early with EINTR (most other
 * syscalls restart: the handler uses SA_RESTART).
 */
#include "stall.h"

#include "guard.h"
#include "sched.h"
#include "symbolize.h"
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

#define MAX_FRAMES 48
/* How long the watchdog waits for a signalled worker to record its frames. */
#define CAPTURE_WAIT_NS (200u * 1000u * 1000u)

/* What a signalled worker records for the watchdog to print, per core. */
struct ursa__stall_capture {
	_Atomic int state;   /* CAPTURE_* */
	struct ursa_task *task;
	char name[32];
	ursa_fn fn;
	int nframes;
	void *frames[MAX_FRAMES];
};
enum { CAPTURE_IDLE, CAPTURE_WANTED, CAPTURE_DONE, CAPTURE_MOVED_ON };

static pthread_mutex_t handler_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned handler_users;
static struct sigaction old_action;

/* In the stalled worker: record, nothing more (backtrace() is preloaded;
 * the rest is plain stores).  The watchdog symbolises and prints. */
static void on_sample(int sig, siginfo_t *si, void *uctx)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa__stall_capture *cap = c && c->rt->stall_captures ? &c->rt->stall_captures[c->id]
	                                                              : NULL;
	struct ursa_task *t = c ? c->current : NULL;
	int saved = errno;

	(void)sig;
	(void)si;
	(void)uctx;
	if (!cap || atomic_load_explicit(&cap->state, memory_order_acquire) != CAPTURE_WANTED) {
		errno = saved;
		return;
	}
	if (!t) {
		/* It moved on between the sample and the signal. */
		atomic_store_explicit(&cap->state, CAPTURE_MOVED_ON, memory_order_release);
		errno = saved;
		return;
	}
	cap->task = t;
	memcpy(cap->name, t->name, sizeof(cap->name));
	cap->fn = t->fn;
	cap->nframes = backtrace(cap->frames, MAX_FRAMES);
	/* release: the watchdog's acquire load sees the record. */
	atomic_store_explicit(&cap->state, CAPTURE_DONE, memory_order_release);
	errno = saved;
}

/* In the watchdog: signal the worker, wait for its record, print it. */
static void report_task(struct ursa__runtime *rt, struct ursa__core *c, uint64_t stalled_ns)
{
	struct ursa__stall_capture *cap = &rt->stall_captures[c->id];
	uint64_t until = ursa_now() + CAPTURE_WAIT_NS;
	struct timespec nap = {0, 1000000};
	struct ursa__sym *sym;
	char entry[128];
	int st;

	atomic_store_explicit(&cap->state, CAPTURE_WANTED, memory_order_release);
	pthread_kill(c->thread, STALL_SIGNAL);
	while ((st = atomic_load_explicit(&cap->state, memory_order_acquire)) == CAPTURE_WANTED &&
	       ursa_now() < until)
		nanosleep(&nap, NULL);
	atomic_store_explicit(&cap->state, CAPTURE_IDLE, memory_order_relaxed);
	if (st == CAPTURE_MOVED_ON)
		return;
	URSA__STAT_INC(c->stats.stalls);
	sym = ursa__sym_open();
	if (st == CAPTURE_DONE)
		ursa__sym_name(sym, (void *)(uintptr_t)cap->fn, entry, sizeof(entry));
	fprintf(stderr,
	        "ursa: stall: core %u has run task '%s' (entry %s) for %llu ms without returning "
	        "to the scheduler; it is blocking every other task on that core.%s\n",
	        c->id, st != CAPTURE_DONE ? "?" : cap->name[0] ? cap->name : "(unnamed)",
	        st == CAPTURE_DONE ? entry : "?", (unsigned long long)(stalled_ns / 1000000u),
	        st == CAPTURE_DONE ? "  Backtrace:" : "  (No backtrace: the worker did not take "
	                                               "the sampling signal.)");
	fflush(stderr);
	if (st == CAPTURE_DONE)
		ursa__sym_print(sym, STDERR_FILENO, cap->frames, cap->nframes, false);
	ursa__sym_close(sym);
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
	uint64_t since_ns;       /* the count has not moved since */
	uint64_t cpu_ns;         /* the worker's CPU time at since_ns */
	uint64_t ready_since_ns; /* state 'R' at every sample since; 0: not now */
	uint64_t ready_cpu_ns;   /* its CPU time at ready_since_ns */
	bool slept;              /* seen asleep in a syscall ('S', 'D') at a
	                            sample of this window */
	bool reported;           /* this stall has been reported */
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
 * if the worker burnt at least half the window on the CPU (a hog), or was
 * seen asleep in a syscall at any sample of the window (blocked: a task that
 * sleeps in short syscalls, say usleep in a loop, is runnable for a moment
 * after each, and on a busy machine the last sample alone may catch it
 * so).  A worker that is runnable at every sample but got little CPU was
 * merely preempted by a busy machine: not a stall of ours.
 */
static bool task_to_blame(struct ursa__core *c, const struct sample *s, uint64_t window_ns)
{
	char st;

	if (thread_cpu_ns(c) - s->cpu_ns >= window_ns / 2 || s->slept)
		return true;
	st = thread_state(c);
	return st == 'S' || st == 'D';
}

static void report_starved(struct ursa__core *c, uint64_t ran_ns, uint64_t window_ns)
{
	URSA__STAT_INC(c->stats.stalls);
	fprintf(stderr,
	        "ursa: stall: core %u's worker (thread %d) has been ready to run for %llu ms but "
	        "got %llu ms of CPU: the OS, not a task, is holding this core, and its tasks, "
	        "timers and completions wait meanwhile (another process is busy on its CPU%s).\n",
	        c->id, (int)c->tid, (unsigned long long)(window_ns / 1000000u),
	        (unsigned long long)(ran_ns / 1000000u),
	        c->rt->cfg.pin ? "; the worker is pinned (URSA_PIN), so the kernel cannot move it "
	                         "to another CPU"
	                       : "");
}

static void open_window(struct ursa__core *c, struct sample *s, uint64_t turn, uint64_t now)
{
	*s = (struct sample){.turn = turn, .since_ns = now, .cpu_ns = thread_cpu_ns(c)};
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
			uint64_t cpu, ready;
			char state;

			if (turn != s[i].turn) {
				open_window(c, &s[i], turn, now);
				continue;
			}
			/* The loop has not turned since the window opened.  Track
			 * how long the worker has been ready to run without
			 * interruption, and what CPU it got meanwhile. */
			cpu = thread_cpu_ns(c);
			state = thread_state(c);
			if (state == 'S' || state == 'D')
				s[i].slept = true;
			if (state != 'R') {
				s[i].ready_since_ns = 0;
			} else if (!s[i].ready_since_ns) {
				s[i].ready_since_ns = now;
				s[i].ready_cpu_ns = cpu;
			}
			if (s[i].reported)
				continue;
			ready = s[i].ready_since_ns ? now - s[i].ready_since_ns : 0;
			if (ready >= limit_ns && cpu - s[i].ready_cpu_ns < ready / 4) {
				/* Ready all along, and hardly ran: held off its CPU. */
				s[i].reported = true; /* one report per stall */
				report_starved(c, cpu - s[i].ready_cpu_ns, ready);
			} else if (now - s[i].since_ns >= limit_ns) {
				if ((turn & 1) && task_to_blame(c, &s[i], now - s[i].since_ns)) {
					s[i].reported = true;
					report_task(rt, c, now - s[i].since_ns);
				} else {
					/* Idle in the kernel, or busy but merely
					 * preempted now and then: a fresh window. */
					s[i].since_ns = now;
					s[i].cpu_ns = cpu;
					s[i].slept = false;
				}
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
	rt->stall_captures = calloc(rt->cfg.cores, sizeof(*rt->stall_captures));
	if (!rt->stall_captures)
		return -ENOMEM;
	rc = install_handler();
	if (rc < 0) {
		free(rt->stall_captures);
		rt->stall_captures = NULL;
		return rc;
	}
	pthread_mutex_init(&rt->stall_mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->stall_cv, &attr);
	pthread_condattr_destroy(&attr);
	rt->stall_stop = false;
	/* The watchdog takes no asynchronous signals; the workers take the
	 * samples.  The synchronous ones stay open for the crash report. */
	sigfillset(&all);
	ursa__guard_sync_signals(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&rt->stall_thread, NULL, watchdog, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		pthread_cond_destroy(&rt->stall_cv);
		pthread_mutex_destroy(&rt->stall_mu);
		uninstall_handler();
		free(rt->stall_captures);
		rt->stall_captures = NULL;
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
	/* The workers are gone: no handler can touch the captures now. */
	free(rt->stall_captures);
	rt->stall_captures = NULL;
}

/*
 * A cancelled loop (lib/scope.c): a task whose blocking calls keep being
 * refused at once, which a loop that drops their -ECANCELED never leaves.
 * Printed by the task itself, on its own stack: the plain frames (module and
 * offset, which addr2line resolves), not the libdw symbolizer, whose depth a
 * small task stack may not have.
 */
void ursa__stall_refusals(struct ursa_task *t, unsigned refused)
{
	void *frames[MAX_FRAMES];
	char entry[128];
	int n;

	ursa__sym_name(NULL, (const void *)(uintptr_t)t->fn, entry, sizeof(entry));
	fprintf(stderr,
	        "ursa: cancelled loop: task '%s' (%s) on core %u: %u blocking calls in a row "
	        "returned -ECANCELED/-ETIMEDOUT without waiting; a loop that ignores them never "
	        "ends (docs/asyncio.md, \"Loops that wait\"); yielding at each one from now on. "
	        "Backtrace:\n",
	        t->name[0] ? t->name : "(unnamed)", entry, t->core->id, refused);
	fflush(stderr);
	n = backtrace(frames, MAX_FRAMES);
	ursa__sym_print(NULL, STDERR_FILENO, frames, n, false);
}
