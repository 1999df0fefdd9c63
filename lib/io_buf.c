/* SPDX-License-Identifier: MIT */
/*
 * io_buf.c: registered I/O buffers.  A core's pool is one mmap'd region of
 * URSA_IOBUF_COUNT buffers of URSA_IOBUF_SIZE bytes (page aligned, so fit
 * for O_DIRECT), made and registered with the core's ring at the first
 * ursa_iobuf_get on that core.  Registration pins the region once, instead
 * of the kernel pinning and unpinning the user pages of every O_DIRECT op.
 * Where the kernel refuses it (RLIMIT_MEMLOCK on kernels before 5.12, say)
 * the buffers still work, as plain memory.
 *
 * Hand-out is the owner core's business (a stack of free indices, touched
 * only by it); a put may come from any thread (another core's task, a pool
 * job), so it sets the buffer's bit in an atomic mask that the owner drains
 * when its stack runs dry.  Each buffer has a `held` flag that only the
 * hand-out sets (owner) and only a put clears (exchange), so a buffer can
 * be in one holder's hands at a time, and a second put of it is refused.
 */
#include "io_buf.h"

#include "io.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

_Static_assert(URSA_IOBUF_COUNT <= 64, "the returned mask is 64 bits");

struct ursa__io_bufpool {
	char *base; /* URSA_IOBUF_COUNT * URSA_IOBUF_SIZE bytes */
	bool registered;
	unsigned nfree;
	unsigned char free[URSA_IOBUF_COUNT]; /* indices; owner core only */
	_Atomic uint64_t returned;            /* put back by any thread */
	_Atomic unsigned char held[URSA_IOBUF_COUNT];
};

#define REGION ((size_t)URSA_IOBUF_COUNT * URSA_IOBUF_SIZE)

/* Every live pool, so that a put from any thread finds its buffer's owner.
 * A slot is written by the owner core (make, fini) and read by putters. */
#define MAX_POOLS 1024
static _Atomic(struct ursa__io_bufpool *) pools[MAX_POOLS];

static struct ursa__io_bufpool *pool_make(struct ursa__core *c)
{
	struct ursa__io_core *io = ursa__io_core(c);
	struct ursa__io_bufpool *p;
	struct iovec iov;

	if (!io)
		return NULL;
	if (io->bufs)
		return io->bufs;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->base = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->base == MAP_FAILED) {
		free(p);
		return NULL;
	}
	iov.iov_base = p->base;
	iov.iov_len = REGION;
	p->registered = ursa__ring_buffers_register(&c->ring, &iov, 1) == 0;
	for (unsigned i = 0; i < URSA_IOBUF_COUNT; i++)
		p->free[i] = (unsigned char)(URSA_IOBUF_COUNT - 1 - i);
	p->nfree = URSA_IOBUF_COUNT;
	for (unsigned i = 0; i < MAX_POOLS; i++) {
		struct ursa__io_bufpool *none = NULL;

		if (atomic_compare_exchange_strong_explicit(&pools[i], &none, p, memory_order_release,
		                                            memory_order_relaxed))
			break;
	}
	io->bufs = p;
	return p;
}

int ursa_iobuf_get(void **buf, size_t size)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__io_bufpool *p;
	unsigned i;

	if (!self)
		return -EPERM;
	if (!buf || size == 0 || size > URSA_IOBUF_SIZE)
		return -EINVAL;
	p = pool_make(self->core);
	if (!p)
		return -ENOMEM;
	if (!p->nfree) {
		/* acquire: the putters' last touches of the buffers come first. */
		uint64_t back = atomic_exchange_explicit(&p->returned, 0, memory_order_acquire);

		for (i = 0; back; i++, back >>= 1)
			if (back & 1)
				p->free[p->nfree++] = (unsigned char)i;
		if (!p->nfree)
			return -ENOBUFS;
	}
	i = p->free[--p->nfree];
	atomic_store_explicit(&p->held[i], 1, memory_order_relaxed);
	*buf = p->base + (size_t)i * URSA_IOBUF_SIZE;
	return 0;
}

int ursa_iobuf_put(void *buf)
{
	char *b = buf;

	for (unsigned k = 0; k < MAX_POOLS; k++) {
		struct ursa__io_bufpool *p = atomic_load_explicit(&pools[k], memory_order_acquire);
		size_t off;
		unsigned i;

		if (!p || b < p->base || b >= p->base + REGION)
			continue;
		off = (size_t)(b - p->base);
		if (off % URSA_IOBUF_SIZE)
			return -EINVAL;
		i = (unsigned)(off / URSA_IOBUF_SIZE);
		/* Only one put of a hand-out gets past this. */
		if (!atomic_exchange_explicit(&p->held[i], 0, memory_order_relaxed))
			return -EALREADY;
		/* release: our uses of the buffer happen before its next holder's. */
		atomic_fetch_or_explicit(&p->returned, 1ull << i, memory_order_release);
		return 0;
	}
	return -EINVAL;
}

bool ursa__io_buf_fixed(struct ursa__core *c, const void *buf, size_t n)
{
	struct ursa__io_bufpool *p = c->io ? c->io->bufs : NULL;
	const char *b = buf;

	return p && p->registered && b >= p->base && n <= REGION &&
	       (size_t)(b - p->base) <= REGION - n;
}

unsigned ursa__io_buf_held(struct ursa__core *c)
{
	struct ursa__io_bufpool *p = c->io ? c->io->bufs : NULL;
	unsigned n = 0;

	for (unsigned i = 0; p && i < URSA_IOBUF_COUNT; i++)
		n += atomic_load_explicit(&p->held[i], memory_order_relaxed);
	return n;
}

void ursa__io_buf_fini(struct ursa__core *c)
{
	struct ursa__io_bufpool *p = c->io ? c->io->bufs : NULL;

	if (!p)
		return;
	for (unsigned k = 0; k < MAX_POOLS; k++) {
		struct ursa__io_bufpool *q = p;

		if (atomic_compare_exchange_strong_explicit(&pools[k], &q, NULL,
		                                            memory_order_relaxed,
		                                            memory_order_relaxed))
			break;
	}
	munmap(p->base, REGION);
	free(p);
	c->io->bufs = NULL;
}
