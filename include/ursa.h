/* SPDX-License-Identifier: MIT */
/*
 * ursa.h: the one public header of ursa, an io_uring runtime of stackful
 * fibers on a per-core scheduler.  Everything here is exported from
 * libursa.so; nothing else is.
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

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define URSA_VERSION_MAJOR 0
#define URSA_VERSION_MINOR 1
#define URSA_VERSION_PATCH 0

#if defined(__GNUC__)
#define URSA_API __attribute__((visibility("default")))
#define URSA_NODISCARD __attribute__((warn_unused_result))
#else
#define URSA_API
#define URSA_NODISCARD
#endif

/* Wait forever: a deadline that never passes, a sleep that only ends when
 * the task is cancelled. */
#define URSA_FOREVER UINT64_MAX

/* ---------------------------------------------------------------- runtime */

typedef void *(*ursa_fn)(void *arg);

/*
 * Runtime options.  NULL means all defaults; a zero field means that field's
 * default.  Every field can also be set from the environment variable named
 * beside it; an explicit non-zero field wins over the environment.  Fields
 * are only ever appended, never reordered.
 */
struct ursa_opts {
	uint32_t flags;        /* URSA_OPT_*; none defined yet                   */
	unsigned cores;        /* URSA_CORES: worker threads; default: every CPU
	                          in the process's affinity mask                 */
	unsigned ring_entries; /* URSA_RING_ENTRIES: SQ size per core [256]; the
	                          CQ is 4x this                                  */
	size_t stack_size;     /* URSA_STACK_SIZE: bytes per fiber stack [128 KiB],
	                          16 KiB to 1 GiB, rounded up to a power of two;
	                          the task record (about 256 bytes; 1.2 KiB with
	                          the ucontext backend) sits at its top, the
	                          guard region below it is extra                 */
	unsigned pool_threads; /* URSA_POOL_THREADS: blocking-pool threads
	                          [min(32, CPUs + 4)]                            */
	unsigned stack_cache;  /* URSA_STACK_CACHE: free stacks each core keeps
	                          ready, pages and all, however long idle [256] */
	unsigned stall_ms;     /* URSA_STALL_MS: report a core whose task has not
	                          returned to the scheduler for this long, with a
	                          backtrace, on stderr [0: off; see docs/design.md] */
	size_t stack_guard;    /* URSA_STACK_GUARD: bytes of guard region below
	                          each stack, rounded up to pages [256 KiB]: a
	                          frame bigger than this can jump it unless built
	                          with -fstack-clash-protection (ursa.pc adds it) */
	unsigned stack_trim_ms; /* URSA_STACK_TRIM_MS: free stacks beyond
	                          stack_cache that sat unused this long go back to
	                          the kernel, a batch every few ms [100]          */
};

/*
 * Run `main(arg)` as the first task on core 0 of a new runtime and return
 * when it returns.  Starts one pinned worker thread per core, each with its
 * own io_uring ring.  When main returns, every task still running is
 * cancelled and awaited, the workers stop and their rings close.
 *
 * Returns 0 and stores main's return value in *result (if result is not
 * NULL), or a negative errno when the runtime cannot start: -ENOSYS or -EPERM
 * when io_uring is unavailable or refused (a one-line explanation is printed
 * on stderr once), -ENOMEM, -EAGAIN when a worker thread cannot be created,
 * -EMFILE/-ENFILE when no fd is left for a ring or eventfd, -EINVAL for bad
 * options, -EBUSY when called from inside a running runtime (or from a child
 * fork()ed by a task).  Whatever was set up is released again on failure.
 * Call from any thread that is not an ursa worker.
 */
URSA_API URSA_NODISCARD int ursa_run(ursa_fn main, void *arg, const struct ursa_opts *opts,
                                     void **result);

/* The index of the calling task's core, 0 .. ursa_ncores()-1. */
URSA_API unsigned ursa_core(void);
/* The number of cores (worker threads) of the running runtime; 0 outside one. */
URSA_API unsigned ursa_ncores(void);

/*
 * A description of the kernel's io_uring as probed by this process: setup
 * flags accepted, optional operations and features found.  Probes once (with
 * a throwaway ring) on first call; the string is static.  Callable from any
 * thread, inside a runtime or not.
 */
URSA_API const char *ursa_features(void);

/* The message for a negative errno returned by an ursa call. Any thread. */
URSA_API const char *ursa_strerror(int err);

/* ------------------------------------------------------------------ tasks */

struct ursa_task; /* opaque */

/* Flags for struct ursa_spawn_opts. */
#define URSA_SPAWN_DETACHED 0x1u /* no handle: the task is freed when it ends */

/* Per-spawn options (ursa_spawn_ex).  Zero means default in every field. */
struct ursa_spawn_opts {
	uint32_t flags;      /* URSA_SPAWN_* */
	size_t stack_size;   /* bytes; default: the runtime's stack_size.  Below
	                        16 KiB: 16 KiB; otherwise rounded up to a power
	                        of two; above 1 GiB: -EINVAL                    */
	const char *name;    /* copied; shown in reports such as a stack overflow */
};

/*
 * Start fn(arg) as a new task on the calling task's core.  The new task runs
 * once the caller parks or yields.  On success *t receives a handle which
 * must be given to exactly one of ursa_join or ursa_detach.
 * Returns 0, -ENOMEM, or -ECANCELED if the runtime is shutting down.
 * Does not block.
 */
URSA_API URSA_NODISCARD int ursa_spawn(struct ursa_task **t, ursa_fn fn, void *arg);

/* As ursa_spawn, on core `core` (-EINVAL if there is no such core). */
URSA_API URSA_NODISCARD int ursa_spawn_on(struct ursa_task **t, unsigned core, ursa_fn fn,
                                          void *arg);

