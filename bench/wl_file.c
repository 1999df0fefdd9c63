/* SPDX-License-Identifier: MIT */
/*
 * wl_file.c: the file workloads.  Each operation is written once against a
 * small table of calls (io_ops) with two implementations: plain blocking
 * syscalls (sync and threaded paths) and ursa's ring calls (ring path).
 * Drivers run the operation on one thread (sync), on --inflight threads
 * (threaded) or on --inflight ursa tasks spread over the cores (ring), each
 * for --io-time seconds, recording every operation's latency.  Every read is
 * checked against the block number written into the data, every append
 * against the file's final size, every statx against the file's size.
 *
 *   file-cached  4 KiB random preads from a file in the page cache
 *   file-direct  the same with O_DIRECT (skipped if the filesystem refuses)
 *   file-write   4 KiB appends to --writers files, fdatasync every
 *                --sync-every appends per file
 *   file-small   open, read, close and statx of one of --files 4 KiB files
 */
#include "bench.h"

#include <ursa.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define BLOCK 4096u
#define MAGIC 0x7572736162656e63ull /* "ursabenc" */

/* ------------------------------------------------------------- the calls */

struct io_ops {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*fdatasync)(int fd);
	int (*statx)(int dirfd, const char *path, int flags, unsigned mask, struct statx *st);
	/* open, pread, close of a path in one call (file-small), or NULL:
	 * the three calls above. */
	ssize_t (*pread_path)(int dirfd, const char *path, void *buf, size_t n, off_t off);
};

static int sys_open(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);

	return fd < 0 ? -errno : fd;
}
static int sys_close(int fd)
{
	return close(fd) < 0 ? -errno : 0;
}
static ssize_t sys_read(int fd, void *buf, size_t n)
{
	ssize_t r = read(fd, buf, n);

	return r < 0 ? -errno : r;
}
static ssize_t sys_pread(int fd, void *buf, size_t n, off_t off)
{
	ssize_t r = pread(fd, buf, n, off);

	return r < 0 ? -errno : r;
}
static ssize_t sys_write(int fd, const void *buf, size_t n)
{
	ssize_t r = write(fd, buf, n);

	return r < 0 ? -errno : r;
}
static int sys_fdatasync(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}
static int sys_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	return statx(dirfd, path, flags, mask, st) < 0 ? -errno : 0;
}

static const struct io_ops sys_io = {sys_open,  sys_close,     sys_read,  sys_pread,
                                     sys_write, sys_fdatasync, sys_statx, NULL};
/* The ring's small-file op is what an ursa program would write: open, read
 * and close as one linked chain (ursa_pread_path), then ursa_statx. */
static const struct io_ops ring_io = {ursa_open,  ursa_close,     ursa_read,  ursa_pread,
                                      ursa_write, ursa_fdatasync, ursa_statx, ursa_pread_path};

/* ------------------------------------------------------ what a run shares */

/* Set by prepare in the harness; the path children inherit it. */
static char data_path[PATH_MAX + 16]; /* file-cached, file-direct: made once per run */
static char data_dir[PATH_MAX];
static bool data_ok; /* data_path holds the whole file */
static char small_dir[PATH_MAX];  /* file-small, file-write */
static uint64_t data_blocks;
static char fs_note[160];

enum kind { K_CACHED, K_DIRECT, K_WRITE, K_SMALL };

static enum kind kind_of(const struct bench_workload *w);

struct worker {
	const struct io_ops *io;
	const struct bench_params *p;
	enum kind kind;
	unsigned id;
	int fd;               /* cached/direct: the data file; write: this worker's file */
	void *buf;            /* BLOCK bytes, BLOCK-aligned */
	uint64_t rng;
	double deadline;
	uint64_t ops, appends;
	int err;
	char what[96];        /* the failing call */
	struct bench_latbuf lat;
};

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* The contents of block b of a data file, or of small file b. */
static void fill_block(void *buf, uint64_t b)
{
	uint64_t *w = buf;

	for (unsigned i = 0; i < BLOCK / 8; i++)
		w[i] = (b ^ MAGIC) + i;
}

