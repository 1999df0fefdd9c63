/* SPDX-License-Identifier: MIT */
/*
 * test_io_paths: the paths a file op can take (docs/io.md, "Which path an
 * op takes"): the page-cache fast path against the ring (the same answers,
 * byte for byte), what the fast path learns per fd and the switches that
 * turn it off, and the linked open -> read -> close chains into direct
 * descriptors (each step's error, nothing leaked, cancellation anywhere).
 */
#include "test_io_helpers.h"

#include "io.h"      /* per-core counters: inline hits, free direct slots */
#include "io_inline.h" /* ursa__statx_slow_ns */
#include "runtime.h" /* struct ursa__core */

#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FILE_LEN 10000

struct paths_seen {
	_Atomic int line;
	_Atomic long long val;
	char dir[256];
	unsigned char data[FILE_LEN];
};

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static uint64_t inline_hits(void)
{
	struct ursa__core *c = ursa__sched_core;

	return c && c->io ? c->io->inline_hits : 0;
}

static uint64_t inline_misses(void)
{
	struct ursa__core *c = ursa__sched_core;

	return c && c->io ? c->io->inline_misses : 0;
}

static void make_file(const char *path, const unsigned char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, n), (ssize_t)n);
	close(fd);
}

/* ------------------------------------------- fast path == ring, exactly */

/* One read both ways: same count or error, same bytes. */
static void read_both(struct paths_seen *s, int fd, const struct iovec *shape, int cnt,
                      off_t off)
{
	unsigned char a[2 * FILE_LEN], b[2 * FILE_LEN];
	struct iovec ia[4], ib[4];
	size_t at = 0;
	ssize_t ra, rb;
	uint64_t hits;

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xaa, sizeof(b));
	for (int i = 0; i < cnt; i++) {
		ia[i] = (struct iovec){a + at, shape[i].iov_len};
		ib[i] = (struct iovec){b + at, shape[i].iov_len};
		at += shape[i].iov_len;
	}
	if (off == -1) { /* the file position: the same start for both */
		EXPECT(s, lseek(fd, 100, SEEK_SET) == 100, errno);
	}
	hits = inline_hits();
	ra = ursa_preadv2(fd, ia, cnt, off, 0);
	EXPECT(s, ra <= 0 || inline_hits() > hits, ra); /* it did take the fast path */
	if (off == -1)
		EXPECT(s, lseek(fd, 100, SEEK_SET) == 100, errno);
	hits = inline_hits();
	rb = ursa_preadv2(fd, ib, cnt, off, URSA_RWF_RING);
	EXPECT(s, inline_hits() == hits, rb); /* and this one did not */
	EXPECT(s, ra == rb, ra * 100000 + rb);
	EXPECT(s, memcmp(a, b, sizeof(a)) == 0, ra);
	if (ra > 0 && off >= 0)
		EXPECT(s, memcmp(a, s->data + off, (size_t)ra) == 0, off);
}

