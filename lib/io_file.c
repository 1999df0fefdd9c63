/* SPDX-License-Identifier: MIT */
/*
 * io_file.c: files on the ring: open, read, write (plain, positioned and
 * vectored), sync, allocate, stat, directory entries, and the whole-file
 * helpers.  Each call is one io_uring op; none goes through a thread pool of
 * ours (the kernel may hand a blocking op to its own io-wq workers).
 */
#include "io.h"
#include "io_buf.h"
#include "io_inline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* offset -1: the file position, which the op uses and advances
 * (IORING_FEAT_RW_CUR_POS, 5.6), as read(2) and write(2) do. */
#define CUR_POS ((uint64_t)-1)

int ursa_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_openat(sqe, dirfd, path, flags, mode);
	/* A cancelled open whose CQE carries an fd returns that fd: the result
	 * wins (ursa__op_wait), so it is never leaked. */
	return ursa__op_wait(self, sqe);
}

int ursa_openat2(int dirfd, const char *path, const struct open_how *how, size_t size)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	/* openat2(2) refuses sizes above a page; the ring op would instead walk
	 * all of them checking that the tail is zero.  (Checked before an SQE
	 * is taken, which could not be given back.) */
	if (size > 4096)
		return ursa_self() ? -E2BIG : -EPERM;
	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	/* liburing 2.3 takes a non-const how; the kernel only reads it (at
	 * submission, while this task waits).  The length field carries the
	 * caller's size so that the kernel's extensible-struct checks see what
	 * the caller compiled against, not what liburing assumed. */
	io_uring_prep_openat2(sqe, dirfd, path, (struct open_how *)how);
	sqe->len = (uint32_t)size;
	/* As for ursa_openat: an fd that arrives despite a cancel is returned. */
	return ursa__op_wait(self, sqe);
}

int ursa_open(const char *path, int flags, mode_t mode)
{
	return ursa_openat(AT_FDCWD, path, flags, mode);
}

/* The ring's form of a read or write of iov at off: READ/WRITE for one
 * buffer without flags, else READV/WRITEV with the RWF_* flags.  An O_DIRECT
 * fd's op is submitted at once (io_inline.h, ursa__io_inline_direct). */
static ssize_t ring_rw(struct ursa_task *self, bool wr, int fd, const struct iovec *iov,
                       int iovcnt, uint64_t off, int rwf)
{
	struct io_uring_sqe *sqe = ursa__ring_sqe(&self->core->ring);

	if (iovcnt == 1 && !rwf &&
	    ursa__io_buf_fixed(self->core, iov[0].iov_base, iov[0].iov_len)) {
		/* A registered buffer (io_buf.c): no per-op page pinning. */
		if (wr)
			io_uring_prep_write_fixed(sqe, fd, iov[0].iov_base,
			                          ursa__io_len(iov[0].iov_len), off, 0);
		else
			io_uring_prep_read_fixed(sqe, fd, iov[0].iov_base,
			                         ursa__io_len(iov[0].iov_len), off, 0);
	} else if (iovcnt == 1 && !rwf) {
		if (wr)
			io_uring_prep_write(sqe, fd, iov[0].iov_base, ursa__io_len(iov[0].iov_len), off);
		else
			io_uring_prep_read(sqe, fd, iov[0].iov_base, ursa__io_len(iov[0].iov_len), off);
	} else if (wr) {
		io_uring_prep_writev2(sqe, fd, iov, (unsigned)iovcnt, off, rwf);
	} else {
		io_uring_prep_readv2(sqe, fd, iov, (unsigned)iovcnt, off, rwf);
	}
	if (ursa__io_inline_direct(fd))
		return ursa__op_wait_now(self, sqe);
	return ursa__op_wait(self, sqe);
}

/* Up to this many iovecs are copied on the stack to send the rest of a
 * partial inline transfer to the ring; more take a malloc. */
#define IOV_ON_STACK 16

/*
 * Every read and write: the page-cache fast path first (io_inline.c), the
 * ring for the rest.  A try that moved part of the data (the rest is not
 * cached, or end of file) has the rest read or written by the ring, as the
 * ring itself would have done, so the result is the same either way: the
 * count of both parts; a failure or cancellation of the second part leaves
 * the first part's count, which the next call's error follows.
 */
