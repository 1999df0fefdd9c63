/* SPDX-License-Identifier: MIT */
/*
 * stream.c: buffered readers and writers over any fd (ursa/stream.h), and
 * writing to a pipe without SIGPIPE (stream.h), which process.c shares.
 *
 * A reader's buffer holds the bytes [head, tail) of what was read and not
 * yet returned; it is `cap` bytes long, grows by doubling up to the limit on
 * a record, and a record is always returned as one contiguous span of it:
 *
 *	buf  [ consumed | head ... unreturned ... tail | free ]  cap <= limit
 *
 * A record call first looks in [head, tail); only when that holds no whole
 * record does it move the bytes to the front (growing the buffer if they
 * fill it) and read more into the free part.  Nothing is consumed until a
 * call returns it.
 */
#include "stream.h"

#include "io.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100 /* Linux 6.16: no SIGPIPE from this write */
#endif

/* ------------------------------------------------ writing without SIGPIPE */

int ursa__stream_fd_kind(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISSOCK(st.st_mode))
		return URSA__STREAM_FD_SOCKET;
	if (S_ISFIFO(st.st_mode))
		return URSA__STREAM_FD_PIPE;
	return URSA__STREAM_FD_OTHER;
}

/* Whether the kernel takes RWF_NOSIGNAL: 0 not yet known, 1 yes, -1 no
 * (or URSA_DISABLE=rwf_nosignal, which tests the fallback). */
static atomic_int rwf_nosignal;

/*
 * One pwritev2(RWF_NOWAIT) with SIGPIPE blocked in this thread, for kernels
 * without RWF_NOSIGNAL.  A write to a pipe without readers sends SIGPIPE to
 * the writing thread; blocked, it waits as pending, and is taken back here
 * unless one was pending already (which is then not ours to take).  The
 * fiber does not switch between the two mask changes, so the ucontext
 * backend's per-fiber masks see nothing of it.
 */
static ssize_t write_masked(int fd, const struct iovec *iov, int iovcnt)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t n;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	n = pwritev2(fd, iov, iovcnt, -1, RWF_NOWAIT);
	err = errno;
	if (n < 0 && err == EPIPE && !was_pending) {
		const struct timespec zero = {0, 0};

		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return n < 0 ? -err : n;
}

static ssize_t pipe_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int use = atomic_load_explicit(&rwf_nosignal, memory_order_relaxed);
	ssize_t n;
	int err;

	if (use == 0) {
		use = ursa__ring_disabled("rwf_nosignal") ? -1 : 1;
		atomic_store_explicit(&rwf_nosignal, use, memory_order_relaxed);
	}
	if (use > 0) {
		if (!(sqe = ursa__op_sqe(&self, &err)))
			return err;
		io_uring_prep_writev2(sqe, fd, iov, (unsigned)iovcnt, (uint64_t)-1, RWF_NOSIGNAL);
		n = ursa__op_wait(self, sqe);
		if (n != -EOPNOTSUPP)
			return n;
		/* Before 6.16: an unknown RWF flag.  Nothing was written. */
		atomic_store_explicit(&rwf_nosignal, -1, memory_order_relaxed);
	}
	for (;;) {
		/* Wait for room (or for POLLERR: no reader left), then write
		 * what fits without waiting. */
		int rc = ursa_poll(fd, POLLOUT, URSA_FOREVER);

		if (rc < 0)
			return rc;
		n = write_masked(fd, iov, iovcnt);
		if (n != -EAGAIN)
			return n;
	}
}

ssize_t ursa__stream_writev(int fd, int kind, const struct iovec *iov, int iovcnt)
{
	switch (kind) {
	case URSA__STREAM_FD_SOCKET: {
		struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};

		return ursa_sendmsg(fd, &msg, 0); /* adds MSG_NOSIGNAL */
	}
	case URSA__STREAM_FD_PIPE:
		return pipe_writev(fd, iov, iovcnt);
	default:
		return ursa_writev(fd, iov, iovcnt);
	}
}

/* Close an fd a stream owns: through the ring in a task (cancelling what
 * this core still has on it), else close(2). */
static int close_fd(int fd)
{
	if (ursa__sched_self())
		return ursa_close(fd);
	return close(fd) < 0 ? -errno : 0;
}

/* ----------------------------------------------------------------- reader */

/* A reader's buffer starts this small (or at its limit, if smaller) and
 * doubles up to the limit only when a record needs it: a connection holds
 * 16 KiB (what one read of a busy socket usually brings), not its limit. */
#define READER_FIRST_SIZE 16384u

struct ursa_reader {
	int fd;
	uint32_t flags;
	bool eof;      /* fd said 0: nothing more will come */
	int err;       /* fd failed: the error, kept (record calls repeat it) */
	size_t head, tail, cap, limit;
	char *buf;
};

