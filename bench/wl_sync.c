/* SPDX-License-Identifier: MIT */
/*
 * wl_sync.c: the asyncio-style primitives against their pthread
 * equivalents (issue 4's speed section):
 *
 *   lock        lock + unlock with nobody else around
 *   lock-2core  two tasks on two cores (two threads on two CPUs) taking one
 *               lock in turns: one op is one critical section
 *   queue       one item through a bounded queue (64 slots), producer to
 *               consumer, on one core and across cores; pthread: a ring
 *               buffer under a mutex with two condition variables
 *   future      a set -> wake round trip: A sets a future B waits on, B sets
 *               one A waits on; pthread: a flag under a mutex and a condvar
 *
 * Every path checks its work (counts and sums), so a lost wake-up shows as
 * a failure, not as a fast row.
 */
#include "bench.h"

#include <ursa.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define QUEUE_SLOTS 64

/* Which shape of ursa run: everything on core 0, or the partner on core 1. */
enum placement { ONE_CORE, TWO_CORES };

struct sync_run {
	uint64_t iters;
	enum placement where;
	struct bench_sample *s;
	int err;
	uint64_t done_a, done_b, sum; /* what each side counted */
	/* the shared object of the workload */
	struct ursa_mutex mutex;
	uint64_t counter;
	struct ursa_queue *queue;
	struct ursa_future ping[2], pong[2];
	_Atomic unsigned ready; /* lock-2core: both sides start together */
};

typedef void *(*side_fn)(void *);

struct two_sides {
	struct sync_run *r;
	side_fn a, b;
};

static void note_err(struct sync_run *r, int rc)
{
	if (rc < 0 && !r->err)
		r->err = rc;
}

/* Run side_a on core 0 and side_b on core 0 or 1, time both together. */
static void *two_sides_main(void *arg)
{
	struct two_sides *ts = arg;
	struct sync_run *r = ts->r;
	struct ursa_task *tb;
	struct bench_meter m;
	int rc;

	bench_meter_start(&m);
	rc = ursa_spawn_on(&tb, r->where == TWO_CORES ? 1 : 0, ts->b, r);
	if (rc < 0) {
		note_err(r, rc);
		return NULL;
	}
	ts->a(r);
	note_err(r, ursa_join(tb, NULL));
	bench_meter_stop(&m, r->s);
	return NULL;
}

static int run_two_sides(struct bench_ctx *ctx, struct sync_run *r, side_fn a, side_fn b)
{
	struct ursa_opts o = bench_ursa_opts(r->where == TWO_CORES ? 2 : 1);
	struct two_sides ts = {r, a, b};
	int rc;

	if (r->where == TWO_CORES && bench_ncpus() < 2)
		return bench_why(ctx, BENCH_SKIP, "needs two CPUs");
	rc = ursa_run(two_sides_main, &ts, &o, NULL);
	if (rc < 0)
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	if (r->err)
		return bench_why(ctx, BENCH_FAIL, "%s", ursa_strerror(r->err));
	return BENCH_OK;
}

static int check_counts(struct bench_ctx *ctx, struct bench_sample *s, uint64_t got_a,
                        uint64_t got_b, uint64_t want_a, uint64_t want_b)
{
	if (got_a != want_a || got_b != want_b)
		return bench_why(ctx, BENCH_FAIL, "check failed: %llu and %llu, expected %llu and %llu",
		                 (unsigned long long)got_a, (unsigned long long)got_b,
		                 (unsigned long long)want_a, (unsigned long long)want_b);
	s->ops = (double)ctx->iters;
	s->check = 1;
	return BENCH_OK;
}

/* ------------------------------------------------------------------ lock */

static void *lock_alone(void *arg)
{
	struct sync_run *r = arg;
	struct bench_meter m;

	bench_meter_start(&m);
	for (uint64_t i = 0; i < r->iters; i++) {
		int rc = ursa_mutex_lock(&r->mutex);

		if (rc < 0) {
			note_err(r, rc);
			break;
		}
		r->counter++;
		ursa_mutex_unlock(&r->mutex);
	}
	bench_meter_stop(&m, r->s);
	return NULL;
}

