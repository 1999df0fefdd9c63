/* SPDX-License-Identifier: MIT */
/*
 * list.h: the intrusive doubly linked list used by run queues, wait queues and
 * per-core task lists.  A list is a circular sentinel; an unlinked node points
 * at itself, so unlinking twice is harmless.
 */
#ifndef URSA_LIST_H
#define URSA_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct ursa__list {
	struct ursa__list *prev, *next;
};

#define ursa__container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static inline void ursa__list_init(struct ursa__list *l)
{
	l->prev = l->next = l;
}

static inline bool ursa__list_empty(const struct ursa__list *l)
{
	return l->next == l;
}

static inline void ursa__list_insert_before(struct ursa__list *pos, struct ursa__list *n)
{
	n->prev = pos->prev;
	n->next = pos;
	pos->prev->next = n;
	pos->prev = n;
}

/* Append n at the tail of l. */
static inline void ursa__list_push(struct ursa__list *l, struct ursa__list *n)
{
	ursa__list_insert_before(l, n);
}

static inline void ursa__list_unlink(struct ursa__list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* Remove and return the head of l, or NULL if l is empty. */
static inline struct ursa__list *ursa__list_shift(struct ursa__list *l)
{
	struct ursa__list *n = l->next;

	if (n == l)
		return NULL;
	ursa__list_unlink(n);
	return n;
}

static inline bool ursa__list_linked(const struct ursa__list *n)
{
	return n->next != n;
}

#endif /* URSA_LIST_H */
