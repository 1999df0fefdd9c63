/* SPDX-License-Identifier: MIT */
/*
 * ursa/runtime.h: the runtime, tasks, time, deadline scopes and the blocking
 * pool: the core of the API, and the macros every other header uses
 * (URSA_API, URSA_NODISCARD, URSA_FOREVER).  Self-contained: include
 * <ursa.h> for everything, or this header alone.  The conventions are in
 * <ursa.h> and docs/api.md.
 */
#ifndef URSA_RUNTIME_H
#define URSA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A 0.x release may change the API (docs/api.md, "Versions"); the SONAME
 * stays libursa.so.0 while MAJOR is 0. */
#define URSA_VERSION_MAJOR 0
#define URSA_VERSION_MINOR 2
#define URSA_VERSION_PATCH 0

#if defined(__GNUC__)
#define URSA_API __attribute__((visibility("default")))
#define URSA_NODISCARD __attribute__((warn_unused_result))
#else
#define URSA_API
#define URSA_NODISCARD
#endif

/* printf-style checking of a message argument, where the compiler has it. */
#if defined(__GNUC__)
#define URSA_PRINTF_(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define URSA_PRINTF_(fmt, args)
#endif

/*
 * Time is uint64_t nanoseconds on CLOCK_MONOTONIC.  A parameter named
 * deadline_ns is a point in time (compare with ursa_now()); every other *_ns
 * is a duration.  Calls whose names end in _until take a deadline, those
 * ending in _after a duration.
 *
 * Wait forever: a deadline that never passes, a sleep that only ends when
 * the task is cancelled; as a duration, no timeout.
 */
#define URSA_FOREVER UINT64_MAX

/*
 * Durations in nanoseconds: URSA_US(x), URSA_MS(x), URSA_SEC(x) for x micro-,
 * milli- or seconds, e.g. ursa_sleep(URSA_MS(100)),
 * ursa_scope_enter_after(&s, URSA_SEC(2.5)).  x may be an integer or a
 * floating value.  The result is a uint64_t rounded to the nearest nanosecond
 * (exact below 2^53 ns, about 104 days); 0 for a negative x or a NaN; and
 * URSA_FOREVER from 2^63 ns (292 years) up, so an absurd timeout means
 * "forever" instead of wrapping round to a short one.  A constant expression
 * when x is one (usable in static initialisers).  x is evaluated more than
 * once: pass a value, not an expression with side effects.
 */
#define URSA_TIME_(x, k)                                                              \
	((double)(x) >= 9223372036854775808.0 / (k) ? URSA_FOREVER                      \
	 : (double)(x) > 0                          ? (uint64_t)((double)(x) * (k) + 0.5) \
	                                            : (uint64_t)0)
#define URSA_US(x) URSA_TIME_(x, 1e3)
#define URSA_MS(x) URSA_TIME_(x, 1e6)
#define URSA_SEC(x) URSA_TIME_(x, 1e9)

/* ---------------------------------------------------------------- runtime */

typedef void *(*ursa_fn)(void *arg);

/*
 * Runtime options.  NULL means all defaults; a zero field means that field's
 * default.  Every field can also be set from the environment variable named
 * beside it; an explicit non-zero field wins over the environment.  Fields
 * are only ever appended, never reordered.
 */
/* Flags for struct ursa_opts. */
#define URSA_OPT_PIN 0x1u /* pin worker i to the i-th CPU of the affinity mask
                             (URSA_PIN=1); see ursa_run */

