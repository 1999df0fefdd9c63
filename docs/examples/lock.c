/* SPDX-License-Identifier: MIT */
/*
 * asyncio.Lock (the seeds' shared counter and workers A, B, C).
 * struct ursa_mutex is caller-allocated with URSA_MUTEX_INIT; `async with
 * lock:` is lock ... unlock.  Waiters are served in arrival order, and the
 * mutex works the same between tasks on different cores.
 */
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

static struct ursa_mutex lock = URSA_MUTEX_INIT;
static int counter;

static void *increment(void *arg)
{
	(void)arg;
	if (ursa_mutex_lock(&lock) < 0)
		return NULL; /* cancelled: not holding it */
	int temp = counter;  /* critical section */
	if (ursa_sleep(SEC(0.01)) == 0) /* simulate work, holding the lock */
		counter = temp + 1;
	ursa_mutex_unlock(&lock); /* on every path, as `async with` does */
	return NULL;
}

static void *worker(void *arg)
{
	const char *name = arg;

	if (ursa_mutex_lock(&lock) < 0)
		return NULL;
	printf("%s acquired\n", name);
	if (ursa_sleep(SEC(1)) == 0)
		printf("%s released\n", name);
	ursa_mutex_unlock(&lock);
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *t[10];
	const char *names[3] = {"A", "B", "C"};

	(void)arg;
	for (int i = 0; i < 10; i++)
		if (ursa_spawn(&t[i], increment, NULL))
			return (void *)1;
	if (ursa_gather(t, 10, 0, NULL))
		return (void *)1;
	printf("Counter: %d\n", counter); /* 10: no update was lost */

	for (int i = 0; i < 3; i++)
		if (ursa_spawn(&t[i], worker, (void *)names[i]))
			return (void *)1;
	return ursa_gather(t, 3, 0, NULL) ? (void *)1 : NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
