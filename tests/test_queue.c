/* SPDX-License-Identifier: MIT */
/*
 * Queues (FIFO, LIFO, priority; bounded and not), close, task_done/join,
 * select over several queues, and generators.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

TestSuite(queue, .timeout = 30);

#define P(x) ((void *)(uintptr_t)(x))
#define U(p) ((uintptr_t)(p))

/* Join a task whose outcome the test reads from what it recorded. */
static void reap(struct ursa_task *t)
{
	if (ursa_join(t, NULL) != 0)
		return;
}

static void settle(void)
{
	for (int i = 0; i < 4; i++)
		ursa_yield();
}

/* ------------------------------------------------------------ basics */

static int cmp_uint(const void *a, const void *b)
{
	return (U(a) > U(b)) - (U(a) < U(b));
}

static void *main_orders(void *arg)
{
	uintptr_t *out = arg;
	struct ursa_queue *fifo, *lifo, *prio;
	void *v;
	int k = 0;

	if (ursa_queue_create(&fifo, 3, 0) || ursa_queue_create(&lifo, 0, URSA_QUEUE_LIFO) ||
	    ursa_queue_create_prio(&prio, 0, cmp_uint))
		return P(1);
	out[k++] = (uintptr_t)ursa_queue_get_nowait(fifo, &v); /* -EAGAIN */
	for (uintptr_t i = 1; i <= 3; i++)
		if (ursa_queue_put_nowait(fifo, P(i)) || ursa_queue_put_nowait(lifo, P(i)))
			return P(2);
	out[k++] = (uintptr_t)ursa_queue_put_nowait(fifo, P(4)); /* full: -EAGAIN */
	out[k++] = ursa_queue_full(fifo);
	out[k++] = ursa_queue_size(fifo);
	for (int i = 0; i < 3; i++) {
		if (ursa_queue_get(fifo, &v))
			return P(3);
		out[k++] = U(v); /* 1 2 3 */
	}
	for (int i = 0; i < 3; i++) {
		if (ursa_queue_get(lifo, &v))
			return P(4);
		out[k++] = U(v); /* 3 2 1 */
	}
	/* Priority: smallest first; equal keys in put order (they are equal
	 * under cmp, distinct pointers would be too: use the same value). */
	uintptr_t in[] = {5, 1, 4, 1, 3};
	for (int i = 0; i < 5; i++)
		if (ursa_queue_put(prio, P(in[i])))
			return P(5);
	for (int i = 0; i < 5; i++) {
		if (ursa_queue_get(prio, &v))
			return P(6);
		out[k++] = U(v); /* 1 1 3 4 5 */
	}
	out[k++] = ursa_queue_empty(prio);
	if (ursa_queue_destroy(fifo) || ursa_queue_destroy(lifo) || ursa_queue_destroy(prio))
		return P(7);
	return NULL;
}

Test(queue, fifo_lifo_and_priority_orders_and_nowait_errors)
{
	uintptr_t out[17];
	uintptr_t want[17] = {(uintptr_t)-EAGAIN, (uintptr_t)-EAGAIN, 1, 3, 1, 2, 3, 3, 2, 1,
	                      1, 1, 3, 4, 5, 1};

	cr_assert_null(run_on(1, main_orders, out));
	for (int i = 0; i < 16; i++)
		cr_assert_eq(out[i], want[i], "out[%d] = %ld, want %ld", i, (long)out[i],
		             (long)want[i]);
}

/* The comparator is passed the items themselves (not pointers to them, as
 * qsort's is): cmp_key reads them as struct keyed.  Ties come out in put
 * order. */
struct keyed {
	int key, id;
};

static int cmp_key(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	return (x->key > y->key) - (x->key < y->key);
}

