/* SPDX-License-Identifier: MIT */
/*
 * The process around a runtime: memory pressure (RLIMIT_AS, the map count),
 * fork() and exec from a task, signals landing on the threads while tasks
 * wait, and running out of fds in every fd-making call (test_io_emfile.c has
 * the accept loop).  Criterion runs each test in its own process, so a limit
 * lowered here touches nothing else.  A forked child never touches
 * Criterion: it reports through its exit status only.
 */
#include "test_io_helpers.h"

#include "sched.h" /* the ring's memory, which a forked child must not reach */

#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ASan reserves terabytes of address space for its shadow: an address-space
 * limit tests ASan there, not ursa.  The release build runs these. */
#define SKIP_UNDER_ASAN()                                                                   \
	do {                                                                                \
		if (UNDER_ASAN)                                                             \
			cr_skip_test("ASan's shadow memory makes an RLIMIT_AS limit "         \
			             "meaningless; the release build runs this test");       \
	} while (0)

/* Wait for a child without blocking the core: poll, sleeping 1 ms between
 * looks.  0 and *status, or -errno; a child still there after 20 s is
 * killed (and reported as -ETIMEDOUT). */
static int reap(pid_t pid, int *status)
{
	for (int i = 0; i < 20000; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		nap(1 * MS);
	}
	kill(pid, SIGKILL);
	(void)waitpid(pid, status, 0);
	return -ETIMEDOUT;
}

/* ------------------------------------------------------------------ traffic */

/*
 * Work kept in flight on both cores while a test does something to the
 * process: sleeps (which must never end early), a ping-pong across the cores
 * on a socketpair, positioned file reads checked byte by byte, and jobs on
 * the blocking pool.  Each records what it saw; the test asserts after
 * ursa_run returns.  Every thread that runs any of it notes its kernel tid,
 * so the signal tests can aim at workers and pool threads alike.
 */
#define FILE_SIZE (64 * 1024)
#define READ_SIZE 4096
#define MAX_TIDS 64
#define PING_END UINT64_MAX

struct traffic {
	struct seen seen;
	char dir[256];
	int sp[2];   /* socketpair: [0] the pinger's end (core 0), [1] the ponger's */
	int file_fd; /* FILE_SIZE bytes of pattern() */
	_Atomic bool stop;
	_Atomic int sleeps, rounds, reads, jobs;
	_Atomic int job_eintr; /* pool-thread nanosleeps cut short by a signal */
	_Atomic int ntids;
	_Atomic pid_t tids[MAX_TIDS];
	struct ursa_task *tasks[8];
	int ntasks;
};

static unsigned char pattern(size_t off)
{
	return (unsigned char)(off * 7 + 3);
}

static void note_tid(struct traffic *tr)
{
	pid_t me = gettid();
	int n = atomic_load(&tr->ntids);

	for (int i = 0; i < n && i < MAX_TIDS; i++)
		if (atomic_load(&tr->tids[i]) == me)
			return;
	n = atomic_fetch_add(&tr->ntids, 1);
	if (n < MAX_TIDS)
		atomic_store(&tr->tids[n], me);
}

static void *sleeper(void *arg)
{
	struct traffic *tr = arg;

	note_tid(tr);
	while (!atomic_load(&tr->stop)) {
		uint64_t t0 = ursa_now(), dt;
		int rc = ursa_sleep(2 * MS);

		dt = ursa_now() - t0;
		EXPECT(&tr->seen, rc == 0, rc);
		EXPECT(&tr->seen, dt >= 2 * MS, dt); /* never early */
		atomic_fetch_add(&tr->sleeps, 1);
	}
	return NULL;
}

static void *ponger(void *arg)
{
	struct traffic *tr = arg;

	note_tid(tr);
	for (;;) {
		uint64_t v;
		ssize_t r = ursa_recv(tr->sp[1], &v, sizeof(v), MSG_WAITALL);

		EXPECT(&tr->seen, r == sizeof(v), r);
		if (r != sizeof(v) || v == PING_END)
			break;
		v++;
		r = ursa_write_all(tr->sp[1], &v, sizeof(v));
		EXPECT(&tr->seen, r == sizeof(v), r);
		if (r != sizeof(v))
			break;
	}
	return NULL;
}

static void *pinger(void *arg)
{
	struct traffic *tr = arg;
	uint64_t v = 0, end = PING_END;

	note_tid(tr);
	while (!atomic_load(&tr->stop)) {
		uint64_t back = 0;
		ssize_t r = ursa_send(tr->sp[0], &v, sizeof(v), 0);

		EXPECT(&tr->seen, r == sizeof(v), r);
		if (r != sizeof(v))
			break;
		r = ursa_read_full(tr->sp[0], &back, sizeof(back));
		EXPECT(&tr->seen, r == sizeof(back), r);
		EXPECT(&tr->seen, back == v + 1, back);
		if (r != sizeof(back))
			break;
		v += 2;
		atomic_fetch_add(&tr->rounds, 1);
		nap(MS / 5); /* a shared machine: do not hog it */
	}
	EXPECT(&tr->seen, ursa_write_all(tr->sp[0], &end, sizeof(end)) == sizeof(end), 0);
	return NULL;
}

static void *reader(void *arg)
{
	struct traffic *tr = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ ursa_core();
	unsigned char buf[READ_SIZE];

	note_tid(tr);
	while (!atomic_load(&tr->stop)) {
		size_t off = rng_next(&seed) % (FILE_SIZE - READ_SIZE);
		ssize_t r = ursa_pread(tr->file_fd, buf, sizeof(buf), (off_t)off);

		EXPECT(&tr->seen, r == READ_SIZE, r);
		for (size_t i = 0; r == READ_SIZE && i < READ_SIZE; i++)
			if (buf[i] != pattern(off + i)) {
				EXPECT(&tr->seen, false, off + i);
				break;
			}
		atomic_fetch_add(&tr->reads, 1);
		nap(MS / 2);
	}
	return NULL;
}

/* On a pool thread: a syscall that a signal would cut short. */
static void *nap_job(void *arg)
{
	struct traffic *tr = arg;
	struct timespec ts = {0, 1000000};

	note_tid(tr);
	if (nanosleep(&ts, NULL) != 0)
		atomic_fetch_add(&tr->job_eintr, 1);
	return (void *)(uintptr_t)0x5eed;
}

static void *jobber(void *arg)
{
	struct traffic *tr = arg;

	note_tid(tr);
	while (!atomic_load(&tr->stop)) {
		void *res = NULL;
		int rc = ursa_blocking(nap_job, tr, &res);

		EXPECT(&tr->seen, rc == 0, rc);
		EXPECT(&tr->seen, res == (void *)(uintptr_t)0x5eed, (uintptr_t)res);
		atomic_fetch_add(&tr->jobs, 1);
	}
	return NULL;
}

