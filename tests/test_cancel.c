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
	ursa_sleep(5 * MS); /* the read is in flight now */
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