static void *main_prio_stable(void *arg)
{
	int *out = arg;
	struct keyed k[8] = {{2, 0}, {1, 1}, {2, 2}, {1, 3}, {0, 4}, {2, 5}, {1, 6}, {0, 7}};
	struct ursa_queue *q;
	void *v;

	if (ursa_queue_create_prio(&q, 4, cmp_key)) /* bounded: grows to 4, putters wait */
		return P(1);
	for (int i = 0; i < 4; i++)
		if (ursa_queue_put(q, &k[i]))
			return P(2);
	for (int i = 0; i < 8; i++) {
		if (ursa_queue_get(q, &v))
			return P(3);
		out[i] = ((struct keyed *)v)->id;
		if (i + 4 < 8 && ursa_queue_put(q, &k[i + 4]))
			return P(4);
	}
	ursa_queue_destroy(q);
	return NULL;
}

Test(queue, priority_comparator_receives_the_items)
{
	int out[8];
	/* gets interleaved with puts: {1,3} first, then 4 arrives (key 0)... */
	int want[8] = {1, 4, 3, 6, 7, 0, 2, 5};

	cr_assert_null(run_on(1, main_prio_stable, out));
	for (int i = 0; i < 8; i++)
		cr_assert_eq(out[i], want[i], "get %d returned id %d", i, out[i]);
}

/* ---------------------------------------------------- bounded, parking */

struct putter {
	struct ursa_queue *q;
	uintptr_t item;
	int rc;
};

static void *put_record(void *arg)
{
	struct putter *p = arg;

	p->rc = ursa_queue_put(p->q, P(p->item));
	return NULL;
}

static void *get_record(void *arg)
{
	struct putter *p = arg;
	void *v = NULL;

	p->rc = ursa_queue_get(p->q, &v);
	p->item = U(v);
	return NULL;
}

static void *main_bounded(void *arg)
{
	uintptr_t *out = arg;
	struct ursa_queue *q;
	struct putter p[3];
	struct ursa_task *t[3];
	void *v;
	int k = 0;

	if (ursa_queue_create(&q, 1, 0) || ursa_queue_put(q, P(100)))
		return P(1);
	for (int i = 0; i < 3; i++) {
		p[i] = (struct putter){q, (uintptr_t)i + 101, 1};
		if (ursa_spawn(&t[i], put_record, &p[i]))
			return P(2);
		settle(); /* queued in this order */
	}
	out[k++] = p[0].rc; /* still waiting: 1 */
	out[k++] = (uintptr_t)ursa_queue_put_nowait(q, P(999)); /* cannot jump the line */
	for (int i = 0; i < 4; i++) {
		if (ursa_queue_get(q, &v))
			return P(3);
		out[k++] = U(v); /* 100 101 102 103 */
	}
	for (int i = 0; i < 3; i++)
		if (ursa_join(t[i], NULL) || p[i].rc)
			return P(4);
	out[k++] = ursa_queue_size(q);
	ursa_queue_destroy(q);
	return NULL;
}

Test(queue, bounded_put_waits_and_putters_are_served_in_order)
{
	uintptr_t out[7];

	cr_assert_null(run_on(1, main_bounded, out));
	cr_assert_eq(out[0], 1);
	cr_assert_eq((int)out[1], -EAGAIN);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(out[2 + i], 100 + (uintptr_t)i);
	cr_assert_eq(out[6], 0);
}

/* ------------------------------------------- 4 producers, 4 consumers */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 20000

struct mpmc {
	struct ursa_queue *q;
	atomic_uchar seen[PRODUCERS * PER_PRODUCER];
	atomic_int errors;
	atomic_int producers_left;
	atomic_int cores_got;
};

struct prod_arg {
	struct mpmc *m;
	int id;
};

static void *producer(void *arg)
{
	struct prod_arg *a = arg;

	for (int i = 0; i < PER_PRODUCER; i++)
		if (ursa_queue_put(a->m->q, P((uintptr_t)a->id * PER_PRODUCER + (uintptr_t)i + 1)))
			atomic_fetch_add(&a->m->errors, 1);
	if (atomic_fetch_sub(&a->m->producers_left, 1) == 1)
		ursa_queue_close(a->m->q); /* the last one out closes */
	return NULL;
}