static ssize_t rw(bool wr, int fd, const struct iovec *iov, int iovcnt, uint64_t off, int rwf)
{
	struct iovec stack_iov[IOV_ON_STACK], *rest = stack_iov;
	struct ursa_task *self;
	size_t total = 0, skip;
	ssize_t done, more;
	int err, i, n;

	if (iovcnt < 0)
		return -EINVAL;
	if ((err = ursa__op_check(&self)))
		return err;
	done = ursa__io_inline_rw(self, wr, fd, iov, iovcnt, off, rwf);
	rwf &= ~URSA_RWF_RING;
	if (done == URSA__IO_RING) {
		URSA__STAT_INC(self->core->stats.file_ring);
		return ring_rw(self, wr, fd, iov, iovcnt, off, rwf);
	}
	if (done >= 0)
		URSA__STAT_INC(self->core->stats.file_inline);
	if (done <= 0)
		return done;
	for (i = 0; i < iovcnt && total <= URSA__IO_MAX; i++)
		total += iov[i].iov_len;
	if ((size_t)done >= total || (size_t)done >= URSA__IO_MAX)
		return done;
	/* The rest: skip the iovecs the try filled, cut into the first one left. */
	for (i = 0, skip = (size_t)done; skip >= iov[i].iov_len; i++)
		skip -= iov[i].iov_len;
	n = iovcnt - i;
	if (n > IOV_ON_STACK && !(rest = malloc((size_t)n * sizeof(*rest))))
		return done; /* a short count is a valid answer */
	memcpy(rest, iov + i, (size_t)n * sizeof(*rest));
	rest[0].iov_base = (char *)rest[0].iov_base + skip;
	rest[0].iov_len -= skip;
	more = ring_rw(self, wr, fd, rest, n, off == CUR_POS ? CUR_POS : off + (uint64_t)done, rwf);
	if (rest != stack_iov)
		free(rest);
	return more > 0 ? done + more : done;
}

static ssize_t rw1(bool wr, int fd, const void *buf, size_t n, uint64_t off)
{
	struct iovec iov = {(void *)buf, ursa__io_len(n)};

	return rw(wr, fd, &iov, 1, off, 0);
}

ssize_t ursa_read(int fd, void *buf, size_t n)
{
	return rw1(false, fd, buf, n, CUR_POS);
}

ssize_t ursa_write(int fd, const void *buf, size_t n)
{
	return rw1(true, fd, buf, n, CUR_POS);
}

/* A negative offset is -EINVAL, as for pread(2): the op would read -1 as
 * "the file position". */
ssize_t ursa_pread(int fd, void *buf, size_t n, off_t off)
{
	return off < 0 ? -EINVAL : rw1(false, fd, buf, n, (uint64_t)off);
}

ssize_t ursa_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return off < 0 ? -EINVAL : rw1(true, fd, buf, n, (uint64_t)off);
}

ssize_t ursa_readv(int fd, const struct iovec *iov, int iovcnt)
{
	return rw(false, fd, iov, iovcnt, CUR_POS, 0);
}

ssize_t ursa_writev(int fd, const struct iovec *iov, int iovcnt)
{
	return rw(true, fd, iov, iovcnt, CUR_POS, 0);
}

ssize_t ursa_preadv(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return off < 0 ? -EINVAL : rw(false, fd, iov, iovcnt, (uint64_t)off, 0);
}

ssize_t ursa_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return off < 0 ? -EINVAL : rw(true, fd, iov, iovcnt, (uint64_t)off, 0);
}

/* preadv2(2)'s offset: -1 is the file position, any other negative one
 * -EINVAL. */
ssize_t ursa_preadv2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	return off < -1 ? -EINVAL : rw(false, fd, iov, iovcnt, (uint64_t)off, flags);
}

ssize_t ursa_pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	return off < -1 ? -EINVAL : rw(true, fd, iov, iovcnt, (uint64_t)off, flags);
}

