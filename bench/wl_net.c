/* SPDX-License-Identifier: MIT */
/*
 * wl_net.c: the network workloads over loopback TCP.  One load generator (an
 * epoll client in a process of its own, on the second CPU when there are
 * two) drives every server path the same way; the servers (on the first
 * CPU) are what the rows measure: their CPU time and peak RSS, the client's
 * count of checked round trips over its wall time.
 *
 *   net-echo     --conns connections [50; net-echo-500: 500] each sending a
 *                --msg-size message [64 B] and waiting for the echo
 *   net-connect  connect, send 1 byte, receive it, close, over --conns
 *                concurrent connectors
 *
 * Servers: sync (one blocking thread; it can serve one connection at a
 * time, so the client uses one), threaded (a thread per connection), ring
 * (a task per connection, ursa_accept/recv/send/close, one core) and, as a
 * reference, a single-threaded epoll server.
 */
#include "bench.h"

#include <ursa.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum mode { ECHO, CONNECT };

/* What the client reports through the pipe (one write, < PIPE_BUF). */
struct client_result {
	double ops, wall_s, cpu_s;
	uint64_t bad;  /* echoes that did not match */
	int err;       /* first errno that stopped a connection */
	unsigned conns;
	struct bench_lat lat;
};

static enum mode mode_of(const struct bench_workload *w);

static unsigned conns_of(const struct bench_ctx *ctx)
{
	if (ctx->p->conns)
		return ctx->p->conns;
	return ctx->w->tasks ? (unsigned)ctx->w->tasks : 50;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static double cpu_of(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1e-6;
}

/* ---------------------------------------------------------------- client */

struct conn {
	int fd;
	unsigned id;
	uint64_t seq;
	size_t sent, got;
	double t0;
	bool connecting, done;
};

static void pattern(unsigned char *b, size_t n, unsigned id, uint64_t seq)
{
	for (size_t j = 0; j < n; j++)
		b[j] = (unsigned char)(id * 131u + seq * 7u + j);
}

static int open_conn(struct sockaddr_in *sa, bool nonblock_connect)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock_connect ? SOCK_NONBLOCK : 0),
	                0);

	if (fd < 0)
		return -errno;
	nodelay(fd);
	if (connect(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0 && errno != EINPROGRESS) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (!nonblock_connect)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* Send what is left of c's message; false on error. */
static bool pump_send(struct conn *c, const unsigned char *out, size_t n)
{
	while (c->sent < n) {
		ssize_t w = send(c->fd, out + c->sent, n - c->sent, MSG_NOSIGNAL);

		if (w < 0)
			return errno == EAGAIN;
		c->sent += (size_t)w;
	}
	return true;
}

/* Tell the server's meter (meter_thread) that the measured interval starts
 * or ends. */
static void mark(int fd, char what)
{
	if (fd >= 0 && write(fd, &what, 1) != 1)
		_exit(3);
}

static void client_main(enum mode mode, unsigned port, unsigned nconns, size_t msg,
                        double duration, int out, int marks)
{
	struct client_result res = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct conn *cs = calloc(nconns, sizeof(*cs));
	unsigned char *out_buf = malloc(msg), *in_buf = malloc(msg);
	struct epoll_event *evs = calloc(nconns, sizeof(*evs));
	struct bench_latbuf lat;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	unsigned live = 0;
	double t0, deadline;
	struct rusage ru0, ru1;

	res.conns = nconns;
	if (!cs || !out_buf || !in_buf || !evs || ep < 0 || bench_latbuf_init(&lat, 1 << 18)) {
		res.err = ENOMEM;
		goto report;
	}
	mark(marks, 'S');
	getrusage(RUSAGE_SELF, &ru0);
	t0 = bench_now();
	deadline = t0 + duration;
	for (unsigned i = 0; i < nconns; i++) {
		struct conn *c = &cs[i];
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};

		c->id = i;
		c->fd = open_conn(&sa, mode == CONNECT);
		if (c->fd < 0) {
			res.err = -c->fd;
			c->done = true;
			continue;
		}
		c->connecting = true;
		c->t0 = bench_now();
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		live++;
	}
	while (live) {
		int n = epoll_wait(ep, evs, (int)nconns, 100);

		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			size_t want = mode == ECHO ? msg : 1;
			bool fin = false, ok = true;

			if (c->done)
				continue;
			if (c->connecting) {
				int e = 0;
				socklen_t el = sizeof(e);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
				if (e) {
					res.err = e;
					ok = false;
				} else {
					c->connecting = false;
					c->sent = c->got = 0;
					pattern(out_buf, want, c->id, c->seq);
					ok = pump_send(c, out_buf, want);
				}
			}
			if (ok && !c->connecting && c->sent < want) {
				pattern(out_buf, want, c->id, c->seq);
				ok = pump_send(c, out_buf, want);
			}
			while (ok && !c->connecting && c->got < want) {
				ssize_t r = recv(c->fd, in_buf + c->got, want - c->got, 0);

				if (r < 0 && errno == EAGAIN)
					break;
				if (r <= 0) {
					res.err = r < 0 ? errno : EPIPE;
					ok = false;
					break;
				}
				/* Check what arrived against what was sent. */
				pattern(out_buf, want, c->id, c->seq);
				if (memcmp(in_buf + c->got, out_buf + c->got, (size_t)r) != 0)
					res.bad++;
				c->got += (size_t)r;
				if (c->got == want) {
					double now = bench_now();

					bench_latbuf_add(&lat, now - c->t0);
					res.ops++;
					c->seq++;
					if (mode == CONNECT) {
						/* One connection done: close, open the next. */
						epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
						close(c->fd);
						c->fd = -1;
						if (now >= deadline) {
							fin = true;
							break;
						}
						c->fd = open_conn(&sa, true);
						if (c->fd < 0) {
							res.err = -c->fd;
							ok = false;
							break;
						}
						struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
						                         .data.ptr = c};
						epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
						c->connecting = true;
						c->t0 = now;
						break;
					}
					if (now >= deadline) {
						fin = true;
						break;
					}
					c->t0 = now;
					c->sent = c->got = 0;
					pattern(out_buf, want, c->id, c->seq);
					ok = pump_send(c, out_buf, want);
				}
			}
			if (!ok || fin) {
				if (c->fd >= 0) {
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					close(c->fd);
					c->fd = -1;
				}
				c->done = true;
				live--;
			}
		}
		if (bench_now() > deadline + 10) {
			res.err = ETIMEDOUT; /* the server stopped answering */
			break;
		}
	}
	res.wall_s = bench_now() - t0;
	getrusage(RUSAGE_SELF, &ru1);
	mark(marks, 'E');
	res.cpu_s = cpu_of(&ru1) - cpu_of(&ru0);
	bench_latbuf_merge(&res.lat, &lat, 1);
	for (unsigned i = 0; i < nconns; i++)
		if (cs[i].fd >= 0 && !cs[i].done)
			close(cs[i].fd);
