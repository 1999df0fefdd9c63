/* SPDX-License-Identifier: MIT */
/*
 * ursa/io.h: files and sockets on the ring.  Every call here is one io_uring
 * operation (or a linked pair) that parks only the calling task, keeps the
 * POSIX shape of the call it replaces, and returns a count, 0 or a negative
 * errno.  docs/io.md names the operation behind each call, the kernel it
 * needs and what happens without it.  Self-contained: include <ursa.h> for
 * everything, or this header alone.
 *
 * Rules common to every blocking call below:
 *   - Call from inside a task; from elsewhere the call returns -EPERM.
 *   - Cancellation (ursa_cancel) makes it return -ECANCELED and a passed
 *     scope deadline -ETIMEDOUT.  An operation in flight is cancelled in the
 *     kernel and its own completion awaited before the call returns; a result
 *     that arrived first wins (bytes moved are returned, an fd made by
 *     open/accept/socket is returned, never leaked).
 *   - An operation cancelled because another task ursa_close()d its fd
 *     returns -EBADF.
 *   - Byte counts above 2^31 - 4096 are clamped, as Linux clamps read(2).
 */
#ifndef URSA_IO_H
#define URSA_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;    /* <sys/stat.h> with _GNU_SOURCE */
struct addrinfo; /* <netdb.h> */
struct open_how; /* <linux/openat2.h> */

/* ------------------------------------------------------------------ files */

/* openat(2) relative to the working directory: the new fd, or -errno. */
URSA_API URSA_NODISCARD int ursa_open(const char *path, int flags, mode_t mode);
/* openat(2): the new fd, or -errno. */
URSA_API URSA_NODISCARD int ursa_openat(int dirfd, const char *path, int flags, mode_t mode);
/*
 * openat2(2) (IORING_OP_OPENAT2, Linux 5.6): the new fd, or -errno.  size is
 * sizeof(*how) as the caller's <linux/openat2.h> has it; the kernel reads
 * that many bytes (extensible-struct rules: -E2BIG for unknown non-zero tail
 * bytes or a size above 4096, -EINVAL below the first version's 24 bytes).
 * how->resolve confines the lookup: with RESOLVE_BENEATH an absolute path,
 * an absolute symbolic link or a ".." that would leave dirfd fails with
 * -EXDEV, however it is spelt; RESOLVE_NO_SYMLINKS / RESOLVE_NO_MAGICLINKS
 * refuse links with -ELOOP; an unknown bit is -EINVAL.  -EAGAIN under
 * RESOLVE_BENEATH or RESOLVE_IN_ROOT: a concurrent rename raced a ".."
 * lookup; retry.  how and path need only live for the call.  Cancellation
 * as for ursa_openat.
 */
URSA_API URSA_NODISCARD int ursa_openat2(int dirfd, const char *path, const struct open_how *how,
                                         size_t size);

/*
 * Close fd: first cancel the operations in flight on it, on every core
 * (they return -EBADF; one that completed first keeps its result), then
 * close it.  Always closes, even in a cancelled task or past a deadline (the
 * call is shielded), so cleanup code may call it freely.  0 or -errno
 * (-EBADF: not open).  An armed receiver (ursa_rx) on any core is reached
 * too: its ursa_rx_recv returns -EBADF.  Blocks the fiber.
 */
URSA_API int ursa_close(int fd);

/* read(2) / pread(2): bytes read, 0 at end of file, or -errno. */
URSA_API URSA_NODISCARD ssize_t ursa_read(int fd, void *buf, size_t n);
URSA_API URSA_NODISCARD ssize_t ursa_pread(int fd, void *buf, size_t n, off_t off);
/*
 * write(2) / pwrite(2): bytes written or -errno.  Like write(2), writing to
 * a socket whose peer is gone raises SIGPIPE: use ursa_send on sockets.
 */
URSA_API URSA_NODISCARD ssize_t ursa_write(int fd, const void *buf, size_t n);
URSA_API URSA_NODISCARD ssize_t ursa_pwrite(int fd, const void *buf, size_t n, off_t off);
/* readv(2), writev(2), preadv(2), pwritev(2).  The iovec array need only
 * live for the call. */
