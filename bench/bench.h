/* SPDX-License-Identifier: MIT */
/*
 * bench.h: what the harness (bench.c, report.c, util.c) and the workloads
 * (wl_*.c) share: parameters, one measured sample, a path, a workload.
 *
 * A workload is a list of paths (sync, threaded, ring, and reference rows
 * such as a bare register switch or Python asyncio).  The harness runs each
 * path in its own child process (so peak RSS is that path's own): warm-up,
 * then several repetitions, each a call of the path's `run`; it reports the
 * median with min and max.  `run` does the work, checks it (counts,
 * checksums) and fills one struct bench_sample.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ursa.h>

/* The path classes of the issue, plus "ref" for floors and outside
 * comparisons (raw io_uring, bare switch, Python asyncio). */
enum bench_class { BENCH_SYNC, BENCH_THREADED, BENCH_RING, BENCH_REF, BENCH_NCLASS };

/* Everything settable on the command line.  Zero means "the workload's
 * default" wherever a workload has one. */
struct bench_params {
	bool quick;
	unsigned reps;         /* measured repetitions per path */
	unsigned warmup;       /* warm-up runs (micro: calibration rounds) */
	double min_time_s;     /* micro-benchmarks: target seconds per repetition */
	double budget_s;       /* stop repeating a path once it has used this much */
	double timeout_s;      /* kill a path's child after this long */
	unsigned long tasks;   /* sleep: concurrent tasks */
	double sleep_s;        /* sleep: seconds each task sleeps */
	double idle_s;         /* idle: seconds every task sleeps */
	unsigned cores;        /* ring path: ursa cores (0: every CPU) */
	bool pin;              /* ursa paths: pin the workers (URSA_OPT_PIN) */
	unsigned thread_stack_kib; /* thread-per-task paths: stack per thread */
	unsigned long max_threads; /* cap on threads (0: what the machine allows) */
	unsigned sync_sample;  /* sleep: sequential sleeps the sync path measures */
	const char *python;    /* interpreter for the asyncio rows ("" = none) */
	double io_time_s;      /* file and net workloads: seconds per repetition */
	const char *dir;       /* file workloads: where their files go */
	unsigned file_mib;     /* file-cached, file-direct: data file size */
	unsigned inflight;     /* file workloads: operations in flight (tasks, threads) */
	unsigned files;        /* file-small: how many files */
	unsigned sync_every;   /* file-write: fdatasync after this many appends per file */
	unsigned writers;      /* file-write: files appended to at once */
	unsigned conns;        /* net-echo, net-connect: client connections */
	unsigned msg_size;     /* net-echo: bytes per message */
	unsigned classes;      /* bit mask of enum bench_class to run */
	/* Non-NULL when this machine refuses io_uring: why (ursa_features()'s
	 * words).  Paths that need a ring are then not started. */
	const char *io_uring_refused;
};

/* The most latency percentiles a sample carries. */
struct bench_lat {
	bool valid;
	double p50_us, p99_us, max_us;
};

/* One measured repetition. */
struct bench_sample {
	double ops;        /* operations done (the unit is the workload's) */
	double wall_s;     /* elapsed, over the measured part only */
	double cpu_s;      /* user + system CPU of the process (all threads) */
	long rss_kib;      /* peak RSS; 0: the harness measures it (VmHWM) */
	struct bench_lat lat;
	bool extrapolated; /* wall and ops scaled from a sample of the work */
	uint64_t check;    /* workload-defined checksum, compared across reps */
	/* Servers driven by a load generator (w->server_cpu): the server's CPU
	 * over the generator's measured interval only (not its set-up or
	 * teardown), and the generator's own CPU over the same interval. */
	double srv_cpu_s;
	double client_cpu_s;
};

/* What a path's run (or setup) says besides its sample. */
enum bench_status { BENCH_OK = 0, BENCH_SKIP = 1, BENCH_FAIL = 2 };

/* The state a run gets: the parameters, the iteration count chosen by
 * calibration (micro-benchmarks), and where to write a reason. */
struct bench_ctx {
	const struct bench_params *p;
	const struct bench_workload *w;
	uint64_t iters;    /* micro: iterations this repetition */
	bool warming;      /* this run is a warm-up (may be made smaller) */
	char *why;         /* reason for SKIP/FAIL, or a note for OK */
	size_t why_len;
};

