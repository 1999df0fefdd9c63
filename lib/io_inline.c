/* SPDX-License-Identifier: MIT */
/*
 * io_inline.c: the page-cache fast path.  A read or write of a regular file
 * is tried on the worker with preadv2/pwritev2(RWF_NOWAIT) before it goes to
 * the ring: a page-cache hit then costs one syscall and no park, no SQE, no
 * CQE and no switch (docs/io.md, "Which path an op takes", has the numbers).
 *
 * What each fd answered is kept in a table indexed by fd number, shared by
 * every core (an fd is process-wide): one 32-bit word per fd, read on every
 * try and written only when something changes.  Races between cores lose an
 * update at worst; the word is a hint, never needed for correctness:
 *
 *   kind      unknown until the first try, which looks: a regular file
 *             without O_DIRECT may be tried; anything else never is (a pipe
 *             or socket is the ring's business; an O_DIRECT read with
 *             RWF_NOWAIT is issued and then *waited for*, on the worker).
 *             An O_DIRECT file or block device is marked as such: its ops
 *             are submitted at once (ursa__io_inline_direct)
 *   off       ursa_fd_inline(fd, URSA_FD_INLINE_OFF): never tried
 *   nosupp    per direction: the filesystem refused RWF_NOWAIT (-EOPNOTSUPP:
 *             ext4's and tmpfs's buffered writes, tmpfs's reads)
 *   backoff   per direction: after -EAGAIN (not in the page cache) the next
 *             2^level - 1 ops skip the try, level rising by one per -EAGAIN
 *             up to 8 (255 ops) and falling to 0 at the first hit, so an fd
 *             that is never cached wastes under 0.5% of its ops on tries
 *
 * ursa makes and closes fds through the ring, so ursa_open*, ursa_accept,
 * ursa_socket and ursa_close forget what the number meant before.  An fd
 * closed with close(2) and reused by open(2) keeps its old hint until then:
 * harmless, except that a number that was a buffered file and is now
 * O_DIRECT would be read inline, waiting on the worker (docs/io.md).
 */
#include "io_inline.h"

#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/* ------------------------------------------------------------- the table */

#define CHUNK_BITS 10
#define CHUNK (1u << CHUNK_BITS)
#define NCHUNKS 1024u /* fds below 2^20, Linux's default nr_open */

static _Atomic(_Atomic uint32_t *) chunks[NCHUNKS];

enum {
	KIND_MASK = 0x3u,
	KIND_UNKNOWN = 0,
	KIND_FILE = 1,  /* a regular file, not O_DIRECT: may be tried */
	KIND_OTHER = 2, /* never tried */
	KIND_DIRECT = 3, /* O_DIRECT: never tried, submitted at once */
	USER_OFF = 0x4u,
	NOSUPP_R = 0x8u,
	NOSUPP_W = 0x10u,
	BACKOFF_R = 8,  /* shift: 4 bits of level, then 8 of ops to skip */
	BACKOFF_W = 20,
	MAX_LEVEL = 8,
};

static unsigned level_of(uint32_t h, unsigned shift)
{
	return (h >> shift) & 0xfu;
}

static unsigned skip_of(uint32_t h, unsigned shift)
{
	return (h >> (shift + 4)) & 0xffu;
}

static uint32_t with_backoff(uint32_t h, unsigned shift, unsigned level, unsigned skip)
{
	h &= ~(0xfffu << shift);
	return h | (level << shift) | (skip << (shift + 4));
}

/* fd's word, its chunk made if `make`; NULL for fds past the table (never
 * tried) or when out of memory. */
static _Atomic uint32_t *slot(int fd, bool make)
{
	unsigned c = (unsigned)fd >> CHUNK_BITS;
	_Atomic uint32_t *p, *fresh = NULL;

	if (fd < 0 || c >= NCHUNKS)
		return NULL;
	/* acquire: pairs with the release of the CAS that installed it. */
	p = atomic_load_explicit(&chunks[c], memory_order_acquire);
	if (p || !make)
		return p ? &p[(unsigned)fd & (CHUNK - 1)] : NULL;
	fresh = calloc(CHUNK, sizeof(*fresh));
	if (!fresh)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(&chunks[c], &p, fresh, memory_order_acq_rel,
	                                             memory_order_acquire))
		free(fresh); /* another thread installed one first: p is it */
	else
		p = fresh;
	return &p[(unsigned)fd & (CHUNK - 1)];
}

