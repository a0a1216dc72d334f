/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_XOR_H
#define _ASM_LKL_XOR_H

#include <asm-generic/xor.h>

/*
 * Benchmarking the XOR templates at boot costs hundreds of milliseconds;
 * the generic 64-bit-word loop is what the compiler vectorises anyway.
 */
#define XOR_SELECT_TEMPLATE(FASTEST)	(&xor_block_8regs)

#endif
