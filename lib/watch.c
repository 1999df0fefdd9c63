/* SPDX-License-Identifier: MIT */
/*
 * watch.c: registering a watch in tasks' joiner words and taking ended tasks
 * off its list (the handshake is described in watch.h and lib/task.c).
 */
#include "watch.h"

#include <errno.h>

int ursa__watch_add(struct ursa_watch_ *w, struct ursa_task *t)
{
	void *j = URSA__JOIN_NONE;

	if (atomic_compare_exchange_strong_explicit(&t->joiner, &j, ursa__watch_tag(w),
	                                            memory_order_acq_rel, memory_order_acquire))
		return 0;
	return j == URSA__JOIN_DONE ? 1 : -EINVAL;
}

bool ursa__watch_remove(struct ursa_watch_ *w, struct ursa_task *t)
{
	void *j = ursa__watch_tag(w);

	return atomic_compare_exchange_strong_explicit(&t->joiner, &j, URSA__JOIN_NONE,
	                                               memory_order_acq_rel, memory_order_acquire);
}

struct ursa_task *ursa__watch_take(struct ursa_watch_ *w, size_t *count)
{
	/* acquire: pairs with the release in ursa__watch_push. */
	struct ursa_task *lifo = __atomic_exchange_n(&w->ended_, NULL, __ATOMIC_ACQUIRE);
	struct ursa_task *fifo = NULL;

	*count = 0;
	while (lifo) {
		struct ursa_task *next = lifo->ended_next;

		lifo->ended_next = fifo;
		fifo = lifo;
		lifo = next;
		(*count)++;
	}
	return fifo;
}
