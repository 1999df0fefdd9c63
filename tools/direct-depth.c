/* SPDX-License-Identifier: MIT */
/*
 * direct-depth: where an O_DIRECT read's time goes, threads against ursa
 * tasks.  N workers (32) read 4 KiB at random offsets of FILE with O_DIRECT,
 * each one read at a time, as bench's file-direct does: N threads calling
 * pread(2), or N ursa tasks calling ursa_pread into a registered buffer
 * (ursa_iobuf_get).  The numbers behind docs/io.md, "O_DIRECT against 32
 * threads".
 *
 * Over a window that starts 0.3 s in (so set-up and tear-down are not in
 * it) it prints the reads per second, the mean latency a worker saw, the
 * depth that implies by Little's law (reads/s x mean latency: how many a
 * worker had in flight, on average), the depth and latency the block layer
 * saw (the device's time_in_queue, /sys/block/DEV/stat, over its reads: the
 * part of an op spent below the filesystem), the process's CPU per read, and
 * the time its threads spent runnable but waiting for a CPU
 * (/proc/self/task/T/schedstat).  Another process's I/O on DEV counts too:
 * run it on an otherwise quiet disk.
 *
 *   direct-depth threads|ring FILE [SECONDS] [DEV]
 *   environment: N (workers, 32), PIN (ring: 1 pins a worker per CPU, the
 *   default), BUF (ring: 0 reads into plain memory instead of an iobuf)
 *
 * FILE must exist and be at least 4 KiB on a filesystem that takes O_DIRECT,
 * e.g.  dd if=/dev/zero of=/var/tmp/d bs=1M count=1024 oflag=direct
 */
#include <ursa.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096u

struct worker {
	int fd;
	void *buf;
	uint64_t rng;
	bool ring, iobuf;
	uint64_t ops, bad; /* in the window; reads that returned less than BLOCK */
	double lat;        /* summed latency of those ops, s */
};

static uint64_t nblocks;
static double win_start, win_end;
static char dev[64] = "vda";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64*, as bench */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

/* Workers run on GRACE s past the window, so they are all still alive when
 * the sampler reads their run-queue wait at its end. */
#define GRACE 0.1

static void loop(struct worker *w)
{
	double t = now();

	while (t < win_end + GRACE) {
		off_t off = (off_t)(next_rand(&w->rng) % nblocks * BLOCK);
		ssize_t r = w->ring ? ursa_pread(w->fd, w->buf, BLOCK, off)
		                    : pread(w->fd, w->buf, BLOCK, off);
		double t1 = now();

		if (t >= win_start && t1 <= win_end) {
			w->ops++;
			w->lat += t1 - t;
			w->bad += r != (ssize_t)BLOCK;
		}
		t = t1;
	}
}

static void *thread_main(void *arg)
{
	loop(arg);
	return NULL;
}

static void *task_main(void *arg)
{
	struct worker *w = arg;
	void *own = w->buf, *fixed = NULL;

	if (w->iobuf && ursa_iobuf_get(&fixed, BLOCK) == 0)
		w->buf = fixed;
	loop(w);
	if (fixed) {
		w->buf = own;
		(void)ursa_iobuf_put(fixed);
	}
	return NULL;
}

struct ring_run {
	struct worker *ws;
	unsigned n;
	int err;
};

static void *ring_main(void *arg)
{
	struct ring_run *rr = arg;
	struct ursa_task **t = calloc(rr->n, sizeof(*t));
	unsigned made = 0;

	if (!t) {
		rr->err = -1;
		return NULL;
	}
	for (; made < rr->n; made++)
		if (ursa_spawn_on(&t[made], made % ursa_ncores(), task_main, &rr->ws[made]) < 0) {
			rr->err = -1;
			break;
		}
	for (unsigned i = 0; i < made; i++)
		if (ursa_join(t[i], NULL) < 0)
			rr->err = -1;
	free(t);
	return NULL;
}

/* What the window is measured by: the device's I/O count and time in queue
 * (ms), the process's CPU and its threads' run-queue wait (s). */
struct snap {
	unsigned long long ios, queue_ms;
	double cpu_s, runq_s;
};

