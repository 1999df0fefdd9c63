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
	struct ursa_task *t;
	void *res = NULL;
	int *rcs = arg;

	rcs[0] = ursa_spawn(&t, ret_arg_plus_one, (void *)41);
	rcs[1] = ursa_join(t, &res);
	return res;
}

Test(task, join_returns_the_task_result)
{
	int rcs[2] = {-1, -1};
	void *res = run_on(1, main_spawn_join, rcs);

	cr_assert_eq(rcs[0], 0);
	cr_assert_eq(rcs[1], 0);
	cr_assert_eq((uintptr_t)res, 42);
}

static void *return_main(void *arg)
{
	return arg;
}

Test(task, run_returns_main_result)
{
	cr_assert_eq((uintptr_t)run_on(2, return_main, (void *)7), 7);
}

/* Yield interleaves two tasks on one core in strict turns. */
struct pingpong {
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

	if (ursa_spawn(&ta, yielder, &a) || ursa_spawn(&tb, yielder, &b))
		return (void *)1;
	if (ursa_join(ta, NULL) || ursa_join(tb, NULL))
		return (void *)2;
	return NULL;
}

Test(task, yield_alternates_tasks_on_a_core)
{
	struct pingpong pp = {0};

	cr_assert_null(run_on(1, main_yield, &pp));
	cr_assert_str_eq(pp.log, "ababababab");
}

/* spawn_on runs the task on the core asked for; join works across cores. */
static void *report_core(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)(ursa_core() + 100);
}

static void *main_spawn_on(void *arg)
{
	uintptr_t *out = arg;
	struct ursa_task *t;
	void *res = NULL;

	out[0] = ursa_core();
	out[1] = ursa_ncores();
	if (ursa_spawn_on(&t, 1, report_core, NULL) != 0)
		return (void *)1;
	if (ursa_join(t, &res) != 0)
		return (void *)2;
	out[2] = (uintptr_t)res;
	out[3] = (uintptr_t)ursa_spawn_on(&t, 2, report_core, NULL);
	return NULL;
}

Test(task, spawn_on_runs_on_that_core_and_joins_across_cores)
{
	uintptr_t out[4] = {99, 99, 99, 99};

	cr_assert_null(run_on(2, main_spawn_on, out));
	cr_assert_eq(out[0], 0, "main runs on core 0");
	cr_assert_eq(out[1], 2);
	cr_assert_eq(out[2], 101, "the task ran on core 1");
	cr_assert_eq((int)out[3], -EINVAL, "no core 2");
}

/* Cancel: a task sleeping forever wakes with -ECANCELED; join says so. */
static void *sleep_forever_record(void *arg)
{
	int *rc = arg;

	*rc = ursa_sleep(URSA_FOREVER);
	return (void *)1;
}

static void *main_cancel(void *arg)
{
	int *out = arg;
	struct ursa_task *t;
	void *res = (void *)99;

	out[0] = ursa_spawn(&t, sleep_forever_record, &out[1]);
	ursa_sleep(10 * MS);
	out[2] = ursa_cancel(t);
	out[3] = ursa_join(t, &res);
	out[4] = res == (void *)99; /* nothing stored for a cancelled task */
	return NULL;
}

Test(task, cancel_wakes_sleeper_with_ecanceled_and_join_reports_it)
{
	int out[5] = {1, 1, 1, 1, 0};

	run_on(1, main_cancel, out);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], -ECANCELED, "sleep returned %d", out[1]);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(out[3], -ECANCELED);
	cr_assert(out[4], "join stored a result for a cancelled task");
}

/* Cancel across cores: the sleeper lives on core 1, the canceller on 0. */
static void *main_cancel_remote(void *arg)
{
	int *out = arg;
	struct ursa_task *t;

	out[0] = ursa_spawn_on(&t, 1, sleep_forever_record, &out[1]);
	ursa_sleep(10 * MS);
	out[2] = ursa_cancel(t);
	out[3] = ursa_join(t, NULL);
	return NULL;
}

