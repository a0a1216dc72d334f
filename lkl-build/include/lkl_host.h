/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LKL_HOST_H
#define _LKL_HOST_H

/*
 * The host side of the library: what the kernel needs from the process.
 *
 * liblkl.a provides lkl_host_ops, a POSIX implementation; a program may
 * pass its own table to lkl_init() instead (set .version to
 * LKL_HOST_OPS_VERSION). Rules that hold for every operation:
 *
 *  - Operations are called from kernel context: by whichever host thread
 *    holds the kernel's one CPU. They must never call back into the kernel
 *    (no lkl_syscall, no lkl_trigger_irq from inside an operation).
 *  - Only sem_down, mutex_lock and thread_join may block, and only on
 *    things another host thread will release; everything else returns
 *    promptly.
 *  - Threads are created with the host's default stack size: kernel code
 *    runs on them and needs more than a small stack.
 *
 * Who calls what:
 *  print            kernel log output, any context; NULL silences the kernel
 *  panic            once, from a kernel panic; must not return
 *  sem_*, mutex_*   the CPU lock and task switching (every context switch
 *                   posts one semaphore and waits on another)
 *  thread_*         task creation (one host thread per kernel thread),
 *                   exit of dead tasks, halt (join)
 *  tls_*            binding host threads that make system calls to tasks;
 *                   the destructor ends the task when its thread exits
 *  mem_alloc/free   small host-side bookkeeping (semaphores, timers)
 *  page_alloc/free  the kernel's RAM, once at boot and once at halt
 *  page_populate    optional; with the lkl_prefault boot option, a thread
 *                   backs the RAM with host memory ahead of the kernel
 *  vmap/vunmap      optional; aliasing RAM pages contiguously for the
 *                   kernel's vmap() (erofs, f2fs compression, xfs)
 *  random           optional; read once at boot to seed the kernel's random
 *                   number generator
 *  time             the clocksource (monotonic, nanoseconds)
 *  wall_time        read once at boot to set the kernel's clock
 *  timer_*          the clock event device: the callback runs on a host
 *                   thread of the timer's own and raises an interrupt
 */

#ifdef __cplusplus
extern "C" {
#endif

#include <lkl/asm/host_ops.h>

/* The POSIX implementation in liblkl.a. */
extern struct lkl_host_operations lkl_host_ops;

/*
 * Block operations for a disk whose fd is an open image file or block
 * device; used by lkl_disk_add() when a disk's ops are NULL. A file opened
 * O_RDONLY gives a read-only disk.
 */
extern struct lkl_dev_blk_ops lkl_dev_blk_ops;

/* lkl_host_ops.panic ends the process with this status. */
#define LKL_PANIC_EXIT_CODE 70

#ifdef __cplusplus
}
#endif

#endif
