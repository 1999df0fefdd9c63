/* SPDX-License-Identifier: MIT */
/*
 * Beyond the seeds: waiting on several queues at once (Go's select; in
 * asyncio one would wait() on several get() tasks).  ursa_queue_select
 * completes exactly one arm and returns its index.  A closed queue's arm
 * completes with res == -EPIPE; disabling it (q = NULL) is how a merge loop
 * drops a finished stream.  The two streams' items interleave by time, so
 * the test compares this output as a set.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct stream {
	struct ursa_queue *q;
	const char *name;
	int count;
	double every;
};

static void *produce(void *arg)
{
	struct stream *s = arg;

	for (intptr_t i = 1; i <= s->count; i++)
		if (ursa_sleep(SEC(s->every)) < 0 || ursa_queue_put(s->q, (void *)i) < 0)
			break;
	ursa_queue_close(s->q);
	return NULL;
}

static void *main_task(void *arg)
{
	struct stream s[2] = {{NULL, "fast", 4, 1}, {NULL, "slow", 2, 2.5}};
	struct ursa_queue_sel arms[2];
	struct ursa_task *t[2];
	int open = 2;

	(void)arg;
	for (int i = 0; i < 2; i++) {
		if (ursa_queue_create(&s[i].q, 1, 0) || ursa_spawn(&t[i], produce, &s[i]))
			return (void *)1;
		arms[i] = (struct ursa_queue_sel){.q = s[i].q, .op = URSA_QUEUE_SEL_GET};
	}
	while (open) {
		int i = ursa_queue_select(arms, 2);

		if (i < 0)
			return (void *)1;
		if (arms[i].res == -EPIPE) {
			printf("%s: closed\n", s[i].name);
			arms[i].q = NULL;
			open--;
		} else {
			printf("%s: %ld\n", s[i].name, (long)(intptr_t)arms[i].item);
		}
	}
	/* Whatever gather returns, both producers have ended and been released. */
	int rc = ursa_gather(t, 2, 0, NULL);
	for (int i = 0; i < 2; i++)
		ursa_queue_destroy(s[i].q);
	return rc ? (void *)1 : NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
