/* SPDX-License-Identifier: MIT */
/*
 * group.c: task groups (asyncio.TaskGroup, Trio's nurseries).
 *
 * A group is a cancel scope around the owner's body, a watch (lib/watch.h)
 * registered in every child, and a list of child records under a spinlock
 * (children may spawn siblings from any core).  Only the owner takes ended
 * children off the watch and frees their records: at each of its spawns
 * (so a long-lived group does not pile them up) and in ursa_group_exit.
 *
 * Failure: a child that ends after ursa_task_fail cancels the body's scope
 * on its way out (its wrapper, child_main), which wakes the owner wherever it
 * waits; the owner, on taking the failed child off the watch, cancels every
 * other child.  The owner is the only one to walk the list for that.
 */
#include "scope.h"
#include "spin.h"
#include "task.h"
#include "wait.h"
#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* flags_ */
#define G_CANCELLING 0x1u /* children cancelled; no more spawns */
#define G_CANCELLED 0x2u  /* ursa_group_cancel was called */
#define G_FAILING 0x4u    /* a child failed: no more spawns */

struct child {
	struct child *prev, *next;
	struct ursa_task *t;     /* NULL until spawned */
	struct ursa_group *g;
	ursa_fn fn;
	void *arg;
};

void ursa_group_enter(struct ursa_group *g)
{
	memset(g, 0, sizeof(*g));
	g->owner_ = ursa__sched_self();
	g->watch_.waiter_ = g->owner_;
	ursa_scope_enter(&g->scope_, URSA_FOREVER);
}

static void *child_main(void *arg)
{
	struct child *c = arg;
	struct ursa_task *self = ursa__sched_self();
	void *r = c->fn(c->arg);

	/* The group outlives us: its exit waits for this task to end. */
	if (self->error && self->error != -ECANCELED) {
		ursa__spin_lock(&c->g->lock_);
		c->g->flags_ |= G_FAILING;
		ursa__spin_unlock(&c->g->lock_);
		ursa_scope_cancel(&c->g->scope_);
	}
	return r;
}

/* Under the lock. */
static void link_child(struct ursa_group *g, struct child *c)
{
	c->next = NULL;
	c->prev = g->tail_;
	if (g->tail_)
		((struct child *)g->tail_)->next = c;
	else
		g->head_ = c;
	g->tail_ = c;
	g->live_++;
}

/* Under the lock. */
static void unlink_child(struct ursa_group *g, struct child *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head_ = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->tail_ = c->prev;
	g->live_--;
}

/* Cancel every child and refuse new ones.  ursa_cancel does not wait (an
 * atomic store and a wake), so walking the list under the spinlock keeps
 * the lock for a bounded, non-waiting time. */
static void cancel_children(struct ursa_group *g, unsigned flags)
{
	ursa__spin_lock(&g->lock_);
	g->flags_ |= G_CANCELLING | flags;
	for (struct child *c = g->head_; c; c = c->next)
		if (c->t)
			(void)ursa_cancel(c->t);
	ursa__spin_unlock(&g->lock_);
}

/* The owner: take ended children off the watch, free their records and
 * release them, keeping the first that failed. */
static void collect(struct ursa_group *g)
{
	size_t k;
	struct ursa_task *t = ursa__watch_take(&g->watch_, &k);

	while (t) {
		struct ursa_task *next = t->ended_next;
		struct child *c = t->arg; /* child_main's argument */
		bool failed = t->error && t->error != -ECANCELED;

		ursa__spin_lock(&g->lock_);
		unlink_child(g, c);
		ursa__spin_unlock(&g->lock_);
		free(c);
		if (failed)
			g->nfailed_++;
		if (failed && !g->failed_) {
			g->failed_ = t; /* its handle is released at exit */
			ursa_scope_cancel(&g->scope_);
			cancel_children(g, 0);
		} else {
			ursa__task_unref(t); /* the handle */
		}
		t = next;
	}
}

