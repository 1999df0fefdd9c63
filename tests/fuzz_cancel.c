/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cancel: the random cancellation fuzz.  Many tasks on both cores run
 * random operations (sleep, pread (inline from the page cache, or on the
 * ring), pwrite, recv, send, accept, open, the linked chains into direct
 * descriptors (ursa_pread_path and ursa_read_file), poll, and a wait for a
 * child process), each
 * maybe inside a deadline scope with a random short deadline (one in eight
 * sizes, offsets, sleeps and deadlines is drawn at the edges: 0, 1, the
 * largest, URSA_FOREVER - 1), maybe in a
 * child task that its parent cancels (ursa_cancel, from either core) or
 * whose scope it cancels (ursa_scope_cancel) at a random moment, maybe
 * inside a shielded scope under a cancelled one.  It proves, for every op:
 *
 *   - it returns once with exactly one outcome: a result, -ECANCELED only
 *     where a cancellation could reach it, -ETIMEDOUT only where a deadline
 *     governs it and never before that deadline; nothing else;
 *   - a result that arrived wins and is right: every byte a send reports is
 *     received exactly once and in order (checked byte by byte against each
 *     connection's deterministic stream, and the totals at the end); a pread
 *     returns the file's bytes; a pwrite's bytes are in the file; a sleep that
 *     returns 0 slept its time;
 *   - an fd made by a cancelled accept or open is returned to the caller
 *     (each connection a client made is accepted exactly once, each opened
 *     fd names the right file) and nothing leaks: the process has the same
 *     open fds before and after, every spawned task is joined once with an
 *     outcome that matches what was done to it, ASan's leak check is clean.
 *
 * A hang fails too: a watchdog (URSA_FUZZ_TIMEOUT seconds, default 240)
 * prints the seed and what each unfinished worker was doing, and exits 2.
 *
 * A plain program (no Criterion) so that it also runs under TSan.
 * Usage: fuzz_cancel [ops [seed]]; also URSA_FUZZ_OPS, URSA_FUZZ_SEED.  The
 * seed fixes every random choice (which op, which deadline, when to cancel);
 * the interleaving of the two cores is the machine's, so a failing seed is a
 * strong hint for a re-run, not a guaranteed replay.  Exit 0 means every
 * check held.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ursa.h"

#include "io.h"      /* free direct-descriptor slots, to prove none leaked */
#include "runtime.h"

#define US 1000ull
#define MS 1000000ull

#define WORKERS 64          /* concurrent op streams, half per core */
#define DATA_SIZE (64 << 10) /* the file every pread reads */
#define WFILE_SIZE (64 << 10) /* span of each worker's pwrite file */
#define MAX_IO (16 << 10)   /* largest pread / pwrite */
#define MAX_NET (8 << 10)   /* largest recv / send */
#define MAX_CLIENTS 4       /* connections made and not yet accepted, per worker */
#define SAFETY_NS (20 * MS) /* bounds an op that nothing else would end */
#define DRAIN_NS (5000 * MS) /* the final drains: the data are there already */

enum kind {
	K_SLEEP, K_READ, K_WRITE, K_RECV, K_SEND, K_ACCEPT, K_OPEN, K_PATH, K_WHOLE, K_POLL, K_WAITID,
	NKINDS
};
enum outcome { O_DONE, O_CANCELLED, O_TIMEDOUT, NOUTCOMES };
enum mode { M_DIRECT, M_CANCEL, M_SCOPE_CANCEL, M_SHIELD, NMODES };

static const char *const kind_name[NKINDS] = {"sleep",      "read",      "write", "recv",
                                              "send",       "accept",    "open",  "pread_path",
                                              "read_file",  "poll",      "waitid"};
static const char *const mode_name[NMODES] = {"direct (maybe a deadline)", "child + ursa_cancel",
                                              "child + ursa_scope_cancel",
                                              "shielded under a cancelled scope"};

/* ------------------------------------------------------------ bookkeeping */

static uint64_t g_seed;
static long g_ops;

static _Atomic long stat_ops[NKINDS][NOUTCOMES];
static _Atomic long stat_won[NKINDS]; /* results that arrived while a cancel was being sent */
static _Atomic long stat_short_reads;
static _Atomic long stat_modes[NMODES];
static _Atomic long n_started, n_finished;
static _Atomic long n_spawned, n_joined, n_join_cancelled, n_cancels;
static _Atomic long n_conn_made, n_conn_accepted;
static _Atomic long n_failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

/* Record a broken invariant; the first few are printed with the seed (the
 * final totals always are: fail_final). */
static void vfail(bool always, const char *fmt, va_list ap)
{
	long n = atomic_fetch_add(&n_failures, 1);

	if (n >= 20 && !always)
		return;
	pthread_mutex_lock(&fail_lock);
	fprintf(stderr, "FAIL (seed %llu): ", (unsigned long long)g_seed);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&fail_lock);
}

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(false, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void fail_final(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(true, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ random */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	*s = splitmix(*s);
	return *s;
}

static unsigned below(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd(s) % n);
}

/* One of n values at the edges (0, 1, the largest, ...), once in eight
 * draws, else -1: a uniform draw seldom lands where overflows and
 * off-by-ones live (issue 20). */
static int edge(uint64_t *s, unsigned n)
{
	return below(s, 8) == 0 ? (int)below(s, n) : -1;
}

/* A size in [1, max], or at the edges 0, 1 or max. */
static size_t random_size(uint64_t *s, size_t max)
{
	int e = edge(s, 3);

	return e < 0 ? 1 + below(s, (unsigned)max) : e == 2 ? max : (size_t)e;
}

/* Byte `pos` of stream `key`: what the file holds, what a connection carries. */
static void stream_fill(uint64_t key, uint64_t pos, unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++, pos++)
		buf[i] = (unsigned char)(splitmix(key * 0x100000001b3ull + pos / 8) >> (pos % 8 * 8));
}