static void take(struct snap *s)
{
	char path[128];
	unsigned long long v[11] = {0};
	struct rusage ru;
	struct dirent *e;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/stat", dev);
	if ((f = fopen(path, "r"))) {
		for (unsigned i = 0; i < 11 && fscanf(f, "%llu", &v[i]) == 1; i++)
			;
		fclose(f);
	}
	s->ios = v[0];       /* reads completed */
	s->queue_ms = v[10]; /* time in queue, weighted by depth */
	getrusage(RUSAGE_SELF, &ru);
	s->cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	s->runq_s = 0;
	if (!(d = opendir("/proc/self/task")))
		return;
	while ((e = readdir(d))) {
		unsigned long long run, wait;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.32s/schedstat", e->d_name);
		if ((f = fopen(path, "r"))) {
			if (fscanf(f, "%llu %llu", &run, &wait) == 2)
				s->runq_s += (double)wait * 1e-9;
			fclose(f);
		}
	}
	closedir(d);
}

static struct snap s0, s1;

static void *sampler(void *arg)
{
	(void)arg;
	while (now() < win_start)
		usleep(1000);
	take(&s0);
	while (now() < win_end)
		usleep(1000);
	take(&s1);
	return NULL;
}

static unsigned env_num(const char *name, unsigned dflt)
{
	const char *v = getenv(name);

	return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

int main(int argc, char **argv)
{
	unsigned n = env_num("N", 32);
	double secs = argc > 3 ? atof(argv[3]) : 2;
	bool ring = argc > 1 && strcmp(argv[1], "ring") == 0;
	struct worker *ws = calloc(n ? n : 1, sizeof(*ws));
	uint64_t ops = 0, bad = 0;
	double lat = 0, rate, mean;
	pthread_t samp, *t;
	struct stat st;

	if (argc < 3 || (!ring && strcmp(argv[1], "threads") != 0) || !n || secs <= 0 || !ws) {
		fprintf(stderr, "usage: direct-depth threads|ring FILE [SECONDS] [DEV]\n");
		return 2;
	}
	if (argc > 4)
		snprintf(dev, sizeof(dev), "%s", argv[4]);
	if (stat(argv[2], &st) != 0 || (nblocks = (uint64_t)st.st_size / BLOCK) == 0) {
		fprintf(stderr, "direct-depth: %s: not a file of 4 KiB or more\n", argv[2]);
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		ws[i].fd = open(argv[2], O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (ws[i].fd < 0 || posix_memalign(&ws[i].buf, BLOCK, BLOCK) != 0) {
			perror("direct-depth: open O_DIRECT");
			return 1;
		}
		ws[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
		ws[i].ring = ring;
		ws[i].iobuf = env_num("BUF", 1) != 0;
	}
	win_start = now() + 0.3;
	win_end = win_start + secs;
	pthread_create(&samp, NULL, sampler, NULL);
	if (ring) {
		struct ring_run rr = {ws, n, 0};
		struct ursa_opts o = {.flags = env_num("PIN", 1) ? URSA_OPT_PIN : 0};
		int rc = ursa_run(ring_main, &rr, &o, NULL);

		if (rc < 0 || rr.err) {
			fprintf(stderr, "direct-depth: ursa_run: %s\n", ursa_strerror(rc < 0 ? rc : -1));
			return 1;
		}
	} else if ((t = calloc(n, sizeof(*t)))) {
		for (unsigned i = 0; i < n; i++)
			pthread_create(&t[i], NULL, thread_main, &ws[i]);
		for (unsigned i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		free(t);
	}
	pthread_join(samp, NULL);
	for (unsigned i = 0; i < n; i++) {
		ops += ws[i].ops;
		bad += ws[i].bad;
		lat += ws[i].lat;
		close(ws[i].fd);
		free(ws[i].buf);
	}
	free(ws);
	if (!ops || bad) {
		fprintf(stderr, "direct-depth: %llu reads, %llu short or failed\n",
		        (unsigned long long)ops, (unsigned long long)bad);
		return 1;
	}
	rate = (double)ops / secs;
	mean = lat / (double)ops;
	{
		double dios = (double)(s1.ios - s0.ios), dq = (double)(s1.queue_ms - s0.queue_ms);

		printf("%-7s %u workers: %.1fk reads/s, mean %.0f us, depth %.1f; "
		       "block layer: depth %.1f, %.0f us per read; cpu %.2f us per read; "
		       "run-queue wait %.1f us per read\n",
		       ring ? "ring" : "threads", n, rate / 1e3, mean * 1e6, rate * mean,
		       dq / (secs * 1e3), dios > 0 ? dq * 1e3 / dios : 0,
		       (s1.cpu_s - s0.cpu_s) / (double)ops * 1e6,
		       (s1.runq_s - s0.runq_s) / (double)ops * 1e6);
	}
	return 0;
}
