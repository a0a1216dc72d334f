// SPDX-License-Identifier: GPL-2.0
/*
 * Tasks on host threads.
 *
 * Kernel threads get a host thread of their own. Host tasks belong to
 * outside threads that make system calls; they have no thread of their own
 * and, between calls, stay "parked": current, or switched out, with no host
 * thread inside the kernel for them.
 *
 * A context switch hands the CPU to the next task's thread and posts its
 * semaphore. The thread that switched then either waits on its own task's
 * semaphore (it will resume inside __switch_to) or, when it was only
 * borrowing a parked or dead host task to run the scheduler, jumps back to
 * the point where it entered the kernel. A task resumed anywhere other than
 * inside __switch_to finishes the switch with schedule_tail().
 */
#include <linux/cpu.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/sched/task_stack.h>
#include <linux/pid.h>
#include <asm/cpu.h>
#include <asm/switch_to.h>

struct task_struct *arch_current_task = &init_task;

/* pid 1 after boot: it creates the host tasks, all threads of its group. */
static struct task_struct *host_factory;

/* Never called: marks kernel_clone() requests that create host tasks. */
static int host_task_marker(void *unused)
{
	return 0;
}

/*
 * A host thread's request for a task (host_task_create). The semaphore
 * becomes the task's own: it is posted when the scheduler first switches
 * to the task, or by pid 1 if the task could not be made.
 */
struct host_task_request {
	struct list_head node;
	lkl_thread_t tid;
	struct lkl_sem *sched_sem;
	struct task_struct *task;
};

static void thread_bootstrap(void *arg);

int copy_thread(struct task_struct *p, const struct kernel_clone_args *args)
{
	struct thread_struct *t = &p->thread;

	if (!args->fn)
		return -EINVAL;	/* no user-space clone() in a library */

	memset(t, 0, sizeof(*t));
	if (args->fn == host_task_marker) {
		struct host_task_request *req = args->fn_arg;

		/* Runs on the thread that asked for it. */
		t->host_task = true;
		t->tid = req->tid;
		t->sched_sem = req->sched_sem;
		/* Until kernel_clone() succeeds, the semaphore stays the requester's. */
		t->borrowed_sem = true;
		return 0;
	}

	t->sched_sem = lkl_ops->sem_alloc(0);
	if (!t->sched_sem)
		return -ENOMEM;

	t->fn = args->fn;
	t->fn_arg = args->fn_arg;
	t->tid = lkl_ops->thread_create(thread_bootstrap, p);
	if (!t->tid) {
		lkl_ops->sem_free(t->sched_sem);
		t->sched_sem = NULL;
		return -ENOMEM;
	}
	return 0;
}

void arch_release_task_struct(struct task_struct *tsk)
{
	if (tsk->thread.sched_sem && !tsk->thread.borrowed_sem)
		lkl_ops->sem_free(tsk->thread.sched_sem);
	tsk->thread.sched_sem = NULL;
}

void flush_thread(void)
{
}

/* A host task that left the kernel (or died) does not wait in here. */
static bool leaves_on_switch(struct task_struct *task)
{
	return task->thread.host_task &&
	       (task->thread.parked || READ_ONCE(task->__state) == TASK_DEAD);
}

struct task_struct *__switch_to(struct task_struct *prev,
				struct task_struct *next)
{
	struct thread_struct *pt = &prev->thread, *nt = &next->thread;
	lkl_thread_t self = lkl_ops->thread_self();
	bool leave = leaves_on_switch(prev);
	bool dead = READ_ONCE(prev->__state) == TASK_DEAD;
	void **leave_jb = pt->leave_jb;
	struct lkl_sem *prev_sem = pt->sched_sem;

	arch_current_task = next;
	nt->prev_sched = prev;
	cpu_set_owner(nt->tid);

	/* A host thread switching in its own task simply carries on. */
	if (lkl_ops->thread_equal(nt->tid, self))
		return prev;

	/* From here on prev may be freed by next: use the copies only. */
	lkl_ops->sem_up(nt->sched_sem);

