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
	struct ursa_future f;
	atomic_int got;        /* waiters that saw the right result */
	atomic_int wrong;
	atomic_int parked;     /* waiters that had started waiting */
	int set_rc[2];
};

static void *future_waiter(void *arg)
{
	struct many *m = arg;
	void *r = NULL;
	int rc;

	atomic_fetch_add(&m->parked, 1);
	rc = ursa_future_wait(&m->f, &r);
	if (rc == 0 && r == (void *)0xfeed)
		atomic_fetch_add(&m->got, 1);
	else
		atomic_fetch_add(&m->wrong, 1);
	return NULL;
}

static void *foreign_setter(void *arg)
{
	struct many *m = arg;

	/* Wait (politely) until every task is parked on the future. */
	while (atomic_load(&m->parked) < WAITERS)
		usleep(1000);
	usleep(5000);
	m->set_rc[0] = ursa_future_set_result(&m->f, (void *)0xfeed);
	m->set_rc[1] = ursa_future_set_result(&m->f, (void *)0xbad);
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
	struct ursa_waitgroup wg = URSA_WAITGROUP_INIT;
	pthread_t th;
	int bad = 0;

	(void)wg;
	for (unsigned i = 0; i < WAITERS; i++)
		if (ursa_spawn_ex(NULL, i % ursa_ncores(), future_waiter, m, &o))
			bad++;
	if (pthread_create(&th, NULL, foreign_setter, m))
		return (void *)1;
	/* Wait for the result like everyone else, then for the thread. */
	if (ursa_future_wait(&m->f, NULL) != 0)
		bad++;
	(void)!ursa_blocking(join_thread, &th, NULL);
	return (void *)(intptr_t)bad;
}

Test(future, set_from_a_foreign_pthread_wakes_1000_waiting_tasks, .timeout = 60)
{
	static struct many m = {.f = URSA_FUTURE_INIT};

	/* ursa_run returns only when every (detached) waiter has ended. */
	cr_assert_null(run_on(2, main_many, &m));
	cr_assert_eq(m.set_rc[0], 0);
	cr_assert_eq(m.set_rc[1], -EALREADY, "a future is set once");
	cr_assert_eq(m.got, WAITERS, "%d of %d waiters got the result", m.got, WAITERS);
	cr_assert_eq(m.wrong, 0);
	ursa_future_fini(&m.f);
}

/* Errors carry a message; cancellation is an outcome too. */
static void *main_error_cancel(void *arg)
{
	int *out = arg;
	struct ursa_future e = URSA_FUTURE_INIT, c, p = URSA_FUTURE_INIT;
	void *r = (void *)7;

	ursa_future_init(&c);
	out[0] = ursa_future_result(&p, &r); /* pending */
	out[1] = ursa_future_done(&p);
	out[2] = ursa_future_set_error(&e, -EIO, "disk %d failed", 3);
	out[3] = ursa_future_wait(&e, &r);
	out[4] = strcmp(ursa_future_message(&e), "disk 3 failed") == 0;
	out[5] = r == (void *)7; /* nothing stored on error */
	out[6] = ursa_future_cancel(&c);
	out[7] = ursa_future_wait(&c, NULL);
	out[8] = ursa_future_done(&c);
	out[9] = ursa_future_cancel(&c);
	out[10] = ursa_future_set_error(&p, 5, NULL); /* not negative: -EINVAL */
	out[11] = ursa_future_result(&p, NULL);
	out[12] = ursa_future_message(&p)[0] == '\0';
	ursa_future_fini(&e);
	ursa_future_fini(&c);
	ursa_future_fini(&p);
	return NULL;
}

