/* SPDX-License-Identifier: MIT */
/*
 * The per-core counters (include/ursa/stats.h, docs/observability.md):
 * known work gives exact counts; the gauges say what each task waits on;
 * the call's conventions; the stats socket serves the table.  Counters are
 * compared as differences of two snapshots taken by the task itself, so the
 * runtime's own start-up work does not enter them.
 */
#include "helpers.h"

#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *probe(void *arg)
{
	struct ursa_stats st = {.size = sizeof(st)};

	*(int *)arg = ursa_stats(&st, 0, 0);
	return NULL;
}

/* The library was built with -Dstats=false: nothing to count. */
static bool stats_off(void)
{
	int rc = 0;

	run_on(1, probe, &rc);
	return rc == -ENOTSUP;
}

static int snap(struct ursa_stats *st, unsigned core)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ursa_stats(st, core, 0);
}

/* ------------------------------------------------ N sleeps, exactly */

#define NSLEEPS 40

static void *main_sleeps(void *arg)
{
	struct seen *s = arg;
	struct ursa_stats a, b;

	REQUIRE(s, snap(&a, 0) == 0, 0);
	for (int i = 0; i < NSLEEPS; i++)
		EXPECT_EQ(s, ursa_sleep(URSA_US(200)), 0);
	REQUIRE(s, snap(&b, 0) == 0, 0);
	/* One TIMEOUT SQE per sleep, one park and one wake (the task ran
	 * again) each, all counted as waits for the ring. */
	EXPECT_EQ(s, b.ops_by_opcode[IORING_OP_TIMEOUT] - a.ops_by_opcode[IORING_OP_TIMEOUT],
	          (uint64_t)NSLEEPS);
	EXPECT_EQ(s, b.ops - a.ops, (uint64_t)NSLEEPS);
	EXPECT_EQ(s, b.parks - a.parks, (uint64_t)NSLEEPS);
	EXPECT_EQ(s, b.switches - a.switches, (uint64_t)NSLEEPS);
	EXPECT(s, b.sqes - a.sqes >= NSLEEPS, b.sqes - a.sqes);
	EXPECT(s, b.cqes - a.cqes >= NSLEEPS, b.cqes - a.cqes);
	EXPECT(s, b.submits - a.submits >= 1, b.submits - a.submits);
	EXPECT(s, b.submits - a.submits <= b.sqes - a.sqes, b.submits - a.submits);
	EXPECT(s, b.turns - a.turns >= NSLEEPS, b.turns - a.turns);
	/* Alone on its core, it slept in io_uring_enter while it waited. */
	EXPECT(s, b.sleeps - a.sleeps >= 1, b.sleeps - a.sleeps);
	EXPECT(s, b.sleep_ns > a.sleep_ns, b.sleep_ns - a.sleep_ns);
	/* Nothing left waiting, nothing parked: the caller is running. */
	EXPECT_EQ(s, b.ops_inflight, 0);
	EXPECT_EQ(s, b.inflight_by_opcode[IORING_OP_TIMEOUT], 0u);
	EXPECT_EQ(s, b.parked_ring, 0);
	EXPECT_EQ(s, b.tasks_live, 1); /* main */
	EXPECT_EQ(s, b.xwakes_sent - a.xwakes_sent, 0);
	EXPECT_EQ(s, b.xwakes_recv - a.xwakes_recv, 0);
	return NULL;
}

