/* SPDX-License-Identifier: MIT */
/*
 * Values at the edges (issue 20.3): every size, count and time parameter of
 * the public API at 0, 1, max-1, max and beyond (negative where signed).
 * Each value gets an error, a result, or the documented rounding; none
 * wraps.  docs/api.md, "Limits", is the table these tests hold up.
 */
#include "helpers.h"

#include <limits.h>
#include <poll.h>
#include <sys/types.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---------------------------------------------------- semaphore, waitgroup */

Test(limits, unbounded_semaphore_refuses_to_wrap_at_uint_max)
{
	struct ursa_sem s;

	ursa_sem_init(&s, UINT_MAX - 1, false);
	cr_assert_eq(ursa_sem_release(&s), 0);
	cr_assert_eq(ursa_sem_value(&s), UINT_MAX);
	cr_assert_eq(ursa_sem_release(&s), -EOVERFLOW, "UINT_MAX + 1 must not wrap to 0");
	cr_assert_eq(ursa_sem_value(&s), UINT_MAX, "a refused release changes nothing");
	cr_assert_eq(ursa_sem_tryacquire(&s), 0);
	cr_assert_eq(ursa_sem_value(&s), UINT_MAX - 1);

	struct ursa_sem st = URSA_SEM_INIT(UINT_MAX);
	cr_assert_eq(ursa_sem_release(&st), -EOVERFLOW);

	ursa_sem_init(&s, 0, false);
	cr_assert_eq(ursa_sem_tryacquire(&s), -EAGAIN);
	cr_assert_eq(ursa_sem_release(&s), 0);
	cr_assert_eq(ursa_sem_value(&s), 1);
}

Test(limits, bounded_semaphore_edges)
{
	struct ursa_sem s;

	/* Bounded with 0 units: there is nothing to give back, ever. */
	ursa_sem_init(&s, 0, true);
	cr_assert_eq(ursa_sem_release(&s), -EOVERFLOW);
	cr_assert_eq(ursa_sem_value(&s), 0);
	struct ursa_sem s0 = URSA_SEM_BOUNDED_INIT(0);
	cr_assert_eq(ursa_sem_release(&s0), -EOVERFLOW);

	ursa_sem_init(&s, 1, true);
	cr_assert_eq(ursa_sem_release(&s), -EOVERFLOW);
	cr_assert_eq(ursa_sem_tryacquire(&s), 0);
	cr_assert_eq(ursa_sem_release(&s), 0);
	cr_assert_eq(ursa_sem_release(&s), -EOVERFLOW);

	ursa_sem_init(&s, UINT_MAX, true);
	cr_assert_eq(ursa_sem_release(&s), -EOVERFLOW);
	cr_assert_eq(ursa_sem_tryacquire(&s), 0);
	cr_assert_eq(ursa_sem_release(&s), 0);
	cr_assert_eq(ursa_sem_value(&s), UINT_MAX);
}

Test(limits, waitgroup_count_neither_overflows_nor_goes_negative)
{
	struct ursa_waitgroup wg;

	ursa_waitgroup_init(&wg);
	cr_assert_eq(ursa_waitgroup_add(&wg, -1), -EINVAL);
	cr_assert_eq(ursa_waitgroup_add(&wg, LONG_MIN), -EINVAL);
	cr_assert_eq(ursa_waitgroup_add(&wg, 0), 0);
	cr_assert_eq(ursa_waitgroup_add(&wg, LONG_MAX - 1), 0);
	cr_assert_eq(ursa_waitgroup_add(&wg, 1), 0);
	cr_assert_eq(ursa_waitgroup_add(&wg, 1), -EOVERFLOW, "LONG_MAX + 1 must not wrap");
	cr_assert_eq(ursa_waitgroup_add(&wg, LONG_MAX), -EOVERFLOW);
	/* LONG_MAX + LONG_MIN = -1: negative, refused without overflowing. */
	cr_assert_eq(ursa_waitgroup_add(&wg, LONG_MIN), -EINVAL);
	cr_assert_eq(ursa_waitgroup_add(&wg, -LONG_MAX), 0);
}

/* ------------------------------------------------------------------- time */

Test(limits, time_macros_clamp_and_saturate)
{
	cr_assert_eq(URSA_MS(-1), 0);
	cr_assert_eq(URSA_SEC(-1e300), 0);
	cr_assert_eq(URSA_MS(0), 0);
	cr_assert_eq(URSA_US(1), 1000);
	cr_assert_eq(URSA_SEC(1e300), URSA_FOREVER);
	cr_assert_eq(URSA_SEC(9223372037.0), URSA_FOREVER);
	cr_assert_eq(URSA_MS(INT64_MAX), URSA_FOREVER);
}

