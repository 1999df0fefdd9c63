/* SPDX-License-Identifier: MIT */
/*
 * op.h: how a fiber waits for an io_uring operation (op.c): the op record
 * and the two steps of every call.
 */
#ifndef URSA_OP_H
#define URSA_OP_H

#include "task.h"

/*
 * An operation in flight: one SQE's completion, on the waiting fiber's stack.
 * The fiber does not return from the call that owns it before `done`.
 */
struct ursa__op {
	struct ursa_task *task;
	int32_t res;
	uint32_t cqe_flags;
	bool done;
	bool cancel_sent;
};

/*
 * ursa__op_sqe() checks cancellation and deadlines first (returning NULL with
 * *err set) and otherwise returns an SQE for the caller to prep;
 * ursa__op_wait() then tags it with op, parks until op's CQE, cancelling it
 * in the kernel if the task is cancelled or a deadline passes meanwhile, and
 * returns the result (a result that arrived wins over the cancellation).
 */
struct io_uring_sqe *ursa__op_sqe(struct ursa_task *self, int *err);
int ursa__op_wait(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe);

#endif /* URSA_OP_H */
