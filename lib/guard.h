/* SPDX-License-Identifier: MIT */
/*
 * guard.h: crash reports: a fault in a fiber's guard region becomes a report
 * that names the task instead of an anonymous SIGSEGV, and any fatal
 * synchronous signal in a worker or pool thread says what was running there
 * before the previous handler (ASan's, the default) takes it.
 */
#ifndef URSA_GUARD_H
#define URSA_GUARD_H

#include <signal.h>

struct ursa__core;

/* Install the process-wide handlers for SEGV, BUS, FPE, ILL, TRAP and ABRT
 * (reference counted: one per running runtime).  0 or -errno. */
int ursa__guard_install(void);
void ursa__guard_uninstall(void);

/* Give the calling worker thread an alternate signal stack, so the handler
 * can run when the fault is a stack overflow.  0 or -errno. */
int ursa__guard_thread_init(struct ursa__core *c);
void ursa__guard_thread_fini(struct ursa__core *c);

/* The same for any thread the runtime makes (pool threads): an alternate
 * signal stack in *altstack, or NULL and -errno. */
int ursa__guard_altstack_init(void **altstack);
void ursa__guard_altstack_fini(void *altstack);

/* Remove the synchronous signals from set: a thread that blocks them turns
 * a crash into a silent kill (the kernel does not wait for an unblock), so
 * threads the runtime makes block every signal but these. */
void ursa__guard_sync_signals(sigset_t *set);
struct ursa_task;

/* t, ended on core c, wrote past the top of its stack (its canary is gone):
 * report it, naming the task, and abort. */
_Noreturn void ursa__guard_top_overrun(struct ursa__core *c, struct ursa_task *t);

#endif /* URSA_GUARD_H */
