/* SPDX-License-Identifier: MIT */
/*
 * sync_mutex.c: ursa_mutex (asyncio.Lock), with two modes, as Go's
 * sync.Mutex has:
 *
 *   - barging (normal): an unlock frees the mutex and wakes the first waiter
 *     to try again, and a running task may take the free mutex ahead of it.
 *     Under contention from two cores, each side then does a run of critical
 *     sections for each wake, instead of one critical section per cross-core
 *     wake.  A woken waiter that finds the mutex taken queues again, at the
 *     front.  Only one waiter is woken at a time (WOKEN), so a task that
 *     locks and unlocks in a loop does not wake the whole queue.
 *   - hand-off (the starvation guard): an unlock that finds that the first
 *     waiter has waited STARVE_NS or more hands the mutex to it directly: it
 *     stays held, marked HANDED until the new holder runs, so nobody can take
 *     it in between.
 *
 * state_ is a set of bits:
 *   LOCKED   somebody holds it;
 *   WAITERS  tasks may be queued, so an unlock takes the slow path and looks;
 *   WOKEN    a waiter woken to try again has neither taken the mutex nor
 *            queued again yet (the bit is that waiter's to clear);
 *   HANDED   handed over to a waiter that has not run yet (LOCKED too):
 *            spinning for it is futile, the new holder first has to be woken.
 * The fast paths are one compare-and-swap: 0 -> LOCKED to lock, LOCKED -> 0
 * to unlock.  Invariants, under the spinlock: a task is queued only while
 * WAITERS is set; while its unlocker holds both the mutex and the spinlock,
 * nobody else can change state_ (every other change needs the mutex free, or
 * the spinlock, or is the new holder's own clearing of HANDED).
 */
#include "waitq.h"

#include "scope.h"

#include <errno.h>
#include <string.h>

enum { LOCKED = 1, WAITERS = 2, WOKEN = 4, HANDED = 8 };

/* A grant's verdict (w->rc): 0, the mutex is yours; RETRY, try again. */
enum { RETRY = 1 };

/* The starvation bound: a waiter queued this long is handed the mutex by
 * the next unlock (Go's sync.Mutex uses the same 1 ms). */
#define STARVE_NS (1000 * 1000)

/* A waiting task: its node in the queue, and when it first queued. */
struct waiter {
	struct ursa__wnode n;
	uint64_t since;
};

void ursa_mutex_init(struct ursa_mutex *m)
{
	memset(m, 0, sizeof(*m));
}

