/* SPDX-License-Identifier: MIT */
/* Time: the clock, sleeps on io_uring timeouts, many sleeps at once. */
#include "helpers.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static void *main_sleep(void *arg)
{
	uint64_t *out = arg;
	uint64_t t0 = ursa_now();

	out[0] = (uint64_t)ursa_sleep(20 * MS);
	out[1] = ursa_now() - t0;
	t0 = ursa_now();
	out[2] = (uint64_t)ursa_sleep_until(t0 - 1); /* in the past: at once */
	out[3] = (uint64_t)ursa_sleep(0);            /* a yield */
	return NULL;
}

Test(time, sleep_lasts_at_least_its_duration)
{
	uint64_t out[4] = {1, 0, 1, 1};

	run_on(1, main_sleep, out);
	cr_assert_eq((int)out[0], 0);
	cr_assert_geq(out[1], 20 * MS, "slept only %lu ns", (unsigned long)out[1]);
	cr_assert_eq((int)out[2], 0);
	cr_assert_eq((int)out[3], 0);
}

Test(time, now_is_monotonic_and_in_nanoseconds)
{
	uint64_t a = ursa_now();
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
	uint64_t b = ursa_now();

	cr_assert_geq(b - a, 5 * MS);
	cr_assert_lt(b - a, 5ull * 1000 * MS, "not nanoseconds?");
}

/*
 * 100 000 concurrent sleeps of 200 ms overlap: done one after another they
 * would take 5.5 hours; together they take about 200 ms plus set-up.  The
 * bound below is deliberately loose (noisy shared machines); it can only
 * fail if the sleeps are serialised.
 */
#define NSLEEPERS 100000
static _Atomic int woke_ok;

static void *sleeper(void *arg)
{
	(void)arg;
	if (ursa_sleep(200 * MS) == 0)
		atomic_fetch_add(&woke_ok, 1);
	return NULL;
}

static void *main_many_sleeps(void *arg)
{
	uint64_t *elapsed = arg;
	struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .stack_size = 16 * 1024};
	uint64_t t0 = ursa_now();

	for (int i = 0; i < NSLEEPERS; i++)
		if (ursa_spawn_ex(NULL, (unsigned)i % ursa_ncores(), sleeper, NULL, &so) != 0)
			return (void *)1;
	while (atomic_load(&woke_ok) < NSLEEPERS)
		nap(10 * MS);
	*elapsed = ursa_now() - t0;
	return NULL;
}

Test(time, hundred_thousand_sleeps_overlap, .timeout = 120)
{
	uint64_t elapsed = 0;

	cr_assert_null(run_on(2, main_many_sleeps, &elapsed));
	cr_assert_eq(atomic_load(&woke_ok), NSLEEPERS);
	cr_assert_lt(elapsed, 60000 * MS, "took %lu ms: the sleeps did not overlap",
	             (unsigned long)(elapsed / MS));
}

/*
 * More timeouts in flight than the ring has CQ entries (ring of 8 SQEs, CQ of
 * 32): the kernel's overflow list must be flushed and nothing lost.
 */
static void *main_overflow(void *arg)
{
	int *ok = arg;
	struct ursa_task *ts[2000];

	for (int i = 0; i < 2000; i++)
		if (ursa_spawn(&ts[i], sleeper, NULL) != 0)
			return (void *)1;
	for (int i = 0; i < 2000; i++)
		if (ursa_join(ts[i], NULL) != 0)
			return (void *)2;
	*ok = atomic_load(&woke_ok);
	return NULL;
}

Test(time, cq_overflow_and_full_sq_lose_no_completion)
{
	struct ursa_opts o = {.cores = 1, .ring_entries = 8};
	int ok = 0;
	void *res = (void *)1;

	cr_assert_eq(ursa_run(main_overflow, &ok, &o, &res), 0);
	cr_assert_null(res);
	cr_assert_eq(ok, 2000);
}

/* ------------------------------------------------------------ unit helpers */

/* A constant expression: usable in a static initialiser. */
static const uint64_t fifty_ms = URSA_MS(50);

Test(time, unit_helpers_convert_round_and_saturate)
{
	uint64_t big = (uint64_t)1 << 40;
	float quarter = 0.25f;
	int minus_one = -1;

	cr_assert_eq(fifty_ms, 50000000u);
	cr_assert_eq(URSA_US(3), 3000u);
	cr_assert_eq(URSA_MS(250), 250000000u);
	cr_assert_eq(URSA_SEC(2), 2000000000u);
	/* Fractions round to the nearest nanosecond, exactly. */
	cr_assert_eq(URSA_SEC(0.5), 500000000u);
	cr_assert_eq(URSA_SEC(0.3), 300000000u);
	cr_assert_eq(URSA_MS(quarter), 250000u);
	cr_assert_eq(URSA_US(1.0004), 1000u);
	cr_assert_eq(URSA_US(1.0006), 1001u);
	/* Negative and NaN are 0; absurd values are forever, never wrapped. */
	cr_assert_eq(URSA_MS(minus_one), 0u);
	cr_assert_eq(URSA_SEC(-0.5), 0u);
	cr_assert_eq(URSA_SEC(NAN), 0u);
	cr_assert_eq(URSA_SEC(1e12), URSA_FOREVER);
	cr_assert_eq(URSA_SEC(big), URSA_FOREVER);
	cr_assert_eq(URSA_MS(INFINITY), URSA_FOREVER);
	/* Just below 2^63 ns still converts. */
	cr_assert_eq(URSA_SEC(9.2e9), (uint64_t)9.2e18);
}
