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

#define SEC(s) ((uint64_t)((s) * 50e6))

/* The tasks sleep to the next whole second (ursa_sleep_until) rather than
 * for one second, so that their lines stay on the second however late a
 * loaded machine wakes them; otherwise it is the seed's loop. */
static void *background_task(void *arg)
{
	uint64_t start = ursa_now();

	(void)arg;
	for (int i = 1;; i++) {
		printf("Background task running...\n");
		if (ursa_sleep_until(start + SEC(i)) == -ECANCELED)
			return NULL; /* not re-raised: the cancellation is still the outcome */
	}
}

static void *long_running_task(void *arg)
{
	uint64_t start = ursa_now();

	(void)arg;
	for (int i = 0; i < 10; i++) {
		printf("Working... %d\n", i);
		if (ursa_sleep_until(start + SEC(i + 1)) == -ECANCELED) {
			/* except asyncio.CancelledError: clean up, then leave */
			printf("Task was cancelled\n");
			return NULL;
		}
	}
	return NULL;
}

/* Let it run, then cancel it.  The seed waits 3 seconds; we wait 2.5: at
 * exactly 3 the task's fourth line and the cancellation are due together,
 * and either may come first (in asyncio too). */
static int run_then_cancel(ursa_fn fn)
{
	struct ursa_task *t;
	uint64_t start = ursa_now();

	if (ursa_spawn(&t, fn, NULL))
		return -1;
	ursa_sleep_until(start + SEC(2.5));
	ursa_cancel(t);         /* task.cancel() */
	return ursa_join(t, NULL); /* await task */
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
