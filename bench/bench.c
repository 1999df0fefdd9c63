/* SPDX-License-Identifier: MIT */
/*
 * bench.c: the `bench` harness: command line, configuration, and running
 * every path of every chosen workload in a child process of its own (so its
 * peak RSS is its own and a crash or a hang costs one row, not the run):
 * warm-up (calibration for micro-benchmarks), repetitions, and the summary
 * (median, min, max) the tables and the JSON are made from.
 */
#include "bench.h"
#include "bench_version.h"

#include <ursa.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every workload, in the order of the default suite and of --help. */
static const struct bench_workload *const workloads[] = {
	&bench_wl_switch, &bench_wl_spawn, &bench_wl_yield,
	&bench_wl_lock, &bench_wl_lock_2core, &bench_wl_queue, &bench_wl_future,
	&bench_wl_idle, &bench_wl_tick, &bench_wl_sleep,  &bench_wl_sleep_100k, &bench_wl_sleep_1m,
	&bench_wl_file_cached, &bench_wl_file_direct, &bench_wl_file_write, &bench_wl_file_small,
	&bench_wl_net_echo, &bench_wl_net_echo_500, &bench_wl_net_connect,
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* ------------------------------------------------------------ parameters */

static void defaults(struct bench_params *p, bool quick)
{
	p->quick = quick;
	p->reps = quick ? 3 : 5;
	p->warmup = 1;
	p->min_time_s = quick ? 0.1 : 0.5;
	p->budget_s = quick ? 6 : 60;
	p->timeout_s = 900;
	p->tasks = 0;
	p->sleep_s = 1.0;
	p->idle_s = 10.0;
	p->cores = 0;
	p->pin = true;
	p->thread_stack_kib = 64;
	p->max_threads = 0;
	p->sync_sample = 2;
	p->python = "python3";
	p->classes = (1u << BENCH_NCLASS) - 1;
	p->io_time_s = quick ? 0.25 : 1;
	p->dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	p->file_mib = 1024;
	p->inflight = 32;
	p->files = 1000;
	p->sync_every = 32;
	p->writers = 8;
	p->conns = 0; /* each net workload's own default */
	p->msg_size = 64;
	p->io_uring_refused = NULL; /* gather_config() decides */
}

enum {
	OPT_JSON = 256, OPT_SVG, OPT_PATHS, OPT_REPS, OPT_WARMUP, OPT_MIN_TIME, OPT_BUDGET,
	OPT_TIMEOUT, OPT_TASKS, OPT_SLEEP, OPT_IDLE, OPT_CORES, OPT_THREAD_STACK, OPT_MAX_THREADS,
	OPT_SYNC_SAMPLE, OPT_PYTHON, OPT_LIST, OPT_IO_TIME, OPT_DIR, OPT_FILE_SIZE, OPT_INFLIGHT,
	OPT_FILES, OPT_SYNC_EVERY, OPT_WRITERS, OPT_CONNS, OPT_MSG_SIZE, OPT_NO_PIN,
};

static const struct option longopts[] = {
	{"help", no_argument, NULL, 'h'},
	{"quick", no_argument, NULL, 'q'},
	{"list", no_argument, NULL, OPT_LIST},
	{"json", required_argument, NULL, OPT_JSON},
	{"svg", required_argument, NULL, OPT_SVG},
	{"paths", required_argument, NULL, OPT_PATHS},
	{"reps", required_argument, NULL, OPT_REPS},
	{"warmup", required_argument, NULL, OPT_WARMUP},
	{"min-time", required_argument, NULL, OPT_MIN_TIME},
	{"budget", required_argument, NULL, OPT_BUDGET},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"tasks", required_argument, NULL, OPT_TASKS},
	{"sleep", required_argument, NULL, OPT_SLEEP},
	{"idle", required_argument, NULL, OPT_IDLE},
	{"cores", required_argument, NULL, OPT_CORES},
	{"thread-stack", required_argument, NULL, OPT_THREAD_STACK},
	{"max-threads", required_argument, NULL, OPT_MAX_THREADS},
	{"sync-sample", required_argument, NULL, OPT_SYNC_SAMPLE},
	{"python", required_argument, NULL, OPT_PYTHON},
	{"io-time", required_argument, NULL, OPT_IO_TIME},
	{"dir", required_argument, NULL, OPT_DIR},
	{"file-size", required_argument, NULL, OPT_FILE_SIZE},
	{"inflight", required_argument, NULL, OPT_INFLIGHT},
	{"files", required_argument, NULL, OPT_FILES},
	{"sync-every", required_argument, NULL, OPT_SYNC_EVERY},
	{"writers", required_argument, NULL, OPT_WRITERS},
	{"conns", required_argument, NULL, OPT_CONNS},
	{"msg-size", required_argument, NULL, OPT_MSG_SIZE},
	{"no-pin", no_argument, NULL, OPT_NO_PIN},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
	const struct bench_params d0 = {0};
	struct bench_params d = d0;

	defaults(&d, false);
	fprintf(f,
	        "usage: bench [OPTIONS] [WORKLOAD...]\n"
	        "\n"
	        "Runs each workload three ways on this machine and prints them side by side:\n"
	        "  sync      one thread, plain blocking calls, one operation at a time\n"
	        "  threaded  the same blocking calls on threads (a thread per task, capped where\n"
	        "            the machine cannot make more, or a pool)\n"
	        "  ring      ursa tasks, every wait on io_uring\n"
	        "  ref       floors and outside references (bare register switch, raw liburing,\n"
	        "            Python asyncio)\n"
	        "Each path runs in its own child process: warm-up, then --reps repetitions;\n"
	        "tables show the median with [min .. max], CPU time, peak RSS of the path's\n"
	        "process, and the ratio to the workload's baseline path.  Every path checks\n"
	        "that it did the work (counts, checksums); a path that cannot run says why.\n"
	        "\n"
	        "With no WORKLOAD, the default suite runs:");
	for (unsigned i = 0; i < NWORKLOADS; i++)
		if (workloads[i]->in_default)
			fprintf(f, " %s", workloads[i]->name);
	fprintf(f, ".\n\nWorkloads:\n");
	for (unsigned i = 0; i < NWORKLOADS; i++) {
		const struct bench_workload *w = workloads[i];

		fprintf(f, "  %-11s %s%s\n", w->name, w->summary,
		        w->in_default ? "" : " (not in the default suite)");
		/* Presets of one workload share its text and paths: say them once. */
		if (i == 0 || strcmp(workloads[i - 1]->help, w->help) != 0)
			fputs(w->help, f);
		if (i > 0 && workloads[i - 1]->paths == w->paths)
			continue;
		for (unsigned j = 0; j < w->npaths; j++)
			fprintf(f, "      %-8s %-16s %s\n", bench_class_name(w->paths[j].cls),
			        w->paths[j].name, w->paths[j].what);
	}
	fprintf(f,
	        "\nOptions:\n"
	        "  -q, --quick         shorter measurements (not smaller sizes): --reps 3,\n"
	        "                      --min-time 0.1, --budget 6, --io-time 0.25; the default\n"
	        "                      suite takes about a minute\n"
	        "  --paths LIST        comma-separated classes to run: sync,threaded,ring,ref\n"
	        "                      [all]\n"
	        "  --json FILE         write every row as JSON (a list of objects)\n"
	        "  --svg FILE          write a bar chart of every workload (SVG)\n"
	        "  --reps N            measured repetitions per path [%u]\n"
	        "  --warmup N          warm-up runs before measuring [%u]\n"
	        "  --min-time S        micro-benchmarks: seconds per repetition [%g]\n"
	        "  --budget S          stop repeating a path once it has used S seconds (at\n"
	        "                      least one repetition runs; the table shows how many) [%g]\n"
	        "  --timeout S         kill a path that runs longer than S seconds [%g]\n"
	        "  --tasks N           sleep: concurrent tasks [10000]; the presets sleep-100k\n"
	        "                      and sleep-1m fix their own\n"
	        "  --sleep S           sleep: seconds each task sleeps [%g]\n"
	        "  --idle S            idle: seconds every task sleeps [%g]\n"
	        "  --cores N           sleep: cores (rings) of the ring and raw-ring paths [every\n"
	        "                      CPU]; spawn and yield always use one core\n"
	        "  --thread-stack KIB  thread-per-task paths: stack per thread [%u]\n"
	        "  --max-threads N     cap thread-per-task paths at N threads [what the machine\n"
	        "                      allows: pid_max, threads-max, max_map_count, ulimit -u]\n"
	        "  --sync-sample N     sleep: sequential sleeps the sync path measures before\n"
	        "                      extrapolating to N tasks [%u]\n"
	        "  --python EXE        interpreter for the asyncio rows; \"\" skips them [%s]\n"
	        "  --io-time S         file and net workloads: seconds per repetition [1; --quick\n"
	        "                      0.25]\n"
	        "  --dir DIR           file workloads: where their files go [$TMPDIR or /var/tmp]\n"
	        "  --file-size MIB     file-cached, file-direct: size of the data file [1024]\n"
	        "  --inflight N        file workloads: operations in flight (ring tasks,\n"
	        "                      threads, fio iodepth) [32]\n"
	        "  --files N           file-small: how many 4 KiB files [1000]\n"
	        "  --writers N         file-write: files appended to at once [8]\n"
	        "  --sync-every N      file-write: fdatasync after every N appends to a file [32]\n"
	        "  --conns N           net-echo, net-connect: client connections [50; net-echo-500:\n"
	        "                      500]\n"
	        "  --msg-size B        net-echo: bytes per message [64]\n"
	        "  --no-pin            leave ursa's workers unpinned (the library's default);\n"
	        "                      bench pins them, as the raw-ring and thread ping-pong\n"
	        "                      paths pin their threads, to measure a dedicated machine\n"
	        "  --list              list the workloads and exit\n"
	        "  -h, --help          this text\n"
	        "\nExit status: 1 if a path failed its check, crashed or timed out; a path that\n"
	        "cannot run on this machine (and says why) is not a failure.\n",
	        d.reps, d.warmup, d.min_time_s, d.budget_s, d.timeout_s, d.sleep_s, d.idle_s,
	        d.thread_stack_kib, d.sync_sample, d.python);
}

