/* SPDX-License-Identifier: MIT */
/*
 * wl_idle.c: what idle polling costs (issue 13).  A worker with nothing to
 * run polls its inbox and ring for a while before it sleeps in the kernel
 * (docs/design.md, "The wake protocol"); these rows show the CPU that costs
 * where the polling buys nothing:
 *
 *   idle   every task asleep for --idle seconds [10]: the runtime must stop
 *          polling and cost next to nothing (issue 13's target: <= 1% of a
 *          core per worker)
 *   tick   a task per core waking every millisecond from a timer for
 *          --io-time seconds: the price per wake of the poll that follows
 *          each one, against the same with polling off and against threads
 *
 * ursa rows run with the library's default idle polling, ursa-nopoll with it
 * off (URSA_IDLE_POLL_OFF); the environment (URSA_IDLE_POLL_US) changes the
 * ursa rows only.
 */
#include "bench.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TICK_NS 1000000ull /* tick: the period of each task's timer */
#define MAX_TICKERS 256

struct idle_run {
	struct bench_ctx *ctx;
	struct bench_sample *s;
	unsigned cores;
	bool poll;
	double seconds;       /* idle: how long every task sleeps; tick: how long to tick */
	uint64_t wakes[MAX_TICKERS];
	uint32_t *late_us;    /* tick: how late each wake was */
	size_t nlate, cap;
	int err;
};

static unsigned cores_of(const struct bench_params *p)
{
	unsigned n = p->cores ? p->cores : bench_ncpus();

	return n > MAX_TICKERS ? MAX_TICKERS : n;
}