static struct seen time_seen;

/* Inside a 1 ms scope, every sleep whose end is far away ends with the
 * scope: no sum with now wraps into the past (which would return 0 at once)
 * and no huge value is refused by the kernel's timespec. */
static void *far_sleeps(void *arg)
{
	static const uint64_t far[] = {URSA_FOREVER, URSA_FOREVER - 1, INT64_MAX,
	                               (uint64_t)INT64_MAX + 1, (uint64_t)-1000000000};
	struct ursa_scope s;

	(void)arg;
	for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
		ursa_scope_enter_after(&s, MS);
		EXPECT_EQ(&time_seen, ursa_sleep(far[i]), -ETIMEDOUT);
		ursa_scope_exit(&s);
		ursa_scope_enter_after(&s, MS);
		EXPECT_EQ(&time_seen, ursa_sleep_until(far[i]), -ETIMEDOUT);
		ursa_scope_exit(&s);
		/* A scope that never ends does not end a short sleep. */
		ursa_scope_enter_after(&s, far[i]);
		EXPECT_EQ(&time_seen, ursa_sleep(1), 0);
		ursa_scope_exit(&s);
	}
	EXPECT_EQ(&time_seen, ursa_sleep(0), 0);
	EXPECT_EQ(&time_seen, ursa_sleep_until(0), 0);
	EXPECT_EQ(&time_seen, ursa_sleep_until(1), 0);
	/* A scope of duration 0 is already over. */
	ursa_scope_enter_after(&s, 0);
	EXPECT_EQ(&time_seen, ursa_sleep(1), -ETIMEDOUT);
	ursa_scope_exit(&s);
	return NULL;
}

Test(limits, far_deadlines_saturate)
{
	run_on(1, far_sleeps, NULL);
	ASSERT_SEEN(&time_seen);
}

static void *idle(void *arg)
{
	(void)arg;
	return NULL;
}

static struct seen wait_seen;

static void *far_waits(void *arg)
{
	struct ursa_task *t;
	struct ursa_outcome out;
	bool done[1];

	(void)arg;
	REQUIRE(&wait_seen, ursa_spawn(&t, idle, NULL) == 0, -1);
	EXPECT_EQ(&wait_seen, ursa_wait(&t, 1, URSA_WAIT_ALL_COMPLETED, URSA_FOREVER - 1, done), 1);
	EXPECT_EQ(&wait_seen, ursa_wait(&t, 1, URSA_WAIT_ALL_COMPLETED, INT64_MAX, done), 1);
	EXPECT_EQ(&wait_seen, ursa_wait_until(&t, 1, URSA_WAIT_ALL_COMPLETED, URSA_FOREVER, done), 1);
	EXPECT_EQ(&wait_seen, ursa_wait(&t, 1, URSA_WAIT_ALL_COMPLETED, 0, done), 1);
	EXPECT_EQ(&wait_seen, done[0], true);
	/* Counts beyond INT_MAX are refused before the array is read. */
	EXPECT_EQ(&wait_seen, ursa_wait(&t, (size_t)INT_MAX + 1, URSA_WAIT_ALL_COMPLETED, 0, done),
	          -EINVAL);
	EXPECT_EQ(&wait_seen, ursa_gather(&t, SIZE_MAX, 0, NULL), -EINVAL);
	EXPECT_EQ(&wait_seen, ursa_wait_for(t, URSA_FOREVER - 1, &out), 0);
	/* n = 0: nothing to wait for. */
	EXPECT_EQ(&wait_seen, ursa_gather(NULL, 0, 0, NULL), 0);
	return NULL;
}

Test(limits, waits_take_far_timeouts_and_refuse_huge_counts)
{
	run_on(1, far_waits, NULL);
	ASSERT_SEEN(&wait_seen);
}

Test(limits, ticker_period_edges)
{
	struct ursa_ticker tk;

	ursa_ticker_init(&tk, 0);
	cr_assert_eq(tk.period_ns, 1, "a period of 0 is 1 ns");
	ursa_ticker_init(&tk, URSA_FOREVER);
	cr_assert_eq(tk.next_ns, URSA_FOREVER, "now + forever saturates");
	ursa_ticker_init(&tk, URSA_FOREVER - 1);
	cr_assert_eq(tk.next_ns, URSA_FOREVER);
	ursa_ticker_init(&tk, INT64_MAX);
	cr_assert_geq(tk.next_ns, (uint64_t)INT64_MAX);
}

static struct seen tick_seen;

