/* SPDX-License-Identifier: MIT */
/*
 * `result = await fetch_data()`: awaiting a coroutine is calling a function.
 * A fiber has its own stack, so a function that sleeps (or reads a socket)
 * simply returns its value when done; nothing needs to be marked async.
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct data {
	const char *key, *value;
};

static struct data fetch_data(void)
{
	printf("Fetching data...\n");
	ursa_sleep(SEC(2)); /* simulate I/O: other tasks run meanwhile */
	return (struct data){"result", "data loaded"};
}

static void *main_task(void *arg)
{
	struct data d = fetch_data();

	(void)arg;
	printf("Got: {'%s': '%s'}\n", d.key, d.value);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};

	return ursa_run(main_task, NULL, &opts, NULL) == 0 ? 0 : 1;
}
