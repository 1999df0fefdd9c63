/* SPDX-License-Identifier: MIT */
/*
 * ctx_pingpong.c: a ping-pong between the calling context and one fiber,
 * through one implementation of lib/fiber/ctx.h.  bench/meson.build compiles
 * this file once per implementation (the asm backend, the ucontext backend,
 * the bare register switch), each time renaming ursa__ctx* and the exported
 * function with -D, so all three live in one bench binary.  Only the ctx.h
 * contract is used; the sanitizer bookkeeping (which the library keeps in
 * its internal fiber/switch.h) is repeated here so that bench does not
 * depend on internal helpers.
 */
#include "fiber/ctx.h"

#if defined(__SANITIZE_ADDRESS__)
#define PP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define PP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PP_TSAN 1
#endif
#endif
#ifdef PP_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef PP_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define PP_STACK_SIZE (64u * 1024u)

/* Exported name: BENCH_CTX_NAME (e.g. bench_asm_pingpong), set by meson. */
int BENCH_CTX_NAME(uint64_t round_trips, uint64_t *seen);

struct pingpong {
	struct ursa__ctx main_ctx, fib_ctx;
	void *main_lo, *fib_lo;
	size_t main_size, fib_size;
	void *main_fake, *fib_fake;
	void *main_tsan, *fib_tsan;
	uint64_t count;
	volatile int quit;
};

/* Switch from one context to another, telling the sanitizers (as the
 * library does around every switch).  from_fake NULL: from never runs again. */
static inline void pp_switch(struct ursa__ctx *from, void **from_fake, struct ursa__ctx *to,
                             void *to_lo, size_t to_size, void *to_tsan)
{
#ifdef PP_TSAN
	__tsan_switch_to_fiber(to_tsan, 0);
#else
	(void)to_tsan;
#endif
#ifdef PP_ASAN
	__sanitizer_start_switch_fiber(from_fake, to_lo, to_size);
#else
	(void)from_fake;
	(void)to_lo;
	(void)to_size;
#endif
	ursa__ctx_switch(from, to);
#ifdef PP_ASAN
	__sanitizer_finish_switch_fiber(from_fake ? *from_fake : NULL, NULL, NULL);
#endif
}

static void fiber_entry(void *arg)
{
	struct pingpong *pp = arg;

#ifdef PP_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	while (!pp->quit) {
		pp->count++;
		pp_switch(&pp->fib_ctx, &pp->fib_fake, &pp->main_ctx, pp->main_lo, pp->main_size,
		          pp->main_tsan);
	}
	/* Last switch: this context never runs again (NULL fake-stack slot). */
	pp_switch(&pp->fib_ctx, NULL, &pp->main_ctx, pp->main_lo, pp->main_size, pp->main_tsan);
}

int BENCH_CTX_NAME(uint64_t round_trips, uint64_t *seen)
{
	struct pingpong pp = {0};
	pthread_attr_t attr;

	/* The calling thread's stack, which ASan is told about on the way back. */
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &pp.main_lo, &pp.main_size);
		pthread_attr_destroy(&attr);
	}
	pp.fib_size = PP_STACK_SIZE;
	pp.fib_lo = mmap(NULL, pp.fib_size, PROT_READ | PROT_WRITE,
	                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (pp.fib_lo == MAP_FAILED)
		return -errno;
#ifdef PP_TSAN
	pp.main_tsan = __tsan_get_current_fiber();
	pp.fib_tsan = __tsan_create_fiber(0);
#endif
	ursa__ctx_init(&pp.fib_ctx, pp.fib_lo, pp.fib_size, fiber_entry, &pp);
	/* One round trip: main -> fiber (count++) -> main. */
	for (uint64_t i = 0; i < round_trips; i++)
		pp_switch(&pp.main_ctx, &pp.main_fake, &pp.fib_ctx, pp.fib_lo, pp.fib_size,
		          pp.fib_tsan);
	pp.quit = 1;
	pp_switch(&pp.main_ctx, &pp.main_fake, &pp.fib_ctx, pp.fib_lo, pp.fib_size, pp.fib_tsan);
#ifdef PP_TSAN
	__tsan_destroy_fiber(pp.fib_tsan);
#endif
	munmap(pp.fib_lo, pp.fib_size);
	*seen = pp.count;
	return 0;
}