static double parse_num(const char *opt, const char *s, double lo)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo) || !isfinite(v)) {
		fprintf(stderr, "bench: %s: not a number >= %g: '%s'\n", opt, lo, s);
		exit(2);
	}
	return v;
}

static unsigned parse_classes(const char *s)
{
	unsigned mask = 0;
	char *copy = strdup(s), *save = NULL;

	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned c;

		for (c = 0; c < BENCH_NCLASS; c++)
			if (strcmp(tok, bench_class_name((enum bench_class)c)) == 0)
				break;
		if (c == BENCH_NCLASS) {
			fprintf(stderr, "bench: --paths: unknown path '%s' (sync, threaded, ring, ref)\n",
			        tok);
			exit(2);
		}
		mask |= 1u << c;
	}
	free(copy);
	return mask;
}

/* ---------------------------------------------------------- configuration */

static void read_first(const char *cmd, char *buf, size_t len)
{
	FILE *f = popen(cmd, "r");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	pclose(f);
}

static void gather_config(struct bench_config *c, struct bench_params *p)
{
	const char *feat = ursa_features(), *s;
	struct utsname u;
	FILE *f;
	char line[512];
	bool sq, defer, coop, flag;

	snprintf(c->version, sizeof(c->version), "%d.%d.%d", URSA_VERSION_MAJOR,
	         URSA_VERSION_MINOR, URSA_VERSION_PATCH);
	snprintf(c->git, sizeof(c->git), "%s", BENCH_GIT_REVISION);
	snprintf(c->compiler, sizeof(c->compiler), "%s %s", BENCH_CC_ID, BENCH_CC_VERSION);
	snprintf(c->buildtype, sizeof(c->buildtype), "%s (-O%s)", BENCH_BUILDTYPE, BENCH_OPTIMIZATION);
	snprintf(c->sanitize, sizeof(c->sanitize), "%s", BENCH_SANITIZE);
	s = strstr(feat, "fiber backend: ");
	snprintf(c->fiber, sizeof(c->fiber), "%s", s ? s + 15 : "unknown");
	c->fiber[strcspn(c->fiber, "\n")] = '\0';
	if (strstr(feat, "unavailable")) {
		/* "io_uring: unavailable (reason)\nlikely cause: ...\n": keep both
		 * lines' words on one. */
		s = strstr(feat, "unavailable");
		snprintf(c->ring, sizeof(c->ring), "%.*s; %s", (int)strcspn(s, "\n"), s,
		         strchr(s, '\n') ? strchr(s, '\n') + 1 : "");
		c->ring[strcspn(c->ring, "\n")] = '\0';
		p->io_uring_refused = c->ring;
	} else {
		sq = strstr(feat, "SINGLE_ISSUER=yes") != NULL;
		defer = strstr(feat, "DEFER_TASKRUN=yes") != NULL;
		coop = strstr(feat, "COOP_TASKRUN=yes") != NULL;
		flag = strstr(feat, "TASKRUN_FLAG=yes") != NULL;
		s = strstr(feat, "stack guards: ");
		snprintf(c->ring, sizeof(c->ring), "%s%s%s%s%s; MSG_RING %s; stack guards %.*s",
		         sq ? "SINGLE_ISSUER" : "", defer ? " DEFER_TASKRUN" : "",
		         coop ? " COOP_TASKRUN" : "", flag ? " TASKRUN_FLAG" : "",
		         !sq && !defer && !coop ? "no optional setup flags" : "",
		         strstr(feat, "MSG_RING=yes") ? "yes" : "no", s ? (int)strcspn(s + 14, "\n") : 7,
		         s ? s + 14 : "unknown");
	}
	c->cpus = bench_ncpus();
	c->pin = p->pin;
	snprintf(c->cpu_model, sizeof(c->cpu_model), "unknown");
	if ((f = fopen("/proc/cpuinfo", "r"))) {
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');

			if (colon && strncmp(line, "model name", 10) == 0) {
				snprintf(c->cpu_model, sizeof(c->cpu_model), "%s", colon + 2);
				c->cpu_model[strcspn(c->cpu_model, "\n")] = '\0';
				break;
			}
		}
		fclose(f);
	}
	if (uname(&u) == 0)
		snprintf(c->kernel, sizeof(c->kernel), "%s %s %s", u.sysname, u.release, u.machine);
	c->mem_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1073741824.0;
	if (getloadavg(&c->load1, 1) != 1)
		c->load1 = -1;
	c->python[0] = '\0';
	if (p->python && *p->python && !strchr(p->python, '\'')) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd),
		         "'%s' -c 'import asyncio, sys; print(sys.version.split()[0])' 2>/dev/null",
		         p->python);
		read_first(cmd, c->python, sizeof(c->python));
	}
	if (!c->python[0])
		p->python = "";
}