void ursa__io_inline_forget(int fd)
{
	_Atomic uint32_t *h = slot(fd, false);

	if (h)
		atomic_store_explicit(h, 0, memory_order_relaxed);
}

int ursa_fd_inline(int fd, int mode)
{
	_Atomic uint32_t *h;

	if (fd < 0)
		return -EBADF;
	if (mode != URSA_FD_INLINE_AUTO && mode != URSA_FD_INLINE_OFF)
		return -EINVAL;
	h = slot(fd, true);
	if (!h)
		/* Past the table the fd is never tried: OFF holds already. */
		return (unsigned)fd >> CHUNK_BITS >= NCHUNKS ? 0 : -ENOMEM;
	/* AUTO starts learning afresh (kind unknown); OFF sticks until AUTO,
	 * ursa_close or an ursa call that makes an fd with this number. */
	atomic_store_explicit(h, mode == URSA_FD_INLINE_OFF ? USER_OFF | KIND_OTHER : 0,
	                      memory_order_relaxed);
	return 0;
}

/* The first look at fd: may it be tried? */
static uint32_t probe(int fd, uint32_t h)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) != 0)
		return h; /* not open (yet): the ring gives the error; look again later */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return h;
	h &= ~KIND_MASK;
	if ((fl & O_DIRECT) && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return h | KIND_DIRECT;
	return h | (S_ISREG(st.st_mode) && !(fl & O_DIRECT) ? KIND_FILE : KIND_OTHER);
}

/* A URSA_DISABLE switch, looked up once.  Racing first calls compute the
 * same answer; atomic so that the race is a defined one (TSan saw a plain
 * int). */
static bool disabled_once(_Atomic int *cache, const char *what)
{
	int v = atomic_load_explicit(cache, memory_order_relaxed);

	if (v < 0) {
		v = ursa__ring_disabled(what);
		atomic_store_explicit(cache, v, memory_order_relaxed);
	}
	return v;
}

/* URSA_DISABLE=inline: every op to the ring, as before this path existed
 * (for comparisons, and the suites that check both give the same). */
static bool inline_off(void)
{
	static _Atomic int off = -1;

	return disabled_once(&off, "inline");
}

/* URSA_DISABLE=direct_now: O_DIRECT ops wait for the loop's batch too, as
 * before (for comparisons). */
static bool direct_now_off(void)
{
	static _Atomic int off = -1;

	return disabled_once(&off, "direct_now");
}

/* fd's hints with its kind known: looked up (probe) the first time; false
 * while the fd cannot be looked at (not open yet: the ring gives the error). */
static bool hints_of(int fd, _Atomic uint32_t *hp, uint32_t *h)
{
	uint32_t h2;

	*h = atomic_load_explicit(hp, memory_order_relaxed);
	if ((*h & KIND_MASK) != KIND_UNKNOWN)
		return true;
	h2 = probe(fd, *h);
	if (h2 == *h)
		return false;
	atomic_store_explicit(hp, h2, memory_order_relaxed);
	*h = h2;
	return true;
}

bool ursa__io_inline_direct(int fd)
{
	_Atomic uint32_t *hp;
	uint32_t h;

	/* Looked up here too: under URSA_DISABLE=inline or URSA_RWF_RING no
	 * try has looked yet. */
	if (direct_now_off() || !(hp = slot(fd, true)) || !hints_of(fd, hp, &h))
		return false;
	return (h & KIND_MASK) == KIND_DIRECT;
}

/* -------------------------------------------------------------- the try */

/*
 * A task whose reads all hit the cache would never park, and its core
 * would run nothing else.  So inline completions are counted per turn of
 * the core's loop (core->turn moves at every switch), and the task yields
 * after this many: a few tens of µs of page-cache copies at most.
 */
#define BUDGET 64

static void spent(struct ursa_task *self)
{
	struct ursa__io_core *io = ursa__io_core(self->core);
	uint64_t turn = atomic_load_explicit(&self->core->turn, memory_order_relaxed);

	if (!io)
		return;
	io->inline_hits++;
	if (turn != io->inline_turn) {
		io->inline_turn = turn;
		io->inline_streak = 0;
	}
	if (++io->inline_streak >= BUDGET) {
		io->inline_streak = 0;
		ursa__sched_yield();
	}
}

static void missed(struct ursa_task *self)
{
	struct ursa__io_core *io = ursa__io_core(self->core);

	if (io)
		io->inline_misses++;
}

