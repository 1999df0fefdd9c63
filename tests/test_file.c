/* SPDX-License-Identifier: MIT */
/*
 * Files on the ring: every call against the kernel's own answer, scattered
 * concurrent writes checked by checksum, the whole-file helpers and their
 * atomicity, O_DIRECT alignment, openat2's confinement (RESOLVE_*).  Fibers record the first line whose check
 * failed (and the value seen); tests assert after ursa_run returns.
 */
#include "test_io_helpers.h"

#include <linux/openat2.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

/* What a fiber saw (EXPECT/ASSERT_SEEN from helpers.h), plus the scratch
 * directory the test works in. */
struct file_seen {
	_Atomic int line;
	_Atomic long long val;
	char dir[256];
};

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* -------------------------------------------------------- every call once */

static void *main_calls(void *arg)
{
	struct file_seen *s = arg;
	char p[300], q[300], d[300], buf[64];
	struct iovec iov[2];
	struct statx st;
	ssize_t r;
	int fd, rc;

	path_in(p, sizeof(p), s->dir, "a");
	path_in(q, sizeof(q), s->dir, "b");
	path_in(d, sizeof(d), s->dir, "sub");
	fd = ursa_open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	EXPECT(s, fd >= 0, fd);
	r = ursa_write(fd, "hello ", 6);
	EXPECT(s, r == 6, r);
	iov[0] = (struct iovec){"wor", 3};
	iov[1] = (struct iovec){"ld", 2};
	r = ursa_writev(fd, iov, 2);
	EXPECT(s, r == 5, r);
	r = ursa_pwrite(fd, "W", 1, 6);
	EXPECT(s, r == 1, r);
	r = ursa_pwritev(fd, iov, 1, 11);
	EXPECT(s, r == 3, r);
	EXPECT(s, (rc = ursa_fsync(fd)) == 0, rc);
	EXPECT(s, (rc = ursa_fdatasync(fd)) == 0, rc);
	memset(buf, 0, sizeof(buf));
	r = ursa_pread(fd, buf, sizeof(buf), 0);
	EXPECT(s, r == 14 && memcmp(buf, "hello Worldwor", 14) == 0, r);
	/* The file position: writes moved it to 11; read from there. */
	memset(buf, 0, sizeof(buf));
	r = ursa_read(fd, buf, sizeof(buf));
	EXPECT(s, r == 3 && memcmp(buf, "wor", 3) == 0, r);
	r = ursa_read(fd, buf, sizeof(buf));
	EXPECT(s, r == 0, r); /* end of file */
	memset(buf, 0, sizeof(buf));
	iov[0] = (struct iovec){buf, 5};
	iov[1] = (struct iovec){buf + 10, 5};
	r = ursa_preadv(fd, iov, 2, 6);
	EXPECT(s, r == 8 && memcmp(buf, "World", 5) == 0 && memcmp(buf + 10, "wor", 3) == 0, r);
	EXPECT(s, lseek(fd, 0, SEEK_SET) == 0, errno);
	r = ursa_readv(fd, iov, 1);
	EXPECT(s, r == 5 && memcmp(buf, "hello", 5) == 0, r);
	EXPECT(s, (r = ursa_pread(fd, buf, 1, -1)) == -EINVAL, r);
	EXPECT(s, (r = ursa_pwrite(fd, buf, 1, -5)) == -EINVAL, r);
	EXPECT(s, (rc = ursa_fallocate(fd, 0, 0, 65536)) == 0, rc);
	EXPECT(s, (rc = ursa_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE, &st)) == 0,
	       rc);
	EXPECT(s, st.stx_size == 65536, st.stx_size);
	EXPECT(s, (st.stx_mode & 0777) == 0600, st.stx_mode);
	EXPECT(s, (rc = ursa_close(fd)) == 0, rc);
	EXPECT(s, (rc = ursa_close(fd)) == -EBADF, rc);
	EXPECT(s, (rc = ursa_rename(p, q)) == 0, rc);
	EXPECT(s, (rc = ursa_statx(AT_FDCWD, p, 0, STATX_SIZE, &st)) == -ENOENT, rc);
	EXPECT(s, (rc = ursa_statx(AT_FDCWD, q, 0, STATX_SIZE, &st)) == 0, rc);
	EXPECT(s, (rc = ursa_mkdir(d, 0700)) == 0, rc);
	EXPECT(s, (rc = ursa_mkdir(d, 0700)) == -EEXIST, rc);
	EXPECT(s, (rc = ursa_rmdir(d)) == 0, rc);
	EXPECT(s, (rc = ursa_unlink(q)) == 0, rc);
	EXPECT(s, (rc = ursa_unlink(q)) == -ENOENT, rc);
	EXPECT(s, (fd = ursa_open(q, O_RDONLY, 0)) == -ENOENT, fd);
	EXPECT(s, (r = ursa_read(12345, buf, 1)) == -EBADF, r);
	return NULL;
}

