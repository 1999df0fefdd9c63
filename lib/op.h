/* SPDX-License-Identifier: MIT */
/*
 * op.h: how a fiber waits for an io_uring operation (op.c).  Every call is
 * two steps, the rule for all of them:
 *
 *	struct ursa_task *self;
 *	struct io_uring_sqe *sqe;
 *	int err;
 *
 *	if (!(sqe = ursa__op_sqe(&self, &err)))
 *		return err;
 *	io_uring_prep_<op>(sqe, ...);
 *	return ursa__op_wait(self, sqe);
 *
 * ursa__op_wait_on is the second step for a caller that must know the op
 * record, to aim another SQE at it (a TIMEOUT_UPDATE, say); and an SQE taken
 * straight from ursa__ring_sqe suits a call that must run even when the task
 * is cancelled (inside a shielded scope: closing an fd).
 */
#ifndef URSA_OP_H
#define URSA_OP_H

#include "task.h"
#include "wait.h"

/*
 * An operation in flight, on the waiting fiber's stack: a call record that
 * takes its CQEs, and the waiter record that the last of them completes.  A
 * result that comes with IORING_CQE_F_MORE (SEND_ZC's, whose notification
 * follows once the kernel no longer reads the buffer) is kept; the call
 * returns only after the last CQE.
 */
struct ursa__op {
	struct ursa__call call;  /* first: the SQE's user_data */
	struct ursa__wait w;     /* DONE once the last CQE is in */
	int32_t res;
	uint32_t cqe_flags;
	int why;                 /* what made us cancel it (when cancel_sent) */
	bool cancel_sent;
};

/* The user_data of op's SQE, for an SQE aimed at it. */
static inline uint64_t ursa__op_user_data(const struct ursa__op *op)
{
	return URSA__UD_MAKE(&op->call, URSA__UD_CALL);
}

/*
 * Step one: the calling task (into *self) and a fresh SQE; or NULL with *err
 * = -EPERM (not in a task) or the pending cancellation / passed deadline.
 */
struct io_uring_sqe *ursa__op_sqe(struct ursa_task **self, int *err);

/*
 * Step two: tag sqe as the op, park until its last CQE and return its result.
 * If the task is cancelled or a deadline passes meanwhile, ask the kernel to
 * cancel the op (IORING_OP_ASYNC_CANCEL) and still wait for the op's own CQE,
 * so nothing is written into this stack after the call is gone; a result
 * that arrived wins over the cancellation, and the kernel's -ECANCELED
 * becomes the reason we asked (-ECANCELED or -ETIMEDOUT).  A -ECANCELED we
 * did not ask for (ursa_close cancelled the op by its fd) becomes -EBADF.
 */
int ursa__op_wait(struct ursa_task *self, struct io_uring_sqe *sqe);
int ursa__op_wait_on(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe);

#endif /* URSA_OP_H */
