/* SPDX-License-Identifier: MIT */
/*
 * runtime.c: ursa_run: options, starting (and, if asked, pinning) the
 * workers, each core's set-up and tear-down, and the start-up failure report.
 *
 * Per-core set-up, in order (tear-down is the reverse):
 *   1. pin the thread to its CPU, if asked (URSA_OPT_PIN);
 *   2. the ring (must be made on this thread: SINGLE_ISSUER, DEFER_TASKRUN);
 *   3. the eventfd other threads kick us through;
 *   4. the stack cache;
 *   5. the alternate signal stack for the overflow report.
 */
#include "fiber/switch.h"
#include "fdreg.h"
#include "guard.h"
#include "io.h"
#include "scope.h"
#include "stall.h"
#include "stats.h"
#include "task.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DEFAULT_RING_ENTRIES 256u
#define MAX_RING_ENTRIES 32768u
#define DEFAULT_STACK_SIZE (128u * 1024u)
#define DEFAULT_STACK_CACHE 256u
#define DEFAULT_STACK_TRIM_MS 100u
#define MAX_CORES 1024u
#define MAX_POOL_THREADS 4096u   /* more would be a thread per job, not a pool */
#define MAX_STACK_CACHE 1048576u /* per core; the cache's array is allocated up front */

/* ---------------------------------------------------------------- options */

/* Parse an unsigned number with an optional K/M/G suffix (powers of 1024). */
static int parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || v > ULLONG_MAX >> shift) /* 2^64 and above is not "huge", it is wrong */
		return -EINVAL;
	v <<= shift;
	*out = v;
	return 0;
}

/* An option: the explicit value if non-zero, else the environment, else 0
 * (meaning: the default).  A malformed environment value is an error, not a
 * silent default. */
static int pick(unsigned long long given, const char *env, unsigned long long *out)
{
	const char *s = getenv(env);

	*out = given;
	if (given || !s || !*s)
		return 0;
	if (parse_size(s, out) < 0) {
		fprintf(stderr, "ursa: %s=%s is not a number\n", env, s);
		return -EINVAL;
	}
	return 0;
}

