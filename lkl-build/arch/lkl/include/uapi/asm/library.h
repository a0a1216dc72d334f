/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _ASM_UAPI_LKL_LIBRARY_H
#define _ASM_UAPI_LKL_LIBRARY_H

/*
 * The kernel's entry points for host code. lkl.h documents them; they are
 * declared here so the kernel and its callers share one set of prototypes.
 */

struct lkl_host_operations;
struct lkl_disk;

int lkl_init(struct lkl_host_operations *ops);
int lkl_start_kernel(const char *cmd_line, ...)
	__attribute__((format(printf, 1, 2)));
int lkl_is_running(void);
long lkl_syscall(long no, long *params);
int lkl_trigger_irq(int irq);
long lkl_sys_halt(void);
int lkl_cleanup(void);
int lkl_disk_add(struct lkl_disk *disk);
int lkl_disk_remove(struct lkl_disk disk);
int lkl_disk_devt(int disk_id, unsigned int part, unsigned int *devt);

#endif
