/* SPDX-License-Identifier: MIT */
/*
 * stats.c: reading the per-core counters (stats.h) and reporting them:
 * ursa_stats; the compact table; and the stats service, a thread of its own
 * (never a worker, so reading and printing never delays a task) that prints
 * the table on a signal (URSA_STATS_SIGNAL) or every URSA_STATS_INTERVAL_MS,
 * and serves it on a Unix socket (URSA_STATS_SOCKET, struct
 * ursa_opts.stats_socket) to tools/ursa-top.  URSA_STATS=1 prints the table
 * once more when ursa_run ends.  Nothing here runs unless asked for.
 *
 * The socket protocol (tools/ursa-top.c): the client sends one byte per
 * request ('t'); the reply is the table as text followed by one NUL byte.
 * The rates in the table are over the time since the same client's previous
 * request, totals on its first.
 */
#include "stats.h"

#include "sched.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(URSA__STATS_OPCODES == URSA_STATS_OPCODES, "one opcode count");

/* --------------------------------------------------------------- reading */

/* Core c's counters added into *o (all of struct ursa_stats). */
static void add_core(struct ursa__core *c, struct ursa_stats *o)
{
	const struct ursa__stats *s = &c->stats;
	const struct ursa__ring_stats *r = &c->ring.stats;
	uint64_t spawned = URSA__STAT_GET(s->tasks_spawned);
	uint64_t ended = URSA__STAT_GET(s->tasks_ended);

	o->tasks_spawned += spawned;
	o->tasks_ended += ended;
	/* Read one after the other: a task may end in between. */
	o->tasks_live += spawned >= ended ? spawned - ended : 0;
	o->tasks_runnable += URSA__STAT_GET(s->tasks_runnable);
	o->parked_ring += URSA__STAT_GET(s->parked[URSA__PARK_RING]);
	o->parked_primitive += URSA__STAT_GET(s->parked[URSA__PARK_PRIMITIVE]);
	o->parked_join += URSA__STAT_GET(s->parked[URSA__PARK_JOIN]);
	o->parked_pool += URSA__STAT_GET(s->parked[URSA__PARK_POOL]);
	o->parked_other += URSA__STAT_GET(s->parked[URSA__PARK_OTHER]);
	o->parks += URSA__STAT_GET(s->parks);
	{
		/* The core's `turn` (the stall detector's) counts two per switch
		 * into a task and is odd while one runs; every switch ends in a
		 * park, a yield or the task's end, or is the one running now.
		 * So the hottest paths (a yield, a switch) count nothing. */
		uint64_t turn = atomic_load_explicit(&c->turn, memory_order_relaxed);
		uint64_t sw = (turn + 1) / 2, running = turn & 1;
		uint64_t pk = URSA__STAT_GET(s->parks);
		uint64_t other = pk + ended + running;

		o->switches += sw;
		o->yields += sw > other ? sw - other : 0;
	}
	o->turns += URSA__STAT_GET(s->turns);
	o->enters += URSA__STAT_GET(s->enters);
	o->submits += URSA__STAT_GET(r->submits);
	o->sqes += URSA__STAT_GET(r->sqes);
	o->cqes += URSA__STAT_GET(r->cqes);
	o->sq_full += URSA__STAT_GET(r->sq_full);
	o->cq_overflow += URSA__STAT_GET(r->cq_overflow);
	o->sleeps += URSA__STAT_GET(s->sleeps);
	o->sleep_ns += URSA__STAT_GET(s->sleep_ns);
	o->idle_polls += URSA__STAT_GET(s->idle_polls);
	o->idle_poll_ns += URSA__STAT_GET(s->idle_poll_ns);
	o->ops += URSA__STAT_GET(s->ops);
	o->ops_inflight += URSA__STAT_GET(s->ops_inflight);
	o->pending += URSA__STAT_GET(s->pending);
	o->file_inline += URSA__STAT_GET(s->file_inline);
	o->file_ring += URSA__STAT_GET(s->file_ring);
	o->xwakes_sent += URSA__STAT_GET(s->xwakes_sent);
	o->xwakes_recv += URSA__STAT_GET(s->xwakes_recv);
	o->kicks += URSA__STAT_GET(s->kicks);
	/* The stack cache keeps its own gauges (lib/fiber/stack.h), written by
	 * its core only, like these: read as the same kind of snapshot. */
	o->stacks_mapped += URSA__STAT_GET(c->stacks.stats.live) +
	                    URSA__STAT_GET(c->stacks.stats.free_hot);
	o->stack_slabs += URSA__STAT_GET(c->stacks.stats.slabs);
	o->stack_bytes_mapped += URSA__STAT_GET(c->stacks.stats.mapped);
	o->pool_jobs += URSA__STAT_GET(s->pool_jobs);
	o->pool_job_ns += URSA__STAT_GET(s->pool_job_ns);
	o->stalls += URSA__STAT_GET(s->stalls);
	for (unsigned i = 0; i < URSA_STATS_OPCODES; i++) {
		o->ops_by_opcode[i] += URSA__STAT_GET(s->ops_by_opcode[i]);
		o->inflight_by_opcode[i] += URSA__STAT_GET(s->inflight_by_opcode[i]);
	}
}