/* The first offset where buf differs from stream key at pos, or n. */
static size_t stream_check(uint64_t key, uint64_t pos, const unsigned char *buf, size_t n)
{
	unsigned char want[256];

	for (size_t done = 0; done < n;) {
		size_t k = n - done < sizeof(want) ? n - done : sizeof(want);

		stream_fill(key, pos + done, want, k);
		for (size_t i = 0; i < k; i++)
			if (buf[done + i] != want[i])
				return done + i;
		done += k;
	}
	return n;
}

/* ------------------------------------------------------------------ state */

/* A stream connection: one worker sends on fd[0], another receives on fd[1]. */
struct conn {
	uint64_t key;
	int fd[2];
	const char *type;
	uint64_t sent;  /* bytes ursa_send reported; only the sending worker's ops touch it */
	uint64_t recvd; /* bytes received and checked; only the receiving worker's */
};

struct client {
	int fd;
	unsigned port;
};

/*
 * One op stream.  A worker runs one op at a time (itself or in a child it
 * joins before the next), so its resources need no lock even when the op
 * runs on the other core: spawn and join order the accesses.
 */
struct worker {
	unsigned id;
	uint64_t rng;
	long quota, done;
	int lfd;
	unsigned port;
	struct client clients[MAX_CLIENTS]; /* connected, not yet accepted */
	int nclients;
	int wfd;           /* this worker's pwrite file */
	char opath[300];   /* the file its O_CREAT opens make */
	ino_t oino;
	struct conn *out[2], *in[2];
	struct ursa_process *proc; /* a child that sleeps until killed, or NULL */
	bool proc_killed;          /* SIGTERM sent, not yet reaped */
	/* What it is doing, for the report on a hang: */
	_Atomic int phase; /* enum phase */
	_Atomic int kind;  /* the op in progress + 1, or 0 */
	enum kind last;    /* the last op's kind, for reports */
};

enum phase { P_OP, P_DELAY, P_SCOPE_WAIT, P_CANCEL, P_JOIN, P_DRAIN, P_END };
static const char *const phase_name[] = {"in its own op", "delaying", "waiting for the scope",
                                         "cancelling", "joining its child", "draining",
                                         "ended"};

static char g_dir[256];
static char g_datapath[300];
static int g_datafd;
static ino_t g_dataino;
static unsigned char g_data[DATA_SIZE];
static struct conn g_conns[2 * WORKERS];
static struct worker g_workers[WORKERS];

/* A hang is a failure too: say which seed hung and what each unfinished
 * worker was doing, then die.  (stdio in a handler: we exit right after.) */
static void on_alarm(int sig)
{
	(void)sig;
	fprintf(stderr, "FAIL (seed %llu): no end after the time limit; %ld ops started, %ld "
	        "finished\n", (unsigned long long)g_seed, atomic_load(&n_started),
	        atomic_load(&n_finished));
	for (unsigned i = 0; i < WORKERS; i++) {
		struct worker *w = &g_workers[i];
		int k = atomic_load(&w->kind);

		if (atomic_load(&w->phase) != P_END)
			fprintf(stderr, "  worker %u (core %u): %ld of %ld ops, %s, op %s\n", i,
			        i % 2, w->done, w->quota, phase_name[atomic_load(&w->phase)],
			        k ? kind_name[k - 1] : "-");
	}
	_exit(2);
}

/* What may happen to an op, from where it runs. */
struct env {
	uint64_t deadline;   /* earliest deadline of the scopes that govern it */
	bool may_cancel;     /* a task or scope cancel may reach it */
	bool bounded;        /* something will end it even if the kernel never does */
	_Atomic int *cancel_flag; /* set by the parent just before it cancels */
};

/* ------------------------------------------------------------ the ops */

/* Each returns the op's raw result after checking a non-negative one. */

static long op_sleep(uint64_t *rng, const struct env *e)
{
	uint64_t ns, t0;
	long r;

	switch (below(rng, 6)) {
	case 0: ns = 0; break; /* a yield */
	case 1: ns = (1 + below(rng, 50)) * US; break;
	case 2: ns = (100 + below(rng, 1900)) * US; break;
	case 3: ns = (1 + below(rng, 5000)) * US; break;
	/* The edges: 1 ns, and the largest finite sleep (now + ns saturates
	 * to forever, so only where something else ends it). */
	case 4: ns = e->bounded && below(rng, 2) ? URSA_FOREVER - 1 : 1; break;
	default: ns = e->bounded ? URSA_FOREVER : (1 + below(rng, 20)) * US; break;
	}
	t0 = ursa_now();
	r = ursa_sleep(ns);
	if (r == 0 && ns == URSA_FOREVER)
		fail("ursa_sleep(URSA_FOREVER) returned 0");
	else if (r == 0 && ursa_now() - t0 < ns)
		fail("ursa_sleep(%llu ns) returned 0 after %llu ns", (unsigned long long)ns,
		     (unsigned long long)(ursa_now() - t0));
	return r;
}

static long op_read(uint64_t *rng)
{
	static const off_t edge_off[] = {0, 1, DATA_SIZE - 1, DATA_SIZE};
	unsigned char buf[MAX_IO];
	size_t n = random_size(rng, MAX_IO);
	int eo = edge(rng, 4);
	off_t off = eo < 0 ? below(rng, DATA_SIZE + 1) : edge_off[eo];
	size_t want = (size_t)(DATA_SIZE - off) < n ? (size_t)(DATA_SIZE - off) : n;
	struct iovec iov = {buf, n};
	/* Mostly the page-cache fast path; one in four straight to the ring. */
	ssize_t r = below(rng, 4) ? ursa_pread(g_datafd, buf, n, off)
	                          : ursa_preadv2(g_datafd, &iov, 1, off, URSA_RWF_RING);

	if (r < 0)
		return r;
	if ((size_t)r > want)
		fail("pread(%zu at %lld) returned %zd, more than the file has", n, (long long)off, r);
	else if (memcmp(buf, g_data + off, (size_t)r))
		fail("pread(%zu at %lld) returned wrong bytes", n, (long long)off);
	if ((size_t)r < want)
		atomic_fetch_add(&stat_short_reads, 1);
	return r;
}

