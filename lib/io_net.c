/* SPDX-License-Identifier: MIT */
/*
 * io_net.c: sockets on the ring: socket, accept (with the fd-shortage
 * policy), connect, send and receive in their plain, message and address
 * forms, zero-copy send, shutdown.
 *
 * Out of fds (EMFILE/ENFILE), an accept loop that simply retries would spin:
 * the kernel answers each retry at once (docs/io.md has the rate).  So
 * ursa_accept, on that error, sheds the backlog through a spare fd kept for
 * the purpose (libuv's trick), then parks the task until ursa_close frees an
 * fd on this core or a backoff passes, and only then returns the error.
 * Everything else on the core runs meanwhile.
 */
#include "io.h"
#include "io_inline.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* IORING_ACCEPT_DONTWAIT (6.10, sqe->ioprio): fail with -EAGAIN instead of
 * waiting when the backlog is empty.  liburing 2.3's headers predate it. */
#ifndef IORING_ACCEPT_DONTWAIT
#define IORING_ACCEPT_DONTWAIT (1U << 1)
#endif

#define EMFILE_BACKOFF_MIN_NS 1000000ull   /* 1 ms */
#define EMFILE_BACKOFF_MAX_NS 100000000ull /* 100 ms */
#define SHED_MAX 64                        /* connections shed per shortage round */

int ursa_socket(int domain, int type, int protocol)
{
	struct ursa_task *self = ursa__sched_self();
	struct io_uring_sqe *sqe;
	int err, fd;

	if (self && !self->core->ring.caps.socket) {
		/* Before 5.19: socket(2) never blocks, so make it here. */
		if ((err = ursa__scope_check(self, NULL)))
			return err;
		fd = socket(domain, type, protocol);
		if (fd < 0)
			return -errno;
		ursa__io_inline_forget(fd);
		return fd;
	}
	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_socket(sqe, domain, type, protocol, 0);
	fd = ursa__op_wait(self, sqe);
	/* The number may have been a file's: forget its fast-path hint. */
	if (fd >= 0)
		ursa__io_inline_forget(fd);
	return fd;
}

/* ------------------------------------------------------------------ accept */

/* Park for backoff_ns, or until an fd is freed on this core.  0, or the
 * cancellation / deadline error. */
static int emfile_park(struct ursa_task *self, struct ursa__io_core *io, uint64_t backoff_ns)
{
	struct __kernel_timespec ts = {(long long)(backoff_ns / 1000000000u),
	                               (long long)(backoff_ns % 1000000000u)};
	struct ursa__io_fd_wait w;
	struct io_uring_sqe *sqe;
	struct ursa__op op;
	int rc;

	if (!(sqe = ursa__op_sqe(&self, &rc)))
		return rc;
	io_uring_prep_timeout(sqe, &ts, 0, 0);
	w.op = &op;
	ursa__list_push(&io->fd_waiters, &w.link);
	rc = ursa__op_wait_on(self, &op, sqe);
	ursa__list_unlink(&w.link); /* harmless if fd_freed took it already */
	return rc == -ETIME ? 0 : rc;
}

/* The spare fd that makes shedding possible when no other fd is left. */
static void reserve_fd(struct ursa__io_core *io)
{
	if (io->reserve_fd < 0)
		io->reserve_fd = open("/", O_PATH | O_CLOEXEC);
}

/*
 * Accept and close what waits in lfd's backlog, using the spare fd's slot,
 * so that clients see a prompt close instead of a connection that hangs
 * until they time out.  Needs IORING_ACCEPT_DONTWAIT (6.10); without it the
 * first accept fails with -EINVAL and nothing is shed.
 */
static void shed(struct ursa_task *self, struct ursa__io_core *io, int lfd)
{
	if (io->reserve_fd < 0)
		return;
	close(io->reserve_fd); /* an O_PATH fd: nothing to flush, never blocks */
	io->reserve_fd = -1;
	for (int i = 0; i < SHED_MAX; i++) {
		struct io_uring_sqe *sqe;
		int err, fd;

		if (!(sqe = ursa__op_sqe(&self, &err)))
			break;
		io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
		sqe->ioprio |= IORING_ACCEPT_DONTWAIT;
		fd = ursa__op_wait(self, sqe);
		if (fd < 0)
			break; /* -EAGAIN: the backlog is empty */
		(void)ursa__io_close_fresh(self, fd);
	}
	reserve_fd(io); /* may fail while fds are short: retried next accept */
}

