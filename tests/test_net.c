/* SPDX-License-Identifier: MIT */
/*
 * Sockets on the ring, on loopback only: echo integrity across hundreds of
 * connections, IPv4, IPv6, Unix and UDP, the listen/connect helpers, peers
 * that reset, half-close or stop reading, zero-copy send, and 10 000 ops in
 * flight on a tiny ring.  Fibers record the first failing check; the tests
 * assert after ursa_run returns.
 */
#include "test_io_helpers.h"

#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/un.h>

/* struct seen, EXPECT, JOIN_OK, JOIN_ANY and ASSERT_SEEN: tests/helpers.h */

static struct seen S; /* one test per process: Criterion forks each */

/* ------------------------------------------------------------ echo server */

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *buf = malloc(65536);

	for (;;) {
		ssize_t r = ursa_recv(fd, buf, 65536, 0);

		if (r <= 0)
			break;
		if (ursa_write_all(fd, buf, (size_t)r) != r)
			break;
	}
	free(buf);
	EXPECT(&S, ursa_close(fd) == 0, fd);
	return NULL;
}

/* Accept forever, one echo task per connection on this core.  Ends when
 * cancelled. */
static void *echo_server(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .stack_size = 64 * 1024};

	for (;;) {
		int fd = ursa_accept(lfd, NULL, NULL);

		if (fd == -ECANCELED)
			break;
		if (fd < 0)
			continue;
		if (ursa_spawn_ex(NULL, ursa_core(), echo_conn, (void *)(intptr_t)fd, &so) != 0)
			EXPECT(&S, ursa_close(fd) == 0, fd);
	}
	return NULL;
}

/* Send n random-sized messages and check each comes back intact. */
static int echo_client(int fd, uint64_t seed, int n, size_t max)
{
	char *out = malloc(max), *in = malloc(max);
	int rc = 0;

	for (int i = 0; i < n && !rc; i++) {
		size_t len = 1 + (size_t)(rng_next(&seed) % max);
		ssize_t r;

		rng_fill(&seed, out, len);
		r = ursa_write_all(fd, out, len);
		if (r != (ssize_t)len) {
			rc = r < 0 ? (int)r : -EIO;
			break;
		}
		r = ursa_read_full(fd, in, len);
		if (r != (ssize_t)len)
			rc = r < 0 ? (int)r : -EPROTO;
		else if (memcmp(in, out, len))
			rc = -EBADMSG;
	}
	free(out);
	free(in);
	return rc;
}

/* ------------------------------------------------- many connections, TCP */

#define NCONN 300
#define NMSG 10

struct many {
	unsigned port;
	_Atomic int ok;
	const char *host;
};

static void *many_client(void *arg)
{
	struct many *m = arg;
	static _Atomic uint64_t next_seed = 1;
	int fd = ursa_tcp_connect(m->host, m->port);
	int rc;

	EXPECT(&S, fd >= 0, fd);
	if (fd < 0)
		return NULL;
	rc = echo_client(fd, atomic_fetch_add(&next_seed, 1) * 0x9e3779b97f4a7c15ull, NMSG, 32768);
	EXPECT(&S, rc == 0, rc);
	if (rc == 0)
		atomic_fetch_add(&m->ok, 1);
	EXPECT(&S, ursa_close(fd) == 0, fd);
	return NULL;
}

