/* SPDX-License-Identifier: MIT */
/*
 * watch.c: registering a watch in tasks' joiner words and taking ended tasks
 * off its list (the handshake is described in watch.h and lib/task.c).
 */
#include "watch.h"

#include <errno.h>

int ursa__watch_add(struct ursa_watch_ *w, struct ursa_task *t)
{
	struct ursa_task *j = URSA__JOIN_NONE;

	if (atomic_compare_exchange_strong_explicit(&t->joiner, &j, ursa__watch_tag(w),
	                                            memory_order_acq_rel, memory_order_acquire))
		return 0;
	return j == URSA__JOIN_DONE ? 1 : -EINVAL;
}

bool ursa__watch_remove(struct ursa_watch_ *w, struct ursa_task *t)
{
	struct ursa_task *j = ursa__watch_tag(w);

	return atomic_compare_exchange_strong_explicit(&t->joiner, &j, URSA__JOIN_NONE,
	                                               memory_order_acq_rel, memory_order_acquire);
}

struct ursa_task *ursa__watch_drain(struct ursa_watch_ *w)
{
	/* acquire: pairs with the release in ursa__watch_push. */
	struct ursa_task *lifo = __atomic_exchange_n(&w->ended_, NULL, __ATOMIC_ACQUIRE);
	struct ursa_task *fifo = NULL;

	while (lifo) {
		struct ursa_task *next = lifo->ended_next;

		lifo->ended_next = fifo;
		fifo = lifo;
		lifo = next;
	}
	return fifo;
}

struct ursa_task *ursa__watch_take(struct ursa_watch_ *w, size_t *count)
{
	struct ursa_task *list = ursa__watch_drain(w);

	*count = 0;
	for (struct ursa_task *t = list; t; t = t->ended_next) {
		/* Pushed in WAKING: DONE follows within a few instructions, and
		 * the wake after it, so parking cannot miss it.  Waiting here
		 * means a task handed on is joinable at once. */
		while (atomic_load_explicit(&t->joiner, memory_order_acquire) != URSA__JOIN_DONE)
			ursa__sched_park();
		(*count)++;
	}
	return list;
}
