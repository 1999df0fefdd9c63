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
	(void)!ursa_join(t, NULL);
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
	struct seen *s = arg;
	struct ursa_queue *fifo, *lifo, *prio;
	static const uintptr_t in[] = {5, 1, 4, 1, 3}, prio_out[] = {1, 1, 3, 4, 5};
	void *v;

	REQUIRE(s, ursa_queue_create(&fifo, 3, 0) == 0, 0);
	REQUIRE(s, ursa_queue_create(&lifo, 0, URSA_QUEUE_LIFO) == 0, 0);
	REQUIRE(s, ursa_queue_create_prio(&prio, 0, cmp_uint) == 0, 0);
	EXPECT_EQ(s, ursa_queue_get_nowait(fifo, &v), -EAGAIN);
	for (uintptr_t i = 1; i <= 3; i++) {
		EXPECT_EQ(s, ursa_queue_put_nowait(fifo, P(i)), 0);
		EXPECT_EQ(s, ursa_queue_put_nowait(lifo, P(i)), 0);
	}
	EXPECT_EQ(s, ursa_queue_put_nowait(fifo, P(4)), -EAGAIN); /* full */
	EXPECT_EQ(s, ursa_queue_full(fifo), 1);
	EXPECT_EQ(s, ursa_queue_size(fifo), 3);
	for (uintptr_t i = 1; i <= 3; i++) {
		EXPECT_EQ(s, ursa_queue_get(fifo, &v), 0);
		EXPECT_EQ(s, U(v), i); /* 1 2 3 */
	}
	for (uintptr_t i = 3; i >= 1; i--) {
		EXPECT_EQ(s, ursa_queue_get(lifo, &v), 0);
		EXPECT_EQ(s, U(v), i); /* 3 2 1 */
	}
	/* Priority: smallest first; equal keys in put order (they are equal
	 * under cmp, distinct pointers would be too: use the same value). */
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(s, ursa_queue_put(prio, P(in[i])), 0);
	for (int i = 0; i < 5; i++) {
		EXPECT_EQ(s, ursa_queue_get(prio, &v), 0);
		EXPECT_EQ(s, U(v), prio_out[i]);
	}
	EXPECT_EQ(s, ursa_queue_empty(prio), 1);
	EXPECT_EQ(s, ursa_queue_destroy(fifo), 0);
	EXPECT_EQ(s, ursa_queue_destroy(lifo), 0);
	EXPECT_EQ(s, ursa_queue_destroy(prio), 0);
	return NULL;
}

Test(queue, fifo_lifo_and_priority_orders_and_nowait_errors)
{
	struct seen s = {0};

	run_on(1, main_orders, &s);
	ASSERT_SEEN(&s);
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
	struct seen *s = arg;
	struct keyed k[8] = {{2, 0}, {1, 1}, {2, 2}, {1, 3}, {0, 4}, {2, 5}, {1, 6}, {0, 7}};
	/* gets interleaved with puts: {1,3} first, then 4 arrives (key 0)... */
	static const int want[8] = {1, 4, 3, 6, 7, 0, 2, 5};
	struct ursa_queue *q;
	void *v;

	/* bounded: grows to 4, putters wait */
	REQUIRE(s, ursa_queue_create_prio(&q, 4, cmp_key) == 0, 0);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(s, ursa_queue_put(q, &k[i]), 0);
	for (int i = 0; i < 8; i++) {
		REQUIRE(s, ursa_queue_get(q, &v) == 0, i);
		EXPECT_EQ(s, ((struct keyed *)v)->id, want[i]); /* the id get i returned */
		if (i + 4 < 8)
			EXPECT_EQ(s, ursa_queue_put(q, &k[i + 4]), 0);
	}
	ursa_queue_destroy(q);
	return NULL;
}

