/* SPDX-License-Identifier: MIT */
/*
 * queue.c: ursa_queue (FIFO, LIFO and priority) and ursa_queue_select.
 *
 * One spinlock guards the items and three wait queues (getters, putters,
 * joiners).  Invariants, under the lock:
 *   - getters wait only while the queue is empty, so a put with a getter
 *     waiting hands its item straight to the first getter;
 *   - putters wait only while a bounded queue is full, so a get that makes
 *     room moves the first putter's item in, in the same critical section:
 *     a new put can never overtake a waiting putter, nor a new get a waiting
 *     getter (FIFO service).
 * A get on an empty queue (a put on a full one) whose core has nothing else
 * to do first watches the count for a while without the lock
 * (ursa__sched_spin), so that a producer and a consumer on two cores hand
 * items over without a park and a cross-core wake each; it cannot overtake
 * a waiter either, by the invariants above.
 * Slots grow as needed (to maxsize, if bounded) with the lock dropped
 * around malloc; the operation then looks at the queue afresh.
 */
#include "waitq.h"

#include "scope.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	void *item;
	uint64_t seq; /* put order: ties in a priority queue come out FIFO */
};

struct ursa_queue {
	unsigned lock;
	uint32_t flags;           /* URSA_QUEUE_LIFO */
	ursa_queue_cmp_fn cmp;    /* priority queue (a binary heap); else NULL */
	size_t maxsize;           /* 0: unbounded */
	struct slot *buf;         /* FIFO/LIFO: a ring from head; priority: a heap */
	size_t cap, head, count;
	uint64_t seq;
	size_t unfinished;        /* puts not yet matched by task_done */
	bool closed;
	struct ursa_waitq_ getters, putters, joiners;
};

#define MIN_CAP 16u

/* The poison check of every call on q (waitq.h): a queue used after
 * ursa_queue_destroy, or a pointer that never was one, aborts naming the
 * call, until the memory is reused. */
static inline void alive(const struct ursa_queue *q, const char *call)
{
	/* Atomic: a waiter's first push stores it while another core checks. */
	unsigned m = __atomic_load_n(&q->getters.magic_, __ATOMIC_RELAXED);

	if (__builtin_expect(m != URSA__WAITQ_LIVE, 0))
		ursa__waitq_poisoned(call, "queue", q, m);
}

static int create(struct ursa_queue **out, size_t maxsize, uint32_t flags, ursa_queue_cmp_fn cmp)
{
	struct ursa_queue *q;

	if (!out || (flags & ~URSA_QUEUE_LIFO))
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->flags = flags;
	q->cmp = cmp;
	q->maxsize = maxsize;
	q->getters.magic_ = URSA__WAITQ_LIVE; /* the poison check's mark (waitq.h) */
	/* Slots are allocated as needed, up to maxsize. */
	q->cap = maxsize && maxsize < MIN_CAP ? maxsize : MIN_CAP;
	q->buf = malloc(q->cap * sizeof(struct slot));
	if (!q->buf) {
		free(q);
		return -ENOMEM;
	}
	*out = q;
	return 0;
}

int ursa_queue_create(struct ursa_queue **q, size_t maxsize, uint32_t flags)
{
	return create(q, maxsize, flags, NULL);
}

int ursa_queue_create_prio(struct ursa_queue **q, size_t maxsize, ursa_queue_cmp_fn cmp)
{
	if (!cmp)
		return -EINVAL;
	return create(q, maxsize, 0, cmp);
}

int ursa_queue_destroy(struct ursa_queue *q)
{
	bool busy;

	if (!q)
		return 0;
	alive(q, "ursa_queue_destroy");
	ursa__spin_lock(&q->lock);
	busy = !ursa__waitq_empty(&q->getters) || !ursa__waitq_empty(&q->putters) ||
	       !ursa__waitq_empty(&q->joiners);
	ursa__spin_unlock(&q->lock);
	if (busy)
		return -EBUSY;
	q->getters.magic_ = URSA__WAITQ_DEAD; /* a later call on q says so */
	free(q->buf);
	free(q);
	return 0;
}

/* ------------------------------------------------------- items (locked) */

static bool before(const struct ursa_queue *q, const struct slot *a, const struct slot *b)
{
	int c = q->cmp(a->item, b->item);

	return c < 0 || (c == 0 && a->seq < b->seq);
}

/* Every change of count is an atomic store (under the lock, like the rest),
 * so that a waiter about to park may peek at it without the lock
 * (spin_ready). */
static void set_count(struct ursa_queue *q, size_t n)
{
	__atomic_store_n(&q->count, n, __ATOMIC_RELAXED);
}

