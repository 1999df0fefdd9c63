/* SPDX-License-Identifier: MIT */
/*
 * task.h: the task record and its lifecycle inside the library (the public
 * calls are in ursa.h): creation, references, the end of a task and its
 * release.
 */
#ifndef URSA_TASK_H
#define URSA_TASK_H

#include "sched.h"

/*
 * Task states.  Only the owner core moves a task out of QUEUED (to RUNNING)
 * and only the task itself moves RUNNING to PARKED; any thread may move
 * PARKED to QUEUED or RUNNING to NOTIFIED (ursa__sched_wake).  NOTIFIED is a
 * wake that arrived before the task parked: its next park returns at once.
 */
enum {
	URSA__TASK_RUNNING = 0,
	URSA__TASK_NOTIFIED = 1,
	URSA__TASK_PARKED = 2,
	URSA__TASK_QUEUED = 3,
	URSA__TASK_DONE = 4,
};

/* Values of ursa_task.joiner besides a joiner's waiter record (lib/wait.h)
 * and a watch (lib/watch.h, tagged with bit 0). */
#define URSA__JOIN_NONE ((void *)0)
#define URSA__JOIN_DONE ((void *)1)     /* ended; a joiner or watch is served */
#define URSA__JOIN_DETACHED ((void *)2)

struct ursa_task {
	struct ursa__ctx ctx;
	struct ursa__core *core;     /* owner, for life */
	struct ursa__list link;      /* run queue (owner core only) */
	struct ursa__list all;       /* core->tasks until freed (owner core only) */
	struct ursa__stack stack;    /* this record lives at its top; both go
	                                back when the record is freed */
	ursa_fn fn;
	void *arg;
	void *result;
	struct ursa_scope *scope;    /* innermost deadline scope, on this stack */
	void *asan_fake_stack;       /* ASan's bookkeeping across switches */
	void *tsan_fiber;            /* TSan's context for this fiber (TSan builds) */
	_Atomic int state;           /* URSA__TASK_* */
	_Atomic int refs;            /* handle + running + transient holders */
	_Atomic(void *) joiner;      /* URSA__JOIN_*, a joiner's record or a watch */
	atomic_bool cancel_requested;
	bool exiting;                /* fn returned; the scheduler finishes it */
	bool linked;                 /* on core->tasks */
	bool ended_cancelled;        /* cancel was requested before it ended */
	bool refusal_reported;       /* its cancelled loop was reported (scope.c) */
	uint8_t park_reason;         /* URSA__PARK_* of its next park (stats.h) */
	unsigned refused;            /* blocking calls refused in a row, since it
	                                last parked (scope.c; only it writes) */
	int error;                   /* ursa_task_fail: its -errno, else 0 */
	char *error_msg;             /* ursa_task_fail: its message (malloc'd) */
	struct ursa_task *ended_next; /* on a watch's list of ended tasks */
	size_t watch_slot;           /* the watcher's index for it (lib/watch.c) */
	struct ursa__msg msg;        /* WAKE while alive, FREE after DONE */
	uint32_t magic;              /* URSA__TASK_MAGIC from spawn to the handle's release: a
	                                handle used after its release is caught */
	char name[32];
};
#define URSA__TASK_MAGIC 0x75727361u /* "ursa" */
#define URSA__TASK_FREED 0xdead7a5cu

/* The core a spawn from `here` asks for: core itself, or the next one round
 * robin for URSA_CORE_ANY (here's own cursor: no atomics, no shared line);
 * NULL if there is no such core. */
struct ursa__core *ursa__task_core(struct ursa__core *here, unsigned core);

/* Create a task owned by `core` and queue it there.  0 or -errno. */
int ursa__task_spawn(struct ursa__runtime *rt, struct ursa__core *core, struct ursa_task **out,
                     ursa_fn fn, void *arg, const struct ursa_spawn_opts *opts);

/* Take and drop a reference on t (any thread).  The last drop frees t on its
 * owner core. */
void ursa__task_ref(struct ursa_task *t);
void ursa__task_unref(struct ursa_task *t);

/* Called by the owner's scheduler once t's fn has returned and t has
 * switched away for the last time. */
void ursa__task_finish(struct ursa__core *c, struct ursa_task *t);

/* t's outcome (t has ended): what ursa_task_outcome reports. */
void ursa__task_outcome(const struct ursa_task *t, struct ursa_outcome *out);

/* Free t now (owner core, last reference gone). */
void ursa__task_free(struct ursa__core *c, struct ursa_task *t);

#endif /* URSA_TASK_H */
