/* SPDX-License-Identifier: MIT */
/*
 * ursa/group.h: working with many tasks: how a task ends (result, error or
 * cancelled), gather, wait, as_completed, wait_for, task groups (asyncio's
 * TaskGroup, Trio's nurseries) and periodic ticks.  Self-contained: include
 * <ursa.h> for everything, or this header alone.
 */
#ifndef URSA_GROUP_H
#define URSA_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- outcomes */

#define URSA_OUTCOME_MSG_SIZE 120

/*
 * How a task ended, as gather and ursa_join_outcome report it.
 *   err == 0           it returned `result`;
 *   err == -ECANCELED  it was cancelled (asyncio's CancelledError);
 *   other err < 0      it failed (ursa_task_fail): the C analogue of an
 *                      exception, with `msg` (truncated; "" if none).
 */
struct ursa_outcome {
	int err;
	void *result;
	char msg[URSA_OUTCOME_MSG_SIZE];
};

/*
 * End the calling task's work with an error (raise, in asyncio terms): record
 * err (a negative errno; anything else is recorded as -EINVAL) and a
 * printf-style message (fmt may be NULL) as the task's outcome, and return
 * NULL, so a task function writes `return ursa_task_fail(-EIO, "bad %s", x);`.
 * It does not end the task by itself.  A recorded failure wins over a later
 * cancellation: the task's outcome is the error, not -ECANCELED.  Calling it
 * again replaces the error.  Call from the task itself; does not block.
 */
URSA_API void *ursa_task_fail(int err, const char *fmt, ...) URSA_PRINTF_(2, 3);

/*
 * ursa_join, reporting the call's own status and t's outcome separately.
 * Returns 0 when t ended by itself; -ECANCELED / -ETIMEDOUT when the caller
 * was cancelled / an enclosing deadline passed while it waited (t was then
 * cancelled in turn and awaited).  In these three cases t is released and
 * *out (if not NULL) says how it ended.  -EINVAL (t NULL, detached, being
 * joined or watched), -EDEADLK (t is the caller), -EPERM (not in a task):
 * nothing was done, t is still the caller's, *out is untouched.  A task's own
 * error never appears in the return value.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_join_outcome(struct ursa_task *t, struct ursa_outcome *out);

/* Whether t has ended (asyncio's Task.done()).  Any thread, while the handle
 * is held. */
URSA_API bool ursa_task_done(const struct ursa_task *t);

/* t's outcome without waiting or releasing it (Task.result() /
 * .exception()): 0 and *out filled if t has ended, else -EAGAIN.  Any thread,
 * while the handle is held. */
URSA_API URSA_NODISCARD int ursa_task_outcome(const struct ursa_task *t, struct ursa_outcome *out);

/* ----------------------------------------------------------------- gather */

#define URSA_GATHER_ALL 0x1u /* return_exceptions=True: cancel nothing on a failure */

/*
 * Wait for the n tasks and release them all (asyncio.gather over tasks).
 * out[i] (if out is not NULL) receives tasks[i]'s outcome.  By default the
 * first task to fail or be cancelled makes gather cancel the others
 * (fail-fast); with URSA_GATHER_ALL nothing is cancelled.
 *
 * Returns, whatever the flags:
 *   0 .. n        every task has ended; the number that did not return
 *                 normally (failed or cancelled);
 *   -ECANCELED,   the caller was cancelled / a deadline of its passed while
 *   -ETIMEDOUT    gather waited (and it was not already cancelling because of
 *                 a failure): every task was cancelled and awaited;
 * and in all of these every task is released and out[] is filled;
 *   -EINVAL       tasks NULL with n > 0, a task NULL, repeated, detached,
 *                 joined or watched, an unknown flag bit, or n > INT_MAX;
 *   -EPERM        not called from a task;
 * and then nothing was cancelled, waited for or released, and out[] is
 * untouched.  A task's error is never the return value: read it in out[].
 * Blocks the fiber; the tasks may live on any cores.
 */
URSA_API URSA_NODISCARD int ursa_gather(struct ursa_task *const *tasks, size_t n, uint32_t flags,
                                        struct ursa_outcome *out);

/* ------------------------------------------------------------------- wait */