static int fail(struct worker *w, int rc, const char *what)
{
	w->err = rc;
	snprintf(w->what, sizeof(w->what), "%s", what);
	return rc;
}

/* One operation of the worker's kind.  0 or -errno. */
static int one_op(struct worker *w)
{
	const struct io_ops *io = w->io;

	switch (w->kind) {
	case K_CACHED:
	case K_DIRECT: {
		uint64_t b = next_rand(&w->rng) % data_blocks;
		ssize_t r = io->pread(w->fd, w->buf, BLOCK, (off_t)(b * BLOCK));

		if (r != (ssize_t)BLOCK)
			return fail(w, r < 0 ? (int)r : -EIO, "pread");
		if (*(uint64_t *)w->buf != (b ^ MAGIC))
			return fail(w, -EILSEQ, "pread returned the wrong block");
		return 0;
	}
	case K_WRITE: {
		ssize_t r;

		*(uint64_t *)w->buf = w->appends ^ MAGIC;
		r = io->write(w->fd, w->buf, BLOCK);
		if (r != (ssize_t)BLOCK)
			return fail(w, r < 0 ? (int)r : -EIO, "write");
		w->appends++;
		if (w->appends % w->p->sync_every == 0) {
			int rc = io->fdatasync(w->fd);

			if (rc < 0)
				return fail(w, rc, "fdatasync");
		}
		return 0;
	}
	case K_SMALL: {
		uint64_t f = next_rand(&w->rng) % w->p->files;
		char path[PATH_MAX + 32];
		struct statx st;
		ssize_t r;
		int fd, rc;

		snprintf(path, sizeof(path), "%s/f%llu", small_dir, (unsigned long long)f);
		if (io->pread_path) {
			r = io->pread_path(AT_FDCWD, path, w->buf, BLOCK, 0);
			if (r != (ssize_t)BLOCK)
				return fail(w, r < 0 ? (int)r : -EIO, "open+read+close");
		} else {
			fd = io->open(path, O_RDONLY | O_CLOEXEC, 0);
			if (fd < 0)
				return fail(w, fd, "open");
			r = io->read(fd, w->buf, BLOCK);
			rc = io->close(fd);
			if (r != (ssize_t)BLOCK)
				return fail(w, r < 0 ? (int)r : -EIO, "read");
			if (rc < 0)
				return fail(w, rc, "close");
		}
		if (*(uint64_t *)w->buf != (f ^ MAGIC))
			return fail(w, -EILSEQ, "read returned another file's data");
		rc = io->statx(AT_FDCWD, path, 0, STATX_SIZE, &st);
		if (rc < 0)
			return fail(w, rc, "statx");
		if (st.stx_size != BLOCK)
			return fail(w, -EILSEQ, "statx gave the wrong size");
		return 0;
	}
	}
	return -EINVAL;
}

static void worker_loop(struct worker *w)
{
	double t = bench_now();

	while (t < w->deadline) {
		double t1;

		if (one_op(w) < 0)
			break;
		t1 = bench_now();
		bench_latbuf_add(&w->lat, t1 - t);
		w->ops++;
		t = t1;
	}
}

/* --------------------------------------------------------------- drivers */

static int open_worker_fd(struct worker *w)
{
	char path[PATH_MAX + 32];
	int fd;

	switch (w->kind) {
	case K_CACHED:
		fd = open(data_path, O_RDONLY | O_CLOEXEC);
		break;
	case K_DIRECT:
		fd = open(data_path, O_RDONLY | O_CLOEXEC | O_DIRECT);
		break;
	case K_WRITE:
		snprintf(path, sizeof(path), "%s/w%u", small_dir, w->id);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
		break;
	default:
		return 0;
	}
	if (fd < 0)
		return -errno;
	w->fd = fd;
	return 0;
}

static int make_workers(struct bench_ctx *ctx, const struct io_ops *io, unsigned n,
                        struct worker **out)
{
	struct worker *ws = calloc(n, sizeof(*ws));

	if (!ws)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		int rc;

