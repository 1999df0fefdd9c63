/* SPDX-License-Identifier: MIT */
/*
 * Signals on the ring (ursa/signal.h): a signal sent while a task waits, one
 * that arrived while none did, standard signals merging and real-time ones
 * queueing, each signal to one of several waiters, cancellation and
 * deadlines, destroy while waited on, and the input that is refused (a
 * signal not blocked, SIGKILL, a fault signal, unknown flags).  Each test
 * blocks its signals before ursa_run, as the header says every program
 * must, so that every worker inherits the mask.
 */
#include "test_io_helpers.h"

#include <pthread.h>
#include <signal.h>

static struct seen S;

static sigset_t block(int a, int b)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, a);
	if (b)
		sigaddset(&set, b);
	cr_assert_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
	return set;
}

struct waiter {
	struct ursa_signal *sig;
	int rc;
	struct signalfd_siginfo info;
};

static void *wait_one(void *arg)
{
	struct waiter *w = arg;

	w->rc = ursa_signal_wait(w->sig, &w->info);
	return NULL;
}

static void *sent_while_waiting_main(void *arg)
{
	sigset_t *set = arg;
	struct waiter w = {0};
	struct ursa_task *t;

	EXPECT(&S, ursa_signal_create(&w.sig, set, 0) == 0, 0);
	EXPECT(&S, ursa_spawn_on(&t, 1, wait_one, &w) == 0, 0);
	EXPECT(&S, ursa_sleep(10 * MS) == 0, 0);
	EXPECT(&S, w.rc == 0, w.rc); /* still waiting */
	/* SIGTERM to the process: with the mask inherited by every worker,
	 * no thread takes it, and the signalfd does. */
	EXPECT(&S, kill(getpid(), SIGTERM) == 0, errno);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	EXPECT(&S, w.rc == SIGTERM, w.rc);
	EXPECT(&S, w.info.ssi_signo == SIGTERM, w.info.ssi_signo);
	EXPECT(&S, w.info.ssi_pid == (uint32_t)getpid(), w.info.ssi_pid);
	EXPECT(&S, ursa_signal_destroy(w.sig) == 0, 0);
	return NULL;
}