enum {
	URSA_WAIT_FIRST_COMPLETED = 1, /* return when one task has ended           */
	URSA_WAIT_FIRST_EXCEPTION = 2, /* ... when one has failed (ursa_task_fail;
	                                  not cancelled), or all have ended         */
	URSA_WAIT_ALL_COMPLETED = 3,   /* ... when all have ended                  */
};

/*
 * asyncio.wait: wait until return_when holds, or timeout_ns has passed
 * (ursa_wait; URSA_FOREVER: no timeout, 0: a poll), or the absolute
 * deadline_ns has passed (ursa_wait_until).  done[i] (if done is not NULL)
 * is set true if tasks[i] has ended (the done set) and false if not (the
 * pending set).  Returns the number of ended tasks (the timeout is a normal
 * return, as in asyncio), -ECANCELED / -ETIMEDOUT if the caller is cancelled
 * or an enclosing scope expires (done[] is still filled), -EINVAL as
 * ursa_gather, or for a bad return_when.  Nothing is released or cancelled:
 * join, cancel or detach the tasks afterwards (joining an ended task does
 * not wait).  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_wait(struct ursa_task *const *tasks, size_t n, int return_when,
                                      uint64_t timeout_ns, bool *done);
URSA_API URSA_NODISCARD int ursa_wait_until(struct ursa_task *const *tasks, size_t n,
                                            int return_when, uint64_t deadline_ns, bool *done);

/*
 * asyncio.wait_for on a task: wait at most timeout_ns for t, and release it.
 * Returns 0 when t ended within the timeout; -ETIMEDOUT when the timeout (or
 * an enclosing deadline) passed first; -ECANCELED when the caller was
 * cancelled first.  In the last two cases t was cancelled and awaited.  In all
 * three t is released and *out (if not NULL) says how it ended: a task that
 * failed with -ETIMEDOUT of its own returns 0 with out->err == -ETIMEDOUT,
 * and one cut off by the timeout returns -ETIMEDOUT with out->err ==
 * -ECANCELED (or the outcome it had reached first).  -EINVAL, -EDEADLK,
 * -EPERM as ursa_join_outcome: nothing done.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_wait_for(struct ursa_task *t, uint64_t timeout_ns,
                                          struct ursa_outcome *out);

/* ----------------------------------------------------------- as_completed */

/* Private: a set of tasks whose ends wake one waiter (lib/watch.h). */
struct ursa_watch_ {
	struct ursa_task *waiter_;
	struct ursa_task *ended_;
};

/*
 * asyncio.as_completed: the tasks in the order they end.  Lives on the
 * caller's stack between _init and _fini; the fields are private.
 *
 *   struct ursa_as_completed ac;
 *   if (ursa_as_completed_init(&ac, tasks, n) == 0) {
 *       while ((i = ursa_as_completed_next(&ac)) >= 0)
 *           rc = ursa_join(tasks[i], &r);   // ended: does not wait
 *       ursa_as_completed_fini(&ac);     // i is -EPIPE after the last
 *   }
 */
struct ursa_as_completed {
	struct ursa_watch_ watch_;
	struct ursa_task *const *tasks_;
	size_t n_, left_;
	struct ursa_task *ready_head_, *ready_tail_;
	unsigned char *taken_;  /* per task: 1 once off the watch */
};

/* Start watching tasks[0..n).  0, -EINVAL as ursa_gather, or -ENOMEM.
 * Does not block. */
URSA_API URSA_NODISCARD int ursa_as_completed_init(struct ursa_as_completed *ac,
                                                   struct ursa_task *const *tasks, size_t n);
/* The index of the next task to end, waiting for it if need be.  -EPIPE once
 * every task has been returned (end of stream); -ECANCELED / -ETIMEDOUT if the caller is
 * cancelled or its deadline passes (call again to keep waiting).  The task is
 * not released.  Blocks the fiber. */
URSA_API URSA_NODISCARD int ursa_as_completed_next(struct ursa_as_completed *ac);
/* Stop watching; tasks not yet returned keep running, their handles stay
 * with the caller.  Must be called before ac goes out of scope.  Blocks the
 * fiber briefly (a task ending right now is waited for). */
URSA_API void ursa_as_completed_fini(struct ursa_as_completed *ac);

/* ------------------------------------------------------------ task groups */

