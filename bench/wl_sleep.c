/* SPDX-License-Identifier: MIT */
/*
 * wl_sleep.c: the `sleep` workloads: N tasks each sleep D seconds at once,
 * and the run ends when the last wakes.  Paths: sequential sleeps (sync,
 * measured on a sample and extrapolated), a thread per task (capped at what
 * the machine allows), ursa tasks (ring), raw io_uring timeouts with no
 * runtime (the floor), and Python asyncio's gather of N asyncio.sleep(D).
 * Each path records how late every task woke (p50, p99) and checks that
 * every task slept.
 */
#include "bench.h"

#include <ursa.h>

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The size of one run: the full workload, or a small warm-up. */
struct sleep_size {
	unsigned long n;
	uint64_t d_ns;
};

static struct sleep_size size_of(const struct bench_ctx *ctx)
{
	struct sleep_size z = {bench_tasks(ctx->p, ctx->w), (uint64_t)(ctx->p->sleep_s * 1e9)};

	if (ctx->warming) {
		/* Warm-up: page in the code and the libraries, not the memory. */
		if (z.n > 1000)
			z.n = 1000;
		if (z.d_ns > 50000000)
			z.d_ns = 50000000;
	}
	return z;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* How late a sleep of d_ns started at t0 woke at t1, in microseconds. */
static uint32_t late_us(uint64_t t0, uint64_t t1, uint64_t d_ns)
{
	uint64_t due = t0 + d_ns;

	return t1 > due ? (uint32_t)((t1 - due) / 1000u) : 0;
}

static uint32_t *alloc_late(unsigned long n)
{
	return malloc((n ? n : 1) * sizeof(uint32_t));
}

/* ----------------------------------------------------------------- sync */

static int run_sync(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct sleep_size z = size_of(ctx);
	unsigned long k = z.n < ctx->p->sync_sample ? z.n : ctx->p->sync_sample;
	uint32_t *late = alloc_late(k);
	struct timespec ts = {(time_t)(z.d_ns / 1000000000u), (long)(z.d_ns % 1000000000u)};
	struct bench_meter m;
	unsigned long done = 0;

	if (!late)
		return bench_why(ctx, BENCH_FAIL, "out of memory");
	bench_meter_start(&m);
	for (unsigned long i = 0; i < k; i++) {
		uint64_t t0 = now_ns();

		while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == EINTR)
			;
		late[i] = late_us(t0, now_ns(), z.d_ns);
		done++;
	}
	bench_meter_stop(&m, s);
	bench_lat_from_ns(&s->lat, late, k, 1.0);
	free(late);
	if (done != k)
		return bench_why(ctx, BENCH_FAIL, "check failed: %lu of %lu sleeps", done, k);
	s->ops = (double)z.n;
	s->check = z.n;
	if (k < z.n) {
		/* N sleeps one after another take N times one sleep. */
		s->wall_s *= (double)z.n / (double)k;
		s->cpu_s *= (double)z.n / (double)k;
		s->extrapolated = true;
		bench_why(ctx, BENCH_OK,
		          "extrapolated (*): %lu of %lu sequential sleeps measured, wall and CPU "
		          "scaled by %lu",
		          k, z.n, z.n / k);
	}
	return BENCH_OK;
}

/* -------------------------------------------------------- thread per task */

struct thread_sleep {
	uint64_t d_ns;
	uint32_t *late;
	unsigned long i;
	_Atomic unsigned long *done;
};

static void *thread_sleeper(void *arg)
{
	const struct thread_sleep *ts0 = arg;
	struct timespec ts = {(time_t)(ts0->d_ns / 1000000000u), (long)(ts0->d_ns % 1000000000u)};
	uint64_t t0 = now_ns();

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL) == EINTR)
		;
	ts0->late[ts0->i] = late_us(t0, now_ns(), ts0->d_ns);
	atomic_fetch_add_explicit(ts0->done, 1, memory_order_relaxed);
	return NULL;
}

