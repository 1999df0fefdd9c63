/* SPDX-License-Identifier: MIT */
/*
 * task.h: the task lifecycle inside the library (the public calls are in
 * ursa.h): creation, the end of a task and its release.
 */
#ifndef URSA_TASK_H
#define URSA_TASK_H

#include "core.h"

/* The core a spawn from `here` asks for: core itself, or the next one round
 * robin for URSA_CORE_ANY (here's own cursor: no atomics, no shared line);
 * NULL if there is no such core. */
struct ursa__core *ursa__task_core(struct ursa__core *here, unsigned core);

/* Create a task owned by `core` and queue it there.  0 or -errno. */
int ursa__task_spawn(struct ursa__runtime *rt, struct ursa__core *core, struct ursa_task **out,
                     ursa_fn fn, void *arg, const struct ursa_spawn_opts *opts);

/* Called by the owner's scheduler once t's fn has returned and t has
 * switched away for the last time. */
void ursa__task_finish(struct ursa__core *c, struct ursa_task *t);

/* t's outcome (t has ended): what ursa_task_outcome reports. */
void ursa__task_outcome(const struct ursa_task *t, struct ursa_outcome *out);

/* Free t now (owner core, last reference gone). */
void ursa__task_free(struct ursa__core *c, struct ursa_task *t);

/* Queue a task that has never run (sched.c). */
void ursa__task_enqueue_new(struct ursa_task *t);

/* Scheduler entry points used by the task calls. */
void ursa__sched_yield(void);
_Noreturn void ursa__sched_exit(void);
void ursa__sched_loop(struct ursa__core *c);

#endif /* URSA_TASK_H */