struct bench_path {
	const char *name;  /* short id: "asm", "pthread", "raw-ring", ... */
	enum bench_class cls;
	const char *what;  /* one line for --help and the table legend */
	/* Run once; fill *s.  Returns BENCH_OK, or SKIP/FAIL with ctx->why. */
	int (*run)(struct bench_ctx *ctx, struct bench_sample *s);
	/* Optional: called once in the child before any run; may SKIP. */
	int (*setup)(struct bench_ctx *ctx);
	unsigned max_reps;    /* 0: no limit beyond the parameters */
	bool no_warmup;       /* the run is its own sample (e.g. extrapolated) */
	bool one_cpu;         /* keeps exactly one CPU busy: CPU time below wall
	                         time means the machine took the CPU away */
	bool io_uring;        /* needs io_uring (ursa_run or a raw ring): not run
	                         where the kernel refuses it */
};

/* A target: the row `a` against the row `b` on a metric, or (b NULL) the
 * row `a` alone against an absolute bound. */
enum bench_metric {
	BENCH_M_OPS,
	BENCH_M_WALL,
	BENCH_M_RSS,
	BENCH_M_RSS_KIB_PER_OP, /* absolute: peak RSS over ops, KiB */
	BENCH_M_RSS_MIB,        /* absolute: the RSS column, MiB */
	BENCH_M_SRV_CPU, /* server CPU per op (w->server_cpu workloads) */
	BENCH_M_NS_OP,   /* wall time per op (targets on one row: b NULL) */
	BENCH_M_CPU_SHARE, /* CPU time per op-second: cpu s / (ops/s x wall s) */
};
struct bench_target {
	const char *a, *b;      /* path names; b NULL: a's own value against goal */
	enum bench_metric metric;
	double goal;            /* a/b (ops) or b/a (wall, rss) must be >= goal;
	                           for "within", see `at_most`; with b NULL, a's
	                           cost (ns, a share, KiB per op or MiB) against
	                           goal */
	bool at_most;           /* goal is an upper bound on a's cost over b's */
	const char *text;       /* what the target says */
	unsigned long at_tasks; /* non-zero: the target is set at this task count */
};

struct bench_workload {
	const char *name;
	const char *summary;  /* one line */
	const char *help;     /* longer text for --help */
	const char *unit;     /* what one op is: "switch", "sleep", ... */
	bool micro;           /* calibrate iterations to --min-time */
	bool latency;         /* the table shows p50/p99 (else ns/op) */
	bool in_default;      /* part of the default suite */
	unsigned long tasks;  /* this preset's task count (0: --tasks/default) */
	bool server_cpu;      /* rows carry srv_cpu_s/client_cpu_s: the table
	                         shows the server's CPU per op and how busy the
	                         load generator was */
	const char *baseline; /* path the ratio column divides by */
	const struct bench_path *paths;
	unsigned npaths;
	const struct bench_target *targets;
	unsigned ntargets;
	/* Optional: run in the harness before the first path (e.g. make the
	 * data file; children inherit what it sets) and after the last.  A
	 * prepare that fails makes every row "cannot run" with its reason. */
	int (*prepare)(const struct bench_params *p, const struct bench_workload *w, char *why,
	               size_t len);
	void (*cleanup)(const struct bench_params *p, const struct bench_workload *w);
	/* Describe the parameters this run uses (for the header and JSON):
	 * writes "key": value pairs, comma-separated, JSON-ready. */
	void (*describe)(const struct bench_params *p, const struct bench_workload *w, char *buf,
	                 size_t len);
};

/* -------------------------------------------------------------- helpers */

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);
/* User + system CPU seconds of this process (every thread). */
double bench_cpu(void);

/* A measurement in progress: bench_meter_start, the work, bench_meter_stop. */
struct bench_meter {
	double wall0, cpu0;
};
void bench_meter_start(struct bench_meter *m);
void bench_meter_stop(const struct bench_meter *m, struct bench_sample *s);

