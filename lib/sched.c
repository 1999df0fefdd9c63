/* SPDX-License-Identifier: MIT */
/*
 * sched.c: the per-core run loop, parking and waking, the inbox through which
 * other threads hand work to a core, and the CQE dispatcher.
 *
 * One turn of the loop, in order:
 *   1. drain the inbox: link new tasks, queue woken ones, free released ones;
 *   2. at shutdown, the first time: cancel every task of this core;
 *   3. run each task that was runnable at the start of this step, once, until
 *      it parks, yields or ends (tasks queued meanwhile wait for the next turn,
 *      so I/O is polled between rounds);
 *   4. if main ended during step 3, do step 2 now (before we might sleep);
 *      leave if the runtime is stopping and nothing is left anywhere;
 *   5. enter the kernel once: submit every SQE queued this turn and reap
 *      completions, waiting for one only if there is nothing to run.  The
 *      enter is skipped when there is nothing to submit and nothing owed.
 */
#include "sched.h"

#include "fiber/switch.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__thread struct ursa__core *ursa__sched_core;

/* ------------------------------------------------------------------ inbox */

void ursa__sched_kick(struct ursa__core *target)
{
	struct ursa__core *self = ursa__sched_core;
	uint64_t one = 1;

	if (self && self != target && self->ring.caps.msg_ring) {
		/* A CQE on the target's ring wakes it from io_uring_enter; our
		 * own completion is suppressed when the kernel allows. */
		struct io_uring_sqe *sqe = ursa__ring_sqe(&self->ring);

		io_uring_prep_msg_ring(sqe, target->ring.uring.ring_fd, 0, URSA__UD_KICK, 0);
		io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
		if (self->ring.caps.cqe_skip)
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		return;
	}
	/* No ring here (pool thread, foreign thread) or no MSG_RING: the
	 * target keeps a read armed on its eventfd. */
	while (write(target->eventfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Push m onto c's inbox; kick c only on the empty-to-non-empty edge, since c
 * drains the whole inbox every turn. */
static void inbox_push(struct ursa__core *c, struct ursa__msg *m)
{
	struct ursa__msg *head = atomic_load_explicit(&c->inbox, memory_order_relaxed);

	do {
		m->next = head;
		/* release: pairs with the acquire exchange in drain_inbox, so the
		 * owner sees everything written before the push. */
	} while (!atomic_compare_exchange_weak_explicit(&c->inbox, &head, m, memory_order_release,
	                                                memory_order_relaxed));
	if (!head)
		ursa__sched_kick(c);
}

static void runq_push(struct ursa__core *c, struct ursa_task *t)
{
	ursa__list_push(&c->runq, &t->link);
	c->runq_len++;
}

static void link_task(struct ursa__core *c, struct ursa_task *t)
{
	ursa__list_push(&c->tasks, &t->all);
	t->linked = true;
	/* Spawned after shutdown began: start it cancelled, so its cleanup code
	 * runs and its blocking calls return -ECANCELED. */
	if (c->cancelled_all)
		atomic_store_explicit(&t->cancel_requested, true, memory_order_relaxed);
}

static void drain_inbox(struct ursa__core *c)
{
	struct ursa__msg *m = atomic_exchange_explicit(&c->inbox, NULL, memory_order_acquire);
	struct ursa__msg *fifo = NULL;

	/* The inbox is LIFO; reverse it so wakes run in the order they came. */
	while (m) {
		struct ursa__msg *next = m->next;

		m->next = fifo;
		fifo = m;
		m = next;
	}
	while (fifo) {
		struct ursa__msg *next = fifo->next;
		struct ursa_task *t = ursa__container_of(fifo, struct ursa_task, msg);

		if (fifo->kind == URSA__MSG_FREE) {
			ursa__task_free(c, t);
		} else {
			if (!t->linked)
				link_task(c, t);
			runq_push(c, t);
		}
		fifo = next;
	}
}

/* ------------------------------------------------------------ park, wake */

static void enqueue(struct ursa_task *t)
{
	struct ursa__core *c = ursa__sched_core;

	if (c == t->core) {
		if (!t->linked)
			link_task(c, t);
		runq_push(c, t);
		return;
	}
	t->msg.kind = URSA__MSG_WAKE;
	inbox_push(t->core, &t->msg);
}

void ursa__sched_start(struct ursa_task *t)
{
	enqueue(t);
}

void ursa__sched_release(struct ursa_task *t)
{
	/* After DONE the task's message is free for this. */
	t->msg.kind = URSA__MSG_FREE;
	inbox_push(t->core, &t->msg);
}

void ursa__sched_wake(struct ursa_task *t)
{
	int s = atomic_load_explicit(&t->state, memory_order_acquire);

	for (;;) {
		if (s == URSA__TASK_PARKED) {
			if (atomic_compare_exchange_weak_explicit(&t->state, &s, URSA__TASK_QUEUED,
			                                          memory_order_acq_rel,
			                                          memory_order_acquire)) {
				enqueue(t);
				return;
			}
		} else if (s == URSA__TASK_RUNNING) {
			/* Not parked yet: make its next park return at once. */
			if (atomic_compare_exchange_weak_explicit(&t->state, &s, URSA__TASK_NOTIFIED,
			                                          memory_order_acq_rel,
			                                          memory_order_acquire))
				return;
		} else if (s == URSA__TASK_DONE) {
			return;
		} else if (atomic_compare_exchange_weak_explicit(&t->state, &s, s,
		                                                 memory_order_acq_rel,
		                                                 memory_order_acquire)) {
			/* NOTIFIED or QUEUED: already going to run.  Still a
			 * write (release), not just the load: the task's next
			 * state change (run_one, park, yield: acquiring RMWs)
			 * must see what the waker published before calling us.
			 * With a plain load, waker (store DONE; load QUEUED) and
			 * task (store RUNNING; load its wait: not DONE yet) could
			 * each miss the other's store, and the task parked for
			 * good (tests/stress_sync.c's duels, x86 store buffer). */
			return;
		}
	}
}

static void switch_to_scheduler(struct ursa__core *c, struct ursa_task *t)
{
	ursa__fiber_switch(&t->ctx, &t->asan_fake_stack, &c->sched_ctx, c->sched_stack_lo,
	                   c->sched_stack_size, c->tsan_fiber);
}

void ursa__sched_park(void)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa_task *t = c->current;
	int expected = URSA__TASK_RUNNING;

	/* It really waits (or a wake came first): its refusals no longer run
	 * in a row (ursa__scope_refused).  Not reset in ursa__sched_yield,
	 * whose callers include the guard's own yields. */
	t->refused = 0;
	if (!atomic_compare_exchange_strong_explicit(&t->state, &expected, URSA__TASK_PARKED,
	                                             memory_order_acq_rel, memory_order_acquire)) {
		/* NOTIFIED: a wake came first.  Only this task leaves NOTIFIED;
		 * an RMW, to acquire from every waker (see ursa__sched_wake). */
		atomic_exchange_explicit(&t->state, URSA__TASK_RUNNING, memory_order_acq_rel);
		return;
	}
	switch_to_scheduler(c, t);
}

void ursa__sched_yield(void)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa_task *t = c->current;

	/* An RMW: a wake that found us RUNNING or NOTIFIED stays ordered
	 * before our next look at what we wait for (ursa__sched_wake). */
	atomic_exchange_explicit(&t->state, URSA__TASK_QUEUED, memory_order_acq_rel);
	runq_push(c, t);
	switch_to_scheduler(c, t);
}

void ursa__sched_exit(void)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa_task *t = c->current;

	t->exiting = true;
	/* NULL fake-stack slot: this context never runs again. */
	ursa__fiber_switch(&t->ctx, NULL, &c->sched_ctx, c->sched_stack_lo, c->sched_stack_size,
	                   c->tsan_fiber);
	abort(); /* unreachable: nothing switches back into an exited task */
}

