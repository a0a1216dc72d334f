/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_BITSPERLONG_H
#define _ASM_UAPI_LKL_BITSPERLONG_H

/* The library's word size is the host's. */
#if defined(__LP64__) || defined(_LP64)
#define __BITS_PER_LONG 64
#else
#define __BITS_PER_LONG 32
#endif

#define __BITS_PER_LONG_LONG 64

#include <asm-generic/bitsperlong.h>

#endif
