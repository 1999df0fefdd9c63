/* SPDX-License-Identifier: MIT */
/*
 * Cancellation of an op in flight (lib/op.c), with the op's buffer on the
 * fiber's stack: the call returns only after the op's own CQE, so a cancelled
 * read can never consume bytes into a dead frame; a read that completed
 * anyway returns its bytes.  Checked by conservation: every byte written to
 * the pipe is either returned by a read or still in the pipe afterwards.
 */
#include "helpers.h"

#include "op.h"

#include <criterion/redirect.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

/* A read through the internal op API, into a buffer on this fiber's stack. */
static int ring_read_byte(int fd, char *out)
{
	struct ursa_task *self;
	char buf[64]; /* on the fiber stack: what a stray late write would hit */
	struct io_uring_sqe *sqe;
	int rc;

	memset(buf, 0, sizeof(buf));
	sqe = ursa__op_sqe(&self, &rc);
	if (!sqe)
		return rc;
	io_uring_prep_read(sqe, fd, buf, 1, 0);
	rc = ursa__op_wait(self, sqe);
	if (rc == 1)
		*out = buf[0];
	return rc;
}

struct reader {
	int fd;
	int rc;
	char got;
	unsigned owed_after; /* CQEs the core still expected when the read returned */
};

static void *reader(void *arg)
{
	struct reader *r = arg;

	r->rc = ring_read_byte(r->fd, &r->got);
	/* The op's own CQE must have arrived before the call returned. */
	r->owed_after = ursa__sched_core->pending;
	/* Reuse the stack right away: a late kernel write would land here. */
	{
		volatile char scribble[4096];

		for (size_t i = 0; i < sizeof(scribble); i++)
			scribble[i] = (char)0xa5;
	}
	return NULL;
}

