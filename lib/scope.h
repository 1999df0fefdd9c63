/* SPDX-License-Identifier: MIT */
/*
 * scope.h: deadline scopes and the cancellation check every blocking call
 * makes.  A scope's timer is armed lazily, the first time its task parks
 * inside it, and removed at ursa_scope_exit: one timer per scope, not per op.
 */
#ifndef URSA_SCOPE_H
#define URSA_SCOPE_H

#include "core.h"

/* A scope's timer: an IORING_OP_TIMEOUT (user_data kind URSA__UD_TIMER). */
struct ursa__timer {
	struct ursa_scope *scope;        /* NULL once orphaned by scope exit */
	struct ursa__timer *next_free;
	struct __kernel_timespec ts;     /* absolute, CLOCK_MONOTONIC */
};

/* ursa_scope.state_ bits.  EXPIRED is set on the owner core only;
 * CANCELLED (ursa_scope_cancel) by any thread: the word is accessed with
 * atomic builtins. */
#define URSA__SCOPE_EXPIRED 0x1u
#define URSA__SCOPE_CANCELLED 0x2u

/*
 * 0 if t may block now, else why not: -ETIMEDOUT (a deadline of an enclosing
 * scope has passed; that scope is marked expired) or -ECANCELED (t was
 * cancelled and no shielded scope stands between).  If deadline is not NULL
 * it receives the earliest deadline that governs t (URSA_FOREVER if none).
 * t is the calling task.
 *
 * A refusal is counted (ursa__cancel_refused) and may yield: never call this
 * with a spinlock held.  Under a lock use ursa__cancel_check_locked, and call
 * ursa__cancel_refused after unlocking if it refused.
 */
int ursa__cancel_check(struct ursa_task *t, uint64_t *deadline);
int ursa__cancel_check_locked(struct ursa_task *t, uint64_t *deadline);

/*
 * The calling task t had a blocking call refused without waiting.  A task
 * that ignores the refusals (a loop that drops a wait's -ECANCELED) would
 * spin for ever and starve its core: after URSA__REFUSED_LIMIT refusals with
 * no park between them it is reported once (lib/stall.c) and then yields at
 * each one, so the other tasks of its core keep running.  The count is reset
 * when the task parks (ursa__sched_park).  May yield.
 */
#define URSA__REFUSED_LIMIT 1024u
void ursa__cancel_refused(struct ursa_task *t);

/* Arm the timers of the scopes that govern t and have none yet. */
void ursa__scope_arm(struct ursa_task *t);

/* A timer's CQE arrived (res -ETIME: it fired; -ECANCELED: it was removed). */
void ursa__timer_complete(struct ursa__core *c, struct ursa__timer *tm, int res);

/* The deadline timeout_ns from now, saturating to URSA_FOREVER. */
uint64_t ursa__scope_deadline_after(uint64_t timeout_ns);

/* t ends with scopes still entered (a bug in t): disarm them all. */
void ursa__scope_abandon(struct ursa_task *t);

/* Free the core's timer records (all CQEs received). */
void ursa__timers_fini(struct ursa__core *c);

#endif /* URSA_SCOPE_H */
