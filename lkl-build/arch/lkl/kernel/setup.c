// SPDX-License-Identifier: GPL-2.0
/*
 * Boot and halt.
 *
 * lkl_start_kernel() starts a host thread that takes the CPU and runs
 * start_kernel(); that thread becomes the idle task. Boot is complete when
 * pid 1 "execs" /init, a file this code creates and only its own binary
 * format accepts: pid 1 then creates the tasks of host threads that make
 * system calls (threads.c).
 */
#include <linux/binfmts.h>
#include <linux/console.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/init_syscalls.h>
#include <linux/kdev_t.h>
#include <linux/major.h>
#include <linux/panic_notifier.h>
#include <linux/random.h>
#include <linux/reboot.h>
#include <linux/sched/task.h>
#include <linux/start_kernel.h>
#include <linux/string.h>
#include <asm/cpu.h>
#include <asm/library.h>
#include <asm/setup.h>

struct lkl_host_operations *lkl_ops;
bool lkl_halted;

static bool booted;
static struct lkl_sem *boot_sem;
static int boot_err;

int lkl_init(struct lkl_host_operations *ops)
{
	if (!ops || ops->version != LKL_HOST_OPS_VERSION)
		return -EINVAL;
	lkl_ops = ops;
	return 0;
}

static int host_panic(struct notifier_block *nb, unsigned long event,
		      void *msg)
{
	console_flush_on_panic(CONSOLE_FLUSH_PENDING);
	lkl_ops->panic();
	return NOTIFY_DONE;
}

static struct notifier_block host_panic_notifier = {
	.notifier_call = host_panic,
	.priority = INT_MIN,
};

/*
 * Seeds the random number generator with the host's bytes, as a boot
 * loader's seed would (trusted unless random.trust_bootloader=off). Nothing
 * else would seed it within a job's lifetime: no CPU instruction is used,
 * and interrupts credit little. Unseeded, every get_random_u32() (an ext4
 * inode's generation, hash table seeds) re-hashed the whole entropy pool,
 * about one per cent of a cptofs's CPU.
 */
static void __init seed_random(void)
{
	u8 seed[32];

	if (!lkl_ops->random || lkl_ops->random(seed, sizeof(seed)))
		return;
	add_bootloader_randomness(seed, sizeof(seed));
	memzero_explicit(seed, sizeof(seed));
}

void __init setup_arch(char **cmdline_p)
{
	*cmdline_p = boot_command_line;
	parse_early_param();
	host_console_init();
	seed_random();
	atomic_notifier_chain_register(&panic_notifier_list,
				       &host_panic_notifier);
	bootmem_init();
}

/* __ref: start_kernel() is __init but this thread is what runs it. */
static void __ref boot_thread(void *unused)
{
	if (cpu_get() || threads_init()) {
		boot_done(-ENOMEM);
		return;
	}
	start_kernel();
}

void boot_done(int err)
{
	boot_err = err;
	lkl_ops->sem_up(boot_sem);
}

/* __ref: it fills boot_command_line (__initdata) before boot starts. */
int __ref lkl_start_kernel(const char *fmt, ...)
{
	va_list ap;
	int err, len;

	if (!lkl_ops)
		return -EINVAL;
	if (booted) {
		static const char msg[] =
			"lkl: the kernel can only be started once per process\n";

		if (lkl_ops->print)
			lkl_ops->print(msg, sizeof(msg) - 1);
		return -EALREADY;
	}
	booted = true;

	/*
	 * Defaults go first so that the caller's options win. The kernel's RAM
	 * serves only this process: let writes fill more of it before they
	 * are throttled (1 GiB write benchmark: ~8% faster than the default 20).
	 */
	len = scnprintf(boot_command_line, COMMAND_LINE_SIZE,
			"sysctl.vm.dirty_ratio=60 ");
	va_start(ap, fmt);
	vscnprintf(boot_command_line + len, COMMAND_LINE_SIZE - len, fmt, ap);
	va_end(ap);

	boot_sem = lkl_ops->sem_alloc(0);
	if (!boot_sem)
		return -ENOMEM;
	err = cpu_lock_init();
	if (err)
		return err;
	err = syscalls_init();
	if (err)
		return err;

	if (!lkl_ops->thread_create(boot_thread, NULL))
		return -ENOMEM;
	lkl_ops->sem_down(boot_sem);
	return boot_err;
}

int lkl_is_running(void)
{
	return booted && !lkl_halted;
}

/* pid 1's program: accepted only for the /init file created below. */
static int host_init_load(struct linux_binprm *bprm)
{
	int err;

	if (strcmp(bprm->filename, "/init") || task_pid_nr(current) != 1)
		return -ENOEXEC;
	err = begin_new_exec(bprm);
	if (err)
		return err;
	setup_new_exec(bprm);
	finalize_exec(bprm);
	return 0;
}

static struct linux_binfmt host_init_format = {
	.load_binary = host_init_load,
};

static int __init host_init_setup(void)
{
	struct file *f;
	int err;

	/*
	 * There is no terminal (the rootfs's /dev/console is one): pid 1's
	 * standard streams, which every host task shares, are /dev/null.
	 */
	init_mkdir("/dev", 0755);
	init_unlink("/dev/console");
	err = init_mknod("/dev/console", S_IFCHR | 0600,
			 new_encode_dev(MKDEV(MEM_MAJOR, 3)));
	if (err)
		return err;

	f = filp_open("/init", O_CREAT | O_RDONLY, 0700);
	if (IS_ERR(f))
		return PTR_ERR(f);
	/* pid 1 never returns to user space, where a plain fput() completes. */
	__fput_sync(f);
	register_binfmt(&host_init_format);
	return 0;
}
late_initcall(host_init_setup);

/*
 * Halt, from reboot(): stop every kernel thread and the timer, give the
 * RAM back and return to the caller's lkl_syscall() (its task_struct is
 * in that RAM, so this never returns into the kernel).
 */
static void __noreturn halt_kernel(void)
{
	void **jb = current->thread.syscall_jb;

	disks_halt();
	threads_halt();
	time_halt();
	cpu_shutdown();
	bootmem_free();
	__builtin_longjmp(jb, 1);
}

void machine_halt(void)
{
	halt_kernel();
}

void machine_power_off(void)
{
	halt_kernel();
}

void machine_restart(char *cmd)
{
	halt_kernel();
}
