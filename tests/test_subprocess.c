/* SPDX-License-Identifier: MIT */
/*
 * Child processes (ursa/process.h): communicate with input and output
 * larger than a pipe (no deadlock), 64 MiB of stdout, a child that exits
 * before reading its stdin (EPIPE, never SIGPIPE), one that closes stdout
 * early, a program that does not exist (-ENOENT from create), waits
 * cancelled and timed out (the child runs on), kill, destroy of a running
 * child, 100 children from both cores at once, what a child inherits (fds
 * 0-2 only, an empty signal mask), and after every test: no fd left and no
 * child left, zombie or alive.  The suite runs again with
 * URSA_DISABLE=waitid (the pidfd poll) and rwf_nosignal (the masked pipe
 * write).
 */
#include "test_io_helpers.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static struct seen S;

/* No child of this process is left, reaped or not. */
static void assert_no_child(void)
{
	siginfo_t si;
	int rc;

	memset(&si, 0, sizeof(si));
	rc = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
	cr_assert(rc < 0 && errno == ECHILD, "a child is left: pid %d", (int)si.si_pid);
}

static const struct ursa_process_opts all_pipes = {
	.stdin_mode = URSA_PROCESS_PIPE,
	.stdout_mode = URSA_PROCESS_PIPE,
	.stderr_mode = URSA_PROCESS_PIPE,
};

static void *echo_main(void *arg)
{
	char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	struct ursa_process_output o;
	struct ursa_process *p;
	int rc;

	(void)arg;
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_process_pid(p) > 0, 0);
	rc = ursa_process_communicate(p, NULL, 0, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.out_len == 4 && strcmp(o.out, "out\n") == 0, o.out_len);
	EXPECT(&S, o.err_len == 4 && strcmp(o.err, "err\n") == 0, o.err_len);
	EXPECT(&S, WIFEXITED(o.status) && WEXITSTATUS(o.status) == 3, o.status);
	/* Reaped: wait gives the same status again, kill finds nobody. */
	rc = ursa_process_wait(p, &o.status);
	EXPECT(&S, rc == 0 && WEXITSTATUS(o.status) == 3, rc);
	EXPECT(&S, ursa_process_kill(p, SIGTERM) == -ESRCH, 0);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	return NULL;
}