Test(signal, sigterm_sent_while_a_task_waits_reaches_it_and_kills_nothing)
{
	sigset_t set = block(SIGTERM, 0);
	int fds = count_fds();

	run_on(2, sent_while_waiting_main, &set);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *pending_main(void *arg)
{
	sigset_t *set = arg;
	struct ursa_signal *sig;
	struct signalfd_siginfo info;
	union sigval v = {.sival_int = 0};
	int rc;

	EXPECT(&S, ursa_signal_create(&sig, set, 0) == 0, 0);
	/* Sent while nobody waits: pending, and returned at once. */
	EXPECT(&S, kill(getpid(), SIGUSR1) == 0, errno);
	EXPECT(&S, kill(getpid(), SIGUSR1) == 0, errno); /* merges with the first */
	for (int i = 0; i < 3; i++) {
		v.sival_int = 100 + i;
		EXPECT(&S, sigqueue(getpid(), SIGRTMIN + 1, v) == 0, errno); /* queue */
	}
	rc = ursa_signal_wait(sig, &info);
	EXPECT(&S, rc == SIGUSR1, rc); /* standard signals come first */
	for (int i = 0; i < 3; i++) {
		rc = ursa_signal_wait(sig, &info);
		EXPECT(&S, rc == SIGRTMIN + 1, rc);
		EXPECT(&S, info.ssi_int == 100 + i, info.ssi_int);
	}
	/* Nothing more is pending: the next wait waits. */
	{
		struct ursa_scope s;

		ursa_scope_enter(&s, ursa_now() + 20 * MS);
		rc = ursa_signal_wait(sig, NULL);
		EXPECT(&S, rc == -ETIMEDOUT, rc);
		(void)ursa_scope_exit(&s);
	}
	EXPECT(&S, ursa_signal_destroy(sig) == 0, 0);
	return NULL;
}

Test(signal, signals_sent_while_nobody_waits_are_kept_standard_merge_realtime_queue)
{
	sigset_t set = block(SIGUSR1, SIGRTMIN + 1);

	run_on(1, pending_main, &set);
	ASSERT_SEEN(&S);
}

static void *two_waiters_main(void *arg)
{
	sigset_t *set = arg;
	struct waiter w[2] = {{0}, {0}};
	struct ursa_task *t[2];
	struct ursa_signal *sig;

	EXPECT(&S, ursa_signal_create(&sig, set, 0) == 0, 0);
	for (int i = 0; i < 2; i++) {
		w[i].sig = sig;
		EXPECT(&S, ursa_spawn_on(&t[i], (unsigned)i, wait_one, &w[i]) == 0, i);
	}
	EXPECT(&S, ursa_sleep(10 * MS) == 0, 0);
	/* destroy is refused while tasks wait */
	EXPECT(&S, ursa_signal_destroy(sig) == -EBUSY, 0);
	EXPECT(&S, kill(getpid(), SIGUSR2) == 0, errno);
	EXPECT(&S, ursa_sleep(20 * MS) == 0, 0);
	EXPECT(&S, kill(getpid(), SIGUSR2) == 0, errno);
	for (int i = 0; i < 2; i++) {
		EXPECT(&S, ursa_join(t[i], NULL) == 0, i);
		EXPECT(&S, w[i].rc == SIGUSR2, w[i].rc);
	}
	EXPECT(&S, ursa_signal_destroy(sig) == 0, 0);
	return NULL;
}

Test(signal, each_signal_goes_to_one_of_several_waiters)
{
	sigset_t set = block(SIGUSR2, 0);

	run_on(2, two_waiters_main, &set);
	ASSERT_SEEN(&S);
}

static void *cancel_main(void *arg)
{
	sigset_t *set = arg;
	struct waiter w = {0};
	struct ursa_task *t;
	int rc;

	EXPECT(&S, ursa_signal_create(&w.sig, set, 0) == 0, 0);
	EXPECT(&S, ursa_spawn(&t, wait_one, &w) == 0, 0);
	EXPECT(&S, ursa_sleep(5 * MS) == 0, 0);
	EXPECT(&S, ursa_cancel(t) == 0, 0);
	(void)!ursa_join(t, NULL);
	EXPECT(&S, w.rc == -ECANCELED, w.rc);
	/* The signal sent after the cancelled wait is kept for the next. */
	EXPECT(&S, kill(getpid(), SIGUSR1) == 0, errno);
	rc = ursa_signal_wait(w.sig, NULL);
	EXPECT(&S, rc == SIGUSR1, rc);
	EXPECT(&S, ursa_signal_destroy(w.sig) == 0, 0);
	return NULL;
}

Test(signal, a_cancelled_wait_takes_nothing_and_the_next_wait_gets_the_signal)
{
	sigset_t set = block(SIGUSR1, 0);
	int fds = count_fds();

	run_on(1, cancel_main, &set);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
}

static void *refused_main(void *arg)
{
	struct ursa_signal *sig = NULL;
	sigset_t set;
	int rc;

	(void)arg;
	sigemptyset(&set);
	rc = ursa_signal_create(&sig, &set, 0); /* empty */
	EXPECT(&S, rc == -EINVAL, rc);
	sigaddset(&set, SIGHUP); /* not blocked by the test */
	rc = ursa_signal_create(&sig, &set, 0);
	EXPECT(&S, rc == -EINVAL, rc);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1); /* blocked by the test */
	rc = ursa_signal_create(&sig, &set, 1);
	EXPECT(&S, rc == -EINVAL, rc);
	sigaddset(&set, SIGSEGV);
	rc = ursa_signal_create(&sig, &set, 0);
	EXPECT(&S, rc == -EINVAL, rc);
	sigdelset(&set, SIGSEGV);
	sigaddset(&set, SIGKILL);
	rc = ursa_signal_create(&sig, &set, 0);
	EXPECT(&S, rc == -EINVAL, rc);
	EXPECT(&S, sig == NULL, 0);
	EXPECT(&S, ursa_signal_wait(NULL, NULL) == -EINVAL, 0);
	return NULL;
}

Test(signal, unblocked_uncatchable_and_fault_signals_and_unknown_flags_are_refused)
{
	sigset_t set = block(SIGUSR1, 0);
	struct ursa_signal *sig;
	int fds = count_fds();

	run_on(1, refused_main, NULL);
	ASSERT_SEEN(&S);
	cr_assert_eq(count_fds(), fds);
	/* Outside a runtime: create and destroy work, wait is -EPERM. */
	cr_assert_eq(ursa_signal_create(&sig, &set, 0), 0);
	cr_assert_eq(ursa_signal_wait(sig, NULL), -EPERM);
	cr_assert_eq(ursa_signal_destroy(sig), 0);
}

/* The signal arrives while the core is busy with other tasks: it waits,
 * pending, and nothing is lost or killed. */
static atomic_int spins;

static void *busy(void *arg)
{
	(void)arg;
	while (atomic_load(&spins) < 2000) {
		atomic_fetch_add(&spins, 1);
		ursa_yield();
	}
	return NULL;
}

static void *busy_main(void *arg)
{
	sigset_t *set = arg;
	struct ursa_signal *sig;
	struct ursa_task *t;
	int rc;

	EXPECT(&S, ursa_signal_create(&sig, set, 0) == 0, 0);
	EXPECT(&S, ursa_spawn(&t, busy, NULL) == 0, 0);
	EXPECT(&S, kill(getpid(), SIGINT) == 0, errno);
	EXPECT(&S, ursa_join(t, NULL) == 0, 0);
	rc = ursa_signal_wait(sig, NULL);
	EXPECT(&S, rc == SIGINT, rc);
	EXPECT(&S, ursa_signal_destroy(sig) == 0, 0);
	return NULL;
}

Test(signal, sigint_while_the_core_is_busy_waits_pending_for_the_next_wait)
{
	sigset_t set = block(SIGINT, 0);

	run_on(1, busy_main, &set);
	ASSERT_SEEN(&S);
}
