/* SPDX-License-Identifier: MIT */
/*
 * The seeds' event-loop timeline: three tasks interleave their sleeps on
 * one core (one worker is one event loop).  At 1.0 s and 2.0 s two tasks
 * wake at the same moment; which prints first is up to the timers, so the
 * test compares this output as a set.
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static void *task_one(void *arg)
{
	(void)arg;
	printf("Task 1: Start\n");
	if (ursa_sleep(SEC(1)) < 0)
		return NULL;
	printf("Task 1: Resumed after 1 second\n");
	if (ursa_sleep(SEC(1)) < 0)
		return NULL;
	printf("Task 1: Done\n");
	return NULL;
}

static void *task_two(void *arg)
{
	(void)arg;
	printf("Task 2: Start\n");
	if (ursa_sleep(SEC(2)) < 0)
		return NULL;
	printf("Task 2: Resumed after 2 seconds\n");
	printf("Task 2: Done\n");
	return NULL;
}

static void *task_three(void *arg)
{
	(void)arg;
	printf("Task 3: Start\n");
	if (ursa_sleep(SEC(0.5)) < 0)
		return NULL;
	printf("Task 3: Resumed after 0.5 seconds\n");
	if (ursa_sleep(SEC(0.5)) < 0)
		return NULL;
	printf("Task 3: Done\n");
	return NULL;
}

static void *main_task(void *arg)
{
	ursa_fn fns[3] = {task_one, task_two, task_three};
	struct ursa_task *t[3];

	(void)arg;
	for (int i = 0; i < 3; i++)
		if (ursa_spawn(&t[i], fns[i], NULL))
			return (void *)1;
	return ursa_gather(t, 3, 0, NULL) ? (void *)1 : NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
