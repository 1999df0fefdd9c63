/* SPDX-License-Identifier: MIT */
/*
 * sched.h: the per-core scheduler (sched.c): the run loop, parking and
 * waking tasks, and the inbox through which other threads hand a core work.
 *
 * Ownership, in one paragraph: a task belongs to one core for life (its
 * `core`); only that core's thread links, unlinks, runs or frees it.  Other
 * threads touch a task only through its atomics (state, joiner, refs,
 * cancel_requested) and by pushing one of its messages onto its core's inbox.
 */
#ifndef URSA_SCHED_H
#define URSA_SCHED_H

#include "runtime.h"

/* A message on a core's inbox (a lock-free LIFO, drained whole). */
struct ursa__msg {
	struct ursa__msg *next;
	unsigned kind; /* URSA__MSG_* */
};
enum {
	URSA__MSG_WAKE = 1, /* make the task runnable (first time: link it)   */
	URSA__MSG_FREE = 2, /* its last reference was dropped on another core */
	URSA__MSG_RUN = 3,  /* not a task's: a struct ursa__msg_run          */
};

/* Work for a core that is not a task: fn runs on the core's thread when it
 * drains its inbox (ursa__sched_post). */
struct ursa__msg_run {
	struct ursa__msg msg;
	void (*fn)(struct ursa__core *c, struct ursa__msg_run *m);
};

/* The calling thread's core (NULL off the workers). */
extern __thread struct ursa__core *ursa__sched_core;

/* The task running on the calling thread (NULL off the workers). */
static inline struct ursa_task *ursa__sched_self(void)
{
	struct ursa__core *c = ursa__sched_core;

	return c ? c->current : NULL;
}

/* Park the calling task until ursa__sched_wake.  May return spuriously:
 * callers loop on their own condition. */
void ursa__sched_park(void);

/* Make t runnable if it is parked (or make its next park return).  Any
 * thread. */
void ursa__sched_wake(struct ursa_task *t);

/* Queue a task that has never run (any thread). */
void ursa__sched_start(struct ursa_task *t);

/* t's last reference was dropped off its core (t has ended): have its core
 * free it (any thread). */
void ursa__sched_release(struct ursa_task *t);

/* Have core c run m->fn at its next turn (any thread). */
void ursa__sched_post(struct ursa__core *c, struct ursa__msg_run *m);

/* Tell core c to look at its inbox (any thread). */
void ursa__sched_kick(struct ursa__core *c);

/*
 * Idle polling inside a task, before it parks: spin until ready(arg) says
 * what the task waits for may be there (true), for as long as its core would
 * poll if idle (sched.c), and only while the core has nothing else to do
 * (two cores or more, no other task runnable, nothing in its inbox or its
 * ring) and polling is on.  A wait whose waker runs on another core then
 * needs no park, and its waker no wake.  False: park as usual.  ready() runs
 * without any lock held, so it may only peek (atomically); the caller looks
 * again under its lock.
 */
bool ursa__sched_spin(bool (*ready)(void *arg), void *arg);

/* Queue the calling task behind the runnable ones and switch away. */
void ursa__sched_yield(void);

/* End the calling task: switch away for the last time (its core then
 * finishes it, ursa__task_finish). */
_Noreturn void ursa__sched_exit(void);

/* Core c's run loop (its worker thread, until the runtime stops). */
void ursa__sched_loop(struct ursa__core *c);

#endif /* URSA_SCHED_H */