/*
 * preadv2/pwritev2 as raw syscalls: glibc's wrappers are cancellation
 * points, and their enable/disable of asynchronous cancellation around the
 * syscall was 3% of a page-cache read's CPU (perf, bench file-cached);
 * ursa's workers are never cancelled with pthread_cancel.  The offset goes
 * as the kernel's low and high halves (the high one unused on 64-bit).
 */
static ssize_t nowait_rw(bool write, int fd, const struct iovec *iov, int iovcnt, uint64_t off,
                         int rwf)
{
	return syscall(write ? SYS_pwritev2 : SYS_preadv2, fd, iov, iovcnt, (long)off,
	               (long)(off >> 32), rwf | RWF_NOWAIT);
}

ssize_t ursa__io_inline_rw(struct ursa_task *self, bool write, int fd, const struct iovec *iov,
                           int iovcnt, uint64_t off, int rwf)
{
	unsigned shift = write ? BACKOFF_W : BACKOFF_R;
	uint32_t nosupp = write ? NOSUPP_W : NOSUPP_R;
	_Atomic uint32_t *hp;
	uint32_t h;
	unsigned level, skip;
	ssize_t r;

	if ((rwf & URSA_RWF_RING) || inline_off())
		return URSA__IO_RING;
	hp = slot(fd, true);
	if (!hp || !hints_of(fd, hp, &h))
		return URSA__IO_RING;
	if ((h & KIND_MASK) != KIND_FILE || (h & (USER_OFF | nosupp)))
		return URSA__IO_RING;
	level = level_of(h, shift);
	skip = skip_of(h, shift);
	if (skip) {
		/* Backing off: this op goes straight to the ring. */
		atomic_compare_exchange_strong_explicit(hp, &h, with_backoff(h, shift, level, skip - 1),
		                                        memory_order_relaxed, memory_order_relaxed);
		return URSA__IO_RING;
	}
	r = nowait_rw(write, fd, iov, iovcnt, off, rwf);
	if (r >= 0) {
		if (level)
			atomic_compare_exchange_strong_explicit(hp, &h, with_backoff(h, shift, 0, 0),
			                                        memory_order_relaxed,
			                                        memory_order_relaxed);
		spent(self);
		return r;
	}
	switch (errno) {
	case EAGAIN:
		/* Asked for by the caller: that is the answer (the ring's too). */
		if (rwf & RWF_NOWAIT)
			return -EAGAIN;
		level = level < MAX_LEVEL ? level + 1 : MAX_LEVEL;
		atomic_compare_exchange_strong_explicit(
			hp, &h, with_backoff(h, shift, level, (1u << level) - 1), memory_order_relaxed,
			memory_order_relaxed);
		missed(self);
		return URSA__IO_RING;
	case EOPNOTSUPP:
		/* The filesystem has no NOWAIT for this direction; with flags of
		 * the caller's the refusal may be theirs: the ring tells. */
		if (!rwf)
			atomic_fetch_or_explicit(hp, nosupp, memory_order_relaxed);
		missed(self);
		return URSA__IO_RING;
	case EINTR:
		return URSA__IO_RING;
	default:
		/* EBADF, EFAULT, EINVAL, EIO, ENOSPC...: what the ring says too. */
		return -errno;
	}
}

/* ------------------------------------------------------------ statx inline */

/*
 * statx on the worker.  The kernel hands every IORING_OP_STATX to an io-wq
 * thread (docs/io.md: 2.6 us through the ring against 0.2-0.5 us as a
 * syscall, measured by tools/io-paths), since its path walk may read the
 * disk and statx has no non-blocking form.  openat2 has one: RESOLVE_CACHED
 * (5.12) walks the path from the dentry cache alone and answers -EAGAIN
 * where it would have to wait.  So a statx by path is done inline as an
 * O_PATH open with RESOLVE_CACHED, a statx of that fd (no walk) and a close;
 * what the cache cannot answer goes to the ring.  A statx by fd alone
 * (AT_EMPTY_PATH, "") walks nothing and is done inline directly.
 *
 * What is left that can block is the filesystem's getattr of a network
 * filesystem revalidating with its server.  So each inline statx is timed
 * too: one that took ursa__statx_slow_ns or longer counts as blocked, and the
 * next 2^level - 1 statx calls of the process go to the ring, level rising by
 * one per slow call up to MAX_LEVEL and back to 0 at the first fast one (the
 * read path's backoff, kept process-wide since a path names no fd).  Flags
 * other than AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH and AT_STATX_DONT_SYNC
 * (AT_STATX_FORCE_SYNC asks for that round trip), an fd set to
 * URSA_FD_INLINE_OFF and URSA_DISABLE=inline go to the ring every time.
 */
