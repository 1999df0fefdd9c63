/* SPDX-License-Identifier: MIT */
/*
 * future.c: ursa_future.  Completing one takes the spinlock, publishes the
 * outcome, claims every waiting task and detaches the done callbacks; after
 * the lock it wakes the tasks (lib/waitq.c: the setter touches a waiter's
 * record only until DONE, then only its task, under a reference), wakes any
 * plain threads blocked on the state word (a futex), and runs the callbacks.
 * The setter may be any thread: an ursa task, a pool thread, or a pthread
 * that has never heard of ursa.
 */
#include "waitq.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { PENDING = 0, COMPLETE = 1 };

void ursa_future_init(struct ursa_future *f)
{
	memset(f, 0, sizeof(*f));
}

void ursa_future_fini(struct ursa_future *f)
{
	free(f->msg_);
	f->msg_ = NULL;
}

static void futex_wake_all(unsigned *word)
{
	/* The word may be gone by now if a waiter returned at once: FUTEX_WAKE
	 * on it is then harmless (nothing waits there, or a spurious wake-up,
	 * which every futex waiter tolerates). */
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Takes ownership of msg. */
static int complete(struct ursa_future *f, int err, void *result, char *msg)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa_future_cb *cbs, *fifo = NULL;
	struct ursa__wnode *n;
	unsigned sleepers;

	ursa__spin_lock(&f->lock_);
	if (f->state_ != PENDING) {
		ursa__spin_unlock(&f->lock_);
		free(msg);
		return -EALREADY;
	}
	f->err_ = err;
	f->result_ = result;
	f->msg_ = msg;
	/* seq_cst, with the load of sleepers_ after it: pairs with the waiting
	 * thread's increment of sleepers_ and load of state_ (wait_thread), so
	 * either it sees COMPLETE or we see it and wake it. */
	__atomic_store_n(&f->state_, COMPLETE, __ATOMIC_SEQ_CST);
	sleepers = __atomic_load_n(&f->sleepers_, __ATOMIC_SEQ_CST);
	while ((n = ursa__waitq_claim(&f->waiters_)))
		ursa__waitq_grant(&ws, n, 0, NULL);
	cbs = f->cbs_;
	f->cbs_ = NULL;
	/* Under the lock, like everything that touches f: whoever sees COMPLETE
	 * waits for our unlock (settled()) and may then free f, so after the
	 * unlock only the claimed waits (each on its waiter's stack, held there
	 * until DONE) and the callbacks' own records are touched. */
	if (sleepers)
		futex_wake_all(&f->state_);
	ursa__spin_unlock(&f->lock_);

	ursa__waitq_wake(&ws);
	/* Callbacks were pushed newest first; run them in registration order.
	 * After this loop f may be gone (a callback may free it). */
	while (cbs) {
		struct ursa_future_cb *next = cbs->next_;

		cbs->next_ = fifo;
		fifo = cbs;
		cbs = next;
	}
	while (fifo) {
		struct ursa_future_cb *next = fifo->next_;

		fifo->fn_(f, fifo->arg_);
		fifo = next;
	}
	return 0;
}

int ursa_future_set_result(struct ursa_future *f, void *result)
{
	return complete(f, 0, result, NULL);
}

int ursa_future_set_error(struct ursa_future *f, int err, const char *fmt, ...)
{
	char *msg = NULL;

	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL; /* out of memory: the error without its message */
		va_end(ap);
	}
	return complete(f, err < 0 ? err : -EINVAL, NULL, msg);
}

int ursa_future_cancel(struct ursa_future *f)
{
	return complete(f, -ECANCELED, NULL, NULL);
}

/*
 * f is complete: wait until its setter has let go of the lock, after which
 * complete() no longer touches f, so that the caller may free f as soon as
 * it has seen the outcome (a future on a waiter's stack, set from another
 * core or a pool thread, is the common case).
 */
static void settled(struct ursa_future *f)
{
	ursa__spin_settle(&f->lock_);
}

bool ursa_future_done(struct ursa_future *f)
{
	/* acquire: pairs with the store of COMPLETE; the outcome is visible. */
	if (__atomic_load_n(&f->state_, __ATOMIC_ACQUIRE) != COMPLETE)
		return false;
	settled(f);
	return true;
}

