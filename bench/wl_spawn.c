/* SPDX-License-Identifier: MIT */
/*
 * wl_spawn.c: the `spawn` workload: start an empty task and wait for it,
 * as an ursa task (one at a time, and 64 at a time) and as a thread
 * (pthread_create + pthread_join).
 */
#include "bench.h"

#include <ursa.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define BATCH 64

static void *empty(void *arg)
{
	return arg;
}

struct spawn_run {
	uint64_t iters;
	unsigned batch;
	struct bench_sample *s;
	uint64_t sum;
	int err;
	struct ursa_stats st;
};

static void *spawn_main(void *arg)
{
	struct spawn_run *sr = arg;
	struct ursa_task *t[BATCH];
	struct bench_meter m;
	uint64_t i = 0;

	bench_meter_start(&m);
	while (i < sr->iters) {
		unsigned k = 0;

		for (; k < sr->batch && i + k < sr->iters; k++) {
			int rc = ursa_spawn(&t[k], empty, (void *)(uintptr_t)(i + k + 1));

			if (rc < 0) {
				sr->err = rc;
				break;
			}
		}
		for (unsigned j = 0; j < k; j++) {
			void *res = NULL;

			if (ursa_join(t[j], &res) == 0)
				sr->sum += (uintptr_t)res;
		}
		if (sr->err)
			break;
		i += k;
	}
	bench_meter_stop(&m, sr->s);
	bench_stats_take(&sr->st);
	return NULL;
}

static int run_ursa_n(struct bench_ctx *ctx, struct bench_sample *s, unsigned batch)
{
	/* One core: spawn puts the task on the caller's core anyway, and an idle
	 * second worker would only add noise. */
	struct ursa_opts o = bench_ursa_opts(1);
	struct spawn_run sr = {.iters = ctx->iters, .batch = batch, .s = s};
	uint64_t want = ctx->iters * (ctx->iters + 1) / 2;
	int rc = ursa_run(spawn_main, &sr, &o, NULL);

	if (rc < 0)
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	if (sr.err)
		return bench_why(ctx, BENCH_FAIL, "ursa_spawn: %s", ursa_strerror(sr.err));
	if (sr.sum != want)
		return bench_why(ctx, BENCH_FAIL, "check failed: results sum to %llu, expected %llu",
		                 (unsigned long long)sr.sum, (unsigned long long)want);
	s->ops = (double)ctx->iters;
	s->check = 1;
	ctx->why[0] = 0;
	bench_stats_note(ctx, &sr.st, s->ops);
	return BENCH_OK;
}

static int run_ursa(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_ursa_n(ctx, s, 1);
}

static int run_ursa_batch(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_ursa_n(ctx, s, BATCH);
}

static int run_pthread(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct bench_meter m;
	uint64_t sum = 0, want = ctx->iters * (ctx->iters + 1) / 2;
	int rc = 0;

	bench_meter_start(&m);
	for (uint64_t i = 0; i < ctx->iters; i++) {
		pthread_t t;
		void *res = NULL;

		rc = pthread_create(&t, NULL, empty, (void *)(uintptr_t)(i + 1));
		if (rc != 0)
			break;
		pthread_join(t, &res);
		sum += (uintptr_t)res;
	}
	bench_meter_stop(&m, s);
	if (rc != 0)
		return bench_why(ctx, BENCH_SKIP, "pthread_create: %s", strerror(rc));
	if (sum != want)
		return bench_why(ctx, BENCH_FAIL, "check failed: results sum to %llu, expected %llu",
		                 (unsigned long long)sum, (unsigned long long)want);
	s->ops = (double)ctx->iters;
	s->check = 1;
	return BENCH_OK;
}

static const struct bench_path paths[] = {
	{"ursa", BENCH_RING, "ursa_spawn + ursa_join of an empty task, one at a time (1 core)",
	 run_ursa, NULL, 0, false, true, true},
	{"ursa-x64", BENCH_RING, "the same, 64 spawned then 64 joined", run_ursa_batch, NULL, 0,
	 false, true, true},
	{"pthread", BENCH_THREADED, "pthread_create + pthread_join, default attributes", run_pthread,
	 NULL, 0, false, false, false},
};

static const struct bench_target targets[] = {
	{"ursa", "pthread", BENCH_M_OPS, 100, false,
	 "spawn+join >= 100x faster than pthread_create+join", 0},
};

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	(void)w;
	snprintf(buf, len, "\"min_time_s\": %g, \"batch\": %d", p->min_time_s, BATCH);
}

const struct bench_workload bench_wl_spawn = {
	.name = "spawn",
	.summary = "start an empty task and wait for it: ursa task vs thread",
	.help = "              One op: spawn (or pthread_create) a task that returns its argument,\n"
	        "              then join it; the results are summed and checked.\n",
	.unit = "spawn + join",
	.micro = true,
	.in_default = true,
	.baseline = "pthread",
	.paths = paths,
	.npaths = sizeof(paths) / sizeof(paths[0]),
	.targets = targets,
	.ntargets = sizeof(targets) / sizeof(targets[0]),
	.describe = describe,
};
