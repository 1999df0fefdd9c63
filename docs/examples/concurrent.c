/* SPDX-License-Identifier: MIT */
/*
 * Sequential versus concurrent (the seeds' "Synchronous vs Asynchronous",
 * "Not Running Independent Tasks Together" and the Task A / Task B
 * notebook): three independent two-second tasks take six seconds one after
 * the other and two seconds side by side.
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
	if (ursa_sleep(SEC(j->seconds)) < 0) /* non-blocking: the core runs the others */
		return arg;                  /* cancelled */
	printf("%s done\n", j->name);
	return NULL;
}

/* Which of two expected durations (in seed seconds) the time since t0 is
 * nearer to: the output then does not depend on how loaded the machine is. */
static int nearer(uint64_t t0, int a, int b)
{
	double s = (double)(ursa_now() - t0) / (double)SEC(1);

	return s - a < b - s ? a : b;
}

static int gather_jobs(struct job *jobs, int n)
{
	struct ursa_task *t[4];

	for (int i = 0; i < n; i++)
		if (ursa_spawn(&t[i], task, &jobs[i]))
			return -1;
	return ursa_gather(t, (size_t)n, 0, NULL);
}

static void *main_task(void *arg)
{
	struct job jobs[3] = {{"Task1", 2}, {"Task2", 2}, {"Task3", 2}};
	struct job ab[2] = {{"Task1", 2}, {"Task2", 1}};
	uint64_t t0 = ursa_now();

	(void)arg;
	for (int i = 0; i < 3; i++) /* await each in turn: sequential */
		task(&jobs[i]);
	printf("sequential: about %d seconds\n", nearer(t0, 2, 6));

	t0 = ursa_now();
	if (gather_jobs(jobs, 3))
		return (void *)1;
	printf("concurrent: about %d seconds\n", nearer(t0, 2, 6));

	if (gather_jobs(ab, 2))
		return (void *)1;
	printf("All tasks completed\n");
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