static int run_threads(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct sleep_size z = size_of(ctx);
	const char *limit_why = "--max-threads";
	unsigned long limit = ctx->p->max_threads ? ctx->p->max_threads
	                                          : bench_thread_limit(&limit_why);
	unsigned long n = z.n < limit ? z.n : limit, made = 0;
	_Atomic unsigned long done = 0;
	struct thread_sleep *args = calloc(n ? n : 1, sizeof(*args));
	pthread_t *t = calloc(n ? n : 1, sizeof(*t));
	uint32_t *late = alloc_late(n);
	struct bench_meter m;
	pthread_attr_t attr;
	int rc = 0;

	if (!args || !t || !late) {
		free(args);
		free(t);
		free(late);
		return bench_why(ctx, BENCH_FAIL, "out of memory");
	}
	if (n == 0) {
		free(args);
		free(t);
		free(late);
		return bench_why(ctx, BENCH_SKIP, "no threads left under %s", limit_why);
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, (size_t)ctx->p->thread_stack_kib * 1024);
	bench_meter_start(&m);
	for (; made < n; made++) {
		args[made] = (struct thread_sleep){z.d_ns, late, made, &done};
		rc = pthread_create(&t[made], &attr, thread_sleeper, &args[made]);
		if (rc != 0)
			break;
	}
	for (unsigned long i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	bench_meter_stop(&m, s);
	pthread_attr_destroy(&attr);
	bench_lat_from_ns(&s->lat, late, made, 1.0);
	free(args);
	free(t);
	free(late);
	if (rc != 0)
		return bench_why(ctx, BENCH_SKIP, "pthread_create failed after %lu of %lu threads: %s",
		                 made, n, strerror(rc));
	if (atomic_load(&done) != n)
		return bench_why(ctx, BENCH_FAIL, "check failed: %lu of %lu threads slept",
		                 (unsigned long)atomic_load(&done), n);
	s->ops = (double)n;
	s->check = n;
	if (n < z.n)
		bench_why(ctx, BENCH_OK, "capped: %lu of %lu threads (limit: %s); ops/s is for %lu", n,
		          z.n, limit_why, n);
	else
		bench_why(ctx, BENCH_OK, "%u KiB stacks (--thread-stack)", ctx->p->thread_stack_kib);
	return BENCH_OK;
}

/* ------------------------------------------------------------ ursa tasks */

struct ring_sleep {
	unsigned long n;
	uint64_t d_ns;
	uint32_t *late;
	unsigned ncores;
	int err;
	unsigned long slept;
	bool idle_rss;      /* after the burst, wait 1 s and read VmRSS */
	long rss_idle_kib;
	long rss_mid_kib, pte_mid_kib; /* VmRSS, VmPTE half-way through the sleep */
	_Atomic unsigned fans_spawned;
};

/* A line of /proc/self/status ("VmRSS:", "VmPTE:"), KiB; 0 if unknown. */
static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	size_t n = strlen(key);
	char line[256];
	long kib = 0;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && sscanf(line + n, "%ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static long rss_now_kib(void)
{
	return status_kib("VmRSS:");
}

/* Half-way through the sleep every task is parked: what each costs, in
 * pages and in page tables (VmPTE: kernel memory, not in RSS). */
static void *sample_mid(void *arg)
{
	struct ring_sleep *rs = arg;

	if (ursa_sleep(rs->d_ns / 2) == 0) {
		rs->rss_mid_kib = rss_now_kib();
		rs->pte_mid_kib = status_kib("VmPTE:");
	}
	return NULL;
}

/* One core's share: [lo, hi). */
struct fan {
	struct ring_sleep *rs;
	unsigned long lo, hi;
	int err;
	unsigned long slept;
};

static struct ring_sleep *the_run; /* this child process's one run */

static void *sleeper(void *arg)
{
	unsigned long i = (uintptr_t)arg;
	uint64_t t0 = ursa_now();
	int rc = ursa_sleep(the_run->d_ns);

	the_run->late[i] = late_us(t0, ursa_now(), the_run->d_ns);
	return (void *)(uintptr_t)(rc == 0);
}

/* Spawn this core's share of sleepers and join them: the per-core fan-out a
 * server would use (spawning every task from core 0 makes core 0 pay for
 * every stack). */
static void *fan_main(void *arg)
{
	struct fan *f = arg;
	unsigned long n = f->hi - f->lo, made = 0;
	struct ursa_task **h = malloc((n ? n : 1) * sizeof(*h));

	if (!h) {
		f->err = -ENOMEM;
		return NULL;
	}
	for (; made < n; made++) {
		int rc = ursa_spawn(&h[made], sleeper, (void *)(uintptr_t)(f->lo + made));

		if (rc < 0) {
			f->err = rc;
			break;
		}
	}
	/* The last core done spawning samples the memory half-way through
	 * the sleep that its tasks start as it parks. */
	if (atomic_fetch_add(&f->rs->fans_spawned, 1) + 1 == f->rs->ncores) {
		struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED};

		(void)!ursa_spawn_ex(NULL, ursa_core(), sample_mid, f->rs, &so);
	}
	for (unsigned long i = 0; i < made; i++) {
		void *res = NULL;

		if (ursa_join(h[i], &res) == 0)
			f->slept += (uintptr_t)res;
	}
	free(h);
	return NULL;
}

static void *ring_main(void *arg)
{
	struct ring_sleep *rs = arg;
	unsigned nc = ursa_ncores();
	struct fan *fans = calloc(nc, sizeof(*fans));
	struct ursa_task **ft = calloc(nc, sizeof(*ft));
	unsigned started = 0;

	rs->ncores = nc;
	if (!fans || !ft) {
		rs->err = -ENOMEM;
		goto out;
	}

	for (unsigned c = 0; c < nc; c++) {
		int rc;

		fans[c] = (struct fan){rs, rs->n * c / nc, rs->n * (c + 1) / nc, 0, 0};
		rc = ursa_spawn_on(&ft[c], c, fan_main, &fans[c]);
		if (rc < 0) {
			rs->err = rc;
			break;
		}
		started++;
	}
	for (unsigned c = 0; c < started; c++) {
		if (ursa_join(ft[c], NULL) < 0 && !rs->err)
			rs->err = -ECANCELED;
		if (fans[c].err && !rs->err)
			rs->err = fans[c].err;
		rs->slept += fans[c].slept;
	}
	if (rs->idle_rss) {
		/* What a server keeps after a burst: the runtime trims idle
		 * stacks in the background (stack_trim_ms). */
		(void)!ursa_sleep(1000000000u);
		rs->rss_idle_kib = rss_now_kib();
	}
out:
	free(fans);
	free(ft);
	return NULL;
}

static int run_ursa_burst(struct bench_ctx *ctx, struct bench_sample *s, bool idle_rss)
{
	struct sleep_size z = size_of(ctx);
	struct ring_sleep rs = {.n = z.n, .d_ns = z.d_ns, .late = alloc_late(z.n),
	                        .idle_rss = idle_rss};
	struct ursa_opts o = bench_ursa_opts(ctx->p->cores);
	struct bench_meter m;
	int rc;

	if (!rs.late)
		return bench_why(ctx, BENCH_FAIL, "out of memory");
	the_run = &rs;
	bench_meter_start(&m);
	rc = ursa_run(ring_main, &rs, &o, NULL);
	bench_meter_stop(&m, s);
	bench_lat_from_ns(&s->lat, rs.late, z.n, 1.0);
	free(rs.late);
	if (rc < 0)
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	if (rs.err)
		return bench_why(ctx, BENCH_FAIL, "after %lu sleeps: %s", rs.slept,
		                 ursa_strerror(rs.err));
	if (rs.slept != z.n)
		return bench_why(ctx, BENCH_FAIL, "check failed: %lu of %lu tasks slept", rs.slept,
		                 z.n);
	s->ops = (double)z.n;
	s->check = z.n;
	if (idle_rss) {
		s->rss_kib = rs.rss_idle_kib;
		bench_why(ctx, BENCH_OK, "the ursa run again, then 1 s idle: its RSS column is VmRSS "
		                         "at that moment (the idle stacks given back), not the peak; "
		                         "wall includes the 1 s");
		return BENCH_OK;
	}
	bench_why(ctx, BENCH_OK, "%u cores; each core's share spawned and joined by a task on "
	                         "that core; half-way through the sleep: RSS %.2f KiB and page "
	                         "tables %.0f bytes per task",
	          rs.ncores, (double)rs.rss_mid_kib / (double)z.n,
	          (double)rs.pte_mid_kib * 1024 / (double)z.n);
	return BENCH_OK;
}

static int run_ursa(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_ursa_burst(ctx, s, false);
}

static int run_ursa_idle(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_ursa_burst(ctx, s, true);
}

/* ------------------------------------------------- raw io_uring timeouts */

/* user_data: the task index in the low 24 bits, its start time above (us
 * since the run began), so the floor keeps no per-task memory but the
 * lateness record every path keeps. */
#define IDX_BITS 24

struct raw_thread {
	unsigned long lo, hi;
	uint64_t d_ns, base;
	uint32_t *late;
	unsigned long done;
	int err;
	unsigned flags;
	unsigned idx;     /* pinned to the idx-th CPU, as ursa pins core idx */
};

static int raw_ring_init(struct io_uring *r, unsigned *flags_out)
{
	/* The flags ursa asks for, stepping down the same way. */
	static const unsigned flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE,
		IORING_SETUP_CQSIZE,
	};
	int rc = -EINVAL;

	for (unsigned i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = flags[i];
		p.cq_entries = 16384;
		rc = io_uring_queue_init_params(4096, r, &p);
		if (rc == 0) {
			*flags_out = p.flags;
			return 0;
		}
		if (rc != -EINVAL)
			return rc;
	}
	return rc;
}