static int resolve(struct ursa__config *cfg, const struct ursa_opts *o)
{
	static const struct ursa_opts none;
	unsigned long long v;
	cpu_set_t mask;
	int ncpu = 0;

	if (!o)
		o = &none;
	if (o->flags & ~URSA_OPT_PIN)
		return -EINVAL;
	CPU_ZERO(&mask);
	if (sched_getaffinity(0, sizeof(mask), &mask) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &mask))
				cfg->cpus[ncpu++] = i;
	if (ncpu == 0) /* affinity unknown: count online CPUs, unpinned order */
		for (long n = sysconf(_SC_NPROCESSORS_ONLN); ncpu < n && ncpu < CPU_SETSIZE; ncpu++)
			cfg->cpus[ncpu] = ncpu;

	if (pick(o->cores, "URSA_CORES", &v) < 0)
		return -EINVAL;
	if (v > MAX_CORES)
		return -EINVAL;
	cfg->cores = v ? (unsigned)v : (unsigned)ncpu;
	/* More cores than CPUs: pin round-robin (useful for testing). */
	for (unsigned i = (unsigned)ncpu; i < cfg->cores && i < CPU_SETSIZE; i++)
		cfg->cpus[i] = cfg->cpus[i % (unsigned)ncpu];

	if (pick(o->ring_entries, "URSA_RING_ENTRIES", &v) < 0)
		return -EINVAL;
	if (v > MAX_RING_ENTRIES)
		return -EINVAL;
	cfg->ring_entries = v ? (unsigned)v : DEFAULT_RING_ENTRIES;
	if (cfg->ring_entries < 8)
		cfg->ring_entries = 8;

	if (pick(o->stack_size, "URSA_STACK_SIZE", &v) < 0)
		return -EINVAL;
	if (v && (v < URSA__STACK_MIN || v > URSA__STACK_MAX))
		return -EINVAL;
	cfg->stack_size = v ? (size_t)v : DEFAULT_STACK_SIZE;

	if (pick(o->pool_threads, "URSA_POOL_THREADS", &v) < 0 || v > MAX_POOL_THREADS)
		return -EINVAL;
	/* asyncio's default executor size: min(32, CPUs + 4). */
	cfg->pool_threads = v ? (unsigned)v : (unsigned)(ncpu + 4 < 32 ? ncpu + 4 : 32);

	if (pick(o->stack_cache, "URSA_STACK_CACHE", &v) < 0 || v > MAX_STACK_CACHE)
		return -EINVAL;
	cfg->stack_cache = v ? (unsigned)v : DEFAULT_STACK_CACHE;

	if (pick(o->stall_ms, "URSA_STALL_MS", &v) < 0 || v > UINT_MAX)
		return -EINVAL;
	cfg->stall_ms = (unsigned)v; /* 0: off */

	/* Stacks (lib/fiber/stack.h): the guard below each, and how long free
	 * stacks beyond stack_cache stay before they go back to the kernel. */
	if (pick(o->stack_guard, "URSA_STACK_GUARD", &v) < 0)
		return -EINVAL;
	if (v > URSA__STACK_MAX)
		return -EINVAL;
	cfg->stack_guard = v ? (size_t)v : URSA__STACK_GUARD_DEFAULT;
	if (pick(o->stack_trim_ms, "URSA_STACK_TRIM_MS", &v) < 0)
		return -EINVAL;
	if (v > UINT32_MAX / 2)
		return -EINVAL;
	cfg->stack_trim_ms = v ? (unsigned)v : DEFAULT_STACK_TRIM_MS;

	/* Idle polling: here 0 means the default, as for every field, so "off"
	 * has a value of its own; in the environment "0" is off. */
	if (o->idle_poll_us == URSA_IDLE_POLL_OFF) {
		v = 0;
	} else if (o->idle_poll_us) {
		v = o->idle_poll_us;
	} else {
		const char *e = getenv("URSA_IDLE_POLL_US");

		v = URSA_IDLE_POLL_DEFAULT_US;
		if (e && *e && parse_size(e, &v) < 0) {
			fprintf(stderr, "ursa: URSA_IDLE_POLL_US=%s is not a number\n", e);
			return -EINVAL;
		}
	}
	if (v > URSA_IDLE_POLL_MAX_US)
		return -EINVAL;
	cfg->idle_poll_ns = v * 1000u;

	/* Pinning is asked for, never the default (docs/design.md, "Pinning"). */
	if (pick(o->flags & URSA_OPT_PIN, "URSA_PIN", &v) < 0)
		return -EINVAL;
	cfg->pin = v != 0;

	cfg->stats_socket = o->stats_socket ? o->stats_socket : getenv("URSA_STATS_SOCKET");
	return 0;
}

/* ------------------------------------------------------- start-up failure */

static void explain_ring_failure(int err)
{
	static atomic_bool said;

	if (atomic_exchange(&said, true))
		return;
	fprintf(stderr, "ursa: io_uring is unavailable (%s): %s\n", strerror(-err),
	        ursa__ring_refusal_hint(err));
}

/* --------------------------------------------------------------- per core */

static int core_init(struct ursa__core *c)
{
	struct ursa__runtime *rt = c->rt;
	int rc;

	if (rt->cfg.pin) {
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(rt->cfg.cpus[c->id % CPU_SETSIZE], &one);
		/* A CPU that vanished from the mask is not fatal: run unpinned. */
		(void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	}

	rc = ursa__ring_init(&c->ring, rt->cfg.ring_entries);
	if (rc < 0) {
		c->ring_refused = true;
		return rc;
	}
	c->eventfd = eventfd(0, EFD_CLOEXEC);
	if (c->eventfd < 0) {
		rc = -errno;
		ursa__ring_fini(&c->ring);
		return rc;
	}
	struct ursa__stack_config sc = {
		.size = rt->cfg.stack_size,
		.guard = rt->cfg.stack_guard,
		.rec_size = sizeof(struct ursa_task),
		.keep = rt->cfg.stack_cache,
		.trim_ns = (uint64_t)rt->cfg.stack_trim_ms * 1000000u,
	};
	rc = ursa__stack_cache_init(&c->stacks, &sc, ursa__stack_trim_arm, c);
	if (rc == 0)
		rc = ursa__guard_thread_init(c);
	if (rc < 0) {
		ursa__stack_cache_fini(&c->stacks);
		close(c->eventfd);
		c->eventfd = -1;
		ursa__ring_fini(&c->ring);
	}
	return rc;
}

/* What other threads can reach: the ring (MSG_RING kicks) and the eventfd
 * (kicks from pool and foreign threads).  Closed only once every worker and
 * pool thread is gone: the last task's core kicks the others as it ends, and
 * a core that already saw nothing left may have exited by then; closing
 * early let that kick hit a closed or reused fd (found by TSan). */
static void core_close_shared(struct ursa__core *c)
{
	/* Stacks a worker could not release as it stopped: a task of another
	 * core still lived on one of them until that core freed it. */
	ursa__stack_cache_fini(&c->stacks);
	ursa__ring_fini(&c->ring);
	ursa__io_core_fini(c);
	close(c->eventfd);
	c->eventfd = -1;
}

/* What only this core's thread uses, released by that thread. */
static void core_fini_local(struct ursa__core *c)
{
	/* Finished tasks nobody joined: nobody can any more. */
	while (!ursa__list_empty(&c->tasks)) {
		struct ursa_task *t =
			ursa__container_of(c->tasks.next, struct ursa_task, all);

		ursa__task_free(c, t);
	}
	ursa__guard_thread_fini(c);
	ursa__scope_fini(c);
}

/* The worker thread's own stack, which ASan must know about. */
static void find_thread_stack(struct ursa__core *c)
{
	pthread_attr_t attr;

	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &c->sched_stack_lo, &c->sched_stack_size);
		pthread_attr_destroy(&attr);
	}
}

