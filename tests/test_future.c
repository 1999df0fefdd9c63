/* SPDX-License-Identifier: MIT */
/*
 * Futures: set once from a task, a pool thread or a foreign pthread; awaited
 * by many tasks (and by plain threads); errors with messages, cancellation,
 * done callbacks, run_in_executor.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

TestSuite(future, .timeout = 30);

#define WAITERS 1000

struct many {
	struct seen s;
	struct ursa_future f;
	atomic_int got;        /* waiters that returned from the wait */
	atomic_int parked;     /* waiters that had started waiting */
};

static void *future_waiter(void *arg)
{
	struct many *m = arg;
	void *r = NULL;
	int rc;

	atomic_fetch_add(&m->parked, 1);
	rc = ursa_future_wait(&m->f, &r);
	EXPECT_EQ(&m->s, rc, 0);
	EXPECT(&m->s, r == (void *)0xfeed, (intptr_t)r);
	atomic_fetch_add(&m->got, 1);
	return NULL;
}

static void *foreign_setter(void *arg)
{
	struct many *m = arg;

	/* Wait (politely) until every task is parked on the future. */
	while (atomic_load(&m->parked) < WAITERS)
		usleep(1000);
	usleep(5000);
	EXPECT_EQ(&m->s, ursa_future_set_result(&m->f, (void *)0xfeed), 0);
	EXPECT_EQ(&m->s, ursa_future_set_result(&m->f, (void *)0xbad), -EALREADY); /* set once */
	return NULL;
}

static void *join_thread(void *arg)
{
	pthread_join(*(pthread_t *)arg, NULL);
	return NULL;
}

static void *main_many(void *arg)
{
	struct many *m = arg;
	struct ursa_spawn_opts o = {.flags = URSA_SPAWN_DETACHED, .stack_size = 32 * 1024};
	pthread_t th;

	for (unsigned i = 0; i < WAITERS; i++)
		REQUIRE(&m->s, ursa_spawn_ex(NULL, i % ursa_ncores(), future_waiter, m, &o) == 0, i);
	REQUIRE(&m->s, pthread_create(&th, NULL, foreign_setter, m) == 0, 0);
	/* Wait for the result like everyone else, then for the thread. */
	EXPECT_EQ(&m->s, ursa_future_wait(&m->f, NULL), 0);
	(void)!ursa_blocking(join_thread, &th, NULL);
	return NULL;
}

Test(future, set_from_a_foreign_pthread_wakes_1000_waiting_tasks, .timeout = 60)
{
	static struct many m = {.f = URSA_FUTURE_INIT};

	/* ursa_run returns only when every (detached) waiter has ended: how
	 * many got the result is known only then. */
	run_on(2, main_many, &m);
	ASSERT_SEEN(&m.s);
	cr_assert_eq(m.got, WAITERS, "%d of %d waiters got the result", m.got, WAITERS);
	ursa_future_fini(&m.f);
}

/* Errors carry a message; cancellation is an outcome too. */
static void *main_error_cancel(void *arg)
{
	struct seen *s = arg;
	struct ursa_future e = URSA_FUTURE_INIT, c, p = URSA_FUTURE_INIT;
	void *r = (void *)7;

	ursa_future_init(&c);
	EXPECT_EQ(s, ursa_future_result(&p, &r), -EAGAIN); /* pending */
	EXPECT_EQ(s, ursa_future_done(&p), 0);
	EXPECT_EQ(s, ursa_future_set_error(&e, -EIO, "disk %d failed", 3), 0);
	EXPECT_EQ(s, ursa_future_wait(&e, &r), -EIO);
	EXPECT(s, strcmp(ursa_future_message(&e), "disk 3 failed") == 0, 0); /* message lost */
	EXPECT(s, r == (void *)7, 0); /* nothing stored on error */
	EXPECT_EQ(s, ursa_future_cancel(&c), 0);
	EXPECT_EQ(s, ursa_future_wait(&c, NULL), -ECANCELED);
	EXPECT_EQ(s, ursa_future_done(&c), 1);
	EXPECT_EQ(s, ursa_future_cancel(&c), -EALREADY);
	EXPECT_EQ(s, ursa_future_set_error(&p, 5, NULL), 0); /* not negative: -EINVAL */
	EXPECT_EQ(s, ursa_future_result(&p, NULL), -EINVAL);
	EXPECT(s, ursa_future_message(&p)[0] == '\0', 0);
	ursa_future_fini(&e);
	ursa_future_fini(&c);
	ursa_future_fini(&p);
	return NULL;
}