Test(queue, priority_comparator_receives_the_items)
{
	struct seen s = {0};

	run_on(1, main_prio_stable, &s);
	ASSERT_SEEN(&s);
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
	struct seen *s = arg;
	struct ursa_queue *q;
	struct putter p[3];
	struct ursa_task *t[3];
	void *v;

	REQUIRE(s, ursa_queue_create(&q, 1, 0) == 0, 0);
	EXPECT_EQ(s, ursa_queue_put(q, P(100)), 0);
	for (int i = 0; i < 3; i++) {
		p[i] = (struct putter){q, (uintptr_t)i + 101, 1};
		REQUIRE(s, ursa_spawn(&t[i], put_record, &p[i]) == 0, i);
		settle(); /* queued in this order */
	}
	EXPECT_EQ(s, p[0].rc, 1); /* still waiting */
	EXPECT_EQ(s, ursa_queue_put_nowait(q, P(999)), -EAGAIN); /* cannot jump the line */
	for (uintptr_t i = 0; i < 4; i++) {
		EXPECT_EQ(s, ursa_queue_get(q, &v), 0);
		EXPECT_EQ(s, U(v), 100 + i); /* 100 101 102 103 */
	}
	for (int i = 0; i < 3; i++) {
		JOIN_OK(s, t[i]);
		EXPECT_EQ(s, p[i].rc, 0);
	}
	EXPECT_EQ(s, ursa_queue_size(q), 0);
	ursa_queue_destroy(q);
	return NULL;
}

