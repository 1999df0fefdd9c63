/* SPDX-License-Identifier: MIT */
/*
 * Poison checks (issue 20.8): the common misuses of handles and primitives
 * print a message naming the call and abort, in release builds too, instead
 * of reading freed memory or spinning for ever.  Each misuse runs in a
 * forked child (no Criterion there) whose stderr is checked.  Where the
 * misuse reads freed memory, an ASan build reports it first
 * (heap-use-after-free): that report is accepted instead.
 */
#include "helpers.h"

#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run main in a forked child; it must abort with `message` on stderr (or,
 * with use_after_free, may instead die of ASan's report of one). */
static void expect_abort(ursa_fn main, const char *message, bool use_after_free)
{
	char buf[8192];
	int status = run_in_child(main, NULL, 1, buf, sizeof(buf));

	/* Freed memory reused meanwhile may hold a lock that looks taken: the
	 * spinlock guard reports that instead (after 10 s). */
	if (use_after_free && (strstr(buf, "heap-use-after-free") || strstr(buf, "use-after-poison") ||
	                         strstr(buf, "spinlock at"))) {
		cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "stderr: %s", buf);
		return;
	}
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "child did not abort (status %#x); stderr: %s", status, buf);
	cr_assert_not_null(strstr(buf, message), "stderr: %s", buf);
}

static void *nothing(void *arg)
{
	return arg;
}

/* ---------------------------------------------------------------- handles */

static void *main_join_twice(void *arg)
{
	struct ursa_task *t;

	(void)arg;
	if (ursa_spawn(&t, nothing, NULL) || ursa_join(t, NULL))
		return NULL;
	return (void *)(intptr_t)ursa_join(t, NULL); /* t was released */
}

Test(misuse, joining_a_handle_twice_aborts)
{
	expect_abort(main_join_twice, "ursa: ursa_join: the handle is not a live task", true);
}

static void *main_cancel_after_join(void *arg)
{
	struct ursa_task *t;

	(void)arg;
	if (ursa_spawn(&t, nothing, NULL) || ursa_join(t, NULL))
		return NULL;
	return (void *)(intptr_t)ursa_cancel(t);
}

Test(misuse, cancelling_a_released_handle_aborts)
{
	expect_abort(main_cancel_after_join, "ursa: ursa_cancel: the handle is not a live task",
	             true);
}

static void *main_outcome_after_join(void *arg)
{
	struct ursa_task *t;
	struct ursa_outcome out;

	(void)arg;
	if (ursa_spawn(&t, nothing, NULL) || ursa_join(t, NULL))
		return NULL;
	return (void *)(intptr_t)ursa_join_outcome(t, &out);
}

Test(misuse, join_outcome_of_a_released_handle_aborts)
{
	expect_abort(main_outcome_after_join,
	             "ursa: ursa_join_outcome: the handle is not a live task", true);
}

/* ------------------------------------------- never-initialised primitives */

/* Garbage where a primitive should be: memory never initialised. */
#define GARBAGE(type, name)                                                                 \
	static union {                                                                      \
		type obj;                                                                   \
		unsigned char bytes[sizeof(type)];                                          \
	} name;                                                                             \
	memset(&name, 0xa5, sizeof(name))

static void *main_garbage_mutex(void *arg)
{
	GARBAGE(struct ursa_mutex, g);
	(void)arg;
	return (void *)(intptr_t)ursa_mutex_lock(&g.obj);
}

Test(misuse, locking_a_garbage_mutex_aborts)
{
	expect_abort(main_garbage_mutex, "ursa: ursa_mutex_lock: the mutex at", false);
}

static void *main_garbage_event(void *arg)
{
	GARBAGE(struct ursa_event, g);
	(void)arg;
	return (void *)(intptr_t)ursa_event_wait(&g.obj);
}

Test(misuse, waiting_on_a_garbage_event_aborts)
{
	expect_abort(main_garbage_event, "ursa: ursa_event_wait: the event at", false);
}

static void *main_garbage_sem(void *arg)
{
	GARBAGE(struct ursa_sem, g);
	(void)arg;
	return (void *)(intptr_t)ursa_sem_acquire(&g.obj);
}

Test(misuse, acquiring_a_garbage_semaphore_aborts)
{
	expect_abort(main_garbage_sem, "ursa: ursa_sem_acquire: the semaphore at", false);
}

static void *main_garbage_cond(void *arg)
{
	struct ursa_mutex m = URSA_MUTEX_INIT;
	GARBAGE(struct ursa_cond, g);

	(void)arg;
	if (ursa_mutex_lock(&m))
		return NULL;
	return (void *)(intptr_t)ursa_cond_wait(&g.obj, &m);
}

