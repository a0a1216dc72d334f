/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Generic syscall numbers (as arm64 and riscv use), with the legacy
 * renameat/fstatat-style calls that host programs expect.
 */
#define __ARCH_WANT_RENAMEAT
#define __ARCH_WANT_NEW_STAT
#define __ARCH_WANT_SET_GET_RLIMIT

#include <asm-generic/unistd.h>
