/* SPDX-License-Identifier: MIT */
/*
 * Stacks from per-core slabs (lib/fiber/stack.c): a burst's stacks are
 * reused by the next burst without a system call, idle stacks go back to the
 * kernel after the trim interval, stacks freed on another core come home,
 * the task record lives at its stack's top, and stack sizes are checked and
 * rounded.  The counts come from the cache's own statistics (a test hook:
 * runtime.h), read by the fibers and asserted after ursa_run returns.
 */
#include "helpers.h"

#include "runtime.h"
#include "sched.h"
#include "task.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static struct ursa__stack_stats stats_here(void)
{
	return ursa__sched_core->stacks.stats;
}

/* The process's resident memory in KiB (VmRSS), -1 if unknown. */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void *parked(void *arg)
{
	struct ursa_event *e = arg;

	return ursa_event_wait(e) == 0 ? e : NULL;
}

/* ----------------------------------------------------------------- bursts */

#define BURST 200000

struct burst {
	struct seen seen;
	struct ursa_task **t;
	struct ursa__stack_stats after1, before2, after2, trimmed;
	long rss0, rss_peak, rss_trimmed;
	int waits;
};

/* BURST tasks alive at once, all parked, then released and joined. */
static void burst_once(struct burst *b)
{
	struct ursa_event go;

	ursa_event_init(&go);
	for (int i = 0; i < BURST; i++)
		EXPECT(&b->seen, ursa_spawn(&b->t[i], parked, &go) == 0, i);
	/* Park: every task runs up to its wait. */
	EXPECT(&b->seen, ursa_sleep(1 * MS) == 0, 0);
	if (rss_kib() > b->rss_peak)
		b->rss_peak = rss_kib();
	ursa_event_set(&go);
	for (int i = 0; i < BURST; i++) {
		void *r = NULL;

		EXPECT(&b->seen, ursa_join(b->t[i], &r) == 0, i);
		EXPECT(&b->seen, r == &go, i);
	}
}

static void *main_two_bursts(void *arg)
{
	struct burst *b = arg;

	burst_once(b);
	b->after1 = stats_here();
	burst_once(b);
	b->after2 = stats_here();
	return NULL;
}

/* A long trim interval: nothing may be given back between the bursts, so
 * the second must find every stack the first left. */
Test(stack, a_second_burst_reuses_the_first_ones_stacks_without_mmap, .timeout = 240)
{
	struct ursa_opts o = {.cores = 1, .stack_trim_ms = 600000};
	struct burst *b = calloc(1, sizeof(*b));

	cr_assert_not_null(b);
	b->t = calloc(BURST, sizeof(*b->t));
	cr_assert_not_null(b->t);
	cr_assert_eq(ursa_run(main_two_bursts, b, &o, NULL), 0);
	ASSERT_SEEN(&b->seen);
	cr_assert_gt(b->after1.maps, 0);
	cr_assert_eq(b->after2.maps, b->after1.maps, "second burst mapped %llu slabs",
	             (unsigned long long)(b->after2.maps - b->after1.maps));
	cr_assert_eq(b->after2.unmaps, b->after1.unmaps);
	cr_assert_eq(b->after2.carve_calls, b->after1.carve_calls,
	             "second burst installed guards again");
	cr_assert_eq(b->after2.trim_calls, 0);
	cr_assert_eq(b->after2.mapped, b->after1.mapped);
	/* Only main is live; every burst stack is free and hot. */
	cr_assert_eq(b->after2.live, 1, "%u live", b->after2.live);
	cr_assert_geq(b->after2.free_hot, BURST);
	free(b->t);
	free(b);
}

static void *main_burst_then_idle(void *arg)
{
	struct burst *b = arg;

	b->rss0 = rss_kib();
	burst_once(b);
	b->after1 = stats_here();
	/* Idle: the trim tick gives back what sits unused.  Wait for it (no
	 * time limit but the test's: a loaded machine only makes it late). */
	for (b->waits = 0; b->waits < 100000; b->waits++) {
		struct ursa__stack_stats s = stats_here();

		if (s.free_hot <= 256 && s.slabs <= 2)
			break;
		EXPECT(&b->seen, ursa_sleep(10 * MS) == 0, b->waits);
	}
	b->trimmed = stats_here();
	b->rss_trimmed = rss_kib();
	return NULL;
}