static void *raw_thread_main(void *arg)
{
	struct raw_thread *rt = arg;
	struct __kernel_timespec ts = {(long long)(rt->d_ns / 1000000000u),
	                               (long long)(rt->d_ns % 1000000000u)};
	struct io_uring r;
	unsigned long want = rt->hi - rt->lo;
	int rc;

	bench_pin_self(rt->idx);
	rc = raw_ring_init(&r, &rt->flags);
	if (rc < 0) {
		rt->err = rc;
		return NULL;
	}
	for (unsigned long i = rt->lo; i < rt->hi; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r);

		if (!sqe) {
			io_uring_submit(&r);
			sqe = io_uring_get_sqe(&r);
		}
		/* The kernel copies the timespec at submission: one is enough. */
		io_uring_prep_timeout(sqe, &ts, 0, 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)i | ((now_ns() - rt->base) / 1000u) << IDX_BITS);
	}
	while (rt->done < want) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		rc = io_uring_submit_and_wait(&r, 1);
		if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EBUSY) {
			rt->err = rc;
			break;
		}
		uint64_t t1 = now_ns() - rt->base;

		io_uring_for_each_cqe(&r, head, cqe) {
			uint64_t ud = cqe->user_data;
			unsigned long i = (unsigned long)(ud & ((1u << IDX_BITS) - 1));
			uint64_t t0 = (ud >> IDX_BITS) * 1000u;

			if (cqe->res == -ETIME && i >= rt->lo && i < rt->hi) {
				rt->late[i] = late_us(t0, t1, rt->d_ns);
				rt->done++;
			} else if (!rt->err) {
				rt->err = cqe->res < 0 ? cqe->res : -EIO;
			}
			seen++;
		}
		io_uring_cq_advance(&r, seen);
		if (rt->err)
			break;
	}
	io_uring_queue_exit(&r);
	return NULL;
}

