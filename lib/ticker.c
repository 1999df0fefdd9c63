/* SPDX-License-Identifier: MIT */
/*
 * ticker.c: ursa_ticker, the clock of a periodic task: absolute ticks on a
 * fixed grid, so the period does not drift by the work done each time.
 */
#include "ursa.h"

#include <errno.h>
#include <limits.h>

/* a + b, saturating to URSA_FOREVER: a tick past the end of time never comes. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return b >= URSA_FOREVER - a ? URSA_FOREVER : a + b;
}

void ursa_ticker_init(struct ursa_ticker *tk, uint64_t period_ns)
{
	tk->period_ns = period_ns ? period_ns : 1; /* 0 would divide by zero below */
	tk->next_ns = add_sat(ursa_now(), tk->period_ns);
}

int ursa_ticker_wait(struct ursa_ticker *tk)
{
	uint64_t now, behind;
	int rc = ursa_sleep_until(tk->next_ns);

	if (rc)
		return rc;
	now = ursa_now();
	behind = now > tk->next_ns ? (now - tk->next_ns) / tk->period_ns : 0;
	/* The tick we slept for, and any we are now past.  behind + 1 ticks fit
	 * before now + period, so the product only overflows past the end of
	 * time, where the next tick is URSA_FOREVER. */
	if (behind + 1 > (URSA_FOREVER - tk->next_ns) / tk->period_ns)
		tk->next_ns = URSA_FOREVER;
	else
		tk->next_ns += (behind + 1) * tk->period_ns;
	return behind >= INT_MAX ? INT_MAX : (int)(behind + 1);
}