static void *consumer(void *arg)
{
	struct mpmc *m = arg;
	void *v;
	int rc;

	while ((rc = ursa_queue_get(m->q, &v)) == 0) {
		uintptr_t i = U(v) - 1;

		if (i >= PRODUCERS * PER_PRODUCER)
			atomic_fetch_add(&m->errors, 1);
		else
			atomic_fetch_add(&m->seen[i], 1);
		atomic_fetch_or(&m->cores_got, 1 << ursa_core());
	}
	if (rc != -EPIPE)
		atomic_fetch_add(&m->errors, 1);
	return NULL;
}

static void *main_mpmc(void *arg)
{
	struct mpmc *m = arg;
	struct prod_arg pa[PRODUCERS];
	struct ursa_task *t[PRODUCERS + CONSUMERS];
	int bad = 0;

	if (ursa_queue_create(&m->q, 16, 0))
		return P(1);
	atomic_store(&m->producers_left, PRODUCERS);
	for (int i = 0; i < CONSUMERS; i++)
		bad += ursa_spawn_on(&t[i], (unsigned)i % 2, consumer, m) != 0;
	for (int i = 0; i < PRODUCERS; i++) {
		pa[i] = (struct prod_arg){m, i};
		bad += ursa_spawn_on(&t[CONSUMERS + i], (unsigned)(i + 1) % 2, producer, &pa[i]) != 0;
	}
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		bad += ursa_join(t[i], NULL) != 0;
	bad += ursa_queue_destroy(m->q) != 0;
	return P(bad);
}

Test(queue, four_producers_four_consumers_across_cores_lose_and_duplicate_nothing,
     .timeout = 60)
{
	static struct mpmc m;

	cr_assert_null(run_on(2, main_mpmc, &m));
	cr_assert_eq(m.errors, 0);
	int bad = -1;

	/* One assertion, not one per item: Criterion's --full-stats reports
	 * every assertion through a pipe. */
	for (int i = 0; i < PRODUCERS * PER_PRODUCER && bad < 0; i++)
		if (m.seen[i] != 1)
			bad = i;
	cr_assert_eq(bad, -1, "item %d seen %d times", bad, bad < 0 ? 1 : m.seen[bad]);
	cr_assert_eq(m.cores_got, 3, "consumers on both cores got items");
}

/* ------------------------------------------------------------- close */

static void *main_close(void *arg)
{
	int *out = arg;
	struct ursa_queue *q, *full;
	struct putter g = {NULL, 0, 1}, p = {NULL, 7, 1};
	struct ursa_task *tg, *tp;
	void *v;

	if (ursa_queue_create(&q, 0, 0) || ursa_queue_create(&full, 1, 0) ||
	    ursa_queue_put(full, P(1)))
		return P(1);
	g.q = q;
	p.q = full;
	if (ursa_spawn_on(&tg, 1, get_record, &g) || ursa_spawn_on(&tp, 1, put_record, &p))
		return P(2);
	nap(10 * MS);
	ursa_queue_close(q);
	ursa_queue_close(full);
	reap(tg);
	reap(tp);
	out[0] = g.rc;                       /* waiting getter: EOF */
	out[1] = p.rc;                       /* waiting putter: refused */
	out[2] = ursa_queue_put(q, P(1));    /* closed: refused */
	out[3] = ursa_queue_get(full, &v);   /* drains what is there ... */
	out[4] = (int)U(v);
	out[5] = ursa_queue_get(full, &v);   /* ... then EOF */
	out[6] = ursa_queue_get_nowait(full, &v);
	out[7] = ursa_queue_closed(full);
	ursa_queue_close(full);              /* idempotent */
	out[8] = ursa_queue_destroy(q);
	out[9] = ursa_queue_destroy(full);
	return NULL;
}

Test(queue, close_wakes_waiters_and_getters_drain_before_eof)
{
	int out[10];

	cr_assert_null(run_on(2, main_close, out));
	cr_assert_eq(out[0], -EPIPE);
	cr_assert_eq(out[1], -EPIPE);
	cr_assert_eq(out[2], -EPIPE);
	cr_assert_eq(out[3], 0);
	cr_assert_eq(out[4], 1);
	cr_assert_eq(out[5], -EPIPE);
	cr_assert_eq(out[6], -EPIPE);
	cr_assert_eq(out[7], 1);
	cr_assert_eq(out[8], 0);
	cr_assert_eq(out[9], 0);
}