static void *main_same(void *arg)
{
	struct paths_seen *s = arg;
	static const size_t lens[] = {0, 1, 4096, FILE_LEN - 1, FILE_LEN, FILE_LEN + 5000};
	static const off_t offs[] = {0, 1, 4095, FILE_LEN - 1, FILE_LEN, FILE_LEN + 1, 1 << 20};
	char p[300], w1[300], w2[300];
	unsigned char chk1[FILE_LEN], chk2[FILE_LEN];
	int fd, wa, wb, dfd;
	ssize_t ra, rb;

	path_in(p, sizeof(p), s->dir, "data");
	fd = ursa_open(p, O_RDONLY | O_CLOEXEC, 0);
	EXPECT(s, fd >= 0, fd);
	/* Every length at every offset, through the end of file and past it. */
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
			struct iovec one = {NULL, lens[i]};

			read_both(s, fd, &one, 1, offs[j]);
		}
	/* Vectored, with an empty iovec inside; and at the file position. */
	{
		struct iovec v[3] = {{NULL, 3000}, {NULL, 0}, {NULL, 9000}};

		read_both(s, fd, v, 3, 0);
		read_both(s, fd, v, 3, 2000);
		read_both(s, fd, v, 3, -1);
	}
	/* The plain calls agree with the ring too. */
	{
		unsigned char a[64], b[64];
		struct iovec ib = {b, sizeof(b)};

		ra = ursa_pread(fd, a, sizeof(a), 123);
		rb = ursa_preadv2(fd, &ib, 1, 123, URSA_RWF_RING);
		EXPECT(s, ra == rb && ra == 64 && memcmp(a, b, 64) == 0, ra);
	}
	/* Errors: the same errno both ways. */
	{
		struct iovec bad = {(void *)16, 64}; /* an unmapped buffer */
		struct iovec ok = {chk1, 16};

		ra = ursa_preadv2(fd, &bad, 1, 0, 0);
		rb = ursa_preadv2(fd, &bad, 1, 0, URSA_RWF_RING);
		EXPECT(s, ra == -EFAULT && rb == -EFAULT, ra * 1000 + rb);
		ra = ursa_pwritev2(fd, &ok, 1, 0, 0); /* read-only fd */
		rb = ursa_pwritev2(fd, &ok, 1, 0, URSA_RWF_RING);
		EXPECT(s, ra == -EBADF && rb == -EBADF, ra * 1000 + rb);
		ra = ursa_preadv2(fd, &ok, 1, -2, 0);
		EXPECT(s, ra == -EINVAL, ra);
		ra = ursa_preadv2(fd, &ok, -1, 0, 0);
		EXPECT(s, ra == -EINVAL, ra);
		dfd = ursa_open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		ra = ursa_preadv2(dfd, &ok, 1, 0, 0);
		rb = ursa_preadv2(dfd, &ok, 1, 0, URSA_RWF_RING);
		EXPECT(s, ra == -EISDIR && rb == -EISDIR, ra * 1000 + rb);
		EXPECT(s, ursa_close(dfd) == 0, dfd);
		ra = ursa_preadv2(12345, &ok, 1, 0, 0);
		EXPECT(s, ra == -EBADF, ra);
	}
	EXPECT(s, ursa_close(fd) == 0, fd);

	/* Writes: the same sequence into two files, one each way. */
	path_in(w1, sizeof(w1), s->dir, "w1");
	path_in(w2, sizeof(w2), s->dir, "w2");
	wa = ursa_open(w1, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	wb = ursa_open(w2, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	EXPECT(s, wa >= 0 && wb >= 0, wa);
	for (int i = 0; i < 20; i++) {
		size_t n = (size_t)(i * 397) % 2000;
		off_t off = (off_t)(i * 1231) % 8000;
		struct iovec v = {s->data + i * 100, n};

		ra = ursa_pwritev2(wa, &v, 1, i % 3 ? off : -1, 0);
		rb = ursa_pwritev2(wb, &v, 1, i % 3 ? off : -1, URSA_RWF_RING);
		EXPECT(s, ra == rb && ra == (ssize_t)n, ra);
	}
	memset(chk1, 0, sizeof(chk1));
	memset(chk2, 0, sizeof(chk2));
	EXPECT(s, pread(wa, chk1, sizeof(chk1), 0) == pread(wb, chk2, sizeof(chk2), 0), 0);
	EXPECT(s, memcmp(chk1, chk2, sizeof(chk1)) == 0, 0);
	EXPECT(s, ursa_close(wa) == 0 && ursa_close(wb) == 0, 0);
	return NULL;
}

Test(io_paths, the_fast_path_returns_exactly_what_the_ring_returns)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300];
	int fds = count_fds();

	for (size_t i = 0; i < FILE_LEN; i++)
		s->data[i] = (unsigned char)(i * 31 + (i >> 8));
	make_scratch(s->dir, sizeof(s->dir));
	snprintf(p, sizeof(p), "%s/data", s->dir);
	make_file(p, s->data, FILE_LEN);
	run_on(1, main_same, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(s);
}

/* ------------------------------------------------------- statx inline */

/* statx ops this core sent to the ring so far. */
static uint64_t ring_statx(void)
{
	struct ursa_stats st = {.size = sizeof(st)};

	if (ursa_stats(&st, ursa_core(), 0) != 0)
		return ~0ull;
	return st.ops_by_opcode[IORING_OP_STATX];
}

enum { INLINE, RING, EITHER };

/*
 * ursa_statx against statx(2) on the same arguments: the same result and,
 * on success, the same mode, size and inode.  where: INLINE (answered on
 * the worker), RING, or EITHER (the dentry cache may or may not hold the
 * answer: a lookup that found nothing, a symlink's target).  A cached walk
 * also gives up (-EAGAIN, so the ring) when a directory on the path changes
 * under it, as /tmp does while other tests run: INLINE asks for one of up
 * to ten calls to be answered inline, each checked.
 */
static void statx_both(struct paths_seen *s, int dirfd, const char *path, int flags, int where)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		struct statx a, b;
		uint64_t before = ring_statx(), sent;
		int ra, rb;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		ra = ursa_statx(dirfd, path, flags, STATX_BASIC_STATS, &a);
		sent = ring_statx() - before;
		/* The raw syscall: glibc's statx() declares the path nonnull,
		 * and a NULL path is one of the edges checked below. */
		rb = syscall(SYS_statx, dirfd, path, flags, STATX_BASIC_STATS, &b) < 0 ? -errno : 0;
		EXPECT_EQ(s, ra, rb);
		if (ra == 0 && rb == 0) {
			EXPECT_EQ(s, a.stx_mode, b.stx_mode);
			EXPECT_EQ(s, a.stx_size, b.stx_size);
			EXPECT_EQ(s, a.stx_ino, b.stx_ino);
		}
		if (where == RING)
			EXPECT_EQ(s, sent, 1);
		if (where != INLINE || sent == 0)
			return;
	}
	EXPECT(s, false, where); /* ten calls, every one to the ring */
}

