// SPDX-License-Identifier: GPL-2.0
/*
 * cptofs IMAGE FSTYPE SRCDIR: copies a host directory tree into the root of
 * a filesystem image through the kernel, keeping modes, owners, symlinks
 * and nanosecond timestamps. A small C example of the library's API; the
 * lklfs command line does the same job with more options.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lkl.h>
#include <lkl_host.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/stat.h>
#include <lkl/linux/time_types.h>

static int copy_metadata(const char *dst, const struct stat *st)
{
	struct __lkl__kernel_timespec ts[2] = {
		{ st->st_atim.tv_sec, st->st_atim.tv_nsec },
		{ st->st_mtim.tv_sec, st->st_mtim.tv_nsec },
	};
	long err;

	err = lkl_sys_fchownat(LKL_AT_FDCWD, dst, st->st_uid, st->st_gid,
			       LKL_AT_SYMLINK_NOFOLLOW);
	if (!err && !S_ISLNK(st->st_mode))
		err = lkl_sys_fchmodat(LKL_AT_FDCWD, dst, st->st_mode & 07777);
	if (!err)
		err = lkl_sys_utimensat(LKL_AT_FDCWD, dst, ts, LKL_AT_SYMLINK_NOFOLLOW);
	return err;
}

static long copy_file(const char *src, const char *dst, const struct stat *st)
{
	char buf[1 << 16];
	long fd, err = 0;
	ssize_t n;
	int in = open(src, O_RDONLY);

	if (in < 0)
		return -errno;
	fd = lkl_sys_openat(LKL_AT_FDCWD, dst, LKL_O_CREAT | LKL_O_WRONLY | LKL_O_TRUNC,
			    st->st_mode & 07777);
	if (fd < 0) {
		close(in);
		return fd;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		char *p = buf;

		while (n > 0 && !err) {
			long w = lkl_sys_write(fd, p, n);

			if (w < 0)
				err = w;
			else
				p += w, n -= w;
		}
	}
	if (n < 0)
		err = -errno;
	close(in);
	lkl_sys_close(fd);
	return err;
}

static long copy_tree(const char *src, const char *dst)
{
	struct dirent *de;
	long err = 0;
	DIR *dir = opendir(src);

	if (!dir)
		return -errno;
	while (!err && (de = readdir(dir))) {
		char s[4096], d[4096], target[4096];
		struct stat st;
		ssize_t n;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
		snprintf(d, sizeof(d), "%s/%s", dst, de->d_name);
		if (lstat(s, &st) < 0) {
			err = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			err = lkl_sys_mkdirat(LKL_AT_FDCWD, d, 0700);
			if (!err)
				err = copy_tree(s, d);
		} else if (S_ISREG(st.st_mode)) {
			err = copy_file(s, d, &st);
		} else if (S_ISLNK(st.st_mode)) {
			n = readlink(s, target, sizeof(target) - 1);
			if (n < 0) {
				err = -errno;
				break;
			}
			target[n] = 0;
			err = lkl_sys_symlinkat(target, LKL_AT_FDCWD, d);
		} else {
			err = lkl_sys_mknodat(LKL_AT_FDCWD, d, st.st_mode, st.st_rdev);
		}
		if (!err)
			err = copy_metadata(d, &st);
		if (err)
			fprintf(stderr, "cptofs: %s: %s\n", s, lkl_strerror(err));
	}
	closedir(dir);
	return err;
}

int main(int argc, char **argv)
{
	struct lkl_disk disk = { 0 };
	char mnt[64];
	long err;
	int id;

	if (argc != 4) {
		fprintf(stderr, "usage: cptofs IMAGE FSTYPE SRCDIR\n");
		return 2;
	}
	disk.fd = open(argv[1], O_RDWR);
	if (disk.fd < 0) {
		perror(argv[1]);
		return 1;
	}
	lkl_init(&lkl_host_ops);
	id = lkl_disk_add(&disk);
	if (id < 0) {
		lkl_perror("cptofs: adding the disk", id);
		return 1;
	}
	err = lkl_start_kernel("mem=128M quiet");
	if (err) {
		lkl_perror("cptofs: starting the kernel", err);
		return 1;
	}
	err = lkl_mount_dev(id, 0, argv[2], 0, NULL, mnt, sizeof(mnt));
	if (err) {
		lkl_perror("cptofs: mounting the image", err);
		lkl_sys_halt();
		return 1;
	}
	err = copy_tree(argv[3], mnt);
	/* Unmount even after an error: the image must stay consistent. */
	if (lkl_umount_dev(id, 0, 0, 1000) && !err)
		err = -EIO;
	lkl_sys_halt();
	if (fsync(disk.fd) < 0 && !err)
		err = -errno;
	close(disk.fd);
	return err ? 1 : 0;
}