static int sync_op(int fd, unsigned fsync_flags)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_fsync(sqe, fd, fsync_flags);
	return ursa__op_wait(self, sqe);
}

int ursa_fsync(int fd)
{
	return sync_op(fd, 0);
}

int ursa_fdatasync(int fd)
{
	return sync_op(fd, IORING_FSYNC_DATASYNC);
}

int ursa_fallocate(int fd, int mode, off_t off, off_t len)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_fallocate(sqe, fd, mode, off, len);
	return ursa__op_wait(self, sqe);
}

/* A whole-file read's buffer is full: double it (plus the byte kept for a
 * terminating NUL).  0, or -EFBIG past SSIZE_MAX, or -ENOMEM. */
static int grow_file_buf(char **buf, size_t *cap)
{
	char *nb;

	if (*cap > SSIZE_MAX / 2)
		return -EFBIG;
	nb = realloc(*buf, *cap * 2 + 1);
	if (!nb)
		return -ENOMEM;
	*buf = nb;
	*cap *= 2;
	return 0;
}

/* Inline first (io_inline.c: the ring would hand it to an io-wq thread),
 * the ring when that backs off. */
int ursa_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if ((err = ursa__op_check(&self)))
		return err;
	err = ursa__io_inline_statx(self, dirfd, path, flags, mask, st);
	if (err != URSA__IO_RING_INT)
		return err;
	sqe = ursa__ring_sqe(&self->core->ring);
	io_uring_prep_statx(sqe, dirfd, path, flags, mask, st);
	return ursa__op_wait(self, sqe);
}

static int unlink_op(const char *path, int flags)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_unlinkat(sqe, AT_FDCWD, path, flags);
	return ursa__op_wait(self, sqe);
}

int ursa_unlink(const char *path)
{
	return unlink_op(path, 0);
}

int ursa_rmdir(const char *path)
{
	return unlink_op(path, AT_REMOVEDIR);
}

int ursa_rename(const char *from, const char *to)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_renameat(sqe, AT_FDCWD, from, AT_FDCWD, to, 0);
	return ursa__op_wait(self, sqe);
}

int ursa_mkdir(const char *path, mode_t mode)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_mkdirat(sqe, AT_FDCWD, path, mode);
	return ursa__op_wait(self, sqe);
}

/* ------------------------------------------------------ whole-file helpers */

/* ursa_read_file where the kernel has no direct descriptors (or all of
 * this core's are in use): open, statx for a size hint, read, close. */
