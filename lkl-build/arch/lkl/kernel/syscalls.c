// SPDX-License-Identifier: GPL-2.0
/*
 * System calls from host threads. Each calling thread gets a host task on
 * its first call (kept in a host thread-local key); a call takes the CPU,
 * makes that task current, dispatches through the generic table and gives
 * the CPU back.
 */
#include <linux/errno.h>
#include <linux/mman.h>
#include <linux/reboot.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/task_work.h>
#include <linux/syscalls.h>
#include <asm/cpu.h>
#include <asm/library.h>
#include <asm/unistd.h>

typedef long (*syscall_handler_t)(long, long, long, long, long, long);

SYSCALL_DEFINE6(mmap, unsigned long, addr, unsigned long, len,
		unsigned long, prot, unsigned long, flags,
		unsigned long, fd, off_t, off)
{
	if (off & ~PAGE_MASK)
		return -EINVAL;
	return ksys_mmap_pgoff(addr, len, prot, flags, fd, off >> PAGE_SHIFT);
}

/* No signal frames on the host: nothing to return from. */
#define sys_rt_sigreturn	sys_ni_syscall

#undef __SYSCALL
#define __SYSCALL(nr, sym)	[nr] = (syscall_handler_t)(void (*)(void))(sym),

static const syscall_handler_t syscall_table[__NR_syscalls] = {
	[0 ... __NR_syscalls - 1] = (syscall_handler_t)(void (*)(void))sys_ni_syscall,
#include <asm-generic/unistd.h>
};

static struct lkl_tls_key *host_task_key;

/* A host thread that made system calls has exited: so does its task. */
static void host_thread_gone(void *data)
{
	struct task_struct *task = data;

	if (lkl_halted || cpu_get())
		return;
	host_task_enter(task);
	host_task_exit(task);
}

int syscalls_init(void)
{
	host_task_key = lkl_ops->tls_alloc(host_thread_gone);
	return host_task_key ? 0 : -ENOMEM;
}

struct syscall_args {
	long no;
	long *params;
};

static long dispatch(void *arg)
{
	struct syscall_args *call = arg;
	long *p = call->params;
	long ret = syscall_table[call->no](p[0], p[1], p[2], p[3], p[4], p[5]);

	/* Restarts need a return to user space; the host sees EINTR. */
	if (ret == -ERESTARTSYS || ret == -ERESTARTNOINTR ||
	    ret == -ERESTARTNOHAND || ret == -ERESTART_RESTARTBLOCK)
		ret = -EINTR;
	return ret;
}

/*
 * What a return to user space would do. Much of the kernel defers work to
 * it: the last fput() of a file, the final teardown of an unmounted
 * filesystem. Signals have no handler to run on the host, so they are
 * dropped rather than left pending to interrupt every later sleep.
 */
static void return_to_host(void)
{
	while (task_work_pending(current)) {
		clear_thread_flag(TIF_NOTIFY_RESUME);
		clear_thread_flag(TIF_NOTIFY_SIGNAL);
		task_work_run();
	}
	if (signal_pending(current))
		flush_signals(current);
}

/*
 * Run @fn in the kernel as the calling host thread's task: take the CPU,
 * make the task current (creating it on the thread's first call), run,
 * and give the CPU back.
 */
long kernel_call(long (*fn)(void *arg), void *arg)
{
	struct task_struct *task;
	void *jb[5];
	long ret;

	if (!lkl_is_running())
		return -ENODEV;

	task = lkl_ops->tls_get(host_task_key);
	if (task) {
		ret = cpu_get();
		if (ret)
			return ret;
		host_task_enter(task);
	} else {
		/* The thread's first call: its new task comes back current. */
		task = host_task_create();
		if (IS_ERR(task))
			return PTR_ERR(task);
		lkl_ops->tls_set(host_task_key, task);
	}

	/* Halt (see setup.c) returns here once the kernel is gone. */
	if (__builtin_setjmp(jb))
		return 0;
	task->thread.syscall_jb = jb;

	ret = fn(arg);
	return_to_host();

	host_task_park();
	cpu_leave();
	return ret;
}

/**
 * lkl_syscall - run a system call in the kernel
 * @no: generic (asm-generic/unistd.h) system call number
 * @params: six arguments
 *
 * Returns the call's result; errors are negative errno values.
 */
long lkl_syscall(long no, long *params)
{
	struct syscall_args call = { .no = no, .params = params };

	if (no < 0 || no >= __NR_syscalls)
		return -ENOSYS;
	return kernel_call(dispatch, &call);
}

/* Sync, then halt: the kernel cannot be started again afterwards. */
long lkl_sys_halt(void)
{
	long params[6] = { LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
			   LINUX_REBOOT_CMD_HALT, 0, 0, 0 };
	long ret;

	ret = lkl_syscall(__NR_sync, params);
	if (ret < 0)
		return ret;
	return lkl_syscall(__NR_reboot, params);
}

/* After halt: release what the host library still holds for us. */
int lkl_cleanup(void)
{
	if (lkl_is_running())
		return -EBUSY;
	if (host_task_key)
		lkl_ops->tls_free(host_task_key);
	host_task_key = NULL;
	return 0;
}
