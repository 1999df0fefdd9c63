/* SPDX-License-Identifier: MIT */
/*
 * Blocking code from tasks: asyncio.to_thread and loop.run_in_executor
 * (the seeds' blocking_io, and isort.check_file wrapped in an async def).
 * A blocking call inside a task stalls its whole core, like time.sleep in a
 * coroutine; run it on the blocking pool instead:
 *   - ursa_blocking(fn, arg, &result): to_thread: park only this task
 *     until fn has run on a pool thread;
 *   - ursa_blocking_submit(&future, fn, arg): run_in_executor: initialises
 *     the future and returns at once; await it later (so several can run
 *     side by side);
 *   - for an executor of your own, its threads complete a future (future.c).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))
#define USEC(s) ((useconds_t)((s) * 50e3))

static void *blocking_io(void *arg)
{
	(void)arg;
	usleep(USEC(2)); /* time.sleep(2): a synchronous, blocking call */
	return "Result";
}

/* A synchronous library call (the seed's isort.check_file). */
static void *check_file(void *arg)
{
	const char *name = arg;

	usleep(USEC(1));
	return (void *)(strstr(name, ".py") ? "sorted" : "skipped");
}

static void *ticker(void *arg)
{
	int *ticks = arg;

	/* Keeps running while the blocking work happens elsewhere. */
	while (ursa_sleep(SEC(0.25)) == 0)
		(*ticks)++;
	return NULL;
}

static void *main_task(void *arg)
{
	const char *files[3] = {"a.py", "b.py", "notes.txt"};
	struct ursa_future futures[3];
	struct ursa_task *tick;
	void *result;
	int ticks = 0;

	(void)arg;
	if (ursa_spawn(&tick, ticker, &ticks))
		return (void *)1;

	/* result = await asyncio.to_thread(blocking_io) */
	if (ursa_blocking(blocking_io, NULL, &result) == 0)
		printf("%s\n", (char *)result);
	printf("the loop kept running: %s\n", ticks > 0 ? "yes" : "no");

	/* result = await loop.run_in_executor(None, blocking_io) */
	struct ursa_future f; /* ursa_blocking_submit initialises it */
	if (ursa_blocking_submit(&f, blocking_io, NULL) == 0 && ursa_future_wait(&f, &result) == 0)
		printf("%s\n", (char *)result);
	ursa_future_fini(&f);

	/* Three checks submitted at once: the pool runs them on its threads. */
	for (int i = 0; i < 3; i++)
		if (ursa_blocking_submit(&futures[i], check_file, (void *)files[i]))
			return (void *)1;
	for (int i = 0; i < 3; i++) {
		if (ursa_future_wait(&futures[i], &result) == 0)
			printf("%s: %s\n", files[i], (char *)result);
		ursa_future_fini(&futures[i]);
	}

	ursa_cancel_and_join(tick, NULL);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
