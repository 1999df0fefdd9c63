/* SPDX-License-Identifier: MIT */
/*
 * wait.c: the waiter record's handshake and the interruptible park (the
 * protocol is drawn in wait.h).
 */
#include "wait.h"

#include "scope.h"
#include "task.h"

#include <sched.h>

void ursa__wait_done(struct ursa__wait *w)
{
	struct ursa_task *t = w->task;
	struct ursa__core *here = ursa__sched_core;
	bool remote = here && here != t->core;

	if (!here) {
		/* Off the workers: nothing keeps t's record for us once the
		 * waiter is free to go, so wake first, and DONE last.  release:
		 * a waiter that sees WAKING sees the verdict too. */
		atomic_store_explicit(&w->state, URSA__WAIT_WAKING, memory_order_release);
		ursa__sched_wake(t);
		/* release: pairs with the acquire load in ursa__wait_for. */
		atomic_store_explicit(&w->state, URSA__WAIT_DONE, memory_order_release);
		return;
	}
	/* A worker.  On t's core the waiter cannot run before we are done;
	 * from another core our reference keeps t's record until the wake is
	 * sent (we run a task, or finish one, that still counts as live, so no
	 * core stops and frees records meanwhile). */
	if (remote)
		ursa__task_ref(t);
	/* release: pairs with the acquire load in ursa__wait_for.  The last
	 * access to w. */
	atomic_store_explicit(&w->state, URSA__WAIT_DONE, memory_order_release);
	ursa__sched_wake(t);
	if (remote)
		ursa__task_unref(t);
}

int ursa__wait_for(struct ursa__wait *w, bool (*withdraw)(void *ctx, int why), void *ctx)
{
	bool owned = false; /* a waker (or the kernel) owns w: its DONE will come */

	for (;;) {
		/* acquire: pairs with the release stores in ursa__wait_done. */
		int s = atomic_load_explicit(&w->state, memory_order_acquire);
		int why;

		w->task->park_reason = w->reason; /* for the counters (stats.h) */
		if (s == URSA__WAIT_DONE)
			return 0;
		if (s == URSA__WAIT_WAKING) {
			/* A pool or plain thread is between its wake and its last
			 * store.  Parking could sleep for good (the wake may be the
			 * one that ran us), and DONE is a few instructions away
			 * unless the thread was preempted there: spin, lending the
			 * CPU now and then, as a spinner on ursa__spin_lock does.
			 * (A fiber yield loop makes no system call, and under
			 * valgrind, which runs one thread at a time, kept the waker
			 * from running for a whole time slice each round.) */
			for (unsigned i = 1; atomic_load_explicit(&w->state, memory_order_relaxed) ==
			                     URSA__WAIT_WAKING; i++)
				if (!(i % 256))
					sched_yield();
			continue;
		}
		if (owned || s != URSA__WAIT_WAITING) {
			/* CLAIMED, or claimed elsewhere: the wake comes after our
			 * load, so parking cannot miss it.  Nothing may cut this
			 * short. */
			ursa__sched_park();
			continue;
		}
		why = ursa__wait_park(w->task);
		if (why) {
			if (withdraw(ctx, why))
				return why;
			owned = true; /* a waker got there first: its grant wins */
		}
	}
}

int ursa__wait_park(struct ursa_task *self)
{
	int rc = ursa__scope_arm(self);

	if (rc)
		return rc;
	ursa__sched_park();
	return 0;
}
