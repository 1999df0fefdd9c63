/* SPDX-License-Identifier: MIT */
/*
 * Exceptions (the seeds' risky_operation and risky_task).  A task "raises"
 * by ending with ursa_task_fail(-errno, message): its outcome is then an
 * error instead of a result.  Awaiting it (ursa_join) returns that error;
 * ursa_join_outcome also hands over the message.  A plain function that
 * fails just returns -errno, the C way.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

/* raise ValueError("Something went wrong"), as a plain call. */
static int risky_operation(void)
{
	int rc = ursa_sleep(SEC(1));

	return rc < 0 ? rc : -EINVAL;
}

/* The same in a task: the error and a message become its outcome. */
static void *risky_task(void *arg)
{
	(void)arg;
	if (ursa_sleep(SEC(1)) < 0)
		return NULL;
	return ursa_task_fail(-EINVAL, "Error!");
}

static void *main_task(void *arg)
{
	struct ursa_outcome out;
	struct ursa_task *task;
	int rc;

	(void)arg;
	/* try: await risky_operation() except ValueError as e: ... */
	rc = risky_operation();
	if (rc == -EINVAL)
		printf("Caught error: Something went wrong (%s)\n", ursa_strerror(rc));

	/* task = create_task(risky_task()); try: await task except ... */
	if (ursa_spawn(&task, risky_task, NULL))
		return (void *)1;
	if (ursa_join_outcome(task, &out) == 0 && out.err == -EINVAL)
		printf("Exception caught: %s\n", out.msg);

	/* ursa_join reports the error too (without the message). */
	if (ursa_spawn(&task, risky_task, NULL))
		return (void *)1;
	printf("join: %s\n", ursa_strerror(ursa_join(task, NULL)));
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