/* As ursa_spawn_on with options; t may be NULL only with URSA_SPAWN_DETACHED. */
URSA_API URSA_NODISCARD int ursa_spawn_ex(struct ursa_task **t, unsigned core, ursa_fn fn,
                                          void *arg, const struct ursa_spawn_opts *opts);

/*
 * Wait for t to end and release it.  Returns 0 and stores its return value in
 * *result (if not NULL) when it returned normally; -ECANCELED (t released,
 * nothing stored) when it was cancelled before it ended.  If the *caller* is
 * cancelled or its deadline passes while waiting, returns -ECANCELED or
 * -ETIMEDOUT and t is not released (join again, or detach).  -EDEADLK when t
 * is the caller.  Blocks the fiber; t may live on any core.
 */
URSA_API URSA_NODISCARD int ursa_join(struct ursa_task *t, void **result);

/* Give up the handle: t is freed when it ends.  Does not block. */
URSA_API void ursa_detach(struct ursa_task *t);

/*
 * Request cancellation of t: its current and later blocking calls return
 * -ECANCELED (an operation in flight is cancelled in the kernel first and its
 * own completion awaited; a result that arrived first wins).  Idempotent.
 * Returns 0, or -ESRCH if t has already ended.  Does not block; t may live on
 * any core.
 */
URSA_API int ursa_cancel(struct ursa_task *t);

/* Let every other runnable task on this core run once, then continue. */
URSA_API void ursa_yield(void);

/* The calling task, or NULL outside a task. */
URSA_API struct ursa_task *ursa_self(void);

/* Name a task for reports (copied, truncated to 31 bytes). Does not block. */
URSA_API void ursa_task_set_name(struct ursa_task *t, const char *name);
/* The task's name, or "" if unnamed. Valid until the task is released. */
URSA_API const char *ursa_task_name(const struct ursa_task *t);

/* ------------------------------------------------------------------- time */

/* Now, in nanoseconds on CLOCK_MONOTONIC.  Any thread. */
URSA_API uint64_t ursa_now(void);

/*
 * Park the task for ns nanoseconds (one IORING_OP_TIMEOUT).  ursa_sleep(0)
 * yields.  Returns 0, -ECANCELED, or -ETIMEDOUT when an enclosing scope's
 * deadline comes first.  URSA_FOREVER sleeps until cancelled.
 */
URSA_API int ursa_sleep(uint64_t ns);
/* As ursa_sleep, until the absolute time t; a past t returns 0 at once. */
URSA_API int ursa_sleep_until(uint64_t t);

/* ----------------------------------------------------------------- scopes */

#define URSA_SCOPE_SHIELD 0x1u

/*
 * A deadline scope (asyncio.timeout, Trio's cancel scopes).  Lives on the
 * task's stack between ursa_scope_enter and ursa_scope_exit; the fields are
 * private.
 */
struct ursa_scope {
	uint64_t deadline_ns;
	uint32_t flags;
	uint32_t state_;
	struct ursa_scope *parent_;
	void *timer_;
	struct ursa_task *task_;
};

/*
 * Enter a scope: until the matching ursa_scope_exit, every blocking call of
 * this task returns -ETIMEDOUT once `deadline` (absolute, ns) has passed.  An
 * operation in flight at that moment is cancelled and awaited.  Scopes nest;
 * the earliest deadline governs.
 */
URSA_API void ursa_scope_enter(struct ursa_scope *s, uint64_t deadline);

/*
 * Enter a shielded scope: outer scopes' deadlines and ursa_cancel do not
 * reach calls inside it (its own deadline still does).  Use it for cleanup
 * that must finish, such as a final write, under a short deadline of its own.
 */
URSA_API void ursa_scope_enter_shielded(struct ursa_scope *s, uint64_t deadline);

/*
 * Leave the innermost scope, which must be s.  Returns -ETIMEDOUT if its
 * deadline fired while inside, else -ECANCELED if the task has been
 * cancelled (and s is not shielded), else 0.
 */
URSA_API int ursa_scope_exit(struct ursa_scope *s);

/*
 * Cancel the scope s (Trio's cancel_scope.cancel()): every blocking call
 * inside it, in the task that entered it, returns -ECANCELED from now on,
 * and ursa_scope_exit(s) returns -ECANCELED; the task itself is not
 * cancelled, so calls after the scope work again.  A shielded scope inside s
 * still protects the calls within it.  Idempotent.  Any thread, but only
 * while s is entered (the caller must know its owner has not left it).
 */
URSA_API void ursa_scope_cancel(struct ursa_scope *s);

/* ---------------------------------------------------------- blocking pool */

/*
 * Run fn(arg) on the blocking thread pool and park only the calling task
 * until it returns (asyncio's to_thread).  Returns 0 and stores fn's return in
 * *result (if not NULL).  If the caller is cancelled (or times out) before a
 * pool thread has picked the job up, the job is withdrawn and -ECANCELED (or
 * -ETIMEDOUT) is returned; once fn runs, the call waits for it and its result
 * wins.  -EAGAIN when the pool has no thread and none can be started (out of
 * memory or threads).  Blocks the fiber.
 */
URSA_API int ursa_blocking(ursa_fn fn, void *arg, void **result);

#ifdef __cplusplus
}
#endif

/*
 * Sub-headers, one per subsystem, each self-contained (include/ursa/).
 * They are part of the one public API: include <ursa.h>, not these.
 */
/* (sub-headers are added here, one #include line each) */
#include "ursa/sync.h"
#include "ursa/future.h"
#include "ursa/queue.h"
#include "ursa/group.h"
#include "ursa/io.h"

#endif /* URSA_H */