static long op_write(struct worker *w, uint64_t *rng)
{
	unsigned char buf[MAX_IO], chk[MAX_IO];
	size_t n = random_size(rng, MAX_IO);
	int eo = edge(rng, 2);
	off_t off = eo < 0 ? below(rng, WFILE_SIZE) : eo ? WFILE_SIZE - 1 : 0;
	ssize_t r;

	buf[0] = 0; /* n may be 0: nothing is read, but the compiler cannot know */
	stream_fill(rnd(rng), 0, buf, n);
	r = ursa_pwrite(w->wfd, buf, n, off);
	if (r <= 0)
		return r;
	/* Reported written: then it is in the file (nothing else writes it). */
	if ((size_t)r > n)
		fail("pwrite(%zu) returned %zd", n, r);
	else if (pread(w->wfd, chk, (size_t)r, off) != r || memcmp(buf, chk, (size_t)r))
		fail("pwrite(%zu at %lld) returned %zd but the file does not hold those bytes", n,
		     (long long)off, r);
	return r;
}

static long op_recv(struct worker *w, uint64_t *rng)
{
	unsigned char buf[MAX_NET];
	struct conn *c = w->in[below(rng, 2)];
	size_t n = random_size(rng, MAX_NET), bad;
	ssize_t r = ursa_recv(c->fd[1], buf, n, 0);

	if (r < 0 || (r == 0 && n == 0))
		return r;
	if (r == 0 || (size_t)r > n) {
		fail("recv(%zu) on %s conn %llu returned %zd", n, c->type,
		     (unsigned long long)c->key, r);
		return r;
	}
	/* In order, once: exactly the stream's next r bytes. */
	bad = stream_check(c->key, c->recvd, buf, (size_t)r);
	if (bad < (size_t)r)
		fail("recv on %s conn %llu: byte %llu of the stream is wrong (lost, duplicated "
		     "or reordered data)",
		     c->type, (unsigned long long)c->key, (unsigned long long)(c->recvd + bad));
	c->recvd += (size_t)r;
	return r;
}

static long op_send(struct worker *w, uint64_t *rng)
{
	unsigned char buf[MAX_NET];
	struct conn *c = w->out[below(rng, 2)];
	size_t n = random_size(rng, MAX_NET);
	ssize_t r;

	buf[0] = 0; /* as in op_write */
	stream_fill(c->key, c->sent, buf, n);
	r = ursa_send(c->fd[0], buf, n, 0);
	if (r < 0)
		return r;
	if ((r == 0 && n != 0) || (size_t)r > n)
		fail("send(%zu) on %s conn returned %zd", n, c->type, r);
	else
		c->sent += (size_t)r;
	return r;
}

/* The connection behind an accepted fd must be one a client made and
 * nobody accepted yet; it is closed here, with its client. */
static void take_connection(struct worker *w, int fd, const struct sockaddr_in *peer)
{
	unsigned port = ntohs(peer->sin_port);
	int i, rc;

	for (i = 0; i < w->nclients; i++)
		if (w->clients[i].port == port)
			break;
	if (i == w->nclients) {
		fail("accept returned a connection (port %u) no client made or already taken",
		     port);
	} else {
		close(w->clients[i].fd);
		w->clients[i] = w->clients[--w->nclients];
		atomic_fetch_add(&n_conn_accepted, 1);
	}
	/* Shielded inside: closes even in a cancelled task. */
	rc = ursa_close(fd);
	if (rc)
		fail("ursa_close(accepted fd) = %d", rc);
}

static void connect_client(struct worker *w)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(w->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fail("socket: %s", strerror(errno));
		return;
	}
	/* Non-blocking: a loopback connect lands in the backlog at once or
	 * very soon; the accept may find it there or wait for it. */
	if ((connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		fail("connect: %s", strerror(errno));
		close(fd);
		return;
	}
	w->clients[w->nclients].fd = fd;
	w->clients[w->nclients].port = ntohs(a.sin_port);
	w->nclients++;
	atomic_fetch_add(&n_conn_made, 1);
}

static long op_accept(struct worker *w, uint64_t *rng)
{
	struct sockaddr_in peer; /* the kernel writes these two at completion */
	socklen_t len = sizeof(peer);
	int fd;

	/* Usually a connection is waiting (or about to); sometimes none. */
	if (w->nclients < MAX_CLIENTS && below(rng, 4))
		connect_client(w);
	fd = ursa_accept(w->lfd, (struct sockaddr *)&peer, &len);
	if (fd >= 0)
		take_connection(w, fd, &peer);
	return fd;
}

static long op_open(struct worker *w, uint64_t *rng)
{
	struct stat st;
	ino_t want;
	int fd, rc;

	/* O_CREAT goes to the kernel's io-wq, where a cancel can find the open
	 * already running (-EALREADY) and the fd still comes; a plain open of
	 * an existing file completes inline. */
	if (below(rng, 2)) {
		want = w->oino;
		fd = ursa_open(w->opath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	} else {
		want = g_dataino;
		fd = ursa_open(g_datapath, O_RDONLY | O_CLOEXEC, 0);
	}
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || st.st_ino != want)
		fail("ursa_open returned fd %d, which is not the file opened", fd);
	rc = ursa_close(fd);
	if (rc)
		fail("ursa_close(opened fd) = %d", rc);
	return fd;
}