/* Outside the runtime: the socketpair and the file. */
static void traffic_init(struct traffic *tr)
{
	char path[512];
	unsigned char *data = malloc(FILE_SIZE);
	int fd;

	cr_assert_not_null(data);
	make_scratch(tr->dir, sizeof(tr->dir));
	snprintf(path, sizeof(path), "%s/data", tr->dir);
	for (size_t i = 0; i < FILE_SIZE; i++)
		data[i] = pattern(i);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, FILE_SIZE), FILE_SIZE);
	close(fd);
	free(data);
	tr->file_fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(tr->file_fd, 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tr->sp), 0);
}

static void traffic_fini(struct traffic *tr)
{
	close(tr->sp[0]);
	close(tr->sp[1]);
	close(tr->file_fd);
	rm_scratch(tr->dir);
}

/* In the main task: everything on both cores. */
static void traffic_start(struct traffic *tr)
{
	static const struct {
		ursa_fn fn;
		unsigned core;
	} who[] = {
		{sleeper, 0}, {sleeper, 1}, {pinger, 0}, {ponger, 1},
		{reader, 0},  {reader, 1},  {jobber, 0}, {jobber, 1},
	};

	for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		int rc = ursa_spawn_on(&tr->tasks[tr->ntasks], who[i].core, who[i].fn, tr);

		EXPECT(&tr->seen, rc == 0, rc);
		if (rc == 0)
			tr->ntasks++;
	}
}

/* Enough of every kind of op to trust the counts; the bound only matters
 * if something is stuck (then the counts fail the test). */
#define TRAFFIC_MIN 20

static bool traffic_enough(struct traffic *tr)
{
	return atomic_load(&tr->sleeps) >= TRAFFIC_MIN && atomic_load(&tr->rounds) >= TRAFFIC_MIN &&
	       atomic_load(&tr->reads) >= TRAFFIC_MIN && atomic_load(&tr->jobs) >= TRAFFIC_MIN;
}

static void traffic_stop(struct traffic *tr)
{
	uint64_t give_up = ursa_now() + 30000 * MS;

	while (!traffic_enough(tr) && ursa_now() < give_up)
		nap(5 * MS);
	atomic_store(&tr->stop, true);
	EXPECT_EQ(&tr->seen, tr->ntasks, 8);
	for (int i = 0; i < tr->ntasks; i++)
		EXPECT(&tr->seen, ursa_join(tr->tasks[i], NULL) == 0, i);
	/* There was enough traffic to have been in flight throughout (else it
	 * got stuck; the value: how many sleeps ran). */
	EXPECT(&tr->seen, traffic_enough(tr), atomic_load(&tr->sleeps));
	/* Pool-thread syscalls interrupted by a signal. */
	EXPECT_EQ(&tr->seen, atomic_load(&tr->job_eintr), 0);
}

/* After ursa_run: every op of the traffic completed with its right result
 * (traffic_stop and the traffic tasks recorded what they saw). */
static void traffic_assert(struct traffic *tr)
{
	ASSERT_SEEN(&tr->seen);
}

/* --------------------------------------------------------------------- fork */

/*
 * What a child forked from inside a task may do.  It is a copy of one
 * worker thread of a multi-threaded process: POSIX allows only
 * async-signal-safe calls until exec or _exit, and ursa adds nothing to
 * that.  The ring's memory is MADV_DONTFORK (io_uring_ring_dontfork), so the
 * child has none: what would write to it faults instead of corrupting the
 * parent's queues.  ursa_run in such a child answers -EBUSY (its one thread
 * is still marked as a worker).
 */
enum child_kind {
	CHILD_EXIT,       /* _exit(0) at once */
	CHILD_TOUCH_RING, /* write where the parent's SQ ring is: must fault */
	CHILD_RUN,        /* ursa_run: must say -EBUSY */
	NKINDS
};

#define FORKS_PER_CORE 9

struct forks {
	struct traffic tr;
	_Atomic int ok[NKINDS];
};

static void *child_main(void *arg)
{
	return arg;
}

static _Noreturn void child(enum child_kind kind)
{
	switch (kind) {
	case CHILD_EXIT:
		_exit(0);
	case CHILD_TOUCH_RING: {
		struct io_uring *u = &ursa__sched_core->ring.uring;
		struct rlimit no_core = {0, 0};
		int null = open("/dev/null", O_WRONLY);

		/* The fault is expected: no core file, no report, and the
		 * default action rather than any inherited handler. */
		setrlimit(RLIMIT_CORE, &no_core);
		if (null >= 0)
			dup2(null, STDERR_FILENO);
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		/* Shared with the parent, these stores would hand its kernel
		 * an SQE it never wrote. */
		memset(u->sq.sqes, 0xff, sizeof(*u->sq.sqes));
		*(volatile unsigned *)u->sq.ktail += 1;
		_exit(0);
	}
	case CHILD_RUN: {
		int rc = ursa_run(child_main, NULL, NULL, NULL);

		_exit(rc < 0 && rc > -100 ? -rc : 100);
	}
	default:
		_exit(99);
	}
}

static bool child_as_expected(enum child_kind kind, int st)
{
	switch (kind) {
	case CHILD_EXIT:
		return WIFEXITED(st) && WEXITSTATUS(st) == 0;
	case CHILD_TOUCH_RING:
		return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
	case CHILD_RUN:
		return WIFEXITED(st) && WEXITSTATUS(st) == EBUSY;
	default:
		return false;
	}
}

static void *forker(void *arg)
{
	struct forks *f = arg;

	for (int i = 0; i < FORKS_PER_CORE; i++) {
		enum child_kind kind = (enum child_kind)(i % NKINDS);
		int st = 0;
		pid_t pid;

		nap(3 * MS); /* let the traffic get ops in flight */
		pid = fork();
		if (pid == 0)
			child(kind);
		EXPECT(&f->tr.seen, pid > 0, errno);
		if (pid < 0)
			continue;
		EXPECT(&f->tr.seen, reap(pid, &st) >= 0, pid);
		/* The value: the kind in the low byte, the wait status above. */
		EXPECT(&f->tr.seen, child_as_expected(kind, st), ((long long)st << 8) | kind);
		if (child_as_expected(kind, st))
			atomic_fetch_add(&f->ok[kind], 1);
	}
	return NULL;
}

static void *main_forks(void *arg)
{
	struct forks *f = arg;
	struct ursa_task *t[2];

	traffic_start(&f->tr);
	nap(20 * MS);
	for (unsigned c = 0; c < 2; c++)
		EXPECT(&f->tr.seen, ursa_spawn_on(&t[c], c, forker, f) == 0, c);
	for (unsigned c = 0; c < 2; c++)
		EXPECT(&f->tr.seen, ursa_join(t[c], NULL) == 0, c);
	for (int k = 0; k < NKINDS; k++) /* every kind ran as often as planned */
		EXPECT(&f->tr.seen, atomic_load(&f->ok[k]) == 2 * FORKS_PER_CORE / NKINDS, k);
	/* The parent's rings carry on after every kind of child. */
	nap(30 * MS);
	traffic_stop(&f->tr);
	return NULL;
}

