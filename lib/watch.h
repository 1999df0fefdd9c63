/* SPDX-License-Identifier: MIT */
/*
 * watch.h: one task waiting for any of many tasks to end (gather, wait,
 * as_completed, task groups).  The watch is registered in each watched
 * task's `joiner` word, tagged with its low bit.  An ending task claims the
 * word (swaps the tag for DONE), takes a reference on the watch's waiter,
 * pushes itself onto the watch's lock-free list of ended tasks (its last
 * touch of the watch), wakes the waiter and drops the reference
 * (ursa__task_finish).  A watcher may leave only when each task it
 * registered has been either taken off the list or withdrawn
 * (ursa__watch_remove): a task that has claimed the word will still push.
 *
 * This is the one wait that is not a waiter record (lib/wait.h): many wakers
 * serve one waiter, and each push is a grant, so no single store can be the
 * wakers' last touch.  Its wakers are cores finishing a task that still
 * counts as live, which keeps every core running, and with it the waiter's
 * task record, until the reference is dropped (and a group's spawner, for
 * a child that ended before it was watched: lib/group.c).
 */
#ifndef URSA_WATCH_H
#define URSA_WATCH_H

#include "task.h"

/* The joiner value that stands for watch w. */
static inline void *ursa__watch_tag(struct ursa_watch_ *w)
{
	return (void *)((uintptr_t)w | 1u);
}

/* The watch a joiner value stands for, or NULL (a joiner's record, or a
 * URSA__JOIN_* constant: those are all below 4). */
static inline struct ursa_watch_ *ursa__watch_of(void *j)
{
	uintptr_t v = (uintptr_t)j;

	return (v & 1u) && v > 3u ? (struct ursa_watch_ *)(v & ~(uintptr_t)1u) : NULL;
}

/* The ending task t puts itself on w's list (any thread).  After this, w
 * may be gone: it is the caller's last touch of w. */
static inline void ursa__watch_push(struct ursa_watch_ *w, struct ursa_task *t)
{
	struct ursa_task *head = __atomic_load_n(&w->ended_, __ATOMIC_RELAXED);

	/* release: the watcher's acquire exchange in ursa__watch_take sees t's
	 * outcome, written before. */
	do {
		t->ended_next = head;
	} while (!__atomic_compare_exchange_n(&w->ended_, &head, t, true, __ATOMIC_RELEASE,
	                                      __ATOMIC_RELAXED));
}

/* Start watching t (whose handle the caller holds): 0 if registered, 1 if t
 * has already ended (not registered; its outcome can be read now), -EINVAL if
 * t is detached, joined or watched already. */
int ursa__watch_add(struct ursa_watch_ *w, struct ursa_task *t);

/* Stop watching t: true if withdrawn; false if t is ending, and will be (or
 * has been) pushed onto w's list. */
bool ursa__watch_remove(struct ursa_watch_ *w, struct ursa_task *t);

/* Take every task pushed so far, oldest first, chained by ended_next; each
 * has ended and can be joined or released at once.  *count receives the
 * number of tasks taken.  Call from the waiter. */
struct ursa_task *ursa__watch_take(struct ursa_watch_ *w, size_t *count);

#endif /* URSA_WATCH_H */
