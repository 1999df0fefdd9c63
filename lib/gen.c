/* SPDX-License-Identifier: MIT */
/*
 * gen.c: generators (async generators / async for).  The producer is a task
 * of its own, and the two sides meet in one slot under a mutex and a
 * condition:
 *
 *   IDLE --next--> WANT --yield--> READY --next takes it--> IDLE ...
 *                    \--body returns--> END
 *
 * The producer runs only between a WANT and its next yield, as an async
 * generator body runs only inside __anext__.  A consumer whose next is
 * cancelled leaves WANT behind; the value produced for it waits in READY
 * for its next call, so nothing is lost.  Closing cancels the producer: its
 * pending yield returns -ECANCELED and it cleans up.
 */
#include "sched.h"

#include <errno.h>
#include <stdlib.h>

enum { IDLE, WANT, READY, END };

struct ursa_gen {
	struct ursa_mutex mu;
	struct ursa_cond cv;
	int state;
	void *value;
	int end_rc;               /* the body's return: 0 or -errno */
	struct ursa_task *producer;
	ursa_gen_fn fn;
	void *arg;
};

static void *producer_main(void *arg)
{
	struct ursa_gen *g = arg;
	struct ursa_scope shield;
	int rc;

	/* Lazy start: the body runs at the first request. */
	rc = ursa_mutex_lock(&g->mu);
	if (rc == 0) {
		while (rc == 0 && g->state != WANT)
			rc = ursa_cond_wait(&g->cv, &g->mu); /* returns holding mu */
		(void)ursa_mutex_unlock(&g->mu);
	}
	if (rc == 0)
		rc = g->fn(g, g->arg);
	/* Report the end even if cancelled: the consumer may be waiting. */
	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	if (ursa_mutex_lock(&g->mu) == 0) {
		g->state = END;
		g->end_rc = rc < 0 ? rc : 0;
		ursa_cond_notify_all(&g->cv);
		(void)ursa_mutex_unlock(&g->mu);
	}
	ursa_scope_exit(&shield);
	return NULL;
}

int ursa_gen_create(struct ursa_gen **out, ursa_gen_fn fn, void *arg)
{
	struct ursa_gen *g;
	int rc;

	if (!out || !fn)
		return -EINVAL;
	if (!ursa__sched_self())
		return -EPERM;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	ursa_mutex_init(&g->mu);
	ursa_cond_init(&g->cv);
	g->state = IDLE;
	g->fn = fn;
	g->arg = arg;
	rc = ursa_spawn(&g->producer, producer_main, g);
	if (rc) {
		free(g);
		return rc;
	}
	*out = g;
	return 0;
}

int ursa_gen_yield(struct ursa_gen *g, void *v)
{
	int rc = ursa_mutex_lock(&g->mu);

	if (rc)
		return rc;
	g->value = v;
	g->state = READY;
	ursa_cond_notify_all(&g->cv);
	/* Wait until the consumer has taken it and asks for more. */
	while (g->state != WANT) {
		rc = ursa_cond_wait(&g->cv, &g->mu);
		if (rc)
			break;
	}
	(void)ursa_mutex_unlock(&g->mu);
	return rc;
}

int ursa_gen_next(struct ursa_gen *g, void **v)
{
	int rc = ursa_mutex_lock(&g->mu);

	if (rc)
		return rc;
	for (;;) {
		if (g->state == READY) {
			*v = g->value;
			g->state = IDLE;
			rc = 1;
			break;
		}
		if (g->state == END) {
			rc = g->end_rc;
			break;
		}
		if (g->state == IDLE) {
			g->state = WANT;
			ursa_cond_notify_all(&g->cv);
		}
		rc = ursa_cond_wait(&g->cv, &g->mu);
		if (rc)
			break; /* WANT stays: the value comes with the next call */
	}
	(void)ursa_mutex_unlock(&g->mu);
	return rc;
}

int ursa_gen_destroy(struct ursa_gen *g)
{
	if (!g)
		return 0;
	/* Its wait completes even in a cancelled task or past a deadline. */
	(void)ursa_cancel_and_join(g->producer, NULL);
	free(g);
	return 0;
}
