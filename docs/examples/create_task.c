/* SPDX-License-Identifier: MIT */
/*
 * asyncio.create_task: ursa_spawn schedules the task and returns at once; it
 * starts when the caller next waits (here, in ursa_join), exactly as a
 * created task starts at the caller's next await.  `await task` is
 * ursa_join, which hands back the task's return value.
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct job {
	const char *name;
	double seconds;
};

static void *task(void *arg)
{
	struct job *j = arg;

	printf("%s starting\n", j->name);
	if (ursa_sleep(SEC(j->seconds)) < 0)
		return NULL; /* cancelled */
	printf("%s done\n", j->name);
	return (void *)j->name;
}

static void *main_task(void *arg)
{
	struct job a = {"A", 2}, b = {"B", 1};
	struct ursa_task *task1, *task2;
	void *result1, *result2;

	(void)arg;
	if (ursa_spawn(&task1, task, &a) || ursa_spawn(&task2, task, &b))
		return (void *)1;
	printf("Tasks created\n"); /* neither has started yet */
	if (ursa_join(task1, &result1) || ursa_join(task2, &result2))
		return (void *)1;
	printf("Results: %s, %s\n", (char *)result1, (char *)result2);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
