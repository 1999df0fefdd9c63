/* SPDX-License-Identifier: MIT */
/*
 * io_bufring.c: buffer groups (provided-buffer rings) and multishot
 * receivers.  A receiver keeps one multishot recv armed on its socket; the
 * kernel picks a buffer of the group only when data arrive, so an idle
 * connection pins no memory.  Completions come in faster than the task takes
 * them, so each receiver keeps a queue of filled buffers, linked through the
 * group's per-buffer `next` array (a buffer is in at most one queue, so the
 * queue needs no memory of its own and cannot overflow):
 *
 *   group:  mem   [ buf 0 | buf 1 | buf 2 | ... | buf count-1 ]   size bytes each
 *           len   [  n0   |  n1   |  ...  ]   bytes in a queued buffer
 *           next  [  -1   |   0   |  ...  ]   next buffer in its receiver's queue
 *   rx:     head -> 1 -> 0 -> -1             tail = 0;  held: the buffer the user has
 *
 * A buffer is, at any time, in the kernel's ring (free), in one queue, or
 * held by one receiver's user; `nfree` counts the first kind.  When the ring
 * runs dry the kernel ends the multishot recv with -ENOBUFS: back-pressure.
 * The receiver does not re-arm until a buffer has come back.
 */
#include "io_bufring.h"

#include "fdreg.h"
#include "wait.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

struct ursa_bufgroup {
	struct ursa__list link;      /* io->groups */
	struct ursa__core *core;     /* owner: the only core that touches it */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	unsigned char *mem;
	size_t mem_bytes;
	size_t size;                 /* bytes per buffer */
	unsigned count;              /* buffers, a power of two */
	uint16_t bgid;
	unsigned nfree;              /* buffers in the kernel's ring */
	int32_t *len;
	int32_t *next;
	struct ursa__list rxs;       /* receivers open on the group */
	struct ursa__list starved;   /* receivers waiting for a buffer back */
	unsigned enobufs;            /* times the ring ran dry (tests read it) */
};

struct ursa_rx {
	struct ursa__call call;      /* first: the multishot recv's user_data */
	struct ursa_bufgroup *g;
	int fd;
	int32_t held;                /* buffer the user holds, or -1 */
	int32_t head, tail;          /* queue of filled buffers, -1 when empty */
	int32_t end;                 /* why the recv ended, while `ended` */
	bool armed;                  /* the multishot recv is in the kernel */
	bool ended;                  /* `end` is still to be reported */
	bool eof;                    /* the peer shut down: every call says 0 */
	struct ursa_task *waiter;    /* task parked in recv or close */
	struct ursa__list link;      /* g->rxs */
	struct ursa__list starved;   /* g->starved */
};

/* ------------------------------------------------------------------ group */

static void give_back(struct ursa_bufgroup *g, int32_t bid)
{
	struct ursa__list *n;

	io_uring_buf_ring_add(g->br, g->mem + (size_t)bid * g->size, (unsigned)g->size,
	                      (unsigned short)bid, io_uring_buf_ring_mask(g->count), 0);
	/* Release store of the tail: the kernel sees the entry before it. */
	io_uring_buf_ring_advance(g->br, 1);
	g->nfree++;
	/* Every starved receiver re-checks; those that find none wait again. */
	while ((n = ursa__list_shift(&g->starved))) {
		struct ursa_rx *rx = ursa__container_of(n, struct ursa_rx, starved);

		if (rx->waiter)
			ursa__sched_wake(rx->waiter);
	}
}

static void group_free(struct ursa_bufgroup *g)
{
	if (g->br)
		munmap(g->br, g->br_bytes);
	if (g->mem)
		munmap(g->mem, g->mem_bytes);
	free(g->len);
	free(g->next);
	free(g);
}

/* The lowest group id no group of this core uses. */
static int free_bgid(struct ursa__io_core *io)
{
	for (unsigned id = 0; id <= UINT16_MAX; id++) {
		bool used = false;

		for (struct ursa__list *n = io->groups.next; n != &io->groups; n = n->next)
			if (ursa__container_of(n, struct ursa_bufgroup, link)->bgid == id) {
				used = true;
				break;
			}
		if (!used)
			return (int)id;
	}
	return -ENOSPC;
}