static unsigned ring_cores(const struct bench_params *p)
{
	return p->cores ? p->cores : bench_ncpus();
}

static int run_raw(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct sleep_size z = size_of(ctx);
	unsigned nt = ring_cores(ctx->p);
	struct raw_thread *rt = calloc(nt, sizeof(*rt));
	pthread_t *t = calloc(nt, sizeof(*t));
	uint32_t *late = alloc_late(z.n);
	unsigned long done = 0;
	struct bench_meter m;
	unsigned made = 0;
	int err = 0;

	if (!rt || !t || !late) {
		free(rt);
		free(t);
		free(late);
		return bench_why(ctx, BENCH_FAIL, "out of memory");
	}
	bench_meter_start(&m);
	for (unsigned i = 0; i < nt; i++) {
		rt[i] = (struct raw_thread){z.n * i / nt, z.n * (i + 1) / nt, z.d_ns, now_ns(), late,
		                            0, 0, 0, i};
		if (pthread_create(&t[i], NULL, raw_thread_main, &rt[i]) != 0) {
			err = -EAGAIN;
			break;
		}
		made++;
	}
	for (unsigned i = 0; i < made; i++) {
		pthread_join(t[i], NULL);
		done += rt[i].done;
		if (rt[i].err && !err)
			err = rt[i].err;
	}
	bench_meter_stop(&m, s);
	bench_lat_from_ns(&s->lat, late, z.n, 1.0);
	free(late);
	free(t);
	if (err == -ENOSYS || err == -EPERM || err == -EACCES) {
		free(rt);
		return bench_why(ctx, BENCH_SKIP, "io_uring refused: %s", strerror(-err));
	}
	if (err) {
		free(rt);
		return bench_why(ctx, BENCH_FAIL, "%s", strerror(-err));
	}
	if (done != z.n) {
		free(rt);
		return bench_why(ctx, BENCH_FAIL, "check failed: %lu of %lu timeouts", done, z.n);
	}
	s->ops = (double)z.n;
	s->check = z.n;
	bench_why(ctx, BENCH_OK, "%u thread%s, one ring each (%s), SQ 4096, all timeouts "
	                         "submitted then reaped; no runtime",
	          nt, nt == 1 ? "" : "s",
	          rt[0].flags & IORING_SETUP_DEFER_TASKRUN ? "SINGLE_ISSUER|DEFER_TASKRUN"
	                                                   : "no DEFER_TASKRUN");
	free(rt);
	return BENCH_OK;
}