Test(stats, n_sleeps_are_n_timeouts_parks_and_wakes)
{
	struct seen s = {0};

	if (stats_off())
		cr_skip_test("built with -Dstats=false");
	run_on(1, main_sleeps, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------ M cross-core spawns, exactly */

#define NSPAWNS 25
static atomic_int ran;

static void *bump(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
	return NULL;
}

static void *main_crosscore(void *arg)
{
	struct seen *s = arg;
	struct ursa_stats a0, a1, b0, b1, all;
	struct ursa_spawn_opts det = {.flags = URSA_SPAWN_DETACHED};
	struct ursa_task *last;

	REQUIRE(s, snap(&a0, 0) == 0 && snap(&a1, 1) == 0, 0);
	for (int i = 0; i < NSPAWNS; i++)
		REQUIRE(s, ursa_spawn_ex(NULL, 1, bump, NULL, &det) == 0, i);
	/* The last one is joined: core 1 runs its queue in order, so when it
	 * has ended the others have too. */
	REQUIRE(s, ursa_spawn_on(&last, 1, bump, NULL) == 0, 0);
	JOIN_OK(s, last);
	REQUIRE(s, snap(&b0, 0) == 0 && snap(&b1, 1) == 0, 0);
	EXPECT_EQ(s, atomic_load(&ran), NSPAWNS + 1);
	/* Each spawn on core 1 is one wake sent by core 0 and received by
	 * core 1. */
	EXPECT_EQ(s, b0.xwakes_sent - a0.xwakes_sent, (uint64_t)NSPAWNS + 1);
	EXPECT_EQ(s, b1.xwakes_recv - a1.xwakes_recv, (uint64_t)NSPAWNS + 1);
	EXPECT_EQ(s, b1.tasks_spawned - a1.tasks_spawned, (uint64_t)NSPAWNS + 1);
	EXPECT_EQ(s, b1.tasks_ended - a1.tasks_ended, (uint64_t)NSPAWNS + 1);
	EXPECT_EQ(s, b0.tasks_spawned - a0.tasks_spawned, 0);
	/* The join's wake comes back from core 1 if main had parked by then
	 * (else main found it on its way to park): either way, what core 1
	 * sent core 0 received. */
	EXPECT(s, b1.xwakes_sent - a1.xwakes_sent <= 1, b1.xwakes_sent - a1.xwakes_sent);
	EXPECT_EQ(s, b0.xwakes_recv - a0.xwakes_recv, b1.xwakes_sent - a1.xwakes_sent);
	/* The kicks (MSG_RING or eventfd writes from core 0): at most one per
	 * time core 1 slept, plus one that may race with its last sleep.  None
	 * at all is right when core 1 was busy or idle-polling throughout (a
	 * clean-clone run saw that: the spawns came while it still polled). */
	EXPECT(s, b0.kicks - a0.kicks <= b1.sleeps - a1.sleeps + 1, b0.kicks - a0.kicks);
	/* The sum is the sum. */
	REQUIRE(s, snap(&all, URSA_STATS_ALL) == 0, 0);
	EXPECT_EQ(s, all.core, URSA_STATS_ALL);
	EXPECT_EQ(s, all.ncores, 2u);
	EXPECT(s, all.tasks_spawned >= b0.tasks_spawned + b1.tasks_spawned, all.tasks_spawned);
	return NULL;
}

Test(stats, m_crosscore_spawns_are_m_crosscore_wakes)
{
	struct seen s = {0};

	if (stats_off())
		cr_skip_test("built with -Dstats=false");
	atomic_store(&ran, 0);
	run_on(2, main_crosscore, &s);
	ASSERT_SEEN(&s);
}

/* --------------------------------------------- what tasks are parked on */

static struct ursa_mutex mu;
static atomic_bool release_job;

static void *locker(void *arg)
{
	(void)arg;
	if (ursa_mutex_lock(&mu) == 0)
		ursa_mutex_unlock(&mu);
	return NULL;
}

static void *joiner(void *arg)
{
	return (void *)(intptr_t)ursa_join(arg, NULL);
}

static void *sleeper(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ursa_sleep(URSA_SEC(30));
}

static void *job(void *arg)
{
	struct timespec ms = {0, 1000000};

	(void)arg;
	while (!atomic_load(&release_job))
		nanosleep(&ms, NULL);
	return NULL;
}

static void *blocker(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ursa_blocking(job, NULL, NULL);
}

static void *main_parked(void *arg)
{
	struct seen *s = arg;
	struct ursa_task *lk, *jn, *sl, *bl;
	struct ursa_stats st;

	REQUIRE(s, ursa_mutex_lock(&mu) == 0, 0);
	REQUIRE(s, ursa_spawn(&lk, locker, NULL) == 0, 0);
	REQUIRE(s, ursa_spawn(&jn, joiner, lk) == 0, 0);
	REQUIRE(s, ursa_spawn(&sl, sleeper, NULL) == 0, 0);
	REQUIRE(s, ursa_spawn(&bl, blocker, NULL) == 0, 0);
	ursa_yield(); /* each runs until it parks */
	REQUIRE(s, snap(&st, 0) == 0, 0);
	EXPECT_EQ(s, st.tasks_live, 5);
	EXPECT_EQ(s, st.parked_primitive, 1); /* locker, on the mutex */
	EXPECT_EQ(s, st.parked_join, 1);      /* joiner */
	EXPECT_EQ(s, st.parked_ring, 1);      /* sleeper, on its TIMEOUT */
	EXPECT_EQ(s, st.parked_pool, 1);      /* blocker */
	EXPECT_EQ(s, st.parked_other, 0);
	EXPECT_EQ(s, st.inflight_by_opcode[IORING_OP_TIMEOUT], 1u);
	EXPECT_EQ(s, st.ops_inflight, 1);
	EXPECT(s, st.pool_threads >= 1, st.pool_threads);

	ursa_mutex_unlock(&mu);
	atomic_store(&release_job, true);
	ursa_cancel(sl);
	JOIN_OK(s, jn);
	EXPECT_EQ(s, ursa_join(sl, NULL), -ECANCELED);
	JOIN_OK(s, bl);
	REQUIRE(s, snap(&st, 0) == 0, 0);
	EXPECT_EQ(s, st.parked_primitive + st.parked_join + st.parked_ring + st.parked_pool +
	                     st.parked_other,
	          0);
	EXPECT_EQ(s, st.ops_inflight, 0);
	EXPECT_EQ(s, st.tasks_live, 1);
	EXPECT_EQ(s, st.pool_jobs, 1);
	EXPECT(s, st.pool_job_ns > 0, st.pool_job_ns);
	return NULL;
}

Test(stats, gauges_say_what_each_parked_task_waits_for)
{
	struct seen s = {0};

	if (stats_off())
		cr_skip_test("built with -Dstats=false");
	ursa_mutex_init(&mu);
	atomic_store(&release_job, false);
	run_on(1, main_parked, &s);
	ASSERT_SEEN(&s);
}

/* ------------------------------------------------ the call's conventions */

struct v1_prefix {
	struct ursa_stats head; /* only the first bytes are the caller's */
};

static void *main_conventions(void *arg)
{
	struct seen *s = arg;
	struct ursa_stats st;
	unsigned char buf[sizeof(struct ursa_stats) + 16];
	size_t small = offsetof(struct ursa_stats, tasks_live);
	struct ursa_stats *p = (struct ursa_stats *)buf;
	int rc;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	EXPECT_EQ(s, ursa_stats(&st, 0, 1u), -EINVAL);      /* unknown flag */
	EXPECT_EQ(s, ursa_stats(&st, 2, 0), -EINVAL);       /* no such core */
	EXPECT_EQ(s, ursa_stats(NULL, 0, 0), -EINVAL);
	st.size = 8;
	EXPECT_EQ(s, ursa_stats(&st, 0, 0), -EINVAL);       /* smaller than the header */
	/* An older caller's smaller struct: filled up to its size, no further. */
	memset(buf, 0xa5, sizeof(buf));
	p->size = (uint32_t)small;
	rc = ursa_stats(p, 1, 0);
	EXPECT(s, rc == 0 || rc == -ENOTSUP, rc);
	EXPECT_EQ(s, p->size, (uint32_t)small);
	EXPECT_EQ(s, p->version, URSA_STATS_VERSION);
	EXPECT_EQ(s, p->core, 1u);
	EXPECT_EQ(s, p->ncores, 2u);
	EXPECT_EQ(s, buf[small], 0xa5);
	EXPECT_EQ(s, buf[sizeof(buf) - 1], 0xa5);
	return NULL;
}

static void *not_a_task(void *arg)
{
	struct ursa_stats st = {.size = sizeof(st)};

	(void)arg;
	return (void *)(intptr_t)ursa_stats(&st, 0, 0);
}

Test(stats, follows_the_api_conventions)
{
	struct seen s = {0};
	struct ursa_stats st = {.size = sizeof(st)};

	run_on(2, main_conventions, &s);
	ASSERT_SEEN(&s);
	cr_assert_eq(ursa_stats(&st, 0, 0), -EPERM); /* outside a task */
	cr_assert_eq((intptr_t)not_a_task(NULL), -EPERM);
}

/* ------------------------------ file reads and stacks, from their owners */

#define NREADS 12
#define NPARKED 100

static void *parked(void *arg)
{
	(void)arg;
	(void)!ursa_sleep(URSA_FOREVER);
	return NULL;
}

static void *main_files_stacks(void *arg)
{
	struct seen *s = arg;
	char path[] = "/tmp/ursa-test-stats-XXXXXX", buf[512];
	struct iovec iov = {buf, sizeof(buf)};
	struct ursa_task *t[NPARKED];
	struct ursa_stats a, b;
	int fd = mkstemp(path);

	REQUIRE(s, fd >= 0, fd);
	unlink(path);
	REQUIRE(s, pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf), 0);
	/* Every read of the family is counted once: inline or on the ring
	 * (which one the page cache decides), and the forced ones on the ring. */
	REQUIRE(s, snap(&a, 0) == 0, 0);
	for (int i = 0; i < NREADS; i++)
		EXPECT_EQ(s, ursa_pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (int i = 0; i < NREADS; i++)
		EXPECT_EQ(s, ursa_preadv2(fd, &iov, 1, 0, URSA_RWF_RING), (ssize_t)sizeof(buf));
	REQUIRE(s, snap(&b, 0) == 0, 0);
	EXPECT_EQ(s, (b.file_inline - a.file_inline) + (b.file_ring - a.file_ring),
	          (uint64_t)(2 * NREADS));
	EXPECT(s, b.file_ring - a.file_ring >= NREADS, b.file_ring - a.file_ring);
	close(fd);
	/* Stacks: NPARKED parked tasks hold NPARKED slots of core 0's slabs. */
	for (int i = 0; i < NPARKED; i++)
		REQUIRE(s, ursa_spawn_on(&t[i], 0, parked, NULL) == 0, i);
	ursa_yield();
	REQUIRE(s, snap(&b, 0) == 0, 0);
	EXPECT(s, b.stacks_mapped >= NPARKED + 1, b.stacks_mapped);
	EXPECT(s, b.stack_slabs >= 1, b.stack_slabs);
	EXPECT(s, b.stack_bytes_mapped >= (uint64_t)NPARKED * 16384, b.stack_bytes_mapped);
	for (int i = 0; i < NPARKED; i++)
		(void)ursa_cancel_and_join(t[i], NULL);
	return NULL;
}

Test(stats, file_reads_and_stack_slabs_are_counted)
{
	struct seen s = {0};

	if (stats_off())
		cr_skip_test("built with -Dstats=false");
	run_on(1, main_files_stacks, &s);
	ASSERT_SEEN(&s);
}

/* ---------------------------------------------------- the stats socket */

static char sock_name[64];

static void *main_socket(void *arg)
{
	struct seen *s = arg;
	char buf[16384];
	size_t got = 0;
	int fd = ursa_unix_connect(sock_name);

	REQUIRE(s, fd >= 0, fd);
	for (int round = 0; round < 2; round++) {
		got = 0;
		EXPECT_EQ(s, ursa_send(fd, "t", 1, 0), 1);
		/* The reply ends with one NUL byte. */
		while (got < sizeof(buf)) {
			int n = ursa_recv(fd, buf + got, sizeof(buf) - got, 0);

			if (n <= 0)
				break;
			got += (size_t)n;
			if (buf[got - 1] == 0)
				break;
		}
		REQUIRE(s, got > 0 && buf[got - 1] == 0, got);
		EXPECT(s, strstr(buf, "ursa stats: pid") != NULL, 0);
		EXPECT(s, strstr(buf, round ? "per second" : "since start") != NULL, round);
		EXPECT(s, strstr(buf, "\n   1 ") != NULL, 0); /* core 1's row */
		EXPECT(s, strstr(buf, "\n all ") != NULL, 0);
	}
	ursa_close(fd);
	return NULL;
}

Test(stats, the_socket_serves_the_table)
{
	struct seen s = {0};
	struct ursa_opts o = {.cores = 2, .stats_socket = sock_name};
	int rc;

	snprintf(sock_name, sizeof(sock_name), "@ursa-test-stats-%d", (int)getpid());
	rc = ursa_run(main_socket, &s, &o, NULL);
	cr_assert_eq(rc, 0, "ursa_run: %d", rc);
	ASSERT_SEEN(&s);
}