	if (leave)
		__builtin_longjmp(leave_jb, 1);

	if (dead) {
		lkl_ops->thread_detach();
		lkl_ops->thread_exit();
	}

	lkl_ops->sem_down(prev_sem);
	if (lkl_halted)
		lkl_ops->thread_exit();
	return current->thread.prev_sched;
}

static LIST_HEAD(host_task_requests);
static DEFINE_SPINLOCK(host_task_requests_lock);

/* A thread in pid 1's group, to run on the requesting host thread. */
static struct task_struct *clone_host_task(struct host_task_request *req)
{
	struct kernel_clone_args args = {
		.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
			 CLONE_THREAD | CLONE_SYSVSEM | CLONE_UNTRACED,
		.exit_signal = 0,
		.fn = host_task_marker,
		.fn_arg = req,
		.name = "host",
	};
	struct task_struct *task;
	pid_t pid = kernel_clone(&args);

	if (pid < 0)
		return ERR_PTR(pid);
	rcu_read_lock();
	task = find_task_by_pid_ns(pid, &init_pid_ns);
	get_task_struct(task);
	rcu_read_unlock();
	/* No switch to the new task can happen before this: nothing sleeps. */
	task->thread.borrowed_sem = false;
	return task;
}

/*
 * pid 1 has "exec'ed" /init (see setup.c); its user space is this loop,
 * which creates host tasks as threads of its own group, so that all host
 * threads share one file table, working directory and credentials.
 * kernel_clone() copies from current, which is why pid 1 does it.
 */
static void host_task_factory(void)
{
	struct host_task_request *req;

	host_factory = current;
	boot_done(0);
	for (;;) {
		set_current_state(TASK_IDLE);
		spin_lock(&host_task_requests_lock);
		req = list_first_entry_or_null(&host_task_requests,
					       struct host_task_request, node);
		if (req)
			list_del(&req->node);
		spin_unlock(&host_task_requests_lock);
		if (!req) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		req->task = clone_host_task(req);
		if (IS_ERR(req->task))
			lkl_ops->sem_up(req->sched_sem);
	}
}

static void thread_bootstrap(void *arg)
{
	struct task_struct *task = arg;
	int (*fn)(void *);

	/* Wait for the scheduler to pick us for the first time. */
	lkl_ops->sem_down(task->thread.sched_sem);
	if (lkl_halted)
		lkl_ops->thread_exit();

	schedule_tail(task->thread.prev_sched);
	fn = task->thread.fn;
	if (fn(task->thread.fn_arg) == 0 && task_pid_nr(task) == 1)
		host_task_factory();

	/* Kernel threads end through do_exit(); nothing else returns here. */
	panic("kernel thread %s returned", task->comm);
}

/* Between system calls a host task is current but logically asleep. */
void host_task_park(void)
{
	current->thread.parked = true;
	set_current_state(TASK_IDLE);
}

static void host_task_unpark(void)
{
	current->thread.parked = false;
	__set_current_state(TASK_RUNNING);
}

/*
 * Leave the kernel, called by a host thread that holds the CPU while
 * current is the idle task or a parked host task. Work raised meanwhile
 * (interrupts, woken tasks) is handed on first, since nothing preempts.
 */
void cpu_leave(void)
{
	void *jb[5];

	for (;;) {
		run_pending_irqs();
		if (is_idle_task(current)) {
			if (need_resched()) {
				idle_kick();
				return;
			}
		} else if (nr_running() > 1) {
			/* Switch away; __switch_to jumps back here. */
			if (!__builtin_setjmp(jb)) {
				current->thread.leave_jb = jb;
				schedule();
				BUG();
			}
			return;
		}
		if (cpu_release())
			return;
	}
}

/*
 * Make @task (the calling thread's host task) current. The caller holds
 * the CPU; current is the idle task or some parked host task.
 */
