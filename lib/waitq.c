/* SPDX-License-Identifier: MIT */
/*
 * waitq.c: the grant / withdraw protocol every waiting primitive uses.
 *
 * A waiter queues a node (under the primitive's spinlock) and parks.  Its
 * waiter record (lib/wait.h) moves through
 *
 *   WAITING --granter, under the lock--> CLAIMED --granter, after--> WAKING, DONE
 *      \
 *       +--waiter (cancel, deadline, select done elsewhere)--> WITHDRAWN
 *
 * and the WAITING exit is a compare-and-swap, so exactly one side wins:
 *
 *   - Granter: under the lock it unlinks the node and claims the wait
 *     (WAITING -> CLAIMED); a claimed waiter cannot leave, so the granter may
 *     still write the verdict into the record.  After dropping the lock it
 *     completes the record (ursa__wait_done: WAKING, wake, DONE); DONE is its
 *     last touch of the record and of the task.
 *   - Waiter (ursa__wait_for): it leaves on DONE.  On WAITING it checks for
 *     cancellation and deadlines; to give up it takes the lock and swaps
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
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void ursa__waitq_push(struct ursa_waitq_ *q, struct ursa__wnode *n)
{
	/* From the first wait on, the object is known live (waitq.h). */
	__atomic_store_n(&q->magic_, URSA__WAITQ_LIVE, __ATOMIC_RELAXED);
	n->next = NULL;
	n->prev = q->tail_;
	if (q->tail_)
		q->tail_->next = n;
	else
		q->head_ = n;
	q->tail_ = n;
	n->linked = true;
}

void ursa__waitq_push_front(struct ursa_waitq_ *q, struct ursa__wnode *n)
{
	n->prev = NULL;
	n->next = q->head_;
	if (q->head_)
		q->head_->prev = n;
	else
		q->tail_ = n;
	q->head_ = n;
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
		ursa__waitq_unlink(q, n);
		/* Arbitrates against the waiter's withdraw and other queues'
		 * granters; the lock already orders the node's fields. */
		if (ursa__wait_claim(n->w))
			return n;
		/* A select's node whose wait is already claimed or withdrawn: its
		 * owner unlinks the rest and finds this one gone. */
	}
	return NULL;
}

void ursa__waitq_grant(struct ursa__wakes *ws, struct ursa__wnode *n, int rc, void *value)
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

void ursa__waitq_wake(struct ursa__wakes *ws)
{
	struct ursa__wait *w = ws->head;

	while (w) {
		/* Read before completing it: after DONE, w may be gone. */
		struct ursa__wait *next = w->wake_next;

		ursa__wait_done(w);
		w = next;
	}
	ws->head = ws->tail = NULL;
	ws->n = 0;
}

void ursa__waitq_unlink_all(struct ursa__wnode *nodes, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct ursa__wnode *x = &nodes[i];

		ursa__spin_lock(x->lock);
		ursa__waitq_unlink(x->q, x);
		ursa__spin_unlock(x->lock);
	}
}

/* What ursa__wait_for needs to give a queued wait up. */
struct withdrawal {
	struct ursa__wait *w;
	struct ursa__wnode *nodes;
	unsigned n;
	void (*on_withdraw)(void *ctx);
	void *ctx;
};

void ursa__spin_too_long(const unsigned *l, unsigned long long *since)
{
	struct timespec ts;
	unsigned long long now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
	if (!*since) {
		*since = now;
		return;
	}
	if (now - *since < 10000000000ull)
		return;
	fprintf(stderr,
	        "ursa: a primitive's spinlock at %p has looked held for 10 s: the mutex, "
	        "event, semaphore, condition, queue or future around it was freed or "
	        "overwritten while in use, or never initialised (value %#x)\n",
	        (const void *)l, __atomic_load_n(l, __ATOMIC_RELAXED));
	abort();
}

void ursa__waitq_poisoned(const char *call, const char *what, const void *obj, unsigned magic)
{
	fprintf(stderr,
	        "ursa: %s: the %s at %p is not an initialised %s (%s; magic %#x): it was never "
	        "initialised, or was freed or overwritten while in use\n",
	        call, what, obj, what, magic == URSA__WAITQ_DEAD ? "destroyed" : "garbage", magic);
	abort();
}

/* Give up the wait unless it has been claimed: true if withdrawn. */
static bool withdraw(void *arg, int why)
{
	struct withdrawal *x = arg;
	int s = URSA__WAIT_WAITING;
	struct ursa_task *self = x->w->task;

	(void)why;
	/* The object we wait on was freed or overwritten while we waited (its
	 * spinlock may now look held for ever): say so instead of spinning. */
	if (__atomic_load_n(&x->nodes[0].q->magic_, __ATOMIC_RELAXED) != URSA__WAITQ_LIVE) {
		fprintf(stderr,
		        "ursa: task '%s': the object it waits on (at %p) was destroyed, freed or "
		        "overwritten while the task waited on it\n",
		        self->name[0] ? self->name : "(unnamed)", (void *)x->nodes[0].q);
		abort();
	}
	ursa__spin_lock(x->nodes[0].lock);
	if (!atomic_compare_exchange_strong_explicit(&x->w->state, &s, URSA__WAIT_WITHDRAWN,
	                                             memory_order_acq_rel, memory_order_acquire)) {
		ursa__spin_unlock(x->nodes[0].lock);
		return false;
	}
	ursa__waitq_unlink(x->nodes[0].q, &x->nodes[0]);
	if (x->on_withdraw)
		x->on_withdraw(x->ctx);
	ursa__spin_unlock(x->nodes[0].lock);
	ursa__waitq_unlink_all(x->nodes + 1, x->n - 1);
	return true;
}

int ursa__waitq_block(struct ursa__wait *w, struct ursa__wnode *nodes, unsigned n,
                      void (*on_withdraw)(void *ctx), void *ctx)
{
	struct withdrawal x = {w, nodes, n, on_withdraw, ctx};
	int rc = ursa__wait_for(w, withdraw, &x);

	if (rc)
		return rc;
	if (n > 1) /* a select: its other nodes may still be queued */
		ursa__waitq_unlink_all(nodes, n);
	return 0;
}

int ursa__waitq_wait(struct ursa_task *self, struct ursa_waitq_ *q, unsigned *lock,
                     struct ursa__wait *w, void *item, void (*on_withdraw)(void *ctx), void *ctx)
{
	struct ursa__wnode n;
	int rc = ursa__scope_check_locked(self, NULL); /* lock held: no yield */

	if (rc) {
		if (on_withdraw)
			on_withdraw(ctx);
		ursa__spin_unlock(lock);
		ursa__scope_refused(self);
		return rc;
	}
	ursa__wait_init(w, self);
	ursa__waitq_node_init(&n, w, q, lock, 0);
	n.item = item;
	ursa__waitq_push(q, &n);
	ursa__spin_unlock(lock);
	return ursa__waitq_block(w, &n, 1, on_withdraw, ctx);
}
