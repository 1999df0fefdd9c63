/* SPDX-License-Identifier: MIT */
/*
 * pool.h: the blocking thread pool, for work io_uring cannot do
 * (ursa_blocking).  Threads start on demand up to a maximum and stop with the
 * runtime.
 */
#ifndef URSA_POOL_H
#define URSA_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct ursa_task;

/* A job lives on the waiting task's stack. */
struct ursa__job {
	void *(*fn)(void *);
	void *arg;
	void *result;
	struct ursa_task *task;
	struct ursa__job *next;
	_Atomic int state; /* URSA__JOB_* */
};
/* DONE is set only after the pool thread's last touch of the job and of the
 * task (the wake): the task may return, and free both, as soon as it sees it. */
enum { URSA__JOB_QUEUED, URSA__JOB_RUNNING, URSA__JOB_FINISHING, URSA__JOB_DONE };

struct ursa__pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ursa__job *head, *tail;
	pthread_t *threads;
	unsigned nthreads, max;
	unsigned idle;  /* threads waiting for work and not yet claimed by a submit */
	unsigned woken; /* threads signalled for a job that have not woken yet */
	bool stopping;
};

/* The job the calling pool thread is running (NULL elsewhere): what a crash
 * report names (lib/guard.c). */
extern __thread const struct ursa__job *ursa__pool_running;

int ursa__pool_init(struct ursa__pool *p, unsigned max_threads);
/* Stop and join the threads; the queue must be empty. */
void ursa__pool_fini(struct ursa__pool *p);
/* Queue j (state QUEUED), starting a thread if none is idle.  0 or -errno. */
int ursa__pool_submit(struct ursa__pool *p, struct ursa__job *j);
/* Take j back if no thread has started it.  True if withdrawn. */
bool ursa__pool_withdraw(struct ursa__pool *p, struct ursa__job *j);

#endif /* URSA_POOL_H */