Test(subprocess, communicate_collects_stdout_stderr_and_the_exit_status)
{
	int fds = count_fds();

	run_on(1, echo_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *cat_main(void *arg)
{
	/* 4 MiB through cat: both pipes full at once, several times over. */
	enum { N = 4 << 20 };
	char *argv[] = {"cat", NULL};
	char *in = malloc(N);
	struct ursa_process_output o;
	struct ursa_process *p;
	uint64_t seed = 5;
	int rc;

	(void)arg;
	rng_fill(&seed, in, N);
	rc = ursa_process_create(&p, "cat", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	rc = ursa_process_communicate(p, in, N, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.in_written == N && o.in_err == 0, o.in_written);
	EXPECT(&S, o.out_len == N && memcmp(o.out, in, N) == 0, o.out_len);
	EXPECT(&S, o.err_len == 0, o.err_len);
	EXPECT(&S, WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0, o.status);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	free(in);
	return NULL;
}

Test(subprocess, communicate_feeds_and_drains_at_once_without_deadlock)
{
	int fds = count_fds();

	run_on(1, cat_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *huge_main(void *arg)
{
	/* 64 MiB on stdout and 1 MiB on stderr, interleaved. */
	char *argv[] = {"sh", "-c",
	                "head -c 33554432 /dev/zero; head -c 1048576 /dev/zero >&2;"
	                " head -c 33554432 /dev/zero",
	                NULL};
	struct ursa_process_output o;
	struct ursa_process *p;
	size_t nonzero = 0;
	int rc;

	(void)arg;
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	rc = ursa_process_communicate(p, NULL, 0, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.out_len == 64u << 20, o.out_len);
	EXPECT(&S, o.err_len == 1u << 20, o.err_len);
	for (size_t i = 0; i < o.out_len; i++)
		nonzero += o.out[i] != 0;
	EXPECT(&S, nonzero == 0, nonzero);
	EXPECT(&S, o.status == 0, o.status);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	return NULL;
}

Test(subprocess, communicate_takes_64_mib_of_stdout, .timeout = 120)
{
	int fds = count_fds();

	run_on(1, huge_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *early_exit_main(void *arg)
{
	/* A child that never reads its stdin, and 1 MiB of input: -EPIPE in
	 * in_err, no SIGPIPE, and its output and status all the same. */
	char *argv[] = {"sh", "-c", "echo bye", NULL};
	char *in = calloc(1, 1 << 20);
	struct ursa_process_output o;
	struct ursa_process *p;
	struct ursa_writer *w;
	ssize_t n;
	int rc;

	(void)arg;
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	rc = ursa_process_communicate(p, in, 1 << 20, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.in_err == -EPIPE && o.in_written < (1u << 20), o.in_written);
	EXPECT(&S, o.out_len == 4 && strcmp(o.out, "bye\n") == 0, o.out_len);
	EXPECT(&S, WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0, o.status);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);

	/* The same through a writer on the stdin pipe: -EPIPE from the write. */
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_process_wait(p, &rc) == 0, 0);
	EXPECT(&S, ursa_writer_create(&w, ursa_process_fd(p, 0), 0, 0) == 0, 0);
	n = ursa_writer_write(w, in, 1 << 20);
	EXPECT(&S, n == -EPIPE, n);
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	free(in);
	return NULL;
}

Test(subprocess, a_child_that_exits_before_reading_stdin_is_epipe_not_sigpipe)
{
	int fds = count_fds();

	signal(SIGPIPE, SIG_DFL);
	run_on(1, early_exit_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *closes_stdout_main(void *arg)
{
	/* stdout closed at once; stderr written after a pause. */
	char *argv[] = {"sh", "-c", "exec 1>&-; sleep 0.05; echo late >&2; exit 0", NULL};
	struct ursa_process_output o;
	struct ursa_process *p;
	int rc;

	(void)arg;
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	rc = ursa_process_communicate(p, NULL, 0, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.out_len == 0, o.out_len);
	EXPECT(&S, o.err_len == 5 && strcmp(o.err, "late\n") == 0, o.err_len);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	return NULL;
}

Test(subprocess, a_child_closing_stdout_early_still_delivers_stderr)
{
	int fds = count_fds();

	run_on(1, closes_stdout_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *missing_main(void *arg)
{
	char *argv[] = {"no-such-program-ursa", NULL};
	char *argv2[] = {"/nonexistent/dir/prog", NULL};
	char plain[] = "/tmp/ursa-not-exec-XXXXXX";
	int pfd = mkstemp(plain); /* mode 0600: no x bit, even for root */
	char *argv3[] = {plain, NULL};
	struct ursa_process_opts bad = all_pipes;
	struct ursa_process *p = NULL;
	int rc;

	(void)arg;
	rc = ursa_process_create(&p, "no-such-program-ursa", argv, &all_pipes);
	EXPECT(&S, rc == -ENOENT, rc);
	rc = ursa_process_create(&p, "/nonexistent/dir/prog", argv2, NULL);
	EXPECT(&S, rc == -ENOENT, rc);
	EXPECT(&S, pfd >= 0, errno);
	close(pfd);
	rc = ursa_process_create(&p, plain, argv3, &all_pipes); /* not executable */
	EXPECT(&S, rc == -EACCES, rc);
	unlink(plain);
	bad.stdin_mode = URSA_PROCESS_STDOUT;
	EXPECT(&S, ursa_process_create(&p, "true", argv, &bad) == -EINVAL, 0);
	bad = all_pipes;
	bad.stdout_mode = 99;
	EXPECT(&S, ursa_process_create(&p, "true", argv, &bad) == -EINVAL, 0);
	bad = all_pipes;
	bad.flags = 0x80;
	EXPECT(&S, ursa_process_create(&p, "true", argv, &bad) == -EINVAL, 0);
	bad = all_pipes;
	bad.stdout_mode = URSA_PROCESS_FD;
	bad.stdout_fd = 9999;
	EXPECT(&S, ursa_process_create(&p, "true", argv, &bad) == -EINVAL, 0);
	EXPECT(&S, ursa_process_create(&p, "true", NULL, NULL) == -EINVAL, 0);
	EXPECT(&S, p == NULL, 0);
	return NULL;
}

Test(subprocess, a_program_that_does_not_exist_is_enoent_from_create)
{
	int fds = count_fds();

	run_on(1, missing_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

struct waiting {
	struct ursa_process *p;
	int rc, status;
};

static void *wait_task(void *arg)
{
	struct waiting *w = arg;

	w->rc = ursa_process_wait(w->p, &w->status);
	return NULL;
}

static void *cancel_main(void *arg)
{
	char *argv[] = {"sleep", "30", NULL};
	struct waiting w = {0};
	struct ursa_task *t;
	struct ursa_scope s;
	int rc, status;

	(void)arg;
	rc = ursa_process_create(&w.p, "sleep", argv, NULL);
	EXPECT(&S, rc == 0, rc);
	/* A deadline: -ETIMEDOUT, and the child runs on. */
	ursa_scope_enter(&s, ursa_now() + 20 * MS);
	rc = ursa_process_wait(w.p, &status);
	EXPECT(&S, rc == -ETIMEDOUT, rc);
	(void)ursa_scope_exit(&s);
	EXPECT(&S, ursa_process_kill(w.p, 0) == 0, 0);
	/* A cancelled wait in another task: the same; a second waiter is
	 * refused meanwhile. */
	EXPECT(&S, ursa_spawn(&t, wait_task, &w) == 0, 0);
	EXPECT(&S, ursa_sleep(10 * MS) == 0, 0);
	EXPECT(&S, ursa_process_wait(w.p, &status) == -EBUSY, 0);
	EXPECT(&S, ursa_process_destroy(w.p) == -EBUSY, 0);
	EXPECT(&S, ursa_cancel(t) == 0, 0);
	(void)!ursa_join(t, NULL);
	EXPECT(&S, w.rc == -ECANCELED, w.rc);
	EXPECT(&S, ursa_process_kill(w.p, 0) == 0, 0);
	/* SIGTERM reaches it although the parent blocks SIGTERM (the child
	 * starts with an empty mask). */
	EXPECT(&S, ursa_process_kill(w.p, SIGTERM) == 0, 0);
	rc = ursa_process_wait(w.p, &status);
	EXPECT(&S, rc == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, status);
	EXPECT(&S, ursa_process_destroy(w.p) == 0, 0);
	return NULL;
}

Test(subprocess, a_cancelled_or_timed_out_wait_leaves_the_child_running)
{
	sigset_t set;
	int fds = count_fds();

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	run_on(1, cancel_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *destroy_running_main(void *arg)
{
	char *argv[] = {"sleep", "30", NULL};
	struct ursa_process *p;
	struct ursa_process_output o;
	struct ursa_scope s;
	int rc;

	(void)arg;
	/* Destroyed while running: killed and reaped. */
	rc = ursa_process_create(&p, "sleep", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	/* Destroyed from a cancelled scope after a cancelled communicate: the
	 * output so far is kept, and destroy still reaps. */
	char *argv2[] = {"sh", "-c", "echo first; exec sleep 30", NULL};
	rc = ursa_process_create(&p, "sh", argv2, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	ursa_scope_enter(&s, ursa_now() + 100 * MS);
	rc = ursa_process_communicate(p, "ignored", 7, &o);
	EXPECT(&S, rc == -ETIMEDOUT, rc);
	EXPECT(&S, o.out_len == 6 && strcmp(o.out, "first\n") == 0, o.out_len);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	(void)ursa_scope_exit(&s);
	ursa_process_output_fini(&o);
	return NULL;
}

Test(subprocess, destroy_kills_and_reaps_a_running_child_even_when_cancelled)
{
	int fds = count_fds();

	run_on(1, destroy_running_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

/* ---------------------------------------------- many at once, both cores */

#define NCHILD 100

static void *one_child(void *arg)
{
	int i = (int)(intptr_t)arg;
	char expr[64], want[32];
	char *argv[] = {"sh", "-c", expr, NULL};
	struct ursa_process_output o;
	struct ursa_process *p;
	int rc;

	snprintf(expr, sizeof(expr), "read x; echo $x-%d; echo e%d >&2", i, i);
	snprintf(want, sizeof(want), "in%d-%d\n", i, i);
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	if (rc)
		return NULL;
	{
		char in[16];
		int n = snprintf(in, sizeof(in), "in%d\n", i);

		rc = ursa_process_communicate(p, in, (size_t)n, &o);
	}
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.out && strcmp(o.out, want) == 0, i);
	EXPECT(&S, o.status == 0, o.status);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	return NULL;
}

static void *many_main(void *arg)
{
	struct ursa_task *t[NCHILD];

	(void)arg;
	for (int i = 0; i < NCHILD; i++)
		EXPECT(&S, ursa_spawn_on(&t[i], (unsigned)i % 2, one_child, (void *)(intptr_t)i) == 0,
		       i);
	for (int i = 0; i < NCHILD; i++)
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
	return NULL;
}

Test(subprocess, a_hundred_children_from_two_cores_each_get_only_their_pipes, .timeout = 120)
{
	int fds = count_fds();

	run_on(2, many_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

/* The fds this process would pass on through exec: 0-2 and those without
 * FD_CLOEXEC (the test harness's own, say), as a bit set. */
static uint64_t inheritable[16];

static void note_inheritable(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	memset(inheritable, 0, sizeof(inheritable));
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(d) || fd >= 1024)
			continue;
		if (fd <= 2 || !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			inheritable[fd / 64] |= 1ull << (fd % 64);
	}
	if (d)
		closedir(d);
}

static void *inherit_main(void *arg)
{
	/* The child lists its fds and its blocked signals. */
	char *argv[] = {"sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; grep SigBlk /proc/self/status",
	                NULL};
	struct ursa_process_output o;
	struct ursa_process *p;
	int rc, extra = 0;

	(void)arg;
	note_inheritable(); /* now: every ring and eventfd of the runtime is open */
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	rc = ursa_process_communicate(p, NULL, 0, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, o.out && strstr(o.out, "SigBlk:\t0000000000000000"), 0);
	/* Every fd the child has was inheritable here, but one: ls's own
	 * directory fd. */
	for (char *tok = o.out ? strtok(o.out, " ") : NULL; tok && *tok != '\n';
	     tok = strtok(NULL, " ")) {
		int fd = atoi(tok);

		if (fd >= 1024 || !(inheritable[fd / 64] & (1ull << (fd % 64))))
			extra++;
	}
	EXPECT(&S, extra == 1, extra);
	ursa_process_output_fini(&o);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	return NULL;
}

Test(subprocess, a_child_inherits_only_its_stdio_and_no_blocked_signal)
{
	sigset_t set;
	int fds = count_fds();

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	run_on(2, inherit_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *modes_main(void *arg)
{
	char path[] = "/tmp/ursa-subprocess-XXXXXX";
	char *argv[] = {"sh", "-c", "cat; echo to-err >&2", NULL};
	struct ursa_process_opts o = {.stdin_mode = URSA_PROCESS_DEVNULL,
	                              .stdout_mode = URSA_PROCESS_FD,
	                              .stderr_mode = URSA_PROCESS_STDOUT,
	                              .cwd = "/"};
	struct ursa_process *p;
	char buf[64] = {0};
	int fd = mkstemp(path), rc;

	(void)arg;
	EXPECT(&S, fd >= 0, errno);
	o.stdout_fd = fd;
	rc = ursa_process_create(&p, "sh", argv, &o);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_process_fd(p, 0) == -1 && ursa_process_fd(p, 1) == -1, 0);
	EXPECT(&S, ursa_process_wait(p, &rc) == 0 && rc == 0, rc);
	EXPECT(&S, pread(fd, buf, sizeof(buf) - 1, 0) == 7 && strcmp(buf, "to-err\n") == 0, 0);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	close(fd);
	unlink(path);
	return NULL;
}

Test(subprocess, devnull_an_fd_of_ours_and_stderr_to_stdout)
{
	int fds = count_fds();

	run_on(1, modes_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

static void *stream_main(void *arg)
{
	/* A line protocol with a child: write a line, read the answer. */
	char *argv[] = {"sh", "-c", "while read l; do echo \"got $l\"; done", NULL};
	struct ursa_process *p;
	struct ursa_reader *r;
	struct ursa_writer *w;
	const char *line;
	int rc, status;

	(void)arg;
	rc = ursa_process_create(&p, "sh", argv, &all_pipes);
	EXPECT(&S, rc == 0, rc);
	EXPECT(&S, ursa_reader_create(&r, ursa_process_fd(p, 1), 0, 0) == 0, 0);
	EXPECT(&S, ursa_writer_create(&w, ursa_process_fd(p, 0), 0, 0) == 0, 0);
	for (int i = 0; i < 50; i++) {
		char want[32];
		ssize_t n;

		EXPECT(&S, ursa_writer_write(w, "ping\n", 5) == 5, i);
		EXPECT(&S, ursa_writer_flush(w) == 0, i);
		n = ursa_reader_readline(r, &line);
		snprintf(want, sizeof(want), "got ping\n");
		EXPECT(&S, n == 9 && memcmp(line, want, 9) == 0, n);
	}
	EXPECT(&S, ursa_writer_destroy(w) == 0, 0);
	EXPECT(&S, ursa_process_close_fd(p, 0) == 0, 0); /* EOF: the loop ends */
	EXPECT(&S, ursa_reader_readline(r, &line) == 0, 0);
	EXPECT(&S, ursa_process_wait(p, &status) == 0 && status == 0, status);
	EXPECT(&S, ursa_reader_destroy(r) == 0, 0);
	EXPECT(&S, ursa_process_destroy(p) == 0, 0);
	return NULL;
}

Test(subprocess, a_line_protocol_with_a_child_through_streams)
{
	int fds = count_fds();

	run_on(1, stream_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	assert_no_child();
}

Test(subprocess, sigchld_ignored_is_echild_and_create_works_outside_a_task)
{
	char *argv[] = {"true", NULL};
	struct ursa_process *p;

	/* Outside a runtime: create and destroy (which then waits in waitid). */
	cr_assert_eq(ursa_process_create(&p, "true", argv, NULL), 0);
	cr_assert_eq(ursa_process_wait(p, NULL), -EPERM);
	cr_assert_eq(ursa_process_destroy(p), 0);
	assert_no_child();
	signal(SIGCHLD, SIG_IGN);
	cr_assert_eq(ursa_process_create(&p, "true", argv, NULL), -ECHILD);
	signal(SIGCHLD, SIG_DFL);
}
