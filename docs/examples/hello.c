/* SPDX-License-Identifier: MIT */
/*
 * asyncio.run and asyncio.sleep: the seeds' first programs (say_hello,
 * delayed_print, a task that starts, sleeps and ends).  A coroutine is a
 * plain C function run as a task; `await asyncio.sleep(s)` is ursa_sleep.
 */
#include <stdio.h>
#include <ursa.h>

/* The seeds' seconds, 20 times shorter (50 ms) so the test suite stays fast. */
#define SEC(s) URSA_MS(50 * (s))

/* A cancelled `await asyncio.sleep()` leaves the coroutine: here, a wait
 * that fails returns its error, and the caller passes it on. */
static int say_hello(void)
{
	int rc;

	printf("Hello\n");
	rc = ursa_sleep(SEC(1)); /* parks this task; the core runs others meanwhile */
	if (rc < 0)
		return rc;
	printf("World\n");
	return 0;
}

static int delayed_print(double delay, const char *message)
{
	int rc = ursa_sleep(SEC(delay));

	if (rc < 0)
		return rc;
	printf("%s\n", message);
	return 0;
}

static void *main_task(void *arg)
{
	(void)arg;
	if (say_hello() < 0 || delayed_print(2, "Hello after 2 seconds") < 0)
		return NULL;
	printf("Start\n");
	if (ursa_sleep(SEC(2)) < 0)
		return NULL;
	printf("End\n");
	return NULL;
}

int main(void)
{
	/* asyncio.run(main()): start the runtime, run main_task, return when it
	 * returns.  One core here, like asyncio's one thread. */
	struct ursa_opts opts = {.cores = 1};

	return ursa_run(main_task, NULL, &opts, NULL) == 0 ? 0 : 1;
}