URSA_API URSA_NODISCARD ssize_t ursa_readv(int fd, const struct iovec *iov, int iovcnt);
URSA_API URSA_NODISCARD ssize_t ursa_writev(int fd, const struct iovec *iov, int iovcnt);
URSA_API URSA_NODISCARD ssize_t ursa_preadv(int fd, const struct iovec *iov, int iovcnt, off_t off);
URSA_API URSA_NODISCARD ssize_t ursa_pwritev(int fd, const struct iovec *iov, int iovcnt,
                                             off_t off);
/*
 * preadv2(2), pwritev2(2): flags are RWF_* (RWF_NOWAIT: -EAGAIN instead of
 * waiting; RWF_DSYNC, RWF_HIPRI, ...), plus URSA_RWF_RING; off -1 is the
 * file position.
 *
 * The page-cache fast path: every read and write call above first tries a
 * regular file's data on the worker itself (preadv2/pwritev2 with
 * RWF_NOWAIT, which never blocks) and goes to the ring only for what would
 * block; the result is the same either way.  URSA_RWF_RING skips the try for
 * one call, ursa_fd_inline(fd, URSA_FD_INLINE_OFF) for every call on fd.
 * docs/io.md has the decision table.
 */
#define URSA_RWF_RING 0x40000000 /* straight to the ring, no inline try */
URSA_API URSA_NODISCARD ssize_t ursa_preadv2(int fd, const struct iovec *iov, int iovcnt,
                                             off_t off, int flags);
URSA_API URSA_NODISCARD ssize_t ursa_pwritev2(int fd, const struct iovec *iov, int iovcnt,
                                              off_t off, int flags);
/*
 * Whether reads and writes of fd try the page cache inline first:
 * URSA_FD_INLINE_AUTO (the default: regular files without O_DIRECT are tried,
 * and an fd whose tries keep failing is tried less and less often; setting
 * it also forgets what was learnt) or URSA_FD_INLINE_OFF (always the ring).
 * Process-wide for the fd number, until ursa_close(fd) or an ursa call
 * that makes an fd with this number.  0, -EBADF (fd < 0), -EINVAL (mode).
 * Does not block; callable from any thread.
 */
enum { URSA_FD_INLINE_AUTO, URSA_FD_INLINE_OFF };
URSA_API URSA_NODISCARD int ursa_fd_inline(int fd, int mode);

/*
 * Registered I/O buffers: each core keeps a pool of URSA_IOBUF_COUNT
 * buffers of URSA_IOBUF_SIZE bytes, page aligned (fit for O_DIRECT) and
 * registered with its ring once, so a read or write into one skips the
 * kernel's per-op pinning of the pages (READ_FIXED / WRITE_FIXED; the
 * calls above notice the buffer by its address).  ursa_iobuf_get hands one
 * out from the calling task's core: 0 and *buf, or -EINVAL (size 0 or above
 * URSA_IOBUF_SIZE), -ENOBUFS (all handed out), -ENOMEM, -EPERM (not in a
 * task).  ursa_iobuf_put gives it back, from any thread while the runtime
 * runs: 0, -EALREADY (already given back), -EINVAL (not a pool buffer).
 * Buffers still out when ursa_run returns are freed with their core.
 */
#define URSA_IOBUF_SIZE (64u << 10)
#define URSA_IOBUF_COUNT 32u
URSA_API URSA_NODISCARD int ursa_iobuf_get(void **buf, size_t size);
URSA_API int ursa_iobuf_put(void *buf);

/* fsync(2), fdatasync(2), fallocate(2): 0 or -errno. */
URSA_API URSA_NODISCARD int ursa_fsync(int fd);
URSA_API URSA_NODISCARD int ursa_fdatasync(int fd);
URSA_API URSA_NODISCARD int ursa_fallocate(int fd, int mode, off_t off, off_t len);

/* statx(2): 0 and *st filled, or -errno.  Answered on the worker where the
 * dentry cache can answer without waiting (RESOLVE_CACHED), else on the ring
 * (docs/io.md, "statx"); the result is the same either way. */
URSA_API URSA_NODISCARD int ursa_statx(int dirfd, const char *path, int flags, unsigned mask,
                                       struct statx *st);