Test(stack, idle_stacks_go_back_after_the_trim_interval, .timeout = 240)
{
	struct ursa_opts o = {.cores = 1, .stack_trim_ms = 20};
	struct burst *b = calloc(1, sizeof(*b));
	long grew, kept;

	cr_assert_not_null(b);
	b->t = calloc(BURST, sizeof(*b->t));
	cr_assert_not_null(b->t);
	cr_assert_eq(ursa_run(main_burst_then_idle, b, &o, NULL), 0);
	ASSERT_SEEN(&b->seen);
	cr_assert_geq(b->after1.free_hot, BURST);
	cr_assert_leq(b->trimmed.free_hot, 256, "%u free stacks kept", b->trimmed.free_hot);
	cr_assert_leq(b->trimmed.slabs, 2, "%u slabs left", b->trimmed.slabs);
	cr_assert_gt(b->trimmed.unmaps, 0);
	cr_assert_lt(b->trimmed.mapped, b->after1.mapped / 16);
	/* Memory back: at most the kept stacks and some slack above where the
	 * burst began.  Under ASan the shadow of every touched stack page
	 * stays resident after the munmap, so only the counts above hold. */
	grew = b->rss_peak - b->rss0;
	kept = b->rss_trimmed - b->rss0;
	cr_log_info("burst: +%ld KiB RSS at its peak, +%ld KiB after the trim (%d waits)", grew,
	            kept, b->waits);
	if (!UNDER_ASAN) {
		cr_assert_gt(grew, BURST * 4L, "a parked task should cost at least its page");
		cr_assert_lt(kept, 16 * 1024, "%ld KiB still resident after the trim", kept);
	}
	free(b->t);
	free(b);
}

/* ---------------------------------------------------------- across cores */

#define HOPS 20000
#define ROUNDS 4

struct hops {
	struct seen seen;
	struct ursa_task *t[HOPS];
	struct ursa__stack_stats round[ROUNDS];
	unsigned lent_after;
	uintptr_t sum;
};

static void *on_core_1(void *arg)
{
	ursa_yield(); /* a switch or two on the lent stack */
	return (void *)((uintptr_t)arg * 2 + ursa_core());
}

/* Core 0 spawns tasks on core 1 and joins them: each stack is core 0's,
 * freed on core 1, and must come back to core 0 for reuse. */
static void *main_hops(void *arg)
{
	struct hops *h = arg;

	for (int r = 0; r < ROUNDS; r++) {
		for (uintptr_t i = 0; i < HOPS; i++)
			EXPECT(&h->seen, ursa_spawn_on(&h->t[i], 1, on_core_1, (void *)i) == 0, i);
		for (int i = 0; i < HOPS; i++) {
			void *res = NULL;

			EXPECT(&h->seen, ursa_join(h->t[i], &res) == 0, i);
			h->sum += (uintptr_t)res;
		}
		/* Core 1 frees them after our joins (a message each): they
		 * come home at core 0's next tick. */
		for (int i = 0; i < 100000 && ursa__sched_core->stacks.lent; i++)
			EXPECT(&h->seen, ursa_sleep(5 * MS) == 0, i);
		h->round[r] = stats_here();
	}
	h->lent_after = ursa__sched_core->stacks.lent;
	return NULL;
}

Test(stack, stacks_freed_on_another_core_come_back_and_are_reused, .timeout = 120)
{
	/* Nothing idle is given back meanwhile: only the slots lent to core 1
	 * move (their tick comes at most a second apart). */
	struct ursa_opts o = {.cores = 2, .stack_trim_ms = 600000};
	struct hops *h = calloc(1, sizeof(*h));
	uintptr_t want = 0;

	cr_assert_not_null(h);
	cr_assert_eq(ursa_run(main_hops, h, &o, NULL), 0);
	ASSERT_SEEN(&h->seen);
	for (uintptr_t i = 0; i < HOPS; i++)
		want += i * 2 + 1;
	cr_assert_eq(h->sum, want * ROUNDS);
	cr_assert_eq(h->lent_after, 0, "%u stacks never came back", h->lent_after);
	/* After the first round, the stacks that came back serve the next
	 * ones: no new slab, no guard, no trim on core 0. */
	for (int r = 1; r < ROUNDS; r++) {
		cr_assert_eq(h->round[r].maps, h->round[0].maps, "round %d mapped %llu more", r,
		             (unsigned long long)(h->round[r].maps - h->round[0].maps));
		cr_assert_eq(h->round[r].carve_calls, h->round[0].carve_calls);
		cr_assert_eq(h->round[r].unmaps, 0);
		cr_assert_geq(h->round[r].free_hot, HOPS);
	}
	free(h);
}