static void *ticks(void *arg)
{
	struct ursa_ticker tk;
	struct ursa_scope s;
	int n;

	(void)arg;
	/* A 1 ns period falls behind at once: the ticks skipped are counted. */
	ursa_ticker_init(&tk, 1);
	nap(MS);
	n = ursa_ticker_wait(&tk);
	EXPECT(&tick_seen, n >= 1, n);
	/* A tick near the end of time: the next one saturates, never wraps into
	 * the past (which would make every later wait return at once). */
	tk.period_ns = URSA_FOREVER / 2;
	tk.next_ns = ursa_now();
	n = ursa_ticker_wait(&tk);
	EXPECT(&tick_seen, n >= 1, n);
	EXPECT(&tick_seen, tk.next_ns > ursa_now(), tk.next_ns);
	tk.next_ns = URSA_FOREVER - 1;
	ursa_scope_enter_after(&s, MS);
	EXPECT_EQ(&tick_seen, ursa_ticker_wait(&tk), -ETIMEDOUT);
	ursa_scope_exit(&s);
	return NULL;
}

Test(limits, ticker_never_wraps)
{
	run_on(1, ticks, NULL);
	ASSERT_SEEN(&tick_seen);
}

/* -------------------------------------------------------- queues, barrier */

static struct seen q_seen;

static void *queue_edges(void *arg)
{
	struct ursa_queue *q;
	struct ursa_queue_sel arm;
	void *item;

	(void)arg;
	/* maxsize SIZE_MAX: bounded only in name. */
	REQUIRE(&q_seen, ursa_queue_create(&q, SIZE_MAX, 0) == 0, -1);
	for (int i = 0; i < 100; i++)
		EXPECT_EQ(&q_seen, ursa_queue_put_nowait(q, &arm), 0);
	EXPECT_EQ(&q_seen, ursa_queue_full(q), false);
	while (ursa_queue_get_nowait(q, &item) == 0)
		;
	ursa_queue_destroy(q);
	/* maxsize 1: one item, then full. */
	REQUIRE(&q_seen, ursa_queue_create(&q, 1, 0) == 0, -1);
	EXPECT_EQ(&q_seen, ursa_queue_put_nowait(q, &arm), 0);
	EXPECT_EQ(&q_seen, ursa_queue_put_nowait(q, &arm), -EAGAIN);
	/* select: 0 arms, and more arms than an int index can name. */
	arm = (struct ursa_queue_sel){.q = q, .op = URSA_QUEUE_SEL_GET};
	EXPECT_EQ(&q_seen, ursa_queue_select(&arm, 0), -EINVAL);
	EXPECT_EQ(&q_seen, ursa_queue_select(&arm, (unsigned)INT_MAX + 1), -EINVAL);
	EXPECT_EQ(&q_seen, ursa_queue_select(&arm, UINT_MAX), -EINVAL);
	EXPECT_EQ(&q_seen, ursa_queue_select(&arm, 1), 0);
	EXPECT_EQ(&q_seen, ursa_queue_get_nowait(q, &item), -EAGAIN);
	ursa_queue_destroy(q);
	return NULL;
}

Test(limits, queue_sizes_and_select_counts)
{
	run_on(1, queue_edges, NULL);
	ASSERT_SEEN(&q_seen);
}

static struct seen b_seen;

static void *barrier_edges(void *arg)
{
	struct ursa_barrier b;
	struct ursa_cond c;

	(void)arg;
	ursa_barrier_init(&b, 0);
	EXPECT_EQ(&b_seen, ursa_barrier_wait(&b), -EINVAL);
	ursa_barrier_init(&b, 1);
	EXPECT_EQ(&b_seen, ursa_barrier_wait(&b), 0); /* completes its own cycle */
	EXPECT_EQ(&b_seen, ursa_barrier_wait(&b), 0);
	ursa_cond_init(&c);
	EXPECT_EQ(&b_seen, ursa_cond_notify(&c, 0), 0);
	EXPECT_EQ(&b_seen, ursa_cond_notify(&c, UINT_MAX), 0);
	return NULL;
}

Test(limits, barrier_parties_and_notify_counts)
{
	run_on(1, barrier_edges, NULL);
	ASSERT_SEEN(&b_seen);
}

/* -------------------------------------------------------------------- I/O */

static struct seen io_seen;