		w->io = io;
		w->p = ctx->p;
		w->kind = kind_of(ctx->w);
		w->id = i;
		w->fd = -1;
		w->rng = 0x9e3779b97f4a7c15ull * (i + 1);
		if (posix_memalign(&w->buf, BLOCK, BLOCK) != 0 ||
		    bench_latbuf_init(&w->lat, 65536) != 0)
			return -ENOMEM;
		memset(w->buf, 0, BLOCK);
		rc = open_worker_fd(w);
		if (rc < 0)
			return rc;
	}
	*out = ws;
	return 0;
}

/* Start the clock of every worker: they run for --io-time from now. */
static void start_clock(struct bench_ctx *ctx, struct worker *ws, unsigned n)
{
	double deadline = bench_now() + bench_io_time(ctx);

	for (unsigned i = 0; i < n; i++)
		ws[i].deadline = deadline;
}

/* Collect the workers' counts, latencies and errors into the sample; check
 * the appends against the files' sizes; free everything. */
static int finish(struct bench_ctx *ctx, struct worker *ws, unsigned n, struct bench_sample *s)
{
	struct bench_latbuf *bufs = calloc(n, sizeof(*bufs));
	int rc = BENCH_OK;

	s->ops = 0;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &ws[i];

		s->ops += (double)w->ops;
		if (w->err && rc == BENCH_OK)
			rc = bench_why(ctx, BENCH_FAIL, "%s: %s", w->what, strerror(-w->err));
		if (w->kind == K_WRITE && w->fd >= 0 && rc == BENCH_OK) {
			struct stat st;

			if (fstat(w->fd, &st) != 0 || (uint64_t)st.st_size != w->appends * BLOCK)
				rc = bench_why(ctx, BENCH_FAIL,
				               "check failed: file %u has %lld bytes, expected %llu", i,
				               (long long)st.st_size,
				               (unsigned long long)(w->appends * BLOCK));
		}
		if (w->fd >= 0)
			close(w->fd);
		if (bufs)
			bufs[i] = w->lat;
		else
			free(w->lat.v);
		free(w->buf);
	}
	if (bufs)
		bench_latbuf_merge(&s->lat, bufs, n);
	free(bufs);
	free(ws);
	s->check = 1;
	return rc;
}

static int run_sync(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct worker *ws = NULL;
	struct bench_meter m;
	int rc = make_workers(ctx, &sys_io, 1, &ws);

	if (rc < 0)
		return bench_why(ctx, BENCH_FAIL, "set-up: %s", strerror(-rc));
	bench_meter_start(&m);
	start_clock(ctx, ws, 1);
	worker_loop(&ws[0]);
	bench_meter_stop(&m, s);
	rc = finish(ctx, ws, 1, s);
	if (rc == BENCH_OK)
		bench_why(ctx, BENCH_OK, "%s", fs_note);
	return rc;
}

static void *thread_main(void *arg)
{
	worker_loop(arg);
	return NULL;
}

static unsigned nworkers(const struct bench_ctx *ctx)
{
	return kind_of(ctx->w) == K_WRITE ? ctx->p->writers : ctx->p->inflight;
}