/* --------------------------------------------------------------- layout */

#define NASK 10 /* the stack sizes main_layout asks for */

struct layout {
	struct seen seen;
	bool rec_at_top;
	size_t sizes[NASK];
	int rcs[NASK];
};

static void *note_layout(void *arg)
{
	struct ursa_task *self = ursa_self();
	struct layout *l = arg;
	char here;

	l->rec_at_top = (char *)self == (char *)ursa__stack_lo(&self->stack) + self->stack.size + 64 &&
	                &here > (char *)ursa__stack_lo(&self->stack) && &here < (char *)self;
	return NULL;
}

static void *report_size(void *arg)
{
	(void)arg;
	return (void *)ursa_self()->stack.size;
}

static void *main_layout(void *arg)
{
	struct layout *l = arg;
	/* 0 (the default), below the minimum, the minimum, odd, the largest,
	 * and the out-of-range values the public API must refuse; then one past
	 * the minimum and one below the largest (issue 20's edge values). */
	static const size_t ask[NASK] = {0,
	                                 1,
	                                 16 * 1024,
	                                 100 * 1024,
	                                 (size_t)1 << 30,
	                                 ((size_t)1 << 30) + 1,
	                                 SIZE_MAX - 4095,
	                                 SIZE_MAX,
	                                 16 * 1024 + 1,
	                                 ((size_t)1 << 30) - 1};
	struct ursa_task *t;

	EXPECT(&l->seen, ursa_spawn(&t, note_layout, l) == 0, 0);
	EXPECT(&l->seen, ursa_join(t, NULL) == 0, 0);
	for (int i = 0; i < NASK; i++) {
		struct ursa_spawn_opts so = {.stack_size = ask[i]};
		void *r = NULL;

		l->rcs[i] = ursa_spawn_ex(&t, 0, report_size, NULL, &so);
		if (l->rcs[i] == 0) {
			EXPECT(&l->seen, ursa_join(t, &r) == 0, i);
			l->sizes[i] = (size_t)r;
		}
	}
	return NULL;
}

Test(stack, the_record_sits_at_the_stack_top_and_sizes_round_to_classes)
{
	struct layout l = {0};
	/* The record, rounded to cache lines, and the canary's line. */
	size_t rec = ((sizeof(struct ursa_task) + 63) / 64) * 64 + 64;

	run_on(1, main_layout, &l);
	ASSERT_SEEN(&l.seen);
	cr_assert(l.rec_at_top);
	cr_assert_eq(l.rcs[0], 0);
	cr_assert_eq(l.sizes[0], 128 * 1024 - rec);
	cr_assert_eq(l.rcs[1], 0);
	cr_assert_eq(l.sizes[1], 16 * 1024 - rec, "1 byte asked: %zu", l.sizes[1]);
	cr_assert_eq(l.sizes[2], 16 * 1024 - rec);
	cr_assert_eq(l.sizes[3], 128 * 1024 - rec, "100 KiB asked: %zu", l.sizes[3]);
	cr_assert_eq(l.rcs[4], 0, "1 GiB: %d", l.rcs[4]);
	cr_assert_eq(l.sizes[4], ((size_t)1 << 30) - rec);
	cr_assert_eq(l.rcs[5], -EINVAL);
	cr_assert_eq(l.rcs[6], -EINVAL);
	cr_assert_eq(l.rcs[7], -EINVAL);
	cr_assert_eq(l.rcs[8], 0);
	cr_assert_eq(l.sizes[8], 32 * 1024 - rec, "16 KiB + 1 asked: %zu", l.sizes[8]);
	cr_assert_eq(l.rcs[9], 0, "1 GiB - 1: %d", l.rcs[9]);
	cr_assert_eq(l.sizes[9], ((size_t)1 << 30) - rec);
}