static void *main_statx(void *arg)
{
	struct paths_seen *s = arg;
	char file[300], link[300], below[300], missing[300];
	int fd, dfd;

	path_in(file, sizeof(file), s->dir, "data");
	path_in(link, sizeof(link), s->dir, "link");
	path_in(below, sizeof(below), s->dir, "data/x");
	path_in(missing, sizeof(missing), s->dir, "missing");
	fd = ursa_open(file, O_RDONLY | O_CLOEXEC, 0);
	dfd = ursa_open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	REQUIRE(s, fd >= 0 && dfd >= 0, fd);
	/* Cached: answered on the worker, not the ring (URSA_DISABLE=inline
	 * runs this suite too: then every call goes to the ring). */
	int in = getenv("URSA_DISABLE") && strstr(getenv("URSA_DISABLE"), "inline") ? RING : INLINE;

	statx_both(s, AT_FDCWD, file, 0, in);
	statx_both(s, AT_FDCWD, s->dir, 0, in);
	statx_both(s, AT_FDCWD, link, AT_SYMLINK_NOFOLLOW, in);
	statx_both(s, AT_FDCWD, link, 0, EITHER);
	statx_both(s, dfd, "data", 0, in);
	statx_both(s, fd, "", AT_EMPTY_PATH, in);
	statx_both(s, AT_FDCWD, missing, 0, EITHER); /* -ENOENT */
	statx_both(s, AT_FDCWD, below, 0, EITHER);   /* -ENOTDIR */
	statx_both(s, -1, "data", 0, in);            /* -EBADF */
	/* Edges a caller may pass: no path, a path over PATH_MAX, a reserved
	 * mask bit (-EFAULT, -ENAMETOOLONG, -EINVAL, as statx(2) says). */
	static char too_long[PATH_MAX + 100];
	memset(too_long, 'a', sizeof(too_long) - 1);
	statx_both(s, AT_FDCWD, NULL, 0, EITHER);
	statx_both(s, AT_FDCWD, too_long, 0, EITHER);
	/* Flags the inline path does not take: the ring (-EINVAL here). */
	statx_both(s, AT_FDCWD, file, 0x40000000, RING);
	{
		struct statx st;
		int k = statx(AT_FDCWD, file, 0, 0x80000000u, &st) < 0 ? -errno : 0;

		EXPECT_EQ(s, ursa_statx(AT_FDCWD, file, 0, 0x80000000u, &st), k);
	}
	/* Asked to sync with the server: always the ring. */
	statx_both(s, AT_FDCWD, file, AT_STATX_FORCE_SYNC, RING);
	/* An fd turned off for the fast path: its statx goes to the ring. */
	EXPECT_EQ(s, ursa_fd_inline(fd, URSA_FD_INLINE_OFF), 0);
	statx_both(s, fd, "", AT_EMPTY_PATH, RING);
	ursa_close(fd);
	ursa_close(dfd);
	return NULL;
}

/* statx goes to an io-wq thread on the ring; a cached one is answered on
 * the worker, with the same result as statx(2) for every case. */
Test(io_paths, statx_is_answered_inline_with_the_syscalls_results)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300], l[300];
	int fds = count_fds();

	make_scratch(s->dir, sizeof(s->dir));
	path_in(p, sizeof(p), s->dir, "data");
	make_file(p, s->data, FILE_LEN);
	path_in(l, sizeof(l), s->dir, "link");
	cr_assert_eq(symlink("data", l), 0);
	run_on(1, main_statx, s);
	unlink(l);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(s);
}

/*
 * A statx that takes long enough to have blocked sends the next 2^level - 1
 * statx calls to the ring, level rising per slow call; a fast one resets it.
 * Every call is made to count as slow by a threshold of 0.
 */
static void *main_statx_backoff(void *arg)
{
	struct paths_seen *s = arg;
	static const bool want_ring[] = {false, true, false, true, true, true, false};
	char file[300];
	struct statx st;
	int fd;

	/* By fd: no path walk, so no cached walk that may give up. */
	path_in(file, sizeof(file), s->dir, "data");
	fd = ursa_open(file, O_RDONLY | O_CLOEXEC, 0);
	REQUIRE(s, fd >= 0, fd);
	ursa__statx_slow_ns = 0;
	for (size_t i = 0; i < sizeof(want_ring) / sizeof(want_ring[0]); i++) {
		uint64_t before = ring_statx();

		EXPECT_EQ(s, ursa_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st), 0);
		EXPECT_EQ(s, (ring_statx() - before) * 100 + i, (want_ring[i] ? 100 : 0) + i);
	}
	/* Level 3 now: seven calls to the ring, then a try, which is fast
	 * again and resets the level: the next call is tried too. */
	ursa__statx_slow_ns = 100000;
	for (int i = 0; i < 7; i++) {
		uint64_t before = ring_statx();

		EXPECT_EQ(s, ursa_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st), 0);
		EXPECT_EQ(s, ring_statx() - before, 1);
	}
	for (int i = 0; i < 3; i++) {
		uint64_t before = ring_statx();

		EXPECT_EQ(s, ursa_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st), 0);
		EXPECT_EQ(s, ring_statx() - before, 0);
	}
	ursa_close(fd);
	return NULL;
}

