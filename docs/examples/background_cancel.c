/* SPDX-License-Identifier: MIT */
/*
 * A background task, cancelled (the seeds' background_task and
 * long_running_task).  ursa_cancel is task.cancel(): the task's current and
 * later blocking calls return -ECANCELED, which is how CancelledError
 * reaches it.  C has no exceptions, so "catching" it is reading the return
 * value; the task cleans up and returns, and ursa_join (`await task`)
 * reports -ECANCELED.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

/* Each line is also counted on a semaphore, so that the canceller can wait
 * for three lines (see run_then_cancel). */
static struct ursa_sem lines = URSA_SEM_INIT(0);

static void *background_task(void *arg)
{
	(void)arg;
	for (;;) {
		printf("Background task running...\n");
		ursa_sem_release(&lines);
		/* < 0, not == -ECANCELED: under a deadline the wait says -ETIMEDOUT */
		if (ursa_sleep(SEC(1)) < 0)
			return NULL; /* not re-raised: the cancellation is still the outcome */
	}
}

static void *long_running_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++) {
		printf("Working... %d\n", i);
		ursa_sem_release(&lines);
		if (ursa_sleep(SEC(1)) < 0) {
			/* except asyncio.CancelledError: clean up, then leave */
			printf("Task was cancelled\n");
			return NULL;
		}
	}
	return NULL;
}

/* Let it run, then cancel it.  The seed lets it run for 3 seconds, which is
 * three lines; we wait for the three lines themselves.  (A wait of 3 seconds
 * would race the fourth line, in asyncio too, and on a loaded machine a
 * timed wait can land anywhere near it.) */
static int run_then_cancel(ursa_fn fn)
{
	struct ursa_task *t;

	if (ursa_spawn(&t, fn, NULL))
		return -1;
	for (int i = 0; i < 3; i++)
		if (ursa_sem_acquire(&lines) < 0)
			return -1;
	/* task.cancel(); await task */
	return ursa_cancel_and_join(t, NULL);
}

static void *main_task(void *arg)
{
	(void)arg;
	if (run_then_cancel(background_task) != -ECANCELED)
		return (void *)1;
	if (run_then_cancel(long_running_task) == -ECANCELED)
		printf("Task cancelled successfully\n");
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
