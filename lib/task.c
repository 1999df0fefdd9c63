/* SPDX-License-Identifier: MIT */
/*
 * task.c: spawning, joining, detaching, cancelling and ending tasks.
 *
 * A task has two references from birth: its handle (given up by join or
 * detach) and its run (given up when it ends).  Anyone else who must touch a
 * task that might end meanwhile (a waker) holds a reference too.  The last
 * reference frees the task on its owner core.
 *
 * join/end handshake, on t->joiner:
 *   NONE --join--> <joiner> --end--> WAKING --(ref joiner, wake it)--> DONE
 *   NONE --end--> DONE --join: collect at once
 *   NONE --detach--> DETACHED --end: drop the handle
 * A joiner leaves only on DONE, so it is alive while the ending task wakes it.
 * A watch (lib/watch.h: gather, wait, groups) takes the joiner's place with
 * the same handshake; between WAKING and DONE the ending task also pushes
 * itself onto the watch's list of ended tasks.
 */
#include "task.h"

#include "fiber/switch.h"
#include "guard.h"
#include "scope.h"
#include "watch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void task_main(void *arg)
{
	struct ursa_task *t = arg;

	ursa__fiber_started();
	t->result = t->fn(t->arg);
	ursa__sched_exit();
}

int ursa__task_spawn(struct ursa__runtime *rt, struct ursa__core *core, struct ursa_task **out,
                     ursa_fn fn, void *arg, const struct ursa_spawn_opts *opts)
{
	struct ursa__core *here = ursa__tls_core;
	bool detached = opts && (opts->flags & URSA_SPAWN_DETACHED);
	size_t stack_size = opts ? opts->stack_size : 0;
	struct ursa__stack stack;
	struct ursa_task *t;
	void *rec;
	int rc;

	if (!fn || (!out && !detached))
		return -EINVAL;
	/* The record lives at the top of its stack: one pop gives both.  The
	 * spawning core's cache supplies them; freed on another core, they go
	 * back to it lock-free (lib/fiber/stack.c). */
	rc = ursa__stack_get(&here->stacks, stack_size, core != here, &stack, &rec);
	if (rc < 0)
		return rc;
	t = rec; /* zeroed */
	t->stack = stack;
	t->core = core;
	t->fn = fn;
	t->arg = arg;
	ursa__list_init(&t->link);
	ursa__list_init(&t->all);
	atomic_init(&t->state, URSA__TASK_QUEUED);
	atomic_init(&t->refs, 2);
	atomic_init(&t->joiner, detached ? URSA__JOIN_DETACHED : URSA__JOIN_NONE);
	atomic_init(&t->cancel_requested, false);
	if (opts && opts->name)
		ursa_task_set_name(t, opts->name);
	ursa__ctx_init(&t->ctx, ursa__stack_lo(&t->stack), t->stack.size, task_main, t);
	t->tsan_fiber = ursa__fiber_tsan_create();
	atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
	if (out)
		*out = detached ? NULL : t;
	ursa__task_enqueue_new(t);
	return 0;
}

