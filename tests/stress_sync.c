/* SPDX-License-Identifier: MIT */
/*
 * stress_sync: the task synchronisation primitives (mutex, semaphore,
 * condition, event, wait group, barrier, queue, future, task group) used by
 * tasks on both cores at once, with cancellations fired from the other core
 * while releases and wakes are in flight.  What must hold whatever the
 * interleaving:
 *
 *   - a grant that races a cancellation is never lost: semaphore units and
 *     the mutex come back (a bounded semaphore would refuse a duplicated
 *     unit), every notify that reports a waiter woken is seen by exactly
 *     that waiter, every queue item put is got exactly once;
 *   - exclusion holds: never two holders of the mutex (also while its
 *     starvation guard hands it over), never more holders than units;
 *   - waiters that are not cancelled are released (an event set, a wait
 *     group at zero, a future completed, a barrier's cycle complete) and see
 *     the state that released them; -ECANCELED comes only to tasks that were
 *     cancelled.
 *
 * A plain program (no Criterion), so that it also runs under TSan and
 * valgrind (tests/meson.build).  Exit status 0 means every check held.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ursa.h"

#define US 1000ull

static int failures;

static void check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

/* Problems seen inside tasks (tasks record, main checks). */
static atomic_int bad;

static void note_bad(const char *what)
{
	if (atomic_fetch_add(&bad, 1) < 10)
		fprintf(stderr, "stress_sync: %s\n", what);
}

/* xorshift: each task its own sequence, so runs differ only by interleaving. */
static unsigned rnd(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Yield a random few times (0..mask), to shift where a race lands. */
static void jitter(unsigned *s, unsigned mask)
{
	for (unsigned n = rnd(s) & mask; n; n--)
		ursa_yield();
}

/* ------------------------------------------------------ tasks, cancels */

/* One task of a test: its handle, whether it was cancelled, what it saw. */
struct worker {
	struct ursa_task *t;
	atomic_bool cancelled; /* set before ursa_cancel, so an -ECANCELED
	                          return can be checked against it */
	void *ctx;
	unsigned id;
	long done; /* rounds completed (written by the task, read after join) */
};

static bool spawn(struct worker *w, unsigned core, ursa_fn fn, void *ctx, unsigned id)
{
	w->ctx = ctx;
	w->id = id;
	w->done = 0;
	atomic_init(&w->cancelled, false);
	if (ursa_spawn_on(&w->t, core % ursa_ncores(), fn, w)) {
		note_bad("spawn failed");
		return false;
	}
	return true;
}

/* An -ECANCELED is only right for a task that was cancelled. */
static void expect_cancelled(struct worker *w, int rc, const char *what)
{
	if (rc != -ECANCELED || !atomic_load(&w->cancelled))
		note_bad(what);
}

/* Cancels ws[i] for every i in [first, n) step `step`, at random moments,
 * from whichever core it runs on; the workers go on meanwhile. */
struct cancel_job {
	struct worker *ws;
	unsigned first, n, step, seed;
};

static void *canceller(void *arg)
{
	struct cancel_job *j = arg;
	unsigned s = j->seed;

	for (unsigned i = j->first; i < j->n; i += j->step) {
		jitter(&s, 15);
		atomic_store(&j->ws[i].cancelled, true);
		ursa_cancel(j->ws[i].t);
	}
	return NULL;
}

/* Start a canceller on `core`; join it with join_all(&handle, 1). */
static struct ursa_task *start_canceller(struct cancel_job *j, unsigned core)
{
	struct ursa_task *t = NULL;

	if (ursa_spawn_on(&t, core % ursa_ncores(), canceller, j))
		note_bad("spawn canceller failed");
	return t;
}

static void join_task(struct ursa_task *t)
{
	if (t && ursa_join(t, NULL))
		note_bad("join failed");
}

static void join_workers(struct worker *ws, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		/* -ECANCELED: the task was cancelled before it ended; it still
		 * recorded what it saw. */
		int rc = ursa_join(ws[i].t, NULL);

		if (rc && !(rc == -ECANCELED && atomic_load(&ws[i].cancelled)))
			note_bad("worker join failed");
	}
}

/* --------------------------------------------- mutex and semaphore */

enum { HOLD_TASKS = 40, HOLD_ROUNDS = 150, SEM_UNITS = 3 };

struct hold {
	bool is_sem;
	struct ursa_mutex m;
	struct ursa_sem s;
	long counter; /* plain: only the mutex (or the 1-unit case) guards it */
	atomic_int holders;
	atomic_int max_holders;
};

static int take(struct hold *h)
{
	return h->is_sem ? ursa_sem_acquire(&h->s) : ursa_mutex_lock(&h->m);
}

static int give(struct hold *h)
{
	return h->is_sem ? ursa_sem_release(&h->s) : ursa_mutex_unlock(&h->m);
}

