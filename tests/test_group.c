/* SPDX-License-Identifier: MIT */
/*
 * Many tasks at once: outcomes (result, error, cancelled), gather, wait,
 * as_completed, wait_for, task groups, scope cancellation, tickers.
 */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

TestSuite(group, .timeout = 30);

#define P(x) ((void *)(uintptr_t)(x))
#define U(p) ((uintptr_t)(p))

/* What a test task does, encoded in its argument. */
struct job {
	uint64_t sleep_ns;  /* URSA_FOREVER: until cancelled */
	int fail;           /* fail with this error after the sleep (0: return) */
	uintptr_t result;
	int sleep_rc;       /* out: what the sleep returned */
	int ran;
};

static void *job_main(void *arg)
{
	struct job *j = arg;

	j->ran = 1;
	j->sleep_rc = j->sleep_ns ? ursa_sleep(j->sleep_ns) : 0;
	if (j->fail)
		return ursa_task_fail(j->fail, "job %lu failed", (unsigned long)j->result);
	return P(j->result);
}

static struct ursa_task *start(struct job *j, unsigned core, struct seen *s)
{
	struct ursa_task *t = NULL;

	EXPECT_EQ(s, ursa_spawn_on(&t, core % ursa_ncores(), job_main, j), 0);
	return t;
}

/* ------------------------------------------------------------- outcomes */

static void *main_outcomes(void *arg)
{
	struct seen *s = arg;
	struct job ok = {.sleep_ns = 2 * MS, .result = 5}, bad_job = {.fail = -EIO, .result = 7};
	struct job late = {.sleep_ns = URSA_FOREVER, .fail = -EPROTO, .result = 8};
	struct ursa_outcome o;
	struct ursa_task *t;
	void *r = NULL;

	t = start(&ok, 1, s);
	EXPECT_EQ(s, ursa_task_outcome(t, &o), -EAGAIN); /* running */
	EXPECT_EQ(s, ursa_task_done(t), 0);
	EXPECT_EQ(s, ursa_join(t, &r), 0);
	EXPECT_EQ(s, U(r), 5);
	t = start(&bad_job, 0, s);
	EXPECT_EQ(s, ursa_join(t, &r), -EIO);          /* the error, from plain join */
	t = start(&bad_job, 1, s);
	EXPECT_EQ(s, ursa_join_outcome(t, &o), 0);     /* 0: released */
	EXPECT_EQ(s, o.err, -EIO);
	EXPECT(s, strcmp(o.msg, "job 7 failed") == 0, 0); /* message lost */
	EXPECT(s, o.result == NULL, 0);
	/* Cancelled, then fails in its clean-up: the failure is the outcome. */
	t = start(&late, 1, s);
	nap(5 * MS);
	ursa_cancel(t);
	EXPECT_EQ(s, ursa_join_outcome(t, &o), 0);
	EXPECT_EQ(s, o.err, -EPROTO);
	EXPECT_EQ(s, late.sleep_rc, -ECANCELED);
	return NULL;
}

Test(group, task_outcomes_result_error_with_message_and_failure_over_cancel)
{
	struct seen s = {0};

	run_on(2, main_outcomes, &s);
	ASSERT_SEEN(&s);
}

/* --------------------------------------------------------------- gather */

static void *main_gather_ok(void *arg)
{
	struct seen *s = arg;
	/* They end in the order 2, 0, 1; the results come back in order. */
	struct job j[3] = {{.sleep_ns = 10 * MS, .result = 10},
	                   {.sleep_ns = 20 * MS, .result = 11},
	                   {.sleep_ns = 1 * MS, .result = 12}};
	struct ursa_task *t[3];
	struct ursa_outcome o[3];

	for (int i = 0; i < 3; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	EXPECT_EQ(s, ursa_gather(t, 3, 0, o), 0);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(s, o[i].err, 0);
		EXPECT_EQ(s, U(o[i].result), 10 + i);
	}
	EXPECT_EQ(s, ursa_gather(NULL, 0, 0, NULL), 0);
	return NULL;
}

Test(group, gather_returns_results_in_order)
{
	struct seen s = {0};

	run_on(2, main_gather_ok, &s);
	ASSERT_SEEN(&s);
}

/* One fails, one is cancelled from outside, one succeeds, one sleeps; with
 * return_exceptions (all) the sleeper wakes on its own, without it the
 * first error cancels it. */
struct mixed {
	struct seen s;
	bool all;
};