void ursa__task_ref(struct ursa_task *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void ursa__task_unref(struct ursa_task *t)
{
	struct ursa__core *here = ursa__tls_core;

	/* acq_rel: the freeing thread must see every other holder's writes. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (here == t->core) {
		ursa__task_free(here, t);
		return;
	}
	/* Only the owner unlinks and frees.  After DONE, msg is free for this. */
	t->msg.kind = URSA__MSG_FREE;
	{
		struct ursa__core *c = t->core;
		struct ursa__msg *head = atomic_load_explicit(&c->inbox, memory_order_relaxed);

		do {
			t->msg.next = head;
		} while (!atomic_compare_exchange_weak_explicit(&c->inbox, &head, &t->msg,
		                                                memory_order_release,
		                                                memory_order_relaxed));
		if (!head)
			ursa__core_kick(c);
	}
}

void ursa__task_free(struct ursa__core *c, struct ursa_task *t)
{
	struct ursa__stack stack = t->stack;

	if (t->linked)
		ursa__list_unlink(&t->all);
	free(t->error_msg);
	/* Last: the record is on this stack. */
	ursa__stack_put(&c->stacks, &stack);
}

static void kick_others(struct ursa__core *c)
{
	struct ursa__runtime *rt = c->rt;

	for (unsigned i = 0; i < rt->cfg.cores; i++)
		if (&rt->cores[i] != c)
			ursa__core_kick(&rt->cores[i]);
}

void ursa__task_finish(struct ursa__core *c, struct ursa_task *t)
{
	struct ursa__runtime *rt = c->rt;
	struct ursa_task *j;

	/* The record sits above the stack's top: an overrun upwards is
	 * reported, not left to corrupt the scheduler's state. */
	if (!ursa__stack_top_intact(&t->stack))
		ursa__guard_top_overrun(c, t);
	/* Scopes left entered by a buggy task must not fire into a dead stack. */
	ursa__scope_abandon(t);
	ursa__fiber_tsan_destroy(t->tsan_fiber); /* we run on the scheduler's */
	t->tsan_fiber = NULL;
	t->ended_cancelled = atomic_load_explicit(&t->cancel_requested, memory_order_acquire);
	atomic_store_explicit(&t->state, URSA__TASK_DONE, memory_order_release);

	if (t == rt->main_task) {
		rt->main_result = t->result;
		atomic_store_explicit(&rt->stopping, true, memory_order_release);
		kick_others(c);
	}

	j = atomic_load_explicit(&t->joiner, memory_order_acquire);
	for (;;) {
		if (j == URSA__JOIN_NONE) {
			if (atomic_compare_exchange_weak_explicit(&t->joiner, &j, URSA__JOIN_DONE,
			                                          memory_order_acq_rel,
			                                          memory_order_acquire))
				break;
		} else if (j == URSA__JOIN_DETACHED) {
			atomic_store_explicit(&t->joiner, URSA__JOIN_DONE, memory_order_release);
			ursa__task_unref(t); /* the handle */
			break;
		} else {
			struct ursa_task *joiner = j;
			struct ursa_watch_ *w = ursa__watch_of(j);

			if (!atomic_compare_exchange_weak_explicit(&t->joiner, &j, URSA__JOIN_WAKING,
			                                           memory_order_acq_rel,
			                                           memory_order_acquire))
				continue; /* the joiner withdrew; j was reloaded */
			if (w)
				joiner = w->waiter_;
			ursa__task_ref(joiner); /* before the push: then the watcher may leave */
			if (w)
				ursa__watch_push(w, t);
			atomic_store_explicit(&t->joiner, URSA__JOIN_DONE, memory_order_release);
			ursa__task_wake(joiner);
			ursa__task_unref(joiner);
			break;
		}
	}
	ursa__task_unref(t); /* the run */

	/* Last: once live reaches zero during shutdown, cores may exit. */
	if (atomic_fetch_sub_explicit(&rt->live, 1, memory_order_acq_rel) == 1 &&
	    atomic_load_explicit(&rt->stopping, memory_order_acquire))
		kick_others(c);
}

/* ------------------------------------------------------------ public calls */

static struct ursa__core *core_of_call(void)
{
	struct ursa__core *c = ursa__tls_core;

	return c && c->current ? c : NULL;
}

int ursa_spawn_ex(struct ursa_task **t, unsigned core, ursa_fn fn, void *arg,
                  const struct ursa_spawn_opts *opts)
{
	struct ursa__core *c = core_of_call();

	if (!c)
		return -EPERM;
	if (core >= c->rt->cfg.cores)
		return -EINVAL;
	return ursa__task_spawn(c->rt, &c->rt->cores[core], t, fn, arg, opts);
}

int ursa_spawn(struct ursa_task **t, ursa_fn fn, void *arg)
{
	struct ursa__core *c = core_of_call();

	if (!c)
		return -EPERM;
	return ursa__task_spawn(c->rt, c, t, fn, arg, NULL);
}

int ursa_spawn_on(struct ursa_task **t, unsigned core, ursa_fn fn, void *arg)
{
	return ursa_spawn_ex(t, core, fn, arg, NULL);
}

/* How an ended task ended: 0, -ECANCELED, or the error it failed with.  A
 * failure wins over a cancellation; a return after a cancellation does not. */
static int outcome_err(const struct ursa_task *t)
{
	if (t->error)
		return t->error;
	return t->ended_cancelled ? -ECANCELED : 0;
}

static void fill_outcome(const struct ursa_task *t, struct ursa_outcome *out)
{
	out->err = outcome_err(t);
	out->result = out->err ? NULL : t->result;
	snprintf(out->msg, sizeof(out->msg), "%s", t->error_msg ? t->error_msg : "");
}

static int collect(struct ursa_task *t, void **result, struct ursa_outcome *out)
{
	int rc = outcome_err(t);

	if (out) {
		fill_outcome(t, out);
		rc = 0;
	} else if (rc == 0 && result) {
		*result = t->result;
	}
	ursa__task_unref(t); /* the handle */
	return rc;
}

/* ursa_join and ursa_join_outcome: with out, 0 means t was released. */
static int join(struct ursa_task *t, void **result, struct ursa_outcome *out)
{
	struct ursa__core *c = core_of_call();
	struct ursa_task *self, *j;
	int rc;

	if (!c)
		return -EPERM;
	self = c->current;
	if (!t)
		return -EINVAL;
	if (t == self)
		return -EDEADLK;
	j = atomic_load_explicit(&t->joiner, memory_order_acquire);
	if (j == URSA__JOIN_DONE)
		return collect(t, result, out);
	rc = ursa__cancel_check(self, NULL);
	if (rc)
		return rc;
	if (j != URSA__JOIN_NONE)
		return -EINVAL; /* detached, or someone else is joining */
	if (!atomic_compare_exchange_strong_explicit(&t->joiner, &j, self, memory_order_acq_rel,
	                                             memory_order_acquire))
		return j == URSA__JOIN_DONE ? collect(t, result, out) : -EINVAL;
	for (;;) {
		if (self->scope)
			ursa__scope_arm(self);
		ursa__sched_park();
		j = atomic_load_explicit(&t->joiner, memory_order_acquire);
		if (j == URSA__JOIN_DONE)
			return collect(t, result, out);
		if (j == URSA__JOIN_WAKING)
			continue;
		rc = ursa__cancel_check(self, NULL);
		if (rc) {
			/* Withdraw; if t ended meanwhile, its result wins. */
			if (atomic_compare_exchange_strong_explicit(&t->joiner, &j, URSA__JOIN_NONE,
			                                            memory_order_acq_rel,
			                                            memory_order_acquire))
				return rc;
			if (j == URSA__JOIN_DONE)
				return collect(t, result, out);
			/* WAKING: the wake is coming; wait for DONE. */
		}
	}
}

int ursa_join(struct ursa_task *t, void **result)
{
	return join(t, result, NULL);
}

int ursa_join_outcome(struct ursa_task *t, struct ursa_outcome *out)
{
	struct ursa_outcome scratch;

	return join(t, NULL, out ? out : &scratch);
}

void ursa_detach(struct ursa_task *t)
{
	if (!t)
		return;
	if (atomic_exchange_explicit(&t->joiner, URSA__JOIN_DETACHED, memory_order_acq_rel) ==
	    URSA__JOIN_DONE)
		ursa__task_unref(t); /* ended already: the handle was the last holder */
}

int ursa_cancel(struct ursa_task *t)
{
	if (!t)
		return -EINVAL;
	if (atomic_load_explicit(&t->state, memory_order_acquire) == URSA__TASK_DONE)
		return -ESRCH;
	atomic_store_explicit(&t->cancel_requested, true, memory_order_release);
	/* Wake it wherever it is parked; its wait notices the request. */
	ursa__task_wake(t);
	return 0;
}

void *ursa_task_fail(int err, const char *fmt, ...)
{
	struct ursa_task *self = ursa__self();
	char *msg = NULL;

	if (!self)
		return NULL;
	if (fmt) {
		va_list ap;

		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL; /* out of memory: the error without its message */
		va_end(ap);
	}
	free(self->error_msg);
	self->error_msg = msg;
	self->error = err < 0 ? err : -EINVAL;
	return NULL;
}

bool ursa_task_done(const struct ursa_task *t)
{
	return t && atomic_load_explicit(&t->state, memory_order_acquire) == URSA__TASK_DONE;
}

int ursa_task_outcome(const struct ursa_task *t, struct ursa_outcome *out)
{
	/* acquire: pairs with the release store of DONE in ursa__task_finish,
	 * after which the outcome fields never change. */
	if (!ursa_task_done(t))
		return t ? -EAGAIN : -EINVAL;
	if (out)
		fill_outcome(t, out);
	return 0;
}

void ursa_yield(void)
{
	if (core_of_call())
		ursa__sched_yield();
}

struct ursa_task *ursa_self(void)
{
	return ursa__self();
}

void ursa_task_set_name(struct ursa_task *t, const char *name)
{
	if (!t)
		return;
	snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
}

const char *ursa_task_name(const struct ursa_task *t)
{
	return t ? t->name : "";
}

unsigned ursa_core(void)
{
	struct ursa__core *c = ursa__tls_core;

	return c ? c->id : 0;
}

unsigned ursa_ncores(void)
{
	struct ursa__core *c = ursa__tls_core;

	return c ? c->rt->cfg.cores : 0;
}
