/* SPDX-License-Identifier: MIT */
/*
 * stress_crosscore: the paths where threads meet — cross-core spawn, join,
 * wake and cancel, the blocking pool, shutdown with tasks on every core —
 * hammered in a plain program (no Criterion), so it also runs under TSan,
 * where Criterion cannot start.  Exit status 0 means every check held.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ursa.h"

#define MS 1000000ull

static int failures;

static void check(int ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

static void *leaf(void *arg)
{
	ursa_yield();
	return (void *)((uintptr_t)arg + 1);
}

/* Spawn a child on the other core and join it. */
static void *hopper(void *arg)
{
	struct ursa_task *t;
	void *r = NULL;

	if (ursa_spawn_on(&t, (ursa_core() + 1) % ursa_ncores(), leaf, arg))
		return NULL;
	if (ursa_join(t, &r))
		return NULL;
	return r;
}

static void *main_hops(void *arg)
{
	uintptr_t *sum = arg;
	enum { N = 2000 };
	struct ursa_task **ts = malloc(sizeof(*ts) * N);

	for (uintptr_t i = 0; i < N; i++)
		if (ursa_spawn_on(&ts[i], (unsigned)(i % 2), hopper, (void *)i))
			return (void *)1;
	for (int i = 0; i < N; i++) {
		void *r;

		if (ursa_join(ts[i], &r))
			return (void *)2;
		*sum += (uintptr_t)r;
	}
	free(ts);
	return NULL;
}

static _Atomic int cancelled_seen;

static void *sleeper(void *arg)
{
	(void)arg;
	if (ursa_sleep(URSA_FOREVER) == -ECANCELED)
		atomic_fetch_add(&cancelled_seen, 1);
	return NULL;
}

static void *main_cancel(void *arg)
{
	enum { N = 500 };
	struct ursa_task *ts[N];
	int *bad = arg;

	for (int i = 0; i < N; i++)
		if (ursa_spawn_on(&ts[i], 1, sleeper, NULL))
			return (void *)1;
	(void)!ursa_sleep(2 * MS);
	for (int i = 0; i < N; i++) {
		ursa_cancel(ts[i]);
		if (ursa_join(ts[i], NULL) != -ECANCELED)
			(*bad)++;
	}
	return NULL;
}

static void *square(void *arg)
{
	uintptr_t v = (uintptr_t)arg;

	return (void *)(v * v);
}

static void *pool_user(void *arg)
{
	uintptr_t sum = 0;

	for (uintptr_t i = 0; i < 100; i++) {
		void *r;

		if (ursa_blocking(square, (void *)i, &r))
			return NULL;
		sum += (uintptr_t)r;
	}
	(void)arg;
	return (void *)sum;
}

static void *main_pool(void *arg)
{
	uintptr_t *sum = arg;
	struct ursa_task *ts[16];

	for (int i = 0; i < 16; i++)
		if (ursa_spawn_on(&ts[i], (unsigned)i % 2, pool_user, NULL))
			return (void *)1;
	for (int i = 0; i < 16; i++) {
		void *r;

		if (ursa_join(ts[i], &r))
			return (void *)2;
		*sum += (uintptr_t)r;
	}
	return NULL;
}

static void *main_leave(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++) {
		struct ursa_task *t;

		if (ursa_spawn_on(&t, (unsigned)i % 2, sleeper, NULL))
			return (void *)1;
		if (i % 2)
			ursa_detach(t);
	}
	(void)!ursa_sleep(2 * MS);
	return NULL;
}

/* ursa_close on core 0 of fds whose recv and accept are parked on core 1
 * (issue 20.12): the cancel request and its acknowledgement cross threads. */
struct xclose {
	int sv[2], lfd;
	_Atomic int started;
	_Atomic int ebadf;
};

static void *xc_recv(void *arg)
{
	struct xclose *x = arg;
	char b[8];

	atomic_fetch_add(&x->started, 1);
	if (ursa_recv(x->sv[0], b, sizeof(b), 0) == -EBADF)
		atomic_fetch_add(&x->ebadf, 1);
	return NULL;
}

static void *xc_accept(void *arg)
{
	struct xclose *x = arg;
	int fd;

	atomic_fetch_add(&x->started, 1);
	fd = ursa_accept(x->lfd, NULL, NULL);
	if (fd == -EBADF)
		atomic_fetch_add(&x->ebadf, 1);
	else if (fd >= 0)
		ursa_close(fd);
	return NULL;
}

