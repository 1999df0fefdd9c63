/* SPDX-License-Identifier: MIT */
/*
 * ring.h: one core's io_uring.  ring.c owns set-up (with flag step-down),
 * probing, submission and reaping.  Other files get an SQE from
 * ursa__ring_sqe(), fill it with liburing's io_uring_prep_* helpers (plain
 * field stores) and tag its user_data with one of the URSA__UD_* kinds below;
 * nothing else calls into liburing.
 */
#ifndef URSA_RING_H
#define URSA_RING_H

#include "stats.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * user_data: a pointer to an 8-byte aligned record with its kind in the low
 * three bits, or a bare kind for completions that carry no record.
 */
enum {
	URSA__UD_CALL = 0,    /* struct ursa__call *: its own function takes the CQE */
	URSA__UD_KICK = 1,    /* no record: MSG_RING "look at your inbox"          */
	URSA__UD_IGNORE = 2,  /* no record: cancel requests, timeout removals      */
	URSA__UD_EVENTFD = 3, /* no record: the core's eventfd read completed      */
};

/*
 * A record whose CQEs its own function handles (URSA__UD_CALL): an op a fiber
 * waits for (lib/op.h), a multishot receiver, a scope's timer.  The function
 * runs on the owner core inside the reaper; it keeps `pending` right itself
 * and wakes whom it must.
 */
struct ursa__call {
	void (*fn)(struct ursa__call *call, int res, unsigned flags);
};

#define URSA__UD_KIND(ud) ((unsigned)((ud) & 7u))
#define URSA__UD_PTR(ud) ((void *)(uintptr_t)((ud) & ~(uint64_t)7u))
#define URSA__UD_MAKE(ptr, kind) ((uint64_t)(uintptr_t)(ptr) | (kind))

/* Ops newer than the kernel headers ursa is built against (Debian 12: 6.1).
 * Their numbers are fixed by the kernel's ABI; each is probed at run time. */
#define URSA__RING_OP_WAITID 50 /* IORING_OP_WAITID, 6.7 */

/* What the kernel accepted and offers, found once per ring at set-up. */
struct ursa__ring_caps {
	unsigned setup_flags; /* IORING_SETUP_* accepted */
	unsigned features;    /* IORING_FEAT_* reported */
	bool msg_ring;        /* IORING_OP_MSG_RING */
	bool cqe_skip;        /* IOSQE_CQE_SKIP_SUCCESS (IORING_FEAT_CQE_SKIP) */
	bool socket;          /* IORING_OP_SOCKET (5.19) */
	bool send_zc;         /* IORING_OP_SEND_ZC (6.0) */
	bool waitid;          /* IORING_OP_WAITID (6.7; lib/process.c) */
};

struct ursa__ring {
	struct io_uring uring;
	struct ursa__ring_caps caps;
	bool wait_in_poll; /* wait in poll(2), not io_uring_enter (valgrind; ring.c) */
	struct ursa__ring_stats stats; /* stats.h: written by the ring's core */
};

/*
 * Create the ring with SQ `entries` and CQ 4x that, asking for
 * SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN and dropping one flag at a time
 * while the kernel answers -EINVAL.  Must run on the thread that will submit
 * and wait (DEFER_TASKRUN runs completions only for that thread).
 * 0, or -errno: -ENOSYS/-EPERM when io_uring is unavailable or refused.
 */
int ursa__ring_init(struct ursa__ring *r, unsigned entries);
void ursa__ring_fini(struct ursa__ring *r);

/*
 * A free SQE, zeroed by the prep helper the caller uses next.  Never NULL: a
 * full SQ is submitted and the call retried (the kernel keeps completions past
 * a full CQ in its overflow list, flushed on our next enter; see
 * ursa__ring_enter).
 */
struct io_uring_sqe *ursa__ring_sqe(struct ursa__ring *r);

/*
 * Make sure the next n ursa__ring_sqe() calls do not submit in between (they
 * would split a linked chain), submitting what is queued now if the SQ has
 * fewer than n free slots.  n must not exceed the SQ size.
 */
void ursa__ring_reserve(struct ursa__ring *r, unsigned n);

/* Submit what is queued now, without waiting or reaping (a transient
 * refusal leaves it queued for the next enter). */
void ursa__ring_submit(struct ursa__ring *r);

/* Register / unregister a provided-buffer ring (IORING_REGISTER_PBUF_RING,
 * 5.19) of `entries` (a power of two) under group id bgid.  0 or -errno. */
int ursa__ring_bufring_register(struct ursa__ring *r, struct io_uring_buf_ring *br,
                                unsigned entries, unsigned bgid);
int ursa__ring_bufring_unregister(struct ursa__ring *r, unsigned bgid);

/* Register a sparse table of n direct descriptors (fixed-file slots,
 * 5.19), the probe for linked opens into direct descriptors.  0 or -errno
 * (-EOPNOTSUPP under URSA_DISABLE=direct_files).  From the ring's thread. */
int ursa__ring_files_sparse(struct ursa__ring *r, unsigned n);

/* Register iov[0..n) as the ring's fixed buffers (IORING_REGISTER_BUFFERS):
 * 0 or -errno (-EOPNOTSUPP under URSA_DISABLE=fixed_buffers).  From the
 * ring's thread. */
int ursa__ring_buffers_register(struct ursa__ring *r, const struct iovec *iov, unsigned n);

#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9) /* 5.19 */
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif

/*
 * Whether a look at the rings in memory tells if an enter would collect
 * anything: completions in the CQ, overflowed ones, or completions the
 * kernel holds back as task work until we enter (DEFER_TASKRUN, or
 * COOP_TASKRUN), which it flags in the SQ ring only with TASKRUN_FLAG.
 * Without the flag such a ring cannot be polled from user space.
 */
static inline bool ursa__ring_shows_events(const struct ursa__ring *r)
{
	return (r->caps.setup_flags & IORING_SETUP_TASKRUN_FLAG) ||
	       !(r->caps.setup_flags & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN));
}

/* An enter would collect something (meaningful where ursa__ring_shows_events). */
static inline bool ursa__ring_has_events(struct ursa__ring *r)
{
	return io_uring_cq_ready(&r->uring) ||
	       (IO_URING_READ_ONCE(*r->uring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

/* True if SQEs are queued but not yet submitted. */
static inline bool ursa__ring_has_unsubmitted(struct ursa__ring *r)
{
	return io_uring_sq_ready(&r->uring) != 0;
}

/*
 * Submit what is queued and collect completions: wait for at least one when
 * `wait`, else only pick up what is ready.  Returns 0 or -errno (never
 * -EINTR, -EBUSY or -EAGAIN, which are retried here after reaping).
 */
typedef void (*ursa__ring_complete_fn)(void *ctx, uint64_t ud, int res, unsigned flags);
int ursa__ring_enter(struct ursa__ring *r, bool wait, ursa__ring_complete_fn fn, void *ctx);

/* Dispatch every CQE in the CQ to fn; returns how many. */
unsigned ursa__ring_reap(struct ursa__ring *r, ursa__ring_complete_fn fn, void *ctx);

/* Whether URSA_DISABLE names `what`: behave as on a kernel without that
 * feature, so its fallback can be tested where the feature exists. */
bool ursa__ring_disabled(const char *what);

/* Describe the kernel's io_uring (ursa_features()). */
void ursa__ring_describe(char *buf, size_t len);
/* For a failed io_uring_setup's -errno: the likely cause and the remedy, one
 * line (what ursa_run prints once, and what ursa_features() shows). */
const char *ursa__ring_refusal_hint(int err);

#endif /* URSA_RING_H */
