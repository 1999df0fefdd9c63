/* SPDX-License-Identifier: MIT */
/* Tasks: spawn, join, detach, cancel, yield, names, cores. */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

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
	ursa_sleep(10 * MS);
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
	ursa_sleep(10 * MS);
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
		ursa_sleep(5 * MS);
		ursa_detach(t);
	}
	while (atomic_load(&detached_ran) < 101)
		ursa_sleep(1 * MS);
	return NULL;
}

Test(task, detached_tasks_run_and_are_released)
{
	struct seen s = {0};

	run_on(2, main_detach, &s);
	ASSERT_SEEN(&s);
	cr_assert_eq(atomic_load(&detached_ran), 101);
}

/* join of oneself is refused; join of a NULL handle is refused. */
static void *main_join_self(void *arg)
{
	struct seen *s = arg;

	EXPECT_EQ(s, ursa_join(ursa_self(), NULL), -EDEADLK);
	EXPECT_EQ(s, ursa_join(NULL, NULL), -EINVAL);
	return NULL;
}

Test(task, join_self_is_edeadlk)
{
	struct seen s = {0};

	run_on(1, main_join_self, &s);
	ASSERT_SEEN(&s);
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
