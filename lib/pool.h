/* SPDX-License-Identifier: MIT */
/*
 * pool.h: the blocking thread pool, for work io_uring cannot do
 * (ursa_blocking).  Threads start on demand up to a maximum and stop with the
 * runtime.
 */
#ifndef URSA_POOL_H
#define URSA_POOL_H

#include "ursa.h"

#include <pthread.h>
#include <stdbool.h>

/* A job: on the waiting task's stack (pool.c). */
struct ursa__job;

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

/* The job the calling pool thread is running: its function, argument and
 * waiting task, for a crash report (lib/guard.c).  False off the pool or
 * between jobs. */
bool ursa__pool_running(ursa_fn *fn, void **arg, struct ursa_task **task);

int ursa__pool_init(struct ursa__pool *p, unsigned max_threads);
/* Stop and join the threads; the queue must be empty. */
void ursa__pool_fini(struct ursa__pool *p);
/* Queue j (its waiter record WAITING), starting a thread if none is idle.
 * 0 or -errno. */
int ursa__pool_submit(struct ursa__pool *p, struct ursa__job *j);
/* Threads started and jobs queued, now (for ursa_stats).  Any thread. */
void ursa__pool_gauges(struct ursa__pool *p, unsigned *threads, unsigned *queued);
/* Take j back if no thread has claimed it yet.  True if withdrawn. */
bool ursa__pool_withdraw(struct ursa__pool *p, struct ursa__job *j);

#endif /* URSA_POOL_H */