int ursa_group_spawn_ex(struct ursa_group *g, unsigned core, ursa_fn fn, void *arg,
                        const struct ursa_spawn_opts *opts)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa_spawn_opts o = {0};
	struct ursa__core *target;
	struct ursa_task *t;
	struct child *c;
	bool cancel_now;
	int rc;

	if (!self)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	if (opts)
		o = *opts;
	/* URSA_SPAWN_DETACHED contradicts the group's ownership of its
	 * children; no other bit is defined. */
	if (o.flags)
		return -EINVAL;
	target = ursa__task_core(self->core, core);
	if (!target)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->g = g;
	c->fn = fn;
	c->arg = arg;
	ursa__spin_lock(&g->lock_);
	if (g->flags_ & (G_CANCELLING | G_FAILING)) {
		ursa__spin_unlock(&g->lock_);
		free(c);
		return -ECANCELED;
	}
	link_child(g, c); /* counted before it can end */
	ursa__spin_unlock(&g->lock_);

	rc = ursa__task_spawn(self->core->rt, target, &t, child_main, c, &o);
	if (rc) {
		ursa__spin_lock(&g->lock_);
		unlink_child(g, c);
		ursa__spin_unlock(&g->lock_);
		free(c);
		return rc;
	}
	ursa__spin_lock(&g->lock_);
	c->t = t;
	cancel_now = g->flags_ & G_CANCELLING; /* a walk that missed it */
	ursa__spin_unlock(&g->lock_);
	if (cancel_now)
		(void)ursa_cancel(t);
	if (ursa__watch_add(&g->watch_, t) == 1) {
		/* It ended already (another core ran it): hand it to the owner
		 * ourselves.  The owner is alive: it cannot leave the group
		 * while this child is counted. */
		ursa__watch_push(&g->watch_, t);
		if (self != g->owner_)
			ursa__sched_wake(g->owner_);
	}
	if (self == g->owner_)
		collect(g);
	return 0;
}

int ursa_group_spawn(struct ursa_group *g, ursa_fn fn, void *arg)
{
	struct ursa_task *self = ursa__sched_self();

	if (!self)
		return -EPERM;
	return ursa_group_spawn_ex(g, self->core->id, fn, arg, NULL);
}

int ursa_group_spawn_on(struct ursa_group *g, unsigned core, ursa_fn fn, void *arg)
{
	return ursa_group_spawn_ex(g, core, fn, arg, NULL);
}

void ursa_group_cancel(struct ursa_group *g)
{
	ursa_scope_cancel(&g->scope_);
	cancel_children(g, G_CANCELLED);
}

int ursa_group_exit(struct ursa_group *g, struct ursa_outcome *first)
{
	struct ursa_task *self = ursa__sched_self();
	int body_rc, rc = 0;

	if (!self || self != g->owner_)
		return -EPERM;
	/* -ECANCELED if the scope was cancelled (a failure, ursa_group_cancel)
	 * or the owner itself is cancelled. */
	body_rc = ursa_scope_exit(&g->scope_);
	for (;;) {
		bool cancelling;
		size_t live;

		collect(g);
		ursa__spin_lock(&g->lock_);
		live = g->live_;
		cancelling = g->flags_ & G_CANCELLING;
		ursa__spin_unlock(&g->lock_);
		if (!live)
			break;
		if (cancelling)
			ursa__sched_park();
		else if ((rc = ursa__wait_park(self)))
			cancel_children(g, 0); /* and keep waiting for them */
	}
	if (g->failed_) {
		/* A failure is the most useful report: it wins over a
		 * cancellation of the group.  A child's error is only ever in
		 * *first, never the return value. */
		if (first)
			ursa__task_outcome(g->failed_, first);
		ursa__task_unref(g->failed_);
		g->failed_ = NULL;
		return g->nfailed_ > INT_MAX ? INT_MAX : (int)g->nfailed_;
	}
	if (first)
		memset(first, 0, sizeof(*first)); /* no failure to report */
	if (!rc)
		rc = body_rc;
	if (!rc && (g->flags_ & G_CANCELLED)) /* no child left to race us */
		rc = -ECANCELED;
	return rc;
}