report:
	if (write(out, &res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(3);
	_exit(0);
}

/* ---------------------------------------------------------------- servers */

struct server {
	int lfd;       /* listening, blocking */
	int done_fd;   /* readable (the client's result) when the client is done */
	struct client_result res;
	bool have_res;
	int err;
	int run_err;   /* ursa_run refused to start (-errno): the path cannot run */
	struct ursa_stats st; /* the ring server's counters (version 0: none) */
};

static bool read_result(struct server *s)
{
	ssize_t r;

	do
		r = read(s->done_fd, &s->res, sizeof(s->res));
	while (r < 0 && errno == EINTR);
	s->have_res = r == (ssize_t)sizeof(s->res);
	return s->have_res;
}

/* Echo until EOF with blocking calls. */
static void serve_blocking(int fd)
{
	char buf[65536];

	nodelay(fd);
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0), off = 0;

		if (r <= 0)
			break;
		while (off < r) {
			ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);

			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
}

/* Wait for a connection or for the client to finish; the fd, or -1 when
 * done. */
static int accept_or_done(struct server *s)
{
	for (;;) {
		struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN},
		                       {.fd = s->done_fd, .events = POLLIN}};

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (pf[1].revents)
			return -1;
		if (pf[0].revents) {
			int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				return fd;
		}
	}
}

static void server_sync(struct server *s)
{
	int fd;

	while ((fd = accept_or_done(s)) >= 0)
		serve_blocking(fd);
	read_result(s);
}

static _Atomic int live_threads;

static void *conn_thread(void *arg)
{
	serve_blocking((int)(intptr_t)arg);
	atomic_fetch_sub(&live_threads, 1);
	return NULL;
}

