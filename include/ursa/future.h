/* SPDX-License-Identifier: MIT */
/*
 * ursa/future.h: futures (asyncio.Future, the Grizzly notes' Future): a
 * result, a done flag and an error message, set once from any thread and
 * awaited by any number of tasks; the bridge between tasks and plain threads
 * or callback-based libraries, and run_in_executor.  Self-contained:
 * include <ursa.h> for everything, or this header alone.
 */
#ifndef URSA_FUTURE_H
#define URSA_FUTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"
#include "sync.h" /* struct ursa_waitq_ */

#ifdef __cplusplus
extern "C" {
#endif

struct ursa_future;

/* A done callback's record, owned by the caller until the callback runs. */
struct ursa_future_cb {
	struct ursa_future_cb *next_;
	void (*fn_)(struct ursa_future *f, void *arg);
	void *arg_;
};

/*
 * A future.  Caller-allocated (URSA_FUTURE_INIT or ursa_future_init); the
 * fields are private.  It must outlive its waiters.  Once a caller has seen
 * it complete (ursa_future_wait, _result or _done), the setter no longer
 * touches it and the caller may free it, even while the setting call is
 * still returning on another thread; done callbacks, if any, are passed f
 * and run after that, so a future with callbacks must outlive them too.
 * ursa_future_fini frees the error message.
 */
struct ursa_future {
	unsigned state_;    /* 0 pending, 1 done; also a futex word */
	unsigned lock_;
	unsigned sleepers_; /* plain threads blocked in ursa_future_wait */
	int err_;
	void *result_;
	char *msg_;
	struct ursa_future_cb *cbs_;
	struct ursa_waitq_ waiters_;
};
#define URSA_FUTURE_INIT {.state_ = 0}

URSA_API void ursa_future_init(struct ursa_future *f);
/* Free what f holds (its message).  No task may be waiting.  Any thread. */
URSA_API void ursa_future_fini(struct ursa_future *f);

/*
 * Complete f, once: with a result, with an error (a negative errno, anything
 * else is recorded as -EINVAL, and a printf-style message, fmt may be NULL;
 * asyncio's set_exception), or cancelled (waiters get -ECANCELED).  Every
 * waiter is woken, then the done callbacks run, on this thread.  Returns 0,
 * or -EALREADY if f was already complete (asyncio's InvalidStateError; the
 * new outcome is dropped).  Any thread: an ursa task, a pool thread or a
 * plain pthread.  Does not block.
 */
URSA_API int ursa_future_set_result(struct ursa_future *f, void *result);
URSA_API int ursa_future_set_error(struct ursa_future *f, int err, const char *fmt, ...)
	URSA_PRINTF_(3, 4);
URSA_API int ursa_future_cancel(struct ursa_future *f);

/*
 * Wait until f is complete and return its outcome: 0 and *result (if not
 * NULL), the error it was set with, or -ECANCELED if it was cancelled.  From
 * a task the fiber parks and the caller's own cancellation or deadline also
 * end the wait (-ECANCELED / -ETIMEDOUT; ursa_future_done tells the two
 * -ECANCELED apart).  From any other thread the thread blocks (a futex):
 * the way back from tasks to plain threads.
 */
URSA_API URSA_NODISCARD int ursa_future_wait(struct ursa_future *f, void **result);

/* Whether f is complete.  Any thread. */
URSA_API bool ursa_future_done(struct ursa_future *f);
/* f's outcome without waiting: as ursa_future_wait, or -EAGAIN while
 * pending.  Any thread. */
URSA_API URSA_NODISCARD int ursa_future_result(struct ursa_future *f, void **result);
/* The error message f was set with, "" if none; valid until ursa_future_fini.
 * Any thread, once f is complete. */
URSA_API const char *ursa_future_message(struct ursa_future *f);

/*
 * asyncio's add_done_callback: run fn(f, arg) once f is complete, on the
 * thread that completes it, after its waiters have been woken (at once, here,
 * if f is already complete).  cb is the caller's record for it and must stay
 * valid until fn runs.  fn must not block; it may free f only if nothing
 * else uses f.  Any thread.
 */
URSA_API void ursa_future_on_done(struct ursa_future *f, struct ursa_future_cb *cb,
                                  void (*fn)(struct ursa_future *f, void *arg), void *arg);

/*
 * run_in_executor: initialise *f, whatever it held, then start fn(arg) on the
 * blocking pool and return at once; f (pending, and valid until it
 * completes) gets fn's return value as its result.  f is initialised on every
 * return (if not NULL), so ursa_future_fini(f) is valid afterwards; register
 * done callbacks after this call.  A future that tasks wait on must not be
 * passed.  If the runtime shuts down before a pool thread takes the job, f is
 * cancelled.  Returns 0, -ENOMEM, -EINVAL (f or fn NULL), -EPERM (not in a
 * task).  Call from a task; does not block.  For an executor of your own
 * (your threads), complete a future from it instead.
 */
URSA_API URSA_NODISCARD int ursa_blocking_submit(struct ursa_future *f, ursa_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* URSA_FUTURE_H */