/* ------------------------------------------------------ task_done, join */

struct worker {
	struct ursa_queue *q;
	atomic_int processed;
};

static void *qworker(void *arg)
{
	struct worker *w = arg;
	void *v;

	while (ursa_queue_get(w->q, &v) == 0) {
		nap(1 * MS);
		atomic_fetch_add(&w->processed, 1);
		ursa_queue_task_done(w->q);
	}
	return NULL;
}

static void *main_join(void *arg)
{
	int *out = arg;
	struct worker w = {NULL, 0};
	struct ursa_task *t[3];

	if (ursa_queue_create(&w.q, 0, 0))
		return P(1);
	out[0] = ursa_queue_join(w.q); /* nothing unfinished */
	out[1] = ursa_queue_task_done(w.q);
	for (int i = 0; i < 3; i++)
		if (ursa_spawn_on(&t[i], (unsigned)i % 2, qworker, &w))
			return P(2);
	for (uintptr_t i = 0; i < 20; i++)
		if (ursa_queue_put(w.q, P(i + 1)))
			return P(3);
	out[2] = ursa_queue_join(w.q);
	out[3] = atomic_load(&w.processed);
	ursa_queue_close(w.q);
	for (int i = 0; i < 3; i++)
		reap(t[i]);
	ursa_queue_destroy(w.q);
	return NULL;
}

Test(queue, join_waits_until_every_item_is_marked_done)
{
	int out[4];

	cr_assert_null(run_on(2, main_join, out));
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], -EINVAL);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(out[3], 20, "join returned with %d of 20 processed", out[3]);
}

/* ------------------------------------------------- cancel consistency */

static void *main_cancel_getter(void *arg)
{
	int *out = arg;
	struct ursa_queue *q;
	struct putter a = {NULL, 0, 1}, b = {NULL, 0, 1};
	struct ursa_task *ta, *tb;
	void *v;

	if (ursa_queue_create(&q, 2, 0))
		return P(1);
	a.q = b.q = q;
	/* A getter cancelled while parked: the next put goes to b, not lost. */
	if (ursa_spawn_on(&ta, ursa_ncores() - 1, get_record, &a) ||
	    ursa_spawn_on(&tb, 0, get_record, &b))
		return P(2);
	nap(10 * MS);
	ursa_cancel(ta);
	out[0] = ursa_join(ta, NULL);
	out[1] = a.rc;
	out[2] = ursa_queue_put(q, P(5));
	reap(tb);
	out[3] = b.rc;
	out[4] = (int)b.item;
	/* A putter cancelled while the queue is full: its item never enters. */
	if (ursa_queue_put(q, P(1)) || ursa_queue_put(q, P(2)))
		return P(3);
	a = (struct putter){q, 3, 1};
	if (ursa_spawn_on(&ta, ursa_ncores() - 1, put_record, &a))
		return P(4);
	nap(10 * MS);
	ursa_cancel(ta);
	reap(ta);
	out[5] = a.rc;
	out[6] = (int)ursa_queue_size(q);
	out[7] = ursa_queue_get(q, &v) == 0 && U(v) == 1;
	out[8] = ursa_queue_get(q, &v) == 0 && U(v) == 2;
	out[9] = ursa_queue_get_nowait(q, &v);
	out[10] = ursa_queue_destroy(q); /* no waiter left behind */
	return NULL;
}

Test(queue, cancelled_getter_and_putter_leave_the_queue_consistent)
{
	for (unsigned cores = 1; cores <= 2; cores++) {
		int out[11];

		cr_assert_null(run_on(cores, main_cancel_getter, out));
		cr_assert_eq(out[0], -ECANCELED);
		cr_assert_eq(out[1], -ECANCELED);
		cr_assert_eq(out[2], 0);
		cr_assert_eq(out[3], 0);
		cr_assert_eq(out[4], 5);
		cr_assert_eq(out[5], -ECANCELED);
		cr_assert_eq(out[6], 2);
		cr_assert(out[7]);
		cr_assert(out[8]);
		cr_assert_eq(out[9], -EAGAIN);
		cr_assert_eq(out[10], 0);
	}
}

