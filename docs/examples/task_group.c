/* SPDX-License-Identifier: MIT */
/*
 * asyncio.TaskGroup (Trio's nursery), beyond the seeds: tasks spawned into
 * a group cannot outlive it.  Leaving the group waits for every child; the
 * first child to fail cancels the body and its siblings, and the group
 * reports that error.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct fetch {
	const char *url;
	double delay;
	int fails;
};

static void *fetch(void *arg)
{
	struct fetch *f = arg;

	if (ursa_sleep(SEC(f->delay)) == -ECANCELED) {
		printf("%s: cancelled\n", f->url);
		return NULL;
	}
	if (f->fails)
		return ursa_task_fail(-ECONNREFUSED, "%s refused the connection", f->url);
	printf("%s: fetched\n", f->url);
	return NULL;
}

static int crawl(struct fetch *urls, int n)
{
	struct ursa_group g;
	struct ursa_outcome first;
	int rc;

	ursa_group_enter(&g); /* async with asyncio.TaskGroup() as tg: */
	for (int i = 0; i < n; i++)
		if (ursa_group_spawn(&g, fetch, &urls[i])) /* tg.create_task(...) */
			break;
	rc = ursa_group_exit(&g, &first); /* waits for all of them */
	if (rc > 0) /* how many failed; the first failure is in `first` */
		printf("group failed: %s\n", first.msg[0] ? first.msg : ursa_strerror(first.err));
	else if (rc < 0) /* cancelled, or timed out */
		printf("group stopped: %s\n", ursa_strerror(rc));
	return rc;
}

static void *main_task(void *arg)
{
	struct fetch ok[3] = {{.url = "a.example", .delay = 1},
	                      {.url = "b.example", .delay = 3},
	                      {.url = "c.example", .delay = 2}};
	struct fetch bad[3] = {{.url = "a.example", .delay = 2},
	                       {.url = "b.example", .delay = 0.5, .fails = 1},
	                       {.url = "c.example", .delay = 3}};

	(void)arg;
	if (crawl(ok, 3) == 0)
		printf("all fetched\n");
	crawl(bad, 3);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
