/* SPDX-License-Identifier: MIT */
/*
 * scope.h: deadline scopes and the cancellation check every blocking call
 * makes.  A scope's timer is armed lazily, the first time its task parks
 * inside it, and removed at ursa_scope_exit: one timer per scope, not per op.
 */
#ifndef URSA_SCOPE_H
#define URSA_SCOPE_H

#include "task.h"

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
 * A refusal is counted (ursa__scope_refused) and may yield: never call this
 * with a spinlock held.  Under a lock use ursa__scope_check_locked, and call
 * ursa__scope_refused after unlocking if it refused.
 */
int ursa__scope_check(struct ursa_task *t, uint64_t *deadline);
int ursa__scope_check_locked(struct ursa_task *t, uint64_t *deadline);

/* ursa__scope_check, arming on the way the timers of the scopes that govern
 * t and have none yet (so that a deadline wakes t once it parks); one walk
 * of the scopes.  For ursa__wait_park, right before it parks.  A refusal is
 * counted and may yield, as for ursa__scope_check. */
int ursa__scope_arm(struct ursa_task *t);

/*
 * The calling task t had a blocking call refused without waiting.  A task
 * that ignores the refusals (a loop that drops a wait's -ECANCELED) would
 * spin for ever and starve its core: after URSA__SCOPE_REFUSED_LIMIT
 * refusals with no park between them it is reported once (lib/stall.c) and
 * then yields at each one, so the other tasks of its core keep running.  The
 * count is reset when the task parks (ursa__sched_park).  May yield.
 */
#define URSA__SCOPE_REFUSED_LIMIT 1024u
void ursa__scope_refused(struct ursa_task *t);

/* The deadline timeout_ns from now, saturating to URSA_FOREVER. */
uint64_t ursa__scope_deadline_after(uint64_t timeout_ns);

/* t ends with scopes still entered (a bug in t): disarm them all. */
void ursa__scope_abandon(struct ursa_task *t);

/* Free core c's timer records (all their CQEs have arrived). */
void ursa__scope_fini(struct ursa__core *c);

#endif /* URSA_SCOPE_H */
