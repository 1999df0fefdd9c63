/* SPDX-License-Identifier: MIT */
/*
 * waitq.c: the grant / withdraw protocol every waiting primitive uses.
 *
 * A waiter queues a node (under the primitive's spinlock) and parks.  Its
 * wait record moves through
 *
 *   WAITING --granter, under the lock--> CLAIMED --granter, after--> DONE
 *      \
 *       +--waiter (cancel, deadline, select done elsewhere)--> WITHDRAWN
 *
 * and the WAITING exit is a compare-and-swap, so exactly one side wins:
 *
 *   - Granter: under the lock it unlinks the node and claims the wait
 *     (WAITING -> CLAIMED); a claimed waiter cannot leave, so the granter may
 *     still write the verdict into the record.  After dropping the lock it
 *     takes a reference on the waiter's task, stores DONE (release: publishes
 *     the verdict) and wakes the task.  DONE is the last touch of the record;
 *     from then on the granter touches only the task, which its reference
 *     keeps alive even if the waiter returns, ends and is released at once.
 *     (On the waiter's own core no reference is needed: the waiter cannot run
 *     until the granter, a task of that core, parks.)  The join handshake in
 *     lib/task.c (WAKING) and the pool's FINISHING solve the same problem.
 *   - Waiter: it leaves on DONE.  It parks again on CLAIMED (the one wake
 *     comes after DONE, so parking cannot miss it).  On WAITING it checks
 *     for cancellation and deadlines; to give up it takes the lock and swaps
 *     WAITING -> WITHDRAWN; if that fails, a granter got there first and the
 *     grant wins.
 *
 * A select waits with several nodes in several queues sharing one record:
 * the first granter to claim it wins and the other queues' granters skip its
 * nodes (leaving them unlinked); the waiter unlinks what is left, under each
 * queue's lock, before it returns.  Since a node leaves its queue only under
 * that queue's lock, a granter holding the lock always sees a live record.
 */
#include "waitq.h"

#include "scope.h"

#include <errno.h>

void ursa__waitq_push(struct ursa_waitq_ *q, struct ursa__wnode *n)
{
	n->next = NULL;
	n->prev = q->tail_;
	if (q->tail_)
		q->tail_->next = n;
	else
		q->head_ = n;
	q->tail_ = n;
	n->linked = true;
}

void ursa__waitq_unlink(struct ursa_waitq_ *q, struct ursa__wnode *n)
{
	if (!n->linked)
		return;
	if (n->prev)
		n->prev->next = n->next;
	else
		q->head_ = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->tail_ = n->prev;
	n->prev = n->next = NULL;
	n->linked = false;
}

struct ursa__wnode *ursa__waitq_claim(struct ursa_waitq_ *q)
{
	struct ursa__wnode *n;

	while ((n = q->head_)) {
		int s = URSA__WAIT_WAITING;

		ursa__waitq_unlink(q, n);
		/* Arbitrates against the waiter's withdraw and other queues'
		 * granters; the lock already orders the node's fields. */
		if (atomic_compare_exchange_strong_explicit(&n->w->state, &s, URSA__WAIT_CLAIMED,
		                                            memory_order_acq_rel,
		                                            memory_order_acquire))
			return n;
		/* A select's node whose wait is already claimed or withdrawn: its
		 * owner unlinks the rest and finds this one gone. */
	}
	return NULL;
}

void ursa__wakes_add(struct ursa__wakes *ws, struct ursa__wnode *n, int rc, void *value)
{
	struct ursa__wait *w = n->w;

	w->rc = rc;
	w->value = value;
	w->which = n->index;
	w->wake_next = NULL;
	if (ws->tail)
		ws->tail->wake_next = w;
	else
		ws->head = w;
	ws->tail = w;
	ws->n++;
}

void ursa__wakes_run(struct ursa__wakes *ws)
{
	struct ursa__core *here = ursa__tls_core;
	struct ursa__wait *w = ws->head;

	while (w) {
		/* Read everything we need before DONE: after it, w may be gone. */
		struct ursa__wait *next = w->wake_next;
		struct ursa_task *t = w->task;
		bool remote = here != t->core;

		if (remote)
			ursa__task_ref(t);
		/* release: the waiter's acquire load of DONE sees the verdict. */
		atomic_store_explicit(&w->state, URSA__WAIT_DONE, memory_order_release);
		ursa__task_wake(t);
		if (remote)
			ursa__task_unref(t);
		w = next;
	}
	ws->head = ws->tail = NULL;
	ws->n = 0;
}

void ursa__wait_unlink_all(struct ursa__wnode *nodes, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct ursa__wnode *x = &nodes[i];

		ursa__spin_lock(x->lock);
		ursa__waitq_unlink(x->q, x);
		ursa__spin_unlock(x->lock);
	}
}

/* Give up the wait unless it has been claimed: true if withdrawn. */
static bool withdraw(struct ursa__wait *w, struct ursa__wnode *nodes, unsigned n,
                     void (*on_withdraw)(void *ctx), void *ctx)
{
	int s = URSA__WAIT_WAITING;

	ursa__spin_lock(nodes[0].lock);
	if (!atomic_compare_exchange_strong_explicit(&w->state, &s, URSA__WAIT_WITHDRAWN,
	                                             memory_order_acq_rel, memory_order_acquire)) {
		ursa__spin_unlock(nodes[0].lock);
		return false;
	}
	ursa__waitq_unlink(nodes[0].q, &nodes[0]);
	if (on_withdraw)
		on_withdraw(ctx);
	ursa__spin_unlock(nodes[0].lock);
	ursa__wait_unlink_all(nodes + 1, n - 1);
	return true;
}

int ursa__wait_block(struct ursa_task *self, struct ursa__wait *w, struct ursa__wnode *nodes,
                     unsigned n, void (*on_withdraw)(void *ctx), void *ctx)
{
	for (;;) {
		/* acquire: pairs with the release store of DONE in wakes_run. */
		int s = atomic_load_explicit(&w->state, memory_order_acquire);

		if (s == URSA__WAIT_DONE)
			break;
		if (s == URSA__WAIT_WAITING) {
			int rc = ursa__cancel_check(self, NULL);

			if (rc) {
				if (withdraw(w, nodes, n, on_withdraw, ctx))
					return rc;
				continue; /* claimed meanwhile: the grant wins */
			}
			if (self->scope)
				ursa__scope_arm(self);
		}
		/* WAITING or CLAIMED: the wake comes after DONE, so it cannot be
		 * missed; a spurious return just goes round again. */
		ursa__sched_park();
	}
	if (n > 1) /* a select: its other nodes may still be queued */
		ursa__wait_unlink_all(nodes, n);
	return 0;
}

int ursa__waitq_wait(struct ursa_task *self, struct ursa_waitq_ *q, unsigned *lock,
                     struct ursa__wait *w, void *item, void (*on_withdraw)(void *ctx), void *ctx)
{
	struct ursa__wnode n;
	int rc = ursa__cancel_check_locked(self, NULL); /* lock held: no yield */

	if (rc) {
		if (on_withdraw)
			on_withdraw(ctx);
		ursa__spin_unlock(lock);
		ursa__cancel_refused(self);
		return rc;
	}
	ursa__wait_init(w, self);
	ursa__wnode_init(&n, w, q, lock, 0);
	n.item = item;
	ursa__waitq_push(q, &n);
	ursa__spin_unlock(lock);
	return ursa__wait_block(self, w, &n, 1, on_withdraw, ctx);
}
