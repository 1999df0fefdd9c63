/* SPDX-License-Identifier: MIT */
/*
 * ursa/signal.h: waiting for signals on the ring (asyncio's
 * loop.add_signal_handler), by reading a signalfd.  docs/io.md, "Signals",
 * has the rules about signal masks in full.
 *
 * A signal reaches a signalfd only while it is blocked in *every* thread of
 * the process; a thread that has it unblocked takes it with its disposition
 * instead (for SIGTERM or SIGINT: the process dies).  ursa_run's workers
 * inherit the signal mask of the thread that calls ursa_run, so block the
 * signals there, before ursa_run (and before starting threads of your own):
 *
 *	sigset_t set;
 *	sigemptyset(&set);
 *	sigaddset(&set, SIGTERM);
 *	pthread_sigmask(SIG_BLOCK, &set, NULL);
 *	ursa_run(main_task, NULL, NULL, NULL);   // main_task: ursa_signal_create,
 *	                                         // then ursa_signal_wait in a loop
 *
 * The threads the runtime starts itself (the blocking pool, the stall
 * watchdog) block every asynchronous signal, so they never take one.
 */
#ifndef URSA_SIGNAL_H
#define URSA_SIGNAL_H

#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>

#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ursa_signal; /* opaque */

/*
 * Watch the signals in `set` (flags: none defined, must be 0).  Every signal
 * in set must already be blocked in the calling thread (see above): -EINVAL
 * otherwise, and for an empty set, for SIGKILL and SIGSTOP (which cannot be
 * caught), for the synchronous signals SIGSEGV, SIGBUS, SIGFPE, SIGILL and
 * SIGTRAP (a fault, not an event), and for unknown flag bits.  0 and *s, or
 * -EMFILE, -ENFILE, -ENOMEM.  Does not block; any thread, inside a runtime
 * or not (make it before ursa_run and pass it to main, say).
 */
URSA_API URSA_NODISCARD int ursa_signal_create(struct ursa_signal **s, const sigset_t *set,
                                               uint32_t flags);

/*
 * Wait for one of s's signals and take it: its number (> 0), with *info
 * filled if info is not NULL (sender's pid and uid, si_code, ...).  A
 * signal that arrived while no task waited is pending, and the next wait
 * returns it at once; a standard signal sent again while pending is merged
 * into one by the kernel (real-time signals queue).  Several tasks may wait
 * on s: each signal goes to one of them.  -ECANCELED, -ETIMEDOUT (an
 * enclosing scope), -EPERM outside a task.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_signal_wait(struct ursa_signal *s,
                                             struct signalfd_siginfo *info);

/*
 * Stop watching and free s: 0, or -EBUSY while a task waits on it.  Signals
 * still pending stay pending (and blocked): the process's next watcher sees
 * them.  Does not block; any thread.
 */
URSA_API int ursa_signal_destroy(struct ursa_signal *s);

#ifdef __cplusplus
}
#endif

#endif /* URSA_SIGNAL_H */
