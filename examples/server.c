// SPDX-License-Identifier: MIT
/*
 * server.c: the scaffolding the example servers share (server.h says what
 * and in which order).  Everything here is per core except three globals
 * written once: the options, the draining flag and the live-connection
 * count that shutdown waits on.
 */
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked (not in glibc's) */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define SWEEP_NS (50ull * 1000 * 1000) /* how often each core checks deadlines */
/* server_conn_linger after a refusal: at most this long and this much. */
#define LINGER_NS (2000ull * 1000 * 1000)
#define LINGER_MAX_BYTES (1u << 20)
/* A lingering peer silent this long is asked whether it has our bytes. */
#define LINGER_QUIET_NS (100ull * 1000 * 1000)
/* A busy connection with no progress for this long may be shed (shed_one). */
#define SHED_STALL_NS (1000ull * 1000 * 1000)
/* The longest --idle-ms and --grace-ms: a year. */
#define MAX_TIMEOUT_MS (365ull * 24 * 3600 * 1000)

struct server_opts server_opts;

/* One core's connections, touched only by tasks of that core. */
struct core_state {
	struct server_conn *head;
	/* Connections accepted by this core's listener and not yet closed (a
	 * listener per core: they run here); unused with --one-acceptor, where
	 * the cap counts `live`. */
	unsigned count;
	unsigned shedding;   /* shed, not yet closed */
	uint64_t shed_at_ns; /* when the last one was shed */
} __attribute__((aligned(64)));

static const struct server *the_srv;
static struct core_state *cores;
static _Atomic bool draining;
static _Atomic long live; /* connections open, all cores */
static _Atomic unsigned long shed_total; /* connections shed, all cores */
static sigset_t stop_signals; /* SIGINT, SIGTERM: blocked before ursa_run */

bool server_draining(void)
{
	return atomic_load_explicit(&draining, memory_order_relaxed);
}

void server_conn_enter(struct server_conn *c, int fd)
{
	struct core_state *cs = &cores[ursa_core()];

	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->task = ursa_self();
	c->last_io_ns = ursa_now();
	c->deadline_ns = c->last_io_ns + server_opts.idle_ns;
	c->next = cs->head;
	if (cs->head)
		cs->head->prev = c;
	cs->head = c;
}

static void linger(struct server_conn *c, bool drain)
{
	uint64_t end = drain ? URSA_FOREVER : ursa_now() + LINGER_NS;
	size_t dropped = 0;
	char buf[4096];
	int unsent = 0;
	ssize_t r;

	if (c->lingered || ursa_shutdown(c->fd, SHUT_WR) < 0)
		return;
	c->lingered = true;
	if (drain) {
		/* Neither unread input nor answers the peer has not acknowledged
		 * (SIOCOUTQ; the ioctl does not block): a plain close is a FIN,
		 * and a reset it might provoke later would discard nothing. */
		r = ursa_recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && r != -EAGAIN))
			return; /* the peer closed or reset */
		if (r < 0 && (ioctl(c->fd, SIOCOUTQ, &unsent) < 0 || unsent == 0))
			return;
	}
	for (;;) {
		struct ursa_scope s;
		uint64_t quiet = ursa_now() + LINGER_QUIET_NS;

		ursa_scope_enter(&s, quiet < end ? quiet : end);
		r = ursa_recv(c->fd, buf, sizeof(buf), 0);
		(void)ursa_scope_exit(&s);
		if (r > 0) {
			dropped += (size_t)r;
			if (!drain && dropped >= LINGER_MAX_BYTES)
				return;
			continue;
		}
		/* The peer closed or reset, the task was cancelled (the grace
		 * period is over), or the time is up. */
		if (r != -ETIMEDOUT || ursa_now() >= end)
			return;
		/* The peer is quiet: done once it has every byte we sent. */
		if (ioctl(c->fd, SIOCOUTQ, &unsent) < 0 || unsent == 0)
			return;
	}
}

void server_conn_linger(struct server_conn *c, bool drain)
{
	bool was = c->sending;

	/* Waiting for the peer to take the last answers: its acknowledgements
	 * are progress (the sweeper). */
	c->sending = true;
	linger(c, drain);
	c->sending = was;
}