static void *holder(void *arg)
{
	struct worker *w = arg;
	struct hold *h = w->ctx;
	unsigned s = w->id * 2654435761u + 1;

	for (int i = 0; i < HOLD_ROUNDS; i++) {
		int rc = take(h), n;

		if (rc) {
			expect_cancelled(w, rc, "take failed in a task nobody cancelled");
			break; /* cancelled: every later wait fails too */
		}
		n = atomic_fetch_add(&h->holders, 1) + 1;
		for (int m = atomic_load(&h->max_holders); n > m;)
			if (atomic_compare_exchange_weak(&h->max_holders, &m, n))
				break;
		if (!h->is_sem)
			h->counter++;
		jitter(&s, 1); /* hold it across a switch now and then */
		atomic_fetch_sub(&h->holders, 1);
		if (give(h))
			note_bad("release refused: a unit was duplicated");
		w->done++;
	}
	return NULL;
}

struct hold_result {
	bool is_sem; /* in: the semaphore (else the mutex) */
	long rounds, counter;
	int max_holders;
	bool free_at_end;
};

static void *main_hold(void *arg)
{
	struct hold_result *r = arg;
	static struct worker ws[HOLD_TASKS];
	static struct hold hs;
	struct hold *h = &hs;
	struct cancel_job j0, j1;
	struct ursa_task *c0, *c1;

	h->is_sem = r->is_sem;
	ursa_mutex_init(&h->m);
	ursa_sem_init(&h->s, SEM_UNITS, true); /* bounded: a duplicate shows */
	h->counter = 0;
	atomic_init(&h->holders, 0);
	atomic_init(&h->max_holders, 0);
	for (unsigned i = 0; i < HOLD_TASKS; i++)
		spawn(&ws[i], i, holder, h, i);
	/* Cancel every third task, from both cores, while the others churn. */
	j0 = (struct cancel_job){ws, 0, HOLD_TASKS, 6, 11};
	j1 = (struct cancel_job){ws, 3, HOLD_TASKS, 6, 17};
	c0 = start_canceller(&j0, 1);
	c1 = start_canceller(&j1, 0);
	join_task(c0);
	join_task(c1);
	join_workers(ws, HOLD_TASKS);
	r->rounds = 0;
	for (unsigned i = 0; i < HOLD_TASKS; i++) {
		if (!atomic_load(&ws[i].cancelled) && ws[i].done != HOLD_ROUNDS)
			note_bad("an uncancelled holder did not finish its rounds");
		r->rounds += ws[i].done;
	}
	r->counter = h->counter;
	r->max_holders = atomic_load(&h->max_holders);
	r->free_at_end = h->is_sem ? ursa_sem_value(&h->s) == SEM_UNITS : !ursa_mutex_locked(&h->m);
	return NULL;
}

/*
 * The mutex's starvation guard under fire: tasks on both cores hold the mutex
 * for up to a few hundred microseconds of busy time and take it again at
 * once, so waiters pile up past the 1 ms bound and unlocks hand it over
 * (HANDED) while others barge, retry (WOKEN) and are cancelled.
 */
enum { GUARD_TASKS = 6, GUARD_ROUNDS = 40 };

struct guard_ctx {
	struct ursa_mutex m;
	long counter;
	atomic_int holders, max_holders;
};

static void *guard_holder(void *arg)
{
	struct worker *w = arg;
	struct guard_ctx *g = w->ctx;
	unsigned s = w->id * 2246822519u + 7;

	for (int i = 0; i < GUARD_ROUNDS; i++) {
		uint64_t until;
		int rc = ursa_mutex_lock(&g->m), n;

		if (rc) {
			expect_cancelled(w, rc, "lock failed in a task nobody cancelled");
			break;
		}
		n = atomic_fetch_add(&g->holders, 1) + 1;
		for (int m = atomic_load(&g->max_holders); n > m;)
			if (atomic_compare_exchange_weak(&g->max_holders, &m, n))
				break;
		g->counter++;
		until = ursa_now() + (rnd(&s) % 300) * US;
		while (ursa_now() < until)
			; /* busy: the others wait, spin or pile up */
		atomic_fetch_sub(&g->holders, 1);
		if (ursa_mutex_unlock(&g->m))
			note_bad("unlock refused");
		w->done++;
	}
	return NULL;
}

static void *main_guard(void *arg)
{
	struct hold_result *r = arg;
	static struct worker ws[GUARD_TASKS];
	static struct guard_ctx g;
	struct cancel_job j = {ws, 1, GUARD_TASKS, 3, 5};
	struct ursa_task *c;

	ursa_mutex_init(&g.m);
	g.counter = 0;
	atomic_init(&g.holders, 0);
	atomic_init(&g.max_holders, 0);
	for (unsigned i = 0; i < GUARD_TASKS; i++)
		spawn(&ws[i], i, guard_holder, &g, i);
	c = start_canceller(&j, 0);
	join_task(c);
	join_workers(ws, GUARD_TASKS);
	r->rounds = 0;
	for (unsigned i = 0; i < GUARD_TASKS; i++) {
		if (!atomic_load(&ws[i].cancelled) && ws[i].done != GUARD_ROUNDS)
			note_bad("an uncancelled holder did not finish its rounds");
		r->rounds += ws[i].done;
	}
	r->counter = g.counter;
	r->max_holders = atomic_load(&g.max_holders);
	r->free_at_end = !ursa_mutex_locked(&g.m);
	return NULL;
}

/* ------------------------------------------------------------ condition */

enum { COND_TASKS = 40 };

