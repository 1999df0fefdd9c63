/* SPDX-License-Identifier: MIT */
/*
 * sync_sem.c: ursa_sem (asyncio.Semaphore and BoundedSemaphore).
 *
 * value_ counts free units.  Invariant, under the spinlock: tasks are queued
 * only while value_ is 0, because a release with waiters hands its unit to
 * the first of them instead of adding it to value_.  So the lock-free fast
 * path (take a unit while value_ > 0) can never overtake a waiter: FIFO.
 */
#include "waitq.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

void ursa_sem_init(struct ursa_sem *s, unsigned value, bool bounded)
{
	memset(s, 0, sizeof(*s));
	s->value_ = value;
	s->max_ = value;
	s->bounded_ = bounded;
}

static bool take(struct ursa_sem *s)
{
	unsigned v = __atomic_load_n(&s->value_, __ATOMIC_RELAXED);

	/* acquire: pairs with the release in ursa_sem_release. */
	while (v > 0)
		if (__atomic_compare_exchange_n(&s->value_, &v, v - 1, true, __ATOMIC_ACQUIRE,
		                                __ATOMIC_RELAXED))
			return true;
	return false;
}

/* take() without the lock: the release that added the unit may still hold
 * the lock, and the taker may free s as soon as it has the unit. */
static bool take_settled(struct ursa_sem *s)
{
	if (!take(s))
		return false;
	ursa__spin_settle(&s->lock_);
	return true;
}

int ursa_sem_tryacquire(struct ursa_sem *s)
{
	return take_settled(s) ? 0 : -EAGAIN;
}

/* An unlocked peek for ursa__sched_spin. */
static bool has_unit(void *arg)
{
	struct ursa_sem *s = arg;

	return __atomic_load_n(&s->value_, __ATOMIC_RELAXED) > 0;
}

int ursa_sem_acquire(struct ursa_sem *s)
{
	struct ursa_task *self;
	struct ursa__wait w;

	ursa__waitq_check(&s->waiters_, "ursa_sem_acquire", "semaphore", s);
	if (take_settled(s))
		return 0;
	self = ursa__sched_self();
	if (!self)
		return -EPERM;
	/* A release on another core often comes sooner than a park and a wake
	 * would take: if our core has nothing else to do, watch for a unit
	 * first.  A unit appears only while nobody is queued (the invariant
	 * above), so this never overtakes a waiter. */
	if (ursa__sched_spin(has_unit, s) && take_settled(s))
		return 0;
	ursa__spin_lock(&s->lock_);
	if (take(s)) {
		ursa__spin_unlock(&s->lock_);
		return 0;
	}
	/* 0: a release handed us its unit. */
	return ursa__waitq_wait(self, &s->waiters_, &s->lock_, &w, NULL, NULL, NULL);
}

int ursa_sem_release(struct ursa_sem *s)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;
	int rc = 0;

	ursa__spin_lock(&s->lock_);
	n = ursa__waitq_claim(&s->waiters_);
	if (n) {
		ursa__waitq_grant(&ws, n, 0, NULL);
	} else if (__atomic_load_n(&s->value_, __ATOMIC_RELAXED) >= (s->bounded_ ? s->max_ : UINT_MAX)) {
		/* Refused, not wrapped: an unbounded semaphore at UINT_MAX would
		 * otherwise wrap to 0 units. */
		rc = -EOVERFLOW;
	} else {
		/* release: the next taker sees what the releaser did. */
		__atomic_fetch_add(&s->value_, 1u, __ATOMIC_RELEASE);
	}
	ursa__spin_unlock(&s->lock_);
	ursa__waitq_wake(&ws);
	return rc;
}

unsigned ursa_sem_value(struct ursa_sem *s)
{
	return __atomic_load_n(&s->value_, __ATOMIC_RELAXED);
}