Test(file, every_call_matches_its_posix_counterpart)
{
	struct file_seen s = {0};
	int fds = count_fds();

	make_scratch(s.dir, sizeof(s.dir));
	run_on(1, main_calls, &s);
	cr_assert_eq(count_entries(s.dir), 0, "files left behind");
	rm_scratch(s.dir);
	ASSERT_SEEN(&s);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

Test(file, calls_outside_a_task_return_eperm)
{
	char buf[4];

	cr_assert_eq(ursa_open("/", O_RDONLY, 0), -EPERM);
	cr_assert_eq(ursa_read(0, buf, 1), -EPERM);
	cr_assert_eq(ursa_close(0), -EPERM);
	cr_assert_eq(ursa_write_file("/nonexistent/x", "", 0, 0), -EPERM);
}

/* ------------------------------------------------- openat2 confinement */

/* One ursa_openat2 call: its arguments, the ring's answer and the
 * openat2(2) system call's answer to the same arguments. */
struct how_case {
	const char *path;
	uint64_t resolve;
	size_t size;       /* 0: sizeof(struct open_how) */
	bool tail;         /* a non-zero byte after the struct (size > sizeof) */
	int want;          /* -errno, or 0 for "an fd" */
	int ring, kernel;  /* the answers (an fd is recorded as 0 once closed) */
	char first[8];     /* the first bytes read from the fd the ring gave */
};

#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)

static struct how_case how_cases[] = {
	{"in", BENEATH, 0, false, 0, 0, 0, ""},
	{"./in", BENEATH, 0, false, 0, 0, 0, ""},
	{"link_in", BENEATH, 0, false, 0, 0, 0, ""},    /* a relative link that stays inside */
	{"/etc/passwd", BENEATH, 0, false, -EXDEV, 0, 0, ""},
	{"//etc/passwd", BENEATH, 0, false, -EXDEV, 0, 0, ""},
	{"../x", BENEATH, 0, false, -EXDEV, 0, 0, ""},
	{"sub/../../x", BENEATH, 0, false, -EXDEV, 0, 0, ""},
	{"sub/../in", BENEATH, 0, false, 0, 0, 0, ""},     /* a ".." that stays inside */
	{"link_abs", BENEATH, 0, false, -EXDEV, 0, 0, ""},   /* -> /etc/passwd */
	{"link_up", BENEATH, 0, false, -EXDEV, 0, 0, ""},    /* -> ../<dir>/in: out and back */
	{"link_in", RESOLVE_NO_SYMLINKS, 0, false, -ELOOP, 0, 0, ""},
	{"/proc/self/root/etc/passwd", RESOLVE_NO_MAGICLINKS, 0, false, -ELOOP, 0, 0, ""},
	{"/proc/self/root/etc/passwd", 0, 0, false, 0, 0, 0, ""},
	{"in", 1ull << 63, 0, false, -EINVAL, 0, 0, ""}, /* a resolve bit no kernel has */
	{"in", BENEATH, 16, false, -EINVAL, 0, 0, ""},    /* below OPEN_HOW_SIZE_VER0 */
	{"in", BENEATH, sizeof(struct open_how) + 8, false, 0, 0, 0, ""},  /* zero tail */
	{"in", BENEATH, sizeof(struct open_how) + 8, true, -E2BIG, 0, 0, ""},
	{"in", BENEATH, 4097, false, -E2BIG, 0, 0, ""},   /* over a page, as openat2(2) */
};

#define N_HOW (sizeof(how_cases) / sizeof(how_cases[0]))

struct how_arg {
	struct open_how how;
	uint64_t tail[512];
};

static void how_for(const struct how_case *c, struct how_arg *a, size_t *size)
{
	memset(a, 0, sizeof(*a));
	a->how.flags = O_RDONLY | O_CLOEXEC;
	a->how.resolve = c->resolve;
	a->tail[0] = c->tail ? 1 : 0;
	*size = c->size ? c->size : sizeof(a->how);
}

struct how_run {
	struct file_seen s;
	int dirfd;
};

static void *main_openat2(void *arg)
{
	struct how_run *h = arg;
	struct how_arg *a = malloc(sizeof(*a));

	for (size_t i = 0; i < N_HOW; i++) {
		struct how_case *c = &how_cases[i];
		size_t size;
		int fd;

		how_for(c, a, &size);
		fd = ursa_openat2(h->dirfd, c->path, &a->how, size);
		c->ring = fd < 0 ? fd : 0;
		if (fd >= 0) {
			ssize_t r = ursa_pread(fd, c->first, sizeof(c->first) - 1, 0);

			EXPECT(&h->s, r > 0, r);
			EXPECT(&h->s, ursa_close(fd) == 0, fd);
		}
	}
	free(a);
	return NULL;
}

Test(file, openat2_beneath_refuses_every_way_out_and_matches_the_kernel)
{
	struct how_run h = {0};
	struct how_arg *a = malloc(sizeof(*a));
	char p[300], q[300];
	int fds = count_fds(), fd;

	make_scratch(h.s.dir, sizeof(h.s.dir));
	path_in(p, sizeof(p), h.s.dir, "in");
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_eq(write(fd, "inside", 6), 6);
	close(fd);
	path_in(p, sizeof(p), h.s.dir, "sub");
	cr_assert_eq(mkdir(p, 0700), 0);
	path_in(p, sizeof(p), h.s.dir, "link_in");
	cr_assert_eq(symlink("in", p), 0);
	path_in(p, sizeof(p), h.s.dir, "link_abs");
	cr_assert_eq(symlink("/etc/passwd", p), 0);
	path_in(p, sizeof(p), h.s.dir, "link_up");
	snprintf(q, sizeof(q), "../%s/in", strrchr(h.s.dir, '/') + 1);
	cr_assert_eq(symlink(q, p), 0);
	h.dirfd = open(h.s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(h.dirfd, 0);
	/* The kernel's own answer to each case first. */
	for (size_t i = 0; i < N_HOW; i++) {
		size_t size;
		long r;

		how_for(&how_cases[i], a, &size);
		r = syscall(SYS_openat2, h.dirfd, how_cases[i].path, &a->how, size);
		if (r < 0 && errno == ENOSYS) {
			close(h.dirfd);
			path_in(p, sizeof(p), h.s.dir, "sub");
			rmdir(p);
			rm_scratch(h.s.dir);
			free(a);
			cr_skip_test("the kernel has no openat2 (5.6)");
		}
		how_cases[i].kernel = r < 0 ? -errno : 0;
		if (r >= 0)
			close((int)r);
	}
	run_on(1, main_openat2, &h);
	close(h.dirfd);
	path_in(p, sizeof(p), h.s.dir, "sub");
	rmdir(p);
	rm_scratch(h.s.dir);
	free(a);
	ASSERT_SEEN(&h.s);
	for (size_t i = 0; i < N_HOW; i++) {
		const struct how_case *c = &how_cases[i];

		cr_expect_eq(c->ring, c->want, "case %zu (%s, resolve %#llx, size %zu): ring %d, want %d",
		             i, c->path, (unsigned long long)c->resolve, c->size, c->ring, c->want);
		cr_expect_eq(c->ring, c->kernel, "case %zu (%s): ring %d, openat2(2) %d", i, c->path,
		             c->ring, c->kernel);
	}
	/* What the opens inside the root read is the file inside the root. */
	cr_assert_str_eq(how_cases[0].first, "inside");
	cr_assert_str_eq(how_cases[2].first, "inside");
	cr_assert_eq(count_fds(), fds, "fd leak");
}

Test(file, openat2_outside_a_task_returns_eperm)
{
	struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};

	cr_assert_eq(ursa_openat2(AT_FDCWD, "/", &how, sizeof(how)), -EPERM);
	cr_assert_eq(ursa_openat2(AT_FDCWD, "/", &how, 8192), -EPERM);
}

/* ------------------------------------------ scattered concurrent writes */

#define BLOCK 4096
#define NBLOCKS 1024 /* 4 MiB */
#define WRITERS 32

struct scatter {
	struct file_seen s;
	int fd;
	uint64_t perm[NBLOCKS];  /* order in which blocks are written */
	_Atomic int next;        /* next index into perm */
	_Atomic uint64_t sum_read;
	_Atomic int verified;
};

/* Block i holds bytes derived from i alone, so any block can be checked. */
static void block_bytes(unsigned i, unsigned char *b)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (i + 1);

	rng_fill(&seed, b, BLOCK);
}

