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
	int *out = arg, p[2];
	struct reader r = {0};
	struct ursa_task *t;
	char c = 0;

	if (pipe(p))
		return (void *)1;
	r.fd = p[0];
	if (ursa_spawn(&t, reader, &r))
		return (void *)2;
	nap(5 * MS); /* the read is in flight now */
	ursa_cancel(t);
	out[0] = ursa_join(t, NULL);
	out[1] = r.rc;
	out[5] = (int)r.owed_after;
	/* Written after the cancelled read returned: must stay in the pipe. */
	out[2] = (int)write(p[1], "x", 1);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	out[3] = (int)read(p[0], &c, 1);
	out[4] = c;
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(cancel, cancelled_read_is_gone_before_the_call_returns)
{
	int out[6] = {0, 0, 0, 0, 0, -1};
	int fds = count_fds();

	cr_assert_null(run_on(1, main_cancel_then_write, out));
	cr_assert_eq(out[0], -ECANCELED);
	cr_assert_eq(out[1], -ECANCELED);
	cr_assert_eq(out[2], 1);
	cr_assert_eq(out[3], 1, "the byte was consumed by a cancelled read");
	cr_assert_eq(out[4], 'x');
	cr_assert_eq(out[5], 0, "the read returned before its own CQE arrived");
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
	long *out = arg; /* [0] returned by reads, [1] left in pipe, [2] bad */
	int p[2];

	if (pipe(p))
		return (void *)1;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < ROUNDS; i++) {
		struct reader r = {.fd = p[0]};
		struct ursa_task *t;
		char c;

		if (ursa_spawn(&t, reader, &r))
			return (void *)2;
		ursa_yield(); /* the reader submits its read */
		if (i % 3)
			ursa_yield(); /* vary who gets there first */
		if (write(p[1], "y", 1) != 1)
			return (void *)3;
		ursa_cancel(t);
		if (ursa_join(t, NULL) != -ECANCELED)
			out[2]++;
		if (r.owed_after != 0)
			out[2]++; /* returned before the op's own CQE */
		if (r.rc == 1 && r.got == 'y')
			out[0]++;
		else if (r.rc != -ECANCELED)
			out[2]++;
		while (read(p[0], &c, 1) == 1)
			out[1]++;
	}
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(cancel, cancel_racing_completion_loses_and_duplicates_no_byte, .timeout = 120)
{
	long out[3] = {0, 0, 0};

	cr_assert_null(run_on(1, main_race, out));
	cr_assert_eq(out[2], 0, "unexpected results");
	cr_assert_eq(out[0] + out[1], ROUNDS, "returned %ld + left %ld != written %d", out[0],
	             out[1], ROUNDS);
}

/* A deadline instead of a cancel: -ETIMEDOUT, same guarantee. */
static void *main_deadline_read(void *arg)
{
	int *out = arg, p[2];
	struct ursa_scope s;
	char c = 0, got = 0;

	if (pipe(p))
		return (void *)1;
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	out[0] = ring_read_byte(p[0], &got);
	out[1] = ursa_scope_exit(&s);
	out[2] = (int)write(p[1], "z", 1);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	out[3] = (int)read(p[0], &c, 1);
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(cancel, deadline_cancels_a_read_in_flight_with_etimedout)
{
	int out[4] = {0};

	cr_assert_null(run_on(1, main_deadline_read, out));
	cr_assert_eq(out[0], -ETIMEDOUT);
	cr_assert_eq(out[1], -ETIMEDOUT);
	cr_assert_eq(out[3], 1, "the byte was consumed by a timed-out read");
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
