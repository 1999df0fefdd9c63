/* SPDX-License-Identifier: MIT */
/*
 * wl_switch.c: the `switch` workload: one context switch through the asm
 * fiber backend, the ucontext backend and a bare register switch (all three
 * compiled into bench under renamed symbols, whatever backend the library
 * was built with; see bench/meson.build), and between two threads (a byte
 * ping-ponged over two pipes, both threads on one CPU).
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ctx_pingpong.c, compiled once per implementation. */
int bench_asm_pingpong(uint64_t round_trips, uint64_t *seen);
int bench_uc_pingpong(uint64_t round_trips, uint64_t *seen);
int bench_bare_pingpong(uint64_t round_trips, uint64_t *seen);

static int run_ctx(struct bench_ctx *ctx, struct bench_sample *s,
                   int (*pingpong)(uint64_t, uint64_t *))
{
	struct bench_meter m;
	uint64_t seen = 0;
	int rc;

	bench_meter_start(&m);
	rc = pingpong(ctx->iters, &seen);
	bench_meter_stop(&m, s);
	if (rc < 0)
		return bench_why(ctx, BENCH_FAIL, "fiber stack: %s", strerror(-rc));
	if (seen != ctx->iters)
		return bench_why(ctx, BENCH_FAIL, "check failed: %llu round trips, expected %llu",
		                 (unsigned long long)seen, (unsigned long long)ctx->iters);
	s->ops = 2.0 * (double)ctx->iters; /* two switches per round trip */
	s->check = 1;
	return BENCH_OK;
}

static int run_asm(struct bench_ctx *ctx, struct bench_sample *s)
{
#ifdef BENCH_HAVE_ASM_SWITCH
	return run_ctx(ctx, s, bench_asm_pingpong);
#else
	(void)s;
	return bench_why(ctx, BENCH_SKIP, "no assembly context switch for this CPU");
#endif
}

static int run_uc(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_ctx(ctx, s, bench_uc_pingpong);
}

static int run_bare(struct bench_ctx *ctx, struct bench_sample *s)
{
#ifdef BENCH_HAVE_ASM_SWITCH
	return run_ctx(ctx, s, bench_bare_pingpong);
#else
	(void)s;
	return bench_why(ctx, BENCH_SKIP, "no bare switch for this CPU");
#endif
}

/* ------------------------------------------------------- pipe ping-pong */

struct pipes {
	int ab[2], ba[2];
	uint64_t n, echoed;
	int err;
};

static void *echo_thread(void *arg)
{
	struct pipes *pp = arg;
	char b;

	bench_pin_self(0);
	for (uint64_t i = 0; i < pp->n; i++) {
		if (read(pp->ab[0], &b, 1) != 1 || write(pp->ba[1], &b, 1) != 1) {
			pp->err = errno ? errno : EIO;
			break;
		}
		pp->echoed++;
	}
	return NULL;
}

static int run_pipe(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct pipes pp = {.n = ctx->iters};
	struct bench_meter m;
	pthread_t t;
	uint64_t back = 0;
	int rc;
	char b = 'x';

	if (pipe(pp.ab) != 0)
		return bench_why(ctx, BENCH_FAIL, "pipe: %s", strerror(errno));
	if (pipe(pp.ba) != 0) {
		close(pp.ab[0]);
		close(pp.ab[1]);
		return bench_why(ctx, BENCH_FAIL, "pipe: %s", strerror(errno));
	}
	/* Both threads on one CPU: each hand-off is a real context switch, as
	 * for fibers, not a wake-up of another CPU. */
	bench_pin_self(0);
	rc = pthread_create(&t, NULL, echo_thread, &pp);
	if (rc != 0) {
		rc = bench_why(ctx, BENCH_SKIP, "pthread_create: %s", strerror(rc));
		goto out;
	}
	bench_meter_start(&m);
	for (uint64_t i = 0; i < pp.n; i++) {
		if (write(pp.ab[1], &b, 1) != 1 || read(pp.ba[0], &b, 1) != 1)
			break;
		back++;
	}
	bench_meter_stop(&m, s);
	pthread_join(t, NULL);
	if (back != pp.n || pp.echoed != pp.n)
		rc = bench_why(ctx, BENCH_FAIL, "check failed: %llu/%llu round trips (%s)",
		               (unsigned long long)back, (unsigned long long)pp.n,
		               strerror(pp.err ? pp.err : EIO));
	else
		rc = BENCH_OK;
	s->ops = 2.0 * (double)pp.n;
	s->check = 1;
	if (rc == BENCH_OK)
		bench_why(ctx, BENCH_OK, "both threads pinned to one CPU; one op = a write+read "
		                         "hand-off");
out:
	close(pp.ab[0]);
	close(pp.ab[1]);
	close(pp.ba[0]);
	close(pp.ba[1]);
	return rc;
}

static const struct bench_path paths[] = {
	{"asm", BENCH_RING, "the asm backend's switch (lib/fiber/switch_<cpu>.S), fiber ping-pong",
	 run_asm, NULL, 0, false, true, false},
	{"ucontext", BENCH_RING, "the ucontext backend's switch (swapcontext: a sigprocmask "
	 "syscall each)", run_uc, NULL, 0, false, true, false},
	{"bare", BENCH_REF, "bare register switch: callee-saved registers + sp, no FP control "
	 "state", run_bare, NULL, 0, false, true, false},
	{"pipe", BENCH_THREADED, "two threads on one CPU pass a byte over two pipes", run_pipe,
	 NULL, 0, false, true, false},
};

static const struct bench_target targets[] = {
	{"asm", "ucontext", BENCH_M_OPS, 25, false, "asm switch >= 25x faster than ucontext", 0},
	{"asm", "bare", BENCH_M_OPS, 1.5, true, "asm switch costs <= 1.5x a bare register switch",
	 0},
};

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	(void)w;
	snprintf(buf, len, "\"min_time_s\": %g", p->min_time_s);
}

const struct bench_workload bench_wl_switch = {
	.name = "switch",
	.summary = "context switch: asm vs ucontext vs bare registers vs threads",
	.help = "              A fiber and its caller switch back and forth; one op is one switch.\n"
	        "              The asm and ucontext backends and the bare switch are all compiled\n"
	        "              into bench, whichever backend the library uses.\n",
	.unit = "context switch",
	.micro = true,
	.in_default = true,
	.baseline = "pipe",
	.paths = paths,
	.npaths = sizeof(paths) / sizeof(paths[0]),
	.targets = targets,
	.ntargets = sizeof(targets) / sizeof(targets[0]),
	.describe = describe,
};
