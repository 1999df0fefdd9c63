/* SPDX-License-Identifier: MIT */
/*
 * sync_barrier.c: ursa_barrier (asyncio.Barrier).  The arrival that
 * completes a cycle releases the queued tasks in arrival order, giving them
 * indexes 0 .. parties-2, and resets the count under the same spinlock, so
 * the next cycle can start at once (no draining phase is needed).  A task
 * that gives up waiting takes its arrival back.
 */
#include "waitq.h"

#include <errno.h>
#include <string.h>

void ursa_barrier_init(struct ursa_barrier *b, unsigned parties)
{
	memset(b, 0, sizeof(*b));
	b->parties_ = parties;
}

static void leave(void *ctx)
{
	struct ursa_barrier *b = ctx;

	b->count_--;
}

/* Under the lock: release every queued task with verdict rc (or its
 * arrival index when rc is 0). */
static void release_all(struct ursa_barrier *b, struct ursa__wakes *ws, int rc)
{
	struct ursa__wnode *n;

	while ((n = ursa__waitq_claim(&b->waiters_)))
		ursa__waitq_grant(ws, n, rc ? rc : (int)ws->n, NULL);
	b->count_ = 0;
}

int ursa_barrier_wait(struct ursa_barrier *b)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wait w;
	int rc;

	if (!self)
		return -EPERM;
	ursa__waitq_check(&b->waiters_, "ursa_barrier_wait", "barrier", b);
	if (b->parties_ == 0)
		return -EINVAL;
	ursa__spin_lock(&b->lock_);
	if (b->broken_) {
		ursa__spin_unlock(&b->lock_);
		return -EPIPE;
	}
	if (++b->count_ == b->parties_) {
		/* Read before the wakes: a released waiter may free the barrier. */
		int index = (int)b->parties_ - 1;

		release_all(b, &ws, 0);
		ursa__spin_unlock(&b->lock_);
		ursa__waitq_wake(&ws);
		return index;
	}
	rc = ursa__waitq_wait(self, &b->waiters_, &b->lock_, &w, NULL, leave, b);
	return rc ? rc : w.rc;
}

void ursa_barrier_abort(struct ursa_barrier *b)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;

	ursa__spin_lock(&b->lock_);
	b->broken_ = 1;
	release_all(b, &ws, -EPIPE);
	ursa__spin_unlock(&b->lock_);
	ursa__waitq_wake(&ws);
}

void ursa_barrier_reset(struct ursa_barrier *b)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;

	ursa__spin_lock(&b->lock_);
	release_all(b, &ws, -EPIPE);
	b->broken_ = 0;
	ursa__spin_unlock(&b->lock_);
	ursa__waitq_wake(&ws);
}

unsigned ursa_barrier_n_waiting(struct ursa_barrier *b)
{
	unsigned n;

	ursa__spin_lock(&b->lock_);
	n = b->count_;
	ursa__spin_unlock(&b->lock_);
	return n;
}