static void *writer(void *arg)
{
	struct scatter *sc = arg;
	unsigned char *b = malloc(BLOCK);
	int i;

	while ((i = atomic_fetch_add(&sc->next, 1)) < NBLOCKS) {
		unsigned blk = (unsigned)sc->perm[i];
		ssize_t r;

		block_bytes(blk, b);
		r = ursa_pwrite(sc->fd, b, BLOCK, (off_t)blk * BLOCK);
		EXPECT(&sc->s, r == BLOCK, r);
		if (i % 64 == 0)
			ursa_yield();
	}
	free(b);
	return NULL;
}

static void *reader(void *arg)
{
	struct scatter *sc = arg;
	unsigned char *got = malloc(BLOCK), *want = malloc(BLOCK);
	int i;

	while ((i = atomic_fetch_add(&sc->next, 1)) < NBLOCKS) {
		ssize_t r = ursa_pread(sc->fd, got, BLOCK, (off_t)i * BLOCK);

		EXPECT(&sc->s, r == BLOCK, r);
		block_bytes((unsigned)i, want);
		EXPECT(&sc->s, memcmp(got, want, BLOCK) == 0, i);
		atomic_fetch_add(&sc->sum_read, fnv(got, BLOCK, FNV_INIT));
		atomic_fetch_add(&sc->verified, 1);
	}
	free(got);
	free(want);
	return NULL;
}

