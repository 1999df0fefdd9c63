/* SPDX-License-Identifier: MIT */
/*
 * switch.h: every fiber switch in ursa goes through here, so sanitizer
 * bookkeeping wraps each one: ASan must be told which stack is current, or it
 * reports nonsense after the first switch (Seastar and Boost do the same).
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

#ifdef URSA__ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/*
 * Switch from the running context to `to`, whose stack is [to_lo, to_lo +
 * to_size).  from_fake is where ASan keeps the leaving context's fake-stack
 * handle, or NULL when the leaving context will never run again (its fake
 * stack is then freed).
 */
static inline void ursa__fiber_switch(struct ursa__ctx *from, void **from_fake,
                                      struct ursa__ctx *to, void *to_lo, size_t to_size)
{
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