/* The pool's gauges (runtime-wide). */
static void add_pool(struct ursa__runtime *rt, struct ursa_stats *o)
{
	unsigned threads, queued;

	ursa__pool_gauges(&rt->pool, &threads, &queued);
	o->pool_threads = threads;
	o->pool_queued = queued;
}

/* A full snapshot of core `core` (or URSA_STATS_ALL) of rt.  Any thread. */
static void snapshot(struct ursa__runtime *rt, unsigned core, struct ursa_stats *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->version = URSA_STATS_VERSION;
	o->core = core;
	o->ncores = rt->cfg.cores;
	if (core == URSA_STATS_ALL)
		for (unsigned i = 0; i < rt->cfg.cores; i++)
			add_core(&rt->cores[i], o);
	else
		add_core(&rt->cores[core], o);
	add_pool(rt, o);
}

int ursa_stats(struct ursa_stats *out, unsigned core, uint32_t flags)
{
	struct ursa__core *c = ursa__sched_core;
	struct ursa_stats all;
	size_t n;

	if (!c || !c->current)
		return -EPERM;
	if (flags || !out || out->size < offsetof(struct ursa_stats, tasks_spawned) ||
	    (core != URSA_STATS_ALL && core >= c->rt->cfg.cores))
		return -EINVAL;
	snapshot(c->rt, core, &all);
	/* An older caller's struct is a prefix of ours: fill what it has. */
	n = out->size < sizeof(all) ? out->size : sizeof(all);
	all.size = (uint32_t)n;
	memcpy(out, &all, n);
#ifdef URSA_STATS_OFF
	return -ENOTSUP;
#else
	return 0;
#endif
}

/* ---------------------------------------------------------------- table */

static const char *const opnames[] = {
	"NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD",
	"POLL_REMOVE", "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT", "TIMEOUT_REMOVE",
	"ACCEPT", "ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT", "FALLOCATE", "OPENAT", "CLOSE",
	"FILES_UPDATE", "STATX", "READ", "WRITE", "FADVISE", "MADVISE", "SEND", "RECV",
	"OPENAT2", "EPOLL_CTL", "SPLICE", "PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE",
	"SHUTDOWN", "RENAMEAT", "UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT", "MSG_RING",
	"FSETXATTR", "SETXATTR", "FGETXATTR", "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC",
	"SENDMSG_ZC",
};

static void opname(unsigned op, char *buf, size_t len)
{
	if (op < sizeof(opnames) / sizeof(opnames[0]))
		snprintf(buf, len, "%s", opnames[op]);
	else
		snprintf(buf, len, "op%u%s", op, op == URSA_STATS_OPCODES - 1 ? "+" : "");
}