/* open -> read -> close as one linked chain: the bytes win, never an fd. */
static long op_path(uint64_t *rng)
{
	unsigned char buf[MAX_IO];
	size_t n = random_size(rng, MAX_IO);
	off_t off = below(rng, DATA_SIZE + 1);
	size_t want = (size_t)(DATA_SIZE - off) < n ? (size_t)(DATA_SIZE - off) : n;
	ssize_t r = ursa_pread_path(AT_FDCWD, g_datapath, buf, n, off);

	if (r < 0)
		return r;
	if ((size_t)r != want || memcmp(buf, g_data + off, (size_t)r))
		fail("pread_path(%zu at %lld) returned %zd or wrong bytes", n, (long long)off, r);
	return r;
}

static long op_whole(void)
{
	void *got = NULL;
	size_t len = 0;
	int rc = ursa_read_file(g_datapath, &got, &len);

	if (rc < 0)
		return rc;
	if (len != DATA_SIZE || memcmp(got, g_data, DATA_SIZE))
		fail("read_file returned %zu bytes or wrong ones", len);
	free(got);
	return 0;
}

/* Readiness of one of the worker's incoming connections (only this worker
 * receives on them, so what poll saw is still there), with poll(2)'s
 * timeout: 0, a few µs to ms, or none at all (forever, or the largest
 * finite one, which saturates). */
static long op_poll(struct worker *w, uint64_t *rng)
{
	struct conn *c = w->in[below(rng, 2)];
	uint64_t timeout, t0;
	unsigned char b;
	long r;

	switch (below(rng, 5)) {
	case 0: timeout = 0; break;
	case 1: timeout = (1 + below(rng, 50)) * US; break;
	case 2: timeout = (50 + below(rng, 2000)) * US; break;
	case 3: timeout = URSA_FOREVER - 1; break;
	default: timeout = URSA_FOREVER; break;
	}
	t0 = ursa_now();
	r = ursa_poll(c->fd[1], POLLIN, timeout);
	if (r > 0 && (!(r & POLLIN) || recv(c->fd[1], &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1))
		fail("poll(POLLIN) on %s conn returned %#lx, but it holds nothing", c->type, r);
	else if (r == 0 && timeout >= URSA_FOREVER - 1)
		fail("poll without a timeout returned 0");
	else if (r == 0 && ursa_now() - t0 < timeout)
		fail("poll returned 0 after %llu ns of a %llu ns timeout",
		     (unsigned long long)(ursa_now() - t0), (unsigned long long)timeout);
	return r;
}

/* Wait for the worker's child, which sleeps until it is killed: killed
 * first (now and then), the wait reaps it with SIGTERM's status; otherwise
 * only a cancellation or a deadline ends the wait, and the child must still
 * be there afterwards, untouched. */
static atomic_bool no_pidfd; /* pidfd_open is -ENOSYS (valgrind 3.19) */

static long op_waitid(struct worker *w, uint64_t *rng)
{
	char *argv[] = {"sleep", "1000", NULL};
	int status = 0;
	long r;

	if (atomic_load(&no_pidfd))
		return op_poll(w, rng);
	if (!w->proc) {
		r = ursa_process_create(&w->proc, "sleep", argv, NULL);
		if (r == -ENOSYS) {
			/* Valgrind 3.19 does not know pidfd_open: no child
			 * processes under it.  Say so once, and poll instead. */
			if (!atomic_exchange(&no_pidfd, true))
				fprintf(stderr, "fuzz_cancel: no pidfd_open here (-ENOSYS): "
				                "the waitid ops poll instead\n");
			w->proc = NULL;
			return op_poll(w, rng);
		}
		if (r < 0) {
			fail("ursa_process_create(sleep) = %ld", r);
			w->proc = NULL;
			return r;
		}
		w->proc_killed = false;
	}
	if (!w->proc_killed && below(rng, 8) == 0) {
		if (ursa_process_kill(w->proc, SIGTERM))
			fail("ursa_process_kill of a live child failed");
		w->proc_killed = true;
	}
	r = ursa_process_wait(w->proc, &status);
	if (r == 0) {
		if (!w->proc_killed)
			fail("ursa_process_wait returned for a child nobody stopped");
		else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGTERM)
			fail("ursa_process_wait: status %#x, not SIGTERM's", status);
		if (ursa_process_destroy(w->proc))
			fail("ursa_process_destroy of a reaped child failed");
		w->proc = NULL;
	} else if (!w->proc_killed && ursa_process_kill(w->proc, 0) != 0) {
		fail("a cancelled ursa_process_wait (%ld) did not leave its child running", r);
	}
	return r;
}

