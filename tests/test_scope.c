/* SPDX-License-Identifier: MIT */
/* Deadline scopes: expiry, nesting, shielding, and what exit reports. */
#include "helpers.h"

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static void *main_deadline(void *arg)
{
	struct seen *x = arg;
	struct ursa_scope s;
	uint64_t t0 = ursa_now();

	ursa_scope_enter(&s, t0 + 20 * MS);
	EXPECT_EQ(x, ursa_sleep(10 * 1000 * MS), -ETIMEDOUT); /* cut short by the deadline */
	EXPECT_EQ(x, ursa_sleep(1 * MS), -ETIMEDOUT);         /* expired scopes stay expired */
	EXPECT_EQ(x, ursa_scope_exit(&s), -ETIMEDOUT);
	EXPECT(x, ursa_now() - t0 < 5000 * MS, (ursa_now() - t0) / MS); /* cut short */
	EXPECT_EQ(x, ursa_sleep(1 * MS), 0);                  /* outside: fine again */
	return NULL;
}

Test(scope, deadline_cuts_a_sleep_and_exit_reports_it)
{
	struct seen s = {0};

	run_on(1, main_deadline, &s);
	ASSERT_SEEN(&s);
}

static void *main_unfired(void *arg)
{
	struct seen *x = arg;
	struct ursa_scope s;

	ursa_scope_enter(&s, ursa_now() + 1000 * MS);
	EXPECT_EQ(x, ursa_sleep(1 * MS), 0);
	EXPECT_EQ(x, ursa_scope_exit(&s), 0);
	return NULL;
}

Test(scope, unfired_deadline_exits_with_zero)
{
	struct seen s = {0};

	run_on(1, main_unfired, &s);
	ASSERT_SEEN(&s);
}

/* The earlier deadline wins, whichever scope it belongs to. */
static void *main_nested(void *arg)
{
	struct seen *x = arg;
	struct ursa_scope outer, inner;
	uint64_t t0 = ursa_now();

	/* Outer earlier than inner. */
	ursa_scope_enter(&outer, t0 + 20 * MS);
	ursa_scope_enter(&inner, t0 + 10000 * MS);
	EXPECT_EQ(x, ursa_sleep(URSA_FOREVER), -ETIMEDOUT);
	EXPECT_EQ(x, ursa_scope_exit(&inner), 0); /* the inner scope did not fire */
	EXPECT_EQ(x, ursa_scope_exit(&outer), -ETIMEDOUT);

	/* Inner earlier than outer: the outer block goes on afterwards. */
	t0 = ursa_now();
	ursa_scope_enter(&outer, t0 + 10000 * MS);
	ursa_scope_enter(&inner, t0 + 20 * MS);
	EXPECT_EQ(x, ursa_sleep(URSA_FOREVER), -ETIMEDOUT);
	EXPECT_EQ(x, ursa_scope_exit(&inner), -ETIMEDOUT);
	EXPECT_EQ(x, ursa_sleep(1 * MS), 0);
	EXPECT_EQ(x, ursa_scope_exit(&outer), 0);
	return NULL;
}

Test(scope, nested_scopes_the_earliest_deadline_governs)
{
	struct seen s = {0};

	run_on(1, main_nested, &s);
	ASSERT_SEEN(&s);
}

/* A deadline that passes while a task joins another is passed on: the joined
 * task is cancelled, awaited and released, and the join reports how it
 * ended; the scope reports the deadline. */
static void *sleep_long(void *arg)
{
	int *rc = arg;

	*rc = ursa_sleep(10000 * MS); /* its cancellation path */
	return *rc == 0 ? (void *)5 : NULL;
}

