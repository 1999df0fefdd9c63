/* SPDX-License-Identifier: MIT */
/*
 * asyncio.gather: run tasks concurrently and collect their results in
 * order (the seeds' task_1..task_3, fetch(url, delay) and download_file).
 * ursa_spawn is create_task; ursa_gather waits for every task, releases it,
 * and fills one struct ursa_outcome per task, in the order given.
 */
#include <stdio.h>
#include <string.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct job {
	const char *name;
	double delay;
	char result[64];
};

/* task_1 .. task_3: sleep, then return "Task N complete". */
static void *task_n(void *arg)
{
	struct job *j = arg;

	if (ursa_sleep(SEC(j->delay)) < 0)
		return NULL; /* cancelled: the outcome says so */
	return (void *)j->name;
}

static void *fetch(void *arg)
{
	struct job *j = arg;

	if (ursa_sleep(SEC(j->delay)) < 0)
		return NULL;
	snprintf(j->result, sizeof(j->result), "%s data", j->name);
	return j->result;
}

static void *download_file(void *arg)
{
	struct job *j = arg;

	printf("Downloading %s...\n", j->name);
	if (ursa_sleep(SEC(j->delay)) < 0) /* simulate the download */
		return NULL;
	snprintf(j->result, sizeof(j->result), "file%c.dat", j->name[strlen(j->name) - 1]);
	printf("Saved to %s\n", j->result);
	return j->result;
}

/* Start one task per job, gather them, print the results as a list. */
static int run_all(ursa_fn fn, struct job *jobs, int n, const char *label)
{
	struct ursa_task *tasks[8];
	struct ursa_outcome out[8];
	int rc;

	for (int i = 0; i < n; i++)
		if (ursa_spawn(&tasks[i], fn, &jobs[i])) {
			while (i--)
				ursa_cancel_and_join(tasks[i], NULL); /* no handle left behind */
			return -1;
		}
	rc = ursa_gather(tasks, (size_t)n, 0, out); /* how many did not succeed */
	if (rc != 0)
		return rc < 0 ? rc : -1;
	printf("%s[", label);
	for (int i = 0; i < n; i++)
		printf("%s'%s'", i ? ", " : "", (const char *)out[i].result);
	printf("]\n");
	return 0;
}

static void *main_task(void *arg)
{
	struct job tasks[3] = {{.name = "Task 1 complete", .delay = 1},
	                       {.name = "Task 2 complete", .delay = 2},
	                       {.name = "Task 3 complete", .delay = 1.5}};
	struct job urls[3] = {{.name = "url1", .delay = 1},
	                      {.name = "url2", .delay = 2},
	                      {.name = "url3", .delay = 1}};
	struct job files[3] = {{.name = "https://example.com/file1", .delay = 2},
	                       {.name = "https://example.com/file2", .delay = 2},
	                       {.name = "https://example.com/file3", .delay = 2}};
	uint64_t t0 = ursa_now();

	(void)arg;
	if (run_all(task_n, tasks, 3, "") || run_all(fetch, urls, 3, "") ||
	    run_all(download_file, files, 3, "Downloaded: "))
		return (void *)1;
	/* 2 + 2 + 2 seconds, not 4.5 + 4 + 6: each gather ran its tasks at once.
	 * (Printed as whichever of the two the time is nearer to, so that the
	 * output does not depend on the machine's load.) */
	double s = (double)(ursa_now() - t0) / (double)SEC(1);
	printf("took about %s seconds\n", s < 10.25 ? "6" : "14.5");
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