Test(task, cancel_reaches_a_task_on_another_core)
{
	int out[4] = {1, 1, 1, 1};

	run_on(2, main_cancel_remote, out);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], -ECANCELED);
	cr_assert_eq(out[3], -ECANCELED);
}

/* Cancelling a task that already ended says so; its result is intact. */
static void *main_cancel_ended(void *arg)
{
	int *out = arg;
	struct ursa_task *t;
	void *res = NULL;

	out[0] = ursa_spawn(&t, ret_arg_plus_one, (void *)1);
	ursa_yield(); /* let it run to the end */
	ursa_yield();
	out[1] = ursa_cancel(t);
	out[2] = ursa_join(t, &res);
	out[3] = (int)(uintptr_t)res;
	return NULL;
}

Test(task, cancel_after_end_is_esrch_and_result_survives)
{
	int out[4] = {1, 1, 1, 0};

	run_on(1, main_cancel_ended, out);
	cr_assert_eq(out[1], -ESRCH);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(out[3], 2);
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
	(void)arg;
	for (int i = 0; i < 100; i++) {
		struct ursa_task *t;

		if (ursa_spawn_on(&t, (unsigned)i % ursa_ncores(), bump, NULL) != 0)
			return (void *)1;
		ursa_detach(t);
	}
	/* And detach-after-end: */
	{
		struct ursa_task *t;

		if (ursa_spawn(&t, bump, NULL) != 0)
			return (void *)1;
		ursa_sleep(5 * MS);
		ursa_detach(t);
	}
	while (atomic_load(&detached_ran) < 101)
		ursa_sleep(1 * MS);
	return NULL;
}

Test(task, detached_tasks_run_and_are_released)
{
	cr_assert_null(run_on(2, main_detach, NULL));
	cr_assert_eq(atomic_load(&detached_ran), 101);
}

/* join of oneself is refused; join of a NULL handle is refused. */
static void *main_join_self(void *arg)
{
	int *out = arg;

	out[0] = ursa_join(ursa_self(), NULL);
	out[1] = ursa_join(NULL, NULL);
	return NULL;
}

Test(task, join_self_is_edeadlk)
{
	int out[2] = {0, 0};

	run_on(1, main_join_self, out);
	cr_assert_eq(out[0], -EDEADLK);
	cr_assert_eq(out[1], -EINVAL);
}

/* Names are kept (truncated) and can be read back. */
static void *main_names(void *arg)
{
	char *out = arg;
	struct ursa_spawn_opts so = {.name = "worker-with-a-rather-long-name-indeed"};
	struct ursa_task *t;

	if (ursa_spawn_ex(&t, 0, ret_arg_plus_one, NULL, &so) != 0)
		return (void *)1;
	snprintf(out, 64, "%s|%s", ursa_task_name(t), ursa_task_name(ursa_self()));
	return ursa_join(t, NULL) ? (void *)2 : NULL;
}

Test(task, names_are_kept_and_truncated)
{
	char out[64] = "";

	cr_assert_null(run_on(1, main_names, out));
	cr_assert_str_eq(out, "worker-with-a-rather-long-name-|main");
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
	long *sum = arg;

	if (!ts)
		return (void *)1;
	for (long i = 0; i < MILLION; i++)
		if (ursa_spawn_ex(&ts[i], 0, yield_once, (void *)i, &so) != 0) {
			*sum = -i;
			return (void *)2;
		}
	/* Every task is now alive: let them all start (each yields once). */
	ursa_yield();
	for (long i = 0; i < MILLION; i++) {
		void *r;

		if (ursa_join(ts[i], &r) != 0)
			return (void *)3;
		*sum += (long)r;
	}
	free(ts);
	return NULL;
}

Test(task, a_million_tasks_alive_at_once_spawn_and_join, .timeout = 300)
{
	long sum = 0;

	cr_assert_null(run_on(1, main_million, &sum), "failed at %ld", sum);
	cr_assert_eq(sum, (long)MILLION * (MILLION - 1) / 2);
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
