/* SPDX-License-Identifier: MIT */
/*
 * Beyond the seeds: asyncio.Condition, Barrier, BoundedSemaphore,
 * PriorityQueue, LifoQueue and Queue.join/task_done, a WaitGroup, and
 * asyncio.shield.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

/* ------------------------------------------------------------ Condition */

static struct ursa_mutex mu = URSA_MUTEX_INIT;
static struct ursa_cond ready_cv = URSA_COND_INIT;
static int ready;

static bool is_ready(void *arg)
{
	(void)arg;
	return ready;
}

static void *consumer(void *arg)
{
	if (ursa_mutex_lock(&mu) < 0)
		return NULL;
	/* async with cond: await cond.wait_for(lambda: ready) */
	if (ursa_cond_wait_for(&ready_cv, &mu, is_ready, NULL) == 0)
		printf("consumer %ld: ready\n", (long)(intptr_t)arg);
	ursa_mutex_unlock(&mu);
	return NULL;
}

/* -------------------------------------------------------------- Barrier */

static struct ursa_barrier barrier = URSA_BARRIER_INIT(3);
static struct ursa_waitgroup wg = URSA_WAITGROUP_INIT;

static void *party(void *arg)
{
	if (ursa_sleep(SEC(0.1 * (double)(intptr_t)arg)) == 0 &&
	    ursa_barrier_wait(&barrier) == 2) /* the last to arrive gets 2 */
		printf("barrier: all 3 arrived\n");
	ursa_waitgroup_done(&wg); /* on every path: the waiter counts on it */
	return NULL;
}

/* ---------------------------------------------------------------- queues */

static int by_priority(const void *a, const void *b)
{
	return (int)((intptr_t)a - (intptr_t)b);
}

static void drain(struct ursa_queue *q, const char *label)
{
	void *v;

	printf("%s:", label);
	while (ursa_queue_get_nowait(q, &v) == 0) {
		printf(" %ld", (long)(intptr_t)v);
		ursa_queue_task_done(q);
	}
	printf("\n");
}

/* ----------------------------------------------------------------- shield */

static void *saver(void *arg)
{
	int rc = -1;

	(void)arg;
	if (ursa_sleep(SEC(10)) != -ECANCELED) /* cancelled here ... */
		return NULL;
	/* ... but the save must finish: asyncio.shield */
	URSA_SHIELDED(SEC(5)) {
		rc = ursa_sleep(SEC(0.5));
	}
	printf("saved despite the cancellation: %s\n", rc == 0 ? "yes" : "no");
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *t[3];
	struct ursa_queue *prio, *lifo;
	struct ursa_sem bounded = URSA_SEM_BOUNDED_INIT(2);
	intptr_t items[5] = {3, 1, 4, 1, 5};

	(void)arg;
	for (intptr_t i = 0; i < 2; i++)
		if (ursa_spawn(&t[i], consumer, (void *)i))
			return (void *)1;
	if (ursa_sleep(SEC(0.1)) < 0)
		return (void *)1;
	if (ursa_mutex_lock(&mu) == 0) {
		ready = 1;
		ursa_cond_notify_all(&ready_cv);
		ursa_mutex_unlock(&mu);
	}
	if (ursa_gather(t, 2, 0, NULL) != 0)
		return (void *)1;

	ursa_waitgroup_add(&wg, 3);
	for (intptr_t i = 0; i < 3; i++) {
		if (ursa_spawn_ex(NULL, 0, party, (void *)i,
		                  &(struct ursa_spawn_opts){.flags = URSA_SPAWN_DETACHED}))
			return (void *)1;
	}
	if (ursa_waitgroup_wait(&wg) == 0)
		printf("waitgroup: all 3 done\n");

	printf("bounded semaphore, one release too many: %s\n",
	       ursa_sem_release(&bounded) == -EOVERFLOW ? "refused" : "accepted");

	if (ursa_queue_create_prio(&prio, 0, by_priority) ||
	    ursa_queue_create(&lifo, 0, URSA_QUEUE_LIFO))
		return (void *)1;
	for (int i = 0; i < 5; i++)
		if (ursa_queue_put(prio, (void *)items[i]) || ursa_queue_put(lifo, (void *)items[i]))
			return (void *)1;
	drain(prio, "PriorityQueue");
	drain(lifo, "LifoQueue");
	printf("join: %s\n", ursa_queue_join(prio) == 0 ? "every item done" : "?");
	ursa_queue_destroy(prio);
	ursa_queue_destroy(lifo);

	if (ursa_spawn(&t[0], saver, NULL))
		return (void *)1;
	if (ursa_sleep(SEC(0.1)) < 0)
		return (void *)1;
	ursa_cancel_and_join(t[0], NULL);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
