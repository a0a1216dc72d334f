// SPDX-License-Identifier: GPL-2.0
/*
 * disks A B: two ext4 images, A attached before boot and B after. On A a
 * 32 MiB file is written, fsynced, deleted and the filesystem trimmed (the
 * test then sees the image's blocks given back to the host); on B a file
 * is written. Both are unmounted and detached before halt.
 */
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include <lkl/linux/fcntl.h>
#include <lkl/linux/fs.h>

#define MIB (1 << 20)

static void write_file(const char *dir, const char *name, int mib)
{
	char path[96];
	char *buf = calloc(1, MIB);
	long fd, n = 0;
	int i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = CHECK_CALL("create", lkl_sys_openat(LKL_AT_FDCWD, path,
						 LKL_O_CREAT | LKL_O_WRONLY, 0644));
	for (i = 0; i < mib; i++) {
		memset(buf, 'a' + i % 26, MIB);
		n = lkl_sys_write(fd, buf, MIB);
		if (n != MIB)
			break;
	}
	CHECK("write", n == MIB, "%s", lkl_strerror(n));
	CHECK_CALL("fsync", lkl_sys_fsync(fd));
	lkl_sys_close(fd);
	free(buf);
}

int main(int argc, char **argv)
{
	struct lkl_disk a = { 0 }, b = { 0 };
	struct lkl_fstrim_range range = { .len = ~0ULL };
	char mnt_a[64], mnt_b[64], path[96];
	int id_a, id_b;
	long ret, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: disks IMAGE_A IMAGE_B\n");
		return 2;
	}
	a.fd = open(argv[1], O_RDWR);
	b.fd = open(argv[2], O_RDWR);
	if (a.fd < 0 || b.fd < 0) {
		perror("open");
		return 2;
	}
	lkl_init(&lkl_host_ops);
	id_a = lkl_disk_add(&a);
	CHECK("disk added before boot", id_a >= 0, "%s", lkl_strerror(id_a));
	ret = lkl_start_kernel("mem=128M quiet");
	CHECK("boot", ret == 0, "%s", lkl_strerror(ret));
	id_b = lkl_disk_add(&b);
	CHECK("disk added after boot", id_b >= 0 && id_b != id_a, "%s", lkl_strerror(id_b));
	if (ret || id_a < 0 || id_b < 0)
		return 1;

	CHECK_CALL("mount A", lkl_mount_dev(id_a, 0, "ext4", 0, NULL, mnt_a, sizeof(mnt_a)));
	CHECK_CALL("mount B", lkl_mount_dev(id_b, 0, "ext4", 0, NULL, mnt_b, sizeof(mnt_b)));

	write_file(mnt_a, "big", 32);
	snprintf(path, sizeof(path), "%s/big", mnt_a);
	CHECK_CALL("delete", lkl_sys_unlinkat(LKL_AT_FDCWD, path, 0));
	fd = CHECK_CALL("open A", lkl_sys_openat(LKL_AT_FDCWD, mnt_a,
						 LKL_O_RDONLY | LKL_O_DIRECTORY, 0));
	CHECK_CALL("sync", lkl_sys_syncfs(fd));
	ret = lkl_sys_ioctl(fd, LKL_FITRIM, (unsigned long)&range);
	CHECK("trim", ret == 0 && range.len > 32ULL * MIB, "%s, %llu bytes",
	      lkl_strerror(ret), (unsigned long long)range.len);
	lkl_sys_close(fd);

	write_file(mnt_b, "file", 4);

	CHECK_CALL("umount A", lkl_umount_dev(id_a, 0, 0, 1000));
	CHECK_CALL("umount B", lkl_umount_dev(id_b, 0, 0, 1000));
	CHECK_CALL("remove B", lkl_disk_remove(b));
	ret = lkl_disk_remove(b);
	CHECK("remove B again", ret == -ENOENT, "got %ld", ret);
	CHECK_CALL("remove A", lkl_disk_remove(a));
	CHECK_CALL("halt", lkl_sys_halt());
	return check_failures;
}
