/* SPDX-License-Identifier: MIT */
/*
 * ring.c: io_uring set-up, probing, submission and reaping for one core.
 */
#include "ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The flags we want, and the order in which we give them up when the kernel
 * refuses one (-EINVAL).  DEFER_TASKRUN (6.1) needs SINGLE_ISSUER (6.0);
 * COOP_TASKRUN is 5.19; SUBMIT_ALL is 5.18; CQSIZE is 5.5.
 */
static const unsigned wanted_flags[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
		IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL |
		IORING_SETUP_CQSIZE,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
	IORING_SETUP_CQSIZE,
	0,
};

static void probe_ops(struct ursa__ring *r)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(&r->uring);

	if (p) {
		r->caps.msg_ring = io_uring_opcode_supported(p, IORING_OP_MSG_RING);
		io_uring_free_probe(p);
	}
	r->caps.cqe_skip = (r->caps.features & IORING_FEAT_CQE_SKIP) != 0;
}

int ursa__ring_init(struct ursa__ring *r, unsigned entries)
{
	int rc = -EINVAL;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof(wanted_flags) / sizeof(wanted_flags[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = wanted_flags[i];
		p.cq_entries = entries * 4;
		rc = io_uring_queue_init_params(entries, &r->uring, &p);
		if (rc == 0) {
			r->caps.setup_flags = p.flags;
			r->caps.features = p.features;
			break;
		}
		if (rc != -EINVAL)
			return rc;
	}
	if (rc < 0)
		return rc;
	/* A fork()ed child must not share (and corrupt) the ring's memory. */
	io_uring_ring_dontfork(&r->uring);
	probe_ops(r);
	return 0;
}

void ursa__ring_fini(struct ursa__ring *r)
{
	io_uring_queue_exit(&r->uring);
}

struct io_uring_sqe *ursa__ring_sqe(struct ursa__ring *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->uring))) {
		/* SQ full: hand the batch to the kernel now and take a fresh slot.
		 * -EBUSY/-EAGAIN (kernel short of memory for overflowed CQEs) are
		 * transient; submission is retried until a slot frees. */
		int rc = io_uring_submit(&r->uring);

		if (rc < 0 && rc != -EBUSY && rc != -EAGAIN && rc != -EINTR) {
			fprintf(stderr, "ursa: io_uring_submit failed: %s\n", strerror(-rc));
			abort();
		}
	}
	return sqe;
}

unsigned ursa__ring_reap(struct ursa__ring *r, ursa__ring_complete_fn fn, void *ctx)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&r->uring, head, cqe) {
		fn(ctx, cqe->user_data, cqe->res, cqe->flags);
		n++;
	}
	io_uring_cq_advance(&r->uring, n);
	return n;
}

int ursa__ring_enter(struct ursa__ring *r, bool wait, ursa__ring_complete_fn fn, void *ctx)
{
	for (;;) {
		int rc = wait ? io_uring_submit_and_wait(&r->uring, 1)
		              : io_uring_submit_and_get_events(&r->uring);

		if (rc >= 0 || rc == -ETIME) {
			ursa__ring_reap(r, fn, ctx);
			return 0;
		}
		if (rc == -EINTR) {
			/* A signal: return to the loop, which re-checks its queues. */
			ursa__ring_reap(r, fn, ctx);
			return 0;
		}
		if (rc == -EBUSY || rc == -EAGAIN) {
			/* Completions are backed up: make room by reaping, then retry
			 * without waiting (what we reaped may be what we waited for). */
			if (ursa__ring_reap(r, fn, ctx))
				wait = false;
			continue;
		}
		return rc;
	}
}

void ursa__ring_describe(char *buf, size_t len)
{
	struct ursa__ring r;
	int rc = ursa__ring_init(&r, 8);

	if (rc < 0) {
		snprintf(buf, len, "io_uring: unavailable (%s)\n", strerror(-rc));
		return;
	}
	snprintf(buf, len,
	         "io_uring: available\n"
	         "setup flags: SINGLE_ISSUER=%s DEFER_TASKRUN=%s COOP_TASKRUN=%s SUBMIT_ALL=%s\n"
	         "features: NODROP=%s CQE_SKIP=%s\n"
	         "ops: MSG_RING=%s\n",
	         r.caps.setup_flags & IORING_SETUP_SINGLE_ISSUER ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_DEFER_TASKRUN ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_COOP_TASKRUN ? "yes" : "no",
	         r.caps.setup_flags & IORING_SETUP_SUBMIT_ALL ? "yes" : "no",
	         r.caps.features & IORING_FEAT_NODROP ? "yes" : "no",
	         r.caps.cqe_skip ? "yes" : "no", r.caps.msg_ring ? "yes" : "no");
	ursa__ring_fini(&r);
}
