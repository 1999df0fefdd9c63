/* SPDX-License-Identifier: MIT */
/*
 * asyncio.run returns the coroutine's result to synchronous code, and
 * asyncio.get_running_loop() shows the loop: here ursa_run hands main's
 * return value back, and ursa_core()/ursa_ncores() describe where a task
 * runs (a core is ursa's event loop; there is one per worker thread).
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static void *my_coroutine(void *arg)
{
	(void)arg;
	return "Hello, Async!";
}

static void *async_func(void *arg)
{
	(void)arg;
	if (ursa_sleep(SEC(1)) < 0)
		return NULL;
	return "Result";
}

static void *show_loop(void *arg)
{
	(void)arg;
	printf("Main coroutine\n");
	printf("Current loop: core %u of %u\n", ursa_core(), ursa_ncores());
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *result;

	/* Calling async from sync: each ursa_run is a whole asyncio.run(). */
	if (ursa_run(my_coroutine, NULL, &opts, &result))
		return 1;
	printf("%s\n", (const char *)result);
	if (ursa_run(async_func, NULL, &opts, &result))
		return 1;
	printf("%s\n", (const char *)result);
	return ursa_run(show_loop, NULL, &opts, NULL) == 0 ? 0 : 1;
}