static int run_threads(struct bench_ctx *ctx, struct bench_sample *s)
{
	unsigned n = nworkers(ctx), made = 0;
	struct worker *ws = NULL;
	pthread_t *t = calloc(n, sizeof(*t));
	struct bench_meter m;
	int rc = t ? make_workers(ctx, &sys_io, n, &ws) : -ENOMEM;

	if (rc < 0) {
		free(t);
		return bench_why(ctx, BENCH_FAIL, "set-up: %s", strerror(-rc));
	}
	bench_meter_start(&m);
	start_clock(ctx, ws, n);
	for (; made < n; made++)
		if ((rc = pthread_create(&t[made], NULL, thread_main, &ws[made])) != 0)
			break;
	for (unsigned i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	bench_meter_stop(&m, s);
	free(t);
	if (made < n) {
		finish(ctx, ws, n, s);
		return bench_why(ctx, BENCH_SKIP, "pthread_create: %s", strerror(rc));
	}
	rc = finish(ctx, ws, n, s);
	if (rc == BENCH_OK)
		bench_why(ctx, BENCH_OK, "%u threads; %s", n, fs_note);
	return rc;
}

struct ring_run {
	struct worker *ws;
	unsigned n;
	int err;
	struct ursa_stats st;
};

/* An ursa program reading O_DIRECT takes its buffers from the core's
 * registered pool (READ_FIXED: no page pinning per read). */
static void *ring_worker(void *arg)
{
	struct worker *w = arg;
	void *own = w->buf, *fixed = NULL;

	if (w->kind == K_DIRECT && ursa_iobuf_get(&fixed, BLOCK) == 0)
		w->buf = fixed;
	worker_loop(w);
	if (fixed) {
		w->buf = own;
		(void)ursa_iobuf_put(fixed);
	}
	return NULL;
}

static void *ring_main(void *arg)
{
	struct ring_run *rr = arg;
	struct ursa_task **t = calloc(rr->n, sizeof(*t));
	unsigned made = 0, nc = ursa_ncores();

	if (!t) {
		rr->err = -ENOMEM;
		return NULL;
	}
	for (; made < rr->n; made++) {
		int rc = ursa_spawn_on(&t[made], made % nc, ring_worker, &rr->ws[made]);

		if (rc < 0) {
			rr->err = rc;
			break;
		}
	}
	for (unsigned i = 0; i < made; i++)
		if (ursa_join(t[i], NULL) < 0 && !rr->err)
			rr->err = -ECANCELED;
	free(t);
	bench_stats_take(&rr->st);
	return NULL;
}

static int run_ring(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct ring_run rr = {.n = nworkers(ctx)};
	struct ursa_opts o = bench_ursa_opts(ctx->p->cores);
	struct bench_meter m;
	int rc = make_workers(ctx, &ring_io, rr.n, &rr.ws);

	if (rc < 0)
		return bench_why(ctx, BENCH_FAIL, "set-up: %s", strerror(-rc));
	bench_meter_start(&m);
	start_clock(ctx, rr.ws, rr.n);
	rc = ursa_run(ring_main, &rr, &o, NULL);
	bench_meter_stop(&m, s);
	if (rc < 0) {
		finish(ctx, rr.ws, rr.n, s);
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	}
	rc = finish(ctx, rr.ws, rr.n, s);
	if (rc == BENCH_OK && rr.err)
		rc = bench_why(ctx, BENCH_FAIL, "%s", ursa_strerror(rr.err));
	if (rc == BENCH_OK) {
		bench_why(ctx, BENCH_OK, "%u tasks over %u cores; %s", rr.n,
		          ctx->p->cores ? ctx->p->cores : bench_ncpus(), fs_note);
		bench_stats_note(ctx, &rr.st, s->ops);
	}
	return rc;
}

/* ------------------------------------------------------------------- fio */

/* The number after `"key" :` following `from` in fio's JSON, or -1. */
static double json_after(const char *from, const char *key)
{
	const char *k = from ? strstr(from, key) : NULL;

	if (!k)
		return -1;
	k = strchr(k + strlen(key), ':');
	return k ? strtod(k + 1, NULL) : -1;
}

static int run_fio(struct bench_ctx *ctx, struct bench_sample *s)
{
	char name[PATH_MAX + 32], depth[32], runtime[32], size[32], direct[16];
	char *argv[] = {"fio", "--name=bench", name, "--ioengine=io_uring", "--rw=randread",
	                "--bs=4k", depth, direct, "--invalidate=0", "--time_based", runtime,
	                size, "--output-format=json", NULL};
	posix_spawn_file_actions_t fa;
	int fds[2], st = 0, rc;
	size_t cap = 1 << 16, got = 0;
	char *out = malloc(cap);
	struct rusage ru;
	const char *rd;
	ssize_t r;
	pid_t pid;
	double iops, t0;

	if (!out)
		return bench_why(ctx, BENCH_FAIL, "out of memory");
	snprintf(name, sizeof(name), "--filename=%s", data_path);
	snprintf(depth, sizeof(depth), "--iodepth=%u", ctx->p->inflight);
	snprintf(runtime, sizeof(runtime), "--runtime=%ums",
	         (unsigned)(bench_io_time(ctx) * 1000));
	snprintf(size, sizeof(size), "--size=%llum", (unsigned long long)ctx->p->file_mib);
	snprintf(direct, sizeof(direct), "--direct=%d", kind_of(ctx->w) == K_DIRECT);
	if (pipe(fds) != 0) {
		free(out);
		return bench_why(ctx, BENCH_FAIL, "pipe: %s", strerror(errno));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	t0 = bench_now();
	rc = posix_spawnp(&pid, "fio", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		free(out);
		return bench_why(ctx, BENCH_SKIP, "fio not found (install fio for this row)");
	}
	while ((r = read(fds[0], out + got, cap - 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		got += (size_t)r;
		if (got + 1 == cap) {
			char *bigger = realloc(out, cap * 2);

			if (!bigger)
				break;
			out = bigger;
			cap *= 2;
		}
	}
	out[got] = '\0';
	close(fds[0]);
	while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
		;
	s->wall_s = bench_now() - t0;
	rd = strstr(out, "\"read\"");
	iops = json_after(rd, "\"iops\"");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || iops <= 0) {
		free(out);
		return bench_why(ctx, BENCH_FAIL, "fio failed (exit %d)",
		                 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
	/* fio reports IOPS over its own runtime; keep our wall for CPU. */
	s->ops = iops * bench_io_time(ctx);
	s->wall_s = bench_io_time(ctx);
	s->cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	s->rss_kib = ru.ru_maxrss;
	{
		const char *clat = strstr(rd, "\"clat_ns\"");
		double p50 = json_after(clat, "\"50.000000\""), p99 = json_after(clat, "\"99.000000\"");

		if (p50 > 0 && p99 > 0) {
			s->lat.valid = true;
			s->lat.p50_us = p50 / 1000;
			s->lat.p99_us = p99 / 1000;
			s->lat.max_us = p99 / 1000;
		}
	}
	free(out);
	s->check = 1;
	bench_why(ctx, BENCH_OK, "fio --ioengine=io_uring --iodepth=%u --invalidate=0: its own "
	                         "IOPS and clat; CPU and RSS of the fio process",
	          ctx->p->inflight);
	return BENCH_OK;
}

/* --------------------------------------------------------------- prepare */

static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x794c7630: return "overlayfs";
	case 0x6969: return "nfs";
	case 0x2fc12fc1: return "zfs";
	case 0xF2F52010: return "f2fs";
	default: return "unknown filesystem";
	}
}

static int write_all_fd(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void remove_data(void)
{
	if (data_path[0])
		unlink(data_path);
	if (data_dir[0])
		rmdir(data_dir);
	data_path[0] = data_dir[0] = '\0';
	data_ok = false;
}

static int make_dir(const struct bench_params *p, char *why, size_t len)
{
	struct statfs sf;

	snprintf(small_dir, sizeof(small_dir), "%s/ursa-bench.%d", p->dir, (int)getpid());
	if (mkdir(small_dir, 0755) != 0) {
		snprintf(why, len, "cannot make %s: %s (--dir)", small_dir, strerror(errno));
		return BENCH_SKIP;
	}
	if (statfs(small_dir, &sf) == 0)
		snprintf(fs_note, sizeof(fs_note), "%s (%s)", p->dir, fs_name(sf.f_type));
	return BENCH_OK;
}

static int prepare(const struct bench_params *p, const struct bench_workload *w, char *why,
                   size_t len)
{
	enum kind k = kind_of(w);
	void *buf = NULL;
	int fd = -1, rc;

	if (make_dir(p, why, len) != BENCH_OK)
		return BENCH_SKIP;
	if (posix_memalign(&buf, BLOCK, 1u << 20) != 0) {
		snprintf(why, len, "out of memory");
		return BENCH_FAIL;
	}
	if ((k == K_CACHED || k == K_DIRECT) && !data_ok) {
		/* One data file serves file-cached and file-direct; it goes when
		 * bench exits. */
		data_blocks = (uint64_t)p->file_mib * (1u << 20) / BLOCK;
		snprintf(data_dir, sizeof(data_dir), "%s/ursa-bench.%d.data", p->dir, (int)getpid());
		if (mkdir(data_dir, 0755) != 0) {
			snprintf(why, len, "cannot make %s: %s (--dir)", data_dir, strerror(errno));
			data_dir[0] = '\0';
			goto skip;
		}
		if (!data_path[0])
			atexit(remove_data);
		snprintf(data_path, sizeof(data_path), "%s/data", data_dir);
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "%s: writing a %u MiB data file in %s ...\r", w->name,
			        p->file_mib, p->dir);
		fd = open(data_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			snprintf(why, len, "cannot create %s: %s", data_path, strerror(errno));
			goto skip;
		}
		for (uint64_t b = 0; b < data_blocks; b += (1u << 20) / BLOCK) {
			for (unsigned i = 0; i < (1u << 20) / BLOCK && b + i < data_blocks; i++)
				fill_block((char *)buf + i * BLOCK, b + i);
			rc = write_all_fd(fd, buf, (1u << 20));
			if (rc < 0) {
				snprintf(why, len, "writing %s: %s", data_path, strerror(-rc));
				goto skip;
			}
		}
		if (fdatasync(fd) != 0) {
			snprintf(why, len, "fdatasync %s: %s", data_path, strerror(errno));
			goto skip;
		}
		close(fd);
		fd = -1;
		data_ok = true;
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "\033[K");
	}
	if (k == K_CACHED || k == K_DIRECT) {
		if (k == K_DIRECT) {
			fd = open(data_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
			if (fd < 0 || pread(fd, buf, BLOCK, 0) != (ssize_t)BLOCK) {
				snprintf(why, len, "%s refuses O_DIRECT: %s (try --dir elsewhere)", fs_note,
				         strerror(errno));
				goto skip;
			}
			close(fd);
			fd = -1;
			/* Drop the cached copy so no path starts with a warm cache the
			 * others lack (O_DIRECT reads do not use it anyway). */
			fd = open(data_path, O_RDONLY | O_CLOEXEC);
			if (fd >= 0)
				(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		} else {
			/* Warm the page cache: read the whole file once. */
			fd = open(data_path, O_RDONLY | O_CLOEXEC);
			while (fd >= 0 && read(fd, buf, 1u << 20) > 0)
				;
		}
		if (fd >= 0)
			close(fd);
		fd = -1;
	} else if (k == K_SMALL) {
		for (unsigned f = 0; f < p->files; f++) {
			char path[PATH_MAX + 32];

			snprintf(path, sizeof(path), "%s/f%u", small_dir, f);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			fill_block(buf, f);
			if (fd < 0 || write_all_fd(fd, buf, BLOCK) < 0) {
				snprintf(why, len, "cannot write %s: %s", path, strerror(errno));
				goto skip;
			}
			close(fd);
			fd = -1;
		}
	}
	free(buf);
	return BENCH_OK;
skip:
	if (fd >= 0)
		close(fd);
	if (!data_ok && data_path[0]) {
		unlink(data_path);
		rmdir(data_dir);
	}
	free(buf);
	return BENCH_SKIP;
}

static void cleanup(const struct bench_params *p, const struct bench_workload *w)
{
	char path[PATH_MAX + 32];

	for (unsigned f = 0; kind_of(w) == K_SMALL && f < p->files; f++) {
		snprintf(path, sizeof(path), "%s/f%u", small_dir, f);
		unlink(path);
	}
	for (unsigned i = 0; kind_of(w) == K_WRITE && i < p->writers; i++) {
		snprintf(path, sizeof(path), "%s/w%u", small_dir, i);
		unlink(path);
	}
	if (small_dir[0])
		rmdir(small_dir);
	small_dir[0] = '\0';
}

/* Page-cache residency of the data file, for the note of every cached row. */
static int setup_cached(struct bench_ctx *ctx)
{
	int fd = open(data_path, O_RDONLY | O_CLOEXEC);
	size_t len = (size_t)data_blocks * BLOCK, pages = len / 4096, in = 0;
	unsigned char *vec = malloc(pages ? pages : 1);
	void *map = fd >= 0 ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;

	if (map != MAP_FAILED && vec && mincore(map, len, vec) == 0)
		for (size_t i = 0; i < pages; i++)
			in += vec[i] & 1;
	if (map != MAP_FAILED)
		munmap(map, len);
	if (fd >= 0)
		close(fd);
	free(vec);
	(void)ctx;
	snprintf(fs_note + strlen(fs_note), sizeof(fs_note) - strlen(fs_note), "; %.1f%% cached",
	         pages ? 100.0 * (double)in / (double)pages : 0);
	return BENCH_OK;
}

/* ------------------------------------------------------------ the tables */

static const struct bench_path read_paths[] = {
	{"pread", BENCH_SYNC, "one thread, pread(2) in a loop", run_sync, NULL, 0, false, false, false},
	{"threads", BENCH_THREADED, "--inflight threads, each pread(2) in a loop", run_threads,
	 NULL, 0, false, false, false},
	{"ursa", BENCH_RING, "--inflight ursa tasks over the cores, each ursa_pread in a loop into "
	 "a registered buffer (ursa_iobuf_get)", run_ring, NULL, 0, false, false, true},
	{"fio", BENCH_REF, "fio --ioengine=io_uring --iodepth=--inflight (if installed)", run_fio,
	 NULL, 0, false, false, true},
};

static const struct bench_path cached_paths[] = {
	{"pread", BENCH_SYNC, "one thread, pread(2) in a loop", run_sync, setup_cached, 0, false,
	 false, false},
	{"threads", BENCH_THREADED, "--inflight threads, each pread(2) in a loop", run_threads,
	 setup_cached, 0, false, false, false},
	{"ursa", BENCH_RING, "--inflight ursa tasks over the cores, each ursa_pread in a loop",
	 run_ring, setup_cached, 0, false, false, true},
	{"fio", BENCH_REF, "fio --ioengine=io_uring --iodepth=--inflight (if installed)", run_fio,
	 setup_cached, 0, false, false, true},
};

static const struct bench_path write_paths[] = {
	{"write", BENCH_SYNC, "one thread appends to one file", run_sync, NULL, 0, false, false, false},
	{"threads", BENCH_THREADED, "a thread per file", run_threads, NULL, 0, false, false, false},
	{"ursa", BENCH_RING, "an ursa task per file (ursa_write, ursa_fdatasync)", run_ring, NULL,
	 0, false, false, true},
};

static const struct bench_path small_paths[] = {
	{"sequential", BENCH_SYNC, "one thread: open, read, close, statx in a loop", run_sync,
	 NULL, 0, false, false, false},
	{"pool", BENCH_THREADED, "a pool of --inflight threads doing the same", run_threads, NULL,
	 0, false, false, false},
	{"ursa", BENCH_RING, "--inflight ursa tasks: ursa_pread_path (open+read+close, one linked "
	 "submission), ursa_statx", run_ring, NULL, 0, false, false, true},
};

/* Issue 14's targets: ops/s ratios in one run, and CPU per op no higher
 * than the threads'. */
static const struct bench_target cached_targets[] = {
	{"ursa", "threads", BENCH_M_OPS, 1.1, false, "ring >= 1.1x the 32 threads", 0},
	{"ursa", "fio", BENCH_M_OPS, 1.5, false, "ring >= 1.5x fio's io_uring engine", 0},
	{"ursa", "threads", BENCH_M_CPU_SHARE, 1.0, true, "ring CPU per op <= the threads'", 0},
};
static const struct bench_target direct_targets[] = {
	{"ursa", "fio", BENCH_M_OPS, 1.0, false, "ring >= 1.0x fio's io_uring engine", 0},
	{"ursa", "threads", BENCH_M_OPS, 1.0, false, "ring >= 1.0x the 32 threads", 0},
	{"ursa", "threads", BENCH_M_CPU_SHARE, 1.0, true, "ring CPU per op <= the threads'", 0},
};
static const struct bench_target write_targets[] = {
	{"ursa", "threads", BENCH_M_OPS, 1.1, false, "ring >= 1.1x a thread per file", 0},
	{"ursa", "threads", BENCH_M_CPU_SHARE, 1.0, true, "ring CPU per op <= the threads'", 0},
};
static const struct bench_target small_targets[] = {
	{"ursa", "pool", BENCH_M_OPS, 1.2, false, "ring >= 1.2x the thread pool", 0},
	{"ursa", "pool", BENCH_M_CPU_SHARE, 1.0, true, "ring CPU per op <= the pool's", 0},
};

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	enum kind k = kind_of(w);
	int n = snprintf(buf, len, "\"io_time_s\": %g, \"dir\": \"%s\"", p->io_time_s, p->dir);

	if (n < 0 || (size_t)n >= len)
		return;
	if (k == K_CACHED || k == K_DIRECT)
		snprintf(buf + n, len - (size_t)n, ", \"file_mib\": %u, \"inflight\": %u, \"block\": %u",
		         p->file_mib, p->inflight, BLOCK);
	else if (k == K_WRITE)
		snprintf(buf + n, len - (size_t)n,
		         ", \"writers\": %u, \"sync_every\": %u, \"block\": %u", p->writers,
		         p->sync_every, BLOCK);
	else
		snprintf(buf + n, len - (size_t)n, ", \"files\": %u, \"inflight\": %u, \"block\": %u",
		         p->files, p->inflight, BLOCK);
}

#define FILE_WORKLOAD(ident, wname, sum, hlp, u, base, pathv, tg, ntg)                         \
	const struct bench_workload ident = {                                                    \
		.name = wname,                                                                   \
		.summary = sum,                                                                  \
		.help = hlp,                                                                     \
		.unit = u,                                                                       \
		.latency = true,                                                                 \
		.in_default = true,                                                              \
		.baseline = base,                                                                \
		.paths = pathv,                                                                  \
		.npaths = sizeof(pathv) / sizeof(pathv[0]),                                      \
		.targets = tg,                                                                   \
		.ntargets = ntg,                                                                 \
		.prepare = prepare,                                                              \
		.cleanup = cleanup,                                                              \
		.describe = describe,                                                             \
	}

FILE_WORKLOAD(bench_wl_file_cached, "file-cached",
              "4 KiB random reads from a file in the page cache, 32 in flight",
              "              The data file (--file-size in --dir) is written, then read once\n"
              "              to warm the page cache; each row says how much of it is cached.\n",
              "4 KiB read", "pread", cached_paths, cached_targets, 3);
FILE_WORKLOAD(bench_wl_file_direct, "file-direct",
              "the same with O_DIRECT (skipped where the filesystem refuses it)",
              "              Reads bypass the page cache and go to the device.\n",
              "4 KiB read", "pread", read_paths, direct_targets, 3);
FILE_WORKLOAD(bench_wl_file_write, "file-write",
              "4 KiB appends with periodic fdatasync",
              "              --writers files, each appended to and fdatasync'd every\n"
              "              --sync-every appends; sizes checked at the end.\n",
              "4 KiB append", "write", write_paths, write_targets, 2);
FILE_WORKLOAD(bench_wl_file_small, "file-small",
              "many small files: open, read, close, statx",
              "              --files 4 KiB files (in the page cache); one op opens one at\n"
              "              random, reads it, closes it and statx()es it.\n",
              "open+read+close+statx", "sequential", small_paths, small_targets, 2);

static enum kind kind_of(const struct bench_workload *w)
{
	if (w == &bench_wl_file_direct)
		return K_DIRECT;
	if (w == &bench_wl_file_write)
		return K_WRITE;
	if (w == &bench_wl_file_small)
		return K_SMALL;
	return K_CACHED;
}