struct ursa_opts {
	uint32_t flags;        /* URSA_OPT_*                                     */
	unsigned cores;        /* URSA_CORES: worker threads, 1 .. 1024; default:
	                          every CPU in the process's affinity mask       */
	unsigned ring_entries; /* URSA_RING_ENTRIES: SQ size per core [256], up
	                          to 32768; below 8 is 8, and the kernel rounds
	                          up to a power of two; the CQ is 4x this        */
	size_t stack_size;     /* URSA_STACK_SIZE: bytes per fiber stack [128 KiB],
	                          16 KiB to 1 GiB (else -EINVAL), rounded up to
	                          a power of two; the task record (about 256
	                          bytes; 1.2 KiB with the ucontext backend) sits
	                          at its top, the guard region below it is extra */
	unsigned pool_threads; /* URSA_POOL_THREADS: blocking-pool threads
	                          [min(32, CPUs + 4)], up to 4096                */
	unsigned stack_cache;  /* URSA_STACK_CACHE: free stacks each core keeps
	                          ready, pages and all, however long idle [256],
	                          up to 1048576                                  */
	unsigned stall_ms;     /* URSA_STALL_MS: report a core whose task has not
	                          returned to the scheduler for this long, with a
	                          backtrace, on stderr [0: off; see docs/design.md] */
	unsigned idle_poll_us; /* URSA_IDLE_POLL_US: how long a worker with nothing
	                          to run keeps looking for work (its inbox, its
	                          ring) before it sleeps in the kernel, in
	                          microseconds [URSA_IDLE_POLL_DEFAULT_US]; at most
	                          URSA_IDLE_POLL_MAX_US.  URSA_IDLE_POLL_OFF here,
	                          or URSA_IDLE_POLL_US=0, turns polling off (see
	                          docs/design.md, "The wake protocol")           */
	const char *stats_socket; /* URSA_STATS_SOCKET: serve the per-core counters
	                          (ursa/stats.h) to tools/ursa-top on this Unix
	                          socket: a path, or "@name" for the abstract
	                          namespace [NULL: no socket; see
	                          docs/observability.md]                         */
	size_t stack_guard;    /* URSA_STACK_GUARD: bytes of guard region below
	                          each stack, rounded up to pages [256 KiB]: a
	                          frame bigger than this can jump it unless built
	                          with -fstack-clash-protection (ursa.pc adds it) */
	unsigned stack_trim_ms; /* URSA_STACK_TRIM_MS: free stacks beyond
	                          stack_cache that sat unused this long go back to
	                          the kernel, a batch every few ms [100]          */
};

/* idle_poll_us: the default, the largest bound accepted, and "off" (a zero
 * field means the default, as for every field). */
#define URSA_IDLE_POLL_DEFAULT_US 50u
#define URSA_IDLE_POLL_MAX_US 1000000u
#define URSA_IDLE_POLL_OFF 0xffffffffu

/*
 * Run `main(arg)` as the first task on core 0 of a new runtime and return
 * when it returns.  Starts one worker thread per core, each with its own
 * io_uring ring.  Workers may run on any CPU of the process's affinity mask
 * unless pinning is asked for (URSA_OPT_PIN, or URSA_PIN=1): a pinned worker
 * keeps its CPU's caches but cannot be moved by the kernel's load balancer,
 * so on a shared machine another process can starve it, and its whole core
 * (every task, timer and completion of its ring) with it, for seconds.  Pin
 * on a machine the program has to itself.  When main returns, every task
 * still running is cancelled and awaited, the workers stop and their rings
 * close.
 *
 * Returns 0 and stores main's return value in *result (if result is not
 * NULL), or a negative errno when the runtime cannot start: -ENOSYS or -EPERM
 * when io_uring is unavailable or refused (a one-line explanation is printed
 * on stderr once), -ENOMEM, -EAGAIN when a worker thread cannot be created,
 * -EMFILE/-ENFILE when no fd is left for a ring or eventfd, -EINVAL for bad
 * options (a field or environment value out of its range, docs/api.md
 * "Limits") or an unknown URSA_OPT_* flag, -EBUSY when called from inside a
 * running runtime (or from a child fork()ed by a task).  Whatever was set up
 * is released again on failure.  Call from any thread that is not an ursa
 * worker.
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

/* Core argument of ursa_spawn_on / ursa_spawn_ex / ursa_group_spawn_on /
 * ursa_group_spawn_ex: let the runtime choose.  It picks round robin, with one
 * cursor per spawning core: the k-th URSA_CORE_ANY spawn made from core c
 * (k = 0, 1, ...) goes to core (c + k) mod ursa_ncores().  Placement never
 * affects what a program computes; do not rely on the order.  Tasks on
 * different cores run in parallel: data they share needs atomics or a lock. */
#define URSA_CORE_ANY (~0u)

