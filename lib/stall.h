/* SPDX-License-Identifier: MIT */
/*
 * stall.h: the stall detector.  A watchdog thread notices a core whose task
 * has not returned to the scheduler for longer than stall_ms and has that
 * worker print a backtrace of the code that blocks it.
 */
#ifndef URSA_STALL_H
#define URSA_STALL_H

struct ursa__runtime;

/* Start the watchdog if the runtime's stall_ms is set.  0 or -errno. */
int ursa__stall_start(struct ursa__runtime *rt);
/* Stop and join it (no-op if it was not started). */
void ursa__stall_stop(struct ursa__runtime *rt);

struct ursa_task;
/* Report, from the task itself, a cancelled loop: t had `refused` blocking
 * calls in a row refused without waiting (lib/scope.c decides when). */
void ursa__stall_refusals(struct ursa_task *t, unsigned refused);

#endif /* URSA_STALL_H */
