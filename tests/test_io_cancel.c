/* SPDX-License-Identifier: MIT */
/*
 * Cancellation and deadlines against file and socket ops: the op's own CQE
 * is awaited, a result that arrived first wins (bytes are returned, an fd
 * is returned and never leaked), ursa_close cancels what is queued on its fd
 * and closes even in a cancelled task.  The races run thousands of times;
 * the builds run them under ASan, which catches a CQE written into a stack
 * that has moved on.
 */
#include "test_io_helpers.h"

#include <linux/openat2.h>
#include <stdatomic.h>

/* struct seen, EXPECT, JOIN_OK, JOIN_ANY and ASSERT_SEEN: tests/helpers.h */

static struct seen S;

/* --------------------------------------------- recv: no byte is ever lost */

#define RECV_ROUNDS 3000
#define MSG 8

struct rrace {
	int sv[2];
	unsigned char sent[RECV_ROUNDS * MSG];
	unsigned char got[RECV_ROUNDS * MSG];
	size_t ngot;
	int n_data, n_cancel, n_data_after_cancel;
	ssize_t r;
};

static void *rrace_reader(void *arg)
{
	struct rrace *x = arg;
	unsigned char buf[64]; /* on this fiber's stack: ASan guards it */

	x->r = ursa_recv(x->sv[0], buf, sizeof(buf), 0);
	if (x->r > 0) {
		memcpy(x->got + x->ngot, buf, (size_t)x->r);
		x->ngot += (size_t)x->r;
	}
	return NULL;
}

static void *main_rrace(void *arg)
{
	struct rrace *x = arg;
	unsigned char buf[64];

	for (int i = 0; i < RECV_ROUNDS; i++) {
		unsigned core = (unsigned)(i / 4) % ursa_ncores();
		struct ursa_task *t;
		int k = i % 4, joined;
		ssize_t r;

		x->r = 1;
		EXPECT(&S, ursa_spawn_on(&t, core, rrace_reader, x) == 0, i);
		/* Data and cancellation in either order, with 0..3 yields of
		 * slack: the data may land before the recv is submitted, with
		 * the cancel, or after it. */
		for (int y = 0; y < k; y++)
			ursa_yield();
		if (i & 1) {
			r = ursa_send(x->sv[1], x->sent + i * MSG, MSG, 0);
			(void)ursa_cancel(t);
		} else {
			(void)ursa_cancel(t);
			r = ursa_send(x->sv[1], x->sent + i * MSG, MSG, 0);
		}
		EXPECT(&S, r == MSG, r);
		joined = ursa_join(t, NULL);
		EXPECT(&S, x->r > 0 || x->r == -ECANCELED, x->r);
		if (x->r > 0) {
			x->n_data++;
			if (joined == -ECANCELED)
				x->n_data_after_cancel++;
		} else {
			x->n_cancel++;
		}
	}
	/* What no reader took is still in the socket, in order. */
	EXPECT(&S, ursa_shutdown(x->sv[1], SHUT_WR) == 0, 0);
	for (;;) {
		ssize_t r = ursa_recv(x->sv[0], buf, sizeof(buf), 0);

		if (r <= 0)
			break;
		memcpy(x->got + x->ngot, buf, (size_t)r);
		x->ngot += (size_t)r;
	}
	return NULL;
}

static void recv_race(unsigned cores)
{
	struct rrace *x = calloc(1, sizeof(*x));
	uint64_t seed = 12345;
	int fds = count_fds();

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x->sv), 0);
	rng_fill(&seed, x->sent, sizeof(x->sent));
	run_on(cores, main_rrace, x);
	close(x->sv[0]);
	close(x->sv[1]);
	ASSERT_SEEN(&S);
	cr_assert_eq(x->ngot, sizeof(x->sent), "bytes lost or invented: %zu of %zu", x->ngot,
	             sizeof(x->sent));
	cr_assert(memcmp(x->got, x->sent, sizeof(x->sent)) == 0, "bytes reordered");
	/* Both outcomes occurred, and data won over a cancel at least once. */
	cr_assert_gt(x->n_cancel, 0);
	cr_assert_gt(x->n_data_after_cancel, 0);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(x);
}