Test(process, fork_from_tasks_leaves_the_parents_rings_alone, .timeout = 120)
{
	struct forks f = {0};
	int fds;

	traffic_init(&f.tr);
	fds = count_fds();
	run_on(2, main_forks, &f);
	cr_assert_eq(count_fds(), fds, "fd leak");
	traffic_assert(&f.tr);
	traffic_fini(&f.tr);
}

/* A process that ran a runtime to its end has no runtime threads left: a
 * plain fork, whose child may start a runtime of its own. */
static void *child_runtime_main(void *arg)
{
	struct ursa_task *t;
	void *r = NULL;

	(void)arg;
	if (ursa_sleep(1 * MS) != 0 || ursa_spawn_on(&t, 1, child_main, (void *)7) != 0 ||
	    ursa_join(t, &r) != 0)
		return (void *)1;
	return r;
}

Test(process, child_of_a_finished_runtime_may_run_its_own)
{
	void *res = NULL;
	int st = 0;
	pid_t pid;

	cr_assert_eq(run_on(2, child_runtime_main, NULL), (void *)7);
	pid = fork();
	if (pid == 0) {
		/* No Criterion here: with --full-stats even a passing assertion
		 * is a message the runner rejects. */
		struct ursa_opts o = {.cores = 2};
		int rc = ursa_run(child_runtime_main, NULL, &o, &res);

		_exit(rc == 0 && res == (void *)7 ? 0 : 1);
	}
	cr_assert_gt(pid, 0);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* --------------------------------------------------------------------- exec */

/*
 * fork+exec and posix_spawn from a task: the new program runs, the parent's
 * runtime carries on, and nothing of the runtime (rings, eventfds, the spare
 * fd kept for accept) is inherited: every fd ursa makes is close-on-exec.
 */
#define MAX_FD 4096
#define MAX_TARGETS 64

struct execd {
	struct traffic tr;
	bool inheritable[MAX_FD]; /* open without FD_CLOEXEC before the runtime */
	char leaks[1024];         /* "fd -> target" of what should not be there */
	int nleaks;
	int parent_unmarked;      /* runtime-made fds lacking FD_CLOEXEC */
	char targets[MAX_TARGETS][256]; /* what the runtime's and our fds are */
	int ntargets, children_checked;
	int fork_status, spawn_status, spawn_rc, exec_err;
};

static void note_leak(struct execd *x, const char *who, int fd, const char *target)
{
	size_t n = strlen(x->leaks);

	x->nleaks++;
	snprintf(x->leaks + n, sizeof(x->leaks) - n, "%s fd %d -> %s; ", who, fd, target);
}

static void mark_inheritable(struct execd *x)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), fl;

		if (e->d_name[0] == '.' || fd == dirfd(d) || fd >= MAX_FD)
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			x->inheritable[fd] = true;
	}
	closedir(d);
}

/* What fd `fd` of process `pid` refers to, as /proc says ("" if gone). */
static void fd_target(const char *pid, int fd, char *out, size_t n)
{
	char p[64];
	ssize_t r;

	snprintf(p, sizeof(p), "/proc/%s/fd/%d", pid, fd);
	r = readlink(p, out, n - 1);
	out[r > 0 ? r : 0] = 0;
}

/*
 * Our own fds beyond 0-2 that were not there (inheritable) before the
 * runtime started: each must be close-on-exec.  Their targets are kept: an
 * exec'd child must hold none of them.
 */
static void check_parent(struct execd *x)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d) {
		note_leak(x, "parent", -1, "(cannot list)");
		return;
	}
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), fl;
		char target[256];

		if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d) ||
		    (fd < MAX_FD && x->inheritable[fd]))
			continue;
		fd_target("self", fd, target, sizeof(target));
		if (x->ntargets < MAX_TARGETS)
			snprintf(x->targets[x->ntargets++], sizeof(x->targets[0]), "%s", target);
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC)) {
			x->parent_unmarked++;
			note_leak(x, "parent", fd, target);
		}
	}
	closedir(d);
}

/* fds of an exec'd child that are one of the parent's non-inheritable
 * ones (the same socket, pipe or path), or any ring or eventfd.  A program
 * starting up opens files of its own (the loader, locales): those match
 * nothing of ours. */
static void check_child(struct execd *x, pid_t pid, const char *who)
{
	char dir[64], spid[16];
	DIR *d;
	struct dirent *e;

	snprintf(spid, sizeof(spid), "%d", (int)pid);
	snprintf(dir, sizeof(dir), "/proc/%s/fd", spid);
	d = opendir(dir);
	if (!d) {
		note_leak(x, who, -1, "(cannot list)");
		return;
	}
	x->children_checked++;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		char target[256];
		bool ours = false;

		if (e->d_name[0] == '.' || fd <= 2 || (fd < MAX_FD && x->inheritable[fd]))
			continue;
		fd_target(spid, fd, target, sizeof(target));
		ours = strstr(target, "io_uring") || strstr(target, "eventfd");
		for (int i = 0; i < x->ntargets && !ours; i++)
			ours = strcmp(target, x->targets[i]) == 0;
		if (ours)
			note_leak(x, who, fd, target);
	}
	closedir(d);
}

/* Best effort: the exec'd `cat` is blocked reading stdin once its state is S. */
static void wait_settled(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (int i = 0; i < 2000; i++) {
		FILE *f = fopen(path, "re");
		size_t n = 0;

		if (f) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return;
		nap(1 * MS);
	}
}

