/* SPDX-License-Identifier: MIT */
/*
 * sync_cond.c: ursa_cond (asyncio.Condition).  A waiter queues itself
 * before it releases the mutex, so a notify that follows the release cannot
 * be missed; it takes the mutex back in a shielded scope, so it returns
 * holding it whatever happened, as asyncio does.
 */
#include "waitq.h"

#include "scope.h"

#include <errno.h>
#include <string.h>

void ursa_cond_init(struct ursa_cond *c)
{
	memset(c, 0, sizeof(*c));
}

int ursa_cond_wait(struct ursa_cond *c, struct ursa_mutex *m)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__wait w;
	struct ursa__wnode n;
	struct ursa_scope shield;
	int rc;

	if (!self)
		return -EPERM;
	ursa__waitq_check(&c->waiters_, "ursa_cond_wait", "condition", c);
	ursa__waitq_check(&m->waiters_, "ursa_cond_wait", "mutex", m);
	rc = ursa__scope_check(self, NULL);
	if (rc)
		return rc; /* as if woken by the cancellation at once: m still held */
	ursa__wait_init(&w, self);
	ursa__waitq_node_init(&n, &w, &c->waiters_, &c->lock_, 0);
	ursa__spin_lock(&c->lock_);
	ursa__waitq_push(&c->waiters_, &n);
	ursa__spin_unlock(&c->lock_);
	ursa_mutex_unlock(m);
	rc = ursa__waitq_block(&w, &n, 1, NULL, NULL);
	/* Take m back whatever happened; nothing may interrupt this. */
	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	while (ursa_mutex_lock(m) != 0)
		; /* unreachable: a shielded scope without a deadline never fails */
	ursa_scope_exit(&shield);
	return rc;
}

int ursa_cond_wait_for(struct ursa_cond *c, struct ursa_mutex *m, bool (*pred)(void *arg),
                       void *arg)
{
	while (!pred(arg)) {
		int rc = ursa_cond_wait(c, m);

		if (rc)
			return rc;
	}
	return 0;
}

unsigned ursa_cond_notify(struct ursa_cond *c, unsigned n)
{
	struct ursa__wakes ws = URSA__WAKES_INIT;
	unsigned woken;

	ursa__spin_lock(&c->lock_);
	while (ws.n < n) {
		struct ursa__wnode *x = ursa__waitq_claim(&c->waiters_);

		if (!x)
			break;
		ursa__waitq_grant(&ws, x, 0, NULL);
	}
	ursa__spin_unlock(&c->lock_);
	woken = ws.n;
	ursa__waitq_wake(&ws);
	return woken;
}

unsigned ursa_cond_notify_all(struct ursa_cond *c)
{
	return ursa_cond_notify(c, ~0u);
}
