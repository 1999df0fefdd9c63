/* SPDX-License-Identifier: MIT */
/*
 * asyncio.Queue (the seeds' producer and consumer).  The seed ends the
 * stream with a None sentinel; ursa queues can also be closed, after which
 * getters drain what is left and then get -EPIPE: both are shown.  A
 * producer's and the consumer's lines may interleave differently from run
 * to run (they wake at nearly the same moments), so the test compares this
 * example's output as a set.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct job {
	struct ursa_queue *queue;
	int num_items;
	int use_close;
};

static char items[8][16];

static void *producer(void *arg)
{
	struct job *j = arg;

	for (int i = 0; i < j->num_items; i++) {
		if (ursa_sleep(SEC(0.1)) < 0)
			return NULL; /* cancelled */
		snprintf(items[i], sizeof(items[i]), "Item %d", i);
		if (ursa_queue_put(j->queue, items[i]) < 0)
			return NULL;
		printf("Produced: %s\n", items[i]);
	}
	if (j->use_close)
		ursa_queue_close(j->queue); /* no more items */
	else
		(void)!ursa_queue_put(j->queue, NULL); /* the None sentinel */
	return NULL;
}

static void *consumer(void *arg)
{
	struct job *j = arg;
	void *item;

	for (;;) {
		int rc = ursa_queue_get(j->queue, &item);

		if (rc == -EPIPE || (rc == 0 && item == NULL))
			break; /* closed and drained, or the sentinel */
		if (rc < 0)
			return NULL;
		printf("Consumed: %s\n", (char *)item);
		if (ursa_sleep(SEC(0.2)) < 0)
			return NULL;
	}
	printf("consumer done\n");
	return NULL;
}

static int run(int use_close)
{
	struct job j = {NULL, 5, use_close};
	struct ursa_task *t[2];
	int rc;

	if (ursa_queue_create(&j.queue, 0, 0)) /* unbounded, like Queue() */
		return -1;
	if (ursa_spawn(&t[0], producer, &j) || ursa_spawn(&t[1], consumer, &j))
		return -1;
	rc = ursa_gather(t, 2, 0, NULL);
	ursa_queue_destroy(j.queue);
	return rc;
}

static void *main_task(void *arg)
{
	(void)arg;
	return run(0) || run(1) ? (void *)1 : NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
