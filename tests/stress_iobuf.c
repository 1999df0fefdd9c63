/* SPDX-License-Identifier: MIT */
/*
 * stress_iobuf: registered I/O buffers handed out, used and given back by
 * tasks on both cores, from the other core and from pool threads, on every
 * path: a read that succeeds, one that fails (a bad fd), one cut short by a
 * deadline or a cancel.  Proves that no buffer is ever in two holders'
 * hands (a table of holders under a mutex, checked at every hand-out), that
 * every buffer comes back (none held on any core at the end), and that a
 * second put is refused.  A plain program, so that it runs under TSan.
 * Usage: stress_iobuf [rounds per task]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ursa.h"

#include "io.h"
#include "io_buf.h"
#include "runtime.h"

#define TASKS 16
#define BLOCK 4096
#define FILE_BLOCKS 64

static long g_rounds = 2000;
static int g_fd;            /* the data file, O_DIRECT where the filesystem has it */
static _Atomic long failures, got, nobufs, cancelled, handed_off;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static void *holders[2 * URSA_IOBUF_COUNT];

static void failf(const char *what, long v)
{
	if (atomic_fetch_add(&failures, 1) < 10)
		fprintf(stderr, "FAIL: %s (%ld)\n", what, v);
}

/* A hand-out: the buffer must be in nobody else's hands. */
static void claim(void *b)
{
	int free_slot = -1;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < 2 * (int)URSA_IOBUF_COUNT; i++) {
		if (holders[i] == b)
			failf("a buffer was handed to two holders", i);
		if (!holders[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
		holders[free_slot] = b;
	else
		failf("more buffers out than the pools hold", 0);
	pthread_mutex_unlock(&table_lock);
}

static void unclaim(void *b)
{
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < 2 * (int)URSA_IOBUF_COUNT; i++)
		if (holders[i] == b)
			holders[i] = NULL;
	pthread_mutex_unlock(&table_lock);
}

static void give_back(void *b)
{
	int rc;

	unclaim(b);
	rc = ursa_iobuf_put(b);
	if (rc)
		failf("ursa_iobuf_put", rc);
}

static void *put_job(void *b)
{
	give_back(b);
	return NULL;
}

static void *put_task(void *b)
{
	give_back(b);
	return NULL;
}

static void *worker(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;

	for (long r = 0; r < g_rounds; r++) {
		unsigned long blk;
		void *b = NULL;
		ssize_t n;
		int rc;

		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		rc = ursa_iobuf_get(&b, BLOCK);
		if (rc == -ENOBUFS) {
			atomic_fetch_add(&nobufs, 1);
			ursa_yield();
			continue;
		}
		if (rc) {
			failf("ursa_iobuf_get", rc);
			continue;
		}
		atomic_fetch_add(&got, 1);
		claim(b);
		blk = s % FILE_BLOCKS;
		switch (s >> 60 & 3) {
		case 0: { /* a read that fails */
			n = ursa_pread(1000000, b, BLOCK, 0);
			if (n != -EBADF)
				failf("pread of a bad fd", n);
			break;
		}
		case 1: { /* a read under a deadline that may cut it short */
			struct ursa_scope sc;

			ursa_scope_enter(&sc, ursa_now() + (s >> 40 & 0xff) * 100);
			n = ursa_pread(g_fd, b, BLOCK, (off_t)(blk * BLOCK));
			if (ursa_scope_exit(&sc) == -ETIMEDOUT || n == -ETIMEDOUT)
				atomic_fetch_add(&cancelled, 1);
			if (n != BLOCK && n != -ETIMEDOUT)
				failf("pread under a deadline", n);
			else if (n == BLOCK && *(uint64_t *)b != blk)
				failf("pread returned the wrong block", (long)blk);
			break;
		}
		default: /* a plain read, with a yield while holding */
			n = ursa_pread(g_fd, b, BLOCK, (off_t)(blk * BLOCK));
			if (n != BLOCK || *(uint64_t *)b != blk)
				failf("pread", n);
			ursa_yield();
			break;
		}
		/* Give it back: here, from the other core, or from a pool thread. */
		switch (s >> 50 & 3) {
		case 0: {
			struct ursa_task *t;

			atomic_fetch_add(&handed_off, 1);
			if (ursa_spawn_on(&t, (ursa_core() + 1) % ursa_ncores(), put_task, b) ||
			    ursa_join(t, NULL))
				failf("put from the other core", 0);
			break;
		}
		case 1: {
			void *res;

			atomic_fetch_add(&handed_off, 1);
			if (ursa_blocking(put_job, b, &res))
				failf("put from a pool thread", 0);
			break;
		}
		default:
			give_back(b);
			break;
		}
	}
	return NULL;
}

/* A task cancelled while its fixed read waits: the buffer still comes back. */
static void *cancelled_reader(void *arg)
{
	int *pfd = arg;
	void *b = NULL;

	if (ursa_iobuf_get(&b, BLOCK))
		return NULL;
	claim(b);
	if (ursa_read(pfd[0], b, BLOCK) != -ECANCELED)
		failf("a read of an empty pipe not cancelled", 0);
	give_back(b);
	return NULL;
}

static void *check_core(void *arg)
{
	void *b = NULL;

	(void)arg;
	if (ursa__io_buf_held(ursa__sched_core) != 0)
		failf("buffers still held at the end", (long)ursa__io_buf_held(ursa__sched_core));
	if (ursa_iobuf_get(&b, BLOCK) == 0) {
		/* Registered with the ring, so reads into it take READ_FIXED. */
		if (!ursa__io_buf_fixed(ursa__sched_core, b, BLOCK))
			failf("the pool is not registered with the ring", 0);
		if (ursa_iobuf_put(b) != 0 || ursa_iobuf_put(b) != -EALREADY)
			failf("a second put was not refused", 0);
	}
	if (ursa_iobuf_get(&b, URSA_IOBUF_SIZE + 1) != -EINVAL || ursa_iobuf_put((char *)b + 1) != -EINVAL)
		failf("bad sizes or pointers accepted", 0);
	return NULL;
}

static void *main_task(void *arg)
{
	struct ursa_task *t[TASKS];
	int pfd[2];

	(void)arg;
	for (long i = 0; i < TASKS; i++)
		if (ursa_spawn_on(&t[i], (unsigned)i % ursa_ncores(), worker, (void *)i))
			failf("spawn", i);
	for (int i = 0; i < TASKS; i++)
		(void)!ursa_join(t[i], NULL);
	if (pipe(pfd) == 0) {
		for (int i = 0; i < 20; i++) {
			struct ursa_task *c;

			if (ursa_spawn(&c, cancelled_reader, pfd))
				continue;
			(void)!ursa_sleep(100000);
			(void)!ursa_cancel(c);
			(void)!ursa_join(c, NULL);
		}
		close(pfd[0]);
		close(pfd[1]);
	}
	for (unsigned c = 0; c < ursa_ncores(); c++) {
		struct ursa_task *k;

		if (ursa_spawn_on(&k, c, check_core, NULL) == 0)
			(void)!ursa_join(k, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	char path[512];
	uint64_t blk[BLOCK / 8];
	struct ursa_opts o = {.cores = 2};
	int rc;

	if (argc > 1)
		g_rounds = strtol(argv[1], NULL, 0);
	snprintf(path, sizeof(path), "%s/ursa-iobuf-%d", base && *base ? base : "/tmp", getpid());
	g_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (g_fd < 0) {
		perror("open");
		return 1;
	}
	for (uint64_t i = 0; i < FILE_BLOCKS; i++) {
		memset(blk, 0, sizeof(blk));
		blk[0] = i;
		if (write(g_fd, blk, BLOCK) != BLOCK) {
			perror("write");
			return 1;
		}
	}
	fsync(g_fd);
	close(g_fd);
	g_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (g_fd < 0)
		g_fd = open(path, O_RDONLY | O_CLOEXEC); /* no O_DIRECT here */
	unlink(path);
	rc = ursa_run(main_task, NULL, &o, NULL);
	close(g_fd);
	printf("stress_iobuf: %ld hand-outs, %ld -ENOBUFS, %ld cut short, %ld given back elsewhere\n",
	       atomic_load(&got), atomic_load(&nobufs), atomic_load(&cancelled),
	       atomic_load(&handed_off));
	if (rc || atomic_load(&failures)) {
		printf("stress_iobuf: FAILED (%ld checks; ursa_run %d)\n", atomic_load(&failures), rc);
		return 1;
	}
	printf("stress_iobuf: every check held\n");
	return 0;
}
