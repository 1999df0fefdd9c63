/* SPDX-License-Identifier: MIT */
/*
 * Periodic tasks (the seeds' periodic_task A, B, C every 1, 2, 3 seconds).
 * struct ursa_ticker keeps a fixed grid, so the period does not drift by
 * the time the work takes.  The seed runs forever; here a deadline scope
 * around the gather stops all three after 3.5 seconds (it cancels them).
 * At 2 and at 3 seconds two tasks tick together, so the test compares this
 * output as a set.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct periodic {
	const char *name;
	double interval;
};

static void *periodic_task(void *arg)
{
	struct periodic *p = arg;
	struct ursa_ticker tk;

	int tick = 0, n;

	ursa_ticker_init(&tk, SEC(p->interval));
	/* The seed prints datetime.now(); we print the tick's place on the grid
	 * (seconds since the start), which is exact.  A task that was held up
	 * past a tick is told how many it missed; it reports them too. */
	printf("%s: t=0\n", p->name);
	while ((n = ursa_ticker_wait(&tk)) > 0)
		while (n--)
			printf("%s: t=%.0f\n", p->name, ++tick * p->interval);
	return NULL; /* cancelled */
}

static void *main_task(void *arg)
{
	struct periodic p[3] = {{"Task A", 1}, {"Task B", 2}, {"Task C", 3}};
	struct ursa_task *t[3];
	struct ursa_scope s;
	uint64_t t0 = ursa_now();

	(void)arg;
	for (int i = 0; i < 3; i++)
		if (ursa_spawn(&t[i], periodic_task, &p[i]))
			return (void *)1;
	ursa_scope_enter(&s, t0 + SEC(3.5));
	(void)!ursa_gather(t, 3, 0, NULL); /* the deadline cancels and releases them */
	printf("stopped: %s\n", ursa_scope_exit(&s) == -ETIMEDOUT ? "deadline" : "?");
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