struct cond_ctx {
	struct ursa_mutex m;
	struct ursa_cond c;
	long woken_ok;          /* waits that returned 0 (under m) */
	atomic_long notified;   /* sum of what notify reported */
	atomic_int finished;
};

static void *cond_waiter(void *arg)
{
	struct worker *w = arg;
	struct cond_ctx *x = w->ctx;
	int rc = ursa_mutex_lock(&x->m);

	if (rc) {
		expect_cancelled(w, rc, "cond: lock failed uncancelled");
	} else {
		rc = ursa_cond_wait(&x->c, &x->m); /* m held again on return */
		if (rc == 0)
			x->woken_ok++;
		else
			expect_cancelled(w, rc, "cond: wait failed uncancelled");
		ursa_mutex_unlock(&x->m);
	}
	atomic_fetch_add(&x->finished, 1);
	return NULL;
}

/* Notify one or two at a time until every waiter has finished. */
static void *cond_notifier(void *arg)
{
	struct cond_ctx *x = arg;
	unsigned s = 99;

	while (atomic_load(&x->finished) < COND_TASKS) {
		atomic_fetch_add(&x->notified, ursa_cond_notify(&x->c, 1 + (rnd(&s) & 1)));
		jitter(&s, 3);
	}
	return NULL;
}

static void *main_cond(void *arg)
{
	long *mismatch = arg;
	static struct worker ws[COND_TASKS];
	static struct cond_ctx x;
	struct cancel_job j;
	struct ursa_task *n0, *n1, *c;

	ursa_mutex_init(&x.m);
	ursa_cond_init(&x.c);
	x.woken_ok = 0;
	atomic_init(&x.notified, 0);
	atomic_init(&x.finished, 0);
	for (unsigned i = 0; i < COND_TASKS; i++)
		spawn(&ws[i], i, cond_waiter, &x, i);
	if (ursa_spawn_on(&n0, 0, cond_notifier, &x) || ursa_spawn_on(&n1, 1, cond_notifier, &x))
		return (void *)1;
	j = (struct cancel_job){ws, 1, COND_TASKS, 3, 5};
	c = start_canceller(&j, 1);
	join_task(c);
	join_workers(ws, COND_TASKS);
	join_task(n0);
	join_task(n1);
	/* Every waiter a notify claimed returned 0, cancelled or not. */
	*mismatch = atomic_load(&x.notified) - x.woken_ok;
	return NULL;
}

/* ---------------------------------------------------------------- event */

enum { EVENT_ROUNDS = 40, EVENT_TASKS = 16 };

struct event_ctx {
	struct ursa_event e;
	atomic_bool was_set; /* stored before ursa_event_set */
};

static void *event_waiter(void *arg)
{
	struct worker *w = arg;
	struct event_ctx *x = w->ctx;
	int rc = ursa_event_wait(&x->e);

	if (rc == 0) {
		if (!atomic_load(&x->was_set))
			note_bad("event: a wait returned before the set");
		w->done = 1;
	} else {
		expect_cancelled(w, rc, "event: wait failed uncancelled");
	}
	return NULL;
}

static void *event_setter(void *arg)
{
	struct event_ctx *x = arg;
	unsigned s = (unsigned)(uintptr_t)x | 1;

	jitter(&s, 15);
	atomic_store(&x->was_set, true);
	ursa_event_set(&x->e);
	return NULL;
}

/* The waiter owns the event (on its stack) and returns as soon as it is
 * set: the setter on the other core must not touch it after that. */
static void *stack_event_setter(void *arg)
{
	ursa_event_set(arg);
	return NULL;
}

static void *stack_event_waiter(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		struct ursa_event e = URSA_EVENT_INIT;
		struct ursa_task *t;

		if (ursa_spawn_on(&t, (ursa_core() + 1) % ursa_ncores(), stack_event_setter, &e)) {
			note_bad("event: spawn failed");
			return NULL;
		}
		ursa_detach(t);
		if (ursa_event_wait(&e))
			note_bad("event: stack event wait failed");
	}
	return NULL;
}

static void *main_event(void *arg)
{
	long *seen = arg;
	static struct worker ws[EVENT_TASKS];
	static struct event_ctx x;
	struct ursa_task *st[2];

	for (unsigned r = 0; r < EVENT_ROUNDS; r++) {
		struct cancel_job j = {ws, r % 4, EVENT_TASKS, 4, r + 1};
		struct ursa_task *setter, *c;

		ursa_event_init(&x.e);
		atomic_init(&x.was_set, false);
		for (unsigned i = 0; i < EVENT_TASKS; i++)
			spawn(&ws[i], i + r, event_waiter, &x, i);
		if (ursa_spawn_on(&setter, r % 2, event_setter, &x))
			return (void *)1;
		c = start_canceller(&j, r + 1);
		join_task(c);
		join_task(setter);
		join_workers(ws, EVENT_TASKS);
		for (unsigned i = 0; i < EVENT_TASKS; i++) {
			if (!atomic_load(&ws[i].cancelled) && !ws[i].done)
				note_bad("event: an uncancelled waiter missed the set");
			*seen += ws[i].done;
		}
	}
	/* Events on waiters' stacks, set from the other core. */
	for (unsigned i = 0; i < 2; i++)
		if (ursa_spawn_on(&st[i], i, stack_event_waiter, NULL))
			return (void *)1;
	join_task(st[0]);
	join_task(st[1]);
	return NULL;
}

