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

#include <errno.h>

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
	uint8_t opcode;          /* the SQE's, for the counters (stats.h) */
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
 * Step one without the SQE, for a call that may complete without the ring
 * (an inline read that the page cache serves, lib/io_inline.h) and takes
 * its SQE later with ursa__ring_sqe: the calling task into *self, and 0; or
 * -EPERM (not in a task) or the pending cancellation / passed deadline.
 */
int ursa__op_check(struct ursa_task **self);

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
/* ursa__op_wait, but the SQ goes to the kernel now instead of with the
 * loop's batch at the end of the turn: for ops that should reach their
 * device at once (O_DIRECT reads and writes, io_file.c). */
int ursa__op_wait_now(struct ursa_task *self, struct io_uring_sqe *sqe);

/*
 * A linked chain (IOSQE_IO_LINK / IOSQE_IO_HARDLINK) of up to
 * URSA__CHAIN_MAX ops that the task waits for together: one submission, one
 * wake.  Each step has its own user_data, so a cancellation can aim at the
 * steps still running, and the wait ends only when every step's CQE is in
 * (a step the kernel failed because an earlier one did posts -ECANCELED
 * too).  An SQE in the chain that the task must not wait for or cancel (a
 * direct descriptor's close, which frees its slot itself: io.h) is taken
 * with ursa__ring_sqe between the steps instead.
 *
 *	struct ursa__chain ch;
 *	if ((err = ursa__chain_begin(&ch, &self, 3)))  // check; room for 3 SQEs
 *		return err;
 *	sqe = ursa__chain_sqe(&ch, self);  ... IOSQE_IO_LINK    // step 0
 *	sqe = ursa__chain_sqe(&ch, self);  ... IOSQE_IO_HARDLINK // step 1
 *	sqe = ursa__ring_sqe(ring);  ... not awaited
 *	ursa__chain_wait(self, &ch);
 *	ursa__chain_res(&ch, 0), ursa__chain_res(&ch, 1)
 */
#define URSA__CHAIN_MAX 4

struct ursa__chain;

struct ursa__chain_step {
	struct ursa__call call; /* first: the step's user_data */
	struct ursa__chain *chain;
	int32_t res;
	bool done;
};

struct ursa__chain {
	struct ursa__wait w;
	struct ursa__chain_step step[URSA__CHAIN_MAX];
	unsigned n;    /* steps with an SQE */
	unsigned owed; /* their CQEs still to come */
	int why;       /* what made us cancel (when cancel_sent) */
	bool cancel_sent;
};

/* Check for cancellation (as ursa__op_check) and make room for `nsqe` SQEs
 * in one submission.  0, or -EPERM / the cancellation. */
int ursa__chain_begin(struct ursa__chain *ch, struct ursa_task **self, unsigned nsqe);
/* The next step's SQE, tagged; the caller preps it and sets its link flag. */
struct io_uring_sqe *ursa__chain_sqe(struct ursa__chain *ch, struct ursa_task *self);
/* Park until every step's CQE is in, cancelling the steps still running if
 * the task is cancelled or a deadline passes meanwhile (the wait goes on
 * for their CQEs).  Always 0: read the steps with ursa__chain_res. */
void ursa__chain_wait(struct ursa_task *self, struct ursa__chain *ch);

/* Step i's result, with the kernel's -ECANCELED after our cancel turned
 * into the reason (-ECANCELED or -ETIMEDOUT).  A -ECANCELED left means an
 * earlier step failed and the kernel cancelled the rest of the chain. */
static inline int ursa__chain_res(const struct ursa__chain *ch, unsigned i)
{
	int r = ch->step[i].res;

	return r == -ECANCELED && ch->cancel_sent ? ch->why : r;
}

#endif /* URSA_OP_H */