/* -------------------------------------------------------------- the child */

/* Messages from a path's child to the harness, one write each (< PIPE_BUF,
 * so they are atomic). */
enum { MSG_PROGRESS = 1, MSG_SAMPLE, MSG_END };
struct msg {
	int kind;
	int status;         /* MSG_END */
	unsigned rep, reps; /* MSG_PROGRESS */
	uint64_t iters;     /* MSG_END */
	struct bench_sample s;
	char text[512];
};

static void send_msg(int fd, const struct msg *m)
{
	ssize_t n;

	do
		n = write(fd, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
}

/* Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0). */
static bool reset_peak_rss(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

static long peak_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int run_once(struct bench_ctx *ctx, const struct bench_path *path, struct bench_sample *s)
{
	memset(s, 0, sizeof(*s));
	ctx->why[0] = '\0';
	return path->run(ctx, s);
}

/* Choose iterations so a repetition takes about --min-time; the rounds are
 * the warm-up. */
static int calibrate(struct bench_ctx *ctx, const struct bench_path *path)
{
	const double want = ctx->p->min_time_s;
	struct bench_sample s;
	unsigned rounds = 0;
	double f;
	int rc;

	ctx->warming = true;
	ctx->iters = 64;
	for (;;) {
		rc = run_once(ctx, path, &s);
		if (rc != BENCH_OK)
			return rc;
		rounds++;
		if (s.wall_s >= 0.25 * want || ctx->iters >= (1ull << 40))
			break;
		f = s.wall_s > 0 ? 0.4 * want / s.wall_s : 16;
		f = f > 16 ? 16 : f < 2 ? 2 : f;
		ctx->iters = (uint64_t)((double)ctx->iters * f);
	}
	f = want / (s.wall_s > 1e-9 ? s.wall_s : 1e-9);
	ctx->iters = (uint64_t)((double)ctx->iters * f);
	if (ctx->iters < 1)
		ctx->iters = 1;
	for (; rounds < ctx->p->warmup + 1; rounds++) {
		rc = run_once(ctx, path, &s);
		if (rc != BENCH_OK)
			return rc;
	}
	ctx->warming = false;
	return BENCH_OK;
}

static void child_main(const struct bench_params *p, const struct bench_workload *w,
                       const struct bench_path *path, int fd)
{
	char why[512] = "";
	struct bench_ctx ctx = {.p = p, .w = w, .why = why, .why_len = sizeof(why)};
	struct msg m;
	unsigned reps = p->reps;
	double t0, last = 0;
	uint64_t check0 = 0;
	bool have_hwm;
	int rc = BENCH_OK;

	if (path->max_reps && reps > path->max_reps)
		reps = path->max_reps;
	if (reps > BENCH_MAX_REPS)
		reps = BENCH_MAX_REPS;
	memset(&m, 0, sizeof(m));
	m.kind = MSG_PROGRESS;
	m.reps = reps;
	send_msg(fd, &m);

	if (path->setup)
		rc = path->setup(&ctx);
	if (rc == BENCH_OK && w->micro) {
		rc = calibrate(&ctx, path);
	} else if (rc == BENCH_OK && !path->no_warmup) {
		ctx.warming = true;
		ctx.iters = 1;
		for (unsigned i = 0; i < p->warmup && rc == BENCH_OK; i++) {
			struct bench_sample s;

			rc = run_once(&ctx, path, &s);
		}
		ctx.warming = false;
	}
	t0 = bench_now();
	for (unsigned r = 0; r < reps && rc == BENCH_OK; r++) {
		double used = bench_now() - t0;

		/* Past the budget (or about to be): stop, keeping what we have. */
		if (r > 0 && used + last > p->budget_s)
			break;
		m.kind = MSG_PROGRESS;
		m.rep = r + 1;
		send_msg(fd, &m);
		have_hwm = reset_peak_rss();
		rc = run_once(&ctx, path, &m.s);
		if (rc != BENCH_OK)
			break;
		if (m.s.rss_kib == 0)
			m.s.rss_kib = have_hwm ? peak_rss_kib() : 0;
		if (r == 0)
			check0 = m.s.check;
		else if (m.s.check != check0) {
			rc = bench_why(&ctx, BENCH_FAIL,
			               "check failed: repetition %u gave checksum %llu, the first %llu",
			               r + 1, (unsigned long long)m.s.check,
			               (unsigned long long)check0);
			break;
		}
		last = m.s.wall_s;
		m.kind = MSG_SAMPLE;
		send_msg(fd, &m);
	}
	memset(&m, 0, sizeof(m));
	m.kind = MSG_END;
	m.status = rc;
	m.iters = ctx.iters;
	snprintf(m.text, sizeof(m.text), "%s", why);
	send_msg(fd, &m);
}

/* ------------------------------------------------------------- the parent */

static bool progress_on;

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	va_list ap;

	if (!progress_on)
		return;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

static void progress_clear(void)
{
	if (progress_on) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void summarise(struct bench_row *r)
{
	double v[BENCH_MAX_REPS];
	unsigned n = r->nreps;

	if (r->status != BENCH_OK || n == 0)
		return;
	for (unsigned i = 0; i < n; i++)
		v[i] = r->reps[i].wall_s > 0 ? r->reps[i].ops / r->reps[i].wall_s : 0;
	r->ops_s = median(v, n);
	r->ops_s_min = v[0];
	r->ops_s_max = v[n - 1];
	for (unsigned i = 0; i < n; i++)
		v[i] = r->reps[i].wall_s;
	r->wall_s = median(v, n);
	r->wall_s_min = v[0];
	r->wall_s_max = v[n - 1];
	for (unsigned i = 0; i < n; i++)
		v[i] = r->reps[i].cpu_s;
	r->cpu_s = median(v, n);
	if (r->w->server_cpu) {
		for (unsigned i = 0; i < n; i++)
			v[i] = r->reps[i].ops > 0 ? 1e6 * r->reps[i].srv_cpu_s / r->reps[i].ops : 0;
		r->srv_us_op = median(v, n);
		r->srv_us_op_min = v[0];
		r->srv_us_op_max = v[n - 1];
		for (unsigned i = 0; i < n; i++)
			v[i] = r->reps[i].wall_s > 0 ? r->reps[i].client_cpu_s / r->reps[i].wall_s : 0;
		r->client_busy = median(v, n);
	}
	for (unsigned i = 0; i < n; i++)
		v[i] = r->reps[i].ops;
	r->ops = median(v, n);
	r->rss_kib = 0;
	r->extrapolated = false;
	for (unsigned i = 0; i < n; i++) {
		if (r->reps[i].rss_kib > r->rss_kib)
			r->rss_kib = r->reps[i].rss_kib;
		r->extrapolated |= r->reps[i].extrapolated;
	}
	r->lat.valid = r->reps[0].lat.valid;
	if (r->lat.valid) {
		for (unsigned i = 0; i < n; i++)
			v[i] = r->reps[i].lat.p50_us;
		r->lat.p50_us = median(v, n);
		for (unsigned i = 0; i < n; i++)
			v[i] = r->reps[i].lat.p99_us;
		r->lat.p99_us = median(v, n);
		r->lat.max_us = 0;
		for (unsigned i = 0; i < n; i++)
			if (r->reps[i].lat.max_us > r->lat.max_us)
				r->lat.max_us = r->reps[i].lat.max_us;
	}
}

static void run_row(const struct bench_params *p, const struct bench_workload *w,
                    const struct bench_path *path, struct bench_row *r)
{
	int fds[2], st = 0;
	pid_t pid;
	struct msg m;
	bool ended = false;
	unsigned rep = 0, reps = 0;
	double t0 = bench_now();
	struct rusage ru;

	memset(r, 0, sizeof(*r));
	r->w = w;
	r->path = path;
	r->status = BENCH_FAIL;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(r->why, sizeof(r->why), "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(r->why, sizeof(r->why), "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(p, w, path, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		double el = bench_now() - t0;
		ssize_t n;

		if (el > p->timeout_s) {
			kill(pid, SIGKILL);
			snprintf(r->why, sizeof(r->why), "timed out after %.0f s (--timeout)", el);
			break;
		}
		if (reps)
			progress("  %s %s/%s: %s %u/%u  %.1f s", w->name, bench_class_name(path->cls),
			         path->name, rep ? "rep" : "warm-up", rep ? rep : 0, reps, el);
		if (poll(&pfd, 1, 250) <= 0)
			continue;
		n = read(fds[0], &m, sizeof(m));
		if (n <= 0)
			break;
		if (n != (ssize_t)sizeof(m))
			continue;
		switch (m.kind) {
		case MSG_PROGRESS:
			rep = m.rep;
			reps = m.reps;
			break;
		case MSG_SAMPLE:
			if (r->nreps < BENCH_MAX_REPS)
				r->reps[r->nreps++] = m.s;
			break;
		case MSG_END:
			ended = true;
			r->status = m.status;
			r->iters = m.iters;
			snprintf(r->why, sizeof(r->why), "%s", m.text);
			break;
		}
	}
	close(fds[0]);
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	progress_clear();
	if (!ended && !r->why[0]) {
		if (WIFSIGNALED(st))
			snprintf(r->why, sizeof(r->why), "crashed: %s (signal %d)",
			         strsignal(WTERMSIG(st)), WTERMSIG(st));
		else
			snprintf(r->why, sizeof(r->why), "exited with status %d before reporting",
			         WEXITSTATUS(st));
	}
	if (r->status == BENCH_OK && r->nreps == 0) {
		r->status = BENCH_FAIL;
		snprintf(r->why, sizeof(r->why), "no repetition completed");
	}
	summarise(r);
}

static void run_workload(const struct bench_params *p, const struct bench_workload *w,
                         struct bench_row *rows, unsigned *nrows)
{
	struct bench_row *first = rows + *nrows;
	unsigned n = 0;
	const struct bench_row *base = NULL;

	char why[256] = "";
	int prep = w->prepare ? w->prepare(p, w, why, sizeof(why)) : BENCH_OK;

	for (unsigned i = 0; i < w->npaths; i++) {
		if (!(p->classes & (1u << w->paths[i].cls)))
			continue;
		if (p->io_uring_refused && w->paths[i].io_uring) {
			/* Not started: its child would only print the refusal. */
			memset(&first[n], 0, sizeof(first[n]));
			first[n].w = w;
			first[n].path = &w->paths[i];
			first[n].status = BENCH_SKIP;
			snprintf(first[n].why, sizeof(first[n].why), "io_uring is refused here (see the "
			         "header); this path needs it");
		} else if (prep != BENCH_OK) {
			memset(&first[n], 0, sizeof(first[n]));
			first[n].w = w;
			first[n].path = &w->paths[i];
			first[n].status = prep;
			snprintf(first[n].why, sizeof(first[n].why), "%s", why);
		} else {
			run_row(p, w, &w->paths[i], &first[n]);
		}
		n++;
	}
	if (w->cleanup)
		w->cleanup(p, w);
	for (unsigned i = 0; i < n; i++)
		if (w->baseline && strcmp(first[i].path->name, w->baseline) == 0 &&
		    first[i].status == BENCH_OK)
			base = &first[i];
	for (unsigned i = 0; i < n; i++)
		if (base && first[i].status == BENCH_OK && base->ops_s > 0)
			first[i].ratio = first[i].ops_s / base->ops_s;
	bench_print_table(w, p, first, n);
	*nrows += n;
}

int main(int argc, char **argv)
{
	struct bench_params p;
	struct bench_config cfg;
	const char *json = NULL, *svg = NULL;
	const struct bench_workload *chosen[NWORKLOADS];
	struct bench_row *rows;
	unsigned nchosen = 0, nrows = 0, maxrows = 0;
	int c, status = 0;
	bool quick = false;

	/* --quick changes defaults that later options may override. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0 || strcmp(argv[i], "-q") == 0)
			quick = true;
	defaults(&p, quick);
	while ((c = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'q':
			break;
		case OPT_LIST:
			for (unsigned i = 0; i < NWORKLOADS; i++)
				printf("%-11s %s%s\n", workloads[i]->name, workloads[i]->summary,
				       workloads[i]->in_default ? " [default]" : "");
			return 0;
		case OPT_JSON: json = optarg; break;
		case OPT_SVG: svg = optarg; break;
		case OPT_PATHS: p.classes = parse_classes(optarg); break;
		case OPT_REPS: p.reps = (unsigned)parse_num("--reps", optarg, 1); break;
		case OPT_WARMUP: p.warmup = (unsigned)parse_num("--warmup", optarg, 0); break;
		case OPT_MIN_TIME: p.min_time_s = parse_num("--min-time", optarg, 0.001); break;
		case OPT_BUDGET: p.budget_s = parse_num("--budget", optarg, 0); break;
		case OPT_TIMEOUT: p.timeout_s = parse_num("--timeout", optarg, 1); break;
		case OPT_TASKS: p.tasks = (unsigned long)parse_num("--tasks", optarg, 1); break;
		case OPT_SLEEP: p.sleep_s = parse_num("--sleep", optarg, 0.000001); break;
		case OPT_IDLE: p.idle_s = parse_num("--idle", optarg, 0.001); break;
		case OPT_CORES: p.cores = (unsigned)parse_num("--cores", optarg, 0); break;
		case OPT_THREAD_STACK:
			p.thread_stack_kib = (unsigned)parse_num("--thread-stack", optarg, 16);
			break;
		case OPT_MAX_THREADS:
			p.max_threads = (unsigned long)parse_num("--max-threads", optarg, 1);
			break;
		case OPT_SYNC_SAMPLE:
			p.sync_sample = (unsigned)parse_num("--sync-sample", optarg, 1);
			break;
		case OPT_PYTHON: p.python = optarg; break;
		case OPT_IO_TIME: p.io_time_s = parse_num("--io-time", optarg, 0.05); break;
		case OPT_DIR: p.dir = optarg; break;
		case OPT_FILE_SIZE: p.file_mib = (unsigned)parse_num("--file-size", optarg, 1); break;
		case OPT_INFLIGHT: p.inflight = (unsigned)parse_num("--inflight", optarg, 1); break;
		case OPT_FILES: p.files = (unsigned)parse_num("--files", optarg, 1); break;
		case OPT_SYNC_EVERY:
			p.sync_every = (unsigned)parse_num("--sync-every", optarg, 1);
			break;
		case OPT_WRITERS: p.writers = (unsigned)parse_num("--writers", optarg, 1); break;
		case OPT_CONNS: p.conns = (unsigned)parse_num("--conns", optarg, 1); break;
		case OPT_MSG_SIZE: p.msg_size = (unsigned)parse_num("--msg-size", optarg, 1); break;
		case OPT_NO_PIN: p.pin = false; break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (p.reps > BENCH_MAX_REPS)
		p.reps = BENCH_MAX_REPS;
	if (p.tasks > (1ul << 24)) {
		fprintf(stderr, "bench: --tasks: at most %lu\n", 1ul << 24);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		bool found = false;

		for (unsigned j = 0; j < NWORKLOADS; j++) {
			if (strcmp(argv[i], workloads[j]->name) == 0 || strcmp(argv[i], "all") == 0) {
				bool dup = false;

				for (unsigned k = 0; k < nchosen; k++)
					dup |= chosen[k] == workloads[j];
				if (!dup)
					chosen[nchosen++] = workloads[j];
				found = true;
			}
		}
		if (!found) {
			fprintf(stderr, "bench: unknown workload '%s'; `bench --list` lists them\n",
			        argv[i]);
			return 2;
		}
	}
	if (nchosen == 0)
		for (unsigned j = 0; j < NWORKLOADS; j++)
			if (workloads[j]->in_default)
				chosen[nchosen++] = workloads[j];

	(void)bench_ncpus(); /* remember the affinity mask before any path pins */
	bench_set_pin(p.pin);
	progress_on = isatty(STDERR_FILENO);
	setvbuf(stdout, NULL, _IOLBF, 0);
	gather_config(&cfg, &p);
	bench_print_config(&cfg, &p);
	if (p.io_uring_refused)
		printf("\nio_uring is refused on this machine: the ring paths (ursa, raw-ring, fio) "
		       "cannot run; the sync, threaded and other reference paths run so that you "
		       "still see this machine's baseline.  Likely cause and remedy: see the "
		       "io_uring line above.\n");

	for (unsigned i = 0; i < nchosen; i++)
		maxrows += chosen[i]->npaths;
	rows = calloc(maxrows ? maxrows : 1, sizeof(*rows));
	if (!rows) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < nchosen; i++)
		run_workload(&p, chosen[i], rows, &nrows);
	for (unsigned i = 0; i < nrows; i++)
		if (rows[i].status == BENCH_FAIL)
			status = 1;
	if (json && bench_write_json(json, &cfg, &p, rows, nrows) != 0)
		status = 1;
	if (svg && bench_write_svg(svg, &cfg, rows, nrows) != 0)
		status = 1;
	free(rows);
	return status;
}