/* Room for one more is guaranteed by the caller. */
static void store(struct ursa_queue *q, void *item)
{
	struct slot s = {item, q->seq++};

	if (!q->cmp) {
		q->buf[(q->head + q->count) % q->cap] = s;
		set_count(q, q->count + 1);
		return;
	}
	/* Sift up. */
	size_t i = q->count;

	set_count(q, i + 1);

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(q, &s, &q->buf[parent]))
			break;
		q->buf[i] = q->buf[parent];
		i = parent;
	}
	q->buf[i] = s;
}

/* count > 0 is guaranteed by the caller. */
static void *take(struct ursa_queue *q)
{
	void *item;

	if (!q->cmp) {
		if (q->flags & URSA_QUEUE_LIFO) {
			item = q->buf[(q->head + q->count - 1) % q->cap].item;
		} else {
			item = q->buf[q->head].item;
			q->head = (q->head + 1) % q->cap;
		}
		set_count(q, q->count - 1);
		return item;
	}
	item = q->buf[0].item;
	set_count(q, q->count - 1);
	struct slot last = q->buf[q->count];
	size_t i = 0;

	/* Sift the last slot down from the root. */
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= q->count)
			break;
		if (c + 1 < q->count && before(q, &q->buf[c + 1], &q->buf[c]))
			c++;
		if (!before(q, &q->buf[c], &last))
			break;
		q->buf[i] = q->buf[c];
		i = c;
	}
	q->buf[i] = last;
	return item;
}

/* The slots are all used but q may hold more: double them (at most to
 * maxsize), with the lock dropped around the allocation.  Returns with the
 * lock held; the caller re-examines q. */
static int grow(struct ursa_queue *q)
{
	size_t cap = q->cap, want = cap * 2;
	struct slot *nb, *old;

	if (want < cap || want > SIZE_MAX / sizeof(*nb))
		return -ENOMEM;
	if (q->maxsize && want > q->maxsize)
		want = q->maxsize;
	ursa__spin_unlock(&q->lock);
	nb = malloc(want * sizeof(*nb));
	ursa__spin_lock(&q->lock);
	if (!nb)
		return -ENOMEM;
	if (q->cap != cap) { /* someone else grew it meanwhile */
		old = nb;
	} else {
		/* Unroll the ring (a heap is in place from 0 with head 0). */
		for (size_t i = 0; i < q->count; i++)
			nb[i] = q->buf[(q->head + i) % q->cap];
		old = q->buf;
		q->buf = nb;
		q->cap = want;
		q->head = 0;
	}
	ursa__spin_unlock(&q->lock);
	free(old);
	ursa__spin_lock(&q->lock);
	return 0;
}

/* Locked: put without waiting.  0, -EAGAIN (full), -EPIPE, -ENOMEM. */
static int try_put(struct ursa_queue *q, void *item, struct ursa__wakes *ws)
{
	for (;;) {
		struct ursa__wnode *n;
		int rc;

		if (q->closed)
			return -EPIPE;
		n = ursa__waitq_claim(&q->getters);
		if (n) {
			ursa__waitq_grant(ws, n, 0, item);
			q->unfinished++;
			return 0;
		}
		if (q->maxsize && q->count >= q->maxsize)
			return -EAGAIN;
		if (q->count == q->cap) {
			rc = grow(q);
			if (rc)
				return rc;
			continue;
		}
		store(q, item);
		q->unfinished++;
		return 0;
	}
}

/* Locked: get without waiting.  0, -EAGAIN (empty), -EPIPE (closed, empty). */
static int try_get(struct ursa_queue *q, void **item, struct ursa__wakes *ws)
{
	struct ursa__wnode *n;

	if (!q->count)
		return q->closed ? -EPIPE : -EAGAIN;
	*item = take(q);
	/* Room now: the first waiting putter's item goes in (its put completes). */
	n = ursa__waitq_claim(&q->putters);
	if (n) {
		store(q, n->item);
		q->unfinished++;
		ursa__waitq_grant(ws, n, 0, NULL);
	}
	return 0;
}

/* Locked: whether an arm would complete now (exactly: try_put / try_get
 * would not return -EAGAIN). */
static bool ready(const struct ursa_queue *q, int op)
{
	if (q->closed)
		return true;
	if (op == URSA_QUEUE_SEL_GET)
		return q->count > 0;
	return !q->maxsize || q->count < q->maxsize;
}

/* --------------------------------------------------------------- put, get */

/* Unlocked peeks for ursa__sched_spin: an item to get, room to put. */
static bool has_item(void *arg)
{
	struct ursa_queue *q = arg;

	return __atomic_load_n(&q->count, __ATOMIC_RELAXED) > 0;
}

