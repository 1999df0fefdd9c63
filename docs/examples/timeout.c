/* SPDX-License-Identifier: MIT */
/*
 * `async with asyncio.timeout(s):` and asyncio.timeout_at (the seeds'
 * "Timeout Context Manager").  A deadline scope bounds every blocking call
 * between ursa_scope_enter and ursa_scope_exit: they return -ETIMEDOUT once
 * it passes, and ursa_scope_exit says whether it fired.  timeout(delay) is
 * ursa_scope_enter_after(&s, delay); timeout_at(when) is
 * ursa_scope_enter(&s, when), with `when` absolute.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static const char *slow_operation(void)
{
	if (ursa_sleep(SEC(10)) < 0)
		return NULL;
	return "Done";
}

static void *main_task(void *arg)
{
	struct ursa_scope s;
	const char *r;
	int rc;

	(void)arg;
	/* async with asyncio.timeout(5.0): await asyncio.sleep(10) */
	ursa_scope_enter_after(&s, SEC(5));
	rc = ursa_sleep(SEC(10)); /* -ETIMEDOUT once the deadline passes */
	if (ursa_scope_exit(&s) == -ETIMEDOUT)
		printf("Timed out!\n");

	/* async with asyncio.timeout_at(loop.time() + 2): await slow_operation() */
	ursa_scope_enter(&s, ursa_now() + SEC(2));
	r = slow_operation();
	if (ursa_scope_exit(&s) == -ETIMEDOUT)
		printf("TimeoutError: slow_operation did not finish in 2 seconds\n");
	else
		printf("%s\n", r);

	/* A deadline that does not fire changes nothing. */
	ursa_scope_enter_after(&s, SEC(5));
	rc = ursa_sleep(SEC(1));
	printf("inside the deadline: %s\n", ursa_scope_exit(&s) == 0 && rc == 0 ? "fine" : "fired");
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};

	return ursa_run(main_task, NULL, &opts, NULL) == 0 ? 0 : 1;
}
