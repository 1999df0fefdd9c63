/* SPDX-License-Identifier: MIT */
/*
 * ursa/stream.h: buffered streams over any fd -- a socket, a pipe, a file
 * (asyncio's StreamReader and StreamWriter).  A reader reads lines, records
 * ending in a delimiter, exactly n bytes or whatever is there; a writer
 * gathers small writes into one send.  Everything is on the ring, and a
 * read the reader's buffer already holds returns without a switch.
 * docs/io.md, "Streams", has the rules in full.
 *
 * One rule for the end of the stream: a call that returns a count returns 0
 * once the stream has ended and everything before the end has been
 * returned.  Nothing delivered is lost: a call stopped by an error, a
 * cancellation or an over-long record leaves the bytes it had not returned
 * in the buffer, where the next call (ursa_reader_read, say) finds them.
 *
 * A reader or a writer is used by one task at a time; a reader and a writer
 * on the same socket may be used by two tasks at once.
 */
#ifndef URSA_STREAM_H
#define URSA_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags for ursa_reader_create and ursa_writer_create. */
#define URSA_STREAM_CLOSE_FD 0x1u /* the stream owns fd: destroy closes it (and a
                                     writer's close closes a non-socket fd) */

/* The limit and buffer size when 0 is passed: asyncio's 64 KiB. */
#define URSA_STREAM_DEFAULT_SIZE (64u * 1024)

/* ----------------------------------------------------------------- reader */

struct ursa_reader; /* opaque */

/*
 * A reader on fd whose buffer grows as records need, up to `limit` bytes (0:
 * URSA_STREAM_DEFAULT_SIZE; above SSIZE_MAX: SSIZE_MAX; it starts at 16 KiB
 * or the limit if smaller):
 * the limit is the longest line or record it returns.  flags:
 * URSA_STREAM_CLOSE_FD or 0 (-EINVAL for other bits, or a negative fd).
 * 0 and *r, or -ENOMEM.  Does not block.
 */
URSA_API URSA_NODISCARD int ursa_reader_create(struct ursa_reader **r, int fd, size_t limit,
                                               uint32_t flags);

/*
 * The next line, '\n' included: its length, with *line pointing at it in the
 * reader's buffer (valid until the next call on r).  At the end of the
 * stream a last line without '\n' is returned as it is, then 0.
 * -EMSGSIZE when no '\n' comes within the limit: nothing is consumed (read
 * the bytes with ursa_reader_read to skip them, or give up); -errno from
 * the fd (-ECONNRESET, ...) once the bytes before it are used up by
 * record calls the error repeats, while ursa_reader_read still returns what
 * is buffered; -ECANCELED, -ETIMEDOUT (nothing consumed).  Blocks the fiber
 * only when the buffer holds no whole line.
 */
URSA_API URSA_NODISCARD ssize_t ursa_reader_readline(struct ursa_reader *r, const char **line);

/*
 * As ursa_reader_readline with any delimiter of delim_len bytes (1 up to
 * the limit; -EINVAL otherwise): the record up to and including the
 * delimiter.
 */
URSA_API URSA_NODISCARD ssize_t ursa_reader_readuntil(struct ursa_reader *r, const void *delim,
                                                      size_t delim_len, const char **rec);

/*
 * Exactly n bytes into buf: n; or, when the stream ended first, the short
 * count of what there was (then 0); 0 at the end.  With n up to the limit
 * the bytes are gathered in the buffer and consumed only once all are
 * there, so an error or a cancellation consumes nothing (-errno, the bytes
 * stay).  A larger n is read straight into buf: an error or a cancellation
 * after some bytes returns that short count (the next call says why).
 * Blocks the fiber.
 */
URSA_API URSA_NODISCARD ssize_t ursa_reader_readexactly(struct ursa_reader *r, void *buf,
                                                        size_t n);