static void *main_many(void *arg)
{
	struct many *m = arg;
	struct ursa_task *srv[2], *cl[NCONN];
	int lfd[2];

	/* One listener per core on one port (SO_REUSEPORT), each with its
	 * own accept loop. */
	lfd[0] = ursa_tcp_listen_ex(m->host, 0, 512, URSA_LISTEN_REUSEPORT, &m->port);
	EXPECT(&S, lfd[0] >= 0, lfd[0]);
	if (lfd[0] < 0)
		return NULL;
	lfd[1] = ursa_tcp_listen_ex(m->host, m->port, 512, URSA_LISTEN_REUSEPORT, NULL);
	EXPECT(&S, lfd[1] >= 0, lfd[1]);
	for (unsigned i = 0; i < 2; i++)
		EXPECT(&S, ursa_spawn_on(&srv[i], i % ursa_ncores(), echo_server,
		                         (void *)(intptr_t)lfd[i]) == 0, i);
	for (int i = 0; i < NCONN; i++)
		EXPECT(&S, ursa_spawn_on(&cl[i], (unsigned)i % ursa_ncores(), many_client, m) == 0,
		       i);
	for (int i = 0; i < NCONN; i++)
		JOIN_OK(&S, cl[i]);
	for (unsigned i = 0; i < 2; i++) {
		(void)ursa_cancel(srv[i]);
		JOIN_ANY(&S, srv[i]);
		EXPECT(&S, ursa_close(lfd[i]) == 0, lfd[i]);
	}
	return NULL;
}

Test(net, echo_integrity_across_hundreds_of_connections_random_sizes, .timeout = 60)
{
	struct many m = {.host = "127.0.0.1"};
	int fds = count_fds();

	run_on(2, main_many, &m);
	ASSERT_SEEN(&S);
	cr_assert_eq(atomic_load(&m.ok), NCONN);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* ------------------------------------------------- one echo, any family */

struct one {
	const char *listen_host, *connect_host;
	int family;              /* expected family of the accepted peer */
	int rc;
};

static void *main_one(void *arg)
{
	struct one *o = arg;
	struct ursa_task *srv;
	int lfd = ursa_tcp_listen(o->listen_host, 0, 16), fd;

	o->rc = lfd < 0 ? lfd : 0;
	if (lfd < 0)
		return NULL;
	EXPECT(&S, ursa_spawn(&srv, echo_server, (void *)(intptr_t)lfd) == 0, 0);
	fd = ursa_tcp_connect(o->connect_host, local_port(lfd));
	EXPECT(&S, fd >= 0, fd);
	if (fd >= 0) {
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);

		EXPECT(&S, getsockname(fd, (struct sockaddr *)&a, &len) == 0, errno);
		EXPECT(&S, a.ss_family == o->family, a.ss_family);
		o->rc = echo_client(fd, 99, 20, 100000);
		EXPECT(&S, ursa_close(fd) == 0, fd);
	} else {
		o->rc = fd;
	}
	(void)ursa_cancel(srv);
	JOIN_ANY(&S, srv);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);
	return NULL;
}

static void one_echo(const char *lh, const char *ch, int family)
{
	struct one o = {lh, ch, family, 1};
	int fds = count_fds();

	run_on(1, main_one, &o);
	ASSERT_SEEN(&S);
	cr_assert_eq(o.rc, 0, "%s -> %s: %s", lh ? lh : "(any)", ch, ursa_strerror(o.rc));
	cr_assert_eq(count_fds(), fds, "fd leak");
}

Test(net, ipv4_echo)
{
	one_echo("127.0.0.1", "127.0.0.1", AF_INET);
}

Test(net, ipv6_echo)
{
	int s = socket(AF_INET6, SOCK_STREAM, 0);

	if (s < 0)
		cr_skip_test("no IPv6 in this kernel");
	close(s);
	one_echo("::1", "::1", AF_INET6);
}

Test(net, any_host_listens_on_both_families)
{
	one_echo(NULL, "127.0.0.1", AF_INET);
	one_echo("", "::1", AF_INET6);
}

Test(net, connect_by_name_resolves_on_the_pool)
{
	one_echo("127.0.0.1", "localhost", AF_INET);
}

/* ------------------------------------------------- helper error paths */