/* Per-spawn options (ursa_spawn_ex).  Zero means default in every field. */
struct ursa_spawn_opts {
	uint32_t flags;      /* URSA_SPAWN_* */
	size_t stack_size;   /* bytes; 0: the runtime's stack_size.  1 to 16 KiB:
	                        16 KiB; otherwise rounded up to a power of two;
	                        above 1 GiB: -EINVAL                            */
	const char *name;    /* copied; shown in reports such as a stack overflow */
};

/*
 * Start fn(arg) as a new task on the calling task's core.  The new task runs
 * once the caller parks or yields.  On success *t receives a handle which
 * must be given to exactly one of ursa_join, ursa_cancel_and_join,
 * ursa_join_outcome, ursa_wait_for, ursa_gather or ursa_detach.  Returns 0,
 * -ENOMEM (no memory for the task or its stack), -EINVAL (fn NULL, or t NULL
 * without URSA_SPAWN_DETACHED), -EPERM (not called from a task).  A task
 * spawned while the runtime shuts down starts cancelled.  Does not block.
 */
URSA_API URSA_NODISCARD int ursa_spawn(struct ursa_task **t, ursa_fn fn, void *arg);

/* As ursa_spawn, on core `core`, or on a core the runtime picks with
 * URSA_CORE_ANY (-EINVAL for any other core >= ursa_ncores()). */
URSA_API URSA_NODISCARD int ursa_spawn_on(struct ursa_task **t, unsigned core, ursa_fn fn,
                                          void *arg);

/* As ursa_spawn_on with options; t may be NULL only with URSA_SPAWN_DETACHED.
 * -EINVAL for a flag bit other than URSA_SPAWN_DETACHED, or a stack_size
 * above 1 GiB (stack_size 0 is the runtime's; see struct ursa_spawn_opts). */
URSA_API URSA_NODISCARD int ursa_spawn_ex(struct ursa_task **t, unsigned core, ursa_fn fn,
                                          void *arg, const struct ursa_spawn_opts *opts);

/*
 * Wait for t to end, release it, and return how it ended (asyncio's
 * `await task`): 0 when it returned (its return value in *result, if result
 * is not NULL); -ECANCELED when it was cancelled; else the error it failed
 * with (ursa_task_fail), which may be any negative errno, -EINVAL included.
 * t is released on every return.
 *
 * If the caller is cancelled, or an enclosing deadline passes, while it
 * waits, t is cancelled in turn and the call keeps waiting (shielded) until
 * t has ended; it then returns t's outcome, usually -ECANCELED (a result or
 * failure t reached first wins).  The caller's own cancellation stays in
 * force and shows at its next wait; a deadline shows in ursa_scope_exit.
 *
 * Misuse is fatal (a one-line message on stderr naming the call and the
 * misuse, then abort()): t NULL, t the caller, t detached or already being
 * joined or watched, or a call from outside a task.  No return value could
 * report it: every errno may be a task's outcome.  ursa_join_outcome reports
 * misuse as an error instead.  Blocks the fiber; t may live on any core.
 */
URSA_API URSA_NODISCARD int ursa_join(struct ursa_task *t, void **result);

/*
 * Cleanup: cancel t, wait for it to end, release it, and return how it ended,
 * as ursa_join does: 0 and *result if it returned before the cancellation
 * reached it, else -ECANCELED or the error it failed with.  The wait is
 * shielded: it completes in a cancelled caller and past the caller's
 * deadlines (a task that ignores its cancellation holds the caller).  t NULL
 * does nothing and returns 0, so cleanup code may call it for a task it never
 * spawned.  Other misuse is fatal, as for ursa_join.  Not URSA_NODISCARD: the
 * caller asked for t to end; its outcome is for information.  Blocks the
 * fiber; t may live on any core.
 */
URSA_API int ursa_cancel_and_join(struct ursa_task *t, void **result);

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
 * Park the task for delay_ns nanoseconds (one IORING_OP_TIMEOUT).
 * ursa_sleep(0) yields.  Returns 0, -ECANCELED, or -ETIMEDOUT when an
 * enclosing scope's deadline comes first.  URSA_FOREVER sleeps until
 * cancelled.  Blocks the fiber.
 */
