// SPDX-License-Identifier: GPL-2.0
/*
 * A kernel panic during boot (RAM too small to run) must reach the host's
 * panic operation, which ends the process with LKL_PANIC_EXIT_CODE.
 */
#include "check.h"

int main(void)
{
	lkl_init(&lkl_host_ops);
	lkl_start_kernel("mem=1M");
	printf("lkl_start_kernel returned\n");
	return 0;
}
