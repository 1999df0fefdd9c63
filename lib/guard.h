/* SPDX-License-Identifier: MIT */
/*
 * guard.h: turning a fault in a fiber's guard region into a report that names
 * the task, instead of an anonymous SIGSEGV.
 */
#ifndef URSA_GUARD_H
#define URSA_GUARD_H

struct ursa__core;

/* Install the process-wide SIGSEGV/SIGBUS handler (reference counted: one
 * per running runtime).  0 or -errno. */
int ursa__guard_install(void);
void ursa__guard_uninstall(void);

/* Give the calling worker thread an alternate signal stack, so the handler
 * can run when the fault is a stack overflow.  0 or -errno. */
int ursa__guard_thread_init(struct ursa__core *c);
void ursa__guard_thread_fini(struct ursa__core *c);

struct ursa_task;

/* t, ended on core c, wrote past the top of its stack (its canary is gone):
 * report it, naming the task, and abort. */
_Noreturn void ursa__guard_top_overrun(struct ursa__core *c, struct ursa_task *t);

#endif /* URSA_GUARD_H */
