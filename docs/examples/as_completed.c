/* SPDX-License-Identifier: MIT */
/*
 * asyncio.as_completed (the seeds' fetch with delays 3, 1, 2): results in
 * the order the tasks finish.  ursa_as_completed_next returns the index of
 * the next task to end (waiting if need be); joining it then does not wait.
 */
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
	struct job jobs[3] = {{.url = "url1", .delay = 3},
	                      {.url = "url2", .delay = 1},
	                      {.url = "url3", .delay = 2}};
	struct ursa_task *tasks[3];
	struct ursa_as_completed ac;
	int i;

	(void)arg;
	for (int k = 0; k < 3; k++)
		if (ursa_spawn(&tasks[k], fetch, &jobs[k]))
			return (void *)1;
	if (ursa_as_completed_init(&ac, tasks, 3))
		return (void *)1;
	while ((i = ursa_as_completed_next(&ac)) >= 0) {
		void *result;

		if (ursa_join(tasks[i], &result) == 0)
			printf("%s\n", (char *)result); /* url2, url3, url1 */
	}
	ursa_as_completed_fini(&ac);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