#ifndef RESOLVE_CACHED
#define RESOLVE_CACHED 0x20
#endif

/* 100 us: a cached statx takes about 1.  A variable so that a test can
 * make every call count as slow (test_io_paths.c). */
uint64_t ursa__statx_slow_ns = 100000;

static _Atomic uint32_t statx_word;   /* level and skip, at shift 0 */
static _Atomic bool no_cached_open;   /* openat2 or RESOLVE_CACHED refused */

struct open_how_v0 { /* <linux/openat2.h>, which Debian 12's headers have */
	uint64_t flags, mode, resolve;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The statx, inline: its result (0 or -errno), or URSA__IO_RING_INT where
 * the dentry cache cannot answer or this kernel has no cached open. */
static long statx_now(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	struct open_how_v0 how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_CACHED};
	long fd, r;
	int err;

	if (path && !path[0] && (flags & AT_EMPTY_PATH))
		return syscall(SYS_statx, dirfd, path, flags, mask, st) < 0 ? -errno : 0;
	if (atomic_load_explicit(&no_cached_open, memory_order_relaxed))
		return URSA__IO_RING_INT;
	if (flags & AT_SYMLINK_NOFOLLOW)
		how.flags |= O_NOFOLLOW; /* the link itself, as statx would */
	fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd < 0) {
		switch (errno) {
		case ENOSYS: case EINVAL: case E2BIG:
			/* No openat2 (5.6) or no RESOLVE_CACHED (5.12): the flags
			 * are ours, so the kernel is older; never try again. */
			atomic_store_explicit(&no_cached_open, true, memory_order_relaxed);
			return URSA__IO_RING_INT;
		case EAGAIN:  /* not all in the cache */
		case EMFILE: case ENFILE: case ENOMEM: /* the fd we would need */
		case EINTR:
			return URSA__IO_RING_INT;
		default:      /* ENOENT, ENOTDIR, EACCES, ELOOP, EBADF...: statx's too */
			return -errno;
		}
	}
	r = syscall(SYS_statx, (int)fd, "", AT_EMPTY_PATH | (flags & AT_STATX_DONT_SYNC), mask, st);
	err = errno;
	close((int)fd);
	return r < 0 ? -err : 0;
}

int ursa__io_inline_statx(struct ursa_task *self, int dirfd, const char *path, int flags,
                          unsigned mask, struct statx *st)
{
	uint32_t h = atomic_load_explicit(&statx_word, memory_order_relaxed);
	unsigned level = level_of(h, 0), skip = skip_of(h, 0);
	uint64_t t0, took;
	long r;

	if (inline_off() || (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_STATX_DONT_SYNC)))
		return URSA__IO_RING_INT;
	if (path && !path[0] && (flags & AT_EMPTY_PATH)) {
		_Atomic uint32_t *hp = slot(dirfd, false);

		if (hp && (atomic_load_explicit(hp, memory_order_relaxed) & USER_OFF))
			return URSA__IO_RING_INT;
	}
	if (skip) {
		atomic_compare_exchange_strong_explicit(&statx_word, &h,
		                                        with_backoff(h, 0, level, skip - 1),
		                                        memory_order_relaxed, memory_order_relaxed);
		return URSA__IO_RING_INT;
	}
	t0 = mono_ns();
	r = statx_now(dirfd, path, flags, mask, st);
	took = mono_ns() - t0;
	if (took >= ursa__statx_slow_ns) {
		level = level < MAX_LEVEL ? level + 1 : MAX_LEVEL;
		atomic_compare_exchange_strong_explicit(&statx_word, &h,
		                                        with_backoff(h, 0, level, (1u << level) - 1),
		                                        memory_order_relaxed, memory_order_relaxed);
	} else if (level) {
		atomic_compare_exchange_strong_explicit(&statx_word, &h, with_backoff(h, 0, 0, 0),
		                                        memory_order_relaxed, memory_order_relaxed);
	}
	if (r == URSA__IO_RING_INT || took >= ursa__statx_slow_ns)
		missed(self); /* once per call: a slow try, or one the ring must redo */
	if (r == URSA__IO_RING_INT)
		return URSA__IO_RING_INT;
	spent(self);
	return (int)r;
}
