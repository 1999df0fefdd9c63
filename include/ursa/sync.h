/* SPDX-License-Identifier: MIT */
/*
 * ursa/sync.h: synchronisation between tasks (asyncio.Lock, Condition,
 * Semaphore, BoundedSemaphore, Event, Barrier; Go's WaitGroup).
 * Self-contained: include <ursa.h> for everything, or this header alone.
 *
 * Every primitive here is small and caller-allocated: put it anywhere (a
 * global, a struct, a task's stack), initialise it with its URSA_*_INIT
 * constant or its _init call, and share it between tasks on any cores.
 * The fields are private.  A primitive needs no destroy call; it must not
 * be freed while a task waits on it.
 *
 * Rules shared by every primitive (docs/asyncio.md has the long form):
 *   - Waiting is parking: the task parks, its core runs other tasks, and the
 *     task is woken by the one that releases it (across cores through the
 *     owner core's ring).  Nothing spins waiting for a resource.
 *   - A call that can complete without waiting completes, even in a
 *     cancelled task; a call that must wait returns -ECANCELED if the task is
 *     cancelled and -ETIMEDOUT if an enclosing deadline scope expires, before
 *     or while it waits, and the primitive is left as if it had never waited.
 *   - If the grant and the cancellation race, the grant wins: a lock, a
 *     semaphore unit or a queue item that was handed to the waiter is
 *     returned as success (0), never lost; the cancellation shows up at the
 *     task's next blocking call.
 *   - Waiters are served first come, first served (FIFO), and a release
 *     hands the resource straight to the first waiter, so a newcomer cannot
 *     overtake a task that is already waiting.  The mutex is the exception
 *     (below): a running task may take a free mutex ahead of a waiter, but
 *     never from one that has waited 1 ms.
 *   - Calls that wait may only be made from a task (else -EPERM).  Calls that
 *     never wait (unlock, release, set, notify, add, abort) may be made from
 *     any thread, including threads that are not ursa workers.
 */
#ifndef URSA_SYNC_H
#define URSA_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Private: a FIFO of waiting tasks, whose records live on their stacks
 * (lib/waitq.h).  All-zero is an empty queue.  magic_ is 0 until the first
 * wait, then a constant: any other value means the object was never
 * initialised, or was freed or overwritten (lib/waitq.h, poison checks). */
struct ursa__wnode;
struct ursa_waitq_ {
	struct ursa__wnode *head_, *tail_;
	unsigned magic_;
};

/* ------------------------------------------------------------------ mutex */

/* asyncio.Lock: a mutual-exclusion lock for tasks.  Not recursive; not owned
 * (any task or thread may unlock it, as in asyncio). */
struct ursa_mutex {
	unsigned state_; /* 0 free, 1 locked, 2 locked and maybe waited for */
	unsigned lock_;
	struct ursa_waitq_ waiters_;
};
#define URSA_MUTEX_INIT {.state_ = 0}

URSA_API void ursa_mutex_init(struct ursa_mutex *m);

/*
 * Take m, waiting while another holds it.  Returns 0 (m is now held),
 * -ECANCELED or -ETIMEDOUT (not held).  An uncontended lock is one atomic
 * compare-and-swap.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_mutex_lock(struct ursa_mutex *m);

/* Take m if it is free: 0, or -EAGAIN if it is held.  Any thread. */
URSA_API URSA_NODISCARD int ursa_mutex_trylock(struct ursa_mutex *m);

/*
 * Release m.  If tasks wait, m becomes free and the first of them is woken
 * to take it, which any running task may do first (barging: under
 * contention from two cores each side then does many critical sections per
 * cross-core wake); but a first waiter that has waited 1 ms or more is handed
 * m directly, so nobody starves (Go's sync.Mutex does the same).  Waiters
 * among themselves keep their arrival order.  Returns 0, or -EPERM if m was
 * not locked.  Any thread.
 */
URSA_API int ursa_mutex_unlock(struct ursa_mutex *m);

/* Whether m is held right now (a snapshot).  Any thread. */
URSA_API bool ursa_mutex_locked(struct ursa_mutex *m);

/* -------------------------------------------------------------- condition */

/* asyncio.Condition: wait until notified, with a mutex held around the
 * check of the condition. */
struct ursa_cond {
	unsigned lock_;
	struct ursa_waitq_ waiters_;
};
#define URSA_COND_INIT {.lock_ = 0}

URSA_API void ursa_cond_init(struct ursa_cond *c);

/*
 * Release m (which the caller holds), wait for a notify, and take m again.
 * Returns 0 when notified, -ECANCELED or -ETIMEDOUT otherwise; in every case
 * m is held again on return (re-taking it is shielded from cancellation, as
 * in asyncio).  Wake-ups may be spurious in the sense that the condition
 * may no longer hold: check it in a loop, or use ursa_cond_wait_for.
 * Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_cond_wait(struct ursa_cond *c, struct ursa_mutex *m);

/*
 * Wait until pred(arg) returns true, checking it with m held: the loop
 * around ursa_cond_wait.  Returns 0 (pred true, m held), or -ECANCELED /
 * -ETIMEDOUT (m held).  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_cond_wait_for(struct ursa_cond *c, struct ursa_mutex *m,
                                               bool (*pred)(void *arg), void *arg);

/* Wake up to n waiters (the longest-waiting first); returns how many were
 * woken.  With or without the mutex held.  Any thread. */
URSA_API unsigned ursa_cond_notify(struct ursa_cond *c, unsigned n);
/* Wake every waiter; returns how many.  Any thread. */
URSA_API unsigned ursa_cond_notify_all(struct ursa_cond *c);

