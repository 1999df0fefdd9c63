/* SPDX-License-Identifier: MIT */
/*
 * switch.h: every fiber switch in ursa goes through here, so sanitizer
 * bookkeeping wraps each one: ASan must be told which stack is current, and
 * TSan which fiber (its own context per stack), or they report nonsense after
 * the first switch (Seastar and Boost do the same).
 */
#ifndef URSA_FIBER_SWITCH_H
#define URSA_FIBER_SWITCH_H

#include "ctx.h"

#if defined(__SANITIZE_ADDRESS__)
#define URSA__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URSA__ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define URSA__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URSA__TSAN 1
#endif
#endif

#ifdef URSA__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef URSA__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* TSan's context for a new fiber (NULL without TSan). */
static inline void *ursa__fiber_tsan_create(void)
{
#ifdef URSA__TSAN
	return __tsan_create_fiber(0);
#else
	return NULL;
#endif
}

/* Free a fiber's TSan context; never the running one's. */
static inline void ursa__fiber_tsan_destroy(void *fiber)
{
#ifdef URSA__TSAN
	if (fiber)
		__tsan_destroy_fiber(fiber);
#else
	(void)fiber;
#endif
}

/* The running thread's own TSan context (a worker's scheduler). */
static inline void *ursa__fiber_tsan_current(void)
{
#ifdef URSA__TSAN
	return __tsan_get_current_fiber();
#else
	return NULL;
#endif
}

/*
 * Switch from the running context to `to`, whose stack is [to_lo, to_lo +
 * to_size) and whose TSan context is to_tsan.  from_fake is where ASan keeps
 * the leaving context's fake-stack handle, or NULL when the leaving context
 * will never run again (its fake stack is then freed).
 */
static inline void ursa__fiber_switch(struct ursa__ctx *from, void **from_fake,
                                      struct ursa__ctx *to, void *to_lo, size_t to_size,
                                      void *to_tsan)
{
#ifdef URSA__TSAN
	__tsan_switch_to_fiber(to_tsan, 0);
#else
	(void)to_tsan;
#endif
#ifdef URSA__ASAN
	__sanitizer_start_switch_fiber(from_fake, to_lo, to_size);
#else
	(void)from_fake;
	(void)to_lo;
	(void)to_size;
#endif
	ursa__ctx_switch(from, to);
#ifdef URSA__ASAN
	__sanitizer_finish_switch_fiber(from_fake ? *from_fake : NULL, NULL, NULL);
#endif
}

/* The first thing a new context does: complete the switch that started it. */
static inline void ursa__fiber_started(void)
{
#ifdef URSA__ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
}

#endif /* URSA_FIBER_SWITCH_H */
