/* SPDX-License-Identifier: MIT */
/*
 * sync_waitgroup.c: ursa_waitgroup (Go's sync.WaitGroup).  The count
 * changes under the spinlock; the one that brings it to zero releases every
 * waiter.  A waiter that finds zero returns without the lock, once whoever
 * made it zero has let go of it (ursa__spin_settle).
 */
#include "waitq.h"

#include <errno.h>
#include <string.h>

void ursa_waitgroup_init(struct ursa_waitgroup *wg)
{
	memset(wg, 0, sizeof(*wg));
}

int ursa_waitgroup_add(struct ursa_waitgroup *wg, long delta)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;
	long c;

	ursa__spin_lock(&wg->lock_);
	if (__builtin_add_overflow(wg->count_, delta, &c)) {
		ursa__spin_unlock(&wg->lock_);
		return -EOVERFLOW;
	}
	if (c < 0) {
		ursa__spin_unlock(&wg->lock_);
		return -EINVAL;
	}
	/* release: pairs with the acquire load in ursa_waitgroup_wait. */
	__atomic_store_n(&wg->count_, c, __ATOMIC_RELEASE);
	if (c == 0)
		while ((n = ursa__waitq_claim(&wg->waiters_)))
			ursa__waitq_grant(&ws, n, 0, NULL);
	ursa__spin_unlock(&wg->lock_);
	ursa__waitq_wake(&ws);
	return 0;
}

int ursa_waitgroup_done(struct ursa_waitgroup *wg)
{
	return ursa_waitgroup_add(wg, -1);
}

int ursa_waitgroup_wait(struct ursa_waitgroup *wg)
{
	struct ursa_task *self;
	struct ursa__wait w;

	ursa__waitq_check(&wg->waiters_, "ursa_waitgroup_wait", "waitgroup", wg);
	if (__atomic_load_n(&wg->count_, __ATOMIC_ACQUIRE) == 0) {
		/* The done that brought it to zero may still hold the lock: the
		 * caller frees wg as soon as we return (Go's WaitGroup idiom). */
		ursa__spin_settle(&wg->lock_);
		return 0;
	}
	self = ursa__sched_self();
	if (!self)
		return -EPERM;
	ursa__spin_lock(&wg->lock_);
	if (wg->count_ == 0) {
		ursa__spin_unlock(&wg->lock_);
		return 0;
	}
	return ursa__waitq_wait(self, &wg->waiters_, &wg->lock_, &w, NULL, NULL, NULL);
}