static int run_lock_ursa(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct ursa_opts o = bench_ursa_opts(1);
	struct sync_run r = {.iters = ctx->iters, .s = s};
	int rc;

	ursa_mutex_init(&r.mutex);
	rc = ursa_run(lock_alone, &r, &o, NULL);
	if (rc < 0)
		return bench_why(ctx, BENCH_SKIP, "ursa_run: %s", ursa_strerror(rc));
	if (r.err)
		return bench_why(ctx, BENCH_FAIL, "%s", ursa_strerror(r.err));
	return check_counts(ctx, s, r.counter, 0, ctx->iters, 0);
}

static int run_lock_pthread(struct bench_ctx *ctx, struct bench_sample *s)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct bench_meter m;
	uint64_t counter = 0;

	bench_meter_start(&m);
	for (uint64_t i = 0; i < ctx->iters; i++) {
		pthread_mutex_lock(&mu);
		counter++;
		bench_keep(&counter);
		pthread_mutex_unlock(&mu);
	}
	bench_meter_stop(&m, s);
	return check_counts(ctx, s, counter, 0, ctx->iters, 0);
}

/* Each side takes the lock half of the iterations. */
static void *lock_side(void *arg)
{
	struct sync_run *r = arg;
	uint64_t mine = 0, n = r->iters / 2 + (ursa_core() == 0 ? r->iters % 2 : 0);

	/* Start together, or one side does its half before the other arrives
	 * and nothing contends.  Each side is alone on its core: yielding while
	 * waiting costs nobody. */
	atomic_fetch_add(&r->ready, 1);
	while (atomic_load(&r->ready) < 2)
		ursa_yield();
	for (uint64_t i = 0; i < n; i++) {
		int rc = ursa_mutex_lock(&r->mutex);

		if (rc < 0) {
			note_err(r, rc);
			break;
		}
		r->counter++;
		mine++;
		ursa_mutex_unlock(&r->mutex);
	}
	return (void *)(uintptr_t)mine;
}

static void *lock_side_b(void *arg)
{
	struct sync_run *r = arg;

	r->done_b = (uintptr_t)lock_side(r);
	return NULL;
}

static void *lock_side_a(void *arg)
{
	struct sync_run *r = arg;

	r->done_a = (uintptr_t)lock_side(r);
	return NULL;
}

static int run_lock2_ursa(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct sync_run r = {.iters = ctx->iters, .where = TWO_CORES, .s = s};
	int rc;

	ursa_mutex_init(&r.mutex);
	rc = run_two_sides(ctx, &r, lock_side_a, lock_side_b);
	if (rc != BENCH_OK)
		return rc;
	return check_counts(ctx, s, r.counter, r.done_a + r.done_b, ctx->iters, ctx->iters);
}

struct pt_lock2 {
	pthread_mutex_t mu;
	uint64_t counter, n[2];
	pthread_barrier_t go;
};

struct pt_arg {
	void *shared;
	unsigned id;
};

static void *pt_lock_side(void *arg)
{
	struct pt_arg *pa = arg;
	struct pt_lock2 *l = pa->shared;

	bench_pin_self(pa->id);
	pthread_barrier_wait(&l->go);
	for (uint64_t i = 0; i < l->n[pa->id]; i++) {
		pthread_mutex_lock(&l->mu);
		l->counter++;
		pthread_mutex_unlock(&l->mu);
	}
	return NULL;
}

/* Start two pinned threads running fn over shared, time them from the
 * barrier both wait at to the last join. */
static int run_two_threads(struct bench_ctx *ctx, struct bench_sample *s, void *(*fn)(void *),
                           void *shared, pthread_barrier_t *go)
{
	struct pt_arg args[2] = {{shared, 0}, {shared, 1}};
	struct bench_meter m;
	pthread_t t;
	int rc;

	if (bench_ncpus() < 2)
		return bench_why(ctx, BENCH_SKIP, "needs two CPUs");
	pthread_barrier_init(go, NULL, 2);
	rc = pthread_create(&t, NULL, fn, &args[1]);
	if (rc != 0) {
		pthread_barrier_destroy(go);
		return bench_why(ctx, BENCH_SKIP, "pthread_create: %s", strerror(rc));
	}
	bench_meter_start(&m);
	fn(&args[0]);
	pthread_join(t, NULL);
	bench_meter_stop(&m, s);
	pthread_barrier_destroy(go);
	return BENCH_OK;
}

