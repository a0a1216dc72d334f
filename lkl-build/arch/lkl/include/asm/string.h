/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_STRING_H
#define _ASM_LKL_STRING_H

#include <linux/types.h>

/*
 * Left undefined in the kernel object so the host C library's optimised
 * versions serve both the kernel's calls and the compiler's implicit ones.
 */
#define __HAVE_ARCH_MEMCPY
#define __HAVE_ARCH_MEMSET
#define __HAVE_ARCH_MEMMOVE
#define __HAVE_ARCH_MEMCMP

extern void *memcpy(void *dest, const void *src, size_t count);
extern void *memset(void *s, int c, size_t count);
extern void *memmove(void *dest, const void *src, size_t count);
extern int memcmp(const void *a, const void *b, size_t count);

#endif
