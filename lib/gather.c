/* SPDX-License-Identifier: MIT */
/*
 * gather.c: waiting for many tasks at once: ursa_gather, ursa_wait[_until],
 * ursa_as_completed_*, and ursa_wait_for.  All of them register one watch
 * (lib/watch.h) in every task, so each task's end costs one push and one
 * wake, and the waiter learns which tasks ended in the order they ended,
 * however many it waits for.
 */
#include "scope.h"
#include "task.h"
#include "wait.h"
#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Ended tasks, oldest first, chained through ended_next. */
struct chain {
	struct ursa_task *head, *tail;
};

static void chain_append(struct chain *c, struct ursa_task *list)
{
	if (!list)
		return;
	if (c->tail)
		c->tail->ended_next = list;
	else
		c->head = list;
	while (list->ended_next)
		list = list->ended_next;
	c->tail = list;
}

static struct ursa_task *chain_pop(struct chain *c)
{
	struct ursa_task *t = c->head;

	if (t) {
		c->head = t->ended_next;
		if (!c->head)
			c->tail = NULL;
	}
	return t;
}

/* Take what the watch holds onto c; returns how many tasks that was. */
static size_t take_into(struct ursa_watch_ *w, struct chain *c)
{
	size_t k;

	chain_append(c, ursa__watch_take(w, &k));
	return k;
}

/* Wait, whatever happens, until `owed` more tasks have come off the watch
 * (tasks that were ending when their watch was withdrawn); onto c. */
static void settle(struct ursa_watch_ *w, struct chain *c, size_t owed)
{
	for (;;) {
		size_t k = take_into(w, c);

		owed -= k < owed ? k : owed;
		if (!owed)
			return;
		ursa__sched_park();
	}
}

static void unwatch(struct ursa_watch_ *w, struct ursa_task *const *tasks, size_t n,
                    size_t registered)
{
	struct chain scratch = {NULL, NULL};
	size_t withdrawn = 0;

	for (size_t i = 0; i < n; i++)
		if (ursa__watch_remove(w, tasks[i]))
			withdrawn++;
	settle(w, &scratch, registered - withdrawn);
}

/*
 * Register w in tasks[0..n) and number them (watch_slot).  Tasks that have
 * already ended go onto c, in index order.  Returns 0 and *registered, or
 * -EINVAL with nothing registered (a NULL or repeated task, or one that is
 * detached, joined or watched).
 */
static int watch_all(struct ursa_watch_ *w, struct ursa_task *const *tasks, size_t n,
                     size_t *registered, struct chain *c)
{
	*registered = 0;
	if (n && !tasks)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!tasks[i])
			return -EINVAL;
		tasks[i]->watch_slot = SIZE_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		if (tasks[i]->watch_slot != SIZE_MAX)
			return -EINVAL; /* the same task twice */
		tasks[i]->watch_slot = i;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = ursa__watch_add(w, tasks[i]);

		if (rc == 0) {
			(*registered)++;
		} else if (rc == 1) {
			/* Ended before we looked: nobody else uses ended_next now. */
			tasks[i]->ended_next = NULL;
			chain_append(c, tasks[i]);
		} else {
			unwatch(w, tasks, i, *registered);
			*registered = 0;
			c->head = c->tail = NULL;
			return -EINVAL;
		}
	}
	return 0;
}

static void cancel_all(struct ursa_task *const *tasks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		(void)ursa_cancel(tasks[i]); /* -ESRCH for those that ended: fine */
}

/* ----------------------------------------------------------------- gather */

int ursa_gather(struct ursa_task *const *tasks, size_t n, uint32_t flags,
                struct ursa_outcome *out)
{
	struct ursa_task *self = ursa__sched_self();
	struct chain ready = {NULL, NULL};
	struct ursa_watch_ w = {self, NULL};
	bool all = flags & URSA_GATHER_ALL, cancelling = false;
	size_t registered, seen = 0, failed = 0;
	int caller_rc = 0, rc;

	if (!self)
		return -EPERM;
	if ((flags & ~URSA_GATHER_ALL) || n > INT_MAX)
		return -EINVAL; /* an unknown bit; a count the return cannot hold */
	rc = watch_all(&w, tasks, n, &registered, &ready);
	if (rc)
		return rc;
	for (;;) {
		struct ursa_task *t;

		while ((t = chain_pop(&ready))) {
			struct ursa_outcome scratch, *o = out ? &out[t->watch_slot] : &scratch;

			ursa__task_outcome(t, o);
			seen++;
			if (o->err) {
				failed++;
				if (!all && !cancelling) {
					cancel_all(tasks, n);
					cancelling = true;
				}
			}
		}
		if (seen == n)
			break;
		if (!cancelling) {
			rc = ursa__scope_check(self, NULL);
			if (rc) {
				/* Cancelling gather cancels what it waits for; it still
				 * waits, so that it can release every task. */
				caller_rc = rc;
				cancel_all(tasks, n);
				cancelling = true;
			}
		}
		if (take_into(&w, &ready))
			continue;
		if (cancelling)
			ursa__sched_park();
		else
			(void)ursa__wait_park(self); /* an error: the check above, next round */
	}
	for (size_t i = 0; i < n; i++)
		ursa__task_unref(tasks[i]); /* the handles: every task has ended */
	/* One meaning whatever the flags: what ended the wait, if the caller's
	 * cancellation or deadline did, else how many tasks did not return
	 * normally.  A task's own error is only ever in out[]. */
	return caller_rc ? caller_rc : (int)failed;
}

/* ------------------------------------------------------------------- wait */