Test(io_cancel, recv_cancel_race_loses_no_byte_one_core, .timeout = 60)
{
	recv_race(1);
}

Test(io_cancel, recv_cancel_race_loses_no_byte_across_cores, .timeout = 60)
{
	recv_race(2);
}

/* ---------------------- accept, open, openat2, socket: the fd result wins */

#define FD_ROUNDS 2000

struct fdrace {
	int lfd;
	char path[300];
	char dir[256];
	int dirfd; /* the scratch directory, for openat2 */
	int kind;  /* 0 accept, 1 open, 2 socket, 3 openat2 */
	int variant;
	int fd;
	int n_fd, n_cancel, n_fd_after_cancel, accepted_later;
};

static void *fd_taker(void *arg)
{
	struct fdrace *x = arg;

	switch (x->kind) {
	case 0:
		x->fd = ursa_accept(x->lfd, NULL, NULL);
		break;
	case 1:
		/* O_CREAT sends the open to the kernel's io-wq, where a cancel
		 * may find it running (-EALREADY) and the fd still comes; a
		 * plain open completes inline. */
		if (x->variant & 2)
			x->fd = ursa_open(x->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		else
			x->fd = ursa_open(x->path, O_RDONLY | O_CLOEXEC, 0);
		break;
	case 3: {
		/* Confined to the directory; O_CREAT as above. */
		struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};

		if (x->variant & 2) {
			how.flags = O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC;
			how.mode = 0600;
		}
		x->fd = ursa_openat2(x->dirfd, "f", &how, sizeof(how));
		break;
	}
	default:
		x->fd = ursa_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		break;
	}
	/* Whatever the outcome, the fd is ours to close: never leaked. */
	if (x->fd >= 0)
		EXPECT(&S, ursa_close(x->fd) == 0, x->fd);
	return NULL;
}

static int connect_lo(int fd, unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	return connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS ? 0 : -1;
}

static void *main_fdrace(void *arg)
{
	struct fdrace *x = arg;
	int clients[FD_ROUNDS];
	unsigned port = 0;

	if (x->kind == 0) {
		x->lfd = ursa_tcp_listen("127.0.0.1", 0, FD_ROUNDS);
		EXPECT(&S, x->lfd >= 0, x->lfd);
		port = local_port(x->lfd);
	}
	for (int i = 0; i < FD_ROUNDS; i++) {
		struct ursa_task *t;
		int joined;

		clients[i] = -1;
		if (x->kind == 0)
			clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		x->fd = -1000;
		x->variant = i;
		/* Half the time the taker runs on the other core: the cancel
		 * then races its op for real. */
		EXPECT(&S, ursa_spawn_on(&t, (unsigned)(i & 1) % ursa_ncores(), fd_taker, x) == 0,
		       i);
		for (int y = 0; y < (i >> 1) % 3; y++)
			ursa_yield();
		if ((i >> 1) % 8 == 7)
			nap(20000);
		/* The connection arrives just before or just after the cancel
		 * (a loopback connect completes inside connect(2)). */
		if (x->kind == 0 && (i & 4))
			EXPECT(&S, connect_lo(clients[i], port) == 0, errno);
		(void)ursa_cancel(t);
		if (x->kind == 0 && !(i & 4))
			EXPECT(&S, connect_lo(clients[i], port) == 0, errno);
		joined = ursa_join(t, NULL);
		EXPECT(&S, x->fd >= 0 || x->fd == -ECANCELED, x->fd);
		if (x->fd >= 0) {
			x->n_fd++;
			if (joined == -ECANCELED)
				x->n_fd_after_cancel++;
		} else {
			x->n_cancel++;
		}
	}
	if (x->kind == 0) {
		/* The connections no cancelled accept took wait in the backlog. */
		for (int i = 0; i < x->n_cancel; i++) {
			struct ursa_scope s;
			int fd;

			ursa_scope_enter(&s, ursa_now() + 2000 * MS);
			fd = ursa_accept(x->lfd, NULL, NULL);
			(void)ursa_scope_exit(&s);
			EXPECT(&S, fd >= 0, fd);
			if (fd >= 0) {
				x->accepted_later++;
				EXPECT(&S, ursa_close(fd) == 0, fd);
			}
		}
		for (int i = 0; i < FD_ROUNDS; i++)
			EXPECT(&S, clients[i] < 0 || ursa_close(clients[i]) == 0, clients[i]);
		EXPECT(&S, ursa_close(x->lfd) == 0, x->lfd);
	}
	return NULL;
}

