/* SPDX-License-Identifier: MIT */
/*
 * io.c: what files and sockets share: the per-core io state, the
 * take-an-SQE / wait-for-its-CQE shape of every call, ursa_close (cancel by
 * fd, then close, as one linked pair) and the wake-up of accepts parked for
 * want of an fd when one is freed.
 */
#include "io.h"

#include "fdreg.h"
#include "io_buf.h"
#include "io_bufring.h"
#include "io_inline.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct ursa__io_core *ursa__io_core(struct ursa__core *c)
{
	struct ursa__io_core *io = c->io;

	if (io)
		return io;
	io = calloc(1, sizeof(*io));
	if (!io)
		return NULL;
	io->reserve_fd = -1;
	ursa__list_init(&io->fd_waiters);
	ursa__list_init(&io->groups);
	c->io = io;
	return io;
}

void ursa__io_core_fini(struct ursa__core *c)
{
	struct ursa__io_core *io = c->io;

	if (!io)
		return;
	/* The ring is gone: nothing can be parked on this state any more. */
	ursa__io_bufring_fini_all(io);
	ursa__io_buf_fini(c);
	if (io->reserve_fd >= 0)
		close(io->reserve_fd);
	free(io);
	c->io = NULL;
}

/* ------------------------------------------------------ direct descriptors */

int ursa__io_slot_take(struct ursa__core *c)
{
	struct ursa__io_core *io = ursa__io_core(c);

	if (!io || io->slots < 0)
		return -1;
	if (io->slots == 0) {
		/* First use: the registration is the probe (5.19). */
		if (ursa__ring_files_sparse(&c->ring, URSA__IO_SLOTS) < 0) {
			io->slots = -1;
			return -1;
		}
		io->slots = 1;
		for (unsigned i = 0; i < URSA__IO_SLOTS; i++)
			io->free_slots[i] = URSA__IO_SLOTS - 1 - i;
		io->nfree = URSA__IO_SLOTS;
	}
	return io->nfree ? (int)io->free_slots[--io->nfree] : -1;
}

/* The close's CQE, on the core: the slot is empty again. */
static void slot_closed(struct ursa__call *k, int res, unsigned flags)
{
	struct ursa__io_closer *cl = ursa__container_of(k, struct ursa__io_closer, call);
	struct ursa__io_core *io = cl->core->io;

	(void)res; /* 0, or -ECANCELED / -EBADF when the open never filled it */
	(void)flags;
	io->free_slots[io->nfree++] = (uint32_t)(cl - io->closers);
	cl->core->pending--;
}

void ursa__io_slot_close(struct ursa__core *c, struct io_uring_sqe *sqe, unsigned slot)
{
	struct ursa__io_closer *cl = &c->io->closers[slot];

	cl->call.fn = slot_closed;
	cl->core = c;
	io_uring_prep_close_direct(sqe, slot);
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(&cl->call, URSA__UD_CALL));
	c->pending++; /* the core stays until the slot is closed */
}

void ursa__io_slot_put(struct ursa__core *c, unsigned slot)
{
	c->io->free_slots[c->io->nfree++] = slot;
}

unsigned ursa__io_slots_free(struct ursa__core *c)
{
	return c->io && c->io->slots > 0 ? c->io->nfree : URSA__IO_SLOTS;
}

/* Wait for sqe's op with cancellation held off: for calls that must finish
 * (closing, removing a temporary) even in a cancelled task. */
static int wait_shielded(struct ursa_task *self, struct io_uring_sqe *sqe)
{
	struct ursa_scope shield;
	int rc;

	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	rc = ursa__op_wait(self, sqe);
	(void)ursa_scope_exit(&shield);
	return rc;
}

void ursa__io_fd_freed(struct ursa__core *c)
{
	/* Read by the kernel when it takes the SQE; never written. */
	static struct __kernel_timespec now_ts = {0, 1};
	struct ursa__io_core *io = c->io;
	struct ursa__list *n;

	if (!io)
		return;
	while ((n = ursa__list_shift(&io->fd_waiters))) {
		struct ursa__io_fd_wait *w = ursa__container_of(n, struct ursa__io_fd_wait, link);
		struct io_uring_sqe *sqe = ursa__ring_sqe(&c->ring);

		/* Make the waiter's timeout expire now (TIMEOUT_UPDATE, 5.11); it
		 * completes as if its time had come, through its own CQE. */
		io_uring_prep_timeout_update(sqe, &now_ts, ursa__op_user_data(w->op), 0);
		io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
	}
}

int ursa__io_close_fresh(struct ursa_task *self, int fd)
{
	struct io_uring_sqe *sqe = ursa__ring_sqe(&self->core->ring);
	int rc;

	io_uring_prep_close(sqe, fd);
	rc = wait_shielded(self, sqe);
	if (rc == 0) {
		ursa__io_inline_forget(fd);
		ursa__io_fd_freed(self->core);
	}
	return rc;
}

int ursa_close(int fd)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__ring *r;
	struct io_uring_sqe *sqe;
	int rc;

	if (!self)
		return -EPERM;
	if (fd < 0)
		return -EBADF;
	/* Other cores' ops on fd first: a cancel finds only its own ring's ops,
	 * and by fd number only while the number still names the file. */
	ursa__fdreg_cancel_remote(self, fd);
	r = &self->core->ring;
	/*
	 * close(2) does not stop ops already queued on the fd: they would run
	 * on whatever file takes the number next (liburing #932).  Cancel them
	 * first; the hard link runs the close whatever the cancel reports.  The
	 * two SQEs must reach the kernel in one submission, hence the reserve.
	 */
	ursa__ring_reserve(r, 2);
	sqe = ursa__ring_sqe(r);
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	sqe->flags |= IOSQE_IO_HARDLINK;
	io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
	sqe = ursa__ring_sqe(r);
	io_uring_prep_close(sqe, fd);
	rc = wait_shielded(self, sqe);
	if (rc == 0) {
		ursa__io_inline_forget(fd);
		ursa__io_fd_freed(self->core);
	}
	return rc;
}
