/* SPDX-License-Identifier: MIT */
/*
 * task.c: spawning, joining, detaching, cancelling and ending tasks.
 *
 * A task has two references from birth: its handle (given up by join or
 * detach) and its run (given up when it ends).  Anyone else who must touch a
 * task that might end meanwhile holds a reference too (an ending task waking
 * a watcher; the waker of a waiter record needs none, lib/wait.h).  The
 * last reference frees the task on its owner core.
 *
 * join/end, on t->joiner, whose every change but DETACHED's is a
 * compare-and-swap:
 *   NONE --join--> <joiner's record> --end--> DONE, then ursa__wait_done
 *   NONE --end--> DONE --join: collect at once
 *   NONE --detach--> DETACHED --end: drop the handle
 * The ending task's swap to DONE claims the joiner's waiter record
 * (lib/wait.h) and completes it as any waker does.  A joiner never takes
 * its record back: cancelled, it cancels t and keeps waiting (join_pass_on),
 * so that every joining call releases t.  A watch (lib/watch.h: gather,
 * wait, groups) takes the joiner's place, and may withdraw (back to NONE);
 * the ending task that claims it pushes itself onto the watch's list.
 */
#include "task.h"

#include "fiber/switch.h"
#include "guard.h"
#include "scope.h"
#include "wait.h"
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
	struct ursa__core *here = ursa__sched_core;
	bool detached = opts && (opts->flags & URSA_SPAWN_DETACHED);
	size_t stack_size = opts ? opts->stack_size : 0;
	struct ursa__stack stack;
	struct ursa_task *t;
	void *rec;
	int rc;

	if (!fn || (!out && !detached))
		return -EINVAL;
	if (opts && (opts->flags & ~URSA_SPAWN_DETACHED))
		return -EINVAL; /* a bit this version does not know */
	/* The record lives at the top of its stack: one pop gives both.  The
	 * spawning core's cache supplies them; freed on another core, they go
	 * back to it lock-free (lib/fiber/stack.c). */
	rc = ursa__stack_get(&here->stacks, stack_size, core != here, &stack, &rec);
	if (rc < 0)
		return rc;
	t = rec; /* zeroed */
	t->stack = stack;
	t->magic = URSA__TASK_MAGIC;
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
	ursa__sched_start(t);
	return 0;
}