/* A counter as a rate over dt seconds (prev given) or as its total. */
static double rate(uint64_t now, uint64_t before, double dt)
{
	return dt > 0 ? (double)(now - before) / dt : (double)now;
}

/* One row: a core's (ncores 1) or the total's.  sleep is the share of the
 * time its cores waited in io_uring_enter (a sleep that spans the start of
 * an interval counts in the interval it ends in: capped at 100 %). */
static void row(FILE *f, const char *name, const struct ursa_stats *s,
                const struct ursa_stats *p, double dt, double life_s, unsigned ncores)
{
	static const struct ursa_stats zero;
	double subs, sqes, sleep_ns, span, sleep;
	double jobs, job_ns, finl, fring;

	if (!p)
		p = &zero;
	subs = (double)(s->submits - p->submits);
	sqes = (double)(s->sqes - p->sqes);
	sleep_ns = (double)(s->sleep_ns - p->sleep_ns);
	span = dt > 0 ? dt : life_s;
	jobs = (double)(s->pool_jobs - p->pool_jobs);
	job_ns = (double)(s->pool_job_ns - p->pool_job_ns);
	finl = (double)(s->file_inline - p->file_inline);
	fring = (double)(s->file_ring - p->file_ring);
	sleep = span > 0 ? 100.0 * sleep_ns / 1e9 / span / ncores : 0.0;
	if (sleep > 100.0)
		sleep = 100.0;
	fprintf(f,
	        "%4s %6llu %5llu %6llu %6llu %6llu %6llu %6llu %9.0f %9.0f %6.1f %9.0f %6llu "
	        "%5llu %5.1f%% %8.0f %8.0f %5llu ",
	        name, (unsigned long long)(s->tasks_live), (unsigned long long)s->tasks_runnable,
	        (unsigned long long)s->parked_ring, (unsigned long long)s->parked_primitive,
	        (unsigned long long)s->parked_join, (unsigned long long)s->parked_pool,
	        (unsigned long long)s->parked_other, rate(s->turns, p->turns, dt),
	        rate(s->switches, p->switches, dt), subs > 0 ? sqes / subs : 0.0,
	        rate(s->cqes, p->cqes, dt), (unsigned long long)(s->sq_full - p->sq_full),
	        (unsigned long long)(s->cq_overflow - p->cq_overflow),
	        sleep,
	        rate(s->xwakes_sent, p->xwakes_sent, dt), rate(s->xwakes_recv, p->xwakes_recv, dt),
	        (unsigned long long)s->ops_inflight);
	if (finl + fring > 0)
		fprintf(f, "%5.1f%% ", 100.0 * finl / (finl + fring));
	else
		fprintf(f, "%6s ", "-");
	fprintf(f, "%3llu/%-3llu %7.0f %8.1f %6llu\n", (unsigned long long)s->pool_threads,
	        (unsigned long long)s->pool_queued, rate(s->pool_jobs, p->pool_jobs, dt),
	        jobs > 0 ? job_ns / jobs / 1e3 : 0.0, (unsigned long long)s->stalls);
}

/*
 * The table for rt into a malloc'd string: one row per core and the total.
 * With prev (one snapshot per core, then the total, taken dt seconds ago)
 * the counters are per second since then; without, totals since start.
 * cur receives this table's snapshots (ncores + 1), for the next call.
 */