static int outcome(struct ursa_future *f, void **result)
{
	if (f->err_ == 0 && result)
		*result = f->result_;
	return f->err_;
}

int ursa_future_result(struct ursa_future *f, void **result)
{
	return ursa_future_done(f) ? outcome(f, result) : -EAGAIN;
}

const char *ursa_future_message(struct ursa_future *f)
{
	return ursa_future_done(f) && f->msg_ ? f->msg_ : "";
}

/* A thread that is not a task: block it on the state word. */
static int wait_thread(struct ursa_future *f, void **result)
{
	__atomic_fetch_add(&f->sleepers_, 1u, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&f->state_, __ATOMIC_SEQ_CST) == PENDING)
		syscall(SYS_futex, &f->state_, FUTEX_WAIT_PRIVATE, PENDING, NULL, NULL, 0);
	__atomic_fetch_sub(&f->sleepers_, 1u, __ATOMIC_RELAXED);
	settled(f);
	return outcome(f, result);
}

/* An unlocked peek for ursa__sched_spin. */
static bool is_done(void *arg)
{
	struct ursa_future *f = arg;

	return __atomic_load_n(&f->state_, __ATOMIC_RELAXED) != PENDING;
}

int ursa_future_wait(struct ursa_future *f, void **result)
{
	struct ursa_task *self;
	struct ursa__wait w;
	int rc;

	if (ursa_future_done(f))
		return outcome(f, result);
	self = ursa__sched_self();
	if (!self)
		return wait_thread(f, result);
	/* Set on another core, the outcome often comes sooner than a park and
	 * a wake would take: if our core has nothing else to do, watch for it
	 * first (the setter then has nobody to wake). */
	if (ursa__sched_spin(is_done, f) && ursa_future_done(f))
		return outcome(f, result);
	ursa__spin_lock(&f->lock_);
	if (f->state_ != PENDING) {
		ursa__spin_unlock(&f->lock_);
		return outcome(f, result);
	}
	rc = ursa__waitq_wait(self, &f->waiters_, &f->lock_, &w, NULL, NULL, NULL);
	if (rc)
		return rc;
	/* The release of DONE in ursa__waitq_wake follows the outcome's stores. */
	return outcome(f, result);
}

void ursa_future_on_done(struct ursa_future *f, struct ursa_future_cb *cb,
                         void (*fn)(struct ursa_future *f, void *arg), void *arg)
{
	cb->fn_ = fn;
	cb->arg_ = arg;
	ursa__spin_lock(&f->lock_);
	if (f->state_ == PENDING) {
		cb->next_ = f->cbs_;
		f->cbs_ = cb;
		ursa__spin_unlock(&f->lock_);
		return;
	}
	ursa__spin_unlock(&f->lock_);
	fn(f, arg);
}

/* --------------------------------------------------- run_in_executor */

struct submit {
	struct ursa_future *f;
	ursa_fn fn;
	void *arg;
};

static void *submit_main(void *arg)
{
	struct submit s = *(struct submit *)arg;
	void *result = NULL;
	int rc;

	free(arg);
	rc = ursa_blocking(s.fn, s.arg, &result);
	if (rc == 0)
		ursa_future_set_result(s.f, result);
	else if (rc == -ECANCELED)
		ursa_future_cancel(s.f);
	else
		ursa_future_set_error(s.f, rc, "the blocking pool could not run the job");
	return NULL;
}

int ursa_blocking_submit(struct ursa_future *f, ursa_fn fn, void *arg)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa_spawn_opts o = {.flags = URSA_SPAWN_DETACHED, .name = "blocking_submit"};
	struct submit *s;
	int rc;

	/* Whatever f held: it is initialised on every return, so the caller
	 * may ursa_future_fini it whatever this returns. */
	if (f)
		ursa_future_init(f);
	if (!self)
		return -EPERM;
	if (!f || !fn)
		return -EINVAL;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct submit){f, fn, arg};
	/* A small task parks in ursa_blocking and completes f: the pool's jobs
	 * live on a waiting task's stack, and this one is that task. */
	rc = ursa_spawn_ex(NULL, self->core->id, submit_main, s, &o);
	if (rc)
		free(s);
	return rc;
}
