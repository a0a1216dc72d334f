/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_CURRENT_H
#define _ASM_LKL_CURRENT_H

/*
 * One CPU and only its owner runs kernel code, so the running task is a
 * plain global, updated by __switch_to().
 */
struct task_struct;
extern struct task_struct *arch_current_task;

#define get_current()	(arch_current_task)
#define current		get_current()

#endif
