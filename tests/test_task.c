/* SPDX-License-Identifier: MIT */
/* Tasks: spawn, join, detach, cancel, yield, names, cores. */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static void *ret_arg_plus_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static void *main_spawn_join(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *t;
	void *res = NULL;

	EXPECT_EQ(s, ursa_spawn(&t, ret_arg_plus_one, (void *)41), 0);
	EXPECT_EQ(s, ursa_join(t, &res), 0);
	EXPECT_EQ(s, (uintptr_t)res, 42);
	return NULL;
}

Test(task, join_returns_the_task_result)
{
	struct seen s = {0};

	run_on(1, main_spawn_join, &s);
	ASSERT_SEEN(&s);
}

static void *return_main(void *arg)
{
	return arg;
}

/* What ursa_run itself returns: asserted outside the runtime. */
Test(task, run_returns_main_result)
{
	cr_assert_eq((uintptr_t)run_on(2, return_main, (void *)7), 7);
}

/* Yield interleaves two tasks on one core in strict turns. */
struct pingpong {
	struct seen s;
	char log[64];
	_Atomic int n;
};

struct pp_arg {
	struct pingpong *pp;
	char who;
};

static void *yielder(void *arg)
{
	struct pp_arg *a = arg;

	for (int i = 0; i < 5; i++) {
		a->pp->log[atomic_fetch_add(&a->pp->n, 1)] = a->who;
		ursa_yield();
	}
	return NULL;
}

static void *main_yield(void *arg)
{
	struct pingpong *pp = arg;
	struct pp_arg a = {pp, 'a'}, b = {pp, 'b'};
	struct ursa_task *ta, *tb;

	EXPECT_EQ(&pp->s, ursa_spawn(&ta, yielder, &a), 0);
	EXPECT_EQ(&pp->s, ursa_spawn(&tb, yielder, &b), 0);
	JOIN_OK(&pp->s, ta);
	JOIN_OK(&pp->s, tb);
	EXPECT(&pp->s, strcmp(pp->log, "ababababab") == 0, pp->n);
	return NULL;
}

Test(task, yield_alternates_tasks_on_a_core)
{
	struct pingpong pp = {0};

	run_on(1, main_yield, &pp);
	ASSERT_SEEN(&pp.s);
}

/* spawn_on runs the task on the core asked for; join works across cores. */
static void *report_core(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)(ursa_core() + 100);
}

static void *main_spawn_on(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *t;
	void *res = NULL;

	EXPECT_EQ(s, ursa_core(), 0); /* main runs on core 0 */
	EXPECT_EQ(s, ursa_ncores(), 2);
	EXPECT_EQ(s, ursa_spawn_on(&t, 1, report_core, NULL), 0);
	EXPECT_EQ(s, ursa_join(t, &res), 0);
	EXPECT_EQ(s, (uintptr_t)res, 101); /* the task ran on core 1 */
	EXPECT_EQ(s, ursa_spawn_on(&t, 2, report_core, NULL), -EINVAL); /* no core 2 */
	return NULL;
}

Test(task, spawn_on_runs_on_that_core_and_joins_across_cores)
{
	struct seen s = {0};

	run_on(2, main_spawn_on, &s);
	ASSERT_SEEN(&s);
}

/* Cancel: a task sleeping forever wakes with -ECANCELED; join says so. */
static void *sleep_forever_expect_cancel(void *arg)
{
	struct seen *s = arg;

	EXPECT_EQ(s, ursa_sleep(URSA_FOREVER), -ECANCELED);
	return (void *)1;
}

static void *main_cancel(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *t;
	void *res = (void *)99;

	EXPECT_EQ(s, ursa_spawn(&t, sleep_forever_expect_cancel, s), 0);
	nap(10 * MS);
	EXPECT_EQ(s, ursa_cancel(t), 0);
	EXPECT_EQ(s, ursa_join(t, &res), -ECANCELED);
	EXPECT(s, res == (void *)99, (intptr_t)res); /* nothing stored for a cancelled task */
	return NULL;
}

