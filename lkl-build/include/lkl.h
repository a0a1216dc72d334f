/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LKL_H
#define _LKL_H

/*
 * The Linux kernel as a library: the public API of liblkl.a.
 *
 * Source-compatible with the public API of the Linux Kernel Library (LKL):
 *
 *	lkl_init(&lkl_host_ops);
 *	lkl_start_kernel("mem=128M");
 *	id = lkl_disk_add(&disk);
 *	lkl_mount_dev(id, 0, "ext4", 0, NULL, mnt, sizeof(mnt));
 *	... lkl_sys_open(), lkl_sys_write(), lkl_sys_stat(), ...
 *	lkl_umount_dev(id, 0, 0, 1000);
 *	lkl_sys_halt();
 *	lkl_cleanup();
 *
 * Errors are negative errno values (the kernel's, which on Linux hosts are
 * the host's too). Every call may be made from any host thread; each host
 * thread gets a kernel task of its own and all of them share one file
 * table, working directory and credentials (root).
 *
 * Kernel definitions carry an LKL_/lkl_ prefix (LKL_O_RDONLY, struct
 * lkl_stat) so they never collide with the host's. lkl.h brings in the
 * uapi definitions LKL programs use without including them (open flags,
 * file types and modes, errno values, struct lkl_stat, poll events, time
 * and signal types); the rest of the uapi is under <lkl/...>.
 *
 * Differences from LKL a program may meet:
 *  - Not built: networking (lkl_if_up, lkl_netdev_*, sockets,
 *    lkl_sys_send/recv), epoll (lkl_sys_epoll_*), LKL's own system calls
 *    (lkl_sys_new_thread_group_leader), lkl_sysctl.
 *  - lkl_sys_mmap is the plain system call (returning long), not LKL's
 *    wrapper returning a pointer.
 *  - struct lkl_host_operations is this library's (see lkl_host.h); the
 *    provided lkl_host_ops is used the same way, a table of one's own
 *    follows lkl_host.h.
 *  - Descriptors 0, 1 and 2 are open (on /dev/null) from boot, so the
 *    first file a program opens is 3, where LKL's would be 0.
 */

