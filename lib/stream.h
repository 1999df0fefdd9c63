/* SPDX-License-Identifier: MIT */
/*
 * stream.h: what stream.c shares with process.c: writing to an fd of any
 * kind without SIGPIPE.
 */
#ifndef URSA_STREAM_INTERNAL_H
#define URSA_STREAM_INTERNAL_H

#include "ursa.h"

/* What an fd is, for how to write to it without raising SIGPIPE. */
enum {
	URSA__STREAM_FD_OTHER = 0, /* files, terminals, devices: plain writes */
	URSA__STREAM_FD_SOCKET,    /* sendmsg with MSG_NOSIGNAL */
	URSA__STREAM_FD_PIPE,      /* RWF_NOSIGNAL, or the masked fallback */
};

/* The kind of fd (fstat), or -errno. */
int ursa__stream_fd_kind(int fd);

/*
 * One write of the buffers of iov to fd of the given kind: bytes written
 * (possibly short), or -errno; a reader that has gone is -EPIPE on every
 * kind, never SIGPIPE.  Blocks the fiber.
 */
ssize_t ursa__stream_writev(int fd, int kind, const struct iovec *iov, int iovcnt);

#endif /* URSA_STREAM_INTERNAL_H */