Test(task, cancel_wakes_sleeper_with_ecanceled_and_join_reports_it)
{
	struct seen s = {0};

	run_on(1, main_cancel, &s);
	ASSERT_SEEN(&s);
}

/* Cancel across cores: the sleeper lives on core 1, the canceller on 0. */
static void *main_cancel_remote(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *t;

	EXPECT_EQ(s, ursa_spawn_on(&t, 1, sleep_forever_expect_cancel, s), 0);
	nap(10 * MS);
	EXPECT_EQ(s, ursa_cancel(t), 0);
	EXPECT_EQ(s, ursa_join(t, NULL), -ECANCELED);
	return NULL;
}

Test(task, cancel_reaches_a_task_on_another_core)
{
	struct seen s = {0};

	run_on(2, main_cancel_remote, &s);
	ASSERT_SEEN(&s);
}

/* Cancelling a task that already ended says so; its result is intact. */
static void *main_cancel_ended(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *t;
	void *res = NULL;

	EXPECT_EQ(s, ursa_spawn(&t, ret_arg_plus_one, (void *)1), 0);
	ursa_yield(); /* let it run to the end */
	ursa_yield();
	EXPECT_EQ(s, ursa_cancel(t), -ESRCH);
	EXPECT_EQ(s, ursa_join(t, &res), 0);
	EXPECT_EQ(s, (uintptr_t)res, 2);
	return NULL;
}

Test(task, cancel_after_end_is_esrch_and_result_survives)
{
	struct seen s = {0};

	run_on(1, main_cancel_ended, &s);
	ASSERT_SEEN(&s);
}

/* Detached tasks run to completion and are freed (ASan checks the leak). */
static _Atomic int detached_ran;

static void *bump(void *arg)
{
	(void)arg;
	ursa_yield();
	atomic_fetch_add(&detached_ran, 1);
	return NULL;
}

static void *main_detach(void *arg)
{
	struct seen *s = arg;

	for (int i = 0; i < 100; i++) {
		struct ursa_task *t;

		EXPECT_EQ(s, ursa_spawn_on(&t, (unsigned)i % ursa_ncores(), bump, NULL), 0);
		ursa_detach(t);
	}
	/* And detach-after-end: */
	{
		struct ursa_task *t;

		EXPECT_EQ(s, ursa_spawn(&t, bump, NULL), 0);
		nap(5 * MS);
		ursa_detach(t);
	}
	while (atomic_load(&detached_ran) < 101)
		nap(1 * MS);
	return NULL;
}

Test(task, detached_tasks_run_and_are_released)
{
	struct seen s = {0};

	run_on(2, main_detach, &s);
	ASSERT_SEEN(&s);
	cr_assert_eq(atomic_load(&detached_ran), 101);
}

/*
 * Misuse of ursa_join is fatal: no return value could report it, since every
 * errno may be a task's outcome.  Run in a forked child, which must abort
 * with a message naming the call and the misuse.
 */