#ifdef __cplusplus
extern "C" {
#endif

#include <lkl/asm/host_ops.h>
#include <lkl/asm/library.h>
#include <lkl/linux/types.h>

/* The kernel's long, as LKL names it (the host's long on Linux hosts). */
typedef long lkl_long_t;
typedef unsigned long lkl_ulong_t;

/* What getdents64 returns (the kernel keeps this struct out of uapi). */
struct lkl_linux_dirent64 {
	__lkl__u64 d_ino;
	__lkl__s64 d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

#include <lkl/syscalls.h>

/* The uapi definitions of every program's system calls. */
#include <lkl/asm/siginfo.h>
#include <lkl/asm/signal.h>
#include <lkl/asm/stat.h>
#include <lkl/asm/statfs.h>
#include <lkl/linux/capability.h>
#include <lkl/linux/errno.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/fs.h>
#include <lkl/linux/kdev_t.h>
#include <lkl/linux/poll.h>
#include <lkl/linux/resource.h>
#include <lkl/linux/stat.h>
#include <lkl/linux/sysinfo.h>
#include <lkl/linux/time.h>
#include <lkl/linux/times.h>
#include <lkl/linux/timex.h>
#include <lkl/linux/uio.h>
#include <lkl/linux/utime.h>

/*
 * The path-based calls of LKL's API. Architectures with the generic system
 * call table (this one, arm64, riscv) have only the *at calls; these are
 * the classic calls on top of them, relative to the working directory,
 * with LKL's signatures. Like every lkl_sys_* call they return a negative
 * errno value on failure.
 */
static inline long lkl_sys_open(const char *path, int flags, int mode)
{
	return lkl_sys_openat(LKL_AT_FDCWD, path, flags, mode);
}

static inline long lkl_sys_creat(const char *path, int mode)
{
	return lkl_sys_openat(LKL_AT_FDCWD, path,
			      LKL_O_CREAT | LKL_O_WRONLY | LKL_O_TRUNC, mode);
}

static inline long lkl_sys_access(const char *path, int mode)
{
	return lkl_sys_faccessat(LKL_AT_FDCWD, path, mode);
}

static inline long lkl_sys_mkdir(const char *path, lkl_umode_t mode)
{
	return lkl_sys_mkdirat(LKL_AT_FDCWD, path, mode);
}

static inline long lkl_sys_rmdir(const char *path)
{
	return lkl_sys_unlinkat(LKL_AT_FDCWD, path, LKL_AT_REMOVEDIR);
}

static inline long lkl_sys_unlink(const char *path)
{
	return lkl_sys_unlinkat(LKL_AT_FDCWD, path, 0);
}

/* dev is the kernel's encoding (LKL_MKDEV for small numbers). */
static inline long lkl_sys_mknod(const char *path, lkl_umode_t mode,
				 unsigned int dev)
{
	return lkl_sys_mknodat(LKL_AT_FDCWD, path, mode, dev);
}

static inline long lkl_sys_symlink(const char *target, const char *path)
{
	return lkl_sys_symlinkat(target, LKL_AT_FDCWD, path);
}

static inline long lkl_sys_readlink(const char *path, char *buf,
				    lkl_size_t bufsize)
{
	return lkl_sys_readlinkat(LKL_AT_FDCWD, path, buf, bufsize);
}

static inline long lkl_sys_link(const char *existing, const char *path)
{
	return lkl_sys_linkat(LKL_AT_FDCWD, existing, LKL_AT_FDCWD, path, 0);
}

static inline long lkl_sys_rename(const char *from, const char *to)
{
	return lkl_sys_renameat(LKL_AT_FDCWD, from, LKL_AT_FDCWD, to);
}

static inline long lkl_sys_chmod(const char *path, lkl_umode_t mode)
{
	return lkl_sys_fchmodat(LKL_AT_FDCWD, path, mode);
}

/* Follows a symbolic link, as chown(2) does. */
static inline long lkl_sys_chown(const char *path, lkl_uid_t uid, lkl_gid_t gid)
{
	return lkl_sys_fchownat(LKL_AT_FDCWD, path, uid, gid, 0);
}

/* LKL's names of the stat calls on 64-bit architectures. */
#define lkl_sys_fstatat lkl_sys_newfstatat

static inline long lkl_sys_newfstat(unsigned int fd, struct lkl_stat *buf)
{
	return lkl_sys_fstat(fd, buf);
}

static inline int lkl_sys_stat(const char *path, struct lkl_stat *buf)
{
	return lkl_sys_newfstatat(LKL_AT_FDCWD, path, buf, 0);
}

static inline int lkl_sys_lstat(const char *path, struct lkl_stat *buf)
{
	return lkl_sys_newfstatat(LKL_AT_FDCWD, path, buf,
				  LKL_AT_SYMLINK_NOFOLLOW);
}

/* times[0] is the access time, times[1] the modification time; NULL: now. */
static inline long lkl_sys_utimes(const char *path, struct lkl_timeval *times)
{
	struct __lkl__kernel_timespec ts[2];
	int i;

	if (!times)
		return lkl_sys_utimensat(LKL_AT_FDCWD, path, 0, 0);
	for (i = 0; i < 2; i++) {
		if (times[i].tv_usec < 0 || times[i].tv_usec >= 1000000)
			return -LKL_EINVAL;
		ts[i].tv_sec = times[i].tv_sec;
		ts[i].tv_nsec = times[i].tv_usec * 1000;
	}
	return lkl_sys_utimensat(LKL_AT_FDCWD, path, ts, 0);
}

static inline long lkl_sys_umount(char *path, int flags)
{
	return lkl_sys_umount2(path, flags);
}

static inline long lkl_sys_pipe(int fds[2])
{
	return lkl_sys_pipe2(fds, 0);
}

/* timeout in milliseconds; negative: wait for ever. */
static inline long lkl_sys_poll(struct lkl_pollfd *fds, int n, int timeout)
{
	struct __lkl__kernel_timespec ts;

	ts.tv_sec = timeout / 1000;
	ts.tv_nsec = timeout % 1000 * 1000000L;
	return lkl_sys_ppoll(fds, n, timeout >= 0 ? &ts : 0, 0,
			     sizeof(lkl_sigset_t));
}

/* As select(2) on Linux, a timeout is updated to the time left. */
static inline long lkl_sys_select(int n, lkl_fd_set *rfds, lkl_fd_set *wfds,
				  lkl_fd_set *efds, struct lkl_timeval *tv)
{
	struct __lkl__kernel_timespec ts;
	long ret;

	if (!tv)
		return lkl_sys_pselect6(n, rfds, wfds, efds, 0, 0);
	if (tv->tv_sec < 0 || tv->tv_usec < 0)
		return -LKL_EINVAL;
	ts.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
	ts.tv_nsec = tv->tv_usec % 1000000 * 1000;
	ret = lkl_sys_pselect6(n, rfds, wfds, efds, &ts, 0);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return ret;
}

/* Boot: lkl_init(ops) once, then lkl_start_kernel(command line, ...).
 * The command line takes mem=<size> (default 256M) and lkl_epoch=<secs>
 * (wall clock at boot, for reproducible images), plus any kernel option
 * ("quiet", "loglevel=N"). lkl_start_kernel fails with -EALREADY when the
 * kernel was already started in this process: it cannot be restarted.
 *
 * lkl_sys_halt() syncs, stops every kernel thread and frees the kernel's
 * memory; lkl_cleanup() then releases the host resources left.
 */

/* Error text for a negative errno value. */
const char *lkl_strerror(int err);
/* Prints "msg: text" for a negative errno value to stderr. */
void lkl_perror(char *msg, int err);

/*
 * Disks: lkl_disk_add() before or after boot, with disk.fd an open image
 * (O_RDONLY for a read-only disk) and disk.ops NULL for the built-in
 * file backend. Returns the disk id.
 *
 * lkl_mount_dev() mounts the whole disk (part 0) or partition part (MBR
 * or GPT) at a directory it creates and writes into mnt_str (for example
 * "/mnt/lkl0p1"); lkl_umount_dev() undoes it, retrying while the
 * filesystem is busy for up to timeout_ms.
 */
long lkl_mount_dev(unsigned int disk_id, unsigned int part,
		   const char *fs_type, int flags, const char *opts,
		   char *mnt_str, unsigned int mnt_str_len);
long lkl_umount_dev(unsigned int disk_id, unsigned int part, int flags,
		    long timeout_ms);
long lkl_umount_timeout(char *path, int flags, long timeout_ms);

/*
 * LKL's name for lkl_disk_devt(): the device number of a disk (part 0) or
 * of one of its partitions, as mknod and st_rdev have it.
 */
static inline int lkl_get_virtio_blkdev(int disk_id, unsigned int part,
					unsigned int *devt)
{
	return lkl_disk_devt(disk_id, part, devt);
}

/*
 * Mounts a filesystem without a device (fstype "proc" or "sysfs") at
 * /fstype, creating the directory. Returns 0, 1 when a filesystem is
 * mounted there already, or a negative errno value.
 */
int lkl_mount_fs(char *fstype);

/*
 * Directory streams over lkl_sys_getdents64(). lkl_opendir and
 * lkl_fdopendir set *err to 0, or return NULL and set it to a negative
 * errno value.
 */
struct lkl_dir;
struct lkl_dir *lkl_opendir(const char *path, int *err);
struct lkl_dir *lkl_fdopendir(int fd, int *err);
void lkl_rewinddir(struct lkl_dir *dir);
int lkl_closedir(struct lkl_dir *dir);
/* NULL at the end of the directory or on error (see lkl_errdir). */
struct lkl_linux_dirent64 *lkl_readdir(struct lkl_dir *dir);
int lkl_errdir(struct lkl_dir *dir);
int lkl_dirfd(struct lkl_dir *dir);

#ifdef __cplusplus
}
#endif

#endif