/* ----------------------------------------------------------- wait group */

enum { WG_ROUNDS = 30, WG_JOBS = 12, WG_WAITERS = 8 };

struct wg_ctx {
	struct ursa_waitgroup wg;
	atomic_int jobs_done;
};

static void *wg_job_body(void *arg)
{
	struct wg_ctx *x = arg;

	atomic_fetch_add(&x->jobs_done, 1);
	if (ursa_waitgroup_done(&x->wg))
		note_bad("waitgroup: done refused");
	return NULL;
}

/* Half the jobs finish on a task, half on a pool thread (a thread that is
 * not an ursa worker calling _done). */
static void *wg_job(void *arg)
{
	struct worker *w = arg;

	ursa_yield();
	if (w->id % 2)
		return wg_job_body(w->ctx);
	if (ursa_blocking(wg_job_body, w->ctx, NULL))
		note_bad("waitgroup: ursa_blocking failed");
	return NULL;
}

static void *wg_waiter(void *arg)
{
	struct worker *w = arg;
	struct wg_ctx *x = w->ctx;
	int rc = ursa_waitgroup_wait(&x->wg);

	if (rc == 0) {
		if (atomic_load(&x->jobs_done) != WG_JOBS)
			note_bad("waitgroup: a wait returned before every job was done");
		w->done = 1;
	} else {
		expect_cancelled(w, rc, "waitgroup: wait failed uncancelled");
	}
	return NULL;
}

static void *main_wg(void *arg)
{
	long *released = arg;
	static struct worker jobs[WG_JOBS], waiters[WG_WAITERS];
	static struct wg_ctx x;

	for (unsigned r = 0; r < WG_ROUNDS; r++) {
		struct cancel_job j = {waiters, r % 3, WG_WAITERS, 3, r + 7};
		struct ursa_task *c;

		ursa_waitgroup_init(&x.wg);
		atomic_init(&x.jobs_done, 0);
		if (ursa_waitgroup_add(&x.wg, WG_JOBS))
			return (void *)1;
		for (unsigned i = 0; i < WG_WAITERS; i++)
			spawn(&waiters[i], i + r, wg_waiter, &x, i);
		c = start_canceller(&j, r);
		for (unsigned i = 0; i < WG_JOBS; i++)
			spawn(&jobs[i], i + r + 1, wg_job, &x, i);
		join_task(c);
		join_workers(jobs, WG_JOBS);
		join_workers(waiters, WG_WAITERS);
		for (unsigned i = 0; i < WG_WAITERS; i++) {
			if (!atomic_load(&waiters[i].cancelled) && !waiters[i].done)
				note_bad("waitgroup: an uncancelled waiter was not released");
			*released += waiters[i].done;
		}
	}
	return NULL;
}

/* -------------------------------------------------------------- barrier */

enum { BAR_PARTIES = 6, BAR_CYCLES = 150 };

struct bar_ctx {
	struct ursa_barrier b;
	atomic_int arrived;                /* arrivals over all cycles */
	atomic_uint index_seen[BAR_CYCLES]; /* bit i: index i returned */
};

static void *bar_party(void *arg)
{
	struct worker *w = arg;
	struct bar_ctx *x = w->ctx;
	unsigned s = w->id + 3;

	for (int c = 0; c < BAR_CYCLES; c++) {
		int idx;

		jitter(&s, 3);
		atomic_fetch_add(&x->arrived, 1);
		idx = ursa_barrier_wait(&x->b);
		if (idx < 0 || idx >= BAR_PARTIES) {
			note_bad("barrier: bad index");
			return NULL;
		}
		if (atomic_load(&x->arrived) < (c + 1) * BAR_PARTIES)
			note_bad("barrier: left a cycle before every party arrived");
		if (atomic_fetch_or(&x->index_seen[c], 1u << idx) & (1u << idx))
			note_bad("barrier: an index given twice in one cycle");
		w->done++;
	}
	return NULL;
}

static void *main_barrier(void *arg)
{
	static struct worker ws[BAR_PARTIES];
	static struct bar_ctx x;
	int *complete = arg;

	ursa_barrier_init(&x.b, BAR_PARTIES);
	atomic_init(&x.arrived, 0);
	for (unsigned c = 0; c < BAR_CYCLES; c++)
		atomic_init(&x.index_seen[c], 0);
	for (unsigned i = 0; i < BAR_PARTIES; i++)
		spawn(&ws[i], i, bar_party, &x, i);
	join_workers(ws, BAR_PARTIES);
	*complete = ursa_barrier_n_waiting(&x.b) == 0;
	for (unsigned c = 0; c < BAR_CYCLES; c++)
		if (atomic_load(&x.index_seen[c]) != (1u << BAR_PARTIES) - 1)
			*complete = 0;
	return NULL;
}

/* ---------------------------------------------------------------- queue */

enum { Q_PRODUCERS = 8, Q_CONSUMERS = 8, Q_ITEMS = 200 };
#define Q_TOTAL (Q_PRODUCERS * Q_ITEMS)

