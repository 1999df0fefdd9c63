/* SPDX-License-Identifier: MIT */
/*
 * wait.h: how a task waits (wait.c), in one of two shapes.
 *
 * For one event (an op's CQE, a grant from a primitive, a pool job, a
 * joined task's end): a waiter record on the waiting task's stack.  The
 * waiter calls ursa__wait_for; the waker, on any thread, first claims the
 * record (however its case arbitrates with a waiter that gives up: a
 * compare-and-swap on `state` under the wait queue's spinlock, the pool's
 * mutex, the joined task's joiner word, the kernel for an op), then fills in
 * the verdict and calls ursa__wait_done:
 *
 *   waker                                   waiter, in ursa__wait_for
 *   claims it (e.g. WAITING -> CLAIMED)     WAITING: may give up (withdraw)
 *   fills in rc, value, which               CLAIMED: parks
 *   ursa__wait_done:                        WAKING:  spins until DONE
 *     a worker: [ref] DONE, wake, [unref]            (the wake may be spent)
 *     any other thread: WAKING, wake, DONE  DONE:    returns; the record and
 *                                                    the task may be gone
 *
 * The last-touch rule: the waiter may return, free the record, end and have
 * its task freed as soon as it sees DONE, so DONE is the waker's last touch
 * of the record, and whatever it touches after (the task, to wake it) must
 * be kept alive some other way.  A worker on the task's core needs nothing
 * (the waiter cannot run before it is done); one on another core holds a
 * reference on the task, which is safe because a worker always runs a task,
 * or finishes one, that still counts as live, so no core stops and frees
 * records meanwhile.  Pool threads and plain threads have no such guarantee
 * (the runtime does not wait for them): they wake the task first and store
 * DONE last, and a waiter that sees WAKING spins instead of parking, since
 * the wake it would wait for may be the one that ran it.
 *
 * For a condition of its own (tasks of a gather ending, buffers coming back
 * to a receiver): a loop that looks at the condition and calls
 * ursa__wait_park.  Its wakers run on the waiter's core (the waiter cannot
 * run before they are done), or follow a rule of their own (lib/watch.h).
 */
#ifndef URSA_WAIT_H
#define URSA_WAIT_H

#include "stats.h"
#include "ursa.h"

#include <stdatomic.h>
#include <stdbool.h>

enum {
	URSA__WAIT_WAITING = 0,   /* nobody has claimed it; the waiter may give up */
	URSA__WAIT_CLAIMED = 1,   /* a waker owns it and is filling it in        */
	URSA__WAIT_WAKING = 2,    /* filled in; the waker is waking the task     */
	URSA__WAIT_DONE = 3,      /* the waker no longer touches it, nor the task */
	URSA__WAIT_WITHDRAWN = 4, /* the waiter gave up (or completed a select
	                             itself); wakers skip it                     */
};

/* One waiting task.  Lives on its stack for the duration of one wait. */
struct ursa__wait {
	struct ursa_task *task;
	_Atomic int state;             /* URSA__WAIT_* */
	int rc;                        /* the waker's verdict: 0, or e.g. -EPIPE */
	unsigned which;                /* index of the node that was granted (select) */
	void *value;                   /* what the waker handed over */
	struct ursa__wait *wake_next;  /* a waker's private chain (lib/waitq.c) */
	uint8_t reason;                /* URSA__PARK_* its waits count as (stats.h) */
};

static inline void ursa__wait_init(struct ursa__wait *w, struct ursa_task *self)
{
	w->task = self;
	atomic_init(&w->state, URSA__WAIT_WAITING);
	w->rc = 0;
	w->which = 0;
	w->value = NULL;
	w->wake_next = NULL;
	w->reason = URSA__PARK_PRIMITIVE;
}

/* For a waker that arbitrates on the record itself: WAITING -> CLAIMED.
 * False if the waiter has withdrawn or another waker claimed it first. */
static inline bool ursa__wait_claim(struct ursa__wait *w)
{
	int s = URSA__WAIT_WAITING;

	/* acq_rel: arbitrates against the waiter's withdraw and other wakers. */
	return atomic_compare_exchange_strong_explicit(&w->state, &s, URSA__WAIT_CLAIMED,
	                                               memory_order_acq_rel, memory_order_acquire);
}

/* The waker's last step, from any thread, once it has claimed w and filled
 * it in: WAKING, wake the task, DONE.  After this call w may be gone. */
void ursa__wait_done(struct ursa__wait *w);

/*
 * The waiter's side of one event: wait until w is DONE (returns 0).  While
 * nobody has claimed w, a cancellation or a passed deadline (-ECANCELED,
 * -ETIMEDOUT) calls withdraw(ctx, why): true if it took w back before any
 * waker could claim it (ursa__wait_for then returns why); false if a waker
 * owns w (or, for an op, the kernel does), whose DONE the task then awaits
 * whatever else happens.
 */
int ursa__wait_for(struct ursa__wait *w, bool (*withdraw)(void *ctx, int why), void *ctx);

/*
 * The one way a task parks for something that may take long: 0 once it has
 * parked and been woken (perhaps spuriously: callers loop on their own
 * condition), or -ETIMEDOUT / -ECANCELED at once, without parking, when a
 * deadline of a scope that governs it has passed or it is cancelled.  It
 * arms the timers of those scopes first, so that a deadline wakes it.  A
 * wait that must not be cut short (for an op's own CQE after cancelling it,
 * say) parks with ursa__sched_park instead.
 */
int ursa__wait_park(struct ursa_task *self);

#endif /* URSA_WAIT_H */