static void *io_edges(void *arg)
{
	int p[2];
	char buf[16];
	struct iovec iov = {buf, sizeof(buf)};
	struct ursa_bufgroup *g;

	(void)arg;
	REQUIRE(&io_seen, pipe(p) == 0, errno);
	/* A count beyond what one read can carry is clamped (a short count),
	 * never truncated to its low 32 bits: 2^32 + 1 used to read 1 byte. */
	EXPECT_EQ(&io_seen, ursa_write(p[1], "abc", 3), 3);
	EXPECT_EQ(&io_seen, ursa_read(p[0], buf, ((size_t)1 << 32) + 1), 3);
	EXPECT_EQ(&io_seen, ursa_write(p[1], "abc", 3), 3);
	EXPECT_EQ(&io_seen, ursa_read(p[0], buf, SIZE_MAX), 3);
	EXPECT_EQ(&io_seen, ursa_write(p[1], "abc", 3), 3);
	EXPECT_EQ(&io_seen, ursa_read(p[0], buf, 1), 1);
	EXPECT_EQ(&io_seen, ursa_read(p[0], buf, 0), 0);
	EXPECT_EQ(&io_seen, ursa_read(p[0], buf, 2), 2);
	/* iovec counts: negative and above IOV_MAX refused, 0 reads nothing. */
	EXPECT_EQ(&io_seen, ursa_readv(p[0], &iov, -1), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_readv(p[0], &iov, INT_MIN), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_writev(p[1], &iov, IOV_MAX + 1), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_writev(p[1], &iov, INT_MAX), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_writev(p[1], &iov, 0), 0);
	EXPECT_EQ(&io_seen, ursa_writev(p[1], &iov, 1), (long long)sizeof(buf));
	EXPECT_EQ(&io_seen, ursa_pread(p[0], buf, 1, -1), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_preadv(p[0], &iov, 1, INT64_MIN), -EINVAL);
	ursa_close(p[0]);
	ursa_close(p[1]);
	/* Ports: 0 .. 65535. */
	EXPECT_EQ(&io_seen, ursa_tcp_listen("127.0.0.1", 65536, 1), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_tcp_listen("127.0.0.1", UINT_MAX, 1), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_tcp_connect("127.0.0.1", 0), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_tcp_connect("127.0.0.1", 65536), -EINVAL);
	/* A backlog of 0 or below is the system's maximum. */
	int fd = ursa_tcp_listen("127.0.0.1", 0, -1);
	EXPECT(&io_seen, fd >= 0, fd);
	if (fd >= 0)
		ursa_close(fd);
	/* Buffer groups: count a power of two in 1 .. 32768, size 1 .. 2^32-1,
	 * count * size representable. */
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, 0, 64), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, 3, 64), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, 65536, 64), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, UINT_MAX, 64), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, 1, 0), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, 1, (size_t)UINT32_MAX + 1), -EINVAL);
	EXPECT_EQ(&io_seen, ursa_bufgroup_create(&g, 32768, SIZE_MAX / 16384), -EINVAL);
	int rc = ursa_bufgroup_create(&g, 1, 1);
	EXPECT(&io_seen, rc == 0 || rc == -EOPNOTSUPP, rc);
	if (rc == 0)
		ursa_bufgroup_destroy(g);
	return NULL;
}

Test(limits, io_counts_are_clamped_or_refused)
{
	run_on(1, io_edges, NULL);
	ASSERT_SEEN(&io_seen);
}

/* ---------------------------------------------------------------- options */

static int run_with(const struct ursa_opts *o)
{
	void *res;

	return ursa_run(idle, NULL, o, &res);
}

Test(limits, options_at_their_edges)
{
	struct ursa_opts o = {.cores = 1};

	/* ring_entries: 1 .. 7 round up to 8; the kernel rounds to a power of
	 * two; above 32768 is refused. */
	o.ring_entries = 1;
	cr_assert_eq(run_with(&o), 0);
	o.ring_entries = 7;
	cr_assert_eq(run_with(&o), 0);
	o.ring_entries = 9;
	cr_assert_eq(run_with(&o), 0);
	o.ring_entries = 32767;
	cr_assert_eq(run_with(&o), 0);
	o.ring_entries = 32768;
	cr_assert_eq(run_with(&o), 0);
	o.ring_entries = 32769;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.ring_entries = UINT_MAX;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.ring_entries = 0;

	o.cores = 1025;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.cores = UINT_MAX;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.cores = 1;

	o.pool_threads = 1;
	cr_assert_eq(run_with(&o), 0);
	o.pool_threads = 4096;
	cr_assert_eq(run_with(&o), 0);
	o.pool_threads = 4097;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.pool_threads = UINT_MAX;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.pool_threads = 0;

	o.stack_cache = 1;
	cr_assert_eq(run_with(&o), 0);
	o.stack_cache = 1048576;
	cr_assert_eq(run_with(&o), 0);
	o.stack_cache = 1048577;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.stack_cache = UINT_MAX;
	cr_assert_eq(run_with(&o), -EINVAL);
	o.stack_cache = 0;

	o.stall_ms = UINT_MAX; /* a report after 49 days: allowed */
	cr_assert_eq(run_with(&o), 0);
}

