/* SPDX-License-Identifier: MIT */
/*
 * sync_event.c: ursa_event (asyncio.Event).  set stores the flag under the
 * spinlock while it claims the queue, and a waiter looks at the flag again
 * under the spinlock before it queues, so no waiter sleeps through a set.
 *
 * A waiter may free the event as soon as its wait returns (an event on the
 * waiter's stack, set from another core: examples/kv.c's messages), so set
 * must not touch it once a waiter can return: a waiter that sees the flag
 * without queueing first waits out a set still holding the lock, and set
 * wakes the queued ones only after it has let go of the lock.
 */
#include "waitq.h"

#include <errno.h>
#include <string.h>

void ursa_event_init(struct ursa_event *e)
{
	memset(e, 0, sizeof(*e));
}

void ursa_event_set(struct ursa_event *e)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;

	ursa__spin_lock(&e->lock_);
	/* release: pairs with the acquire loads in ursa_event_wait.  Under the
	 * lock, so that a waiter that sees it can wait for the unlock, after
	 * which this call no longer touches e. */
	__atomic_store_n(&e->set_, 1u, __ATOMIC_RELEASE);
	while ((n = ursa__waitq_claim(&e->waiters_)))
		ursa__waitq_grant(&ws, n, 0, NULL);
	ursa__spin_unlock(&e->lock_);
	ursa__waitq_wake(&ws);
}

void ursa_event_clear(struct ursa_event *e)
{
	__atomic_store_n(&e->set_, 0u, __ATOMIC_RELAXED);
}

bool ursa_event_is_set(struct ursa_event *e)
{
	if (!__atomic_load_n(&e->set_, __ATOMIC_ACQUIRE))
		return false;
	/* A set may still hold the lock (it stores the flag under it). */
	ursa__spin_settle(&e->lock_);
	return true;
}

int ursa_event_wait(struct ursa_event *e)
{
	struct ursa_task *self;
	struct ursa__wait w;

	ursa__waitq_check(&e->waiters_, "ursa_event_wait", "event", e);
	if (ursa_event_is_set(e))
		return 0; /* settled by ursa_event_is_set */
	self = ursa__sched_self();
	if (!self)
		return -EPERM;
	ursa__spin_lock(&e->lock_);
	if (__atomic_load_n(&e->set_, __ATOMIC_RELAXED)) { /* under the lock: settled */
		ursa__spin_unlock(&e->lock_);
		return 0;
	}
	return ursa__waitq_wait(self, &e->waiters_, &e->lock_, &w, NULL, NULL, NULL);
}
