/* SPDX-License-Identifier: MIT */
/*
 * fdreg.h: which cores have ops in flight on an fd (fdreg.c), so that
 * ursa_close on one core reaches the ops of every other (issue 20.12).
 *
 * close(2) does not stop io_uring ops already queued on an fd, and an
 * IORING_OP_ASYNC_CANCEL only sees the ring it is submitted to: a recv
 * parked on core 1's ring survives core 0's cancel-by-fd.  So each op that
 * names an fd registers it for the life of the op (ursa__op_wait), and
 * ursa_close asks each other core that may have ops on the fd to cancel
 * them on its own ring, awaits their acknowledgements, and only then closes.
 *
 * The registry is a fixed table of slots (fd mod URSA__FDREG_SLOTS).  Each
 * core counts its ops per slot in a private array; the 0 <-> 1 edges of a
 * count set and clear the core's bit (core id mod 64) in the slot's shared
 * mask.  Two fds of one slot, or two cores of one bit, only cost a cancel
 * request that finds nothing.  A runtime of one core has no registry.
 */
#ifndef URSA_FDREG_H
#define URSA_FDREG_H

#include "sched.h"

#include <stdatomic.h>

#define URSA__FDREG_SLOTS 4096u

/* struct ursa__fdreg (runtime.h): masks[SLOTS], counts[cores][SLOTS]. */

/* Allocate rt's registry (nothing for one core): 0 or -ENOMEM. */
int ursa__fdreg_init(struct ursa__runtime *rt);
void ursa__fdreg_fini(struct ursa__runtime *rt);

/* An op of core c names fd (from its submission to its last CQE). */
static inline void ursa__fdreg_add(struct ursa__core *c, int fd)
{
	struct ursa__fdreg *r = &c->rt->fdreg;
	unsigned slot = (unsigned)fd % URSA__FDREG_SLOTS;

	if (!r->masks || fd < 0)
		return;
	/* seq_cst: ordered before the op's submission, so a close that misses
	 * the bit started before the op did (ursa__fdreg_cancel_remote). */
	if (r->counts[(size_t)c->id * URSA__FDREG_SLOTS + slot]++ == 0)
		atomic_fetch_or(&r->masks[slot], (uint64_t)1 << (c->id % 64));
}

static inline void ursa__fdreg_del(struct ursa__core *c, int fd)
{
	struct ursa__fdreg *r = &c->rt->fdreg;
	unsigned slot = (unsigned)fd % URSA__FDREG_SLOTS;

	if (!r->masks || fd < 0)
		return;
	/* Cores id, id+64, ... share a bit: with more than 64 cores a bit, once
	 * set, stays set (a close then sends a cancel that finds nothing). */
	if (--r->counts[(size_t)c->id * URSA__FDREG_SLOTS + slot] == 0 && c->rt->cfg.cores <= 64)
		atomic_fetch_and(&r->masks[slot], ~((uint64_t)1 << c->id));
}

/*
 * The calling task closes fd on its core: have every other core that may
 * have ops on fd cancel them (IORING_OP_ASYNC_CANCEL by fd, on its own
 * ring), and wait until each has its cancel's answer.  Their ops then end
 * with -EBADF.  Not cancellable: the requests live on this stack.
 */
void ursa__fdreg_cancel_remote(struct ursa_task *self, int fd);

#endif /* URSA_FDREG_H */
