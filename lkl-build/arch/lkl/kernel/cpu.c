// SPDX-License-Identifier: GPL-2.0
/*
 * The CPU lock. It is not a plain mutex: ownership moves between host
 * threads without the lock being released (a context switch hands the CPU
 * to the next task's thread, boot hands it from one thread to another), so
 * it is a small state machine guarded by a host mutex.
 */
#include <linux/errno.h>
#include <linux/types.h>
#include <asm/cpu.h>

static struct {
	struct lkl_mutex *lock;
	struct lkl_sem *sem;		/* threads waiting for the CPU sleep here */
	unsigned int sleepers;
	bool owned;
	bool shutdown;
	lkl_thread_t owner;
} cpu;

int cpu_lock_init(void)
{
	cpu.lock = lkl_ops->mutex_alloc(0);
	cpu.sem = lkl_ops->sem_alloc(0);
	if (!cpu.lock || !cpu.sem)
		return -ENOMEM;
	return 0;
}

/* Blocks until the calling host thread owns the CPU. */
int cpu_get(void)
{
	lkl_ops->mutex_lock(cpu.lock);
	while (cpu.owned && !cpu.shutdown) {
		cpu.sleepers++;
		lkl_ops->mutex_unlock(cpu.lock);
		lkl_ops->sem_down(cpu.sem);
		lkl_ops->mutex_lock(cpu.lock);
		cpu.sleepers--;
	}
	if (cpu.shutdown) {
		/* Let the next sleeper see the shutdown too. */
		if (cpu.sleepers)
			lkl_ops->sem_up(cpu.sem);
		lkl_ops->mutex_unlock(cpu.lock);
		return -ESHUTDOWN;
	}
	cpu.owned = true;
	cpu.owner = lkl_ops->thread_self();
	lkl_ops->mutex_unlock(cpu.lock);
	return 0;
}

/* Takes the CPU only if nobody holds it; used by interrupt sources. */
bool cpu_try_get(void)
{
	bool got = false;

	lkl_ops->mutex_lock(cpu.lock);
	if (!cpu.owned && !cpu.shutdown) {
		cpu.owned = true;
		cpu.owner = lkl_ops->thread_self();
		got = true;
	}
	lkl_ops->mutex_unlock(cpu.lock);
	return got;
}

/*
 * Gives the CPU up, unless an interrupt was raised while we held it: then
 * the caller must run it first (nobody else would until the next entry).
 */
bool cpu_release(void)
{
	lkl_ops->mutex_lock(cpu.lock);
	if (irqs_pending()) {
		lkl_ops->mutex_unlock(cpu.lock);
		return false;
	}
	cpu.owned = false;
	if (cpu.sleepers)
		lkl_ops->sem_up(cpu.sem);
	lkl_ops->mutex_unlock(cpu.lock);
	return true;
}

/* The owner hands the CPU to another thread (which it is about to wake). */
void cpu_set_owner(lkl_thread_t tid)
{
	cpu.owner = tid;
}

/*
 * After halt every later cpu_get() fails instead of waiting forever. The
 * lock itself is never freed: a host thread may still be on its way in.
 */
void cpu_shutdown(void)
{
	lkl_ops->mutex_lock(cpu.lock);
	cpu.shutdown = true;
	if (cpu.sleepers)
		lkl_ops->sem_up(cpu.sem);
	lkl_ops->mutex_unlock(cpu.lock);
}
