/* SPDX-License-Identifier: MIT */
/*
 * op.c: the one way a fiber waits for an io_uring operation, with the
 * cancellation rule of DESIGN.md: when the task is cancelled or a deadline
 * passes, ask the kernel to cancel the op (IORING_OP_ASYNC_CANCEL) and still
 * wait for the op's own CQE before returning, so nothing is written into this
 * stack after the call is gone; if the op completed anyway, its result wins.
 */
#include "op.h"

#include "scope.h"

#include <errno.h>

struct io_uring_sqe *ursa__op_sqe(struct ursa_task *self, int *err)
{
	int rc = ursa__scope_check(self, NULL);

	if (rc) {
		*err = rc;
		return NULL;
	}
	return ursa__ring_sqe(&self->core->ring);
}

static void send_cancel(struct ursa__core *c, struct ursa__op *op)
{
	struct io_uring_sqe *sqe = ursa__ring_sqe(&c->ring);

	/* The cancel's own CQE (0, -ENOENT if the op already finished,
	 * -EALREADY if it is running and cannot be stopped) carries nothing
	 * we need: the op's CQE decides. */
	io_uring_prep_cancel64(sqe, URSA__UD_MAKE(op, URSA__UD_OP), 0);
	io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
	op->cancel_sent = true;
}

int ursa__op_wait(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe)
{
	struct ursa__core *c = self->core;
	int why = 0;

	op->task = self;
	op->res = 0;
	op->cqe_flags = 0;
	op->done = false;
	op->cancel_sent = false;
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(op, URSA__UD_OP));
	c->pending++;
	if (self->scope)
		ursa__scope_arm(self);
	for (;;) {
		ursa__sched_park();
		if (op->done)
			break;
		if (!op->cancel_sent) {
			why = ursa__scope_check(self, NULL);
			if (why)
				send_cancel(c, op);
		}
	}
	/* -ECANCELED from the kernel after we asked: report why we asked. */
	if (op->cancel_sent && op->res == -ECANCELED)
		return why;
	return op->res;
}