void server_conn_leave(struct server_conn *c)
{
	struct core_state *cs = &cores[ursa_core()];

	/*
	 * Shutting down, a connection may close while its client is still
	 * sending (pipelined requests not read yet); closing then would reset
	 * it and could discard answers still queued to it.  A connection
	 * closing for its own reasons (the peer closed or reset, a refusal
	 * already lingered) is not held up: its recv fails at once.
	 */
	if (server_draining())
		server_conn_linger(c, true);
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ursa_close(c->fd);
	/* Counted out only once its fd is closed: the room is real. */
	atomic_fetch_sub(&live, 1);
	if (!server_opts.one_acceptor)
		cs->count--;
	if (c->shed)
		cs->shedding--;
}

bool server_conn_wait_begin(struct server_conn *c)
{
	if (server_draining() || c->shed)
		return false;
	c->deadline_ns = ursa_now() + server_opts.idle_ns;
	c->waiting = true;
	ursa_scope_enter(&c->wait, URSA_FOREVER);
	return true;
}

void server_conn_wait_end(struct server_conn *c)
{
	/* -ECANCELED here only says the sweeper fired; the caller has already
	 * seen it from its recv (or got its bytes first, which win). */
	(void)ursa_scope_exit(&c->wait);
	c->waiting = false;
	server_conn_progress(c);
}

void server_conn_progress(struct server_conn *c)
{
	c->last_io_ns = ursa_now();
	c->deadline_ns = c->last_io_ns + server_opts.idle_ns;
	c->credit = 0;
	c->looking = false;
}

void server_conn_received(struct server_conn *c, size_t n)
{
	c->last_io_ns = ursa_now();
	c->credit += n;
	if (c->credit >= SERVER_PROGRESS_BYTES)
		server_conn_progress(c);
}

ssize_t server_send_all(struct server_conn *c, const void *buf, size_t n)
{
	size_t done = 0;

	c->sending = true;
	while (done < n) {
		ssize_t r = ursa_send(c->fd, (const char *)buf + done, n - done, 0);

		if (r <= 0) {
			c->sending = false;
			return done ? (ssize_t)done : (r ? r : -EIO);
		}
		done += (size_t)r;
		server_conn_progress(c);
	}
	c->sending = false;
	return (ssize_t)done;
}

/*
 * The peer's acknowledgements, for connections whose client should be
 * taking an answer.  One send can wait far longer than --idle-ms for a
 * reader that keeps reading (the kernel wakes a writer only once a third of
 * a full send queue has gone: 1.4 MB of 4 MiB, 14 s at 100 KB/s), and a
 * connection waiting for its next request may still have its last answer
 * queued (echo); counting only send returns, the sweeper cut such readers
 * and shedding took them for stalled (kv lost the answers to writes it had
 * made: CI's shutdown_kv on a loaded machine).  Sampled, not per send: at
 * most every ACK_LOOK_NS, and only for a connection whose last progress is
 * that old.
 */
#define ACK_LOOK_NS (SHED_STALL_NS / 2)

/* The look's interval: ACK_LOOK_NS, or less under a shorter --idle-ms. */
static uint64_t ack_look_ns(void)
{
	return server_opts.idle_ns / 2 < ACK_LOOK_NS ? server_opts.idle_ns / 2 : ACK_LOOK_NS;
}

/* Whether the peer has acknowledged bytes since the last look. */
static bool acked_more(struct server_conn *c, uint64_t now)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	bool more;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
		return false; /* not TCP, or a kernel without the count: send returns only */
	more = c->acked_look_ns && ti.tcpi_bytes_acked > c->acked;
	c->acked = ti.tcpi_bytes_acked;
	c->acked_look_ns = now;
	return more;
}

/* Whether the connection has bytes its peer has not acknowledged yet. */
static bool has_unacked(const struct server_conn *c)
{
	int unsent = 0;

	return ioctl(c->fd, SIOCOUTQ, &unsent) == 0 && unsent > 0;
}

/*
 * A waiting connection past its deadline: idle, unless its last answer is
 * still going out.  Then it is watched for ACK_LOOK_NS: acknowledged bytes
 * in that time are progress (a new idle timeout), none a stalled client.
 */
static bool waiting_but_answering(struct server_conn *c, uint64_t now)
{
	if (!c->looking) {
		if (!has_unacked(c))
			return false;
		(void)acked_more(c, now); /* the baseline */
		c->looking = true;
		c->deadline_ns = now + ack_look_ns();
		return true;
	}
	if (!acked_more(c, now))
		return false;
	server_conn_progress(c);
	return true;
}

