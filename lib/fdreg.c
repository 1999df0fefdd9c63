/* SPDX-License-Identifier: MIT */
/*
 * fdreg.c: the registry of fds with ops in flight per core, and the
 * cross-core half of ursa_close (fdreg.h explains the model).
 *
 * A close on core A sends each core B whose bit is set a request through
 * B's inbox (sched.h, URSA__MSG_RUN).  B submits IORING_OP_ASYNC_CANCEL by
 * fd, ALL, on its own ring; the cancel's CQE completes the request's waiter
 * record (wait.h's protocol, so A may return as soon as it sees DONE).  A
 * waits for each in turn, then runs its own cancel + close.  The ops B
 * cancelled end with -ECANCELED from the kernel, which lib/op.c reports as
 * -EBADF (a cancel their task did not ask for); an op that completed first
 * keeps its result: one outcome each, as for a local close.
 */
#include "fdreg.h"

#include "sched.h"
#include "task.h"
#include "wait.h"

#include <errno.h>
#include <stdlib.h>

int ursa__fdreg_init(struct ursa__runtime *rt)
{
	struct ursa__fdreg *r = &rt->fdreg;

	r->masks = NULL;
	r->counts = NULL;
	if (rt->cfg.cores < 2)
		return 0;
	r->masks = calloc(URSA__FDREG_SLOTS, sizeof(*r->masks));
	r->counts = calloc((size_t)rt->cfg.cores * URSA__FDREG_SLOTS, sizeof(*r->counts));
	if (!r->masks || !r->counts) {
		ursa__fdreg_fini(rt);
		return -ENOMEM;
	}
	return 0;
}

void ursa__fdreg_fini(struct ursa__runtime *rt)
{
	free((void *)rt->fdreg.masks);
	free(rt->fdreg.counts);
	rt->fdreg.masks = NULL;
	rt->fdreg.counts = NULL;
}

/* One core's part of a close, on the closer's stack. */
struct fd_cancel {
	struct ursa__msg_run msg; /* to the target's inbox */
	struct ursa__call call;   /* the cancel's CQE, on the target */
	struct ursa__wait w;      /* the closer waits for it */
	struct ursa__core *target;
	int fd;
};

/* On the target: its cancel has been answered (0: some cancelled,
 * -ENOENT: none there, -EALREADY: one is running and will end by itself). */
static void cancel_answered(struct ursa__call *k, int res, unsigned flags)
{
	struct fd_cancel *fc = ursa__container_of(k, struct fd_cancel, call);

	(void)res;
	(void)flags;
	fc->target->pending--;
	/* Never withdrawn (see never_withdraw), so the claim cannot fail. */
	(void)ursa__wait_claim(&fc->w);
	ursa__wait_done(&fc->w); /* the last touch of fc */
}

/* On the target, from its inbox: cancel its ops on the fd. */
static void cancel_on_core(struct ursa__core *c, struct ursa__msg_run *m)
{
	struct fd_cancel *fc = ursa__container_of(m, struct fd_cancel, msg);
	struct io_uring_sqe *sqe = ursa__ring_sqe(&c->ring);

	fc->call.fn = cancel_answered;
	io_uring_prep_cancel_fd(sqe, fc->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(&fc->call, URSA__UD_CALL));
	c->pending++;
}

/* The requests live on the closer's stack: it cannot give up on them. */
static bool never_withdraw(void *ctx, int why)
{
	(void)ctx;
	(void)why;
	return false;
}

#define BATCH 8u /* requests in flight at once: bounded stack use */

void ursa__fdreg_cancel_remote(struct ursa_task *self, int fd)
{
	struct ursa__runtime *rt = self->core->rt;
	struct ursa__fdreg *r = &rt->fdreg;
	struct fd_cancel fc[BATCH];
	uint64_t mask;
	unsigned n = 0, ncores = rt->cfg.cores;

	if (!r->masks || fd < 0)
		return;
	mask = atomic_load(&r->masks[(unsigned)fd % URSA__FDREG_SLOTS]);
	if (!mask)
		return;
	for (unsigned k = 0; k < ncores; k++) {
		if (k == self->core->id || !(mask & ((uint64_t)1 << (k % 64))))
			continue;
		fc[n].target = &rt->cores[k];
		fc[n].fd = fd;
		fc[n].msg.fn = cancel_on_core;
		ursa__wait_init(&fc[n].w, self);
		ursa__sched_post(fc[n].target, &fc[n].msg);
		if (++n == BATCH || k + 1 == ncores) {
			for (unsigned i = 0; i < n; i++)
				(void)ursa__wait_for(&fc[i].w, never_withdraw, NULL);
			n = 0;
		}
	}
	for (unsigned i = 0; i < n; i++)
		(void)ursa__wait_for(&fc[i].w, never_withdraw, NULL);
}