static void *main_scatter(void *arg)
{
	struct scatter *sc = arg;
	struct ursa_task *t[WRITERS];
	char p[300];
	int rc;

	path_in(p, sizeof(p), sc->s.dir, "scatter");
	sc->fd = ursa_open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	EXPECT(&sc->s, sc->fd >= 0, sc->fd);
	if (sc->fd < 0)
		return NULL;
	for (int i = 0; i < WRITERS; i++)
		EXPECT(&sc->s, ursa_spawn_on(&t[i], (unsigned)i % ursa_ncores(), writer, sc) == 0,
		       i);
	for (int i = 0; i < WRITERS; i++)
		EXPECT(&sc->s, ursa_join(t[i], NULL) == 0, i);
	EXPECT(&sc->s, (rc = ursa_fsync(sc->fd)) == 0, rc);
	atomic_store(&sc->next, 0);
	for (int i = 0; i < WRITERS; i++)
		EXPECT(&sc->s, ursa_spawn_on(&t[i], (unsigned)i % ursa_ncores(), reader, sc) == 0,
		       i);
	for (int i = 0; i < WRITERS; i++)
		EXPECT(&sc->s, ursa_join(t[i], NULL) == 0, i);
	EXPECT(&sc->s, (rc = ursa_close(sc->fd)) == 0, rc);
	EXPECT(&sc->s, (rc = ursa_unlink(p)) == 0, rc);
	return NULL;
}