/* -------------------------------------------------------------- semaphore */

/* asyncio.Semaphore and BoundedSemaphore: a counter of units. */
struct ursa_sem {
	unsigned value_;
	unsigned max_;     /* the initial value */
	unsigned lock_;
	unsigned bounded_; /* release refused beyond max_ (else beyond UINT_MAX) */
	struct ursa_waitq_ waiters_;
};
#define URSA_SEM_INIT(n) {.value_ = (n), .max_ = (n)}
#define URSA_SEM_BOUNDED_INIT(n) {.value_ = (n), .max_ = (n), .bounded_ = 1}

/* A semaphore of `value` units (0 .. UINT_MAX); `bounded`: releasing beyond
 * the initial value is an error (asyncio.BoundedSemaphore; bounded with 0
 * units, every release is refused). */
URSA_API void ursa_sem_init(struct ursa_sem *s, unsigned value, bool bounded);

/* Take one unit, waiting while there is none.  0, -ECANCELED, -ETIMEDOUT.
 * Blocks the fiber. */
URSA_API URSA_NODISCARD int ursa_sem_acquire(struct ursa_sem *s);
/* Take one unit if there is one: 0, or -EAGAIN.  Any thread. */
URSA_API URSA_NODISCARD int ursa_sem_tryacquire(struct ursa_sem *s);
/* Give one unit back; if tasks wait, the first one gets it.  Returns 0, or
 * -EOVERFLOW (nothing changed) if a bounded semaphore would exceed its
 * initial value or an unbounded one UINT_MAX units.  Any thread. */
URSA_API int ursa_sem_release(struct ursa_sem *s);
/* Units available right now (a snapshot).  Any thread. */
URSA_API unsigned ursa_sem_value(struct ursa_sem *s);

/* ------------------------------------------------------------------ event */

/* asyncio.Event: a flag tasks can wait for. */
struct ursa_event {
	unsigned set_;
	unsigned lock_;
	struct ursa_waitq_ waiters_;
};
#define URSA_EVENT_INIT {.set_ = 0}

URSA_API void ursa_event_init(struct ursa_event *e);
/* Set the flag and wake every waiter.  Any thread. */
URSA_API void ursa_event_set(struct ursa_event *e);
/* Clear the flag.  Any thread. */
URSA_API void ursa_event_clear(struct ursa_event *e);
/* Whether the flag is set.  Any thread. */
URSA_API bool ursa_event_is_set(struct ursa_event *e);
/* Wait until the flag is set (0 at once if it is).  0, -ECANCELED,
 * -ETIMEDOUT.  Blocks the fiber. */
URSA_API URSA_NODISCARD int ursa_event_wait(struct ursa_event *e);

/* ---------------------------------------------------------------- barrier */

/* asyncio.Barrier: `parties` tasks wait until all of them have arrived. */
struct ursa_barrier {
	unsigned parties_;
	unsigned count_;   /* arrived in the current cycle */
	unsigned broken_;
	unsigned lock_;
	struct ursa_waitq_ waiters_;
};
#define URSA_BARRIER_INIT(parties) {.parties_ = (parties)}

URSA_API void ursa_barrier_init(struct ursa_barrier *b, unsigned parties);

/*
 * Arrive and wait for the others.  Returns the arrival index, 0 ..
 * parties-1 (parties-1 for the task that completed the cycle, which does not
 * wait), or -EPIPE if the barrier is or becomes broken (ursa_barrier_abort
 * or _reset; asyncio's BrokenBarrierError), -ECANCELED or -ETIMEDOUT (the
 * task leaves the cycle, which then waits for one more arrival).  After a
 * cycle completes, the barrier is ready for the next one.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_barrier_wait(struct ursa_barrier *b);
/* Break the barrier: waiters and later arrivals get -EPIPE.  Any thread. */
URSA_API void ursa_barrier_abort(struct ursa_barrier *b);
/* Waiters get -EPIPE; the barrier is then empty and no longer broken.
 * Any thread. */
URSA_API void ursa_barrier_reset(struct ursa_barrier *b);
/* Tasks waiting in the current cycle (a snapshot).  Any thread. */
URSA_API unsigned ursa_barrier_n_waiting(struct ursa_barrier *b);

/* -------------------------------------------------------------- waitgroup */

/* Go's sync.WaitGroup: wait until a count of outstanding jobs is zero. */
struct ursa_waitgroup {
	long count_;
	unsigned lock_;
	struct ursa_waitq_ waiters_;
};
#define URSA_WAITGROUP_INIT {.count_ = 0}

URSA_API void ursa_waitgroup_init(struct ursa_waitgroup *wg);
/* Add delta (may be negative) to the count; at zero, wake every waiter.
 * Returns 0, or (nothing changed) -EINVAL if the count would go negative,
 * -EOVERFLOW if it would pass LONG_MAX.  Any thread. */
URSA_API int ursa_waitgroup_add(struct ursa_waitgroup *wg, long delta);
/* ursa_waitgroup_add(wg, -1). */
URSA_API int ursa_waitgroup_done(struct ursa_waitgroup *wg);
/* Wait until the count is zero (0 at once if it is).  0, -ECANCELED,
 * -ETIMEDOUT.  Blocks the fiber. */
URSA_API URSA_NODISCARD int ursa_waitgroup_wait(struct ursa_waitgroup *wg);

#ifdef __cplusplus
}
#endif

#endif /* URSA_SYNC_H */