/* unlink(2), rmdir(2), rename(2), mkdir(2): 0 or -errno. */
URSA_API URSA_NODISCARD int ursa_unlink(const char *path);
URSA_API URSA_NODISCARD int ursa_rmdir(const char *path);
URSA_API URSA_NODISCARD int ursa_rename(const char *from, const char *to);
URSA_API URSA_NODISCARD int ursa_mkdir(const char *path, mode_t mode);

/*
 * Read the whole file at path.  On success returns 0, *buf receives a
 * malloc'd buffer (free() it) holding *len bytes followed by one NUL byte
 * that *len does not count; on failure returns -errno and writes neither.
 */
URSA_API URSA_NODISCARD int ursa_read_file(const char *path, void **buf, size_t *len);

/*
 * Open path (relative to dirfd, read-only), read n bytes at off and close
 * it, as pread(2) between open(2) and close(2) would: bytes read (0 at end
 * of file), or -errno: the open's (-ENOENT, -EACCES, ...) or the read's
 * (-EISDIR, ...).  Where the kernel has direct descriptors (5.19) the three
 * go to the kernel as one linked chain: one submission, one wake, and no fd
 * is made at all.  Cancellation as for the calls it replaces: bytes read
 * win.
 */
URSA_API URSA_NODISCARD ssize_t ursa_pread_path(int dirfd, const char *path, void *buf, size_t n,
                                                off_t off);

/* Flags for ursa_write_file. */
#define URSA_WRITE_FILE_NOSYNC 0x1u /* skip both fsyncs: atomic for readers, not for crashes */

/*
 * Replace the file at path with len bytes from buf, atomically: the data go
 * to an unnamed file in path's directory (O_TMPFILE; mode of the old file, or
 * 0666 less the umask), which is fsync'd and only then named -- path itself
 * if nothing was there, else a temporary renamed over path -- and then the
 * directory is fsync'd.  A crash or an error leaves the old file or the new
 * one, never a mix, and an unfinished write leaves no file behind (where the
 * filesystem lacks O_TMPFILE, a named temporary path.PID.N.tmp holds the
 * data from the start: docs/io.md).  0 or -errno.  Cancelled or timed out
 * before the commit: -ECANCELED / -ETIMEDOUT, nothing is left and the old
 * file is untouched.  Once the new file is in place the call completes (the
 * directory fsync is shielded) and returns 0.
 */
URSA_API URSA_NODISCARD int ursa_write_file(const char *path, const void *buf, size_t len,
                                            uint32_t flags);

/*
 * Move exactly n bytes, looping over short transfers.  Returns n; or, when
 * end of file (read) or an error stopped it after some bytes, that short
 * count (the bytes are never lost; the next call reports the reason); or 0
 * at end of file / -errno when nothing was moved.  ursa_write_all sends with
 * MSG_NOSIGNAL on sockets (never SIGPIPE) and writes on other fds.
 */
URSA_API URSA_NODISCARD ssize_t ursa_read_full(int fd, void *buf, size_t n);
URSA_API URSA_NODISCARD ssize_t ursa_write_all(int fd, const void *buf, size_t n);

/* ---------------------------------------------------------------- sockets */

/* socket(2): the new fd, or -errno. */
URSA_API URSA_NODISCARD int ursa_socket(int domain, int type, int protocol);

/*
 * accept(2) / accept4(2): the connection's fd, or -errno.
 *
 * Out of fds (-EMFILE, -ENFILE): the call does not return at once (a loop
 * that retries would spin).  It first sheds the connections waiting in the
 * backlog (each is accepted into a reserved spare fd and closed, so its
 * client sees a prompt close rather than a hang), then parks until an fd is
 * closed by ursa_close on this core or a backoff passes (1 ms doubling to
 * 100 ms while the shortage lasts), and then returns -EMFILE / -ENFILE.  The
 * task's other connections are served meanwhile.
 */
URSA_API URSA_NODISCARD int ursa_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
URSA_API URSA_NODISCARD int ursa_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen,
                                         int flags);

/* connect(2): 0 or -errno. */
URSA_API URSA_NODISCARD int ursa_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);