URSA_API URSA_NODISCARD int ursa_sleep(uint64_t delay_ns);
/* As ursa_sleep, until the absolute time deadline_ns; a past deadline returns
 * 0 at once. */
URSA_API URSA_NODISCARD int ursa_sleep_until(uint64_t deadline_ns);

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
 * Enter a scope (asyncio.timeout_at): until the matching ursa_scope_exit,
 * every blocking call of this task returns -ETIMEDOUT once the absolute time
 * deadline_ns has passed (URSA_FOREVER: no deadline).  An operation in
 * flight at that moment is cancelled and awaited.  Scopes nest; the earliest
 * deadline governs.
 */
URSA_API void ursa_scope_enter(struct ursa_scope *s, uint64_t deadline_ns);

/*
 * Enter a shielded scope: outer scopes' deadlines and ursa_cancel do not
 * reach calls inside it (its own deadline still does).  Use it for cleanup
 * that must finish, such as a final write, under a short deadline of its own.
 */
URSA_API void ursa_scope_enter_shielded(struct ursa_scope *s, uint64_t deadline_ns);

/*
 * As ursa_scope_enter[_shielded], with the deadline timeout_ns from now
 * (asyncio.timeout(delay)); URSA_FOREVER, or a sum that would overflow, means
 * no deadline, and 0 a deadline already passed (the first blocking call
 * inside returns -ETIMEDOUT).
 */
URSA_API void ursa_scope_enter_after(struct ursa_scope *s, uint64_t timeout_ns);
URSA_API void ursa_scope_enter_shielded_after(struct ursa_scope *s, uint64_t timeout_ns);

/*
 * Leave the innermost scope, which must be s (else a message and abort()).
 * Returns -ETIMEDOUT if its deadline fired while inside, else -ECANCELED if
 * the task has been cancelled (and s is not shielded), else 0.
 */
URSA_API int ursa_scope_exit(struct ursa_scope *s);

/*
 * A shielded block, for cleanup that must run even in a cancelled task
 * (`except CancelledError: await cleanup()`):
 *
 *     URSA_SHIELDED(URSA_SEC(2)) {
 *         flush(conn);            // its waits ignore the cancellation,
 *         ursa_close(conn->fd);   // and get -ETIMEDOUT after 2 s
 *     }
 *
 * The block runs once inside ursa_scope_enter_shielded_after(timeout_ns), and
 * the scope is exited on every way out of it: the end, break, continue,
 * return, goto.  The block is a one-pass loop, so a break or continue in it
 * leaves the block, not a loop around it.  Calls inside report the shield's
 * deadline themselves (-ETIMEDOUT).  C with GCC or Clang (it needs __attribute__((cleanup)));
 * elsewhere, and in C++, pair ursa_scope_enter_shielded_after and
 * ursa_scope_exit by hand.
 */
#if defined(__GNUC__) && !defined(__cplusplus)
static inline void ursa_shield_leave_(struct ursa_scope *s)
{
	(void)ursa_scope_exit(s);
}
#define URSA_CAT2_(a, b) a##b
#define URSA_CAT_(a, b) URSA_CAT2_(a, b)
#define URSA_SHIELDED(timeout_ns) URSA_SHIELDED_((timeout_ns), __COUNTER__)
#define URSA_SHIELDED_(timeout_ns, n)                                                       \
	for (struct ursa_scope URSA_CAT_(ursa_shield_, n)                                   \
	         __attribute__((cleanup(ursa_shield_leave_))),                                \
	     *URSA_CAT_(ursa_shield_once_, n) =                                               \
	         (ursa_scope_enter_shielded_after(&URSA_CAT_(ursa_shield_, n), (timeout_ns)), \
	          &URSA_CAT_(ursa_shield_, n));                                               \
	     URSA_CAT_(ursa_shield_once_, n); URSA_CAT_(ursa_shield_once_, n) = NULL)
#endif

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
URSA_API URSA_NODISCARD int ursa_blocking(ursa_fn fn, void *arg, void **result);

#ifdef __cplusplus
}
#endif

#endif /* URSA_RUNTIME_H */