static void *main_errs(void *arg)
{
	int a = ursa_tcp_listen("127.0.0.1", 0, 4), b, c, rc;
	unsigned port = local_port(a);

	(void)arg;
	EXPECT(&S, a >= 0, a);
	EXPECT(&S, ursa_close(a) == 0, a);
	EXPECT_EQ(&S, ursa_tcp_connect("127.0.0.1", port), -ECONNREFUSED);
	EXPECT_EQ(&S, ursa_tcp_listen(NULL, 70000, 4), -EINVAL);
	EXPECT_EQ(&S, ursa_tcp_connect("127.0.0.1", 0), -EINVAL);
	a = ursa_tcp_listen_ex("127.0.0.1", 0, 4, URSA_LISTEN_REUSEPORT, NULL);
	port = local_port(a);
	b = ursa_tcp_listen_ex("127.0.0.1", port, 4, URSA_LISTEN_REUSEPORT, NULL);
	c = ursa_tcp_listen("127.0.0.1", port, 4);
	EXPECT(&S, a >= 0, a); /* two SO_REUSEPORT listeners on one port */
	EXPECT(&S, b >= 0, b);
	EXPECT_EQ(&S, c, -EADDRINUSE);
	EXPECT(&S, ursa_close(a) == 0, a);
	EXPECT(&S, b < 0 || ursa_close(b) == 0, b);
	EXPECT(&S, c < 0 || ursa_close(c) == 0, c);
	/* Name errors through the pool path, without asking DNS (tests stay
	 * on this machine): a name where only numbers are allowed, and a
	 * service /etc/services does not know. */
	{
		struct addrinfo h = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM};
		struct addrinfo *res = NULL;

		EXPECT_EQ(&S, ursa_getaddrinfo("not-a-number", "80", &h, &res), -ENOENT);
		EXPECT(&S, res == NULL, 0);
		h.ai_flags = 0;
		EXPECT_EQ(&S, ursa_getaddrinfo("localhost", "no-such-service-ursa", &h, &res),
		          -EINVAL);
		EXPECT(&S, res == NULL, 0);
		rc = ursa_getaddrinfo("localhost", "80", &h, &res);
		EXPECT_EQ(&S, rc, 0);
		if (rc == 0) {
			int fam = res ? res->ai_family : AF_UNSPEC;

			EXPECT(&S, fam == AF_INET || fam == AF_INET6, fam);
			freeaddrinfo(res);
		}
	}
	/* An IPv6-only listener takes no IPv4 connection. */
	a = ursa_tcp_listen_ex("", 0, 4, URSA_LISTEN_V6ONLY, NULL);
	if (a >= 0) {
		b = ursa_tcp_connect("127.0.0.1", local_port(a));
		EXPECT_EQ(&S, b, -ECONNREFUSED);
		EXPECT(&S, b < 0 || ursa_close(b) == 0, b);
		EXPECT(&S, ursa_close(a) == 0, a);
	}
	return NULL;
}

