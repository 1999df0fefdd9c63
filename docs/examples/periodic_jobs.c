/* SPDX-License-Identifier: MIT */
/*
 * Periodic jobs (the seeds' "run this every N seconds, skip a run if the
 * last one is still going"): a scheduler task ticks on a struct ursa_ticker
 * and starts each run as its own task, so a slow run never delays the
 * clock; at a tick where the last run has not finished, it skips.  Runs
 * take 0.4, 2.4, 0.4, 1.4 and 0.4 seconds; the period is one second.
 */
#include <stdbool.h>
#include <stdio.h>
#include <ursa.h>

/* A "second" of this demo is 250 ms: each run ends 100 or 150 ms from the
 * nearest tick, so the output stays the same on a loaded machine (at 100 ms
 * a run ended 60 ms before a tick, and a sanitizer build under load once
 * woke later than that). */
#define SEC(s) URSA_MS(250 * (s))

struct job {
	int run;        /* the run in progress, or the last one */
	bool running;
};

static const double durations[] = {0.4, 2.4, 0.4, 1.4, 0.4};

static void *job_run(void *arg)
{
	struct job *j = arg;
	int k = j->run;

	if (ursa_sleep(SEC(durations[k - 1])) < 0)
		return NULL; /* cancelled */
	printf("run %d done after %.1f s\n", k, durations[k - 1]);
	j->running = false;
	return NULL;
}

static void *scheduler(void *arg)
{
	struct job j = {0};
	struct ursa_task *last = NULL;
	struct ursa_ticker tk;
	int tick = 0, n = 1;

	(void)arg;
	ursa_ticker_init(&tk, SEC(1));
	while (j.run < 5) {
		/* n > 1: the scheduler itself was held up past ticks; they are
		 * skipped as well (ursa_ticker_wait counts them). */
		for (; n > 1; n--)
			printf("tick %d: missed\n", tick++);
		if (j.running) {
			printf("tick %d: run %d still going, skipped\n", tick, j.run);
		} else {
			if (last)
				(void)!ursa_join(last, NULL); /* finished: returns at once */
			j.run++;
			j.running = true;
			printf("tick %d: run %d starts\n", tick, j.run);
			if (ursa_spawn(&last, job_run, &j))
				return (void *)1;
		}
		tick++;
		if ((n = ursa_ticker_wait(&tk)) < 0)
			break;
	}
	/* Stopping: the run in progress finishes first. */
	(void)!ursa_join(last, NULL);
	printf("stopped after %d runs\n", j.run);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(scheduler, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