/* An item handed to a getter that is cancelled before it runs is returned. */
static void *main_item_wins(void *arg)
{
	int *out = arg;
	struct ursa_queue *q;
	struct putter g = {NULL, 0, 1};
	struct ursa_task *t;

	if (ursa_queue_create(&q, 0, 0))
		return P(1);
	g.q = q;
	if (ursa_spawn(&t, get_record, &g))
		return P(2);
	settle();
	out[0] = ursa_queue_put(q, P(77)); /* handed to the parked getter */
	ursa_cancel(t);
	reap(t);
	out[1] = g.rc;
	out[2] = (int)g.item;
	out[3] = (int)ursa_queue_size(q);
	ursa_queue_destroy(q);
	return NULL;
}

Test(queue, an_item_handed_over_wins_over_a_racing_cancel)
{
	int out[4];

	cr_assert_null(run_on(1, main_item_wins, out));
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 0, "the getter lost its item to the cancel");
	cr_assert_eq(out[2], 77);
	cr_assert_eq(out[3], 0);
}

/* Unbounded queues grow; a foreign thread may put without waiting. */
static void *thread_puts(void *arg)
{
	for (uintptr_t i = 0; i < 10000; i++)
		while (ursa_queue_put_nowait(arg, P(i + 1)) != 0)
			usleep(100);
	ursa_queue_close(arg);
	return NULL;
}

static void *join_thread(void *arg)
{
	pthread_join(*(pthread_t *)arg, NULL);
	return NULL;
}

static void *main_grow(void *arg)
{
	int *out = arg;
	struct ursa_queue *q;
	pthread_t th;
	void *v;
	uintptr_t expect = 1;
	int rc;

	if (ursa_queue_create(&q, 0, 0))
		return P(1);
	if (pthread_create(&th, NULL, thread_puts, q))
		return P(2);
	while ((rc = ursa_queue_get(q, &v)) == 0)
		if (U(v) != expect++)
			out[0]++;
	out[1] = rc;
	out[2] = (int)expect - 1;
	(void)!ursa_blocking(join_thread, &th, NULL);
	out[3] = ursa_queue_destroy(q);
	return NULL;
}

Test(queue, unbounded_queue_grows_and_a_foreign_thread_can_feed_it)
{
	int out[4] = {0};

	cr_assert_null(run_on(1, main_grow, out));
	cr_assert_eq(out[0], 0, "items out of order");
	cr_assert_eq(out[1], -EPIPE);
	cr_assert_eq(out[2], 10000);
	cr_assert_eq(out[3], 0);
}

/* ------------------------------------------------------------- select */

static void *delayed_put(void *arg)
{
	struct putter *p = arg;

	nap(5 * MS);
	p->rc = ursa_queue_put(p->q, P(p->item));
	return NULL;
}