Test(file, scattered_concurrent_pwrite_fsync_pread_checksum, .timeout = 60)
{
	struct scatter *sc = calloc(1, sizeof(*sc));
	uint64_t seed = 42, want = 0;
	unsigned char *b = malloc(BLOCK);
	int fds = count_fds();

	/* A random permutation of the blocks: writes land all over the file. */
	for (unsigned i = 0; i < NBLOCKS; i++)
		sc->perm[i] = i;
	for (unsigned i = NBLOCKS - 1; i > 0; i--) {
		unsigned j = (unsigned)(rng_next(&seed) % (i + 1));
		uint64_t tmp = sc->perm[i];

		sc->perm[i] = sc->perm[j];
		sc->perm[j] = tmp;
	}
	for (unsigned i = 0; i < NBLOCKS; i++) {
		block_bytes(i, b);
		want += fnv(b, BLOCK, FNV_INIT);
	}
	make_scratch(sc->s.dir, sizeof(sc->s.dir));
	run_on(2, main_scatter, sc);
	rm_scratch(sc->s.dir);
	ASSERT_SEEN(&sc->s);
	cr_assert_eq(atomic_load(&sc->verified), NBLOCKS);
	cr_assert_eq(atomic_load(&sc->sum_read), want, "checksum differs");
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(b);
	free(sc);
}

/* ---------------------------------------------------- whole-file helpers */

static void *main_whole(void *arg)
{
	struct file_seen *s = arg;
	char p[300], missing[300];
	size_t big_len = 300000, len = 7;
	char *big = malloc(big_len);
	uint64_t seed = 7;
	struct statx st;
	void *got = NULL;
	int rc;

	rng_fill(&seed, big, big_len);
	path_in(p, sizeof(p), s->dir, "whole");
	path_in(missing, sizeof(missing), s->dir, "no/such/dir");
	EXPECT(s, (rc = ursa_read_file(p, &got, &len)) == -ENOENT, rc);
	EXPECT(s, got == NULL && len == 7, len); /* untouched on failure */
	EXPECT(s, (rc = ursa_write_file(p, big, big_len, 0)) == 0, rc);
	EXPECT(s, (rc = ursa_read_file(p, &got, &len)) == 0, rc);
	EXPECT(s, got && len == big_len && memcmp(got, big, big_len) == 0, len);
	EXPECT(s, got && ((char *)got)[len] == '\0', 0);
	free(got);
	got = NULL;
	/* Replacing keeps the old file's permissions. */
	EXPECT(s, chmod(p, 0640) == 0, errno);
	EXPECT(s, (rc = ursa_write_file(p, "short", 5, URSA_WRITE_FILE_NOSYNC)) == 0, rc);
	EXPECT(s, (rc = ursa_read_file(p, &got, &len)) == 0, rc);
	EXPECT(s, got && len == 5 && memcmp(got, "short", 6) == 0, len);
	free(got);
	got = NULL;
	EXPECT(s, (rc = ursa_statx(AT_FDCWD, p, 0, STATX_MODE, &st)) == 0, rc);
	EXPECT(s, (st.stx_mode & 0777) == 0640, st.stx_mode);
	/* An empty file. */
	EXPECT(s, (rc = ursa_write_file(p, NULL, 0, 0)) == 0, rc);
	EXPECT(s, (rc = ursa_read_file(p, &got, &len)) == 0, rc);
	EXPECT(s, got && len == 0, len);
	free(got);
	got = NULL;
	/* A file whose size statx does not know. */
	EXPECT(s, (rc = ursa_read_file("/proc/self/status", &got, &len)) == 0, rc);
	EXPECT(s, got && len > 100 && strstr(got, "Name:"), len);
	free(got);
	EXPECT(s, (rc = ursa_write_file(missing, "x", 1, 0)) == -ENOENT, rc);
	EXPECT(s, (rc = ursa_write_file(p, "x", 1, 0x80)) == -EINVAL, rc);
	EXPECT(s, (rc = ursa_unlink(p)) == 0, rc);
	free(big);
	return NULL;
}