/* --------------------------------------------------------- completions */

/* The CQE dispatcher the ring calls for this core.  A record's own function
 * takes its CQE (an op's, a scope timer's, a receiver's): this file knows
 * none of them. */
static void dispatch(void *core, uint64_t ud, int res, unsigned flags)
{
	struct ursa__core *c = core;

	switch (URSA__UD_KIND(ud)) {
	case URSA__UD_CALL: {
		struct ursa__call *k = URSA__UD_PTR(ud);

		k->fn(k, res, flags);
		break;
	}
	case URSA__UD_EVENTFD:
		c->eventfd_armed = false;
		break;
	default: /* KICK and IGNORE: the inbox is drained every turn anyway */
		break;
	}
}

static void arm_eventfd(struct ursa__core *c)
{
	struct io_uring_sqe *sqe = ursa__ring_sqe(&c->ring);

	io_uring_prep_read(sqe, c->eventfd, &c->eventfd_buf, sizeof(c->eventfd_buf), 0);
	io_uring_sqe_set_data64(sqe, URSA__UD_EVENTFD);
	c->eventfd_armed = true;
}

/* ----------------------------------------------------------------- loop */

static void run_one(struct ursa__core *c)
{
	/* Callers check runq_len: the queue is not empty. */
	struct ursa__list *n = c->runq.next;
	struct ursa_task *t = ursa__container_of(n, struct ursa_task, link);

	ursa__list_unlink(n);
	c->runq_len--;
	/* acquire (an RMW, so it reads the latest state): pairs with the
	 * release of every wake that found the task QUEUED (ursa__sched_wake). */
	atomic_exchange_explicit(&t->state, URSA__TASK_RUNNING, memory_order_acq_rel);
	c->current = t;
	/* Odd while the task runs (lib/stall.c); single writer, so no RMW. */
	atomic_store_explicit(&c->turn, atomic_load_explicit(&c->turn, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	ursa__fiber_switch(&c->sched_ctx, &c->asan_fake_stack, &t->ctx, ursa__stack_lo(&t->stack),
	                   t->stack.size, t->tsan_fiber);
	atomic_store_explicit(&c->turn, atomic_load_explicit(&c->turn, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	c->current = NULL;
	if (t->exiting)
		ursa__task_finish(c, t);
}

static void cancel_all(struct ursa__core *c)
{
	c->cancelled_all = true;
	for (struct ursa__list *n = c->tasks.next; n != &c->tasks; n = n->next) {
		struct ursa_task *t = ursa__container_of(n, struct ursa_task, all);

		if (atomic_load_explicit(&t->state, memory_order_acquire) == URSA__TASK_DONE)
			continue;
		atomic_store_explicit(&t->cancel_requested, true, memory_order_release);
		ursa__sched_wake(t);
	}
}

/* Stopping, no task left on any core, nothing owed by this core's kernel
 * ring and nothing queued here: the loop may end. */
static bool nothing_left(struct ursa__core *c)
{
	return atomic_load_explicit(&c->rt->stopping, memory_order_acquire) &&
	       atomic_load_explicit(&c->rt->live, memory_order_acquire) == 0 && c->pending == 0 &&
	       c->runq_len == 0 && !atomic_load_explicit(&c->inbox, memory_order_acquire);
}

static void enter(struct ursa__core *c, bool wait)
{
	int rc = ursa__ring_enter(&c->ring, wait, dispatch, c);

	if (rc < 0) {
		/* Only a broken ring gets here (EBADF, EFAULT): nothing sane to do. */
		fprintf(stderr, "ursa: core %u: io_uring_enter failed: %s\n", c->id, strerror(-rc));
		abort();
	}
}

void ursa__sched_loop(struct ursa__core *c)
{
	for (;;) {
		drain_inbox(c);
		if (!c->cancelled_all && atomic_load_explicit(&c->rt->stopping, memory_order_acquire))
			cancel_all(c);
		for (unsigned n = c->runq_len; n && c->runq_len; n--)
			run_one(c);
		/* main may have just ended here: cancel before deciding to sleep,
		 * or this core would wait for a completion nobody will post. */
		if (!c->cancelled_all && atomic_load_explicit(&c->rt->stopping, memory_order_acquire))
			cancel_all(c);
		if (nothing_left(c)) {
			/* Send what is queued (the last task's kicks to the other
			 * cores) before leaving. */
			if (ursa__ring_has_unsubmitted(&c->ring))
				enter(c, false);
			break;
		}
		if (!c->eventfd_armed)
			arm_eventfd(c);
		bool idle = c->runq_len == 0 &&
		            !atomic_load_explicit(&c->inbox, memory_order_acquire);
		if (!idle && c->pending == 0 && !ursa__ring_has_unsubmitted(&c->ring))
			continue; /* busy, and the kernel owes us nothing */
		enter(c, idle);
	}
	/* Withdraw the eventfd read, so nothing targets eventfd_buf once the
	 * core is freed, and wait for its CQE. */
	if (c->eventfd_armed) {
		struct io_uring_sqe *sqe = ursa__ring_sqe(&c->ring);

		io_uring_prep_cancel64(sqe, URSA__UD_EVENTFD, 0);
		io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
		while (c->eventfd_armed)
			enter(c, true);
	}
}