Test(future, error_with_message_and_cancellation_are_outcomes)
{
	struct seen s = {0};

	run_on(1, main_error_cancel, &s);
	ASSERT_SEEN(&s);
}

/* A waiter that is cancelled or times out leaves; the others still get the
 * result, and nothing waits afterwards. */
struct fw {
	struct ursa_future *f;
	int rc;
	void *r;
};

static void *wait_record(void *arg)
{
	struct fw *w = arg;

	w->rc = ursa_future_wait(w->f, &w->r);
	return NULL;
}

static void *wait_with_deadline(void *arg)
{
	struct fw *w = arg;
	struct ursa_scope s;

	ursa_scope_enter(&s, ursa_now() + 5 * MS);
	w->rc = ursa_future_wait(w->f, &w->r);
	ursa_scope_exit(&s);
	return NULL;
}

static void *main_waiter_leaves(void *arg)
{
	struct seen *s = arg;
	struct ursa_future f = URSA_FUTURE_INIT;
	struct fw a = {&f, 1, NULL}, b = {&f, 1, NULL}, c = {&f, 1, NULL};
	struct ursa_task *ta, *tb, *tc;

	REQUIRE(s, ursa_spawn_on(&ta, 0, wait_record, &a) == 0, 0);
	REQUIRE(s, ursa_spawn_on(&tb, 1, wait_record, &b) == 0, 1);
	REQUIRE(s, ursa_spawn_on(&tc, 1, wait_with_deadline, &c) == 0, 2);
	nap(20 * MS);
	ursa_cancel(ta);
	EXPECT_EQ(s, ursa_join(ta, NULL), -ECANCELED);
	EXPECT_EQ(s, a.rc, -ECANCELED);
	EXPECT_EQ(s, ursa_join(tc, NULL), 0);
	EXPECT_EQ(s, c.rc, -ETIMEDOUT);
	EXPECT_EQ(s, ursa_future_set_result(&f, (void *)42), 0);
	EXPECT_EQ(s, ursa_join(tb, NULL), 0);
	EXPECT_EQ(s, b.rc, 0);
	EXPECT(s, b.r == (void *)42, 0);
	ursa_future_fini(&f);
	return NULL;
}

Test(future, cancelled_and_timed_out_waiters_leave_the_future_consistent)
{
	struct seen s = {0};

	run_on(2, main_waiter_leaves, &s);
	ASSERT_SEEN(&s);
}

/* The other way: a plain thread blocks on a future a task completes. */
struct to_thread {
	struct seen s;
	struct ursa_future f;
};

static void *thread_waits(void *arg)
{
	struct to_thread *x = arg;
	void *r = NULL;

	EXPECT_EQ(&x->s, ursa_future_wait(&x->f, &r), 0);
	EXPECT_EQ(&x->s, (intptr_t)r, 5);
	return NULL;
}

static void *main_task_sets(void *arg)
{
	struct to_thread *x = arg;

	nap(10 * MS);
	EXPECT_EQ(&x->s, ursa_future_set_result(&x->f, (void *)5), 0);
	return NULL;
}

Test(future, a_plain_thread_waits_for_a_task_to_set_it)
{
	static struct to_thread x = {.f = URSA_FUTURE_INIT};
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, thread_waits, &x), 0);
	run_on(1, main_task_sets, &x);
	pthread_join(th, NULL);
	ASSERT_SEEN(&x.s);
}

/* Done callbacks: in registration order, once, on the setter's thread; at
 * once if registered after completion. */