void host_task_enter(struct task_struct *task)
{
	void *jb[5];

	if (current == task) {
		host_task_unpark();
		return;
	}

	wake_up_process(task);

	if (is_idle_task(current)) {
		/* The idle thread runs the scheduler; wait for our turn. */
		idle_kick();
	} else if (!__builtin_setjmp(jb)) {
		/* Schedule in place of the parked task we found. */
		current->thread.leave_jb = jb;
		schedule();
		if (current == task) {
			host_task_unpark();
			return;
		}
		BUG();
	}

	lkl_ops->sem_down(task->thread.sched_sem);
	schedule_tail(task->thread.prev_sched);
	host_task_unpark();
}

/*
 * The calling host thread's task, made by pid 1 on request. Like a new
 * kernel thread it starts when the scheduler first switches to it: this
 * returns then, with the CPU held and the new task current (or with an
 * error and without the CPU).
 */
struct task_struct *host_task_create(void)
{
	struct host_task_request req = { .tid = lkl_ops->thread_self() };
	int err;

	req.sched_sem = lkl_ops->sem_alloc(0);
	if (!req.sched_sem)
		return ERR_PTR(-ENOMEM);
	err = cpu_get();
	if (err) {
		lkl_ops->sem_free(req.sched_sem);
		return ERR_PTR(err);
	}
	spin_lock(&host_task_requests_lock);
	list_add_tail(&req.node, &host_task_requests);
	spin_unlock(&host_task_requests_lock);
	wake_up_process(host_factory);
	cpu_leave();

	lkl_ops->sem_down(req.sched_sem);
	if (IS_ERR(req.task)) {
		lkl_ops->sem_free(req.sched_sem);
		return req.task;
	}
	schedule_tail(req.task->thread.prev_sched);
	return req.task;
}

/*
 * The host thread behind @task is gone: the task exits. The caller holds
 * the CPU and has made @task current; the final switch jumps back here.
 */
void host_task_exit(struct task_struct *task)
{
	void *jb[5];

	if (!__builtin_setjmp(jb)) {
		task->thread.leave_jb = jb;
		put_task_struct(task);
		do_exit(0);
	}
}

static struct lkl_sem *idle_wake;

int threads_init(void)
{
	idle_wake = lkl_ops->sem_alloc(0);
	init_task.thread.sched_sem = lkl_ops->sem_alloc(0);
	if (!idle_wake || !init_task.thread.sched_sem)
		return -ENOMEM;
	init_task.thread.tid = lkl_ops->thread_self();
	return 0;
}

/*
 * Nothing to run: give the CPU up until an interrupt or a system call
 * brings work. Whoever then holds the CPU with the idle task current runs
 * interrupts itself and wakes us (idle_kick) only to schedule.
 */
void arch_cpu_idle(void)
{
	for (;;) {
		local_irq_enable();
		if (need_resched())
			goto out;
		if (cpu_release())
			break;
	}
	lkl_ops->sem_down(idle_wake);
	if (lkl_halted)
		lkl_ops->thread_exit();
out:
	local_irq_disable();
}

/* Hand the CPU to the idle thread so that it runs the scheduler. */
void idle_kick(void)
{
	cpu_set_owner(init_task.thread.tid);
	lkl_ops->sem_up(idle_wake);
}

/*
 * Halt: wake every kernel thread so that it ends (each checks lkl_halted
 * when woken) and wait for them all. The caller holds the CPU.
 */
void threads_halt(void)
{
	struct task_struct *g, *t;
	lkl_thread_t *tids;
	int n = 1, i = 0;

	for_each_process_thread(g, t)
		if (!t->thread.host_task)
			n++;
	tids = lkl_ops->mem_alloc(n * sizeof(*tids));

	lkl_halted = true;
	for_each_process_thread(g, t) {
		if (t->thread.host_task)
			continue;
		if (tids)
			tids[i++] = t->thread.tid;
		lkl_ops->sem_up(t->thread.sched_sem);
	}
	if (tids)
		tids[i++] = init_task.thread.tid;
	lkl_ops->sem_up(init_task.thread.sched_sem);
	lkl_ops->sem_up(idle_wake);

	while (i > 0)
		lkl_ops->thread_join(tids[--i]);
	lkl_ops->mem_free(tids);
}