Test(queue, bounded_put_waits_and_putters_are_served_in_order)
{
	struct seen s = {0};

	run_on(1, main_bounded, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------- 4 producers, 4 consumers */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 20000

struct mpmc {
	struct seen s;
	struct ursa_queue *q;
	atomic_uchar seen[PRODUCERS * PER_PRODUCER];
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
		EXPECT_EQ(&a->m->s,
		          ursa_queue_put(a->m->q, P((uintptr_t)a->id * PER_PRODUCER + (uintptr_t)i + 1)),
		          0);
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

		EXPECT(&m->s, i < PRODUCERS * PER_PRODUCER, i);
		if (i < PRODUCERS * PER_PRODUCER)
			atomic_fetch_add(&m->seen[i], 1);
		atomic_fetch_or(&m->cores_got, 1 << ursa_core());
	}
	EXPECT_EQ(&m->s, rc, -EPIPE);
	return NULL;
}

static void *main_mpmc(void *arg)
{
	struct mpmc *m = arg;
	struct prod_arg pa[PRODUCERS];
	struct ursa_task *t[PRODUCERS + CONSUMERS];

	REQUIRE(&m->s, ursa_queue_create(&m->q, 16, 0) == 0, 0);
	atomic_store(&m->producers_left, PRODUCERS);
	for (int i = 0; i < CONSUMERS; i++)
		REQUIRE(&m->s, ursa_spawn_on(&t[i], (unsigned)i % 2, consumer, m) == 0, i);
	for (int i = 0; i < PRODUCERS; i++) {
		pa[i] = (struct prod_arg){m, i};
		REQUIRE(&m->s,
		        ursa_spawn_on(&t[CONSUMERS + i], (unsigned)(i + 1) % 2, producer, &pa[i]) == 0,
		        i);
	}
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		JOIN_OK(&m->s, t[i]);
	EXPECT_EQ(&m->s, ursa_queue_destroy(m->q), 0);
	/* Every item exactly once (the value: the first one seen otherwise). */
	for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
		EXPECT(&m->s, m->seen[i] == 1, i);
	EXPECT_EQ(&m->s, m->cores_got, 3); /* consumers on both cores got items */
	return NULL;
}

Test(queue, four_producers_four_consumers_across_cores_lose_and_duplicate_nothing,
     .timeout = 60)
{
	static struct mpmc m;

	run_on(2, main_mpmc, &m);
	ASSERT_SEEN(&m.s);
}

/* ------------------------------------------------------------- close */

static void *main_close(void *arg)
{
	struct seen *s = arg;
	struct ursa_queue *q, *full;
	struct putter g = {NULL, 0, 1}, p = {NULL, 7, 1};
	struct ursa_task *tg, *tp;
	void *v;

	REQUIRE(s, ursa_queue_create(&q, 0, 0) == 0, 0);
	REQUIRE(s, ursa_queue_create(&full, 1, 0) == 0, 0);
	EXPECT_EQ(s, ursa_queue_put(full, P(1)), 0);
	g.q = q;
	p.q = full;
	REQUIRE(s, ursa_spawn_on(&tg, 1, get_record, &g) == 0, 0);
	REQUIRE(s, ursa_spawn_on(&tp, 1, put_record, &p) == 0, 0);
	nap(10 * MS);
	ursa_queue_close(q);
	ursa_queue_close(full);
	reap(tg);
	reap(tp);
	EXPECT_EQ(s, g.rc, -EPIPE);                     /* waiting getter: EOF */
	EXPECT_EQ(s, p.rc, -EPIPE);                     /* waiting putter: refused */
	EXPECT_EQ(s, ursa_queue_put(q, P(1)), -EPIPE);  /* closed: refused */
	EXPECT_EQ(s, ursa_queue_get(full, &v), 0);      /* drains what is there ... */
	EXPECT_EQ(s, U(v), 1);
	EXPECT_EQ(s, ursa_queue_get(full, &v), -EPIPE); /* ... then EOF */
	EXPECT_EQ(s, ursa_queue_get_nowait(full, &v), -EPIPE);
	EXPECT_EQ(s, ursa_queue_closed(full), 1);
	ursa_queue_close(full);                         /* idempotent */
	EXPECT_EQ(s, ursa_queue_destroy(q), 0);
	EXPECT_EQ(s, ursa_queue_destroy(full), 0);
	return NULL;
}

Test(queue, close_wakes_waiters_and_getters_drain_before_eof)
{
	struct seen s = {0};

	run_on(2, main_close, &s);
	ASSERT_SEEN(&s);
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
	struct seen *s = arg;
	struct worker w = {NULL, 0};
	struct ursa_task *t[3];

	REQUIRE(s, ursa_queue_create(&w.q, 0, 0) == 0, 1);
	EXPECT_EQ(s, ursa_queue_join(w.q), 0); /* nothing unfinished */
	EXPECT_EQ(s, ursa_queue_task_done(w.q), -EINVAL);
	for (int i = 0; i < 3; i++)
		REQUIRE(s, ursa_spawn_on(&t[i], (unsigned)i % 2, qworker, &w) == 0, 2);
	for (uintptr_t i = 0; i < 20; i++)
		REQUIRE(s, ursa_queue_put(w.q, P(i + 1)) == 0, 3);
	EXPECT_EQ(s, ursa_queue_join(w.q), 0);
	EXPECT_EQ(s, atomic_load(&w.processed), 20);
	ursa_queue_close(w.q);
	for (int i = 0; i < 3; i++)
		reap(t[i]);
	ursa_queue_destroy(w.q);
	return NULL;
}

Test(queue, join_waits_until_every_item_is_marked_done)
{
	struct seen s = {0};

	run_on(2, main_join, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------------- cancel consistency */

static void *main_cancel_getter(void *arg)
{
	struct seen *s = arg;
	struct ursa_queue *q;
	struct putter a = {NULL, 0, 1}, b = {NULL, 0, 1};
	struct ursa_task *ta, *tb;
	void *v;

	REQUIRE(s, ursa_queue_create(&q, 2, 0) == 0, 0);
	a.q = b.q = q;
	/* A getter cancelled while parked: the next put goes to b, not lost. */
	REQUIRE(s, ursa_spawn_on(&ta, ursa_ncores() - 1, get_record, &a) == 0, 0);
	REQUIRE(s, ursa_spawn_on(&tb, 0, get_record, &b) == 0, 0);
	nap(10 * MS);
	ursa_cancel(ta);
	EXPECT_EQ(s, ursa_join(ta, NULL), -ECANCELED);
	EXPECT_EQ(s, a.rc, -ECANCELED);
	EXPECT_EQ(s, ursa_queue_put(q, P(5)), 0);
	reap(tb);
	EXPECT_EQ(s, b.rc, 0);
	EXPECT_EQ(s, b.item, 5);
	/* A putter cancelled while the queue is full: its item never enters. */
	EXPECT_EQ(s, ursa_queue_put(q, P(1)), 0);
	EXPECT_EQ(s, ursa_queue_put(q, P(2)), 0);
	a = (struct putter){q, 3, 1};
	REQUIRE(s, ursa_spawn_on(&ta, ursa_ncores() - 1, put_record, &a) == 0, 0);
	nap(10 * MS);
	ursa_cancel(ta);
	reap(ta);
	EXPECT_EQ(s, a.rc, -ECANCELED);
	EXPECT_EQ(s, ursa_queue_size(q), 2);
	EXPECT_EQ(s, ursa_queue_get(q, &v), 0);
	EXPECT_EQ(s, U(v), 1);
	EXPECT_EQ(s, ursa_queue_get(q, &v), 0);
	EXPECT_EQ(s, U(v), 2);
	EXPECT_EQ(s, ursa_queue_get_nowait(q, &v), -EAGAIN);
	EXPECT_EQ(s, ursa_queue_destroy(q), 0); /* no waiter left behind */
	return NULL;
}

Test(queue, cancelled_getter_and_putter_leave_the_queue_consistent)
{
	for (unsigned cores = 1; cores <= 2; cores++) {
		struct seen s = {0};

		run_on(cores, main_cancel_getter, &s);
		ASSERT_SEEN(&s);
	}
}

/* An item handed to a getter that is cancelled before it runs is returned. */
static void *main_item_wins(void *arg)
{
	struct seen *s = arg;
	struct ursa_queue *q;
	struct putter g = {NULL, 0, 1};
	struct ursa_task *t;

	REQUIRE(s, ursa_queue_create(&q, 0, 0) == 0, 1);
	g.q = q;
	REQUIRE(s, ursa_spawn(&t, get_record, &g) == 0, 2);
	settle();
	EXPECT_EQ(s, ursa_queue_put(q, P(77)), 0); /* handed to the parked getter */
	ursa_cancel(t);
	reap(t);
	EXPECT_EQ(s, g.rc, 0); /* the getter lost its item to the cancel */
	EXPECT_EQ(s, (int)g.item, 77);
	EXPECT_EQ(s, (int)ursa_queue_size(q), 0);
	ursa_queue_destroy(q);
	return NULL;
}

Test(queue, an_item_handed_over_wins_over_a_racing_cancel)
{
	struct seen s = {0};

	run_on(1, main_item_wins, &s);
	ASSERT_SEEN(&s);
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
	struct seen *s = arg;
	struct ursa_queue *q;
	pthread_t th;
	void *v;
	uintptr_t expect = 1;
	int rc;

	REQUIRE(s, ursa_queue_create(&q, 0, 0) == 0, 0);
	REQUIRE(s, pthread_create(&th, NULL, thread_puts, q) == 0, 0);
	while ((rc = ursa_queue_get(q, &v)) == 0) {
		EXPECT_EQ(s, U(v), expect); /* in order */
		expect++;
	}
	EXPECT_EQ(s, rc, -EPIPE);
	EXPECT_EQ(s, expect - 1, 10000);
	(void)!ursa_blocking(join_thread, &th, NULL);
	EXPECT_EQ(s, ursa_queue_destroy(q), 0);
	return NULL;
}

Test(queue, unbounded_queue_grows_and_a_foreign_thread_can_feed_it)
{
	struct seen s = {0};

	run_on(1, main_grow, &s);
	ASSERT_SEEN(&s);
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
	struct seen *x = arg;
	struct ursa_queue *a, *b, *full;
	struct putter p;
	struct ursa_task *t;
	struct ursa_scope s;
	void *v;

	REQUIRE(x, ursa_queue_create(&a, 0, 0) == 0, 0);
	REQUIRE(x, ursa_queue_create(&b, 0, 0) == 0, 0);
	REQUIRE(x, ursa_queue_create(&full, 1, 0) == 0, 0);
	EXPECT_EQ(x, ursa_queue_put(full, P(9)), 0);
	struct ursa_queue_sel arms[3] = {
		{.q = a, .op = URSA_QUEUE_SEL_GET},
		{.q = b, .op = URSA_QUEUE_SEL_GET},
		{.q = full, .op = URSA_QUEUE_SEL_PUT, .item = P(10)},
	};
	/* Nothing ready: wait; an item arrives on b from another core. */
	p = (struct putter){b, 42, 1};
	REQUIRE(x, ursa_spawn_on(&t, ursa_ncores() - 1, delayed_put, &p) == 0, 2);
	EXPECT_EQ(x, ursa_queue_select(arms, 3), 1);
	EXPECT_EQ(x, (int)U(arms[1].item), 42);
	EXPECT_EQ(x, arms[1].res, 0);
	reap(t);
	/* Ready at once: the lowest ready index wins. */
	EXPECT_EQ(x, ursa_queue_put(a, P(1)), 0);
	EXPECT_EQ(x, ursa_queue_put(b, P(2)), 0);
	EXPECT_EQ(x, ursa_queue_select(arms, 3), 0);
	EXPECT_EQ(x, (int)U(arms[0].item), 1);
	/* A put arm completes when a getter makes room. */
	arms[0].q = arms[1].q = NULL;
	REQUIRE(x, ursa_queue_get(b, &v) == 0, 4);
	p = (struct putter){full, 0, 1};
	REQUIRE(x, ursa_spawn_on(&t, ursa_ncores() - 1, get_record, &p) == 0, 5);
	EXPECT_EQ(x, ursa_queue_select(arms, 3), 2);
	reap(t);
	EXPECT_EQ(x, p.item, 9);
	EXPECT_EQ(x, ursa_queue_get(full, &v), 0);
	EXPECT_EQ(x, U(v), 10);
	/* A deadline: no arm completes, no node is left behind. */
	arms[0].q = a;
	arms[2].q = NULL;
	ursa_scope_enter(&s, ursa_now() + 5 * MS);
	EXPECT_EQ(x, ursa_queue_select(arms, 3), -ETIMEDOUT);
	ursa_scope_exit(&s);
	/* A closed queue's arm completes with -EPIPE. */
	ursa_queue_close(a);
	EXPECT_EQ(x, ursa_queue_select(arms, 3), 0);
	EXPECT_EQ(x, arms[0].res, -EPIPE);
	arms[0].q = NULL;
	EXPECT_EQ(x, ursa_queue_select(arms, 3), -EINVAL); /* nothing enabled */
	/* -EBUSY: a select left a node in a queue. */
	EXPECT_EQ(x, ursa_queue_destroy(a), 0);
	EXPECT_EQ(x, ursa_queue_destroy(b), 0);
	EXPECT_EQ(x, ursa_queue_destroy(full), 0);
	return NULL;
}

Test(queue, select_completes_exactly_one_arm)
{
	struct seen s = {0};

	run_on(2, main_select, &s);
	ASSERT_SEEN(&s);
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
	struct seen *s = arg;
	static unsigned char got[2 * SEL_ITEMS];
	struct ursa_queue *q[2];
	struct putter p[2];
	struct ursa_task *t[2];
	int open = 2;

	for (int i = 0; i < 2; i++) {
		REQUIRE(s, ursa_queue_create(&q[i], 4, 0) == 0, i);
		p[i] = (struct putter){q[i], (uintptr_t)i * SEL_ITEMS, 0};
		REQUIRE(s, ursa_spawn_on(&t[i], 1, fill, &p[i]) == 0, i);
	}
	struct ursa_queue_sel arms[2] = {{.q = q[0], .op = URSA_QUEUE_SEL_GET},
	                                 {.q = q[1], .op = URSA_QUEUE_SEL_GET}};
	while (open) {
		int i = ursa_queue_select(arms, 2);

		REQUIRE(s, i >= 0, i);
		if (arms[i].res == -EPIPE) {
			arms[i].q = NULL;
			open--;
			continue;
		}
		got[U(arms[i].item)]++;
	}
	for (int i = 0; i < 2; i++) {
		JOIN_OK(s, t[i]);
		EXPECT_EQ(s, p[i].rc, 0);
		EXPECT_EQ(s, ursa_queue_destroy(q[i]), 0);
	}
	/* Every item exactly once (the value: the first one seen otherwise). */
	for (int i = 0; i < 2 * SEL_ITEMS; i++)
		EXPECT(s, got[i] == 1, i);
	return NULL;
}

Test(queue, select_over_two_queues_fed_from_another_core_loses_nothing)
{
	struct seen s = {0};

	run_on(2, main_select_stress, &s);
	ASSERT_SEEN(&s);
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
	struct seen *x = arg;
	struct gen_state s = {5, 0, 0, 0};
	struct ursa_gen *g;
	void *v;
	uintptr_t next = 1;
	int rc;

	REQUIRE(x, ursa_gen_create(&g, count_to, &s) == 0, 0);
	settle();
	EXPECT_EQ(x, s.started, 0); /* lazy: the body runs at the first next */
	while ((rc = ursa_gen_next(g, &v)) > 0)
		EXPECT_EQ(x, U(v), next++);
	EXPECT_EQ(x, next, 6);
	EXPECT_EQ(x, rc, 0);                     /* 0: exhausted */
	EXPECT_EQ(x, ursa_gen_next(g, &v), 0);   /* still 0 */
	ursa_gen_destroy(g);
	/* A failing body: next reports its error. */
	s = (struct gen_state){-1, 0, 0, 0};
	REQUIRE(x, ursa_gen_create(&g, count_to, &s) == 0, 0);
	EXPECT_EQ(x, ursa_gen_next(g, &v), -EIO);
	ursa_gen_destroy(g);
	return NULL;
}

Test(queue, generator_yields_lazily_in_order_then_ends)
{
	struct seen s = {0};

	run_on(1, main_gen, &s);
	ASSERT_SEEN(&s);
}

static void *main_gen_abandon(void *arg)
{
	struct seen *x = arg;
	static struct gen_state s = {1000000, 0, 0, 0};
	struct ursa_gen *g;
	void *v;

	REQUIRE(x, ursa_gen_create(&g, count_to, &s) == 0, 1);
	for (int i = 0; i < 3; i++)
		REQUIRE(x, ursa_gen_next(g, &v) == 1, 2);
	EXPECT_EQ(x, ursa_gen_destroy(g), 0); /* abandon after 3 of a million */
	EXPECT_EQ(x, s.cleaned_up, 1); /* the producer's clean-up did not run */
	EXPECT_EQ(x, s.yield_rc, -ECANCELED);
	return NULL;
}

Test(queue, closing_an_abandoned_generator_cancels_its_producer_cleanly)
{
	struct seen s = {0};

	run_on(1, main_gen_abandon, &s);
	ASSERT_SEEN(&s);
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
	struct seen *x = arg;
	struct ursa_gen *g;
	struct ursa_scope s;
	uintptr_t next = 1;
	void *v;
	int rc;

	REQUIRE(x, ursa_gen_create(&g, slow_values, NULL) == 0, 0);
	ursa_scope_enter(&s, ursa_now() + 2 * MS);
	EXPECT_EQ(x, ursa_gen_next(g, &v), -ETIMEDOUT); /* times out while 1 is being made */
	ursa_scope_exit(&s);
	while ((rc = ursa_gen_next(g, &v)) > 0)
		EXPECT_EQ(x, U(v), next++); /* 1 was not lost */
	EXPECT_EQ(x, next, 4);
	EXPECT_EQ(x, rc, 0);
	ursa_gen_destroy(g);
	return NULL;
}

Test(queue, generator_consumer_timing_out_loses_no_value)
{
	struct seen s = {0};

	run_on(1, main_gen_cancel_consumer, &s);
	ASSERT_SEEN(&s);
}
