/* SPDX-License-Identifier: MIT */
/*
 * op.c: the one way a fiber waits for an io_uring operation, with the
 * cancellation rule of DESIGN.md: when the task is cancelled or a deadline
 * passes, ask the kernel to cancel the op (IORING_OP_ASYNC_CANCEL) and still
 * wait for the op's own CQE before returning, so nothing is written into this
 * stack after the call is gone; if the op completed anyway, its result wins.
 */
#include "op.h"

#include "fdreg.h"
#include "scope.h"

#include <errno.h>

int ursa__op_check(struct ursa_task **self)
{
	struct ursa_task *t = ursa__sched_self();

	*self = t;
	return t ? ursa__scope_check(t, NULL) : -EPERM;
}

struct io_uring_sqe *ursa__op_sqe(struct ursa_task **self, int *err)
{
	int rc = ursa__op_check(self);

	if (rc) {
		*err = rc;
		return NULL;
	}
	return ursa__ring_sqe(&(*self)->core->ring);
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
	ursa__stats_op_end(&op->w.task->core->stats, op->opcode);
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

static int wait_on(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe,
                   bool now)
{
	op->call.fn = op_complete;
	ursa__wait_init(&op->w, self);
	op->w.reason = URSA__PARK_RING;
	op->res = 0;
	op->cqe_flags = 0;
	op->why = 0;
	op->cancel_sent = false;
	/* A fixed-file index is no fd (a dirfd counts: closing it should stop an
	 * openat under it too). */
	int fd = (sqe->flags & IOSQE_FIXED_FILE) ? -1 : sqe->fd;

	io_uring_sqe_set_data64(sqe, ursa__op_user_data(op));
	self->core->pending++;
	op->opcode = sqe->opcode;
	ursa__stats_op_start(&self->core->stats, op->opcode);
	/* Registered while in flight, so a close on another core reaches it
	 * (fdreg.h).  self->core: a task never changes core. */
	ursa__fdreg_add(self->core, fd);
	/* After the registration, as for an op the loop submits: the kernel
	 * must not have the op before a close elsewhere can find it. */
	if (now)
		ursa__ring_submit(&self->core->ring);
	(void)ursa__wait_for(&op->w, cancel, op); /* never withdrawn: 0 */
	ursa__fdreg_del(self->core, fd);
	if (op->res == -ECANCELED)
		return op->cancel_sent ? op->why : -EBADF;
	return op->res;
}

int ursa__op_wait_on(struct ursa_task *self, struct ursa__op *op, struct io_uring_sqe *sqe)
{
	return wait_on(self, op, sqe, false);
}

int ursa__op_wait(struct ursa_task *self, struct io_uring_sqe *sqe)
{
	struct ursa__op op;

	return wait_on(self, &op, sqe, false);
}

int ursa__op_wait_now(struct ursa_task *self, struct io_uring_sqe *sqe)
{
	struct ursa__op op;

	return wait_on(self, &op, sqe, true);
}

/* ------------------------------------------------------------- chains */

/* Ask the kernel to cancel every step of ch whose CQE is not in. */
static void cancel_steps(struct ursa__chain *ch)
{
	for (unsigned i = 0; i < ch->n; i++) {
		struct io_uring_sqe *sqe;

		if (ch->step[i].done)
			continue;
		sqe = ursa__ring_sqe(&ch->w.task->core->ring);
		io_uring_prep_cancel64(sqe, URSA__UD_MAKE(&ch->step[i].call, URSA__UD_CALL), 0);
		io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
	}
}

static void step_complete(struct ursa__call *k, int res, unsigned flags)
{
	struct ursa__chain_step *st = ursa__container_of(k, struct ursa__chain_step, call);
	struct ursa__chain *ch = st->chain;

	(void)flags;
	st->res = res;
	st->done = true;
	if (--ch->owed) {
		/* A step behind a hard link is issued only now that this one
		 * is done, so a cancel sent before found nothing to stop (a
		 * read of a FIFO would then wait for good): send it again. */
		if (ch->cancel_sent)
			cancel_steps(ch);
		return;
	}
	ch->w.task->core->pending--;
	ursa__wait_done(&ch->w);
}

/* ursa__wait_for's withdraw for a chain: cancel every step still running;
 * their CQEs decide. */
static bool chain_cancel(void *ctx, int why)
{
	struct ursa__chain *ch = ctx;

	ch->why = why;
	ch->cancel_sent = true;
	cancel_steps(ch);
	return false;
}

int ursa__chain_begin(struct ursa__chain *ch, struct ursa_task **self, unsigned nsqe)
{
	int rc = ursa__op_check(self);

	if (rc)
		return rc;
	ch->n = 0;
	ch->owed = 0;
	ch->why = 0;
	ch->cancel_sent = false;
	ursa__wait_init(&ch->w, *self);
	ursa__ring_reserve(&(*self)->core->ring, nsqe);
	return 0;
}

struct io_uring_sqe *ursa__chain_sqe(struct ursa__chain *ch, struct ursa_task *self)
{
	struct ursa__chain_step *st = &ch->step[ch->n++];
	struct io_uring_sqe *sqe = ursa__ring_sqe(&self->core->ring);

	st->call.fn = step_complete;
	st->chain = ch;
	st->res = 0;
	st->done = false;
	ch->owed++;
	/* liburing's prep helpers (io_uring_prep_rw underneath) set every
	 * field but user_data, so the tag survives the caller's prep. */
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(&st->call, URSA__UD_CALL));
	return sqe;
}

void ursa__chain_wait(struct ursa_task *self, struct ursa__chain *ch)
{
	self->core->pending++;
	(void)ursa__wait_for(&ch->w, chain_cancel, ch); /* never withdrawn */
}
