/* SPDX-License-Identifier: MIT */
/*
 * time.c: the monotonic clock and sleeping on io_uring timeouts.
 */
#include "op.h"
#include "scope.h"
#include "wait.h"

#include <errno.h>
#include <time.h>

uint64_t ursa_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Park until cancelled or a deadline passes: a sleep with no end. */
static int park_forever(struct ursa_task *self)
{
	for (;;) {
		int rc = ursa__wait_park(self);

		if (rc)
			return rc;
	}
}

int ursa_sleep_until(uint64_t t)
{
	struct ursa_task *self = ursa__sched_self();
	struct __kernel_timespec ts;
	struct io_uring_sqe *sqe;
	uint64_t deadline;
	bool clipped = false;
	int rc;

	if (!self)
		return -EPERM;
	rc = ursa__scope_check(self, &deadline);
	if (rc)
		return rc;
	if (t == URSA_FOREVER && deadline == URSA_FOREVER)
		return park_forever(self);
	/* A scope's deadline comes first: sleep only until then, and report it;
	 * no scope timer is needed for that. */
	if (deadline < t) {
		t = deadline;
		clipped = true;
	}
	if (t <= ursa_now())
		return clipped ? ursa__scope_check(self, NULL) : 0;
	sqe = ursa__op_sqe(&self, &rc);
	if (!sqe)
		return rc;
	ts.tv_sec = (long long)(t / 1000000000u);
	ts.tv_nsec = (long long)(t % 1000000000u);
	io_uring_prep_timeout(sqe, &ts, 0, IORING_TIMEOUT_ABS);
	rc = ursa__op_wait(self, sqe);
	if (rc == -ETIME) /* the timeout expired: the sleep is complete */
		return clipped ? ursa__scope_check(self, NULL) : 0;
	return rc;
}

int ursa_sleep(uint64_t ns)
{
	struct ursa_task *self = ursa__sched_self();
	int rc;

	if (!self)
		return -EPERM;
	if (ns == 0) {
		rc = ursa__scope_check(self, NULL);
		if (rc)
			return rc;
		ursa__sched_yield();
		return 0;
	}
	uint64_t now = ursa_now();

	/* Saturate: a sleep too long to represent is a sleep forever. */
	return ursa_sleep_until(ns >= URSA_FOREVER - now ? URSA_FOREVER : now + ns);
}
