/* SPDX-License-Identifier: MIT */
/*
 * Buffered streams (ursa/stream.h): lines and records split at every size
 * across the reads, readexactly and read, the limit (-EMSGSIZE with nothing
 * lost), the end of the stream (a last line without '\n', then 0), a peer
 * that resets mid-line, cancellation consuming nothing, buffered reads that
 * never switch, and the writer: gathering, writev, flush, close (SHUT_WR on
 * a socket, EOF on a pipe), a reader that has gone (-EPIPE, never SIGPIPE,
 * with and without RWF_NOSIGNAL).  Every test counts fds.
 */
#include "test_io_helpers.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

static struct seen S;

/* A writer task: the bytes of `data` in chunks of sizes from `seed` (1 up
 * to max), with a yield between chunks so the reader sees them split. */
struct feeder {
	int fd;
	const char *data;
	size_t len;
	uint64_t seed;
	size_t max;
	bool reset_at_end; /* SO_LINGER 0 + close: the peer sees ECONNRESET */
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;

	while (off < f->len) {
		size_t n = 1 + (size_t)(rng_next(&f->seed) % f->max);

		if (n > f->len - off)
			n = f->len - off;
		EXPECT(&S, ursa_write_all(f->fd, f->data + off, n) == (ssize_t)n, off);
		off += n;
		ursa_yield();
	}
	if (f->reset_at_end) {
		struct linger lg = {1, 0};

		setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	EXPECT(&S, ursa_close(f->fd) == 0, 0);
	return NULL;
}

static void *lines_main(void *arg)
{
	enum { NLINES = 3000 };
	static char data[NLINES * 64];
	struct feeder f = {.seed = 42, .max = 300};
	struct ursa_reader *r;
	struct ursa_task *t;
	size_t len = 0;
	uint64_t seed = 7;
	int sv[2], i = 0;
	const char *line;
	ssize_t n;

	(void)arg;
	for (int k = 0; k < NLINES; k++) {
		int w = (int)(rng_next(&seed) % 40);

		len += (size_t)sprintf(data + len, "%d:%.*s\n", k, w,
		                       "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq");
	}
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	f.fd = sv[1];
	f.data = data;
	f.len = len;
	EXPECT(&S, ursa_spawn(&t, feed, &f) == 0, 0);
	EXPECT(&S, ursa_reader_create(&r, sv[0], 128, URSA_STREAM_CLOSE_FD) == 0, 0);
	size_t off = 0;
	while ((n = ursa_reader_readline(r, &line)) > 0) {
		EXPECT(&S, off + (size_t)n <= len && memcmp(line, data + off, (size_t)n) == 0, i);
		EXPECT(&S, line[n - 1] == '\n', i);
		off += (size_t)n;
		i++;
	}
	EXPECT(&S, n == 0, n);
	EXPECT(&S, i == NLINES, i);
	EXPECT(&S, off == len, off);
	EXPECT(&S, ursa_reader_readline(r, &line) == 0, 0); /* and again */
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	return NULL;
}

Test(stream, readline_returns_every_line_whole_however_the_bytes_are_split)
{
	int fds = count_fds();

	run_on(1, lines_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *records_main(void *arg)
{
	/* HTTP-like heads ending in \r\n\r\n, each followed by a body whose
	 * length the head gives, read with readexactly. */
	static char data[200 * 160];
	struct feeder f = {.seed = 9, .max = 7};
	struct ursa_reader *r;
	struct ursa_task *t;
	size_t len = 0;
	int sv[2], k = 0;
	const char *rec;
	ssize_t n;

	(void)arg;
	for (int i = 0; i < 200; i++) {
		int blen = i % 50;

		len += (size_t)sprintf(data + len, "GET /%d\r\nLen: %d\r\n\r\n", i, blen);
		for (int j = 0; j < blen; j++)
			data[len++] = (char)('a' + (i + j) % 26);
	}
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	f = (struct feeder){sv[1], data, len, 9, 7, false};
	EXPECT(&S, ursa_spawn(&t, feed, &f) == 0, 0);
	EXPECT(&S, ursa_reader_create(&r, sv[0], 64, 0) == 0, 0);
	while ((n = ursa_reader_readuntil(r, "\r\n\r\n", 4, &rec)) > 0) {
		char body[64];
		int i, blen;

		EXPECT(&S, sscanf(rec, "GET /%d\r\nLen: %d", &i, &blen) == 2 && i == k, k);
		EXPECT(&S, memcmp(rec + n - 4, "\r\n\r\n", 4) == 0, k);
		if (blen) {
			ssize_t b = ursa_reader_readexactly(r, body, (size_t)blen);

			EXPECT(&S, b == blen, b);
			for (int j = 0; j < blen; j++)
				EXPECT(&S, body[j] == (char)('a' + (i + j) % 26), j);
		}
		k++;
	}
	EXPECT(&S, n == 0, n);
	EXPECT(&S, k == 200, k);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	close(sv[0]);
	return NULL;
}

Test(stream, readuntil_finds_a_delimiter_split_across_reads_and_readexactly_follows)
{
	int fds = count_fds();

	run_on(1, records_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *limit_main(void *arg)
{
	struct ursa_reader *r;
	const char *line;
	char buf[256], all[256];
	size_t got = 0;
	int sv[2];
	ssize_t n;

	(void)arg;
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	/* "short\n", then 100 bytes without a newline, then "\ntail" and EOF. */
	memset(buf, 'L', 100);
	EXPECT(&S, write(sv[1], "short\n", 6) == 6, errno);
	EXPECT(&S, write(sv[1], buf, 100) == 100, errno);
	EXPECT(&S, write(sv[1], "\ntail", 5) == 5, errno);
	close(sv[1]);
	EXPECT(&S, ursa_reader_create(&r, sv[0], 32, URSA_STREAM_CLOSE_FD) == 0, 0);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 6 && memcmp(line, "short\n", 6) == 0, n);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == -EMSGSIZE, n);
	/* Nothing was consumed: the same answer again, and the bytes are
	 * there for read (a program skipping the long line, say). */
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == -EMSGSIZE, n);
	EXPECT(&S, ursa_reader_buffered(r) == 32, ursa_reader_buffered(r));
	while ((n = ursa_reader_read(r, all + got, 7)) > 0)
		got += (size_t)n;
	EXPECT(&S, n == 0, n);
	EXPECT(&S, got == 105, got);
	EXPECT(&S, memcmp(all, buf, 100) == 0 && memcmp(all + 100, "\ntail", 5) == 0, 0);
	EXPECT(&S, ursa_reader_readline(r, &line) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	return NULL;
}

Test(stream, a_line_over_the_limit_is_emsgsize_and_loses_no_byte)
{
	int fds = count_fds();

	run_on(1, limit_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *eof_main(void *arg)
{
	struct ursa_reader *r;
	const char *line;
	char buf[16];
	int p[2];
	ssize_t n;

	(void)arg;
	/* A pipe: a last line without '\n', then 0 for every call. */
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	EXPECT(&S, write(p[1], "one\ntwo", 7) == 7, errno);
	close(p[1]);
	EXPECT(&S, ursa_reader_create(&r, p[0], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 4 && memcmp(line, "one\n", 4) == 0, n);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 3 && memcmp(line, "two", 3) == 0, n);
	EXPECT(&S, ursa_reader_readline(r, &line) == 0, 0);
	EXPECT(&S, ursa_reader_readuntil(r, "x", 1, &line) == 0, 0);
	EXPECT(&S, ursa_reader_read(r, buf, sizeof(buf)) == 0, 0);
	EXPECT(&S, ursa_reader_readexactly(r, buf, 4) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);

	/* readexactly at the end: the short rest, then 0. */
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	EXPECT(&S, write(p[1], "abcdefg", 7) == 7, errno);
	close(p[1]);
	EXPECT(&S, ursa_reader_create(&r, p[0], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	n = ursa_reader_readexactly(r, buf, 4);
	EXPECT(&S, n == 4 && memcmp(buf, "abcd", 4) == 0, n);
	n = ursa_reader_readexactly(r, buf, 4);
	EXPECT(&S, n == 3 && memcmp(buf, "efg", 3) == 0, n);
	EXPECT(&S, ursa_reader_readexactly(r, buf, 4) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);

	/* A file, read in lines, and bad arguments. */
	EXPECT(&S, ursa_reader_create(&r, -1, 0, 0) == -EINVAL, 0);
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	EXPECT(&S, ursa_reader_create(&r, p[0], 0, 0x2) == -EINVAL, 0);
	EXPECT(&S, ursa_reader_create(&r, p[0], 8, 0) == 0, 0);
	EXPECT(&S, ursa_reader_readuntil(r, "0123456789", 10, &line) == -EINVAL, 0);
	EXPECT(&S, ursa_reader_readuntil(r, "", 0, &line) == -EINVAL, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	close(p[0]);
	close(p[1]);
	return NULL;
}

Test(stream, end_of_stream_is_a_last_partial_record_then_zero_everywhere)
{
	int fds = count_fds();

	run_on(1, eof_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *reset_main(void *arg)
{
	struct ursa_reader *r;
	struct ursa_task *t;
	struct feeder f;
	const char *line;
	char buf[64];
	int lfd, cfd, sfd;
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	ssize_t n;

	(void)arg;
	/* TCP, so that an abortive close is a reset (Unix sockets have none). */
	lfd = ursa_tcp_listen("127.0.0.1", 0, 8);
	EXPECT(&S, lfd >= 0, lfd);
	getsockname(lfd, (struct sockaddr *)&a, &al);
	cfd = ursa_tcp_connect("127.0.0.1", ntohs(a.sin_port));
	sfd = ursa_accept(lfd, NULL, NULL);
	EXPECT(&S, cfd >= 0 && sfd >= 0, cfd);
	f = (struct feeder){sfd, "full line\npartial li", 20, 3, 5, true};
	EXPECT(&S, ursa_spawn(&t, feed, &f) == 0, 0);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, ursa_reader_create(&r, cfd, 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 10 && memcmp(line, "full line\n", 10) == 0, n);
	n = ursa_reader_readline(r, &line);
	/* The reset is reported; the bytes before it are kept, not lost.  (The
	 * kernel may drop received bytes on a reset before they are read;
	 * what was read is what counts.) */
	EXPECT(&S, n == -ECONNRESET, n);
	EXPECT(&S, ursa_reader_readline(r, &line) == -ECONNRESET, 0); /* kept */
	n = ursa_reader_read(r, buf, sizeof(buf));
	EXPECT(&S, n < 0 || (n <= 10 && memcmp(buf, "partial li", (size_t)n) == 0), n);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	EXPECT(&S, ursa_close(lfd) == 0, 0);
	return NULL;
}

Test(stream, a_peer_that_resets_mid_line_is_econnreset_and_keeps_the_bytes)
{
	int fds = count_fds();

	run_on(1, reset_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

/* Cancellation and deadlines consume nothing; buffered records never
 * switch, even in a cancelled task. */
static atomic_int ticks;
static atomic_bool stop_ticking;

static void *ticker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_ticking)) {
		atomic_fetch_add(&ticks, 1);
		ursa_yield();
	}
	return NULL;
}

static void *cancel_main(void *arg)
{
	struct ursa_reader *r;
	struct ursa_scope s;
	struct ursa_task *tk;
	const char *line;
	char buf[8];
	int sv[2], before;
	ssize_t n;

	(void)arg;
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	EXPECT(&S, ursa_reader_create(&r, sv[0], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	EXPECT(&S, write(sv[1], "half", 4) == 4, errno);
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == -ETIMEDOUT, n);
	(void)ursa_scope_exit(&s);
	ursa_scope_enter(&s, ursa_now() + 10 * MS);
	n = ursa_reader_readexactly(r, buf, 8);
	EXPECT(&S, n == -ETIMEDOUT, n);
	(void)ursa_scope_exit(&s);
	EXPECT(&S, write(sv[1], " and half\nA\nB\nC\n", 16) == 16, errno);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 14 && memcmp(line, "half and half\n", 14) == 0, n);

	/* A, B, C are buffered now: each returns without a switch (the
	 * ticker, which runs whenever this task switches, does not move), and
	 * in a cancelled scope too. */
	EXPECT(&S, ursa_spawn(&tk, ticker, NULL) == 0, 0);
	ursa_yield();
	before = atomic_load(&ticks);
	ursa_scope_enter(&s, URSA_FOREVER);
	ursa_scope_cancel(&s);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 2 && line[0] == 'A', n);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 2 && line[0] == 'B', n);
	n = ursa_reader_read(r, buf, 1);
	EXPECT(&S, n == 1 && buf[0] == 'C', n);
	EXPECT(&S, atomic_load(&ticks) == before, atomic_load(&ticks) - before);
	/* The buffer is empty now: the next read would wait, so it is
	 * cancelled. */
	n = ursa_reader_read(r, buf, 1);
	EXPECT(&S, n == 1 || n == -ECANCELED, n); /* "\n" was buffered too */
	n = ursa_reader_read(r, buf, 1);
	EXPECT(&S, n == -ECANCELED, n);
	(void)ursa_scope_exit(&s);
	atomic_store(&stop_ticking, true);
	EXPECT(&S, ursa_join(tk, NULL) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	close(sv[1]);
	return NULL;
}

Test(stream, cancellation_consumes_nothing_and_buffered_reads_never_switch)
{
	int fds = count_fds();

	run_on(1, cancel_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *big_main(void *arg)
{
	/* readexactly and read larger than the buffer go straight to the
	 * caller's memory. */
	enum { BIG = 1 << 20 };
	char *data = malloc(BIG), *got = malloc(BIG);
	struct feeder f;
	struct ursa_reader *r;
	struct ursa_task *t;
	uint64_t seed = 11;
	int sv[2];
	ssize_t n;
	size_t off;

	(void)arg;
	rng_fill(&seed, data, BIG);
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	f = (struct feeder){sv[1], data, BIG, 5, 70000, false};
	EXPECT(&S, ursa_spawn(&t, feed, &f) == 0, 0);
	EXPECT(&S, ursa_reader_create(&r, sv[0], 1024, URSA_STREAM_CLOSE_FD) == 0, 0);
	n = ursa_reader_readexactly(r, got, 10);
	EXPECT(&S, n == 10, n);
	n = ursa_reader_readexactly(r, got + 10, BIG / 2 - 10);
	EXPECT(&S, n == BIG / 2 - 10, n);
	off = BIG / 2;
	while (off < BIG && (n = ursa_reader_read(r, got + off, 3000)) > 0)
		off += (size_t)n;
	EXPECT(&S, off == BIG, off);
	EXPECT(&S, memcmp(data, got, BIG) == 0, 0);
	EXPECT(&S, ursa_reader_read(r, got, 10) == 0, 0);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	free(data);
	free(got);
	return NULL;
}

Test(stream, reads_larger_than_the_buffer_are_exact)
{
	int fds = count_fds();

	run_on(1, big_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

/* ----------------------------------------------------------------- writer */

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};

static void *sink(void *arg)
{
	struct sink *k = arg;
	ssize_t n;

	while ((n = ursa_read(k->fd, k->buf + k->len, k->cap - k->len)) > 0)
		k->len += (size_t)n;
	EXPECT(&S, n == 0, n);
	return NULL;
}

static void *writer_main(void *arg)
{
	enum { TOTAL = 3 << 20 };
	char *data = malloc(TOTAL);
	struct sink k = {.buf = malloc(TOTAL + 16), .cap = TOTAL + 16};
	struct ursa_writer *w;
	struct ursa_task *t;
	uint64_t seed = 3;
	size_t off = 0;
	int sv[2], i = 0;

	(void)arg;
	rng_fill(&seed, data, TOTAL);
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	k.fd = sv[1];
	EXPECT(&S, ursa_spawn(&t, sink, &k) == 0, 0);
	EXPECT(&S, ursa_writer_create(&w, sv[0], 4096, URSA_STREAM_CLOSE_FD) == 0, 0);
	/* Small writes, big writes and writevs, in order. */
	while (off < TOTAL) {
		size_t n = (size_t)(rng_next(&seed) % (i % 7 == 0 ? 20000 : 300)) + 1;

		if (n > TOTAL - off)
			n = TOTAL - off;
		if (i % 3 == 0 && n > 2) {
			struct iovec v[3] = {{data + off, 1}, {data + off + 1, n / 2 - 1},
			                     {data + off + n / 2, n - n / 2}};

			EXPECT(&S, ursa_writer_writev(w, v, 3) == (ssize_t)n, off);
		} else {
			EXPECT(&S, ursa_writer_write(w, data + off, n) == (ssize_t)n, off);
		}
		off += n;
		i++;
		EXPECT(&S, ursa_writer_buffered(w) <= 4096, ursa_writer_buffered(w));
	}
	EXPECT(&S, ursa_writer_flush(w) == 0, 0);
	EXPECT(&S, ursa_writer_buffered(w) == 0, 0);
	EXPECT(&S, ursa_writer_write(w, "end", 3) == 3, 0);
	/* close: flush and SHUT_WR; the sink sees the end and the socket
	 * still works the other way. */
	EXPECT(&S, ursa_writer_close(w) == 0, 0);
	EXPECT(&S, ursa_writer_write(w, "x", 1) == -EPIPE, 0);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, k.len == TOTAL + 3, k.len);
	EXPECT(&S, memcmp(k.buf, data, TOTAL) == 0 && memcmp(k.buf + TOTAL, "end", 3) == 0, 0);
	EXPECT(&S, ursa_send(sv[1], "back", 4, 0) == 4, 0);
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0); /* closes sv[0] */
	close(sv[1]);
	free(data);
	free(k.buf);
	return NULL;
}

Test(stream, writer_gathers_writes_and_writevs_in_order_and_close_is_shut_wr)
{
	int fds = count_fds();

	run_on(1, writer_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *epipe_main(void *arg)
{
	struct ursa_writer *w;
	char big[100000];
	int p[2], sv[2];
	ssize_t n;

	(void)arg;
	memset(big, 'p', sizeof(big));
	/* A pipe whose reader has gone: -EPIPE, and the process lives. */
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	close(p[0]);
	EXPECT(&S, ursa_writer_create(&w, p[1], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	EXPECT(&S, ursa_writer_write(w, "hello", 5) == 5, 0); /* buffered */
	EXPECT(&S, ursa_writer_flush(w) == -EPIPE, 0);
	EXPECT(&S, ursa_writer_write(w, "x", 1) == -EPIPE, 0); /* kept */
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0);
	/* A reader that goes away while the writer is blocked on a full pipe. */
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	EXPECT(&S, ursa_writer_create(&w, p[1], 4096, URSA_STREAM_CLOSE_FD) == 0, 0);
	{
		struct ursa_scope s;

		ursa_scope_enter(&s, ursa_now() + 20 * MS);
		n = ursa_writer_write(w, big, sizeof(big));
		(void)ursa_scope_exit(&s);
		/* a pipe holds 64 KiB: some of it went, then the deadline */
		EXPECT(&S, n > 0 && n < (ssize_t)sizeof(big), n);
	}
	close(p[0]);
	n = ursa_writer_write(w, big, sizeof(big));
	EXPECT(&S, n == -EPIPE, n);
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0);
	/* A socket whose peer has gone. */
	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	close(sv[1]);
	EXPECT(&S, ursa_writer_create(&w, sv[0], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	EXPECT(&S, ursa_writer_write(w, "x", 1) == 1, 0);
	EXPECT(&S, ursa_writer_close(w) == -EPIPE, 0);
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0);
	return NULL;
}

Test(stream, a_writer_whose_reader_has_gone_gets_epipe_and_no_sigpipe)
{
	int fds = count_fds();

	/* The default disposition: a SIGPIPE would kill the test. */
	signal(SIGPIPE, SIG_DFL);
	run_on(1, epipe_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *pipe_close_main(void *arg)
{
	struct ursa_writer *w;
	struct ursa_reader *r;
	const char *line;
	int p[2];
	ssize_t n;

	(void)arg;
	/* Writer close on a pipe it owns: the reader sees the end. */
	EXPECT(&S, pipe2(p, O_CLOEXEC) == 0, errno);
	EXPECT(&S, ursa_writer_create(&w, p[1], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	EXPECT(&S, ursa_reader_create(&r, p[0], 0, URSA_STREAM_CLOSE_FD) == 0, 0);
	EXPECT(&S, ursa_writer_write(w, "a\nb\n", 4) == 4, 0);
	EXPECT(&S, ursa_writer_close(w) == 0, 0);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 2 && line[0] == 'a', n);
	n = ursa_reader_readline(r, &line);
	EXPECT(&S, n == 2 && line[0] == 'b', n);
	EXPECT(&S, ursa_reader_readline(r, &line) == 0, 0);
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0); /* already closed: no double close */
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	EXPECT(&S, ursa_writer_create(&w, -1, 0, 0) == -EINVAL, 0);
	EXPECT(&S, ursa_writer_create(&w, 12345, 0, 0) == -EBADF, 0);
	return NULL;
}

Test(stream, writer_close_on_an_owned_pipe_is_the_readers_end)
{
	int fds = count_fds();

	run_on(1, pipe_close_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}
