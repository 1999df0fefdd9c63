/* SPDX-License-Identifier: MIT */
/*
 * `async with` (the seeds' AsyncResource and @asynccontextmanager).  C has
 * no destructors, so the pattern is: enter; if that failed, return; run the
 * body; then exit on every path (success, error, cancellation) — one
 * cleanup label.  Cleanup that must wait (a final write, a goodbye message)
 * runs in a shielded scope with a short deadline of its own: a cancelled
 * task's blocking calls all return -ECANCELED, a shielded scope's do not.
 */
#include <errno.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct resource {
	const char *name;
	int open;
};

static int resource_enter(struct resource *r) /* __aenter__ */
{
	int rc;

	printf("Acquiring %s...\n", r->name);
	rc = ursa_sleep(SEC(0.5));
	if (rc < 0)
		return rc;
	r->open = 1;
	return 0;
}

static void resource_exit(struct resource *r) /* __aexit__ */
{
	/* Runs even in a cancelled task, bounded by its own deadline. */
	URSA_SHIELDED(SEC(2)) {
		printf("Releasing %s...\n", r->name);
		if (ursa_sleep(SEC(0.5)) < 0) /* only the shield's own deadline */
			printf("Releasing %s timed out\n", r->name);
		r->open = 0;
	}
}

static int use(struct resource *r, double seconds)
{
	printf("Using %s\n", r->name);
	return ursa_sleep(SEC(seconds));
}

/* async with AsyncResource() as resource: await resource.use() */
static int with_resource(const char *name, double work)
{
	struct resource r = {name, 0};
	int rc = resource_enter(&r);

	if (rc < 0)
		return rc; /* nothing to release */
	rc = use(&r, work);
	resource_exit(&r); /* on every path out of the body */
	return rc;
}

static void *cancelled_user(void *arg)
{
	int rc = with_resource(arg, 100);

	printf("body ended: %s\n", rc == -ECANCELED ? "cancelled" : "done");
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *t;

	(void)arg;
	with_resource("resource", 0);
	/* The same with a cancellation in the middle of the body. */
	if (ursa_spawn(&t, cancelled_user, "connection"))
		return (void *)1;
	if (ursa_sleep(SEC(1)) < 0)
		return (void *)1;
	if (ursa_cancel_and_join(t, NULL) == -ECANCELED)
		printf("cancelled, and the resource was released\n");
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