static char *table(struct ursa__runtime *rt, uint64_t start_ns, struct ursa_stats *cur,
                   const struct ursa_stats *prev, double dt)
{
	unsigned n = rt->cfg.cores;
	double life_s = (double)(ursa_now() - start_ns) / 1e9;
	char *buf = NULL, name[16];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	bool any = false;

	if (!f)
		return NULL;
	for (unsigned i = 0; i < n; i++)
		snapshot(rt, i, &cur[i]);
	snapshot(rt, URSA_STATS_ALL, &cur[n]);
	fprintf(f, "ursa stats: pid %d, %u core%s, up %.1f s; %s\n", (int)getpid(), n,
	        n == 1 ? "" : "s", life_s,
	        prev ? "counters per second (since the last table)" : "counters since start");
#ifdef URSA_STATS_OFF
	fprintf(f, "(built with -Dstats=false: every counter is 0)\n");
#endif
	fprintf(f, "%4s %6s %5s %6s %6s %6s %6s %6s %9s %9s %6s %9s %6s %5s %6s %8s %8s %5s %6s "
	           "%7s %7s %8s %6s\n",
	        "core", "live", "runq", "p.ring", "p.prim", "p.join", "p.pool", "p.oth", "turns",
	        "switches", "sqe/sb", "cqes", "sqfull", "cqovf", "sleep", "xwk.out", "xwk.in",
	        "infl", "inline", "pool t/q", "jobs", "job.us", "stalls");
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%u", i);
		row(f, name, &cur[i], prev ? &prev[i] : NULL, dt, life_s, 1);
	}
	if (n > 1)
		row(f, "all", &cur[n], prev ? &prev[n] : NULL, dt, life_s, n);
	/* What the kernel is working on, by opcode (the total). */
	for (unsigned op = 0; op < URSA_STATS_OPCODES; op++) {
		char nm[24];

		if (!cur[n].inflight_by_opcode[op])
			continue;
		opname(op, nm, sizeof(nm));
		fprintf(f, "%s %s %u", any ? "," : "in flight:", nm, cur[n].inflight_by_opcode[op]);
		any = true;
	}
	if (any)
		fputc('\n', f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* --------------------------------------------------------------- service */

#define MAX_CLIENTS 8

struct client {
	int fd;
	uint64_t last_ns;          /* 0: no table served yet */
	struct ursa_stats *prev;   /* ncores + 1 */
};

struct ursa__stats_service {
	struct ursa__runtime *rt;
	uint64_t start_ns;
	bool at_exit;              /* URSA_STATS=1 */
	unsigned interval_ms;      /* URSA_STATS_INTERVAL_MS, 0: none */
	int signo;                 /* URSA_STATS_SIGNAL, 0: none */
	struct sigaction old_action;
	int wake[2];               /* the signal handler and stop write here */
	atomic_bool stop;
	bool thread_running;
	pthread_t thread;
	int listen_fd;             /* -1: no socket */
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* to unlink; "" if abstract */
	struct client clients[MAX_CLIENTS];
	struct ursa_stats *scratch, *last; /* ncores + 1 each */
	uint64_t last_ns;
};

/* The signal handler's pipe: one service owns the signal at a time. */
static atomic_int signal_fd = -1;

static void on_signal(int sig)
{
	int fd = atomic_load_explicit(&signal_fd, memory_order_relaxed);
	int saved = errno;
	char b = 's';

	(void)sig;
	if (fd >= 0)
		(void)!write(fd, &b, 1);
	errno = saved;
}

static bool env_on(const char *name)
{
	const char *s = getenv(name);

	return s && *s && strcmp(s, "0") != 0;
}

/* "USR2", "SIGUSR2" or a number; 0 if unset, -1 if not understood. */
static int parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int no;
	} names[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
	             {"WINCH", SIGWINCH}, {"QUIT", SIGQUIT}, {"URG", SIGURG}};
	char *end;
	long v;

	if (!s || !*s || strcmp(s, "0") == 0)
		return 0;
	if (isdigit((unsigned char)*s)) {
		v = strtol(s, &end, 10);
		return *end || v <= 0 || v >= NSIG ? -1 : (int)v;
	}
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].no;
	return -1;
}

/* The table to stderr, as one write. */
static void print_table(struct ursa__stats_service *sv, bool rates)
{
	uint64_t now = ursa_now();
	bool have_prev = rates && sv->last_ns;
	char *t = table(sv->rt, sv->start_ns, sv->scratch, have_prev ? sv->last : NULL,
	                have_prev ? (double)(now - sv->last_ns) / 1e9 : 0);
	struct ursa_stats *swap = sv->last;

	if (!t)
		return;
	write_all(STDERR_FILENO, t, strlen(t));
	free(t);
	sv->last = sv->scratch;
	sv->scratch = swap;
	sv->last_ns = now;
}