/* recv(2): bytes received, 0 when the peer has shut down, or -errno. */
URSA_API URSA_NODISCARD ssize_t ursa_recv(int fd, void *buf, size_t n, int flags);
/*
 * send(2), always with MSG_NOSIGNAL: a peer that is gone gives -EPIPE or
 * -ECONNRESET, never SIGPIPE.  Bytes sent (possibly short) or -errno.
 */
URSA_API URSA_NODISCARD ssize_t ursa_send(int fd, const void *buf, size_t n, int flags);
/*
 * As ursa_send, zero-copy (IORING_OP_SEND_ZC, 6.0): the kernel sends from
 * buf itself and the call returns once it has let go of buf.  Worth it only
 * for large buffers on a real NIC; on loopback it is slower (docs/io.md has
 * the numbers).  Falls back to ursa_send where the kernel lacks it.
 */
URSA_API URSA_NODISCARD ssize_t ursa_send_zc(int fd, const void *buf, size_t n, int flags);
/* recvmsg(2), sendmsg(2) (with MSG_NOSIGNAL): bytes or -errno. */
URSA_API URSA_NODISCARD ssize_t ursa_recvmsg(int fd, struct msghdr *msg, int flags);
URSA_API URSA_NODISCARD ssize_t ursa_sendmsg(int fd, const struct msghdr *msg, int flags);
/* sendto(2) (with MSG_NOSIGNAL), recvfrom(2): bytes or -errno. */
URSA_API URSA_NODISCARD ssize_t ursa_sendto(int fd, const void *buf, size_t n, int flags,
                                            const struct sockaddr *addr, socklen_t addrlen);
URSA_API URSA_NODISCARD ssize_t ursa_recvfrom(int fd, void *buf, size_t n, int flags,
                                              struct sockaddr *addr, socklen_t *addrlen);
/* shutdown(2): 0 or -errno. */
URSA_API URSA_NODISCARD int ursa_shutdown(int fd, int how);

/* -------------------------------------------------------------- readiness */

/*
 * Wait until fd is ready for one of `events` (poll(2)'s POLLIN, POLLOUT,
 * POLLPRI, POLLRDHUP, ...; IORING_OP_POLL_ADD): for a library that does its
 * own non-blocking reads and writes and only needs to know when to try
 * (include/ursa/adapters/ runs hiredis and libcurl this way).  Level
 * triggered: an fd already ready answers at once.  Returns the ready events
 * (> 0; POLLERR and POLLHUP are reported whether asked for or not), 0 when
 * timeout_ns passed first (as poll(2); URSA_FOREVER: no timeout; 0: look
 * without waiting), or -errno: -EINVAL for a bit that is not a poll event,
 * -EBADF for a bad fd (or one ursa_close'd meanwhile), -ECANCELED, and
 * -ETIMEDOUT when an enclosing scope's deadline passes (the poll is
 * cancelled in the kernel and its completion awaited, as for any call).
 * Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_poll(int fd, uint32_t events, uint64_t timeout_ns);
/* As ursa_poll, until the absolute time deadline_ns (0 when it passes first;
 * a deadline already passed looks without waiting). */
URSA_API URSA_NODISCARD int ursa_poll_until(int fd, uint32_t events, uint64_t deadline_ns);

/* --------------------------------------------------------------- helpers */

/* Flags for ursa_tcp_listen_ex. */
#define URSA_LISTEN_REUSEPORT 0x1u /* SO_REUSEPORT: one listener per core on one port */
#define URSA_LISTEN_V6ONLY 0x2u    /* an IPv6 listener does not take IPv4 */

/*
 * A listening TCP socket on host:port (SO_REUSEADDR set).  host NULL or ""
 * means every address (IPv6 and IPv4 on one dual-stack socket where the
 * kernel has IPv6, else IPv4); a numeric address is used as is, never
 * touching the resolver; a name is resolved on the blocking pool and the
 * first address that binds is used.  port 0 picks a free port.  The fd, or
 * -errno (-EINVAL: port above 65535 or an unknown flag; -ENOENT: no such
 * host).  _ex takes URSA_LISTEN_* flags, and *bound_port (if not NULL)
 * receives the port the socket is bound to, on success: the one the kernel
 * picked when port is 0.
 */
