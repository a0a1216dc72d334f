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
 *	... lkl_sys_openat(), lkl_sys_write(), ...
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
 * lkl_stat) so they never collide with the host's.
 */

#ifdef __cplusplus
extern "C" {
#endif

#include <lkl/asm/host_ops.h>
#include <lkl/asm/library.h>
#include <lkl/linux/types.h>

/* What getdents64 returns (the kernel keeps this struct out of uapi). */
struct lkl_linux_dirent64 {
	__lkl__u64 d_ino;
	__lkl__s64 d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

#include <lkl/syscalls.h>

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

/* Directory streams over lkl_sys_getdents64(). */
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
