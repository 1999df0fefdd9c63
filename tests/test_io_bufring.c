/* SPDX-License-Identifier: MIT */
/*
 * Multishot receivers on a provided-buffer ring: many connections share a
 * few buffers, an empty ring is back-pressure (nothing lost), and EOF,
 * resets, cancellation, deadlines and ursa_close reach the receiver as they
 * would a plain recv.
 */
#include "test_io_helpers.h"

#include "io_bufring.h" /* ursa__io_bufring_enobufs: how often the ring ran dry */

#include <stdatomic.h>

/* struct seen, EXPECT, JOIN_OK, JOIN_ANY and ASSERT_SEEN: tests/helpers.h */

static struct seen S;

/* ------------------------------- many connections, few buffers, no loss */

#define CONNS 200
#define PER_CONN (64 * 1024)
#define NBUF 16
#define BUFSZ 1024

struct conn {
	int sv[2];
	uint64_t seed;
	uint64_t sum_in;
	size_t got;
	int end;
};

struct many {
	struct ursa_bufgroup *g;
	struct conn c[CONNS];
	_Atomic int armed; /* receivers that have parked once */
	unsigned enobufs;
};

static struct many *M;

static void *receiver(void *arg)
{
	struct conn *c = arg;
	struct ursa_rx *rx;
	uint64_t h = FNV_INIT;
	int rc = ursa_rx_create(&rx, c->sv[0], M->g);

	EXPECT(&S, rc == 0, rc);
	if (rc)
		return NULL;
	atomic_fetch_add(&M->armed, 1);
	for (;;) {
		const void *d;
		ssize_t r = ursa_rx_recv(rx, &d);

		if (r <= 0) {
			c->end = (int)r;
			break;
		}
		EXPECT(&S, r <= BUFSZ, r);
		h = fnv(d, (size_t)r, h);
		c->got += (size_t)r;
		/* Hold the buffer across a yield: buffers run short. */
		ursa_yield();
	}
	c->sum_in = h;
	EXPECT(&S, ursa_rx_destroy(rx) == 0, 0);
	return NULL;
}

static void *sender(void *arg)
{
	struct conn *c = arg;
	char *buf = malloc(PER_CONN);
	uint64_t seed = c->seed;

	rng_fill(&seed, buf, PER_CONN);
	EXPECT(&S, ursa_write_all(c->sv[1], buf, PER_CONN) == PER_CONN, 0);
	EXPECT(&S, ursa_shutdown(c->sv[1], SHUT_WR) == 0, 0);
	free(buf);
	return NULL;
}

static void *main_many(void *arg)
{
	struct many *m = arg;
	struct ursa_task *rt[CONNS], *st[CONNS];
	int rc = ursa_bufgroup_create(&m->g, NBUF, BUFSZ);

	EXPECT(&S, rc == 0, rc);
	if (rc)
		return NULL;
	for (int i = 0; i < CONNS; i++)
		EXPECT(&S, ursa_spawn(&rt[i], receiver, &m->c[i]) == 0, i);
	/* Every receiver armed and idle: with 16 buffers for 200 of them,
	 * an idle receiver must hold none, or the senders below would find
	 * the ring empty for good. */
	nap(50 * MS);
	EXPECT(&S, atomic_load(&m->armed) == CONNS, atomic_load(&m->armed));
	for (int i = 0; i < CONNS; i++)
		EXPECT(&S, ursa_spawn(&st[i], sender, &m->c[i]) == 0, i);
	for (int i = 0; i < CONNS; i++) {
		JOIN_OK(&S, st[i]);
		JOIN_OK(&S, rt[i]);
	}
	m->enobufs = ursa__io_bufring_enobufs(m->g);
	EXPECT(&S, ursa_bufgroup_destroy(m->g) == 0, 0);
	return NULL;
}

Test(io_bufring, few_buffers_many_connections_backpressure_loses_nothing, .timeout = 60)
{
	struct many *m = calloc(1, sizeof(*m));
	int fds = count_fds();

	M = m;
	for (int i = 0; i < CONNS; i++) {
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m->c[i].sv), 0);
		m->c[i].seed = 1000 + (uint64_t)i;
	}
	run_on(1, main_many, m);
	for (int i = 0; i < CONNS; i++) {
		char *buf = malloc(PER_CONN);
		uint64_t seed = m->c[i].seed;

		close(m->c[i].sv[0]);
		close(m->c[i].sv[1]);
		rng_fill(&seed, buf, PER_CONN);
		cr_assert_eq(m->c[i].end, 0, "connection %d ended with %s", i,
		             ursa_strerror(m->c[i].end));
		cr_assert_eq(m->c[i].got, PER_CONN, "connection %d: %zu bytes", i, m->c[i].got);
		cr_assert_eq(m->c[i].sum_in, fnv(buf, PER_CONN, FNV_INIT), "connection %d corrupt",
		             i);
		free(buf);
	}
	ASSERT_SEEN(&S);
	cr_assert_gt(m->enobufs, 0, "the ring never ran dry: back-pressure untested");
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(m);
}