static void *main_exec(void *arg)
{
	struct execd *x = arg;
	int in[2], sync[2], lfd, c, a, e = 0, st = 0;
	pid_t pid;

	traffic_start(&x->tr);
	/* Make every fd the runtime keeps: rings and eventfds exist already;
	 * an accept makes the spare fd kept against fd exhaustion. */
	lfd = ursa_tcp_listen("127.0.0.1", 0, 8);
	EXPECT(&x->tr.seen, lfd >= 0, lfd);
	c = ursa_tcp_connect("127.0.0.1", local_port(lfd));
	EXPECT(&x->tr.seen, c >= 0, c);
	a = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	EXPECT(&x->tr.seen, a >= 0, a);
	nap(5 * MS);
	check_parent(x);

	/* fork + exec: the exec is seen as EOF on a close-on-exec pipe. */
	EXPECT(&x->tr.seen, pipe2(in, O_CLOEXEC) == 0, errno);
	EXPECT(&x->tr.seen, pipe2(sync, O_CLOEXEC) == 0, errno);
	pid = fork();
	if (pid == 0) {
		if (dup2(in[0], STDIN_FILENO) == STDIN_FILENO)
			execl("/bin/cat", "cat", (char *)NULL);
		e = errno;
		(void)!write(sync[1], &e, sizeof(e));
		_exit(127);
	}
	EXPECT(&x->tr.seen, pid > 0, errno);
	EXPECT(&x->tr.seen, ursa_close(sync[1]) == 0, 0);
	EXPECT(&x->tr.seen, ursa_read(sync[0], &e, sizeof(e)) == 0, e); /* 0: EOF, exec'd */
	x->exec_err = e;
	if (pid > 0) {
		wait_settled(pid);
		check_child(x, pid, "fork+exec child");
	}
	EXPECT(&x->tr.seen, ursa_close(in[1]) == 0, 0); /* cat sees EOF and ends */
	EXPECT(&x->tr.seen, ursa_close(in[0]) == 0, 0);
	EXPECT(&x->tr.seen, ursa_close(sync[0]) == 0, 0);
	if (pid > 0)
		EXPECT(&x->tr.seen, reap(pid, &st) == 0, pid);
	x->fork_status = st;

	/* posix_spawn, what most programs use. */
	{
		posix_spawn_file_actions_t fa;
		char *argv[] = {"cat", NULL};

		EXPECT(&x->tr.seen, pipe2(in, O_CLOEXEC) == 0, errno);
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
		x->spawn_rc = posix_spawn(&pid, "/bin/cat", &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (x->spawn_rc == 0) {
			wait_settled(pid);
			check_child(x, pid, "posix_spawn child");
		}
		EXPECT(&x->tr.seen, ursa_close(in[1]) == 0, 0);
		EXPECT(&x->tr.seen, ursa_close(in[0]) == 0, 0);
		st = 0;
		if (x->spawn_rc == 0)
			EXPECT(&x->tr.seen, reap(pid, &st) == 0, pid);
		x->spawn_status = st;
	}

	EXPECT(&x->tr.seen, ursa_close(a) == 0, a);
	EXPECT(&x->tr.seen, ursa_close(c) == 0, c);
	EXPECT(&x->tr.seen, ursa_close(lfd) == 0, lfd);
	nap(20 * MS);
	traffic_stop(&x->tr);
	return NULL;
}

Test(process, exec_from_a_task_inherits_no_runtime_fd, .timeout = 60)
{
	static struct execd x;
	int fds;

	if (access("/bin/cat", X_OK) != 0)
		cr_skip_test("no /bin/cat to exec");
	traffic_init(&x.tr);
	mark_inheritable(&x);
	fds = count_fds();
	run_on(2, main_exec, &x);
	cr_assert_eq(count_fds(), fds, "fd leak");
	traffic_assert(&x.tr);
	cr_assert_eq(x.exec_err, 0, "exec failed: %s", strerror(x.exec_err));
	cr_assert_eq(x.parent_unmarked, 0, "runtime fds without FD_CLOEXEC: %s", x.leaks);
	cr_assert_eq(x.nleaks, 0, "inherited by the exec'd programs: %s", x.leaks);
	cr_assert_eq(x.children_checked, 2);
	cr_assert_geq(x.ntargets, 4, "the runtime's fds were not seen (%d)", x.ntargets);
	cr_assert(WIFEXITED(x.fork_status) && WEXITSTATUS(x.fork_status) == 0, "cat: %#x",
	          x.fork_status);
	cr_assert_eq(x.spawn_rc, 0, "posix_spawn: %s", strerror(x.spawn_rc));
	cr_assert(WIFEXITED(x.spawn_status) && WEXITSTATUS(x.spawn_status) == 0, "cat: %#x",
	          x.spawn_status);
	traffic_fini(&x.tr);
}

/* ------------------------------------------------------------------ signals */

/*
 * A handler for SIGUSR1, and a plain thread that aims it at every worker and
 * pool thread (tgkill) every 100 us while the traffic runs.  A worker waiting
 * in io_uring_enter gets -EINTR and must simply go round again; no call may
 * return early or with -EINTR.  Pool threads block every signal, so a job's
 * own syscalls are never cut short by ours.
 */
struct sigs {
	struct traffic tr;
	_Atomic bool stop_signals, signaller_done;
	_Atomic long sent;
};

static _Atomic long delivered;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add_explicit(&delivered, 1, memory_order_relaxed);
}

static void *signaller(void *arg)
{
	struct sigs *s = arg;
	struct timespec gap = {0, 100000};
	sigset_t usr1;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	while (!atomic_load(&s->stop_signals)) {
		int n = atomic_load(&s->tr.ntids);

		for (int i = 0; i < n && i < MAX_TIDS; i++) {
			pid_t tid = atomic_load(&s->tr.tids[i]);

			if (tid > 0 && syscall(SYS_tgkill, getpid(), tid, SIGUSR1) == 0)
				atomic_fetch_add(&s->sent, 1);
		}
		nanosleep(&gap, NULL);
	}
	atomic_store(&s->signaller_done, true);
	return NULL;
}

static void *main_signals(void *arg)
{
	struct sigs *s = arg;

	traffic_start(&s->tr);
	/* Run for a while under fire: every kind of op many times over. */
	for (int i = 0; i < 40; i++)
		nap(10 * MS);
	atomic_store(&s->stop_signals, true);
	while (!atomic_load(&s->signaller_done))
		nap(1 * MS);
	traffic_stop(&s->tr);
	return NULL;
}

static void signals_during_waits(int sa_flags)
{
	struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = sa_flags}, old;
	struct sigs *s = calloc(1, sizeof(*s));
	pthread_t th;
	int fds;

	cr_assert_not_null(s);
	traffic_init(&s->tr);
	fds = count_fds();
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	cr_assert_eq(pthread_create(&th, NULL, signaller, s), 0);
	run_on(2, main_signals, s);
	atomic_store(&s->stop_signals, true);
	pthread_join(th, NULL);
	sigaction(SIGUSR1, &old, NULL);
	cr_assert_eq(count_fds(), fds, "fd leak");
	traffic_assert(&s->tr);
	/* Workers take the signals (pool threads keep theirs pending). */
	cr_assert_gt(atomic_load(&delivered), 100, "only %ld signals delivered (%ld sent)",
	             atomic_load(&delivered), atomic_load(&s->sent));
	traffic_fini(&s->tr);
	free(s);
}

Test(process, signals_without_sa_restart_never_cut_a_call_short, .timeout = 60)
{
	signals_during_waits(0);
}

Test(process, signals_with_sa_restart_never_cut_a_call_short, .timeout = 60)
{
	signals_during_waits(SA_RESTART);
}

/* ---------------------------------------------------------------- fd limits */

/*
 * Make every fd number below the highest one in use taken (dup'ing
 * /dev/null into the gaps), so that a limit of `top + k` leaves exactly k
 * fds free.  Returns top: one past the highest fd now open.
 */