void ursa__task_ref(struct ursa_task *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void ursa__task_unref(struct ursa_task *t)
{
	struct ursa__core *here = ursa__sched_core;

	/* acq_rel: the freeing thread must see every other holder's writes. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Only the owner unlinks and frees. */
	if (here == t->core)
		ursa__task_free(here, t);
	else
		ursa__sched_release(t);
}

void ursa__task_free(struct ursa__core *c, struct ursa_task *t)
{
	struct ursa__stack stack = t->stack;

	if (t->linked)
		ursa__list_unlink(&t->all);
	free(t->error_msg);
	t->magic = URSA__TASK_FREED; /* a stale handle sees it until reuse */
	/* Last: the record is on this stack. */
	ursa__stack_put(&c->stacks, &stack);
}

/* The poison check of every call that takes a handle (issue 20.8): a handle
 * used after its release (joined twice, say) names freed memory, where the
 * magic is gone, until the memory is reused for something else.  One load
 * and compare; aborts in release builds too, since going on would read and
 * write freed memory. */
static void check_handle(const char *call, struct ursa_task *t)
{
	if (t && __builtin_expect(t->magic != URSA__TASK_MAGIC, 0)) {
		fprintf(stderr,
		        "ursa: %s: the handle is not a live task (joined or released already, "
		        "or never spawned)\n",
		        call);
		abort();
	}
}

static void kick_others(struct ursa__core *c)
{
	struct ursa__runtime *rt = c->rt;

	for (unsigned i = 0; i < rt->cfg.cores; i++)
		if (&rt->cores[i] != c)
			ursa__sched_kick(&rt->cores[i]);
}

void ursa__task_finish(struct ursa__core *c, struct ursa_task *t)
{
	struct ursa__runtime *rt = c->rt;
	void *j;

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
		struct ursa_task *waiter;
		struct ursa_watch_ *w;

		if (j == URSA__JOIN_DETACHED) {
			atomic_store_explicit(&t->joiner, URSA__JOIN_DONE, memory_order_release);
			ursa__task_unref(t); /* the handle */
			break;
		}
		/* Claim: a joiner or watcher can no longer withdraw, and a join
		 * that comes later collects at once. */
		if (!atomic_compare_exchange_weak_explicit(&t->joiner, &j, URSA__JOIN_DONE,
		                                           memory_order_acq_rel, memory_order_acquire))
			continue; /* someone came, withdrew or detached; j was reloaded */
		if (j == URSA__JOIN_NONE)
			break;
		w = ursa__watch_of(j);
		if (!w) {
			ursa__wait_done(j); /* the joiner's record */
			break;
		}
		/* A watch: its waiter may leave once t is on its list, so the
		 * wake that follows the push holds a reference (safe here: t still
		 * counts as live, so no core can stop and free the waiter). */
		waiter = w->waiter_;
		ursa__task_ref(waiter);
		ursa__watch_push(w, t); /* our last touch of the watch */
		ursa__sched_wake(waiter);
		ursa__task_unref(waiter);
		break;
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
	struct ursa__core *c = ursa__sched_core;

	return c && c->current ? c : NULL;
}

struct ursa__core *ursa__task_core(struct ursa__core *here, unsigned core)
{
	struct ursa__runtime *rt = here->rt;

	if (core == URSA_CORE_ANY) {
		core = here->spawn_cursor;
		here->spawn_cursor = core + 1 < rt->cfg.cores ? core + 1 : 0;
	}
	return core < rt->cfg.cores ? &rt->cores[core] : NULL;
}

int ursa_spawn_ex(struct ursa_task **t, unsigned core, ursa_fn fn, void *arg,
                  const struct ursa_spawn_opts *opts)
{
	struct ursa__core *c = core_of_call(), *target;

	if (!c)
		return -EPERM;
	target = ursa__task_core(c, core);
	if (!target)
		return -EINVAL;
	return ursa__task_spawn(c->rt, target, t, fn, arg, opts);
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

void ursa__task_outcome(const struct ursa_task *t, struct ursa_outcome *out)
{
	out->err = outcome_err(t);
	out->result = out->err ? NULL : t->result;
	snprintf(out->msg, sizeof(out->msg), "%s", t->error_msg ? t->error_msg : "");
}

/* A joiner's waiter record, the task it waits for, and what, if anything,
 * interrupted the joiner meanwhile. */
struct join_wait {
	struct ursa__wait w;
	struct ursa_task *t;
	int caller_rc;
};

/*
 * ursa__wait_for's withdraw, which never withdraws: the joiner's cancellation
 * or passed deadline is passed on to t, and the join goes on waiting (from
 * now on shielded: only t's end ends it), so that t can always be released.
 * asyncio's `await task` in a cancelled task does the same.
 */
static bool join_pass_on(void *ctx, int why)
{
	struct join_wait *jw = ctx;

	if (!jw->caller_rc) {
		jw->caller_rc = why;
		(void)ursa_cancel(jw->t); /* -ESRCH if it has just ended: fine */
	}
	return false;
}

/*
 * The wait of every joining call.  Misuse returns at once, before anything
 * is done: -EPERM (not in a task), -EINVAL (t NULL, detached, or joined or
 * watched by another call), -EDEADLK (t is the caller).  Otherwise it waits
 * until t has ended and returns 0, with *caller_rc saying what interrupted
 * the caller meanwhile: 0, or -ECANCELED / -ETIMEDOUT, in which case t was
 * cancelled in turn and awaited (join_pass_on).  With cancel_first
 * (ursa_cancel_and_join) t is cancelled as soon as it is known to be valid.
 * t has ended on a 0 return and the caller still holds its handle.
 */
static int join_wait(struct ursa_task *t, bool cancel_first, int *caller_rc)
{
	struct ursa__core *c = core_of_call();
	struct join_wait jw;
	struct ursa_task *self;
	void *j;

	*caller_rc = 0;
	if (!c)
		return -EPERM;
	self = c->current;
	if (!t)
		return -EINVAL;
	if (t == self)
		return -EDEADLK;
	j = atomic_load_explicit(&t->joiner, memory_order_acquire);
	if (j == URSA__JOIN_DONE)
		return 0; /* ended: a call that need not wait completes */
	if (j != URSA__JOIN_NONE)
		return -EINVAL; /* detached, or someone else is joining */
	ursa__wait_init(&jw.w, self);
	jw.w.reason = URSA__PARK_JOIN;
	jw.t = t;
	jw.caller_rc = 0;
	if (!atomic_compare_exchange_strong_explicit(&t->joiner, &j, &jw.w, memory_order_acq_rel,
	                                             memory_order_acquire))
		return j == URSA__JOIN_DONE ? 0 : -EINVAL;
	if (cancel_first)
		(void)ursa_cancel(t);
	/* 0 whatever happens: join_pass_on never withdraws the record, so only
	 * t's end, which claims it, ends the wait. */
	(void)ursa__wait_for(&jw.w, join_pass_on, &jw);
	*caller_rc = jw.caller_rc;
	return 0;
}

/* Misuse of ursa_join or ursa_cancel_and_join: no return value could report
 * it (every errno may be a task's outcome), so it is fatal, and says why. */
static _Noreturn void join_misuse(const char *call, struct ursa_task *t, int rc)
{
	const char *why = "the task is already being joined or watched by another call";

	if (rc == -EPERM) {
		fprintf(stderr, "ursa: %s: called outside a task\n", call);
		abort();
	}
	if (!t) {
		fprintf(stderr, "ursa: %s: the task handle is NULL\n", call);
		abort();
	}
	if (rc == -EDEADLK)
		why = "a task cannot join itself";
	else if (atomic_load_explicit(&t->joiner, memory_order_acquire) == URSA__JOIN_DETACHED)
		why = "the task was detached";
	fprintf(stderr, "ursa: %s: %s (task '%s')\n", call, why,
	        t->name[0] ? t->name : "(unnamed)");
	abort();
}

/* t has ended: its outcome as ursa_join returns it, and the handle released. */
static int collect(struct ursa_task *t, void **result)
{
	int rc = outcome_err(t);

	if (rc == 0 && result)
		*result = t->result;
	t->magic = URSA__TASK_FREED; /* the handle is gone, if not yet the record */
	ursa__task_unref(t); /* the handle */
	return rc;
}

int ursa_join(struct ursa_task *t, void **result)
{
	int caller_rc, rc;

	check_handle("ursa_join", t);
	rc = join_wait(t, false, &caller_rc);

	if (rc)
		join_misuse("ursa_join", t, rc);
	return collect(t, result);
}

int ursa_cancel_and_join(struct ursa_task *t, void **result)
{
	int caller_rc, rc;

	if (!t)
		return 0; /* cleanup of a task that was never spawned */
	check_handle("ursa_cancel_and_join", t);
	rc = join_wait(t, true, &caller_rc);
	if (rc)
		join_misuse("ursa_cancel_and_join", t, rc);
	return collect(t, result);
}

int ursa_join_outcome(struct ursa_task *t, struct ursa_outcome *out)
{
	int caller_rc, rc;

	check_handle("ursa_join_outcome", t);
	rc = join_wait(t, false, &caller_rc);

	if (rc)
		return rc; /* misuse: nothing done, t is still the caller's */
	if (out)
		ursa__task_outcome(t, out);
	t->magic = URSA__TASK_FREED; /* the handle is gone, if not yet the record */
	ursa__task_unref(t); /* the handle */
	return caller_rc;
}

void ursa_detach(struct ursa_task *t)
{
	if (!t)
		return;
	check_handle("ursa_detach", t);
	if (atomic_exchange_explicit(&t->joiner, URSA__JOIN_DETACHED, memory_order_acq_rel) ==
	    URSA__JOIN_DONE)
		ursa__task_unref(t); /* ended already: the handle was the last holder */
}

int ursa_cancel(struct ursa_task *t)
{
	if (!t)
		return -EINVAL;
	check_handle("ursa_cancel", t);
	if (atomic_load_explicit(&t->state, memory_order_acquire) == URSA__TASK_DONE)
		return -ESRCH;
	atomic_store_explicit(&t->cancel_requested, true, memory_order_release);
	/* Wake it wherever it is parked; its wait notices the request. */
	ursa__sched_wake(t);
	return 0;
}

void *ursa_task_fail(int err, const char *fmt, ...)
{
	struct ursa_task *self = ursa__sched_self();
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
		ursa__task_outcome(t, out);
	return 0;
}

void ursa_yield(void)
{
	if (core_of_call())
		ursa__sched_yield();
}

struct ursa_task *ursa_self(void)
{
	return ursa__sched_self();
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
	struct ursa__core *c = ursa__sched_core;

	return c ? c->id : 0;
}

unsigned ursa_ncores(void)
{
	struct ursa__core *c = ursa__sched_core;

	return c ? c->rt->cfg.cores : 0;
}
