/* SPDX-License-Identifier: MIT */
/*
 * watch.h: one task waiting for any of many tasks to end (gather, wait,
 * as_completed, task groups).  The watch is registered in each watched
 * task's `joiner` word, tagged with its low bit; the ending task follows the
 * join handshake (lib/task.c: WAKING, then DONE) and, between the two, pushes
 * itself onto the watch's lock-free list of ended tasks and wakes the watch's
 * waiter.  A watcher may leave only when each task it registered has been
 * either taken off the list or withdrawn (ursa__watch_remove): a task in
 * WAKING will still touch the watch.
 */
#ifndef URSA_WATCH_H
#define URSA_WATCH_H

#include "task.h"

/* The joiner value that stands for watch w. */
static inline struct ursa_task *ursa__watch_tag(struct ursa_watch_ *w)
{
	return (struct ursa_task *)((uintptr_t)w | 1u);
}

/* The watch a joiner value stands for, or NULL (a task, or a URSA__JOIN_*
 * constant: those are all below 4). */
static inline struct ursa_watch_ *ursa__watch_of(struct ursa_task *j)
{
	uintptr_t v = (uintptr_t)j;

	return (v & 1u) && v > 3u ? (struct ursa_watch_ *)(v & ~(uintptr_t)1u) : NULL;
}

/* The ending task t puts itself on w's list (any thread).  After this, w
 * may be gone: it is the caller's last touch of w. */
static inline void ursa__watch_push(struct ursa_watch_ *w, struct ursa_task *t)
{
	struct ursa_task *head = __atomic_load_n(&w->ended_, __ATOMIC_RELAXED);

	/* release: the watcher's acquire exchange in ursa__watch_drain sees t's
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

/* Take every task pushed so far, oldest first, chained by ended_next. */
struct ursa_task *ursa__watch_drain(struct ursa_watch_ *w);

/* ursa__watch_drain, and then wait until each task taken has finished its
 * handshake (joiner DONE), so that it can be joined or released at once.
 * *count receives the number of tasks taken.  Call from the waiter. */
struct ursa_task *ursa__watch_take(struct ursa_watch_ *w, size_t *count);

#endif /* URSA_WATCH_H */