static void server_threads(struct server *s)
{
	pthread_attr_t attr;
	int fd;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	while ((fd = accept_or_done(s)) >= 0) {
		pthread_t t;

		atomic_fetch_add(&live_threads, 1);
		if (pthread_create(&t, &attr, conn_thread, (void *)(intptr_t)fd) != 0) {
			atomic_fetch_sub(&live_threads, 1);
			s->err = EAGAIN;
			close(fd);
		}
	}
	pthread_attr_destroy(&attr);
	read_result(s);
	/* The client has closed everything; let the threads see EOF. */
	while (atomic_load(&live_threads) > 0)
		usleep(1000);
}

static void server_epoll(struct server *s)
{
	struct epoll_event ev = {.events = EPOLLIN}, evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	char buf[65536];
	bool running = true;

	ev.data.fd = s->lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->lfd, &ev);
	ev.data.fd = s->done_fd;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->done_fd, &ev);
	fcntl(s->lfd, F_SETFL, fcntl(s->lfd, F_GETFL) | O_NONBLOCK);
	while (running) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == s->done_fd) {
				running = false;
			} else if (fd == s->lfd) {
				int c;

				while ((c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
					struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};

					nodelay(c);
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				}
			} else {
				ssize_t r = recv(fd, buf, sizeof(buf), 0);

				if (r < 0 && errno == EAGAIN)
					continue;
				if (r <= 0 || send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r) {
					/* (A short send of a small echo on loopback does not
					 * happen; treat it as a broken connection.) */
					epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
					close(fd);
				}
			}
		}
	}
	fcntl(s->lfd, F_SETFL, fcntl(s->lfd, F_GETFL) & ~O_NONBLOCK);
	close(ep);
	read_result(s);
}

/* ring: a task per connection. */
static void *ring_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];

	nodelay(fd);
	for (;;) {
		ssize_t r = ursa_recv(fd, buf, sizeof(buf), 0), off = 0;

		if (r <= 0)
			break;
		while (off < r) {
			ssize_t w = ursa_send(fd, buf + off, (size_t)(r - off), 0);

			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	ursa_close(fd);
	return NULL;
}

static void *ring_acceptor(void *arg)
{
	struct server *s = arg;
	/* The runtime's stack size (64 KiB, server_ring): a connection's task
	 * takes a stack from the core's cache instead of mapping one. */
	struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED};

	for (;;) {
		int fd = ursa_accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd == -ECANCELED || fd == -ETIMEDOUT)
			break;
		if (fd < 0)
			continue;
		if (ursa_spawn_ex(NULL, ursa_core(), ring_conn, (void *)(intptr_t)fd, &so) < 0) {
			s->err = ENOMEM;
			close(fd);
		}
	}
	return NULL;
}

static void *ring_main(void *arg)
{
	struct server *s = arg;
	struct ursa_task *acc;
	ssize_t r;
	int rc = ursa_spawn(&acc, ring_acceptor, s);

	if (rc < 0) {
		s->err = -rc;
		return NULL;
	}
	/* Wait (parking only this task) for the client's result. */
	r = ursa_read_full(s->done_fd, &s->res, sizeof(s->res));
	s->have_res = r == (ssize_t)sizeof(s->res);
	ursa_cancel(acc);
	/* -ECANCELED: the acceptor was cancelled, as asked. */
	rc = ursa_join(acc, NULL);
	if (rc < 0 && rc != -ECANCELED && !s->err)
		s->err = -rc;
	bench_stats_take(&s->st);
	/* Connection tasks see EOF from the client and end; ursa_run waits. */
	return NULL;
}

static void server_ring(struct server *s)
{
	struct ursa_opts o = bench_ursa_opts(1);
	int rc;

	/* 64 KiB stacks, as the runtime's default size: the per-core cache
	 * only keeps stacks of that size, and a task per connection must not
	 * map and unmap one per connection (net-connect). */
	o.stack_size = 64 * 1024;
	rc = ursa_run(ring_main, s, &o, NULL);

	if (rc < 0) {
		s->run_err = rc;
		read_result(s);
	}
}

/* ----------------------------------------------------------------- driver */

/*
 * The server's CPU over the client's measured interval: a thread of the
 * server process, asleep in read(2) on the client's mark pipe, takes the
 * process's rusage (every thread, live or ended: the workers, the pool)
 * when the client says 'S' and again when it says 'E'.  It costs two
 * wake-ups; the server's own set-up and teardown stay out of the figure.
 */