/*
 * Per core, every SWEEP_NS: a waiting connection past its deadline (or any
 * waiting connection once draining) has its wait scope cancelled, so only
 * its recv fails, unless its last answer is still being taken
 * (waiting_but_answering); a busy one past its deadline (a client that
 * stopped reading, or sends a request slowly) has its task cancelled.  A
 * sending one (server_send_all, server_conn_linger) whose last progress is
 * ACK_LOOK_NS old is looked at first: bytes its peer acknowledged since the
 * last look are progress, which keeps a slow but steady reader both inside
 * its timeout and out of shedding's stalled.  Acknowledgements count only
 * while sending: inside a request they would let a client that reads an
 * earlier answer slowly trickle the request for ever (slowloris).  None of
 * these calls switches tasks, so the list cannot change under the walk.
 */
static void *sweeper(void *arg)
{
	struct core_state *cs = &cores[ursa_core()];

	(void)arg;
	while (ursa_sleep(SWEEP_NS) == 0) {
		uint64_t now = ursa_now();
		bool drain = server_draining();
		uint64_t look = ack_look_ns();

		if (the_srv->tick)
			the_srv->tick(now);
		for (struct server_conn *c = cs->head; c; c = c->next) {
			if (c->sending && now - c->last_io_ns >= look &&
			    now - c->acked_look_ns >= look && acked_more(c, now))
				server_conn_progress(c);
			if (c->waiting) {
				if (drain || (now > c->deadline_ns && !waiting_but_answering(c, now)))
					ursa_scope_cancel(&c->wait);
			} else if (now > c->deadline_ns) {
				ursa_cancel(c->task);
			}
		}
	}
	return NULL;
}

/*
 * What the accept loop does after a failed accept.  Errors that belong to
 * one connection are retried at once, since the next accept is another
 * connection: the peer reset or timed out before it was accepted
 * (ECONNABORTED), a network error Linux passes on from the new socket
 * (accept(2), NOTES), a firewall's EPERM, EINTR.  Out of fds (EMFILE,
 * ENFILE), ursa_accept has backed off already (docs/io.md).  Any other error
 * (ENOMEM, ENOBUFS, a broken listener) comes straight back when retried:
 * without a pause the loop would spin on one core for as long as it lasts,
 * so it waits ACCEPT_BACKOFF_MIN_NS, doubling up to ACCEPT_BACKOFF_MAX_NS
 * while the errors go on.  Every error but the per-connection ones is logged
 * once per streak (again only if it changes); an accepted connection ends
 * the streak.
 */
#define ACCEPT_BACKOFF_MIN_NS (1000ull * 1000)       /* 1 ms */
#define ACCEPT_BACKOFF_MAX_NS (100ull * 1000 * 1000) /* 100 ms */

struct accept_backoff {
	uint64_t delay_ns; /* the last pause of this streak, 0 outside one */
	int logged;        /* the error logged in this streak, 0 if none */
};

/* The pause before the next accept after error err (< 0); *log: say so. */
static uint64_t accept_backoff_next(struct accept_backoff *b, int err, bool *log)
{
	*log = false;
	switch (-err) {
	case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
	case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case EPERM:
	case EINTR:
		return 0;
	default:
		break;
	}
	*log = b->logged != err;
	b->logged = err;
	if (err == -EMFILE || err == -ENFILE)
		return 0;
	b->delay_ns = b->delay_ns ? b->delay_ns * 2 : ACCEPT_BACKOFF_MIN_NS;
	if (b->delay_ns > ACCEPT_BACKOFF_MAX_NS)
		b->delay_ns = ACCEPT_BACKOFF_MAX_NS;
	return b->delay_ns;
}

/* A connection was accepted: the streak, if any, is over. */
static void accept_backoff_reset(struct accept_backoff *b)
{
	b->delay_ns = 0;
	b->logged = 0;
}

/*
 * Make room on this core for a new client by cancelling the connection that
 * holds fds and memory for least: first the one idle longest between
 * requests (a keep-alive client loses only its idle connection, as nginx
 * reuses them), else the busy one stalled longest, if it has moved no byte
 * either way for SHED_STALL_NS (a reader that stopped reading, a request
 * that stopped arriving).  A connection moving bytes, however slowly, is
 * being served and is not shed: shedding it would trade one client for
 * another.  The victim's task is cancelled, idle or not: a cancel is sticky,
 * so a request that arrives at the same instant cannot keep it alive (and
 * server_conn_wait_begin refuses a shed connection).  Returns whether one
 * was shed; it closes once its task sees the cancel.
 */
