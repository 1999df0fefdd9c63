/* SPDX-License-Identifier: MIT */
/*
 * stats.h: the per-core counters behind ursa_stats (stats.c reads and
 * reports them; docs/observability.md says what each means).
 *
 * A leaf header: ring.h and runtime.h include it to embed the counters.
 * Every counter has one writer, its own core (the ring's counters too; the
 * watchdog writes only `stalls`), which updates it with a relaxed atomic
 * load and store: a plain `mov` on x86-64 and aarch64, no lock prefix, no
 * read-modify-write, but a race that TSan accepts when another thread reads
 * the field as a snapshot.  meson -Dstats=false defines URSA_STATS_OFF and
 * every update below compiles to nothing.
 *
 * Where the features count: idle polling in idle() (sched.c); the page-cache
 * fast path in rw() (io_file.c); the stack gauges are not counted here but
 * read from the stack cache's own (fiber/stack.h) when a snapshot is taken.
 */
#ifndef URSA_STATS_INTERNAL_H
#define URSA_STATS_INTERNAL_H

#include <stdint.h>
#include <time.h>

#define URSA__STATS_OPCODES 64u /* = URSA_STATS_OPCODES (ursa/stats.h) */

/* Why a task is parked (ursa_task.park_reason, ursa__wait.reason). */
enum {
	URSA__PARK_OTHER = 0,     /* a condition of its own (gather, receivers) */
	URSA__PARK_RING = 1,      /* an io_uring op (lib/op.c) */
	URSA__PARK_PRIMITIVE = 2, /* a lock, queue, event, future... (waitq) */
	URSA__PARK_JOIN = 3,      /* joining a task */
	URSA__PARK_POOL = 4,      /* a blocking-pool job */
	URSA__PARK_NREASONS = 5,
};

/* One core's counters (struct ursa__core.stats).  Written by the core only. */
struct ursa__stats {
	uint64_t tasks_spawned, tasks_ended;
	uint64_t tasks_runnable, pending; /* gauges, published each turn */
	uint64_t parked[URSA__PARK_NREASONS];
	uint64_t parks; /* switches: core->turn / 2; yields: the rest (stats.c) */
	uint64_t turns, enters, sleeps, sleep_ns, idle_polls, idle_poll_ns;
	uint64_t ops, ops_inflight;
	uint64_t file_inline, file_ring;
	uint64_t xwakes_sent, xwakes_recv, kicks;
	uint64_t pool_jobs, pool_job_ns;
	uint64_t stalls; /* the stall watchdog's, not the core's */
	uint64_t ops_by_opcode[URSA__STATS_OPCODES];
	uint32_t inflight_by_opcode[URSA__STATS_OPCODES];
};

/* One ring's counters (struct ursa__ring.stats), kept by ring.c. */
struct ursa__ring_stats {
	uint64_t submits, sqes, cqes, sq_full, cq_overflow;
};

/* Relaxed loads and stores of a plain field (see the top of this file). */
#define URSA__STAT_GET(f) __atomic_load_n(&(f), __ATOMIC_RELAXED)
#ifdef URSA_STATS_OFF
#define URSA__STAT_SET(f, v) ((void)0)
#define URSA__STAT_ADD(f, n) ((void)0)
#else
#define URSA__STAT_SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)
#define URSA__STAT_ADD(f, n) URSA__STAT_SET(f, URSA__STAT_GET(f) + (n))
#endif
#define URSA__STAT_INC(f) URSA__STAT_ADD(f, 1)