/* Start-up rendezvous: workers report, the caller decides go or abort. */
static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER;

struct start {
	unsigned ready;
	int go; /* 0: wait, 1: run, -1: abort */
};

struct worker_arg {
	struct ursa__core *core;
	struct start *start;
};

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct ursa__core *c = wa->core;
	struct start *st = wa->start;
	struct ursa__runtime *rt = c->rt;
	int go;

	c->tid = gettid();
	c->init_err = core_init(c);
	pthread_mutex_lock(&start_mu);
	st->ready++;
	pthread_cond_broadcast(&start_cv);
	while (st->go == 0)
		pthread_cond_wait(&start_cv, &start_mu);
	go = st->go;
	pthread_mutex_unlock(&start_mu);
	if (go < 0) {
		/* Start-up failed: nothing ran, nobody else can reach us. */
		if (c->init_err == 0) {
			core_fini_local(c);
			core_close_shared(c);
		}
		return NULL;
	}

	ursa__sched_core = c;
	find_thread_stack(c);
	c->tsan_fiber = ursa__fiber_tsan_current();
	if (c->id == 0) {
		struct ursa_spawn_opts so = {.flags = URSA_SPAWN_DETACHED, .name = "main"};
		struct ursa_task *t;

		/* main is created here, on core 0, before the loop first runs. */
		rt->main_spawn_err = ursa__task_spawn(rt, c, NULL, rt->main_fn, rt->main_arg, &so);
		if (rt->main_spawn_err == 0) {
			t = ursa__container_of(c->runq.prev, struct ursa_task, link);
			rt->main_task = t;
		} else {
			atomic_store(&rt->stopping, true);
			for (unsigned i = 1; i < rt->cfg.cores; i++)
				ursa__sched_kick(&rt->cores[i]);
		}
	}
	ursa__sched_loop(c);
	core_fini_local(c);
	/* Usually every stack of ours is back by now: unmap them here, in
	 * parallel with the other cores (a million stacks take over a second
	 * of munmap); else ursa_run does it once all workers are gone. */
	(void)ursa__stack_cache_release(&c->stacks);
	ursa__sched_core = NULL;
	return NULL;
}

/* --------------------------------------------------------------- ursa_run */

