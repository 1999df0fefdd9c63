/* SPDX-License-Identifier: MIT */
/*
 * sync_mutex.c: ursa_mutex (asyncio.Lock).
 *
 * state_: FREE, LOCKED, CONTENDED (locked, and tasks may be queued) or
 * HANDED (below).  The fast paths are one compare-and-swap each: FREE ->
 * LOCKED to lock, LOCKED -> FREE to unlock.  A lock that finds the mutex
 * LOCKED from another core first spins briefly (lock_spin).  A task that
 * must wait sets CONTENDED under the spinlock and queues; an unlock that
 * finds CONTENDED takes the spinlock and hands the mutex to the first waiter
 * without ever making it FREE, so a newcomer cannot overtake a waiter (FIFO).
 * When that empties the queue the state becomes HANDED until the new holder
 * runs and makes it LOCKED.  Invariant, under the spinlock: a waiter is
 * queued only while state_ is CONTENDED.  A cancelled waiter may leave
 * CONTENDED behind with nobody queued; the next unlock then finds the queue
 * empty and frees the mutex.
 */
#include "waitq.h"

#include "scope.h"

#include <errno.h>
#include <string.h>

/* HANDED: handed by an unlock to a parked waiter that has not run yet (and
 * nobody else queued).  It is LOCKED, except that spinning for it is futile:
 * the new holder first has to be woken, which takes longer than any spin. */
enum { FREE = 0, LOCKED = 1, CONTENDED = 2, HANDED = 3 };

void ursa_mutex_init(struct ursa_mutex *m)
{
	memset(m, 0, sizeof(*m));
}

int ursa_mutex_trylock(struct ursa_mutex *m)
{
	unsigned s = FREE;

	/* acquire: pairs with the release in ursa_mutex_unlock. */
	if (!__atomic_compare_exchange_n(&m->state_, &s, LOCKED, false, __ATOMIC_ACQUIRE,
	                                 __ATOMIC_RELAXED))
		return -EAGAIN;
	/* An unlock that freed it on its slow path may still hold the lock:
	 * lock, unlock and free m must be safe right after. */
	ursa__spin_settle(&m->lock_);
	return 0;
}

static int lock_slow(struct ursa_mutex *m, struct ursa_task *self)
{
	struct ursa__wait w;
	int rc;

	ursa__spin_lock(&m->lock_);
	for (;;) {
		unsigned s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);

		if (s == FREE) {
			/* Freed by a fast-path unlock since we looked. */
			if (__atomic_compare_exchange_n(&m->state_, &s, LOCKED, false,
			                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				ursa__spin_unlock(&m->lock_);
				return 0;
			}
			continue;
		}
		/* CONTENDED from here on: the holder's unlock takes the slow path
		 * (and the spinlock), so it will find our node. */
		if (s == CONTENDED || __atomic_compare_exchange_n(&m->state_, &s, CONTENDED, false,
		                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			break;
	}
	rc = ursa__waitq_wait(self, &m->waiters_, &m->lock_, &w, NULL, NULL, NULL);
	/* 0: the holder handed us the mutex (the grant wins over a racing
	 * cancellation: we return holding it).  We run: spinning for it makes
	 * sense again.  (If someone queued meanwhile it is CONTENDED: leave it.) */
	if (rc == 0) {
		unsigned s = HANDED;

		__atomic_compare_exchange_n(&m->state_, &s, LOCKED, false, __ATOMIC_RELAXED,
		                            __ATOMIC_RELAXED);
	}
	return rc;
}

/*
 * Before parking, try for a short while: a holder running on another core
 * usually leaves its critical section long before a park and a cross-core
 * wake would complete (docs/bench.md, "Numbers behind choices in the code",
 * has the lock-2core figures).  Only while the mutex is LOCKED with nobody
 * queued, so a spinner never overtakes a waiter (FIFO holds for everyone who
 * parked); not while it is HANDED to a waiter still being woken; never with
 * one core, where the holder is a task of ours and cannot run while we spin.
 * With two cores a contender also spins when the holder is a parked task of
 * its own core (one holding the mutex across I/O); recording the holder's
 * core to skip that was tried and measured (same section): it slowed every
 * uncontended lock and saved no CPU, since once one task is queued nobody
 * spins.
 */
enum { SPIN_TRIES = 256 };

static bool lock_spin(struct ursa_mutex *m)
{
	if (ursa_ncores() < 2)
		return false;
	for (unsigned i = 0; i < SPIN_TRIES; i++) {
		unsigned s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);

		if (s == CONTENDED || s == HANDED)
			return false;
		if (s == FREE && ursa_mutex_trylock(m) == 0)
			return true;
		ursa__spin_pause();
	}
	return false;
}

int ursa_mutex_lock(struct ursa_mutex *m)
{
	struct ursa_task *self;

	if (ursa_mutex_trylock(m) == 0)
		return 0;
	self = ursa__sched_self();
	if (!self)
		return -EPERM;
	if (lock_spin(m))
		return 0;
	return lock_slow(m, self);
}

int ursa_mutex_unlock(struct ursa_mutex *m)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;
	unsigned s = LOCKED;

	/* release: the next holder sees our critical section. */
	if (__atomic_compare_exchange_n(&m->state_, &s, FREE, false, __ATOMIC_RELEASE,
	                                __ATOMIC_RELAXED))
		return 0;
	if (s == FREE)
		return -EPERM;
	ursa__spin_lock(&m->lock_);
	n = ursa__waitq_claim(&m->waiters_);
	if (n) {
		/* Hand-off: the mutex stays held, now by the waiter.  The release
		 * of DONE in ursa__waitq_wake publishes our critical section. */
		ursa__waitq_grant(&ws, n, 0, NULL);
		if (ursa__waitq_empty(&m->waiters_))
			__atomic_store_n(&m->state_, HANDED, __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&m->state_, FREE, __ATOMIC_RELEASE);
	}
	ursa__spin_unlock(&m->lock_);
	ursa__waitq_wake(&ws);
	return 0;
}

bool ursa_mutex_locked(struct ursa_mutex *m)
{
	return __atomic_load_n(&m->state_, __ATOMIC_RELAXED) != FREE;
}