static int run_lock2_pthread(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct pt_lock2 l = {.mu = PTHREAD_MUTEX_INITIALIZER};
	int rc;

	l.n[0] = ctx->iters / 2 + ctx->iters % 2;
	l.n[1] = ctx->iters / 2;
	rc = run_two_threads(ctx, s, pt_lock_side, &l, &l.go);
	if (rc != BENCH_OK)
		return rc;
	return check_counts(ctx, s, l.counter, 0, ctx->iters, 0);
}

/* ----------------------------------------------------------------- queue */

static void *producer(void *arg)
{
	struct sync_run *r = arg;

	for (uint64_t i = 1; i <= r->iters; i++) {
		int rc = ursa_queue_put(r->queue, (void *)(uintptr_t)i);

		if (rc < 0) {
			note_err(r, rc);
			ursa_queue_close(r->queue); /* the consumer must not wait forever */
			break;
		}
		r->done_a++;
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct sync_run *r = arg;

	for (uint64_t i = 0; i < r->iters; i++) {
		void *item;
		int rc = ursa_queue_get(r->queue, &item);

		if (rc < 0) {
			note_err(r, rc);
			break;
		}
		r->sum += (uintptr_t)item;
		r->done_b++;
	}
	return NULL;
}

static int run_queue_ursa(struct bench_ctx *ctx, struct bench_sample *s, enum placement where)
{
	struct sync_run r = {.iters = ctx->iters, .where = where, .s = s};
	uint64_t n = ctx->iters;
	int rc;

	rc = ursa_queue_create(&r.queue, QUEUE_SLOTS, 0);
	if (rc < 0)
		return bench_why(ctx, BENCH_FAIL, "ursa_queue_create: %s", ursa_strerror(rc));
	rc = run_two_sides(ctx, &r, producer, consumer);
	ursa_queue_destroy(r.queue);
	if (rc != BENCH_OK)
		return rc;
	if (r.sum != n * (n + 1) / 2)
		return bench_why(ctx, BENCH_FAIL, "check failed: the items' sum differs");
	return check_counts(ctx, s, r.done_a, r.done_b, n, n);
}

static int run_queue_1core(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_queue_ursa(ctx, s, ONE_CORE);
}

static int run_queue_2core(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_queue_ursa(ctx, s, TWO_CORES);
}

/* The classic bounded buffer: a mutex and two condition variables. */
struct pt_queue {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	uintptr_t slot[QUEUE_SLOTS];
	unsigned head, len;
	uint64_t n, sum, got;
	pthread_barrier_t go;
};

static void *pt_queue_side(void *arg)
{
	struct pt_arg *pa = arg;
	struct pt_queue *q = pa->shared;

	bench_pin_self(pa->id);
	pthread_barrier_wait(&q->go);
	for (uint64_t i = 1; i <= q->n; i++) {
		pthread_mutex_lock(&q->mu);
		if (pa->id == 0) { /* producer */
			while (q->len == QUEUE_SLOTS)
				pthread_cond_wait(&q->not_full, &q->mu);
			q->slot[(q->head + q->len++) % QUEUE_SLOTS] = i;
			pthread_cond_signal(&q->not_empty);
		} else {
			while (q->len == 0)
				pthread_cond_wait(&q->not_empty, &q->mu);
			q->sum += q->slot[q->head];
			q->head = (q->head + 1) % QUEUE_SLOTS;
			q->len--;
			q->got++;
			pthread_cond_signal(&q->not_full);
		}
		pthread_mutex_unlock(&q->mu);
	}
	return NULL;
}

static int run_queue_pthread(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct pt_queue q = {.mu = PTHREAD_MUTEX_INITIALIZER,
	                     .not_empty = PTHREAD_COND_INITIALIZER,
	                     .not_full = PTHREAD_COND_INITIALIZER,
	                     .n = ctx->iters};
	int rc = run_two_threads(ctx, s, pt_queue_side, &q, &q.go);

	if (rc != BENCH_OK)
		return rc;
	if (q.sum != q.n * (q.n + 1) / 2)
		return bench_why(ctx, BENCH_FAIL, "check failed: the items' sum differs");
	return check_counts(ctx, s, q.got, 0, ctx->iters, 0);
}

/* ---------------------------------------------------------------- future */

/*
 * Round i uses ping[i % 2] and pong[i % 2].  Each side re-initialises the
 * future it will set next round before setting this round's: the partner
 * cannot be waiting on it yet (it waits on it only after this round's set),
 * and nobody still waits on it from two rounds ago.
 */
static void *pinger(void *arg)
{
	struct sync_run *r = arg;

	for (uint64_t i = 0; i < r->iters; i++) {
		unsigned k = i % 2;
		int rc;

		ursa_future_init(&r->ping[!k]);
		ursa_future_set_result(&r->ping[k], (void *)(uintptr_t)(i + 1));
		rc = ursa_future_wait(&r->pong[k], NULL);
		if (rc < 0) {
			note_err(r, rc);
			ursa_future_cancel(&r->ping[!k]); /* release the ponger */
			break;
		}
		r->done_a++;
	}
	return NULL;
}

static void *ponger(void *arg)
{
	struct sync_run *r = arg;

	for (uint64_t i = 0; i < r->iters; i++) {
		unsigned k = i % 2;
		void *v;
		int rc = ursa_future_wait(&r->ping[k], &v);

		if (rc < 0) {
			note_err(r, rc);
			break;
		}
		r->sum += (uintptr_t)v;
		r->done_b++;
		ursa_future_init(&r->pong[!k]);
		ursa_future_set_result(&r->pong[k], NULL);
	}
	return NULL;
}

static int run_future_ursa(struct bench_ctx *ctx, struct bench_sample *s, enum placement where)
{
	struct sync_run r = {.iters = ctx->iters, .where = where, .s = s};
	uint64_t n = ctx->iters;
	int rc;

	for (unsigned k = 0; k < 2; k++) {
		ursa_future_init(&r.ping[k]);
		ursa_future_init(&r.pong[k]);
	}
	rc = run_two_sides(ctx, &r, pinger, ponger);
	for (unsigned k = 0; k < 2; k++) {
		ursa_future_fini(&r.ping[k]);
		ursa_future_fini(&r.pong[k]);
	}
	if (rc != BENCH_OK)
		return rc;
	if (r.sum != n * (n + 1) / 2)
		return bench_why(ctx, BENCH_FAIL, "check failed: the values' sum differs");
	return check_counts(ctx, s, r.done_a, r.done_b, n, n);
}

static int run_future_1core(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_future_ursa(ctx, s, ONE_CORE);
}

static int run_future_2core(struct bench_ctx *ctx, struct bench_sample *s)
{
	return run_future_ursa(ctx, s, TWO_CORES);
}

/* A turn flag under a mutex, one condvar: each thread waits for its turn,
 * passes it, signals. */
struct pt_pingpong {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned turn;
	uint64_t n, rounds[2];
	pthread_barrier_t go;
};

static void *pt_pingpong_side(void *arg)
{
	struct pt_arg *pa = arg;
	struct pt_pingpong *p = pa->shared;

	bench_pin_self(pa->id);
	pthread_barrier_wait(&p->go);
	for (uint64_t i = 0; i < p->n; i++) {
		pthread_mutex_lock(&p->mu);
		while (p->turn != pa->id)
			pthread_cond_wait(&p->cv, &p->mu);
		p->turn = !pa->id;
		p->rounds[pa->id]++;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

static int run_future_pthread(struct bench_ctx *ctx, struct bench_sample *s)
{
	struct pt_pingpong p = {.mu = PTHREAD_MUTEX_INITIALIZER,
	                        .cv = PTHREAD_COND_INITIALIZER,
	                        .n = ctx->iters};
	int rc = run_two_threads(ctx, s, pt_pingpong_side, &p, &p.go);

	if (rc != BENCH_OK)
		return rc;
	return check_counts(ctx, s, p.rounds[0], p.rounds[1], ctx->iters, ctx->iters);
}

/* ------------------------------------------------------------ workloads */

static void describe(const struct bench_params *p, const struct bench_workload *w, char *buf,
                     size_t len)
{
	(void)w;
	snprintf(buf, len, "\"min_time_s\": %g", p->min_time_s);
}

static const struct bench_path lock_paths[] = {
	{"ursa", BENCH_RING, "ursa_mutex_lock + unlock in one task (1 core)", run_lock_ursa, NULL,
	 0, false, true, true},
	{"pthread", BENCH_THREADED, "pthread_mutex_lock + unlock in one thread", run_lock_pthread,
	 NULL, 0, false, true, false},
};

const struct bench_workload bench_wl_lock = {
	.name = "lock",
	.summary = "lock + unlock, uncontended: ursa_mutex vs pthread_mutex",
	.help = "              One op: lock, increment a counter, unlock.\n",
	.unit = "lock+unlock",
	.micro = true,
	.in_default = true,
	.baseline = "pthread",
	.paths = lock_paths,
	.npaths = sizeof(lock_paths) / sizeof(lock_paths[0]),
	.describe = describe,
};

static const struct bench_path lock2_paths[] = {
	{"ursa", BENCH_RING, "a task on each of two cores, one ursa_mutex (barging, 1 ms guard)",
	 run_lock2_ursa, NULL, 0, false, false, true},
	{"pthread", BENCH_THREADED, "a thread on each of two CPUs, one pthread_mutex (barging)",
	 run_lock2_pthread, NULL, 0, false, false, false},
};

static const struct bench_target lock2_targets[] = {
	{"ursa", "pthread", BENCH_M_OPS, 0.5, false, "lock-2core >= 0.5x pthread (issue 13)", 0},
};

const struct bench_workload bench_wl_lock_2core = {
	.name = "lock-2core",
	.summary = "one lock taken in turns from two cores",
	.help = "              One op: one critical section (lock, increment, unlock), the two\n"
	        "              sides contending.  Both mutexes let a running thread or task take\n"
	        "              a free lock ahead of a parked waiter; ursa_mutex hands it to a\n"
	        "              waiter that has waited 1 ms (its starvation guard).\n",
	.unit = "critical section",
	.micro = true,
	.in_default = true,
	.baseline = "pthread",
	.paths = lock2_paths,
	.npaths = sizeof(lock2_paths) / sizeof(lock2_paths[0]),
	.targets = lock2_targets,
	.ntargets = sizeof(lock2_targets) / sizeof(lock2_targets[0]),
	.describe = describe,
};

static const struct bench_path queue_paths[] = {
	{"ursa-1core", BENCH_RING, "producer and consumer tasks on one core, ursa_queue_put/get",
	 run_queue_1core, NULL, 0, false, true, true},
	{"ursa-2core", BENCH_RING, "the producer on core 0, the consumer on core 1",
	 run_queue_2core, NULL, 0, false, false, true},
	{"pthread", BENCH_THREADED, "two threads on two CPUs, a mutex and two condvars",
	 run_queue_pthread, NULL, 0, false, false, false},
};

static const struct bench_target queue_targets[] = {
	{"ursa-2core", "pthread", BENCH_M_OPS, 3, false, "queue-2core >= 3x pthread (issue 13)", 0},
};

const struct bench_workload bench_wl_queue = {
	.name = "queue",
	.summary = "one item through a bounded queue (64 slots), producer to consumer",
	.help = "              One op: one item put by the producer and got by the consumer.\n",
	.unit = "item",
	.micro = true,
	.in_default = true,
	.baseline = "pthread",
	.paths = queue_paths,
	.npaths = sizeof(queue_paths) / sizeof(queue_paths[0]),
	.targets = queue_targets,
	.ntargets = sizeof(queue_targets) / sizeof(queue_targets[0]),
	.describe = describe,
};

static const struct bench_path future_paths[] = {
	{"ursa-1core", BENCH_RING, "two tasks on one core, each setting the future the other waits on",
	 run_future_1core, NULL, 0, false, true, true},
	{"ursa-2core", BENCH_RING, "the same, one task on each of two cores", run_future_2core, NULL,
	 0, false, false, true},
	{"pthread", BENCH_THREADED, "two threads on two CPUs, a turn flag under a mutex + condvar",
	 run_future_pthread, NULL, 0, false, false, false},
};

static const struct bench_target future_targets[] = {
	{"ursa-2core", NULL, BENCH_M_NS_OP, 5000, true,
	 "future-2core round trip <= 5 us (issue 13)", 0},
	{"ursa-2core", "pthread", BENCH_M_OPS, 10, false,
	 "future-2core >= 10x pthread's round trips (issue 13)", 0},
};

const struct bench_workload bench_wl_future = {
	.name = "future",
	.summary = "set -> wake round trip between two tasks",
	.help = "              One op: A sets a future B waits on, then waits on one B sets.\n",
	.unit = "round trip",
	.micro = true,
	.in_default = true,
	.baseline = "pthread",
	.paths = future_paths,
	.npaths = sizeof(future_paths) / sizeof(future_paths[0]),
	.targets = future_targets,
	.ntargets = sizeof(future_targets) / sizeof(future_targets[0]),
	.describe = describe,
};
