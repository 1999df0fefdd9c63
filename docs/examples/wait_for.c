/* SPDX-License-Identifier: MIT */
/*
 * asyncio.wait_for (the seeds' slow_operation with a 3- and a 2-second
 * timeout).  ursa_wait_for(task, timeout, &outcome) waits for a task; on
 * timeout it cancels the task, waits for it to finish cancelling, and
 * returns -ETIMEDOUT (asyncio.TimeoutError).  The task's own outcome is in
 * the struct, never in the return value.  A plain function call can be
 * bounded the same way without a task: see timeout.c.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static void *slow_operation(void *arg)
{
	(void)arg;
	if (ursa_sleep(SEC(10)) == -ECANCELED) /* very slow */
		printf("slow_operation: cancelled, cleaning up\n");
	return "Done";
}

static void try_with_timeout(double seconds)
{
	struct ursa_outcome o;
	struct ursa_task *t;
	int rc;

	if (ursa_spawn(&t, slow_operation, NULL))
		return;
	rc = ursa_wait_for(t, SEC(seconds), &o);
	if (rc == 0 && o.err == 0)
		printf("%s\n", (char *)o.result);
	else if (rc == -ETIMEDOUT)
		printf("Operation timed out after %.0f seconds\n", seconds);
	else
		printf("failed: %s\n", ursa_strerror(rc));
}

static void *main_task(void *arg)
{
	(void)arg;
	try_with_timeout(3);
	try_with_timeout(2);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};

	return ursa_run(main_task, NULL, &opts, NULL) == 0 ? 0 : 1;
}
