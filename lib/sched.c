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
 *      completions.  The enter is skipped when there is nothing to submit
 *      and nothing owed.  With nothing to run, poll the inbox and the ring
 *      for a while (idle_poll_ns) and then sleep in the kernel until a
 *      completion or a kick comes (the wake protocol: inbox_push).
 */
#include "sched.h"

#include "fiber/switch.h"
#include "spin.h"
#include "task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__thread struct ursa__core *ursa__sched_core;

/* ------------------------------------------------------------------ inbox */

/* Make target look at its inbox: a CQE on its ring, which ends its wait in
 * the kernel. */
static void send_kick(struct ursa__core *target)
{
	struct ursa__core *self = ursa__sched_core;
	uint64_t one = 1;

	if (self && self != target && self->ring.caps.msg_ring) {
		/* Our own completion is suppressed when the kernel allows. */
		struct io_uring_sqe *sqe = ursa__ring_sqe(&self->ring);

		URSA__STAT_INC(self->stats.kicks);
		io_uring_prep_msg_ring(sqe, target->ring.uring.ring_fd, 0, URSA__UD_KICK, 0);
		io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
		if (self->ring.caps.cqe_skip)
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		/* From a task, send it now: the task may run a long while
		 * before our loop's next enter (a lock taken and released in a
		 * loop, the waiter's wake stuck in our SQ all along), and the
		 * target's CPU takes long to come back from a halt anyway.  In
		 * the scheduler the loop's enter comes next. */
		if (self->current)
			ursa__ring_submit(&self->ring);
		return;
	}
	/* No ring here (pool thread, foreign thread) or no MSG_RING: the
	 * target keeps a read armed on its eventfd. */
	if (self)
		URSA__STAT_INC(self->stats.kicks);
	while (write(target->eventfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void ursa__sched_kick(struct ursa__core *target)
{
	/* Unconditional: these kicks (the runtime stopping, the last task
	 * ending) change what the target's loop decides, not its inbox, and
	 * are rare. */
	send_kick(target);
}

/*
 * Push m onto c's inbox, and kick c only if it might otherwise not look:
 * the wake protocol (docs/design.md).  A core is AWAKE while it runs tasks
 * or polls for work, and looks at its inbox before it sleeps; it stores
 * SLEEPING, then looks at its inbox once more, before it waits in the
 * kernel.  A pusher pushes, then looks at the core's state: seq_cst on both
 * sides, so either the core sees the message or the pusher sees SLEEPING.
 * Only the push that makes the inbox non-empty looks (the core drains it
 * whole, so later pushes ride on that one), and only one pusher per sleep
 * sends the kick (SLEEPING -> KICKED): one MSG_RING or eventfd write per
 * sleeping core however many tasks are woken there, and none at all for a
 * core that is running or polling.
 */
static void inbox_push(struct ursa__core *c, struct ursa__msg *m)
{
	struct ursa__msg *head = atomic_load_explicit(&c->inbox, memory_order_relaxed);
	unsigned s;

	do {
		m->next = head;
		/* release (within seq_cst): pairs with the acquire exchange in
		 * drain_inbox, so the owner sees everything written before the
		 * push. */
	} while (!atomic_compare_exchange_weak_explicit(&c->inbox, &head, m, memory_order_seq_cst,
	                                                memory_order_relaxed));
	if (head)
		return;
	s = atomic_load_explicit(&c->sleep, memory_order_seq_cst);
	if (s == URSA__CORE_SLEEPING &&
	    atomic_compare_exchange_strong_explicit(&c->sleep, &s, URSA__CORE_KICKED,
	                                            memory_order_relaxed, memory_order_relaxed))
		send_kick(c);
}

void ursa__sched_post(struct ursa__core *c, struct ursa__msg_run *m)
{
	m->msg.kind = URSA__MSG_RUN;
	inbox_push(c, &m->msg);
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
	URSA__STAT_INC(c->stats.tasks_spawned);
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

		if (fifo->kind == URSA__MSG_RUN) {
			struct ursa__msg_run *r = ursa__container_of(fifo, struct ursa__msg_run, msg);

			r->fn(c, r);
		} else if (fifo->kind == URSA__MSG_FREE) {
			ursa__task_free(c, t);
		} else {
			URSA__STAT_INC(c->stats.xwakes_recv);
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
	if (c)
		URSA__STAT_INC(c->stats.xwakes_sent);
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
	ursa__stats_park(&c->stats, t->park_reason);
	switch_to_scheduler(c, t);
	ursa__stats_resume(&c->stats, &t->park_reason);
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
	URSA__STAT_INC(c->stats.tasks_ended);
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
	uint64_t t0 = wait ? ursa__stats_clock() : 0;
	int rc;

	ursa__stats_gauges(&c->stats, c->runq_len, c->pending);
	rc = ursa__ring_enter(&c->ring, wait, dispatch, c);

	ursa__stats_enter(&c->stats, wait, t0);

	if (rc < 0) {
		/* Only a broken ring gets here (EBADF, EFAULT): nothing sane to do. */
		fprintf(stderr, "ursa: core %u: io_uring_enter failed: %s\n", c->id, strerror(-rc));
		abort();
	}
}

/*
 * Idle polling.  A core with nothing to run looks at its inbox and its ring
 * for a while before it sleeps in the kernel: a wake from another core then
 * costs the load that sees it, instead of a kick and the return of a halted
 * CPU (docs/design.md, "The wake protocol", has the numbers).  How long is
 * adapted per core, by the rule of Linux's guest halt-polling
 * (cpuidle-haltpoll): an idle period that outlasted the poll but not the
 * bound (idle_poll_ns) doubles the poll, up to the bound, since a longer one
 * would have caught its wake; one that outlasted the bound halves it, down
 * to an eighth of the bound, which still catches a reply already on its
 * way.  A periodic timer's core so polls an eighth of the bound per wake,
 * and a core in a ping-pong the whole bound.
 *
 * A thread that never sleeps loses the kernel's preference for waking
 * sleepers: on a busy CPU a polling worker waits its turn behind the other
 * threads when its event comes, where a sleeping one would have been run at
 * once.  So a poll that loses its CPU (two looks further apart than
 * POLL_PREEMPTED_NS) ends at once, and polling stops for a while
 * (POLL_BACKOFF_NS, doubling while it keeps happening, up to
 * POLL_BACKOFF_MAX_NS).
 */
enum {
	POLL_LOOKS = 16,                       /* looks per clock read */
	POLL_PREEMPTED_NS = 20 * 1000,         /* a gap this long: we lost the CPU */
	POLL_BACKOFF_NS = 10 * 1000 * 1000,    /* then no polling for this long, */
	POLL_BACKOFF_MAX_NS = 1000 * 1000 * 1000, /* doubling up to this */
};

enum poll_outcome { POLL_FOUND, POLL_NOTHING, POLL_PREEMPTED };

static enum poll_outcome poll_for_work(struct ursa__core *c, uint64_t start)
{
	uint64_t last = start, now;

	/* Send what this turn queued (kicks to other cores above all, which
	 * must not wait for our poll) and take what has completed, then let
	 * the loop look again: a completion may have changed more than the
	 * run queue (the last one owed, with the runtime stopping, ends the
	 * loop; sleeping instead would wait for nothing). */
	if (ursa__ring_has_unsubmitted(&c->ring) || ursa__ring_has_events(&c->ring)) {
		enter(c, false);
		return POLL_FOUND;
	}
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&c->inbox, memory_order_relaxed))
			return POLL_FOUND;
		if (ursa__ring_has_events(&c->ring)) {
			enter(c, false);
			return POLL_FOUND;
		}
		if (i % POLL_LOOKS) {
			ursa__spin_pause();
			continue;
		}
		now = ursa_now();
		if (now - last > POLL_PREEMPTED_NS)
			return POLL_PREEMPTED;
		if (now - start >= c->poll_ns)
			return POLL_NOTHING;
		last = now;
	}
}

/* The poll lost its CPU: no polling (nor spinning) for a while. */
static void poll_back_off(struct ursa__core *c, uint64_t now)
{
	c->poll_backoff_ns = c->poll_backoff_ns ? c->poll_backoff_ns * 2 : POLL_BACKOFF_NS;
	if (c->poll_backoff_ns > POLL_BACKOFF_MAX_NS)
		c->poll_backoff_ns = POLL_BACKOFF_MAX_NS;
	c->poll_resume_ns = now + c->poll_backoff_ns;
}

bool ursa__sched_spin(bool (*ready)(void *arg), void *arg)
{
	struct ursa__core *c = ursa__sched_core;
	uint64_t start, last, now;

	if (!c || c->rt->cfg.cores < 2 || !c->poll_ns || c->runq_len ||
	    !ursa__ring_shows_events(&c->ring) ||
	    atomic_load_explicit(&c->inbox, memory_order_relaxed))
		return false;
	start = last = ursa_now();
	if (start < c->poll_resume_ns)
		return false;
	for (unsigned i = 1;; i++) {
		if (ready(arg))
			return true;
		/* Other work for this core: park, and let the loop do it. */
		if (atomic_load_explicit(&c->inbox, memory_order_relaxed) ||
		    ursa__ring_has_events(&c->ring))
			return false;
		if (i % POLL_LOOKS) {
			ursa__spin_pause();
			continue;
		}
		now = ursa_now();
		if (now - last > POLL_PREEMPTED_NS) {
			poll_back_off(c, now);
			return false;
		}
		if (now - start >= c->poll_ns)
			return false;
		last = now;
	}
}

/* Nothing to run, and polling found nothing: wait in the kernel, unless a
 * push came in the meantime (the wake protocol, at inbox_push). */
static void sleep_in_kernel(struct ursa__core *c)
{
	atomic_exchange_explicit(&c->sleep, URSA__CORE_SLEEPING, memory_order_seq_cst);
	if (!atomic_load_explicit(&c->inbox, memory_order_seq_cst))
		enter(c, true);
	/* A KICKED state's kick may still be in flight: it ends a later
	 * sleep early, which is harmless. */
	atomic_store_explicit(&c->sleep, URSA__CORE_AWAKE, memory_order_seq_cst);
}

/* Nothing to run: poll for work (idle polling, above), then sleep. */
static void idle(struct ursa__core *c)
{
	uint64_t max = c->rt->cfg.idle_poll_ns, start, idle_ns;
	enum poll_outcome o;

	if (!max || !ursa__ring_shows_events(&c->ring)) {
		sleep_in_kernel(c);
		return;
	}
	start = ursa_now();
	if (start < c->poll_resume_ns) {
		sleep_in_kernel(c);
		return;
	}
	o = poll_for_work(c, start);
	URSA__STATS_IDLE_POLL(&c->stats, start);
	if (o == POLL_FOUND) {
		c->poll_backoff_ns = 0;
		return;
	}
	if (o == POLL_PREEMPTED) {
		poll_back_off(c, ursa_now());
		sleep_in_kernel(c);
		return;
	}
	c->poll_backoff_ns = 0;
	sleep_in_kernel(c);
	idle_ns = ursa_now() - start;
	if (idle_ns <= max) {
		c->poll_ns = c->poll_ns * 2 < max ? c->poll_ns * 2 : max;
	} else {
		c->poll_ns = c->poll_ns / 2 > max / 8 ? c->poll_ns / 2 : max / 8;
	}
}

void ursa__sched_loop(struct ursa__core *c)
{
	c->poll_ns = c->rt->cfg.idle_poll_ns;
	for (;;) {
		ursa__stats_turn(&c->stats);
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
			URSA__STAT_SET(c->stats.tasks_runnable, c->runq_len);
			break;
		}
		if (!c->eventfd_armed)
			arm_eventfd(c);
		if (c->runq_len == 0 && !atomic_load_explicit(&c->inbox, memory_order_acquire)) {
			idle(c);
			continue;
		}
		if (c->pending == 0 && !ursa__ring_has_unsubmitted(&c->ring))
			continue; /* busy, and the kernel owes us nothing */
		enter(c, false);
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
