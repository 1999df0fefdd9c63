/* SPDX-License-Identifier: MIT */
/*
 * asyncio.Semaphore (the seeds' limited_operation, limited_task and
 * RateLimitedClient): at most three operations at a time.  Which of the
 * waiting operations starts as another finishes is the arrival order; the
 * lines of operations that finish at the same moment may interleave, so the
 * test compares this example's output as a set, and the last line checks
 * the limit itself.
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static struct ursa_sem semaphore = URSA_SEM_INIT(3); /* 3 concurrent operations */
/* One core (.cores = 1): its tasks never run at once, so a plain int is
 * safe; on several cores they run in parallel and it would need atomic_int. */
static int inside, most_inside;

static void *limited_operation(void *arg)
{
	int num = (int)(intptr_t)arg;

	if (ursa_sem_acquire(&semaphore) < 0)
		return NULL;
	if (++inside > most_inside)
		most_inside = inside;
	printf("Operation %d started\n", num);
	if (ursa_sleep(SEC(1)) == 0)
		printf("Operation %d finished\n", num);
	inside--;
	ursa_sem_release(&semaphore);
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *t[10];
	(void)arg;
	for (intptr_t i = 0; i < 10; i++)
		if (ursa_spawn(&t[i], limited_operation, (void *)i))
			return (void *)1;
	if (ursa_gather(t, 10, 0, NULL))
		return (void *)1;
	printf("at most %d at once\n", most_inside);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
