/* SPDX-License-Identifier: MIT */
/*
 * io_poll.c: fd readiness on the ring (IORING_OP_POLL_ADD), so that a C
 * library that says "call me when this fd is readable" runs on a core
 * without blocking it (include/ursa/adapters/ builds hiredis and libcurl on
 * it).  One single-shot poll per call: level-triggered, like poll(2).
 */
#include "io.h"

#include <errno.h>
#include <poll.h>

/* The events a caller may ask for: poll(2)'s, and POLLRDHUP.  POLLERR and
 * POLLHUP are reported whether asked for or not; POLLNVAL never is (a bad fd
 * is -EBADF). */
#define POLL_EVENTS                                                                         \
	((uint32_t)(POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM |      \
	            POLLWRBAND | POLLRDHUP | POLLERR | POLLHUP))

/* timeout_ns 0: poll(2) itself, which never waits; the ring would need a
 * deadline that has passed, and a passed deadline stops a call before it
 * looks. */
static int poll_now(int fd, uint32_t events)
{
	struct pollfd p = {.fd = fd, .events = (short)events};
	int n = poll(&p, 1, 0);

	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return p.revents;
}

int ursa_poll_until(int fd, uint32_t events, uint64_t deadline_ns)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	struct ursa_scope s;
	int rc, why;

	if (events & ~POLL_EVENTS)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	/* Cancellation and the enclosing deadlines first: a cancelled task
	 * gets -ECANCELED, never a timeout of its own that has passed too. */
	if (!(self = ursa__sched_self()))
		return -EPERM;
	if ((rc = ursa__scope_check(self, NULL)))
		return rc;
	/* A deadline that has passed: look without waiting, as poll(2) with
	 * a timeout of 0. */
	if (deadline_ns <= ursa_now())
		return poll_now(fd, events);
	if (deadline_ns == URSA_FOREVER) {
		if (!(sqe = ursa__op_sqe(&self, &rc)))
			return rc;
		io_uring_prep_poll_add(sqe, fd, events);
		return ursa__op_wait(self, sqe);
	}
	/* The deadline is a scope of its own: one timer, armed only if the
	 * task parks, and a deadline that cancels the poll in the kernel like
	 * any other.  Its expiry is told from an enclosing scope's by its exit:
	 * -ETIMEDOUT from ours is poll(2)'s 0. */
	ursa_scope_enter(&s, deadline_ns);
	if ((sqe = ursa__op_sqe(&self, &rc))) {
		io_uring_prep_poll_add(sqe, fd, events);
		rc = ursa__op_wait(self, sqe);
	}
	why = ursa_scope_exit(&s);
	if (rc == -ETIMEDOUT && why == -ETIMEDOUT)
		return 0;
	return rc;
}

int ursa_poll(int fd, uint32_t events, uint64_t timeout_ns)
{
	uint64_t now;

	if (timeout_ns == URSA_FOREVER)
		return ursa_poll_until(fd, events, URSA_FOREVER);
	/* 0 is poll(2)'s look without waiting: a deadline of 0 has passed. */
	now = timeout_ns ? ursa_now() : 0;
	return ursa_poll_until(fd, events,
	                       timeout_ns > URSA_FOREVER - now ? URSA_FOREVER : now + timeout_ns);
}