static int read_file_fd(const char *path, void **out, size_t *outlen)
{
	struct statx st;
	size_t cap = 4096, len = 0;
	char *buf;
	int fd, rc;

	fd = ursa_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	/* The size is a hint: files in /proc say 0, and any file may change
	 * while we read; the loop reads to end of file whatever it said. */
	rc = ursa_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st);
	if (rc == 0 && st.stx_size > 0) {
		if (st.stx_size >= SSIZE_MAX) {
			rc = -EFBIG;
			goto fail_fd;
		}
		cap = (size_t)st.stx_size + 1; /* +1: see end of file in one read */
	} else if (rc == -ECANCELED || rc == -ETIMEDOUT) {
		goto fail_fd;
	}
	buf = malloc(cap + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto fail_fd;
	}
	for (;;) {
		ssize_t r;

		if (len == cap && (rc = grow_file_buf(&buf, &cap)))
			goto fail_buf;
		r = ursa_read(fd, buf + len, cap - len);
		if (r < 0) {
			rc = (int)r;
			goto fail_buf;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	rc = ursa_close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = len;
	return 0;
fail_buf:
	free(buf);
fail_fd:
	(void)ursa_close(fd);
	return rc;
}

/*
 * Linked chains into direct descriptors.  An open into a slot of the
 * core's fixed-file table (IORING_OP_OPENAT with file_index), the reads that
 * use the slot (IOSQE_FIXED_FILE) and its close go to the kernel as one
 * linked chain: one submission, one wake, and no fd ever exists in the
 * process, so none can leak.  Slots are chosen here, not with
 * IORING_FILE_INDEX_ALLOC: an allocated slot's number comes only in the
 * open's CQE, too late for the read linked behind it.  The open links to
 * the read with IOSQE_IO_LINK (a failed open cancels the rest: its error is
 * the answer) and the read to what follows with IOSQE_IO_HARDLINK (a short
 * or failed read must not stop the close).  The close is not awaited: its
 * CQE gives the slot back (io.c).
 */

/* The answer of a chain's open (step 0): 0, or its error (a cancellation
 * that stopped it: the reason). */
static int chain_open_res(const struct ursa__chain *ch)
{
	int r = ursa__chain_res(ch, 0);

	return r > 0 ? 0 : r;
}

/* open -> pread -> close of path where direct descriptors are missing. */
static ssize_t pread_path_fd(int dirfd, const char *path, void *buf, size_t n, off_t off)
{
	int fd = ursa_openat(dirfd, path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t r;

	if (fd < 0)
		return fd;
	r = ursa_pread(fd, buf, n, off);
	(void)ursa_close(fd); /* shielded: closes even when cancelled */
	return r;
}

ssize_t ursa_pread_path(int dirfd, const char *path, void *buf, size_t n, off_t off)
{
	struct ursa_task *self = ursa__sched_self();
	struct io_uring_sqe *sqe;
	struct ursa__chain ch;
	int slot, rc;

	if (!self)
		return -EPERM;
	if (!path || off < 0)
		return -EINVAL;
	slot = ursa__io_slot_take(self->core);
	if (slot < 0)
		return pread_path_fd(dirfd, path, buf, n, off);
	if ((rc = ursa__chain_begin(&ch, &self, 3))) {
		ursa__io_slot_put(self->core, (unsigned)slot);
		return rc;
	}
	/* O_CLOEXEC: a direct descriptor has no fd to inherit (the kernel
	 * refuses the flag with a slot). */
	sqe = ursa__chain_sqe(&ch, self);
	io_uring_prep_openat_direct(sqe, dirfd, path, O_RDONLY, 0, (unsigned)slot);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = ursa__chain_sqe(&ch, self);
	io_uring_prep_read(sqe, slot, buf, ursa__io_len(n), (uint64_t)off);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
	ursa__io_slot_close(self->core, ursa__ring_sqe(&self->core->ring), (unsigned)slot);
	ursa__chain_wait(self, &ch);
	if ((rc = chain_open_res(&ch)) < 0)
		return rc;
	/* Bytes read win over a cancellation that came too late. */
	return ursa__chain_res(&ch, 1);
}

/* ursa_read_file's first reads: two of this size, linked behind the open.
 * A file that fits in the first is read and its end seen (the second read
 * returns 0) in one wake. */
#define RF_FIRST (16u << 10)

/* A read through direct descriptor slot, as one op. */
static ssize_t read_slot(int slot, void *buf, size_t n)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_read(sqe, slot, buf, ursa__io_len(n), CUR_POS);
	sqe->flags |= IOSQE_FIXED_FILE;
	return ursa__op_wait(self, sqe);
}

static int read_file_direct(struct ursa_task *self, int slot, char *buf, const char *path,
                            void **out, size_t *outlen)
{
	struct io_uring_sqe *sqe;
	struct ursa__chain ch;
	size_t cap = 2 * RF_FIRST, len;
	ssize_t r1, r2;
	int rc;

	if ((rc = ursa__chain_begin(&ch, &self, 3))) {
		ursa__io_slot_put(self->core, (unsigned)slot);
		free(buf);
		return rc;
	}
	sqe = ursa__chain_sqe(&ch, self);
	io_uring_prep_openat_direct(sqe, AT_FDCWD, path, O_RDONLY, 0, (unsigned)slot);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = ursa__chain_sqe(&ch, self);
	io_uring_prep_read(sqe, slot, buf, RF_FIRST, CUR_POS);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
	sqe = ursa__chain_sqe(&ch, self);
	io_uring_prep_read(sqe, slot, buf + RF_FIRST, RF_FIRST, CUR_POS);
	sqe->flags |= IOSQE_FIXED_FILE;
	ursa__chain_wait(self, &ch);
	if ((rc = chain_open_res(&ch)) < 0) {
		/* Nothing was opened: the slot is still empty. */
		ursa__io_slot_put(self->core, (unsigned)slot);
		free(buf);
		return rc;
	}
	r1 = ursa__chain_res(&ch, 1);
	r2 = ursa__chain_res(&ch, 2);
	if (r1 < 0 || r2 < 0) {
		rc = r1 < 0 ? (int)r1 : (int)r2;
		goto fail;
	}
	/* The second read continued where the first stopped: after a short
	 * first read (end of file, or a /proc file's page) its bytes belong
	 * right behind the first's. */
	if ((size_t)r1 < RF_FIRST && r2 > 0)
		memmove(buf + r1, buf + RF_FIRST, (size_t)r2);
	len = (size_t)r1 + (size_t)r2;
	while (r2 > 0) {
		if (len == cap && (rc = grow_file_buf(&buf, &cap)))
			goto fail;
		r2 = read_slot(slot, buf + len, cap - len);
		if (r2 < 0) {
			rc = (int)r2;
			goto fail;
		}
		len += (size_t)r2;
	}
	ursa__io_slot_close(self->core, ursa__ring_sqe(&self->core->ring), (unsigned)slot);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
fail:
	ursa__io_slot_close(self->core, ursa__ring_sqe(&self->core->ring), (unsigned)slot);
	free(buf);
	return rc;
}

int ursa_read_file(const char *path, void **out, size_t *outlen)
{
	struct ursa_task *self = ursa__sched_self();
	char *buf;
	int slot;

	if (!self)
		return -EPERM;
	if (!path || !out || !outlen)
		return -EINVAL;
	buf = malloc(2 * RF_FIRST + 1);
	if (!buf)
		return -ENOMEM;
	slot = ursa__io_slot_take(self->core);
	if (slot < 0) {
		free(buf);
		return read_file_fd(path, out, outlen);
	}
	return read_file_direct(self, slot, buf, path, out, outlen);
}

/* A name beside path that no one else picks: path.<pid>.<n>.tmp. */
static char *temp_name(const char *path)
{
	static atomic_uint counter;
	size_t n = strlen(path) + 48;
	char *t = malloc(n);

	if (t)
		snprintf(t, n, "%s.%ld.%u.tmp", path, (long)getpid(),
		         atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed));
	return t;
}