/* ------------------------------------------- what reaches a receiver */

struct edges {
	int sv[2], tv[2];
	struct ursa_bufgroup *g;
	struct ursa_rx *rx;
};

static void *cancelled_recv(void *arg)
{
	struct edges *e = arg;
	const void *d;

	EXPECT_EQ(&S, ursa_rx_recv(e->rx, &d), -ECANCELED);
	return NULL;
}

static void *recv_on_closed(void *arg)
{
	struct edges *e = arg;
	struct ursa_scope s;
	struct ursa_rx *rx;
	const void *d;

	EXPECT(&S, ursa_rx_create(&rx, e->tv[0], e->g) == 0, 0);
	ursa_scope_enter(&s, ursa_now() + 5000 * MS);
	EXPECT_EQ(&S, ursa_rx_recv(rx, &d), -EBADF);
	(void)ursa_scope_exit(&s);
	EXPECT(&S, ursa_rx_destroy(rx) == 0, 0);
	return NULL;
}

static void *other_core(void *arg)
{
	struct edges *e = arg;
	struct ursa_rx *rx;

	EXPECT_EQ(&S, ursa_rx_create(&rx, e->sv[0], e->g), -EXDEV);
	return NULL;
}

static void *main_edges(void *arg)
{
	struct edges *e = arg;
	struct ursa_scope s;
	struct ursa_task *t;
	struct linger lg = {1, 0};
	const void *d;
	ssize_t r;
	int lfd, c, a;

	EXPECT_EQ(&S, ursa_bufgroup_create(&e->g, 3, 64), -EINVAL);
	EXPECT(&S, ursa_bufgroup_create(&e->g, 4, 64) == 0, 0);
	EXPECT(&S, ursa_rx_create(&e->rx, e->sv[0], e->g) == 0, 0);
	EXPECT_EQ(&S, ursa_bufgroup_destroy(e->g), -EBUSY);

	EXPECT(&S, ursa_send(e->sv[1], "abc", 3, 0) == 3, 0);
	r = ursa_rx_recv(e->rx, &d);
	EXPECT_EQ(&S, r, 3);
	EXPECT(&S, r == 3 && memcmp(d, "abc", 3) == 0, r);

	/* Cancelled while waiting: data that arrive later are kept. */
	EXPECT(&S, ursa_spawn(&t, cancelled_recv, e) == 0, 0);
	nap(10 * MS);
	(void)ursa_cancel(t);
	JOIN_ANY(&S, t);
	EXPECT(&S, ursa_send(e->sv[1], "def", 3, 0) == 3, 0);
	r = ursa_rx_recv(e->rx, &d);
	EXPECT(&S, r == 3 && memcmp(d, "def", 3) == 0, r);

	ursa_scope_enter(&s, ursa_now() + 30 * MS);
	EXPECT_EQ(&S, ursa_rx_recv(e->rx, &d), -ETIMEDOUT);
	(void)ursa_scope_exit(&s);

	/* Queued data dropped by close; every buffer returns to the group. */
	EXPECT(&S, ursa_send(e->sv[1], "ghi", 3, 0) == 3, 0);
	nap(10 * MS);
	EXPECT_EQ(&S, ursa_rx_destroy(e->rx), 0);
	EXPECT(&S, ursa_rx_create(&e->rx, e->sv[0], e->g) == 0, 0);
	EXPECT(&S, ursa_shutdown(e->sv[1], SHUT_WR) == 0, 0);
	EXPECT_EQ(&S, ursa_rx_recv(e->rx, &d), 0);
	EXPECT_EQ(&S, ursa_rx_recv(e->rx, &d), 0); /* and again */
	EXPECT(&S, ursa_rx_destroy(e->rx) == 0, 0);

	/* ursa_close under a waiting receiver. */
	EXPECT(&S, ursa_spawn(&t, recv_on_closed, e) == 0, 0);
	nap(10 * MS);
	EXPECT(&S, ursa_close(e->tv[0]) == 0, 0);
	JOIN_OK(&S, t);

	/* A reset peer. */
	lfd = ursa_tcp_listen("127.0.0.1", 0, 4);
	c = ursa_tcp_connect("127.0.0.1", local_port(lfd));
	a = ursa_accept(lfd, NULL, NULL);
	EXPECT(&S, lfd >= 0 && c >= 0 && a >= 0, a);
	EXPECT(&S, ursa_rx_create(&e->rx, a, e->g) == 0, 0);
	EXPECT(&S, setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, errno);
	EXPECT(&S, ursa_close(c) == 0, c);
	EXPECT_EQ(&S, ursa_rx_recv(e->rx, &d), -ECONNRESET);
	EXPECT(&S, ursa_rx_destroy(e->rx) == 0, 0);
	EXPECT(&S, ursa_close(a) == 0, a);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);

	if (ursa_ncores() > 1) {
		EXPECT(&S, ursa_spawn_on(&t, 1, other_core, e) == 0, 0);
		JOIN_OK(&S, t);
	}
	EXPECT_EQ(&S, ursa_bufgroup_destroy(e->g), 0);
	return NULL;
}