int ursa_wait_until(struct ursa_task *const *tasks, size_t n, int return_when,
                    uint64_t deadline, bool *done)
{
	struct ursa_task *self = ursa__sched_self();
	struct chain ready = {NULL, NULL};
	struct ursa_watch_ w = {self, NULL};
	size_t registered, taken = 0, ended = 0, withdrawn = 0, k;
	bool failed = false;
	struct ursa_scope s;
	int rc, scope_rc;

	if (!self)
		return -EPERM;
	if (return_when < URSA_WAIT_FIRST_COMPLETED || return_when > URSA_WAIT_ALL_COMPLETED ||
	    n > INT_MAX)
		return -EINVAL;
	rc = watch_all(&w, tasks, n, &registered, &ready);
	if (rc)
		return rc;
	if (done)
		memset(done, 0, n * sizeof(*done));
	ursa_scope_enter(&s, deadline);
	for (;;) {
		struct ursa_task *t;

		while ((t = chain_pop(&ready))) {
			if (done)
				done[t->watch_slot] = true;
			ended++;
			if (t->error && t->error != -ECANCELED)
				failed = true;
		}
		if (ended == n || (return_when == URSA_WAIT_FIRST_COMPLETED && ended) ||
		    (return_when == URSA_WAIT_FIRST_EXCEPTION && failed))
			break;
		k = take_into(&w, &ready);
		if (k) {
			taken += k;
			continue;
		}
		rc = ursa__wait_park(self);
		if (rc)
			break;
	}
	/* Withdraw from the tasks still running; one that is ending right now
	 * will still be pushed, and counts as done. */
	for (size_t i = 0; i < n; i++)
		if (ursa__watch_remove(&w, tasks[i]))
			withdrawn++;
	settle(&w, &ready, registered - taken - withdrawn);
	for (struct ursa_task *t; (t = chain_pop(&ready));) {
		if (done)
			done[t->watch_slot] = true;
		ended++;
	}
	scope_rc = ursa_scope_exit(&s);
	/* Our own deadline passing is the normal "timeout" of asyncio.wait. */
	if (rc == -ETIMEDOUT && scope_rc == -ETIMEDOUT)
		rc = 0;
	return rc ? rc : (int)ended;
}

int ursa_wait(struct ursa_task *const *tasks, size_t n, int return_when, uint64_t timeout_ns,
              bool *done)
{
	return ursa_wait_until(tasks, n, return_when, ursa__scope_deadline_after(timeout_ns), done);
}

/* --------------------------------------------------------------- wait_for */

int ursa_wait_for(struct ursa_task *t, uint64_t timeout_ns, struct ursa_outcome *out)
{
	struct ursa_scope s;
	int rc;

	if (!ursa__sched_self())
		return -EPERM;
	/* The timeout is a scope around a join: the join passes the scope's
	 * expiry (or the caller's cancellation) on to t, waits for it and
	 * releases it, and its status says which ended the wait. */
	ursa_scope_enter_after(&s, timeout_ns);
	rc = ursa_join_outcome(t, out);
	(void)ursa_scope_exit(&s);
	return rc;
}

/* ----------------------------------------------------------- as_completed */

int ursa_as_completed_init(struct ursa_as_completed *ac, struct ursa_task *const *tasks,
                           size_t n)
{
	struct ursa_task *self = ursa__sched_self();
	struct chain c = {NULL, NULL};
	int rc;

	memset(ac, 0, sizeof(*ac));
	if (!self)
		return -EPERM;
	if (n > INT_MAX)
		return -EINVAL; /* _next returns an index as an int */
	/* fini must know which tasks are still watched without touching the
	 * others: the caller may have released them since. */
	ac->taken_ = calloc(n ? n : 1, 1);
	if (!ac->taken_)
		return -ENOMEM;
	ac->watch_.waiter_ = self;
	ac->tasks_ = tasks;
	ac->n_ = n;
	rc = watch_all(&ac->watch_, tasks, n, &ac->left_, &c);
	if (rc) {
		free(ac->taken_);
		ac->taken_ = NULL;
		ac->n_ = 0;
		return rc;
	}
	for (struct ursa_task *t = c.head; t; t = t->ended_next)
		ac->taken_[t->watch_slot] = 1;
	ac->ready_head_ = c.head;
	ac->ready_tail_ = c.tail;
	return 0;
}

int ursa_as_completed_next(struct ursa_as_completed *ac)
{
	struct ursa_task *self = ursa__sched_self();
	struct chain c = {ac->ready_head_, ac->ready_tail_};
	int rc;

	if (!self)
		return -EPERM;
	for (;;) {
		struct ursa_task *t, *last = c.tail;
		size_t k = take_into(&ac->watch_, &c);

		ac->left_ -= k;
		for (t = last ? last->ended_next : c.head; k && t; t = t->ended_next)
			ac->taken_[t->watch_slot] = 1;
		t = chain_pop(&c);
		if (t) {
			rc = (int)t->watch_slot;
			break;
		}
		if (!ac->left_) {
			rc = -EPIPE; /* end of stream */
			break;
		}
		rc = ursa__wait_park(self);
		if (rc)
			break;
	}
	ac->ready_head_ = c.head;
	ac->ready_tail_ = c.tail;
	return rc;
}

void ursa_as_completed_fini(struct ursa_as_completed *ac)
{
	size_t withdrawn = 0;
	struct chain scratch = {NULL, NULL};

	if (!ac->n_ || !ac->left_)
		goto out;
	for (size_t i = 0; i < ac->n_; i++)
		if (!ac->taken_[i] && ursa__watch_remove(&ac->watch_, ac->tasks_[i]))
			withdrawn++;
	settle(&ac->watch_, &scratch, ac->left_ - withdrawn);
out:
	free(ac->taken_);
	ac->taken_ = NULL;
	ac->left_ = 0;
	ac->n_ = 0;
	ac->ready_head_ = ac->ready_tail_ = NULL;
}
