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

struct ursa__io_bufpool;

/* Direct descriptors per core (fixed-file slots of its ring) for linked
 * open -> read -> close chains (io_file.c). */
#define URSA__IO_SLOTS 256

/* A slot's close, in flight: its CQE gives the slot back. */
struct ursa__io_closer {
	struct ursa__call call; /* first: the close's user_data */
	struct ursa__core *core;
};

/* Per-core io state (ursa__core.io), created on first use, freed at core_fini
 * after the ring has closed. */
struct ursa__io_core {
	int reserve_fd;               /* spare fd for shedding on EMFILE, or -1    */
	uint64_t emfile_backoff_ns;   /* 0 outside an fd shortage                 */
	struct ursa__list fd_waiters; /* struct ursa__io_fd_wait: accepts parked */
	struct ursa__list groups;     /* struct ursa_bufgroup of this core         */
	/* The page-cache fast path (io_inline.c): the loop turn and the count
	 * of inline completions in it (the yield budget), and what the tries
	 * gave, for tests and diagnosis. */
	uint64_t inline_turn;
	unsigned inline_streak;
	uint64_t inline_hits, inline_misses;
	/* Direct descriptors: registered at first use (slots 1: yes, -1: the
	 * kernel has none, 0: not tried yet); the free slots on a stack. */
	int slots;
	unsigned nfree;
	uint32_t free_slots[URSA__IO_SLOTS];
	struct ursa__io_closer closers[URSA__IO_SLOTS];
	struct ursa__io_bufpool *bufs; /* registered buffers (io_buf.c), or NULL */
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

/* A free direct-descriptor slot of core c, or -1: none free, or the kernel
 * has no direct descriptors (the caller takes the plain path). */
int ursa__io_slot_take(struct ursa__core *c);

/* Prep sqe as the close of slot (taken from c), which gives the slot back
 * when it completes, whatever happened before it in its chain (a failed
 * open cancels it: the slot was never filled).  Nobody waits for it. */
void ursa__io_slot_close(struct ursa__core *c, struct io_uring_sqe *sqe, unsigned slot);

/* Give back a slot that was never filled (its open failed or never ran). */
void ursa__io_slot_put(struct ursa__core *c, unsigned slot);

/* How many of c's slots are free (tests: no slot leaked). */
unsigned ursa__io_slots_free(struct ursa__core *c);

#endif /* URSA_IO_INTERNAL_H */