/* Take m if it is free, waiters or not (barging). */
static bool take(struct ursa_mutex *m)
{
	unsigned s = 0;

	/* acquire: pairs with the release in ursa_mutex_unlock. */
	if (!__atomic_compare_exchange_n(&m->state_, &s, LOCKED, false, __ATOMIC_ACQUIRE,
	                                 __ATOMIC_RELAXED)) {
		/* Free with waiters (or a woken one) around: take it anyway. */
		do {
			if (s & LOCKED)
				return false;
		} while (!__atomic_compare_exchange_n(&m->state_, &s, s | LOCKED, true,
		                                      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
	}
	/* An unlock that freed it on its slow path may still hold the lock:
	 * lock, unlock and free m must be safe right after. */
	ursa__spin_settle(&m->lock_);
	return true;
}

int ursa_mutex_trylock(struct ursa_mutex *m)
{
	return take(m) ? 0 : -EAGAIN;
}

/*
 * Before parking, try for a short while: a holder running on another core
 * usually leaves its critical section long before a park and a cross-core
 * wake would complete (docs/bench.md, "Numbers behind choices in the code",
 * has the lock-2core figures).  Not while the mutex is HANDED to a waiter
 * still being woken, and never with one core, where the holder is a task of
 * ours and cannot run while we spin.  `clear` is WOKEN for the woken waiter,
 * which clears the bit with the same compare-and-swap that takes the mutex.
 * With two cores a contender also spins when the holder is a parked task of
 * its own core (one holding the mutex across I/O); recording the holder's
 * core to skip that was tried and measured (same section): it slowed every
 * uncontended lock and saved no CPU.
 */
enum { SPIN_TRIES = 256 };

static bool lock_spin(struct ursa_mutex *m, unsigned clear)
{
	if (ursa_ncores() < 2)
		return false;
	for (unsigned i = 0; i < SPIN_TRIES; i++) {
		unsigned s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);

		if (s & HANDED)
			return false;
		if (!(s & LOCKED)) {
			if (__atomic_compare_exchange_n(&m->state_, &s, (s | LOCKED) & ~clear, false,
			                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				ursa__spin_settle(&m->lock_);
				return true;
			}
			continue;
		}
		ursa__spin_pause();
	}
	return false;
}

/* Under the spinlock, when a waiter gives up (cancelled, deadline passed):
 * nobody left queued, no need for unlocks to look. */
static void withdrawn(void *arg)
{
	struct ursa_mutex *m = arg;

	if (ursa__waitq_empty(&m->waiters_))
		__atomic_fetch_and(&m->state_, ~(unsigned)WAITERS, __ATOMIC_RELAXED);
}

static int lock_slow(struct ursa_mutex *m, struct ursa_task *self)
{
	struct ursa__wait w;
	struct waiter me = {.since = 0};
	unsigned mine = 0; /* WOKEN, while a grant has told us to try again */
	int rc;

	ursa__waitq_check(&m->waiters_, "ursa_mutex_lock", "mutex", m);
	for (;;) {
		unsigned s;

		ursa__spin_lock(&m->lock_);
		s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED);
		for (;;) {
			if (!(s & LOCKED)) {
				/* Free: take it (and give up WOKEN if it was ours). */
				if (__atomic_compare_exchange_n(&m->state_, &s, (s | LOCKED) & ~mine,
				                                true, __ATOMIC_ACQUIRE,
				                                __ATOMIC_RELAXED)) {
					ursa__spin_unlock(&m->lock_);
					return 0;
				}
				continue;
			}
			/* Held: queue.  With WAITERS set the holder's unlock takes
			 * the slow path (and the spinlock), so it will find us. */
			if (__atomic_compare_exchange_n(&m->state_, &s, (s | WAITERS) & ~mine, true,
			                                __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		}
		mine = 0;
		/* The spinlock is held: the check that does not yield, then
		 * the refusal's bookkeeping (which may yield) without it. */
		rc = ursa__scope_check_locked(self, NULL);
		if (rc) {
			/* WAITERS may be left set with nobody queued: the next
			 * unlock then finds the queue empty and clears it. */
			ursa__spin_unlock(&m->lock_);
			ursa__scope_refused(self);
			return rc;
		}
		ursa__wait_init(&w, self);
		ursa__waitq_node_init(&me.n, &w, &m->waiters_, &m->lock_, 0);
		if (me.since) {
			/* Woken and overtaken: back to the front, with the time
			 * of our first arrival (the starvation guard counts it). */
			ursa__waitq_push_front(&m->waiters_, &me.n);
		} else {
			me.since = ursa_now();
			ursa__waitq_push(&m->waiters_, &me.n);
		}
		ursa__spin_unlock(&m->lock_);
		rc = ursa__waitq_block(&w, &me.n, 1, withdrawn, m);
		/* A grant wins over a racing cancellation: we got the mutex, or
		 * the WOKEN bit, which we must use or give up. */
		if (rc)
			return rc;
		if (w.rc != RETRY) {
			/* Handed over: ours, and we run, so spinning for it is
			 * worth something again. */
			__atomic_fetch_and(&m->state_, ~(unsigned)HANDED, __ATOMIC_RELAXED);
			return 0;
		}
		mine = WOKEN;
		if (lock_spin(m, WOKEN))
			return 0;
	}
}

int ursa_mutex_lock(struct ursa_mutex *m)
{
	struct ursa_task *self;

	if (take(m))
		return 0;
	self = ursa__sched_self();
	if (!self)
		return -EPERM;
	if (lock_spin(m, 0))
		return 0;
	return lock_slow(m, self);
}

int ursa_mutex_unlock(struct ursa_mutex *m)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;
	unsigned s = LOCKED;
	uint64_t now;
	int64_t waited;

	/* release: the next holder sees our critical section. */
	if (__atomic_compare_exchange_n(&m->state_, &s, 0, false, __ATOMIC_RELEASE,
	                                __ATOMIC_RELAXED))
		return 0;
	for (;;) {
		if (!(s & LOCKED))
			return -EPERM;
		if (s & WAITERS)
			break;
		/* Nobody queued (a woken waiter may be on its way: it keeps
		 * its WOKEN). */
		if (__atomic_compare_exchange_n(&m->state_, &s, s & ~(LOCKED | HANDED), true,
		                                __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			return 0;
	}
	now = ursa_now();
	ursa__spin_lock(&m->lock_);
	/* Stable until we let go (the invariants above): plain stores. */
	s = __atomic_load_n(&m->state_, __ATOMIC_RELAXED) & ~HANDED;
	n = m->waiters_.head_;
	/* Signed: the first waiter may have queued after we read the clock. */
	waited = n ? (int64_t)(now - ursa__container_of(n, struct waiter, n)->since) : 0;
	if (waited >= STARVE_NS) {
		/* Hand-off: it stays held, now by the waiter.  The release of
		 * DONE in ursa__waitq_wake publishes our critical section. */
		n = ursa__waitq_claim(&m->waiters_);
		ursa__waitq_grant(&ws, n, 0, NULL);
		s |= HANDED;
		if (ursa__waitq_empty(&m->waiters_))
			s &= ~WAITERS;
		__atomic_store_n(&m->state_, s, __ATOMIC_RELAXED);
	} else {
		s &= ~LOCKED;
		if (!n) {
			s &= ~WAITERS; /* left by a waiter that gave up */
		} else if (!(s & WOKEN)) {
			n = ursa__waitq_claim(&m->waiters_);
			ursa__waitq_grant(&ws, n, RETRY, NULL);
			s |= WOKEN;
			if (ursa__waitq_empty(&m->waiters_))
				s &= ~WAITERS;
		}
		/* release: the next holder sees our critical section. */
		__atomic_store_n(&m->state_, s, __ATOMIC_RELEASE);
	}
	ursa__spin_unlock(&m->lock_);
	ursa__waitq_wake(&ws);
	return 0;
}

bool ursa_mutex_locked(struct ursa_mutex *m)
{
	return (__atomic_load_n(&m->state_, __ATOMIC_RELAXED) & LOCKED) != 0;
}