static int fd_shortage(struct ursa_task *self, int lfd, int err)
{
	struct ursa__io_core *io = ursa__io_core(self->core);
	uint64_t backoff;
	int rc;

	if (!io) {
		/* No memory for the state: still never return at once. */
		rc = ursa_sleep(EMFILE_BACKOFF_MAX_NS);
		return rc ? rc : err;
	}
	shed(self, io, lfd);
	backoff = io->emfile_backoff_ns ? io->emfile_backoff_ns * 2 : EMFILE_BACKOFF_MIN_NS;
	if (backoff > EMFILE_BACKOFF_MAX_NS)
		backoff = EMFILE_BACKOFF_MAX_NS;
	io->emfile_backoff_ns = backoff;
	rc = emfile_park(self, io, backoff);
	return rc ? rc : err;
}

int ursa_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct ursa_task *self;
	struct ursa__io_core *io;
	struct io_uring_sqe *sqe;
	int err, rc;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	/* The spare must exist before a shortage: then it cannot be made. */
	if ((io = ursa__io_core(self->core)))
		reserve_fd(io);
	io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
	/* A cancelled accept whose CQE carries an fd returns it: the result
	 * wins in ursa__op_wait, so it is never leaked. */
	rc = ursa__op_wait(self, sqe);
	if (rc == -EMFILE || rc == -ENFILE)
		return fd_shortage(self, fd, rc);
	if (rc >= 0 && io)
		io->emfile_backoff_ns = 0;
	if (rc >= 0)
		ursa__io_inline_forget(rc);
	return rc;
}

int ursa_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	return ursa_accept4(fd, addr, addrlen, 0);
}

/* ------------------------------------------------------ connect, transfers */

int ursa_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_connect(sqe, fd, addr, addrlen);
	return ursa__op_wait(self, sqe);
}

ssize_t ursa_recv(int fd, void *buf, size_t n, int flags)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_recv(sqe, fd, buf, ursa__io_len(n), flags);
	return ursa__op_wait(self, sqe);
}

ssize_t ursa_send(int fd, const void *buf, size_t n, int flags)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_send(sqe, fd, buf, ursa__io_len(n), flags | MSG_NOSIGNAL);
	return ursa__op_wait(self, sqe);
}

ssize_t ursa_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags);
	return ursa__op_wait(self, sqe);
}

ssize_t ursa_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)(flags | MSG_NOSIGNAL));
	return ursa__op_wait(self, sqe);
}

ssize_t ursa_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                    socklen_t addrlen)
{
	struct iovec iov = {(void *)buf, ursa__io_len(n)};
	struct msghdr msg = {.msg_name = (void *)addr, .msg_namelen = addrlen,
	                     .msg_iov = &iov, .msg_iovlen = 1};

	if (!addr)
		return ursa_send(fd, buf, n, flags);
	return ursa_sendmsg(fd, &msg, flags);
}

ssize_t ursa_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                      socklen_t *addrlen)
{
	struct iovec iov = {buf, ursa__io_len(n)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t r;

	if (!addr)
		return ursa_recv(fd, buf, n, flags);
	if (!addrlen)
		return -EINVAL;
	msg.msg_name = addr;
	msg.msg_namelen = *addrlen;
	r = ursa_recvmsg(fd, &msg, flags);
	if (r >= 0)
		*addrlen = msg.msg_namelen;
	return r;
}

int ursa_shutdown(int fd, int how)
{
	struct ursa_task *self;
	struct io_uring_sqe *sqe;
	int err;

	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_shutdown(sqe, fd, how);
	return ursa__op_wait(self, sqe);
}

/* ---------------------------------------------------------- zero-copy send */

/*
 * SEND_ZC posts two CQEs: the result (with F_MORE when a notification will
 * follow) and, once the kernel no longer needs the buffer, a notification
 * (F_NOTIF).  The op record keeps the first and returns after the second
 * (lib/op.c), so buf is not reused while the kernel may still read it; a
 * cancellation that comes after the result stops nothing and waits too.
 */
ssize_t ursa_send_zc(int fd, const void *buf, size_t n, int flags)
{
	struct ursa_task *self = ursa__sched_self();
	struct io_uring_sqe *sqe;
	int err, rc;

	if (self && !self->core->ring.caps.send_zc)
		return ursa_send(fd, buf, n, flags); /* before 6.0 */
	if (!(sqe = ursa__op_sqe(&self, &err)))
		return err;
	io_uring_prep_send_zc(sqe, fd, buf, ursa__io_len(n), flags | MSG_NOSIGNAL, 0);
	rc = ursa__op_wait(self, sqe);
	/* Sockets that cannot send from user pages (Unix, for one). */
	if (rc == -EOPNOTSUPP)
		return ursa_send(fd, buf, n, flags);
	return rc;
}