/*
 * Up to n bytes into buf: what the buffer holds (without a switch), else one
 * read from fd (straight into buf when n is at least the buffer's size).
 * The count, 0 at the end (and for n 0), or -errno.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD ssize_t ursa_reader_read(struct ursa_reader *r, void *buf, size_t n);

/* The bytes buffered and not yet returned.  Does not block. */
URSA_API size_t ursa_reader_buffered(const struct ursa_reader *r);

/*
 * For a parser that works on the bytes as they come (a protocol with its
 * own framing, such as RESP or HTTP), Go's bufio Peek and Discard:
 * ursa_reader_peek points *data at the buffered bytes and returns how many
 * (valid until the next call that reads or consumes); ursa_reader_consume
 * drops the first n of them (-EINVAL for more than are buffered);
 * ursa_reader_fill reads once more from fd behind them, growing the buffer
 * up to the limit: the bytes added, 0 at the end of the stream, -EMSGSIZE
 * when the limit is already buffered, or -errno as ursa_reader_read.  Only
 * fill blocks the fiber.
 */
URSA_API URSA_NODISCARD ssize_t ursa_reader_peek(const struct ursa_reader *r, const char **data);
URSA_API int ursa_reader_consume(struct ursa_reader *r, size_t n);
URSA_API URSA_NODISCARD ssize_t ursa_reader_fill(struct ursa_reader *r);

/* Free r, closing fd if r owns it (buffered bytes are dropped).  0, or the
 * close's -errno.  Does not block. */
URSA_API int ursa_reader_destroy(struct ursa_reader *r);

/* ----------------------------------------------------------------- writer */

struct ursa_writer; /* opaque */

/*
 * A writer on fd with a buffer of `size` bytes (0: URSA_STREAM_DEFAULT_SIZE;
 * allocated now; above SSIZE_MAX: -EINVAL).
 * Sockets are written with MSG_NOSIGNAL and pipes without SIGPIPE (a
 * closed reader is -EPIPE, never a signal); other fds with plain writes.
 * flags: URSA_STREAM_CLOSE_FD or 0.  0 and *w, -EINVAL, -EBADF (fstat
 * failed), -ENOMEM.  Does not block.
 */
URSA_API URSA_NODISCARD int ursa_writer_create(struct ursa_writer **w, int fd, size_t size,
                                               uint32_t flags);

/*
 * Buffer n bytes; when they do not fit, send the buffer and the bytes
 * together (one writev) until what is left fits.  n once every byte is
 * buffered or sent; or a short count when an error or a cancellation
 * stopped it after taking some (the next call says why); or -errno when it
 * took none.  An error of the fd (-EPIPE, -ECONNRESET) is kept: every later
 * call returns it.  Blocks the fiber only when the buffer is full.
 */
URSA_API URSA_NODISCARD ssize_t ursa_writer_write(struct ursa_writer *w, const void *buf,
                                                  size_t n);
/* As ursa_writer_write for the iovcnt buffers of iov, in order. */
URSA_API URSA_NODISCARD ssize_t ursa_writer_writev(struct ursa_writer *w, const struct iovec *iov,
                                                   int iovcnt);

/*
 * Send everything buffered (asyncio's drain): 0, or -errno.  A cancellation
 * keeps what was not sent buffered for the next flush.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_writer_flush(struct ursa_writer *w);

/*
 * Flush, then end the stream for the reader at the other end: a socket is
 * shut down for writing (SHUT_WR: the peer reads 0, and may still send); a
 * pipe or file the writer owns (URSA_STREAM_CLOSE_FD) is closed.  0 or the
 * first -errno; writes after it are -EPIPE.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_writer_close(struct ursa_writer *w);

/* The bytes buffered and not yet sent.  Does not block. */
URSA_API size_t ursa_writer_buffered(const struct ursa_writer *w);

/* Free w, closing fd if w owns it and ursa_writer_close has not.  Bytes
 * still buffered are dropped: flush or close first.  0, or the close's
 * -errno.  Does not block. */
URSA_API int ursa_writer_destroy(struct ursa_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* URSA_STREAM_H */
