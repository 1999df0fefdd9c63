/* SPDX-License-Identifier: MIT */
/*
 * asyncio.Event (the seeds' waiter and setter).  ursa_event_set wakes every
 * waiter, on any core, and may be called from any thread.
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static struct ursa_event event = URSA_EVENT_INIT;

static void *waiter(void *arg)
{
	(void)arg;
	printf("Waiting for event...\n");
	if (ursa_event_wait(&event) == 0)
		printf("Event occurred!\n");
	return NULL;
}

static void *setter(void *arg)
{
	(void)arg;
	if (ursa_sleep(SEC(2)) < 0)
		return NULL;
	printf("Setting event\n");
	ursa_event_set(&event);
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *t[2];

	(void)arg;
	if (ursa_spawn(&t[0], waiter, NULL) || ursa_spawn(&t[1], setter, NULL))
		return (void *)1;
	return ursa_gather(t, 2, 0, NULL) ? (void *)1 : NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
