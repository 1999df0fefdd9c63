/* SPDX-License-Identifier: MIT */
/*
 * The Grizzly notes' Future (result, done flag, error message) and its
 * thread-based async: plain threads do the work and complete futures that
 * tasks await, and file reads and writes run on threads and report through
 * futures.  Where the notes poll a done flag with small delays, a task
 * parks in ursa_future_wait and the setter's thread wakes it; the done flag
 * (ursa_future_done) is still there for code that wants to look.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ursa.h>

#define USEC(s) ((useconds_t)((s) * 50e3))

/* ------------------------------------------------ a thread of our own */

struct work {
	struct ursa_future future;
	int n;
	pthread_t thread;
};

/* Runs on a plain pthread, which knows nothing of ursa but the future. */
static void *compute(void *arg)
{
	struct work *w = arg;

	usleep(USEC(1));
	if (w->n < 0)
		ursa_future_set_error(&w->future, -EDOM, "cannot sum to %d", w->n);
	else
		ursa_future_set_result(&w->future, (void *)(intptr_t)(w->n * (w->n + 1) / 2));
	return NULL;
}

/* --------------------------------------------- async file wrappers */

struct file_job {
	struct ursa_future future;
	const char *path;
	const char *data;  /* write: what to write; read: NULL */
	char buf[64];
	pthread_t thread;
};

static void *file_thread(void *arg)
{
	struct file_job *j = arg;
	FILE *f = fopen(j->path, j->data ? "w" : "r");

	if (!f) {
		ursa_future_set_error(&j->future, -errno, "open %s", j->path);
		return NULL;
	}
	if (j->data)
		fputs(j->data, f);
	else
		j->buf[fread(j->buf, 1, sizeof(j->buf) - 1, f)] = '\0';
	fclose(f);
	ursa_future_set_result(&j->future, j->data ? NULL : j->buf);
	return NULL;
}

/* async_write_file / async_read_file: start a thread, return its future. */
static struct ursa_future *file_async(struct file_job *j)
{
	ursa_future_init(&j->future);
	if (pthread_create(&j->thread, NULL, file_thread, j))
		ursa_future_set_error(&j->future, -EAGAIN, "no thread");
	return &j->future;
}

static void *join_thread(void *arg)
{
	pthread_join(*(pthread_t *)arg, NULL);
	return NULL;
}

static void *main_task(void *arg)
{
	struct work w[2] = {{.n = 100}, {.n = -1}};
	char path[] = "/tmp/ursa-grizzly-XXXXXX";
	struct file_job wr = {.path = path, .data = "grizzly rows: 42\n"}, rd = {.path = path};
	void *r;
	int fd, rc;

	(void)arg;
	for (int i = 0; i < 2; i++) {
		ursa_future_init(&w[i].future);
		if (pthread_create(&w[i].thread, NULL, compute, &w[i]))
			return (void *)1;
	}
	printf("done right after starting: %s\n", ursa_future_done(&w[0].future) ? "yes" : "no");
	for (int i = 0; i < 2; i++) {
		rc = ursa_future_wait(&w[i].future, &r);
		if (rc == 0)
			printf("sum 1..%d = %ld\n", w[i].n, (long)(intptr_t)r);
		else
			printf("error: %s (%s)\n", ursa_future_message(&w[i].future), ursa_strerror(rc));
		if (ursa_blocking(join_thread, &w[i].thread, NULL) < 0)
			return (void *)1; /* cancelled before a pool thread took it */
		ursa_future_fini(&w[i].future);
	}

	fd = mkstemp(path);
	if (fd < 0)
		return (void *)1;
	close(fd);
	if (ursa_future_wait(file_async(&wr), NULL) == 0 &&
	    ursa_future_wait(file_async(&rd), &r) == 0)
		printf("read back: %s", (char *)r);
	if (ursa_blocking(join_thread, &wr.thread, NULL) < 0 ||
	    ursa_blocking(join_thread, &rd.thread, NULL) < 0)
		return (void *)1;
	ursa_future_fini(&wr.future);
	ursa_future_fini(&rd.future);
	unlink(path);
	return NULL;
}

int main(void)
{
	struct ursa_opts opts = {.cores = 1};
	void *failed = NULL;

	return ursa_run(main_task, NULL, &opts, &failed) == 0 && !failed ? 0 : 1;
}
