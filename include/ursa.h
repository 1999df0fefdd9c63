/* SPDX-License-Identifier: MIT */
/*
 * ursa.h: the public API of ursa, an io_uring runtime of stackful fibers on a
 * per-core scheduler.  This header only includes the others, one per
 * subsystem, each of which is self-contained and may also be included alone.
 * Everything they declare is exported from libursa.so; nothing else is.
 * The headers are the API reference: each declaration's comment says what it
 * does, what it returns, whether it blocks and from which threads it may be
 * called.
 *
 * Conventions (docs/api.md has the long form):
 *   - calls return 0 or a count on success and a negative errno on failure;
 *     errno is never used as the error channel;
 *   - "blocks the fiber" means the calling task parks and its core runs other
 *     tasks meanwhile; no ursa call blocks the worker thread itself;
 *   - time is uint64_t nanoseconds on CLOCK_MONOTONIC;
 *   - unless a comment says otherwise, a call may only be made from inside a
 *     task (a fiber run by ursa_run); from elsewhere it returns -EPERM.
 */
#ifndef URSA_H
#define URSA_H

#include "ursa/runtime.h" /* runtime, tasks, time, scopes, blocking pool */
#include "ursa/sync.h"    /* mutex, condition, semaphore, event, barrier, waitgroup */
#include "ursa/future.h"  /* futures, run_in_executor */
#include "ursa/queue.h"   /* queues, select, generators */
#include "ursa/group.h"   /* outcomes, gather, wait, as_completed, wait_for, groups */
#include "ursa/io.h"      /* files, sockets, fd readiness, buffer groups */
#include "ursa/stream.h"  /* buffered readers and writers over any fd */
#include "ursa/process.h" /* child processes: spawn, wait, signal, communicate */
#include "ursa/signal.h"  /* waiting for signals on a signalfd */
#include "ursa/stats.h"   /* per-core counters (docs/observability.md) */

#endif /* URSA_H */
