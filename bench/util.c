/* SPDX-License-Identifier: MIT */
/*
 * util.c: the measuring helpers every workload uses: clocks, CPU time,
 * latency percentiles, pinning, and how many threads the machine allows.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

void bench_meter_start(struct bench_meter *m)
{
	m->cpu0 = bench_cpu();
	m->wall0 = bench_now();
}

void bench_meter_stop(const struct bench_meter *m, struct bench_sample *s)
{
	s->wall_s = bench_now() - m->wall0;
	s->cpu_s = bench_cpu() - m->cpu0;
}

int bench_why(struct bench_ctx *ctx, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->why, ctx->why_len, fmt, ap);
	va_end(ap);
	return status;
}

void bench_stats_take(struct ursa_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	if (ursa_stats(st, URSA_STATS_ALL, 0) != 0)
		st->version = 0; /* compiled out (-Dstats=false): no note */
}

void bench_stats_note(struct bench_ctx *ctx, const struct ursa_stats *st, double ops)
{
	size_t n = strlen(ctx->why);
	double files = (double)(st->file_inline + st->file_ring);

	if (!st->version || !(ops > 0) || n + 1 >= ctx->why_len)
		return;
	snprintf(ctx->why + n, ctx->why_len - n,
	         "%scounters: per op %.2f turns, %.2f switches, %.2f ring ops, %.2f cross-core "
	         "wakes; %.1f SQEs/submit, %.1f CQEs/turn, %llu SQ-full, %.0f%% of turns slept",
	         n ? "; " : "", (double)st->turns / ops, (double)st->switches / ops,
	         (double)st->ops / ops, (double)st->xwakes_sent / ops,
	         st->submits ? (double)st->sqes / (double)st->submits : 0.0,
	         st->turns ? (double)st->cqes / (double)st->turns : 0.0,
	         (unsigned long long)st->sq_full,
	         st->turns ? 100.0 * (double)st->sleeps / (double)st->turns : 0.0);
	n = strlen(ctx->why);
	if (files > 0 && n + 1 < ctx->why_len)
		snprintf(ctx->why + n, ctx->why_len - n, "; file ops inline %.1f%% of %.0f",
		         100.0 * (double)st->file_inline / files, files);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint32_t rank(const uint32_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	return v[i >= n ? n - 1 : i];
}

void bench_lat_from_ns(struct bench_lat *l, uint32_t *v, size_t n, double unit_us)
{
	memset(l, 0, sizeof(*l));
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), cmp_u32);
	l->valid = true;
	l->p50_us = rank(v, n, 0.50) * unit_us;
	l->p99_us = rank(v, n, 0.99) * unit_us;
	l->max_us = v[n - 1] * unit_us;
}

/* The process's affinity mask as it was first seen, before any path pinned
 * a thread (a child that pinned itself for its warm-up still knows both
 * CPUs for its measured runs). */
static cpu_set_t first_mask;
static bool have_mask;

static const cpu_set_t *mask0(void)
{
	if (!have_mask) {
		CPU_ZERO(&first_mask);
		if (sched_getaffinity(0, sizeof(first_mask), &first_mask) != 0)
			for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; c++)
				CPU_SET((int)c, &first_mask);
		have_mask = true;
	}
	return &first_mask;
}

unsigned bench_ncpus(void)
{
	return (unsigned)CPU_COUNT(mask0());
}

int bench_pin_self(unsigned i)
{
	const cpu_set_t *set = mask0();
	cpu_set_t one;
	unsigned seen = 0;

	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, set))
			continue;
		if (seen++ == i % (unsigned)CPU_COUNT(set)) {
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			return -pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
		}
	}
	return -EINVAL;
}

static bool pin_workers = true;

void bench_set_pin(bool pin)
{
	pin_workers = pin;
}

struct ursa_opts bench_ursa_opts(unsigned cores)
{
	struct ursa_opts o = {.flags = pin_workers ? URSA_OPT_PIN : 0, .cores = cores};

	return o;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* Threads alive in this process now. */
static long threads_now(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long n = 1;

	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

unsigned long bench_thread_limit(const char **why)
{
	/* Each limit, and how many threads it leaves room for.  A glibc thread
	 * stack is one mapping plus its guard: two map entries per thread. */
	struct rlimit rl;
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	long threads_max = read_long("/proc/sys/kernel/threads-max");
	long map_count = read_long("/proc/sys/vm/max_map_count");
	long best = 1L << 30, margin = 512;

	*why = "no limit found";
	if (pid_max > 0 && pid_max - margin < best) {
		best = pid_max - margin;
		*why = "kernel.pid_max";
	}
	if (threads_max > 0 && threads_max - margin < best) {
		best = threads_max - margin;
		*why = "kernel.threads-max";
	}
	if (map_count > 0 && map_count / 2 - margin < best) {
		best = map_count / 2 - margin;
		*why = "vm.max_map_count (2 mappings per thread stack)";
	}
	if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur - margin < best) {
		best = (long)rl.rlim_cur - margin;
		*why = "RLIMIT_NPROC (ulimit -u)";
	}
	{
		/* The pids controller of this process's cgroup: v2 ("0::/path") or
		 * v1 ("N:pids:/path"). */
		FILE *f = fopen("/proc/self/cgroup", "r");
		char line[400], path[512];

		while (f && fgets(line, sizeof(line), f)) {
			const char *rel = NULL, *root = NULL;
			long max, cur;

			line[strcspn(line, "\n")] = '\0';
			if (strncmp(line, "0::", 3) == 0) {
				rel = line + 3;
				root = "/sys/fs/cgroup";
			} else if (strstr(line, ":pids:")) {
				rel = strstr(line, ":pids:") + 6;
				root = "/sys/fs/cgroup/pids";
			}
			if (!rel)
				continue;
			snprintf(path, sizeof(path), "%s%s/pids.max", root, rel);
			max = read_long(path); /* -1 for "max": no limit */
			snprintf(path, sizeof(path), "%s%s/pids.current", root, rel);
			cur = read_long(path);
			if (max > 0 && max - (cur > 0 ? cur : 0) - margin < best) {
				best = max - (cur > 0 ? cur : 0) - margin;
				*why = "the cgroup's pids.max";
			}
		}
		if (f)
			fclose(f);
	}
	best -= threads_now();
	return best > 0 ? (unsigned long)best : 0;
}

unsigned long bench_tasks(const struct bench_params *p, const struct bench_workload *w)
{
	if (w->tasks)
		return w->tasks;
	return p->tasks ? p->tasks : 10000;
}

int bench_latbuf_init(struct bench_latbuf *b, size_t cap)
{
	b->v = cap ? malloc(cap * sizeof(*b->v)) : NULL;
	b->cap = b->v ? cap : 0;
	b->n = 0;
	b->seen = 0;
	return cap && !b->v ? -1 : 0;
}

void bench_latbuf_merge(struct bench_lat *l, struct bench_latbuf *bufs, unsigned n)
{
	size_t total = 0, k = 0;
	uint32_t *all;

	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < n; i++)
		total += bufs[i].n;
	all = malloc((total ? total : 1) * sizeof(*all));
	for (unsigned i = 0; i < n; i++) {
		if (all)
			memcpy(all + k, bufs[i].v, bufs[i].n * sizeof(*all));
		k += bufs[i].n;
		free(bufs[i].v);
		bufs[i].v = NULL;
	}
	if (all)
		bench_lat_from_ns(l, all, total, 0.001);
	free(all);
}