/*
 * A task group (asyncio.TaskGroup, Trio's nursery): tasks spawned into it
 * cannot outlive it.  Lives on the stack of the task that enters it (the
 * owner) between ursa_group_enter and ursa_group_exit; fields are private.
 *
 *   struct ursa_group g;
 *   ursa_group_enter(&g);
 *   ursa_group_spawn(&g, fn, arg) ...     // the body
 *   rc = ursa_group_exit(&g, &first);      // waits for every child;
 *                                          // rc > 0: children failed
 *
 * The body runs in a cancel scope.  When a child fails (ends after
 * ursa_task_fail), the body's blocking calls start returning -ECANCELED at
 * once, and the owner cancels every other child as soon as it reaches
 * ursa_group_exit (or is in it).  Cancelled children are not failures.
 */
struct ursa_group {
	struct ursa_scope scope_;
	struct ursa_watch_ watch_;
	struct ursa_task *owner_;
	struct ursa_task *failed_;   /* the first child that failed, kept */
	size_t nfailed_;             /* children that failed */
	void *head_, *tail_;         /* live children */
	size_t live_;
	unsigned lock_;
	unsigned flags_;
};

/* Enter g (a cancel scope around the body).  Call from a task. */
URSA_API void ursa_group_enter(struct ursa_group *g);

/*
 * Start fn(arg) as a child of g, on the caller's core (_spawn), on `core` or
 * a core the runtime picks with URSA_CORE_ANY (_spawn_on), or with options
 * (_spawn_ex: -EINVAL for URSA_SPAWN_DETACHED, which a child cannot be, or
 * any other flag).  Any task may spawn into a
 * group that has not been exited, including its children.  Returns 0,
 * -ENOMEM, -EINVAL (fn NULL, no such core, a flag), or -ECANCELED if the
 * group is shutting down (a child failed, or the group was cancelled).  Does
 * not block.
 */
URSA_API URSA_NODISCARD int ursa_group_spawn(struct ursa_group *g, ursa_fn fn, void *arg);
URSA_API URSA_NODISCARD int ursa_group_spawn_on(struct ursa_group *g, unsigned core, ursa_fn fn,
                                                void *arg);
URSA_API URSA_NODISCARD int ursa_group_spawn_ex(struct ursa_group *g, unsigned core, ursa_fn fn,
                                                void *arg, const struct ursa_spawn_opts *opts);

/* Cancel the body and every child (the group then shuts down).  Any task
 * that may spawn into g may call it.  Does not block. */
URSA_API void ursa_group_cancel(struct ursa_group *g);

/*
 * Leave the body's scope, wait for every child to end, and release them.  If
 * the owner is cancelled or a deadline of its passes meanwhile, the children
 * are cancelled and still awaited (a shielded wait).  Returns what ended the
 * group:
 *   n > 0       n children failed (ended after ursa_task_fail; cancelled
 *               children are not failures); a failure is the most useful
 *               report, so it wins over a cancellation of the group;
 *   -ECANCELED  no child failed, and the group was cancelled
 *               (ursa_group_cancel) or the owner was;
 *   -ETIMEDOUT  no child failed, and a deadline of the owner passed;
 *   0           every child ended, none failed, nothing cancelled the group;
 * and in all of these every child has ended and been released, and *first
 * (if not NULL) holds the first failure's outcome, or is zeroed (err 0, msg
 * "") if no child failed.  -EPERM: not called by the owner; nothing done.
 * A child's error is never the return value.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_group_exit(struct ursa_group *g, struct ursa_outcome *first);

/* ---------------------------------------------------------- periodic work */

/* A fixed-rate schedule (a periodic task's clock; Go's time.Ticker). */
struct ursa_ticker {
	uint64_t period_ns;
	uint64_t next_ns;
};

/* The first tick is one period from now (a period of 0 is 1 ns; ticks past
 * URSA_FOREVER saturate to it, a tick that never comes).  Any thread. */
URSA_API void ursa_ticker_init(struct ursa_ticker *tk, uint64_t period_ns);

/*
 * Sleep until the next tick.  Ticks are on a fixed grid (no drift); if the
 * caller fell behind, the missed ticks are skipped.  Returns the number of
 * ticks that have passed since the last call (1 normally, more if some were
 * skipped; at most INT_MAX), or -ECANCELED / -ETIMEDOUT.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_ticker_wait(struct ursa_ticker *tk);

#ifdef __cplusplus
}
#endif

#endif /* URSA_GROUP_H */
