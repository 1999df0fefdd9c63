/* SPDX-License-Identifier: MIT */
/*
 * `async for` over an async iterator class (the seeds' AsyncCounter and
 * AsyncRange).  In C the class is a struct and __anext__ a function that
 * may block the fiber; "StopAsyncIteration" is a 0 return.  Because fibers
 * have stacks, nothing else is needed: the loop is an ordinary while loop.
 */
#include <stdbool.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct async_range {
	int current, end;
};

/* __anext__: 1 and *value, 0 at the end, or -errno (cancelled, timed out). */
static int async_range_next(struct async_range *r, int *value)
{
	int rc;

	if (r->current >= r->end)
		return 0; /* StopAsyncIteration */
	rc = ursa_sleep(SEC(0.1)); /* an async operation */
	if (rc < 0)
		return rc;
	*value = r->current++;
	return 1;
}

static void *main_task(void *arg)
{
	struct async_range counter = {0, 5}; /* AsyncCounter(5): 1 .. 5 */
	struct async_range range = {0, 5};   /* AsyncRange(0, 5): 0 .. 4 */
	int n;

	(void)arg;
	while (async_range_next(&counter, &n) > 0)
		printf("%d\n", n + 1);
	while (async_range_next(&range, &n) > 0)
		printf("%d\n", n);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};

	return ursa_run(main_task, NULL, &opts, NULL) == 0 ? 0 : 1;
}
