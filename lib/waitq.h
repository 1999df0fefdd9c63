/* SPDX-License-Identifier: MIT */
/*
 * waitq.h: how a task waits for a primitive (lib/sync_*.c, queue.c,
 * future.c): a waiter record (lib/wait.h) on the waiting fiber's stack,
 * FIFO queues of its nodes under a small spinlock (lib/spin.h), and the
 * grant / withdraw protocol (lib/waitq.c explains it).
 *
 *   task's stack                       primitive (anywhere)
 *   +------------------+               +-----------------------------+
 *   | struct ursa__wait| <-----w----+  | lock_ (spinlock)            |
 *   |  task, state, rc |            |  | waiters_: head_ ... tail_   |
 *   |  value, which    |            |  +------|---------------------+
 *   +------------------+            |         v
 *   | struct ursa__wnode (one per queue waited on: >1 only for select)
 *   |  prev/next, q, lock, index, item                               |
 *   +-----------------------------------------------------------------+
 */
#ifndef URSA_WAITQ_H
#define URSA_WAITQ_H

#include "spin.h"
#include "task.h"
#include "wait.h"

/* The wait's place in one queue, guarded by *lock. */
struct ursa__wnode {
	struct ursa__wnode *prev, *next;
	struct ursa__wait *w;
	struct ursa_waitq_ *q;
	unsigned *lock;
	unsigned index;                /* reported as w->which when granted */
	bool linked;
	void *item;                    /* a putter's item */
};

/* Waits a granter has claimed under its lock, to complete after it. */
struct ursa__wakes {
	struct ursa__wait *head, *tail;
	unsigned n;
};
#define URSA__WAKES_INIT {NULL, NULL, 0}

static inline void ursa__waitq_node_init(struct ursa__wnode *n, struct ursa__wait *w,
                                         struct ursa_waitq_ *q, unsigned *lock, unsigned index)
{
	n->prev = n->next = NULL;
	n->w = w;
	n->q = q;
	n->lock = lock;
	n->index = index;
	n->linked = false;
	n->item = NULL;
}

/*
 * Poison checks (issue 20.8).  A primitive's waitq magic_ is 0 (zeroed or
 * statically initialised, never waited on) or URSA__WAITQ_LIVE (set by the
 * first wait); a destroyed queue sets URSA__WAITQ_DEAD.  Anything else is
 * garbage: an object never initialised, freed and reused, or overwritten.
 * The blocking calls check it before they take the object's spinlock, which
 * in garbage memory may look held for ever; a check is one load and compare
 * on the path that is about to wait, so the uncontended fast paths do not
 * pay for it.  The message names the call; it aborts in release builds too.
 */
#define URSA__WAITQ_LIVE 0x75727371u /* "ursq" */
#define URSA__WAITQ_DEAD 0xdead0071u

_Noreturn void ursa__waitq_poisoned(const char *call, const char *what, const void *obj,
                                    unsigned magic);

static inline void ursa__waitq_check(const struct ursa_waitq_ *q, const char *call,
                                     const char *what, const void *obj)
{
	unsigned m = __atomic_load_n(&q->magic_, __ATOMIC_RELAXED);

	if (__builtin_expect(m != URSA__WAITQ_LIVE && m != 0, 0))
		ursa__waitq_poisoned(call, what, obj, m);
}

/* Under the lock: append n. */
void ursa__waitq_push(struct ursa_waitq_ *q, struct ursa__wnode *n);
/* Under the lock: put n first (a waiter that was woken and must wait again). */
void ursa__waitq_push_front(struct ursa_waitq_ *q, struct ursa__wnode *n);
/* Under the lock: remove n if it is still linked. */
void ursa__waitq_unlink(struct ursa_waitq_ *q, struct ursa__wnode *n);
/* Under the lock: no node linked (stale nodes of finished selects count). */
static inline bool ursa__waitq_empty(const struct ursa_waitq_ *q)
{
	return !q->head_;
}
/* Under the lock: unlink nodes from the head until one whose wait this call
 * claims (WAITING -> CLAIMED); return it, or NULL if none is left. */
struct ursa__wnode *ursa__waitq_claim(struct ursa_waitq_ *q);

/* Under the lock: record the verdict in n's claimed wait and queue it on ws. */
void ursa__waitq_grant(struct ursa__wakes *ws, struct ursa__wnode *n, int rc, void *value);
/* After the lock: complete each wait on ws (ursa__wait_done), in order. */
void ursa__waitq_wake(struct ursa__wakes *ws);

/*
 * The waiting side (ursa__wait_for, with the queues' withdraw): park until w
 * is granted (returns 0; w->rc, w->value and w->which carry the grant) or
 * until the task is cancelled or a deadline
 * passes (returns -ECANCELED or -ETIMEDOUT, after taking every node out of
 * its queue).  nodes[0..n) must all be queued already.  If on_withdraw is
 * not NULL it runs under nodes[0]'s lock when the wait is withdrawn, so the
 * primitive can undo what the waiter's arrival changed.
 */
int ursa__waitq_block(struct ursa__wait *w, struct ursa__wnode *nodes, unsigned n,
                      void (*on_withdraw)(void *ctx), void *ctx);

/*
 * The common case, one queue: called with *lock held after the caller has
 * decided to wait.  If the task may not wait (cancelled, deadline passed) it
 * runs on_withdraw, drops the lock and returns why; otherwise it queues a
 * node for w (carrying item, for a putter), drops the lock and waits as
 * ursa__waitq_block.  w is initialised here.
 */
int ursa__waitq_wait(struct ursa_task *self, struct ursa_waitq_ *q, unsigned *lock,
                     struct ursa__wait *w, void *item, void (*on_withdraw)(void *ctx), void *ctx);

/* Take nodes[0..n) out of their queues (each under its lock): the end of a
 * select that completed or gave up. */
void ursa__waitq_unlink_all(struct ursa__wnode *nodes, unsigned n);

#endif /* URSA_WAITQ_H */
