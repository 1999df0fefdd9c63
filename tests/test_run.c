/* SPDX-License-Identifier: MIT */
/*
 * ursa_run: options and environment, shutdown semantics (tasks left running
 * are cancelled and awaited), teardown leaves nothing behind, and a clean
 * error when io_uring is refused.
 */
#include "helpers.h"

#include <criterion/redirect.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *report_ncores(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)ursa_ncores();
}

Test(run, cores_come_from_opts_then_environment)
{
	struct ursa_opts o = {.cores = 3};
	void *res = NULL;

	setenv("URSA_CORES", "1", 1);
	cr_assert_eq(ursa_run(report_ncores, NULL, NULL, &res), 0);
	cr_assert_eq((uintptr_t)res, 1, "URSA_CORES ignored");
	cr_assert_eq(ursa_run(report_ncores, NULL, &o, &res), 0);
	cr_assert_eq((uintptr_t)res, 3, "explicit opts must win over the environment");
	unsetenv("URSA_CORES");
}

Test(run, malformed_environment_is_einval)
{
	void *res = NULL;

	setenv("URSA_STACK_SIZE", "lots", 1);
	cr_assert_eq(ursa_run(report_ncores, NULL, NULL, &res), -EINVAL);
	setenv("URSA_STACK_SIZE", "256K", 1);
	cr_assert_eq(ursa_run(report_ncores, NULL, NULL, &res), 0);
	unsetenv("URSA_STACK_SIZE");
}

/* A round trip between two cores: main sets a future on core 1 and waits
 * for the answer on its own (idle polling catches it, or the kick). */
static void *answer(void *arg)
{
	void *v = NULL;

	if (ursa_future_wait(arg, &v) != 0)
		return (void *)1;
	return v;
}

static void *ping_pong(void *arg)
{
	long rounds = 0;

	(void)arg;
	for (int i = 0; i < 200; i++) {
		struct ursa_future f;
		struct ursa_task *t;
		void *r = NULL;

		ursa_future_init(&f);
		if (ursa_spawn_on(&t, 1 % ursa_ncores(), answer, &f) != 0)
			return (void *)-1;
		if (ursa_future_set_result(&f, (void *)(intptr_t)(i + 1)) != 0)
			return (void *)-3;
		if (ursa_join(t, &r) != 0 || r != (void *)(intptr_t)(i + 1))
			return (void *)-2;
		rounds++;
	}
	return (void *)rounds;
}

/* idle_poll_us: 0 is the default, URSA_IDLE_POLL_OFF (or URSA_IDLE_POLL_US=0)
 * off, a bound above URSA_IDLE_POLL_MAX_US or a malformed variable -EINVAL;
 * every accepted setting runs cross-core waits to the end. */
Test(run, idle_poll_option_and_environment)
{
	unsigned valid[] = {0, 1, 50, URSA_IDLE_POLL_MAX_US, URSA_IDLE_POLL_OFF};
	struct ursa_opts o = {.cores = 2};
	void *res = NULL;

	for (unsigned i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		o.idle_poll_us = valid[i];
		cr_assert_eq(ursa_run(ping_pong, NULL, &o, &res), 0, "idle_poll_us %u", valid[i]);
		cr_assert_eq((intptr_t)res, 200, "idle_poll_us %u: %ld", valid[i], (long)(intptr_t)res);
	}
	o.idle_poll_us = URSA_IDLE_POLL_MAX_US + 1;
	cr_assert_eq(ursa_run(ping_pong, NULL, &o, &res), -EINVAL);
	o.idle_poll_us = 0;
	setenv("URSA_IDLE_POLL_US", "0", 1); /* off */
	cr_assert_eq(ursa_run(ping_pong, NULL, &o, &res), 0);
	cr_assert_eq((intptr_t)res, 200);
	setenv("URSA_IDLE_POLL_US", "soon", 1);
	cr_assert_eq(ursa_run(ping_pong, NULL, &o, &res), -EINVAL);
	setenv("URSA_IDLE_POLL_US", "2000000", 1); /* above the bound */
	cr_assert_eq(ursa_run(ping_pong, NULL, &o, &res), -EINVAL);
	o.idle_poll_us = 20; /* an explicit field wins over the environment */
	cr_assert_eq(ursa_run(ping_pong, NULL, &o, &res), 0);
	unsetenv("URSA_IDLE_POLL_US");
}

/* How many CPUs the calling worker thread may run on. */
static void *report_worker_cpus(void *arg)
{
	cpu_set_t mask;

	(void)arg;
	if (sched_getaffinity(0, sizeof(mask), &mask) != 0)
		return (void *)(intptr_t)-1;
	return (void *)(intptr_t)CPU_COUNT(&mask);
}

static int process_cpus(void)
{
	cpu_set_t mask;

	cr_assert_eq(sched_getaffinity(0, sizeof(mask), &mask), 0);
	return CPU_COUNT(&mask);
}

Test(run, workers_are_not_pinned_unless_asked)
{
	struct ursa_opts o = {.cores = 2};
	void *res = NULL;
	int n = process_cpus();

	if (n < 2)
		cr_skip_test("needs two CPUs in the affinity mask to tell pinned from not");
	unsetenv("URSA_PIN");
	cr_assert_eq(ursa_run(report_worker_cpus, NULL, &o, &res), 0);
	cr_assert_eq((intptr_t)res, n, "a worker was pinned by default");
	o.flags = URSA_OPT_PIN;
	cr_assert_eq(ursa_run(report_worker_cpus, NULL, &o, &res), 0);
	cr_assert_eq((intptr_t)res, 1, "URSA_OPT_PIN did not pin the worker");
	o.flags = 0;
	setenv("URSA_PIN", "1", 1);
	cr_assert_eq(ursa_run(report_worker_cpus, NULL, &o, &res), 0);
	cr_assert_eq((intptr_t)res, 1, "URSA_PIN=1 did not pin the worker");
	setenv("URSA_PIN", "0", 1);
	cr_assert_eq(ursa_run(report_worker_cpus, NULL, &o, &res), 0);
	cr_assert_eq((intptr_t)res, n, "URSA_PIN=0 pinned the worker");
	unsetenv("URSA_PIN");
}