Test(io_bufring, eof_reset_cancel_deadline_and_close_reach_the_receiver)
{
	struct edges e = {0};
	int fds = count_fds();

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e.sv), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, e.tv), 0);
	run_on(2, main_edges, &e);
	close(e.sv[0]);
	close(e.sv[1]);
	close(e.tv[1]);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* A group and a receiver the program forgot: freed when the runtime stops,
 * and the runtime still stops. */
static void *main_forgotten(void *arg)
{
	int *sv = arg;
	struct ursa_bufgroup *g;
	struct ursa_rx *rx;
	const void *d;

	EXPECT(&S, ursa_bufgroup_create(&g, 8, 128) == 0, 0);
	EXPECT(&S, ursa_rx_create(&rx, sv[0], g) == 0, 0);
	EXPECT(&S, ursa_send(sv[1], "x", 1, 0) == 1, 0);
	EXPECT(&S, ursa_rx_recv(rx, &d) == 1, 0);
	return NULL; /* rx armed, g registered */
}

/* --------------------------- ursa_close on another core reaches the rx */

struct xrx {
	int sv[2];
	_Atomic int parked;
	ssize_t end;
};

static void *rx_on_core1(void *arg)
{
	struct xrx *x = arg;
	struct ursa_bufgroup *g;
	struct ursa_rx *rx;
	struct ursa_scope s;
	const void *d;

	REQUIRE(&S, ursa_bufgroup_create(&g, 4, 64) == 0, 0);
	REQUIRE(&S, ursa_rx_create(&rx, x->sv[0], g) == 0, 0);
	ursa_scope_enter(&s, ursa_now() + 10000 * MS); /* the safety net */
	atomic_store(&x->parked, 1);
	x->end = ursa_rx_recv(rx, &d);
	(void)ursa_scope_exit(&s);
	EXPECT_EQ(&S, ursa_rx_destroy(rx), 0);
	EXPECT_EQ(&S, ursa_bufgroup_destroy(g), 0);
	return NULL;
}

static void *main_xrx(void *arg)
{
	struct xrx *x = arg;
	struct ursa_task *t;

	for (int round = 0; round < 5 && !atomic_load(&S.line); round++) {
		REQUIRE(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x->sv) == 0, errno);
		atomic_store(&x->parked, 0);
		x->end = 1;
		REQUIRE(&S, ursa_spawn_on(&t, 1, rx_on_core1, x) == 0, 0);
		while (!atomic_load(&x->parked))
			nap(MS);
		nap((round + 1) * 5 * MS); /* the multishot recv armed and parked */
		EXPECT_EQ(&S, ursa_close(x->sv[0]), 0);
		JOIN_OK(&S, t);
		EXPECT_EQ(&S, x->end, -EBADF);
		ursa_close(x->sv[1]);
	}
	return NULL;
}

/* Without the receiver in the fd registry, the close on core 0 left it
 * waiting until its 10 s safety net (-ETIMEDOUT). */
Test(io_bufring, close_on_another_core_reaches_an_armed_receiver, .timeout = 60)
{
	struct xrx x = {0};
	int fds = count_fds();

	run_on(2, main_xrx, &x);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

Test(io_bufring, forgotten_group_and_receiver_do_not_hold_up_shutdown, .timeout = 20)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	run_on(1, main_forgotten, sv);
	close(sv[0]);
	close(sv[1]);
	ASSERT_SEEN(&S);
}
