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

struct io_uring_sqe *ursa__op_sqe(struct ursa_task **self, int *err)
{
	struct ursa_task *t = ursa__sched_self();
	int rc;

	*self = t;
	if (!t) {
		*err = -EPERM;
		return NULL;
	}
	rc = ursa__scope_check(t, NULL);
	if (rc) {
		*err = rc;
		return NULL;
	}
	return ursa__ring_sqe(&t->core->ring);
}

/* Each of the op's CQEs, on its core (the dispatcher, sched.c). */
static void op_complete(struct ursa__call *k, int res, unsigned flags)
{
	struct ursa__op *op = ursa__container_of(k, struct ursa__op, call);

	/* SEND_ZC's notification carries no result: keep the send's. */
	if (!(flags & IORING_CQE_F_NOTIF)) {
		op->res = res;
		op->cqe_flags = flags;
	}
	if (flags & IORING_CQE_F_MORE)
		return; /* another CQE follows: the task has nothing to do yet */
	op->w.task->core->pending--;
	ursa__wait_done(&op->w);
}

/* ursa__wait_for's withdraw: an op cannot be taken back, only cancelled in
 * the kernel, after which its own CQE still decides. */
static bool cancel(void *ctx, int why)
{
	struct ursa__op *op = ctx;
	struct io_uring_sqe *sqe;

	op->why = why;
	/* The result is in and only SEND_ZC's notification is owed: nothing
	 * is left to stop. */
	if (op->cqe_flags & IORING_CQE_F_MORE)
		return false;
	/* The cancel's own CQE (0, -ENOENT if the op already finished,
	 * -EALREADY if it is running and cannot be stopped) carries nothing
	 * we need: the op's CQE decides. */
	sqe = ursa__ring_sqe(&op->w.task->core->ring);
	io_uring_prep_cancel64(sqe, ursa__op_user_data(op), 0);
	io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
	op->cancel_sent = true;
	return false;
}

int ursa__op_wait_on(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe)
{
	op->call.fn = op_complete;
	ursa__wait_init(&op->w, self);
	op->res = 0;
	op->cqe_flags = 0;
	op->why = 0;
	op->cancel_sent = false;
	io_uring_sqe_set_data64(sqe, ursa__op_user_data(op));
	self->core->pending++;
	(void)ursa__wait_for(&op->w, cancel, op); /* never withdrawn: 0 */
	if (op->res == -ECANCELED)
		return op->cancel_sent ? op->why : -EBADF;
	return op->res;
}

int ursa__op_wait(struct ursa_task *self, struct io_uring_sqe *sqe)
{
	struct ursa__op op;

	return ursa__op_wait_on(self, &op, sqe);
}
