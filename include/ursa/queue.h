/* SPDX-License-Identifier: MIT */
/*
 * ursa/queue.h: queues between tasks (asyncio.Queue, PriorityQueue,
 * LifoQueue; Go's channels and select) and generators (async generators,
 * async for).  Self-contained: include <ursa.h> for everything, or this
 * header alone.
 *
 * The sharing and cancellation rules of ursa/sync.h apply: FIFO service of
 * waiting tasks, a grant that races a cancellation wins (an item handed to a
 * cancelled getter is returned, never lost), and the calls that never wait
 * may be made from any thread.
 */
#ifndef URSA_QUEUE_H
#define URSA_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ queue */

struct ursa_queue; /* opaque */

/* Flags for ursa_queue_create. */
#define URSA_QUEUE_LIFO 0x1u /* asyncio.LifoQueue: get returns the newest item */

/* Orders a priority queue's items: negative if item a comes out before item
 * b.  It is passed the items themselves (the pointers given to
 * ursa_queue_put), not pointers to them as qsort's comparator is: a
 * comparator written for qsort over an array of pointers is wrong here. */
typedef int (*ursa_queue_cmp_fn)(const void *a, const void *b);

/*
 * A queue of pointers.  maxsize 0 means unbounded (asyncio's maxsize <= 0).
 * _create makes a FIFO queue (or LIFO with URSA_QUEUE_LIFO); _create_prio a
 * priority queue whose get returns the smallest item by cmp, equal items in
 * the order they were put (asyncio.PriorityQueue).  Returns 0, -ENOMEM,
 * -EINVAL.  Any thread.
 */
URSA_API URSA_NODISCARD int ursa_queue_create(struct ursa_queue **q, size_t maxsize,
                                              uint32_t flags);
URSA_API URSA_NODISCARD int ursa_queue_create_prio(struct ursa_queue **q, size_t maxsize,
                                                   ursa_queue_cmp_fn cmp);
/* Free q and the items' slots (not what the items point to).  -EBUSY
 * (nothing freed) while a task waits on it.  Any thread. */
URSA_API int ursa_queue_destroy(struct ursa_queue *q);

/*
 * Put an item, waiting while a bounded queue is full.  Returns 0, -EPIPE if
 * the queue is (or gets) closed (the item was not put), -ECANCELED,
 * -ETIMEDOUT, -ENOMEM (an unbounded queue could not grow).  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_queue_put(struct ursa_queue *q, void *item);
/*
 * Take the next item, waiting while the queue is empty.  Returns 0 and
 * *item; -EPIPE once the queue is closed and empty (end of stream: getters
 * drain what was put before the close first); -ECANCELED, -ETIMEDOUT.
 * Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_queue_get(struct ursa_queue *q, void **item);
/* Without waiting: -EAGAIN instead (QueueFull / QueueEmpty); otherwise as
 * above.  Any thread. */
URSA_API URSA_NODISCARD int ursa_queue_put_nowait(struct ursa_queue *q, void *item);
URSA_API URSA_NODISCARD int ursa_queue_get_nowait(struct ursa_queue *q, void **item);

/*
 * Close q (asyncio's Queue.shutdown()): later puts, and puts waiting now,
 * fail with -EPIPE; getters drain the items already in q, then get -EPIPE.
 * Idempotent.  Any thread.
 */
URSA_API void ursa_queue_close(struct ursa_queue *q);

/*
 * asyncio's task_done / join: every successful put counts one unfinished
 * item; task_done marks one finished (-EINVAL if none is unfinished); join
 * waits until none is (0, -ECANCELED, -ETIMEDOUT; blocks the fiber).
 */
URSA_API int ursa_queue_task_done(struct ursa_queue *q);
URSA_API URSA_NODISCARD int ursa_queue_join(struct ursa_queue *q);

/* Snapshots.  Any thread. */
URSA_API size_t ursa_queue_size(struct ursa_queue *q);
URSA_API bool ursa_queue_empty(struct ursa_queue *q);
URSA_API bool ursa_queue_full(struct ursa_queue *q);
URSA_API bool ursa_queue_closed(struct ursa_queue *q);

/* ----------------------------------------------------------------- select */

enum { URSA_QUEUE_SEL_GET = 1, URSA_QUEUE_SEL_PUT = 2 };

/* One arm of a select. */
struct ursa_queue_sel {
	struct ursa_queue *q; /* NULL: arm disabled (skipped) */
	int op;               /* URSA_QUEUE_SEL_GET or URSA_QUEUE_SEL_PUT */
	void *item;           /* PUT: the item; GET: receives the item */
	int res;              /* out: the completed arm's result: 0, -EPIPE
	                         (closed), or -ENOMEM (an unbounded queue
	                         could not grow) */
};

/*
 * Wait until one arm can complete, complete exactly that one and return its
 * index (Go's select).  An arm whose queue is closed completes at once with
 * res -EPIPE (a GET only once its queue is also drained); disable it by
 * setting its q to NULL.  When several arms are ready the lowest index wins.
 * Returns the index, -EINVAL (no enabled arm, a bad op, n > INT_MAX), -ECANCELED,
 * -ETIMEDOUT (no arm completed).  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_queue_select(struct ursa_queue_sel *arms, unsigned n);

/* ------------------------------------------------------------- generators */

struct ursa_gen; /* opaque */

/* A generator's body: yields values with ursa_gen_yield, returns 0 when done
 * or a negative errno to fail. */
typedef int (*ursa_gen_fn)(struct ursa_gen *g, void *arg);

/*
 * An async generator: fn(g, arg) runs as a producer task on the caller's
 * core, lazily, one value at a time: it starts at the first ursa_gen_next
 * and, after each ursa_gen_yield, waits until the consumer asks for the next
 * value.  Returns 0, -ENOMEM.  Call from a task; does not block.
 */
URSA_API URSA_NODISCARD int ursa_gen_create(struct ursa_gen **g, ursa_gen_fn fn, void *arg);

/*
 * In the producer: hand v to the consumer and wait until it wants the next
 * value.  Returns 0, or -ECANCELED when the consumer has closed the
 * generator (clean up and return).  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_gen_yield(struct ursa_gen *g, void *v);

/*
 * In the consumer (async for): the next value.  Returns 1 and *v; 0 when the
 * producer has returned 0 (StopAsyncIteration); the producer's error if it
 * returned one; -ECANCELED / -ETIMEDOUT if the consumer is cancelled or its
 * deadline passes (no value is lost: the next call gets it).  Blocks the
 * fiber.
 */
URSA_API URSA_NODISCARD int ursa_gen_next(struct ursa_gen *g, void **v);

/*
 * Abandon or finish the generator (aclose): cancel the producer if it is
 * still running, wait for its clean-up (shielded: this completes even in a
 * cancelled task), and free g.  Call it exactly once for every generator
 * created, after the last ursa_gen_next.  Returns 0.  Blocks the fiber.
 */
URSA_API int ursa_gen_destroy(struct ursa_gen *g);

#ifdef __cplusplus
}
#endif

#endif /* URSA_QUEUE_H */
