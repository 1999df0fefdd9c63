/* SPDX-License-Identifier: MIT */
/*
 * two_sessions: two ursa programs in separate sessions share the CPUs, as
 * meson runs two tests side by side (each in its own session, so its own
 * scheduler autogroup).  One is busy on every core; the other ("the
 * victim") is busy on its core 1 and nearly idle on core 0, where a task
 * waits for SIGTERM on a signalfd read and another sleeps 20 ms at a time.
 * Every round the victim must answer SIGTERM, and never see a sleep end
 * late, within LIMIT_MS.
 *
 * With workers pinned (URSA_PIN=1 or `two_sessions --pin`), this is issue
 * 22: the victim's core 0 worker, the one thread of its autogroup on that
 * CPU and so given a tiny share of it, was held off the CPU for seconds
 * behind the other session's busy threads, and pinning kept the load
 * balancer from moving it; every timer and completion of that core waited.
 * Unpinned (the default), the kernel moves it.  A plain program, not a
 * Criterion test: it forks whole runtimes.
 *
 *   two_sessions [--pin] [ROUNDS]     exit 0: every round within the limit
 */
#include <ursa.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS 1000000ull
#define LIMIT_MS 2000ull     /* issue 22 saw 4-20 s; unpinned, tens of ms at a normal
                              * load, and 1.2 s once at load 25 (two sanitizer
                              * runs and server loops on 2 CPUs) */
#define SETTLE_US 2000000    /* both programs running before the signal */
#define TICK_NS (20 * MS)

static bool pin;
static atomic_bool stop;
static _Atomic uint64_t worst_late_ns;

/* Busy, but a well-behaved task: back to the scheduler every 2 ms. */
static void *busy(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		for (uint64_t until = ursa_now() + 2 * MS; ursa_now() < until;)
			;
		if (ursa_sleep(0) < 0)
			break;
	}
	return NULL;
}

/* Sleeps TICK_NS at a time and keeps the worst lateness. */
static void *ticker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t t0 = ursa_now(), late;

		if (ursa_sleep(TICK_NS) < 0)
			break;
		late = ursa_now() - t0 - TICK_NS;
		if (late > atomic_load(&worst_late_ns))
			atomic_store(&worst_late_ns, late);
	}
	return NULL;
}

static void *victim_main(void *arg)
{
	struct signalfd_siginfo si;
	struct ursa_task *b, *t;
	sigset_t term;
	void *fail = NULL;
	int fd;

	(void)arg;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	fd = signalfd(-1, &term, SFD_CLOEXEC); /* SIGTERM is blocked: see run_child */
	if (fd < 0)
		return (void *)1;
	if (ursa_spawn_on(&b, 1 % ursa_ncores(), busy, NULL))
		return (void *)2;
	if (ursa_spawn_on(&t, 0, ticker, NULL))
		return (void *)3;
	/* On core 0, beside the ticker: the wait the issue saw "lost". */
	if (ursa_read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		fail = (void *)4;
	atomic_store(&stop, true);
	if (ursa_join(b, NULL) || ursa_join(t, NULL))
		fail = (void *)5;
	ursa_close(fd);
	if (atomic_load(&worst_late_ns) > LIMIT_MS * MS) {
		fprintf(stderr, "two_sessions: a 20 ms sleep ended %llu ms late\n",
		        (unsigned long long)(atomic_load(&worst_late_ns) / MS));
		fail = (void *)6;
	}
	return fail;
}

static void *noise_main(void *arg)
{
	struct ursa_task *t[4];

	(void)arg;
	for (unsigned i = 0; i < 4; i++)
		if (ursa_spawn_on(&t[i], i % ursa_ncores(), busy, NULL))
			return (void *)1;
	for (unsigned i = 0; i < 4; i++)
		if (ursa_join(t[i], NULL))
			return (void *)2;
	return NULL;
}

/* Fork a program in a session of its own running main on 2 cores. */
static pid_t run_child(ursa_fn main, bool block_term)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct ursa_opts o = {.cores = 2, .flags = pin ? URSA_OPT_PIN : 0};
		void *res = (void *)1;

		setsid();
		if (block_term) {
			/* Before any thread starts: the workers inherit the mask,
			 * and SIGTERM waits for the signalfd read. */
			sigset_t term;

			sigemptyset(&term);
			sigaddset(&term, SIGTERM);
			sigprocmask(SIG_BLOCK, &term, NULL);
		}
		if (ursa_run(main, NULL, &o, &res) != 0)
			_exit(2);
		_exit(res ? 3 : 0);
	}
	return pid;
}

int main(int argc, char **argv)
{
	int rounds = 4, failed = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--pin") == 0)
			pin = true;
		else
			rounds = atoi(argv[i]);
	}
	for (int r = 0; r < rounds; r++) {
		pid_t noise = run_child(noise_main, false), victim;
		uint64_t t0, took;
		int st = 0;

		victim = run_child(victim_main, true);
		if (noise < 0 || victim < 0) {
			perror("two_sessions: fork");
			return 1;
		}
		usleep(SETTLE_US);
		t0 = ursa_now();
		kill(victim, SIGTERM);
		while (waitpid(victim, &st, 0) < 0 && errno == EINTR)
			;
		took = ursa_now() - t0;
		kill(noise, SIGKILL);
		while (waitpid(noise, NULL, 0) < 0 && errno == EINTR)
			;
		printf("round %d: %s workers: exit %d, %llu ms after SIGTERM\n", r,
		       pin ? "pinned" : "unpinned", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
		       (unsigned long long)(took / MS));
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || took > LIMIT_MS * MS) {
			printf("round %d: FAIL (limit %llu ms)\n", r, LIMIT_MS);
			failed++;
		}
	}
	return failed ? 1 : 0;
}