struct q_ctx {
	struct ursa_queue *q;
	atomic_uchar put[Q_TOTAL];  /* 1: a put of this item returned 0 */
	atomic_uint got[Q_TOTAL];   /* gets that returned this item */
};

static void *q_producer(void *arg)
{
	struct worker *w = arg;
	struct q_ctx *x = w->ctx;
	unsigned s = w->id + 41;

	for (unsigned i = 0; i < Q_ITEMS; i++) {
		uintptr_t item = w->id * Q_ITEMS + i;
		int rc = ursa_queue_put(x->q, (void *)(item + 1));

		if (rc) {
			expect_cancelled(w, rc, "queue: put failed uncancelled");
			break;
		}
		atomic_store(&x->put[item], 1);
		jitter(&s, 1);
	}
	return NULL;
}

static void record_get(struct q_ctx *x, void *v)
{
	uintptr_t item = (uintptr_t)v - 1;

	if (item >= Q_TOTAL)
		note_bad("queue: got an item nobody put");
	else
		atomic_fetch_add(&x->got[item], 1);
}

static void *q_consumer(void *arg)
{
	struct worker *w = arg;
	struct q_ctx *x = w->ctx;
	unsigned s = w->id + 77;

	for (;;) {
		void *v;
		int rc = ursa_queue_get(x->q, &v);

		if (rc == -EPIPE)
			break; /* closed and drained */
		if (rc) {
			expect_cancelled(w, rc, "queue: get failed uncancelled");
			break;
		}
		record_get(x, v);
		w->done++;
		jitter(&s, 1);
	}
	return NULL;
}

static void *main_queue(void *arg)
{
	static struct worker prod[Q_PRODUCERS], cons[Q_CONSUMERS];
	static struct q_ctx x;
	long *lost_or_dup = arg;
	struct cancel_job jp = {prod, 1, Q_PRODUCERS, 3, 3};
	/* Consumers 0 and 1 (one per core) are never cancelled, so the
	 * producers that are not cancelled can always finish. */
	struct cancel_job jc = {cons, 2, Q_CONSUMERS, 2, 9};
	struct ursa_task *c0, *c1;
	void *v;

	if (ursa_queue_create(&x.q, 4, 0))
		return (void *)1;
	for (unsigned i = 0; i < Q_TOTAL; i++) {
		atomic_init(&x.put[i], 0);
		atomic_init(&x.got[i], 0);
	}
	for (unsigned i = 0; i < Q_CONSUMERS; i++)
		spawn(&cons[i], i, q_consumer, &x, i);
	for (unsigned i = 0; i < Q_PRODUCERS; i++)
		spawn(&prod[i], i + 1, q_producer, &x, i);
	c0 = start_canceller(&jp, 0);
	c1 = start_canceller(&jc, 1);
	join_task(c0);
	join_task(c1);
	join_workers(prod, Q_PRODUCERS);
	ursa_queue_close(x.q);
	join_workers(cons, Q_CONSUMERS);
	/* Whatever the cancelled consumers left behind. */
	while (ursa_queue_get_nowait(x.q, &v) == 0)
		record_get(&x, v);
	for (unsigned i = 0; i < Q_TOTAL; i++)
		if (atomic_load(&x.got[i]) != atomic_load(&x.put[i]))
			(*lost_or_dup)++;
	for (unsigned i = 0; i < Q_PRODUCERS; i++)
		if (!atomic_load(&prod[i].cancelled) && !atomic_load(&x.put[i * Q_ITEMS + Q_ITEMS - 1]))
			note_bad("queue: an uncancelled producer did not put everything");
	if (ursa_queue_destroy(x.q))
		return (void *)2;
	return NULL;
}

/* --------------------------------------------------------------- future */

enum { FUT_ROUNDS = 20, FUT_N = 16 };

struct fut_ctx {
	struct ursa_future f[FUT_N];
};

static void *fut_waiter(void *arg)
{
	struct worker *w = arg;
	struct fut_ctx *x = w->ctx;
	void *res = NULL;
	int rc = ursa_future_wait(&x->f[w->id / 2], &res);

	if (rc == 0) {
		if ((uintptr_t)res != w->id / 2 + 1)
			note_bad("future: wrong result");
		w->done = 1;
	} else {
		expect_cancelled(w, rc, "future: wait failed uncancelled");
	}
	return NULL;
}

/* Even futures are completed by a task, odd ones by a plain thread. */
static void *fut_task_setter(void *arg)
{
	struct fut_ctx *x = arg;
	unsigned s = 5;

	for (uintptr_t i = 0; i < FUT_N; i += 2) {
		jitter(&s, 7);
		if (ursa_future_set_result(&x->f[i], (void *)(i + 1)))
			note_bad("future: set refused");
	}
	return NULL;
}

static void *fut_thread_setter(void *arg)
{
	struct fut_ctx *x = arg;

	for (uintptr_t i = 1; i < FUT_N; i += 2) {
		sched_yield();
		if (ursa_future_set_result(&x->f[i], (void *)(i + 1)))
			note_bad("future: set refused");
	}
	return NULL;
}