/* Only URSA_OPT_PIN is defined: any other bit is refused before a thread
 * or an fd is made. */
Test(run, run_rejects_unknown_option_flags)
{
	uint32_t bad[] = {0x2u, URSA_OPT_PIN | 0x80u, 0x80000000u};
	int fds = count_fds(), maps = count_maps();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ursa_opts o = {.flags = bad[i], .cores = 1};

		cr_assert_eq(ursa_run(report_ncores, NULL, &o, NULL), -EINVAL, "flags %#x",
		             bad[i]);
	}
	cr_assert_eq(count_fds(), fds, "an fd was left behind");
	cr_assert_eq(count_maps(), maps, "a mapping (a thread's stack) was left behind");
}

static void *nested_run(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ursa_run(report_ncores, NULL, NULL, NULL);
}

Test(run, nested_run_is_ebusy)
{
	cr_assert_eq((intptr_t)run_on(1, nested_run, NULL), -EBUSY);
}

/* When main returns, tasks still running are cancelled and awaited: they
 * end after main, so the test counts them once ursa_run has returned. */
static struct seen S; /* one test per process: Criterion forks each */
static _Atomic int left_finished_cleanup;

static void *lingerer(void *arg)
{
	(void)arg;
	EXPECT_EQ(&S, ursa_sleep(URSA_FOREVER), -ECANCELED);
	/* Cleanup that itself blocks still works under a shield. */
	struct ursa_scope s;

	ursa_scope_enter_shielded(&s, URSA_FOREVER);
	EXPECT_EQ(&S, ursa_sleep(1 * MS), 0);
	ursa_scope_exit(&s);
	atomic_fetch_add(&left_finished_cleanup, 1);
	return NULL;
}

static void *main_leaves_tasks(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++) {
		struct ursa_task *t;

		if (ursa_spawn_on(&t, (unsigned)i % 2, lingerer, NULL)) {
			EXPECT(&S, false, i); /* spawn i failed */
			return NULL;
		}
		if (i % 2)
			ursa_detach(t); /* the rest are never joined nor detached */
	}
	nap(5 * MS);
	return (void *)7;
}

Test(run, main_return_cancels_and_awaits_the_rest)
{
	cr_assert_eq((uintptr_t)run_on(2, main_leaves_tasks, NULL), 7);
	ASSERT_SEEN(&S);
	cr_assert_eq(atomic_load(&left_finished_cleanup), 10);
}

/* Teardown: no fd, no address space left behind after a busy run. */
static void *busy_main(void *arg)
{
	struct ursa_task *ts[1000];

	(void)arg;
	for (int i = 0; i < 1000; i++)
		if (ursa_spawn_on(&ts[i], (unsigned)i % 2, report_ncores, NULL)) {
			EXPECT(&S, false, i); /* spawn i failed */
			return NULL;
		}
	for (int i = 0; i < 1000; i++)
		JOIN_OK(&S, ts[i]);
	/* Leave some work in flight for teardown to deal with. */
	for (int i = 0; i < 100; i++) {
		struct ursa_task *t;

		EXPECT_EQ(&S, ursa_spawn_on(&t, (unsigned)i % 2, lingerer, NULL), 0);
	}
	nap(1 * MS);
	return NULL;
}

Test(run, teardown_leaves_no_fd_and_no_mapping)
{
	int fds;
	long vm;

	run_on(2, busy_main, NULL); /* warm up libc's caches */
	fds = count_fds();
	vm = vm_size_kib();
	for (int i = 0; i < 3; i++)
		run_on(2, busy_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds, "fds leaked");
	/* 1100 tasks x 128 KiB stacks: a leak of stacks would be >100 MiB. */
	cr_assert_lt(vm_size_kib() - vm, 16 * 1024, "address space grew by %ld KiB",
	             vm_size_kib() - vm);
}

Test(run, features_describe_the_ring)
{
	const char *f = ursa_features();

	cr_assert_not_null(strstr(f, "io_uring: available"), "%s", f);
	cr_assert_not_null(strstr(f, "fiber backend: " URSA_TEST_FIBER), "%s", f);
	cr_assert_str_eq(ursa_strerror(-ENOENT), "No such file or directory");
}

/* io_uring refused: a seccomp filter makes io_uring_setup fail with `err`. */
static void refuse_io_uring(int err)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

static void assert_refused(int err, const char *hint)
{
	char buf[1024] = "";
	void *res = (void *)1;
	FILE *f;
	size_t n;

	refuse_io_uring(err);
	cr_assert_eq(ursa_run(report_ncores, NULL, NULL, &res), -err);
	cr_assert_eq(res, (void *)1, "result written on failure");
	fflush(stderr);
	f = cr_get_redirected_stderr();
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	cr_assert_not_null(strstr(buf, "io_uring is unavailable"), "stderr: %s", buf);
	cr_assert_not_null(strstr(buf, hint), "stderr: %s", buf);
}

Test(run, io_uring_refused_with_eperm_is_a_clean_error, .init = cr_redirect_stderr)
{
	assert_refused(EPERM, "io_uring_disabled");
}

Test(run, io_uring_missing_enosys_is_a_clean_error, .init = cr_redirect_stderr)
{
	assert_refused(ENOSYS, "seccomp");
}