static void *main_join_deadline(void *arg)
{
	struct seen *x = arg;
	struct ursa_task *t;
	struct ursa_scope s;
	void *r = NULL;
	int sleep_rc = 1;

	REQUIRE(x, ursa_spawn(&t, sleep_long, &sleep_rc) == 0, 1);
	ursa_scope_enter(&s, ursa_now() + 5 * MS);
	/* t's outcome; t is released (LSan) */
	EXPECT_EQ(x, ursa_join(t, &r), -ECANCELED);
	EXPECT_EQ(x, ursa_scope_exit(&s), -ETIMEDOUT); /* the scope reports its deadline */
	EXPECT_EQ(x, sleep_rc, -ECANCELED);            /* t ran its cancellation path */
	EXPECT(x, r == NULL, 0);
	return NULL;
}

Test(scope, deadline_passes_into_join_which_releases_the_task)
{
	struct seen s = {0};

	run_on(1, main_join_deadline, &s);
	ASSERT_SEEN(&s);
}

/* A shield keeps cancellation and outer deadlines out; its own deadline
 * still applies. */
static void *shielded_cleanup(void *arg)
{
	struct seen *x = arg;
	struct ursa_scope s;

	EXPECT_EQ(x, ursa_sleep(URSA_FOREVER), -ECANCELED); /* cancelled */
	ursa_scope_enter_shielded(&s, URSA_FOREVER);
	EXPECT_EQ(x, ursa_sleep(20 * MS), 0);      /* cleanup runs despite the cancel */
	EXPECT_EQ(x, ursa_scope_exit(&s), 0);
	ursa_scope_enter_shielded(&s, ursa_now() + 5 * MS);
	EXPECT_EQ(x, ursa_sleep(URSA_FOREVER), -ETIMEDOUT); /* the shield's own deadline */
	EXPECT_EQ(x, ursa_scope_exit(&s), -ETIMEDOUT);
	EXPECT_EQ(x, ursa_sleep(1 * MS), -ECANCELED); /* unshielded again: cancelled */
	return NULL;
}

static void *main_shield(void *arg)
{
	struct seen *x = arg;
	struct ursa_task *t;

	EXPECT_EQ(x, ursa_spawn(&t, shielded_cleanup, x), 0);
	nap(5 * MS);
	ursa_cancel(t);
	EXPECT_EQ(x, ursa_join(t, NULL), -ECANCELED);
	return NULL;
}

Test(scope, shield_keeps_cancellation_out_but_not_its_own_deadline)
{
	struct seen s = {0};

	run_on(1, main_shield, &s);
	ASSERT_SEEN(&s);
}

static void *shielded_from_outer_deadline(void *arg)
{
	struct seen *x = arg;
	struct ursa_scope outer, shield;

	ursa_scope_enter(&outer, ursa_now() + 5 * MS);
	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	EXPECT_EQ(x, ursa_sleep(30 * MS), 0);
	EXPECT_EQ(x, ursa_scope_exit(&shield), 0);
	EXPECT_EQ(x, ursa_sleep(1 * MS), -ETIMEDOUT);
	EXPECT_EQ(x, ursa_scope_exit(&outer), -ETIMEDOUT);
	return NULL;
}

Test(scope, shield_keeps_outer_deadline_out)
{
	struct seen s = {0};

	run_on(1, shielded_from_outer_deadline, &s);
	ASSERT_SEEN(&s);
}

/* A thousand scopes each entered and left with an armed timer: the timers
 * are removed (the runtime would otherwise wait for them at shutdown). */
static void *main_many_scopes(void *arg)
{
	struct seen *x = arg;

	for (int i = 0; i < 1000; i++) {
		struct ursa_scope s;

		ursa_scope_enter(&s, ursa_now() + 60000 * MS);
		EXPECT_EQ(x, ursa_sleep(1000), 0);
		EXPECT_EQ(x, ursa_scope_exit(&s), 0);
	}
	return NULL;
}

/* Timed outside the runtime: ursa_run returns only once every timer's CQE is
 * in, so a timer left armed would hold it for 60 s. */
Test(scope, scope_timers_are_removed_on_exit)
{
	struct seen s = {0};
	uint64_t t0 = ursa_now();

	run_on(1, main_many_scopes, &s);
	ASSERT_SEEN(&s);
	cr_assert_lt(ursa_now() - t0, 30000 * MS, "shutdown waited for the 60 s timers");
}