Test(file, read_file_and_write_file_round_trip)
{
	struct file_seen s = {0};
	int fds = count_fds();

	make_scratch(s.dir, sizeof(s.dir));
	run_on(1, main_whole, &s);
	cr_assert_eq(count_entries(s.dir), 0, "a temporary was left behind");
	rm_scratch(s.dir);
	ASSERT_SEEN(&s);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/*
 * Cancel write_file at every point of its run, over and over: afterwards the
 * file holds the old content or the new, whole, and no temporary is left.
 */
#define WF_ROUNDS 300
#define WF_LEN 100000

struct wf {
	struct file_seen s;
	char path[300];
	char *old, *new_;
	int rc;
	unsigned flags;
	int n_old, n_new;
};

static void *wf_writer(void *arg)
{
	struct wf *w = arg;

	w->rc = ursa_write_file(w->path, w->new_, WF_LEN, w->flags);
	return NULL;
}

static void *main_wf_cancel(void *arg)
{
	struct wf *w = arg;

	for (int i = 0; i < WF_ROUNDS; i++) {
		struct ursa_task *t;
		void *got = NULL;
		size_t len = 0;
		int rc;

		rc = ursa_write_file(w->path, w->old, WF_LEN, URSA_WRITE_FILE_NOSYNC);
		EXPECT(&w->s, rc == 0, rc);
		w->rc = 1;
		w->flags = (i & 1) ? URSA_WRITE_FILE_NOSYNC : 0;
		EXPECT(&w->s, ursa_spawn(&t, wf_writer, w) == 0, i);
		/* Let it get some way in, then cancel: without fsync each yield
		 * lets about one op finish; with fsync, time does. */
		if (i & 1)
			for (int k = 0; k < (i / 2) % 12; k++)
				ursa_yield();
		else
			nap((uint64_t)((i / 2) % 25) * 100000u);
		(void)ursa_cancel(t);
		rc = ursa_join(t, NULL);
		EXPECT(&w->s, rc == 0 || rc == -ECANCELED, rc);
		EXPECT(&w->s, w->rc == 0 || w->rc == -ECANCELED, w->rc);
		EXPECT(&w->s, (rc = ursa_read_file(w->path, &got, &len)) == 0, rc);
		if (got && len == WF_LEN && memcmp(got, w->old, WF_LEN) == 0)
			w->n_old++;
		else if (got && len == WF_LEN && memcmp(got, w->new_, WF_LEN) == 0)
			w->n_new++;
		else
			EXPECT(&w->s, 0, len); /* torn */
		/* Cancelled before the rename: the old file.  Returned 0: the new. */
		if (w->rc == 0)
			EXPECT(&w->s, got && memcmp(got, w->new_, WF_LEN) == 0, i);
		free(got);
		EXPECT(&w->s, count_entries(w->s.dir) == 1, count_entries(w->s.dir));
	}
	return NULL;
}

Test(file, write_file_cancelled_anywhere_leaves_old_or_new_never_half, .timeout = 60)
{
	struct wf *w = calloc(1, sizeof(*w));
	uint64_t seed = 3;
	int fds = count_fds();

	w->old = malloc(WF_LEN);
	w->new_ = malloc(WF_LEN);
	rng_fill(&seed, w->old, WF_LEN);
	rng_fill(&seed, w->new_, WF_LEN);
	make_scratch(w->s.dir, sizeof(w->s.dir));
	path_in(w->path, sizeof(w->path), w->s.dir, "f");
	run_on(1, main_wf_cancel, w);
	rm_scratch(w->s.dir);
	ASSERT_SEEN(&w->s);
	cr_assert_eq(w->n_old + w->n_new, WF_ROUNDS);
	/* Both outcomes happen, or the cancellation points were not covered. */
	cr_assert_gt(w->n_old, 0);
	cr_assert_gt(w->n_new, 0);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(w->old);
	free(w->new_);
	free(w);
}

/* ------------------------------------------------------------- O_DIRECT */

struct direct {
	struct file_seen s;
	int fd;
	ssize_t aligned_w, aligned_r, misaligned_w, misaligned_r;
	bool same;
};

static void *main_direct(void *arg)
{
	struct direct *d = arg;
	unsigned char *a = aligned_alloc(4096, 3 * 4096), *b = aligned_alloc(4096, 3 * 4096);

	memset(a, 0x5a, 3 * 4096);
	memset(b, 0, 3 * 4096);
	d->aligned_w = ursa_pwrite(d->fd, a, 8192, 0);
	d->aligned_r = ursa_pread(d->fd, b, 8192, 0);
	d->same = memcmp(a, b, 8192) == 0;
	d->misaligned_w = ursa_pwrite(d->fd, a + 1, 4096, 0);
	d->misaligned_r = ursa_pread(d->fd, b + 1, 4096, 0);
	free(a);
	free(b);
	return NULL;
}

/*
 * kill -9 in the middle of write_file leaves the old file and nothing else:
 * the data go to an unnamed file (O_TMPFILE) that gets a name only once it
 * is complete.  Before, every kill left path.PID.N.tmp behind (issue 20:
 * 148 temporaries, 304 MB, in 400 rounds).  The child writes 256 MiB and is
 * killed 20 ms after it starts, well inside the write and its fsync.
 */
#define KILL_LEN (256u << 20)

struct kill_child {
	const char *path;
	int ready_fd;
	char *data;
};

static void *main_write_and_wait(void *arg)
{
	struct kill_child *k = arg;

	(void)!write(k->ready_fd, "go", 2);
	(void)!ursa_write_file(k->path, k->data, KILL_LEN, 0);
	(void)!write(k->ready_fd, "done", 4); /* too late: the kill came first */
	return NULL;
}

Test(file, write_file_killed_midway_leaves_no_temporary, .timeout = 60)
{
#ifdef URSA_TEST_NO_TMPFILE
	cr_skip_test("without O_TMPFILE a named temporary exists while the data are written");
#endif
	char dir[256], path[300], got[16] = "";
	int pipefd[2], status;
	struct stat sb;
	pid_t pid;
	FILE *f;

	make_scratch(dir, sizeof(dir));
	path_in(path, sizeof(path), dir, "target");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("old", f);
	fclose(f);
	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) { /* no Criterion in the child */
		struct kill_child k = {path, pipefd[1], malloc(KILL_LEN)};

		close(pipefd[0]);
		if (!k.data)
			_exit(2);
		memset(k.data, 'n', KILL_LEN); /* real pages, before the signal to kill */
		(void)!ursa_run(main_write_and_wait, &k, NULL, NULL);
		_exit(0);
	}
	cr_assert_neq(pid, -1);
	close(pipefd[1]);
	cr_assert_eq(read(pipefd[0], got, 2), 2, "child did not start");
	usleep(20 * 1000);
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	close(pipefd[0]);
	cr_assert(WIFSIGNALED(status), "the write finished before the kill (status %#x)", status);
	cr_assert_eq(count_entries(dir), 1, "a temporary was left behind");
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_size, 3, "the old file was replaced by a partial one");
	rm_scratch(dir);
}