int ursa_bufgroup_create(struct ursa_bufgroup **out, unsigned count, size_t size)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__io_core *io;
	struct ursa_bufgroup *g;
	int rc, id;

	if (!self)
		return -EPERM;
	if (!out || count == 0 || count > 32768 || (count & (count - 1)) || size == 0 ||
	    size > UINT32_MAX || size > SIZE_MAX / count)
		return -EINVAL;
	if (!(io = ursa__io_core(self->core)))
		return -ENOMEM;
	if ((id = free_bgid(io)) < 0)
		return id;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->core = self->core;
	g->count = count;
	g->size = size;
	g->bgid = (uint16_t)id;
	ursa__list_init(&g->rxs);
	ursa__list_init(&g->starved);
	/* The ring of buffer descriptors must be page aligned: mmap. */
	g->br_bytes = count * sizeof(struct io_uring_buf);
	g->br = mmap(NULL, g->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g->mem_bytes = count * size;
	g->mem = mmap(NULL, g->mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	              0);
	g->len = calloc(count, sizeof(*g->len));
	g->next = calloc(count, sizeof(*g->next));
	if (g->br == MAP_FAILED)
		g->br = NULL;
	if (g->mem == MAP_FAILED)
		g->mem = NULL;
	if (!g->br || !g->mem || !g->len || !g->next) {
		group_free(g);
		return -ENOMEM;
	}
	io_uring_buf_ring_init(g->br);
	rc = ursa__ring_bufring_register(&self->core->ring, g->br, count, g->bgid);
	if (rc < 0) {
		group_free(g);
		return rc;
	}
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(g->br, g->mem + (size_t)i * size, (unsigned)size,
		                      (unsigned short)i, io_uring_buf_ring_mask(count), (int)i);
	io_uring_buf_ring_advance(g->br, (int)count);
	g->nfree = count;
	ursa__list_push(&io->groups, &g->link);
	*out = g;
	return 0;
}

int ursa_bufgroup_destroy(struct ursa_bufgroup *g)
{
	struct ursa_task *self = ursa__sched_self();

	if (!g)
		return 0;
	if (!self)
		return -EPERM;
	if (self->core != g->core)
		return -EXDEV;
	if (!ursa__list_empty(&g->rxs))
		return -EBUSY;
	(void)ursa__ring_bufring_unregister(&g->core->ring, g->bgid);
	ursa__list_unlink(&g->link);
	group_free(g);
	return 0;
}

unsigned ursa__io_bufring_enobufs(const struct ursa_bufgroup *g)
{
	return g->enobufs;
}

void ursa__io_bufring_fini_all(struct ursa__io_core *io)
{
	struct ursa__list *n;

	/* The ring has closed, and with it the kernel's use of the buffers;
	 * receivers the program never closed go with their group. */
	while ((n = ursa__list_shift(&io->groups))) {
		struct ursa_bufgroup *g = ursa__container_of(n, struct ursa_bufgroup, link);
		struct ursa__list *r;

		while ((r = ursa__list_shift(&g->rxs)))
			free(ursa__container_of(r, struct ursa_rx, link));
		group_free(g);
	}
}

/* --------------------------------------------------------------- receiver */

static void rx_complete(struct ursa__call *k, int res, unsigned flags)
{
	struct ursa_rx *rx = ursa__container_of(k, struct ursa_rx, call);
	struct ursa_bufgroup *g = rx->g;

	if (flags & IORING_CQE_F_BUFFER) {
		int32_t bid = (int32_t)(flags >> IORING_CQE_BUFFER_SHIFT);

		g->nfree--;
		if (res > 0) {
			g->len[bid] = res;
			g->next[bid] = -1;
			if (rx->tail >= 0)
				g->next[rx->tail] = bid;
			else
				rx->head = bid;
			rx->tail = bid;
		} else {
			give_back(g, bid);
		}
	}
	if (!(flags & IORING_CQE_F_MORE)) {
		/* The multishot recv has ended.  With data it merely stopped (the
		 * kernel may stop one at any time): the next wait re-arms. */
		rx->armed = false;
		ursa__fdreg_del(g->core, rx->fd);
		if (res <= 0) {
			rx->ended = true;
			rx->end = res;
		}
	}
	if (rx->waiter)
		ursa__sched_wake(rx->waiter);
}

int ursa_rx_create(struct ursa_rx **out, int fd, struct ursa_bufgroup *g)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa_rx *rx;

	if (!self)
		return -EPERM;
	if (!out || !g || fd < 0)
		return -EINVAL;
	if (self->core != g->core)
		return -EXDEV;
	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->call.fn = rx_complete;
	rx->g = g;
	rx->fd = fd;
	rx->held = rx->head = rx->tail = -1;
	ursa__list_init(&rx->starved);
	ursa__list_push(&g->rxs, &rx->link);
	*out = rx;
	return 0;
}