/* Write a reason (printf-style) into ctx->why and return `status`. */
int bench_why(struct bench_ctx *ctx, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The runtime's counters (ursa_stats, every core), taken in a task at the
 * end of a ring path's run; st->version stays 0 if they could not be. */
void bench_stats_take(struct ursa_stats *st);
/* Append to ctx->why the counters that explain a ring row, per op of the
 * row (ops): loop turns and task switches, SQEs per submit, the share of
 * file ops served inline, cross-core wakes, time asleep in the kernel. */
void bench_stats_note(struct bench_ctx *ctx, const struct ursa_stats *st, double ops);

/* Percentiles of n latencies in nanoseconds (sorted in place). */
void bench_lat_from_ns(struct bench_lat *l, uint32_t *lat_ns_or_us, size_t n, double unit_us);

/* Pin the calling thread to the i-th CPU of the process's affinity mask. */
int bench_pin_self(unsigned i);
/* CPUs in the process's affinity mask. */
unsigned bench_ncpus(void);

/* The options every ursa path runs with: `cores` workers, pinned unless
 * --no-pin (set once by main, before any path starts). */
void bench_set_pin(bool pin);
struct ursa_opts bench_ursa_opts(unsigned cores);

/* How many threads this process may make now, and which limit binds
 * (static string). */
unsigned long bench_thread_limit(const char **why);

/* The effective task count of a workload under these parameters. */
unsigned long bench_tasks(const struct bench_params *p, const struct bench_workload *w);

/* Stop the compiler from deleting work whose result is unused. */
static inline void bench_keep(const void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* ------------------------------------------------ harness and reporting */

/* The machine and build, printed first and stored with every JSON row. */
struct bench_config {
	char version[64], git[64], compiler[96], buildtype[64], sanitize[64];
	char fiber[32], ring[256], cpu_model[128], kernel[200], python[64];
	unsigned cpus;
	double mem_gib;
	double load1;         /* 1-minute load average when the run began */
	bool pin;             /* ursa's workers pinned (--no-pin: not) */
};

/* One row of a table: a path of a workload, summarised over its reps. */
#define BENCH_MAX_REPS 64
struct bench_row {
	const struct bench_workload *w;
	const struct bench_path *path;
	int status;               /* enum bench_status */
	char why[512];             /* SKIP/FAIL: the reason; OK: a note, or "" */
	unsigned nreps;
	struct bench_sample reps[BENCH_MAX_REPS];
	uint64_t iters;           /* micro: calibrated iterations per rep */
	/* Summary (valid when status == BENCH_OK and nreps > 0). */
	double ops;               /* operations per rep (median rep) */
	double ops_s, ops_s_min, ops_s_max;
	double wall_s, wall_s_min, wall_s_max;
	double cpu_s;
	/* w->server_cpu: server CPU µs per op (median, min, max over the reps)
	 * and the load generator's CPU over its wall time (median). */
	double srv_us_op, srv_us_op_min, srv_us_op_max;
	double client_busy;
	long rss_kib;             /* the largest peak over the reps */
	struct bench_lat lat;     /* medians over the reps */
	bool extrapolated;
	double ratio;             /* ops_s over the baseline's; 0: none */
};

/* report.c */
void bench_print_config(const struct bench_config *c, const struct bench_params *p);
void bench_print_table(const struct bench_workload *w, const struct bench_params *p,
                       struct bench_row *rows, unsigned n);
int bench_write_json(const char *file, const struct bench_config *c,
                     const struct bench_params *p, struct bench_row *rows, unsigned n);
int bench_write_svg(const char *file, const struct bench_config *c, struct bench_row *rows,
                    unsigned n);
const char *bench_class_name(enum bench_class c);
/* Evaluate target t over the rows of its workload: 1 met, 0 missed, -1
 * not measured; *value is the measured ratio. */
int bench_target_eval(const struct bench_target *t, const struct bench_row *rows, unsigned n,
                      double *value);

/* Latencies of one worker: the last `cap` operations, in nanoseconds. */
struct bench_latbuf {
	uint32_t *v;
	size_t cap, n;
	uint64_t seen;
};
int bench_latbuf_init(struct bench_latbuf *b, size_t cap);
static inline void bench_latbuf_add(struct bench_latbuf *b, double seconds)
{
	double ns = seconds * 1e9;

	if (b->cap)
		b->v[b->seen++ % b->cap] = ns >= 4e9 ? 4000000000u : (uint32_t)ns;
	if (b->n < b->cap)
		b->n++;
}
/* Percentiles over several workers' buffers; frees them. */
void bench_latbuf_merge(struct bench_lat *l, struct bench_latbuf *bufs, unsigned n);

/* Seconds a repetition of an I/O workload runs (short while warming). */
static inline double bench_io_time(const struct bench_ctx *ctx)
{
	return ctx->warming ? 0.2 : ctx->p->io_time_s;
}

/* The workloads (one file each) and the table bench.c runs them from. */
extern const struct bench_workload bench_wl_switch, bench_wl_spawn, bench_wl_yield,
	bench_wl_sleep, bench_wl_sleep_100k, bench_wl_sleep_1m, bench_wl_file_cached,
	bench_wl_file_direct, bench_wl_file_write, bench_wl_file_small, bench_wl_net_echo,
	bench_wl_net_echo_500, bench_wl_net_connect, bench_wl_lock, bench_wl_lock_2core,
	bench_wl_queue, bench_wl_future, bench_wl_idle, bench_wl_tick;

#endif /* BENCH_H */