struct cbs {
	struct seen s;
	int order[3];
	int n;
};

static void note(struct ursa_future *f, void *arg)
{
	struct cbs *c = arg;

	c->order[c->n] = (int)ursa_future_done(f) * 10 + c->n;
	c->n++;
}

static void *main_callbacks(void *arg)
{
	struct cbs *c = arg;
	struct ursa_future f = URSA_FUTURE_INIT;
	struct ursa_future_cb r[3];

	ursa_future_on_done(&f, &r[0], note, c);
	ursa_future_on_done(&f, &r[1], note, c);
	EXPECT_EQ(&c->s, c->n, 0); /* not before completion */
	ursa_future_set_result(&f, NULL);
	ursa_future_set_result(&f, NULL); /* no second run */
	ursa_future_on_done(&f, &r[2], note, c);
	ursa_future_fini(&f);
	EXPECT_EQ(&c->s, c->n, 3);
	for (int i = 0; i < 3; i++) /* in order, each seeing the future done */
		EXPECT_EQ(&c->s, c->order[i], 10 + i);
	return NULL;
}

Test(future, done_callbacks_run_once_in_order)
{
	struct cbs c = {0};

	run_on(1, main_callbacks, &c);
	ASSERT_SEEN(&c.s);
}

/* run_in_executor: the pool completes futures; several run at once. */
static atomic_int running, max_running;

static void *slow_square(void *arg)
{
	uintptr_t x = (uintptr_t)arg;
	int now = atomic_fetch_add(&running, 1) + 1, max = atomic_load(&max_running);

	while (now > max && !atomic_compare_exchange_weak(&max_running, &max, now))
		;
	usleep(20000);
	atomic_fetch_sub(&running, 1);
	return (void *)(x * x);
}

static void *main_submit(void *arg)
{
	struct seen *s = arg;
	struct ursa_future f[4];

	for (uintptr_t i = 0; i < 4; i++) {
		ursa_future_init(&f[i]);
		REQUIRE(s, ursa_blocking_submit(&f[i], slow_square, (void *)(i + 1)) == 0, i);
	}
	for (uintptr_t i = 0; i < 4; i++) {
		void *r = NULL;

		EXPECT_EQ(s, ursa_future_wait(&f[i], &r), 0);
		EXPECT_EQ(s, (uintptr_t)r, (i + 1) * (i + 1));
		ursa_future_fini(&f[i]);
	}
	EXPECT(s, atomic_load(&max_running) > 1, atomic_load(&max_running)); /* side by side */
	return NULL;
}

Test(future, blocking_submit_completes_futures_from_the_pool)
{
	struct ursa_opts o = {.cores = 1, .pool_threads = 4};
	struct seen s = {0};

	cr_assert_eq(ursa_run(main_submit, &s, &o, NULL), 0);
	ASSERT_SEEN(&s);
}

/* ursa_blocking_submit initialises the future, whatever it held. */
static struct seen submit_seen;

static void *main_submit_garbage(void *arg)
{
	struct ursa_future f;
	void *r = NULL;

	(void)arg;
	memset(&f, 0xa5, sizeof(f)); /* never initialised: garbage */
	EXPECT(&submit_seen, ursa_blocking_submit(&f, slow_square, (void *)7) == 0, 1);
	EXPECT(&submit_seen, ursa_future_wait(&f, &r) == 0, 2);
	EXPECT(&submit_seen, (uintptr_t)r == 49, (uintptr_t)r);
	ursa_future_fini(&f); /* ASan: nothing of the garbage is freed */
	/* A refused submit leaves f initialised too. */
	memset(&f, 0xa5, sizeof(f));
	EXPECT(&submit_seen, ursa_blocking_submit(&f, NULL, NULL) == -EINVAL, 4);
	EXPECT(&submit_seen, !ursa_future_done(&f), 5);
	ursa_future_fini(&f);
	return NULL;
}

Test(future, blocking_submit_initialises_the_future)
{
	cr_assert_null(run_on(1, main_submit_garbage, NULL));
	ASSERT_SEEN(&submit_seen);
}