static void arm(struct ursa_rx *rx)
{
	struct io_uring_sqe *sqe = ursa__ring_sqe(&rx->g->core->ring);

	io_uring_prep_recv_multishot(sqe, rx->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = rx->g->bgid;
	io_uring_sqe_set_data64(sqe, URSA__UD_MAKE(rx, URSA__UD_CALL));
	rx->armed = true;
	/* In the registry while armed, as any op on an fd (fdreg.h): an
	 * ursa_close on another core then cancels it here, and the receiver
	 * reports -EBADF as for a close on this core. */
	ursa__fdreg_add(rx->g->core, rx->fd);
}

/*
 * Park until rx_complete or give_back wakes us (both run on this core), a
 * deadline passes or the task is cancelled; ursa_rx_recv's loop looks at
 * which.  While parked the task is owed a CQE, so it counts in `pending`
 * (the loop then keeps reaping even on a busy core); an armed receiver
 * nobody waits on does not count, so one the program forgot cannot hold up
 * the runtime's exit.
 */
static void rx_park(struct ursa_task *self, struct ursa_rx *rx)
{
	rx->waiter = self;
	self->core->pending++;
	/* An error is found again by the check at the top of that loop. */
	(void)ursa__wait_park(self);
	self->core->pending--;
	rx->waiter = NULL;
}

ssize_t ursa_rx_recv(struct ursa_rx *rx, const void **data)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa_bufgroup *g;
	int rc;

	if (!self)
		return -EPERM;
	if (!rx || !data)
		return -EINVAL;
	g = rx->g;
	if (self->core != g->core)
		return -EXDEV;
	if (rx->waiter)
		return -EBUSY;
	if (rx->held >= 0) {
		give_back(g, rx->held);
		rx->held = -1;
	}
	for (;;) {
		if ((rc = ursa__scope_check(self, NULL)))
			return rc;
		if (rx->head >= 0) {
			int32_t bid = rx->head;

			rx->head = g->next[bid];
			if (rx->head < 0)
				rx->tail = -1;
			rx->held = bid;
			*data = g->mem + (size_t)bid * g->size;
			return g->len[bid];
		}
		if (rx->eof)
			return 0;
		if (rx->ended) {
			int end = rx->end;

			rx->ended = false;
			if (end == 0) {
				rx->eof = true;
				return 0;
			}
			/* Cancelled without our asking: ursa_close took the fd. */
			if (end == -ECANCELED)
				return -EBADF;
			if (end != -ENOBUFS)
				return end;
			/* -ENOBUFS: re-arm once a buffer is back, below. */
			g->enobufs++;
		}
		if (!rx->armed) {
			if (g->nfree == 0) {
				ursa__list_push(&g->starved, &rx->starved);
				rx_park(self, rx);
				ursa__list_unlink(&rx->starved);
				continue;
			}
			arm(rx);
		}
		rx_park(self, rx);
	}
}

int ursa_rx_destroy(struct ursa_rx *rx)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa_bufgroup *g;

	if (!rx)
		return 0;
	if (!self)
		return -EPERM;
	g = rx->g;
	if (self->core != g->core)
		return -EXDEV;
	if (rx->waiter)
		return -EBUSY;
	if (rx->armed) {
		/* Stop the recv and wait for its last CQE (it may already be on
		 * its way: then the cancel finds nothing, harmlessly).  Shielded
		 * by construction: nothing here checks for cancellation. */
		struct io_uring_sqe *sqe = ursa__ring_sqe(&g->core->ring);

		io_uring_prep_cancel64(sqe, URSA__UD_MAKE(rx, URSA__UD_CALL), 0);
		io_uring_sqe_set_data64(sqe, URSA__UD_IGNORE);
		while (rx->armed) {
			rx->waiter = self;
			self->core->pending++;
			ursa__sched_park();
			self->core->pending--;
			rx->waiter = NULL;
		}
	}
	if (rx->held >= 0)
		give_back(g, rx->held);
	while (rx->head >= 0) {
		int32_t bid = rx->head;

		rx->head = g->next[bid];
		give_back(g, bid);
	}
	ursa__list_unlink(&rx->starved);
	ursa__list_unlink(&rx->link);
	free(rx);
	return 0;
}