static void *main_xclose(void *arg)
{
	int *bad = arg;

	for (int i = 0; i < 50; i++) {
		struct xclose x = {.lfd = ursa_tcp_listen("127.0.0.1", 0, 4)};
		struct ursa_task *r, *a;

		if (x.lfd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, x.sv) < 0 ||
		    ursa_spawn_on(&r, 1, xc_recv, &x) || ursa_spawn_on(&a, 1, xc_accept, &x)) {
			(*bad)++;
			return NULL;
		}
		while (atomic_load(&x.started) < 2)
			(void)!ursa_sleep(MS / 10);
		(void)!ursa_sleep((uint64_t)(i % 5) * MS);
		ursa_close(x.sv[0]);
		ursa_close(x.lfd);
		if (ursa_join(r, NULL) || ursa_join(a, NULL) || atomic_load(&x.ebadf) != 2)
			(*bad)++;
		ursa_close(x.sv[1]);
	}
	return NULL;
}

/* Stacks across cores (lib/fiber/stack.c): each core spawns its tasks on
 * the other, so every stack is freed by the core that did not make it and
 * goes home over its owner's lock-free list while the owner keeps spawning
 * from it; a 1 ms trim interval keeps the trim tick running meanwhile. */
enum { BOUNCES = 3000, BOUNCE_ROUNDS = 4 };

static void *bounce(void *arg)
{
	ursa_yield();
	return arg;
}

static void *bouncer(void *arg)
{
	struct ursa_task **ts = malloc(sizeof(*ts) * BOUNCES);
	unsigned other = (ursa_core() + 1) % ursa_ncores();
	uintptr_t sum = 0;

	(void)arg;
	if (!ts)
		return NULL;
	for (int r = 0; r < BOUNCE_ROUNDS; r++) {
		for (uintptr_t i = 0; i < BOUNCES; i++)
			if (ursa_spawn_on(&ts[i], other, bounce, (void *)i))
				return NULL;
		for (int i = 0; i < BOUNCES; i++) {
			void *res;

			if (ursa_join(ts[i], &res))
				return NULL;
			sum += (uintptr_t)res;
		}
	}
	free(ts);
	return (void *)sum;
}

static void *main_stacks(void *arg)
{
	uintptr_t *sum = arg;
	struct ursa_task *t[2];

	for (unsigned c = 0; c < 2; c++)
		if (ursa_spawn_on(&t[c], c, bouncer, NULL))
			return (void *)1;
	for (int c = 0; c < 2; c++) {
		void *res;

		if (ursa_join(t[c], &res))
			return (void *)2;
		*sum += (uintptr_t)res;
	}
	return NULL;
}

int main(void)
{
	struct ursa_opts o = {.cores = 2};
	uintptr_t sum = 0;
	void *res = (void *)1;
	int bad = 0;

	for (int round = 0; round < 3; round++) {
		sum = 0;
		check(ursa_run(main_hops, &sum, &o, &res) == 0 && !res, "cross-core spawn/join runs");
		check(sum == 2000u * 2001u / 2u, "cross-core spawn/join results add up");
	}
	check(ursa_run(main_cancel, &bad, &o, &res) == 0 && !res, "cross-core cancel runs");
	check(bad == 0 && atomic_load(&cancelled_seen) == 500, "every cancel lands as -ECANCELED");
	sum = 0;
	check(ursa_run(main_pool, &sum, &o, &res) == 0 && !res, "blocking pool from both cores");
	check(sum == 16u * (99u * 100u * 199u / 6u), "pool results add up");
	atomic_store(&cancelled_seen, 0);
	check(ursa_run(main_leave, NULL, &o, &res) == 0 && !res, "shutdown with tasks everywhere");
	check(atomic_load(&cancelled_seen) == 200, "shutdown cancelled every task");
	bad = 0;
	check(ursa_run(main_xclose, &bad, &o, &res) == 0 && !res, "cross-core close runs");
	check(bad == 0, "a close on core 0 ends core 1's recv and accept with -EBADF");
	{
		struct ursa_opts so = {.cores = 2, .stack_trim_ms = 1};

		sum = 0;
		check(ursa_run(main_stacks, &sum, &so, &res) == 0 && !res,
		      "stacks spawned on one core, freed on the other");
		check(sum == 2u * BOUNCE_ROUNDS * (BOUNCES * (BOUNCES - 1u) / 2u),
		      "cross-core stack results add up");
	}
	printf("stress_crosscore: %d failed\n", failures);
	return failures ? 1 : 0;
}