static void *main_select(void *arg)
{
	int *out = arg;
	struct ursa_queue *a, *b, *full;
	struct putter p;
	struct ursa_task *t;
	struct ursa_scope s;
	void *v;

	if (ursa_queue_create(&a, 0, 0) || ursa_queue_create(&b, 0, 0) ||
	    ursa_queue_create(&full, 1, 0) || ursa_queue_put(full, P(9)))
		return P(1);
	struct ursa_queue_sel arms[3] = {
		{.q = a, .op = URSA_QUEUE_SEL_GET},
		{.q = b, .op = URSA_QUEUE_SEL_GET},
		{.q = full, .op = URSA_QUEUE_SEL_PUT, .item = P(10)},
	};
	/* Nothing ready: wait; an item arrives on b from another core. */
	p = (struct putter){b, 42, 1};
	if (ursa_spawn_on(&t, ursa_ncores() - 1, delayed_put, &p))
		return P(2);
	out[0] = ursa_queue_select(arms, 3);
	out[1] = (int)U(arms[1].item);
	out[2] = arms[1].res;
	reap(t);
	/* Ready at once: the lowest ready index wins. */
	if (ursa_queue_put(a, P(1)) || ursa_queue_put(b, P(2)))
		return P(3);
	out[3] = ursa_queue_select(arms, 3);
	out[4] = (int)U(arms[0].item);
	/* A put arm completes when a getter makes room. */
	arms[0].q = arms[1].q = NULL;
	if (ursa_queue_get(b, &v))
		return P(4);
	p = (struct putter){full, 0, 1};
	if (ursa_spawn_on(&t, ursa_ncores() - 1, get_record, &p))
		return P(5);
	out[5] = ursa_queue_select(arms, 3);
	reap(t);
	out[6] = (int)p.item; /* 9 */
	out[7] = ursa_queue_get(full, &v) == 0 && U(v) == 10;
	/* A deadline: no arm completes, no node is left behind. */
	arms[0].q = a;
	arms[2].q = NULL;
	ursa_scope_enter(&s, ursa_now() + 5 * MS);
	out[8] = ursa_queue_select(arms, 3);
	ursa_scope_exit(&s);
	/* A closed queue's arm completes with -EPIPE. */
	ursa_queue_close(a);
	out[9] = ursa_queue_select(arms, 3);
	out[10] = arms[0].res;
	arms[0].q = NULL;
	out[11] = ursa_queue_select(arms, 3); /* nothing enabled */
	out[12] = ursa_queue_destroy(a) | ursa_queue_destroy(b) | ursa_queue_destroy(full);
	return NULL;
}

Test(queue, select_completes_exactly_one_arm)
{
	int out[13];

	cr_assert_null(run_on(2, main_select, out));
	cr_assert_eq(out[0], 1);
	cr_assert_eq(out[1], 42);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(out[3], 0);
	cr_assert_eq(out[4], 1);
	cr_assert_eq(out[5], 2);
	cr_assert_eq(out[6], 9);
	cr_assert(out[7]);
	cr_assert_eq(out[8], -ETIMEDOUT);
	cr_assert_eq(out[9], 0);
	cr_assert_eq(out[10], -EPIPE);
	cr_assert_eq(out[11], -EINVAL);
	cr_assert_eq(out[12], 0, "a select left a node in a queue");
}

/* Two producers on two queues, one selecting consumer: every item once. */
#define SEL_ITEMS 5000

static void *fill(void *arg)
{
	struct putter *p = arg;

	for (uintptr_t i = 0; i < SEL_ITEMS; i++)
		if (ursa_queue_put(p->q, P(p->item + i)))
			p->rc = -1;
	ursa_queue_close(p->q);
	return NULL;
}

static void *main_select_stress(void *arg)
{
	unsigned char *seen = arg;
	struct ursa_queue *q[2];
	struct putter p[2];
	struct ursa_task *t[2];
	int open = 2, bad = 0;

	for (int i = 0; i < 2; i++) {
		if (ursa_queue_create(&q[i], 4, 0))
			return P(1);
		p[i] = (struct putter){q[i], (uintptr_t)i * SEL_ITEMS, 0};
		bad += ursa_spawn_on(&t[i], 1, fill, &p[i]) != 0;
	}
	struct ursa_queue_sel arms[2] = {{.q = q[0], .op = URSA_QUEUE_SEL_GET},
	                                 {.q = q[1], .op = URSA_QUEUE_SEL_GET}};
	while (open) {
		int i = ursa_queue_select(arms, 2);

		if (i < 0)
			return P(2);
		if (arms[i].res == -EPIPE) {
			arms[i].q = NULL;
			open--;
			continue;
		}
		seen[U(arms[i].item)]++;
	}
	for (int i = 0; i < 2; i++)
		bad += ursa_join(t[i], NULL) != 0 || p[i].rc != 0 || ursa_queue_destroy(q[i]) != 0;
	return P(bad);
}

Test(queue, select_over_two_queues_fed_from_another_core_loses_nothing)
{
	static unsigned char seen[2 * SEL_ITEMS];

	cr_assert_null(run_on(2, main_select_stress, seen));
	int bad = -1;

	for (int i = 0; i < 2 * SEL_ITEMS && bad < 0; i++)
		if (seen[i] != 1)
			bad = i;
	cr_assert_eq(bad, -1, "item %d seen %d times", bad, bad < 0 ? 1 : seen[bad]);
}

