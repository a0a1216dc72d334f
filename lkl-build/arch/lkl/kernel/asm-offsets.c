// SPDX-License-Identifier: GPL-2.0
/* Kbuild requires this file; ARCH=lkl has no assembly needing offsets. */
#include <linux/kbuild.h>

int main(void)
{
	return 0;
}
