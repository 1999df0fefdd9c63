/* SPDX-License-Identifier: MIT */
/*
 * stack_trim.c: the per-core timer that gives idle stacks back.  The stack
 * cache (lib/fiber/stack.c) decides what and when; this arms an
 * IORING_OP_TIMEOUT on the core's ring when it asks and runs its trim when
 * the timeout fires, so an idle core needs no polling and a busy one pays
 * nothing on its hot paths.  At most one such timer per core is in flight.
 * It is not counted in core->pending: a core may stop with it armed, and
 * closing the ring removes it.
 */
#include "runtime.h"

static void tick(struct ursa__call *call, int res, unsigned flags)
{
	struct ursa__core *c = ursa__container_of(call, struct ursa__core, stack_tick.call);
	uint64_t next;

	(void)res; /* -ETIME: it fired; nothing else removes it */
	(void)flags;
	next = ursa__stack_trim(&c->stacks, ursa_now());
	if (next)
		ursa__stack_trim_arm(c, next);
}

void ursa__stack_trim_arm(void *core, uint64_t delay_ns)
{
	struct ursa__core *c = core;
	struct io_uring_sqe *sqe = ursa__ring_sqe(&c->ring);

	c->stack_tick.call.fn = tick;
	/* The kernel reads ts when the SQE is submitted; it stays put until
	 * the CQE, and no second arm happens before that. */
	c->stack_tick.ts.tv_sec = (long long)(delay_ns / 1000000000u);
	c->stack_tick.ts.tv_nsec = (long long)(delay_ns % 1000000000u);
	io_uring_prep_timeout(sqe, &c->stack_tick.ts, 0, 0);
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(&c->stack_tick.call, URSA__UD_CALL));
}