Test(io_paths, a_statx_that_blocked_backs_off_to_the_ring)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300];

	if (getenv("URSA_DISABLE") && strstr(getenv("URSA_DISABLE"), "inline"))
		cr_skip_test("URSA_DISABLE=inline: every statx goes to the ring");
	make_scratch(s->dir, sizeof(s->dir));
	path_in(p, sizeof(p), s->dir, "data");
	make_file(p, s->data, FILE_LEN);
	run_on(1, main_statx_backoff, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	free(s);
}

/*
 * A read whose first part is cached and the rest is not: the fast path
 * returns the cached part, the ring reads the rest, and the caller sees one
 * whole read, as the ring alone would give.
 */
#define PART_LEN (256u << 10)

static void *main_partial(void *arg)
{
	struct paths_seen *s = arg;
	char p[300];
	unsigned char *buf = malloc(PART_LEN), *want = malloc(PART_LEN);
	int fd;
	ssize_t r;

	path_in(p, sizeof(p), s->dir, "part");
	fd = ursa_open(p, O_RDONLY | O_CLOEXEC, 0);
	EXPECT(s, fd >= 0, fd);
	for (size_t i = 0; i < PART_LEN; i++)
		want[i] = (unsigned char)(i ^ (i >> 9));
	/* Drop the second half from the page cache (clean pages go). */
	EXPECT(s, pread(fd, buf, PART_LEN / 2, 0) == PART_LEN / 2, errno);
	EXPECT(s, posix_fadvise(fd, PART_LEN / 2, 0, POSIX_FADV_DONTNEED) == 0, errno);
	r = ursa_pread(fd, buf, PART_LEN, 0);
	EXPECT(s, r == (ssize_t)PART_LEN, r);
	EXPECT(s, memcmp(buf, want, PART_LEN) == 0, r);
	EXPECT(s, ursa_close(fd) == 0, fd);
	free(buf);
	free(want);
	return NULL;
}

Test(io_paths, a_partly_cached_read_is_finished_by_the_ring)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	unsigned char *d = malloc(PART_LEN);
	char p[300];
	int fd;

	for (size_t i = 0; i < PART_LEN; i++)
		d[i] = (unsigned char)(i ^ (i >> 9));
	make_scratch(s->dir, sizeof(s->dir));
	snprintf(p, sizeof(p), "%s/part", s->dir);
	make_file(p, d, PART_LEN);
	fd = open(p, O_RDONLY);
	cr_assert_eq(fsync(fd), 0); /* clean pages, so DONTNEED drops them */
	close(fd);
	run_on(1, main_partial, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	free(d);
	free(s);
}

/* -------------------------------------------- what it learns, switches */

static void *main_switches(void *arg)
{
	struct paths_seen *s = arg;
	char p[300], buf[64];
	uint64_t h0;
	int fd, pfd[2];

	path_in(p, sizeof(p), s->dir, "data");
	fd = ursa_open(p, O_RDONLY | O_CLOEXEC, 0);
	EXPECT(s, fd >= 0, fd);
	h0 = inline_hits();
	EXPECT(s, ursa_pread(fd, buf, sizeof(buf), 0) == sizeof(buf), 0);
	EXPECT(s, inline_hits() == h0 + 1, inline_hits() - h0);
	/* Off for this fd: every op goes to the ring. */
	EXPECT(s, ursa_fd_inline(fd, URSA_FD_INLINE_OFF) == 0, 0);
	h0 = inline_hits();
	for (int i = 0; i < 10; i++)
		EXPECT(s, ursa_pread(fd, buf, sizeof(buf), i) == sizeof(buf), i);
	EXPECT(s, inline_hits() == h0, inline_hits() - h0);
	/* Back on. */
	EXPECT(s, ursa_fd_inline(fd, URSA_FD_INLINE_AUTO) == 0, 0);
	EXPECT(s, ursa_pread(fd, buf, sizeof(buf), 0) == sizeof(buf), 0);
	EXPECT(s, inline_hits() == h0 + 1, inline_hits() - h0);
	EXPECT(s, ursa_fd_inline(-1, URSA_FD_INLINE_OFF) == -EBADF, 0);
	EXPECT(s, ursa_fd_inline(fd, 7) == -EINVAL, 0);
	/* ursa_close forgets the setting: the next file with this number is
	 * tried again. */
	EXPECT(s, ursa_fd_inline(fd, URSA_FD_INLINE_OFF) == 0, 0);
	EXPECT(s, ursa_close(fd) == 0, fd);
	fd = ursa_open(p, O_RDONLY | O_CLOEXEC, 0);
	h0 = inline_hits();
	EXPECT(s, ursa_pread(fd, buf, sizeof(buf), 0) == sizeof(buf), 0);
	EXPECT(s, inline_hits() == h0 + 1, inline_hits() - h0);
	EXPECT(s, ursa_close(fd) == 0, fd);
	/* A pipe is never tried: it is the ring's business. */
	EXPECT(s, pipe2(pfd, O_CLOEXEC) == 0, errno);
	EXPECT(s, write(pfd[1], "abc", 3) == 3, errno);
	h0 = inline_misses() + inline_hits();
	EXPECT(s, ursa_read(pfd[0], buf, sizeof(buf)) == 3, 0);
	EXPECT(s, inline_misses() + inline_hits() == h0, 0);
	EXPECT(s, ursa_close(pfd[0]) == 0 && ursa_close(pfd[1]) == 0, 0);
	return NULL;
}

