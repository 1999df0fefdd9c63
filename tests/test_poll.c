/* SPDX-License-Identifier: MIT */
/*
 * ursa_poll: fd readiness on the ring.  Readiness that comes later and
 * readiness that is there already, poll(2)'s timeout (0 when it passes)
 * told apart from a scope's deadline (-ETIMEDOUT), cancellation with the op
 * gone before the call returns, ursa_close under a poll, bad input, and a
 * thousand polls in flight on both cores.  Fibers record; the tests assert
 * after ursa_run returns.
 */
#include "test_io_helpers.h"

#include <poll.h>
#include <sys/socket.h>

static struct seen S;

struct pair {
	int fd[2];
	uint64_t delay_ns;
	int rc;
};

static void *write_later(void *arg)
{
	struct pair *p = arg;

	EXPECT(&S, ursa_sleep(p->delay_ns) == 0, 0);
	EXPECT(&S, ursa_write(p->fd[1], "x", 1) == 1, 0);
	return NULL;
}

static void *readable_later_main(void *arg)
{
	struct pair p = {.delay_ns = 20 * MS};
	struct ursa_task *t;
	char c;
	int rc;

	(void)arg;
	EXPECT(&S, pipe2(p.fd, O_CLOEXEC) == 0, errno);
	EXPECT(&S, ursa_spawn(&t, write_later, &p) == 0, 0);
	rc = ursa_poll(p.fd[0], POLLIN, URSA_FOREVER);
	EXPECT(&S, rc == POLLIN, rc);
	/* Level-triggered: still readable until read. */
	rc = ursa_poll(p.fd[0], POLLIN, URSA_FOREVER);
	EXPECT(&S, rc == POLLIN, rc);
	EXPECT(&S, read(p.fd[0], &c, 1) == 1, errno);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	close(p.fd[0]);
	close(p.fd[1]);
	return NULL;
}

