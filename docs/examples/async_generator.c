/* SPDX-License-Identifier: MIT */
/*
 * Async generators and `async for` (the seeds' async_range and
 * five_random_numbers).  The generator body runs as its own task and hands
 * each value over with ursa_gen_yield; the consumer pulls with ursa_gen_next
 * (1: a value, 0: the end).  Like an async generator it runs only when asked
 * for the next value.  Breaking out early and calling ursa_gen_destroy is
 * aclose(): the body's pending yield returns -ECANCELED and it cleans up.
 */
#include <stdint.h>
#include <stdio.h>
#include <ursa.h>

#define SEC(s) URSA_MS(50 * (s))

struct range {
	intptr_t start, end;
};

static int async_range(struct ursa_gen *g, void *arg)
{
	struct range *r = arg;

	for (intptr_t i = r->start; i < r->end; i++) {
		if (ursa_sleep(SEC(0.1)) < 0)
			return 0;
		if (ursa_gen_yield(g, (void *)i) < 0)
			break; /* the consumer closed us */
	}
	return 0;
}

/* random.random() with a fixed seed, so the output can be checked. */
static double next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (double)(*s >> 11) / 9007199254740992.0;
}

static int five_random_numbers(struct ursa_gen *g, void *arg)
{
	uint64_t *seed = arg;

	for (int i = 0; i < 5; i++) {
		static double value; /* yielded by address: lives until the next request */

		if (ursa_sleep(SEC(1)) < 0)
			return 0;
		value = next_random(seed);
		if (ursa_gen_yield(g, &value) < 0)
			break;
	}
	return 0;
}

static int endless(struct ursa_gen *g, void *arg)
{
	(void)arg;
	for (intptr_t i = 0;; i++) {
		if (ursa_gen_yield(g, (void *)i) < 0) {
			printf("endless: closed at value %ld, cleaning up\n", (long)i);
			return 0;
		}
	}
}

static void *main_task(void *arg)
{
	struct range r = {0, 5};
	uint64_t seed = 0x9e3779b97f4a7c15u;
	struct ursa_gen *g;
	void *v;

	(void)arg;
	/* async for num in async_range(0, 5): print(num) */
	if (ursa_gen_create(&g, async_range, &r))
		return (void *)1;
	while (ursa_gen_next(g, &v) > 0)
		printf("%ld\n", (long)(intptr_t)v);
	ursa_gen_destroy(g);

	/* async for number in five_random_numbers(): print(number) */
	if (ursa_gen_create(&g, five_random_numbers, &seed))
		return (void *)1;
	while (ursa_gen_next(g, &v) > 0)
		printf("%.6f\n", *(double *)v);
	ursa_gen_destroy(g);

	/* Leaving an async for early: the generator is closed, not leaked. */
	if (ursa_gen_create(&g, endless, NULL))
		return (void *)1;
	while (ursa_gen_next(g, &v) > 0 && (intptr_t)v < 2)
		printf("endless gave %ld\n", (long)(intptr_t)v);
	ursa_gen_destroy(g);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