static bool can_block(enum kind k)
{
	return k == K_RECV || k == K_SEND || k == K_ACCEPT || k == K_SLEEP || k == K_POLL ||
	       k == K_WAITID;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* A scope's exit agrees with what could happen inside it. */
static void check_scope_exit(int rc, uint64_t deadline, bool may_cancel, const char *what)
{
	if (rc == 0)
		return;
	if (rc == -ETIMEDOUT && deadline != URSA_FOREVER && ursa_now() >= deadline)
		return;
	if (rc == -ECANCELED && may_cancel)
		return;
	fail("ursa_scope_exit(%s) = %d (%s)", what, rc, ursa_strerror(rc));
}

/*
 * Run one op of kind k and check its outcome against env.  An op that could
 * wait forever and that nothing else bounds runs under a safety deadline.
 */
static long do_op(struct worker *w, uint64_t *rng, enum kind k, const struct env *env)
{
	struct env e = *env;
	struct ursa_scope safety;
	bool safe = !e.bounded && can_block(k);
	int flag0 = e.cancel_flag ? atomic_load(e.cancel_flag) : 0;
	long r;

	if (safe) {
		uint64_t dl = ursa_now() + SAFETY_NS;

		ursa_scope_enter(&safety, dl);
		e.deadline = min_u64(e.deadline, dl);
		e.bounded = true;
	}
	atomic_fetch_add(&n_started, 1);
	atomic_store(&w->kind, k + 1);
	w->last = k;
	switch (k) {
	case K_SLEEP: r = op_sleep(rng, &e); break;
	case K_READ: r = op_read(rng); break;
	case K_WRITE: r = op_write(w, rng); break;
	case K_RECV: r = op_recv(w, rng); break;
	case K_SEND: r = op_send(w, rng); break;
	case K_ACCEPT: r = op_accept(w, rng); break;
	case K_PATH: r = op_path(rng); break;
	case K_WHOLE: r = op_whole(); break;
	case K_POLL: r = op_poll(w, rng); break;
	case K_WAITID: r = op_waitid(w, rng); break;
	default: r = op_open(w, rng); break;
	}
	atomic_fetch_add(&n_finished, 1);
	atomic_store(&w->kind, 0);
	if (safe)
		check_scope_exit(ursa_scope_exit(&safety), e.deadline, e.may_cancel, "safety");
	w->done++;

	if (r >= 0) {
		atomic_fetch_add(&stat_ops[k][O_DONE], 1);
		/* The cancel was being sent while this op ran, and its result won. */
		if (!flag0 && e.cancel_flag && atomic_load(e.cancel_flag))
			atomic_fetch_add(&stat_won[k], 1);
	} else if (r == -ETIMEDOUT) {
		atomic_fetch_add(&stat_ops[k][O_TIMEDOUT], 1);
		if (e.deadline == URSA_FOREVER)
			fail("%s returned -ETIMEDOUT with no deadline", kind_name[k]);
		else if (ursa_now() < e.deadline)
			fail("%s returned -ETIMEDOUT %llu ns before its deadline", kind_name[k],
			     (unsigned long long)(e.deadline - ursa_now()));
	} else if (r == -ECANCELED) {
		atomic_fetch_add(&stat_ops[k][O_CANCELLED], 1);
		if (!e.may_cancel)
			fail("%s returned -ECANCELED where nothing could cancel it", kind_name[k]);
	} else {
		fail("%s returned %ld (%s)", kind_name[k], r, ursa_strerror((int)r));
	}
	return r;
}

/* Whether deadline dl passes during the run: not URSA_FOREVER, and not
 * the edge values near it either (they bound nothing). */
static bool will_pass(uint64_t dl)
{
	return dl < URSA_FOREVER / 2;
}

/* now, a few µs, some hundred µs or a few ms from now; or at the edges:
 * 0 and 1 (long passed), now + 1, the largest finite deadline and
 * URSA_FOREVER (neither ever passes). */
static uint64_t random_deadline(uint64_t *rng)
{
	uint64_t now = ursa_now();

	switch (edge(rng, 5)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return now + 1;
	case 3: return URSA_FOREVER - 1;
	case 4: return URSA_FOREVER;
	default: break;
	}
	switch (below(rng, 7)) {
	case 0: return now; /* passed before the op starts */
	case 1:
	case 2: return now + (1 + below(rng, 20)) * US;
	case 3:
	case 4: return now + (20 + below(rng, 480)) * US;
	default: return now + (500 + below(rng, 4500)) * US;
	}
}

/* A random op, half the time inside a deadline scope of its own. */
static long random_op(struct worker *w, uint64_t *rng, const struct env *env)
{
	enum kind k = (enum kind)below(rng, NKINDS);
	struct ursa_scope s;
	struct env e = *env;
	uint64_t dl;
	long r;

	if (below(rng, 2))
		return do_op(w, rng, k, env);
	dl = random_deadline(rng);
	ursa_scope_enter(&s, dl);
	e.deadline = min_u64(e.deadline, dl);
	/* A deadline years away bounds nothing: do_op adds its safety one. */
	e.bounded = e.bounded || will_pass(dl);
	r = do_op(w, rng, k, &e);
	check_scope_exit(ursa_scope_exit(&s), dl, e.may_cancel, "op deadline");
	return r;
}

/* Let the other side get somewhere first: nowhere, its submission, or into
 * the kernel's wait. */
static void random_delay(uint64_t *rng)
{
	int rc = 0;

	switch (below(rng, 6)) {
	case 0: break;
	case 1: ursa_yield(); break;
	case 2:
		for (unsigned i = 2 + below(rng, 3); i; i--)
			ursa_yield();
		break;
	case 3: rc = ursa_sleep((1 + below(rng, 20)) * US); break;
	case 4: rc = ursa_sleep((20 + below(rng, 280)) * US); break;
	default: rc = ursa_sleep((300 + below(rng, 2700)) * US); break;
	}
	if (rc)
		fail("a parent's sleep returned %d", rc);
}

/* -------------------------------------------------------------- the modes */

struct child {
	struct worker *w;
	uint64_t rng;
	int nops;
	bool will_cancel;
	_Atomic int cancel_flag;
	/* scope-cancel mode: 0 not yet entered, 1 entered (s is valid),
	 * 2 the parent is inside ursa_scope_cancel(s), 3 left */
	_Atomic int scope_state;
	struct ursa_scope *_Atomic scope;
};

/* Ops in a task its parent may cancel.  Once an op has said -ECANCELED,
 * cancellation is sticky: no later op may succeed. */
static void *cancel_child(void *arg)
{
	struct child *c = arg;
	struct env e = {URSA_FOREVER, c->will_cancel, c->will_cancel, &c->cancel_flag};
	bool cancelled = false;

	for (int i = 0; i < c->nops; i++) {
		long r = random_op(c->w, &c->rng, &e);

		if (cancelled && r >= 0)
			fail("%s succeeded (%ld) in a task whose earlier op said -ECANCELED",
			     kind_name[c->w->last], r);
		if (r == -ECANCELED)
			cancelled = true;
	}
	return c;
}

static void *scope_child(void *arg)
{
	struct child *c = arg;
	uint64_t dl = below(&c->rng, 2) ? random_deadline(&c->rng) : URSA_FOREVER;
	struct env e = {dl, true, true, &c->cancel_flag};
	struct ursa_scope s;
	int expect = 1;

	ursa_scope_enter(&s, dl);
	atomic_store(&c->scope, &s);
	atomic_store(&c->scope_state, 1);
	for (int i = 0; i < c->nops - 1; i++)
		(void)random_op(c->w, &c->rng, &e);
	/* Leave only when the parent is not inside ursa_scope_cancel(&s). */
	while (!atomic_compare_exchange_weak(&c->scope_state, &expect, 3)) {
		expect = 1;
		ursa_yield();
	}
	check_scope_exit(ursa_scope_exit(&s), dl, true, "scope-cancelled");
	/* The task itself was not cancelled: after the scope, ops work again. */
	{
		struct env after = {URSA_FOREVER, false, false, NULL};

		(void)random_op(c->w, &c->rng, &after);
	}
	return c;
}

static void run_child(struct worker *w, long left, bool scope_mode)
{
	struct child c = {.w = w, .rng = rnd(&w->rng)};
	struct ursa_task *t;
	void *res = NULL;
	int rc, j;

	c.nops = 1 + (int)below(&w->rng, 3);
	if (c.nops > left)
		c.nops = (int)left;
	if (scope_mode && c.nops < 2)
		c.nops = 2; /* one in the scope, one after it */
	c.will_cancel = !scope_mode && below(&w->rng, 10) < 8;
	rc = ursa_spawn_on(&t, below(&w->rng, ursa_ncores()), scope_mode ? scope_child : cancel_child,
	                   &c);
	if (rc) {
		fail("ursa_spawn_on: %d", rc);
		return;
	}
	atomic_fetch_add(&n_spawned, 1);
	atomic_store(&w->phase, P_DELAY);
	random_delay(&w->rng);
	if (scope_mode) {
		int expect = 1;

		atomic_store(&w->phase, P_SCOPE_WAIT);
		/* Wait until the scope is entered (the child may not have run
		 * yet), then cancel it unless it has been left already. */
		while (atomic_load(&c.scope_state) == 0)
			ursa_yield();
		if (atomic_compare_exchange_strong(&c.scope_state, &expect, 2)) {
			atomic_store(&w->phase, P_CANCEL);
			atomic_store(&c.cancel_flag, 1);
			ursa_scope_cancel(atomic_load(&c.scope));
			atomic_fetch_add(&n_cancels, 1);
			atomic_store(&c.scope_state, 1);
		}
	} else if (c.will_cancel) {
		atomic_store(&w->phase, P_CANCEL);
		atomic_store(&c.cancel_flag, 1);
		rc = ursa_cancel(t);
		atomic_fetch_add(&n_cancels, 1);
		if (rc != 0 && rc != -ESRCH)
			fail("ursa_cancel = %d", rc);
	}
	atomic_store(&w->phase, P_JOIN);
	j = ursa_join(t, &res);
	atomic_store(&w->phase, P_OP);
	atomic_fetch_add(&n_joined, 1);
	if (j == -ECANCELED)
		atomic_fetch_add(&n_join_cancelled, 1);
	if (j == 0 && res != &c)
		fail("ursa_join returned 0 but not the child's result");
	else if (j == -ECANCELED && !c.will_cancel)
		fail("ursa_join = -ECANCELED for a task nobody cancelled");
	else if (j != 0 && j != -ECANCELED)
		fail("ursa_join = %d", j);
}

/* An op shielded from an outer scope that is cancelled: only its own
 * deadline may end it. */
static void run_shielded(struct worker *w)
{
	struct ursa_scope outer, inner;
	uint64_t dl = below(&w->rng, 2) ? random_deadline(&w->rng) : URSA_FOREVER;
	struct env e = {dl, false, will_pass(dl), NULL};
	int rc;

	ursa_scope_enter(&outer, URSA_FOREVER);
	ursa_scope_cancel(&outer);
	ursa_scope_enter_shielded(&inner, dl);
	(void)do_op(w, &w->rng, (enum kind)below(&w->rng, NKINDS), &e);
	check_scope_exit(ursa_scope_exit(&inner), dl, false, "shielded");
	rc = ursa_scope_exit(&outer);
	if (rc != -ECANCELED)
		fail("ursa_scope_exit(cancelled outer scope) = %d", rc);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct env direct = {URSA_FOREVER, false, false, NULL};

	while (w->done < w->quota) {
		long left = w->quota - w->done;
		unsigned m = below(&w->rng, 10);
		enum mode mode = m < 3 ? M_DIRECT : m < 7 ? M_CANCEL : m < 9 ? M_SCOPE_CANCEL : M_SHIELD;

		if (mode == M_SCOPE_CANCEL && left < 2)
			mode = M_DIRECT;
		atomic_fetch_add(&stat_modes[mode], 1);
		switch (mode) {
		case M_DIRECT: (void)random_op(w, &w->rng, &direct); break;
		case M_CANCEL: run_child(w, left, false); break;
		case M_SCOPE_CANCEL: run_child(w, left, true); break;
		default: run_shielded(w); break;
		}
	}
	/* The connections no accept took are in the backlog, each exactly once. */
	atomic_store(&w->phase, P_DRAIN);
	while (w->nclients > 0) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		struct ursa_scope s;
		int fd;

		ursa_scope_enter(&s, ursa_now() + DRAIN_NS);
		fd = ursa_accept(w->lfd, (struct sockaddr *)&peer, &len);
		(void)ursa_scope_exit(&s);
		if (fd < 0) {
			fail("worker %u: %d connections never accepted (%s)", w->id, w->nclients,
			     ursa_strerror(fd));
			while (w->nclients > 0)
				close(w->clients[--w->nclients].fd);
			break;
		}
		take_connection(w, fd, &peer);
	}
	atomic_store(&w->phase, P_END);
	return w;
}