int ursa_reader_create(struct ursa_reader **r, int fd, size_t limit, uint32_t flags)
{
	struct ursa_reader *rd;

	if (!r || fd < 0 || (flags & ~URSA_STREAM_CLOSE_FD))
		return -EINVAL;
	if (limit == 0)
		limit = URSA_STREAM_DEFAULT_SIZE;
	if (limit > SSIZE_MAX) /* a record's length is returned as ssize_t */
		limit = SSIZE_MAX;
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	rd->cap = limit < READER_FIRST_SIZE ? limit : READER_FIRST_SIZE;
	if (!(rd->buf = malloc(rd->cap))) {
		free(rd);
		return -ENOMEM;
	}
	rd->fd = fd;
	rd->flags = flags;
	rd->limit = limit;
	*r = rd;
	return 0;
}

int ursa_reader_destroy(struct ursa_reader *r)
{
	int rc = 0;

	if (!r)
		return 0;
	if (r->flags & URSA_STREAM_CLOSE_FD)
		rc = close_fd(r->fd);
	free(r->buf);
	free(r);
	return rc;
}

size_t ursa_reader_buffered(const struct ursa_reader *r)
{
	return r ? r->tail - r->head : 0;
}

/*
 * Make room to read into: at least one free byte after tail, and room for
 * `want` bytes from head (want <= limit), by moving the unreturned bytes to
 * the front and, if that is not enough, growing the buffer (doubling, up to
 * the limit).  0, or -ENOMEM (the buffer is as it was).
 */
static int make_room(struct ursa_reader *r, size_t want)
{
	size_t have = r->tail - r->head;

	if (want < have + 1)
		want = have + 1;
	if (r->cap - r->head >= want && r->tail < r->cap)
		return 0;
	if (r->head) {
		memmove(r->buf, r->buf + r->head, have);
		r->tail = have;
		r->head = 0;
	}
	if (r->cap < want) {
		size_t ncap = r->cap;
		char *nb;

		while (ncap < want)
			ncap = ncap > r->limit / 2 ? r->limit : ncap * 2;
		if (!(nb = realloc(r->buf, ncap)))
			return -ENOMEM;
		r->buf = nb;
		r->cap = ncap;
	}
	return 0;
}

/* Keep an error of the fd; a cancellation or deadline is not kept. */
static ssize_t reader_note(struct ursa_reader *r, ssize_t n)
{
	if (n == 0)
		r->eof = true;
	else if (n < 0 && n != -ECANCELED && n != -ETIMEDOUT && n != -EPERM)
		r->err = (int)n;
	return n;
}

/*
 * Read once more from fd behind the unreturned bytes, with room for `want`
 * of them.  The bytes read (> 0), 0 at the end of the stream, -EMSGSIZE
 * when the buffer already holds `limit` bytes, or -errno.  The caller
 * makes sure want <= limit.
 */
static ssize_t fill(struct ursa_reader *r, size_t want)
{
	ssize_t n;
	int rc;

	if (r->err)
		return r->err;
	if (r->eof)
		return 0;
	if (r->tail - r->head >= r->limit)
		return -EMSGSIZE;
	if ((rc = make_room(r, want)) < 0)
		return rc;
	n = reader_note(r, ursa_read(r->fd, r->buf + r->tail, r->cap - r->tail));
	if (n > 0)
		r->tail += (size_t)n;
	return n;
}

ssize_t ursa_reader_readuntil(struct ursa_reader *r, const void *delim, size_t delim_len,
                              const char **rec)
{
	size_t scanned = 0; /* bytes from head known to hold no whole delimiter start */

	if (!r || !delim || !rec || delim_len == 0 || delim_len > r->limit)
		return -EINVAL;
	for (;;) {
		size_t have = r->tail - r->head;
		ssize_t n;

		if (have >= delim_len) {
			const char *from = r->buf + r->head + scanned;
			const char *at = memmem(from, have - scanned, delim, delim_len);

			if (at) {
				size_t len = (size_t)(at - (r->buf + r->head)) + delim_len;

				*rec = r->buf + r->head;
				r->head += len;
				return (ssize_t)len;
			}
			/* A delimiter may still start in its last delim_len - 1 bytes. */
			scanned = have - (delim_len - 1);
		}
		/* A record as long as the limit without its delimiter: -EMSGSIZE,
		 * and the bytes stay where ursa_reader_read finds them. */
		n = fill(r, have + 1);
		if (n > 0)
			continue;
		if (n < 0)
			return n;
		/* The end: what is left is the last record, without its delimiter. */
		if (have == 0)
			return 0;
		*rec = r->buf + r->head;
		r->head = r->tail;
		return (ssize_t)have;
	}
}