static bool shed_one(struct core_state *cs, uint64_t now)
{
	struct server_conn *idle = NULL, *stalled = NULL, *victim;

	for (struct server_conn *c = cs->head; c; c = c->next) {
		if (c->shed)
			continue;
		if (c->waiting) {
			if (!idle || c->deadline_ns < idle->deadline_ns)
				idle = c;
		} else if (c->last_io_ns + SHED_STALL_NS <= now) { /* no unsigned wrap */
			if (!stalled || c->last_io_ns < stalled->last_io_ns)
				stalled = c;
		}
	}
	victim = idle ? idle : stalled;
	if (!victim)
		return false;
	victim->shed = true;
	cs->shedding++;
	cs->shed_at_ns = now;
	ursa_cancel(victim->task);
	if (atomic_fetch_add(&shed_total, 1) == 0)
		fprintf(stderr, "%s: out of room (--max-conns or a resource limit): shedding idle "
		        "and stalled connections for new ones\n", the_srv->name);
	return true;
}

/* Whether this core's acceptor is at the --max-conns cap. */
static bool at_cap(const struct core_state *cs)
{
	unsigned max = server_opts.max_conns, n = ursa_ncores();

	if (!max)
		return false;
	if (server_opts.one_acceptor)
		return atomic_load(&live) >= (long)max;
	return cs->count >= (max + n - 1) / n; /* this core's share, rounded up */
}

/*
 * Before accepting on lfd: at the cap, wait for a client to be waiting in
 * the listen backlog, then shed a connection for it and wait until that one
 * has closed; with nothing to shed, wait for a connection to close.  Never
 * sheds ahead of a client: an idle connection is only dropped for someone.
 * False if cancelled (shutting down).
 */
static bool wait_for_room(struct core_state *cs, int lfd)
{
	while (at_cap(cs)) {
		uint64_t pause_ns = 1000 * 1000; /* a shed connection closes promptly */

		/* A shed connection closes within a turn or two; one still open
		 * after SHED_STALL_NS (finishing a shielded step, say) does not
		 * hold up the next. */
		if (cs->shedding == 0 || ursa_now() - cs->shed_at_ns >= SHED_STALL_NS) {
			int r = ursa_poll(lfd, POLLIN, SWEEP_NS / 5);

			if (r < 0)
				return false;
			if (r == 0 || !at_cap(cs))
				continue;
			if (!shed_one(cs, ursa_now()))
				pause_ns = SWEEP_NS / 5; /* nothing to shed yet */
		}
		if (ursa_sleep(pause_ns) != 0)
			return false;
	}
	return true;
}

/*
 * Accept on a listener and start a task per connection: on this core (a
 * listener per core, the default), or on the cores in turn
 * (--one-acceptor).  At the --max-conns cap, or when an accept or a spawn
 * fails for want of fds or memory, it sheds a connection (shed_one) rather
 * than refuse every new client while the old ones hold everything.
 */
static void *acceptor(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	const struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .name = "conn"};
	struct accept_backoff backoff = {0};
	int one = 1;

	struct core_state *cs = &cores[ursa_core()];

	for (;;) {
		int fd;
		uint64_t pause_ns;
		bool log;

		if (!wait_for_room(cs, lfd))
			break;
		fd = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -ECANCELED || fd == -ETIMEDOUT)
			break;
		/* Out of fds or memory: one shed at a time (its close frees an fd
		 * and memory); a streak of failures must not drain every idle
		 * connection. */
		if ((fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM || fd == -ENOBUFS) &&
		    cs->shedding == 0)
			(void)shed_one(cs, ursa_now());
		if (fd < 0) {
			pause_ns = accept_backoff_next(&backoff, fd, &log);
			if (log)
				fprintf(stderr, "%s: accept on core %u: %s (backing off while it lasts)\n",
				        the_srv->name, ursa_core(), ursa_strerror(fd));
			if (pause_ns && ursa_sleep(pause_ns) != 0)
				break; /* cancelled: shutting down */
			continue;
		}
		accept_backoff_reset(&backoff);
		/* Replies go out whole in one send; Nagle would only delay them. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		atomic_fetch_add(&live, 1);
		if (!server_opts.one_acceptor)
			cs->count++;
		/* --one-acceptor: the cores in turn (round robin) */
		if (ursa_spawn_ex(NULL, server_opts.one_acceptor ? URSA_CORE_ANY : ursa_core(),
		                  the_srv->conn_fn, (void *)(intptr_t)fd, &so) < 0) {
			atomic_fetch_sub(&live, 1);
			if (!server_opts.one_acceptor)
				cs->count--;
			ursa_close(fd);
			if (cs->shedding == 0)
				(void)shed_one(cs, ursa_now()); /* out of memory: make room */
		}
	}
	ursa_close(lfd);
	return NULL;
}