static int open_socket(struct ursa__stats_service *sv, const char *where)
{
	struct sockaddr_un a;
	socklen_t alen;
	size_t n = strlen(where);
	bool abstract = where[0] == '@';
	struct stat st;
	int fd, rc;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (n >= sizeof(a.sun_path) || n < (abstract ? 2u : 1u))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, where, n);
	if (abstract)
		a.sun_path[0] = 0; /* "@name": the abstract namespace, no file */
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + !abstract);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by a program that died is replaced; anything
	 * else at the path is not touched. */
	if (!abstract && lstat(where, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(where);
	if (bind(fd, (struct sockaddr *)&a, alen) < 0 || listen(fd, MAX_CLIENTS) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!abstract)
		memcpy(sv->sock_path, where, n + 1);
	sv->listen_fd = fd;
	return 0;
}

static void client_close(struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
	free(cl->prev);
	cl->prev = NULL;
}

/* A request from a client: send it the table (rates since its last one). */
static void serve(struct ursa__stats_service *sv, struct client *cl)
{
	unsigned n = sv->rt->cfg.cores;
	char req[64];
	ssize_t r = recv(cl->fd, req, sizeof(req), MSG_DONTWAIT);
	uint64_t now = ursa_now();
	struct ursa_stats *cur;
	char *t;

	if (r <= 0) {
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			client_close(cl);
		return;
	}
	cur = calloc(n + 1, sizeof(*cur));
	if (!cur) {
		client_close(cl);
		return;
	}
	t = table(sv->rt, sv->start_ns, cur, cl->last_ns ? cl->prev : NULL,
	          cl->last_ns ? (double)(now - cl->last_ns) / 1e9 : 0);
	free(cl->prev);
	cl->prev = cur;
	cl->last_ns = now;
	/* A client that does not read is dropped, never waited for. */
	if (!t || send(cl->fd, t, strlen(t) + 1, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	                  (ssize_t)(strlen(t) + 1))
		client_close(cl);
	free(t);
}

static void *service_main(void *arg)
{
	struct ursa__stats_service *sv = arg;
	uint64_t next = sv->interval_ms ? ursa_now() + sv->interval_ms * 1000000ull : 0;

	for (;;) {
		struct pollfd p[2 + MAX_CLIENTS];
		struct client *who[2 + MAX_CLIENTS];
		nfds_t np = 0;
		int timeout = -1;

		p[np].fd = sv->wake[0];
		p[np].events = POLLIN;
		who[np++] = NULL;
		if (sv->listen_fd >= 0) {
			p[np].fd = sv->listen_fd;
			p[np].events = POLLIN;
			who[np++] = NULL;
		}
		for (unsigned i = 0; i < MAX_CLIENTS; i++)
			if (sv->clients[i].fd >= 0) {
				p[np].fd = sv->clients[i].fd;
				p[np].events = POLLIN;
				who[np++] = &sv->clients[i];
			}
		if (next) {
			uint64_t now = ursa_now();

			timeout = next > now ? (int)((next - now) / 1000000u) + 1 : 0;
		}
		if (poll(p, np, timeout) < 0 && errno != EINTR)
			break;
		if (atomic_load(&sv->stop))
			break;
		if (p[0].revents & POLLIN) {
			char b[64];

			while (read(sv->wake[0], b, sizeof(b)) > 0)
				;
			print_table(sv, false); /* the signal: totals since start */
		}
		if (next && ursa_now() >= next) {
			print_table(sv, true);
			next += sv->interval_ms * 1000000ull;
			if (next < ursa_now())
				next = ursa_now() + sv->interval_ms * 1000000ull;
		}
		for (nfds_t i = 1; i < np; i++) {
			if (!p[i].revents)
				continue;
			if (!who[i]) { /* the listening socket */
				int fd = accept4(sv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				unsigned k = 0;

				if (fd < 0)
					continue;
				while (k < MAX_CLIENTS && sv->clients[k].fd >= 0)
					k++;
				if (k == MAX_CLIENTS) {
					close(fd); /* full: the viewer sees EOF */
					continue;
				}
				sv->clients[k].fd = fd;
				sv->clients[k].last_ns = 0;
			} else {
				serve(sv, who[i]);
			}
		}
	}
	return NULL;
}

static void service_free(struct ursa__stats_service *sv)
{
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		if (sv->clients[i].fd >= 0)
			client_close(&sv->clients[i]);
	if (sv->listen_fd >= 0) {
		close(sv->listen_fd);
		if (sv->sock_path[0])
			unlink(sv->sock_path);
	}
	if (sv->wake[0] >= 0) {
		close(sv->wake[0]);
		close(sv->wake[1]);
	}
	free(sv->scratch);
	free(sv->last);
	free(sv);
}

int ursa__stats_start(struct ursa__runtime *rt)
{
	struct ursa__stats_service *sv;
	const char *sock = rt->cfg.stats_socket;
	int signo = parse_signal(getenv("URSA_STATS_SIGNAL"));
	const char *iv = getenv("URSA_STATS_INTERVAL_MS");
	unsigned long interval = iv && *iv ? strtoul(iv, NULL, 10) : 0;
	int expected = -1, rc = 0;

	if (signo < 0) {
		fprintf(stderr, "ursa: URSA_STATS_SIGNAL=%s is not a signal (USR1, USR2, HUP, "
		                "WINCH, QUIT, URG or a number)\n", getenv("URSA_STATS_SIGNAL"));
		signo = 0;
	}
	if (!env_on("URSA_STATS") && !signo && !interval && !(sock && *sock))
		return 0;
	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->rt = rt;
	sv->start_ns = ursa_now();
	sv->at_exit = env_on("URSA_STATS");
	sv->interval_ms = interval > 3600000ul ? 3600000u : (unsigned)interval;
	sv->listen_fd = -1;
	sv->wake[0] = sv->wake[1] = -1;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		sv->clients[i].fd = -1;
	sv->scratch = calloc(rt->cfg.cores + 1, sizeof(*sv->scratch));
	sv->last = calloc(rt->cfg.cores + 1, sizeof(*sv->last));
	if (!sv->scratch || !sv->last) {
		service_free(sv);
		return -ENOMEM;
	}
	rt->stats_svc = sv;
	if (!signo && !sv->interval_ms && !(sock && *sock))
		return 0; /* only the table at exit: no thread */
	if (pipe2(sv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	if (sock && *sock && (rc = open_socket(sv, sock)) < 0) {
		fprintf(stderr, "ursa: cannot serve stats on %s: %s\n", sock, strerror(-rc));
		goto fail;
	}
	if (signo && atomic_compare_exchange_strong(&signal_fd, &expected, sv->wake[1])) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(signo, &sa, &sv->old_action) == 0)
			sv->signo = signo;
		else
			atomic_store(&signal_fd, -1);
	}
	rc = -pthread_create(&sv->thread, NULL, service_main, sv);
	if (rc == 0) {
		sv->thread_running = true;
		return 0;
	}
fail:
	rt->stats_svc = NULL;
	if (sv->signo) {
		sigaction(sv->signo, &sv->old_action, NULL);
		atomic_store(&signal_fd, -1);
	}
	service_free(sv);
	return rc;
}

void ursa__stats_stop(struct ursa__runtime *rt)
{
	struct ursa__stats_service *sv = rt->stats_svc;

	if (!sv)
		return;
	if (sv->thread_running) {
		char b = 'q';

		atomic_store(&sv->stop, true);
		(void)!write(sv->wake[1], &b, 1);
		pthread_join(sv->thread, NULL);
	}
	if (sv->signo) {
		sigaction(sv->signo, &sv->old_action, NULL);
		atomic_store(&signal_fd, -1);
	}
	if (sv->at_exit)
		print_table(sv, false);
	rt->stats_svc = NULL;
	service_free(sv);
}
