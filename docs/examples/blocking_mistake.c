/* SPDX-License-Identifier: MIT */
/*
 * The seeds' common mistakes: a blocking call (time.sleep) inside a task
 * blocks every task of its core, so "concurrent" work runs one after the
 * other.  The fixes: ursa_sleep (a real non-blocking wait) or, for code
 * that must block, ursa_blocking.  (The stall detector, URSA_STALL_MS,
 * reports such a task with a backtrace.)
 */
#include <stdio.h>
#include <unistd.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))
#define USEC(s) ((useconds_t)((s) * 50e3))

static void *task_one(void *arg)
{
	(void)arg;
	printf("Task 1: Start\n");
	usleep(USEC(5)); /* blocks the core: task_two cannot start */
	printf("Task 2: End\n"); /* (sic: the seed's typo) */
	return NULL;
}

static void *task_two(void *arg)
{
	(void)arg;
	printf("Task 2: Start\n");
	if (ursa_sleep(SEC(2)) < 0)
		return NULL;
	printf("Task 2: Done\n");
	return NULL;
}

static void *request_blocking(void *arg)
{
	(void)arg;
	usleep(USEC(1));
	return NULL;
}

static void *request(void *arg)
{
	return ursa_sleep(SEC(1)) == 0 ? NULL : arg;
}

static void *request_on_pool(void *arg)
{
	return ursa_blocking(request_blocking, arg, NULL) == 0 ? NULL : (void *)1;
}

/* Gather three of fn; say whether that took about 1 second (side by side)
 * or about 3 (one after the other), whichever is nearer. */
static int three(ursa_fn fn)
{
	struct ursa_task *t[3];
	uint64_t t0 = ursa_now();

	for (int i = 0; i < 3; i++)
		if (ursa_spawn(&t[i], fn, NULL))
			return -1;
	if (ursa_gather(t, 3, 0, NULL) != 0)
		return -1;
	return ursa_now() - t0 < SEC(2) ? 1 : 3;
}

static void *main_task(void *arg)
{
	struct ursa_task *t[2];

	(void)arg;
	if (ursa_spawn(&t[0], task_one, NULL) || ursa_spawn(&t[1], task_two, NULL))
		return (void *)1;
	if (ursa_gather(t, 2, 0, NULL) != 0)
		return (void *)1;
	printf("blocking calls: about %d seconds\n", three(request_blocking));
	printf("ursa_sleep: about %d seconds\n", three(request));
	printf("on the blocking pool: about %d seconds\n", three(request_on_pool));
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1, .pool_threads = 4};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