URSA_API URSA_NODISCARD int ursa_tcp_listen(const char *host, unsigned port, int backlog);
URSA_API URSA_NODISCARD int ursa_tcp_listen_ex(const char *host, unsigned port, int backlog,
                                               uint32_t flags, unsigned *bound_port);
/*
 * A TCP connection to host:port: each resolved address is tried in order
 * until one connects.  The fd, or -errno of the last attempt (-ENOENT: no
 * such host).
 */
URSA_API URSA_NODISCARD int ursa_tcp_connect(const char *host, unsigned port);

/*
 * A listening / connected Unix stream socket at path; a path starting with
 * '@' names the abstract namespace.  An existing file at path is not
 * removed (-EADDRINUSE).  The fd, or -errno (-ENAMETOOLONG).
 */
URSA_API URSA_NODISCARD int ursa_unix_listen(const char *path, int backlog);
URSA_API URSA_NODISCARD int ursa_unix_connect(const char *path);

/*
 * getaddrinfo(3) on the blocking pool (numeric hosts are answered at once).
 * 0 and *res (free with freeaddrinfo), or -errno: -ENOENT (no such name),
 * -EAGAIN (temporary failure), -ENOMEM, -EAFNOSUPPORT, -EINVAL (bad service).
 * Cancellation returns at once; the lookup finishes on the pool and is
 * discarded.
 */
URSA_API URSA_NODISCARD int ursa_getaddrinfo(const char *host, const char *service,
                                             const struct addrinfo *hints,
                                             struct addrinfo **res);

/* -------------------------------------------- receiving without a buffer */

/*
 * A buffer group: `count` buffers of `size` bytes that the kernel fills for
 * the receivers opened on it (a provided-buffer ring, 5.19).  A connection
 * holds a buffer only from the moment data arrive until its task has taken
 * them, so thousands of idle connections pin no memory.  A group belongs to
 * the core that made it; tasks of other cores get -EXDEV.
 */
struct ursa_bufgroup; /* opaque */

/*
 * Create a group on the calling task's core.  count is a power of two up to
 * 32768.  0 and *g, or -EINVAL, -ENOMEM, -ENOSPC (no group id left), or the
 * kernel's refusal (-EINVAL/-ENOSYS before 5.19).  Does not block.
 */
URSA_API URSA_NODISCARD int ursa_bufgroup_create(struct ursa_bufgroup **g, unsigned count,
                                                 size_t size);
/* Destroy g: 0, or -EBUSY while receivers are open on it.  A group left
 * behind is freed when the runtime stops.  Does not block. */
URSA_API int ursa_bufgroup_destroy(struct ursa_bufgroup *g);

/* A multishot receiver on one socket fd, drawing from one group. */
struct ursa_rx; /* opaque */

/* Open a receiver on fd (which it does not own).  0 and *rx, or -ENOMEM,
 * -EXDEV (g is another core's).  Does not block. */
URSA_API URSA_NODISCARD int ursa_rx_create(struct ursa_rx **rx, int fd, struct ursa_bufgroup *g);

/*
 * The next data received: returns the byte count and points *data into a
 * buffer of the group, valid until the next ursa_rx_recv or ursa_rx_destroy on
 * rx (which give the buffer back); 0 when the peer has shut down (and at
 * every later call); -errno on a socket error (reported once), -ECANCELED,
 * -ETIMEDOUT (data that arrive meanwhile stay queued for the next call),
 * -EBADF (fd was ursa_close'd).  When the group runs dry the receiver waits
 * for a buffer to come back and does not read meanwhile (back-pressure: the
 * peer's sends stall, nothing is lost).  Blocks the fiber; one task at a
 * time per receiver.
 */
URSA_API URSA_NODISCARD ssize_t ursa_rx_recv(struct ursa_rx *rx, const void **data);

/*
 * Stop receiving and free rx (the fd stays open): the multishot receive is
 * cancelled and its last completion awaited (shielded: cancellation does not
 * interrupt it).  Data received and not yet taken are dropped.  0, or
 * -EBUSY while a task is inside ursa_rx_recv on rx.
 */
URSA_API int ursa_rx_destroy(struct ursa_rx *rx);

#ifdef __cplusplus
}
#endif

#endif /* URSA_IO_H */
