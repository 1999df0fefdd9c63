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
	struct seen *s = arg;
	uint64_t t0 = ursa_now(), slept;

	EXPECT_EQ(s, ursa_sleep(20 * MS), 0);
	slept = ursa_now() - t0;
	EXPECT(s, slept >= 20 * MS, slept);
	t0 = ursa_now();
	EXPECT_EQ(s, ursa_sleep_until(t0 - 1), 0); /* in the past: at once */
	EXPECT_EQ(s, ursa_sleep(0), 0);            /* a yield */
	return NULL;
}

Test(time, sleep_lasts_at_least_its_duration)
{
	struct seen s = {0};

	run_on(1, main_sleep, &s);
	ASSERT_SEEN(&s);
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
	struct seen *s = arg;
	struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .stack_size = 16 * 1024};
	uint64_t t0 = ursa_now(), elapsed_ms;
	int spawned = 0;

	while (spawned < NSLEEPERS &&
	       ursa_spawn_ex(NULL, (unsigned)spawned % ursa_ncores(), sleeper, NULL, &so) == 0)
		spawned++;
	EXPECT_EQ(s, spawned, NSLEEPERS);
	while (atomic_load(&woke_ok) < spawned)
		nap(10 * MS);
	/* The sleeps did not overlap if this fails (the value: ms taken). */
	elapsed_ms = (ursa_now() - t0) / MS;
	EXPECT(s, elapsed_ms < 60000, elapsed_ms);
	return NULL;
}

Test(time, hundred_thousand_sleeps_overlap, .timeout = 120)
{
	struct seen s = {0};

	run_on(2, main_many_sleeps, &s);
	ASSERT_SEEN(&s);
	cr_assert_eq(atomic_load(&woke_ok), NSLEEPERS);
}

/*
 * More timeouts in flight than the ring has CQ entries (ring of 8 SQEs, CQ of
 * 32): the kernel's overflow list must be flushed and nothing lost.
 */
static void *main_overflow(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *ts[2000];

	for (int i = 0; i < 2000; i++)
		if (ursa_spawn(&ts[i], sleeper, NULL) != 0) {
			EXPECT(s, false, i); /* spawn i failed */
			return NULL;
		}
	for (int i = 0; i < 2000; i++)
		JOIN_OK(s, ts[i]);
	EXPECT_EQ(s, atomic_load(&woke_ok), 2000);
	return NULL;
}

Test(time, cq_overflow_and_full_sq_lose_no_completion)
{
	struct ursa_opts o = {.cores = 1, .ring_entries = 8};
	struct seen s = {0};

	cr_assert_eq(ursa_run(main_overflow, &s, &o, NULL), 0);
	ASSERT_SEEN(&s);
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
