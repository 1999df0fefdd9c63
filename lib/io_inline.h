/* SPDX-License-Identifier: MIT */
/*
 * io_inline.h: the page-cache fast path (io_inline.c).  A read or write of a
 * regular file is first tried on the worker itself, with preadv2/pwritev2
 * and RWF_NOWAIT: the kernel serves it from the page cache or answers
 * -EAGAIN at once, never blocking.  Only what would block goes to the ring.
 * What each fd answered is remembered (per fd number, process-wide), so an
 * fd whose tries keep failing (not cached, a filesystem without NOWAIT)
 * stops costing a wasted syscall; fds that are not regular files, or are
 * O_DIRECT (whose NOWAIT read would still wait for the device), are never
 * tried.  docs/io.md has the decision table.
 */
#ifndef URSA_IO_INLINE_H
#define URSA_IO_INLINE_H

#include "task.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* ursa__io_inline_rw's answer when the op must go to the ring: no errno
 * is this large. */
#define URSA__IO_RING ((ssize_t)-100000)

/*
 * Try a read (write false) or write of iov at off (-1: the file position)
 * inline.  Returns the count moved (0 < count < total is a partial result
 * whose rest the caller sends to the ring), an -errno the ring would give
 * too, or URSA__IO_RING.  rwf: the caller's RWF_* flags (URSA_RWF_RING:
 * straight to the ring).  May yield the task (see io_inline.c's budget).
 */
ssize_t ursa__io_inline_rw(struct ursa_task *self, bool write, int fd, const struct iovec *iov,
                           int iovcnt, uint64_t off, int rwf);

/*
 * fd is an O_DIRECT file or block device (looked up once per fd number, as
 * the tries are): its reads and writes go to the device, and are submitted
 * at once rather than with the loop's batch.  A batch is plugged: its
 * requests reach the device only when the last one has been built, which
 * measured 30-70 us more per 4 KiB read in the block layer (docs/io.md,
 * "O_DIRECT against 32 threads").  False under URSA_DISABLE=direct_now.
 */
bool ursa__io_inline_direct(int fd);

/* ursa__io_inline_statx's answer when the call must go to the ring. */
#define URSA__IO_RING_INT (-100000)

struct statx;

/*
 * statx(2) on the worker instead of the ring (which hands every statx to an
 * io-wq thread), backing off process-wide while calls keep taking long
 * enough to have blocked.  0, an -errno the ring would give too, or
 * URSA__IO_RING_INT.  May yield the task (the inline budget).
 */
int ursa__io_inline_statx(struct ursa_task *self, int dirfd, const char *path, int flags,
                          unsigned mask, struct statx *st);

/* How long an inline statx may take before it counts as having blocked. */
extern uint64_t ursa__statx_slow_ns;

/* fd was just made or closed by ursa: forget what was learnt about the
 * file that had its number before. */
void ursa__io_inline_forget(int fd);

#endif /* URSA_IO_INLINE_H */