Test(io_paths, the_fast_path_can_be_turned_off_per_fd_and_skips_non_files)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300];
	int fds = count_fds();

	make_scratch(s->dir, sizeof(s->dir));
	snprintf(p, sizeof(p), "%s/data", s->dir);
	make_file(p, s->data, FILE_LEN);
	run_on(1, main_switches, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(s);
}

/* tmpfs has no RWF_NOWAIT: the first try learns it, later ops skip it. */
static void *main_nosupp(void *arg)
{
	struct paths_seen *s = arg;
	char p[300], buf[64];
	uint64_t m0, h0;
	int fd;

	path_in(p, sizeof(p), s->dir, "data");
	fd = ursa_open(p, O_RDWR | O_CLOEXEC, 0);
	EXPECT(s, fd >= 0, fd);
	m0 = inline_misses();
	h0 = inline_hits();
	for (int i = 0; i < 50; i++) {
		EXPECT(s, ursa_pread(fd, buf, sizeof(buf), i) == sizeof(buf), i);
		EXPECT(s, ursa_pwrite(fd, buf, sizeof(buf), i) == sizeof(buf), i);
	}
	/* At most one wasted try per direction; none hit. */
	EXPECT(s, inline_misses() - m0 <= 2, inline_misses() - m0);
	EXPECT(s, inline_hits() == h0, inline_hits() - h0);
	EXPECT(s, ursa_close(fd) == 0, fd);
	return NULL;
}

Test(io_paths, a_filesystem_without_nowait_is_tried_once)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300];
	struct stat st;

	if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode))
		cr_skip_test("no /dev/shm");
	snprintf(s->dir, sizeof(s->dir), "/dev/shm/ursa-io-XXXXXX");
	cr_assert_not_null(mkdtemp(s->dir));
	snprintf(p, sizeof(p), "%s/data", s->dir);
	make_file(p, s->data, FILE_LEN);
	{
		/* Only meaningful where tmpfs refuses NOWAIT (6.18 does). */
		int fd = open(p, O_RDONLY);
		char b[8];
		struct iovec v = {b, sizeof(b)};
		ssize_t r = preadv2(fd, &v, 1, 0, RWF_NOWAIT);

		close(fd);
		if (r >= 0) {
			rm_scratch(s->dir);
			free(s);
			cr_skip_test("this kernel's tmpfs has RWF_NOWAIT");
		}
	}
	run_on(1, main_nosupp, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	free(s);
}

/* ------------------------------------- linked chains, direct descriptors */

/* Every slot back on its core's free list (their closes complete a moment
 * after the call that linked them returns). */
static bool slots_all_free(void)
{
	for (int i = 0; i < 2000; i++) {
		if (ursa__io_slots_free(ursa__sched_core) == URSA__IO_SLOTS)
			return true;
		(void)!ursa_sleep(100000);
	}
	return false;
}