/* A plain thread waits for a future a task completes. */
static void *fut_thread_waiter(void *arg)
{
	void *res = NULL;

	if (ursa_future_wait(arg, &res) != 0 || res != (void *)42)
		note_bad("future: a plain thread's wait failed");
	return NULL;
}

static void *main_future(void *arg)
{
	static struct worker ws[2 * FUT_N];
	static struct fut_ctx x;
	long *got = arg;

	for (unsigned r = 0; r < FUT_ROUNDS; r++) {
		struct cancel_job j = {ws, r % 3, 2 * FUT_N, 3, r + 13};
		struct ursa_future back = URSA_FUTURE_INIT;
		struct ursa_task *setter, *c;
		pthread_t th, tw;

		for (unsigned i = 0; i < FUT_N; i++)
			ursa_future_init(&x.f[i]);
		for (unsigned i = 0; i < 2 * FUT_N; i++)
			spawn(&ws[i], i + r, fut_waiter, &x, i);
		if (pthread_create(&th, NULL, fut_thread_setter, &x) ||
		    pthread_create(&tw, NULL, fut_thread_waiter, &back))
			return (void *)1;
		if (ursa_spawn_on(&setter, (r + 1) % 2, fut_task_setter, &x))
			return (void *)1;
		c = start_canceller(&j, r);
		join_task(c);
		join_task(setter);
		join_workers(ws, 2 * FUT_N);
		ursa_future_set_result(&back, (void *)42);
		pthread_join(th, NULL);
		pthread_join(tw, NULL);
		for (unsigned i = 0; i < 2 * FUT_N; i++) {
			if (!atomic_load(&ws[i].cancelled) && !ws[i].done)
				note_bad("future: an uncancelled waiter missed the result");
			*got += ws[i].done;
		}
		for (unsigned i = 0; i < FUT_N; i++)
			ursa_future_fini(&x.f[i]);
		ursa_future_fini(&back);
	}
	return NULL;
}

/* ---------------------------------------------------------- task group */

enum { GROUP_ROUNDS = 40, GROUP_CHILDREN = 8 };

struct group_ctx {
	atomic_int ended;  /* children that finished, however */
	atomic_bool failed;
	unsigned seed;
};

static void *group_sleeper(void *arg)
{
	struct group_ctx *x = arg;

	if (ursa_sleep(URSA_FOREVER) != -ECANCELED)
		note_bad("group: a sleeping child woke uncancelled");
	atomic_fetch_add(&x->ended, 1);
	return NULL;
}

static void *group_failer(void *arg)
{
	struct group_ctx *x = arg;
	int rc = ursa_sleep((x->seed % 50) * US);

	atomic_fetch_add(&x->ended, 1);
	if (rc == -ECANCELED)
		return NULL; /* the owner was cancelled first */
	atomic_store(&x->failed, true);
	return ursa_task_fail(-EIO, "child %u failed", x->seed);
}

/* The owner: every child must have ended when ursa_group_exit returns. */
static void *group_owner(void *arg)
{
	struct worker *w = arg;
	struct group_ctx *x = w->ctx;
	struct ursa_group g;
	int rc, spawned = 0;

	ursa_group_enter(&g);
	for (unsigned i = 0; i < GROUP_CHILDREN; i++) {
		ursa_fn fn = i == GROUP_CHILDREN / 2 ? group_failer : group_sleeper;

		if (ursa_group_spawn_on(&g, i % 2, fn, x) == 0)
			spawned++;
	}
	rc = ursa_group_exit(&g, NULL);
	if (atomic_load(&x->ended) != spawned)
		note_bad("group: exit returned while a child still ran");
	/* One child fails (a count of 1), unless the owner was cancelled first. */
	if (atomic_load(&x->failed) ? rc != 1 : rc != -ECANCELED)
		note_bad("group: wrong result from ursa_group_exit");
	if (rc == -ECANCELED && !atomic_load(&w->cancelled))
		note_bad("group: -ECANCELED in an owner nobody cancelled");
	w->done = 1;
	return NULL;
}

static void *main_group(void *arg)
{
	static struct worker ws[GROUP_ROUNDS];
	static struct group_ctx xs[GROUP_ROUNDS];
	int *owners_done = arg;
	/* Every other owner is also cancelled from the other core. */
	struct cancel_job j = {ws, 0, GROUP_ROUNDS, 2, 23};
	struct ursa_task *c;

	for (unsigned r = 0; r < GROUP_ROUNDS; r++) {
		atomic_init(&xs[r].ended, 0);
		atomic_init(&xs[r].failed, false);
		xs[r].seed = r * 7;
		spawn(&ws[r], r, group_owner, &xs[r], r);
	}
	c = start_canceller(&j, 1);
	join_task(c);
	join_workers(ws, GROUP_ROUNDS);
	for (unsigned r = 0; r < GROUP_ROUNDS; r++)
		*owners_done += (int)ws[r].done;
	return NULL;
}

/* ----------------------------------------------------------------- duels */

/*
 * The tightest race, one waiter at a time: W waits on core a; on core b, G
 * cancels W and grants (release, unlock, put, notify) a moment apart, in
 * random order and at random distances, so that the grant sometimes lands
 * while W, woken by the cancel, is deciding to withdraw.  Exactly one side
 * may win, and what was granted must end up somewhere: W holds it (0), or it
 * is still in the primitive (-ECANCELED).
 */