/* ---------------------------------------------------------- Python asyncio */

static const char asyncio_script[] =
	"import asyncio, resource, sys, time\n"
	"n, d = int(sys.argv[1]), float(sys.argv[2])\n"
	"async def main():\n"
	"    return len(await asyncio.gather(*[asyncio.sleep(d) for _ in range(n)]))\n"
	"c0, t0 = time.process_time(), time.monotonic()\n"
	"k = asyncio.run(main())\n"
	"t1, c1 = time.monotonic(), time.process_time()\n"
	"print(k, t1 - t0, c1 - c0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n";

static int run_asyncio(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct sleep_size z = size_of(ctx);
	char n_arg[32], d_arg[32], out[256] = "";
	char *argv[] = {(char *)ctx->p->python, "-I", "-c", (char *)asyncio_script, n_arg, d_arg,
	                NULL};
	posix_spawn_file_actions_t fa;
	int fds[2], st = 0, rc;
	unsigned long k = 0;
	double wall = 0, cpu = 0;
	long rss = 0;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	if (!ctx->p->python || !*ctx->p->python)
		return bench_why(ctx, BENCH_SKIP, "no python3 with asyncio found (--python)");
	snprintf(n_arg, sizeof(n_arg), "%lu", z.n);
	snprintf(d_arg, sizeof(d_arg), "%.9f", (double)z.d_ns / 1e9);
	if (pipe(fds) != 0)
		return bench_why(ctx, BENCH_FAIL, "pipe: %s", strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	rc = posix_spawnp(&pid, ctx->p->python, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		return bench_why(ctx, BENCH_SKIP, "cannot start %s: %s", ctx->p->python,
		                 strerror(rc));
	}
	while (got + 1 < sizeof(out) && (r = read(fds[0], out + got, sizeof(out) - 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		got += (size_t)r;
	}
	out[got] = '\0';
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return bench_why(ctx, BENCH_FAIL, "%s exited with %s %d", ctx->p->python,
		                 WIFEXITED(st) ? "status" : "signal",
		                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	if (sscanf(out, "%lu %lf %lf %ld", &k, &wall, &cpu, &rss) != 4)
		return bench_why(ctx, BENCH_FAIL, "unexpected output from python: '%.80s'", out);
	if (k != z.n)
		return bench_why(ctx, BENCH_FAIL, "check failed: gather returned %lu of %lu", k, z.n);
	s->ops = (double)z.n;
	s->wall_s = wall;
	s->cpu_s = cpu;
	s->rss_kib = rss;
	s->check = z.n;
	bench_why(ctx, BENCH_OK, "wall and CPU around asyncio.run(); RSS: the interpreter's peak");
	return BENCH_OK;
}

/* ------------------------------------------------------------ the table */

#define SLEEP_PATHS                                                                              \
	{"sequential", BENCH_SYNC, "one thread sleeps N times in turn (a sample, extrapolated)", \
	 run_sync, NULL, 1, false, false, false},                                                \
	{"thread/task", BENCH_THREADED,                                                          \
	 "a thread per task (capped at the machine's thread limit)", run_threads, NULL, 0,       \
	 false, false, false},                                                                   \
	{"ursa", BENCH_RING, "an ursa task per sleep, ursa_sleep (IORING_OP_TIMEOUT)",          \
	 run_ursa, NULL, 0, false, false, true},                                                 \
	{"raw-ring", BENCH_REF,                                                                  \
	 "the floor: N IORING_OP_TIMEOUTs on bare liburing, no runtime", run_raw, NULL, 0,      \
	 false, false, true},                                                                    \
	{"asyncio", BENCH_REF, "python3: asyncio.gather of N asyncio.sleep(D)", run_asyncio,     \
	 NULL, 0, false, false, false}

static const struct bench_path paths[] = {SLEEP_PATHS};

/* At a million, also what is left once the burst is over. */
static const struct bench_path paths_1m[] = {
	SLEEP_PATHS,
	{"ursa-idle", BENCH_RING,
	 "the same, then 1 s idle; RSS column: VmRSS then (idle stacks trimmed), not the peak",
	 run_ursa_idle, NULL, 0, false, false, true},
};

/* Issue 12's targets (docs/bench.md): ratios in one run, and the memory a
 * parked task costs. */
static const struct bench_target targets[] = {
	{"ursa", "asyncio", BENCH_M_WALL, 2, false, "ring wall >= 2x faster than asyncio",
	 100000},
	{"ursa", NULL, BENCH_M_RSS_KIB_PER_OP, 4.5, true,
	 "ring peak RSS per parked task <= 4.5 KiB", 100000},
	{"ursa", "asyncio", BENCH_M_WALL, 3, false, "ring wall >= 3x faster than asyncio",
	 1000000},
	{"ursa", "asyncio", BENCH_M_WALL, 5, false, "ring wall >= 5x faster than asyncio (the aim)",
	 1000000},
	{"ursa", "raw-ring", BENCH_M_WALL, 5, true, "ring wall <= 5x the raw-ring floor", 1000000},
	{"ursa", NULL, BENCH_M_RSS_KIB_PER_OP, 4.5, true,
	 "ring peak RSS per parked task <= 4.5 KiB", 1000000},
	{"ursa-idle", NULL, BENCH_M_RSS_MIB, 64, true,
	 "ring RSS 1 s after the burst has finished <= 64 MiB", 1000000},
};

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	snprintf(buf, len,
	         "\"tasks\": %lu, \"sleep_s\": %g, \"cores\": %u, \"thread_stack_kib\": %u, "
	         "\"sync_sample\": %u",
	         bench_tasks(p, w), p->sleep_s, ring_cores(p), p->thread_stack_kib,
	         p->sync_sample);
}

#define SLEEP_WORKLOAD(ident, wname, ntasks, dflt, sum, wpaths)                                  \
	const struct bench_workload ident = {                                                    \
		.name = wname,                                                                   \
		.summary = sum,                                                                  \
		.help = "              Every task starts at once and sleeps --sleep seconds; the\n" \
		        "              run ends when the last wakes.  p50/p99: how late tasks woke.\n", \
		.unit = "task's sleep",                                                          \
		.micro = false,                                                                  \
		.latency = true,                                                                 \
		.in_default = dflt,                                                              \
		.tasks = ntasks,                                                                 \
		.baseline = "sequential",                                                        \
		.paths = wpaths,                                                                 \
		.npaths = sizeof(wpaths) / sizeof(wpaths[0]),                                    \
		.targets = targets,                                                              \
		.ntargets = sizeof(targets) / sizeof(targets[0]),                                \
		.describe = describe,                                                            \
	}

SLEEP_WORKLOAD(bench_wl_sleep, "sleep", 0, true,
               "N concurrent sleeps [--tasks 10000, --sleep 1]", paths);
SLEEP_WORKLOAD(bench_wl_sleep_100k, "sleep-100k", 100000, true,
               "the same with 100 000 tasks (issue targets: vs asyncio)", paths);
SLEEP_WORKLOAD(bench_wl_sleep_1m, "sleep-1m", 1000000, false,
               "the same with 1 000 000 tasks (issue targets: vs the raw-ring floor)",
               paths_1m);
