/* SPDX-License-Identifier: MIT */
/*
 * One function with a 152 KiB local array, built the way Debian's gcc builds
 * a user's code by default: without -fstack-clash-protection
 * (tests/meson.build), so the stack pointer moves past a guard region in one
 * step and the first write lands at the array's bottom.  test_overflow.c
 * checks that this is reported as an overflow, not written over the slot
 * below.
 */
#include <stddef.h>

long ursa_test_big_frame(long seed);

long ursa_test_big_frame(long seed)
{
	volatile char a[152 * 1024];

	/* The lowest byte first: the write that would jump the guard. */
	a[0] = (char)seed;
	a[sizeof(a) - 1] = (char)(seed + 1);
	return a[0] + a[sizeof(a) - 1];
}