Test(misuse, waiting_on_a_garbage_condition_aborts)
{
	expect_abort(main_garbage_cond, "ursa: ursa_cond_wait: the condition at", false);
}

static void *main_garbage_barrier(void *arg)
{
	GARBAGE(struct ursa_barrier, g);
	(void)arg;
	return (void *)(intptr_t)ursa_barrier_wait(&g.obj);
}

Test(misuse, waiting_on_a_garbage_barrier_aborts)
{
	expect_abort(main_garbage_barrier, "ursa: ursa_barrier_wait: the barrier at", false);
}

static void *main_garbage_waitgroup(void *arg)
{
	GARBAGE(struct ursa_waitgroup, g);
	(void)arg;
	return (void *)(intptr_t)ursa_waitgroup_wait(&g.obj);
}

Test(misuse, waiting_on_a_garbage_waitgroup_aborts)
{
	expect_abort(main_garbage_waitgroup, "ursa: ursa_waitgroup_wait: the waitgroup at", false);
}

/* A statically initialised or zeroed primitive is not garbage. */
static struct seen zero_seen;

static void *main_zeroed(void *arg)
{
	static struct ursa_mutex m; /* all zero: URSA_MUTEX_INIT */
	static struct ursa_event e;
	struct ursa_sem s = URSA_SEM_INIT(1);

	(void)arg;
	EXPECT_EQ(&zero_seen, ursa_mutex_lock(&m), 0);
	ursa_mutex_unlock(&m);
	ursa_event_set(&e);
	EXPECT_EQ(&zero_seen, ursa_event_wait(&e), 0);
	EXPECT_EQ(&zero_seen, ursa_sem_acquire(&s), 0);
	return NULL;
}

Test(misuse, zeroed_and_static_primitives_pass_the_check)
{
	run_on(1, main_zeroed, NULL);
	ASSERT_SEEN(&zero_seen);
}

/* -------------------------------------------- destroyed while in use */

static void *wait_event(void *arg)
{
	(void)!ursa_event_wait(arg);
	return NULL;
}

/* The event a task waits on is overwritten (as freed memory is reused);
 * when the waiter is cancelled it must not spin on the garbage lock. */
static void *main_event_overwritten(void *arg)
{
	struct ursa_spawn_opts so = {.name = "waiter"};
	struct ursa_event *e = malloc(sizeof(*e));
	struct ursa_task *t;

	(void)arg;
	if (!e)
		return NULL;
	ursa_event_init(e);
	if (ursa_spawn_ex(&t, 0, wait_event, e, &so))
		return NULL;
	nap(5 * MS); /* it waits */
	memset(e, 0xa5, sizeof(*e));
	(void)ursa_cancel(t);
	return (void *)(intptr_t)ursa_join(t, NULL);
}

Test(misuse, an_event_overwritten_while_a_task_waits_aborts)
{
	expect_abort(main_event_overwritten,
	             "ursa: task 'waiter': the object it waits on (at", false);
}

static void *lock_mutex(void *arg)
{
	if (ursa_mutex_lock(arg) == 0)
		ursa_mutex_unlock(arg);
	return NULL;
}

static void *main_mutex_overwritten(void *arg)
{
	struct ursa_spawn_opts so = {.name = "locker"};
	struct ursa_mutex *m = malloc(sizeof(*m));
	struct ursa_task *t;

	(void)arg;
	if (!m)
		return NULL;
	ursa_mutex_init(m);
	if (ursa_mutex_lock(m) || ursa_spawn_ex(&t, 0, lock_mutex, m, &so))
		return NULL;
	nap(5 * MS); /* it waits for the mutex we hold */
	memset(m, 0xa5, sizeof(*m));
	(void)ursa_cancel(t);
	return (void *)(intptr_t)ursa_join(t, NULL);
}

Test(misuse, a_mutex_overwritten_while_a_task_waits_aborts)
{
	expect_abort(main_mutex_overwritten, "ursa: task 'locker': the object it waits on (at",
	             false);
}

static void *main_queue_after_destroy(void *arg)
{
	struct ursa_queue *q;

	(void)arg;
	if (ursa_queue_create(&q, 0, 0))
		return NULL;
	ursa_queue_destroy(q);
	return (void *)(intptr_t)ursa_queue_put_nowait(q, NULL);
}

Test(misuse, a_queue_used_after_destroy_aborts)
{
	expect_abort(main_queue_after_destroy,
	             "ursa: ursa_queue_put_nowait: the queue at", true);
}