/*
 * A deadline that passes in the gap between a call's cancellation check and
 * its park still ends the wait at once.  In that gap the scope's timer is
 * armed, finds the deadline passed and arms nothing; the task must not then
 * park with nothing to wake it.  Found by tests/fuzz_cancel.c: a recv on an
 * idle socket waited forever, its scope already marked expired.  Deadlines
 * swept over the first microsecond hit the gap; a rescuer sends a byte when
 * a recv has made no progress for 200 ms, so the bug fails the test instead
 * of hanging it.
 */
#define GAP_ROUNDS 20000

struct gap {
	struct seen s;
	int sv[2];
	_Atomic long iter;
	_Atomic bool done;
	_Atomic int rescued;
};

static void *gap_rescuer(void *arg)
{
	struct gap *g = arg;
	long last = -1;

	while (!atomic_load(&g->done)) {
		long i = atomic_load(&g->iter);

		if (i == last && send(g->sv[1], "x", 1, MSG_DONTWAIT) == 1)
			atomic_fetch_add(&g->rescued, 1);
		last = i;
		if (ursa_sleep(200 * MS))
			break;
	}
	return NULL;
}

static void *main_gap(void *arg)
{
	struct gap *g = arg;
	struct ursa_task *t;

	if (ursa_spawn(&t, gap_rescuer, g)) {
		EXPECT(&g->s, false, 0); /* no rescuer */
		return NULL;
	}
	for (long i = 0; i < GAP_ROUNDS && !atomic_load(&g->rescued); i++) {
		struct ursa_scope s;
		char c;

		ursa_scope_enter(&s, ursa_now() + (uint64_t)(i % 1000));
		EXPECT_EQ(&g->s, ursa_recv(g->sv[0], &c, 1, 0), -ETIMEDOUT);
		(void)ursa_scope_exit(&s);
		atomic_store(&g->iter, i + 1);
	}
	/* A recv past its deadline waited until a byte came (the value: the
	 * round it happened in). */
	EXPECT(&g->s, atomic_load(&g->rescued) == 0, atomic_load(&g->iter));
	atomic_store(&g->done, true);
	(void)ursa_cancel(t);
	EXPECT_EQ(&g->s, ursa_join(t, NULL), -ECANCELED);
	return NULL;
}

Test(scope, deadline_passing_just_before_the_park_still_ends_the_wait, .timeout = 60)
{
	struct gap g = {0};

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g.sv), 0);
	run_on(1, main_gap, &g);
	close(g.sv[0]);
	close(g.sv[1]);
	ASSERT_SEEN(&g.s);
}

/* ------------------------------------------------------- relative scopes */

static struct seen after_seen;

static void *main_scope_after(void *arg)
{
	struct seen *S = &after_seen;
	struct ursa_scope s, inner;

	(void)arg;
	/* URSA_FOREVER from now overflows: it must mean no deadline at all. */
	ursa_scope_enter_after(&s, URSA_FOREVER);
	EXPECT(S, s.deadline_ns == URSA_FOREVER, 1);
	EXPECT(S, ursa_sleep(1 * MS) == 0, 2);
	EXPECT(S, ursa_scope_exit(&s) == 0, 3);
	/* So does any sum that would overflow. */
	ursa_scope_enter_after(&s, URSA_FOREVER - 1);
	EXPECT(S, s.deadline_ns == URSA_FOREVER, 4);
	EXPECT(S, ursa_scope_exit(&s) == 0, 5);
	/* 0: already passed, like asyncio.timeout(0). */
	ursa_scope_enter_after(&s, 0);
	EXPECT(S, ursa_sleep(10000 * MS) == -ETIMEDOUT, 6);
	EXPECT(S, ursa_scope_exit(&s) == -ETIMEDOUT, 7);
	/* Relative: a deadline 20 ms from now, not 20 ms after boot. */
	ursa_scope_enter_after(&s, 20 * MS);
	EXPECT(S, s.deadline_ns > ursa_now(), 8);
	EXPECT(S, ursa_sleep(10000 * MS) == -ETIMEDOUT, 9);
	EXPECT(S, ursa_scope_exit(&s) == -ETIMEDOUT, 10);
	/* The shielded form shields and has its own relative deadline. */
	ursa_cancel(ursa_self());
	ursa_scope_enter_shielded_after(&inner, URSA_FOREVER);
	EXPECT(S, ursa_sleep(1 * MS) == 0, 11);
	EXPECT(S, ursa_scope_exit(&inner) == 0, 12);
	ursa_scope_enter_shielded_after(&inner, 0);
	EXPECT(S, ursa_sleep(1 * MS) == -ETIMEDOUT, 13);
	EXPECT(S, ursa_scope_exit(&inner) == -ETIMEDOUT, 14);
	EXPECT(S, ursa_sleep(1 * MS) == -ECANCELED, 15);
	return NULL;
}