/* Wait for a task we cancelled or that cannot fail; its result is moot. */
static void join_task(struct ursa_task *t)
{
	int rc = ursa_join(t, NULL);

	(void)rc;
}

static void *run_core_init(void *arg)
{
	(void)arg;
	the_srv->core_init(ursa_core());
	return NULL;
}

static void *main_task(void *arg)
{
	unsigned n = ursa_ncores(), port = server_opts.port;
	struct ursa_task **acc, **sweep;
	struct ursa_signal *stop;
	uint64_t grace_end;
	int *rc = arg, sig;

	cores = aligned_alloc(64, n * sizeof(*cores));
	if (cores)
		memset(cores, 0, n * sizeof(*cores));
	acc = calloc(n, sizeof(*acc));
	sweep = calloc(n, sizeof(*sweep));
	if (!cores || !acc || !sweep) {
		*rc = 1;
		return NULL;
	}
	if (the_srv->core_init)
		for (unsigned i = 0; i < n; i++) {
			struct ursa_task *t;

			if (ursa_spawn_on(&t, i, run_core_init, NULL) == 0)
				join_task(t);
		}
	/*
	 * By default one listener per core on one port (SO_REUSEPORT): the
	 * kernel spreads connections over the cores, accepting scales with the
	 * cores, and a connection is served where it was accepted, with no
	 * cross-core hop.  --one-acceptor instead has core 0 accept and deal
	 * connections to the cores in turn: an exactly even spread of few
	 * long-lived connections, where the 4-tuple hash can be lopsided
	 * (docs/servers.md has the measurements).  Either way a connection
	 * never changes core.  The first listener picks the port for --port 0.
	 */
	for (unsigned i = 0; i < n; i++) {
		int lfd;

		if (server_opts.one_acceptor && i > 0) {
			if (ursa_spawn_on(&sweep[i], i, sweeper, NULL) < 0) {
				*rc = 1;
				return NULL;
			}
			continue;
		}
		/* For --port 0 the first listener's port, which the others share. */
		lfd = ursa_tcp_listen_ex(server_opts.host, port, 4096, URSA_LISTEN_REUSEPORT, &port);

		if (lfd < 0) {
			fprintf(stderr, "%s: listen on port %u: %s\n", the_srv->name, port,
			        ursa_strerror(lfd));
			*rc = 1;
			return NULL;
		}
		if (ursa_spawn_on(&acc[i], i, acceptor, (void *)(intptr_t)lfd) < 0 ||
		    ursa_spawn_on(&sweep[i], i, sweeper, NULL) < 0) {
			*rc = 1;
			return NULL;
		}
	}
	printf("%s: listening on port %u with %u cores\n", the_srv->name, port, n);
	fflush(stdout);

	/*
	 * Wait for SIGINT or SIGTERM, on the ring.  Every worker inherited the
	 * mask that blocks them (server_main), so one sent before this point
	 * waits, pending, and the first wait takes it.
	 */
	if ((sig = ursa_signal_create(&stop, &stop_signals, 0)) < 0) {
		fprintf(stderr, "%s: %s\n", the_srv->name, ursa_strerror(sig));
		*rc = 1;
		return NULL;
	}
	sig = ursa_signal_wait(stop, NULL);
	if (sig > 0)
		fprintf(stderr, "%s: signal %d, shutting down\n", the_srv->name, sig);
	(void)ursa_signal_destroy(stop);
	atomic_store(&draining, true);
	for (unsigned i = 0; i < n; i++)
		ursa_cancel_and_join(acc[i], NULL); /* NULL: no acceptor there */
	grace_end = ursa_now() + server_opts.grace_ns;
	while (atomic_load(&live) > 0 && ursa_now() < grace_end)
		if (ursa_sleep(SWEEP_NS / 5) < 0)
			break; /* cancelled: a loop that waits ends on its wait */
	if (atomic_load(&live) > 0)
		fprintf(stderr, "%s: grace period over, dropping %ld connections\n", the_srv->name,
		        atomic_load(&live));
	for (unsigned i = 0; i < n; i++)
		ursa_cancel_and_join(sweep[i], NULL);
	free(acc);
	free(sweep);
	/* Tasks still running are cancelled and awaited by ursa_run. */
	return NULL;
}

