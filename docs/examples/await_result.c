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

static int fetch_data(struct data *d)
{
	int rc;

	printf("Fetching data...\n");
	rc = ursa_sleep(SEC(2)); /* simulate I/O: other tasks run meanwhile */
	if (rc < 0)
		return rc;
	*d = (struct data){"result", "data loaded"};
	return 0;
}

static void *main_task(void *arg)
{
	struct data d;

	(void)arg;
	if (fetch_data(&d) < 0)
		return (void *)1;
	printf("Got: {'%s': '%s'}\n", d.key, d.value);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};

	return ursa_run(main_task, NULL, &opts, NULL) == 0 ? 0 : 1;
}