/* ----------------------------------------------------------- set-up, end */

static int tcp_pair(int lfd, unsigned port, int fd[2])
{
	int c = ursa_tcp_connect("127.0.0.1", port);
	int s = c >= 0 ? ursa_accept(lfd, NULL, NULL) : -1;

	if (c < 0 || s < 0)
		return -1;
	fd[0] = c;
	fd[1] = s;
	return 0;
}

/* Everything still in a connection arrives, in order, and adds up. */
static void drain_conn(struct conn *c)
{
	unsigned char buf[MAX_NET];

	if (shutdown(c->fd[0], SHUT_WR))
		fail("shutdown: %s", strerror(errno));
	for (;;) {
		struct ursa_scope s;
		ssize_t r;
		size_t bad;

		ursa_scope_enter(&s, ursa_now() + DRAIN_NS);
		r = ursa_recv(c->fd[1], buf, sizeof(buf), 0);
		(void)ursa_scope_exit(&s);
		if (r <= 0) {
			if (r < 0)
				fail("draining %s conn: %s", c->type, ursa_strerror((int)r));
			break;
		}
		bad = stream_check(c->key, c->recvd, buf, (size_t)r);
		if (bad < (size_t)r)
			fail("draining %s conn %llu: byte %llu is wrong", c->type,
			     (unsigned long long)c->key, (unsigned long long)(c->recvd + bad));
		c->recvd += (size_t)r;
	}
	if (c->recvd != c->sent)
		fail_final("%s conn %llu: %llu bytes reported sent, %llu received", c->type,
		     (unsigned long long)c->key, (unsigned long long)c->sent,
		     (unsigned long long)c->recvd);
	if (ursa_close(c->fd[0]) || ursa_close(c->fd[1]))
		fail("closing a conn");
}