Test(scope, scope_enter_after_is_relative_and_saturates)
{
	cr_assert_null(run_on(1, main_scope_after, NULL));
	ASSERT_SEEN(&after_seen);
}

/* ------------------------------------------------------ URSA_SHIELDED */

static struct seen shield_seen;

static void *main_shielded_block(void *arg)
{
	struct seen *S = &shield_seen;
	int rc = 1;

	(void)arg;
	ursa_cancel(ursa_self());
	EXPECT(S, ursa_sleep(1 * MS) == -ECANCELED, 1);
	/* Inside, the cancellation does not reach the waits ... */
	URSA_SHIELDED(URSA_FOREVER) {
		rc = ursa_sleep(1 * MS);
	}
	EXPECT(S, rc == 0, rc);
	/* ... but the block's own deadline does. */
	URSA_SHIELDED(0) {
		rc = ursa_sleep(10000 * MS);
	}
	EXPECT(S, rc == -ETIMEDOUT, rc);
	/* Nested blocks on one line are kept apart. */
	URSA_SHIELDED(URSA_FOREVER) URSA_SHIELDED(URSA_SEC(10)) rc = ursa_sleep(1 * MS);
	EXPECT(S, rc == 0, rc);
	/* After the blocks, the task is cancelled again. */
	EXPECT(S, ursa_sleep(1 * MS) == -ECANCELED, 5);
	return NULL;
}

Test(scope, shielded_block_waits_in_a_cancelled_task_under_its_own_deadline)
{
	cr_assert_null(run_on(1, main_shielded_block, NULL));
	ASSERT_SEEN(&shield_seen);
}

static int leave_by_return(void)
{
	URSA_SHIELDED(URSA_FOREVER) {
		if (ursa_sleep(1 * MS) == 0)
			return 1; /* the scope is exited on the way out */
	}
	return 0;
}

static void *main_shielded_exits(void *arg)
{
	struct seen *S = &shield_seen;
	struct ursa_scope s;
	int n = 0;

	(void)arg;
	ursa_cancel(ursa_self());
	EXPECT(S, leave_by_return() == 1, 1);
	for (int i = 0; i < 3; i++) {
		URSA_SHIELDED(URSA_FOREVER) {
			if (ursa_sleep(1 * MS) == 0 && i == 1)
				break; /* leaves the block, not the loop */
			n++;
		}
	}
	EXPECT(S, n == 2, n);
	/* Had a block left its scope entered, this exit would abort ("not the
	 * innermost"), and the waits below would still be shielded. */
	ursa_scope_enter(&s, URSA_FOREVER);
	EXPECT(S, ursa_sleep(1 * MS) == -ECANCELED, 3);
	EXPECT(S, ursa_scope_exit(&s) == -ECANCELED, 4);
	EXPECT(S, ursa_self() && ursa_sleep(1 * MS) == -ECANCELED, 5);
	return NULL;
}

Test(scope, shielded_block_left_by_return_or_break_exits_its_scope)
{
	cr_assert_null(run_on(1, main_shielded_exits, NULL));
	ASSERT_SEEN(&shield_seen);
}