static void usage(const struct server *srv, FILE *f)
{
	fprintf(f,
	        "usage: %s [--host ADDR] [--port N] [--cores N] [--idle-ms MS] [--grace-ms MS]%s\n"
	        "       [--one-acceptor] [--max-conns N]\n"
	        "  --port 0 (the default) picks a free port and prints it\n"
	        "  --max-conns N (0, the default: no cap) sheds idle or stalled connections at N\n",
	        srv->name, srv->want_root ? " [--root DIR]" : "");
}

void server_parse_args(const struct server *srv, int argc, char **argv, struct server_opts *o)
{
	static const struct option longs[] = {
		{"host", required_argument, NULL, 'h'},  {"port", required_argument, NULL, 'p'},
		{"cores", required_argument, NULL, 'c'}, {"idle-ms", required_argument, NULL, 'i'},
		{"grace-ms", required_argument, NULL, 'g'}, {"root", required_argument, NULL, 'r'},
		{"one-acceptor", no_argument, NULL, '1'}, {"max-conns", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	*o = (struct server_opts){
		.idle_ns = 60000ull * 1000000, .grace_ns = 5000ull * 1000000};
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		char *end = NULL;
		unsigned long v = 0;

		if (ch != 'h' && ch != 'r' && ch != '?' && ch != '1') {
			/* Digits only: strtoul would take "-1" as ULONG_MAX, and
			 * skip blanks and a '+'. */
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *optarg < '0' || *optarg > '9' || *end) {
				fprintf(stderr, "%s: bad number '%s'\n", srv->name, optarg);
				exit(2);
			}
		}
		switch (ch) {
		case 'h':
			o->host = optarg;
			break;
		case 'p':
			if (v > 65535) {
				fprintf(stderr, "%s: bad port %lu\n", srv->name, v);
				exit(2);
			}
			o->port = (unsigned)v;
			break;
		case 'c':
			if (v > 65535) { /* not cut to an unsigned: ursa_run judges the rest */
				fprintf(stderr, "%s: bad --cores %lu\n", srv->name, v);
				exit(2);
			}
			o->cores = (unsigned)v;
			break;
		case 'i':
		case 'g':
			/* In ns, as uint64_t: up to a year, so the sum with a clock
			 * reading cannot wrap.  An idle timeout of 0 would drop every
			 * connection at its first sweep. */
			if (v > MAX_TIMEOUT_MS || (ch == 'i' && v == 0)) {
				fprintf(stderr, "%s: bad --%s %lu (%s to %llu)\n", srv->name,
				        ch == 'i' ? "idle-ms" : "grace-ms", v, ch == 'i' ? "1" : "0",
				        (unsigned long long)MAX_TIMEOUT_MS);
				exit(2);
			}
			*(ch == 'i' ? &o->idle_ns : &o->grace_ns) = (uint64_t)v * 1000000;
			break;
		case '1':
			o->one_acceptor = true;
			break;
		case 'm':
			if (v > 1u << 24) {
				fprintf(stderr, "%s: bad --max-conns %lu\n", srv->name, v);
				exit(2);
			}
			o->max_conns = (unsigned)v;
			break;
		case 'r':
			if (srv->want_root) {
				o->root = optarg;
				break;
			}
			/* fall through */
		default:
			usage(srv, stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(srv, stderr);
		exit(2);
	}
}

int server_main(const struct server *srv, const struct server_opts *o)
{
	struct ursa_opts ro = {.cores = o->cores};
	int rc = 0, err;

	the_srv = srv;
	server_opts = *o;
	/*
	 * Block the stop signals before ursa_run so that every worker thread
	 * inherits the mask: they stay pending until main_task's ursa_signal
	 * takes them (ursa/signal.h).  SIGPIPE cannot happen (sockets use send
	 * with MSG_NOSIGNAL) but a stray write must not kill a server either.
	 */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	err = ursa_run(main_task, &rc, &ro, NULL);
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", srv->name, ursa_strerror(err));
		return 1;
	}
	free(cores);
	return rc;
}
