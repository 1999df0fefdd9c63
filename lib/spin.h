/* SPDX-License-Identifier: MIT */
/*
 * spin.h: the spinlock of the primitives (lib/sync_*.c, queue.c, future.c,
 * group.c), the settle rule for their lock-free fast paths, and the CPU's
 * spin-wait hint.
 */
#ifndef URSA_SPIN_H
#define URSA_SPIN_H

#include <sched.h>

/*
 * The CPU's spin-wait hint (x86 `pause`, aarch64 `yield`; nothing elsewhere):
 * one instruction, so it lives here rather than behind a file per
 * architecture (lib/fiber/), and is the only architecture #if outside it.
 */
static inline void ursa__spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/* Called every 2^20 spins on one lock: aborts with a report once the lock
 * has looked held for 10 s (waitq.c).  *since is the spinner's clock. */
void ursa__spin_too_long(const unsigned *l, unsigned long long *since);

/* A spinlock for the few instructions that edit a queue; never held while
 * anything waits.  The holder may be a foreign thread that gets preempted,
 * so a spinner yields the CPU after a while instead of burning it.  A lock
 * held for seconds is no lock but garbage: the object around it was freed
 * or overwritten while in use (a task spun on it at 100 % CPU for ever);
 * ursa__spin_too_long reports that and aborts (issue 20.8). */
static inline void ursa__spin_lock(unsigned *l)
{
	unsigned long long since = 0;

	for (;;) {
		/* acquire: pairs with the release in ursa__spin_unlock. */
		if (!__atomic_exchange_n(l, 1u, __ATOMIC_ACQUIRE))
			return;
		for (unsigned i = 1; __atomic_load_n(l, __ATOMIC_RELAXED); i++)
			if (!(i % 256)) {
				sched_yield();
				if (!(i % (1u << 20)))
					ursa__spin_too_long(l, &since);
			}
	}
}

static inline void ursa__spin_unlock(unsigned *l)
{
	__atomic_store_n(l, 0u, __ATOMIC_RELEASE);
}

/*
 * For a caller that has just seen, without the lock, a state published under
 * it (an event set, a count at zero, a unit released, a mutex freed, a future
 * completed): wait until the publisher has let go of the lock, its last touch
 * of the object, so that the caller may free the object as soon as it
 * returns.  A primitive on a waiter's stack, signalled from another core, is
 * the common case (examples/kv.c's messages; Go's WaitGroup idiom).
 *
 * One load when nobody holds the lock.  It cannot miss the publisher: its
 * taking of the lock precedes its release-store of the state, which the
 * caller's acquire-load observed.  A later, unrelated holder only costs a
 * short wait.
 */
static inline void ursa__spin_settle(unsigned *l)
{
	if (__atomic_load_n(l, __ATOMIC_ACQUIRE)) {
		ursa__spin_lock(l);
		ursa__spin_unlock(l);
	}
}

#endif /* URSA_SPIN_H */
