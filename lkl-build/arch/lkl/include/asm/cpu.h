/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_LKL_CPU_H
#define _ASM_LKL_CPU_H

#include <asm/host_ops.h>

/*
 * Internal interface between the files of arch/lkl/kernel. The one CPU is
 * a lock: the host thread that owns it is the only one running kernel code.
 */

extern struct lkl_host_operations *lkl_ops;

/* Set once halt has torn the kernel down: entry points must not go on. */
extern bool lkl_halted;

int cpu_lock_init(void);
int cpu_get(void);
bool cpu_try_get(void);
bool cpu_release(void);
void cpu_set_owner(lkl_thread_t tid);
void cpu_shutdown(void);

/* irq.c */
int host_irq_alloc(void);
void host_irq_free(int irq);
void run_pending_irqs(void);
bool irqs_pending(void);

/* threads.c */
void cpu_leave(void);
void host_task_enter(struct task_struct *task);
struct task_struct *host_task_create(void);
void host_task_park(void);
void host_task_exit(struct task_struct *task);
void idle_kick(void);
void threads_halt(void);
int threads_init(void);

/* time.c */
void time_halt(void);

/* syscalls.c */
int syscalls_init(void);
long kernel_call(long (*fn)(void *arg), void *arg);

/* drivers/disk.c */
void disks_halt(void);

/* mem.c */
void bootmem_init(void);
void bootmem_free(void);

/* console.c */
void host_console_init(void);

/* setup.c */
void boot_done(int err);

#endif