/* --------------------------------------------------------- generators */

struct gen_state {
	int limit;
	int cleaned_up;
	int yield_rc;
	int started;
};

static int count_to(struct ursa_gen *g, void *arg)
{
	struct gen_state *s = arg;

	s->started = 1;
	for (int i = 1; i <= s->limit; i++) {
		s->yield_rc = ursa_gen_yield(g, P(i));
		if (s->yield_rc)
			break;
	}
	s->cleaned_up = 1;
	return s->limit < 0 ? -EIO : 0;
}

static void *main_gen(void *arg)
{
	int *out = arg;
	struct gen_state s = {5, 0, 0, 0};
	struct ursa_gen *g;
	void *v;
	int rc, k = 0;

	if (ursa_gen_create(&g, count_to, &s))
		return P(1);
	settle();
	out[k++] = s.started; /* lazy: not before the first next */
	while ((rc = ursa_gen_next(g, &v)) > 0)
		out[k++] = (int)U(v);
	out[k++] = rc;                     /* 0: exhausted */
	out[k++] = ursa_gen_next(g, &v);   /* still 0 */
	ursa_gen_destroy(g);
	/* A failing body: next reports its error. */
	s = (struct gen_state){-1, 0, 0, 0};
	if (ursa_gen_create(&g, count_to, &s))
		return P(2);
	out[k++] = ursa_gen_next(g, &v);
	ursa_gen_destroy(g);
	return NULL;
}

Test(queue, generator_yields_lazily_in_order_then_ends)
{
	int out[9];

	cr_assert_null(run_on(1, main_gen, out));
	cr_assert_eq(out[0], 0, "the body ran before anyone asked");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(out[1 + i], i + 1);
	cr_assert_eq(out[6], 0);
	cr_assert_eq(out[7], 0);
	cr_assert_eq(out[8], -EIO);
}

static void *main_gen_abandon(void *arg)
{
	int *out = arg;
	static struct gen_state s = {1000000, 0, 0, 0};
	struct ursa_gen *g;
	void *v;

	if (ursa_gen_create(&g, count_to, &s))
		return P(1);
	for (int i = 0; i < 3; i++)
		if (ursa_gen_next(g, &v) != 1)
			return P(2);
	out[0] = ursa_gen_destroy(g); /* abandon after 3 of a million */
	out[1] = s.cleaned_up;
	out[2] = s.yield_rc;
	return NULL;
}

Test(queue, closing_an_abandoned_generator_cancels_its_producer_cleanly)
{
	int out[3];

	cr_assert_null(run_on(1, main_gen_abandon, out));
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 1, "the producer's clean-up did not run");
	cr_assert_eq(out[2], -ECANCELED);
}

/* A consumer cancelled inside next loses no value. */
static int slow_values(struct ursa_gen *g, void *arg)
{
	(void)arg;
	for (uintptr_t i = 1; i <= 3; i++) {
		nap(10 * MS);
		if (ursa_gen_yield(g, P(i)))
			return 0;
	}
	return 0;
}

static void *main_gen_cancel_consumer(void *arg)
{
	int *out = arg;
	struct ursa_gen *g;
	struct ursa_scope s;
	void *v;
	int k = 0, rc;

	if (ursa_gen_create(&g, slow_values, NULL))
		return P(1);
	ursa_scope_enter(&s, ursa_now() + 2 * MS);
	out[k++] = ursa_gen_next(g, &v); /* times out while 1 is being made */
	ursa_scope_exit(&s);
	while ((rc = ursa_gen_next(g, &v)) > 0)
		out[k++] = (int)U(v);
	out[k++] = rc;
	ursa_gen_destroy(g);
	return NULL;
}

Test(queue, generator_consumer_timing_out_loses_no_value)
{
	int out[5];

	cr_assert_null(run_on(1, main_gen_cancel_consumer, out));
	cr_assert_eq(out[0], -ETIMEDOUT);
	cr_assert_eq(out[1], 1);
	cr_assert_eq(out[2], 2);
	cr_assert_eq(out[3], 3);
	cr_assert_eq(out[4], 0);
}
