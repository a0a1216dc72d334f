// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers over system calls: mounting disks, directory streams, errors.
 * They run on the caller's thread like any lkl_sys_* call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lkl.h>

const char *lkl_strerror(int err)
{
	/* Kernel errno values are the host's on Linux. */
	return strerror(err < 0 ? -err : err);
}

void lkl_perror(char *msg, int err)
{
	fprintf(stderr, "%s: %s\n", msg, lkl_strerror(err));
}

static long mkdir_exist_ok(const char *path)
{
	long err = lkl_sys_mkdirat(LKL_AT_FDCWD, path, 0700);

	return err == -EEXIST ? 0 : err;
}

static void dev_path(char *buf, size_t len, unsigned int disk_id,
		     unsigned int part)
{
	snprintf(buf, len, "/dev/lkl%up%u", disk_id, part);
}

static void mnt_path(char *buf, size_t len, unsigned int disk_id,
		     unsigned int part)
{
	snprintf(buf, len, "/mnt/lkl%up%u", disk_id, part);
}

long lkl_mount_dev(unsigned int disk_id, unsigned int part,
		   const char *fs_type, int flags, const char *opts,
		   char *mnt_str, unsigned int mnt_str_len)
{
	char dev[32], mnt[32];
	unsigned int devt;
	long err;

	mnt_path(mnt, sizeof(mnt), disk_id, part);
	if (!mnt_str || mnt_str_len <= strlen(mnt))
		return -ERANGE;
	err = lkl_disk_devt(disk_id, part, &devt);
	if (err)
		return err;

	dev_path(dev, sizeof(dev), disk_id, part);
	err = mkdir_exist_ok("/dev");
	if (!err)
		err = lkl_sys_mknodat(LKL_AT_FDCWD, dev, LKL_S_IFBLK | 0600, devt);
	if (err == -EEXIST)
		err = 0;
	if (!err)
		err = mkdir_exist_ok("/mnt");
	if (!err)
		err = mkdir_exist_ok(mnt);
	if (err)
		return err;

	err = lkl_sys_mount((char *)dev, mnt, (char *)fs_type, flags, (void *)opts);
	if (err) {
		lkl_sys_unlinkat(LKL_AT_FDCWD, mnt, LKL_AT_REMOVEDIR);
		lkl_sys_unlinkat(LKL_AT_FDCWD, dev, 0);
		return err;
	}
	strcpy(mnt_str, mnt);
	return 0;
}

int lkl_mount_fs(char *fstype)
{
	struct lkl_stat root, dir;
	char path[64];
	long err, made;

	if (snprintf(path, sizeof(path), "/%s", fstype) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	made = lkl_sys_mkdir(path, 0755);
	if (made && made != -EEXIST)
		return made;
	err = lkl_sys_stat("/", &root);
	if (!err)
		err = lkl_sys_stat(path, &dir);
	/* Mounting again would stack a second instance on the first. */
	if (!err && dir.st_dev != root.st_dev)
		return 1;
	if (!err)
		err = lkl_sys_mount(fstype, path, fstype, 0, NULL);
	if (err && !made)
		lkl_sys_rmdir(path);
	return err;
}

long lkl_umount_timeout(char *path, int flags, long timeout_ms)
{
	const struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };
	long err;

	for (;;) {
		err = lkl_sys_umount2(path, flags);
		if (err != -EBUSY || timeout_ms <= 0)
			return err;
		nanosleep(&pause, NULL);
		timeout_ms -= 10;
	}
}

long lkl_umount_dev(unsigned int disk_id, unsigned int part, int flags,
		    long timeout_ms)
{
	char dev[32], mnt[32];
	long err;

	mnt_path(mnt, sizeof(mnt), disk_id, part);
	err = lkl_umount_timeout(mnt, flags, timeout_ms);
	if (err)
		return err;
	dev_path(dev, sizeof(dev), disk_id, part);
	lkl_sys_unlinkat(LKL_AT_FDCWD, mnt, LKL_AT_REMOVEDIR);
	lkl_sys_unlinkat(LKL_AT_FDCWD, dev, 0);
	return 0;
}

struct lkl_dir {
	int fd;
	int err;
	int len, pos;
	char buf[8192];
};

struct lkl_dir *lkl_fdopendir(int fd, int *err)
{
	struct lkl_dir *dir = calloc(1, sizeof(*dir));

	if (!dir) {
		*err = -ENOMEM;
		return NULL;
	}
	dir->fd = fd;
	*err = 0;
	return dir;
}

struct lkl_dir *lkl_opendir(const char *path, int *err)
{
	struct lkl_dir *dir;
	long fd = lkl_sys_openat(LKL_AT_FDCWD, path,
				 LKL_O_RDONLY | LKL_O_DIRECTORY | LKL_O_CLOEXEC, 0);

	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	dir = lkl_fdopendir(fd, err);
	if (!dir)
		lkl_sys_close(fd);
	return dir;
}

void lkl_rewinddir(struct lkl_dir *dir)
{
	long off = lkl_sys_lseek(dir->fd, 0, LKL_SEEK_SET);

	dir->err = off < 0 ? off : 0;
	dir->len = dir->pos = 0;
}

int lkl_closedir(struct lkl_dir *dir)
{
	int err = lkl_sys_close(dir->fd);

	free(dir);
	return err;
}

struct lkl_linux_dirent64 *lkl_readdir(struct lkl_dir *dir)
{
	struct lkl_linux_dirent64 *de;

	if (dir->pos >= dir->len) {
		long n = lkl_sys_getdents64(dir->fd, (struct lkl_linux_dirent64 *)dir->buf,
					    sizeof(dir->buf));

		if (n <= 0) {
			dir->err = n;
			return NULL;
		}
		dir->len = n;
		dir->pos = 0;
	}
	de = (struct lkl_linux_dirent64 *)(dir->buf + dir->pos);
	dir->pos += de->d_reclen;
	return de;
}

int lkl_errdir(struct lkl_dir *dir)
{
	return dir->err;
}

int lkl_dirfd(struct lkl_dir *dir)
{
	return dir->fd;
}
