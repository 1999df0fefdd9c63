/* SPDX-License-Identifier: MIT */
/*
 * io.h: what the io_*.c files share (io.c): the per-core io state, the
 * largest count one op moves, and the hooks between them (ursa_close wakes
 * the accepts parked on EMFILE).  Each call is an op (lib/op.h).
 */
#ifndef URSA_IO_INTERNAL_H
#define URSA_IO_INTERNAL_H

#include "op.h"
#include "scope.h"

#include <limits.h>

/* The largest count one op moves: Linux's MAX_RW_COUNT (INT_MAX rounded down
 * to a page), which read(2) clamps to as well. */
#define URSA__IO_MAX ((unsigned)(INT_MAX & ~4095))

/* Per-core io state (ursa__core.io), created on first use, freed at core_fini
 * after the ring has closed. */
struct ursa__io_core {
	int reserve_fd;               /* spare fd for shedding on EMFILE, or -1    */
	uint64_t emfile_backoff_ns;   /* 0 outside an fd shortage                 */
	struct ursa__list fd_waiters; /* struct ursa__io_fd_wait: accepts parked */
	struct ursa__list groups;     /* struct ursa_bufgroup of this core         */
};

/* The calling core's io state, created if needed; NULL when out of memory. */
struct ursa__io_core *ursa__io_core(struct ursa__core *c);

/* Release core c's io state; after the ring has closed, so the kernel no
 * longer uses its buffers. */
void ursa__io_core_fini(struct ursa__core *c);

static inline unsigned ursa__io_len(size_t n)
{
	return n > URSA__IO_MAX ? URSA__IO_MAX : (unsigned)n;
}

/* An accept parked for want of an fd (io_net.c), on its core's fd_waiters:
 * op is its timeout, which ursa__io_fd_freed makes expire at once. */
struct ursa__io_fd_wait {
	struct ursa__list link;
	struct ursa__op *op;
};

/* An fd was closed on core c: wake the accepts parked for want of one. */
void ursa__io_fd_freed(struct ursa__core *c);

/* Close fd through the ring, shielded from cancellation, without the fd
 * cancel step (nothing else can have ops on an fd this file just made). */
int ursa__io_close_fresh(struct ursa_task *self, int fd);

#endif /* URSA_IO_INTERNAL_H */