static void *main_chain(void *arg)
{
	struct paths_seen *s = arg;
	char p[300], missing[300], nodir[300], buf[FILE_LEN + 10];
	static const size_t sizes[] = {0, 1, 4095, (16u << 10) - 1, 16u << 10, (16u << 10) + 1,
	                               32u << 10, (32u << 10) + 3, 100000};
	ssize_t r;
	void *got;
	size_t len;
	int rc;

	path_in(p, sizeof(p), s->dir, "data");
	path_in(missing, sizeof(missing), s->dir, "missing");
	path_in(nodir, sizeof(nodir), s->dir, "missing/x");
	r = ursa_pread_path(AT_FDCWD, p, buf, FILE_LEN, 0);
	EXPECT(s, r == FILE_LEN && memcmp(buf, s->data, FILE_LEN) == 0, r);
	r = ursa_pread_path(AT_FDCWD, p, buf, 100, FILE_LEN - 10);
	EXPECT(s, r == 10 && memcmp(buf, s->data + FILE_LEN - 10, 10) == 0, r);
	r = ursa_pread_path(AT_FDCWD, p, buf, 100, FILE_LEN + 10);
	EXPECT(s, r == 0, r);
	/* Each step's own error. */
	EXPECT(s, (r = ursa_pread_path(AT_FDCWD, missing, buf, 10, 0)) == -ENOENT, r);
	EXPECT(s, (r = ursa_pread_path(AT_FDCWD, nodir, buf, 10, 0)) == -ENOENT, r);
	EXPECT(s, (r = ursa_pread_path(AT_FDCWD, s->dir, buf, 10, 0)) == -EISDIR, r);
	EXPECT(s, (r = ursa_pread_path(AT_FDCWD, p, (void *)16, 10, 0)) == -EFAULT, r);
	EXPECT(s, (r = ursa_pread_path(AT_FDCWD, p, buf, 10, -1)) == -EINVAL, r);
	EXPECT(s, (r = ursa_pread_path(AT_FDCWD, NULL, buf, 10, 0)) == -EINVAL, r);
	EXPECT(s, (r = ursa_pread_path(-5, "rel", buf, 10, 0)) == -EBADF, r);
	/* Relative to a directory fd. */
	{
		int dfd = ursa_open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

		r = ursa_pread_path(dfd, "data", buf, 5, 1);
		EXPECT(s, r == 5 && memcmp(buf, s->data + 1, 5) == 0, r);
		EXPECT(s, ursa_close(dfd) == 0, 0);
	}
	/* read_file: the sizes around its first two linked reads. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *d = malloc(sizes[i] + 1);
		char q[300];

		for (size_t j = 0; j < sizes[i]; j++)
			d[j] = (unsigned char)(j * 7 + i);
		snprintf(q, sizeof(q), "%s/rf%zu", s->dir, i);
		EXPECT(s, (rc = ursa_write_file(q, d, sizes[i], URSA_WRITE_FILE_NOSYNC)) == 0, rc);
		got = NULL;
		rc = ursa_read_file(q, &got, &len);
		EXPECT(s, rc == 0 && len == sizes[i], (long long)i * 1000000 + (long long)len);
		EXPECT(s, got && memcmp(got, d, sizes[i]) == 0 && ((char *)got)[len] == 0, i);
		free(got);
		free(d);
		EXPECT(s, ursa_unlink(q) == 0, i);
	}
	/* A file whose reads come a page at a time. */
	got = NULL;
	EXPECT(s, (rc = ursa_read_file("/proc/self/maps", &got, &len)) == 0, rc);
	EXPECT(s, got && len > 100 && strlen(got) == len, len);
	free(got);
	got = (void *)1;
	len = 7;
	EXPECT(s, (rc = ursa_read_file(missing, &got, &len)) == -ENOENT, rc);
	EXPECT(s, got == (void *)1 && len == 7, len);
	EXPECT(s, (rc = ursa_read_file(s->dir, &got, &len)) == -EISDIR, rc);
	EXPECT(s, slots_all_free(), ursa__io_slots_free(ursa__sched_core));
	return NULL;
}

static void chain_test(void)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300];
	int fds = count_fds();

	for (size_t i = 0; i < FILE_LEN; i++)
		s->data[i] = (unsigned char)(i * 13 + 5);
	make_scratch(s->dir, sizeof(s->dir));
	snprintf(p, sizeof(p), "%s/data", s->dir);
	make_file(p, s->data, FILE_LEN);
	run_on(2, main_chain, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(s);
}

Test(io_paths, linked_chains_give_each_steps_error_and_leak_nothing)
{
	chain_test();
}

/* The same without direct descriptors: the plain open, read, close. */
Test(io_paths, chains_fall_back_without_direct_descriptors)
{
	setenv("URSA_DISABLE", "direct_files", 1);
	chain_test();
}

/* EACCES from the open step, as a user the file's mode refuses: root is
 * never refused, so the test drops its effective ids first with the raw
 * syscalls, which change only the calling thread (the workers ursa_run
 * starts inherit them), keeping 0 as the saved id to come back. */
struct eacces {
	const char *path;
	long r1, r2;
	bool slots_ok;
};

static void *main_eacces(void *arg)
{
	struct eacces *e = arg;
	char buf[8];
	void *got = NULL;
	size_t len;

	e->r1 = ursa_pread_path(AT_FDCWD, e->path, buf, sizeof(buf), 0);
	e->r2 = ursa_read_file(e->path, &got, &len);
	e->slots_ok = slots_all_free();
	return NULL;
}

