/* SPDX-License-Identifier: MIT */
/*
 * wl_yield.c: the `yield` workload: two tasks on one core take turns; one
 * op is a round trip (A yields, B runs and yields, A runs again).  The
 * thread version is two threads on one CPU calling sched_yield(), which the
 * kernel may answer without switching: the run counts how often the other
 * thread really ran in between and says so.
 */
#include "bench.h"

#include <ursa.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct yield_run {
	uint64_t iters;
	struct bench_sample *s;
	uint64_t a_count, b_count;
	int err;
	struct ursa_stats st;
};

static void *yielder(void *arg)
{
	struct yield_run *yr = arg;

	for (uint64_t i = 0; i < yr->iters; i++) {
		ursa_yield();
		yr->b_count++;
	}
	return NULL;
}

static void *yield_main(void *arg)
{
	struct yield_run *yr = arg;
	struct ursa_task *t;
	struct bench_meter m;
	int rc;

	bench_meter_start(&m);
	rc = ursa_spawn(&t, yielder, yr);
	if (rc < 0) {
		yr->err = rc;
		return NULL;
	}
	for (uint64_t i = 0; i < yr->iters; i++) {
		ursa_yield();
		yr->a_count++;
	}
	rc = ursa_join(t, NULL);
	bench_meter_stop(&m, yr->s);
	bench_stats_take(&yr->st);
	if (rc < 0)
		yr->err = rc;
	return NULL;
}

static int run_ursa(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct ursa_opts o = bench_ursa_opts(1);
	struct yield_run yr = {.iters = ctx->iters, .s = s};
	int rc = ursa_run(yield_main, &yr, &o, NULL);

	if (rc < 0)
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	if (yr.err)
		return bench_why(ctx, BENCH_FAIL, "%s", ursa_strerror(yr.err));
	if (yr.a_count != ctx->iters || yr.b_count != ctx->iters)
		return bench_why(ctx, BENCH_FAIL, "check failed: %llu and %llu yields, expected %llu",
		                 (unsigned long long)yr.a_count, (unsigned long long)yr.b_count,
		                 (unsigned long long)ctx->iters);
	s->ops = (double)ctx->iters;
	s->check = 1;
	ctx->why[0] = 0;
	bench_stats_note(ctx, &yr.st, 2.0 * s->ops); /* per yield, of either task */
	return BENCH_OK;
}

/* ------------------------------------------------------------- threads */

struct thread_yield {
	uint64_t iters;
	_Atomic uint64_t turn;     /* bumped by whichever thread runs */
	uint64_t handoffs[2];      /* yields after which the other thread had run */
	_Atomic int go;            /* 0: wait, 1: run, 2: give up */
};

struct thread_arg {
	struct thread_yield *ty;
	unsigned id;
};

static void *thread_yielder(void *arg)
{
	struct thread_arg *ta = arg;
	struct thread_yield *ty = ta->ty;
	uint64_t mine = 0;

	bench_pin_self(0);
	while (atomic_load(&ty->go) == 0)
		sched_yield();
	if (atomic_load(&ty->go) != 1)
		return NULL;
	for (uint64_t i = 0; i < ty->iters; i++) {
		mine = atomic_fetch_add_explicit(&ty->turn, 1, memory_order_relaxed) + 1;
		sched_yield();
		/* The other thread ran in between if the counter moved on. */
		if (atomic_load_explicit(&ty->turn, memory_order_relaxed) != mine)
			ty->handoffs[ta->id]++;
	}
	return NULL;
}

static int run_threads(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct thread_yield ty = {.iters = ctx->iters};
	struct thread_arg args[2] = {{&ty, 0}, {&ty, 1}};
	struct bench_meter m;
	pthread_t t[2];
	double share;
	int rc;

	rc = pthread_create(&t[0], NULL, thread_yielder, &args[0]);
	if (rc != 0)
		return bench_why(ctx, BENCH_SKIP, "pthread_create: %s", strerror(rc));
	rc = pthread_create(&t[1], NULL, thread_yielder, &args[1]);
	if (rc != 0) {
		atomic_store(&ty.go, 2);
		pthread_join(t[0], NULL);
		return bench_why(ctx, BENCH_SKIP, "pthread_create: %s", strerror(rc));
	}
	bench_meter_start(&m);
	atomic_store(&ty.go, 1);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	bench_meter_stop(&m, s);
	if (atomic_load(&ty.turn) != 2 * ctx->iters)
		return bench_why(ctx, BENCH_FAIL, "check failed: %llu yields, expected %llu",
		                 (unsigned long long)atomic_load(&ty.turn),
		                 (unsigned long long)(2 * ctx->iters));
	share = (double)(ty.handoffs[0] + ty.handoffs[1]) / (double)(2 * ctx->iters);
	s->ops = (double)ctx->iters;
	s->check = 1;
	bench_why(ctx, BENCH_OK,
	          "two threads pinned to one CPU; the other thread ran during %.0f%% of the "
	          "sched_yield calls",
	          100 * share);
	return BENCH_OK;
}

static const struct bench_path paths[] = {
	{"ursa", BENCH_RING, "two tasks on one core, each calling ursa_yield() in a loop", run_ursa,
	 NULL, 0, false, true, true},
	{"sched_yield", BENCH_THREADED, "two threads on one CPU, each calling sched_yield()",
	 run_threads, NULL, 0, false, true, false},
};

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	(void)w;
	snprintf(buf, len, "\"min_time_s\": %g", p->min_time_s);
}

const struct bench_workload bench_wl_yield = {
	.name = "yield",
	.summary = "yield round trip between two tasks on one core",
	.help = "              One op: task A yields, B runs and yields, A runs again.  The ring\n"
	        "              row uses the library's fiber backend (see the header).\n",
	.unit = "yield round trip",
	.micro = true,
	.in_default = true,
	.baseline = "sched_yield",
	.paths = paths,
	.npaths = sizeof(paths) / sizeof(paths[0]),
	.describe = describe,
};