struct meter {
	int fd;
	double cpu_s; /* -1: the client did not mark both ends */
};

static void *meter_thread(void *arg)
{
	struct meter *m = arg;
	double c0 = 0;
	char ch;

	m->cpu_s = -1;
	for (;;) {
		ssize_t r = read(m->fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return NULL;
		if (ch == 'S') {
			c0 = bench_cpu();
		} else {
			m->cpu_s = bench_cpu() - c0;
			return NULL;
		}
	}
}

static int run_server(struct bench_ctx *ctx, struct bench_sample *s, void (*server)(struct server *),
                      unsigned nconns)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct server sv = {.lfd = -1};
	enum mode mode = mode_of(ctx->w);
	unsigned two = bench_ncpus() >= 2;
	int one = 1, fds[2] = {-1, -1}, mfds[2] = {-1, -1}, st = 0;
	struct bench_meter m;
	struct meter meter = {.cpu_s = -1};
	pthread_t meter_tid;
	bool metering = false;
	pid_t pid;

	sv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv.lfd < 0)
		return bench_why(ctx, BENCH_SKIP, "socket: %s", strerror(errno));
	setsockopt(sv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(sv.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(sv.lfd, 4096) != 0 ||
	    getsockname(sv.lfd, (struct sockaddr *)&sa, &sl) != 0 || pipe2(fds, O_CLOEXEC) != 0 ||
	    pipe2(mfds, O_CLOEXEC) != 0) {
		int e = errno;

		if (fds[0] >= 0) {
			close(fds[0]);
			close(fds[1]);
		}
		close(sv.lfd);
		return bench_why(ctx, BENCH_SKIP, "loopback listen: %s", strerror(e));
	}
	sv.done_fd = fds[0];
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		close(mfds[0]);
		close(sv.lfd);
		if (two)
			bench_pin_self(1);
		client_main(mode, ntohs(sa.sin_port), nconns, mode == ECHO ? ctx->p->msg_size : 1,
		            bench_io_time(ctx), fds[1], mfds[1]);
	}
	close(fds[1]);
	close(mfds[1]);
	if (pid < 0) {
		close(fds[0]);
		close(mfds[0]);
		close(sv.lfd);
		return bench_why(ctx, BENCH_SKIP, "fork: %s", strerror(errno));
	}
	/* The server on the first CPU, the client on the second; the meter
	 * thread inherits the server's CPU. */
	if (two)
		bench_pin_self(0);
	meter.fd = mfds[0];
	metering = pthread_create(&meter_tid, NULL, meter_thread, &meter) == 0;
	bench_meter_start(&m);
	server(&sv);
	bench_meter_stop(&m, s);
	if (metering)
		pthread_join(meter_tid, NULL); /* the client has exited: EOF at worst */
	close(mfds[0]);
	close(fds[0]);
	close(sv.lfd);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (sv.run_err)
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(sv.run_err));
	if (!sv.have_res)
		return bench_why(ctx, BENCH_FAIL, "the client did not report (status %d)", st);
	if (sv.err)
		return bench_why(ctx, BENCH_FAIL, "server: %s", strerror(sv.err));
	if (sv.res.err && sv.res.ops == 0)
		return bench_why(ctx, BENCH_FAIL, "client: %s", strerror(sv.res.err));
	if (sv.res.bad)
		return bench_why(ctx, BENCH_FAIL, "check failed: %llu replies differ from what was sent",
		                 (unsigned long long)sv.res.bad);
	if (sv.res.err)
		return bench_why(ctx, BENCH_FAIL, "client: a connection failed: %s",
		                 strerror(sv.res.err));
	if (meter.cpu_s < 0)
		return bench_why(ctx, BENCH_FAIL, "the server's CPU was not metered");
	s->ops = sv.res.ops;
	s->wall_s = sv.res.wall_s;
	s->lat = sv.res.lat;
	s->check = 1;
	s->srv_cpu_s = meter.cpu_s;
	s->client_cpu_s = sv.res.cpu_s;
	bench_why(ctx, BENCH_OK, "%u connection%s; server on CPU 0, client on CPU %s (client CPU "
	                         "%.2f s of %.2f s, server CPU %.2f s)",
	          nconns, nconns == 1 ? "" : "s", two ? "1" : "0 (one CPU only)", sv.res.cpu_s,
	          sv.res.wall_s, meter.cpu_s);
	bench_stats_note(ctx, &sv.st, s->ops);
	return BENCH_OK;
}