Test(future, error_with_message_and_cancellation_are_outcomes)
{
	int out[13];

	run_on(1, main_error_cancel, out);
	cr_assert_eq(out[0], -EAGAIN);
	cr_assert_eq(out[1], 0);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(out[3], -EIO);
	cr_assert(out[4], "message lost");
	cr_assert(out[5]);
	cr_assert_eq(out[6], 0);
	cr_assert_eq(out[7], -ECANCELED);
	cr_assert_eq(out[8], 1);
	cr_assert_eq(out[9], -EALREADY);
	cr_assert_eq(out[10], 0);
	cr_assert_eq(out[11], -EINVAL);
	cr_assert(out[12]);
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
	int *out = arg;
	struct ursa_future f = URSA_FUTURE_INIT;
	struct fw a = {&f, 1, NULL}, b = {&f, 1, NULL}, c = {&f, 1, NULL};
	struct ursa_task *ta, *tb, *tc;

	if (ursa_spawn_on(&ta, 0, wait_record, &a) || ursa_spawn_on(&tb, 1, wait_record, &b) ||
	    ursa_spawn_on(&tc, 1, wait_with_deadline, &c))
		return (void *)1;
	nap(20 * MS);
	ursa_cancel(ta);
	out[0] = ursa_join(ta, NULL);
	out[1] = a.rc;
	out[2] = ursa_join(tc, NULL);
	out[3] = c.rc;
	out[4] = ursa_future_set_result(&f, (void *)42);
	out[5] = ursa_join(tb, NULL);
	out[6] = b.rc;
	out[7] = b.r == (void *)42;
	ursa_future_fini(&f);
	return NULL;
}

Test(future, cancelled_and_timed_out_waiters_leave_the_future_consistent)
{
	int out[8];

	cr_assert_null(run_on(2, main_waiter_leaves, out));
	cr_assert_eq(out[0], -ECANCELED);
	cr_assert_eq(out[1], -ECANCELED);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(out[3], -ETIMEDOUT);
	cr_assert_eq(out[4], 0);
	cr_assert_eq(out[5], 0);
	cr_assert_eq(out[6], 0);
	cr_assert(out[7]);
}

/* The other way: a plain thread blocks on a future a task completes. */
struct to_thread {
	struct ursa_future f;
	int rc;
	void *r;
};

static void *thread_waits(void *arg)
{
	struct to_thread *x = arg;

	x->rc = ursa_future_wait(&x->f, &x->r);
	return NULL;
}

static void *main_task_sets(void *arg)
{
	struct to_thread *x = arg;

	nap(10 * MS);
	return (void *)(intptr_t)ursa_future_set_result(&x->f, (void *)5);
}

Test(future, a_plain_thread_waits_for_a_task_to_set_it)
{
	static struct to_thread x = {.f = URSA_FUTURE_INIT, .rc = 1};
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, thread_waits, &x), 0);
	cr_assert_null(run_on(1, main_task_sets, &x));
	pthread_join(th, NULL);
	cr_assert_eq(x.rc, 0);
	cr_assert_eq(x.r, (void *)5);
}

/* Done callbacks: in registration order, once, on the setter's thread; at
 * once if registered after completion. */
struct cbs {
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
	if (c->n != 0)
		return (void *)1;
	ursa_future_set_result(&f, NULL);
	ursa_future_set_result(&f, NULL); /* no second run */
	ursa_future_on_done(&f, &r[2], note, c);
	ursa_future_fini(&f);
	return NULL;
}

Test(future, done_callbacks_run_once_in_order)
{
	struct cbs c = {{0}, 0};

	cr_assert_null(run_on(1, main_callbacks, &c));
	cr_assert_eq(c.n, 3);
	cr_assert_eq(c.order[0], 10);
	cr_assert_eq(c.order[1], 11);
	cr_assert_eq(c.order[2], 12);
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
	uintptr_t *out = arg;
	struct ursa_future f[4];
	for (uintptr_t i = 0; i < 4; i++) {
		ursa_future_init(&f[i]);
		if (ursa_blocking_submit(&f[i], slow_square, (void *)(i + 1)))
			return (void *)1;
	}
	for (int i = 0; i < 4; i++) {
		void *r = NULL;

		if (ursa_future_wait(&f[i], &r))
			return (void *)2;
		out[i] = (uintptr_t)r;
		ursa_future_fini(&f[i]);
	}
	return NULL;
}

Test(future, blocking_submit_completes_futures_from_the_pool)
{
	uintptr_t out[5] = {0};
	struct ursa_opts o = {.cores = 1, .pool_threads = 4};
	void *res = (void *)1;

	cr_assert_eq(ursa_run(main_submit, out, &o, &res), 0);
	cr_assert_null(res);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(out[1], 4);
	cr_assert_eq(out[2], 9);
	cr_assert_eq(out[3], 16);
	cr_assert_gt(max_running, 1, "the jobs did not run side by side");
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