static void *nothing(void *arg)
{
	return arg;
}

Test(stack, runtime_stack_options_out_of_range_are_einval)
{
	static const struct ursa_opts bad[] = {
		{.stack_size = 1},
		{.stack_size = 8 * 1024},
		{.stack_size = 16 * 1024 - 1},
		{.stack_size = ((size_t)1 << 30) + 1},
		{.stack_size = SIZE_MAX - 4095},
		{.stack_size = SIZE_MAX},
		{.stack_guard = ((size_t)1 << 30) + 1},
		{.stack_trim_ms = UINT32_MAX},
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ursa_run(nothing, NULL, &bad[i], NULL), -EINVAL, "case %u", i);
	cr_assert_eq(setenv("URSA_STACK_TRIM_MS", "soon", 1), 0);
	cr_assert_eq(ursa_run(nothing, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(setenv("URSA_STACK_TRIM_MS", "5", 1), 0);
	cr_assert_eq(setenv("URSA_STACK_GUARD", "64K", 1), 0);
	cr_assert_eq(ursa_run(nothing, NULL, NULL, NULL), 0);
}

/* A stack much deeper than one page is usable to its bottom: frames down to
 * a few hundred bytes above the guard are fine. */
#define DEEP_STACK (64 * 1024)

__attribute__((noinline)) static long use_stack(volatile char *until, int depth)
{
	volatile char frame[1024];

	frame[0] = (char)depth;
	if (frame < until)
		return frame[0];
	return use_stack(until, depth + 1) + frame[0];
}

static void *deep(void *arg)
{
	struct ursa_task *self = ursa_self();
	char *lo = ursa__stack_lo(&self->stack);

	(void)arg;
	/* Stop 2 KiB above the guard: a frame and the calls' own overhead. */
	return (void *)use_stack(lo + 2048, 0);
}

static void *main_deep(void *arg)
{
	struct seen *s = arg;
	struct ursa_spawn_opts so = {.stack_size = DEEP_STACK};
	struct ursa_task *t;

	/* Reused slot: the same stack a second time, dirty from the first. */
	for (int i = 0; i < 2; i++) {
		EXPECT(s, ursa_spawn_ex(&t, 0, deep, NULL, &so) == 0, i);
		EXPECT(s, ursa_join(t, NULL) == 0, i);
	}
	return NULL;
}

Test(stack, a_stack_is_usable_down_to_its_guard)
{
	struct seen s = {0};

	run_on(1, main_deep, &s);
	ASSERT_SEEN(&s);
}

/* Carving new slots (guards, faulting in their top pages) runs on the
 * spawning task's stack: it must fit in the smallest one. */
#define SMALL_SPAWNS 5000

static void *spawn_from_small(void *arg)
{
	struct seen *s = arg;
	struct ursa_task **t = malloc(SMALL_SPAWNS * sizeof(*t));

	EXPECT(s, t != NULL, 0);
	if (!t)
		return NULL;
	for (int i = 0; i < SMALL_SPAWNS; i++)
		EXPECT(s, ursa_spawn(&t[i], nothing, NULL) == 0, i);
	for (int i = 0; i < SMALL_SPAWNS; i++)
		EXPECT(s, ursa_join(t[i], NULL) == 0, i);
	free(t);
	return NULL;
}

static void *main_small_spawner(void *arg)
{
	struct ursa_spawn_opts so = {.stack_size = 16 * 1024};
	struct seen *s = arg;
	struct ursa_task *t;

	EXPECT(s, ursa_spawn_ex(&t, 0, spawn_from_small, s, &so) == 0, 0);
	EXPECT(s, ursa_join(t, NULL) == 0, 0);
	return NULL;
}

Test(stack, a_task_on_a_16k_stack_can_spawn_a_burst)
{
	struct seen s = {0};

	run_on(1, main_small_spawner, &s);
	ASSERT_SEEN(&s);
}