static int run_sync(struct bench_ctx *ctx, struct bench_sample *s)
{
	/* A blocking server serves one connection at a time. */
	return run_server(ctx, s, server_sync, mode_of(ctx->w) == ECHO ? 1 : conns_of(ctx));
}
static int run_threads(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_server(ctx, s, server_threads, conns_of(ctx));
}
static int run_ring(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_server(ctx, s, server_ring, conns_of(ctx));
}
static int run_epoll(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_server(ctx, s, server_epoll, conns_of(ctx));
}

static const struct bench_path paths[] = {
	{"blocking", BENCH_SYNC, "one thread, blocking calls: one connection at a time (net-echo: "
	 "the client uses one)", run_sync, NULL, 0, false, false, false},
	{"thread/conn", BENCH_THREADED, "a thread per connection, blocking recv/send", run_threads,
	 NULL, 0, false, false, false},
	{"ursa", BENCH_RING, "a task per connection on one core: ursa_accept/recv/send/close",
	 run_ring, NULL, 0, false, false, true},
	{"epoll", BENCH_REF, "one thread, an epoll loop (the classic C server)", run_epoll, NULL, 0,
	 false, false, false},
};

/* Issue 15: ahead of the classic epoll server in rate and in CPU spent. */
static const struct bench_target echo_targets[] = {
	{"ursa", "thread/conn", BENCH_M_OPS, 1.5, false, "ring >= 1.5x the threaded path", 0},
	{"ursa", "epoll", BENCH_M_OPS, 1.1, false, "ring >= 1.1x an epoll server", 0},
	{"ursa", "epoll", BENCH_M_SRV_CPU, 0.8, true,
	 "ring server CPU per echo <= 0.8x the epoll server's", 0},
};
static const struct bench_target connect_targets[] = {
	{"ursa", "epoll", BENCH_M_OPS, 1.1, false, "ring >= 1.1x an epoll server", 0},
	{"ursa", "epoll", BENCH_M_SRV_CPU, 0.8, true,
	 "ring server CPU per connection <= 0.8x the epoll server's", 0},
};

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	unsigned c = p->conns ? p->conns : w->tasks ? (unsigned)w->tasks : 50;

	if (mode_of(w) == ECHO)
		snprintf(buf, len, "\"io_time_s\": %g, \"conns\": %u, \"msg_size\": %u", p->io_time_s,
		         c, p->msg_size);
	else
		snprintf(buf, len, "\"io_time_s\": %g, \"conns\": %u", p->io_time_s, c);
}

#define NET_WORKLOAD(ident, wname, sum, hlp, u, nconns, dflt, tg, ntg)                           \
	const struct bench_workload ident = {                                                    \
		.name = wname,                                                                   \
		.summary = sum,                                                                  \
		.help = hlp,                                                                     \
		.unit = u,                                                                       \
		.latency = true,                                                                 \
		.server_cpu = true,                                                              \
		.in_default = dflt,                                                              \
		.tasks = nconns,                                                                 \
		.baseline = "blocking",                                                          \
		.paths = paths,                                                                  \
		.npaths = sizeof(paths) / sizeof(paths[0]),                                      \
		.targets = tg,                                                                   \
		.ntargets = ntg,                                                                 \
		.describe = describe,                                                            \
	}

NET_WORKLOAD(bench_wl_net_echo, "net-echo", "TCP echo over loopback [--conns 50, --msg-size 64]",
             "              Each connection sends a message and waits for its echo, for\n"
             "              --io-time seconds; every echo is compared with what was sent.\n"
             "              p50/p99: round-trip time seen by the client.\n",
             "echo round trip", 50, true, echo_targets, 3);
NET_WORKLOAD(bench_wl_net_echo_500, "net-echo-500", "the same with 500 connections",
             "", "echo round trip", 500, true, echo_targets, 3);
NET_WORKLOAD(bench_wl_net_connect, "net-connect",
             "connection set-up and teardown rate [--conns 50 connectors]",
             "              Each connector connects, sends a byte, reads it back and\n"
             "              closes, then starts over.\n",
             "connection", 50, true, connect_targets, 2);

static enum mode mode_of(const struct bench_workload *w)
{
	return w == &bench_wl_net_connect ? CONNECT : ECHO;
}