/* fsync the directory that holds path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rc;

	if (!slash) {
		dir = strdup(".");
	} else if (slash == path) {
		dir = strdup("/");
	} else {
		dir = strndup(path, (size_t)(slash - path));
	}
	if (!dir)
		return -ENOMEM;
	fd = ursa_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	free(dir);
	if (fd < 0)
		return fd;
	rc = ursa_fsync(fd);
	(void)ursa_close(fd);
	return rc;
}

/* linkat(2) on the ring, for giving an O_TMPFILE file its name: the fd's
 * /proc/self/fd link, followed (AT_EMPTY_PATH would need
 * CAP_DAC_READ_SEARCH). */
static int link_fd(int fd, const char *to)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	char from[32];
	int err;

	snprintf(from, sizeof(from), "/proc/self/fd/%d", fd);
	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_linkat(sqe, AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW);
	return ursa__op_wait(self, sqe);
}

/* An unnamed file in path's directory (O_TMPFILE): the new fd, -EOPNOTSUPP
 * where the filesystem or kernel cannot make one, or another -errno. */
static int open_unnamed(const char *path, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	char *dir = !slash ? strdup(".") : slash == path ? strdup("/")
	                                                  : strndup(path, (size_t)(slash - path));
	int fd;

	if (!dir)
		return -ENOMEM;
	if (ursa__ring_disabled("o_tmpfile")) {
		free(dir);
		return -EOPNOTSUPP;
	}
	fd = ursa_open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
	free(dir);
	/* Kernels before 3.11 take the flags for O_DIRECTORY (-EISDIR);
	 * filesystems without it say -EOPNOTSUPP. */
	if (fd == -EISDIR || fd == -EOPNOTSUPP || fd == -EINVAL)
		return -EOPNOTSUPP;
	return fd;
}

