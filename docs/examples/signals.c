/* SPDX-License-Identifier: MIT */
/*
 * loop.add_signal_handler: a task waits for signals on the ring (a
 * signalfd, ursa/signal.h) and shuts the program down on SIGTERM, as the
 * example servers do.  The signals are blocked before ursa_run, so every
 * worker inherits the mask and none of them takes a signal itself.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <ursa.h>

static struct ursa_event stop;

static void *worker(void *arg)
{
	(void)arg;
	/* Work in rounds until told to stop. */
	while (!ursa_event_is_set(&stop))
		if (ursa_sleep(10 * 1000000) < 0)
			break;
	printf("worker: stopped cleanly\n");
	return NULL;
}

/* loop.add_signal_handler(SIGTERM, handler): the handler is a task. */
static void *on_signals(void *arg)
{
	struct ursa_signal *sigs = arg;
	struct signalfd_siginfo info;
	int sig;

	while ((sig = ursa_signal_wait(sigs, &info)) > 0) {
		printf("got signal %d (%s), sent by %s\n", sig, sig == SIGTERM ? "SIGTERM" : "SIGUSR1",
		       info.ssi_pid == (uint32_t)getpid() ? "this process" : "another process");
		if (sig == SIGTERM) {
			ursa_event_set(&stop);
			break;
		}
	}
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *w, *h;
	struct ursa_signal *sigs;
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	if (ursa_signal_create(&sigs, &set, 0) < 0)
		return (void *)1;
	ursa_event_init(&stop);
	if (ursa_spawn(&w, worker, NULL) || ursa_spawn(&h, on_signals, sigs))
		return (void *)1;
	if (ursa_sleep(URSA_MS(20)) < 0)
		return (void *)1;
	kill(getpid(), SIGUSR1); /* kill -USR1 <pid> */
	if (ursa_sleep(URSA_MS(20)) < 0)
		return (void *)1;
	kill(getpid(), SIGTERM); /* kill <pid>: without the handler, the end */
	if (ursa_join(h, NULL) || ursa_join(w, NULL))
		return (void *)1;
	ursa_signal_destroy(sigs);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 2};
	void *failed = NULL;
	sigset_t set;

	/* Before ursa_run: the workers inherit this mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