enum { DUEL_SEM, DUEL_MUTEX, DUEL_QUEUE, DUEL_COND, DUEL_KINDS };
enum { DUEL_MAX_DELAY = 1 << 18 }; /* spins; well past any wake natively */

struct duel {
	int kind;
	struct ursa_sem sem; /* 0 units; G releases one */
	struct ursa_mutex m; /* main holds it; G unlocks (hands it to W) */
	struct ursa_cond c;  /* W waits with m held by W */
	struct ursa_queue *q;
	struct ursa_task *w;
	atomic_bool ready; /* W is about to wait */
	unsigned seed;
	unsigned delay;    /* spins from cancel to grant, tuned by main_duel */
	bool cancel_first; /* G's choice this time */
	int w_rc;          /* W's result, read after the join */
	unsigned notified; /* cond: what G's notify reported */
};

/* A busy pause on the CPU (not a yield: the other core must keep going). */
static void spin(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

static void *duel_waiter(void *arg)
{
	struct duel *d = arg;
	void *v = NULL;
	int rc;

	switch (d->kind) {
	case DUEL_SEM:
		atomic_store(&d->ready, true);
		rc = ursa_sem_acquire(&d->sem);
		break;
	case DUEL_MUTEX:
		atomic_store(&d->ready, true);
		rc = ursa_mutex_lock(&d->m);
		if (rc == 0)
			ursa_mutex_unlock(&d->m);
		break;
	case DUEL_QUEUE:
		atomic_store(&d->ready, true);
		rc = ursa_queue_get(d->q, &v);
		if (rc == 0 && v != (void *)1)
			note_bad("duel: wrong queue item");
		break;
	default:
		rc = ursa_mutex_lock(&d->m);
		atomic_store(&d->ready, true);
		if (rc == 0) {
			rc = ursa_cond_wait(&d->c, &d->m);
			ursa_mutex_unlock(&d->m);
		}
		break;
	}
	d->w_rc = rc;
	return NULL;
}

static void *duel_granter(void *arg)
{
	struct duel *d = arg;
	unsigned s = d->seed;
	bool cancel_first = d->cancel_first = rnd(&s) % 4 != 0;

	while (!atomic_load(&d->ready))
		ursa_yield();
	spin(rnd(&s) & 8191); /* W parked, or not yet */
	if (cancel_first) {
		/* About as long as W takes to wake and withdraw (main_duel keeps
		 * d->delay there), give or take a quarter, so the grant often
		 * lands while W is deciding.  The cancel's wake of W leaves with
		 * this core's next submission, hence the yield. */
		ursa_cancel(d->w);
		ursa_yield(); /* a turn of this core's loop sends the kick */
		spin(d->delay - d->delay / 4 + rnd(&s) % (d->delay / 2 + 1));
	}
	switch (d->kind) {
	case DUEL_SEM:
		if (ursa_sem_release(&d->sem))
			note_bad("duel: release refused");
		break;
	case DUEL_MUTEX:
		ursa_mutex_unlock(&d->m);
		break;
	case DUEL_QUEUE:
		if (ursa_queue_put_nowait(d->q, (void *)1))
			note_bad("duel: put refused");
		break;
	default:
		d->notified = ursa_cond_notify(&d->c, 1);
		break;
	}
	if (!cancel_first) {
		spin(rnd(&s) & 2047);
		ursa_cancel(d->w);
	}
	return NULL;
}

struct duel_stats {
	unsigned rounds;       /* in: duels per kind */
	long granted, withdrawn, broken;
};

static void *main_duel(void *arg)
{
	struct duel_stats *st = arg;
	static struct duel d;
	unsigned delay[DUEL_KINDS];

	for (unsigned k = 0; k < DUEL_KINDS; k++)
		delay[k] = 4096;

	for (unsigned i = 0; i < st->rounds * DUEL_KINDS; i++) {
		struct ursa_task *g;
		unsigned a = i % 2;
		void *v;
		bool ok;
		int rc;

		d.kind = (int)(i % DUEL_KINDS);
		d.seed = i * 2654435761u + 7;
		d.w_rc = 1;
		d.notified = 0;
		d.delay = delay[d.kind];
		atomic_init(&d.ready, false);
		ursa_sem_init(&d.sem, 0, false);
		ursa_mutex_init(&d.m);
		ursa_cond_init(&d.c);
		if (ursa_queue_create(&d.q, 0, 0))
			return (void *)1;
		if (d.kind == DUEL_MUTEX && ursa_mutex_trylock(&d.m))
			return (void *)2;
		if (ursa_spawn_on(&d.w, a, duel_waiter, &d) ||
		    ursa_spawn_on(&g, 1 - a, duel_granter, &d))
			return (void *)3;
		join_task(g);
		/* -ECANCELED: W was cancelled before it ended (it recorded w_rc). */
		rc = ursa_join(d.w, NULL);
		if (rc && rc != -ECANCELED)
			note_bad("duel: join failed");
		switch (d.kind) {
		case DUEL_SEM:
			ok = ursa_sem_value(&d.sem) == (d.w_rc == 0 ? 0u : 1u);
			break;
		case DUEL_MUTEX:
			ok = !ursa_mutex_locked(&d.m);
			break;
		case DUEL_QUEUE:
			ok = d.w_rc == 0 ? ursa_queue_empty(d.q)
			                 : ursa_queue_get_nowait(d.q, &v) == 0 && v == (void *)1;
			break;
		default:
			ok = (d.w_rc == 0) == (d.notified == 1);
			break;
		}
		if (d.w_rc != 0 && d.w_rc != -ECANCELED)
			ok = false;
		/* Withdrawn: the grant came too late to race, so come sooner next
		 * time; granted: it came too soon, so later. */
		if (d.cancel_first && d.w_rc == 0 && delay[d.kind] < DUEL_MAX_DELAY)
			delay[d.kind] += delay[d.kind] / 8 + 1;
		else if (d.cancel_first && d.w_rc != 0)
			delay[d.kind] -= delay[d.kind] / 8;
		if (!ok)
			st->broken++;
		else if (d.w_rc == 0)
			st->granted++;
		else
			st->withdrawn++;
		ursa_queue_close(d.q);
		if (ursa_queue_destroy(d.q))
			return (void *)4;
	}
	if (getenv("STRESS_SYNC_VERBOSE"))
		printf("duel delays: sem %u mutex %u queue %u cond %u\n", delay[0], delay[1], delay[2],
		       delay[3]);
	return NULL;
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct ursa_opts o = {.cores = 2};
	/* Duels per primitive: argv[1] (tests/meson.build passes fewer under
	 * valgrind, where each costs far more). */
	struct duel_stats ds = {.rounds = argc > 1 ? (unsigned)atoi(argv[1]) : 3000};
	void *res;
	int rc;

	res = (void *)1;
	rc = ursa_run(main_duel, &ds, &o, &res);
	check(rc == 0 && !res, "duels: run");
	check(ds.broken == 0, "duels: a grant racing a cancel is held by the waiter or left "
	                      "in the primitive, never lost");
	printf("duels: %ld granted, %ld withdrawn, %ld broken\n", ds.granted, ds.withdrawn,
	       ds.broken);

	for (int sem = 0; sem < 2; sem++) {
		for (int round = 0; round < 2; round++) {
			struct hold_result r = {.is_sem = sem};

			res = (void *)1;
			rc = ursa_run(main_hold, &r, &o, &res);
			check(rc == 0 && !res, sem ? "semaphore: runs" : "mutex: runs");
			check(r.free_at_end, sem ? "semaphore: every unit came back"
			                         : "mutex: free at the end");
			if (sem) {
				check(r.max_holders <= SEM_UNITS, "semaphore: never more holders than units");
			} else {
				check(r.max_holders == 1, "mutex: never two holders");
				check(r.counter == r.rounds, "mutex: every increment counted");
			}
			check(r.rounds > 0, "some rounds ran");
		}
	}
	{
		struct hold_result r = {0};

		res = (void *)1;
		rc = ursa_run(main_guard, &r, &o, &res);
		check(rc == 0 && !res && r.free_at_end, "mutex guard: runs, free at the end");
		check(r.max_holders == 1 && r.counter == r.rounds,
		      "mutex guard: never two holders, every increment counted");
	}
	for (int round = 0; round < 3; round++) {
		long mismatch = -1;

		res = (void *)1;
		rc = ursa_run(main_cond, &mismatch, &o, &res);
		check(rc == 0 && !res, "cond: runs");
		check(mismatch == 0, "cond: every waiter a notify claimed was woken");
	}
	{
		long seen = 0;

		res = (void *)1;
		rc = ursa_run(main_event, &seen, &o, &res);
		check(rc == 0 && !res && seen > 0, "event: every uncancelled waiter saw the set");
	}
	{
		long released = 0;

		res = (void *)1;
		rc = ursa_run(main_wg, &released, &o, &res);
		check(rc == 0 && !res && released > 0, "waitgroup: released at zero, from tasks and "
		                                       "pool threads");
	}
	{
		int complete = 0;

		res = (void *)1;
		rc = ursa_run(main_barrier, &complete, &o, &res);
		check(rc == 0 && !res && complete, "barrier: every cycle complete across cores");
	}
	for (int round = 0; round < 2; round++) {
		long lost_or_dup = 0;

		res = (void *)1;
		rc = ursa_run(main_queue, &lost_or_dup, &o, &res);
		check(rc == 0 && !res, "queue: runs");
		check(lost_or_dup == 0, "queue: every item put was got exactly once");
	}
	{
		long got = 0;

		res = (void *)1;
		rc = ursa_run(main_future, &got, &o, &res);
		check(rc == 0 && !res && got > 0, "future: completed from tasks and threads, awaited "
		                                  "on both cores");
	}
	{
		int owners = 0;

		res = (void *)1;
		rc = ursa_run(main_group, &owners, &o, &res);
		check(rc == 0 && !res && owners == GROUP_ROUNDS,
		      "group: exit waits for every child, failure and cancel racing");
	}
	check(atomic_load(&bad) == 0, "no task saw anything wrong");
	printf("stress_sync: %d failed\n", failures);
	return failures ? 1 : 0;
}