static int fill_fd_gaps(int *fillers, int max, int *n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int hi = -1, nul;

	*n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && atoi(e->d_name) > hi)
			hi = atoi(e->d_name);
	closedir(d);
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nul < 0)
		return -1;
	fillers[(*n)++] = nul;
	for (;;) {
		int fd = fcntl(nul, F_DUPFD_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		if (fd > hi) {
			close(fd);
			break;
		}
		if (*n == max) {
			close(fd);
			return -1;
		}
		fillers[(*n)++] = fd;
	}
	return (hi > nul ? hi : nul) + 1;
}

static void set_nofile(rlim_t cur)
{
	struct rlimit r;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &r), 0);
	r.rlim_cur = cur;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &r), 0, "setrlimit: %s", strerror(errno));
}

static void *report_core_of(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)(ursa_core() + 1);
}

/* What a run must be able to do: time, both cores, the pool. */
static void *small_main(void *arg)
{
	struct ursa_task *t;
	void *r = NULL;
	int rc;

	(void)arg;
	if ((rc = ursa_sleep(1 * MS)) != 0)
		return (void *)(intptr_t)rc;
	if ((rc = ursa_spawn_on(&t, 1, report_core_of, NULL)) != 0)
		return (void *)(intptr_t)rc;
	if ((rc = ursa_join(t, &r)) != 0)
		return (void *)(intptr_t)rc;
	if (r != (void *)2)
		return (void *)(intptr_t)-EPROTO;
	rc = ursa_blocking(report_core_of, NULL, &r);
	return (void *)(intptr_t)rc;
}

/*
 * ursa_run with k fds free, k = 0, 1, 2, …: each needs two per core (ring,
 * eventfd).  Too few is -EMFILE from ursa_run, with whatever was set up
 * closed again; enough is a normal run.
 */
Test(process, run_without_free_fds_is_emfile_and_leaks_nothing, .timeout = 60)
{
	struct ursa_opts o = {.cores = 2};
	struct rlimit old;
	int fillers[1024], nfill, top, fds, rcs[12], bad = -1;
	void *res;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	cr_assert_eq(ursa_run(small_main, NULL, &o, &res), 0); /* warm up libc */
	top = fill_fd_gaps(fillers, 1024, &nfill);
	cr_assert_gt(top, 0);
	fds = count_fds();
	for (int k = 0; k < 12; k++) {
		res = (void *)1;
		set_nofile((rlim_t)top + (rlim_t)k);
		rcs[k] = ursa_run(small_main, NULL, &o, &res);
		set_nofile(old.rlim_cur);
		if (rcs[k] == 0 && res != NULL)
			rcs[k] = 1000 + (int)(intptr_t)res; /* ran, but main failed */
		if (count_fds() != fds && bad < 0)
			bad = k;
	}
	for (int i = 0; i < nfill; i++)
		close(fillers[i]);
	cr_assert_eq(bad, -1, "%d fds free: ursa_run left fds open", bad);
	cr_assert_eq(rcs[0], -EMFILE, "no fd free: ursa_run said %d", rcs[0]);
	for (int k = 0; k < 12; k++)
		cr_assert(rcs[k] == 0 || rcs[k] == -EMFILE, "%d fds free: ursa_run said %d", k,
		          rcs[k]);
	cr_assert_eq(rcs[11], 0, "11 fds free and still no runtime");
}

struct fdx {
	struct seen seen;
	char dir[256], path[300], sock[300];
	int open_rc, socket_rc, accept_rc, connect_rc, listen_rc, unix_rc, readfile_rc;
	size_t readfile_len;
	int open2, socket2, accept2, connect2, pong;
};

static void *main_fds(void *arg)
{
	struct fdx *x = arg;
	int lfd, c, a, pending, file, spares[4], fillers[1024], nfill, top;
	unsigned port;
	struct ursa_task *t;
	struct rlimit old;
	unsigned char buf[16];
	void *p, *r = NULL;
	size_t len;

	lfd = ursa_tcp_listen("127.0.0.1", 0, 16);
	EXPECT(&x->seen, lfd >= 0, lfd);
	port = local_port(lfd);
	/* One accept first: it makes the spare fd accept sheds through. */
	c = ursa_tcp_connect("127.0.0.1", port);
	a = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	EXPECT(&x->seen, c >= 0 && a >= 0, c < 0 ? c : a);
	EXPECT(&x->seen, ursa_close(c) == 0 && ursa_close(a) == 0, 0);
	pending = ursa_tcp_connect("127.0.0.1", port); /* waits in the backlog */
	EXPECT(&x->seen, pending >= 0, pending);
	file = ursa_open(x->path, O_RDONLY | O_CLOEXEC, 0);
	EXPECT(&x->seen, file >= 0, file);
	for (int i = 0; i < 4; i++) {
		spares[i] = ursa_open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
		EXPECT(&x->seen, spares[i] >= 0, spares[i]);
	}

	/* Not one fd left. */
	EXPECT(&x->seen, getrlimit(RLIMIT_NOFILE, &old) == 0, errno);
	top = fill_fd_gaps(fillers, 1024, &nfill);
	EXPECT(&x->seen, top > 0, top);
	{
		struct rlimit low = old;

		low.rlim_cur = (rlim_t)top;
		EXPECT(&x->seen, setrlimit(RLIMIT_NOFILE, &low) == 0, errno);
	}
	EXPECT(&x->seen, fcntl(0, F_DUPFD, 0) == -1 && errno == EMFILE, errno);
	x->open_rc = ursa_open(x->path, O_RDONLY | O_CLOEXEC, 0);
	x->socket_rc = ursa_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	x->accept_rc = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	x->connect_rc = ursa_tcp_connect("127.0.0.1", port);
	x->listen_rc = ursa_tcp_listen("127.0.0.1", 0, 4);
	x->unix_rc = ursa_unix_listen(x->sock, 4);
	x->readfile_rc = ursa_read_file(x->path, &p, &len);
	if (x->readfile_rc == 0) {
		x->readfile_len = len;
		free(p);
	}
	/* Everything that needs no new fd goes on. */
	EXPECT(&x->seen, ursa_sleep(1 * MS) == 0, 0);
	EXPECT(&x->seen, ursa_pread(file, buf, sizeof(buf), 100) == sizeof(buf), 0);
	EXPECT(&x->seen, buf[0] == pattern(100) && buf[15] == pattern(115), buf[0]);
	EXPECT(&x->seen, ursa_spawn_on(&t, 1, report_core_of, NULL) == 0, 0);
	EXPECT(&x->seen, ursa_join(t, &r) == 0 && r == (void *)2, (intptr_t)r);
	EXPECT(&x->seen, ursa_blocking(report_core_of, NULL, &r) == 0, 0);

	/* Four fds freed: each call works again (the spare fd takes one). */
	for (int i = 0; i < 4; i++)
		EXPECT(&x->seen, ursa_close(spares[i]) == 0, i);
	x->open2 = ursa_open(x->path, O_RDONLY | O_CLOEXEC, 0);
	if (x->open2 >= 0)
		EXPECT(&x->seen, ursa_close(x->open2) == 0, 0);
	x->socket2 = ursa_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x->socket2 >= 0)
		EXPECT(&x->seen, ursa_close(x->socket2) == 0, 0);
	x->connect2 = ursa_tcp_connect("127.0.0.1", port);
	x->accept2 = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (x->connect2 >= 0 && x->accept2 >= 0) {
		/* The pending connection may have been shed; find ours. */
		EXPECT(&x->seen, ursa_send(x->connect2, "p", 1, 0) == 1, 0);
		for (int i = 0; i < 2 && !x->pong; i++) {
			struct ursa_scope s;
			ssize_t n;

			ursa_scope_enter(&s, ursa_now() + 200 * MS);
			n = ursa_recv(x->accept2, buf, 1, 0);
			(void)ursa_scope_exit(&s);
			if (n == 1 && buf[0] == 'p') {
				x->pong = 1;
				break;
			}
			EXPECT(&x->seen, ursa_close(x->accept2) == 0, 0);
			x->accept2 = ursa_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (x->accept2 < 0)
				break;
		}
	}
	if (x->connect2 >= 0)
		EXPECT(&x->seen, ursa_close(x->connect2) == 0, 0);
	if (x->accept2 >= 0)
		EXPECT(&x->seen, ursa_close(x->accept2) == 0, 0);

	EXPECT(&x->seen, setrlimit(RLIMIT_NOFILE, &old) == 0, errno);
	for (int i = 0; i < nfill; i++)
		close(fillers[i]);
	EXPECT(&x->seen, ursa_close(pending) == 0, 0);
	EXPECT(&x->seen, ursa_close(file) == 0, 0);
	EXPECT(&x->seen, ursa_close(lfd) == 0, 0);
	return NULL;
}