Test(limits, environment_values_beyond_their_field_are_einval)
{
	struct ursa_opts o = {0}; /* an explicit field would win over the environment */
	static const char *const bad[][2] = {
		{"URSA_STALL_MS", "4294967296"},            /* UINT_MAX + 1 */
		{"URSA_POOL_THREADS", "4294967297"},        /* would truncate to 1 */
		{"URSA_STACK_CACHE", "4G"},                 /* would truncate to 0 */
		{"URSA_RING_ENTRIES", "4294967304"},        /* would truncate to 8 */
		{"URSA_RING_ENTRIES", "17179869184G"},      /* 2^64: the shift overflows */
		{"URSA_RING_ENTRIES", "18446744073709551616"}, /* strtoull's ERANGE */
		{"URSA_CORES", "-1"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv(bad[i][0], bad[i][1], 1);
		cr_expect_eq(run_with(&o), -EINVAL, "%s=%s", bad[i][0], bad[i][1]);
		unsetenv(bad[i][0]);
	}
	setenv("URSA_STALL_MS", "4294967295", 1);
	cr_expect_eq(run_with(&o), 0);
	unsetenv("URSA_STALL_MS");
}

/* ------------------------------------------------- poll, streams (main's) */

static struct seen st_seen;

static void *stream_edges(void *arg)
{
	int p[2];
	struct ursa_reader *r;
	struct ursa_writer *w;
	struct ursa_scope s;
	const char *line;

	(void)arg;
	REQUIRE(&st_seen, pipe(p) == 0, errno);
	/* Far poll timeouts saturate: ready fds answer, idle ones meet the scope. */
	ursa_scope_enter_after(&s, MS);
	EXPECT_EQ(&st_seen, ursa_poll(p[0], POLLIN, URSA_FOREVER - 1), -ETIMEDOUT);
	ursa_scope_exit(&s);
	ursa_scope_enter_after(&s, MS);
	EXPECT_EQ(&st_seen, ursa_poll(p[0], POLLIN, INT64_MAX), -ETIMEDOUT);
	ursa_scope_exit(&s);
	EXPECT_EQ(&st_seen, ursa_poll(p[0], POLLIN, 0), 0);
	EXPECT_EQ(&st_seen, ursa_write(p[1], "ab\n", 3), 3);
	EXPECT_EQ(&st_seen, ursa_poll(p[0], POLLIN, URSA_FOREVER - 1), POLLIN);
	EXPECT_EQ(&st_seen, ursa_poll_until(p[0], POLLIN, 0), POLLIN);
	/* A reader's limit of 1 byte: a 3-byte line does not fit. */
	REQUIRE(&st_seen, ursa_reader_create(&r, p[0], 1, 0) == 0, -1);
	EXPECT_EQ(&st_seen, ursa_reader_readline(r, &line), -EMSGSIZE);
	ursa_reader_destroy(r);
	/* A limit of SIZE_MAX is a reader that starts small and may grow. */
	REQUIRE(&st_seen, ursa_reader_create(&r, p[0], SIZE_MAX, 0) == 0, -1);
	/* (the first reader took "a" with it) */
	EXPECT_EQ(&st_seen, ursa_reader_readline(r, &line), 2);
	ursa_reader_destroy(r);
	/* A writer's buffer is allocated up front, and its counts are ssize_t. */
	EXPECT_EQ(&st_seen, ursa_writer_create(&w, p[1], SIZE_MAX, 0), -EINVAL);
	EXPECT_EQ(&st_seen, ursa_writer_create(&w, p[1], (size_t)SSIZE_MAX + 1, 0), -EINVAL);
	REQUIRE(&st_seen, ursa_writer_create(&w, p[1], 1, 0) == 0, -1);
	EXPECT_EQ(&st_seen, ursa_writer_write(w, "xyz", 3), 3);
	(void)!ursa_writer_destroy(w);
	EXPECT_EQ(&st_seen, ursa_reader_create(&r, -1, 0, 0), -EINVAL);
	ursa_close(p[0]);
	ursa_close(p[1]);
	return NULL;
}

Test(limits, poll_and_stream_sizes)
{
	run_on(1, stream_edges, NULL);
	ASSERT_SEEN(&st_seen);
}
