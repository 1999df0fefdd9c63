/* SPDX-License-Identifier: MIT */
/*
 * ticker.c: ursa_ticker, the clock of a periodic task: absolute ticks on a
 * fixed grid, so the period does not drift by the work done each time.
 */
#include "ursa.h"

#include <errno.h>

void ursa_ticker_init(struct ursa_ticker *tk, uint64_t period_ns)
{
	tk->period_ns = period_ns ? period_ns : 1;
	tk->next_ns = ursa_now() + tk->period_ns;
}

int ursa_ticker_wait(struct ursa_ticker *tk)
{
	uint64_t now, behind;
	int rc = ursa_sleep_until(tk->next_ns);

	if (rc)
		return rc;
	now = ursa_now();
	behind = now > tk->next_ns ? (now - tk->next_ns) / tk->period_ns : 0;
	/* The tick we slept for, and any we are now past. */
	tk->next_ns += (behind + 1) * tk->period_ns;
	return (int)(behind + 1);
}
