/* SPDX-License-Identifier: MIT */
/*
 * ursa/stats.h: what each core is doing, as counters (docs/observability.md
 * says what every field means and how to read them).  Self-contained:
 * include <ursa.h> for everything, or this header alone.
 *
 * Each core writes its own counters with plain stores (no atomic
 * read-modify-write, no shared cache line); anyone reads them as a
 * snapshot.  A snapshot is not taken at one instant: fields are read one by
 * one while the cores run, so two fields may disagree by the work done in
 * between (tasks_spawned - tasks_ended may differ from a tasks_live read a
 * moment earlier).  Each field on its own is a value the core really had.
 * Gauges change where the event is (tasks_live, parked_*, ops_inflight),
 * except tasks_runnable and pending, which a core publishes when it enters
 * the kernel (every turn while it has I/O in flight).
 */
#ifndef URSA_STATS_H
#define URSA_STATS_H

#include "runtime.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The layout version ursa_stats fills (struct ursa_stats.version).  Fields
 * are only ever appended: a program built against version 1 keeps working
 * with a later library, which fills only the first `size` bytes. */
#define URSA_STATS_VERSION 1u
/* ursa_stats' core argument: the sum over every core (gauges summed too). */
#define URSA_STATS_ALL (~0u)
/* Opcodes counted one by one in ops_by_opcode / inflight_by_opcode; an
 * opcode at or above this (IORING_OP_* numbers) is counted in the last slot. */
#define URSA_STATS_OPCODES 64u

struct ursa_stats {
	/* Header: set size (sizeof(struct ursa_stats)) before the call. */
	uint32_t size;              /* in: bytes the caller has; out: bytes filled */
	uint32_t version;           /* out: URSA_STATS_VERSION */
	uint32_t core;              /* out: the core, or URSA_STATS_ALL */
	uint32_t ncores;            /* out: cores of the runtime */

	/* Tasks.  Counters since the runtime started, and gauges (now). */
	uint64_t tasks_spawned;     /* tasks that started on this core */
	uint64_t tasks_ended;       /* of those, ended (returned, failed, cancelled) */
	uint64_t tasks_live;        /* gauge: spawned and not yet ended */
	uint64_t tasks_runnable;    /* gauge: on the run queue (as last published) */
	uint64_t parked_ring;       /* gauge: parked for an io_uring op (I/O, sleep) */
	uint64_t parked_primitive;  /* gauge: parked on a mutex, condition, semaphore,
	                               event, barrier, waitgroup, queue or future */
	uint64_t parked_join;       /* gauge: parked joining a task */
	uint64_t parked_pool;       /* gauge: parked for a blocking-pool job */
	uint64_t parked_other;      /* gauge: parked on a condition of its own
	                               (gather, wait, receivers, select) */
	uint64_t parks;             /* times a task parked (switched away to wait) */
	uint64_t yields;            /* times a task yielded (ursa_yield, the guard);
	                               derived: switches - parks - ended - running */
	uint64_t switches;          /* times the scheduler ran a task */

	/* The loop and the ring. */
	uint64_t turns;             /* loop turns */
	uint64_t enters;            /* io_uring_enter calls made by the loop */
	uint64_t submits;           /* enters that submitted SQEs (incl. SQ-full flushes) */
	uint64_t sqes;              /* SQEs submitted; sqes / submits = SQEs per submit */
	uint64_t cqes;              /* CQEs reaped */
	uint64_t sq_full;           /* times the SQ was full and was flushed to get a slot */
	uint64_t cq_overflow;       /* enters that found completions in the kernel's
	                               overflow list (the CQ was full) */
	uint64_t sleeps;            /* enters that waited for a completion (idle) */
	uint64_t sleep_ns;          /* time spent waiting in them */
	uint64_t idle_polls;        /* idle polls before sleeping (busy polling) */
	uint64_t idle_poll_ns;      /* time spent in them */
	uint64_t ops;               /* ops a task waited for (every opcode) */
	uint64_t ops_inflight;      /* gauge: of those, not yet completed */
	uint64_t pending;           /* gauge: records owed a CQE (ops, timers,
	                               receivers; as last published) */

	/* Files. */
	uint64_t file_inline;       /* file ops served without the ring (page cache) */
	uint64_t file_ring;         /* file ops that went to the ring */

	/* Cross-core. */
	uint64_t xwakes_sent;       /* wakes and spawns this core sent to another */
	uint64_t xwakes_recv;       /* wakes and spawns received from other threads
	                               (other cores, pool and plain threads) */
	uint64_t kicks;             /* kicks sent to wake another core's loop */

	/* Stacks. */
	uint64_t stacks_mapped;     /* gauge: fiber stacks mapped (in use or cached) */
	uint64_t stack_slabs;       /* gauge: stack slabs mapped */
	uint64_t stack_bytes_mapped;   /* gauge: bytes of stack mappings */
	uint64_t stack_bytes_resident; /* gauge: of those, resident (0: not measured) */

	/* The blocking pool (runtime-wide gauges: the same in every core's
	 * snapshot, counted once in URSA_STATS_ALL). */
	uint64_t pool_threads;      /* gauge: pool threads started */
	uint64_t pool_queued;       /* gauge: jobs waiting for a thread */
	uint64_t pool_jobs;         /* jobs this core's tasks ran (ursa_blocking) */
	uint64_t pool_job_ns;       /* their total time, submit to result;
	                               pool_job_ns / pool_jobs = mean job latency */

	/* Reliability. */
	uint64_t stalls;            /* stalls reported on this core (URSA_STALL_MS) */

	/* By opcode (IORING_OP_*). */
	uint64_t ops_by_opcode[URSA_STATS_OPCODES];      /* ops, per opcode */
	uint32_t inflight_by_opcode[URSA_STATS_OPCODES]; /* gauge: ops_inflight, per opcode */
};

/*
 * Fill *out with core `core`'s counters, or their sum over every core with
 * URSA_STATS_ALL.  Set out->size = sizeof(*out) first: a program built
 * against an older (smaller) struct gets only the fields it knows.  flags
 * must be 0.  Returns 0; -EINVAL for an unknown flag, a size smaller than
 * the header or a core >= ursa_ncores(); -EPERM outside a task; -ENOTSUP
 * when the library was built with the counters compiled out (meson
 * -Dstats=false: the header is filled, every counter 0).  Reads the cores'
 * counters as they run (see the top of this header); never blocks.
 */
URSA_API URSA_NODISCARD int ursa_stats(struct ursa_stats *out, unsigned core, uint32_t flags);

#ifdef __cplusplus
}
#endif

#endif /* URSA_STATS_H */
