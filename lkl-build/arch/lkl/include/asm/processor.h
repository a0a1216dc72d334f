/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_PROCESSOR_H
#define _ASM_LKL_PROCESSOR_H

#ifndef __ASSEMBLY__

#include <linux/compiler.h>
#include <linux/types.h>

struct task_struct;
struct lkl_sem;

/* Host-side state of a task: which host thread runs it and where it waits. */
struct thread_struct {
	/* Posted when the scheduler hands the CPU to this task. */
	struct lkl_sem *sched_sem;
	/* The host thread executing this task's kernel code (lkl_thread_t). */
	unsigned long tid;
	/* The task that ran before us, for schedule_tail() on resume. */
	struct task_struct *prev_sched;
	/* Kernel thread entry point (NULL for host tasks). */
	int (*fn)(void *);
	void *fn_arg;
	/* Bound to an outside host thread that makes system calls. */
	bool host_task;
	/* sched_sem still belongs to the thread that asked for this task. */
	bool borrowed_sem;
	/* A host task between system calls (see threads.c). */
	bool parked;
	/* Where the thread borrowing this parked task resumes after a switch. */
	void **leave_jb;
	/* Where halt returns to: the system call that asked for it. */
	void **syscall_jb;
};

#define INIT_THREAD { }

static inline void cpu_relax(void)
{
	barrier();
}

/* Any host address may be handed to a system call. */
#define TASK_SIZE		(~0UL)
#define TASK_SIZE_MAX		TASK_SIZE
#define TASK_UNMAPPED_BASE	0UL
#define STACK_TOP		TASK_SIZE
#define STACK_TOP_MAX		TASK_SIZE

#define KSTK_EIP(tsk)		(0UL)
#define KSTK_ESP(tsk)		(0UL)

static inline unsigned long __get_wchan(struct task_struct *p)
{
	return 0;
}

#endif /* __ASSEMBLY__ */
#endif