Test(net, helpers_report_bad_input_and_bad_luck)
{
	int fds = count_fds();

	run_on(1, main_errs, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* -------------------------------------------------------------- Unix */

struct ux {
	char dir[256], path[300], abstract[64];
	int rc, rc_abstract, inuse, toolong;
};

static void *main_unix(void *arg)
{
	struct ux *u = arg;
	struct ursa_task *srv;
	char longp[200];
	int lfd, fd;

	lfd = ursa_unix_listen(u->path, 8);
	EXPECT(&S, lfd >= 0, lfd);
	if (lfd < 0)
		return NULL;
	u->inuse = ursa_unix_listen(u->path, 8);
	EXPECT(&S, ursa_spawn(&srv, echo_server, (void *)(intptr_t)lfd) == 0, 0);
	fd = ursa_unix_connect(u->path);
	u->rc = fd < 0 ? fd : echo_client(fd, 5, 30, 200000);
	EXPECT(&S, fd < 0 || ursa_close(fd) == 0, fd);
	(void)ursa_cancel(srv);
	JOIN_ANY(&S, srv);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);

	lfd = ursa_unix_listen(u->abstract, 8);
	EXPECT(&S, lfd >= 0, lfd);
	if (lfd >= 0) {
		EXPECT(&S, ursa_spawn(&srv, echo_server, (void *)(intptr_t)lfd) == 0, 0);
		fd = ursa_unix_connect(u->abstract);
		u->rc_abstract = fd < 0 ? fd : echo_client(fd, 6, 10, 1000);
		EXPECT(&S, fd < 0 || ursa_close(fd) == 0, fd);
		(void)ursa_cancel(srv);
		JOIN_ANY(&S, srv);
		EXPECT(&S, ursa_close(lfd) == 0, lfd);
	}
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	u->toolong = ursa_unix_connect(longp);
	return NULL;
}

Test(net, unix_sockets_path_and_abstract)
{
	struct ux u = {.rc = 1, .rc_abstract = 1};
	int fds = count_fds();

	make_scratch(u.dir, sizeof(u.dir));
	snprintf(u.path, sizeof(u.path), "%s/sock", u.dir);
	snprintf(u.abstract, sizeof(u.abstract), "@ursa-test-%d", (int)getpid());
	run_on(1, main_unix, &u);
	rm_scratch(u.dir);
	ASSERT_SEEN(&S);
	cr_assert_eq(u.rc, 0, "%s", ursa_strerror(u.rc));
	cr_assert_eq(u.rc_abstract, 0, "%s", ursa_strerror(u.rc_abstract));
	cr_assert_eq(u.inuse, -EADDRINUSE);
	cr_assert_eq(u.toolong, -ENAMETOOLONG);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* --------------------------------------------------------------- UDP */

struct udp {
	int family;
	int got;
};

static void *main_udp(void *arg)
{
	struct udp *u = arg;
	struct sockaddr_storage a = {0}, from;
	socklen_t alen = u->family == AF_INET ? sizeof(struct sockaddr_in)
	                                      : sizeof(struct sockaddr_in6);
	int x = ursa_socket(u->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int y = ursa_socket(u->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char msg[100];

	EXPECT(&S, x >= 0 && y >= 0, x);
	a.ss_family = (sa_family_t)u->family;
	if (u->family == AF_INET)
		((struct sockaddr_in *)&a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&a)->sin6_addr = in6addr_loopback;
	EXPECT(&S, bind(x, (struct sockaddr *)&a, alen) == 0, errno);
	EXPECT(&S, bind(y, (struct sockaddr *)&a, alen) == 0, errno);
	for (int i = 0; i < 100; i++) {
		struct sockaddr_storage to = a;
		socklen_t flen = sizeof(from);
		ssize_t r;

		if (u->family == AF_INET)
			((struct sockaddr_in *)&to)->sin_port = htons(local_port(y));
		else
			((struct sockaddr_in6 *)&to)->sin6_port = htons(local_port(y));
		snprintf(msg, sizeof(msg), "datagram %d", i);
		r = ursa_sendto(x, msg, strlen(msg) + 1, 0, (struct sockaddr *)&to, alen);
		EXPECT(&S, r == (ssize_t)strlen(msg) + 1, r);
		memset(msg, 0, sizeof(msg));
		r = ursa_recvfrom(y, msg, sizeof(msg), 0, (struct sockaddr *)&from, &flen);
		EXPECT(&S, r > 0 && flen == alen && from.ss_family == u->family, r);
		EXPECT(&S, local_port(x) == ntohs(u->family == AF_INET
		                                      ? ((struct sockaddr_in *)&from)->sin_port
		                                      : ((struct sockaddr_in6 *)&from)->sin6_port),
		       0);
		if (r > 0 && atoi(msg + 9) == i)
			u->got++;
	}
	EXPECT(&S, ursa_close(x) == 0, x);
	EXPECT(&S, ursa_close(y) == 0, y);
	return NULL;
}

Test(net, udp_sendto_recvfrom_ipv4_and_ipv6)
{
	int fds = count_fds();
	struct udp u4 = {AF_INET, 0}, u6 = {AF_INET6, 0};
	int s = socket(AF_INET6, SOCK_DGRAM, 0);

	run_on(1, main_udp, &u4);
	ASSERT_SEEN(&S);
	cr_assert_eq(u4.got, 100);
	if (s < 0)
		cr_skip_test("no IPv6 in this kernel (IPv4 passed)");
	close(s);
	run_on(1, main_udp, &u6);
	ASSERT_SEEN(&S);
	cr_assert_eq(u6.got, 100);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* --------------------------------------------------- sendmsg, recvmsg */

static void *main_msg(void *arg)
{
	int *sv = arg;
	char a[] = "scatter", b[] = "-", c[] = "gather", got[32] = {0};
	struct iovec out[3] = {{a, 7}, {b, 1}, {c, 6}};
	struct iovec in[2] = {{got, 4}, {got + 4, 20}};
	struct msghdr mo = {.msg_iov = out, .msg_iovlen = 3};
	struct msghdr mi = {.msg_iov = in, .msg_iovlen = 2};
	ssize_t r;

	r = ursa_sendmsg(sv[0], &mo, 0);
	EXPECT(&S, r == 14, r);
	r = ursa_recvmsg(sv[1], &mi, 0);
	EXPECT(&S, r == 14 && memcmp(got, "scatter-gather", 14) == 0, r);
	EXPECT(&S, ursa_shutdown(sv[0], SHUT_WR) == 0, 0);
	r = ursa_recv(sv[1], got, sizeof(got), 0);
	EXPECT(&S, r == 0, r);
	return NULL;
}

Test(net, sendmsg_recvmsg_scatter_gather)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	run_on(1, main_msg, sv);
	close(sv[0]);
	close(sv[1]);
	ASSERT_SEEN(&S);
}

/* ------------------------------------ resets, half-closes, stalled peers */

struct reset {
	ssize_t send_err, send_again, recv_err, write_all_err;
	int after_rc;
	unsigned port;
};

static void *main_reset(void *arg)
{
	struct reset *rs = arg;
	struct linger lg = {1, 0};
	int lfd = ursa_tcp_listen("127.0.0.1", 0, 8), c, s, c2;
	struct ursa_task *srv;
	char *buf = calloc(1, 65536);

	EXPECT(&S, lfd >= 0, lfd);
	c = ursa_tcp_connect("127.0.0.1", local_port(lfd));
	s = ursa_accept(lfd, NULL, NULL);
	EXPECT(&S, c >= 0 && s >= 0, s);
	/* The peer resets: close with a zero linger sends RST. */
	EXPECT(&S, setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0, errno);
	EXPECT(&S, ursa_close(c) == 0, c);
	rs->send_err = 0;
	for (int i = 0; i < 1000 && rs->send_err >= 0; i++)
		rs->send_err = ursa_send(s, buf, 65536, 0);
	/* The reset is reported once; after it the socket is dead: -EPIPE,
	 * the error that raises SIGPIPE without MSG_NOSIGNAL. */
	rs->send_again = ursa_send(s, buf, 65536, 0);
	rs->write_all_err = ursa_write_all(s, buf, 65536);
	rs->recv_err = ursa_recv(s, buf, 65536, 0);
	EXPECT(&S, ursa_close(s) == 0, s);
	/* The server goes on: another connection is served. */
	EXPECT(&S, ursa_spawn(&srv, echo_server, (void *)(intptr_t)lfd) == 0, 0);
	c2 = ursa_tcp_connect("127.0.0.1", local_port(lfd));
	rs->after_rc = c2 < 0 ? c2 : echo_client(c2, 11, 5, 5000);
	EXPECT(&S, c2 < 0 || ursa_close(c2) == 0, c2);
	(void)ursa_cancel(srv);
	JOIN_ANY(&S, srv);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);
	free(buf);
	return NULL;
}

Test(net, reset_peer_gives_epipe_or_econnreset_never_sigpipe)
{
	struct reset rs = {0};
	int fds = count_fds();

	signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this test */
	run_on(1, main_reset, &rs);
	ASSERT_SEEN(&S);
	cr_assert(rs.send_err == -EPIPE || rs.send_err == -ECONNRESET, "send: %s",
	          ursa_strerror((int)rs.send_err));
	cr_assert_eq(rs.send_again, -EPIPE, "send after the reset: %s",
	             ursa_strerror((int)rs.send_again));
	cr_assert(rs.write_all_err == -EPIPE || rs.write_all_err == -ECONNRESET, "write_all: %s",
	          ursa_strerror((int)rs.write_all_err));
	cr_assert(rs.recv_err == 0 || rs.recv_err == -ECONNRESET, "recv: %zd", rs.recv_err);
	cr_assert_eq(rs.after_rc, 0, "the next connection: %s", ursa_strerror(rs.after_rc));
	cr_assert_eq(count_fds(), fds, "fd leak");
}

struct half {
	ssize_t server_eof, server_send, client_got, client_eof;
	char reply[8];
};

static void *main_half(void *arg)
{
	struct half *h = arg;
	int lfd = ursa_tcp_listen("127.0.0.1", 0, 8), c, s;
	char buf[16];

	c = ursa_tcp_connect("127.0.0.1", local_port(lfd));
	s = ursa_accept(lfd, NULL, NULL);
	EXPECT(&S, c >= 0 && s >= 0, s);
	EXPECT(&S, ursa_send(c, "ping", 4, 0) == 4, 0);
	EXPECT(&S, ursa_shutdown(c, SHUT_WR) == 0, 0);
	EXPECT(&S, ursa_read_full(s, buf, 4) == 4, 0);
	h->server_eof = ursa_recv(s, buf, sizeof(buf), 0);     /* 0: half-closed */
	h->server_send = ursa_send(s, "bye", 4, 0);            /* still allowed */
	EXPECT(&S, ursa_close(s) == 0, s);
	h->client_got = ursa_read_full(c, h->reply, 4);
	h->client_eof = ursa_recv(c, buf, sizeof(buf), 0);
	EXPECT(&S, ursa_close(c) == 0, c);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);
	return NULL;
}

Test(net, half_close_reads_zero_and_still_sends)
{
	struct half h = {0};
	int fds = count_fds();

	run_on(1, main_half, &h);
	ASSERT_SEEN(&S);
	cr_assert_eq(h.server_eof, 0);
	cr_assert_eq(h.server_send, 4);
	cr_assert_eq(h.client_got, 4);
	cr_assert_str_eq(h.reply, "bye");
	cr_assert_eq(h.client_eof, 0);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/*
 * A peer that stops reading: the server's send to it parks (it does not
 * block the core), the other connections are served meanwhile, and a
 * deadline scope ends the stuck send with -ETIMEDOUT.
 */
struct stall {
	ssize_t stuck_rc;
	size_t stuck_sent;
	int others_ok;
	uint64_t waited_ns;
};

struct stall_conn {
	struct stall *st;
	int fd;
};

static void *stall_server(void *arg)
{
	struct stall_conn *sc = arg;
	struct ursa_scope scope;
	char *buf = calloc(1, 65536);
	uint64_t t0 = ursa_now();

	ursa_scope_enter(&scope, ursa_now() + 300 * MS);
	for (;;) {
		ssize_t r = ursa_send(sc->fd, buf, 65536, 0);

		if (r < 0) {
			sc->st->stuck_rc = r;
			break;
		}
		sc->st->stuck_sent += (size_t)r;
	}
	(void)ursa_scope_exit(&scope);
	sc->st->waited_ns = ursa_now() - t0;
	free(buf);
	return NULL;
}

static void *main_stall(void *arg)
{
	struct stall *st = arg;
	int lfd = ursa_tcp_listen("127.0.0.1", 0, 8), c, s;
	struct ursa_task *srv, *stuck;
	struct stall_conn sc;

	c = ursa_tcp_connect("127.0.0.1", local_port(lfd)); /* never reads */
	s = ursa_accept(lfd, NULL, NULL);
	EXPECT(&S, c >= 0 && s >= 0, s);
	sc.st = st;
	sc.fd = s;
	EXPECT(&S, ursa_spawn(&stuck, stall_server, &sc) == 0, 0);
	EXPECT(&S, ursa_spawn(&srv, echo_server, (void *)(intptr_t)lfd) == 0, 0);
	for (int i = 0; i < 5; i++) {
		int fd = ursa_tcp_connect("127.0.0.1", local_port(lfd));

		if (fd >= 0 && echo_client(fd, 100 + (uint64_t)i, 5, 20000) == 0)
			st->others_ok++;
		EXPECT(&S, fd < 0 || ursa_close(fd) == 0, fd);
	}
	JOIN_OK(&S, stuck);
	(void)ursa_cancel(srv);
	JOIN_ANY(&S, srv);
	EXPECT(&S, ursa_close(s) == 0, s);
	EXPECT(&S, ursa_close(c) == 0, c);
	EXPECT(&S, ursa_close(lfd) == 0, lfd);
	return NULL;
}

Test(net, peer_that_stops_reading_costs_one_connection)
{
	struct stall st = {0};
	int fds = count_fds();

	run_on(1, main_stall, &st);
	ASSERT_SEEN(&S);
	cr_assert_eq(st.stuck_rc, -ETIMEDOUT, "%s", ursa_strerror((int)st.stuck_rc));
	cr_assert_gt(st.stuck_sent, 0);
	cr_assert_eq(st.others_ok, 5, "the other connections were not served");
	cr_assert_geq(st.waited_ns, 300 * MS);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* ------------------------------------------------------ zero-copy send */

#define ZC_LEN (4u << 20)

struct zc {
	int family;
	ssize_t sent;
	uint64_t sum_out, sum_in;
	size_t got;
};

static void *zc_reader(void *arg)
{
	struct zc *z = arg;
	int fd = (int)z->got; /* passed in got, replaced by the count */
	char *buf = malloc(65536);
	uint64_t h = FNV_INIT;
	size_t got = 0;

	for (;;) {
		ssize_t r = ursa_recv(fd, buf, 65536, 0);

		if (r <= 0)
			break;
		h = fnv(buf, (size_t)r, h);
		got += (size_t)r;
	}
	z->sum_in = h;
	z->got = got;
	free(buf);
	return NULL;
}

static void *main_zc(void *arg)
{
	struct zc *z = arg;
	char *buf = malloc(ZC_LEN);
	uint64_t seed = 77;
	struct ursa_task *rd;
	int sv[2] = {-1, -1};
	size_t off = 0;

	rng_fill(&seed, buf, ZC_LEN);
	z->sum_out = fnv(buf, ZC_LEN, FNV_INIT);
	if (z->family == AF_INET) {
		int lfd = ursa_tcp_listen("127.0.0.1", 0, 1);

		sv[0] = ursa_tcp_connect("127.0.0.1", local_port(lfd));
		sv[1] = ursa_accept(lfd, NULL, NULL);
		EXPECT(&S, ursa_close(lfd) == 0, lfd);
	} else {
		EXPECT(&S, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, errno);
	}
	EXPECT(&S, sv[0] >= 0 && sv[1] >= 0, sv[0]);
	z->got = (size_t)sv[1];
	EXPECT(&S, ursa_spawn(&rd, zc_reader, z) == 0, 0);
	while (off < ZC_LEN) {
		ssize_t r = ursa_send_zc(sv[0], buf + off, ZC_LEN - off, 0);

		EXPECT(&S, r > 0, r);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	z->sent = (ssize_t)off;
	EXPECT(&S, ursa_shutdown(sv[0], SHUT_WR) == 0, 0);
	JOIN_OK(&S, rd);
	EXPECT(&S, ursa_close(sv[0]) == 0, sv[0]);
	EXPECT(&S, ursa_close(sv[1]) == 0, sv[1]);
	free(buf);
	return NULL;
}

Test(net, send_zc_delivers_intact_tcp_and_falls_back_on_unix)
{
	struct zc t = {.family = AF_INET}, u = {.family = AF_UNIX};
	int fds = count_fds();

	run_on(1, main_zc, &t);
	ASSERT_SEEN(&S);
	cr_assert_eq(t.sent, (ssize_t)ZC_LEN);
	cr_assert_eq(t.got, ZC_LEN);
	cr_assert_eq(t.sum_in, t.sum_out);
	run_on(1, main_zc, &u);
	ASSERT_SEEN(&S);
	cr_assert_eq(u.got, ZC_LEN);
	cr_assert_eq(u.sum_in, u.sum_out);
	cr_assert_eq(count_fds(), fds, "fd leak");
}

/* ------------------------------------------- 10 000 ops on a tiny ring */

#define INFLIGHT 10000

struct flood {
	int sv[2];
	_Atomic unsigned char seen[INFLIGHT];
	_Atomic int received;
};

static void *flood_rx(void *arg)
{
	struct flood *f = arg;
	uint32_t id = 0;
	ssize_t r = ursa_recv(f->sv[0], &id, sizeof(id), 0);

	EXPECT_EQ(&S, r, sizeof(id));
	EXPECT(&S, id < INFLIGHT, id);
	if (r == sizeof(id) && id < INFLIGHT)
		EXPECT(&S, !atomic_exchange(&f->seen[id], 1), id); /* a datagram twice */
	atomic_fetch_add(&f->received, 1);
	return NULL;
}

static void *main_flood(void *arg)
{
	struct flood *f = arg;
	struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .stack_size = 32 * 1024};

	/* Every receiver parks in its own recv before the first datagram. */
	for (uint32_t i = 0; i < INFLIGHT; i++)
		EXPECT(&S, ursa_spawn_ex(NULL, i % ursa_ncores(), flood_rx, f, &so) == 0, i);
	nap(200 * MS);
	for (uint32_t i = 0; i < INFLIGHT; i++) {
		ssize_t r = ursa_send(f->sv[1], &i, sizeof(i), 0);

		EXPECT(&S, r == sizeof(i), r);
	}
	for (int i = 0; i < 3000 && atomic_load(&f->received) < INFLIGHT; i++)
		nap(10 * MS);
	EXPECT_EQ(&S, atomic_load(&f->received), INFLIGHT);
	return NULL;
}

Test(net, ten_thousand_ops_in_flight_on_a_tiny_ring_lose_nothing, .timeout = 60)
{
	struct flood *f = calloc(1, sizeof(*f));
	struct ursa_opts o = {.cores = 2, .ring_entries = 64}; /* CQ 256 */
	int fds = count_fds();
	void *res = (void *)1;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, f->sv), 0);
	cr_assert_eq(ursa_run(main_flood, f, &o, &res), 0);
	close(f->sv[0]);
	close(f->sv[1]);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fd leak");
	free(f);
}

/* -------------------------------------------------- the port of port 0 */

static void *main_bound_port(void *arg)
{
	const char *hosts[2] = {"127.0.0.1", NULL}; /* numeric; every address */
	unsigned bound = 0, kept = 12345;

	(void)arg;
	for (int i = 0; i < 2; i++) {
		int lfd = ursa_tcp_listen_ex(hosts[i], 0, 4, 0, &bound), c;

		EXPECT(&S, lfd >= 0, lfd);
		if (lfd < 0)
			return NULL;
		EXPECT(&S, bound != 0, i);
		EXPECT(&S, bound == local_port(lfd), bound);
		c = ursa_tcp_connect("127.0.0.1", bound);
		EXPECT(&S, c >= 0, c);
		EXPECT(&S, c < 0 || ursa_close(c) == 0, c);
		EXPECT(&S, ursa_close(lfd) == 0, lfd);
	}
	/* A failure writes nothing. */
	EXPECT(&S, ursa_tcp_listen_ex("127.0.0.1", 0, 4, 0x80, &kept) == -EINVAL, 0);
	EXPECT(&S, ursa_tcp_listen_ex("127.0.0.1", 70000, 4, 0, &kept) == -EINVAL, 0);
	EXPECT(&S, kept == 12345, kept);
	return NULL;
}

Test(net, tcp_listen_ex_reports_the_port_it_bound)
{
	cr_assert_null(run_on(1, main_bound_port, NULL));
	ASSERT_SEEN(&S);
}
