/* SPDX-License-Identifier: MIT */
/*
 * scope.c: deadline scopes, shielding, and the cancellation check that every
 * blocking call makes before it blocks and whenever it is woken.
 */
#include "scope.h"

#include "stall.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * A scope's timer: an IORING_OP_TIMEOUT whose CQE comes to timer_complete
 * (a call record, so the dispatcher in sched.c knows nothing of scopes).
 * Records are kept on their core's free list and reused.
 */
struct ursa__timer {
	struct ursa__call call;          /* first: the timeout's user_data */
	struct ursa__core *core;
	struct ursa_scope *scope;        /* NULL once orphaned by scope exit */
	struct ursa__timer *next_free;
	struct __kernel_timespec ts;     /* absolute, CLOCK_MONOTONIC */
};

static int check_and_arm(struct ursa_task *t, uint64_t *deadline, bool arm);
static void timer_complete(struct ursa__call *k, int res, unsigned flags);

int ursa__scope_check(struct ursa_task *t, uint64_t *deadline)
{
	int rc = check_and_arm(t, deadline, false);

	/* Only the refusal path pays: the fast path is the check alone. */
	if (__builtin_expect(rc != 0, 0))
		ursa__scope_refused(t);
	return rc;
}

int ursa__scope_check_locked(struct ursa_task *t, uint64_t *deadline)
{
	return check_and_arm(t, deadline, false);
}

int ursa__scope_arm(struct ursa_task *t)
{
	int rc = check_and_arm(t, NULL, true);

	if (__builtin_expect(rc != 0, 0))
		ursa__scope_refused(t);
	return rc;
}

void ursa__scope_refused(struct ursa_task *t)
{
	/* Only t touches its count: a plain, saturating increment. */
	if (t->refused < URSA__SCOPE_REFUSED_LIMIT) {
		if (++t->refused < URSA__SCOPE_REFUSED_LIMIT)
			return;
	}
	if (!t->refusal_reported) {
		t->refusal_reported = true;
		ursa__stall_refusals(t, URSA__SCOPE_REFUSED_LIMIT);
	}
	ursa__sched_yield(); /* the rest of the core runs, the canceller too */
}

static struct ursa__timer *timer_get(struct ursa__core *c)
{
	struct ursa__timer *tm = c->free_timers;

	if (tm) {
		c->free_timers = tm->next_free;
		return tm;
	}
	return malloc(sizeof(*tm));
}

static void arm_timer(struct ursa__core *c, struct ursa_scope *s)
{
	struct ursa__timer *tm = timer_get(c);
	struct io_uring_sqe *sqe;

	if (!tm)
		return; /* out of memory: the deadline is still checked at every wake */
	tm->call.fn = timer_complete;
	tm->core = c;
	tm->scope = s;
	tm->ts.tv_sec = (long long)(s->deadline_ns / 1000000000u);
	tm->ts.tv_nsec = (long long)(s->deadline_ns % 1000000000u);
	sqe = ursa__ring_sqe(&c->ring);
	io_uring_prep_timeout(sqe, &tm->ts, 0, IORING_TIMEOUT_ABS);
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(&tm->call, URSA__UD_CALL));
	c->pending++;
	s->timer_ = tm;
}

/*
 * Walk the scopes from the innermost out to the first shielded one: a passed
 * deadline wins (-ETIMEDOUT, and the scope is marked), then the task's own
 * cancellation if no shield stopped the walk.
 */
static int check_and_arm(struct ursa_task *t, uint64_t *deadline, bool arm)
{
	uint64_t now = 0, earliest = URSA_FOREVER;

	for (struct ursa_scope *s = t->scope; s; s = s->parent_) {
		/* acquire: pairs with the release in ursa_scope_cancel. */
		uint32_t st = __atomic_load_n(&s->state_, __ATOMIC_ACQUIRE);

		if (st & URSA__SCOPE_EXPIRED)
			return -ETIMEDOUT;
		if (st & URSA__SCOPE_CANCELLED)
			return -ECANCELED;
		if (s->deadline_ns != URSA_FOREVER) {
			if (!now)
				now = ursa_now();
			if (s->deadline_ns <= now) {
				/* No timer is armed for a deadline that has passed:
				 * when arming, the caller learns it here instead of
				 * parking with nothing to wake it (a recv on an idle
				 * socket waited forever when the two were separate
				 * steps; found by tests/fuzz_cancel.c). */
				__atomic_fetch_or(&s->state_, URSA__SCOPE_EXPIRED, __ATOMIC_RELAXED);
				return -ETIMEDOUT;
			}
			if (s->deadline_ns < earliest)
				earliest = s->deadline_ns;
			if (arm && !s->timer_)
				arm_timer(t->core, s);
		}
		if (s->flags & URSA_SCOPE_SHIELD) {
			if (deadline)
				*deadline = earliest;
			return 0;
		}
	}
	if (deadline)
		*deadline = earliest;
	if (atomic_load_explicit(&t->cancel_requested, memory_order_acquire))
		return -ECANCELED;
	return 0;
}