Test(poll, waits_until_readable_and_stays_level_triggered)
{
	int fds = count_fds();

	run_on(1, readable_later_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *ready_now_main(void *arg)
{
	int sv[2], rc;

	(void)arg;
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	rc = ursa_poll(sv[0], POLLOUT, URSA_FOREVER);
	EXPECT(&S, rc == POLLOUT, rc);
	/* timeout 0 looks without waiting, both ways. */
	rc = ursa_poll(sv[0], POLLOUT, 0);
	EXPECT(&S, rc == POLLOUT, rc);
	rc = ursa_poll(sv[0], POLLIN, 0);
	EXPECT(&S, rc == 0, rc);
	/* Several events at once. */
	EXPECT(&S, send(sv[1], "y", 1, 0) == 1, errno);
	rc = ursa_poll(sv[0], POLLIN | POLLOUT, URSA_FOREVER);
	EXPECT(&S, rc == (POLLIN | POLLOUT), rc);
	/* The peer hangs up: POLLHUP without asking, POLLRDHUP when asked. */
	close(sv[1]);
	rc = ursa_poll(sv[0], POLLRDHUP, URSA_FOREVER);
	EXPECT(&S, (rc & POLLRDHUP) && (rc & POLLHUP), rc);
	close(sv[0]);
	return NULL;
}

Test(poll, ready_fd_answers_at_once_and_hangup_is_reported)
{
	int fds = count_fds();

	run_on(1, ready_now_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *timeouts_main(void *arg)
{
	struct ursa_scope s;
	uint64_t t0;
	int p[2], rc;

	(void)arg;
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	/* poll(2)'s timeout: 0, after at least the timeout. */
	t0 = ursa_now();
	rc = ursa_poll(p[0], POLLIN, 20 * MS);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_now() - t0 >= 20 * MS, ursa_now() - t0);
	/* An enclosing scope's deadline is -ETIMEDOUT, not 0 ... */
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	rc = ursa_poll(p[0], POLLIN, URSA_FOREVER);
	EXPECT(&S, rc == -ETIMEDOUT, rc);
	EXPECT(&S, ursa_scope_exit(&s) == -ETIMEDOUT, 0);
	/* ... also when the poll has a longer timeout of its own ... */
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	rc = ursa_poll(p[0], POLLIN, 10000 * MS);
	EXPECT(&S, rc == -ETIMEDOUT, rc);
	EXPECT(&S, ursa_scope_exit(&s) == -ETIMEDOUT, 0);
	/* ... while a shorter timeout of its own inside a scope is 0, and the
	 * scope is untouched. */
	ursa_scope_enter(&s, ursa_now() + 10000 * MS);
	rc = ursa_poll(p[0], POLLIN, 5 * MS);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_scope_exit(&s) == 0, 0);
	/* A cancelled scope wins over a timeout of the poll's own, however
	 * short (found by fuzz_cancel: a passed timeout used to say 0). */
	ursa_scope_enter(&s, URSA_FOREVER);
	ursa_scope_cancel(&s);
	rc = ursa_poll(p[0], POLLIN, 1);
	EXPECT(&S, rc == -ECANCELED, rc);
	rc = ursa_poll(p[0], POLLIN, 0);
	EXPECT(&S, rc == -ECANCELED, rc);
	(void)ursa_scope_exit(&s);
	/* The absolute form: 0 once deadline_ns has passed, never before; a
	 * deadline already passed looks without waiting. */
	t0 = ursa_now();
	rc = ursa_poll_until(p[0], POLLIN, t0 + 20 * MS);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_now() >= t0 + 20 * MS, ursa_now() - t0);
	rc = ursa_poll_until(p[0], POLLIN, 0);
	EXPECT(&S, rc == 0, rc);
	rc = ursa_poll_until(p[1], POLLOUT, t0);
	EXPECT(&S, rc == POLLOUT, rc);
	/* A huge timeout saturates instead of wrapping. */
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	rc = ursa_poll(p[0], POLLIN, URSA_FOREVER - 1);
	EXPECT(&S, rc == -ETIMEDOUT, rc);
	EXPECT(&S, ursa_scope_exit(&s) == -ETIMEDOUT, 0);
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(poll, timeout_is_zero_and_a_scope_deadline_is_etimedout)
{
	run_on(1, timeouts_main, NULL);
	ASSERT_SEEN(&S);
}

static void *poller(void *arg)
{
	struct pair *p = arg;

	p->rc = ursa_poll(p->fd[0], POLLIN, URSA_FOREVER);
	return NULL;
}

static void *cancel_main(void *arg)
{
	struct pair p = {0};
	struct ursa_task *t;
	char c = 'z';

	(void)arg;
	EXPECT(&S, pipe2(p.fd, O_CLOEXEC) == 0, errno);
	EXPECT(&S, ursa_spawn(&t, poller, &p) == 0, 0);
	EXPECT(&S, ursa_sleep(5 * MS) == 0, 0);
	EXPECT(&S, ursa_cancel(t) == 0, 0);
	(void)!ursa_join(t, NULL);
	EXPECT(&S, p.rc == -ECANCELED, p.rc);
	/* The poll is gone from the kernel: the byte written now is there for
	 * a plain read, and nothing else reacts to it. */
	EXPECT(&S, write(p.fd[1], &c, 1) == 1, errno);
	EXPECT(&S, ursa_poll(p.fd[0], POLLIN, URSA_FOREVER) == POLLIN, 0);
	EXPECT(&S, read(p.fd[0], &c, 1) == 1, errno);
	/* Cancelled before it starts: -ECANCELED without polling. */
	EXPECT(&S, ursa_spawn(&t, poller, &p) == 0, 0);
	EXPECT(&S, ursa_cancel(t) == 0, 0);
	(void)!ursa_join(t, NULL);
	EXPECT(&S, p.rc == -ECANCELED, p.rc);
	/* ursa_close of the fd under a poll: -EBADF. */
	EXPECT(&S, ursa_spawn(&t, poller, &p) == 0, 0);
	EXPECT(&S, ursa_sleep(5 * MS) == 0, 0);
	EXPECT(&S, ursa_close(p.fd[0]) == 0, 0);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, p.rc == -EBADF, p.rc);
	close(p.fd[1]);
	return NULL;
}

Test(poll, cancel_and_close_end_a_poll_and_leave_nothing_in_the_kernel)
{
	int fds = count_fds();

	run_on(1, cancel_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *bad_input_main(void *arg)
{
	int p[2], rc;

	(void)arg;
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	rc = ursa_poll(p[0], 0x80000000u, URSA_FOREVER);
	EXPECT(&S, rc == -EINVAL, rc);
	rc = ursa_poll(p[0], POLLNVAL, URSA_FOREVER);
	EXPECT(&S, rc == -EINVAL, rc);
	rc = ursa_poll(-1, POLLIN, URSA_FOREVER);
	EXPECT(&S, rc == -EBADF, rc);
	close(p[1]);
	rc = ursa_poll(p[1], POLLIN, URSA_FOREVER); /* closed: not an fd now */
	EXPECT(&S, rc == -EBADF, rc);
	rc = ursa_poll(p[1], POLLIN, 0);
	EXPECT(&S, rc == -EBADF, rc);
	close(p[0]);
	return NULL;
}

Test(poll, bad_events_and_bad_fds_are_clear_errors)
{
	run_on(1, bad_input_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(ursa_poll(0, POLLIN, URSA_FOREVER), -EPERM);
	cr_assert_eq(ursa_poll(0, POLLIN, 0), -EPERM);
}

/* ------------------------------------------------ many polls, both cores */

#define NPAIRS 400

static struct pair pairs[NPAIRS];
static atomic_int woken;

static void *many_poller(void *arg)
{
	struct pair *p = arg;
	char c;

	p->rc = ursa_poll(p->fd[0], POLLIN, URSA_FOREVER);
	if (p->rc == POLLIN && ursa_read(p->fd[0], &c, 1) == 1)
		atomic_fetch_add(&woken, 1);
	return NULL;
}

static void *many_main(void *arg)
{
	static struct ursa_task *t[NPAIRS];

	(void)arg;
	for (int i = 0; i < NPAIRS; i++) {
		EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i].fd) == 0,
		       errno);
		EXPECT(&S, ursa_spawn_on(&t[i], (unsigned)i % 2, many_poller, &pairs[i]) == 0, i);
	}
	EXPECT(&S, ursa_sleep(20 * MS) == 0, 0);
	EXPECT(&S, atomic_load(&woken) == 0, atomic_load(&woken));
	/* Wake them in reverse order, half from each core's point of view. */
	for (int i = NPAIRS - 1; i >= 0; i--)
		EXPECT(&S, ursa_send(pairs[i].fd[1], "w", 1, 0) == 1, i);
	for (int i = 0; i < NPAIRS; i++) {
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
		EXPECT(&S, pairs[i].rc == POLLIN, pairs[i].rc);
		close(pairs[i].fd[0]);
		close(pairs[i].fd[1]);
	}
	return NULL;
}

Test(poll, four_hundred_polls_in_flight_on_two_cores_each_wake_once, .timeout = 60)
{
	int fds = count_fds();

	run_on(2, many_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(atomic_load(&woken), NPAIRS);
	cr_assert_eq(count_fds(), fds);
}
