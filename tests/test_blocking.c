/* SPDX-License-Identifier: MIT */
/* The blocking pool: results come back, the core keeps running meanwhile. */
#include "helpers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

static void *slow_double(void *arg)
{
	usleep(100 * 1000); /* a real blocking call, off the worker */
	return (void *)((uintptr_t)arg * 2);
}

static _Atomic int ticks;
static atomic_bool stop_ticking;

static void *ticker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_ticking)) {
		atomic_fetch_add(&ticks, 1);
		ursa_sleep(1 * MS);
	}
	return NULL;
}

static void *main_blocking(void *arg)
{
	intptr_t *out = arg;
	struct ursa_task *t;
	void *res = NULL;
	int before;

	if (ursa_spawn(&t, ticker, NULL))
		return (void *)1;
	ursa_sleep(2 * MS);
	before = atomic_load(&ticks);
	out[0] = ursa_blocking(slow_double, (void *)21, &res);
	out[1] = (intptr_t)res;
	out[2] = atomic_load(&ticks) - before; /* ticks while main was blocked */
	atomic_store(&stop_ticking, true);
	return ursa_join(t, NULL) ? (void *)2 : NULL;
}

Test(blocking, result_returns_and_the_core_keeps_running)
{
	intptr_t out[3] = {1, 0, 0};

	cr_assert_null(run_on(1, main_blocking, out));
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[1], 42);
	/* 100 ms blocked, a tick per ms: a stalled core would show 0 or 1. */
	cr_assert_gt(out[2], 10, "only %ld ticks while blocked: the core stalled", (long)out[2]);
}

/* Many blocking calls from many tasks on two cores all complete. */
static void *add_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static void *caller(void *arg)
{
	uintptr_t sum = 0;

	for (uintptr_t i = 0; i < 50; i++) {
		void *r;

		if (ursa_blocking(add_one, (void *)i, &r) != 0)
			return NULL;
		sum += (uintptr_t)r;
	}
	(void)arg;
	return (void *)sum;
}

static void *main_many(void *arg)
{
	uintptr_t *total = arg;
	struct ursa_task *ts[64];

	for (int i = 0; i < 64; i++)
		if (ursa_spawn_on(&ts[i], (unsigned)i % 2, caller, NULL))
			return (void *)1;
	for (int i = 0; i < 64; i++) {
		void *r;

		if (ursa_join(ts[i], &r))
			return (void *)2;
		*total += (uintptr_t)r;
	}
	return NULL;
}

Test(blocking, many_calls_from_two_cores_all_complete)
{
	uintptr_t total = 0;

	cr_assert_null(run_on(2, main_many, &total));
	cr_assert_eq(total, 64u * (50u * 51u / 2u));
}

/* Cancelled before a pool thread takes the job: withdrawn, -ECANCELED, and
 * the job never runs. */
static _Atomic int ran;

static void *mark_ran(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	return NULL;
}

static void *hog(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	return NULL;
}

static void *queued_then_cancelled(void *arg)
{
	int *rc = arg;

	*rc = ursa_blocking(mark_ran, NULL, NULL);
	return NULL;
}

static void *blocking_hog(void *arg)
{
	(void)arg;
	return ursa_blocking(hog, NULL, NULL) == 0 ? NULL : (void *)1;
}

static void *main_withdraw(void *arg)
{
	int *out = arg;
	struct ursa_task *h, *t;

	if (ursa_spawn(&h, blocking_hog, NULL) || ursa_spawn(&t, queued_then_cancelled, &out[0]))
		return (void *)1;
	ursa_sleep(20 * MS);
	ursa_cancel(t);
	out[1] = ursa_join(t, NULL);
	out[2] = ursa_join(h, NULL);
	return NULL;
}

Test(blocking, cancel_withdraws_a_queued_job)
{
	struct ursa_opts o = {.cores = 1, .pool_threads = 1};
	int out[3] = {1, 1, 1};
	void *res = (void *)1;

	cr_assert_eq(ursa_run(main_withdraw, out, &o, &res), 0);
	cr_assert_null(res);
	cr_assert_eq(out[0], -ECANCELED);
	cr_assert_eq(out[1], -ECANCELED);
	cr_assert_eq(out[2], 0);
	cr_assert_eq(atomic_load(&ran), 0, "a withdrawn job ran");
}

/*
 * Regression: a task that saw its job being completed (the pool thread
 * between its wake and its last store: the waiter record's WAKING, once the
 * pool's FINISHING) yielded, then parked without looking again, after the
 * pool thread's only wake: stranded forever.  Many tiny jobs from many tasks
 * make that window likely; repeat the runtime (10 rounds: it hung about one
 * run in five before the fix).
 */
Test(blocking, a_job_finishing_while_its_task_yields_does_not_strand_it, .timeout = 60)
{
	for (int round = 0; round < 10; round++) {
		uintptr_t total = 0;

		cr_assert_null(run_on(2, main_many, &total), "round %d", round);
		cr_assert_eq(total, 64u * (50u * 51u / 2u), "round %d", round);
	}
}