/* The monotonic clock for a counter's duration; 0 without counters. */
static inline uint64_t ursa__stats_clock(void)
{
#ifdef URSA_STATS_OFF
	return 0;
#else
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

/* The gauges others read, published when the core enters the kernel (so a
 * core asleep shows them exact; a busy core with I/O enters every turn). */
static inline void ursa__stats_gauges(struct ursa__stats *s, unsigned runq, unsigned pending)
{
	URSA__STAT_SET(s->tasks_runnable, runq);
	URSA__STAT_SET(s->pending, pending);
	(void)s, (void)runq, (void)pending;
}

/* A loop turn begins. */
static inline void ursa__stats_turn(struct ursa__stats *s)
{
	URSA__STAT_INC(s->turns);
	(void)s;
}

/* The loop's io_uring_enter; t0 was taken before it if it waited. */
static inline void ursa__stats_enter(struct ursa__stats *s, int waited, uint64_t t0)
{
	URSA__STAT_INC(s->enters);
	if (waited) {
		URSA__STAT_INC(s->sleeps);
		URSA__STAT_ADD(s->sleep_ns, ursa__stats_clock() - t0);
	}
	(void)s, (void)waited, (void)t0;
}

/* An idle poll (busy polling before sleeping) that began at t0. */
#define URSA__STATS_IDLE_POLL(s, t0)                                             \
	do {                                                                     \
		URSA__STAT_INC((s)->idle_polls);                                 \
		URSA__STAT_ADD((s)->idle_poll_ns, ursa__stats_clock() - (t0));   \
	} while (0)

/* A task parks for `reason` (then resumes, resetting its reason). */
static inline void ursa__stats_park(struct ursa__stats *s, unsigned reason)
{
	URSA__STAT_INC(s->parks);
	URSA__STAT_INC(s->parked[reason]);
	(void)s, (void)reason;
}
static inline void ursa__stats_resume(struct ursa__stats *s, uint8_t *reason)
{
	URSA__STAT_ADD(s->parked[*reason], (uint64_t)-1);
	*reason = URSA__PARK_OTHER;
	(void)s;
}

static inline unsigned ursa__stats_opslot(unsigned opcode)
{
	return opcode < URSA__STATS_OPCODES ? opcode : URSA__STATS_OPCODES - 1;
}

/* An op a task waits for goes to the kernel, and its last CQE comes. */
static inline void ursa__stats_op_start(struct ursa__stats *s, unsigned opcode)
{
	URSA__STAT_INC(s->ops);
	URSA__STAT_INC(s->ops_inflight);
	URSA__STAT_INC(s->ops_by_opcode[ursa__stats_opslot(opcode)]);
	URSA__STAT_INC(s->inflight_by_opcode[ursa__stats_opslot(opcode)]);
	(void)s, (void)opcode;
}
static inline void ursa__stats_op_end(struct ursa__stats *s, unsigned opcode)
{
	URSA__STAT_ADD(s->ops_inflight, (uint64_t)-1);
	URSA__STAT_ADD(s->inflight_by_opcode[ursa__stats_opslot(opcode)], (uint32_t)-1);
	(void)s, (void)opcode;
}

/* A blocking-pool job submitted at t0 has returned its result. */
static inline void ursa__stats_job(struct ursa__stats *s, uint64_t t0)
{
	URSA__STAT_INC(s->pool_jobs);
	URSA__STAT_ADD(s->pool_job_ns, ursa__stats_clock() - t0);
	(void)s, (void)t0;
}

/* Before a submission: count it and the SQEs it carries (ring.c). */
#define URSA__STATS_SUBMIT(st, ready)                  \
	do {                                           \
		unsigned n_ = (ready);                 \
		if (n_) {                              \
			URSA__STAT_INC((st)->submits); \
			URSA__STAT_ADD((st)->sqes, n_);\
		}                                      \
		(void)n_;                              \
	} while (0)

struct ursa__runtime;
/* The stats service (stats.c): the URSA_STATS exit table, the signal and
 * interval printers and the socket, per the environment and the options.
 * start after the workers run (0 or -errno), stop after they are joined. */
int ursa__stats_start(struct ursa__runtime *rt);
void ursa__stats_stop(struct ursa__runtime *rt);

#endif /* URSA_STATS_INTERNAL_H */
