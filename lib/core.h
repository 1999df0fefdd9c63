/* SPDX-License-Identifier: MIT */
/*
 * core.h: tasks, cores and the runtime, and the scheduler's internal API.
 * Ownership, in one paragraph: a task belongs to one core for life (its
 * `core`); only that core's thread links, unlinks, runs or frees it.  Other
 * threads touch a task only through its atomics (state, joiner, refs,
 * cancel_requested) and by pushing one of its messages onto its core's inbox.
 */
#ifndef URSA_CORE_H
#define URSA_CORE_H

#include "fiber/ctx.h"
#include "fiber/stack.h"
#include "list.h"
#include "pool.h"
#include "ring.h"
#include "ursa.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ursa__core;
struct ursa__io_core;

/* A message on a core's inbox (a lock-free LIFO, drained whole). */
struct ursa__msg {
	struct ursa__msg *next;
	unsigned kind; /* URSA__MSG_* */
};
enum {
	URSA__MSG_WAKE = 1, /* make the task runnable (first time: link it)   */
	URSA__MSG_FREE = 2, /* its last reference was dropped on another core */
};

/*
 * Task states.  Only the owner core moves a task out of QUEUED (to RUNNING)
 * and only the task itself moves RUNNING to PARKED; any thread may move
 * PARKED to QUEUED or RUNNING to NOTIFIED (ursa__task_wake).  NOTIFIED is a
 * wake that arrived before the task parked: its next park returns at once.
 */
enum {
	URSA__TASK_RUNNING = 0,
	URSA__TASK_NOTIFIED = 1,
	URSA__TASK_PARKED = 2,
	URSA__TASK_QUEUED = 3,
	URSA__TASK_DONE = 4,
};

/* Values of ursa_task.joiner besides a waiting task's address. */
#define URSA__JOIN_NONE ((struct ursa_task *)0)
#define URSA__JOIN_DONE ((struct ursa_task *)1)
#define URSA__JOIN_DETACHED ((struct ursa_task *)2)
/* The ending task is waking its joiner: the joiner must keep waiting for
 * DONE, so that it is still alive when the wake reaches it. */
#define URSA__JOIN_WAKING ((struct ursa_task *)3)

struct ursa_task {
	struct ursa__ctx ctx;
	struct ursa__core *core;     /* owner, for life */
	struct ursa__list link;      /* run queue (owner core only) */
	struct ursa__list all;       /* core->tasks until freed (owner core only) */
	struct ursa__stack stack;    /* this record lives at its top; both go
	                                back when the record is freed */
	ursa_fn fn;
	void *arg;
	void *result;
	struct ursa_scope *scope;    /* innermost deadline scope, on this stack */
	void *asan_fake_stack;       /* ASan's bookkeeping across switches */
	void *tsan_fiber;            /* TSan's context for this fiber (TSan builds) */
	_Atomic int state;           /* URSA__TASK_* */
	_Atomic int refs;            /* handle + running + transient holders */
	_Atomic(struct ursa_task *) joiner; /* URSA__JOIN_* or the joining task */
	atomic_bool cancel_requested;
	bool exiting;                /* fn returned; the scheduler finishes it */
	bool linked;                 /* on core->tasks */
	bool ended_cancelled;        /* cancel was requested before it ended */
	int error;                   /* ursa_task_fail: its -errno, else 0 */
	char *error_msg;             /* ursa_task_fail: its message (malloc'd) */
	struct ursa_task *ended_next; /* on a watch's list of ended tasks */
	size_t watch_slot;           /* the watcher's index for it (lib/watch.c) */
	struct ursa__msg msg;        /* WAKE while alive, FREE after DONE */
	char name[32];
};

/*
 * An operation in flight: one SQE's completion, on the waiting fiber's stack.
 * The fiber does not return from the call that owns it before `done`.
 */
struct ursa__op {
	struct ursa_task *task;
	int32_t res;
	uint32_t cqe_flags;
	bool done;
	bool cancel_sent;
};

/*
 * A record whose CQEs its own function handles (user_data kind
 * URSA__UD_CALL): multishot ops that queue their results, ops with two CQEs
 * (SEND_ZC).  The function runs on the owner core inside the reaper; it keeps
 * `pending` right itself and wakes whom it must.
 */
struct ursa__call {
	void (*fn)(struct ursa__call *call, int res, unsigned flags);
};

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
	int cpus[CPU_SETSIZE]; /* cpus[i]: the CPU core i is pinned to */
};

struct ursa__timer;

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
	struct ursa__list tasks;       /* every task of this core not yet freed */
	unsigned pending;              /* op and timer records owed a CQE */
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
	struct ursa__io_core *io;      /* io_core.c: created on first use */
	/* Odd while a task runs, even in the scheduler (the stall detector
	 * samples it); written only by this core. */
	_Atomic uint64_t turn;
	_Atomic uint64_t stall_report_ms;
	_Alignas(64) _Atomic(struct ursa__msg *) inbox;
	atomic_bool kick_pending;      /* a kick was sent and not yet consumed */
	char pad_[64];
};

struct ursa__runtime {
	struct ursa__config cfg;
	struct ursa__core *cores;
	pthread_barrier_t start;
	bool start_ok;
	atomic_bool stopping;          /* main returned: cancel all, then exit */
	_Alignas(64) atomic_long live; /* tasks spawned and not yet ended */
	struct ursa_task *main_task;
	ursa_fn main_fn;
	void *main_arg;
	void *main_result;
	int main_spawn_err;
	struct ursa__pool pool;
	/* The stall detector's watchdog (lib/stall.c). */
	pthread_t stall_thread;
	pthread_mutex_t stall_mu;
	pthread_cond_t stall_cv;
	bool stall_stop;
	bool stall_running;
};

/* The calling thread's core (NULL off the workers). */
extern __thread struct ursa__core *ursa__tls_core;

static inline struct ursa_task *ursa__self(void)
{
	struct ursa__core *c = ursa__tls_core;

	return c ? c->current : NULL;
}

/* Park the calling task until ursa__task_wake.  May return spuriously:
 * callers loop on their own condition. */
void ursa__sched_park(void);

/* Make t runnable if it is parked (or make its next park return).  Any
 * thread. */
void ursa__task_wake(struct ursa_task *t);

/* Take and drop a reference on t (any thread).  The last drop frees t on its
 * owner core. */
void ursa__task_ref(struct ursa_task *t);
void ursa__task_unref(struct ursa_task *t);

/* Tell core c to look at its inbox (any thread). */
void ursa__core_kick(struct ursa__core *c);

/* Release the io subsystem's per-core state (io_core.c); after the ring
 * has closed, so the kernel no longer uses its buffers. */
void ursa__io_core_fini(struct ursa__core *c);

/* The CQE dispatcher the ring calls for this core. */
void ursa__sched_complete(void *core, uint64_t ud, int res, unsigned flags);

/*
 * Ops.  ursa__op_sqe() checks cancellation and deadlines first (returning
 * NULL with *err set) and otherwise returns an SQE for the caller to prep;
 * ursa__op_wait() then tags it with op, parks until op's CQE, cancelling it
 * in the kernel if the task is cancelled or a deadline passes meanwhile, and
 * returns the result (a result that arrived wins over the cancellation).
 */
struct io_uring_sqe *ursa__op_sqe(struct ursa_task *self, int *err);
int ursa__op_wait(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe);

#endif /* URSA_CORE_H */
