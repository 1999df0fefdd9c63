/* SPDX-License-Identifier: MIT */
/* ursa-features: print what this kernel's io_uring offers ursa (ursa_features()). */
#include <stdio.h>
#include <ursa.h>

int main(void)
{
	fputs(ursa_features(), stdout);
	return 0;
}