/* Run main over r on a runtime with idle polling on or off. */
static int run_ursa(struct idle_run *r, ursa_fn main)
{
	struct ursa_opts o = bench_ursa_opts(r->cores);
	int rc;

	if (!r->poll)
		o.idle_poll_us = URSA_IDLE_POLL_OFF;
	rc = ursa_run(main, r, &o, NULL);
	if (rc < 0)
		return bench_why(r->ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	if (r->err)
		return bench_why(r->ctx, BENCH_FAIL, "%s", ursa_strerror(r->err));
	return BENCH_OK;
}

/* ------------------------------------------------------------------ idle */

static void *idle_sleeper(void *arg)
{
	struct idle_run *r = arg;

	return (void *)(intptr_t)ursa_sleep((uint64_t)(r->seconds * 1e9));
}

static void *idle_main(void *arg)
{
	struct idle_run *r = arg;
	struct ursa_task *t[MAX_TICKERS];
	struct bench_meter m;
	unsigned n = 0;

	/* From the spawns to the last join: every worker, main's included,
	 * has nothing to do but wait for its sleeper's timer. */
	bench_meter_start(&m);
	for (; n < r->cores; n++) {
		int rc = ursa_spawn_on(&t[n], n, idle_sleeper, r);

		if (rc < 0) {
			r->err = rc;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		void *res = NULL;
		int rc = ursa_join(t[i], &res);

		if ((rc < 0 || res) && !r->err)
			r->err = rc < 0 ? rc : (int)(intptr_t)res;
	}
	bench_meter_stop(&m, r->s);
	/* One op: one worker idle for one second; ops/s is the worker count,
	 * and cpu s over (ops) is the CPU share of a worker. */
	r->s->ops = r->cores * r->s->wall_s;
	r->s->check = r->cores;
	return NULL;
}

static int run_idle(struct bench_ctx *ctx, struct bench_sample *s, bool poll)
{
	struct idle_run r = {.ctx = ctx, .s = s, .cores = cores_of(ctx->p), .poll = poll,
	                     .seconds = ctx->warming ? 0.05 : ctx->p->idle_s};

	return run_ursa(&r, idle_main);
}

static int run_idle_poll(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_idle(ctx, s, true);
}

static int run_idle_nopoll(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_idle(ctx, s, false);
}

/* ------------------------------------------------------------------ tick */

static void note_late(struct idle_run *r, uint64_t late_ns)
{
	/* Only the ticker on core 0 records (no lock needed); its wakes are
	 * like every other's. */
	if (r->nlate < r->cap)
		r->late_us[r->nlate++] = (uint32_t)(late_ns / 1000);
}

static void *ticker(void *arg)
{
	struct idle_run *r = arg;
	unsigned me = ursa_core();
	uint64_t end = ursa_now() + (uint64_t)(r->seconds * 1e9), next = ursa_now();

	while (next < end) {
		int rc;

		next += TICK_NS;
		rc = ursa_sleep_until(next);
		if (rc < 0)
			return (void *)(intptr_t)rc;
		if (me == 0)
			note_late(r, ursa_now() - next);
		r->wakes[me]++;
	}
	return NULL;
}

static void fill_tick(struct idle_run *r, uint64_t wakes)
{
	r->s->ops = (double)wakes;
	r->s->check = 1; /* the wake count depends on timing */
	if (r->nlate)
		bench_lat_from_ns(&r->s->lat, r->late_us, r->nlate, 1);
}

static void *tick_main(void *arg)
{
	struct idle_run *r = arg;
	struct ursa_task *t[MAX_TICKERS];
	struct bench_meter m;
	uint64_t wakes = 0;
	unsigned n = 0;

	bench_meter_start(&m);
	for (; n < r->cores; n++) {
		int rc = ursa_spawn_on(&t[n], n, ticker, r);

		if (rc < 0) {
			r->err = rc;
			break;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		void *res = NULL;
		int rc = ursa_join(t[i], &res);

		if ((rc < 0 || res) && !r->err)
			r->err = rc < 0 ? rc : (int)(intptr_t)res;
		wakes += r->wakes[i];
	}
	bench_meter_stop(&m, r->s);
	fill_tick(r, wakes);
	return NULL;
}

static int run_tick(struct bench_ctx *ctx, struct bench_sample *s, bool poll)
{
	static uint32_t late[1u << 16];
	struct idle_run r = {.ctx = ctx, .s = s, .cores = cores_of(ctx->p), .poll = poll,
	                     .seconds = bench_io_time(ctx), .late_us = late,
	                     .cap = sizeof(late) / sizeof(late[0])};
	int rc = run_ursa(&r, tick_main);

	if (rc != BENCH_OK)
		return rc;
	return bench_why(ctx, BENCH_OK, "%.1f us of CPU per wake",
	                 s->ops > 0 ? 1e6 * s->cpu_s / s->ops : 0);
}

static int run_tick_poll(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_tick(ctx, s, true);
}

static int run_tick_nopoll(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_tick(ctx, s, false);
}

/* The same with a thread per CPU sleeping on clock_nanosleep. */
struct thread_tick {
	double seconds;
	unsigned id;
	uint64_t wakes;
	uint32_t *late_us;
	size_t nlate, cap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *thread_ticker(void *arg)
{
	struct thread_tick *t = arg;
	uint64_t next = now_ns(), end = next + (uint64_t)(t->seconds * 1e9);

	while (next < end) {
		struct timespec ts;

		next += TICK_NS;
		ts.tv_sec = (time_t)(next / 1000000000u);
		ts.tv_nsec = (long)(next % 1000000000u);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
			;
		if (t->id == 0 && t->nlate < t->cap)
			t->late_us[t->nlate++] = (uint32_t)((now_ns() - next) / 1000);
		t->wakes++;
	}
	return NULL;
}

static int run_tick_threads(struct bench_ctx *ctx, struct bench_sample *s)
{
	static uint32_t late[1u << 16];
	struct thread_tick t[MAX_TICKERS];
	pthread_t th[MAX_TICKERS];
	unsigned n = cores_of(ctx->p), started = 0;
	struct bench_meter m;
	uint64_t wakes = 0;

	bench_meter_start(&m);
	for (; started < n; started++) {
		t[started] = (struct thread_tick){.seconds = bench_io_time(ctx), .id = started,
		                                  .late_us = late, .cap = sizeof(late) / sizeof(late[0])};
		if (pthread_create(&th[started], NULL, thread_ticker, &t[started]) != 0)
			break;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		wakes += t[i].wakes;
	}
	bench_meter_stop(&m, s);
	if (started < n)
		return bench_why(ctx, BENCH_SKIP, "pthread_create failed");
	s->ops = (double)wakes;
	s->check = 1;
	if (t[0].nlate)
		bench_lat_from_ns(&s->lat, late, t[0].nlate, 1);
	return bench_why(ctx, BENCH_OK, "%.1f us of CPU per wake",
	                 s->ops > 0 ? 1e6 * s->cpu_s / s->ops : 0);
}

/* ------------------------------------------------------------ workloads */

static void describe_idle(const struct bench_params *p, const struct bench_workload *w,
                          char *buf, size_t len)
{
	(void)w;
	snprintf(buf, len, "\"idle_s\": %g, \"cores\": %u", p->idle_s, cores_of(p));
}

static void describe_tick(const struct bench_params *p, const struct bench_workload *w,
                          char *buf, size_t len)
{
	(void)w;
	snprintf(buf, len, "\"io_time_s\": %g, \"cores\": %u, \"tick_us\": %llu", p->io_time_s,
	         cores_of(p), TICK_NS / 1000);
}

static const struct bench_path idle_paths[] = {
	{"ursa", BENCH_RING, "a task per core asleep for --idle s, idle polling on (the default)",
	 run_idle_poll, NULL, 1, true, false, true},
	{"ursa-nopoll", BENCH_RING, "the same with idle polling off (URSA_IDLE_POLL_OFF)",
	 run_idle_nopoll, NULL, 1, true, false, true},
};

static const struct bench_target idle_targets[] = {
	{"ursa", NULL, BENCH_M_CPU_SHARE, 0.01, true,
	 "an idle runtime uses <= 1% of a core per worker", 0},
};

const struct bench_workload bench_wl_idle = {
	.name = "idle",
	.summary = "an idle runtime: every task asleep for --idle seconds [10]",
	.help = "              One op: one worker idle for one second (ops/s is the worker\n"
	        "              count); cpu s over wall s and workers is what an idle worker\n"
	        "              costs, idle polling included.  One repetition each.\n",
	.unit = "worker-second",
	.in_default = true,
	.paths = idle_paths,
	.npaths = sizeof(idle_paths) / sizeof(idle_paths[0]),
	.targets = idle_targets,
	.ntargets = sizeof(idle_targets) / sizeof(idle_targets[0]),
	.describe = describe_idle,
};

static const struct bench_path tick_paths[] = {
	{"ursa", BENCH_RING, "a task per core, ursa_sleep_until every 1 ms, idle polling on",
	 run_tick_poll, NULL, 0, false, false, true},
	{"ursa-nopoll", BENCH_RING, "the same with idle polling off", run_tick_nopoll, NULL, 0,
	 false, false, true},
	{"threads", BENCH_THREADED, "a thread per CPU, clock_nanosleep every 1 ms",
	 run_tick_threads, NULL, 0, false, false, false},
};

const struct bench_workload bench_wl_tick = {
	.name = "tick",
	.summary = "a timer wake every millisecond on every core: what each wake costs",
	.help = "              One op: one wake.  p50/p99: how late the wakes of core 0\n"
	        "              were; the notes give the CPU per wake, the price of the\n"
	        "              poll that follows each wake when polling is on.\n",
	.unit = "wake",
	.latency = true,
	.in_default = true,
	.baseline = "ursa-nopoll",
	.paths = tick_paths,
	.npaths = sizeof(tick_paths) / sizeof(tick_paths[0]),
	.describe = describe_tick,
};