static void *main_gather_mixed(void *arg)
{
	struct mixed *m = arg;
	struct seen *s = &m->s;
	bool all = m->all;
	/* t[2] is cancelled once t[0] has returned, normally well before t[1]
	 * fails at 40 ms. */
	struct job j[4] = {{.sleep_ns = 1 * MS, .result = 1},
	                   {.sleep_ns = 40 * MS, .fail = -EIO, .result = 2},
	                   {.sleep_ns = URSA_FOREVER, .result = 3},
	                   {.sleep_ns = all ? 60 * MS : URSA_FOREVER, .result = 4}};
	struct ursa_task *t[4];
	struct ursa_outcome o[4];
	int rc;

	for (int i = 0; i < 4; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	/* t[0] must have returned before anything is cancelled: fail-fast
	 * would cancel it too, and on a loaded machine its 1 ms sleep can
	 * outlast any fixed nap. */
	while (!ursa_task_done(t[0]))
		nap(1 * MS);
	ursa_cancel(t[2]); /* cancelled before the failure */
	rc = ursa_gather(t, 4, all ? URSA_GATHER_ALL : 0, o);
	EXPECT_EQ(s, o[0].err, 0);
	EXPECT_EQ(s, U(o[0].result), 1);
	EXPECT_EQ(s, o[2].err, -ECANCELED);
	if (all) {
		EXPECT_EQ(s, rc, 2); /* two tasks did not return normally */
		EXPECT_EQ(s, o[1].err, -EIO);
		EXPECT(s, strcmp(o[1].msg, "job 2 failed") == 0, 0); /* message lost */
		EXPECT_EQ(s, o[3].err, 0); /* return_exceptions must not cancel the others */
		EXPECT_EQ(s, U(o[3].result), 4);
		EXPECT_EQ(s, j[3].sleep_rc, 0);
	} else {
		/* t[2] was cancelled first, which made fail-fast cancel t[1] and
		 * t[3]: three did not succeed, whichever of t[1]'s outcomes came
		 * first. */
		EXPECT_EQ(s, rc, 3);
		EXPECT_EQ(s, o[3].err, -ECANCELED); /* the sleeper was not cancelled */
		EXPECT_EQ(s, j[3].sleep_rc, -ECANCELED);
	}
	return NULL;
}

Test(group, gather_return_exceptions_collects_a_failure_and_a_cancellation)
{
	struct mixed m = {.all = true};

	run_on(2, main_gather_mixed, &m);
	ASSERT_SEEN(&m.s);
}

Test(group, gather_fail_fast_cancels_the_rest_and_counts_them)
{
	struct mixed m = {.all = false};

	run_on(2, main_gather_mixed, &m);
	ASSERT_SEEN(&m.s);
}

static void *main_gather_first_error(void *arg)
{
	struct seen *s = arg;
	struct job j[3] = {{.sleep_ns = URSA_FOREVER},
	                   {.sleep_ns = 2 * MS, .fail = -ENOSPC, .result = 9},
	                   {.sleep_ns = URSA_FOREVER}};
	struct ursa_task *t[3];

	for (int i = 0; i < 3; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	EXPECT_EQ(s, ursa_gather(t, 3, 0, NULL), 3); /* one failure, two cancelled */
	EXPECT_EQ(s, j[0].sleep_rc, -ECANCELED);
	EXPECT_EQ(s, j[2].sleep_rc, -ECANCELED);
	return NULL;
}

Test(group, gather_fail_fast_cancels_sleepers_on_the_first_failure)
{
	struct seen s = {0};

	run_on(2, main_gather_first_error, &s);
	ASSERT_SEEN(&s);
}

/* Cancelling the gatherer cancels and releases everything it gathers. */
struct gathering {
	struct ursa_task *t[3];
	struct ursa_outcome o[3];
	int rc;
};

static void *gatherer(void *arg)
{
	struct gathering *g = arg;

	memset(g->o, 0x5a, sizeof(g->o));
	g->rc = ursa_gather(g->t, 3, URSA_GATHER_ALL, g->o);
	return NULL;
}

static void *main_gather_cancelled(void *arg)
{
	struct seen *s = arg;
	struct job j[3] = {{.sleep_ns = URSA_FOREVER}, {.sleep_ns = URSA_FOREVER},
	                   {.sleep_ns = 1 * MS, .result = 3}};
	struct gathering ga;
	struct ursa_task *g;

	for (int i = 0; i < 3; i++)
		ga.t[i] = start(&j[i], (unsigned)i, s);
	REQUIRE(s, ursa_spawn_on(&g, 1, gatherer, &ga) == 0, 1);
	nap(10 * MS);
	ursa_cancel(g);
	EXPECT_EQ(s, ursa_join(g, NULL), -ECANCELED);
	EXPECT_EQ(s, j[0].sleep_rc, -ECANCELED);
	EXPECT_EQ(s, j[1].sleep_rc, -ECANCELED);
	EXPECT_EQ(s, ga.rc, -ECANCELED); /* gather's own status: the caller was cancelled */
	/* Every out[i] filled: two cancelled, one that had returned 3. */
	EXPECT_EQ(s, ga.o[0].err, -ECANCELED);
	EXPECT_EQ(s, ga.o[1].err, -ECANCELED);
	EXPECT_EQ(s, ga.o[2].err, 0);
	EXPECT_EQ(s, U(ga.o[2].result), 3);
	return NULL;
}

Test(group, cancelling_gather_cancels_and_releases_its_tasks)
{
	struct seen s = {0};

	run_on(2, main_gather_cancelled, &s);
	ASSERT_SEEN(&s);
}

static void *main_gather_einval(void *arg)
{
	struct seen *s = arg;
	struct job j[2] = {{.sleep_ns = 1 * MS, .result = 1}, {.result = 2}};
	struct ursa_task *t[3];
	void *r;

	t[0] = start(&j[0], 0, s);
	t[1] = start(&j[1], 1, s);
	t[2] = t[0];
	EXPECT_EQ(s, ursa_gather(t, 3, 0, NULL), -EINVAL); /* a task twice */
	t[2] = NULL;
	EXPECT_EQ(s, ursa_gather(t, 3, 0, NULL), -EINVAL); /* a NULL task */
	/* Nothing was released: both joins work. */
	EXPECT_EQ(s, ursa_join(t[0], &r), 0);
	EXPECT_EQ(s, ursa_join(t[1], &r), 0);
	EXPECT_EQ(s, (int)U(r), 2);
	return NULL;
}

Test(group, gather_refuses_bad_sets_without_releasing_anything)
{
	struct seen s = {0};

	run_on(2, main_gather_einval, &s);
	ASSERT_SEEN(&s);
}

/* ----------------------------------------------------------------- wait */

static void *main_wait_first(void *arg)
{
	struct seen *s = arg;
	struct job j[3] = {{.sleep_ns = 40 * MS, .result = 1},
	                   {.sleep_ns = 2 * MS, .result = 2},
	                   {.sleep_ns = URSA_FOREVER, .result = 3}};
	struct ursa_task *t[3];
	bool done[3];
	void *r;

	for (int i = 0; i < 3; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	EXPECT_EQ(s, ursa_wait_until(t, 3, URSA_WAIT_FIRST_COMPLETED, URSA_FOREVER, done), 1);
	EXPECT_EQ(s, done[0], 0);
	EXPECT_EQ(s, done[1], 1);
	EXPECT_EQ(s, done[2], 0);
	EXPECT_EQ(s, ursa_join(t[1], &r), 0); /* done: at once */
	EXPECT_EQ(s, (int)U(r), 2);
	/* The pending ones keep running; cancel them, as the seed does. */
	ursa_cancel(t[0]);
	ursa_cancel(t[2]);
	EXPECT_EQ(s, ursa_join(t[0], NULL), -ECANCELED);
	EXPECT_EQ(s, ursa_join(t[2], NULL), -ECANCELED);
	return NULL;
}

Test(group, wait_first_completed_reports_done_and_pending)
{
	struct seen s = {0};

	run_on(2, main_wait_first, &s);
	ASSERT_SEEN(&s);
}

static void *main_wait_deadline(void *arg)
{
	struct seen *x = arg;
	struct job j[3] = {{.sleep_ns = 1 * MS, .result = 1},
	                   {.sleep_ns = URSA_FOREVER},
	                   {.sleep_ns = URSA_FOREVER}};
	struct ursa_task *t[3];
	bool done[3];
	uint64_t t0 = ursa_now();

	for (int i = 0; i < 3; i++)
		t[i] = start(&j[i], (unsigned)i, x);
	EXPECT_EQ(x, ursa_wait_until(t, 3, URSA_WAIT_ALL_COMPLETED, t0 + 20 * MS, done), 1);
	EXPECT(x, ursa_now() - t0 >= 20 * MS, 0); /* returned before the deadline */
	EXPECT(x, done[0] && !done[1] && !done[2], 0);
	EXPECT_EQ(x, ursa_sleep(1 * MS), 0); /* the wait's deadline is gone with it */
	for (int i = 1; i < 3; i++)
		ursa_cancel(t[i]);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(x, ursa_join(t[i], NULL), i ? -ECANCELED : 0);
	return NULL;
}

Test(group, wait_with_a_deadline_that_fires_returns_the_done_count)
{
	struct seen s = {0};

	run_on(2, main_wait_deadline, &s);
	ASSERT_SEEN(&s);
}

static void *main_wait_exception(void *arg)
{
	struct seen *s = arg;
	struct job j[4] = {{.sleep_ns = URSA_FOREVER},
	                   {.result = 1},
	                   {.sleep_ns = 30 * MS, .fail = -EBADMSG},
	                   {.sleep_ns = URSA_FOREVER}};
	struct ursa_task *t[4];
	bool done[4];

	for (int i = 0; i < 4; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	ursa_cancel(t[3]); /* a cancellation is not an exception */
	/* done: the returner, the cancelled, the failed */
	EXPECT_EQ(s, ursa_wait_until(t, 4, URSA_WAIT_FIRST_EXCEPTION, URSA_FOREVER, done), 3);
	EXPECT_EQ(s, done[0], 0);
	EXPECT_EQ(s, done[2], 1);
	ursa_cancel(t[0]);
	for (int i = 0; i < 4; i++)
		(void)!ursa_join(t[i], NULL);
	return NULL;
}

Test(group, wait_first_exception_returns_on_a_failure_not_a_cancellation)
{
	struct seen s = {0};

	run_on(2, main_wait_exception, &s);
	ASSERT_SEEN(&s);
}

static void *waiter_task(void *arg)
{
	struct ursa_task **t = arg;

	return P(ursa_wait_until(t, 2, URSA_WAIT_ALL_COMPLETED, URSA_FOREVER, NULL));
}

static void *main_wait_cancelled(void *arg)
{
	struct seen *s = arg;
	struct job j[2] = {{.sleep_ns = URSA_FOREVER}, {.sleep_ns = URSA_FOREVER}};
	struct ursa_task *t[2], *w;

	for (int i = 0; i < 2; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	REQUIRE(s, ursa_spawn_on(&w, 1, waiter_task, t) == 0, 1);
	nap(5 * MS);
	ursa_cancel(w);
	EXPECT_EQ(s, ursa_join(w, NULL), -ECANCELED);
	/* wait does not own the tasks: they still run, and we can join them. */
	EXPECT_EQ(s, ursa_task_done(t[0]) || ursa_task_done(t[1]), 0);
	for (int i = 0; i < 2; i++) {
		ursa_cancel(t[i]);
		EXPECT_EQ(s, ursa_join(t[i], NULL), -ECANCELED);
	}
	return NULL;
}

Test(group, wait_cancelled_leaves_its_tasks_running_and_joinable)
{
	struct seen s = {0};

	run_on(2, main_wait_cancelled, &s);
	ASSERT_SEEN(&s);
}

/* --------------------------------------------------------- as_completed */

static void *main_as_completed(void *arg)
{
	struct seen *s = arg;
	struct job j[5] = {{.sleep_ns = 90 * MS, .result = 0},
	                   {.sleep_ns = 10 * MS, .result = 1},
	                   {.sleep_ns = 50 * MS, .result = 2},
	                   {.result = 3},
	                   {.sleep_ns = URSA_FOREVER, .result = 4}};
	static const int order[4] = {3, 1, 2, 0}; /* the order they end in */
	struct ursa_task *t[5];
	struct ursa_as_completed ac;

	for (int i = 0; i < 5; i++)
		t[i] = start(&j[i], (unsigned)i, s);
	while (!ursa_task_done(t[3]))
		nap(100000); /* t[3] has ended before we start */
	REQUIRE(s, ursa_as_completed_init(&ac, t, 5) == 0, 0);
	for (int n = 0; n < 4; n++) {
		int i = ursa_as_completed_next(&ac);
		void *r = NULL;

		EXPECT_EQ(s, i, order[n]);
		if (i < 0)
			continue;
		EXPECT_EQ(s, ursa_join(t[i], &r), 0);
		EXPECT_EQ(s, U(r), i);
	}
	/* Leave early: t[4] keeps running and stays ours. */
	ursa_as_completed_fini(&ac);
	EXPECT_EQ(s, ursa_task_done(t[4]), 0);
	ursa_cancel(t[4]);
	EXPECT_EQ(s, ursa_join(t[4], NULL), -ECANCELED);
	return NULL;
}

Test(group, as_completed_yields_tasks_in_the_order_they_end)
{
	struct seen s = {0};

	run_on(2, main_as_completed, &s);
	ASSERT_SEEN(&s);
}

static void *main_as_completed_all(void *arg)
{
	struct seen *s = arg;
	enum { N = 200 };
	struct job j[N];
	struct ursa_task *t[N];
	struct ursa_as_completed ac;
	int n = 0, i;

	for (int x = 0; x < N; x++) {
		j[x] = (struct job){.sleep_ns = (uint64_t)(x % 7) * 100000, .result = (uintptr_t)x};
		t[x] = start(&j[x], (unsigned)x, s);
	}
	REQUIRE(s, ursa_as_completed_init(&ac, t, N) == 0, 1);
	while ((i = ursa_as_completed_next(&ac)) >= 0) {
		void *r;

		n++;
		EXPECT_EQ(s, ursa_join(t[i], &r), 0);
		EXPECT_EQ(s, U(r), i);
	}
	ursa_as_completed_fini(&ac);
	EXPECT_EQ(s, n, 200);
	EXPECT_EQ(s, i, -EPIPE); /* end of stream */
	return NULL;
}

Test(group, as_completed_returns_every_task_once_then_epipe)
{
	struct seen s = {0};

	run_on(2, main_as_completed_all, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------------------------- wait_for */

static void *main_wait_for(void *arg)
{
	struct seen *s = arg;
	struct job fast = {.sleep_ns = 1 * MS, .result = 6};
	struct job slow = {.sleep_ns = 10000 * MS, .result = 7};
	struct ursa_outcome o;
	struct ursa_task *t;
	uint64_t t0;

	t = start(&fast, 1, s);
	EXPECT_EQ(s, ursa_wait_for(t, 1000 * MS, &o), 0);
	EXPECT_EQ(s, o.err, 0);
	EXPECT_EQ(s, (int)U(o.result), 6);
	t = start(&slow, 1, s);
	t0 = ursa_now();
	EXPECT_EQ(s, ursa_wait_for(t, 10 * MS, &o), -ETIMEDOUT);
	EXPECT(s, ursa_now() - t0 < 5000 * MS, 0);
	EXPECT_EQ(s, slow.sleep_rc, -ECANCELED); /* the task was cancelled and has ended */
	return NULL;
}

Test(group, wait_for_returns_the_result_or_cancels_the_task_on_timeout)
{
	struct seen s = {0};

	run_on(2, main_wait_for, &s);
	ASSERT_SEEN(&s);
}

/* --------------------------------------------------------------- groups */

static void *main_group_ok(void *arg)
{
	struct seen *s = arg;
	struct job j[6];
	struct ursa_group g;
	struct ursa_outcome first;

	ursa_group_enter(&g);
	for (int i = 0; i < 6; i++) {
		j[i] = (struct job){.sleep_ns = (uint64_t)i * MS, .result = (uintptr_t)i};
		EXPECT_EQ(s, ursa_group_spawn_on(&g, (unsigned)i % 2, job_main, &j[i]), 0);
	}
	EXPECT_EQ(s, ursa_group_exit(&g, &first), 0);
	EXPECT_EQ(s, first.err, 0);
	for (int i = 0; i < 6; i++) {
		EXPECT(s, j[i].ran, i);
		EXPECT_EQ(s, j[i].sleep_rc, 0);
	}
	return NULL;
}

Test(group, group_exit_waits_for_every_child)
{
	struct seen s = {0};

	run_on(2, main_group_ok, &s);
	ASSERT_SEEN(&s);
}

/* A child fails while its siblings sleep and the body waits. */
static void *main_group_fail(void *arg)
{
	struct seen *s = arg;
	struct job sleepers[4], failing = {.sleep_ns = 5 * MS, .fail = -EHOSTUNREACH, .result = 99};
	struct ursa_group g;
	struct ursa_outcome first;

	ursa_group_enter(&g);
	for (int i = 0; i < 4; i++) {
		sleepers[i] = (struct job){.sleep_ns = URSA_FOREVER};
		EXPECT_EQ(s, ursa_group_spawn_on(&g, (unsigned)i % 2, job_main, &sleepers[i]), 0);
	}
	EXPECT_EQ(s, ursa_group_spawn_on(&g, 1, job_main, &failing), 0);
	EXPECT_EQ(s, ursa_sleep(10000 * MS), -ECANCELED); /* the body is cancelled by the failure */
	EXPECT_EQ(s, ursa_group_spawn(&g, job_main, &failing), -ECANCELED); /* shutting down */
	EXPECT_EQ(s, ursa_group_exit(&g, &first), 1); /* one child failed */
	EXPECT_EQ(s, first.err, -EHOSTUNREACH);
	EXPECT(s, strcmp(first.msg, "job 99 failed") == 0, 0); /* message lost */
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(s, sleepers[i].sleep_rc, -ECANCELED); /* a sibling was not cancelled */
	EXPECT_EQ(s, ursa_sleep(1 * MS), 0); /* after the group: the task is fine */
	return NULL;
}

Test(group, group_child_failure_cancels_the_sleeping_siblings_and_the_body)
{
	struct seen s = {0};

	run_on(2, main_group_fail, &s);
	ASSERT_SEEN(&s);
}

/* Children spawn siblings (from the other core); exit waits for all. */
struct nest {
	struct ursa_group *g;
	atomic_int count;
	int depth;
};

static void *nester(void *arg)
{
	struct nest *n = arg;

	atomic_fetch_add(&n->count, 1);
	if (atomic_load(&n->count) < 64)
		for (int i = 0; i < 2; i++)
			if (ursa_group_spawn_on(n->g, (ursa_core() + 1) % ursa_ncores(), nester, n) != 0)
				break;
	nap(100000);
	return NULL;
}

static void *main_group_nested(void *arg)
{
	struct seen *s = arg;
	struct ursa_group g;
	struct nest n = {&g, 0, 0};

	ursa_group_enter(&g);
	EXPECT_EQ(s, ursa_group_spawn(&g, nester, &n), 0);
	EXPECT_EQ(s, ursa_group_exit(&g, NULL), 0);
	{
		long long v_ = (long long)(atomic_load(&n.count));

		EXPECT(s, v_ >= (long long)(64), v_);
	}
	return NULL;
}

Test(group, children_spawning_siblings_are_all_awaited)
{
	struct seen s = {0};

	run_on(2, main_group_nested, &s);
	ASSERT_SEEN(&s);
}

/* The owner's deadline passes inside the group: children are cancelled. */
static void *main_group_deadline(void *arg)
{
	struct seen *x = arg;
	struct job j[2] = {{.sleep_ns = URSA_FOREVER}, {.sleep_ns = URSA_FOREVER}};
	struct ursa_scope s;
	struct ursa_group g;

	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	ursa_group_enter(&g);
	for (int i = 0; i < 2; i++)
		EXPECT_EQ(x, ursa_group_spawn_on(&g, (unsigned)i, job_main, &j[i]), 0);
	EXPECT_EQ(x, ursa_group_exit(&g, NULL), -ETIMEDOUT); /* waits here until the deadline */
	EXPECT_EQ(x, ursa_scope_exit(&s), -ETIMEDOUT);
	EXPECT_EQ(x, j[0].sleep_rc, -ECANCELED);
	EXPECT_EQ(x, j[1].sleep_rc, -ECANCELED);
	return NULL;
}

Test(group, group_under_an_expiring_deadline_cancels_its_children)
{
	struct seen s = {0};

	run_on(2, main_group_deadline, &s);
	ASSERT_SEEN(&s);
}

/* ursa_group_cancel from a child, and many short children reaped while the
 * body keeps spawning. */
static void *canceller(void *arg)
{
	nap(2 * MS);
	ursa_group_cancel(arg);
	return NULL;
}

static void *quick(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return NULL;
}

static void *main_group_cancel(void *arg)
{
	struct seen *s = arg;
	struct ursa_group g;
	struct job sleeper = {.sleep_ns = URSA_FOREVER};
	atomic_int quick_runs = 0;

	ursa_group_enter(&g);
	EXPECT_EQ(s, ursa_group_spawn_on(&g, 1, job_main, &sleeper), 0);
	for (int i = 0; i < 2000; i++) {
		EXPECT_EQ(s, ursa_group_spawn_on(&g, (unsigned)i % 2, quick, &quick_runs), 0);
		if (i % 64 == 0)
			ursa_yield();
	}
	EXPECT_EQ(s, ursa_group_spawn(&g, canceller, &g), 0);
	EXPECT_EQ(s, ursa_sleep(10000 * MS), -ECANCELED);
	EXPECT_EQ(s, ursa_group_exit(&g, NULL), -ECANCELED);
	EXPECT_EQ(s, sleeper.sleep_rc, -ECANCELED);
	EXPECT_EQ(s, atomic_load(&quick_runs), 2000);
	return NULL;
}

Test(group, group_cancel_from_a_child_cancels_body_and_children)
{
	struct seen s = {0};

	run_on(2, main_group_cancel, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------------------- scope cancel */

struct sc {
	struct seen seen;
	struct ursa_scope *s;
	atomic_int entered;
};

static void *scope_owner(void *arg)
{
	struct sc *x = arg;
	struct ursa_scope s, shield;

	ursa_scope_enter(&s, URSA_FOREVER);
	x->s = &s;
	atomic_store(&x->entered, 1);
	EXPECT_EQ(&x->seen, ursa_sleep(10000 * MS), -ECANCELED);
	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	EXPECT_EQ(&x->seen, ursa_sleep(1 * MS), 0); /* the shield holds */
	ursa_scope_exit(&shield);
	EXPECT_EQ(&x->seen, ursa_scope_exit(&s), -ECANCELED);
	EXPECT_EQ(&x->seen, ursa_sleep(1 * MS), 0); /* the task goes on */
	return NULL;
}

static void *main_scope_cancel(void *arg)
{
	struct sc *x = arg;
	struct ursa_task *t;

	REQUIRE(&x->seen, ursa_spawn_on(&t, 1, scope_owner, x) == 0, 0);
	while (!atomic_load(&x->entered))
		nap(100000);
	nap(2 * MS);
	ursa_scope_cancel(x->s);
	JOIN_OK(&x->seen, t);
	return NULL;
}

Test(group, scope_cancel_from_another_core_ends_the_scope_not_the_task)
{
	struct sc x = {0};

	run_on(2, main_scope_cancel, &x);
	ASSERT_SEEN(&x.seen);
}

/* --------------------------------------------------------------- ticker */

static void *main_ticker(void *arg)
{
	struct seen *s = arg;
	struct ursa_ticker tk;
	uint64_t t0 = ursa_now();
	int ticks;

	ursa_ticker_init(&tk, 5 * MS);
	for (int i = 0; i < 4; i++) {
		ticks = ursa_ticker_wait(&tk);
		EXPECT(s, ticks >= 1, ticks);
	}
	EXPECT(s, ursa_now() - t0 >= 20 * MS, (ursa_now() - t0) / MS);
	nap(17 * MS); /* fall behind by three ticks */
	ticks = ursa_ticker_wait(&tk);
	EXPECT(s, ticks >= 3, ticks); /* the ticks skipped are reported */
	return NULL;
}

Test(group, ticker_ticks_on_a_grid_and_reports_skipped_ticks)
{
	struct seen s = {0};

	run_on(1, main_ticker, &s);
	ASSERT_SEEN(&s);
}

/* --------------------------------------------- flags a call does not know */

static struct seen flags_seen;

static void *main_gather_bad_flags(void *arg)
{
	struct seen *S = &flags_seen;
	struct job j[2] = {{.sleep_ns = 1 * MS, .result = 1}, {.result = 2}};
	struct ursa_task *t[2];
	struct ursa_outcome o[2];
	void *r = NULL;

	(void)arg;
	t[0] = start(&j[0], 0, S);
	t[1] = start(&j[1], 1, S);
	memset(o, 0x5a, sizeof(o));
	EXPECT(S, ursa_gather(t, 2, 0x80, o) == -EINVAL, 1);
	EXPECT(S, o[0].err == 0x5a5a5a5a && o[1].err == 0x5a5a5a5a, o[0].err); /* untouched */
	/* Nothing was cancelled, waited for or released: both joins work. */
	EXPECT(S, ursa_join(t[0], &r) == 0 && U(r) == 1, U(r));
	EXPECT(S, ursa_join(t[1], &r) == 0 && U(r) == 2, U(r));
	return NULL;
}

Test(group, gather_rejects_unknown_flags_and_touches_nothing)
{
	cr_assert_null(run_on(2, main_gather_bad_flags, NULL));
	ASSERT_SEEN(&flags_seen);
}

static void *main_group_spawn_detached(void *arg)
{
	struct seen *S = &flags_seen;
	struct ursa_spawn_opts detached = {.flags = URSA_SPAWN_DETACHED};
	struct ursa_spawn_opts unknown = {.flags = 0x100};
	struct job j = {.result = 3};
	struct ursa_outcome first;
	struct ursa_group g;

	(void)arg;
	ursa_group_enter(&g);
	/* A child belongs to its group: it cannot be detached. */
	EXPECT(S, ursa_group_spawn_ex(&g, 0, job_main, &j, &detached) == -EINVAL, 1);
	EXPECT(S, ursa_group_spawn_ex(&g, 0, job_main, &j, &unknown) == -EINVAL, 2);
	EXPECT(S, ursa_group_exit(&g, &first) == 0, 3);
	EXPECT(S, j.ran == 0, 4);
	return NULL;
}

Test(group, group_spawn_ex_rejects_detached)
{
	cr_assert_null(run_on(1, main_group_spawn_detached, NULL));
	ASSERT_SEEN(&flags_seen);
}

/* ------------------------------------------------- a timeout, a deadline */

static struct seen wait_time_seen;

static void *main_wait_timeout(void *arg)
{
	struct seen *S = &wait_time_seen;
	struct job quick = {.sleep_ns = 1 * MS, .result = 1};
	struct job forever = {.sleep_ns = URSA_FOREVER, .result = 2};
	struct ursa_task *t;
	bool done[1] = {true};

	(void)arg;
	/* A timeout of 60 s: read as a deadline 60 s after boot, the old
	 * meaning, it would have passed long ago and returned 0 at once. */
	t = start(&quick, 0, S);
	EXPECT(S, ursa_wait(&t, 1, URSA_WAIT_ALL_COMPLETED, URSA_SEC(60), done) == 1, 1);
	EXPECT(S, done[0], 2);
	EXPECT(S, ursa_join(t, NULL) == 0, 3);
	/* A deadline in the past: a poll, 0 ended, at once. */
	t = start(&forever, 0, S);
	EXPECT(S, ursa_wait_until(&t, 1, URSA_WAIT_ALL_COMPLETED, ursa_now() - 1, done) == 0, 4);
	EXPECT(S, !done[0], 5);
	/* A timeout of 0 is a poll too; URSA_FOREVER - 1 saturates to no
	 * timeout (the task, cancelled first, is what ends the wait). */
	EXPECT(S, ursa_wait(&t, 1, URSA_WAIT_ALL_COMPLETED, 0, done) == 0, 6);
	ursa_cancel(t);
	EXPECT(S, ursa_wait(&t, 1, URSA_WAIT_ALL_COMPLETED, URSA_FOREVER - 1, done) == 1, 7);
	EXPECT(S, ursa_join(t, NULL) == -ECANCELED, 8);
	return NULL;
}

Test(group, wait_takes_a_timeout_and_wait_until_a_deadline)
{
	cr_assert_null(run_on(1, main_wait_timeout, NULL));
	ASSERT_SEEN(&wait_time_seen);
}

/* ------------------------- a task's outcome apart from the call's status */

static struct seen outcome_seen;

static void *main_gather_count(void *arg)
{
	struct seen *S = &outcome_seen;
	struct ursa_outcome o[3];
	struct ursa_task *t[3];

	(void)arg;
	/* Fail-fast: one fails at once, the two sleepers are cancelled. */
	struct job a[3] = {{.fail = -EIO, .result = 1}, {.sleep_ns = URSA_FOREVER},
	                   {.sleep_ns = URSA_FOREVER}};
	for (int i = 0; i < 3; i++)
		t[i] = start(&a[i], (unsigned)i, S);
	EXPECT(S, ursa_gather(t, 3, 0, o) == 3, 1);
	EXPECT(S, o[0].err == -EIO && o[1].err == -ECANCELED && o[2].err == -ECANCELED, o[1].err);
	/* return_exceptions: the same count, of what did not succeed. */
	struct job b[3] = {{.fail = -EIO, .result = 1}, {.sleep_ns = 1 * MS, .result = 2},
	                   {.sleep_ns = 2 * MS, .result = 3}};
	for (int i = 0; i < 3; i++)
		t[i] = start(&b[i], (unsigned)i, S);
	EXPECT(S, ursa_gather(t, 3, URSA_GATHER_ALL, o) == 1, 3);
	EXPECT(S, o[0].err == -EIO && o[1].err == 0 && U(o[2].result) == 3, o[1].err);
	/* All succeed: 0 either way. */
	struct job c[2] = {{.result = 1}, {.sleep_ns = 1 * MS, .result = 2}};
	for (int i = 0; i < 2; i++)
		t[i] = start(&c[i], (unsigned)i, S);
	EXPECT(S, ursa_gather(t, 2, 0, o) == 0, 5);
	for (int i = 0; i < 2; i++)
		t[i] = start(&c[i], (unsigned)i, S);
	EXPECT(S, ursa_gather(t, 2, URSA_GATHER_ALL, NULL) == 0, 6);
	return NULL;
}

Test(group, gather_returns_a_count_whatever_the_flags)
{
	cr_assert_null(run_on(2, main_gather_count, NULL));
	ASSERT_SEEN(&outcome_seen);
}

static void *main_gather_einval_task(void *arg)
{
	struct seen *S = &outcome_seen;
	struct job j[2] = {{.fail = -EINVAL, .result = 1}, {.sleep_ns = 1 * MS, .result = 2}};
	struct ursa_outcome o[2];
	struct ursa_task *t[2];
	void *r = NULL;

	(void)arg;
	/* A task's own -EINVAL (a ValueError) is an outcome, not a call
	 * error: gather counts it and releases everything. */
	for (int i = 0; i < 2; i++)
		t[i] = start(&j[i], (unsigned)i, S);
	EXPECT(S, ursa_gather(t, 2, URSA_GATHER_ALL, o) == 1, 1);
	EXPECT(S, o[0].err == -EINVAL && o[1].err == 0, o[0].err);
	/* A repeated task is the call's -EINVAL: nothing is released. */
	struct ursa_task *twice[2];
	twice[0] = twice[1] = start(&j[1], 0, S);
	EXPECT(S, ursa_gather(twice, 2, 0, o) == -EINVAL, 3);
	EXPECT(S, ursa_join(twice[0], &r) == 0 && U(r) == 2, U(r));
	return NULL;
}

Test(group, gather_of_a_task_failing_with_einval_is_not_a_call_error)
{
	cr_assert_null(run_on(2, main_gather_einval_task, NULL));
	ASSERT_SEEN(&outcome_seen);
}

static void *main_wait_for_etimedout(void *arg)
{
	struct seen *S = &outcome_seen;
	struct job own = {.fail = -ETIMEDOUT, .result = 1};
	struct job forever = {.sleep_ns = URSA_FOREVER, .result = 2};
	struct ursa_outcome o;
	struct ursa_task *t;

	(void)arg;
	/* A task that fails with -ETIMEDOUT of its own: the call succeeded. */
	t = start(&own, 1, S);
	EXPECT(S, ursa_wait_for(t, 10000 * MS, &o) == 0, 1);
	EXPECT(S, o.err == -ETIMEDOUT, o.err);
	/* The call's own timeout: the task was cancelled. */
	t = start(&forever, 1, S);
	EXPECT(S, ursa_wait_for(t, 10 * MS, &o) == -ETIMEDOUT, 3);
	EXPECT(S, o.err == -ECANCELED, o.err);
	EXPECT(S, forever.sleep_rc == -ECANCELED, forever.sleep_rc); /* it has ended */
	return NULL;
}

Test(group, wait_for_tells_its_timeout_from_a_task_failing_with_etimedout)
{
	cr_assert_null(run_on(2, main_wait_for_etimedout, NULL));
	ASSERT_SEEN(&outcome_seen);
}

struct waiting_for {
	struct job j;
	struct ursa_outcome o;
	atomic_int in;
	int rc, next_rc;
};

static void *wait_for_caller(void *arg)
{
	struct waiting_for *w = arg;
	struct ursa_task *t = NULL;

	if (ursa_spawn(&t, job_main, &w->j))
		return NULL;
	atomic_store(&w->in, 1);
	w->rc = ursa_wait_for(t, 10000 * MS, &w->o);
	w->next_rc = ursa_sleep(1 * MS);
	return NULL;
}

static void *main_wait_for_cancelled(void *arg)
{
	struct seen *S = &outcome_seen;
	struct waiting_for w = {.j = {.sleep_ns = URSA_FOREVER}};
	struct ursa_task *c;

	(void)arg;
	if (ursa_spawn_on(&c, 1, wait_for_caller, &w))
		return P(1);
	while (!atomic_load(&w.in))
		nap(100000);
	nap(2 * MS); /* it is parked in wait_for, its task asleep */
	ursa_cancel(c);
	EXPECT(S, ursa_join(c, NULL) == -ECANCELED, 1);
	EXPECT(S, w.rc == -ECANCELED, w.rc);
	EXPECT(S, w.o.err == -ECANCELED, w.o.err);
	EXPECT(S, w.j.sleep_rc == -ECANCELED, w.j.sleep_rc);
	EXPECT(S, w.next_rc == -ECANCELED, w.next_rc);
	return NULL;
}

Test(group, wait_for_in_a_cancelled_caller_returns_ecanceled_and_releases)
{
	cr_assert_null(run_on(2, main_wait_for_cancelled, NULL));
	ASSERT_SEEN(&outcome_seen);
}

static void *main_group_failure_count(void *arg)
{
	struct seen *S = &outcome_seen;
	struct job failing = {.sleep_ns = 1 * MS, .fail = -ETIMEDOUT, .result = 5};
	struct job ok = {.result = 6};
	struct ursa_outcome first;
	struct ursa_group g;

	(void)arg;
	ursa_group_enter(&g);
	EXPECT(S, ursa_group_spawn_on(&g, 1, job_main, &failing) == 0, 1);
	EXPECT(S, ursa_group_spawn_on(&g, 0, job_main, &ok) == 0, 2);
	/* No deadline anywhere: the -ETIMEDOUT is the child's own. */
	EXPECT(S, ursa_group_exit(&g, &first) == 1, 3);
	EXPECT(S, first.err == -ETIMEDOUT, first.err);
	EXPECT(S, strcmp(first.msg, "job 5 failed") == 0, 5);
	return NULL;
}

Test(group, group_exit_returns_the_failure_count_and_the_first_failure)
{
	cr_assert_null(run_on(2, main_group_failure_count, NULL));
	ASSERT_SEEN(&outcome_seen);
}

static void *main_group_deadline_first(void *arg)
{
	struct seen *S = &outcome_seen;
	struct job sleeper = {.sleep_ns = URSA_FOREVER};
	struct ursa_outcome first;
	struct ursa_scope s;
	struct ursa_group g;

	(void)arg;
	memset(&first, 0x5a, sizeof(first));
	ursa_scope_enter_after(&s, 10 * MS);
	ursa_group_enter(&g);
	EXPECT(S, ursa_group_spawn_on(&g, 1, job_main, &sleeper) == 0, 1);
	EXPECT(S, ursa_group_exit(&g, &first) == -ETIMEDOUT, 2);
	EXPECT(S, first.err == 0 && first.msg[0] == 0 && first.result == NULL, first.err);
	EXPECT(S, ursa_scope_exit(&s) == -ETIMEDOUT, 4);
	EXPECT(S, sleeper.sleep_rc == -ECANCELED, sleeper.sleep_rc);
	return NULL;
}

Test(group, group_exit_under_a_deadline_returns_etimedout_with_first_zeroed)
{
	cr_assert_null(run_on(2, main_group_deadline_first, NULL));
	ASSERT_SEEN(&outcome_seen);
}

static void *main_group_cancel_first(void *arg)
{
	struct seen *S = &outcome_seen;
	struct job sleeper = {.sleep_ns = URSA_FOREVER};
	struct ursa_outcome first;
	struct ursa_group g;

	(void)arg;
	memset(&first, 0x5a, sizeof(first));
	ursa_group_enter(&g);
	EXPECT(S, ursa_group_spawn_on(&g, 1, job_main, &sleeper) == 0, 1);
	ursa_group_cancel(&g);
	EXPECT(S, ursa_group_exit(&g, &first) == -ECANCELED, 2);
	EXPECT(S, first.err == 0 && first.msg[0] == 0, first.err);
	EXPECT(S, ursa_sleep(1 * MS) == 0, 4); /* the owner itself is fine */
	return NULL;
}

Test(group, group_cancel_returns_ecanceled_with_first_zeroed)
{
	cr_assert_null(run_on(2, main_group_cancel_first, NULL));
	ASSERT_SEEN(&outcome_seen);
}

/* -------------------------------------------------------------- placement */

static atomic_int ran_on[3];

static void *count_core(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran_on[ursa_core() % 3], 1);
	return NULL;
}

static void *main_group_any_core(void *arg)
{
	struct seen *S = &outcome_seen;
	struct ursa_outcome first;
	struct ursa_group g;

	(void)arg;
	ursa_group_enter(&g);
	for (int i = 0; i < 9; i++)
		EXPECT(S, ursa_group_spawn_on(&g, URSA_CORE_ANY, count_core, NULL) == 0, i);
	EXPECT(S, ursa_group_spawn_on(&g, ursa_ncores(), count_core, NULL) == -EINVAL, 10);
	EXPECT(S, ursa_group_exit(&g, &first) == 0, 11);
	return NULL;
}

Test(group, group_spawn_on_any_core_spreads_round_robin)
{
	cr_assert_null(run_on(3, main_group_any_core, NULL));
	ASSERT_SEEN(&outcome_seen);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(atomic_load(&ran_on[i]), 3, "core %d ran %d of the 9", i,
		             atomic_load(&ran_on[i]));
}