static bool has_room(void *arg)
{
	struct ursa_queue *q = arg;

	return __atomic_load_n(&q->count, __ATOMIC_RELAXED) < q->maxsize;
}

int ursa_queue_put_nowait(struct ursa_queue *q, void *item)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	int rc;

	alive(q, "ursa_queue_put_nowait");
	ursa__spin_lock(&q->lock);
	rc = try_put(q, item, &ws);
	ursa__spin_unlock(&q->lock);
	ursa__waitq_wake(&ws);
	return rc;
}

int ursa_queue_get_nowait(struct ursa_queue *q, void **item)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	int rc;

	alive(q, "ursa_queue_get_nowait");
	ursa__spin_lock(&q->lock);
	rc = try_get(q, item, &ws);
	ursa__spin_unlock(&q->lock);
	ursa__waitq_wake(&ws);
	return rc;
}

int ursa_queue_put(struct ursa_queue *q, void *item)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wait w;
	int rc;

	alive(q, "ursa_queue_put");
	ursa__spin_lock(&q->lock);
	rc = try_put(q, item, &ws);
	if (rc == -EAGAIN && self) {
		/* Full.  If our core has nothing else to do, a getter on
		 * another core may make room before a park and a wake would
		 * take: look for a while first (no wait was queued, so ws is
		 * empty). */
		ursa__spin_unlock(&q->lock);
		ursa__sched_spin(has_room, q);
		ursa__spin_lock(&q->lock);
		rc = try_put(q, item, &ws);
	}
	if (rc != -EAGAIN || !self) {
		ursa__spin_unlock(&q->lock);
		ursa__waitq_wake(&ws);
		return rc == -EAGAIN ? -EPERM : rc;
	}
	/* Full: a getter takes our item from the node (or a close refuses it). */
	rc = ursa__waitq_wait(self, &q->putters, &q->lock, &w, item, NULL, NULL);
	return rc ? rc : w.rc;
}

int ursa_queue_get(struct ursa_queue *q, void **item)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wait w;
	int rc;

	alive(q, "ursa_queue_get");
	ursa__spin_lock(&q->lock);
	rc = try_get(q, item, &ws);
	if (rc == -EAGAIN && self) {
		/* Empty: look for a while first, as a full put does. */
		ursa__spin_unlock(&q->lock);
		ursa__sched_spin(has_item, q);
		ursa__spin_lock(&q->lock);
		rc = try_get(q, item, &ws);
	}
	if (rc != -EAGAIN || !self) {
		ursa__spin_unlock(&q->lock);
		ursa__waitq_wake(&ws);
		return rc == -EAGAIN ? -EPERM : rc;
	}
	/* Empty: a putter hands us its item (or a close says EOF). */
	rc = ursa__waitq_wait(self, &q->getters, &q->lock, &w, NULL, NULL, NULL);
	if (rc)
		return rc;
	if (w.rc == 0)
		*item = w.value;
	return w.rc;
}

void ursa_queue_close(struct ursa_queue *q)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;

	alive(q, "ursa_queue_close");
	ursa__spin_lock(&q->lock);
	q->closed = true;
	/* Getters wait only while q is empty: they see the end now. */
	while ((n = ursa__waitq_claim(&q->getters)))
		ursa__waitq_grant(&ws, n, -EPIPE, NULL);
	while ((n = ursa__waitq_claim(&q->putters)))
		ursa__waitq_grant(&ws, n, -EPIPE, NULL);
	ursa__spin_unlock(&q->lock);
	ursa__waitq_wake(&ws);
}

/* ------------------------------------------------------ task_done, join */

int ursa_queue_task_done(struct ursa_queue *q)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wnode *n;

	alive(q, "ursa_queue_task_done");
	ursa__spin_lock(&q->lock);
	if (!q->unfinished) {
		ursa__spin_unlock(&q->lock);
		return -EINVAL;
	}
	if (--q->unfinished == 0)
		while ((n = ursa__waitq_claim(&q->joiners)))
			ursa__waitq_grant(&ws, n, 0, NULL);
	ursa__spin_unlock(&q->lock);
	ursa__waitq_wake(&ws);
	return 0;
}

int ursa_queue_join(struct ursa_queue *q)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__wait w;

	alive(q, "ursa_queue_join");
	ursa__spin_lock(&q->lock);
	if (!q->unfinished) {
		ursa__spin_unlock(&q->lock);
		return 0;
	}
	if (!self) {
		ursa__spin_unlock(&q->lock);
		return -EPERM;
	}
	return ursa__waitq_wait(self, &q->joiners, &q->lock, &w, NULL, NULL, NULL);
}