int ursa_run(ursa_fn main, void *arg, const struct ursa_opts *opts, void **result)
{
	struct ursa__runtime *rt;
	struct worker_arg *args = NULL;
	struct start st = {0, 0};
	unsigned started = 0;
	int rc;

	if (ursa__sched_core)
		return -EBUSY;
	if (!main)
		return -EINVAL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	rc = resolve(&rt->cfg, opts);
	if (rc < 0)
		goto out_rt;
	rt->main_fn = main;
	rt->main_arg = arg;
	rt->cores = aligned_alloc(64, sizeof(*rt->cores) * rt->cfg.cores);
	args = calloc(rt->cfg.cores, sizeof(*args));
	if (!rt->cores || !args) {
		rc = -ENOMEM;
		goto out_cores;
	}
	memset(rt->cores, 0, sizeof(*rt->cores) * rt->cfg.cores);
	for (unsigned i = 0; i < rt->cfg.cores; i++) {
		struct ursa__core *c = &rt->cores[i];

		c->id = i;
		c->spawn_cursor = i; /* URSA_CORE_ANY from core i starts at i */
		c->rt = rt;
		c->eventfd = -1;
		ursa__list_init(&c->runq);
		ursa__list_init(&c->tasks);
		atomic_init(&c->inbox, NULL);
		args[i].core = c;
		args[i].start = &st;
	}
	rc = ursa__fdreg_init(rt);
	if (rc < 0)
		goto out_cores;
	rc = ursa__pool_init(&rt->pool, rt->cfg.pool_threads);
	if (rc < 0)
		goto out_cores;
	rc = ursa__guard_install();
	if (rc < 0)
		goto out_pool;

	for (; started < rt->cfg.cores; started++) {
		rc = -pthread_create(&rt->cores[started].thread, NULL, worker_main, &args[started]);
		if (rc)
			break;
	}
	pthread_mutex_lock(&start_mu);
	while (st.ready < started)
		pthread_cond_wait(&start_cv, &start_mu);
	for (unsigned i = 0; i < started && rc == 0; i++)
		rc = rt->cores[i].init_err;
	/* The stats service starts before any task runs, so its socket is
	 * listening when the first task (or a viewer it tells) connects.  It
	 * is not worth failing the run for (it said why). */
	if (rc == 0)
		(void)ursa__stats_start(rt);
	st.go = rc == 0 ? 1 : -1;
	pthread_cond_broadcast(&start_cv);
	pthread_mutex_unlock(&start_mu);
	/* A detector that cannot start is not worth failing the run for. */
	if (rc == 0 && ursa__stall_start(rt) < 0)
		fprintf(stderr, "ursa: the stall detector could not start; running without it\n");
	for (unsigned i = 0; i < started; i++)
		pthread_join(rt->cores[i].thread, NULL);
	ursa__stall_stop(rt);
	ursa__stats_stop(rt);
	if (st.go > 0) {
		/* Every worker is gone; stop the pool, then close what they
		 * could reach of each other. */
		ursa__pool_fini(&rt->pool);
		for (unsigned i = 0; i < started; i++)
			core_close_shared(&rt->cores[i]);
	}

	if (rc == 0)
		rc = rt->main_spawn_err;
	/* Only io_uring_setup's own refusal gets the explanation: an -ENOMEM
	 * from a stack cache or a thread is not about locked memory, and an
	 * -EMFILE from io_uring_setup is only the fd limit (ursa.h). */
	for (unsigned i = 0; rc < 0 && i < started; i++)
		if (rt->cores[i].ring_refused && rt->cores[i].init_err == rc &&
		    (rc == -ENOSYS || rc == -EPERM || rc == -EACCES || rc == -ENOMEM)) {
			explain_ring_failure(rc);
			break;
		}
	if (rc == 0 && result)
		*result = rt->main_result;

	ursa__guard_uninstall();
	if (st.go > 0)
		goto out_cores; /* the pool is already stopped */
out_pool:
	ursa__pool_fini(&rt->pool);
out_cores:
	ursa__fdreg_fini(rt);
	free(args);
	free(rt->cores);
out_rt:
	free(rt);
	return rc;
}

/* ------------------------------------------------------------ reporting */

static pthread_once_t features_once = PTHREAD_ONCE_INIT;
static char features_buf[1024];

static void describe(void)
{
	struct ursa__stack probe;
	size_t n;

	/* Map one stack so the guard mechanism is probed, not guessed. */
	if (ursa__stack_map(&probe, 16 * 1024) == 0)
		ursa__stack_unmap(&probe);

	ursa__ring_describe(features_buf, sizeof(features_buf));
	n = strlen(features_buf);
	snprintf(features_buf + n, sizeof(features_buf) - n,
	         "fiber backend: %s\nstack guards: %s\n",
#ifdef URSA_FIBER_UCONTEXT
	         "ucontext",
#else
	         "asm",
#endif
	         ursa__stack_guard_kind());
}

const char *ursa_features(void)
{
	pthread_once(&features_once, describe);
	return features_buf;
}

const char *ursa_strerror(int err)
{
	const char *s = err < 0 ? strerrordesc_np(-err) : NULL;

	if (err == 0)
		return "Success";
	return s ? s : "Unknown error";
}
