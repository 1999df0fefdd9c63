/* SPDX-License-Identifier: MIT */
/*
 * Out of fds: a naive accept loop (retry on any error) under a low
 * RLIMIT_NOFILE must not burn the CPU, must keep serving the connections it
 * has, must shed what it cannot accept, and must accept again once fds are
 * freed.  Criterion runs each test in its own process, so lowering the
 * limit here touches nothing else.
 */
#include "test_io_helpers.h"

#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#define SERVED 6 /* connections accepted before the fds run out */
#define EXTRA 6  /* connections that arrive while none are left */

struct emfile {
	struct seen s;
	int lfd;
	unsigned port;
	_Atomic int accepted, emfile_returns, other_errors;
	int served_during, shed, resumed;
	double cpu_ratio;
};

/* struct seen, EXPECT and ASSERT_SEEN: tests/helpers.h */

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];

	for (;;) {
		ssize_t r = ursa_recv(fd, buf, sizeof(buf), 0);

		if (r <= 0 || ursa_write_all(fd, buf, (size_t)r) != r)
			break;
	}
	(void)ursa_close(fd);
	return NULL;
}

/* The naive loop of the issue: any error, try again. */
static void *naive_server(void *arg)
{
	struct emfile *e = arg;
	struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED};

	for (;;) {
		int fd = ursa_accept(e->lfd, NULL, NULL);

		if (fd < 0) {
			if (fd == -ECANCELED)
				break;
			if (fd == -EMFILE || fd == -ENFILE)
				atomic_fetch_add(&e->emfile_returns, 1);
			else
				atomic_fetch_add(&e->other_errors, 1);
			continue;
		}
		atomic_fetch_add(&e->accepted, 1);
		if (ursa_spawn_ex(NULL, ursa_core(), echo_conn, (void *)(intptr_t)fd, &so) != 0)
			(void)ursa_close(fd);
	}
	return NULL;
}

static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int connect_raw(int fd, unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	return ursa_connect(fd, (struct sockaddr *)&a, sizeof(a));
}

/* Echo one short message on fd, under a deadline: 0 or why not. */
static int ping(int fd)
{
	struct ursa_scope s;
	char buf[8];
	ssize_t r;

	ursa_scope_enter(&s, ursa_now() + 2000 * MS);
	r = ursa_send(fd, "ping", 4, 0);
	if (r == 4)
		r = ursa_read_full(fd, buf, 4);
	(void)ursa_scope_exit(&s);
	return r == 4 && memcmp(buf, "ping", 4) == 0 ? 0 : (r < 0 ? (int)r : -EPROTO);
}

static void *main_emfile(void *arg)
{
	struct emfile *e = arg;
	int cl[SERVED + EXTRA], fresh;
	struct rlimit old, low;
	struct ursa_task *srv;
	double cpu0, wall0;
	char buf[8];

	e->lfd = ursa_tcp_listen("127.0.0.1", 0, 64);
	EXPECT(&e->s, e->lfd >= 0, e->lfd);
	e->port = local_port(e->lfd);
	EXPECT(&e->s, ursa_spawn(&srv, naive_server, e) == 0, 0);
	/* Client sockets are made now: once the limit is down none could be. */
	for (int i = 0; i < SERVED + EXTRA; i++) {
		cl[i] = ursa_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		EXPECT(&e->s, cl[i] >= 0, cl[i]);
	}
	nap(10 * MS); /* the server is parked in accept */
	EXPECT(&e->s, getrlimit(RLIMIT_NOFILE, &old) == 0, errno);
	low = old;
	low.rlim_cur = (rlim_t)count_fds() + SERVED;
	EXPECT(&e->s, setrlimit(RLIMIT_NOFILE, &low) == 0, errno);

	/* SERVED connections take the last fds; the next ones find none. */
	for (int i = 0; i < SERVED; i++)
		EXPECT(&e->s, connect_raw(cl[i], e->port) == 0, i);
	for (int i = 0; i < SERVED; i++)
		EXPECT(&e->s, ping(cl[i]) == 0, i);
	for (int i = SERVED; i < SERVED + EXTRA; i++)
		EXPECT(&e->s, connect_raw(cl[i], e->port) == 0, i);

	/* Half a second out of fds: the loop must idle, and serve. */
	cpu0 = cpu_seconds();
	wall0 = (double)ursa_now() / 1e9;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < SERVED; i++)
			if (ping(cl[i]) == 0)
				e->served_during++;
		nap(100 * MS);
	}
	e->cpu_ratio = (cpu_seconds() - cpu0) / ((double)ursa_now() / 1e9 - wall0);

	/* What could not be accepted was shed: those clients see the close. */
	for (int i = SERVED; i < SERVED + EXTRA; i++) {
		struct ursa_scope s;
		ssize_t r;

		ursa_scope_enter(&s, ursa_now() + 2000 * MS);
		r = ursa_recv(cl[i], buf, sizeof(buf), 0);
		(void)ursa_scope_exit(&s);
		if (r == 0 || r == -ECONNRESET)
			e->shed++;
		EXPECT(&e->s, ursa_close(cl[i]) == 0, cl[i]);
	}
	/* Free fds (clients close; the server's echo tasks follow): accepts
	 * resume, and a new connection is served. */
	for (int i = 0; i < 3; i++)
		EXPECT(&e->s, ursa_close(cl[i]) == 0, cl[i]);
	nap(50 * MS);
	fresh = ursa_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT(&e->s, fresh >= 0, fresh);
	if (fresh >= 0) {
		EXPECT(&e->s, connect_raw(fresh, e->port) == 0, 0);
		e->resumed = ping(fresh) == 0;
		EXPECT(&e->s, ursa_close(fresh) == 0, fresh);
	}
	for (int i = 3; i < SERVED; i++)
		EXPECT(&e->s, ursa_close(cl[i]) == 0, cl[i]);
	(void)ursa_cancel(srv);
	{
		int j = ursa_join(srv, NULL);

		EXPECT(&e->s, j == 0 || j == -ECANCELED, j);
	}
	EXPECT(&e->s, ursa_close(e->lfd) == 0, e->lfd);
	nap(20 * MS); /* the echo tasks see their clients go */
	EXPECT(&e->s, setrlimit(RLIMIT_NOFILE, &old) == 0, errno);
	/* The fds ran out, and the loop did not spin: a spinning loop gets a
	 * -EMFILE per microsecond or so; backing off (1 ms doubling to 100 ms)
	 * gives a handful in this test. */
	EXPECT(&e->s, e->emfile_returns > 0, e->emfile_returns);
	EXPECT(&e->s, e->emfile_returns < 200, e->emfile_returns);
	EXPECT(&e->s, e->cpu_ratio < 0.5, e->cpu_ratio * 100); /* % CPU the accept loop burned */
	EXPECT_EQ(&e->s, e->served_during, 5 * SERVED); /* served while out of fds */
	/* Shedding needs IORING_ACCEPT_DONTWAIT (6.10). */
	if (kernel_at_least(6, 10))
		EXPECT_EQ(&e->s, e->shed, EXTRA); /* pending connections shed */
	EXPECT(&e->s, e->resumed, 0); /* accepting resumed once fds were freed */
	EXPECT_EQ(&e->s, e->other_errors, 0);
	return NULL;
}

Test(io_emfile, naive_accept_loop_idles_serves_sheds_and_resumes, .timeout = 60)
{
	struct emfile e = {0};
	int fds = count_fds();

	run_on(1, main_emfile, &e);
	ASSERT_SEEN(&e.s);
	cr_assert_eq(count_fds(), fds, "fd leak");
}