static void expect_abort(ursa_fn main, unsigned cores, const char *message)
{
	char buf[4096];
	int status = run_in_child(main, NULL, cores, buf, sizeof(buf));

	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child did not abort (status %#x); stderr: %s", status, buf);
	cr_assert_not_null(strstr(buf, message), "stderr: %s", buf);
}

static void *main_join_self(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ursa_join(ursa_self(), NULL);
}

Test(task, join_of_itself_aborts)
{
	expect_abort(main_join_self, 1, "ursa: ursa_join: a task cannot join itself (task 'main')");
}

static void *main_join_null(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ursa_join(NULL, NULL);
}

Test(task, join_of_null_aborts)
{
	expect_abort(main_join_null, 1, "ursa: ursa_join: the task handle is NULL");
}

static void *main_join_detached(void *arg)
{
	struct ursa_spawn_opts o = {.name = "loose"};
	struct ursa_task *t;

	(void)arg;
	if (ursa_spawn_ex(&t, 0, ret_arg_plus_one, NULL, &o))
		return NULL;
	ursa_detach(t); /* it has not run yet: the handle is still valid memory */
	return (void *)(intptr_t)ursa_join(t, NULL);
}

Test(task, join_of_a_detached_task_aborts)
{
	expect_abort(main_join_detached, 1, "ursa: ursa_join: the task was detached (task 'loose')");
}

static void *main_cancel_and_join_self(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ursa_cancel_and_join(ursa_self(), NULL);
}

Test(task, cancel_and_join_misuse_aborts_naming_the_call)
{
	expect_abort(main_cancel_and_join_self, 1,
	             "ursa: ursa_cancel_and_join: a task cannot join itself (task 'main')");
}

/* Names are kept (truncated) and can be read back. */
static void *main_names(void *arg)
{
	struct seen *s = arg;
	struct ursa_spawn_opts so = {.name = "worker-with-a-rather-long-name-indeed"};
	struct ursa_task *t;

	EXPECT_EQ(s, ursa_spawn_ex(&t, 0, ret_arg_plus_one, NULL, &so), 0);
	EXPECT(s, strcmp(ursa_task_name(t), "worker-with-a-rather-long-name-") == 0,
	       strlen(ursa_task_name(t)));
	EXPECT(s, strcmp(ursa_task_name(ursa_self()), "main") == 0, 0);
	JOIN_OK(s, t);
	return NULL;
}

Test(task, names_are_kept_and_truncated)
{
	struct seen s = {0};

	run_on(1, main_names, &s);
	ASSERT_SEEN(&s);
}

/* Calls outside a task are refused, not crashes. */
Test(task, calls_outside_a_runtime_return_eperm)
{
	struct ursa_task *t;

	cr_assert_eq(ursa_spawn(&t, ret_arg_plus_one, NULL), -EPERM);
	cr_assert_eq(ursa_sleep(1), -EPERM);
	cr_assert_eq(ursa_blocking(ret_arg_plus_one, NULL, NULL), -EPERM);
	cr_assert_eq(ursa_ncores(), 0);
	cr_assert_null(ursa_self());
}

/*
 * One million tasks alive at once, each with its own guarded stack, then all
 * joined.  Small stacks: the point is the count (mappings, memory), not depth.
 */
#define MILLION 1000000

static void *yield_once(void *arg)
{
	ursa_yield();
	return arg;
}

static void *main_million(void *arg)
{
	struct ursa_task **ts = malloc(sizeof(*ts) * MILLION);
	struct ursa_spawn_opts so = {.stack_size = 16 * 1024};
	struct seen *s = arg;
	long sum = 0, spawned = 0;

	EXPECT(s, ts != NULL, 0);
	if (!ts)
		return NULL;
	while (spawned < MILLION &&
	       ursa_spawn_ex(&ts[spawned], 0, yield_once, (void *)spawned, &so) == 0)
		spawned++;
	EXPECT_EQ(s, spawned, MILLION); /* the value: how many could be spawned */
	/* Every task is now alive: let them all start (each yields once). */
	ursa_yield();
	for (long i = 0; i < spawned; i++) {
		void *r = NULL;

		EXPECT_EQ(s, ursa_join(ts[i], &r), 0);
		sum += (long)r;
	}
	EXPECT_EQ(s, sum, (long)MILLION * (MILLION - 1) / 2);
	free(ts);
	return NULL;
}

Test(task, a_million_tasks_alive_at_once_spawn_and_join, .timeout = 300)
{
	struct seen s = {0};

	run_on(1, main_million, &s);
	ASSERT_SEEN(&s);
}

/* --------------------------------------------- flags a call does not know */

static atomic_int ran_count;

static void *count_run(void *arg)
{
	atomic_fetch_add(&ran_count, 1);
	return arg;
}

static struct seen spawn_flags_seen;

static void *main_spawn_bad_flags(void *arg)
{
	struct seen *S = &spawn_flags_seen;
	struct ursa_spawn_opts bad = {.flags = 0x80};
	struct ursa_spawn_opts bad_detached = {.flags = URSA_SPAWN_DETACHED | 0x2};
	struct ursa_task *t = (struct ursa_task *)arg; /* a canary: never written */

	EXPECT(S, ursa_spawn_ex(&t, 0, count_run, NULL, &bad) == -EINVAL, 1);
	EXPECT(S, t == (struct ursa_task *)arg, 2);
	EXPECT(S, ursa_spawn_ex(NULL, 0, count_run, NULL, &bad_detached) == -EINVAL, 3);
	ursa_yield(); /* a task that was spawned anyway would run here */
	EXPECT(S, atomic_load(&ran_count) == 0, atomic_load(&ran_count));
	return NULL;
}

Test(task, spawn_ex_rejects_unknown_flag_bits)
{
	cr_assert_null(run_on(1, main_spawn_bad_flags, &ran_count));
	ASSERT_SEEN(&spawn_flags_seen);
	cr_assert_eq(atomic_load(&ran_count), 0, "a task was spawned with unknown flags");
}

/* ------------------------------------- joining: the outcome and the handle */

static void *fail_einval(void *arg)
{
	(void)arg;
	return ursa_task_fail(-EINVAL, "a ValueError");
}

static struct seen join_seen;

static void *main_join_failed(void *arg)
{
	struct ursa_task *t;
	void *r = arg;

	EXPECT(&join_seen, ursa_spawn(&t, fail_einval, NULL) == 0, 1);
	/* The task's own -EINVAL, not a call error: t is released (LSan). */
	EXPECT(&join_seen, ursa_join(t, &r) == -EINVAL, 2);
	EXPECT(&join_seen, r == arg, 3); /* *result is only written on 0 */
	return NULL;
}

Test(task, join_returns_a_failed_tasks_einval_and_releases_it)
{
	cr_assert_null(run_on(1, main_join_failed, &join_seen));
	ASSERT_SEEN(&join_seen);
}

/* A child parked on an event that nobody sets; it records how its wait
 * ended, and says when it is parked. */
struct parked {
	struct ursa_event never, entered;
	int wait_rc;
	int join_rc, next_wait_rc;
	struct ursa_outcome out;
	bool use_outcome, cancel_and_join;
	struct ursa_task *t; /* for first_joiner */
};

static void *parked_child(void *arg)
{
	struct parked *p = arg;

	ursa_event_set(&p->entered);
	p->wait_rc = ursa_event_wait(&p->never);
	return (void *)(uintptr_t)7;
}

/* Joins the parked child; cancelled meanwhile by main. */
static void *joiner(void *arg)
{
	struct parked *p = arg;
	struct ursa_task *t;

	if (ursa_spawn(&t, parked_child, p))
		return NULL;
	if (p->use_outcome)
		p->join_rc = ursa_join_outcome(t, &p->out);
	else if (p->cancel_and_join)
		p->join_rc = ursa_cancel_and_join(t, NULL);
	else
		p->join_rc = ursa_join(t, NULL);
	p->next_wait_rc = ursa_sleep(1 * MS); /* the cancellation stays in force */
	return NULL;
}

static void *main_join_cancelled(void *arg)
{
	struct parked *p = arg;
	struct ursa_task *j;

	if (ursa_spawn(&j, joiner, p))
		return arg;
	/* One core: once the child is in, the joiner is parked in its join. */
	EXPECT(&join_seen, ursa_event_wait(&p->entered) == 0, 1);
	ursa_cancel(j);
	EXPECT(&join_seen, ursa_join(j, NULL) == -ECANCELED, 2);
	return NULL;
}

static void run_join_cancelled(struct parked *p)
{
	p->never = (struct ursa_event)URSA_EVENT_INIT;
	p->entered = (struct ursa_event)URSA_EVENT_INIT;
	cr_assert_null(run_on(1, main_join_cancelled, p));
	ASSERT_SEEN(&join_seen);
	cr_assert_eq(p->wait_rc, -ECANCELED, "the child was not cancelled in turn");
	cr_assert_eq(p->next_wait_rc, -ECANCELED, "the joiner's cancellation was lost");
}

Test(task, join_in_a_cancelled_caller_cancels_waits_for_and_releases_the_task)
{
	struct parked p = {0};

	run_join_cancelled(&p);
	cr_assert_eq(p.join_rc, -ECANCELED, "join returned %d", p.join_rc);
}

Test(task, join_outcome_in_a_cancelled_caller_returns_ecanceled_with_the_outcome)
{
	struct parked p = {.use_outcome = true};

	run_join_cancelled(&p);
	cr_assert_eq(p.join_rc, -ECANCELED, "the call's own status");
	cr_assert_eq(p.out.err, -ECANCELED, "the task's outcome");
}

Test(task, cancel_and_join_cancels_waits_and_releases_even_in_a_cancelled_caller)
{
	struct parked p = {.cancel_and_join = true};

	run_join_cancelled(&p);
	cr_assert_eq(p.join_rc, -ECANCELED);
}

static void *main_result_first(void *arg)
{
	struct ursa_task *t;
	struct ursa_outcome o;
	void *r = NULL;

	(void)arg;
	/* The task has ended with its result before the caller is cancelled:
	 * a join that need not wait completes, and the result wins. */
	EXPECT(&join_seen, ursa_spawn(&t, ret_arg_plus_one, (void *)41) == 0, 1);
	while (!ursa_task_done(t))
		ursa_yield();
	ursa_cancel(ursa_self());
	EXPECT(&join_seen, ursa_join(t, &r) == 0 && r == (void *)42, (intptr_t)r);
	EXPECT(&join_seen, ursa_spawn(&t, ret_arg_plus_one, (void *)1) == 0, 3);
	while (!ursa_task_done(t))
		ursa_yield();
	EXPECT(&join_seen, ursa_join_outcome(t, &o) == 0, 5);
	EXPECT(&join_seen, o.err == 0 && o.result == (void *)2, o.err);
	return NULL;
}

Test(task, join_result_that_came_first_wins_over_the_callers_cancellation)
{
	cr_assert_null(run_on(1, main_result_first, NULL));
	ASSERT_SEEN(&join_seen);
}

static void *first_joiner(void *arg)
{
	struct parked *p = arg;

	return (void *)(intptr_t)ursa_join_outcome(p->t, &p->out);
}

static void *main_join_outcome_misuse(void *arg)
{
	struct parked *p = arg;
	struct ursa_task *t, *j;
	struct ursa_outcome o;
	void *r = NULL;

	if (ursa_spawn(&t, parked_child, p))
		return arg;
	p->t = t;
	if (ursa_spawn(&j, first_joiner, p))
		return arg;
	/* One core: both have run and parked (the child on its event, the
	 * first joiner in its join) once the child has said so. */
	EXPECT(&join_seen, ursa_event_wait(&p->entered) == 0, 1);
	ursa_yield();
	memset(&o, 0x5a, sizeof(o));
	EXPECT(&join_seen, ursa_join_outcome(t, &o) == -EINVAL, 2); /* joined already */
	EXPECT(&join_seen, ursa_join_outcome(ursa_self(), &o) == -EDEADLK, 3);
	EXPECT(&join_seen, ursa_join_outcome(NULL, &o) == -EINVAL, 4);
	EXPECT(&join_seen, o.err == 0x5a5a5a5a, o.err); /* untouched */
	/* The first joiner still owns its join: end the child, and it sees it. */
	ursa_event_set(&p->never);
	EXPECT(&join_seen, ursa_join(j, &r) == 0 && r == NULL, (intptr_t)r);
	EXPECT(&join_seen, p->out.err == 0 && p->out.result == (void *)(uintptr_t)7, p->out.err);
	return NULL;
}

Test(task, join_outcome_reports_misuse_without_touching_the_handle)
{
	struct parked p = {.never = URSA_EVENT_INIT, .entered = URSA_EVENT_INIT};

	cr_assert_null(run_on(1, main_join_outcome_misuse, &p));
	ASSERT_SEEN(&join_seen);
	cr_assert_eq(p.wait_rc, 0);
}

static void *main_cancel_and_join_ended(void *arg)
{
	struct ursa_task *t;
	void *r = NULL;

	(void)arg;
	EXPECT(&join_seen, ursa_spawn(&t, ret_arg_plus_one, (void *)9) == 0, 1);
	while (!ursa_task_done(t))
		ursa_yield();
	EXPECT(&join_seen, ursa_cancel_and_join(t, &r) == 0, 2);
	EXPECT(&join_seen, r == (void *)10, (intptr_t)r);
	EXPECT(&join_seen, ursa_cancel_and_join(NULL, &r) == 0, 4);
	return NULL;
}

Test(task, cancel_and_join_returns_the_result_of_a_task_that_had_ended)
{
	cr_assert_null(run_on(1, main_cancel_and_join_ended, NULL));
	ASSERT_SEEN(&join_seen);
}

Test(task, cancel_and_join_of_null_does_nothing)
{
	/* Outside a runtime too: cleanup code may call it for a task it never
	 * spawned. */
	cr_assert_eq(ursa_cancel_and_join(NULL, NULL), 0);
}

/* -------------------------------------------------------------- placement */

static struct seen place_seen;

static void *main_any_core(void *arg)
{
	int *per_core = arg;
	struct ursa_task *t[9];
	void *r;

	for (int i = 0; i < 9; i++)
		EXPECT(&place_seen, ursa_spawn_on(&t[i], URSA_CORE_ANY, report_core, NULL) == 0, i);
	for (int i = 0; i < 9; i++) {
		EXPECT(&place_seen, ursa_join(t[i], &r) == 0, 100 + i);
		/* From core 0 the k-th goes to core k mod 3 (report_core adds 100). */
		EXPECT(&place_seen, (uintptr_t)r == (uintptr_t)(100 + i % 3), (intptr_t)r);
		per_core[((uintptr_t)r - 100) % 3]++;
	}
	return NULL;
}

Test(task, spawn_on_any_core_spreads_round_robin)
{
	int per_core[3] = {0};

	cr_assert_null(run_on(3, main_any_core, per_core));
	ASSERT_SEEN(&place_seen);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(per_core[i], 3, "core %d ran %d of the 9", i, per_core[i]);
}

static void *main_no_such_core(void *arg)
{
	struct ursa_spawn_opts o = {.name = "x"};
	unsigned n = ursa_ncores();
	struct ursa_task *t = arg;

	EXPECT(&place_seen, ursa_spawn_on(&t, n, report_core, NULL) == -EINVAL, 1);
	EXPECT(&place_seen, ursa_spawn_on(&t, n + 1, report_core, NULL) == -EINVAL, 2);
	EXPECT(&place_seen, ursa_spawn_ex(&t, n, report_core, NULL, &o) == -EINVAL, 3);
	EXPECT(&place_seen, t == arg, 4); /* untouched */
	/* URSA_CORE_ANY is the one core number above the last that works. */
	EXPECT(&place_seen, ursa_spawn_ex(&t, URSA_CORE_ANY, report_core, NULL, &o) == 0, 5);
	EXPECT(&place_seen, ursa_join(t, NULL) == 0, 6);
	return NULL;
}

Test(task, spawn_on_a_core_that_does_not_exist_is_einval)
{
	cr_assert_null(run_on(2, main_no_such_core, &place_seen));
	ASSERT_SEEN(&place_seen);
}
