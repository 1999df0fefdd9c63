/* SPDX-License-Identifier: MIT */
/*
 * pool.c: the blocking thread pool and ursa_blocking.  Jobs live on the
 * waiting task's stack; a FIFO queue under one mutex feeds the threads, which
 * start on demand (up to the maximum) and complete the job's waiter record
 * when done (lib/wait.h: DONE is the thread's last touch of the job and of
 * the task).  This is the only place ursa runs user code off a worker.
 */
#include "pool.h"

#include "guard.h"
#include "scope.h"
#include "task.h"
#include "wait.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

struct ursa__job {
	struct ursa__wait w;  /* WAITING while queued, CLAIMED once a thread runs it */
	void *(*fn)(void *);
	void *arg;
	void *result;
	struct ursa__job *next;
};

/* The job this pool thread runs, for a crash report (lib/guard.c). */
static __thread const struct ursa__job *running;

bool ursa__pool_running(ursa_fn *fn, void **arg, struct ursa_task **task)
{
	if (!running)
		return false;
	*fn = running->fn;
	*arg = running->arg;
	*task = running->w.task;
	return true;
}

static void *pool_thread(void *arg)
{
	struct ursa__pool *p = arg;
	void *altstack;

	/* A job that overflows its thread's stack is reported, not killed
	 * silently: the handler needs a stack of its own.  Without one (out of
	 * memory) the thread still runs jobs. */
	(void)ursa__guard_altstack_init(&altstack);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct ursa__job *j;

		while (!p->head && !p->stopping) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			/* A submitter that signalled a thread has already taken one
			 * off idle (and counted it in woken); any other return is
			 * spurious and leaves idle itself. */
			if (p->woken)
				p->woken--;
			else
				p->idle--;
		}
		if (!p->head)
			break; /* stopping, and the queue is empty */
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		/* Cannot fail: a withdrawal takes the job off the queue under
		 * this mutex.  From here on the task waits for the result. */
		(void)ursa__wait_claim(&j->w);
		pthread_mutex_unlock(&p->mu);

		running = j;
		j->result = j->fn(j->arg);
		running = NULL;
		ursa__wait_done(&j->w); /* our last touch of the job and the task */

		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	ursa__guard_altstack_fini(altstack);
	return NULL;
}

int ursa__pool_init(struct ursa__pool *p, unsigned max_threads)
{
	p->head = p->tail = NULL;
	p->nthreads = p->idle = p->woken = 0;
	p->max = max_threads ? max_threads : 1;
	p->stopping = false;
	p->threads = calloc(p->max, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return 0;
}

void ursa__pool_fini(struct ursa__pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

int ursa__pool_submit(struct ursa__pool *p, struct ursa__job *j)
{
	int rc = 0;

	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	if (p->idle > 0) {
		/* Claim a waiting thread for this job now: until it runs it is
		 * not idle, and the next submit must not count on it too (four
		 * back-to-back submits to a warm pool of one thread ran one after
		 * another: issue 20). */
		p->idle--;
		p->woken++;
		pthread_cond_signal(&p->cv);
	} else if (p->nthreads < p->max) {
		/* Pool threads take no asynchronous signals: those belong to the
		 * application's own threads.  The synchronous ones stay open, so
		 * that a job's crash is reported (lib/guard.c). */
		sigset_t all, old;

		sigfillset(&all);
		ursa__guard_sync_signals(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = -pthread_create(&p->threads[p->nthreads], NULL, pool_thread, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc == 0)
			p->nthreads++;
		else if (p->nthreads > 0)
			rc = 0; /* the existing threads will get to it */
		else
			p->head = p->tail = NULL; /* no thread at all: give the job back */
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void ursa__pool_gauges(struct ursa__pool *p, unsigned *threads, unsigned *queued)
{
	unsigned n = 0;

	pthread_mutex_lock(&p->mu);
	for (const struct ursa__job *j = p->head; j; j = j->next)
		n++;
	*threads = p->nthreads;
	*queued = n;
	pthread_mutex_unlock(&p->mu);
}

bool ursa__pool_withdraw(struct ursa__pool *p, struct ursa__job *j)
{
	bool found = false;

	pthread_mutex_lock(&p->mu);
	for (struct ursa__job **pp = &p->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != j)
			continue;
		*pp = j->next;
		if (p->tail == j)
			p->tail = prev;
		found = true;
		break;
	}
	pthread_mutex_unlock(&p->mu);
	return found;
}

/* ursa__wait_for's withdraw: only a job still queued can be taken back. */
static bool withdraw(void *ctx, int why)
{
	struct ursa__job *j = ctx;

	(void)why;
	return ursa__pool_withdraw(&j->w.task->core->rt->pool, j);
}

int ursa_blocking(ursa_fn fn, void *arg, void **result)
{
	struct ursa_task *self = ursa__sched_self();
	struct ursa__job j = {.fn = fn, .arg = arg};
	uint64_t t0 = ursa__stats_clock();
	int rc;

	if (!self)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	rc = ursa__scope_check(self, NULL);
	if (rc)
		return rc;
	ursa__wait_init(&j.w, self);
	j.w.reason = URSA__PARK_POOL;
	rc = ursa__pool_submit(&self->core->rt->pool, &j);
	if (rc < 0)
		return rc;
	/* Cancelled while queued: withdrawn.  Once a thread runs it, it cannot
	 * be stopped, and its result wins. */
	rc = ursa__wait_for(&j.w, withdraw, &j);
	if (rc)
		return rc;
	ursa__stats_job(&self->core->stats, t0);
	if (result)
		*result = j.result;
	return 0;
}