Test(file, o_direct_aligned_works_misaligned_gets_what_the_kernel_says)
{
	struct direct d = {0};
	char p[300];
	unsigned char *raw = aligned_alloc(4096, 2 * 4096);
	ssize_t kernel_w;
	int fds = count_fds();

	make_scratch(d.s.dir, sizeof(d.s.dir));
	path_in(p, sizeof(p), d.s.dir, "direct");
	d.fd = open(p, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (d.fd < 0 && errno == EINVAL) {
		rm_scratch(d.s.dir);
		cr_skip_test("the scratch filesystem has no O_DIRECT");
	}
	cr_assert_geq(d.fd, 0, "open: %s", strerror(errno));
	/* What the kernel itself answers to a misaligned buffer here. */
	kernel_w = pwrite(d.fd, raw + 1, 4096, 0);
	kernel_w = kernel_w < 0 ? -errno : kernel_w;
	run_on(1, main_direct, &d);
	close(d.fd);
	rm_scratch(d.s.dir);
	free(raw);
	cr_assert_eq(d.aligned_w, 8192, "aligned write: %zd", d.aligned_w);
	cr_assert_eq(d.aligned_r, 8192, "aligned read: %zd", d.aligned_r);
	cr_assert(d.same);
	cr_assert_eq(d.misaligned_w, kernel_w, "ring %zd, kernel %zd", d.misaligned_w, kernel_w);
	if (kernel_w == -EINVAL)
		cr_assert_eq(d.misaligned_r, -EINVAL);
	cr_assert_eq(count_fds(), fds, "fd leak");
}