/* The timer's CQE (res -ETIME: it fired; -ECANCELED: it was removed). */
static void timer_complete(struct ursa__call *k, int res, unsigned flags)
{
	struct ursa__timer *tm = ursa__container_of(k, struct ursa__timer, call);
	struct ursa__core *c = tm->core;
	struct ursa_scope *s = tm->scope;

	(void)flags;
	c->pending--;
	if (s) {
		s->timer_ = NULL;
		/* -ETIME: the deadline passed.  Wake the task wherever it waits; the
		 * wait sees the expired scope and cancels its op. */
		if (res == -ETIME) {
			__atomic_fetch_or(&s->state_, URSA__SCOPE_EXPIRED, __ATOMIC_RELAXED);
			ursa__sched_wake(s->task_);
		}
	}
	tm->next_free = c->free_timers;
	c->free_timers = tm;
}

/* Remove s's timer, if armed; its CQE (-ECANCELED) frees the record later. */
static void disarm(struct ursa__core *c, struct ursa_scope *s)
{
	struct ursa__timer *tm = s->timer_;
	struct io_uring_sqe *sqe;

	if (!tm)
		return;
	tm->scope = NULL;
	s->timer_ = NULL;
	sqe = ursa__ring_sqe(&c->ring);
	io_uring_prep_timeout_remove(sqe, URSA__UD_MAKE(&tm->call, URSA__UD_CALL), 0);
	io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
}

void ursa__scope_abandon(struct ursa_task *t)
{
	for (struct ursa_scope *s = t->scope; s; s = s->parent_)
		disarm(t->core, s);
	t->scope = NULL;
}

void ursa__scope_fini(struct ursa__core *c)
{
	while (c->free_timers) {
		struct ursa__timer *tm = c->free_timers;

		c->free_timers = tm->next_free;
		free(tm);
	}
}

/* ------------------------------------------------------------ public calls */

static void enter(struct ursa_scope *s, uint64_t deadline, uint32_t flags)
{
	struct ursa_task *t = ursa__sched_self();

	s->deadline_ns = deadline;
	s->flags = flags;
	s->state_ = 0;
	s->timer_ = NULL;
	s->task_ = t;
	s->parent_ = t ? t->scope : NULL;
	if (t)
		t->scope = s;
}

void ursa_scope_enter(struct ursa_scope *s, uint64_t deadline)
{
	enter(s, deadline, 0);
}

void ursa_scope_enter_shielded(struct ursa_scope *s, uint64_t deadline)
{
	enter(s, deadline, URSA_SCOPE_SHIELD);
}

uint64_t ursa__scope_deadline_after(uint64_t timeout_ns)
{
	uint64_t now = ursa_now();

	/* A timeout too long to represent is no timeout, not a short one. */
	return timeout_ns >= URSA_FOREVER - now ? URSA_FOREVER : now + timeout_ns;
}

void ursa_scope_enter_after(struct ursa_scope *s, uint64_t timeout_ns)
{
	enter(s, ursa__scope_deadline_after(timeout_ns), 0);
}

void ursa_scope_enter_shielded_after(struct ursa_scope *s, uint64_t timeout_ns)
{
	enter(s, ursa__scope_deadline_after(timeout_ns), URSA_SCOPE_SHIELD);
}

int ursa_scope_exit(struct ursa_scope *s)
{
	struct ursa_task *t = s->task_;
	uint32_t st;

	if (!t)
		return -EPERM;
	if (t->scope != s) {
		/* Exiting out of order is a bug in the caller; fail loudly rather
		 * than leave a timer pointing into a dead frame. */
		fprintf(stderr, "ursa: ursa_scope_exit: scope %p is not the innermost\n", (void *)s);
		abort();
	}
	disarm(t->core, s);
	t->scope = s->parent_;
	st = __atomic_load_n(&s->state_, __ATOMIC_ACQUIRE);
	if (st & URSA__SCOPE_EXPIRED)
		return -ETIMEDOUT;
	if (st & URSA__SCOPE_CANCELLED)
		return -ECANCELED;
	if (!(s->flags & URSA_SCOPE_SHIELD) &&
	    atomic_load_explicit(&t->cancel_requested, memory_order_acquire))
		return -ECANCELED;
	return 0;
}

void ursa_scope_cancel(struct ursa_scope *s)
{
	if (!s || !s->task_)
		return;
	/* release: the owner's acquire load in check_and_arm or exit. */
	__atomic_fetch_or(&s->state_, URSA__SCOPE_CANCELLED, __ATOMIC_RELEASE);
	/* Wake it wherever it is parked; its wait sees the cancelled scope. */
	ursa__sched_wake(s->task_);
}
