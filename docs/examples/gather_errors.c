/* SPDX-License-Identifier: MIT */
/*
 * gather(..., return_exceptions=True) (the seeds' might_fail and
 * task_that_fails).  With URSA_GATHER_ALL every outcome is collected, in
 * order, and gather returns how many tasks did not succeed.  Without it,
 * gather is fail-fast: the first error cancels the other tasks and is
 * returned.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static void *might_fail(void *arg)
{
	intptr_t n = (intptr_t)arg;

	if (n == 2)
		return ursa_task_fail(-EINVAL, "Error!");
	if (ursa_sleep(SEC(1)) < 0)
		return NULL; /* cancelled: fail-fast gather does that to us */
	return (void *)n;
}

static void *task_that_fails(void *arg)
{
	(void)arg;
	if (ursa_sleep(SEC(1)) < 0)
		return NULL;
	return ursa_task_fail(-EINVAL, "Task failed");
}

static void *task_that_succeeds(void *arg)
{
	(void)arg;
	if (ursa_sleep(SEC(1)) < 0)
		return NULL;
	return "Success";
}

static void *main_task(void *arg)
{
	struct ursa_task *t[3];
	struct ursa_outcome out[3];
	int failed;

	(void)arg;
	/* [1, ValueError('Error!'), 3] */
	for (intptr_t i = 0; i < 3; i++)
		if (ursa_spawn(&t[i], might_fail, (void *)(i + 1)))
			return (void *)1;
	failed = ursa_gather(t, 3, URSA_GATHER_ALL, out);
	printf("[");
	for (int i = 0; i < 3; i++) {
		if (out[i].err)
			printf("%sValueError('%s')", i ? ", " : "", out[i].msg);
		else
			printf("%s%ld", i ? ", " : "", (long)(intptr_t)out[i].result);
	}
	printf("]  (%d failed)\n", failed);

	/* Task i succeeded / failed, one line each. */
	if (ursa_spawn(&t[0], task_that_succeeds, NULL) ||
	    ursa_spawn(&t[1], task_that_fails, NULL) || ursa_spawn(&t[2], task_that_succeeds, NULL))
		return (void *)1;
	if (ursa_gather(t, 3, URSA_GATHER_ALL, out) < 0)
		return (void *)1;
	for (int i = 0; i < 3; i++) {
		if (out[i].err)
			printf("Task %d failed: %s\n", i, out[i].msg);
		else
			printf("Task %d succeeded: %s\n", i, (char *)out[i].result);
	}

	/* Without return_exceptions: the first error, and the rest cancelled.
	 * gather returns how many did not succeed (all three here); the
	 * error itself is in out[]. */
	if (ursa_spawn(&t[0], task_that_succeeds, NULL) || ursa_spawn(&t[1], might_fail, (void *)2) ||
	    ursa_spawn(&t[2], task_that_succeeds, NULL))
		return (void *)1;
	if (ursa_gather(t, 3, 0, out) != 3)
		return (void *)1;
	printf("fail-fast gather: %s\n", ursa_strerror(out[1].err));
	printf("the others: %s, %s\n", ursa_strerror(out[0].err), ursa_strerror(out[2].err));
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
