/* SPDX-License-Identifier: MIT */
/*
 * asyncio.wait(tasks, return_when=FIRST_COMPLETED) (the seeds' fetch with
 * three delays).  ursa_wait fills done[] (the done set; the others are
 * pending) and returns how many are done.  It releases nothing: the caller
 * still holds every task, cancels the pending ones and joins them all.
 */
#include <stdbool.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct job {
	const char *url;
	double delay;
	char result[32];
};

static void *fetch(void *arg)
{
	struct job *j = arg;

	if (ursa_sleep(SEC(j->delay)) < 0)
		return NULL; /* cancelled */
	snprintf(j->result, sizeof(j->result), "%s data", j->url);
	return j->result;
}

static void *main_task(void *arg)
{
	struct job jobs[3] = {{.url = "url1", .delay = 2},
	                      {.url = "url2", .delay = 1},
	                      {.url = "url3", .delay = 3}};
	struct ursa_task *tasks[3];
	bool done[3];
	int n_done;

	(void)arg;
	for (int i = 0; i < 3; i++)
		if (ursa_spawn(&tasks[i], fetch, &jobs[i]))
			return (void *)1;
	n_done = ursa_wait(tasks, 3, URSA_WAIT_FIRST_COMPLETED, URSA_FOREVER, done);
	printf("Done: %d, Pending: %d\n", n_done, 3 - n_done);
	for (int i = 0; i < 3; i++) {
		void *result;
		/* done: join it (it does not wait); pending: cancel it, and join */
		int rc = done[i] ? ursa_join(tasks[i], &result)
		                 : ursa_cancel_and_join(tasks[i], &result);

		if (rc == 0)
			printf("%s\n", (char *)result);
		else
			printf("%s: cancelled\n", jobs[i].url);
	}
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
