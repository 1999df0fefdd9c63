/* SPDX-License-Identifier: MIT */
/*
 * runtime.h: the runtime and its cores (runtime.c makes them in ursa_run):
 * the options after defaults, one worker's state and the runtime that owns
 * the workers.  Each subsystem keeps its per-core state here, set up and
 * torn down by runtime.c in a fixed order; a thread finds its own core
 * through ursa__sched_core (sched.h).
 */
#ifndef URSA_RUNTIME_INTERNAL_H
#define URSA_RUNTIME_INTERNAL_H

#include "fiber/ctx.h"
#include "fiber/stack.h"
#include "list.h"
#include "pool.h"
#include "ring.h"
#include "stats.h"
#include "ursa.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ursa__io_core;
struct ursa__msg;
struct ursa__timer;

/* Options after applying defaults and the environment. */
struct ursa__config {
	unsigned cores;
	unsigned ring_entries;
	size_t stack_size;
	unsigned pool_threads;
	unsigned stack_cache;
	unsigned stall_ms;     /* 0: no stall detector */
	size_t stack_guard;
	unsigned stack_trim_ms;
	uint64_t idle_poll_ns; /* how long an idle core polls before it sleeps; 0: never */
	bool pin;              /* URSA_OPT_PIN / URSA_PIN: pin worker i to cpus[i] */
	const char *stats_socket; /* URSA_STATS_SOCKET: serve counters here (stats.c) */
	int cpus[CPU_SETSIZE]; /* cpus[i]: the CPU core i is pinned to, if pinned */
};

/* The timer that runs ursa__stack_trim (lib/stack_trim.c). */
struct ursa__stack_tick {
	struct ursa__call call;
	struct __kernel_timespec ts;
};
/* Arm core's trim timer (the stack cache's arm callback; owner thread). */
void ursa__stack_trim_arm(void *core, uint64_t delay_ns);

/* One worker: its thread, ring, run queue and caches.  Cache-line aligned;
 * the inbox, written by other threads, sits on its own line. */
struct ursa__core {
	unsigned id;
	struct ursa__runtime *rt;
	pthread_t thread;
	pid_t tid;                     /* the worker's kernel thread id (stall.c) */
	struct ursa__ring ring;
	struct ursa__ctx sched_ctx;    /* the scheduler loop's own context */
	void *sched_stack_lo;          /* the worker thread's stack, for ASan */
	size_t sched_stack_size;
	void *asan_fake_stack;
	void *tsan_fiber;              /* the worker thread's own TSan context */
	struct ursa_task *current;     /* the task running, or NULL */
	struct ursa__list runq;
	unsigned runq_len;
	unsigned spawn_cursor;         /* the next URSA_CORE_ANY spawn's core
	                                  (task.c); only this core's tasks touch it */
	struct ursa__list tasks;       /* every task of this core not yet freed */
	unsigned pending;              /* op and timer records owed a CQE */
	uint64_t poll_ns;              /* idle polling (sched.c): how long now, */
	uint64_t poll_resume_ns;       /* not before this time (ursa_now), */
	uint64_t poll_backoff_ns;      /* the last back-off */
	struct ursa__stack_cache stacks;
	struct ursa__stack_tick stack_tick; /* stack_trim.c: the trim timer */
	struct ursa__timer *free_timers;
	bool cancelled_all;            /* shutdown: every task has been cancelled */
	int eventfd;                   /* kicks from threads without a ring */
	uint64_t eventfd_buf;
	bool eventfd_armed;
	void *altstack;                /* SIGSEGV handler stack */
	int init_err;
	bool ring_refused; /* init_err came from io_uring_setup itself */
	struct ursa__io_core *io;      /* io.c: created on first use */
	struct ursa__stats stats;      /* stats.h: written by this core only */
	/* Odd while a task runs, even in the scheduler (the stall detector
	 * samples it); written only by this core. */
	_Atomic uint64_t turn;
	/* Last, on a line of their own (the struct's alignment pads the rest):
	 * what other threads write, the inbox and whether a kick is needed to
	 * make this core look at it (URSA__CORE_*, lib/sched.c). */
	_Alignas(64) _Atomic(struct ursa__msg *) inbox;
	_Atomic unsigned sleep;
};

/* core->sleep: may a push onto its inbox go unnoticed without a kick? */
enum {
	URSA__CORE_AWAKE = 0,    /* no: it looks at its inbox before it sleeps */
	URSA__CORE_SLEEPING = 1, /* yes: it is (about to be) asleep in the kernel */
	URSA__CORE_KICKED = 2,   /* asleep, and a kick is on its way */
};

/* Which cores have ops in flight on an fd (lib/fdreg.h). */
struct ursa__fdreg {
	_Atomic uint64_t *masks; /* [slots]: bit (core % 64): that core has ops */
	uint32_t *counts;        /* [cores][slots]: each core's ops, its own row */
};

struct ursa__runtime {
	struct ursa__config cfg;
	struct ursa__core *cores;
	atomic_bool stopping;          /* main returned: cancel all, then exit */
	_Alignas(64) atomic_long live; /* tasks spawned and not yet ended */
	struct ursa_task *main_task;
	ursa_fn main_fn;
	void *main_arg;
	void *main_result;
	int main_spawn_err;
	struct ursa__pool pool;
	struct ursa__fdreg fdreg;      /* NULL arrays for one core */
	/* The stall detector's watchdog (lib/stall.c). */
	pthread_t stall_thread;
	pthread_mutex_t stall_mu;
	pthread_cond_t stall_cv;
	bool stall_stop;
	bool stall_running;
	struct ursa__stall_capture *stall_captures; /* per core, while it runs */
	struct ursa__stats_service *stats_svc;      /* stats.c, when asked for */
};

#endif /* URSA_RUNTIME_INTERNAL_H */
