/* SPDX-License-Identifier: MIT */
/*
 * sync_event.c: ursa_event (asyncio.Event).  set stores the flag before it
 * takes the spinlock to wake the queue, and a waiter looks at the flag again
 * under the spinlock before it queues, so no waiter sleeps through a set.
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

	/* release: pairs with the acquire loads in ursa_event_wait. */
	__atomic_store_n(&e->set_, 1u, __ATOMIC_RELEASE);
	ursa__spin_lock(&e->lock_);
	while ((n = ursa__waitq_claim(&e->waiters_)))
		ursa__wakes_add(&ws, n, 0, NULL);
	ursa__spin_unlock(&e->lock_);
	ursa__wakes_run(&ws);
}

void ursa_event_clear(struct ursa_event *e)
{
	__atomic_store_n(&e->set_, 0u, __ATOMIC_RELAXED);
}

bool ursa_event_is_set(struct ursa_event *e)
{
	return __atomic_load_n(&e->set_, __ATOMIC_ACQUIRE);
}

int ursa_event_wait(struct ursa_event *e)
{
	struct ursa_task *self;
	struct ursa__wait w;

	if (ursa_event_is_set(e))
		return 0;
	self = ursa__self();
	if (!self)
		return -EPERM;
	ursa__spin_lock(&e->lock_);
	if (ursa_event_is_set(e)) {
		ursa__spin_unlock(&e->lock_);
		return 0;
	}
	return ursa__waitq_wait(self, &e->waiters_, &e->lock_, &w, NULL, NULL, NULL);
}