static void *slots_check(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000 && ursa__io_slots_free(ursa__sched_core) != URSA__IO_SLOTS; i++)
		(void)!ursa_sleep(MS);
	if (ursa__io_slots_free(ursa__sched_core) != URSA__IO_SLOTS)
		fail_final("core %u: %u of %u direct descriptors free at the end", ursa_core(),
		           ursa__io_slots_free(ursa__sched_core), URSA__IO_SLOTS);
	return NULL;
}

static void *fuzz_main(void *arg)
{
	struct ursa_task *t[WORKERS];
	int lfd = ursa_tcp_listen("127.0.0.1", 0, WORKERS);
	unsigned port;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	(void)arg;
	if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &len)) {
		fail("listen: %d", lfd);
		return NULL;
	}
	port = ntohs(a.sin_port);
	/* Conn 2i is a Unix socketpair, 2i+1 a loopback TCP pair; worker i
	 * sends on both, worker i+1 (on the other core) receives. */
	for (unsigned i = 0; i < 2 * WORKERS; i++) {
		struct conn *c = &g_conns[i];

		c->key = i + 1;
		c->type = i % 2 ? "tcp" : "unix";
		if (i % 2 ? tcp_pair(lfd, port, c->fd)
		          : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fd)) {
			fail("making conn %u", i);
			return NULL;
		}
	}
	if (ursa_close(lfd))
		fail("close listener");
	for (unsigned i = 0; i < WORKERS; i++) {
		struct worker *w = &g_workers[i];
		char path[300];

		w->id = i;
		w->rng = splitmix(g_seed * 0x9e3779b97f4a7c15ull + i);
		w->quota = g_ops / WORKERS + ((long)i < g_ops % WORKERS);
		w->lfd = ursa_tcp_listen("127.0.0.1", 0, 64);
		len = sizeof(a);
		if (w->lfd < 0 || getsockname(w->lfd, (struct sockaddr *)&a, &len)) {
			fail("worker listen: %d", w->lfd);
			return NULL;
		}
		w->port = ntohs(a.sin_port);
		snprintf(path, sizeof(path), "%s/w%u", g_dir, i);
		w->wfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		snprintf(w->opath, sizeof(w->opath), "%s/o%u", g_dir, i);
		{
			struct stat st;
			int fd = open(w->opath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

			if (w->wfd < 0 || fd < 0 || fstat(fd, &st)) {
				fail("worker files: %s", strerror(errno));
				return NULL;
			}
			w->oino = st.st_ino;
			close(fd);
		}
		w->out[0] = &g_conns[2 * i];
		w->out[1] = &g_conns[2 * i + 1];
		w->in[0] = &g_conns[2 * ((i + WORKERS - 1) % WORKERS)];
		w->in[1] = &g_conns[2 * ((i + WORKERS - 1) % WORKERS) + 1];
	}
	for (unsigned i = 0; i < WORKERS; i++)
		if (ursa_spawn_on(&t[i], i % ursa_ncores(), worker_main, &g_workers[i])) {
			fail("spawn worker");
			return NULL;
		}
	for (unsigned i = 0; i < WORKERS; i++) {
		void *res = NULL;
		int j = ursa_join(t[i], &res);

		if (j || res != &g_workers[i])
			fail("worker %u: join %d", i, j);
		if (g_workers[i].done != g_workers[i].quota)
			fail("worker %u: %ld ops done of %ld", i, g_workers[i].done,
			     g_workers[i].quota);
	}
	for (unsigned i = 0; i < 2 * WORKERS; i++)
		drain_conn(&g_conns[i]);
	/* Every direct descriptor a chain took is back on its core's list
	 * (a chain's close completes just after the call returns). */
	for (unsigned c = 0; c < ursa_ncores(); c++) {
		struct ursa_task *t;

		if (ursa_spawn_on(&t, c, slots_check, NULL) || ursa_join(t, NULL))
			fail("slot check on core %u", c);
	}
	for (unsigned i = 0; i < WORKERS; i++) {
		if (ursa_close(g_workers[i].lfd) || ursa_close(g_workers[i].wfd))
			fail("worker %u: closing its fds", i);
		/* A child still sleeping is killed and reaped. */
		if (g_workers[i].proc && ursa_process_destroy(g_workers[i].proc))
			fail("worker %u: destroying its child", i);
	}
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static long env_or(const char *name, const char *arg, long def)
{
	const char *s = arg ? arg : getenv(name);

	return s && *s ? strtol(s, NULL, 0) : def;
}

int main(int argc, char **argv)
{
	struct ursa_opts o = {.cores = 2};
	const char *base = getenv("TMPDIR");
	uint64_t t0;
	void *res = NULL;
	long total[NOUTCOMES] = {0};
	int fds, rc;

	g_ops = env_or("URSA_FUZZ_OPS", argc > 1 ? argv[1] : NULL, 100000);
	g_seed = (uint64_t)env_or("URSA_FUZZ_SEED", argc > 2 ? argv[2] : NULL, 1);
	if (g_ops < WORKERS) {
		fprintf(stderr, "usage: fuzz_cancel [ops (>= %d) [seed]]\n", WORKERS);
		return 2;
	}
	printf("fuzz_cancel: seed %llu, %ld ops, %d workers on %u cores\n",
	       (unsigned long long)g_seed, g_ops, WORKERS, o.cores);
	fflush(stdout);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)env_or("URSA_FUZZ_TIMEOUT", NULL, 240));

	fds = count_fds();
	snprintf(g_dir, sizeof(g_dir), "%s/ursa-fuzz-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(g_datapath, sizeof(g_datapath), "%s/data", g_dir);
	stream_fill(0, 0, g_data, sizeof(g_data));
	g_datafd = open(g_datapath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	{
		struct stat st;

		if (g_datafd < 0 || pwrite(g_datafd, g_data, sizeof(g_data), 0) != DATA_SIZE ||
		    fstat(g_datafd, &st)) {
			perror("data file");
			return 1;
		}
		g_dataino = st.st_ino;
	}

	t0 = ursa_now();
	rc = ursa_run(fuzz_main, NULL, &o, &res);
	if (rc)
		fail("ursa_run: %s", ursa_strerror(rc));
	close(g_datafd);
	rm_dir(g_dir);

	if (atomic_load(&n_started) != atomic_load(&n_finished) || atomic_load(&n_started) != g_ops)
		fail_final("%ld ops started, %ld finished, %ld asked for", atomic_load(&n_started),
		     atomic_load(&n_finished), g_ops);
	if (atomic_load(&n_spawned) != atomic_load(&n_joined))
		fail_final("%ld tasks spawned, %ld joined", atomic_load(&n_spawned), atomic_load(&n_joined));
	if (atomic_load(&n_conn_made) != atomic_load(&n_conn_accepted))
		fail_final("%ld connections made, %ld accepted", atomic_load(&n_conn_made),
		     atomic_load(&n_conn_accepted));
	if (count_fds() != fds)
		fail_final("fds open: %d before, %d after", fds, count_fds());
	{
		siginfo_t si = {0};

		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
			fail_final("a child is left behind (pid %d)", (int)si.si_pid);
	}

	printf("%-10s %8s %10s %10s %10s %12s\n", "op", "ops", "completed", "cancelled",
	       "timed out", "won a race");
	for (int k = 0; k < NKINDS; k++) {
		long n = 0;

		for (int oc = 0; oc < NOUTCOMES; oc++) {
			n += atomic_load(&stat_ops[k][oc]);
			total[oc] += atomic_load(&stat_ops[k][oc]);
		}
		printf("%-10s %8ld %10ld %10ld %10ld %12ld\n", kind_name[k], n,
		       atomic_load(&stat_ops[k][O_DONE]), atomic_load(&stat_ops[k][O_CANCELLED]),
		       atomic_load(&stat_ops[k][O_TIMEDOUT]), atomic_load(&stat_won[k]));
	}
	printf("%-10s %8ld %10ld %10ld %10ld\n", "total", total[0] + total[1] + total[2], total[0],
	       total[1], total[2]);
	printf("(won a race: the op's result arrived while its cancel was being sent)\n");
	for (int m = 0; m < NMODES; m++)
		printf("mode %-34s %ld\n", mode_name[m], atomic_load(&stat_modes[m]));
	printf("tasks: %ld spawned, %ld joined (%ld joined as cancelled), %ld cancels sent\n",
	       atomic_load(&n_spawned), atomic_load(&n_joined), atomic_load(&n_join_cancelled),
	       atomic_load(&n_cancels));
	printf("connections: %ld made, %ld accepted; short preads: %ld\n",
	       atomic_load(&n_conn_made), atomic_load(&n_conn_accepted),
	       atomic_load(&stat_short_reads));
	{
		uint64_t bytes = 0;

		for (unsigned i = 0; i < 2 * WORKERS; i++)
			bytes += g_conns[i].recvd;
		printf("stream bytes sent and received in order: %llu\n", (unsigned long long)bytes);
	}
	printf("time: %.2f s\n", (double)(ursa_now() - t0) / 1e9);
	if (atomic_load(&n_failures)) {
		printf("fuzz_cancel: %ld checks FAILED (seed %llu; rerun: fuzz_cancel %ld %llu)\n",
		       atomic_load(&n_failures), (unsigned long long)g_seed, g_ops,
		       (unsigned long long)g_seed);
		return 1;
	}
	printf("fuzz_cancel: every check held\n");
	return 0;
}