/* -------------------------------------------------------------- snapshots */

size_t ursa_queue_size(struct ursa_queue *q)
{
	size_t n;

	ursa__spin_lock(&q->lock);
	n = q->count;
	ursa__spin_unlock(&q->lock);
	return n;
}

bool ursa_queue_empty(struct ursa_queue *q)
{
	return ursa_queue_size(q) == 0;
}

bool ursa_queue_full(struct ursa_queue *q)
{
	return q->maxsize && ursa_queue_size(q) >= q->maxsize;
}

bool ursa_queue_closed(struct ursa_queue *q)
{
	bool c;

	ursa__spin_lock(&q->lock);
	c = q->closed;
	ursa__spin_unlock(&q->lock);
	return c;
}

/* ----------------------------------------------------------------- select */

/* Locked: complete arm a now (ready() said it would not say -EAGAIN). */
static void complete_arm(struct ursa_queue_sel *a, struct ursa__wakes *ws)
{
	if (a->op == URSA_QUEUE_SEL_GET)
		a->res = try_get(a->q, &a->item, ws);
	else
		a->res = try_put(a->q, a->item, ws);
}

#define SEL_STACK_ARMS 8

int ursa_queue_select(struct ursa_queue_sel *arms, unsigned n)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__wnode stack_nodes[SEL_STACK_ARMS], *nodes = stack_nodes;
	struct ursa__wakes ws = URSA__WAKES_INIT;
	struct ursa__wait w;
	unsigned enabled = 0, queued = 0;
	int rc;

	if (!self)
		return -EPERM;
	if (n > INT_MAX) /* the index is the return value */
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!arms[i].q)
			continue;
		if (arms[i].op != URSA_QUEUE_SEL_GET && arms[i].op != URSA_QUEUE_SEL_PUT)
			return -EINVAL;
		enabled++;
	}
	if (!enabled)
		return -EINVAL;

	/* Pass 1: the first arm that can complete now, without queueing. */
	for (unsigned i = 0; i < n; i++) {
		struct ursa_queue_sel *a = &arms[i];
		bool done;

		if (!a->q)
			continue;
		ursa__spin_lock(&a->q->lock);
		done = ready(a->q, a->op);
		if (done)
			complete_arm(a, &ws);
		ursa__spin_unlock(&a->q->lock);
		if (done) {
			ursa__waitq_wake(&ws);
			return (int)i;
		}
	}
	rc = ursa__scope_check(self, NULL);
	if (rc)
		return rc;

	/* Pass 2: queue a node on every arm's queue; an arm that has become
	 * ready meanwhile is completed by us, if we can still withdraw our wait
	 * (else another queue's granter has completed an arm for us). */
	if (enabled > SEL_STACK_ARMS) {
		nodes = malloc(enabled * sizeof(*nodes));
		if (!nodes)
			return -ENOMEM;
	}
	ursa__wait_init(&w, self);
	for (unsigned i = 0; i < n; i++) {
		struct ursa_queue_sel *a = &arms[i];
		struct ursa__wnode *x = &nodes[queued];

		if (!a->q)
			continue;
		ursa__spin_lock(&a->q->lock);
		if (ready(a->q, a->op)) {
			int s = URSA__WAIT_WAITING;

			if (atomic_compare_exchange_strong_explicit(&w.state, &s, URSA__WAIT_WITHDRAWN,
			                                            memory_order_acq_rel,
			                                            memory_order_acquire)) {
				complete_arm(a, &ws);
				ursa__spin_unlock(&a->q->lock);
				ursa__waitq_unlink_all(nodes, queued);
				ursa__waitq_wake(&ws);
				rc = (int)i;
				goto out;
			}
			ursa__spin_unlock(&a->q->lock);
			break; /* granted already: collect it below */
		}
		ursa__waitq_node_init(x, &w,
		                      a->op == URSA_QUEUE_SEL_GET ? &a->q->getters : &a->q->putters,
		                      &a->q->lock, i);
		x->item = a->op == URSA_QUEUE_SEL_PUT ? a->item : NULL;
		ursa__waitq_push(x->q, x);
		ursa__spin_unlock(&a->q->lock);
		queued++;
	}
	rc = ursa__waitq_block(&w, nodes, queued, NULL, NULL);
	if (rc == 0) {
		struct ursa_queue_sel *a = &arms[w.which];

		a->res = w.rc;
		if (a->op == URSA_QUEUE_SEL_GET && w.rc == 0)
			a->item = w.value;
		rc = (int)w.which;
	}
out:
	if (nodes != stack_nodes)
		free(nodes);
	return rc;
}