static void *main_cancel_then_write(void *arg)
{
	struct seen *s = arg;
	struct reader r = {0};
	struct ursa_task *t;
	char c = 0;
	int p[2];

	REQUIRE(s, pipe(p) == 0, errno);
	r.fd = p[0];
	REQUIRE(s, ursa_spawn(&t, reader, &r) == 0, 0);
	nap(5 * MS); /* the read is in flight now */
	ursa_cancel(t);
	EXPECT_EQ(s, ursa_join(t, NULL), -ECANCELED);
	EXPECT_EQ(s, r.rc, -ECANCELED);
	EXPECT_EQ(s, r.owed_after, 0); /* the read returned before its own CQE arrived */
	/* Written after the cancelled read returned: must stay in the pipe. */
	EXPECT_EQ(s, write(p[1], "x", 1), 1);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	EXPECT_EQ(s, read(p[0], &c, 1), 1); /* else consumed by the cancelled read */
	EXPECT_EQ(s, c, 'x');
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(cancel, cancelled_read_is_gone_before_the_call_returns)
{
	struct seen s = {0};
	int fds = count_fds();

	run_on(1, main_cancel_then_write, &s);
	ASSERT_SEEN(&s);
	cr_assert_eq(count_fds(), fds);
}

/*
 * The race, thousands of times: a byte is written at the moment the read is
 * cancelled.  Either the read returns it (the result wins) or the read says
 * -ECANCELED and the byte is still in the pipe.  Never both, never neither.
 */
#define ROUNDS 3000

static void *main_race(void *arg)
{
	struct seen *s = arg;
	long returned = 0, left = 0; /* bytes returned by reads, left in the pipe */
	int p[2];

	REQUIRE(s, pipe(p) == 0, errno);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < ROUNDS; i++) {
		struct reader r = {.fd = p[0]};
		struct ursa_task *t;
		char c;

		REQUIRE(s, ursa_spawn(&t, reader, &r) == 0, i);
		ursa_yield(); /* the reader submits its read */
		if (i % 3)
			ursa_yield(); /* vary who gets there first */
		REQUIRE(s, write(p[1], "y", 1) == 1, i);
		ursa_cancel(t);
		EXPECT_EQ(s, ursa_join(t, NULL), -ECANCELED);
		EXPECT_EQ(s, r.owed_after, 0); /* returned before the op's own CQE */
		if (r.rc == 1 && r.got == 'y')
			returned++;
		else
			EXPECT_EQ(s, r.rc, -ECANCELED);
		while (read(p[0], &c, 1) == 1)
			left++;
	}
	/* Every byte written was returned once or left in the pipe (the value:
	 * bytes returned plus left). */
	EXPECT(s, returned + left == ROUNDS, returned + left);
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(cancel, cancel_racing_completion_loses_and_duplicates_no_byte, .timeout = 120)
{
	struct seen s = {0};

	run_on(1, main_race, &s);
	ASSERT_SEEN(&s);
}

/* A deadline instead of a cancel: -ETIMEDOUT, same guarantee. */
static void *main_deadline_read(void *arg)
{
	struct seen *x = arg;
	struct ursa_scope s;
	char c = 0, got = 0;
	int p[2];

	REQUIRE(x, pipe(p) == 0, errno);
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	EXPECT_EQ(x, ring_read_byte(p[0], &got), -ETIMEDOUT);
	EXPECT_EQ(x, ursa_scope_exit(&s), -ETIMEDOUT);
	EXPECT_EQ(x, write(p[1], "z", 1), 1);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	EXPECT_EQ(x, read(p[0], &c, 1), 1); /* else consumed by the timed-out read */
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(cancel, deadline_cancels_a_read_in_flight_with_etimedout)
{
	struct seen s = {0};

	run_on(1, main_deadline_read, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------------------- cancelled loops */

/*
 * A loop that drops its waits' results never ends once cancelled: every wait
 * is refused at once.  After URSA__SCOPE_REFUSED_LIMIT refusals in a row the task
 * is reported once, by name, and yields at each refusal from then on, so the
 * other tasks of its core run.  One core: nothing but those yields can take
 * the spinner off the CPU.
 */
struct spin {
	int mode;             /* SPIN_CANCELLED, SPIN_EXPIRED */
	int rounds;           /* refused calls per round */
	int nrounds;          /* rounds, with a shielded (parking) sleep between */
	atomic_int done;
	long sibling_runs;
	long seen_at_1100, seen_at_end;
};
enum { SPIN_CANCELLED, SPIN_EXPIRED };

static void *spinner(void *arg)
{
	struct spin *s = arg;
	struct ursa_scope expired;

	if (s->mode == SPIN_EXPIRED)
		ursa_scope_enter_after(&expired, 0); /* -ETIMEDOUT from the first wait */
	for (int r = 0; r < s->nrounds; r++) {
		for (int i = 0; i < s->rounds; i++) {
			(void)!ursa_sleep(URSA_SEC(1)); /* the port that ignores its wait */
			if (i == 1100)
				s->seen_at_1100 = s->sibling_runs;
		}
		if (r + 1 < s->nrounds)
			URSA_SHIELDED(URSA_FOREVER) {
				nap(1 * MS); /* a real wait: the count starts again */
			}
	}
	s->seen_at_end = s->sibling_runs;
	if (s->mode == SPIN_EXPIRED)
		(void)ursa_scope_exit(&expired);
	atomic_store(&s->done, 1);
	return NULL;
}

static void *sibling(void *arg)
{
	struct spin *s = arg;

	while (!atomic_load(&s->done)) {
		s->sibling_runs++;
		nap(0); /* a yield */
	}
	return NULL;
}

static void *main_spin(void *arg)
{
	struct spin *s = arg;
	struct ursa_spawn_opts named = {.name = "spinner"};
	struct ursa_task *t, *sib;
	int rc;

	if (ursa_spawn_ex(&t, 0, spinner, s, &named) || ursa_spawn(&sib, sibling, s))
		return arg;
	if (s->mode == SPIN_CANCELLED)
		ursa_cancel(t); /* before it first runs */
	rc = ursa_join(t, NULL);
	if (ursa_join(sib, NULL) != 0)
		return arg;
	return (void *)(intptr_t)rc;
}

static size_t read_stderr(char *buf, size_t len)
{
	FILE *f;
	size_t n;

	fflush(stderr);
	f = cr_get_redirected_stderr();
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	return n;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

Test(cancel, cancelled_loop_ignoring_its_waits_is_reported_once_by_name_and_yields,
     .init = cr_redirect_stderr)
{
	struct spin s = {.mode = SPIN_CANCELLED, .rounds = 5000, .nrounds = 1};
	static char buf[65536];

	cr_assert_eq((intptr_t)run_on(1, main_spin, &s), -ECANCELED);
	read_stderr(buf, sizeof(buf));
	cr_assert_eq(count(buf, "ursa: cancelled loop:"), 1, "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "task 'spinner' ("),
	                   "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, ") on core 0: 1024 blocking calls in a row"),
	                   "stderr: %s", buf);
	/* Without the yields nothing would have run between the two looks. */
	cr_assert_neq(s.seen_at_1100, s.seen_at_end, "the spinner never yielded");
}

Test(cancel, loop_ignoring_etimedout_in_an_expired_scope_is_reported_too,
     .init = cr_redirect_stderr)
{
	struct spin s = {.mode = SPIN_EXPIRED, .rounds = 5000, .nrounds = 1};
	static char buf[65536];

	cr_assert_null(run_on(1, main_spin, &s));
	read_stderr(buf, sizeof(buf));
	cr_assert_eq(count(buf, "ursa: cancelled loop:"), 1, "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, "'spinner'"), "stderr: %s", buf);
	cr_assert_neq(s.seen_at_1100, s.seen_at_end, "the spinner never yielded");
}

Test(cancel, a_few_refused_calls_in_cleanup_are_not_reported, .init = cr_redirect_stderr)
{
	struct spin s = {.mode = SPIN_CANCELLED, .rounds = 500, .nrounds = 1};
	static char buf[65536];

	cr_assert_eq((intptr_t)run_on(1, main_spin, &s), -ECANCELED);
	read_stderr(buf, sizeof(buf));
	cr_assert_null(strstr(buf, "cancelled loop"), "stderr: %s", buf);
}

Test(cancel, parking_resets_the_refusal_count, .init = cr_redirect_stderr)
{
	struct spin s = {.mode = SPIN_CANCELLED, .rounds = 1000, .nrounds = 5};
	static char buf[65536];

	cr_assert_eq((intptr_t)run_on(1, main_spin, &s), -ECANCELED);
	read_stderr(buf, sizeof(buf));
	/* 5000 refusals in all: only the resets at each park keep it quiet. */
	cr_assert_null(strstr(buf, "cancelled loop"), "stderr: %s", buf);
}