/* A named temporary beside path (the fallback without O_TMPFILE): the fd,
 * and its name in *tmp. */
static int open_named(const char *path, mode_t mode, char **tmp)
{
	int fd = -1;

	for (int tries = 0; fd < 0; tries++) {
		free(*tmp);
		*tmp = temp_name(path);
		if (!*tmp)
			return -ENOMEM;
		fd = ursa_open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd < 0 && (fd != -EEXIST || tries == 16)) {
			free(*tmp);
			*tmp = NULL;
			return fd;
		}
	}
	return fd;
}

/*
 * The data go to an unnamed file (O_TMPFILE), so an unfinished write -- a
 * crash, a kill -9 -- leaves nothing behind: the file has no name until it
 * is complete and synced.  Then it gets one: path itself if there was no
 * file there (linkat, the commit point), else a temporary beside it that is
 * renamed over path (the rename is the commit point; only a crash in the
 * microseconds between the two leaves a temporary).  Where O_TMPFILE is
 * missing, the data go to that named temporary from the start, as before.
 */
int ursa_write_file(const char *path, const void *buf, size_t len, uint32_t flags)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa_scope shield;
	struct statx st;
	mode_t mode = 0666; /* less the umask, applied by the kernel */
	bool exists;
	char *tmp = NULL;
	size_t done = 0;
	int fd, rc;

	if (!self)
		return -EPERM;
	if (!path || (!buf && len))
		return -EINVAL;
	if (flags & ~URSA_WRITE_FILE_NOSYNC)
		return -EINVAL;
	/* Keep the permissions of the file we replace. */
	rc = ursa_statx(AT_FDCWD, path, 0, STATX_MODE, &st);
	if (rc == 0)
		mode = st.stx_mode & 07777;
	else if (rc != -ENOENT)
		return rc;
	exists = rc == 0;
	fd = open_unnamed(path, mode);
	if (fd == -EOPNOTSUPP)
		fd = open_named(path, mode, &tmp);
	if (fd < 0)
		return fd;
	while (done < len) {
		ssize_t r = ursa_pwrite(fd, (const char *)buf + done, len - done, (off_t)done);

		if (r <= 0) {
			rc = r < 0 ? (int)r : -EIO;
			goto fail;
		}
		done += (size_t)r;
	}
	if (!(flags & URSA_WRITE_FILE_NOSYNC) && (rc = ursa_fsync(fd)) < 0)
		goto fail;
	if (!tmp) {
		/* Name the finished file: path itself when it is free (the commit
		 * point; its result wins over a cancellation that raced it). */
		rc = exists ? -EEXIST : link_fd(fd, path);
		while (rc == -EEXIST) {
			tmp = temp_name(path);
			if (!tmp) {
				rc = -ENOMEM;
				goto fail;
			}
			rc = link_fd(fd, tmp);
			if (rc == -EEXIST) {
				free(tmp);
				tmp = NULL;
			}
		}
		if (rc < 0)
			goto fail;
	}
	rc = ursa_close(fd);
	fd = -1;
	if (rc < 0)
		goto fail;
	/* The commit point when a file was there.  If the rename completes,
	 * its result wins over a cancellation that raced it. */
	if (tmp) {
		rc = ursa_rename(tmp, path);
		if (rc < 0)
			goto fail;
		free(tmp);
	}
	if (flags & URSA_WRITE_FILE_NOSYNC)
		return 0;
	/* Finish what the rename started, whatever cancellation says. */
	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	rc = sync_dir(path);
	(void)ursa_scope_exit(&shield);
	return rc;
fail:
	/* Remove the temporary even in a cancelled task. */
	ursa_scope_enter_shielded(&shield, URSA_FOREVER);
	if (fd >= 0)
		(void)ursa_close(fd);
	if (tmp && ursa_unlink(tmp) < 0) {
		/* Nothing more to do: the error that brought us here wins. */
	}
	(void)ursa_scope_exit(&shield);
	free(tmp);
	return rc;
}