Test(process, out_of_fds_every_fd_making_call_is_emfile_and_recovers, .timeout = 60)
{
	struct fdx x = {0};
	unsigned char data[256];
	int fds, fd;

	make_scratch(x.dir, sizeof(x.dir));
	snprintf(x.path, sizeof(x.path), "%s/data", x.dir);
	snprintf(x.sock, sizeof(x.sock), "%s/sock", x.dir);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	fd = open(x.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(fd);
	fds = count_fds();
	run_on(2, main_fds, &x);
	cr_assert_eq(count_fds(), fds, "fd leak");
	ASSERT_SEEN(&x.seen);
	cr_assert_eq(x.open_rc, -EMFILE, "ursa_open: %d", x.open_rc);
	cr_assert_eq(x.socket_rc, -EMFILE, "ursa_socket: %d", x.socket_rc);
	cr_assert_eq(x.accept_rc, -EMFILE, "ursa_accept: %d", x.accept_rc);
	cr_assert_eq(x.connect_rc, -EMFILE, "ursa_tcp_connect: %d", x.connect_rc);
	cr_assert_eq(x.listen_rc, -EMFILE, "ursa_tcp_listen: %d", x.listen_rc);
	cr_assert_eq(x.unix_rc, -EMFILE, "ursa_unix_listen: %d", x.unix_rc);
	/* ursa_read_file opens into a direct descriptor where the kernel has
	 * them (docs/io.md): no fd is made, so it reads the file even now;
	 * on the plain path (older kernels, URSA_DISABLE=direct_files) its
	 * open is -EMFILE like the others. */
	cr_assert((x.readfile_rc == 0 && x.readfile_len == sizeof(data)) ||
	          x.readfile_rc == -EMFILE, "ursa_read_file: %d", x.readfile_rc);
	cr_assert_geq(x.open2, 0, "ursa_open after fds were freed: %d", x.open2);
	cr_assert_geq(x.socket2, 0, "ursa_socket after fds were freed: %d", x.socket2);
	cr_assert_geq(x.connect2, 0, "ursa_tcp_connect after fds were freed: %d", x.connect2);
	cr_assert_geq(x.accept2, 0, "ursa_accept after fds were freed: %d", x.accept2);
	cr_assert(x.pong, "the connection accepted after the shortage carried no data");
	rm_scratch(x.dir);
}

/* ------------------------------------------------------------ memory limits */

#define PRESSURE_MAX 8192
#define HEADROOM (32ull << 20) /* address space left free: about 220 stacks */

struct pressure {
	struct seen seen;
	struct ursa_event go[2];
	struct ursa_task *t[PRESSURE_MAX];
	bool live[PRESSURE_MAX];
	int n, first_err, again_err, sleep_rc, blocking_rc, respawned, respawn_err, joined;
};

static void *parked(void *arg)
{
	struct ursa_event *e = arg;

	return ursa_event_wait(e) == 0 ? e : NULL;
}

static void *noop(void *arg)
{
	return arg;
}

static void join_live(struct pressure *p, int parity)
{
	for (int i = parity; i < p->n; i += 2) {
		void *r = NULL;

		if (!p->live[i])
			continue;
		EXPECT(&p->seen, ursa_join(p->t[i], &r) == 0, i);
		EXPECT(&p->seen, r == &p->go[0] || r == &p->go[1], i);
		p->live[i] = false;
		p->joined++;
	}
}

static void *main_pressure(void *arg)
{
	struct pressure *p = arg;
	struct rlimit old, low;
	struct ursa_task *t;
	void *r;

	/* Warm up what would otherwise be made under the limit: this worker's
	 * malloc arena, the pool's first thread. */
	for (int i = 0; i < 8; i++) {
		EXPECT(&p->seen, ursa_spawn(&t, noop, NULL) == 0, i);
		EXPECT(&p->seen, ursa_join(t, NULL) == 0, i);
	}
	EXPECT(&p->seen, ursa_blocking(noop, NULL, NULL) == 0, 0);

	EXPECT(&p->seen, getrlimit(RLIMIT_AS, &old) == 0, errno);
	low = old;
	low.rlim_cur = (rlim_t)vm_size_kib() * 1024 + HEADROOM;
	EXPECT(&p->seen, setrlimit(RLIMIT_AS, &low) == 0, errno);

	/* Spawn until the address space runs out. */
	for (p->n = 0; p->n < PRESSURE_MAX; p->n++) {
		int rc = ursa_spawn(&p->t[p->n], parked, &p->go[p->n % 2]);

		if (rc) {
			p->first_err = rc;
			break;
		}
		p->live[p->n] = true;
	}
	/* The core runs on: every parked task gets going, time passes, a
	 * spawn still fails cleanly, the pool still answers. */
	p->sleep_rc = ursa_sleep(2 * MS);
	p->again_err = ursa_spawn(&t, parked, &p->go[0]);
	if (p->again_err == 0)
		ursa_detach(t);
	p->blocking_rc = ursa_blocking(noop, NULL, &r);

	/* Free half: their stacks make room for as many new tasks. */
	ursa_event_set(&p->go[0]);
	join_live(p, 0);
	for (int i = 0; i < p->n; i += 2) {
		int rc = ursa_spawn(&p->t[i], parked, &p->go[1]);

		if (rc) {
			p->respawn_err = rc;
			break;
		}
		p->live[i] = true;
		p->respawned++;
	}
	ursa_event_set(&p->go[1]);
	join_live(p, 0);
	join_live(p, 1);
	EXPECT(&p->seen, setrlimit(RLIMIT_AS, &old) == 0, errno);
	return NULL;
}

/* A small stack cache: freed stacks are unmapped, not kept, so room made by
 * ending tasks must really be given back to the kernel. */
Test(process, spawn_under_rlimit_as_is_enomem_and_recovers, .timeout = 60)
{
	struct ursa_opts o = {.cores = 1, .stack_cache = 4};
	struct pressure *p;
	void *res;
	int rc;

	SKIP_UNDER_ASAN();
	p = calloc(1, sizeof(*p));
	cr_assert_not_null(p);
	ursa_event_init(&p->go[0]);
	ursa_event_init(&p->go[1]);
	rc = ursa_run(main_pressure, p, &o, &res);
	cr_assert_eq(rc, 0, "ursa_run: %s", ursa_strerror(rc));
	ASSERT_SEEN(&p->seen);
	cr_assert_eq(p->first_err, -ENOMEM, "spawn said %d after %d tasks", p->first_err, p->n);
	cr_assert_gt(p->n, 16, "only %d tasks fit in %llu MiB", p->n, HEADROOM >> 20);
	cr_assert_eq(p->sleep_rc, 0);
	cr_assert_eq(p->again_err, -ENOMEM, "%d", p->again_err);
	cr_assert_eq(p->blocking_rc, 0, "%d", p->blocking_rc);
	/* Half the tasks ended: nearly as many fit again. */
	cr_assert_geq(p->respawned, p->n / 2 - 8, "%d of %d spawned again (then %d)",
	              p->respawned, (p->n + 1) / 2, p->respawn_err);
	cr_assert_eq(p->joined, p->n + p->respawned);
	free(p);
}

/*
 * ursa_run under address-space limits from "nothing left" upwards, 128 KiB
 * at a time, until a run works: worker threads, rings, stack caches, the
 * alternate signal stacks and main's stack each fail in turn.  Every
 * failure is -ENOMEM or -EAGAIN (a thread that cannot be made), never a
 * crash, and leaves no fd and no mapping behind.
 */
struct sweep {
	int steps, fails, odd, odd_rc, leaked_fd_rc;
	bool ran;
};

static void sweep_rlimit_as(long base_kib, const struct rlimit *old, int fds, struct sweep *w)
{
	struct ursa_opts o = {.cores = 2};

	memset(w, 0, sizeof(*w));
	w->leaked_fd_rc = 1;
	for (unsigned long long extra = 0; extra <= (256ull << 20) && !w->ran;
	     extra += 128 << 10) {
		struct rlimit low = *old;
		void *res = (void *)1;
		int rc;

		low.rlim_cur = (rlim_t)base_kib * 1024 + extra;
		cr_assert_eq(setrlimit(RLIMIT_AS, &low), 0);
		rc = ursa_run(small_main, NULL, &o, &res);
		cr_assert_eq(setrlimit(RLIMIT_AS, old), 0);
		w->steps++;
		/* A run that started may still find its pool or a stack short. */
		if (rc == 0 && res)
			rc = (int)(intptr_t)res;
		if (rc == 0)
			w->ran = true;
		else if (rc == -ENOMEM || rc == -EAGAIN)
			w->fails++;
		else if (!w->odd++)
			w->odd_rc = rc;
		if (count_fds() != fds && w->leaked_fd_rc == 1)
			w->leaked_fd_rc = rc;
	}
}

Test(process, run_under_rlimit_as_fails_cleanly_until_it_fits, .timeout = 120)
{
	struct rlimit old;
	struct sweep w1, w2;
	long base, after1;
	int fds;

	SKIP_UNDER_ASAN();
	cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
	fds = count_fds();
	base = vm_size_kib();
	/* The first sweep also fills libc's caches (thread stacks, arenas);
	 * the second, at the same limits, must leave the address space as the
	 * first left it. */
	sweep_rlimit_as(base, &old, fds, &w1);
	after1 = vm_size_kib();
	sweep_rlimit_as(base, &old, fds, &w2);
	for (int i = 0; i < 2; i++) {
		struct sweep *w = i ? &w2 : &w1;

		cr_assert_eq(w->leaked_fd_rc, 1, "sweep %d: fds leaked by a run that said %d", i,
		             w->leaked_fd_rc);
		cr_assert_eq(w->odd, 0, "sweep %d: %d runs failed with other than ENOMEM/EAGAIN: %d",
		             i, w->odd, w->odd_rc);
		cr_assert_gt(w->fails, 0, "sweep %d: no limit was low enough to fail", i);
		cr_assert(w->ran, "sweep %d: no run worked even with 256 MiB to spare", i);
	}
	cr_assert_lt(vm_size_kib() - after1, 1024,
	             "%d failed runs left %ld KiB of address space mapped", w2.fails,
	             vm_size_kib() - after1);
	cr_log_info("first sweep: %d failures before a run fitted; second: %d", w1.fails,
	            w2.fails);
}

/*
 * The other way mmap runs dry: the process's count of mappings reaches
 * vm.max_map_count.  We split a reservation page by page until the kernel
 * refuses, take the last slot, and spawn: -ENOMEM.  Unmapping a few pieces
 * makes room, and spawns work again.  Unlike an address-space limit this
 * runs under ASan too: nothing in the window needs a new mapping of ASan's.
 */
struct maps {
	struct seen seen;
	struct ursa_event go;
	struct ursa_task *t[512];
	int n, first_err, sleep_rc, splits, respawned, respawn_err;
};

static long max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void *main_maps(void *arg)
{
	struct maps *m = arg;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	size_t npages = 2 * ((size_t)max_map_count() + 64);
	char *region = mmap(NULL, npages * ps, PROT_READ,
	                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *shared[16];
	int nshared = 0, n = 0;
	size_t i;

	EXPECT(&m->seen, region != MAP_FAILED, errno);
	if (region == MAP_FAILED)
		return NULL;
	/* Every other page PROT_NONE: one more mapping per call, until none. */
	for (i = 1; i < npages; i += 2, m->splits++)
		if (mprotect(region + i * ps, ps, PROT_NONE) != 0)
			break;
	EXPECT(&m->seen, i < npages && errno == ENOMEM, errno);
	/* mmap may go one past the count splits stop at; shared mappings
	 * never merge with a neighbour, so each takes a slot. */
	while (nshared < 16) {
		void *p = mmap(NULL, ps, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			break;
		shared[nshared++] = p;
	}
	EXPECT(&m->seen, nshared < 16, nshared);

	/* Spawn until a stack cannot be mapped (the cache gives a few first). */
	for (n = 0; n < 512; n++) {
		int rc = ursa_spawn(&m->t[n], parked, &m->go);

		if (rc) {
			m->first_err = rc;
			break;
		}
	}
	m->n = n;
	m->sleep_rc = ursa_sleep(1 * MS);
	/* Give back 64 mappings: one PROT_NONE page each. */
	for (int k = 0; k < 64; k++)
		munmap(region + (2 * (size_t)k + 1) * ps, ps);
	for (int k = 0; k < 8 && n < 512; k++, n++) {
		int rc = ursa_spawn(&m->t[n], parked, &m->go);

		if (rc) {
			m->respawn_err = rc;
			break;
		}
		m->respawned++;
	}
	ursa_event_set(&m->go);
	for (int k = 0; k < n; k++)
		EXPECT(&m->seen, ursa_join(m->t[k], NULL) == 0, k);
	for (int k = 0; k < nshared; k++)
		munmap(shared[k], ps);
	munmap(region, npages * ps);
	return NULL;
}

Test(process, spawn_at_the_map_count_limit_is_enomem_and_recovers, .timeout = 60)
{
	struct ursa_opts o = {.cores = 1};
	struct maps *m;
	void *res;
	int rc;

	if (max_map_count() <= 0 || max_map_count() > 1000000)
		cr_skip_test("vm.max_map_count unreadable or too large to reach");
	m = calloc(1, sizeof(*m));
	cr_assert_not_null(m);
	ursa_event_init(&m->go);
	rc = ursa_run(main_maps, m, &o, &res);
	cr_assert_eq(rc, 0, "ursa_run: %s", ursa_strerror(rc));
	ASSERT_SEEN(&m->seen);
	cr_assert_gt(m->splits, 1000, "%d splits", m->splits);
	cr_assert_eq(m->first_err, -ENOMEM, "spawn said %d after %d tasks", m->first_err, m->n);
	cr_assert_lt(m->n, 512);
	cr_assert_eq(m->sleep_rc, 0);
	cr_assert_eq(m->respawned, 8, "%d spawned once mappings were freed (then %d)",
	             m->respawned, m->respawn_err);
	free(m);
}

/*
 * Where the kernel has no MADV_GUARD_INSTALL (before 6.13), each stack's
 * guard is an mprotect that splits its slab: two mappings per stack.
 * URSA_DISABLE=guard_install takes that path here.  A burst runs into
 * vm.max_map_count: spawn says -ENOMEM short of the kernel's limit (so the
 * rest of the program can still map), stderr names the limit, the tasks
 * already running finish, stacks freed are spawned on again, and the run
 * leaves no mapping behind.
 */
#define MP_MAX 200000

struct mp_burst {
	struct seen seen;
	struct ursa_event go;
	struct ursa_task **t;
	int n, first_err, sleep_rc, respawned, respawn_err, mmap_ok;
};

static void *main_mp_burst(void *arg)
{
	struct mp_burst *m = arg;
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	for (m->n = 0; m->n < MP_MAX; m->n++) {
		int rc = ursa_spawn(&m->t[m->n], parked, &m->go);

		if (rc) {
			m->first_err = rc;
			break;
		}
	}
	/* The program can still map: ursa stopped short of the limit. */
	p = mmap(NULL, ps, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	m->mmap_ok = p != MAP_FAILED;
	if (p != MAP_FAILED)
		munmap(p, ps);
	m->sleep_rc = ursa_sleep(1 * MS);
	ursa_event_set(&m->go);
	for (int i = 0; i < m->n; i++)
		EXPECT(&m->seen, ursa_join(m->t[i], NULL) == 0, i);
	/* Their stacks (guards and all) serve as many again. */
	for (int i = 0; i < m->n; i++) {
		int rc = ursa_spawn(&m->t[i], noop, NULL);

		if (rc) {
			m->respawn_err = rc;
			break;
		}
		m->respawned++;
	}
	for (int i = 0; i < m->respawned; i++)
		EXPECT(&m->seen, ursa_join(m->t[i], NULL) == 0, i);
	return NULL;
}

static void *main_warm(void *arg)
{
	struct ursa_task *t;

	if (ursa_spawn(&t, noop, NULL) == 0)
		(void)!ursa_join(t, NULL);
	(void)!ursa_blocking(noop, NULL, NULL);
	return arg;
}

Test(process, mprotect_guards_stop_short_of_the_map_count_and_say_so, .timeout = 120)
{
	struct ursa_opts o = {.cores = 1};
	struct mp_burst *m;
	char buf[2048] = "";
	FILE *err;
	int saved, maps0, fds0, rc;
	size_t got;

	if (max_map_count() <= 0 || max_map_count() > 1000000)
		cr_skip_test("vm.max_map_count unreadable or too large to reach");
	cr_assert_eq(setenv("URSA_DISABLE", "guard_install", 1), 0);
	m = calloc(1, sizeof(*m));
	cr_assert_not_null(m);
	m->t = calloc(MP_MAX, sizeof(*m->t));
	cr_assert_not_null(m->t);
	ursa_event_init(&m->go);
	/* Once first, so libc's caches (thread stacks) are as they will be. */
	cr_assert_eq(ursa_run(main_warm, NULL, &o, NULL), 0);
	maps0 = count_maps();
	fds0 = count_fds();
	err = tmpfile();
	cr_assert_not_null(err);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(err), STDERR_FILENO);
	rc = ursa_run(main_mp_burst, m, &o, NULL);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(err);
	got = fread(buf, 1, sizeof(buf) - 1, err);
	buf[got] = 0;
	fclose(err);

	cr_assert_eq(rc, 0, "ursa_run: %s", ursa_strerror(rc));
	ASSERT_SEEN(&m->seen);
	cr_assert_str_eq(ursa_features() + strlen(ursa_features()) - strlen("mprotect\n"),
	                 "mprotect\n", "%s", ursa_features());
	cr_assert_eq(m->first_err, -ENOMEM, "spawn said %d after %d tasks", m->first_err, m->n);
	cr_assert_gt(m->n, 1000, "only %d stacks", m->n);
	cr_assert_lt(m->n, (int)max_map_count() / 2, "%d stacks", m->n);
	cr_assert_not_null(strstr(buf, "vm.max_map_count"), "stderr: %s", buf);
	cr_assert(m->mmap_ok, "the program could not map a page at ursa's limit");
	cr_assert_eq(m->sleep_rc, 0);
	cr_assert_eq(m->respawned, m->n, "%d of %d spawned again (then %d)", m->respawned, m->n,
	             m->respawn_err);
	cr_assert_eq(count_fds(), fds0);
	/* ASan's allocator grows its own regions (more mappings in 0x6...). */
	cr_assert_leq(count_maps(), maps0 + (UNDER_ASAN ? 32 : 2), "%d mappings before, %d after",
	              maps0, count_maps());
	cr_log_info("%d stacks under vm.max_map_count %ld; stderr: %s", m->n, max_map_count(), buf);
	free(m->t);
	free(m);
}