ssize_t ursa_reader_readline(struct ursa_reader *r, const char **line)
{
	return ursa_reader_readuntil(r, "\n", 1, line);
}

/* Take up to n buffered bytes into buf. */
static size_t take(struct ursa_reader *r, void *buf, size_t n)
{
	size_t have = r->tail - r->head;

	if (n > have)
		n = have;
	memcpy(buf, r->buf + r->head, n);
	r->head += n;
	if (r->head == r->tail)
		r->head = r->tail = 0;
	return n;
}

ssize_t ursa_reader_read(struct ursa_reader *r, void *buf, size_t n)
{
	ssize_t got;

	if (!r || (!buf && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (r->tail > r->head)
		return (ssize_t)take(r, buf, n);
	if (r->err)
		return r->err;
	if (r->eof)
		return 0;
	if (n >= r->cap) /* large reads skip the buffer */
		return reader_note(r, ursa_read(r->fd, buf, n));
	got = fill(r, 1);
	if (got <= 0)
		return got;
	return (ssize_t)take(r, buf, n);
}

ssize_t ursa_reader_readexactly(struct ursa_reader *r, void *buf, size_t n)
{
	size_t got;

	if (!r || (!buf && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n <= r->limit) {
		/* Gather all n in the buffer first: nothing is consumed unless
		 * everything is there, or the stream has ended. */
		while (r->tail - r->head < n) {
			ssize_t k = fill(r, n);

			if (k < 0)
				return k;
			if (k == 0)
				return (ssize_t)take(r, buf, n); /* the short rest, or 0 */
		}
		return (ssize_t)take(r, buf, n);
	}
	got = take(r, buf, n);
	while (got < n && !r->err && !r->eof) {
		ssize_t k = reader_note(r, ursa_read(r->fd, (char *)buf + got, n - got));

		if (k <= 0) {
			if (got == 0)
				return k;
			break;
		}
		got += (size_t)k;
	}
	if (got == 0)
		return r->err ? r->err : 0;
	return (ssize_t)got;
}

ssize_t ursa_reader_peek(const struct ursa_reader *r, const char **data)
{
	if (!r || !data)
		return -EINVAL;
	*data = r->buf + r->head;
	return (ssize_t)(r->tail - r->head);
}

int ursa_reader_consume(struct ursa_reader *r, size_t n)
{
	if (!r || n > r->tail - r->head)
		return -EINVAL;
	r->head += n;
	if (r->head == r->tail)
		r->head = r->tail = 0;
	return 0;
}

ssize_t ursa_reader_fill(struct ursa_reader *r)
{
	if (!r)
		return -EINVAL;
	/* Room for what is there and as much again, as the limit allows. */
	size_t have = r->tail - r->head, want = have < r->limit / 2 ? have * 2 : r->limit;

	return fill(r, want);
}

/* ----------------------------------------------------------------- writer */

struct ursa_writer {
	int fd;
	int kind;      /* URSA__STREAM_FD_* */
	uint32_t flags;
	bool closed;   /* ursa_writer_close has run */
	bool fd_gone;  /* the fd was closed by ursa_writer_close */
	int err;       /* the fd failed: kept */
	size_t head, tail, cap;
	char *buf;
};

int ursa_writer_create(struct ursa_writer **w, int fd, size_t size, uint32_t flags)
{
	struct ursa_writer *wr;
	int kind;

	/* Counts come back as ssize_t: a larger buffer could not be reported
	 * (issue 20.3; and it is allocated up front). */
	if (!w || fd < 0 || (flags & ~URSA_STREAM_CLOSE_FD) || size > SSIZE_MAX)
		return -EINVAL;
	if ((kind = ursa__stream_fd_kind(fd)) < 0)
		return kind;
	if (size == 0)
		size = URSA_STREAM_DEFAULT_SIZE;
	wr = calloc(1, sizeof(*wr));
	if (!wr || !(wr->buf = malloc(size))) {
		free(wr);
		return -ENOMEM;
	}
	wr->fd = fd;
	wr->kind = kind;
	wr->flags = flags;
	wr->cap = size;
	*w = wr;
	return 0;
}

int ursa_writer_destroy(struct ursa_writer *w)
{
	int rc = 0;

	if (!w)
		return 0;
	if ((w->flags & URSA_STREAM_CLOSE_FD) && !w->fd_gone)
		rc = close_fd(w->fd);
	free(w->buf);
	free(w);
	return rc;
}

size_t ursa_writer_buffered(const struct ursa_writer *w)
{
	return w ? w->tail - w->head : 0;
}

/* An fd error is kept; a cancellation or deadline is not. */
static ssize_t writer_fail(struct ursa_writer *w, ssize_t rc)
{
	if (rc == 0)
		rc = -EIO; /* a write of nothing: cannot make progress */
	if (rc != -ECANCELED && rc != -ETIMEDOUT && rc != -EPERM)
		w->err = (int)rc;
	return rc;
}

/*
 * Send the buffer and then the caller's buffers (iov, iovcnt) in as few
 * writes as it takes, until the buffer is empty and what is left of the
 * caller's fits in it; returns the caller's bytes sent (*taken) and 0, or
 * -errno with the buffer's unsent bytes kept.
 */
static int send_through(struct ursa_writer *w, const struct iovec *iov, int iovcnt,
                        size_t *taken, size_t fits)
{
	struct iovec v[64];
	size_t total_left = 0, done = 0;

	for (int i = 0; i < iovcnt; i++)
		total_left += iov[i].iov_len;
	*taken = 0;
	/* Loop while the buffer holds bytes or what is left does not fit. */
	while (w->tail > w->head || total_left - done > fits) {
		int cnt = 0;
		size_t skip = done;
		ssize_t n;

		if (w->tail > w->head)
			v[cnt++] = (struct iovec){w->buf + w->head, w->tail - w->head};
		for (int i = 0; i < iovcnt && cnt < 64; i++) {
			if (skip >= iov[i].iov_len) {
				skip -= iov[i].iov_len;
				continue;
			}
			v[cnt++] = (struct iovec){(char *)iov[i].iov_base + skip, iov[i].iov_len - skip};
			skip = 0;
		}
		n = ursa__stream_writev(w->fd, w->kind, v, cnt);
		if (n <= 0)
			return (int)writer_fail(w, n);
		if (w->tail > w->head) {
			size_t b = w->tail - w->head;

			if ((size_t)n < b) {
				w->head += (size_t)n;
				continue;
			}
			n -= (ssize_t)b;
			w->head = w->tail = 0;
		}
		done += (size_t)n;
		*taken = done;
	}
	return 0;
}

ssize_t ursa_writer_writev(struct ursa_writer *w, const struct iovec *iov, int iovcnt)
{
	size_t total = 0, taken = 0;
	int rc;

	if (!w || iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	if (w->closed)
		return -EPIPE;
	if (w->err)
		return w->err;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (total > SSIZE_MAX)
		return -EINVAL;
	if (total > w->cap - w->tail && w->head > 0) {
		/* Room at the front: move the buffered bytes there first. */
		memmove(w->buf, w->buf + w->head, w->tail - w->head);
		w->tail -= w->head;
		w->head = 0;
	}
	if (total > w->cap - w->tail) {
		/* Does not fit behind what is buffered: send the buffer and as
		 * much of this as needed for the rest to fit an empty buffer. */
		rc = send_through(w, iov, iovcnt, &taken, w->cap);
		if (rc < 0)
			return taken ? (ssize_t)taken : rc;
	}
	/* The rest fits: copy it behind what is buffered. */
	for (int i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len;

		if (taken >= len) {
			taken -= len;
			continue;
		}
		memcpy(w->buf + w->tail, (const char *)iov[i].iov_base + taken, len - taken);
		w->tail += len - taken;
		taken = 0;
	}
	return (ssize_t)total;
}

ssize_t ursa_writer_write(struct ursa_writer *w, const void *buf, size_t n)
{
	struct iovec v = {(void *)buf, n};

	if (!buf && n)
		return -EINVAL;
	return ursa_writer_writev(w, &v, 1);
}

int ursa_writer_flush(struct ursa_writer *w)
{
	size_t taken;

	if (!w)
		return -EINVAL;
	if (w->err)
		return w->err;
	if (w->tail == w->head)
		return 0;
	return send_through(w, NULL, 0, &taken, 0);
}

int ursa_writer_close(struct ursa_writer *w)
{
	int rc, rc2 = 0;

	if (!w)
		return -EINVAL;
	if (w->closed)
		return w->err;
	rc = ursa_writer_flush(w);
	if (rc == -ECANCELED || rc == -ETIMEDOUT)
		return rc; /* not closed: flush again later, or destroy */
	w->closed = true;
	if (w->kind == URSA__STREAM_FD_SOCKET) {
		rc2 = ursa_shutdown(w->fd, SHUT_WR);
		if (rc2 == -ECANCELED || rc2 == -ETIMEDOUT)
			rc2 = shutdown(w->fd, SHUT_WR) < 0 ? -errno : 0; /* never waits */
	} else if (w->flags & URSA_STREAM_CLOSE_FD) {
		rc2 = close_fd(w->fd);
		w->fd_gone = true;
	}
	return rc ? rc : rc2;
}