static void fd_race(int kind)
{
	struct fdrace *x = calloc(1, sizeof(*x));
	int fds = count_fds();

	x->kind = kind;
	make_scratch(x->dir, sizeof(x->dir));
	snprintf(x->path, sizeof(x->path), "%s/f", x->dir);
	close(open(x->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	x->dirfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(x->dirfd, 0);
	run_on(2, main_fdrace, x);
	close(x->dirfd);
	rm_scratch(x->dir);
	ASSERT_SEEN(&S);
	cr_assert_eq(x->n_fd + x->n_cancel, FD_ROUNDS);
	cr_assert_gt(x->n_cancel, 0, "never cancelled in time");
	cr_assert_gt(x->n_fd_after_cancel, 0, "the result never won over a cancel");
	if (kind == 0)
		cr_assert_eq(x->accepted_later, x->n_cancel, "connections lost");
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(x);
}

Test(io_cancel, accept_cancelled_after_success_returns_the_fd, .timeout = 60)
{
	fd_race(0);
}

Test(io_cancel, open_cancelled_after_success_returns_the_fd, .timeout = 60)
{
	fd_race(1);
}

Test(io_cancel, openat2_cancelled_after_success_returns_the_fd, .timeout = 60)
{
	fd_race(3);
}

Test(io_cancel, socket_cancelled_after_success_returns_the_fd, .timeout = 60)
{
	fd_race(2);
}

/* ---------------------------------------------------- file reads racing */

#define PREAD_ROUNDS 2000

struct prace {
	int fd;
	unsigned char want[4096];
	ssize_t r;
	int n_data, n_cancel;
};

static void *pread_task(void *arg)
{
	struct prace *x = arg;
	unsigned char buf[4096];

	x->r = ursa_pread(x->fd, buf, sizeof(buf), 0);
	if (x->r > 0) /* right bytes */
		EXPECT(&S, x->r == 4096 && memcmp(buf, x->want, 4096) == 0, x->r);
	return NULL;
}

static void *main_prace(void *arg)
{
	struct prace *x = arg;

	for (int i = 0; i < PREAD_ROUNDS; i++) {
		struct ursa_task *t;

		EXPECT(&S, ursa_spawn(&t, pread_task, x) == 0, i);
		for (int y = 0; y < i % 3; y++)
			ursa_yield();
		(void)ursa_cancel(t);
		JOIN_ANY(&S, t);
		EXPECT(&S, x->r == 4096 || x->r == -ECANCELED, x->r);
		if (x->r == 4096)
			x->n_data++;
		else
			x->n_cancel++;
	}
	/* Both outcomes happen (else the race was not exercised). */
	EXPECT(&S, x->n_data > 0, x->n_data);
	EXPECT(&S, x->n_cancel > 0, x->n_cancel);
	return NULL;
}

Test(io_cancel, pread_cancel_race_returns_data_or_ecanceled, .timeout = 60)
{
	struct prace *x = calloc(1, sizeof(*x));
	char dir[256], path[300];
	uint64_t seed = 5;
	int fds = count_fds();

	make_scratch(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	rng_fill(&seed, x->want, sizeof(x->want));
	x->fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	cr_assert_eq(pwrite(x->fd, x->want, 4096, 0), 4096);
	run_on(1, main_prace, x);
	close(x->fd);
	rm_scratch(dir);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(x);
}

/* ------------------------------------------------------ deadlines */

struct dl {
	ssize_t recv_rc, after_rc, connect_rc;
	int scope_rc;
	uint64_t took_ns;
};

static void *main_deadline(void *arg)
{
	struct dl *d = arg;
	struct ursa_scope s;
	int sv[2], lfd, filler[8];
	unsigned port;
	char buf[16];
	uint64_t t0;

	EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	t0 = ursa_now();
	ursa_scope_enter(&s, t0 + 50 * MS);
	d->recv_rc = ursa_recv(sv[0], buf, sizeof(buf), 0);
	d->scope_rc = ursa_scope_exit(&s);
	d->took_ns = ursa_now() - t0;
	/* The socket is fine afterwards: the cancelled recv took nothing. */
	EXPECT(&S, ursa_send(sv[1], "after", 5, 0) == 5, 0);
	d->after_rc = ursa_read_full(sv[0], buf, 5);
	EXPECT(&S, ursa_close(sv[0]) == 0, 0);
	EXPECT(&S, ursa_close(sv[1]) == 0, 0);

	/* A connect that cannot complete (the listener's queue is full, so
	 * its SYNs are dropped) ends at the deadline, its socket closed. */
	lfd = ursa_tcp_listen("127.0.0.1", 0, 1);
	port = local_port(lfd);
	for (int i = 0; i < 8; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		(void)connect(filler[i], (struct sockaddr *)&a, sizeof(a));
	}
	nap(20 * MS);
	ursa_scope_enter(&s, ursa_now() + 200 * MS);
	d->connect_rc = ursa_tcp_connect("127.0.0.1", port);
	(void)ursa_scope_exit(&s);
	if (d->connect_rc >= 0)
		EXPECT(&S, ursa_close((int)d->connect_rc) == 0, 0);
	for (int i = 0; i < 8; i++)
		EXPECT(&S, ursa_close(filler[i]) == 0, filler[i]);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);
	return NULL;
}

Test(io_cancel, deadline_ends_recv_and_connect_with_etimedout)
{
	struct dl d = {0};
	int fds = count_fds();

	run_on(1, main_deadline, &d);
	ASSERT_SEEN(&S);
	cr_assert_eq(d.recv_rc, -ETIMEDOUT);
	cr_assert_eq(d.scope_rc, -ETIMEDOUT);
	cr_assert_geq(d.took_ns, 50 * MS);
	cr_assert_eq(d.after_rc, 5);
	cr_assert_eq(d.connect_rc, -ETIMEDOUT, "%s", ursa_strerror((int)d.connect_rc));
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* ------------------------------------------------------------ ursa_close */

struct cl {
	int sv[2];
	ssize_t blocked_rc;
	int close_rc, cancelled_close_rc, fd_after;
	uint64_t took_ns;
};

static void *blocked_reader(void *arg)
{
	struct cl *c = arg;
	struct ursa_scope s;
	char buf[16];

	/* The safety net: without the cancel-by-fd this recv would wait on a
	 * closed fd's socket until the deadline. */
	ursa_scope_enter(&s, ursa_now() + 5000 * MS);
	c->blocked_rc = ursa_recv(c->sv[0], buf, sizeof(buf), 0);
	(void)ursa_scope_exit(&s);
	return NULL;
}

static void *cancelled_closer(void *arg)
{
	struct cl *c = arg;

	/* Cancelled before it starts: the close still happens. */
	c->cancelled_close_rc = ursa_close(c->sv[1]);
	return NULL;
}

static void *main_close(void *arg)
{
	struct cl *c = arg;
	struct ursa_task *t;
	uint64_t t0;

	EXPECT(&S, ursa_spawn(&t, blocked_reader, c) == 0, 0);
	nap(20 * MS); /* it is parked in its recv */
	t0 = ursa_now();
	c->close_rc = ursa_close(c->sv[0]);
	JOIN_OK(&S, t);
	c->took_ns = ursa_now() - t0;

	EXPECT(&S, ursa_spawn(&t, cancelled_closer, c) == 0, 0);
	(void)ursa_cancel(t);
	JOIN_ANY(&S, t);
	c->fd_after = fcntl(c->sv[1], F_GETFD) < 0 ? -errno : 0;
	return NULL;
}

Test(io_cancel, close_cancels_ops_on_the_fd_and_closes_even_when_cancelled)
{
	struct cl c = {0};
	int fds;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.sv), 0);
	fds = count_fds() - 2;
	run_on(1, main_close, &c);
	cr_assert_eq(c.close_rc, 0);
	cr_assert_eq(c.blocked_rc, -EBADF, "the recv on the closed fd: %s",
	             ursa_strerror((int)c.blocked_rc));
	cr_assert_lt(c.took_ns, 2000 * MS, "the recv was not cancelled by the close");
	cr_assert_eq(c.cancelled_close_rc, 0);
	cr_assert_eq(c.fd_after, -EBADF, "a cancelled task's close did not close");
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* ------------------------------------------- ursa_close across cores (20.12) */

/* A recv parked on core 1 and a listener accepting on core 1; core 0 closes
 * both fds.  Each op ends with -EBADF (not the safety net's -ETIMEDOUT), and
 * the listener is gone: a connect is refused, not queued for an accept that
 * core 0's cancel could not see. */
struct xclose {
	int sv[2];
	int lfd;
	unsigned port;
	_Atomic int started;
	ssize_t recv_rc;
	int accept_rc, connect_rc;
};

static void *parked_recv(void *arg)
{
	struct xclose *x = arg;
	struct ursa_scope s;
	char buf[16];

	ursa_scope_enter_after(&s, 10000 * MS); /* the safety net */
	atomic_fetch_add(&x->started, 1);
	x->recv_rc = ursa_recv(x->sv[0], buf, sizeof(buf), 0);
	(void)ursa_scope_exit(&s);
	return NULL;
}

static void *parked_accept(void *arg)
{
	struct xclose *x = arg;
	struct ursa_scope s;

	ursa_scope_enter_after(&s, 10000 * MS);
	atomic_fetch_add(&x->started, 1);
	x->accept_rc = ursa_accept(x->lfd, NULL, NULL);
	(void)ursa_scope_exit(&s);
	if (x->accept_rc >= 0)
		ursa_close(x->accept_rc);
	return NULL;
}

static void *main_xclose(void *arg)
{
	struct xclose *x = arg;
	struct ursa_task *r, *a;

	for (int round = 0; round < 10 && !atomic_load(&S.line); round++) {
		REQUIRE(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x->sv) == 0, errno);
		x->lfd = ursa_tcp_listen_ex("127.0.0.1", 0, 16, 0, &x->port);
		REQUIRE(&S, x->lfd >= 0, x->lfd);
		atomic_store(&x->started, 0);
		x->recv_rc = x->accept_rc = 1;
		REQUIRE(&S, ursa_spawn_on(&r, 1, parked_recv, x) == 0, 0);
		REQUIRE(&S, ursa_spawn_on(&a, 1, parked_accept, x) == 0, 0);
		while (atomic_load(&x->started) < 2)
			nap(MS);
		nap(round * MS); /* from "about to submit" to "long parked" */
		EXPECT_EQ(&S, ursa_core(), 0);
		EXPECT_EQ(&S, ursa_close(x->sv[0]), 0);
		EXPECT_EQ(&S, ursa_close(x->lfd), 0);
		JOIN_OK(&S, r);
		JOIN_OK(&S, a);
		EXPECT_EQ(&S, x->recv_rc, -EBADF);
		EXPECT_EQ(&S, x->accept_rc, -EBADF);
		/* Nothing listens on the port any more. */
		int c = ursa_tcp_connect("127.0.0.1", x->port);
		EXPECT_EQ(&S, c, -ECONNREFUSED);
		if (c >= 0)
			ursa_close(c);
		ursa_close(x->sv[1]);
	}
	return NULL;
}

Test(io_cancel, close_on_one_core_reaches_ops_on_another, .timeout = 90)
{
	struct xclose x = {0};
	int fds = count_fds();

	run_on(2, main_xclose, &x);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
}
