/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_PTRACE_H
#define _ASM_UAPI_LKL_PTRACE_H

/* A library kernel has no user registers; the type exists for generic code. */
struct user_regs_struct {
	unsigned long unused;
};

#endif