Test(io_paths, a_refused_open_is_eacces_and_leaks_nothing)
{
	char dir[256], p[300];
	struct eacces e = {p, 0, 0, false};
	bool root = geteuid() == 0;
	int fds = count_fds();

	make_scratch(dir, sizeof(dir));
	cr_assert_eq(chmod(dir, 0755), 0);
	snprintf(p, sizeof(p), "%s/secret", dir);
	make_file(p, (const unsigned char *)"secret", 6);
	cr_assert_eq(chmod(p, 0), 0);
	if (root) {
		cr_assert_eq(syscall(SYS_setresgid, -1, 65534, -1), 0);
		cr_assert_eq(syscall(SYS_setresuid, -1, 65534, 0), 0);
	}
	run_on(1, main_eacces, &e);
	if (root) {
		cr_assert_eq(syscall(SYS_setresuid, -1, 0, -1), 0);
		cr_assert_eq(syscall(SYS_setresgid, -1, 0, -1), 0);
	}
	rm_scratch(dir);
	cr_assert_eq(e.r1, -EACCES, "ursa_pread_path: %ld", e.r1);
	cr_assert_eq(e.r2, -EACCES, "ursa_read_file: %ld", e.r2);
	cr_assert(e.slots_ok, "a direct descriptor was not given back");
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/*
 * Cancellation in the middle of a chain: on a FIFO the open completes (the
 * ring's open does not wait for a writer) and a read waits for data, so a
 * cancel or a deadline finds the chain at its first read, or (read_file,
 * when the first read got bytes) at the second one, issued only after the
 * first was cancelled: a cancel sent earlier found nothing to stop there
 * (lib/op.c sends it again).  Either way the call returns the reason, the
 * slot comes back and no fd is left.
 */
struct fifo_run {
	const char *path;
	int which; /* 0: pread_path, 1: read_file */
	long r;
};

static void *fifo_reader(void *arg)
{
	struct fifo_run *f = arg;
	char buf[64];
	void *got = NULL;
	size_t len;

	if (f->which == 0) {
		f->r = ursa_pread_path(AT_FDCWD, f->path, buf, sizeof(buf), 0);
	} else {
		f->r = ursa_read_file(f->path, &got, &len);
		free(got);
	}
	return NULL;
}

static void *main_fifo_cancel(void *arg)
{
	struct paths_seen *s = arg;
	char p[300];
	int bad = 0;

	path_in(p, sizeof(p), s->dir, "fifo");
	for (int round = 0; round < 24; round++) {
		struct fifo_run f = {p, round % 2, 0};
		bool writer = round % 4 >= 2, by_deadline = round % 8 >= 4;
		struct ursa_task *t;
		int wfd = -1;

		/* The writer feeds read_file some bytes, after which it waits
		 * for more (no end of file while a writer is open). */
		if (writer) {
			wfd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
			if (f.which == 1 && write(wfd, "hello", 5) != 5)
				bad++;
		}
		if (by_deadline) {
			struct ursa_scope sc;

			ursa_scope_enter(&sc, ursa_now() + (1 + round % 3) * 2 * MS);
			fifo_reader(&f);
			(void)ursa_scope_exit(&sc);
			EXPECT(s, f.r == -ETIMEDOUT, f.r);
		} else {
			EXPECT(s, ursa_spawn(&t, fifo_reader, &f) == 0, round);
			(void)!ursa_sleep((1 + round % 3) * 2 * MS);
			EXPECT(s, ursa_cancel(t) == 0, round);
			{
				int j = ursa_join(t, NULL); /* the task's outcome: cancelled */

				EXPECT(s, j == 0 || j == -ECANCELED, j);
			}
			EXPECT(s, f.r == -ECANCELED, f.r);
		}
		if (wfd >= 0)
			close(wfd);
	}
	EXPECT(s, bad == 0, bad);
	EXPECT(s, slots_all_free(), ursa__io_slots_free(ursa__sched_core));
	return NULL;
}

Test(io_paths, a_chain_cancelled_at_any_step_leaves_no_descriptor, .timeout = 60)
{
	struct paths_seen *s = calloc(1, sizeof(*s));
	char p[300];
	int fds = count_fds();

	make_scratch(s->dir, sizeof(s->dir));
	snprintf(p, sizeof(p), "%s/fifo", s->dir);
	cr_assert_eq(mkfifo(p, 0600), 0);
	run_on(1, main_fifo_cancel, s);
	rm_scratch(s->dir);
	ASSERT_SEEN(s);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(s);
}

/* ------------------------------------------- O_DIRECT submitted at once */

/*
 * Reads of an O_DIRECT file go to the kernel as each task makes them, not
 * with the loop's batch at the end of the turn: a batch is plugged, so its
 * requests reach the device only once the last is built (docs/io.md,
 * "O_DIRECT against 32 threads").  NREADERS tasks read in one turn of one
 * core; the core's submit count tells how many enters carried them.  The
 * same reads of a buffered file (sent to the ring with URSA_RWF_RING) stay
 * one batch.
 */
#define NREADERS 8
#define DBLOCK 4096

struct direct_now {
	struct paths_seen s;
	int fd, rwf;
	bool no_stats;
	uint64_t submits, sqes; /* what the readers' turn cost */
};

struct direct_reader {
	struct direct_now *d;
	unsigned i;
};

static void *direct_reader(void *arg)
{
	struct direct_reader *r = arg;
	unsigned char *buf = aligned_alloc(DBLOCK, DBLOCK);
	struct iovec iov = {buf, DBLOCK};

	REQUIRE(&r->d->s, buf, 0);
	EXPECT_EQ(&r->d->s, ursa_preadv2(r->d->fd, &iov, 1, (off_t)r->i * DBLOCK, r->d->rwf),
	          DBLOCK);
	EXPECT_EQ(&r->d->s, buf[0], r->i + 1);
	free(buf);
	return NULL;
}

static void *main_direct_now(void *arg)
{
	struct direct_now *d = arg;
	struct ursa_stats a = {.size = sizeof(a)}, b = {.size = sizeof(b)};
	struct direct_reader r[NREADERS];
	struct ursa_task *t[NREADERS];

	if (ursa_stats(&a, ursa_core(), 0) != 0) {
		d->no_stats = true;
		return NULL;
	}
	for (unsigned i = 0; i < NREADERS; i++) {
		r[i] = (struct direct_reader){d, i};
		REQUIRE(&d->s, ursa_spawn_on(&t[i], ursa_core(), direct_reader, &r[i]) == 0, i);
	}
	for (unsigned i = 0; i < NREADERS; i++)
		JOIN_OK(&d->s, t[i]);
	REQUIRE(&d->s, ursa_stats(&b, ursa_core(), 0) == 0, 0);
	d->submits = b.submits - a.submits;
	d->sqes = b.sqes - a.sqes;
	return NULL;
}

/* The readers' turn on a file opened with `flags`: false if the filesystem
 * refuses O_DIRECT or the build counts nothing (-Dstats=false). */
static bool direct_turn(struct direct_now *d, int flags, int rwf)
{
	unsigned char *blk = aligned_alloc(DBLOCK, DBLOCK);
	char p[300];
	int fd;

	cr_assert_not_null(blk);
	make_scratch(d->s.dir, sizeof(d->s.dir));
	snprintf(p, sizeof(p), "%s/direct", d->s.dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "open %s: %s", p, strerror(errno));
	for (unsigned i = 0; i < NREADERS; i++) {
		memset(blk, (int)(i + 1), DBLOCK);
		cr_assert_eq(write(fd, blk, DBLOCK), DBLOCK);
	}
	close(fd);
	free(blk);
	d->fd = open(p, O_RDONLY | O_CLOEXEC | flags);
	if (d->fd < 0 && errno == EINVAL) {
		rm_scratch(d->s.dir);
		return false;
	}
	cr_assert_geq(d->fd, 0, "open %s: %s", p, strerror(errno));
	/* The number may be the last turn's file, closed with close(2): what
	 * was learnt about that one must not count for this one. */
	cr_assert_eq(ursa_fd_inline(d->fd, URSA_FD_INLINE_AUTO), 0);
	d->rwf = rwf;
	run_on(1, main_direct_now, d);
	close(d->fd);
	rm_scratch(d->s.dir);
	ASSERT_SEEN(&d->s);
	return !d->no_stats;
}

Test(io_paths, o_direct_reads_are_submitted_at_once)
{
	struct direct_now *d = calloc(1, sizeof(*d)), *b = calloc(1, sizeof(*b));
	int fds = count_fds();

	cr_assert(d && b);
	if (!direct_turn(d, O_DIRECT, 0)) {
		free(d);
		free(b);
		cr_skip_test("no O_DIRECT on the scratch filesystem, or no counters in this build");
	}
	/* An enter per read (batched, the turn would take one or two). */
	cr_assert_geq(d->sqes, NREADERS, "%llu SQEs", (unsigned long long)d->sqes);
	cr_assert_geq(d->submits, NREADERS, "%llu submits for %d O_DIRECT reads",
	              (unsigned long long)d->submits, NREADERS);
	/* Buffered, the same reads leave in one batch. */
	cr_assert(direct_turn(b, 0, URSA_RWF_RING));
	cr_assert_geq(b->sqes, NREADERS, "%llu SQEs", (unsigned long long)b->sqes);
	cr_assert_lt(b->submits, NREADERS, "%llu submits for %d buffered reads",
	             (unsigned long long)b->submits, NREADERS);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(d);
	free(b);
}
